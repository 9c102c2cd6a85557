# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""A self-contained Apache httpd (no /etc/apache2 includes) running mod_gettoken.

Each Httpd gets its own directory (config, logs, run dir, CGI backend and the
records the backend writes) under a work directory, and listens on 127.0.0.1
only, on ports picked by binding to port 0.
"""
import json
import os
import pwd
import re
import signal
import socket
import subprocess
import textwrap
import time
import uuid
from dataclasses import dataclass, field

from gt_pki import REPO
from gt_stream import children, mem_kb

APACHE = "/usr/sbin/apache2"
MODDIR = "/usr/lib/apache2/modules"
# GT_MODULE_SO: test another build of the module (e.g. the sanitizer build of
# `tests/run --asan`) instead of the in-tree one.
GETTOKEN_SO = (os.environ.get("GT_MODULE_SO")
               or os.path.join(REPO, "mod_gettoken", ".libs", "mod_gettoken.so"))
ECHO_SO = os.path.join(REPO, "tests", "modules", ".libs", "mod_gettoken_echo.so")
STOCK_MODULES = ["mpm_event", "authz_core", "mime", "ssl", "socache_shmcb", "dbd", "cgid",
                 "alias", "proxy", "proxy_http", "env", "headers"]
CHECKIN_PATH = "/mdm/checkin"
BACKEND_MARKER = b"BACKEND-OK"
LOG_FORMAT = ('"%h %m %U %>s svc=%{GETTOKEN_SERVICE}e enr=%{GETTOKEN_ENROLLMENT}e '
              'jti=%{GETTOKEN_JTI}e org=%{GETTOKEN_ORGANIZATION}e id=%{X-Test-Id}i"')

# The backend behind every GetToken location: records method, URI, headers and
# the body (a copy plus its SHA-256), then answers 200 with a marker body.
CGI_SCRIPT = r'''#!/usr/bin/python3
import hashlib, json, os, sys, time
body = sys.stdin.buffer.read()
rid = os.environ.get("HTTP_X_TEST_ID") or "%d-%d" % (time.time_ns(), os.getpid())
rid = "".join(c for c in rid if c.isalnum() or c in "-_")
rec = {"method": os.environ.get("REQUEST_METHOD"), "uri": os.environ.get("REQUEST_URI"),
       "path_info": os.environ.get("PATH_INFO", ""), "content_type": os.environ.get("CONTENT_TYPE"),
       "content_length": os.environ.get("CONTENT_LENGTH"),
       "headers": {k[5:].replace("_", "-").lower(): v for k, v in os.environ.items() if k.startswith("HTTP_")},
       "ssl_client_verify": os.environ.get("SSL_CLIENT_VERIFY"),
       "body_sha256": hashlib.sha256(body).hexdigest(), "body_len": len(body)}
d = RECORD_DIR
with open(os.path.join(d, rid + ".body.tmp"), "wb") as f:
    f.write(body)
os.rename(os.path.join(d, rid + ".body.tmp"), os.path.join(d, rid + ".body"))
with open(os.path.join(d, rid + ".json.tmp"), "w") as f:
    json.dump(rec, f)
os.rename(os.path.join(d, rid + ".json.tmp"), os.path.join(d, rid + ".json"))
sys.stdout.buffer.write(b"Status: 200 OK\r\nContent-Type: text/plain\r\nX-Backend: cgi\r\n\r\n"
                        + b"BACKEND-OK " + rid.encode() + b"\n")
'''


def httpd_env():
    """The environment for every apache2 process the tests run.

    GT_HTTPD_ENV adds space-separated NAME=VALUE pairs for httpd only (not for
    the test process itself), e.g. the sanitizer runtime in LD_PRELOAD, which an
    uninstrumented httpd needs before it can load an instrumented module."""
    env = dict(os.environ)
    for pair in os.environ.get("GT_HTTPD_ENV", "").split():
        name, _, value = pair.partition("=")
        env[name] = value
    return env


def httpd_wrapper():
    """GT_HTTPD_WRAPPER: a command (e.g. valgrind with its options) that runs
    httpd as one foreground process (-X) instead of the daemon; [] when unset."""
    return os.environ.get("GT_HTTPD_WRAPPER", "").split()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_user():
    """(user, uid, gid) httpd children switch to, or None when not root."""
    if os.geteuid() != 0:
        return None
    pw = pwd.getpwnam("www-data")
    return ("www-data", pw.pw_uid, pw.pw_gid)


@dataclass
class VHost:
    """One TLS virtual host serving CHECKIN_PATH with GetToken On.

    signing_key: path or None (omit the directive); uuid: GetTokenServerUUID or None.
    directives: extra vhost-level lines; location: extra lines inside <Location /mdm/checkin>.
    """
    server_cert: str
    server_key: str
    db: str = ""
    signing_key: str = None
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    port: int = field(default_factory=free_port)
    server_name: str = ""
    verify_client: str = "optional_no_ca"   # None: no SSLVerifyClient line
    ca_file: str = None
    db_driver: str = "sqlite3"
    gettoken: bool = True
    directives: str = ""
    location: str = ""
    backend: bool = True                     # False: no ScriptAlias to the recording CGI
    ssl_options: str = "+StdEnvVars +ExportCertData"   # None: no SSLOptions line

    def __post_init__(self):
        if not self.server_name:
            self.server_name = "mdm-%d.test" % self.port

    def render(self, cgi):
        L = ["<VirtualHost 127.0.0.1:%d>" % self.port,
             "    ServerName %s" % self.server_name,
             "    SSLEngine on",
             "    SSLCertificateFile %s" % self.server_cert,
             "    SSLCertificateKeyFile %s" % self.server_key,
             "    SSLVerifyClient %s" % self.verify_client if self.verify_client else "",
             "    SSLVerifyDepth 3",
             "    SSLOptions %s" % self.ssl_options if self.ssl_options else ""]
        if self.ca_file:
            L.append("    SSLCACertificateFile %s" % self.ca_file)
        if self.db:
            L += ["    DBDriver %s" % self.db_driver, "    DBDParams \"%s\"" % self.db]
        if self.gettoken and self.uuid is not None:
            L.append("    GetTokenServerUUID %s" % self.uuid)
        if self.gettoken and self.signing_key is not None:
            L.append("    GetTokenSigningKey %s" % self.signing_key)
        L.append(textwrap.indent(self.directives.strip(), "    "))
        # Every path under /mdm/ reaches the recording CGI backend.
        for p in (CHECKIN_PATH, "/mdm/plain", "/mdm/off") if self.backend else ():
            L.append("    ScriptAlias %s %s" % (p, cgi))
        L.append("    <Location %s>" % CHECKIN_PATH)
        if self.gettoken:
            L.append("        GetToken On")
        L.append(textwrap.indent(self.location.strip(), "        "))
        L.append("    </Location>")
        if self.gettoken:
            L += ["    <Location /mdm/off>", "        GetToken Off", "    </Location>",
                  "    <Location %s/off>" % CHECKIN_PATH, "        GetToken Off", "    </Location>"]
        L.append("</VirtualHost>")
        return "\n".join(x for x in L if x.strip())


def default_settings(run, error_log, access_log, loglevel):
    """The server-wide directives of a test server, in order; Httpd(settings=)
    replaces any of them or (with None) leaves it out, and adds others."""
    return {"ErrorLog": error_log, "LogLevel": loglevel, "LogFormat": "%s gettoken" % LOG_FORMAT,
            "CustomLog": "%s gettoken" % access_log, "TypesConfig": "/etc/mime.types",
            "StartServers": "1", "ServerLimit": "2", "ThreadsPerChild": "8",
            "MaxRequestWorkers": "16", "MinSpareThreads": "4", "MaxSpareThreads": "16",
            "Timeout": "30", "KeepAlive": "On",
            "SSLSessionCache": "shmcb:%s(512000)" % os.path.join(run, "ssl_scache"),
            "SSLProtocol": "all -SSLv3"}


class Httpd:
    """Write a config, start/stop apache2, read its logs and the backend's records.

    settings: server-wide directives over default_settings(); cpus: a taskset
    CPU list that httpd runs on."""

    def __init__(self, workdir, vhosts, load_gettoken=True, load_echo=False,
                 extra_global="", loglevel=None, user=True, omit_modules=(),
                 settings=None, cpus=None, expect_log=()):
        self.dir = workdir
        self.vhosts = vhosts
        self.load_gettoken = load_gettoken
        self.load_echo = load_echo
        self.extra_global = extra_global
        self.omit_modules = omit_modules
        self.settings = settings or {}
        self.cpus = cpus
        self.loglevel = loglevel or ("info gettoken:debug" if load_gettoken else "info")
        self.user = run_user() if user else None
        for sub in ("logs", "run", "records", "cgi"):
            os.makedirs(os.path.join(workdir, sub), exist_ok=True)
        os.chmod(workdir, 0o755)
        self.conf = os.path.join(workdir, "httpd.conf")
        self.error_log = os.path.join(workdir, "logs", "error.log")
        self.access_log = os.path.join(workdir, "logs", "access.log")
        self.pidfile = os.path.join(workdir, "run", "httpd.pid")
        self.records = os.path.join(workdir, "records")
        self.cgi = os.path.join(workdir, "cgi", "backend.cgi")
        with open(self.cgi, "w") as f:
            f.write(CGI_SCRIPT.replace("RECORD_DIR", repr(self.records)))
        os.chmod(self.cgi, 0o755)
        os.chmod(self.records, 0o777)
        self.pid = None
        # message ids of the module's warn/error lines this server is set up
        # to write (its start-up warnings); see unexpected_lines()
        self.expect_log = set(expect_log)
        self.log_checked = 0
        self.write_config()

    @property
    def port(self):
        return self.vhosts[0].port

    def config_text(self):
        mods = ["LoadModule %s_module %s/mod_%s.so" % (m, MODDIR, m) for m in STOCK_MODULES
                if m not in self.omit_modules]
        if self.load_gettoken:
            mods.append("LoadModule gettoken_module %s" % GETTOKEN_SO)
        if self.load_echo:
            mods.append("LoadModule gettoken_echo_module %s" % ECHO_SO)
        run = os.path.join(self.dir, "run")
        g = ["ServerRoot %s" % self.dir, "ServerName 127.0.0.1", "DefaultRuntimeDir %s" % run,
             "PidFile %s" % self.pidfile, "Mutex file:%s default" % run]
        if "cgid" not in self.omit_modules:
            g.append("ScriptSock %s" % os.path.join(run, "cgisock"))
        g += mods
        if self.user:
            g += ["User %s" % self.user[0], "Group %s" % self.user[0]]
        settings = default_settings(run, self.error_log, self.access_log, self.loglevel)
        settings.update(self.settings)
        g += ["%s %s" % kv for kv in settings.items() if kv[1] is not None]
        g += ["<Directory />", "    Require all granted", "</Directory>"]
        g += ["Listen 127.0.0.1:%d" % v.port for v in self.vhosts]
        if self.extra_global:
            g.append(self.extra_global.strip())
        g += [v.render(self.cgi) for v in self.vhosts]
        return "\n".join(g) + "\n"

    def write_config(self):
        with open(self.conf, "w") as f:
            f.write(self.config_text())

    # --- control -------------------------------------------------------
    def configtest(self):
        """Run `apache2 -t`; return (exit code, combined output)."""
        p = subprocess.run([APACHE, "-t", "-f", self.conf], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60, env=httpd_env())
        return p.returncode, p.stdout.decode(errors="replace")

    def start(self, timeout=20):
        """Start apache2; raise RuntimeError (with the log tail) if it does not come up."""
        self.write_config()
        if httpd_wrapper():
            return self._start_foreground(timeout)
        p = subprocess.run(self._pinned([APACHE, "-f", self.conf, "-k", "start"]),
                           stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60, env=httpd_env())
        out = p.stdout.decode(errors="replace")
        if p.returncode != 0:
            raise RuntimeError("apache2 -k start exited %d:\n%s\n%s" % (p.returncode, out, self.log_tail()))
        deadline = time.time() + timeout
        while time.time() < deadline:
            pid = self._read_pid()
            if pid and self._alive(pid) and all(self._port_open(v.port) for v in self.vhosts):
                self.pid = pid
                # the parent's start-up notice (AH00094) names the work
                # directory: let it land before a test counts log lines
                self.wait_log(0, r"AH00094", timeout=max(1.0, deadline - time.time()))
                return self
            if pid and not self._alive(pid):
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("httpd did not come up on %s:\n%s\n%s" %
                           ([v.port for v in self.vhosts], out, self.log_tail()))

    def _pinned(self, cmd):
        return ["taskset", "-c", self.cpus] + cmd if self.cpus else cmd

    def _start_foreground(self, timeout):
        """httpd -X (one process, no fork) under the wrapper; slow to start."""
        self.proc = subprocess.Popen(httpd_wrapper() + [APACHE, "-X", "-f", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=httpd_env())
        deadline = time.time() + timeout * 6
        while time.time() < deadline and self.proc.poll() is None:
            if all(self._port_open(v.port) for v in self.vhosts):
                self.pid = self.proc.pid
                return self
            time.sleep(0.2)
        self._stop_foreground()
        raise RuntimeError("httpd -X did not come up on %s:\n%s" %
                           ([v.port for v in self.vhosts], self.log_tail()))

    def _server_connections(self):
        """httpd's side of the TCP connections on the vhosts' ports that it
        has not closed yet (ESTABLISHED, or CLOSE_WAIT: the client closed)."""
        ports, n = {v.port for v in self.vhosts}, 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table) as f:
                    rows = f.read().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                fields = row.split()
                if int(fields[1].rsplit(":", 1)[1], 16) in ports and fields[3] in ("01", "08"):
                    n += 1
        return n

    def _stop_foreground(self, timeout=60):
        """SIGTERM: httpd -X shuts down cleanly (pools freed) and the wrapper
        reports.  First it finishes the connections clients closed: one that
        SIGTERM catches half torn down loses mod_ssl's peer certificate,
        which the leak check would count."""
        deadline = time.time() + 10
        while self.proc.poll() is None and self._server_connections() and time.time() < deadline:
            time.sleep(0.1)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.exit_status = self.proc.returncode
        self.proc = None
        self.pid = None

    def stop(self, timeout=15):
        if getattr(self, "proc", None) is not None:
            return self._stop_foreground()
        pid = self.pid or self._read_pid()
        if not pid:
            return
        subprocess.run([APACHE, "-f", self.conf, "-k", "stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60, env=httpd_env())
        deadline = time.time() + timeout
        while time.time() < deadline and self._alive(pid):
            time.sleep(0.1)
        if self._alive(pid):      # our own server: take it and its children down
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                os.kill(pid, signal.SIGKILL)
        self.pid = None

    def _read_pid(self):
        try:
            with open(self.pidfile) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return None

    @staticmethod
    def _alive(pid):
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        try:     # a zombie counts as gone
            with open("/proc/%d/stat" % pid) as f:
                return f.read().split(")")[-1].split()[0] != "Z"
        except OSError:
            return False

    @staticmethod
    def _port_open(port):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    # --- processes --------------------------------------------------------
    def children(self):
        return children(self.pid) if self.pid else []

    def cpu_ticks(self):
        """utime+stime of the parent and its children, plus the parent's
        cutime+cstime (children that exited and were reaped)."""
        total = 0
        for pid in [self.pid] + self.children():
            try:
                with open("/proc/%d/stat" % pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
            if pid == self.pid:
                total += int(fields[13]) + int(fields[14])
        return total

    def rss_kb(self):
        """{child pid: VmRSS kB}."""
        mem = {pid: mem_kb(pid) for pid in self.children()}
        return {pid: m["VmRSS"] for pid, m in mem.items() if m}

    # --- logs and records -----------------------------------------------
    def read_error_log(self):
        try:
            with open(self.error_log, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.read_error_log().splitlines()[-n:])

    def log_mark(self):
        """An offset into the error log; pass it to log_since()."""
        try:
            return os.path.getsize(self.error_log)
        except FileNotFoundError:
            return 0

    def log_since(self, mark):
        with open(self.error_log, "rb") as f:
            f.seek(mark)
            return f.read().decode(errors="replace")

    def wait_log(self, mark, pattern, timeout=3.0):
        """Error-log lines written since mark that match the regex pattern (waits briefly)."""
        rx = re.compile(pattern, re.I)
        deadline = time.time() + timeout
        while True:
            lines = [l for l in self.log_since(mark).splitlines() if rx.search(l)]
            if lines or time.time() > deadline:
                return lines
            time.sleep(0.05)

    def crash_lines(self, mark=0):
        """Error-log lines since mark that tell of a crash (CRASH_RX)."""
        return crash_lines(self.log_since(mark) if os.path.exists(self.error_log) else "")

    def unexpected_lines(self, declared=()):
        """The error-log lines written since the last call that nobody
        expected: a crash, or one of the module's warn-or-worse lines whose
        message id is neither in `declared` (the test's) nor in this
        server's expect_log.  Only whole lines are taken."""
        if not os.path.exists(self.error_log):
            return []
        with open(self.error_log, "rb") as f:
            f.seek(self.log_checked)
            text = f.read()
        text = text[:text.rfind(b"\n") + 1]
        self.log_checked += len(text)
        allowed = set(declared) | self.expect_log
        return [l for l in text.decode(errors="replace").splitlines()
                if CRASH_RX.search(l)
                or (GT_PROBLEM_RX.search(l) and gt_line_id(l) not in allowed)]

    def settle_log(self, quiet=0.05, timeout=1.0):
        """Waits until the error log has not grown for `quiet` seconds (a
        line written just after the answer went out belongs to this test)."""
        deadline = time.time() + timeout
        size, since = self.log_mark(), time.time()
        while time.time() < deadline:
            time.sleep(quiet / 2)
            now = self.log_mark()
            if now != size:
                size, since = now, time.time()
            elif time.time() - since >= quiet:
                return

    def access_lines(self, test_id, timeout=10.0):
        # mod_log_config writes after the answer went out: on a loaded machine
        # the line can come well after the client read the answer
        deadline = time.time() + timeout
        while True:
            try:
                with open(self.access_log) as f:
                    lines = [l.rstrip("\n") for l in f if l.rstrip("\n").endswith(" id=" + test_id)]
            except FileNotFoundError:
                lines = []
            if lines or time.time() > deadline:
                return lines
            time.sleep(0.05)

    def record(self, test_id, timeout=3.0):
        """(record dict, body bytes) the CGI backend stored for X-Test-Id test_id, or None."""
        j = os.path.join(self.records, test_id + ".json")
        deadline = time.time() + timeout
        while not os.path.exists(j):
            if time.time() > deadline:
                return None
            time.sleep(0.05)
        with open(j) as f:
            rec = json.load(f)
        with open(os.path.join(self.records, test_id + ".body"), "rb") as f:
            return rec, f.read()


def running(*servers):
    """Starts the servers; a generator for a fixture: yields them, then stops them."""
    try:
        for h in servers:
            h.start()
        yield servers
    finally:
        for h in servers:
            h.stop()

# One of the module's own error-log lines (its "gettoken: " prefix), never a
# line that merely mentions a path such as /tmp/gettoken-test-... .
GT_LINE_RX = r"(^|\s)gettoken: "

# The module's lines at LogLevel warn or worse, and their message id.  A
# refusal that repeats one logged shortly before for the same client goes to
# info ("; repeated within 60 s"): it counts as well, or whether a test sees
# its refusal at warn would depend on which test ran before it, and when.
GT_PROBLEM_RX = re.compile(r"\[gettoken:(?:warn|error|crit|alert|emerg)\]|"
                           r"\[gettoken:info\].* refused \(\d{3}\): .*; repeated within \d+ s$")
GT_ID_RX = re.compile(r"(?:^|\s)gettoken: (GT\d{5}): ")

# The one crash matcher: a child or the parent that died of a signal
# (AH00051/AH00052 "child pid N exit signal ...", AH00050, AH00060 "seg
# fault or similar nasty error detected in the parent process"), a core dump.
CRASH_RX = re.compile(r"exit signal|segmentation|seg fault|AH0005[0-2]|AH00060|"
                      r"dumped core|core dumped", re.I)


def gt_line_id(line):
    """The message id (GT01234) of one of the module's lines, or None."""
    m = GT_ID_RX.search(line)
    return m.group(1) if m else None


def crash_lines(text):
    """The lines of an error-log text that tell of a crash."""
    return [l for l in text.splitlines() if CRASH_RX.search(l)]


def unexpected_log_lines(servers, declared=()):
    """unexpected_lines() of every server, each log settled first."""
    found = []
    for h in servers:
        if h.log_mark() > h.log_checked:
            h.settle_log()
        found += ["%s: %s" % (h.dir, l) for l in h.unexpected_lines(declared)]
    return found

# A compact JWS (a token) anywhere in a log: never allowed.
JWT_RX = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+")


def assert_refused(h, resp, status, reason_rx, mark):
    """A refused GetToken: the status, nothing reached the backend, exactly
    one gettoken error-log line since mark that gives the reason, and no
    token in the log.  Returns that line."""
    assert resp.status == status, (resp.status, resp.body[:300], h.log_tail(3))
    assert h.record(resp.test_id, timeout=0) is None, "a refused GetToken reached the backend"
    # a request's lines only: start-up notices and warnings (which a slow,
    # single-process server may write after the mark) are not the refusal
    lines = h.wait_log(mark, r"\[client [^]]*\].*" + GT_LINE_RX)
    assert len(lines) == 1, "want one gettoken error-log line, got:\n" + "\n".join(lines)
    assert re.search(reason_rx, lines[0], re.I), "reason /%s/ not in: %s" % (reason_rx, lines[0])
    assert not JWT_RX.search(h.log_since(mark))
    return lines[0]
