"""Replay protection that holds across listeners and restarts: signature nonces kept in the store.

A verified request's (AccessKeyId, nonce) is claimed with one atomic insert into `api_nonces`
(its primary key decides: of two listeners racing with the same nonce, one wins). The row lives
until the request's own timestamp leaves the window (`timestamp + window`), after which the
request is refused as expired anyway. A row found expired is taken over by the new claim, and a
sweep deletes rows a window past their expiry (the extra window covers listeners whose clocks
lag).

A send (SingleSendMail, BatchSendMail) through a submitter that claims nonces itself (cleanup:
`claims_nonces`) takes its nonce along (`Submission.replay`), and cleanup claims it in the very
transaction that queues the message: no extra write, and a send and its nonce are committed or
lost together. Every other action claims here, before it runs.

Claims that arrive while a write is in flight are written together in the next transaction
(group commit), so a busy endpoint pays one store round trip per group, not per request. A small
in-memory front cache remembers what this process has claimed, so a flood of replays is refused
without touching the store; the store decides everything else.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from datetime import datetime, timezone
from typing import Callable

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool

from mailcore.cleanup.idempotency import claim_keys
from mailcore.cleanup.submission import Submission, SubmitResult, Submitter
from mailcore.store import Store
from mailcore.store import tables as t

from .errors import ApiError
from .signature import Verified

log = logging.getLogger("mailcore.ingress.api.nonces")

GROUP = 500  # claims written in one statement at most
FRONT_CACHE_MAX = 100_000  # entries; past this the front cache is emptied (the store still decides)


def nonce_digest(nonce: str) -> str:
    """The stored form of a nonce: fixed length whatever the client sent."""
    return hashlib.sha256(nonce.encode("utf-8", "surrogatepass")).hexdigest()


def _epoch_to_dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


class StoreNonces:
    """`await claim(access_key_id, nonce, expires)` -> True the first time, False on a replay.

    `expires` is the epoch second after which a request carrying this nonce is refused by its
    timestamp anyway; `clock` (epoch seconds) is the verifier's."""

    def __init__(self, store: Store, window: float, clock: Callable[[], float] = time.time):
        self.store, self.window, self.clock = store, window, clock
        self._front: dict[tuple[str, str], float] = {}
        self._pending: dict[asyncio.AbstractEventLoop, list] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    async def admit(self, verified: Verified, submitter: Submitter, send: bool) -> Submitter:
        """Claim a verified request's nonce (SignatureNonceUsed on a replay) and return the
        submitter its action is to use: for a send through a submitter that claims nonces with
        its message, one that hands the nonce over instead of claiming it here."""
        ak = verified.credential.access_key_id
        if send and getattr(submitter, "claims_nonces", False):
            if self.seen(ak, verified.nonce):
                raise ApiError("SignatureNonceUsed")
            return _ReplayClaimingSubmitter(submitter, self, (ak, nonce_digest(verified.nonce), verified.expires))
        if not await self.claim(ak, verified.nonce, verified.expires):
            raise ApiError("SignatureNonceUsed")
        return submitter

    def seen(self, access_key_id: str, nonce: str) -> bool:
        """This process already knows the nonce is taken (no I/O)."""
        exp = self._front.get((access_key_id, nonce_digest(nonce)))
        return exp is not None and exp > self.clock()

    def remember(self, key: tuple[str, str], expires: float) -> None:
        with self._lock:
            if len(self._front) > FRONT_CACHE_MAX:
                now = self.clock()
                self._front = {k: e for k, e in self._front.items() if e > now}
                if len(self._front) > FRONT_CACHE_MAX:
                    self._front.clear()
            self._front[key] = max(self._front.get(key, 0.0), expires)

    async def claim(self, access_key_id: str, nonce: str, expires: float) -> bool:
        if self.seen(access_key_id, nonce):
            return False
        key = (access_key_id, nonce_digest(nonce))
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        batch = self._pending.get(loop)
        if batch is None:  # nobody is writing for this loop: start a writer, which also takes what queues meanwhile
            self._pending[loop] = batch = []
            loop.create_task(self._flush(loop))
        batch.append((key, expires, fut))
        return await fut

    async def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            while True:
                await asyncio.sleep(0)  # let the claims of requests already running join this group
                batch = self._pending.get(loop) or []
                take, rest = batch[:GROUP], batch[GROUP:]
                if not take:
                    return
                self._pending[loop] = rest
                try:
                    won = await run_in_threadpool(self.claim_many, [(k, e) for k, e, _ in take])
                except Exception as exc:  # the store failed: these requests are not accepted (503)
                    for _, _, fut in take:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for (key, _, fut), ok in zip(take, won):
                    if not fut.done():
                        fut.set_result(ok)
        finally:
            leftover = self._pending.pop(loop, None) or []
            for _, _, fut in leftover:  # only when the loop is closing
                if not fut.done():
                    fut.cancel()

    def claim_many(self, claims: list[tuple[tuple[str, str], float]]) -> list[bool]:
        """Claim each ((access_key_id, digest), expires) in one transaction; True where it was new
        (or its earlier row had expired). A key twice in `claims`: the first wins."""
        now = self.clock()
        first: dict[tuple[str, str], float] = {}
        for key, expires in claims:
            first.setdefault(key, expires)
        rows = [{"access_key_id": ak, "nonce": digest, "expires_at": _epoch_to_dt(exp)} for (ak, digest), exp in first.items()]
        with self.store.transaction(immediate=True) as conn:
            won = claim_keys(conn, t.api_nonces, rows, ("access_key_id", "nonce"), _epoch_to_dt(now))
            if now >= self._next_sweep:
                self._next_sweep = now + self.window / 10
                conn.execute(sa.delete(t.api_nonces).where(t.api_nonces.c.expires_at < _epoch_to_dt(now - self.window)))
        for key in first:  # a lost claim is remembered briefly: a flood of one replay stays off the store
            self.remember(key, first[key] if key in won else now + 1.0)
        out, given = [], set()
        for key, _ in claims:
            out.append(key in won and key not in given)
            given.add(key)
        return out


class _ReplayClaimingSubmitter:
    """The submitter of one send request: its submission carries the request's nonce, which
    cleanup claims with the message (a replay is refused as `replayed`: SignatureNonceUsed)."""

    claims_nonces = True

    def __init__(self, submitter: Submitter, nonces: StoreNonces, replay: tuple[str, str, float]):
        self.submitter, self.nonces, self.replay = submitter, nonces, replay

    async def submit(self, submission: Submission) -> SubmitResult:
        submission.replay = self.replay
        result = await self.submitter.submit(submission)
        self.nonces.remember(self.replay[:2], self.replay[2])
        return result
