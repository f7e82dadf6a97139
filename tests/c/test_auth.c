/* test_auth: users through ember_server_options (ember_user), the permission matcher and
 * the credential checks of auth.c, option errors, and a TCP client refused or accepted by
 * a server configured from C. */
#define _GNU_SOURCE
#include "ember.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "nkeys.h"
#include "testutil.h"

static void test_options(void)
{
    ember_server_options o;
    ember_server *s = NULL;
    ember_user u[2] = {{0}};
    u[0].user = "alice";
    u[0].password = "pw";
    ember_server_options_init(&o);
    o.dont_listen = true;
    o.users = u;
    o.users_count = 1;
    o.username = "x";
    o.password = "y";
    CHECK(ember_server_new(&s, &o) == EMBER_EINVAL);
    o.username = o.password = NULL;
    o.no_auth_user = "nobody";
    CHECK(ember_server_new(&s, &o) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "no_auth_user") != NULL);
    o.no_auth_user = NULL;
    u[0].publish_allow = "a..b";
    CHECK(ember_server_new(&s, &o) == EMBER_EINVAL);
    u[0].publish_allow = NULL;
    u[1].nkey = "UNOTANKEY";
    o.users_count = 2;
    CHECK(ember_server_new(&s, &o) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "Not a valid public nkey") != NULL);
    u[1].nkey = NULL;
    u[1].user = "alice";
    CHECK(ember_server_new(&s, &o) == EMBER_EINVAL); /* duplicate */
    o.users_count = 1;
    CHECK(ember_server_new(&s, &o) == EMBER_OK);
    ember_server_free(s);
}

static void test_checks(void)
{
    char salt[64], hash[128];
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    crypt_gensalt_rn("$2b$", 4, NULL, 0, salt, sizeof salt);
    snprintf(hash, sizeof hash, "%s", crypt_r("hunter2", salt, &cd));
    uint8_t raw[32] = {1, 2, 3};
    char seed[59], pub[57];
    CHECK(nkey_seed_encode(NKEY_PREFIX_USER, raw, seed) == 0);
    CHECK(nkey_seed_public(seed, pub) == 0 && pub[0] == 'U');
    ember_user u[4] = {{0}};
    u[0].user = "plain";
    u[0].password = "pw";
    u[0].publish_allow = "a.>, b";
    u[0].publish_deny = "a.secret";
    u[0].subscribe_deny = "x.private";
    u[1].user = "hashed";
    u[1].password = hash;
    u[2].nkey = pub;
    u[3].user = "svc";
    u[3].password = "svc";
    u[3].allow_responses = true;
    u[3].responses_max = 2;
    ember_server_options o;
    ember_server_options_init(&o);
    o.users = u;
    o.users_count = 4;
    o.no_auth_user = "plain";
    auth_users *us = NULL;
    CHECK(auth_users_new(&us, &o) == 0 && us);
    CHECK(auth_users_need_nonce(us));
    CHECK(auth_check(us, "plain", "pw", NULL, NULL, NULL) != NULL);
    CHECK(auth_check(us, "plain", "pW", NULL, NULL, NULL) == NULL);
    CHECK(auth_check(us, "hashed", "hunter2", NULL, NULL, NULL) != NULL);
    CHECK(auth_check(us, "hashed", "hunter3", NULL, NULL, NULL) == NULL);
    CHECK(auth_check(us, "hashed", hash, NULL, NULL, NULL) == NULL); /* the hash is no password */
    CHECK(auth_check(us, "nobody", "pw", NULL, NULL, NULL) == NULL);
    uint8_t sig[64];
    CHECK(nkey_sign(seed, "nonce1", 6, sig) == 0);
    char *b64 = nkey_b64url(sig, sizeof sig);
    const auth_user *nk = auth_check(us, NULL, NULL, pub, b64, "nonce1");
    CHECK(nk != NULL);
    CHECK(nk && strstr(auth_user_desc(nk), "Nkey \"U") == auth_user_desc(nk));
    CHECK(auth_check(us, NULL, NULL, pub, b64, "nonce2") == NULL);
    free(b64);
    CHECK(auth_no_auth_user(us) == auth_check(us, "plain", "pw", NULL, NULL, NULL));

    auth_perm *p = auth_perm_new(auth_check(us, "plain", "pw", NULL, NULL, NULL));
    CHECK(p != NULL);
    CHECK(auth_can_publish(p, "a.b", 3));
    CHECK(auth_can_publish(p, "b", 1));
    CHECK(!auth_can_publish(p, "a.secret", 8));
    CHECK(!auth_can_publish(p, "c", 1));
    CHECK(auth_can_subscribe(p, "x.*", 3, NULL, 0));
    CHECK(!auth_can_subscribe(p, "x.private", 9, NULL, 0));
    CHECK(auth_deny_delivery(p, "x.private", 9));
    CHECK(!auth_deny_delivery(p, "x.public", 8));
    auth_perm_free(p);
    /* a user with no permissions: everything allowed (the state exists for reloads) */
    p = auth_perm_new(auth_check(us, "hashed", "hunter2", NULL, NULL, NULL));
    CHECK(p && auth_can_publish(p, "anything", 8) && auth_can_subscribe(p, ">", 1, NULL, 0));
    CHECK(!auth_deny_delivery(p, "anything", 8));
    /* rebound to a user with permissions (a reload), they apply at once */
    auth_perm_rebind(p, auth_check(us, "svc", "svc", NULL, NULL, NULL));
    CHECK(!auth_can_publish(p, "anything", 8));
    auth_perm_free(p);
    CHECK(auth_can_publish(NULL, "anything", 8));
    /* allow_responses without publish rules: only replies, each twice */
    p = auth_perm_new(auth_check(us, "svc", "svc", NULL, NULL, NULL));
    CHECK(!auth_can_publish(p, "r.1", 3));
    auth_note_reply(p, "r.1", 3);
    CHECK(auth_can_publish(p, "r.1", 3));
    CHECK(auth_can_publish(p, "r.1", 3));
    CHECK(!auth_can_publish(p, "r.1", 3));
    for (int i = 0; i < 5000; i++) /* bounded: the oldest replies are forgotten */
        auth_note_reply(p, "r.many", 6);
    auth_perm_free(p);
    auth_users_free(us);
}

