"""Settings: where the case store lives and how the flows run, from COLLECTFLOW_* variables.

Every setting has a default that works on a laptop with no server: a SQLite
file in ``./collectflow-data``. Production sets ``COLLECTFLOW_DATABASE_URL``
to a PostgreSQL URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from states.defaults import DEFAULT_TIMEZONE


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COLLECTFLOW_", extra="ignore")

    data_dir: Path = Field(
        default=Path("./collectflow-data"),
        description="Where the embedded SQLite file (and other local data) lives; created on first use.",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL of the case store; default sqlite:///<data_dir>/collectflow.db.",
    )
    batch_size: int = Field(default=5000, gt=0, description="Cases per batch (one Prefect task each).")
    task_runner: Literal["auto", "thread", "dask", "sequential"] = Field(
        default="auto",
        description="How the close fans out its batches: 'sequential' (one after another in the flow's process), "
        "'thread' (Prefect's ThreadPoolTaskRunner), 'dask' (prefect-dask's DaskTaskRunner: a LocalCluster "
        "of processes, or the cluster at COLLECTFLOW_DASK_ADDRESS), or 'auto': thread on PostgreSQL, "
        "sequential on SQLite (what measured faster on each, README 'Production').",
    )
    task_runner_workers: int = Field(
        default=2, gt=0, description="Threads, or Dask worker processes of the LocalCluster, that close batches at once."
    )
    dask_address: str = Field(default="", description="Address of an existing Dask scheduler (tcp://host:8786); empty: a LocalCluster.")
    lease_seconds: float = Field(
        default=30.0, gt=0, description="How long a worker holds a batch without renewing its lease (renewed every third of it while it works)."
    )
    join_seconds: float = Field(
        default=60.0, ge=0, description="How long an extra worker waits for a close to join before it stops."
    )
    key_dir: Path = Field(
        default=Path("./collectflow-keys"),
        description="Keys kept away from the database and its data directory: the seal signing key "
        "(generated there on first use, owner-only, unless COLLECTFLOW_SEAL_KEY is set).",
    )
    seals_dir: Path = Field(
        default=Path("./collectflow-seals"),
        description="Where each close writes its signed seal (append-only by convention; a WORM mount in production). "
        "Stores may share it: each seal names its store, and a store checks only its own (models.seals).",
    )
    policy_file: Path | None = Field(default=None, description="TOML collection policy; defaults apply if unset.")
    timezone: str = Field(default=DEFAULT_TIMEZONE, description="The lender's timezone: what 'today' means.")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA timezone name (e.g. Asia/Shanghai)") from None
        return value

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url.strip():
            self.database_url = f"sqlite:///{self.data_dir / 'collectflow.db'}"
        return self

    def ensure_data_dir(self) -> Path:
        """The data directory, created if it does not exist yet."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir


def get_settings() -> Settings:
    """Settings read from the environment now (cheap; not cached, so a changed variable is seen)."""
    return Settings()
