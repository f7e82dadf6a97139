/* test_accounts: accounts through ember.h (ember_account in ember_server_options,
 * ember_conn_options.account, credentials of account users): isolation of in-process
 * connections, stream and service imports, JetStream and KV per account, option errors
 * with nats-server's texts, reload refusing account changes, and a config file. */
#define _GNU_SOURCE
#include "ember.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../interop/jwtmint.h"
#include "testutil.h"

static ember_conn *conn_in(ember_server *s, const char *account)
{
    ember_conn_options co;
    ember_conn_options_init(&co);
    co.account = account;
    ember_conn *c = NULL;
    if (ember_conn_connect(&c, s, &co) != EMBER_OK)
        return NULL;
    return c;
}

static size_t mlen(const ember_msg *m)
{
    size_t n = 0;
    ember_msg_data(m, &n);
    return n;
}
static const char *mdata(const ember_msg *m)
{
    size_t n = 0;
    return (const char *)ember_msg_data(m, &n);
}

static bool got(ember_sub *sub, const char *subject, const char *data, int ms)
{
    ember_msg *m = NULL;
    if (ember_sub_next_msg(sub, &m, ms) != EMBER_OK || !m)
        return false;
    bool ok = (!subject || !strcmp(ember_msg_subject(m), subject)) &&
              (!data || (mlen(m) == strlen(data) && !memcmp(mdata(m), data, strlen(data))));
    if (!ok)
        fprintf(stderr, "  got %s %.*s\n", ember_msg_subject(m), (int)mlen(m),
                mdata(m));
    ember_msg_release(m);
    return ok;
}

static bool nothing(ember_sub *sub, int ms)
{
    ember_msg *m = NULL;
    int rc = ember_sub_next_msg(sub, &m, ms);
    if (m)
        ember_msg_release(m);
    return rc == EMBER_ETIMEDOUT;
}

static void echo_fn(void *ud, ember_sub *sub, ember_msg *m)
{
    (void)sub;
    ember_conn *c = ud;
    char out[256];
    int n = snprintf(out, sizeof out, "echo:%.*s", (int)mlen(m), mdata(m));
    ember_msg_respond(c, m, out, (size_t)n);
}

static char dir[64];

static void fill(ember_server_options *o, ember_account acc[3], ember_export ex[3],
                 ember_import im[3], ember_user users[3])
{
    ember_server_options_init(o);
    o->dont_listen = true;
    o->jetstream = true;
    o->store_dir = dir;
    memset(acc, 0, 3 * sizeof *acc);
    memset(ex, 0, 3 * sizeof *ex);
    memset(im, 0, 3 * sizeof *im);
    memset(users, 0, 3 * sizeof *users);
    ex[0].subject = "news.>";
    ex[1].subject = "svc.echo";
    ex[1].service = true;
    ex[2].subject = "svc.private";
    ex[2].service = true;
    ex[2].accounts = "C";
    im[0].account = "A";
    im[0].subject = "news.>";
    im[0].prefix = "a";
    im[1].account = "A";
    im[1].subject = "svc.echo";
    im[1].service = true;
    im[1].to = "echo";
    users[0].user = "ua";
    users[0].password = "pa";
    users[1].user = "ub";
    users[1].password = "pb";
    acc[0].name = "A";
    acc[0].jetstream = true;
    acc[0].exports = ex;
    acc[0].exports_count = 3;
    acc[0].users = &users[0];
    acc[0].users_count = 1;
    acc[1].name = "B";
    acc[1].jetstream = true;
    acc[1].imports = im;
    acc[1].imports_count = 2;
    acc[1].users = &users[1];
    acc[1].users_count = 1;
    acc[2].name = "C";
    o->accounts = acc;
    o->accounts_count = 3;
}