/* Queue permissions ("subject group" entries), as nats-server's canSubscribe; a duplicate
 * nkey and a token beside users are refused with nats-server's texts. */
static void test_queue_perms(void)
{
    ember_user u[1] = {{0}};
    u[0].user = "q";
    u[0].password = "pw";
    u[0].subscribe_allow = "foo.> workers, bar, baz v1.*";
    u[0].subscribe_deny = "bar bad";
    u[0].publish_allow = "pub.> grp"; /* a queue entry in a publish list matches nothing */
    ember_server_options o;
    ember_server_options_init(&o);
    o.users = u;
    o.users_count = 1;
    auth_users *us = NULL;
    REQUIRE(auth_users_new(&us, &o) == 0 && us);
    auth_perm *p = auth_perm_new(auth_check(us, "q", "pw", NULL, NULL, NULL));
    REQUIRE(p != NULL);
    CHECK(!auth_can_subscribe(p, "foo.a", 5, NULL, 0));      /* only in the queue group */
    CHECK(auth_can_subscribe(p, "foo.a", 5, "workers", 7));
    CHECK(!auth_can_subscribe(p, "foo.a", 5, "other", 5));
    CHECK(auth_can_subscribe(p, "bar", 3, NULL, 0));
    CHECK(auth_can_subscribe(p, "bar", 3, "any", 3));
    CHECK(!auth_can_subscribe(p, "bar", 3, "bad", 3));       /* denied queue group */
    CHECK(auth_can_subscribe(p, "baz", 3, "v1.x", 4));       /* wildcard group */
    CHECK(!auth_can_subscribe(p, "baz", 3, "v2.x", 4));
    CHECK(!auth_can_subscribe(p, "workers", 7, NULL, 0));
    CHECK(!auth_can_publish(p, "pub.x", 5));
    auth_perm_free(p);
    auth_users_free(us);
    u[0].subscribe_allow = "foo a b"; /* a group name has no blank */
    CHECK(auth_users_new(&us, &o) == EMBER_EINVAL && !us);

    uint8_t raw[32] = {7};
    char seed[59], pub[57];
    CHECK(nkey_seed_encode(NKEY_PREFIX_USER, raw, seed) == 0 && nkey_seed_public(seed, pub) == 0);
    ember_user n[2] = {{0}};
    n[0].nkey = n[1].nkey = pub;
    o.users = n;
    o.users_count = 2;
    CHECK(auth_users_new(&us, &o) == EMBER_EINVAL && !us);
    CHECK(strstr(ember_last_error(), "Duplicate nkey") != NULL);
    o.users_count = 1;
    o.auth_token = "t";
    CHECK(auth_users_new(&us, &o) == EMBER_EINVAL && !us);
    CHECK(strstr(ember_last_error(), "Can not have a token and a users array") != NULL);
}

