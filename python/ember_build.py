"""cffi build script for the ``ember._ember`` extension (API mode, out-of-line).

Registered in ``setup.py`` through ``cffi_modules``.  The extension compiles the core C
sources (``core/src/*.c``) directly, so no installed libember is needed; it links libuv,
cJSON, libcrypto (SHA-256 for the object store) and pthreads, with flags from pkg-config
when available.

The binding uses only the public header ``ember.h``.  The few C helpers below (the
"glue") exist so that no broker thread ever waits for the GIL:

* subscription userdata is released by pushing the cffi handle onto a free list that
  Python reaps later (the library may let go of a subscription on its event-loop thread);
* server log lines are queued and handed to Python by a binding-owned thread;
* INLINE callbacks run in Python only when the publishing thread came from Python;
  messages that a TCP client or another foreign thread publishes to an INLINE
  subscription are queued for a binding-owned Python thread;
* publishing wrappers mark the calling thread as a Python thread (JetStream publishes
  and key-value writes too: they reach core subscribers as well);
* asynchronous JetStream publishes complete on the store's flusher thread: the glue
  queues (token, status, sequence, error text) and a binding-owned Python thread
  (``ember-js-acks``) completes the Futures;
* key-value watches run their callback on the connection's dispatcher thread or inside
  ``ember_conn_poll``, like subscriptions, and release their handle through the free
  list;
* object-store writes (put, writer write/commit, delete) mark the thread like the other
  publishing wrappers.
"""
from __future__ import annotations

import glob
import os
import shlex
import subprocess

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# EMBER_CORE_DIR: build against another checkout of core/ (include/ and src/)
CORE = os.environ.get("EMBER_CORE_DIR") or os.path.join(ROOT, "core")

