/* test_inproc: the public embedding API, through ember.h only. Server options, new,
 * start, ready, shutdown (idempotent, concurrent, from callbacks, with signals), logging;
 * in-process connections in every delivery mode, wildcards, queue groups, request/reply,
 * headers, errors and limits, drain and close, server shutdown under live
 * subscriptions, userdata ownership, and a multi-threaded exact-count run. Every server
 * uses dont_listen or port -1 on loopback; every wait is bounded; nothing asserts on
 * timing. Ends with "inproc: N passed, N failed". */
#define _GNU_SOURCE
#include "ember.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

/* Status checks print the code's name and the thread's last error detail. */
#define CHECK_RC(expr, want)                                                                \
    do {                                                                                    \
        int rc_ = (expr), w_ = (want);                                                      \
        if (rc_ == w_) {                                                                    \
            atomic_fetch_add(&tu_passed, 1);                                                \
        } else {                                                                            \
            atomic_fetch_add(&tu_failed, 1);                                                \
            fprintf(stderr, "%s:%d: %s = %d (%s), want %d (%s); last error: \"%s\"\n",      \
                    __FILE__, __LINE__, #expr, rc_, ember_strerror(rc_), w_,                \
                    ember_strerror(w_), ember_last_error());                                \
        }                                                                                   \
    } while (0)

#define WAIT_MS 20000 /* bound of every wait for something that must happen */

/* ------------------------------------------------------------------ helpers */

static void opts_inproc(ember_server_options *o)
{
    ember_server_options_init(o);
    o->dont_listen = true;
}

static void opts_tcp(ember_server_options *o)
{
    ember_server_options_init(o);
    o->port = -1;
    o->host = "127.0.0.1";
}

/* new + start + ready; NULL (and a failed check) on any failure */
static ember_server *server_up(const ember_server_options *o)
{
    ember_server *s = NULL;
    int rc = ember_server_new(&s, o);
    CHECK_RC(rc, EMBER_OK);
    if (rc)
        return NULL;
    rc = ember_server_start(s);
    CHECK_RC(rc, EMBER_OK);
    bool ready = rc == 0 && ember_server_ready_for_connections(s, WAIT_MS);
    CHECK_MSG(ready, "not ready: %s", ember_last_error());
    if (!ready) {
        ember_server_free(s);
        return NULL;
    }
    return s;
}

static ember_server *inproc_server(void)
{
    ember_server_options o;
    opts_inproc(&o);
    return server_up(&o);
}

static ember_conn *conn_up(ember_server *s, const ember_conn_options *co)
{
    ember_conn *c = NULL;
    CHECK_RC(ember_conn_connect(&c, s, co), EMBER_OK);
    return c;
}

static pthread_t spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    if (pthread_create(&t, NULL, fn, arg) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        abort();
    }
    return t;
}

/* Userdata that counts messages and how often the library freed it. */
typedef struct track {
    atomic_int msgs;
    atomic_int frees;
    atomic_int bad;          /* messages that broke an expectation of the test */
    atomic_long bytes;
    pthread_t thread;        /* expected callback thread (check_thread) */
    int check_thread;        /* 0: none, 1: must equal `thread`, -1: must differ */
    struct ember_sub *sub;   /* expected sub (when set before the first message) */
    ember_conn *conn;        /* for callbacks that respond / close */
    ember_server *srv;
    atomic_int gate;         /* callbacks that wait for the test */
    atomic_int in_cb;
} track;

static void track_free(void *ud) { atomic_fetch_add(&((track *)ud)->frees, 1); }

static void track_check(track *t, ember_sub *sub, ember_msg *m)
{
    if (t->sub && t->sub != sub)
        atomic_fetch_add(&t->bad, 1);
    if (t->check_thread == 1 && !pthread_equal(t->thread, pthread_self()))
        atomic_fetch_add(&t->bad, 1);
    if (t->check_thread == -1 && pthread_equal(t->thread, pthread_self()))
        atomic_fetch_add(&t->bad, 1);
    size_t len = 0;
    ember_msg_data(m, &len);
    atomic_fetch_add(&t->bytes, (long)len);
}

static void count_cb(void *ud, ember_sub *sub, ember_msg *m)
{
    track *t = ud;
    track_check(t, sub, m);
    atomic_fetch_add(&t->msgs, 1);
}

/* Checks the payloads "m0", "m1", ... arrive in order. */
static void seq_cb(void *ud, ember_sub *sub, ember_msg *m)
{
    track *t = ud;
    track_check(t, sub, m);
    int n = atomic_load(&t->msgs);
    char want[32];
    snprintf(want, sizeof want, "m%d", n);
    size_t len = 0;
    const char *d = ember_msg_data(m, &len);
    if (!d || len != strlen(want) || memcmp(d, want, len) != 0 || d[len] != 0)
        atomic_fetch_add(&t->bad, 1);
    atomic_fetch_add(&t->msgs, 1);
}

static int subscribe(ember_sub **out, ember_conn *c, const char *subject, const char *queue,
                     ember_delivery mode, ember_msg_fn fn, track *t)
{
    return ember_conn_subscribe(out, c, subject, queue, mode, fn, t, t ? track_free : NULL);
}

/* Once this returns, every DISPATCH message queued on conn `c` before the call has
 * been run: the dispatcher is one FIFO per connection. pub publishes the marker (c
 * itself unless it is no_echo). */
static bool dispatch_barrier(ember_conn *c, ember_conn *pub)
{
    static atomic_int seq;
    char subj[64];
    snprintf(subj, sizeof subj, "_barrier.%d", atomic_fetch_add(&seq, 1));
    track t = {0};
    ember_sub *s = NULL;
    if (ember_conn_subscribe(&s, c, subj, NULL, EMBER_DELIVER_DISPATCH, count_cb, &t, NULL))
        return false;
    bool ok = ember_conn_publish(pub ? pub : c, subj, NULL, "", 0) == 0 &&
              WAIT_UNTIL(atomic_load(&t.msgs) == 1, WAIT_MS);
    ember_sub_unsubscribe(s);
    return ok;
}

static bool data_is(const ember_msg *m, const char *want)
{
    size_t len = 0;
    const char *d = ember_msg_data(m, &len);
    return d && len == strlen(want) && memcmp(d, want, len) == 0;
}

/* Count and release everything a callback-less subscription holds right now. */
static int drain_now(ember_sub *s)
{
    int n = 0;
    ember_msg *m;
    while (ember_sub_next_msg(s, &m, 0) == EMBER_OK) {
        ember_msg_release(m);
        n++;
    }
    return n;
}

/* A logger that collects lines. */
typedef struct logcap {
    pthread_mutex_t mu;
    char buf[16384];
    size_t len;
    int calls;
    int max_level;
    int min_level;
} logcap;

static void logcap_init(logcap *l)
{
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
    l->max_level = -1;
    l->min_level = 100;
}

static void logcap_fn(void *ud, int level, const char *line)
{
    logcap *l = ud;
    pthread_mutex_lock(&l->mu);
    l->calls++;
    if (level > l->max_level)
        l->max_level = level;
    if (level < l->min_level)
        l->min_level = level;
    size_t n = strlen(line);
    if (l->len + n + 2 < sizeof l->buf) {
        memcpy(l->buf + l->len, line, n);
        l->len += n;
        l->buf[l->len++] = '\n';
        l->buf[l->len] = 0;
    }
    pthread_mutex_unlock(&l->mu);
}

static bool logcap_has(logcap *l, const char *needle)
{
    pthread_mutex_lock(&l->mu);
    bool has = strstr(l->buf, needle) != NULL;
    pthread_mutex_unlock(&l->mu);
    return has;
}

static int logcap_calls(logcap *l)
{
    pthread_mutex_lock(&l->mu);
    int n = l->calls;
    pthread_mutex_unlock(&l->mu);
    return n;
}

/* ------------------------------------------------------------------ basics */

static void *last_error_thread(void *arg)
{
    const char *e = ember_last_error();
    *(int *)arg = e != NULL && e[0] == 0;
    return NULL;
}

static void test_basics(void)
{
    CHECK(strcmp(ember_version(), EMBER_VERSION_STRING) == 0);
    CHECK(strcmp(EMBER_NATS_VERSION, "2.11.0") == 0);
    int codes[] = {EMBER_OK,           EMBER_EINVAL,   EMBER_ETIMEDOUT, EMBER_ENORESPONDERS,
                   EMBER_ECLOSED,      EMBER_EMAXPAYLOAD, EMBER_ENOTFOUND, EMBER_EEXISTS,
                   EMBER_EWRONGSEQ,    EMBER_ESLOWCONSUMER, EMBER_EIO,   EMBER_ENOMEM,
                   EMBER_ELIMIT,       EMBER_ESTATE};
    int n = (int)(sizeof codes / sizeof codes[0]);
    for (int i = 0; i < n; i++) {
        const char *t = ember_strerror(codes[i]);
        CHECK(t != NULL && t[0] != 0);
        for (int j = 0; j < i; j++)
            CHECK_MSG(strcmp(t, ember_strerror(codes[j])) != 0, "%d and %d share \"%s\"",
                      codes[i], codes[j], t);
    }
    CHECK(ember_strerror(-12345) != NULL);
    CHECK(ember_strerror(12345) != NULL);
    CHECK(strstr(ember_strerror(EMBER_ETIMEDOUT), "time") != NULL);
    CHECK(strstr(ember_strerror(EMBER_ENORESPONDERS), "responders") != NULL);

    /* last error: set by a failing call, per thread */
    CHECK_RC(ember_server_new(NULL, NULL), EMBER_EINVAL);
    CHECK(ember_last_error() != NULL && ember_last_error()[0] != 0);
    int fresh = 0;
    pthread_join(spawn(last_error_thread, &fresh), NULL);
    CHECK(fresh);
}

/* ------------------------------------------------------------------ options, new */

static void expect_bad_options(const ember_server_options *o, const char *needle, int line)
{
    ember_server *s = (ember_server *)(uintptr_t)1; /* must be reset to NULL */
    int rc = ember_server_new(&s, o);
    CHECK_MSG(rc == EMBER_EINVAL, "line %d: rc %d", line, rc);
    CHECK_MSG(s == NULL, "line %d", line);
    if (needle)
        CHECK_MSG(strstr(ember_last_error(), needle) != NULL, "line %d: \"%s\" lacks \"%s\"",
                  line, ember_last_error(), needle);
    if (rc == 0 && s && s != (ember_server *)(uintptr_t)1)
        ember_server_free(s);
}

static void test_options(void)
{
    ember_server_options o;
    memset(&o, 0xAB, sizeof o);
    ember_server_options_init(&o);
    CHECK(o.size == sizeof o);
    CHECK(o.server_name == NULL);
    CHECK(o.host && strcmp(o.host, "0.0.0.0") == 0);
    CHECK_EQ(o.port, 0);
    CHECK(!o.dont_listen);
    CHECK_EQ(o.max_payload, 1024 * 1024);
    CHECK_EQ(o.max_control_line, 4096);
    CHECK_EQ(o.max_pending, 64ll * 1024 * 1024);
    CHECK_EQ(o.max_connections, 65536);
    CHECK_EQ(o.max_subscriptions, 0);
    CHECK_EQ(o.ping_interval_ms, 120000);
    CHECK_EQ(o.max_pings_out, 2);
    CHECK_EQ(o.write_deadline_ms, 10000);
    CHECK_EQ(o.auth_timeout_ms, 2000);
    CHECK(o.username == NULL && o.password == NULL && o.auth_token == NULL);
    CHECK(!o.jetstream && o.store_dir == NULL && o.jetstream_domain == NULL);
    CHECK(o.log_fn == NULL && o.log_userdata == NULL);
    CHECK_EQ(o.log_level, EMBER_LOG_INFO);
    CHECK(!o.no_header_support);
    ember_server_options_init(NULL); /* ignored */

    ember_conn_options co;
    memset(&co, 0xAB, sizeof co);
    ember_conn_options_init(&co);
    CHECK(co.size == sizeof co);
    CHECK(co.name == NULL);
    CHECK(!co.no_echo);
    CHECK_EQ(co.pending_msgs_limit, 65536);
    CHECK_EQ(co.pending_bytes_limit, 64ll * 1024 * 1024);
    CHECK(co.error_fn == NULL && co.error_userdata == NULL);
    ember_conn_options_init(NULL);

    /* ember_server_new errors */
    CHECK_RC(ember_server_new(NULL, &o), EMBER_EINVAL);
    ember_server_options b;
    b = o, b.size = 0;
    expect_bad_options(&b, NULL, __LINE__);
    b = o, b.size = sizeof o + 64;
    expect_bad_options(&b, NULL, __LINE__);
    b = o, b.port = -2;
    expect_bad_options(&b, "port", __LINE__);
    b = o, b.port = 65536;
    expect_bad_options(&b, "port", __LINE__);
    b = o, b.port = 1 << 20;
    expect_bad_options(&b, "port", __LINE__);
    b = o, b.max_payload = 0;
    expect_bad_options(&b, "max_payload", __LINE__);
    b = o, b.max_payload = -1;
    expect_bad_options(&b, "max_payload", __LINE__);
    b = o, b.max_payload = 64ll * 1024 * 1024 + 1;
    expect_bad_options(&b, "max_payload", __LINE__);
    b = o, b.max_payload = 2 * 1024 * 1024, b.max_pending = 1024 * 1024;
    expect_bad_options(&b, "max_payload", __LINE__);
    b = o, b.max_control_line = 0;
    expect_bad_options(&b, NULL, __LINE__);
    b = o, b.max_pending = 0;
    expect_bad_options(&b, NULL, __LINE__);
    b = o, b.username = "u";
    expect_bad_options(&b, NULL, __LINE__);
    b = o, b.password = "p";
    expect_bad_options(&b, NULL, __LINE__);
    b = o, b.username = "u", b.password = "p", b.auth_token = "t";
    expect_bad_options(&b, NULL, __LINE__);

    /* edges that are valid; none started, freed with nothing started */
    ember_server *s = NULL;
    b = o, b.port = 65535;
    CHECK_RC(ember_server_new(&s, &b), EMBER_OK);
    ember_server_free(s);
    s = NULL;
    b = o, b.port = -1, b.max_payload = 64ll * 1024 * 1024;
    CHECK_RC(ember_server_new(&s, &b), EMBER_OK);
    ember_server_free(s);
    s = NULL;
    b = o, b.username = "u", b.password = "p";
    CHECK_RC(ember_server_new(&s, &b), EMBER_OK);
    ember_server_free(s);

    /* NULL options: the defaults */
    s = NULL;
    CHECK_RC(ember_server_new(&s, NULL), EMBER_OK);
    REQUIRE(s != NULL);
    CHECK(ember_server_id(s) != NULL && strlen(ember_server_id(s)) == 56);
    CHECK(ember_server_name(s) && strcmp(ember_server_name(s), ember_server_id(s)) == 0);
    CHECK(ember_server_client_url(s) == NULL);
    CHECK_EQ(ember_server_port(s), 0);
    /* not started: not ready (bounded, with a reason), no connections, waits return */
    CHECK(!ember_server_ready_for_connections(s, 10));
    CHECK(ember_last_error()[0] != 0);
    ember_conn *c = (ember_conn *)(uintptr_t)1;
    CHECK_RC(ember_conn_connect(&c, s, NULL), EMBER_ECLOSED);
    CHECK(c == NULL);
    CHECK_RC(ember_server_wait_for_shutdown(s, false), EMBER_OK);
    ember_server_stats st;
    memset(&st, 0xFF, sizeof st);
    ember_server_get_stats(s, &st);
    CHECK_EQ(st.connections, 0);
    CHECK_EQ(st.subscriptions, 0);
    CHECK_EQ(st.in_msgs, 0);
    ember_server_free(s);

    /* shut down before start: start refuses, free works */
    s = NULL;
    CHECK_RC(ember_server_new(&s, NULL), EMBER_OK);
    ember_server_shutdown(s);
    ember_server_shutdown(s);
    CHECK_RC(ember_server_start(s), EMBER_ESTATE);
    ember_server_free(s);

    /* strings are copied */
    char name[32];
    snprintf(name, sizeof name, "ember-test-1");
    b = o, b.server_name = name;
    s = NULL;
    CHECK_RC(ember_server_new(&s, &b), EMBER_OK);
    memset(name, 'x', sizeof name - 1);
    CHECK(ember_server_name(s) && strcmp(ember_server_name(s), "ember-test-1") == 0);
    ember_server *s2 = NULL;
    CHECK_RC(ember_server_new(&s2, &b), EMBER_OK);
    CHECK(strcmp(ember_server_id(s), ember_server_id(s2)) != 0);
    ember_server_free(s);
    ember_server_free(s2);

    /* NULL handles */
    ember_server_free(NULL);
    ember_server_shutdown(NULL);
    CHECK_RC(ember_server_start(NULL), EMBER_EINVAL);
    CHECK(!ember_server_ready_for_connections(NULL, 0));
    CHECK_RC(ember_server_wait_for_shutdown(NULL, false), EMBER_EINVAL);
    CHECK(ember_server_client_url(NULL) == NULL);
    CHECK_EQ(ember_server_port(NULL), 0);
    CHECK(ember_server_id(NULL) == NULL);
    CHECK(ember_server_name(NULL) == NULL);
    ember_server_get_stats(NULL, &st);
    ember_server_log_to_stderr(NULL, EMBER_LOG_INFO);
    ember_server_set_logger(NULL, EMBER_LOG_INFO, logcap_fn, NULL);
}

