/* server: the broker's internal types shared by server.c, client.c, route.c, conn.c. */
#ifndef EMBER_SERVER_H
#define EMBER_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <uv.h>

#include "ember.h"
#include "msg.h"
#include "parser.h"
#include "sublist.h"
#include "util.h"

typedef struct ember_server server;
typedef struct client client;
typedef struct sub sub;
typedef struct account account; /* account.h */

enum { CK_TCP = 0, CK_INPROC = 1, CK_INTERNAL = 2, CK_LEAF = 3 };
/* TCP-based kinds (a uv_tcp_t, outbound buffers, the protocol parser) */
#define CK_IS_TCP(k) ((k) == CK_TCP || (k) == CK_LEAF)

/* A subscription of any kind of client. Refcounted: the sublist, match results,
 * queued deliveries and the owning client each hold a reference. */
struct sub {
    atomic_int refs;
    client *cl;             /* retained */
    char *subject;
    char *queue;            /* NULL when none */
    char *sid;              /* TCP: the client's sid */
    size_t sid_len;
    size_t subject_len;
    atomic_bool closed;     /* unsubscribed: deliver nothing more */
    atomic_llong max;       /* auto-unsubscribe after this many (0: none) */
    atomic_ullong delivered;  /* counted by other threads than the owner: read sub_delivered */
    void (*destroy)(sub *s); /* kind-specific free of the containing object */
    void (*unsubscribed)(sub *s); /* optional: called once when unsubscribed (any cause) */
    sub *tnext;             /* TCP: sid hash chain (loop thread only) */
    atomic_int qw;          /* leaf queue interest: the remote's member count (weight) */
    /* Deliveries counted by the owner thread (util.h) while there is no max; apart from
     * what consumers read */
    char pad_own_[64];
    _Atomic uint32_t dlv_owner;
    atomic_ullong delivered_own;
    atomic_ullong handed_own;  /* in-process: inline callbacks run by the owner */
    char pad_end_[64];
};

static inline unsigned long long sub_delivered(const sub *s)
{
    return atomic_load(&s->delivered) + atomic_load(&s->delivered_own);
}

void sub_retain(sub *s);
void sub_release(sub *s);
/* Remove from the sublist and mark closed; idempotent. */
void sub_unsubscribe(server *srv, sub *s);

/* A message as seen by the router: slices plus a lazily built block. */
typedef struct msgview {
    const char *subject;    /* the subject subscribers see (MSG line, ember_msg_subject) */
    size_t subject_len;
    /* When set, the message is routed (matched against subscriptions) on dsubj instead of
     * subject: JetStream deliveries travel to a deliver/inbox subject but show the stream
     * subject, as nats-server's c.pa.deliver. */
    const char *dsubj;
    size_t dsubj_len;
    const char *reply;      /* NULL when none */
    size_t reply_len;
    const char *hdr;        /* NULL when none */
    size_t hdr_len;
    const char *data;
    size_t data_len;
    ember_msg *blk;         /* built once on demand (msgview_block) */
    bool blk_owned;         /* the router made blk and releases it */
    bool blk_give;          /* set by server_route for the only delivery of the message:
                             * a queued delivery may take blk_owned's reference instead of
                             * a new one (and clears blk_owned) */
    bool skip_internal;     /* not to internal subscriptions (native JetStream publish:
                             * the stream already has it) */
    /* From a leaf link: no queue list (deliver to no queue group), or the queue groups
     * ("q1 q2 ...") the message may go to, as nats-server's c.pa.queues. */
    bool no_queues;
    const char *qlist;
    size_t qlist_len;
    /* accounts: how many imports the message crossed (account.c stops loops), and the
     * client that published it first (set by server_route; for no-responders) */
    uint8_t hops;
    const client *origin;
} msgview;

/* The 503 no-responders status for a request that reached nobody (as nats-server 2.12+,
 * with Nats-Subject), addressed to req's reply subject; hdr (cap bytes) holds the header. */
#define NO_RESPONDERS_HDR_CAP (64 + 4096)
void no_responders_view(msgview *out, char *hdr, size_t cap, const msgview *req);

/* The shared block for this message, built on first use. NULL on ENOMEM. */
ember_msg *msgview_block(msgview *mv);

