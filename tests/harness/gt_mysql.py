# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""A real MariaDB server for the tests, in a throwaway directory.

mariadb-install-db + mariadbd from Debian's mariadb-server package, run as
an unprivileged user (mysql when the tests run as root), listening on a
private unix socket and on 127.0.0.1 only, on a free port.  The
administrator is root over the socket; httpd connects over TCP as
`gettoken`, a least-privilege user with exactly the GRANTs that
conf/schema/mysql.sql lists (and SELECT on a database the schema is not
loaded into, for tables a test makes itself).
stop()/start() keep the data, for database-fault tests.  The same methods
as gt_pg.PgServer, so a test takes either:

    db = MariaDbServer(workdir).start()
    db.create_db("mdm")                  # conf/schema/mysql.sql + the grants
    db.sql("mdm", "INSERT INTO cert_auth_associations (id, sha256) VALUES ('U', 'ab..')")
    db.dbd_params("mdm")   # for DBDParams: "host=127.0.0.1 port=... user=gettoken pass=... dbname=mdm"
"""
import os
import pwd
import re
import shutil
import signal
import subprocess
import time

from gt_httpd import free_port

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCHEMA = os.path.join(REPO, "conf", "schema", "mysql.sql")
MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "/usr/bin/mariadb-install-db"
CLIENT = "/usr/bin/mariadb"
DRIVER = "/usr/lib/x86_64-linux-gnu/apr-util-1/apr_dbd_mysql.so"
HTTPD_USER = "gettoken"
HTTPD_PASS = "gettoken-test-pass"



def schema_grants():
    """The GRANT lines conf/schema/mysql.sql suggests, for any db and user."""
    grants = []
    with open(SCHEMA) as f:
        for line in f:
            m = re.match(r"--\s+(GRANT .* ON )mdm\.(\w+) TO '[^']*'@'[^']*';", line)
            if m:
                grants.append(m.group(1) + "`{db}`." + m.group(2) + " TO {user}")
    assert len(grants) >= 5, grants
    return tuple(grants)


def missing():
    """What of MariaDB and apr-util's mysql driver is not installed ([] if all is)."""
    need = {MARIADBD: "mariadb-server", INSTALL_DB: "mariadb-server",
            CLIENT: "mariadb-client", DRIVER: "libaprutil1-dbd-mysql"}
    return sorted({pkg for path, pkg in need.items() if not os.path.exists(path)})


def _user():
    if os.geteuid() == 0:
        return "mysql"
    return pwd.getpwuid(os.geteuid()).pw_name


