#!/usr/bin/python3
"""bench.py -- the body of bench/run (mod_gettoken performance benchmark).

Starts its own httpd (mpm_event, mod_ssl with an ECDSA P-256 server
certificate, mod_dbd/SQLite with N enrolled devices, an RSA-2048 maid key) on
127.0.0.1 and measures, all in one run:

  sign_us                 one RSA-2048 signature (openssl speed rsa2048 on httpd's
                          CPU, once in every round; the median)
  baseline_rps            static 200 response, same vhost and TLS, keep-alive
  gettoken_rps_keepalive  GetToken, keep-alive connections
  gettoken_rps_newconn    GetToken, new TLS connection + client cert per request
  p50/p99                 latency of each run
  cpu_us_per_req          httpd user+sys CPU (/proc/<pid>/stat) / requests
  overhead_ratio          (GetToken CPU/req - static CPU/req) / sign_us, in each
                          round from that round's runs; the median of the rounds
  scaling                 GetToken CPU/req with 1 000 vs 1 000 000 enrolled devices
  rss                     VmRSS of each child after warm-up and at the end

Prints one table, writes bench/results.json, and prints
"overhead_ratio=<x.xx>" (keep-alive) as the very last line.
"""
import argparse
import base64
import hashlib
import json
import os
import plistlib
import re
import resource
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
import uuid

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
MODULE = os.path.join(REPO, "mod_gettoken", ".libs", "mod_gettoken.so")
SCHEMA = os.path.join(REPO, "conf", "schema", "sqlite.sql")
LOADGEN_SRC = os.path.join(BENCH, "loadgen.c")
LOADGEN = os.path.join(BENCH, "loadgen")
CLK_TCK = os.sysconf("SC_CLK_TCK")

