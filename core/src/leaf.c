/* leaf: leaf-node links, as nats-server's server/leafnode.go does them.
 *
 * A link is a TCP client of kind CK_LEAF: client.c reads and writes it, this file speaks
 * its protocol. Interest: every subscription entering or leaving the sublist comes
 * through leaf_sub_changed, which keeps one table of interest keys ("subject" or
 * "subject queue") with the count of local subscriptions and the set of links holding
 * the same interest; each link is told (LS+/LS-) when what it should see of a key
 * changes. A spoke link (one this server dialled) sees local interest only; a hub-side
 * link (accepted) sees local interest and the other links' (nats-server: the hub
 * advertises everything, the spoke only its own). Queue interest carries the number of
 * members as its weight. Messages: route.c gathers, per link, the plain interest and the
 * queue groups chosen on it and calls leaf_send (one LMSG/HMSG per link and message).
 *
 * JetStream across a link (leafnode.go addLeafNodeConnection, jetstream_api.go): the
 * client JetStream API ($JS.API.>, $KV.>, $OBJ.>) is denied both ways, so it stays
 * local; with a domain D, $JS.D.API.> is served locally (js_api.c) and advertised, and
 * never sent out. Push deliveries cross the link on their deliver subject with the
 * stream subject appended to the $JS.ACK reply after '@' (client.go processMsgResults).
 *
 * Loop detection: each server advertises $LDS.<random>; seeing its own come back is a
 * loop: -ERR 'Loop detected ...', and the dialling side waits 30 s before trying again.
 *
 * Threads: the remotes' state (timers, dialling) is the loop thread's; the interest
 * table and the list of links are under lm->mu (taken from any thread, never while
 * holding a client's mu; client_send takes c->mu inside it).
 */
#include "leaf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>

#include "js.h"
#include <openssl/crypto.h>

#include "account.h"
#include "auth.h"
#include "nkeys.h"
#include "tlsio.h"
#include "xport.h"

#define LEAF_DEFAULT_PORT 7422
#define LEAF_LOOP_DELAY_MS 30000
#define LEAF_HANDSHAKE_MS 2000

/* ------------------------------------------------------------------ types */

typedef struct lent {
    struct lent *next;
    char *subj;
    char *queue; /* NULL: plain interest */
    account *acc; /* whose interest (links of that account see it); NULL: every account */
    int local;   /* local (non-leaf) subscriptions */
    client **own; /* links holding this interest */
    size_t nown, capown;
} lent;

typedef struct lremote {
    struct leaf_mgr *lm;
    int idx;
    char **urls;
    size_t nurls, next_url;
    char *user, *pass, *token, *account;
    char *creds, *nkey_seed;
    char **deny_imp, **deny_exp;
    size_t ndeny_imp, ndeny_exp;
    uv_timer_t timer;
    bool timer_init;
    uv_getaddrinfo_t gai;
    bool resolving;
    client *c;           /* dialling or up (retained), NULL when idle */
    char url[512];       /* the URL being tried, without credentials */
    char host[256];
    int port;
    char url_user[256], url_pass[256];
    int64_t next_delay_ms; /* before the next attempt */
    SSL_CTX *tls_ctx;    /* client TLS context (NULL: plain unless a URL says tls://) */
    bool tls_always;
    bool url_tls;        /* the URL being tried is tls:// */
    uint64_t attempts;
    char reason[256];    /* why the last link went down */
} lremote;

struct leaf_link {
    lremote *rem;        /* solicited: the remote; accepted: NULL */
    bool solicited;
    atomic_bool registered; /* handshake done: in lm->links */
    bool got_info;
    bool headers;        /* both sides do headers */
    char *nonce;         /* the hub's INFO nonce (solicited) */
    char *rname, *rid, *rdomain;
    uv_connect_t creq;
    int64_t rtt_ms;
};

struct leaf_mgr {
    server *srv;
    pthread_mutex_t mu;
    lent **tab;
    size_t cap, n;
    client **links;
    size_t nlinks, caplinks;
    lremote *rems;
    size_t nrems;
    char lds[64];        /* "$LDS.<random>" */
    char *host, *user, *pass;
    int port;
    int bound_port;
    int64_t reconnect_ms;
    ember_leaf_event_fn ev;
    void *evud;
    uv_tcp_t listener;
    bool listening;
    bool stopping;
    char *domain_api;    /* "$JS.<domain>.API.>" when JetStream with a domain */
    SSL_CTX *tls_ctx;    /* TLS on the leafnodes port (NULL: plain) */
};

