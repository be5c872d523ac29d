"""Tests of mailcore.ingress: SMTP submission and the DirectMail-compatible API."""
