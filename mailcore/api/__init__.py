"""The DirectMail-compatible HTTP API (issue 4): `app` (Starlette app, `ApiServer`, `serve_api`),
`signature` (ACS3-HMAC-SHA256 and RPC HMAC-SHA1), `errors` (the one error table), `sending`,
`reading` and `queries` (the read layer), `config_owned`, `bench`.

Submodules are imported where used, so `mailcore.api.errors` does not pull in the web server."""
