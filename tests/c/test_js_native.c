/* test_js_native: the native JetStream and key-value API of ember.h (ember_js_*, ember_kv_*)
 * on an embedded server: streams, durable publish, dedupe and expectations, gets, pull
 * consumers with acks and redelivery, KV with every error path, async puts, watch, and a restart on
 * the same store directory. The wire view of the same objects is checked through
 * $JS.API requests on the in-process connection. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ember.h"
#include "testutil.h"

static char dir[128];

static ember_server *start_in(const char *store_dir)
{
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true;
    o.jetstream = true;
    o.store_dir = store_dir;
    ember_server *s = NULL;
    if (ember_server_new(&s, &o) || ember_server_start(s) ||
        !ember_server_ready_for_connections(s, 10000)) {
        fprintf(stderr, "start: %s\n", ember_last_error());
        ember_server_free(s);
        return NULL;
    }
    return s;
}

static ember_server *start(void) { return start_in(dir); }

static cJSON *api(ember_conn *c, const char *subj, const char *body)
{
    ember_msg *r = NULL;
    if (ember_conn_request(c, subj, body, body ? strlen(body) : 0, 5000, &r))
        return NULL;
    size_t n;
    const char *d = ember_msg_data(r, &n);
    cJSON *j = cJSON_ParseWithLength(d, n);
    ember_msg_release(r);
    return j;
}

static ember_msg *msg(const char *subj, const char *data)
{
    ember_msg *m = NULL;
    ember_msg_new(&m, subj, NULL, data, strlen(data));
    return m;
}

static void test_streams(ember_conn *c)
{
    ember_stream_config sc;
    ember_stream_config_init(&sc);
    const char *subjects[] = {"orders.>"};
    sc.name = "ORDERS";
    sc.subjects = subjects;
    sc.nsubjects = 1;
    sc.max_msgs_per_subject = 3;
    REQUIRE(ember_js_stream_create(c, &sc) == EMBER_OK);
    CHECK(ember_js_stream_create(c, &sc) == EMBER_OK); /* identical: idempotent */
    sc.max_msgs_per_subject = 5;
    CHECK(ember_js_stream_create(c, &sc) == EMBER_EEXISTS);
    CHECK(strstr(ember_last_error(), "10058") != NULL);
    sc.max_msgs_per_subject = 3;

    /* publish: durable ack with sequence numbers */
    ember_pub_ack ack;
    for (int i = 1; i <= 5; i++) {
        char d[16];
        snprintf(d, sizeof d, "o%d", i);
        ember_msg *m = msg(i <= 4 ? "orders.a" : "orders.b", d);
        CHECK(ember_js_publish(c, m, &ack) == EMBER_OK);
        CHECK_EQ(ack.seq, i);
        CHECK(!ack.duplicate);
        ember_msg_release(m);
    }
    ember_stream_info si;
    REQUIRE(ember_js_stream_info(c, "ORDERS", &si) == EMBER_OK);
    CHECK_EQ(si.msgs, 4); /* per-subject limit 3 evicted o1 */
    CHECK_EQ(si.first_seq, 2);
    CHECK_EQ(si.last_seq, 5);
    CHECK_EQ(si.num_subjects, 2);

    /* dedupe */
    ember_msg *m = msg("orders.c", "x");
    ember_msg_header_set(m, "Nats-Msg-Id", "id-1");
    CHECK(ember_js_publish(c, m, &ack) == EMBER_OK);
    uint64_t first = ack.seq;
    CHECK(ember_js_publish(c, m, &ack) == EMBER_OK);
    CHECK(ack.duplicate && ack.seq == first);
    ember_msg_release(m);

    /* expectations */
    m = msg("orders.c", "y");
    ember_msg_header_set(m, "Nats-Expected-Last-Sequence", "1");
    CHECK(ember_js_publish(c, m, &ack) == EMBER_EWRONGSEQ);
    CHECK(strstr(ember_last_error(), "wrong last sequence: 6") != NULL);
    ember_msg_release(m);
    m = msg("orders.c", "y");
    ember_msg_header_set(m, "Nats-Expected-Stream", "OTHER");
    CHECK(ember_js_publish(c, m, &ack) == EMBER_EWRONGSEQ);
    ember_msg_release(m);

    /* no stream */
    m = msg("nowhere.x", "y");
    CHECK(ember_js_publish(c, m, &ack) == EMBER_ENOTFOUND);
    ember_msg_release(m);

    /* gets */
    ember_msg *g = NULL;
    REQUIRE(ember_js_get(c, "ORDERS", 5, &g) == EMBER_OK);
    size_t n;
    CHECK(!strcmp(ember_msg_data(g, &n), "o5"));
    CHECK(!strcmp(ember_msg_subject(g), "orders.b"));
    CHECK(!strcmp(ember_msg_header_get(g, "Nats-Sequence"), "5"));
    CHECK(!strcmp(ember_msg_header_get(g, "Nats-Stream"), "ORDERS"));
    ember_js_meta meta;
    CHECK(ember_js_msg_meta(g, &meta) == EMBER_OK && meta.stream_seq == 5 && meta.timestamp_ns > 0);
    ember_msg_release(g);
    CHECK(ember_js_get(c, "ORDERS", 1, &g) == EMBER_ENOTFOUND);
    CHECK(ember_js_get_last(c, "ORDERS", "orders.a", &g) == EMBER_OK);
    if (g) {
        CHECK(!strcmp(ember_msg_data(g, &n), "o4"));
        ember_msg_release(g);
    }
    CHECK(ember_js_get_last(c, "ORDERS", "orders.*", &g) == EMBER_OK);
    if (g) {
        CHECK(!strcmp(ember_msg_subject(g), "orders.c"));
        ember_msg_release(g);
    }
    CHECK(ember_js_get(c, "NOPE", 1, &g) == EMBER_ENOTFOUND);

    /* the wire sees the same stream */
    cJSON *r = api(c, "$JS.API.STREAM.INFO.ORDERS", NULL);
    REQUIRE(r);
    cJSON *st = cJSON_GetObjectItem(r, "state");
    CHECK(st && cJSON_GetObjectItem(st, "last_seq")->valuedouble == 6);
    cJSON_Delete(r);

    /* delete, purge */
    CHECK(ember_js_delete_msg(c, "ORDERS", 2) == EMBER_OK);
    CHECK(ember_js_get(c, "ORDERS", 2, &g) == EMBER_ENOTFOUND);
    uint64_t purged = 0;
    CHECK(ember_js_stream_purge(c, "ORDERS", "orders.a", &purged) == EMBER_OK);
    CHECK_EQ(purged, 2);
    CHECK(ember_js_stream_info(c, "ORDERS", &si) == EMBER_OK && si.msgs == 2);
}

