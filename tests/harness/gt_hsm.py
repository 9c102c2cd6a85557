# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""A SoftHSM 2 token for the tests: keys imported into it exist nowhere else
afterwards; httpd reaches them through pkcs11: URIs (OpenSSL's pkcs11
engine).  httpd must run with SOFTHSM2_CONF pointing at the returned file."""
import os
import subprocess

from gt_httpd import run_user
from gt_pki import key_pem

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "4321"
TOKEN = "mdm"


def softhsm_token(directory, keys):
    """Initialise token TOKEN under directory and import keys, a dict
    object label -> (private key, hex id).  Returns the SOFTHSM2_CONF path."""
    tokens = os.path.join(directory, "tokens")
    os.makedirs(tokens)
    conf = os.path.join(directory, "softhsm2.conf")
    with open(conf, "w") as f:
        f.write("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n" % tokens)
    env = dict(os.environ, SOFTHSM2_CONF=conf)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--pin", PIN,
                    "--so-pin", "87654321"], check=True, env=env, capture_output=True)
    for label, (key, key_id) in keys.items():
        keyfile = os.path.join(directory, "import.pem")
        with open(keyfile, "wb") as f:
            f.write(key_pem(key))
        subprocess.run(["softhsm2-util", "--import", keyfile, "--token", TOKEN, "--label", label,
                        "--id", key_id, "--pin", PIN], check=True, env=env, capture_output=True)
        os.remove(keyfile)   # from now on the key exists only inside the token
    # httpd's children (the run user) reopen the token after fork
    user = run_user()
    if user:
        for root, dirs, files in os.walk(directory):
            for n in dirs + files:
                os.chown(os.path.join(root, n), user[1], user[2])
            os.chown(root, user[1], user[2])
    return conf


def pkcs11_uri(obj, pin=PIN, module=True):
    u = "pkcs11:token=%s;object=%s;type=private?pin-value=%s" % (TOKEN, obj, pin)
    return u + ("&module-path=" + SOFTHSM_MODULE if module else "")
