# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""A recording HTTP/1.1 backend on 127.0.0.1 (the "existing MDM" behind mod_proxy).

Every request it gets is recorded: method, request target, every header as
received (names and values, in order), the framing (Content-Length or chunked),
whether it asked for 100-continue, and the body's length and SHA-256 (hashed
as it streams in: a 50 MB body is never held; bodies up to KEEP_BODY bytes are
kept for byte-for-byte comparison).  Requests are keyed by their X-Test-Id
header.  Keep-alive, chunked request bodies and Expect: 100-continue are
handled, since mod_proxy_http uses all three.

    with RecordingBackend() as b:
        ... b.port ...
        rec = b.wait(test_id)          # a Record, or None after the timeout
"""
import hashlib
import socketserver
import threading
import time
from dataclasses import dataclass, field

KEEP_BODY = 1024 * 1024
MARKER = b"PROXIED-OK "


@dataclass
class Record:
    method: str
    target: str
    version: str
    headers: list                       # [(name, value)] as received
    chunked: bool = False
    expect_100: bool = False
    body_len: int = 0
    body_sha256: str = ""
    body: bytes = None                  # kept when body_len <= KEEP_BODY
    complete: bool = False              # the body ended as its framing said
    error: str = ""
    when: float = field(default_factory=time.time)

    def header(self, name):
        """The value of the one header `name` (case-insensitive); asserts it is not repeated."""
        vals = self.header_all(name)
        assert len(vals) <= 1, "header %s repeated: %r" % (name, vals)
        return vals[0] if vals else None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]


class _BadRequest(Exception):
    pass


class _Handler(socketserver.StreamRequestHandler):
    timeout = 60            # per socket operation: no load runs unbounded

    def handle(self):
        while True:
            try:
                if not self._one_request():
                    return
            except (OSError, _BadRequest):
                return

    def _readline(self):
        line = self.rfile.readline(65537)
        if len(line) > 65536:
            raise _BadRequest("line too long")
        return line

    def _one_request(self):
        line = self._readline()
        if not line:
            return False
        try:
            method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ")
        except ValueError:
            raise _BadRequest(line)
        headers = []
        while True:
            h = self._readline()
            if not h:
                raise _BadRequest("eof in headers")
            if h in (b"\r\n", b"\n"):
                break
            k, _, v = h.decode("latin-1").partition(":")
            headers.append((k.strip(), v.strip()))
        rec = Record(method, target, version, headers)
        low = {}
        for k, v in headers:
            low.setdefault(k.lower(), v)
        te = low.get("transfer-encoding", "").lower()
        rec.chunked = "chunked" in te
        rec.expect_100 = low.get("expect", "").lower() == "100-continue"
        if rec.expect_100:
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()
        sha = hashlib.sha256()
        kept = []
        try:
            if rec.chunked:
                self._read_chunked(rec, sha, kept)
            else:
                n = int(low.get("content-length", "0"))
                self._read_exact(n, rec, sha, kept)
            rec.complete = True
        except (OSError, _BadRequest, ValueError) as e:
            rec.error = repr(e)
        rec.body_sha256 = sha.hexdigest()
        if rec.body_len <= KEEP_BODY:
            rec.body = b"".join(kept)
        self.server.backend._add(rec, low.get("x-test-id"))
        if not rec.complete:
            return False
        out = MARKER + (low.get("x-test-id") or "").encode()
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Backend: proxy\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(out) + out)
        self.wfile.flush()
        return low.get("connection", "").lower() != "close"

    def _feed(self, data, rec, sha, kept):
        rec.body_len += len(data)
        sha.update(data)
        if rec.body_len <= KEEP_BODY:
            kept.append(data)

    def _read_exact(self, n, rec, sha, kept):
        while n > 0:
            data = self.rfile.read(min(n, 256 * 1024))
            if not data:
                raise _BadRequest("eof in body (%d bytes missing)" % n)
            self._feed(data, rec, sha, kept)
            n -= len(data)

    def _read_chunked(self, rec, sha, kept):
        while True:
            size_line = self._readline()
            if not size_line:
                raise _BadRequest("eof in chunk size")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:                  # trailers up to the empty line
                    t = self._readline()
                    if not t:
                        raise _BadRequest("eof in trailers")
                    if t in (b"\r\n", b"\n"):
                        return
            self._read_exact(size, rec, sha, kept)
            if self._readline() not in (b"\r\n", b"\n"):
                raise _BadRequest("no CRLF after chunk")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class RecordingBackend:
    def __init__(self):
        self._srv = _Server(("127.0.0.1", 0), _Handler)
        self._srv.backend = self
        self.port = self._srv.server_address[1]
        self._lock = threading.Condition()
        self.records = []               # every Record, in arrival order
        self.by_id = {}                 # X-Test-Id -> [Record]
        self._thread = threading.Thread(target=self._srv.serve_forever, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._srv.shutdown()
        self._srv.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()

    def _add(self, rec, test_id):
        with self._lock:
            self.records.append(rec)
            if test_id:
                self.by_id.setdefault(test_id, []).append(rec)
            self._lock.notify_all()

    def wait(self, test_id, timeout=5.0):
        """The Record for X-Test-Id test_id (asserting there is exactly one), or None."""
        deadline = time.time() + timeout
        with self._lock:
            while test_id not in self.by_id:
                left = deadline - time.time()
                if left <= 0:
                    return None
                self._lock.wait(left)
            recs = self.by_id[test_id]
            assert len(recs) == 1, "backend got test id %s %d times" % (test_id, len(recs))
            return recs[0]

    def seen(self, test_id):
        with self._lock:
            return list(self.by_id.get(test_id, []))