static atomic_int async_acks, async_errs;
static void on_ack(void *ud, int status, const ember_pub_ack *ack)
{
    (void)ud;
    if (status == EMBER_OK && ack && ack->seq > 0)
        atomic_fetch_add(&async_acks, 1);
    else
        atomic_fetch_add(&async_errs, 1);
}

static void test_async_and_memory(ember_conn *c)
{
    ember_stream_config sc;
    ember_stream_config_init(&sc);
    sc.name = "MEM";
    sc.storage = EMBER_STORAGE_MEMORY;
    sc.max_msgs = 100;
    sc.discard = EMBER_DISCARD_NEW;
    REQUIRE(ember_js_stream_create(c, &sc) == EMBER_OK); /* subject: the name */
    for (int i = 0; i < 120; i++) {
        ember_msg *m = msg("MEM", "z");
        CHECK(ember_js_publish_async(c, m, on_ack, NULL) == EMBER_OK);
        ember_msg_release(m);
    }
    CHECK(WAIT_UNTIL(atomic_load(&async_acks) + atomic_load(&async_errs) == 120, 10000));
    CHECK_EQ(atomic_load(&async_acks), 100);
    CHECK_EQ(atomic_load(&async_errs), 20); /* discard new: maximum messages exceeded */
    ember_msg *m = msg("MEM", "z");
    ember_pub_ack ack;
    CHECK(ember_js_publish(c, m, &ack) == EMBER_ELIMIT);
    CHECK(strstr(ember_last_error(), "maximum messages exceeded") != NULL);
    ember_msg_release(m);

    /* file stream: many async publishes, all acked (group commit) */
    atomic_store(&async_acks, 0);
    atomic_store(&async_errs, 0);
    ember_stream_config_init(&sc);
    sc.name = "FILE";
    REQUIRE(ember_js_stream_create(c, &sc) == EMBER_OK);
    for (int i = 0; i < 5000; i++) {
        m = msg("FILE", "payload");
        CHECK(ember_js_publish_async(c, m, on_ack, NULL) == EMBER_OK);
        ember_msg_release(m);
    }
    CHECK(WAIT_UNTIL(atomic_load(&async_acks) == 5000, 20000));
    CHECK_EQ(atomic_load(&async_errs), 0);
    CHECK(ember_js_stream_delete(c, "FILE") == EMBER_OK);
    CHECK(ember_js_stream_delete(c, "FILE") == EMBER_ENOTFOUND);
}

