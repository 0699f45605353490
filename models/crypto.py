"""Personal data at rest: AES-256-GCM encryption and keyed hashes, from one secret.

One secret (``COLLECTFLOW_SECRET_KEY``, or for the embedded default a key
generated once into the key directory, ``COLLECTFLOW_KEY_DIR``, never the
data directory: a copy of the data must not carry its key, with owner-only
permissions) yields,
through HKDF-SHA256, two independent keys:

- an AES-256-GCM key: each personal value is encrypted with a fresh 96-bit
  nonce and bound, as associated data, to its contract number and field, so
  a ciphertext copied to another row or column fails to decrypt;
- an HMAC-SHA256 key: the national id's *match hash* (find a person without
  decrypting anything) and the digest of a loan's borrower details (tell a
  changed row from the same row without decrypting). Keyed, so they cannot
  be reversed by hashing every possible id.

A token reads ``v1.<key id>.<base64 nonce+ciphertext>``; the key id (8 hex
characters derived from the secret, not a secret itself) lets a wrong key be
reported as such rather than as corrupt data.

After a rotation (``models.keys``) the keyring also holds the retired keys
(``<key_dir>/retired/<key id>.key``): a token is decrypted by the key its id
names, while everything new is encrypted and hashed under the active key.
"""

from __future__ import annotations

from states.errors import UserError

import base64
import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import Field, SecretStr

from models.settings import Settings

KEY_FILE = "secret.key"
MIN_SECRET_CHARS = 32
TOKEN_VERSION = "v1"
NONCE_BYTES = 12


class CryptoKeyError(UserError):
    """No usable secret key, or data encrypted under another key. The message says what to do."""


class CryptoSettings(Settings):
    """The settings plus the secret key (``COLLECTFLOW_SECRET_KEY``)."""

    secret_key: SecretStr | None = Field(
        default=None,
        description=f"Secret for personal data at rest (at least {MIN_SECRET_CHARS} characters). "
        f"Unset with the embedded SQLite default: generated once into <key_dir>/{KEY_FILE}.",
    )


