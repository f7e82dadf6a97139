/* account: see account.h.
 *
 * Each account owns a sublist and an internal client (CK_INTERNAL) bound to it; every
 * client carries the account it works in (client.acc) and server_route matches in that
 * account's sublist, so subjects never cross accounts except through imports:
 *   - a stream import is an internal subscription in the exporter on the imported
 *     subject that republishes each message in the importer (prefix or `to` applied);
 *   - a service import is an internal subscription in the importer on the local subject
 *     that republishes the request in the exporter on the exported subject, with the
 *     reply replaced by "_R_.<token>"; an internal "_R_.>" subscription in the exporter
 *     carries each reply back to the requester's reply subject in the importer (once for
 *     singleton responses, until the threshold for streamed/chunked ones), as
 *     nats-server's service imports and response service imports.
 * A message crossing accounts carries a hop count so that imports that feed each other
 * cannot loop forever.
 */
#define _GNU_SOURCE
#include "account.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "js.h"
#include "leaf.h"
#include "util.h"

#define GLOBAL_ACCOUNT "$G"
#define RESP_PREFIX "_R_."
#define MAX_IMPORT_HOPS 8

struct acc_resp {
    acc_resp *next;
    char token[24];          /* "_R_.xxxxxxxxxxxx" */
    account *to;             /* the importer */
    char *reply;             /* the requester's reply subject there */
    bool singleton;
    uint64_t expires_ms;
};

/* ------------------------------------------------------------------ subjects */

/* Split into tokens: returns the count (at most cap), -1 when more. */
static int tokens(const char *s, size_t len, const char **tp, size_t *tl, int cap)
{
    int n = 0;
    size_t i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && s[j] != '.')
            j++;
        if (n == cap)
            return -1;
        tp[n] = s + i;
        tl[n] = j - i;
        n++;
        i = j + 1;
    }
    return n;
}

static bool tok_is(const char *p, size_t l, char c) { return l == 1 && p[0] == c; }

/* Is every subject matching `sub` also matched by `of`? (import subject within export) */
static bool subject_subset(const char *sub, const char *of)
{
    const char *ap[128], *bp[128];
    size_t al[128], bl[128];
    int na = tokens(sub, strlen(sub), ap, al, 128), nb = tokens(of, strlen(of), bp, bl, 128);
    if (na < 0 || nb < 0)
        return false;
    for (int i = 0; i < nb; i++) {
        if (tok_is(bp[i], bl[i], '>'))
            return i < na;
        if (i >= na)
            return false;
        if (tok_is(ap[i], al[i], '>'))
            return false;
        if (tok_is(bp[i], bl[i], '*'))
            continue;
        if (tok_is(ap[i], al[i], '*') || al[i] != bl[i] || memcmp(ap[i], bp[i], al[i]))
            return false;
    }
    return na == nb;
}

/* The wildcards of a pattern in order ('*' or '>'), as a string; -1 when invalid. */
static int wildcards(const char *pat, char *out, size_t cap)
{
    const char *tp[128];
    size_t tl[128];
    int n = tokens(pat, strlen(pat), tp, tl, 128);
    if (n < 0)
        return -1;
    size_t k = 0;
    for (int i = 0; i < n; i++)
        if (tok_is(tp[i], tl[i], '*') || tok_is(tp[i], tl[i], '>')) {
            if (k + 1 >= cap)
                return -1;
            out[k++] = tp[i][0];
        }
    out[k] = 0;
    return (int)k;
}

/* Can subjects matching `from` be renamed to `to`? `to` is a literal or has the same
 * wildcards in the same order. */
static bool mapping_ok(const char *from, const char *to)
{
    char a[64], b[64];
    if (wildcards(from, a, sizeof a) < 0 || wildcards(to, b, sizeof b) < 0)
        return false;
    return b[0] == 0 || strcmp(a, b) == 0;
}

/* Rename subj (which matches pattern from) after pattern to: the tokens that from's
 * wildcards matched fill to's wildcards in order. Returns the length, or -1. */
