# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""Device identities as a device or a proxy presents them without mTLS.

Mdm-Signature: what an Apple device sends when its MDM payload has SignMessage:
base64 of a CMS SignedData, detached, SHA-256, signer certificate included,
over the exact bytes of the body.  Made with python3-cryptography's PKCS#7
builder or the openssl command.

Proxy headers: RFC 9440 Client-Cert (":base64 DER:"), nginx's
$ssl_client_escaped_cert (URL-escaped PEM), HAProxy's %[ssl_c_der,base64].
"""
import base64
import os
import subprocess
import tempfile
import urllib.parse

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

DEVICE_OPTIONS = (pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary)


def mdm_signature_der(body, *signers, options=DEVICE_OPTIONS, hash_alg=None):
    """DER CMS over body by each Identity in signers (a device has one)."""
    b = pkcs7.PKCS7SignatureBuilder().set_data(body)
    for ident in signers:
        b = b.add_signer(ident.cert, ident.key, hash_alg or hashes.SHA256())
    return b.sign(serialization.Encoding.DER, list(options))


def mdm_signature(body, *signers, **kw):
    return base64.b64encode(mdm_signature_der(body, *signers, **kw)).decode()


def mdm_signature_openssl(body, ident):
    """The same with `openssl cms -sign` (detached unless -nodetach)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "body")
        with open(path, "wb") as f:
            f.write(body)
        der = subprocess.run(["openssl", "cms", "-sign", "-binary", "-md", "sha256",
                              "-outform", "DER", "-signer", ident.cert_path,
                              "-inkey", ident.key_path, "-in", path],
                             check=True, capture_output=True, timeout=30).stdout
    return base64.b64encode(der).decode()


def certs_only(*idents):
    """A SignedData with certificates and no signer (PKCS#7 'degenerate')."""
    der = pkcs7.serialize_certificates([i.cert for i in idents], serialization.Encoding.DER)
    return base64.b64encode(der).decode()


def cert_der(ident):
    return ident.cert.public_bytes(serialization.Encoding.DER)


def client_cert_rfc9440(ident):
    return ":" + base64.b64encode(cert_der(ident)).decode() + ":"


def client_cert_nginx(ident):
    """$ssl_client_escaped_cert: the PEM, URL-escaped."""
    pem = ident.cert.public_bytes(serialization.Encoding.PEM).decode()
    return urllib.parse.quote(pem, safe="")


def client_cert_haproxy(ident):
    """%[ssl_c_der,base64]"""
    return base64.b64encode(cert_der(ident)).decode()
