/*
 * Monitoring comparison: the reference nats-server and the server under test are both
 * started with `-m <free port> -js -sd <dir>`, given the same traffic through libnats (a
 * named client with a plain and a queue subscription, messages, a stream with a durable
 * consumer), and their monitoring endpoints are fetched over HTTP:
 *   /varz /connz?subs=1 /connz?subs=detail /subsz /subsz?subs=1 /jsz
 *   /jsz?accounts=1&streams=1&consumers=1&config=1 /healthz /leafz
 * Every field nats-server sends must be in the target's JSON too (recursively: objects
 * by key, object arrays by their first element), except the fields listed in LEFT_OUT
 * below with the reason. Values that describe the same traffic are compared as well
 * (connection counts, client name/lang, subscription counts, stream and consumer
 * counts, messages, limits), and the HTTP basics (status, Content-Type JSON, 404 for an
 * unknown path, 400 texts for bad parameters).
 *
 *   test_monitor_compare [--print]
 *
 * Servers (as test_js_compare): EMBER_TEST_SERVER (server under test, default
 * nats-server), EMBER_TEST_REFERENCE (default "nats-server"). Every wait is bounded;
 * nothing asserts on timing.
 */
#define _GNU_SOURCE
#include "harness.h"
#include "../c/jsonpath.h"

#include <cjson/cJSON.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Fields nats-server sends that Ember leaves out on purpose ("endpoint:path", where path
 * is the dotted field path, [] standing for any array element). */
static const struct {
    const char *field;
    const char *why;
} LEFT_OUT[] = {
    {"varz:system_account",
     "Ember has no system account ($SYS): no $SYS.> services, no accounts"},
    {"connz:connections[].rtt",
     "Ember sends no RTT PINGs, so it has no round-trip time to report"},
    {"subsz:subscriptions_list[].account_tag", "no account name tags (no JWT accounts)"},
};

static int g_print;
static int g_failed, g_passed;

#define EXPECT(cond, ...)                                                                      \
    do {                                                                                       \
        if (cond) {                                                                            \
            g_passed++;                                                                        \
        } else {                                                                               \
            g_failed++;                                                                        \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                              \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
        }                                                                                      \
    } while (0)

/* ---- one server ------------------------------------------------------------------ */

typedef struct srv {
    const char *label;
    th_server s;
    int http_port;
    char dir[256];
    natsConnection *nc;
    natsSubscription *s1, *s2;
} srv;

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

static int srv_start(srv *x, const char *label, const char *bin)
{
    memset(x, 0, sizeof *x);
    x->label = label;
    snprintf(x->dir, sizeof x->dir, "/tmp/ember-moncmp-XXXXXX");
    if (!mkdtemp(x->dir))
        return -1;
    for (int attempt = 0; attempt < 5; attempt++) {
        x->http_port = th_free_port();
        char port[16];
        snprintf(port, sizeof port, "%d", x->http_port);
        const char *args[] = {"-m", port, "-js", "-sd", x->dir, NULL};
        if (th_server_start(&x->s, bin, args) != 0)
            return -1;
        if (th_wait_tcp(x->http_port, 5000) == 0)
            return 0;
        th_server_stop(&x->s); /* the monitor port was taken meanwhile: another one */
    }
    return -1;
}