@dataclass(frozen=True, repr=False)
class Keyring:
    """The keys derived from one secret. Its repr shows only the key id."""

    key_id: str
    _aead: AESGCM
    _mac_key: bytes
    retired: Mapping[str, Keyring] = field(default_factory=dict, compare=False)  # key id -> a retired key's keyring

    def __repr__(self) -> str:
        return f"Keyring(key_id={self.key_id!r}, retired={sorted(self.retired)!r})"

    def with_retired(self, keyrings: Iterable[Keyring]) -> Keyring:
        """This keyring, also able to read what the given (retired) keys wrote."""
        return replace(self, retired={**self.retired, **{k.key_id: k for k in keyrings if k.key_id != self.key_id}})

    def for_key(self, key_id: str) -> Keyring | None:
        """The keyring of ``key_id``: this one, a retired one, or None when unknown."""
        return self if key_id == self.key_id else self.retired.get(key_id)

    @classmethod
    def from_secret(cls, secret: str | bytes) -> Keyring:
        raw = secret.encode("utf-8") if isinstance(secret, str) else secret
        if len(raw) < MIN_SECRET_CHARS:
            raise CryptoKeyError(
                f"the secret key has {len(raw)} characters; give at least {MIN_SECRET_CHARS} "
                f'(e.g. python -c "import secrets; print(secrets.token_urlsafe(32))")'
            )
        enc, mac = _derive(raw, b"collectflow personal data: aes-256-gcm"), _derive(raw, b"collectflow personal data: hmac-sha256")
        key_id = hmac.new(mac, b"key id", hashlib.sha256).hexdigest()[:8]
        return cls(key_id, AESGCM(enc), mac)

    # ------------------------------------------------------------------

    def encrypt(self, value: str, context: str) -> str:
        """``value`` encrypted and bound to ``context`` (e.g. ``"HT-001/phone"``)."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, value.encode("utf-8"), context.encode("utf-8"))
        return f"{TOKEN_VERSION}.{self.key_id}.{base64.urlsafe_b64encode(nonce + sealed).decode('ascii')}"

    def decrypt(self, token: str, context: str) -> str:
        try:
            version, key_id, body = token.split(".", 2)
        except ValueError:
            raise CryptoKeyError(f"{context}: not an encrypted value") from None
        if version != TOKEN_VERSION:
            raise CryptoKeyError(f"{context}: encryption format {version!r} is not {TOKEN_VERSION!r}")
        if key_id != self.key_id and key_id in self.retired:
            return self.retired[key_id].decrypt(token, context)
        if key_id != self.key_id:
            raise CryptoKeyError(
                f"{context}: encrypted under key id {key_id}, but the secret key in use has id {self.key_id}; "
                f"set COLLECTFLOW_SECRET_KEY to the key this database was written with"
            )
        data = base64.urlsafe_b64decode(body)
        try:
            return self._aead.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], context.encode("utf-8")).decode("utf-8")
        except InvalidTag:
            raise CryptoKeyError(f"{context}: the encrypted value fails its integrity check (altered, or moved from another row)") from None

    def match_hash(self, national_id: str) -> str:
        """The keyed hash a (normalised) national id is matched by."""
        return self.digest("national_id", national_id)

    def digest(self, purpose: str, text: str) -> str:
        """HMAC-SHA256 of ``text`` for one purpose (hex)."""
        return hmac.new(self._mac_key, f"{purpose}\x00{text}".encode("utf-8"), hashlib.sha256).hexdigest()


def _derive(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"collectflow", info=info).derive(secret)


# --------------------------------------------------------------------------
# where the secret comes from


def load_keyring(settings: CryptoSettings | None = None) -> Keyring:
    """The keyring of the configured secret, with the retired keys of the key directory.

    ``COLLECTFLOW_SECRET_KEY`` when set. Otherwise the key file in the key
    directory: for the embedded SQLite default generated on first use with
    mode 0600; a PostgreSQL store uses it only when it is there (mounted from a
    secret store: every worker must share one key), never generates one. A key
    file readable by group or others is refused. Retired keys
    (``retired/<key id>.key``) and a rotation's new key not yet promoted
    (``secret.key.next``) are added for reading.
    """
    settings = settings or CryptoSettings()
    if settings.secret_key is not None and settings.secret_key.get_secret_value().strip():
        active = Keyring.from_secret(settings.secret_key.get_secret_value().strip())
        return active.with_retired(readable_keys(settings.key_dir)) if settings.key_dir.is_dir() else active
    beside_data = settings.data_dir / KEY_FILE
    kept = key_location(settings)
    if not settings.database_url.startswith("sqlite") and not kept.exists():
        raise CryptoKeyError(
            "COLLECTFLOW_SECRET_KEY is not set: a PostgreSQL case store needs it (every worker must use the same "
            f"key); give a random string of at least {MIN_SECRET_CHARS} characters and keep it in your secret store, "
            f"or mount the key file as {kept}"
        )
    if beside_data.exists() and not kept.exists():
        raise CryptoKeyError(
            f"the personal data key {beside_data} sits in the data directory, beside the database; "
            f"move it to the key directory: mkdir -p {kept.parent} && mv {beside_data} {kept}"
        )
    kept.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Keyring.from_secret(key_file_secret(kept)).with_retired(readable_keys(kept.parent))


def configured_keyring(settings: CryptoSettings | None = None) -> Keyring | None:
    """The keyring when a key is configured (the variable, or a key file already made), else None;
    never generates a key (what ``verify`` uses to check the borrowers rows' ciphertext)."""
    settings = settings or CryptoSettings()
    given = settings.secret_key is not None and settings.secret_key.get_secret_value().strip()
    if not given and not (settings.key_dir / KEY_FILE).exists():
        return None
    return load_keyring(settings)


RETIRED_DIR = "retired"
NEXT_KEY_FILE = KEY_FILE + ".next"


def readable_keys(folder: Path) -> list[Keyring]:
    """The retired keys kept in ``folder/retired`` (each file named by its key id), and a rotation's
    new key not yet promoted (``folder/secret.key.next``)."""
    found = []
    retired = folder / RETIRED_DIR
    for path in sorted(retired.glob("*.key")) if retired.is_dir() else ():
        keyring = Keyring.from_secret(existing_key_secret(path))
        if keyring.key_id != path.stem:
            raise CryptoKeyError(f"retired key file {path} holds key id {keyring.key_id}, not {path.stem}; rename it {keyring.key_id}.key")
        found.append(keyring)
    pending = folder / NEXT_KEY_FILE
    if pending.exists():
        found.append(Keyring.from_secret(existing_key_secret(pending)))
    return found


def existing_key_secret(path: Path) -> str:
    """The secret of a key file that must already exist (never generated), owner-only."""
    if not path.is_file():
        raise CryptoKeyError(f"no key file {path}")
    return key_file_secret(path)


def key_location(settings: Settings) -> Path:
    """Where the embedded default keeps the personal data key: the key directory, outside the data."""
    folder, data = settings.key_dir.resolve(), settings.data_dir.resolve()
    if folder == data or data in folder.parents:
        raise CryptoKeyError(f"COLLECTFLOW_KEY_DIR {folder} is inside the data directory {data}; keep keys away from the database")
    return folder / KEY_FILE


CHAIN_KEY_FILE = "chain.key"
CHAIN_KEY_ENV = "COLLECTFLOW_CHAIN_KEY"


def load_chain_key(settings: Settings) -> bytes:
    """The key the event MACs are made with (``models.recorder.event_mac``).

    ``COLLECTFLOW_CHAIN_KEY`` (from a secret store) when set; otherwise
    ``<key_dir>/chain.key``, generated once with mode 0600. Never in the
    database or its data directory.
    """
    given = _given_chain_secret()
    if given is None:
        path = chain_key_path(settings)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        given = key_file_secret(path)
    return _chain_key_of(given)


def configured_chain_key(settings: Settings) -> bytes | None:
    """The chain key when one is configured (the variable, or the key file already made), else None;
    never generates one nor makes its folder (what ``doctor`` uses: a diagnostic writes nothing)."""
    given = _given_chain_secret()
    if given is None:
        path = chain_key_path(settings)
        if not path.is_file():
            return None
        given = key_file_secret(path)  # it exists: only read (and its mode checked)
    return _chain_key_of(given)


def chain_key_path(settings: Settings) -> Path:
    """Where the embedded default keeps the chain key: ``<key_dir>/chain.key``."""
    return key_location(settings).with_name(CHAIN_KEY_FILE)


def _given_chain_secret() -> str | None:
    given = os.environ.get(CHAIN_KEY_ENV, "").strip()
    if given and len(given) < MIN_SECRET_CHARS:
        raise CryptoKeyError(f"{CHAIN_KEY_ENV}: give at least {MIN_SECRET_CHARS} characters, got {len(given)}")
    return given or None


def _chain_key_of(secret: str) -> bytes:
    return hashlib.sha256(b"collectflow-chain-v1:" + secret.encode("utf-8")).digest()


def key_file_secret(path: Path) -> str:
    """The secret kept in ``path``, generated there (mode 0600) if the file does not exist yet."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_urlsafe(48) + "\n")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise CryptoKeyError(
            f"secret key file {path} is readable by group or others (mode {mode:04o}); run: chmod 600 {path}"
        )
    secret = path.read_text(encoding="ascii").strip()
    if not secret:
        raise CryptoKeyError(f"secret key file {path} is empty; delete it only if no personal data was written with it")
    return secret
