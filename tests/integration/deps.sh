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
# (servers and apr-util drivers), an HSM (SoftHSM + OpenSSL's pkcs11
# engine), a TPM 2.0 (swtpm, tpm2-tools, the tpm2 OpenSSL provider, the
# mssim TCTI the test TPM is reached by), pytest, and the Debian package
# build (dpkg-buildpackage; apache2-dev provides dh-apache2's dh_apache2).
GT_PACKAGES="$GT_DEMO_PACKAGES apache2-utils libaprutil1-dbd-pgsql check sqlite3
 python3-pytest postgresql mariadb-server mariadb-client libaprutil1-dbd-mysql
 softhsm2 libengine-pkcs11-openssl opensc curl
 swtpm swtpm-tools tpm2-tools tpm2-openssl libtss2-tcti-mssim0
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

# OpenSSL 4 has no ENGINE and none of the API OpenSSL 3 deprecated: build
# a copy of the tree in $1 with the deprecated API switched off (an
# implicit declaration is an error) and run its unit tests there.
GT_NO_DEPRECATED_CFLAGS="-g -O2 -DOPENSSL_API_COMPAT=30000 -DOPENSSL_NO_DEPRECATED -Werror=implicit-function-declaration"
gt_build_no_deprecated() {
    local dir=$1
    mkdir -p "$dir" || return 1
    git ls-files -co --exclude-standard -z | tar --null -cf - -T - | tar -xf - -C "$dir" || return 1
    echo "== $dir: ./configure CFLAGS=\"$GT_NO_DEPRECATED_CFLAGS\" && make -j2 check"
    (cd "$dir" && autoreconf -fi </dev/null && ./configure CFLAGS="$GT_NO_DEPRECATED_CFLAGS" </dev/null \
        && make -j2 </dev/null)
}