struct client {
    atomic_int refs;
    server *srv;
    account *acc;           /* the account it works in (set before it subscribes/publishes) */
    uint64_t cid;
    int kind;
    pthread_mutex_t mu;     /* outbound buffers, closing */
    /* CONNECT options */
    bool verbose, pedantic, echo, headers, no_responders;
    int protocol;
    char *name, *lang, *version;
    bool connected;         /* CONNECT processed */
    atomic_bool closing;    /* no more deliveries */
    int close_reason;
    /* TCP outbound (mu) */
    bytebuf ob;             /* accumulating */
    bytebuf wb;             /* being written */
    bool writing;
    bool close_after_write;
    uint64_t write_start_ms;
    bool in_flush_list;
    client *flush_next;
    /* TCP, loop thread only */
    uv_tcp_t tcp;
    uv_write_t wreq;
    bool handle_closed;
    proto_parser *parser;
    sub **stab;             /* sid hash table */
    size_t stab_cap, nsubs;
    int pings_out;
    uint64_t last_in_ms, last_ping_ms, start_ms;
    char ip[64];
    int port;
    bool in_close_list;
    /* producer stall (loop thread): a TCP publisher whose subscriber's outbound is over
     * 3/4 of max_pending stops being read until that drains below 1/2, at most 1 s */
    bool stall_pending, stalled;
    uint64_t stall_start_ms;
    client **stalled_producers; /* (mu) publishers waiting on this client's outbound */
    size_t nstalled, stalled_cap;
    client *close_next;
    /* list of the server's clients (srv->mu) */
    client *prev, *next;
    /* stats: read them with cl_stat_* (in-process connections add owner copies) */
    atomic_ullong in_msgs, in_bytes, out_msgs, out_bytes;
    /* authentication (auth.c): the user matched, its permission state, the INFO nonce */
    const struct auth_user *auth_user;
    struct auth_perm *perm;
    struct auth_user *own_user; /* a JWT user's (owned), NULL otherwise */
    int64_t auth_expires;       /* unix seconds when its JWT expires; 0: never */
    char nonce[24];
    /* a bcrypt check running off the loop (loop thread): 1 pending, 2 passed, 3 failed;
     * what the client sent meanwhile waits in held */
    uint8_t bcrypt_state;
    bytebuf held;
    /* leaf-node link state (leaf.c), NULL for other kinds */
    struct leaf_link *leaf;
    /* TLS / WebSocket transport (xport.c), NULL for plain TCP */
    struct xport *xp;
    /* in-process */
    struct ember_conn *conn;
    atomic_int inflight;    /* deliveries into conn running now (conn.c), other threads */
    /* In-process, biased (util.h): the publishing side's owner thread and its copies of
     * in_msgs/in_bytes; the delivering side's owner thread, its copies of out_msgs/
     * out_bytes and its in-flight deliveries. Apart from the fields above: written by
     * one thread each without locked instructions. */
    char pad_pub_[64];
    _Atomic uint32_t pub_owner;
    atomic_ullong in_msgs_own, in_bytes_own;
    char pad_dlv_[64];
    _Atomic uint32_t dlv_owner;
    atomic_int inflight_own;
    atomic_ullong out_msgs_own, out_bytes_own;
    char pad_end_[64];
};

/* A statistic of a client: the shared copy plus the owner's (util.h). */
static inline unsigned long long cl_stat2(const atomic_ullong *shared, const atomic_ullong *own)
{
    return atomic_load_explicit(shared, memory_order_relaxed) +
           atomic_load_explicit(own, memory_order_relaxed);
}
#define cl_stat_in_msgs(c) cl_stat2(&(c)->in_msgs, &(c)->in_msgs_own)
#define cl_stat_in_bytes(c) cl_stat2(&(c)->in_bytes, &(c)->in_bytes_own)
#define cl_stat_out_msgs(c) cl_stat2(&(c)->out_msgs, &(c)->out_msgs_own)
#define cl_stat_out_bytes(c) cl_stat2(&(c)->out_bytes, &(c)->out_bytes_own)

void client_retain(client *c);
void client_release(client *c);

enum server_state { SS_NEW = 0, SS_RUNNING, SS_SHUTTING, SS_DONE };

