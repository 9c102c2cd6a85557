# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""A hostile catalogue: what an attacker sends before any
authentication, each answered with its contract status -- 400/401/403, or
pass-through (the backend gets the body byte for byte) for bodies that are not
a GetToken or are over the structural bounds -- while no child dies (same pids,
no "exit signal" in the error log), no child balloons, and a good GetToken is
answered right after."""
import time
import uuid

import pytest

from gt_client import checkin_body, gettoken_fields, token_from_response, verify_maid_token
from gt_hostile import (MAID, PAIRING, billion_laughs, bp_gettoken, bp_token_parameters,
                        external_entity, pairing_params, xml_gettoken, xs)
from gt_httpd import BACKEND_MARKER, assert_refused
from gt_stream import RawClient, children, mem_kb

PASS = "pass-through"
BALLOON_LIMIT_KB = 32 * 1024      # "a few MiB per request": far below the 360 MB of a copy per reference


@pytest.fixture(scope="module")
def hostile(gt):
    h = gt.httpd([gt.vhost()], loglevel="info gettoken:debug")
    h.start()
    try:
        yield h
    finally:
        h.stop()


def udid(gt):
    return gt.devices["dev_a"].enrollment_id


# --- the server is still whole -------------------------------------------------------
def server_pids(h):
    """The serving processes: the children, or httpd itself when it runs -X."""
    return [h.pid] + children(h.pid)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def snapshot(h):
    return server_pids(h), h.log_mark()


def assert_still_serving(h, before, gt):
    pids, mark = before
    crashes = h.crash_lines(mark)
    assert not crashes, crashes
    gone = [p for p in pids if not alive(p)]
    assert not gone, "httpd processes gone: %s\n%s" % (gone, h.log_tail(10))
    with gt.client(h.port, "dev_a") as c:
        r = c.checkin(gettoken_fields(udid=udid(gt)), keep=False)
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key, h.vhosts[0].uuid,
                      time.time())


def assert_contract(h, r, body, expect, mark):
    """expect: PASS (the backend answered and got the body intact), or a status."""
    if expect == PASS:
        assert r.status == 200 and r.body.startswith(BACKEND_MARKER), (r.status, r.body[:200],
                                                                       h.log_tail(3))
        got = h.record(r.test_id)
        assert got is not None and got[1] == body, "the backend did not get the body intact"
    elif isinstance(expect, tuple):          # either of two contract answers (see the case)
        assert r.status in (200, 400) and b"TokenData" not in r.body, (r.status, r.body[:200])
        if r.status == 200:
            assert_contract(h, r, body, PASS, mark)
        else:
            assert_refused(h, r, 400, r"refused \(400\)", mark)
    else:
        assert_refused(h, r, expect, r"refused \(%d\)" % expect, mark)


# --- the catalogue: name -> (body maker(udid), expected, client certificate) -------------
def nul_key_utf16(u):
    # the 152-byte request that aborted a child: a UTF-16 TokenParameters key holding U+0000
    return bp_token_parameters(u, lambda bp: bp.add("dict", [(bp.add("utf16", "a\0b"), bp.s("x"))]))


def types(key, value):
    """A GetToken of dev_a where `key` has the wrong type (value: plistlib value)."""
    def make(u, fmt):
        f = gettoken_fields(udid=u)
        f[key] = value
        return checkin_body(f, fmt)
    return make


def over(key, n, fmt="xml"):
    def make(u):
        f = gettoken_fields(udid=u)
        f[key] = "u" * n
        return checkin_body(f, fmt)
    return make


def bp_raw_param(raw):
    """A GetToken whose TokenParameters is one hand-written (lying) object."""
    return lambda u: bp_token_parameters(u, lambda bp: bp.add("raw", raw)).serialize()


def bp_self_reference(u):
    bp = bp_gettoken(u, extra=lambda bp: [(bp.s("TokenParameters"), 0)])   # the top dict itself
    return bp.serialize()


def bp_cycle(u):
    def params(bp):
        a = bp.add("array", [])
        b = bp.add("array", [a])
        bp.objs[a] = ("array", [b])
        return a
    return bp_token_parameters(u, params).serialize()


def bp_deep(u, depth=600):
    def params(bp):
        first = len(bp.objs)
        for i in range(depth):
            bp.add("array", [first + i + 1])
        bp.s("bottom")
        return first
    return bp_token_parameters(u, params).serialize()


def bp_trailer(**lie):
    return lambda u: bp_gettoken(u).serialize(**lie)


def bp_offset(fn):
    return lambda u: bp_gettoken(u).serialize(patch_offsets=fn)


def xml_deep(u, depth=20000, tag="array"):
    inner = "<%s>" % tag * depth + "</%s>" % tag * depth if tag == "array" else \
        "<dict><key>k</key>" * depth + "<string>x</string>" + "</dict>" * depth
    return xml_gettoken(u, extra="<key>TokenParameters</key><dict><key>d</key>%s</dict>" % inner)


def pairing_xml(u, **extra):
    return checkin_body(gettoken_fields(PAIRING, udid=u, params=pairing_params(u), **extra))


CASES = {
    # a NUL in a key or a value, in either encoding: 400
    "nul-key-utf16-bplist": (lambda u: nul_key_utf16(u).serialize(), 400, "dev_a"),
    "nul-value-utf16-bplist": (lambda u: bp_token_parameters(
        u, lambda bp: bp.add("dict", [(bp.s("k"), bp.add("utf16", "x\0y"))])).serialize(), 400, "dev_a"),
    "nul-key-ascii-bplist": (lambda u: bp_token_parameters(
        u, lambda bp: bp.add("dict", [(bp.s(b"a\0b"), bp.s("x"))])).serialize(), 400, "dev_a"),
    "nul-top-key-utf16-bplist": (lambda u: bp_gettoken(u, extra=lambda bp: [
        (bp.add("utf16", "UDID\0x"), bp.s("y"))]).serialize(), 400, "dev_a"),
    "nul-udid-bplist": (lambda u: bp_gettoken(u + "\0tail").serialize(), 400, "dev_a"),
    # &#0; is no XML character: a parser that refuses it makes the body no plist
    # (pass-through); one that decodes it holds a NUL (400); never a token
    "nul-udid-xml": (lambda u: xml_gettoken(u + "&#0;tail"), (PASS, 400), "dev_a"),
    "nul-service-xml": (lambda u: xml_gettoken(u, service=MAID + "&#0;"), (PASS, 400), "dev_a"),
    "nul-param-key-xml": (lambda u: xml_gettoken(
        u, extra="<key>TokenParameters</key><dict><key>a&#0;b</key>%s</dict>" % xs("x")), (PASS, 400), "dev_a"),
    "nul-param-value-xml": (lambda u: xml_gettoken(
        u, extra="<key>TokenParameters</key><dict><key>k</key>%s</dict>" % xs("x&#0;")), (PASS, 400), "dev_a"),
    # strings over 1 KiB: 400 (and 1 KiB itself is still read: an unknown UDID is 403)
    "udid-1024-not-enrolled": (lambda u: checkin_body(gettoken_fields(udid="u" * 1024)), 403, "dev_a"),
    "udid-1025": (over("UDID", 1025), 400, "dev_a"),
    "udid-1025-bplist": (over("UDID", 1025, "binary"), 400, "dev_a"),
    "service-2000": (over("TokenServiceType", 2000), 400, "dev_a"),
    "enrollmentid-1025": (lambda u: checkin_body(gettoken_fields(enrollment_id="e" * 1025)), 400, "dev_user"),
    "userid-1025": (over("UserID", 1025), 400, "dev_a"),
    "param-value-1025": (lambda u: checkin_body(gettoken_fields(udid=u, params={"k": "v" * 1025})), 400, "dev_a"),
    "param-key-1025": (lambda u: checkin_body(gettoken_fields(udid=u, params={"k" * 1025: "v"})), 400, "dev_a"),
    "udid-utf16-700-chars": (lambda u: bp_gettoken("\u00e9" * 700).serialize(), 400, "dev_a"),
    # wrong types for every key: 400 (a MessageType that is not the string GetToken: not ours)
    "type-service-int": (lambda u: types("TokenServiceType", 7)(u, "xml"), 400, "dev_a"),
    "type-service-array": (lambda u: types("TokenServiceType", [MAID])(u, "binary"), 400, "dev_a"),
    "type-service-dict": (lambda u: types("TokenServiceType", {"a": MAID})(u, "xml"), 400, "dev_a"),
    "type-service-data": (lambda u: types("TokenServiceType", MAID.encode())(u, "binary"), 400, "dev_a"),
    "type-service-bool": (lambda u: types("TokenServiceType", True)(u, "xml"), 400, "dev_a"),
    "type-udid-int": (lambda u: types("UDID", 12345)(u, "binary"), 400, "dev_a"),
    "type-udid-data": (lambda u: types("UDID", b"\x00\x01")(u, "xml"), 400, "dev_a"),
    "type-udid-array": (lambda u: types("UDID", [u])(u, "xml"), 400, "dev_a"),
    "type-udid-real": (lambda u: types("UDID", 1.5)(u, "binary"), 400, "dev_a"),
    "type-enrollmentid-int": (lambda u: checkin_body(dict(gettoken_fields(), EnrollmentID=9)), 400, "dev_user"),
    "type-tokenparameters-string": (lambda u: types("TokenParameters", "p")(u, "xml"), 400, "dev_a"),
    "type-tokenparameters-array": (lambda u: types("TokenParameters", ["p"])(u, "binary"), 400, "dev_a"),
    "type-userid-int": (lambda u: types("UserID", 501)(u, "xml"), 400, "dev_a"),
    "type-usershortname-dict": (lambda u: types("UserShortName", {"n": "x"})(u, "binary"), 400, "dev_a"),
    "type-userlongname-array": (lambda u: types("UserLongName", ["x"])(u, "xml"), 400, "dev_a"),
    "type-enrollmentuserid-bool": (lambda u: types("EnrollmentUserID", False)(u, "xml"), 400, "dev_a"),
    "missing-service": (lambda u: xml_gettoken(u, service=None), 400, "dev_a"),
    "missing-udid-and-enrollmentid": (lambda u: xml_gettoken(None), 400, "dev_a"),
    "type-messagetype-int": (lambda u: types("MessageType", 1)(u, "binary"), PASS, "dev_a"),
    "type-messagetype-array": (lambda u: types("MessageType", ["GetToken"])(u, "xml"), PASS, "dev_a"),
    # binary-plist offset tricks and lies: not a plist, or over the bounds: not ours
    "bp-self-reference": (bp_self_reference, PASS, "dev_a"),
    "bp-cycle": (bp_cycle, PASS, "dev_a"),
    "bp-deep-600": (bp_deep, PASS, "dev_a"),
    "bp-offset-out-of-range": (lambda u: bp_gettoken(u).serialize(
        off_size=2, patch_offsets=lambda o: o[:-1] + [60000]), PASS, "dev_a"),
    "bp-offset-into-trailer": (bp_offset(lambda o: o[:1] + [o[-1] + 40] + o[2:]), PASS, "dev_a"),
    "bp-offset-backwards-into-header": (bp_offset(lambda o: [2] + o[1:]), PASS, "dev_a"),
    "bp-table-overlaps-objects": (bp_trailer(table_offset=9), PASS, "dev_a"),
    "bp-table-past-end": (bp_trailer(table_offset=1 << 40), PASS, "dev_a"),
    "bp-trailer-huge-object-count": (bp_trailer(num_objects=1 << 62), PASS, "dev_a"),
    "bp-trailer-top-out-of-range": (bp_trailer(top=4000), PASS, "dev_a"),
    "bp-trailer-offset-size-0": (bp_trailer(off_size=0), PASS, "dev_a"),
    "bp-trailer-ref-size-0": (bp_trailer(ref_size=0), PASS, "dev_a"),
    "bp-trailer-ref-size-9": (bp_trailer(ref_size=9), PASS, "dev_a"),
    "bp-array-count-2^40": (bp_raw_param(b"\xaf\x13" + (1 << 40).to_bytes(8, "big")), PASS, "dev_a"),
    "bp-dict-count-2^31": (bp_raw_param(b"\xdf\x12" + (1 << 31).to_bytes(4, "big")), PASS, "dev_a"),
    "bp-string-past-end": (bp_raw_param(b"\x5f\x12" + (10 ** 6).to_bytes(4, "big") + b"abc"), PASS, "dev_a"),
    # deep nesting in XML, entity and DOCTYPE bombs
    "xml-deep-array-20000": (xml_deep, PASS, "dev_a"),          # over GetTokenMaxBodySize too
    "xml-deep-dict-5000": (lambda u: xml_deep(u, 5000, "dict"), PASS, "dev_a"),
    "xml-deep-array-3000-in-64k": (lambda u: xml_deep(u, 3000), PASS, "dev_a"),
    "xml-deep-dict-2000-in-64k": (lambda u: xml_deep(u, 2000, "dict"), PASS, "dev_a"),
    # libplist either refuses the DTD (not a plist: pass-through) or keeps the
    # reference unexpanded (an unknown TokenServiceType / UDID: 400); never expands
    "xml-billion-laughs": (billion_laughs, (PASS, 400), "dev_a"),
    "xml-external-entity": (external_entity, (PASS, 400), "dev_a"),
    # watch-pairing tokens are for phones on the device channel only: 403
    "pairing-user-channel-userid": (lambda u: pairing_xml(u, UserID="501"), 403, "dev_a"),
    "pairing-user-channel-shortname": (lambda u: pairing_xml(u, UserShortName="alice"), 403, "dev_a"),
    "pairing-enrollmentuserid": (lambda u: pairing_xml(u, EnrollmentUserID="e-501"), 403, "dev_a"),
    "pairing-phoneudid-not-udid": (lambda u: checkin_body(gettoken_fields(
        PAIRING, udid=u, params=pairing_params("00008030-0000000000000001"))), 403, "dev_a"),
    # identity is demanded after validation: no certificate at all is 401
    "no-certificate": (lambda u: checkin_body(gettoken_fields(udid=u)), 401, None),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.gt_log("GT01204", "GT01303", "GT01407", "GT01706", "GT01707")
def test_hostile_body(hostile, client, gt, case):
    make, expect, cert = CASES[case]
    body = make(udid(gt))
    before = snapshot(hostile)
    r = client(hostile, cert).request(body, keep=False)
    assert b"TokenData" not in r.body
    assert_contract(hostile, r, body, expect, before[1])
    assert_still_serving(hostile, before, gt)


# --- one body, thousands of references to one big string -------------------------
def balloon(u, message="GetToken", size=65536):
    """A bplist of at most `size` bytes: one ~61 KB string referenced 4095 times
    (4095 x 61 KB = 250 MB once every reference is copied)."""
    def pad(bp):
        big = bp.s("B" * 61000)
        return [(bp.s("Padding"), bp.add("array", [big] * 4095))]
    body = bp_gettoken(u, message=message, extra=pad).serialize()
    assert len(body) <= size, len(body)
    return body


def peak_kb(h):
    return {p: (mem_kb(p) or {}).get("VmHWM", 0) for p in server_pids(h)}


@pytest.mark.parametrize("message", ["GetToken", "Authenticate"])
def test_reference_balloon_passes_through_bounded(hostile, client, gt, message):
    body = balloon(udid(gt), message)
    before = snapshot(hostile)
    assert_still_serving(hostile, before, gt)        # warm: TLS, DB, first token
    peak = peak_kb(hostile)
    for _ in range(3):
        mark = hostile.log_mark()
        r = client(hostile, "dev_a").request(body, keep=False)
        assert_contract(hostile, r, body, PASS, mark)
    grown = {p: kb - peak.get(p, 0) for p, kb in peak_kb(hostile).items() if p in peak}
    assert max(grown.values()) < BALLOON_LIMIT_KB, grown
    assert_still_serving(hostile, before, gt)


# --- log amplification: the reference LogFormat logs GETTOKEN_* env values ----------
@pytest.mark.parametrize("key,cert,status", [("UDID", None, 400), ("TokenServiceType", "dev_a", 400),
                                             ("UserShortName", None, 400)])
@pytest.mark.gt_log("GT01407")
def test_64k_body_log_line_short(hostile, client, gt, key, cert, status):
    f = gettoken_fields(udid=udid(gt))
    f[key] = '"\\' * 30000                # each character escaped by mod_log_config
    body = checkin_body(f)
    assert 60000 < len(body) <= 65536
    mark = hostile.log_mark()
    r = client(hostile, cert).request(body, keep=False)
    assert_contract(hostile, r, body, status, mark)
    lines = hostile.access_lines(r.test_id)
    assert len(lines) == 1 and len(lines[0]) < 2048, [len(l) for l in lines]


@pytest.mark.gt_log("GT01204")
def test_validated_values_log_bounded(hostile, client, gt):
    """A message that passes validation (1000-character UDID, no certificate: 401)
    may be logged, but within the 1 KiB rule and its escaping."""
    body = checkin_body(gettoken_fields(udid='"' * 1000))
    mark = hostile.log_mark()
    r = client(hostile, None).request(body, keep=False)
    assert_contract(hostile, r, body, 401, mark)
    lines = hostile.access_lines(r.test_id)
    assert len(lines) == 1 and len(lines[0]) < 12 * 1024, len(lines[0])


# --- the wire: slow, lying, badly chunked, pipelined -----------------------------------
def raw(gt, h, cert="dev_a", timeout=20):
    ident = gt.devices[cert] if cert else None
    return RawClient(h.port, gt.pki.ca_cert_path, ident, timeout=timeout)


def head(test_id, **extra):
    hd = [("Content-Type", "application/x-apple-aspen-mdm-checkin"), ("X-Test-Id", test_id)]
    return hd + list(extra.items())


def test_slow_body_is_answered(hostile, gt):
    body = checkin_body(gettoken_fields(udid=udid(gt)))
    before = snapshot(hostile)
    with raw(gt, hostile) as c:
        c.send_head("PUT", "/mdm/checkin", head("slow", **{"Content-Length": str(len(body))}))
        step = len(body) // 10 + 1
        for i in range(0, len(body), step):       # ten pieces, 0.2 s apart
            c.sock.sendall(body[i:i + step])
            time.sleep(0.2)
        r = c.read_response()
    verify_maid_token(token_from_response(_resp(r)), gt.pki.maid_rsa.public_key,
                      hostile.vhosts[0].uuid, time.time())
    assert_still_serving(hostile, before, gt)


def _resp(raw_resp, tid=""):
    from gt_client import Response

    class H:
        def get(self, name, default=None):
            return raw_resp.header(name) or default
    return Response(raw_resp.status, H(), raw_resp.body, tid)


def test_stalled_body_does_not_hold_others(hostile, gt):
    """A client that sends half a body and stops: the others are served meanwhile."""
    body = checkin_body(gettoken_fields(udid=udid(gt)))
    before = snapshot(hostile)
    stalled = [raw(gt, hostile) for _ in range(4)]
    try:
        for c in stalled:
            c.send_head("PUT", "/mdm/checkin", head("stall", **{"Content-Length": str(len(body))}))
            c.sock.sendall(body[:len(body) // 2])
        t0 = time.time()
        assert_still_serving(hostile, before, gt)
        assert time.time() - t0 < 15
    finally:
        for c in stalled:
            c.abort()
    assert_still_serving(hostile, before, gt)


def test_content_length_shorter_than_sent(hostile, gt):
    body = checkin_body(gettoken_fields(udid=udid(gt)))
    cut = len(body) - 20                           # the plist's last 20 bytes are left over
    before = snapshot(hostile)
    with raw(gt, hostile) as c:
        c.send_head("PUT", "/mdm/checkin", head("cl-short", **{"Content-Length": str(cut)}))
        c.sock.sendall(body)
        r = c.read_response()
        # a truncated plist is not a GetToken: it passes through, as it was framed
        assert r.status == 200 and r.body.startswith(BACKEND_MARKER), (r.status, r.body[:200])
        got = hostile.record("cl-short")
        assert got is not None and got[1] == body[:cut]
        try:                                       # the leftover is no request
            assert c.read_response().status == 400
        except ConnectionError:
            pass
    assert_still_serving(hostile, before, gt)


def test_content_length_longer_than_sent(hostile, gt):
    body = checkin_body(gettoken_fields(udid=udid(gt)))
    before = snapshot(hostile)
    c = raw(gt, hostile)
    c.send_head("PUT", "/mdm/checkin", head("cl-long", **{"Content-Length": str(len(body) + 500)}))
    c.sock.sendall(body)
    time.sleep(0.3)
    c.abort()                                      # the rest never comes
    assert hostile.record("cl-long", timeout=0.5) is None
    assert_still_serving(hostile, before, gt)


@pytest.mark.parametrize("chunk_head,status", [(b"zz", 400), (b"-5", 400), (b"5;\x00ext", 400), (b"", 400),
                                               (b"1" + b"f" * 20, 413)],   # httpd: too large
                         ids=["not-hex", "negative", "nul-ext", "empty", "overflow"])
def test_bad_chunk_sizes_refused(hostile, gt, chunk_head, status):
    body = checkin_body(gettoken_fields(udid=udid(gt)))
    before = snapshot(hostile)
    tid = "chunk-%d" % (time.time_ns())
    with raw(gt, hostile) as c:
        c.send_head("PUT", "/mdm/checkin", head(tid, **{"Transfer-Encoding": "chunked"}))
        c.sock.sendall(b"%x\r\n" % 50 + body[:50] + b"\r\n" + chunk_head + b"\r\n" + body[50:] + b"\r\n0\r\n\r\n")
        r = c.read_response()
    assert r.status == status, (r.status, r.body[:200])
    assert hostile.record(tid, timeout=0.5) is None
    assert_still_serving(hostile, before, gt)


@pytest.mark.gt_log("GT01407", "GT01706")
def test_pipelined_hostile_in_the_middle(hostile, gt):
    """good, a user-channel pairing request (403), good, the NUL-key body (400,
    last: httpd closes a connection after a 400)."""
    u = udid(gt)
    good = checkin_body(gettoken_fields(udid=u))
    bodies = (good, pairing_xml(u, UserID="501"), good, nul_key_utf16(u).serialize())
    before = snapshot(hostile)
    wire = b""
    for i, b in enumerate(bodies):
        wire += (b"PUT /mdm/checkin HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Test-Id: pipe-%d\r\n"
                 b"Content-Type: application/x-apple-aspen-mdm-checkin\r\nContent-Length: %d\r\n\r\n"
                 % (i, len(b)) + b)
    with raw(gt, hostile) as c:
        c.sock.sendall(wire)
        answers = [c.read_response() for _ in bodies]
    assert [a.status for a in answers] == [200, 403, 200, 400], [(a.status, a.body[:80]) for a in answers]
    for a in (answers[0], answers[2]):
        verify_maid_token(token_from_response(_resp(a)), gt.pki.maid_rsa.public_key,
                          hostile.vhosts[0].uuid, time.time())
    assert_still_serving(hostile, before, gt)


# --- .htaccess, a proxy header from anyone, watch-verify: one more server -----------------
@pytest.fixture(scope="module")
def edges(gt):
    """main: GetToken On, header identity believed only from 192.0.2.7; an
    AllowOverride All directory holding `GetToken On` in .htaccess; a watch
    MDM's verify location (trust per issuer)."""
    from pairing_helpers import VERIFY_PATH, watch_vhost
    htdir = gt.readable_dir("hostile-htaccess", {".htaccess": "GetToken On\n"})
    main = gt.vhost(directives="GetTokenIdentity ssl header Client-Cert\nGetTokenTrustedProxy 192.0.2.7\n"
                    "Alias /ht %s\n<Directory %s>\n    AllowOverride All\n</Directory>" % (htdir, htdir))
    watch = watch_vhost(gt, [(str(uuid.uuid4()), gt.pki.maid_ec.cert_path)], gt.make_db("hostile-watch", []))
    h = gt.httpd([main, watch], extra_global="LimitRequestFieldSize 131072")
    h.start()
    try:
        yield h, main, watch, VERIFY_PATH
    finally:
        h.stop()