static void test_option_errors(void)
{
    ember_server_options o;
    ember_account acc[3];
    ember_export ex[3];
    ember_import im[3];
    ember_user users[3];
    ember_server *s = NULL;

    fill(&o, acc, ex, im, users);
    acc[2].name = "$G";
    CHECK(ember_server_new(&s, &o) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "\"$G\" is a Reserved Account") != NULL);

    fill(&o, acc, ex, im, users);
    acc[2].name = "A";
    CHECK(ember_server_new(&s, &o) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "Duplicate Account Entry: A") != NULL);

    fill(&o, acc, ex, im, users);
    im[1].subject = "svc.private"; /* exported to C only */
    CHECK(ember_server_new(&s, &o) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "Error adding service import \"svc.private\": service import "
                                     "not authorized") != NULL);

    fill(&o, acc, ex, im, users);
    im[0].subject = "other.>";
    CHECK(ember_server_new(&s, &o) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "stream import not authorized") != NULL);

    fill(&o, acc, ex, im, users);
    im[0].account = "Z";
    CHECK(ember_server_new(&s, &o) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "\"Z\" account not defined for stream import") != NULL);

    fill(&o, acc, ex, im, users);
    ex[2].accounts = "C, Q";
    CHECK(ember_server_new(&s, &o) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "\"Q\" account not defined for service export") != NULL);

    fill(&o, acc, ex, im, users);
    im[0].to = "x.>";
    CHECK(ember_server_new(&s, &o) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "can not have a 'prefix' and a 'to'") != NULL);

    fill(&o, acc, ex, im, users);
    users[1].user = "ua"; /* the same user in two accounts */
    CHECK(ember_server_new(&s, &o) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "Duplicate user \"ua\" detected") != NULL);

    fill(&o, acc, ex, im, users);
    o.username = "single";
    o.password = "pw";
    CHECK(ember_server_new(&s, &o) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "Can not have a single user/pass and accounts") != NULL);

    fill(&o, acc, ex, im, users);
    CHECK(ember_server_new(&s, &o) == EMBER_OK);
    ember_server_free(s);
}

