#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""bench_pg.py -- the PostgreSQL enrollment DB of `bench/run --postgresql`:
a throwaway cluster (the harness's gt_pg.PgServer: initdb in the work
directory, 127.0.0.1 on a free port, trust on loopback) holding the bench
devices and filler rows up to `total`, loaded with COPY and generate_series."""
import os
import time

from bench_common import log
from gt_pg import PgServer

DB = "mdm"


def make_pg(work, pki, total):
    """A started PgServer with `total` enrolled devices; (server, DBDParams, rows)."""
    t0 = time.time()
    pg = PgServer(work, name="pg-bench").start()
    try:
        pg.create_db(DB)
        rows = os.path.join(pg.dir, "enrolled.tsv")
        with open(rows, "w") as f:
            f.writelines(f"{udid}\t{sha}\n" for udid, sha in pki.enrolled)
        os.chmod(rows, 0o644)
        # the server (its superuser) reads the file itself: one COPY
        pg.sql(DB, f"COPY cert_auth_associations (id, sha256) FROM '{rows}'")
        filler = max(0, total - len(pki.enrolled))
        if filler:
            # distinct UDIDs of the same shape as the devices', random hashes
            pg.sql(DB, "INSERT INTO cert_auth_associations (id, sha256) "
                       "SELECT upper(lpad(to_hex(4026531840 + x), 8, '0') || '-' || "
                       "lpad(to_hex(x * 2654435761), 16, '0')), "
                       "encode(sha256(x::text::bytea), 'hex') "
                       f"FROM generate_series(1::bigint, {filler}::bigint) AS x")
        pg.sql(DB, "VACUUM ANALYZE cert_auth_associations")
        n = int(pg.sql(DB, "SELECT count(*) FROM cert_auth_associations").strip())
    except Exception:
        pg.cleanup()
        raise
    log(f"PostgreSQL {pg.bindir.split('/')[-2]} on 127.0.0.1:{pg.port}: "
        f"{n} enrolled devices ({time.time() - t0:.1f} s)")
    return pg, pg.dbd_params(DB), n
