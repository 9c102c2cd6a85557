# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""Helpers for the com.apple.watch.pairing tests: a watch MDM vhost, issue and
verify requests, token surgery."""
import base64
import hashlib
import json
import os
import plistlib
import uuid
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization

from gt_client import gettoken_fields, token_from_response
from gt_httpd import Httpd, VHost

PAIRING = "com.apple.watch.pairing"
VERIFY_PATH = "/watch/verify"
VERIFY_LOCATION = """<Location %s>
    SetHandler gettoken-watch-verify
</Location>""" % VERIFY_PATH


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# P-256's group order: (r, s) and (r, n - s) are both valid ECDSA signatures
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _with_s(token, pick):
    head, payload, sig = token.split(".")
    if json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["alg"] != "ES256":
        return token
    raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    s = int.from_bytes(raw[32:], "big")
    s = pick(s, P256_ORDER - s)
    return ".".join([head, payload, b64url(raw[:32] + s.to_bytes(32, "big"))])


def low_s(token):
    """An ES256 token with the low-s form of its signature (s <= n/2), the only
    one a pairing-token verifier accepts; other tokens unchanged."""
    return _with_s(token, min)


def high_s(token):
    """The high-s twin of an ES256 token's signature (refused)."""
    return _with_s(token, max)


def es256(claims, key, **kw):
    """python3-jwt's ES256 token, in low-s form."""
    import jwt
    return low_s(jwt.encode(claims, key, algorithm="ES256", **kw))


def sth_of(secret):
    return b64url(hashlib.sha256(secret.encode()).digest())


def new_watch_udid():
    return "00008006-" + uuid.uuid4().hex[:16].upper()


def public_key_pem_file(gt, ident, name):
    path = gt.pki.path(name)
    with open(path, "wb") as f:
        f.write(ident.public_key.public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))
    os.chmod(path, 0o644)
    return path


def watch_vhost(gt, trust, db, db_driver="sqlite3"):
    """A watch MDM's vhost: no GetToken, only the verify location.  `trust`:
    (issuer UUID, file of its certificates / public keys) pairs."""
    trust = "\n".join("GetTokenWatchPairingTrust %s %s" % t for t in trust)
    return gt.vhost(gettoken=False, signing_key=None, uuid=None, db=db, db_driver=db_driver,
                    directives=trust + "\n" + VERIFY_LOCATION)


def verify_request(gt, port, token, watch, secret, as_data=True, fields=None, body=None):
    if body is None:
        if fields is None:
            fields = {"TokenData": token.encode() if as_data else token,
                      "WatchUDID": watch, "SecurityToken": secret}
        body = plistlib.dumps(fields)
    with gt.client(port) as c:
        return c.request(body, method="POST", path=VERIFY_PATH, content_type="application/xml",
                         keep=False)


def issue_request(gt, port, device="dev_a", phone=None, watch=None, secret=None, params=None,
                  **extra):
    dev = gt.devices[device]
    if params is None:
        params = {"SecurityToken": secret, "PhoneUDID": phone or dev.enrollment_id,
                  "WatchUDID": watch}
        params = {k: v for k, v in params.items() if v is not None}
    fields = gettoken_fields(PAIRING, udid=dev.enrollment_id, params=params, **extra)
    with gt.client(port, device) as c:
        return c.checkin(fields, keep=False)


@dataclass
class Pairing:
    h: Httpd
    phone: VHost          # pairing key maid_ec (ES256), lifetime 300
    phone_rsa: VHost      # no GetTokenWatchPairingKey: the signing key maid_rsa (RS256)
    phone_short: VHost    # maid_ec, GetTokenWatchPairingLifetime 1
    watch: VHost          # trusts phone and phone_short with maid_ec (certificate),
                          # phone_rsa with maid_rsa (public key PEM)
    short: tuple          # (token, watch udid, secret) issued at start-up with lifetime 1

    def issue(self, gt, vhost=None, device="dev_a", watch=None, secret=None):
        watch = watch or new_watch_udid()
        secret = secret or "sec-" + uuid.uuid4().hex
        r = issue_request(gt, (vhost or self.phone).port, device, watch=watch, secret=secret)
        return token_from_response(r), watch, secret

    def verify(self, gt, token, watch, secret, **kw):
        return verify_request(gt, self.watch.port, token, watch, secret, **kw)


def resign_parts(token, claims=None, header=None, sig=None):
    """The token with its claims / header / signature replaced, not re-signed."""
    h, c, s = token.split(".")
    if header is not None:
        h = b64url(json.dumps(header, separators=(",", ":")).encode())
    if claims is not None:
        c = b64url(json.dumps(claims, separators=(",", ":")).encode())
    if sig is not None:
        s = b64url(sig)
    return "%s.%s.%s" % (h, c, s)
