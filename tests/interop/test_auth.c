/* Users, passwords (plain and bcrypt), nkeys, no_auth_user and permissions, against the
 * server under test ($EMBER_TEST_SERVER: ember-server or Debian's nats-server), both
 * started from the same nats-server configuration file written here. Raw protocol
 * sessions so the exact -ERR texts are compared: both servers must give the same ones.
 * Every wait is bounded; nothing asserts on timing. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <crypt.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "th_check.h"
#include "nkeys.h"


static th_server srv;
static char seed[59], pub[57], wrong_seed[59], wrong_pub[57];

static void new_seed(char s[59], char p[57])
{
    uint8_t raw[32];
    RAND_bytes(raw, sizeof raw);
    nkey_seed_encode(NKEY_PREFIX_USER, raw, s);
    nkey_seed_public(s, p);
}

/* Connect, read INFO (into info if given), send CONNECT then PING; returns the fd and
 * what came back after the CONNECT (PONG or -ERR) in out. */
static int session(const char *connect_json, th_buf *out, char *info, size_t icap)
{
    int fd = th_raw_connect(srv.port, 0, 3000);
    if (fd < 0)
        return -1;
    char line[8192];
    th_buf rest;
    th_buf_init(&rest);
    if (th_raw_read_info(fd, line, sizeof line, &rest, 3000) < 0) {
        th_buf_free(&rest);
        close(fd);
        return -1;
    }
    th_buf_free(&rest);
    if (info)
        snprintf(info, icap, "%s", line);
    char cl[4096];
    snprintf(cl, sizeof cl, "CONNECT %s\r\nPING\r\n", connect_json);
    th_raw_write_str(fd, cl);
    th_buf_reset(out);
    th_raw_read(fd, out, NULL, 300, 3000);
    return fd;
}

static bool connect_ok(const char *json)
{
    th_buf b;
    th_buf_init(&b);
    int fd = session(json, &b, NULL, 0);
    bool ok = fd >= 0 && strstr(b.data, "PONG") && !strstr(b.data, "-ERR");
    if (!ok && fd >= 0)
        fprintf(stderr, "  %s -> %s\n", json, b.data);
    if (fd >= 0)
        close(fd);
    th_buf_free(&b);
    return ok;
}

static bool connect_refused(const char *json)
{
    th_buf b;
    th_buf_init(&b);
    int fd = session(json, &b, NULL, 0);
    bool ok = fd >= 0 && strstr(b.data, "-ERR 'Authorization Violation'") && !strstr(b.data, "PONG");
    if (!ok)
        fprintf(stderr, "  %s -> %s\n", json, fd >= 0 ? b.data : "(no connection)");
    if (fd >= 0)
        close(fd);
    th_buf_free(&b);
    return ok;
}

/* Send ops on an authenticated session and return what came back (until quiet). */
static void exchange(int fd, const char *ops, th_buf *b)
{
    th_buf_reset(b);
    th_raw_write_str(fd, ops);
    th_raw_write_str(fd, "PING\r\n");
    th_raw_read_contains(fd, b, "PONG\r\n", 3000);
}

static void nkey_json(char *out, size_t cap, const char *s, const char *info, const char *nkey)
{
    const char *p = strstr(info, "\"nonce\":\"");
    char nonce[128] = "";
    if (p)
        sscanf(p + 9, "%127[^\"]", nonce);
    uint8_t sig[64];
    nkey_sign(s, nonce, strlen(nonce), sig);
    char *b64 = nkey_b64url(sig, sizeof sig);
    snprintf(out, cap, "{\"verbose\":false,\"nkey\":\"%s\",\"sig\":\"%s\"}", nkey, b64);
    free(b64);
}

