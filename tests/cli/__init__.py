"""Tests of mailcore.cli: the commands as the invoke tasks run them."""
