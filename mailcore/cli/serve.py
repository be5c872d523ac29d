"""`invoke serve`: run the mail core's stages until SIGINT/SIGTERM; `--dev`: the development mode
(loopback clients skip the allow-list and the activation delay, delivery goes to a local fake MX)."""
from __future__ import annotations

from mailcore.cli.common import EXIT_OK, CommandError, load_config, store_at
from mailcore.store.crypto import MasterKeyError, SecretBox

# development mode: retries a developer can watch (greylist@dest.test is delivered within seconds)
DEV_QUEUE = {"retry_min_seconds": 5, "retry_max_seconds": 60}
DEV_BANNER = ("development mode: loopback clients skip the IP allow-list (R28) and the sender activation delay "
              "(R15), and mail is delivered only to a local fake MX; never use --dev in production")


def serve(config: str, store_url: str | None = None, stages: str | None = None, dev: bool = False) -> int:
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
    world = None
    try:
        service = Service(loaded.spec, store, box, stages=tuple(stages.split(",")) if stages else STAGES,
                          state_dir=state_dir(), dev=dev)
        if dev:
            world = _dev_world(service)
        asyncio.run(service.run_until_signalled(ready=lambda line: print(line, flush=True)))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    except Exception as exc:
        from mailcore.cleanup.process import CleanupUnavailable
        from mailcore.ingress.smtpd.settings import SmtpConfigError
        if isinstance(exc, (SmtpConfigError, CleanupUnavailable, OSError)):
            raise CommandError(f"cannot start: {exc}") from None
        raise
    finally:
        if world is not None:
            world.stop()
    return EXIT_OK


def _dev_world(service):
    """Say so loudly; with qmgr, start the local recipient world and point delivery at it."""
    import sys

    from mailcore.harness.world import RecipientWorld

    print(f"mailcore: {DEV_BANNER}", flush=True)
    print(f"WARNING: {DEV_BANNER}", file=sys.stderr, flush=True)
    if "qmgr" not in service.stages:
        return None
    world = RecipientWorld().start()
    svc = service.spec.service
    svc.delivery = {**svc.delivery, **world.delivery_settings()}
    svc.queue = {**svc.queue, **{k: min(v, svc.queue.get(k, v)) for k, v in DEV_QUEUE.items()}}
    for line in world.describe():
        print(f"mailcore: development mode: {line}", flush=True)
    return world
