/* auth: see auth.h. */
#define _GNU_SOURCE
#include "auth.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nkeys.h"
#include "sublist.h"
#include "util.h"

typedef struct plist {
    char **v;
    char **q; /* per entry: its queue group ("foo.> workers"), or NULL */
    size_t n;
    bool set; /* a list was given (an empty allow list allows nothing) */
} plist;

struct auth_user {
    char *user, *pass, *nkey;
    char *account;          /* NULL: the global account */
    plist pub_allow, pub_deny, sub_allow, sub_deny;
    bool has_perms;
    bool allow_responses;
    int32_t rmax;
    int64_t rexp_ms;
    char desc[128];
};

struct auth_users {
    struct auth_users *retired_next;
    auth_user *u;
    size_t n;
    const auth_user *no_auth;
    bool need_nonce;
};

/* ------------------------------------------------------------------ users */

static void plist_free(plist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i]);
        free(l->q[i]);
    }
    free(l->v);
    free(l->q);
    memset(l, 0, sizeof *l);
}

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

/* Parse "a, b.>, c.* workers" into validated subjects, each with an optional queue group
 * after a space (nats-server's queue permissions: "c.* workers" is a subscription to c.*
 * in the queue group workers; in a publish list such an entry matches nothing, as in
 * nats-server). 0, or -1 with err_set. */
static int plist_parse(plist *l, const char *s, const char *who, const char *what)
{
    memset(l, 0, sizeof *l);
    if (!s)
        return 0;
    l->set = true;
    const char *p = s;
    while (*p) {
        while (*p == ',' || is_blank(*p))
            p++;
        const char *e = p; /* the entry: up to the next comma, blanks trimmed */
        while (*e && *e != ',')
            e++;
        const char *end = e;
        while (end > p && is_blank(end[-1]))
            end--;
        if (end > p) {
            const char *q = p; /* the subject ends at the first blank */
            while (q < end && !is_blank(*q))
                q++;
            const char *qs = q;
            while (qs < end && is_blank(*qs))
                qs++;
            bool bad_queue = false;
            for (const char *x = qs; x < end; x++)
                bad_queue |= is_blank(*x);
            if (!subject_is_valid_sub(p, (size_t)(q - p)) || bad_queue)
                return err_set(EMBER_EINVAL, "%s: invalid %s subject \"%.*s\"", who, what,
                               (int)(end - p), p);
            char **nv = realloc(l->v, (l->n + 1) * sizeof *nv);
            if (!nv)
                return err_set(EMBER_ENOMEM, "out of memory");
            l->v = nv;
            char **nq = realloc(l->q, (l->n + 1) * sizeof *nq);
            if (!nq)
                return err_set(EMBER_ENOMEM, "out of memory");
            l->q = nq;
            l->v[l->n] = strndup(p, (size_t)(q - p));
            l->q[l->n] = qs < end ? strndup(qs, (size_t)(end - qs)) : NULL;
            l->n++;
            if (!l->v[l->n - 1] || (qs < end && !l->q[l->n - 1]))
                return err_set(EMBER_ENOMEM, "out of memory");
        }
        p = e;
    }
    return 0;
}

static void user_free(auth_user *a)
{
    free(a->user);
    if (a->pass) {
        OPENSSL_cleanse(a->pass, strlen(a->pass));
        free(a->pass);
    }
    free(a->nkey);
    free(a->account);
    plist_free(&a->pub_allow);
    plist_free(&a->pub_deny);
    plist_free(&a->sub_allow);
    plist_free(&a->sub_deny);
}

void auth_users_free(auth_users *u)
{
    if (!u)
        return;
    for (size_t i = 0; i < u->n; i++)
        user_free(&u->u[i]);
    free(u->u);
    free(u);
}

