# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
# Sourced by tests/run and demo.sh: Debian packages and the in-tree build.
# shellcheck shell=bash

# What ./demo.sh needs: the build, apache2 with SQLite for mod_dbd, and the
# Python the demo client uses.
GT_DEMO_PACKAGES="build-essential autoconf automake libtool pkg-config apache2 apache2-dev
 libapr1-dev libaprutil1-dev libaprutil1-dbd-sqlite3 libplist-dev libssl-dev
 python3-jwt python3-cryptography"

# What tests/run needs on top: unit tests (check), PostgreSQL and MariaDB
# (servers and apr-util drivers), an HSM (SoftHSM + OpenSSL's pkcs11 engine),
# pytest, and the Debian package build (dpkg-buildpackage; apache2-dev
# provides dh-apache2's dh_apache2).
GT_PACKAGES="$GT_DEMO_PACKAGES apache2-utils libaprutil1-dbd-pgsql check sqlite3
 python3-pytest postgresql mariadb-server mariadb-client libaprutil1-dbd-mysql softhsm2 libengine-pkcs11-openssl opensc curl
 dpkg-dev debhelper fakeroot
 clang-14 libclang-rt-14-dev openssl"

# Install whatever of the given packages (default: GT_PACKAGES) is missing
# (apt-get update once, only if something is missing).
gt_install_deps() {
    local missing=() p
    for p in ${*:-$GT_PACKAGES}; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "== installing missing Debian packages: ${missing[*]}"
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update </dev/null || return 1
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y \
        "${missing[@]}" </dev/null || return 1
}

# autoreconf + configure + make, in the source tree.
gt_build() {
    echo "== autoreconf -fi && ./configure && make -j2"
    autoreconf -fi </dev/null && ./configure </dev/null && make -j2 </dev/null
}
