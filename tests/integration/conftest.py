# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""Fixtures for the real-httpd integration tests.

  gt          session Env: PKI, enrollment DB, factory for httpd instances
  server      module-scoped httpd: one vhost, GetToken On at /mdm/checkin, RSA maid key
  start_httpd function-scoped factory: start_httpd(vhosts=None, **Httpd kwargs) -> started Httpd
  client      function-scoped factory: client(port_or_httpd, device_name|None) -> Client (closed after)
  declare_log function-scoped: declare_log("GT01204", ...) from within a test

Every test watches the error logs: after it, any line of the module at
LogLevel warn or worse whose message id the test did not declare (a refusal
logged at info as a repeat of one logged just before counts too: which test
sees it at warn depends on the order and pace of the tests), and any crash,
fails it.  A test declares the ids it provokes with
@pytest.mark.gt_log("GT01204", ...) (or declare_log() for ids that depend on
a parameter); a server started with warnings by design says so itself
(Httpd(expect_log=...)).  GT_LOG_REPORT=<file> lists, instead of failing,
each test's undeclared lines (one JSON object per test) in that file.

Set GT_KEEP=1 to keep the work directory (configs, logs, records) for inspection.
"""
import json
import os
import sys

import pytest

# The harness (httpd, PKI, DBs, clients) is shared with bench/; its modules
# keep their gt_* names so test files import them as plain modules.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))

from gt_env import Env  # noqa: E402
from gt_httpd import GT_ID_RX, Httpd, unexpected_log_lines  # noqa: E402

# every Env of the session: their servers' logs are watched
ENVS = []


def pytest_configure(config):
    config.addinivalue_line("markers", "gt_log(*ids): message ids of the module's "
                                       "warn/error lines the test provokes")


@pytest.fixture(scope="session")
def gt():
    env = Env()
    ENVS.append(env)
    yield env
    env.cleanup()


@pytest.fixture
def declare_log(request):
    """declare_log(*ids): more ids this test expects (per parameter, say)."""
    return request.node.gt_log_declared.update


@pytest.fixture(autouse=True)
def gt_log_watch(request):
    """Fails the test on an undeclared warn/error line of the module or a crash."""
    declared = set()
    for mark in request.node.iter_markers("gt_log"):
        declared.update(mark.args)
    request.node.gt_log_declared = declared
    yield
    servers = [h for env in ENVS for h in env.servers]
    lines = unexpected_log_lines(servers, declared)
    report = os.environ.get("GT_LOG_REPORT")
    if report:
        if lines:
            with open(report, "a") as f:
                f.write(json.dumps({"test": request.node.nodeid, "lines": lines}) + "\n")
        return
    if lines:
        ids = sorted({m.group(1) for l in lines for m in [GT_ID_RX.search(l)] if m})
        pytest.fail("error-log lines the test did not declare (ids %s; declare them "
                    "with @pytest.mark.gt_log):\n%s" % (", ".join(ids) or "none",
                                                        "\n".join(lines[:20])),
                    pytrace=False)


@pytest.fixture(scope="module")
def server(gt):
    yield from gt.served()


@pytest.fixture
def start_httpd(gt):
    started = []

    def _start(vhosts=None, **kw):
        h = gt.httpd(vhosts, **kw)
        started.append(h)
        return h.start()

    yield _start
    for h in started:
        h.stop()


@pytest.fixture
def client(gt):
    clients = []

    def _client(port, device=None):
        if isinstance(port, Httpd):
            port = port.port
        c = gt.client(port, device)
        clients.append(c)
        return c

    yield _client
    for c in clients:
        c.close()
