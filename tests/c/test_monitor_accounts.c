/* test_monitor_accounts: the monitoring endpoints of a server with accounts (A and B with
 * JetStream, B with limits, C without; "$G" without JetStream), through
 * ember_server_monitor and in-process connections bound to accounts: /subsz summed over
 * the accounts and acc= per account, subscriptions_list[].account, /connz acc= and
 * auth=1's account, /jsz over the JetStream accounts (account_details, acc=, offset and
 * limit), /varz's jetstream and subscriptions, /healthz account=/stream=/consumer= in
 * that account, /accountz (list, detail with exports/imports, unknown account), and
 * /leafz acc=. Every wait is bounded; nothing asserts on timing. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ember.h"
#include "testutil.h"
#include "monutil.h"

static ember_conn *conn_in(ember_server *s, const char *account, const char *name)
{
    ember_conn_options co;
    ember_conn_options_init(&co);
    co.account = account;
    co.name = name;
    ember_conn *c = NULL;
    return ember_conn_connect(&c, s, &co) == EMBER_OK ? c : NULL;
}

/* The connection entry named `name` in a connz document (NULL when absent). */
static const cJSON *conn_named(const cJSON *cz, const char *name)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(cz, "connections"))
        if (!strcmp(str(c, "name"), name))
            return c;
    return NULL;
}

/* Does the subsz list hold subject for account acc? */
static bool subs_has(const cJSON *sz, const char *acc, const char *subject)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(sz, "subscriptions_list"))
        if (!strcmp(str(e, "account"), acc) && !strcmp(str(e, "subject"), subject))
            return true;
    return false;
}

static bool all_subs_of(const cJSON *sz, const char *acc)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(sz, "subscriptions_list"))
        if (strcmp(str(e, "account"), acc) != 0)
            return false;
    return true;
}

static char dir[64];

static void fill(ember_server_options *o, ember_account acc[3], ember_export ex[4],
                 ember_import im[3])
{
    ember_server_options_init(o);
    o->dont_listen = true;
    o->jetstream = true;
    o->store_dir = dir;
    memset(acc, 0, 3 * sizeof *acc);
    memset(ex, 0, 4 * sizeof *ex);
    memset(im, 0, 3 * sizeof *im);
    ex[0].subject = "news.>";
    ex[1].subject = "svc.echo";
    ex[1].service = true;
    ex[2].subject = "svc.private";
    ex[2].service = true;
    ex[2].accounts = "C";
    ex[3].subject = "svc.many";
    ex[3].service = true;
    ex[3].response_type = EMBER_RESPONSE_STREAM;
    im[0].account = "A";
    im[0].subject = "news.>";
    im[0].prefix = "a";
    im[1].account = "A";
    im[1].subject = "svc.echo";
    im[1].service = true;
    im[1].to = "echo";
    im[2].account = "A";
    im[2].subject = "svc.private";
    im[2].service = true;
    acc[0].name = "A";
    acc[0].jetstream = true;
    acc[0].exports = ex;
    acc[0].exports_count = 4;
    acc[1].name = "B";
    acc[1].jetstream = true;
    acc[1].jetstream_max_memory = 1000000;
    acc[1].jetstream_max_store = 10000000;
    acc[1].imports = im;
    acc[1].imports_count = 2;
    acc[2].name = "C";
    acc[2].imports = &im[2];
    acc[2].imports_count = 1;
    o->accounts = acc;
    o->accounts_count = 3;
}

