# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""Where the module meets httpd, hardened:

  - directory-scope directives only in <Directory>/<Location>, never .htaccess
    (a .htaccess one used to reach a vhost that skipped the start-up checks
    and stop the child);
  - GetTokenTrustedProxy: a `header NAME` identity counts only from a listed
    TCP peer, and `header` without it stops start-up;
  - GETTOKEN_* access-log variables only from a validated message, so a log
    line stays short whatever was sent;
  - com.apple.watch.pairing only for a phone's device channel.
"""
import os
import re
import time

import jwt
import pytest

from gt_client import (UUID4_RX, checkin_body, decode_unverified, gettoken_fields,
                       token_from_response, verify_maid_token)
from gt_httpd import assert_refused
from gt_pki import REPO
from gt_sign import client_cert_rfc9440

PAIRING = "com.apple.watch.pairing"
# every part declares its directives next to its functions
DIRECTIVE_SOURCES = [os.path.join(REPO, "mod_gettoken", f)
                     for f in sorted(os.listdir(os.path.join(REPO, "mod_gettoken")))
                     if f.endswith((".c", ".h"))]
REFERENCE_CONF = os.path.join(REPO, "conf", "examples", "gettoken-vhost.conf")


def running(h, *more):
    """Fixture body: start h, yield (h, *more), stop h."""
    h.start()
    # the parent's start-up notice names the work directory ("gettoken-test-"):
    # let it land before a test counts the log lines written after its mark
    assert h.wait_log(0, r"AH00094", timeout=10), h.log_tail()
    try:
        yield (h,) + more
    finally:
        h.stop()


def assert_serves(gt, h, vhost):
    """A good GetToken right now gets a verified token: the server still serves."""
    dev = gt.devices["dev_a"]
    with gt.client(vhost.port, "dev_a") as c:
        r = c.checkin(gettoken_fields(udid=dev.enrollment_id))
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key, vhost.uuid, time.time())


# --- directive scopes ------------------------------------------------------------
def directory_scope_directives():
    """{name: example arguments}: every directive of the module's table that is
    allowed anywhere but at server / virtual host level, with the arguments
    the reference configuration shows it with."""
    table = ""
    for path in DIRECTIVE_SOURCES:
        with open(path) as f:
            table += f.read().replace("\\\n", "\n")
    with open(REFERENCE_CONF) as f:
        reference = f.read()
    found = {}
    for m in re.finditer(r'AP_INIT_\w+\(\s*"(\w+)"\s*,[^,]*,[^,]*,([^,]*),', table):
        name, scope = m.group(1), m.group(2)
        if scope.strip() == "RSRC_CONF":      # server / virtual host only
            continue
        use = re.search(r"^\s*%s\s+(.+)$" % name, reference, re.M)
        assert use, "%s is not shown in use in conf/examples/gettoken-vhost.conf" % name
        found[name] = use.group(1).strip()
    return found


def test_directory_scope_directives_found():
    # guards the parsing above: GetToken is the first of them
    assert directory_scope_directives().get("GetToken") == "On"


@pytest.fixture(scope="module")
def htaccess_server(gt):
    """One vhost with GetToken On (it passed the start-up checks) and one
    without any GetToken directive whose /ht/ directory allows every override."""
    htdir = gt.readable_dir("htaccess-dir", {"file.txt": "static\n"})
    on = gt.vhost()
    plain = gt.vhost(gettoken=False, directives="Alias /ht %s\n<Directory %s>\n"
                     "    AllowOverride All\n</Directory>" % (htdir, htdir))
    yield from running(gt.httpd([on, plain]), on, plain, htdir)


@pytest.mark.parametrize("directive", sorted(directory_scope_directives()))
def test_directory_directive_refused_in_htaccess(gt, htaccess_server, directive):
    h, on, plain, htdir = htaccess_server
    args = directory_scope_directives()[directive]
    htaccess = os.path.join(htdir, ".htaccess")
    with open(htaccess, "w") as f:
        f.write("%s %s\n" % (directive, args))
    os.chmod(htaccess, 0o644)
    dev = gt.devices["dev_a"]
    mark = h.log_mark()
    try:
        for fmt in ("xml", "binary"):
            with gt.client(plain.port, "dev_a") as c:
                r = c.checkin(gettoken_fields(udid=dev.enrollment_id), fmt=fmt, path="/ht/file.txt")
            assert r.status == 500, (r.status, r.body[:200], h.log_tail(5))
        lines = h.wait_log(mark, r"\.htaccess.*%s|%s.*not allowed here" % (directive, directive))
        assert lines, h.log_since(mark)
    finally:
        os.unlink(htaccess)
    time.sleep(0.5)     # a dead child is noticed by the parent's maintenance
    assert h.crash_lines(mark) == [], h.log_since(mark)
    assert_serves(gt, h, on)


def test_gettoken_on_in_location_still_works(gt, htaccess_server):
    """The same directive where it belongs (<Location>) keeps answering."""
    h, on, plain, htdir = htaccess_server
    assert_serves(gt, h, on)


# --- GetTokenTrustedProxy ----------------------------------------------------------
PROXY_VHOSTS = {
    "other_peer": "GetTokenIdentity ssl header Client-Cert\nGetTokenTrustedProxy 192.0.2.7 10.0.0.0/8",
    "loopback": "GetTokenIdentity ssl header Client-Cert\nGetTokenTrustedProxy 192.0.2.7 127.0.0.1",
    "loopback_net": "GetTokenIdentity ssl header Client-Cert\nGetTokenTrustedProxy 127.0.0.0/8",
    "header_first": "GetTokenIdentity header Client-Cert ssl\nGetTokenTrustedProxy 192.0.2.0/24",
}


@pytest.fixture(scope="module")
def proxies(gt):
    vhosts = {name: gt.vhost(directives=d) for name, d in PROXY_VHOSTS.items()}
    yield from running(gt.httpd(list(vhosts.values()), extra_global="LimitRequestFieldSize 131072"),
                       vhosts)


def gettoken_of(gt, device):
    return checkin_body(gettoken_fields(udid=gt.devices[device].enrollment_id))


@pytest.mark.gt_log("GT01204")
def test_header_from_untrusted_peer_is_ignored_401(gt, proxies, client):
    """No client certificate, an enrolled device's Client-Cert, from a peer
    that is not a GetTokenTrustedProxy: as if the header were absent."""
    h, v = proxies
    mark = h.log_mark()
    r = client(v["other_peer"].port).request(
        gettoken_of(gt, "dev_a"), headers={"Client-Cert": client_cert_rfc9440(gt.devices["dev_a"])})
    line = assert_refused(h, r, 401, r"no device identity", mark)
    assert re.search(r"Client-Cert header was ignored.*127\.0\.0\.1.*GetTokenTrustedProxy", line), line


@pytest.mark.parametrize("name", ["loopback", "loopback_net"])
def test_header_from_trusted_peer_200(gt, proxies, client, name):
    h, v = proxies
    r = client(v[name].port).request(
        gettoken_of(gt, "dev_a"), headers={"Client-Cert": client_cert_rfc9440(gt.devices["dev_a"])})
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key, v[name].uuid, time.time())


def test_untrusted_header_does_not_shadow_the_next_source(gt, proxies, client):
    """header first, then ssl: another device's Client-Cert from an untrusted
    peer is skipped and the TLS client certificate decides."""
    h, v = proxies
    r = client(v["header_first"].port, "dev_a").request(
        gettoken_of(gt, "dev_a"), headers={"Client-Cert": client_cert_rfc9440(gt.devices["dev_b"])})
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key, v["header_first"].uuid,
                      time.time())


@pytest.mark.parametrize("identity", ["header Client-Cert", "ssl header X-SSL-Client-Cert"])
@pytest.mark.gt_log("GT01202")
def test_header_without_trusted_proxy_stops_startup(gt, identity):
    vhost = gt.vhost(directives="GetTokenIdentity %s" % identity)
    h = gt.httpd([vhost])
    rc, out = h.configtest()
    assert rc != 0 and "Syntax OK" not in out, out
    lines = [l for l in out.splitlines() if "gettoken:" in l]
    assert len(lines) == 1, out
    assert re.search(r"GetTokenIdentity header \S+ in .*GetTokenTrustedProxy", lines[0]), lines[0]
    assert vhost.server_name in lines[0], lines[0]
    with pytest.raises(RuntimeError):
        h.start(timeout=5)


@pytest.mark.parametrize("arg", ["not-an-address", "127.0.0.1/99", "10.0.0.0/"])
def test_bad_trusted_proxy_refused(gt, arg):
    h = gt.httpd([gt.vhost(directives="GetTokenIdentity header Client-Cert\n"
                                      "GetTokenTrustedProxy %s" % arg)])
    rc, out = h.configtest()
    assert rc != 0 and "Syntax OK" not in out, out
    assert re.search(r"GetTokenTrustedProxy: '%s'" % re.escape(arg), out), out


# --- GETTOKEN_* variables: a short access-log line whatever was sent ---------------
def long_value(n, filler="A"):
    return (filler * n)[:n]


HUGE = 60000    # under GetTokenMaxBodySize (65536) with the plist around it
LONG_MESSAGES = {
    "service-xml": (lambda gt: gettoken_fields(long_value(HUGE), udid=gt.devices["dev_a"].enrollment_id), "xml"),
    "udid-xml": (lambda gt: gettoken_fields(udid=long_value(HUGE)), "xml"),
    "enrollmentid-binary": (lambda gt: gettoken_fields(enrollment_id=long_value(HUGE)), "binary"),
    "control-bytes-binary": (lambda gt: gettoken_fields(udid=long_value(HUGE, "\x01\"")), "binary"),
    "both-binary": (lambda gt: gettoken_fields(long_value(HUGE // 2, "s"), udid=long_value(HUGE // 2, "u")),
                    "binary"),
}


@pytest.mark.parametrize("cert", [None, "dev_a"])
@pytest.mark.parametrize("case", sorted(LONG_MESSAGES))
@pytest.mark.gt_log("GT01407")
def test_long_gettoken_writes_a_short_access_line(gt, server, client, case, cert):
    make, fmt = LONG_MESSAGES[case]
    body = checkin_body(make(gt), fmt)
    assert 50000 < len(body) <= 65536, len(body)
    r = client(server, cert).request(body)
    assert 400 <= r.status < 500, (r.status, r.body[:200])
    lines = server.access_lines(r.test_id)
    assert len(lines) == 1, lines
    assert len(lines[0]) < 2048, "access-log line of %d bytes: %r" % (len(lines[0]), lines[0][:200])
    assert_serves(gt, server, server.vhosts[0])


# --- com.apple.watch.pairing: only for a phone --------------------------------------
@pytest.fixture(scope="module")
def phone(gt):
    v = gt.vhost()
    yield from running(gt.httpd([v]), v)


def pairing_fields(udid, phone_udid, watch_udid="WATCH-0001-AAAA", **extra):
    params = {"SecurityToken": "st-" + "9" * 20, "PhoneUDID": phone_udid, "WatchUDID": watch_udid}
    return gettoken_fields(PAIRING, udid=udid, params=params, **extra)


FORBIDDEN_SHAPES = {
    # name: (device presenting, fields(gt) -> dict, reason in the log line)
    "user-channel-UserID": ("dev_a", lambda d: pairing_fields(d["dev_a"], d["dev_a"],
                                                               UserID="0A1B2C3D-0000-4000-8000-000000000001"),
                            r"device channel"),
    "user-channel-UserShortName": ("dev_a", lambda d: pairing_fields(d["dev_a"], d["dev_a"],
                                                                      UserShortName="alice"),
                                   r"device channel"),
    "user-channel-EnrollmentUserID": ("dev_a", lambda d: pairing_fields(d["dev_a"], d["dev_a"],
                                                                         EnrollmentUserID="alice@example.org"),
                                      r"device channel"),
    "udid-with-EnrollmentID": ("dev_a", lambda d: pairing_fields(d["dev_a"], d["dev_a"],
                                                                  EnrollmentID=d["dev_user"]),
                               r"EnrollmentID"),
    "user-enrollment": ("dev_user", lambda d: gettoken_fields(
        PAIRING, enrollment_id=d["dev_user"],
        params={"SecurityToken": "st-1", "PhoneUDID": d["dev_user"], "WatchUDID": "WATCH-0001-AAAA"}),
                        r"no UDID"),
    "phone-udid-not-its-udid": ("dev_a", lambda d: pairing_fields(d["dev_a"], d["dev_b"]),
                                r"PhoneUDID"),
}


@pytest.mark.parametrize("fmt", ["xml", "binary"])
@pytest.mark.parametrize("shape", sorted(FORBIDDEN_SHAPES))
@pytest.mark.gt_log("GT01706", "GT01707")
def test_pairing_refused_unless_phone_device_channel(gt, phone, client, shape, fmt):
    h, v = phone
    device, make, reason = FORBIDDEN_SHAPES[shape]
    ids = {n: d.enrollment_id for n, d in gt.devices.items()}
    mark = h.log_mark()
    r = client(v.port, device).checkin(make(ids), fmt=fmt)
    assert not r.body.count(b"TokenData")
    assert_refused(h, r, 403, PAIRING + r".*" + reason, mark)


@pytest.mark.parametrize("fmt", ["xml", "binary"])
def test_pairing_for_phone_device_channel_200(gt, phone, client, fmt):
    h, v = phone
    udid = gt.devices["dev_a"].enrollment_id
    r = client(v.port, "dev_a").checkin(pairing_fields(udid, udid), fmt=fmt)
    token = token_from_response(r)
    header, _, _ = decode_unverified(token)
    assert header == {"alg": "RS256", "typ": "JWT"}
    claims = jwt.decode(token, gt.pki.maid_rsa.public_key, algorithms=["RS256"],
                        options={"verify_aud": False})
    assert claims["iss"] == v.uuid and claims["service_type"] == PAIRING
    assert claims["phone_udid"] == udid and claims["watch_udid"] == "WATCH-0001-AAAA"
    assert UUID4_RX.match(claims["jti"])
