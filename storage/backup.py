"""Backups of the whole live database, and restores into an empty one.

- SQLite: the online backup API (`sqlite3.Connection.backup`, all pages in one step, so the copy is one
  consistent state even while the service writes; WAL readers do not block writers).
- PostgreSQL: `pg_dump --format=custom` (one repeatable-read snapshot of the whole database while the service
  runs) and `pg_restore --single-transaction` on the way back. The client tools must be of the server's major
  version or newer; the password goes to them through `PGPASSWORD`, never on a command line.

The file is our own small container so that a backup says what it holds before anything is restored:

    b"KCBACKUP" + version byte + 4-byte header length + header (JSON) + body

The header names the dialect, the schema revision, the payload's size and SHA-256, and the encryption. With a key
or a passphrase the body is AES-256-GCM in 1 MiB chunks (the STREAM construction: nonce = random prefix + chunk
counter, the header and a last-chunk flag as associated data), so a changed header, a reordered, dropped or
truncated chunk and a wrong key are all refused. A passphrase is stretched with scrypt (salt in the header).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import URL

MAGIC = b"KCBACKUP"
VERSION = 1
CHUNK = 1 << 20
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 15, 8, 1
ALEMBIC_TABLE = "alembic_version"
SUFFIX = ".kcbak"


class BackupError(RuntimeError):
    """A backup or restore that cannot go on; the message says why (no content, no secrets)."""


@dataclass(frozen=True)
class Secret:
    """What encrypts a backup: a raw 32-byte key (base64) or a passphrase. Neither: no encryption."""

    key: bytes | None = None
    passphrase: str | None = None

    @classmethod
    def from_values(cls, *, key_b64: str | None, passphrase: str | None) -> Secret | None:
        if key_b64:
            try:
                key = base64.b64decode(key_b64, validate=True)
            except ValueError as exc:
                raise BackupError("BACKUP__KEY is not valid base64") from exc
            if len(key) != 32:
                raise BackupError("BACKUP__KEY must be 32 bytes (base64 of `openssl rand 32`)")
            return cls(key=key)
        if passphrase:
            return cls(passphrase=passphrase)
        return None


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    dialect: str
    revision: str | None
    created_at: dt.datetime
    size: int
    encrypted: bool


# ----- the container


def _derive(secret: Secret, enc: dict[str, Any]) -> bytes:
    if enc["kdf"] == "key":
        if secret.key is None:
            raise BackupError("this backup was encrypted with a key: set BACKUP__KEY")
        return secret.key
    if secret.passphrase is None:
        raise BackupError("this backup was encrypted with a passphrase: set BACKUP__PASSPHRASE")
    salt = base64.b64decode(enc["salt"])
    kdf = Scrypt(salt=salt, length=32, n=int(enc["n"]), r=int(enc["r"]), p=int(enc["p"]))
    return kdf.derive(secret.passphrase.encode("utf-8"))


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


def _aad(header: bytes, index: int, last: bool) -> bytes:
    return header + struct.pack(">IB", index, 1 if last else 0)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def write_container(payload: Path, out: Path, *, meta: dict[str, Any], secret: Secret | None) -> None:
    """Wrap a payload file into `out` (written to a temporary name first, then renamed: never half a file)."""
    size = payload.stat().st_size
    header_obj: dict[str, Any] = {**meta, "size": size, "sha256": _sha256(payload), "encryption": None}
    if secret is not None:
        enc: dict[str, Any] = {"alg": "AES-256-GCM-STREAM", "chunk": CHUNK, "nonce_prefix": ""}
        if secret.key is not None:
            enc["kdf"] = "key"
        else:
            enc.update(kdf="scrypt", salt=base64.b64encode(os.urandom(16)).decode(), n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
        prefix = os.urandom(8)
        enc["nonce_prefix"] = base64.b64encode(prefix).decode()
        header_obj["encryption"] = enc
    header = json.dumps(header_obj, sort_keys=True).encode("utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    with tmp.open("wb") as f, payload.open("rb") as src:
        os.chmod(tmp, 0o600)  # consultation records: readable by the service account only
        f.write(MAGIC + bytes([VERSION]) + struct.pack(">I", len(header)) + header)
        if secret is None:
            shutil.copyfileobj(src, f, CHUNK)
        else:
            aead = AESGCM(_derive(secret, header_obj["encryption"]))
            remaining, index = size, 0
            while True:
                block = src.read(CHUNK)
                remaining -= len(block)
                last = remaining <= 0
                sealed = aead.encrypt(_nonce(prefix, index), block, _aad(header, index, last))
                f.write(struct.pack(">I", len(sealed)) + sealed)
                index += 1
                if last:
                    break
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(out)


def _read_header(f: BinaryIO) -> tuple[bytes, dict[str, Any]]:
    start = f.read(len(MAGIC) + 5)
    if len(start) < len(MAGIC) + 5 or not start.startswith(MAGIC):
        raise BackupError("not a concierge backup file")
    if start[len(MAGIC)] != VERSION:
        raise BackupError(f"backup format version {start[len(MAGIC)]} is not supported")
    (length,) = struct.unpack(">I", start[len(MAGIC) + 1 :])
    header = f.read(length)
    if len(header) != length:
        raise BackupError("the backup file is truncated")
    meta: dict[str, Any] = json.loads(header)
    return header, meta


def read_info(path: Path) -> BackupInfo:
    with path.open("rb") as f:
        _, meta = _read_header(f)
    return BackupInfo(
        path=path,
        dialect=str(meta["dialect"]),
        revision=meta.get("revision"),
        created_at=dt.datetime.fromisoformat(meta["created_at"]),
        size=int(meta["size"]),
        encrypted=meta.get("encryption") is not None,
    )


def read_container(path: Path, out: Path, *, secret: Secret | None) -> dict[str, Any]:
    """Unwrap (and decrypt) a backup's payload into `out`, checking its size and SHA-256; returns the header."""
    with path.open("rb") as f, out.open("wb") as dst:
        header, meta = _read_header(f)
        enc = meta.get("encryption")
        if enc is None:
            shutil.copyfileobj(f, dst, CHUNK)
        else:
            if secret is None:
                raise BackupError("this backup is encrypted: set BACKUP__KEY or BACKUP__PASSPHRASE")
            aead = AESGCM(_derive(secret, enc))
            prefix = base64.b64decode(enc["nonce_prefix"])
            index, written = 0, 0
            while True:
                raw_len = f.read(4)
                if len(raw_len) != 4:
                    raise BackupError("the backup file is truncated")
                (length,) = struct.unpack(">I", raw_len)
                sealed = f.read(length)
                if len(sealed) != length:
                    raise BackupError("the backup file is truncated")
                last = written + length - 16 >= int(meta["size"])
                try:
                    block = aead.decrypt(_nonce(prefix, index), sealed, _aad(header, index, last))
                except InvalidTag:
                    raise BackupError("wrong key or passphrase, or the backup file was altered") from None
                dst.write(block)
                written += len(block)
                index += 1
                if last:
                    break
            if f.read(1):
                raise BackupError("the backup file has data after its last chunk")
    if out.stat().st_size != int(meta["size"]) or _sha256(out) != meta["sha256"]:
        raise BackupError("the backup's checksum does not match (the file is damaged)")
    return meta