int main(void)
{
    new_seed(seed, pub);
    new_seed(wrong_seed, wrong_pub);
    char dir[] = "/tmp/ember-auth-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    /* a bcrypt hash of "b0bpass" made here (cost 4) */
    char salt[64];
    crypt_gensalt_rn("$2b$", 4, NULL, 0, salt, sizeof salt);
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    const char *hash = crypt_r("b0bpass", salt, &cd);
    CHECK(hash && hash[0] == '$');
    char conf[300], text[4096];
    snprintf(conf, sizeof conf, "%s/auth.conf", dir);
    snprintf(text, sizeof text,
             "authorization {\n"
             "  default_permissions { publish: \"def.>\", subscribe: \"def.>\" }\n"
             "  users = [\n"
             "    { user: alice, password: s3cret,\n"
             "      permissions { publish: { allow: [\"pub.>\", \"req.>\"], deny: \"pub.secret\" },\n"
             "                    subscribe: { allow: [\"sub.>\", \"_INBOX.>\"], deny: \"sub.secret\" } } }\n"
             "    { user: bob, password: \"%s\" }\n"
             "    { nkey: %s, permissions { publish: \">\", subscribe: \">\" } }\n"
             "    { user: svc, password: svc,\n"
             "      permissions { subscribe: \"req.>\", allow_responses: true } }\n"
             "    { user: anon, password: anon, permissions { publish: \"open.>\", subscribe: \"open.>\" } }\n"
             "    { user: qu, password: qu, permissions { subscribe: { allow: [\"work.> workers\", \"plain\"],\n"
             "                                                        deny: \"plain bad\" } } }\n"
             "  ]\n"
             "}\n"
             "no_auth_user: anon\n",
             hash, pub);
    FILE *f = fopen(conf, "w");
    fputs(text, f);
    fclose(f);
    const char *args[] = {"-c", conf, NULL};
    if (th_server_start(&srv, NULL, args) != 0) {
        fprintf(stderr, "could not start %s\n", th_server_binary());
        return 1;
    }
    printf("server under test: %s\n", th_server_binary());

    /* passwords */
    CHECK(connect_ok("{\"verbose\":false,\"user\":\"alice\",\"pass\":\"s3cret\"}"));
    CHECK(connect_refused("{\"verbose\":false,\"user\":\"alice\",\"pass\":\"nope\"}"));
    CHECK(connect_refused("{\"verbose\":false,\"user\":\"mallory\",\"pass\":\"s3cret\"}"));
    CHECK(connect_ok("{\"verbose\":false,\"user\":\"bob\",\"pass\":\"b0bpass\"}"));
    CHECK(connect_refused("{\"verbose\":false,\"user\":\"bob\",\"pass\":\"b0bpas\"}"));
    /* no credentials: no_auth_user anon */
    CHECK(connect_ok("{\"verbose\":false}"));

    /* nkeys: the INFO nonce signed */
    {
        th_buf b;
        th_buf_init(&b);
        char info[8192], json[1024];
        int fd = session("{\"verbose\":false}", &b, info, sizeof info);
        CHECK(fd >= 0 && strstr(info, "\"nonce\":\"") != NULL);
        if (fd >= 0)
            close(fd);
        /* right key */
        int fd2 = th_raw_connect(srv.port, 0, 3000);
        char line[8192];
        th_buf rest;
        th_buf_init(&rest);
        CHECK(fd2 >= 0 && th_raw_read_info(fd2, line, sizeof line, &rest, 3000) > 0);
        nkey_json(json, sizeof json, seed, line, pub);
        char cl[2048];
        snprintf(cl, sizeof cl, "CONNECT %s\r\nPING\r\n", json);
        th_raw_write_str(fd2, cl);
        th_buf_reset(&b);
        th_raw_read(fd2, &b, NULL, 300, 3000);
        CHECK(strstr(b.data, "PONG") && !strstr(b.data, "-ERR"));
        close(fd2);
        /* a signature by another key, and one over another nonce: refused */
        int fd3 = th_raw_connect(srv.port, 0, 3000);
        CHECK(fd3 >= 0 && th_raw_read_info(fd3, line, sizeof line, &rest, 3000) > 0);
        nkey_json(json, sizeof json, wrong_seed, line, pub);
        snprintf(cl, sizeof cl, "CONNECT %s\r\nPING\r\n", json);
        th_raw_write_str(fd3, cl);
        th_buf_reset(&b);
        th_raw_read(fd3, &b, NULL, 300, 3000);
        CHECK(strstr(b.data, "-ERR 'Authorization Violation'") != NULL);
        close(fd3);
        nkey_json(json, sizeof json, seed, "\"nonce\":\"not-the-nonce\"", pub);
        CHECK(connect_refused(json));
        th_buf_free(&rest);
        th_buf_free(&b);
    }

    /* permissions */
    {
        th_buf b;
        th_buf_init(&b);
        int fd = session("{\"verbose\":false,\"user\":\"alice\",\"pass\":\"s3cret\"}", &b, NULL, 0);
        CHECK(fd >= 0);
        exchange(fd, "PUB other 1\r\nx\r\n", &b);
        CHECK(strstr(b.data, "-ERR 'Permissions Violation for Publish to \"other\"'\r\n") != NULL);
        exchange(fd, "PUB pub.secret 1\r\nx\r\n", &b);
        CHECK(strstr(b.data, "-ERR 'Permissions Violation for Publish to \"pub.secret\"'\r\n") != NULL);
        exchange(fd, "PUB pub.ok 1\r\nx\r\n", &b);
        CHECK(strstr(b.data, "-ERR") == NULL);
        exchange(fd, "SUB other 1\r\n", &b);
        CHECK(strstr(b.data, "-ERR 'Permissions Violation for Subscription to \"other\"'\r\n") != NULL);
        exchange(fd, "SUB other q 2\r\n", &b);
        CHECK(strstr(b.data, "-ERR 'Permissions Violation for Subscription to \"other\" using queue \"q\"'\r\n") != NULL);
        exchange(fd, "SUB sub.secret 3\r\n", &b);
        CHECK(strstr(b.data, "Permissions Violation for Subscription to \"sub.secret\"") != NULL);
        /* a wildcard subscription is allowed, but never gets the denied subject */
        exchange(fd, "SUB sub.* 4\r\n", &b);
        CHECK(strstr(b.data, "-ERR") == NULL);
        int fd2 = session("{\"verbose\":false,\"user\":\"bob\",\"pass\":\"b0bpass\"}", &b, NULL, 0);
        /* bob has the default permissions: def.> only */
        exchange(fd2, "PUB sub.secret 1\r\nx\r\n", &b);
        CHECK(strstr(b.data, "Permissions Violation for Publish to \"sub.secret\"") != NULL);
        exchange(fd2, "PUB def.x 1\r\nx\r\n", &b);
        CHECK(strstr(b.data, "-ERR") == NULL);
        close(fd2);
        /* the nkey user may publish anything: sub.secret and sub.open reach alice's sub.* ... */
        char info[8192], json[1024];
        th_buf b3;
        th_buf_init(&b3);
        int fd3 = th_raw_connect(srv.port, 0, 3000);
        char line[8192];
        th_buf rest;
        th_buf_init(&rest);
        th_raw_read_info(fd3, line, sizeof line, &rest, 3000);
        (void)info;
        nkey_json(json, sizeof json, seed, line, pub);
        char cl[2048];
        snprintf(cl, sizeof cl, "CONNECT %s\r\nPUB sub.secret 6\r\nhidden\r\nPUB sub.open 5\r\nshown\r\nPING\r\n", json);
        th_raw_write_str(fd3, cl);
        th_raw_read_contains(fd3, &b3, "PONG", 3000);
        th_buf_reset(&b);
        th_raw_read_contains(fd, &b, "shown", 3000);
        CHECK(strstr(b.data, "MSG sub.open 4 5\r\nshown") != NULL);
        CHECK(strstr(b.data, "hidden") == NULL);
        close(fd3);
        th_buf_free(&b3);
        th_buf_free(&rest);

        /* allow_responses: svc may answer the request it got, once */
        int sv = session("{\"verbose\":false,\"user\":\"svc\",\"pass\":\"svc\"}", &b, NULL, 0);
        exchange(sv, "SUB req.> 1\r\n", &b);
        CHECK(strstr(b.data, "-ERR") == NULL);
        exchange(fd, "SUB _INBOX.alice 9\r\n", &b);
        exchange(sv, "PUB other 1\r\nx\r\n", &b);
        CHECK(strstr(b.data, "Permissions Violation for Publish to \"other\"") != NULL);
        th_raw_write_str(fd, "PUB req.a _INBOX.alice 3\r\nask\r\n");
        th_buf_reset(&b);
        CHECK(th_raw_read_contains(sv, &b, "ask", 3000));
        exchange(sv, "PUB _INBOX.alice 6\r\nanswer\r\n", &b);
        CHECK(strstr(b.data, "-ERR") == NULL);
        exchange(sv, "PUB _INBOX.alice 6\r\nagain!\r\n", &b);
        CHECK(strstr(b.data, "Permissions Violation for Publish to \"_INBOX.alice\"") != NULL);
        th_buf_reset(&b);
        CHECK(th_raw_read_contains(fd, &b, "answer", 3000));
        close(sv);
        close(fd);
        /* no_auth_user anon: its permissions apply */
        int an = session("{\"verbose\":false}", &b, NULL, 0);
        exchange(an, "PUB pub.ok 1\r\nx\r\n", &b);
        CHECK(strstr(b.data, "Permissions Violation for Publish to \"pub.ok\"") != NULL);
        close(an);
        /* queue permissions: "work.> workers" allows work.> only in the group workers */
        int qu = session("{\"verbose\":false,\"user\":\"qu\",\"pass\":\"qu\"}", &b, NULL, 0);
        exchange(qu, "SUB work.a 1\r\n", &b);
        CHECK(strstr(b.data, "-ERR 'Permissions Violation for Subscription to \"work.a\"'\r\n") != NULL);
        exchange(qu, "SUB work.a workers 2\r\n", &b);
        CHECK(strstr(b.data, "-ERR") == NULL);
        exchange(qu, "SUB work.a other 3\r\n", &b);
        CHECK(strstr(b.data, "-ERR 'Permissions Violation for Subscription to \"work.a\" using queue \"other\"'\r\n") != NULL);
        exchange(qu, "SUB plain any 4\r\n", &b);
        CHECK(strstr(b.data, "-ERR") == NULL);
        exchange(qu, "SUB plain bad 5\r\n", &b);
        CHECK(strstr(b.data, "-ERR 'Permissions Violation for Subscription to \"plain\" using queue \"bad\"'\r\n") != NULL);
        exchange(qu, "SUB workers 6\r\n", &b);
        CHECK(strstr(b.data, "-ERR 'Permissions Violation for Subscription to \"workers\"'\r\n") != NULL);
        close(qu);
        th_buf_free(&b);
    }

    /* SIGHUP reloads the configuration file: bob removed, then refused; alice's publish
     * permissions narrowed, which her open connection feels at once (both servers) */
    {
        th_buf ab;
        th_buf_init(&ab);
        int alice = session("{\"verbose\":false,\"user\":\"alice\",\"pass\":\"s3cret\"}", &ab, NULL, 0);
        CHECK(alice >= 0);
        exchange(alice, "PUB pub.x 2\r\nhi\r\n", &ab);
        CHECK(strstr(ab.data, "-ERR") == NULL);
        char *cut = strstr(text, "    { user: bob");
        char *eol = cut ? strchr(cut, '\n') : NULL;
        if (cut && eol)
            memmove(cut, eol + 1, strlen(eol + 1) + 1);
        char *pa = strstr(text, "allow: [\"pub.>\", \"req.>\"]");
        if (pa) /* the same length: allow req.> and rep.> only */
            memcpy(pa, "allow: [\"rep.>\", \"req.>\"]", strlen("allow: [\"rep.>\", \"req.>\"]"));
        CHECK(pa != NULL);
        FILE *f2 = fopen(conf, "w");
        fputs(text, f2);
        fclose(f2);
        CHECK(connect_ok("{\"verbose\":false,\"user\":\"bob\",\"pass\":\"b0bpass\"}"));
        kill(srv.pid, SIGHUP);
        bool refused = false;
        int64_t end = th_now_ms() + 5000;
        while (!refused && th_now_ms() < end) {
            th_buf b;
            th_buf_init(&b);
            int fd = session("{\"verbose\":false,\"user\":\"bob\",\"pass\":\"b0bpass\"}", &b, NULL, 0);
            refused = fd >= 0 && strstr(b.data, "Authorization Violation") != NULL;
            if (fd >= 0)
                close(fd);
            th_buf_free(&b);
            if (!refused)
                th_sleep_ms(100);
        }
        CHECK(refused);
        CHECK(connect_ok("{\"verbose\":false,\"user\":\"alice\",\"pass\":\"s3cret\"}"));
        if (alice >= 0) {
            exchange(alice, "PUB pub.x 2\r\nhi\r\n", &ab);
            CHECK(strstr(ab.data, "-ERR 'Permissions Violation for Publish to \"pub.x\"'") != NULL);
            exchange(alice, "PUB rep.x 2\r\nhi\r\n", &ab);
            CHECK(strstr(ab.data, "-ERR") == NULL);
            close(alice);
        }
        th_buf_free(&ab);
    }

    th_server_stop(&srv);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return th_check_summary("auth");
}
