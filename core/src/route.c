/* route: hand one message to every matching subscription. The network path and the
 * in-process path meet here and nowhere else. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "leaf.h"
#include "server.h"

void sub_retain(sub *s) { atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed); }

void sub_release(sub *s)
{
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        s->destroy(s);
}

void sub_unsubscribe(server *srv, sub *s)
{
    if (atomic_exchange(&s->closed, true))
        return;
    sublist_remove(s->cl->acc ? s->cl->acc->sl : srv->sl, s->subject, s->queue, s);
    atomic_fetch_sub(&srv->nsubs, 1);
    leaf_sub_changed(srv, s, -1);
    if (s->unsubscribed)
        s->unsubscribed(s);
}

void no_responders_view(msgview *out, char *hdr, size_t cap, const msgview *req)
{
    int hl = snprintf(hdr, cap, "NATS/1.0 503\r\nNats-Subject: %.*s\r\n\r\n",
                      (int)req->subject_len, req->subject);
    if (hl <= 0 || (size_t)hl >= cap)
        hl = snprintf(hdr, cap, "NATS/1.0 503\r\n\r\n");
    memset(out, 0, sizeof *out);
    out->subject = req->reply;
    out->subject_len = req->reply_len;
    out->hdr = hdr;
    out->hdr_len = (size_t)hl;
    out->data = "";
}

ember_msg *msgview_block(msgview *mv)
{
    if (!mv->blk) {
        mv->blk = msg_build(mv->subject, mv->subject_len, mv->reply, mv->reply_len, mv->hdr,
                            mv->hdr_len, mv->data, mv->data_len);
        mv->blk_owned = mv->blk != NULL;
    }
    return mv->blk;
}

/* ------------------------------------------------------------------ internal subscriptions */

typedef struct isub {
    sub s;
    isub_fn fn;
    void *ud;
    void (*ud_free)(void *ud);
} isub;

static void isub_destroy(sub *s)
{
    isub *is = (isub *)s;
    if (is->ud_free)
        is->ud_free(is->ud);
    client_release(s->cl);
    free(s->subject);
    free(s->queue);
    free(is);
}

static bool isub_deliver(server *srv, sub *s, msgview *mv)
{
    isub *is = (isub *)s;
    is->fn(is->ud, srv, mv);
    return true;
}

sub *server_isub(server *srv, const char *subject, const char *queue, isub_fn fn, void *ud,
                 void (*ud_free)(void *ud))
{
    return server_isub_in(srv, srv->sys, subject, queue, fn, ud, ud_free);
}

sub *server_isub_in(server *srv, client *as, const char *subject, const char *queue, isub_fn fn,
                    void *ud, void (*ud_free)(void *ud))
{
    isub *is = calloc(1, sizeof *is);
    if (!is)
        return NULL;
    atomic_init(&is->s.refs, 1);
    is->s.subject = strdup(subject);
    is->s.subject_len = strlen(subject);
    is->s.queue = queue ? strdup(queue) : NULL;
    is->s.destroy = isub_destroy;
    is->fn = fn;
    is->ud = ud;
    client_retain(as);
    is->s.cl = as;
    if (!is->s.subject || (queue && !is->s.queue)) {
        is->ud_free = NULL;
        isub_destroy(&is->s);
        return NULL;
    }
    if (sublist_insert(as->acc->sl, is->s.subject, is->s.queue, &is->s) != 0) {
        is->ud_free = NULL;
        isub_destroy(&is->s);
        return NULL;
    }
    is->ud_free = ud_free;
    atomic_fetch_add(&srv->nsubs, 1);
    leaf_sub_changed(srv, &is->s, 1);
    return &is->s;
}

void server_isub_close(server *srv, sub *s)
{
    if (!s)
        return;
    sub_unsubscribe(srv, s);
    sub_release(s);
}

int server_publish_internal(server *srv, msgview *mv) { return server_route(srv, srv->sys, mv); }

/* Count one delivery against the subscription's auto-unsubscribe max.
 * Returns false when the subscription already got its max. */
static inline bool sub_take(server *srv, sub *s, bool *last)
{
    long long max = atomic_load_explicit(&s->max, memory_order_relaxed);
    *last = false;
    if (max <= 0) {
        /* no max: only a statistic (until one is set), the owner thread's copy */
        bias_add(bias_mine(&s->dlv_owner, thread_id()), &s->delivered_own, &s->delivered, 1);
        return true;
    }
    /* with a max every thread counts on the shared copy: the owner's no longer grows */
    unsigned long long n = atomic_fetch_add(&s->delivered, 1) + 1 +
                           atomic_load_explicit(&s->delivered_own, memory_order_relaxed);
    if (n > (unsigned long long)max)
        return false;
    *last = n == (unsigned long long)max;
    return true;
}

static inline bool deliver(server *srv, client *from, sub *s, msgview *mv)
{
    if (atomic_load_explicit(&s->closed, memory_order_relaxed))
        return false;
    client *c = s->cl;
    if (c == from && !from->echo)
        return false;
    if (unlikely(mv->skip_internal) && c->kind == CK_INTERNAL)
        return false;
    bool last;
    if (!sub_take(srv, s, &last))
        return false;
    bool ok;
    if (c->kind == CK_TCP)
        ok = client_tcp_deliver(c, s, mv);
    else if (c->kind == CK_INPROC)
        ok = inproc_deliver(c, s, mv);
    else
        ok = isub_deliver(srv, s, mv);
    if (last)
        sub_unsubscribe(srv, s);
    return ok;
}

