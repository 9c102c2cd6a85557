/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_prescan.c - whether a body can be a GetToken at all (see gt_prescan.h).
 *
 * Exactness rests on what libplist 2.2 does with the bytes:
 *  - plist_from_bin (a body starting "bplist00") makes strings from ASCII
 *    objects (copied as they are) and from big-endian UTF-16 objects, whose
 *    units below 0x80 become that byte, pairs of surrogates a four-byte
 *    character, and a lone surrogate nothing;
 *  - plist_from_xml (anything else) takes a <string>'s or <key>'s text as
 *    written, joined across comments and CDATA sections; it decodes
 *    "&amp;", "&lt;", "&gt;", "&apos;", "&quot;" (one punctuation byte
 *    each: never a letter, never nothing) and numeric character references,
 *    the only way to write a letter that is not there as such.
 * So without those forms no string node can be "GetToken", the message is
 * not one, and gt_checkin_parse says NOT_OURS (it reports INVALID only when
 * the bytes hold "GetToken" literally).
 */
#include "gt_prescan.h"

#include <string.h>

#include "gt_limits.h"

#define WORD     GT_MESSAGE_GETTOKEN
#define WORD_LEN (sizeof(GT_MESSAGE_GETTOKEN) - 1)

static int is_surrogate_unit(const unsigned char *u)
{
    return u[0] >= 0xD8 && u[0] <= 0xDF;
}

/* The UTF-16 units from u on spell WORD from its second letter, lone
 * surrogates skipped. */
static int utf16_rest_spells_word(const unsigned char *u,
                                  const unsigned char *stop)
{
    size_t i = 1;

    while (i < WORD_LEN) {
        if (stop - u < 2)
            return 0;
        if (u[0] == 0 && u[1] == (unsigned char)WORD[i])
            i++;
        else if (!is_surrogate_unit(u))
            return 0;
        u += 2;
    }
    return 1;
}

/* The word at g (its 'G'): as bytes, or in a binary plist as UTF-16 units
 * (g is then the low byte of the first unit). */
static int word_at(const unsigned char *buf, const unsigned char *g,
                   const unsigned char *stop, int binary)
{
    if ((size_t)(stop - g) >= WORD_LEN && memcmp(g, WORD, WORD_LEN) == 0)
        return 1;
    return binary && g > buf && g[-1] == 0
           && utf16_rest_spells_word(g + 1, stop);
}

/*
 * Every 'G' found with memchr, then the word checked there.  'G' is rare in
 * plists (no tag or common key holds it; 1 byte in 64 of base64 data, 1 in
 * 256 of binary data), so this is mostly memchr's vector scan: faster than
 * glibc's memmem on bodies of a few kilobytes, and one pass serves both
 * forms of a binary plist.
 */
static int has_word(const unsigned char *buf, size_t len, int binary)
{
    const unsigned char *stop = buf + len, *g = buf;

    while (g < stop && (g = memchr(g, WORD[0], (size_t)(stop - g))) != NULL) {
        if (word_at(buf, g, stop, binary))
            return 1;
        g++;
    }
    return 0;
}

/* "&#": found through the rare '&' (memchr), not memmem, which is slow
 * with a two-byte needle. */
static int has_char_reference(const char *buf, size_t len)
{
    const char *p = buf, *stop = buf + len;

    while (p < stop && (p = memchr(p, '&', (size_t)(stop - p))) != NULL) {
        if (p + 1 < stop && p[1] == '#')
            return 1;
        p++;
    }
    return 0;
}

/* "<!--" or "<![": a comment or CDATA section, around which libplist joins
 * the text.  Found through the rare '!'. */
static int has_text_splitting_markup(const char *buf, size_t len)
{
    const char *p = buf, *stop = buf + len;

    while (p < stop && (p = memchr(p, '!', (size_t)(stop - p))) != NULL) {
        if (p > buf && p[-1] == '<' && p + 1 < stop
            && (p[1] == '[' || (p[1] == '-' && p + 2 < stop && p[2] == '-')))
            return 1;
        p++;
    }
    return 0;
}

int gt_checkin_may_be_gettoken(const char *buf, size_t len)
{
    int binary = len >= 8 && memcmp(buf, "bplist00", 8) == 0;

    if (has_word((const unsigned char *)buf, len, binary))
        return 1;
    return !binary && (has_char_reference(buf, len)
                       || has_text_splitting_markup(buf, len));
}
