"""`phr-gateway clients create` and `phr-gateway keys rotate` (DESIGN.md, 'Interfaces')."""
from __future__ import annotations

import json
import sys

import click
import orjson


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _session():
    from gateway import create_app
    from gateway.extensions import open_session
    from gateway.migrate import upgrade

    app = create_app()
    upgrade(app.extensions["phr_db"][0])  # a fresh instance works at once
    return app, open_session(app.extensions["phr_db"][1], app.config)


@click.group()
def clients() -> None:
    """OAuth clients: SMART apps and back-end systems."""


@clients.command("create")
@click.option("--name", required=True, help="What people see on the consent page.")
@click.option("--public", "kind", flag_value="none", default=True, help="A public app (PKCE, no secret).")
@click.option("--secret", "kind", flag_value="client_secret_basic", help="A confidential app with a secret.")
@click.option("--jwks", "jwks_file", type=click.Path(exists=True, dir_okay=False),
              help="A JWKS file with the app's public keys (private_key_jwt).")
@click.option("--jwks-url", help="Where the app publishes its public keys (private_key_jwt).")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="An exact redirect URI (repeatable).")
@click.option("--scope", help="The most the client may be granted (space-separated SMART scopes).")
@click.option("--provider", "provider_id", help="The provider a back-end client acts for.")
def clients_create(name: str, kind: str, jwks_file: str | None, jwks_url: str | None, redirect_uris: tuple[str, ...],
                   scope: str | None, provider_id: str | None) -> None:
    """Register a client; prints {"client_id", "client_secret" (with --secret)} on the last line."""
    from gateway.errors import DomainError
    from gateway.smart.clients import create_client

    jwks = None
    if jwks_file:
        try:
            with open(jwks_file, encoding="utf-8") as f:
                jwks = json.load(f)
        except (OSError, ValueError) as e:
            _fail(f"cannot read the JWKS file: {e}")
    if (jwks_file or jwks_url) and kind == "client_secret_basic":
        _fail("choose one of --public, --secret, --jwks, --jwks-url")
    method = "private_key_jwt" if (jwks_file or jwks_url) else kind
    _, session = _session()
    with session:
        try:
            made = create_client(session, name, auth_method=method, redirect_uris=list(redirect_uris), scope=scope,
                                 jwks=jwks, jwks_url=jwks_url, provider_id=provider_id)
        except DomainError as e:
            _fail(e.message)
        session.commit()
        click.echo(f"client {made.row.name!r}: {method}, scope {made.row.scope!r}", err=True)
        click.echo(orjson.dumps(made.as_json()).decode())


@click.group()
def keys() -> None:
    """The server's id_token signing keys."""


@keys.command("rotate")
def keys_rotate() -> None:
    """Sign with a new key from now on; old keys stay published for verification."""
    from gateway.smart.keys import rotate

    _, session = _session()
    with session:
        row = rotate(session)
        session.commit()
        click.echo(orjson.dumps({"kid": row.kid}).decode())
