/*
 * Interop suite: drives a NATS server binary (nats-server, or ember-server,
 * chosen with EMBER_TEST_SERVER) with the official C client (libnats) and
 * with raw protocol sockets.
 *
 *   test_interop [filter]
 *
 * runs every case whose name contains `filter` (all when omitted), each
 * against a freshly started server, and ends with "N passed, N failed".
 *
 * Ordering rule used throughout: after natsConnection_Flush on the
 * publishing connection returns, the server has processed every earlier
 * publish; a Flush on a subscribing connection then returns only after
 * every message the server queued for it earlier has been read by the
 * client. So "flush publisher, then flush subscriber" is a barrier after
 * which pending counts are exact, and no case needs to guess a delay.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <poll.h>
#include <unistd.h>

/* ---- case plumbing ------------------------------------------------------ */

static int g_case_failed;
static const char *g_case_name;

static void case_fail(int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "  %s: test_interop.c:%d: ", g_case_name, line);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    g_case_failed = 1;
}

static const char *last_err(void)
{
    natsStatus st;
    const char *t = nats_GetLastError(&st);
    return t ? t : "";
}

#define FAIL(...)                                                                                \
    do {                                                                                         \
        case_fail(__LINE__, __VA_ARGS__);                                                        \
        goto done;                                                                               \
    } while (0)
#define CHECK(c)                                                                                 \
    do {                                                                                         \
        if (!(c))                                                                                \
            FAIL("check failed: %s", #c);                                                        \
    } while (0)
#define CHECK_NATS(expr)                                                                         \
    do {                                                                                         \
        natsStatus _s = (expr);                                                                  \
        if (_s != NATS_OK)                                                                       \
            FAIL("%s -> %s (%s)", #expr, natsStatus_GetText(_s), last_err());                    \
    } while (0)
#define CHECK_STATUS(expr, want)                                                                 \
    do {                                                                                         \
        natsStatus _s = (expr);                                                                  \
        if (_s != (want))                                                                        \
            FAIL("%s -> %s, expected %s (%s)", #expr, natsStatus_GetText(_s),                    \
                 natsStatus_GetText(want), last_err());                                          \
    } while (0)
/* Compare raw bytes received with an expectation, printing both escaped. */
#define CHECK_BYTES(buf, want)                                                                   \
    do {                                                                                         \
        if (!bytes_equal((buf), (want))) {                                                       \
            char *_g = th_escape((buf)->data, (buf)->len, 400);                                  \
            char *_w = th_escape((want), strlen(want), 400);                                     \
            case_fail(__LINE__, "got  \"%s\"%s\n      want \"%s\"", _g,                          \
                      (buf)->closed ? " [closed]" : "", _w);                                     \
            free(_g);                                                                            \
            free(_w);                                                                            \
            goto done;                                                                           \
        }                                                                                        \
    } while (0)

static int bytes_equal(const th_buf *b, const char *want)
{
    size_t n = strlen(want);
    return b->len == n && memcmp(b->data, want, n) == 0;
}

static natsStatus flush(natsConnection *nc)
{
    return natsConnection_FlushTimeout(nc, 10000);
}

/* Barrier: everything `pub` sent before is in `sub`'s pending queues. */
static natsStatus barrier(natsConnection *pub, natsConnection *sub)
{
    natsStatus s = flush(pub);
    if (s == NATS_OK && sub != pub)
        s = flush(sub);
    return s;
}

static int pending_msgs(natsSubscription *sub)
{
    int msgs = -1, bytes = -1;
    if (natsSubscription_GetPending(sub, &msgs, &bytes) != NATS_OK)
        return -1;
    return msgs;
}

/* Raw barrier: PING, and read until the matching PONG (or close). */
static int raw_barrier(int fd, th_buf *b, int max_ms)
{
    if (th_raw_write_str(fd, "PING\r\n") != 0)
        return 0;
    return th_raw_read(fd, b, "PONG\r\n", 20, max_ms) == 2;
}

static size_t count_occurrences(const th_buf *b, const char *needle)
{
    size_t n = 0, nl = strlen(needle);
    const char *p = b->data, *end = b->data + b->len;
    while (p && p < end) {
        p = memmem(p, (size_t)(end - p), needle, nl);
        if (p) {
            n++;
            p += nl;
        }
    }
    return n;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Read a raw connection until the peer closes; discard the bytes. Returns 1
 * if it closed, 0 if it went quiet for quiet_ms or max_ms passed. */
static int drain_until_closed(int fd, size_t *total, int quiet_ms, int max_ms)
{
    static char tmp[1 << 16];
    int64_t deadline = th_now_ms() + max_ms, last = th_now_ms();
    *total = 0;
    for (;;) {
        int64_t now = th_now_ms();
        if (now >= deadline || now - last >= quiet_ms)
            return 0;
        struct pollfd pf = {fd, POLLIN, 0};
        int pr = poll(&pf, 1, 100);
        if (pr <= 0)
            continue;
        ssize_t r = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT);
        if (r == 0)
            return 1;
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            return errno == ECONNRESET ? 1 : 0;
        }
        *total += (size_t)r;
        last = th_now_ms();
    }
}

/* ---- async collection helpers ------------------------------------------ */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int count;
} counter_t;

static void counter_init(counter_t *c)
{
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->count = 0;
}