/* ------------------------------------------------------------------ lifecycle */

/* Connect to 127.0.0.1:port and read the first bytes the server sends (bounded). */
static bool tcp_reads_info(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = false;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        char buf[6] = {0};
        size_t got = 0;
        uint64_t dl = tu_now_ms() + WAIT_MS;
        while (got < 5 && tu_now_ms() < dl) {
            struct pollfd p = {fd, POLLIN, 0};
            if (poll(&p, 1, 100) <= 0)
                continue;
            ssize_t r = read(fd, buf + got, 5 - got);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        ok = got == 5 && memcmp(buf, "INFO ", 5) == 0;
    }
    close(fd);
    return ok;
}

static void test_lifecycle_tcp(void)
{
    logcap lc;
    logcap_init(&lc);
    ember_server_options o;
    opts_tcp(&o);
    o.log_fn = logcap_fn;
    o.log_userdata = &lc;
    ember_server *s = NULL;
    CHECK_RC(ember_server_new(&s, &o), EMBER_OK);
    REQUIRE(s);
    CHECK(ember_server_client_url(s) == NULL); /* before ready */
    CHECK_RC(ember_server_start(s), EMBER_OK);
    CHECK_RC(ember_server_start(s), EMBER_ESTATE);
    CHECK(ember_server_ready_for_connections(s, WAIT_MS));
    CHECK(ember_server_ready_for_connections(s, 0)); /* stays ready */
    int port = ember_server_port(s);
    CHECK(port > 0 && port < 65536);
    const char *url = ember_server_client_url(s);
    char want[64];
    snprintf(want, sizeof want, "nats://127.0.0.1:%d", port);
    CHECK_MSG(url && strcmp(url, want) == 0, "url %s, want %s", url ? url : "(null)", want);
    CHECK(tcp_reads_info(port));
    char listen_line[96];
    snprintf(listen_line, sizeof listen_line, "Listening for client connections on 127.0.0.1:%d",
             port);
    CHECK(logcap_has(&lc, listen_line));
    CHECK(logcap_has(&lc, "Server is ready"));
    CHECK(lc.max_level <= EMBER_LOG_INFO);

    /* in-process works next to TCP */
    ember_conn *c = conn_up(s, NULL);
    REQUIRE(c);
    ember_sub *sub = NULL;
    CHECK_RC(ember_conn_subscribe(&sub, c, "lc.x", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL),
             EMBER_OK);
    CHECK_RC(ember_conn_publish(c, "lc.x", NULL, "hi", 2), EMBER_OK);
    ember_msg *m = NULL;
    CHECK_RC(ember_sub_next_msg(sub, &m, WAIT_MS), EMBER_OK);
    CHECK(m && data_is(m, "hi"));
    ember_msg_release(m);
    ember_server_stats st;
    /* the TCP connection of tcp_reads_info may still be closing on the server's thread */
    CHECK(WAIT_UNTIL((ember_server_get_stats(s, &st), st.connections == 1), WAIT_MS));
    CHECK(st.total_connections >= 2);
    CHECK_EQ(st.subscriptions, 1);
    CHECK(st.in_msgs >= 1 && st.out_msgs >= 1);

    ember_server_shutdown(s);
    ember_server_shutdown(s); /* idempotent */
    CHECK(!ember_server_ready_for_connections(s, 0));
    CHECK(ember_conn_is_closed(c));
    ember_conn *c2 = NULL;
    CHECK_RC(ember_conn_connect(&c2, s, NULL), EMBER_ECLOSED);
    CHECK_RC(ember_server_wait_for_shutdown(s, false), EMBER_OK);
    ember_conn_close(c);
    ember_server_free(s);
    pthread_mutex_destroy(&lc.mu);
}

static void test_dont_listen(void)
{
    logcap lc;
    logcap_init(&lc);
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true; /* port stays 0 (4222): nothing may be bound */
    o.log_fn = logcap_fn;
    o.log_userdata = &lc;
    ember_server *s = server_up(&o);
    REQUIRE(s);
    CHECK(ember_server_client_url(s) == NULL);
    CHECK_EQ(ember_server_port(s), 0);
    CHECK(!logcap_has(&lc, "Listening for client connections"));
    CHECK(logcap_has(&lc, "Server is ready"));
    ember_conn *a = conn_up(s, NULL), *b = conn_up(s, NULL);
    REQUIRE(a && b);
    ember_sub *sub = NULL;
    CHECK_RC(ember_conn_subscribe(&sub, b, "dl.>", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL),
             EMBER_OK);
    CHECK_RC(ember_conn_publish(a, "dl.one", NULL, "x", 1), EMBER_OK);
    ember_msg *m = NULL;
    CHECK_RC(ember_sub_next_msg(sub, &m, WAIT_MS), EMBER_OK);
    CHECK(m && strcmp(ember_msg_subject(m), "dl.one") == 0 && data_is(m, "x"));
    ember_msg_release(m);
    ember_conn_close(a);
    ember_conn_close(b);
    ember_server_free(s);
    pthread_mutex_destroy(&lc.mu);
}

static void test_port_taken(void)
{
    ember_server_options o;
    opts_tcp(&o);
    ember_server *a = server_up(&o);
    REQUIRE(a);
    int port = ember_server_port(a);
    REQUIRE(port > 0);

    logcap lc;
    logcap_init(&lc);
    ember_server_options ob;
    opts_tcp(&ob);
    ob.port = port;
    ob.log_fn = logcap_fn;
    ob.log_userdata = &lc;
    ember_server *b = NULL;
    CHECK_RC(ember_server_new(&b, &ob), EMBER_OK);
    REQUIRE(b);
    CHECK_RC(ember_server_start(b), EMBER_OK); /* start does not wait for the bind */
    CHECK(!ember_server_ready_for_connections(b, WAIT_MS));
    const char *err = ember_last_error();
    CHECK_MSG(strstr(err, "Error listening on port") != NULL, "last error \"%s\"", err);
    CHECK(logcap_has(&lc, "Error listening on port"));
    CHECK(lc.min_level <= EMBER_LOG_ERROR);
    CHECK(ember_server_client_url(b) == NULL);
    CHECK_EQ(ember_server_port(b), 0);
    CHECK_RC(ember_server_wait_for_shutdown(b, false), EMBER_OK); /* ends by itself */
    ember_conn *c = NULL;
    CHECK_RC(ember_conn_connect(&c, b, NULL), EMBER_ECLOSED);
    ember_server_free(b);
    /* the first server is unaffected */
    CHECK(tcp_reads_info(port));
    ember_server_free(a);
    pthread_mutex_destroy(&lc.mu);
}

typedef struct shut_ctx {
    ember_server *s;
    pthread_barrier_t *bar;
    int delay_ms;
    pthread_t target;
    int sig;
} shut_ctx;

static void *shutdown_thread(void *arg)
{
    shut_ctx *x = arg;
    if (x->bar)
        pthread_barrier_wait(x->bar);
    if (x->delay_ms)
        tu_sleep_ms(x->delay_ms);
    if (x->sig)
        pthread_kill(x->target, x->sig);
    else
        ember_server_shutdown(x->s);
    return NULL;
}

static void test_shutdown_concurrent(void)
{
    ember_server *s = inproc_server();
    REQUIRE(s);
    ember_conn *c[3];
    track t[3][2];
    memset(t, 0, sizeof t);
    for (int i = 0; i < 3; i++) {
        c[i] = conn_up(s, NULL);
        REQUIRE(c[i]);
        CHECK_RC(subscribe(NULL, c[i], "sc.>", NULL, EMBER_DELIVER_DISPATCH, count_cb, &t[i][0]),
                 EMBER_OK);
        CHECK_RC(subscribe(NULL, c[i], "sc.x", "q", EMBER_DELIVER_POLL, NULL, &t[i][1]),
                 EMBER_OK);
        CHECK_RC(ember_conn_publish(c[i], "sc.x", NULL, "1", 1), EMBER_OK);
    }
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 4);
    shut_ctx x = {.s = s, .bar = &bar};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        th[i] = spawn(shutdown_thread, &x);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL); /* all four return */
    pthread_barrier_destroy(&bar);
    CHECK(!ember_server_ready_for_connections(s, 0));
    CHECK_RC(ember_server_wait_for_shutdown(s, false), EMBER_OK);
    for (int i = 0; i < 3; i++) {
        CHECK(ember_conn_is_closed(c[i]));
        CHECK_RC(ember_conn_publish(c[i], "sc.x", NULL, "1", 1), EMBER_ECLOSED);
        ember_conn_close(c[i]);
        CHECK_EQ(atomic_load(&t[i][0].frees), 1);
        CHECK_EQ(atomic_load(&t[i][1].frees), 1);
    }
    ember_server_stats st;
    ember_server_get_stats(s, &st);
    CHECK_EQ(st.connections, 0);
    CHECK_EQ(st.subscriptions, 0);
    CHECK_EQ(st.total_connections, 3);
    ember_server_free(s);
}

static void test_wait_for_shutdown(void)
{
    /* wait_for_shutdown(false) returns once another thread shut the server down */
    ember_server *s = inproc_server();
    REQUIRE(s);
    shut_ctx x = {.s = s, .delay_ms = 20};
    pthread_t th = spawn(shutdown_thread, &x);
    CHECK_RC(ember_server_wait_for_shutdown(s, false), EMBER_OK);
    pthread_join(th, NULL);
    CHECK(!ember_server_ready_for_connections(s, 0));
    ember_server_free(s);

    /* with handle_signals: SIGTERM sent to the waiting thread shuts it down. SIGTERM is
     * blocked here first, so that it can only ever be consumed by the wait. */
    logcap lc;
    logcap_init(&lc);
    ember_server_options o;
    opts_inproc(&o);
    o.log_fn = logcap_fn;
    o.log_userdata = &lc;
    s = server_up(&o);
    REQUIRE(s);
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, &old);
    shut_ctx y = {.s = s, .delay_ms = 20, .target = pthread_self(), .sig = SIGTERM};
    th = spawn(shutdown_thread, &y);
    CHECK_RC(ember_server_wait_for_shutdown(s, true), EMBER_OK);
    pthread_join(th, NULL);
    CHECK(!ember_server_ready_for_connections(s, 0));
    CHECK(logcap_has(&lc, "Trapped \"terminated\" signal"));
    sigset_t pend;
    sigpending(&pend);
    CHECK(!sigismember(&pend, SIGTERM));
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    ember_server_free(s);
    pthread_mutex_destroy(&lc.mu);
}

static void shutdown_cb(void *ud, ember_sub *sub, ember_msg *m)
{
    (void)sub;
    (void)m;
    track *t = ud;
    ember_server_shutdown(t->srv);
    ember_server_shutdown(t->srv); /* still idempotent from here */
    atomic_fetch_add(&t->msgs, 1);
}

static void test_shutdown_from_callbacks(void)
{
    ember_delivery modes[3] = {EMBER_DELIVER_DISPATCH, EMBER_DELIVER_INLINE, EMBER_DELIVER_POLL};
    for (int i = 0; i < 3; i++) {
        ember_server *s = inproc_server();
        REQUIRE(s);
        ember_conn *c = conn_up(s, NULL);
        REQUIRE(c);
        track t = {0};
        t.srv = s;
        CHECK_RC(subscribe(NULL, c, "sd.x", NULL, modes[i], shutdown_cb, &t), EMBER_OK);
        CHECK_RC(ember_conn_publish(c, "sd.x", NULL, "bye", 3), EMBER_OK);
        if (modes[i] == EMBER_DELIVER_INLINE)
            CHECK_EQ(atomic_load(&t.msgs), 1); /* ran during the publish */
        if (modes[i] == EMBER_DELIVER_POLL)
            CHECK_EQ(ember_conn_poll(c, WAIT_MS), 1);
        CHECK(WAIT_UNTIL(atomic_load(&t.msgs) == 1, WAIT_MS));
        CHECK_RC(ember_server_wait_for_shutdown(s, false), EMBER_OK);
        CHECK(ember_conn_is_closed(c));
        CHECK_RC(ember_conn_publish(c, "sd.x", NULL, "bye", 3), EMBER_ECLOSED);
        ember_conn_close(c);
        CHECK_EQ(atomic_load(&t.msgs), 1);
        CHECK_EQ(atomic_load(&t.frees), 1);
        ember_server_free(s);
    }
}

/* ------------------------------------------------------------------ logging */

/* Run fn with fds 1 and 2 redirected to temporary files; returns their contents'
 * lengths and copies stderr into err (NUL-terminated). */
static bool capture_stdio(void (*fn)(void *), void *arg, size_t *out_len, size_t *err_len,
                          char *err, size_t errcap)
{
    char p1[] = "/tmp/ember-inproc-outXXXXXX", p2[] = "/tmp/ember-inproc-errXXXXXX";
    int f1 = mkstemp(p1), f2 = mkstemp(p2);
    if (f1 < 0 || f2 < 0)
        return false;
    unlink(p1);
    unlink(p2);
    fflush(stdout);
    fflush(stderr);
    int s1 = dup(1), s2 = dup(2);
    dup2(f1, 1);
    dup2(f2, 2);
    fn(arg);
    fflush(stdout);
    fflush(stderr);
    dup2(s1, 1);
    dup2(s2, 2);
    close(s1);
    close(s2);
    struct stat st1, st2;
    fstat(f1, &st1);
    fstat(f2, &st2);
    *out_len = (size_t)st1.st_size;
    *err_len = (size_t)st2.st_size;
    if (err && errcap) {
        ssize_t r = pread(f2, err, errcap - 1, 0);
        err[r > 0 ? r : 0] = 0;
    }
    close(f1);
    close(f2);
    return true;
}

/* A whole server life with errors on the way: nothing may reach stdout or stderr. */
static void quiet_life(void *arg)
{
    (void)arg;
    ember_server_options o;
    opts_tcp(&o);
    ember_server *s = NULL;
    if (ember_server_new(&s, &o) || ember_server_start(s) ||
        !ember_server_ready_for_connections(s, WAIT_MS)) {
        ember_server_free(s);
        return;
    }
    ember_conn *c = NULL;
    ember_conn_connect(&c, s, NULL);
    ember_sub *sub = NULL;
    ember_conn_subscribe(&sub, c, "q.x", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL);
    ember_conn_subscribe(NULL, c, "q..x", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL);
    ember_conn_publish(c, "q.x", NULL, "x", 1);
    ember_conn_publish(c, "q.*", NULL, "x", 1);
    ember_msg *m = NULL;
    ember_conn_request(c, "q.none", "x", 1, 100, &m);
    ember_sub_next_msg(sub, &m, 0);
    ember_msg_release(m);
    tcp_reads_info(ember_server_port(s));
    ember_server_shutdown(s);
    ember_conn_close(c);
    ember_server_free(s);
}

static void stderr_life(void *arg)
{
    int *ok = arg;
    ember_server_options o;
    opts_tcp(&o);
    ember_server *s = NULL;
    if (ember_server_new(&s, &o))
        return;
    ember_server_log_to_stderr(s, EMBER_LOG_INFO);
    *ok = ember_server_start(s) == 0 && ember_server_ready_for_connections(s, WAIT_MS);
    ember_server_free(s);
}