/* A loopback TCP connection to port (-1 on failure). */
static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Read into buf (NUL-terminated, *n bytes so far) until needle appears, the peer closes or
 * 3 s pass. Returns whether needle is there. */
static bool read_until(int fd, char *buf, size_t cap, size_t *n, const char *needle)
{
    uint64_t end = tu_now_ms() + 3000;
    buf[*n] = 0;
    while (tu_now_ms() < end && !strstr(buf, needle) && *n < cap - 1) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        ssize_t r = read(fd, buf + *n, cap - 1 - *n);
        if (r <= 0)
            break;
        *n += (size_t)r;
        buf[*n] = 0;
    }
    return strstr(buf, needle) != NULL;
}

/* A TCP client against users configured from C. */
static void test_tcp(void)
{
    char salt[64], hash[128];
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    crypt_gensalt_rn("$2b$", 4, NULL, 0, salt, sizeof salt);
    snprintf(hash, sizeof hash, "%s", crypt_r("pw2", salt, &cd));
    ember_user u[2] = {{0}};
    u[0].user = "alice";
    u[0].password = "pw";
    u[0].publish_allow = "ok.>";
    u[1].user = "slow"; /* bcrypt: checked off the loop; what follows CONNECT waits */
    u[1].password = hash;
    u[1].publish_allow = "ok.>";
    ember_server_options o;
    ember_server_options_init(&o);
    o.host = "127.0.0.1";
    o.port = -1;
    o.users = u;
    o.users_count = 2;
    ember_server *s = NULL;
    REQUIRE(ember_server_new(&s, &o) == EMBER_OK);
    REQUIRE(ember_server_start(s) == EMBER_OK);
    REQUIRE(ember_server_ready_for_connections(s, 5000));
    const char *cases[4] = {"CONNECT {\"user\":\"alice\",\"pass\":\"bad\",\"verbose\":false}\r\nPING\r\n",
                            "CONNECT {\"user\":\"alice\",\"pass\":\"pw\",\"verbose\":false}\r\n"
                            "PUB no 1\r\nx\r\nPING\r\n",
                            "CONNECT {\"user\":\"slow\",\"pass\":\"pw2\",\"verbose\":false}\r\n"
                            "PUB ok.a 1\r\nx\r\nPUB no 1\r\nx\r\nPING\r\n",
                            "CONNECT {\"user\":\"slow\",\"pass\":\"bad\",\"verbose\":false}\r\n"
                            "PING\r\n"};
    const char *want[4] = {"-ERR 'Authorization Violation'",
                           "-ERR 'Permissions Violation for Publish to \"no\"'",
                           "-ERR 'Permissions Violation for Publish to \"no\"'\r\nPONG\r\n",
                           "-ERR 'Authorization Violation'"};
    for (int k = 0; k < 4; k++) {
        int fd = dial(ember_server_port(s));
        REQUIRE(fd >= 0);
        char buf[8192];
        size_t n = 0;
        CHECK(read_until(fd, buf, sizeof buf, &n, "\r\n")); /* INFO */
        CHECK(strstr(buf, "\"auth_required\":true") != NULL);
        CHECK(write(fd, cases[k], strlen(cases[k])) == (ssize_t)strlen(cases[k]));
        CHECK_MSG(read_until(fd, buf, sizeof buf, &n, want[k]), "got %s", buf);
        close(fd);
    }
    ember_server_shutdown(s);
    ember_server_free(s);
}

