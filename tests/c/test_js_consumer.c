/* test_js_consumer: JetStream consumers through the real in-process wire API ($JS.API
 * requests on an ember_conn): config defaults and echo, every create error, pull
 * requests and each status message they can end with (exact header blocks), acks of
 * every kind, redelivery with backoff and max_deliver, exact num_pending, push
 * delivery with headers_only, heartbeats and flow control, interest and workqueue
 * retention, inactivity cleanup, paging, purge, and a durable's ack state across a
 * restart. Waits are bounded; nothing asserts on timing. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ember.h"
#include "testutil.h"

static char g_dir[128];
static ember_server *g_srv;
static ember_conn *g_c;

/* ------------------------------------------------------------------ helpers */

static ember_server *start(void)
{
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true;
    o.jetstream = true;
    o.store_dir = g_dir;
    ember_server *s = NULL;
    if (ember_server_new(&s, &o) || ember_server_start(s) ||
        !ember_server_ready_for_connections(s, 10000)) {
        fprintf(stderr, "start: %s\n", ember_last_error());
        ember_server_free(s);
        return NULL;
    }
    return s;
}

static bool up(void)
{
    g_srv = start();
    if (!g_srv)
        return false;
    if (ember_conn_connect(&g_c, g_srv, NULL) != 0) {
        ember_server_shutdown(g_srv);
        ember_server_free(g_srv);
        g_srv = NULL;
        return false;
    }
    return true;
}

static void down(void)
{
    if (g_c)
        ember_conn_close(g_c);
    g_c = NULL;
    if (g_srv) {
        ember_server_shutdown(g_srv);
        ember_server_free(g_srv);
    }
    g_srv = NULL;
}

static cJSON *api(const char *subj, const char *body)
{
    ember_msg *r = NULL;
    if (ember_conn_request(g_c, subj, body, body ? strlen(body) : 0, 5000, &r)) {
        fprintf(stderr, "request %s: %s\n", subj, ember_last_error());
        return NULL;
    }
    size_t n;
    const char *d = ember_msg_data(r, &n);
    cJSON *j = cJSON_ParseWithLength(d, n);
    ember_msg_release(r);
    return j;
}

