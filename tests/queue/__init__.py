"""Tests of mailcore.queue: queue states and qmgr."""
