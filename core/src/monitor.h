/* monitor: nats-server's monitoring endpoints (/varz, /connz, /subsz, /jsz, /leafz,
 * /healthz and the "/" index) over a small HTTP/1.1 server on the server's event loop
 * (options http_host / http_port), and the same JSON without a port through
 * ember_server_monitor (ember.h). The request parser is http.c.
 *
 * Threads: every document is built on the event-loop thread, where TCP clients' state
 * (sid tables, outbound buffers) and the JetStream engine's lifetime are stable.
 * ember_server_monitor from another thread queues a call to the loop and waits for it. */
#ifndef EMBER_MONITOR_H
#define EMBER_MONITOR_H

#include <stdbool.h>
#include <stddef.h>

#include "server.h"

/* Server start (loop thread, before the client listener): make the monitor, and listen
 * on the monitoring port when http_port != 0. 0, or -1 with err filled (nats-server's
 * "can't listen to the monitor port: ..."). */
int monitor_start(server *s, char *err, size_t errlen);
/* Shutdown (loop thread): stop listening, close HTTP connections, fail waiting calls
 * with EMBER_ECLOSED. Idempotent. */
void monitor_stop(server *s);
/* server_destroy: free what monitor_start allocated (any thread, once). */
void monitor_free(server *s);

/* One endpoint answer (loop thread): status 200 / 400 / 404 / 503 ..., a malloc'd body
 * (JSON, text or HTML by ctype), http true when serving the port (/healthz then drops
 * "status_code"; "/" is HTML). Returns 0, or EMBER_ENOMEM. */
typedef struct mon_answer {
    int status;
    const char *ctype;
    char *body;
    size_t len;
} mon_answer;
int monitor_answer(server *s, const char *path, size_t path_len, const char *query,
                   size_t query_len, bool http, mon_answer *out);

#endif