static void test_logging(void)
{
    /* a logger set in the options: notices at INFO, nothing above its level */
    logcap a, b, c;
    logcap_init(&a);
    logcap_init(&b);
    logcap_init(&c);
    ember_server_options o;
    opts_tcp(&o);
    o.log_fn = logcap_fn;
    o.log_userdata = &a;
    ember_server *s = server_up(&o);
    REQUIRE(s);
    CHECK(logcap_has(&a, "Listening for client connections on"));
    CHECK(a.max_level <= EMBER_LOG_INFO && a.min_level >= EMBER_LOG_FATAL);
    /* replace it: the new logger gets the debug line of shutdown, the old one nothing */
    int before = logcap_calls(&a);
    ember_server_set_logger(s, EMBER_LOG_DEBUG, logcap_fn, &b);
    ember_server_shutdown(s);
    CHECK(logcap_has(&b, "shutdown requested"));
    CHECK(logcap_has(&b, "Server Exiting"));
    CHECK_EQ(logcap_calls(&a), before);
    ember_server_free(s);

    /* set then removed before start: silent */
    s = NULL;
    opts_tcp(&o);
    CHECK_RC(ember_server_new(&s, &o), EMBER_OK);
    ember_server_set_logger(s, EMBER_LOG_TRACE, logcap_fn, &c);
    ember_server_set_logger(s, EMBER_LOG_TRACE, NULL, NULL);
    CHECK_RC(ember_server_start(s), EMBER_OK);
    CHECK(ember_server_ready_for_connections(s, WAIT_MS));
    ember_server_free(s);
    CHECK_EQ(logcap_calls(&c), 0);

    /* silent by default: nothing on stdout or stderr through a whole life */
    size_t out_len = 99, err_len = 99;
    char err[2048];
    CHECK(capture_stdio(quiet_life, NULL, &out_len, &err_len, err, sizeof err));
    CHECK_EQ(out_len, 0);
    CHECK_MSG(err_len == 0, "stderr got: %s", err);

    /* ember_server_log_to_stderr: nats-server style lines */
    int ok = 0;
    CHECK(capture_stdio(stderr_life, &ok, &out_len, &err_len, err, sizeof err));
    CHECK(ok);
    CHECK_EQ(out_len, 0);
    CHECK_MSG(strstr(err, "[INF]") != NULL, "stderr: %s", err);
    CHECK_MSG(strstr(err, "Listening for client connections on") != NULL, "stderr: %s", err);
    pthread_mutex_destroy(&a.mu);
    pthread_mutex_destroy(&b.mu);
    pthread_mutex_destroy(&c.mu);
}

/* ------------------------------------------------------------------ connections */

static void test_null_handles(void)
{
    ember_server *s = inproc_server();
    REQUIRE(s);
    ember_conn *c = (ember_conn *)(uintptr_t)1;
    CHECK_RC(ember_conn_connect(NULL, s, NULL), EMBER_EINVAL);
    CHECK_RC(ember_conn_connect(&c, NULL, NULL), EMBER_EINVAL);
    CHECK(c == NULL);
    ember_conn_options co;
    ember_conn_options_init(&co);
    co.size = 0;
    c = (ember_conn *)(uintptr_t)1;
    CHECK_RC(ember_conn_connect(&c, s, &co), EMBER_EINVAL);
    CHECK(c == NULL);

    track t = {0};
    ember_sub *sub = (ember_sub *)(uintptr_t)1;
    CHECK_RC(subscribe(&sub, NULL, "a", NULL, EMBER_DELIVER_POLL, NULL, &t), EMBER_EINVAL);
    CHECK(sub == NULL);
    CHECK_EQ(atomic_load(&t.frees), 1); /* freed on error too */
    CHECK_RC(ember_conn_publish(NULL, "a", NULL, "", 0), EMBER_EINVAL);
    ember_msg *m = (ember_msg *)(uintptr_t)1;
    CHECK_RC(ember_conn_request(NULL, "a", "", 0, 10, &m), EMBER_EINVAL);
    CHECK(m == NULL);
    CHECK_RC(ember_conn_publish_msg(NULL, NULL), EMBER_EINVAL);
    CHECK(ember_conn_poll(NULL, 0) == EMBER_EINVAL);
    CHECK_EQ(ember_conn_fd(NULL), -1);
    CHECK_RC(ember_conn_flush(NULL, 10), EMBER_EINVAL);
    CHECK_RC(ember_conn_drain(NULL, 10), EMBER_EINVAL);
    ember_conn_close(NULL);
    CHECK(ember_conn_is_closed(NULL));
    ember_conn_stats cst;
    ember_conn_get_stats(NULL, &cst);
    m = (ember_msg *)(uintptr_t)1;
    CHECK_RC(ember_sub_next_msg(NULL, &m, 0), EMBER_EINVAL);
    CHECK(m == NULL);
    CHECK_RC(ember_sub_unsubscribe(NULL), EMBER_EINVAL);
    CHECK_RC(ember_sub_auto_unsubscribe(NULL, 1), EMBER_EINVAL);
    CHECK_RC(ember_sub_set_pending_limits(NULL, 1, 1), EMBER_EINVAL);
    ember_sub_stats sst;
    ember_sub_get_stats(NULL, &sst);
    CHECK(ember_sub_subject(NULL) == NULL);
    CHECK(!ember_sub_is_valid(NULL));
    CHECK_RC(ember_msg_respond(NULL, NULL, "", 0), EMBER_EINVAL);
    /* message accessors on NULL */
    size_t len = 7;
    CHECK(ember_msg_data(NULL, &len) == NULL && len == 0);
    CHECK(ember_msg_subject(NULL) == NULL && ember_msg_reply(NULL) == NULL);
    CHECK(ember_msg_headers_raw(NULL, &len) == NULL && len == 0);
    CHECK(ember_msg_header_get(NULL, "a") == NULL);
    CHECK_EQ(ember_msg_header_values(NULL, "a", NULL, 0), 0);
    CHECK(!ember_msg_header_at(NULL, 0, NULL, NULL));
    CHECK_EQ(ember_msg_status(NULL), 0);
    CHECK(ember_msg_retain(NULL) == NULL);
    ember_msg_release(NULL);
    CHECK_RC(ember_msg_header_add(NULL, "a", "b"), EMBER_EINVAL);

    /* connections count */
    ember_conn *a = conn_up(s, NULL), *b = conn_up(s, NULL);
    REQUIRE(a && b);
    CHECK(!ember_conn_is_closed(a));
    CHECK(ember_conn_fd(a) >= 0);
    ember_server_stats st;
    ember_server_get_stats(s, &st);
    CHECK_EQ(st.connections, 2);
    CHECK_EQ(st.total_connections, 2);
    ember_conn_close(a);
    ember_server_get_stats(s, &st);
    CHECK_EQ(st.connections, 1);
    CHECK_EQ(st.total_connections, 2);
    /* a named connection */
    ember_conn_options_init(&co);
    char name[16] = "my-conn";
    co.name = name;
    ember_conn *n = conn_up(s, &co);
    memset(name, 0, sizeof name);
    CHECK(n != NULL);
    ember_conn_close(n);
    /* next_msg argument errors */
    ember_sub *cb = NULL, *nocb = NULL;
    CHECK_RC(ember_conn_subscribe(&cb, b, "nh.x", NULL, EMBER_DELIVER_POLL, count_cb, &t, NULL),
             EMBER_OK);
    CHECK_RC(ember_conn_subscribe(&nocb, b, "nh.y", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL),
             EMBER_OK);
    CHECK_RC(ember_sub_next_msg(cb, &m, 0), EMBER_EINVAL); /* has a callback */
    CHECK_RC(ember_sub_next_msg(nocb, NULL, 0), EMBER_EINVAL);
    ember_conn_close(b);
    ember_server_free(s);
}

/* ------------------------------------------------------------------ delivery modes */

static void test_delivery_modes(void)
{
    enum { N = 300 };
    ember_server *s = inproc_server();
    REQUIRE(s);
    ember_conn *c = conn_up(s, NULL), *p = conn_up(s, NULL);
    REQUIRE(c && p);
    track td = {0}, tp = {0}, ti = {0}, tn = {0}, tdn = {0};
    td.thread = tp.thread = ti.thread = pthread_self();
    td.check_thread = -1; /* the dispatcher, not us */
    tp.check_thread = 1;  /* whoever polls: us */
    ti.check_thread = 1;  /* the publisher: us */
    ember_sub *sd = NULL, *sp = NULL, *si = NULL, *sn = NULL, *sdn = NULL;
    CHECK_RC(subscribe(&sd, c, "mode.dispatch", NULL, EMBER_DELIVER_DISPATCH, seq_cb, &td),
             EMBER_OK);
    CHECK_RC(subscribe(&sp, c, "mode.poll", NULL, EMBER_DELIVER_POLL, seq_cb, &tp), EMBER_OK);
    CHECK_RC(subscribe(&si, c, "mode.inline", NULL, EMBER_DELIVER_INLINE, seq_cb, &ti), EMBER_OK);
    CHECK_RC(subscribe(&sn, c, "mode.next", NULL, EMBER_DELIVER_POLL, NULL, &tn), EMBER_OK);
    CHECK_RC(subscribe(&sdn, c, "mode.dnext", NULL, EMBER_DELIVER_DISPATCH, NULL, &tdn), EMBER_OK);
    REQUIRE(sd && sp && si && sn && sdn);
    td.sub = sd, tp.sub = sp, ti.sub = si;
    CHECK(strcmp(ember_sub_subject(sd), "mode.dispatch") == 0);
    CHECK(ember_sub_is_valid(sd) && ember_sub_is_valid(sn));

    /* invalid modes */
    track bad = {0};
    CHECK_RC(subscribe(NULL, c, "mode.x", NULL, EMBER_DELIVER_INLINE, NULL, &bad), EMBER_EINVAL);
    CHECK_RC(subscribe(NULL, c, "mode.x", NULL, (ember_delivery)7, count_cb, &bad), EMBER_EINVAL);
    CHECK_EQ(atomic_load(&bad.frees), 2);
    CHECK_EQ(atomic_load(&bad.msgs), 0);

    for (int i = 0; i < N; i++) {
        char d[32];
        int n = snprintf(d, sizeof d, "m%d", i);
        CHECK_RC(ember_conn_publish(p, "mode.dispatch", NULL, d, (size_t)n), EMBER_OK);
        CHECK_RC(ember_conn_publish(p, "mode.poll", NULL, d, (size_t)n), EMBER_OK);
        CHECK_RC(ember_conn_publish(p, "mode.inline", NULL, d, (size_t)n), EMBER_OK);
        CHECK_EQ(atomic_load(&ti.msgs), i + 1); /* inline: ran during the publish */
        CHECK_RC(ember_conn_publish(p, "mode.next", i == 0 ? "reply.to" : NULL, d, (size_t)n),
                 EMBER_OK);
        CHECK_RC(ember_conn_publish(p, "mode.dnext", NULL, d, (size_t)n), EMBER_OK);
    }
    /* POLL: callbacks only run inside ember_conn_poll, on this thread */
    CHECK_EQ(atomic_load(&tp.msgs), 0);
    int polled = 0;
    uint64_t dl = tu_now_ms() + WAIT_MS;
    while (polled < N && tu_now_ms() < dl) {
        int r = ember_conn_poll(c, 100);
        CHECK(r >= 0);
        if (r < 0)
            break;
        polled += r;
    }
    CHECK_EQ(polled, N);
    CHECK_EQ(atomic_load(&tp.msgs), N);
    CHECK_EQ(ember_conn_poll(c, 0), 0);
    CHECK(WAIT_UNTIL(atomic_load(&td.msgs) == N, WAIT_MS));
    CHECK_EQ(atomic_load(&td.msgs), N);
    /* callback-less: in order, from next_msg */
    ember_sub *nexts[2] = {sn, sdn};
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < N; i++) {
            ember_msg *m = NULL;
            int rc = ember_sub_next_msg(nexts[k], &m, WAIT_MS);
            CHECK_RC(rc, EMBER_OK);
            if (rc)
                break;
            char want[32];
            snprintf(want, sizeof want, "m%d", i);
            CHECK_MSG(data_is(m, want), "sub %d msg %d", k, i);
            CHECK(strcmp(ember_msg_subject(m), k ? "mode.dnext" : "mode.next") == 0);
            if (k == 0 && i == 0)
                CHECK(ember_msg_reply(m) && strcmp(ember_msg_reply(m), "reply.to") == 0);
            else
                CHECK(ember_msg_reply(m) == NULL);
            size_t len;
            const char *d = ember_msg_data(m, &len);
            CHECK(d[len] == 0); /* NUL after the payload */
            CHECK(ember_msg_headers_raw(m, NULL) == NULL);
            ember_msg_release(m);
        }
        ember_msg *m = NULL;
        CHECK_RC(ember_sub_next_msg(nexts[k], &m, 0), EMBER_ETIMEDOUT);
    }
    CHECK_EQ(atomic_load(&td.bad) + atomic_load(&tp.bad) + atomic_load(&ti.bad), 0);
    ember_sub_stats ss;
    ember_sub_get_stats(sd, &ss);
    CHECK_EQ(ss.delivered, N);
    CHECK_EQ(ss.pending_msgs, 0);
    ember_sub_get_stats(sn, &ss);
    CHECK_EQ(ss.delivered, N);
    ember_sub_get_stats(si, &ss);
    CHECK_EQ(ss.delivered, N);
    ember_conn_close(c);
    ember_conn_close(p);
    CHECK(td.frees == 1 && tp.frees == 1 && ti.frees == 1 && tn.frees == 1 && tdn.frees == 1);
    ember_server_free(s);
}

/* ------------------------------------------------------------------ wildcards */

static void test_wildcards(void)
{
    ember_server *s = inproc_server();
    REQUIRE(s);
    ember_conn *c = conn_up(s, NULL);
    REQUIRE(c);
    const char *subs[] = {"wc.*", "wc.*.end", "wc.>", "wc.a.>", "*.a", ">", "wc.a", "*.*.*"};
    const int want[] = {2, 1, 4, 2, 2, 6, 1, 1};
    enum { NS = sizeof subs / sizeof subs[0] };
    ember_sub *sub[NS];
    for (int i = 0; i < NS; i++)
        CHECK_RC(ember_conn_subscribe(&sub[i], c, subs[i], NULL, EMBER_DELIVER_POLL, NULL, NULL,
                                      NULL),
                 EMBER_OK);
    track td = {0};
    CHECK_RC(subscribe(NULL, c, "wc.>", NULL, EMBER_DELIVER_DISPATCH, count_cb, &td), EMBER_OK);
    const char *pubs[] = {"wc.a", "wc.b", "wc.a.end", "wc.a.b.end", "x.a", "wc"};
    for (size_t i = 0; i < sizeof pubs / sizeof pubs[0]; i++)
        CHECK_RC(ember_conn_publish(c, pubs[i], NULL, pubs[i], strlen(pubs[i])), EMBER_OK);
    for (int i = 0; i < NS; i++) {
        int n = 0;
        ember_msg *m;
        while (ember_sub_next_msg(sub[i], &m, 0) == EMBER_OK) {
            CHECK(data_is(m, ember_msg_subject(m)));
            ember_msg_release(m);
            n++;
        }
        CHECK_MSG(n == want[i], "%s got %d, want %d", subs[i], n, want[i]);
    }
    CHECK(WAIT_UNTIL(atomic_load(&td.msgs) == 4, WAIT_MS));
    CHECK(dispatch_barrier(c, NULL));
    CHECK_EQ(atomic_load(&td.msgs), 4);
    ember_conn_close(c);
    CHECK_EQ(atomic_load(&td.frees), 1);
    ember_server_free(s);
}

/* ------------------------------------------------------------------ queue groups */

typedef struct qmember {
    track t;
    atomic_int *seen;
    int nseen;
} qmember;

static void qmember_cb(void *ud, ember_sub *sub, ember_msg *m)
{
    qmember *q = ud;
    (void)sub;
    int i = atoi(ember_msg_data(m, NULL));
    if (i >= 0 && i < q->nseen)
        atomic_fetch_add(&q->seen[i], 1);
    else
        atomic_fetch_add(&q->t.bad, 1);
    atomic_fetch_add(&q->t.msgs, 1);
}

static void qmember_free(void *ud) { atomic_fetch_add(&((qmember *)ud)->t.frees, 1); }

