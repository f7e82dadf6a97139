/* test_inproc_queue: the queued in-process delivery (DISPATCH, POLL with ember_conn_poll,
 * POLL with ember_sub_next_msg) under concurrency: several publisher threads, exact
 * counts, per-publisher order per subscription, pending limits (received + dropped ==
 * published), pending statistics, auto-unsubscribe with concurrent next_msg readers, no
 * lost wake-up through the pollable fd, closing while publishers run, and the hand-over
 * from one publishing thread (the biased fast path) to several. Meant to run
 * under TSan and ASan as well. Every wait is bounded; nothing asserts on timing. Ends with
 * "inproc_queue: N passed, N failed". */
#define _GNU_SOURCE
#include "ember.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define WAIT_MS 30000
#define CHECK_RC_OK(e) CHECK_EQ((e), EMBER_OK)
#define NPUB 4
#define MAXSUBS 2

static ember_server *server_up(void)
{
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true;
    ember_server *s = NULL;
    if (ember_server_new(&s, &o) != EMBER_OK)
        return NULL;
    if (ember_server_start(s) != EMBER_OK || !ember_server_ready_for_connections(s, 10000)) {
        ember_server_free(s);
        return NULL;
    }
    return s;
}

static void server_down(ember_server *s)
{
    ember_server_shutdown(s);
    ember_server_free(s);
}

/* payload: "<publisher> <seq>" padded to 64 bytes */
typedef struct pubarg {
    ember_conn *c;
    const char *subj[MAXSUBS];
    int nsubj;
    int id;
    long n;
    atomic_long sent;
    atomic_int errors;
} pubarg;

static void *pub_main(void *p)
{
    pubarg *a = p;
    char buf[64];
    for (long i = 0; i < a->n; i++) {
        memset(buf, ' ', sizeof buf);
        int l = snprintf(buf, sizeof buf, "%d %ld", a->id, i);
        buf[l] = ' ';
        int rc = ember_conn_publish(a->c, a->subj[i % a->nsubj], NULL, buf, sizeof buf);
        if (rc == EMBER_OK)
            atomic_fetch_add(&a->sent, 1);
        else if (rc != EMBER_ECLOSED)
            atomic_fetch_add(&a->errors, 1);
    }
    return NULL;
}

/* per subscription: count and order per publisher */
typedef struct rx {
    atomic_long count;
    long last[NPUB]; /* last sequence seen per publisher (ordered checks only) */
    atomic_int disorder;
    bool check_order;
    int slow_every;  /* sleep 1 ms every N messages (0: never) */
} rx;

static void rx_init(rx *r, bool check_order)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < NPUB; i++)
        r->last[i] = -1;
    r->check_order = check_order;
}

static void rx_msg(rx *r, ember_msg *m)
{
    size_t len = 0;
    const char *d = ember_msg_data(m, &len);
    int id = -1;
    long seq = -1;
    if (len == 64 && sscanf(d, "%d %ld", &id, &seq) == 2 && id >= 0 && id < NPUB) {
        if (r->check_order) {
            if (seq <= r->last[id])
                atomic_fetch_add(&r->disorder, 1);
            r->last[id] = seq;
        }
    } else {
        atomic_fetch_add(&r->disorder, 1);
    }
    long n = atomic_fetch_add(&r->count, 1) + 1;
    if (r->slow_every && n % r->slow_every == 0)
        usleep(1000);
}

static void rx_cb(void *ud, ember_sub *sub, ember_msg *m)
{
    (void)sub;
    rx_msg(ud, m);
}

static void start_pubs(pthread_t *th, pubarg *pa, ember_conn **pcs, const char **subj, int nsubj,
                       long n)
{
    for (int i = 0; i < NPUB; i++) {
        memset(&pa[i], 0, sizeof pa[i]);
        pa[i].c = pcs[i];
        for (int k = 0; k < nsubj; k++)
            pa[i].subj[k] = subj[k];
        pa[i].nsubj = nsubj;
        pa[i].id = i;
        pa[i].n = n;
        REQUIRE(pthread_create(&th[i], NULL, pub_main, &pa[i]) == 0);
    }
}

