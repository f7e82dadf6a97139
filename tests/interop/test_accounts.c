/* Accounts: isolation of subjects and JetStream, stream and service exports/imports
 * (prefix, `to`, restricted exports, streamed responses), JetStream enabled per account,
 * and the config errors for unauthorized or undefined imports. Runs against the server
 * under test ($EMBER_TEST_SERVER: ember-server or Debian's nats-server) with the official
 * C client, both servers started from the same nats-server configuration file. Every
 * wait is bounded; nothing asserts on timing. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "th_check.h"


static th_server srv;

static natsConnection *conn_as(const char *user)
{
    natsOptions *o = th_opts_new(&srv);
    natsConnection *nc = NULL;
    if (!o)
        return NULL;
    natsOptions_SetUserInfo(o, user, user);
    if (th_connect(&srv, o, &nc) != NATS_OK)
        nc = NULL;
    natsOptions_Destroy(o);
    return nc;
}

/* The next message on sub within ms, or NULL. */
static natsMsg *next(natsSubscription *sub, int ms)
{
    natsMsg *m = NULL;
    if (natsSubscription_NextMsg(&m, sub, ms) != NATS_OK)
        return NULL;
    return m;
}

static bool data_is(natsMsg *m, const char *s)
{
    return m && natsMsg_GetDataLength(m) == (int)strlen(s) &&
           !memcmp(natsMsg_GetData(m), s, strlen(s));
}

static void on_echo(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *ud)
{
    (void)sub;
    (void)ud;
    char out[512];
    snprintf(out, sizeof out, "echo:%.*s", natsMsg_GetDataLength(m), natsMsg_GetData(m));
    if (natsMsg_GetReply(m))
        natsConnection_PublishString(nc, natsMsg_GetReply(m), out);
    natsMsg_Destroy(m);
}

static void on_many(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *ud)
{
    (void)sub;
    (void)ud;
    if (natsMsg_GetReply(m)) {
        natsConnection_PublishString(nc, natsMsg_GetReply(m), "part1");
        natsConnection_PublishString(nc, natsMsg_GetReply(m), "part2");
        natsConnection_PublishString(nc, natsMsg_GetReply(m), "part3");
    }
    natsMsg_Destroy(m);
}

/* A JetStream API request; the reply's JSON (malloc'd) or NULL. */
static char *js_req(natsConnection *nc, const char *subj, const char *body)
{
    natsMsg *r = NULL;
    if (natsConnection_RequestString(&r, nc, subj, body ? body : "", 5000) != NATS_OK)
        return NULL;
    char *s = strndup(natsMsg_GetData(r), (size_t)natsMsg_GetDataLength(r));
    natsMsg_Destroy(r);
    return s;
}

/* Start the binary on conf, expecting it to refuse; true when its output holds want. */
static bool refuses_config(const char *dir, const char *conf_text, const char *want)
{
    char conf[300], out[300], cmd[2048];
    snprintf(conf, sizeof conf, "%s/bad.conf", dir);
    snprintf(out, sizeof out, "%s/bad.out", dir);
    FILE *f = fopen(conf, "w");
    if (!f)
        return false;
    fputs(conf_text, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "timeout 10 %s -a 127.0.0.1 -p %d -c %s > %s 2>&1", th_server_binary(),
             th_free_port(), conf, out);
    int rc = system(cmd);
    char buf[8192] = "";
    f = fopen(out, "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
    }
    bool ok = rc != 0 && strstr(buf, want) != NULL;
    if (!ok)
        fprintf(stderr, "  expected a refusal with \"%s\" (rc %d), got:\n%s\n", want, rc, buf);
    return ok;
}

