/* leaf_demo: DEMO.md steps 6-10 from C, against a local hub.
 *
 *   example-leaf_demo <hub leafnodes URL> <hub client URL> [store dir]
 *   e.g. example-leaf_demo nats-leaf://127.0.0.1:7422 nats://127.0.0.1:4222
 *
 * The hub is any NATS server with JetStream and a leafnodes port (scripts/demo-leaf.sh
 * starts Debian's nats-server as one). The application embeds Ember with JetStream in the
 * domain "embedded" (step 6) and joins the hub as a leaf (step 7); a client of the hub
 * (the official C client, libnats) then reaches the in-process responder (step 8),
 * manages the embedded JetStream through $JS.embedded.API (step 9) and mirrors the
 * embedded stream into the hub (step 10).
 */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ember.h"

static void respond_hello(void *conn, ember_sub *sub, ember_msg *m)
{
    (void)sub;
    ember_msg_respond(conn, m, "hello there", 11);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A request from the hub's client, retried while interest crosses the link. */
static natsMsg *hub_request(natsConnection *nc, const char *subj, const char *data)
{
    natsMsg *m = NULL;
    for (int i = 0; i < 50; i++) {
        if (natsConnection_RequestString(&m, nc, subj, data, 1000) == NATS_OK)
            return m;
        sleep_ms(100);
    }
    return NULL;
}

static long long json_int(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p ? atoll(p + strlen(key)) : -1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s <hub leafnodes URL> <hub client URL> [store dir]\n", argv[0]);
        return 2;
    }
    char store[256];
    if (argc > 3)
        snprintf(store, sizeof store, "%s", argv[3]);
    else {
        snprintf(store, sizeof store, "/tmp/ember-leaf-demo-XXXXXX");
        if (!mkdtemp(store)) {
            perror("mkdtemp");
            return 1;
        }
    }

    /* Step 6: JetStream inside the application, in the domain "embedded". */
    ember_server_options o;
    ember_server_options_init(&o);
    o.server_name = "embedded-app";
    o.dont_listen = true; /* the application itself talks in-process */
    o.jetstream = true;
    o.store_dir = store;
    o.jetstream_domain = "embedded";
    /* Step 7: a leaf-node remote pointing at the hub. */
    ember_leaf_remote remote = {0};
    remote.urls = argv[1];
    o.leaf_remotes = &remote;
    o.leaf_remotes_count = 1;
    ember_server *srv;
    if (ember_server_new(&srv, &o) != EMBER_OK) {
        fprintf(stderr, "server: %s\n", ember_last_error());
        return 1;
    }
    ember_server_start(srv);
    if (!ember_server_ready_for_connections(srv, 5000)) {
        fprintf(stderr, "server not ready: %s\n", ember_last_error());
        return 1;
    }
    for (int i = 0; i < 100 && ember_server_leafnode_count(srv) == 0; i++)
        sleep_ms(50);
    if (ember_server_leafnode_count(srv) == 0) {
        fprintf(stderr, "the leaf link to %s did not come up\n", argv[1]);
        return 1;
    }
    printf("step 7: leaf link up to %s\n", argv[1]);

    ember_conn *conn;
    ember_conn_connect(&conn, srv, NULL);
    ember_sub *hello;
    ember_conn_subscribe(&hello, conn, "hello.world", NULL, EMBER_DELIVER_DISPATCH, respond_hello,
                         conn, NULL);

    /* The hub's side: a client of the hub (the official C client). */
    natsConnection *nc = NULL;
    if (natsConnection_ConnectTo(&nc, argv[2]) != NATS_OK) {
        fprintf(stderr, "cannot connect to the hub at %s\n", argv[2]);
        return 1;
    }

    /* Step 8: reach in from the hub. */
    natsMsg *m = hub_request(nc, "hello.world", "hi");
    printf("step 8: the hub's request to hello.world got: %s\n", m ? natsMsg_GetData(m) : "(nothing)");
    int ok = m && !strcmp(natsMsg_GetData(m), "hello there");
    natsMsg_Destroy(m);

    /* Step 9: manage the embedded JetStream from the hub. */
    m = hub_request(nc, "$JS.embedded.API.STREAM.NAMES", "");
    printf("step 9: streams in the embedded domain: %s\n", m ? natsMsg_GetData(m) : "(no answer)");
    natsMsg_Destroy(m);
    m = hub_request(nc, "$JS.embedded.API.STREAM.CREATE.events",
                    "{\"name\":\"events\",\"subjects\":[\"events.>\"]}");
    natsMsg_Destroy(m);
    /* the first publish as a request: its PubAck says the subject reaches the stream */
    m = hub_request(nc, "events.123", "event 1");
    natsMsg_Destroy(m);
    for (int i = 2; i <= 100; i++)
        natsConnection_PublishString(nc, "events.123", "event");
    natsConnection_Flush(nc);
    ember_stream_info si = {0};
    for (int i = 0; i < 100; i++) {
        ember_js_stream_info(conn, "events", &si);
        if (si.msgs >= 100)
            break;
        sleep_ms(50);
    }
    printf("step 9: the embedded stream \"events\" holds %llu messages\n",
           (unsigned long long)si.msgs);
    ok = ok && si.msgs == 100;

    /* Step 10: back up to the cloud: a hub stream mirroring the embedded one. */
    m = hub_request(nc, "$JS.API.STREAM.CREATE.events_mirror",
                    "{\"name\":\"events_mirror\",\"mirror\":{\"name\":\"events\","
                    "\"external\":{\"api\":\"$JS.embedded.API\",\"deliver\":\"\"}}}");
    natsMsg_Destroy(m);
    long long mirrored = -1;
    for (int i = 0; i < 150; i++) {
        m = hub_request(nc, "$JS.API.STREAM.INFO.events_mirror", "");
        mirrored = m ? json_int(natsMsg_GetData(m), "\"messages\":") : -1;
        natsMsg_Destroy(m);
        if (mirrored == 100)
            break;
        sleep_ms(100);
    }
    printf("step 10: the hub's mirror \"events_mirror\" holds %lld messages\n", mirrored);
    ok = ok && mirrored == 100;

    natsConnection_Destroy(nc);
    ember_conn_close(conn);
    ember_server_shutdown(srv);
    ember_server_free(srv);
    printf("%s\n", ok ? "leaf demo: all steps done" : "leaf demo: FAILED");
    return ok ? 0 : 1;
}