#define LLOG(c, lvl, fmt, ...)                                                                 \
    srv_log((c)->srv, lvl, "%s:%d - lid:%llu - " fmt, (c)->ip, (c)->port,                      \
            (unsigned long long)(c)->cid, ##__VA_ARGS__)

static const char *const deny_client_js[] = {"$JS.API.>", "$KV.>", "$OBJ.>", NULL};

/* ------------------------------------------------------------------ small helpers */

static char *dupn(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Split on commas and blanks into a malloc'd array of strings. 0 or -1 (ENOMEM). */
static int split_list(const char *s, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!s)
        return 0;
    size_t cap = 0;
    const char *p = s;
    while (*p) {
        while (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n')
            p++;
        const char *q = p;
        while (*q && *q != ',' && *q != ' ' && *q != '\t' && *q != '\n')
            q++;
        if (q > p) {
            if (*n == cap) {
                size_t nc = cap ? cap * 2 : 4;
                char **nv = realloc(*out, nc * sizeof *nv);
                if (!nv)
                    return -1;
                *out = nv;
                cap = nc;
            }
            if (!((*out)[*n] = dupn(p, (size_t)(q - p))))
                return -1;
            (*n)++;
        }
        p = q;
    }
    return 0;
}

/* Is the subscription subject (wildcards allowed, taken literally) under a pattern? */
static bool denied_by(const char *const *pats, size_t npats, const char *subj, size_t len)
{
    for (size_t i = 0; npats ? i < npats : pats[i] != NULL; i++)
        if (subject_matches(pats[i], strlen(pats[i]), subj, len))
            return true;
    return false;
}

/* Interest this link must not be told of (and must not tell us of): messages on it are
 * never sent to the link. in: a subscription coming from the link. */
static bool link_denied_sub(struct leaf_mgr *lm, client *c, const char *subj, size_t len,
                            bool in)
{
    if (denied_by(deny_client_js, 0, subj, len))
        return true;
    struct leaf_link *L = c->leaf;
    if (in && lm->domain_api && subject_matches(lm->domain_api, strlen(lm->domain_api), subj, len))
        return true;
    if (L->rem) {
        lremote *r = L->rem;
        if (in ? (r->ndeny_exp && denied_by((const char *const *)r->deny_exp, r->ndeny_exp, subj, len))
               : (r->ndeny_imp && denied_by((const char *const *)r->deny_imp, r->ndeny_imp, subj, len)))
            return true;
    }
    return false;
}

/* A message subject that must not cross the link outbound. */
static bool link_denied_out(struct leaf_mgr *lm, client *c, const char *subj, size_t len)
{
    if (denied_by(deny_client_js, 0, subj, len))
        return true;
    if (lm->domain_api && subject_matches(lm->domain_api, strlen(lm->domain_api), subj, len))
        return true;
    lremote *r = c->leaf->rem;
    return r && r->ndeny_exp && denied_by((const char *const *)r->deny_exp, r->ndeny_exp, subj, len);
}

/* A message subject from the link that is dropped. */
static bool link_denied_in(struct leaf_mgr *lm, client *c, const char *subj, size_t len)
{
    (void)lm;
    if (denied_by(deny_client_js, 0, subj, len))
        return true;
    lremote *r = c->leaf->rem;
    return r && r->ndeny_imp && denied_by((const char *const *)r->deny_imp, r->ndeny_imp, subj, len);
}

static void emit_event(struct leaf_mgr *lm, const char *url, bool up, const char *reason)
{
    if (lm->ev)
        lm->ev(lm->evud, url, up, reason);
}

/* ------------------------------------------------------------------ options */

static int parse_url(lremote *r, const char *u);

int leaf_check_options(const ember_server_options *o)
{
    if (o->leaf_port < -1 || o->leaf_port > 65535)
        return err_set(EMBER_EINVAL, "invalid leafnodes port %d", o->leaf_port);
    if ((o->leaf_username && !o->leaf_password) || (!o->leaf_username && o->leaf_password))
        return err_set(EMBER_EINVAL, "leafnodes username and password must be given together");
    if (o->leaf_reconnect_ms < 0)
        return err_set(EMBER_EINVAL, "invalid leafnodes reconnect interval %lld",
                       (long long)o->leaf_reconnect_ms);
    if (o->leaf_remotes_count && !o->leaf_remotes)
        return err_set(EMBER_EINVAL, "leaf_remotes is NULL with leaf_remotes_count %zu",
                       o->leaf_remotes_count);
    for (size_t i = 0; i < o->leaf_remotes_count; i++) {
        const ember_leaf_remote *r = &o->leaf_remotes[i];
        if (!r->urls || !*r->urls)
            return err_set(EMBER_EINVAL, "leafnode remote %zu has no URL", i);
        if (r->nkey_seed && nkey_seed_decode(r->nkey_seed, NULL, (uint8_t[32]){0}) != 0)
            return err_set(EMBER_EINVAL, "leafnode remote %zu: Remote nkey has malformed seed", i);
        if (r->credentials) {
            char *jwt, *seed, cerr[300];
            if (nkey_creds_read(r->credentials, &jwt, &seed, cerr, sizeof cerr) != 0)
                return err_set(EMBER_EINVAL, "leafnode remote %zu: %s", i, cerr);
            free(jwt);
            OPENSSL_cleanse(seed, strlen(seed));
            free(seed);
        }
        bool known = !r->account || !*r->account || !strcmp(r->account, "$G");
        for (size_t k = 0; !known && o->accounts && k < o->accounts_count; k++)
            known = o->accounts[k].name && !strcmp(o->accounts[k].name, r->account);
        if (!known)
            return err_set(EMBER_EINVAL, "leafnode remote %zu: account \"%s\" not found", i,
                           r->account);
        char **urls;
        size_t n;
        if (split_list(r->urls, &urls, &n))
            return err_set(EMBER_ENOMEM, "out of memory");
        int rc = 0;
        for (size_t k = 0; k < n && !rc; k++) {
            const char *u = urls[k];
            const char *sep = strstr(u, "://");
            if (!sep) {
                rc = err_set(EMBER_EINVAL, "leafnode remote URL \"%s\": missing scheme", u);
                break;
            }
            size_t sl = (size_t)(sep - u);
            if ((sl == 3 && !strncasecmp(u, "wss", 3)) || (sl == 2 && !strncasecmp(u, "ws", 2)))
                rc = err_set(EMBER_EINVAL,
                             "leafnode remote URL \"%s\": WebSocket remotes are not supported "
                             "yet", u);
            else if (!(sl == 9 && !strncasecmp(u, "nats-leaf", 9)) &&
                     !(sl == 4 && !strncasecmp(u, "nats", 4)) &&
                     !(sl == 3 && !strncasecmp(u, "tls", 3)))
                rc = err_set(EMBER_EINVAL, "leafnode remote URL \"%s\": unknown scheme", u);
            else if (!sep[3])
                rc = err_set(EMBER_EINVAL, "leafnode remote URL \"%s\": missing host", u);
            else {
                lremote tmp;
                memset(&tmp, 0, sizeof tmp);
                if (parse_url(&tmp, u) != 0)
                    rc = err_set(EMBER_EINVAL, "leafnode remote URL \"%s\": invalid host or port", u);
            }
        }
        free_list(urls, n);
        if (n == 0 && !rc)
            rc = err_set(EMBER_EINVAL, "leafnode remote %zu has no URL", i);
        if (rc)
            return rc;
    }
    return 0;
}

static char *dup0(const char *s) { return s ? strdup(s) : NULL; }

static void lm_free_remotes(struct leaf_mgr *lm)
{
    for (size_t i = 0; i < lm->nrems; i++) {
        lremote *r = &lm->rems[i];
        free_list(r->urls, r->nurls);
        free_list(r->deny_imp, r->ndeny_imp);
        free_list(r->deny_exp, r->ndeny_exp);
        free(r->user);
        free(r->pass);
        free(r->token);
        free(r->account);
        free(r->creds);
        if (r->nkey_seed) {
            OPENSSL_cleanse(r->nkey_seed, strlen(r->nkey_seed));
            free(r->nkey_seed);
        }
        if (r->tls_ctx)
            tlsio_ctx_free(r->tls_ctx);
    }
    free(lm->rems);
}

static lent *lent_get(struct leaf_mgr *lm, account *acc, const char *subj, const char *queue,
                      bool create);

int leaf_init(server *s, const ember_server_options *o)
{
    if (o->leaf_remotes_count == 0 && o->leaf_port == 0)
        return 0;
    struct leaf_mgr *lm = calloc(1, sizeof *lm);
    if (!lm)
        return err_set(EMBER_ENOMEM, "out of memory");
    lm->srv = s;
    pthread_mutex_init(&lm->mu, NULL);
    lm->port = o->leaf_port;
    lm->host = dup0(o->leaf_host ? o->leaf_host : (o->host ? o->host : "0.0.0.0"));
    lm->user = dup0(o->leaf_username);
    lm->pass = dup0(o->leaf_password);
    lm->reconnect_ms = o->leaf_reconnect_ms > 0 ? o->leaf_reconnect_ms : 1000;
    lm->ev = o->leaf_event_fn;
    lm->evud = o->leaf_event_userdata;
    char nuid[23];
    nuid_next(nuid);
    snprintf(lm->lds, sizeof lm->lds, "$LDS.%s", nuid);
    s->leaf = lm;
    if (!lm->host)
        return err_set(EMBER_ENOMEM, "out of memory");
    char terr[512];
    if (o->leaf_tls_cert_file || o->leaf_tls_key_file) {
        tlsio_config tc = {.cert_file = o->leaf_tls_cert_file, .key_file = o->leaf_tls_key_file,
                           .ca_file = o->leaf_tls_ca_file, .verify = o->leaf_tls_verify};
        if (!(lm->tls_ctx = tlsio_ctx_new(true, &tc, terr, sizeof terr)))
            return err_set(EMBER_EINVAL, "leafnodes tls: %s", terr);
    } else if (o->leaf_tls_ca_file || o->leaf_tls_verify) {
        return err_set(EMBER_EINVAL, "leafnodes tls: missing 'cert_file' in TLS configuration");
    }
    if (o->jetstream && o->jetstream_domain) {
        size_t n = strlen(o->jetstream_domain) + 16;
        lm->domain_api = malloc(n);
        if (!lm->domain_api)
            return err_set(EMBER_ENOMEM, "out of memory");
        snprintf(lm->domain_api, n, "$JS.%s.API.>", o->jetstream_domain);
    }
    if (o->leaf_remotes_count) {
        lm->rems = calloc(o->leaf_remotes_count, sizeof *lm->rems);
        if (!lm->rems)
            return err_set(EMBER_ENOMEM, "out of memory");
        lm->nrems = o->leaf_remotes_count;
        for (size_t i = 0; i < lm->nrems; i++) {
            const ember_leaf_remote *src = &o->leaf_remotes[i];
            lremote *r = &lm->rems[i];
            r->lm = lm;
            r->idx = (int)i;
            if (split_list(src->urls, &r->urls, &r->nurls) ||
                split_list(src->deny_imports, &r->deny_imp, &r->ndeny_imp) ||
                split_list(src->deny_exports, &r->deny_exp, &r->ndeny_exp))
                return err_set(EMBER_ENOMEM, "out of memory");
            bool any_tls_url = false;
            for (size_t k = 0; k < r->nurls; k++)
                if (!strncasecmp(r->urls[k], "tls://", 6))
                    any_tls_url = true;
            r->tls_always = src->tls;
            if (src->tls || any_tls_url || src->tls_ca_file || src->tls_cert_file ||
                src->tls_key_file || src->tls_insecure) {
                tlsio_config tc = {.cert_file = src->tls_cert_file, .key_file = src->tls_key_file,
                                   .ca_file = src->tls_ca_file, .insecure = src->tls_insecure};
                if (!(r->tls_ctx = tlsio_ctx_new(false, &tc, terr, sizeof terr)))
                    return err_set(EMBER_EINVAL, "leafnode remote %zu tls: %s", i, terr);
            }
            r->user = dup0(src->username);
            r->pass = dup0(src->password);
            r->token = dup0(src->auth_token);
            r->account = dup0(src->account ? src->account : "$G");
            r->creds = dup0(src->credentials);
            r->nkey_seed = dup0(src->nkey_seed);
            if ((src->credentials && !r->creds) || (src->nkey_seed && !r->nkey_seed))
                return err_set(EMBER_ENOMEM, "out of memory");
            if ((src->username && !r->user) || (src->password && !r->pass) ||
                (src->auth_token && !r->token) || !r->account)
                return err_set(EMBER_ENOMEM, "out of memory");
        }
    }
    /* our loop-detection subject is interest of our own, on every link */
    lent *e = lent_get(lm, NULL, lm->lds, NULL, true);
    if (!e)
        return err_set(EMBER_ENOMEM, "out of memory");
    e->local = 1;
    return 0;
}

/* ------------------------------------------------------------------ interest table */

static size_t key_hash(const char *subj, const char *queue)
{
    size_t h = 1469598103934665603ull;
    for (const char *p = subj; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    if (queue) {
        h = (h ^ ' ') * 1099511628211ull;
        for (const char *p = queue; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ull;
    }
    return h;
}

static bool qeq(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

static lent *lent_get(struct leaf_mgr *lm, account *acc, const char *subj, const char *queue,
                      bool create)
{
    if (lm->cap) {
        for (lent *e = lm->tab[key_hash(subj, queue) & (lm->cap - 1)]; e; e = e->next)
            if (e->acc == acc && !strcmp(e->subj, subj) && qeq(e->queue, queue))
                return e;
    }
    if (!create)
        return NULL;
    if (lm->n + 1 > lm->cap / 4 * 3) {
        size_t nc = lm->cap ? lm->cap * 2 : 64;
        lent **nt = calloc(nc, sizeof *nt);
        if (!nt)
            return NULL;
        for (size_t i = 0; i < lm->cap; i++)
            for (lent *e = lm->tab[i], *nx; e; e = nx) {
                nx = e->next;
                size_t b = key_hash(e->subj, e->queue) & (nc - 1);
                e->next = nt[b];
                nt[b] = e;
            }
        free(lm->tab);
        lm->tab = nt;
        lm->cap = nc;
    }
    lent *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->subj = strdup(subj);
    e->queue = queue ? strdup(queue) : NULL;
    e->acc = acc;
    if (!e->subj || (queue && !e->queue)) {
        free(e->subj);
        free(e->queue);
        free(e);
        return NULL;
    }
    size_t b = key_hash(subj, queue) & (lm->cap - 1);
    e->next = lm->tab[b];
    lm->tab[b] = e;
    lm->n++;
    return e;
}

static void lent_drop(struct leaf_mgr *lm, lent *e)
{
    lent **pp = &lm->tab[key_hash(e->subj, e->queue) & (lm->cap - 1)];
    for (; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    lm->n--;
    free(e->subj);
    free(e->queue);
    free(e->own);
    free(e);
}

static bool lent_owned_by(const lent *e, const client *c)
{
    for (size_t i = 0; i < e->nown; i++)
        if (e->own[i] == c)
            return true;
    return false;
}

/* What link c should be told of e: the number of subscriptions behind it (0: none). */
static int lent_adv(struct leaf_mgr *lm, const lent *e, client *c)
{
    if (link_denied_sub(lm, c, e->subj, strlen(e->subj), false))
        return 0;
    int n = e->local;
    /* a hub-side link sees every other link's interest; a spoke link (to our hub) only
     * the interest of leafs that joined us (nats-server: local kinds and non-spoke leafs) */
    for (size_t i = 0; i < e->nown; i++) {
        client *o = e->own[i];
        if (o != c && (!c->leaf->solicited || !o->leaf->solicited))
            n++;
    }
    return n;
}

static void emit_interest(client *c, const lent *e, int before, int after)
{
    char buf[1024];
    int n = 0;
    if (!e->queue) {
        if (before == 0 && after > 0)
            n = snprintf(buf, sizeof buf, "LS+ %s\r\n", e->subj);
        else if (before > 0 && after == 0)
            n = snprintf(buf, sizeof buf, "LS- %s\r\n", e->subj);
    } else {
        if (after > 0 && after != before)
            n = snprintf(buf, sizeof buf, "LS+ %s %s %d\r\n", e->subj, e->queue, after);
        else if (before > 0 && after == 0)
            n = snprintf(buf, sizeof buf, "LS- %s %s\r\n", e->subj, e->queue);
    }
    if (n > 0 && (size_t)n < sizeof buf) {
        client_send(c, buf, (size_t)n);
    } else if (n > 0) { /* a long subject */
        char *p = malloc((size_t)n + 1);
        if (!p)
            return;
        if (!e->queue)
            snprintf(p, (size_t)n + 1, "%s %s\r\n", after > 0 ? "LS+" : "LS-", e->subj);
        else if (after > 0)
            snprintf(p, (size_t)n + 1, "LS+ %s %s %d\r\n", e->subj, e->queue, after);
        else
            snprintf(p, (size_t)n + 1, "LS- %s %s\r\n", e->subj, e->queue);
        client_send(c, p, (size_t)n);
        free(p);
    }
}

void leaf_sub_changed(server *s, sub *x, int delta)
{
    struct leaf_mgr *lm = s->leaf;
    if (!lm)
        return;
    client *owner = x->cl && x->cl->kind == CK_LEAF ? x->cl : NULL;
    pthread_mutex_lock(&lm->mu);
    lent *e = lent_get(lm, x->cl->acc, x->subject, x->queue, delta > 0);
    if (!e) {
        pthread_mutex_unlock(&lm->mu);
        return;
    }
    int before[64];
    size_t nl = lm->nlinks < 64 ? lm->nlinks : 64;
    for (size_t i = 0; i < nl; i++)
        before[i] = lent_adv(lm, e, lm->links[i]);
    if (owner) {
        if (delta > 0 && !lent_owned_by(e, owner)) {
            if (e->nown == e->capown) {
                size_t nc = e->capown ? e->capown * 2 : 2;
                client **no = realloc(e->own, nc * sizeof *no);
                if (no) {
                    e->own = no;
                    e->capown = nc;
                }
            }
            if (e->nown < e->capown)
                e->own[e->nown++] = owner;
        } else if (delta < 0) {
            for (size_t i = 0; i < e->nown; i++)
                if (e->own[i] == owner) {
                    e->own[i] = e->own[--e->nown];
                    break;
                }
        }
    } else {
        e->local += delta;
        if (e->local < 0)
            e->local = 0;
    }
    for (size_t i = 0; i < nl; i++) {
        client *c = lm->links[i];
        if (c == owner || (e->acc && c->acc != e->acc))
            continue;
        emit_interest(c, e, before[i], lent_adv(lm, e, c));
    }
    if (e->local == 0 && e->nown == 0)
        lent_drop(lm, e);
    pthread_mutex_unlock(&lm->mu);
}

/* Handshake done: join the links and tell the peer all the interest it should see. */
static void link_register(client *c)
{
    struct leaf_mgr *lm = c->srv->leaf;
    pthread_mutex_lock(&lm->mu);
    if (lm->nlinks == lm->caplinks) {
        size_t nc = lm->caplinks ? lm->caplinks * 2 : 4;
        client **nv = realloc(lm->links, nc * sizeof *nv);
        if (!nv) {
            pthread_mutex_unlock(&lm->mu);
            client_err_close(c, NULL, CR_PROTOCOL);
            return;
        }
        lm->links = nv;
        lm->caplinks = nc;
    }
    client_retain(c);
    lm->links[lm->nlinks++] = c;
    atomic_store(&c->leaf->registered, true);
    for (size_t i = 0; i < lm->cap; i++)
        for (lent *e = lm->tab[i]; e; e = e->next) {
            if (e->acc && e->acc != c->acc)
                continue;
            int n = lent_adv(lm, e, c);
            if (n > 0)
                emit_interest(c, e, 0, n);
        }
    pthread_mutex_unlock(&lm->mu);
}

static bool link_unregister(client *c)
{
    struct leaf_mgr *lm = c->srv->leaf;
    bool found = false;
    pthread_mutex_lock(&lm->mu);
    for (size_t i = 0; i < lm->nlinks; i++)
        if (lm->links[i] == c) {
            lm->links[i] = lm->links[--lm->nlinks];
            found = true;
            break;
        }
    atomic_store(&c->leaf->registered, false);
    pthread_mutex_unlock(&lm->mu);
    if (found)
        client_release(c);
    return found;
}

/* ------------------------------------------------------------------ messages out */

bool leaf_send(server *s, const leaf_target *t, const msgview *mv)
{
    client *c = t->c;
    struct leaf_link *L = c->leaf;
    if (!L || !atomic_load_explicit(&L->registered, memory_order_acquire))
        return false;
    const char *subj = mv->dsubj ? mv->dsubj : mv->subject;
    size_t slen = mv->dsubj ? mv->dsubj_len : mv->subject_len;
    if (link_denied_out(s->leaf, c, subj, slen))
        return false;
    const bool with_hdr = mv->hdr && mv->hdr_len && L->headers;
    size_t hlen = with_hdr ? mv->hdr_len : 0;
    size_t total = hlen + mv->data_len;
    /* control line: op, subject, [+|] reply[@subject], queues, sizes */
    size_t qlen = 0;
    for (size_t i = 0; i < t->nq; i++)
        qlen += strlen(t->q[i]) + 1;
    size_t cap = 8 + slen + 3 + (mv->reply ? mv->reply_len + 1 + mv->subject_len + 1 : 0) + qlen + 48;
    char stackbuf[1024];
    char *line = cap <= sizeof stackbuf ? stackbuf : malloc(cap);
    if (!line)
        return false;
    char *p = line;
    memcpy(p, with_hdr ? "HMSG " : "LMSG ", 5);
    p += 5;
    memcpy(p, subj, slen);
    p += slen;
    *p++ = ' ';
    if (t->nq)
        *p++ = mv->reply ? '+' : '|', *p++ = ' ';
    if (mv->reply) {
        memcpy(p, mv->reply, mv->reply_len);
        p += mv->reply_len;
        if (mv->dsubj) { /* the stream subject rides after '@' (nats-server) */
            *p++ = '@';
            memcpy(p, mv->subject, mv->subject_len);
            p += mv->subject_len;
        }
        *p++ = ' ';
    }
    for (size_t i = 0; i < t->nq; i++) {
        size_t ql = strlen(t->q[i]);
        memcpy(p, t->q[i], ql);
        p += ql;
        *p++ = ' ';
    }
    if (with_hdr) {
        p += fmt_u64(p, hlen);
        *p++ = ' ';
    }
    p += fmt_u64(p, total);
    *p++ = '\r';
    *p++ = '\n';
    struct iovec v[4];
    int nv = 0;
    v[nv++] = (struct iovec){line, (size_t)(p - line)};
    if (with_hdr)
        v[nv++] = (struct iovec){(void *)mv->hdr, hlen};
    if (mv->data_len)
        v[nv++] = (struct iovec){(void *)mv->data, mv->data_len};
    v[nv++] = (struct iovec){"\r\n", 2};
    bool ok = client_sendv(c, v, nv);
    if (line != stackbuf)
        free(line);
    if (ok) {
        atomic_fetch_add_explicit(&c->out_msgs, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&c->out_bytes, total, memory_order_relaxed);
    }
    return ok;
}

/* ------------------------------------------------------------------ INFO / CONNECT */

static void send_json_op(client *c, const char *op, cJSON *j)
{
    char *txt = cJSON_PrintUnformatted(j);
    if (!txt)
        return;
    size_t n = strlen(txt), ol = strlen(op);
    char *line = malloc(n + ol + 4);
    if (line) {
        memcpy(line, op, ol);
        line[ol] = ' ';
        memcpy(line + ol + 1, txt, n);
        memcpy(line + ol + 1 + n, "\r\n", 2);
        client_send(c, line, n + ol + 3);
        free(line);
    }
    cJSON_free(txt);
}

static cJSON *hub_info(client *c)
{
    server *s = c->srv;
    struct leaf_mgr *lm = s->leaf;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "server_id", s->id);
    cJSON_AddStringToObject(j, "server_name", s->o_name);
    cJSON_AddStringToObject(j, "version", EMBER_NATS_VERSION);
    cJSON_AddNumberToObject(j, "proto", 1);
    cJSON_AddStringToObject(j, "go", "ember-" EMBER_VERSION_STRING);
    cJSON_AddStringToObject(j, "host", lm->host);
    cJSON_AddNumberToObject(j, "port", lm->bound_port);
    cJSON_AddBoolToObject(j, "headers", !s->opts.no_header_support);
    cJSON_AddBoolToObject(j, "auth_required", true);
    cJSON_AddNumberToObject(j, "max_payload", (double)s->opts.max_payload);
    if (s->opts.jetstream)
        cJSON_AddBoolToObject(j, "jetstream", true);
    if (s->opts.jetstream && s->o_domain)
        cJSON_AddStringToObject(j, "domain", s->o_domain);
    cJSON_AddNumberToObject(j, "client_id", (double)c->cid);
    cJSON_AddStringToObject(j, "client_ip", c->ip);
    /* a Go leaf checks for a non-nil leafnode_urls ("wrong port" otherwise) */
    cJSON *urls = cJSON_AddArrayToObject(j, "leafnode_urls");
    const char *h = lm->host;
    if (!strcmp(h, "0.0.0.0") || !strcmp(h, "::") || !*h)
        h = "127.0.0.1";
    char hp[300];
    snprintf(hp, sizeof hp, strchr(h, ':') ? "[%s]:%d" : "%s:%d", h, lm->bound_port);
    cJSON_AddItemToArray(urls, cJSON_CreateString(hp));
    cJSON_AddBoolToObject(j, "info_on_connect", true);
    if (!lm->user && server_needs_nonce(s)) /* nkey and JWT users sign it in CONNECT */
        cJSON_AddStringToObject(j, "nonce", client_nonce(c));
    if (lm->tls_ctx) {
        cJSON_AddBoolToObject(j, "tls_required", true);
        if (s->opts.leaf_tls_verify)
            cJSON_AddBoolToObject(j, "tls_verify", true);
    }
    return j;
}

/* The nonce signature of a .creds file (jwt + sig) or an nkey seed (nkey + sig). */
static int add_signature(client *c, cJSON *j)
{
    lremote *r = c->leaf->rem;
    const char *nonce = c->leaf->nonce ? c->leaf->nonce : "";
    char *jwt = NULL, *seed = NULL, err[300];
    if (r->creds) {
        LLOG(c, EMBER_LOG_DEBUG, "Authenticating with credentials file \"%s\"", r->creds);
        if (nkey_creds_read(r->creds, &jwt, &seed, err, sizeof err) != 0) {
            LLOG(c, EMBER_LOG_ERROR, "%s", err);
            snprintf(r->reason, sizeof r->reason, "%.200s", err);
            return -1;
        }
    } else if (r->nkey_seed) {
        seed = strdup(r->nkey_seed);
        if (!seed)
            return -1;
    } else {
        return 0;
    }
    uint8_t sig[64];
    char pub[57];
    int rc = nkey_sign(seed, nonce, strlen(nonce), sig);
    if (rc == 0 && !jwt)
        rc = nkey_seed_public(seed, pub);
    OPENSSL_cleanse(seed, strlen(seed));
    free(seed);
    char *s64 = rc == 0 ? nkey_b64url(sig, sizeof sig) : NULL;
    if (!s64) {
        free(jwt);
        snprintf(r->reason, sizeof r->reason, "Error signing the nonce");
        LLOG(c, EMBER_LOG_ERROR, "Error signing the nonce");
        return -1;
    }
    if (jwt)
        cJSON_AddStringToObject(j, "jwt", jwt);
    else
        cJSON_AddStringToObject(j, "nkey", pub);
    cJSON_AddStringToObject(j, "sig", s64);
    free(s64);
    free(jwt);
    return 0;
}

static int send_leaf_connect(client *c)
{
    server *s = c->srv;
    lremote *r = c->leaf->rem;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "version", EMBER_NATS_VERSION);
    if (add_signature(c, j) != 0) {
        cJSON_Delete(j);
        return -1;
    }
    const char *user = r->user ? r->user : (r->url_user[0] ? r->url_user : NULL);
    const char *pass = r->user ? r->pass : (r->url_user[0] ? r->url_pass : NULL);
    if (user)
        cJSON_AddStringToObject(j, "user", user);
    if (pass)
        cJSON_AddStringToObject(j, "pass", pass);
    if (r->token)
        cJSON_AddStringToObject(j, "auth_token", r->token);
    cJSON_AddStringToObject(j, "server_id", s->id);
    if (s->opts.jetstream && s->o_domain)
        cJSON_AddStringToObject(j, "domain", s->o_domain);
    cJSON_AddStringToObject(j, "name", s->o_name);
    cJSON_AddBoolToObject(j, "headers", !s->opts.no_header_support);
    if (s->opts.jetstream)
        cJSON_AddBoolToObject(j, "jetstream", true);
    if (r->ndeny_imp) {
        cJSON *d = cJSON_AddArrayToObject(j, "deny_pub");
        for (size_t i = 0; i < r->ndeny_imp; i++)
            cJSON_AddItemToArray(d, cJSON_CreateString(r->deny_imp[i]));
    }
    cJSON_AddStringToObject(j, "remote_account", r->account);
    cJSON_AddNumberToObject(j, "protocol", 1);
    send_json_op(c, "CONNECT", j);
    cJSON_Delete(j);
    return 0;
}

static const char *jstr(cJSON *o, const char *k)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool jtrue(cJSON *o, const char *k) { return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, k)); }

static void note_domains(client *c)
{
    server *s = c->srv;
    struct leaf_link *L = c->leaf;
    const char *mine = s->opts.jetstream && s->o_domain ? s->o_domain : "";
    const char *theirs = L->rdomain ? L->rdomain : "";
    if (s->opts.jetstream)
        LLOG(c, EMBER_LOG_INFO, "JetStream using domains: local \"%s\", remote \"%s\"", mine, theirs);
}

static void solicited_ready(client *c);
static void on_hub_tls_done(client *c);

/* Solicited side: the hub's INFO. */
static int on_hub_info(client *c, const proto_op *op)
{
    struct leaf_link *L = c->leaf;
    cJSON *j = cJSON_ParseWithLength(op->arg.p, op->arg.len);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        LLOG(c, EMBER_LOG_ERROR, "Leafnode Error: invalid INFO JSON");
        client_err_close(c, NULL, CR_PROTOCOL);
        return 1;
    }
    if (L->got_info) { /* connect_info or an update: note what it says */
        cJSON_Delete(j);
        return 0;
    }
    L->got_info = true;
    lremote *rr = L->rem;
    bool want_tls = rr->url_tls || rr->tls_always || jtrue(j, "tls_required");
    if (want_tls && !rr->tls_ctx) {
        cJSON_Delete(j);
        snprintf(rr->reason, sizeof rr->reason, "TLS required by the remote, not configured");
        LLOG(c, EMBER_LOG_ERROR, "Leafnode Error: the remote %s requires TLS; configure the "
             "remote's TLS (tls://, tls_ca_file)", rr->url);
        client_err_close(c, NULL, CR_PROTOCOL);
        return 1;
    }
    L->headers = jtrue(j, "headers") && !c->srv->opts.no_header_support;
    const char *id = jstr(j, "server_id"), *name = jstr(j, "server_name"),
               *dom = jstr(j, "domain");
    L->rid = id ? strdup(id) : NULL;
    L->rname = name ? strdup(name) : (id ? strdup(id) : NULL);
    L->rdomain = dom ? strdup(dom) : NULL;
    const char *nonce = jstr(j, "nonce");
    L->nonce = nonce ? strdup(nonce) : NULL;
    cJSON_Delete(j);
    if (want_tls) { /* the handshake first; CONNECT once it completed */
        if (xport_start_tls(c, rr->tls_ctx, false, rr->host, LEAF_HANDSHAKE_MS, on_hub_tls_done)) {
            client_err_close(c, NULL, CR_PROTOCOL);
            return 1;
        }
        return 0;
    }
    solicited_ready(c);
    return 0;
}

static void solicited_ready(client *c)
{
    struct leaf_link *L = c->leaf;
    if (send_leaf_connect(c) != 0) {
        client_err_close(c, NULL, CR_AUTH);
        return;
    }
    c->connected = true;
    proto_parser_require_connect(c->parser, 0);
    link_register(c);
    lremote *r = L->rem;
    r->attempts = 0;
    r->reason[0] = 0;
    LLOG(c, EMBER_LOG_INFO, "Leafnode connection created for account: %s", c->acc->name);
    LLOG(c, EMBER_LOG_INFO, "Connected leafnode to \"%s\"", r->host);
    note_domains(c);
    emit_event(c->srv->leaf, r->url, true, NULL);
}

static void on_hub_tls_done(client *c)
{
    if (!atomic_load(&c->closing))
        solicited_ready(c);
}

/* Accepting side: a leaf's CONNECT. */
static int on_leaf_connect(client *c, const proto_op *op)
{
    server *s = c->srv;
    struct leaf_mgr *lm = s->leaf;
    struct leaf_link *L = c->leaf;
    if (c->connected) {
        client_err_close(c, "Unknown Protocol Operation", CR_PROTOCOL);
        return 1;
    }
    cJSON *j = cJSON_ParseWithLength(op->arg.p, op->arg.len);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        LLOG(c, EMBER_LOG_ERROR, "Leafnode connect parse error: invalid JSON");
        client_err_close(c, NULL, CR_PROTOCOL);
        return 1;
    }
    if (jstr(j, "lang")) { /* a client on the leafnodes port */
        cJSON_Delete(j);
        LLOG(c, EMBER_LOG_ERROR, "attempted to connect to leaf node port");
        client_err_close(c, "attempted to connect to leaf node port", CR_PROTOCOL);
        return 1;
    }
    if (lm->user) {
        const char *u = jstr(j, "user"), *pw = jstr(j, "pass");
        if (!u || !pw || !str_eq_ct(u, lm->user) || !str_eq_ct(pw, lm->pass)) {
            LLOG(c, EMBER_LOG_ERROR, "authentication error - User \"%s\"", u ? u : "");
            cJSON_Delete(j);
            client_err_close(c, "Authorization Violation", CR_AUTH);
            return 1;
        }
    } else if (s->trust) { /* operator mode: the leaf's .creds */
        char why[256];
        if (client_jwt_auth(c, jstr(j, "jwt"), jstr(j, "sig"), why, sizeof why) != 0) {
            LLOG(c, EMBER_LOG_ERROR, "authentication error - %s", why);
            cJSON_Delete(j);
            client_err_close(c, "Authorization Violation", CR_AUTH);
            return 1;
        }
    } else if (s->users || s->o_user || s->o_token) {
        /* no leafnodes authorization: checked as a client (nats-server's isClientAuthorized) */
        const char *u = jstr(j, "user"), *pw = jstr(j, "pass"), *nk = jstr(j, "nkey"),
                   *sg = jstr(j, "sig"), *tk = jstr(j, "auth_token");
        const auth_user *au;
        if (!server_credentials_ok(s, u, pw, tk, nk, sg, c->nonce, &au)) {
            if (nk)
                LLOG(c, EMBER_LOG_ERROR, "authentication error - Nkey \"%s\"", nk);
            else
                LLOG(c, EMBER_LOG_ERROR, "authentication error - User \"%s\"", u ? u : "");
            cJSON_Delete(j);
            client_err_close(c, "Authorization Violation", CR_AUTH);
            return 1;
        }
        account *ua = au ? server_account(s, auth_user_account(au)) : NULL;
        c->acc = ua ? ua : s->gacc;
    }
    L->headers = jtrue(j, "headers") && !s->opts.no_header_support;
    const char *id = jstr(j, "server_id"), *name = jstr(j, "name"), *dom = jstr(j, "domain");
    L->rid = id ? strdup(id) : NULL;
    L->rname = name ? strdup(name) : (id ? strdup(id) : NULL);
    L->rdomain = dom ? strdup(dom) : NULL;
    cJSON_Delete(j);
    c->connected = true;
    proto_parser_require_connect(c->parser, 0);
    /* the INFO with connect_info (a Go leaf waits for it), then our interest */
    cJSON *info = hub_info(c);
    cJSON_AddBoolToObject(info, "connect_info", true);
    cJSON_AddStringToObject(info, "remote_account", c->acc->name);
    cJSON_AddBoolToObject(info, "acc_is_sys", false);
    send_json_op(c, "INFO", info);
    cJSON_Delete(info);
    link_register(c);
    client_send(c, "PING\r\n", 6);
    c->pings_out++;
    LLOG(c, EMBER_LOG_INFO, "Leafnode connection created for account: %s", c->acc->name);
    note_domains(c);
    char url[128];
    snprintf(url, sizeof url, "nats-leaf://%s:%d", c->ip, c->port);
    emit_event(lm, url, true, NULL);
    return 0;
}

