"""The fake MX's JSON endpoint, for tests in other processes and languages (the e2e suite, users'
own suites): ``GET /messages?rcpt=ADDR``, ``GET /replies?rcpt=ADDR&phase=rcpt``, ``GET /feedback``,
``GET /health``, and ``POST /reset``. The standard library's threading HTTP server is enough
for a handful of test clients and adds no dependency."""
from __future__ import annotations

import json
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class HttpApi:
    def __init__(self, mx, *,  # mx: the FakeMX (server.py) whose log it serves
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.mx = mx
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> "HttpApi":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-mx-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(5)

    def _handler_class(self):
        mx = self.mx

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt, *args):  # quiet: tests read the JSON, not the access log
                pass

            def _send(self, status: int, body) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urlsplit(self.path)
                q = {k: v[-1] for k, v in parse_qs(url.query).items()}
                if url.path == "/messages":
                    self._send(200, [m.as_json() for m in mx.messages(rcpt=q.get("rcpt"))])
                elif url.path == "/replies":
                    self._send(200, [asdict(r) for r in mx.replies(rcpt=q.get("rcpt"), phase=q.get("phase"))])
                elif url.path == "/feedback":
                    self._send(200, [asdict(f) for f in mx.feedback(rcpt=q.get("rcpt"))])
                elif url.path == "/health":
                    self._send(200, {"smtp": f"{mx.host}:{mx.port}", "tls": mx.tls is not None})
                else:
                    self._send(404, {"error": f"no such endpoint {url.path}",
                                     "endpoints": ["/messages", "/replies", "/feedback", "/health", "POST /reset"]})

            def do_POST(self):
                if urlsplit(self.path).path == "/reset":
                    mx.reset()
                    self._send(200, {"reset": True})
                else:
                    self._send(404, {"error": f"no such endpoint {self.path}"})

        return Handler
