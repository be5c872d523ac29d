"""Tests of mailcore.plan: diff, refusals, apply."""
