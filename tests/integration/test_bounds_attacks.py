# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""Bodies that made libplist abort a child or balloon it.

Each is sent without a client certificate, as any attacker could; the child
must answer with the contract's status, stay alive and small, and answer a
good GetToken right after."""
import struct
import time

import pytest

from gt_client import gettoken_fields, token_from_response, verify_maid_token
from gt_httpd import assert_refused


# --- a binary plist writer that writes whatever it is told ----------------
def _count(kind, n):
    if n < 15:
        return bytes([kind << 4 | n])
    return bytes([kind << 4 | 0xF, 0x13]) + n.to_bytes(8, "big")


def ascii_obj(s):
    return _count(0x5, len(s)) + s


def utf16_obj(s):
    b = s.encode("utf-16-be")
    return _count(0x6, len(b) // 2) + b


def container(kind, refs, ref_size=1):
    n = len(refs) // 2 if kind == 0xD else len(refs)
    return _count(kind, n) + b"".join(r.to_bytes(ref_size, "big") for r in refs)


def bplist(objects, ref_size=1):
    out, offsets = bytearray(b"bplist00"), []
    for o in objects:
        offsets.append(len(out))
        out += o
    table = len(out)
    for off in offsets:
        out += off.to_bytes(4, "big")
    out += bytes(6) + bytes([4, ref_size]) + struct.pack(">QQQ", len(objects), 0, table)
    return bytes(out)


def utf16_nul_key_gettoken(udid):
    """A GetToken whose TokenParameters key is "a" U+0000 in UTF-16."""
    return bplist([
        container(0xD, [1, 3, 5, 7, 2, 4, 6, 8]),
        ascii_obj(b"MessageType"), ascii_obj(b"GetToken"),
        ascii_obj(b"TokenServiceType"), ascii_obj(b"com.apple.maid"),
        ascii_obj(b"UDID"), ascii_obj(udid.encode()),
        ascii_obj(b"TokenParameters"), container(0xD, [9, 10]),
        utf16_obj("a\0"), ascii_obj(b"v"),
    ])


def one_string_many_references(refs=4095, size=56000):
    """Under 64 KiB on the wire; libplist would copy the string per reference."""
    return bplist([container(0xA, [1] * refs, 2), ascii_obj(b"A" * size)], ref_size=2)


# --- the children --------------------------------------------------------
def assert_no_child_died(h, mark):
    # the parent notices a dead child within its once-a-second maintenance
    time.sleep(1.5)
    dead = h.crash_lines(mark)
    assert not dead, dead


def assert_good_gettoken(h, client, gt):
    dev = gt.devices["dev_a"]
    r = client(h, "dev_a").checkin(gettoken_fields(udid=dev.enrollment_id), fmt="binary")
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key, h.vhosts[0].uuid,
                      time.time())


@pytest.mark.gt_log("GT01407")
def test_utf16_nul_key_gettoken_is_400_and_the_child_lives(server, client, gt):
    h = server
    body = utf16_nul_key_gettoken(gt.devices["dev_a"].enrollment_id)
    mark = h.log_mark()
    r = client(h, None).request(body)
    assert_refused(h, r, 400, r"NUL", mark)
    assert_no_child_died(h, mark)
    assert_good_gettoken(h, client, gt)


EXPANSION_BODIES = {
    # one ~56 KB string, referenced 4095 times from one array
    "flat": one_string_many_references(),
    # array of 60 refs to an array of 60 refs to a ~56 KB string
    "nested": bplist([container(0xA, [1] * 60), container(0xA, [2] * 60),
                      ascii_obj(b"A" * 56000)]),
}


@pytest.mark.parametrize("shape", sorted(EXPANSION_BODIES))
def test_expansion_bomb_passes_on_without_expanding(server, client, gt, shape):
    h = server
    body = EXPANSION_BODIES[shape]
    assert len(body) <= 65536
    before = sum(h.rss_kb().values())
    mark = h.log_mark()
    c = client(h, None)
    for _ in range(3):
        r = c.request(body)
        # over the bounds, so not a GetToken: the MDM's, byte for byte
        assert r.status == 200 and r.body.startswith(b"BACKEND-OK"), (r.status, r.body[:200])
        rec = h.record(r.test_id)
        assert rec is not None and rec[1] == body
    after = sum(h.rss_kb().values())
    # libplist would have built over 200 MB per request
    assert after - before < 48 * 1024, (before, after)
    assert not h.wait_log(mark, r"gettoken.*(refused|error)", timeout=0.2)
    assert_no_child_died(h, mark)
    assert_good_gettoken(h, client, gt)
