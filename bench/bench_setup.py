#!/usr/bin/python3
"""bench_setup.py -- what the benchmark needs before httpd starts: the module
and bench/loadgen built, a throwaway PKI, the SQLite enrollment DBs."""
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time

from bench_common import REPO, MODULE, SCHEMA, LOADGEN_SRC, LOADGEN, log, run

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

def make_pki(work, ndev):
    """Test CA, ECDSA P-256 server cert, ndev device certs, RSA-2048 maid key.
    Cached in work/pki; rebuilt when the device count changes."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
    import datetime

    pki = os.path.join(work, "pki")
    stamp = os.path.join(pki, "stamp")
    if os.path.exists(stamp) and open(stamp).read().strip() == str(ndev):
        return pki
    log(f"making PKI: CA, server cert, {ndev} device certs, RSA-2048 maid key")
    shutil.rmtree(pki, ignore_errors=True)
    os.makedirs(os.path.join(pki, "dev"))
    now = datetime.datetime.now(datetime.timezone.utc)
    nb, na = now - datetime.timedelta(days=1), now + datetime.timedelta(days=3650)

    def pem_key(k):
        return k.private_bytes(serialization.Encoding.PEM,
                               serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())

    def cert(subject, pub, issuer, ikey, ca=False, eku=None, san=None):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
             .public_key(pub).serial_number(x509.random_serial_number())
             .not_valid_before(nb).not_valid_after(na)
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if eku:
            b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return b.sign(ikey, hashes.SHA256())

    name = lambda cn: x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert(name("gettoken bench CA"), ca_key.public_key(), name("gettoken bench CA"),
              ca_key, ca=True)
    open(os.path.join(pki, "ca.pem"), "wb").write(ca.public_bytes(serialization.Encoding.PEM))

    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv = cert(name("127.0.0.1"), srv_key.public_key(), ca.subject, ca_key,
               eku=[ExtendedKeyUsageOID.SERVER_AUTH],
               san=[x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1")),
                    x509.DNSName("localhost")])
    open(os.path.join(pki, "server.pem"), "wb").write(srv.public_bytes(serialization.Encoding.PEM))
    open(os.path.join(pki, "server.key"), "wb").write(pem_key(srv_key))

    maid = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    open(os.path.join(pki, "maid.key"), "wb").write(pem_key(maid))
    open(os.path.join(pki, "maid.pub"), "wb").write(maid.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    lines, rows = [], []
    for i in range(ndev):
        # UDID in the modern form: 8 hex - 16 hex
        udid = "%08X-%016X" % (0x00008030 + (i >> 24), int.from_bytes(os.urandom(8), "big"))
        k = ec.generate_private_key(ec.SECP256R1())
        c = cert(name(udid), k.public_key(), ca.subject, ca_key,
                 eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
        der = c.public_bytes(serialization.Encoding.DER)
        cp = os.path.join(pki, "dev", f"{i}.pem")
        kp = os.path.join(pki, "dev", f"{i}.key")
        open(cp, "wb").write(c.public_bytes(serialization.Encoding.PEM))
        open(kp, "wb").write(pem_key(k))
        lines.append(f"{udid} {cp} {kp}\n")
        rows.append((udid, hashlib.sha256(der).hexdigest()))
    open(os.path.join(pki, "identities.txt"), "w").writelines(lines)
    json.dump(rows, open(os.path.join(pki, "enrolled.json"), "w"))
    # ab -E wants certificate and key in one file
    with open(os.path.join(pki, "dev0-combined.pem"), "wb") as f:
        f.write(open(os.path.join(pki, "dev", "0.pem"), "rb").read())
        f.write(open(os.path.join(pki, "dev", "0.key"), "rb").read())
    open(stamp, "w").write(str(ndev))
    return pki


def make_db(path, pki, total, organizations=False):
    """SQLite DB with every bench device enrolled, plus filler rows up to total;
    with organizations, every enrolled row also in gettoken_device_organization."""
    rows = [tuple(r) for r in json.load(open(os.path.join(pki, "enrolled.json")))]
    if os.path.exists(path):
        os.unlink(path)
    t0 = time.time()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    if os.path.exists(SCHEMA):
        db.executescript(open(SCHEMA).read())
    else:
        db.execute("CREATE TABLE IF NOT EXISTS cert_auth_associations "
                   "(id TEXT NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY(id, sha256))")
    db.execute("BEGIN")
    db.executemany("INSERT INTO cert_auth_associations(id, sha256) VALUES (?, ?)", rows)
    filler = max(0, total - len(rows))
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
    os.chmod(path, 0o644)
    log(f"DB {os.path.basename(path)}: {n} enrolled devices ({time.time() - t0:.1f} s)")
    return n