static void test_consumers(ember_conn *c)
{
    ember_stream_config sc;
    ember_stream_config_init(&sc);
    const char *subjects[] = {"jobs.*"};
    sc.name = "JOBS";
    sc.subjects = subjects;
    sc.nsubjects = 1;
    REQUIRE(ember_js_stream_create(c, &sc) == EMBER_OK);
    for (int i = 0; i < 10; i++) {
        ember_msg *m = msg(i % 2 ? "jobs.odd" : "jobs.even", "job");
        CHECK(ember_js_publish(c, m, NULL) == EMBER_OK);
        ember_msg_release(m);
    }
    ember_consumer_config cc;
    ember_consumer_config_init(&cc);
    cc.durable_name = "W";
    cc.filter_subject = "jobs.even";
    cc.ack_wait_ms = 300;
    char name[64];
    REQUIRE(ember_js_consumer_create(c, "JOBS", &cc, name, sizeof name) == EMBER_OK);
    CHECK(!strcmp(name, "W"));
    ember_consumer_info ci;
    REQUIRE(ember_js_consumer_info(c, "JOBS", "W", &ci) == EMBER_OK);
    CHECK_EQ(ci.num_pending, 5);

    ember_msg *msgs[10];
    int n = ember_js_fetch(c, "JOBS", "W", msgs, 3, 2000);
    CHECK_EQ(n, 3);
    for (int i = 0; i < n; i++) {
        ember_js_meta meta;
        CHECK(ember_js_msg_meta(msgs[i], &meta) == EMBER_OK);
        CHECK_EQ(meta.consumer_seq, i + 1);
        CHECK_EQ(meta.stream_seq, 2 * i + 1);
        CHECK_EQ(meta.num_pending, 4 - i);
        CHECK(!strcmp(ember_msg_subject(msgs[i]), "jobs.even"));
    }
    CHECK(ember_js_ack(c, msgs[0]) == EMBER_OK);
    CHECK(ember_js_term(c, msgs[1]) == EMBER_OK);
    /* msgs[2] is not acked: redelivered after ack_wait */
    CHECK(ember_js_consumer_info(c, "JOBS", "W", &ci) == EMBER_OK);
    CHECK_EQ(ci.num_pending, 2);
    CHECK_EQ(ci.num_ack_pending, 1);
    ember_msg *third = msgs[2];
    ember_msg_release(msgs[0]);
    ember_msg_release(msgs[1]);
    n = ember_js_fetch(c, "JOBS", "W", msgs, 10, 3000);
    bool redelivered = false;
    for (int i = 0; i < n; i++) {
        ember_js_meta meta;
        ember_js_msg_meta(msgs[i], &meta);
        if (meta.stream_seq == 5 && meta.num_delivered == 2)
            redelivered = true;
        CHECK(ember_js_ack(c, msgs[i]) == EMBER_OK);
        ember_msg_release(msgs[i]);
    }
    CHECK(n >= 2);
    if (!redelivered) {
        /* the redelivery may come in a later fetch */
        n = ember_js_fetch(c, "JOBS", "W", msgs, 10, 3000);
        for (int i = 0; i < n; i++) {
            ember_js_meta meta;
            ember_js_msg_meta(msgs[i], &meta);
            if (meta.stream_seq == 5 && meta.num_delivered >= 2)
                redelivered = true;
            ember_js_ack(c, msgs[i]);
            ember_msg_release(msgs[i]);
        }
    }
    CHECK(redelivered);
    ember_msg_release(third);
    CHECK(WAIT_UNTIL(ember_js_consumer_info(c, "JOBS", "W", &ci) == EMBER_OK &&
                         ci.num_ack_pending == 0 && ci.num_pending == 0,
                     5000));
    CHECK_EQ(ember_js_fetch(c, "JOBS", "W", msgs, 5, 0), 0); /* no_wait: nothing */

    /* errors */
    CHECK(ember_js_fetch(c, "JOBS", "NOPE", msgs, 1, 100) == EMBER_ENOTFOUND);
    CHECK(ember_js_consumer_info(c, "JOBS", "NOPE", &ci) == EMBER_ENOTFOUND);
    CHECK(ember_js_consumer_create(c, "NOPE", &cc, NULL, 0) == EMBER_ENOTFOUND);
    ember_msg *plain = msg("x", "y");
    CHECK(ember_js_ack(c, plain) == EMBER_EINVAL);
    ember_msg_release(plain);
    CHECK(ember_js_consumer_delete(c, "JOBS", "W") == EMBER_OK);
    CHECK(ember_js_consumer_delete(c, "JOBS", "W") == EMBER_ENOTFOUND);

    /* ephemeral: a generated name */
    ember_consumer_config_init(&cc);
    REQUIRE(ember_js_consumer_create(c, "JOBS", &cc, name, sizeof name) == EMBER_OK);
    CHECK(strlen(name) > 0);
    n = ember_js_fetch(c, "JOBS", name, msgs, 10, 1000);
    CHECK_EQ(n, 10);
    for (int i = 0; i < n; i++)
        ember_msg_release(msgs[i]);
}