static void counter_add(counter_t *c, int n)
{
    pthread_mutex_lock(&c->mu);
    c->count += n;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Wait until count >= want, bounded. Returns the count seen. */
static int counter_wait(counter_t *c, int want, int max_ms)
{
    int64_t deadline = th_now_ms() + max_ms;
    pthread_mutex_lock(&c->mu);
    while (c->count < want) {
        int64_t left = deadline - th_now_ms();
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t step = left < 50 ? left : 50;
        ts.tv_nsec += step * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    int n = c->count;
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* ---- cases --------------------------------------------------------------- */

static int case_pubsub(th_server *s)
{
    natsConnection *a = NULL, *b = NULL;
    natsSubscription *sub = NULL;
    natsMsg *m = NULL;

    CHECK_NATS(th_connect(s, NULL, &a));
    CHECK_NATS(th_connect(s, NULL, &b));
    CHECK_NATS(natsConnection_SubscribeSync(&sub, a, "foo"));
    CHECK_NATS(flush(a));

    CHECK_NATS(natsConnection_Publish(b, "foo", "hello", 5));
    CHECK_NATS(natsConnection_PublishRequest(b, "foo", "reply.to", "world!", 6));
    CHECK_NATS(natsConnection_Publish(b, "foo", NULL, 0));
    CHECK_NATS(natsConnection_Publish(b, "bar", "other", 5));
    /* order holds per connection only: b's messages are delivered before a publishes */
    CHECK_NATS(barrier(b, a));
    CHECK_NATS(natsConnection_Publish(a, "foo", "self", 4)); /* echo is on by default */
    CHECK_NATS(flush(a));
    CHECK(pending_msgs(sub) == 4);

    CHECK_NATS(natsSubscription_NextMsg(&m, sub, 2000));
    CHECK(strcmp(natsMsg_GetSubject(m), "foo") == 0);
    CHECK(natsMsg_GetReply(m) == NULL || natsMsg_GetReply(m)[0] == 0);
    CHECK(natsMsg_GetDataLength(m) == 5 && memcmp(natsMsg_GetData(m), "hello", 5) == 0);
    natsMsg_Destroy(m);
    m = NULL;

    CHECK_NATS(natsSubscription_NextMsg(&m, sub, 2000));
    CHECK(natsMsg_GetReply(m) && strcmp(natsMsg_GetReply(m), "reply.to") == 0);
    CHECK(natsMsg_GetDataLength(m) == 6 && memcmp(natsMsg_GetData(m), "world!", 6) == 0);
    natsMsg_Destroy(m);
    m = NULL;

    CHECK_NATS(natsSubscription_NextMsg(&m, sub, 2000));
    CHECK(natsMsg_GetDataLength(m) == 0);
    natsMsg_Destroy(m);
    m = NULL;

    /* The message from `a` itself may arrive before or after b's (different
     * connections), but it was published after the subscription. */
    CHECK_NATS(natsSubscription_NextMsg(&m, sub, 2000));
    CHECK(natsMsg_GetDataLength(m) == 4 && memcmp(natsMsg_GetData(m), "self", 4) == 0);
done:
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(a);
    natsConnection_Destroy(b);
    return 0;
}

static int case_unsubscribe(th_server *s)
{
    natsConnection *nc = NULL;
    natsSubscription *s1 = NULL, *s2 = NULL;
    int fd = -1;
    th_buf b;
    th_buf_init(&b);

    CHECK_NATS(th_connect(s, NULL, &nc));
    CHECK_NATS(natsConnection_SubscribeSync(&s1, nc, "u"));
    CHECK_NATS(natsConnection_SubscribeSync(&s2, nc, "u"));
    CHECK_NATS(flush(nc));
    CHECK_NATS(natsConnection_PublishString(nc, "u", "1"));
    CHECK_NATS(flush(nc));
    CHECK(pending_msgs(s1) == 1 && pending_msgs(s2) == 1);
    CHECK_NATS(natsSubscription_Unsubscribe(s1));
    CHECK_NATS(natsConnection_PublishString(nc, "u", "2"));
    CHECK_NATS(flush(nc));
    CHECK(pending_msgs(s2) == 2);

    /* Server side: after UNSUB the server must stop sending. */
    fd = th_raw_session_ex(s->port, "CONNECT {\"verbose\":false}\r\n", "SUB u 7\r\nUNSUB 7\r\n", 0,
                           5000);
    CHECK(fd >= 0);
    CHECK_NATS(natsConnection_PublishString(nc, "u", "3"));
    CHECK_NATS(flush(nc));
    CHECK(raw_barrier(fd, &b, 5000));
    CHECK_BYTES(&b, "PONG\r\n");
done:
    close_fd(&fd);
    th_buf_free(&b);
    natsSubscription_Destroy(s1);
    natsSubscription_Destroy(s2);
    natsConnection_Destroy(nc);
    return 0;
}

static int drain_subjects(natsSubscription *sub, char *out, size_t cap)
{
    int n = 0;
    out[0] = 0;
    natsMsg *m = NULL;
    while (pending_msgs(sub) > 0 && natsSubscription_NextMsg(&m, sub, 1000) == NATS_OK) {
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s%s", l ? "," : "", natsMsg_GetSubject(m));
        natsMsg_Destroy(m);
        m = NULL;
        n++;
    }
    return n;
}

static int case_wildcards(th_server *s)
{
    natsConnection *a = NULL, *b = NULL;
    natsSubscription *subs[6] = {0};
    const char *patterns[6] = {"a.*", "a.>", ">", "*.b", "a.b.c", "*.*.c"};
    const char *want[6] = {
        "a.b",
        "a.b,a.b.c,a.b.c.d",
        "a.b,a.b.c,a,x.b,a.b.c.d,x.y.c",
        "a.b,x.b",
        "a.b.c",
        "a.b.c,x.y.c",
    };
    const char *published[] = {"a.b", "a.b.c", "a", "x.b", "a.b.c.d", "x.y.c"};
    char got[512];

    CHECK_NATS(th_connect(s, NULL, &a));
    CHECK_NATS(th_connect(s, NULL, &b));
    for (int i = 0; i < 6; i++)
        CHECK_NATS(natsConnection_SubscribeSync(&subs[i], a, patterns[i]));
    CHECK_NATS(flush(a));
    for (size_t i = 0; i < sizeof(published) / sizeof(*published); i++)
        CHECK_NATS(natsConnection_PublishString(b, published[i], "x"));
    CHECK_NATS(barrier(b, a));
    for (int i = 0; i < 6; i++) {
        drain_subjects(subs[i], got, sizeof(got));
        if (strcmp(got, want[i]) != 0)
            FAIL("subscription '%s' got [%s], want [%s]", patterns[i], got, want[i]);
    }
done:
    for (int i = 0; i < 6; i++)
        natsSubscription_Destroy(subs[i]);
    natsConnection_Destroy(a);
    natsConnection_Destroy(b);
    return 0;
}

static int case_queue_groups(th_server *s)
{
    enum { MEMBERS = 3, N = 300 };
    natsConnection *pub = NULL, *mc[MEMBERS] = {0};
    natsSubscription *ms[MEMBERS] = {0}, *plain = NULL;
    int seen[N] = {0};
    int per[MEMBERS] = {0};
    natsMsg *m = NULL;

    CHECK_NATS(th_connect(s, NULL, &pub));
    for (int i = 0; i < MEMBERS; i++) {
        CHECK_NATS(th_connect(s, NULL, &mc[i]));
        CHECK_NATS(natsConnection_QueueSubscribeSync(&ms[i], mc[i], "work", "workers"));
        CHECK_NATS(flush(mc[i]));
    }
    CHECK_NATS(natsConnection_SubscribeSync(&plain, pub, "work"));
    CHECK_NATS(flush(pub));
    for (int i = 0; i < N; i++) {
        char buf[16];
        snprintf(buf, sizeof(buf), "%d", i);
        CHECK_NATS(natsConnection_PublishString(pub, "work", buf));
    }
    CHECK_NATS(flush(pub));
    for (int i = 0; i < MEMBERS; i++)
        CHECK_NATS(flush(mc[i]));

    int total = 0;
    for (int i = 0; i < MEMBERS; i++) {
        while (pending_msgs(ms[i]) > 0) {
            CHECK_NATS(natsSubscription_NextMsg(&m, ms[i], 1000));
            int v = atoi(natsMsg_GetData(m));
            CHECK(v >= 0 && v < N);
            seen[v]++;
            per[i]++;
            total++;
            natsMsg_Destroy(m);
            m = NULL;
        }
    }
    for (int v = 0; v < N; v++)
        if (seen[v] != 1)
            FAIL("message %d delivered %d times to the queue group", v, seen[v]);
    CHECK(total == N);
    for (int i = 0; i < MEMBERS; i++)
        if (per[i] == 0)
            FAIL("queue member %d got no messages (%d/%d/%d)", i, per[0], per[1], per[2]);
    /* A plain subscriber on the same subject gets every message. */
    CHECK(pending_msgs(plain) == N);
done:
    natsMsg_Destroy(m);
    natsSubscription_Destroy(plain);
    for (int i = 0; i < MEMBERS; i++) {
        natsSubscription_Destroy(ms[i]);
        natsConnection_Destroy(mc[i]);
    }
    natsConnection_Destroy(pub);
    return 0;
}

static void on_request(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)sub;
    (void)closure;
    char buf[256];
    int n = snprintf(buf, sizeof(buf), "re:%.*s", natsMsg_GetDataLength(msg), natsMsg_GetData(msg));
    if (natsMsg_GetReply(msg))
        natsConnection_Publish(nc, natsMsg_GetReply(msg), buf, n);
    natsMsg_Destroy(msg);
}

static int request_loop(natsConnection *nc, int n)
{
    for (int i = 0; i < n; i++) {
        char q[32], want[40];
        snprintf(q, sizeof(q), "q%d", i);
        snprintf(want, sizeof(want), "re:q%d", i);
        natsMsg *r = NULL;
        natsStatus st = natsConnection_RequestString(&r, nc, "svc.echo", q, 5000);
        if (st != NATS_OK) {
            case_fail(__LINE__, "request %d -> %s (%s)", i, natsStatus_GetText(st), last_err());
            return -1;
        }
        int ok = natsMsg_GetDataLength(r) == (int)strlen(want) &&
                 memcmp(natsMsg_GetData(r), want, strlen(want)) == 0;
        natsMsg_Destroy(r);
        if (!ok) {
            case_fail(__LINE__, "request %d: wrong reply", i);
            return -1;
        }
    }
    return 0;
}

static int case_request_reply(th_server *s)
{
    natsConnection *req = NULL, *rep = NULL, *old = NULL;
    natsSubscription *sub = NULL;
    natsOptions *o = NULL;

    CHECK_NATS(th_connect(s, NULL, &rep));
    CHECK_NATS(natsConnection_Subscribe(&sub, rep, "svc.echo", on_request, NULL));
    CHECK_NATS(flush(rep));
    CHECK_NATS(th_connect(s, NULL, &req));
    if (request_loop(req, 20) != 0)
        goto done;
    /* Old request style: one inbox subscription per request. */
    o = th_opts_new(s);
    CHECK(o != NULL);
    CHECK_NATS(natsOptions_UseOldRequestStyle(o, true));
    CHECK_NATS(th_connect(s, o, &old));
    if (request_loop(old, 5) != 0)
        goto done;
done:
    natsOptions_Destroy(o);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(old);
    natsConnection_Destroy(req);
    natsConnection_Destroy(rep);
    return 0;
}

static int case_headers(th_server *s)
{
    natsConnection *a = NULL, *b = NULL;
    natsSubscription *sub = NULL;
    natsMsg *out = NULL, *in = NULL;
    const char **vals = NULL;
    int nvals = 0;
    const char *v = NULL;
    int fd_h = -1, fd_noh = -1;
    th_buf bh, bn;
    th_buf_init(&bh);
    th_buf_init(&bn);

    CHECK_NATS(th_connect(s, NULL, &a));
    CHECK_NATS(th_connect(s, NULL, &b));
    CHECK_NATS(natsConnection_SubscribeSync(&sub, a, "hdr"));
    CHECK_NATS(flush(a));
    /* Raw subscribers: one that accepts headers, one that does not. */
    fd_h = th_raw_session_ex(s->port, "CONNECT {\"verbose\":false,\"headers\":true}\r\n",
                             "SUB hdr 1\r\n", 0, 5000);
    fd_noh = th_raw_session_ex(s->port, "CONNECT {\"verbose\":false}\r\n", "SUB hdr 1\r\n", 0, 5000);
    CHECK(fd_h >= 0 && fd_noh >= 0);

    CHECK_NATS(natsMsg_Create(&out, "hdr", "rep", "payload", 7));
    CHECK_NATS(natsMsgHeader_Set(out, "Single", "one"));
    CHECK_NATS(natsMsgHeader_Add(out, "Multi", "v1"));
    CHECK_NATS(natsMsgHeader_Add(out, "Multi", "v2"));
    CHECK_NATS(natsMsgHeader_Set(out, "X-Mixed-Case", "Keep Me"));
    CHECK_NATS(natsConnection_PublishMsg(b, out));
    natsMsg_Destroy(out);
    out = NULL;
    /* Header-only message (no payload). */
    CHECK_NATS(natsMsg_Create(&out, "hdr", NULL, NULL, 0));
    CHECK_NATS(natsMsgHeader_Set(out, "Only", "header"));
    CHECK_NATS(natsConnection_PublishMsg(b, out));
    natsMsg_Destroy(out);
    out = NULL;
    CHECK_NATS(barrier(b, a));
    CHECK(pending_msgs(sub) == 2);

    CHECK_NATS(natsSubscription_NextMsg(&in, sub, 2000));
    CHECK(strcmp(natsMsg_GetSubject(in), "hdr") == 0);
    CHECK(natsMsg_GetReply(in) && strcmp(natsMsg_GetReply(in), "rep") == 0);
    CHECK(natsMsg_GetDataLength(in) == 7 && memcmp(natsMsg_GetData(in), "payload", 7) == 0);
    CHECK_NATS(natsMsgHeader_Get(in, "Single", &v));
    CHECK(strcmp(v, "one") == 0);
    CHECK_NATS(natsMsgHeader_Values(in, "Multi", &vals, &nvals));
    CHECK(nvals == 2);
    CHECK(strcmp(vals[0], "v1") == 0 && strcmp(vals[1], "v2") == 0);
    free((void *)vals);
    vals = NULL;
    CHECK_NATS(natsMsgHeader_Get(in, "X-Mixed-Case", &v));
    CHECK(strcmp(v, "Keep Me") == 0);
    natsMsg_Destroy(in);
    in = NULL;

    CHECK_NATS(natsSubscription_NextMsg(&in, sub, 2000));
    CHECK(natsMsg_GetDataLength(in) == 0);
    CHECK_NATS(natsMsgHeader_Get(in, "Only", &v));
    CHECK(strcmp(v, "header") == 0);

    /* On the wire: the header block is relayed as published, with both
     * Multi lines in order; a client without headers support gets the
     * payload only, as a plain MSG. */
    CHECK(raw_barrier(fd_h, &bh, 5000));
    CHECK(count_occurrences(&bh, "HMSG hdr 1 rep ") == 1);
    CHECK(count_occurrences(&bh, "Multi: v1\r\nMulti: v2\r\n") == 1);
    CHECK(count_occurrences(&bh, "X-Mixed-Case: Keep Me\r\n") == 1);
    CHECK(count_occurrences(&bh, "\r\n\r\npayload\r\n") == 1);
    CHECK(raw_barrier(fd_noh, &bn, 5000));
    CHECK_BYTES(&bn, "MSG hdr 1 rep 7\r\npayload\r\nMSG hdr 1 0\r\n\r\nPONG\r\n");
done:
    close_fd(&fd_h);
    close_fd(&fd_noh);
    th_buf_free(&bh);
    th_buf_free(&bn);
    free((void *)vals);
    natsMsg_Destroy(out);
    natsMsg_Destroy(in);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(a);
    natsConnection_Destroy(b);
    return 0;
}

static int case_no_responders(th_server *s)
{
    natsConnection *nc = NULL;
    natsMsg *r = NULL;
    CHECK_NATS(th_connect(s, NULL, &nc));
    /* With a subscriber nobody replies to, libnats would time out; with no
     * subscriber at all the server's 503 makes it fail with NO_RESPONDERS. */
    CHECK_STATUS(natsConnection_RequestString(&r, nc, "nobody.home", "hi", 10000),
                 NATS_NO_RESPONDERS);
    CHECK_STATUS(natsConnection_RequestString(&r, nc, "nobody.else", "", 10000),
                 NATS_NO_RESPONDERS);
    CHECK_NATS(flush(nc));
done:
    natsMsg_Destroy(r);
    natsConnection_Destroy(nc);
    return 0;
}

static int case_max_payload(th_server *s)
{
    natsConnection *nc = NULL, *other = NULL;
    natsSubscription *sub = NULL;
    natsMsg *m = NULL;
    char *big = NULL;
    int fd = -1;
    th_buf b;
    th_buf_init(&b);

    CHECK_NATS(th_connect(s, NULL, &nc));
    CHECK_NATS(th_connect(s, NULL, &other));
    int64_t max = natsConnection_GetMaxPayload(nc);
    CHECK(max == 1048576);
    big = malloc((size_t)max + 1);
    CHECK(big != NULL);
    memset(big, 'p', (size_t)max + 1);
    CHECK_NATS(natsConnection_SubscribeSync(&sub, other, "big"));
    CHECK_NATS(flush(other));
    /* The client refuses locally. */
    CHECK_STATUS(natsConnection_Publish(nc, "big", big, (int)max + 1), NATS_MAX_PAYLOAD);
    /* Exactly max_payload is fine. */
    CHECK_NATS(natsConnection_Publish(nc, "big", big, (int)max));
    CHECK_NATS(barrier(nc, other));
    CHECK(pending_msgs(sub) == 1);
    CHECK_NATS(natsSubscription_NextMsg(&m, sub, 2000));
    CHECK(natsMsg_GetDataLength(m) == (int)max);

    /* Raw: the server rejects an oversize PUB as soon as it sees the size. */
    fd = th_raw_session(s->port, "CONNECT {\"verbose\":false}\r\n", 5000);
    CHECK(fd >= 0);
    CHECK(th_raw_write_str(fd, "PUB big 1048577\r\n") == 0);
    CHECK(th_raw_read(fd, &b, NULL, 3000, 5000) == 1);
    CHECK_BYTES(&b, "-ERR 'Maximum Payload Violation'\r\n");
    CHECK(b.closed);
    close_fd(&fd);
    th_buf_reset(&b);

    /* Same with HPUB, where the total size counts. */
    fd = th_raw_session(s->port, "CONNECT {\"verbose\":false,\"headers\":true}\r\n", 5000);
    CHECK(fd >= 0);
    CHECK(th_raw_write_str(fd, "HPUB big 12 1048577\r\n") == 0);
    CHECK(th_raw_read(fd, &b, NULL, 3000, 5000) == 1);
    CHECK_BYTES(&b, "-ERR 'Maximum Payload Violation'\r\n");

    /* Everyone else keeps working. */
    CHECK_NATS(natsConnection_PublishString(nc, "big", "small"));
    CHECK_NATS(barrier(nc, other));
    CHECK(pending_msgs(sub) == 1);
done:
    close_fd(&fd);
    th_buf_free(&b);
    free(big);
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    natsConnection_Destroy(other);
    return 0;
}

static int case_large_payload(th_server *s)
{
    natsConnection *a = NULL, *b = NULL;
    natsSubscription *sub = NULL;
    natsMsg *m = NULL;
    const int size = 1024 * 1024 - 1024;
    char *data = malloc((size_t)size);
    CHECK(data != NULL);
    for (int i = 0; i < size; i++)
        data[i] = (char)((i * 31 + 7) & 0xff);
    CHECK_NATS(th_connect(s, NULL, &a));
    CHECK_NATS(th_connect(s, NULL, &b));
    CHECK_NATS(natsConnection_SubscribeSync(&sub, a, "large"));
    CHECK_NATS(flush(a));
    for (int i = 0; i < 3; i++)
        CHECK_NATS(natsConnection_Publish(b, "large", data, size));
    CHECK_NATS(barrier(b, a));
    CHECK(pending_msgs(sub) == 3);
    for (int i = 0; i < 3; i++) {
        CHECK_NATS(natsSubscription_NextMsg(&m, sub, 2000));
        CHECK(natsMsg_GetDataLength(m) == size);
        CHECK(memcmp(natsMsg_GetData(m), data, (size_t)size) == 0);
        natsMsg_Destroy(m);
        m = NULL;
    }
done:
    free(data);
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(a);
    natsConnection_Destroy(b);
    return 0;
}

static int case_autounsubscribe(th_server *s)
{
    natsConnection *a = NULL, *b = NULL;
    natsSubscription *sub = NULL, *all = NULL;
    natsMsg *m = NULL;
    int fd = -1;
    th_buf buf;
    th_buf_init(&buf);

    CHECK_NATS(th_connect(s, NULL, &a));
    CHECK_NATS(th_connect(s, NULL, &b));
    CHECK_NATS(natsConnection_SubscribeSync(&sub, a, "auto"));
    CHECK_NATS(natsSubscription_AutoUnsubscribe(sub, 5));
    CHECK_NATS(natsConnection_SubscribeSync(&all, a, "auto"));
    CHECK_NATS(flush(a));
    /* The server enforces UNSUB <sid> <max> too: check it on a raw socket. */
    fd = th_raw_session_ex(s->port, "CONNECT {\"verbose\":false}\r\n", "SUB auto 9\r\nUNSUB 9 5\r\n",
                           0, 5000);
    CHECK(fd >= 0);
    for (int i = 0; i < 10; i++)
        CHECK_NATS(natsConnection_PublishString(b, "auto", "x"));
    CHECK_NATS(barrier(b, a));
    CHECK(pending_msgs(all) == 10);
    int got = 0;
    for (int i = 0; i < 10; i++) {
        if (natsSubscription_NextMsg(&m, sub, 200) != NATS_OK)
            break;
        natsMsg_Destroy(m);
        m = NULL;
        got++;
    }
    if (got != 5)
        FAIL("auto-unsubscribe(5): received %d of 10, want 5", got);
    CHECK(raw_barrier(fd, &buf, 5000));
    CHECK(count_occurrences(&buf, "MSG auto 9 1\r\nx\r\n") == 5);
    CHECK(count_occurrences(&buf, "MSG ") == 5);
done:
    close_fd(&fd);
    th_buf_free(&buf);
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
    natsSubscription_Destroy(all);
    natsConnection_Destroy(a);
    natsConnection_Destroy(b);
    return 0;
}

static int case_echo_off(th_server *s)
{
    natsConnection *a = NULL, *b = NULL;
    natsSubscription *sa = NULL, *sb = NULL;
    natsOptions *o = NULL;
    natsMsg *m = NULL;

    o = th_opts_new(s);
    CHECK(o != NULL);
    CHECK_NATS(natsOptions_SetNoEcho(o, true));
    CHECK_NATS(th_connect(s, o, &a));
    CHECK_NATS(th_connect(s, NULL, &b));
    CHECK_NATS(natsConnection_SubscribeSync(&sa, a, "echo"));
    CHECK_NATS(natsConnection_SubscribeSync(&sb, b, "echo"));
    CHECK_NATS(flush(a));
    CHECK_NATS(flush(b));
    CHECK_NATS(natsConnection_PublishString(a, "echo", "from-a"));
    CHECK_NATS(natsConnection_PublishString(b, "echo", "from-b"));
    CHECK_NATS(flush(a));
    CHECK_NATS(flush(b));
    CHECK_NATS(flush(a));
    CHECK(pending_msgs(sa) == 1);
    CHECK(pending_msgs(sb) == 2);
    CHECK_NATS(natsSubscription_NextMsg(&m, sa, 1000));
    CHECK(natsMsg_GetDataLength(m) == 6 && memcmp(natsMsg_GetData(m), "from-b", 6) == 0);
done:
    natsMsg_Destroy(m);
    natsOptions_Destroy(o);
    natsSubscription_Destroy(sa);
    natsSubscription_Destroy(sb);
    natsConnection_Destroy(a);
    natsConnection_Destroy(b);
    return 0;
}

static int case_ping(th_server *s)
{
    natsConnection *nc = NULL, *fast = NULL;
    natsOptions *o = NULL;
    int fd = -1;
    th_buf b;
    th_buf_init(&b);

    CHECK_NATS(th_connect(s, NULL, &nc));
    CHECK_NATS(natsConnection_Flush(nc));
    for (int i = 0; i < 100; i++)
        CHECK_NATS(natsConnection_FlushTimeout(nc, 5000));

    /* A client that pings every 50 ms and tolerates 10 unanswered: it stays
     * connected only if the server answers its PINGs. */
    o = th_opts_new(s);
    CHECK(o != NULL);
    CHECK_NATS(natsOptions_SetPingInterval(o, 50));
    CHECK_NATS(natsOptions_SetMaxPingsOut(o, 10));
    CHECK_NATS(th_connect(s, o, &fast));
    th_sleep_ms(700);
    CHECK(natsConnection_Status(fast) == NATS_CONN_STATUS_CONNECTED);
    CHECK_NATS(flush(fast));

    /* Raw: several PINGs in one write get as many PONGs, in order. */
    fd = th_raw_session(s->port, "CONNECT {\"verbose\":false}\r\n", 5000);
    CHECK(fd >= 0);
    CHECK(th_raw_write_str(fd, "PING\r\nPING\r\nPING\r\n") == 0);
    CHECK(th_raw_read(fd, &b, "PONG\r\nPONG\r\nPONG\r\n", 100, 5000) == 2);
    CHECK_BYTES(&b, "PONG\r\nPONG\r\nPONG\r\n");
    /* An unsolicited PONG is accepted silently. */
    th_buf_reset(&b);
    CHECK(th_raw_write_str(fd, "PONG\r\n") == 0);
    CHECK(raw_barrier(fd, &b, 5000));
    CHECK_BYTES(&b, "PONG\r\n");
done:
    close_fd(&fd);
    th_buf_free(&b);
    natsOptions_Destroy(o);
    natsConnection_Destroy(fast);
    natsConnection_Destroy(nc);
    return 0;
}

/* nats-server pings a new client about 2 s after CONNECT, then every 2 min.
 * The case waits (bounded) for the server's PING, answers it, and checks
 * the connection keeps working. A server that does not ping that early is
 * only noted: the 2 min default interval is too long to wait for. */
static int case_server_ping(th_server *s)
{
    int fd = -1;
    th_buf b;
    th_buf_init(&b);
    fd = th_raw_session(s->port, "CONNECT {\"verbose\":false}\r\n", 5000);
    CHECK(fd >= 0);
    if (!th_raw_read_contains(fd, &b, "PING\r\n", 4000)) {
        CHECK(!b.closed);
        printf("  note: no server PING within 4 s (nats-server sends its first at ~2 s)\n");
        goto done;
    }
    CHECK_BYTES(&b, "PING\r\n");
    th_buf_reset(&b);
    CHECK(th_raw_write_str(fd, "PONG\r\n") == 0);
    CHECK(th_raw_write_str(fd, "SUB p 1\r\nPUB p 2\r\nok\r\n") == 0);
    CHECK(raw_barrier(fd, &b, 5000));
    CHECK_BYTES(&b, "MSG p 1 2\r\nok\r\nPONG\r\n");
done:
    close_fd(&fd);
    th_buf_free(&b);
    return 0;
}

/* A raw subscriber never reads while ~100 MiB are published to it: the
 * server must drop it (64 MiB pending limit, or write deadline) and keep
 * serving the publisher. */
static int case_slow_consumer_server(th_server *s)
{
    enum { MSG_SIZE = 64 * 1024, MAX_MSGS = 1600 }; /* 100 MiB */
    natsConnection *pub = NULL;
    natsSubscription *check = NULL;
    natsMsg *m = NULL;
    char *payload = NULL;
    int fd = -1;
    size_t drained = 0;

    fd = th_raw_session_ex(s->port, "CONNECT {\"verbose\":false}\r\n", "SUB slow 1\r\n", 4096, 5000);
    CHECK(fd >= 0);
    CHECK_NATS(th_connect(s, NULL, &pub));
    payload = malloc(MSG_SIZE);
    CHECK(payload != NULL);
    memset(payload, 's', MSG_SIZE);
    int64_t t0 = th_now_ms();
    for (int i = 0; i < MAX_MSGS; i++) {
        CHECK_NATS(natsConnection_Publish(pub, "slow", payload, MSG_SIZE));
        /* Flush now and then so the publisher's own buffers stay small. */
        if (i % 100 == 99)
            CHECK_NATS(natsConnection_FlushTimeout(pub, 30000));
    }
    CHECK_NATS(natsConnection_FlushTimeout(pub, 30000));
    int64_t t1 = th_now_ms();

    /* Now read what the server had managed to send: it must end in a close
     * well before the whole 100 MiB. */
    int closed = drain_until_closed(fd, &drained, 3000, 30000);
    if (!closed)
        FAIL("slow raw subscriber was not disconnected (drained %zu bytes of %d)", drained,
             MSG_SIZE * MAX_MSGS);
    CHECK(drained < (size_t)MSG_SIZE * MAX_MSGS);
    printf("  published %d MiB in %lld ms; slow client received %zu bytes before close\n",
           MSG_SIZE * MAX_MSGS >> 20, (long long)(t1 - t0), drained);

    /* The publisher is healthy. */
    CHECK(natsConnection_Status(pub) == NATS_CONN_STATUS_CONNECTED);
    CHECK_NATS(natsConnection_SubscribeSync(&check, pub, "after.slow"));
    CHECK_NATS(flush(pub));
    CHECK_NATS(natsConnection_PublishString(pub, "after.slow", "alive"));
    CHECK_NATS(flush(pub));
    CHECK_NATS(natsSubscription_NextMsg(&m, check, 2000));
done:
    close_fd(&fd);
    free(payload);
    natsMsg_Destroy(m);
    natsSubscription_Destroy(check);
    natsConnection_Destroy(pub);
    return 0;
}

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int release;
    int in_cb;
    int delivered;
    int slow_errors;
} slow_state;

/* Static: libnats threads may still touch it after the case returned. */
static slow_state g_slow = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0};