static long map_subject(const char *from, const char *to, const char *subj, size_t len,
                        char *out, size_t cap)
{
    const char *fp[128], *sp[128], *tp[128];
    size_t fl[128], sl[128], tl[128];
    int nf = tokens(from, strlen(from), fp, fl, 128);
    int ns = tokens(subj, len, sp, sl, 128);
    int nt = tokens(to, strlen(to), tp, tl, 128);
    if (nf < 0 || ns < 0 || nt < 0)
        return -1;
    /* captures: (start, length) in subj */
    const char *cp[128];
    size_t cl[128];
    int nc = 0;
    for (int i = 0; i < nf && i < ns; i++) {
        if (tok_is(fp[i], fl[i], '*')) {
            cp[nc] = sp[i];
            cl[nc++] = sl[i];
        } else if (tok_is(fp[i], fl[i], '>')) {
            cp[nc] = sp[i];
            cl[nc++] = (size_t)(subj + len - sp[i]);
            break;
        }
    }
    size_t o = 0;
    int c = 0;
    for (int i = 0; i < nt; i++) {
        const char *p = tp[i];
        size_t l = tl[i];
        if ((tok_is(p, l, '*') || tok_is(p, l, '>')) && c < nc) {
            p = cp[c];
            l = cl[c];
            c++;
        }
        if (o + l + 1 >= cap)
            return -1;
        if (i)
            out[o++] = '.';
        memcpy(out + o, p, l);
        o += l;
    }
    out[o] = 0;
    return (long)o;
}

/* ------------------------------------------------------------------ accounts */

static void sub_retain_v(void *p) { sub_retain((sub *)p); }
static void sub_release_v(void *p) { sub_release((sub *)p); }

static account *account_new(server *s, const char *name)
{
    account *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->srv = s;
    a->name = strdup(name);
    a->sl = sublist_new(sub_retain_v, sub_release_v);
    a->sys = calloc(1, sizeof *a->sys);
    pthread_mutex_init(&a->rmu, NULL);
    if (a->sys) {
        /* holds no server reference (freed with the account) */
        atomic_init(&a->sys->refs, 1);
        a->sys->srv = s;
        a->sys->acc = a;
        a->sys->kind = CK_INTERNAL;
        a->sys->echo = a->sys->headers = a->sys->connected = true;
        a->sys->protocol = 1;
        pthread_mutex_init(&a->sys->mu, NULL);
    }
    return a;
}

static void account_free(account *a)
{
    if (!a)
        return;
    if (a->sys) {
        a->sys->srv = NULL;
        client_release(a->sys);
    }
    if (a->sl)
        sublist_free(a->sl);
    for (size_t i = 0; i < a->nexports; i++) {
        free(a->exports[i].subject);
        for (size_t k = 0; k < a->exports[i].naccs; k++)
            free(a->exports[i].accs[k]);
        free(a->exports[i].accs);
    }
    free(a->exports);
    for (size_t i = 0; i < a->nimports; i++) {
        free(a->imports[i].subject);
        free(a->imports[i].to);
        free(a->imports[i].prefix);
    }
    free(a->imports);
    for (size_t b = 0; b < a->rcap; b++)
        for (acc_resp *r = a->rtab[b], *n; r; r = n) {
            n = r->next;
            free(r->reply);
            free(r);
        }
    free(a->rtab);
    pthread_mutex_destroy(&a->rmu);
    free(a->name);
    free(a);
}

account *server_account(server *s, const char *name)
{
    if (!name || !*name || !strcmp(name, GLOBAL_ACCOUNT))
        return s->gacc;
    for (size_t i = 0; i < s->naccs; i++)
        if (!strcmp(s->accs[i]->name, name))
            return s->accs[i];
    return NULL;
}

bool accounts_configured(const server *s) { return s->naccs > 1; }

/* "a, b c" -> names */
static int split_names(const char *list, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!list)
        return 0;
    const char *p = list;
    while (*p) {
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ' && *e != '\t')
            e++;
        if (e > p) {
            char **nv = realloc(*out, (*n + 1) * sizeof *nv);
            if (!nv)
                return -1;
            *out = nv;
            if (!(nv[*n] = strndup(p, (size_t)(e - p))))
                return -1;
            (*n)++;
        }
        p = e;
    }
    return 0;
}