static void test_kv(ember_conn *c)
{
    ember_kv_config kc;
    ember_kv_config_init(&kc);
    kc.bucket = "settings";
    kc.history = 5;
    ember_kv *kv = NULL;
    REQUIRE(ember_kv_bucket_create(c, &kc, &kv) == EMBER_OK);
    uint64_t r1, r2, r3;
    CHECK(ember_kv_put(kv, "theme", "dark", 4, &r1) == EMBER_OK);
    ember_kv_entry *e = NULL;
    REQUIRE(ember_kv_get(kv, "theme", &e) == EMBER_OK);
    CHECK(e->len == 4 && !memcmp(e->value, "dark", 4) && e->revision == r1);
    CHECK(!strcmp(e->key, "theme") && !strcmp(e->bucket, "settings") && e->op == EMBER_KV_PUT);
    ember_kv_entry_free(e);
    CHECK(ember_kv_update(kv, "theme", "light", 5, r1, &r2) == EMBER_OK);
    CHECK(ember_kv_update(kv, "theme", "x", 1, r1, &r3) == EMBER_EWRONGSEQ);
    CHECK(ember_kv_create(kv, "theme", "x", 1, &r3) == EMBER_EWRONGSEQ);
    CHECK(ember_kv_create(kv, "lang", "en", 2, &r3) == EMBER_OK);
    CHECK(ember_kv_get_revision(kv, "theme", r1, &e) == EMBER_OK);
    if (e) {
        CHECK(!memcmp(e->value, "dark", 4));
        ember_kv_entry_free(e);
    }
    CHECK(ember_kv_get_revision(kv, "theme", r3, &e) == EMBER_ENOTFOUND);
    CHECK(ember_kv_get(kv, "missing", &e) == EMBER_ENOTFOUND);
    CHECK(ember_kv_get(kv, "bad key", &e) == EMBER_EINVAL);
    CHECK(ember_kv_put(kv, ".dot", "x", 1, NULL) == EMBER_EINVAL);
    CHECK(ember_kv_put(kv, "a*", "x", 1, NULL) == EMBER_EINVAL);

    char **keys;
    size_t nk;
    REQUIRE(ember_kv_keys(kv, &keys, &nk) == EMBER_OK);
    CHECK_EQ(nk, 2);
    if (nk == 2)
        CHECK(!strcmp(keys[0], "lang") && !strcmp(keys[1], "theme"));
    free(keys);

    CHECK(ember_kv_delete(kv, "lang") == EMBER_OK);
    CHECK(ember_kv_get(kv, "lang", &e) == EMBER_ENOTFOUND);
    CHECK(ember_kv_create(kv, "lang", "fr", 2, NULL) == EMBER_OK); /* after a delete */
    ember_kv_entry **h;
    size_t nh;
    REQUIRE(ember_kv_history(kv, "lang", &h, &nh) == EMBER_OK);
    CHECK_EQ(nh, 3);
    if (nh == 3)
        CHECK(h[0]->op == EMBER_KV_PUT && h[1]->op == EMBER_KV_DEL && h[2]->op == EMBER_KV_PUT);
    ember_kv_entries_free(h, nh);
    CHECK(ember_kv_purge(kv, "lang") == EMBER_OK);
    REQUIRE(ember_kv_history(kv, "lang", &h, &nh) == EMBER_OK);
    CHECK_EQ(nh, 1);
    if (nh == 1)
        CHECK(h[0]->op == EMBER_KV_PURGE);
    ember_kv_entries_free(h, nh);
    REQUIRE(ember_kv_keys(kv, &keys, &nk) == EMBER_OK);
    CHECK_EQ(nk, 1);
    free(keys);

    /* the wire: a direct get as the clients do it */
    ember_msg *r = NULL;
    CHECK(ember_conn_request(c, "$JS.API.DIRECT.GET.KV_settings.$KV.settings.theme", NULL, 0,
                             5000, &r) == EMBER_OK);
    if (r) {
        size_t n;
        CHECK(!strcmp(ember_msg_data(r, &n), "light"));
        ember_msg_release(r);
    }

    ember_kv *kv2 = NULL;
    CHECK(ember_kv_bucket_open(c, "nope", &kv2) == EMBER_ENOTFOUND);
    CHECK(ember_kv_bucket_open(c, "bad.name", &kv2) == EMBER_EINVAL);
    REQUIRE(ember_kv_bucket_open(c, "settings", &kv2) == EMBER_OK);
    CHECK(ember_kv_get(kv2, "theme", &e) == EMBER_OK);
    ember_kv_entry_free(e);
    ember_kv_close(kv2);
    ember_kv_close(kv);
}

