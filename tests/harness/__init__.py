"""Tests of mailcore.harness: the fake MX and its pytest plugin."""
