/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * fuzz_machineinfo_diff.c - the watch enrollment gate against an
 * independent, lenient reading.
 *
 * Whatever gt_machineinfo_parse passes as "not a watch's MachineInfo" must
 * not read as a watch's under any reading an MDM behind the gate might make:
 * the body itself, or the content OpenSSL finds in it as CMS or PKCS#7
 * (BER, trailing bytes, any content type), each read by libplist (every
 * top-level key that reads "product" in any case and with white space
 * around it, string or data, case-folded)
 * and, for XML, by a text reader of this file's own that decodes character
 * and entity references, CDATA sections and comments, case-folds names and
 * values, trims white space and reads UTF-16 as its low bytes (a body that
 * does not start like XML is not read as XML, as by every reader).
 */
#include "fuzz_common.h"

#include <ctype.h>

#include "core/gt_machineinfo.h"
#include "core/gt_plist.h"

#include <openssl/cms.h>
#include <openssl/pkcs7.h>
#include <plist/plist.h>

/* ---- helpers ------------------------------------------------------------ */

static int folded_contains(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle), i, j;

    for (i = 0; i + k <= n; i++) {
        for (j = 0; j < k && tolower((unsigned char)s[i + j]) == needle[j]; j++)
            ;
        if (j == k)
            return 1;
    }
    return 0;
}

/* ---- libplist, every key that may be PRODUCT ----------------------------- */

/* "product" in any case, with any white space around it. */
static int is_product_key(const char *key)
{
    const char *end = key + strlen(key);

    while (isspace((unsigned char)*key))
        key++;
    while (end > key && isspace((unsigned char)end[-1]))
        end--;
    return end - key == 7 && strncasecmp(key, "product", 7) == 0;
}

static int libplist_says_watch(apr_pool_t *pool, const char *buf, size_t len)
{
    static const gt_plist_limits generous = {
        GT_PLIST_MAX_DEPTH, GT_PLIST_MAX_OBJECTS, GT_PLIST_MAX_EXPANDED
    };
    plist_t root = NULL;
    plist_dict_iter it = NULL;
    int watch = 0;

    /* the pre-check only keeps libplist from aborting or blowing up */
    if (gt_plist_parse_bounded(pool, buf, len, &generous, &root) != GT_BOUNDS_OK
        || !root || plist_get_node_type(root) != PLIST_DICT)
        return 0;
    plist_dict_new_iter(root, &it);
    while (it && !watch) {
        char *key = NULL;
        plist_t val = NULL;

        plist_dict_next_item(root, it, &key, &val);
        if (!key)
            break;
        if (is_product_key(key)) {
            if (plist_get_node_type(val) == PLIST_STRING) {
                uint64_t n = 0;
                const char *s = plist_get_string_ptr(val, &n);
                watch = s && folded_contains(s, (size_t)n, "watch");
            }
            else if (plist_get_node_type(val) == PLIST_DATA) {
                uint64_t n = 0;
                const char *d = plist_get_data_ptr(val, &n);
                watch = d && folded_contains(d, (size_t)n, "watch");
            }
        }
        free(key);
    }
    free(it);
    return watch;
}

/* ---- a text reader of XML plists ------------------------------------------ */

#define TEXT_LT 0x01     /* a '<' that is text, not markup */

