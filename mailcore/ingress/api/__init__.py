"""The DirectMail-compatible HTTP API, callable unchanged by the official SDK (R30, R13, and the
read actions of ../shared/reference/DIRECTMAIL-API.md).

- app: the Starlette app, `ApiServer`, `serve_api`; routes every action
- signature: ACS3-HMAC-SHA256 and RPC HMAC-SHA1 verification
- nonces: replay protection in the store (every listener, every restart); sends hand theirs to cleanup
- errors: the one error table (the SDK's JSON shape)
- params: typed request parameters
- sending: SingleSendMail, BatchSendMail (through cleanup)
- reading, queries: the read actions and their store queries
- verifying: reply-to verification (R13)
- config_owned: create/modify/delete actions answer that config in git owns the entity
- context: what an action handler gets; bench: `invoke bench`'s API figures

Submodules are imported where used, so `errors` does not pull in the web server.
May import: cleanup.submission, cleanup.idempotency (the claim), account, spec, store.
"""