static void test_running(void)
{
    ember_server_options o;
    ember_account acc[3];
    ember_export ex[3];
    ember_import im[3];
    ember_user users[3];
    fill(&o, acc, ex, im, users);
    ember_server *s = NULL;
    REQUIRE(ember_server_new(&s, &o) == EMBER_OK);
    REQUIRE(ember_server_start(s) == EMBER_OK);
    REQUIRE(ember_server_ready_for_connections(s, 5000));

    ember_conn *a = conn_in(s, "A"), *b = conn_in(s, "B"), *c = conn_in(s, "C"), *g = conn_in(s, NULL);
    REQUIRE(a && b && c && g);
    ember_conn *bad = NULL;
    CHECK(conn_in(s, "NOPE") == NULL);
    /* credentials put the connection in the user's account; a different account is refused */
    ember_conn_options co;
    ember_conn_options_init(&co);
    co.user = "ua";
    co.password = "pa";
    co.account = "B";
    CHECK(ember_conn_connect(&bad, s, &co) == EMBER_EAUTH);
    co.account = NULL;
    ember_conn *ua = NULL;
    CHECK(ember_conn_connect(&ua, s, &co) == EMBER_OK);

    /* isolation */
    ember_sub *sa = NULL, *sb = NULL, *sg = NULL, *sua = NULL;
    CHECK(ember_conn_subscribe(&sa, a, "x.y", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) == 0);
    CHECK(ember_conn_subscribe(&sb, b, "x.y", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) == 0);
    CHECK(ember_conn_subscribe(&sg, g, "x.y", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) == 0);
    if (ua)
        CHECK(ember_conn_subscribe(&sua, ua, "x.y", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) == 0);
    CHECK(ember_conn_publish(b, "x.y", NULL, "b", 1) == 0);
    CHECK(got(sb, "x.y", "b", 2000));
    CHECK(nothing(sa, 100));
    CHECK(nothing(sg, 50));
    CHECK(ember_conn_publish(a, "x.y", NULL, "a", 1) == 0);
    CHECK(got(sa, "x.y", "a", 2000));
    if (sua)
        CHECK(got(sua, "x.y", "a", 2000)); /* ua is in A */
    CHECK(nothing(sb, 50));
    CHECK(nothing(sg, 50));
    ember_msg *r = NULL;
    CHECK(ember_conn_request(c, "x.y", "?", 1, 1000, &r) == EMBER_ENORESPONDERS);

    /* stream import with prefix */
    ember_sub *news = NULL;
    CHECK(ember_conn_subscribe(&news, b, "a.news.>", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) == 0);
    CHECK(ember_conn_publish(a, "news.today", NULL, "hl", 2) == 0);
    CHECK(got(news, "a.news.today", "hl", 2000));
    CHECK(ember_conn_publish(b, "news.today", NULL, "no", 2) == 0);
    CHECK(nothing(news, 100));

    /* service import: in-process requester in B, responder in A (inline and dispatch) */
    ember_sub *resp = NULL;
    CHECK(ember_conn_subscribe(&resp, a, "svc.echo", NULL, EMBER_DELIVER_INLINE, echo_fn, a, NULL) == 0);
    for (int i = 0; i < 50; i++) {
        char q[16], want[32];
        snprintf(q, sizeof q, "%d", i);
        snprintf(want, sizeof want, "echo:%d", i);
        ember_msg *x = NULL;
        int rc = ember_conn_request(b, "echo", q, strlen(q), 2000, &x);
        bool ok = rc == 0 && x && mlen(x) == strlen(want) && !memcmp(mdata(x), want, strlen(want));
        if (x)
            ember_msg_release(x);
        if (!ok) {
            CHECK_MSG(ok, "request %d: rc %d", i, rc);
            break;
        }
    }
    CHECK(ember_conn_request(b, "svc.echo", "x", 1, 500, &r) == EMBER_ENORESPONDERS);
    CHECK(ember_conn_request(c, "echo", "x", 1, 500, &r) == EMBER_ENORESPONDERS);
    /* no responder in the exporter: the requester gets the 503 status */
    ember_sub_unsubscribe(resp);
    r = NULL;
    int rc = ember_conn_request(b, "echo", "x", 1, 2000, &r);
    CHECK(rc == EMBER_ENORESPONDERS || (rc == 0 && r && ember_msg_status(r) == 503));
    if (r)
        ember_msg_release(r);

    /* JetStream and KV per account */
    ember_kv_config kc;
    ember_kv_config_init(&kc);
    kc.bucket = "state";
    ember_kv *ka = NULL, *kb = NULL, *kg = NULL;
    CHECK(ember_kv_bucket_create(a, &kc, &ka) == EMBER_OK);
    CHECK(ember_kv_bucket_open(b, "state", &kb) == EMBER_ENOTFOUND);
    CHECK(ember_kv_bucket_create(b, &kc, &kb) == EMBER_OK);
    CHECK(ember_kv_bucket_create(g, &kc, &kg) == EMBER_ESTATE); /* $G has none here */
    if (ka && kb) {
        CHECK(ember_kv_put(ka, "k", "va", 2, NULL) == EMBER_OK);
        CHECK(ember_kv_put(kb, "k", "vb", 2, NULL) == EMBER_OK);
        ember_kv_entry *e = NULL;
        CHECK(ember_kv_get(ka, "k", &e) == EMBER_OK && e && e->len == 2 && !memcmp(e->value, "va", 2));
        ember_kv_entry_free(e);
        e = NULL;
        CHECK(ember_kv_get(kb, "k", &e) == EMBER_OK && e && e->len == 2 && !memcmp(e->value, "vb", 2));
        ember_kv_entry_free(e);
    }
    ember_kv_close(ka);
    ember_kv_close(kb);
    /* the account's store directory */
    char path[256];
    snprintf(path, sizeof path, "%s/jetstream/A/streams/KV_state", dir);
    CHECK(access(path, F_OK) == 0);
    snprintf(path, sizeof path, "%s/jetstream/B/streams/KV_state", dir);
    CHECK(access(path, F_OK) == 0);
    /* C: no JetStream, and $JS.API.INFO says so */
    r = NULL;
    CHECK(ember_conn_request(c, "$JS.API.INFO", "", 0, 2000, &r) == EMBER_OK);
    CHECK(r && strstr(mdata(r), "\"err_code\":10039") != NULL);
    if (r)
        ember_msg_release(r);

    /* reload: users may change, accounts may not */
    ember_server_options n;
    fill(&n, acc, ex, im, users);
    users[0].password = "new";
    users[0].publish_deny = "x.>";
    if (ua)
        CHECK(ember_conn_publish(ua, "x.y", NULL, "1", 1) == EMBER_OK);
    CHECK(ember_server_reload(s, &n) == EMBER_OK);
    /* the connected user's permissions change with the reload */
    if (ua) {
        CHECK(ember_conn_publish(ua, "x.y", NULL, "1", 1) == EMBER_EPERM);
        CHECK(ember_conn_publish(ua, "z.y", NULL, "1", 1) == EMBER_OK);
    }
    ember_conn *again = NULL;
    co.password = "pa";
    CHECK(ember_conn_connect(&again, s, &co) == EMBER_EAUTH);
    co.password = "new";
    CHECK(ember_conn_connect(&again, s, &co) == EMBER_OK);
    ember_conn_close(again);
    acc[2].jetstream = true;
    CHECK(ember_server_reload(s, &n) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "config reload not supported for accounts") != NULL);

    ember_conn_close(ua);
    ember_conn_close(a);
    ember_conn_close(b);
    ember_conn_close(c);
    ember_conn_close(g);
    ember_server_free(s);

    /* a restart recovers each account's streams from its own directory */
    fill(&o, acc, ex, im, users);
    REQUIRE(ember_server_new(&s, &o) == EMBER_OK);
    REQUIRE(ember_server_start(s) == EMBER_OK);
    REQUIRE(ember_server_ready_for_connections(s, 5000));
    a = conn_in(s, "A");
    b = conn_in(s, "B");
    REQUIRE(a && b);
    ka = kb = NULL;
    CHECK(ember_kv_bucket_open(a, "state", &ka) == EMBER_OK);
    CHECK(ember_kv_bucket_open(b, "state", &kb) == EMBER_OK);
    if (ka && kb) {
        ember_kv_entry *e = NULL;
        CHECK(ember_kv_get(ka, "k", &e) == EMBER_OK && e && e->len == 2 && !memcmp(e->value, "va", 2));
        ember_kv_entry_free(e);
        e = NULL;
        CHECK(ember_kv_get(kb, "k", &e) == EMBER_OK && e && e->len == 2 && !memcmp(e->value, "vb", 2));
        ember_kv_entry_free(e);
    }
    ember_kv_close(ka);
    ember_kv_close(kb);
    ember_conn_close(a);
    ember_conn_close(b);
    ember_server_free(s);
}

