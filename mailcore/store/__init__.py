"""The mail core's store: one SQLAlchemy code path over SQLite (default) or PostgreSQL."""
from .db import Store, StoreError, default_url, open_store

__all__ = ["Store", "StoreError", "default_url", "open_store"]