/* In-process connections given credentials: the user's permissions apply. */
static void test_inproc(void)
{
    uint8_t raw[32] = {9, 8, 7};
    char seed[59], pub[57];
    nkey_seed_encode(NKEY_PREFIX_USER, raw, seed);
    nkey_seed_public(seed, pub);
    ember_user u[2] = {{0}};
    u[0].user = "app";
    u[0].password = "pw";
    u[0].publish_allow = "ok.>, _INBOX.>";
    u[0].subscribe_allow = "ok.>, _INBOX.>";
    u[0].subscribe_deny = "ok.hidden";
    u[1].nkey = pub;
    u[1].publish_allow = "nk.>";
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true;
    o.users = u;
    o.users_count = 2;
    ember_server *s = NULL;
    REQUIRE(ember_server_new(&s, &o) == EMBER_OK);
    REQUIRE(ember_server_start(s) == EMBER_OK);
    REQUIRE(ember_server_ready_for_connections(s, 5000));
    ember_conn_options co;
    ember_conn_options_init(&co);
    co.user = "app";
    co.password = "bad";
    ember_conn *c = NULL;
    CHECK(ember_conn_connect(&c, s, &co) == EMBER_EAUTH);
    CHECK(c == NULL);
    CHECK(strcmp(ember_last_error(), "Authorization Violation") == 0);
    co.password = "pw";
    CHECK(ember_conn_connect(&c, s, &co) == EMBER_OK);
    CHECK(ember_conn_publish(c, "ok.a", NULL, "x", 1) == EMBER_OK);
    CHECK(ember_conn_publish(c, "no", NULL, "x", 1) == EMBER_EPERM);
    CHECK(strcmp(ember_last_error(), "Permissions Violation for Publish to \"no\"") == 0);
    ember_sub *sub = NULL;
    CHECK(ember_conn_subscribe(&sub, c, "no.>", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) ==
          EMBER_EPERM);
    CHECK(ember_conn_subscribe(&sub, c, "ok.*", "q", EMBER_DELIVER_POLL, NULL, NULL, NULL) ==
          EMBER_OK);
    /* the host's own connection (no credentials) is not checked */
    ember_conn *host = NULL;
    CHECK(ember_conn_connect(&host, s, NULL) == EMBER_OK);
    CHECK(ember_conn_publish(host, "ok.hidden", NULL, "h", 1) == EMBER_OK);
    CHECK(ember_conn_publish(host, "ok.shown", NULL, "s", 1) == EMBER_OK);
    ember_msg *m = NULL;
    CHECK(ember_sub_next_msg(sub, &m, 2000) == EMBER_OK);
    CHECK(m && strcmp(ember_msg_subject(m), "ok.shown") == 0); /* the denied one never came */
    ember_msg_release(m);
    ember_conn_close(c);
    /* an nkey user through its seed */
    ember_conn_options_init(&co);
    co.nkey_seed = seed;
    CHECK(ember_conn_connect(&c, s, &co) == EMBER_OK);
    CHECK(ember_conn_publish(c, "nk.a", NULL, "x", 1) == EMBER_OK);
    CHECK(ember_conn_publish(c, "ok.a", NULL, "x", 1) == EMBER_EPERM);
    ember_conn_close(c);
    uint8_t raw2[32] = {1};
    char other[59];
    nkey_seed_encode(NKEY_PREFIX_USER, raw2, other);
    co.nkey_seed = other;
    CHECK(ember_conn_connect(&c, s, &co) == EMBER_EAUTH);
    ember_conn_close(host);
    ember_server_shutdown(s);
    ember_server_free(s);
}

/* ember_server_reload: users change, clients of a removed user are closed, what cannot
 * change is refused. */
