# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""Prepared statements survive a schema change on the live database: the
next request prepares them again on its pooled connection, no restart of
httpd, for the enrollment binding and for the pairing replay store."""
import sqlite3
import time
import uuid

import jwt
import pytest

from gt_client import gettoken_fields, token_from_response
from pairing_helpers import es256, new_watch_udid, sth_of, verify_request, watch_vhost

# one process, several threads: several pooled connections, each prepared
MPM = "StartServers 1\nServerLimit 1\nThreadsPerChild 8\nMaxRequestWorkers 8"


def migrate(db, name):
    """What any migration does: a new table, while httpd runs."""
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE %s (id INTEGER PRIMARY KEY, note TEXT)" % name)
    con.commit()
    con.close()


def checkin(gt, h, device="dev_a"):
    with gt.client(h.vhosts[0].port, device) as c:
        return c.checkin(gettoken_fields(udid=gt.devices[device].enrollment_id), keep=False)


@pytest.mark.gt_log("GT01303")
def test_binding_survives_schema_change(gt):
    db = gt.make_db("migrated", [(gt.devices["dev_a"].enrollment_id,
                                  gt.devices["dev_a"].sha256)])
    h = gt.httpd([gt.vhost(db=db)], extra_global=MPM).start()
    try:
        for _ in range(8):          # warm several pooled connections
            assert checkin(gt, h).status == 200
        for n in range(2):
            migrate(db, "migration_%d" % n)
            mark = h.log_mark()
            statuses = [checkin(gt, h).status for _ in range(12)]
            assert statuses == [200] * 12, (statuses, h.log_since(mark)[-2000:])
            assert "prepared again" in h.log_since(mark)
            assert "(503)" not in h.log_since(mark)
        # not bound stays 403: recovery is not a pass
        assert checkin(gt, h, "dev_b").status == 403
    finally:
        h.stop()


@pytest.mark.gt_log("GT01904")
def test_replay_store_survives_schema_change(gt):
    issuer = str(uuid.uuid4())
    db = gt.make_db("watch-migrated", [])
    h = gt.httpd([watch_vhost(gt, [(issuer, gt.pki.maid_ec.cert_path)], db)],
                 extra_global=MPM).start()

    def token():
        now = int(time.time())
        watch = new_watch_udid()
        claims = {"iss": issuer, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4()),
                  "service_type": "com.apple.watch.pairing",
                  "phone_udid": gt.devices["dev_a"].enrollment_id,
                  "watch_udid": watch, "sth": sth_of("sec")}
        return es256(claims, gt.pki.maid_ec.key), watch

    try:
        for _ in range(8):
            t, w = token()
            assert verify_request(gt, h.port, t, w, "sec").status == 200
        migrate(db, "migration_w")
        mark = h.log_mark()
        used = []
        for _ in range(12):
            t, w = token()
            used.append((t, w))
            r = verify_request(gt, h.port, t, w, "sec")
            assert r.status == 200, (r.status, h.log_since(mark)[-2000:])
        assert "prepared again" in h.log_since(mark)
        # the store still refuses a second use
        migrate(db, "migration_w2")
        t, w = used[0]
        assert verify_request(gt, h.port, t, w, "sec").status == 403
    finally:
        h.stop()
