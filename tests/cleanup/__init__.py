"""Tests of mailcore.cleanup: checks, quotas (R2), the commit, the cleanup process."""
