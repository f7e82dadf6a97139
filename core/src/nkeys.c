/* nkeys: see nkeys.h. The text form is RFC 4648 base32 (no padding) of
 *   public: prefix byte, 32-byte key, CRC16 (little endian)
 *   seed:   (SEED | type >> 5), (type & 31) << 3, 32-byte seed, CRC16
 * with CRC16 the XMODEM one (polynomial 0x1021, initial 0), as nkeys' crc16.go. */
#include "nkeys.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

static uint16_t crc16(const uint8_t *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)p[i] << 8;
        for (int b = 0; b < 8; b++)
            crc = crc & 0x8000 ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

static size_t b32_encode(const uint8_t *p, size_t n, char *out)
{
    size_t o = 0;
    uint32_t buf = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        buf = (buf << 8) | p[i];
        bits += 8;
        while (bits >= 5) {
            out[o++] = b32[(buf >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        out[o++] = b32[(buf << (5 - bits)) & 31];
    out[o] = 0;
    return o;
}

/* -1 on a character outside the alphabet or more than cap bytes. */
static long b32_decode(const char *s, uint8_t *out, size_t cap)
{
    size_t o = 0;
    uint32_t buf = 0;
    int bits = 0;
    for (; *s; s++) {
        const char *c = strchr(b32, *s);
        if (!c || !*s)
            return -1;
        buf = (buf << 5) | (uint32_t)(c - b32);
        bits += 5;
        if (bits >= 8) {
            if (o == cap)
                return -1;
            out[o++] = (uint8_t)(buf >> (bits - 8));
            bits -= 8;
        }
    }
    return (long)o;
}

static int decode_checked(const char *text, uint8_t *raw, size_t want)
{
    uint8_t buf[64];
    long n = b32_decode(text, buf, sizeof buf);
    if (n != (long)want)
        return -1;
    uint16_t got = (uint16_t)(buf[n - 2] | (buf[n - 1] << 8));
    if (crc16(buf, (size_t)n - 2) != got)
        return -1;
    memcpy(raw, buf, (size_t)n - 2);
    OPENSSL_cleanse(buf, sizeof buf);
    return 0;
}

static bool valid_type(uint8_t t)
{
    return t == NKEY_PREFIX_OPERATOR || t == NKEY_PREFIX_SERVER || t == NKEY_PREFIX_ACCOUNT ||
           t == NKEY_PREFIX_USER || t == (6 << 3) /* cluster 'C' */ || t == (23 << 3) /* 'X' */;
}

int nkey_seed_decode(const char *seed, uint8_t *type_prefix, uint8_t raw[32])
{
    if (!seed)
        return -1;
    uint8_t buf[34];
    if (decode_checked(seed, buf, 36) != 0)
        return -1;
    uint8_t b1 = buf[0] & 248, b2 = (uint8_t)(((buf[0] & 7) << 5) | ((buf[1] & 248) >> 3));
    if (b1 != NKEY_PREFIX_SEED || !valid_type(b2)) {
        OPENSSL_cleanse(buf, sizeof buf);
        return -1;
    }
    if (type_prefix)
        *type_prefix = b2;
    memcpy(raw, buf + 2, 32);
    OPENSSL_cleanse(buf, sizeof buf);
    return 0;
}

int nkey_public_decode(const char *pub, uint8_t *type_prefix, uint8_t raw[32])
{
    if (!pub)
        return -1;
    uint8_t buf[33];
    if (decode_checked(pub, buf, 35) != 0 || !valid_type(buf[0]))
        return -1;
    if (type_prefix)
        *type_prefix = buf[0];
    memcpy(raw, buf + 1, 32);
    return 0;
}

int nkey_public_encode(uint8_t type_prefix, const uint8_t raw[32], char out[57])
{
    uint8_t buf[35];
    buf[0] = type_prefix;
    memcpy(buf + 1, raw, 32);
    uint16_t c = crc16(buf, 33);
    buf[33] = (uint8_t)(c & 0xff);
    buf[34] = (uint8_t)(c >> 8);
    return b32_encode(buf, sizeof buf, out) == 56 ? 0 : -1;
}

int nkey_seed_encode(uint8_t type_prefix, const uint8_t raw[32], char out[59])
{
    uint8_t buf[36];
    buf[0] = (uint8_t)(NKEY_PREFIX_SEED | (type_prefix >> 5));
    buf[1] = (uint8_t)((type_prefix & 31) << 3);
    memcpy(buf + 2, raw, 32);
    uint16_t c = crc16(buf, 34);
    buf[34] = (uint8_t)(c & 0xff);
    buf[35] = (uint8_t)(c >> 8);
    size_t n = b32_encode(buf, sizeof buf, out);
    OPENSSL_cleanse(buf, sizeof buf);
    return n == 58 ? 0 : -1;
}

static EVP_PKEY *seed_key(const char *seed, uint8_t *type)
{
    uint8_t raw[32];
    if (nkey_seed_decode(seed, type, raw) != 0)
        return NULL;
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw, 32);
    OPENSSL_cleanse(raw, sizeof raw);
    return k;
}

int nkey_seed_public(const char *seed, char out[57])
{
    uint8_t type;
    EVP_PKEY *k = seed_key(seed, &type);
    if (!k)
        return -1;
    uint8_t pub[32];
    size_t pl = sizeof pub;
    int rc = EVP_PKEY_get_raw_public_key(k, pub, &pl) == 1 && pl == 32 ? 0 : -1;
    EVP_PKEY_free(k);
    return rc == 0 ? nkey_public_encode(type, pub, out) : -1;
}

int nkey_sign(const char *seed, const void *msg, size_t n, uint8_t sig[64])
{
    EVP_PKEY *k = seed_key(seed, NULL);
    if (!k)
        return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t sl = 64;
    int rc = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, k) == 1 &&
                     EVP_DigestSign(ctx, sig, &sl, msg, n) == 1 && sl == 64
                 ? 0
                 : -1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(k);
    return rc;
}

int nkey_verify(const char *pub, const void *msg, size_t n, const uint8_t *sig, size_t siglen)
{
    uint8_t raw[32];
    if (siglen != 64 || nkey_public_decode(pub, NULL, raw) != 0)
        return 0;
    EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, 32);
    if (!k)
        return 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k) == 1 &&
             EVP_DigestVerify(ctx, sig, siglen, msg, n) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(k);
    return ok;
}

