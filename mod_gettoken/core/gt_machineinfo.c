/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_machineinfo.c - a watch's MachineInfo (see gt_machineinfo.h).
 */
#include "gt_machineinfo.h"
#include "gt_checkin.h"
#include "gt_cms.h"
#include "gt_identity.h"
#include "gt_plist.h"

#include <limits.h>
#include <string.h>
#include <stdlib.h>

#include "apr_hash.h"
#include "apr_lib.h"
#include "apr_strings.h"

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <plist/plist.h>

#include "../jose/gt_jose.h"

static const gt_plist_limits mi_limits = {
    GT_MI_MAX_DEPTH, GT_MI_MAX_OBJECTS, GT_MI_MAX_EXPANDED
};

/* ---- helpers ------------------------------------------------------------ */

static const char *ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;

    ERR_clear_error();
    return reason ? reason : "no reason given";
}

/* The plist dict in buf within mi_limits; NULL with *why. */
static plist_t read_plist(apr_pool_t *pool, const char *buf, apr_size_t len,
                          const char **why)
{
    plist_t root = NULL;
    gt_bounds_result bounds = gt_plist_parse_bounded(pool, buf, len,
                                                     &mi_limits, &root);

    if (bounds == GT_BOUNDS_OK && root)
        bounds = gt_plist_tree_check(pool, root, &mi_limits, 0);
    if (bounds != GT_BOUNDS_OK) {
        *why = gt_bounds_reason(bounds);
        return NULL;
    }
    if (!root) {
        *why = "not a well-formed plist";
        return NULL;
    }
    if (plist_get_node_type(root) != PLIST_DICT) {
        *why = "a plist but not a dict";
        return NULL;
    }
    return root;
}

static char *ascii_lower(apr_pool_t *pool, const char *s)
{
    char *copy = apr_pstrdup(pool, s), *c;

    for (c = copy; *c; c++)
        *c = (char)apr_tolower(*c);
    return copy;
}

/* The keys the gate reads; another spelling of one (udid, Product) could be
 * the one a case-insensitive reader behind the gate takes. */
static const char *const known_keys[] = {
    "UDID", "SERIAL", "PRODUCT", "VERSION", "PAIRING_TOKEN"
};

/* Keys in the tree: every dict's entries, nested ones too (the depth is
 * bounded by mi_limits). */
static apr_size_t tree_keys(plist_t node)
{
    apr_size_t n = 0;
    uint32_t i, count;

    switch (plist_get_node_type(node)) {
    case PLIST_DICT: {
        plist_dict_iter it = NULL;

        plist_dict_new_iter(node, &it);
        for (; it;) {
            char *key = NULL;
            plist_t val = NULL;

            plist_dict_next_item(node, it, &key, &val);
            if (!key)
                break;
            free(key);
            n += 1 + tree_keys(val);
        }
        free(it);
        return n;
    }
    case PLIST_ARRAY:
        count = plist_array_get_size(node);
        for (i = 0; i < count; i++)
            n += tree_keys(plist_array_get_item(node, i));
        return n;
    default:
        return 0;
    }
}

/* "<key" elements in an XML document, open or empty. */
static apr_size_t xml_key_elements(const char *buf, apr_size_t len)
{
    const char *p = buf, *end = buf + len;
    apr_size_t n = 0;

    while ((p = memmem(p, (apr_size_t)(end - p), "<key", 4)) != NULL) {
        p += 4;
        if (p < end && (*p == '>' || *p == '/' || apr_isspace(*p)))
            n++;
    }
    return n;
}

/* NULL when no two keys of the dict are equal ignoring case (which covers
 * a key given twice: parsers differ on which one counts) and every key
 * that is one of known_keys ignoring case is spelled exactly so; else
 * why not. */
static const char *keys_unambiguous(apr_pool_t *pool, plist_t dict)
{
    apr_hash_t *seen = apr_hash_make(pool);
    plist_dict_iter it = NULL;
    const char *bad = NULL;
    apr_size_t i;

    plist_dict_new_iter(dict, &it);
    if (!it)
        return "the plist dict cannot be walked";
    while (!bad) {
        char *key = NULL, *folded;
        plist_t val = NULL;

        plist_dict_next_item(dict, it, &key, &val);
        if (!key)
            break;
        folded = ascii_lower(pool, key);
        if (apr_hash_get(seen, folded, APR_HASH_KEY_STRING))
            bad = "two keys of the plist dict differ in case only (or one "
                  "is given twice)";
        apr_hash_set(seen, folded, APR_HASH_KEY_STRING, "");
        for (i = 0; !bad && i < sizeof(known_keys) / sizeof(known_keys[0]); i++)
            if (strcasecmp(key, known_keys[i]) == 0
                && strcmp(key, known_keys[i]) != 0)
                bad = apr_psprintf(pool, "a MachineInfo key spelled %s in "
                                   "another case", known_keys[i]);
        free(key);
    }
    free(it);
    return bad;
}

