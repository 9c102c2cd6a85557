# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""Issue 4: every non-GetToken check-in reaches the MDM untouched, whatever
serves the location.

One httpd serves the same set of back ends twice: under /mx/on/ with
`GetToken On`, under /mx/off/ without the directive (the default, Off):

  location-proxypass  <Location> GetToken On; ProxyPass http://backend/...
  vhost-proxypass     vhost-level ProxyPass, <Location> GetToken On
  sethandler-proxy    <Location> SetHandler "proxy:http://backend"
  cgi                 ScriptAlias to a recording CGI (mod_cgid)
  action-cgi          SetHandler mdm-app; Action mdm-app /mx/action-cgi virtual: mod_actions
                      hands the request to the CGI by an internal redirect (as for PHP-CGI)
  reflector           mod_reflector (another module's handler; echoes POST bodies)
  lua                 mod_lua LuaMapHandler echoing PUT bodies (Content-Length only:
                      mod_lua's r:requestbody() refuses chunked bodies with 411)

The proxied back end is gt_backend.RecordingBackend, a real loopback HTTP/1.1
server recording method, URI, every header and the body's SHA-256 and length.
"""
import base64
import hashlib
import os
import plistlib
import subprocess
import tempfile
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from gt_backend import MARKER, RecordingBackend
from gt_client import CHECKIN_CT, token_from_response, verify_maid_token
from gt_httpd import BACKEND_MARKER, MODDIR
from gt_stream import RawClient, children, mem_kb, pattern_body, pattern_sha256

MAX_BODY = 65536        # the GetTokenMaxBodySize default

BACKENDS = {            # name -> (kind, method a device would use there)
    "location-proxypass": ("proxy", "PUT"),
    "vhost-proxypass": ("proxy", "PUT"),
    "sethandler-proxy": ("proxy", "PUT"),
    "cgi": ("cgi", "PUT"),
    "action-cgi": ("cgi", "PUT"),        # SetHandler + Action: the PHP-CGI style set-up
    "reflector": ("echo", "POST"),       # mod_reflector reflects POST only
    "lua": ("echo", "PUT"),
}
PROXIED = [b for b, (k, _) in BACKENDS.items() if k == "proxy"]

LUA_ECHO = r'''
function handle(r)
    local body = ""
    if r.method == "PUT" or r.method == "POST" then
        body = r:requestbody() or ""
    end
    r.content_type = r.headers_in["Content-Type"] or "application/octet-stream"
    for _, h in ipairs({"Mdm-Signature", "User-Agent", "X-Extra", "X-Test-Id", "Content-Length"}) do
        local v = r.headers_in[h]
        if v then r.headers_out["X-Echo-" .. h] = v end
    end
    r.headers_out["X-Echo-Method"] = r.method
    r:write(body)
    return apache2.OK
end
'''


def stack_config(port, cgi, lua):
    L = []
    for st in ("on", "off"):
        on = "GetToken On" if st == "on" else ""
        p = "/mx/%s/" % st
        L += ["<Location %slocation-proxypass>" % p, on,
              "    ProxyPass http://127.0.0.1:%d/%s/location-proxypass" % (port, st), "</Location>",
              "ProxyPass %svhost-proxypass http://127.0.0.1:%d/%s/vhost-proxypass" % (p, port, st),
              "<Location %svhost-proxypass>" % p, on, "</Location>",
              "<Location %ssethandler-proxy>" % p, on,
              '    SetHandler "proxy:http://127.0.0.1:%d"' % port, "</Location>",
              "ScriptAlias %scgi %s" % (p, cgi),
              "<Location %scgi>" % p, on, "</Location>",
              "<Location %sreflector>" % p, on, "    SetHandler reflector",
              "    ReflectorHeader Mdm-Signature X-Echo-Mdm-Signature",
              "    ReflectorHeader User-Agent X-Echo-User-Agent",
              "    ReflectorHeader X-Extra X-Echo-X-Extra",
              "    ReflectorHeader X-Test-Id X-Echo-X-Test-Id", "</Location>",
              "LuaMapHandler ^%slua$ %s" % (p, lua),
              "<Location %slua>" % p, on, "</Location>",
              "<Location %saction-cgi>" % p, on, "    SetHandler mdm-app", "</Location>",
              # an input filter of the resource type in front of a proxied MDM
              "<Location %ssed-proxy>" % p, on, "    SetInputFilter Sed",
              '    InputSed "s/MessageType/MessageTypeX/"',
              "    ProxyPass http://127.0.0.1:%d/%s/sed-proxy" % (port, st), "</Location>"]
    L += ["ScriptAlias /mx/action-cgi %s" % cgi, "Action mdm-app /mx/action-cgi virtual"]
    return "\n".join(x for x in L if x)


class Stack:
    def __init__(self, gt, backend, httpd):
        self.gt, self.backend, self.h = gt, backend, httpd

    def path(self, backend, on=True):
        return "/mx/%s/%s" % ("on" if on else "off", backend)


def make_stack(gt):
    backend = RecordingBackend().start()
    h = gt.httpd([gt.vhost()], extra_global="\n".join(
        "LoadModule %s_module %s/mod_%s.so" % (m, MODDIR, m)
        for m in ("reflector", "lua", "actions", "sed")))
    lua = os.path.join(h.dir, "echo.lua")
    with open(lua, "w") as f:
        f.write(LUA_ECHO)
    os.chmod(lua, 0o644)
    h.vhosts[0].directives = stack_config(backend.port, h.cgi, lua)
    try:
        h.start()
    except Exception:
        backend.stop()
        raise
    if os.environ.get("GT_KEEP"):
        print("\nmatrix httpd: %s" % h.dir)
    return Stack(gt, backend, h)


@pytest.fixture(scope="module")
def stack(gt):
    s = make_stack(gt)
    yield s
    s.h.stop()
    s.backend.stop()


@pytest.fixture
def fresh_stack(gt):
    """Its own httpd: peak-memory (VmHWM) measurements need children that no
    earlier test has grown."""
    s = make_stack(gt)
    yield s
    s.h.stop()
    s.backend.stop()


# --- the check-in messages of Apple's protocol --------------------------------
def messages(udid):
    topic = "com.apple.mgmt.External.0f6b4e2c-5d5e-4c1b-9f3a-1d2e3f4a5b6c"
    return {
        "Authenticate": {"MessageType": "Authenticate", "Topic": topic, "UDID": udid,
                         "BuildVersion": "21C62", "DeviceName": "iPad", "Model": "iPad13,1",
                         "ModelName": "iPad", "OSVersion": "17.2", "ProductName": "iPad13,1",
                         "SerialNumber": "DMPXK0ABCD12", "IMEI": "35 441007 123456 7"},
        "TokenUpdate": {"MessageType": "TokenUpdate", "Topic": topic, "UDID": udid,
                        "Token": os.urandom(32), "PushMagic": "5E0E3F4D-1111-2222-3333-444455556666",
                        "UnlockToken": os.urandom(1500), "AwaitingConfiguration": False},
        "CheckOut": {"MessageType": "CheckOut", "Topic": topic, "UDID": udid},
        "UserAuthenticate": {"MessageType": "UserAuthenticate", "UDID": udid,
                             "UserID": "A1B2C3D4-0000-1111-2222-333344445555",
                             "UserLongName": "Jane Appleseed", "UserShortName": "jane",
                             "DigestResponse": "ZGlnZXN0"},
        "DeclarativeManagement": {"MessageType": "DeclarativeManagement", "UDID": udid,
                                  "Endpoint": "tokens",
                                  "Data": b'{"SyncTokens":{"DeclarationsToken":"x","Timestamp":"2024-01-01T00:00:00Z"}}'},
        "GetBootstrapToken": {"MessageType": "GetBootstrapToken", "UDID": udid,
                              "AwaitingConfiguration": True},
        "SetBootstrapToken": {"MessageType": "SetBootstrapToken", "UDID": udid,
                              "BootstrapToken": os.urandom(600), "AwaitingConfiguration": False},
        "GetToken": {"MessageType": "GetToken", "TokenServiceType": "com.apple.maid", "UDID": udid},
    }


MESSAGE_TYPES = ["Authenticate", "TokenUpdate", "CheckOut", "UserAuthenticate",
                 "DeclarativeManagement", "GetBootstrapToken", "SetBootstrapToken", "GetToken"]


def plist(fields, fmt):
    return plistlib.dumps(fields, fmt=plistlib.FMT_BINARY if fmt == "binary" else plistlib.FMT_XML)


def mdm_signature(identity, body):
    """The Mdm-Signature header a device sends: base64 detached CMS over the body."""
    der = (pkcs7.PKCS7SignatureBuilder().set_data(body)
           .add_signer(identity.cert, identity.key, hashes.SHA256())
           .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature,
                                              pkcs7.PKCS7Options.Binary]))
    return base64.b64encode(der).decode()


def cms_verifies(sig_b64, body):
    """openssl cms -verify of a detached Mdm-Signature over body (signature only)."""
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "sig"), "wb") as f:
            f.write(base64.b64decode(sig_b64))
        with open(os.path.join(d, "body"), "wb") as f:
            f.write(body)
        p = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-noverify",
                            "-in", os.path.join(d, "sig"), "-content", os.path.join(d, "body"),
                            "-out", os.devnull], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        return p.returncode == 0


def device_headers(identity, body):
    return {"Mdm-Signature": mdm_signature(identity, body),
            "User-Agent": "MDM/1.0 (iPad13,1; iPadOS 17.2) mod_gettoken-tests",
            "X-Extra": "kept as is; %s" % hashlib.sha256(body).hexdigest()[:12]}


# --- what arrived where -------------------------------------------------------
def assert_arrived(stack, backend, resp, body, sent, method, chunked, on=True):
    """The request reached `backend` with identical body bytes and headers."""
    kind = BACKENDS[backend][0]
    tid = resp.test_id
    assert resp.status == 200, (resp.status, resp.body[:300])
    if kind == "proxy":
        assert resp.body == MARKER + tid.encode(), resp.body[:300]
        rec = stack.backend.wait(tid)
        assert rec is not None, "the proxied backend never saw the request"
        assert rec.method == method
        if backend == "sethandler-proxy":
            # proxy:URL + r->filename (the document-root mapping of the URI): stock mod_proxy
            assert rec.target.startswith("/"), rec.target
        else:
            assert rec.target == "/%s/%s" % ("on" if on else "off", backend), rec.target
        assert rec.complete, rec.error
        assert rec.body_len == len(body)
        assert rec.body_sha256 == hashlib.sha256(body).hexdigest()
        assert rec.body == body
        for k, v in sent.items():
            assert rec.header(k) == v, (k, rec.headers)
        assert rec.header("Content-Type") == CHECKIN_CT
        if not chunked:
            assert rec.header("Content-Length") == str(len(body)), rec.headers
            assert rec.header("Transfer-Encoding") is None, rec.headers
        seen_sig, seen_body = rec.header("Mdm-Signature"), rec.body
    elif kind == "cgi":
        assert resp.body == BACKEND_MARKER + b" " + tid.encode() + b"\n", resp.body[:300]
        got = stack.h.record(tid)
        assert got is not None, "the CGI never saw the request"
        rec, seen_body = got
        assert rec["method"] == method
        assert seen_body == body, "body changed: %d bytes sent, %d seen" % (len(body), len(seen_body))
        assert rec["body_sha256"] == hashlib.sha256(body).hexdigest()
        for k, v in sent.items():
            assert rec["headers"].get(k.lower()) == v, (k, rec["headers"])
        assert rec["content_type"] == CHECKIN_CT
        if not chunked:
            assert rec["content_length"] == str(len(body))
        seen_sig = rec["headers"].get("mdm-signature")
    else:   # echo: the module handed back what it read
        assert resp.body == body, "echoed %d bytes, sent %d" % (len(resp.body), len(body))
        assert resp.header("Content-Type") == CHECKIN_CT
        for k, v in sent.items():
            assert resp.header("X-Echo-" + k) == v, (k, resp.headers.items())
        assert resp.header("X-Echo-X-Test-Id") == tid
        if backend == "lua":
            assert resp.header("X-Echo-Method") == method
            assert resp.header("X-Echo-Content-Length") == str(len(body))
        elif not chunked:
            assert resp.header("Content-Length") == str(len(body))   # reflected from the request
        seen_sig, seen_body = resp.header("X-Echo-Mdm-Signature"), resp.body
    assert cms_verifies(seen_sig, seen_body), "Mdm-Signature no longer verifies at the backend"


def assert_not_reached(stack, backend, tid):
    kind = BACKENDS[backend][0]
    if kind == "proxy":
        assert stack.backend.seen(tid) == [], "GetToken reached the proxied MDM"
    elif kind == "cgi":
        assert stack.h.record(tid, timeout=0.3) is None, "GetToken reached the CGI"


def matrix_params():
    out = []
    for b in BACKENDS:
        for upload in ("content-length", "chunked"):
            if b == "lua" and upload == "chunked":
                continue      # mod_lua's r:requestbody() answers 411 to chunked bodies, GetToken or not
            out.append(pytest.param(b, upload, id="%s-%s" % (b, upload)))
    return out


@pytest.mark.parametrize("backend,upload", matrix_params())
@pytest.mark.parametrize("fmt", ["xml", "binary"])
@pytest.mark.parametrize("msg", MESSAGE_TYPES)
def test_checkin_matrix(stack, client, gt, msg, fmt, backend, upload):
    dev = gt.devices["dev_a"]
    body = plist(messages(dev.enrollment_id)[msg], fmt)
    hdrs = device_headers(dev, body)
    chunked = upload == "chunked"
    method = BACKENDS[backend][1]
    r = client(stack.h, "dev_a").request(body, method=method, path=stack.path(backend),
                                         headers=hdrs, chunked=chunked)
    if msg == "GetToken":
        verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key,
                          stack.h.vhosts[0].uuid, time.time())
        assert_not_reached(stack, backend, r.test_id)
    else:
        assert_arrived(stack, backend, r, body, hdrs, method, chunked)


@pytest.mark.parametrize("backend,upload", matrix_params())
@pytest.mark.parametrize("fmt", ["xml", "binary"])
def test_gettoken_off_passes_gettoken_through(stack, client, gt, fmt, backend, upload):
    dev = gt.devices["dev_a"]
    body = plist(messages(dev.enrollment_id)["GetToken"], fmt)
    hdrs = device_headers(dev, body)
    method = BACKENDS[backend][1]
    r = client(stack.h, "dev_a").request(body, method=method, path=stack.path(backend, on=False),
                                         headers=hdrs, chunked=upload == "chunked")
    assert_arrived(stack, backend, r, body, hdrs, method, upload == "chunked", on=False)


@pytest.mark.parametrize("backend", PROXIED + ["cgi"])
def test_post_passes_through(stack, client, gt, backend):
    dev = gt.devices["dev_a"]
    body = plist(messages(dev.enrollment_id)["TokenUpdate"], "binary")
    hdrs = device_headers(dev, body)
    r = client(stack.h, "dev_a").request(body, method="POST", path=stack.path(backend), headers=hdrs)
    assert_arrived(stack, backend, r, body, hdrs, "POST", False)


# --- other methods: exactly as if mod_gettoken were not there ---------------------
def normalised(resp):
    """What a client sees, minus what differs between two requests anyway: the
    test id, and the framing (Content-Length or not) that httpd picks for a
    CGI's short answer depending on timing."""
    keep = ("Content-Type", "Allow", "X-Backend", "X-Echo-Method", "X-Echo-User-Agent",
            "X-Echo-Mdm-Signature")
    hdrs = {k: resp.header(k) for k in keep}
    body = resp.body.replace(resp.test_id.encode(), b"ID")
    return resp.status, hdrs, body


def cgi_received(h, test_id):
    """What the CGI backend got: method, body, and request headers (minus the test id)."""
    got = h.record(test_id)
    assert got is not None, "request %s never reached the CGI" % test_id
    rec, body = got
    hdrs = {k: v for k, v in rec["headers"].items() if k != "x-test-id"}
    return rec["method"], rec["content_length"], rec["content_type"], hdrs, body


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "DELETE"])
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_other_methods_pass_untouched(stack, client, gt, backend, method):
    dev = gt.devices["dev_a"]
    # DELETE carries a body here (a GetToken, even): it must pass untouched too
    body = plist(messages(dev.enrollment_id)["GetToken"], "binary") if method == "DELETE" else b""
    hdrs = {"User-Agent": "MDM/1.0 methods", "Mdm-Signature": "c2ln", "X-Extra": method}
    c = client(stack.h, "dev_a")
    r_on = c.request(body, method=method, path=stack.path(backend), headers=hdrs,
                     content_type=CHECKIN_CT if body else None)
    r_off = c.request(body, method=method, path=stack.path(backend, on=False), headers=hdrs,
                      content_type=CHECKIN_CT if body else None)
    assert normalised(r_on) == normalised(r_off)
    assert b"TokenData" not in r_on.body
    if BACKENDS[backend][0] == "proxy":
        rec = stack.backend.wait(r_on.test_id)
        assert rec is not None and rec.method == method
        assert rec.body == body and rec.complete
        for k, v in hdrs.items():
            assert rec.header(k) == v
        if body:
            assert rec.header("Content-Length") == str(len(body))
    elif BACKENDS[backend][0] == "cgi" and method != "OPTIONS":   # the core answers OPTIONS
        on = cgi_received(stack.h, r_on.test_id)
        assert on == cgi_received(stack.h, r_off.test_id)
        assert on[0] == method and on[4] == body
        for k, v in hdrs.items():
            assert on[3].get(k.lower()) == v, (k, on[3])
    if method == "DELETE" and backend == "lua":
        assert r_on.header("X-Echo-Method") == "DELETE"