static void test_queue_groups(void)
{
    enum { N = 3000, M = 1000 };
    ember_server *s = inproc_server();
    REQUIRE(s);
    ember_conn *a = conn_up(s, NULL), *b = conn_up(s, NULL), *c = conn_up(s, NULL),
               *p = conn_up(s, NULL);
    REQUIRE(a && b && c && p);
    static atomic_int seen[N], seen_mix[M];
    for (int i = 0; i < N; i++)
        atomic_store(&seen[i], 0);
    for (int i = 0; i < M; i++)
        atomic_store(&seen_mix[i], 0);
    /* "workers": three DISPATCH members on two connections */
    qmember w[3];
    memset(w, 0, sizeof w);
    ember_conn *wc[3] = {a, a, b};
    for (int i = 0; i < 3; i++) {
        w[i].seen = seen;
        w[i].nseen = N;
        CHECK_RC(ember_conn_subscribe(NULL, wc[i], "qg.job", "workers", EMBER_DELIVER_DISPATCH,
                                      qmember_cb, &w[i], qmember_free),
                 EMBER_OK);
    }
    /* a plain subscriber and a one-member group see everything */
    ember_sub *plain = NULL;
    CHECK_RC(ember_conn_subscribe(&plain, c, "qg.job", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL),
             EMBER_OK);
    track audit = {0};
    CHECK_RC(subscribe(NULL, c, "qg.job", "audit", EMBER_DELIVER_INLINE, count_cb, &audit), EMBER_OK);
    /* "mixed": one member per delivery kind */
    qmember x[4];
    memset(x, 0, sizeof x);
    for (int i = 0; i < 4; i++)
        x[i].seen = seen_mix, x[i].nseen = M;
    ember_sub *xnext = NULL;
    CHECK_RC(ember_conn_subscribe(NULL, c, "qg.mix", "mixed", EMBER_DELIVER_INLINE, qmember_cb,
                                  &x[0], qmember_free),
             EMBER_OK);
    CHECK_RC(ember_conn_subscribe(NULL, c, "qg.mix", "mixed", EMBER_DELIVER_DISPATCH, qmember_cb,
                                  &x[1], qmember_free),
             EMBER_OK);
    CHECK_RC(ember_conn_subscribe(NULL, c, "qg.mix", "mixed", EMBER_DELIVER_POLL, qmember_cb,
                                  &x[2], qmember_free),
             EMBER_OK);
    CHECK_RC(ember_conn_subscribe(&xnext, c, "qg.mix", "mixed", EMBER_DELIVER_POLL, NULL, &x[3],
                                  qmember_free),
             EMBER_OK);

    for (int i = 0; i < N; i++) {
        char d[16];
        int n = snprintf(d, sizeof d, "%d", i);
        CHECK_RC(ember_conn_publish(p, "qg.job", NULL, d, (size_t)n), EMBER_OK);
    }
    for (int i = 0; i < M; i++) {
        char d[16];
        int n = snprintf(d, sizeof d, "%d", i);
        CHECK_RC(ember_conn_publish(p, "qg.mix", NULL, d, (size_t)n), EMBER_OK);
    }
    CHECK(WAIT_UNTIL(atomic_load(&w[0].t.msgs) + atomic_load(&w[1].t.msgs) +
                             atomic_load(&w[2].t.msgs) ==
                         N,
                     WAIT_MS));
    CHECK(dispatch_barrier(a, p));
    CHECK(dispatch_barrier(b, p));
    int total = 0;
    for (int i = 0; i < 3; i++) {
        CHECK_MSG(atomic_load(&w[i].t.msgs) > 0, "member %d got nothing", i);
        CHECK_EQ(atomic_load(&w[i].t.bad), 0);
        total += atomic_load(&w[i].t.msgs);
    }
    CHECK_EQ(total, N);
    int once = 0;
    for (int i = 0; i < N; i++)
        once += atomic_load(&seen[i]) == 1;
    CHECK_EQ(once, N);
    CHECK_EQ(drain_now(plain), N);
    CHECK_EQ(atomic_load(&audit.msgs), N);

    /* mixed: poll and read the rest */
    int polled = 0;
    while (ember_conn_poll(c, 0) > 0)
        polled++;
    ember_msg *m;
    while (ember_sub_next_msg(xnext, &m, 0) == EMBER_OK) {
        qmember_cb(&x[3], xnext, m);
        ember_msg_release(m);
    }
    CHECK(dispatch_barrier(c, p));
    int mtotal = 0;
    for (int i = 0; i < 4; i++) {
        CHECK_MSG(atomic_load(&x[i].t.msgs) > 0, "mixed member %d got nothing", i);
        mtotal += atomic_load(&x[i].t.msgs);
    }
    CHECK_EQ(mtotal, M);
    once = 0;
    for (int i = 0; i < M; i++)
        once += atomic_load(&seen_mix[i]) == 1;
    CHECK_EQ(once, M);

    ember_conn_close(a);
    ember_conn_close(b);
    ember_conn_close(c);
    ember_conn_close(p);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(atomic_load(&w[i].t.frees), 1);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(atomic_load(&x[i].t.frees), 1);
    CHECK_EQ(atomic_load(&audit.frees), 1);
    ember_server_free(s);
}

/* ------------------------------------------------------------------ request / reply */

/* reply "re:<request data>" */
static void responder_cb(void *ud, ember_sub *sub, ember_msg *m)
{
    track *t = ud;
    (void)sub;
    size_t len;
    const char *d = ember_msg_data(m, &len);
    char buf[256];
    int n = snprintf(buf, sizeof buf, "re:%.*s", (int)len, d);
    const char *h = ember_msg_header_get(m, "X-Req");
    if (h)
        n = snprintf(buf, sizeof buf, "hdr:%s", h);
    if (ember_msg_respond(t->conn, m, buf, (size_t)n) != 0)
        atomic_fetch_add(&t->bad, 1);
    atomic_fetch_add(&t->msgs, 1);
}

/* answers twice: the requester takes the first */
static void twice_cb(void *ud, ember_sub *sub, ember_msg *m)
{
    track *t = ud;
    (void)sub;
    ember_msg_respond(t->conn, m, "first", 5);
    ember_msg_respond(t->conn, m, "second", 6);
    atomic_fetch_add(&t->msgs, 1);
}

typedef struct responder_thread_ctx {
    ember_conn *conn;
    ember_sub *sub; /* NULL: ember_conn_poll; else ember_sub_next_msg */
    atomic_int stop;
    track *t;
} responder_thread_ctx;

static void *responder_thread(void *arg)
{
    responder_thread_ctx *x = arg;
    uint64_t dl = tu_now_ms() + 4 * WAIT_MS;
    while (!atomic_load(&x->stop) && tu_now_ms() < dl) {
        if (!x->sub) {
            if (ember_conn_poll(x->conn, 20) < 0)
                break;
            continue;
        }
        ember_msg *m = NULL;
        int rc = ember_sub_next_msg(x->sub, &m, 20);
        if (rc == EMBER_ECLOSED)
            break;
        if (rc == 0) {
            responder_cb(x->t, x->sub, m);
            ember_msg_release(m);
        }
    }
    return NULL;
}

typedef struct req_thread_ctx {
    ember_conn *conn;
    int id, n;
    atomic_int ok;
} req_thread_ctx;

static void *request_thread(void *arg)
{
    req_thread_ctx *x = arg;
    const char *subjects[4] = {"rr.dispatch", "rr.inline", "rr.poll", "rr.next"};
    for (int i = 0; i < x->n; i++) {
        char d[64], want[80];
        int n = snprintf(d, sizeof d, "t%d-%d", x->id, i);
        snprintf(want, sizeof want, "re:%s", d);
        ember_msg *r = NULL;
        int rc = ember_conn_request(x->conn, subjects[(x->id + i) % 4], d, (size_t)n, WAIT_MS, &r);
        if (rc == 0 && r && data_is(r, want))
            atomic_fetch_add(&x->ok, 1);
        else
            fprintf(stderr, "request %s: rc %d (%s)\n", d, rc, ember_last_error());
        ember_msg_release(r);
    }
    return NULL;
}

