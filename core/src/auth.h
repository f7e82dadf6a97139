/* auth: users (passwords plain or bcrypt, nkeys with nonce signatures), no_auth_user and
 * per-user publish/subscribe permissions with allow_responses, as nats-server's auth.go
 * and client.go do them for client connections. */
#ifndef EMBER_AUTH_H
#define EMBER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ember.h"

typedef struct auth_users auth_users;
typedef struct auth_user auth_user;

/* ember_server_new: validate and copy the users. *out is NULL when none is configured.
 * 0, or an EMBER_* error with err_set. */
int auth_users_new(auth_users **out, const ember_server_options *o);
void auth_users_free(auth_users *u);
/* Does any user authenticate with an nkey (INFO then carries a nonce)? */
bool auth_users_need_nonce(const auth_users *u);
/* Is any password (of the users, or the single user's single_pass, may be NULL) not a
 * bcrypt hash? (nats-server's "Plaintext passwords detected" start-up warning) */
bool auth_plaintext_passwords(const auth_users *u, const char *single_pass);

/* Authenticate a CONNECT: user/pass, or nkey + sig (base64url or std of the nonce's
 * signature). NULL when refused. The user stays valid while the server lives. */
const auth_user *auth_check(const auth_users *u, const char *user, const char *pass,
                            const char *nkey, const char *sig, const char *nonce);
/* bcrypt is slow (a cost-12 check takes ~200 ms): the server runs it off the event loop.
 * auth_bcrypt_hash: the stored hash when user's password is a bcrypt one (NULL: the check
 * is cheap, use auth_check); auth_bcrypt_ok: the check itself (any thread);
 * auth_find_user: the user once the check passed. */
const char *auth_bcrypt_hash(const auth_users *u, const char *user);
bool auth_bcrypt_ok(const char *hash, const char *pass);
const auth_user *auth_find_user(const auth_users *u, const char *user);
/* Reload: is there a user with old's name or nkey in u? Keep a replaced set alive (its
 * users are still referenced by connected clients) until auth_users_free_retired. */
const auth_user *auth_find_same(const auth_users *u, const auth_user *old);
void auth_users_retire(auth_users *u, auth_users **list);
void auth_users_free_retired(auth_users *list);
/* The user no_auth_user names (NULL when none). */
const auth_user *auth_no_auth_user(const auth_users *u);
/* A user of its own (a JWT user: not in any users set), with src's nkey and permissions,
 * in account (NULL: global), described as desc in logs. NULL on ENOMEM or bad
 * permission subjects. Freed with auth_user_free once no permission state uses it. */
auth_user *auth_user_new(const ember_user *src, const char *account, const char *desc);
void auth_user_free(auth_user *a);
/* The user's account name; NULL for the global account. */
const char *auth_user_account(const auth_user *au);
/* nats-server's getAuthUser text: `User "alice"` or `Nkey "UAB..."`. */
const char *auth_user_desc(const auth_user *au);

/* Per-connection permission state (NULL when the user has no permissions). */
typedef struct auth_perm auth_perm;
auth_perm *auth_perm_new(const auth_user *au);
void auth_perm_free(auth_perm *p);
/* A reload: the permissions of au from now on (any thread may be checking meanwhile;
 * the old user must stay alive: auth_users_retire). */
void auth_perm_rebind(auth_perm *p, const auth_user *au);
/* May the client publish to subject? Consumes one allowed response when the subject is a
 * reply subject it received. Thread: the client's reading thread. */
bool auth_can_publish(auth_perm *p, const char *subj, size_t len);
/* May the client subscribe (queue may be NULL, qlen 0)? Entries "subject group" allow or
 * deny only that queue group, as nats-server's queue permissions. */
bool auth_can_subscribe(const auth_perm *p, const char *subj, size_t len, const char *queue,
                        size_t qlen);
/* Is a delivery on subj denied by the subscribe deny list (a wildcard subscription
 * reaching a denied subject)? */
bool auth_deny_delivery(const auth_perm *p, const char *subj, size_t len);
/* A reply subject delivered to the client (allow_responses bookkeeping). Any thread. */
void auth_note_reply(auth_perm *p, const char *reply, size_t len);

#endif
