"""Backup and restore of a whole instance: the database and the instance secrets.

Everything the gateway keeps is in the database (records, users, sessions, SMART clients and grants, our
id_token signing keys, uploaded files and export files: gateway/storage.py keeps file bytes there) except
`<instance>/secrets.json`: the master key (unless PHR_MASTER_KEY sets it) and the secret that signs file
URLs and page cookies. A backup holds both, and a manifest with each file's SHA-256:

- SQLite (the embedded default): a consistent copy made while the server runs, by SQLite's online backup
  API (sqlite3.Connection.backup), as `phr.sqlite3`;
- PostgreSQL: `pg_dump --format=custom` (one consistent snapshot) as `phr.pgdump`, restored by
  `pg_restore` in one transaction. Credentials go to pg_dump in its environment, never on its command line.

A backup is a folder, or a FILE.tar.gz. Restore goes into an empty database and an instance folder without
other secrets (`force` replaces them); then `serve` applies any newer migrations as at every start.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import Engine, make_url

FORMAT = 1
SQLITE_FILE = "phr.sqlite3"
PG_FILE = "phr.pgdump"
SECRETS = "secrets.json"
MANIFEST = "manifest.json"


class BackupError(Exception):
    """A backup cannot be made or restored; the message says why (nothing was changed)."""


@dataclass(frozen=True)
class Target:
    """Where an instance lives: its database URL and instance folder."""

    database_url: str
    instance: Path

    @property
    def kind(self) -> str:
        return "sqlite" if self.database_url.startswith("sqlite") else "postgresql"


# ---- making one ----

def backup(target: Target, engine: Engine, output: Path) -> dict:
    """Write a backup of `target` to `output` (a new or empty folder, or FILE.tar.gz); returns its
    manifest."""
    archive = output.name.endswith((".tar.gz", ".tgz"))
    if archive:
        if output.exists():
            raise BackupError(f"{output} exists already")
        folder = Path(tempfile.mkdtemp(prefix="phr-backup-"))
    else:
        if output.exists() and any(output.iterdir()):
            raise BackupError(f"{output} is not empty")
        output.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder = output
    try:
        secrets = target.instance / SECRETS
        if not secrets.exists():
            raise BackupError(f"{secrets} is missing: is PHR_INSTANCE_PATH the instance's folder?")
        _copy_private(secrets, folder / SECRETS)
        revision = _revision(engine)
        if target.kind == "sqlite":
            _sqlite_backup(_sqlite_path(target.database_url), folder / SQLITE_FILE)
            files = [SECRETS, SQLITE_FILE]
        else:
            _pg_dump(target.database_url, folder / PG_FILE)
            files = [SECRETS, PG_FILE]
        manifest = {"format": FORMAT, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "database": target.kind, "revision": revision,
                    "files": {name: _sha256(folder / name) for name in files}}
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if archive:
            output.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
                for name in [MANIFEST, *files]:
                    tar.add(folder / name, arcname=name)
        return manifest
    finally:
        if archive:
            shutil.rmtree(folder, ignore_errors=True)


def _revision(engine: Engine) -> str | None:
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _sqlite_path(url: str) -> Path:
    path = make_url(url).database
    if not path or path == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(path)


def _sqlite_backup(source: Path, dest: Path) -> None:
    """SQLite's online backup: a consistent copy while other connections read and write."""
    if not source.is_file():
        raise BackupError(f"{source} does not exist")
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(dest)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    os.chmod(dest, 0o600)


def _libpq(url: str) -> tuple[dict[str, str], str | None]:
    """The libpq environment for a SQLAlchemy URL (password included, so it is on no command line) and the
    schema its search_path names, if any."""
    u = make_url(url)
    env = {"PGHOST": u.host or "", "PGPORT": str(u.port or ""), "PGUSER": u.username or "",
           "PGDATABASE": u.database or "", "PGPASSWORD": u.password or ""}
    options = u.query.get("options") or ""
    if isinstance(options, tuple):
        options = " ".join(options)
    schema = None
    for option in options.split():
        if option.startswith("-csearch_path="):
            schema = option.split("=", 1)[1].split(",")[0].strip() or None
    if options:
        env["PGOPTIONS"] = options
    for key in ("sslmode", "sslrootcert", "sslcert", "sslkey"):
        if u.query.get(key):
            env[f"PG{key.upper()}"] = str(u.query[key])
    return {k: v for k, v in env.items() if v}, schema


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed (PostgreSQL's client tools: Debian's postgresql-client)")
    return found


