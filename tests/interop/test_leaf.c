/* Leaf nodes against Debian's nats-server as the hub (DEMO.md steps 7-10), and a Go
 * nats-server leaf joining an Ember hub. Everything on loopback, started here, every wait
 * bounded; nothing asserts on timing.
 *
 *  1. An embedded Ember (JetStream domain "embedded", no client port) dials the hub.
 *  2. A hub client's request to hello.world is answered by an in-process responder;
 *     the reverse direction too; headers cross the link.
 *  3. The hub's client manages the embedded JetStream through $JS.embedded.API: no
 *     streams, creates "events", publishes 100 on the hub: they land in Ember.
 *  4. A hub-side mirror with external api $JS.embedded.API reaches 100.
 *  5. The hub is stopped; Ember keeps accepting publishes (50); the hub comes back on
 *     the same ports and store; the mirror reaches 150 with nothing lost or duplicated.
 *  6. Queue groups across the link: 3 members in one embedded server, 1 in another, both
 *     leafs of the hub: the hub's picks follow the weights (most of 400 to the first).
 *  7. Wrong leaf credentials: the hub's refusal reaches the event callback.
 *  8. A loop (two remotes to the same hub) is detected.
 *  9. A nats-server leaf joins an Ember hub: messages and requests both ways; queue
 *     weights (3 against 1) respected by Ember's hub.
 * 10. TLS: Ember dials a TLS hub (CA checked; a wrong CA and a missing TLS setup are
 *     refused with the reason), and a nats-server leaf joins Ember's TLS leafnodes port.
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "ember.h"
#include "harness.h"
#include "nkeys.h"

#include <openssl/rand.h>

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

static const char *nats_server_bin(void)
{
    const char *e = getenv("EMBER_TEST_REFERENCE");
    return e && *e ? e : "nats-server";
}

static char tmpdir[256];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static const char *hub_js_extra = ""; /* more lines in the hub's jetstream block */

/* Start nats-server as a hub from a config (leafnodes on leaf_port; JetStream in store). */
static int hub_start(th_server *hub, int leaf_port, const char *store, const char *auth)
{
    char conf[512], text[2048];
    snprintf(conf, sizeof conf, "%s/hub.conf", tmpdir);
    snprintf(text, sizeof text,
             "server_name: hub\n"
             "jetstream { store_dir: \"%s\"\n%s}\n"
             "leafnodes {\n  listen: \"127.0.0.1:%d\"\n%s}\n",
             store, hub_js_extra, leaf_port, auth ? auth : "");
    write_file(conf, text);
    const char *args[] = {"-c", conf, NULL};
    return th_server_start(hub, nats_server_bin(), args);
}

/* EMBER_TEST_VERBOSE=1: the embedded servers log to stderr (debug level). */
static void verbose(ember_server *s)
{
    if (s && getenv("EMBER_TEST_VERBOSE"))
        ember_server_log_to_stderr(s, EMBER_LOG_DEBUG);
}

static void on_leaf_event(void *ud, const char *url, bool connected, const char *reason);

/* A server from o, started (NULL when it could not be created: a check fails). */
static ember_server *start(const ember_server_options *o)
{
    ember_server *s = NULL;
    CHECK(ember_server_new(&s, o) == EMBER_OK);
    verbose(s);
    CHECK(s && ember_server_start(s) == EMBER_OK);
    return s;
}

static void stop(ember_server *s)
{
    ember_server_shutdown(s);
    ember_server_free(s);
}

/* Options of a server with no client port dialling one remote. */
static void leaf_opts(ember_server_options *o, ember_leaf_remote *r, const char *url)
{
    ember_server_options_init(o);
    o->dont_listen = true;
    r->urls = url;
    o->leaf_remotes = r;
    o->leaf_remotes_count = 1;
    o->leaf_reconnect_ms = 200;
    o->leaf_event_fn = on_leaf_event;
}

/* ------------------------------------------------------------------ events */

static pthread_mutex_t ev_mu = PTHREAD_MUTEX_INITIALIZER;
static int ev_up, ev_down;
static char ev_reason[512];

static void on_leaf_event(void *ud, const char *url, bool connected, const char *reason)
{
    (void)ud;
    (void)url;
    pthread_mutex_lock(&ev_mu);
    if (connected)
        ev_up++;
    else {
        ev_down++;
        if (reason)
            snprintf(ev_reason + strlen(ev_reason), sizeof ev_reason - strlen(ev_reason), "%s|",
                     reason);
    }
    pthread_mutex_unlock(&ev_mu);
}

static void ev_reset(void)
{
    pthread_mutex_lock(&ev_mu);
    ev_up = ev_down = 0;
    ev_reason[0] = 0;
    pthread_mutex_unlock(&ev_mu);
}

static bool ev_reason_has(const char *needle, int max_ms)
{
    int64_t end = th_now_ms() + max_ms;
    for (;;) {
        pthread_mutex_lock(&ev_mu);
        bool ok = strstr(ev_reason, needle) != NULL;
        pthread_mutex_unlock(&ev_mu);
        if (ok)
            return true;
        if (th_now_ms() > end)
            return false;
        th_sleep_ms(20);
    }
}

static bool wait_leafs(ember_server *s, int n, int max_ms)
{
    int64_t end = th_now_ms() + max_ms;
    while (ember_server_leafnode_count(s) != n) {
        if (th_now_ms() > end)
            return false;
        th_sleep_ms(20);
    }
    return true;
}

/* ------------------------------------------------------------------ helpers */

static void respond_hello(void *ud, ember_sub *sub, ember_msg *m)
{
    (void)sub;
    const char *h = ember_msg_header_get(m, "X-Who");
    if (h) {
        ember_msg *r = NULL;
        if (ember_msg_new(&r, ember_msg_reply(m), NULL, "hello with headers", 18) == EMBER_OK) {
            ember_msg_header_set(r, "X-Who", h);
            ember_conn_publish_msg(ud, r);
            ember_msg_release(r);
        }
        return;
    }
    ember_msg_respond(ud, m, "hello there", 11);
}

/* A hub request retried until interest has crossed the link (bounded). */
static natsStatus hub_request(natsConnection *nc, const char *subj, const char *data,
                              natsMsg **reply, int max_ms)
{
    int64_t end = th_now_ms() + max_ms;
    natsStatus st;
    for (;;) {
        st = natsConnection_RequestString(reply, nc, subj, data, 1000);
        if (st == NATS_OK || th_now_ms() > end)
            return st;
        th_sleep_ms(50);
    }
}

static bool reply_has(natsMsg *m, const char *needle)
{
    return m && strstr(natsMsg_GetData(m), needle) != NULL;
}

static uint64_t stream_msgs(ember_conn *c, const char *name)
{
    ember_stream_info si;
    if (ember_js_stream_info(c, name, &si) != EMBER_OK)
        return 0;
    return si.msgs;
}