# --- bodies over GetTokenMaxBodySize ----------------------------------------------
def padded(fields, size, fmt="xml"):
    """fields plus Padding keys, to exactly size bytes; no padding string is
    over 1 KiB, which a GetToken's strings may not be."""
    def build(full, last):
        f = dict(fields)
        for i in range(full):
            f["Padding%05d" % i] = "p" * 900
        f["Padding%05d" % full] = "p" * last
        return plist(f, fmt)
    full = (size - len(build(0, 0))) // (len(build(1, 0)) - len(build(0, 0)))
    body = build(full, size - len(build(full, 0)))
    assert len(body) == size
    return body


@pytest.mark.parametrize("backend,upload", matrix_params())
@pytest.mark.parametrize("msg", ["Authenticate", "GetToken"])
@pytest.mark.parametrize("size", [MAX_BODY + 1, 5 * MAX_BODY + 333], ids=["cap+1", "5xcap"])
def test_over_max_body_size_passes_whole(stack, client, gt, msg, backend, upload, size):
    dev = gt.devices["dev_a"]
    body = padded(messages(dev.enrollment_id)[msg], size)
    hdrs = device_headers(dev, body)
    method = BACKENDS[backend][1]
    r = client(stack.h, "dev_a").request(body, method=method, path=stack.path(backend),
                                         headers=hdrs, chunked=upload == "chunked")
    assert_arrived(stack, backend, r, body, hdrs, method, upload == "chunked")