struct ember_server {
    atomic_int refs;
    ember_server_options opts;          /* strings below are owned copies */
    char *o_host, *o_name, *o_user, *o_pass, *o_token, *o_store, *o_domain;
    char id[57];
    pthread_mutex_t log_mu;
    logger lg;
    sublist *sl;            /* the global account's (gacc->sl) */
    account *gacc;          /* "$G" (account.c) */
    account **accs;         /* every account, gacc first */
    size_t naccs;
    /* loop (owned by the server thread) */
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t async;
    uv_timer_t housekeeping;
    bool listening;
    pthread_t thread;
    bool thread_started;
    pthread_t shutdown_caller;
    /* state (mu) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state;
    bool ready, start_failed, joined, joining;
    char start_err[256];
    client *clients;
    /* cross-thread work for the loop (fmu) */
    pthread_mutex_t fmu;
    client *flush_head;
    client *close_head;
    bool loop_alive;        /* async handle usable (fmu) */
    atomic_bool shutdown_requested;
    int bound_port;
    char client_url[160];
    atomic_ullong next_cid;
    atomic_ullong nconns, total_conns, slow_consumers, nsubs;
    atomic_ullong closed_in_msgs, closed_in_bytes, closed_out_msgs, closed_out_bytes;
    char *read_buf;
    size_t read_buf_len;
    /* internal publisher (CK_INTERNAL; not in the client list) */
    client *sys;            /* the global account's internal client (gacc->sys) */
    struct js *js;          /* JetStream engine, NULL when disabled (js.h) */
    struct leaf_mgr *leaf;  /* leaf nodes (leaf.c), NULL when none is configured */
    struct auth_users *users; /* users (auth.c), NULL when none is configured */
    struct jwt_trust *trust;  /* operator mode (jwt.c), NULL when no operator is configured */
    struct auth_users *retired_users; /* replaced by reloads, freed with the server */
    struct reload_req *reload_next;   /* a reload for the loop to apply (fmu) */
    struct xport_srv *xs;   /* client TLS and the websocket listener (xport.c), or NULL */
    /* monitoring (monitor.c): the HTTP port and ember_server_monitor */
    struct monitor *mon;    /* set on the loop thread at start (mu), freed by destroy */
    char *o_http_host;      /* owned copy of opts.http_host */
    char *o_operator;       /* owned copy of opts.operator_jwt */
    /* owned copies of what is read after ember_server_new (/varz, reload); the host's
     * other pointers in opts are cleared once consumed (it may free them) */
    char *o_tls_cert, *o_tls_key, *o_tls_ca, *o_leaf_host, *o_ws_host;
};

/* A reload waiting for the loop thread (server.c ember_server_reload). */
struct reload_req {
    ember_server_options o;
    struct auth_users *users;
    /* TLS for client connections, made again from the (new or same) files */
    struct ssl_ctx_st *tls_ctx;
    char *tls_cert, *tls_key, *tls_ca;
    bool done;               /* (mu) */
};

