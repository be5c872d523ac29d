"""`invoke serve`: run the mail core's stages until SIGINT/SIGTERM."""
from __future__ import annotations

from mailcore.cli.common import EXIT_OK, CommandError, load_config, store_at
from mailcore.store.crypto import MasterKeyError, SecretBox


def serve(config: str, store_url: str | None = None, stages: str | None = None) -> int:
    """Run the mail core until SIGINT/SIGTERM."""
    import asyncio
    import logging

    from mailcore.service import STAGES, Service
    from mailcore.store.db import state_dir

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    store = store_at(store_url)
    loaded = load_config(config, store)
    if not loaded.spec.service.listeners and (not stages or {"smtpd", "api"} & set(stages.split(","))):
        raise CommandError(f"{config} declares no listeners; add a `service:` section (see config/service.yaml)")
    try:
        box = SecretBox.from_env()
    except MasterKeyError as exc:
        raise CommandError(str(exc)) from None
    try:
        service = Service(loaded.spec, store, box, stages=tuple(stages.split(",")) if stages else STAGES,
                          state_dir=state_dir())
        asyncio.run(service.run_until_signalled(ready=lambda line: print(line, flush=True)))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    except Exception as exc:
        from mailcore.cleanup.process import CleanupUnavailable
        from mailcore.ingress.smtpd.settings import SmtpConfigError
        if isinstance(exc, (SmtpConfigError, CleanupUnavailable, OSError)):
            raise CommandError(f"cannot start: {exc}") from None
        raise
    return EXIT_OK
