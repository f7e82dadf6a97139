/* test_js_stream: JetStream streams through the real in-process wire API ($JS.API
 * requests and stream publishes on an ember_conn): config defaults and echo, every
 * create/update error, info/names/list paging, PubAcks and every expectation header,
 * dedupe (also across a restart), rollup, limits, per-message TTL, subject delete
 * markers, republish and subject transforms, MSG.GET/DELETE, PURGE, direct get, mirrors
 * and sources, restart, and recovery from a corrupt block. Waits are bounded; nothing
 * asserts on timing. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ember.h"
#include "testutil.h"

static char g_dir[128];
static ember_server *g_srv;
static ember_conn *g_c;

/* ------------------------------------------------------------------ helpers */

/* Warnings logged by the server (recovery reports). */
static pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_warn[4096];

static void on_log(void *ud, int level, const char *line)
{
    (void)ud;
    if (level > EMBER_LOG_WARN)
        return;
    pthread_mutex_lock(&g_log_mu);
    size_t n = strlen(g_warn);
    snprintf(g_warn + n, sizeof g_warn - n, "%s\n", line);
    pthread_mutex_unlock(&g_log_mu);
}

static ember_server *start_opts(int64_t max_store)
{
    ember_server_options o;
    ember_server_options_init(&o);
    o.log_fn = on_log;
    o.log_level = EMBER_LOG_WARN;
    o.dont_listen = true;
    o.jetstream = true;
    o.store_dir = g_dir;
    if (max_store)
        o.jetstream_max_store = max_store;
    ember_server *s = NULL;
    if (ember_server_new(&s, &o) || ember_server_start(s) ||
        !ember_server_ready_for_connections(s, 10000)) {
        fprintf(stderr, "start: %s\n", ember_last_error());
        ember_server_free(s);
        return NULL;
    }
    return s;
}

