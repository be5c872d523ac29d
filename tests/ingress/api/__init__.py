"""Tests of mailcore.ingress.api: the official SDK and httpx against the running API."""