/* Is queue group `name` in the space-separated list of a leaf message? */
static bool qlist_has(const msgview *mv, const char *name)
{
    size_t nl = strlen(name);
    const char *p = mv->qlist, *end = mv->qlist + mv->qlist_len;
    while (p < end) {
        while (p < end && *p == ' ')
            p++;
        const char *q = p;
        while (q < end && *q != ' ')
            q++;
        if ((size_t)(q - p) == nl && memcmp(p, name, nl) == 0)
            return true;
        p = q;
    }
    return false;
}

/* Where to start looking for a queue member: uniform over the members, where a leaf
 * link's member counts as many times as the members it stands for (its LS+ weight), as
 * nats-server's addNodeToResults shadows remote queue subscriptions. */
static size_t queue_start(const sublist_qgroup *g)
{
    uint64_t total = 0;
    bool weighted = false;
    for (size_t i = 0; i < g->n; i++) {
        sub *s = g->items[i];
        int w = s->cl->kind == CK_LEAF ? atomic_load_explicit(&s->qw, memory_order_relaxed) : 1;
        if (w > 1)
            weighted = true;
        total += (uint64_t)(w > 0 ? w : 1);
    }
    if (!weighted)
        return (size_t)(rand_u64() % g->n);
    uint64_t r = rand_u64() % total;
    for (size_t i = 0; i < g->n; i++) {
        sub *s = g->items[i];
        int w = s->cl->kind == CK_LEAF ? atomic_load_explicit(&s->qw, memory_order_relaxed) : 1;
        uint64_t wu = (uint64_t)(w > 0 ? w : 1);
        if (r < wu)
            return i;
        r -= wu;
    }
    return 0;
}

/* Messages for leaf links are gathered per link (one LMSG carries the plain interest and
 * the queue groups chosen on that link, as nats-server's route targets). */
#define LEAF_TARGETS 8
static leaf_target *leaf_target_for(leaf_target *lt, size_t *nlt, client *c)
{
    for (size_t i = 0; i < *nlt; i++)
        if (lt[i].c == c)
            return &lt[i];
    if (*nlt == LEAF_TARGETS)
        return NULL;
    leaf_target *t = &lt[(*nlt)++];
    t->c = c;
    t->plain = false;
    t->nq = 0;
    return t;
}

static bool leaf_target_add(server *srv, leaf_target *lt, size_t *nlt, sub *s, msgview *mv)
{
    leaf_target *t = leaf_target_for(lt, nlt, s->cl);
    if (!t) { /* more links than gathered at once: send on its own */
        leaf_target one = {.c = s->cl, .plain = !s->queue, .nq = 0};
        if (s->queue)
            one.q[one.nq++] = s->queue;
        return leaf_send(srv, &one, mv);
    }
    if (!s->queue)
        t->plain = true;
    else if (t->nq < PROTO_MAX_QUEUES)
        t->q[t->nq++] = s->queue;
    return true;
}

int server_route(server *srv, client *from, msgview *mv)
{
    sublist *sl = likely(from != NULL) ? from->acc->sl : srv->sl;
    if (!mv->origin)
        mv->origin = from;
    sublist_result *r = mv->dsubj ? sublist_match(sl, mv->dsubj, mv->dsubj_len)
                                  : sublist_match(sl, mv->subject, mv->subject_len);
    int n = 0;
    leaf_target lt[LEAF_TARGETS];
    size_t nlt = 0;
    mv->blk_give = r->npsubs == 1 && r->nqsubs == 0;
    for (size_t i = 0; i < r->npsubs; i++) {
        sub *s = (sub *)r->psubs[i];
        if (unlikely(s->cl->kind == CK_LEAF)) {
            if (s->cl != from && !atomic_load_explicit(&s->closed, memory_order_relaxed))
                leaf_target_add(srv, lt, &nlt, s, mv);
            continue;
        }
        n += deliver(srv, from, s, mv);
    }
    const bool from_leaf = from && from->kind == CK_LEAF;
    for (size_t q = 0; q < r->nqsubs && !mv->no_queues; q++) {
        sublist_qgroup *g = &r->qsubs[q];
        if (g->n == 0)
            continue;
        if (unlikely(mv->qlist) && !qlist_has(mv, g->name))
            continue;
        size_t start = g->n == 1 ? 0 : queue_start(g);
        sub *remote = NULL;
        bool done = false;
        for (size_t k = 0; k < g->n; k++) {
            sub *s = g->items[(start + k) % g->n];
            if (unlikely(s->cl->kind == CK_LEAF)) {
                if (s->cl == from || atomic_load_explicit(&s->closed, memory_order_relaxed))
                    continue;
                if (from_leaf) { /* from a link: prefer local members */
                    if (!remote)
                        remote = s;
                    continue;
                }
                leaf_target_add(srv, lt, &nlt, s, mv);
                n++;
                done = true;
                break;
            }
            if (deliver(srv, from, s, mv)) {
                n++;
                done = true;
                break;
            }
        }
        if (!done && remote) {
            leaf_target_add(srv, lt, &nlt, remote, mv);
            n++;
        }
    }
    for (size_t i = 0; i < nlt; i++)
        if (leaf_send(srv, &lt[i], mv) && lt[i].plain)
            n++;
    sublist_result_release(r);
    mv->blk_give = false;
    if (mv->blk_owned) {
        ember_msg_release(mv->blk);
        mv->blk = NULL;
        mv->blk_owned = false;
    }
    return n;
}
