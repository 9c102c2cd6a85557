#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
# mod_gettoken demo: install the missing Debian packages it needs, build, make a
# throwaway PKI and an SQLite enrollment DB with one enrolled device, start httpd
# on https://127.0.0.1:8443/mdm/checkin, send one GetToken as that device and
# print the decoded token.
#   ./demo.sh          leave httpd running afterwards (prints how to stop it)
#   ./demo.sh --once   stop httpd after the request; exit 0 only if the token verified
# Installs only what the demo needs (build tools, apache2, apache2-dev, SQLite
# for mod_dbd, libplist-dev, libssl-dev, python3-jwt, python3-cryptography),
# asks nothing, and changes no configuration of the system's apache2.
set -u
cd "$(dirname "$0")" || exit 1
. tests/integration/deps.sh

once=()
for arg in "$@"; do
    case "$arg" in
        --once) once=(--once) ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "demo.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done

echo "== demo.sh installs these Debian packages if they are missing:"
echo "  " $GT_DEMO_PACKAGES
gt_install_deps $GT_DEMO_PACKAGES </dev/null || { echo "demo.sh: installing packages failed" >&2; exit 1; }
if [ ! -f mod_gettoken/.libs/mod_gettoken.so ] || [ ! -f Makefile ]; then
    gt_build || { echo "demo.sh: build failed" >&2; exit 1; }
else
    echo "== make -j2"
    make -j2 </dev/null || { echo "demo.sh: build failed" >&2; exit 1; }
fi
echo
exec /usr/bin/python3 tests/harness/gt_demo.py --port 8443 "${once[@]}"
