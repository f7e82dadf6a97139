/* jwt: NATS JWTs (operator mode) as nats-server reads them with nats-io/jwt v2: an
 * operator JWT (self-signed, the trust root), account JWTs signed by the operator (or
 * one of its signing keys) served by a memory resolver, and user JWTs signed by an
 * account (or one of its signing keys) that clients send in CONNECT with the signature
 * of the server's nonce. Signatures are ed25519 over "header.payload" ("ed25519-nkey"). */
#ifndef EMBER_JWT_H
#define EMBER_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ember.h"

typedef struct jwt_trust jwt_trust;

/* From ember_server_options (operator_jwt, account_jwts): check every JWT and build the
 * accounts they describe into *accs (count *nacc; exports, imports, JetStream limits),
 * allocated inside the trust (valid until jwt_trust_free). *out is NULL when no operator
 * is configured. 0, or EMBER_EINVAL with err_set (nats-server's words where it has them). */
int jwt_trust_new(jwt_trust **out, const ember_server_options *o, const ember_account **accs,
                  size_t *nacc);
void jwt_trust_free(jwt_trust *t);

/* A user JWT checked against the trust. */
typedef struct jwt_user {
    char pub[57];          /* the user's public key (sub) */
    char account[57];      /* its account's public key */
    char name[128];
    int64_t expires;       /* unix seconds; 0: never */
    ember_user perms;      /* publish/subscribe lists and allow_responses (strings inside) */
    char *strs[4];         /* what perms points to */
} jwt_user;
/* Check a CONNECT's jwt and sig (of nonce) at now (unix seconds): signature chain,
 * expiry, not-before, revocations, the nonce signed by the user's key (unless a bearer
 * token). 0, or -1 with the reason (for the log) in why. */
int jwt_user_check(const jwt_trust *t, const char *jwt, const char *sig, const char *nonce,
                   int64_t now, jwt_user *out, char *why, size_t cap);
void jwt_user_free(jwt_user *u);

#endif
