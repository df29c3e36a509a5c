"""`phr-gateway backup` and `phr-gateway restore` (gateway/ops/backup.py does the work)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import orjson


def _target():
    from gateway import config
    from gateway.ops.backup import Target

    instance = config.default_instance_path()
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance / 'phr.sqlite3'}"
    return Target(database_url=url, instance=instance)


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@click.command("backup")
@click.option("--output", required=True, type=click.Path(path_type=Path),
              help="A new (or empty) folder, or FILE.tar.gz.")
def backup(output: Path) -> None:
    """Back up the database (SQLite's online backup, or pg_dump) and the instance secrets, while the server
    runs. Prints {"path", "database", "revision", "files"} on the last line."""
    from gateway.db import make_engine
    from gateway.ops.backup import BackupError, backup as make_backup

    target = _target()
    engine = make_engine(target.database_url)
    try:
        manifest = make_backup(target, engine, output)
    except BackupError as e:
        _fail(str(e))
    finally:
        engine.dispose()
    click.echo(orjson.dumps({"path": str(output.resolve()), "database": manifest["database"],
                             "revision": manifest["revision"], "files": sorted(manifest["files"])}).decode())


@click.command("restore")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that is not empty and other secrets.")
def restore(source: Path, force: bool) -> None:
    """Restore a backup (a folder, a FILE.tar.gz, or - for a .tar.gz on stdin) into this instance
    (DATABASE_URL, PHR_INSTANCE_PATH): an empty database and an instance folder without other secrets.
    Stop the server first; `serve` then applies newer migrations."""
    import shutil
    import tempfile

    from gateway.ops.backup import BackupError, restore as put_back

    target = _target()
    with tempfile.TemporaryDirectory(prefix="phr-restore-stdin-") as tmp:
        if str(source) == "-":  # (a container reads a file its user could not open, through stdin)
            source = Path(tmp) / "backup.tar.gz"
            with source.open("wb") as out:
                shutil.copyfileobj(sys.stdin.buffer, out)
        try:
            manifest = put_back(target, source, force=force)
        except BackupError as e:
            _fail(str(e))
    click.echo(orjson.dumps({"restored": str(source), "database": manifest["database"],
                             "revision": manifest["revision"], "created": manifest["created"]}).decode())