static void test_accounts(void)
{
    ember_server_options o;
    ember_account acc[3];
    ember_export ex[4];
    ember_import im[3];
    fill(&o, acc, ex, im);
    ember_server *s = NULL;
    REQUIRE(ember_server_new(&s, &o) == EMBER_OK);
    REQUIRE(ember_server_start(s) == EMBER_OK);
    REQUIRE(ember_server_ready_for_connections(s, 5000));

    ember_conn *a = conn_in(s, "A", "ca"), *b = conn_in(s, "B", "cb"), *c = conn_in(s, "C", "cc");
    ember_conn *g = conn_in(s, NULL, "cg");
    REQUIRE(a && b && c && g);
    ember_sub *sa1 = NULL, *sa2 = NULL, *sb = NULL, *sc = NULL, *sg = NULL;
    CHECK(ember_conn_subscribe(&sa1, a, "only.a", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) == 0);
    CHECK(ember_conn_subscribe(&sa2, a, "x.y", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) == 0);
    CHECK(ember_conn_subscribe(&sb, b, "x.y", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) == 0);
    CHECK(ember_conn_subscribe(&sc, c, "only.c", "q", EMBER_DELIVER_POLL, NULL, NULL, NULL) == 0);
    CHECK(ember_conn_subscribe(&sg, g, "only.g", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) == 0);
    CHECK(ember_conn_publish(a, "x.y", NULL, "1", 1) == 0);
    ember_conn_flush(a, 2000);

    /* JetStream: a file stream with a durable in A, a memory stream in B */
    ember_stream_config sc1;
    ember_stream_config_init(&sc1);
    const char *subj_a[] = {"sa.>"};
    sc1.name = "SA";
    sc1.subjects = subj_a;
    sc1.nsubjects = 1;
    CHECK(ember_js_stream_create(a, &sc1) == EMBER_OK);
    ember_consumer_config cc;
    ember_consumer_config_init(&cc);
    cc.durable_name = "DUR";
    CHECK(ember_js_consumer_create(a, "SA", &cc, NULL, 0) == EMBER_OK);
    ember_stream_config sc2;
    ember_stream_config_init(&sc2);
    const char *subj_b[] = {"sb.>"};
    sc2.name = "SB";
    sc2.subjects = subj_b;
    sc2.nsubjects = 1;
    sc2.storage = EMBER_STORAGE_MEMORY;
    CHECK(ember_js_stream_create(b, &sc2) == EMBER_OK);
    ember_msg *m = NULL;
    if (ember_msg_new(&m, "sa.1", NULL, "hi", 2) == EMBER_OK) {
        CHECK(ember_js_publish(a, m, NULL) == EMBER_OK);
        ember_msg_release(m);
    }
    /* the global account has no JetStream here */
    CHECK(ember_js_stream_create(g, &sc2) != EMBER_OK);

    char err[600];

    /* ---- /subsz */
    cJSON *all = mon(s, "subsz?subs=1");
    cJSON *sza = mon(s, "subsz?subs=1&acc=A"), *szb = mon(s, "subsz?acc=B");
    cJSON *szc = mon(s, "subsz?acc=C"), *szg = mon(s, "subsz?acc=$G&subs=1");
    cJSON *szz = mon(s, "subsz?acc=NOPE&subs=1");
    if (all && sza && szb && szc && szg && szz) {
        double na = num(sza, "num_subscriptions"), nb = num(szb, "num_subscriptions"),
               nc = num(szc, "num_subscriptions"), ng = num(szg, "num_subscriptions");
        CHECK(na >= 2 && nb >= 1 && nc >= 1 && ng >= 1);
        CHECK_MSG(num(all, "num_subscriptions") == na + nb + nc + ng, "%g = %g+%g+%g+%g",
                  num(all, "num_subscriptions"), na, nb, nc, ng);
        CHECK(num(all, "num_inserts") == num(sza, "num_inserts") + num(szb, "num_inserts") +
                                             num(szc, "num_inserts") + num(szg, "num_inserts"));
        CHECK(num(all, "total") == num(all, "num_subscriptions"));
        CHECK(subs_has(all, "A", "only.a") && subs_has(all, "A", "x.y"));
        CHECK(subs_has(all, "B", "x.y") && subs_has(all, "C", "only.c"));
        CHECK(subs_has(all, "$G", "only.g"));
        CHECK(subs_has(sza, "A", "only.a") && !subs_has(sza, "C", "only.c"));
        CHECK(all_subs_of(sza, "A") && all_subs_of(szg, "$G"));
        CHECK(num(sza, "total") == na);
        CHECK(subs_has(szg, "$G", "only.g") && !subs_has(szg, "A", "only.a"));
        CHECK(num(sza, "num_matches") >= 1); /* the publish on x.y in A */
        /* an unknown account: nothing (nats-server) */
        CHECK(num(szz, "num_subscriptions") == 0 && num(szz, "total") == 0);
        CHECK(!has(szz, "subscriptions_list"));
    }
    cJSON_Delete(all);
    cJSON_Delete(sza);
    cJSON_Delete(szb);
    cJSON_Delete(szc);
    cJSON_Delete(szg);
    cJSON_Delete(szz);
    cJSON *t = mon(s, "subsz?subs=1&test=x.y");
    if (t) {
        CHECK(subs_has(t, "A", "x.y") && subs_has(t, "B", "x.y") && !subs_has(t, "A", "only.a"));
        CHECK(num(t, "total") == 2);
    }
    cJSON_Delete(t);
    t = mon(s, "subsz?subs=1&test=x.y&acc=B");
    CHECK(t && num(t, "total") == 1 && subs_has(t, "B", "x.y"));
    cJSON_Delete(t);

    /* ---- /connz */
    cJSON *cz = mon(s, "connz?subs=1");
    if (cz) {
        CHECK(num(cz, "total") == 4);
        const cJSON *ca = conn_named(cz, "ca"), *cg = conn_named(cz, "cg");
        CHECK(ca && num(ca, "subscriptions") == 2 && count(ca, "subscriptions_list") == 2);
        CHECK(cg && num(cg, "subscriptions") == 1);
        CHECK(ca && !has(ca, "account")); /* only with auth=1 */
    }
    cJSON_Delete(cz);
    cz = mon(s, "connz?auth=1&subs=detail");
    if (cz) {
        const cJSON *ca = conn_named(cz, "ca"), *cb = conn_named(cz, "cb"),
                    *cg = conn_named(cz, "cg");
        CHECK(ca && !strcmp(str(ca, "account"), "A"));
        CHECK(cb && !strcmp(str(cb, "account"), "B"));
        CHECK(cg && !has(cg, "account")); /* the global account is not named */
        CHECK(ca && count(ca, "subscriptions_list_detail") == 2);
    }
    cJSON_Delete(cz);
    cz = mon(s, "connz?acc=A&subs=1");
    if (cz) {
        CHECK(num(cz, "total") == 1 && num(cz, "num_connections") == 1);
        CHECK(conn_named(cz, "ca") && !conn_named(cz, "cb"));
        CHECK(num(cz, "connections[0].subscriptions") == 2);
    }
    cJSON_Delete(cz);
    cz = mon(s, "connz?acc=$G");
    CHECK(cz && num(cz, "total") == 1 && conn_named(cz, "cg"));
    cJSON_Delete(cz);
    cz = mon(s, "connz?acc=NOPE");
    CHECK(cz && num(cz, "total") == 0 && count(cz, "connections") == 0);
    cJSON_Delete(cz);

    /* ---- /jsz */
    cJSON *jz = mon(s, "jsz");
    if (jz) {
        CHECK(!has(jz, "disabled"));
        CHECK(num(jz, "accounts") == 2 && num(jz, "total") == 2);
        CHECK(num(jz, "streams") == 2 && num(jz, "consumers") == 1 && num(jz, "messages") == 1);
        CHECK(num(jz, "api.level") >= 1);
        CHECK(has(jz, "config.max_memory") && has(jz, "config.store_dir"));
        CHECK(strstr(str(jz, "config.store_dir"), dir) != NULL);
        CHECK(!has(jz, "account_details"));
    }
    cJSON_Delete(jz);
    jz = mon(s, "jsz?accounts=1");
    if (jz) {
        CHECK(count(jz, "account_details") == 2);
        CHECK(!strcmp(str(jz, "account_details[0].name"), "A"));
        CHECK(!strcmp(str(jz, "account_details[0].id"), "A"));
        CHECK(!strcmp(str(jz, "account_details[1].name"), "B"));
        /* A has no limits of its own (uint64(-1)), B its own */
        CHECK(num(jz, "account_details[0].reserved_memory") > 1.8e19);
        CHECK(num(jz, "account_details[1].reserved_memory") == 1000000);
        CHECK(num(jz, "account_details[1].reserved_storage") == 10000000);
        CHECK(num(jz, "account_details[0].storage") > 0);
        CHECK(!has(jz, "account_details[0].stream_detail"));
    }
    cJSON_Delete(jz);
    jz = mon(s, "jsz?acc=B&streams=1");
    if (jz) {
        CHECK(count(jz, "account_details") == 1 && !strcmp(str(jz, "account_details[0].name"), "B"));
        CHECK(count(jz, "account_details[0].stream_detail") == 1);
        CHECK(!strcmp(str(jz, "account_details[0].stream_detail[0].name"), "SB"));
        CHECK(num(jz, "streams") == 2); /* the totals stay the server's */
    }
    cJSON_Delete(jz);
    jz = mon(s, "jsz?acc=A&consumers=1");
    if (jz) {
        CHECK(count(jz, "account_details") == 1);
        CHECK(!strcmp(str(jz, "account_details[0].stream_detail[0].name"), "SA"));
        CHECK(num(jz, "account_details[0].stream_detail[0].state.messages") == 1);
        CHECK(count(jz, "account_details[0].stream_detail[0].consumer_detail") == 1);
    }
    cJSON_Delete(jz);
    jz = mon(s, "jsz?streams=1");
    CHECK(jz && count(jz, "account_details") == 2);
    cJSON_Delete(jz);
    jz = mon(s, "jsz?accounts=1&offset=1&limit=1");
    CHECK(jz && count(jz, "account_details") == 1 && !strcmp(str(jz, "account_details[0].name"), "B"));
    cJSON_Delete(jz);
    jz = mon(s, "jsz?accounts=1&limit=1");
    CHECK(jz && count(jz, "account_details") == 1 && !strcmp(str(jz, "account_details[0].name"), "A"));
    cJSON_Delete(jz);
    jz = mon(s, "jsz?accounts=1&offset=5");
    CHECK(jz && !has(jz, "account_details"));
    cJSON_Delete(jz);
    jz = mon(s, "jsz?acc=C");
    CHECK(jz && !has(jz, "account_details")); /* C has no JetStream */
    cJSON_Delete(jz);
    jz = mon(s, "jsz?acc=$G&streams=1");
    CHECK(jz && !has(jz, "account_details"));
    cJSON_Delete(jz);

    /* ---- /varz */
    cJSON *v = mon(s, "varz");
    if (v) {
        CHECK(num(v, "jetstream.stats.accounts") == 2);
        CHECK(has(v, "jetstream.config.max_memory"));
        CHECK(num(v, "jetstream.stats.storage") > 0);
        cJSON *sz = mon(s, "subsz");
        CHECK(sz && num(v, "subscriptions") == num(sz, "num_subscriptions"));
        cJSON_Delete(sz);
    }
    cJSON_Delete(v);

    /* ---- /healthz */
    static const struct {
        const char *q;
        double code;
        const char *error;
    } hz[] = {
        {"healthz", 200, NULL},
        {"healthz?js-enabled-only=1", 200, NULL},
        {"healthz?account=A", 200, NULL},
        {"healthz?account=B", 200, NULL},
        {"healthz?account=C", 404, "JetStream account \"C\" not found"},
        {"healthz?account=$G", 404, "JetStream account \"$G\" not found"},
        {"healthz?account=NOPE", 404, "JetStream account \"NOPE\" not found"},
        {"healthz?account=A&stream=SA", 200, NULL},
        {"healthz?account=B&stream=SB", 200, NULL},
        {"healthz?account=A&stream=SB", 404, "JetStream stream \"SB\" not found on account \"A\""},
        {"healthz?account=A&stream=SA&consumer=DUR", 200, NULL},
        {"healthz?account=A&stream=SA&consumer=NO", 404,
         "JetStream consumer \"NO\" not found for stream \"SA\" on account \"A\""},
        {"healthz?account=B&stream=SA&consumer=DUR", 404,
         "JetStream stream \"SA\" not found on account \"B\""},
    };
    for (size_t i = 0; i < sizeof hz / sizeof hz[0]; i++) {
        cJSON *h = mon(s, hz[i].q);
        if (!h)
            continue;
        CHECK_MSG(num(h, "status_code") == hz[i].code, "%s: %g", hz[i].q, num(h, "status_code"));
        if (hz[i].error)
            CHECK_MSG(!strcmp(str(h, "error"), hz[i].error), "%s: %s", hz[i].q, str(h, "error"));
        else
            CHECK_MSG(!strcmp(str(h, "status"), "ok"), "%s: %s", hz[i].q, str(h, "status"));
        cJSON_Delete(h);
    }
    cJSON *h = mon(s, "healthz?account=C&details=1");
    if (h) {
        CHECK(!strcmp(str(h, "errors[0].type"), "ACCOUNT"));
        CHECK(!strcmp(str(h, "errors[0].account"), "C"));
    }
    cJSON_Delete(h);

    /* ---- /accountz */
    cJSON *az = mon(s, "accountz");
    if (az) {
        CHECK(has(az, "server_id") && has(az, "now") && !has(az, "system_account"));
        CHECK(count(az, "accounts") == 4);
        CHECK(!strcmp(str(az, "accounts[0]"), "$G") && !strcmp(str(az, "accounts[1]"), "A") &&
              !strcmp(str(az, "accounts[2]"), "B") && !strcmp(str(az, "accounts[3]"), "C"));
        CHECK(!has(az, "account_detail"));
    }
    cJSON_Delete(az);
    az = mon(s, "accountz?acc=A");
    if (az) {
        CHECK(!has(az, "accounts"));
        CHECK(!strcmp(str(az, "account_detail.account_name"), "A"));
        CHECK(cJSON_IsTrue(at(az, "account_detail.jetstream_enabled")));
        CHECK(cJSON_IsFalse(at(az, "account_detail.expired")));
        CHECK(cJSON_IsTrue(at(az, "account_detail.complete")));
        CHECK(num(az, "account_detail.client_connections") == 1);
        CHECK(num(az, "account_detail.leafnode_connections") == 0);
        CHECK(num(az, "account_detail.subscriptions") >= 2);
        CHECK(num(az, "account_detail.subscriptions") ==
              num(az, "account_detail.sublist_stats.num_subscriptions"));
        CHECK(count(az, "account_detail.exports") == 4 && !has(az, "account_detail.imports"));
        /* services first (nats-server's order), then streams */
        CHECK(!strcmp(str(az, "account_detail.exports[0].subject"), "svc.echo"));
        CHECK(!strcmp(str(az, "account_detail.exports[0].type"), "service"));
        CHECK(!strcmp(str(az, "account_detail.exports[0].response_type"), "Singleton"));
        CHECK(!has(az, "account_detail.exports[0].approved_accounts"));
        CHECK(!strcmp(str(az, "account_detail.exports[1].approved_accounts[0]"), "C"));
        CHECK(!strcmp(str(az, "account_detail.exports[2].response_type"), "Streamed"));
        CHECK(!strcmp(str(az, "account_detail.exports[3].subject"), "news.>"));
        CHECK(!strcmp(str(az, "account_detail.exports[3].type"), "stream"));
        CHECK(!has(az, "account_detail.exports[3].response_type"));
    }
    cJSON_Delete(az);
    az = mon(s, "accountz?acc=B");
    if (az) {
        CHECK(count(az, "account_detail.imports") == 2 && !has(az, "account_detail.exports"));
        CHECK(!strcmp(str(az, "account_detail.imports[0].type"), "stream"));
        CHECK(!strcmp(str(az, "account_detail.imports[0].subject"), "news.>"));
        CHECK(!strcmp(str(az, "account_detail.imports[0].account"), "A"));
        CHECK(!strcmp(str(az, "account_detail.imports[0].local_subject"), "a.news.>"));
        CHECK(!strcmp(str(az, "account_detail.imports[1].type"), "service"));
        CHECK(!strcmp(str(az, "account_detail.imports[1].subject"), "echo"));
        CHECK(!strcmp(str(az, "account_detail.imports[1].to"), "svc.echo"));
        CHECK(cJSON_IsFalse(at(az, "account_detail.imports[1].invalid")));
    }
    cJSON_Delete(az);
    az = mon(s, "accountz?acc=C");
    if (az) {
        CHECK(cJSON_IsFalse(at(az, "account_detail.jetstream_enabled")));
        CHECK(!strcmp(str(az, "account_detail.imports[0].subject"), "svc.private"));
        CHECK(!strcmp(str(az, "account_detail.imports[0].to"), "svc.private"));
    }
    cJSON_Delete(az);
    az = mon(s, "accountz?acc=$G");
    if (az) {
        CHECK(!strcmp(str(az, "account_detail.account_name"), "$G"));
        CHECK(cJSON_IsFalse(at(az, "account_detail.jetstream_enabled")));
        CHECK(num(az, "account_detail.client_connections") == 1);
    }
    cJSON_Delete(az);
    CHECK(mon_err(s, "accountz?acc=NOPE", err, sizeof err) == EMBER_EINVAL);
    CHECK_MSG(!strcmp(err, "Account NOPE does not exist"), "%s", err);

    /* ---- /leafz: no links, acc= accepted */
    cJSON *lz = mon(s, "leafz?acc=A");
    CHECK(lz && num(lz, "leafnodes") == 0);
    cJSON_Delete(lz);

    ember_conn_close(a);
    ember_conn_close(b);
    ember_conn_close(c);
    ember_conn_close(g);
    ember_server_shutdown(s);
    ember_server_free(s);
}