class MariaDbServer:
    driver = "mysql"

    def __init__(self, workdir, name="mariadb", buffer_pool="64M"):
        self.dir = os.path.join(workdir, name)
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "mysqld.sock")
        self.log = os.path.join(self.dir, "server.log")
        self.general_log = os.path.join(self.dir, "general.log")
        self.port = free_port()
        self.user = _user()
        self.buffer_pool = buffer_pool
        self.proc = None
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self._chown(self.dir)
        self._install_db(workdir)

    def _chown(self, path):
        if os.geteuid() == 0:
            pw = pwd.getpwnam(self.user)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _install_db(self, workdir):
        # mariadb-install-db takes seconds: once per work directory, then copies
        template = os.path.join(workdir, ".mariadb-template")
        if not os.path.isdir(os.path.join(template, "mysql")):
            tmp = template + ".%d" % os.getpid()
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(tmp)
            self._chown(tmp)
            r = subprocess.run([INSTALL_DB, "--no-defaults", "--datadir=" + tmp,
                                "--user=" + self.user, "--auth-root-authentication-method=normal",
                                "--skip-test-db", "--skip-name-resolve"],
                               capture_output=True, text=True, timeout=300)
            if r.returncode != 0:
                raise RuntimeError("mariadb-install-db failed:\n" + r.stdout + r.stderr)
            os.rename(tmp, template)
        shutil.copytree(template, self.data, symlinks=True)
        if os.geteuid() == 0:
            for root, dirs, files in os.walk(self.data):
                for n in [root] + [os.path.join(root, f) for f in dirs + files]:
                    self._chown(n)

    def start(self, timeout=60):
        args = [MARIADBD, "--no-defaults", "--datadir=" + self.data, "--socket=" + self.sock,
                "--port=%d" % self.port, "--bind-address=127.0.0.1", "--skip-name-resolve",
                "--log-error=" + self.log, "--pid-file=" + os.path.join(self.dir, "mysqld.pid"),
                "--general-log-file=" + self.general_log,
                "--innodb-buffer-pool-size=" + self.buffer_pool,
                "--innodb-log-file-size=48M", "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0", "--max-connections=300",
                "--character-set-server=utf8mb4", "--skip-log-bin"]
        if os.geteuid() == 0:
            args.append("--user=" + self.user)
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        if not self.wait_ready(timeout):
            self.stop()
            raise RuntimeError("mariadbd did not start:\n" + self._log_tail())
        return self

    def _log_tail(self, n=20):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self, mode="fast"):
        """Stop the server: "fast" a clean shutdown, "immediate" SIGKILL."""
        if not self.proc:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if mode == "immediate" else signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                return False
            r = subprocess.run([CLIENT, "--no-defaults", "-uroot", "-S", self.sock, "-N", "-B",
                                "-e", "SELECT 1"], capture_output=True, text=True, timeout=30)
            if r.returncode == 0:
                return True
            time.sleep(0.2)
        return False

    def sql(self, db, sql=None, file=None, user="root", password=None):
        """Run SQL (or a file) as the administrator (or user); tab-separated rows."""
        args = [CLIENT, "--no-defaults", "-N", "-B", "-u", user]
        if user == "root":
            args += ["-S", self.sock]
        else:
            args += ["-h", "127.0.0.1", "-P", str(self.port), "-p" + (password or "")]
        if db:
            args.append(db)
        if file:
            with open(file) as f:
                text = f.read()
        else:
            args += ["-e", sql]
            text = None
        r = subprocess.run(args, input=text, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise subprocess.CalledProcessError(r.returncode, args, r.stdout, r.stderr)
        return r.stdout

    psql = sql

    def create_db(self, db, schema=SCHEMA):
        """Database db with the schema loaded and the httpd user's grants:
        the schema's own, or SELECT on every table without a schema."""
        self.sql(None, "CREATE DATABASE `%s` CHARACTER SET utf8mb4" % db)
        if schema:
            self.sql(db, file=schema)
            self.grant_httpd(db, schema_grants())
        else:
            self.grant_httpd(db, ["GRANT SELECT ON `{db}`.* TO {user}"])
        return self

    def grant_httpd(self, db, grants):
        """The least-privilege httpd user (created once), granted these on db."""
        stmts = []
        for host in ("127.0.0.1", "localhost"):
            user = "'%s'@'%s'" % (HTTPD_USER, host)
            stmts.append("CREATE USER IF NOT EXISTS %s IDENTIFIED BY '%s'" % (user, HTTPD_PASS))
            stmts += [g.format(db=db, user=user) for g in grants]
        self.sql(None, ";\n".join(stmts))

    def dbd_params(self, db, user=HTTPD_USER, password=HTTPD_PASS):
        # apr-util's driver takes no timeouts here (DBDParams group=: an option file)
        return "host=127.0.0.1 port=%d user=%s pass=%s dbname=%s" % (self.port, user, password, db)

    def connections(self, db):
        """How many client connections use database db now."""
        return int(self.sql(None, "SELECT count(*) FROM information_schema.processlist "
                                  "WHERE db = '%s' AND id <> connection_id()" % db))

    def kill_connections(self, db):
        ids = self.sql(None, "SELECT id FROM information_schema.processlist "
                             "WHERE db = '%s' AND id <> connection_id()" % db).split()
        if ids:
            self.sql(None, ";".join("KILL %s" % i for i in ids))
        return len(ids)

    def cleanup(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