static bool export_allows(const acc_export *e, const account *who)
{
    if (e->naccs == 0)
        return true;
    for (size_t i = 0; i < e->naccs; i++)
        if (!strcmp(e->accs[i], who->name))
            return true;
    return false;
}

static int add_exports(server *s, account *a, const ember_account *src)
{
    if (src->exports_count && !src->exports)
        return err_set(EMBER_EINVAL, "account \"%s\": exports is NULL", a->name);
    a->exports = calloc(src->exports_count ? src->exports_count : 1, sizeof *a->exports);
    if (!a->exports)
        return err_set(EMBER_ENOMEM, "out of memory");
    for (size_t i = 0; i < src->exports_count; i++) {
        const ember_export *x = &src->exports[i];
        acc_export *e = &a->exports[a->nexports++];
        const char *kind = x->service ? "service" : "stream";
        if (!x->subject || !subject_is_valid_sub(x->subject, strlen(x->subject)))
            return err_set(EMBER_EINVAL, "Error adding %s export \"%s\": subject is not a valid subject",
                           kind, x->subject ? x->subject : "");
        if (!(e->subject = strdup(x->subject)) || split_names(x->accounts, &e->accs, &e->naccs))
            return err_set(EMBER_ENOMEM, "out of memory");
        e->service = x->service;
        e->rtype = x->response_type;
        if (x->service && (x->response_type < EMBER_RESPONSE_SINGLETON ||
                           x->response_type > EMBER_RESPONSE_CHUNKED))
            return err_set(EMBER_EINVAL, "Error adding service export \"%s\": unknown response type",
                           x->subject);
        e->rthr_ms = x->response_threshold_ms > 0 ? x->response_threshold_ms : 2 * 60 * 1000;
        for (size_t k = 0; k < e->naccs; k++)
            if (!server_account(s, e->accs[k]) || !strcmp(e->accs[k], GLOBAL_ACCOUNT))
                return err_set(EMBER_EINVAL, "\"%s\" account not defined for %s export",
                               e->accs[k], kind);
    }
    return 0;
}

static int add_imports(server *s, account *a, const ember_account *src)
{
    if (src->imports_count && !src->imports)
        return err_set(EMBER_EINVAL, "account \"%s\": imports is NULL", a->name);
    a->imports = calloc(src->imports_count ? src->imports_count : 1, sizeof *a->imports);
    if (!a->imports)
        return err_set(EMBER_ENOMEM, "out of memory");
    for (size_t i = 0; i < src->imports_count; i++) {
        const ember_import *x = &src->imports[i];
        acc_import *m = &a->imports[a->nimports++];
        const char *kind = x->service ? "service" : "stream";
        m->owner = a;
        m->service = x->service;
        if (!x->account || !x->subject)
            return err_set(EMBER_EINVAL, "Expect an account name and a subject");
        m->from = server_account(s, x->account);
        if (!m->from || !strcmp(x->account, GLOBAL_ACCOUNT))
            return err_set(EMBER_EINVAL, "\"%s\" account not defined for %s import", x->account,
                           kind);
        if (!subject_is_valid_sub(x->subject, strlen(x->subject)))
            return err_set(EMBER_EINVAL, "Error adding %s import \"%s\": invalid subject", kind,
                           x->subject);
        if (x->service && x->prefix)
            return err_set(EMBER_EINVAL, "Error adding service import \"%s\": a service import "
                           "has no prefix", x->subject);
        if (!x->service && x->prefix && x->to)
            return err_set(EMBER_EINVAL, "Stream import can not have a 'prefix' and a 'to' property");
        if (x->to && (!subject_is_valid_sub(x->to, strlen(x->to)) ||
                      (x->service ? !mapping_ok(x->to, x->subject) : !mapping_ok(x->subject, x->to))))
            return err_set(EMBER_EINVAL, "Error adding %s import \"%s\": invalid mapping to \"%s\"",
                           kind, x->subject, x->to);
        if (x->prefix && (!*x->prefix || strchr(x->prefix, '*') || strchr(x->prefix, '>') ||
                          !subject_is_valid_literal(x->prefix, strlen(x->prefix))))
            return err_set(EMBER_EINVAL, "Error adding stream import \"%s\": invalid prefix \"%s\"",
                           x->subject, x->prefix);
        if (m->from == a)
            return err_set(EMBER_EINVAL, "Error adding %s import \"%s\": an account can not import "
                           "from itself", kind, x->subject);
        m->subject = strdup(x->subject);
        m->to = x->to ? strdup(x->to) : (x->service ? strdup(x->subject) : NULL);
        m->prefix = x->prefix ? strdup(x->prefix) : NULL;
        if (!m->subject || (x->service && !m->to) || (x->to && !m->to) || (x->prefix && !m->prefix))
            return err_set(EMBER_ENOMEM, "out of memory");
        /* the exporter must export it to us (nats-server's checkStreamImportAuthorized) */
        for (size_t k = 0; k < m->from->nexports && !m->exp; k++) {
            const acc_export *e = &m->from->exports[k];
            if (e->service == x->service && subject_subset(x->subject, e->subject) &&
                export_allows(e, a))
                m->exp = e;
        }
        if (!m->exp)
            return err_set(EMBER_EINVAL, "Error adding %s import \"%s\": %s import not authorized",
                           kind, x->subject, kind);
        for (size_t k = 0; k + 1 < a->nimports; k++) {
            const acc_import *d = &a->imports[k];
            if (x->service && d->service && d->from == m->from && !strcmp(d->to, m->to))
                return err_set(EMBER_EINVAL, "Duplicate service import subject \"%s\", previously "
                               "used in import for account \"%s\", subject \"%s\"",
                               m->to, d->from->name, d->subject);
        }
    }
    return 0;
}

