"""Configuration from environment variables (documented in the README), with secrets generated at first
start and kept in the instance folder, never in the repository."""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

ENV_KEYS = {
    "DATABASE_URL": "DATABASE_URL",
    "PHR_BASE_URL": "BASE_URL",
    "PHR_APP_ID": "APP_ID",
    "PHR_MASTER_KEY": "MASTER_KEY",
    "PHR_REST_API_KEY": "REST_API_KEY",
    "PHR_JAVASCRIPT_KEY": "JAVASCRIPT_KEY",
    "PHR_INSTANCE_PATH": "INSTANCE_PATH",
    "PHR_MAX_BODY_BYTES": "MAX_CONTENT_LENGTH",
    "PHR_SESSION_LENGTH_SECONDS": "SESSION_LENGTH_SECONDS",
    "PHR_FILE_URL_TTL_SECONDS": "FILE_URL_TTL_SECONDS",
    "PHR_MASTER_KEY_IPS": "MASTER_KEY_IPS",
    "PHR_CALLER_CACHE_SECONDS": "CALLER_CACHE_SECONDS",
    "PHR_DB_POOL_SIZE": "DB_POOL_SIZE",
    # Operations (gateway/ops): /metrics answers only this bearer token; the access log can be turned off
    "PHR_METRICS_TOKEN": "METRICS_TOKEN",
    "PHR_ACCESS_LOG": "ACCESS_LOG",
    # FHIR rest-hook Subscriptions (gateway/subscriptions/resthook.py has the defaults)
    "PHR_SUBSCRIPTION_ATTEMPTS": "SUBSCRIPTION_ATTEMPTS",
    "PHR_SUBSCRIPTION_RETRY_BASE_SECONDS": "SUBSCRIPTION_RETRY_BASE_SECONDS",
    "PHR_SUBSCRIPTION_MAX_FAILURES": "SUBSCRIPTION_MAX_FAILURES",
    "PHR_SUBSCRIPTION_TIMEOUT_SECONDS": "SUBSCRIPTION_TIMEOUT_SECONDS",
}

DEFAULTS: dict[str, Any] = {
    "BASE_URL": "http://127.0.0.1:8080",
    "APP_ID": None,
    "REST_API_KEY": None,
    "JAVASCRIPT_KEY": None,
    "MAX_CONTENT_LENGTH": 20 * 1024 * 1024,  # Parse Server's default maxUploadSize (20 MB)
    "SESSION_LENGTH_SECONDS": 365 * 24 * 3600,  # Parse Server's default sessionLength
    "FILE_URL_TTL_SECONDS": 3600,
    "MASTER_KEY_IPS": None,  # None: any address; else a comma-separated allow list
    # token -> principal kept per process at most this long (gateway/caller_cache.py); 0: always look up
    "CALLER_CACHE_SECONDS": 5,
    # PostgreSQL connections a process keeps open for reuse; `serve` sets it to its threads per worker + 2
    # (fewer than the threads in use at once means a new connection, and a new server process, per request)
    "DB_POOL_SIZE": 5,
    "METRICS_TOKEN": None,  # None: no /metrics and no request metrics kept
    "ACCESS_LOG": True,  # one JSON line per request on stdout
}

_INT_KEYS = ("MAX_CONTENT_LENGTH", "SESSION_LENGTH_SECONDS", "FILE_URL_TTL_SECONDS", "DB_POOL_SIZE")


def _switch(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "off", "no")
    return bool(value)


def default_instance_path() -> Path:
    return Path(os.environ.get("PHR_INSTANCE_PATH") or Path.cwd() / "instance")


def load(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then environment variables, then explicit overrides (tests pass their own)."""
    cfg = dict(DEFAULTS)
    for env, key in ENV_KEYS.items():
        if os.environ.get(env):
            cfg[key] = os.environ[env]
    cfg.update(overrides or {})
    for key in _INT_KEYS:
        cfg[key] = int(cfg[key])
    cfg["CALLER_CACHE_SECONDS"] = float(cfg["CALLER_CACHE_SECONDS"])
    cfg["ACCESS_LOG"] = _switch(cfg["ACCESS_LOG"])
    instance = Path(cfg.get("INSTANCE_PATH") or default_instance_path())
    instance.mkdir(parents=True, exist_ok=True)
    cfg["INSTANCE_PATH"] = str(instance)
    cfg.setdefault("DATABASE_URL", f"sqlite:///{instance / 'phr.sqlite3'}")
    cfg["BASE_URL"] = cfg["BASE_URL"].rstrip("/")
    stored = instance_secrets(instance)
    cfg.setdefault("MASTER_KEY", stored["master_key"])
    cfg.setdefault("SECRET_KEY", stored["secret_key"])
    return cfg


def instance_secrets(instance: Path) -> dict[str, str]:
    """Secrets made on first start (0600, created atomically so concurrent workers agree)."""
    path = instance / "secrets.json"
    fresh = {"master_key": secrets.token_urlsafe(32), "secret_key": secrets.token_urlsafe(48)}
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):
            text = path.read_text()
            if text.strip():
                return json.loads(text)
            import time

            time.sleep(0.05)
        raise RuntimeError(f"{path} is empty")
    with os.fdopen(fd, "w") as f:
        json.dump(fresh, f)
    return fresh