static void slow_cb(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    slow_state *st = closure;
    natsMsg_Destroy(msg);
    int64_t deadline = th_now_ms() + 10000; /* bounded even if the test bails out */
    pthread_mutex_lock(&st->mu);
    st->delivered++;
    st->in_cb++;
    pthread_cond_broadcast(&st->cv);
    while (!st->release && th_now_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&st->cv, &st->mu, &ts);
    }
    st->in_cb--;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

static void slow_err(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    (void)nc;
    (void)sub;
    slow_state *st = closure;
    pthread_mutex_lock(&st->mu);
    if (err == NATS_SLOW_CONSUMER)
        st->slow_errors++;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

/* Client-side slow consumer: libnats drops beyond the pending limits and
 * reports NATS_SLOW_CONSUMER; the server just has to deliver. */
static int case_slow_consumer_client(th_server *s)
{
    slow_state *st = &g_slow;
    pthread_mutex_lock(&st->mu);
    st->release = 0;
    st->delivered = 0;
    st->slow_errors = 0;
    pthread_mutex_unlock(&st->mu);
    natsConnection *sc = NULL, *pub = NULL;
    natsSubscription *sub = NULL;
    natsOptions *o = NULL;
    int64_t dropped = 0;

    o = th_opts_new(s);
    CHECK(o != NULL);
    CHECK_NATS(natsOptions_SetErrorHandler(o, slow_err, st));
    CHECK_NATS(th_connect(s, o, &sc));
    CHECK_NATS(th_connect(s, NULL, &pub));
    CHECK_NATS(natsConnection_Subscribe(&sub, sc, "sc", slow_cb, st));
    CHECK_NATS(natsSubscription_SetPendingLimits(sub, 10, 1024 * 1024));
    CHECK_NATS(flush(sc));
    for (int i = 0; i < 200; i++)
        CHECK_NATS(natsConnection_PublishString(pub, "sc", "payload"));
    CHECK_NATS(barrier(pub, sc));
    CHECK_NATS(natsSubscription_GetDropped(sub, &dropped));
    CHECK(dropped > 0);
    /* The async error callback runs on another thread: wait for it, bounded. */
    {
        int64_t deadline = th_now_ms() + 5000;
        pthread_mutex_lock(&st->mu);
        while (st->slow_errors == 0 && th_now_ms() < deadline) {
            pthread_mutex_unlock(&st->mu);
            th_sleep_ms(10);
            pthread_mutex_lock(&st->mu);
        }
        int errs = st->slow_errors;
        pthread_mutex_unlock(&st->mu);
        CHECK(errs > 0);
    }
done:
    /* Let the blocked callback return (bounded) before tearing down. */
    pthread_mutex_lock(&st->mu);
    st->release = 1;
    pthread_cond_broadcast(&st->cv);
    {
        int64_t deadline = th_now_ms() + 5000;
        while (st->in_cb > 0 && th_now_ms() < deadline) {
            pthread_mutex_unlock(&st->mu);
            th_sleep_ms(5);
            pthread_mutex_lock(&st->mu);
        }
    }
    pthread_mutex_unlock(&st->mu);
    if (sub)
        natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(sc);
    natsConnection_Destroy(pub);
    natsOptions_Destroy(o);
    return 0;
}

/* Malformed input on raw connections: the offender gets the right -ERR (or
 * is closed), everybody else keeps being served. */
static char g_long_line[6000];

typedef struct {
    const char *name;
    const char *connect; /* CONNECT line sent first, NULL = none */
    const char *input;
    const char *expect;  /* exact bytes the offender receives; NULL = nothing or one -ERR line */
    int closes;
} bad_input;

static int case_malformed(th_server *s)
{
    const char *plain = "CONNECT {\"verbose\":false}\r\n";
    bad_input bad[] = {
        {"unknown op", plain, "FOO bar\r\n", "-ERR 'Unknown Protocol Operation'\r\n", 1},
        {"payload longer than size", plain, "PUB x 2\r\nhello\r\n",
         "-ERR 'Unknown Protocol Operation'\r\n", 1},
        {"client sends MSG", plain, "MSG x 1 1\r\na\r\n", "-ERR 'Unknown Protocol Operation'\r\n", 1},
        {"binary garbage", plain, "\x01\x02\xff\xfe\r\n", "-ERR 'Unknown Protocol Operation'\r\n", 1},
        {"empty line", plain, "\r\n", "-ERR 'Unknown Protocol Operation'\r\n", 1},
        {"oversize PUB", plain, "PUB x 1048577\r\n", "-ERR 'Maximum Payload Violation'\r\n", 1},
        {"control line too long", plain, g_long_line, "-ERR 'maximum control line exceeded'\r\n", 1},
        {"non-numeric size", plain, "PUB x abc\r\n", NULL, 1},
        {"negative size", plain, "PUB x -1\r\n", NULL, 1},
        {"too many PUB args", plain, "PUB a b c d 1\r\n", NULL, 1},
        {"SUB without sid", plain, "SUB x\r\n", NULL, 1},
        {"HPUB header larger than total", "CONNECT {\"verbose\":false,\"headers\":true}\r\n",
         "HPUB x 20 10\r\n", NULL, 1},
        {"HPUB without headers in CONNECT", plain, "HPUB x 12 14\r\nNATS/1.0\r\n\r\nhi\r\n", NULL, 1},
        {"invalid publish subject", "CONNECT {\"verbose\":false,\"pedantic\":true}\r\n",
         "PUB a..b 1\r\nx\r\nPING\r\n", "-ERR 'Invalid Publish Subject'\r\nPONG\r\n", 0},
        {"invalid subscribe subject", plain, "SUB a..b 1\r\nPING\r\n",
         "-ERR 'Invalid Subject'\r\nPONG\r\n", 0},
        {"bad CONNECT JSON", NULL, "CONNECT {bad json\r\n", NULL, 1},
        {"CONNECT protocol 2", NULL, "CONNECT {\"verbose\":false,\"protocol\":2}\r\n",
         "-ERR 'invalid client protocol'\r\n", 1},
        {"no_responders without headers", NULL,
         "CONNECT {\"verbose\":false,\"no_responders\":true}\r\n",
         "-ERR 'no responders requires headers support'\r\n", 1},
    };
    natsConnection *a = NULL, *b = NULL;
    natsSubscription *sub = NULL;
    natsMsg *m = NULL;
    int fd = -1;
    char info[8192];
    th_buf buf;
    th_buf_init(&buf);

    CHECK_NATS(th_connect(s, NULL, &a));
    CHECK_NATS(th_connect(s, NULL, &b));
    CHECK_NATS(natsConnection_SubscribeSync(&sub, a, "healthy"));
    CHECK_NATS(flush(a));

    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        bad_input *c = &bad[i];
        th_buf_reset(&buf);
        fd = th_raw_connect(s->port, 0, 5000);
        CHECK(fd >= 0);
        CHECK(th_raw_read_info(fd, info, sizeof(info), &buf, 5000) > 0);
        CHECK(buf.len == 0);
        if (c->connect)
            CHECK(th_raw_write_str(fd, c->connect) == 0);
        CHECK(th_raw_write_str(fd, c->input) == 0);
        int r = th_raw_read(fd, &buf, c->closes ? NULL : "PONG\r\n", c->closes ? 3000 : 50, 5000);
        if (c->closes && r != 1)
            FAIL("[%s] connection not closed by the server", c->name);
        if (!c->closes && (r != 2 || buf.closed))
            FAIL("[%s] connection closed or no PONG", c->name);
        int as_expected;
        if (c->expect)
            as_expected = bytes_equal(&buf, c->expect);
        else /* nothing, or exactly one -ERR line */
            as_expected = buf.len == 0 ||
                          (buf.len > 8 && strncmp(buf.data, "-ERR '", 6) == 0 &&
                           strstr(buf.data, "'\r\n") == buf.data + buf.len - 3);
        if (!as_expected) {
            char *g = th_escape(buf.data, buf.len, 300);
            case_fail(__LINE__, "[%s] got \"%s\", want \"%s\"", c->name, g ? g : "",
                      c->expect ? c->expect : "nothing or one -ERR line");
            free(g);
            goto done;
        }
        close_fd(&fd);
        /* Others are still served. */
        CHECK(th_server_alive(s));
        CHECK_NATS(natsConnection_PublishString(b, "healthy", c->name));
        CHECK_NATS(barrier(b, a));
        CHECK_NATS(natsSubscription_NextMsg(&m, sub, 2000));
        CHECK(strcmp(natsMsg_GetData(m), c->name) == 0);
        natsMsg_Destroy(m);
        m = NULL;
    }
done:
    close_fd(&fd);
    th_buf_free(&buf);
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(a);
    natsConnection_Destroy(b);
    return 0;
}