typedef struct poller {
    ember_conn *c;
    atomic_bool stop;
    atomic_int errors;
    bool use_fd;
} poller;

static void *poll_main(void *p)
{
    poller *t = p;
    int fd = ember_conn_fd(t->c);
    while (!atomic_load(&t->stop)) {
        if (t->use_fd) {
            /* wait on the fd only (a lost wake-up would stall until the bounded wait) */
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            int r = poll(&pfd, 1, 50);
            if (r < 0)
                atomic_fetch_add(&t->errors, 1);
            int n = ember_conn_poll(t->c, 0);
            if (n < 0 && n != EMBER_ECLOSED)
                atomic_fetch_add(&t->errors, 1);
        } else {
            int n = ember_conn_poll(t->c, 20);
            if (n < 0 && n != EMBER_ECLOSED)
                atomic_fetch_add(&t->errors, 1);
        }
    }
    return NULL;
}

/* Several publishers, one subscriber connection with two subscriptions of `mode`
 * (POLL: `npollers` threads polling), unlimited pending: exact counts, and per-publisher
 * order per subscription when one thread delivers. */
static void run_exact(ember_delivery mode, int npollers, bool use_fd, long n)
{
    ember_server *s = server_up();
    REQUIRE(s);
    ember_conn *pcs[NPUB], *sc = NULL;
    for (int i = 0; i < NPUB; i++)
        REQUIRE(ember_conn_connect(&pcs[i], s, NULL) == EMBER_OK);
    ember_conn_options co;
    ember_conn_options_init(&co);
    co.pending_msgs_limit = -1;
    co.pending_bytes_limit = -1;
    REQUIRE(ember_conn_connect(&sc, s, &co) == EMBER_OK);
    rx r[2];
    const char *subj[2] = {"q.a", "q.b"};
    ember_sub *subs[2];
    for (int k = 0; k < 2; k++) {
        rx_init(&r[k], npollers <= 1);
        REQUIRE(ember_conn_subscribe(&subs[k], sc, subj[k], NULL, mode, rx_cb, &r[k], NULL) ==
                EMBER_OK);
    }
    poller pl[2];
    pthread_t pth[2];
    for (int i = 0; i < npollers; i++) {
        memset(&pl[i], 0, sizeof pl[i]);
        pl[i].c = sc;
        pl[i].use_fd = use_fd;
        REQUIRE(pthread_create(&pth[i], NULL, poll_main, &pl[i]) == 0);
    }
    pthread_t th[NPUB];
    pubarg pa[NPUB];
    start_pubs(th, pa, pcs, subj, 2, n);
    for (int i = 0; i < NPUB; i++)
        pthread_join(th[i], NULL);
    long want = NPUB * n / 2;
    CHECK(WAIT_UNTIL(atomic_load(&r[0].count) >= want && atomic_load(&r[1].count) >= want,
                     WAIT_MS));
    tu_sleep_ms(20);
    for (int k = 0; k < 2; k++) {
        CHECK_EQ(atomic_load(&r[k].count), want);
        CHECK_EQ(atomic_load(&r[k].disorder), 0);
        ember_sub_stats st;
        memset(&st, 0, sizeof st);
        ember_sub_get_stats(subs[k], &st);
        CHECK_EQ(st.pending_msgs, 0);
        CHECK_EQ(st.pending_bytes, 0);
        CHECK_EQ(st.dropped, 0);
        CHECK_EQ(st.delivered, want);
    }
    for (int i = 0; i < NPUB; i++)
        CHECK_EQ(atomic_load(&pa[i].errors), 0);
    for (int i = 0; i < npollers; i++) {
        atomic_store(&pl[i].stop, true);
        pthread_join(pth[i], NULL);
        CHECK_EQ(atomic_load(&pl[i].errors), 0);
    }
    ember_conn_close(sc);
    for (int i = 0; i < NPUB; i++)
        ember_conn_close(pcs[i]);
    server_down(s);
}