@pytest.mark.parametrize("shape", ["xml", "binary", "nul-key", "authenticate"])
def test_gettoken_on_in_htaccess_500(edges, gt, shape):
    h, main, _, _ = edges
    u = udid(gt)
    body = {"xml": lambda: checkin_body(gettoken_fields(udid=u)),
            "binary": lambda: checkin_body(gettoken_fields(udid=u), "binary"),
            "nul-key": lambda: nul_key_utf16(u).serialize(),
            "authenticate": lambda: checkin_body({"MessageType": "Authenticate", "UDID": u})}[shape]()
    before = snapshot(h)
    with gt.client(main.port, "dev_a") as c:
        r = c.request(body, path="/ht/anything", keep=False)
    assert r.status == 500 and b"TokenData" not in r.body, (r.status, r.body[:200])
    assert h.wait_log(before[1], r"GetToken.*not allowed here|\.htaccess.*GetToken"), h.log_tail(5)
    assert_still_serving(h, before, gt)


@pytest.mark.parametrize("header", ["Client-Cert", "client-cert", "X-Forwarded-For"])
@pytest.mark.gt_log("GT01204")
def test_proxy_header_from_untrusted_peer_401(edges, gt, header):
    """No client certificate, an enrolled device's certificate in the header (and
    a forwarding header naming the trusted proxy): the peer is 127.0.0.1, not
    192.0.2.7, so the header counts for nothing."""
    from gt_sign import client_cert_rfc9440
    h, main, _, _ = edges
    hdrs = {"Client-Cert": client_cert_rfc9440(gt.devices["dev_a"])}
    if header == "X-Forwarded-For":
        hdrs["X-Forwarded-For"] = "192.0.2.7"
    elif header == "client-cert":
        hdrs = {"client-cert": hdrs["Client-Cert"]}
    before = snapshot(h)
    with gt.client(main.port, None) as c:
        r = c.request(checkin_body(gettoken_fields(udid=udid(gt))), headers=hdrs, keep=False)
    assert_refused(h, r, 401, r"refused \(401\)", before[1])
    assert_still_serving(h, before, gt)


@pytest.mark.gt_log("GT01915")
def test_watch_verify_balloon_bounded(edges, gt):
    """The 4095-reference body at the watch-verify handler: refused, no balloon."""
    h, main, watch, verify_path = edges
    body = balloon("x", message="x")
    before = snapshot(h)
    assert_still_serving(h, before, gt)
    peak = peak_kb(h)
    for _ in range(3):
        with gt.client(watch.port) as c:
            r = c.request(body, method="POST", path=verify_path, content_type="application/xml", keep=False)
        assert r.status in (400, 403) and b"PhoneUDID" not in r.body, (r.status, r.body[:200])
    grown = {p: kb - peak.get(p, 0) for p, kb in peak_kb(h).items() if p in peak}
    assert max(grown.values()) < BALLOON_LIMIT_KB, grown
    assert_still_serving(h, before, gt)
