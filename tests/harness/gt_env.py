# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""One test/demo environment: a work directory with a PKI, an enrollment DB and
any number of httpd instances built on them. Shared by conftest.py and demo.sh."""
import os
import shutil
import tempfile

from gt_client import Client
from gt_httpd import Httpd, VHost, run_user
from gt_pki import DEVICE_NAMES, PKI, create_enrollment_db, enroll_pki_devices


class Env:
    def __init__(self, base=None, prefix="gettoken-test-", device_names=DEVICE_NAMES):
        # Not under pytest's 0700 tmp dirs: the httpd user must reach the CGI,
        # the DB and the records directory.
        self.dir = base or tempfile.mkdtemp(prefix=prefix, dir="/tmp")
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.pki = PKI(os.path.join(self.dir, "pki"), device_names)
        self.devices = self.pki.devices
        self.user = run_user()
        self.db = self.make_db("enroll", enroll_pki_devices(self.pki))
        self._n = 0
        self.servers = []

    def make_db(self, name, rows):
        """An SQLite enrollment DB (own directory, owned by the httpd user)."""
        uid, gid = (self.user[1], self.user[2]) if self.user else (None, None)
        return create_enrollment_db(os.path.join(self.dir, "db-" + name, name + ".db"), rows, uid, gid)

    def vhost(self, **kw):
        """A VHost with the test server certificate, the enrollment DB and the RSA maid key."""
        kw.setdefault("server_cert", self.pki.server.cert_path)
        kw.setdefault("server_key", self.pki.server.key_path)
        kw.setdefault("db", self.db)
        kw.setdefault("signing_key", self.pki.maid_rsa.key_path)
        return VHost(**kw)

    def httpd(self, vhosts=None, **kw):
        """An Httpd (not started) in a fresh subdirectory; vhosts default to one env.vhost()."""
        self._n += 1
        d = os.path.join(self.dir, "httpd-%02d" % self._n)
        h = Httpd(d, vhosts or [self.vhost()], **kw)
        self.servers.append(h)
        return h

    def start(self, vhosts=None, **kw):
        return self.httpd(vhosts, **kw).start()

    def served(self, vhosts=None, **kw):
        """For a fixture (`yield from gt.served(...)`): a started Httpd, stopped afterwards."""
        h = self.httpd(vhosts, **kw)
        try:
            yield h.start()
        finally:
            h.stop()

    def readable_dir(self, name, files):
        """A directory of the work directory holding files {name: text}, all of
        it readable by the httpd user."""
        d = os.path.join(self.dir, name)
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        for fname, text in files.items():
            with open(os.path.join(d, fname), "w") as f:
                f.write(text)
            os.chmod(os.path.join(d, fname), 0o644)
        return d

    def client(self, port, device=None):
        """A Client to port presenting the named device's certificate (None: no cert)."""
        ident = self.devices[device] if isinstance(device, str) else device
        return Client(port, self.pki.ca_cert_path, ident)

    def stop_all(self):
        for h in self.servers:
            h.stop()

    def cleanup(self):
        self.stop_all()
        if not os.environ.get("GT_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)