/* The permissions of src into a. 0, or an EMBER_* error with err_set. */
static int user_perms(auth_user *a, const ember_user *src, const char *who)
{
    int rc = plist_parse(&a->pub_allow, src->publish_allow, who, "publish allow");
    if (!rc)
        rc = plist_parse(&a->pub_deny, src->publish_deny, who, "publish deny");
    if (!rc)
        rc = plist_parse(&a->sub_allow, src->subscribe_allow, who, "subscribe allow");
    if (!rc)
        rc = plist_parse(&a->sub_deny, src->subscribe_deny, who, "subscribe deny");
    a->allow_responses = src->allow_responses;
    a->rmax = src->responses_max > 0 ? src->responses_max : 1;
    a->rexp_ms = src->responses_expires_ms > 0 ? src->responses_expires_ms : 0;
    /* responses without publish rules: nothing else may be published */
    if (a->allow_responses && !a->pub_allow.set && !a->pub_deny.set)
        a->pub_allow.set = true;
    a->has_perms = a->pub_allow.set || a->pub_deny.set || a->sub_allow.set ||
                   a->sub_deny.set || a->allow_responses;
    return rc;
}

auth_user *auth_user_new(const ember_user *src, const char *account, const char *desc)
{
    auth_user *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    snprintf(a->desc, sizeof a->desc, "%s", desc);
    if ((src->nkey && !(a->nkey = strdup(src->nkey))) || (account && !(a->account = strdup(account))) ||
        user_perms(a, src, desc) != 0) {
        auth_user_free(a);
        return NULL;
    }
    return a;
}

void auth_user_free(auth_user *a)
{
    if (!a)
        return;
    user_free(a);
    free(a);
}

