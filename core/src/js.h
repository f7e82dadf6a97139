/* js: the JetStream engine's shared core (js_core.c): the engine object, its thread and
 * timers, the outbox, API errors and JSON helpers. Streams live in js_stream.c
 * (js_stream.h), consumers in js_consumer.c (js_consumer.h), the $JS.API subject
 * dispatch in js_api.c.
 *
 * Threads and locks
 *  - API requests, acks, flow-control replies and stream publishes are handled in the
 *    publisher's thread (internal subscriptions, server.h server_isub): the event loop
 *    for TCP clients, the host's thread for in-process connections.
 *  - js->mu (the engine lock) guards the stream table, every consumer and all consumer
 *    state, and stream config changes. API handlers and the JS thread take it.
 *  - jstream->mu guards a stream's publish path (dedupe window, expectations, rollup,
 *    the sequence between store_append and the ack). The publish path does NOT take
 *    js->mu (except for interest retention, see js_stream.c); afterwards it calls
 *    js_kick_stream() so the JS thread delivers the new messages to consumers.
 *  - Lock order: js->mu, then jstream->mu, then the store's own lock. Never route a
 *    message (server_route / server_publish_internal) while holding js->mu or a
 *    jstream->mu: queue it in a js_outbox and js_outbox_send() after unlocking. Routing
 *    can run host callbacks (INLINE delivery) that publish back into JetStream.
 *  - The JS thread (one per server) wakes when kicked or when the earliest timer is due:
 *    it delivers new stream messages to consumers (js_consumers_deliver), runs consumer
 *    timers (pull expiry, heartbeats, redelivery, inactive cleanup: js_consumers_tick)
 *    and stream expiry (js_streams_tick), all under js->mu, then sends the outbox.
 *  - PubAcks: the store calls the durable callback (store_when_durable) on its flusher
 *    thread (file) or at once (memory); the callback routes the ack. A callback holds
 *    no lock.
 */
#ifndef EMBER_JS_H
#define EMBER_JS_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "server.h"
#include "store.h"

/* The API level of a 2.11 server (nats-server JSApiLevel), sent in INFO and $JS.API.INFO. */
#define JS_API_LEVEL 1

/* ------------------------------------------------------------------ API errors */

/* JSE_<name> for every nats-server JetStream API error (generated table, see
 * scripts/gen-js-errors.py), e.g. JSE_StreamNotFoundErr (404, 10059, "stream not found"). */
enum {
#define JSE(name, code, err_code, desc) JSE_##name,
#include "js_errors.inc"
#undef JSE
    JSE__COUNT
};
typedef struct js_err_info {
    int code;          /* HTTP-like: 400, 404, 500, 503 */
    int err_code;      /* 10059 */
    const char *desc;  /* template: "wrong last sequence: {seq}" */
} js_err_info;
const js_err_info *js_err(int jse);
/* The description with each {placeholder} replaced, in order, by the string arguments
 * (a NULL-terminated list). Writes into buf (always NUL-terminated). */
const char *js_err_text(char *buf, size_t cap, int jse, ...);
const char *js_err_vtext(char *buf, size_t cap, int jse, va_list ap);
/* {"type":type,"error":{"code":..,"err_code":..,"description":..}}; args fill the
 * placeholders (NULL-terminated). type may be NULL (publish errors carry no type). */
cJSON *js_api_error(const char *type, int jse, ...);
/* Add "error":{...} to an existing response object (args NULL-terminated). */
void js_add_error(cJSON *resp, int jse, ...);

/* Response type strings: "io.nats.jetstream.api.v1." suffix. */
#define JS_TYPE(x) "io.nats.jetstream.api.v1." x

/* ------------------------------------------------------------------ outbox */

typedef struct js_out js_out;
typedef struct js_outbox {
    js_out *head;
    js_out **tail;
} js_outbox;

void js_outbox_init(js_outbox *ob);
/* Queue one message (everything copied). Routed on dsubj when not NULL (the
 * subscription's subject), shown as subj. reply, hdr may be NULL. ENOMEM drops it. */
void js_out_msg(js_outbox *ob, const char *dsubj, const char *subj, size_t subj_len,
                const char *reply, const char *hdr, size_t hdr_len, const void *data,
                size_t data_len);