CDEF = r"""
/* ---- ember.h (the subset the binding uses; layouts filled in by the compiler) ---- */
static const int EMBER_OK;
static const int EMBER_EINVAL;
static const int EMBER_ETIMEDOUT;
static const int EMBER_ENORESPONDERS;
static const int EMBER_ECLOSED;
static const int EMBER_EMAXPAYLOAD;
static const int EMBER_ENOTFOUND;
static const int EMBER_EEXISTS;
static const int EMBER_EWRONGSEQ;
static const int EMBER_ESLOWCONSUMER;
static const int EMBER_EIO;
static const int EMBER_ENOMEM;
static const int EMBER_ELIMIT;
static const int EMBER_ESTATE;
static const int EMBER_EAUTH;
static const int EMBER_EPERM;

static const int EMBER_LOG_FATAL;
static const int EMBER_LOG_ERROR;
static const int EMBER_LOG_WARN;
static const int EMBER_LOG_INFO;
static const int EMBER_LOG_DEBUG;
static const int EMBER_LOG_TRACE;

typedef int... ember_delivery;
static const int EMBER_DELIVER_DISPATCH;
static const int EMBER_DELIVER_POLL;
static const int EMBER_DELIVER_INLINE;

const char *ember_strerror(int status);
const char *ember_last_error(void);
const char *ember_version(void);

typedef void (*ember_log_fn)(void *userdata, int level, const char *line);
typedef void (*ember_free_fn)(void *userdata);

typedef struct ember_leaf_remote {
    const char *urls;
    const char *username;
    const char *password;
    const char *auth_token;
    const char *account;
    const char *deny_imports;
    const char *deny_exports;
    bool tls;
    const char *tls_ca_file;
    const char *tls_cert_file;
    const char *tls_key_file;
    bool tls_insecure;
    const char *credentials;
    const char *nkey_seed;
    ...;
} ember_leaf_remote;

typedef struct ember_server_options {
    size_t size;
    const char *server_name;
    const char *host;
    int port;
    bool dont_listen;
    int64_t max_payload;
    int32_t max_control_line;
    int64_t max_pending;
    int32_t max_connections;
    int32_t max_subscriptions;
    int64_t ping_interval_ms;
    int32_t max_pings_out;
    int64_t write_deadline_ms;
    int64_t auth_timeout_ms;
    const char *username;
    const char *password;
    const char *auth_token;
    bool jetstream;
    const char *store_dir;
    const char *jetstream_domain;
    ember_log_fn log_fn;
    void *log_userdata;
    int log_level;
    bool no_header_support;
    int64_t jetstream_max_memory;
    int64_t jetstream_max_store;
    int64_t jetstream_sync_interval_ms;
    const ember_leaf_remote *leaf_remotes;
    size_t leaf_remotes_count;
    const char *leaf_host;
    int leaf_port;
    const char *leaf_username;
    const char *leaf_password;
    int64_t leaf_reconnect_ms;
    const char *http_host;
    int http_port;
    ...;
} ember_server_options;

typedef struct ember_config ember_config;
int ember_config_load(ember_config **out, const char *path, ember_server_options *opts);
void ember_config_free(ember_config *cfg);

void ember_server_options_init(ember_server_options *opts);

typedef struct ember_server ember_server;
int ember_server_new(ember_server **out, const ember_server_options *opts);
int ember_server_start(ember_server *s);
bool ember_server_ready_for_connections(ember_server *s, int timeout_ms);
const char *ember_server_client_url(const ember_server *s);
int ember_server_port(const ember_server *s);
const char *ember_server_id(const ember_server *s);
const char *ember_server_name(const ember_server *s);
void ember_server_shutdown(ember_server *s);
void ember_server_free(ember_server *s);
void ember_server_log_to_stderr(ember_server *s, int level);
void ember_server_set_logger(ember_server *s, int level, ember_log_fn fn, void *userdata);

typedef struct ember_server_stats {
    uint64_t in_msgs, out_msgs, in_bytes, out_bytes;
    uint64_t connections;
    uint64_t total_connections;
    uint64_t subscriptions;
    uint64_t slow_consumers;
    ...;
} ember_server_stats;
void ember_server_get_stats(ember_server *s, ember_server_stats *out);
int ember_server_leafnode_count(ember_server *s);
int ember_server_leafnode_port(const ember_server *s);
int ember_server_monitor(ember_server *s, const char *path_and_query, char **json_out);
const char *ember_server_monitor_url(const ember_server *s);
int ember_server_monitor_port(const ember_server *s);
void ember_free(void *p);

typedef struct ember_msg ember_msg;
int ember_msg_new(ember_msg **out, const char *subject, const char *reply,
                  const char *data, size_t len);
int ember_msg_header_add(ember_msg *m, const char *key, const char *value);
int ember_msg_header_set(ember_msg *m, const char *key, const char *value);
int ember_msg_header_delete(ember_msg *m, const char *key);
const char *ember_msg_header_get(const ember_msg *m, const char *key);
int ember_msg_header_values(const ember_msg *m, const char *key, const char **values, int cap);
bool ember_msg_header_at(const ember_msg *m, int idx, const char **key, const char **value);
int ember_msg_status(const ember_msg *m);
const char *ember_msg_headers_raw(const ember_msg *m, size_t *len);
const char *ember_msg_subject(const ember_msg *m);
const char *ember_msg_reply(const ember_msg *m);
ember_msg *ember_msg_retain(ember_msg *m);
void ember_msg_release(ember_msg *m);

typedef struct ember_conn ember_conn;
typedef struct ember_sub ember_sub;
typedef void (*ember_msg_fn)(void *userdata, ember_sub *sub, ember_msg *msg);

typedef struct ember_conn_options {
    size_t size;
    const char *name;
    bool no_echo;
    int64_t pending_msgs_limit;
    int64_t pending_bytes_limit;
    const char *user;
    const char *password;
    const char *auth_token;
    const char *nkey_seed;
    const char *account;
    ...;
} ember_conn_options;
void ember_conn_options_init(ember_conn_options *o);

int ember_conn_connect(ember_conn **out, ember_server *s, const ember_conn_options *opts);
int ember_conn_poll(ember_conn *c, int timeout_ms);
int ember_conn_fd(ember_conn *c);
int ember_conn_flush(ember_conn *c, int timeout_ms);
int ember_conn_drain(ember_conn *c, int timeout_ms);
void ember_conn_close(ember_conn *c);
bool ember_conn_is_closed(const ember_conn *c);

typedef struct ember_conn_stats {
    uint64_t in_msgs, in_bytes;
    uint64_t out_msgs, out_bytes;
    uint64_t dropped;
    ...;
} ember_conn_stats;
void ember_conn_get_stats(ember_conn *c, ember_conn_stats *out);

int ember_sub_next_msg(ember_sub *sub, ember_msg **out, int timeout_ms);
int ember_sub_unsubscribe(ember_sub *sub);
int ember_sub_auto_unsubscribe(ember_sub *sub, int64_t max);
int ember_sub_set_pending_limits(ember_sub *sub, int64_t msgs, int64_t bytes);
typedef struct ember_sub_stats {
    uint64_t delivered;
    uint64_t pending_msgs, pending_bytes;
    uint64_t dropped;
    ...;
} ember_sub_stats;
void ember_sub_get_stats(ember_sub *sub, ember_sub_stats *out);
const char *ember_sub_subject(const ember_sub *sub);
bool ember_sub_is_valid(const ember_sub *sub);


/* ---- JetStream (native) ---- */
typedef int... ember_storage;
static const int EMBER_STORAGE_FILE;
static const int EMBER_STORAGE_MEMORY;
typedef int... ember_retention;
static const int EMBER_RETENTION_LIMITS;
static const int EMBER_RETENTION_INTEREST;
static const int EMBER_RETENTION_WORKQUEUE;
typedef int... ember_discard;
static const int EMBER_DISCARD_OLD;
static const int EMBER_DISCARD_NEW;

typedef struct ember_stream_config {
    size_t size;
    const char *name;
    const char *const *subjects;
    size_t nsubjects;
    const char *description;
    ember_storage storage;
    ember_retention retention;
    ember_discard discard;
    int64_t max_msgs;
    int64_t max_bytes;
    int64_t max_age_ms;
    int64_t max_msgs_per_subject;
    int32_t max_msg_size;
    int64_t duplicate_window_ms;
    bool allow_direct;
    bool allow_rollup;
    bool deny_delete, deny_purge;
    bool allow_msg_ttl;
    ...;
} ember_stream_config;
void ember_stream_config_init(ember_stream_config *cfg);
int ember_js_stream_create(ember_conn *c, const ember_stream_config *cfg);
int ember_js_stream_delete(ember_conn *c, const char *stream);
int ember_js_stream_purge(ember_conn *c, const char *stream, const char *filter,
                          uint64_t *purged);
typedef struct ember_stream_info {
    uint64_t msgs, bytes, first_seq, last_seq, num_subjects, consumers;
    ...;
} ember_stream_info;
int ember_js_stream_info(ember_conn *c, const char *stream, ember_stream_info *out);

typedef struct ember_pub_ack {
    uint64_t seq;
    bool duplicate;
    ...;
} ember_pub_ack;

int ember_js_get(ember_conn *c, const char *stream, uint64_t seq, ember_msg **out);
int ember_js_get_last(ember_conn *c, const char *stream, const char *subject, ember_msg **out);
int ember_js_delete_msg(ember_conn *c, const char *stream, uint64_t seq);

typedef int... ember_deliver_policy;
static const int EMBER_DELIVER_POLICY_ALL;
static const int EMBER_DELIVER_POLICY_LAST;
static const int EMBER_DELIVER_POLICY_NEW;
static const int EMBER_DELIVER_POLICY_BY_START_SEQUENCE;
static const int EMBER_DELIVER_POLICY_LAST_PER_SUBJECT;
typedef int... ember_ack_policy;
static const int EMBER_ACK_EXPLICIT;
static const int EMBER_ACK_NONE;
static const int EMBER_ACK_ALL;

typedef struct ember_consumer_config {
    size_t size;
    const char *durable_name;
    const char *filter_subject;
    ember_deliver_policy deliver_policy;
    uint64_t opt_start_seq;
    ember_ack_policy ack_policy;
    int64_t ack_wait_ms;
    int64_t max_deliver;
    int64_t max_ack_pending;
    int64_t inactive_threshold_ms;
    ...;
} ember_consumer_config;
void ember_consumer_config_init(ember_consumer_config *cfg);
int ember_js_consumer_create(ember_conn *c, const char *stream,
                             const ember_consumer_config *cfg, char *name, size_t cap);
int ember_js_consumer_delete(ember_conn *c, const char *stream, const char *consumer);
typedef struct ember_consumer_info {
    uint64_t num_pending;
    uint64_t num_ack_pending;
    uint64_t num_redelivered;
    uint64_t delivered_stream_seq, ack_floor_stream_seq;
    ...;
} ember_consumer_info;
int ember_js_consumer_info(ember_conn *c, const char *stream, const char *consumer,
                           ember_consumer_info *out);
int ember_js_fetch(ember_conn *c, const char *stream, const char *consumer,
                   ember_msg **msgs, int max, int timeout_ms);
int ember_js_ack(ember_conn *c, const ember_msg *m);
int ember_js_nak(ember_conn *c, const ember_msg *m, int64_t delay_ms);
int ember_js_in_progress(ember_conn *c, const ember_msg *m);
int ember_js_term(ember_conn *c, const ember_msg *m);
typedef struct ember_js_meta {
    uint64_t stream_seq, consumer_seq;
    uint64_t num_delivered, num_pending;
    int64_t timestamp_ns;
    ...;
} ember_js_meta;
int ember_js_msg_meta(const ember_msg *m, ember_js_meta *out);

/* ---- key-value (native) ---- */
typedef struct ember_kv ember_kv;
typedef struct ember_kv_config {
    size_t size;
    const char *bucket;
    const char *description;
    int32_t history;
    int64_t ttl_ms;
    int64_t max_bytes;
    int32_t max_value_size;
    ember_storage storage;
    ...;
} ember_kv_config;
void ember_kv_config_init(ember_kv_config *cfg);
int ember_kv_bucket_create(ember_conn *c, const ember_kv_config *cfg, ember_kv **out);
int ember_kv_bucket_open(ember_conn *c, const char *bucket, ember_kv **out);
int ember_kv_bucket_delete(ember_conn *c, const char *bucket);
void ember_kv_close(ember_kv *kv);

typedef int... ember_kv_op;
static const int EMBER_KV_PUT;
static const int EMBER_KV_DEL;
static const int EMBER_KV_PURGE;
typedef struct ember_kv_entry {
    const char *bucket;
    const char *key;
    const void *value;
    size_t len;
    uint64_t revision;
    int64_t created_ns;
    uint64_t delta;
    ember_kv_op op;
    ...;
} ember_kv_entry;
void ember_kv_entry_free(ember_kv_entry *e);
int ember_kv_get(ember_kv *kv, const char *key, ember_kv_entry **out);
int ember_kv_get_revision(ember_kv *kv, const char *key, uint64_t revision,
                          ember_kv_entry **out);
int ember_kv_keys(ember_kv *kv, char ***keys, size_t *n);
int ember_kv_history(ember_kv *kv, const char *key, ember_kv_entry ***entries, size_t *n);
void ember_kv_entries_free(ember_kv_entry **entries, size_t n);
typedef struct ember_kv_watcher ember_kv_watcher;
void ember_kv_watch_stop(ember_kv_watcher *w);

/* ---- object store (native) ---- */
typedef struct ember_obj ember_obj;
typedef struct ember_obj_config {
    size_t size;
    const char *bucket;
    const char *description;
    int64_t ttl_ms;
    int64_t max_bytes;
    ember_storage storage;
    uint32_t chunk_size;
    ...;
} ember_obj_config;
void ember_obj_config_init(ember_obj_config *cfg);
int ember_obj_bucket_create(ember_conn *c, const ember_obj_config *cfg, ember_obj **out);
int ember_obj_bucket_open(ember_conn *c, const char *bucket, ember_obj **out);
int ember_obj_bucket_delete(ember_conn *c, const char *bucket);
void ember_obj_close(ember_obj *obj);
typedef struct ember_obj_info {
    const char *bucket;
    const char *name;
    const char *description;
    const char *nuid;
    const char *digest;
    uint64_t size;
    uint64_t chunks;
    uint32_t chunk_size;
    int64_t mtime_ns;
    uint64_t revision;
    bool deleted;
    const char *link_bucket;
    const char *link_name;
    ...;
} ember_obj_info;
void ember_obj_info_free(ember_obj_info *info);
typedef struct ember_obj_put_options {
    size_t size;
    const char *description;
    uint32_t chunk_size;
    ...;
} ember_obj_put_options;
void ember_obj_put_options_init(ember_obj_put_options *opts);
typedef struct ember_obj_writer ember_obj_writer;
typedef struct ember_obj_reader ember_obj_reader;
int ember_obj_writer_open(ember_obj *obj, const char *name,
                          const ember_obj_put_options *opts, ember_obj_writer **out);
void ember_obj_writer_abort(ember_obj_writer *w);
int ember_obj_get(ember_obj *obj, const char *name, void **data, size_t *len,
                  ember_obj_info **info);
int ember_obj_reader_open(ember_obj *obj, const char *name, ember_obj_reader **out);
int64_t ember_obj_reader_read(ember_obj_reader *r, void *buf, size_t cap);
const ember_obj_info *ember_obj_reader_info(const ember_obj_reader *r);
void ember_obj_reader_close(ember_obj_reader *r);
int ember_obj_get_info(ember_obj *obj, const char *name, ember_obj_info **out);
int ember_obj_list(ember_obj *obj, char ***names, size_t *n);

/* ---- glue (defined in the C source below) ---- */
typedef struct emberpy_view {
    const char *subject;
    const char *reply;
    const char *data;
    size_t len;
    const char *hdr;
    size_t hdr_len;
} emberpy_view;
emberpy_view emberpy_msg_view(const ember_msg *m);

int emberpy_publish(ember_conn *c, const char *subject, const char *reply,
                    const char *data, size_t len);
int emberpy_publish_msg(ember_conn *c, ember_msg *m);
int emberpy_request(ember_conn *c, const char *subject, const char *data, size_t len,
                    int timeout_ms, ember_msg **reply);
int emberpy_request_msg(ember_conn *c, ember_msg *m, int timeout_ms, ember_msg **reply);
int emberpy_poll(ember_conn *c, int timeout_ms);

typedef struct emberpy_fq emberpy_fq;
emberpy_fq *emberpy_fq_new(size_t limit);
int emberpy_fq_pop(emberpy_fq *q, int timeout_ms, void **handle, ember_msg **msg);
void emberpy_fq_close(emberpy_fq *q);
void emberpy_fq_free(emberpy_fq *q);
uint64_t emberpy_fq_dropped(emberpy_fq *q);

int emberpy_subscribe(ember_sub **out, ember_conn *c, const char *subject, const char *queue,
                      int mode, int has_cb, void *handle, emberpy_fq *fq);
int emberpy_reap(void **out, int cap);

typedef struct emberpy_logq emberpy_logq;
emberpy_logq *emberpy_logq_new(size_t limit);
void emberpy_logq_install(emberpy_logq *q, ember_server *s, int level);
int emberpy_logq_pop(emberpy_logq *q, int timeout_ms, int *level, char **line);
void emberpy_logq_close(emberpy_logq *q);
void emberpy_logq_free(emberpy_logq *q);
void emberpy_str_free(char *p);

/* JetStream / KV glue */
int emberpy_js_publish(ember_conn *c, ember_msg *m, ember_pub_ack *ack);
int emberpy_js_publish_async(ember_conn *c, ember_msg *m, uint64_t token);
typedef struct emberpy_ack {
    uint64_t token;
    int status;
    uint64_t seq;
    int duplicate;
    char *err;
} emberpy_ack;
int emberpy_ackq_pop(int timeout_ms, emberpy_ack *out);
int emberpy_kv_put(ember_kv *kv, const char *key, const char *value, size_t len,
                   uint64_t *revision);
int emberpy_kv_put_async(ember_kv *kv, const char *key, const char *value, size_t len,
                         uint64_t token);
int emberpy_kv_create(ember_kv *kv, const char *key, const char *value, size_t len,
                      uint64_t *revision);
int emberpy_kv_update(ember_kv *kv, const char *key, const char *value, size_t len,
                      uint64_t last, uint64_t *revision);
int emberpy_kv_delete(ember_kv *kv, const char *key);
int emberpy_kv_purge(ember_kv *kv, const char *key);
int emberpy_kv_watch(ember_kv *kv, const char *keys, int mode, void *handle,
                     ember_kv_watcher **out);
void emberpy_free(void *p);
int emberpy_obj_put(ember_obj *obj, const char *name, const char *data, size_t len,
                    const ember_obj_put_options *opts, ember_obj_info **info);
int emberpy_obj_writer_write(ember_obj_writer *w, const char *data, size_t len);
int emberpy_obj_writer_commit(ember_obj_writer *w, ember_obj_info **info);
int emberpy_obj_delete(ember_obj *obj, const char *name);

extern "Python" void _emberpy_on_kv(void *ud, const ember_kv_entry *e);
extern "Python" void _emberpy_on_msg(void *ud, ember_sub *sub, ember_msg *msg);
"""

