"""End to end: config, DNS, serve, SMTP and the SDK, the fake MX, notifications."""