static cJSON *apif(const char *body, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static cJSON *apif(const char *body, const char *fmt, ...)
{
    char subj[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(subj, sizeof subj, fmt, ap);
    va_end(ap);
    return api(subj, body);
}

/* A member by dotted path ("config.ack_wait"); NULL when absent. */
static cJSON *jget(cJSON *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    cJSON *cur = o;
    for (char *save = NULL, *t = strtok_r(buf, ".", &save); t && cur; t = strtok_r(NULL, ".", &save))
        cur = cJSON_GetObjectItemCaseSensitive(cur, t);
    return cur;
}

static long long jnum(cJSON *o, const char *path)
{
    cJSON *v = jget(o, path);
    return cJSON_IsNumber(v) ? (long long)v->valuedouble : -999999;
}

static const char *jstr(cJSON *o, const char *path)
{
    cJSON *v = jget(o, path);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static int err_code(cJSON *r) { return (int)(r ? jnum(r, "error.err_code") : -1); }

static const char *err_desc(cJSON *r) { return r ? jstr(r, "error.description") : ""; }

#define CHECK_ERR(r, code)                                                                 \
    do {                                                                                   \
        CHECK_MSG(err_code(r) == (code), "want %d got %d (%s)", (code), err_code(r),      \
                  err_desc(r));                                                            \
    } while (0)

#define CHECK_OK(r)                                                                        \
    do {                                                                                   \
        CHECK_MSG((r) && !jget((r), "error"), "unexpected error %d (%s)", err_code(r),    \
                  err_desc(r));                                                            \
    } while (0)

static void stream_create(const char *name, const char *json)
{
    cJSON *r = apif(json, "$JS.API.STREAM.CREATE.%s", name);
    CHECK_OK(r);
    cJSON_Delete(r);
}

static uint64_t pub(const char *subj, const char *data)
{
    cJSON *r = api(subj, data);
    uint64_t seq = r ? (uint64_t)jnum(r, "seq") : 0;
    CHECK_MSG(r && seq > 0, "publish to %s failed", subj);
    cJSON_Delete(r);
    return seq;
}

/* Create a consumer; returns the response (caller frees). */
static cJSON *cons_create(const char *stream, const char *subj_tail, const char *cfg_json)
{
    char body[4096];
    snprintf(body, sizeof body, "{\"stream_name\":\"%s\",\"config\":%s}", stream, cfg_json);
    return apif(body, "$JS.API.CONSUMER.CREATE.%s%s%s", stream, subj_tail ? "." : "",
                subj_tail ? subj_tail : "");
}

static cJSON *cons_info(const char *stream, const char *name)
{
    return apif(NULL, "$JS.API.CONSUMER.INFO.%s.%s", stream, name);
}

static ember_sub *inbox_sub(char *out, size_t cap)
{
    static int n;
    snprintf(out, cap, "_TEST_INBOX.%d.%d", getpid(), ++n);
    ember_sub *s = NULL;
    if (ember_conn_subscribe(&s, g_c, out, NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) != 0)
        return NULL;
    return s;
}

static ember_msg *next_msg(ember_sub *s, int ms)
{
    ember_msg *m = NULL;
    if (ember_sub_next_msg(s, &m, ms) != 0)
        return NULL;
    return m;
}

static void pull(const char *stream, const char *cons, const char *inbox, const char *body)
{
    char subj[512];
    snprintf(subj, sizeof subj, "$JS.API.CONSUMER.MSG.NEXT.%s.%s", stream, cons);
    CHECK(ember_conn_publish(g_c, subj, inbox, body, body ? strlen(body) : 0) == 0);
}

static bool hdr_is(ember_msg *m, const char *exact)
{
    size_t n = 0;
    const char *h = m ? ember_msg_headers_raw(m, &n) : NULL;
    bool ok = h && n == strlen(exact) && !memcmp(h, exact, n);
    if (!ok)
        fprintf(stderr, "  header block: %.*s\n  wanted:       %s\n", (int)n, h ? h : "(none)", exact);
    return ok;
}

static bool data_is(ember_msg *m, const char *d)
{
    size_t n = 0;
    const char *p = m ? ember_msg_data(m, &n) : NULL;
    return p && n == strlen(d) && !memcmp(p, d, n);
}

/* The ack reply's numbers: dc, sseq, dseq, pending. */
typedef struct ackinfo {
    char stream[64], consumer[64];
    unsigned long long dc, sseq, dseq, ts, pending;
} ackinfo;

static bool ack_info(ember_msg *m, ackinfo *a)
{
    memset(a, 0, sizeof *a);
    const char *r = m ? ember_msg_reply(m) : NULL;
    if (!r)
        return false;
    return sscanf(r, "$JS.ACK.%63[^.].%63[^.].%llu.%llu.%llu.%llu.%llu", a->stream, a->consumer,
                  &a->dc, &a->sseq, &a->dseq, &a->ts, &a->pending) == 7;
}

/* Ack with a body; waits for the ack reply when want_reply. */
static bool ack(ember_msg *m, const char *body, bool want_reply)
{
    const char *r = ember_msg_reply(m);
    if (!r)
        return false;
    if (!want_reply)
        return ember_conn_publish(g_c, r, NULL, body, strlen(body)) == 0;
    ember_msg *resp = NULL;
    int rc = ember_conn_request(g_c, r, body, strlen(body), 2000, &resp);
    bool ok = rc == 0 && resp;
    if (ok) {
        size_t n;
        ember_msg_data(resp, &n);
        ok = n == 0;
    }
    if (resp)
        ember_msg_release(resp);
    return ok;
}

static void drain(ember_sub *s)
{
    ember_msg *m;
    while ((m = next_msg(s, 50)))
        ember_msg_release(m);
}

static int64_t stream_msgs(const char *stream)
{
    cJSON *r = apif(NULL, "$JS.API.STREAM.INFO.%s", stream);
    int64_t n = r ? jnum(r, "state.messages") : -1;
    cJSON_Delete(r);
    return n;
}

/* ------------------------------------------------------------------ config */

static void test_config_defaults(void)
{
    stream_create("CFG", "{\"name\":\"CFG\",\"subjects\":[\"cfg.>\"],\"storage\":\"memory\"}");
    pub("cfg.a", "1");
    pub("cfg.b", "2");

    /* a named pull durable through the new API */
    cJSON *r = cons_create("CFG", "D1", "{\"durable_name\":\"D1\",\"ack_policy\":\"explicit\"}");
    CHECK_OK(r);
    CHECK(!strcmp(jstr(r, "type"), "io.nats.jetstream.api.v1.consumer_create_response"));
    CHECK(!strcmp(jstr(r, "stream_name"), "CFG"));
    CHECK(!strcmp(jstr(r, "name"), "D1"));
    CHECK(!strcmp(jstr(r, "config.durable_name"), "D1"));
    CHECK(!strcmp(jstr(r, "config.name"), "D1"));
    CHECK(!strcmp(jstr(r, "config.deliver_policy"), "all"));
    CHECK(!strcmp(jstr(r, "config.ack_policy"), "explicit"));
    CHECK_EQ(jnum(r, "config.ack_wait"), 30000000000ll);
    CHECK_EQ(jnum(r, "config.max_deliver"), -1);
    CHECK(!strcmp(jstr(r, "config.replay_policy"), "instant"));
    CHECK_EQ(jnum(r, "config.max_waiting"), 512);
    CHECK_EQ(jnum(r, "config.max_ack_pending"), 1000);
    CHECK_EQ(jnum(r, "config.num_replicas"), 0);
    CHECK(jget(r, "config.inactive_threshold") == NULL);
    CHECK(jget(r, "config.deliver_subject") == NULL);
    cJSON *md = jget(r, "config.metadata");
    CHECK(md && !strcmp(cJSON_GetObjectItemCaseSensitive(md, "_nats.req.level")->valuestring, "0"));
    CHECK(md && cJSON_GetObjectItemCaseSensitive(md, "_nats.ver"));
    CHECK(md && !strcmp(cJSON_GetObjectItemCaseSensitive(md, "_nats.level")->valuestring, "1"));
    CHECK_EQ(jnum(r, "num_pending"), 2);
    CHECK_EQ(jnum(r, "delivered.consumer_seq"), 0);
    CHECK_EQ(jnum(r, "delivered.stream_seq"), 0);
    CHECK_EQ(jnum(r, "ack_floor.stream_seq"), 0);
    CHECK(jget(r, "delivered.last_active") == NULL);
    CHECK_EQ(jnum(r, "num_ack_pending"), 0);
    CHECK_EQ(jnum(r, "num_redelivered"), 0);
    CHECK_EQ(jnum(r, "num_waiting"), 0);
    CHECK(jget(r, "push_bound") == NULL);
    CHECK(strlen(jstr(r, "created")) > 10 && strlen(jstr(r, "ts")) > 10);
    cJSON_Delete(r);

    /* identical create again: the same consumer (idempotent), also with action create */
    r = cons_create("CFG", "D1", "{\"durable_name\":\"D1\",\"ack_policy\":\"explicit\"}");
    CHECK_OK(r);
    cJSON_Delete(r);
    r = apif("{\"stream_name\":\"CFG\",\"action\":\"create\",\"config\":{\"durable_name\":\"D1\",\"ack_policy\":\"explicit\"}}",
             "$JS.API.CONSUMER.CREATE.CFG.D1");
    CHECK_OK(r);
    cJSON_Delete(r);

    /* a legacy ephemeral: generated name, ack none, inactive threshold 5s */
    r = cons_create("CFG", NULL, "{}");
    CHECK_OK(r);
    CHECK_EQ(strlen(jstr(r, "name")), 8);
    CHECK(!strcmp(jstr(r, "config.name"), jstr(r, "name")));
    CHECK(!strcmp(jstr(r, "config.ack_policy"), "none"));
    CHECK(jget(r, "config.ack_wait") == NULL);
    CHECK(jget(r, "config.max_ack_pending") == NULL);
    CHECK_EQ(jnum(r, "config.inactive_threshold"), 5000000000ll);
    cJSON_Delete(r);

    /* a push consumer: no max_waiting; backoff sets ack_wait; stream consumer limits */
    r = cons_create("CFG", "P1",
                    "{\"name\":\"P1\",\"deliver_subject\":\"dlv.p1\",\"ack_policy\":\"explicit\","
                    "\"backoff\":[1000000000,2000000000],\"max_deliver\":3,\"metadata\":{\"k\":\"v\"},"
                    "\"description\":\"d\",\"unknown_field\":42}");
    CHECK_OK(r);
    CHECK(jget(r, "config.max_waiting") == NULL);
    CHECK_EQ(jnum(r, "config.ack_wait"), 1000000000ll);
    CHECK_EQ(jnum(r, "config.max_deliver"), 3);
    CHECK(!strcmp(jstr(r, "config.metadata.k"), "v"));
    CHECK(!strcmp(jstr(r, "config.description"), "d"));
    CHECK(!strcmp(jstr(r, "config.deliver_subject"), "dlv.p1"));
    cJSON_Delete(r);

    /* legacy durable create: no "name" in the echo (as nats-server 2.11) */
    r = apif("{\"stream_name\":\"CFG\",\"config\":{\"durable_name\":\"LD\",\"ack_policy\":\"all\"}}",
             "$JS.API.CONSUMER.DURABLE.CREATE.CFG.LD");
    CHECK_OK(r);
    CHECK(!strcmp(jstr(r, "name"), "LD"));
    CHECK(jget(r, "config.name") == NULL);
    CHECK(!strcmp(jstr(r, "config.ack_policy"), "all"));
    CHECK_EQ(jnum(r, "config.max_ack_pending"), 1000);
    cJSON_Delete(r);

    /* update through create: an allowed change, then a forbidden one */
    r = cons_create("CFG", "D1", "{\"durable_name\":\"D1\",\"ack_policy\":\"explicit\",\"description\":\"x\",\"max_ack_pending\":5}");
    CHECK_OK(r);
    CHECK(!strcmp(jstr(r, "config.description"), "x"));
    CHECK_EQ(jnum(r, "config.max_ack_pending"), 5);
    cJSON_Delete(r);
    r = cons_create("CFG", "D1", "{\"durable_name\":\"D1\",\"ack_policy\":\"explicit\",\"deliver_policy\":\"new\"}");
    CHECK_ERR(r, 10012);
    CHECK(!strcmp(err_desc(r), "deliver policy can not be updated"));
    CHECK_EQ(jnum(r, "error.code"), 500);
    cJSON_Delete(r);
    r = cons_create("CFG", "D1", "{\"durable_name\":\"D1\",\"ack_policy\":\"none\"}");
    CHECK(!strcmp(err_desc(r), "ack policy can not be updated"));
    cJSON_Delete(r);
    r = cons_create("CFG", "D1", "{\"durable_name\":\"D1\",\"ack_policy\":\"explicit\",\"deliver_subject\":\"x.y\"}");
    CHECK(!strcmp(err_desc(r), "can not update pull consumer to push based"));
    cJSON_Delete(r);
    /* action create with a different config */
    r = apif("{\"stream_name\":\"CFG\",\"action\":\"create\",\"config\":{\"durable_name\":\"D1\",\"ack_policy\":\"explicit\",\"description\":\"other\"}}",
             "$JS.API.CONSUMER.CREATE.CFG.D1");
    CHECK_ERR(r, 10148);
    CHECK(!strcmp(err_desc(r), "consumer already exists"));
    cJSON_Delete(r);
    /* action update of a missing one */
    r = apif("{\"stream_name\":\"CFG\",\"action\":\"update\",\"config\":{\"durable_name\":\"NOPE\"}}",
             "$JS.API.CONSUMER.CREATE.CFG.NOPE");
    CHECK_ERR(r, 10149);
    CHECK(!strcmp(err_desc(r), "consumer does not exist"));
    cJSON_Delete(r);
    /* action update of an existing one */
    r = apif("{\"stream_name\":\"CFG\",\"action\":\"update\",\"config\":{\"durable_name\":\"D1\",\"ack_policy\":\"explicit\",\"description\":\"upd\"}}",
             "$JS.API.CONSUMER.CREATE.CFG.D1");
    CHECK_OK(r);
    CHECK(!strcmp(jstr(r, "config.description"), "upd"));
    cJSON_Delete(r);
}

static void test_create_errors(void)
{
    stream_create("ERR", "{\"name\":\"ERR\",\"subjects\":[\"err.>\",\"$KV.b.>\"],\"storage\":\"memory\"}");
    cJSON *r;
    /* stream name in subject vs request */
    r = apif("{\"stream_name\":\"OTHER\",\"config\":{}}", "$JS.API.CONSUMER.CREATE.ERR");
    CHECK_ERR(r, 10056);
    CHECK(!strcmp(err_desc(r), "stream name in subject does not match request"));
    cJSON_Delete(r);
    /* stream not found */
    r = cons_create("NOSTREAM", "X", "{}");
    CHECK_ERR(r, 10059);
    CHECK(!strcmp(err_desc(r), "stream not found"));
    CHECK_EQ(jnum(r, "error.code"), 404);
    cJSON_Delete(r);
    /* invalid JSON */
    r = apif("{\"stream_name\":", "$JS.API.CONSUMER.CREATE.ERR");
    CHECK_ERR(r, 10025);
    CHECK(!strcmp(err_desc(r), "invalid JSON: unexpected end of JSON input"));
    cJSON_Delete(r);
    r = apif("{\"stream_name\":\"ERR\",\"config\":{\"ack_wait\":1x}}", "$JS.API.CONSUMER.CREATE.ERR");
    CHECK(!strcmp(err_desc(r), "invalid JSON: invalid character 'x' after object key:value pair"));
    cJSON_Delete(r);
    r = apif("[1]", "$JS.API.CONSUMER.CREATE.ERR");
    CHECK(!strcmp(err_desc(r), "invalid JSON: json: cannot unmarshal array into Go value of type server.CreateConsumerRequest"));
    cJSON_Delete(r);
    r = cons_create("ERR", "X", "{\"deliver_policy\":\"bogus\"}");
    CHECK_ERR(r, 10025);
    CHECK(strstr(err_desc(r), "invalid JSON: ") == err_desc(r));
    cJSON_Delete(r);
    /* durable / name mismatches */
    r = cons_create("ERR", "X", "{\"durable_name\":\"Y\"}");
    CHECK_ERR(r, 10017);
    cJSON_Delete(r);
    r = apif("{\"stream_name\":\"ERR\",\"config\":{}}", "$JS.API.CONSUMER.DURABLE.CREATE.ERR.X");
    CHECK_ERR(r, 10018);
    cJSON_Delete(r);
    r = apif("{\"stream_name\":\"ERR\",\"config\":{\"durable_name\":\"Y\"}}",
             "$JS.API.CONSUMER.DURABLE.CREATE.ERR.X");
    CHECK_ERR(r, 10017);
    cJSON_Delete(r);
    r = cons_create("ERR", NULL, "{\"durable_name\":\"Y\"}");
    CHECK_ERR(r, 10020);
    cJSON_Delete(r);
    r = cons_create("ERR", NULL, "{\"durable_name\":\"Y\",\"name\":\"Z\"}");
    CHECK_ERR(r, 10020);
    cJSON_Delete(r);
    r = cons_create("ERR", "a/b", "{}");
    CHECK_ERR(r, 10127);
    cJSON_Delete(r);
    /* the filter in the subject */
    r = cons_create("ERR", "F1.err.x", "{\"filter_subject\":\"err.y\"}");
    CHECK_ERR(r, 10131);
    cJSON_Delete(r);
    r = cons_create("ERR", "F1.err.x", "{\"filter_subjects\":[\"err.x\"]}");
    CHECK_ERR(r, 10137);
    cJSON_Delete(r);
    /* (ember_conn_publish refuses wildcard subjects, so only literal filters here) */
    r = cons_create("ERR", "W1.$KV.b.k1", "{\"filter_subject\":\"$KV.b.k1\"}");
    CHECK_OK(r);
    CHECK(!strcmp(jstr(r, "config.filter_subject"), "$KV.b.k1"));
    cJSON_Delete(r);
    /* validation */
    r = cons_create("ERR", "X", "{\"filter_subject\":\"err.a\",\"filter_subjects\":[\"err.b\"]}");
    CHECK_ERR(r, 10136);
    cJSON_Delete(r);
    r = cons_create("ERR", "X", "{\"filter_subjects\":[\"err.>\",\"err.a\"]}");
    CHECK_ERR(r, 10138);
    cJSON_Delete(r);
    r = cons_create("ERR", "X", "{\"filter_subjects\":[\"\"]}");
    CHECK_ERR(r, 10139);
    cJSON_Delete(r);
    r = cons_create("ERR", "X", "{\"deliver_policy\":\"by_start_sequence\"}");
    CHECK_ERR(r, 10094);
    CHECK(!strcmp(err_desc(r),
                  "consumer delivery policy is deliver by start sequence, but optional start sequence is not set"));
    cJSON_Delete(r);
    r = cons_create("ERR", "X", "{\"deliver_policy\":\"all\",\"opt_start_seq\":3}");
    CHECK(!strcmp(err_desc(r),
                  "consumer delivery policy is deliver all, but optional start sequence is also set"));
    cJSON_Delete(r);
    r = cons_create("ERR", "X", "{\"deliver_policy\":\"last_per_subject\"}");
    CHECK(!strcmp(err_desc(r),
                  "consumer delivery policy is deliver last per subject, but optional filter subject is not set"));
    cJSON_Delete(r);
    r = cons_create("ERR", "X", "{\"deliver_subject\":\"d.x\",\"flow_control\":true}");
    CHECK_ERR(r, 10108);
    cJSON_Delete(r);
    r = cons_create("ERR", "X", "{\"deliver_subject\":\"d.*\"}");
    CHECK_ERR(r, 10079);
    cJSON_Delete(r);
    r = cons_create("ERR", "X", "{\"deliver_subject\":\"err.loop\"}");
    CHECK_ERR(r, 10081);
    cJSON_Delete(r);
    r = cons_create("ERR", "X", "{\"deliver_subject\":\"d.x\",\"idle_heartbeat\":50000000}");
    CHECK_ERR(r, 10083);
    cJSON_Delete(r);
    r = cons_create("ERR", "X", "{\"idle_heartbeat\":1000000000}");
    CHECK_ERR(r, 10088);
    cJSON_Delete(r);
    r = cons_create("ERR", "X", "{\"flow_control\":true}");
    CHECK_ERR(r, 10089);
    cJSON_Delete(r);
    r = cons_create("ERR", "X", "{\"deliver_subject\":\"d.x\",\"max_waiting\":3}");
    CHECK_ERR(r, 10080);
    cJSON_Delete(r);
    r = cons_create("ERR", "X", "{\"deliver_subject\":\"d.x\",\"max_ack_pending\":3}");
    CHECK_ERR(r, 10082);
    cJSON_Delete(r);
    r = cons_create("ERR", "X", "{\"ack_policy\":\"explicit\",\"backoff\":[1,2,3],\"max_deliver\":2}");
    CHECK_ERR(r, 10116);
    cJSON_Delete(r);
    r = cons_create("ERR", "X", "{\"max_expires\":10}");
    CHECK_ERR(r, 10115);
    cJSON_Delete(r);
    r = cons_create("ERR", "X", "{\"num_replicas\":3}");
    CHECK_ERR(r, 10074);
    cJSON_Delete(r);
    r = cons_create("ERR", "X", "{\"durable_name\":\"X\",\"name\":\"Q\"}");
    CHECK_OK(r); /* the subject's name wins over config.name */
    CHECK(!strcmp(jstr(r, "config.name"), "X"));
    cJSON_Delete(r);
    /* consumer info / delete of missing ones */
    r = cons_info("ERR", "NOPE");
    CHECK_ERR(r, 10014);
    CHECK(!strcmp(err_desc(r), "consumer not found"));
    cJSON_Delete(r);
    r = cons_info("NOSTREAM", "NOPE");
    CHECK_ERR(r, 10059);
    cJSON_Delete(r);
    r = apif("{\"x\":1}", "$JS.API.CONSUMER.INFO.ERR.W1");
    CHECK_ERR(r, 10038);
    cJSON_Delete(r);
    r = apif(NULL, "$JS.API.CONSUMER.DELETE.ERR.NOPE");
    CHECK_ERR(r, 10014);
    cJSON_Delete(r);

    /* workqueue rules */
    stream_create("WQ", "{\"name\":\"WQ\",\"subjects\":[\"wq.>\"],\"retention\":\"workqueue\",\"storage\":\"memory\"}");
    r = cons_create("WQ", "A", "{\"ack_policy\":\"none\"}");
    CHECK_ERR(r, 10084); /* pull without explicit ack */
    cJSON_Delete(r);
    r = cons_create("WQ", "A", "{\"ack_policy\":\"none\",\"deliver_subject\":\"wqd.a\"}");
    CHECK_ERR(r, 10098);
    cJSON_Delete(r);
    r = cons_create("WQ", "A", "{\"ack_policy\":\"explicit\",\"deliver_policy\":\"new\"}");
    CHECK_ERR(r, 10101);
    cJSON_Delete(r);
    r = cons_create("WQ", "A", "{\"ack_policy\":\"explicit\"}");
    CHECK_OK(r);
    cJSON_Delete(r);
    r = cons_create("WQ", "B", "{\"ack_policy\":\"explicit\"}");
    CHECK_ERR(r, 10099);
    cJSON_Delete(r);
    r = apif(NULL, "$JS.API.CONSUMER.DELETE.WQ.A");
    CHECK_OK(r);
    CHECK(jget(r, "success") && cJSON_IsTrue(jget(r, "success")));
    CHECK(!strcmp(jstr(r, "type"), "io.nats.jetstream.api.v1.consumer_delete_response"));
    cJSON_Delete(r);
    r = cons_create("WQ", "A", "{\"ack_policy\":\"explicit\",\"filter_subject\":\"wq.a.>\"}");
    CHECK_OK(r);
    cJSON_Delete(r);
    r = cons_create("WQ", "B", "{\"ack_policy\":\"explicit\",\"filter_subject\":\"wq.*.x\"}");
    CHECK_ERR(r, 10100);
    cJSON_Delete(r);
    r = cons_create("WQ", "B", "{\"ack_policy\":\"explicit\",\"filter_subject\":\"wq.b.>\"}");
    CHECK_OK(r);
    cJSON_Delete(r);

    /* max_consumers */
    stream_create("MC", "{\"name\":\"MC\",\"subjects\":[\"mc.>\"],\"storage\":\"memory\",\"max_consumers\":1}");
    r = cons_create("MC", "A", "{}");
    CHECK_OK(r);
    cJSON_Delete(r);
    r = cons_create("MC", "B", "{}");
    CHECK_ERR(r, 10026);
    cJSON_Delete(r);
}

/* ------------------------------------------------------------------ pull */

static void test_pull_basic(void)
{
    stream_create("PL", "{\"name\":\"PL\",\"subjects\":[\"pl.>\"],\"storage\":\"memory\"}");
    for (int i = 1; i <= 5; i++) {
        char d[8];
        snprintf(d, sizeof d, "m%d", i);
        pub("pl.a", d);
    }
    cJSON *r = cons_create("PL", "C", "{\"durable_name\":\"C\",\"ack_policy\":\"explicit\"}");
    CHECK_OK(r);
    CHECK_EQ(jnum(r, "num_pending"), 5);
    cJSON_Delete(r);

    char ib[64];
    ember_sub *s = inbox_sub(ib, sizeof ib);
    REQUIRE(s);
    pull("PL", "C", ib, "{\"batch\":3,\"expires\":5000000000}");
    ackinfo a[3];
    ember_msg *m[3] = {0};
    for (int i = 0; i < 3; i++) {
        m[i] = next_msg(s, 5000);
        REQUIRE(m[i]);
        CHECK(!strcmp(ember_msg_subject(m[i]), "pl.a"));
        CHECK(ack_info(m[i], &a[i]));
        CHECK(!strcmp(a[i].stream, "PL") && !strcmp(a[i].consumer, "C"));
        CHECK_EQ(a[i].dc, 1);
        CHECK_EQ(a[i].sseq, i + 1);
        CHECK_EQ(a[i].dseq, i + 1);
        CHECK_EQ(a[i].pending, 4 - i);
        CHECK(a[i].ts > 1600000000000000000ull);
    }
    CHECK(data_is(m[0], "m1") && data_is(m[2], "m3"));
    r = cons_info("PL", "C");
    CHECK(!strcmp(jstr(r, "type"), "io.nats.jetstream.api.v1.consumer_info_response"));
    CHECK_EQ(jnum(r, "num_pending"), 2);
    CHECK_EQ(jnum(r, "num_ack_pending"), 3);
    CHECK_EQ(jnum(r, "delivered.consumer_seq"), 3);
    CHECK_EQ(jnum(r, "delivered.stream_seq"), 3);
    CHECK(strlen(jstr(r, "delivered.last_active")) > 10);
    CHECK_EQ(jnum(r, "ack_floor.stream_seq"), 0);
    cJSON_Delete(r);
    /* ack 1 and 3 (with ack replies), the floor moves to 1 */
    CHECK(ack(m[0], "+ACK", true));
    CHECK(ack(m[2], "", true));
    r = cons_info("PL", "C");
    CHECK_EQ(jnum(r, "num_ack_pending"), 1);
    CHECK_EQ(jnum(r, "ack_floor.stream_seq"), 1);
    CHECK_EQ(jnum(r, "ack_floor.consumer_seq"), 1);
    CHECK(strlen(jstr(r, "ack_floor.last_active")) > 10);
    cJSON_Delete(r);
    CHECK(ack(m[1], "+ACK", true));
    r = cons_info("PL", "C");
    CHECK_EQ(jnum(r, "num_ack_pending"), 0);
    CHECK_EQ(jnum(r, "ack_floor.stream_seq"), 3);
    cJSON_Delete(r);
    for (int i = 0; i < 3; i++)
        ember_msg_release(m[i]);

    /* no_wait with 2 left: both, then 404 */
    pull("PL", "C", ib, "{\"batch\":10,\"no_wait\":true}");
    ember_msg *x = next_msg(s, 5000);
    CHECK(x && data_is(x, "m4"));
    if (x)
        ack(x, "+ACK", false);
    ember_msg_release(x);
    x = next_msg(s, 5000);
    CHECK(x && data_is(x, "m5"));
    if (x)
        ack(x, "+ACK", true);
    ember_msg_release(x);
    x = next_msg(s, 5000);
    CHECK(x && hdr_is(x, "NATS/1.0 404 No Messages\r\n\r\n"));
    ember_msg_release(x);
    /* no_wait with nothing: 404 at once */
    pull("PL", "C", ib, "{\"batch\":1,\"no_wait\":true}");
    x = next_msg(s, 5000);
    CHECK(x && hdr_is(x, "NATS/1.0 404 No Messages\r\n\r\n"));
    CHECK(x && ember_msg_status(x) == 404);
    ember_msg_release(x);
    /* expires with nothing: 408 with the pending counts */
    pull("PL", "C", ib, "{\"batch\":4,\"expires\":100000000}");
    x = next_msg(s, 5000);
    CHECK(x && hdr_is(x, "NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 4\r\nNats-Pending-Bytes: 0\r\n\r\n"));
    ember_msg_release(x);
    /* a request that gets one message and then waits for more until it expires */
    uint64_t seq6 = pub("pl.b", "m6");
    pull("PL", "C", ib, "{\"batch\":2,\"expires\":300000000,\"max_bytes\":1000}");
    x = next_msg(s, 5000);
    CHECK(x && data_is(x, "m6"));
    ackinfo ai;
    CHECK(ack_info(x, &ai) && ai.sseq == seq6 && ai.pending == 0);
    size_t sz = strlen("pl.b") + strlen(ember_msg_reply(x)) + 2;
    if (x)
        ack(x, "+ACK", true);
    ember_msg_release(x);
    x = next_msg(s, 5000);
    char want[256];
    snprintf(want, sizeof want,
             "NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 1\r\nNats-Pending-Bytes: %zu\r\n\r\n",
             1000 - sz);
    CHECK(x && hdr_is(x, want));
    ember_msg_release(x);
    /* batch done but bytes left: 409 Batch Completed */
    pub("pl.b", "m7");
    pull("PL", "C", ib, "{\"batch\":1,\"max_bytes\":1000}");
    x = next_msg(s, 5000);
    CHECK(x && data_is(x, "m7"));
    sz = x ? strlen("pl.b") + strlen(ember_msg_reply(x)) + 2 : 0;
    if (x)
        ack(x, "+ACK", true);
    ember_msg_release(x);
    x = next_msg(s, 5000);
    snprintf(want, sizeof want,
             "NATS/1.0 409 Batch Completed\r\nNats-Pending-Messages: 0\r\nNats-Pending-Bytes: %zu\r\n\r\n",
             1000 - sz);
    CHECK(x && hdr_is(x, want));
    ember_msg_release(x);
    /* a message larger than max_bytes */
    pub("pl.b", "a-message-with-some-bytes");
    pull("PL", "C", ib, "{\"batch\":5,\"max_bytes\":10}");
    x = next_msg(s, 5000);
    CHECK(x && hdr_is(x, "NATS/1.0 409 Message Size Exceeds MaxBytes\r\nNats-Pending-Messages: 5\r\nNats-Pending-Bytes: 10\r\n\r\n"));
    ember_msg_release(x);
    /* a bare number and an empty body */
    pull("PL", "C", ib, "1");
    x = next_msg(s, 5000);
    CHECK(x && data_is(x, "a-message-with-some-bytes"));
    if (x)
        ack(x, "+ACK", true);
    ember_msg_release(x);
    pub("pl.b", "m9");
    pull("PL", "C", ib, "");
    x = next_msg(s, 5000);
    CHECK(x && data_is(x, "m9"));
    if (x)
        ack(x, "+ACK", true);
    ember_msg_release(x);
    /* idle heartbeats while the request waits */
    pull("PL", "C", ib, "{\"batch\":1,\"expires\":8000000000,\"idle_heartbeat\":100000000}");
    x = next_msg(s, 5000);
    CHECK(x && ember_msg_status(x) == 100);
    char *hb = NULL;
    if (x) {
        size_t hl;
        const char *h = ember_msg_headers_raw(x, &hl);
        hb = strndup(h, hl);
    }
    CHECK(hb && !strcmp(hb, "NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 9\r\nNats-Last-Stream: 9\r\n\r\n"));
    if (hb && strcmp(hb, "NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 9\r\nNats-Last-Stream: 9\r\n\r\n"))
        fprintf(stderr, "heartbeat: %s\n", hb);
    free(hb);
    ember_msg_release(x);
    r = cons_info("PL", "C");
    CHECK_EQ(jnum(r, "num_waiting"), 1);
    cJSON_Delete(r);
    pub("pl.c", "m11");
    for (int i = 0; i < 50; i++) {
        x = next_msg(s, 5000);
        if (!x || ember_msg_status(x) != 100)
            break;
        ember_msg_release(x);
    }
    CHECK(x && data_is(x, "m11"));
    if (x)
        ack(x, "+ACK", true);
    ember_msg_release(x);
    /* bad requests */
    pull("PL", "C", ib, "{\"expires\":100000000,\"idle_heartbeat\":100000000}");
    x = next_msg(s, 5000);
    CHECK(x && hdr_is(x, "NATS/1.0 400 Bad Request - heartbeat value too large\r\n\r\n"));
    ember_msg_release(x);
    pull("PL", "C", ib, "{\"batch\":");
    x = next_msg(s, 5000);
    CHECK(x && hdr_is(x, "NATS/1.0 400 Bad Request - unexpected end of JSON input\r\n\r\n"));
    ember_msg_release(x);
    pull("PL", "C", ib, "{bad");
    x = next_msg(s, 5000);
    CHECK(x && hdr_is(x, "NATS/1.0 400 Bad Request - invalid character 'b' looking for beginning of object key string\r\n\r\n"));
    ember_msg_release(x);
    pull("PL", "C", ib, "{\"batch\":\"x\"}");
    x = next_msg(s, 5000);
    CHECK(x && hdr_is(x, "NATS/1.0 400 Bad Request - json: cannot unmarshal string into Go struct field JSApiConsumerGetNextRequest.batch of type int\r\n\r\n"));
    ember_msg_release(x);
    /* MSG.NEXT of a consumer that does not exist: nobody answers (nats-server's API
     * import counts as interest, so no 503 either) */
    pull("PL", "NOPE", ib, "1");
    x = next_msg(s, 300);
    CHECK(x == NULL);
    ember_msg_release(x);
    /* the durable's totals */
    r = cons_info("PL", "C");
    CHECK_EQ(jnum(r, "num_pending"), 0);
    CHECK_EQ(jnum(r, "num_ack_pending"), 0);
    CHECK_EQ(jnum(r, "delivered.stream_seq"), 10);
    CHECK_EQ(jnum(r, "ack_floor.stream_seq"), 10);
    cJSON_Delete(r);
    drain(s);
    ember_sub_unsubscribe(s);
}

static void test_pull_limits(void)
{
    stream_create("PLL", "{\"name\":\"PLL\",\"subjects\":[\"pll.>\"],\"storage\":\"memory\"}");
    cJSON *r = cons_create("PLL", "L",
                           "{\"durable_name\":\"L\",\"ack_policy\":\"explicit\",\"max_batch\":5,"
                           "\"max_expires\":1000000000,\"max_bytes\":100,\"max_waiting\":1,"
                           "\"max_ack_pending\":1}");
    CHECK_OK(r);
    cJSON_Delete(r);
    char ib[64];
    ember_sub *s = inbox_sub(ib, sizeof ib);
    REQUIRE(s);
    ember_msg *x;
    pull("PLL", "L", ib, "{\"batch\":10}");
    x = next_msg(s, 5000);
    CHECK(x && hdr_is(x, "NATS/1.0 409 Exceeded MaxRequestBatch of 5\r\n\r\n"));
    ember_msg_release(x);
    pull("PLL", "L", ib, "{\"batch\":1,\"expires\":2000000000}");
    x = next_msg(s, 5000);
    CHECK(x && hdr_is(x, "NATS/1.0 409 Exceeded MaxRequestExpires of 1s\r\n\r\n"));
    ember_msg_release(x);
    pull("PLL", "L", ib, "{\"batch\":1,\"max_bytes\":200}");
    x = next_msg(s, 5000);
    CHECK(x && hdr_is(x, "NATS/1.0 409 Exceeded MaxRequestMaxBytes of 100\r\n\r\n"));
    ember_msg_release(x);
    /* max_ack_pending 1: the first request gets one message and keeps waiting */
    pub("pll.a", "1");
    pub("pll.a", "2");
    pub("pll.a", "3");
    pull("PLL", "L", ib, "{\"batch\":5}"); /* no expiry: ended by the delete below */
    ember_msg *first = next_msg(s, 5000);
    CHECK(first && data_is(first, "1"));
    /* max_waiting 1: a second waiting request is refused */
    char ib2[64];
    ember_sub *s2 = inbox_sub(ib2, sizeof ib2);
    pull("PLL", "L", ib2, "{\"batch\":1,\"expires\":500000000}");
    x = next_msg(s2, 5000);
    CHECK(x && hdr_is(x, "NATS/1.0 409 Exceeded MaxWaiting\r\n\r\n"));
    ember_msg_release(x);
    /* no_wait while a bigger request waits: 408 Requests Pending */
    pull("PLL", "L", ib2, "{\"batch\":1,\"no_wait\":true}");
    x = next_msg(s2, 5000);
    CHECK(x && hdr_is(x, "NATS/1.0 408 Requests Pending\r\n\r\n"));
    ember_msg_release(x);
    /* the ack frees a slot: the waiting request gets the next one */
    if (first)
        CHECK(ack(first, "+ACK", true));
    ember_msg_release(first);
    x = next_msg(s, 5000);
    CHECK(x && data_is(x, "2"));
    ackinfo ai;
    CHECK(ack_info(x, &ai) && ai.pending == 1);
    ember_msg_release(x);
    /* deleting the consumer ends the request (it received 2 of 5) */
    r = cons_info("PLL", "L");
    CHECK_EQ(jnum(r, "num_waiting"), 1);
    cJSON_Delete(r);
    r = apif(NULL, "$JS.API.CONSUMER.DELETE.PLL.L");
    CHECK_OK(r);
    cJSON_Delete(r);
    x = next_msg(s, 5000);
    CHECK(x && hdr_is(x, "NATS/1.0 409 Consumer Deleted\r\n\r\n"));
    ember_msg_release(x);
    /* a push consumer does not serve pulls */
    r = cons_create("PLL", "PUSH", "{\"deliver_subject\":\"pll.dlv.none\"}");
    CHECK(err_code(r) == 10081); /* the deliver subject is in the stream: a cycle */
    cJSON_Delete(r);
    r = cons_create("PLL", "PUSH", "{\"deliver_subject\":\"plld.none\"}");
    CHECK_OK(r);
    cJSON_Delete(r);
    pull("PLL", "PUSH", ib2, "1");
    x = next_msg(s2, 5000);
    CHECK(x && hdr_is(x, "NATS/1.0 409 Consumer is push based\r\n\r\n"));
    ember_msg_release(x);
    /* a waiting request learns its consumer was deleted */
    r = cons_create("PLL", "GONE", "{\"durable_name\":\"GONE\",\"ack_policy\":\"explicit\",\"deliver_policy\":\"new\"}");
    CHECK_OK(r);
    cJSON_Delete(r);
    pull("PLL", "GONE", ib2, "{\"batch\":1,\"expires\":5000000000}");
    r = cons_info("PLL", "GONE");
    CHECK_EQ(jnum(r, "num_waiting"), 1);
    cJSON_Delete(r);
    r = apif(NULL, "$JS.API.CONSUMER.DELETE.PLL.GONE");
    CHECK_OK(r);
    cJSON_Delete(r);
    x = next_msg(s2, 5000);
    CHECK(x && hdr_is(x, "NATS/1.0 409 Consumer Deleted\r\n\r\n"));
    ember_msg_release(x);
    drain(s);
    drain(s2);
    ember_sub_unsubscribe(s);
    ember_sub_unsubscribe(s2);
}

/* ------------------------------------------------------------------ acks and redelivery */

static ember_msg *pull_one(ember_sub *s, const char *ib, const char *stream, const char *cons,
                           int expires_ms)
{
    char body[128];
    snprintf(body, sizeof body, "{\"batch\":1,\"expires\":%lld}", (long long)expires_ms * 1000000ll);
    pull(stream, cons, ib, body);
    ember_msg *m = next_msg(s, expires_ms + 3000);
    return m;
}

static void test_acks(void)
{
    stream_create("AK", "{\"name\":\"AK\",\"subjects\":[\"ak.>\"],\"storage\":\"memory\"}");
    for (int i = 1; i <= 6; i++)
        pub("ak.x", i % 2 ? "odd" : "even");
    pub("ak.r", "redeliver me"); /* seq 7 */
    cJSON *r = cons_create("AK", "A",
                           "{\"durable_name\":\"A\",\"ack_policy\":\"explicit\",\"ack_wait\":200000000,"
                           "\"filter_subject\":\"ak.x\"}");
    CHECK_OK(r);
    cJSON_Delete(r);
    r = cons_create("AK", "R",
                    "{\"durable_name\":\"R\",\"ack_policy\":\"explicit\",\"ack_wait\":200000000,"
                    "\"filter_subject\":\"ak.r\"}");
    CHECK_OK(r);
    cJSON_Delete(r);
    char ib[64];
    ember_sub *s = inbox_sub(ib, sizeof ib);
    REQUIRE(s);
    ackinfo ai;
    /* NAK: redelivered at once with delivery count 2 */
    ember_msg *m = pull_one(s, ib, "AK", "A", 2000);
    REQUIRE(m && ack_info(m, &ai) && ai.sseq == 1 && ai.dc == 1);
    CHECK(ack(m, "-NAK", true));
    ember_msg_release(m);
    m = pull_one(s, ib, "AK", "A", 2000);
    REQUIRE(m && ack_info(m, &ai));
    CHECK_EQ(ai.sseq, 1);
    CHECK_EQ(ai.dc, 2);
    CHECK_EQ(ai.dseq, 2);
    CHECK(ack(m, "+ACK", true));
    ember_msg_release(m);
    r = cons_info("AK", "A");
    CHECK_EQ(jnum(r, "num_redelivered"), 0);
    CHECK_EQ(jnum(r, "ack_floor.stream_seq"), 1);
    CHECK_EQ(jnum(r, "ack_floor.consumer_seq"), 2);
    cJSON_Delete(r);
    /* ack_wait expiry redelivers; num_redelivered counts it */
    m = pull_one(s, ib, "AK", "R", 2000);
    REQUIRE(m && ack_info(m, &ai) && ai.sseq == 7 && ai.dc == 1);
    ember_msg_release(m);
    m = pull_one(s, ib, "AK", "R", 8000);
    REQUIRE(m && ack_info(m, &ai));
    CHECK_EQ(ai.sseq, 7);
    CHECK_EQ(ai.dc, 2);
    CHECK_EQ(ai.dseq, 2);
    r = cons_info("AK", "R");
    CHECK_EQ(jnum(r, "num_redelivered"), 1);
    CHECK_EQ(jnum(r, "num_ack_pending"), 1);
    cJSON_Delete(r);
    /* +WPI keeps it (reply answered); +TERM ends it without redelivery */
    CHECK(ack(m, "+WPI", true));
    r = cons_info("AK", "R");
    CHECK_EQ(jnum(r, "num_ack_pending"), 1);
    cJSON_Delete(r);
    CHECK(ack(m, "+TERM because", true));
    ember_msg_release(m);
    r = cons_info("AK", "R");
    CHECK_EQ(jnum(r, "num_ack_pending"), 0);
    CHECK_EQ(jnum(r, "num_redelivered"), 0);
    CHECK_EQ(jnum(r, "ack_floor.stream_seq"), 7);
    cJSON_Delete(r);
    m = next_msg(s, 500); /* nothing more for R */
    CHECK(m == NULL);
    ember_msg_release(m);
    /* NAK with a delay (JSON and duration forms): the others come first */
    m = pull_one(s, ib, "AK", "A", 2000);
    REQUIRE(m && ack_info(m, &ai) && ai.sseq == 2);
    CHECK(ack(m, "-NAK {\"delay\":1000000000}", true));
    ember_msg_release(m);
    m = pull_one(s, ib, "AK", "A", 2000);
    REQUIRE(m && ack_info(m, &ai));
    CHECK_EQ(ai.sseq, 3);
    CHECK(ack(m, "-NAK 800ms", true));
    ember_msg_release(m);
    m = pull_one(s, ib, "AK", "A", 2000);
    REQUIRE(m && ack_info(m, &ai));
    CHECK_EQ(ai.sseq, 4);
    CHECK(ack(m, "+ACK", true));
    ember_msg_release(m);
    unsigned got = 0;
    for (int i = 0; i < 4; i++) {
        m = pull_one(s, ib, "AK", "A", 8000);
        if (m && ack_info(m, &ai)) {
            if (ai.dc == 2 && (ai.sseq == 2 || ai.sseq == 3))
                got |= 1u << ai.sseq;
            if (ai.dc == 1 && (ai.sseq == 5 || ai.sseq == 6))
                got |= 1u << ai.sseq;
            ack(m, "+ACK", true);
        }
        ember_msg_release(m);
    }
    CHECK_EQ(got, (1u << 2) | (1u << 3) | (1u << 5) | (1u << 6));
    /* +NXT acks and asks for the next one on the ack's reply */
    pub("ak.x", "eight");
    pub("ak.x", "nine");
    m = pull_one(s, ib, "AK", "A", 2000);
    REQUIRE(m && ack_info(m, &ai) && ai.sseq == 8);
    char ib2[64];
    ember_sub *s2 = inbox_sub(ib2, sizeof ib2);
    CHECK(ember_conn_publish(g_c, ember_msg_reply(m), ib2, "+NXT", 4) == 0);
    ember_msg_release(m);
    m = next_msg(s2, 3000);
    CHECK(m && data_is(m, "nine"));
    if (m)
        ack(m, "+ACK", true);
    ember_msg_release(m);
    r = cons_info("AK", "A");
    CHECK_EQ(jnum(r, "ack_floor.stream_seq"), 9);
    CHECK_EQ(jnum(r, "num_ack_pending"), 0);
    cJSON_Delete(r);
    /* an ack above what was delivered gets no reply; a consumer that does not exist has
     * no responders */
    {
        ember_msg *resp = NULL;
        CHECK(ember_conn_request(g_c, "$JS.ACK.AK.A.1.99.99.0.0", "+ACK", 4, 200, &resp) ==
              EMBER_ETIMEDOUT);
        if (resp)
            ember_msg_release(resp);
        resp = NULL;
        CHECK(ember_conn_request(g_c, "$JS.ACK.AK.NOPE.1.1.1.0.0", "+ACK", 4, 2000, &resp) == 0);
        CHECK(resp && ember_msg_status(resp) == 503);
        if (resp)
            ember_msg_release(resp);
    }
    drain(s);
    drain(s2);
    ember_sub_unsubscribe(s);
    ember_sub_unsubscribe(s2);
}

static void test_max_deliver_backoff(void)
{
    stream_create("MD", "{\"name\":\"MD\",\"subjects\":[\"md.>\"],\"storage\":\"memory\"}");
    pub("md.a", "x");
    pub("md.a", "y");
    cJSON *r = cons_create("MD", "M",
                           "{\"durable_name\":\"M\",\"ack_policy\":\"explicit\",\"max_deliver\":2,"
                           "\"backoff\":[100000000,200000000]}");
    CHECK_OK(r);
    CHECK_EQ(jnum(r, "config.ack_wait"), 100000000);
    cJSON_Delete(r);
    char adv_ib[64];
    ember_sub *adv = NULL;
    snprintf(adv_ib, sizeof adv_ib, "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.MD.M");
    CHECK(ember_conn_subscribe(&adv, g_c, adv_ib, NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) == 0);
    char ib[64];
    ember_sub *s = inbox_sub(ib, sizeof ib);
    REQUIRE(s);
    pull("MD", "M", ib, "{\"batch\":10,\"expires\":8000000000}");
    int firsts = 0, seconds = 0;
    for (int i = 0; i < 4; i++) {
        ember_msg *m = next_msg(s, 8000);
        ackinfo ai;
        if (m && ack_info(m, &ai)) {
            if (ai.dc == 1)
                firsts++;
            if (ai.dc == 2)
                seconds++;
            CHECK(ai.dc <= 2);
        }
        ember_msg_release(m);
    }
    CHECK_EQ(firsts, 2);
    CHECK_EQ(seconds, 2);
    /* max_deliver reached: no third delivery; the advisory says so */
    ember_msg *m = next_msg(adv, 8000);
    CHECK(m != NULL);
    if (m) {
        size_t n;
        const char *d = ember_msg_data(m, &n);
        cJSON *e = cJSON_ParseWithLength(d, n);
        CHECK(!strcmp(jstr(e, "type"), "io.nats.jetstream.advisory.v1.max_deliver"));
        CHECK_EQ(jnum(e, "deliveries"), 2);
        cJSON_Delete(e);
    }
    ember_msg_release(m);
    r = cons_info("MD", "M");
    CHECK(WAIT_UNTIL((cJSON_Delete(r), r = cons_info("MD", "M"), jnum(r, "num_ack_pending") == 0), 3000));
    CHECK_EQ(jnum(r, "num_redelivered"), 2);
    cJSON_Delete(r);
    m = next_msg(s, 300);
    CHECK(m == NULL || ember_msg_status(m) == 408);
    ember_msg_release(m);
    drain(s);
    ember_sub_unsubscribe(s);
    ember_sub_unsubscribe(adv);
}

static void test_ack_all(void)
{
    stream_create("AA", "{\"name\":\"AA\",\"subjects\":[\"aa.>\"],\"storage\":\"memory\"}");
    for (int i = 0; i < 5; i++)
        pub("aa.x", "v");
    cJSON *r = cons_create("AA", "ALL", "{\"durable_name\":\"ALL\",\"ack_policy\":\"all\"}");
    CHECK_OK(r);
    cJSON_Delete(r);
    char ib[64];
    ember_sub *s = inbox_sub(ib, sizeof ib);
    pull("AA", "ALL", ib, "{\"batch\":4,\"expires\":2000000000}");
    ember_msg *m[4] = {0};
    for (int i = 0; i < 4; i++)
        m[i] = next_msg(s, 3000);
    REQUIRE(m[2]);
    CHECK(ack(m[2], "+ACK", true));
    r = cons_info("AA", "ALL");
    CHECK_EQ(jnum(r, "num_ack_pending"), 1);
    CHECK_EQ(jnum(r, "ack_floor.stream_seq"), 3);
    CHECK_EQ(jnum(r, "ack_floor.consumer_seq"), 3);
    cJSON_Delete(r);
    CHECK(ack(m[0], "+ACK", true)); /* below the floor: still answered */
    for (int i = 0; i < 4; i++)
        ember_msg_release(m[i]);
    drain(s);
    ember_sub_unsubscribe(s);
}

/* ------------------------------------------------------------------ num_pending */

static void test_num_pending(void)
{
    stream_create("NP", "{\"name\":\"NP\",\"subjects\":[\"np.>\"],\"storage\":\"file\",\"max_msgs_per_subject\":10}");
    const char *subs[] = {"np.a", "np.b", "np.a", "np.c", "np.b", "np.a", "np.d.x"};
    for (size_t i = 0; i < sizeof subs / sizeof *subs; i++)
        pub(subs[i], "v");
    struct {
        const char *name, *cfg;
        long long pending;
    } cases[] = {
        {"ALL", "{\"deliver_policy\":\"all\"}", 7},
        {"NEW", "{\"deliver_policy\":\"new\"}", 0},
        {"LAST", "{\"deliver_policy\":\"last\"}", 1},
        {"LASTA", "{\"deliver_policy\":\"last\",\"filter_subject\":\"np.a\"}", 1},
        {"FA", "{\"filter_subject\":\"np.a\"}", 3},
        {"FW", "{\"filter_subject\":\"np.*\"}", 6},
        {"FM", "{\"filter_subjects\":[\"np.a\",\"np.d.>\"]}", 4},
        {"SEQ", "{\"deliver_policy\":\"by_start_sequence\",\"opt_start_seq\":4}", 4},
        {"SEQF", "{\"deliver_policy\":\"by_start_sequence\",\"opt_start_seq\":4,\"filter_subject\":\"np.b\"}", 1},
        {"LPS", "{\"deliver_policy\":\"last_per_subject\",\"filter_subject\":\"np.>\"}", 4},
        {"LPS2", "{\"deliver_policy\":\"last_per_subject\",\"filter_subjects\":[\"np.a\",\"np.b\"]}", 2},
        {"TIME", "{\"deliver_policy\":\"by_start_time\",\"opt_start_time\":\"2000-01-01T00:00:00Z\"}", 7},
        {"TIMEF", "{\"deliver_policy\":\"by_start_time\",\"opt_start_time\":\"2200-01-01T00:00:00Z\"}", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char cfg[512];
        snprintf(cfg, sizeof cfg, "{\"inactive_threshold\":60000000000,%s", cases[i].cfg + 1);
        cJSON *r = cons_create("NP", cases[i].name, cfg);
        CHECK_OK(r);
        CHECK_MSG(jnum(r, "num_pending") == cases[i].pending, "%s: num_pending %lld want %lld",
                  cases[i].name, jnum(r, "num_pending"), cases[i].pending);
        cJSON_Delete(r);
    }
    /* new messages count in */
    pub("np.a", "v");
    cJSON *r = cons_info("NP", "FA");
    CHECK_EQ(jnum(r, "num_pending"), 4);
    cJSON_Delete(r);
    r = cons_info("NP", "NEW");
    CHECK_EQ(jnum(r, "num_pending"), 1);
    cJSON_Delete(r);
    r = cons_info("NP", "LPS");
    CHECK_EQ(jnum(r, "num_pending"), 5);
    cJSON_Delete(r);
    /* deliver last per subject: the last of each subject, then what comes after */
    char ib[64];
    ember_sub *s = inbox_sub(ib, sizeof ib);
    REQUIRE(s);
    pull("NP", "LPS", ib, "{\"batch\":10,\"expires\":500000000}");
    long long wpend[] = {4, 3, 2, 1, 0};
    int got = 0;
    for (;;) {
        ember_msg *m = next_msg(s, 3000);
        if (!m)
            break;
        if (ember_msg_status(m)) {
            ember_msg_release(m);
            break;
        }
        ackinfo ai;
        CHECK(ack_info(m, &ai));
        if (got < 5)
            CHECK_EQ(ai.pending, wpend[got]);
        got++;
        ember_msg_release(m);
    }
    CHECK_EQ(got, 5);
    /* the ack token's pending for a filtered consumer */
    pull("NP", "FA", ib, "{\"batch\":10,\"no_wait\":true}");
    long long fp[] = {3, 2, 1, 0};
    for (int i = 0; i < 4; i++) {
        ember_msg *m = next_msg(s, 3000);
        ackinfo ai;
        CHECK(m && ack_info(m, &ai) && ai.pending == (unsigned long long)fp[i]);
        ember_msg_release(m);
    }
    drain(s);
    r = cons_info("NP", "FA");
    CHECK_EQ(jnum(r, "num_pending"), 0);
    CHECK_EQ(jnum(r, "delivered.stream_seq"), 8);
    cJSON_Delete(r);
    ember_sub_unsubscribe(s);
    /* paging: NAMES and LIST */
    r = apif(NULL, "$JS.API.CONSUMER.NAMES.NP");
    CHECK(!strcmp(jstr(r, "type"), "io.nats.jetstream.api.v1.consumer_names_response"));
    CHECK_EQ(jnum(r, "total"), 13);
    CHECK_EQ(jnum(r, "limit"), 1024);
    CHECK_EQ(cJSON_GetArraySize(jget(r, "consumers")), 13);
    CHECK(!strcmp(cJSON_GetArrayItem(jget(r, "consumers"), 0)->valuestring, "ALL"));
    cJSON_Delete(r);
    r = apif("{\"offset\":10}", "$JS.API.CONSUMER.LIST.NP");
    CHECK(!strcmp(jstr(r, "type"), "io.nats.jetstream.api.v1.consumer_list_response"));
    CHECK_EQ(jnum(r, "total"), 13);
    CHECK_EQ(jnum(r, "offset"), 10);
    CHECK_EQ(jnum(r, "limit"), 256);
    CHECK_EQ(cJSON_GetArraySize(jget(r, "consumers")), 3);
    CHECK(!strcmp(jstr(cJSON_GetArrayItem(jget(r, "consumers"), 0), "stream_name"), "NP"));
    cJSON_Delete(r);
    r = apif(NULL, "$JS.API.CONSUMER.NAMES.NOSTREAM");
    CHECK_ERR(r, 10059);
    cJSON_Delete(r);
    /* purge: consumers move on */
    r = apif(NULL, "$JS.API.STREAM.PURGE.NP");
    CHECK_OK(r);
    cJSON_Delete(r);
    r = cons_info("NP", "ALL");
    CHECK_EQ(jnum(r, "num_pending"), 0);
    CHECK_EQ(jnum(r, "delivered.stream_seq"), 8);
    cJSON_Delete(r);
    pub("np.a", "after");
    r = cons_info("NP", "ALL");
    CHECK_EQ(jnum(r, "num_pending"), 1);
    cJSON_Delete(r);
}

/* ------------------------------------------------------------------ push */

static void test_push(void)
{
    stream_create("PU", "{\"name\":\"PU\",\"subjects\":[\"pu.>\"],\"storage\":\"memory\"}");
    ember_msg *hm = NULL;
    ember_msg_new(&hm, "pu.h", NULL, "payload", 7);
    ember_msg_header_set(hm, "X-Test", "1");
    ember_msg *ackm = NULL;
    CHECK(ember_conn_request_msg(g_c, hm, 5000, &ackm) == 0);
    ember_msg_release(ackm);
    ember_msg_release(hm);
    pub("pu.p", "plain");
    ember_sub *s = NULL;
    REQUIRE(ember_conn_subscribe(&s, g_c, "dlv.pu", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) == 0);
    cJSON *r = cons_create("PU", "HO",
                           "{\"name\":\"HO\",\"deliver_subject\":\"dlv.pu\",\"headers_only\":true,"
                           "\"idle_heartbeat\":100000000,\"flow_control\":true}");
    CHECK_OK(r);
    CHECK(jget(r, "push_bound") && cJSON_IsTrue(jget(r, "push_bound")));
    CHECK_EQ(jnum(r, "num_pending"), 2);
    cJSON_Delete(r);
    ember_msg *m = next_msg(s, 3000);
    CHECK(m && !strcmp(ember_msg_subject(m), "pu.h"));
    CHECK(m && hdr_is(m, "NATS/1.0\r\nX-Test: 1\r\nNats-Msg-Size: 7\r\n\r\n"));
    CHECK(m && data_is(m, ""));
    ember_msg_release(m);
    m = next_msg(s, 3000);
    CHECK(m && !strcmp(ember_msg_subject(m), "pu.p"));
    CHECK(m && hdr_is(m, "NATS/1.0\r\nNats-Msg-Size: 5\r\n\r\n"));
    ackinfo ai;
    CHECK(ack_info(m, &ai) && ai.pending == 0 && ai.dseq == 2);
    ember_msg_release(m);
    /* idle: heartbeats with the last sequences */
    m = next_msg(s, 3000);
    CHECK(m && hdr_is(m, "NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 2\r\nNats-Last-Stream: 2\r\n\r\n"));
    ember_msg_release(m);
    /* no subscriber: not push bound, nothing delivered */
    ember_sub_unsubscribe(s);
    r = cons_info("PU", "HO");
    CHECK(jget(r, "push_bound") == NULL);
    cJSON_Delete(r);
    r = apif(NULL, "$JS.API.CONSUMER.DELETE.PU.HO");
    CHECK_OK(r);
    cJSON_Delete(r);

    /* flow control: stall until the request is answered */
    stream_create("FC", "{\"name\":\"FC\",\"subjects\":[\"fc.>\"],\"storage\":\"memory\"}");
    static char big[600 * 1024];
    memset(big, 'x', sizeof big);
    big[sizeof big - 1] = 0;
    for (int i = 0; i < 8; i++)
        pub("fc.big", big);
    REQUIRE(ember_conn_subscribe(&s, g_c, "dlv.fc", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) == 0);
    r = cons_create("FC", "F",
                    "{\"name\":\"F\",\"deliver_subject\":\"dlv.fc\",\"flow_control\":true,"
                    "\"idle_heartbeat\":200000000}");
    CHECK_OK(r);
    cJSON_Delete(r);
    int data = 0, fcs = 0, stalled = 0;
    char *fc_reply = NULL;
    uint64_t dl = tu_now_ms() + 5000;
    while (tu_now_ms() < dl && !stalled) {
        m = next_msg(s, 1000);
        if (!m)
            continue;
        int st = ember_msg_status(m);
        size_t hl = 0;
        const char *h = ember_msg_headers_raw(m, &hl);
        if (st == 0) {
            data++;
        } else if (h && hl && strstr(h, "FlowControl Request")) {
            CHECK(hdr_is(m, "NATS/1.0 100 FlowControl Request\r\n\r\n"));
            CHECK(!strncmp(ember_msg_reply(m), "$JS.FC.FC.F.", 12));
            free(fc_reply);
            fc_reply = strdup(ember_msg_reply(m));
            fcs++;
        } else if (h && strstr(h, "Nats-Consumer-Stalled")) {
            char want[512];
            snprintf(want, sizeof want,
                     "NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: %d\r\nNats-Last-Stream: %d\r\nNats-Consumer-Stalled: %s\r\n\r\n",
                     data, data, fc_reply ? fc_reply : "?");
            CHECK(hdr_is(m, want));
            stalled = 1;
        }
        ember_msg_release(m);
    }
    CHECK(stalled);
    CHECK_EQ(fcs, 1);
    CHECK(data > 0 && data < 8);
    /* answer: the rest comes */
    if (fc_reply)
        CHECK(ember_conn_publish(g_c, fc_reply, NULL, NULL, 0) == 0);
    dl = tu_now_ms() + 5000;
    while (tu_now_ms() < dl && data < 8) {
        m = next_msg(s, 1000);
        if (!m)
            continue;
        if (ember_msg_status(m) == 0)
            data++;
        else if (ember_msg_reply(m) && !strncmp(ember_msg_reply(m), "$JS.FC.", 7))
            ember_conn_publish(g_c, ember_msg_reply(m), NULL, NULL, 0);
        ember_msg_release(m);
    }
    CHECK_EQ(data, 8);
    free(fc_reply);
    ember_sub_unsubscribe(s);

    /* a queue group shares a push consumer */
    ember_sub *q1 = NULL, *q2 = NULL;
    REQUIRE(ember_conn_subscribe(&q1, g_c, "dlv.q", "grp", EMBER_DELIVER_POLL, NULL, NULL, NULL) == 0);
    REQUIRE(ember_conn_subscribe(&q2, g_c, "dlv.q", "grp", EMBER_DELIVER_POLL, NULL, NULL, NULL) == 0);
    stream_create("QG", "{\"name\":\"QG\",\"subjects\":[\"qg.>\"],\"storage\":\"memory\"}");
    for (int i = 0; i < 20; i++)
        pub("qg.x", "v");
    r = cons_create("QG", "Q", "{\"durable_name\":\"Q\",\"deliver_subject\":\"dlv.q\",\"deliver_group\":\"grp\",\"ack_policy\":\"explicit\"}");
    CHECK_OK(r);
    CHECK(!strcmp(jstr(r, "config.deliver_group"), "grp"));
    cJSON_Delete(r);
    int total = 0;
    dl = tu_now_ms() + 5000;
    while (tu_now_ms() < dl && total < 20) {
        ember_msg *a = next_msg(q1, 10), *b = next_msg(q2, 10);
        if (a) {
            total++;
            ack(a, "+ACK", false);
        }
        if (b) {
            total++;
            ack(b, "+ACK", false);
        }
        ember_msg_release(a);
        ember_msg_release(b);
    }
    CHECK_EQ(total, 20);
    ember_sub_unsubscribe(q1);
    ember_sub_unsubscribe(q2);

    /* an ordered consumer as the clients make it */
    REQUIRE(ember_conn_subscribe(&s, g_c, "dlv.ord", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) == 0);
    r = cons_create("QG", NULL,
                    "{\"deliver_subject\":\"dlv.ord\",\"ack_policy\":\"none\",\"max_deliver\":1,"
                    "\"mem_storage\":true,\"num_replicas\":1,\"inactive_threshold\":300000000000,"
                    "\"flow_control\":true,\"idle_heartbeat\":5000000000,\"deliver_policy\":\"by_start_sequence\","
                    "\"opt_start_seq\":11}");
    CHECK_OK(r);
    CHECK_EQ(jnum(r, "num_pending"), 10);
    CHECK_EQ(jnum(r, "config.max_deliver"), 1);
    cJSON_Delete(r);
    int seen = 0;
    unsigned long long last = 10;
    while ((m = next_msg(s, 2000))) {
        if (ack_info(m, &ai)) {
            CHECK_EQ(ai.sseq, last + 1);
            last = ai.sseq;
            seen++;
        }
        ember_msg_release(m);
        if (seen == 10)
            break;
    }
    CHECK_EQ(seen, 10);
    ember_sub_unsubscribe(s);
}

/* ------------------------------------------------------------------ retention */

static void test_retention(void)
{
    stream_create("RWQ", "{\"name\":\"RWQ\",\"subjects\":[\"rwq.>\"],\"retention\":\"workqueue\",\"storage\":\"memory\"}");
    for (int i = 0; i < 3; i++)
        pub("rwq.a", "job");
    cJSON *r = cons_create("RWQ", "W", "{\"durable_name\":\"W\",\"ack_policy\":\"explicit\"}");
    CHECK_OK(r);
    cJSON_Delete(r);
    char ib[64];
    ember_sub *s = inbox_sub(ib, sizeof ib);
    pull("RWQ", "W", ib, "{\"batch\":3,\"expires\":2000000000}");
    for (int i = 0; i < 3; i++) {
        ember_msg *m = next_msg(s, 3000);
        CHECK(m && ack(m, "+ACK", true));
        ember_msg_release(m);
    }
    CHECK_EQ(stream_msgs("RWQ"), 0);
    drain(s);

    stream_create("RI", "{\"name\":\"RI\",\"subjects\":[\"ri.>\"],\"retention\":\"interest\",\"storage\":\"memory\"}");
    pub("ri.a", "no interest yet"); /* nobody: not kept */
    CHECK_EQ(stream_msgs("RI"), 0);
    r = cons_create("RI", "X", "{\"durable_name\":\"X\",\"ack_policy\":\"explicit\"}");
    CHECK_OK(r);
    cJSON_Delete(r);
    r = cons_create("RI", "Y", "{\"durable_name\":\"Y\",\"ack_policy\":\"explicit\",\"filter_subject\":\"ri.a\"}");
    CHECK_OK(r);
    cJSON_Delete(r);
    pub("ri.a", "both");
    pub("ri.b", "x only");
    CHECK_EQ(stream_msgs("RI"), 2);
    pull("RI", "X", ib, "{\"batch\":2,\"expires\":2000000000}");
    for (int i = 0; i < 2; i++) {
        ember_msg *m = next_msg(s, 3000);
        CHECK(m && ack(m, "+ACK", true));
        ember_msg_release(m);
    }
    CHECK_EQ(stream_msgs("RI"), 1); /* ri.a waits for Y */
    pull("RI", "Y", ib, "{\"batch\":1,\"expires\":2000000000}");
    ember_msg *m = next_msg(s, 3000);
    CHECK(m && data_is(m, "both"));
    CHECK(m && ack(m, "+ACK", true));
    ember_msg_release(m);
    CHECK_EQ(stream_msgs("RI"), 0);
    /* deleting a consumer releases what only it still needed */
    pub("ri.a", "again");
    CHECK_EQ(stream_msgs("RI"), 1);
    pull("RI", "X", ib, "{\"batch\":1,\"expires\":2000000000}");
    m = next_msg(s, 3000);
    CHECK(m && ack(m, "+ACK", true));
    ember_msg_release(m);
    CHECK_EQ(stream_msgs("RI"), 1);
    r = apif(NULL, "$JS.API.CONSUMER.DELETE.RI.Y");
    CHECK_OK(r);
    cJSON_Delete(r);
    CHECK_EQ(stream_msgs("RI"), 0);
    drain(s);
    ember_sub_unsubscribe(s);
}

/* ------------------------------------------------------------------ inactivity */

static void test_inactive(void)
{
    stream_create("IN", "{\"name\":\"IN\",\"subjects\":[\"in.>\"],\"storage\":\"memory\"}");
    cJSON *r = cons_create("IN", "EPH", "{\"inactive_threshold\":200000000}");
    CHECK_OK(r);
    cJSON_Delete(r);
    r = cons_create("IN", "DUR", "{\"durable_name\":\"DUR\",\"inactive_threshold\":200000000}");
    CHECK_OK(r);
    cJSON_Delete(r);
    r = cons_create("IN", "KEEP", "{\"durable_name\":\"KEEP\"}");
    CHECK_OK(r);
    cJSON_Delete(r);
    bool gone = WAIT_UNTIL(({
                               cJSON *x = cons_info("IN", "EPH");
                               cJSON *y = cons_info("IN", "DUR");
                               bool g = err_code(x) == 10014 && err_code(y) == 10014;
                               cJSON_Delete(x);
                               cJSON_Delete(y);
                               g;
                           }),
                           8000);
    CHECK(gone);
    r = cons_info("IN", "KEEP");
    CHECK_OK(r);
    cJSON_Delete(r);
    /* a push ephemeral goes once nobody listens */
    ember_sub *s = NULL;
    REQUIRE(ember_conn_subscribe(&s, g_c, "dlv.in", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) == 0);
    r = cons_create("IN", "PE", "{\"deliver_subject\":\"dlv.in\",\"inactive_threshold\":200000000}");
    CHECK_OK(r);
    cJSON_Delete(r);
    tu_sleep_ms(400);
    r = cons_info("IN", "PE");
    CHECK_OK(r); /* still bound */
    cJSON_Delete(r);
    ember_sub_unsubscribe(s);
    gone = WAIT_UNTIL(({
                          cJSON *x = cons_info("IN", "PE");
                          bool g = err_code(x) == 10014;
                          cJSON_Delete(x);
                          g;
                      }),
                      8000);
    CHECK(gone);
}

/* ------------------------------------------------------------------ odds and ends */

static void test_misc(void)
{
    stream_create("MS", "{\"name\":\"MS\",\"subjects\":[\"ms.>\"],\"storage\":\"memory\"}");
    for (int i = 0; i < 5; i++)
        pub("ms.a", "v");
    cJSON *r;
    char ib[64];
    ember_sub *s = inbox_sub(ib, sizeof ib);
    REQUIRE(s);
    ember_msg *m;
    ackinfo ai;

    /* the v2 ack subject form ($JS.ACK.<domain>.<hash>.<stream>.<consumer>...) */
    r = cons_create("MS", "V2", "{\"durable_name\":\"V2\",\"ack_policy\":\"explicit\"}");
    CHECK_OK(r);
    cJSON_Delete(r);
    m = pull_one(s, ib, "MS", "V2", 2000);
    REQUIRE(m && ack_info(m, &ai) && ai.sseq == 1);
    char v2[256];
    snprintf(v2, sizeof v2, "$JS.ACK._.ABCDEFGH.MS.V2.%llu.%llu.%llu.%llu.%llu.xyz", ai.dc, ai.sseq,
             ai.dseq, ai.ts, ai.pending);
    ember_msg *resp = NULL;
    CHECK(ember_conn_request(g_c, v2, "+ACK", 4, 2000, &resp) == 0);
    ember_msg_release(resp);
    ember_msg_release(m);
    r = cons_info("MS", "V2");
    CHECK_EQ(jnum(r, "ack_floor.stream_seq"), 1);
    cJSON_Delete(r);

    /* a bad NAK delay is a plain NAK */
    m = pull_one(s, ib, "MS", "V2", 2000);
    REQUIRE(m && ack_info(m, &ai) && ai.sseq == 2);
    CHECK(ack(m, "-NAK soon", true));
    ember_msg_release(m);
    m = pull_one(s, ib, "MS", "V2", 2000);
    CHECK(m && ack_info(m, &ai) && ai.sseq == 2 && ai.dc == 2);
    ember_msg_release(m);

    /* headers_only on a pull consumer */
    r = cons_create("MS", "HO", "{\"durable_name\":\"HO\",\"headers_only\":true}");
    CHECK_OK(r);
    cJSON_Delete(r);
    m = pull_one(s, ib, "MS", "HO", 2000);
    CHECK(m && hdr_is(m, "NATS/1.0\r\nNats-Msg-Size: 1\r\n\r\n") && data_is(m, ""));
    ember_msg_release(m);

    /* max_ack_pending on a push consumer: delivery stops until acks come */
    ember_sub *ps = NULL;
    REQUIRE(ember_conn_subscribe(&ps, g_c, "dlv.map", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) == 0);
    r = cons_create("MS", "MAP", "{\"durable_name\":\"MAP\",\"deliver_subject\":\"dlv.map\",\"ack_policy\":\"explicit\",\"max_ack_pending\":2}");
    CHECK_OK(r);
    cJSON_Delete(r);
    ember_msg *a1 = next_msg(ps, 3000), *a2 = next_msg(ps, 3000);
    CHECK(a1 && a2);
    m = next_msg(ps, 300);
    CHECK(m == NULL);
    ember_msg_release(m);
    if (a1)
        CHECK(ack(a1, "+ACK", true));
    m = next_msg(ps, 3000);
    CHECK(m && ack_info(m, &ai) && ai.sseq == 3);
    ember_msg_release(m);
    ember_msg_release(a1);
    ember_msg_release(a2);
    ember_sub_unsubscribe(ps);

    /* pedantic mode */
    r = apif("{\"stream_name\":\"MS\",\"pedantic\":true,\"config\":{\"durable_name\":\"PD\",\"ack_policy\":\"explicit\",\"backoff\":[1000000000],\"ack_wait\":5000000000}}",
             "$JS.API.CONSUMER.CREATE.MS.PD");
    CHECK_ERR(r, 10157);
    CHECK(!strcmp(err_desc(r), "pedantic mode: first backoff value has to equal batch AckWait"));
    cJSON_Delete(r);

    /* interest retention with an ack none consumer: delivered means done */
    stream_create("IA", "{\"name\":\"IA\",\"subjects\":[\"ia.>\"],\"retention\":\"interest\",\"storage\":\"memory\"}");
    r = cons_create("IA", "N", "{\"durable_name\":\"N\",\"ack_policy\":\"none\"}");
    CHECK_OK(r);
    cJSON_Delete(r);
    pub("ia.x", "1");
    pub("ia.x", "2");
    CHECK_EQ(stream_msgs("IA"), 2);
    pull("IA", "N", ib, "{\"batch\":2,\"expires\":2000000000}");
    for (int i = 0; i < 2; i++) {
        m = next_msg(s, 3000);
        CHECK(m != NULL);
        ember_msg_release(m);
    }
    CHECK_EQ(stream_msgs("IA"), 0);
    /* an ack to an ack-none consumer: nobody listens */
    resp = NULL;
    CHECK(ember_conn_request(g_c, "$JS.ACK.IA.N.1.1.1.0.0", "+ACK", 4, 2000, &resp) == 0);
    CHECK(resp && ember_msg_status(resp) == 503);
    ember_msg_release(resp);

    /* a stream delete ends waiting pulls with 409 Consumer Deleted */
    stream_create("SD", "{\"name\":\"SD\",\"subjects\":[\"sd.>\"],\"storage\":\"file\"}");
    r = cons_create("SD", "W", "{\"durable_name\":\"W\",\"ack_policy\":\"explicit\"}");
    CHECK_OK(r);
    cJSON_Delete(r);
    drain(s);
    pull("SD", "W", ib, "{\"batch\":1,\"expires\":5000000000}");
    r = cons_info("SD", "W");
    CHECK_EQ(jnum(r, "num_waiting"), 1);
    cJSON_Delete(r);
    r = apif(NULL, "$JS.API.STREAM.DELETE.SD");
    CHECK_OK(r);
    cJSON_Delete(r);
    m = next_msg(s, 3000);
    CHECK(m && hdr_is(m, "NATS/1.0 409 Consumer Deleted\r\n\r\n"));
    ember_msg_release(m);

    /* a batch bigger than one delivery pass: continued by the JS thread, no early 404 */
    stream_create("BIG", "{\"name\":\"BIG\",\"subjects\":[\"big.>\"],\"storage\":\"memory\"}");
    for (int i = 0; i < 700; i++)
        pub(i % 2 ? "big.a" : "big.b", "x");
    r = cons_create("BIG", "B", "{\"durable_name\":\"B\",\"filter_subject\":\"big.a\"}");
    CHECK_EQ(jnum(r, "num_pending"), 350);
    cJSON_Delete(r);
    pull("BIG", "B", ib, "{\"batch\":400,\"no_wait\":true}");
    int n = 0;
    bool order = true, last_pending_zero = false;
    for (;;) {
        m = next_msg(s, 5000);
        if (!m || ember_msg_status(m)) {
            CHECK(m && hdr_is(m, "NATS/1.0 404 No Messages\r\n\r\n"));
            ember_msg_release(m);
            break;
        }
        n++;
        if (!ack_info(m, &ai) || ai.sseq != (unsigned long long)(2 * n) || ai.pending != 350ull - n)
            order = false;
        last_pending_zero = ai.pending == 0;
        ember_msg_release(m);
    }
    CHECK_EQ(n, 350);
    CHECK(order);
    CHECK(last_pending_zero);

    /* replay original still delivers everything, in order */
    stream_create("RP", "{\"name\":\"RP\",\"subjects\":[\"rp.>\"],\"storage\":\"memory\"}");
    for (int i = 0; i < 3; i++)
        pub("rp.x", "r");
    r = cons_create("RP", "O", "{\"durable_name\":\"O\",\"replay_policy\":\"original\"}");
    CHECK_OK(r);
    CHECK(!strcmp(jstr(r, "config.replay_policy"), "original"));
    cJSON_Delete(r);
    pull("RP", "O", ib, "{\"batch\":3,\"expires\":3000000000}");
    for (int i = 0; i < 3; i++) {
        m = next_msg(s, 4000);
        CHECK(m && ack_info(m, &ai) && ai.sseq == (unsigned long long)i + 1);
        ember_msg_release(m);
    }
    drain(s);
    ember_sub_unsubscribe(s);
}

/* ------------------------------------------------------------------ restart */

static void test_restart(void)
{
    stream_create("RS", "{\"name\":\"RS\",\"subjects\":[\"rs.>\"],\"storage\":\"file\"}");
    for (int i = 1; i <= 6; i++)
        pub("rs.x", "v");
    cJSON *r = cons_create("RS", "DUR", "{\"durable_name\":\"DUR\",\"ack_policy\":\"explicit\",\"ack_wait\":500000000,\"metadata\":{\"a\":\"b\"}}");
    CHECK_OK(r);
    char created[64];
    snprintf(created, sizeof created, "%s", jstr(r, "created"));
    cJSON_Delete(r);
    r = cons_create("RS", "EPH", "{\"ack_policy\":\"explicit\"}");
    CHECK_OK(r);
    cJSON_Delete(r);
    char ib[64];
    ember_sub *s = inbox_sub(ib, sizeof ib);
    pull("RS", "DUR", ib, "{\"batch\":4,\"expires\":2000000000}");
    ember_msg *m[4] = {0};
    for (int i = 0; i < 4; i++)
        m[i] = next_msg(s, 3000);
    REQUIRE(m[3]);
    CHECK(ack(m[0], "+ACK", true));
    CHECK(ack(m[1], "+ACK", true));
    CHECK(ack(m[3], "+ACK", true));
    CHECK(ack(m[2], "-NAK", true)); /* back on the redelivery queue; stays pending */
    for (int i = 0; i < 4; i++)
        ember_msg_release(m[i]);
    drain(s);
    ember_sub_unsubscribe(s);
    down();
    REQUIRE(up());
    r = cons_info("RS", "EPH");
    CHECK_ERR(r, 10014); /* ephemerals are not kept */
    cJSON_Delete(r);
    r = cons_info("RS", "DUR");
    CHECK_OK(r);
    CHECK(!strcmp(jstr(r, "created"), created));
    CHECK(!strcmp(jstr(r, "config.metadata.a"), "b"));
    CHECK_EQ(jnum(r, "delivered.consumer_seq"), 4);
    CHECK_EQ(jnum(r, "delivered.stream_seq"), 4);
    CHECK_EQ(jnum(r, "ack_floor.stream_seq"), 2);
    CHECK_EQ(jnum(r, "num_ack_pending"), 1);
    CHECK_EQ(jnum(r, "num_pending"), 2);
    cJSON_Delete(r);
    /* the unacked one comes back (redelivered), then 5 and 6 */
    s = inbox_sub(ib, sizeof ib);
    pull("RS", "DUR", ib, "{\"batch\":3,\"expires\":10000000000}");
    unsigned long long seqs[3] = {0};
    for (int i = 0; i < 3; i++) {
        ember_msg *x = next_msg(s, 11000);
        ackinfo ai;
        if (x && ack_info(x, &ai)) {
            seqs[i] = ai.sseq;
            if (ai.sseq == 3)
                CHECK(ai.dc >= 2);
            ack(x, "+ACK", true);
        }
        ember_msg_release(x);
    }
    CHECK(seqs[0] == 3 || seqs[1] == 3 || seqs[2] == 3);
    CHECK(seqs[2] == 6 || seqs[1] == 6);
    r = cons_info("RS", "DUR");
    CHECK_EQ(jnum(r, "ack_floor.stream_seq"), 6);
    CHECK_EQ(jnum(r, "num_ack_pending"), 0);
    cJSON_Delete(r);
    drain(s);
    ember_sub_unsubscribe(s);
    /* acks survive a second restart; delete removes the files */
    down();
    REQUIRE(up());
    r = cons_info("RS", "DUR");
    CHECK_EQ(jnum(r, "ack_floor.stream_seq"), 6);
    CHECK_EQ(jnum(r, "num_pending"), 0);
    cJSON_Delete(r);
    r = apif(NULL, "$JS.API.CONSUMER.DELETE.RS.DUR");
    CHECK_OK(r);
    cJSON_Delete(r);
    down();
    REQUIRE(up());
    r = cons_info("RS", "DUR");
    CHECK_ERR(r, 10014);
    cJSON_Delete(r);
}

/* ------------------------------------------------------------------ priority groups */

/* The value of one header of a message ("" when absent). */
static const char *hval(ember_msg *m, const char *k)
{
    const char *v = m ? ember_msg_header_get(m, k) : NULL;
    return v ? v : "";
}

#define CHECK_STR(a, b)                                                                    \
    do {                                                                                   \
        const char *a_ = (a), *b_ = (b);                                                   \
        CHECK_MSG(a_ && b_ && !strcmp(a_, b_), "'%s' != '%s'", a_ ? a_ : "(null)",          \
                  b_ ? b_ : "(null)");                                                     \
    } while (0)

/* A field of the first priority group state of a consumer info (NULL when absent). */
static cJSON *pg0(cJSON *r, const char *k)
{
    cJSON *g = cJSON_GetArrayItem(jget(r, "priority_groups"), 0);
    return g ? cJSON_GetObjectItemCaseSensitive(g, k) : NULL;
}

static const char *pg0s(cJSON *r, const char *k)
{
    cJSON *v = pg0(r, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void test_priority_groups(void)
{
    stream_create("PG", "{\"name\":\"PG\",\"subjects\":[\"pg.>\"],\"storage\":\"memory\"}");
    /* config validation, with nats-server's codes */
    cJSON *r = cons_create("PG", "E1", "{\"durable_name\":\"E1\",\"priority_groups\":[\"A\"]}");
    CHECK_ERR(r, 10196);
    cJSON_Delete(r);
    r = cons_create("PG", "E2", "{\"durable_name\":\"E2\",\"priority_timeout\":1000000000}");
    CHECK_ERR(r, 10197);
    cJSON_Delete(r);
    r = cons_create("PG", "E3", "{\"durable_name\":\"E3\",\"priority_policy\":\"overflow\"}");
    CHECK_ERR(r, 10159);
    cJSON_Delete(r);
    r = cons_create("PG", "E4", "{\"durable_name\":\"E4\",\"priority_policy\":\"overflow\","
                                "\"priority_groups\":[\"bad group\"]}");
    CHECK_ERR(r, 10162);
    cJSON_Delete(r);
    r = cons_create("PG", "E5", "{\"durable_name\":\"E5\",\"priority_policy\":\"overflow\","
                                "\"priority_groups\":[\"\"]}");
    CHECK_ERR(r, 10161);
    cJSON_Delete(r);
    r = cons_create("PG", "E6", "{\"deliver_subject\":\"pgd\",\"priority_policy\":\"overflow\","
                                "\"priority_groups\":[\"A\"]}");
    CHECK_ERR(r, 10178);
    cJSON_Delete(r);
    r = cons_create("PG", "E7", "{\"durable_name\":\"E7\",\"priority_policy\":\"bogus\","
                                "\"priority_groups\":[\"A\"]}");
    CHECK_ERR(r, 10025);
    cJSON_Delete(r);

    /* pinned_client: one client holds the pin; others wait; 423 for a wrong pin */
    r = cons_create("PG", "PIN", "{\"durable_name\":\"PIN\",\"ack_policy\":\"explicit\","
                                 "\"priority_policy\":\"pinned_client\",\"priority_groups\":[\"A\"],"
                                 "\"priority_timeout\":1000000000}");
    CHECK_OK(r);
    CHECK_STR(jstr(r, "config.priority_policy"), "pinned_client");
    CHECK_EQ(jnum(r, "config.priority_timeout"), 1000000000LL);
    CHECK(cJSON_IsString(cJSON_GetArrayItem(jget(r, "config.priority_groups"), 0)) &&
          !strcmp(cJSON_GetArrayItem(jget(r, "config.priority_groups"), 0)->valuestring, "A"));
    {
        cJSON *lv = cJSON_GetObjectItemCaseSensitive(jget(r, "config.metadata"), "_nats.req.level");
        CHECK(cJSON_IsString(lv) && !strcmp(lv->valuestring, "1"));
    }
    CHECK_STR(pg0s(r, "group"), "A");
    CHECK_STR(pg0s(r, "pinned_ts"), "0001-01-01T00:00:00Z");
    CHECK(!pg0(r, "pinned_client_id"));
    cJSON_Delete(r);
    char ib[64], ib2[64];
    ember_sub *s = inbox_sub(ib, sizeof ib);
    ember_sub *s2 = inbox_sub(ib2, sizeof ib2);
    REQUIRE(s && s2);
    ember_msg *x;
    /* request checks */
    pull("PG", "PIN", ib, "{\"batch\":1}");
    x = next_msg(s, 5000);
    CHECK(x && hdr_is(x, "NATS/1.0 400 Bad Request - Priority Group missing\r\n\r\n"));
    ember_msg_release(x);
    pull("PG", "PIN", ib, "{\"batch\":1,\"group\":\"B\"}");
    x = next_msg(s, 5000);
    CHECK(x && hdr_is(x, "NATS/1.0 400 Bad Request - Invalid Priority Group\r\n\r\n"));
    ember_msg_release(x);
    pull("PG", "PIN", ib, "{\"batch\":1,\"group\":\"A\",\"min_pending\":1}");
    x = next_msg(s, 5000);
    CHECK(x && hdr_is(x, "NATS/1.0 400 Bad Request - Not a Overflow Priority consumer\r\n\r\n"));
    ember_msg_release(x);
    pull("PG", "PIN", ib, "{\"batch\":1,\"group\":\"A\",\"priority\":10}");
    x = next_msg(s, 5000);
    CHECK(x && hdr_is(x, "NATS/1.0 400 Bad Request - Priority must be between 0 and 9\r\n\r\n"));
    ember_msg_release(x);

    pub("pg.a", "1");
    pub("pg.a", "2");
    pub("pg.a", "3");
    pull("PG", "PIN", ib, "{\"batch\":1,\"group\":\"A\",\"expires\":5000000000}");
    x = next_msg(s, 5000);
    CHECK(x && data_is(x, "1"));
    char pin[64];
    snprintf(pin, sizeof pin, "%s", hval(x, "Nats-Pin-Id"));
    CHECK_MSG(strlen(pin) == 22, "pin id '%s'", pin);
    if (x)
        CHECK(ack(x, "+ACK", true));
    ember_msg_release(x);
    r = cons_info("PG", "PIN");
    CHECK_STR(pg0s(r, "group"), "A");
    CHECK_STR(pg0s(r, "pinned_client_id"), pin);
    CHECK(strcmp(pg0s(r, "pinned_ts"), "0001-01-01T00:00:00Z") != 0);
    cJSON_Delete(r);
    /* another client without the pin waits; a wrong pin is refused at once */
    pull("PG", "PIN", ib2, "{\"batch\":1,\"group\":\"A\",\"expires\":300000000}");
    x = next_msg(s2, 5000);
    CHECK_MSG(x && ember_msg_status(x) == 408, "unpinned client: status %d",
              x ? ember_msg_status(x) : -1);
    ember_msg_release(x);
    pull("PG", "PIN", ib2, "{\"batch\":1,\"group\":\"A\",\"id\":\"WRONGPINWRONGPINWRONGP\"}");
    x = next_msg(s2, 5000);
    CHECK(x && hdr_is(x, "NATS/1.0 423 Nats-Pin-Id mismatch\r\n\r\n"));
    ember_msg_release(x);
    /* the pinned client gets the next one with the same pin */
    char body[256];
    snprintf(body, sizeof body, "{\"batch\":1,\"group\":\"A\",\"id\":\"%s\",\"expires\":5000000000}", pin);
    pull("PG", "PIN", ib, body);
    x = next_msg(s, 5000);
    CHECK(x && data_is(x, "2"));
    CHECK_STR(hval(x, "Nats-Pin-Id"), pin);
    if (x)
        CHECK(ack(x, "+ACK", true));
    ember_msg_release(x);
    /* admin unpin: errors first */
    r = api("$JS.API.CONSUMER.UNPIN.PG.PIN", "{}");
    CHECK_ERR(r, 10025);
    CHECK_STR(err_desc(r), "invalid JSON: consumer group not specified");
    cJSON_Delete(r);
    r = api("$JS.API.CONSUMER.UNPIN.PG.PIN", "{\"group\":\"B\"}");
    CHECK_ERR(r, 10160);
    cJSON_Delete(r);
    r = api("$JS.API.CONSUMER.UNPIN.PG.PIN", "{\"group\":\"a b\"}");
    CHECK_ERR(r, 10162);
    cJSON_Delete(r);
    r = api("$JS.API.CONSUMER.UNPIN.PG.NOPE", "{\"group\":\"A\"}");
    CHECK_ERR(r, 10014);
    cJSON_Delete(r);
    r = api("$JS.API.CONSUMER.UNPIN.NOPE.PIN", "{\"group\":\"A\"}");
    CHECK_ERR(r, 10059);
    cJSON_Delete(r);
    ember_sub *adv = NULL;
    CHECK(ember_conn_subscribe(&adv, g_c, "$JS.EVENT.ADVISORY.CONSUMER.*.PG.PIN", NULL,
                               EMBER_DELIVER_POLL, NULL, NULL, NULL) == 0);
    r = api("$JS.API.CONSUMER.UNPIN.PG.PIN", "{\"group\":\"A\"}");
    CHECK_OK(r);
    CHECK_STR(jstr(r, "type"), "io.nats.jetstream.api.v1.consumer_unpin_response");
    cJSON_Delete(r);
    x = adv ? next_msg(adv, 5000) : NULL;
    CHECK(x && !strcmp(ember_msg_subject(x), "$JS.EVENT.ADVISORY.CONSUMER.UNPINNED.PG.PIN"));
    ember_msg_release(x);
    r = cons_info("PG", "PIN");
    CHECK(!pg0(r, "pinned_client_id"));
    cJSON_Delete(r);
    /* the old pin is now wrong: 423 from the wait queue; a new client gets a new pin */
    pull("PG", "PIN", ib, body);
    x = next_msg(s, 5000);
    CHECK_MSG(x && ember_msg_status(x) == 423, "old pin: status %d", x ? ember_msg_status(x) : -1);
    ember_msg_release(x);
    pull("PG", "PIN", ib2, "{\"batch\":1,\"group\":\"A\",\"expires\":5000000000}");
    x = next_msg(s2, 5000);
    CHECK(x && data_is(x, "3"));
    char pin2[64];
    snprintf(pin2, sizeof pin2, "%s", hval(x, "Nats-Pin-Id"));
    CHECK(strlen(pin2) == 22 && strcmp(pin, pin2) != 0);
    ember_msg_release(x);
    x = adv ? next_msg(adv, 5000) : NULL;
    CHECK(x && !strcmp(ember_msg_subject(x), "$JS.EVENT.ADVISORY.CONSUMER.PINNED.PG.PIN"));
    if (x) {
        size_t n;
        const char *d = ember_msg_data(x, &n);
        cJSON *a = cJSON_ParseWithLength(d, n);
        CHECK_STR(jstr(a, "type"), "io.nats.jetstream.advisory.v1.consumer_group_pinned");
        CHECK_STR(jstr(a, "pinned_id"), pin2);
        CHECK_STR(jstr(a, "group"), "A");
        cJSON_Delete(a);
    }
    ember_msg_release(x);
    /* no pull for priority_timeout (1s): the pin lapses */
    x = adv ? next_msg(adv, 10000) : NULL;
    CHECK(x && !strcmp(ember_msg_subject(x), "$JS.EVENT.ADVISORY.CONSUMER.UNPINNED.PG.PIN"));
    if (x) {
        size_t n;
        const char *d = ember_msg_data(x, &n);
        cJSON *a = cJSON_ParseWithLength(d, n);
        CHECK_STR(jstr(a, "reason"), "timeout");
        cJSON_Delete(a);
    }
    ember_msg_release(x);
    r = cons_info("PG", "PIN");
    CHECK(!pg0(r, "pinned_client_id"));
    cJSON_Delete(r);
    drain(s);
    drain(s2);
    if (adv)
        ember_sub_unsubscribe(adv);

    /* overflow: a request with min_pending waits until that many are pending */
    r = cons_create("PG", "OVF", "{\"durable_name\":\"OVF\",\"ack_policy\":\"explicit\","
                                 "\"deliver_policy\":\"new\",\"priority_policy\":\"overflow\","
                                 "\"priority_groups\":[\"A\"]}");
    CHECK_OK(r);
    CHECK(!jget(r, "config.priority_timeout"));
    cJSON_Delete(r);
    pull("PG", "OVF", ib, "{\"batch\":1,\"group\":\"A\",\"id\":\"X\"}");
    x = next_msg(s, 5000);
    CHECK(x && hdr_is(x, "NATS/1.0 400 Bad Request - Not a Pinned Client Priority consumer\r\n\r\n"));
    ember_msg_release(x);
    pull("PG", "OVF", ib, "{\"batch\":1,\"group\":\"A\",\"min_pending\":3,\"expires\":10000000000}");
    pub("pg.o", "o1");
    pub("pg.o", "o2");
    /* 2 pending < 3: nothing; a plain request of the group gets them */
    x = next_msg(s, 300);
    CHECK(!x);
    ember_msg_release(x);
    pull("PG", "OVF", ib2, "{\"batch\":1,\"group\":\"A\",\"expires\":5000000000}");
    x = next_msg(s2, 5000);
    CHECK(x && data_is(x, "o1"));
    ember_msg_release(x);
    pub("pg.o", "o3");
    pub("pg.o", "o4");
    pub("pg.o", "o5"); /* 4 pending: the overflow request is served */
    x = next_msg(s, 5000);
    CHECK(x && data_is(x, "o2"));
    ember_msg_release(x);
    /* min_ack_pending: 2 unacked (o1, o2) >= 2 */
    pull("PG", "OVF", ib, "{\"batch\":1,\"group\":\"A\",\"min_ack_pending\":2,\"expires\":5000000000}");
    x = next_msg(s, 5000);
    CHECK(x && data_is(x, "o3"));
    ember_msg_release(x);
    drain(s);
    drain(s2);

    /* prioritized (2.12): the lower priority number is served first */
    r = cons_create("PG", "PRI", "{\"durable_name\":\"PRI\",\"ack_policy\":\"none\","
                                 "\"deliver_policy\":\"new\",\"priority_policy\":\"prioritized\","
                                 "\"priority_groups\":[\"A\"]}");
    CHECK_OK(r);
    cJSON_Delete(r);
    pull("PG", "PRI", ib, "{\"batch\":1,\"group\":\"A\",\"priority\":5,\"expires\":5000000000}");
    pull("PG", "PRI", ib2, "{\"batch\":1,\"group\":\"A\",\"priority\":1,\"expires\":5000000000}");
    r = cons_info("PG", "PRI"); /* both requests are queued before the message */
    CHECK_EQ(jnum(r, "num_waiting"), 2);
    cJSON_Delete(r);
    pub("pg.p", "p1");
    x = next_msg(s2, 5000);
    CHECK(x && data_is(x, "p1"));
    ember_msg_release(x);
    pub("pg.p", "p2");
    x = next_msg(s, 5000);
    CHECK(x && data_is(x, "p2"));
    ember_msg_release(x);
    ember_sub_unsubscribe(s);
    ember_sub_unsubscribe(s2);
    r = apif(NULL, "$JS.API.STREAM.DELETE.PG");
    CHECK_OK(r);
    cJSON_Delete(r);
}

/* ------------------------------------------------------------------ consumer reset */

/* $JS.API.CONSUMER.RESET (nats-server 2.14, ADR-60). */
static void test_reset(void)
{
    stream_create("RS", "{\"name\":\"RS\",\"subjects\":[\"rs.>\"],\"storage\":\"memory\"}");
    for (int i = 1; i <= 5; i++) {
        char d[8];
        snprintf(d, sizeof d, "m%d", i);
        pub("rs.a", d);
    }
    cJSON *r = cons_create("RS", "C", "{\"durable_name\":\"C\",\"ack_policy\":\"explicit\"}");
    CHECK_OK(r);
    cJSON_Delete(r);
    char ib[64];
    ember_sub *s = inbox_sub(ib, sizeof ib);
    REQUIRE(s);
    pull("RS", "C", ib, "{\"batch\":3,\"expires\":5000000000}");
    for (int i = 0; i < 3; i++) {
        ember_msg *x = next_msg(s, 5000);
        CHECK(x);
        if (x && i < 2)
            CHECK(ack(x, "+ACK", true));
        ember_msg_release(x);
    }
    drain(s);
    r = cons_info("RS", "C");
    CHECK_EQ(jnum(r, "num_ack_pending"), 1);
    CHECK_EQ(jnum(r, "ack_floor.stream_seq"), 2);
    cJSON_Delete(r);
    /* no body: back to the ack floor; pending acks are forgotten */
    r = api("$JS.API.CONSUMER.RESET.RS.C", NULL);
    CHECK_OK(r);
    CHECK(!strcmp(jstr(r, "type"), "io.nats.jetstream.api.v1.consumer_reset_response"));
    CHECK_EQ(jnum(r, "reset_seq"), 3);
    CHECK(!strcmp(jstr(r, "name"), "C"));
    CHECK_EQ(jnum(r, "num_ack_pending"), 0);
    CHECK_EQ(jnum(r, "num_pending"), 3);
    CHECK_EQ(jnum(r, "delivered.stream_seq"), 2);
    CHECK_EQ(jnum(r, "delivered.consumer_seq"), 0);
    CHECK_EQ(jnum(r, "ack_floor.stream_seq"), 2);
    cJSON_Delete(r);
    ember_msg *x = pull_one(s, ib, "RS", "C", 2000);
    CHECK(x && data_is(x, "m3"));
    ackinfo ai;
    CHECK(ack_info(x, &ai) && ai.sseq == 3 && ai.dseq == 1 && ai.dc == 1);
    ember_msg_release(x);
    /* to a given sequence (deliver all: any) */
    r = api("$JS.API.CONSUMER.RESET.RS.C", "{\"seq\":1}");
    CHECK_OK(r);
    CHECK_EQ(jnum(r, "reset_seq"), 1);
    CHECK_EQ(jnum(r, "num_pending"), 5);
    CHECK_EQ(jnum(r, "num_ack_pending"), 0);
    cJSON_Delete(r);
    x = pull_one(s, ib, "RS", "C", 2000);
    CHECK(x && data_is(x, "m1"));
    ember_msg_release(x);
    r = api("$JS.API.CONSUMER.RESET.RS.C", "{\"seq\":\"x\"}");
    CHECK_ERR(r, 10025);
    cJSON_Delete(r);
    /* by_start_sequence: not below the start; other policies: only to the ack floor */
    r = cons_create("RS", "SS", "{\"durable_name\":\"SS\",\"ack_policy\":\"explicit\","
                                "\"deliver_policy\":\"by_start_sequence\",\"opt_start_seq\":3}");
    CHECK_OK(r);
    cJSON_Delete(r);
    r = api("$JS.API.CONSUMER.RESET.RS.SS", "{\"seq\":2}");
    CHECK_ERR(r, 10204);
    CHECK(!strcmp(err_desc(r), "invalid reset: below start seq"));
    cJSON_Delete(r);
    r = api("$JS.API.CONSUMER.RESET.RS.SS", "{\"seq\":4}");
    CHECK_OK(r);
    CHECK_EQ(jnum(r, "num_pending"), 2);
    cJSON_Delete(r);
    r = cons_create("RS", "NW", "{\"durable_name\":\"NW\",\"ack_policy\":\"explicit\","
                                "\"deliver_policy\":\"new\"}");
    CHECK_OK(r);
    cJSON_Delete(r);
    r = api("$JS.API.CONSUMER.RESET.RS.NW", "{\"seq\":2}");
    CHECK_ERR(r, 10204);
    CHECK(!strcmp(err_desc(r), "invalid reset: not allowed"));
    cJSON_Delete(r);
    r = api("$JS.API.CONSUMER.RESET.RS.NW", "{}");
    CHECK_OK(r);
    CHECK_EQ(jnum(r, "reset_seq"), 6);
    cJSON_Delete(r);
    /* an interest stream drops what the reset acknowledged for its only consumer */
    stream_create("RSI", "{\"name\":\"RSI\",\"subjects\":[\"rsi.>\"],\"storage\":\"memory\","
                         "\"retention\":\"interest\"}");
    r = cons_create("RSI", "C", "{\"durable_name\":\"C\",\"ack_policy\":\"explicit\"}");
    CHECK_OK(r);
    cJSON_Delete(r);
    pub("rsi.a", "1");
    pub("rsi.a", "2");
    pub("rsi.a", "3");
    CHECK_EQ(stream_msgs("RSI"), 3);
    r = api("$JS.API.CONSUMER.RESET.RSI.C", "{\"seq\":3}");
    CHECK_OK(r);
    CHECK_EQ(jnum(r, "num_pending"), 1);
    cJSON_Delete(r);
    CHECK_EQ(stream_msgs("RSI"), 1);
    ember_sub_unsubscribe(s);
    r = apif(NULL, "$JS.API.STREAM.DELETE.RSI");
    cJSON_Delete(r);
    r = apif(NULL, "$JS.API.STREAM.DELETE.RS");
    cJSON_Delete(r);
}

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/ember-jsc-XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    if (!up()) {
        fprintf(stderr, "server did not start\n");
        return 1;
    }
    test_config_defaults();
    test_create_errors();
    test_pull_basic();
    test_pull_limits();
    test_acks();
    test_max_deliver_backoff();
    test_ack_all();
    test_num_pending();
    test_push();
    test_retention();
    test_inactive();
    test_misc();
    test_priority_groups();
    test_reset();
    test_restart();
    down();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", g_dir);
    return tu_summary("js_consumer");
}
