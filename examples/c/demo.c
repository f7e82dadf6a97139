/* demo: DEMO.md steps 1-5 from C.
 *
 *   example-demo                 embed a broker on a free port, answer hello.world,
 *                                ask it in-process and over TCP, measure both, exit
 *   example-demo --port 4222     the classic port
 *   example-demo --dont-listen   no client port: TCP fails, in-process works
 *   example-demo --quiet         no server log lines
 *   example-demo --wait          keep running until SIGINT/SIGTERM (then try
 *                                `nats req hello.world hi` or any NATS client)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ember.h"

/* Step 2: the service. INLINE: runs in the publisher's thread (for TCP publishers, the
 * server's loop thread); it must not block. */
static void hello(void *userdata, ember_sub *sub, ember_msg *msg)
{
    ember_conn *conn = userdata;
    ember_msg_respond(conn, msg, "hello there", 11);
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* A minimal NATS client over TCP, enough for a request loop: shows that any NATS
 * client reaches the embedded broker. Returns the mean µs per request, or -1. */
static double tcp_requests(const char *url, int n)
{
    int port = 0;
    if (!url || sscanf(url, "nats://127.0.0.1:%d", &port) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char buf[4096];
    if (read(fd, buf, sizeof buf) <= 0) { /* INFO */
        close(fd);
        return -1;
    }
    const char *hs = "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB _INBOX.demo 1\r\n";
    if (write(fd, hs, strlen(hs)) < 0) {
        close(fd);
        return -1;
    }
    const char *req = "PUB hello.world _INBOX.demo 2\r\nhi\r\n";
    double t0 = now_us();
    for (int i = 0; i < n; i++) {
        if (write(fd, req, strlen(req)) < 0)
            break;
        /* read until the reply "MSG _INBOX.demo 1 11\r\nhello there\r\n" is complete */
        size_t got = 0;
        while (!(got >= 2 && strstr(buf, "hello there\r\n"))) {
            ssize_t r = read(fd, buf + got, sizeof buf - 1 - got);
            if (r <= 0) {
                close(fd);
                return -1;
            }
            got += (size_t)r;
            buf[got] = 0;
        }
        if (i == 0 && n == 1)
            printf("TCP client got: %.*s\n", 11, strstr(buf, "hello there"));
        buf[0] = 0;
    }
    double us = (now_us() - t0) / n;
    close(fd);
    return us;
}

int main(int argc, char **argv)
{
    int port = -1;
    bool dont_listen = false, quiet = false, wait = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dont-listen"))
            dont_listen = true;
        else if (!strcmp(argv[i], "--quiet"))
            quiet = true;
        else if (!strcmp(argv[i], "--wait"))
            wait = true;
        else {
            fprintf(stderr, "usage: %s [--port N] [--dont-listen] [--quiet] [--wait]\n", argv[0]);
            return 2;
        }
    }

    /* Step 1: embed. Options start from nats-server's defaults. */
    ember_server_options opts;
    ember_server_options_init(&opts);
    opts.port = port; /* -1: any free port */
    opts.dont_listen = dont_listen;
    ember_server *srv;
    if (ember_server_new(&srv, &opts) != EMBER_OK) {
        fprintf(stderr, "server: %s\n", ember_last_error());
        return 1;
    }
    /* Step 3: logging is off by default; one call turns on nats-server style lines. */
    if (!quiet)
        ember_server_log_to_stderr(srv, EMBER_LOG_INFO);
    ember_server_start(srv);
    if (!ember_server_ready_for_connections(srv, 5000)) {
        fprintf(stderr, "server not ready: %s\n", ember_last_error());
        ember_server_free(srv);
        return 1;
    }
    const char *url = ember_server_client_url(srv);
    printf("server ready, client URL: %s\n", url ? url : "(none: dont_listen)");

    /* Step 4: an in-process connection, no socket involved. */
    ember_conn *conn;
    if (ember_conn_connect(&conn, srv, NULL) != EMBER_OK) {
        fprintf(stderr, "connect: %s\n", ember_last_error());
        return 1;
    }
    /* Step 2: a tiny microservice. */
    ember_conn_subscribe(NULL, conn, "hello.world", NULL, EMBER_DELIVER_INLINE, hello, conn, NULL);

    ember_msg *reply = NULL;
    if (ember_conn_request(conn, "hello.world", "hi", 2, 1000, &reply) == EMBER_OK) {
        printf("in-process request got: %s\n", (const char *)ember_msg_data(reply, NULL));
        ember_msg_release(reply);
    }
    /* An outside client over TCP. */
    if (dont_listen) {
        printf("TCP client: no port to connect to (dont_listen), as expected\n");
    } else if (tcp_requests(url, 1) < 0) {
        printf("TCP client failed\n");
    }

    /* Step 5: measure: synchronous request/reply, in-process vs loopback. */
    int n = 20000;
    double t0 = now_us();
    for (int i = 0; i < n; i++) {
        ember_conn_request(conn, "hello.world", "hi", 2, 1000, &reply);
        ember_msg_release(reply);
    }
    double inproc = (now_us() - t0) / n;
    printf("request/reply in-process: %.3f us\n", inproc);
    if (!dont_listen) {
        double tcp = tcp_requests(url, 5000);
        if (tcp > 0)
            printf("request/reply over loopback TCP: %.3f us (in-process is %.0fx faster)\n", tcp,
                   tcp / inproc);
    }

    if (wait) {
        printf("waiting for SIGINT/SIGTERM ...\n");
        fflush(stdout);
        ember_server_wait_for_shutdown(srv, true);
    }
    ember_conn_close(conn);
    ember_server_shutdown(srv);
    ember_server_free(srv);
    return 0;
}
