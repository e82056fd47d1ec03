"""A fault-injecting HTTP proxy on loopback, put between boto3 (as its endpoint_url) and the moto server: it
forwards every request and, on the requests a test picks, cuts the response body off after some bytes,
answers 503 SlowDown, or answers a ranged GET with a well-formed but short 206. It logs every request, so a
test can count the GETs each object took."""

from __future__ import annotations

import http.client
import re
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Request:
    method: str
    key: str  # the path without its query: /bucket/key
    range: str | None
    # How many requests with this method and key came before this one.
    nth: int


@dataclass(frozen=True)
class Drop:
    """Send the headers and this many body bytes, then close the connection."""

    after_bytes: int


@dataclass(frozen=True)
class SlowDown:
    """Answer 503 SlowDown, as S3 does when asked too fast, without forwarding."""


@dataclass(frozen=True)
class Short:
    """Answer a ranged GET with its first `body_bytes` only, headers saying so (a short 206)."""

    body_bytes: int


Fault = Drop | SlowDown | Short
_SLOW_DOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
# Headers about one hop's connection, which the proxy sets itself.
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding"}


class FaultProxy:
    """Forwards to `upstream` (http://host:port); `faults(request)` picks what each request meets."""

    def __init__(self, upstream: str, faults: Callable[[Request], Fault | None] = lambda request: None):
        self.faults = faults
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        upstream_host, upstream_port = urllib.parse.urlsplit(upstream).netloc.split(":")
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                request, fault = proxy._admit(self.command, self.path, self.headers.get("Range"))
                if isinstance(fault, SlowDown):
                    return self._answer(503, [("Content-Type", "application/xml")], _SLOW_DOWN_BODY)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream = http.client.HTTPConnection(upstream_host, int(upstream_port))
                try:
                    upstream.request(self.command, self.path, body, dict(self.headers.items()))
                    response = upstream.getresponse()
                    status, headers, payload = response.status, response.getheaders(), response.read()
                finally:
                    upstream.close()
                # A HEAD answer keeps the object's Content-Length; the others get their payload's.
                dropped = _HOP_HEADERS if self.command == "HEAD" else {*_HOP_HEADERS, "content-length"}
                headers = [(k, v) for k, v in headers if k.lower() not in dropped]
                if isinstance(fault, Short) and status == 206:
                    payload = payload[: fault.body_bytes]
                    headers = [_shortened(k, v, len(payload)) for k, v in headers]
                cut = fault.after_bytes if isinstance(fault, Drop) else None
                self._answer(status, headers, payload, cut)

            def _answer(self, status, headers, payload, cut=None):
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload[:cut])
                if cut is not None:
                    self.wfile.flush()
                    self.close_connection = True

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _admit(self, method: str, path: str, range_header: str | None) -> tuple[Request, Fault | None]:
        key = urllib.parse.urlsplit(path).path
        with self._lock:
            nth = sum(r.method == method and r.key == key for r in self.requests)
            request = Request(method, key, range_header, nth)
            self.requests.append(request)
            return request, self.faults(request)

    def gets(self, key: str) -> list[Request]:
        return [r for r in self.requests if r.method == "GET" and r.key == key]

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def _shortened(name: str, value: str, body_bytes: int) -> tuple[str, str]:
    if name.lower() != "content-range":
        return name, value
    start, total = re.fullmatch(r"bytes (\d+)-\d+/(\d+)", value).groups()
    return name, f"bytes {start}-{int(start) + body_bytes - 1}/{total}"
