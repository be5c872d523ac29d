"""Tests of mailcore.delivery: outbound SMTP against the fake MX, the bounce table, the invalid base."""