/* A slow DISPATCH callback with a small pending limit: received + dropped == published,
 * order kept, slow-consumer reported. */
static atomic_int slow_reports;
static void err_cb(void *ud, ember_sub *sub, int code)
{
    (void)ud;
    (void)sub;
    if (code == EMBER_ESLOWCONSUMER)
        atomic_fetch_add(&slow_reports, 1);
}

static void test_limits_dispatch(void)
{
    ember_server *s = server_up();
    REQUIRE(s);
    ember_conn *pcs[NPUB], *sc = NULL;
    for (int i = 0; i < NPUB; i++)
        REQUIRE(ember_conn_connect(&pcs[i], s, NULL) == EMBER_OK);
    ember_conn_options co;
    ember_conn_options_init(&co);
    co.error_fn = err_cb;
    REQUIRE(ember_conn_connect(&sc, s, &co) == EMBER_OK);
    rx r;
    rx_init(&r, true);
    r.slow_every = 500;
    ember_sub *sub = NULL;
    REQUIRE(ember_conn_subscribe(&sub, sc, "lim", NULL, EMBER_DELIVER_DISPATCH, rx_cb, &r,
                                 NULL) == EMBER_OK);
    REQUIRE(ember_sub_set_pending_limits(sub, 100, 100 * 64) == EMBER_OK);
    const char *subj[1] = {"lim"};
    pthread_t th[NPUB];
    pubarg pa[NPUB];
    long n = 20000;
    start_pubs(th, pa, pcs, subj, 1, n);
    for (int i = 0; i < NPUB; i++)
        pthread_join(th[i], NULL);
    ember_sub_stats st;
    CHECK(WAIT_UNTIL((ember_sub_get_stats(sub, &st), st.pending_msgs == 0), WAIT_MS));
    tu_sleep_ms(20);
    memset(&st, 0, sizeof st);
    ember_sub_get_stats(sub, &st);
    CHECK_EQ((long long)atomic_load(&r.count) + (long long)st.dropped, NPUB * n);
    CHECK(st.dropped > 0);
    CHECK(atomic_load(&slow_reports) >= 1);
    CHECK_EQ(atomic_load(&r.disorder), 0);
    CHECK_EQ(st.pending_bytes, 0);
    ember_conn_close(sc);
    for (int i = 0; i < NPUB; i++)
        ember_conn_close(pcs[i]);
    server_down(s);
}

/* Pending statistics with nobody consuming, then consumed. Limits exact: with a limit
 * of L messages, exactly L stay queued. */
