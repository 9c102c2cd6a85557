# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""demo.sh's Python half: a throwaway PKI + one enrolled device, httpd with
mod_gettoken on https://127.0.0.1:<port>/mdm/checkin, one GetToken, and the
decoded token. Uses the same helpers as the integration tests.

usage: tests/harness/gt_demo.py [--once] [--port 8443] [--dir DIR]
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gt_client import checkin_body, decode_unverified, gettoken_fields, signature_valid  # noqa: E402
from gt_env import Env  # noqa: E402
from gt_httpd import GETTOKEN_SO, CHECKIN_PATH  # noqa: E402
import plistlib  # noqa: E402


def get_token(env, h, vh, dev, port, url):
    """One GetToken as the enrolled device, printed with its decoded token;
    True when the token's signature and claims are right."""
    body = checkin_body(gettoken_fields(udid=dev.enrollment_id))
    body_path = os.path.join(env.dir, "gettoken.plist")
    with open(body_path, "wb") as f:
        f.write(body)
    print("GetToken request as the enrolled device:\n" + body.decode())
    with env.client(port, dev) as c:
        r = c.request(body)
    print("HTTP %d, Content-Type: %s" % (r.status, r.header("Content-Type")))
    ok = False
    if r.status != 200:
        print(r.body.decode(errors="replace"))
        print("error log tail:\n" + h.log_tail(10))
    else:
        token = plistlib.loads(r.body)["TokenData"].decode()
        header, claims, _ = decode_unverified(token)
        print("token:   %s" % token)
        print("header:  %s" % json.dumps(header))
        print("claims:  %s" % json.dumps(claims, indent=2))
        ok = (signature_valid(token, env.pki.maid_rsa.public_key) and claims.get("iss") == vh.uuid
              and claims.get("service_type") == "com.apple.maid"
              and abs(claims.get("iat", 0) - time.time()) < 60)
        print("signature verified with %s: %s" % (env.pki.maid_rsa.cert_path, "yes" if ok else "NO"))
    print("\nthe same request with curl:\n  curl --cacert %s --cert %s --key %s -X PUT \\\n"
          "       -H 'Content-Type: application/x-apple-aspen-mdm-checkin' --data-binary @%s %s"
          % (env.pki.ca_cert_path, dev.cert_path, dev.key_path, body_path, url))
    return ok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--once", action="store_true", help="stop httpd after the request")
    ap.add_argument("--port", type=int, default=8443)
    ap.add_argument("--dir", help="work directory (default: a new /tmp/gettoken-demo-*)")
    a = ap.parse_args(argv)

    if not os.path.exists(GETTOKEN_SO):
        print("demo: %s is missing: build first (autoreconf -fi && ./configure && make)" % GETTOKEN_SO)
        return 1
    env = Env(base=a.dir, prefix="gettoken-demo-", device_names=("dev_a",))
    dev = env.devices["dev_a"]
    vh = env.vhost(port=a.port, server_name="localhost")
    h = env.httpd([vh])
    print("work directory:   %s" % env.dir)
    print("httpd config:     %s" % h.conf)
    print("enrollment DB:    %s (device UDID %s, cert sha256 %s)" % (env.db, dev.enrollment_id, dev.sha256))
    print("server UUID:      %s" % vh.uuid)
    print("signing key:      %s (RSA-2048, RS256)" % env.pki.maid_rsa.key_path)
    try:
        h.start()
    except RuntimeError as e:
        print("demo: httpd did not start:\n%s" % e)
        return 1
    url = "https://127.0.0.1:%d%s" % (a.port, CHECKIN_PATH)
    print("httpd is up:      %s (pid %s)\n" % (url, h.pid))

    ok = False
    try:
        ok = get_token(env, h, vh, dev, a.port, url)
    finally:
        if a.once:
            h.stop()
            print("\nhttpd stopped (--once); files kept in %s" % env.dir)
        else:
            print("\nhttpd keeps running. Stop it with:\n  /usr/sbin/apache2 -f %s -k stop" % h.conf)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