# --- Expect: 100-continue -------------------------------------------------------------
def raw(stack, device="dev_a"):
    return RawClient(stack.h.port, stack.gt.pki.ca_cert_path, stack.gt.devices[device])


def raw_headers(tid, extra=None):
    h = {"User-Agent": "MDM/1.0 raw", "X-Test-Id": tid, "Content-Type": CHECKIN_CT}
    h.update(extra or {})
    return list(h.items())


@pytest.mark.parametrize("size", ["small", "over-cap"])
@pytest.mark.parametrize("backend,upload", matrix_params())
def test_expect_100_continue(stack, gt, backend, upload, size):
    dev = gt.devices["dev_a"]
    fields = messages(dev.enrollment_id)["Authenticate"]
    body = plist(fields, "xml") if size == "small" else padded(fields, 3 * MAX_BODY)
    sent = device_headers(dev, body)
    tid = os.urandom(8).hex()
    method = BACKENDS[backend][1]
    chunked = upload == "chunked"
    with raw(stack) as c:
        resp = c.request(method, stack.path(backend), raw_headers(tid, sent), [body],
                         length=None if chunked else len(body), chunked=chunked, expect_100=True)
    assert resp.interim == [100], "the client waits for 100 Continue before sending its body"
    resp.test_id = tid
    assert_arrived(stack, backend, resp, body, sent, method, chunked)