int accounts_new(server *s, const ember_server_options *o)
{
    size_t n = o->accounts_count;
    if (n && !o->accounts)
        return err_set(EMBER_EINVAL, "accounts is NULL with accounts_count %zu", n);
    s->accs = calloc(n + 1, sizeof *s->accs);
    if (!s->accs || !(s->accs[0] = account_new(s, GLOBAL_ACCOUNT)))
        return err_set(EMBER_ENOMEM, "out of memory");
    s->naccs = 1;
    s->gacc = s->accs[0];
    if (!s->gacc->sl || !s->gacc->sys || !s->gacc->name)
        return err_set(EMBER_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const ember_account *src = &o->accounts[i];
        if (!src->name || !*src->name)
            return err_set(EMBER_EINVAL, "an account needs a name");
        if (!strcmp(src->name, GLOBAL_ACCOUNT))
            return err_set(EMBER_EINVAL, "\"%s\" is a Reserved Account", src->name);
        for (const char *p = src->name; *p; p++)
            if (*p == ' ' || *p == '\t' || *p == '.' || *p == '*' || *p == '>')
                return err_set(EMBER_EINVAL, "invalid account name \"%s\"", src->name);
        if (server_account(s, src->name))
            return err_set(EMBER_EINVAL, "Duplicate Account Entry: %s", src->name);
        account *a = account_new(s, src->name);
        if (!a || !a->sl || !a->sys || !a->name) {
            account_free(a);
            return err_set(EMBER_ENOMEM, "out of memory");
        }
        s->accs[s->naccs++] = a;
        a->js_enabled = src->jetstream;
        a->js_max_memory = src->jetstream_max_memory;
        a->js_max_store = src->jetstream_max_store;
        if (src->jetstream && !o->jetstream)
            srv_log(s, EMBER_LOG_WARN, "JetStream for account \"%s\" ignored: JetStream is not "
                    "enabled on the server", src->name);
    }
    /* without configured accounts the global one has JetStream (nats-server's
     * globalAccountOnly); with them, only those that ask for it */
    if (n == 0)
        s->gacc->js_enabled = o->jetstream;
    for (size_t i = 0; i < n; i++) {
        int rc = add_exports(s, s->accs[i + 1], &o->accounts[i]);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = add_imports(s, s->accs[i + 1], &o->accounts[i]);
        if (rc)
            return rc;
    }
    return 0;
}

void accounts_free(server *s)
{
    for (size_t i = 0; s->accs && i < s->naccs; i++)
        account_free(s->accs[i]);
    free(s->accs);
    s->accs = NULL;
    s->naccs = 0;
    s->gacc = NULL;
}

