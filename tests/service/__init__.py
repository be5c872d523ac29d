"""Tests of mailcore.service: invoke serve's stages together."""
