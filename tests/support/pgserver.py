"""A throwaway PostgreSQL server on loopback for the test session (Debian's postgresql package).

Uses MAILCORE_TEST_PG_URL when set; otherwise runs initdb + pg_ctl in a temporary directory
(as the `postgres` user when the tests run as root, since PostgreSQL refuses to run as root).
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import sqlalchemy as sa


class PostgresUnavailable(Exception):
    pass


def _bin(exe: str) -> str:
    found = shutil.which(exe) or next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{exe}"), reverse=True)), None)
    if not found:
        raise PostgresUnavailable(f"{exe} not found: install the Debian package postgresql (`invoke setup`)")
    return str(found)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self):
        self.dir: Path | None = None
        self.url: str | None = None
        self._owned = False

    def start(self) -> "PostgresServer":
        if os.environ.get("MAILCORE_TEST_PG_URL"):
            self.url = os.environ["MAILCORE_TEST_PG_URL"]
            return self
        initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
        self.dir = Path(tempfile.mkdtemp(prefix="mailcore-pg-"))
        prefix: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            prefix = ["runuser", "-u", "postgres", "--"]
        data = self.dir / "data"
        port = _free_port()
        subprocess.run(prefix + [initdb, "-D", str(data), "-A", "trust", "-U", "mailcore", "--no-sync", "-E", "UTF8"],
                       check=True, capture_output=True)
        opts = f"-p {port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=100"
        subprocess.run(prefix + [pg_ctl, "-D", str(data), "-o", opts, "-l", str(self.dir / "log"), "-w", "start"],
                       check=True, capture_output=True)
        self._stop_cmd = prefix + [pg_ctl, "-D", str(data), "-m", "immediate", "stop"]
        self._owned = True
        self.url = f"postgresql+psycopg://mailcore@127.0.0.1:{port}/postgres"
        return self

    def new_database(self) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        return str(sa.engine.make_url(self.url).set(database=name).render_as_string(hide_password=False))

    def stop(self) -> None:
        if self._owned:
            subprocess.run(self._stop_cmd, capture_output=True)
            shutil.rmtree(self.dir, ignore_errors=True)