GLUE = r"""
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ember.h"

static void _emberpy_on_msg(void *ud, ember_sub *sub, ember_msg *msg); /* extern "Python" */
static void _emberpy_on_kv(void *ud, const ember_kv_entry *e);          /* extern "Python" */

/* ------------------------------------------------------------ message view */

typedef struct emberpy_view {
    const char *subject;
    const char *reply;
    const char *data;
    size_t len;
    const char *hdr;
    size_t hdr_len;
} emberpy_view;

static emberpy_view emberpy_msg_view(const ember_msg *m)
{
    emberpy_view v;
    v.subject = ember_msg_subject(m);
    v.reply = ember_msg_reply(m);
    v.data = (const char *)ember_msg_data(m, &v.len);
    v.hdr = ember_msg_headers_raw(m, &v.hdr_len);
    return v;
}

/* ------------------------------------------------------------ Python threads */

/* Set on every thread that entered the library through the binding's publishing
 * wrappers: those threads are Python threads (or the connection's dispatcher thread,
 * running Python callbacks), where an INLINE callback may take the GIL. */
static _Thread_local int emberpy_py_thread;

static int emberpy_publish(ember_conn *c, const char *subject, const char *reply,
                           const char *data, size_t len)
{
    emberpy_py_thread = 1;
    return ember_conn_publish(c, subject, reply, data, len);
}

static int emberpy_publish_msg(ember_conn *c, ember_msg *m)
{
    emberpy_py_thread = 1;
    return ember_conn_publish_msg(c, m);
}

static int emberpy_request(ember_conn *c, const char *subject, const char *data, size_t len,
                           int timeout_ms, ember_msg **reply)
{
    emberpy_py_thread = 1;
    return ember_conn_request(c, subject, data, len, timeout_ms, reply);
}

static int emberpy_request_msg(ember_conn *c, ember_msg *m, int timeout_ms, ember_msg **reply)
{
    emberpy_py_thread = 1;
    return ember_conn_request_msg(c, m, timeout_ms, reply);
}

static int emberpy_poll(ember_conn *c, int timeout_ms)
{
    emberpy_py_thread = 1;
    return ember_conn_poll(c, timeout_ms);
}

static void emberpy_deadline(struct timespec *ts, int timeout_ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void emberpy_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

/* ------------------------------------------------------------ handle free list */

static pthread_mutex_t emberpy_free_mu = PTHREAD_MUTEX_INITIALIZER;
static void **emberpy_free_v;
static size_t emberpy_free_n, emberpy_free_cap;

/* ember_free_fn: the library let go of a subscription's handle (any thread, no GIL). */
static void emberpy_release_handle(void *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&emberpy_free_mu);
    if (emberpy_free_n == emberpy_free_cap) {
        size_t ncap = emberpy_free_cap ? emberpy_free_cap * 2 : 64;
        void **nv = realloc(emberpy_free_v, ncap * sizeof *nv);
        if (!nv) { /* out of memory: the Python object stays alive (a leak, not a crash) */
            pthread_mutex_unlock(&emberpy_free_mu);
            return;
        }
        emberpy_free_v = nv;
        emberpy_free_cap = ncap;
    }
    emberpy_free_v[emberpy_free_n++] = h;
    pthread_mutex_unlock(&emberpy_free_mu);
}

static int emberpy_reap(void **out, int cap)
{
    int n = 0;
    pthread_mutex_lock(&emberpy_free_mu);
    while (n < cap && emberpy_free_n > 0)
        out[n++] = emberpy_free_v[--emberpy_free_n];
    pthread_mutex_unlock(&emberpy_free_mu);
    return n;
}

/* ------------------------------------------------------------ foreign-thread queue */

typedef struct emberpy_item {
    void *handle;
    ember_msg *msg;
} emberpy_item;

typedef struct emberpy_fq {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    emberpy_item *ring;
    size_t cap, head, count, limit;
    uint64_t dropped;
    int closed;
} emberpy_fq;

static emberpy_fq *emberpy_fq_new(size_t limit)
{
    emberpy_fq *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    pthread_mutex_init(&q->mu, NULL);
    emberpy_cond_init(&q->cv);
    q->limit = limit ? limit : 65536;
    return q;
}

static int emberpy_fq_push(emberpy_fq *q, void *handle, ember_msg *m)
{
    int ok = 0;
    pthread_mutex_lock(&q->mu);
    if (!q->closed && q->count < q->limit) {
        if (q->count == q->cap) {
            size_t ncap = q->cap ? q->cap * 2 : 64;
            emberpy_item *nr = malloc(ncap * sizeof *nr);
            if (nr) {
                for (size_t i = 0; i < q->count; i++)
                    nr[i] = q->ring[(q->head + i) % q->cap];
                free(q->ring);
                q->ring = nr;
                q->cap = ncap;
                q->head = 0;
            }
        }
        if (q->count < q->cap) {
            q->ring[(q->head + q->count) % q->cap] = (emberpy_item){handle, ember_msg_retain(m)};
            q->count++;
            pthread_cond_signal(&q->cv);
            ok = 1;
        }
    }
    if (!ok && !q->closed)
        q->dropped++;
    pthread_mutex_unlock(&q->mu);
    return ok;
}

/* 1: an item (*msg owned by the caller), 0: timeout, -1: closed. */
static int emberpy_fq_pop(emberpy_fq *q, int timeout_ms, void **handle, ember_msg **msg)
{
    struct timespec dl;
    if (timeout_ms > 0)
        emberpy_deadline(&dl, timeout_ms);
    pthread_mutex_lock(&q->mu);
    while (!q->closed && q->count == 0) {
        if (timeout_ms == 0)
            break;
        int rc = timeout_ms < 0 ? pthread_cond_wait(&q->cv, &q->mu)
                                : pthread_cond_timedwait(&q->cv, &q->mu, &dl);
        if (rc == ETIMEDOUT)
            break;
    }
    int r = 0;
    if (q->closed) {
        r = -1;
    } else if (q->count) {
        emberpy_item it = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
        *handle = it.handle;
        *msg = it.msg;
        r = 1;
    }
    pthread_mutex_unlock(&q->mu);
    return r;
}

static void emberpy_fq_close(emberpy_fq *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

static uint64_t emberpy_fq_dropped(emberpy_fq *q)
{
    pthread_mutex_lock(&q->mu);
    uint64_t d = q->dropped;
    pthread_mutex_unlock(&q->mu);
    return d;
}

static void emberpy_fq_free(emberpy_fq *q)
{
    if (!q)
        return;
    while (q->count) {
        ember_msg_release(q->ring[q->head].msg);
        q->head = (q->head + 1) % q->cap;
        q->count--;
    }
    free(q->ring);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q);
}

/* ------------------------------------------------------------ subscriptions */

typedef struct emberpy_inline {
    void *handle;
    emberpy_fq *fq;
} emberpy_inline;

static void emberpy_inline_cb(void *ud, ember_sub *sub, ember_msg *msg)
{
    emberpy_inline *in = ud;
    if (emberpy_py_thread)
        _emberpy_on_msg(in->handle, sub, msg);
    else
        emberpy_fq_push(in->fq, in->handle, msg); /* a broker or foreign thread: no GIL here */
}

static void emberpy_release_inline(void *ud)
{
    emberpy_inline *in = ud;
    emberpy_release_handle(in->handle);
    free(in);
}

static int emberpy_subscribe(ember_sub **out, ember_conn *c, const char *subject,
                             const char *queue, int mode, int has_cb, void *handle,
                             emberpy_fq *fq)
{
    if (!has_cb)
        return ember_conn_subscribe(out, c, subject, queue, (ember_delivery)mode, NULL, NULL,
                                    NULL);
    if (mode == EMBER_DELIVER_INLINE) {
        emberpy_inline *in = malloc(sizeof *in);
        if (!in) {
            emberpy_release_handle(handle);
            return EMBER_ENOMEM;
        }
        in->handle = handle;
        in->fq = fq;
        return ember_conn_subscribe(out, c, subject, queue, EMBER_DELIVER_INLINE,
                                    emberpy_inline_cb, in, emberpy_release_inline);
    }
    return ember_conn_subscribe(out, c, subject, queue, (ember_delivery)mode, _emberpy_on_msg,
                                handle, emberpy_release_handle);
}

/* ------------------------------------------------------------ log queue */

typedef struct emberpy_logline {
    int level;
    char *line;
} emberpy_logline;

typedef struct emberpy_logq {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    emberpy_logline *ring;
    size_t cap, head, count, limit;
    int closed;
} emberpy_logq;

static emberpy_logq *emberpy_logq_new(size_t limit)
{
    emberpy_logq *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    pthread_mutex_init(&q->mu, NULL);
    emberpy_cond_init(&q->cv);
    q->limit = limit ? limit : 10000;
    return q;
}

/* ember_log_fn: any server thread, never waits for Python. Lines over the limit are
 * dropped. */
static void emberpy_log_sink(void *ud, int level, const char *line)
{
    emberpy_logq *q = ud;
    pthread_mutex_lock(&q->mu);
    if (!q->closed && q->count < q->limit) {
        if (q->count == q->cap) {
            size_t ncap = q->cap ? q->cap * 2 : 64;
            emberpy_logline *nr = malloc(ncap * sizeof *nr);
            if (nr) {
                for (size_t i = 0; i < q->count; i++)
                    nr[i] = q->ring[(q->head + i) % q->cap];
                free(q->ring);
                q->ring = nr;
                q->cap = ncap;
                q->head = 0;
            }
        }
        char *dup = q->count < q->cap ? strdup(line ? line : "") : NULL;
        if (dup) {
            q->ring[(q->head + q->count) % q->cap] = (emberpy_logline){level, dup};
            q->count++;
            pthread_cond_signal(&q->cv);
        }
    }
    pthread_mutex_unlock(&q->mu);
}

static void emberpy_logq_install(emberpy_logq *q, ember_server *s, int level)
{
    ember_server_set_logger(s, level, q ? emberpy_log_sink : NULL, q);
}

/* 1: a line (*line freed with emberpy_str_free), 0: timeout, -1: closed and empty. */
static int emberpy_logq_pop(emberpy_logq *q, int timeout_ms, int *level, char **line)
{
    struct timespec dl;
    if (timeout_ms > 0)
        emberpy_deadline(&dl, timeout_ms);
    pthread_mutex_lock(&q->mu);
    while (!q->closed && q->count == 0) {
        if (timeout_ms == 0)
            break;
        int rc = timeout_ms < 0 ? pthread_cond_wait(&q->cv, &q->mu)
                                : pthread_cond_timedwait(&q->cv, &q->mu, &dl);
        if (rc == ETIMEDOUT)
            break;
    }
    int r = 0;
    if (q->count) {
        emberpy_logline l = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
        *level = l.level;
        *line = l.line;
        r = 1;
    } else if (q->closed) {
        r = -1;
    }
    pthread_mutex_unlock(&q->mu);
    return r;
}

static void emberpy_logq_close(emberpy_logq *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

static void emberpy_logq_free(emberpy_logq *q)
{
    if (!q)
        return;
    while (q->count) {
        free(q->ring[q->head].line);
        q->head = (q->head + 1) % q->cap;
        q->count--;
    }
    free(q->ring);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q);
}

static void emberpy_str_free(char *p) { free(p); }

/* ------------------------------------------------------------ JetStream publish */

static int emberpy_js_publish(ember_conn *c, ember_msg *m, ember_pub_ack *ack)
{
    emberpy_py_thread = 1; /* core subscribers of the subject get the message too */
    return ember_js_publish(c, m, ack);
}

/* Completions of ember_js_publish_async: the library calls emberpy_on_pub_ack from the
 * store's flusher thread (or from the publishing call); it only queues the result here,
 * and a Python thread of the binding pops it (emberpy_ackq_pop) to complete the
 * Future. The queue is unbounded: it holds at most one entry per publish in flight. */
typedef struct emberpy_ack {
    uint64_t token;
    int status;
    uint64_t seq;
    int duplicate;
    char *err;            /* the error text (status != 0), freed with emberpy_free */
} emberpy_ack;

static pthread_mutex_t emberpy_ack_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t emberpy_ack_cv;
static pthread_once_t emberpy_ack_once = PTHREAD_ONCE_INIT;
static emberpy_ack *emberpy_ack_ring;
static size_t emberpy_ack_cap, emberpy_ack_head, emberpy_ack_count;

static void emberpy_ack_init(void) { emberpy_cond_init(&emberpy_ack_cv); }

static void emberpy_on_pub_ack(void *ud, int status, const ember_pub_ack *ack)
{
    emberpy_ack it;
    it.token = (uint64_t)(uintptr_t)ud;
    it.status = status;
    it.seq = ack ? ack->seq : 0;
    it.duplicate = ack ? ack->duplicate : 0;
    it.err = NULL;
    if (status) {
        const char *e = ember_last_error();
        it.err = strdup(e && *e ? e : ember_strerror(status));
    }
    pthread_once(&emberpy_ack_once, emberpy_ack_init);
    pthread_mutex_lock(&emberpy_ack_mu);
    if (emberpy_ack_count == emberpy_ack_cap) {
        size_t ncap = emberpy_ack_cap ? emberpy_ack_cap * 2 : 256;
        emberpy_ack *nr = malloc(ncap * sizeof *nr);
        while (!nr) { /* never drop a completion: its Future would wait forever */
            pthread_mutex_unlock(&emberpy_ack_mu);
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&emberpy_ack_mu);
            nr = malloc(ncap * sizeof *nr);
        }
        for (size_t i = 0; i < emberpy_ack_count; i++)
            nr[i] = emberpy_ack_ring[(emberpy_ack_head + i) % emberpy_ack_cap];
        free(emberpy_ack_ring);
        emberpy_ack_ring = nr;
        emberpy_ack_cap = ncap;
        emberpy_ack_head = 0;
    }
    emberpy_ack_ring[(emberpy_ack_head + emberpy_ack_count) % emberpy_ack_cap] = it;
    emberpy_ack_count++;
    pthread_cond_signal(&emberpy_ack_cv);
    pthread_mutex_unlock(&emberpy_ack_mu);
}

static int emberpy_js_publish_async(ember_conn *c, ember_msg *m, uint64_t token)
{
    emberpy_py_thread = 1;
    pthread_once(&emberpy_ack_once, emberpy_ack_init);
    return ember_js_publish_async(c, m, emberpy_on_pub_ack, (void *)(uintptr_t)token);
}

/* 1: a completion in *out, 0: timeout. */
static int emberpy_ackq_pop(int timeout_ms, emberpy_ack *out)
{
    struct timespec dl;
    pthread_once(&emberpy_ack_once, emberpy_ack_init);
    if (timeout_ms > 0)
        emberpy_deadline(&dl, timeout_ms);
    pthread_mutex_lock(&emberpy_ack_mu);
    while (emberpy_ack_count == 0 && timeout_ms != 0) {
        int rc = timeout_ms < 0 ? pthread_cond_wait(&emberpy_ack_cv, &emberpy_ack_mu)
                                : pthread_cond_timedwait(&emberpy_ack_cv, &emberpy_ack_mu, &dl);
        if (rc == ETIMEDOUT)
            break;
    }
    int r = 0;
    if (emberpy_ack_count) {
        *out = emberpy_ack_ring[emberpy_ack_head];
        emberpy_ack_head = (emberpy_ack_head + 1) % emberpy_ack_cap;
        emberpy_ack_count--;
        r = 1;
    }
    pthread_mutex_unlock(&emberpy_ack_mu);
    return r;
}

static void emberpy_free(void *p) { free(p); }

/* ------------------------------------------------------------ key-value */

/* KV writes go through the stream publish path, which hands the message to core
 * subscribers as well: mark the thread like the other publishing wrappers. */
static int emberpy_kv_put(ember_kv *kv, const char *key, const char *value, size_t len,
                          uint64_t *revision)
{
    emberpy_py_thread = 1;
    return ember_kv_put(kv, key, value, len, revision);
}

/* ember_kv_put_async completes through the same queue as ember_js_publish_async. */
static void emberpy_on_kv_put(void *ud, int status, uint64_t revision)
{
    ember_pub_ack a;
    memset(&a, 0, sizeof a);
    a.seq = revision;
    emberpy_on_pub_ack(ud, status, status ? NULL : &a);
}

static int emberpy_kv_put_async(ember_kv *kv, const char *key, const char *value, size_t len,
                                uint64_t token)
{
    emberpy_py_thread = 1;
    pthread_once(&emberpy_ack_once, emberpy_ack_init);
    return ember_kv_put_async(kv, key, value, len, emberpy_on_kv_put, (void *)(uintptr_t)token);
}

static int emberpy_kv_create(ember_kv *kv, const char *key, const char *value, size_t len,
                             uint64_t *revision)
{
    emberpy_py_thread = 1;
    return ember_kv_create(kv, key, value, len, revision);
}

static int emberpy_kv_update(ember_kv *kv, const char *key, const char *value, size_t len,
                             uint64_t last, uint64_t *revision)
{
    emberpy_py_thread = 1;
    return ember_kv_update(kv, key, value, len, last, revision);
}

static int emberpy_kv_delete(ember_kv *kv, const char *key)
{
    emberpy_py_thread = 1;
    return ember_kv_delete(kv, key);
}

static int emberpy_kv_purge(ember_kv *kv, const char *key)
{
    emberpy_py_thread = 1;
    return ember_kv_purge(kv, key);
}

/* A watch runs its callback on the connection's dispatcher thread (DISPATCH) or inside
 * ember_conn_poll (POLL): threads that may take the GIL. The handle is released through
 * the free list, as a subscription's. */
static int emberpy_kv_watch(ember_kv *kv, const char *keys, int mode, void *handle,
                            ember_kv_watcher **out)
{
    return ember_kv_watch(kv, keys, (ember_delivery)mode, _emberpy_on_kv, handle,
                          emberpy_release_handle, out);
}

/* ------------------------------------------------------------ object store */

/* Object-store writes publish chunks and metadata through the stream path, which hands
 * them to core subscribers too: mark the thread like the other publishing wrappers. */
static int emberpy_obj_put(ember_obj *obj, const char *name, const char *data, size_t len,
                           const ember_obj_put_options *opts, ember_obj_info **info)
{
    emberpy_py_thread = 1;
    return ember_obj_put(obj, name, data, len, opts, info);
}

static int emberpy_obj_writer_write(ember_obj_writer *w, const char *data, size_t len)
{
    emberpy_py_thread = 1;
    return ember_obj_writer_write(w, data, len);
}

static int emberpy_obj_writer_commit(ember_obj_writer *w, ember_obj_info **info)
{
    emberpy_py_thread = 1;
    return ember_obj_writer_commit(w, info);
}

static int emberpy_obj_delete(ember_obj *obj, const char *name)
{
    emberpy_py_thread = 1;
    return ember_obj_delete(obj, name);
}
"""


