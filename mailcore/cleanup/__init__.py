"""cleanup: the one way into the queue (Postfix's cleanup(8)).

- submission: what ingress hands over (Submission, Recipient), the Submitter protocol, and the
  refusal table (REFUSALS: each reason with its SMTP line, API error and requirement id)
- writer: Cleanup, which checks a submission (R1, R3, R9, R15, R16, R19-R21, R28, R37), builds
  and signs the message, and writes it with its recipients in one transaction (group commit)
- quota: daily and monthly quotas counted atomically with the write (R2)
- identity: an SMTP message's From must be the authenticated sender (one field, one mailbox)
- idempotency: in the write's transaction, replayed API nonces refused and retries (ClientToken,
  SMTP Message-ID) answered with the first EnvId
- process: cleanup in its own process, fed over a socket (what `invoke serve` runs)

The caller's success reply is sent only after the commit. May import: queue.states, message,
account, store.
"""