/* ember_kv_put_async: completions in revision order, all durable, errors reported. */
typedef struct put_state {
    atomic_int ok, errs, last_err;
    atomic_ullong last_rev;
    atomic_bool out_of_order;
    uint64_t rev[2000];
} put_state;

static _Thread_local bool in_put_call;
static atomic_int inline_calls;

static void on_put(void *ud, int status, uint64_t revision)
{
    put_state *p = ud;
    if (in_put_call)
        atomic_fetch_add(&inline_calls, 1);
    if (status != EMBER_OK) {
        atomic_store(&p->last_err, status);
        atomic_fetch_add(&p->errs, 1);
        return;
    }
    if (revision <= atomic_load(&p->last_rev))
        atomic_store(&p->out_of_order, true);
    atomic_store(&p->last_rev, revision);
    atomic_fetch_add(&p->ok, 1);
}

typedef struct put_one {
    put_state *p;
    int i;
} put_one;

static void on_put_one(void *ud, int status, uint64_t revision)
{
    put_one *o = ud;
    o->p->rev[o->i] = status == EMBER_OK ? revision : 0;
    on_put(o->p, status, revision);
    free(o);
}

static void test_kv_async(ember_conn *c)
{
    ember_kv_config kc;
    ember_kv_config_init(&kc);
    kc.bucket = "async";
    kc.max_value_size = 64;
    ember_kv *kv = NULL;
    REQUIRE(ember_kv_bucket_create(c, &kc, &kv) == EMBER_OK);
    static put_state p;
    memset(&p, 0, sizeof p);
    char val[32];
    for (int i = 0; i < 2000; i++) {
        char key[16];
        snprintf(key, sizeof key, "k.%d", i % 100);
        snprintf(val, sizeof val, "v%d", i);
        put_one *o = malloc(sizeof *o);
        REQUIRE(o);
        o->p = &p;
        o->i = i;
        CHECK(ember_kv_put_async(kv, key, val, strlen(val), on_put_one, o) == EMBER_OK);
    }
    CHECK(WAIT_UNTIL(atomic_load(&p.ok) + atomic_load(&p.errs) == 2000, 20000));
    CHECK_EQ(atomic_load(&p.errs), 0);
    CHECK(!atomic_load(&p.out_of_order));
    /* every key holds its last value, at the revision its completion reported */
    for (int k = 0; k < 100; k++) {
        char key[16];
        snprintf(key, sizeof key, "k.%d", k);
        snprintf(val, sizeof val, "v%d", 1900 + k);
        ember_kv_entry *e = NULL;
        CHECK(ember_kv_get(kv, key, &e) == EMBER_OK);
        if (e) {
            CHECK(e->len == strlen(val) && !memcmp(e->value, val, e->len));
            CHECK_EQ(e->revision, p.rev[1900 + k]);
            ember_kv_entry_free(e);
        }
    }
    /* errors found before writing: returned, fn never called */
    int before = atomic_load(&p.ok) + atomic_load(&p.errs);
    CHECK(ember_kv_put_async(NULL, "k", "v", 1, on_put, &p) == EMBER_EINVAL);
    CHECK(ember_kv_put_async(kv, "k", "v", 1, NULL, &p) == EMBER_EINVAL);
    CHECK(ember_kv_put_async(kv, "bad key", "v", 1, on_put, &p) == EMBER_EINVAL);
    CHECK(ember_kv_put_async(kv, "k.>", "v", 1, on_put, &p) == EMBER_EINVAL);
    CHECK(ember_kv_put_async(kv, "k", NULL, 3, on_put, &p) == EMBER_EINVAL);
    /* refused by the store (over max_value_size): fn hears the error */
    char big[100];
    memset(big, 'b', sizeof big);
    CHECK(ember_kv_put(kv, "big", big, sizeof big, NULL) != EMBER_OK);
    int sync_err = ember_kv_put(kv, "big", big, sizeof big, NULL);
    CHECK(ember_kv_put_async(kv, "big", big, sizeof big, on_put, &p) == EMBER_OK);
    CHECK(WAIT_UNTIL(atomic_load(&p.errs) == 1, 5000));
    CHECK_EQ(atomic_load(&p.last_err), sync_err);
    CHECK_EQ(atomic_load(&p.ok) + atomic_load(&p.errs), before + 1);
    ember_kv_close(kv);

    /* a memory bucket completes in the call */
    kc.bucket = "async_mem";
    kc.max_value_size = -1;
    kc.storage = EMBER_STORAGE_MEMORY;
    REQUIRE(ember_kv_bucket_create(c, &kc, &kv) == EMBER_OK);
    memset(&p, 0, sizeof p);
    in_put_call = true;
    CHECK(ember_kv_put_async(kv, "x", "1", 1, on_put, &p) == EMBER_OK);
    in_put_call = false;
    CHECK_EQ(atomic_load(&inline_calls), 1);
    CHECK_EQ(atomic_load(&p.ok), 1);
    /* a deleted bucket */
    CHECK(ember_kv_bucket_delete(c, "async_mem") == EMBER_OK);
    CHECK(ember_kv_put_async(kv, "x", "1", 1, on_put, &p) == EMBER_ENOTFOUND);
    CHECK(strstr(ember_last_error(), "bucket not found") != NULL);
    CHECK_EQ(atomic_load(&p.ok), 1);
    ember_kv_close(kv);
}

