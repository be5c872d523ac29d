"""Obtain a working Pulumi CLI for this project (standard library only).

``ensure_pulumi()`` returns a directory holding a ``pulumi`` binary that prints
the expected version stamp and the ``pulumi-resource-pulumi-python`` shim that
dynamic providers need.  Sources, tried in order:

1. a cached CLI in the cache directory whose ``pulumi version`` is the expected one;
2. a ``pulumi`` on PATH whose ``pulumi version`` works (>= MIN_PATH_VERSION);
   it is symlinked into the cache directory next to the shim;
3. the official installer, only if https://get.pulumi.com answers within 3 s;
4. a build from the Go module proxy (needs ``go``; minutes on a cold cache).

Layout: the cache directory is an *install root*, as for the official installer:
``<cache_dir>/bin/pulumi`` and ``<cache_dir>/bin/pulumi-resource-pulumi-python``.
``ensure_pulumi()`` returns ``<cache_dir>/bin``.  For the Automation API pass the
install root, i.e. the parent of the returned directory::

    bin_dir = ensure_pulumi()
    cmd = auto.PulumiCommand(root=str(bin_dir.parent))   # runs <root>/bin/pulumi

Command line: ``python -m provision.pulumi_cli [--cache-dir DIR]`` prints the
directory and the time it took.

Environment:
  MAILCORE_TOOLS_DIR  tools directory (default ~/.cache/mailcore/tools); the CLI goes
                      into ``$MAILCORE_TOOLS_DIR/pulumi-<version>``.
  XDG_CACHE_HOME      if set, the cache root is ``$XDG_CACHE_HOME/mailcore``.
Go caches (module download cache and build cache) live in ``<cache root>/go``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterator

PULUMI_VERSION = "3.274.1"
# Oldest CLI accepted from PATH: inline refresh/destroy in the Python
# Automation API need a parsed version >= 3.181.
MIN_PATH_VERSION = (3, 181, 0)

PKG_MODULE = "github.com/pulumi/pulumi/pkg/v3"
SDK_MODULE = "github.com/pulumi/pulumi/sdk/v3"
CMD_PACKAGE = PKG_MODULE + "/cmd/pulumi"
VERSION_VAR = SDK_MODULE + "/go/common/version.Version"
INSTALLER_URL = "https://get.pulumi.com"
INSTALLER_TIMEOUT_S = 3.0

SHIM_NAME = "pulumi-resource-pulumi-python"
SHIM_TEXT = '#!/bin/sh\nexec "${PULUMI_PYTHON_CMD:-python3}" -u -m pulumi.dynamic "$@"\n'

HEARTBEAT_S = 30.0

Progress = Callable[[str], None]


class PulumiCliError(RuntimeError):
    """No working Pulumi CLI could be obtained; the message says why and how to fix it."""


# --------------------------------------------------------------------------- paths


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/mailcore`` or ``~/.cache/mailcore``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mailcore"


def default_cache_dir(version: str = PULUMI_VERSION) -> Path:
    """``$MAILCORE_TOOLS_DIR/pulumi-<version>`` or ``<cache root>/tools/pulumi-<version>``."""
    tools = os.environ.get("MAILCORE_TOOLS_DIR")
    tools_dir = Path(tools) if tools else cache_root() / "tools"
    return tools_dir / f"pulumi-{version}"


def go_cache_dir() -> Path:
    return cache_root() / "go"


# --------------------------------------------------------------------------- helpers


def pulumi_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for any pulumi invocation: never wait on the update check."""
    env = dict(os.environ if base is None else base)
    env["PULUMI_SKIP_UPDATE_CHECK"] = "true"
    return env


