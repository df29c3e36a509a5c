"""The `phr-gateway` command. Commands that create things print one JSON object on the last line of
stdout; errors go to stderr with a non-zero exit (DESIGN.md, 'Interfaces')."""
from __future__ import annotations

import os
import sys
from typing import Any

import click
import orjson


def _emit(obj: Any) -> None:
    click.echo(orjson.dumps(obj).decode())


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _app():
    from gateway import create_app

    return create_app()


@click.group()
def main() -> None:
    """PHR FHIR Gateway: Parse-compatible REST, FHIR R4 and SMART on FHIR over one store."""


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the migrations."""
    from gateway.migrate import upgrade

    app = _app()
    if upgrade(app.extensions["phr_db"][0], revision):
        click.echo(f"database at {revision}", err=True)
    else:
        click.echo(f"database already at {revision}", err=True)


@main.command()
def demo() -> None:
    """Load the demo data (idempotent) and print who can sign in."""
    from gateway.demo import load_demo
    from gateway.migrate import upgrade

    app = _app()
    engine, make_session = app.extensions["phr_db"]
    upgrade(engine)
    from gateway.extensions import open_session

    with open_session(make_session, app.config) as session:
        result = load_demo(session, base_url=app.config["BASE_URL"])
        session.commit()
    _emit(result)


@main.group()
def users() -> None:
    """User accounts."""


@users.command("create")
@click.option("--username", required=True)
@click.option("--password", required=True)
@click.option("--email")
@click.option("--role", type=click.Choice(["patient", "caregiver", "provider", "admin"]), default="patient",
              show_default=True)
def users_create(username: str, password: str, email: str | None, role: str) -> None:
    """Create an account (the way provider and admin accounts are made)."""
    from gateway.errors import DomainError
    from gateway.migrate import upgrade
    from gateway.services.users import UserService

    app = _app()
    upgrade(app.extensions["phr_db"][0])  # a fresh instance works at once, as `demo` and `serve` do
    with app.extensions["phr_db"][1]() as session:
        try:
            user = UserService(session).create_user(username, password, email=email, role=role)
        except DomainError as e:
            _fail(e.message)
        session.commit()
        _emit({"objectId": user.object_id, "username": user.username, "role": user.role})


@main.command("import")
@click.option("--owner", metavar="USERNAME", help="The user who owns the Profiles made from Patients.")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=str))
def import_(owner: str | None, files: tuple[str, ...]) -> None:
    """Import FHIR Bundles (JSON) or NDJSON: Patients become Profiles of the owner. One transaction per
    file; prints counts imported and skipped (with reasons), then the totals as JSON on the last line."""
    from gateway.errors import DomainError
    from gateway.extensions import open_session
    from gateway.services.importer import Importer, ImportReport, owner_by_username, read_source

    try:  # every file is read and checked before anything is written
        sources = sorted((read_source(path) for path in files), key=lambda s: s.phase)
    except DomainError as e:
        _fail(f"{e.message}; nothing was imported")
    app = _app()
    total = ImportReport()
    with open_session(app.extensions["phr_db"][1], app.config) as session:
        try:
            importer = Importer(session, owner_by_username(session, owner),
                                max_file_size=app.config["MAX_CONTENT_LENGTH"])
        except DomainError as e:
            _fail(f"{e.message}; nothing was imported")
        for source in sources:
            try:
                report = importer.import_source(source)
                session.commit()
            except Exception as e:  # noqa: BLE001 - whatever failed, this file's transaction leaves nothing
                session.rollback()
                done = f" (committed before it: {', '.join(str(s.name) for s in sources[:sources.index(source)])})"
                _fail(f"{source.name}: import failed, nothing of this file was written: {e}"
                      + (done if sources.index(source) else ""))
            click.echo(f"{source.name}: {len(source.entries)} resources")
            click.echo("\n".join(report.lines()))
            total.update(report)
    if len(sources) > 1:
        click.echo(f"total ({len(sources)} files):")
        click.echo("\n".join(total.lines()))
    _emit(total.as_json())


@main.command("export")
@click.option("--username", required=True, help="Whose record: the owner of the profiles.")
@click.option("--profile", "profile_id", help="Only this profile (default: every profile the user owns).")
@click.option("--output", type=click.Path(path_type=str),
              help="A folder, or a FILE.zip (default: the folder record-<username>).")
def export_(username: str, profile_id: str | None, output: str | None) -> None:
    """A user's whole record as FHIR NDJSON per resource type plus the documents' files and a README.
    Prints {"files", "resources", "documents", "types", "path"} on the last line."""
    from pathlib import Path

    from gateway.errors import DomainError
    from gateway.extensions import open_session
    from gateway.models import User
    from gateway.services import record_export as rx
    from gateway.services.users import UserService

    path = Path(output or f"record-{username}")
    app = _app()
    with open_session(app.extensions["phr_db"][1], app.config) as session:
        from sqlalchemy import select

        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            _fail(f"no user named {username!r}")
        try:
            ids = [p.object_id for p in rx.profiles_for(session, user.object_id, profile_id)]
        except DomainError as e:
            _fail(e.message)
        if not ids:
            _fail(f"{username} owns no profile")
        p = UserService(session).principal(user)
        total = rx.count_items(session, p, ids)
        with click.progressbar(length=total, label=f"Exporting {username}'s record", file=sys.stderr) as bar:
            if path.suffix.lower() == ".zip":
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("wb") as out:
                    summary = rx.write_record_zip(session, p, ids, out, progress=bar.update, who=username)
            else:
                path.mkdir(parents=True, exist_ok=True)
                summary = rx.write_record(session, p, ids, rx.FolderSink(path), progress=bar.update, who=username)
        session.commit()  # the audit rows
    _emit({"files": summary.files, "resources": summary.resources, "documents": summary.documents,
           "types": summary.types, "path": str(path.resolve())})


@main.command()
def worker() -> None:
    """Run Bulk Data export jobs (several workers may share one PostgreSQL)."""
    from gateway.jobs.worker import loop
    from gateway.migrate import upgrade

    app = _app()
    engine, factory = app.extensions["phr_db"]
    upgrade(engine)
    click.echo("export worker started", err=True)
    loop(factory, app.config["BASE_URL"] + "/fhir")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=None, type=int,
              help="Web processes [default: 1 on SQLite, where live events stay within a process; else 2].")
@click.option("--threads", default=32, show_default=True, type=int,
              help="Threads per worker; each open WebSocket (LiveQuery, FHIR subscription) holds one.")
@click.option("--migrate/--no-migrate", default=True, show_default=True, help="Apply migrations first.")
def serve(host: str, port: int, workers: int, threads: int, migrate: bool) -> None:
    """Run the production WSGI server (gunicorn)."""
    from gunicorn.app.base import BaseApplication

    # One pooled connection per request thread (and the hub's and a read's spare); set before any app loads.
    os.environ.setdefault("PHR_DB_POOL_SIZE", str(threads + 2))
    from gateway.ops import serving

    metrics_dir = serving.prepare(os.environ.get("PHR_METRICS_TOKEN"))  # before any metric is made
    app = _app()
    if workers is None:
        workers = 1 if app.config["DATABASE_URL"].startswith("sqlite") else 2
    if migrate:
        from gateway.migrate import upgrade

        upgrade(app.extensions["phr_db"][0])
    app.extensions["phr_db"][0].dispose()
    _check_port_free(host, port)

    class Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            # The workers share one listening socket and a new connection goes to one holding fewest
            # (gateway/live/balance.py): a few keep-alive clients then use every worker. (Left to the kernel
            # they landed unevenly: on one worker when the first to wake took them all, and with a socket
            # per worker (SO_REUSEPORT) as a hash of each connection fell: docs/PERFORMANCE.md.)
            from gateway.live import balance

            self.cfg.set("on_starting", balance.on_starting)
            # gthread (a WebSocket keeps its request thread, flask-sock), keeping a connection's thread
            # between its requests while there are threads for all (gateway/live/server.py).
            self.cfg.set("worker_class", "gateway.live.server.KeepAliveThreadWorker")
            self.cfg.set("threads", threads)
            from gateway.live.server import post_worker_init

            self.cfg.set("post_worker_init", post_worker_init)  # close sockets at once when stopping
            if metrics_dir:
                self.cfg.set("child_exit", serving.child_exit)  # its live gauges leave the sums
            # URLs carry patient ids and search values: gunicorn logs none; the gateway's own access log
            # names route templates only (gateway/ops/wsgi.py)
            self.cfg.set("accesslog", None)
            self.cfg.set("timeout", 120)
            if "control_socket_disable" in self.cfg.settings:
                # gunicorn >= 25 opens one control socket per user (~/.gunicorn): several servers on a
                # machine would share it. We do not use it.
                self.cfg.set("control_socket_disable", True)

        def load(self):
            app = _app()
            if app.config["DATABASE_URL"].startswith("sqlite") and app.config.get("EMBEDDED_WORKER", True):
                # The embedded default has no separate worker process: run one inside each web process.
                from gateway.jobs.worker import start_thread

                start_thread(app.extensions["phr_db"][1], app.config["BASE_URL"] + "/fhir")
            return app

    Server().run()


def _check_port_free(host: str, port: int) -> None:
    """A port in use is refused at once, with its reason (gunicorn would retry binding it for seconds)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # As gunicorn binds: connections of a server that just stopped (TIME_WAIT) do not make it busy.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            s.listen(1)
        except OSError as e:
            raise click.ClickException(f"cannot listen on {host}:{port}: {e.strerror}") from None


def _smart_commands() -> None:
    from gateway.smart.cli import clients, keys

    main.add_command(clients)
    main.add_command(keys)


_smart_commands()


def _ops_commands() -> None:
    from gateway.ops.cli import backup, restore

    main.add_command(backup)
    main.add_command(restore)


_ops_commands()


if __name__ == "__main__":  # pragma: no cover
    main()
