# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
# Sourced by tests/run for `--asan` and `--valgrind`.
# shellcheck shell=bash
#
# --asan      the whole integration suite against an ASan+UBSan build of the
#             module (a copy of the tree built in the run's work directory);
#             httpd itself is not instrumented, so the ASan runtime is preloaded
#             into it.  Any sanitizer report fails the run.
# --valgrind  a representative subset against one foreground httpd (-X) under
#             valgrind --leak-check=full; any error or definite/possible leak
#             that tests/valgrind.supp does not explain fails the run.
#
# The harness (tests/harness/gt_httpd.py) reads GT_MODULE_SO, GT_HTTPD_ENV
# and GT_HTTPD_WRAPPER.

# Left out: clients that reset the connection mid-body.  mod_ssl then loses the
# peer certificate (X509_new_ex under ap_run_process_connection, one per
# connection), with mod_gettoken not even loaded; a suppression for that stack
# would also hide a module that leaks a certificate reference.
GT_VALGRIND_SUBSET="test_core and (device_enrollment or user_enrollment or token_parameters)
 or test_errors or test_passthrough.py
 or test_hostile and not stalled_body and not longer_than_sent
 or test_watch_pairing and (issued_token_claims or round_trip or key_of_another_issuer
 or issue_user_enrollment or verify_bad_request)
 or test_organizations and (one_statement or combine or fault_of)
 or test_tpm_keys and tokens_signed"

# $1: the run's work directory (removed by tests/run at exit).  Sets GT_SAN_DIR.
gt_san_dir() {
    GT_SAN_DIR="$1/sanitizer"
    mkdir -p "$GT_SAN_DIR/logs" || return 1
    # httpd children run as www-data and write their reports here
    chmod 755 "$1" "$GT_SAN_DIR" && chmod 1777 "$GT_SAN_DIR/logs"
}

gt_asan_setup() {
    gt_san_dir "$1" || return 1
    local src="$GT_SAN_DIR/src" runtime
    local flags="-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"
    echo "== ASan+UBSan build of the module in $src"
    mkdir -p "$src" || return 1
    git ls-files -co --exclude-standard | tar -cf - -T - | tar -xf - -C "$src" || return 1
    (cd "$src" && autoreconf -fi && ./configure CFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" \
        && make -j2 mod_gettoken/mod_gettoken.la) </dev/null >"$GT_SAN_DIR/build.log" 2>&1 || {
        tail -30 "$GT_SAN_DIR/build.log"; return 1; }
    export GT_MODULE_SO="$src/mod_gettoken/.libs/mod_gettoken.so"
    if ! ldd "$GT_MODULE_SO" | grep -q libasan; then
        echo "tests/run --asan: $GT_MODULE_SO is not linked with libasan"; return 1
    fi
    runtime=$(gcc -print-file-name=libasan.so)
    local common="halt_on_error=1:log_path=$GT_SAN_DIR/logs/san"
    # detect_leaks=0: httpd's pools live until exit by design; leaks are valgrind's job.
    # No quarantine: the memory tests bound a child's peak RSS to a few MiB, and
    # APR pools hand memory back in blocks, rarely to malloc, so a quarantine
    # would catch little in the module while it adds tens of MiB.
    export GT_HTTPD_ENV="LD_PRELOAD=$runtime
 ASAN_OPTIONS=$common:detect_leaks=0:abort_on_error=0:quarantine_size_mb=0:thread_local_quarantine_size_kb=0:allocator_may_return_null=0
 UBSAN_OPTIONS=$common:print_stacktrace=1"
}

gt_valgrind_setup() {
    gt_san_dir "$1" || return 1
    export GT_CLIENT_TIMEOUT=180      # one TLS handshake can take seconds under valgrind
    export GT_HTTPD_WRAPPER="valgrind --leak-check=full --error-exitcode=1 --num-callers=30
 --errors-for-leak-kinds=definite,possible --show-leak-kinds=definite,possible
 --suppressions=$PWD/tests/valgrind.supp --gen-suppressions=all
 --log-file=$GT_SAN_DIR/logs/valgrind.%p"
}

# After pytest: any report is a failure.  Prints the reports.
gt_asan_check() {
    local f bad=0
    for f in "$GT_SAN_DIR"/logs/san*; do
        [ -e "$f" ] || continue
        echo "---- sanitizer report $f"; head -60 "$f"; bad=1
    done
    [ "$bad" -eq 0 ] && echo "== sanitizers: no report"
    return "$bad"
}

# A process killed by a signal inside its exit handlers (mod_cgid's daemon,
# when the server stops while it runs OpenSSL's atexit cleanup) was already
# exiting: its leak check sees what the handlers were still freeing.  Its
# leaks say nothing; a memory error in it still counts.
gt_valgrind_killed_while_exiting() {
    grep -A25 "Process terminating with default action of signal" "$1" \
        | grep -q "__run_exit_handlers" || return 1
    ! grep -Eq "Invalid (read|write|free)|uninitialised|Conditional jump|Syscall param|Mismatched free|[Oo]verlap|unaddressable" "$1"
}

gt_valgrind_check() {
    local f n=0 bad=0
    for f in "$GT_SAN_DIR"/logs/valgrind.*; do
        [ -e "$f" ] || continue
        n=$((n + 1))
        # the cgid daemon and other helpers exit without a summary when killed
        grep -q "ERROR SUMMARY:" "$f" || continue
        grep -q "ERROR SUMMARY: 0 errors" "$f" && continue
        if gt_valgrind_killed_while_exiting "$f"; then
            echo "== valgrind: ${f##*/} ($(grep -m1 -o 'apache2 .*httpd-[0-9]*' "$f")) was killed in its exit handlers ($(grep -m1 -o 'signal [0-9]* ([A-Z]*)' "$f")); its leak summary is left out"
            continue
        fi
        echo "---- valgrind report $f"; cat "$f"; bad=1
    done
    if [ "$n" -eq 0 ]; then echo "tests/run --valgrind: no valgrind log written"; return 1; fi
    [ "$bad" -eq 0 ] && echo "== valgrind: $n process logs, 0 errors"
    return "$bad"
}
