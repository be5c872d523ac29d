"""The DNS stack: an inline Pulumi Automation API program with one resource per record set.

Why inline + file backend: no Pulumi.yaml to keep in sync, no language host, no cloud account;
state lives under the state directory (``<state>/pulumi/backend``) and is encrypted with a
passphrase.  The work dir (``<state>/pulumi/work``) is persistent because the passphrase salt is
kept in ``Pulumi.<stack>.yaml``.

The ownership token and DKIM key are *inputs*: the caller generates them once
(``provision.records.generate_domain_keys``) and keeps them (the mail core needs the DKIM private
key to sign), and passes ``{domain: (token, selector, dkim_public_b64)}`` here.

TSIG secrets never enter the program or the state: each rfc2136 backend's secret is resolved
here and handed to the Pulumi CLI (and thus the provider plugin) as an environment variable whose
*name* is the only thing the resource records.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from mailcore.spec.model import DnsBackendSpec, DomainSpec, RegionSpec
from mailcore.spec.secrets import parse_ref

from . import stackstate
from .records import DEFAULT_SELECTOR, DesiredRecord, desired_records

PROJECT = "mailcore-dns"
STACK = "dns"
TSIG_ENV_PREFIX = "MAILCORE_DNS_TSIG_"

Progress = Callable[[str], None]
KeyInputs = Mapping[str, tuple[str, str, str]]  # domain -> (ownership token, selector, DKIM public b64)


class DnsConfigError(Exception):
    """The DNS part of the config cannot be turned into a program; one line, with the fix."""


class DnsApplyError(Exception):
    """Pulumi failed; the message lists the failing record sets, one line each."""


# --------------------------------------------------------------------------- the program


def tsig_env_name(backend_name: str) -> str:
    return TSIG_ENV_PREFIX + re.sub(r"[^A-Z0-9]", "_", backend_name.upper())


def backend_environment(backends: Mapping[str, DnsBackendSpec], environ: Mapping[str, str] = os.environ,
                        base_dir: Path | None = None) -> dict[str, str]:
    """``{env var: TSIG secret}`` for every rfc2136 backend with a key (resolved from its SecretRef)."""
    out = {}
    for b in backends.values():
        tsig = b.settings.get("tsig") if b.kind == "rfc2136" else None
        if not isinstance(tsig, dict):
            continue
        ref = parse_ref(tsig.get("secret"), base_dir or Path.cwd())
        if ref is None:
            raise DnsConfigError(f"dns_backends.{b.name}.tsig.secret must be {{env: NAME}} or {{file: PATH}}")
        value, why = ref.resolve(environ)
        if value is None:
            raise DnsConfigError(f"dns_backends.{b.name}.tsig.secret: {why}")
        out[tsig_env_name(b.name)] = value
    return out


def rfc2136_props(rec: DesiredRecord, backend: DnsBackendSpec) -> dict[str, Any]:
    """Inputs of one ``RecordSetResource`` (no secrets: the TSIG secret is named, not carried)."""
    tsig = backend.settings.get("tsig") or {}
    props: dict[str, Any] = {
        "server": str(backend.settings.get("server")),
        "zone": rec.zone,
        "name": rec.rs.name_fqdn,
        "rtype": rec.rs.rtype,
        "ttl": rec.rs.ttl,
        "values": list(rec.rs.values),
        "mode": "spf" if rec.kind == "spf" else "rrset",
        "spf_include": rec.spf_include,
        "tsig_name": tsig.get("name"),
        "tsig_algorithm": tsig.get("algorithm", "hmac-sha256") if tsig else None,
        "tsig_secret_env": tsig_env_name(backend.name) if tsig else None,
    }
    if rec.kind == "spf":
        props.update(spf_value=None, spf_replaced=None, spf_warning=None)  # declared outputs
    return props


def domain_records(domains: list[DomainSpec], regions: Mapping[str, RegionSpec], keys: KeyInputs) -> list[DesiredRecord]:
    out = []
    for d in domains:
        if d.name not in keys:
            raise DnsConfigError(f"domain {d.name}: no ownership token/DKIM key given; generate them first")
        if d.region not in regions:
            raise DnsConfigError(f"domain {d.name}: unknown region {d.region}")
        token, selector, public = keys[d.name]
        out.extend(desired_records(d, regions[d.region], token, public, selector or DEFAULT_SELECTOR))
    return out


class DnsProgram:
    """The inline program declaring every record set of the given domains.

    Callable (Pulumi runs it); ``declared`` lists the RFC 2136 resources as (name, inputs) so
    ``DnsStack.preview`` can tell "nothing to do" without starting Pulumi (see there).
    """

    def __init__(self, recs: list[DesiredRecord], by_domain: Mapping[str, DnsBackendSpec]) -> None:
        self.recs = recs
        self.by_domain = dict(by_domain)
        self.declared = [(r.key, rfc2136_props(r, self.by_domain[r.domain])) for r in recs
                         if self.by_domain[r.domain].kind == "rfc2136"]
        self.rfc2136_only = len(self.declared) == len(recs)

    def __call__(self) -> None:
        import pulumi

        from .dynamic import RecordSetResource

        warnings = {}
        cloud = None
        for rec in self.recs:
            backend = self.by_domain[rec.domain]
            if backend.kind == "rfc2136":
                res = RecordSetResource(rec.key, rfc2136_props(rec, backend))
                if rec.kind == "spf":
                    warnings[rec.domain] = res.spf_warning  # type: ignore[attr-defined]
            else:
                if cloud is None:
                    from .cloud import CloudRecords

                    cloud = CloudRecords()
                cloud.declare(rec, backend)
        if warnings:
            pulumi.export("spf_warnings", warnings)


def make_program(domains: list[DomainSpec], regions: Mapping[str, RegionSpec],
                 backends: Mapping[str, DnsBackendSpec], keys: KeyInputs) -> DnsProgram:
    """The program for ``domains`` (config problems are raised here, before Pulumi runs)."""
    for d in domains:
        if d.dns not in backends:
            raise DnsConfigError(f"domain {d.name}: unknown dns backend {d.dns!r}")
    recs = domain_records(domains, regions, keys)
    return DnsProgram(recs, {d.name: backends[d.dns] for d in domains})


def empty_program() -> None:
    """A program with no resources: the baseline the benchmark compares against."""


# --------------------------------------------------------------------------- the stack


@dataclass
class PlannedStep:
    op: str  # create, update, replace, delete, same, ...
    name: str  # resource name (domain/kind)
    type: str
    diffs: list[str] = field(default_factory=list)


@dataclass
class PreviewSummary:
    changes: dict[str, int]  # Pulumi's change summary, e.g. {"same": 12, "update": 1}
    steps: list[PlannedStep]

    @property
    def has_changes(self) -> bool:
        return any(n for op, n in self.changes.items() if op != "same")


@dataclass
class UpSummary:
    changes: dict[str, int]
    outputs: dict[str, Any]
    warnings: list[str]


class DnsStack:
    """One Pulumi stack for the account's DNS, with a local file backend under ``state_dir``."""

    def __init__(self, state_dir: Path | str, program: Callable[[], None], *, passphrase: str,
                 env: Mapping[str, str] | None = None, stack: str = STACK, project: str = PROJECT,
                 bin_dir: Path | None = None) -> None:
        self.root = Path(state_dir).absolute() / "pulumi"
        self.program = program
        self.passphrase = passphrase
        self.extra_env = dict(env or {})
        self.stack_name = stack
        self.project = project
        self.bin_dir = bin_dir
        self._stack = None
        self._lock = threading.Lock()

    # ---- set-up

    def _env(self) -> dict[str, str]:
        env = {
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_PYTHON_CMD": sys.executable,
            "PULUMI_CONFIG_PASSPHRASE": self.passphrase,
            "PULUMI_BACKEND_URL": (self.root / "backend").as_uri(),
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        }
        env.update(self.extra_env)
        return env

    def stack(self):
        """The Automation API stack, created on first use (cheap afterwards)."""
        with self._lock:
            if self._stack is None:
                from pulumi import automation as auto

                from .pulumi_cli import default_cache_dir, ensure_pulumi

                # the first run obtains the CLI (a build takes minutes): say so as it goes, on stderr
                quiet = (default_cache_dir() / "bin" / "pulumi").exists()
                bin_dir = self.bin_dir or ensure_pulumi(progress=(lambda _m: None) if quiet else _say)
                (self.root / "backend").mkdir(parents=True, exist_ok=True)
                (self.root / "work").mkdir(parents=True, exist_ok=True)
                cmd = auto.PulumiCommand(root=str(Path(bin_dir).parent))
                opts = auto.LocalWorkspaceOptions(
                    work_dir=str(self.root / "work"),
                    pulumi_command=cmd,
                    env_vars=self._env(),
                    secrets_provider="passphrase",
                    project_settings=auto.ProjectSettings(
                        name=self.project, runtime="python",
                        backend=auto.ProjectBackend(url=(self.root / "backend").as_uri())),
                )
                self._stack = auto.create_or_select_stack(self.stack_name, project_name=self.project,
                                                          program=self._run_program, opts=opts)
            return self._stack

    def _run_program(self) -> None:
        self.program()

    # ---- operations

    def preview(self, progress: Progress | None = None, on_event: Callable | None = None, *,
                shortcut: bool = True) -> PreviewSummary:
        """What ``up`` would do.  With ``shortcut`` a provably unchanged stack is answered without Pulumi."""
        if shortcut:
            same = self.unchanged()
            if same is not None:
                if progress:
                    progress(f"dns: {len(same.steps)} record sets unchanged (state and live DNS match)")
                return same
        steps: list[PlannedStep] = []

        def collect(ev) -> None:
            pre = getattr(ev, "resource_pre_event", None)
            if pre is not None:
                md = pre.metadata
                if not (md.type == "pulumi:pulumi:Stack" or md.type.startswith("pulumi:providers:")):
                    op = md.op.value if hasattr(md.op, "value") else str(md.op)
                    steps.append(PlannedStep(op, md.urn.rsplit("::", 1)[-1], md.type, list(md.diffs or [])))
            if on_event:
                on_event(ev)

        res = self._call("preview", progress, collect)
        changes = {(k.value if hasattr(k, "value") else str(k)): v for k, v in (res.change_summary or {}).items()}
        return PreviewSummary(changes, steps)

    def state_file(self) -> Path:
        return self.root / "backend" / ".pulumi" / "stacks" / self.project / f"{self.stack_name}.json"

    def unchanged(self) -> PreviewSummary | None:
        """A no-change preview computed without Pulumi, or None when it cannot be proven.

        Why: a Pulumi preview of this stack costs about a second more than an empty one, almost all
        of it starting the Python dynamic-provider plugin, while "nothing changed" is the common
        answer of ``plan``.  This reads the file backend's checkpoint and applies exactly the
        provider's own ``diff`` (same inputs, live DNS still equal to what was written); anything
        unexpected (pending operations, other resource types, an unreadable state, a DNS error)
        returns None and the caller runs the real preview.
        """
        from .dynamic import RESOURCE_TYPE, _drifted, same_inputs

        declared = getattr(self.program, "declared", None)
        if declared is None or not getattr(self.program, "rfc2136_only", False):
            return None
        try:
            latest = json.loads(self.state_file().read_text())["checkpoint"]["latest"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not latest or latest.get("pending_operations"):
            return None
        found = {}
        for r in latest.get("resources") or []:
            t = r.get("type", "")
            if t == RESOURCE_TYPE:
                if r.get("delete") or r.get("pendingReplacement"):
                    return None
                found[r["urn"].rsplit("::", 1)[-1]] = r
            elif not (t == "pulumi:pulumi:Stack" or t.startswith("pulumi:providers:pulumi-python")):
                return None
        if set(found) != {name for name, _ in declared}:
            return None
        environ = {**os.environ, **self.extra_env}
        for name, props in declared:
            r = found[name]
            if not same_inputs(r.get("inputs") or {}, props):
                return None
            try:
                if _drifted(r.get("outputs") or {}, environ):
                    return None
            except Exception:  # let the real preview report it properly
                return None
        steps = [PlannedStep("same", name, RESOURCE_TYPE) for name, _ in declared]
        return PreviewSummary({"same": len(steps) + 1}, steps)

    def checkpoint_fingerprint(self) -> str:
        """A sha256 of what the checkpoint holds (each resource's urn, inputs and outputs, pending
        operations), for a saved plan to notice that an apply ran since; "none" while it holds nothing."""
        try:
            latest = json.loads(self.state_file().read_text())["checkpoint"].get("latest") or {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return "none"
        held = sorted(([r.get("urn"), r.get("inputs"), r.get("outputs")] for r in latest.get("resources") or []),
                      key=lambda r: str(r[0]))
        if not held and not latest.get("pending_operations"):
            return "none"  # a stack a preview created holds nothing yet: the same as none
        text = json.dumps({"resources": held, "pending": latest.get("pending_operations") or []},
                          sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def managed_names(self) -> set[str]:
        """The RFC 2136 record sets (``domain/kind``) the stack's checkpoint holds."""
        from .dynamic import RESOURCE_TYPE
        return stackstate.resource_names(self.state_file(), RESOURCE_TYPE)

    def recover(self, progress: Progress | None = None, *, force: bool = False) -> list[str]:
        """Clear what an interrupted run left (see ``provision.stackstate``): stale locks (every lock
        with ``force``), then, once no live run holds the stack, its orphaned provider processes
        and pending operations. Returns what was done, one line each."""
        done: list[str] = []
        held = []
        for lock in stackstate.lock_files(self.root / "backend", self.project, self.stack_name):
            if force or stackstate.is_stale(lock):
                stackstate.remove_lock(lock)
                done.append(f"removed the Pulumi lock of {lock.describe()}"
                            + ("" if force else ": that process is gone"))
            else:
                held.append(lock)
        if held:
            return self._said(done, progress)
        orphans = stackstate.orphaned_providers((self.root / "backend").as_uri())
        if orphans:
            stackstate.end_processes(orphans)
            done.append(f"ended {len(orphans)} orphaned Pulumi provider process(es) of an interrupted run")
        pending = stackstate.pending_operations(self.state_file())
        if pending:
            stack = self.stack()
            exported = stack.export_stack()
            exported.deployment.pop("pending_operations", None)
            stack.import_stack(exported)
            names = sorted({str(op.get("resource", {}).get("urn", "?")).rsplit("::", 1)[-1] for op in pending})
            done.append(f"cleared {len(pending)} pending operation(s) of an interrupted run ({', '.join(names)}); "
                        "this run re-checks them against live DNS")
        return self._said(done, progress)

    @staticmethod
    def _said(done: list[str], progress: Progress | None) -> list[str]:
        for line in done:
            if progress:
                progress(line)
        return done

    def up(self, progress: Progress | None = None, on_event: Callable | None = None) -> UpSummary:
        """``pulumi up`` after clearing an interrupted run's leftovers. When a domain that had no
        record set yet fails part way, the record sets this run published for it are deleted again,
        so a domain is published whole or not at all."""
        self.recover(progress)
        before = self.managed_names()
        try:
            res = self._call("up", progress, on_event)
        except DnsApplyError as exc:
            rolled = self._roll_back_partial(before, progress)
            if rolled:
                raise DnsApplyError(f"{exc}; rolled back the record sets published for {', '.join(rolled)}") from None
            raise
        changes = dict(res.summary.resource_changes or {})
        outputs = {k: v.value for k, v in (res.outputs or {}).items()}
        warnings = [w for w in (outputs.get("spf_warnings") or {}).values() if w]
        return UpSummary(changes, outputs, warnings)

    def _roll_back_partial(self, before: set[str], progress: Progress | None) -> list[str]:
        recs = getattr(self.program, "recs", None)
        if recs is None:
            return []
        after = self.managed_names()
        declared: dict[str, set[str]] = {}
        for r in recs:
            declared.setdefault(r.domain, set()).add(r.key)
        partial = sorted(d for d, keys in declared.items()
                         if not keys & before and keys & after and not keys <= after)
        if not partial:
            return []
        program = self.program
        self.program = DnsProgram([r for r in recs if r.domain not in partial], program.by_domain)
        try:
            self._call("up", progress, None)
        except DnsApplyError:
            return []
        finally:
            self.program = program
        return partial

    def destroy(self, progress: Progress | None = None) -> None:
        self.recover(progress)
        self._call("destroy", progress, None)

    def _call(self, op: str, progress: Progress | None, on_event: Callable | None):
        from pulumi import automation as auto

        stack = self.stack()
        kwargs: dict[str, Any] = {"on_output": _line_splitter(progress) if progress else None, "color": "never"}
        if on_event:
            kwargs["on_event"] = on_event
        try:
            return getattr(stack, op)(**kwargs)
        except auto.errors.CommandError as e:
            raise DnsApplyError(summarize_failure(str(e), op)) from None


_OUR_ERRORS = ("RecordSetExists", "RecordSetChanged", "DnsTimeout", "DnsUnreachable", "DnsRefused",
               "DnsNotAuth", "DnsServerError", "ProviderConfigError", "SpfError")
_ERROR_LINE = re.compile(r"(?:provision\.\w+\.)?(" + "|".join(_OUR_ERRORS) + r"): (.+)")


def summarize_failure(text: str, op: str) -> str:
    """The provider's one-line messages out of Pulumi's output (which carries full tracebacks)."""
    found: list[str] = []
    for line in text.splitlines():
        m = _ERROR_LINE.search(line)
        if m:
            msg = m.group(2).strip().rstrip('"').strip()
            if msg not in found:
                found.append(msg)
    if found:
        return f"dns {op} failed: " + "; ".join(found)
    # Pulumi's own error (a lock, a broken state file, ...): its "error:" lines and the lines that
    # continue them, in one line, so the operator sees what Pulumi said
    lines = text.split(" stderr:", 1)[-1].splitlines() if " stderr:" in text else text.splitlines()
    kept: list[str] = []
    taking = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("error:"):
            taking = True
        elif not stripped or not line[:1].isspace() or stripped.startswith(("File ", "Traceback")):
            taking = False
        if taking and stripped not in kept:
            kept.append(stripped)
    message = " ".join(kept) if kept else (text.strip().splitlines() or ["(no output)"])[-1]
    if "currently locked" in message:
        message += ("; a lock of a dead run on this host is cleared by itself, another one with "
                    "`invoke dns.unlock --force` once you know that run has ended")
    return f"dns {op} failed: " + message[:1500]


def _line_splitter(progress: Progress) -> Callable[[str], None]:
    def emit(chunk: str) -> None:
        for line in chunk.splitlines():
            if line.strip():
                progress(line.rstrip())
    return emit


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