/* ------------------------------------------------------------------ LS+ / LS- / LMSG */

static void leaf_sub_destroy(sub *x)
{
    client *c = x->cl;
    free(x->subject);
    free(x->queue);
    free(x->sid);
    free(x);
    client_release(c);
}

static void loop_detected(client *c)
{
    char txt[160];
    snprintf(txt, sizeof txt,
             "Loop detected for leafnode account=\"%s\". Delaying attempt to reconnect for %ds",
             c->acc->name, LEAF_LOOP_DELAY_MS / 1000);
    LLOG(c, EMBER_LOG_ERROR, "%s", txt);
    if (c->leaf->rem) {
        c->leaf->rem->next_delay_ms = LEAF_LOOP_DELAY_MS;
        snprintf(c->leaf->rem->reason, sizeof c->leaf->rem->reason, "loop detected");
    }
    client_err_close(c, txt, CR_PROTOCOL);
}

static int on_lsub(client *c, const proto_op *op)
{
    server *s = c->srv;
    struct leaf_mgr *lm = s->leaf;
    if (!subject_is_valid_sub(op->subject.p, op->subject.len) ||
        (op->queue.len && !subject_is_valid_queue(op->queue.p, op->queue.len))) {
        LLOG(c, EMBER_LOG_ERROR, "Invalid leafnode subscription subject");
        client_send_err(c, "Invalid Subject");
        return 0;
    }
    if (op->subject.len == strlen(lm->lds) && !memcmp(op->subject.p, lm->lds, op->subject.len)) {
        loop_detected(c);
        return 1;
    }
    if (link_denied_sub(lm, c, op->subject.p, op->subject.len, true))
        return 0;
    /* key "subject" or "subject queue" in the link's sid table */
    size_t kl = op->subject.len + (op->queue.len ? op->queue.len + 1 : 0);
    char *key = malloc(kl + 1);
    if (!key)
        return 0;
    memcpy(key, op->subject.p, op->subject.len);
    if (op->queue.len) {
        key[op->subject.len] = ' ';
        memcpy(key + op->subject.len + 1, op->queue.p, op->queue.len);
    }
    key[kl] = 0;
    int w = op->queue.len && op->max > 0 ? (int)(op->max > 1000000 ? 1000000 : op->max) : 1;
    sub *old = client_stab_find(c, key, kl, NULL);
    if (old) { /* a weight update */
        atomic_store(&old->qw, w);
        free(key);
        return 0;
    }
    sub *x = calloc(1, sizeof *x);
    if (!x) {
        free(key);
        return 0;
    }
    atomic_init(&x->refs, 1);
    atomic_init(&x->qw, w);
    x->cl = c;
    client_retain(c);
    x->destroy = leaf_sub_destroy;
    x->subject = dupn(op->subject.p, op->subject.len);
    x->subject_len = op->subject.len;
    x->queue = op->queue.len ? dupn(op->queue.p, op->queue.len) : NULL;
    x->sid = key;
    x->sid_len = kl;
    if (!x->subject || (op->queue.len && !x->queue) || client_stab_add(c, x)) {
        sub_release(x);
        return 0;
    }
    if (sublist_insert(c->acc->sl, x->subject, x->queue, x) != 0) {
        sub **link;
        if (client_stab_find(c, key, kl, &link))
            client_stab_unlink(c, link);
        atomic_store(&x->closed, true);
        sub_release(x);
        return 0;
    }
    atomic_fetch_add(&s->nsubs, 1);
    leaf_sub_changed(s, x, 1);
    return 0;
}