/* logging through the server's logger (thread-safe) */
void srv_log(server *s, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool srv_log_on(server *s, int level);

/* Loop thread: listen on host:port (0: any free port) with cb, h->data = data. Returns 0
 * with *bound the bound port; UV_EINVAL when host is not an IP address (h untouched); or
 * the libuv error of bind/listen, h initialised then (*inited true: it must be closed). */
int srv_listen(server *s, uv_tcp_t *h, const char *host, int port, int backlog,
               uv_connection_cb cb, void *data, int *bound, bool *inited);

/* Is the calling thread the server's event-loop thread? */
bool srv_on_loop(server *s);

void server_retain(server *s);
void server_release(server *s);

/* Operator mode (client.c): authenticate c (TCP client or accepted leaf) with a user JWT
 * and its signature of c's nonce; sets its user, permissions, account and expiry. 0, or
 * -1 with the reason in why. Loop thread. */
int client_jwt_auth(client *c, const char *ujwt, const char *sig, char *why, size_t cap);
/* Must clients authenticate / does INFO carry a nonce to sign? (users, tokens, nkeys,
 * operator mode) */
bool server_auth_required(const server *s);
bool server_needs_nonce(const server *s);

/* Register/unregister a client in the server's list (counts connections). */
int server_add_client(server *s, client *c);
void server_remove_client(server *s, client *c);

/* Route a message from `from` to every matching subscription. Returns the number of
 * subscriptions it was handed to. Any thread. */
int server_route(server *s, client *from, msgview *mv);

/* TCP clients (client.c) */
void client_tcp_accept(server *s);
/* Accept a client on listener l (ws: the websocket listener). Loop thread. */
void client_accept_from(server *s, uv_stream_t *l, bool ws);
/* Loop thread: plaintext protocol bytes from c's peer, into the parser (xport.c). */
void client_input(client *c, char *p, size_t n);
/* Queue the INFO for a TCP client (xport.c: after a TLS or WebSocket handshake). */
void client_send_info(client *c);
/* Append a MSG/HMSG for sub to c's outbound buffer; false if not delivered. Any thread. */
bool client_tcp_deliver(client *c, sub *s, const msgview *mv);
/* Ask the loop to flush c's outbound (any thread). */
void client_schedule_flush(client *c);
/* Ask the loop to close c (any thread). */
void client_schedule_close(client *c, int reason);
/* Loop thread: flush and close what other threads asked for. */
void server_process_pending(server *s);
/* Loop thread: periodic checks (pings, write deadline, auth timeout). */
void client_tcp_housekeeping(client *c, uint64_t now_ms);
/* Loop thread: close now. */
void client_tcp_close(client *c, int reason);
/* Shared TCP machinery for other TCP-based kinds (leaf.c). */
/* A new client of `kind` with its uv_tcp_t initialised on the loop (not yet registered). */
client *client_tcp_alloc(server *s, int kind);
/* Loop thread: read the peer address of a connected c->tcp into c->ip/c->port. */
void client_tcp_peer(client *c);
/* Loop thread: start reading (ops go to the kind's handler) and flush what is queued. */
void client_tcp_begin(client *c);
/* Append raw protocol bytes to c's outbound and schedule a flush (any thread). */
void client_send(client *c, const char *p, size_t n);
/* Append several pieces as one unit (never interleaved with another thread's output);
 * false when closing, over max_pending (a slow consumer: closed) or out of memory. */
bool client_sendv(client *c, const struct iovec *v, int n);
/* Send "-ERR '<text>'" (any thread). */
void client_send_err(client *c, const char *text);
/* Send -ERR (text may be NULL) then close once written (loop thread). */
void client_err_close(client *c, const char *text, int reason);
/* Loop thread: flush c's outbound now. */
void client_flush_now(client *c);
/* The nonce of c's INFO, made on first use (loop thread). */
const char *client_nonce(client *c);
/* Credentials of a CONNECT (or an in-process connection) against the server's users,
 * single user or token (true when none is configured). *au: the user matched (users). */
bool server_credentials_ok(server *s, const char *user, const char *pass, const char *token,
                           const char *nkey, const char *sig, const char *nonce,
                           const struct auth_user **au);
/* The sid table (loop thread only): find / add a subscription by its sid. */
sub *client_stab_find(client *c, const char *sid, size_t n, sub ***link);
int client_stab_add(client *c, sub *s);
/* Loop thread: remove s from c's sid table (link from client_stab_find). */
void client_stab_unlink(client *c, sub **link);

enum close_reason {
    CR_CLIENT = 1, CR_SLOW_CONSUMER_PENDING, CR_SLOW_CONSUMER_DEADLINE, CR_PROTOCOL,
    CR_AUTH, CR_AUTH_TIMEOUT, CR_STALE, CR_MAX_PAYLOAD, CR_MAX_CONNECTIONS, CR_SHUTDOWN,
    CR_WRITE_ERROR, CR_READ_ERROR,
    CR_TLS_HANDSHAKE, /* "TLS Handshake Failure" */
    CR_AUTH_EXPIRED,  /* "Authentication Expired" */
};
const char *close_reason_text(int r);

/* Internal subscriptions (route.c): a C callback run in the publisher's thread (the
 * event loop for TCP publishers, the host's thread for in-process ones, any server thread
 * for internal publishes), with no server lock held. fn must not block for long; it may
 * publish (server_route) and subscribe. ud_free (may be NULL) is called once when the
 * subscription is freed, which is after the last delivery in progress has returned, so
 * ud stays valid for every call of fn. Returns NULL on ENOMEM. */
typedef void (*isub_fn)(void *ud, server *srv, const msgview *mv);
sub *server_isub(server *srv, const char *subject, const char *queue, isub_fn fn, void *ud,
                 void (*ud_free)(void *ud));
/* The same in the account of the internal client `as` (account.c acc_isub). */
sub *server_isub_in(server *srv, client *as, const char *subject, const char *queue, isub_fn fn,
                    void *ud, void (*ud_free)(void *ud));
/* Unsubscribe and drop the caller's reference (s may be NULL). */
void server_isub_close(server *srv, sub *s);
/* Route a message published by the server itself (JetStream replies and deliveries). */
int server_publish_internal(server *srv, msgview *mv);

/* in-process (conn.c) */
server *conn_server(struct ember_conn *c);
account *conn_account(struct ember_conn *c);
/* 0, or EMBER_EINVAL / EMBER_ECLOSED (with err_set) when c is not usable. */
int conn_check(struct ember_conn *c);
/* Publish a view from c (validates, counts, routes); *delivered may be NULL. */
int conn_publish_view(struct ember_conn *c, msgview *mv, int *delivered);
bool inproc_deliver(client *c, sub *s, msgview *mv);
void inproc_server_closing(client *c);
/* A reload removed its user: the in-process connection closes (server thread). */
void inproc_auth_revoked(client *c);

#endif
