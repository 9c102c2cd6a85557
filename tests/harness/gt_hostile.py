# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""Hand-made hostile check-in bodies: a binary-plist writer that can lie
(offsets, trailer, counts, references) and XML written as text (entities,
&#0;, nesting) -- what plistlib refuses to produce."""
import struct
import uuid

MAID = "com.apple.maid"
PAIRING = "com.apple.watch.pairing"


# --- binary plists, object by object --------------------------------------------------
def _int(n):
    for size, code in ((1, 0), (2, 1), (4, 2), (8, 3)):
        if n < 256 ** size:
            return bytes([0x10 | code]) + n.to_bytes(size, "big")
    raise ValueError(n)


def _marker(kind, n):
    return bytes([kind | n]) if n < 15 else bytes([kind | 0x0F]) + _int(n)


class BPlist:
    """Objects are appended in order (add() returns the index); serialize()
    writes them with an offset table and a trailer, each part overridable."""

    def __init__(self):
        self.objs = []

    def add(self, kind, value=None):
        self.objs.append((kind, value))
        return len(self.objs) - 1

    def s(self, text):
        """An ASCII string, or UTF-16 when it is not ASCII (or holds a NUL on purpose)."""
        if isinstance(text, bytes):
            return self.add("ascii", text)
        try:
            return self.add("ascii", text.encode("ascii"))
        except UnicodeEncodeError:
            return self.add("utf16", text)

    def _encode(self, kind, v, ref_size):
        ref = lambda i: i.to_bytes(ref_size, "big")     # noqa: E731
        if kind == "ascii":
            return _marker(0x50, len(v)) + v
        if kind == "utf16":
            raw = v.encode("utf-16-be")
            return _marker(0x60, len(raw) // 2) + raw
        if kind == "int":
            return _int(v)
        if kind == "real":
            return b"\x23" + struct.pack(">d", v)
        if kind == "date":
            return b"\x33" + struct.pack(">d", v)
        if kind == "bool":
            return b"\x09" if v else b"\x08"
        if kind == "data":
            return _marker(0x40, len(v)) + v
        if kind == "array":
            return _marker(0xA0, len(v)) + b"".join(ref(i) for i in v)
        if kind == "dict":
            return (_marker(0xD0, len(v)) + b"".join(ref(k) for k, _ in v)
                    + b"".join(ref(x) for _, x in v))
        if kind == "raw":
            return v
        raise ValueError(kind)

    def serialize(self, top=0, ref_size=None, off_size=None, num_objects=None,
                  table_offset=None, patch_offsets=None):
        ref_size = ref_size if ref_size is not None else (1 if len(self.objs) < 256 else 2)
        out = b"bplist00"
        offsets = []
        for kind, v in self.objs:
            offsets.append(len(out))
            out += self._encode(kind, v, max(ref_size, 1))
        real_table = len(out)
        if off_size is None:
            off_size = 1 if real_table < 256 else 2 if real_table < 65536 else 4
        if patch_offsets:
            offsets = patch_offsets(offsets)
        out += b"".join(o.to_bytes(max(off_size, 1), "big") for o in offsets)
        out += bytes(6) + bytes([off_size, ref_size])
        out += (len(self.objs) if num_objects is None else num_objects).to_bytes(8, "big")
        out += top.to_bytes(8, "big")
        out += (real_table if table_offset is None else table_offset).to_bytes(8, "big")
        return out


def bp_gettoken(udid, service=MAID, message="GetToken", extra=None):
    """A BPlist whose object 0 is the top dict of a GetToken.  extra(bp) ->
    [(key index, value index)] adds entries built in the same object table."""
    bp = BPlist()
    top = bp.add("dict", [])
    entries = [(bp.s("MessageType"), bp.s(message)), (bp.s("TokenServiceType"), bp.s(service))]
    if udid is not None:
        entries.append((bp.s("UDID"), bp.s(udid)))
    if extra:
        entries += extra(bp)
    bp.objs[top] = ("dict", entries)
    return bp


def bp_token_parameters(udid, make_params):
    """A GetToken whose TokenParameters is the object make_params(bp) returns."""
    return bp_gettoken(udid, extra=lambda bp: [(bp.s("TokenParameters"), make_params(bp))])


# --- XML written as text ---------------------------------------------------------------
XML_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
            '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n')


def xs(text):
    return "<string>%s</string>" % text


def xml_gettoken(udid=None, service=MAID, extra="", head=XML_HEAD, message="GetToken"):
    """extra: raw XML (keys and values) appended inside the top dict; udid and
    service are raw XML text too (None: the key is left out)."""
    inner = "<key>MessageType</key>%s" % xs(message)
    if service is not None:
        inner += "<key>TokenServiceType</key>%s" % xs(service)
    if udid is not None:
        inner += "<key>UDID</key>%s" % xs(udid)
    return (head + '<plist version="1.0"><dict>%s%s</dict></plist>\n' % (inner, extra)).encode()



def billion_laughs(udid):
    ents = ['<!ENTITY lol0 "lol">']
    ents += ['<!ENTITY lol%d "%s">' % (i, ("&lol%d;" % (i - 1)) * 10) for i in range(1, 10)]
    head = ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist [\n%s\n]>\n' % "\n".join(ents))
    return xml_gettoken(udid, service="&lol9;", head=head)


def external_entity(udid):
    head = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<!DOCTYPE plist [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n')
    return xml_gettoken(udid + "&xxe;", head=head)


def pairing_params(udid):
    return {"SecurityToken": "sec-" + uuid.uuid4().hex, "PhoneUDID": udid,
            "WatchUDID": "00008006-" + uuid.uuid4().hex[:16].upper()}
