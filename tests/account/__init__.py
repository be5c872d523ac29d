"""Tests of mailcore.account: template review and reply-to verification (R13, R20)."""