int gt_machineinfo_udid_ok(const char *udid)
{
    const unsigned char *p = (const unsigned char *)udid;
    apr_size_t len = udid ? strlen(udid) : 0;

    if (len == 0 || len > GT_MI_MAX_UDID)
        return 0;
    while (*p) {
        unsigned c = *p, need, cp, i;

        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return 0;
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            need = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            need = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            need = 3, cp = c & 0x07;
        else
            return 0;
        for (i = 1; i <= need; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        /* overlong, surrogates, past U+10FFFF; C1 controls */
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000)
            || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff
            || (cp >= 0x80 && cp <= 0x9f))
            return 0;
        p += need + 1;
    }
    return 1;
}

/* 1 when PRODUCT names a watch: "watch" anywhere in it, in any case. */
static int product_is_watch(apr_pool_t *pool, const char *product)
{
    return strstr(ascii_lower(pool, product), "watch") != NULL;
}

/* A product as Apple writes them ("iPhone15,2", "Watch6,1"): printable
 * ASCII, no spaces, at most 64 bytes.  Anything else is not read as
 * either a watch or not a watch. */
static int product_ok(const char *product)
{
    const unsigned char *p = (const unsigned char *)product;

    if (!*p || strlen(product) > 64)
        return 0;
    for (; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return 0;
    return 1;
}

/* An optional string value: 0 (absent or a usable string), -1 otherwise. */
static int optional_string(apr_pool_t *pool, plist_t dict, const char *key,
                           const char **out)
{
    plist_t node = plist_dict_get_item(dict, key);

    *out = NULL;
    if (!node)
        return 0;
    *out = gt_plist_string(pool, node);
    return *out && **out && strlen(*out) <= 1024 ? 0 : -1;
}

static gt_machineinfo_result read_pairing_token(apr_pool_t *pool, plist_t dict,
                                                gt_machineinfo *mi,
                                                const char **why)
{
    plist_t node = plist_dict_get_item(dict, "PAIRING_TOKEN");
    const char *data;
    uint64_t n = 0;

    if (!node)
        return GT_MI_WATCH;
    if (plist_get_node_type(node) != PLIST_DATA) {
        *why = "PAIRING_TOKEN is not data";
        return GT_MI_REFUSED;
    }
    data = plist_get_data_ptr(node, &n);
    if (!data || n == 0 || n > GT_MI_MAX_TOKEN || memchr(data, '\0', (size_t)n)) {
        *why = "PAIRING_TOKEN is empty, over 4 KiB or holds a NUL byte";
        return GT_MI_REFUSED;
    }
    mi->pairing_token = apr_pstrmemdup(pool, data, (apr_size_t)n);
    return GT_MI_WATCH;
}

/* The plist inside (or as) the body: whose it is, and its values. */
static gt_machineinfo_result examine_plist(apr_pool_t *pool, const char *buf,
                                           apr_size_t len, gt_machineinfo *mi,
                                           const char **why)
{
    plist_t dict = read_plist(pool, buf, len, why);
    const char *bad;

    if (!dict)
        return GT_MI_INVALID;
    /* libplist's XML reader keeps the last of two equal keys, silently;
     * a reader that keeps the first must not see another MachineInfo */
    if (len >= 8 && memcmp(buf, "bplist00", 8) != 0
        && xml_key_elements(buf, len) != tree_keys(dict)) {
        *why = "a key given twice, or a key element that is no key (in a "
               "comment or CDATA section)";
        return GT_MI_INVALID;
    }
    if ((bad = keys_unambiguous(pool, dict)) != NULL) {
        *why = bad;
        return GT_MI_INVALID;
    }
    mi->product = gt_plist_string(pool, plist_dict_get_item(dict, "PRODUCT"));
    if (!mi->product || !product_ok(mi->product)) {
        *why = "no PRODUCT string of printable ASCII: not a MachineInfo";
        return GT_MI_INVALID;
    }
    mi->udid = gt_plist_string(pool, plist_dict_get_item(dict, "UDID"));
    if (!mi->udid || !gt_machineinfo_udid_ok(mi->udid)) {
        *why = "no usable UDID (a string of 1 to 128 bytes of UTF-8 "
               "without control characters)";
        return GT_MI_INVALID;
    }
    if (!product_is_watch(pool, mi->product)) {
        *why = "PRODUCT is not a watch";
        return GT_MI_NOT_WATCH;
    }
    if (optional_string(pool, dict, "SERIAL", &mi->serial) != 0
        || optional_string(pool, dict, "VERSION", &mi->version) != 0) {
        *why = "SERIAL or VERSION is not a short string";
        return GT_MI_REFUSED;
    }
    return read_pairing_token(pool, dict, mi, why);
}

/* ---- CMS ------------------------------------------------------------------ */

/* The signature over the content, and with a CA the signer's chain.  Only
 * a watch's MachineInfo gets this far: OpenSSL decodes the SignedData (and
 * every key in it) here, not before.  NULL when it verifies. */
static const char *verify_signature(apr_pool_t *pool, const char *der,
                                    apr_size_t len,
                                    const unsigned char *content,
                                    apr_size_t content_len, X509_STORE *ca)
{
    const unsigned char *p = (const unsigned char *)der;
    CMS_ContentInfo *cms;
    ASN1_OCTET_STRING **got;
    STACK_OF(CMS_SignerInfo) *sis;
    const char *digest = NULL, *failed = NULL;
    int n;

    if (len > LONG_MAX
        || !(cms = d2i_CMS_ContentInfo(NULL, &p, (long)len))) {
        ERR_clear_error();
        return "the MachineInfo's SignedData cannot be decoded";
    }
    got = CMS_get0_content(cms);
    sis = CMS_get0_SignerInfos(cms);
    n = sis ? sk_CMS_SignerInfo_num(sis) : 0;
    /* what OpenSSL verifies is what the gate read, or nothing is */
    if (p != (const unsigned char *)der + len || !got || !*got
        || (apr_size_t)ASN1_STRING_length(*got) != content_len
        || memcmp(ASN1_STRING_get0_data(*got), content, content_len) != 0)
        failed = "OpenSSL reads another content in the MachineInfo's "
                 "SignedData";
    else if (n != 1)
        failed = apr_psprintf(pool, "the MachineInfo signature has %d signers "
                              "(one expected)", n < 0 ? 0 : n);
    else if (!gt_cms_digest_accepted(sk_CMS_SignerInfo_value(sis, 0), &digest))
        failed = apr_psprintf(pool, "the MachineInfo signature's digest %s is "
                              "not accepted (SHA-1 or SHA-2)", digest);
    else if (gt_cms_keys_bounded(pool, cms, &failed) != 0)
        failed = apr_psprintf(pool, "the MachineInfo's SignedData holds %s",
                              failed);
    /* Without a CA, integrity only: the pairing token authenticates. */
    else if (CMS_verify(cms, NULL, ca, NULL, NULL,
                        CMS_BINARY | (ca ? 0 : CMS_NO_SIGNER_CERT_VERIFY)) != 1)
        failed = apr_psprintf(pool, "the MachineInfo signature does not %s "
                              "(%s)", ca ? "verify with a signer chaining to "
                                           "GetTokenWatchEnrollmentCA"
                                         : "verify over its content",
                              ssl_reason());
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
    return failed;
}

gt_machineinfo_result gt_machineinfo_parse(apr_pool_t *pool, const char *buf,
                                           apr_size_t len, X509_STORE *ca,
                                           gt_machineinfo *mi,
                                           const char **why)
{
    const unsigned char *content = (const unsigned char *)buf;
    apr_size_t content_len = len;
    gt_machineinfo_result res;
    const char *failed;

    memset(mi, 0, sizeof(*mi));
    *why = "";
    /* a plist starts with '<', "bplist" or white space; a DER SEQUENCE
     * with 0x30 */
    if (len > 0 && (unsigned char)buf[0] == 0x30) {
        if (gt_cms_attached_data(content, len, &content, &content_len,
                                 why) != 0)
            return GT_MI_INVALID;
        mi->is_signed = 1;
    }
    res = examine_plist(pool, (const char *)content, content_len, mi, why);
    if (res != GT_MI_WATCH)
        return res;
    if (!mi->is_signed) {
        if (!ca)
            return GT_MI_WATCH;
        *why = "the MachineInfo is not signed (GetTokenWatchEnrollmentCA "
               "asks for a signer chaining to it)";
        return GT_MI_REFUSED;
    }
    if ((failed = verify_signature(pool, buf, len, content, content_len,
                                   ca)) != NULL) {
        *why = failed;
        return GT_MI_REFUSED;
    }
    return GT_MI_WATCH;
}

/* ---- security tokens -------------------------------------------------------- */

int gt_machineinfo_security_token(const unsigned char *secret,
                                  apr_size_t secret_len, const char *udid,
                                  apr_int64_t window, int slot,
                                  char out[GT_UUID_SIZE])
{
    unsigned char mac[32];
    size_t mac_len = 0;
    char *msg;
    int n, ok;

    /* udid is at most GT_MI_MAX_UDID bytes */
    msg = malloc(strlen(udid) + 64);
    if (!msg)
        return -1;
    n = sprintf(msg, "%s", udid) + 1;
    n += sprintf(msg + n, "%" APR_INT64_T_FMT " %d", window, slot);
    ok = EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, secret_len,
                   (const unsigned char *)msg, (size_t)n, mac, sizeof(mac),
                   &mac_len) != NULL && mac_len == sizeof(mac);
    free(msg);
    ERR_clear_error();
    if (!ok)
        return -1;
    mac[6] = (unsigned char)((mac[6] & 0x0f) | 0x40);     /* version 4 */
    mac[8] = (unsigned char)((mac[8] & 0x3f) | 0x80);     /* RFC 4122 variant */
    snprintf(out, GT_UUID_SIZE, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x", mac[0], mac[1], mac[2], mac[3],
             mac[4], mac[5], mac[6], mac[7], mac[8], mac[9], mac[10], mac[11],
             mac[12], mac[13], mac[14], mac[15]);
    return 0;
}

