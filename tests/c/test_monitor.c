/* test_monitor: monitoring (monitor.c, http.c): ember_server_monitor's JSON for every
 * endpoint from a live server, the HTTP port through raw loopback sockets (keep-alive,
 * HEAD, 404/405/400/431/505 answers, garbage), the request parser, and the config keys.
 * Every wait is bounded; nothing asserts on timing. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "ember.h"
#include "http.h"
#include "testutil.h"
#include "monutil.h"

/* ------------------------------------------------------------------ helpers */

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

typedef struct resp {
    int status;
    char head[4096];
    char *body;
    size_t body_len;
    bool closed; /* the server closed after the response */
} resp;

/* Read one response (headers, then Content-Length bytes, or until close). Bounded by the
 * socket's 5 s receive timeout. Leftover bytes of a next response stay in *carry. */
static bool read_resp(int fd, resp *r, char *carry, size_t *carry_len, bool head_only)
{
    memset(r, 0, sizeof *r);
    size_t cap = 1 << 20, len = *carry_len;
    char *buf = malloc(cap);
    if (!buf)
        return false;
    memcpy(buf, carry, len);
    *carry_len = 0;
    size_t hend = 0;
    long clen = -1;
    for (;;) {
        if (!hend) {
            char *e = memmem(buf, len, "\r\n\r\n", 4);
            if (e) {
                hend = (size_t)(e - buf) + 4;
                size_t hl = hend < sizeof r->head ? hend : sizeof r->head - 1;
                memcpy(r->head, buf, hl);
                r->head[hl] = 0;
                sscanf(buf, "HTTP/1.%*d %d", &r->status);
                char *cl = strcasestr(r->head, "\r\nContent-Length:");
                if (cl)
                    clen = strtol(cl + 17, NULL, 10);
                if (head_only)
                    clen = 0;
            }
        }
        if (hend && clen >= 0 && len >= hend + (size_t)clen)
            break;
        if (len == cap)
            break;
        ssize_t n = recv(fd, buf + len, cap - len, 0);
        if (n <= 0) {
            r->closed = true;
            break;
        }
        len += (size_t)n;
    }
    if (!hend) {
        free(buf);
        return false;
    }
    size_t blen = clen >= 0 ? (size_t)clen : len - hend;
    if (hend + blen > len)
        blen = len - hend;
    r->body = malloc(blen + 1);
    memcpy(r->body, buf + hend, blen);
    r->body[blen] = 0;
    r->body_len = blen;
    size_t rest = len - hend - blen;
    if (rest && rest < 8192) {
        memcpy(carry, buf + hend + blen, rest);
        *carry_len = rest;
    }
    free(buf);
    return true;
}