@pytest.mark.parametrize("upload", ["content-length", "chunked"])
def test_expect_100_continue_gettoken(stack, gt, upload):
    dev = gt.devices["dev_a"]
    body = plist(messages(dev.enrollment_id)["GetToken"], "binary")
    tid = os.urandom(8).hex()
    with raw(stack) as c:
        resp = c.request("PUT", stack.path("location-proxypass"), raw_headers(tid), [body],
                         length=None if upload == "chunked" else len(body),
                         chunked=upload == "chunked", expect_100=True)
    assert resp.interim == [100]
    verify_maid_token(token_from_response(_as_response(resp, tid)), gt.pki.maid_rsa.public_key,
                      stack.h.vhosts[0].uuid, time.time())
    assert stack.backend.seen(tid) == []


class _Headers:
    def __init__(self, pairs):
        self.pairs = pairs

    def get(self, name, default=None):
        for k, v in self.pairs:
            if k.lower() == name.lower():
                return v
        return default


def _as_response(raw_resp, tid):
    from gt_client import Response
    return Response(raw_resp.status, _Headers(raw_resp.headers), raw_resp.body, tid)


# --- clients that hang up mid-body ---------------------------------------------------------
@pytest.mark.parametrize("where", ["before-cap", "after-cap"])
@pytest.mark.parametrize("upload", ["content-length", "chunked"])
@pytest.mark.parametrize("backend", ["location-proxypass", "cgi", "reflector"])
def test_client_abort_mid_body(stack, client, gt, backend, upload, where):
    h = stack.h
    mark = h.log_mark()
    tid = os.urandom(8).hex()
    total = 4 * MAX_BODY if where == "after-cap" else MAX_BODY // 2
    cut = 3 * MAX_BODY if where == "after-cap" else MAX_BODY // 4
    chunked = upload == "chunked"
    method = BACKENDS[backend][1]
    c = raw(stack)
    hdrs = raw_headers(tid)
    hdrs.append(("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(total)))
    c.send_head(method, stack.path(backend), hdrs)
    c.send_body(pattern_body(total, tid.encode()), chunked, limit=cut)
    time.sleep(0.3)          # let the server get into the middle of the body
    c.abort()
    # the server carries on: nothing crashed, the next request is served
    time.sleep(0.5)
    assert h.crash_lines(mark) == []
    assert h._alive(h.pid)
    if BACKENDS[backend][0] == "proxy":
        for rec in stack.backend.seen(tid):
            assert not rec.complete, "a cut-off body reached the backend as if it were whole"
    dev = gt.devices["dev_a"]
    body = plist(messages(dev.enrollment_id)["CheckOut"], "xml")
    hd = device_headers(dev, body)
    r = client(h, "dev_a").request(body, method=method, path=stack.path(backend), headers=hd)
    assert_arrived(stack, backend, r, body, hd, method, False)


# --- 50 MB: streamed through, memory bounded by the cap --------------------------------------
BIG = 50 * 1024 * 1024


def children_mem(h):
    return {pid: mem_kb(pid) for pid in children(h.pid)}


def warm_up(stack, client, dev, backend):
    """A few pass-through check-ins, so every worker thread has its TLS
    state and pools before a memory baseline is taken."""
    for _ in range(4):
        b = plist(messages(dev.enrollment_id)["CheckOut"], "binary")
        hd = device_headers(dev, b)
        assert_arrived(stack, backend, client(stack.h, "dev_a").request(
            b, path=stack.path(backend), headers=hd), b, hd, "PUT", False)


@pytest.mark.parametrize("upload", ["content-length", "chunked"])
@pytest.mark.parametrize("backend", ["location-proxypass", "vhost-proxypass"])
def test_50mb_streams_through_with_bounded_memory(fresh_stack, client, gt, backend, upload):
    stack = fresh_stack
    h = stack.h
    dev = gt.devices["dev_a"]
    warm_up(stack, client, dev, backend)
    before = children_mem(h)
    tid = os.urandom(8).hex()
    seed = tid.encode()
    chunked = upload == "chunked"
    t0 = time.time()
    with raw(stack) as c:
        resp = c.request("PUT", stack.path(backend), raw_headers(tid), pattern_body(BIG, seed),
                         length=None if chunked else BIG, chunked=chunked)
    elapsed = time.time() - t0
    assert resp.status == 200 and resp.body == MARKER + tid.encode(), (resp.status, resp.body[:200])
    rec = stack.backend.wait(tid)
    assert rec is not None and rec.complete, rec
    assert rec.body_len == BIG
    assert rec.body_sha256 == pattern_sha256(BIG, seed)
    if not chunked:
        assert rec.header("Content-Length") == str(BIG)
    after = children_mem(h)
    grew = {pid: after[pid]["VmHWM"] - before[pid]["VmHWM"]
            for pid in after if pid in before and after[pid] and before[pid]}
    new_hwm = [after[pid]["VmHWM"] for pid in after if pid not in before and after[pid]]
    base = max(m["VmHWM"] for m in before.values() if m)
    bound_kb = MAX_BODY // 1024 + 6 * 1024
    assert grew, "no httpd child to measure"
    assert max(grew.values()) <= bound_kb, \
        "an httpd child's peak RSS grew by %d kB for a %d MB body (bound %d kB); %r -> %r" % (
            max(grew.values()), BIG >> 20, bound_kb, before, after)
    for hwm in new_hwm:
        assert hwm - base <= bound_kb, (before, after)
    assert elapsed < 120


# --- many tiny chunks: what is kept for the replay stays bounded by the cap -----------------
@pytest.mark.parametrize("msg", ["Authenticate", "GetToken"])
def test_tiny_chunks_memory_bounded(fresh_stack, client, gt, msg):
    """A body of ~cap bytes in 1-byte chunks: the module keeps those bytes for the
    replay; that must cost about the bytes, not a bucket per byte."""
    stack = fresh_stack
    h = stack.h
    dev = gt.devices["dev_a"]
    body = padded(messages(dev.enrollment_id)[msg], MAX_BODY - 100)
    backend = "location-proxypass"
    warm_up(stack, client, dev, backend)
    before = children_mem(h)
    tid = os.urandom(8).hex()
    wire = b"".join(b"1\r\n" + body[i:i + 1] + b"\r\n" for i in range(len(body))) + b"0\r\n\r\n"
    with raw(stack) as c:
        c.send_head("PUT", stack.path(backend),
                    raw_headers(tid) + [("Transfer-Encoding", "chunked")])
        for i in range(0, len(wire), 256 * 1024):
            c.sock.sendall(wire[i:i + 256 * 1024])
        resp = c.read_response("PUT")
    if msg == "GetToken":
        verify_maid_token(token_from_response(_as_response(resp, tid)), gt.pki.maid_rsa.public_key,
                          stack.h.vhosts[0].uuid, time.time())
        assert stack.backend.seen(tid) == []
    else:
        assert resp.status == 200 and resp.body == MARKER + tid.encode(), (resp.status, resp.body[:200])
        rec = stack.backend.wait(tid)
        assert rec is not None and rec.complete and rec.body == body
    after = children_mem(h)
    grew = max(after[p]["VmHWM"] - before[p]["VmHWM"] for p in after if p in before and after[p] and before[p])
    bound_kb = 2 * MAX_BODY // 1024 + 4 * 1024
    assert grew <= bound_kb, "peak RSS grew by %d kB keeping a %d-byte body (bound %d kB)" % (
        grew, len(body), bound_kb)


# --- an input filter (mod_sed) in front of the MDM: the body is filtered once ------------------
@pytest.mark.parametrize("upload", ["content-length", "chunked"])
@pytest.mark.parametrize("size", ["small", "over-cap"])
def test_input_filter_applies_once(stack, client, gt, upload, size):
    """What the MDM gets with GetToken On is what it gets without mod_gettoken:
    the bytes mod_gettoken read came through the location's input filters
    already, so they must not be put through them a second time."""
    dev = gt.devices["dev_a"]
    fields = messages(dev.enrollment_id)["Authenticate"]
    body = plist(fields, "xml") if size == "small" else padded(fields, 3 * MAX_BODY)
    want = body.replace(b"MessageType", b"MessageTypeX")
    c = client(stack.h, "dev_a")
    seen = {}
    for on in (False, True):
        r = c.request(body, path=stack.path("sed-proxy", on), chunked=upload == "chunked")
        assert r.status == 200 and r.body == MARKER + r.test_id.encode(), (r.status, r.body[:200])
        rec = stack.backend.wait(r.test_id)
        assert rec is not None and rec.complete
        seen[on] = rec.body
    assert seen[False] == want, "mod_sed itself did not filter as expected"
    assert seen[True] == want, "with GetToken On the body was filtered %s" % (
        "twice" if b"MessageTypeXX" in seen[True] else "differently")


def test_no_child_crashed_during_the_matrix(stack):
    """Last in this file: the shared httpd is still up and its error log shows no crash."""
    assert stack.h._alive(stack.h.pid)
    assert stack.h.crash_lines(0) == []