/* The hub's view of a stream's message count (-1 on error). */
static long long hub_stream_msgs(natsConnection *nc, const char *name)
{
    char subj[256];
    snprintf(subj, sizeof subj, "$JS.API.STREAM.INFO.%s", name);
    natsMsg *m = NULL;
    if (natsConnection_RequestString(&m, nc, subj, "", 2000) != NATS_OK)
        return -1;
    const char *p = strstr(natsMsg_GetData(m), "\"messages\":");
    long long n = p ? atoll(p + 11) : -1;
    natsMsg_Destroy(m);
    return n;
}

static bool wait_hub_msgs(natsConnection *nc, const char *name, long long want, int max_ms,
                          long long *last)
{
    int64_t end = th_now_ms() + max_ms;
    for (;;) {
        *last = hub_stream_msgs(nc, name);
        if (*last == want)
            return true;
        if (th_now_ms() > end)
            return false;
        th_sleep_ms(100);
    }
}

static natsConnection *hub_connect(th_server *hub)
{
    natsConnection *nc = NULL;
    for (int i = 0; i < 50 && th_connect(hub, NULL, &nc) != NATS_OK; i++)
        th_sleep_ms(50);
    return nc;
}

/* ------------------------------------------------------------------ counters */

static atomic_int q_ember;

static void q_member(void *ud, ember_sub *sub, ember_msg *m)
{
    (void)sub;
    atomic_fetch_add(&q_ember, 1);
    ember_msg_respond(ud, m, "ember", 5);
}

/* ------------------------------------------------------------------ scenario: Ember as leaf */

