"""The built-in DNS server on its own event loop in a background thread of the caller's process
(tests, the harness's pytest plugin): start it on a free port, stop it."""
from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Iterable

from .dnsserver import Authority, serve
from .rfc2136 import TsigKey


class DnsServerProcess:
    """The server on its own event loop in a background thread (tests, embedded use)."""

    def __init__(self, zone_dir: Path | str, host: str = "127.0.0.1", port: int = 0,
                 keys: Iterable[TsigKey] = ()) -> None:
        self.zone_dir, self.host, self.requested_port, self.keys = Path(zone_dir), host, port, list(keys)
        self.port = 0
        self.authority: Authority | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self) -> "DnsServerProcess":
        ready = threading.Event()

        def bound(authority: Authority, port: int) -> None:
            self.authority, self.port = authority, port

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await serve(self.zone_dir, self.host, self.requested_port, self.keys,
                        ready=ready, stop=self._stop, on_bound=bound)

        def run() -> None:
            try:
                asyncio.run(main())
            except BaseException as e:  # reported to start()
                self._error = e
                ready.set()

        self._thread = threading.Thread(target=run, name="dnsserver", daemon=True)
        self._thread.start()
        ready.wait(10)
        if self._error:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop and self._stop and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)

    def __enter__(self) -> "DnsServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
