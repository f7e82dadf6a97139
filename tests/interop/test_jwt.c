/* Operator mode: an operator, accounts and users minted here (ed25519 nkeys and JWTs, no
 * nsc needed), the server under test ($EMBER_TEST_SERVER: ember-server or Debian's
 * nats-server) started with `operator`, `resolver: MEMORY` and `resolver_preload`, and the
 * official C client connecting with .creds files: valid users (signed by the account or
 * by one of its signing keys) accepted, with their JWT permissions applied; expired,
 * forged, revoked, unknown-account and wrong-seed users refused; accounts isolated, a
 * service import between them, JetStream only where the account JWT grants it; a user
 * whose JWT expires while connected is disconnected. Every wait is bounded. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "th_check.h"
#include "jwtmint.h"
#include "nkeys.h"


static th_server srv;
static char dir[64];

static void limits(cJSON *nats, bool js)
{
    cJSON *l = cJSON_AddObjectToObject(nats, "limits");
    const char *k[] = {"subs", "data", "payload", "imports", "exports", "conn", "leaf", "streams",
                       "consumer"};
    for (size_t i = 0; i < sizeof k / sizeof *k; i++)
        cJSON_AddNumberToObject(l, k[i], -1);
    cJSON_AddBoolToObject(l, "wildcards", true);
    cJSON_AddNumberToObject(l, "mem_storage", js ? -1 : 0);
    cJSON_AddNumberToObject(l, "disk_storage", js ? -1 : 0);
}

/* A user JWT: of account acc_pub, signed by signer (the account or a signing key),
 * pub_allow (NULL: no permissions), exp (0: none). */
static char *user_jwt(const key *u, const char *acc_pub, const key *signer, const char *pub_allow,
                      int64_t exp)
{
    cJSON *c = claims(signer->pub, u->pub, "user", "user");
    if (exp)
        cJSON_AddNumberToObject(c, "exp", (double)exp);
    cJSON *n = cJSON_GetObjectItem(c, "nats");
    cJSON *pub = cJSON_AddObjectToObject(n, "pub");
    cJSON_AddObjectToObject(n, "sub");
    if (pub_allow) {
        cJSON *a = cJSON_AddArrayToObject(pub, "allow");
        cJSON_AddItemToArray(a, cJSON_CreateString(pub_allow));
        cJSON_AddItemToArray(a, cJSON_CreateString("$JS.API.>"));
    }
    cJSON_AddNumberToObject(n, "subs", -1);
    cJSON_AddNumberToObject(n, "data", -1);
    cJSON_AddNumberToObject(n, "payload", -1);
    if (strcmp(signer->pub, acc_pub) != 0)
        cJSON_AddStringToObject(n, "issuer_account", acc_pub);
    return mint(c, signer);
}

/* Writes a .creds file (takes jwt) and returns its path (malloc'd). */
static char *creds_file(const char *name, char *jwt, const char *seed)
{
    char *path = malloc(300);
    snprintf(path, 300, "%s/%s.creds", dir, name);
    FILE *f = fopen(path, "w");
    fprintf(f,
            "-----BEGIN NATS USER JWT-----\n%s\n------END NATS USER JWT------\n\n"
            "************************* IMPORTANT *************************\n"
            "NKEY Seed printed below can be used to sign and prove identity.\n\n"
            "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n",
            jwt, seed);
    fclose(f);
    free(jwt);
    return path;
}

static char last_err[512];
static void on_err(natsConnection *nc, natsSubscription *sub, natsStatus err, void *ud)
{
    (void)sub;
    (void)ud;
    (void)err;
    const char *t = NULL;
    natsConnection_GetLastError(nc, &t);
    snprintf(last_err, sizeof last_err, "%s", t ? t : "");
}

static natsStatus conn_creds(const char *creds, natsConnection **nc)
{
    natsOptions *o = th_opts_new(&srv);
    natsOptions_SetUserCredentialsFromFiles(o, creds, NULL);
    natsOptions_SetErrorHandler(o, on_err, NULL);
    *nc = NULL;
    natsStatus st = th_connect(&srv, o, nc);
    natsOptions_Destroy(o);
    return st;
}

static char *req_text(natsConnection *nc, const char *subj, const char *body)
{
    natsMsg *r = NULL;
    if (natsConnection_RequestString(&r, nc, subj, body, 5000) != NATS_OK)
        return NULL;
    char *s = strndup(natsMsg_GetData(r), (size_t)natsMsg_GetDataLength(r));
    natsMsg_Destroy(r);
    return s;
}

