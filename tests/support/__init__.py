"""What the tests share: servers (PostgreSQL, DNS, the fake MX, a running service) and helpers; each directory's conftest.py exposes the fixtures it uses."""
