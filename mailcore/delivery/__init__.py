"""Delivery: from a claimed recipient to a classified outcome.

- transport: MX lookup, outbound SMTP (aiosmtplib), opportunistic STARTTLS, next MX on failure
- bounce: every reply classified by the guide's tables, one row per documented code
  (status, failed_type, retry, invalid address: R25, R27, R33, R37)
- reasons, enhanced, phrases: the general classification of a reply no row names (issue 13):
  DirectMail's own texts, the RFC 3463 registry, receiver phrases grouped by reason
- invalid: the invalid-address base (R37), queried by cleanup and the RCPT check

May import: store. Never the queue: qmgr calls delivery, not the other way round.
"""