# ----- the database side


def _sqlite_path(engine: Engine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def libpq_env(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq connection URI without the password, and the environment carrying it for pg_dump/pg_restore."""
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _revision(engine: Engine) -> str | None:
    if ALEMBIC_TABLE not in inspect(engine).get_table_names():
        return None
    with engine.connect() as conn:
        value = conn.execute(text(f"SELECT version_num FROM {ALEMBIC_TABLE}")).scalar()  # noqa: S608
    return None if value is None else str(value)


@contextmanager
def _scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="concierge-backup-") as folder:
        yield Path(folder)


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    tool = shutil.which(cmd[0])
    if tool is None:
        raise BackupError(f"{cmd[0]} not found: install the PostgreSQL client tools")
    done = subprocess.run([tool, *cmd[1:]], env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        # pg_dump's messages name objects and connection problems, never row content
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise BackupError(f"{what} failed: {last}")


def backup(engine: Engine, out: Path, *, secret: Secret | None = None) -> BackupInfo:
    """Write a consistent backup of the whole database behind `engine` to `out`."""
    dialect = engine.dialect.name
    created = dt.datetime.now(dt.UTC)
    with _scratch() as scratch:
        payload = scratch / "payload"
        if dialect == "sqlite":
            src = sqlite3.connect(_sqlite_path(engine), timeout=30)
            dst = sqlite3.connect(payload)
            try:
                src.backup(dst)  # pages=-1: one step, one consistent snapshot
            finally:
                dst.close()
                src.close()
        elif dialect == "postgresql":
            uri, env = libpq_env(engine.url)
            _run(
                ["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={payload}", uri],
                env,
                "pg_dump",
            )
        else:
            raise BackupError(f"backups of {dialect} databases are not supported")
        meta = {"format": VERSION, "dialect": dialect, "revision": _revision(engine), "created_at": created.isoformat()}
        write_container(payload, out, meta=meta, secret=secret)
    return read_info(out)


def user_tables(engine: Engine) -> list[str]:
    return [t for t in inspect(engine).get_table_names() if not t.startswith("sqlite_")]


def restore(engine: Engine, path: Path, *, secret: Secret | None = None) -> BackupInfo:
    """Restore a backup into the EMPTY database behind `engine` (no tables at all); the caller migrates it.

    A database with tables is refused: a restore never merges into or overwrites live records."""
    info = read_info(path)
    dialect = engine.dialect.name
    if info.dialect != dialect:
        raise BackupError(f"this is a {info.dialect} backup; the target database is {dialect}")
    existing = user_tables(engine)
    if existing:
        raise BackupError(
            f"the target database is not empty ({len(existing)} tables): restore only into a new, empty database"
        )
    with _scratch() as scratch:
        payload = scratch / "payload"
        read_container(path, payload, secret=secret)
        if dialect == "sqlite":
            engine.dispose()
            src = sqlite3.connect(payload)
            dst = sqlite3.connect(_sqlite_path(engine), timeout=30)
            try:
                src.backup(dst)
            finally:
                dst.close()
                src.close()
        else:
            uri, env = libpq_env(engine.url)
            _run(
                [
                    "pg_restore",
                    "--no-owner",
                    "--no-privileges",
                    "--single-transaction",
                    "--exit-on-error",
                    f"--dbname={uri}",
                    str(payload),
                ],
                env,
                "pg_restore",
            )
    return info


# ----- a folder of scheduled backups


def backup_name(at: dt.datetime) -> str:
    return f"concierge-{at.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}{SUFFIX}"


def list_backups(folder: Path) -> list[Path]:
    """The backups in `folder`, oldest first (the name carries the UTC time, so names sort by age)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(f"concierge-*{SUFFIX}") if p.is_file())


def prune(folder: Path, *, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups; returns what was removed."""
    backups = list_backups(folder)
    doomed = backups[: max(0, len(backups) - max(1, keep))]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def latest_backup(folder: Path) -> BackupInfo | None:
    for path in reversed(list_backups(folder)):
        try:
            return read_info(path)
        except (BackupError, OSError, ValueError, KeyError):
            continue
    return None