static void test_config_file(void)
{
    char conf[128];
    snprintf(conf, sizeof conf, "%s/acc.conf", dir);
    FILE *f = fopen(conf, "w");
    REQUIRE(f);
    fprintf(f, "jetstream { store_dir: \"%s/cf\" }\n"
               "accounts {\n"
               "  A: { users: [ {user: a, password: a} ]\n"
               "       exports: [ {service: \"q.>\", response_type: stream, response_threshold: \"5s\"} ]\n"
               "       jetstream: { max_mem: 1MB } }\n"
               "  B: { users: [ {user: b, password: b, permissions: { publish: \"p.>\" } } ]\n"
               "       default_permissions: { subscribe: \"s.>\" }\n"
               "       imports: [ {service: {account: A, subject: \"q.x\"}, to: \"ask\"} ] }\n"
               "}\n",
            dir);
    fclose(f);
    ember_server_options o;
    ember_server_options_init(&o);
    ember_config *cfg = NULL;
    REQUIRE(ember_config_load(&cfg, conf, &o) == EMBER_OK);
    CHECK(o.accounts_count == 2);
    if (o.accounts_count == 2) {
        CHECK(!strcmp(o.accounts[0].name, "A") || !strcmp(o.accounts[1].name, "A"));
        const ember_account *A = !strcmp(o.accounts[0].name, "A") ? &o.accounts[0] : &o.accounts[1];
        const ember_account *B = A == &o.accounts[0] ? &o.accounts[1] : &o.accounts[0];
        CHECK(A->jetstream && A->jetstream_max_memory == 1024 * 1024);
        CHECK(A->exports_count == 1 && A->exports[0].service &&
              A->exports[0].response_type == EMBER_RESPONSE_STREAM &&
              A->exports[0].response_threshold_ms == 5000);
        CHECK(B->imports_count == 1 && B->imports[0].service && !strcmp(B->imports[0].to, "ask"));
        CHECK(B->users_count == 1 && B->users[0].publish_allow && !strcmp(B->users[0].publish_allow, "p.>"));
        CHECK(!B->jetstream);
    }
    o.dont_listen = true;
    ember_server *s = NULL;
    CHECK(ember_server_new(&s, &o) == EMBER_OK);
    ember_server_free(s);
    ember_config_free(cfg);

    /* errors point at the file */
    f = fopen(conf, "w");
    REQUIRE(f);
    fprintf(f, "accounts {\n  A: { exports: [ {stream: \"a\", response_type: single} ] }\n}\n");
    fclose(f);
    ember_server_options_init(&o);
    CHECK(ember_config_load(&cfg, conf, &o) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "Detected response directive on non-service") != NULL);
    CHECK(strstr(ember_last_error(), "acc.conf:2:") != NULL);
    f = fopen(conf, "w");
    REQUIRE(f);
    fprintf(f, "accounts {\n  $G: { }\n}\n");
    fclose(f);
    CHECK(ember_config_load(&cfg, conf, &o) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "Reserved Account") != NULL);
}

