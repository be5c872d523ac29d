"""Tests of mailcore.notify (R21-R26): routing, webhooks, queues, topics."""