/* Puts in flight when the bucket, the connection and the server are closed: every fn
 * runs, by the time ember_server_free returns; what it acknowledged is there after a
 * restart. */
static void test_kv_async_shutdown(void)
{
    char d[] = "/tmp/ember-kv-async-XXXXXX";
    REQUIRE(mkdtemp(d));
    ember_server *s = start_in(d);
    REQUIRE(s);
    ember_conn *c = NULL;
    REQUIRE(ember_conn_connect(&c, s, NULL) == EMBER_OK);
    ember_kv_config kc;
    ember_kv_config_init(&kc);
    kc.bucket = "late";
    ember_kv *kv = NULL;
    REQUIRE(ember_kv_bucket_create(c, &kc, &kv) == EMBER_OK);
    static put_state p;
    memset(&p, 0, sizeof p);
    for (int i = 0; i < 1000; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        CHECK(ember_kv_put_async(kv, key, "v", 1, on_put, &p) == EMBER_OK);
    }
    ember_kv_close(kv);
    ember_conn_close(c);
    ember_server_free(s);
    CHECK_EQ(atomic_load(&p.ok) + atomic_load(&p.errs), 1000);
    int acked = atomic_load(&p.ok);
    CHECK(acked > 0);
    s = start_in(d);
    REQUIRE(s);
    REQUIRE(ember_conn_connect(&c, s, NULL) == EMBER_OK);
    REQUIRE(ember_kv_bucket_open(c, "late", &kv) == EMBER_OK);
    char **keys = NULL;
    size_t nk = 0;
    CHECK(ember_kv_keys(kv, &keys, &nk) == EMBER_OK);
    CHECK((int)nk >= acked);
    free(keys);
    ember_kv_close(kv);
    ember_conn_close(c);
    ember_server_free(s);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", d);
}