int auth_users_new(auth_users **out, const ember_server_options *o)
{
    *out = NULL;
    /* the users of authorization {} ($G) then those of each account */
    size_t total = o->users_count, acc_users = 0;
    for (size_t i = 0; o->accounts && i < o->accounts_count; i++) {
        if (o->accounts[i].users_count && !o->accounts[i].users)
            return err_set(EMBER_EINVAL, "account users is NULL with users_count %zu",
                           o->accounts[i].users_count);
        acc_users += o->accounts[i].users_count;
    }
    total += acc_users;
    if (acc_users && (o->username || o->auth_token))
        return err_set(EMBER_EINVAL, o->username ? "Can not have a single user/pass and accounts"
                                                 : "Can not have a token and accounts");
    if (!total) {
        if (o->no_auth_user)
            return err_set(EMBER_EINVAL, "no_auth_user: \"%s\" not present as user or nkey in "
                           "authorization block or account configuration", o->no_auth_user);
        return 0;
    }
    if (o->users_count && !o->users)
        return err_set(EMBER_EINVAL, "users is NULL with users_count %zu", o->users_count);
    if (o->users_count && (o->username || o->auth_token))
        return err_set(EMBER_EINVAL, o->username ? "Can not have a single user/pass and a users array"
                                                 : "Can not have a token and a users array");
    auth_users *u = calloc(1, sizeof *u);
    if (!u || !(u->u = calloc(total, sizeof *u->u))) {
        free(u);
        return err_set(EMBER_ENOMEM, "out of memory");
    }
    u->n = total;
    int rc = 0;
    size_t ai = 0, ak = 0; /* account users: account ai, its user ak */
    for (size_t i = 0; i < u->n && !rc; i++) {
        const ember_user *src;
        auth_user *a = &u->u[i];
        if (i < o->users_count) {
            src = &o->users[i];
        } else {
            while (ak >= o->accounts[ai].users_count) {
                ai++;
                ak = 0;
            }
            src = &o->accounts[ai].users[ak++];
            if (!o->accounts[ai].name || !(a->account = strdup(o->accounts[ai].name))) {
                rc = err_set(o->accounts[ai].name ? EMBER_ENOMEM : EMBER_EINVAL,
                             o->accounts[ai].name ? "out of memory" : "an account needs a name");
                break;
            }
        }
        char who[64];
        snprintf(who, sizeof who, "user %zu", i);
        if (src->nkey) {
            uint8_t t, raw[32];
            if (src->user || src->password)
                rc = err_set(EMBER_EINVAL, "%s: an nkey user has no user name or password", who);
            else if (nkey_public_decode(src->nkey, &t, raw) != 0 || t != NKEY_PREFIX_USER)
                rc = err_set(EMBER_EINVAL, "Not a valid public nkey for a user");
            for (size_t k = 0; k < i && !rc; k++)
                if (u->u[k].nkey && !strcmp(u->u[k].nkey, src->nkey))
                    rc = err_set(EMBER_EINVAL, "Duplicate nkey \"%s\" detected", src->nkey);
            if (!rc && !(a->nkey = strdup(src->nkey)))
                rc = err_set(EMBER_ENOMEM, "out of memory");
            if (!rc)
                snprintf(a->desc, sizeof a->desc, "Nkey \"%s\"", src->nkey);
            u->need_nonce = true;
        } else if (!src->user || !*src->user) {
            rc = err_set(EMBER_EINVAL, "%s: a user needs a name (or an nkey)", who);
        } else {
            for (size_t k = 0; k < i && !rc; k++)
                if (u->u[k].user && !strcmp(u->u[k].user, src->user))
                    rc = err_set(EMBER_EINVAL, "Duplicate user \"%s\" detected", src->user);
            a->user = strdup(src->user);
            a->pass = strdup(src->password ? src->password : "");
            if (!rc && (!a->user || !a->pass))
                rc = err_set(EMBER_ENOMEM, "out of memory");
            snprintf(a->desc, sizeof a->desc, "User \"%.100s\"", src->user);
        }
        if (!rc)
            rc = user_perms(a, src, who);
    }
    if (!rc && o->no_auth_user) {
        for (size_t i = 0; i < u->n; i++)
            if (u->u[i].user && !strcmp(u->u[i].user, o->no_auth_user))
                u->no_auth = &u->u[i];
        for (size_t i = 0; !u->no_auth && i < u->n; i++) /* an nkey user */
            if (u->u[i].nkey && !strcmp(u->u[i].nkey, o->no_auth_user))
                u->no_auth = &u->u[i];
        if (!u->no_auth)
            rc = err_set(EMBER_EINVAL, "no_auth_user: \"%s\" not present as user or nkey in "
                         "authorization block or account configuration", o->no_auth_user);
    }
    if (rc) {
        auth_users_free(u);
        return rc;
    }
    *out = u;
    return 0;
}

bool auth_users_need_nonce(const auth_users *u) { return u && u->need_nonce; }

const auth_user *auth_find_same(const auth_users *u, const auth_user *old)
{
    for (size_t i = 0; u && old && i < u->n; i++) {
        const auth_user *a = &u->u[i];
        bool same_acc = (!a->account && !old->account) ||
                        (a->account && old->account && !strcmp(a->account, old->account));
        if (same_acc && ((a->user && old->user && !strcmp(a->user, old->user)) ||
                         (a->nkey && old->nkey && !strcmp(a->nkey, old->nkey))))
            return a;
    }
    return NULL;
}

void auth_users_retire(auth_users *u, auth_users **list)
{
    u->retired_next = *list;
    *list = u;
}

void auth_users_free_retired(auth_users *list)
{
    while (list) {
        auth_users *n = list->retired_next;
        auth_users_free(list);
        list = n;
    }
}

static bool is_bcrypt(const char *h);

bool auth_plaintext_passwords(const auth_users *u, const char *single_pass)
{
    if (single_pass && *single_pass && !is_bcrypt(single_pass))
        return true;
    for (size_t i = 0; u && i < u->n; i++)
        if (u->u[i].pass && *u->u[i].pass && !is_bcrypt(u->u[i].pass))
            return true;
    return false;
}
const auth_user *auth_no_auth_user(const auth_users *u) { return u ? u->no_auth : NULL; }
const char *auth_user_desc(const auth_user *au) { return au ? au->desc : ""; }
const char *auth_user_account(const auth_user *au) { return au ? au->account : NULL; }

