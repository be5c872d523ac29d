"""Replays and retries, decided in the transaction that writes the messages (group commit).

- Replays: an API request's signature nonce travels with its submission (`Submission.replay`) and
  is claimed in `api_nonces` in the same transaction as the message, so a replayed send is refused
  (`replayed` -> SignatureNonceUsed) by every listener, after a restart too, and a send and its
  nonce are committed or lost together.
- Retries: a send with a retry key gets the EnvId of the first send with that key instead of a
  second delivery. The key is the API's `ClientToken` (per account; a token reused for a
  different request is refused: `idempotency-mismatch`), or for SMTP the sender, the Message-ID
  the client wrote and the recipients (a client re-sending after a lost reply; a list manager
  sending one Message-ID to different recipients in several transactions is not a retry).
  Keys are kept for WINDOW (24 hours). The mapping is written with the message, so a crash
  between the commit and the reply cannot produce a duplicate on retry.

Both are one atomic upsert on a primary key: of two writers racing with one key, one wins (the
other waits for it on PostgreSQL; SQLite writers are serialised). A row past its expiry is taken
over by the next claim and swept later.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from mailcore.cleanup.submission import Submission, SubmitRefused, SubmitResult
from mailcore.store import tables as t

WINDOW = timedelta(hours=24)  # how long a retry key maps to its first EnvId
NONCE_GRACE = timedelta(hours=1)  # nonces are swept this long after their expiry (lagging clocks)
SWEEP_EVERY = timedelta(minutes=10)
_CHUNK = 500


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


def claim_keys(conn, table: sa.Table, rows: list[dict], keys: tuple[str, ...], now: datetime) -> set[tuple]:
    """Insert `rows` (each with `expires_at`); where a row with the same key exists and has not
    expired, keep it. Returns the keys inserted (or taken over from an expired row). Atomic per
    key: the primary key decides between concurrent writers."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    unique = list({tuple(r[k] for k in keys): r for r in reversed(rows)}.values())[::-1]  # first of each key
    won: set[tuple] = set()
    for i in range(0, len(unique), _CHUNK):
        stmt = insert(table).values(unique[i:i + _CHUNK])
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c[k] for k in keys],
            set_={c: stmt.excluded[c] for c in unique[0] if c not in keys},
            where=table.c.expires_at <= now).returning(*[table.c[k] for k in keys])
        won.update(tuple(r) for r in conn.execute(stmt))
    return won


def api_key(sub: Submission) -> tuple[str, str] | None:
    """(key, fingerprint) of an API submission carrying a ClientToken, taken before cleanup fills
    in a template or list; None without a token."""
    if sub.client_token is None:
        return None
    request = [sub.source, sub.sender.lower(), [[r.address.lower(), sorted(r.variables.items())] for r in sub.recipients],
               sub.subject, sub.html_body, sub.text_body, sub.from_alias, sub.reply_to_sender, sub.tag, sub.tracking,
               sub.address_type, sorted(sub.headers.items()), sub.template, sub.receivers_list]
    return _digest("api", sub.client_token), _digest(json.dumps(request, ensure_ascii=False, default=str))


def smtp_key(sub: Submission, message_id: str | None) -> tuple[str, None] | None:
    """(key, None) of an SMTP message whose client wrote a Message-ID; None otherwise."""
    if not message_id or not message_id.strip():
        return None
    rcpts = sorted({r.address.lower() for r in sub.recipients})
    return _digest("smtp", sub.sender.lower(), message_id.strip(), *rcpts), None


