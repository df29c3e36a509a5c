"""Extension singletons bound to an app later with init_app (STYLE.md, 1)."""
from __future__ import annotations

from flask import Flask, g
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from gateway.db import make_engine, make_sessionmaker


class Database:
    """The engine and a per-request Session (`db.session`), closed when the request ends."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.sessionmaker: sessionmaker[Session] | None = None

    def init_app(self, app: Flask) -> None:
        url = app.config["DATABASE_URL"]
        pool = {} if url.startswith("sqlite") else {"pool_size": app.config["DB_POOL_SIZE"]}
        engine = app.config.get("ENGINE") or make_engine(url, **pool)
        # Tests hand in a factory bound to one connection whose outer transaction they roll back.
        factory = app.config.get("SESSION_FACTORY") or make_sessionmaker(engine)
        app.extensions["phr_db"] = (engine, factory)
        app.teardown_appcontext(self._close)

    @property
    def session(self) -> Session:
        if "db_session" not in g:
            g.db_session = self.new_session()
        return g.db_session

    def new_session(self) -> Session:
        from flask import current_app

        return request_session(current_app)

    @staticmethod
    def _close(_exc) -> None:
        s = g.pop("db_session", None)
        if s is not None:
            s.close()


def request_session(app: Flask) -> Session:
    """A web request's Session: on PostgreSQL its transaction begins at its first write (gateway/pg.py)."""
    from gateway.pg import DEFERRED_BEGIN

    session = open_session(app.extensions["phr_db"][1], app.config)
    session.info[DEFERRED_BEGIN] = True
    return session


def commit(session: Session) -> None:
    """Commit what a request did. One that began no transaction and holds no pending objects (a read served
    by prepared statements alone, as the owner's GET) has nothing to commit: Session.commit would begin and
    end an empty transaction and run every commit hook, ~10 % of a native GET's CPU. Buffered rows and
    change events cannot be waiting then: write_buffer scopes send theirs as they end, which begins the
    transaction, and events come with the writes."""
    if session.in_transaction() or session.new or session.dirty or session.deleted:
        session.commit()


def open_session(factory: sessionmaker[Session], config) -> Session:
    """A Session carrying what services need to know of the app (the FHIR base for the mappings)."""
    session = factory()
    session.info["fhir_base"] = config["BASE_URL"] + "/fhir"
    return session


db = Database()
