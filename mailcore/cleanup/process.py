"""cleanup as its own process, as Postfix runs it: smtpd and the API hand each submission over a
socket and answer their client once cleanup has committed it.

Why a process: building, DKIM-signing and committing a message is Python work that, in the
listeners' process, competes for one interpreter lock with every SMTP session; in a child it
runs on the other core. The parent keeps only the socket.

The parent's `CleanupProcess` is a Submitter (`await submit(sub)`). It starts
`python -m mailcore.cleanupd FD` with one end of a socket pair, sends it the store URL, the
secret box (its master key) and the cleanup settings in a first frame, and waits for "ready". Each submission
is then one frame (sequence number, Submission) and each outcome one frame back. The child has
one thread: it reads whatever frames have arrived, checks, builds and signs each, commits them
as one group (`Cleanup.write_now`) and answers the group in one write; what arrives meanwhile
waits in the socket and makes the next group.

Nothing acknowledged is lost: the answer is written only after the commit. If the child dies,
the submissions it had not answered fail with CleanupUnavailable (smtpd answers 451, so the
client retries) and the next submission starts a new child. When the parent closes the socket,
the child answers what it has read and exits; when the parent dies (kill -9), the child commits
nothing more, since nobody could be told, and exits.
"""
from __future__ import annotations

import asyncio
import logging
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
from dataclasses import dataclass

from mailcore.cleanup.submission import Submission, SubmitRefused, SubmitResult

log = logging.getLogger("mailcore.cleanup.process")
_HEAD = struct.Struct("!I")
_MAX_FRAME = 1 << 30
_GROUP = 256  # submissions committed in one transaction at most


class CleanupUnavailable(Exception):
    """The cleanup process could not take or finish a submission (it is not acknowledged)."""


def frame(obj) -> bytes:
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEAD.pack(len(payload)) + payload


class FrameBuffer:
    """Splits a byte stream into the objects `frame()` encoded."""

    def __init__(self):
        self._buf = bytearray()

    def feed(self, data: bytes) -> list:
        buf = self._buf
        buf += data
        out, pos, end = [], 0, len(buf)
        while end - pos >= 4:
            (n,) = _HEAD.unpack_from(buf, pos)
            if n > _MAX_FRAME:
                raise ValueError(f"frame of {n} bytes")
            if end - pos - 4 < n:
                break
            out.append(pickle.loads(buf[pos + 4:pos + 4 + n]))
            pos += 4 + n
        del buf[:pos]
        return out


@dataclass
class ChildConfig:
    store_url: str
    box: object  # SecretBox | None (pickled by its master key)
    settings: object  # CleanupSettings (its content check must be importable by name)


# --- the parent ------------------------------------------------------------------------------

class _Channel(asyncio.Protocol):
    def __init__(self, owner: "CleanupProcess"):
        self.owner = owner
        self.frames = FrameBuffer()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            replies = self.frames.feed(data)
        except Exception as exc:  # a garbled stream: this child can no longer be trusted
            log.error("cleanup process sent an unreadable frame: %s", exc)
            self.transport.abort()
            return
        for reply in replies:
            self.owner._answer(reply)

    def connection_lost(self, exc) -> None:
        self.owner._lost(self)


