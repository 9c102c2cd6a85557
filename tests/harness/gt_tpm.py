# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""A software TPM 2.0 for the tests that behaves like a real /dev/tpmrm0.

swtpm alone does not: its own TCTI ("swtpm:") opens a TCP connection per
command and nothing separates one client's objects from another's, so a
TPM handle inherited over fork() still "works" there.  The kernel's
resource manager (/dev/tpmrm0) gives every open file one context: a
context sees only its own transient objects and sessions, the kernel
swaps them in and out of the TPM around each command and flushes them
when the file is closed, and one command runs at a time.

ResourceBroker does the same in front of swtpm, speaking the Microsoft
simulator protocol (the "mssim:" TCTI, which keeps one connection per
TCTI context, like a file descriptor on /dev/tpmrm0).  Per connection it
keeps virtual handles for the transient objects and sessions created
there, loads them (TPM2_ContextLoad) for each command that names them,
saves and flushes them afterwards, and forgets them when the connection
closes.  tpm2-abrmd would be the packaged alternative, but with its
D-Bus TCTI a forked child that loads the tpm2 provider afresh, after the
parent opened a key through it, hangs until killed (tried with tpm2-abrmd
3.0 on Debian 12) -- exactly what an httpd child does.

Run as a program (python3 gt_tpm.py broker LISTEN_PORT SWTPM_PORT) the
broker serves until killed; SoftTPM starts swtpm and the broker for a test
run and stops both.
"""
import os
import socket
import struct
import subprocess
import sys
import threading
import time

ST_NO_SESSIONS, ST_SESSIONS = 0x8001, 0x8002
CC_CONTEXT_LOAD, CC_CONTEXT_SAVE, CC_FLUSH_CONTEXT = 0x161, 0x162, 0x165
CC_GET_CAPABILITY = 0x17A
CAP_COMMANDS = 2
MS_SEND_COMMAND, MS_SESSION_END = 8, 20
TRANSIENT, HMAC_SESSION, POLICY_SESSION = 0x80, 0x02, 0x03
MAX_COMMAND = 4096


def _recv(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def _prompt(sock):
    """No Nagle, no delayed ACK: the mssim TCTI writes a command in two
    pieces, and a delayed ACK would hold the second for 40 ms -- latency a
    /dev/tpmrm0 does not have.  (TCP_QUICKACK wears off; set after reads.)"""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


def _u32(b, off=0):
    return struct.unpack_from(">I", b, off)[0]


def _command(tag, cc, body):
    return struct.pack(">HII", tag, 10 + len(body), cc) + body


class Tpm:
    """The one connection to swtpm's command port (raw TPM commands)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        _prompt(self.sock)

    def run(self, cmd):
        _prompt(self.sock)
        self.sock.sendall(cmd)
        head = _recv(self.sock, 10)
        return head + _recv(self.sock, _u32(head, 2) - 10)

    def context_save(self, handle):
        resp = self.run(_command(ST_NO_SESSIONS, CC_CONTEXT_SAVE, struct.pack(">I", handle)))
        return resp[10:] if _u32(resp, 6) == 0 else None

    def context_load(self, blob):
        resp = self.run(_command(ST_NO_SESSIONS, CC_CONTEXT_LOAD, blob))
        return _u32(resp, 10) if _u32(resp, 6) == 0 else None

    def flush(self, handle):
        self.run(_command(ST_NO_SESSIONS, CC_FLUSH_CONTEXT, struct.pack(">I", handle)))

    def command_attributes(self):
        """TPMA_CC of every command: code -> (handles in, handle out)."""
        attrs, first = {}, 0x11F
        while True:
            resp = self.run(_command(ST_NO_SESSIONS, CC_GET_CAPABILITY,
                                     struct.pack(">III", CAP_COMMANDS, first, 256)))
            more, count = resp[10], _u32(resp, 15)
            for i in range(count):
                a = _u32(resp, 19 + 4 * i)
                attrs[a & 0xFFFF] = ((a >> 25) & 7, bool(a & (1 << 28)))
            if not more or not count:
                return attrs
            first = (max(attrs) & 0xFFFF) + 1


class Context:
    """One client connection: its objects (virtual handle -> saved blob)
    and sessions (handle -> saved blob)."""

    def __init__(self):
        self.objects = {}
        self.sessions = {}


