# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""conf/examples/gettoken-vhost.conf, the annotated example virtual host,
stays in sync with the module: every directive of the module's table is
documented there (with its default), nothing else is, and httpd accepts the
file as it is shipped once its example paths point at real files.
conf/gettoken.conf, what `a2enmod gettoken` enables, is comments only."""
import os
import re

from gt_httpd import free_port
from gt_pki import REPO
from gt_tpm import SoftTPM

CONF = os.path.join(REPO, "conf", "examples", "gettoken-vhost.conf")
ENABLED_CONF = os.path.join(REPO, "conf", "gettoken.conf")
LOAD = os.path.join(REPO, "conf", "gettoken.load")
# every part declares its directives next to its functions
SOURCES = os.path.join(REPO, "mod_gettoken")


def table_directives():
    found = set()
    for name in os.listdir(SOURCES):
        if name.endswith((".c", ".h")):
            with open(os.path.join(SOURCES, name)) as f:
                found |= set(re.findall(r'AP_INIT_\w+\(\s*"(\w+)"', f.read()))
    return found


def documented_directives(text):
    # a directive's documentation starts with "# Name args   (default...)"
    return set(re.findall(r"^\s*#\s+(GetToken\w*)\s.*\((?:directory; )?(?:default|repeatable|no default)",
                          text, re.M))


def used_directives(text):
    return set(re.findall(r"^\s*(GetToken\w*)\s", text, re.M))


def test_table_has_directives():
    # guards the regex below: the table is where the module declares them
    assert "GetTokenSigningKey" in table_directives()
    assert len(table_directives()) >= 10


def test_every_directive_is_documented_with_its_default():
    with open(CONF) as f:
        text = f.read()
    assert documented_directives(text) == table_directives()


def test_every_directive_is_shown_in_use():
    with open(CONF) as f:
        text = f.read()
    assert used_directives(text) == table_directives()


def test_enabled_conf_is_comments_only():
    """Enabling the module must change nothing until a vhost is configured."""
    with open(ENABLED_CONF) as f:
        lines = f.read().splitlines()
    assert lines, "conf/gettoken.conf is empty"
    active = [l for l in lines if not l.startswith("#")]
    assert active == [], "active lines in conf/gettoken.conf: %r" % active


def test_load_file_declares_its_module_dependencies():
    with open(LOAD) as f:
        text = f.read()
    assert re.search(r"^# Depends: ssl dbd$", text, re.M), text
    assert re.search(r"^LoadModule gettoken_module /usr/lib/apache2/modules/mod_gettoken\.so$",
                     text, re.M), text


def test_reference_config_passes_configtest(gt, monkeypatch):
    """The shipped file, paths replaced by the test PKI, passes apache2 -t
    (its GetTokenKeyProvider tpm2 reaching a software TPM)."""
    tpm = SoftTPM(os.path.join(gt.dir, "refconf-tpm")).start()
    try:
        monkeypatch.setenv("TPM2OPENSSL_TCTI", tpm.tcti)
        _reference_config_passes_configtest(gt)
    finally:
        tpm.stop()


def _reference_config_passes_configtest(gt):
    with open(CONF) as f:
        text = f.read()
    pki = gt.pki
    port = free_port()
    logs = os.path.join(gt.dir, "refconf-logs")
    os.makedirs(logs, exist_ok=True)
    pairing_trust = os.path.join(gt.dir, "refconf-trust.pem")
    with open(pki.maid_rsa2.cert_path) as src, open(pairing_trust, "w") as dst:
        dst.write(src.read())
    subst = {
        "*:443": "127.0.0.1:%d" % port,
        "/etc/mdm/tls/server.pem": pki.server.cert_path,
        "/etc/mdm/tls/server.key": pki.server.key_path,
        "/var/lib/mdm/enrollments.db": gt.db,
        "/etc/mdm/abm-token.key": pki.maid_rsa.key_path,
        "/etc/mdm/abm-token.pem": pki.maid_rsa.cert_path,
        "/etc/mdm/watch-pairing.key": pki.maid_ec.key_path,
        "/etc/mdm/abm-north.key": pki.maid_rsa2.key_path,
        "/etc/mdm/abm-north.pem": pki.maid_rsa2.cert_path,
        "/etc/mdm/abm-south.key": pki.maid_ec.key_path,
        "/etc/mdm/phone-mdm-pairing.pem": pairing_trust,
        "/etc/mdm/apple-device-ca.pem": pki.ca_cert_path,
        "${APACHE_LOG_DIR}": logs,
    }
    for k, v in subst.items():
        assert k in text, "example path %s vanished from the reference config" % k
        text = text.replace(k, v)
    h = gt.httpd(extra_global="Listen 127.0.0.1:%d\n%s" % (port, text))
    rc, out = h.configtest()
    assert rc == 0, out
    # and the same file with a broken key path is refused, naming the directive
    bad = text.replace(pki.maid_rsa.key_path, "/nonexistent/abm-token.key")
    h2 = gt.httpd(extra_global="Listen 127.0.0.1:%d\n%s" % (port, bad))
    rc, out = h2.configtest()
    assert rc != 0 and "GetTokenSigningKey" in out, out