static bool peer_closed(int fd)
{
    char c;
    ssize_t n = recv(fd, &c, 1, 0);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* One request on a new connection; the response's status (0 on failure). For requests
 * whose answer ends the connection, r->closed tells whether the server closed it. */
static int http_once(int port, const char *req, resp *r)
{
    int fd = raw_connect(port);
    if (fd < 0)
        return 0;
    char carry[8192];
    size_t cl = 0;
    int st = 0;
    if (send_all(fd, req, strlen(req)) && read_resp(fd, r, carry, &cl, !strncmp(req, "HEAD", 4)))
        st = r->status;
    if (st && !r->closed && (strcasestr(r->head, "Connection: close") || strstr(req, "HTTP/1.0")))
        r->closed = peer_closed(fd);
    close(fd);
    return st;
}


static char tmpdir[256];

/* ------------------------------------------------------------------ parser */

static void test_parser(void)
{
    http_req r;
    const char *why;
    const char *ok = "GET /connz?subs=1&sort=cid HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK_EQ(http_parse_request(ok, strlen(ok), &r, &why), 0);
    CHECK(!strcmp(r.method, "GET"));
    CHECK(r.path_len == 6 && !memcmp(r.path, "/connz", 6));
    CHECK(r.query_len == 15 && !memcmp(r.query, "subs=1&sort=cid", 15));
    CHECK(r.keep_alive && r.minor == 1 && r.head_len == strlen(ok));
    /* incomplete: more needed at every cut */
    for (size_t i = 0; i < strlen(ok); i++)
        CHECK_EQ(http_parse_request(ok, i, &r, &why), 1);
    const char *lf = "GET /varz HTTP/1.0\n\n";
    CHECK_EQ(http_parse_request(lf, strlen(lf), &r, &why), 0);
    CHECK(!r.keep_alive && r.minor == 0);
    const char *ka = "GET /varz HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
    CHECK_EQ(http_parse_request(ka, strlen(ka), &r, &why), 0);
    CHECK(r.keep_alive);
    const char *cl = "GET /varz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    CHECK_EQ(http_parse_request(cl, strlen(cl), &r, &why), 0);
    CHECK(!r.keep_alive);
    const char *abs = "GET http://h:1/jsz?x=1 HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK_EQ(http_parse_request(abs, strlen(abs), &r, &why), 0);
    CHECK(r.path_len == 4 && !memcmp(r.path, "/jsz", 4) && r.query_len == 3);
    const char *body = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
    CHECK_EQ(http_parse_request(body, strlen(body), &r, &why), 0);
    CHECK_EQ(r.content_length, 5);
    /* errors */
    struct {
        const char *req;
        int status;
    } bad[] = {
        {"GARBAGE\r\n\r\n", 400},
        {"GET\r\n\r\n", 400},
        {"GET /varz\r\n\r\n", 400},
        {"GET /varz HTTP/1.1\r\n\r\n", 400}, /* no Host */
        {"GET /varz HTTP/2.0\r\nHost: x\r\n\r\n", 505},
        {"GET /varz HTTP/1.x\r\nHost: x\r\n\r\n", 400},
        {"GET varz HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"G(T /varz HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET /varz HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400},
        {"GET /varz HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400},
        {"GET /varz HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400},
        {"GET /varz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
        {"GET /varz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        {"GET /varz HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", 413},
        {"GET /varz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
        {"GET /va\x01z HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400}, /* a TLS ClientHello */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int st = http_parse_request(bad[i].req, strlen(bad[i].req), &r, &why);
        CHECK_MSG(st == bad[i].status, "case %zu: %d, want %d", i, st, bad[i].status);
    }
    const char *nohost = "GET /varz HTTP/1.1\r\n\r\n";
    CHECK_EQ(http_parse_request(nohost, strlen(nohost), &r, &why), 400);
    CHECK(why && !strcmp(why, "missing required Host header"));
    /* limits */
    size_t big = HTTP_MAX_HEAD + 100;
    char *b = malloc(big + 64);
    snprintf(b, 64, "GET /varz HTTP/1.1\r\nHost: x\r\nX-Big: ");
    size_t o = strlen(b);
    memset(b + o, 'a', big - o);
    CHECK_EQ(http_parse_request(b, big, &r, &why), 431);
    snprintf(b, 16, "GET /");
    memset(b + 5, 'a', HTTP_MAX_TARGET + 10);
    memcpy(b + 5 + HTTP_MAX_TARGET + 10, " HTTP/1.1\r\n\r\n", 13);
    CHECK_EQ(http_parse_request(b, 5 + HTTP_MAX_TARGET + 10 + 13, &r, &why), 414);
    free(b);
    /* query strings */
    char v[64];
    const char *q = "a=1&subs=detail&x=%41%42+c&bad=%zz&bad=ok&e=&k";
    CHECK_EQ(http_query_get(q, strlen(q), "subs", v, sizeof v), 6);
    CHECK(!strcmp(v, "detail"));
    CHECK_EQ(http_query_get(q, strlen(q), "x", v, sizeof v), 4);
    CHECK(!strcmp(v, "AB c"));
    CHECK_EQ(http_query_get(q, strlen(q), "bad", v, sizeof v), 2); /* first valid pair */
    CHECK_EQ(http_query_get(q, strlen(q), "e", v, sizeof v), 0);
    CHECK_EQ(http_query_get(q, strlen(q), "k", v, sizeof v), 0);
    CHECK_EQ(http_query_get(q, strlen(q), "nope", v, sizeof v), -1);
    CHECK_EQ(http_query_get(q, strlen(q), "subs", v, 4), -2);
}

/* ------------------------------------------------------------------ options */

static void test_options(void)
{
    ember_server_options o;
    ember_server_options_init(&o);
    CHECK(o.http_port == 0 && o.http_host == NULL);
    ember_server *s = NULL;
    o.http_port = 70000;
    CHECK_EQ(ember_server_new(&s, &o), EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "http_port") != NULL);
    o.http_port = -2;
    CHECK_EQ(ember_server_new(&s, &o), EMBER_EINVAL);
    o.http_port = 0;
    o.dont_listen = true;
    REQUIRE(ember_server_new(&s, &o) == EMBER_OK);
    char *json = (char *)1;
    CHECK_EQ(ember_server_monitor(s, "/varz", &json), EMBER_ESTATE);
    CHECK(json == NULL);
    CHECK_EQ(ember_server_monitor(NULL, "/varz", &json), EMBER_EINVAL);
    CHECK_EQ(ember_server_monitor(s, NULL, &json), EMBER_EINVAL);
    CHECK_EQ(ember_server_monitor(s, "/varz", NULL), EMBER_EINVAL);
    CHECK(ember_server_monitor_url(s) == NULL);
    CHECK_EQ(ember_server_monitor_port(s), 0);
    REQUIRE(ember_server_start(s) == EMBER_OK);
    REQUIRE(ember_server_ready_for_connections(s, 5000));
    CHECK(ember_server_monitor_url(s) == NULL); /* http_port 0: no port */
    CHECK_EQ(ember_server_monitor_port(s), 0);
    cJSON *v = mon(s, "varz");
    CHECK(v && num(v, "http_port") == 0 && num(v, "port") == 0);
    cJSON_Delete(v);
    ember_server_shutdown(s);
    CHECK_EQ(ember_server_monitor(s, "/varz", &json), EMBER_ECLOSED);
    ember_server_free(s);
    ember_free(NULL);

    /* the configuration keys */
    char path[300];
    snprintf(path, sizeof path, "%s/m.conf", tmpdir);
    struct {
        const char *text;
        const char *host;
        int port;
        int rc;
    } cases[] = {
        {"http_port: 8222\n", NULL, 8222, 0},
        {"monitor_port = -1\n", NULL, -1, 0},
        {"http: \"127.0.0.1:9333\"\n", "127.0.0.1", 9333, 0},
        {"http: 9444\n", NULL, 9444, 0},
        {"http: \":9555\"\n", NULL, 9555, 0},
        {"http_port: 70000\n", NULL, 0, EMBER_EINVAL},
        {"http: \"nohostport\"\n", NULL, 0, EMBER_EINVAL},
        {"http_port: \"x\"\n", NULL, 0, EMBER_EINVAL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FILE *f = fopen(path, "w");
        REQUIRE(f);
        fputs(cases[i].text, f);
        fclose(f);
        ember_server_options co;
        ember_server_options_init(&co);
        ember_config *cfg = NULL;
        int rc = ember_config_load(&cfg, path, &co);
        CHECK_MSG(rc == cases[i].rc, "case %zu: %d (%s)", i, rc, ember_last_error());
        if (rc == 0) {
            CHECK_EQ(co.http_port, cases[i].port);
            CHECK(cases[i].host ? co.http_host && !strcmp(co.http_host, cases[i].host)
                                : co.http_host == NULL);
        } else {
            CHECK(strstr(ember_last_error(), "m.conf:1:") != NULL);
        }
        ember_config_free(cfg);
    }
    unlink(path);
}

/* ------------------------------------------------------------------ the function */

static void on_msg(void *ud, ember_sub *c, ember_msg *m)
{
    (void)ud;
    (void)c;
    (void)m;
}

static void test_function(void)
{
    char sd[300];
    snprintf(sd, sizeof sd, "%s/js", tmpdir);
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true; /* does not turn monitoring off */
    o.http_host = "127.0.0.1";
    o.http_port = -1;
    o.jetstream = true;
    o.store_dir = sd;
    o.server_name = "mon-test";
    ember_server *s = NULL;
    REQUIRE(ember_server_new(&s, &o) == EMBER_OK);
    REQUIRE(ember_server_start(s) == EMBER_OK);
    REQUIRE(ember_server_ready_for_connections(s, 5000));
    CHECK(ember_server_monitor_port(s) > 0);
    CHECK(ember_server_monitor_url(s) && !strncmp(ember_server_monitor_url(s), "http://127.0.0.1:", 17));

    ember_conn_options co;
    ember_conn_options_init(&co);
    co.name = "inproc-a";
    ember_conn *c = NULL;
    REQUIRE(ember_conn_connect(&c, s, &co) == EMBER_OK);
    ember_sub *s1 = NULL, *s2 = NULL;
    REQUIRE(ember_conn_subscribe(&s1, c, "foo", NULL, EMBER_DELIVER_INLINE, on_msg, NULL, NULL) == 0);
    REQUIRE(ember_conn_subscribe(&s2, c, "bar.*", "q1", EMBER_DELIVER_INLINE, on_msg, NULL, NULL) == 0);
    for (int i = 0; i < 3; i++)
        CHECK(ember_conn_publish(c, "foo", NULL, "hello", 5) == EMBER_OK);
    ember_conn *c2 = NULL;
    REQUIRE(ember_conn_connect(&c2, s, NULL) == EMBER_OK);

    /* /varz */
    cJSON *v = mon(s, "/varz");
    REQUIRE(v);
    CHECK(!strcmp(str(v, "server_name"), "mon-test"));
    CHECK(!strcmp(str(v, "server_id"), ember_server_id(s)));
    CHECK(!strcmp(str(v, "version"), EMBER_NATS_VERSION));
    CHECK_EQ(num(v, "http_port"), ember_server_monitor_port(s));
    CHECK(!strcmp(str(v, "http_host"), "127.0.0.1"));
    CHECK_EQ(num(v, "connections"), 2);
    CHECK(num(v, "total_connections") >= 2);
    CHECK(num(v, "in_msgs") >= 3 && num(v, "in_bytes") >= 15);
    CHECK(num(v, "out_msgs") >= 3);
    CHECK(num(v, "subscriptions") >= 2);
    CHECK_EQ(num(v, "max_payload"), 1024 * 1024);
    CHECK_EQ(num(v, "ping_interval"), 120e9);
    CHECK(num(v, "mem") > 0 && num(v, "cores") >= 1);
    CHECK(has(v, "start") && has(v, "now") && has(v, "uptime") && has(v, "http_req_stats"));
    const cJSON *jsv = cJSON_GetObjectItemCaseSensitive(v, "jetstream");
    CHECK(jsv && has(jsv, "config") && has(jsv, "stats"));
    cJSON_Delete(v);

    /* /connz: both in-process connections, told apart by type */
    cJSON *cz = mon(s, "connz");
    REQUIRE(cz);
    CHECK_EQ(num(cz, "num_connections"), 2);
    CHECK_EQ(num(cz, "total"), 2);
    CHECK_EQ(num(cz, "limit"), 1024);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(cz, "connections");
    REQUIRE(cJSON_GetArraySize(arr) == 2);
    const cJSON *a0 = cJSON_GetArrayItem(arr, 0), *a1 = cJSON_GetArrayItem(arr, 1);
    CHECK(num(a0, "cid") < num(a1, "cid"));
    CHECK(!strcmp(str(a0, "kind"), "Client") && !strcmp(str(a0, "type"), "in-process"));
    CHECK(!strcmp(str(a0, "name"), "inproc-a"));
    CHECK_EQ(num(a0, "subscriptions"), 2);
    CHECK_EQ(num(a0, "in_msgs"), 3);
    CHECK_EQ(num(a0, "in_bytes"), 15);
    CHECK(!has(a0, "subscriptions_list"));
    CHECK(has(a0, "start") && has(a0, "last_activity") && has(a0, "uptime") && has(a0, "idle"));
    double cid0 = num(a0, "cid");
    cJSON_Delete(cz);

    cz = mon(s, "/connz?subs=1&sort=subs");
    REQUIRE(cz);
    arr = cJSON_GetObjectItemCaseSensitive(cz, "connections");
    a0 = cJSON_GetArrayItem(arr, 0);
    CHECK_EQ(num(a0, "subscriptions"), 2); /* most subscriptions first */
    const cJSON *sl = cJSON_GetObjectItemCaseSensitive(a0, "subscriptions_list");
    CHECK(cJSON_GetArraySize(sl) == 2);
    cJSON_Delete(cz);

    cz = mon(s, "/connz?subs=detail&limit=1");
    REQUIRE(cz);
    CHECK_EQ(num(cz, "num_connections"), 1);
    CHECK_EQ(num(cz, "total"), 2);
    arr = cJSON_GetObjectItemCaseSensitive(cz, "connections");
    a0 = cJSON_GetArrayItem(arr, 0);
    const cJSON *sd0 = cJSON_GetObjectItemCaseSensitive(a0, "subscriptions_list_detail");
    REQUIRE(cJSON_GetArraySize(sd0) == 2);
    bool saw_foo = false, saw_q = false;
    const cJSON *it;
    cJSON_ArrayForEach(it, sd0)
    {
        if (!strcmp(str(it, "subject"), "foo")) {
            saw_foo = true;
            CHECK_EQ(num(it, "msgs"), 3);
        }
        if (!strcmp(str(it, "subject"), "bar.*"))
            saw_q = !strcmp(str(it, "qgroup"), "q1");
        CHECK_EQ(num(it, "cid"), cid0);
    }
    CHECK(saw_foo && saw_q);
    cJSON_Delete(cz);

    char path[128];
    snprintf(path, sizeof path, "connz?cid=%.0f", cid0);
    cz = mon(s, path);
    CHECK(cz && num(cz, "num_connections") == 1 && num(cz, "limit") == 1);
    cJSON_Delete(cz);
    cz = mon(s, "connz?offset=5");
    CHECK(cz && num(cz, "num_connections") == 0 && num(cz, "total") == 2);
    cJSON_Delete(cz);
    cz = mon(s, "connz?state=closed");
    CHECK(cz && num(cz, "total") == 0);
    cJSON_Delete(cz);
    cz = mon(s, "connz?acc=OTHER");
    CHECK(cz && num(cz, "total") == 0);
    cJSON_Delete(cz);

    char err[600];
    CHECK_EQ(mon_err(s, "connz?sort=bogus", err, sizeof err), EMBER_EINVAL);
    CHECK(!strcmp(err, "invalid sorting option: bogus"));
    CHECK_EQ(mon_err(s, "connz?limit=abc", err, sizeof err), EMBER_EINVAL);
    CHECK(!strcmp(err, "Error decoding int for 'limit': strconv.Atoi: parsing \"abc\": invalid syntax"));
    CHECK_EQ(mon_err(s, "connz?subs=maybe", err, sizeof err), EMBER_EINVAL);
    CHECK(!strcmp(err, "Error decoding boolean for 'subs': strconv.ParseBool: parsing \"maybe\": invalid syntax"));
    CHECK_EQ(mon_err(s, "connz?cid=-1", err, sizeof err), EMBER_EINVAL);
    CHECK(strstr(err, "strconv.ParseUint") != NULL);
    CHECK_EQ(mon_err(s, "connz?offset=99999999999999999999", err, sizeof err), EMBER_EINVAL);
    CHECK(strstr(err, "value out of range") != NULL);
    CHECK_EQ(mon_err(s, "connz?state=x", err, sizeof err), EMBER_EINVAL);
    CHECK(!strcmp(err, "Error decoding state for x"));
    CHECK_EQ(mon_err(s, "connz?sort=stop", err, sizeof err), EMBER_EINVAL);
    CHECK(!strcmp(err, "sort by stop only valid on closed connections"));
    CHECK_EQ(mon_err(s, "/nope", err, sizeof err), EMBER_ENOTFOUND);
    CHECK_EQ(mon_err(s, "/", err, sizeof err), EMBER_ENOTFOUND);
    CHECK_EQ(mon_err(s, "/varz/", err, sizeof err), EMBER_ENOTFOUND);

    /* /subsz */
    cJSON *sz = mon(s, "subsz");
    REQUIRE(sz);
    CHECK(num(sz, "num_subscriptions") >= 2 && num(sz, "num_inserts") >= 2);
    CHECK(has(sz, "num_cache") && has(sz, "cache_hit_rate") && has(sz, "max_fanout") &&
          has(sz, "avg_fanout"));
    CHECK(num(sz, "num_matches") >= 3);
    CHECK(!has(sz, "subscriptions_list"));
    cJSON_Delete(sz);
    sz = mon(s, "subsz?subs=1&test=bar.x");
    REQUIRE(sz);
    CHECK_EQ(num(sz, "total"), 1);
    const cJSON *sl2 = cJSON_GetObjectItemCaseSensitive(sz, "subscriptions_list");
    CHECK(cJSON_GetArraySize(sl2) == 1 &&
          !strcmp(str(cJSON_GetArrayItem(sl2, 0), "account"), "$G") &&
          !strcmp(str(cJSON_GetArrayItem(sl2, 0), "qgroup"), "q1"));
    cJSON_Delete(sz);
    CHECK_EQ(mon_err(s, "subsz?test=a.*", err, sizeof err), EMBER_EINVAL);
    CHECK(!strcmp(err, "invalid test subject, must be valid publish subject: a.*"));

    /* /jsz: live counts from the engine */
    cJSON *j = mon(s, "jsz");
    REQUIRE(j);
    CHECK(!has(j, "disabled"));
    CHECK_EQ(num(j, "streams"), 0);
    CHECK_EQ(num(j, "accounts"), 1);
    cJSON_Delete(j);
    ember_stream_config sc;
    ember_stream_config_init(&sc);
    sc.name = "MON";
    const char *subjects[] = {"mon.>"};
    sc.subjects = subjects;
    sc.nsubjects = 1;
    REQUIRE(ember_js_stream_create(c, &sc) == EMBER_OK);
    ember_consumer_config cc;
    ember_consumer_config_init(&cc);
    cc.durable_name = "D1";
    CHECK(ember_js_consumer_create(c, "MON", &cc, NULL, 0) == EMBER_OK);
    for (int i = 0; i < 2; i++) {
        ember_msg *m = NULL;
        REQUIRE(ember_msg_new(&m, "mon.a", NULL, "xyz", 3) == EMBER_OK);
        CHECK(ember_js_publish(c, m, NULL) == EMBER_OK);
        ember_msg_release(m);
    }
    j = mon(s, "/jsz");
    REQUIRE(j);
    CHECK_EQ(num(j, "streams"), 1);
    CHECK_EQ(num(j, "consumers"), 1);
    CHECK_EQ(num(j, "messages"), 2);
    CHECK(num(j, "bytes") > 0 && num(j, "storage") == num(j, "bytes"));
    CHECK(!has(j, "account_details"));
    const cJSON *jc = cJSON_GetObjectItemCaseSensitive(j, "config");
    CHECK(jc && num(jc, "max_storage") > 0 && strstr(str(jc, "store_dir"), "/js/jetstream"));
    cJSON_Delete(j);
    j = mon(s, "/jsz?streams=1&consumers=1&config=1");
    REQUIRE(j);
    const cJSON *ad = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "account_details"), 0);
    REQUIRE(ad);
    CHECK(!strcmp(str(ad, "name"), "$G"));
    const cJSON *sdet = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ad, "stream_detail"), 0);
    REQUIRE(sdet);
    CHECK(!strcmp(str(sdet, "name"), "MON"));
    CHECK(has(sdet, "config") && has(sdet, "state") && has(sdet, "created"));
    CHECK_EQ(num(cJSON_GetObjectItemCaseSensitive(sdet, "state"), "messages"), 2);
    const cJSON *cd = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(sdet, "consumer_detail"), 0);
    CHECK(cd && !strcmp(str(cd, "name"), "D1") && has(cd, "config") && num(cd, "num_pending") == 2);
    cJSON_Delete(j);
    j = mon(s, "/jsz?streams=1");
    sdet = j ? cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
                   cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "account_details"), 0),
                   "stream_detail"), 0)
             : NULL;
    CHECK(sdet && !has(sdet, "config") && !has(sdet, "consumer_detail"));
    cJSON_Delete(j);
    /* monitoring is not API use */
    j = mon(s, "/jsz");
    double api_total = j ? num(cJSON_GetObjectItemCaseSensitive(j, "api"), "total") : -1;
    cJSON_Delete(j);
    j = mon(s, "/jsz?consumers=1");
    cJSON_Delete(j);
    j = mon(s, "/jsz");
    CHECK(j && num(cJSON_GetObjectItemCaseSensitive(j, "api"), "total") == api_total);
    cJSON_Delete(j);

    /* /healthz */
    cJSON *h = mon(s, "healthz");
    CHECK(h && !strcmp(str(h, "status"), "ok") && num(h, "status_code") == 200);
    cJSON_Delete(h);
    h = mon(s, "healthz?account=$G&stream=MON&consumer=D1");
    CHECK(h && !strcmp(str(h, "status"), "ok"));
    cJSON_Delete(h);
    h = mon(s, "healthz?stream=MON");
    CHECK(h && !strcmp(str(h, "status"), "error") && num(h, "status_code") == 400);
    CHECK(h && !strcmp(str(h, "error"), "\"account\" must not be empty when checking stream health"));
    cJSON_Delete(h);
    h = mon(s, "healthz?account=$G&stream=NOPE");
    CHECK(h && !strcmp(str(h, "status"), "unavailable") && num(h, "status_code") == 404);
    CHECK(h && !strcmp(str(h, "error"), "JetStream stream \"NOPE\" not found on account \"$G\""));
    cJSON_Delete(h);
    h = mon(s, "healthz?account=$G&stream=MON&consumer=NOPE&details=true");
    CHECK(h && !strcmp(str(h, "status"), "error") && num(h, "status_code") == 404);
    const cJSON *errs = h ? cJSON_GetObjectItemCaseSensitive(h, "errors") : NULL;
    CHECK(cJSON_GetArraySize(errs) == 1 &&
          !strcmp(str(cJSON_GetArrayItem(errs, 0), "type"), "CONSUMER"));
    cJSON_Delete(h);
    h = mon(s, "healthz?account=NOPE");
    CHECK(h && num(h, "status_code") == 404);
    cJSON_Delete(h);
    CHECK_EQ(mon_err(s, "healthz?details=x", err, sizeof err), EMBER_EINVAL);

    /* /leafz */
    cJSON *l = mon(s, "leafz");
    CHECK(l && num(l, "leafnodes") == 0 && cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(l, "leafs")));
    cJSON_Delete(l);

    /* closing a connection shows */
    ember_conn_close(c2);
    cz = mon(s, "connz");
    CHECK(cz && num(cz, "total") == 1);
    cJSON_Delete(cz);

    ember_sub_unsubscribe(s1);
    ember_sub_unsubscribe(s2);
    ember_conn_close(c);
    ember_server_shutdown(s);
    char *json = (char *)1;
    CHECK_EQ(ember_server_monitor(s, "varz", &json), EMBER_ECLOSED);
    ember_server_free(s);
    rm_rf(sd);
}

