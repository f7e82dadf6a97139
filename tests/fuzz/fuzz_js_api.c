/* fuzz_js_api: libFuzzer target for the JetStream API handlers (core/src/js_*.c): stream
 * and consumer configs, purge / get / delete requests, pull requests, acks, and publishes
 * with JetStream headers, all reaching the engine through a real in-process connection.
 *
 * Input: records separated by the line "\n--\n". Each record is
 *     <subject>\n[<header lines>\n\n]<body>
 * where <subject> is taken as is when it starts with "$JS." or "s.", and otherwise picks
 * one of a table of API subjects by its first byte. Header lines ("Key: Value") are sent
 * as NATS headers (Nats-Msg-Id, Nats-Expected-*, Nats-Rollup, Nats-TTL, ...).
 *
 * The broker (JetStream on, a private store directory, no listener) lives for the whole
 * run; the reply of each request is taken synchronously (INLINE subscription, memory
 * streams answer in the publishing call) and, when it is JSON, must parse. Every 256
 * inputs the streams named in the table are deleted so state stays bounded.
 *
 *   ./fuzz_js_api -runs=100000 -dict=tests/fuzz/fuzz_js_api.dict tests/fuzz/corpus/js_api
 */
#define _GNU_SOURCE
#include "ember.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const subjects[] = {
    "$JS.API.INFO",
    "$JS.API.STREAM.CREATE.S",
    "$JS.API.STREAM.UPDATE.S",
    "$JS.API.STREAM.INFO.S",
    "$JS.API.STREAM.NAMES",
    "$JS.API.STREAM.LIST",
    "$JS.API.STREAM.PURGE.S",
    "$JS.API.STREAM.MSG.GET.S",
    "$JS.API.STREAM.MSG.DELETE.S",
    "$JS.API.DIRECT.GET.S",
    "$JS.API.DIRECT.GET.S.s.a",
    "$JS.API.CONSUMER.CREATE.S",
    "$JS.API.CONSUMER.CREATE.S.C",
    "$JS.API.CONSUMER.CREATE.S.C.s.>",
    "$JS.API.CONSUMER.DURABLE.CREATE.S.D",
    "$JS.API.CONSUMER.INFO.S.C",
    "$JS.API.CONSUMER.NAMES.S",
    "$JS.API.CONSUMER.LIST.S",
    "$JS.API.CONSUMER.MSG.NEXT.S.C",
    "$JS.API.CONSUMER.MSG.NEXT.S.D",
    "$JS.API.CONSUMER.DELETE.S.C",
    "$JS.API.STREAM.CREATE.T",
    "$JS.API.STREAM.DELETE.S",
    "s.a",
    "s.b",
    "$JS.ACK.S.D.1.1.1.0.0",
};
#define NSUBJ (sizeof subjects / sizeof subjects[0])

static ember_server *srv;
static ember_conn *conn;
/* on_reply runs on whichever thread delivers (the flusher for PubAcks after the write,
 * a consumer's timer...): last_reply is handed over under reply_mu */
static pthread_mutex_t reply_mu = PTHREAD_MUTEX_INITIALIZER;
static ember_msg *last_reply;
static char dir[256];
static char want_reply[64]; /* the inbox of the request in flight */

static void on_reply(void *ud, ember_sub *s, ember_msg *m)
{
    (void)ud;
    (void)s;
    /* consumers the input creates may deliver stored messages to _R.* as well: only the
     * reply to the request in flight is an API answer */
    pthread_mutex_lock(&reply_mu);
    ember_msg *old = NULL;
    if (!strcmp(ember_msg_subject(m), want_reply)) {
        old = last_reply;
        last_reply = ember_msg_retain(m);
    }
    pthread_mutex_unlock(&reply_mu);
    if (old)
        ember_msg_release(old);
}

static void rm_rf(const char *path)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_js_api: could not remove %s\n", path);
}

