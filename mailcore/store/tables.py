"""The store's tables (SQLAlchemy Core). Migrations under migrations/versions create them;
`tests/test_store.py` checks the migrated schema matches this metadata."""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

metadata = sa.MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})



class _UtcDateTime(sa.types.TypeDecorator):
    """A timestamp that reads back timezone-aware: PostgreSQL keeps the zone, SQLite does not, and
    everything stored is UTC."""
    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return value if value is None or value.tzinfo else value.replace(tzinfo=timezone.utc)


TS = _UtcDateTime()


def _id():
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)


def _account():
    return sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True)


accounts = sa.Table(
    "accounts", metadata, _id(),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("quota_daily", sa.Integer, nullable=False),
    sa.Column("quota_monthly", sa.Integer, nullable=False),
    sa.Column("quota_free_daily", sa.Integer, nullable=False),
    sa.Column("allowlist_enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

regions = sa.Table(
    "regions", metadata, _id(), _account(),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("mx_host", sa.String(253)),
    sa.Column("spf_include", sa.String(253)),
    sa.Column("tracking_host", sa.String(253)),
    sa.UniqueConstraint("account_id", "region", name="uq_regions_account_region"),
)

dns_backends = sa.Table(
    "dns_backends", metadata, _id(), _account(),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("settings", sa.JSON, nullable=False),  # references to secrets only, never values
    sa.UniqueConstraint("account_id", "name", name="uq_dns_backends_account_name"),
)

domains = sa.Table(
    "domains", metadata, _id(), _account(),
    sa.Column("name", sa.String(253), nullable=False, unique=True),  # one owner per domain (R6)
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("zone", sa.String(253)),
    sa.Column("dns_backend", sa.String(64), nullable=False),
    sa.Column("tracking", sa.Boolean, nullable=False),
    sa.Column("ttl_seconds", sa.Integer),
    sa.Column("dmarc", sa.Text),
    sa.Column("purpose", sa.String(16), nullable=False),
    # DNS verification (R9, R10): unverified | verified | usable | failed
    sa.Column("status", sa.String(16), nullable=False, server_default="unverified"),
    sa.Column("status_detail", sa.Text),
    sa.Column("verified_at", TS),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

senders = sa.Table(
    "senders", metadata, _id(), _account(),
    sa.Column("domain_id", sa.Integer, sa.ForeignKey("domains.id"), nullable=False, index=True),
    sa.Column("address", sa.String(254), nullable=False, unique=True),
    sa.Column("type", sa.String(8), nullable=False),
    sa.Column("reply_to", sa.String(254)),
    sa.Column("smtp_password_hash", sa.String(200)),
    sa.Column("smtp_password_fingerprint", sa.String(64)),
    sa.Column("created_at", TS, nullable=False),  # sending allowed after the activation delay (R15)
    sa.Column("updated_at", TS, nullable=False),
)

# Reply-to verification (R13): owned by mailcore.account.replyto. A reply-to is verified only for the
# address that was verified, so changing `reply_to` in config needs a new verification.
reply_to_verifications = sa.Table(
    "reply_to_verifications", metadata,
    sa.Column("sender_id", sa.Integer, sa.ForeignKey("senders.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("verified_address", sa.String(254)),  # the reply-to its owner confirmed
    sa.Column("verified_at", TS),
    sa.Column("ticket_hash", sa.String(64), unique=True),  # sha256 of the emailed ticket, until used or replaced
    sa.Column("ticket_address", sa.String(254)),  # the reply-to the ticket was mailed to
    sa.Column("sent_at", TS),  # the last verification mail (one per 10 minutes)
)

sender_deletions = sa.Table(
    "sender_deletions", metadata, _id(), _account(),
    sa.Column("address", sa.String(254), nullable=False),
    sa.Column("deleted_at", TS, nullable=False, index=True),
)

tags = sa.Table(
    "tags", metadata, _id(), _account(),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.UniqueConstraint("account_id", "name", name="uq_tags_account_name"),
)

recipient_lists = sa.Table(
    "recipient_lists", metadata, _id(), _account(),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("alias_address", sa.String(254), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("row_count", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.UniqueConstraint("account_id", "name", name="uq_recipient_lists_account_name"),
    sa.UniqueConstraint("account_id", "alias_address", name="uq_recipient_lists_account_alias"),
)

recipients = sa.Table(
    "recipients", metadata, _id(),
    sa.Column("list_id", sa.Integer, sa.ForeignKey("recipient_lists.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("user_name", sa.String(200)),
    sa.Column("nick_name", sa.String(100)),
    sa.Column("gender", sa.String(100)),
    sa.Column("birthday", sa.String(100)),
    sa.Column("mobile", sa.String(100)),
)

templates = sa.Table(
    "templates", metadata, _id(), _account(),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("nick_name", sa.String(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("content_digest", sa.String(64), nullable=False),
    # review (R20): draft | submitted | approved | rejected; an approval is bound to approved_digest
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("approved_digest", sa.String(64)),
    sa.Column("submitted_by", sa.String(128)),
    sa.Column("submitted_at", TS),
    sa.Column("reviewed_by", sa.String(128)),
    sa.Column("reviewed_at", TS),
    sa.Column("review_comment", sa.Text),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.UniqueConstraint("account_id", "name", name="uq_templates_account_name"),
)

template_reviews = sa.Table(
    "template_reviews", metadata, _id(),
    sa.Column("template_id", sa.Integer, sa.ForeignKey("templates.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("action", sa.String(16), nullable=False),  # submit | approve | reject | reset
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.Column("content_digest", sa.String(64), nullable=False),
    sa.Column("comment", sa.Text),
)

allowlist_entries = sa.Table(
    "allowlist_entries", metadata, _id(), _account(),
    sa.Column("entry", sa.String(100), nullable=False),
    sa.UniqueConstraint("account_id", "entry", name="uq_allowlist_entries_account_entry"),
)

notification_rules = sa.Table(
    "notification_rules", metadata, _id(), _account(),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("events", sa.JSON, nullable=False),
    sa.Column("senders", sa.JSON),
    sa.UniqueConstraint("account_id", "region", "name", name="uq_notification_rules_account_region_name"),
)

notification_endpoints = sa.Table(
    "notification_endpoints", metadata, _id(),
    sa.Column("rule_id", sa.Integer, sa.ForeignKey("notification_rules.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("signing_secret_enc", sa.Text),
)

notifications = sa.Table(
    "notifications", metadata, _id(), _account(),
    sa.Column("scope", sa.String(254), nullable=False),  # 'account' or a sender address (R23)
    sa.Column("region", sa.String(32), nullable=False),
    sa.UniqueConstraint("account_id", "scope", name="uq_notifications_account_scope"),
)

api_keys = sa.Table(
    "api_keys", metadata, _id(), _account(),
    sa.Column("access_key_id", sa.String(64), nullable=False, unique=True),
    sa.Column("secret_enc", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
)

apply_locks = sa.Table(
    "apply_locks", metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("holder", sa.String(200)),
    sa.Column("acquired_at", TS),
)

applies = sa.Table(
    "applies", metadata, _id(), _account(),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.Column("summary", sa.JSON, nullable=False),
)

# --- DNS material per domain (issue 3): generated once, kept across applies -----------------

domain_keys = sa.Table(
    "domain_keys", metadata, _id(),
    sa.Column("domain", sa.String(253), nullable=False, unique=True),
    sa.Column("ownership_token", sa.String(64), nullable=False),
    sa.Column("dkim_selector", sa.String(63), nullable=False),
    sa.Column("dkim_private_enc", sa.Text, nullable=False),  # PEM, encrypted under the master key
    sa.Column("dkim_public", sa.Text, nullable=False),  # base64 DER, as published in DNS
    sa.Column("created_at", TS, nullable=False),
)

# --- the queue (issue 4): only mailcore.queue changes states -------------------------------

queue_messages = sa.Table(
    "queue_messages", metadata, _id(), _account(),
    sa.Column("sender", sa.String(254), nullable=False),
    sa.Column("envelope_from", sa.String(254), nullable=False, index=True),  # random address type maps back here
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("source", sa.String(8), nullable=False),  # smtp | api | batch
    sa.Column("tag", sa.String(128)),
    sa.Column("tracking", sa.Boolean, nullable=False),
    sa.Column("message_id", sa.String(255), nullable=False),
    sa.Column("subject", sa.Text),
    sa.Column("content", sa.LargeBinary),  # the signed message, when every recipient gets the same bytes
    sa.Column("template", sa.JSON),  # batch: subject/html/from alias, rendered per recipient at delivery
    sa.Column("batch_job_id", sa.Integer, sa.ForeignKey("batch_jobs.id"), index=True),
    sa.Column("created_at", TS, nullable=False),
)

queue_recipients = sa.Table(
    "queue_recipients", metadata, _id(),
    sa.Column("message_id", sa.Integer, sa.ForeignKey("queue_messages.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("rcpt", sa.String(254), nullable=False),
    sa.Column("rcpt_domain", sa.String(253), nullable=False),
    sa.Column("variables", sa.JSON),  # batch: this recipient's template variables (R18, R19)
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", TS, nullable=False),
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("lease_until", TS),
    sa.Column("last_code", sa.Integer),
    sa.Column("last_text", sa.Text),
    sa.Column("status", sa.Integer),  # 0 success, 2 invalid address, 3 spam, 4 failure (R25)
    sa.Column("failed_type", sa.String(32)),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("done_at", TS),
    sa.Index("ix_queue_recipients_due", "state", "next_attempt_at"),
)

quota_counters = sa.Table(
    "quota_counters", metadata,
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("period", sa.String(16), primary_key=True),  # d:2026-11-27 | m:2026-11 (account time zone)
    sa.Column("used", sa.Integer, nullable=False),
)

batch_jobs = sa.Table(
    "batch_jobs", metadata, _id(), _account(),
    sa.Column("receivers_list", sa.String(64), nullable=False),
    sa.Column("template", sa.String(64), nullable=False),
    sa.Column("sender", sa.String(254), nullable=False),
    sa.Column("tag", sa.String(128)),
    sa.Column("address_type", sa.String(8), nullable=False),
    sa.Column("tracking", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # queuing | queued | failed
    sa.Column("request_count", sa.Integer, nullable=False),
    sa.Column("env_id", sa.String(32)),
    sa.Column("created_at", TS, nullable=False),
)

invalid_addresses = sa.Table(
    "invalid_addresses", metadata, _id(), _account(),
    sa.Column("address", sa.String(254), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("added_at", TS, nullable=False, index=True),
    sa.UniqueConstraint("account_id", "address", name="uq_invalid_addresses_account_address"),
)

# --- events (issue 5): written in the same transaction as the recipient's final state -------

events = sa.Table(
    "events", metadata, _id(), _account(),
    sa.Column("recipient_id", sa.Integer, sa.ForeignKey("queue_recipients.id", ondelete="SET NULL"), index=True),
    sa.Column("event", sa.String(32), nullable=False),  # Deliver:SendSuccessfully | Deliver:SendFailed | Deliver:Open | ...
    sa.Column("sender", sa.String(254), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # the guide's key=value&... body (R25, R26)
    sa.Column("created_at", TS, nullable=False, index=True),
    sa.Column("routed_at", TS),  # set once the notifier has fanned it out to its endpoints
)

# --- notifications (issue 5, R21-R26): owned by mailcore.notify -----------------------------
# The notifier routes each event row to one notify_deliveries row per endpoint (R22, R23); the
# delivery copies the endpoint (kind, target, encrypted secret) so a later apply that rewrites
# the rule's endpoints cannot strand a pending delivery.

notify_deliveries = sa.Table(
    "notify_deliveries", metadata, _id(),
    sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("notify_deliveries.id", ondelete="CASCADE"), index=True),  # topic fan-out
    sa.Column("rule", sa.String(64)),  # the rule that routed it (None for a topic's fan-out)
    sa.Column("kind", sa.String(8), nullable=False),  # http | queue | topic
    sa.Column("target", sa.Text, nullable=False),  # URL for http, name for queue/topic
    sa.Column("signing_secret_enc", sa.Text),
    sa.Column("state", sa.String(12), nullable=False),  # pending | delivered | failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", TS, nullable=False),
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("lease_until", TS),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("done_at", TS),
    sa.Index("ix_notify_deliveries_due", "state", "next_attempt_at"),
)

notify_attempts = sa.Table(
    "notify_attempts", metadata, _id(),
    sa.Column("delivery_id", sa.Integer, sa.ForeignKey("notify_deliveries.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("status_code", sa.Integer),  # the receiver's HTTP status; None when there was no answer
    sa.Column("error", sa.Text),
    sa.Column("outcome", sa.String(12), nullable=False),  # delivered | retry | failed
)

notify_queues = sa.Table(
    "notify_queues", metadata, _id(), _account(),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("polling_wait_seconds", sa.Integer, nullable=False),
    sa.Column("visibility_timeout_seconds", sa.Integer, nullable=False),
    sa.Column("max_message_bytes", sa.Integer, nullable=False),
    sa.Column("retention_seconds", sa.Integer, nullable=False),
    sa.Column("delay_seconds", sa.Integer, nullable=False),
    sa.Column("base64_bodies", sa.Boolean, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.UniqueConstraint("account_id", "name", name="uq_notify_queues_account_name"),
)

notify_queue_messages = sa.Table(
    "notify_queue_messages", metadata, _id(),
    sa.Column("queue_id", sa.Integer, sa.ForeignKey("notify_queues.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("delivery_id", sa.Integer, sa.ForeignKey("notify_deliveries.id", ondelete="SET NULL"), index=True),
    sa.Column("body", sa.Text, nullable=False),  # as receivers get it (base64 already applied when the queue says so)
    sa.Column("enqueued_at", TS, nullable=False),
    sa.Column("visible_at", TS, nullable=False),  # delay, then invisibility after each receive (R24)
    sa.Column("expires_at", TS, nullable=False, index=True),  # enqueued_at + retention
    sa.Column("receive_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("first_received_at", TS),
    sa.Column("receipt", sa.String(64), unique=True),  # handle of the latest receive
    sa.Index("ix_notify_queue_messages_visible", "queue_id", "visible_at"),
)

notify_subscriptions = sa.Table(
    "notify_subscriptions", metadata, _id(), _account(),
    sa.Column("topic", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),  # http | queue
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("signing_secret_enc", sa.Text),
    sa.Column("created_at", TS, nullable=False),
    sa.UniqueConstraint("account_id", "topic", "kind", "target", name="uq_notify_subscriptions_account_topic"),
)

# The notifier's claim, `WHERE routed_at IS NULL ORDER BY id`, reads this index instead of
# scanning every event ever written.
sa.Index("ix_events_unrouted", events.c.routed_at, events.c.id)

# --- replay and retry protection (issue 11): owned by ingress.api.nonces and cleanup.idempotency ---

# A signed API request's nonce, per AccessKey, until its timestamp leaves the window: every
# listener and every restart refuses the same nonce (the primary key decides a concurrent race).
api_nonces = sa.Table(
    "api_nonces", metadata,
    sa.Column("access_key_id", sa.String(64), primary_key=True),
    sa.Column("nonce", sa.String(64), primary_key=True),  # SHA-256 hex of the client's nonce (any length)
    sa.Column("expires_at", TS, nullable=False, index=True),
)

# A send's retry key -> the EnvId it got, written in the transaction that queued the message, so a
# retry (API ClientToken; SMTP sender + Message-ID + recipients) gets the first EnvId back.
idempotency_keys = sa.Table(
    "idempotency_keys", metadata,
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),  # SHA-256 hex of the scope and the key material
    sa.Column("fingerprint", sa.String(64)),  # API: SHA-256 of the request, to refuse a token reused for another
    sa.Column("env_id", sa.String(32)),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False, index=True),
)