/* ------------------------------------------------------------------ concurrency */

typedef struct hammer {
    ember_server *s;
    atomic_int ok, closed, other;
} hammer;

static void *hammer_thread(void *p)
{
    hammer *h = p;
    static const char *const paths[] = {"varz", "connz?subs=1", "subsz?subs=1", "jsz", "healthz",
                                        "leafz"};
    for (int i = 0; i < 200; i++) {
        char *json = NULL;
        int rc = ember_server_monitor(h->s, paths[i % 6], &json);
        if (rc == EMBER_OK) {
            atomic_fetch_add(&h->ok, 1);
            ember_free(json);
        } else if (rc == EMBER_ECLOSED) {
            atomic_fetch_add(&h->closed, 1);
            break;
        } else {
            atomic_fetch_add(&h->other, 1);
        }
    }
    return NULL;
}

static void test_concurrent_and_shutdown(void)
{
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true;
    ember_server *s = NULL;
    REQUIRE(ember_server_new(&s, &o) == EMBER_OK);
    REQUIRE(ember_server_start(s) == EMBER_OK);
    REQUIRE(ember_server_ready_for_connections(s, 5000));
    hammer h = {.s = s};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer_thread, &h);
    WAIT_UNTIL(atomic_load(&h.ok) > 50, 5000);
    ember_server_shutdown(s); /* calls in flight end with ECLOSED, none hangs */
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK(atomic_load(&h.ok) > 0);
    CHECK_EQ(atomic_load(&h.other), 0);
    ember_server_free(s);
}