/* base64url or standard base64, padding optional. Returns the length or -1. */
long nkey_b64_decode(const char *s, size_t len, uint8_t *out, size_t cap)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (const char *end = s + len; s < end && *s && *s != '='; s++) {
        int v;
        char c = *s;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '-' || c == '+')
            v = 62;
        else if (c == '_' || c == '/')
            v = 63;
        else
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            if (o == cap)
                return -1;
            out[o++] = (uint8_t)(acc >> (bits - 8));
            bits -= 8;
        }
    }
    return (long)o;
}

char *nkey_b64url(const uint8_t *p, size_t n)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc(n / 3 * 4 + 5);
    if (!out)
        return NULL;
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = t[v >> 18];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = t[(v >> 6) & 63];
        out[o++] = t[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = t[v >> 18];
        out[o++] = t[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = t[v >> 18];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = t[(v >> 6) & 63];
    }
    out[o] = 0;
    return out;
}

/* The first non-empty line after the "-----BEGIN <what>" marker line, trimmed. */
static char *creds_block(const char *text, const char *what)
{
    const char *p = strstr(text, what);
    if (!p)
        return NULL;
    p = strchr(p, '\n');
    if (!p)
        return NULL;
    for (;;) {
        while (*p == '\n' || *p == '\r' || *p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '-')
            return NULL;
        const char *e = p;
        while (*e && *e != '\n' && *e != '\r' && *e != ' ' && *e != '\t')
            e++;
        char *out = malloc((size_t)(e - p) + 1);
        if (out) {
            memcpy(out, p, (size_t)(e - p));
            out[e - p] = 0;
        }
        return out;
    }
}

int nkey_creds_read(const char *path, char **jwt, char **seed, char *err, size_t errlen)
{
    *jwt = *seed = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "open %s: %s", path, strerror(errno));
        return -1;
    }
    char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    *jwt = creds_block(buf, "BEGIN NATS USER JWT");
    *seed = creds_block(buf, "BEGIN USER NKEY SEED");
    OPENSSL_cleanse(buf, sizeof buf);
    uint8_t raw[32];
    if (!*jwt || !*seed || nkey_seed_decode(*seed, NULL, raw) != 0) {
        snprintf(err, errlen, *jwt && *seed ? "Credentials file has malformed seed"
                                            : "Credentials file malformed");
        free(*jwt);
        if (*seed) {
            OPENSSL_cleanse(*seed, strlen(*seed));
            free(*seed);
        }
        *jwt = *seed = NULL;
        return -1;
    }
    OPENSSL_cleanse(raw, sizeof raw);
    return 0;
}
