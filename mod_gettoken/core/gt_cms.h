/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_cms.h - a CMS SignedData read for its shape before OpenSSL decodes it,
 * and the keys in it bounded before OpenSSL verifies with them.
 *
 * Decoding a SignedData with OpenSSL decodes every certificate's public key
 * (in OpenSSL 3 through the provider machinery: most of an RSA-2048
 * signature's cost each), so a body that only needs its content read is
 * walked here instead: definite lengths only, every element where the
 * structure puts it, nothing after the ContentInfo.
 */
#ifndef GT_CMS_H
#define GT_CMS_H

#include "apr_pools.h"
#include <openssl/cms.h>

/*
 * The content of a DER ContentInfo holding a SignedData with attached
 * content of type id-data:
 *   ContentInfo { signedData, [0] SignedData { version, digestAlgorithms SET,
 *     { id-data, [0] OCTET STRING (primitive) }, [0] certificates OPTIONAL,
 *     [1] crls OPTIONAL, signerInfos SET } }
 * filling exactly der[0..len).  0 with *content / *content_len pointing
 * into der; -1 with *why (static text) for any other shape: another
 * content type, detached content, indefinite (BER) lengths, a constructed
 * OCTET STRING, missing or extra elements, bytes after the structure.
 */
int gt_cms_attached_data(const unsigned char *der, apr_size_t len,
                         const unsigned char **content,
                         apr_size_t *content_len, const char **why);

/* Largest RSA modulus and public exponent accepted in a signature to be
 * verified: bigger ones cost milliseconds of CPU per request. */
#define GT_CMS_MAX_RSA_BITS 4096

/*
 * 0 when every certificate in the SignedData (and so every key a
 * verification could use) has a bounded key: RSA of at most
 * GT_CMS_MAX_RSA_BITS bits with an exponent of at most 2^32, EC on a curve
 * of at most 521 bits, or Ed25519 / Ed448; at most 16 certificates.
 * -1 with *why (from pool) otherwise.
 */
int gt_cms_keys_bounded(apr_pool_t *pool, CMS_ContentInfo *cms,
                        const char **why);

#endif