static void test_operator(void)
{
    key op, a1, a2, other;
    new_key(&op, NKEY_PREFIX_OPERATOR);
    new_key(&a1, NKEY_PREFIX_ACCOUNT);
    new_key(&a2, NKEY_PREFIX_ACCOUNT);
    new_key(&other, NKEY_PREFIX_OPERATOR);
    char *opj = mint(claims(op.pub, op.pub, "OP", "operator"), &op);
    cJSON *c1 = claims(op.pub, a1.pub, "A1", "account");
    cJSON *lim = cJSON_AddObjectToObject(cJSON_GetObjectItem(c1, "nats"), "limits");
    cJSON_AddNumberToObject(lim, "mem_storage", -1);
    cJSON_AddNumberToObject(lim, "disk_storage", -1);
    char *a1j = mint(c1, &op);
    char *a2j = mint(claims(op.pub, a2.pub, "A2", "account"), &op);
    char *badj = mint(claims(other.pub, a2.pub, "A2", "account"), &other);
    const char *jwts[2] = {a1j, a2j};
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true;
    o.jetstream = true;
    char sd[128];
    snprintf(sd, sizeof sd, "%s/op", dir);
    o.store_dir = sd;
    o.operator_jwt = opj;
    o.account_jwts = jwts;
    o.account_jwts_count = 2;
    ember_server *s = NULL;
    /* errors */
    o.operator_jwt = "eyJnot.a.jwt";
    CHECK(ember_server_new(&s, &o) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "error parsing operator JWT") != NULL);
    o.operator_jwt = opj;
    jwts[1] = badj;
    CHECK(ember_server_new(&s, &o) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "not signed by the trusted operator") != NULL);
    jwts[1] = a2j;
    o.username = "u";
    o.password = "p";
    CHECK(ember_server_new(&s, &o) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "operator mode does not combine") != NULL);
    o.username = o.password = NULL;
    /* running: accounts named by their public keys, JetStream where the JWT grants it */
    REQUIRE(ember_server_new(&s, &o) == EMBER_OK);
    REQUIRE(ember_server_start(s) == EMBER_OK);
    REQUIRE(ember_server_ready_for_connections(s, 5000));
    ember_conn *c1c = conn_in(s, a1.pub), *c2c = conn_in(s, a2.pub);
    CHECK(c1c && c2c);
    ember_conn_options co;
    ember_conn_options_init(&co);
    co.user = "x";
    co.password = "y";
    ember_conn *bad = NULL;
    CHECK(ember_conn_connect(&bad, s, &co) == EMBER_EAUTH); /* only JWT users */
    if (c1c && c2c) {
        ember_kv_config kc;
        ember_kv_config_init(&kc);
        kc.bucket = "b";
        ember_kv *kv = NULL;
        CHECK(ember_kv_bucket_create(c1c, &kc, &kv) == EMBER_OK);
        ember_kv_close(kv);
        kv = NULL;
        CHECK(ember_kv_bucket_create(c2c, &kc, &kv) == EMBER_ESTATE);
        ember_sub *sb = NULL;
        CHECK(ember_conn_subscribe(&sb, c2c, "z", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) == 0);
        CHECK(ember_conn_publish(c1c, "z", NULL, "x", 1) == 0);
        CHECK(nothing(sb, 100));
    }
    ember_conn_close(c1c);
    ember_conn_close(c2c);
    ember_server_free(s);

    /* the same from a config file */
    char conf[160];
    snprintf(conf, sizeof conf, "%s/op.conf", dir);
    FILE *f = fopen(conf, "w");
    REQUIRE(f);
    fprintf(f, "operator: \"%s\"\nresolver: MEMORY\nresolver_preload: {\n  %s: \"%s\"\n}\n"
               "system_account: %s\n", opj, a1.pub, a1j, a1.pub);
    fclose(f);
    ember_server_options_init(&o);
    ember_config *cfg = NULL;
    CHECK(ember_config_load(&cfg, conf, &o) == EMBER_OK);
    CHECK(o.operator_jwt && !strcmp(o.operator_jwt, opj) && o.account_jwts_count == 1);
    o.dont_listen = true;
    CHECK(ember_server_new(&s, &o) == EMBER_OK);
    ember_server_free(s);
    ember_config_free(cfg);
    f = fopen(conf, "w");
    REQUIRE(f);
    fprintf(f, "operator: \"%s\"\nresolver: URL(http://localhost:9090/jwt/v1/accounts/)\n", opj);
    fclose(f);
    ember_server_options_init(&o);
    CHECK(ember_config_load(&cfg, conf, &o) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "MEMORY resolver only") != NULL);
    free(opj);
    free(a1j);
    free(a2j);
    free(badj);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/ember-acct-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    test_option_errors();
    test_running();
    test_config_file();
    test_operator();
    char rm[128];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    if (system(rm) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return tu_summary("accounts");
}