static int auth_failure_ok(natsStatus st)
{
    return st == NATS_NOT_PERMITTED || st == NATS_CONNECTION_AUTH_FAILED;
}

/* Connect must fail with an authorization error mentioning the server's text. */
#define CHECK_AUTH_FAILS(opts)                                                                   \
    do {                                                                                         \
        natsConnection *_nc = NULL;                                                              \
        natsStatus _st = th_connect(s, (opts), &_nc);                                            \
        const char *_t = last_err();                                                             \
        if (_nc)                                                                                 \
            natsConnection_Destroy(_nc);                                                         \
        if (!auth_failure_ok(_st))                                                               \
            FAIL("connect without valid credentials -> %s (%s), want an auth error",             \
                 natsStatus_GetText(_st), _t);                                                   \
        if (!strcasestr(_t, "Authorization Violation"))                                          \
            FAIL("auth error text \"%s\" lacks 'Authorization Violation'", _t);                  \
    } while (0)

static int roundtrip(natsConnection *nc)
{
    natsSubscription *sub = NULL;
    natsMsg *m = NULL;
    int ok = natsConnection_SubscribeSync(&sub, nc, "rt") == NATS_OK &&
             natsConnection_PublishString(nc, "rt", "x") == NATS_OK && flush(nc) == NATS_OK &&
             natsSubscription_NextMsg(&m, sub, 2000) == NATS_OK;
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
    return ok;
}

