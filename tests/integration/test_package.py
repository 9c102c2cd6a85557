# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""The Debian package: dpkg-buildpackage -us -uc -b in a clean copy of the
tree builds libapache2-mod-gettoken; dpkg -i puts it into this machine's
apache2; `a2enmod gettoken && apachectl -t` says Syntax OK; the stock Debian
configuration (a copy of /etc/apache2 moved to 127.0.0.1 ports) still starts
with the module enabled, and a test site in it serves a GetToken through the
installed module; dpkg --purge removes every file again.

The machine's apache2 is left as found: the enabled modules and a2enmod's
state markers are restored afterwards, and files that a source install put
where the package goes are moved aside and put back."""
import fcntl
import http.client
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

from gt_client import gettoken_fields, token_from_response, verify_maid_token
from gt_httpd import free_port
from gt_pki import REPO

PKG = "libapache2-mod-gettoken"
ETC = "/etc/apache2"
STATE = "/var/lib/apache2"
SO = "/usr/lib/apache2/modules/mod_gettoken.so"
HEADER = "/usr/include/apache2/mod_gettoken.h"
LOAD = ETC + "/mods-available/gettoken.load"
CONF = ETC + "/mods-available/gettoken.conf"
DOC = "/usr/share/doc/" + PKG
PACKAGE_FILES = [SO, HEADER, LOAD, CONF, DOC + "/copyright", DOC + "/examples/gettoken-vhost.conf",
                 DOC + "/schema/sqlite.sql", DOC + "/schema/postgresql.sql", DOC + "/schema/mysql.sql"]
TOOLS = ["dpkg-buildpackage", "dpkg", "dpkg-deb", "dpkg-query", "dh", "dh_apache2", "a2enmod",
         "apachectl"]
APACHE_ENV = {"APACHE_RUN_USER": "www-data", "APACHE_RUN_GROUP": "www-data"}


def run(cmd, timeout=120, env=None, cwd=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                       timeout=timeout, env=env, cwd=cwd)
    return p.returncode, p.stdout.decode(errors="replace")


def dpkg(*args):
    """dpkg, waiting (bounded) while another dpkg/apt holds the lock."""
    deadline = time.time() + 120
    while True:
        rc, out = run(["dpkg"] + list(args), timeout=300)
        if rc == 0 or "lock" not in out or time.time() > deadline:
            return rc, out
        time.sleep(2)


def installed_status():
    rc, out = run(["dpkg-query", "-W", "-f=${Status}", PKG])
    return out.strip() if rc == 0 else ""


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        pytest.skip("PACKAGE TEST NOT RUN: %s missing (tests/run installs them)" % ", ".join(missing))
    if os.geteuid() != 0:
        pytest.skip("PACKAGE TEST NOT RUN: dpkg -i needs root")
    # A clean copy: the files git knows (tracked, or new and not ignored),
    # without the in-tree build products.
    rc, out = run(["git", "-C", REPO, "ls-files", "-z", "-c", "-o", "--exclude-standard"])
    assert rc == 0, out
    base = tmp_path_factory.mktemp("package")
    src = base / "src"
    for rel in filter(None, out.split("\0")):
        path = os.path.join(REPO, rel)
        if os.path.isfile(path):
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, src / rel)
    assert not (src / "Makefile").exists() and not (src / "configure").exists()
    rc, version = run(["dpkg-parsechangelog", "-S", "Version"], cwd=src)
    assert rc == 0, version
    rc, arch = run(["dpkg", "--print-architecture"])
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck parallel=2")   # tests/run runs make check
    rc, out = run(["nice", "dpkg-buildpackage", "-us", "-uc", "-b"], timeout=1200, env=env, cwd=src)
    assert rc == 0, out[-6000:]
    path = base / ("%s_%s_%s.deb" % (PKG, version.strip(), arch.strip()))
    assert path.exists(), sorted(os.listdir(base))
    return str(path)


def test_package_contents(deb, tmp_path):
    rc, listing = run(["dpkg-deb", "-c", deb])
    assert rc == 0, listing
    names = {line.split()[-1].lstrip(".") for line in listing.splitlines()}
    assert set(PACKAGE_FILES) <= names, set(PACKAGE_FILES) - names
    rc, depends = run(["dpkg-deb", "-f", deb, "Depends"])
    assert re.search(r"\bapache2-api-\d{8}\b", depends), depends     # the ABI guard
    assert re.search(r"\blibplist", depends) and re.search(r"\blibssl3\b", depends), depends
    ctl = tmp_path / "control"
    rc, out = run(["dpkg-deb", "-e", deb, str(ctl)])
    assert rc == 0, out
    assert (ctl / "conffiles").read_text().split() == [CONF, LOAD]
    for script, action in (("postinst", "enmod"), ("prerm", "dismod"), ("postrm", "dismod")):
        text = (ctl / script).read_text()
        assert "apache2-maintscript-helper" in text and "apache2_invoke %s" % action in text, text
    root = tmp_path / "root"
    rc, out = run(["dpkg-deb", "-x", deb, str(root)])
    assert rc == 0, out
    load = (root / LOAD.lstrip("/")).read_text()
    assert "# Depends: ssl dbd" in load.splitlines(), load
    assert "LoadModule gettoken_module %s" % SO in load.splitlines(), load
    conf = (root / CONF.lstrip("/")).read_text().splitlines()
    assert conf and all(line.startswith("#") for line in conf), conf


class MachineApache:
    """What the test changes in the machine's apache2, and how to undo it."""

    def __init__(self, workdir):
        self.aside = os.path.join(workdir, "aside")
        self.enabled = self.links(ETC + "/mods-enabled")
        self.markers = self.files(STATE)
        self.marker_dirs = self.dirs(STATE)
        self.moved = []

    @staticmethod
    def links(d):
        return {n: os.readlink(os.path.join(d, n)) for n in os.listdir(d)}

    @staticmethod
    def files(d):
        return {os.path.join(r, f) for r, _, fs in os.walk(d) for f in fs}

    @staticmethod
    def dirs(d):
        return {os.path.join(r, s) for r, ds, _ in os.walk(d) for s in ds}

    def move_aside_unowned(self):
        """A source install may have left files where the package goes."""
        for path in (SO, HEADER, LOAD, CONF):
            if os.path.exists(path):
                dest = os.path.join(self.aside, path.lstrip("/"))
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                shutil.move(path, dest)
                self.moved.append((path, dest))

    def restore(self):
        d = ETC + "/mods-enabled"
        now = self.links(d)
        for n in set(now) - set(self.enabled):
            os.unlink(os.path.join(d, n))
        for n, target in self.enabled.items():
            if now.get(n) != target:
                if n in now:
                    os.unlink(os.path.join(d, n))
                os.symlink(target, os.path.join(d, n))
        for f in self.files(STATE) - self.markers:
            os.unlink(f)
        for f in self.markers - self.files(STATE):
            os.makedirs(os.path.dirname(f), exist_ok=True)
            open(f, "a").close()
        for extra in sorted(self.dirs(STATE) - self.marker_dirs, reverse=True):
            if not os.listdir(extra):
                os.rmdir(extra)
        for path, dest in self.moved:
            shutil.move(dest, path)