/* ---- the CA ----------------------------------------------------------------- */

static apr_status_t free_store(void *data)
{
    X509_STORE_free(data);
    return APR_SUCCESS;
}

X509_STORE *gt_machineinfo_ca_load(apr_pool_t *pool, const char *file,
                                   const char **why)
{
    X509_STORE *store;
    BIO *in = BIO_new_file(file, "r");
    X509 *cert;
    int n = 0;

    if (!in) {
        *why = apr_psprintf(pool, "cannot read the file (%s)", ssl_reason());
        return NULL;
    }
    store = X509_STORE_new();
    if (!store) {
        BIO_free(in);
        *why = "out of memory";
        return NULL;
    }
    apr_pool_cleanup_register(pool, store, free_store, apr_pool_cleanup_null);
    while ((cert = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL) {
        int ok = X509_STORE_add_cert(store, cert);
        X509_free(cert);
        if (ok != 1) {
            BIO_free(in);
            *why = apr_psprintf(pool, "certificate %d cannot be used (%s)",
                                n + 1, ssl_reason());
            return NULL;
        }
        n++;
    }
    BIO_free(in);
    ERR_clear_error();
    if (n == 0) {
        *why = "the file holds no PEM certificate";
        return NULL;
    }
    /* Any certificate of the file is an anchor (an intermediate such as
     * Apple's device CA is enough), and a device certificate has no S/MIME
     * key usage to match: CMS_verify would otherwise ask for smime_sign. */
    if (X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN) != 1
        || X509_STORE_set_purpose(store, X509_PURPOSE_ANY) != 1) {
        *why = "the certificate store cannot be set up";
        return NULL;
    }
    return store;
}

