/* browser_host: the C side of scripts/test-ws.sh. Starts an embedded Ember with a plain
 * websocket listener on a free loopback port, prints "PORT <n>" on stdout, then serves the
 * page in headless Chromium: when the page says "browser.ready" (after subscribing), a
 * message is published from C on "browser.hello"; "browser.done" ends the run.
 *
 *   browser_host [seconds]     exit 0 when the page confirmed, 1 on timeout or error
 *
 * Websocket compression is on: the run fails unless the browser negotiated
 * permessage-deflate (Chromium offers it), so the INFO and the published message (both
 * over nats-server's 64-byte threshold) reach the page compressed, and the page's frames
 * are inflated by the server.
 *
 * Everything is bounded by `seconds` (default 60). EMBER_WS_DEBUG=1 logs the server. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"

static atomic_int compressed; /* a browser connection negotiated compression */

static void on_log(void *ud, int level, const char *line)
{
    (void)ud;
    (void)level;
    if (strstr(line, "Websocket connection upgraded (browser) with compression"))
        atomic_store(&compressed, 1);
    if (getenv("EMBER_WS_DEBUG"))
        fprintf(stderr, "%s\n", line);
}

int main(int argc, char **argv)
{
    int secs = argc > 1 ? atoi(argv[1]) : 60;
    ember_server_options o;
    ember_server_options_init(&o);
    o.host = "127.0.0.1";
    o.dont_listen = true; /* browsers only: no NATS TCP port */
    o.ws_host = "127.0.0.1";
    o.ws_port = -1;
    o.ws_no_tls = true;
    o.ws_compression = true;
    ember_server *srv = NULL;
    if (ember_server_new(&srv, &o) != EMBER_OK) {
        fprintf(stderr, "browser_host: %s\n", ember_last_error());
        return 1;
    }
    ember_server_set_logger(srv, EMBER_LOG_DEBUG, on_log, NULL);
    if (ember_server_start(srv) != EMBER_OK || !ember_server_ready_for_connections(srv, 5000)) {
        fprintf(stderr, "browser_host: %s\n", ember_last_error());
        ember_server_free(srv);
        return 1;
    }
    ember_conn *c = NULL;
    ember_sub *sub = NULL;
    if (ember_conn_connect(&c, srv, NULL) != EMBER_OK ||
        ember_conn_subscribe(&sub, c, "browser.*", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) !=
            EMBER_OK) {
        fprintf(stderr, "browser_host: %s\n", ember_last_error());
        ember_server_free(srv);
        return 1;
    }
    printf("PORT %d\n", ember_server_websocket_port(srv));
    fflush(stdout);
    int rc = 1;
    for (int waited = 0; waited < secs * 10; waited++) {
        ember_msg *m = NULL;
        if (ember_sub_next_msg(sub, &m, 100) != EMBER_OK)
            continue;
        const char *subj = ember_msg_subject(m);
        if (!strcmp(subj, "browser.ready")) {
            const char *text = "hello from C, with enough text after it to be compressed "
                               "(over 64 bytes) .....................................";
            fprintf(stderr, "browser_host: the page subscribed; publishing \"%s\"\n", text);
            ember_conn_publish(c, "browser.hello", NULL, text, strlen(text));
        } else if (!strcmp(subj, "browser.done")) {
            fprintf(stderr, "browser_host: the page received it\n");
            rc = atomic_load(&compressed) ? 0 : 1;
            if (rc)
                fprintf(stderr, "browser_host: the browser did not negotiate compression\n");
            else
                fprintf(stderr, "browser_host: over permessage-deflate\n");
            ember_msg_release(m);
            break;
        }
        ember_msg_release(m);
    }
    if (rc)
        fprintf(stderr, "browser_host: no confirmation from the page within %d s\n", secs);
    ember_conn_close(c);
    ember_server_free(srv);
    return rc;
}