GETTOKEN_BODY = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
\t<key>MessageType</key>
\t<string>GetToken</string>
\t<key>TokenServiceType</key>
\t<string>com.apple.maid</string>
\t<key>UDID</key>
\t<string>@UDID@</string>
</dict>
</plist>
"""


T0 = time.time()


def log(*a):
    print(f"bench [{time.time() - T0:5.1f}s]:", *a, file=sys.stderr, flush=True)


def run(cmd, **kw):
    kw.setdefault("check", True)
    return subprocess.run(cmd, **kw)


# --------------------------------------------------------------------------
# build
# --------------------------------------------------------------------------

def ensure_module(build):
    if os.path.exists(MODULE):
        return True
    if not build:
        return False
    log("mod_gettoken.so missing: autoreconf -fi && ./configure && make -j2")
    try:
        for cmd in (["autoreconf", "-fi"], ["./configure"], ["make", "-j2"]):
            run(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, FileNotFoundError) as e:
        err = getattr(e, "stderr", b"") or b""
        log("module build failed:", e, err.decode(errors="replace")[-2000:])
    return os.path.exists(MODULE)


def ensure_loadgen():
    if (os.path.exists(LOADGEN)
            and os.path.getmtime(LOADGEN) >= os.path.getmtime(LOADGEN_SRC)):
        return
    log("compiling bench/loadgen")
    run(["cc", "-O2", "-Wall", "-pthread", "-o", LOADGEN, LOADGEN_SRC, "-lssl", "-lcrypto"])


# --------------------------------------------------------------------------
# PKI and database
# --------------------------------------------------------------------------

def make_pki(work, ndev):
    """Test CA, ECDSA P-256 server cert, ndev device certs, RSA-2048 maid key.
    Cached in work/pki; rebuilt when the device count changes."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
    import datetime

    pki = os.path.join(work, "pki")
    stamp = os.path.join(pki, "stamp")
    if os.path.exists(stamp) and open(stamp).read().strip() == str(ndev):
        return pki
    log(f"making PKI: CA, server cert, {ndev} device certs, RSA-2048 maid key")
    shutil.rmtree(pki, ignore_errors=True)
    os.makedirs(os.path.join(pki, "dev"))
    now = datetime.datetime.now(datetime.timezone.utc)
    nb, na = now - datetime.timedelta(days=1), now + datetime.timedelta(days=3650)

    def pem_key(k):
        return k.private_bytes(serialization.Encoding.PEM,
                               serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())

    def cert(subject, pub, issuer, ikey, ca=False, eku=None, san=None):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
             .public_key(pub).serial_number(x509.random_serial_number())
             .not_valid_before(nb).not_valid_after(na)
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if eku:
            b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return b.sign(ikey, hashes.SHA256())

    name = lambda cn: x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert(name("gettoken bench CA"), ca_key.public_key(), name("gettoken bench CA"),
              ca_key, ca=True)
    open(os.path.join(pki, "ca.pem"), "wb").write(ca.public_bytes(serialization.Encoding.PEM))

    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv = cert(name("127.0.0.1"), srv_key.public_key(), ca.subject, ca_key,
               eku=[ExtendedKeyUsageOID.SERVER_AUTH],
               san=[x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1")),
                    x509.DNSName("localhost")])
    open(os.path.join(pki, "server.pem"), "wb").write(srv.public_bytes(serialization.Encoding.PEM))
    open(os.path.join(pki, "server.key"), "wb").write(pem_key(srv_key))

    maid = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    open(os.path.join(pki, "maid.key"), "wb").write(pem_key(maid))
    open(os.path.join(pki, "maid.pub"), "wb").write(maid.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    lines, rows = [], []
    for i in range(ndev):
        # UDID in the modern form: 8 hex - 16 hex
        udid = "%08X-%016X" % (0x00008030 + (i >> 24), int.from_bytes(os.urandom(8), "big"))
        k = ec.generate_private_key(ec.SECP256R1())
        c = cert(name(udid), k.public_key(), ca.subject, ca_key,
                 eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
        der = c.public_bytes(serialization.Encoding.DER)
        cp = os.path.join(pki, "dev", f"{i}.pem")
        kp = os.path.join(pki, "dev", f"{i}.key")
        open(cp, "wb").write(c.public_bytes(serialization.Encoding.PEM))
        open(kp, "wb").write(pem_key(k))
        lines.append(f"{udid} {cp} {kp}\n")
        rows.append((udid, hashlib.sha256(der).hexdigest()))
    open(os.path.join(pki, "identities.txt"), "w").writelines(lines)
    json.dump(rows, open(os.path.join(pki, "enrolled.json"), "w"))
    # ab -E wants certificate and key in one file
    with open(os.path.join(pki, "dev0-combined.pem"), "wb") as f:
        f.write(open(os.path.join(pki, "dev", "0.pem"), "rb").read())
        f.write(open(os.path.join(pki, "dev", "0.key"), "rb").read())
    open(stamp, "w").write(str(ndev))
    return pki


def make_db(path, pki, total):
    """SQLite DB with every bench device enrolled, plus filler rows up to total."""
    rows = [tuple(r) for r in json.load(open(os.path.join(pki, "enrolled.json")))]
    if os.path.exists(path):
        os.unlink(path)
    t0 = time.time()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    if os.path.exists(SCHEMA):
        db.executescript(open(SCHEMA).read())
    else:
        db.execute("CREATE TABLE IF NOT EXISTS cert_auth_associations "
                   "(id TEXT NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY(id, sha256))")
    db.execute("BEGIN")
    db.executemany("INSERT INTO cert_auth_associations(id, sha256) VALUES (?, ?)", rows)
    filler = max(0, total - len(rows))
    if filler:
        # distinct UDIDs of the same shape, random certificate hashes
        db.execute("""WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?)
                      INSERT INTO cert_auth_associations(id, sha256)
                      SELECT printf('%08X-%016X', 4026531840 + x, x * 2654435761),
                             lower(hex(randomblob(32))) FROM n""", (filler,))
    db.commit()
    n = db.execute("SELECT count(*) FROM cert_auth_associations").fetchone()[0]
    db.execute("ANALYZE")
    db.commit()
    db.close()
    os.chmod(path, 0o644)
    log(f"DB {os.path.basename(path)}: {n} enrolled devices ({time.time() - t0:.1f} s)")
    return n


# --------------------------------------------------------------------------
# httpd
# --------------------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def find_httpd():
    for p in ("/usr/sbin/apache2", "/usr/sbin/httpd"):
        if os.path.exists(p):
            return p
    sys.exit("bench: no apache2 binary")


def moddir():
    for d in ("/usr/lib/apache2/modules", "/usr/lib64/httpd/modules", "/usr/lib/httpd/modules"):
        if os.path.isdir(d):
            return d
    sys.exit("bench: no apache module directory")


class Httpd:
    def __init__(self, work, pki, db, port, with_module, server_cpus, threads, big_db=None):
        self.work, self.pki, self.db, self.port = work, pki, db, port
        # the scaling DB is served by a second vhost of the same server on
        # its own port, so both DBs are measured in one server, alternately
        self.big_db = big_db
        self.big_port = free_port() if big_db else None
        self.with_module, self.server_cpus, self.threads = with_module, server_cpus, threads
        self.conf = os.path.join(work, "httpd.conf")
        self.pidfile = os.path.join(work, "run", "httpd.pid")
        self.errlog = os.path.join(work, "logs", "error.log")
        self.server_uuid = str(uuid.uuid4())

    def write_conf(self):
        w, m = self.work, moddir()
        for d in ("run", "logs", "htdocs/static"):
            os.makedirs(os.path.join(w, d), exist_ok=True)
        # a static answer of about the size of a GetToken answer
        static = plistlib.dumps({"TokenData": os.urandom(560)}, fmt=plistlib.FMT_XML)
        open(os.path.join(w, "htdocs", "static", "ok.plist"), "wb").write(static)
        root = os.geteuid() == 0
        mods = ["mpm_event", "authz_core", "mime", "socache_shmcb", "ssl", "dbd"]
        lines = [f"# generated by bench/run -- do not edit",
                 f"ServerRoot {w}",
                 f"DefaultRuntimeDir {w}/run",
                 f"PidFile {self.pidfile}",
                 f"Mutex file:{w}/run default",
                 f"ErrorLog {self.errlog}",
                 "LogLevel warn",
                 "ServerName 127.0.0.1",
                 f"Listen 127.0.0.1:{self.port}"]
        if self.big_db:
            lines.append(f"Listen 127.0.0.1:{self.big_port}")
        lines += [f"LoadModule {x}_module {m}/mod_{x}.so" for x in mods]
        if root:
            lines += ["User www-data", "Group www-data"]
        t = self.threads
        lines += [
            # fixed process/thread pool: no child is started or reaped during a run
            "StartServers 2", "ServerLimit 2", f"ThreadsPerChild {t}",
            f"MaxRequestWorkers {2 * t}", "MinSpareThreads 1", f"MaxSpareThreads {2 * t}",
            "MaxConnectionsPerChild 0",
            "KeepAlive On", "MaxKeepAliveRequests 0", "KeepAliveTimeout 5", "Timeout 30",
            "TypesConfig /dev/null", "AddType application/xml .plist",
            f"DocumentRoot {w}/htdocs",
            # as in Debian's stock apache2.conf: no .htaccess lookups per request
            "<Directory />", "  AllowOverride None", "  Require all denied", "</Directory>",
            f"<Directory {w}/htdocs>", "  Require all granted", "</Directory>",
            "SSLSessionCache none",
            "DBDriver sqlite3", f"DBDParams {self.db}",
            "DBDPersist On", "DBDMin 1", f"DBDKeep {t}", f"DBDMax {t}",
        ]
        if self.with_module:
            lines += [f"LoadModule gettoken_module {MODULE}"]
        for port, db in ((self.port, None), (self.big_port, self.big_db)):
            if not port:
                continue
            lines += [
                f"<VirtualHost 127.0.0.1:{port}>",
                "  SSLEngine on",
                f"  SSLCertificateFile {self.pki}/server.pem",
                f"  SSLCertificateKeyFile {self.pki}/server.key",
                "  SSLVerifyClient optional_no_ca",
                "  SSLVerifyDepth 3",
            ]
            if db:
                lines += ["  DBDriver sqlite3", f"  DBDParams {db}"]
            if self.with_module:
                lines += [f"  GetTokenServerUUID {self.server_uuid}",
                          f"  GetTokenSigningKey {self.pki}/maid.key",
                          "  <Location /mdm/checkin>", "    GetToken On", "  </Location>"]
            lines += ["</VirtualHost>"]
        lines += [""]
        open(self.conf, "w").write("\n".join(lines))
        # the children run as www-data: everything they read must be readable
        for d, _, fs in os.walk(w):
            os.chmod(d, 0o755)
            for f in fs:
                os.chmod(os.path.join(d, f), 0o644)
        os.chmod(w, 0o755)

    def _cmd(self, *a):
        return [find_httpd(), "-d", self.work, "-f", self.conf, *a]

    def start(self):
        self.write_conf()
        t = run(self._cmd("-t"), capture_output=True, text=True, check=False)
        if t.returncode != 0:
            raise RuntimeError("httpd config test failed: " + t.stderr.strip())
        if os.path.exists(self.pidfile):
            os.unlink(self.pidfile)
        cmd = self._cmd("-k", "start")
        if self.server_cpus:
            cmd = ["taskset", "-c", self.server_cpus] + cmd
        run(cmd, capture_output=True, check=False)
        deadline = time.time() + 15
        while time.time() < deadline:
            if os.path.exists(self.pidfile) and len(self.children()) >= 2:
                try:
                    socket.create_connection(("127.0.0.1", self.port), 1).close()
                    return
                except OSError:
                    pass
            time.sleep(0.1)
        raise RuntimeError("httpd did not start; see " + self.errlog + "\n" + self.tail_log())

    def tail_log(self, n=15):
        try:
            return "".join(open(self.errlog, errors="replace").readlines()[-n:])
        except OSError:
            return ""

    def parent(self):
        try:
            return int(open(self.pidfile).read())
        except (OSError, ValueError):
            return None

    def children(self):
        pp = self.parent()
        out = []
        if not pp:
            return out
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    st = open(f"/proc/{d}/stat").read()
                except OSError:
                    continue
                if int(st.rsplit(")", 1)[1].split()[1]) == pp:
                    out.append(int(d))
        return sorted(out)

    def cpu_ticks(self):
        """utime+stime of the parent and all children, plus the parent's
        cutime+cstime (children that exited and were reaped)."""
        pp = self.parent()
        total = 0
        for pid in [pp] + self.children():
            try:
                f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(f[11]) + int(f[12])
            if pid == pp:
                total += int(f[13]) + int(f[14])
        return total

    def rss_kb(self):
        out = {}
        for pid in self.children():
            try:
                for l in open(f"/proc/{pid}/status"):
                    if l.startswith("VmRSS:"):
                        out[pid] = int(l.split()[1])
            except OSError:
                pass
        return out

    def stop(self):
        pp = self.parent()
        run(self._cmd("-k", "stop"), capture_output=True, check=False)
        deadline = time.time() + 10
        while pp and time.time() < deadline and os.path.exists(f"/proc/{pp}"):
            time.sleep(0.1)
        if pp and os.path.exists(f"/proc/{pp}"):
            try:
                os.kill(pp, 9)
            except OSError:
                pass


# --------------------------------------------------------------------------
# measurements
# --------------------------------------------------------------------------

def sign_us(secs, cpus=None):
    """One RSA-2048 signature in µs of CPU time, from openssl speed rsa2048
    (it signs for `secs`, then verifies for `secs`), on `cpus` if given."""
    cmd = ["openssl", "speed", "-seconds", str(secs), "rsa2048"]
    if cpus:
        cmd = ["taskset", "-c", cpus] + cmd
    out = run(cmd, capture_output=True, text=True, timeout=60 + 2 * secs).stdout
    m = re.search(r"^rsa\s+2048 bits\s+([0-9.]+)s\s+([0-9.]+)s", out, re.M)
    if not m:
        raise RuntimeError("cannot parse openssl speed output:\n" + out)
    return float(m.group(1)) * 1e6


class Runner:
    def __init__(self, httpd, pki, client_cpus, conc):
        self.h, self.pki, self.client_cpus, self.conc = httpd, pki, client_cpus, conc
        self.body = os.path.join(httpd.work, "gettoken.plist.tmpl")
        open(self.body, "w").write(GETTOKEN_BODY)

    def _pin(self, cmd):
        return (["taskset", "-c", self.client_cpus] + cmd) if self.client_cpus else cmd

    def loadgen(self, label, kind, keepalive, n, secs, warmup=0, conc=None, port=None):
        cmd = [LOADGEN, "-p", str(port or self.h.port), "-C", os.path.join(self.pki, "ca.pem"),
               "-i", os.path.join(self.pki, "identities.txt"),
               "-c", str(conc or self.conc), "-n", str(n), "-t", str(secs), "-w", str(warmup)]
        if kind == "gettoken":
            cmd += ["-m", "PUT", "-u", "/mdm/checkin", "-b", self.body, "-e", "TokenData"]
        else:
            cmd += ["-m", "GET", "-u", "/static/ok.plist", "-e", "TokenData"]
        if keepalive:
            cmd.append("-k")
        return self._measure(label, self._pin(cmd), secs, parse=json.loads)

    def ab(self, label, kind, n, secs):
        """Cross-check with ab(1): keep-alive, one client certificate."""
        cmd = ["ab", "-q", "-k", "-c", str(self.conc), "-t", str(int(secs)), "-n", str(n),
               "-E", os.path.join(self.pki, "dev0-combined.pem")]
        if kind == "gettoken":
            udid = json.load(open(os.path.join(self.pki, "enrolled.json")))[0][0]
            bodyf = os.path.join(self.h.work, "gettoken-dev0.plist")
            open(bodyf, "w").write(GETTOKEN_BODY.replace("@UDID@", udid))
            cmd += ["-u", bodyf, "-T", "application/x-apple-aspen-mdm-checkin",
                    f"https://127.0.0.1:{self.h.port}/mdm/checkin"]
        else:
            cmd.append(f"https://127.0.0.1:{self.h.port}/static/ok.plist")
        return self._measure(label, self._pin(cmd), secs, parse=parse_ab)

    def _measure(self, label, cmd, secs, parse):
        b0, u0 = busy_ticks(), resource.getrusage(resource.RUSAGE_CHILDREN)
        c0, t0 = self.h.cpu_ticks(), time.time()
        p = run(cmd, capture_output=True, text=True, timeout=secs + 60, check=False)
        c1, t1 = self.h.cpu_ticks(), time.time()
        b1, u1 = busy_ticks(), resource.getrusage(resource.RUSAGE_CHILDREN)
        if p.returncode != 0:
            raise RuntimeError(f"{label}: {cmd[0]} failed ({p.returncode}): {p.stderr[-2000:]}")
        if p.stderr.strip():
            log(f"{label}: {p.stderr.strip()[:600]}")
        r = parse(p.stdout)
        r["label"] = label
        r["server_cpu_s"] = round((c1 - c0) / CLK_TCK, 3)
        r["server_cpu_cores"] = round((c1 - c0) / CLK_TCK / max(t1 - t0, 1e-9), 2)
        done = r["requests"]
        r["cpu_us_per_req"] = round((c1 - c0) / CLK_TCK * 1e6 / done, 1) if done else None
        r["failures"] = r["requests"] - r["ok"] + r.get("errors", 0)
        client_s = (u1.ru_utime + u1.ru_stime) - (u0.ru_utime + u0.ru_stime)
        r["client_cpu_s"] = round(client_s, 3)
        # CPU busy on the machine that was neither httpd nor the load generator
        # (other users of the machine): a run with much of it is disturbed
        other_s = (b1 - b0 - (c1 - c0)) / CLK_TCK - client_s
        r["background_cpus"] = round(max(0.0, other_s) / max(t1 - t0, 1e-9), 2)
        log(f"{label}: {done} req, {r['rps']:.0f} rps, p50 {r.get('p50_us')} µs, "
            f"p99 {r.get('p99_us')} µs, {r['cpu_us_per_req']} µs CPU/req, "
            f"{r['failures']} failures, background {r['background_cpus']} CPUs")
        return r


def busy_ticks():
    """All CPUs' non-idle time from /proc/stat (user nice system irq softirq steal)."""
    f = open("/proc/stat").readline().split()
    return sum(int(f[i]) for i in (1, 2, 3, 6, 7, 8))


def parse_ab(out):
    def num(pat, default=0.0):
        m = re.search(pat, out, re.M)
        return float(m.group(1)) if m else default
    done = int(num(r"^Complete requests:\s+(\d+)"))
    failed = int(num(r"^Failed requests:\s+(\d+)"))
    non2xx = int(num(r"^Non-2xx responses:\s+(\d+)"))
    p = {int(a): int(b) for a, b in re.findall(r"^\s+(\d+)%\s+(\d+)", out, re.M)}
    return {"requests": done, "ok": done - max(failed, non2xx), "non200": non2xx,
            "errors": 0, "rps": num(r"^Requests per second:\s+([0-9.]+)"),
            "p50_us": p.get(50, 0) * 1000, "p99_us": p.get(99, 0) * 1000,
            "elapsed_s": num(r"^Time taken for tests:\s+([0-9.]+)"), "tool": "ab (ms resolution)"}


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def join_halves(label, rs):
    """One round's figure of a kind of run from its two halves: CPU per
    request over both (total CPU / total requests), latencies averaged."""
    done = sum(r["requests"] for r in rs)
    cpu_s = sum(r["server_cpu_s"] for r in rs)
    out = {"label": label, "halves": rs, "requests": done,
           "cpu_us_per_req": round(cpu_s * 1e6 / done, 1) if done else None,
           "server_cpu_s": round(cpu_s, 3)}
    for k in ("rps", "p50_us", "p90_us", "p99_us", "background_cpus"):
        if all(k in r for r in rs):
            out[k] = round(sum(r[k] for r in rs) / len(rs), 2)
    for k in ("ok", "failures", "non200", "errors", "badbody"):
        out[k] = sum(r.get(k, 0) for r in rs)
    return out


def combine(label, rs):
    """Medians over rounds of one kind of run; counts are summed."""
    med = median
    out = {"label": label + (f" (median of {len(rs)})" if len(rs) > 1 else ""),
           "rounds": rs}
    for k in ("rps", "p50_us", "p99_us", "cpu_us_per_req", "background_cpus"):
        out[k] = round(med([r[k] for r in rs]), 2)
    for k in ("requests", "failures", "non200", "errors"):
        out[k] = sum(r.get(k, 0) for r in rs)
    out["cpu_us_per_req_min"] = min(r["cpu_us_per_req"] for r in rs)
    out["cpu_us_per_req_max"] = max(r["cpu_us_per_req"] for r in rs)
    return out


def sanity_check(h, pki):
    """One GetToken over Python's ssl: 200, plist with TokenData, a JWS whose
    RS256 signature verifies with the maid key and whose claims are right."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    udid = json.load(open(os.path.join(pki, "enrolled.json")))[0][0]
    ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.pem"))
    ctx.load_cert_chain(os.path.join(pki, "dev", "0.pem"), os.path.join(pki, "dev", "0.key"))
    import http.client
    c = http.client.HTTPSConnection("127.0.0.1", h.port, context=ctx, timeout=10)
    c.request("PUT", "/mdm/checkin", GETTOKEN_BODY.replace("@UDID@", udid).encode(),
              {"Content-Type": "application/x-apple-aspen-mdm-checkin"})
    r = c.getresponse()
    body = r.read()
    if r.status != 200:
        raise RuntimeError(f"sanity GetToken: HTTP {r.status}: {body[:300]!r}\n{h.tail_log(5)}")
    tok = plistlib.loads(body)["TokenData"].decode()
    hb, cb, sb = tok.split(".")
    dec = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    hdr, claims = json.loads(dec(hb)), json.loads(dec(cb))
    pub = serialization.load_pem_public_key(open(os.path.join(pki, "maid.pub"), "rb").read())
    pub.verify(dec(sb), f"{hb}.{cb}".encode(), padding.PKCS1v15(), hashes.SHA256())
    if hdr.get("alg") != "RS256" or claims.get("iss") != h.server_uuid \
            or claims.get("service_type") != "com.apple.maid":
        raise RuntimeError(f"sanity GetToken: unexpected token {hdr} {claims}")
    c.close()
    return {"header": hdr, "claims": claims, "answer_bytes": len(body)}


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def profile(h, R, have_module, plan, secs):
    """perf record -g (DWARF) on every httpd process during each kind of run;
    perf_buckets.py sorts the stacks into module steps and Apache phases."""
    outdir = os.path.join(BENCH, "profile")
    os.makedirs(outdir, exist_ok=True)
    if not shutil.which("perf"):
        sys.exit("bench: --profile needs perf (apt-get install linux-perf)")
    for kind in (("gettoken", "static") if have_module else ("static",)):
        R.loadgen(f"warmup {kind} keep-alive", kind, True, *plan["warmup"])
        R.loadgen(f"warmup {kind} new-conn", kind, False, *plan["warmup_nc"])
    freq, dur = 999, max(secs, 4)
    for key, kind, ka in (("gettoken_ka", "gettoken", True), ("static_ka", "static", True),
                          ("gettoken_nc", "gettoken", False), ("static_nc", "static", False)):
        if kind == "gettoken" and not have_module:
            continue
        data = os.path.join(h.work, f"perf.{key}.data")
        pids = ",".join(str(p) for p in [h.parent()] + h.children())
        rec = subprocess.Popen(["perf", "record", "-q", "-F", str(freq), "--call-graph",
                                "dwarf,32768", "-p", pids, "-o", data, "--",
                                "sleep", str(dur + 1)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        r = R.loadgen(f"profile {key}", kind, ka, 10 ** 6, dur)
        rec.wait(timeout=dur + 60)
        script = subprocess.Popen(["perf", "script", "-i", data], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL)
        rep = run([sys.executable, os.path.join(BENCH, "perf_buckets.py"),
                   str(r["requests"]), str(freq)], stdin=script.stdout,
                  capture_output=True, text=True).stdout
        script.wait()
        if not os.environ.get("BENCH_KEEP_PERF"):
            os.unlink(data)
        txt = (f"# {key}: {r['requests']} requests, {r['rps']:.0f} rps, "
               f"{r['cpu_us_per_req']} µs httpd CPU/req while recorded\n"
               f"# (perf's DWARF stack copies inflate all of it; compare shares)\n" + rep)
        open(os.path.join(outdir, f"{key}.txt"), "w").write(txt)
        print(txt)
    print(f"profiles in {outdir}/")
    return 0


def wait_quiet(limit):
    deadline = time.time() + limit
    while True:
        b0, t0 = busy_ticks(), time.time()
        time.sleep(3)
        busy = (busy_ticks() - b0) / CLK_TCK / (time.time() - t0)
        if busy < 0.25:
            log(f"machine idle ({busy:.2f} CPUs busy): starting")
            return
        if time.time() > deadline:
            log(f"machine still busy ({busy:.2f} CPUs) after {limit:.0f} s: starting anyway")
            return
        log(f"machine busy ({busy:.2f} CPUs): waiting")
        time.sleep(7)


def cpu_split(nproc, pin):
    if not pin or nproc < 2:
        return None, None
    half = nproc // 2
    client = f"0-{half - 1}" if half > 1 else "0"
    server = f"{half}-{nproc - 1}" if nproc - half > 1 else str(half)
    return server, client


def machine():
    model = "?"
    for l in open("/proc/cpuinfo"):
        if l.startswith("model name"):
            model = l.split(":", 1)[1].strip()
            break
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": os.uname().release,
            "httpd": run([find_httpd(), "-v"], capture_output=True, text=True).stdout.split("\n")[0],
            "openssl": run(["openssl", "version"], capture_output=True, text=True).stdout.strip()}


def fmt(v, nd=0):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def main():
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller counts, under 60 s")
    ap.add_argument("--devices", type=int, default=1000,
                    help="enrolled devices with their own client certificate (default 1000)")
    ap.add_argument("--big", type=int, default=1000000,
                    help="enrolled devices in the scaling DB (default 1000000; 0 = skip)")
    ap.add_argument("--concurrency", type=int, default=8, help="client connections (default 8)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="interleaved static/GetToken rounds (default 5)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply request counts")
    ap.add_argument("--no-pin", action="store_true",
                    help="do not pin httpd and the load generator to separate CPUs")
    ap.add_argument("--no-build", action="store_true", help="never build the module")
    ap.add_argument("--work", default="/tmp/gettoken-bench", help="work directory")
    ap.add_argument("--serve", action="store_true",
                    help="start the server, print its port, wait (for perf/callgrind), Ctrl-C stops")
    ap.add_argument("--profile", action="store_true",
                    help="instead of the figures: perf-record httpd during each kind of run and "
                         "write bench/profile/<run>.txt (CPU per request by module step / Apache phase)")
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                    help="first wait up to SECONDS for the machine to be idle "
                         "(< 0.25 CPUs busy over 3 s); other users' load inflates CPU/req")
    ap.add_argument("--json", default=os.path.join(BENCH, "results.json"))
    a = ap.parse_args()

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    if a.rounds is None:
        a.rounds = 5
    a.rounds = max(1, a.rounds)
    t_begin = time.time()
    os.makedirs(a.work, exist_ok=True)
    os.chmod(a.work, 0o755)
    if a.wait_quiet > 0:
        wait_quiet(a.wait_quiet)
    have_module = ensure_module(not a.no_build)
    if not have_module:
        log("mod_gettoken.so not available: measuring the static baseline only")
    ensure_loadgen()
    pki = make_pki(a.work, a.devices)
    server_cpus, client_cpus = cpu_split(os.cpu_count(), not a.no_pin)

    # request counts: every loop is bounded in count and in time
    s = a.scale * (0.25 if a.quick else 1.0)
    secs = 1.0 if a.quick else 4
    N = lambda n: max(200, int(n * s))
    plan = {
        "static_ka": (N(100000), secs), "gettoken_ka": (N(20000), secs),
        "static_nc": (N(8000), secs), "gettoken_nc": (N(6000), secs),
        "warmup": (N(4000), 1.5 if a.quick else 8),
        "warmup_nc": (N(1000), 1.5 if a.quick else 8), "soak": 2.5 if a.quick else 8,
        "ab": (N(40000), 8),
    }

    small_db = os.path.join(a.work, f"enroll-{a.devices}.db")
    n_small = make_db(small_db, pki, a.devices)

    res = {"machine": machine(), "quick": a.quick, "rounds": a.rounds, "devices_with_certs": a.devices,
           "concurrency": a.concurrency, "module": have_module,
           "pinning": {"httpd_cpus": server_cpus, "loadgen_cpus": client_cpus}}

    big_db = n_big = None
    if have_module and a.big and not (a.serve or a.profile):
        big_db = os.path.join(a.work, f"enroll-{a.big}.db")
        n_big = make_db(big_db, pki, a.big)

    port = free_port()
    h = Httpd(a.work, pki, small_db, port, have_module, server_cpus, a.concurrency * 2,
              big_db=big_db)
    runs = {}
    try:
        h.start()
        log(f"httpd on https://127.0.0.1:{port} (pid {h.parent()}, children {h.children()})")
        if a.serve:
            print(port, flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                return
        R = Runner(h, pki, client_cpus, a.concurrency)
        if a.profile:
            return profile(h, R, have_module, plan, secs)
        if have_module:
            res["sanity"] = sanity_check(h, pki)
            log(f"sanity: token verifies, claims {res['sanity']['claims']}")
        # warm up every kind of run (all worker threads, DB connections,
        # TLS state) before the "after warm-up" RSS snapshot
        for kind in (("gettoken", "static") if have_module else ("static",)):
            R.loadgen(f"warmup {kind} keep-alive", kind, True, *plan["warmup"])
            R.loadgen(f"warmup {kind} new-conn", kind, False, *plan["warmup_nc"])
        if big_db:
            R.loadgen(f"warmup gettoken keep-alive, {n_big} enrolled", "gettoken", True,
                      *plan["warmup"], port=h.big_port)
        # (soak runs below are reported, but not part of the figures)
        rss0 = h.rss_kb()

        # static and GetToken runs interleaved, a.rounds times; medians are
        # reported, so a burst of background load hurts one round, not a figure
        kinds = [("static_ka", "static keep-alive", "static", True),
                 ("gettoken_ka", "GetToken keep-alive", "gettoken", True),
                 ("static_nc", "static new-conn", "static", False),
                 ("gettoken_nc", "GetToken new-conn", "gettoken", False)]
        if not have_module:
            kinds = [k for k in kinds if k[2] != "gettoken"]
        # This machine's speed drifts by 20-30 % within a minute (a shared
        # VM host).  So every round is a palindrome around one signature
        # measurement (openssl speed on httpd's CPU): each kind of run is
        # done twice, for half the time, before and after it --
        #   static-ka GetToken-ka static-nc GetToken-nc  SIGN
        #   GetToken-nc static-nc GetToken-ka static-ka
        # -- so every kind is measured, on average, at the moment the
        # signature is, and a steady drift cancels out.  Each round's ratio
        # uses that round's runs and signature only.
        rounds = {}
        calib = []
        for i in range(a.rounds):
            tag = f" #{i + 1}" if a.rounds > 1 else ""
            halves = {}
            for step in kinds + [None] + kinds[::-1]:
                if step is None:
                    calib.append(round(sign_us(1 if a.quick else 2, server_cpus), 1))
                    log(f"round {i + 1}: openssl speed rsa2048 on httpd's CPU: "
                        f"{calib[-1]} µs per signature")
                    continue
                key, label, kind, ka = step
                n, t = plan[key]
                halves.setdefault(key, []).append(
                    R.loadgen(f"{label}{tag} ({len(halves.get(key, [])) + 1}/2)", kind, ka,
                              max(1, n // 2), t / 2))
            for key, label, _, _ in kinds:
                rounds.setdefault(key, []).append(join_halves(label + tag, halves[key]))
        res["sign_us_in_rounds"] = calib
        res["sign_us"] = round(median(calib), 1)
        for key, label, _, _ in kinds:
            runs[key] = combine(label, rounds[key])
        if not a.quick:
            # cross-check of the keep-alive figures with ab(1), one client cert
            runs["ab_static_ka"] = R.ab("ab static keep-alive", "static", *plan["ab"])
            if have_module:
                runs["ab_gettoken_ka"] = R.ab("ab GetToken keep-alive", "gettoken", *plan["ab"])
        # RSS: every worker thread, allocator arena and DB connection has been
        # used by now; a GetToken soak (keep-alive + new-conn) must leave it flat
        rss1 = h.rss_kb()
        runs["soak_ka"] = R.loadgen("soak: GetToken keep-alive" if have_module else
                                    "soak: static keep-alive",
                                    "gettoken" if have_module else "static", True,
                                    plan["gettoken_ka"][0], plan["soak"])
        runs["soak_nc"] = R.loadgen("soak: GetToken new-conn" if have_module else
                                    "soak: static new-conn",
                                    "gettoken" if have_module else "static", False,
                                    plan["gettoken_nc"][0], plan["soak"])
        rss2 = h.rss_kb()
        res["rss_kb"] = {"after_warmup": rss0, "before_soak": rss1, "after_soak": rss2}
        growth = [(rss2[p] - rss1[p]) / rss1[p] * 100 for p in rss1 if p in rss2]
        res["rss_growth_pct_max"] = round(max(growth), 1) if growth else None
        if set(rss0) != set(rss2):
            res["rss_note"] = "child set changed during the run"
        # scaling: keep-alive GetToken runs against the 1 M-device DB (its
        # own vhost) and the small DB, alternating big, small, small, big,
        # so a machine that drifts slower or faster favours neither
        if big_db:
            sc = {}
            order = (("big", h.big_port, n_big), ("small", h.port, n_small))
            for i in range(2 if a.quick else 4):
                for tag, p, n in (order if i % 2 == 0 else order[::-1]):
                    sc.setdefault(tag, []).append(
                        R.loadgen(f"GetToken keep-alive, {n} enrolled", "gettoken", True,
                                  *plan["gettoken_ka"], port=p))
            for tag, n in (("big", n_big), ("small", n_small)):
                sc[tag] = runs[f"scale_{tag}"] = combine(
                    f"GetToken keep-alive, {n} enrolled", sc[tag])
                sc[tag]["enrolled"] = n
            # total CPU over total requests of each side: every run weighs
            # by its length, a stray slow run does not decide
            cpu = {t: sum(r["cpu_us_per_req"] * r["requests"] for r in sc[t]["rounds"])
                   / sum(r["requests"] for r in sc[t]["rounds"]) for t in sc}
            res["scaling"] = {
                "enrolled_small": n_small, "enrolled_big": n_big,
                "cpu_us_per_req_small": round(cpu["small"], 1),
                "cpu_us_per_req_big": round(cpu["big"], 1),
                "ratio_big_small": round(cpu["big"] / cpu["small"], 3),
            }
        errs = h.tail_log(200)
        h.stop()
        if big_db:
            os.unlink(big_db)   # 200+ MB; rebuilt in ~2 s next time
    finally:
        h.stop()

    # ---- figures ----
    res["runs"] = runs
    f = res
    f["baseline_rps"] = runs["static_ka"]["rps"]
    f["cpu_us_per_req"] = {k: runs[k]["cpu_us_per_req"] for k in
                           ("static_ka", "gettoken_ka", "static_nc", "gettoken_nc") if k in runs}
    if have_module:
        f["gettoken_rps_keepalive"] = runs["gettoken_ka"]["rps"]
        f["gettoken_rps_newconn"] = runs["gettoken_nc"]["rps"]
        f["latency_us"] = {k: {"p50": runs[k]["p50_us"], "p99": runs[k]["p99_us"]}
                           for k in ("static_ka", "gettoken_ka", "static_nc", "gettoken_nc")}
        c = f["cpu_us_per_req"]
        # the ratio of the medians, for comparison with the per-round figure
        f["overhead_ratio_keepalive_of_medians"] = round(
            (c["gettoken_ka"] - c["static_ka"]) / f["sign_us"], 2)
        f["overhead_ratio_newconn_of_medians"] = round(
            (c["gettoken_nc"] - c["static_nc"]) / f["sign_us"], 2)
        # the same ratio per round, each against the signature cost measured
        # on httpd's CPU in that round: insensitive to the machine's drift
        for kind in ("ka", "nc"):
            g, st = runs[f"gettoken_{kind}"]["rounds"], runs[f"static_{kind}"]["rounds"]
            f[f"overhead_ratio_{kind}_per_round"] = [
                round((x["cpu_us_per_req"] - y["cpu_us_per_req"]) / su, 2)
                for x, y, su in zip(g, st, f["sign_us_in_rounds"])]
        # overhead_ratio: (GetToken CPU/req - static CPU/req) / sign_us in
        # each round, with that round's own three measurements; the median
        f["overhead_ratio_keepalive"] = round(median(f["overhead_ratio_ka_per_round"]), 2)
        f["overhead_ratio_newconn"] = round(median(f["overhead_ratio_nc_per_round"]), 2)
        f["overhead_ratio"] = f["overhead_ratio_keepalive"]
    f["non200_total"] = sum(r["failures"] for k, r in runs.items())
    f["elapsed_s"] = round(time.time() - t_begin, 1)
    with open(a.json, "w") as fh:
        json.dump(res, fh, indent=2)

    # ---- table ----
    m = res["machine"]
    print()
    print(f"mod_gettoken benchmark{' (--quick)' if a.quick else ''}: {m['cpu']}, "
          f"{m['nproc']} CPUs, kernel {m['kernel']}, {m['httpd']}, {m['openssl']}")
    print(f"httpd on CPU {server_cpus or 'any'}, load generator on CPU {client_cpus or 'any'}, "
          f"{a.concurrency} connections, {a.devices} device certificates, "
          f"DB {n_small} enrolled; sign_us = {f['sign_us']:.0f} µs (openssl speed rsa2048 "
          f"on httpd's CPU, median of {len(f['sign_us_in_rounds'])} rounds)")
    print()
    hdr = (f"{'run':46} {'requests':>8} {'rps':>8} {'p50 µs':>8} {'p99 µs':>8} "
           f"{'CPU µs/req':>10} {'non-200':>7} {'bg CPUs':>7}")
    print(hdr)
    print("-" * len(hdr))
    for k, r in runs.items():
        if k.startswith("warmup"):
            continue
        print(f"{r['label']:46} {r['requests']:>8} {r['rps']:>8.0f} {fmt(r.get('p50_us')):>8} "
              f"{fmt(r.get('p99_us')):>8} {fmt(r['cpu_us_per_req'], 1):>10} {r['failures']:>7} "
              f"{fmt(r.get('background_cpus'), 2):>7}")
    print()
    print(f"baseline_rps (static, keep-alive)     {f['baseline_rps']:.0f}")
    if have_module:
        c = f["cpu_us_per_req"]
        print(f"gettoken_rps_keepalive                {f['gettoken_rps_keepalive']:.0f}")
        print(f"gettoken_rps_newconn                  {f['gettoken_rps_newconn']:.0f}")
        print(f"GetToken - static CPU, keep-alive     {c['gettoken_ka'] - c['static_ka']:.1f} µs/req")
        print(f"GetToken - static CPU, new-conn       {c['gettoken_nc'] - c['static_nc']:.1f} µs/req")
        print(f"sign_us in the rounds (openssl speed)  {f['sign_us_in_rounds']}")
        print(f"overhead_ratio keep-alive             {f['overhead_ratio_keepalive']:.2f}  (target <= 1.25; "
              f"median of the rounds {f['overhead_ratio_ka_per_round']}; ratio of the medians "
              f"{f['overhead_ratio_keepalive_of_medians']:.2f})")
        print(f"overhead_ratio new-conn               {f['overhead_ratio_newconn']:.2f}  (target <= 1.25; "
              f"median of the rounds {f['overhead_ratio_nc_per_round']}; ratio of the medians "
              f"{f['overhead_ratio_newconn_of_medians']:.2f})")
        if "scaling" in f:
            sc = f["scaling"]
            print(f"scaling {sc['enrolled_big']} vs {sc['enrolled_small']} enrolled    "
                  f"{sc['cpu_us_per_req_big']} vs {sc['cpu_us_per_req_small']} µs/req "
                  f"= x{sc['ratio_big_small']:.3f}  (target within 10 %)")
    r0, r1, r2 = (res["rss_kb"][k] for k in ("after_warmup", "before_soak", "after_soak"))
    print("RSS of children (kB), after warm-up / before soak / after soak: " +
          ", ".join(f"{r0[p]} / {r1.get(p, '?')} / {r2.get(p, '?')}" for p in r0) +
          f"  (soak growth max {fmt(res['rss_growth_pct_max'], 1)} %, target <= 5 %)")
    print(f"non-200 answers / transport errors, all runs: {f['non200_total']}")
    print(f"results: {a.json}   ({f['elapsed_s']} s)")
    if f["non200_total"]:
        print("error log tail:\n" + errs[-1500:])
    if have_module:
        print(f"overhead_ratio={f['overhead_ratio']:.2f}")
        return 0
    print("overhead_ratio=nan")
    return 1


if __name__ == "__main__":
    sys.exit(main())
