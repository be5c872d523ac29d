"""Tests of mailcore.ingress.smtpd (R31, R32): smtplib against the running listener."""
