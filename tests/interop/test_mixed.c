/* In-process and TCP clients share one subject space: the official C client (libnats)
 * over loopback against an embedded Ember, talking to in-process connections. */
#include <nats/nats.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ember.h"

static int passed, failed;
#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (cond)                                                                              \
            passed++;                                                                          \
        else {                                                                                 \
            failed++;                                                                          \
            fprintf(stderr, "%s:%d: CHECK(%s) failed (%s)\n", __FILE__, __LINE__, #cond,       \
                    ember_last_error());                                                       \
        }                                                                                      \
    } while (0)

static ember_server *srv;
static const char *url;

static void respond_hello(void *ud, ember_sub *sub, ember_msg *m)
{
    ember_msg_respond(ud, m, "hello there", 11);
}

static natsConnection *tcp_connect(void)
{
    natsConnection *nc = NULL;
    natsOptions *o = NULL;
    natsOptions_Create(&o);
    natsOptions_SetURL(o, url);
    natsOptions_SetTimeout(o, 2000);
    natsOptions_SetAllowReconnect(o, false);
    natsStatus s = natsConnection_Connect(&nc, o);
    natsOptions_Destroy(o);
    return s == NATS_OK ? nc : NULL;
}

/* a TCP client's request answered by an in-process responder, in each delivery mode */
static void test_tcp_to_inproc(void)
{
    static const ember_delivery modes[] = {EMBER_DELIVER_INLINE, EMBER_DELIVER_DISPATCH,
                                           EMBER_DELIVER_POLL};
    natsConnection *nc = tcp_connect();
    CHECK(nc != NULL);
    if (!nc)
        return;
    for (int i = 0; i < 3; i++) {
        ember_conn *c;
        CHECK(ember_conn_connect(&c, srv, NULL) == EMBER_OK);
        ember_sub *sub;
        CHECK(ember_conn_subscribe(&sub, c, "hello.world", NULL, modes[i], respond_hello, c, NULL) ==
              EMBER_OK);
        natsMsg *reply = NULL;
        natsStatus st = NATS_TIMEOUT;
        if (modes[i] == EMBER_DELIVER_POLL) {
            /* the host drives delivery: poll while the request is outstanding */
            natsInbox *inbox;
            natsInbox_Create(&inbox);
            natsSubscription *rs;
            natsConnection_SubscribeSync(&rs, nc, inbox);
            natsConnection_PublishRequestString(nc, "hello.world", inbox, "hi");
            natsConnection_Flush(nc);
            for (int k = 0; k < 200 && st != NATS_OK; k++) {
                ember_conn_poll(c, 10);
                st = natsSubscription_NextMsg(&reply, rs, 5);
            }
            natsSubscription_Destroy(rs);
            natsInbox_Destroy(inbox);
        } else {
            st = natsConnection_RequestString(&reply, nc, "hello.world", "hi", 2000);
        }
        CHECK(st == NATS_OK);
        if (st == NATS_OK) {
            CHECK(natsMsg_GetDataLength(reply) == 11 &&
                  memcmp(natsMsg_GetData(reply), "hello there", 11) == 0);
            natsMsg_Destroy(reply);
        }
        ember_conn_close(c);
    }
    /* nobody answers any more: the C client gets no-responders */
    natsMsg *reply = NULL;
    CHECK(natsConnection_RequestString(&reply, nc, "hello.world", "hi", 2000) == NATS_NO_RESPONDERS);
    natsConnection_Destroy(nc);
}

static void tcp_echo(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    natsConnection_Publish(nc, natsMsg_GetReply(m), natsMsg_GetData(m), natsMsg_GetDataLength(m));
    natsMsg_Destroy(m);
}

/* an in-process request answered by a TCP responder (the official client) */
static void test_inproc_to_tcp(void)
{
    natsConnection *nc = tcp_connect();
    CHECK(nc != NULL);
    if (!nc)
        return;
    natsSubscription *sub;
    CHECK(natsConnection_Subscribe(&sub, nc, "echo.tcp", tcp_echo, NULL) == NATS_OK);
    CHECK(natsConnection_Flush(nc) == NATS_OK);
    ember_conn *c;
    CHECK(ember_conn_connect(&c, srv, NULL) == EMBER_OK);
    for (int i = 0; i < 100; i++) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "req-%d", i);
        ember_msg *r = NULL;
        int rc = ember_conn_request(c, "echo.tcp", buf, (size_t)n, 2000, &r);
        CHECK(rc == EMBER_OK);
        if (rc == EMBER_OK) {
            size_t len;
            const char *d = ember_msg_data(r, &len);
            CHECK(len == (size_t)n && memcmp(d, buf, len) == 0);
            ember_msg_release(r);
        }
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    natsConnection_Flush(nc);
    ember_msg *r = NULL;
    CHECK(ember_conn_request(c, "echo.tcp", "x", 1, 500, &r) == EMBER_ENORESPONDERS);
    ember_conn_close(c);
    natsConnection_Destroy(nc);
}