static void srv_stop(srv *x)
{
    if (x->s1)
        natsSubscription_Destroy(x->s1);
    if (x->s2)
        natsSubscription_Destroy(x->s2);
    if (x->nc)
        natsConnection_Destroy(x->nc);
    if (x->s.pid)
        th_server_stop(&x->s);
    nftw(x->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static int request_ok(natsConnection *nc, const char *subj, const char *body)
{
    natsMsg *reply = NULL;
    natsStatus st = natsConnection_RequestString(&reply, nc, subj, body, 2000);
    int ok = st == NATS_OK && reply && !strstr(natsMsg_GetData(reply), "\"error\"");
    if (!ok)
        fprintf(stderr, "request %s failed: %s %s\n", subj, natsStatus_GetText(st),
                reply ? natsMsg_GetData(reply) : "");
    natsMsg_Destroy(reply);
    return ok ? 0 : -1;
}

/* The same traffic on both servers. */
static int srv_traffic(srv *x)
{
    natsOptions *o = th_opts_new(&x->s);
    if (!o)
        return -1;
    natsOptions_SetName(o, "monitor-compare");
    natsStatus st = th_connect(&x->s, o, &x->nc);
    natsOptions_Destroy(o);
    if (st != NATS_OK)
        return -1;
    if (natsConnection_SubscribeSync(&x->s1, x->nc, "mon.foo") != NATS_OK ||
        natsConnection_QueueSubscribeSync(&x->s2, x->nc, "mon.bar.*", "workers") != NATS_OK)
        return -1;
    for (int i = 0; i < 5; i++)
        natsConnection_PublishString(x->nc, "mon.foo", "hello");
    if (request_ok(x->nc, "$JS.API.STREAM.CREATE.MONCMP",
                   "{\"name\":\"MONCMP\",\"subjects\":[\"moncmp.>\"]}") ||
        request_ok(x->nc, "$JS.API.CONSUMER.DURABLE.CREATE.MONCMP.DUR",
                   "{\"stream_name\":\"MONCMP\",\"config\":{\"durable_name\":\"DUR\","
                   "\"ack_policy\":\"explicit\"}}"))
        return -1;
    for (int i = 0; i < 3; i++)
        if (request_ok(x->nc, "moncmp.a", "data"))
            return -1;
    natsConnection_Flush(x->nc);
    /* let the subscriptions take their messages (bounded) */
    for (int i = 0; i < 5; i++) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, x->s1, 2000) == NATS_OK)
            natsMsg_Destroy(m);
    }
    return 0;
}

/* ---- HTTP ------------------------------------------------------------------------ */

typedef struct hresp {
    int status;
    char head[2048];
    char *body;
} hresp;

static void dechunk(char *b)
{
    char *in = b, *out = b;
    for (;;) {
        char *end;
        long n = strtol(in, &end, 16);
        char *crlf = strstr(end, "\r\n");
        if (n <= 0 || !crlf)
            break;
        in = crlf + 2;
        memmove(out, in, (size_t)n);
        out += n;
        in += n;
        if (!strncmp(in, "\r\n", 2))
            in += 2;
    }
    *out = 0;
}