static bool up_opts(int64_t max_store)
{
    g_srv = start_opts(max_store);
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

static bool up(void) { return up_opts(0); }

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

/* A raw request; the reply message (caller releases) or NULL (rc in *rcp). */
static ember_msg *req_raw(const char *subj, const char *body, int timeout_ms, int *rcp)
{
    ember_msg *r = NULL;
    int rc = ember_conn_request(g_c, subj, body, body ? strlen(body) : 0, timeout_ms, &r);
    if (rcp)
        *rcp = rc;
    return rc == 0 ? r : NULL;
}

static cJSON *to_json(ember_msg *r)
{
    if (!r)
        return NULL;
    size_t n;
    const char *d = ember_msg_data(r, &n);
    cJSON *j = cJSON_ParseWithLength(d, n);
    ember_msg_release(r);
    return j;
}

static cJSON *api(const char *subj, const char *body)
{
    int rc;
    ember_msg *r = req_raw(subj, body, 5000, &rc);
    if (!r)
        fprintf(stderr, "request %s: %s\n", subj, ember_strerror(rc));
    return to_json(r);
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

/* A member by dotted path ("config.max_msgs"); NULL when absent. */
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

static bool jbool(cJSON *o, const char *path)
{
    cJSON *v = jget(o, path);
    return cJSON_IsTrue(v);
}

static int err_code(cJSON *r) { return (int)(r ? jnum(r, "error.err_code") : -1); }
static const char *err_desc(cJSON *r) { return r ? jstr(r, "error.description") : ""; }

#define CHECK_ERR(r, code, desc)                                                           \
    do {                                                                                   \
        CHECK_MSG(err_code(r) == (code), "want %d got %d (%s)", (code), err_code(r),      \
                  err_desc(r));                                                            \
        if (desc)                                                                          \
            CHECK_MSG(!strcmp(err_desc(r), (desc) ? (desc) : ""), "want \"%s\" got \"%s\"", \
                      (desc) ? (desc) : "", err_desc(r));                                  \
    } while (0)

#define CHECK_OK(r)                                                                        \
    do {                                                                                   \
        CHECK_MSG((r) && !jget((r), "error"), "unexpected error %d (%s)", err_code(r),    \
                  err_desc(r));                                                            \
    } while (0)

#define CHECK_STR(a, b)                                                                    \
    do {                                                                                   \
        const char *a_ = (a), *b_ = (b);                                                   \
        CHECK_MSG(a_ && b_ && !strcmp(a_, b_), "\"%s\" != \"%s\"", a_ ? a_ : "(null)",     \
                  b_ ? b_ : "(null)");                                                     \
    } while (0)

static void create_ok(const char *name, const char *json)
{
    cJSON *r = apif(json, "$JS.API.STREAM.CREATE.%s", name);
    CHECK_OK(r);
    cJSON_Delete(r);
}

static cJSON *create(const char *name, const char *json)
{
    return apif(json, "$JS.API.STREAM.CREATE.%s", name);
}

static void delete_stream(const char *name)
{
    cJSON *r = apif(NULL, "$JS.API.STREAM.DELETE.%s", name);
    CHECK_OK(r);
    cJSON_Delete(r);
}

/* Publish with headers (key, value, ..., NULL); the PubAck text (malloc'd) or NULL. */
static char *pubh_text(const char *subj, const char *data, ...)
{
    ember_msg *m = NULL;
    if (ember_msg_new(&m, subj, NULL, data, data ? strlen(data) : 0) != 0)
        return NULL;
    va_list ap;
    va_start(ap, data);
    for (const char *k; (k = va_arg(ap, const char *));) {
        const char *v = va_arg(ap, const char *);
        ember_msg_header_add(m, k, v);
    }
    va_end(ap);
    ember_msg *r = NULL;
    int rc = ember_conn_request_msg(g_c, m, 5000, &r);
    ember_msg_release(m);
    if (rc != 0) {
        fprintf(stderr, "publish %s: %s\n", subj, ember_strerror(rc));
        return NULL;
    }
    size_t n;
    const char *d = ember_msg_data(r, &n);
    char *t = strndup(d, n);
    ember_msg_release(r);
    return t;
}

#define pubh(...) to_json_text(pubh_text(__VA_ARGS__))

static cJSON *to_json_text(char *t)
{
    cJSON *j = t ? cJSON_Parse(t) : NULL;
    free(t);
    return j;
}

static uint64_t pub(const char *subj, const char *data)
{
    cJSON *r = pubh(subj, data, NULL);
    uint64_t seq = r ? (uint64_t)jnum(r, "seq") : 0;
    CHECK_MSG(r && seq > 0 && !jget(r, "error"), "publish to %s failed (%s)", subj, err_desc(r));
    cJSON_Delete(r);
    return seq;
}

static int64_t stream_state(const char *stream, const char *field)
{
    cJSON *r = apif(NULL, "$JS.API.STREAM.INFO.%s", stream);
    char path[128];
    snprintf(path, sizeof path, "state.%s", field);
    int64_t n = r ? jnum(r, path) : -1;
    cJSON_Delete(r);
    return n;
}

static bool hdr_has(ember_msg *m, const char *k, const char *v)
{
    const char *x = m ? ember_msg_header_get(m, k) : NULL;
    bool ok = x && (!v || !strcmp(x, v));
    if (!ok)
        fprintf(stderr, "  header %s: %s (wanted %s)\n", k, x ? x : "(none)", v ? v : "any");
    return ok;
}

static bool data_is(ember_msg *m, const char *d)
{
    size_t n = 0;
    const char *p = m ? ember_msg_data(m, &n) : NULL;
    return p && n == strlen(d) && !memcmp(p, d, n);
}

static ember_sub *sub_poll(const char *subj)
{
    ember_sub *s = NULL;
    if (ember_conn_subscribe(&s, g_c, subj, NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) != 0)
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

/* ------------------------------------------------------------------ create */

static void test_create_defaults(void)
{
    cJSON *r = create("DEF", "{\"name\":\"DEF\",\"subjects\":[\"def.>\"],\"unknown_field\":1}");
    CHECK_OK(r);
    CHECK_STR(jstr(r, "type"), "io.nats.jetstream.api.v1.stream_create_response");
    CHECK(jbool(r, "did_create"));
    CHECK_STR(jstr(r, "config.name"), "DEF");
    CHECK_STR(jstr(r, "config.retention"), "limits");
    CHECK_EQ(jnum(r, "config.max_consumers"), -1);
    CHECK_EQ(jnum(r, "config.max_msgs"), -1);
    CHECK_EQ(jnum(r, "config.max_bytes"), -1);
    CHECK_EQ(jnum(r, "config.max_age"), 0);
    CHECK_EQ(jnum(r, "config.max_msgs_per_subject"), -1);
    CHECK_EQ(jnum(r, "config.max_msg_size"), -1);
    CHECK_STR(jstr(r, "config.discard"), "old");
    CHECK_STR(jstr(r, "config.storage"), "file");
    CHECK_EQ(jnum(r, "config.num_replicas"), 1);
    CHECK_EQ(jnum(r, "config.duplicate_window"), 120000000000LL);
    CHECK_STR(jstr(r, "config.compression"), "none");
    CHECK(cJSON_IsFalse(jget(r, "config.allow_direct")));
    CHECK(cJSON_IsFalse(jget(r, "config.mirror_direct")));
    CHECK(cJSON_IsFalse(jget(r, "config.sealed")));
    CHECK(cJSON_IsFalse(jget(r, "config.deny_delete")));
    CHECK(cJSON_IsFalse(jget(r, "config.deny_purge")));
    CHECK(cJSON_IsFalse(jget(r, "config.allow_rollup_hdrs")));
    CHECK(cJSON_IsFalse(jget(r, "config.allow_msg_ttl")));
    CHECK(cJSON_IsObject(jget(r, "config.consumer_limits")));
    CHECK(!jget(r, "config.no_ack"));
    CHECK(!jget(r, "config.subject_delete_marker_ttl"));
    CHECK(!jget(r, "config.first_seq"));
    CHECK_STR(jstr(r, "config.metadata._nats.req.level"), "");
    cJSON *md = jget(r, "config.metadata");
    CHECK(md && cJSON_GetObjectItemCaseSensitive(md, "_nats.req.level"));
    CHECK_STR(cJSON_GetObjectItemCaseSensitive(md, "_nats.req.level")->valuestring, "0");
    CHECK(cJSON_GetObjectItemCaseSensitive(md, "_nats.ver") != NULL);
    cJSON *lv = cJSON_GetObjectItemCaseSensitive(md, "_nats.level");
    CHECK(lv && cJSON_IsString(lv) && !strcmp(lv->valuestring, "1"));
    CHECK_EQ(jnum(r, "state.messages"), 0);
    CHECK_EQ(jnum(r, "state.first_seq"), 0);
    CHECK_EQ(jnum(r, "state.last_seq"), 0);
    CHECK_STR(jstr(r, "state.first_ts"), "0001-01-01T00:00:00Z");
    CHECK_EQ(jnum(r, "state.consumer_count"), 0);
    CHECK(!jget(r, "state.num_subjects"));
    CHECK(jget(r, "created") && jget(r, "ts"));
    CHECK(!jget(r, "cluster")); /* create responses carry no cluster info */
    cJSON_Delete(r);

    /* identical again: the existing stream, success */
    r = create("DEF", "{\"name\":\"DEF\",\"subjects\":[\"def.>\"]}");
    CHECK_OK(r);
    cJSON_Delete(r);
    /* the echo of a full config given back is identical too */
    r = apif(NULL, "$JS.API.STREAM.INFO.DEF");
    cJSON *cfg = cJSON_Duplicate(jget(r, "config"), true);
    cJSON_Delete(r);
    char *body = cJSON_PrintUnformatted(cfg);
    cJSON_Delete(cfg);
    r = create("DEF", body);
    CHECK_OK(r);
    cJSON_Delete(r);
    free(body);
    /* a different config: 10058 */
    r = create("DEF", "{\"name\":\"DEF\",\"subjects\":[\"def.>\"],\"max_msgs\":5}");
    CHECK_ERR(r, 10058, "stream name already in use with a different configuration");
    CHECK_STR(jstr(r, "type"), "io.nats.jetstream.api.v1.stream_create_response");
    cJSON_Delete(r);

    /* max_age below 2m sets the duplicate window; TTL streams need API level 1 */
    r = create("AGE", "{\"name\":\"AGE\",\"subjects\":[\"age\"],\"max_age\":1000000000,"
                      "\"storage\":\"memory\",\"allow_msg_ttl\":true}");
    CHECK_OK(r);
    CHECK_EQ(jnum(r, "config.duplicate_window"), 1000000000LL);
    CHECK_STR(jstr(r, "config.storage"), "memory");
    md = jget(r, "config.metadata");
    CHECK(md && !strcmp(cJSON_GetObjectItemCaseSensitive(md, "_nats.req.level")->valuestring, "1"));
    cJSON_Delete(r);
    /* no subjects: the name */
    r = create("NOSUBJ", "{\"name\":\"NOSUBJ\",\"storage\":\"memory\"}");
    CHECK_OK(r);
    cJSON *subs = jget(r, "config.subjects");
    CHECK(cJSON_GetArraySize(subs) == 1 && !strcmp(cJSON_GetArrayItem(subs, 0)->valuestring, "NOSUBJ"));
    cJSON_Delete(r);
    /* a full config echoed as given */
    r = create("FULL",
               "{\"name\":\"FULL\",\"description\":\"d\",\"subjects\":[\"full.a\",\"full.b\"],"
               "\"storage\":\"memory\",\"retention\":\"limits\",\"max_msgs\":10,\"max_bytes\":100000,"
               "\"max_age\":60000000000,\"max_msgs_per_subject\":3,\"max_msg_size\":1000,"
               "\"discard\":\"NEW\",\"duplicate_window\":5000000000,\"allow_direct\":true,"
               "\"allow_rollup_hdrs\":true,\"deny_delete\":true,\"max_consumers\":5,"
               "\"first_seq\":100,\"metadata\":{\"k\":\"v\"},\"consumer_limits\":"
               "{\"max_ack_pending\":10},\"compression\":\"s2\",\"no_ack\":true}");
    CHECK_OK(r);
    CHECK_STR(jstr(r, "config.description"), "d");
    CHECK_STR(jstr(r, "config.discard"), "new");
    CHECK_EQ(jnum(r, "config.max_msgs"), 10);
    CHECK_EQ(jnum(r, "config.max_consumers"), 5);
    CHECK_EQ(jnum(r, "config.max_msg_size"), 1000);
    CHECK_EQ(jnum(r, "config.duplicate_window"), 5000000000LL);
    CHECK_EQ(jnum(r, "config.first_seq"), 100);
    CHECK_EQ(jnum(r, "config.consumer_limits.max_ack_pending"), 10);
    CHECK_STR(jstr(r, "config.compression"), "s2");
    CHECK(jbool(r, "config.no_ack"));
    CHECK(jbool(r, "config.allow_direct"));
    CHECK_STR(jstr(r, "config.metadata.k"), "v");
    CHECK_EQ(jnum(r, "state.first_seq"), 100);
    CHECK_EQ(jnum(r, "state.last_seq"), 99);
    cJSON_Delete(r);
    delete_stream("FULL");
    delete_stream("NOSUBJ");
    delete_stream("AGE");
    delete_stream("DEF");
}

static void expect_create_err(const char *name, const char *body, int code, const char *desc)
{
    cJSON *r = create(name, body);
    CHECK_ERR(r, code, desc);
    if (r && err_code(r) != code)
        fprintf(stderr, "  (create %s %s)\n", name, body ? body : "(empty)");
    cJSON_Delete(r);
}

static void test_create_errors(void)
{
    create_ok("BASE", "{\"name\":\"BASE\",\"subjects\":[\"base.>\"],\"storage\":\"memory\"}");
    expect_create_err("X", "{\"name\":\"Y\",\"subjects\":[\"y\"]}", 10056,
                      "stream name in subject does not match request");
    expect_create_err("E", "{}", 10056, NULL);
    expect_create_err("B", "{bad json", 10025,
                      "invalid JSON: invalid character 'b' looking for beginning of object key string");
    expect_create_err("B", "{\"name\":\"B\"} x", 10025,
                      "invalid JSON: invalid character 'x' after top-level value");
    expect_create_err("B", "[1]", 10025,
                      "invalid JSON: json: cannot unmarshal array into Go value of type "
                      "server.StreamConfigRequest");
    expect_create_err("B", NULL, 10025, "invalid JSON: unexpected end of JSON input");
    expect_create_err("N", "{\"name\":\"N\",\"retention\":\"bogus\"}", 10025,
                      "invalid JSON: can not unmarshal \"\\\"bogus\\\"\"");
    expect_create_err("N", "{\"name\":\"N\",\"max_msgs\":\"x\"}", 10025,
                      "invalid JSON: json: cannot unmarshal string into Go struct field "
                      "StreamConfigRequest.max_msgs of type int64");
    expect_create_err("N", "{\"name\":\"N\",\"compression\":\"zip\"}", 10025,
                      "invalid JSON: unknown compression algorithm");
    expect_create_err("a\\b", "{\"name\":\"a\\\\b\"}", 10128,
                      "Stream name can not contain path separators");
    expect_create_err("SEAL", "{\"name\":\"SEAL\",\"sealed\":true}", 10052,
                      "stream configuration for create can not be sealed");
    expect_create_err("MD", "{\"name\":\"MD\",\"mirror_direct\":true}", 10052,
                      "stream has no mirror but does have mirror direct");
    expect_create_err("A", "{\"name\":\"A\",\"max_age\":10}", 10052, "max age needs to be >= 100ms");
    expect_create_err("D", "{\"name\":\"D\",\"duplicate_window\":5000000000,\"max_age\":1000000000}",
                      10052, "duplicates window can not be larger then max age");
    expect_create_err("D", "{\"name\":\"D\",\"duplicate_window\":-1}", 10052,
                      "duplicates window can not be negative");
    expect_create_err("D", "{\"name\":\"D\",\"duplicate_window\":1000}", 10052,
                      "duplicates window needs to be >= 100ms");
    expect_create_err("R", "{\"name\":\"R\",\"deny_purge\":true,\"allow_rollup_hdrs\":true}", 10052,
                      "roll-ups require the purge permission");
    expect_create_err("P", "{\"name\":\"P\",\"discard_new_per_subject\":true}", 10052,
                      "discard new per subject requires discard new policy to be set");
    expect_create_err("P", "{\"name\":\"P\",\"discard_new_per_subject\":true,\"discard\":\"new\"}",
                      10052, "discard new per subject requires max msgs per subject > 0");
    expect_create_err("T", "{\"name\":\"T\",\"subject_delete_marker_ttl\":1000}", 10052,
                      "subject delete marker TTL must be at least 1 second");
    expect_create_err("T", "{\"name\":\"T\",\"subject_delete_marker_ttl\":-1}", 10052,
                      "subject delete marker TTL must not be negative");
    expect_create_err("O", "{\"name\":\"O\",\"subjects\":[\"base.a\"]}", 10065,
                      "subjects overlap with an existing stream");
    expect_create_err("S", "{\"name\":\"S\",\"subjects\":[\"a..b\"]}", 10052, "invalid subject");
    expect_create_err("S", "{\"name\":\"S\",\"subjects\":[\"a\",\"a\"]}", 10052,
                      "duplicate subjects detected");
    expect_create_err("S", "{\"name\":\"S\",\"subjects\":[\"a.>\",\"a.b\"]}", 10052,
                      "subject \"a.>\" overlaps with \"a.b\"");
    expect_create_err("S", "{\"name\":\"S\",\"subjects\":[\">\"]}", 10052,
                      "capturing all subjects requires no-ack to be true");
    expect_create_err("S", "{\"name\":\"S\",\"subjects\":[\"$JS.API.x\"]}", 10052,
                      "subjects that overlap with jetstream api require no-ack to be true");
    expect_create_err("R3", "{\"name\":\"R3\",\"num_replicas\":3}", 10074,
                      "replicas > 1 not supported in non-clustered mode");
    expect_create_err("R3", "{\"name\":\"R3\",\"num_replicas\":-1}", 10133,
                      "replicas count cannot be negative");
    expect_create_err("R9", "{\"name\":\"R9\",\"num_replicas\":9}", 10052, "maximum replicas is 5");
    expect_create_err("M", "{\"name\":\"M\",\"mirror\":{\"name\":\"BASE\"},\"subjects\":[\"m\"]}",
                      10034, "stream mirrors can not contain subjects");
    expect_create_err("M",
                      "{\"name\":\"M\",\"mirror\":{\"name\":\"BASE\"},\"sources\":[{\"name\":\"BASE\"}]}",
                      10031, "stream mirrors can not also contain other sources");
    expect_create_err("M", "{\"name\":\"M\",\"mirror\":{\"name\":\"BASE\"},\"first_seq\":5}", 10143,
                      "stream mirrors can not have first sequence configured");
    expect_create_err("M", "{\"name\":\"M\",\"mirror\":{\"name\":\"a.b\"}}", 10142,
                      "mirrored stream name is invalid");
    expect_create_err("M", "{\"name\":\"M\",\"sources\":[{\"name\":\"BASE\"},{\"name\":\"BASE\"}]}",
                      10140, "duplicate source configuration detected");
    expect_create_err("RP",
                      "{\"name\":\"RP\",\"subjects\":[\"rp.>\"],\"republish\":{\"src\":\">\","
                      "\"dest\":\"rp.x\"}}",
                      10052, "stream configuration for republish destination forms a cycle");
    expect_create_err("TR",
                      "{\"name\":\"TR\",\"subjects\":[\"tr.>\"],\"subject_transform\":{\"src\":"
                      "\"tr.*\",\"dest\":\"x.{{wildcard(2)}}\"}}",
                      10156,
                      "stream transform: invalid mapping destination: wildcard index out of range "
                      "in {{wildcard(2)}}: [2]");
    expect_create_err("TR",
                      "{\"name\":\"TR\",\"subjects\":[\"tr.>\"],\"subject_transform\":{\"src\":"
                      "\"tr.*\",\"dest\":\"x.{{nope(1)}}\"}}",
                      10156, "stream transform: invalid mapping destination: unknown function in "
                             "{{nope(1)}}");
    /* over the server's storage: the max_bytes reservation */
    expect_create_err("BIG", "{\"name\":\"BIG\",\"storage\":\"file\",\"max_bytes\":4000000000000000}",
                      10047, "insufficient storage resources available");
    delete_stream("BASE");
}


/* ------------------------------------------------------------------ info, names, list, update */

static void test_info_names_list(void)
{
    cJSON *r = apif(NULL, "$JS.API.STREAM.INFO.NOPE");
    CHECK_ERR(r, 10059, "stream not found");
    CHECK_STR(jstr(r, "type"), "io.nats.jetstream.api.v1.stream_info_response");
    CHECK_EQ(jnum(r, "total"), 0);
    cJSON_Delete(r);
    r = apif("{bad", "$JS.API.STREAM.INFO.NOPE");
    CHECK_ERR(r, 10025, NULL);
    cJSON_Delete(r);

    /* no streams: names is null, list is [] */
    r = api("$JS.API.STREAM.NAMES", NULL);
    CHECK_OK(r);
    CHECK(cJSON_IsNull(jget(r, "streams")));
    CHECK_EQ(jnum(r, "total"), 0);
    CHECK_EQ(jnum(r, "limit"), 1024);
    cJSON_Delete(r);
    r = api("$JS.API.STREAM.LIST", NULL);
    CHECK(cJSON_IsArray(jget(r, "streams")) && cJSON_GetArraySize(jget(r, "streams")) == 0);
    CHECK_EQ(jnum(r, "limit"), 256);
    cJSON_Delete(r);

    create_ok("INF", "{\"name\":\"INF\",\"subjects\":[\"inf.>\"]}");
    create_ok("B2", "{\"name\":\"B2\",\"subjects\":[\"b2\"],\"storage\":\"memory\"}");
    create_ok("A1", "{\"name\":\"A1\",\"subjects\":[\"a1\"],\"storage\":\"memory\"}");
    pub("inf.a", "one");
    pub("inf.a", "two");
    pub("inf.b", "three");
    pub("inf.c.d", "four");
    r = apif(NULL, "$JS.API.STREAM.INFO.INF");
    CHECK_OK(r);
    CHECK_EQ(jnum(r, "state.messages"), 4);
    CHECK_EQ(jnum(r, "state.first_seq"), 1);
    CHECK_EQ(jnum(r, "state.last_seq"), 4);
    CHECK_EQ(jnum(r, "state.num_subjects"), 3);
    CHECK(jget(r, "cluster.leader") != NULL);
    CHECK(!jget(r, "state.subjects"));
    CHECK(jget(r, "state.bytes") && jnum(r, "state.bytes") > 0);
    CHECK_STR(jstr(r, "config.metadata._nats"), "");
    cJSON_Delete(r);
    r = apif("{\"subjects_filter\":\"inf.*\"}", "$JS.API.STREAM.INFO.INF");
    cJSON *subs = jget(r, "state.subjects");
    CHECK(cJSON_GetArraySize(subs) == 2);
    CHECK(cJSON_GetObjectItemCaseSensitive(subs, "inf.a") &&
          cJSON_GetObjectItemCaseSensitive(subs, "inf.a")->valuedouble == 2);
    CHECK_EQ(jnum(r, "total"), 2);
    CHECK_EQ(jnum(r, "limit"), 100000);
    cJSON_Delete(r);
    r = apif("{\"subjects_filter\":\"zzz\"}", "$JS.API.STREAM.INFO.INF");
    CHECK(!jget(r, "state.subjects"));
    CHECK_EQ(jnum(r, "total"), 0);
    cJSON_Delete(r);
    r = apif("{\"seq\":2}", "$JS.API.STREAM.MSG.DELETE.INF");
    CHECK_OK(r);
    cJSON_Delete(r);
    r = apif("{\"deleted_details\":true}", "$JS.API.STREAM.INFO.INF");
    CHECK_EQ(jnum(r, "state.num_deleted"), 1);
    cJSON *del = jget(r, "state.deleted");
    CHECK(cJSON_GetArraySize(del) == 1 && cJSON_GetArrayItem(del, 0)->valuedouble == 2);
    cJSON_Delete(r);

    r = api("$JS.API.STREAM.NAMES", NULL);
    CHECK_STR(jstr(r, "type"), "io.nats.jetstream.api.v1.stream_names_response");
    CHECK_EQ(jnum(r, "total"), 3);
    cJSON *names = jget(r, "streams");
    CHECK(cJSON_GetArraySize(names) == 3 &&
          !strcmp(cJSON_GetArrayItem(names, 0)->valuestring, "A1") &&
          !strcmp(cJSON_GetArrayItem(names, 2)->valuestring, "INF"));
    cJSON_Delete(r);
    r = api("$JS.API.STREAM.NAMES", "{\"offset\":2}");
    CHECK_EQ(jnum(r, "offset"), 2);
    CHECK(cJSON_GetArraySize(jget(r, "streams")) == 1);
    cJSON_Delete(r);
    r = api("$JS.API.STREAM.NAMES", "{\"offset\":9}");
    CHECK_EQ(jnum(r, "offset"), 3);
    CHECK(cJSON_IsNull(jget(r, "streams")));
    cJSON_Delete(r);
    r = api("$JS.API.STREAM.NAMES", "{\"subject\":\"inf.x\"}");
    CHECK_EQ(jnum(r, "total"), 1);
    CHECK_STR(cJSON_GetArrayItem(jget(r, "streams"), 0)->valuestring, "INF");
    cJSON_Delete(r);
    r = api("$JS.API.STREAM.NAMES", "{bad");
    CHECK_ERR(r, 10025, NULL);
    cJSON_Delete(r);
    r = api("$JS.API.STREAM.LIST", "{\"subject\":\"b2\"}");
    CHECK_STR(jstr(r, "type"), "io.nats.jetstream.api.v1.stream_list_response");
    CHECK_EQ(jnum(r, "total"), 1);
    cJSON *si = cJSON_GetArrayItem(jget(r, "streams"), 0);
    CHECK_STR(jstr(si, "config.name"), "B2");
    CHECK(jget(si, "state") && jget(si, "created"));
    cJSON_Delete(r);
    delete_stream("A1");
    delete_stream("B2");
    delete_stream("INF");
}

static void test_update(void)
{
    create_ok("UP", "{\"name\":\"UP\",\"subjects\":[\"up.>\"]}");
    create_ok("UP2", "{\"name\":\"UP2\",\"subjects\":[\"up2\"],\"storage\":\"memory\"}");
    for (int i = 0; i < 5; i++)
        pub("up.a", "x");
    cJSON *r = apif("{\"name\":\"UP\",\"subjects\":[\"up.>\",\"more\"],\"max_msgs\":2}",
                    "$JS.API.STREAM.UPDATE.UP");
    CHECK_OK(r);
    CHECK_STR(jstr(r, "type"), "io.nats.jetstream.api.v1.stream_update_response");
    CHECK_EQ(jnum(r, "config.max_msgs"), 2);
    CHECK_EQ(jnum(r, "state.messages"), 2);
    cJSON_Delete(r);
    CHECK(pub("more", "m") == 6); /* the new subject is subscribed */
    struct {
        const char *body, *subj;
        int code;
        const char *desc;
    } bad[] = {
        {"{\"name\":\"UP\",\"subjects\":[\"up.>\"],\"storage\":\"memory\"}", "UP", 10052,
         "stream configuration update can not change storage type"},
        {"{\"name\":\"UP\",\"subjects\":[\"up.>\"],\"max_consumers\":3}", "UP", 10052,
         "stream configuration update can not change MaxConsumers"},
        {"{\"name\":\"UP\",\"subjects\":[\"up.>\"],\"retention\":\"workqueue\"}", "UP", 10052,
         "stream configuration update can not change retention policy to/from workqueue"},
        {"{\"name\":\"UP\",\"subjects\":[\"up2\"]}", "UP", 10065,
         "subjects overlap with an existing stream"},
        {"{\"name\":\"NOPE\",\"subjects\":[\"nope\"]}", "NOPE", 10059, "stream not found"},
        {"{\"name\":\"X\",\"subjects\":[\"up.>\"]}", "UP", 10056,
         "stream name in subject does not match request"},
        {"{bad", "UP", 10025, NULL},
        {"{\"name\":\"UP\",\"mirror\":{\"name\":\"UP2\"}}", "UP", 10055,
         "stream mirror configuration can not be updated"},
        {"{\"name\":\"UP\",\"subjects\":[\"up.>\"],\"max_age\":1}", "UP", 10052,
         "max age needs to be >= 100ms"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = apif(bad[i].body, "$JS.API.STREAM.UPDATE.%s", bad[i].subj);
        CHECK_ERR(r, bad[i].code, bad[i].desc);
        cJSON_Delete(r);
    }
    /* retention limits <-> interest is allowed; deny_delete cannot be taken back */
    r = apif("{\"name\":\"UP\",\"subjects\":[\"up.>\"],\"retention\":\"interest\",\"deny_delete\":true}",
             "$JS.API.STREAM.UPDATE.UP");
    CHECK_OK(r);
    CHECK_STR(jstr(r, "config.retention"), "interest");
    cJSON_Delete(r);
    r = apif("{\"name\":\"UP\",\"subjects\":[\"up.>\"],\"retention\":\"interest\"}",
             "$JS.API.STREAM.UPDATE.UP");
    CHECK_ERR(r, 10052, "stream configuration update can not cancel deny message deletes");
    cJSON_Delete(r);
    /* "more" left the stream: no responders now */
    ember_msg *m = NULL;
    CHECK(ember_conn_request(g_c, "more", "x", 1, 1000, &m) == EMBER_ENORESPONDERS);
    /* sealing: the server forces discard new, deny delete/purge, no max_age */
    r = apif("{\"name\":\"UP\",\"subjects\":[\"up.>\"],\"retention\":\"interest\",\"deny_delete\":"
             "true,\"sealed\":true}",
             "$JS.API.STREAM.UPDATE.UP");
    CHECK_OK(r);
    CHECK(jbool(r, "config.sealed") && jbool(r, "config.deny_purge"));
    CHECK_STR(jstr(r, "config.discard"), "new");
    cJSON_Delete(r);
    r = pubh("up.a", "x", NULL);
    CHECK_ERR(r, 10109, "invalid operation on sealed stream");
    CHECK_STR(jstr(r, "stream"), "UP");
    cJSON_Delete(r);
    r = apif(NULL, "$JS.API.STREAM.PURGE.UP");
    CHECK_ERR(r, 10109, NULL);
    cJSON_Delete(r);
    r = apif("{\"seq\":4}", "$JS.API.STREAM.MSG.DELETE.UP");
    CHECK_ERR(r, 10109, NULL);
    cJSON_Delete(r);
    r = apif("{\"name\":\"UP\",\"subjects\":[\"up.>\"],\"retention\":\"interest\",\"deny_delete\":"
             "true,\"deny_purge\":true}",
             "$JS.API.STREAM.UPDATE.UP");
    CHECK_ERR(r, 10052, "stream configuration update can not unseal a sealed stream");
    cJSON_Delete(r);
    delete_stream("UP");
    delete_stream("UP2");
}

/* ------------------------------------------------------------------ publish */

static void test_publish(void)
{
    create_ok("S", "{\"name\":\"S\",\"subjects\":[\"s.>\"]}");
    create_ok("N", "{\"name\":\"N\",\"subjects\":[\"n\"],\"max_msgs\":1,\"discard\":\"new\","
                   "\"storage\":\"memory\"}");
    create_ok("NB", "{\"name\":\"NB\",\"subjects\":[\"nb\"],\"max_bytes\":60,\"discard\":\"new\"}");
    create_ok("NP", "{\"name\":\"NP\",\"subjects\":[\"np.*\"],\"max_msgs_per_subject\":1,"
                    "\"discard\":\"new\",\"discard_new_per_subject\":true,\"storage\":\"memory\","
                    "\"allow_rollup_hdrs\":true}");
    create_ok("Z", "{\"name\":\"Z\",\"subjects\":[\"z\"],\"max_msg_size\":8}");
    char *t = pubh_text("s.a", "x", NULL);
    CHECK_STR(t, "{\"stream\":\"S\", \"seq\":1}");
    free(t);
    t = pubh_text("s.a", "x", "Nats-Msg-Id", "id1", NULL);
    CHECK_STR(t, "{\"stream\":\"S\", \"seq\":2}");
    free(t);
    t = pubh_text("s.a", "y", "Nats-Msg-Id", "id1", NULL);
    CHECK_STR(t, "{\"stream\":\"S\", \"seq\":2,\"duplicate\": true}");
    free(t);
    t = pubh_text("s.a", "x", "Nats-Expected-Last-Sequence", "1", NULL);
    CHECK_STR(t, "{\"error\":{\"code\":400,\"err_code\":10071,\"description\":\"wrong last "
                 "sequence: 2\"},\"stream\":\"S\",\"seq\":0}");
    free(t);
    cJSON *r = pubh("s.a", "x", "Nats-Expected-Stream", "OTHER", NULL);
    CHECK_ERR(r, 10060, "expected stream does not match");
    cJSON_Delete(r);
    r = pubh("s.a", "x", "Nats-Expected-Last-Msg-Id", "nope", NULL);
    CHECK_ERR(r, 10070, "wrong last msg ID: id1");
    cJSON_Delete(r);
    r = pubh("s.a", "x", "Nats-Expected-Last-Subject-Sequence", "1", NULL);
    CHECK_ERR(r, 10071, "wrong last sequence: 2");
    cJSON_Delete(r);
    r = pubh("s.b", "x", "Nats-Expected-Last-Subject-Sequence", "0", NULL);
    CHECK_EQ(jnum(r, "seq"), 3);
    cJSON_Delete(r);
    /* the subject of the check given separately (wildcards allowed) */
    r = pubh("s.c", "x", "Nats-Expected-Last-Subject-Sequence", "3",
             "Nats-Expected-Last-Subject-Sequence-Subject", "s.b", NULL);
    CHECK_EQ(jnum(r, "seq"), 4);
    cJSON_Delete(r);
    r = pubh("s.c", "x", "Nats-Expected-Last-Subject-Sequence", "3",
             "Nats-Expected-Last-Subject-Sequence-Subject", "s.*", NULL);
    CHECK_ERR(r, 10071, "wrong last sequence: 4");
    cJSON_Delete(r);
    r = pubh("s.a", "x", "Nats-Expected-Last-Sequence", "4", "Nats-Expected-Stream", "S", NULL);
    CHECK_EQ(jnum(r, "seq"), 5);
    cJSON_Delete(r);
    /* the last message (5) has no id */
    t = pubh_text("s.a", "x", "Nats-Expected-Last-Msg-Id", "id1", NULL);
    CHECK_STR(t, "{\"error\":{\"code\":400,\"err_code\":10070,\"description\":\"wrong last msg "
                 "ID: \"},\"stream\":\"S\",\"seq\":0}");
    free(t);
    r = pubh("s.a", "x", "Nats-Msg-Id", "id2", NULL);
    CHECK_EQ(jnum(r, "seq"), 6);
    cJSON_Delete(r);
    r = pubh("s.a", "x", "Nats-Expected-Last-Msg-Id", "id2", NULL);
    CHECK_EQ(jnum(r, "seq"), 7);
    cJSON_Delete(r);
    r = pubh("s.a", "x", "Nats-Rollup", "sub", NULL);
    CHECK_ERR(r, 10111, "rollup not permitted");
    cJSON_Delete(r);
    r = pubh("s.a", "x", "Nats-TTL", "5s", NULL);
    CHECK_ERR(r, 10166, "per-message TTL is disabled");
    cJSON_Delete(r);
    /* discard new limits */
    CHECK(pub("n", "1") == 1);
    t = pubh_text("n", "2", NULL);
    CHECK_STR(t, "{\"error\":{\"code\":503,\"err_code\":10077,\"description\":\"maximum messages "
                 "exceeded\"},\"stream\":\"N\",\"seq\":0}");
    free(t);
    CHECK(pub("nb", "0123456789") == 1);
    r = pubh("nb", "0123456789012345678901234567890123456789", NULL);
    CHECK_ERR(r, 10077, "maximum bytes exceeded");
    cJSON_Delete(r);
    CHECK(pub("np.a", "1") == 1);
    r = pubh("np.a", "2", NULL);
    CHECK_ERR(r, 10077, "maximum messages per subject exceeded");
    cJSON_Delete(r);
    CHECK(pub("np.b", "1") == 2);
    /* a rollup still gets in (discard_new_per_subject's exception) */
    r = pubh("np.a", "3", "Nats-Rollup", "sub", NULL);
    CHECK_EQ(jnum(r, "seq"), 3);
    cJSON_Delete(r);
    CHECK_EQ(stream_state("NP", "messages"), 2);
    CHECK(pub("z", "12345678") == 1);
    r = pubh("z", "123456789", NULL);
    CHECK_ERR(r, 10054, "message size exceeds maximum allowed");
    cJSON_Delete(r);
    /* headers count against max_msg_size */
    r = pubh("z", "1", "H", "12345678", NULL);
    CHECK_ERR(r, 10054, NULL);
    cJSON_Delete(r);
    /* a header block over 64 KiB */
    {
        char *big = malloc(70000);
        memset(big, 'h', 69999);
        big[69999] = 0;
        r = pubh("s.big", "x", "Big", big, NULL);
        CHECK_ERR(r, 10097, "header size exceeds maximum allowed of 64k");
        cJSON_Delete(r);
        free(big);
    }
    /* no stream: no responders */
    ember_msg *m = NULL;
    CHECK(ember_conn_request(g_c, "nostream.x", "x", 1, 1000, &m) == EMBER_ENORESPONDERS);
    CHECK_EQ(stream_state("S", "last_seq"), 7);
    delete_stream("S");
    delete_stream("N");
    delete_stream("NB");
    delete_stream("NP");
    delete_stream("Z");
}

static void test_rollup_noack_interest(void)
{
    create_ok("RU", "{\"name\":\"RU\",\"subjects\":[\"ru.>\"],\"allow_rollup_hdrs\":true,"
                    "\"storage\":\"memory\"}");
    pub("ru.a", "1");
    pub("ru.a", "2");
    pub("ru.b", "3");
    cJSON *r = pubh("ru.a", "4", "Nats-Rollup", "sub", NULL);
    CHECK_EQ(jnum(r, "seq"), 4);
    cJSON_Delete(r);
    CHECK_EQ(stream_state("RU", "messages"), 2);
    r = pubh("ru.a", "5", "Nats-Rollup", "bogus", NULL);
    CHECK_ERR(r, 10111, "rollup value invalid: \"bogus\"");
    cJSON_Delete(r);
    r = pubh("ru.c", "6", "Nats-Rollup", "ALL", NULL);
    CHECK_EQ(jnum(r, "seq"), 5);
    cJSON_Delete(r);
    CHECK_EQ(stream_state("RU", "messages"), 1);
    CHECK_EQ(stream_state("RU", "first_seq"), 5);
    delete_stream("RU");

    /* no_ack: the message is stored, nothing answers */
    create_ok("NA", "{\"name\":\"NA\",\"subjects\":[\"na\"],\"no_ack\":true,\"storage\":\"memory\"}");
    int rc = 0;
    ember_msg *m = req_raw("na", "x", 300, &rc);
    CHECK(!m && rc == EMBER_ETIMEDOUT);
    CHECK_EQ(stream_state("NA", "messages"), 1);
    delete_stream("NA");

    /* interest retention with nobody interested: the sequence is used, nothing kept */
    create_ok("IN", "{\"name\":\"IN\",\"subjects\":[\"in.>\"],\"retention\":\"interest\"}");
    char *t = pubh_text("in.a", "nobody", NULL);
    CHECK_STR(t, "{\"stream\":\"IN\", \"seq\":1}");
    free(t);
    CHECK_EQ(stream_state("IN", "messages"), 0);
    CHECK_EQ(stream_state("IN", "last_seq"), 1);
    r = apif("{\"stream_name\":\"IN\",\"config\":{\"durable_name\":\"C\",\"ack_policy\":"
             "\"explicit\",\"filter_subject\":\"in.b\"}}",
             "$JS.API.CONSUMER.CREATE.IN.C");
    CHECK_OK(r);
    cJSON_Delete(r);
    CHECK(pub("in.a", "not for C") == 2);
    CHECK(pub("in.b", "for C") == 3);
    CHECK_EQ(stream_state("IN", "messages"), 1);
    CHECK_EQ(stream_state("IN", "consumer_count"), 1);
    delete_stream("IN");
}

/* ------------------------------------------------------------------ get, delete, purge */

static void test_get_delete_purge(void)
{
    create_ok("G", "{\"name\":\"G\",\"subjects\":[\"g.>\"]}");
    cJSON *r = pubh("g.a", "one", "X-Hdr", "v1", NULL);
    cJSON_Delete(r);
    pub("g.b", "two");
    pub("g.a", "three");
    pub("g.c.d", "four");
    r = apif("{\"seq\":1}", "$JS.API.STREAM.MSG.GET.G");
    CHECK_OK(r);
    CHECK_STR(jstr(r, "type"), "io.nats.jetstream.api.v1.stream_msg_get_response");
    CHECK_STR(jstr(r, "message.subject"), "g.a");
    CHECK_EQ(jnum(r, "message.seq"), 1);
    CHECK_STR(jstr(r, "message.data"), "b25l");
    CHECK_STR(jstr(r, "message.hdrs"), "TkFUUy8xLjANClgtSGRyOiB2MQ0KDQo="); /* NATS/1.0\r\nX-Hdr: v1\r\n\r\n */
    CHECK(strlen(jstr(r, "message.time")) > 20);
    cJSON_Delete(r);
    r = apif("{\"seq\":2}", "$JS.API.STREAM.MSG.GET.G");
    CHECK(!jget(r, "message.hdrs"));
    cJSON_Delete(r);
    struct {
        const char *body;
        long long seq;
    } gets[] = {
        {"{\"last_by_subj\":\"g.a\"}", 3}, {"{\"last_by_subj\":\"g.*\"}", 3},
        {"{\"last_by_subj\":\"g.>\"}", 4}, {"{\"next_by_subj\":\"g.a\",\"seq\":2}", 3},
        {"{\"next_by_subj\":\"g.b\"}", 2},
    };
    for (size_t i = 0; i < sizeof gets / sizeof gets[0]; i++) {
        r = apif(gets[i].body, "$JS.API.STREAM.MSG.GET.G");
        CHECK_MSG(jnum(r, "message.seq") == gets[i].seq, "%s -> %lld", gets[i].body,
                  jnum(r, "message.seq"));
        cJSON_Delete(r);
    }
    struct {
        const char *body;
        int code;
        const char *desc;
    } bad[] = {
        {"{\"seq\":99}", 10037, "no message found"},
        {"{\"last_by_subj\":\"zzz\"}", 10037, "no message found"},
        {"{bad", 10025, NULL},
        {NULL, 10003, "bad request"},
        {"{}", 10003, "bad request"},
        {"{\"seq\":1,\"last_by_subj\":\"g.a\"}", 10003, "bad request"},
        {"{\"last_by_subj\":\"g.a\",\"next_by_subj\":\"g.a\"}", 10003, "bad request"},
        {"{\"seq\":1,\"batch\":2}", 10003, "bad request"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = apif(bad[i].body, "$JS.API.STREAM.MSG.GET.G");
        CHECK_ERR(r, bad[i].code, bad[i].desc);
        cJSON_Delete(r);
    }
    r = apif("{\"seq\":1}", "$JS.API.STREAM.MSG.GET.NOPE");
    CHECK_ERR(r, 10059, NULL);
    cJSON_Delete(r);

    /* delete */
    r = apif("{\"seq\":2}", "$JS.API.STREAM.MSG.DELETE.G");
    CHECK_OK(r);
    CHECK_STR(jstr(r, "type"), "io.nats.jetstream.api.v1.stream_msg_delete_response");
    CHECK(jbool(r, "success"));
    cJSON_Delete(r);
    r = apif("{\"seq\":2}", "$JS.API.STREAM.MSG.DELETE.G");
    CHECK_ERR(r, 10043, "sequence 2 not found");
    cJSON_Delete(r);
    r = apif("{\"seq\":99}", "$JS.API.STREAM.MSG.DELETE.G");
    CHECK_ERR(r, 10057, "stream store EOF");
    cJSON_Delete(r);
    r = apif("{\"seq\":3,\"no_erase\":true}", "$JS.API.STREAM.MSG.DELETE.G");
    CHECK_OK(r);
    cJSON_Delete(r);
    r = apif(NULL, "$JS.API.STREAM.MSG.DELETE.G");
    CHECK_ERR(r, 10003, NULL);
    cJSON_Delete(r);
    r = apif("{bad", "$JS.API.STREAM.MSG.DELETE.G");
    CHECK_ERR(r, 10025, NULL);
    cJSON_Delete(r);
    r = apif("{\"seq\":1}", "$JS.API.STREAM.MSG.DELETE.NOPE");
    CHECK_ERR(r, 10059, NULL);
    cJSON_Delete(r);

    /* purge */
    pub("g.a", "five");
    pub("g.a", "six");
    r = apif("{\"seq\":2,\"keep\":1}", "$JS.API.STREAM.PURGE.G");
    CHECK_ERR(r, 10003, "bad request");
    CHECK_EQ(jnum(r, "purged"), 0);
    cJSON_Delete(r);
    r = apif("{\"filter\":\"g.a\",\"keep\":1}", "$JS.API.STREAM.PURGE.G");
    CHECK_OK(r);
    CHECK_STR(jstr(r, "type"), "io.nats.jetstream.api.v1.stream_purge_response");
    CHECK(jbool(r, "success"));
    CHECK_EQ(jnum(r, "purged"), 2);
    cJSON_Delete(r);
    r = apif("{\"seq\":5}", "$JS.API.STREAM.PURGE.G");
    CHECK_EQ(jnum(r, "purged"), 1);
    cJSON_Delete(r);
    r = apif(NULL, "$JS.API.STREAM.PURGE.G");
    CHECK_EQ(jnum(r, "purged"), 1);
    cJSON_Delete(r);
    r = apif("{bad", "$JS.API.STREAM.PURGE.G");
    CHECK_ERR(r, 10025, NULL);
    cJSON_Delete(r);
    r = apif(NULL, "$JS.API.STREAM.PURGE.NOPE");
    CHECK_ERR(r, 10059, NULL);
    cJSON_Delete(r);
    r = apif(NULL, "$JS.API.STREAM.INFO.G");
    CHECK_EQ(jnum(r, "state.messages"), 0);
    CHECK_EQ(jnum(r, "state.first_seq"), 7);
    CHECK_EQ(jnum(r, "state.last_seq"), 6);
    cJSON_Delete(r);
    /* deny_delete / deny_purge */
    create_ok("DN", "{\"name\":\"DN\",\"subjects\":[\"dn\"],\"deny_delete\":true,\"deny_purge\":true,"
                    "\"storage\":\"memory\"}");
    pub("dn", "x");
    r = apif("{\"seq\":1}", "$JS.API.STREAM.MSG.DELETE.DN");
    CHECK_ERR(r, 10057, "message delete not permitted");
    cJSON_Delete(r);
    r = apif(NULL, "$JS.API.STREAM.PURGE.DN");
    CHECK_ERR(r, 10110, "stream purge not permitted");
    cJSON_Delete(r);
    /* memory store: a missing sequence is always 10043 */
    r = apif("{\"seq\":99}", "$JS.API.STREAM.MSG.DELETE.G");
    cJSON_Delete(r);
    delete_stream("DN");
    /* delete: body must be empty */
    r = apif("{\"x\":1}", "$JS.API.STREAM.DELETE.G");
    CHECK_ERR(r, 10038, "expected an empty request payload");
    cJSON_Delete(r);
    delete_stream("G");
    r = apif(NULL, "$JS.API.STREAM.DELETE.G");
    CHECK_ERR(r, 10059, NULL);
    cJSON_Delete(r);
    /* the directory went with it */
    char path[512];
    snprintf(path, sizeof path, "%s/jetstream/$G/streams/G", g_dir);
    struct stat st;
    CHECK(stat(path, &st) != 0);
}

/* ------------------------------------------------------------------ direct get */

static void test_direct_get(void)
{
    create_ok("DG", "{\"name\":\"DG\",\"subjects\":[\"dg.>\"],\"allow_direct\":true}");
    create_ok("ND", "{\"name\":\"ND\",\"subjects\":[\"nd\"],\"storage\":\"memory\"}");
    cJSON *r = pubh("dg.a", "one", "X-Hdr", "v1", NULL);
    cJSON_Delete(r);
    pub("dg.b", "two");
    pub("dg.a", "three");
    pub("nd", "x");
    int rc;
    ember_msg *m = req_raw("$JS.API.DIRECT.GET.DG", "{\"seq\":1}", 2000, &rc);
    CHECK(data_is(m, "one"));
    CHECK(hdr_has(m, "X-Hdr", "v1"));
    CHECK(hdr_has(m, "Nats-Stream", "DG"));
    CHECK(hdr_has(m, "Nats-Subject", "dg.a"));
    CHECK(hdr_has(m, "Nats-Sequence", "1"));
    CHECK(hdr_has(m, "Nats-Time-Stamp", NULL));
    if (m) {
        size_t n;
        const char *h = ember_msg_headers_raw(m, &n);
        CHECK(h && n > 10 && !memcmp(h, "NATS/1.0\r\nX-Hdr: v1\r\nNats-Stream: DG\r\n", 38));
        ember_msg_release(m);
    }
    m = req_raw("$JS.API.DIRECT.GET.DG", "{\"seq\":2}", 2000, &rc);
    if (m) {
        size_t n;
        const char *h = ember_msg_headers_raw(m, &n);
        CHECK(h && n > 10 && !memcmp(h, "NATS/1.0\r\nNats-Stream: DG\r\nNats-Subject: dg.b\r\n"
                                        "Nats-Sequence: 2\r\nNats-Time-Stamp: ", 77));
        ember_msg_release(m);
    } else {
        CHECK(m != NULL);
    }
    struct {
        const char *subj, *body, *data;
        int status;
    } cases[] = {
        {"$JS.API.DIRECT.GET.DG", "{\"last_by_subj\":\"dg.a\"}", "three", 0},
        {"$JS.API.DIRECT.GET.DG", "{\"last_by_subj\":\"dg.*\"}", "three", 0},
        {"$JS.API.DIRECT.GET.DG", "{\"next_by_subj\":\"dg.a\",\"seq\":2}", "three", 0},
        {"$JS.API.DIRECT.GET.DG", "{\"next_by_subj\":\"dg.b\"}", "two", 0},
        {"$JS.API.DIRECT.GET.DG.dg.b", NULL, "two", 0},
        {"$JS.API.DIRECT.GET.DG", "{\"seq\":99}", NULL, 404},
        {"$JS.API.DIRECT.GET.DG", "{\"last_by_subj\":\"dg.none\"}", NULL, 404},
        {"$JS.API.DIRECT.GET.DG.dg.none", NULL, NULL, 404},
        {"$JS.API.DIRECT.GET.DG", NULL, NULL, 408},
        {"$JS.API.DIRECT.GET.DG", "{}", NULL, 408},
        {"$JS.API.DIRECT.GET.DG", "{bad", NULL, 408},
        {"$JS.API.DIRECT.GET.DG.dg.a", "{\"seq\":1}", NULL, 408},
        {"$JS.API.DIRECT.GET.DG", "{\"seq\":1,\"last_by_subj\":\"dg.a\"}", NULL, 408},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        m = req_raw(cases[i].subj, cases[i].body, 2000, &rc);
        if (cases[i].data) {
            CHECK_MSG(data_is(m, cases[i].data), "%s %s", cases[i].subj,
                      cases[i].body ? cases[i].body : "");
        } else {
            CHECK_MSG(m && ember_msg_status(m) == cases[i].status, "%s %s: status %d",
                      cases[i].subj, cases[i].body ? cases[i].body : "",
                      m ? ember_msg_status(m) : rc);
        }
        if (m && cases[i].status == 404) {
            size_t n;
            const char *h = ember_msg_headers_raw(m, &n);
            CHECK(h && n >= 32 && !memcmp(h, "NATS/1.0 404 Message Not Found\r\n\r\n", 34));
        }
        if (m)
            ember_msg_release(m);
    }
    /* without allow_direct (or stream): nobody answers */
    m = req_raw("$JS.API.DIRECT.GET.ND", "{\"seq\":1}", 300, &rc);
    CHECK(!m && rc == EMBER_ETIMEDOUT);
    m = req_raw("$JS.API.DIRECT.GET.NOPE", "{\"seq\":1}", 300, &rc);
    CHECK(!m && rc == EMBER_ETIMEDOUT);

    /* batch: messages then a 204 EOB */
    char inbox[64];
    snprintf(inbox, sizeof inbox, "_DG_INBOX.%d", getpid());
    ember_sub *s = sub_poll(inbox);
    CHECK(s != NULL);
    CHECK(ember_conn_publish(g_c, "$JS.API.DIRECT.GET.DG", inbox, "{\"seq\":1,\"batch\":2}", 20) == 0);
    m = next_msg(s, 2000);
    CHECK(data_is(m, "one"));
    CHECK(hdr_has(m, "Nats-Num-Pending", "3")); /* counted from the start, as nats-server */
    CHECK(hdr_has(m, "Nats-Last-Sequence", "0"));
    if (m)
        ember_msg_release(m);
    m = next_msg(s, 2000);
    CHECK(data_is(m, "two"));
    CHECK(hdr_has(m, "Nats-Num-Pending", "2"));
    CHECK(hdr_has(m, "Nats-Last-Sequence", "1"));
    if (m)
        ember_msg_release(m);
    m = next_msg(s, 2000);
    CHECK(m && ember_msg_status(m) == 204);
    CHECK(hdr_has(m, "Nats-Num-Pending", "1"));
    CHECK(hdr_has(m, "Nats-Last-Sequence", "2"));
    if (m)
        ember_msg_release(m);
    /* multi_last */
    CHECK(ember_conn_publish(g_c, "$JS.API.DIRECT.GET.DG", inbox, "{\"multi_last\":[\"dg.>\"]}", 23) == 0);
    m = next_msg(s, 2000);
    CHECK(data_is(m, "two"));
    if (m)
        ember_msg_release(m);
    m = next_msg(s, 2000);
    CHECK(data_is(m, "three"));
    if (m)
        ember_msg_release(m);
    m = next_msg(s, 2000);
    CHECK(m && ember_msg_status(m) == 204);
    CHECK(hdr_has(m, "Nats-UpTo-Sequence", "3"));
    if (m)
        ember_msg_release(m);
    ember_sub_unsubscribe(s);
    delete_stream("DG");
    delete_stream("ND");
}

/* ------------------------------------------------------------------ TTL, markers */

static void test_ttl(void)
{
    create_ok("TTL", "{\"name\":\"TTL\",\"subjects\":[\"ttl.>\"],\"allow_msg_ttl\":true}");
    cJSON *r = pubh("ttl.a", "x", "Nats-TTL", "bogus", NULL);
    CHECK_ERR(r, 10165, "invalid per-message TTL");
    cJSON_Delete(r);
    r = pubh("ttl.a", "x", "Nats-TTL", "500ms", NULL);
    CHECK_ERR(r, 10165, NULL);
    cJSON_Delete(r);
    r = pubh("ttl.a", "x", "Nats-TTL", "0", NULL);
    CHECK_ERR(r, 10165, NULL);
    cJSON_Delete(r);
    r = pubh("ttl.a", "short", "Nats-TTL", "1s", NULL);
    CHECK_EQ(jnum(r, "seq"), 1);
    cJSON_Delete(r);
    r = pubh("ttl.b", "secs", "Nats-TTL", "1", NULL);
    CHECK_EQ(jnum(r, "seq"), 2);
    cJSON_Delete(r);
    r = pubh("ttl.c", "never", "Nats-TTL", "never", NULL);
    CHECK_EQ(jnum(r, "seq"), 3);
    cJSON_Delete(r);
    r = pubh("ttl.d", "long", "Nats-TTL", "1h", NULL);
    CHECK_EQ(jnum(r, "seq"), 4);
    cJSON_Delete(r);
    CHECK(WAIT_UNTIL(stream_state("TTL", "messages") == 2, 10000));
    r = apif("{\"seq\":3}", "$JS.API.STREAM.MSG.GET.TTL");
    CHECK_OK(r);
    cJSON_Delete(r);
    r = apif("{\"seq\":1}", "$JS.API.STREAM.MSG.GET.TTL");
    CHECK_ERR(r, 10037, NULL);
    cJSON_Delete(r);
    /* TTLs cannot be turned off again */
    r = apif("{\"name\":\"TTL\",\"subjects\":[\"ttl.>\"]}", "$JS.API.STREAM.UPDATE.TTL");
    CHECK_ERR(r, 10052, "message TTL status can not be disabled");
    cJSON_Delete(r);
    delete_stream("TTL");

    /* subject delete markers: the last message of a subject leaves a marker */
    r = create("SDM", "{\"name\":\"SDM\",\"subjects\":[\"sdm.>\"],\"max_age\":1000000000,"
                      "\"subject_delete_marker_ttl\":1000000000,\"storage\":\"memory\"}");
    CHECK_OK(r);
    CHECK(jbool(r, "config.allow_msg_ttl"));
    CHECK(jbool(r, "config.allow_rollup_hdrs"));
    CHECK_EQ(jnum(r, "config.subject_delete_marker_ttl"), 1000000000LL);
    cJSON_Delete(r);
    pub("sdm.a", "1");
    pub("sdm.a", "2");
    pub("sdm.b", "3");
    /* the three expire; a and b each get one marker */
    bool got = WAIT_UNTIL(stream_state("SDM", "last_seq") >= 5, 10000);
    CHECK(got);
    ember_msg *m = req_raw("$JS.API.STREAM.MSG.GET.SDM", "{\"last_by_subj\":\"sdm.a\"}", 2000, NULL);
    cJSON *g = to_json(m);
    CHECK_OK(g);
    const char *hb = jstr(g, "message.hdrs");
    size_t hl = 0;
    char *h = NULL;
    if (*hb) {
        /* decode: must carry the marker reason */
        static const char tb[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        h = calloc(1, strlen(hb));
        unsigned acc = 0;
        int bits = 0;
        for (const char *p = hb; *p && *p != '='; p++) {
            acc = acc << 6 | (unsigned)(strchr(tb, *p) - tb);
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                h[hl++] = (char)(acc >> bits);
            }
        }
    }
    CHECK_MSG(h && strstr(h, "Nats-Marker-Reason: MaxAge\r\n") && strstr(h, "Nats-TTL: 1s\r\n"),
              "marker headers: %s", h ? h : "(none)");
    free(h);
    cJSON_Delete(g);
    /* the markers expire too and leave nothing */
    CHECK(WAIT_UNTIL(stream_state("SDM", "messages") == 0, 10000));
    delete_stream("SDM");
}

/* A message is still in the stream (MSG.GET finds it). */
static bool has_seq(const char *stream, int seq)
{
    char subj[128], body[32];
    snprintf(subj, sizeof subj, "$JS.API.STREAM.MSG.GET.%s", stream);
    snprintf(body, sizeof body, "{\"seq\":%d}", seq);
    cJSON *r = api(subj, body);
    bool ok = r && !jget(r, "error") && jnum(r, "message.seq") == seq;
    cJSON_Delete(r);
    return ok;
}

/* Publish a plain message and wait until max_age took it: every message stored before
 * it is older, so max_age has had its chance at them too. */
static void pub_and_age_out(const char *stream, const char *subj, int64_t want_msgs)
{
    cJSON *r = pubh(subj, "plain", "X-Plain", "1", NULL);
    int64_t seq = jnum(r, "seq");
    CHECK(seq > 0);
    cJSON_Delete(r);
    CHECK(WAIT_UNTIL(!has_seq(stream, (int)seq), 10000));
    CHECK_EQ(stream_state(stream, "messages"), want_msgs);
}

/* Nats-TTL: never exempts a message from max_age (memory and file, also after a
 * restart from the index and from a scan of the blocks). */
static void test_ttl_never(void)
{
    const char *kinds[] = {"memory", "file"};
    for (int k = 0; k < 2; k++) {
        char cfg[256];
        snprintf(cfg, sizeof cfg,
                 "{\"name\":\"NEV\",\"subjects\":[\"nev.>\"],\"max_age\":1000000000,"
                 "\"allow_msg_ttl\":true,\"storage\":\"%s\"}", kinds[k]);
        create_ok("NEV", cfg);
        cJSON *r = pubh("nev.keep", "forever", "Nats-TTL", "never", NULL);
        CHECK_EQ(jnum(r, "seq"), 1);
        cJSON_Delete(r);
        pub("nev.a", "old");
        r = pubh("nev.keep", "forever2", "Nats-TTL", "NEVER", NULL);
        CHECK_EQ(jnum(r, "seq"), 3);
        cJSON_Delete(r);
        /* like nats-server, only the word "never" means never: -1 is an invalid TTL */
        r = pubh("nev.b", "x", "Nats-TTL", "-1", NULL);
        CHECK_ERR(r, 10165, "invalid per-message TTL");
        cJSON_Delete(r);
        pub_and_age_out("NEV", "nev.a", 2);
        CHECK(!has_seq("NEV", 2));
        CHECK(has_seq("NEV", 1));
        CHECK(has_seq("NEV", 3));
        CHECK_EQ(stream_state("NEV", "first_seq"), 1);
        if (k == 1) {
            /* the exemption survives a restart: from the index... */
            down();
            CHECK(up());
            pub_and_age_out("NEV", "nev.a", 2);
            CHECK(has_seq("NEV", 1));
            CHECK(has_seq("NEV", 3));
            /* ...and from the records when there is no index */
            down();
            char path[512];
            snprintf(path, sizeof path, "%s/jetstream/$G/streams/NEV/msgs/index.idx", g_dir);
            unlink(path);
            CHECK(up());
            pub_and_age_out("NEV", "nev.a", 2);
            CHECK(has_seq("NEV", 1));
            CHECK(has_seq("NEV", 3));
        }
        /* a removed never-message leaves nothing behind that blocks expiry */
        r = apif("{\"seq\":1}", "$JS.API.STREAM.MSG.DELETE.NEV");
        CHECK_OK(r);
        cJSON_Delete(r);
        pub_and_age_out("NEV", "nev.a", 1);
        delete_stream("NEV");
    }
}

/* ------------------------------------------------------------------ republish, transform */

static void test_republish_transform(void)
{
    create_ok("RP", "{\"name\":\"RP\",\"subjects\":[\"rp.>\"],\"storage\":\"memory\","
                    "\"republish\":{\"src\":\"rp.*\",\"dest\":\"out.{{wildcard(1)}}\"}}");
    ember_sub *s = sub_poll("out.>");
    CHECK(pub("rp.a", "1") == 1);
    cJSON *r = pubh("rp.a", "2", "X", "y", NULL);
    cJSON_Delete(r);
    ember_msg *m = next_msg(s, 2000);
    CHECK(m && !strcmp(ember_msg_subject(m), "out.a"));
    CHECK(data_is(m, "1"));
    CHECK(hdr_has(m, "Nats-Stream", "RP"));
    CHECK(hdr_has(m, "Nats-Subject", "rp.a"));
    CHECK(hdr_has(m, "Nats-Sequence", "1"));
    CHECK(hdr_has(m, "Nats-Last-Sequence", "0"));
    CHECK(hdr_has(m, "Nats-Time-Stamp", NULL));
    if (m)
        ember_msg_release(m);
    m = next_msg(s, 2000);
    CHECK(hdr_has(m, "X", "y"));
    CHECK(hdr_has(m, "Nats-Last-Sequence", "1"));
    if (m)
        ember_msg_release(m);
    ember_sub_unsubscribe(s);
    delete_stream("RP");
    /* a source with '>' needs a destination with '>' */
    r = create("RX", "{\"name\":\"RX\",\"subjects\":[\"rx\"],\"republish\":{\"dest\":\"rxout\"}}");
    CHECK_ERR(r, 10052, "stream configuration for republish with transform from '>' to 'rxout' not valid");
    cJSON_Delete(r);

    create_ok("RH", "{\"name\":\"RH\",\"subjects\":[\"rh\"],\"storage\":\"memory\","
                    "\"republish\":{\"src\":\"rh\",\"dest\":\"rhout\",\"headers_only\":true}}");
    s = sub_poll("rhout");
    pub("rh", "12345");
    m = next_msg(s, 2000);
    CHECK(data_is(m, ""));
    CHECK(hdr_has(m, "Nats-Msg-Size", "5"));
    if (m)
        ember_msg_release(m);
    ember_sub_unsubscribe(s);
    delete_stream("RH");

    create_ok("TF", "{\"name\":\"TF\",\"subjects\":[\"in.*.*\"],\"storage\":\"memory\","
                    "\"subject_transform\":{\"src\":\"in.*.*\",\"dest\":\"st.$2.{{wildcard(1)}}\"}}");
    pub("in.a.b", "x");
    r = apif("{\"seq\":1}", "$JS.API.STREAM.MSG.GET.TF");
    CHECK_STR(jstr(r, "message.subject"), "st.b.a");
    cJSON_Delete(r);
    delete_stream("TF");
}

/* ------------------------------------------------------------------ mirrors, sources */

static void test_mirror_sources(void)
{
    create_ok("ORIG", "{\"name\":\"ORIG\",\"subjects\":[\"orig.>\"],\"allow_direct\":true}");
    pub("orig.a", "1");
    pub("orig.b", "2");
    cJSON *r = create("MIR", "{\"name\":\"MIR\",\"mirror\":{\"name\":\"ORIG\"}}");
    CHECK_OK(r);
    CHECK(jbool(r, "config.mirror_direct")); /* inherited from the origin's allow_direct */
    CHECK(!jget(r, "config.subjects"));
    CHECK(!jget(r, "config.duplicate_window"));
    CHECK_STR(jstr(r, "config.mirror.name"), "ORIG");
    cJSON_Delete(r);
    pub("orig.a", "3");
    CHECK(WAIT_UNTIL(stream_state("MIR", "messages") == 3, 5000));
    r = apif("{\"seq\":3}", "$JS.API.STREAM.MSG.GET.MIR");
    CHECK_STR(jstr(r, "message.subject"), "orig.a");
    CHECK_STR(jstr(r, "message.data"), "Mw==");
    cJSON_Delete(r);
    r = apif(NULL, "$JS.API.STREAM.INFO.MIR");
    CHECK_STR(jstr(r, "mirror.name"), "ORIG");
    CHECK_EQ(jnum(r, "mirror.lag"), 0);
    CHECK(jnum(r, "mirror.active") >= 0);
    cJSON_Delete(r);
    /* sequence gaps in the origin stay gaps in the mirror */
    r = apif("{\"seq\":2}", "$JS.API.STREAM.MSG.DELETE.ORIG");
    cJSON_Delete(r);
    pub("orig.c", "4");
    CHECK(WAIT_UNTIL(stream_state("MIR", "last_seq") == 4, 5000));
    r = apif("{\"name\":\"MIR\",\"mirror\":{\"name\":\"OTHER\"}}", "$JS.API.STREAM.UPDATE.MIR");
    CHECK_ERR(r, 10055, NULL);
    cJSON_Delete(r);

    /* sources: two origins into one stream, with a filter and a transform */
    create_ok("O2", "{\"name\":\"O2\",\"subjects\":[\"o2.>\"],\"storage\":\"memory\"}");
    pub("o2.x", "a");
    pub("o2.y", "b");
    r = create("AGG", "{\"name\":\"AGG\",\"subjects\":[\"agg\"],\"sources\":[{\"name\":\"ORIG\","
                      "\"filter_subject\":\"orig.a\"},{\"name\":\"O2\",\"subject_transforms\":[{"
                      "\"src\":\"o2.*\",\"dest\":\"moved.{{wildcard(1)}}\"}]}]}");
    CHECK_OK(r);
    cJSON_Delete(r);
    CHECK(WAIT_UNTIL(stream_state("AGG", "messages") == 4, 5000));
    pub("agg", "own");
    r = apif("{\"last_by_subj\":\"moved.y\"}", "$JS.API.STREAM.MSG.GET.AGG");
    CHECK_OK(r);
    cJSON_Delete(r);
    ember_msg *m = req_raw("$JS.API.STREAM.MSG.GET.AGG", "{\"last_by_subj\":\"orig.a\"}", 2000, NULL);
    r = to_json(m);
    CHECK_STR(jstr(r, "message.data"), "Mw==");
    cJSON_Delete(r);
    r = apif(NULL, "$JS.API.STREAM.INFO.AGG");
    cJSON *srcs = jget(r, "sources");
    CHECK(cJSON_GetArraySize(srcs) == 2);
    CHECK_STR(jstr(cJSON_GetArrayItem(srcs, 0), "name"), "ORIG");
    CHECK_STR(jstr(cJSON_GetArrayItem(srcs, 0), "filter_subject"), "orig.a");
    cJSON_Delete(r);
    /* the source header */
    r = apif("{\"seq\":1}", "$JS.API.STREAM.MSG.GET.AGG");
    CHECK(strlen(jstr(r, "message.hdrs")) > 0);
    cJSON_Delete(r);
    m = req_raw("$JS.API.DIRECT.GET.ORIG", "{\"seq\":1}", 2000, NULL); /* ORIG allows direct */
    CHECK(data_is(m, "1"));
    if (m)
        ember_msg_release(m);
    delete_stream("AGG");
    delete_stream("O2");
    delete_stream("MIR");
    delete_stream("ORIG");
}

/* ------------------------------------------------------------------ restart, recovery */

static void test_restart(void)
{
    create_ok("PERS", "{\"name\":\"PERS\",\"subjects\":[\"pers.>\"],\"max_msgs_per_subject\":5}");
    create_ok("MEM", "{\"name\":\"MEM\",\"subjects\":[\"mem\"],\"storage\":\"memory\"}");
    create_ok("SRC", "{\"name\":\"SRC\",\"subjects\":[\"srcd\"],\"sources\":[{\"name\":\"PERS\"}]}");
    cJSON *r = pubh("pers.a", "1", "Nats-Msg-Id", "m1", NULL);
    CHECK_EQ(jnum(r, "seq"), 1);
    cJSON_Delete(r);
    r = pubh("pers.b", "2", "Nats-Msg-Id", "m2", NULL);
    cJSON_Delete(r);
    pub("pers.a", "3");
    pub("mem", "x");
    CHECK(WAIT_UNTIL(stream_state("SRC", "messages") == 3, 5000));
    r = apif("{\"seq\":2}", "$JS.API.STREAM.MSG.DELETE.PERS");
    cJSON_Delete(r);
    down();
    CHECK(up());
    r = apif(NULL, "$JS.API.STREAM.INFO.PERS");
    CHECK_OK(r);
    CHECK_EQ(jnum(r, "state.messages"), 2);
    CHECK_EQ(jnum(r, "state.last_seq"), 3);
    CHECK_EQ(jnum(r, "state.num_deleted"), 1);
    CHECK_EQ(jnum(r, "config.max_msgs_per_subject"), 5);
    cJSON_Delete(r);
    r = apif(NULL, "$JS.API.STREAM.INFO.MEM");
    CHECK_ERR(r, 10059, NULL); /* memory streams are not recovered */
    cJSON_Delete(r);
    /* dedupe survives the restart (rebuilt from the stored messages) */
    char *t = pubh_text("pers.a", "again", "Nats-Msg-Id", "m1", NULL);
    CHECK_STR(t, "{\"stream\":\"PERS\", \"seq\":1,\"duplicate\": true}");
    free(t);
    /* m2's message is gone, but its id is still within the window? no: it was deleted;
     * nats-server rebuilds from stored messages only */
    r = pubh("pers.c", "4", "Nats-Msg-Id", "m2", NULL);
    CHECK_EQ(jnum(r, "seq"), 4);
    cJSON_Delete(r);
    r = pubh("pers.c", "5", "Nats-Expected-Last-Msg-Id", "m2", NULL);
    CHECK_EQ(jnum(r, "seq"), 5);
    cJSON_Delete(r);
    /* the source resumes where it was; the copy of seq 4 carries id m2, which SRC saw
     * before the restart (its own dedupe window, rebuilt too): only seq 5 is new */
    CHECK(WAIT_UNTIL(stream_state("SRC", "last_seq") == 4, 5000));
    CHECK_EQ(stream_state("SRC", "messages"), 4);
    r = apif("{\"seq\":4}", "$JS.API.STREAM.MSG.GET.SRC");
    CHECK_STR(jstr(r, "message.data"), "NQ==");
    cJSON_Delete(r);
    delete_stream("SRC");
    delete_stream("PERS");
}

/* Flip bytes in the middle of the first block file of a stream. */
static bool corrupt_block(const char *stream, long at)
{
    char path[512];
    snprintf(path, sizeof path, "%s/jetstream/$G/streams/%s/msgs/blk/1.blk", g_dir, stream);
    int fd = open(path, O_RDWR);
    if (fd < 0) {
        fprintf(stderr, "open %s failed\n", path);
        return false;
    }
    char junk[16];
    memset(junk, 0x5a, sizeof junk);
    bool ok = pwrite(fd, junk, sizeof junk, at) == (ssize_t)sizeof junk;
    close(fd);
    /* the index would vouch for the damaged block: remove it so recovery scans */
    snprintf(path, sizeof path, "%s/jetstream/$G/streams/%s/msgs/index.idx", g_dir, stream);
    unlink(path);
    return ok;
}

static void test_corrupt_recovery(void)
{
    create_ok("COR", "{\"name\":\"COR\",\"subjects\":[\"cor\"]}");
    for (int i = 0; i < 20; i++) {
        char d[64];
        snprintf(d, sizeof d, "message-%02d-with-some-padding-to-make-it-longer", i);
        pub("cor", d);
    }
    down();
    CHECK(corrupt_block("COR", 700));
    g_warn[0] = 0;
    CHECK(up());
    pthread_mutex_lock(&g_log_mu);
    CHECK_MSG(strstr(g_warn, "JetStream stream '$G > COR' recovered with damage: 1 corrupt record(s)"),
              "log: %s", g_warn);
    pthread_mutex_unlock(&g_log_mu);
    cJSON *r = apif(NULL, "$JS.API.STREAM.INFO.COR");
    CHECK_OK(r);
    long long msgs = jnum(r, "state.messages");
    CHECK_MSG(msgs > 10 && msgs < 20, "messages after corruption: %lld", msgs);
    CHECK_EQ(jnum(r, "state.last_seq"), 20); /* records after the damage are kept */
    cJSON_Delete(r);
    r = apif("{\"seq\":20}", "$JS.API.STREAM.MSG.GET.COR");
    CHECK_OK(r);
    cJSON_Delete(r);
    /* the stream keeps working */
    CHECK(pub("cor", "after") == 21);
    delete_stream("COR");
}

static void test_account_info(void)
{
    create_ok("AI", "{\"name\":\"AI\",\"subjects\":[\"ai\"],\"max_bytes\":100000}");
    create_ok("AM", "{\"name\":\"AM\",\"subjects\":[\"am\"],\"storage\":\"memory\"}");
    pub("ai", "x");
    pub("am", "y");
    cJSON *r = api("$JS.API.INFO", NULL);
    CHECK_OK(r);
    CHECK_EQ(jnum(r, "streams"), 2);
    CHECK(jnum(r, "storage") > 0);
    CHECK(jnum(r, "memory") > 0);
    CHECK_EQ(jnum(r, "reserved_storage"), 100000);
    cJSON_Delete(r);
    delete_stream("AI");
    delete_stream("AM");
    r = api("$JS.API.INFO", NULL);
    CHECK_EQ(jnum(r, "streams"), 0);
    CHECK_EQ(jnum(r, "reserved_storage"), 0);
    cJSON_Delete(r);
}

/* ------------------------------------------------------------------ concurrency */

typedef struct pubthr {
    int id, n, timeout_ms;
    int ok, dup;
    bool stop_on_err;
    atomic_bool *stop;
} pubthr;

static void *pub_thread(void *arg)
{
    pubthr *t = arg;
    ember_conn *c = NULL;
    if (ember_conn_connect(&c, g_srv, NULL) != 0)
        return NULL;
    for (int i = 0; i < t->n && !(t->stop && atomic_load(t->stop)); i++) {
        ember_msg *m = NULL, *r = NULL;
        char id[64], subj[64];
        /* every 5th message repeats the id of the previous one */
        snprintf(id, sizeof id, "t%d-%d", t->id, i % 5 == 4 ? i - 1 : i);
        snprintf(subj, sizeof subj, "cc.%d", t->id);
        ember_msg_new(&m, subj, NULL, "x", 1);
        ember_msg_header_set(m, "Nats-Msg-Id", id);
        int rc = ember_conn_request_msg(c, m, t->timeout_ms ? t->timeout_ms : 5000, &r);
        ember_msg_release(m);
        if (rc != 0) {
            if (t->stop_on_err)
                break;
            continue;
        }
        size_t n;
        const char *d = ember_msg_data(r, &n);
        cJSON *j = cJSON_ParseWithLength(d, n);
        if (j && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "duplicate")))
            t->dup++;
        else if (j && cJSON_GetObjectItemCaseSensitive(j, "seq") && !jget(j, "error"))
            t->ok++;
        cJSON_Delete(j);
        ember_msg_release(r);
    }
    ember_conn_close(c);
    return NULL;
}

static void test_concurrent(void)
{
    create_ok("CC", "{\"name\":\"CC\",\"subjects\":[\"cc.>\"]}");
    enum { T = 4, N = 250 };
    pthread_t th[T];
    pubthr pt[T];
    for (int i = 0; i < T; i++) {
        pt[i] = (pubthr){.id = i, .n = N};
        pthread_create(&th[i], NULL, pub_thread, &pt[i]);
    }
    int ok = 0, dup = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        ok += pt[i].ok;
        dup += pt[i].dup;
    }
    CHECK_EQ(ok, T * N * 4 / 5);
    CHECK_EQ(dup, T * N / 5);
    CHECK_EQ(stream_state("CC", "messages"), T * N * 4 / 5);
    CHECK_EQ(stream_state("CC", "last_seq"), T * N * 4 / 5);

    /* deleting a stream while publishers keep going: no crash, no leak, no hang */
    atomic_bool stop = false;
    for (int i = 0; i < T; i++) {
        /* (a publish in flight when the stream goes gets no answer, as from nats-server) */
        pt[i] = (pubthr){.id = i, .n = 1000000, .stop = &stop, .timeout_ms = 300};
        pthread_create(&th[i], NULL, pub_thread, &pt[i]);
    }
    WAIT_UNTIL(stream_state("CC", "messages") > T * N, 5000);
    delete_stream("CC");
    tu_sleep_ms(50);
    atomic_store(&stop, true);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    cJSON *r = apif(NULL, "$JS.API.STREAM.INFO.CC");
    CHECK_ERR(r, 10059, NULL);
    cJSON_Delete(r);
    /* the name can be used again at once */
    create_ok("CC", "{\"name\":\"CC\",\"subjects\":[\"cc.>\"]}");
    CHECK(pub("cc.x", "fresh") == 1);
    delete_stream("CC");
}

/* The server's storage limit: publishes fail with 10023 once it is used up. */
static void test_server_limit(void)
{
    down();
    CHECK(up_opts(4000));
    cJSON *r = create("LIM", "{\"name\":\"LIM\",\"subjects\":[\"lim\"],\"max_bytes\":5000}");
    CHECK_ERR(r, 10047, "insufficient storage resources available");
    cJSON_Delete(r);
    create_ok("LIM", "{\"name\":\"LIM\",\"subjects\":[\"lim\"]}");
    char data[200];
    memset(data, 'd', sizeof data - 1);
    data[sizeof data - 1] = 0;
    bool refused = false;
    for (int i = 0; i < 200 && !refused; i++) {
        r = pubh("lim", data, NULL);
        if (err_code(r) == 10023) {
            refused = true;
            CHECK_STR(err_desc(r), "insufficient resources");
        }
        cJSON_Delete(r);
        if (i > 20)
            tu_sleep_ms(5);
    }
    CHECK(refused);
    /* room again after a purge */
    r = apif(NULL, "$JS.API.STREAM.PURGE.LIM");
    CHECK_OK(r);
    cJSON_Delete(r);
    CHECK(WAIT_UNTIL(({
        cJSON *x = pubh("lim", "small", NULL);
        bool ok = x && !jget(x, "error");
        cJSON_Delete(x);
        ok;
    }), 5000));
    delete_stream("LIM");
    down();
    CHECK(up());
}
int main(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/ember-jss-XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    if (!up()) {
        fprintf(stderr, "server did not start\n");
        return 1;
    }
    test_create_defaults();
    test_create_errors();
    test_info_names_list();
    test_update();
    test_publish();
    test_rollup_noack_interest();
    test_get_delete_purge();
    test_direct_get();
    test_ttl();
    test_ttl_never();
    test_republish_transform();
    test_mirror_sources();
    test_account_info();
    test_concurrent();
    test_server_limit();
    test_restart();
    test_corrupt_recovery();
    down();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", g_dir);
    return tu_summary("js_stream");
}
