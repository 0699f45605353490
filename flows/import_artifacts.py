"""The Prefect artifacts of a file import (``import-loans``, ``ingest-payments``): a progress bar
while it runs, then its figures as a table and its first rejections (values masked).

Only counts, sums and rejection messages reach Prefect; the messages show
personal values masked, and the rejected rows themselves stay in the
owner-only rejects file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from prefect import get_run_logger
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact

ARTIFACT_REJECTIONS = 50
STEP = 2.0  # percent between two updates: a few dozen, not one per chunk


def progress_bar(description: str) -> Callable[[float], None]:
    """A progress artifact; the function returned sets it to a percentage (updates closer than STEP are skipped)."""
    artifact = create_progress_artifact(progress=0.0, description=description)
    shown = [0.0]

    def set_to(percent: float) -> None:
        if percent - shown[0] >= STEP or percent >= 100.0:
            shown[0] = percent
            update_progress_artifact(artifact_id=artifact, progress=percent)

    return set_to


def publish_summary(key: str, result: dict, figures: Sequence[str], description: str) -> None:
    """The import's ``figures`` as the table ``KEY-summary``; its first rejections as ``KEY-rejections``."""
    create_table_artifact(
        key=f"{key}-summary",
        table=[{"figure": name.replace("_", " "), "value": str(result[name])} for name in figures],
        description=description,
    )
    if result["rejected"]:
        create_table_artifact(
            key=f"{key}-rejections",
            table=[{"rejection": message} for message in result["rejections"][:ARTIFACT_REJECTIONS]],
            description=f"{result['rejected']} row(s) rejected (personal values masked); all of them are in {result['rejects_file']}",
        )
        get_run_logger().warning(
            "%d row(s) rejected; fix them in %s and import that file again", result["rejected"], result["rejects_file"]
        )
