"""Alembic environment: the store passes its engine's connection in `config.attributes`."""
from alembic import context

from mailcore.store.tables import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # `alembic` CLI use (revision --autogenerate): URL from -x url=...
        from sqlalchemy import create_engine
        url = context.get_x_argument(as_dictionary=True).get("url", "sqlite://")
        with create_engine(url).connect() as conn:
            _migrate(conn)
            conn.commit()
        return
    _migrate(connection)


def _migrate(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


run()
