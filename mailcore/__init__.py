"""mailcore: a self-hosted DirectMail-compatible mail push service, configured as code.

The packages, in the order mail flows (each package's docstring says what it owns and which
requirement ids, R1..R38 of the guide's catalogue, it implements):

    spec/      the account's desired state: load, JSON Schema, semantic checks (R1-R20, R22-R24, R28)
    store/     tables, migrations, secrets at rest: the one store every stage shares
    plan/      the store against the config: diff, refusals, apply in one transaction
    account/   the account's read side: senders, keys, allow-list, domain keys and status,
               template review, reply-to verification (R1, R3, R9, R13-R15, R20, R28)
    message/   what cleanup and qmgr both build: rendering (R19) and DKIM signing
    ingress/   smtpd/ (R31, R32) and api/ (R30, the SDK's actions): network-facing, hand
               submissions to cleanup; batch.py, the console's batch job (R29)
    cleanup/   the one writer of the queue: checks, quotas (R2), the message, the commit
    queue/     queue states and qmgr: leases, retries (R33), outcomes and their events
    delivery/  outbound SMTP, bounce classification (R25, R27, R33), the invalid base (R37)
    notify/    events to the operator's endpoints: rules, http, queues, topics (R21-R26)
    harness/   the fake MX and its pytest plugin (tests, users' own tests)
    testing/   the whole mail core as a pytest fixture, on a virtual clock (users' own tests)
    service.py runs the stages (`invoke serve`)
    cli/       what the invoke tasks and `python -m mailcore` do

Imports go one way: cli -> service -> ingress -> cleanup -> queue -> delivery, notify ->
message, account -> plan, spec, store. tests/test_layout.py holds the tree to it.
"""

__version__ = "0.1.0"
