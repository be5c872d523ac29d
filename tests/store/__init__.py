"""Tests of mailcore.store: migrations, crypto, SQLite and PostgreSQL."""
