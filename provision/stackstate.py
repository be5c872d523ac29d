"""What an interrupted Pulumi run leaves in the file backend, and how it is cleared.

Why: ``kill -9`` or Ctrl-C during ``pulumi up`` leaves (1) a lock file, so every later update fails
with "the stack is currently locked", (2) ``pending_operations`` in the checkpoint (resources the
CLI had started to create, update or delete), and (3) the dynamic-provider plugin process, which
Pulumi starts in a process group of its own and which then lives on as an orphan.

- A lock records ``pid``, ``username``, ``hostname`` and ``timestamp`` (the Pulumi CLI's process).
  It is stale when it was taken on this host and that process is gone (or the pid now belongs to
  something that is not Pulumi). Only stale locks are removed automatically; ``invoke dns.unlock
  --force`` removes the others (another host's run the operator knows is dead).
- Pending operations are dropped by ``stack export``, removing ``pending_operations``, ``stack
  import``, as Pulumi documents. That is safe for this provider: every write is idempotent against
  live DNS (a create finding exactly its record set adopts it, a delete finding nothing is done, an
  update compares with live DNS), so the next ``up`` re-does whatever was interrupted.
"""
from __future__ import annotations

import json
import os
import signal
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StackLock:
    path: Path
    pid: int | None
    user: str
    host: str
    timestamp: str

    def describe(self) -> str:
        return f"{self.user}@{self.host} (pid {self.pid}) at {self.timestamp}"


def lock_files(backend: Path, project: str, stack: str) -> list[StackLock]:
    """The stack's lock files (project-scoped layout, and the older ``locks/<stack>/``)."""
    base = backend / ".pulumi" / "locks"
    paths = sorted(base.glob(f"*/{project}/{stack}/*.json")) + sorted((base / stack).glob("*.json"))
    out = []
    for path in paths:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        pid = data.get("pid")
        out.append(StackLock(path, pid if isinstance(pid, int) else None, str(data.get("username") or "?"),
                             str(data.get("hostname") or "?"), str(data.get("timestamp") or "?")))
    return out


def process_alive(pid: int) -> bool:
    """Is ``pid`` a running Pulumi process? (A reused pid running something else does not count.)"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust the pid
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False  # a zombie has ended
    return b"pulumi" in cmdline


def is_stale(lock: StackLock, hostname: str | None = None) -> bool:
    return lock.host == (hostname or socket.gethostname()) and lock.pid is not None and not process_alive(lock.pid)


def remove_lock(lock: StackLock) -> None:
    for p in (lock.path, lock.path.with_name(lock.path.name + ".attrs")):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def pending_operations(state_file: Path) -> list[dict]:
    try:
        latest = json.loads(state_file.read_text())["checkpoint"]["latest"] or {}
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return list(latest.get("pending_operations") or [])


def resource_names(state_file: Path, resource_type: str) -> set[str]:
    """Names of the resources of ``resource_type`` the checkpoint holds (not pending deletion)."""
    try:
        latest = json.loads(state_file.read_text())["checkpoint"]["latest"] or {}
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    return {r["urn"].rsplit("::", 1)[-1] for r in latest.get("resources") or []
            if r.get("type") == resource_type and not r.get("delete")}


def orphaned_providers(backend_url: str) -> list[int]:
    """Dynamic-provider plugin processes of this backend whose Pulumi CLI has died (their parent is
    no longer a Pulumi process: init or a subreaper adopted them)."""
    out = []
    proc = Path("/proc")
    if not proc.is_dir():
        return out
    want = f"PULUMI_BACKEND_URL={backend_url}".encode()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if b"pulumi.dynamic" not in cmdline:
                continue
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[-1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if want in environ and not _is_pulumi(ppid):
            out.append(int(entry.name))
    return out


def _is_pulumi(pid: int) -> bool:
    try:
        return b"pulumi" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def end_processes(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
