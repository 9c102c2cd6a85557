# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""Fixtures for the real-httpd integration tests.

  gt          session Env: PKI, enrollment DB, factory for httpd instances
  server      module-scoped httpd: one vhost, GetToken On at /mdm/checkin, RSA maid key
  start_httpd function-scoped factory: start_httpd(vhosts=None, **Httpd kwargs) -> started Httpd
  client      function-scoped factory: client(port_or_httpd, device_name|None) -> Client (closed after)

Set GT_KEEP=1 to keep the work directory (configs, logs, records) for inspection.
"""
import os
import sys

import pytest

# The harness (httpd, PKI, DBs, clients) is shared with bench/; its modules
# keep their gt_* names so test files import them as plain modules.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))

from gt_env import Env  # noqa: E402
from gt_httpd import Httpd  # noqa: E402


@pytest.fixture(scope="session")
def gt():
    env = Env()
    yield env
    env.cleanup()


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
