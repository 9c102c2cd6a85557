# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""Device-side client: check-in plists over TLS with a client certificate, and
JWT checks for the tokens mod_gettoken hands back."""
import base64
import http.client
import json
import os
import plistlib
import re
import ssl
import time
import uuid
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

CHECKIN_CT = "application/x-apple-aspen-mdm-checkin"
UUID4_RX = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.I)


@dataclass
class Response:
    status: int
    headers: object          # http.client.HTTPMessage (case-insensitive get)
    body: bytes
    test_id: str
    sent_at: float = None    # time.time() when the request went out

    def header(self, name):
        return self.headers.get(name)


def checkin_body(fields, fmt="xml"):
    return plistlib.dumps(fields, fmt=plistlib.FMT_BINARY if fmt == "binary" else plistlib.FMT_XML)


def gettoken_fields(service="com.apple.maid", udid=None, enrollment_id=None, params=None, **extra):
    d = {"MessageType": "GetToken", "TokenServiceType": service}
    if udid is not None:
        d["UDID"] = udid
    if enrollment_id is not None:
        d["EnrollmentID"] = enrollment_id
    if params is not None:
        d["TokenParameters"] = params
    d.update(extra)
    return d


class Client:
    """TLS client to one port; `identity` is a gt_pki.Identity or None (no client cert).

    A Client keeps one keep-alive connection; call close() when done (or use `with`)."""

    def __init__(self, port, ca_file, identity=None, timeout=None):
        self.port = port
        # GT_CLIENT_TIMEOUT: longer for httpd under valgrind (tests/run --valgrind)
        timeout = timeout or float(os.environ.get("GT_CLIENT_TIMEOUT", "20"))
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.load_verify_locations(ca_file)     # the test CA issued the server cert
        if identity is not None:
            self.ctx.load_cert_chain(identity.cert_path, identity.key_path)
        self.timeout = timeout
        self.conn = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, body=b"", method="PUT", path="/mdm/checkin", headers=None,
                content_type=CHECKIN_CT, chunked=False, keep=True):
        test_id = uuid.uuid4().hex
        h = {"User-Agent": "MDM/1.0", "X-Test-Id": test_id}
        if content_type:
            h["Content-Type"] = content_type
        h.update(headers or {})
        for attempt in (0, 1):
            sent_at = time.time()
            if self.conn is None:
                self.conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx,
                                                        timeout=self.timeout)
            try:
                if chunked:
                    def gen(b=body):
                        for i in range(0, len(b), 1000):
                            yield b[i:i + 1000]
                    self.conn.request(method, path, body=gen(), headers=h, encode_chunked=True)
                else:
                    self.conn.request(method, path, body=body if method not in ("GET", "HEAD") or body else None,
                                      headers=h)
                r = self.conn.getresponse()
                data = r.read()
                resp = Response(r.status, r.headers, data, test_id, sent_at)
                if not keep or r.will_close:
                    self.close()
                return resp
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # a kept-alive connection the server had closed: retry once on a new one
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def checkin(self, fields, fmt="xml", **kw):
        return self.request(checkin_body(fields, fmt), **kw)


# --- token checks ---------------------------------------------------------
def b64url_decode(seg):
    assert "=" not in seg, "JWS segments are unpadded base64url"
    assert re.fullmatch(r"[A-Za-z0-9_-]*", seg), "not base64url: %r" % seg
    return base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))


# token -> when the request that got it was sent: iat is checked against the
# time between sending and checking, not against a fixed slack that a slow
# run (valgrind, a loaded machine) would exceed
_SENT_AT = {}


def token_from_response(resp):
    """The TokenData string of a 200 GetToken answer (asserting the answer's shape)."""
    assert resp.status == 200, "status %d: %r" % (resp.status, resp.body[:300])
    ct = resp.header("Content-Type") or ""
    assert ct.split(";")[0].strip() == "application/xml", ct
    assert resp.body.lstrip().startswith(b"<?xml"), resp.body[:100]
    doc = plistlib.loads(resp.body)
    assert isinstance(doc, dict) and list(doc) == ["TokenData"], doc
    assert isinstance(doc["TokenData"], bytes), type(doc["TokenData"])
    token = doc["TokenData"].decode("utf-8")
    if getattr(resp, "sent_at", None) is not None:
        _SENT_AT[token] = resp.sent_at
    return token


def alg_for(public_key):
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "ES256"
    raise ValueError(public_key)


def decode_unverified(token):
    parts = token.split(".")
    assert len(parts) == 3, "not a compact JWS: %r" % token
    return json.loads(b64url_decode(parts[0])), json.loads(b64url_decode(parts[1])), b64url_decode(parts[2])


def verify_maid_token(token, public_key, server_uuid, now, slack=5):
    """Assert every property of a com.apple.maid token that an MDM relies on
    (header, signature, exactly the four claims and their values); return its claims."""
    alg = alg_for(public_key)
    header, claims, sig = decode_unverified(token)
    assert header == {"alg": alg, "typ": "JWT"}, header
    if alg == "ES256":
        assert len(sig) == 64, "ES256 signatures are raw R||S (64 bytes), got %d" % len(sig)
    verified = jwt.decode(token, public_key, algorithms=[alg],
                          options={"verify_aud": False, "verify_exp": False, "verify_iat": False})
    assert verified == claims
    assert set(claims) == {"iss", "iat", "jti", "service_type"}, claims
    assert claims["iss"] == server_uuid
    assert isinstance(claims["iat"], int) and not isinstance(claims["iat"], bool), claims["iat"]
    sent = _SENT_AT.get(token)
    if sent is not None:        # issued after the request went out, before now
        assert int(sent) - 1 <= claims["iat"] <= now + 1, (claims["iat"], sent, now)
    else:
        assert abs(claims["iat"] - now) <= slack, (claims["iat"], now)
    assert isinstance(claims["jti"], str) and UUID4_RX.match(claims["jti"]), claims["jti"]
    assert claims["service_type"] == "com.apple.maid"
    return claims


def signature_valid(token, public_key):
    try:
        jwt.decode(token, public_key, algorithms=[alg_for(public_key)],
                   options={"verify_aud": False, "verify_exp": False, "verify_iat": False})
        return True
    except jwt.InvalidTokenError:
        return False
