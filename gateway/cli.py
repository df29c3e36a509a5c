"""The `phr-gateway` command. Commands that create things print one JSON object on the last line of
stdout; errors go to stderr with a non-zero exit (DESIGN.md, 'Interfaces')."""
from __future__ import annotations

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
    upgrade(app.extensions["phr_db"][0], revision)
    click.echo(f"database at {revision}", err=True)


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
    from gateway.services.users import UserService

    app = _app()
    with app.extensions["phr_db"][1]() as session:
        try:
            user = UserService(session).create_user(username, password, email=email, role=role)
        except DomainError as e:
            _fail(e.message)
        session.commit()
        _emit({"objectId": user.object_id, "username": user.username, "role": user.role})


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
@click.option("--migrate/--no-migrate", default=True, show_default=True, help="Apply migrations first.")
def serve(host: str, port: int, workers: int, migrate: bool) -> None:
    """Run the production WSGI server (gunicorn)."""
    from gunicorn.app.base import BaseApplication

    if migrate:
        from gateway.migrate import upgrade

        app = _app()
        upgrade(app.extensions["phr_db"][0])
        app.extensions["phr_db"][0].dispose()

    class Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", 4)
            self.cfg.set("accesslog", None)  # URLs carry patient ids and search values: no access log
            self.cfg.set("timeout", 120)

        def load(self):
            return _app()

    Server().run()


if __name__ == "__main__":  # pragma: no cover
    main()
