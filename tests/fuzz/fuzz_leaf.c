/* fuzz_leaf: libFuzzer target for the leaf-node link (core/src/leaf.c and the parser's
 * leaf mode): LS+ / LS- with queues and weights, LMSG and leaf HMSG with reply and queue
 * lists, $JS.ACK '@' remapping, $LDS loop subjects, -ERR, INFO and CONNECT in the wrong
 * places.
 *
 * One broker lives for the whole run: a leafnodes port on loopback, JetStream (memory)
 * with domain "fz", and an in-process connection with plain, wildcard and queue
 * subscriptions so that what a link sends is routed somewhere. Each input is one leaf
 * connection: a valid CONNECT, then the input bytes as the remote's protocol; the link
 * is read until it closes or goes quiet, then closed. After each input the broker must
 * still answer an in-process request (no crash, no hang, no leak under ASan).
 *
 *   ./fuzz_leaf -runs=20000 -dict=tests/fuzz/fuzz_leaf.dict tests/fuzz/corpus/leaf
 */
#define _GNU_SOURCE
#include "ember.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static ember_server *srv;
static ember_conn *conn;
static int leaf_port;
static char store[64];

static void responder(void *ud, ember_sub *sub, ember_msg *m)
{
    (void)sub;
    if (ember_msg_reply(m))
        ember_msg_respond(ud, m, "ok", 2);
}

static void drop(void *ud, ember_sub *sub, ember_msg *m)
{
    (void)ud;
    (void)sub;
    (void)m;
}

static void cleanup(void)
{
    ember_conn_close(conn);
    ember_server_shutdown(srv);
    ember_server_free(srv);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", store);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", store);
}

static void setup(void)
{
    snprintf(store, sizeof store, "/tmp/ember-fuzz-leaf-XXXXXX");
    if (!mkdtemp(store))
        abort();
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true;
    o.leaf_host = "127.0.0.1";
    o.leaf_port = -1;
    o.jetstream = true;
    o.store_dir = store;
    o.jetstream_domain = "fz";
    o.max_payload = 4096;
    if (ember_server_new(&srv, &o) || ember_server_start(srv) ||
        !ember_server_ready_for_connections(srv, 5000))
        abort();
    leaf_port = ember_server_leafnode_port(srv);
    if (ember_conn_connect(&conn, srv, NULL))
        abort();
    ember_sub *s;
    ember_conn_subscribe(&s, conn, "a.>", NULL, EMBER_DELIVER_INLINE, responder, conn, NULL);
    ember_conn_subscribe(&s, conn, "q.*", "workers", EMBER_DELIVER_INLINE, responder, conn, NULL);
    ember_conn_subscribe(&s, conn, "q.*", "other", EMBER_DELIVER_INLINE, drop, NULL, NULL);
    ember_conn_subscribe(&s, conn, "ping", NULL, EMBER_DELIVER_INLINE, responder, conn, NULL);
    atexit(cleanup);
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)leaf_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Read until the peer closes or nothing comes for quiet_ms (bounded by max_ms). */
static void drain(int fd, int quiet_ms, int max_ms)
{
    char buf[65536];
    int waited = 0;
    while (waited < max_ms) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, quiet_ms);
        if (r <= 0)
            return;
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            return;
        waited += 1;
    }
}

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        c += w;
        n -= (size_t)w;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!srv)
        setup();
    if (size > 64 * 1024)
        return 0;
    int fd = dial();
    if (fd < 0)
        abort();
    static const char connect_line[] =
        "CONNECT {\"server_id\":\"FUZZ\",\"name\":\"fuzz\",\"headers\":true}\r\n";
    send_all(fd, connect_line, sizeof connect_line - 1);
    send_all(fd, data, size);
    send_all(fd, "\r\nPING\r\n", 8);
    drain(fd, 20, 200);
    close(fd);
    /* the broker still answers */
    ember_msg *r = NULL;
    if (ember_conn_request(conn, "ping", "x", 1, 5000, &r) != EMBER_OK)
        abort();
    ember_msg_release(r);
    return 0;
}