static int http_get(int port, const char *path, hresp *r)
{
    memset(r, 0, sizeof *r);
    int fd = th_raw_connect(port, 0, 2000);
    if (fd < 0)
        return -1;
    char req[512];
    snprintf(req, sizeof req,
             "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    th_buf b;
    th_buf_init(&b);
    int rc = -1;
    if (th_raw_write_str(fd, req) == 0 && th_raw_read(fd, &b, NULL, 2000, 5000) >= 1) {
        char *e = strstr(b.data, "\r\n\r\n");
        if (e) {
            size_t hl = (size_t)(e - b.data);
            snprintf(r->head, sizeof r->head, "%.*s", (int)hl, b.data);
            sscanf(b.data, "HTTP/1.%*d %d", &r->status);
            r->body = strdup(e + 4);
            if (r->body && strcasestr(r->head, "Transfer-Encoding: chunked"))
                dechunk(r->body);
            rc = 0;
        }
    }
    th_buf_free(&b);
    close(fd);
    return rc;
}

static cJSON *get_json(srv *x, const char *path)
{
    hresp r;
    if (http_get(x->http_port, path, &r) != 0) {
        EXPECT(0, "%s %s: no HTTP answer", x->label, path);
        return NULL;
    }
    EXPECT(r.status == 200, "%s %s: status %d", x->label, path, r.status);
    EXPECT(strcasestr(r.head, "Content-Type: application/json") != NULL,
           "%s %s: not JSON: %s", x->label, path, r.head);
    cJSON *o = r.body ? cJSON_Parse(r.body) : NULL;
    EXPECT(o != NULL, "%s %s: body does not parse: %.200s", x->label, path,
           r.body ? r.body : "");
    if (g_print)
        printf("---- %s %s\n%s\n", x->label, path, r.body ? r.body : "");
    free(r.body);
    return o;
}

/* ---- field-set comparison -------------------------------------------------------- */

static bool left_out(const char *endpoint, const char *path)
{
    char key[640];
    snprintf(key, sizeof key, "%.100s:%.520s", endpoint, path);
    for (size_t i = 0; i < sizeof LEFT_OUT / sizeof LEFT_OUT[0]; i++)
        if (!strcmp(LEFT_OUT[i].field, key))
            return true;
    return false;
}

/* Every field of ref must be in tgt (recursively). */
static void cover(const char *endpoint, const char *path, const cJSON *ref, const cJSON *tgt)
{
    if (cJSON_IsObject(ref)) {
        if (!cJSON_IsObject(tgt)) {
            EXPECT(0, "%s:%s: an object in nats-server, not in the target", endpoint, path);
            return;
        }
        const cJSON *f;
        cJSON_ArrayForEach(f, ref)
        {
            char sub[512];
            snprintf(sub, sizeof sub, "%.400s%s%.100s", path, *path ? "." : "", f->string);
            if (left_out(endpoint, sub))
                continue;
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(tgt, f->string);
            EXPECT(t != NULL, "%s: field \"%s\" missing in the target", endpoint, sub);
            if (t)
                cover(endpoint, sub, f, t);
        }
    } else if (cJSON_IsArray(ref)) {
        /* object arrays (connections, subscriptions, streams, ...): the fields of every
         * element of ref must appear in some element of tgt (orders differ) */
        const cJSON *r0 = cJSON_GetArrayItem(ref, 0);
        if (!r0 || !cJSON_IsObject(r0))
            return;
        EXPECT(cJSON_IsArray(tgt) && cJSON_GetArraySize(tgt) > 0,
               "%s:%s: nats-server lists objects, the target none", endpoint, path);
        if (!cJSON_IsArray(tgt))
            return;
        const cJSON *re;
        cJSON_ArrayForEach(re, ref)
        {
            const cJSON *f;
            cJSON_ArrayForEach(f, re)
            {
                char sub[512];
                snprintf(sub, sizeof sub, "%.400s[].%.100s", path, f->string);
                if (left_out(endpoint, sub))
                    continue;
                const cJSON *te, *t = NULL;
                cJSON_ArrayForEach(te, tgt)
                    if ((t = cJSON_GetObjectItemCaseSensitive(te, f->string)) != NULL)
                        break;
                EXPECT(t != NULL, "%s: field \"%s\" missing in the target", endpoint, sub);
                if (t)
                    cover(endpoint, sub, f, t);
            }
        }
    }
}

static double getn(const cJSON *o, const char *path)
{
    const cJSON *cur = at(o, path);
    return cJSON_IsNumber(cur) ? cur->valuedouble : cJSON_IsBool(cur) ? cJSON_IsTrue(cur) : -1e300;
}

static const char *gets_(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "(none)";
}

/* The first connection named monitor-compare (nats-server lists only clients). */
static const cJSON *our_conn(const cJSON *connz)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(connz, "connections"))
        if (!strcmp(gets_(c, "name"), "monitor-compare"))
            return c;
    return NULL;
}