class ResourceBroker:
    def __init__(self, tpm_port):
        self.tpm = Tpm(tpm_port)
        self.lock = threading.Lock()
        self.attrs = self.tpm.command_attributes()
        self.next_vhandle = 0
        self.live = set()       # virtual handles of every connection

    def _vhandle(self):
        """A transient handle no live object has (0x80FF0000-0x80FFFFFF)."""
        while True:
            self.next_vhandle = (self.next_vhandle + 1) & 0xFFFF
            v = 0x80FF0000 | self.next_vhandle
            if v not in self.live:
                self.live.add(v)
                return v

    def _forget(self, ctx, v):
        ctx.objects.pop(v, None)
        self.live.discard(v)

    def execute(self, ctx, cmd):
        with self.lock:
            return self._execute(ctx, cmd)

    def _execute(self, ctx, cmd):
        tag, _, cc = struct.unpack_from(">HII", cmd)
        if cc == CC_FLUSH_CONTEXT and len(cmd) >= 14:
            h = _u32(cmd, 10)
            if h in ctx.objects:            # saved, not loaded: just forget it
                self._forget(ctx, h)
                return struct.pack(">HII", ST_NO_SESSIONS, 10, 0)
            ctx.sessions.pop(h, None)
            return self.tpm.run(cmd)
        n_handles, returns_handle = self.attrs.get(cc, (0, False))
        cmd = bytearray(cmd)
        loaded, sessions = {}, set()
        for i in range(n_handles):
            h = _u32(cmd, 10 + 4 * i)
            if h in ctx.objects:
                real = self.tpm.context_load(ctx.objects[h])
                if real is not None:
                    loaded[real] = h
                    struct.pack_into(">I", cmd, 10 + 4 * i, real)
            elif h >> 24 in (HMAC_SESSION, POLICY_SESSION):
                sessions.add(h)
        if tag == ST_SESSIONS:
            off = 10 + 4 * n_handles
            end = off + 4 + _u32(cmd, off)
            off += 4
            while off + 4 <= end:
                sessions.add(_u32(cmd, off))
                off += 4
                off += 2 + struct.unpack_from(">H", cmd, off)[0] + 1
                off += 2 + struct.unpack_from(">H", cmd, off)[0]
        sessions = {s for s in sessions if s in ctx.sessions}
        for s in sessions:
            self.tpm.context_load(ctx.sessions[s])
        resp = bytearray(self.tpm.run(bytes(cmd)))
        if _u32(resp, 6) == 0 and returns_handle and len(resp) >= 14:
            h = _u32(resp, 10)
            if h >> 24 == TRANSIENT:
                v = self._vhandle()
                loaded[h] = v
                struct.pack_into(">I", resp, 10, v)
            elif h >> 24 in (HMAC_SESSION, POLICY_SESSION):
                sessions.add(h)
        # out of the TPM again: what is gone (a completed sequence, an
        # ended session) fails to save and is forgotten
        for real, v in loaded.items():
            blob = self.tpm.context_save(real)
            if blob is None:
                self._forget(ctx, v)
            else:
                ctx.objects[v] = blob
                self.tpm.flush(real)
        for s in sessions:
            blob = self.tpm.context_save(s)
            if blob is None:
                ctx.sessions.pop(s, None)
            else:
                ctx.sessions[s] = blob
        return bytes(resp)

    def close(self, ctx):
        with self.lock:
            for s in list(ctx.sessions):
                self.tpm.flush(s)
            ctx.sessions.clear()
            for v in list(ctx.objects):
                self._forget(ctx, v)

    # --- the mssim protocol ---------------------------------------------
    def serve_commands(self, conn):
        ctx = Context()
        try:
            while True:
                _prompt(conn)
                kind = _u32(_recv(conn, 4))
                if kind != MS_SEND_COMMAND:
                    break                       # TPM_SESSION_END, or unknown
                _prompt(conn)
                _locality, size = struct.unpack(">BI", _recv(conn, 5))
                if not 10 <= size <= MAX_COMMAND:
                    break
                _prompt(conn)
                resp = self.execute(ctx, _recv(conn, size))
                conn.sendall(struct.pack(">I", len(resp)) + resp + b"\0\0\0\0")
        except (EOFError, OSError):
            pass
        finally:
            self.close(ctx)
            conn.close()

    @staticmethod
    def serve_platform(conn):
        """Power on, NV on, cancel: the TPM is always on; acknowledge."""
        try:
            _prompt(conn)
            while _u32(_recv(conn, 4)) != MS_SESSION_END:
                conn.sendall(b"\0\0\0\0")
                _prompt(conn)
        except (EOFError, OSError):
            pass
        conn.close()

    def serve(self, port):
        listeners = []
        for p, handler in ((port, self.serve_commands), (port + 1, self.serve_platform)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", p))
            s.listen(64)
            listeners.append((s, handler))

        def accept(s, handler):
            while True:
                conn, _ = s.accept()
                threading.Thread(target=handler, args=(conn,), daemon=True).start()

        threads = [threading.Thread(target=accept, args=l, daemon=True) for l in listeners]
        for t in threads:
            t.start()
        print("broker ready", flush=True)
        for t in threads:
            t.join()


def _free_port_pair():
    """A port p with p+1 free too (the mssim TCTI's platform port)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p >= 65535:
            continue
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", p))
                b.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
    raise RuntimeError("no two adjacent free ports")


def _wait_port(port, proc, what, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited %s" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("%s did not listen on %d" % (what, port))


# Persistent keys the tests sign with (owner hierarchy, no auth value).
RSA_HANDLE, EC_HANDLE = "0x81000001", "0x81000002"


class SoftTPM:
    """swtpm plus the resource broker, for one test run.

    tcti: the TCTI string for TPM2OPENSSL_TCTI / TPM2TOOLS_TCTI.
    public_pem[handle]: the PEM public key of each persistent key;
    cert_path[handle]: a certificate for it, self-signed by the TPM."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(os.path.join(directory, "state"))
        self.procs = []
        self._pick_ports()
        self.public_pem = {}
        self.cert_path = {}

    def _pick_ports(self):
        self.swtpm_port = _free_port_pair()
        self.ctrl_port = self.swtpm_port + 1
        self.port = _free_port_pair()
        self.tcti = "mssim:host=127.0.0.1,port=%d" % self.port

    def start(self, attempts=5):
        """Start swtpm and the broker; new ports if another process took
        the ones picked in the meantime."""
        for attempt in range(attempts):
            try:
                return self._start()
            except RuntimeError:
                self.stop()
                if attempt == attempts - 1:
                    raise
                self._pick_ports()

    def _start(self):
        log = open(os.path.join(self.dir, "swtpm.log"), "w")
        swtpm = subprocess.Popen(
            ["swtpm", "socket", "--tpm2", "--tpmstate", "dir=" + os.path.join(self.dir, "state"),
             "--server", "type=tcp,port=%d,bindaddr=127.0.0.1" % self.swtpm_port,
             "--ctrl", "type=tcp,port=%d,bindaddr=127.0.0.1" % self.ctrl_port,
             "--flags", "not-need-init,startup-clear"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(swtpm)
        _wait_port(self.swtpm_port, swtpm, "swtpm")
        blog = open(os.path.join(self.dir, "broker.log"), "w")
        broker = subprocess.Popen([sys.executable, os.path.abspath(__file__), "broker",
                                   str(self.port), str(self.swtpm_port)],
                                  stdin=subprocess.DEVNULL, stdout=blog, stderr=subprocess.STDOUT)
        self.procs.append(broker)
        _wait_port(self.port, broker, "the TPM resource broker")
        return self

    def tools(self, *args):
        """Run a tpm2-tools command against the broker; its stdout."""
        env = dict(os.environ, TPM2TOOLS_TCTI=self.tcti)
        p = subprocess.run(list(args), env=env, cwd=self.dir, capture_output=True, timeout=120)
        if p.returncode != 0:
            raise RuntimeError("%s failed: %s" % (" ".join(args), p.stderr.decode(errors="replace")))
        return p.stdout

    def make_keys(self):
        """An RSA-2048 and an EC P-256 signing key under the owner's
        storage key, made persistent as RSA_HANDLE and EC_HANDLE -- what
        README tells an operator to run."""
        self.tools("tpm2_createprimary", "-C", "o", "-g", "sha256", "-G", "ecc", "-c", "srk.ctx")
        for handle, alg in ((RSA_HANDLE, "rsa2048"), (EC_HANDLE, "ecc256")):
            self.tools("tpm2_create", "-C", "srk.ctx", "-G", alg, "-u", "k.pub", "-r", "k.priv",
                       "-a", "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign")
            self.tools("tpm2_load", "-C", "srk.ctx", "-u", "k.pub", "-r", "k.priv", "-c", "k.ctx")
            self.tools("tpm2_evictcontrol", "-C", "o", "-c", "k.ctx", handle)
            pem = os.path.join(self.dir, "%s.pub.pem" % handle)
            self.tools("tpm2_readpublic", "-c", handle, "-f", "pem", "-o", pem)
            with open(pem, "rb") as f:
                self.public_pem[handle] = f.read()
            # the certificate to upload to ABM, self-signed inside the TPM
            self.cert_path[handle] = os.path.join(self.dir, "%s.cert.pem" % handle)
            self.openssl("req", "-provider", "tpm2", "-provider", "default", "-new", "-x509",
                         "-days", "30", "-key", "handle:" + handle, "-subj", "/CN=abm " + handle,
                         "-out", self.cert_path[handle])
        return self

    def openssl(self, *args):
        env = dict(os.environ, TPM2OPENSSL_TCTI=self.tcti)
        p = subprocess.run(["openssl"] + list(args), env=env, cwd=self.dir, capture_output=True,
                           timeout=120)
        if p.returncode != 0:
            raise RuntimeError("openssl %s failed: %s" % (" ".join(args), p.stderr.decode(errors="replace")))
        return p.stdout

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "broker":
        ResourceBroker(int(sys.argv[3])).serve(int(sys.argv[2]))
    else:
        sys.exit("usage: gt_tpm.py broker LISTEN_PORT SWTPM_PORT")