static void test_pending_stats(void)
{
    ember_server *s = server_up();
    REQUIRE(s);
    ember_conn *c = NULL;
    REQUIRE(ember_conn_connect(&c, s, NULL) == EMBER_OK);
    ember_sub *sub = NULL;
    REQUIRE(ember_conn_subscribe(&sub, c, "ps", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) ==
            EMBER_OK);
    REQUIRE(ember_sub_set_pending_limits(sub, 1000, -1) == EMBER_OK);
    char buf[100] = {0};
    for (int i = 0; i < 1500; i++)
        CHECK_RC_OK(ember_conn_publish(c, "ps", NULL, buf, sizeof buf));
    ember_sub_stats st;
    memset(&st, 0, sizeof st);
    ember_sub_get_stats(sub, &st);
    CHECK_EQ(st.pending_msgs, 1000);
    CHECK_EQ(st.pending_bytes, 1000 * 100);
    CHECK_EQ(st.dropped, 500);
    ember_msg *m = NULL;
    CHECK_EQ(ember_sub_next_msg(sub, &m, 0), EMBER_ESLOWCONSUMER);
    for (int i = 0; i < 400; i++) {
        m = NULL;
        CHECK_RC_OK(ember_sub_next_msg(sub, &m, 1000));
        ember_msg_release(m);
    }
    memset(&st, 0, sizeof st);
    ember_sub_get_stats(sub, &st);
    CHECK_EQ(st.pending_msgs, 600);
    CHECK_EQ(st.pending_bytes, 600 * 100);
    /* room for exactly 400 more */
    for (int i = 0; i < 500; i++)
        CHECK_RC_OK(ember_conn_publish(c, "ps", NULL, buf, sizeof buf));
    memset(&st, 0, sizeof st);
    ember_sub_get_stats(sub, &st);
    CHECK_EQ(st.pending_msgs, 1000);
    CHECK_EQ(st.dropped, 600);
    long got = 0;
    for (;;) {
        m = NULL;
        int rc = ember_sub_next_msg(sub, &m, 0);
        if (rc == EMBER_ESLOWCONSUMER)
            continue;
        if (rc != EMBER_OK)
            break;
        ember_msg_release(m);
        got++;
    }
    CHECK_EQ(got, 1000);
    memset(&st, 0, sizeof st);
    ember_sub_get_stats(sub, &st);
    CHECK_EQ(st.pending_msgs, 0);
    CHECK_EQ(st.pending_bytes, 0);
    /* unsubscribed with messages queued: they are discarded, next_msg says closed */
    for (int i = 0; i < 10; i++)
        CHECK_RC_OK(ember_conn_publish(c, "ps", NULL, buf, sizeof buf));
    CHECK_RC_OK(ember_sub_unsubscribe(sub));
    m = NULL;
    CHECK_EQ(ember_sub_next_msg(sub, &m, 100), EMBER_ECLOSED);
    ember_conn_close(c);
    server_down(s);
}

/* next_msg readers on one subscription with an auto-unsubscribe max: together they get
 * exactly max messages, then EMBER_ECLOSED. */
typedef struct reader {
    ember_sub *sub;
    atomic_long got;
    atomic_int closed, errors;
} reader;

static void *reader_main(void *p)
{
    reader *r = p;
    uint64_t dl = tu_now_ms() + WAIT_MS;
    while (tu_now_ms() < dl) {
        ember_msg *m = NULL;
        int rc = ember_sub_next_msg(r->sub, &m, 50);
        if (rc == EMBER_OK) {
            ember_msg_release(m);
            atomic_fetch_add(&r->got, 1);
        } else if (rc == EMBER_ECLOSED) {
            atomic_fetch_add(&r->closed, 1);
            return NULL;
        } else if (rc != EMBER_ETIMEDOUT) {
            atomic_fetch_add(&r->errors, 1);
        }
    }
    return NULL;
}

