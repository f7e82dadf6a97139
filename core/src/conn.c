/* conn: in-process connections. Publishing is a function call into server_route;
 * nothing is formatted or parsed. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "account.h"
#include "auth.h"
#include "leaf.h"
#include "nkeys.h"
#include "server.h"

/* ------------------------------------------------------------------ delivery queue */

typedef struct qitem {
    struct ember_sub *sub;
    ember_msg *msg;
} qitem;

/* The delivery queue: an unbounded list of segments of slots, written once.
 *
 * Producers (publishing threads) serialize on `mu` (a spin lock: a push is a few
 * stores), which only they take, or on nothing at all while one thread is the only one
 * that ever pushed (the queue is biased toward it: see dq_plock). They fill the
 * next slot of the last segment (the subscription, then the message pointer with a
 * release store, which makes the slot visible) and link a new segment when it is full.
 * Consumers (the dispatcher, pollers, next_msg readers) serialize on `cmu`, which only
 * they take: they read slots up to the first empty one, and free a segment once they
 * have read it to its end and seen the next one linked (its producers never touch it
 * again). So producers and consumers share no lock and no counter; on the hot path
 * they meet only on the slots themselves, one cache line per four messages.
 *
 * Sleeping: a consumer that found nothing spins briefly, then announces itself in
 * `sleepers` (under `wmu`), runs asym_heavy and looks again before waiting on `cv`; a
 * producer, after making a slot visible, runs asym_light and looks at `sleepers`, and
 * takes `wmu` to signal only when someone sleeps (Dekker: one of the two sees the other;
 * util.h). A consumer that is running costs the producers no system call and no fence.
 * The pollable fd (pollq) is written once per transition to readable and cleared by a
 * poll that finds the queue empty (the same pairing). */
typedef struct qslot {
    struct ember_sub *sub;
    _Atomic(ember_msg *) msg; /* NULL: not written yet */
} qslot;

typedef struct dqseg {
    _Atomic(struct dqseg *) next; /* linked by the producer that filled this one */
    size_t cap;
    qslot *items;                 /* cap slots, allocated with the segment */
} dqseg;

#define DQ_SEG_FIRST 32
#define DQ_SEG_MAX 1024

typedef struct dq {
    /* producers */
    cspin mu;
    dqseg *pseg;            /* segment being filled (mu) */
    size_t pidx;            /* next slot in it (mu) */
    atomic_size_t pushed;   /* messages pushed, ever (written under mu) */
    /* the bias: 0 none yet, 1 biased toward `owner` (it pushes without mu, marking itself
     * `busy`), 2 revoked (everybody takes mu) */
    atomic_int bias;
    _Atomic uint32_t owner;
    atomic_int busy;
    char pad1[64];
    /* consumers */
    pthread_mutex_t cmu;
    dqseg *cseg;            /* segment being read (cmu) */
    size_t chead;           /* next slot in it (cmu) */
    atomic_size_t taken;    /* messages taken, ever (written under cmu) */
    char pad2[64];
    /* read-mostly: the close flag (written under mu), sleeping consumers, the fd */
    atomic_bool closed;
    pthread_mutex_t wmu;
    pthread_cond_t cv;
    atomic_int sleepers;
    int efd;                 /* eventfd signalled when items arrive (-1: none) */
    atomic_bool efd_signalled;
    dqseg first;             /* empty, cap 0: the first push links a real segment */
} dq;

static void dq_init(dq *q, bool with_fd)
{
    atomic_init(&q->mu.v, 0);
    pthread_mutex_init(&q->cmu, NULL);
    pthread_mutex_init(&q->wmu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&q->first.next, NULL);
    q->first.cap = 0;
    q->first.items = NULL;
    q->pseg = q->cseg = &q->first;
    q->pidx = q->chead = 0;
    atomic_init(&q->pushed, 0);
    atomic_init(&q->bias, 0);
    atomic_init(&q->owner, 0);
    atomic_init(&q->busy, 0);
    atomic_init(&q->taken, 0);
    atomic_init(&q->closed, false);
    atomic_init(&q->sleepers, 0);
    q->efd = with_fd ? eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) : -1;
    atomic_init(&q->efd_signalled, false);
}

static void dq_signal_fd(dq *q)
{
    if (q->efd >= 0 && !atomic_load(&q->efd_signalled) &&
        !atomic_exchange(&q->efd_signalled, true)) {
        uint64_t one = 1;
        ssize_t r = write(q->efd, &one, sizeof one);
        (void)r;
    }
}

/* Wake sleeping consumers (items pushed, or a close / stop flag set before the call). */
static void dq_wake(dq *q, bool all)
{
    pthread_mutex_lock(&q->wmu);
    if (all)
        pthread_cond_broadcast(&q->cv);
    else
        pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->wmu);
}

/* The producers' side, taken by thread me: true when taken as the bias owner (no locked
 * instruction: `busy` set, then `bias` checked again after asym_light), false when mu is
 * held. The first producer becomes the owner for good; the first push from any other
 * thread revokes the bias (once: asym_heavy, then wait for the owner to leave), after
 * which every producer takes mu as before. Order within the queue is kept: there is one
 * list of slots, filled by one producer at a time either way. */
/* With `bias` or `closed` just changed (mu held): make the owner see it (asym_heavy), or
 * wait until the push it is in the middle of is done. */
static void dq_owner_sync(dq *q)
{
    asym_heavy();
    for (unsigned i = 0; atomic_load_explicit(&q->busy, memory_order_acquire); i++)
        if (i < 64)
            cpu_relax();
        else
            sched_yield();
}

static void dq_revoke_locked(dq *q)
{
    atomic_store(&q->bias, 2);
    dq_owner_sync(q);
}

static inline bool dq_plock(dq *q, uint32_t me)
{
    if (likely(atomic_load_explicit(&q->bias, memory_order_relaxed) == 1) &&
        atomic_load_explicit(&q->owner, memory_order_relaxed) == me) {
        atomic_store_explicit(&q->busy, 1, memory_order_relaxed);
        asym_light();
        if (likely(atomic_load_explicit(&q->bias, memory_order_acquire) == 1))
            return true;
        atomic_store_explicit(&q->busy, 0, memory_order_release);
    }
    cspin_lock(&q->mu);
    int b = atomic_load_explicit(&q->bias, memory_order_relaxed);
    if (b == 0 && me != THREAD_NOBIAS) {
        atomic_store_explicit(&q->owner, me, memory_order_relaxed);
        atomic_store_explicit(&q->bias, 1, memory_order_release);
    } else if (b == 1 && atomic_load_explicit(&q->owner, memory_order_relaxed) != me) {
        dq_revoke_locked(q);
    }
    return false;
}

static inline void dq_punlock(dq *q, bool biased)
{
    if (biased)
        atomic_store_explicit(&q->busy, 0, memory_order_release);
    else
        cspin_unlock(&q->mu);
}

/* Push (producers' side taken: dq_plock); returns false when closed or out of memory. force: push even into a
 * closed queue (a delivery counted within an auto-unsubscribe max that raced with the
 * last one closing the queue). The caller calls dq_pushed after unlocking. */