static int raw_auth_violation(int port, const char *first)
{
    int fd = th_raw_connect(port, 0, 5000);
    char info[8192];
    th_buf b;
    th_buf_init(&b);
    int ok = fd >= 0 && th_raw_read_info(fd, info, sizeof(info), &b, 5000) > 0 &&
             strstr(info, "\"auth_required\":true") && th_raw_write_str(fd, first) == 0 &&
             th_raw_read(fd, &b, NULL, 3000, 5000) == 1 &&
             bytes_equal(&b, "-ERR 'Authorization Violation'\r\n");
    if (!ok) {
        char *g = th_escape(b.data ? b.data : "", b.len, 300);
        fprintf(stderr, "  raw auth: sent \"%.40s\", got \"%s\"%s\n", first, g,
                b.closed ? " [closed]" : "");
        free(g);
    }
    if (fd >= 0)
        close(fd);
    th_buf_free(&b);
    return ok;
}

static int case_auth_user(th_server *s)
{
    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    char url[128];

    CHECK_AUTH_FAILS(NULL);
    o = th_opts_new(s);
    CHECK(o != NULL);
    CHECK_NATS(natsOptions_SetUserInfo(o, "a", "wrong"));
    CHECK_AUTH_FAILS(o);
    CHECK_NATS(natsOptions_SetUserInfo(o, "a", "b"));
    CHECK_NATS(th_connect(s, o, &nc));
    CHECK(roundtrip(nc));
    natsConnection_Destroy(nc);
    nc = NULL;
    snprintf(url, sizeof(url), "nats://a:b@127.0.0.1:%d", s->port);
    CHECK_NATS(natsConnection_ConnectTo(&nc, url));
    CHECK(roundtrip(nc));

    CHECK(raw_auth_violation(s->port, "CONNECT {\"verbose\":false}\r\nPING\r\n"));
    CHECK(raw_auth_violation(s->port, "CONNECT {\"verbose\":false,\"user\":\"a\",\"pass\":\"x\"}\r\n"));
    CHECK(raw_auth_violation(s->port, "PING\r\n"));
    CHECK(raw_auth_violation(s->port, "SUB foo 1\r\n"));
done:
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    return 0;
}