def _pkg_config(*args: str) -> list[str]:
    try:
        out = subprocess.run(
            ["pkg-config", *args, "libuv", "libcjson", "libssl", "libcrypto", "libcrypt", "zlib"],
            check=True, capture_output=True, text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return shlex.split(out)


def _flags():
    include_dirs = [os.path.join(CORE, "include"), os.path.join(CORE, "src")]
    extra_compile = ["-std=gnu11", "-O2", "-fvisibility=hidden",
                     "-Wno-unused-parameter", "-Wno-missing-field-initializers"]
    for f in _pkg_config("--cflags"):
        if f.startswith("-I"):
            include_dirs.append(f[2:])
        else:
            extra_compile.append(f)
    libraries, library_dirs, extra_link = [], [], []
    # EMBER_SANITIZE=address,undefined: an instrumented extension (run Python with
    # LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0)
    san = os.environ.get("EMBER_SANITIZE")
    if san:
        extra_compile += [f"-fsanitize={san}", "-fno-omit-frame-pointer", "-g", "-O1"]
        extra_link.append(f"-fsanitize={san}")
    libs = _pkg_config("--libs") or ["-luv", "-lcjson", "-lssl", "-lcrypto", "-lcrypt", "-lz"]
    for f in libs + ["-lpthread"]:
        if f.startswith("-l"):
            if f[2:] not in libraries:
                libraries.append(f[2:])
        elif f.startswith("-L"):
            library_dirs.append(f[2:])
        else:
            extra_link.append(f)
    return include_dirs, extra_compile, libraries, library_dirs, extra_link


def _sources() -> list[str]:
    # Relative paths keep the object files inside the build directory.
    # (distutils puts the object of an absolute path under build_temp too, but the
    # object of a relative path that climbs out with ".." outside it)
    out = []
    cwd = os.getcwd()
    for s in sorted(glob.glob(os.path.join(CORE, "src", "*.c"))):
        rel = os.path.relpath(s, cwd)
        out.append(s if rel.startswith("..") else rel)
    return out


ffibuilder = FFI()
ffibuilder.cdef(CDEF)
_inc, _cflags, _libs, _libdirs, _ldflags = _flags()
ffibuilder.set_source(
    "ember._ember",
    GLUE,
    sources=_sources(),
    include_dirs=_inc,
    libraries=_libs,
    library_dirs=_libdirs,
    extra_compile_args=_cflags,
    extra_link_args=_ldflags,
)