static bool dq_push_locked_ex(dq *q, struct ember_sub *sub, ember_msg *m, bool force)
{
    if (atomic_load_explicit(&q->closed, memory_order_relaxed) && !force)
        return false;
    dqseg *s = q->pseg;
    if (unlikely(q->pidx == s->cap)) {
        size_t ncap = s->cap < DQ_SEG_FIRST ? DQ_SEG_FIRST
                      : s->cap < DQ_SEG_MAX ? s->cap * 2
                                            : DQ_SEG_MAX;
        dqseg *ns = malloc(sizeof *ns + ncap * sizeof(qslot));
        if (!ns)
            return false;
        atomic_init(&ns->next, NULL);
        ns->cap = ncap;
        ns->items = (qslot *)(void *)(ns + 1);
        for (size_t i = 0; i < ncap; i++)
            atomic_init(&ns->items[i].msg, NULL);
        /* last touch of s by a producer: consumers may free it once they see this */
        atomic_store_explicit(&s->next, ns, memory_order_release);
        q->pseg = s = ns;
        q->pidx = 0;
    }
    qslot *slot = &s->items[q->pidx++];
    slot->sub = sub;
    atomic_store_explicit(&slot->msg, m, memory_order_release);
    atomic_store_explicit(&q->pushed,
                          atomic_load_explicit(&q->pushed, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    return true;
}

/* After a successful push, with the producers' side released: wake a sleeping consumer,
 * signal the fd. A consumer announces itself (sleepers, or clearing the fd) and runs
 * asym_heavy before it looks again; we run asym_light between our slot and these loads,
 * so either it sees our slot, or we see it. */
static void dq_pushed(dq *q)
{
    asym_light();
    if (atomic_load_explicit(&q->sleepers, memory_order_relaxed) != 0)
        dq_wake(q, false);
    dq_signal_fd(q);
}

/* Is a slot ready for the consumers? (cmu held) */
static bool dq_ready_locked(dq *q)
{
    dqseg *s = q->cseg;
    if (q->chead < s->cap)
        return atomic_load(&s->items[q->chead].msg) != NULL;
    dqseg *n = atomic_load(&s->next);
    return n && atomic_load(&n->items[0].msg) != NULL;
}

static bool dq_ready(dq *q)
{
    pthread_mutex_lock(&q->cmu);
    bool r = dq_ready_locked(q);
    pthread_mutex_unlock(&q->cmu);
    return r;
}

/* Take up to max items (consumers), in order. */
static size_t dq_take(dq *q, qitem *out, size_t max)
{
    pthread_mutex_lock(&q->cmu);
    dqseg *s = q->cseg;
    size_t h = q->chead, n = 0;
    while (n < max) {
        if (h == s->cap) {
            dqseg *next = atomic_load_explicit(&s->next, memory_order_acquire);
            if (!next)
                break;
            if (s != &q->first)
                free(s);
            s = next;
            h = 0;
            continue;
        }
        ember_msg *m = atomic_load_explicit(&s->items[h].msg, memory_order_acquire);
        if (!m)
            break;
        out[n].sub = s->items[h].sub;
        out[n].msg = m;
        n++;
        h++;
    }
    q->cseg = s;
    q->chead = h;
    if (n)
        atomic_store(&q->taken, atomic_load_explicit(&q->taken, memory_order_relaxed) + n);
    pthread_mutex_unlock(&q->cmu);
    return n;
}

/* Messages pushed and not yet taken (any thread; exact when nobody pushes or takes). */
static size_t dq_count(dq *q)
{
    size_t t = atomic_load(&q->taken);
    size_t p = atomic_load(&q->pushed);
    return p > t ? p - t : 0;
}

static bool dq_closed(dq *q) { return atomic_load(&q->closed); }

/* Close: producers push no more (except forced pushes), consumers are woken. A bias
 * owner checks `closed` after marking itself busy: it sees the flag, or we see it busy
 * and wait until its push is done. */
static void dq_close(dq *q)
{
    cspin_lock(&q->mu);
    atomic_store(&q->closed, true);
    if (atomic_load(&q->bias) == 1)
        dq_owner_sync(q);
    cspin_unlock(&q->mu);
    dq_wake(q, true);
}

/* The fd is cleared only when a poll finds nothing: while messages keep coming it stays
 * signalled and neither side makes a system call. Cleared first, then looked again, so
 * that a push racing with the clear leaves it signalled. */
static void dq_reset_fd(dq *q)
{
    if (q->efd < 0 || !atomic_load(&q->efd_signalled) || dq_closed(q))
        return;
    atomic_store(&q->efd_signalled, false);
    uint64_t v;
    ssize_t r = read(q->efd, &v, sizeof v);
    (void)r;
    asym_heavy(); /* against dq_pushed */
    if (dq_ready(q) || dq_closed(q))
        dq_signal_fd(q);
}

#define SPIN_NS 30000ull /* busy-wait up to 30 µs before sleeping */

/* Busy-wait step i: a few pause instructions, then yield the CPU so that the thread we
 * wait for can run even when the scheduler put it on our core (wake-affine placement on
 * 2-core machines, or load): a hand-off then costs a yield, not a whole spin budget. */
static inline void spin_pause(unsigned i)
{
    if (i < 32)
        cpu_relax();
    else
        sched_yield();
}

/* Wait (no lock held) until items, close, stop or timeout (ms; -1 forever). Spins
 * briefly first. Returns false on timeout. */
static bool dq_wait(dq *q, int timeout_ms, volatile atomic_bool *stop)
{
#define DQ_DONE() (dq_ready(q) || dq_closed(q) || (stop && atomic_load(stop)))
    if (DQ_DONE())
        return true;
    if (timeout_ms == 0)
        return false;
    uint64_t t0 = time_mono_ns();
    uint64_t spin = SPIN_NS;
    if (timeout_ms > 0 && (uint64_t)timeout_ms * 1000000ull < spin)
        spin = (uint64_t)timeout_ms * 1000000ull;
    for (unsigned i = 0;; i++) {
        if (DQ_DONE())
            return true;
        if ((i & 15) == 15 && time_mono_ns() - t0 > spin)
            break;
        /* back off between looks (up to 16 pauses): each look pulls the slot's cache
         * line away from the producer, which then pays a miss on its next write */
        if (i < 32) {
            for (unsigned k = 0; k < (1u << (i < 4 ? i : 4)); k++)
                cpu_relax();
        } else {
            sched_yield();
        }
    }
    struct timespec dl;
    if (timeout_ms > 0) {
        clock_gettime(CLOCK_MONOTONIC, &dl);
        uint64_t el = time_mono_ns() - t0, tot = (uint64_t)timeout_ms * 1000000ull;
        uint64_t ns = (uint64_t)dl.tv_nsec + (el < tot ? tot - el : 0);
        dl.tv_sec += (time_t)(ns / 1000000000ull);
        dl.tv_nsec = (long)(ns % 1000000000ull);
    }
    bool ok = true;
    pthread_mutex_lock(&q->wmu);
    for (;;) {
        atomic_fetch_add(&q->sleepers, 1);
        asym_heavy(); /* then look again: see dq_pushed */
        if (DQ_DONE()) {
            atomic_fetch_sub(&q->sleepers, 1);
            break;
        }
        int rc = timeout_ms < 0 ? pthread_cond_wait(&q->cv, &q->wmu)
                                : pthread_cond_timedwait(&q->cv, &q->wmu, &dl);
        atomic_fetch_sub(&q->sleepers, 1);
        if (rc == ETIMEDOUT) {
            ok = dq_ready(q) || dq_closed(q);
            break;
        }
    }
    pthread_mutex_unlock(&q->wmu);
    return ok;
#undef DQ_DONE
}

/* Free the segments and release the messages left (nobody else uses q any more). */
static void dq_destroy(dq *q)
{
    qitem it;
    while (dq_take(q, &it, 1))
        ember_msg_release(it.msg);
    if (q->cseg != &q->first)
        free(q->cseg);
    if (q->efd >= 0)
        close(q->efd);
    pthread_mutex_destroy(&q->cmu);
    pthread_mutex_destroy(&q->wmu);
    pthread_cond_destroy(&q->cv);
}

/* ------------------------------------------------------------------ types */

struct ember_sub {
    sub base;
    struct ember_conn *conn;
    ember_delivery mode;
    ember_msg_fn fn;
    void *userdata;
    ember_free_fn free_userdata;
    bool internal;                  /* the request mux */
    atomic_llong limit_msgs, limit_bytes;
    atomic_bool slow;               /* in slow-consumer state */
    atomic_bool slow_report;        /* next_msg reports EMBER_ESLOWCONSUMER once */
    dq *own;                        /* next_msg queue (fn == NULL) */
    struct ember_sub *next_all;     /* conn's list of subscriptions (conn->mu) */
    /* Queued-delivery accounting, pending = in - out. The producers' side grows under
     * the lock of the subscription's queue; seen_out_* is their last look at the
     * consumers' side (out only grows, so in - seen_out >= pending: the limit check reads
     * the consumers' cache line only near the limit). The consumers' side grows when
     * messages are taken out of the queue, one atomic add per batch, on its own line. */
    char pad1[64];
    atomic_ullong in_msgs, in_bytes;
    unsigned long long seen_out_msgs, seen_out_bytes;
    atomic_ullong dropped;
    char pad2[64];
    atomic_ullong out_msgs, out_bytes;
    atomic_ullong handed;
    atomic_ullong settled;          /* deliveries finished (pushed or not) while max > 0 */
};

typedef struct req_waiter {
    uint64_t token;
    ember_msg *reply;
    atomic_int done;
    atomic_int released;     /* the responder no longer touches this waiter */
    atomic_bool sleeping;
    bool cv_ready;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct req_waiter *next;
} req_waiter;

struct ember_conn {
    client *cl;
    server *srv;
    ember_conn_options opts;
    pthread_mutex_t mu;
    struct ember_sub *subs;
    atomic_bool closed;       /* server shut down or conn closed/drained */
    atomic_bool revoked;      /* closed by a reload that removed its user */
    atomic_bool user_closed;
    dq pollq;
    dq dispq;
    pthread_t disp_thread;
    bool disp_started;
    atomic_bool disp_stop;
    bool free_on_disp_exit;
    /* request mux */
    char inbox[64];           /* "_INBOX.<nuid>." */
    size_t inbox_len;
    _Atomic(struct ember_sub *) resp_sub;
    cspin rmu;             /* guards waiters */
    req_waiter *waiters;
    atomic_ullong next_token;
    atomic_bool draining;     /* ember_conn_drain: queued messages still run */
    bool free_on_poll_exit;   /* closed from a POLL callback: the poll call frees it */
    atomic_int disp_running;  /* the dispatcher is running a taken batch */
};

static _Thread_local struct ember_conn *tls_dispatching;
static _Thread_local struct ember_conn *tls_polling; /* inside ember_conn_poll(c) */

/* ------------------------------------------------------------------ subs */

/* Any unsubscribe (user, auto-unsubscribe max, drain, close): a next_msg reader gets
 * what is queued, then EMBER_ECLOSED. */
static void esub_unsubscribed(sub *b)
{
    struct ember_sub *s = (struct ember_sub *)b;
    if (s->own)
        dq_close(s->own);
}

static void esub_destroy(sub *b)
{
    struct ember_sub *s = (struct ember_sub *)b;
    if (s->own) {
        dq_destroy(s->own); /* releases what is left */
        free(s->own);
    }
    if (s->free_userdata)
        s->free_userdata(s->userdata);
    client *c = b->cl;
    free(b->subject);
    free(b->queue);
    free(s);
    client_release(c);
}

/* The pending accounting of messages taken out of a queue (after the take, lock not
 * needed): one add per run of messages of the same subscription. */
static void account_taken(const qitem *it, size_t n)
{
    for (size_t i = 0; i < n;) {
        struct ember_sub *s = it[i].sub;
        unsigned long long msgs = 0, bytes = 0;
        for (; i < n && it[i].sub == s; i++) {
            msgs++;
            bytes += it[i].msg->data_len + it[i].msg->hdr_len;
        }
        atomic_fetch_add_explicit(&s->out_msgs, msgs, memory_order_release);
        atomic_fetch_add_explicit(&s->out_bytes, bytes, memory_order_release);
    }
}

/* dq_take plus the pending accounting of the taken messages. */
static size_t take_acc(dq *q, qitem *out, size_t max)
{
    size_t n = dq_take(q, out, max);
    account_taken(out, n);
    return n;
}

static void report_slow(struct ember_conn *c, struct ember_sub *s)
{
    atomic_fetch_add(&s->dropped, 1);
    if (!atomic_exchange(&s->slow, true)) {
        atomic_fetch_add(&c->srv->slow_consumers, 1);
        atomic_store(&s->slow_report, true);
        if (c->opts.error_fn)
            c->opts.error_fn(c->opts.error_userdata, s, EMBER_ESLOWCONSUMER);
    }
}

static _Thread_local struct ember_conn *tls_inline_conn; /* inline callback running */

bool inproc_deliver(client *cl, sub *b, msgview *mv)
{
    struct ember_sub *s = (struct ember_sub *)b;
    if (unlikely(cl->perm != NULL)) {
        if (auth_deny_delivery(cl->perm, mv->subject, mv->subject_len)) {
            if (atomic_load_explicit(&s->base.max, memory_order_relaxed) > 0)
                atomic_fetch_add(&s->settled, 1);
            return false;
        }
        if (mv->reply)
            auth_note_reply(cl->perm, mv->reply, mv->reply_len);
    }
    /* in-flight guard: ember_conn_close waits for deliveries that passed this point. The
     * owner thread (util.h) counts on its own copy and orders that store before the
     * load of `closing` with asym_light, against conn_quiesce's asym_heavy. */
    const uint32_t me = thread_id();
    const bool mine = bias_mine(&cl->dlv_owner, me);
    if (likely(mine)) {
        atomic_store_explicit(&cl->inflight_own,
                              atomic_load_explicit(&cl->inflight_own, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        asym_light();
    } else {
        atomic_fetch_add(&cl->inflight, 1);
    }
    /* cl->conn only once `closing` is seen clear: conn_free clears it after quiesce */
    bool ok = false;
    struct ember_conn *c = NULL;
    if (unlikely(atomic_load(&cl->closing) || !(c = cl->conn)))
        goto out;
    ember_msg *m = msgview_block(mv);
    if (unlikely(!m))
        goto out;
    bias_add(mine, &cl->out_msgs_own, &cl->out_msgs, 1);
    bias_add(mine, &cl->out_bytes_own, &cl->out_bytes, mv->data_len + mv->hdr_len);
    if (s->mode == EMBER_DELIVER_INLINE && s->fn) {
        bias_add(bias_mine(&s->base.dlv_owner, me), &s->base.handed_own, &s->handed, 1);
        struct ember_conn *prev = tls_inline_conn;
        tls_inline_conn = c;
        s->fn(s->userdata, s, m);
        tls_inline_conn = prev;
        ok = true;
        goto out;
    }
    /* queued delivery, with the subscription's pending limits checked under the queue lock */
    dq *q = s->own ? s->own : (s->mode == EMBER_DELIVER_POLL ? &c->pollq : &c->dispq);
    long long sz = (long long)(m->data_len + m->hdr_len);
    long long lm = atomic_load_explicit(&s->limit_msgs, memory_order_relaxed);
    long long lb = atomic_load_explicit(&s->limit_bytes, memory_order_relaxed);
    bool slow = false;
    /* the message's only delivery: the queue takes the router's reference */
    bool given = mv->blk_give && mv->blk_owned && mv->blk == m;
    if (given) {
        mv->blk_owned = false; /* ours now: the consumer may free it any time after */
        mv->blk = NULL;
    } else
        ember_msg_retain(m);
    const bool biased = dq_plock(q, me);
    unsigned long long im = atomic_load_explicit(&s->in_msgs, memory_order_relaxed) + 1;
    unsigned long long ib = atomic_load_explicit(&s->in_bytes, memory_order_relaxed) +
                            (unsigned long long)sz;
    if ((lm > 0 && im - s->seen_out_msgs > (unsigned long long)lm) ||
        (lb > 0 && ib - s->seen_out_bytes > (unsigned long long)lb)) {
        /* near the limit: look at what the consumers took out since */
        s->seen_out_msgs = atomic_load_explicit(&s->out_msgs, memory_order_acquire);
        s->seen_out_bytes = atomic_load_explicit(&s->out_bytes, memory_order_acquire);
        slow = (lm > 0 && im - s->seen_out_msgs > (unsigned long long)lm) ||
               (lb > 0 && ib - s->seen_out_bytes > (unsigned long long)lb);
    }
    if (!slow && dq_push_locked_ex(q, s, m,
                                   q == s->own && atomic_load_explicit(&s->base.max,
                                                                       memory_order_relaxed) > 0)) {
        atomic_store_explicit(&s->in_msgs, im, memory_order_relaxed);
        atomic_store_explicit(&s->in_bytes, ib, memory_order_relaxed);
        ok = true;
    }
    dq_punlock(q, biased);
    if (ok)
        dq_pushed(q);
    if (!ok)
        ember_msg_release(m);
    if (slow) {
        report_slow(c, s);
    } else if (ok && atomic_load_explicit(&s->slow, memory_order_relaxed)) {
        atomic_store_explicit(&s->slow, false, memory_order_relaxed);
    }
out:
    if (atomic_load_explicit(&s->base.max, memory_order_relaxed) > 0)
        atomic_fetch_add(&s->settled, 1); /* after the push: see sub_unsettled */
    if (likely(mine))
        atomic_store_explicit(&cl->inflight_own,
                              atomic_load_explicit(&cl->inflight_own, memory_order_relaxed) - 1,
                              memory_order_release);
    else
        atomic_fetch_sub(&cl->inflight, 1);
    return ok;
}

/* With an auto-unsubscribe max, the delivery that reaches the max closes the queue while
 * an earlier counted one may still be on its way (its publisher thread counted it, then
 * got preempted before the push). A next_msg reader that finds the queue closed and
 * empty waits for those instead of reporting EMBER_ECLOSED early. */
static bool sub_unsettled(struct ember_sub *s)
{
    long long max = atomic_load(&s->base.max);
    if (max <= 0)
        return false;
    unsigned long long d = sub_delivered(&s->base);
    if (d > (unsigned long long)max)
        d = (unsigned long long)max;
    return atomic_load(&s->settled) < d;
}

/* Run one dequeued item: the callback if the subscription is still live. */
static bool run_item(struct ember_conn *c, qitem *it)
{
    struct ember_sub *s = it->sub;
    bool ran = false;
    /* queued messages still run after an auto-unsubscribe (they were counted before its
     * max) and during drain; a plain unsubscribe discards them */
    if (!atomic_load_explicit(&s->base.closed, memory_order_relaxed) ||
        atomic_load_explicit(&s->base.max, memory_order_relaxed) > 0 ||
        atomic_load_explicit(&c->draining, memory_order_relaxed)) {
        if (s->fn && !atomic_load(&c->user_closed)) {
            atomic_fetch_add_explicit(&s->handed, 1, memory_order_relaxed);
            s->fn(s->userdata, s, it->msg);
            ran = true;
        }
    }
    ember_msg_release(it->msg);
    return ran;
}

static void conn_free(struct ember_conn *c);
static void drop_queue(dq *q);

static void *dispatcher_main(void *arg)
{
    struct ember_conn *c = arg;
    tls_dispatching = c;
    qitem batch[256];
    for (;;) {
        dq_wait(&c->dispq, -1, &c->disp_stop);
        /* disp_running is set before the take advances `taken`, so that ember_conn_drain
         * (which reads the queue's count, then disp_running) never sees both at zero
         * mid-batch */
        atomic_store(&c->disp_running, 1);
        size_t n = take_acc(&c->dispq, batch, 256);
        if (n == 0) {
            atomic_store(&c->disp_running, 0);
            if (atomic_load(&c->disp_stop))
                break;
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            if (atomic_load(&c->disp_stop) && atomic_load(&c->user_closed)) {
                /* closing: drop the rest */
                ember_msg_release(batch[i].msg);
                continue;
            }
            run_item(c, &batch[i]);
        }
        atomic_store(&c->disp_running, 0);
    }
    tls_dispatching = NULL;
    pthread_mutex_lock(&c->mu);
    bool free_me = c->free_on_disp_exit;
    pthread_mutex_unlock(&c->mu);
    if (free_me) {
        pthread_detach(pthread_self());
        c->disp_started = false;
        conn_free(c);
    }
    return NULL;
}

static int ensure_dispatcher(struct ember_conn *c)
{
    pthread_mutex_lock(&c->mu);
    if (c->disp_started) {
        pthread_mutex_unlock(&c->mu);
        return 0;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&c->disp_thread, NULL, dispatcher_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0)
        c->disp_started = true;
    pthread_mutex_unlock(&c->mu);
    return rc ? err_set(EMBER_ENOMEM, "cannot create dispatcher thread") : 0;
}

/* ------------------------------------------------------------------ connect */

EMBER_API void ember_conn_options_init(ember_conn_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->pending_msgs_limit = 65536;
    o->pending_bytes_limit = 64ll * 1024 * 1024;
}

/* Credentials of the options against the server's users (the checks of a TCP CONNECT;
 * an nkey seed signs a nonce made here). 0, or EMBER_EAUTH. */
static int conn_authenticate(client *cl, const ember_conn_options *o)
{
    server *s = cl->srv;
    cl->acc = server_account(s, o->account);
    if (!cl->acc)
        return err_set(EMBER_ENOTFOUND, "account \"%s\" not found", o->account);
    if (!o->user && !o->password && !o->auth_token && !o->nkey_seed)
        return 0; /* the host's own connection */
    /* an nkey seed signs a nonce of our own, as a TCP client signs the INFO's */
    char pub[57], nonce[] = "in-process";
    uint8_t sig[64];
    char *b64 = NULL;
    const char *nkey = NULL;
    if (o->nkey_seed && nkey_seed_public(o->nkey_seed, pub) == 0 &&
        nkey_sign(o->nkey_seed, nonce, strlen(nonce), sig) == 0 &&
        (b64 = nkey_b64url(sig, sizeof sig)) != NULL)
        nkey = pub;
    const auth_user *au;
    bool ok = (!o->nkey_seed || nkey || !s->users) &&
              server_credentials_ok(s, o->user, o->password, o->auth_token, nkey, b64, nonce, &au);
    free(b64);
    if (ok && au) {
        account *ua = server_account(s, auth_user_account(au));
        if (o->account && ua != cl->acc) {
            srv_log(s, EMBER_LOG_ERROR, "in-process - cid:%llu - authentication error - %s is "
                    "not in account \"%s\"", (unsigned long long)cl->cid, auth_user_desc(au),
                    o->account);
            return err_set(EMBER_EAUTH, "Authorization Violation");
        }
        cl->acc = ua ? ua : s->gacc;
        cl->auth_user = au;
        cl->perm = auth_perm_new(au);
    }
    if (!ok) {
        srv_log(s, EMBER_LOG_ERROR, "in-process - cid:%llu - authentication error - User \"%s\"",
                (unsigned long long)cl->cid, o->user ? o->user : "");
        return err_set(EMBER_EAUTH, "Authorization Violation");
    }
    return 0;
}

EMBER_API int ember_conn_connect(ember_conn **out, ember_server *s, const ember_conn_options *opts)
{
    if (!out)
        return err_set(EMBER_EINVAL, "out is NULL");
    *out = NULL;
    if (!s)
        return err_set(EMBER_EINVAL, "server is NULL");
    ember_conn_options o;
    ember_conn_options_init(&o);
    if (opts) {
        if (opts->size == 0 || opts->size > sizeof o)
            return err_set(EMBER_EINVAL, "options not initialised with ember_conn_options_init");
        memcpy(&o, opts, opts->size);
        o.size = sizeof o;
    }
    struct ember_conn *c = calloc(1, sizeof *c);
    client *cl = calloc(1, sizeof *cl);
    if (!c || !cl) {
        free(c);
        free(cl);
        return err_set(EMBER_ENOMEM, "out of memory");
    }
    atomic_init(&cl->refs, 1);
    server_retain(s);
    cl->srv = s;
    cl->cid = atomic_fetch_add(&s->next_cid, 1);
    cl->kind = CK_INPROC;
    pthread_mutex_init(&cl->mu, NULL);
    cl->echo = !o.no_echo;
    cl->headers = true;
    cl->no_responders = true;
    cl->verbose = cl->pedantic = false;
    cl->connected = true;
    cl->start_ms = time_mono_ms(); /* connz "start" (monitor.c) */
    cl->name = o.name ? strdup(o.name) : NULL;
    o.name = cl->name;
    snprintf(cl->ip, sizeof cl->ip, "in-process");
    cl->conn = c;
    c->cl = cl;
    c->srv = s;
    c->opts = o;
    pthread_mutex_init(&c->mu, NULL);
    int arc = conn_authenticate(cl, &o);
    c->opts.account = NULL; /* borrowed: not kept */
    if (arc) {
        cl->conn = NULL;
        pthread_mutex_destroy(&c->mu);
        free(c);
        client_release(cl);
        return arc;
    }
    dq_init(&c->pollq, true);
    dq_init(&c->dispq, false);
    char nuid[23];
    nuid_next(nuid);
    c->inbox_len = (size_t)snprintf(c->inbox, sizeof c->inbox, "_INBOX.%s.", nuid);
    int rc = server_add_client(s, cl);
    if (rc) {
        cl->conn = NULL;
        dq_destroy(&c->pollq);
        dq_destroy(&c->dispq);
        pthread_mutex_destroy(&c->mu);
        free(c);
        client_release(cl);
        return rc;
    }
    *out = c;
    return EMBER_OK;
}

static int conn_usable(struct ember_conn *c)
{
    if (!c)
        return err_set(EMBER_EINVAL, "connection is NULL");
    if (atomic_load_explicit(&c->closed, memory_order_relaxed))
        return atomic_load(&c->revoked)
                   ? err_set(EMBER_ECLOSED, "connection closed: Authorization Violation")
                   : err_set(EMBER_ECLOSED, "connection closed");
    return 0;
}

/* ------------------------------------------------------------------ publish */

/* As nats-server for a no_responders client: a publish with a reply that reached nobody
 * gets a 503 status on the publisher's own subscription matching the reply subject. */
static void no_responders_status(struct ember_conn *c, const msgview *mv)
{
    struct ember_sub *target = NULL;
    pthread_mutex_lock(&c->mu);
    for (struct ember_sub *x = c->subs; x; x = x->next_all)
        if (!atomic_load(&x->base.closed) && !x->internal &&
            subject_matches(x->base.subject, x->base.subject_len, mv->reply, mv->reply_len)) {
            target = x;
            sub_retain(&x->base);
            break;
        }
    pthread_mutex_unlock(&c->mu);
    if (!target)
        return;
    char hdr[NO_RESPONDERS_HDR_CAP];
    msgview nr;
    no_responders_view(&nr, hdr, sizeof hdr, mv);
    inproc_deliver(c->cl, &target->base, &nr);
    if (nr.blk_owned)
        ember_msg_release(nr.blk);
    sub_release(&target->base);
}

/* reply_ok: the reply subject is one of our own request inboxes (valid by construction) */
static int publish_view_ex(struct ember_conn *c, msgview *mv, int *delivered, bool reply_ok)
{
    server *s = c->srv;
    if (unlikely(!subject_is_valid_literal(mv->subject, mv->subject_len)))
        return err_set(EMBER_EINVAL, "invalid publish subject \"%.*s\"", (int)mv->subject_len,
                       mv->subject);
    if (mv->reply && !reply_ok && unlikely(!subject_is_valid_literal(mv->reply, mv->reply_len)))
        return err_set(EMBER_EINVAL, "invalid reply subject \"%.*s\"", (int)mv->reply_len, mv->reply);
    if (unlikely((int64_t)(mv->data_len + mv->hdr_len) > s->opts.max_payload))
        return err_set(EMBER_EMAXPAYLOAD, "maximum payload exceeded: %zu > %lld",
                       mv->data_len + mv->hdr_len, (long long)s->opts.max_payload);
    client *cl = c->cl;
    if (unlikely(cl->perm != NULL) && !auth_can_publish(cl->perm, mv->subject, mv->subject_len)) {
        srv_log(s, EMBER_LOG_ERROR, "in-process - cid:%llu - Publish Violation - %s, Subject \"%.*s\"",
                (unsigned long long)cl->cid, auth_user_desc(cl->auth_user), (int)mv->subject_len,
                mv->subject);
        return err_set(EMBER_EPERM, "Permissions Violation for Publish to \"%.*s\"",
                       (int)mv->subject_len, mv->subject);
    }
    const bool mine = bias_mine(&cl->pub_owner, thread_id());
    bias_add(mine, &cl->in_msgs_own, &cl->in_msgs, 1);
    bias_add(mine, &cl->in_bytes_own, &cl->in_bytes, mv->data_len + mv->hdr_len);
    int n = server_route(s, cl, mv);
    if (delivered)
        *delivered = n;
    else if (n == 0 && mv->reply)
        no_responders_status(c, mv);
    return EMBER_OK;
}

static int publish_view(struct ember_conn *c, msgview *mv, int *delivered)
{
    return publish_view_ex(c, mv, delivered, false);
}

server *conn_server(struct ember_conn *c) { return c->srv; }
account *conn_account(struct ember_conn *c) { return c->cl->acc; }
int conn_check(struct ember_conn *c) { return conn_usable(c); }
int conn_publish_view(struct ember_conn *c, msgview *mv, int *delivered)
{
    int n = 0;
    int rc = publish_view(c, mv, &n);
    if (delivered)
        *delivered = n;
    return rc;
}

/* Check a usable connection and the (subject, data, len) arguments; fill a view of them. */
static int view_of_args(struct ember_conn *c, msgview *mv, const char *subject,
                        const void *data, size_t len)
{
    int rc = conn_usable(c);
    if (rc)
        return rc;
    if (!subject)
        return err_set(EMBER_EINVAL, "subject is NULL");
    if (!data && len)
        return err_set(EMBER_EINVAL, "data is NULL with a non-zero length");
    memset(mv, 0, sizeof *mv);
    mv->subject = subject;
    mv->subject_len = strlen(subject);
    mv->data = data ? data : "";
    mv->data_len = len;
    return EMBER_OK;
}

EMBER_API int ember_conn_publish(ember_conn *c, const char *subject, const char *reply,
                                 const void *data, size_t len)
{
    msgview mv;
    int rc = view_of_args(c, &mv, subject, data, len);
    if (rc)
        return rc;
    if (reply && *reply) {
        mv.reply = reply;
        mv.reply_len = strlen(reply);
    }
    return publish_view(c, &mv, NULL);
}

static void view_of_msg(msgview *mv, ember_msg *m)
{
    memset(mv, 0, sizeof *mv);
    mv->subject = m->subject;
    mv->subject_len = m->subject_len;
    mv->reply = m->reply;
    mv->reply_len = m->reply_len;
    mv->hdr = m->hdr;
    mv->hdr_len = m->hdr_len;
    mv->data = m->data;
    mv->data_len = m->data_len;
}

EMBER_API int ember_conn_publish_msg(ember_conn *c, ember_msg *m)
{
    int rc = conn_usable(c);
    if (rc)
        return rc;
    if (!m)
        return err_set(EMBER_EINVAL, "message is NULL");
    m->flags |= MSG_F_FROZEN;
    msgview mv;
    view_of_msg(&mv, m);
    mv.blk = m; /* shared as is: no copy */
    return publish_view(c, &mv, NULL);
}

EMBER_API int ember_msg_respond(ember_conn *c, const ember_msg *request, const void *data,
                                size_t len)
{
    if (!request)
        return err_set(EMBER_EINVAL, "request is NULL");
    if (!request->reply)
        return err_set(EMBER_EINVAL, "message has no reply subject");
    return ember_conn_publish(c, request->reply, NULL, data, len);
}

/* ------------------------------------------------------------------ subscribe */

static int subscribe_internal(struct ember_sub **out, struct ember_conn *c, const char *subject,
                              const char *queue, ember_delivery mode, ember_msg_fn fn,
                              void *userdata, ember_free_fn free_userdata, bool internal)
{
    server *srv = c->srv;
    client *pc = c->cl;
    if (unlikely(pc->perm != NULL) && !internal && subject &&
        !auth_can_subscribe(pc->perm, subject, strlen(subject), queue, queue ? strlen(queue) : 0)) {
        if (free_userdata)
            free_userdata(userdata);
        if (queue && *queue)
            return err_set(EMBER_EPERM,
                           "Permissions Violation for Subscription to \"%s\" using queue \"%s\"",
                           subject, queue);
        return err_set(EMBER_EPERM, "Permissions Violation for Subscription to \"%s\"", subject);
    }
    struct ember_sub *s = calloc(1, sizeof *s);
    if (!s) {
        if (free_userdata)
            free_userdata(userdata);
        return err_set(EMBER_ENOMEM, "out of memory");
    }
    atomic_init(&s->base.refs, 1); /* the connection's */
    s->base.cl = c->cl;
    client_retain(c->cl);
    s->base.destroy = esub_destroy;
    s->base.unsubscribed = esub_unsubscribed;
    s->base.subject = strdup(subject);
    s->base.subject_len = strlen(subject);
    s->base.queue = queue && *queue ? strdup(queue) : NULL;
    s->conn = c;
    s->mode = mode;
    s->fn = fn;
    s->userdata = userdata;
    s->free_userdata = free_userdata;
    s->internal = internal;
    atomic_init(&s->limit_msgs, c->opts.pending_msgs_limit);
    atomic_init(&s->limit_bytes, c->opts.pending_bytes_limit);
    if (!s->base.subject || (queue && *queue && !s->base.queue)) {
        sub_release(&s->base);
        return err_set(EMBER_ENOMEM, "out of memory");
    }
    if (!fn) {
        s->own = malloc(sizeof *s->own);
        if (!s->own) {
            sub_release(&s->base);
            return err_set(EMBER_ENOMEM, "out of memory");
        }
        dq_init(s->own, false);
    } else if (mode == EMBER_DELIVER_DISPATCH) {
        int rc = ensure_dispatcher(c);
        if (rc) {
            s->free_userdata = NULL; /* error: the caller keeps userdata... */
            sub_release(&s->base);
            if (free_userdata)
                free_userdata(userdata);
            return rc;
        }
    }
    pthread_mutex_lock(&c->mu);
    if (atomic_load(&c->closed)) {
        pthread_mutex_unlock(&c->mu);
        sub_release(&s->base);
        return err_set(EMBER_ECLOSED, "connection closed");
    }
    if (srv->opts.max_subscriptions > 0) {
        int n = 0;
        for (struct ember_sub *x = c->subs; x; x = x->next_all)
            if (!atomic_load(&x->base.closed) && !x->internal)
                n++;
        if (n >= srv->opts.max_subscriptions && !internal) {
            pthread_mutex_unlock(&c->mu);
            sub_release(&s->base);
            return err_set(EMBER_ELIMIT, "maximum subscriptions exceeded");
        }
    }
    s->next_all = c->subs;
    c->subs = s;
    pthread_mutex_unlock(&c->mu);
    if (sublist_insert(c->cl->acc->sl, s->base.subject, s->base.queue, s) != 0) {
        atomic_store(&s->base.closed, true);
        pthread_mutex_lock(&c->mu);
        for (struct ember_sub **pp = &c->subs; *pp; pp = &(*pp)->next_all)
            if (*pp == s) {
                *pp = s->next_all;
                break;
            }
        pthread_mutex_unlock(&c->mu);
        sub_release(&s->base); /* frees the userdata now */
        return err_set(EMBER_EINVAL, "invalid subject \"%s\"", subject);
    }
    atomic_fetch_add(&srv->nsubs, 1);
    leaf_sub_changed(srv, &s->base, 1);
    if (out)
        *out = s;
    return EMBER_OK;
}

EMBER_API int ember_conn_subscribe(ember_sub **out, ember_conn *c, const char *subject,
                                   const char *queue, ember_delivery mode, ember_msg_fn fn,
                                   void *userdata, ember_free_fn free_userdata)
{
    if (out)
        *out = NULL;
    int rc = conn_usable(c);
    if (!rc && !subject)
        rc = err_set(EMBER_EINVAL, "subject is NULL");
    if (!rc && !subject_is_valid_sub(subject, strlen(subject)))
        rc = err_set(EMBER_EINVAL, "invalid subject \"%s\"", subject);
    if (!rc && queue && *queue && !subject_is_valid_queue(queue, strlen(queue)))
        rc = err_set(EMBER_EINVAL, "invalid queue name \"%s\"", queue);
    if (!rc && mode != EMBER_DELIVER_DISPATCH && mode != EMBER_DELIVER_POLL &&
        mode != EMBER_DELIVER_INLINE)
        rc = err_set(EMBER_EINVAL, "invalid delivery mode %d", (int)mode);
    if (!rc && mode == EMBER_DELIVER_INLINE && !fn)
        rc = err_set(EMBER_EINVAL, "inline delivery needs a callback");
    if (rc) {
        if (free_userdata)
            free_userdata(userdata);
        return rc;
    }
    struct ember_sub *s = NULL;
    rc = subscribe_internal(&s, c, subject, queue, mode, fn, userdata, free_userdata, false);
    if (rc == 0 && out)
        *out = s;
    return rc;
}

EMBER_API int ember_sub_unsubscribe(ember_sub *s)
{
    if (!s)
        return err_set(EMBER_EINVAL, "subscription is NULL");
    sub_unsubscribe(s->conn->srv, &s->base);
    if (s->own)
        drop_queue(s->own); /* documented: queued messages are discarded */
    return EMBER_OK;
}

EMBER_API int ember_sub_auto_unsubscribe(ember_sub *s, int64_t max)
{
    if (!s)
        return err_set(EMBER_EINVAL, "subscription is NULL");
    if (atomic_load(&s->base.closed))
        return err_set(EMBER_ECLOSED, "subscription closed");
    if (max <= 0)
        return err_set(EMBER_EINVAL, "max must be positive");
    atomic_store(&s->base.max, max);
    if (sub_delivered(&s->base) >= (unsigned long long)max)
        sub_unsubscribe(s->conn->srv, &s->base);
    return EMBER_OK;
}

EMBER_API int ember_sub_set_pending_limits(ember_sub *s, int64_t msgs, int64_t bytes)
{
    if (!s)
        return err_set(EMBER_EINVAL, "subscription is NULL");
    if (msgs == 0 || bytes == 0)
        return err_set(EMBER_EINVAL, "limits must be non-zero (negative: unlimited)");
    atomic_store(&s->limit_msgs, msgs);
    atomic_store(&s->limit_bytes, bytes);
    return EMBER_OK;
}

EMBER_API void ember_sub_get_stats(ember_sub *s, ember_sub_stats *out)
{
    if (!s || !out)
        return;
    out->delivered = atomic_load(&s->handed) + atomic_load(&s->base.handed_own);
    /* out before in: out never exceeds in (messages are counted in before they can be
     * taken out) */
    unsigned long long om = atomic_load_explicit(&s->out_msgs, memory_order_acquire);
    unsigned long long ob = atomic_load_explicit(&s->out_bytes, memory_order_acquire);
    unsigned long long im = atomic_load_explicit(&s->in_msgs, memory_order_acquire);
    unsigned long long ib = atomic_load_explicit(&s->in_bytes, memory_order_acquire);
    out->pending_msgs = im > om ? im - om : 0;
    out->pending_bytes = ib > ob ? ib - ob : 0;
    out->dropped = atomic_load(&s->dropped);
}

EMBER_API const char *ember_sub_subject(const ember_sub *s) { return s ? s->base.subject : NULL; }

EMBER_API bool ember_sub_is_valid(const ember_sub *s)
{
    return s && !atomic_load(&((ember_sub *)s)->base.closed) &&
           !atomic_load(&s->conn->closed);
}

EMBER_API int ember_sub_next_msg(ember_sub *s, ember_msg **out, int timeout_ms)
{
    if (!out)
        return err_set(EMBER_EINVAL, "out is NULL");
    *out = NULL;
    if (!s)
        return err_set(EMBER_EINVAL, "subscription is NULL");
    if (!s->own)
        return err_set(EMBER_EINVAL, "subscription has a callback: use it, or ember_conn_poll");
    if (atomic_exchange(&s->slow_report, false))
        return err_set(EMBER_ESLOWCONSUMER, "slow consumer: %llu messages dropped",
                       (unsigned long long)atomic_load(&s->dropped));
    dq *q = s->own;
    qitem it;
    size_t n;
    bool closed;
    uint64_t settle_dl = 0;
    for (;;) {
        bool got = dq_wait(q, timeout_ms, NULL);
        n = got ? take_acc(q, &it, 1) : 0;
        closed = dq_closed(q);
        if (n || !closed || !sub_unsettled(s) || atomic_load(&s->conn->closed))
            break;
        if (!settle_dl)
            settle_dl = time_mono_ms() + 1000; /* a publisher thread is mid-delivery */
        else if (time_mono_ms() > settle_dl)
            break;
        sched_yield();
    }
    if (n == 0) {
        if (closed || atomic_load(&s->conn->closed))
            return err_set(EMBER_ECLOSED, "subscription closed");
        return err_set(EMBER_ETIMEDOUT, "no message within %d ms", timeout_ms);
    }
    atomic_fetch_add(&s->handed, 1);
    *out = it.msg;
    return EMBER_OK;
}

/* ------------------------------------------------------------------ poll */

EMBER_API int ember_conn_poll(ember_conn *c, int timeout_ms)
{
    if (!c)
        return err_set(EMBER_EINVAL, "connection is NULL");
    qitem batch[256];
    dq *q = &c->pollq;
    if (atomic_load(&c->closed) && dq_count(q) == 0) /* (pushed: the producers' line) */
        return err_set(EMBER_ECLOSED, "connection closed");
    dq_wait(q, timeout_ms, &c->closed);
    size_t n = take_acc(q, batch, 256);
    /* the fd is cleared only when a poll finds nothing: while messages keep coming it
     * stays signalled and neither side makes a syscall */
    if (n == 0)
        dq_reset_fd(q);
    int ran = 0;
    struct ember_conn *prev = tls_polling;
    tls_polling = c;
    for (size_t i = 0; i < n; i++) {
        if (c->free_on_poll_exit) { /* closed by one of these callbacks */
            ember_msg_release(batch[i].msg);
            continue;
        }
        ran += run_item(c, &batch[i]);
    }
    tls_polling = prev;
    if (c->free_on_poll_exit && prev != c)
        conn_free(c);
    return ran;
}

EMBER_API int ember_conn_fd(ember_conn *c)
{
    if (!c) {
        err_set(EMBER_EINVAL, "connection is NULL");
        return -1;
    }
    return c->pollq.efd;
}

/* ------------------------------------------------------------------ request */

static void resp_handler(void *ud, ember_sub *sub, ember_msg *m)
{
    struct ember_conn *c = ud;
    if (m->subject_len <= c->inbox_len)
        return;
    uint64_t token = 0; /* the decimal token after the inbox prefix (fmt_u64 in request) */
    for (size_t i = c->inbox_len; i < m->subject_len; i++) {
        unsigned d = (unsigned)(unsigned char)m->subject[i] - '0';
        if (d > 9) {
            token = 0; /* not one of ours: matches no waiter (tokens start at 1) */
            break;
        }
        token = token * 10 + d;
    }
    cspin_lock(&c->rmu);
    req_waiter **pp = &c->waiters, *w = NULL;
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->token == token) {
            w = *pp;
            *pp = w->next;
            break;
        }
    cspin_unlock(&c->rmu);
    if (!w)
        return; /* late or duplicate reply */
    /* Hand over without a lock unless the requester sleeps (seq_cst Dekker pair:
     * we store done then load sleeping; the requester stores sleeping then loads done). */
    w->reply = ember_msg_retain(m);
    atomic_store(&w->done, 1);
    if (atomic_load(&w->sleeping)) {
        pthread_mutex_lock(&w->mu);
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
    atomic_store_explicit(&w->released, 1, memory_order_release); /* last touch of w */
}

static int ensure_resp_sub(struct ember_conn *c)
{
    if (atomic_load_explicit(&c->resp_sub, memory_order_acquire))
        return 0;
    char subj[80];
    snprintf(subj, sizeof subj, "%s*", c->inbox);
    struct ember_sub *s = NULL;
    int rc = subscribe_internal(&s, c, subj, NULL, EMBER_DELIVER_INLINE, resp_handler, c, NULL,
                                true);
    if (rc)
        return rc;
    struct ember_sub *expected = NULL;
    if (!atomic_compare_exchange_strong(&c->resp_sub, &expected, s))
        ember_sub_unsubscribe(s); /* another thread won; ours stays in the conn's list */
    return 0;
}

static int request_view(struct ember_conn *c, msgview *mv, int timeout_ms, ember_msg **reply)
{
    int rc = ensure_resp_sub(c);
    if (rc)
        return rc;
    req_waiter w;
    w.reply = NULL;
    atomic_init(&w.done, 0);
    atomic_init(&w.released, 0);
    atomic_init(&w.sleeping, false);
    w.cv_ready = false;
    w.token = atomic_fetch_add_explicit(&c->next_token, 1, memory_order_relaxed) + 1;
    char inbox[96];
    memcpy(inbox, c->inbox, c->inbox_len);
    size_t il = c->inbox_len + fmt_u64(inbox + c->inbox_len, w.token);
    inbox[il] = 0;
    cspin_lock(&c->rmu);
    w.next = c->waiters;
    c->waiters = &w;
    cspin_unlock(&c->rmu);
    mv->reply = inbox;
    mv->reply_len = il;
    int delivered = 0;
    rc = publish_view_ex(c, mv, &delivered, true);
    if (rc == 0 && delivered == 0 && !atomic_load(&w.done))
        rc = err_set(EMBER_ENORESPONDERS, "no responders available for request on \"%.*s\"",
                     (int)mv->subject_len, mv->subject);
    if (rc == 0 && !atomic_load_explicit(&w.done, memory_order_acquire)) {
        /* spin briefly, then sleep */
        uint64_t t0 = time_mono_ns();
        uint64_t spin = SPIN_NS;
        if (timeout_ms >= 0 && (uint64_t)timeout_ms * 1000000ull < spin)
            spin = (uint64_t)timeout_ms * 1000000ull;
        for (unsigned i = 0; !atomic_load_explicit(&w.done, memory_order_acquire); i++) {
            if ((i & 63) == 63 && time_mono_ns() - t0 > spin)
                break;
            spin_pause(i);
        }
        if (!atomic_load(&w.done)) {
            pthread_mutex_init(&w.mu, NULL);
            pthread_condattr_t ca;
            pthread_condattr_init(&ca);
            pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
            pthread_cond_init(&w.cv, &ca);
            pthread_condattr_destroy(&ca);
            w.cv_ready = true;
            struct timespec dl;
            clock_gettime(CLOCK_MONOTONIC, &dl);
            uint64_t ns = (uint64_t)dl.tv_nsec + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000ull;
            dl.tv_sec += (time_t)(ns / 1000000000ull);
            dl.tv_nsec = (long)(ns % 1000000000ull);
            pthread_mutex_lock(&w.mu);
            atomic_store(&w.sleeping, true);
            while (!atomic_load(&w.done) && !atomic_load(&c->closed)) {
                int r = timeout_ms < 0 ? pthread_cond_wait(&w.cv, &w.mu)
                                       : pthread_cond_timedwait(&w.cv, &w.mu, &dl);
                if (r == ETIMEDOUT)
                    break;
            }
            pthread_mutex_unlock(&w.mu);
        }
        if (!atomic_load(&w.done))
            rc = atomic_load(&c->closed)
                     ? err_set(EMBER_ECLOSED, "connection closed")
                     : err_set(EMBER_ETIMEDOUT, "request on \"%.*s\" timed out after %d ms",
                               (int)mv->subject_len, mv->subject, timeout_ms);
    }
    if (!atomic_load(&w.done)) {
        /* unregister; if a responder took it meanwhile, it completes below */
        cspin_lock(&c->rmu);
        for (req_waiter **pp = &c->waiters; *pp; pp = &(*pp)->next)
            if (*pp == &w) {
                *pp = w.next;
                atomic_store(&w.released, 1); /* nobody else will touch it */
                break;
            }
        cspin_unlock(&c->rmu);
    }
    /* the responder's hand-over may still be finishing: wait for its last touch */
    while (!atomic_load_explicit(&w.released, memory_order_acquire))
        cpu_relax();
    if (atomic_load(&w.done) && w.reply) {
        if (rc == 0 || rc == EMBER_ETIMEDOUT || rc == EMBER_ENORESPONDERS || rc == EMBER_ECLOSED) {
            rc = 0;
            *reply = w.reply;
            w.reply = NULL;
        }
        if (w.reply)
            ember_msg_release(w.reply);
    }
    if (w.cv_ready) {
        pthread_mutex_destroy(&w.mu);
        pthread_cond_destroy(&w.cv);
    }
    return rc;
}

EMBER_API int ember_conn_request(ember_conn *c, const char *subject, const void *data,
                                 size_t len, int timeout_ms, ember_msg **reply)
{
    if (!reply)
        return err_set(EMBER_EINVAL, "reply is NULL");
    *reply = NULL;
    msgview mv;
    int rc = view_of_args(c, &mv, subject, data, len);
    if (rc)
        return rc;
    return request_view(c, &mv, timeout_ms, reply);
}

EMBER_API int ember_conn_request_msg(ember_conn *c, ember_msg *m, int timeout_ms,
                                     ember_msg **reply)
{
    if (!reply)
        return err_set(EMBER_EINVAL, "reply is NULL");
    *reply = NULL;
    int rc = conn_usable(c);
    if (rc)
        return rc;
    if (!m)
        return err_set(EMBER_EINVAL, "message is NULL");
    m->flags |= MSG_F_FROZEN;
    msgview mv;
    view_of_msg(&mv, m);
    /* the reply differs from m's: a new block is built when an in-process sub needs one */
    return request_view(c, &mv, timeout_ms, reply);
}

/* ------------------------------------------------------------------ flush, drain, close */

EMBER_API int ember_conn_flush(ember_conn *c, int timeout_ms)
{
    return conn_usable(c);
}

EMBER_API bool ember_conn_is_closed(const ember_conn *c)
{
    return !c || atomic_load(&((ember_conn *)c)->closed);
}

EMBER_API void ember_conn_get_stats(ember_conn *c, ember_conn_stats *out)
{
    if (!c || !out)
        return;
    memset(out, 0, sizeof *out);
    out->in_msgs = cl_stat_out_msgs(c->cl);
    out->in_bytes = cl_stat_out_bytes(c->cl);
    out->out_msgs = cl_stat_in_msgs(c->cl);
    out->out_bytes = cl_stat_in_bytes(c->cl);
    pthread_mutex_lock(&c->mu);
    for (struct ember_sub *s = c->subs; s; s = s->next_all)
        out->dropped += atomic_load(&s->dropped);
    pthread_mutex_unlock(&c->mu);
}

static void unsubscribe_all(struct ember_conn *c)
{
    pthread_mutex_lock(&c->mu);
    for (struct ember_sub *s = c->subs; s; s = s->next_all)
        sub_unsubscribe(c->srv, &s->base); /* esub_unsubscribed closes next_msg queues */
    pthread_mutex_unlock(&c->mu);
}

static void wake_all(struct ember_conn *c)
{
    dq *qs[2] = {&c->pollq, &c->dispq};
    for (int i = 0; i < 2; i++) {
        dq_wake(qs[i], true);
        dq_signal_fd(qs[i]);
    }
    /* wake requesters */
    cspin_lock(&c->rmu);
    for (req_waiter *w = c->waiters; w; w = w->next) {
        if (!atomic_load(&w->sleeping))
            continue; /* not waiting on its condvar: it sees `closed` when it checks */
        pthread_mutex_lock(&w->mu);
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
    cspin_unlock(&c->rmu);
}

/* The server is shutting down (server thread): close without blocking on the host. */
void inproc_server_closing(client *cl)
{
    struct ember_conn *c = cl->conn;
    if (!c)
        return;
    atomic_store(&c->closed, true);
    unsubscribe_all(c);
    wake_all(c);
}

/* A reload removed the connection's user (server thread): close it as nats-server closes
 * such clients; the host still owns the handle (ember_conn_close frees it). */
void inproc_auth_revoked(client *cl)
{
    struct ember_conn *c = cl->conn;
    if (!c)
        return;
    atomic_store(&c->revoked, true);
    inproc_server_closing(cl);
}

EMBER_API int ember_conn_drain(ember_conn *c, int timeout_ms)
{
    int rc = conn_usable(c);
    if (rc)
        return rc;
    atomic_store(&c->draining, true);
    unsubscribe_all(c);
    /* let queued messages be delivered (the dispatcher's; POLL and next_msg messages
     * stay readable by the host) */
    uint64_t dl = time_mono_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
    bool timed_out = false;
    for (;;) {
        size_t pending = dq_count(&c->dispq);
        pending += (size_t)atomic_load(&c->disp_running); /* read after: see dispatcher_main */
        if (pending == 0)
            break;
        if (tls_dispatching == c)
            break; /* drained from a callback: cannot wait for ourselves */
        if (timeout_ms >= 0 && time_mono_ms() >= dl) {
            timed_out = true;
            break;
        }
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    atomic_store(&c->closed, true);
    wake_all(c);
    return timed_out ? err_set(EMBER_ETIMEDOUT, "drain timed out") : EMBER_OK;
}

static void drop_queue(dq *q)
{
    qitem it;
    dq_close(q);
    while (take_acc(q, &it, 1))
        ember_msg_release(it.msg);
}

static void conn_free(struct ember_conn *c)
{
    drop_queue(&c->pollq);
    drop_queue(&c->dispq);
    server *srv = c->srv;
    client *cl = c->cl;
    /* free subscriptions (their userdata is released with them) */
    pthread_mutex_lock(&c->mu);
    struct ember_sub *s = c->subs;
    c->subs = NULL;
    pthread_mutex_unlock(&c->mu);
    while (s) {
        struct ember_sub *n = s->next_all;
        sub_release(&s->base);
        s = n;
    }
    server_remove_client(srv, cl);
    pthread_mutex_lock(&cl->mu);
    cl->conn = NULL;
    pthread_mutex_unlock(&cl->mu);
    dq_destroy(&c->pollq);
    dq_destroy(&c->dispq);
    pthread_mutex_destroy(&c->mu);
    free(cl->name);
    cl->name = NULL;
    free(c);
    client_release(cl);
}

/* Stop new deliveries and wait for the ones running now (except our own inline
 * callback, when closing from inside it). */
static void conn_quiesce(struct ember_conn *c)
{
    client *cl = c->cl;
    atomic_store(&cl->closing, true);
    asym_heavy(); /* against the owner's asym_light in inproc_deliver */
    int self = tls_inline_conn == c ? 1 : 0;
    while (atomic_load(&cl->inflight) +
               atomic_load_explicit(&cl->inflight_own, memory_order_acquire) > self)
        sched_yield();
}

EMBER_API void ember_conn_close(ember_conn *c)
{
    if (!c)
        return;
    if (atomic_exchange(&c->user_closed, true))
        return;
    atomic_store(&c->closed, true);
    unsubscribe_all(c);
    conn_quiesce(c);
    atomic_store(&c->disp_stop, true);
    wake_all(c);
    pthread_mutex_lock(&c->mu);
    bool started = c->disp_started;
    bool self = started && pthread_equal(c->disp_thread, pthread_self());
    if (self)
        c->free_on_disp_exit = true;
    pthread_mutex_unlock(&c->mu);
    if (self)
        return; /* the dispatcher frees the connection when the callback returns */
    if (started)
        pthread_join(c->disp_thread, NULL);
    if (tls_polling == c) {
        c->free_on_poll_exit = true; /* from a POLL callback: ember_conn_poll frees it */
        return;
    }
    conn_free(c);
}