/* ---- the answer without a pairing token ----------------------------------- */

#define PLIST_HEAD \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" \
    "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" " \
    "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n" \
    "<plist version=\"1.0\">\n<dict>\n" \
    "\t<key>code</key>\n\t<string>" GT_MI_TOKEN_MISSING_CODE "</string>\n" \
    "\t<key>details</key>\n\t<dict>\n" \
    "\t\t<key>security-token</key>\n\t\t<string>"
#define PLIST_TAIL "</string>\n\t</dict>\n</dict>\n</plist>\n"

const char *gt_machineinfo_token_missing(apr_pool_t *pool,
                                         const char *security_token,
                                         int as_plist, apr_size_t *out_len)
{
    /* the security token is a UUID made here: nothing to escape */
    const char *doc = as_plist
        ? apr_pstrcat(pool, PLIST_HEAD, security_token, PLIST_TAIL, NULL)
        : apr_pstrcat(pool, "{\"code\":\"" GT_MI_TOKEN_MISSING_CODE "\","
                      "\"details\":{\"security-token\":",
                      gt_json_string(pool, security_token), "}}", NULL);

    *out_len = strlen(doc);
    return doc;
}

int gt_machineinfo_wants_plist(const char *accept)
{
    static const char *const plist_types[] = {
        "application/x-apple-plist", "application/xml", "text/xml"
    };
    apr_size_t n, i;

    if (!accept)
        return 0;
    while (*accept == ' ' || *accept == '\t')
        accept++;
    n = strcspn(accept, ",; \t");
    for (i = 0; i < sizeof(plist_types) / sizeof(plist_types[0]); i++)
        if (n == strlen(plist_types[i])
            && strncasecmp(accept, plist_types[i], n) == 0)
            return 1;
    return 0;
}
