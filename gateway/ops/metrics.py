"""Prometheus metrics (prometheus_client), served at /metrics when PHR_METRICS_TOKEN is set.

Under `phr-gateway serve` every gunicorn worker is a process of its own, so the values live in files
(prometheus_client's multiprocess mode: PROMETHEUS_MULTIPROC_DIR, one mmap'd file per worker and kind of
metric) and a scrape answered by any worker adds up all of them. That mode is chosen when prometheus_client
is first imported, so the metrics here are made on first use, never at import: `serve` sets the folder
before anything touches them (gateway/ops/serving.py).

Label values are all bounded: faces, route templates (never a path's ids or a query), methods, statuses.
What the database knows (export jobs) is read at scrape time; what a process knows (its pool, its sockets)
is counted as it changes, in gauges summed over the live workers ("livesum").
"""
from __future__ import annotations

import os
import threading
import weakref
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine

#: Seconds. Most reads answer in about a millisecond; writes, searches and exports take longer.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: The only methods named in labels; anything else is "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Export job states an operator watches (the others are history).
JOB_STATES = ("queued", "running")


class _Metrics:
    """This process's metric objects. Registered in no registry: a scrape builds one (see `scrape`)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

        disable_created_metrics()  # no *_created series (multiprocess mode has none either)
        live = {"multiprocess_mode": "livesum", "registry": None}  # summed over the live workers

        self.requests = Counter("phr_http_requests", "HTTP requests answered, by face, route template, "
                                "method and status.", ("face", "route", "method", "status"), registry=None)
        self.latency = Histogram("phr_http_request_duration_seconds", "Time from a request's arrival to "
                                 "its answer (its body, when streamed), by face, route template and method.",
                                 ("face", "route", "method"), buckets=LATENCY_BUCKETS, registry=None)
        self.websockets = Gauge("phr_websockets_open", "WebSockets open now (LiveQuery, FHIR "
                                "subscriptions).", ("channel",), **live)
        self.pool_in_use = Gauge("phr_db_pool_connections_in_use", "Database connections checked out of the "
                                 "web processes' pools now.", **live)
        self.pool_size = Gauge("phr_db_pool_size", "Connections the web processes' pools keep open for "
                               "reuse (more are opened past it, up to the overflow).", **live)
        self.pool_overflow = Gauge("phr_db_pool_max_overflow", "Connections the pools may open beyond "
                                   "their size.", **live)
        self.login_failures = Counter("phr_login_failures", "Sign-ins refused for a wrong user name or "
                                      "password, by way in (api: native REST and GraphQL; page: the SMART "
                                      "sign-in page).", ("via",), registry=None)
        self.login_lockouts = Counter("phr_login_lockouts", "Accounts or addresses locked out after "
                                      "repeated failed sign-ins, by way in.", ("via",), registry=None)
        # Series that exist from the start (a dashboard shows 0, not "no data")
        for channel in ("livequery", "fhir-subscription"):
            self.websockets.labels(channel)
        for via in ("api", "page"):
            self.login_failures.labels(via)
            self.login_lockouts.labels(via)

    def collectors(self) -> list[Any]:
        return [self.requests, self.latency, self.websockets, self.pool_in_use, self.pool_size,
                self.pool_overflow, self.login_failures, self.login_lockouts]


_metrics: _Metrics | None = None
_made = threading.Lock()


def metrics() -> _Metrics:
    """The process's metrics, made on first use (after `serve` chose the multiprocess folder)."""
    global _metrics
    if _metrics is None:
        with _made:
            if _metrics is None:
                _metrics = _Metrics()
    return _metrics


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


# ---- what the rest of the gateway reports ----

def login_failed(via: str) -> None:
    """A sign-in refused for a wrong user name or password (`via`: "api" or "page")."""
    metrics().login_failures.labels(via).inc()


def login_locked_out(via: str) -> None:
    """An account or address was locked out after repeated failures (the lockout's own code calls it)."""
    metrics().login_lockouts.labels(via).inc()


def websocket_opened(channel: str) -> None:
    metrics().websockets.labels(channel).inc()


def websocket_closed(channel: str) -> None:
    metrics().websockets.labels(channel).dec()


_instrumented: weakref.WeakSet[Engine] = weakref.WeakSet()


def watch_pool(engine: Engine) -> None:
    """Count this engine's checked-out connections as they come and go (once per engine): a scrape is
    answered by one worker, which cannot look into the others' pools."""
    with _made:
        if engine in _instrumented:
            return
        _instrumented.add(engine)
    m = metrics()
    pool = engine.pool
    size = getattr(pool, "size", None)
    if callable(size):
        m.pool_size.inc(size())
        overflow = getattr(pool, "_max_overflow", 0)
        m.pool_overflow.inc(max(overflow, 0))
    in_use = m.pool_in_use

    @event.listens_for(engine, "checkout")
    def _checkout(*_args) -> None:
        in_use.inc()

    @event.listens_for(engine, "checkin")
    def _checkin(*_args) -> None:
        in_use.dec()


class _DatabaseCollector:
    """What the database knows, read at scrape time: export jobs waiting or running (one small query on an
    index, ix_export_job_status)."""

    def __init__(self, factory) -> None:
        self.factory = factory

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        from gateway.models import ExportJob

        family = GaugeMetricFamily("phr_export_jobs", "Bulk Data export jobs by state (queued, running).",
                                   labels=("state",))
        with self.factory() as session:
            counts = dict(session.execute(select(ExportJob.status, func.count())
                                          .where(ExportJob.status.in_(JOB_STATES)).group_by(ExportJob.status)).all())
        for state in JOB_STATES:
            family.add_metric((state,), counts.get(state, 0))
        yield family


def scrape(session_factory) -> tuple[bytes, str]:
    """The exposition text of every worker's metrics (or this process's alone when not under `serve`) and
    the database's, and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    if multiprocess():
        from prometheus_client import multiprocess as mp

        mp.MultiProcessCollector(registry)
    else:
        for collector in metrics().collectors():
            registry.register(collector)
    registry.register(_DatabaseCollector(session_factory))
    return generate_latest(registry), CONTENT_TYPE_LATEST
