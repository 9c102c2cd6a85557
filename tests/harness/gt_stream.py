# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""Raw HTTP/1.1 over TLS for what http.client cannot do: Expect: 100-continue
(headers first, body only after the interim answer), bodies generated on the
fly (50 MB never held), and clients that hang up mid-body.  Also: httpd
children's memory from /proc."""
import hashlib
import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: list                              # [(name, value)]
    body: bytes
    interim: list = field(default_factory=list)   # statuses of 1xx answers seen

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


def pattern_body(size, seed=b"gettoken"):
    """An iterator of bytes blocks, `size` bytes in all, deterministic for `seed`."""
    block = 64 * 1024
    base = hashlib.sha256(seed).digest() * (block // 32)
    i = 0
    sent = 0
    while sent < size:
        n = min(block, size - sent)
        # a different block each time (the counter in front), cheap to make
        b = (b"%016x" % i) + base[16:n] if n > 16 else (b"%016x" % i)[:n]
        yield b
        sent += n
        i += 1


def pattern_sha256(size, seed=b"gettoken"):
    h = hashlib.sha256()
    for b in pattern_body(size, seed):
        h.update(b)
    return h.hexdigest()


class RawClient:
    def __init__(self, port, ca_file, identity=None, timeout=60):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(ca_file)
        if identity is not None:
            ctx.load_cert_chain(identity.cert_path, identity.key_path)
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        self.sock.settimeout(timeout)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Hang up at once with a TCP reset (no TLS close_notify)."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # --- sending -----------------------------------------------------------
    def send_head(self, method, path, headers):
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1"]
        lines += ["%s: %s" % (k, v) for k, v in headers]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def send_body(self, blocks, chunked, limit=None):
        """Send the blocks (chunk-framed if chunked); stop after `limit` bytes
        (without the closing chunk).  Returns the bytes of payload sent."""
        sent = 0
        for b in blocks:
            if limit is not None and sent + len(b) > limit:
                b = b[:limit - sent]
            if b:
                self.sock.sendall((b"%x\r\n" % len(b) + b + b"\r\n") if chunked else b)
                sent += len(b)
            if limit is not None and sent >= limit:
                return sent
        if chunked:
            self.sock.sendall(b"0\r\n\r\n")
        return sent

    # --- receiving ---------------------------------------------------------
    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed by the server")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_head(self):
        status_line = self._line().decode("latin-1")
        parts = status_line.split(" ", 2)
        status = int(parts[1])
        headers = []
        while True:
            h = self._line()
            if not h:
                break
            k, _, v = h.decode("latin-1").partition(":")
            headers.append((k.strip(), v.strip()))
        return status, (parts[2] if len(parts) > 2 else ""), headers

    def read_response(self, method="PUT", interim=None):
        interim = list(interim or [])
        while True:
            status, reason, headers = self.read_head()
            if 100 <= status < 200:
                interim.append(status)
                continue
            break
        resp = RawResponse(status, reason, headers, b"", interim)
        if method == "HEAD" or status in (204, 304):
            return resp
        te = (resp.header("Transfer-Encoding") or "").lower()
        cl = resp.header("Content-Length")
        if "chunked" in te:
            body = []
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                body.append(self._take(size))
                self._take(2)
            resp.body = b"".join(body)
        elif cl is not None:
            resp.body = self._take(int(cl))
        else:
            try:
                while True:
                    self._fill()
            except ConnectionError:
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def wait_interim(self, timeout):
        """After sending headers with Expect: 100-continue: the status of the
        first answer (100, or a final status), or None if none came in time."""
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            while b"\r\n\r\n" not in self.buf:
                self._fill()
        except (socket.timeout, TimeoutError):
            return None
        finally:
            self.sock.settimeout(old)
        status = int(self.buf.split(b" ", 2)[1])
        if status == 100:
            self.read_head()        # consume it
        return status

    def request(self, method, path, headers, blocks=None, length=None, chunked=False,
                expect_100=False, continue_timeout=10):
        """One request; the body (an iterable of bytes blocks) is framed with
        Content-Length `length` or chunked.  Returns a RawResponse."""
        headers = list(headers)
        if length is not None:
            headers.append(("Content-Length", str(length)))
        if chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        if expect_100:
            headers.append(("Expect", "100-continue"))
        self.send_head(method, path, headers)
        interim = []
        if expect_100:
            st = self.wait_interim(continue_timeout)
            if st is None:
                raise AssertionError("no 100 Continue (nor any answer) within %ss" % continue_timeout)
            if st != 100:
                return self.read_response(method)     # a final answer: no body sent
            interim.append(100)
        if blocks is not None:
            self.send_body(blocks, chunked)
        return self.read_response(method, interim)


# --- httpd children's memory -------------------------------------------------
def children(ppid):
    """pids whose parent is ppid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        fields = st.rsplit(")", 1)[1].split()
        if int(fields[1]) == ppid:
            out.append(int(d))
    return sorted(out)


def mem_kb(pid):
    """{'VmHWM': kB, 'VmRSS': kB} of pid, or None if it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            vals = {}
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmHWM", "VmRSS"):
                    vals[k] = int(v.split()[0])
            return vals
    except OSError:
        return None


def run_concurrently(worker, n, timeout=120):
    """worker(0) ... worker(n - 1), each in its own thread, all started
    before any is joined; each join bounded by timeout seconds."""
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)


def wait_until(pred, timeout, step=0.05):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v or time.time() > deadline:
            return v
        time.sleep(step)