int main(void)
{
    char dir[] = "/tmp/ember-acc-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char conf[300], text[4096];
    snprintf(conf, sizeof conf, "%s/acc.conf", dir);
    snprintf(text, sizeof text,
             "jetstream { store_dir: \"%s/js\" }\n"
             "accounts {\n"
             "  A: {\n"
             "    users: [ {user: a, password: a} ]\n"
             "    jetstream: enabled\n"
             "    exports: [\n"
             "      {stream: \"news.>\"}\n"
             "      {stream: \"feed.*\"}\n"
             "      {service: \"svc.echo\"}\n"
             "      {service: \"svc.private\", accounts: [C]}\n"
             "      {service: \"svc.many\", response_type: stream}\n"
             "    ]\n"
             "  }\n"
             "  B: {\n"
             "    users: [ {user: b, password: b} ]\n"
             "    jetstream: enabled\n"
             "    imports: [\n"
             "      {stream: {account: A, subject: \"news.>\"}, prefix: \"a\"}\n"
             "      {stream: {account: A, subject: \"feed.*\"}, to: \"fromA.*\"}\n"
             "      {service: {account: A, subject: \"svc.echo\"}, to: \"echo\"}\n"
             "      {service: {account: A, subject: \"svc.many\"}}\n"
             "    ]\n"
             "  }\n"
             "  C: {\n"
             "    users: [ {user: c, password: c} ]\n"
             "    imports: [ {service: {account: A, subject: \"svc.private\"}} ]\n"
             "  }\n"
             "}\n",
             dir);
    FILE *f = fopen(conf, "w");
    fputs(text, f);
    fclose(f);
    const char *args[] = {"-c", conf, NULL};
    if (th_server_start(&srv, NULL, args) != 0) {
        fprintf(stderr, "could not start %s\n", th_server_binary());
        return 1;
    }
    printf("server under test: %s\n", th_server_binary());

    natsConnection *a = conn_as("a"), *b = conn_as("b"), *c = conn_as("c");
    CHECK(a && b && c);
    if (!a || !b || !c) {
        th_server_dump_log(&srv, 4000);
        th_server_stop(&srv);
        return 1;
    }

    /* isolation: the same subject in two accounts */
    {
        natsSubscription *sa = NULL, *sb = NULL;
        CHECK(natsConnection_SubscribeSync(&sa, a, "x.y") == NATS_OK);
        CHECK(natsConnection_SubscribeSync(&sb, b, "x.y") == NATS_OK);
        natsConnection_Flush(a);
        natsConnection_Flush(b);
        CHECK(natsConnection_PublishString(b, "x.y", "from-b") == NATS_OK);
        natsConnection_Flush(b);
        natsMsg *m = next(sb, 2000);
        CHECK(data_is(m, "from-b"));
        natsMsg_Destroy(m);
        m = next(sa, 300);
        CHECK(m == NULL); /* a never sees b's message */
        natsMsg_Destroy(m);
        CHECK(natsConnection_PublishString(a, "x.y", "from-a") == NATS_OK);
        natsConnection_Flush(a);
        m = next(sa, 2000);
        CHECK(data_is(m, "from-a"));
        natsMsg_Destroy(m);
        m = next(sb, 300);
        CHECK(m == NULL);
        natsMsg_Destroy(m);
        /* no responders across accounts either */
        natsMsg *r = NULL;
        natsSubscription *resp = NULL;
        CHECK(natsConnection_SubscribeSync(&resp, a, "only.in.a") == NATS_OK);
        natsConnection_Flush(a);
        CHECK(natsConnection_RequestString(&r, b, "only.in.a", "?", 2000) == NATS_NO_RESPONDERS);
        natsMsg_Destroy(r);
        natsSubscription_Destroy(resp);
        natsSubscription_Destroy(sa);
        natsSubscription_Destroy(sb);
    }

    /* stream import with a prefix, and with `to` */
    {
        natsSubscription *sb = NULL, *plain = NULL, *mapped = NULL;
        CHECK(natsConnection_SubscribeSync(&sb, b, "a.news.>") == NATS_OK);
        CHECK(natsConnection_SubscribeSync(&plain, b, "news.>") == NATS_OK);
        CHECK(natsConnection_SubscribeSync(&mapped, b, "fromA.*") == NATS_OK);
        natsConnection_Flush(b);
        th_sleep_ms(100);
        CHECK(natsConnection_PublishString(a, "news.today", "headline") == NATS_OK);
        CHECK(natsConnection_PublishString(a, "feed.x", "item") == NATS_OK);
        natsConnection_Flush(a);
        natsMsg *m = next(sb, 2000);
        CHECK(m && !strcmp(natsMsg_GetSubject(m), "a.news.today") && data_is(m, "headline"));
        natsMsg_Destroy(m);
        m = next(mapped, 2000);
        CHECK(m && !strcmp(natsMsg_GetSubject(m), "fromA.x") && data_is(m, "item"));
        natsMsg_Destroy(m);
        m = next(plain, 300);
        CHECK(m == NULL); /* only under the prefix */
        natsMsg_Destroy(m);
        /* b publishing under its own prefix does not reach a */
        natsSubscription *sa = NULL;
        CHECK(natsConnection_SubscribeSync(&sa, a, "news.>") == NATS_OK);
        natsConnection_Flush(a);
        CHECK(natsConnection_PublishString(b, "news.today", "fake") == NATS_OK);
        natsConnection_Flush(b);
        m = next(sa, 300);
        CHECK(m == NULL);
        natsMsg_Destroy(m);
        /* c did not import the stream */
        natsSubscription *sc = NULL;
        CHECK(natsConnection_SubscribeSync(&sc, c, "a.news.>") == NATS_OK);
        natsConnection_Flush(c);
        CHECK(natsConnection_PublishString(a, "news.more", "x") == NATS_OK);
        natsConnection_Flush(a);
        m = next(sc, 300);
        CHECK(m == NULL);
        natsMsg_Destroy(m);
        natsSubscription_Destroy(sa);
        natsSubscription_Destroy(sc);
        natsSubscription_Destroy(sb);
        natsSubscription_Destroy(plain);
        natsSubscription_Destroy(mapped);
    }

    /* service imports: request/reply across accounts */
    {
        natsSubscription *echo = NULL, *priv = NULL, *many = NULL;
        CHECK(natsConnection_Subscribe(&echo, a, "svc.echo", on_echo, NULL) == NATS_OK);
        CHECK(natsConnection_Subscribe(&priv, a, "svc.private", on_echo, NULL) == NATS_OK);
        CHECK(natsConnection_Subscribe(&many, a, "svc.many", on_many, NULL) == NATS_OK);
        natsConnection_Flush(a);
        th_sleep_ms(100);
        natsMsg *r = NULL;
        CHECK(natsConnection_RequestString(&r, b, "echo", "hi", 5000) == NATS_OK);
        CHECK(data_is(r, "echo:hi"));
        natsMsg_Destroy(r);
        r = NULL;
        for (int i = 0; i < 20; i++) { /* each reply finds its requester */
            char q[32], want[40];
            snprintf(q, sizeof q, "q%d", i);
            snprintf(want, sizeof want, "echo:%s", q);
            natsMsg *x = NULL;
            bool ok = natsConnection_RequestString(&x, b, "echo", q, 5000) == NATS_OK &&
                      data_is(x, want);
            natsMsg_Destroy(x);
            if (!ok) {
                CHECK(ok);
                break;
            }
        }
        /* the exported subject itself is not visible in b: only the import's `to` */
        CHECK(natsConnection_RequestString(&r, b, "svc.echo", "hi", 2000) == NATS_NO_RESPONDERS);
        natsMsg_Destroy(r);
        r = NULL;
        /* c may import svc.private; b may not (and did not) */
        CHECK(natsConnection_RequestString(&r, c, "svc.private", "p", 5000) == NATS_OK);
        CHECK(data_is(r, "echo:p"));
        natsMsg_Destroy(r);
        r = NULL;
        CHECK(natsConnection_RequestString(&r, b, "svc.private", "p", 2000) == NATS_NO_RESPONDERS);
        natsMsg_Destroy(r);
        r = NULL;
        /* a streamed response: every part comes back */
        natsSubscription *inbox = NULL;
        CHECK(natsConnection_SubscribeSync(&inbox, b, "my.replies") == NATS_OK);
        natsConnection_Flush(b);
        CHECK(natsConnection_PublishRequestString(b, "svc.many", "my.replies", "go") == NATS_OK);
        natsConnection_Flush(b);
        natsMsg *p1 = next(inbox, 3000), *p2 = next(inbox, 3000), *p3 = next(inbox, 3000);
        CHECK(data_is(p1, "part1") && data_is(p2, "part2") && data_is(p3, "part3"));
        natsMsg_Destroy(p1);
        natsMsg_Destroy(p2);
        natsMsg_Destroy(p3);
        natsSubscription_Destroy(inbox);
        /* singleton (default): only the first reply of a responder crosses back */
        natsSubscription *echo2 = NULL;
        CHECK(natsConnection_Subscribe(&echo2, a, "svc.echo", on_many, NULL) == NATS_OK);
        natsSubscription_Unsubscribe(echo);
        natsConnection_Flush(a);
        th_sleep_ms(100);
        CHECK(natsConnection_SubscribeSync(&inbox, b, "one.reply") == NATS_OK);
        natsConnection_Flush(b);
        CHECK(natsConnection_PublishRequestString(b, "echo", "one.reply", "go") == NATS_OK);
        natsConnection_Flush(b);
        p1 = next(inbox, 3000);
        p2 = next(inbox, 500);
        CHECK(data_is(p1, "part1") && p2 == NULL);
        natsMsg_Destroy(p1);
        natsMsg_Destroy(p2);
        natsSubscription_Destroy(inbox);
        natsSubscription_Destroy(echo2);
        /* nobody answers in the exporter: no responders for the requester */
        natsSubscription_Unsubscribe(many);
        natsConnection_Flush(a);
        th_sleep_ms(100);
        /* (nats-server 2.11 reports the service import's "delivered" back, so the
         * requester gets the 503; 2.9 left it to time out) */
        natsStatus nst = natsConnection_RequestString(&r, b, "svc.many", "x", 2000);
        CHECK(nst == (strstr(th_server_binary(), "nats-server") ? NATS_TIMEOUT : NATS_NO_RESPONDERS));
        natsMsg_Destroy(r);
        natsSubscription_Destroy(echo);
        natsSubscription_Destroy(priv);
        natsSubscription_Destroy(many);
    }

    /* JetStream per account */
    {
        char *r = js_req(a, "$JS.API.STREAM.CREATE.ORDERS",
                         "{\"name\":\"ORDERS\",\"subjects\":[\"orders.>\"],\"storage\":\"file\"}");
        CHECK(r && strstr(r, "\"error\"") == NULL);
        free(r);
        r = js_req(b, "$JS.API.STREAM.NAMES", "");
        CHECK(r && strstr(r, "ORDERS") == NULL); /* a's stream is not b's */
        free(r);
        /* the same name in b: its own stream */
        r = js_req(b, "$JS.API.STREAM.CREATE.ORDERS",
                   "{\"name\":\"ORDERS\",\"subjects\":[\"orders.>\"],\"storage\":\"memory\"}");
        CHECK(r && strstr(r, "\"error\"") == NULL && strstr(r, "\"memory\""));
        free(r);
        natsMsg *ack = NULL;
        CHECK(natsConnection_RequestString(&ack, a, "orders.1", "o1", 5000) == NATS_OK);
        CHECK(ack && strstr(natsMsg_GetData(ack), "\"stream\":\"ORDERS\"") &&
              strstr(natsMsg_GetData(ack), "\"seq\":1"));
        natsMsg_Destroy(ack);
        ack = NULL;
        CHECK(natsConnection_RequestString(&ack, a, "orders.2", "o2", 5000) == NATS_OK);
        natsMsg_Destroy(ack);
        r = js_req(a, "$JS.API.STREAM.INFO.ORDERS", "");
        CHECK(r && strstr(r, "\"messages\":2"));
        free(r);
        r = js_req(b, "$JS.API.STREAM.INFO.ORDERS", "");
        CHECK(r && strstr(r, "\"messages\":0"));
        free(r);
        /* c has no JetStream: $JS.API.INFO says so */
        r = js_req(c, "$JS.API.INFO", "");
        CHECK(r && strstr(r, "\"err_code\":10039") &&
              strstr(r, "\"description\":\"JetStream not enabled for account\""));
        if (!r || !strstr(r, "JetStream not enabled for account"))
            fprintf(stderr, "  c $JS.API.INFO -> %s\n", r ? r : "(no reply)");
        free(r);
        r = js_req(a, "$JS.API.INFO", "");
        CHECK(r && strstr(r, "\"streams\":1") && !strstr(r, "\"error\""));
        free(r);
    }

    natsConnection_Destroy(a);
    natsConnection_Destroy(b);
    natsConnection_Destroy(c);
    if (!th_server_alive(&srv))
        th_server_dump_log(&srv, 4000);
    CHECK(th_server_stop(&srv) == 0);

    /* leaf nodes bound to accounts: the leaf's account L1 joins the hub's account B (the
     * credentials of b); the leaf's other account L2 stays out of it */
    {
        int lport = th_free_port();
        char hconf[300], lconf[300];
        snprintf(hconf, sizeof hconf, "%s/hub.conf", dir);
        snprintf(lconf, sizeof lconf, "%s/leaf.conf", dir);
        f = fopen(hconf, "w");
        fprintf(f,
                "leafnodes { listen: \"127.0.0.1:%d\" }\n"
                "accounts {\n"
                "  A: { users: [ {user: a, password: a} ] }\n"
                "  B: { users: [ {user: b, password: b} ] }\n"
                "}\n",
                lport);
        fclose(f);
        f = fopen(lconf, "w");
        fprintf(f,
                "leafnodes { remotes = [ { url: \"nats-leaf://b:b@127.0.0.1:%d\", account: L1 } ] }\n"
                "accounts {\n"
                "  L1: { users: [ {user: l1, password: l1} ] }\n"
                "  L2: { users: [ {user: l2, password: l2} ] }\n"
                "}\n",
                lport);
        fclose(f);
        th_server hub, leaf;
        const char *hargs[] = {"-c", hconf, NULL}, *largs[] = {"-c", lconf, NULL};
        bool up = th_server_start(&hub, NULL, hargs) == 0;
        CHECK(up);
        if (up) {
            bool lup = th_server_start(&leaf, NULL, largs) == 0;
            CHECK(lup);
            srv = hub;
            natsConnection *hb = conn_as("b"), *ha = conn_as("a");
            srv = leaf;
            natsConnection *l1 = conn_as("l1"), *l2 = conn_as("l2");
            CHECK(hb && ha && l1 && l2);
            if (hb && ha && l1 && l2) {
                natsSubscription *sb = NULL, *sa = NULL, *s2 = NULL;
                CHECK(natsConnection_SubscribeSync(&sb, hb, "up.>") == NATS_OK);
                CHECK(natsConnection_SubscribeSync(&sa, ha, "up.>") == NATS_OK);
                CHECK(natsConnection_SubscribeSync(&s2, l2, "down.>") == NATS_OK);
                natsConnection_Flush(hb);
                natsConnection_Flush(ha);
                /* the interest crosses the link once it is up: publish until it arrives */
                natsMsg *m = NULL;
                for (int i = 0; i < 100 && !m; i++) {
                    natsConnection_PublishString(l1, "up.1", "from-l1");
                    natsConnection_Flush(l1);
                    m = next(sb, 100);
                }
                CHECK(data_is(m, "from-l1"));
                natsMsg_Destroy(m);
                m = next(sa, 200);
                CHECK(m == NULL); /* account A of the hub never sees it */
                natsMsg_Destroy(m);
                natsConnection_PublishString(l2, "up.2", "from-l2");
                natsConnection_Flush(l2);
                m = next(sb, 300);
                while (m && data_is(m, "from-l1")) { /* retries of the loop above */
                    natsMsg_Destroy(m);
                    m = next(sb, 300);
                }
                CHECK(m == NULL); /* L2 is not linked */
                natsMsg_Destroy(m);
                /* the hub's B publishes down: L1 subscribers get it, L2's do not */
                natsSubscription *s1 = NULL;
                CHECK(natsConnection_SubscribeSync(&s1, l1, "down.>") == NATS_OK);
                natsConnection_Flush(l1);
                m = NULL;
                for (int i = 0; i < 100 && !m; i++) {
                    natsConnection_PublishString(hb, "down.1", "from-b");
                    natsConnection_Flush(hb);
                    m = next(s1, 100);
                }
                CHECK(data_is(m, "from-b"));
                natsMsg_Destroy(m);
                m = next(s2, 200);
                CHECK(m == NULL);
                natsMsg_Destroy(m);
                natsSubscription_Destroy(s1);
                natsSubscription_Destroy(sb);
                natsSubscription_Destroy(sa);
                natsSubscription_Destroy(s2);
            }
            natsConnection_Destroy(hb);
            natsConnection_Destroy(ha);
            natsConnection_Destroy(l1);
            natsConnection_Destroy(l2);
            if (lup)
                CHECK(th_server_stop(&leaf) == 0);
            CHECK(th_server_stop(&hub) == 0);
        }
    }

    /* configuration errors: both servers refuse to start, with nats-server's words */
    CHECK(refuses_config(dir,
                         "accounts {\n"
                         "  A: { exports: [ {service: \"svc.private\", accounts: [C]} ] }\n"
                         "  B: { imports: [ {service: {account: A, subject: \"svc.private\"}} ] }\n"
                         "  C: {}\n"
                         "}\n",
                         "service import not authorized"));
    CHECK(refuses_config(dir,
                         "accounts {\n"
                         "  A: { exports: [ {stream: \"a.>\"} ] }\n"
                         "  B: { imports: [ {stream: {account: A, subject: \"b.>\"}} ] }\n"
                         "}\n",
                         "stream import not authorized"));
    CHECK(refuses_config(dir,
                         "accounts {\n"
                         "  B: { imports: [ {stream: {account: Z, subject: \"b.>\"}} ] }\n"
                         "}\n",
                         "\"Z\" account not defined for stream import"));
    CHECK(refuses_config(dir,
                         "accounts {\n"
                         "  A: { users: [ {user: x, password: x} ] }\n"
                         "  B: { users: [ {user: x, password: y} ] }\n"
                         "}\n",
                         "Duplicate user \"x\" detected"));

    char rm[400];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    if (system(rm) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return th_check_summary("accounts");
}
