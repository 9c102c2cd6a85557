/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_machineinfo.c - a watch's MachineInfo (see gt_machineinfo.h).
 */
#include "gt_machineinfo.h"
#include "gt_checkin.h"
#include "gt_identity.h"
#include "gt_plist.h"

#include <limits.h>
#include <string.h>
#include <stdlib.h>

#include "apr_hash.h"
#include "apr_strings.h"

#include <openssl/cms.h>
#include <openssl/err.h>
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

static int contains(const char *buf, apr_size_t len, const char *lit,
                    apr_size_t n)
{
    return len >= n && memmem(buf, len, lit, n) != NULL;
}

/* "Watch" in ASCII or in the UTF-16 (big-endian) of binary plists, either
 * case of its first letter. */
static int mentions_watch(const char *buf, apr_size_t len)
{
    return contains(buf, len, "Watch", 5) || contains(buf, len, "watch", 5)
        || contains(buf, len, "W\0a\0t\0c\0h", 9)
        || contains(buf, len, "w\0a\0t\0c\0h", 9);
}

/* What a body that cannot be read as a plist dict is: nothing of ours,
 * unless it might be a watch's MachineInfo to a more lenient parser. */
static gt_machineinfo_result unreadable(const char *buf, apr_size_t len,
                                        const char *reason, const char **why)
{
    *why = reason;
    return mentions_watch(buf, len) ? GT_MI_REFUSED : GT_MI_NOT_WATCH;
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

/* 1 when a key of the dict appears more than once (parsers differ on
 * which one counts), or the dict cannot be walked. */
static int has_duplicate_keys(apr_pool_t *pool, plist_t dict)
{
    apr_hash_t *seen = apr_hash_make(pool);
    plist_dict_iter it = NULL;
    int dup = 0;

    plist_dict_new_iter(dict, &it);
    if (!it)
        return 1;
    for (;;) {
        char *key = NULL;
        plist_t val = NULL;

        plist_dict_next_item(dict, it, &key, &val);
        if (!key)
            break;
        if (apr_hash_get(seen, key, APR_HASH_KEY_STRING))
            dup = 1;
        else
            apr_hash_set(seen, apr_pstrdup(pool, key), APR_HASH_KEY_STRING, "");
        free(key);
    }
    free(it);
    return dup;
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
    const char *product;

    if (!dict)
        return unreadable(buf, len, *why, why);
    if (has_duplicate_keys(pool, dict))
        return unreadable(buf, len, "a plist dict with a key given twice", why);
    product = gt_plist_string(pool, plist_dict_get_item(dict, "PRODUCT"));
    if (!product) {
        *why = "no PRODUCT string: not a MachineInfo";
        return GT_MI_NOT_WATCH;
    }
    if (strncmp(product, "Watch", 5) != 0) {
        *why = "PRODUCT is not a watch";
        return GT_MI_NOT_WATCH;
    }
    mi->product = product;
    mi->udid = gt_plist_string(pool, plist_dict_get_item(dict, "UDID"));
    if (!mi->udid || !*mi->udid || strlen(mi->udid) > 128) {
        *why = "a watch's MachineInfo without a usable UDID";
        return GT_MI_REFUSED;
    }
    if (optional_string(pool, dict, "SERIAL", &mi->serial) != 0
        || optional_string(pool, dict, "VERSION", &mi->version) != 0) {
        *why = "SERIAL or VERSION is not a short string";
        return GT_MI_REFUSED;
    }
    return read_pairing_token(pool, dict, mi, why);
}

/* ---- CMS ------------------------------------------------------------------ */

/* The signature over the content, and with a CA the signer's chain. */
static const char *verify_signature(apr_pool_t *pool, CMS_ContentInfo *cms,
                                    X509_STORE *ca)
{
    STACK_OF(CMS_SignerInfo) *sis = CMS_get0_SignerInfos(cms);
    const char *digest = NULL;
    int n = sis ? sk_CMS_SignerInfo_num(sis) : 0;

    if (n != 1)
        return apr_psprintf(pool, "the MachineInfo signature has %d signers "
                            "(one expected)", n < 0 ? 0 : n);
    if (!gt_cms_digest_accepted(sk_CMS_SignerInfo_value(sis, 0), &digest))
        return apr_psprintf(pool, "the MachineInfo signature's digest %s is "
                            "not accepted (SHA-1 or SHA-2)", digest);
    /* Without a CA, integrity only: the pairing token authenticates. */
    if (CMS_verify(cms, NULL, ca, NULL, NULL,
                   CMS_BINARY | (ca ? 0 : CMS_NO_SIGNER_CERT_VERIFY)) != 1)
        return apr_psprintf(pool, "the MachineInfo signature does not %s (%s)",
                            ca ? "verify with a signer chaining to "
                                 "GetTokenWatchEnrollmentCA"
                               : "verify over its content",
                            ssl_reason());
    return NULL;
}

/* The body as a DER SignedData with attached content, or NULL. */
static CMS_ContentInfo *signed_data(const char *buf, apr_size_t len)
{
    const unsigned char *p = (const unsigned char *)buf;
    CMS_ContentInfo *cms;

    if (len < 2 || len > LONG_MAX || (unsigned char)buf[0] != 0x30)
        return NULL;
    cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
    if (!cms || p != (const unsigned char *)buf + len
        || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed
        || OBJ_obj2nid(CMS_get0_eContentType(cms)) != NID_pkcs7_data) {
        CMS_ContentInfo_free(cms);
        ERR_clear_error();
        return NULL;
    }
    return cms;
}

gt_machineinfo_result gt_machineinfo_parse(apr_pool_t *pool, const char *buf,
                                           apr_size_t len, X509_STORE *ca,
                                           gt_machineinfo *mi,
                                           const char **why)
{
    CMS_ContentInfo *cms = signed_data(buf, len);
    ASN1_OCTET_STRING **content;
    gt_machineinfo_result res;
    const char *failed;

    memset(mi, 0, sizeof(*mi));
    *why = "";
    if (!cms) {
        res = examine_plist(pool, buf, len, mi, why);
        if (res == GT_MI_WATCH && ca) {
            *why = "the MachineInfo is not signed (GetTokenWatchEnrollmentCA "
                   "asks for a signer chaining to it)";
            return GT_MI_REFUSED;
        }
        return res;
    }
    content = CMS_get0_content(cms);
    if (!content || !*content) {
        CMS_ContentInfo_free(cms);
        *why = "a detached signature: no MachineInfo inside";
        return GT_MI_NOT_WATCH;
    }
    res = examine_plist(pool, (const char *)ASN1_STRING_get0_data(*content),
                        (apr_size_t)ASN1_STRING_length(*content), mi, why);
    if (res == GT_MI_WATCH) {
        mi->is_signed = 1;
        if ((failed = verify_signature(pool, cms, ca)) != NULL) {
            *why = failed;
            res = GT_MI_REFUSED;
        }
    }
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
    return res;
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