static void on_echo(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *ud)
{
    (void)sub;
    (void)ud;
    if (natsMsg_GetReply(m))
        natsConnection_PublishString(nc, natsMsg_GetReply(m), "pong");
    natsMsg_Destroy(m);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/ember-jwt-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());
    key op, a1, a2, sysacc, sk, stranger, u1, u2, ur, ue, us, urev, ushort, other;
    new_key(&op, NKEY_PREFIX_OPERATOR);
    new_key(&a1, NKEY_PREFIX_ACCOUNT);
    new_key(&a2, NKEY_PREFIX_ACCOUNT);
    new_key(&sk, NKEY_PREFIX_ACCOUNT);
    new_key(&sysacc, NKEY_PREFIX_ACCOUNT);
    new_key(&stranger, NKEY_PREFIX_ACCOUNT);
    key *users[] = {&u1, &u2, &ur, &ue, &us, &urev, &ushort, &other};
    for (size_t i = 0; i < sizeof users / sizeof *users; i++)
        new_key(users[i], NKEY_PREFIX_USER);
    int64_t now = (int64_t)time(NULL);

    char *op_jwt = mint(claims(op.pub, op.pub, "OP", "operator"), &op);
    cJSON *c1 = claims(op.pub, a1.pub, "A1", "account");
    cJSON *n1 = cJSON_GetObjectItem(c1, "nats");
    limits(n1, true);
    cJSON *sks = cJSON_AddArrayToObject(n1, "signing_keys");
    cJSON_AddItemToArray(sks, cJSON_CreateString(sk.pub));
    cJSON *exps = cJSON_AddArrayToObject(n1, "exports");
    cJSON *ex = cJSON_CreateObject();
    cJSON_AddStringToObject(ex, "name", "ping");
    cJSON_AddStringToObject(ex, "subject", "ping.>");
    cJSON_AddStringToObject(ex, "type", "service");
    cJSON_AddItemToArray(exps, ex);
    cJSON *rev = cJSON_AddObjectToObject(n1, "revocations");
    cJSON_AddNumberToObject(rev, urev.pub, (double)now + 100);
    char *a1_jwt = mint(c1, &op);
    cJSON *c2 = claims(op.pub, a2.pub, "A2", "account");
    cJSON *n2 = cJSON_GetObjectItem(c2, "nats");
    limits(n2, false);
    cJSON *imps = cJSON_AddArrayToObject(n2, "imports");
    cJSON *im = cJSON_CreateObject();
    cJSON_AddStringToObject(im, "name", "ping");
    cJSON_AddStringToObject(im, "subject", "ping.>");
    cJSON_AddStringToObject(im, "account", a1.pub);
    cJSON_AddStringToObject(im, "type", "service");
    cJSON_AddItemToArray(imps, im);
    char *a2_jwt = mint(c2, &op);
    /* nats-server's JetStream needs a system account in operator mode (Ember has none: it
     * ignores system_account) */
    cJSON *cs = claims(op.pub, sysacc.pub, "SYS", "account");
    limits(cJSON_GetObjectItem(cs, "nats"), false);
    char *sys_jwt = mint(cs, &op);

    char opfile[300], conf[300];
    int lport = th_free_port();
    snprintf(opfile, sizeof opfile, "%s/op.jwt", dir);
    FILE *f = fopen(opfile, "w");
    fprintf(f, "%s\n", op_jwt);
    fclose(f);
    snprintf(conf, sizeof conf, "%s/op.conf", dir);
    f = fopen(conf, "w");
    fprintf(f,
            "operator: \"%s\"\n"
            "resolver: MEMORY\n"
            "system_account: %s\n"
            "resolver_preload: {\n  %s: \"%s\"\n  %s: \"%s\"\n  %s: \"%s\"\n}\n"
            "jetstream { store_dir: \"%s/js\" }\n"
            "leafnodes { listen: \"127.0.0.1:%d\" }\n",
            opfile, sysacc.pub, a1.pub, a1_jwt, a2.pub, a2_jwt, sysacc.pub, sys_jwt, dir, lport);
    fclose(f);
    const char *args[] = {"-c", conf, NULL};
    if (th_server_start(&srv, NULL, args) != 0) {
        fprintf(stderr, "could not start %s\n", th_server_binary());
        return 1;
    }
    printf("server under test: %s\n", th_server_binary());

    char *cu1 = creds_file("u1", user_jwt(&u1, a1.pub, &a1, NULL, 0), u1.seed);
    char *cu2 = creds_file("u2", user_jwt(&u2, a2.pub, &a2, NULL, 0), u2.seed);
    char *cur = creds_file("ur", user_jwt(&ur, a1.pub, &a1, "ok.>", 0), ur.seed);
    char *cue = creds_file("ue", user_jwt(&ue, a1.pub, &a1, NULL, now - 10), ue.seed);
    char *cus = creds_file("us", user_jwt(&us, a1.pub, &sk, NULL, 0), us.seed);
    char *crev = creds_file("urev", user_jwt(&urev, a1.pub, &a1, NULL, 0), urev.seed);
    char *cstr = creds_file("ustr", user_jwt(&other, stranger.pub, &stranger, NULL, 0), other.seed);
    /* another user's seed with u1's JWT: the nonce signature does not match */
    char *cseed = creds_file("useed", user_jwt(&u1, a1.pub, &a1, NULL, 0), other.seed);
    /* a forged JWT: u1's claims with the signature of another key */
    char *good = user_jwt(&u1, a1.pub, &a1, NULL, 0);
    char *forged = user_jwt(&u1, a1.pub, &stranger, NULL, 0);
    char *dot = strrchr(good, '.'), *fdot = strrchr(forged, '.');
    size_t fl = (size_t)(dot - good) + strlen(fdot) + 1;
    char *mixed = malloc(fl);
    snprintf(mixed, fl, "%.*s%s", (int)(dot - good), good, fdot);
    char *cforged = creds_file("forged", mixed, u1.seed);

    natsConnection *nc1 = NULL, *nc2 = NULL, *ncr = NULL, *ncs = NULL, *x = NULL;
    CHECK(conn_creds(cu1, &nc1) == NATS_OK);
    CHECK(conn_creds(cu2, &nc2) == NATS_OK);
    CHECK(conn_creds(cur, &ncr) == NATS_OK);
    CHECK(conn_creds(cus, &ncs) == NATS_OK); /* signed by the account's signing key */
    /* refused */
    CHECK(conn_creds(cue, &x) != NATS_OK);
    natsConnection_Destroy(x);
    CHECK(conn_creds(crev, &x) != NATS_OK);
    natsConnection_Destroy(x);
    CHECK(conn_creds(cstr, &x) != NATS_OK);
    natsConnection_Destroy(x);
    CHECK(conn_creds(cseed, &x) != NATS_OK);
    natsConnection_Destroy(x);
    CHECK(conn_creds(cforged, &x) != NATS_OK);
    natsConnection_Destroy(x);
    {
        natsOptions *o = th_opts_new(&srv); /* no credentials at all */
        CHECK(th_connect(&srv, o, &x) != NATS_OK);
        natsConnection_Destroy(x);
        natsOptions_Destroy(o);
    }

    if (nc1 && nc2 && ncr && ncs) {
        /* the same account: u1 and the signing-key user see each other */
        natsSubscription *s1 = NULL, *s2 = NULL;
        CHECK(natsConnection_SubscribeSync(&s1, nc1, "t.>") == NATS_OK);
        CHECK(natsConnection_SubscribeSync(&s2, nc2, "t.>") == NATS_OK);
        natsConnection_Flush(nc1);
        natsConnection_Flush(nc2);
        CHECK(natsConnection_PublishString(ncs, "t.1", "hello") == NATS_OK);
        natsConnection_Flush(ncs);
        natsMsg *m = NULL;
        CHECK(natsSubscription_NextMsg(&m, s1, 2000) == NATS_OK && m);
        natsMsg_Destroy(m);
        m = NULL;
        CHECK(natsSubscription_NextMsg(&m, s2, 300) == NATS_TIMEOUT); /* A2 is isolated */
        natsMsg_Destroy(m);
        /* permissions from the JWT: ur may publish ok.> only */
        last_err[0] = 0;
        natsConnection_PublishString(ncr, "t.2", "nope");
        natsConnection_Flush(ncr);
        for (int i = 0; i < 100 && !last_err[0]; i++)
            th_sleep_ms(20);
        CHECK(strstr(last_err, "Permissions Violation for Publish to \"t.2\"") != NULL);
        m = NULL;
        CHECK(natsSubscription_NextMsg(&m, s1, 300) == NATS_TIMEOUT);
        natsMsg_Destroy(m);
        /* a service import from A2 into A1 */
        natsSubscription *svc = NULL;
        CHECK(natsConnection_Subscribe(&svc, nc1, "ping.>", on_echo, NULL) == NATS_OK);
        natsConnection_Flush(nc1);
        th_sleep_ms(50);
        char *r = req_text(nc2, "ping.x", "?");
        CHECK(r && !strcmp(r, "pong"));
        free(r);
        /* JetStream: A1 has it, A2 does not */
        r = req_text(nc1, "$JS.API.INFO", "");
        CHECK(r && strstr(r, "\"memory\"") && !strstr(r, "\"error\""));
        free(r);
        r = req_text(nc2, "$JS.API.INFO", "");
        CHECK(r && strstr(r, "\"err_code\":10039"));
        free(r);
        natsSubscription_Destroy(svc);
        natsSubscription_Destroy(s1);
        natsSubscription_Destroy(s2);
    }
    /* a leaf node authenticating with u1's .creds joins account A1 */
    if (nc1) {
        char lconf[300];
        snprintf(lconf, sizeof lconf, "%s/leaf.conf", dir);
        f = fopen(lconf, "w");
        fprintf(f, "leafnodes { remotes = [ { url: \"nats-leaf://127.0.0.1:%d\", credentials: \"%s\" } ] }\n",
                lport, cu1);
        fclose(f);
        th_server leaf, hub = srv;
        const char *largs[] = {"-c", lconf, NULL};
        CHECK(th_server_start(&leaf, NULL, largs) == 0);
        srv = leaf;
        natsConnection *lc = NULL;
        CHECK(th_connect(&srv, NULL, &lc) == NATS_OK);
        srv = hub;
        natsSubscription *hs = NULL, *h2 = NULL;
        CHECK(natsConnection_SubscribeSync(&hs, nc1, "lf.>") == NATS_OK);
        CHECK(natsConnection_SubscribeSync(&h2, nc2, "lf.>") == NATS_OK);
        natsConnection_Flush(nc1);
        natsConnection_Flush(nc2);
        natsMsg *m = NULL;
        for (int i = 0; lc && i < 100 && !m; i++) {
            natsConnection_PublishString(lc, "lf.1", "via-leaf");
            natsConnection_Flush(lc);
            natsSubscription_NextMsg(&m, hs, 100);
        }
        CHECK(m != NULL);
        natsMsg_Destroy(m);
        m = NULL;
        CHECK(natsSubscription_NextMsg(&m, h2, 200) == NATS_TIMEOUT); /* not in A2 */
        natsMsg_Destroy(m);
        natsSubscription_Destroy(hs);
        natsSubscription_Destroy(h2);
        natsConnection_Destroy(lc);
        CHECK(th_server_stop(&leaf) == 0);
    }

    /* a JWT that expires while connected: the server disconnects the user */
    char *cshort = creds_file("ushort", user_jwt(&ushort, a1.pub, &a1, NULL, (int64_t)time(NULL) + 5),
                              ushort.seed);
    natsConnection *nshort = NULL;
    /* (5 s of validity: a loaded machine must still connect before the expiry) */
    natsStatus sst = conn_creds(cshort, &nshort);
    CHECK(sst == NATS_OK);
    if (sst != NATS_OK)
        fprintf(stderr, "  short-lived user: %s (%s)\n", natsStatus_GetText(sst), nats_GetLastError(NULL));
    if (nshort) {
        for (int i = 0; i < 600 && !natsConnection_IsClosed(nshort); i++)
            th_sleep_ms(20);
        CHECK(natsConnection_IsClosed(nshort));
        const char *t = NULL;
        natsConnection_GetLastError(nshort, &t);
        CHECK(t && strstr(t, "User Authentication Expired"));
        if (!t || !strstr(t, "User Authentication Expired"))
            fprintf(stderr, "  expired connection's last error: %s\n", t ? t : "(none)");
    }
    natsConnection_Destroy(nshort);
    natsConnection_Destroy(nc1);
    natsConnection_Destroy(nc2);
    natsConnection_Destroy(ncr);
    natsConnection_Destroy(ncs);
    if (!th_server_alive(&srv))
        th_server_dump_log(&srv, 4000);
    CHECK(th_server_stop(&srv) == 0);

    free(op_jwt);
    free(a1_jwt);
    free(a2_jwt);
    free(sys_jwt);
    free(good);
    free(forged);
    char *files[] = {cu1, cu2, cur, cue, cus, crev, cstr, cseed, cforged, cshort};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        free(files[i]);
    char rm[128];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    if (system(rm) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return th_check_summary("jwt");
}
