# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""The mod_ssl identity certificate must be within its validity period: an
enrolled device whose certificate expired (or is not valid yet) gets no
token.  mod_ssl itself refuses such a certificate in the handshake even
with optional_no_ca (only CA errors are waived); the module's own check
(401) stands behind it should mod_ssl ever let one through."""
import datetime
import sqlite3
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from gt_client import gettoken_fields
from gt_pki import Identity, _name, _write, cert_pem, cert_sha256, key_pem, new_udid


def _device(gt, name, not_before, not_after):
    pki = gt.pki
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(pki.ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(pki.ca_key, hashes.SHA256()))
    ident = Identity(name, key, cert, _write(pki.path(name + ".key"), key_pem(key), 0o600),
                     _write(pki.path(name + ".pem"), cert_pem(cert), 0o644),
                     sha256=cert_sha256(cert), enrollment_id=new_udid())
    with sqlite3.connect(gt.db) as db:
        db.execute("INSERT INTO cert_auth_associations (id, sha256) VALUES (?, ?)",
                   (ident.enrollment_id, ident.sha256))
    return ident


NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


@pytest.mark.parametrize("case,nb,na,status", [
    ("valid", NOW - DAY, NOW + DAY, 200),
    ("expired", NOW - 3 * DAY, NOW - DAY, 401),
    ("not-yet-valid", NOW + DAY, NOW + 3 * DAY, 401),
])
def test_tls_identity_validity(server, client, gt, case, nb, na, status):
    dev = _device(gt, "dev_validity_" + case.replace("-", "_"), nb, na)
    mark = server.log_mark()
    try:
        r = client(server, dev).checkin(gettoken_fields(udid=dev.enrollment_id))
    except (ssl.SSLError, ConnectionError) as e:
        assert status == 401, "a valid certificate was refused in the handshake: %r" % e
        assert server.wait_log(mark, r"certificate (has )?expired|not yet valid|not valid yet"), \
            server.log_since(mark)
        return
    assert r.status == status, (r.status, r.body[:200])
    if status == 401:
        assert b"TokenData" not in r.body
        assert server.wait_log(mark, r"valid yet|expired"), server.log_since(mark)
