#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""Seed corpora for the fuzz targets, written under OUT (tests/fuzz/build):

  OUT/corpus/<target>/   seeds: real GetToken XML and binary plists, an
                         Mdm-Signature made with `openssl cms`, PEM/DER
                         certificates in every header form, JWS tokens signed
                         with python3-jwt, flat JSON claim sets
  OUT/keys/              the public keys fuzz_jws trusts (the private halves
                         sign the JWS seeds and are kept next to them)

Generated, not committed: keys and certificates are made fresh.  Existing
seeds are left alone, so a corpus grown by earlier runs survives.
"""
import base64
import datetime
import hashlib
import json
import os
import plistlib
import subprocess
import sys
import tempfile
import urllib.parse
import uuid

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

# Must match fuzz_jws.c / fuzz_json.c.
SEED_NOW = 1767225600
SEED_WATCH = "FUZZ-WATCH-UDID-0001"
SEED_SECRET = "fuzz-security-token"

OUT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                      os.path.join(os.path.dirname(__file__), "build"))


def write(target, name, data):
    d = os.path.join(OUT, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- check-in messages ------------------------------------------------------
def checkin_seeds():
    device = {"MessageType": "GetToken", "TokenServiceType": "com.apple.maid",
              "UDID": "00008030-001A2B3C4D5E6F70"}
    user = {"MessageType": "GetToken", "TokenServiceType": "com.apple.maid",
            "EnrollmentID": "B7C2F3A0-1D2E-4F50-8A9B-0C1D2E3F4A5B",
            "EnrollmentUserID": "E1F2A3B4-C5D6-4E7F-8091-A2B3C4D5E6F7",
            "UserShortName": "alice", "UserID": "F0E1D2C3-B4A5-4687-9809-1A2B3C4D5E6F",
            "UserLongName": "Alice Appleseed"}
    pairing = {"MessageType": "GetToken",
               "TokenServiceType": "com.apple.watch.pairing",
               "UDID": "00008030-001A2B3C4D5E6F70",
               "TokenParameters": {"PhoneUDID": "00008030-001A2B3C4D5E6F70",
                                   "SecurityToken": "c2VjcmV0LXNlY3VyaXR5LXRva2Vu",
                                   "WatchUDID": SEED_WATCH}}
    shared = dict(device, TokenParameters={"K%02d" % i: "v" * 300 for i in range(16)})
    nested = dict(device, TokenParameters={"Deep": {"a": [{"b": [1, 2.5, True]}]},
                                           "Blob": b"\x00\x01binary",
                                           "When": datetime.datetime(2026, 1, 1)})
    utf16 = dict(device, UserLongName="Zoë Ünïcødé ☃",
                 TokenParameters={"Schlüssel": "Wert ✓"})
    others = {"MessageType": "Authenticate", "UDID": "x", "Topic": "com.example"}
    messages = {"device": device, "user": user, "pairing": pairing,
                "shared": shared, "nested": nested, "utf16": utf16,
                "other": others}
    for name, msg in messages.items():
        write("fuzz_checkin", name + ".xml", plistlib.dumps(msg, fmt=plistlib.FMT_XML))
        write("fuzz_checkin", name + ".bplist", plistlib.dumps(msg, fmt=plistlib.FMT_BINARY))
    write("fuzz_checkin", "array.bplist", plistlib.dumps(["GetToken", 1], fmt=plistlib.FMT_BINARY))
    write("fuzz_checkin", "comments.xml",
          '<?xml version="1.0" encoding="UTF-8"?>\n<!-- c <dict> -->\n'
          '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
          '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
          '<plist version="1.0"><dict><key>MessageType</key><string>GetToken'
          '</string><key>TokenServiceType</key><string>com.apple.maid</string>'
          '<key>UDID</key><string>a&amp;b&#65;&#x42;<![CDATA[<x>]]></string>'
          '<key>TokenParameters</key><dict/></dict></plist>\n')


def prescan_seeds():
    """fuzz_prescan: bodies one step from a GetToken -- other messages, a
    MessageType a letter off, and the GetToken spellings the pre-scan must
    catch (character references, comments, CDATA, UTF-16).  The first byte
    says what the rest is (fuzz_prescan.c): 0 a body, 1 MessageType's XML
    text, 2/3 a piece of it inside "GetToken", 4 its UTF-16 units, 5/7 a
    piece of them, 6 its ASCII bytes."""
    if os.path.isdir(os.path.join(OUT, "corpus", "fuzz_prescan")):
        return
    base = {"TokenServiceType": "com.apple.maid", "UDID": "00008030-001A2B3C4D5E6F70"}
    types = ["Authenticate", "TokenUpdate", "CheckOut", "GetTokeN", "GetTokenX",
             "etToken", "GetToke\u00f1", "G\u00e9tToken"]
    for i, t in enumerate(types):
        msg = dict(base, MessageType=t)
        write("fuzz_prescan", "type%d.xml" % i, b"\0" + plistlib.dumps(msg, fmt=plistlib.FMT_XML))
        write("fuzz_prescan", "type%d.bplist" % i,
              b"\0" + plistlib.dumps(msg, fmt=plistlib.FMT_BINARY))
        write("fuzz_prescan", "type%d.utf16" % i, b"\4" + t.encode("utf-16-be"))
        write("fuzz_prescan", "type%d.ascii" % i, b"\6" + t.encode())
    for i, spelled in enumerate(["&#71;etToken", "GetT&#x6f;ken", "Get<!-- -->Token",
                                 "Get<![CDATA[Token]]>", "GetTo&amp;ken", "Get&#32;Token",
                                 "GetTokeN", "Authenticate"]):
        write("fuzz_prescan", "spelled%d.xml" % i, b"\1" + spelled.encode())
    # pieces: before letter 3 (k << 3 | mode), in XML and in UTF-16
    for i, piece in enumerate([b"<!-- -->", b"&#84;", b"&amp;", b"x"]):
        write("fuzz_prescan", "insert%d.xml" % i, bytes([3 << 3 | 2]) + piece)
        write("fuzz_prescan", "replace%d.xml" % i, bytes([3 << 3 | 3]) + piece)
    for i, piece in enumerate([b"\xdb\xff\xdf\xff", b"\x00x", b"\xfe\xff"]):
        write("fuzz_prescan", "insert%d.utf16" % i, bytes([3 << 3 | 5]) + piece)
        write("fuzz_prescan", "replace%d.utf16" % i, bytes([3 << 3 | 7]) + piece)


# ---- certificates and identity headers --------------------------------------
def make_cert(key, cn, not_after):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(datetime.datetime(2025, 1, 1))
            .not_valid_after(not_after)
            .sign(key, hashes.SHA256()))


def machineinfo_seeds(tmp):
    """Watch MachineInfo plists, bare; returns the path of one to sign."""
    base = {"UDID": "00008301-000A1B2C3D4E5F60", "SERIAL": "FUZZWATCH01",
            "PRODUCT": "Watch7,1", "VERSION": "21R360"}
    forms = {"watch": base,
             "watch-token": dict(base, PAIRING_TOKEN=b"eyJhbGciOiJFUzI1NiJ9.e30.sig"),
             "phone": dict(base, PRODUCT="iPhone15,2")}
    for name, mi in forms.items():
        write("fuzz_machineinfo", name + ".xml", plistlib.dumps(mi, fmt=plistlib.FMT_XML))
        write("fuzz_machineinfo", name + ".bplist", plistlib.dumps(mi, fmt=plistlib.FMT_BINARY))
    path = os.path.join(tmp, "machineinfo")
    with open(path, "wb") as f:
        f.write(plistlib.dumps(forms["watch-token"], fmt=plistlib.FMT_XML))
    return path


def identity_seeds(tmp):
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    certs = {
        "rsa": (rsa_key, make_cert(rsa_key, "device-rsa", datetime.datetime(2030, 1, 1))),
        # after 2049 the notAfter is a GeneralizedTime
        "ec": (ec_key, make_cert(ec_key, "device-ec", datetime.datetime(2051, 6, 1))),
    }
    body = plistlib.dumps({"MessageType": "GetToken", "TokenServiceType": "com.apple.maid",
                           "UDID": "00008030-001A2B3C4D5E6F70"}, fmt=plistlib.FMT_XML)
    body_path = os.path.join(tmp, "body")
    with open(body_path, "wb") as f:
        f.write(body)
    mi_path = machineinfo_seeds(tmp)
    for name, (key, cert) in certs.items():
        pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        der = cert.public_bytes(serialization.Encoding.DER)
        b64 = base64.b64encode(der).decode()
        write("fuzz_cert_der", name + ".pem", pem)
        write("fuzz_cert_der", name + ".der", der)
        write("fuzz_proxy_cert", name + "-rfc9440", ":" + b64 + ":")
        write("fuzz_proxy_cert", name + "-escaped", urllib.parse.quote(pem, safe=""))
        write("fuzz_proxy_cert", name + "-pem", pem)
        write("fuzz_proxy_cert", name + "-pem-spaces", pem.replace("\n", " "))
        write("fuzz_proxy_cert", name + "-base64", b64)

        cert_path = os.path.join(tmp, name + ".crt")
        key_path = os.path.join(tmp, name + ".key")
        with open(cert_path, "w") as f:
            f.write(pem)
        with open(key_path, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        for md in ("sha256", "sha1"):
            for extra in ([], ["-noattr"]):
                cms = subprocess.run(
                    ["openssl", "cms", "-sign", "-binary", "-in", body_path,
                     "-signer", cert_path, "-inkey", key_path, "-md", md,
                     "-outform", "DER"] + extra,
                    check=True, capture_output=True).stdout
                seed = base64.b64encode(cms) + b"\n" + body
                write("fuzz_mdm_signature",
                      "%s-%s%s" % (name, md, "-noattr" if extra else ""), seed)
        # a watch's MachineInfo signed with its content attached, as a watch
        # sends it to the enrollment profile URL
        cms = subprocess.run(
            ["openssl", "cms", "-sign", "-binary", "-nodetach", "-in", mi_path,
             "-signer", cert_path, "-inkey", key_path, "-outform", "DER"],
            check=True, capture_output=True).stdout
        write("fuzz_machineinfo", name + "-signed", cms)
    return rsa_key, ec_key


def gate_seeds(tmp):
    """fuzz_machineinfo_diff: what the watch gate passes (phones, Macs) and
    the tricks that should not pass (a watch spelt otherwise), bare and
    CMS-signed in several shapes."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert_path, key_path = os.path.join(tmp, "gate.crt"), os.path.join(tmp, "gate.key")
    with open(cert_path, "wb") as f:
        f.write(make_cert(key, "gate-device", datetime.datetime(2030, 1, 1))
                .public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    base = {"UDID": "00008110-000A1B2C3D4E5F60", "SERIAL": "FUZZPHONE01",
            "PRODUCT": "iPhone15,2", "VERSION": "21A360", "LANGUAGE": "en"}
    plists = {}
    for name, product in (("phone", "iPhone15,2"), ("mac", "Mac14,2"), ("ipad", "iPad13,4"),
                          ("watch", "Watch6,1")):
        mi = dict(base, PRODUCT=product)
        plists[name + ".xml"] = plistlib.dumps(mi, fmt=plistlib.FMT_XML)
        plists[name + ".bplist"] = plistlib.dumps(mi, fmt=plistlib.FMT_BINARY)
    xml = plists["phone.xml"]
    plists["charref.xml"] = xml.replace(b"iPhone15,2", b"&#87;atch6,1")
    plists["cdata.xml"] = xml.replace(b"iPhone15,2", b"<![CDATA[Wat]]>ch6,1")
    plists["lower.xml"] = xml.replace(b"iPhone15,2", b"watch6,1")
    plists["comment.xml"] = xml.replace(b"iPhone15,2", b"Wa<!-- x -->tch6,1")
    plists["dupkey.xml"] = xml.replace(b"<key>SERIAL</key>",
                                       b"<key>PRODUCT</key><string>Watch6,1</string>"
                                       b"<key>SERIAL</key>")
    plists["casekey.xml"] = xml.replace(b"<key>SERIAL</key>",
                                        b"<key>product</key><string>Watch6,1</string>"
                                        b"<key>SERIAL</key>")
    plists["utf16.bplist"] = plistlib.dumps(dict(base, PRODUCT="Watch6,1\u00e9"),
                                            fmt=plistlib.FMT_BINARY)
    for name, body in plists.items():
        write("fuzz_machineinfo_diff", name, body)
    path = os.path.join(tmp, "phone.xml")
    with open(path, "wb") as f:
        f.write(xml)
    sign = ["openssl", "cms", "-sign", "-binary", "-nodetach", "-in", path, "-signer",
            cert_path, "-inkey", key_path, "-outform", "DER"]
    der = subprocess.run(sign, check=True, capture_output=True).stdout
    write("fuzz_machineinfo_diff", "phone-signed", der)
    write("fuzz_machineinfo_diff", "phone-signed-trailing", der + b"\0")
    write("fuzz_machineinfo_diff", "phone-signed-ber",
          subprocess.run(sign + ["-stream"], check=True, capture_output=True).stdout)
    write("fuzz_machineinfo_diff", "phone-signed-econtent",
          subprocess.run(sign + ["-econtent_type", "1.2.840.113549.1.9.16.1.4"],
                         check=True, capture_output=True).stdout)


# ---- JWS and JSON ----------------------------------------------------------
def claims(**over):
    c = {"iss": "2A3B4C5D-6E7F-4081-9203-A4B5C6D7E8F9", "iat": SEED_NOW - 60,
         "exp": SEED_NOW + 3600, "jti": str(uuid.UUID(int=0x1234, version=4)),
         "service_type": "com.apple.watch.pairing",
         "phone_udid": "00008030-001A2B3C4D5E6F70", "watch_udid": SEED_WATCH,
         "sth": base64.urlsafe_b64encode(hashlib.sha256(SEED_SECRET.encode())
                                         .digest()).rstrip(b"=").decode()}
    c.update(over)
    return c


def jws_seeds(rsa_key, ec_key):
    keys = os.path.join(OUT, "keys")
    os.makedirs(keys, exist_ok=True)
    for name, key in (("rsa", rsa_key), ("ec", ec_key)):
        with open(os.path.join(keys, name + ".pub.pem"), "wb") as f:
            f.write(key.public_key().public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo))
    tokens = {
        "rs256": jwt.encode(claims(), rsa_key, algorithm="RS256"),
        "es256": jwt.encode(claims(), ec_key, algorithm="ES256"),
        "es256-kid": jwt.encode(claims(), ec_key, algorithm="ES256",
                                headers={"kid": "k1"}),
        "expired": jwt.encode(claims(exp=SEED_NOW - 7200, iat=SEED_NOW - 9000),
                              rsa_key, algorithm="RS256"),
        "hs256": jwt.encode(claims(), "secret", algorithm="HS256"),
        "none": jwt.encode(claims(), None, algorithm="none"),
    }
    for name, tok in tokens.items():
        write("fuzz_jws", name, tok)
        write("fuzz_pairing_claim", name, tok)
    objects = {
        "claims": json.dumps(claims()),
        "escapes": json.dumps(claims(iss="\u00e9\u2603\U0001F600 \"q\" \\ \t")),
        "compact": json.dumps(claims(), separators=(",", ":")),
        "types": '{"a":true,"b":false,"c":null,"d":-9223372036854775808,"e":"\\u00e9"}',
        "header": '{"alg":"RS256","typ":"JWT","kid":"k"}',
        "empty": "{}",
    }
    for name, obj in objects.items():
        write("fuzz_json", name, obj)


def main():
    prescan_seeds()     # a target added after the first seeding
    with tempfile.TemporaryDirectory() as tmp:
        # seeded before: keep the keys the corpus was signed with
        if not os.path.isdir(os.path.join(OUT, "keys")):
            checkin_seeds()
            rsa_key, ec_key = identity_seeds(tmp)
            jws_seeds(rsa_key, ec_key)
        if not os.path.isdir(os.path.join(OUT, "corpus", "fuzz_machineinfo_diff")):
            gate_seeds(tmp)
        if not os.path.isdir(os.path.join(OUT, "corpus", "fuzz_pairing_claim")):
            for name, tok in (("es256", jwt.encode(claims(), ec.generate_private_key(
                    ec.SECP256R1()), algorithm="ES256")), ("iss-escaped", jwt.encode(
                    claims(iss="\\u0041bc"), "k", algorithm="HS256"))):
                write("fuzz_pairing_claim", name, tok)


if __name__ == "__main__":
    main()
