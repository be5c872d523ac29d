"""Opening the store, migrating it, and transactions.

The URL comes from `--store`, else `MAILCORE_STORE_URL`, else a SQLite file under the state
directory (`MAILCORE_STATE_DIR`, default `./state`). SQLite runs in WAL mode with a busy timeout;
a transaction opened with `immediate=True` takes SQLite's write lock at BEGIN, the equivalent of
the row lock PostgreSQL takes with SELECT ... FOR UPDATE.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import OperationalError, SQLAlchemyError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
STATE_DIR_ENV = "MAILCORE_STATE_DIR"
STORE_URL_ENV = "MAILCORE_STORE_URL"


class StoreError(Exception):
    """The store cannot be opened or used; the message says why and what to do."""


def state_dir(environ=os.environ) -> Path:
    return Path(environ.get(STATE_DIR_ENV) or "state").resolve()


def private_dir(path: Path | str, *, tighten: bool = False) -> Path:
    """Create `path` (and missing parents) as 0700. An existing directory is left alone unless
    `tighten` (the state directory is mailcore's own: it is made 0700 when we own it)."""
    path = Path(path)
    missing, p = [], path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    for p in ([path] if tighten else []) + missing:
        _chmod_own(p, 0o700)
    return path


def private_file(path: Path | str) -> Path:
    """Make sure `path` exists and is 0600 (created so, never readable by others in between)."""
    path = Path(path)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    _chmod_own(path, 0o600)
    return path


def _chmod_own(path: Path, mode: int) -> None:
    try:
        if path.stat().st_uid == os.getuid() and (path.stat().st_mode & 0o777) != mode:
            os.chmod(path, mode)
    except OSError:
        pass  # not ours to change


def default_url(environ=os.environ) -> str:
    url = environ.get(STORE_URL_ENV)
    if url:
        return url
    return f"sqlite:///{state_dir(environ) / 'mailcore.db'}"


def _sqlite_events(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see "begin" below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL" if os.environ.get("MAILCORE_SQLITE_SYNC") == "normal" else "PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("immediate") else "BEGIN")


class Store:
    def __init__(self, url: str):
        self.url = url
        self.dialect = sa.engine.make_url(url).get_backend_name()
        kwargs = {}
        if self.dialect == "sqlite":
            path = sa.engine.make_url(url).database
            if path and path != ":memory:" and not path.startswith("file:"):
                # the store holds encrypted secrets and the queue's messages: owner only. SQLite
                # gives the -wal and -shm files the database file's mode.
                parent = Path(path).resolve().parent
                private_dir(parent, tighten=parent == state_dir())
                private_file(path)
                for extra in ("-wal", "-shm", "-journal"):
                    if Path(path + extra).exists():
                        _chmod_own(Path(path + extra), 0o600)
        elif self.dialect == "postgresql" and url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        self.engine = sa.create_engine(url, future=True, **kwargs)
        if self.dialect == "sqlite":
            _sqlite_events(self.engine)

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)})"

    def _alembic(self, connection) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = connection
        return cfg

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str:
        return ScriptDirectory(str(MIGRATIONS)).get_current_head()

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        try:
            if self.current_revision() == self.head_revision():
                return
            with self.engine.begin() as conn:
                command.upgrade(self._alembic(conn), "head")
        except OperationalError as exc:
            raise StoreError(f"cannot migrate the store at {self!r}: {exc.orig}") from None

    def check_schema(self) -> None:
        current, head = self.current_revision(), self.head_revision()
        if current != head:
            raise StoreError(f"the store is at migration {current or 'none'}, this code needs {head}; run `invoke migrate` "
                             "(apply migrates automatically)")

    @contextmanager
    def transaction(self, *, immediate: bool = False):
        """One transaction: commit on success, roll back on any exception.

        A transaction that reads and then writes must pass immediate=True: on SQLite a deferred
        transaction that upgrades from reading to writing while another writer is active fails at
        once with "database is locked" (its snapshot is stale, so waiting cannot help)."""
        conn = self.engine.connect()
        if immediate:
            conn = conn.execution_options(immediate=True)
        try:
            with conn.begin():
                yield conn
        finally:
            conn.close()

    def dispose(self) -> None:
        self.engine.dispose()


def open_store(url: str | None = None, *, migrate: bool = True) -> Store:
    try:
        store = Store(url or default_url())
        if migrate:
            store.migrate()
        return store
    except StoreError:
        raise
    except (SQLAlchemyError, ImportError) as exc:
        raise StoreError(f"cannot open the store {url or default_url()}: {getattr(exc, 'orig', None) or exc}") from None
