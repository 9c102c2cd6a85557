# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""A real PostgreSQL server for the tests, in a throwaway directory.

initdb + pg_ctl from Debian's postgresql package, run as an unprivileged
user (postgres when the tests run as root), listening on 127.0.0.1 only on
a free port, trust authentication on loopback.  stop()/start() keep the
data, for database-fault tests.

    pg = PgServer(workdir).start()
    pg.create_db("mdm", schema="conf/schema/postgresql.sql")
    pg.sql("mdm", "INSERT INTO cert_auth_associations (id, sha256) VALUES ('U', 'ab..')")
    pg.dbd_params("mdm")   # for DBDParams: "host=127.0.0.1 port=... dbname=mdm user=..."
"""
import glob
import os
import pwd
import shutil
import subprocess
import time

from gt_httpd import free_port

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _pg_bindir():
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: int(d.split("/")[-2]))
    if not dirs:
        raise RuntimeError("PostgreSQL server binaries not found "
                           "(Debian package postgresql)")
    return dirs[-1]


class PgServer:
    driver = "pgsql"

    def __init__(self, workdir, name="pg"):
        self.bindir = _pg_bindir()
        self.dir = os.path.join(workdir, name)
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        self.log = os.path.join(self.dir, "server.log")
        self.port = free_port()
        if os.geteuid() == 0:
            self.user = "postgres"
        else:
            self.user = pwd.getpwuid(os.geteuid()).pw_name
        self._initdb()

    def _run(self, args, check=True, **kw):
        if os.geteuid() == 0 and self.user != "root":
            args = ["runuser", "-u", self.user, "--"] + args
        return subprocess.run(args, check=check, capture_output=True, text=True,
                              timeout=120, **kw)

    def _initdb(self):
        os.makedirs(self.sock, exist_ok=True)
        if os.geteuid() == 0:
            pw = pwd.getpwnam(self.user)
            # the parent directories must be traversable by the postgres user
            os.chmod(self.dir, 0o755)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            os.chown(self.sock, pw.pw_uid, pw.pw_gid)
        self._run([os.path.join(self.bindir, "initdb"), "-D", self.data,
                   "-A", "trust", "-U", self.user, "--no-sync", "-E", "UTF8"])
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("listen_addresses = '127.0.0.1'\n"
                    "port = %d\n" % self.port +
                    "unix_socket_directories = '%s'\n" % self.sock +
                    "max_connections = 100\nfsync = off\n"
                    "synchronous_commit = off\nfull_page_writes = off\n")

    def start(self):
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data,
                   "-l", self.log, "-w", "-t", "60", "start"])
        return self

    def stop(self, mode="fast"):
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data,
                   "-m", mode, "-w", "-t", "60", "stop"], check=False)

    def running(self):
        r = self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data,
                       "status"], check=False)
        return r.returncode == 0

    def psql(self, db, sql=None, file=None):
        args = [os.path.join(self.bindir, "psql"), "-X", "-q", "-v",
                "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
                "-U", self.user, "-d", db, "-At"]
        if file:
            args += ["-f", file]
        else:
            args += ["-c", sql]
        return self._run(args).stdout

    sql = psql

    def create_db(self, db, schema=os.path.join(REPO, "conf", "schema",
                                                 "postgresql.sql")):
        self.psql("postgres", "CREATE DATABASE %s" % db)
        if schema:
            # psql runs as the postgres user: give it a copy it can read
            copy = os.path.join(self.dir, os.path.basename(schema))
            shutil.copyfile(schema, copy)
            os.chmod(copy, 0o644)
            self.psql(db, file=copy)
        return self

    def dbd_params(self, db):
        return "host=127.0.0.1 port=%d dbname=%s user=%s connect_timeout=3" % (
            self.port, db, self.user)

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = self._run([os.path.join(self.bindir, "pg_isready"), "-h",
                           "127.0.0.1", "-p", str(self.port)], check=False)
            if r.returncode == 0:
                return True
            time.sleep(0.2)
        return False

    def connections(self, db):
        """How many client connections use database db now."""
        return int(self.sql("postgres", "SELECT count(*) FROM pg_stat_activity "
                                        "WHERE datname = '%s' AND pid <> pg_backend_pid()" % db))

    def kill_connections(self, db):
        return int(self.sql("postgres", "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                        "WHERE datname = '%s' AND pid <> pg_backend_pid()" % db))

    def cleanup(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