static int on_lunsub(client *c, const proto_op *op)
{
    size_t kl = op->subject.len + (op->queue.len ? op->queue.len + 1 : 0);
    char kb[512];
    char *key = kl < sizeof kb ? kb : malloc(kl + 1);
    if (!key)
        return 0;
    memcpy(key, op->subject.p, op->subject.len);
    if (op->queue.len) {
        key[op->subject.len] = ' ';
        memcpy(key + op->subject.len + 1, op->queue.p, op->queue.len);
    }
    sub **link;
    sub *x = client_stab_find(c, key, kl, &link);
    if (x) {
        client_stab_unlink(c, link);
        sub_unsubscribe(c->srv, x);
        sub_release(x);
    }
    if (key != kb)
        free(key);
    return 0;
}

/* "$JS.ACK.<...>@<subject>": a push delivery that crossed a link (nats-server). */
static bool js_ack_remap(const char *reply, size_t len, size_t *at)
{
    if (len < 9 || memcmp(reply, "$JS.ACK.", 8) != 0)
        return false;
    for (size_t i = len; i-- > 0;)
        if (reply[i] == '@') {
            if (i + 1 >= len)
                return false;
            *at = i;
            return true;
        }
    return false;
}

static int on_lmsg(client *c, const proto_op *op)
{
    server *s = c->srv;
    atomic_fetch_add_explicit(&c->in_msgs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->in_bytes, op->hdr.len + op->payload.len, memory_order_relaxed);
    if (link_denied_in(s->leaf, c, op->subject.p, op->subject.len))
        return 0;
    msgview mv = {0};
    mv.subject = op->subject.p;
    mv.subject_len = op->subject.len;
    if (op->reply.len) {
        mv.reply = op->reply.p;
        mv.reply_len = op->reply.len;
        size_t at;
        if (js_ack_remap(op->reply.p, op->reply.len, &at)) {
            mv.dsubj = op->subject.p;
            mv.dsubj_len = op->subject.len;
            mv.subject = op->reply.p + at + 1;
            mv.subject_len = op->reply.len - at - 1;
            mv.reply_len = at;
        }
    }
    if (op->kind == PROTO_OP_HMSG && op->hdr.len) {
        mv.hdr = op->hdr.p;
        mv.hdr_len = op->hdr.len;
    }
    mv.data = op->payload.p;
    mv.data_len = op->payload.len;
    if (op->nqueues == 0) {
        mv.no_queues = true;
    } else {
        mv.qlist = op->qlist.p;
        mv.qlist_len = op->qlist.len;
    }
    server_route(s, c, &mv);
    return 0;
}