static void test_next_msg_auto_unsub(void)
{
    ember_server *s = server_up();
    REQUIRE(s);
    ember_conn *pcs[NPUB], *sc = NULL;
    for (int i = 0; i < NPUB; i++)
        REQUIRE(ember_conn_connect(&pcs[i], s, NULL) == EMBER_OK);
    REQUIRE(ember_conn_connect(&sc, s, NULL) == EMBER_OK);
    ember_sub *sub = NULL;
    REQUIRE(ember_conn_subscribe(&sub, sc, "nm", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) ==
            EMBER_OK);
    REQUIRE(ember_sub_set_pending_limits(sub, -1, -1) == EMBER_OK);
    long max = 15000;
    REQUIRE(ember_sub_auto_unsubscribe(sub, max) == EMBER_OK);
    reader rd[2];
    pthread_t rth[2];
    for (int i = 0; i < 2; i++) {
        memset(&rd[i], 0, sizeof rd[i]);
        rd[i].sub = sub;
        REQUIRE(pthread_create(&rth[i], NULL, reader_main, &rd[i]) == 0);
    }
    const char *subj[1] = {"nm"};
    pthread_t th[NPUB];
    pubarg pa[NPUB];
    start_pubs(th, pa, pcs, subj, 1, 5000); /* 20000 > max */
    for (int i = 0; i < NPUB; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(rth[i], NULL);
    CHECK_EQ(atomic_load(&rd[0].got) + atomic_load(&rd[1].got), max);
    CHECK_EQ(atomic_load(&rd[0].closed) + atomic_load(&rd[1].closed), 2);
    CHECK_EQ(atomic_load(&rd[0].errors) + atomic_load(&rd[1].errors), 0);
    ember_conn_close(sc);
    for (int i = 0; i < NPUB; i++)
        ember_conn_close(pcs[i]);
    server_down(s);
}

/* Close the subscriber connection (every mode) while publishers run. */
static void test_close_while_publishing(void)
{
    for (int round = 0; round < 3; round++) {
        ember_server *s = server_up();
        REQUIRE(s);
        ember_conn *pcs[NPUB], *sc = NULL;
        for (int i = 0; i < NPUB; i++)
            REQUIRE(ember_conn_connect(&pcs[i], s, NULL) == EMBER_OK);
        REQUIRE(ember_conn_connect(&sc, s, NULL) == EMBER_OK);
        rx r[2];
        rx_init(&r[0], false);
        rx_init(&r[1], false);
        REQUIRE(ember_conn_subscribe(NULL, sc, "cw", NULL, EMBER_DELIVER_DISPATCH, rx_cb, &r[0],
                                     NULL) == EMBER_OK);
        REQUIRE(ember_conn_subscribe(NULL, sc, "cw", NULL, EMBER_DELIVER_POLL, rx_cb, &r[1],
                                     NULL) == EMBER_OK);
        REQUIRE(ember_conn_subscribe(NULL, sc, "cw", NULL, EMBER_DELIVER_POLL, NULL, NULL,
                                     NULL) == EMBER_OK);
        poller pl;
        memset(&pl, 0, sizeof pl);
        pl.c = sc;
        pthread_t pth;
        REQUIRE(pthread_create(&pth, NULL, poll_main, &pl) == 0);
        const char *subj[1] = {"cw"};
        pthread_t th[NPUB];
        pubarg pa[NPUB];
        start_pubs(th, pa, pcs, subj, 1, 20000);
        CHECK(WAIT_UNTIL(atomic_load(&r[0].count) > 100, WAIT_MS));
        atomic_store(&pl.stop, true);
        pthread_join(pth, NULL);
        ember_conn_close(sc);
        for (int i = 0; i < NPUB; i++)
            pthread_join(th[i], NULL);
        for (int i = 0; i < NPUB; i++) {
            CHECK_EQ(atomic_load(&pa[i].errors), 0);
            ember_conn_close(pcs[i]);
        }
        server_down(s);
    }
}

/* The queue and the counters are biased toward the first thread that publishes (no
 * locked instruction while it is the only one; core/src/util.h): a second thread joining
 * on the same connection mid-stream revokes the bias. Counts, per-publisher order and the
 * statistics (owner's copy + shared copy) stay exact; a consumer that went to sleep is
 * woken by the owner's next message (DISPATCH and the POLL fd); deliveries the owner
 * counted before an auto-unsubscribe max count against it. */
static void test_bias_handover(void)
{
    ember_server *s = server_up();
    REQUIRE(s);
    ember_conn *pc = NULL, *sc = NULL;
    ember_conn_options co;
    ember_conn_options_init(&co);
    co.pending_msgs_limit = -1;
    co.pending_bytes_limit = -1;
    REQUIRE(ember_conn_connect(&pc, s, NULL) == EMBER_OK);
    REQUIRE(ember_conn_connect(&sc, s, &co) == EMBER_OK);
    rx r;
    rx_init(&r, true);
    ember_sub *sub = NULL;
    REQUIRE(ember_conn_subscribe(&sub, sc, "bh", NULL, EMBER_DELIVER_DISPATCH, rx_cb, &r, NULL) ==
            EMBER_OK);
    const long n = 20000;
    pubarg pa[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        memset(&pa[i], 0, sizeof pa[i]);
        pa[i].c = pc;
        pa[i].subj[0] = "bh";
        pa[i].nsubj = 1;
        pa[i].id = i;
        pa[i].n = n;
    }
    REQUIRE(pthread_create(&th[0], NULL, pub_main, &pa[0]) == 0);
    CHECK(WAIT_UNTIL(atomic_load(&pa[0].sent) >= n / 4, WAIT_MS));
    REQUIRE(pthread_create(&th[1], NULL, pub_main, &pa[1]) == 0);
    pthread_join(th[0], NULL);
    pthread_join(th[1], NULL);
    CHECK(WAIT_UNTIL(atomic_load(&r.count) >= 2 * n, WAIT_MS));
    tu_sleep_ms(20);
    CHECK_EQ(atomic_load(&r.count), 2 * n);
    CHECK_EQ(atomic_load(&r.disorder), 0);
    CHECK_EQ(atomic_load(&pa[0].errors) + atomic_load(&pa[1].errors), 0);
    ember_conn_stats ps, ss;
    ember_conn_get_stats(pc, &ps);
    ember_conn_get_stats(sc, &ss);
    CHECK_EQ(ps.out_msgs, (uint64_t)(2 * n));
    CHECK_EQ(ps.out_bytes, (uint64_t)(2 * n * 64));
    CHECK_EQ(ss.in_msgs, (uint64_t)(2 * n));
    CHECK_EQ(ss.in_bytes, (uint64_t)(2 * n * 64));
    ember_sub_stats st;
    ember_sub_get_stats(sub, &st);
    CHECK_EQ(st.delivered, (uint64_t)(2 * n));
    CHECK_EQ(st.pending_msgs, 0);

    /* wake-ups: one message at a time, the consumer asleep in between (it spins ~30 µs) */
    rx w;
    rx_init(&w, true);
    REQUIRE(ember_conn_subscribe(NULL, sc, "bw", NULL, EMBER_DELIVER_DISPATCH, rx_cb, &w, NULL) ==
            EMBER_OK);
    rx wp;
    rx_init(&wp, true);
    REQUIRE(ember_conn_subscribe(NULL, sc, "bw", NULL, EMBER_DELIVER_POLL, rx_cb, &wp, NULL) ==
            EMBER_OK);
    poller pl;
    memset(&pl, 0, sizeof pl);
    pl.c = sc;
    pl.use_fd = true;
    pthread_t pth;
    REQUIRE(pthread_create(&pth, NULL, poll_main, &pl) == 0);
    char buf[64];
    for (long i = 0; i < 40; i++) {
        memset(buf, ' ', sizeof buf);
        int l = snprintf(buf, sizeof buf, "0 %ld", i);
        buf[l] = ' ';
        CHECK_EQ(ember_conn_publish(pc, "bw", NULL, buf, sizeof buf), EMBER_OK);
        CHECK(WAIT_UNTIL(atomic_load(&w.count) == i + 1 && atomic_load(&wp.count) == i + 1,
                         WAIT_MS));
        tu_sleep_ms(2);
    }
    CHECK_EQ(atomic_load(&w.disorder) + atomic_load(&wp.disorder), 0);
    atomic_store(&pl.stop, true);
    pthread_join(pth, NULL);
    CHECK_EQ(atomic_load(&pl.errors), 0);

    /* auto-unsubscribe after deliveries counted by the owner thread (this one) */
    ember_conn *oc = NULL;
    REQUIRE(ember_conn_connect(&oc, s, &co) == EMBER_OK);
    ember_sub *au = NULL;
    REQUIRE(ember_conn_subscribe(&au, oc, "bau", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) ==
            EMBER_OK);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(ember_conn_publish(oc, "bau", NULL, "x", 1), EMBER_OK);
    CHECK_EQ(ember_sub_auto_unsubscribe(au, 8), EMBER_OK);
    for (int i = 0; i < 10; i++)
        CHECK_EQ(ember_conn_publish(oc, "bau", NULL, "y", 1), EMBER_OK);
    reader rd;
    memset(&rd, 0, sizeof rd);
    rd.sub = au;
    reader_main(&rd); /* reads until EMBER_ECLOSED */
    CHECK_EQ(atomic_load(&rd.closed), 1);
    CHECK_EQ(atomic_load(&rd.errors), 0);
    CHECK_EQ(atomic_load(&rd.got), 8);
    ember_conn_close(oc);
    ember_conn_close(sc);
    ember_conn_close(pc);
    server_down(s);
}

/* Closing and unsubscribing while the only publisher (the queues' bias owner, which
 * pushes without their lock) is in the middle of its pushes. */
static void test_close_biased(void)
{
    for (int round = 0; round < 5; round++) {
        ember_server *s = server_up();
        REQUIRE(s);
        ember_conn *pc = NULL, *sc = NULL;
        REQUIRE(ember_conn_connect(&pc, s, NULL) == EMBER_OK);
        REQUIRE(ember_conn_connect(&sc, s, NULL) == EMBER_OK);
        rx r[2];
        rx_init(&r[0], true);
        rx_init(&r[1], true);
        REQUIRE(ember_conn_subscribe(NULL, sc, "cb", NULL, EMBER_DELIVER_DISPATCH, rx_cb, &r[0],
                                     NULL) == EMBER_OK);
        REQUIRE(ember_conn_subscribe(NULL, sc, "cb", NULL, EMBER_DELIVER_POLL, rx_cb, &r[1],
                                     NULL) == EMBER_OK);
        ember_sub *nm = NULL;
        REQUIRE(ember_conn_subscribe(&nm, sc, "cb", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) ==
                EMBER_OK);
        poller pl;
        memset(&pl, 0, sizeof pl);
        pl.c = sc;
        pthread_t pth;
        REQUIRE(pthread_create(&pth, NULL, poll_main, &pl) == 0);
        pubarg pa;
        memset(&pa, 0, sizeof pa);
        pa.c = pc;
        pa.subj[0] = "cb";
        pa.nsubj = 1;
        pa.n = 200000;
        pthread_t th;
        REQUIRE(pthread_create(&th, NULL, pub_main, &pa) == 0);
        CHECK(WAIT_UNTIL(atomic_load(&r[0].count) > 1000, WAIT_MS));
        /* the next_msg subscription first: what was queued is readable, then ECLOSED */
        CHECK_EQ(ember_sub_unsubscribe(nm), EMBER_OK);
        reader rd;
        memset(&rd, 0, sizeof rd);
        rd.sub = nm;
        reader_main(&rd); /* reads until EMBER_ECLOSED */
        CHECK_EQ(atomic_load(&rd.closed), 1);
        CHECK_EQ(atomic_load(&rd.errors), 0);
        CHECK(atomic_load(&rd.got) <= atomic_load(&pa.sent));
        atomic_store(&pl.stop, true);
        pthread_join(pth, NULL);
        ember_conn_close(sc);
        pthread_join(th, NULL);
        CHECK_EQ(atomic_load(&pa.errors), 0);
        CHECK_EQ(atomic_load(&r[0].disorder) + atomic_load(&r[1].disorder), 0);
        ember_conn_close(pc);
        server_down(s);
    }
}

int main(void)
{
    run_exact(EMBER_DELIVER_DISPATCH, 0, false, 20000);
    run_exact(EMBER_DELIVER_POLL, 1, false, 20000);
    run_exact(EMBER_DELIVER_POLL, 2, false, 20000);
    run_exact(EMBER_DELIVER_POLL, 1, true, 20000);
    test_limits_dispatch();
    test_pending_stats();
    test_next_msg_auto_unsub();
    test_close_while_publishing();
    test_bias_handover();
    test_close_biased();
    return tu_summary("inproc_queue");
}