/* headers (multi-value) cross both ways */
static void test_headers_both_ways(void)
{
    natsConnection *nc = tcp_connect();
    CHECK(nc != NULL);
    if (!nc)
        return;
    ember_conn *c;
    CHECK(ember_conn_connect(&c, srv, NULL) == EMBER_OK);
    ember_sub *isub;
    CHECK(ember_conn_subscribe(&isub, c, "hdr.in", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) ==
          EMBER_OK);
    natsMsg *m;
    natsMsg_Create(&m, "hdr.in", NULL, "body", 4);
    natsMsgHeader_Add(m, "Trace", "a");
    natsMsgHeader_Add(m, "Trace", "b");
    natsMsgHeader_Set(m, "Other", "x y");
    CHECK(natsConnection_PublishMsg(nc, m) == NATS_OK);
    natsConnection_Flush(nc);
    natsMsg_Destroy(m);
    ember_msg *got = NULL;
    CHECK(ember_sub_next_msg(isub, &got, 2000) == EMBER_OK);
    if (got) {
        const char *vals[4];
        CHECK(ember_msg_header_values(got, "Trace", vals, 4) == 2);
        CHECK(strcmp(vals[0], "a") == 0 && strcmp(vals[1], "b") == 0);
        CHECK(strcmp(ember_msg_header_get(got, "Other"), "x y") == 0);
        size_t len;
        CHECK(memcmp(ember_msg_data(got, &len), "body", 4) == 0 && len == 4);
        ember_msg_release(got);
    }
    /* in-process -> TCP */
    natsSubscription *tsub;
    CHECK(natsConnection_SubscribeSync(&tsub, nc, "hdr.out") == NATS_OK);
    natsConnection_Flush(nc);
    ember_msg *om;
    ember_msg_new(&om, "hdr.out", NULL, "payload", 7);
    ember_msg_header_add(om, "K", "1");
    ember_msg_header_add(om, "K", "2");
    CHECK(ember_conn_publish_msg(c, om) == EMBER_OK);
    ember_msg_release(om);
    natsMsg *tm = NULL;
    CHECK(natsSubscription_NextMsg(&tm, tsub, 2000) == NATS_OK);
    if (tm) {
        const char **vals = NULL;
        int n = 0;
        CHECK(natsMsgHeader_Values(tm, "K", &vals, &n) == NATS_OK && n == 2);
        if (n == 2)
            CHECK(strcmp(vals[0], "1") == 0 && strcmp(vals[1], "2") == 0);
        free((void *)vals);
        CHECK(natsMsg_GetDataLength(tm) == 7);
        natsMsg_Destroy(tm);
    }
    natsSubscription_Destroy(tsub);
    ember_conn_close(c);
    natsConnection_Destroy(nc);
}

static atomic_int q_inproc, q_tcp;
static void q_in(void *ud, ember_sub *s, ember_msg *m) { atomic_fetch_add(&q_inproc, 1); }
static void q_t(natsConnection *nc, natsSubscription *s, natsMsg *m, void *cl)
{
    atomic_fetch_add(&q_tcp, 1);
    natsMsg_Destroy(m);
}

/* one queue group with members of both kinds: every message exactly once */
static void test_mixed_queue_group(void)
{
    natsConnection *nc = tcp_connect();
    CHECK(nc != NULL);
    if (!nc)
        return;
    natsSubscription *ts;
    CHECK(natsConnection_QueueSubscribe(&ts, nc, "work", "workers", q_t, NULL) == NATS_OK);
    natsSubscription_SetPendingLimits(ts, -1, -1);
    natsConnection_Flush(nc);
    ember_conn *c;
    CHECK(ember_conn_connect(&c, srv, NULL) == EMBER_OK);
    CHECK(ember_conn_subscribe(NULL, c, "work", "workers", EMBER_DELIVER_INLINE, q_in, NULL, NULL) ==
          EMBER_OK);
    ember_conn *p;
    CHECK(ember_conn_connect(&p, srv, NULL) == EMBER_OK);
    const int n = 2000;
    for (int i = 0; i < n; i++)
        ember_conn_publish(p, "work", NULL, "x", 1);
    /* bounded wait for the TCP member to receive its share */
    for (int k = 0; k < 400 && atomic_load(&q_inproc) + atomic_load(&q_tcp) < n; k++)
        usleep(10000);
    CHECK(atomic_load(&q_inproc) + atomic_load(&q_tcp) == n);
    CHECK(atomic_load(&q_inproc) > 0 && atomic_load(&q_tcp) > 0);
    /* nothing arrives twice: give stragglers a moment, then count again */
    natsConnection_Flush(nc);
    CHECK(atomic_load(&q_inproc) + atomic_load(&q_tcp) == n);
    ember_conn_close(p);
    ember_conn_close(c);
    natsSubscription_Destroy(ts);
    natsConnection_Destroy(nc);
}

/* DEMO step 4: with dont_listen, TCP fails and in-process works */
static void test_dont_listen(void)
{
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true;
    ember_server *s;
    CHECK(ember_server_new(&s, &o) == EMBER_OK);
    CHECK(ember_server_start(s) == EMBER_OK);
    CHECK(ember_server_ready_for_connections(s, 5000));
    CHECK(ember_server_client_url(s) == NULL);
    CHECK(ember_server_port(s) == 0);
    ember_conn *c;
    CHECK(ember_conn_connect(&c, s, NULL) == EMBER_OK);
    CHECK(ember_conn_subscribe(NULL, c, "hello.world", NULL, EMBER_DELIVER_INLINE, respond_hello, c,
                               NULL) == EMBER_OK);
    ember_msg *r = NULL;
    CHECK(ember_conn_request(c, "hello.world", "hi", 2, 1000, &r) == EMBER_OK);
    ember_msg_release(r);
    ember_conn_close(c);
    ember_server_free(s);
}

int main(void)
{
    ember_server_options o;
    ember_server_options_init(&o);
    o.host = "127.0.0.1";
    o.port = -1;
    if (ember_server_new(&srv, &o) || ember_server_start(srv) ||
        !ember_server_ready_for_connections(srv, 5000)) {
        fprintf(stderr, "server: %s\n", ember_last_error());
        return 1;
    }
    url = ember_server_client_url(srv);
    test_tcp_to_inproc();
    test_inproc_to_tcp();
    test_headers_both_ways();
    test_mixed_queue_group();
    test_dont_listen();
    ember_server_free(srv);
    nats_Close();
    printf("mixed: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