int leaf_on_op(void *ctx, const proto_op *op)
{
    client *c = ctx;
    struct leaf_link *L = c->leaf;
    if (atomic_load_explicit(&c->closing, memory_order_relaxed))
        return 1;
    switch (op->kind) {
    case PROTO_OP_INFO:
        if (L->solicited)
            return on_hub_info(c, op);
        return 0; /* an INFO from a leaf (compression negotiation): not asked for */
    case PROTO_OP_CONNECT:
        if (L->solicited) {
            client_err_close(c, "Unknown Protocol Operation", CR_PROTOCOL);
            return 1;
        }
        return on_leaf_connect(c, op);
    case PROTO_OP_PING:
        client_send(c, "PONG\r\n", 6);
        return 0;
    case PROTO_OP_PONG:
        c->pings_out = 0;
        return 0;
    case PROTO_OP_OK:
        return 0;
    case PROTO_OP_ERR: {
        char txt[256];
        snprintf(txt, sizeof txt, "%.*s", (int)op->arg.len, op->arg.p);
        LLOG(c, EMBER_LOG_ERROR, "Leafnode Error '%s'", txt);
        if (L->rem) {
            snprintf(L->rem->reason, sizeof L->rem->reason, "%s", txt);
            if (strstr(txt, "Loop detected"))
                L->rem->next_delay_ms = LEAF_LOOP_DELAY_MS;
        }
        client_err_close(c, NULL, CR_CLIENT);
        return 1;
    }
    default:
        break;
    }
    if (!c->connected || !atomic_load(&L->registered)) {
        LLOG(c, EMBER_LOG_ERROR, "Authorization Error");
        client_err_close(c, "Authorization Violation", CR_AUTH);
        return 1;
    }
    switch (op->kind) {
    case PROTO_OP_LSUB:
        return on_lsub(c, op);
    case PROTO_OP_LUNSUB:
        return on_lunsub(c, op);
    case PROTO_OP_LMSG:
    case PROTO_OP_HMSG:
        if (op->kind == PROTO_OP_HMSG && !L->headers) {
            LLOG(c, EMBER_LOG_ERROR, "Leafnode parser ERROR: message headers not negotiated");
            client_err_close(c, NULL, CR_PROTOCOL);
            return 1;
        }
        return on_lmsg(c, op);
    default:
        client_err_close(c, "Unknown Protocol Operation", CR_PROTOCOL);
        return 1;
    }
}