static size_t put_utf8(char *out, unsigned long cp)
{
    if (cp < 0x80) {
        out[0] = cp == '<' ? TEXT_LT : (char)tolower((int)cp);
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | ((cp >> 18) & 0x07));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A reference at in[0] == '&': decoded into out; how many input bytes it
 * took (0: not a reference, copy the '&'). */
static size_t reference(const char *in, size_t n, char *out, size_t *wrote)
{
    static const struct { const char *name; char c; } named[] = {
        { "&lt;", '<' }, { "&gt;", '>' }, { "&amp;", '&' },
        { "&quot;", '"' }, { "&apos;", '\'' }
    };
    size_t i;

    for (i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
        size_t k = strlen(named[i].name);
        if (n >= k && strncasecmp(in, named[i].name, k) == 0) {
            *wrote = put_utf8(out, (unsigned long)(unsigned char)named[i].c);
            return k;
        }
    }
    if (n >= 3 && in[1] == '#') {
        int hex = in[2] == 'x' || in[2] == 'X';
        unsigned long cp = 0;
        size_t j = hex ? 3 : 2, start = j;

        for (; j < n && j < start + 10; j++) {
            int c = (unsigned char)in[j];
            if (hex && isxdigit(c))
                cp = cp * 16 + (unsigned long)(isdigit(c) ? c - '0' : tolower(c) - 'a' + 10);
            else if (!hex && isdigit(c))
                cp = cp * 10 + (unsigned long)(c - '0');
            else
                break;
        }
        if (j > start && j < n && in[j] == ';' && cp > 0 && cp <= 0x10ffff) {
            *wrote = put_utf8(out, cp);
            return j + 1;
        }
    }
    return 0;
}

/* The document with markup normalised: comments, processing instructions
 * and declarations dropped; tags as "<name>", "</name>" or "<name/>" in
 * lower case without attributes; text decoded and lower-cased, a text '<'
 * as TEXT_LT.  Returns its length; out holds at least len bytes. */
static size_t normalise(const char *in, size_t len, char *out)
{
    size_t i = 0, o = 0;
    const char *e;

    while (i < len) {
        const char *p = in + i;
        size_t left = len - i;

        if (left >= 4 && memcmp(p, "<!--", 4) == 0) {
            e = memmem(p + 4, left - 4, "-->", 3);
            i = e ? (size_t)(e - in) + 3 : len;
        }
        else if (left >= 9 && memcmp(p, "<![CDATA[", 9) == 0) {
            size_t j;
            e = memmem(p + 9, left - 9, "]]>", 3);
            for (j = 9; p + j < (e ? e : in + len); j++)
                out[o++] = p[j] == '<' ? TEXT_LT : (char)tolower((unsigned char)p[j]);
            i = e ? (size_t)(e - in) + 3 : len;
        }
        else if (left >= 2 && (memcmp(p, "<?", 2) == 0 || memcmp(p, "<!", 2) == 0)) {
            e = memchr(p, '>', left);
            i = e ? (size_t)(e - in) + 1 : len;
        }
        else if (*p == '<') {
            size_t j = 1;
            int closing = 0, empty = 0;

            out[o++] = '<';
            while (j < left && isspace((unsigned char)p[j]))
                j++;
            if (j < left && p[j] == '/') {
                closing = 1;
                out[o++] = '/';
                j++;
            }
            while (j < left && !isspace((unsigned char)p[j]) && p[j] != '>' && p[j] != '/')
                out[o++] = (char)tolower((unsigned char)p[j++]);
            e = memchr(p + j, '>', left - j);
            if (e && e > p + j && e[-1] == '/' && !closing)
                empty = 1;
            if (empty)
                out[o++] = '/';
            out[o++] = '>';
            i = e ? (size_t)(e - in) + 1 : len;
        }
        else if (*p == '&') {
            size_t wrote = 0, took = reference(p, left, out + o, &wrote);
            if (took) {
                o += wrote;
                i += took;
            }
            else {
                out[o++] = '&';
                i++;
            }
        }
        else {
            out[o++] = (char)tolower((unsigned char)*p);
            i++;
        }
    }
    return o;
}

static const char *trim(const char *s, const char *end, size_t *n)
{
    while (s < end && isspace((unsigned char)*s))
        s++;
    while (end > s && isspace((unsigned char)end[-1]))
        end--;
    *n = (size_t)(end - s);
    return s;
}

/* In the normalised text: a <key> of the top dict reading "product"
 * followed by a <string> (or <data> text) holding "watch". */
static int text_says_watch(const char *t, size_t n)
{
    const char *p = t, *end = t + n;
    int depth = 0, product_key = 0;

    while ((p = memchr(p, '<', (size_t)(end - p))) != NULL) {
        const char *gt = memchr(p, '>', (size_t)(end - p));
        size_t tag_len;

        if (!gt)
            break;
        tag_len = (size_t)(gt - p + 1);
        if (tag_len == 6 && !memcmp(p, "<dict>", 6)) depth++;
        else if (tag_len == 7 && !memcmp(p, "</dict>", 7)) depth--;
        else if (tag_len == 7 && !memcmp(p, "<array>", 7)) depth++;
        else if (tag_len == 8 && !memcmp(p, "</array>", 8)) depth--;
        else if (depth == 1 && ((tag_len == 5 && !memcmp(p, "<key>", 5))
                                || (tag_len == 8 && !memcmp(p, "<string>", 8))
                                || (tag_len == 6 && !memcmp(p, "<data>", 6)))) {
            const char *text = gt + 1, *stop = memchr(text, '<', (size_t)(end - text));
            size_t k;
            const char *v = trim(text, stop ? stop : end, &k);

            if (p[1] == 'k') {
                product_key = k == 7 && memcmp(v, "product", 7) == 0;
            }
            else {
                if (product_key && folded_contains(v, k, "watch"))
                    return 1;
                product_key = 0;
            }
        }
        else if (depth == 1 && p[1] != '/')
            product_key = 0;        /* another value after the key */
        p = gt + 1;
    }
    return 0;
}

static int xml_text_says_watch(const char *buf, size_t len)
{
    char *norm = malloc(len + 1), *narrow;
    size_t n, i, m = 0;
    int watch;

    if (!norm)
        abort();
    n = normalise(buf, len, norm);
    watch = text_says_watch(norm, n);
    /* UTF-16 of either byte order: its low bytes */
    narrow = malloc(len / 2 + 1);
    if (!narrow)
        abort();
    for (i = 0; i + 1 < len; i += 2)
        narrow[m++] = buf[i] ? buf[i] : buf[i + 1];
    if (!watch && m) {
        n = normalise(narrow, m, norm);
        watch = text_says_watch(norm, n);
    }
    free(narrow);
    free(norm);
    return watch;
}

/* What an XML reader would take up: '<' first, after any byte-order mark,
 * white space (and the NULs of UTF-16). */
static int looks_like_xml(const char *buf, size_t len)
{
    size_t i = 0;

    while (i < len && (isspace((unsigned char)buf[i]) || buf[i] == '\0'
                       || (unsigned char)buf[i] >= 0xef))    /* BOM bytes */
        i++;
    return i < len && buf[i] == '<';
}

static int says_watch(apr_pool_t *pool, const char *buf, size_t len)
{
    return libplist_says_watch(pool, buf, len)
           || (looks_like_xml(buf, len) && xml_text_says_watch(buf, len));
}

/* ---- the CMS and PKCS#7 readings -------------------------------------------- */

static int cms_says_watch(apr_pool_t *pool, const uint8_t *data, size_t len)
{
    const unsigned char *p = data;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
    PKCS7 *p7;
    int watch = 0;

    if (cms) {
        ASN1_OCTET_STRING **content = CMS_get0_content(cms);
        if (content && *content)
            watch = says_watch(pool, (const char *)ASN1_STRING_get0_data(*content),
                               (size_t)ASN1_STRING_length(*content));
        CMS_ContentInfo_free(cms);
    }
    p = data;
    p7 = watch ? NULL : d2i_PKCS7(NULL, &p, (long)len);
    if (p7) {
        if (PKCS7_type_is_signed(p7) && p7->d.sign && p7->d.sign->contents
            && PKCS7_type_is_data(p7->d.sign->contents)
            && p7->d.sign->contents->d.data)
            watch = says_watch(pool, (const char *)ASN1_STRING_get0_data(
                                         p7->d.sign->contents->d.data),
                               (size_t)ASN1_STRING_length(p7->d.sign->contents->d.data));
        PKCS7_free(p7);
    }
    ERR_clear_error();
    return watch;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    apr_pool_t *pool = fuzz_pool();
    const char *why = NULL;
    gt_machineinfo mi;

    memset(&mi, 0, sizeof(mi));
    /* GT_FUZZ_ORACLE=1: what the independent reading says of each input,
     * to see that it tells a watch when it sees one */
    if (getenv("GT_FUZZ_ORACLE"))
        fprintf(stderr, "oracle: text/libplist %d, cms %d\n",
                says_watch(pool, (const char *)data, len),
                cms_says_watch(pool, data, len));
    if (gt_machineinfo_parse(pool, (const char *)data, len, NULL, &mi, &why)
        == GT_MI_NOT_WATCH) {
        FUZZ_ASSERT(mi.product && mi.udid && gt_machineinfo_udid_ok(mi.udid),
                    "passed without a PRODUCT and a valid UDID");
        FUZZ_ASSERT(!folded_contains(mi.product, strlen(mi.product), "watch"),
                    "passed a PRODUCT naming a watch");
        FUZZ_ASSERT(!says_watch(pool, (const char *)data, len),
                    "passed a body that another reader takes for a watch's "
                    "MachineInfo");
        FUZZ_ASSERT(!cms_says_watch(pool, data, len),
                    "passed a SignedData whose content OpenSSL reads as a "
                    "watch's MachineInfo");
    }
    fuzz_end_openssl(pool);
    return 0;
}