def _pulumi_version(binary: Path | str) -> str | None:
    """Output of ``<binary> version`` (stripped), or None if it does not run."""
    try:
        out = subprocess.run(
            [str(binary), "version"],
            env=pulumi_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip()


def _parse_version(text: str | None) -> tuple[int, int, int] | None:
    m = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?", (text or "").strip())
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def _write_shim(bin_dir: Path) -> None:
    shim = bin_dir / SHIM_NAME
    try:
        if shim.read_text() == SHIM_TEXT and not shim.is_symlink():
            shim.chmod(0o755)
            return
    except OSError:
        pass
    tmp = bin_dir / f".{SHIM_NAME}.{os.getpid()}.tmp"
    tmp.write_text(SHIM_TEXT)
    tmp.chmod(0o755)
    os.replace(tmp, shim)


def _human_size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


class _Clock:
    def __init__(self, progress: Progress) -> None:
        self.t0 = time.monotonic()
        self._progress = progress

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def say(self, msg: str) -> None:
        self._progress(f"[pulumi-cli {self.elapsed():6.1f}s] {msg}")


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """Serialise slow installs of the same cache dir between processes."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def _heartbeat(clock: _Clock, what: Callable[[], str]) -> Iterator[None]:
    """Report progress every HEARTBEAT_S seconds while a long step runs."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(HEARTBEAT_S):
            try:
                clock.say(what())
            except Exception:  # never let reporting kill the build
                pass

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()


# --------------------------------------------------------------------------- steps


def _from_cache(bin_dir: Path, expected: str) -> bool:
    binary = bin_dir / "pulumi"
    return binary.exists() and _pulumi_version(binary) == expected


def _find_on_path(bin_dir: Path) -> str | None:
    """``pulumi`` on PATH, ignoring our own bin dir."""
    try:
        ours = bin_dir.resolve()
    except OSError:
        ours = bin_dir
    dirs = []
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if not d:
            continue
        try:
            if Path(d).resolve() == ours:
                continue
        except OSError:
            pass
        dirs.append(d)
    return shutil.which("pulumi", path=os.pathsep.join(dirs))


def _link_into(bin_dir: Path, target: str) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    tmp = bin_dir / f".pulumi.{os.getpid()}.link"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(os.path.realpath(target), tmp)
    os.replace(tmp, bin_dir / "pulumi")


def _installer_reachable() -> bool:
    req = urllib.request.Request(INSTALLER_URL, method="HEAD")
    try:
        with urllib.request.urlopen(req, timeout=INSTALLER_TIMEOUT_S):
            return True
    except urllib.error.HTTPError:
        return True  # the server answered
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _run_installer(root: Path, version: str, clock: _Clock) -> str | None:
    """Run the official installer into ``root`` (-> root/bin). Returns an error or None."""
    curl = shutil.which("curl")
    if not curl:
        return "curl not found"
    with tempfile.TemporaryDirectory(prefix="pulumi-install-") as tmp:
        script = Path(tmp) / "install.sh"
        r = subprocess.run(
            [curl, "-fsSL", "-o", str(script), INSTALLER_URL],
            capture_output=True, text=True, timeout=120,
        )
        if r.returncode != 0:
            return (r.stderr.strip().splitlines() or ["curl failed"])[-1]
        clock.say(f"running the official installer for v{version}")
        r = subprocess.run(
            ["sh", str(script), "--version", version, "--install-root", str(root), "--no-edit-path"],
            env=pulumi_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900,
        )
        if r.returncode != 0:
            tail = (r.stderr.strip() or r.stdout.strip()).splitlines()
            return tail[-1] if tail else f"installer exited {r.returncode}"
    return None


def _go_env(go_root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["GOMODCACHE"] = str(go_root / "mod")
    env["GOCACHE"] = str(go_root / "build")
    env["CGO_ENABLED"] = "0"
    flags = env.get("GOFLAGS", "").split()
    if "-modcacherw" not in flags:  # lets plain `rm -rf` clean the module cache
        flags.append("-modcacherw")
    env["GOFLAGS"] = " ".join(flags)
    env["GOWORK"] = "off"  # never pick up a go.work from an enclosing directory
    return env


def _last_line(text: str, default: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else default


def _count_zips(mod_cache: Path) -> int:
    n = 0
    for _dirpath, _dirs, files in os.walk(mod_cache / "cache" / "download"):
        n += sum(1 for f in files if f.endswith(".zip"))
    return n


def _download_gomods(go: str, env: dict[str, str], workdir: Path, version: str) -> dict[str, dict]:
    """``go mod download -json`` pkg/v3 and sdk/v3; returns module path -> info."""
    try:
        r = subprocess.run(
            [go, "mod", "download", "-json", f"{PKG_MODULE}@v{version}", f"{SDK_MODULE}@v{version}"],
            cwd=workdir, env=env, capture_output=True, text=True, timeout=900,
        )
    except subprocess.TimeoutExpired:
        raise PulumiCliError(
            f"`go mod download` of Pulumi v{version} took over 15 minutes; "
            "fix: check network access to the Go module proxy (GOPROXY) and rerun"
        ) from None
    infos: dict[str, dict] = {}
    dec, text, i = json.JSONDecoder(), r.stdout, 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        obj, i = dec.raw_decode(text, i)
        infos[obj.get("Path", "")] = obj
    errors = [f"{p}: {o['Error']}" for p, o in infos.items() if o.get("Error")]
    if r.returncode != 0 or errors or len(infos) < 2:
        why = errors[0] if errors else _last_line(r.stderr, f"go mod download exited {r.returncode}")
        why = " ".join(why.split())  # Go errors span lines; keep the message on one line
        proxy = subprocess.run([go, "env", "GOPROXY"], env=env, capture_output=True, text=True)
        proxy_s = proxy.stdout.strip() or "?"
        raise PulumiCliError(
            f"cannot fetch Pulumi v{version} from the Go module proxy ({why}); "
            f"fix: check network/GOPROXY={proxy_s}, or pick a served version "
            f"(`go list -m -versions {PKG_MODULE}`), or install the Pulumi CLI and put it on PATH"
        )
    return infos


def _gomod_info(go: str, env: dict[str, str], gomod: str) -> dict:
    r = subprocess.run([go, "mod", "edit", "-json", gomod], env=env, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise PulumiCliError(
            f"cannot parse {gomod} ({_last_line(r.stderr, 'go mod edit failed')}); "
            "fix: delete the Go module cache under ~/.cache/mailcore/go and retry"
        )
    return json.loads(r.stdout)


def _wrapper_gomod(version: str, mods: list[dict]) -> tuple[str, list[str]]:
    """go.mod text of the wrapper module and the replace lines it carries."""
    go_version = "1.21"
    for m in mods:
        if _version_key(m.get("Go") or "0") > _version_key(go_version):
            go_version = m["Go"]
    replaces: dict[str, str] = {}
    # pkg (the module that owns cmd/pulumi) comes first and wins conflicts.
    for m in mods:
        for rep in m.get("Replace") or []:
            old, new = rep["Old"], rep["New"]
            if not new.get("Version"):
                continue  # local directory replacement (e.g. sdk => ../sdk): not applicable
            lhs = old["Path"] + (f" {old['Version']}" if old.get("Version") else "")
            replaces.setdefault(lhs, f"{new['Path']} {new['Version']}")
    lines = [f"replace {lhs} => {rhs}" for lhs, rhs in replaces.items()]
    text = (
        "module mailcore.invalid/pulumi-cli-build\n\n"
        f"go {go_version}\n\n"
        "require (\n"
        f"\t{PKG_MODULE} v{version}\n"
        f"\t{SDK_MODULE} v{version}\n"
        ")\n\n" + "\n".join(lines) + ("\n" if lines else "")
    )
    return text, lines


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


def _build_from_source(bin_dir: Path, version: str, clock: _Clock) -> None:
    go = shutil.which("go")
    if not go:
        raise PulumiCliError(
            "no usable Pulumi CLI on PATH, get.pulumi.com unreachable and no Go toolchain to build one; "
            f"fix: install Go >= 1.26 (https://go.dev/dl) or install Pulumi CLI v{version} on PATH"
        )
    go_root = go_cache_dir()
    go_root.mkdir(parents=True, exist_ok=True)
    env = _go_env(go_root)
    gover = subprocess.run([go, "version"], env=env, capture_output=True, text=True).stdout.strip()
    clock.say(f"building from the Go module proxy with {gover}; caches in {go_root}")

    bin_dir.mkdir(parents=True, exist_ok=True)
    log_path = go_root / f"build-pulumi-{version}.log"
    with tempfile.TemporaryDirectory(prefix="pulumi-wrapper-", dir=go_root) as tmp:
        work = Path(tmp)
        clock.say(f"resolving {PKG_MODULE}@v{version} and {SDK_MODULE}@v{version}")
        infos = _download_gomods(go, env, work, version)
        mods = [_gomod_info(go, env, infos[p]["GoMod"]) for p in (PKG_MODULE, SDK_MODULE)]
        gomod, replace_lines = _wrapper_gomod(version, mods)
        (work / "go.mod").write_text(gomod)
        clock.say("wrapper go.mod: " + ("; ".join(replace_lines) or "no replace lines"))

        out = bin_dir / f".pulumi.{os.getpid()}.tmp"
        cmd = [
            go, "build", "-mod=mod", "-trimpath",
            "-tags", "osusergo,grpcnotrace",
            "-ldflags", f"-X {VERSION_VAR}=v{version}",
            "-o", str(out), CMD_PACKAGE,
        ]
        mod_cache = go_root / "mod"
        clock.say("go build (downloads modules and compiles; several minutes on a cold cache)")
        t0 = time.monotonic()
        with open(log_path, "w") as log, _heartbeat(
            clock,
            lambda: f"go build still running ({time.monotonic() - t0:.0f}s, "
            f"{_count_zips(mod_cache)} modules in cache)",
        ):
            log.write("$ " + " ".join(cmd) + "\n")
            log.flush()
            r = subprocess.run(cmd, cwd=work, env=env, stdin=subprocess.DEVNULL,
                               stdout=log, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            with contextlib.suppress(FileNotFoundError):
                out.unlink()
            why = " ".join(_last_line(log_path.read_text(), "no output").split())
            raise PulumiCliError(
                f"go build of pulumi v{version} failed ({why}); "
                f"fix: see {log_path}; if the Go toolchain is too old install a newer one "
                "(or unset GOTOOLCHAIN=local), then rerun"
            )
        os.replace(out, bin_dir / "pulumi")
    clock.say(f"built {bin_dir / 'pulumi'} ({_human_size((bin_dir / 'pulumi').stat().st_size)}) "
              f"in {time.monotonic() - t0:.0f}s")


# --------------------------------------------------------------------------- API


def ensure_pulumi(cache_dir: Path | None = None, *, progress: Progress = print) -> Path:
    """Return a directory containing a working ``pulumi`` and the python dynamic-provider shim.

    ``cache_dir`` is an install root (default :func:`default_cache_dir`); the returned
    directory is ``cache_dir / "bin"``.  Raises :class:`PulumiCliError` on failure.
    """
    clock = _Clock(progress)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    root = root.expanduser().absolute()
    bin_dir = root / "bin"
    expected = f"v{PULUMI_VERSION}"

    # (1) cached
    if _from_cache(bin_dir, expected):
        _write_shim(bin_dir)
        clock.say(f"cached pulumi {expected} in {bin_dir}")
        return bin_dir

    with _lock(root / ".lock"):
        if _from_cache(bin_dir, expected):  # another process finished it meanwhile
            _write_shim(bin_dir)
            clock.say(f"cached pulumi {expected} in {bin_dir}")
            return bin_dir

        # (2) PATH
        found = _find_on_path(bin_dir)
        if found:
            got = _pulumi_version(found)
            parsed = _parse_version(got)
            if parsed and parsed >= MIN_PATH_VERSION:
                _link_into(bin_dir, found)
                _write_shim(bin_dir)
                note = "" if got == expected else f" (project pins {expected})"
                clock.say(f"using pulumi {got} from PATH ({found}){note}; linked into {bin_dir}")
                return bin_dir
            clock.say(f"ignoring {found} on PATH: `pulumi version` gave {got!r}, "
                      f"need >= v{'.'.join(map(str, MIN_PATH_VERSION))}")
        else:
            clock.say("no pulumi on PATH")

        # (3) official installer
        clock.say(f"checking {INSTALLER_URL} (timeout {INSTALLER_TIMEOUT_S:.0f}s)")
        if _installer_reachable():
            try:
                err = _run_installer(root, PULUMI_VERSION, clock)
            except (OSError, subprocess.SubprocessError) as e:
                err = " ".join(str(e).split())
            if err is None and _pulumi_version(bin_dir / "pulumi") == expected:
                _write_shim(bin_dir)
                clock.say(f"installed pulumi {expected} into {bin_dir}")
                return bin_dir
            clock.say(f"official installer did not work ({err or 'wrong version stamp'}); "
                      "falling back to a source build")
        else:
            clock.say(f"{INSTALLER_URL} unreachable; building from the Go module proxy")

        # (4) build from source
        _build_from_source(bin_dir, PULUMI_VERSION, clock)
        got = _pulumi_version(bin_dir / "pulumi")
        if got != expected:
            raise PulumiCliError(
                f"built {bin_dir / 'pulumi'} but `pulumi version` printed {got!r}, not {expected}; "
                f"fix: delete {root} and rerun"
            )
        _write_shim(bin_dir)
        clock.say(f"pulumi {expected} ready in {bin_dir}")
        return bin_dir


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m provision.pulumi_cli",
                                 description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--cache-dir", type=Path, default=None,
                    help=f"install root (default {default_cache_dir()})")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)
    progress: Progress = (lambda _m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    t0 = time.monotonic()
    try:
        bin_dir = ensure_pulumi(args.cache_dir, progress=progress)
    except PulumiCliError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(bin_dir)
    print(f"took {time.monotonic() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
