"""The DirectMail-compatible HTTP API (Starlette): what the official SDK calls, unchanged.

One endpoint, `POST /` (GET too, for hand-written RPC clients): verify the signature over the
request as received, take the action from `x-acs-action` (V3) or `Action` (RPC), merge query and
form-body parameters, and hand them to the action's handler. Handlers are thin and live by
concern: `sending` (SingleSendMail, BatchSendMail -> cleanup), `reading` (query actions over the
read layer `queries`), `config_owned` (mutations answered with one error). Every answer is JSON
with a RequestId; every error is an `ApiError` from the one table in `errors`.
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import socket
import threading
import time
from typing import Callable, Iterable
from urllib.parse import parse_qsl

import uvicorn
from sqlalchemy.exc import OperationalError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mailcore.account import replyto
from mailcore.account.catalog import Catalog, normalize_ip
from mailcore.cleanup.process import CleanupUnavailable
from mailcore.store import Store, StoreError
from mailcore.cleanup.submission import Submitter

from .actions import check_routing
from .config_owned import CONFIG_OWNED, refuse
from .context import ActionContext
from .errors import ApiError, new_request_id
from .params import Params
from .queries import ApiQueries
from .reading import READ_ACTIONS
from .verifying import REPLY_TO_ACTIONS, approve_link
from .sending import SEND_ACTIONS
from .nonces import StoreNonces
from .signature import _AUTH, V3_ALGORITHM, Credential, SignatureVerifier, SignedRequest, v3_signature, v3_string_to_sign

log = logging.getLogger("mailcore.ingress.api")

API_VERSION = "2015-11-23"
MAX_BODY_BYTES = 10 * 1024 * 1024  # the SDK docs allow ~8 MB of body in a request; service.limits.api_max_body_bytes
PRECHECK_BYTES = 64 * 1024  # an ACS3 request with a body over this (or of unknown length) is checked on its headers first
CACHE_SECONDS = 5.0  # how long an access key or an allow-list answer is reused


class TtlCache:
    """Answers from the store remembered for `ttl` seconds, so the hot path (a client sending with
    one key from one address) does no store reads and no thread hops. A change applied with
    `invoke apply` (a disabled key, an allow-list entry) takes effect within `ttl` seconds."""

    MAX_ENTRIES = 10_000  # misses are cached too; a flood of made-up keys cannot grow memory

    def __init__(self, load: Callable, ttl: float, clock: Callable[[], float] = time.monotonic):
        self.load, self.ttl, self.clock = load, ttl, clock
        self._entries: dict = {}

    def fresh(self, key):
        """(True, value) when cached and fresh, else (False, None): no I/O."""
        hit = self._entries.get(key)
        if hit is not None and hit[0] > self.clock():
            return True, hit[1]
        return False, None

    def __call__(self, key):
        found, value = self.fresh(key)
        if found:
            return value
        value = self.load(*key) if isinstance(key, tuple) else self.load(key)
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (self.clock() + self.ttl, value)
        return value

    async def get(self, key):
        """The value, read from the store in a worker thread only on a miss."""
        found, value = self.fresh(key)
        return value if found else await run_in_threadpool(self, key)


def _credential_loader(catalog: Catalog) -> Callable[[str], Credential | None]:
    def load(access_key_id: str) -> Credential | None:
        view = catalog.access_key(access_key_id)
        return None if view is None else Credential(view.access_key_id, view.account, view.secret, view.enabled)
    return load


def _client_ip(request: Request, trusted: list) -> str:
    """The peer address, or with the peer a trusted proxy, the nearest untrusted X-Forwarded-For hop."""
    peer = request.client.host if request.client else ""

    def is_trusted(ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in trusted)

    if not trusted or not is_trusted(peer):
        return normalize_ip(peer)
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            return normalize_ip(hop)
    return normalize_ip(hops[0] if hops else peer)


async def _read_body(request: Request, limit: int) -> bytes:
    """The raw body (its bytes are what the signature covers), refused past `limit` bytes: by its
    Content-Length before reading anything, or as soon as a streamed body goes past it."""
    too_big = ApiError("InvalidBody", f"The request body is over {limit} bytes.")
    declared = request.headers.get("content-length") or "0"
    if declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


async def _precheck_v3(request: Request, keys: TtlCache) -> None:
    """ACS3 signs the body's SHA-256 as a header (x-acs-content-sha256), so a large body need
    not be read to find a forged request: check the signature over the headers and that hash
    first. Nothing is claimed (the nonce) and nothing is trusted yet: the full check runs
    after the body is read, and also compares the body with the hash."""
    auth = request.headers.get("authorization") or ""
    declared = request.headers.get("content-length")
    if not auth.startswith("ACS3-") or (declared is not None and declared.isdigit() and int(declared) <= PRECHECK_BYTES):
        return
    m = _AUTH.fullmatch(auth)
    claimed = request.headers.get("x-acs-content-sha256") or ""
    if m is None or m["alg"] != V3_ALGORITHM or not claimed:
        return  # malformed: the full check names what is wrong (on a body no larger than the limit)
    cred = await keys.get(m["ak"])
    if cred is None or not cred.enabled:
        return  # unknown or disabled: the full check says so
    headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in request.scope["headers"]]
    head = SignedRequest(method=request.method, path=request.scope["path"],
                         raw_query=request.scope["query_string"].decode("utf-8", "replace"), headers=headers,
                         body=b"", form=[])
    sts = v3_string_to_sign(head, m["sh"].split(";"), claimed.lower())
    if not hmac.compare_digest(v3_signature(cred.secret, sts), m["sig"].lower()):
        raise ApiError("SignatureDoesNotMatch", "The signature over the request headers does not match.")


def error_response(err: ApiError, request_id: str) -> JSONResponse:
    return JSONResponse(err.body(request_id), status_code=err.status, headers={"x-acs-request-id": request_id})


def create_app(store: Store, submitter: Submitter, *, clock: Callable[[], float] = time.time, region: str | None = None,
               trusted_proxies: Iterable[str] = (), catalog: Catalog | None = None,
               cache_seconds: float = CACHE_SECONDS, base_url: str | None = None,
               max_body_bytes: int | None = None) -> Starlette:
    """The API as an ASGI app. `clock` (epoch seconds) drives the timestamp window; `region` is the
    region this endpoint serves (R1); `trusted_proxies` (IPs or CIDRs) may set X-Forwarded-For;
    `base_url` is where links in mail (reply-to confirmation) point: the configured one, else this
    listener's own address (its socket, never the request's Host header); `max_body_bytes` caps a
    request body (default MAX_BODY_BYTES, 10 MiB)."""
    check_routing((SEND_ACTIONS, REPLY_TO_ACTIONS, READ_ACTIONS), CONFIG_OWNED)  # the README's table is the truth
    catalog = catalog or Catalog(store)
    queries = ApiQueries(store)
    keys = TtlCache(_credential_loader(catalog), cache_seconds)
    allowlist = TtlCache(catalog.ip_allowed, cache_seconds)
    verifier = SignatureVerifier(keys, clock=clock)
    nonces = StoreNonces(store, verifier.window, clock)  # the store decides replays, for every listener
    trusted = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]
    desk = replyto.ReplyToDesk(store)

    async def endpoint(request: Request) -> JSONResponse:
        request_id = new_request_id()
        try:
            out = await _handle(request)
        except ApiError as err:
            return error_response(err, request_id)
        except (OperationalError, StoreError) as exc:
            log.error("store unavailable: %s", exc)
            return error_response(ApiError("ServiceUnavailable"), request_id)
        except CleanupUnavailable as exc:
            log.error("request %s: submission unavailable: %s", request_id, exc)
            return error_response(ApiError("ServiceUnavailable.Submission"), request_id)
        except Exception:  # a bug: keep the traceback in the log, give the client the documented code
            log.exception("request %s failed", request_id)
            return error_response(ApiError("InternalError"), request_id)
        return JSONResponse({"RequestId": request_id, **out}, headers={"x-acs-request-id": request_id})

    async def _handle(request: Request) -> dict:
        if request.method not in ("GET", "POST"):
            raise ApiError("UnsupportedHTTPMethod")
        await _precheck_v3(request, keys)
        body = await _read_body(request, max_body_bytes or MAX_BODY_BYTES)
        form: list[tuple[str, str]] = []
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded") and body:
            try:
                form = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
            except UnicodeDecodeError:
                raise ApiError.invalid("Body", "The form body is not UTF-8.") from None
        signed = SignedRequest(method=request.method, path=request.scope["path"],
                               raw_query=request.scope["query_string"].decode("utf-8", "replace"),
                               headers=[(k.decode("latin-1").lower(), v.decode("latin-1"))
                                        for k, v in request.scope["headers"]],
                               body=body, form=form)
        await keys.get(signed.access_key_id())  # warm the cache off the event loop; verify then does no I/O
        verified = verifier.verify(signed, claim=False)
        # the nonce is claimed in the store now, or for a send, with its message (then it is the submitter's)
        action_submitter = await nonces.admit(verified, submitter, verified.action in SEND_ACTIONS)
        if not verified.action:
            raise ApiError.missing("Action")
        if not verified.version:
            raise ApiError.missing("Version")
        if verified.version != API_VERSION:
            raise ApiError("InvalidVersion")
        action = verified.action
        ctx = ActionContext(account=verified.credential.account, access_key_id=verified.credential.access_key_id,
                            client_ip=_client_ip(request, trusted), region=region, queries=queries, submitter=action_submitter,
                            ip_allowed=allowlist.get, reply_to=desk, base_url=base_url or _own_url(request))
        params = Params(dict([*signed.query_pairs(), *form]))
        if action in SEND_ACTIONS:
            return await SEND_ACTIONS[action](ctx, params)
        if action in REPLY_TO_ACTIONS:
            return await REPLY_TO_ACTIONS[action](ctx, params)
        if action in READ_ACTIONS:
            return await run_in_threadpool(READ_ACTIONS[action], ctx, params)
        if action in CONFIG_OWNED:
            raise refuse(action)
        raise ApiError("InvalidApi.NotFound")

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
    return Starlette(routes=[Route("/", endpoint, methods=methods),
                             Route(replyto.APPROVE_PATH, approve_link(desk), methods=["GET", "POST"])])


def _own_url(request: Request) -> str:
    """This listener's address as its socket has it (not the Host header a client may forge)."""
    host, port = request.scope.get("server") or ("127.0.0.1", 80)
    host = f"[{host}]" if ":" in host else host
    return f"{request.scope.get('scheme', 'http')}://{host}:{port}/"


