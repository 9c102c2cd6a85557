# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""Signing keys held by a TPM 2.0: OpenSSL's tpm2 provider in front of a
software TPM (swtpm) behind a resource broker that gives every TCTI
connection its own context, as /dev/tpmrm0 does (tests/harness/gt_tpm.py).
The keys exist only inside the TPM; tokens are verified with their public
keys by python3-jwt."""
import os
import re
import socket
import struct
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from gt_client import decode_unverified, gettoken_fields, token_from_response, verify_maid_token
from gt_httpd import APACHE, httpd_env
from gt_tpm import EC_HANDLE, RSA_HANDLE, SoftTPM

PROVIDER = "GetTokenKeyProvider tpm2"


@pytest.fixture(scope="module")
def tpm(gt):
    t = SoftTPM(os.path.join(gt.dir, "tpm")).start()
    try:
        yield t.make_keys()
    finally:
        t.stop()


@pytest.fixture
def tpm_env(tpm, monkeypatch):
    """httpd (and the tpm2 provider in it) reach the TPM through the broker."""
    monkeypatch.setenv("TPM2OPENSSL_TCTI", tpm.tcti)
    return tpm


def public_key(tpm, handle):
    return load_pem_public_key(tpm.public_pem[handle])


def handle_uri(handle):
    return "handle:" + handle


def get_token(client, gt, v, dev="dev_a"):
    r = client.checkin(gettoken_fields(udid=gt.devices[dev].enrollment_id))
    return token_from_response(r)


def graceful(h, timeout=30):
    mark = h.log_mark()
    subprocess.run([APACHE, "-f", h.conf, "-k", "graceful"], check=True, timeout=60,
                   env=httpd_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert h.wait_log(mark, r"resuming normal operations", timeout=timeout), h.log_tail()
    return mark


def reopened_pids(h, mark, handle, want, timeout=15):
    """The children that opened the TPM key again and signed a test token."""
    rx = re.compile(r"handle:%s .*opened again in this child \(pid (\d+)\), held by tpm2"
                    % re.escape(handle))
    deadline = time.time() + timeout
    while True:
        pids = {int(m.group(1)) for m in rx.finditer(h.log_since(mark))}
        if len(pids) >= want or time.time() > deadline:
            return pids
        time.sleep(0.1)


@pytest.mark.parametrize("handle", [RSA_HANDLE, EC_HANDLE], ids=["rsa2048", "p256"])
def test_tokens_signed_inside_the_tpm_verify(gt, tpm_env, client, start_httpd, handle):
    v = gt.vhost(signing_key=handle_uri(handle))
    h = start_httpd([v], extra_global=PROVIDER)
    pub = public_key(tpm_env, handle)
    c = client(h, "dev_a")
    jtis = {verify_maid_token(get_token(c, gt, v), pub, v.uuid, time.time())["jti"]
            for _ in range(5)}
    assert len(jtis) == 5
    notice = h.wait_log(0, r"organisation 'default'.*%s" % ("RS256" if handle == RSA_HANDLE
                                                             else "ES256"))
    assert notice, h.log_tail()


def test_400_concurrent_gettokens_over_two_children_and_16_threads(gt, tpm_env, start_httpd):
    """Two vhosts (RSA and EC key in one TPM, one provider instance per
    child), two children of 16 threads each, 32 clients at once: every
    token verifies, every jti is new."""
    vr = gt.vhost(signing_key=handle_uri(RSA_HANDLE))
    ve = gt.vhost(signing_key=handle_uri(EC_HANDLE))
    settings = {"StartServers": "2", "ServerLimit": "2", "ThreadsPerChild": "16",
                "MaxRequestWorkers": "32", "MinSpareThreads": "32", "MaxSpareThreads": "32"}
    h = start_httpd([vr, ve], extra_global=PROVIDER, settings=settings)
    assert len(reopened_pids(h, 0, RSA_HANDLE, 2)) == 2, h.log_tail()
    assert len(reopened_pids(h, 0, EC_HANDLE, 2)) == 2, h.log_tail()
    keys = {vr.port: (public_key(tpm_env, RSA_HANDLE), vr), ve.port: (public_key(tpm_env, EC_HANDLE), ve)}

    def worker(i):
        port = vr.port if i % 2 else ve.port
        pub, v = keys[port]
        out = []
        with gt.client(port, "dev_a") as c:
            for _ in range(400 // 32 + 1):
                r = c.checkin(gettoken_fields(udid=gt.devices["dev_a"].enrollment_id))
                out.append((r.status, token_from_response(r) if r.status == 200 else None, pub, v))
        return out

    with ThreadPoolExecutor(32) as pool:
        results = [x for chunk in pool.map(worker, range(32)) for x in chunk][:400]
    assert len(results) == 400
    assert [s for s, *_ in results].count(200) == 400, h.log_tail()
    now = time.time()
    jtis = {verify_maid_token(t, pub, v.uuid, now, slack=120)["jti"] for _, t, pub, v in results}
    assert len(jtis) == 400
    assert not h.wait_log(0, r"gettoken:.*(cannot sign|failed)", timeout=0.5)


def test_graceful_restart_opens_the_key_again(gt, tpm_env, client, start_httpd):
    v = gt.vhost(signing_key=handle_uri(RSA_HANDLE))
    h = start_httpd([v], extra_global=PROVIDER)
    pub = public_key(tpm_env, RSA_HANDLE)
    before = reopened_pids(h, 0, RSA_HANDLE, 1)
    with client(h, "dev_a") as c:
        verify_maid_token(get_token(c, gt, v), pub, v.uuid, time.time())
    mark = graceful(h)
    after = reopened_pids(h, mark, RSA_HANDLE, 1)
    assert after and not after & before, (before, after)
    for _ in range(3):
        with gt.client(h.port, "dev_a") as c:
            verify_maid_token(get_token(c, gt, v), pub, v.uuid, time.time())


def _gettoken_lines(out):
    return [l for l in out.splitlines() if "gettoken:" in l]


def test_missing_handle_stops_configtest(gt, tpm_env):
    v = gt.vhost(signing_key="handle:0x81000099")
    h = gt.httpd([v], extra_global=PROVIDER)
    rc, out = h.configtest()
    assert rc != 0, out
    lines = _gettoken_lines(out)
    assert len(lines) == 1, out
    assert "GetTokenSigningKey handle:0x81000099 in %s" % v.server_name in lines[0], out


def test_unknown_provider_stops_configtest(gt, tpm_env):
    v = gt.vhost(signing_key=handle_uri(RSA_HANDLE))
    h = gt.httpd([v], extra_global=PROVIDER + "\nGetTokenKeyProvider no-such-provider")
    rc, out = h.configtest()
    assert rc != 0, out
    lines = _gettoken_lines(out)
    assert len(lines) == 1, out
    assert "GetTokenKeyProvider no-such-provider in " in lines[0], out
    assert "'no-such-provider'" in lines[0], out


def test_handle_without_its_provider_names_the_directive(gt, tpm_env):
    v = gt.vhost(signing_key=handle_uri(RSA_HANDLE))
    h = gt.httpd([v])
    rc, out = h.configtest()
    assert rc != 0, out
    lines = _gettoken_lines(out)
    assert len(lines) == 1, out
    assert "GetTokenSigningKey %s in %s" % (handle_uri(RSA_HANDLE), v.server_name) in lines[0], out
    assert "no loaded OpenSSL provider opens handle: locations" in lines[0], out
    assert "GetTokenKeyProvider" in lines[0], out


def test_provider_only_in_server_scope(gt, tpm_env):
    v = gt.vhost(signing_key=handle_uri(RSA_HANDLE), directives=PROVIDER)
    rc, out = gt.httpd([v]).configtest()
    assert rc != 0 and "GetTokenKeyProvider" in out, out


def test_trace8_log_holds_no_key_material(gt, tpm_env, client, start_httpd):
    v = gt.vhost(signing_key=handle_uri(EC_HANDLE))
    h = start_httpd([v], extra_global=PROVIDER, loglevel="trace8")
    with client(h, "dev_a") as c:
        tokens = [get_token(c, gt, v) for _ in range(3)]
    log = h.read_error_log()
    assert reopened_pids(h, 0, EC_HANDLE, 1), h.log_tail()
    with open(os.path.join(tpm_env.dir, "k.priv"), "rb") as f:
        blob = f.read()          # the last key's private part, wrapped by the TPM
    assert blob.hex() not in log.lower() and "PRIVATE KEY" not in log
    for t in tokens:
        assert t not in log and t.rsplit(".", 1)[1] not in log


@pytest.mark.gt_log("GT00907", "GT01602")
def test_child_that_cannot_reach_the_tpm_says_so_at_start(gt, client, start_httpd, monkeypatch):
    """The TPM goes away after start-up: the next child that starts logs one
    line naming key, vhost and cause, and its GetTokens get 500 -- not a
    token signed through a connection it inherited from the parent."""
    t = SoftTPM(os.path.join(gt.dir, "tpm-lost")).start()
    try:
        t.make_keys()
        monkeypatch.setenv("TPM2OPENSSL_TCTI", t.tcti)
        v = gt.vhost(signing_key=handle_uri(RSA_HANDLE))
        settings = {"StartServers": "1", "ServerLimit": "1", "MinSpareThreads": "1",
                    "MaxSpareThreads": "8", "MaxRequestWorkers": "8"}
        h = start_httpd([v], extra_global=PROVIDER, settings=settings)
        first = reopened_pids(h, 0, RSA_HANDLE, 1)
        assert len(first) == 1, h.log_tail()
        t.stop()
        mark = h.log_mark()
        os.kill(first.pop(), 9)           # the parent starts a new child
        lines = h.wait_log(mark, r"cannot sign in this child", timeout=20)
        assert len(lines) == 1, h.log_since(mark)
        assert "GetTokenSigningKey %s in %s" % (handle_uri(RSA_HANDLE), v.server_name) in lines[0]
        assert "get 500" in lines[0]
        with client(h, "dev_a") as c:
            r = c.checkin(gettoken_fields(udid=gt.devices["dev_a"].enrollment_id))
        assert r.status == 500
    finally:
        t.stop()


# --- the test TPM itself behaves like /dev/tpmrm0 -----------------------------

def _mssim(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    p = socket.create_connection(("127.0.0.1", port + 1), timeout=10)
    for cmd in (1, 11):           # power on, NV on: acknowledged
        p.sendall(struct.pack(">I", cmd))
        assert p.recv(4) == b"\0\0\0\0"
    return s, p


def _send(sock, cmd):
    sock.sendall(struct.pack(">IBI", 8, 0, len(cmd)) + cmd)
    size = struct.unpack(">I", sock.recv(4))[0]
    resp = b""
    while len(resp) < size + 4:
        resp += sock.recv(size + 4 - len(resp))
    return resp[:size]


def _hash_sequence_start(sock):
    resp = _send(sock, struct.pack(">HII", 0x8001, 14, 0x186) + struct.pack(">HH", 0, 0x000B))
    assert struct.unpack(">I", resp[6:10])[0] == 0, resp.hex()
    return struct.unpack(">I", resp[10:14])[0]


def _sequence_update(sock, handle, data=b"abc"):
    auth = struct.pack(">IHBH", 0x40000009, 0, 0, 0)      # the password session
    body = struct.pack(">I", handle) + struct.pack(">I", len(auth)) + auth \
        + struct.pack(">H", len(data)) + data
    resp = _send(sock, struct.pack(">HII", 0x8002, 10 + len(body), 0x15C) + body)
    return struct.unpack(">I", resp[6:10])[0]


def test_test_tpm_gives_each_connection_its_own_objects(tpm):
    """What makes the fork tests mean something: an object created on one
    connection (a hash sequence) is unknown on another, survives the
    other's commands in between, and is gone when its connection closes."""
    a, pa = _mssim(tpm.port)
    b, pb = _mssim(tpm.port)
    seq_a = _hash_sequence_start(a)
    seq_b = _hash_sequence_start(b)
    assert seq_a >> 24 == 0x80 and seq_a != seq_b
    assert _sequence_update(b, seq_a) != 0, "one connection used another's object"
    assert _sequence_update(a, seq_a) == 0
    assert _sequence_update(b, seq_b) == 0
    assert _sequence_update(a, seq_a) == 0
    for s in (a, pa):
        s.close()
    c, pc = _mssim(tpm.port)
    time.sleep(0.2)
    assert _sequence_update(c, seq_a) != 0, "an object outlived its connection"
    for s in (b, pb, c, pc):
        s.close()