static int case_auth_token(th_server *s)
{
    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    char url[128];

    CHECK_AUTH_FAILS(NULL);
    o = th_opts_new(s);
    CHECK(o != NULL);
    CHECK_NATS(natsOptions_SetToken(o, "nope"));
    CHECK_AUTH_FAILS(o);
    CHECK_NATS(natsOptions_SetToken(o, "tok"));
    CHECK_NATS(th_connect(s, o, &nc));
    CHECK(roundtrip(nc));
    natsConnection_Destroy(nc);
    nc = NULL;
    snprintf(url, sizeof(url), "nats://tok@127.0.0.1:%d", s->port);
    CHECK_NATS(natsConnection_ConnectTo(&nc, url));
    CHECK(roundtrip(nc));
    CHECK(raw_auth_violation(s->port, "CONNECT {\"verbose\":false,\"auth_token\":\"bad\"}\r\n"));
    CHECK(raw_auth_violation(s->port, "PING\r\n"));
done:
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    return 0;
}

static int case_subject_validity(th_server *s)
{
    natsConnection *nc = NULL;
    int fd = -1;
    th_buf b;
    th_buf_init(&b);

    /* The client library refuses obviously bad subjects itself. */
    CHECK_NATS(th_connect(s, NULL, &nc));
    CHECK_STATUS(natsConnection_PublishString(nc, "", "x"), NATS_INVALID_SUBJECT);

    fd = th_raw_session_ex(s->port, "CONNECT {\"verbose\":false,\"pedantic\":true}\r\n",
                           "SUB > 1\r\n", 0, 5000);
    CHECK(fd >= 0);
    /* Empty tokens: error, the message goes nowhere, connection stays. */
    const char *bad[] = {"a..b", ".a", "a.", "."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        char line[64];
        th_buf_reset(&b);
        snprintf(line, sizeof(line), "PUB %s 1\r\nx\r\n", bad[i]);
        CHECK(th_raw_write_str(fd, line) == 0);
        CHECK(raw_barrier(fd, &b, 5000));
        if (!bytes_equal(&b, "-ERR 'Invalid Publish Subject'\r\nPONG\r\n")) {
            char *g = th_escape(b.data, b.len, 200);
            case_fail(__LINE__, "PUB %s with pedantic: got \"%s\"", bad[i], g ? g : "");
            free(g);
            goto done;
        }
    }
    /* Wildcards are not valid in a publish subject: error (nats-server still
     * routes those, see test_wire's pedantic cases). */
    th_buf_reset(&b);
    CHECK(th_raw_write_str(fd, "PUB a.* 1\r\nx\r\n") == 0);
    CHECK(raw_barrier(fd, &b, 5000));
    CHECK(strncmp(b.data, "-ERR 'Invalid Publish Subject'\r\n", 32) == 0);
    /* Invalid subscription subjects. */
    th_buf_reset(&b);
    CHECK(th_raw_write_str(fd, "SUB a..b 2\r\nSUB a.>.b 3\r\nSUB .x 4\r\n") == 0);
    CHECK(raw_barrier(fd, &b, 5000));
    CHECK_BYTES(&b, "-ERR 'Invalid Subject'\r\n-ERR 'Invalid Subject'\r\n"
                    "-ERR 'Invalid Subject'\r\nPONG\r\n");
    /* Still a working connection. */
    th_buf_reset(&b);
    CHECK(th_raw_write_str(fd, "PUB ok.subject 2\r\nhi\r\n") == 0);
    CHECK(raw_barrier(fd, &b, 5000));
    CHECK_BYTES(&b, "MSG ok.subject 1 2\r\nhi\r\nPONG\r\n");
done:
    close_fd(&fd);
    th_buf_free(&b);
    natsConnection_Destroy(nc);
    return 0;
}