/* Without accounts nothing changes: "$G" is the only account and has JetStream. */
static void test_global_only(void)
{
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true;
    o.jetstream = true;
    o.store_dir = dir;
    ember_server *s = NULL;
    REQUIRE(ember_server_new(&s, &o) == EMBER_OK);
    REQUIRE(ember_server_start(s) == EMBER_OK);
    REQUIRE(ember_server_ready_for_connections(s, 5000));
    ember_conn *g = conn_in(s, NULL, "cg");
    REQUIRE(g);
    cJSON *az = mon(s, "accountz");
    CHECK(az && count(az, "accounts") == 1 && !strcmp(str(az, "accounts[0]"), "$G"));
    cJSON_Delete(az);
    az = mon(s, "accountz?acc=$G");
    CHECK(az && cJSON_IsTrue(at(az, "account_detail.jetstream_enabled")));
    CHECK(az && num(az, "account_detail.client_connections") == 1);
    cJSON_Delete(az);
    cJSON *jz = mon(s, "jsz?accounts=1");
    CHECK(jz && num(jz, "accounts") == 1 && count(jz, "account_details") == 1);
    CHECK(jz && !strcmp(str(jz, "account_details[0].name"), "$G"));
    CHECK(jz && num(jz, "account_details[0].reserved_memory") > 1.8e19);
    cJSON_Delete(jz);
    cJSON *h = mon(s, "healthz?account=$G");
    CHECK(h && num(h, "status_code") == 200);
    cJSON_Delete(h);
    h = mon(s, "healthz?account=A");
    CHECK(h && num(h, "status_code") == 404);
    cJSON_Delete(h);
    cJSON *cz = mon(s, "connz?auth=1&acc=$G");
    CHECK(cz && num(cz, "total") == 1 && !has(cz, "connections[0].account"));
    cJSON_Delete(cz);
    ember_conn_close(g);
    ember_server_shutdown(s);
    ember_server_free(s);
}

