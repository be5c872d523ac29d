"""Ingress: where mail enters the service. Network-facing; hands every submission to cleanup
through the `Submitter` protocol (mailcore.cleanup.submission) and never writes the queue.

- smtpd/: SMTP submission (R31, R32, with R1, R3, R9, R15, R28 checked per session)
- api/: the DirectMail-compatible HTTP API the official SDK calls (R30, R13, the read actions)
- batch: the console's batch send job, a list times an approved template (R29)

May import: cleanup (its submission contract), account, spec, store.
"""