/* ------------------------------------------------------------------ internal subs */

sub *acc_isub(account *a, const char *subject, const char *queue, isub_fn fn, void *ud,
              void (*ud_free)(void *ud))
{
    return server_isub_in(a->srv, a->sys, subject, queue, fn, ud, ud_free);
}

int acc_publish(account *a, msgview *mv) { return server_route(a->srv, a->sys, mv); }

/* A copy of mv to republish in another account under subject (and reply). */
static void cross_view(msgview *out, const msgview *mv, const char *subject, size_t sl,
                       const char *reply, size_t rl)
{
    *out = *mv;
    out->subject = subject;
    out->subject_len = sl;
    out->dsubj = NULL;
    out->dsubj_len = 0;
    out->reply = reply;
    out->reply_len = reply ? rl : 0;
    out->blk = NULL;
    out->blk_owned = false;
    out->no_queues = false;
    out->qlist = NULL;
    out->qlist_len = 0;
    out->skip_internal = false;
    out->hops = (uint8_t)(mv->hops + 1);
}

/* stream import: a message published in the exporter on the imported subject */
static void on_stream_import(void *ud, server *srv, const msgview *mv)
{
    (void)srv;
    acc_import *m = ud;
    if (mv->hops >= MAX_IMPORT_HOPS)
        return;
    char buf[1024];
    long l;
    if (m->prefix)
        l = snprintf(buf, sizeof buf, "%s.%.*s", m->prefix, (int)mv->subject_len, mv->subject);
    else if (m->to)
        l = map_subject(m->subject, m->to, mv->subject, mv->subject_len, buf, sizeof buf);
    else
        l = snprintf(buf, sizeof buf, "%.*s", (int)mv->subject_len, mv->subject);
    if (l <= 0 || (size_t)l >= sizeof buf)
        return;
    msgview out;
    cross_view(&out, mv, buf, (size_t)l, mv->reply, mv->reply_len);
    acc_publish(m->owner, &out);
}

static size_t rhash(const char *t)
{
    size_t h = 1469598103934665603ull;
    for (; *t; t++)
        h = (h ^ (unsigned char)*t) * 1099511628211ull;
    return h;
}