typedef struct watch_state {
    atomic_int entries, inits, dels;
    atomic_int after_init;
} watch_state;

static void on_watch(void *ud, const ember_kv_entry *e)
{
    watch_state *w = ud;
    if (!e) {
        atomic_fetch_add(&w->inits, 1);
        return;
    }
    atomic_fetch_add(&w->entries, 1);
    if (atomic_load(&w->inits))
        atomic_fetch_add(&w->after_init, 1);
    if (e->op == EMBER_KV_DEL)
        atomic_fetch_add(&w->dels, 1);
}

static void test_kv_watch(ember_conn *c)
{
    ember_kv_config kc;
    ember_kv_config_init(&kc);
    kc.bucket = "w";
    kc.storage = EMBER_STORAGE_MEMORY;
    ember_kv *kv = NULL;
    REQUIRE(ember_kv_bucket_create(c, &kc, &kv) == EMBER_OK);
    /* empty bucket: the end-of-initial marker at once */
    watch_state w0 = {0};
    ember_kv_watcher *wt = NULL;
    REQUIRE(ember_kv_watch(kv, ">", EMBER_DELIVER_DISPATCH, on_watch, &w0, NULL, &wt) == EMBER_OK);
    CHECK(WAIT_UNTIL(atomic_load(&w0.inits) == 1, 5000));
    ember_kv_watch_stop(wt);

    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "k.%d", i);
        CHECK(ember_kv_put(kv, key, "v", 1, NULL) == EMBER_OK);
    }
    ember_kv_put(kv, "k.0", "v2", 2, NULL); /* latest per key only */
    watch_state ws = {0};
    REQUIRE(ember_kv_watch(kv, "k.>", EMBER_DELIVER_DISPATCH, on_watch, &ws, NULL, &wt) == EMBER_OK);
    CHECK(WAIT_UNTIL(atomic_load(&ws.inits) == 1, 10000));
    CHECK_EQ(atomic_load(&ws.entries), 1000);
    CHECK(ember_kv_delete(kv, "k.5") == EMBER_OK);
    CHECK(ember_kv_put(kv, "k.new", "n", 1, NULL) == EMBER_OK);
    CHECK(WAIT_UNTIL(atomic_load(&ws.after_init) == 2, 5000));
    CHECK_EQ(atomic_load(&ws.dels), 1);
    ember_kv_watch_stop(wt);
    CHECK(ember_kv_put(kv, "k.later", "n", 1, NULL) == EMBER_OK);
    tu_sleep_ms(50);
    CHECK_EQ(atomic_load(&ws.after_init), 2);
    ember_kv_close(kv);
    CHECK(ember_kv_bucket_delete(c, "w") == EMBER_OK);
    CHECK(ember_kv_bucket_delete(c, "w") == EMBER_ENOTFOUND);
}

