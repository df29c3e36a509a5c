"""File bytes. Kept in the database by default, so every web process and worker on every machine that
shares the PostgreSQL sees the same files, and a backup of the database is a backup of the record."""
from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gateway.models import FileBlob


class DatabaseBlobStore:
    def put(self, session: Session, name: str, data: bytes) -> None:
        session.add(FileBlob(name=name, data=data))

    def get(self, session: Session, name: str) -> bytes | None:
        return session.scalar(select(FileBlob.data).where(FileBlob.name == name))

    def delete(self, session: Session, name: str) -> None:
        session.execute(delete(FileBlob).where(FileBlob.name == name))


blob_store = DatabaseBlobStore()