static bool is_bcrypt(const char *h)
{
    return h[0] == '$' && h[1] == '2' && (h[2] == 'a' || h[2] == 'b' || h[2] == 'x' || h[2] == 'y') &&
           h[3] == '$';
}

static bool password_ok(const char *stored, const char *given)
{
    if (!is_bcrypt(stored))
        return str_eq_ct(stored, given);
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return false;
    const char *h = crypt_r(given, stored, cd);
    bool ok = h && h[0] != '*' && str_eq_ct(h, stored);
    OPENSSL_cleanse(cd, sizeof *cd);
    free(cd);
    return ok;
}


const auth_user *auth_find_user(const auth_users *u, const char *user)
{
    for (size_t i = 0; u && user && i < u->n; i++)
        if (u->u[i].user && !strcmp(u->u[i].user, user))
            return &u->u[i];
    return NULL;
}

const char *auth_bcrypt_hash(const auth_users *u, const char *user)
{
    const auth_user *a = auth_find_user(u, user);
    return a && a->pass && is_bcrypt(a->pass) ? a->pass : NULL;
}

bool auth_bcrypt_ok(const char *hash, const char *pass) { return password_ok(hash, pass ? pass : ""); }

const auth_user *auth_check(const auth_users *u, const char *user, const char *pass,
                            const char *nkey, const char *sig, const char *nonce)
{
    if (!u)
        return NULL;
    if (nkey) {
        for (size_t i = 0; i < u->n; i++) {
            const auth_user *a = &u->u[i];
            if (!a->nkey || strcmp(a->nkey, nkey) != 0)
                continue;
            uint8_t raw[80];
            long n = sig && nonce ? nkey_b64_decode(sig, strlen(sig), raw, sizeof raw) : -1;
            if (n == 64 && nkey_verify(nkey, nonce, strlen(nonce), raw, 64) == 1)
                return a;
            return NULL;
        }
        return NULL;
    }
    if (!user)
        return NULL;
    for (size_t i = 0; i < u->n; i++) {
        const auth_user *a = &u->u[i];
        if (a->user && !strcmp(a->user, user))
            return password_ok(a->pass, pass ? pass : "") ? a : NULL;
    }
    return NULL;
}

/* ------------------------------------------------------------------ permissions */

typedef struct resp {
    char *subj;
    int32_t left;
    int64_t until_ms; /* 0: no expiry */
} resp;

#define RESP_MAX 4096

struct auth_perm {
    _Atomic(const auth_user *) u; /* swapped by a reload (auth_perm_rebind) */
    pthread_mutex_t mu;
    resp *r; /* a ring of the replies seen (oldest dropped when full) */
    size_t head, n;
};

auth_perm *auth_perm_new(const auth_user *au)
{
    if (!au) /* a user without permissions still gets one: a reload may give it some */
        return NULL;
    auth_perm *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    atomic_init(&p->u, au);
    pthread_mutex_init(&p->mu, NULL);
    return p;
}

void auth_perm_rebind(auth_perm *p, const auth_user *au)
{
    if (p && au)
        atomic_store_explicit(&p->u, au, memory_order_release);
}

static inline const auth_user *perm_user(const auth_perm *p)
{
    return atomic_load_explicit(&((auth_perm *)p)->u, memory_order_acquire);
}

void auth_perm_free(auth_perm *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->r[(p->head + i) % RESP_MAX].subj);
    free(p->r);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Does an entry without a queue group match subj? */
static bool plist_match(const plist *l, const char *subj, size_t len)
{
    for (size_t i = 0; i < l->n; i++)
        if (!l->q[i] && subject_matches(l->v[i], strlen(l->v[i]), subj, len))
            return true;
    return false;
}

/* nats-server's queueMatches over the entries with a queue group whose subject matches
 * subj: *any tells whether there is one; true when queue is one of their groups (the
 * group names a literal queue, or a wildcard pattern that covers it). */
