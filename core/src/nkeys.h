/* nkeys: NATS nkeys (ed25519 keys in NATS' base32 text form, with a type prefix and a
 * CRC16 check) and .creds files, as github.com/nats-io/nkeys and the clients define them.
 * Signing and verifying go through OpenSSL (libcrypto). Every function is thread-safe. */
#ifndef EMBER_NKEYS_H
#define EMBER_NKEYS_H

#include <stddef.h>
#include <stdint.h>

/* Type prefixes (the first character of a public key): U user, A account, O operator,
 * N server. */
enum {
    NKEY_PREFIX_SEED = 18 << 3,     /* 'S' */
    NKEY_PREFIX_OPERATOR = 14 << 3, /* 'O' */
    NKEY_PREFIX_SERVER = 13 << 3,   /* 'N' */
    NKEY_PREFIX_ACCOUNT = 0,        /* 'A' */
    NKEY_PREFIX_USER = 20 << 3,     /* 'U' */
};

/* Decode a seed ("SU..."): its key type prefix and the 32-byte ed25519 seed. 0 or -1
 * (not a valid seed: bad base32, length, checksum or prefix). */
int nkey_seed_decode(const char *seed, uint8_t *type_prefix, uint8_t raw[32]);
/* The public key ("U...", 56 characters + NUL) of a seed. 0 or -1. */
int nkey_seed_public(const char *seed, char out[57]);
/* Sign msg with the seed's key: 64-byte ed25519 signature. 0 or -1. */
int nkey_sign(const char *seed, const void *msg, size_t n, uint8_t sig[64]);
/* Decode a public key of any type into its prefix and 32 raw bytes. 0 or -1. */
int nkey_public_decode(const char *pub, uint8_t *type_prefix, uint8_t raw[32]);
/* Check an ed25519 signature by a public key. 1 valid, 0 not. */
int nkey_verify(const char *pub, const void *msg, size_t n, const uint8_t *sig, size_t siglen);
/* Encode a raw public key with its type prefix (out: 57 bytes). 0 or -1. */
int nkey_public_encode(uint8_t type_prefix, const uint8_t raw[32], char out[57]);
/* Encode a raw seed with its key type prefix (out: 59 bytes). 0 or -1. */
int nkey_seed_encode(uint8_t type_prefix, const uint8_t raw[32], char out[59]);

/* Decode base64url or standard base64 (padding optional) of len bytes: the decoded
 * length, or -1 (a bad character, or more than cap bytes). */
long nkey_b64_decode(const char *s, size_t len, uint8_t *out, size_t cap);
/* base64url without padding (JWT and nonce signatures); malloc'd, NULL on ENOMEM. */
char *nkey_b64url(const uint8_t *p, size_t n);

/* Read a .creds file: the user JWT and the user seed between their
 * "-----BEGIN ... -----" / "------END ... ------" lines. *jwt and *seed are malloc'd (the
 * caller wipes and frees the seed). 0, or -1 with a reason in err. */
int nkey_creds_read(const char *path, char **jwt, char **seed, char *err, size_t errlen);

#endif