static void test_restart(void)
{
    ember_server *s = start();
    REQUIRE(s);
    ember_conn *c = NULL;
    REQUIRE(ember_conn_connect(&c, s, NULL) == EMBER_OK);
    ember_stream_info si;
    CHECK(ember_js_stream_info(c, "ORDERS", &si) == EMBER_OK && si.msgs == 2 && si.last_seq == 6);
    ember_kv *kv = NULL;
    REQUIRE(ember_kv_bucket_open(c, "settings", &kv) == EMBER_OK);
    ember_kv_entry *e = NULL;
    CHECK(ember_kv_get(kv, "theme", &e) == EMBER_OK);
    if (e) {
        CHECK(e->len == 5 && !memcmp(e->value, "light", 5));
        ember_kv_entry_free(e);
    }
    ember_kv_close(kv);
    /* the async puts were durable: all 100 keys are back */
    REQUIRE(ember_kv_bucket_open(c, "async", &kv) == EMBER_OK);
    char **keys = NULL;
    size_t nk = 0;
    CHECK(ember_kv_keys(kv, &keys, &nk) == EMBER_OK);
    CHECK_EQ(nk, 100);
    free(keys);
    ember_kv_close(kv);
    /* the memory stream is gone, as in nats-server */
    CHECK(ember_js_stream_info(c, "MEM", &si) == EMBER_ENOTFOUND);
    ember_conn_close(c);
    ember_server_free(s);
}

static void test_disabled(void)
{
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true;
    ember_server *s = NULL;
    REQUIRE(ember_server_new(&s, &o) == EMBER_OK && ember_server_start(s) == EMBER_OK);
    REQUIRE(ember_server_ready_for_connections(s, 5000));
    ember_conn *c = NULL;
    REQUIRE(ember_conn_connect(&c, s, NULL) == EMBER_OK);
    ember_stream_info si;
    CHECK(ember_js_stream_info(c, "X", &si) == EMBER_ESTATE);
    ember_msg *r = NULL;
    CHECK(ember_conn_request(c, "$JS.API.INFO", NULL, 0, 1000, &r) == EMBER_ENORESPONDERS);
    ember_conn_close(c);
    ember_server_free(s);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/ember-js-native-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    ember_server *s = start();
    if (!s)
        return 1;
    ember_conn *c = NULL;
    if (ember_conn_connect(&c, s, NULL))
        return 1;
    test_streams(c);
    test_async_and_memory(c);
    test_consumers(c);
    test_kv(c);
    test_kv_async(c);
    test_kv_watch(c);
    ember_conn_close(c);
    ember_server_free(s);
    test_restart();
    test_kv_async_shutdown();
    test_disabled();
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return tu_summary("test_js_native");
}