static bool plist_queue_match(const plist *l, const char *subj, size_t len, const char *queue,
                              size_t qlen, bool *any)
{
    *any = false;
    bool ok = false;
    for (size_t i = 0; i < l->n && !ok; i++) {
        if (!l->q[i] || !subject_matches(l->v[i], strlen(l->v[i]), subj, len))
            continue;
        *any = true;
        size_t gl = strlen(l->q[i]);
        ok = (gl == qlen && !memcmp(l->q[i], queue, qlen)) ||
             ((memchr(l->q[i], '*', gl) || memchr(l->q[i], '>', gl)) &&
              subject_matches(l->q[i], gl, queue, qlen));
    }
    return ok;
}

static bool use_response(auth_perm *p, const char *subj, size_t len)
{
    if (!perm_user(p)->allow_responses)
        return false;
    bool ok = false;
    int64_t now = (int64_t)time_mono_ms();
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n; i++) {
        resp *r = &p->r[(p->head + i) % RESP_MAX];
        if (!r->subj || r->left <= 0 || (r->until_ms && now > r->until_ms))
            continue;
        if (strlen(r->subj) == len && !memcmp(r->subj, subj, len)) {
            r->left--;
            ok = true;
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return ok;
}

bool auth_can_publish(auth_perm *p, const char *subj, size_t len)
{
    if (!p)
        return true;
    const auth_user *u = perm_user(p);
    if (!u->has_perms)
        return true;
    bool ok = (!u->pub_allow.set || plist_match(&u->pub_allow, subj, len)) &&
              !plist_match(&u->pub_deny, subj, len);
    return ok || use_response(p, subj, len);
}

bool auth_can_subscribe(const auth_perm *p, const char *subj, size_t len, const char *queue,
                        size_t qlen)
{
    if (!p)
        return true;
    const auth_user *u = perm_user(p);
    bool any, allowed = true;
    if (u->sub_allow.set) { /* as nats-server's canSubscribe */
        allowed = plist_match(&u->sub_allow, subj, len);
        if (queue && qlen) {
            bool qok = plist_queue_match(&u->sub_allow, subj, len, queue, qlen, &any);
            if (any)
                allowed = qok;
        }
    }
    if (allowed && u->sub_deny.set) {
        allowed = !plist_match(&u->sub_deny, subj, len);
        if (allowed && queue && qlen) {
            bool qden = plist_queue_match(&u->sub_deny, subj, len, queue, qlen, &any);
            if (any)
                allowed = !qden;
        }
    }
    return allowed;
}

bool auth_deny_delivery(const auth_perm *p, const char *subj, size_t len)
{
    if (!p)
        return false;
    const auth_user *u = perm_user(p);
    return u->sub_deny.n && plist_match(&u->sub_deny, subj, len);
}

void auth_note_reply(auth_perm *p, const char *reply, size_t len)
{
    const auth_user *u = p ? perm_user(p) : NULL;
    if (!u || !u->allow_responses || !reply || !len)
        return;
    char *s = strndup(reply, len);
    if (!s)
        return;
    pthread_mutex_lock(&p->mu);
    if (!p->r && !(p->r = calloc(RESP_MAX, sizeof *p->r))) {
        pthread_mutex_unlock(&p->mu);
        free(s);
        return;
    }
    if (p->n == RESP_MAX) { /* full: drop the oldest */
        free(p->r[p->head].subj);
        p->r[p->head].subj = NULL;
        p->head = (p->head + 1) % RESP_MAX;
        p->n--;
    }
    resp *r = &p->r[(p->head + p->n) % RESP_MAX];
    r->subj = s;
    r->left = u->rmax;
    r->until_ms = u->rexp_ms ? (int64_t)time_mono_ms() + u->rexp_ms : 0;
    p->n++;
    pthread_mutex_unlock(&p->mu);
}
