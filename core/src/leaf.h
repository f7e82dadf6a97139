/* leaf: leaf-node links (leaf.c). Ember as a leaf (solicited remotes) and as a hub
 * (accepted leaf connections on the leafnodes port), speaking nats-server's leaf protocol:
 * INFO/CONNECT, LS+/LS- interest with refcounts and queue weights, LMSG/HMSG, $LDS loop
 * detection, JetStream domain mappings. */
#ifndef EMBER_LEAF_H
#define EMBER_LEAF_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "server.h"

/* Validate the leaf options of ember_server_new (err_set and -1 when wrong). */
int leaf_check_options(const ember_server_options *o);
/* ember_server_new: copy the leaf options; allocates s->leaf only when leafs are
 * configured. 0, or -1 on ENOMEM. */
int leaf_init(server *s, const ember_server_options *o);

/* Server start (loop thread, before Server is ready): listen on the leafnodes port and
 * start dialing the remotes. 0, or -1 with err filled. */
int leaf_start(server *s, char *err, size_t errlen);
/* Shutdown (loop thread): stop reconnect timers, close the listener and the links. */
void leaf_stop(server *s);
/* Free what leaf_start allocated (server_destroy; any thread, once). */
void leaf_free(server *s);

/* A subscription of a non-leaf client entered (delta +1) or left (-1) the sublist:
 * update the interest advertised to the leaf links. Cheap when no leaf is configured.
 * Any thread, no server lock held. */
void leaf_sub_changed(server *s, sub *x, int delta);

/* One leaf link's share of a routed message (route.c gathers them): the plain interest
 * and the queue groups chosen on that link. */
typedef struct leaf_target {
    client *c;
    bool plain;
    size_t nq;
    const char *q[PROTO_MAX_QUEUES];
} leaf_target;
/* Send a routed message over a leaf link as LMSG/HMSG (any thread). false when dropped. */
bool leaf_send(server *s, const leaf_target *t, const msgview *mv);

/* client.c hooks for CK_LEAF clients: the op handler (loop thread), the close hook
 * (loop thread, from client_tcp_close), housekeeping before the handshake completed, and
 * the free of c->leaf when the client's last reference goes. */
int leaf_on_op(void *ctx, const proto_op *op);
void leaf_closed(client *c, int reason);
void leaf_housekeeping_unconnected(client *c, uint64_t now_ms);
void leaf_link_free(client *c);

/* Monitoring (/leafz): the number of leaf links and, when leafs is not NULL, one object
 * per link appended to it with nats-server's /leafz field names. Any thread. */
int leaf_count(server *s);
void leaf_fill_leafz(server *s, cJSON *leafs, bool with_subs);

#endif