static void cleanup(void)
{
    if (conn)
        ember_conn_close(conn);
    if (srv)
        ember_server_free(srv);
    if (last_reply)
        ember_msg_release(last_reply);
    if (dir[0])
        rm_rf(dir);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/ember-fuzz-js-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true;
    o.jetstream = true;
    o.store_dir = dir;
    o.jetstream_sync_interval_ms = 1000; /* fuzzing is about parsing, not fsync */
    if (ember_server_new(&srv, &o) || ember_server_start(srv) ||
        !ember_server_ready_for_connections(srv, 10000) || ember_conn_connect(&conn, srv, NULL))
        abort();
    ember_sub *sub;
    if (ember_conn_subscribe(&sub, conn, "_R.>", NULL, EMBER_DELIVER_INLINE, on_reply, NULL, NULL))
        abort();
    atexit(cleanup);
}

static void check_reply(void)
{
    pthread_mutex_lock(&reply_mu);
    ember_msg *r = last_reply;
    last_reply = NULL;
    pthread_mutex_unlock(&reply_mu);
    if (!r)
        return;
    size_t n, hl = 0;
    const char *d = ember_msg_data(r, &n);
    /* API answers are plain JSON; direct gets (headers) and pulled messages (an ack
     * reply subject) carry stored data, which is whatever was published */
    bool api_answer = !ember_msg_headers_raw(r, &hl) && !ember_msg_reply(r);
    if (api_answer && n && d[0] == '{') {
        cJSON *j = cJSON_ParseWithLength(d, n);
        if (!j) {
            fprintf(stderr, "unparsable JSON reply: %.*s\n", (int)n, d);
            abort();
        }
        cJSON_Delete(j);
    }
    ember_msg_release(r);
}

static void one(const char *p, size_t n)
{
    const char *nl = memchr(p, '\n', n);
    size_t sl = nl ? (size_t)(nl - p) : n;
    char subj[256];
    if (sl >= 4 && (!memcmp(p, "$JS.", 4) || !memcmp(p, "s.", 2)) && sl < sizeof subj) {
        memcpy(subj, p, sl);
        subj[sl] = 0;
    } else {
        snprintf(subj, sizeof subj, "%s", subjects[sl ? (unsigned char)p[0] % NSUBJ : 0]);
    }
    const char *rest = nl ? nl + 1 : p + n;
    size_t rn = (size_t)(p + n - rest);
    /* optional header lines up to a blank line */
    const char *body = rest;
    size_t bn = rn;
    const char *blank = rn ? memmem(rest, rn, "\n\n", 2) : NULL;
    bool with_hdrs = rn > 0 && rest[0] != '{' && blank;
    if (with_hdrs) {
        body = blank + 2;
        bn = (size_t)(p + n - body);
    }
    static unsigned long long seq;
    char reply[64];
    snprintf(reply, sizeof reply, "_R.%llu", ++seq);
    pthread_mutex_lock(&reply_mu);
    snprintf(want_reply, sizeof want_reply, "%s", reply);
    pthread_mutex_unlock(&reply_mu);
    ember_msg *m;
    if (ember_msg_new(&m, subj, reply, body, bn) != EMBER_OK)
        return; /* an invalid subject from the input */
    if (with_hdrs) {
        const char *h = rest;
        while (h < blank) {
            const char *e = memchr(h, '\n', (size_t)(blank - h));
            if (!e)
                e = blank;
            const char *colon = memchr(h, ':', (size_t)(e - h));
            if (colon && colon > h && e - colon < 200 && colon - h < 64) {
                char k[64], v[200];
                memcpy(k, h, (size_t)(colon - h));
                k[colon - h] = 0;
                const char *vs = colon + 1;
                while (vs < e && *vs == ' ')
                    vs++;
                memcpy(v, vs, (size_t)(e - vs));
                v[e - vs] = 0;
                ember_msg_header_add(m, k, v); /* invalid keys are refused: fine */
            }
            h = e + 1;
        }
    }
    ember_conn_publish_msg(conn, m);
    ember_msg_release(m);
    check_reply();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!srv)
        setup();
    static unsigned iter;
    if (++iter % 256 == 0) {
        one("$JS.API.STREAM.DELETE.S\n", 24);
        one("$JS.API.STREAM.DELETE.T\n", 24);
    }
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *sep = memmem(p, (size_t)(end - p), "\n--\n", 4);
        size_t len = sep ? (size_t)(sep - p) : (size_t)(end - p);
        one(p, len);
        p += len + (sep ? 4 : 0);
    }
    return 0;
}