/* ------------------------------------------------------------------ links: open and close */

static struct leaf_link *link_new(lremote *r)
{
    struct leaf_link *L = calloc(1, sizeof *L);
    if (L) {
        L->rem = r;
        L->solicited = r != NULL;
        atomic_init(&L->registered, false);
    }
    return L;
}

void leaf_link_free(client *c)
{
    struct leaf_link *L = c->leaf;
    c->leaf = NULL;
    if (!L)
        return;
    free(L->nonce);
    free(L->rname);
    free(L->rid);
    free(L->rdomain);
    free(L);
}

static void on_unreg_closed(uv_handle_t *h) { client_release(h->data); }

static proto_parser *leaf_parser(server *s)
{
    return proto_parser_new(PROTO_MODE_LEAF, (size_t)s->opts.max_control_line * 16,
                            (size_t)s->opts.max_payload);
}

static void on_leaf_connection(uv_stream_t *l, int status)
{
    server *s = l->data;
    if (status < 0) {
        srv_log(s, EMBER_LOG_ERROR, "Error accepting leafnode connection: %s", uv_strerror(status));
        return;
    }
    client *c = client_tcp_alloc(s, CK_LEAF);
    if (!c)
        return;
    c->echo = false;
    c->leaf = link_new(NULL);
    if (!c->leaf || uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        c->handle_closed = true;
        uv_close((uv_handle_t *)&c->tcp, on_unreg_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    client_tcp_peer(c);
    c->parser = leaf_parser(s);
    if (c->parser)
        proto_parser_require_connect(c->parser, 1);
    if (!c->parser || server_add_client(s, c) != 0) {
        c->handle_closed = true;
        uv_close((uv_handle_t *)&c->tcp, on_unreg_closed);
        return;
    }
    LLOG(c, EMBER_LOG_DEBUG, "Leafnode connection accepted");
    cJSON *info = hub_info(c);
    send_json_op(c, "INFO", info);
    cJSON_Delete(info);
    /* the plain INFO goes out first, then the leaf starts the TLS handshake */
    if (s->leaf->tls_ctx &&
        xport_start_tls(c, s->leaf->tls_ctx, true, NULL, LEAF_HANDSHAKE_MS, NULL) != 0) {
        client_err_close(c, NULL, CR_PROTOCOL);
        return;
    }
    client_tcp_begin(c);
}

static void remote_schedule(lremote *r, int64_t delay_ms);

static void on_retry(uv_timer_t *t);

static void remote_failed(lremote *r, const char *why)
{
    struct leaf_mgr *lm = r->lm;
    r->attempts++;
    srv_log(lm->srv, EMBER_LOG_ERROR,
            "Error trying to connect as leafnode to remote server \"%s:%d\" (attempt %llu): %s",
            r->host, r->port, (unsigned long long)r->attempts, why);
    emit_event(lm, r->url, false, why);
    remote_schedule(r, lm->reconnect_ms);
}

static void on_connected(uv_connect_t *req, int status)
{
    client *c = req->data;
    server *s = c->srv;
    lremote *r = c->leaf->rem;
    if (c->handle_closed) { /* closed while dialling (shutdown) */
        client_release(c); /* the connect request's */
        return;
    }
    if (status < 0) {
        c->handle_closed = true;
        if (r->c == c) {
            r->c = NULL;
            client_release(c);
        }
        uv_close((uv_handle_t *)&c->tcp, on_unreg_closed);
        client_release(c);
        if (!s->leaf->stopping)
            remote_failed(r, uv_strerror(status));
        return;
    }
    client_release(c); /* the connect request's */
    uv_tcp_nodelay(&c->tcp, 1);
    client_tcp_peer(c);
    c->parser = leaf_parser(s);
    if (!c->parser || server_add_client(s, c) != 0) {
        c->handle_closed = true;
        if (r->c == c) {
            r->c = NULL;
            client_release(c);
        }
        uv_close((uv_handle_t *)&c->tcp, on_unreg_closed);
        return;
    }
    /* nothing but the hub's INFO may come first */
    LLOG(c, EMBER_LOG_DEBUG, "Leafnode connection established to %s", r->url);
    client_tcp_begin(c);
}

static void remote_dial(lremote *r, const struct sockaddr *addr)
{
    struct leaf_mgr *lm = r->lm;
    server *s = lm->srv;
    client *c = client_tcp_alloc(s, CK_LEAF);
    if (!c) {
        remote_schedule(r, lm->reconnect_ms);
        return;
    }
    c->acc = server_account(s, r->account);
    c->echo = false;
    c->leaf = link_new(r);
    snprintf(c->ip, sizeof c->ip, "%.63s", r->host);
    c->port = r->port;
    if (!c->leaf) {
        c->handle_closed = true;
        uv_close((uv_handle_t *)&c->tcp, on_unreg_closed);
        remote_schedule(r, lm->reconnect_ms);
        return;
    }
    c->leaf->creq.data = c;
    client_retain(c); /* the connect request's */
    int rc = uv_tcp_connect(&c->leaf->creq, &c->tcp, addr, on_connected);
    if (rc) {
        client_release(c);
        c->handle_closed = true;
        uv_close((uv_handle_t *)&c->tcp, on_unreg_closed);
        remote_failed(r, uv_strerror(rc));
        return;
    }
    client_retain(c);
    r->c = c;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    lremote *r = req->data;
    r->resolving = false;
    if (status == UV_ECANCELED || r->lm->stopping) {
        uv_freeaddrinfo(res);
        return;
    }
    if (status < 0 || !res) {
        uv_freeaddrinfo(res);
        remote_failed(r, uv_strerror(status));
        return;
    }
    remote_dial(r, res->ai_addr);
    uv_freeaddrinfo(res);
}

/* Parse "scheme://[user[:pass]@]host[:port]" into r's current-attempt fields. */
static int parse_url(lremote *r, const char *u)
{
    const char *p = strstr(u, "://");
    if (!p)
        return -1;
    size_t sl = (size_t)(p - u);
    p += 3;
    const char *at = strrchr(p, '@');
    r->url_user[0] = r->url_pass[0] = 0;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            snprintf(r->url_user, sizeof r->url_user, "%.*s", (int)(colon - p), p);
            snprintf(r->url_pass, sizeof r->url_pass, "%.*s", (int)(at - colon - 1), colon + 1);
        } else {
            snprintf(r->url_user, sizeof r->url_user, "%.*s", (int)(at - p), p);
        }
        p = at + 1;
    }
    const char *end = p + strcspn(p, "/?");
    const char *hs = p, *he, *port = NULL;
    if (*p == '[') {
        he = memchr(p, ']', (size_t)(end - p));
        if (!he)
            return -1;
        hs = p + 1;
        if (he + 1 < end && he[1] == ':')
            port = he + 2;
    } else {
        he = memchr(p, ':', (size_t)(end - p));
        if (he)
            port = he + 1;
        else
            he = end;
    }
    if (he == hs || (size_t)(he - hs) >= sizeof r->host)
        return -1;
    snprintf(r->host, sizeof r->host, "%.*s", (int)(he - hs), hs);
    r->port = LEAF_DEFAULT_PORT;
    if (port) {
        char *e;
        long v = strtol(port, &e, 10);
        if (e == port || e != end || v <= 0 || v > 65535)
            return -1;
        r->port = (int)v;
    }
    snprintf(r->url, sizeof r->url, "%.*s://%s:%d", (int)sl, u, r->host, r->port);
    r->url_tls = sl == 3 && !strncasecmp(u, "tls", 3);
    return 0;
}