static int leafz_count(ember_server *s, const char *path)
{
    char *json = NULL;
    if (ember_server_monitor(s, path, &json) != EMBER_OK)
        return -1;
    cJSON *o = cJSON_Parse(json);
    ember_free(json);
    int n = o ? (int)num(o, "leafnodes") : -1;
    cJSON_Delete(o);
    return n;
}

/* /leafz acc=: a leaf link bound to account B of the leaf server is listed for B only. */
static void test_leafz(void)
{
    ember_server_options ho;
    ember_server_options_init(&ho);
    ho.dont_listen = true;
    ho.leaf_host = "127.0.0.1";
    ho.leaf_port = -1;
    ember_server *hub = NULL;
    REQUIRE(ember_server_new(&hub, &ho) == EMBER_OK);
    REQUIRE(ember_server_start(hub) == EMBER_OK);
    REQUIRE(ember_server_ready_for_connections(hub, 5000));
    char url[64];
    snprintf(url, sizeof url, "nats-leaf://127.0.0.1:%d", ember_server_leafnode_port(hub));

    ember_server_options o;
    ember_account acc[2];
    memset(acc, 0, sizeof acc);
    acc[0].name = "A";
    acc[1].name = "B";
    ember_leaf_remote r;
    memset(&r, 0, sizeof r);
    r.urls = url;
    r.account = "B";
    ember_server_options_init(&o);
    o.dont_listen = true;
    o.accounts = acc;
    o.accounts_count = 2;
    o.leaf_remotes = &r;
    o.leaf_remotes_count = 1;
    ember_server *leaf = NULL;
    if (ember_server_new(&leaf, &o) != EMBER_OK || ember_server_start(leaf) != EMBER_OK ||
        !ember_server_ready_for_connections(leaf, 5000)) {
        CHECK(0);
    } else {
        CHECK(WAIT_UNTIL(leafz_count(leaf, "leafz") == 1, 5000));
        CHECK_EQ(leafz_count(leaf, "leafz?acc=B"), 1);
        CHECK_EQ(leafz_count(leaf, "leafz?acc=A"), 0);
        CHECK_EQ(leafz_count(leaf, "leafz?acc=$G"), 0);
        CHECK_EQ(leafz_count(leaf, "leafz?acc=NOPE"), 0);
        cJSON *az = mon(leaf, "accountz?acc=B");
        CHECK(az && num(az, "account_detail.leafnode_connections") == 1);
        CHECK(az && num(az, "account_detail.client_connections") == 0);
        cJSON_Delete(az);
        cJSON *cz = mon(leaf, "connz?acc=B&auth=1");
        CHECK(cz && num(cz, "total") == 1 && !strcmp(str(cz, "connections[0].kind"), "Leafnode"));
        CHECK(cz && !strcmp(str(cz, "connections[0].account"), "B"));
        cJSON_Delete(cz);
        /* the hub has only "$G": its side of the link is there */
        CHECK(WAIT_UNTIL(leafz_count(hub, "leafz?acc=$G") == 1, 5000));
    }
    if (leaf) {
        ember_server_shutdown(leaf);
        ember_server_free(leaf);
    }
    ember_server_shutdown(hub);
    ember_server_free(hub);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/ember-monacc-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    test_accounts();
    rm_rf(dir);
    if (!mkdtemp(strcpy(dir, "/tmp/ember-monacc-XXXXXX")))
        return 1;
    test_global_only();
    rm_rf(dir);
    test_leafz();
    return tu_summary("test_monitor_accounts");
}