static void test_ember_leaf(void)
{
    int leaf_port = th_free_port();
    char store_hub[300], store_ember[300];
    snprintf(store_hub, sizeof store_hub, "%s/hub-js", tmpdir);
    snprintf(store_ember, sizeof store_ember, "%s/ember-js", tmpdir);
    th_server hub;
    if (hub_start(&hub, leaf_port, store_hub, NULL) != 0) {
        CHECK(!"hub started");
        return;
    }
    char url[128];
    snprintf(url, sizeof url, "nats-leaf://127.0.0.1:%d", leaf_port);
    ember_leaf_remote rem = {0};
    rem.urls = url;
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true;
    o.server_name = "embedded-app";
    o.jetstream = true;
    o.store_dir = store_ember;
    o.jetstream_domain = "embedded";
    o.leaf_remotes = &rem;
    o.leaf_remotes_count = 1;
    o.leaf_reconnect_ms = 200;
    o.leaf_event_fn = on_leaf_event;
    ember_server *s = start(&o);
    CHECK(ember_server_ready_for_connections(s, 5000));
    CHECK(wait_leafs(s, 1, 10000));

    ember_conn *ec = NULL;
    CHECK(ember_conn_connect(&ec, s, NULL) == EMBER_OK);
    ember_sub *hello = NULL;
    CHECK(ember_conn_subscribe(&hello, ec, "hello.world", NULL, EMBER_DELIVER_DISPATCH,
                               respond_hello, ec, NULL) == EMBER_OK);

    natsConnection *nc = hub_connect(&hub);
    CHECK(nc != NULL);
    if (!nc)
        goto out;

    /* step 8: the hub reaches the in-process responder */
    natsMsg *m = NULL;
    CHECK(hub_request(nc, "hello.world", "hi", &m, 5000) == NATS_OK);
    CHECK(m && strcmp(natsMsg_GetData(m), "hello there") == 0);
    natsMsg_Destroy(m);
    m = NULL;
    /* headers across the link, both ways */
    {
        natsMsg *req = NULL, *rep = NULL;
        natsMsg_Create(&req, "hello.world", NULL, "x", 1);
        natsMsgHeader_Set(req, "X-Who", "hub-client");
        CHECK(natsConnection_RequestMsg(&rep, nc, req, 2000) == NATS_OK);
        const char *v = NULL;
        CHECK(rep && natsMsgHeader_Get(rep, "X-Who", &v) == NATS_OK && v &&
              strcmp(v, "hub-client") == 0);
        natsMsg_Destroy(req);
        natsMsg_Destroy(rep);
    }
    /* the reverse direction: an in-process request answered on the hub */
    {
        natsSubscription *hs = NULL;
        CHECK(natsConnection_SubscribeSync(&hs, nc, "cloud.echo") == NATS_OK);
        natsConnection_Flush(nc);
        int rc = EMBER_ETIMEDOUT;
        int64_t end = th_now_ms() + 5000;
        /* a helper thread would be tidier; answer from here between attempts */
        while (rc != EMBER_OK && th_now_ms() < end) {
            ember_conn_publish(ec, "cloud.echo", "reply.from.hub", "ping", 4);
            natsMsg *got = NULL;
            if (natsSubscription_NextMsg(&got, hs, 300) == NATS_OK) {
                CHECK(strcmp(natsMsg_GetData(got), "ping") == 0);
                CHECK(natsMsg_GetReply(got) && strcmp(natsMsg_GetReply(got), "reply.from.hub") == 0);
                natsMsg_Destroy(got);
                rc = EMBER_OK;
            }
        }
        CHECK(rc == EMBER_OK);
        natsSubscription_Destroy(hs);
    }

    /* step 9: JetStream of the embedded domain managed from the hub */
    CHECK(hub_request(nc, "$JS.embedded.API.STREAM.NAMES", "", &m, 5000) == NATS_OK);
    CHECK(reply_has(m, "\"streams\":null") || reply_has(m, "\"streams\":[]"));
    natsMsg_Destroy(m);
    m = NULL;
    CHECK(natsConnection_RequestString(&m, nc, "$JS.embedded.API.STREAM.CREATE.events",
                                       "{\"name\":\"events\",\"subjects\":[\"events.>\"]}",
                                       3000) == NATS_OK);
    CHECK(reply_has(m, "\"name\":\"events\""));
    if (m && !reply_has(m, "\"name\":\"events\""))
        fprintf(stderr, "  create reply: %s\n", natsMsg_GetData(m));
    natsMsg_Destroy(m);
    m = NULL;
    /* the hub's own JetStream API does not reach Ember: its stream list stays its own */
    CHECK(natsConnection_RequestString(&m, nc, "$JS.API.STREAM.NAMES", "", 2000) == NATS_OK);
    CHECK(m && !reply_has(m, "\"events\""));
    natsMsg_Destroy(m);
    m = NULL;
    /* 100 messages published on the hub land in the embedded stream */
    {
        /* wait until the stream's interest crossed the link */
        int64_t end = th_now_ms() + 5000;
        bool seen = false;
        while (!seen && th_now_ms() < end) {
            natsMsg *a = NULL;
            /* a request gets the PubAck once the subject is routed to Ember */
            if (natsConnection_RequestString(&a, nc, "events.123", "probe", 500) == NATS_OK)
                seen = reply_has(a, "\"stream\":\"events\"");
            natsMsg_Destroy(a);
        }
        CHECK(seen);
        for (int i = 1; i < 100; i++)
            natsConnection_PublishString(nc, "events.123", "event");
        natsConnection_Flush(nc);
        end = th_now_ms() + 5000;
        while (stream_msgs(ec, "events") < 100 && th_now_ms() < end)
            th_sleep_ms(20);
        CHECK(stream_msgs(ec, "events") == 100);
    }

    /* a key-value bucket of the embedded domain, written from the hub with the domain's
     * KV prefix ($JS.embedded.API.$KV.<bucket>.<key> maps to $KV.<bucket>.<key>) */
    CHECK(natsConnection_RequestString(
              &m, nc, "$JS.embedded.API.STREAM.CREATE.KV_cfg",
              "{\"name\":\"KV_cfg\",\"subjects\":[\"$KV.cfg.>\"],\"max_msgs_per_subject\":1,"
              "\"allow_rollup_hdrs\":true,\"allow_direct\":true,\"discard\":\"new\"}",
              3000) == NATS_OK);
    CHECK(reply_has(m, "\"name\":\"KV_cfg\""));
    natsMsg_Destroy(m);
    m = NULL;
    CHECK(hub_request(nc, "$JS.embedded.API.$KV.cfg.color", "blue", &m, 5000) == NATS_OK);
    CHECK(reply_has(m, "\"stream\":\"KV_cfg\""));
    natsMsg_Destroy(m);
    m = NULL;
    {
        ember_msg *kv = NULL;
        CHECK(ember_js_get_last(ec, "KV_cfg", "$KV.cfg.color", &kv) == EMBER_OK);
        if (kv) {
            size_t n = 0;
            const char *d = ember_msg_data(kv, &n);
            CHECK(n == 4 && !memcmp(d, "blue", 4));
            ember_msg_release(kv);
        }
    }

    /* step 10: a hub-side mirror of the embedded stream */
    CHECK(natsConnection_RequestString(
              &m, nc, "$JS.API.STREAM.CREATE.events_mirror",
              "{\"name\":\"events_mirror\",\"mirror\":{\"name\":\"events\",\"external\":"
              "{\"api\":\"$JS.embedded.API\",\"deliver\":\"\"}}}",
              3000) == NATS_OK);
    CHECK(reply_has(m, "\"name\":\"events_mirror\""));
    if (m && !reply_has(m, "\"name\":\"events_mirror\""))
        fprintf(stderr, "  mirror create reply: %s\n", natsMsg_GetData(m));
    natsMsg_Destroy(m);
    m = NULL;
    long long last = -1;
    CHECK(wait_hub_msgs(nc, "events_mirror", 100, 15000, &last));
    if (last != 100)
        fprintf(stderr, "  mirror has %lld\n", last);

    /* the link is cut: Ember keeps taking publishes; the hub comes back and catches up */
    natsConnection_Destroy(nc);
    nc = NULL;
    th_server_stop(&hub);
    CHECK(wait_leafs(s, 0, 5000));
    for (int i = 0; i < 50; i++) {
        ember_msg *pm = NULL;
        ember_msg_new(&pm, "events.offline", NULL, "offline", 7);
        ember_pub_ack ack;
        CHECK(ember_js_publish(ec, pm, &ack) == EMBER_OK);
        ember_msg_release(pm);
    }
    CHECK(stream_msgs(ec, "events") == 150);
    if (hub_start(&hub, leaf_port, store_hub, NULL) != 0) {
        CHECK(!"hub restarted");
        goto out;
    }
    CHECK(wait_leafs(s, 1, 10000));
    nc = hub_connect(&hub);
    CHECK(nc != NULL);
    if (!nc)
        goto out;
    CHECK(wait_hub_msgs(nc, "events_mirror", 150, 30000, &last));
    if (last != 150)
        fprintf(stderr, "  mirror has %lld after the hub came back\n", last);

    /* queue groups across the link: weights. A second embedded server joins the hub
     * with one member where this one has three; the hub (no member of its own) picks a
     * leaf in proportion to the weights its LS+ carried. */
    {
        ember_sub *qs[3] = {0};
        for (int i = 0; i < 3; i++)
            CHECK(ember_conn_subscribe(&qs[i], ec, "work.q", "workers", EMBER_DELIVER_INLINE,
                                       q_member, ec, NULL) == EMBER_OK);
        ember_leaf_remote rem2 = {0};
        rem2.urls = url;
        ember_server_options o2;
        ember_server_options_init(&o2);
        o2.dont_listen = true;
        o2.server_name = "second-app";
        o2.leaf_remotes = &rem2;
        o2.leaf_remotes_count = 1;
        ember_server *s2 = start(&o2);
        CHECK(wait_leafs(s2, 1, 10000));
        ember_conn *ec2 = NULL;
        CHECK(ember_conn_connect(&ec2, s2, NULL) == EMBER_OK);
        ember_sub *q2 = NULL;
        CHECK(ember_conn_subscribe(&q2, ec2, "work.q", "workers", EMBER_DELIVER_POLL, NULL, NULL,
                                   NULL) == EMBER_OK);
        /* both servers' members known on the hub: wait until each answered a request */
        th_sleep_ms(500);
        atomic_store(&q_ember, 0);
        int total = 400, second = 0;
        for (int i = 0; i < total; i++)
            natsConnection_PublishString(nc, "work.q", "job");
        natsConnection_Flush(nc);
        int64_t end = th_now_ms() + 5000;
        while (atomic_load(&q_ember) + second < total && th_now_ms() < end) {
            ember_msg *g = NULL;
            if (ember_sub_next_msg(q2, &g, 50) == EMBER_OK) {
                second++;
                ember_msg_release(g);
            }
        }
        int eg = atomic_load(&q_ember);
        CHECK(eg + second == total); /* each job once */
        /* nats-server 2.9 picks leaf members without their weights (2.10+ shadows them
         * by weight, as Ember's hub does: see test_ember_hub); both servers get work */
        CHECK(eg > 0 && second > 0);
        if (eg + second != total || !eg || !second)
            fprintf(stderr, "  queue: weight-3 server %d, weight-1 server %d\n", eg, second);
        ember_conn_close(ec2);
        stop(s2);
        for (int i = 0; i < 3; i++)
            ember_sub_unsubscribe(qs[i]);
    }

out:
    natsConnection_Destroy(nc);
    ember_conn_close(ec);
    stop(s);
    th_server_stop(&hub);
}

/* ------------------------------------------------------------------ wrong credentials, loop */