static void remote_attempt(lremote *r)
{
    struct leaf_mgr *lm = r->lm;
    if (lm->stopping || r->c || r->resolving)
        return;
    const char *u = r->urls[r->next_url++ % r->nurls];
    if (parse_url(r, u) != 0) {
        snprintf(r->url, sizeof r->url, "%s", u);
        remote_failed(r, "invalid URL");
        return;
    }
    srv_log(lm->srv, EMBER_LOG_DEBUG, "Trying to connect as leafnode to remote server on \"%s:%d\"",
            r->host, r->port);
    struct sockaddr_storage ss;
    if (uv_ip4_addr(r->host, r->port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(r->host, r->port, (struct sockaddr_in6 *)&ss) == 0) {
        remote_dial(r, (struct sockaddr *)&ss);
        return;
    }
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", r->port);
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    r->gai.data = r;
    r->resolving = true;
    int rc = uv_getaddrinfo(&lm->srv->loop, &r->gai, on_resolved, r->host, portstr, &hints);
    if (rc) {
        r->resolving = false;
        remote_failed(r, uv_strerror(rc));
    }
}

static void on_retry(uv_timer_t *t)
{
    lremote *r = t->data;
    remote_attempt(r);
}

static void remote_schedule(lremote *r, int64_t delay_ms)
{
    if (r->lm->stopping || !r->timer_init)
        return;
    if (r->next_delay_ms > delay_ms)
        delay_ms = r->next_delay_ms;
    r->next_delay_ms = 0;
    uv_timer_start(&r->timer, on_retry, (uint64_t)delay_ms, 0);
}

void leaf_closed(client *c, int reason)
{
    struct leaf_mgr *lm = c->srv->leaf;
    struct leaf_link *L = c->leaf;
    if (!lm || !L)
        return;
    bool was_up = link_unregister(c);
    const char *why = close_reason_text(reason);
    LLOG(c, was_up ? EMBER_LOG_INFO : EMBER_LOG_DEBUG, "Leafnode connection closed: %s account: %s",
         why, c->acc->name);
    lremote *r = L->rem;
    if (r && !r->reason[0]) {
        const char *te = xport_tls_error(c);
        if (reason == CR_TLS_HANDSHAKE)
            snprintf(r->reason, sizeof r->reason, "TLS handshake error: %s",
                     te && *te ? te : close_reason_text(reason));
        else if (te && *te) /* TLS 1.3: the hub refuses our certificate after the handshake */
            snprintf(r->reason, sizeof r->reason, "%s: %s", close_reason_text(reason), te);
    }
    if (r) {
        if (r->c == c) {
            r->c = NULL;
            client_release(c);
        }
        if (was_up || r->reason[0])
            emit_event(lm, r->url, false, r->reason[0] ? r->reason : why);
        if (!lm->stopping)
            remote_schedule(r, lm->reconnect_ms);
    } else if (was_up) {
        char url[128];
        snprintf(url, sizeof url, "nats-leaf://%s:%d", c->ip, c->port);
        emit_event(lm, url, false, why);
    }
}

void leaf_housekeeping_unconnected(client *c, uint64_t now_ms)
{
    if (now_ms - c->start_ms < LEAF_HANDSHAKE_MS)
        return;
    if (c->leaf && c->leaf->solicited) {
        snprintf(c->leaf->rem->reason, sizeof c->leaf->rem->reason, "no INFO from the remote");
        LLOG(c, EMBER_LOG_ERROR, "Leafnode Error: no INFO from the remote within %d ms",
             LEAF_HANDSHAKE_MS);
        client_err_close(c, NULL, CR_AUTH_TIMEOUT);
    } else {
        LLOG(c, EMBER_LOG_ERROR, "Authentication Timeout");
        client_err_close(c, "Authentication Timeout", CR_AUTH_TIMEOUT);
    }
}

/* ------------------------------------------------------------------ start / stop */

int leaf_start(server *s, char *err, size_t errlen)
{
    struct leaf_mgr *lm = s->leaf;
    if (!lm)
        return 0;
    if (lm->port != 0) {
        int port = lm->port < 0 ? 0 : lm->port;
        int rc = srv_listen(s, &lm->listener, lm->host, port, 128, on_leaf_connection, s,
                            &lm->bound_port, &lm->listening);
        if (rc == UV_EINVAL && !lm->listening) {
            snprintf(err, errlen, "invalid leafnodes listen host \"%s\"", lm->host);
            return -1;
        }
        if (rc) {
            snprintf(err, errlen, "Error listening on leafnode port: %s:%d, \"%s\"", lm->host, port,
                     uv_strerror(rc));
            return -1;
        }
        srv_log(s, EMBER_LOG_INFO, "Listening for leafnode connections on %s:%d", lm->host,
                lm->bound_port);
    }
    for (size_t i = 0; i < lm->nrems; i++) {
        lremote *r = &lm->rems[i];
        uv_timer_init(&s->loop, &r->timer);
        r->timer.data = r;
        r->timer_init = true;
        remote_attempt(r);
    }
    return 0;
}

void leaf_stop(server *s)
{
    struct leaf_mgr *lm = s->leaf;
    if (!lm)
        return;
    lm->stopping = true;
    if (lm->listening) {
        uv_close((uv_handle_t *)&lm->listener, NULL);
        lm->listening = false;
    }
    for (size_t i = 0; i < lm->nrems; i++) {
        lremote *r = &lm->rems[i];
        if (r->timer_init)
            uv_timer_stop(&r->timer);
        if (r->resolving)
            uv_cancel((uv_req_t *)&r->gai);
        client *c = r->c;
        if (c && !c->handle_closed && !c->parser) {
            /* still dialling: not in the client list, close it here */
            c->handle_closed = true;
            r->c = NULL;
            uv_close((uv_handle_t *)&c->tcp, on_unreg_closed);
            client_release(c); /* r->c's */
        }
    }
}

void leaf_free(server *s)
{
    struct leaf_mgr *lm = s->leaf;
    if (!lm)
        return;
    s->leaf = NULL;
    for (size_t i = 0; i < lm->nrems; i++)
        if (lm->rems[i].c)
            client_release(lm->rems[i].c);
    for (size_t i = 0; i < lm->nlinks; i++)
        client_release(lm->links[i]);
    free(lm->links);
    for (size_t i = 0; i < lm->cap; i++)
        for (lent *e = lm->tab[i], *nx; e; e = nx) {
            nx = e->next;
            free(e->subj);
            free(e->queue);
            free(e->own);
            free(e);
        }
    free(lm->tab);
    lm_free_remotes(lm);
    free(lm->host);
    free(lm->user);
    free(lm->pass);
    free(lm->domain_api);
    if (lm->tls_ctx)
        tlsio_ctx_free(lm->tls_ctx);
    pthread_mutex_destroy(&lm->mu);
    free(lm);
}

/* ------------------------------------------------------------------ queries */

int leaf_count(server *s)
{
    struct leaf_mgr *lm = s ? s->leaf : NULL;
    if (!lm)
        return 0;
    pthread_mutex_lock(&lm->mu);
    int n = (int)lm->nlinks;
    pthread_mutex_unlock(&lm->mu);
    return n;
}

void leaf_fill_leafz(server *s, cJSON *leafs, bool with_subs)
{
    struct leaf_mgr *lm = s ? s->leaf : NULL;
    if (!lm || !leafs)
        return;
    pthread_mutex_lock(&lm->mu);
    for (size_t i = 0; i < lm->nlinks; i++) {
        client *c = lm->links[i];
        struct leaf_link *L = c->leaf;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)c->cid);
        cJSON_AddStringToObject(o, "name", L->rname ? L->rname : "");
        cJSON_AddBoolToObject(o, "is_spoke", L->solicited);
        cJSON_AddStringToObject(o, "account", c->acc->name);
        cJSON_AddStringToObject(o, "ip", c->ip);
        cJSON_AddNumberToObject(o, "port", c->port);
        cJSON_AddStringToObject(o, "rtt", "0s");
        cJSON_AddNumberToObject(o, "in_msgs", (double)cl_stat_in_msgs(c));
        cJSON_AddNumberToObject(o, "out_msgs", (double)cl_stat_out_msgs(c));
        cJSON_AddNumberToObject(o, "in_bytes", (double)cl_stat_in_bytes(c));
        cJSON_AddNumberToObject(o, "out_bytes", (double)cl_stat_out_bytes(c));
        /* the interest this link holds here (its subscriptions in our sublist) */
        size_t nsubs = 0;
        cJSON *list = with_subs ? cJSON_CreateArray() : NULL;
        for (size_t k = 0; k < lm->cap; k++)
            for (lent *e = lm->tab[k]; e; e = e->next)
                if (lent_owned_by(e, c)) {
                    nsubs++;
                    if (list) {
                        char buf[1024];
                        snprintf(buf, sizeof buf, "%s%s%s", e->subj, e->queue ? " " : "",
                                 e->queue ? e->queue : "");
                        cJSON_AddItemToArray(list, cJSON_CreateString(buf));
                    }
                }
        cJSON_AddNumberToObject(o, "subscriptions", (double)nsubs);
        if (list)
            cJSON_AddItemToObject(o, "subscriptions_list", list);
        cJSON_AddItemToArray(leafs, o);
    }
    pthread_mutex_unlock(&lm->mu);
}

EMBER_API int ember_server_leafnode_count(ember_server *s) { return leaf_count(s); }

EMBER_API int ember_server_leafnode_port(const ember_server *s)
{
    return s && s->leaf ? s->leaf->bound_port : 0;
}