/* Queue a JSON reply to `to` (no-op when to is NULL); takes ownership of resp. */
void js_out_json(js_outbox *ob, const char *to, cJSON *resp);
/* Queue a status message to `to`: "NATS/1.0 <code> <desc>\r\n" + extra header lines
 * (each "Key: Value\r\n", may be NULL) + "\r\n", empty body, optional reply. */
void js_out_status(js_outbox *ob, const char *to, int code, const char *desc,
                   const char *extra_hdrs, const char *reply);
/* Route every queued message (from the server's internal client) and free them.
 * Call with no lock held. */
void js_outbox_send(struct js *j, js_outbox *ob);
void js_outbox_discard(js_outbox *ob);
/* Unlink the first message queued for `to` and return a malloc'd NUL-terminated copy of
 * its data (*len its length), or NULL when none. */
char *js_outbox_take(js_outbox *ob, const char *to, size_t *len);
/* Is a JSON reply with an "error" member queued for `to`? (API error counting) */
bool js_outbox_has_error(const js_outbox *ob, const char *to, size_t to_len);

/* ------------------------------------------------------------------ the engine */

typedef struct jstream jstream;
typedef struct jconsumer jconsumer;

typedef struct js {
    server *srv;
    struct account *acc;       /* the account whose JetStream this is (account.h) */
    pthread_mutex_t mu;        /* the engine lock (see above) */
    pthread_cond_t cv;         /* the JS thread waits here */
    pthread_t thread;
    bool thread_started;
    bool stop;                 /* (mu) */
    atomic_bool kicked;        /* work for the JS thread */
    jstream *streams;          /* (mu) singly linked, in creation order */
    size_t nstreams;           /* (mu) */
    char *store_dir;           /* <store_dir>/jetstream ; streams in <..>/$G/streams/<name> */
    char *streams_dir;         /* <store_dir>/jetstream/$G/streams */
    char *domain;              /* NULL when none */
    int64_t max_memory, max_store;
    int64_t sync_interval_ms;
    int64_t mem_used, store_used; /* reserved by stream configs (max_bytes) (mu) */
    /* bytes stored in memory / file streams: recounted by js_streams_tick, raised by
     * every append in between (the publish path's account limit check) */
    atomic_llong mem_bytes, store_bytes;
    sub *subs[8];              /* $JS.API.>, $JS.<domain>.API.>, $JS.ACK.>, $JS.FC.> */
    size_t nsubs;
    atomic_ullong api_total, api_errors;
} js;

/* Start the engine for a server (server thread, before listening): makes the store
 * directory, recovers streams and consumers, subscribes the API. 0 or -1 with a
 * message in err. */
int js_start(server *srv, char *err, size_t errcap);
/* Stop: unsubscribe, stop the thread, flush and close every stream. Idempotent. */
void js_stop(server *srv);
/* A JetStream domain name is valid (nats-server: no spaces, dots, wildcards). 0 or -1. */
int js_valid_domain(const char *d);

/* Ask the JS thread to run now (any thread, any locks; cheap when already kicked). */
void js_kick(js *j);
/* New messages in s: mark it and kick. */
void js_kick_stream(jstream *s);

/* js_api.c: handle one $JS.API request (any prefix form) as the wire does, replies into
 * ob. js_api_call runs one for the native API and returns the JSON reply (malloc'd) that
 * the wire would have sent; EMBER_ENOTFOUND when the request got no reply. */
void js_api_handle(js *j, const msgview *mv, js_outbox *ob);
int js_api_call(js *j, const char *subject, const char *body, char **reply, size_t *reply_len);

/* Monitoring (/jsz, /varz, /healthz; monitor.c): read-only views of the engine. */
typedef struct js_usage {
    uint64_t memory, storage;                   /* bytes stored in memory / file streams */
    uint64_t reserved_memory, reserved_storage; /* reserved by stream max_bytes */
    uint64_t streams, consumers, messages, bytes;
    uint64_t api_total, api_errors;
    int64_t max_memory, max_store, sync_interval_ms;
    const char *store_dir, *domain;             /* the engine's strings (valid while it runs) */
} js_usage;
/* Fill u (takes js->mu). Any thread while the engine runs. */
void js_get_usage(js *j, js_usage *u);
/* Does stream `name` exist? (takes js->mu) */
bool js_has_stream(js *j, const char *name);
/* Run one read-only API request (STREAM.LIST, CONSUMER.LIST.<stream>) for monitoring,
 * as js_api_call but not counted in api.total / api.errors, and only for requests that
 * reply at once: the reply JSON (malloc'd, NUL-terminated, *len its length) or NULL.
 * No lock held by the caller. */
