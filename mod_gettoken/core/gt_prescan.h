/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_prescan.h - "this body cannot be a GetToken", from its bytes alone.
 *
 * Most check-ins a GetToken location sees are not GetTokens (Authenticate,
 * TokenUpdate, Idle polls, command reports).  Parsing each one with libplist
 * only to learn that costs more than the rest of the module's pass-through
 * work together.  A GetToken's MessageType is the string "GetToken", and
 * libplist 2.2 can only produce those eight letters from a body that holds
 * them in one of a few forms; a body holding none of them is handed on
 * without being parsed.
 */
#ifndef GT_PRESCAN_H
#define GT_PRESCAN_H

#include <stddef.h>

/*
 * 0 when gt_checkin_parse would certainly answer GT_CHECKIN_NOT_OURS for
 * these `len` bytes (no string of the document can be "GetToken"), 1 when
 * the body may be a GetToken and must be parsed.  The forms that count:
 *  - the eight bytes "GetToken" anywhere (XML text, a binary plist's ASCII
 *    string, a UTF-8 string);
 *  - in a binary plist ("bplist00"), the big-endian UTF-16 units of
 *    "GetToken", where lone surrogate units between them count as nothing
 *    (libplist drops them);
 *  - in anything else (libplist's XML parser), any of the constructs with
 *    which XML text spells letters it does not hold as such: a character
 *    reference ("&#"), a comment ("<!--") or a CDATA section ("<![")
 *    splitting the text.
 * Reads no byte outside buf[0..len); no allocation.
 */
int gt_checkin_may_be_gettoken(const char *buf, size_t len);

#endif