/* Remember a reply on its way back; fills token. 0 or -1. */
static int resp_add(account *exp, account *to, const char *reply, size_t rl, int rtype,
                    int64_t thr_ms, char *token)
{
    acc_resp *r = calloc(1, sizeof *r);
    if (!r || !(r->reply = strndup(reply, rl))) {
        free(r);
        return -1;
    }
    static const char al[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    memcpy(r->token, RESP_PREFIX, 4);
    uint64_t x = rand_u64(), y = rand_u64();
    for (int i = 0; i < 16; i++) {
        r->token[4 + i] = al[(i < 10 ? x : y) % 62];
        if (i < 10)
            x /= 62;
        else
            y /= 62;
    }
    r->token[20] = 0;
    r->to = to;
    r->singleton = rtype == EMBER_RESPONSE_SINGLETON;
    r->expires_ms = time_mono_ms() + (uint64_t)thr_ms;
    pthread_mutex_lock(&exp->rmu);
    if (exp->rcount + 1 > exp->rcap * 2) {
        size_t ncap = exp->rcap ? exp->rcap * 4 : 64;
        acc_resp **nt = calloc(ncap, sizeof *nt);
        if (!nt) {
            pthread_mutex_unlock(&exp->rmu);
            free(r->reply);
            free(r);
            return -1;
        }
        for (size_t b = 0; b < exp->rcap; b++)
            for (acc_resp *q = exp->rtab[b], *n; q; q = n) {
                n = q->next;
                size_t h = rhash(q->token) & (ncap - 1);
                q->next = nt[h];
                nt[h] = q;
            }
        free(exp->rtab);
        exp->rtab = nt;
        exp->rcap = ncap;
    }
    size_t h = rhash(r->token) & (exp->rcap - 1);
    r->next = exp->rtab[h];
    exp->rtab[h] = r;
    exp->rcount++;
    pthread_mutex_unlock(&exp->rmu);
    memcpy(token, r->token, 21);
    return 0;
}

static void resp_drop(account *exp, const char *token)
{
    pthread_mutex_lock(&exp->rmu);
    if (exp->rcap) {
        acc_resp **pp = &exp->rtab[rhash(token) & (exp->rcap - 1)];
        for (; *pp; pp = &(*pp)->next)
            if (!strcmp((*pp)->token, token)) {
                acc_resp *r = *pp;
                *pp = r->next;
                exp->rcount--;
                free(r->reply);
                free(r);
                break;
            }
    }
    pthread_mutex_unlock(&exp->rmu);
}

/* service import: a request published in the importer on the local subject */
static void on_service_import(void *ud, server *srv, const msgview *mv)
{
    acc_import *m = ud;
    if (mv->hops >= MAX_IMPORT_HOPS)
        return;
    char subj[1024];
    long l = map_subject(m->to, m->subject, mv->subject, mv->subject_len, subj, sizeof subj);
    if (l <= 0)
        return;
    char token[24] = "";
    if (mv->reply && resp_add(m->from, m->owner, mv->reply, mv->reply_len, m->exp->rtype,
                              m->exp->rthr_ms, token) != 0)
        return;
    msgview out;
    cross_view(&out, mv, subj, (size_t)l, mv->reply ? token : NULL, strlen(token));
    int n = acc_publish(m->from, &out);
    if (n == 0 && mv->reply) {
        resp_drop(m->from, token);
        /* nobody answers in the exporter: the requester gets the 503 status it would get
         * for a subject with no subscribers (when it asked for no-responders) */
        const client *o = mv->origin;
        if (o && (o->kind == CK_INPROC || (o->headers && o->no_responders))) {
            char hdr[NO_RESPONDERS_HDR_CAP];
            msgview nr;
            no_responders_view(&nr, hdr, sizeof hdr, mv);
            nr.hops = (uint8_t)(mv->hops + 1);
            acc_publish(m->owner, &nr);
            if (nr.blk_owned)
                ember_msg_release(nr.blk);
        }
    }
    (void)srv;
}

/* a reply published in the exporter on "_R_.<token>" */
static void on_response(void *ud, server *srv, const msgview *mv)
{
    (void)srv;
    account *exp = ud;
    if (mv->hops >= MAX_IMPORT_HOPS || mv->subject_len < 20 || mv->subject_len > 23)
        return;
    char token[24];
    memcpy(token, mv->subject, mv->subject_len);
    token[mv->subject_len] = 0;
    char *reply = NULL;
    account *to = NULL;
    pthread_mutex_lock(&exp->rmu);
    if (exp->rcap) {
        acc_resp **pp = &exp->rtab[rhash(token) & (exp->rcap - 1)];
        for (; *pp; pp = &(*pp)->next)
            if (!strcmp((*pp)->token, token)) {
                acc_resp *r = *pp;
                to = r->to;
                if (r->singleton) {
                    *pp = r->next;
                    exp->rcount--;
                    reply = r->reply;
                    free(r);
                } else {
                    reply = strdup(r->reply);
                }
                break;
            }
    }
    pthread_mutex_unlock(&exp->rmu);
    if (!reply)
        return;
    msgview out;
    cross_view(&out, mv, reply, strlen(reply), mv->reply, mv->reply_len);
    acc_publish(to, &out);
    free(reply);
}

void accounts_tick(server *s, uint64_t now_ms)
{
    for (size_t i = 0; i < s->naccs; i++) {
        account *a = s->accs[i];
        pthread_mutex_lock(&a->rmu);
        for (size_t b = 0; a->rcount && b < a->rcap; b++)
            for (acc_resp **pp = &a->rtab[b]; *pp;) {
                acc_resp *r = *pp;
                if (r->expires_ms <= now_ms) {
                    *pp = r->next;
                    a->rcount--;
                    free(r->reply);
                    free(r);
                } else {
                    pp = &r->next;
                }
            }
        pthread_mutex_unlock(&a->rmu);
    }
}

/* JetStream is on, but not for this account: as nats-server's
 * enableJetStreamInfoServiceImportOnly, $JS.API.INFO says so. */
static void on_jsinfo(void *ud, server *srv, const msgview *mv)
{
    (void)srv;
    account *a = ud;
    if (!mv->reply)
        return;
    static const char body[] =
        "{\"type\":\"io.nats.jetstream.api.v1.account_info_response\",\"error\":{\"code\":503,"
        "\"err_code\":10039,\"description\":\"JetStream not enabled for account\"}}";
    msgview out;
    memset(&out, 0, sizeof out);
    out.subject = mv->reply;
    out.subject_len = mv->reply_len;
    out.data = body;
    out.data_len = sizeof body - 1;
    out.hops = mv->hops;
    acc_publish(a, &out);
}

int accounts_start(server *s, char *err, size_t errcap)
{
    for (size_t i = 0; i < s->naccs; i++) {
        account *a = s->accs[i];
        for (size_t k = 0; k < a->nimports; k++) {
            acc_import *m = &a->imports[k];
            if (m->service) {
                m->isub = acc_isub(a, m->to, NULL, on_service_import, m, NULL);
                if (m->isub && !m->from->resp_sub)
                    m->from->resp_sub = acc_isub(m->from, RESP_PREFIX ">", NULL, on_response,
                                                 m->from, NULL);
                if (m->isub && !m->from->resp_sub) {
                    snprintf(err, errcap, "out of memory");
                    return -1;
                }
            } else {
                m->isub = acc_isub(m->from, m->subject, NULL, on_stream_import, m, NULL);
            }
            if (!m->isub) {
                snprintf(err, errcap, "out of memory");
                return -1;
            }
        }
        if (s->opts.jetstream && !a->js_enabled &&
            !(a->jsinfo_sub = acc_isub(a, "$JS.API.INFO", NULL, on_jsinfo, a, NULL))) {
            snprintf(err, errcap, "out of memory");
            return -1;
        }
    }
    return 0;
}

void accounts_stop(server *s)
{
    for (size_t i = 0; i < s->naccs; i++) {
        account *a = s->accs[i];
        for (size_t k = 0; k < a->nimports; k++) {
            server_isub_close(s, a->imports[k].isub);
            a->imports[k].isub = NULL;
        }
        server_isub_close(s, a->resp_sub);
        a->resp_sub = NULL;
        server_isub_close(s, a->jsinfo_sub);
        a->jsinfo_sub = NULL;
    }
}

/* ------------------------------------------------------------------ reload */

static bool s_same(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

static bool names_same(char **v, size_t n, const char *list)
{
    char **w = NULL;
    size_t m = 0;
    bool same = split_names(list, &w, &m) == 0 && m == n;
    for (size_t i = 0; same && i < n; i++)
        same = !strcmp(v[i], w[i]);
    for (size_t i = 0; i < m; i++)
        free(w[i]);
    free(w);
    return same;
}

bool accounts_same(const server *s, const ember_server_options *b)
{
    if (s->naccs != b->accounts_count + 1)
        return false;
    for (size_t i = 0; i < b->accounts_count; i++) {
        const account *x = s->accs[i + 1];
        const ember_account *y = &b->accounts[i];
        if (!s_same(x->name, y->name) || x->js_enabled != y->jetstream ||
            x->js_max_memory != y->jetstream_max_memory ||
            x->js_max_store != y->jetstream_max_store || x->nexports != y->exports_count ||
            x->nimports != y->imports_count)
            return false;
        for (size_t k = 0; k < x->nexports; k++) {
            const acc_export *e = &x->exports[k];
            const ember_export *f = &y->exports[k];
            if (!s_same(e->subject, f->subject) || e->service != f->service ||
                !names_same(e->accs, e->naccs, f->accounts) || e->rtype != (int)f->response_type ||
                e->rthr_ms != (f->response_threshold_ms > 0 ? f->response_threshold_ms
                                                             : 2 * 60 * 1000))
                return false;
        }
        for (size_t k = 0; k < x->nimports; k++) {
            const acc_import *e = &x->imports[k];
            const ember_import *f = &y->imports[k];
            const char *to = f->to ? f->to : (f->service ? f->subject : NULL);
            if (e->service != f->service || !s_same(e->from->name, f->account) ||
                !s_same(e->subject, f->subject) || !s_same(e->to, to) ||
                !s_same(e->prefix, f->prefix))
                return false;
        }
    }
    return true;
}
