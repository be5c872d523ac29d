"""Notifications (R21-R26): event rows routed to the operator's endpoints.

qmgr writes one `events` row per final recipient outcome, in the same transaction as the
recipient's final state. From there:

- `router` picks the notification region (sender-level wins over account-level, R23) and the
  region's rules matching the event type and sender (R22), and writes one `notify_deliveries`
  row per endpoint, marking the event routed in the same transaction (exactly once, also with
  several notifiers on PostgreSQL).
- `http` POSTs the body with an HMAC-SHA256 signature, retrying with exponential backoff;
  every attempt is recorded in `notify_attempts`.
- `mq` is the durable pull queue the mail core serves (R24), with its HTTP API and a client.
- `topic` fans a topic delivery out to its subscribed HTTP endpoints and queues.
- `worker.Notifier` runs all of it (`run_once` for tests, `run` for `invoke serve`).
"""
from __future__ import annotations


def parse_event_body(body: str) -> dict[str, str]:
    """Split the guide's `key=value&...` body (R25, R26) into a dict. Values were written with
    '%' and '&' percent-encoded (mailcore.queue.qmgr.event_body), so they are decoded here."""
    out: dict[str, str] = {}
    for pair in body.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        out[key] = value.replace("%26", "&").replace("%25", "%")
    return out