static void test_refusals(void)
{
    int leaf_port = th_free_port();
    char store_hub[300];
    snprintf(store_hub, sizeof store_hub, "%s/hub2-js", tmpdir);
    th_server hub;
    if (hub_start(&hub, leaf_port, store_hub,
                  "  authorization { user: leaf, password: s3cret }\n") != 0) {
        CHECK(!"hub started");
        return;
    }
    char url[128];
    snprintf(url, sizeof url, "nats-leaf://leaf:wrong@127.0.0.1:%d", leaf_port);
    ember_leaf_remote rem = {0};
    ember_server_options o;
    leaf_opts(&o, &rem, url);
    ev_reset();
    ember_server *s = start(&o);
    CHECK(ev_reason_has("Authorization Violation", 10000));
    CHECK(ember_server_leafnode_count(s) == 0);
    stop(s);

    /* the right credentials: up */
    snprintf(url, sizeof url, "nats-leaf://leaf:s3cret@127.0.0.1:%d", leaf_port);
    ev_reset();
    s = start(&o);
    CHECK(wait_leafs(s, 1, 10000));
    stop(s);

    th_server_stop(&hub);

    /* a loop: a server that dials its own leafnodes port hears its own $LDS interest
     * back (nats-server 2.9 refuses a second link from the same server as a duplicate
     * before it could see a loop, so the hub here is Ember itself) */
    int self_port = th_free_port();
    char self_url[128];
    snprintf(self_url, sizeof self_url, "nats-leaf://127.0.0.1:%d", self_port);
    ember_leaf_remote self = {0};
    self.urls = self_url;
    o.leaf_remotes = &self;
    o.leaf_remotes_count = 1;
    o.leaf_host = "127.0.0.1";
    o.leaf_port = self_port;
    ev_reset();
    s = start(&o);
    CHECK(ev_reason_has("oop detected", 10000));
    stop(s);
    o.leaf_port = 0;

    /* bad options */
    ember_leaf_remote bad = {0};
    bad.urls = "wss://127.0.0.1:1";
    o.leaf_remotes = &bad;
    o.leaf_remotes_count = 1;
    CHECK(ember_server_new(&s, &o) == EMBER_EINVAL);
    bad.urls = "http://x";
    CHECK(ember_server_new(&s, &o) == EMBER_EINVAL);
    bad.urls = "nats-leaf://127.0.0.1:0";
    CHECK(ember_server_new(&s, &o) == EMBER_EINVAL);
    bad.urls = "nats-leaf://127.0.0.1:7422";
    bad.account = "OTHER";
    CHECK(ember_server_new(&s, &o) == EMBER_EINVAL);
}

/* ------------------------------------------------------------------ the LS+ lines themselves */

/* A raw hub: accept Ember's link, read what it says. */
static int raw_listen(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4) != 0)
        return -1;
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    *port = ntohs(a.sin_port);
    return fd;
}

