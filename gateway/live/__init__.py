"""Real-time updates: Parse LiveQuery over WebSocket at /parse, FHIR Subscriptions' websocket channel at
/fhir/ws, and the bus that carries committed changes between processes (gateway/live/bus.py)."""
from __future__ import annotations

from flask import Flask, current_app

from gateway.live.hub import Hub, shutdown_all

__all__ = ["Hub", "hub_for", "init_app", "shutdown_all"]


def init_app(app: Flask) -> None:
    """Attach the hub (nothing starts yet) and the WebSocket routes."""
    from gateway.live.ws import live_bp

    engine, factory = app.extensions["phr_db"]
    app.config.setdefault("SOCK_SERVER_OPTIONS", {"ping_interval": 25})  # keep idle sockets open through proxies
    hub = Hub(engine, factory, app.config)
    app.extensions["phr_live"] = hub
    app.register_blueprint(live_bp)
    app.before_request(hub.on_first_request)


def hub_for(app: Flask | None = None) -> Hub:
    return (app or current_app).extensions["phr_live"]