def _run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed: {done.stderr.strip()[-2000:]}")


def _pg_dump(url: str, dest: Path) -> None:
    env, schema = _libpq(url)
    command = [_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--file={dest}"]
    if schema:  # the instance lives in its own schema: that schema only
        command.append(f"--schema={schema}")
    _run(command, env)
    os.chmod(dest, 0o600)


# ---- restoring one ----

def read(source: Path, work: Path) -> tuple[Path, dict]:
    """The backup's folder (a FILE.tar.gz is unpacked into `work`) and its manifest, every file checked."""
    if source.is_file():
        try:
            with tarfile.open(source, "r:*") as tar:
                tar.extractall(work, filter="data")  # no absolute paths, links or devices
        except (tarfile.TarError, OSError) as e:
            raise BackupError(f"{source} is not a readable backup archive: {e}") from None
        folder = work
    elif source.is_dir():
        folder = source
    else:
        raise BackupError(f"{source} does not exist")
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        raise BackupError(f"{source} has no readable {MANIFEST}: not a backup of this gateway") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"backup format {manifest.get('format')!r} is not one this version reads "
                          f"({FORMAT})")
    for name, digest in manifest.get("files", {}).items():
        path = folder / name
        if Path(name).name != name or not path.is_file() or _sha256(path) != digest:
            raise BackupError(f"{name} is missing or does not match the manifest: the backup is damaged")
    return folder, manifest


def restore(target: Target, source: Path, *, force: bool = False) -> dict:
    """Put a backup into `target`: its database (which must be empty unless `force`) and its secrets."""
    with tempfile.TemporaryDirectory(prefix="phr-restore-") as work:
        folder, manifest = read(source, Path(work))
        if manifest["database"] != target.kind:
            raise BackupError(f"this is a {manifest['database']} backup; DATABASE_URL is {target.kind}")
        _known_revision(manifest.get("revision"))
        secrets = target.instance / SECRETS
        if secrets.exists() and not force and secrets.read_bytes() != (folder / SECRETS).read_bytes():
            raise BackupError(f"{secrets} holds other secrets; restore into a fresh instance folder, or "
                              "--force to replace them")
        tables = _tables(target.database_url)
        if tables and not force:
            raise BackupError(f"the database is not empty ({len(tables)} tables); restore into an empty one, "
                              "or --force to replace it")
        if target.kind == "sqlite":
            _sqlite_restore(folder / SQLITE_FILE, _sqlite_path(target.database_url))
        else:
            _pg_restore(target.database_url, folder / PG_FILE, clean=bool(tables))
        target.instance.mkdir(parents=True, exist_ok=True)
        _copy_private(folder / SECRETS, secrets)
        return manifest


def _known_revision(revision: str | None) -> None:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from gateway.migrate import alembic_config

    if revision is None:
        return
    try:
        ScriptDirectory.from_config(alembic_config()).get_revision(revision)
    except CommandError:
        raise BackupError(f"the backup's schema ({revision}) is newer than this version of the gateway "
                          "knows: restore it with the version that made it") from None


def _tables(url: str) -> list[str]:
    """The target database's tables (a SQLite file that does not exist yet has none, and is not made)."""
    from gateway.db import make_engine

    if url.startswith("sqlite") and not _sqlite_path(url).exists():
        return []
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return inspect(conn).get_table_names()
    finally:
        engine.dispose()


def _sqlite_restore(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro&immutable=1", uri=True)  # a file nothing else writes
    dst = sqlite3.connect(dest)
    try:
        src.backup(dst)  # page by page into the target, replacing what it held
    finally:
        dst.close()
        src.close()
    os.chmod(dest, 0o600)


def _pg_restore(url: str, dump: Path, *, clean: bool) -> None:
    env, _schema = _libpq(url)
    command = [_tool("pg_restore"), "--no-owner", "--no-privileges", "--single-transaction",
               "--exit-on-error", f"--dbname={env.get('PGDATABASE', '')}"]
    if clean:
        command += ["--clean", "--if-exists"]
    _run(command + [str(dump)], env)


# ---- helpers ----

def _copy_private(source: Path, dest: Path) -> None:
    """Copy a secret file: readable by its owner only from the moment it exists, replaced atomically."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(source.read_bytes())
    os.replace(tmp, dest)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