class Claims:
    """What one group's transaction decides before and after it writes the messages. Works are
    cleanup's `_Work`s (sub, prepared.account_id, prepared.retry, result, error)."""

    def __init__(self):
        self._next_sweep: datetime | None = None

    def take(self, conn, batch: list, now: datetime) -> tuple[list, "_Taken"]:
        """Claim the group's nonces and retry keys. Returns the works still to write; the others
        are settled: refused (a replay, a token reused for another request) or answered with the
        first EnvId (a retry)."""
        self._sweep(conn, now)
        live = self._replays(conn, batch, now)
        return self._retries(conn, live, now)

    def _sweep(self, conn, now: datetime) -> None:
        if self._next_sweep is not None and now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_EVERY
        conn.execute(sa.delete(t.idempotency_keys).where(t.idempotency_keys.c.expires_at < now))
        conn.execute(sa.delete(t.api_nonces).where(t.api_nonces.c.expires_at < now - NONCE_GRACE))

    def _replays(self, conn, batch: list, now: datetime) -> list:
        claims = [w for w in batch if w.sub.replay is not None]
        if not claims:
            return batch
        rows = [{"access_key_id": w.sub.replay[0], "nonce": w.sub.replay[1],
                 "expires_at": datetime.fromtimestamp(w.sub.replay[2], timezone.utc)} for w in claims]
        won = claim_keys(conn, t.api_nonces, rows, ("access_key_id", "nonce"), now)
        for w in claims:
            key = tuple(w.sub.replay[:2])
            if key in won:
                won.discard(key)  # a second submission with the same nonce in this group loses
            else:
                w.error = SubmitRefused("replayed", f"nonce of {w.sub.replay[0]}")
        return [w for w in batch if w.error is None]

    def _retries(self, conn, batch: list, now: datetime) -> tuple[list, "_Taken"]:
        taken = _Taken()
        keyed = [w for w in batch if w.prepared.retry is not None]
        if not keyed:
            return batch, taken
        for w in keyed:
            k = (w.prepared.account_id, w.prepared.retry[0])
            if k in taken.leaders:
                taken.followers.append((w, taken.leaders[k]))
            else:
                taken.leaders[k] = w
        rows = [{"account_id": a, "key": key, "fingerprint": w.prepared.retry[1], "env_id": None, "created_at": now,
                 "expires_at": now + WINDOW} for (a, key), w in taken.leaders.items()]
        won = claim_keys(conn, t.idempotency_keys, rows, ("account_id", "key"), now)
        lost = [k for k in taken.leaders if k not in won]
        if lost:
            c = t.idempotency_keys.c
            found = {(r.account_id, r.key): r for r in conn.execute(
                sa.select(c.account_id, c.key, c.fingerprint, c.env_id).where(c.key.in_([k for _, k in lost])))}
            for k in lost:
                w, first = taken.leaders.pop(k), found.get(k)
                if first is None or first.env_id is None:  # cannot happen: claims commit with their EnvId
                    raise RuntimeError(f"retry key of {w.sub.sender} has no EnvId")
                if first.fingerprint != w.prepared.retry[1]:
                    w.error = SubmitRefused("idempotency-mismatch", f"ClientToken of a different request (EnvId {first.env_id})")
                else:
                    w.result = SubmitResult(env_id=first.env_id, recipients=len(w.prepared.recipients))
        skip = {id(w) for w, _ in taken.followers}
        return [w for w in batch if id(w) not in skip and w.error is None and w.result is None], taken


class _Taken:
    """The retry keys one group claimed, settled once its messages are written."""

    def __init__(self):
        self.leaders: dict[tuple[int, str], object] = {}  # (account_id, key) -> the work that claimed it
        self.followers: list[tuple[object, object]] = []  # (work, leader) with the same key in this group

    def settle(self, conn) -> None:
        """Record each claimed key's EnvId; release the keys of works refused while writing (quota,
        invalid address), so a retry is judged again; give followers their leader's outcome."""
        c = t.idempotency_keys.c
        written = [{"a": a, "k": k, "e": w.result.env_id} for (a, k), w in self.leaders.items()
                   if w.error is None and w.result is not None]
        if written:
            conn.execute(sa.update(t.idempotency_keys).where(c.account_id == sa.bindparam("a"), c.key == sa.bindparam("k"))
                         .values(env_id=sa.bindparam("e")), written)
        released = [{"a": a, "k": k} for (a, k), w in self.leaders.items() if w.error is not None or w.result is None]
        if released:
            conn.execute(sa.delete(t.idempotency_keys).where(c.account_id == sa.bindparam("a"),
                                                             c.key == sa.bindparam("k")), released)
        for w, leader in self.followers:
            if w.prepared.retry[1] != leader.prepared.retry[1]:
                w.error = SubmitRefused("idempotency-mismatch", "ClientToken of a different request in the same group")
            elif leader.error is not None:
                w.error = leader.error
            else:
                w.result = SubmitResult(env_id=leader.result.env_id, recipients=len(w.prepared.recipients))