static int case_ordered(th_server *s)
{
    enum { N = 10000 };
    natsConnection *a = NULL, *b = NULL;
    natsSubscription *sub = NULL;
    natsMsg *m = NULL;

    CHECK_NATS(th_connect(s, NULL, &a));
    CHECK_NATS(th_connect(s, NULL, &b));
    CHECK_NATS(natsConnection_SubscribeSync(&sub, a, "seq"));
    CHECK_NATS(flush(a));
    for (int i = 0; i < N; i++) {
        char buf[16];
        int n = snprintf(buf, sizeof(buf), "%d", i);
        CHECK_NATS(natsConnection_Publish(b, "seq", buf, n));
    }
    CHECK_NATS(barrier(b, a));
    CHECK(pending_msgs(sub) == N);
    for (int i = 0; i < N; i++) {
        CHECK_NATS(natsSubscription_NextMsg(&m, sub, 2000));
        char want[16];
        int n = snprintf(want, sizeof(want), "%d", i);
        if (natsMsg_GetDataLength(m) != n || memcmp(natsMsg_GetData(m), want, (size_t)n) != 0)
            FAIL("message %d out of order: got \"%.*s\"", i, natsMsg_GetDataLength(m),
                 natsMsg_GetData(m));
        natsMsg_Destroy(m);
        m = NULL;
    }
done:
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(a);
    natsConnection_Destroy(b);
    return 0;
}