static void compare(srv *ref, srv *tgt)
{
    static const char *const paths[] = {
        "/varz", "/connz?subs=1", "/connz?subs=detail", "/subsz", "/subsz?subs=1", "/jsz",
        "/jsz?accounts=1&streams=1&consumers=1&config=1", "/healthz", "/leafz"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        cJSON *r = get_json(ref, paths[i]);
        cJSON *t = get_json(tgt, paths[i]);
        char endpoint[32];
        snprintf(endpoint, sizeof endpoint, "%s", paths[i] + 1);
        char *q = strchr(endpoint, '?');
        if (q)
            *q = 0;
        if (r && t)
            cover(endpoint, "", r, t);
        if (r && t && !strcmp(endpoint, "varz")) {
            static const char *const same[] = {"max_payload", "max_connections", "ping_max",
                                               "ping_interval", "max_control_line",
                                               "max_pending", "write_deadline", "auth_timeout",
                                               "proto", "routes", "leafnodes", "connections",
                                               "total_connections", "in_msgs", "slow_consumers"};
            for (size_t k = 0; k < sizeof same / sizeof same[0]; k++)
                EXPECT(getn(r, same[k]) == getn(t, same[k]), "varz.%s: %g vs %g", same[k],
                       getn(r, same[k]), getn(t, same[k]));
            EXPECT(getn(t, "http_port") == tgt->http_port, "varz.http_port %g, want %d",
                   getn(t, "http_port"), tgt->http_port);
            EXPECT(getn(t, "port") == tgt->s.port, "varz.port %g", getn(t, "port"));
            EXPECT(getn(t, "jetstream.stats.accounts") == 1, "varz jetstream accounts");
        }
        if (r && t && !strcmp(endpoint, "connz")) {
            EXPECT(getn(r, "num_connections") == getn(t, "num_connections"),
                   "connz.num_connections %g vs %g", getn(r, "num_connections"),
                   getn(t, "num_connections"));
            const cJSON *rc = our_conn(r), *tc = our_conn(t);
            EXPECT(rc && tc, "connz: the named client is listed");
            if (rc && tc) {
                EXPECT(!strcmp(gets_(rc, "lang"), gets_(tc, "lang")), "connz lang %s vs %s",
                       gets_(rc, "lang"), gets_(tc, "lang"));
                EXPECT(!strcmp(gets_(tc, "type"), "nats"), "connz type %s", gets_(tc, "type"));
                EXPECT(getn(rc, "subscriptions") == getn(tc, "subscriptions"),
                       "connz subscriptions %g vs %g", getn(rc, "subscriptions"),
                       getn(tc, "subscriptions"));
            }
        }
        if (r && t && !strcmp(endpoint, "jsz")) {
            static const char *const same[] = {"streams", "consumers", "messages", "accounts",
                                               "ha_assets"};
            for (size_t k = 0; k < sizeof same / sizeof same[0]; k++)
                EXPECT(getn(r, same[k]) == getn(t, same[k]), "jsz.%s: %g vs %g", same[k],
                       getn(r, same[k]), getn(t, same[k]));
            if (strstr(paths[i], "streams=1"))
                EXPECT(getn(t, "account_details[0].stream_detail[0].state.messages") == 3,
                       "jsz stream_detail messages");
        }
        if (r && t && !strcmp(endpoint, "healthz"))
            EXPECT(!strcmp(gets_(r, "status"), gets_(t, "status")), "healthz status %s vs %s",
                   gets_(r, "status"), gets_(t, "status"));
        if (r && t && !strcmp(endpoint, "leafz"))
            EXPECT(getn(r, "leafnodes") == getn(t, "leafnodes"), "leafz.leafnodes");
        cJSON_Delete(r);
        cJSON_Delete(t);
    }
    /* error answers: nats-server's texts */
    static const struct {
        const char *path;
        int status;
        const char *body;
    } errs[] = {
        {"/nope", 404, "404 page not found\n"},
        {"/connz?sort=bogus", 400, "invalid sorting option: bogus"},
        {"/connz?limit=abc", 400,
         "Error decoding int for 'limit': strconv.Atoi: parsing \"abc\": invalid syntax"},
        {"/subsz?subs=maybe", 400,
         "Error decoding boolean for 'subs': strconv.ParseBool: parsing \"maybe\": invalid syntax"},
        {"/subsz?test=a.*", 400, "invalid test subject, must be valid publish subject: a.*"},
        {"/connz?state=x", 400, "Error decoding state for x"},
    };
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        srv *both[2] = {ref, tgt};
        for (int k = 0; k < 2; k++) {
            hresp h;
            int rc = http_get(both[k]->http_port, errs[i].path, &h);
            EXPECT(rc == 0 && h.status == errs[i].status, "%s %s: status %d, want %d",
                   both[k]->label, errs[i].path, h.status, errs[i].status);
            EXPECT(h.body && !strcmp(h.body, errs[i].body), "%s %s: body \"%s\"", both[k]->label,
                   errs[i].path, h.body ? h.body : "");
            free(h.body);
        }
    }
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--print"))
            g_print = 1;
    const char *refbin = getenv("EMBER_TEST_REFERENCE");
    if (!refbin || !*refbin)
        refbin = "nats-server";
    srv ref, tgt;
    if (srv_start(&ref, "nats-server", refbin) != 0) {
        fprintf(stderr, "cannot start the reference %s\n", refbin);
        return 1;
    }
    if (srv_start(&tgt, "target", NULL) != 0) {
        fprintf(stderr, "cannot start the target %s\n", th_server_binary());
        srv_stop(&ref);
        return 1;
    }
    if (srv_traffic(&ref) != 0 || srv_traffic(&tgt) != 0) {
        EXPECT(0, "traffic setup failed");
    } else {
        compare(&ref, &tgt);
    }
    srv_stop(&tgt);
    srv_stop(&ref);
    printf("monitor_compare (%s vs %s): %d passed, %d failed\n", th_server_binary(), refbin,
           g_passed, g_failed);
    for (size_t i = 0; i < sizeof LEFT_OUT / sizeof LEFT_OUT[0]; i++)
        printf("  left out: %s (%s)\n", LEFT_OUT[i].field, LEFT_OUT[i].why);
    return g_failed ? 1 : 0;
}
