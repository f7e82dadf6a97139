/* js_stream: JetStream streams (js_stream.c): config parse/validate/defaults/echo, the
 * stream table, create/update/delete/purge/info/names/list, message get/delete, direct
 * get, the publish path (PubAck after the store reports the message durable, dedupe,
 * expectation headers, rollup, per-message TTL, limits) and recovery from disk.
 * Locks and threads: see js.h.
 *
 * On disk (file streams): <streams_dir>/<name>/meta.json (the config as echoed, without
 * the dynamic metadata, and the creation time), <..>/msgs/ (the store), <..>/obs/
 * (consumers, js_consumer.c) and <..>/sources.json (how far each source was taken). A
 * deleted stream's directory is first renamed to <streams_dir>/.trash-<name>-<nuid> and
 * removed once its store is closed; recovery removes leftovers of that kind. Memory
 * streams live in memory only and are not recovered, as in nats-server. */
#ifndef EMBER_JS_STREAM_H
#define EMBER_JS_STREAM_H

#include "js.h"

typedef enum { JS_RET_LIMITS = 0, JS_RET_INTEREST, JS_RET_WORKQUEUE } js_retention;

typedef struct js_subject_transform {
    char *src, *dest;
} js_subject_transform;

typedef struct js_republish {
    char *src, *dest;
    bool headers_only;
} js_republish;

typedef struct js_stream_source {
    char *name;
    uint64_t opt_start_seq;
    int64_t opt_start_time_ns;     /* 0: none */
    char *filter_subject;          /* NULL: none */
    js_subject_transform *transforms;
    size_t ntransforms;
    char *external_api, *external_deliver; /* NULL: local */
} js_stream_source;

/* A stream configuration as nats-server's StreamConfig, defaults filled (the echo). */
typedef struct js_stream_cfg {
    char *name;
    char *description;             /* NULL: none */
    char **subjects;
    size_t nsubjects;
    js_retention retention;
    int64_t max_consumers;         /* -1 unlimited */
    int64_t max_msgs;              /* -1 */
    int64_t max_bytes;             /* -1 */
    int64_t max_age_ns;            /* 0 unlimited */
    int64_t max_msgs_per_subject;  /* -1 */
    int32_t max_msg_size;          /* -1 */
    store_discard discard;
    bool discard_new_per_subject;
    store_kind storage;
    int num_replicas;              /* 1 */
    bool no_ack;
    int64_t duplicate_window_ns;   /* 2 min, or max_age when smaller */
    uint64_t first_seq;
    bool allow_direct, mirror_direct, sealed, deny_delete, deny_purge, allow_rollup_hdrs;
    bool allow_msg_ttl;
    int64_t subject_delete_marker_ttl_ns;
    js_subject_transform *subject_transform; /* NULL: none */
    js_republish *republish;       /* NULL: none */
    js_stream_source *mirror;      /* NULL: none */
    js_stream_source *sources;
    size_t nsources;
    char *compression;             /* "none" */
    cJSON *placement;              /* NULL: none (echoed as given) */
    cJSON *metadata;               /* NULL: none */
    int64_t consumer_inactive_threshold_ns; /* consumer_limits */
    int64_t consumer_max_ack_pending;
} js_stream_cfg;

struct jstream {
    atomic_int refs;
    js *j;
    pthread_mutex_t mu;            /* the publish path (js.h) */
    char *name;
    js_stream_cfg cfg;             /* changed under js->mu + mu; read under either */
    store *st;
    char *dir;                     /* file streams: <streams_dir>/<name>; NULL for memory */
    int64_t created_ns;            /* wall clock */
    jconsumer *consumers;          /* (js->mu) owned by js_consumer.c */
    size_t nconsumers;             /* (js->mu) */
    atomic_bool dirty;             /* new messages not yet seen by the JS thread */
    atomic_bool kick_wanted;       /* set by the JS thread: consumers or sources exist, so
                                    * a publish wakes it (else dirty waits for its round) */
    bool deleted;                  /* (js->mu and mu) */
    jstream *next;                 /* (js->mu) js->streams list */
    struct jstream_priv *priv;     /* js_stream.c's own state (dedupe, subs, ...) */
};

void js_stream_retain(jstream *s);
void js_stream_release(jstream *s);
/* The stream `name` of c's server, retained (js_stream_release): EMBER_ESTATE without
 * JetStream, EMBER_ENOTFOUND with `missing` as the text (NULL: nats-server's "stream not
 * found (10059)"). Any thread, no lock held. (js_native.c) */
int js_conn_stream(struct ember_conn *c, const char *name, const char *missing, jstream **out);
/* ember_js_publish_async with the completion reduced to (status, sequence): fn gets the
 * stored sequence (0 on an error). For ember_kv_put_async, whose callback has this shape. */
int js_publish_async_seq(struct ember_conn *c, ember_msg *m, ember_kv_put_fn fn, void *ud);
/* js->mu held. NULL when there is no such stream. No reference taken. */
jstream *js_stream_lookup(js *j, const char *name);

/* The API handlers (js_api.c dispatches; each takes js->mu itself and queues its reply
 * in ob). toks are the subject tokens after "$JS.API." (or "$JS.<domain>.API."), e.g.
 * {"STREAM","CREATE","ORDERS"}; mv is the request. */
void js_api_stream(js *j, const char **toks, const size_t *toklen, int ntoks,
                   const msgview *mv, js_outbox *ob);
/* $JS.API.DIRECT.GET.<stream>[.<subject...>]: toks as above. */
void js_api_direct_get(js *j, const char **toks, const size_t *toklen, int ntoks,
                       const msgview *mv, js_outbox *ob);

/* Publish into a stream (the wire path's internal subscription and the native API share
 * it). Result in a js_puback given to fn (on the store's flusher thread once durable, or
 * in the caller's thread for memory streams, errors and duplicates), with no lock held. */
typedef struct js_puback {
    const char *stream;
    const char *domain;            /* NULL when none */
    uint64_t seq;
    bool duplicate;
    int jse;                       /* -1 on success, else a JSE_* error */
    const char *err_desc;          /* the filled-in description when jse >= 0 */
    int status;                    /* 0, or the store's EMBER_EIO / EMBER_ECLOSED when the
                                    * stored message could not be made durable (jse is then
                                    * set too); EMBER_ECLOSED: the stream was deleted or the
                                    * server stopped first (the wire path answers nothing) */
} js_puback;
typedef void (*js_puback_fn)(void *ud, const js_puback *ack);
/* subj/hdr/data as published; fn may be NULL (no ack wanted). Returns 0 when fn will be
 * (or was) called, a negative EMBER_E* when not (then nothing was stored). */
int js_stream_publish(jstream *s, const char *subj, size_t subj_len, const char *hdr,
                      size_t hdr_len, const void *data, size_t data_len, js_puback_fn fn,
                      void *ud);

/* Engine lifecycle (js_core.c calls these). */
/* Recover every stream under j->streams_dir (and their consumers through
 * js_consumers_recover). js->mu held. 0, or -1 with err filled. */
int js_streams_recover(js *j, char *err, size_t errcap);
/* Flush and close every stream (and js_consumers_close their consumers); js->mu held. */
void js_streams_close_all(js *j);
/* Stream timers (max_age / TTL expiry via store_expire). js->mu held. Returns the next
 * wall-clock ns something is due, 0 for none. */
int64_t js_streams_tick(js *j, int64_t now_wall_ns, js_outbox *ob);
/* Account totals for $JS.API.INFO (js->mu held). */
void js_streams_usage(js *j, uint64_t *memory, uint64_t *storage, uint64_t *streams,
                      uint64_t *consumers);

#endif