static int case_fanout(th_server *s)
{
    enum { SUBS = 5, N = 200 };
    natsConnection *pub = NULL, *c[SUBS] = {0};
    natsSubscription *sub[SUBS] = {0};
    CHECK_NATS(th_connect(s, NULL, &pub));
    for (int i = 0; i < SUBS; i++) {
        CHECK_NATS(th_connect(s, NULL, &c[i]));
        CHECK_NATS(natsConnection_SubscribeSync(&sub[i], c[i], "fan.out"));
        CHECK_NATS(flush(c[i]));
    }
    for (int i = 0; i < N; i++)
        CHECK_NATS(natsConnection_PublishString(pub, "fan.out", "x"));
    CHECK_NATS(flush(pub));
    for (int i = 0; i < SUBS; i++) {
        CHECK_NATS(flush(c[i]));
        CHECK(pending_msgs(sub[i]) == N);
    }
done:
    for (int i = 0; i < SUBS; i++) {
        natsSubscription_Destroy(sub[i]);
        natsConnection_Destroy(c[i]);
    }
    natsConnection_Destroy(pub);
    return 0;
}

static void on_async(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    natsMsg_Destroy(msg);
    counter_add(closure, 1);
}

static int case_async_subscribe(th_server *s)
{
    natsConnection *a = NULL, *b = NULL;
    natsSubscription *sub = NULL;
    static counter_t cnt; /* static: the delivery thread may outlive a failed case */
    counter_init(&cnt);
    CHECK_NATS(th_connect(s, NULL, &a));
    CHECK_NATS(th_connect(s, NULL, &b));
    CHECK_NATS(natsConnection_Subscribe(&sub, a, "async", on_async, &cnt));
    CHECK_NATS(flush(a));
    for (int i = 0; i < 1000; i++)
        CHECK_NATS(natsConnection_PublishString(b, "async", "x"));
    CHECK_NATS(barrier(b, a));
    int got = counter_wait(&cnt, 1000, 10000);
    if (got != 1000)
        FAIL("async subscriber got %d of 1000", got);
done:
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(a);
    natsConnection_Destroy(b);
    return 0;
}

static int case_verbose_pedantic_client(th_server *s)
{
    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    o = th_opts_new(s);
    CHECK(o != NULL);
    CHECK_NATS(natsOptions_SetVerbose(o, true));
    CHECK_NATS(natsOptions_SetPedantic(o, true));
    CHECK_NATS(th_connect(s, o, &nc));
    CHECK(roundtrip(nc));
    CHECK(roundtrip(nc));
done:
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    return 0;
}

static int case_server_info(th_server *s)
{
    natsConnection *nc = NULL;
    char id[256] = "";
    uint64_t cid = 0;
    int fd = -1;
    char info[8192];
    th_buf b;
    th_buf_init(&b);

    CHECK_NATS(th_connect(s, NULL, &nc));
    CHECK_NATS(natsConnection_GetConnectedServerId(nc, id, sizeof(id)));
    CHECK(id[0] != 0);
    CHECK_NATS(natsConnection_GetClientID(nc, &cid));
    CHECK(cid > 0);
    CHECK(natsConnection_GetMaxPayload(nc) == 1048576);

    fd = th_raw_connect(s->port, 0, 5000);
    CHECK(fd >= 0);
    CHECK(th_raw_read_info(fd, info, sizeof(info), &b, 5000) > 0);
    CHECK(strncmp(info, "INFO {", 6) == 0);
    const char *keys[] = {"\"server_id\":\"", "\"server_name\":\"", "\"version\":\"", "\"proto\":1",
                          "\"headers\":true", "\"max_payload\":1048576", "\"host\":\"",
                          "\"port\":", "\"client_id\":", "\"client_ip\":\""};
    for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
        if (!strstr(info, keys[i]))
            FAIL("INFO lacks %s: %s", keys[i], info);
    CHECK(strstr(info, "\"auth_required\"") == NULL);
    /* INFO is the only thing sent before the client speaks. */
    CHECK(b.len == 0);
done:
    close_fd(&fd);
    th_buf_free(&b);
    natsConnection_Destroy(nc);
    return 0;
}

/* ---- runner ------------------------------------------------------------- */

typedef struct {
    const char *name;
    int (*fn)(th_server *);
    const char *args[6];
} tcase;

static const tcase CASES[] = {
    {"server_info", case_server_info, {NULL}},
    {"pubsub", case_pubsub, {NULL}},
    {"unsubscribe", case_unsubscribe, {NULL}},
    {"wildcards", case_wildcards, {NULL}},
    {"queue_groups", case_queue_groups, {NULL}},
    {"fanout", case_fanout, {NULL}},
    {"async_subscribe", case_async_subscribe, {NULL}},
    {"request_reply", case_request_reply, {NULL}},
    {"headers", case_headers, {NULL}},
    {"no_responders", case_no_responders, {NULL}},
    {"max_payload", case_max_payload, {NULL}},
    {"large_payload", case_large_payload, {NULL}},
    {"autounsubscribe", case_autounsubscribe, {NULL}},
    {"echo_off", case_echo_off, {NULL}},
    {"ping", case_ping, {NULL}},
    {"server_ping", case_server_ping, {NULL}},
    {"verbose_pedantic_client", case_verbose_pedantic_client, {NULL}},
    {"ordered_10k", case_ordered, {NULL}},
    {"subject_validity", case_subject_validity, {NULL}},
    {"malformed", case_malformed, {NULL}},
    {"slow_consumer_server", case_slow_consumer_server, {NULL}},
    {"slow_consumer_client", case_slow_consumer_client, {NULL}},
    {"auth_user", case_auth_user, {"--user", "a", "--pass", "b", NULL}},
    {"auth_token", case_auth_token, {"--auth", "tok", NULL}},
};

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    snprintf(g_long_line, sizeof(g_long_line), "PUB x ");
    memset(g_long_line + 6, 'a', 5000);
    memcpy(g_long_line + 5006, "\r\n", 3);

    if (nats_Open(-1) != NATS_OK) {
        fprintf(stderr, "nats_Open failed\n");
        return 2;
    }
    printf("interop: server binary %s\n", th_server_binary());
    int passed = 0, failed = 0;
    int64_t t_all = th_now_ms();
    for (size_t i = 0; i < sizeof(CASES) / sizeof(*CASES); i++) {
        const tcase *c = &CASES[i];
        if (filter && !strstr(c->name, filter))
            continue;
        g_case_failed = 0;
        g_case_name = c->name;
        th_server srv;
        int64_t t0 = th_now_ms();
        if (th_server_start(&srv, NULL, c->args) != 0) {
            printf("FAIL %s (server did not start)\n", c->name);
            failed++;
            continue;
        }
        c->fn(&srv);
        if (!g_case_failed && !th_server_alive(&srv))
            case_fail(0, "the server died during the case");
        if (g_case_failed)
            th_server_dump_log(&srv, 3000);
        if (th_server_stop(&srv) != 0)
            g_case_failed = 1;
        int64_t dt = th_now_ms() - t0;
        if (g_case_failed) {
            printf("FAIL %s (%lld ms)\n", c->name, (long long)dt);
            failed++;
        } else {
            printf("ok   %s (%lld ms)\n", c->name, (long long)dt);
            passed++;
        }
    }
    nats_CloseAndWait(5000);
    printf("total %lld ms\n", (long long)(th_now_ms() - t_all));
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
