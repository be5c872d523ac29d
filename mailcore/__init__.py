"""mailcore: a self-hosted DirectMail-compatible mail push service, configured as code."""

__version__ = "0.1.0"
