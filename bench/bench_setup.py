#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""bench_setup.py -- what the benchmark needs before httpd starts: the module
and bench/loadgen built, the harness's throwaway PKI with as many device
identities as the run asks for, the SQLite enrollment DBs."""
import json
import os
import shutil
import sqlite3
import subprocess
import time
from dataclasses import asdict, dataclass

from bench_common import REPO, MODULE, LOADGEN_SRC, LOADGEN, log, run
from gt_pki import PKI, create_enrollment_db

# the harness's certificates are valid for 30 days: a cached PKI is rebuilt well before
PKI_MAX_AGE_S = 20 * 86400


# --------------------------------------------------------------------------
# build
# --------------------------------------------------------------------------

def ensure_module(build):
    if os.path.exists(MODULE):
        return True
    if not build:
        return False
    log("mod_gettoken.so missing: autoreconf -fi && ./configure && make -j2")
    try:
        for cmd in (["autoreconf", "-fi"], ["./configure"], ["make", "-j2"]):
            run(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, FileNotFoundError) as e:
        err = getattr(e, "stderr", b"") or b""
        log("module build failed:", e, err.decode(errors="replace")[-2000:])
    return os.path.exists(MODULE)


def ensure_loadgen():
    if (os.path.exists(LOADGEN)
            and os.path.getmtime(LOADGEN) >= os.path.getmtime(LOADGEN_SRC)):
        return
    log("compiling bench/loadgen")
    run(["cc", "-O2", "-Wall", "-pthread", "-o", LOADGEN, LOADGEN_SRC, "-lssl", "-lcrypto"])


# --------------------------------------------------------------------------
# PKI and database
# --------------------------------------------------------------------------

@dataclass
class BenchPki:
    """Paths of the bench PKI's files, and the (UDID, certificate SHA-256)
    row of every device; kept as work/pki/bench.json between runs."""
    devices: int
    made: float
    ca: str
    server_cert: str
    server_key: str
    maid_key: str
    maid_cert: str
    identities: str          # loadgen -i: "UDID cert key" a line
    combined: str            # ab -E wants device 0's certificate and key in one file
    dev0_cert: str
    dev0_key: str
    enrolled: list


def make_pki(work, ndev):
    """The harness PKI (test CA, ECDSA P-256 server certificate, RSA-2048 maid
    key) and ndev device identities (ECDSA P-256) with UDIDs of the modern
    form.  Cached in work/pki; rebuilt when the device count changes."""
    pki_dir = os.path.join(work, "pki")
    manifest = os.path.join(pki_dir, "bench.json")
    cached = _cached_pki(manifest, ndev)
    if cached:
        return cached
    log(f"making PKI: CA, server cert, {ndev} device certs, RSA-2048 maid key")
    shutil.rmtree(pki_dir, ignore_errors=True)
    pki = PKI(pki_dir, device_names=())
    lines, rows = [], []
    for i in range(ndev):
        # UDID in the modern form: 8 hex - 16 hex
        udid = "%08X-%016X" % (0x00008030 + (i >> 24), int.from_bytes(os.urandom(8), "big"))
        dev = pki.issue_client(f"dev{i}")
        lines.append(f"{udid} {dev.cert_path} {dev.key_path}\n")
        rows.append((udid, dev.sha256))
    with open(pki.path("identities.txt"), "w") as f:
        f.writelines(lines)
    dev0 = pki.path("dev0")
    with open(pki.path("dev0-combined.pem"), "wb") as f:
        for part in (dev0 + ".pem", dev0 + ".key"):
            with open(part, "rb") as src:
                f.write(src.read())
    bench = BenchPki(ndev, time.time(), pki.ca_cert_path, pki.server.cert_path,
                     pki.server.key_path, pki.maid_rsa.key_path, pki.maid_rsa.cert_path,
                     pki.path("identities.txt"), pki.path("dev0-combined.pem"),
                     dev0 + ".pem", dev0 + ".key", rows)
    with open(manifest, "w") as f:
        json.dump(asdict(bench), f)
    return bench


def _cached_pki(manifest, ndev):
    try:
        with open(manifest) as f:
            bench = BenchPki(**json.load(f))
    except (OSError, ValueError, TypeError):
        return None
    if bench.devices != ndev or time.time() - bench.made > PKI_MAX_AGE_S:
        return None
    bench.enrolled = [tuple(r) for r in bench.enrolled]
    return bench


def make_db(path, pki, total, organizations=False):
    """SQLite DB with every bench device enrolled, plus filler rows up to total;
    with organizations, every enrolled row also in gettoken_device_organization."""
    if os.path.exists(path):
        os.unlink(path)
    t0 = time.time()
    create_enrollment_db(path, pki.enrolled)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("BEGIN")
    filler = max(0, total - len(pki.enrolled))
    if filler:
        # distinct UDIDs of the same shape, random certificate hashes
        db.execute("""WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?)
                      INSERT INTO cert_auth_associations(id, sha256)
                      SELECT printf('%08X-%016X', 4026531840 + x, x * 2654435761),
                             lower(hex(randomblob(32))) FROM n""", (filler,))
    if organizations:
        db.execute("INSERT INTO gettoken_device_organization (enrollment_id, organization) "
                   "SELECT id, 'bench-org' FROM cert_auth_associations")
    db.commit()
    n = db.execute("SELECT count(*) FROM cert_auth_associations").fetchone()[0]
    db.execute("ANALYZE")
    db.commit()
    db.close()
    log(f"DB {os.path.basename(path)}: {n} enrolled devices ({time.time() - t0:.1f} s)")
    return n