char *js_api_peek(js *j, const char *subject, const char *body, size_t *len);

/* Clocks: wall-clock ns (message timestamps, JSON times), monotonic ns (timers). */
int64_t js_now_wall(void);
int64_t js_now_mono(void);

/* ------------------------------------------------------------------ JSON helpers */

/* RFC 3339 UTC with nanoseconds as Go's time.Time marshals it
 * ("2026-11-28T12:00:00.123456789Z", trailing zeros of the fraction dropped; ts 0 ->
 * "0001-01-01T00:00:00Z"). buf >= 40 bytes. */
const char *js_time_str(char *buf, size_t cap, int64_t ts_ns);
/* Parse an RFC 3339 time into ns since the epoch; -1 on error. */
int js_time_parse(const char *s, int64_t *out);
/* Add a number that may exceed 2^53 exactly (cJSON stores doubles): written as a raw
 * integer literal. */
void js_add_u64(cJSON *o, const char *key, uint64_t v);
void js_add_i64(cJSON *o, const char *key, int64_t v);
/* Read an integer member exactly (from the raw text when cJSON's double loses digits is
 * not an issue for the values clients send; accepts numbers only). Returns false when
 * missing; *bad set when present but not an integer. */
bool js_get_i64(const cJSON *o, const char *key, int64_t *out, bool *bad);
bool js_get_u64(const cJSON *o, const char *key, uint64_t *out, bool *bad);
bool js_get_bool(const cJSON *o, const char *key, bool *out, bool *bad);
/* String member or NULL (borrowed); *bad when present but not a string (null is absent). */
const char *js_get_str(const cJSON *o, const char *key, bool *bad);
/* Parse a request body: empty -> an empty object. NULL on invalid JSON or non-object. */
cJSON *js_parse_body(const char *data, size_t len);

/* Go's encoding/json syntax error for a malformed document ("invalid character 'b'
 * looking for beginning of object key string", "unexpected end of JSON input"), which
 * nats-server sends back: true and the text in err when d is not one JSON value. */
bool js_json_syntax_error(const char *d, size_t n, char *err, size_t cap);

/* Write dir/name through a temporary file and rename (fdatasync + directory fsync when
 * sync). 0 or -1. Read a whole file (at most 64 MiB), malloc'd and NUL-terminated, *len
 * its length; NULL on error. */
int js_write_file_atomic(const char *dir, const char *name, const char *data, size_t len,
                         bool sync);
char *js_read_file(const char *path, size_t *len);

/* Base64 (standard, padded) for MSG.GET hdrs/data. Returns malloc'd NUL-terminated text. */
char *js_b64_encode(const void *p, size_t n);
/* Decode standard or URL-safe base64 (padding optional). malloc'd; *n gets the length. */
void *js_b64_decode(const char *s, size_t *n);

/* Header access on a raw NATS header block ("NATS/1.0..\r\nK: V\r\n\r\n"): the first
 * value of key (case-sensitive, then case-insensitive as nats-server's getHeader), as a
 * slice into hdr. false when absent. */
bool js_hdr_get(const char *hdr, size_t hdr_len, const char *key, const char **val,
                size_t *val_len);

/* Subject helpers: token count, the i-th token (0-based) as a slice. */
int js_subj_tokens(const char *s, size_t len, const char **tok, size_t *toklen, int max);
/* Does literal subject subj match filter (wildcards)? NULL / ">" match everything. */
bool js_subj_match(const char *filter, const char *subj, size_t subj_len);
/* Do two subject filters overlap (some literal subject matches both)? */
bool js_subj_overlap(const char *a, const char *b);
/* Is a subscription subject valid (tokens non-empty, wildcards whole tokens, '>' last)? */
bool js_subj_valid(const char *s, bool allow_wildcards);
/* nats-server stream/consumer name rules: non-empty, <= 255, no space . * > / \ or
 * control characters. */
bool js_name_valid(const char *n);
/* KV and object store bucket names: letters, digits, '-' and '_', 1 to 200 bytes. */
bool js_bucket_name_valid(const char *b);

#endif