/* ------------------------------------------------------------------ the HTTP port */

static void test_http(void)
{
    ember_server_options o;
    ember_server_options_init(&o);
    o.host = "127.0.0.1";
    o.port = -1;
    o.http_port = -1; /* http_host follows host */
    ember_server *s = NULL;
    REQUIRE(ember_server_new(&s, &o) == EMBER_OK);
    REQUIRE(ember_server_start(s) == EMBER_OK);
    REQUIRE(ember_server_ready_for_connections(s, 5000));
    int hp = ember_server_monitor_port(s);
    REQUIRE(hp > 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", hp);
    CHECK(ember_server_monitor_url(s) && !strcmp(ember_server_monitor_url(s), url));

    /* a NATS client over TCP, to show up in /connz as type nats */
    int nc = raw_connect(ember_server_port(s));
    REQUIRE(nc >= 0);
    const char *hello = "CONNECT {\"verbose\":false,\"name\":\"raw\",\"lang\":\"c\"}\r\nSUB x.y 7\r\nPING\r\n";
    CHECK(send_all(nc, hello, strlen(hello)));
    char tmp[4096];
    size_t got = 0;
    uint64_t dl = tu_now_ms() + 5000;
    while (!memmem(tmp, got, "PONG", 4) && tu_now_ms() < dl && got < sizeof tmp) {
        ssize_t n = recv(nc, tmp + got, sizeof tmp - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    CHECK(memmem(tmp, got, "PONG", 4) != NULL);

    resp r;
    CHECK_EQ(http_once(hp, "GET /varz HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
    CHECK(strcasestr(r.head, "Content-Type: application/json") != NULL);
    CHECK(strcasestr(r.head, "Access-Control-Allow-Origin: *") != NULL);
    cJSON *v = cJSON_Parse(r.body ? r.body : "");
    CHECK(v && num(v, "http_port") == hp && num(v, "port") == ember_server_port(s));
    const cJSON *rs = v ? cJSON_GetObjectItemCaseSensitive(v, "http_req_stats") : NULL;
    CHECK(rs && num(rs, "/varz") == 1);
    cJSON_Delete(v);
    free(r.body);

    CHECK_EQ(http_once(hp, "GET /connz?subs=1 HTTP/1.0\r\n\r\n", &r), 200);
    CHECK(!strncmp(r.head, "HTTP/1.0 200 OK", 15) && r.closed);
    v = cJSON_Parse(r.body ? r.body : "");
    const cJSON *c0 = v ? cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(v, "connections"), 0) : NULL;
    CHECK(c0 && !strcmp(str(c0, "type"), "nats") && !strcmp(str(c0, "ip"), "127.0.0.1") &&
          num(c0, "port") > 0 && !strcmp(str(c0, "name"), "raw") && !strcmp(str(c0, "lang"), "c"));
    CHECK(c0 && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(c0, "subscriptions_list")) == 1);
    cJSON_Delete(v);
    free(r.body);

    /* keep-alive: three pipelined requests on one connection, then close */
    int fd = raw_connect(hp);
    REQUIRE(fd >= 0);
    const char *three = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                        "HEAD /varz HTTP/1.1\r\nHost: x\r\n\r\n"
                        "GET /subsz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    CHECK(send_all(fd, three, strlen(three)));
    char carry[8192];
    size_t cl = 0;
    CHECK(read_resp(fd, &r, carry, &cl, false) && r.status == 200 && !r.closed);
    CHECK(r.body && !strcmp(r.body, "{\"status\":\"ok\"}"));
    free(r.body);
    CHECK(read_resp(fd, &r, carry, &cl, true) && r.status == 200 && r.body_len == 0);
    CHECK(strcasestr(r.head, "Content-Length: 0") == NULL); /* HEAD keeps GET's length */
    free(r.body);
    CHECK(read_resp(fd, &r, carry, &cl, false) && r.status == 200);
    CHECK(strcasestr(r.head, "Connection: close") != NULL);
    v = cJSON_Parse(r.body ? r.body : "");
    CHECK(v && num(v, "num_subscriptions") >= 1);
    cJSON_Delete(v);
    free(r.body);
    CHECK(peer_closed(fd));
    close(fd);

    /* answers for what is not served */
    CHECK_EQ(http_once(hp, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", &r), 404);
    CHECK(r.body && !strcmp(r.body, "404 page not found\n"));
    free(r.body);
    CHECK_EQ(http_once(hp, "POST /varz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", &r), 405);
    CHECK(strcasestr(r.head, "Allow: GET, HEAD") != NULL);
    free(r.body);
    CHECK_EQ(http_once(hp, "GET /connz?sort=bogus HTTP/1.1\r\nHost: x\r\n\r\n", &r), 400);
    CHECK(r.body && !strcmp(r.body, "invalid sorting option: bogus"));
    free(r.body);
    CHECK_EQ(http_once(hp, "GET /healthz?stream=x HTTP/1.1\r\nHost: x\r\n\r\n", &r), 400);
    CHECK(r.body && strstr(r.body, "\"status\":\"error\"") && !strstr(r.body, "status_code"));
    free(r.body);
    CHECK_EQ(http_once(hp, "GET /varz HTTP/1.1\r\n\r\n", &r), 400);
    CHECK(r.body && !strcmp(r.body, "400 Bad Request: missing required Host header") && r.closed);
    free(r.body);
    CHECK_EQ(http_once(hp, "GARBAGE\r\n\r\n", &r), 400);
    CHECK(r.closed);
    free(r.body);
    CHECK_EQ(http_once(hp, "GET /varz HTTP/2.0\r\nHost: x\r\n\r\n", &r), 505);
    free(r.body);
    CHECK_EQ(http_once(hp, "GET /varz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", &r), 501);
    free(r.body);
    CHECK_EQ(http_once(hp, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
    CHECK(strcasestr(r.head, "text/html") && r.body && strstr(r.body, "./varz"));
    free(r.body);

    /* an oversized head gets 431 */
    size_t big = HTTP_MAX_HEAD + 4096;
    char *b = malloc(big + 1);
    snprintf(b, big, "GET /varz HTTP/1.1\r\nHost: x\r\nX-Big: ");
    size_t bl = strlen(b);
    memset(b + bl, 'a', big - bl);
    b[big] = 0;
    fd = raw_connect(hp);
    REQUIRE(fd >= 0);
    send_all(fd, b, big); /* the server may close before taking it all */
    cl = 0;
    CHECK(read_resp(fd, &r, carry, &cl, false) && r.status == 431);
    free(r.body);
    close(fd);
    free(b);

    /* binary garbage of every byte value: answered or closed, never a crash */
    for (int round = 0; round < 20; round++) {
        unsigned char g[512];
        for (size_t i = 0; i < sizeof g; i++)
            g[i] = (unsigned char)(rand() & 0xff);
        fd = raw_connect(hp);
        if (fd < 0)
            continue;
        send_all(fd, g, sizeof g);
        char sink[1024];
        while (recv(fd, sink, sizeof sink, 0) > 0)
            ;
        close(fd);
    }
    /* a client that connects and goes silent, and one that half-sends: others go on */
    int idle = raw_connect(hp);
    int half = raw_connect(hp);
    CHECK(half >= 0 && send_all(half, "GET /va", 7));
    CHECK_EQ(http_once(hp, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
    free(r.body);
    /* the half request is dropped after the header timeout (bounded wait, not timed) */
    CHECK(WAIT_UNTIL(peer_closed(half), 15000));
    close(idle);
    close(half);

    v = NULL;
    CHECK_EQ(http_once(hp, "GET /varz HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
    v = cJSON_Parse(r.body ? r.body : "");
    rs = v ? cJSON_GetObjectItemCaseSensitive(v, "http_req_stats") : NULL;
    CHECK(rs && num(rs, "/varz") >= 2 && num(rs, "/connz") >= 2 && num(rs, "/") == 1);
    cJSON_Delete(v);
    free(r.body);

    close(nc);
    ember_server_free(s);
    /* the port is closed with the server */
    CHECK(raw_connect(hp) < 0);
}

static void test_port_taken(void)
{
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true;
    o.http_host = "127.0.0.1";
    o.http_port = -1;
    ember_server *a = NULL, *b = NULL;
    REQUIRE(ember_server_new(&a, &o) == EMBER_OK);
    REQUIRE(ember_server_start(a) == EMBER_OK);
    REQUIRE(ember_server_ready_for_connections(a, 5000));
    o.http_port = ember_server_monitor_port(a);
    REQUIRE(ember_server_new(&b, &o) == EMBER_OK);
    REQUIRE(ember_server_start(b) == EMBER_OK);
    CHECK(!ember_server_ready_for_connections(b, 5000));
    CHECK(strstr(ember_last_error(), "can't listen to the monitor port") != NULL);
    ember_server_free(b);
    ember_server_free(a);
}

/* The host may free its options after ember_server_new: /varz (leaf and websocket hosts,
 * TLS) and a reload read the server's own copies (ASan catches a dangling read). */
static void test_options_freed(void)
{
    char *leaf_host = strdup("127.0.0.1"), *ws_host = strdup("127.0.0.1"),
         *user = strdup("u1"), *pass = strdup("p1");
    REQUIRE(leaf_host && ws_host && user && pass);
    ember_user *users = calloc(1, sizeof *users);
    REQUIRE(users);
    users[0].user = user;
    users[0].password = pass;
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true;
    o.http_host = "127.0.0.1";
    o.http_port = -1;
    o.leaf_host = leaf_host;
    o.leaf_port = -1;
    o.ws_host = ws_host;
    o.ws_port = -1;
    o.ws_no_tls = true;
    o.users = users;
    o.users_count = 1;
    ember_server *s = NULL;
    REQUIRE(ember_server_new(&s, &o) == EMBER_OK);
    memset(leaf_host, 'x', strlen(leaf_host));
    memset(ws_host, 'x', strlen(ws_host));
    free(leaf_host);
    free(ws_host);
    free(user);
    free(pass);
    free(users);
    REQUIRE(ember_server_start(s) == EMBER_OK);
    REQUIRE(ember_server_ready_for_connections(s, 5000));
    char *json = NULL;
    CHECK(ember_server_monitor(s, "/varz", &json) == EMBER_OK);
    /* leaf.host and websocket.host (the client host is 0.0.0.0) */
    const char *h1 = json ? strstr(json, "\"host\": \"127.0.0.1\"") : NULL;
    CHECK(h1 && strstr(h1 + 1, "\"host\": \"127.0.0.1\""));
    free(json);
    /* a reload with options of its own (same users) */
    ember_user u2 = {0};
    u2.user = "u1";
    u2.password = "p2";
    ember_server_options r;
    ember_server_options_init(&r);
    r.dont_listen = true;
    r.http_host = "127.0.0.1";
    r.http_port = -1;
    r.leaf_host = "127.0.0.1";
    r.leaf_port = -1;
    r.ws_host = "127.0.0.1";
    r.ws_port = -1;
    r.ws_no_tls = true;
    r.users = &u2;
    r.users_count = 1;
    CHECK(ember_server_reload(s, &r) == EMBER_OK);
    ember_server_free(s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ember-test-monitor-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_parser();
    test_options();
    test_function();
    test_concurrent_and_shutdown();
    test_http();
    test_port_taken();
    test_options_freed();
    rm_rf(tmpdir);
    return tu_summary("monitor");
}