class CleanupProcess:
    """A Submitter whose cleanup runs in a child process (see the module docstring)."""

    claims_nonces = True  # as Cleanup: a submission's `replay` nonce is claimed with its message

    def __init__(self, store_url: str, *, box=None, settings=None, start_timeout: float = 60.0):
        from mailcore.cleanup.writer import CleanupSettings
        self.config = ChildConfig(store_url, box, settings or CleanupSettings())
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen | None = None
        self._channel: _Channel | None = None
        self._ready: asyncio.Future | None = None
        self._starting: asyncio.Task | None = None
        self._pending: dict[int, asyncio.Future] = {}
        self._seq = 0

    async def start(self) -> None:
        """Start the child (if it is not running) and wait until it has opened the store."""
        if self._channel is not None and self._ready is not None and self._ready.done() \
                and self._ready.exception() is None:
            return
        if self._starting is None or self._starting.done():
            self._starting = asyncio.ensure_future(self._spawn())
        await asyncio.shield(self._starting)

    async def _spawn(self) -> None:
        loop = asyncio.get_running_loop()
        if self._proc is not None and self._proc.poll() is None:  # a child that lost its socket
            self._proc.kill()
        if self._proc is not None:
            await asyncio.to_thread(self._proc.wait)
        ours, theirs = socket.socketpair()
        try:
            # its own session: a terminal's Ctrl-C reaches the parent, which decides when cleanup stops
            self._proc = subprocess.Popen([sys.executable, "-m", "mailcore.cleanup.process", str(theirs.fileno())],
                                          pass_fds=[theirs.fileno()], start_new_session=True)
        finally:
            theirs.close()
        self._ready = loop.create_future()
        _, self._channel = await loop.create_connection(lambda: _Channel(self), sock=ours)
        self._channel.transport.write(frame(self.config))
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), self.start_timeout)
        except asyncio.TimeoutError:
            self._kill()
            raise CleanupUnavailable(f"the cleanup process did not start within {self.start_timeout:.0f}s") from None

    async def submit(self, sub: Submission) -> SubmitResult:
        await self.start()
        if self._channel is None:  # it exited just after starting
            raise CleanupUnavailable("the cleanup process exited")
        self._seq += 1
        fut = asyncio.get_running_loop().create_future()
        self._pending[self._seq] = fut
        self._channel.transport.write(frame((self._seq, sub)))
        return await fut

    def _answer(self, reply) -> None:
        seq, kind, value = reply
        if seq == 0:  # the child's start-up answer
            if not self._ready.done():
                if kind == "ready":
                    self._ready.set_result(None)
                else:
                    self._ready.set_exception(CleanupUnavailable(f"the cleanup process could not start: {value}"))
            return
        fut = self._pending.pop(seq, None)
        if fut is None or fut.done():
            return
        if kind == "ok":
            fut.set_result(SubmitResult(env_id=value[0], recipients=value[1]))
        elif kind == "refused":
            fut.set_exception(SubmitRefused(*value))
        else:
            fut.set_exception(CleanupUnavailable(value))

    def _lost(self, channel: _Channel) -> None:
        if channel is not self._channel:
            return
        self._channel = None
        code = self._proc.poll() if self._proc else None
        why = CleanupUnavailable("the cleanup process exited" + (f" (status {code})" if code is not None else ""))
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(why)
            self._ready.exception()  # retrieved here; start() raises it to its caller
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(why)
        if pending:
            log.error("%s; %d submission(s) were not acknowledged", why, len(pending))

    def _kill(self) -> None:
        if self._channel is not None:
            self._channel.transport.abort()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the child once it has answered what it has read (from any thread, or after the
        event loop has ended)."""
        if self._channel is not None:
            try:
                self._channel.transport.get_extra_info("socket").shutdown(socket.SHUT_WR)
            except OSError:
                pass
        self._wait(timeout)

    async def aclose(self, timeout: float = 30.0) -> None:
        """close() from the event loop: the answers still to come are read while it waits."""
        if self._channel is not None and not self._channel.transport.is_closing():
            self._channel.transport.write_eof()
        await asyncio.to_thread(self._wait, timeout)
        if self._channel is not None:
            self._channel.transport.close()

    def _wait(self, timeout: float) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("the cleanup process did not finish within %.0fs; killed", timeout)
            proc.kill()
            proc.wait()


def cleanup_submitter(store, box, settings=None, *, process: bool = True):
    """The submitter `invoke serve` gives its listeners: cleanup in its own process (the default,
    `service.cleanup.process`; `await start()` it), or a Cleanup in a thread of this process."""
    if process:
        return CleanupProcess(store.url, box=box, settings=settings)
    from mailcore.cleanup.writer import Cleanup
    return Cleanup(store, box=box, settings=settings)


# --- the child -------------------------------------------------------------------------------

class _Replies:
    """Writes outcomes back to the parent."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def __call__(self, works) -> None:
        out = []
        for w in works:
            seq = w.ref
            if w.error is None:
                out.append(frame((seq, "ok", (w.result.env_id, w.result.recipients))))
            elif isinstance(w.error, SubmitRefused):
                out.append(frame((seq, "refused", (w.error.reason, w.error.detail))))
            else:
                log.error("submission failed: %s: %s", type(w.error).__name__, w.error)
                out.append(frame((seq, "error", f"{type(w.error).__name__}: {w.error}")))
        if out:
            self.send(b"".join(out))

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            pass  # the parent is gone; what was committed stays committed


def child_main(fd: int) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop (it closes the socket)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s[cleanup]: %(message)s")
    logging.getLogger("mailcore").setLevel(logging.INFO)
    sock = socket.socket(fileno=fd)
    replies = _Replies(sock)
    frames = FrameBuffer()
    got: list = []
    while not got:
        data = sock.recv(1 << 16)
        if not data:
            return 0
        got = frames.feed(data)
    config, got = got[0], got[1:]
    try:
        cleanup = _open(config)
    except Exception as exc:
        replies.send(frame((0, "failed", f"{type(exc).__name__}: {exc}")))
        return 1
    replies.send(frame((0, "ready", None)))
    parent = os.getppid()
    try:
        while True:
            if got and os.getppid() != parent:
                # the parent died (kill -9): nobody can be told, so nothing more is committed;
                # its clients got no 250 and will send again
                log.warning("the service process is gone; %d submission(s) read but not committed", len(got))
                break
            for i in range(0, len(got), _GROUP):
                cleanup.write_now([(sub, seq) for seq, sub in got[i:i + _GROUP]], replies)
            data = sock.recv(1 << 20)
            if not data:
                break
            got = frames.feed(data)
    finally:
        cleanup.close()
        cleanup.store.dispose()
    return 0


def _open(config: ChildConfig):
    from mailcore.cleanup.writer import Cleanup
    from mailcore.store import open_store
    store = open_store(config.store_url, migrate=False)
    store.check_schema()  # reachable, and at the migration this code needs
    return Cleanup(store, box=config.box, settings=config.settings)


if __name__ == "__main__":
    raise SystemExit(child_main(int(sys.argv[1])))
