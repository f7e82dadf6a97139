/* jwtmint: keys and JWTs minted by tests (test_jwt.c, fuzz_jwt.c): ed25519 nkeys and
 * "ed25519-nkey" JWTs as nats-io/jwt v2 writes them. Header-only. */
#ifndef EMBER_JWTMINT_H
#define EMBER_JWTMINT_H

#include <cjson/cJSON.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nkeys.h"

typedef struct key {
    char seed[59], pub[57];
} key;

static inline void new_key(key *k, uint8_t prefix)
{
    uint8_t raw[32];
    RAND_bytes(raw, sizeof raw);
    nkey_seed_encode(prefix, raw, k->seed);
    nkey_seed_public(k->seed, k->pub);
}

/* A JWT of raw payload bytes signed by signer. malloc'd. */
static inline char *mint_raw(const void *payload, size_t plen, const key *signer)
{
    static const char hdr[] = "{\"typ\":\"JWT\",\"alg\":\"ed25519-nkey\"}";
    char *h64 = nkey_b64url((const uint8_t *)hdr, strlen(hdr));
    char *p64 = nkey_b64url((const uint8_t *)payload, plen);
    size_t n = strlen(h64) + strlen(p64) + 2;
    char *signing = malloc(n);
    snprintf(signing, n, "%s.%s", h64, p64);
    uint8_t sig[64];
    nkey_sign(signer->seed, signing, strlen(signing), sig);
    char *s64 = nkey_b64url(sig, sizeof sig);
    size_t tn = strlen(signing) + strlen(s64) + 2;
    char *tok = malloc(tn);
    snprintf(tok, tn, "%s.%s", signing, s64);
    free(h64);
    free(p64);
    free(signing);
    free(s64);
    return tok;
}

/* A JWT of claims (consumed) signed by signer. malloc'd. */
static inline char *mint(cJSON *claims, const key *signer)
{
    char jti[32];
    snprintf(jti, sizeof jti, "JTI%08lx%08lx", (unsigned long)random(), (unsigned long)random());
    cJSON_AddStringToObject(claims, "jti", jti);
    char *payload = cJSON_PrintUnformatted(claims);
    cJSON_Delete(claims);
    char *tok = mint_raw(payload, strlen(payload), signer);
    free(payload);
    return tok;
}

static inline cJSON *claims(const char *iss, const char *sub, const char *name, const char *type)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "iat", (double)time(NULL) - 5);
    cJSON_AddStringToObject(c, "iss", iss);
    cJSON_AddStringToObject(c, "name", name);
    cJSON_AddStringToObject(c, "sub", sub);
    cJSON *n = cJSON_AddObjectToObject(c, "nats");
    cJSON_AddStringToObject(n, "type", type);
    cJSON_AddNumberToObject(n, "version", 2);
    return c;
}


#endif