static void test_request_reply(void)
{
    ember_server *s = inproc_server();
    REQUIRE(s);
    ember_conn *q = conn_up(s, NULL), *r1 = conn_up(s, NULL), *r2 = conn_up(s, NULL),
               *r3 = conn_up(s, NULL), *silent = conn_up(s, NULL);
    REQUIRE(q && r1 && r2 && r3 && silent);
    track td = {0}, ti = {0}, tp = {0}, tn = {0}, tt = {0};
    td.conn = ti.conn = tt.conn = r1;
    tp.conn = r2;
    tn.conn = r3;
    CHECK_RC(subscribe(NULL, r1, "rr.dispatch", NULL, EMBER_DELIVER_DISPATCH, responder_cb, &td),
             EMBER_OK);
    CHECK_RC(subscribe(NULL, r1, "rr.inline", NULL, EMBER_DELIVER_INLINE, responder_cb, &ti),
             EMBER_OK);
    CHECK_RC(subscribe(NULL, r1, "rr.twice", NULL, EMBER_DELIVER_INLINE, twice_cb, &tt), EMBER_OK);
    CHECK_RC(subscribe(NULL, r2, "rr.poll", NULL, EMBER_DELIVER_POLL, responder_cb, &tp), EMBER_OK);
    ember_sub *nsub = NULL;
    CHECK_RC(subscribe(&nsub, r3, "rr.next", NULL, EMBER_DELIVER_POLL, NULL, &tn), EMBER_OK);
    responder_thread_ctx rp = {.conn = r2, .t = &tp}, rn = {.conn = r3, .sub = nsub, .t = &tn};
    pthread_t thp = spawn(responder_thread, &rp), thn = spawn(responder_thread, &rn);

    const char *subjects[4] = {"rr.dispatch", "rr.inline", "rr.poll", "rr.next"};
    for (int k = 0; k < 4; k++) {
        for (int i = 0; i < 20; i++) {
            char d[32], want[40];
            int n = snprintf(d, sizeof d, "%s-%d", subjects[k], i);
            snprintf(want, sizeof want, "re:%s", d);
            ember_msg *r = NULL;
            CHECK_RC(ember_conn_request(q, subjects[k], d, (size_t)n, WAIT_MS, &r), EMBER_OK);
            CHECK_MSG(r && data_is(r, want), "%s: %s", subjects[k],
                      r ? (const char *)ember_msg_data(r, NULL) : "(null)");
            CHECK(r && strncmp(ember_msg_subject(r), "_INBOX.", 7) == 0);
            ember_msg_release(r);
        }
    }
    /* request_msg with a header the responder reads */
    ember_msg *req = NULL;
    CHECK_RC(ember_msg_new(&req, "rr.inline", NULL, "x", 1), EMBER_OK);
    CHECK_RC(ember_msg_header_set(req, "X-Req", "42"), EMBER_OK);
    ember_msg *r = NULL;
    CHECK_RC(ember_conn_request_msg(q, req, WAIT_MS, &r), EMBER_OK);
    CHECK(r && data_is(r, "hdr:42"));
    ember_msg_release(r);
    r = NULL;
    CHECK_RC(ember_conn_request_msg(q, req, WAIT_MS, &r), EMBER_OK); /* reusable */
    CHECK(r && data_is(r, "hdr:42"));
    ember_msg_release(r);
    ember_msg_release(req);
    /* two answers: the first wins, the late one is dropped */
    r = NULL;
    CHECK_RC(ember_conn_request(q, "rr.twice", "", 0, WAIT_MS, &r), EMBER_OK);
    CHECK(r && data_is(r, "first"));
    ember_msg_release(r);

    /* concurrent requests on one connection, every mode */
    req_thread_ctx rt[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        rt[i] = (req_thread_ctx){.conn = q, .id = i, .n = 200};
        th[i] = spawn(request_thread, &rt[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(atomic_load(&rt[i].ok), rt[i].n);
    }

    /* no responders */
    r = (ember_msg *)(uintptr_t)1;
    CHECK_RC(ember_conn_request(q, "rr.nobody", "x", 1, WAIT_MS, &r), EMBER_ENORESPONDERS);
    CHECK(r == NULL);
    CHECK(strstr(ember_last_error(), "no responders") != NULL);
    CHECK_RC(ember_msg_new(&req, "rr.nobody", NULL, NULL, 0), EMBER_OK);
    CHECK_RC(ember_conn_request_msg(q, req, WAIT_MS, &r), EMBER_ENORESPONDERS);
    ember_msg_release(req);
    /* timeout: a subscriber that never answers, in a callback or not */
    ember_sub *ssub = NULL;
    CHECK_RC(ember_conn_subscribe(&ssub, silent, "rr.silent", NULL, EMBER_DELIVER_POLL, NULL, NULL,
                                  NULL),
             EMBER_OK);
    track tnone = {0};
    CHECK_RC(subscribe(NULL, silent, "rr.silent2", NULL, EMBER_DELIVER_DISPATCH, count_cb, &tnone),
             EMBER_OK);
    r = (ember_msg *)(uintptr_t)1;
    CHECK_RC(ember_conn_request(q, "rr.silent", "x", 1, 50, &r), EMBER_ETIMEDOUT);
    CHECK(r == NULL);
    CHECK_RC(ember_conn_request(q, "rr.silent2", "x", 1, 50, &r), EMBER_ETIMEDOUT);
    CHECK_RC(ember_conn_request(q, "rr.silent", "x", 1, 0, &r), EMBER_ETIMEDOUT);
    CHECK(WAIT_UNTIL(atomic_load(&tnone.msgs) == 1, WAIT_MS));
    /* a late answer to a timed-out request is dropped, the next request works */
    ember_msg *late = NULL;
    CHECK_RC(ember_sub_next_msg(ssub, &late, WAIT_MS), EMBER_OK);
    CHECK(late && ember_msg_reply(late) != NULL);
    CHECK_RC(ember_msg_respond(silent, late, "late", 4), EMBER_OK);
    ember_msg_release(late);
    r = NULL;
    CHECK_RC(ember_conn_request(q, "rr.inline", "ok", 2, WAIT_MS, &r), EMBER_OK);
    CHECK(r && data_is(r, "re:ok"));
    ember_msg_release(r);

    /* argument errors */
    CHECK_RC(ember_conn_request(q, "rr.inline", "x", 1, 10, NULL), EMBER_EINVAL);
    CHECK_RC(ember_conn_request(q, "rr.*", "x", 1, 10, &r), EMBER_EINVAL);
    CHECK_RC(ember_conn_request(q, NULL, "x", 1, 10, &r), EMBER_EINVAL);
    CHECK_RC(ember_conn_request(q, "rr.inline", NULL, 1, 10, &r), EMBER_EINVAL);
    CHECK_RC(ember_conn_request_msg(q, NULL, 10, &r), EMBER_EINVAL);
    CHECK_RC(ember_conn_request_msg(q, NULL, 10, NULL), EMBER_EINVAL);
    /* respond to a message without a reply subject */
    ember_sub *plain = NULL;
    CHECK_RC(ember_conn_subscribe(&plain, q, "rr.plain", NULL, EMBER_DELIVER_POLL, NULL, NULL,
                                  NULL),
             EMBER_OK);
    CHECK_RC(ember_conn_publish(q, "rr.plain", NULL, "x", 1), EMBER_OK);
    ember_msg *pm = NULL;
    CHECK_RC(ember_sub_next_msg(plain, &pm, 0), EMBER_OK);
    CHECK_RC(ember_msg_respond(q, pm, "x", 1), EMBER_EINVAL);
    ember_msg_release(pm);

    atomic_store(&rp.stop, 1);
    atomic_store(&rn.stop, 1);
    pthread_join(thp, NULL);
    pthread_join(thn, NULL);
    CHECK_EQ(td.bad + ti.bad + tp.bad + tn.bad, 0);
    ember_conn_close(q);
    ember_conn_close(r1);
    ember_conn_close(r2);
    ember_conn_close(r3);
    ember_conn_close(silent);
    CHECK(td.frees == 1 && ti.frees == 1 && tp.frees == 1 && tn.frees == 1 && tt.frees == 1 &&
          tnone.frees == 1);
    ember_server_free(s);
}

/* ------------------------------------------------------------------ 503 status */

/* As nats-server: a publish with a reply subject that reached no subscriber gets a 503
 * status message on the publisher's own subscription to that reply subject. */
static void test_no_responders_status(void)
{
    ember_server *s = inproc_server();
    REQUIRE(s);
    ember_conn *c = conn_up(s, NULL), *o = conn_up(s, NULL);
    REQUIRE(c && o);
    ember_sub *inbox = NULL, *theirs = NULL;
    CHECK_RC(ember_conn_subscribe(&inbox, c, "me.inbox.*", NULL, EMBER_DELIVER_POLL, NULL, NULL,
                                  NULL),
             EMBER_OK);
    CHECK_RC(ember_conn_subscribe(&theirs, o, "me.inbox.*", NULL, EMBER_DELIVER_POLL, NULL, NULL,
                                  NULL),
             EMBER_OK);
    CHECK_RC(ember_conn_publish(c, "nobody.here", "me.inbox.1", "q", 1), EMBER_OK);
    ember_msg *m = NULL;
    CHECK_RC(ember_sub_next_msg(inbox, &m, 0), EMBER_OK);
    if (m) {
        CHECK_EQ(ember_msg_status(m), 503);
        CHECK(strcmp(ember_msg_subject(m), "me.inbox.1") == 0);
        const char *ns = ember_msg_header_get(m, "Nats-Subject");
        CHECK_MSG(ns && strcmp(ns, "nobody.here") == 0, "Nats-Subject %s", ns ? ns : "(none)");
        size_t len = 9;
        ember_msg_data(m, &len);
        CHECK_EQ(len, 0);
        size_t rl = 0;
        const char *raw = ember_msg_headers_raw(m, &rl);
        CHECK(raw && rl > 12 && memcmp(raw, "NATS/1.0 503", 12) == 0);
        CHECK_RC(ember_msg_header_add(m, "X", "y"), EMBER_ESTATE);
        ember_msg_release(m);
    }
    CHECK_EQ(drain_now(theirs), 0); /* only the publisher's own subscription */
    CHECK_EQ(drain_now(inbox), 0);
    /* a reply that reached somebody, or no reply at all: no status */
    ember_sub *resp = NULL;
    CHECK_RC(ember_conn_subscribe(&resp, o, "somebody.here", NULL, EMBER_DELIVER_POLL, NULL, NULL,
                                  NULL),
             EMBER_OK);
    CHECK_RC(ember_conn_publish(c, "somebody.here", "me.inbox.2", "q", 1), EMBER_OK);
    CHECK_RC(ember_conn_publish(c, "nobody.here", NULL, "q", 1), EMBER_OK);
    CHECK_EQ(drain_now(inbox), 0);
    CHECK_EQ(drain_now(resp), 1);
    ember_conn_close(c);
    ember_conn_close(o);
    ember_server_free(s);
}

/* ------------------------------------------------------------------ headers */

static void test_headers(void)
{
    ember_msg *m = (ember_msg *)(uintptr_t)1;
    CHECK_RC(ember_msg_new(NULL, "a", NULL, NULL, 0), EMBER_EINVAL);
    CHECK_RC(ember_msg_new(&m, "", NULL, NULL, 0), EMBER_EINVAL);
    CHECK(m == NULL);
    CHECK_RC(ember_msg_new(&m, NULL, NULL, NULL, 0), EMBER_EINVAL);
    CHECK_RC(ember_msg_new(&m, "a", NULL, NULL, 3), EMBER_EINVAL);
    CHECK_RC(ember_msg_new(&m, "a", NULL, NULL, 0), EMBER_OK);
    size_t len = 9;
    CHECK(m && ember_msg_data(m, &len) != NULL && len == 0);
    ember_msg_release(m);

    char body[8] = "body";
    CHECK_RC(ember_msg_new(&m, "hdr.test", "hdr.reply", body, 4), EMBER_OK);
    REQUIRE(m);
    memset(body, 'z', 4); /* copied */
    CHECK(data_is(m, "body"));
    CHECK(strcmp(ember_msg_subject(m), "hdr.test") == 0);
    CHECK(strcmp(ember_msg_reply(m), "hdr.reply") == 0);
    /* no headers yet */
    CHECK(ember_msg_header_get(m, "X-A") == NULL);
    CHECK(ember_msg_headers_raw(m, &len) == NULL && len == 0);
    CHECK_EQ(ember_msg_status(m), 0);
    CHECK(!ember_msg_header_at(m, 0, NULL, NULL));
    CHECK_EQ(ember_msg_header_values(m, "X-A", NULL, 0), 0);
    CHECK_RC(ember_msg_header_delete(m, "X-A"), EMBER_OK);

    /* add twice: two values, in order */
    CHECK_RC(ember_msg_header_add(m, "X-A", "1"), EMBER_OK);
    CHECK_RC(ember_msg_header_add(m, "X-A", "2"), EMBER_OK);
    const char *vals[4] = {0};
    CHECK_EQ(ember_msg_header_values(m, "X-A", vals, 4), 2);
    CHECK(vals[0] && strcmp(vals[0], "1") == 0 && vals[1] && strcmp(vals[1], "2") == 0);
    CHECK_EQ(ember_msg_header_values(m, "X-A", vals, 1), 2); /* total, fills 1 */
    CHECK_EQ(ember_msg_header_values(m, "X-A", NULL, 0), 2);
    CHECK(strcmp(ember_msg_header_get(m, "X-A"), "1") == 0);
    CHECK(ember_msg_header_get(m, "x-a") == NULL); /* case-sensitive */
    /* set replaces every value of the key */
    CHECK_RC(ember_msg_header_set(m, "X-B", "b"), EMBER_OK);
    CHECK_RC(ember_msg_header_set(m, "X-A", "3"), EMBER_OK);
    CHECK_EQ(ember_msg_header_values(m, "X-A", vals, 4), 1);
    CHECK(strcmp(vals[0], "3") == 0);
    CHECK(strcmp(ember_msg_header_get(m, "X-B"), "b") == 0);
    CHECK_RC(ember_msg_header_add(m, "Empty", ""), EMBER_OK);
    CHECK(ember_msg_header_get(m, "Empty") && ember_msg_header_get(m, "Empty")[0] == 0);
    CHECK_RC(ember_msg_header_add(m, "x-a", "lower"), EMBER_OK); /* keys keep their case */
    /* iterate */
    int n = 0, sa = 0, sb = 0, se = 0, sl = 0;
    const char *k, *v;
    while (ember_msg_header_at(m, n, &k, &v)) {
        sa += strcmp(k, "X-A") == 0 && strcmp(v, "3") == 0;
        sb += strcmp(k, "X-B") == 0 && strcmp(v, "b") == 0;
        se += strcmp(k, "Empty") == 0 && v[0] == 0;
        sl += strcmp(k, "x-a") == 0 && strcmp(v, "lower") == 0;
        n++;
    }
    CHECK_EQ(n, 4);
    CHECK(sa == 1 && sb == 1 && se == 1 && sl == 1);
    CHECK(!ember_msg_header_at(m, -1, &k, &v));
    CHECK(ember_msg_header_at(m, 0, NULL, NULL));
    /* delete */
    CHECK_RC(ember_msg_header_delete(m, "X-B"), EMBER_OK);
    CHECK(ember_msg_header_get(m, "X-B") == NULL);
    CHECK_RC(ember_msg_header_delete(m, "Empty"), EMBER_OK);
    CHECK_RC(ember_msg_header_delete(m, "x-a"), EMBER_OK);
    CHECK_RC(ember_msg_header_delete(m, "nope"), EMBER_OK);
    CHECK(strcmp(ember_msg_header_get(m, "X-A"), "3") == 0);
    CHECK_EQ(ember_msg_status(m), 0);
    const char *raw = ember_msg_headers_raw(m, &len);
    CHECK(raw && len >= 14 && memcmp(raw, "NATS/1.0\r\n", 10) == 0 &&
          memcmp(raw + len - 4, "\r\n\r\n", 4) == 0);
    CHECK(raw && strstr(raw, "X-A: 3\r\n") != NULL);
    /* invalid keys and values */
    CHECK_RC(ember_msg_header_add(m, "bad key", "v"), EMBER_EINVAL);
    CHECK_RC(ember_msg_header_add(m, "a:b", "v"), EMBER_EINVAL);
    CHECK_RC(ember_msg_header_add(m, "", "v"), EMBER_EINVAL);
    CHECK_RC(ember_msg_header_add(m, NULL, "v"), EMBER_EINVAL);
    CHECK_RC(ember_msg_header_add(m, "k", "a\r\nInjected: 1"), EMBER_EINVAL);
    CHECK_RC(ember_msg_header_add(m, "k", NULL), EMBER_EINVAL);
    CHECK_RC(ember_msg_header_set(m, "k\n", "v"), EMBER_EINVAL);
    CHECK_RC(ember_msg_header_delete(m, NULL), EMBER_EINVAL);
    CHECK(ember_msg_header_get(m, "Injected") == NULL);

    /* published: subscribers see the headers; the message is frozen */
    ember_server *s = inproc_server();
    REQUIRE(s);
    ember_conn *c = conn_up(s, NULL);
    REQUIRE(c);
    ember_sub *sub = NULL;
    track td = {0};
    CHECK_RC(ember_conn_subscribe(&sub, c, "hdr.>", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL),
             EMBER_OK);
    CHECK_RC(subscribe(NULL, c, "hdr.test", NULL, EMBER_DELIVER_DISPATCH, count_cb, &td), EMBER_OK);
    CHECK_RC(ember_conn_publish_msg(c, m), EMBER_OK);
    CHECK_RC(ember_msg_header_add(m, "Late", "x"), EMBER_ESTATE);
    CHECK_RC(ember_msg_header_set(m, "X-A", "x"), EMBER_ESTATE);
    CHECK_RC(ember_msg_header_delete(m, "X-A"), EMBER_ESTATE);
    CHECK_RC(ember_conn_publish_msg(c, m), EMBER_OK); /* may be published again */
    CHECK_RC(ember_conn_publish_msg(c, NULL), EMBER_EINVAL);
    for (int i = 0; i < 2; i++) {
        ember_msg *g = NULL;
        CHECK_RC(ember_sub_next_msg(sub, &g, WAIT_MS), EMBER_OK);
        REQUIRE(g);
        CHECK(strcmp(ember_msg_subject(g), "hdr.test") == 0);
        CHECK(ember_msg_reply(g) && strcmp(ember_msg_reply(g), "hdr.reply") == 0);
        CHECK(data_is(g, "body"));
        CHECK(ember_msg_header_get(g, "X-A") && strcmp(ember_msg_header_get(g, "X-A"), "3") == 0);
        CHECK_EQ(ember_msg_header_values(g, "X-A", NULL, 0), 1);
        CHECK(ember_msg_header_get(g, "X-B") == NULL);
        CHECK_EQ(ember_msg_status(g), 0);
        size_t rl = 0;
        CHECK(ember_msg_headers_raw(g, &rl) != NULL && rl > 0);
        /* a delivered message is frozen */
        CHECK_RC(ember_msg_header_add(g, "More", "x"), EMBER_ESTATE);
        CHECK_RC(ember_msg_header_set(g, "X-A", "x"), EMBER_ESTATE);
        CHECK_RC(ember_msg_header_delete(g, "X-A"), EMBER_ESTATE);
        CHECK(ember_msg_retain(g) == g);
        ember_msg_release(g);
        ember_msg_release(g);
    }
    /* a plain publish has no headers */
    CHECK_RC(ember_conn_publish(c, "hdr.plain", NULL, "p", 1), EMBER_OK);
    ember_msg *g = NULL;
    CHECK_RC(ember_sub_next_msg(sub, &g, WAIT_MS), EMBER_OK);
    CHECK(g && ember_msg_headers_raw(g, NULL) == NULL && !ember_msg_header_at(g, 0, &k, &v));
    CHECK_RC(ember_msg_header_add(g, "X", "y"), EMBER_ESTATE);
    ember_msg_release(g);
    /* an invalid subject in a built message */
    ember_msg *bad = NULL;
    CHECK_RC(ember_msg_new(&bad, "hdr.*", NULL, "x", 1), EMBER_OK);
    CHECK_RC(ember_conn_publish_msg(c, bad), EMBER_EINVAL);
    ember_msg_release(bad);
    CHECK(WAIT_UNTIL(atomic_load(&td.msgs) == 2, WAIT_MS));
    ember_msg_release(m);
    ember_conn_close(c);
    CHECK_EQ(atomic_load(&td.frees), 1);
    ember_server_free(s);
}

/* ------------------------------------------------------------------ invalid subjects */

static void test_invalid_subjects(void)
{
    ember_server *s = inproc_server();
    REQUIRE(s);
    ember_conn *c = conn_up(s, NULL);
    REQUIRE(c);
    ember_sub *all = NULL;
    CHECK_RC(ember_conn_subscribe(&all, c, ">", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL),
             EMBER_OK);
    const char *bad_pub[] = {"foo.*", "foo.>", "", "a..b", ".a", "a.", "a b", "*", ">", "a\tb"};
    for (size_t i = 0; i < sizeof bad_pub / sizeof bad_pub[0]; i++) {
        int rc = ember_conn_publish(c, bad_pub[i], NULL, "x", 1);
        CHECK_MSG(rc == EMBER_EINVAL, "publish \"%s\": %d", bad_pub[i], rc);
    }
    CHECK_RC(ember_conn_publish(c, NULL, NULL, "x", 1), EMBER_EINVAL);
    CHECK_RC(ember_conn_publish(c, "ok", "r.*", "x", 1), EMBER_EINVAL);   /* reply */
    CHECK_RC(ember_conn_publish(c, "ok", "r..x", "x", 1), EMBER_EINVAL);
    CHECK_RC(ember_conn_publish(c, "ok", NULL, NULL, 1), EMBER_EINVAL);   /* data */
    CHECK_EQ(drain_now(all), 0); /* nothing of it was routed */
    CHECK_RC(ember_conn_publish(c, "ok", NULL, NULL, 0), EMBER_OK);
    CHECK_EQ(drain_now(all), 1);

    const char *bad_sub[] = {"foo.>.bar", "", "a..b", ">.a", "a b", ".a", "a.", "a.\tb"};
    for (size_t i = 0; i < sizeof bad_sub / sizeof bad_sub[0]; i++) {
        track t = {0};
        ember_sub *sub = (ember_sub *)(uintptr_t)1;
        int rc = subscribe(&sub, c, bad_sub[i], NULL, EMBER_DELIVER_DISPATCH, count_cb, &t);
        CHECK_MSG(rc == EMBER_EINVAL, "subscribe \"%s\": %d", bad_sub[i], rc);
        CHECK(sub == NULL);
        CHECK_EQ(atomic_load(&t.frees), 1);
    }
    track t = {0};
    CHECK_RC(subscribe(NULL, c, NULL, NULL, EMBER_DELIVER_POLL, NULL, &t), EMBER_EINVAL);
    CHECK_RC(subscribe(NULL, c, "ok", "bad queue", EMBER_DELIVER_POLL, NULL, &t), EMBER_EINVAL);
    CHECK_EQ(atomic_load(&t.frees), 2);
    ember_server_stats st;
    ember_server_get_stats(s, &st);
    CHECK_EQ(st.subscriptions, 1);
    ember_conn_close(c);
    ember_server_free(s);
}

/* ------------------------------------------------------------------ max payload, limits */

static void test_max_payload(void)
{
    ember_server_options o;
    opts_inproc(&o);
    o.max_payload = 1024;
    ember_server *s = server_up(&o);
    REQUIRE(s);
    ember_conn *c = conn_up(s, NULL);
    REQUIRE(c);
    ember_sub *sub = NULL;
    CHECK_RC(ember_conn_subscribe(&sub, c, "mp.>", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL),
             EMBER_OK);
    static char buf[2048];
    memset(buf, 'p', sizeof buf);
    CHECK_RC(ember_conn_publish(c, "mp.x", NULL, buf, 1024), EMBER_OK);
    CHECK_RC(ember_conn_publish(c, "mp.x", NULL, buf, 1025), EMBER_EMAXPAYLOAD);
    CHECK(strstr(ember_last_error(), "payload") != NULL);
    ember_msg *r = NULL;
    CHECK_RC(ember_conn_request(c, "mp.x", buf, 2000, 10, &r), EMBER_EMAXPAYLOAD);
    /* headers count */
    ember_msg *m = NULL;
    CHECK_RC(ember_msg_new(&m, "mp.h", NULL, buf, 1000), EMBER_OK);
    CHECK_RC(ember_msg_header_add(m, "X-Pad", "0123456789012345678901234567890123456789"),
             EMBER_OK);
    CHECK_RC(ember_conn_publish_msg(c, m), EMBER_EMAXPAYLOAD);
    ember_msg_release(m);
    CHECK_EQ(drain_now(sub), 1);
    ember_conn_stats cs;
    ember_conn_get_stats(c, &cs);
    CHECK_EQ(cs.out_msgs, 1);
    ember_conn_close(c);
    ember_server_free(s);

    /* max_subscriptions: ELIMIT, userdata freed, room again after unsubscribe */
    opts_inproc(&o);
    o.max_subscriptions = 2;
    s = server_up(&o);
    REQUIRE(s);
    c = conn_up(s, NULL);
    REQUIRE(c);
    track t[3];
    memset(t, 0, sizeof t);
    ember_sub *s1 = NULL, *s3 = (ember_sub *)(uintptr_t)1;
    CHECK_RC(subscribe(&s1, c, "ms.1", NULL, EMBER_DELIVER_DISPATCH, count_cb, &t[0]), EMBER_OK);
    CHECK_RC(subscribe(NULL, c, "ms.2", NULL, EMBER_DELIVER_POLL, count_cb, &t[1]), EMBER_OK);
    CHECK_RC(subscribe(&s3, c, "ms.3", NULL, EMBER_DELIVER_INLINE, count_cb, &t[2]), EMBER_ELIMIT);
    CHECK(s3 == NULL);
    CHECK_EQ(atomic_load(&t[2].frees), 1);
    /* requests still work: the reply subscription is internal */
    ember_msg *rr = NULL;
    CHECK_RC(ember_conn_request(c, "ms.none", "x", 1, 10, &rr), EMBER_ENORESPONDERS);
    CHECK_RC(ember_sub_unsubscribe(s1), EMBER_OK);
    track t4 = {0};
    CHECK_RC(subscribe(NULL, c, "ms.4", NULL, EMBER_DELIVER_INLINE, count_cb, &t4), EMBER_OK);
    ember_conn_close(c);
    CHECK(t[0].frees == 1 && t[1].frees == 1 && t[2].frees == 1 && t4.frees == 1);
    ember_server_free(s);
}

/* ------------------------------------------------------------------ (auto) unsubscribe */

static void test_unsubscribe(void)
{
    ember_server *s = inproc_server();
    REQUIRE(s);
    ember_conn *c = conn_up(s, NULL);
    REQUIRE(c);

    /* auto-unsubscribe, one per kind of delivery */
    ember_sub *an = NULL, *ad = NULL, *ai = NULL, *ap = NULL;
    track td = {0}, ti = {0}, tp = {0}, tn = {0};
    CHECK_RC(subscribe(&an, c, "au.x", NULL, EMBER_DELIVER_POLL, NULL, &tn), EMBER_OK);
    CHECK_RC(subscribe(&ad, c, "au.x", NULL, EMBER_DELIVER_DISPATCH, count_cb, &td), EMBER_OK);
    CHECK_RC(subscribe(&ai, c, "au.x", NULL, EMBER_DELIVER_INLINE, count_cb, &ti), EMBER_OK);
    CHECK_RC(subscribe(&ap, c, "au.x", NULL, EMBER_DELIVER_POLL, count_cb, &tp), EMBER_OK);
    CHECK_RC(ember_sub_auto_unsubscribe(an, 5), EMBER_OK);
    CHECK_RC(ember_sub_auto_unsubscribe(ad, 3), EMBER_OK);
    CHECK_RC(ember_sub_auto_unsubscribe(ai, 2), EMBER_OK);
    CHECK_RC(ember_sub_auto_unsubscribe(ap, 4), EMBER_OK);
    CHECK_RC(ember_sub_auto_unsubscribe(ap, 0), EMBER_EINVAL);
    CHECK_RC(ember_sub_auto_unsubscribe(ap, -1), EMBER_EINVAL);
    for (int i = 0; i < 10; i++)
        CHECK_RC(ember_conn_publish(c, "au.x", NULL, "x", 1), EMBER_OK);
    CHECK_EQ(atomic_load(&ti.msgs), 2);
    int polled = 0;
    while (polled < 4) {
        int r = ember_conn_poll(c, WAIT_MS);
        if (r <= 0)
            break;
        polled += r;
    }
    CHECK_EQ(polled, 4);
    CHECK_EQ(ember_conn_poll(c, 0), 0);
    CHECK_EQ(atomic_load(&tp.msgs), 4);
    CHECK(WAIT_UNTIL(atomic_load(&td.msgs) == 3, WAIT_MS));
    CHECK(dispatch_barrier(c, NULL));
    CHECK_EQ(atomic_load(&td.msgs), 3);
    int got = 0;
    ember_msg *m = NULL;
    int rc;
    while ((rc = ember_sub_next_msg(an, &m, 100)) == EMBER_OK) {
        ember_msg_release(m);
        got++;
    }
    CHECK_EQ(got, 5);
    CHECK_RC(rc, EMBER_ECLOSED); /* unsubscribed and empty */
    CHECK_RC(ember_sub_next_msg(an, &m, -1), EMBER_ECLOSED); /* must not block */
    CHECK(!ember_sub_is_valid(an) && !ember_sub_is_valid(ad) && !ember_sub_is_valid(ai) &&
          !ember_sub_is_valid(ap));
    CHECK_RC(ember_sub_auto_unsubscribe(an, 10), EMBER_ECLOSED);
    ember_sub_stats ss;
    ember_sub_get_stats(an, &ss);
    CHECK_EQ(ss.delivered, 5);
    ember_sub_get_stats(ad, &ss);
    CHECK_EQ(ss.delivered, 3);

    /* a max at or below what was delivered unsubscribes at once */
    ember_sub *early = NULL;
    CHECK_RC(ember_conn_subscribe(&early, c, "au.y", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL),
             EMBER_OK);
    for (int i = 0; i < 3; i++)
        CHECK_RC(ember_conn_publish(c, "au.y", NULL, "y", 1), EMBER_OK);
    CHECK_RC(ember_sub_auto_unsubscribe(early, 2), EMBER_OK);
    CHECK(!ember_sub_is_valid(early));
    CHECK_RC(ember_conn_publish(c, "au.y", NULL, "y", 1), EMBER_OK);

    /* unsubscribe: nothing more arrives; queued messages are discarded */
    track tu = {0};
    ember_sub *ud = NULL, *un = NULL;
    CHECK_RC(subscribe(&ud, c, "un.x", NULL, EMBER_DELIVER_DISPATCH, count_cb, &tu), EMBER_OK);
    CHECK_RC(ember_conn_subscribe(&un, c, "un.x", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL),
             EMBER_OK);
    CHECK_RC(ember_sub_next_msg(un, &m, 20), EMBER_ETIMEDOUT);
    CHECK_RC(ember_sub_next_msg(un, &m, 0), EMBER_ETIMEDOUT);
    CHECK_RC(ember_conn_publish(c, "un.x", NULL, "1", 1), EMBER_OK);
    CHECK(WAIT_UNTIL(atomic_load(&tu.msgs) == 1, WAIT_MS));
    CHECK_RC(ember_sub_unsubscribe(ud), EMBER_OK);
    CHECK_RC(ember_sub_unsubscribe(ud), EMBER_OK); /* idempotent */
    CHECK_RC(ember_sub_unsubscribe(un), EMBER_OK);
    CHECK(!ember_sub_is_valid(ud));
    CHECK(strcmp(ember_sub_subject(ud), "un.x") == 0); /* handle stays valid */
    for (int i = 0; i < 5; i++)
        CHECK_RC(ember_conn_publish(c, "un.x", NULL, "2", 1), EMBER_OK);
    CHECK(dispatch_barrier(c, NULL));
    CHECK_EQ(atomic_load(&tu.msgs), 1);
    CHECK_RC(ember_sub_next_msg(un, &m, 0), EMBER_ECLOSED);
    CHECK_RC(ember_sub_next_msg(un, &m, -1), EMBER_ECLOSED);

    /* unsubscribe with messages queued: they are discarded */
    ember_sub *q = NULL;
    track tq = {0};
    ember_sub *qp = NULL;
    CHECK_RC(ember_conn_subscribe(&q, c, "un.q", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL),
             EMBER_OK);
    CHECK_RC(subscribe(&qp, c, "un.q", NULL, EMBER_DELIVER_POLL, count_cb, &tq), EMBER_OK);
    for (int i = 0; i < 3; i++)
        CHECK_RC(ember_conn_publish(c, "un.q", NULL, "q", 1), EMBER_OK);
    CHECK_RC(ember_sub_unsubscribe(q), EMBER_OK);
    CHECK_RC(ember_sub_unsubscribe(qp), EMBER_OK);
    CHECK_RC(ember_sub_next_msg(q, &m, 0), EMBER_ECLOSED);
    while (ember_conn_poll(c, 0) > 0)
        ;
    CHECK_EQ(atomic_load(&tq.msgs), 0);
    ember_sub_get_stats(q, &ss);
    CHECK_EQ(ss.pending_msgs, 0);

    ember_server_stats st;
    ember_server_get_stats(s, &st);
    CHECK_EQ(st.subscriptions, 0);
    ember_conn_close(c);
    CHECK(td.frees == 1 && ti.frees == 1 && tp.frees == 1 && tn.frees == 1 && tu.frees == 1 &&
          tq.frees == 1);
    ember_server_free(s);
}

/* ------------------------------------------------------------------ pending limits */

typedef struct err_rec {
    atomic_int calls;
    _Atomic(ember_sub *) sub;
    atomic_int status;
} err_rec;

static void error_fn(void *ud, ember_sub *sub, int status)
{
    err_rec *e = ud;
    atomic_store(&e->sub, sub);
    atomic_store(&e->status, status);
    atomic_fetch_add(&e->calls, 1);
}

static void test_pending_limits(void)
{
    ember_server *s = inproc_server();
    REQUIRE(s);
    err_rec er = {0};
    ember_conn_options co;
    ember_conn_options_init(&co);
    co.error_fn = error_fn;
    co.error_userdata = &er;
    ember_conn *c = conn_up(s, &co), *p = conn_up(s, NULL);
    REQUIRE(c && p);

    /* POLL callback sub not polled: 10 queued, 15 dropped, one error report */
    track tp = {0};
    ember_sub *sp = NULL;
    CHECK_RC(subscribe(&sp, c, "pl.poll", NULL, EMBER_DELIVER_POLL, count_cb, &tp), EMBER_OK);
    CHECK_RC(ember_sub_set_pending_limits(sp, 0, 100), EMBER_EINVAL);
    CHECK_RC(ember_sub_set_pending_limits(sp, 10, 0), EMBER_EINVAL);
    CHECK_RC(ember_sub_set_pending_limits(sp, 10, -1), EMBER_OK);
    for (int i = 0; i < 25; i++)
        CHECK_RC(ember_conn_publish(p, "pl.poll", NULL, "0123456789", 10), EMBER_OK);
    ember_sub_stats ss;
    ember_sub_get_stats(sp, &ss);
    CHECK_EQ(ss.pending_msgs, 10);
    CHECK_EQ(ss.pending_bytes, 100);
    CHECK_EQ(ss.dropped, 15);
    CHECK_EQ(ss.delivered, 0);
    CHECK_EQ(atomic_load(&er.calls), 1);
    CHECK(atomic_load(&er.sub) == sp);
    CHECK_EQ(atomic_load(&er.status), EMBER_ESLOWCONSUMER);
    ember_conn_stats cs;
    ember_conn_get_stats(c, &cs);
    CHECK_EQ(cs.dropped, 15);
    ember_server_stats st;
    ember_server_get_stats(s, &st);
    CHECK_MSG(st.slow_consumers >= 1, "server slow_consumers %llu",
              (unsigned long long)st.slow_consumers);
    int polled = 0;
    while (polled < 10) {
        int r = ember_conn_poll(c, WAIT_MS);
        if (r <= 0)
            break;
        polled += r;
    }
    CHECK_EQ(polled, 10);
    CHECK_EQ(atomic_load(&tp.msgs), 10);
    ember_sub_get_stats(sp, &ss);
    CHECK_EQ(ss.pending_msgs, 0);
    CHECK_EQ(ss.pending_bytes, 0);
    CHECK_EQ(ss.delivered, 10);
    /* room again: delivered, no new report */
    CHECK_RC(ember_conn_publish(p, "pl.poll", NULL, "x", 1), EMBER_OK);
    CHECK_EQ(ember_conn_poll(c, WAIT_MS), 1);
    CHECK_EQ(atomic_load(&er.calls), 1);
    /* slow again after recovering: reported again */
    for (int i = 0; i < 11; i++)
        CHECK_RC(ember_conn_publish(p, "pl.poll", NULL, "x", 1), EMBER_OK);
    CHECK_EQ(atomic_load(&er.calls), 2);
    while (ember_conn_poll(c, 0) > 0)
        ;

    /* a byte limit */
    track tb = {0};
    ember_sub *sb = NULL;
    CHECK_RC(subscribe(&sb, c, "pl.bytes", NULL, EMBER_DELIVER_POLL, count_cb, &tb), EMBER_OK);
    CHECK_RC(ember_sub_set_pending_limits(sb, -1, 100), EMBER_OK);
    char d30[30];
    memset(d30, 'b', sizeof d30);
    for (int i = 0; i < 10; i++)
        CHECK_RC(ember_conn_publish(p, "pl.bytes", NULL, d30, sizeof d30), EMBER_OK);
    ember_sub_get_stats(sb, &ss);
    CHECK_EQ(ss.pending_msgs, 3);
    CHECK_EQ(ss.pending_bytes, 90);
    CHECK_EQ(ss.dropped, 7);

    /* callback-less: EMBER_ESLOWCONSUMER once from next_msg, then the queued messages */
    ember_sub *sn = NULL;
    CHECK_RC(ember_conn_subscribe(&sn, c, "pl.next", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL),
             EMBER_OK);
    CHECK_RC(ember_sub_set_pending_limits(sn, 5, -1), EMBER_OK);
    for (int i = 0; i < 8; i++) {
        char d[8];
        int n = snprintf(d, sizeof d, "m%d", i);
        CHECK_RC(ember_conn_publish(p, "pl.next", NULL, d, (size_t)n), EMBER_OK);
    }
    ember_msg *m = NULL;
    CHECK_RC(ember_sub_next_msg(sn, &m, 0), EMBER_ESLOWCONSUMER);
    CHECK(m == NULL);
    CHECK(strstr(ember_last_error(), "3") != NULL); /* how many were dropped */
    for (int i = 0; i < 5; i++) {
        char want[8];
        snprintf(want, sizeof want, "m%d", i);
        CHECK_RC(ember_sub_next_msg(sn, &m, 0), EMBER_OK);
        CHECK(m && data_is(m, want));
        ember_msg_release(m);
    }
    CHECK_RC(ember_sub_next_msg(sn, &m, 0), EMBER_ETIMEDOUT);
    CHECK_EQ(atomic_load(&er.calls), 4); /* sb and sn */

    /* DISPATCH: a blocked callback, limit 5 */
    track tg = {0};
    ember_sub *sg = NULL;
    ember_conn *c2 = conn_up(s, NULL); /* no error_fn: drops are only counted */
    REQUIRE(c2);
    CHECK_RC(subscribe(&sg, c2, "pl.disp", NULL, EMBER_DELIVER_DISPATCH, count_cb, &tg), EMBER_OK);
    CHECK_RC(ember_sub_set_pending_limits(sg, 5, -1), EMBER_OK);
    for (int i = 0; i < 1000; i++)
        CHECK_RC(ember_conn_publish(p, "pl.disp", NULL, "d", 1), EMBER_OK);
    CHECK(dispatch_barrier(c2, p));
    ember_sub_get_stats(sg, &ss);
    CHECK_EQ(ss.delivered + ss.dropped, 1000);
    CHECK_EQ(atomic_load(&tg.msgs), (int)ss.delivered);
    ember_conn_get_stats(c2, &cs);
    CHECK_EQ(cs.dropped, ss.dropped);

    ember_conn_close(c);
    ember_conn_close(c2);
    ember_conn_close(p);
    CHECK(tp.frees == 1 && tb.frees == 1 && tg.frees == 1);
    ember_server_free(s);
}

/* ------------------------------------------------------------------ echo, stats, fd, flush */

static void test_no_echo_and_stats(void)
{
    ember_server *s = inproc_server();
    REQUIRE(s);
    ember_conn_options co;
    ember_conn_options_init(&co);
    co.no_echo = true;
    ember_conn *n = conn_up(s, &co), *e = conn_up(s, NULL);
    REQUIRE(n && e);
    ember_sub *ns = NULL, *es = NULL;
    track ti = {0};
    CHECK_RC(ember_conn_subscribe(&ns, n, "echo.x", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL),
             EMBER_OK);
    CHECK_RC(subscribe(NULL, n, "echo.x", NULL, EMBER_DELIVER_INLINE, count_cb, &ti), EMBER_OK);
    CHECK_RC(ember_conn_subscribe(&es, e, "echo.x", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL),
             EMBER_OK);
    CHECK_RC(ember_conn_publish(n, "echo.x", NULL, "from-n", 6), EMBER_OK);
    CHECK_EQ(drain_now(ns), 0); /* not its own */
    CHECK_EQ(atomic_load(&ti.msgs), 0);
    CHECK_EQ(drain_now(es), 1);
    CHECK_RC(ember_conn_publish(e, "echo.x", NULL, "from-e", 6), EMBER_OK);
    CHECK_EQ(drain_now(ns), 1);
    CHECK_EQ(atomic_load(&ti.msgs), 1);
    CHECK_EQ(drain_now(es), 1); /* echo on by default */
    /* a request that only its own subscription could answer: no responders */
    track to = {0};
    CHECK_RC(subscribe(NULL, n, "echo.own", NULL, EMBER_DELIVER_INLINE, count_cb, &to), EMBER_OK);
    ember_msg *r = NULL;
    CHECK_RC(ember_conn_request(n, "echo.own", "?", 1, WAIT_MS, &r), EMBER_ENORESPONDERS);
    CHECK_EQ(atomic_load(&to.msgs), 0);
    CHECK_RC(ember_conn_publish(e, "echo.own", NULL, "x", 1), EMBER_OK);
    CHECK_EQ(atomic_load(&to.msgs), 1);
    ember_conn_close(n);
    ember_conn_close(e);
    CHECK_EQ(atomic_load(&ti.frees), 1);
    CHECK_EQ(atomic_load(&to.frees), 1);

    /* stats */
    ember_conn *a = conn_up(s, NULL), *b = conn_up(s, NULL);
    REQUIRE(a && b);
    ember_sub *bs = NULL;
    CHECK_RC(ember_conn_subscribe(&bs, b, "st.x", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL),
             EMBER_OK);
    for (int i = 0; i < 7; i++)
        CHECK_RC(ember_conn_publish(a, "st.x", NULL, "0123456789", 10), EMBER_OK);
    CHECK_RC(ember_conn_publish(a, "st.none", NULL, "xyz", 3), EMBER_OK); /* nobody listens */
    ember_conn_stats cs;
    memset(&cs, 0xFF, sizeof cs);
    ember_conn_get_stats(a, &cs);
    CHECK_EQ(cs.out_msgs, 8);
    CHECK_EQ(cs.out_bytes, 73);
    CHECK_EQ(cs.in_msgs, 0);
    CHECK_EQ(cs.in_bytes, 0);
    CHECK_EQ(cs.dropped, 0);
    ember_conn_get_stats(b, &cs);
    CHECK_EQ(cs.in_msgs, 7);
    CHECK_EQ(cs.in_bytes, 70);
    CHECK_EQ(cs.out_msgs, 0);
    ember_sub_stats ss;
    ember_sub_get_stats(bs, &ss);
    CHECK_EQ(ss.delivered, 0);
    CHECK_EQ(ss.pending_msgs, 7);
    CHECK_EQ(ss.pending_bytes, 70);
    CHECK_EQ(ss.dropped, 0);
    CHECK_EQ(drain_now(bs), 7);
    ember_sub_get_stats(bs, &ss);
    CHECK_EQ(ss.delivered, 7);
    CHECK_EQ(ss.pending_msgs, 0);
    CHECK_EQ(ss.pending_bytes, 0);
    ember_server_stats st;
    ember_server_get_stats(s, &st);
    CHECK_EQ(st.connections, 2);
    CHECK_EQ(st.total_connections, 4);
    CHECK_EQ(st.subscriptions, 1);
    CHECK(st.in_msgs >= 8 + 2 + 1); /* includes the closed connections' */
    CHECK(st.out_msgs >= 7);
    ember_conn_close(a);
    ember_server_get_stats(s, &st);
    CHECK(st.in_msgs >= 11); /* a closed connection's counts stay */
    ember_conn_close(b);
    ember_server_free(s);
}

typedef struct pub_later {
    ember_conn *c;
    const char *subject;
    int delay_ms;
} pub_later;

static void *pub_later_thread(void *arg)
{
    pub_later *x = arg;
    tu_sleep_ms(x->delay_ms);
    ember_conn_publish(x->c, x->subject, NULL, "later", 5);
    return NULL;
}

static bool fd_readable(int fd, int timeout_ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

static void test_conn_fd(void)
{
    ember_server *s = inproc_server();
    REQUIRE(s);
    ember_conn *c = conn_up(s, NULL), *p = conn_up(s, NULL);
    REQUIRE(c && p);
    track t = {0};
    CHECK_RC(subscribe(NULL, c, "fd.x", NULL, EMBER_DELIVER_POLL, count_cb, &t), EMBER_OK);
    int fd = ember_conn_fd(c);
    CHECK(fd >= 0);
    CHECK_EQ(ember_conn_fd(c), fd); /* stable */
    CHECK(!fd_readable(fd, 0));
    CHECK_RC(ember_conn_publish(p, "fd.x", NULL, "1", 1), EMBER_OK);
    CHECK(fd_readable(fd, WAIT_MS));
    CHECK(fd_readable(fd, 0)); /* level: stays readable while pending */
    CHECK_EQ(ember_conn_poll(c, 0), 1);
    while (ember_conn_poll(c, 0) > 0)
        ;
    CHECK(!fd_readable(fd, 0));
    /* a publish from another thread wakes a poll() on the fd */
    pub_later pl = {p, "fd.x", 10};
    pthread_t th = spawn(pub_later_thread, &pl);
    CHECK(fd_readable(fd, WAIT_MS));
    pthread_join(th, NULL);
    CHECK_EQ(ember_conn_poll(c, 0), 1);
    /* and a blocking ember_conn_poll */
    th = spawn(pub_later_thread, &pl);
    CHECK_EQ(ember_conn_poll(c, WAIT_MS), 1);
    pthread_join(th, NULL);
    CHECK_EQ(atomic_load(&t.msgs), 3);
    CHECK_EQ(ember_conn_poll(c, 0), 0);
    CHECK_EQ(ember_conn_poll(c, 10), 0); /* bounded wait, nothing */
    CHECK(!fd_readable(fd, 0));
    /* DISPATCH and callback-less messages do not make it readable */
    ember_sub *nx = NULL;
    CHECK_RC(ember_conn_subscribe(NULL, c, "fd.d", NULL, EMBER_DELIVER_DISPATCH, count_cb, &t,
                                  NULL),
             EMBER_OK);
    CHECK_RC(ember_conn_subscribe(&nx, c, "fd.n", NULL, EMBER_DELIVER_DISPATCH, NULL, NULL, NULL),
             EMBER_OK);
    CHECK_RC(ember_conn_publish(p, "fd.d", NULL, "1", 1), EMBER_OK);
    CHECK_RC(ember_conn_publish(p, "fd.n", NULL, "1", 1), EMBER_OK);
    CHECK(WAIT_UNTIL(atomic_load(&t.msgs) == 4, WAIT_MS));
    CHECK(!fd_readable(fd, 0));
    CHECK_EQ(drain_now(nx), 1);
    /* flush */
    CHECK_RC(ember_conn_flush(c, 100), EMBER_OK);
    CHECK_RC(ember_conn_flush(p, 0), EMBER_OK);
    ember_conn_close(c);
    ember_conn_close(p);
    CHECK_EQ(atomic_load(&t.frees), 1);
    ember_server_free(s);
}

/* ------------------------------------------------------------------ drain, close */

static void gated_cb(void *ud, ember_sub *sub, ember_msg *m)
{
    track *t = ud;
    (void)sub;
    (void)m;
    atomic_store(&t->in_cb, 1);
    WAIT_UNTIL(atomic_load(&t->gate), WAIT_MS); /* bounded */
    atomic_fetch_add(&t->msgs, 1);
}

typedef struct open_later {
    track *t;
    int delay_ms;
} open_later;

static void *open_later_thread(void *arg)
{
    open_later *x = arg;
    WAIT_UNTIL(atomic_load(&x->t->in_cb), WAIT_MS);
    tu_sleep_ms(x->delay_ms);
    atomic_store(&x->t->gate, 1);
    return NULL;
}

static void test_drain(void)
{
    enum { N = 200 };
    ember_server *s = inproc_server();
    REQUIRE(s);
    ember_conn *d = conn_up(s, NULL), *p = conn_up(s, NULL);
    REQUIRE(d && p);
    track t = {0}, tw = {0};
    ember_sub *ny = NULL;
    CHECK_RC(subscribe(NULL, d, "dr.x", NULL, EMBER_DELIVER_DISPATCH, gated_cb, &t), EMBER_OK);
    CHECK_RC(subscribe(NULL, d, "dr.>", NULL, EMBER_DELIVER_DISPATCH, count_cb, &tw), EMBER_OK);
    CHECK_RC(ember_conn_subscribe(&ny, d, "dr.y", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL),
             EMBER_OK);
    for (int i = 0; i < N; i++)
        CHECK_RC(ember_conn_publish(p, "dr.x", NULL, "x", 1), EMBER_OK);
    for (int i = 0; i < 3; i++)
        CHECK_RC(ember_conn_publish(p, "dr.y", NULL, "y", 1), EMBER_OK);
    /* the first callback holds the dispatcher until the gate opens, during the drain */
    open_later ol = {&t, 20};
    pthread_t th = spawn(open_later_thread, &ol);
    CHECK_RC(ember_conn_drain(d, WAIT_MS), EMBER_OK);
    pthread_join(th, NULL);
    CHECK_EQ(atomic_load(&t.msgs), N);     /* every pending message was delivered */
    CHECK_EQ(atomic_load(&tw.msgs), N + 3);
    CHECK(ember_conn_is_closed(d));
    CHECK_RC(ember_conn_publish(d, "dr.x", NULL, "x", 1), EMBER_ECLOSED);
    CHECK_RC(ember_conn_flush(d, 10), EMBER_ECLOSED);
    CHECK_RC(ember_conn_drain(d, 10), EMBER_ECLOSED);
    ember_msg *r = NULL;
    CHECK_RC(ember_conn_request(d, "dr.x", "x", 1, 10, &r), EMBER_ECLOSED);
    track tl = {0};
    CHECK_RC(subscribe(NULL, d, "dr.z", NULL, EMBER_DELIVER_DISPATCH, count_cb, &tl),
             EMBER_ECLOSED);
    CHECK_EQ(atomic_load(&tl.frees), 1);
    /* the callback-less sub hands out what was queued, then ECLOSED */
    CHECK_EQ(drain_now(ny), 3);
    ember_msg *m = NULL;
    CHECK_RC(ember_sub_next_msg(ny, &m, -1), EMBER_ECLOSED);
    CHECK(!ember_sub_is_valid(ny));
    /* others publishing to its subjects reach nothing */
    CHECK_RC(ember_conn_publish(p, "dr.x", NULL, "x", 1), EMBER_OK);
    CHECK_RC(ember_conn_request(p, "dr.x", "x", 1, 10, &r), EMBER_ENORESPONDERS);
    CHECK(ember_conn_poll(d, 0) == EMBER_ECLOSED);
    ember_conn_close(d);
    CHECK_EQ(atomic_load(&t.msgs), N);
    CHECK(t.frees == 1 && tw.frees == 1);

    /* a drain that runs out of time */
    d = conn_up(s, NULL);
    REQUIRE(d);
    track t2 = {0};
    CHECK_RC(subscribe(NULL, d, "dr.x", NULL, EMBER_DELIVER_DISPATCH, gated_cb, &t2), EMBER_OK);
    for (int i = 0; i < 10; i++)
        CHECK_RC(ember_conn_publish(p, "dr.x", NULL, "x", 1), EMBER_OK);
    CHECK(WAIT_UNTIL(atomic_load(&t2.in_cb), WAIT_MS));
    CHECK_RC(ember_conn_drain(d, 20), EMBER_ETIMEDOUT);
    CHECK(ember_conn_is_closed(d));
    atomic_store(&t2.gate, 1);
    ember_conn_close(d); /* waits for the running callback */
    CHECK(atomic_load(&t2.msgs) >= 1 && atomic_load(&t2.msgs) <= 10);
    CHECK_EQ(atomic_load(&t2.frees), 1);
    ember_conn_close(p);
    ember_server_free(s);
}

/* drain right after publishing, many times: what was queued is always run */
static void test_drain_repeated(void)
{
    enum { ROUNDS = 300, PER = 3 };
    ember_server *s = inproc_server();
    REQUIRE(s);
    ember_conn *p = conn_up(s, NULL);
    REQUIRE(p);
    int short_rounds = 0, bad_rc = 0, bad_frees = 0;
    for (int r = 0; r < ROUNDS; r++) {
        ember_conn *c = NULL;
        if (ember_conn_connect(&c, s, NULL) != 0) {
            bad_rc++;
            continue;
        }
        track t = {0};
        if (subscribe(NULL, c, "drr.x", NULL, EMBER_DELIVER_DISPATCH, count_cb, &t) != 0)
            bad_rc++;
        for (int i = 0; i < PER; i++)
            if (ember_conn_publish(p, "drr.x", NULL, "x", 1) != 0)
                bad_rc++;
        if (ember_conn_drain(c, WAIT_MS) != 0)
            bad_rc++;
        short_rounds += atomic_load(&t.msgs) != PER;
        ember_conn_close(c);
        bad_frees += atomic_load(&t.frees) != 1;
    }
    CHECK_EQ(bad_rc, 0);
    CHECK_EQ(short_rounds, 0);
    CHECK_EQ(bad_frees, 0);
    ember_conn_close(p);
    ember_server_free(s);
}

static void close_self_cb(void *ud, ember_sub *sub, ember_msg *m)
{
    track *t = ud;
    (void)sub;
    (void)m;
    if (atomic_fetch_add(&t->msgs, 1) == 0)
        ember_conn_close(t->conn);
}

static void test_close_in_callback(void)
{
    ember_server *s = inproc_server();
    REQUIRE(s);
    ember_conn *p = conn_up(s, NULL);
    REQUIRE(p);
    ember_delivery modes[3] = {EMBER_DELIVER_DISPATCH, EMBER_DELIVER_INLINE, EMBER_DELIVER_POLL};
    for (int k = 0; k < 3; k++) {
        ember_conn *c = conn_up(s, NULL);
        REQUIRE(c);
        track t = {0}, other = {0};
        t.conn = c;
        CHECK_RC(subscribe(NULL, c, "cl.x", NULL, modes[k], close_self_cb, &t), EMBER_OK);
        CHECK_RC(subscribe(NULL, c, "cl.>", NULL, modes[k], count_cb, &other), EMBER_OK);
        for (int i = 0; i < 20; i++)
            CHECK_RC(ember_conn_publish(p, "cl.x", NULL, "x", 1), EMBER_OK);
        if (modes[k] == EMBER_DELIVER_POLL)
            ember_conn_poll(c, WAIT_MS); /* c is freed by its callback inside */
        /* the connection is freed once the callback returned: userdata freed once */
        CHECK(WAIT_UNTIL(atomic_load(&t.frees) == 1 && atomic_load(&other.frees) == 1,
                         WAIT_MS));
        CHECK_EQ(atomic_load(&t.msgs), 1);
        if (modes[k] != EMBER_DELIVER_INLINE)
            CHECK(atomic_load(&other.msgs) <= 1);
        ember_server_stats st;
        ember_server_get_stats(s, &st);
        CHECK_EQ(st.connections, 1);
        CHECK_EQ(st.subscriptions, 0);
        CHECK_RC(ember_conn_publish(p, "cl.x", NULL, "x", 1), EMBER_OK);
        CHECK_EQ(atomic_load(&t.msgs), 1);
    }
    ember_conn_close(p);
    ember_server_free(s);
}

/* ------------------------------------------------------------------ shutdown under load */

typedef struct blocked_ctx {
    ember_conn *c;
    ember_sub *sub;
    atomic_int rc;
    atomic_int started;
} blocked_ctx;

static void *blocked_next_thread(void *arg)
{
    blocked_ctx *x = arg;
    ember_msg *m = NULL;
    atomic_store(&x->started, 1);
    atomic_store(&x->rc, ember_sub_next_msg(x->sub, &m, 4 * WAIT_MS));
    ember_msg_release(m);
    return NULL;
}

static void *blocked_request_thread(void *arg)
{
    blocked_ctx *x = arg;
    ember_msg *m = NULL;
    atomic_store(&x->started, 1);
    atomic_store(&x->rc, ember_conn_request(x->c, "live.silent", "x", 1, 4 * WAIT_MS, &m));
    ember_msg_release(m);
    return NULL;
}

static void *blocked_poll_thread(void *arg)
{
    blocked_ctx *x = arg;
    atomic_store(&x->started, 1);
    uint64_t dl = tu_now_ms() + 4 * WAIT_MS;
    int rc = 0;
    while (tu_now_ms() < dl && (rc = ember_conn_poll(x->c, 4 * WAIT_MS)) >= 0)
        ;
    atomic_store(&x->rc, rc);
    return NULL;
}

static void test_shutdown_live(void)
{
    ember_server *s = inproc_server();
    REQUIRE(s);
    ember_conn *c = conn_up(s, NULL), *c2 = conn_up(s, NULL);
    REQUIRE(c && c2);
    track tn = {0}, td = {0}, tp = {0}, ti = {0}, ts = {0};
    ember_sub *sn = NULL, *sd = NULL;
    CHECK_RC(subscribe(&sn, c, "live.n", NULL, EMBER_DELIVER_POLL, NULL, &tn), EMBER_OK);
    CHECK_RC(subscribe(&sd, c, "live.d", NULL, EMBER_DELIVER_DISPATCH, count_cb, &td), EMBER_OK);
    CHECK_RC(subscribe(NULL, c, "live.p", NULL, EMBER_DELIVER_POLL, count_cb, &tp), EMBER_OK);
    CHECK_RC(subscribe(NULL, c, "live.i", NULL, EMBER_DELIVER_INLINE, count_cb, &ti), EMBER_OK);
    CHECK_RC(subscribe(NULL, c2, "live.silent", NULL, EMBER_DELIVER_POLL, NULL, &ts), EMBER_OK);
    CHECK_RC(ember_conn_publish(c, "live.d", NULL, "x", 1), EMBER_OK);
    CHECK(WAIT_UNTIL(atomic_load(&td.msgs) == 1, WAIT_MS));
    /* threads blocked in next_msg, request and poll */
    blocked_ctx bn = {.c = c, .sub = sn}, br = {.c = c}, bp = {.c = c2};
    pthread_t t1 = spawn(blocked_next_thread, &bn), t2 = spawn(blocked_request_thread, &br),
              t3 = spawn(blocked_poll_thread, &bp);
    CHECK(WAIT_UNTIL(atomic_load(&bn.started) && atomic_load(&br.started) &&
                         atomic_load(&bp.started),
                     WAIT_MS));
    tu_sleep_ms(20); /* let them block (either way the result is the same) */
    ember_server_shutdown(s);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    pthread_join(t3, NULL);
    CHECK_RC(atomic_load(&bn.rc), EMBER_ECLOSED);
    CHECK_RC(atomic_load(&br.rc), EMBER_ECLOSED);
    CHECK_RC(atomic_load(&bp.rc), EMBER_ECLOSED);
    /* everything on the connection now says closed */
    CHECK(ember_conn_is_closed(c) && ember_conn_is_closed(c2));
    CHECK(!ember_sub_is_valid(sn) && !ember_sub_is_valid(sd));
    ember_msg *m = NULL;
    CHECK_RC(ember_sub_next_msg(sn, &m, -1), EMBER_ECLOSED);
    CHECK_RC(ember_conn_publish(c, "live.n", NULL, "x", 1), EMBER_ECLOSED);
    CHECK_RC(ember_conn_request(c, "live.n", "x", 1, 10, &m), EMBER_ECLOSED);
    CHECK(ember_conn_poll(c, 10) == EMBER_ECLOSED);
    CHECK_RC(ember_conn_flush(c, 10), EMBER_ECLOSED);
    CHECK_RC(ember_conn_drain(c, 10), EMBER_ECLOSED);
    track tl = {0};
    CHECK_RC(subscribe(NULL, c, "live.late", NULL, EMBER_DELIVER_DISPATCH, count_cb, &tl),
             EMBER_ECLOSED);
    CHECK_EQ(atomic_load(&tl.frees), 1);
    CHECK_RC(ember_sub_auto_unsubscribe(sd, 5), EMBER_ECLOSED);
    CHECK_RC(ember_sub_unsubscribe(sd), EMBER_OK);
    ember_conn_stats cs;
    ember_conn_get_stats(c, &cs);
    CHECK_EQ(cs.in_msgs, 1);
    CHECK_EQ(atomic_load(&tn.frees) + atomic_load(&td.frees), 0); /* not before close */
    ember_conn_close(c);
    ember_conn_close(c2);
    CHECK(tn.frees == 1 && td.frees == 1 && tp.frees == 1 && ti.frees == 1 && ts.frees == 1);
    CHECK_EQ(atomic_load(&td.msgs), 1);
    ember_server_stats st;
    ember_server_get_stats(s, &st);
    CHECK_EQ(st.connections, 0);
    ember_server_free(s);
}

/* ------------------------------------------------------------------ multi-threaded */

enum { MT_PUBS = 4, MT_MSGS = 20000, MT_TOTAL = MT_PUBS * MT_MSGS, MT_HALF = MT_TOTAL / 2 };

typedef struct mt_pub {
    ember_conn *c;
    int id;
    atomic_int fails;
} mt_pub;

static void *mt_pub_thread(void *arg)
{
    mt_pub *x = arg;
    for (int i = 0; i < MT_MSGS; i++) {
        char d[32];
        int n = snprintf(d, sizeof d, "%d:%d", x->id, i);
        if (ember_conn_publish(x->c, (i & 1) ? "mt.b" : "mt.a", NULL, d, (size_t)n) != 0)
            atomic_fetch_add(&x->fails, 1);
    }
    return NULL;
}

/* DISPATCH on mt.a: counts, and checks each publisher's messages arrive in order */
typedef struct mt_order {
    track t;
    int last[MT_PUBS]; /* dispatcher thread only */
} mt_order;

static void mt_order_cb(void *ud, ember_sub *sub, ember_msg *m)
{
    mt_order *o = ud;
    (void)sub;
    int id = -1, i = -1;
    if (sscanf(ember_msg_data(m, NULL), "%d:%d", &id, &i) != 2 || id < 0 || id >= MT_PUBS ||
        i <= o->last[id])
        atomic_fetch_add(&o->t.bad, 1);
    else
        o->last[id] = i;
    atomic_fetch_add(&o->t.msgs, 1);
}

static void mt_order_free(void *ud) { atomic_fetch_add(&((mt_order *)ud)->t.frees, 1); }

typedef struct mt_reader {
    ember_conn *c;
    ember_sub *sub; /* NULL: poll the connection */
    atomic_int *count;
    int want;
} mt_reader;

static void *mt_reader_thread(void *arg)
{
    mt_reader *x = arg;
    uint64_t dl = tu_now_ms() + 6 * WAIT_MS;
    while (atomic_load(x->count) < x->want && tu_now_ms() < dl) {
        if (!x->sub) {
            if (ember_conn_poll(x->c, 50) < 0)
                break;
            continue;
        }
        ember_msg *m = NULL;
        int rc = ember_sub_next_msg(x->sub, &m, 50);
        if (rc == 0) {
            atomic_fetch_add(x->count, 1);
            ember_msg_release(m);
        } else if (rc != EMBER_ETIMEDOUT) {
            break;
        }
    }
    return NULL;
}

static void test_multithreaded(void)
{
    ember_server *s = inproc_server();
    REQUIRE(s);
    ember_conn *p0 = conn_up(s, NULL), *p1 = conn_up(s, NULL), *p2 = conn_up(s, NULL);
    ember_conn *s1 = conn_up(s, NULL), *s2 = conn_up(s, NULL), *s3 = conn_up(s, NULL),
               *s4 = conn_up(s, NULL);
    ember_conn *qc[3] = {conn_up(s, NULL), conn_up(s, NULL), NULL};
    REQUIRE(p0 && p1 && p2 && s1 && s2 && s3 && s4 && qc[0] && qc[1]);
    qc[2] = qc[1]; /* two members on one connection */

    static mt_order ord;
    memset(&ord, 0, sizeof ord);
    for (int i = 0; i < MT_PUBS; i++)
        ord.last[i] = -1;
    track twild = {0}, tpoll = {0}, tinl = {0}, tnext = {0}, tq[3];
    memset(tq, 0, sizeof tq);
    ember_sub *subs[16];
    int ns = 0;
    /* mt.a: DISPATCH (ordered), POLL callback; mt.b: POLL next_msg, INLINE; mt.*: DISPATCH
     * wildcard; mt.>: queue group of three DISPATCH members */
    CHECK_RC(ember_conn_subscribe(&subs[ns++], s1, "mt.a", NULL, EMBER_DELIVER_DISPATCH,
                                  mt_order_cb, &ord, mt_order_free),
             EMBER_OK);
    CHECK_RC(subscribe(&subs[ns++], s1, "mt.*", NULL, EMBER_DELIVER_DISPATCH, count_cb, &twild),
             EMBER_OK);
    CHECK_RC(subscribe(&subs[ns++], s2, "mt.a", NULL, EMBER_DELIVER_POLL, count_cb, &tpoll),
             EMBER_OK);
    ember_sub *nsub = NULL;
    CHECK_RC(subscribe(&nsub, s3, "mt.b", NULL, EMBER_DELIVER_POLL, NULL, &tnext), EMBER_OK);
    subs[ns++] = nsub;
    CHECK_RC(subscribe(&subs[ns++], s4, "mt.b", NULL, EMBER_DELIVER_INLINE, count_cb, &tinl),
             EMBER_OK);
    for (int i = 0; i < 3; i++)
        CHECK_RC(subscribe(&subs[ns++], qc[i], "mt.>", "mtq", EMBER_DELIVER_DISPATCH, count_cb,
                           &tq[i]),
                 EMBER_OK);
    for (int i = 0; i < ns; i++)
        CHECK_RC(ember_sub_set_pending_limits(subs[i], -1, -1), EMBER_OK); /* no drops */

    mt_reader rpoll = {.c = s2, .count = &tpoll.msgs, .want = MT_HALF};
    mt_reader rnext = {.c = s3, .sub = nsub, .count = &tnext.msgs, .want = MT_HALF};
    pthread_t rt1 = spawn(mt_reader_thread, &rpoll), rt2 = spawn(mt_reader_thread, &rnext);
    mt_pub pubs[MT_PUBS];
    ember_conn *pc[MT_PUBS] = {p0, p0, p1, p2}; /* two threads share a connection */
    pthread_t pt[MT_PUBS];
    for (int i = 0; i < MT_PUBS; i++) {
        pubs[i] = (mt_pub){.c = pc[i], .id = i};
        pt[i] = spawn(mt_pub_thread, &pubs[i]);
    }
    for (int i = 0; i < MT_PUBS; i++) {
        pthread_join(pt[i], NULL);
        CHECK_EQ(atomic_load(&pubs[i].fails), 0);
    }
    CHECK_EQ(atomic_load(&tinl.msgs), MT_HALF); /* inline: done when the publishes returned */
    CHECK(WAIT_UNTIL(atomic_load(&ord.t.msgs) == MT_HALF && atomic_load(&twild.msgs) == MT_TOTAL &&
                         atomic_load(&tq[0].msgs) + atomic_load(&tq[1].msgs) +
                                 atomic_load(&tq[2].msgs) ==
                             MT_TOTAL,
                     6 * WAIT_MS));
    pthread_join(rt1, NULL);
    pthread_join(rt2, NULL);
    CHECK(dispatch_barrier(s1, p0));
    CHECK(dispatch_barrier(qc[0], p0));
    CHECK(dispatch_barrier(qc[1], p0));
    CHECK_EQ(atomic_load(&ord.t.msgs), MT_HALF);
    CHECK_EQ(atomic_load(&ord.t.bad), 0);
    CHECK_EQ(atomic_load(&twild.msgs), MT_TOTAL);
    CHECK_EQ(atomic_load(&tpoll.msgs), MT_HALF);
    CHECK_EQ(atomic_load(&tnext.msgs), MT_HALF);
    CHECK_EQ(atomic_load(&tinl.msgs), MT_HALF);
    int q = 0;
    for (int i = 0; i < 3; i++) {
        CHECK(atomic_load(&tq[i].msgs) > 0);
        q += atomic_load(&tq[i].msgs);
    }
    CHECK_EQ(q, MT_TOTAL);
    CHECK_EQ(ember_conn_poll(s2, 0), 0);
    ember_msg *m = NULL;
    CHECK_RC(ember_sub_next_msg(nsub, &m, 0), EMBER_ETIMEDOUT);
    for (int i = 0; i < ns; i++) {
        ember_sub_stats ss;
        ember_sub_get_stats(subs[i], &ss);
        CHECK_EQ(ss.dropped, 0);
        CHECK_EQ(ss.pending_msgs, 0);
    }
    ember_conn_stats cs;
    ember_conn_get_stats(p0, &cs);
    CHECK_EQ(cs.out_msgs, 2 * MT_MSGS + 3); /* + three barriers */
    ember_conn_get_stats(s1, &cs);
    CHECK_EQ(cs.in_msgs, MT_HALF + MT_TOTAL + 1);
    ember_server_stats st;
    ember_server_get_stats(s, &st);
    CHECK(st.in_msgs >= (uint64_t)MT_TOTAL);

    ember_conn *all[] = {p0, p1, p2, s1, s2, s3, s4, qc[0], qc[1]};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        ember_conn_close(all[i]);
    CHECK(ord.t.frees == 1 && twild.frees == 1 && tpoll.frees == 1 && tinl.frees == 1 &&
          tnext.frees == 1 && tq[0].frees == 1 && tq[1].frees == 1 && tq[2].frees == 1);
    ember_server_free(s);
}

/* ------------------------------------------------------------------ main */

/* A hung test (a wait that is not bounded in the library) must not hang the run. */
static _Atomic(const char *) g_current;

static void *watchdog_thread(void *arg)
{
    (void)arg;
    int limit_s = getenv("EMBER_TEST_WATCHDOG_S") ? atoi(getenv("EMBER_TEST_WATCHDOG_S")) : 240;
    tu_sleep_ms(limit_s * 1000);
    fprintf(stderr, "watchdog: test \"%s\" still running after %d s\n", atomic_load(&g_current),
            limit_s);
    printf("inproc: %d passed, %d failed\n", atomic_load(&tu_passed), atomic_load(&tu_failed) + 1);
    fflush(stdout);
    _exit(3);
}

typedef struct test_case {
    const char *name;
    void (*fn)(void);
} test_case;

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    static const test_case tests[] = {
        {"basics", test_basics},
        {"options", test_options},
        {"lifecycle_tcp", test_lifecycle_tcp},
        {"dont_listen", test_dont_listen},
        {"port_taken", test_port_taken},
        {"shutdown_concurrent", test_shutdown_concurrent},
        {"wait_for_shutdown", test_wait_for_shutdown},
        {"shutdown_from_callbacks", test_shutdown_from_callbacks},
        {"logging", test_logging},
        {"null_handles", test_null_handles},
        {"delivery_modes", test_delivery_modes},
        {"wildcards", test_wildcards},
        {"queue_groups", test_queue_groups},
        {"request_reply", test_request_reply},
        {"no_responders_status", test_no_responders_status},
        {"headers", test_headers},
        {"invalid_subjects", test_invalid_subjects},
        {"max_payload", test_max_payload},
        {"unsubscribe", test_unsubscribe},
        {"pending_limits", test_pending_limits},
        {"no_echo_and_stats", test_no_echo_and_stats},
        {"conn_fd", test_conn_fd},
        {"drain", test_drain},
        {"drain_repeated", test_drain_repeated},
        {"close_in_callback", test_close_in_callback},
        {"shutdown_live", test_shutdown_live},
        {"multithreaded", test_multithreaded},
    };
    bool verbose = getenv("EMBER_TEST_VERBOSE") != NULL;
    atomic_store(&g_current, "(start)");
    pthread_t wd = spawn(watchdog_thread, NULL);
    pthread_detach(wd);
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (argc > 1) { /* run only the named tests */
            bool want = false;
            for (int a = 1; a < argc; a++)
                want |= strcmp(argv[a], tests[i].name) == 0;
            if (!want)
                continue;
        }
        int f0 = atomic_load(&tu_failed);
        uint64_t t0 = tu_now_ms();
        atomic_store(&g_current, tests[i].name);
        tests[i].fn();
        if (verbose || atomic_load(&tu_failed) != f0)
            fprintf(stderr, "-- %s: %s (%llu ms)\n", tests[i].name,
                    atomic_load(&tu_failed) != f0 ? "FAILED" : "ok",
                    (unsigned long long)(tu_now_ms() - t0));
    }
    return tu_summary("inproc");
}