@pytest.fixture(scope="module")
def installed(deb, tmp_path_factory):
    # one package test at a time on this machine
    lock = open("/tmp/gettoken-package-test.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        status = installed_status()
        if "installed" in status.split():
            pytest.fail("%s is already installed on this machine (%s): the test would replace "
                        "it; purge it first" % (PKG, status))
        machine = MachineApache(str(tmp_path_factory.mktemp("machine")))
        machine.move_aside_unowned()
        try:
            rc, out = dpkg("-i", deb)
            assert rc == 0, out
            yield machine
        finally:
            if re.search(r"\b(installed|config-files|half-\w+|unpacked)\b", installed_status()):
                dpkg("--purge", PKG)
            machine.restore()
    finally:
        lock.close()


def test_installed_module_enables_cleanly(installed):
    assert "install ok installed" in installed_status()
    for path in PACKAGE_FILES:
        assert os.path.exists(path), path
    rc, out = run(["a2enmod", "gettoken"])
    assert rc == 0, out
    enabled = os.listdir(ETC + "/mods-enabled")
    for name in ("gettoken.load", "gettoken.conf", "ssl.load", "dbd.load"):
        assert name in enabled, (name, enabled)    # "# Depends: ssl dbd" pulled them in
    rc, out = run(["apachectl", "-t"])
    assert rc == 0 and "Syntax OK" in out, out


def stock_copy(workdir, site):
    """/etc/apache2 as it is now (gettoken enabled), copied, moved to a free
    127.0.0.1 port and run/log directories of its own, plus one site."""
    root = os.path.join(workdir, "etc-apache2")
    shutil.copytree(ETC, root, symlinks=True)
    port = free_port()
    with open(os.path.join(root, "ports.conf"), "w") as f:
        f.write("Listen 127.0.0.1:%d\n" % port)
    for name in os.listdir(os.path.join(root, "sites-available")):
        path = os.path.join(root, "sites-available", name)
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("<VirtualHost *:80>", "<VirtualHost *:%d>" % port))
    with open(os.path.join(root, "sites-enabled", "zz-gettoken-test.conf"), "w") as f:
        f.write(site)
    env = dict(os.environ, **APACHE_ENV)
    for var, sub in (("APACHE_RUN_DIR", "run"), ("APACHE_LOCK_DIR", "lock"), ("APACHE_LOG_DIR", "log")):
        env[var] = os.path.join(workdir, sub)
        os.makedirs(env[var], exist_ok=True)
    env["APACHE_PID_FILE"] = os.path.join(workdir, "run", "apache2.pid")
    return root, port, env


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def test_stock_apache_with_module_serves_gettoken(installed, gt, client, tmp_path):
    work = str(tmp_path)
    os.chmod(work, 0o755)
    dev = gt.devices["dev_a"]
    server_uuid = "6d1f3a52-8c4b-4e2a-9f7d-0b1c2d3e4f50"
    site_port = free_port()
    site = "\n".join([
        "Listen 127.0.0.1:%d" % site_port,
        "<VirtualHost 127.0.0.1:%d>" % site_port,
        "    ServerName gettoken-package.test",
        "    SSLEngine on",
        "    SSLCertificateFile %s" % gt.pki.server.cert_path,
        "    SSLCertificateKeyFile %s" % gt.pki.server.key_path,
        "    SSLVerifyClient optional_no_ca",
        "    DBDriver sqlite3",
        "    DBDParams %s" % gt.db,
        "    GetTokenServerUUID %s" % server_uuid,
        "    GetTokenSigningKey %s" % gt.pki.maid_rsa.key_path,
        "    <Location /mdm/checkin>",
        "        GetToken On",
        "    </Location>",
        "</VirtualHost>", ""])
    root, port, env = stock_copy(work, site)
    apache = ["apache2", "-d", root, "-f", os.path.join(root, "apache2.conf")]
    rc, out = run(apache + ["-t"], env=env)
    assert rc == 0, out
    rc, out = run(apache + ["-k", "start"], env=env)
    assert rc == 0, out
    try:
        assert wait_port(port) and wait_port(site_port), open(os.path.join(env["APACHE_LOG_DIR"],
                                                                          "error.log")).read()
        # the stock default site still answers on plain HTTP
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/")
        resp = c.getresponse()
        assert resp.status == 200 and b"Apache2 Debian Default Page" in resp.read()
        c.close()
        # and the installed module answers a GetToken in the test site
        r = client(site_port, "dev_a").checkin(gettoken_fields(udid=dev.enrollment_id))
        claims = verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key, server_uuid,
                                   time.time())
        assert claims["service_type"] == "com.apple.maid"
    finally:
        run(apache + ["-k", "stop"], env=env)
        pidfile = env["APACHE_PID_FILE"]
        deadline = time.time() + 15
        while os.path.exists(pidfile) and time.time() < deadline:
            time.sleep(0.1)


def test_purge_removes_every_file(installed):
    rc, out = dpkg("--purge", PKG)
    assert rc == 0, out
    status = installed_status()
    assert "installed" not in status.split() and "config-files" not in status, status
    for path in PACKAGE_FILES + [DOC]:
        assert not os.path.exists(path), path
    left = [n for n in os.listdir(ETC + "/mods-enabled") if n.startswith("gettoken.")]
    assert left == [], left
    rc, out = run(["a2enmod", "gettoken"])
    assert rc != 0, out
    assert not os.path.exists(ETC + "/mods-enabled/gettoken.load")
    rc, out = run(["apachectl", "-t"])
    assert rc == 0 and "Syntax OK" in out, out
