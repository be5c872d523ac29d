"""The command line: what the invoke tasks (tasks.py) and `python -m mailcore` call.

Each command returns an exit code (0 ok, 3 changes, 2 error) or raises CommandError, printed as
one line with its fix and no traceback.

- common: exit codes, consoles, CommandError, opening the store, loading the config
- account: validate, plan, apply, verify, template review
- dns: the DNS half of plan/apply/verify (provision, Pulumi)
- state: what the store holds; secrets: local secrets for development
- serve: run the stages; queue, send, invalid, notify: operate them
- main: `python -m mailcore`

May import anything below it, and provision.
"""
