"""The WebSocket endpoints (flask-sock: a WebSocket per request thread, which gunicorn's gthread workers
carry): Parse LiveQuery at /parse (where the Parse SDKs look, `Parse.liveQueryServerURL`) and the FHIR
Subscription websocket channel at /fhir/ws."""
from __future__ import annotations

from flask import Blueprint, current_app
from flask_sock import ConnectionClosed, Sock
from simple_websocket import Server

from gateway.errors import DomainError
from gateway.live.hub import Hub
from gateway.live.livequery import LiveQueryClient
from gateway.ops.metrics import websocket_closed, websocket_opened

live_bp = Blueprint("live", __name__)
sock = Sock()
#: How often a socket's thread looks up from receive() to see whether the process is stopping.
RECEIVE_TIMEOUT = 1.0


def _serve(ws: Server, hub: Hub, client, channel: str) -> None:
    hub.attach(client)
    websocket_opened(channel)
    try:
        while not hub.stopping:
            message = ws.receive(timeout=RECEIVE_TIMEOUT)
            if message is not None:
                client.handle(message)
    except ConnectionClosed:
        pass
    finally:
        websocket_closed(channel)
        hub.detach(client)


def _closer(ws: Server):
    def close() -> None:
        try:
            ws.close(reason=1001, message="server going away")
        except Exception:  # noqa: BLE001 - already closed
            pass
    return close


@sock.route("/parse", bp=live_bp)
def parse_live_query(ws: Server) -> None:
    """Parse LiveQuery (connect, subscribe, unsubscribe; create/update/enter/leave/delete events)."""
    hub = current_app.extensions["phr_live"]
    _serve(ws, hub, LiveQueryClient(hub, ws.send, _closer(ws)), "livequery")


@sock.route("/parse/", bp=live_bp)
def parse_live_query_slash(ws: Server) -> None:
    """The same, for clients configured with a trailing slash."""
    parse_live_query(ws)


@sock.route("/fhir/ws", bp=live_bp)
def fhir_subscription_socket(ws: Server) -> None:
    """FHIR R4 Subscription websocket channel: `bind <id>` -> `bound <id>`, then `ping <id>` per match."""
    from gateway.subscriptions.websocket import FhirSocketClient

    hub = current_app.extensions["phr_live"]
    try:
        principal_now = _fhir_credentials()
    except DomainError as e:
        ws.send(f"error 401 {e.message}")
        return
    _serve(ws, hub, FhirSocketClient(hub, principal_now, ws.send, _closer(ws)), "fhir-subscription")


def _fhir_credentials():
    """Who opened the socket, as the FHIR face authenticates (session token, master key, bearer token),
    and how to ask again at each event: a session token or an access token is looked up each time, so a
    logout, or a revoked or expired token, stops the pings."""
    from flask import request

    from gateway.extensions import db
    from gateway.fhir.auth import current_principal
    from gateway.services.users import UserService

    first = current_principal()
    db.session.commit()
    token = request.headers.get("X-Parse-Session-Token")
    if token and not request.headers.get("X-Parse-Master-Key"):
        def now(session):
            try:
                users = UserService(session)
                return users.principal(users.session_for_token(token)[1])
            except DomainError:
                return None
        return now
    scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and bearer.strip():
        from gateway.smart.tokens import live_access_token

        def still(session):  # a revoked or expired token stops the pings
            return first if live_access_token(session, bearer.strip()) is not None else None
        return still
    return lambda session: first