static void test_interest_lines(void)
{
    int port = 0;
    int lfd = raw_listen(&port);
    CHECK(lfd >= 0);
    if (lfd < 0)
        return;
    char url[128];
    snprintf(url, sizeof url, "nats-leaf://u:p@127.0.0.1:%d", port);
    ember_leaf_remote rem = {0};
    rem.urls = url;
    rem.deny_imports = "secret.>";
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true;
    o.leaf_remotes = &rem;
    o.leaf_remotes_count = 1;
    ember_server *s = start(&o);
    struct timeval tv = {5, 0};
    setsockopt(lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int fd = accept(lfd, NULL, NULL);
    CHECK(fd >= 0);
    if (fd >= 0) {
        th_raw_write_str(fd, "INFO {\"server_id\":\"RAWHUB\",\"headers\":true,\"leafnode_urls\":[]}\r\n");
        th_buf b;
        th_buf_init(&b);
        CHECK(th_raw_read_contains(fd, &b, "LS+ $LDS.", 5000));
        CHECK(strstr(b.data, "CONNECT {") != NULL);
        CHECK(strstr(b.data, "\"user\":\"u\"") && strstr(b.data, "\"pass\":\"p\""));
        CHECK(strstr(b.data, "\"deny_pub\":[\"secret.>\"]") != NULL);
        CHECK(strstr(b.data, "\"lang\"") == NULL);
        ember_conn *ec = NULL;
        CHECK(ember_conn_connect(&ec, s, NULL) == EMBER_OK);
        ember_sub *q[3], *plain, *hidden;
        for (int i = 0; i < 3; i++)
            CHECK(ember_conn_subscribe(&q[i], ec, "work.q", "workers", EMBER_DELIVER_POLL, NULL,
                                       NULL, NULL) == EMBER_OK);
        CHECK(ember_conn_subscribe(&plain, ec, "news.*", NULL, EMBER_DELIVER_POLL, NULL, NULL,
                                   NULL) == EMBER_OK);
        CHECK(ember_conn_subscribe(&hidden, ec, "secret.x", NULL, EMBER_DELIVER_POLL, NULL, NULL,
                                   NULL) == EMBER_OK);
        CHECK(th_raw_read_contains(fd, &b, "LS+ work.q workers 3\r\n", 5000));
        CHECK(th_raw_read_contains(fd, &b, "LS+ news.*\r\n", 5000));
        ember_sub_unsubscribe(q[0]);
        CHECK(th_raw_read_contains(fd, &b, "LS+ work.q workers 2\r\n", 5000));
        ember_sub_unsubscribe(q[1]);
        ember_sub_unsubscribe(q[2]);
        CHECK(th_raw_read_contains(fd, &b, "LS- work.q workers\r\n", 5000));
        ember_sub_unsubscribe(plain);
        CHECK(th_raw_read_contains(fd, &b, "LS- news.*\r\n", 5000));
        /* denied imports and the client JetStream API never cross */
        CHECK(strstr(b.data, "secret.x") == NULL);
        CHECK(strstr(b.data, "$JS.API") == NULL);
        /* a message for Ember's plain interest, then one with a queue list */
        th_raw_write_str(fd, "LS+ hub.in\r\n");
        ember_sub *in = NULL;
        CHECK(ember_conn_subscribe(&in, ec, "to.ember", NULL, EMBER_DELIVER_POLL, NULL, NULL,
                                   NULL) == EMBER_OK);
        th_raw_write_str(fd, "LMSG to.ember reply.x 5\r\nhello\r\n");
        ember_msg *m = NULL;
        CHECK(ember_sub_next_msg(in, &m, 5000) == EMBER_OK);
        if (m) {
            CHECK(ember_msg_reply(m) && strcmp(ember_msg_reply(m), "reply.x") == 0);
            ember_msg_release(m);
        }
        /* Ember publishes: one LMSG reaches the raw hub */
        int64_t end = th_now_ms() + 3000;
        bool seen = false;
        while (!seen && th_now_ms() < end) {
            ember_conn_publish(ec, "hub.in", NULL, "data", 4);
            seen = th_raw_read_contains(fd, &b, "LMSG hub.in 4\r\ndata\r\n", 300);
        }
        CHECK(seen);
        /* malformed protocol from the hub closes the link, never the server */
        th_raw_write_str(fd, "LS+\r\n");
        th_raw_read(fd, &b, NULL, 200, 2000);
        CHECK(ember_server_leafnode_count(s) == 0 || b.closed);
        ember_conn_close(ec);
        th_buf_free(&b);
        close(fd);
    }
    close(lfd);
    stop(s);
}

/* ------------------------------------------------------------------ a Go leaf joins Ember */

static void test_ember_hub(void)
{
    ember_server_options o;
    ember_server_options_init(&o);
    o.host = "127.0.0.1";
    o.port = -1;
    o.leaf_host = "127.0.0.1";
    o.leaf_port = -1;
    ember_server *s = start(&o);
    CHECK(ember_server_ready_for_connections(s, 5000));
    int lp = ember_server_leafnode_port(s);
    CHECK(lp > 0);
    char conf[512], text[1024];
    snprintf(conf, sizeof conf, "%s/goleaf.conf", tmpdir);
    snprintf(text, sizeof text,
             "server_name: goleaf\nleafnodes { remotes = [ { url: \"nats-leaf://127.0.0.1:%d\" } ] }\n",
             lp);
    write_file(conf, text);
    const char *args[] = {"-c", conf, NULL};
    th_server leaf;
    if (th_server_start(&leaf, nats_server_bin(), args) != 0) {
        CHECK(!"go leaf started");
        stop(s);
        return;
    }
    CHECK(wait_leafs(s, 1, 10000));
    ember_conn *ec = NULL;
    CHECK(ember_conn_connect(&ec, s, NULL) == EMBER_OK);
    ember_sub *hello = NULL;
    CHECK(ember_conn_subscribe(&hello, ec, "hello.world", NULL, EMBER_DELIVER_DISPATCH,
                               respond_hello, ec, NULL) == EMBER_OK);
    natsConnection *lc = hub_connect(&leaf);
    CHECK(lc != NULL);
    if (lc) {
        natsMsg *m = NULL;
        CHECK(hub_request(lc, "hello.world", "hi", &m, 5000) == NATS_OK);
        CHECK(m && strcmp(natsMsg_GetData(m), "hello there") == 0);
        natsMsg_Destroy(m);
        /* a subscriber on the Go leaf receives what an Ember TCP client publishes */
        natsSubscription *ls = NULL;
        CHECK(natsConnection_SubscribeSync(&ls, lc, "from.hub") == NATS_OK);
        natsConnection_Flush(lc);
        th_server eh = {0};
        snprintf(eh.url, sizeof eh.url, "%s", ember_server_client_url(s));
        natsConnection *hc = NULL;
        natsOptions *ho = NULL;
        natsOptions_Create(&ho);
        natsOptions_SetURL(ho, eh.url);
        CHECK(natsConnection_Connect(&hc, ho) == NATS_OK);
        natsOptions_Destroy(ho);
        bool got = false;
        int64_t end = th_now_ms() + 5000;
        while (!got && hc && th_now_ms() < end) {
            natsConnection_PublishString(hc, "from.hub", "to the leaf");
            natsConnection_Flush(hc);
            natsMsg *g = NULL;
            if (natsSubscription_NextMsg(&g, ls, 200) == NATS_OK) {
                got = strcmp(natsMsg_GetData(g), "to the leaf") == 0;
                natsMsg_Destroy(g);
            }
        }
        CHECK(got);
        natsConnection_Destroy(hc);
        natsSubscription_Destroy(ls);

        /* queue weights on Ember's hub: 3 members on the Go leaf, 1 on an embedded leaf */
        natsSubscription *gq[3] = {0};
        for (int i = 0; i < 3; i++)
            CHECK(natsConnection_QueueSubscribeSync(&gq[i], lc, "work.w", "workers") == NATS_OK);
        natsConnection_Flush(lc);
        char eurl[128];
        snprintf(eurl, sizeof eurl, "nats-leaf://127.0.0.1:%d", lp);
        ember_leaf_remote r2 = {0};
        r2.urls = eurl;
        ember_server_options o2;
        ember_server_options_init(&o2);
        o2.dont_listen = true;
        o2.leaf_remotes = &r2;
        o2.leaf_remotes_count = 1;
        ember_server *s2 = start(&o2);
        CHECK(wait_leafs(s, 2, 10000));
        ember_conn *ec2 = NULL;
        CHECK(ember_conn_connect(&ec2, s2, NULL) == EMBER_OK);
        ember_sub *q2 = NULL;
        CHECK(ember_conn_subscribe(&q2, ec2, "work.w", "workers", EMBER_DELIVER_POLL, NULL, NULL,
                                   NULL) == EMBER_OK);
        th_sleep_ms(500); /* both links' LS+ reach the hub */
        int total = 400, go = 0, other = 0;
        for (int i = 0; i < total; i++)
            ember_conn_publish(ec, "work.w", NULL, "job", 3);
        int64_t end2 = th_now_ms() + 5000;
        while (go + other < total && th_now_ms() < end2) {
            natsMsg *g = NULL;
            for (int i = 0; i < 3; i++)
                while (natsSubscription_NextMsg(&g, gq[i], 1) == NATS_OK) {
                    go++;
                    natsMsg_Destroy(g);
                }
            ember_msg *em = NULL;
            while (ember_sub_next_msg(q2, &em, 1) == EMBER_OK) {
                other++;
                ember_msg_release(em);
            }
        }
        CHECK(go + other == total);
        CHECK(go > other); /* weight 3 against 1: expected 300 and 100 */
        if (go + other != total || go <= other)
            fprintf(stderr, "  hub queue: go leaf (weight 3) %d, embedded leaf (weight 1) %d\n", go,
                    other);
        ember_conn_close(ec2);
        stop(s2);
        for (int i = 0; i < 3; i++)
            natsSubscription_Destroy(gq[i]);
        natsConnection_Destroy(lc);
    }
    ember_conn_close(ec);
    th_server_stop(&leaf);
    stop(s);
}

/* ------------------------------------------------------------------ Ember sources a hub stream */

static uint64_t stream_last(ember_conn *c, const char *name)
{
    ember_stream_info si;
    return ember_js_stream_info(c, name, &si) == EMBER_OK ? si.last_seq : 0;
}

static bool wait_msgs(ember_conn *c, const char *name, uint64_t want, int max_ms)
{
    int64_t end = th_now_ms() + max_ms;
    while (stream_msgs(c, name) != want) {
        if (th_now_ms() > end)
            return false;
        th_sleep_ms(50);
    }
    return true;
}

static void hub_publish(natsConnection *nc, const char *subj, int n)
{
    for (int i = 0; i < n; i++) {
        natsMsg *a = NULL;
        natsConnection_RequestString(&a, nc, subj, "order", 2000); /* the PubAck */
        natsMsg_Destroy(a);
    }
}

static void test_external_sources(void)
{
    int leaf_port = th_free_port();
    char store_hub[300], store_ember[300];
    snprintf(store_hub, sizeof store_hub, "%s/hub4-js", tmpdir);
    snprintf(store_ember, sizeof store_ember, "%s/ember4-js", tmpdir);
    hub_js_extra = "  domain: hub\n";
    th_server hub;
    if (hub_start(&hub, leaf_port, store_hub, NULL) != 0) {
        CHECK(!"hub (domain hub) started");
        hub_js_extra = "";
        return;
    }
    natsConnection *nc = hub_connect(&hub);
    natsMsg *m = NULL;
    CHECK(nc && natsConnection_RequestString(&m, nc, "$JS.API.STREAM.CREATE.orders",
                                             "{\"name\":\"orders\",\"subjects\":[\"orders.>\"]}",
                                             3000) == NATS_OK);
    natsMsg_Destroy(m);
    hub_publish(nc, "orders.new", 100);

    char url[128];
    snprintf(url, sizeof url, "nats-leaf://127.0.0.1:%d", leaf_port);
    ember_leaf_remote rem = {0};
    rem.urls = url;
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true;
    o.jetstream = true;
    o.store_dir = store_ember;
    o.jetstream_domain = "embedded";
    o.leaf_remotes = &rem;
    o.leaf_remotes_count = 1;
    o.leaf_reconnect_ms = 200;
    ember_server *s = start(&o);
    CHECK(wait_leafs(s, 1, 10000));
    ember_conn *ec = NULL;
    CHECK(ember_conn_connect(&ec, s, NULL) == EMBER_OK);
    ember_msg *r = NULL;
    const char *cj = "{\"name\":\"orders_copy\",\"sources\":[{\"name\":\"orders\","
                     "\"external\":{\"api\":\"$JS.hub.API\",\"deliver\":\"\"}}]}";
    CHECK(ember_conn_request(ec, "$JS.API.STREAM.CREATE.orders_copy", cj, strlen(cj), 3000,
                             &r) == EMBER_OK);
    {
        size_t rl = 0;
        const char *rd = r ? ember_msg_data(r, &rl) : NULL;
        CHECK(rd && memmem(rd, rl, "\"orders_copy\"", 13) != NULL);
    }
    ember_msg_release(r);
    r = NULL;
    const char *mj = "{\"name\":\"orders_mirror\",\"mirror\":{\"name\":\"orders\","
                     "\"external\":{\"api\":\"$JS.hub.API\"}}}";
    CHECK(ember_conn_request(ec, "$JS.API.STREAM.CREATE.orders_mirror", mj, strlen(mj), 3000,
                             &r) == EMBER_OK);
    ember_msg_release(r);
    CHECK(wait_msgs(ec, "orders_copy", 100, 15000));
    CHECK(wait_msgs(ec, "orders_mirror", 100, 15000));
    CHECK(stream_last(ec, "orders_mirror") == 100);
    /* a sourced message carries its origin */
    {
        ember_msg *g = NULL;
        CHECK(ember_js_get(ec, "orders_copy", 1, &g) == EMBER_OK);
        const char *src = g ? ember_msg_header_get(g, "Nats-Stream-Source") : NULL;
        CHECK(src && strstr(src, "orders") != NULL);
        ember_msg_release(g);
    }
    /* the link is cut and comes back: both resume after the last message taken */
    natsConnection_Destroy(nc);
    th_server_stop(&hub);
    CHECK(wait_leafs(s, 0, 5000));
    if (hub_start(&hub, leaf_port, store_hub, NULL) == 0) {
        CHECK(wait_leafs(s, 1, 10000));
        nc = hub_connect(&hub);
        if (nc)
            hub_publish(nc, "orders.new", 50);
        CHECK(wait_msgs(ec, "orders_copy", 150, 20000));
        CHECK(wait_msgs(ec, "orders_mirror", 150, 20000));
        CHECK(stream_last(ec, "orders_mirror") == 150);
        th_sleep_ms(1500); /* nothing more (no duplicates) arrives */
        CHECK(stream_msgs(ec, "orders_copy") == 150);
        natsConnection_Destroy(nc);
    } else {
        CHECK(!"hub restarted");
    }
    ember_conn_close(ec);
    stop(s);
    th_server_stop(&hub);
    hub_js_extra = "";
}

/* ------------------------------------------------------------------ nkey and .creds remotes */

static void new_user_seed(char seed[59], char pub[57])
{
    uint8_t raw[32];
    RAND_bytes(raw, sizeof raw);
    nkey_seed_encode(NKEY_PREFIX_USER, raw, seed);
    nkey_seed_public(seed, pub);
}

static void test_nkey_remotes(void)
{
    char seed[59], pub[57], wrong[59], wpub[57];
    new_user_seed(seed, pub);
    new_user_seed(wrong, wpub);
    CHECK(pub[0] == 'U' && seed[0] == 'S' && seed[1] == 'U');
    /* a hub whose users are nkeys: a leaf without leafnodes auth is checked as a client */
    int leaf_port = th_free_port();
    char store_hub[300], text[4096], conf[512];
    snprintf(store_hub, sizeof store_hub, "%s/hub6-js", tmpdir);
    snprintf(conf, sizeof conf, "%s/hub-nkey.conf", tmpdir);
    snprintf(text, sizeof text,
             "authorization { users = [ { nkey: %s } ] }\n"
             "leafnodes { listen: \"127.0.0.1:%d\" }\n", pub, leaf_port);
    write_file(conf, text);
    const char *args[] = {"-c", conf, NULL};
    th_server hub;
    if (th_server_start(&hub, nats_server_bin(), args) != 0) {
        CHECK(!"nkey hub started");
        return;
    }
    char url[128];
    snprintf(url, sizeof url, "nats-leaf://127.0.0.1:%d", leaf_port);
    ember_leaf_remote rem = {0};
    rem.urls = url;
    rem.nkey_seed = seed;
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true;
    o.leaf_remotes = &rem;
    o.leaf_remotes_count = 1;
    o.leaf_reconnect_ms = 200;
    o.leaf_event_fn = on_leaf_event;
    ember_server *s = start(&o);
    CHECK(wait_leafs(s, 1, 10000));
    th_sleep_ms(300); /* still up: the hub accepted the signature */
    CHECK(ember_server_leafnode_count(s) == 1);
    stop(s);
    /* another key: refused */
    rem.nkey_seed = wrong;
    ev_reset();
    s = start(&o);
    CHECK(ev_reason_has("Authorization Violation", 10000));
    stop(s);
    th_server_stop(&hub);
    /* the same against an Ember hub whose users are nkeys (leafs checked as clients) */
    {
        ember_user hu = {0};
        hu.nkey = pub;
        ember_server_options ho;
        ember_server_options_init(&ho);
        ho.dont_listen = true;
        ho.leaf_host = "127.0.0.1";
        ho.leaf_port = -1;
        ho.users = &hu;
        ho.users_count = 1;
        ember_server *hub2 = start(&ho);
        CHECK(ember_server_ready_for_connections(hub2, 5000));
        char u2[128];
        snprintf(u2, sizeof u2, "nats-leaf://127.0.0.1:%d", ember_server_leafnode_port(hub2));
        ember_leaf_remote r2 = {0};
        ember_server_options lo;
        leaf_opts(&lo, &r2, u2);
        r2.nkey_seed = seed;
        ember_server *lf = start(&lo);
        CHECK(wait_leafs(lf, 1, 10000));
        CHECK(wait_leafs(hub2, 1, 10000));
        stop(lf);
        r2.nkey_seed = wrong;
        ev_reset();
        lf = start(&lo);
        CHECK(ev_reason_has("Authorization Violation", 10000));
        stop(lf);
        stop(hub2);
    }
    /* a malformed seed is refused up front */
    rem.nkey_seed = "SUNOTASEED";
    CHECK(ember_server_new(&s, &o) == EMBER_EINVAL);

    /* .creds: the JWT and a signature of the hub's nonce, checked by a scripted hub */
    char creds[400];
    snprintf(creds, sizeof creds, "%s/user.creds", tmpdir);
    snprintf(text, sizeof text,
             "-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ0ZXN0In0.c2ln\n"
             "------END NATS USER JWT------\n\n************************* IMPORTANT "
             "*************************\n\n-----BEGIN USER NKEY SEED-----\n%s\n"
             "------END USER NKEY SEED------\n", seed);
    write_file(creds, text);
    int port = 0;
    int lfd = raw_listen(&port);
    snprintf(url, sizeof url, "nats-leaf://127.0.0.1:%d", port);
    ember_leaf_remote cr = {0};
    cr.urls = url;
    cr.credentials = creds;
    o.leaf_remotes = &cr;
    s = start(&o);
    struct timeval tv = {5, 0};
    setsockopt(lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int fd = accept(lfd, NULL, NULL);
    CHECK(fd >= 0);
    if (fd >= 0) {
        th_raw_write_str(fd, "INFO {\"server_id\":\"RAW\",\"nonce\":\"n0nce-123\",\"headers\":true}\r\n");
        th_buf b;
        th_buf_init(&b);
        CHECK(th_raw_read_contains(fd, &b, "}\r\n", 5000));
        char *cj = strstr(b.data, "CONNECT ");
        cJSON *j = cj ? cJSON_Parse(cj + 8) : NULL;
        cJSON *jwt = cJSON_GetObjectItem(j, "jwt"), *sig = cJSON_GetObjectItem(j, "sig");
        CHECK(cJSON_IsString(jwt) && !strcmp(jwt->valuestring, "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ0ZXN0In0.c2ln"));
        CHECK(cJSON_IsString(sig));
        if (cJSON_IsString(sig)) {
            /* base64url back to bytes */
            uint8_t raw[64];
            size_t n = 0;
            uint32_t acc = 0;
            int bits = 0;
            for (const char *p = sig->valuestring; *p && n < sizeof raw; p++) {
                const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
                const char *q = strchr(t, *p);
                if (!q)
                    break;
                acc = (acc << 6) | (uint32_t)(q - t);
                bits += 6;
                if (bits >= 8) {
                    raw[n++] = (uint8_t)(acc >> (bits - 8));
                    bits -= 8;
                }
            }
            CHECK(n == 64 && nkey_verify(pub, "n0nce-123", 9, raw, n) == 1);
            CHECK(nkey_verify(wpub, "n0nce-123", 9, raw, n) == 0);
        }
        cJSON_Delete(j);
        th_buf_free(&b);
        close(fd);
    }
    close(lfd);
    stop(s);
    /* a broken .creds file is refused up front with nats-server's words */
    write_file(creds, "nothing here\n");
    CHECK(ember_server_new(&s, &o) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "Credentials file malformed") != NULL);
}

/* ------------------------------------------------------------------ a chain of leafs */

/* nats-server hub <- Ember B (a leaf of the hub, and the hub of A) <- Ember A: A's
 * in-process responder answers a client of the top hub (B passes the interest of the leaf
 * that joined it up to its own hub, as nats-server does). */
static void test_chain(void)
{
    int leaf_port = th_free_port();
    char store_hub[300];
    snprintf(store_hub, sizeof store_hub, "%s/hub5-js", tmpdir);
    th_server hub;
    if (hub_start(&hub, leaf_port, store_hub, NULL) != 0) {
        CHECK(!"hub started");
        return;
    }
    char url[128];
    snprintf(url, sizeof url, "nats-leaf://127.0.0.1:%d", leaf_port);
    ember_leaf_remote rb = {0};
    rb.urls = url;
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true;
    o.server_name = "B";
    o.leaf_remotes = &rb;
    o.leaf_remotes_count = 1;
    o.leaf_host = "127.0.0.1";
    o.leaf_port = -1;
    ember_server *b = start(&o);
    CHECK(wait_leafs(b, 1, 10000));
    char urla[128];
    snprintf(urla, sizeof urla, "nats-leaf://127.0.0.1:%d", ember_server_leafnode_port(b));
    ember_leaf_remote ra = {0};
    ra.urls = urla;
    ember_server_options oa;
    ember_server_options_init(&oa);
    oa.dont_listen = true;
    oa.server_name = "A";
    oa.leaf_remotes = &ra;
    oa.leaf_remotes_count = 1;
    ember_server *a = start(&oa);
    CHECK(wait_leafs(a, 1, 10000));
    CHECK(wait_leafs(b, 2, 10000));
    ember_conn *ac = NULL;
    CHECK(ember_conn_connect(&ac, a, NULL) == EMBER_OK);
    ember_sub *hs = NULL;
    CHECK(ember_conn_subscribe(&hs, ac, "hello.world", NULL, EMBER_DELIVER_DISPATCH, respond_hello,
                               ac, NULL) == EMBER_OK);
    natsConnection *nc = hub_connect(&hub);
    natsMsg *m = NULL;
    CHECK(nc && hub_request(nc, "hello.world", "hi", &m, 5000) == NATS_OK);
    CHECK(m && strcmp(natsMsg_GetData(m), "hello there") == 0);
    natsMsg_Destroy(m);
    natsConnection_Destroy(nc);
    ember_conn_close(ac);
    stop(a);
    stop(b);
    th_server_stop(&hub);
}

/* ------------------------------------------------------------------ TLS links */

static bool make_certs(char *dir, size_t cap)
{
#ifdef EMBER_GEN_CERTS
    snprintf(dir, cap, "%s/pki", tmpdir);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bash '%s' '%s' >/dev/null 2>&1", EMBER_GEN_CERTS, dir);
    return system(cmd) == 0;
#else
    (void)dir;
    (void)cap;
    return false;
#endif
}

static void test_tls(void)
{
    char pki[300];
    if (!make_certs(pki, sizeof pki)) {
        CHECK(!"test certificates generated (tests/tls/gen-certs.sh, openssl)");
        return;
    }
    int leaf_port = th_free_port();
    char store_hub[300], auth[1200];
    snprintf(store_hub, sizeof store_hub, "%s/hub3-js", tmpdir);
    snprintf(auth, sizeof auth, "  tls { cert_file: \"%s/server.pem\", key_file: \"%s/server-key.pem\" }\n",
             pki, pki);
    th_server hub;
    if (hub_start(&hub, leaf_port, store_hub, auth) != 0) {
        CHECK(!"TLS hub started");
        return;
    }
    char url[128], ca[400], other_ca[400];
    snprintf(url, sizeof url, "tls://127.0.0.1:%d", leaf_port);
    snprintf(ca, sizeof ca, "%s/ca.pem", pki);
    snprintf(other_ca, sizeof other_ca, "%s/other-ca.pem", pki);
    ember_leaf_remote rem = {0};
    rem.urls = url;
    rem.tls_ca_file = ca;
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true;
    o.leaf_remotes = &rem;
    o.leaf_remotes_count = 1;
    o.leaf_reconnect_ms = 200;
    o.leaf_event_fn = on_leaf_event;
    ember_server *s = start(&o);
    CHECK(wait_leafs(s, 1, 10000));
    ember_conn *ec = NULL;
    CHECK(ember_conn_connect(&ec, s, NULL) == EMBER_OK);
    ember_sub *hello = NULL;
    CHECK(ember_conn_subscribe(&hello, ec, "hello.world", NULL, EMBER_DELIVER_DISPATCH,
                               respond_hello, ec, NULL) == EMBER_OK);
    natsConnection *nc = hub_connect(&hub);
    if (nc) {
        natsMsg *m = NULL;
        CHECK(hub_request(nc, "hello.world", "hi", &m, 5000) == NATS_OK);
        CHECK(m && strcmp(natsMsg_GetData(m), "hello there") == 0);
        natsMsg_Destroy(m);
        natsConnection_Destroy(nc);
    } else {
        CHECK(nc != NULL);
    }
    ember_conn_close(ec);
    stop(s);

    /* a CA that did not sign the hub's certificate */
    rem.tls_ca_file = other_ca;
    ev_reset();
    s = start(&o);
    CHECK(ev_reason_has("certificate", 10000));
    CHECK(ember_server_leafnode_count(s) == 0);
    stop(s);

    /* no TLS configured for a hub that requires it */
    char plain[128];
    snprintf(plain, sizeof plain, "nats-leaf://127.0.0.1:%d", leaf_port);
    ember_leaf_remote prem = {0};
    prem.urls = plain;
    o.leaf_remotes = &prem;
    ev_reset();
    s = start(&o);
    CHECK(ev_reason_has("TLS required", 10000));
    stop(s);
    th_server_stop(&hub);

    /* a hub that verifies client certificates: with Ember's client certificate, then
     * without one */
    snprintf(auth, sizeof auth,
             "  tls { cert_file: \"%s/server.pem\", key_file: \"%s/server-key.pem\",\n"
             "        ca_file: \"%s/ca.pem\", verify: true }\n", pki, pki, pki);
    snprintf(store_hub, sizeof store_hub, "%s/hub3v-js", tmpdir);
    if (hub_start(&hub, leaf_port, store_hub, auth) == 0) {
        char ccert[400], ckey[400];
        snprintf(ccert, sizeof ccert, "%s/client.pem", pki);
        snprintf(ckey, sizeof ckey, "%s/client-key.pem", pki);
        ember_leaf_remote vr = {0};
        ember_server_options vo;
        leaf_opts(&vo, &vr, url);
        vr.tls_ca_file = ca;
        vr.tls_cert_file = ccert;
        vr.tls_key_file = ckey;
        s = start(&vo);
        CHECK(wait_leafs(s, 1, 10000));
        th_sleep_ms(300);
        CHECK(ember_server_leafnode_count(s) == 1);
        stop(s);
        vr.tls_cert_file = vr.tls_key_file = NULL;
        ev_reset();
        s = start(&vo);
        CHECK(ev_reason_has("tls: bad certificate", 10000));
        stop(s);
        th_server_stop(&hub);
    } else {
        CHECK(!"verifying TLS hub started");
    }

    /* Ember's leafnodes port with TLS; a Go leaf joins it over tls:// */
    char cert[400], key[400];
    snprintf(cert, sizeof cert, "%s/server.pem", pki);
    snprintf(key, sizeof key, "%s/server-key.pem", pki);
    ember_server_options_init(&o);
    o.host = "127.0.0.1";
    o.port = -1;
    o.leaf_host = "127.0.0.1";
    o.leaf_port = -1;
    o.leaf_tls_cert_file = cert;
    o.leaf_tls_key_file = key;
    s = start(&o);
    CHECK(ember_server_ready_for_connections(s, 5000));
    char conf[512], text[1500];
    snprintf(conf, sizeof conf, "%s/goleaf-tls.conf", tmpdir);
    snprintf(text, sizeof text,
             "server_name: goleaf-tls\nleafnodes { remotes = [ { url: \"tls://127.0.0.1:%d\", "
             "tls { ca_file: \"%s\" } } ] }\n",
             ember_server_leafnode_port(s), ca);
    write_file(conf, text);
    /* traced: a failure below shows which protocol lines the Go leaf saw */
    const char *args[] = {"-c", conf, "-DV", NULL};
    th_server leaf;
    if (th_server_start(&leaf, nats_server_bin(), args) == 0) {
        CHECK(wait_leafs(s, 1, 10000));
        CHECK(ember_conn_connect(&ec, s, NULL) == EMBER_OK);
        CHECK(ember_conn_subscribe(&hello, ec, "hello.world", NULL, EMBER_DELIVER_DISPATCH,
                                   respond_hello, ec, NULL) == EMBER_OK);
        natsConnection *lc = hub_connect(&leaf);
        natsMsg *m = NULL;
        natsStatus rst = lc ? hub_request(lc, "hello.world", "hi", &m, 5000) : NATS_ERR;
        CHECK(rst == NATS_OK);
        if (rst != NATS_OK) {
            fprintf(stderr, "request through the Go leaf (tls): %s; its log:\n",
                    natsStatus_GetText(rst));
            th_server_dump_log(&leaf, 6000);
        }
        CHECK(m && strcmp(natsMsg_GetData(m), "hello there") == 0);
        natsMsg_Destroy(m);
        natsConnection_Destroy(lc);
        ember_conn_close(ec);
        th_server_stop(&leaf);
    } else {
        CHECK(!"go leaf (tls) started");
    }
    stop(s);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ember-leaf-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_ember_leaf();
    test_refusals();
    test_interest_lines();
    test_ember_hub();
    test_tls();
    test_external_sources();
    test_chain();
    test_nkey_remotes();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    printf("leaf: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