static void test_reload(void)
{
    ember_user u[2] = {{0}};
    u[0].user = "keep";
    u[0].password = "k";
    u[1].user = "gone";
    u[1].password = "g";
    ember_server_options o;
    ember_server_options_init(&o);
    o.host = "127.0.0.1";
    o.port = -1;
    o.users = u;
    o.users_count = 2;
    ember_server *s = NULL;
    REQUIRE(ember_server_new(&s, &o) == EMBER_OK);
    REQUIRE(ember_server_start(s) == EMBER_OK);
    REQUIRE(ember_server_ready_for_connections(s, 5000));
    int port = ember_server_port(s);
    /* a client of "gone" */
    int fd = dial(port);
    REQUIRE(fd >= 0);
    const char *cl = "CONNECT {\"user\":\"gone\",\"pass\":\"g\",\"verbose\":false}\r\nPING\r\n";
    CHECK(write(fd, cl, strlen(cl)) == (ssize_t)strlen(cl));
    char buf[8192];
    size_t n = 0;
    CHECK(read_until(fd, buf, sizeof buf, &n, "PONG"));
    /* in-process connections of "gone" and of "keep" */
    ember_conn_options gco;
    ember_conn_options_init(&gco);
    gco.user = "gone";
    gco.password = "g";
    ember_conn *gc = NULL, *kc = NULL;
    REQUIRE(ember_conn_connect(&gc, s, &gco) == EMBER_OK);
    ember_sub *gsub = NULL;
    CHECK(ember_conn_subscribe(&gsub, gc, "r.x", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) ==
          EMBER_OK);
    gco.user = "keep";
    gco.password = "k";
    REQUIRE(ember_conn_connect(&kc, s, &gco) == EMBER_OK);
    /* refused: a different port, JetStream on; nothing applied */
    ember_server_options r = o;
    r.port = port + 1;
    CHECK(ember_server_reload(s, &r) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "config reload not supported for port") != NULL);
    r = o;
    r.jetstream = true;
    CHECK(ember_server_reload(s, &r) == EMBER_EINVAL);
    /* applied: "gone" removed, a limit changed */
    r = o;
    r.users_count = 1;
    r.max_subscriptions = 7;
    CHECK(ember_server_reload(s, &r) == EMBER_OK);
    /* the client of the removed user is closed */
    bool closed = false;
    uint64_t end = tu_now_ms() + 3000;
    while (tu_now_ms() < end && !closed) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 100) > 0) {
            ssize_t rr = read(fd, buf, sizeof buf - 1);
            closed = rr <= 0;
        }
    }
    CHECK(closed);
    close(fd);
    /* so is the in-process connection of the removed user (nats-server closes every
     * client of a removed user); the other one keeps working */
    CHECK(ember_conn_is_closed(gc));
    CHECK(ember_conn_publish(gc, "r.x", NULL, "x", 1) == EMBER_ECLOSED);
    CHECK(strstr(ember_last_error(), "Authorization Violation") != NULL);
    ember_msg *gm = NULL;
    CHECK(ember_sub_next_msg(gsub, &gm, 10) == EMBER_ECLOSED);
    CHECK(!ember_conn_is_closed(kc));
    CHECK(ember_conn_publish(kc, "r.x", NULL, "x", 1) == EMBER_OK);
    ember_conn_close(gc);
    ember_conn_close(kc);
    /* the in-process path sees the new users at once */
    ember_conn_options co;
    ember_conn_options_init(&co);
    co.user = "gone";
    co.password = "g";
    ember_conn *c = NULL;
    CHECK(ember_conn_connect(&c, s, &co) == EMBER_EAUTH);
    co.user = "keep";
    co.password = "k";
    CHECK(ember_conn_connect(&c, s, &co) == EMBER_OK);
    ember_conn_close(c);
    ember_server_shutdown(s);
    CHECK(ember_server_reload(s, &o) == EMBER_ESTATE);
    ember_server_free(s);
}

int main(void)
{
    test_reload();
    test_inproc();
    test_options();
    test_checks();
    test_queue_perms();
    test_tcp();
    return tu_summary("auth");
}