def test_provider_settings_come_from_openssl_cnf(gt, tpm_env, monkeypatch):
    """A provider's section in OpenSSL's configuration applies to the
    module's own library context (pkcs11-provider takes its module path and
    PIN from there): here one that points the tpm2 provider at a module that
    does not exist, so it does not load, and start-up says which."""
    cnf = os.path.join(gt.dir, "openssl-tpm2-elsewhere.cnf")
    with open(cnf, "w") as f:
        f.write("openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n"
                "[provider_sect]\ndefault = default_sect\ntpm2 = tpm2_sect\n"
                "[default_sect]\nactivate = 1\n[tpm2_sect]\nmodule = /nonexistent/tpm2.so\n")
    monkeypatch.setenv("OPENSSL_CONF", cnf)
    h = gt.httpd([gt.vhost(signing_key=handle_uri(RSA_HANDLE))], extra_global=PROVIDER)
    rc, out = h.configtest()
    assert rc != 0, out
    lines = _gettoken_lines(out)
    assert len(lines) == 1 and "GetTokenKeyProvider tpm2 in " in lines[0], out
    assert "OpenSSL cannot load the provider 'tpm2'" in lines[0], out


def test_certificate_check_against_the_tpm_key(gt, tpm_env, client, start_httpd):
    """GetTokenSigningCertificate (made with openssl req -provider tpm2) is
    compared with the key in the TPM at start-up; the other key's
    certificate is refused, naming the directive."""
    good = gt.vhost(signing_key=handle_uri(RSA_HANDLE),
                    directives="GetTokenSigningCertificate %s" % tpm_env.cert_path[RSA_HANDLE])
    h = start_httpd([good], extra_global=PROVIDER)
    with client(h, "dev_a") as c:
        verify_maid_token(get_token(c, gt, good), public_key(tpm_env, RSA_HANDLE), good.uuid,
                          time.time())
    bad = gt.vhost(signing_key=handle_uri(RSA_HANDLE),
                   directives="GetTokenSigningCertificate %s" % tpm_env.cert_path[EC_HANDLE])
    rc, out = gt.httpd([bad], extra_global=PROVIDER).configtest()
    assert rc != 0, out
    assert "GetTokenSigningCertificate %s in %s:%d" % (
        tpm_env.cert_path[EC_HANDLE], bad.server_name, bad.port) in out, out
    assert "the certificate does not match its key" in out, out


