# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""A simulated Apple Watch at its MDM's enrollment profile URL (the watch MDM's
side of watch enrollment): MachineInfo plists, signed as a device signs them
(CMS SignedData with the plist attached, made with python3-cryptography or the
openssl command), and the watch MDM's vhost with GetTokenWatchEnrollment On."""
import os
import plistlib
import sqlite3
import subprocess
import tempfile
import time
import uuid

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from gt_httpd import CHECKIN_PATH

ENROLL_PATH = CHECKIN_PATH          # the recording CGI serves it
PKCS7_CT = "application/pkcs7-signature"
PHONE_HEADER = "GetToken-Watch-Paired-Phone"
ISSUER_HEADER = "GetToken-Watch-Pairing-Issuer"
MISSING_CODE = "com.apple.watch.pairing.token.missing"
# what mod_log_config can see of an admission
ENV_LOG_FORMAT = '"%{GETTOKEN_WATCH_PHONE}e %{GETTOKEN_WATCH_ISSUER}e %{X-Test-Id}i"'
SECURITY_TOKEN_TABLE = "gettoken_watch_security_token"


def machine_info(udid, product="Watch6,1", token=None, **extra):
    d = {"UDID": udid, "SERIAL": "F" + uuid.uuid4().hex[:11].upper(), "PRODUCT": product,
         "VERSION": "21R5320", "OS_VERSION": "10.0", "LANGUAGE": "en"}
    if token is not None:
        d["PAIRING_TOKEN"] = token.encode() if isinstance(token, str) else token
    d.update(extra)
    return d


def plist_bytes(fields, fmt="xml"):
    return plistlib.dumps(fields, fmt=plistlib.FMT_BINARY if fmt == "binary" else plistlib.FMT_XML)


def sign_attached(content, ident):
    """DER CMS SignedData carrying content, by ident (python3-cryptography)."""
    return (pkcs7.PKCS7SignatureBuilder().set_data(content)
            .add_signer(ident.cert, ident.key, hashes.SHA256())
            .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary]))


def sign_attached_openssl(content, ident):
    """The same with `openssl cms -sign -nodetach`."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "mi.plist")
        with open(path, "wb") as f:
            f.write(content)
        return subprocess.run(["openssl", "cms", "-sign", "-nodetach", "-binary", "-md", "sha256",
                               "-outform", "DER", "-signer", ident.cert_path, "-inkey",
                               ident.key_path, "-in", path],
                              check=True, capture_output=True, timeout=30).stdout


def encode(fields, form, signer=None):
    """(body, content type) of a MachineInfo in one of the forms a watch uses:
    cms / cms-openssl (signed, plist attached), xml / binary (bare plist)."""
    if form in ("cms", "cms-openssl"):
        content = plist_bytes(fields)
        sign = sign_attached if form == "cms" else sign_attached_openssl
        return sign(content, signer), PKCS7_CT
    return plist_bytes(fields, form), "application/x-apple-aspen-config"


def new_watch_udid():
    return "00008301-" + uuid.uuid4().hex[:16].upper()


def watch_mdm_vhost(gt, db, trust, db_driver="sqlite3", extra="", env_log=None):
    """The watch MDM's vhost: no GetToken, the gate in front of the recording CGI.
    `trust`: (issuer UUID, file of its certificates / public keys) pairs."""
    lines = ["GetTokenWatchPairingTrust %s %s" % t for t in trust]
    if env_log:
        lines.append("CustomLog %s %s" % (env_log, ENV_LOG_FORMAT))
    lines.append(extra)
    return gt.vhost(gettoken=False, signing_key=None, uuid=None, db=db, db_driver=db_driver,
                    directives="\n".join(lines), location="GetTokenWatchEnrollment On")


def enroll(gt, port, body, content_type=PKCS7_CT, headers=None):
    """One request of the watch to its MDM's enrollment profile URL."""
    with gt.client(port) as c:
        return c.request(body, method="POST", path=ENROLL_PATH, content_type=content_type,
                         headers=headers, keep=False)


def fill_expired(db, n, watches, spread, timeout):
    """n security-token rows, written straight into the database, that expired
    an hour to an hour and `spread` seconds ago, for `watches` watch UDIDs."""
    con = sqlite3.connect(db, timeout=timeout)
    try:
        past = int(time.time()) - 3600
        con.executemany("INSERT INTO %s (security_token, sth, watch_udid, expires_at, used) "
                        "VALUES (?, ?, ?, ?, 0)" % SECURITY_TOKEN_TABLE,
                        (("old-%d" % i, "sth-%d" % i, "OLD-%d" % (i % watches), past - i % spread)
                         for i in range(n)))
        con.commit()
    finally:
        con.close()


def sqlite_rows(db, sql, args=()):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()