def _uvicorn(app, *, tls: tuple | None = None, **kw) -> uvicorn.Server:
    """uvicorn for `app`; with `tls` (cert file, key file) it serves HTTPS (TLS 1.2 or newer)."""
    if tls is not None:
        import ssl
        kw.update(ssl_certfile=str(tls[0]), ssl_keyfile=str(tls[1]), ssl_version=ssl.PROTOCOL_TLS_SERVER)
    # proxy_headers off: uvicorn would trust X-Forwarded-For from loopback; `trusted_proxies` decides here
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", proxy_headers=False, **kw)
    return _Uvicorn(config)


class _Uvicorn(uvicorn.Server):
    async def shutdown(self, sockets=None) -> None:
        """As uvicorn's, but an idle HTTPS keep-alive connection is dropped at once: closed the TLS
        way, it would hold the shutdown up to 30 s waiting for the client's close_notify."""
        if self.config.is_ssl:
            for conn in list(self.server_state.connections):
                cycle = getattr(conn, "cycle", None)
                if (cycle is None or getattr(cycle, "response_complete", False)) and getattr(conn, "transport", None):
                    conn.transport.abort()
        await super().shutdown(sockets)


async def serve_api(store: Store, submitter: Submitter, host: str = "127.0.0.1", port: int = 8080, *,
                    tls: tuple | None = None, **options) -> None:
    """Serve the API in the running event loop until cancelled (for `invoke serve`, beside smtpd).
    `tls` (cert file, key file) serves HTTPS; `options` go to `create_app` (region, trusted_proxies, clock)."""
    server = _uvicorn(create_app(store, submitter, **options), host=host, port=port, tls=tls)
    await server.serve()


def listen_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for uvicorn (`serve(sockets=[...])`), so the port is known before serving.
    IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY on accepted sockets only when the listening
    socket's proto says TCP; without it every response body waits ~40 ms behind delayed ACKs."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class ApiServer:
    """An ASGI app served by uvicorn on 127.0.0.1 in a background thread (tests, benchmarks).

    The socket is bound before the thread starts, so `port` is known at once; `start()` returns
    when the server accepts connections."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, *, tls: tuple | None = None):
        self.app = app
        self.sock = listen_socket(host, port)
        self.host, self.port = self.sock.getsockname()[:2]
        self.scheme = "https" if tls else "http"
        self.server = _uvicorn(app, tls=tls)
        self.thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.endpoint}"

    def start(self, timeout: float = 10.0) -> ApiServer:
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve(sockets=[self.sock])),
                                       name=f"api-{self.port}", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"API server on {self.endpoint} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread:
            self.thread.join(10)
        self.sock.close()

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
