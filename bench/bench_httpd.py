#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""bench_httpd.py -- the benchmark's httpd: the harness's Httpd (tests/harness/
gt_httpd.py) with a fixed process/thread pool, no access log, no CGI backend
and a static file of about the size of a GetToken answer."""
import os
import plistlib
import time
import uuid

import bench_common  # noqa: F401 (puts the harness on sys.path)
from gt_httpd import Httpd, VHost

STATIC_PATH = "/static/ok.plist"
# what the benchmark's server loads: no CGI, proxy or header modules
OMITTED_MODULES = ("cgid", "alias", "proxy", "proxy_http", "env", "headers")


def settings(work, threads):
    """The server-wide directives of the benchmark's server."""
    return {
        "LogFormat": None, "CustomLog": None,
        "TypesConfig": "/dev/null", "AddType": "application/xml .plist",
        # fixed process/thread pool: no child is started or reaped during a run
        "StartServers": "2", "ServerLimit": "2", "ThreadsPerChild": str(threads),
        "MaxRequestWorkers": str(2 * threads), "MinSpareThreads": "1",
        "MaxSpareThreads": str(2 * threads), "MaxConnectionsPerChild": "0",
        "MaxKeepAliveRequests": "0", "KeepAliveTimeout": "5",
        "SSLSessionCache": "none",
        "DocumentRoot": os.path.join(work, "htdocs"),
        "DBDPersist": "On", "DBDMin": "1", "DBDKeep": str(threads), "DBDMax": str(threads),
    }


def bench_vhost(pki, db, with_module, organizations, location="", server_uuid=None,
                driver="sqlite3"):
    """A TLS vhost on its own free port serving /mdm/checkin (GetToken On)."""
    directives = ""
    if with_module and organizations:
        # same key and UUID as the default, so the end-to-end check holds;
        # what differs is the query per GetToken
        directives = (f"GetTokenOrganization bench-org {server_uuid} {pki.maid_key}\n"
                      'GetTokenOrganizationSQL "SELECT organization FROM '
                      'gettoken_device_organization WHERE enrollment_id = %s"')
    return VHost(pki.server_cert, pki.server_key, db=db, signing_key=pki.maid_key,
                 uuid=server_uuid, gettoken=with_module, directives=directives, db_driver=driver,
                 location=location, backend=False, ssl_options=None)


def bench_httpd(work, pki, db, with_module, server_cpus, threads, big_db=None,
                organizations=False, location="", extra_global="", pg_params=None,
                mysql_params=None):
    """An Httpd (not started) in work.  The scaling DB, big_db, is served by a
    second vhost of the same server on its own port (h.big_port), so both DBs
    are measured in one server, alternately.  With organizations, a third
    vhost on db adds the organisation query (h.org_port); with pg_params
    (DBDParams), another one reads PostgreSQL (h.pg_port), with mysql_params
    one reads MariaDB (h.mysql_port): each is measured next to the plain
    vhost, in the same block."""
    write_static(work)
    server_uuid = str(uuid.uuid4())
    vhosts = [bench_vhost(pki, d, with_module, False, location, server_uuid)
              for d in (db, big_db) if d]
    h_ports = {}
    if with_module and organizations:
        vhosts.append(bench_vhost(pki, db, True, True, location, server_uuid))
        h_ports["org_port"] = vhosts[-1].port
    if with_module and pg_params:
        vhosts.append(bench_vhost(pki, pg_params, True, False, location, server_uuid,
                                  driver="pgsql"))
        h_ports["pg_port"] = vhosts[-1].port
    if with_module and mysql_params:
        vhosts.append(bench_vhost(pki, mysql_params, True, False, location, server_uuid,
                                  driver="mysql"))
        h_ports["mysql_port"] = vhosts[-1].port
    h = Httpd(work, vhosts, load_gettoken=with_module, extra_global=extra_global,
              loglevel="warn", omit_modules=OMITTED_MODULES,
              settings=settings(work, threads), cpus=server_cpus)
    h.server_uuid = server_uuid
    h.big_port = vhosts[1].port if big_db else None
    h.org_port, h.pg_port = h_ports.get("org_port"), h_ports.get("pg_port")
    h.mysql_port = h_ports.get("mysql_port")
    return h


def write_static(work):
    """A static answer of about the size of a GetToken answer."""
    static = os.path.join(work, "htdocs", STATIC_PATH.lstrip("/"))
    os.makedirs(os.path.dirname(static), exist_ok=True)
    with open(static, "wb") as f:
        f.write(plistlib.dumps({"TokenData": os.urandom(560)}, fmt=plistlib.FMT_XML))
    for d in (work, os.path.join(work, "htdocs"), os.path.dirname(static)):
        os.chmod(d, 0o755)
    os.chmod(static, 0o644)


def start(h, children=2, timeout=15):
    """Start h and wait for its fixed pool of children, so every later
    CPU and RSS reading sees the same processes."""
    h.start()
    deadline = time.time() + timeout
    while len(h.children()) < children and time.time() < deadline:
        time.sleep(0.1)
    if len(h.children()) < children:
        h.stop()
        raise RuntimeError("httpd did not start its children\n" + h.log_tail(15))
    return h