def test_tpm_out_of_reach_stops_configtest(gt, monkeypatch):
    """The tpm2 provider loads only when it reaches its TPM: a TCTI that
    leads nowhere stops `apachectl -t`, naming the directive and where it is."""
    monkeypatch.setenv("TPM2OPENSSL_TCTI", "mssim:host=127.0.0.1,port=1")
    h = gt.httpd([gt.vhost(signing_key=handle_uri(RSA_HANDLE))], extra_global=PROVIDER)
    rc, out = h.configtest()
    assert rc != 0, out
    lines = _gettoken_lines(out)
    assert len(lines) == 1, out
    assert "GetTokenKeyProvider tpm2 in the main server (%s:" % h.conf in lines[0], out
    assert "cannot load the provider 'tpm2'" in lines[0], out


def test_tpm_wrapped_key_file_readable_by_root_only(gt, tpm_env, client, start_httpd):
    """A key file that the tpm2 provider decodes ("TSS2 PRIVATE KEY", made by
    openssl genpkey -provider tpm2): useless without the TPM, kept root-only
    like any key file; the children, which do not run as root, still open
    it again (from the bytes the parent read) and sign."""
    blob = os.path.join(tpm_env.dir, "wrapped-p256.pem")
    tpm_env.openssl("genpkey", "-provider", "tpm2", "-provider", "default", "-algorithm", "EC",
                    "-pkeyopt", "group:P-256", "-out", blob)
    pub = load_pem_public_key(tpm_env.openssl("pkey", "-provider", "tpm2", "-provider",
                                              "default", "-in", blob, "-pubout"))
    with open(blob) as f:
        assert f.read().startswith("-----BEGIN TSS2 PRIVATE KEY-----")
    os.chmod(blob, 0o600)
    v = gt.vhost(signing_key=blob)
    h = start_httpd([v], extra_global=PROVIDER)
    with client(h, "dev_a") as c:
        for _ in range(3):
            verify_maid_token(get_token(c, gt, v), pub, v.uuid, time.time())
    rx = re.compile(r"%s .*opened again in this child \(pid \d+\), held by tpm2" % re.escape(blob))
    assert any(rx.search(l) for l in h.read_error_log().splitlines()), h.log_tail()
    assert not h.wait_log(0, r"cannot sign|the key file is", timeout=0.2)
