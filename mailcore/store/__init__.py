"""The mail core's store: one SQLAlchemy code path over SQLite (default) or PostgreSQL.

- db: opening a store by URL, migrations (Alembic, migrations/), transactions
- tables: the schema, one SQLAlchemy table per kind of row
- crypto: secrets at rest (scrypt password hashes, Fernet under the master key)

Imports nothing of mailcore's: every other package may import it.
"""
from .db import Store, StoreError, default_url, open_store

__all__ = ["Store", "StoreError", "default_url", "open_store"]
