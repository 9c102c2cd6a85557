# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""Throwaway PKI and enrollment database for the mod_gettoken tests and demo.

Everything is generated with python3-cryptography into a directory that the
caller owns. Private keys are written 0600 (httpd reads them in the root
parent at start-up); certificates are world readable.
"""
import datetime
import hashlib
import ipaddress
import os
import sqlite3
import uuid
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SQLITE_SCHEMA = os.path.join(REPO, "conf", "schema", "sqlite.sql")
FALLBACK_SCHEMA = ("CREATE TABLE IF NOT EXISTS cert_auth_associations "
                   "(id TEXT NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (id, sha256));")


def _write(path, data, mode):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    return path


def key_pem(key, traditional=False):
    fmt = (serialization.PrivateFormat.TraditionalOpenSSL if traditional
           else serialization.PrivateFormat.PKCS8)
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def cert_sha256(cert):
    """Lowercase hex SHA-256 of the certificate DER (what the DB stores)."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _name(cn, org="mod_gettoken tests"):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject, pubkey, issuer, issuer_key, ca=False, san=None, eku=None, days=30):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder()
         .subject_name(subject).issuer_name(issuer).public_key(pubkey)
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False),
                            critical=True)
    else:
        b = b.add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False),
                            critical=True)
    if san:
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


@dataclass
class Identity:
    """A key + certificate pair on disk."""
    name: str
    key: object
    cert: x509.Certificate
    key_path: str
    cert_path: str
    sha256: str = ""
    enrollment_id: str = ""          # UDID or EnrollmentID it is enrolled for ('' = not enrolled)

    @property
    def public_key(self):
        return self.cert.public_key()


DEVICE_NAMES = ("dev_a", "dev_b", "dev_user", "dev_unenrolled", "dev_rogue")


class PKI:
    """CA, server certificate, device identities and token signing keys.

    Attributes:
      ca_cert_path, server (Identity)
      devices: dict name -> Identity (device identity certificates)
      maid_rsa: RSA-2048 key + self-signed certificate (RS256)
      maid_ec: EC P-256 key + self-signed certificate (ES256)
      maid_rsa2: a second RSA-2048 key (a second organisation)
      rsa1024: RSA-1024 key (too weak, misconfiguration tests)
    """

    def __init__(self, directory, device_names=DEVICE_NAMES):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        os.chmod(directory, 0o755)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca_name = _name("mod_gettoken test CA")
        self.ca_cert = _cert(self.ca_name, self.ca_key.public_key(), self.ca_name, self.ca_key, ca=True)
        self.ca_cert_path = _write(self.path("ca.pem"), cert_pem(self.ca_cert), 0o644)
        # A CA nobody configured: its devices must never pass a CA check.
        self.rogue_ca_key = ec.generate_private_key(ec.SECP256R1())
        self.rogue_ca_name = _name("unknown CA", org="elsewhere")
        self.rogue_ca_cert = _cert(self.rogue_ca_name, self.rogue_ca_key.public_key(),
                                   self.rogue_ca_name, self.rogue_ca_key, ca=True)

        self.server = self._issue("server", ec.generate_private_key(ec.SECP256R1()),
                                  san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                       x509.DNSName("localhost")],
                                  eku=[ExtendedKeyUsageOID.SERVER_AUTH])
        self.devices = {}
        for n in device_names:
            rogue = n == "dev_rogue"
            # dev_b carries an RSA key so both key types are seen as client certs.
            key = rsa.generate_private_key(65537, 2048) if n == "dev_b" else ec.generate_private_key(ec.SECP256R1())
            self.devices[n] = self._issue(n, key, eku=[ExtendedKeyUsageOID.CLIENT_AUTH],
                                          issuer=(self.rogue_ca_name, self.rogue_ca_key) if rogue else None)
        self.maid_rsa = self._self_signed("maid_rsa", rsa.generate_private_key(65537, 2048))
        self.maid_rsa2 = self._self_signed("maid_rsa2", rsa.generate_private_key(65537, 2048))
        self.maid_ec = self._self_signed("maid_ec", ec.generate_private_key(ec.SECP256R1()),
                                         traditional=True)
        self.rsa1024 = self._self_signed("rsa1024", rsa.generate_private_key(65537, 1024))

    def path(self, name):
        return os.path.join(self.dir, name)

    def issue_client(self, name):
        """Another client identity issued by the test CA (EC P-256)."""
        return self._issue(name, ec.generate_private_key(ec.SECP256R1()),
                           eku=[ExtendedKeyUsageOID.CLIENT_AUTH])

    def _issue(self, name, key, san=None, eku=None, issuer=None):
        iname, ikey = issuer or (self.ca_name, self.ca_key)
        cert = _cert(_name(name), key.public_key(), iname, ikey, san=san, eku=eku)
        ident = Identity(name, key, cert,
                         _write(self.path(name + ".key"), key_pem(key), 0o600),
                         _write(self.path(name + ".pem"), cert_pem(cert), 0o644),
                         sha256=cert_sha256(cert))
        return ident

    def _self_signed(self, name, key, traditional=False):
        subject = _name(name, org="MDM server token key")
        cert = _cert(subject, key.public_key(), subject, key)
        return Identity(name, key, cert,
                        _write(self.path(name + ".key"), key_pem(key, traditional), 0o600),
                        _write(self.path(name + ".pem"), cert_pem(cert), 0o644),
                        sha256=cert_sha256(cert))


def new_udid():
    """A device-enrollment UDID in the iOS style (uppercase UUID)."""
    return str(uuid.uuid4()).upper()


def create_enrollment_db(path, rows, owner_uid=None, owner_gid=None):
    """Create an SQLite DB from conf/schema/sqlite.sql (or the fallback table) and
    insert (id, sha256) rows. The directory and file are handed to owner_uid so the
    httpd user can open (and, for the jti table, write) it."""
    d = os.path.dirname(path)
    os.makedirs(d, exist_ok=True)
    schema = FALLBACK_SCHEMA
    if os.path.exists(SQLITE_SCHEMA):
        with open(SQLITE_SCHEMA) as f:
            schema = f.read()
    con = sqlite3.connect(path)
    try:
        con.executescript(schema)
        con.executemany("INSERT OR IGNORE INTO cert_auth_associations (id, sha256) VALUES (?, ?)", rows)
        con.commit()
    finally:
        con.close()
    os.chmod(d, 0o755)
    os.chmod(path, 0o644)
    if owner_uid is not None:
        os.chown(d, owner_uid, owner_gid)
        os.chown(path, owner_uid, owner_gid)
    return path


def enroll_pki_devices(pki):
    """Give the PKI's devices their enrollment ids; return DB rows.

    dev_a, dev_b: device enrollments (UDID); dev_user: a user enrollment
    (EnrollmentID); dev_unenrolled and dev_rogue have ids but no row."""
    rows = []
    for n, dev in pki.devices.items():
        if n == "dev_user":
            dev.enrollment_id = hashlib.sha256(os.urandom(16)).hexdigest()[:40].upper()
        else:
            dev.enrollment_id = new_udid()
        if n in ("dev_a", "dev_b", "dev_user"):
            rows.append((dev.enrollment_id, dev.sha256))
    return rows
