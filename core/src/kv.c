/* kv: the native key-value API of ember.h (ADR-8 buckets over JetStream streams).
 * Reads (get, keys, history) go straight to the bucket stream's store; writes go through
 * the stream publish path (ember_js_publish) with the headers the NATS clients use; the
 * bucket and watch consumers are made through the same API handlers as the wire. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "js.h"
#include "js_stream.h"
#include "msg.h"

struct ember_kv {
    ember_conn *conn;
    char *bucket;
    char *stream;       /* KV_<bucket> */
    char *prefix;       /* $KV.<bucket>. */
    size_t prefix_len;
};

/* ADR-8: [-/_=.a-zA-Z0-9]+, not starting or ending with '.'; wildcards only in filters. */
static bool key_valid(const char *k, bool filter)
{
    if (!k || !*k || k[0] == '.' || k[strlen(k) - 1] == '.' || strlen(k) > 3000)
        return false;
    for (const char *p = k; *p; p++) {
        char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '/' || c == '_' || c == '=' || c == '.')
            continue;
        if (filter && (c == '*' || c == '>'))
            continue;
        return false;
    }
    return !strstr(k, "..") && (!filter || js_subj_valid(k, true));
}

EMBER_API void ember_kv_config_init(ember_kv_config *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->size = sizeof *cfg;
    cfg->history = 1;
    cfg->max_bytes = -1;
    cfg->max_value_size = -1;
}

static int kv_new(ember_conn *c, const char *bucket, ember_kv **out)
{
    ember_kv *kv = calloc(1, sizeof *kv);
    if (!kv)
        return err_set(EMBER_ENOMEM, "out of memory");
    kv->conn = c;
    kv->bucket = strdup(bucket);
    if (asprintf(&kv->stream, "KV_%s", bucket) < 0)
        kv->stream = NULL;
    if (asprintf(&kv->prefix, "$KV.%s.", bucket) < 0)
        kv->prefix = NULL;
    if (!kv->bucket || !kv->stream || !kv->prefix) {
        ember_kv_close(kv);
        return err_set(EMBER_ENOMEM, "out of memory");
    }
    kv->prefix_len = strlen(kv->prefix);
    *out = kv;
    return EMBER_OK;
}

EMBER_API void ember_kv_close(ember_kv *kv)
{
    if (!kv)
        return;
    free(kv->bucket);
    free(kv->stream);
    free(kv->prefix);
    free(kv);
}

EMBER_API int ember_kv_bucket_create(ember_conn *c, const ember_kv_config *in, ember_kv **out)
{
    if (!out)
        return err_set(EMBER_EINVAL, "out is NULL");
    *out = NULL;
    if (!in || in->size == 0 || in->size > sizeof(ember_kv_config))
        return err_set(EMBER_EINVAL, "config not initialised with ember_kv_config_init");
    ember_kv_config cfg;
    ember_kv_config_init(&cfg);
    memcpy(&cfg, in, in->size);
    if (!js_bucket_name_valid(cfg.bucket))
        return err_set(EMBER_EINVAL, "invalid bucket name");
    if (cfg.history < 1 || cfg.history > 64)
        return err_set(EMBER_EINVAL, "history limited to a max of 64");
    if (cfg.ttl_ms < 0)
        return err_set(EMBER_EINVAL, "invalid ttl");
    char stream[256], subj[256];
    snprintf(stream, sizeof stream, "KV_%s", cfg.bucket);
    snprintf(subj, sizeof subj, "$KV.%s.>", cfg.bucket);
    const char *subjects[] = {subj};
    ember_stream_config sc;
    ember_stream_config_init(&sc);
    sc.name = stream;
    sc.subjects = subjects;
    sc.nsubjects = 1;
    sc.description = cfg.description;
    sc.storage = cfg.storage;
    sc.max_msgs_per_subject = cfg.history;
    sc.max_bytes = cfg.max_bytes;
    sc.max_age_ms = cfg.ttl_ms;
    sc.max_msg_size = cfg.max_value_size;
    sc.discard = EMBER_DISCARD_NEW;
    sc.allow_rollup = true;
    sc.deny_delete = true;
    sc.allow_direct = true;
    /* the duplicate window as nats.go sets it: 2 minutes, or the TTL when shorter */
    sc.duplicate_window_ms = cfg.ttl_ms > 0 && cfg.ttl_ms < 120000 ? cfg.ttl_ms : 120000;
    int rc = ember_js_stream_create(c, &sc);
    if (rc)
        return rc;
    return kv_new(c, cfg.bucket, out);
}

EMBER_API int ember_kv_bucket_open(ember_conn *c, const char *bucket, ember_kv **out)
{
    if (!out)
        return err_set(EMBER_EINVAL, "out is NULL");
    *out = NULL;
    if (!js_bucket_name_valid(bucket))
        return err_set(EMBER_EINVAL, "invalid bucket name");
    char stream[256];
    snprintf(stream, sizeof stream, "KV_%s", bucket);
    ember_stream_info si;
    int rc = ember_js_stream_info(c, stream, &si);
    if (rc == EMBER_ENOTFOUND)
        return err_set(EMBER_ENOTFOUND, "bucket not found");
    if (rc)
        return rc;
    return kv_new(c, bucket, out);
}

EMBER_API int ember_kv_bucket_delete(ember_conn *c, const char *bucket)
{
    if (!js_bucket_name_valid(bucket))
        return err_set(EMBER_EINVAL, "invalid bucket name");
    char stream[256];
    snprintf(stream, sizeof stream, "KV_%s", bucket);
    int rc = ember_js_stream_delete(c, stream);
    if (rc == EMBER_ENOTFOUND)
        return err_set(EMBER_ENOTFOUND, "bucket not found");
    return rc;
}

/* ------------------------------------------------------------------ entries */

EMBER_API void ember_kv_entry_free(ember_kv_entry *e) { free(e); }

EMBER_API void ember_kv_entries_free(ember_kv_entry **entries, size_t n)
{
    if (!entries)
        return;
    for (size_t i = 0; i < n; i++)
        free(entries[i]);
    free(entries);
}

static ember_kv_op op_of(const char *hdr, size_t hl)
{
    const char *v;
    size_t vl;
    if (js_hdr_get(hdr, hl, "KV-Operation", &v, &vl)) {
        if (vl == 3 && !memcmp(v, "DEL", 3))
            return EMBER_KV_DEL;
        if (vl == 5 && !memcmp(v, "PURGE", 5))
            return EMBER_KV_PURGE;
    }
    if (js_hdr_get(hdr, hl, "Nats-Marker-Reason", &v, &vl)) {
        if (vl == 6 && !memcmp(v, "Remove", 6))
            return EMBER_KV_DEL;
        return EMBER_KV_PURGE; /* MaxAge, Purge */
    }
    return EMBER_KV_PUT;
}

/* One allocation: the struct, then bucket, key and value strings. */
ember_kv_entry *kv_entry_make(const char *bucket, const char *subj, size_t subj_len,
                              size_t prefix_len, const char *hdr, size_t hdr_len,
                              const void *data, size_t data_len, uint64_t seq, int64_t ts,
                              uint64_t delta);
ember_kv_entry *kv_entry_make(const char *bucket, const char *subj, size_t subj_len,
                              size_t prefix_len, const char *hdr, size_t hdr_len,
                              const void *data, size_t data_len, uint64_t seq, int64_t ts,
                              uint64_t delta)
{
    size_t bl = strlen(bucket);
    size_t kl = subj_len > prefix_len ? subj_len - prefix_len : 0;
    ember_kv_entry *e = malloc(sizeof *e + bl + 1 + kl + 1 + data_len + 1);
    if (!e)
        return NULL;
    char *p = (char *)(e + 1);
    memcpy(p, bucket, bl + 1);
    e->bucket = p;
    p += bl + 1;
    memcpy(p, subj + prefix_len, kl);
    p[kl] = 0;
    e->key = p;
    p += kl + 1;
    if (data_len)
        memcpy(p, data, data_len);
    p[data_len] = 0;
    e->value = p;
    e->len = data_len;
    e->revision = seq;
    e->created_ns = ts;
    e->delta = delta;
    e->op = op_of(hdr, hdr_len);
    return e;
}

static ember_kv_entry *entry_of(const ember_kv *kv, const store_msg *m)
{
    return kv_entry_make(kv->bucket, m->subj, m->subj_len, kv->prefix_len, m->hdr, m->hdr_len,
                         m->data, m->data_len, m->seq, m->ts, 0);
}

/* The bucket's stream, retained (EMBER_ENOTFOUND "bucket not found"). */
static int kv_stream(ember_kv *kv, jstream **out)
{
    if (!kv)
        return err_set(EMBER_EINVAL, "kv is NULL");
    return js_conn_stream(kv->conn, kv->stream, "bucket not found", out);
}

static int subject_of(const ember_kv *kv, const char *key, bool filter, char *buf, size_t cap)
{
    if (!key_valid(key, filter))
        return err_set(EMBER_EINVAL, "invalid key \"%s\"", key ? key : "");
    int n = snprintf(buf, cap, "%s%s", kv->prefix, key);
    if (n < 0 || (size_t)n >= cap)
        return err_set(EMBER_EINVAL, "key too long");
    return EMBER_OK;
}

/* The latest entry of key including markers. */
static int get_any(ember_kv *kv, const char *key, ember_kv_entry **out)
{
    char subj[4096];
    int rc = subject_of(kv, key, false, subj, sizeof subj);
    if (rc)
        return rc;
    jstream *s;
    if ((rc = kv_stream(kv, &s)))
        return rc;
    store_msg *m = NULL;
    rc = store_load_last(s->st, subj, &m);
    js_stream_release(s);
    if (rc == EMBER_ENOTFOUND)
        return err_set(EMBER_ENOTFOUND, "key not found");
    if (rc)
        return err_set(rc, "load failed: %s", store_strerror(rc));
    *out = entry_of(kv, m);
    store_msg_release(m);
    return *out ? EMBER_OK : err_set(EMBER_ENOMEM, "out of memory");
}

EMBER_API int ember_kv_get(ember_kv *kv, const char *key, ember_kv_entry **out)
{
    if (!out)
        return err_set(EMBER_EINVAL, "out is NULL");
    *out = NULL;
    ember_kv_entry *e;
    int rc = get_any(kv, key, &e);
    if (rc)
        return rc;
    if (e->op != EMBER_KV_PUT) {
        free(e);
        return err_set(EMBER_ENOTFOUND, "key not found");
    }
    *out = e;
    return EMBER_OK;
}

EMBER_API int ember_kv_get_revision(ember_kv *kv, const char *key, uint64_t revision,
                                    ember_kv_entry **out)
{
    if (!out)
        return err_set(EMBER_EINVAL, "out is NULL");
    *out = NULL;
    char subj[4096];
    int rc = subject_of(kv, key, false, subj, sizeof subj);
    if (rc)
        return rc;
    jstream *s;
    if ((rc = kv_stream(kv, &s)))
        return rc;
    store_msg *m = NULL;
    rc = store_load(s->st, revision, &m);
    js_stream_release(s);
    if (rc == EMBER_OK && (m->subj_len != strlen(subj) || memcmp(m->subj, subj, m->subj_len))) {
        store_msg_release(m);
        rc = EMBER_ENOTFOUND;
    }
    if (rc == EMBER_ENOTFOUND)
        return err_set(EMBER_ENOTFOUND, "key not found");
    if (rc)
        return err_set(rc, "load failed: %s", store_strerror(rc));
    *out = entry_of(kv, m);
    store_msg_release(m);
    return *out ? EMBER_OK : err_set(EMBER_ENOMEM, "out of memory");
}

/* The message writing val to key, with optional headers (NULL-terminated key, value
 * pairs). */
static int kv_msg(ember_kv *kv, const char *key, const void *val, size_t len,
                  const char *const *hdrs, ember_msg **out)
{
    if (!kv)
        return err_set(EMBER_EINVAL, "kv is NULL");
    if (!val && len)
        return err_set(EMBER_EINVAL, "value is NULL with a non-zero length");
    char subj[4096];
    int rc = subject_of(kv, key, false, subj, sizeof subj);
    if (rc)
        return rc;
    ember_msg *m;
    if ((rc = ember_msg_new(&m, subj, NULL, val, len)))
        return rc;
    for (size_t i = 0; hdrs && hdrs[i]; i += 2)
        if ((rc = ember_msg_header_set(m, hdrs[i], hdrs[i + 1]))) {
            ember_msg_release(m);
            return rc;
        }
    *out = m;
    return EMBER_OK;
}

/* A publish error as the bucket's: no stream means no bucket. */
static int kv_pub_err(int rc)
{
    if (rc == EMBER_ENOTFOUND && strstr(ember_last_error(), "no stream"))
        return err_set(EMBER_ENOTFOUND, "bucket not found");
    return rc;
}

/* Publish to key with optional headers and wait until stored. */
static int kv_write(ember_kv *kv, const char *key, const void *val, size_t len,
                    uint64_t *revision, const char *const *hdrs)
{
    ember_msg *m;
    int rc = kv_msg(kv, key, val, len, hdrs, &m);
    if (rc)
        return rc;
    ember_pub_ack ack;
    rc = kv_pub_err(ember_js_publish(kv->conn, m, &ack));
    ember_msg_release(m);
    if (rc == EMBER_OK && revision)
        *revision = ack.seq;
    return rc;
}

EMBER_API int ember_kv_put(ember_kv *kv, const char *key, const void *value, size_t len,
                           uint64_t *revision)
{
    return kv_write(kv, key, value, len, revision, NULL);
}

EMBER_API int ember_kv_put_async(ember_kv *kv, const char *key, const void *value, size_t len,
                                 ember_kv_put_fn fn, void *userdata)
{
    if (!fn)
        return err_set(EMBER_EINVAL, "fn is NULL");
    ember_msg *m;
    int rc = kv_msg(kv, key, value, len, NULL, &m);
    if (rc)
        return rc;
    rc = kv_pub_err(js_publish_async_seq(kv->conn, m, fn, userdata));
    ember_msg_release(m);
    return rc;
}

EMBER_API int ember_kv_update(ember_kv *kv, const char *key, const void *value, size_t len,
                              uint64_t last, uint64_t *revision)
{
    char seq[24];
    snprintf(seq, sizeof seq, "%llu", (unsigned long long)last);
    const char *h[] = {"Nats-Expected-Last-Subject-Sequence", seq, NULL};
    return kv_write(kv, key, value, len, revision, h);
}

EMBER_API int ember_kv_create(ember_kv *kv, const char *key, const void *value, size_t len,
                              uint64_t *revision)
{
    int rc = ember_kv_update(kv, key, value, len, 0, revision);
    if (rc != EMBER_EWRONGSEQ)
        return rc;
    /* as the clients do: a deleted or purged key may be created again */
    ember_kv_entry *e;
    if (get_any(kv, key, &e) != EMBER_OK)
        return err_set(EMBER_EWRONGSEQ, "key exists");
    bool gone = e->op != EMBER_KV_PUT;
    uint64_t rev = e->revision;
    free(e);
    if (!gone)
        return err_set(EMBER_EWRONGSEQ, "key exists");
    return ember_kv_update(kv, key, value, len, rev, revision);
}

EMBER_API int ember_kv_delete(ember_kv *kv, const char *key)
{
    const char *h[] = {"KV-Operation", "DEL", NULL};
    return kv_write(kv, key, NULL, 0, NULL, h);
}

EMBER_API int ember_kv_purge(ember_kv *kv, const char *key)
{
    const char *h[] = {"KV-Operation", "PURGE", "Nats-Rollup", "sub", NULL};
    return kv_write(kv, key, NULL, 0, NULL, h);
}

EMBER_API int ember_kv_keys(ember_kv *kv, char ***keys, size_t *n)
{
    if (!keys || !n)
        return err_set(EMBER_EINVAL, "keys or n is NULL");
    *keys = NULL;
    *n = 0;
    jstream *s;
    int rc = kv_stream(kv, &s);
    if (rc)
        return rc;
    char filter[512];
    snprintf(filter, sizeof filter, "%s>", kv->prefix);
    store_subject_state *ss = NULL;
    size_t ns = 0;
    rc = store_subjects_state(s->st, filter, &ss, &ns);
    if (rc) {
        js_stream_release(s);
        return err_set(rc, "subjects: %s", store_strerror(rc));
    }
    /* keep the subjects whose latest entry is a value */
    size_t total = 0, live = 0;
    bool *keep = calloc(ns ? ns : 1, sizeof *keep);
    if (!keep) {
        free(ss);
        js_stream_release(s);
        return err_set(EMBER_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < ns; i++) {
        store_msg *m = NULL;
        if (store_load(s->st, ss[i].last_seq, &m) == EMBER_OK) {
            if (op_of(m->hdr, m->hdr_len) == EMBER_KV_PUT) {
                keep[i] = true;
                live++;
                total += strlen(ss[i].subject) - kv->prefix_len + 1;
            }
            store_msg_release(m);
        }
    }
    js_stream_release(s);
    char **arr = malloc((live ? live : 1) * sizeof(char *) + total);
    if (!arr) {
        free(keep);
        free(ss);
        return err_set(EMBER_ENOMEM, "out of memory");
    }
    char *p = (char *)(arr + (live ? live : 1));
    size_t k = 0;
    for (size_t i = 0; i < ns; i++) {
        if (!keep[i])
            continue;
        const char *key = ss[i].subject + kv->prefix_len;
        size_t kl = strlen(key);
        memcpy(p, key, kl + 1);
        arr[k++] = p;
        p += kl + 1;
    }
    free(keep);
    free(ss);
    *keys = arr;
    *n = k;
    return EMBER_OK;
}

EMBER_API int ember_kv_history(ember_kv *kv, const char *key, ember_kv_entry ***entries,
                               size_t *n)
{
    if (!entries || !n)
        return err_set(EMBER_EINVAL, "entries or n is NULL");
    *entries = NULL;
    *n = 0;
    char subj[4096];
    int rc = subject_of(kv, key, false, subj, sizeof subj);
    if (rc)
        return rc;
    jstream *s;
    if ((rc = kv_stream(kv, &s)))
        return rc;
    size_t cap = 8, cnt = 0;
    ember_kv_entry **arr = malloc(cap * sizeof *arr);
    uint64_t seq = 0;
    while (arr) {
        store_msg *m = NULL;
        if (store_load_next(s->st, subj, seq, &m) != EMBER_OK)
            break;
        seq = m->seq + 1;
        if (cnt == cap) {
            ember_kv_entry **na = realloc(arr, cap * 2 * sizeof *arr);
            if (!na) {
                store_msg_release(m);
                ember_kv_entries_free(arr, cnt);
                arr = NULL;
                break;
            }
            arr = na;
            cap *= 2;
        }
        ember_kv_entry *e = entry_of(kv, m);
        store_msg_release(m);
        if (!e) {
            ember_kv_entries_free(arr, cnt);
            arr = NULL;
            break;
        }
        arr[cnt++] = e;
    }
    js_stream_release(s);
    if (!arr)
        return err_set(EMBER_ENOMEM, "out of memory");
    if (cnt == 0) {
        free(arr);
        return err_set(EMBER_ENOTFOUND, "key not found");
    }
    *entries = arr;
    *n = cnt;
    return EMBER_OK;
}

/* ------------------------------------------------------------------ watch */

struct ember_kv_watcher {
    atomic_int refs;            /* the handle and the subscription */
    pthread_mutex_t mu;         /* held while fn runs */
    bool stopped;
    bool handle_done;           /* ember_kv_watch_stop ran */
    bool init_done;
    ember_kv *kv;               /* borrowed: bucket name and prefix */
    char *bucket;
    size_t prefix_len;
    ember_conn *conn;
    ember_sub *sub;
    char stream[256];
    char consumer[256];
    ember_kv_watch_fn fn;
    void *ud;
    ember_free_fn free_ud;
};

static _Thread_local ember_kv_watcher *tls_in_watch;
static void watcher_release(void *p);

/* The subscription's userdata release: when the connection closes before the watcher
 * is stopped, the host's data is freed here (once); the watcher itself lives until
 * ember_kv_watch_stop too has let go. */
static void watcher_sub_gone(void *p)
{
    ember_kv_watcher *w = p;
    pthread_mutex_lock(&w->mu);
    w->stopped = true;
    ember_free_fn f = w->free_ud;
    w->free_ud = NULL;
    w->sub = NULL;
    bool orphan = !w->handle_done; /* the connection closed first: the handle is dead too */
    pthread_mutex_unlock(&w->mu);
    if (f)
        f(w->ud);
    if (orphan)
        watcher_release(w);
    watcher_release(w);
}

static void watcher_release(void *p)
{
    ember_kv_watcher *w = p;
    if (atomic_fetch_sub(&w->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&w->mu);
    free(w->bucket);
    free(w);
}

static void watch_msg(void *ud, ember_sub *sub, ember_msg *m)
{
    (void)sub;
    ember_kv_watcher *w = ud;
    pthread_mutex_lock(&w->mu);
    if (w->stopped) {
        pthread_mutex_unlock(&w->mu);
        return;
    }
    tls_in_watch = w;
    if (ember_msg_header_get(m, "Ember-Watch-Init")) {
        if (!w->init_done) {
            w->init_done = true;
            w->fn(w->ud, NULL);
        }
    } else if (ember_msg_status(m) == 0) {
        ember_js_meta meta;
        uint64_t pending = 0, seq = 0;
        int64_t ts = 0;
        if (ember_js_msg_meta(m, &meta) == EMBER_OK) {
            pending = meta.num_pending;
            seq = meta.stream_seq;
            ts = meta.timestamp_ns;
        }
        ember_kv_entry *e =
            kv_entry_make(w->bucket, m->subject, m->subject_len, w->prefix_len, m->hdr,
                          m->hdr_len, m->data, m->data_len, seq, ts, pending);
        if (e) {
            w->fn(w->ud, e);
            free(e);
        }
        if (!w->init_done && pending == 0 && !w->stopped) {
            w->init_done = true;
            w->fn(w->ud, NULL);
        }
    }
    tls_in_watch = NULL;
    ember_free_fn f = NULL;
    if (w->stopped) {
        /* stopped from inside fn: free the host's data now that fn returned */
        f = w->free_ud;
        w->free_ud = NULL;
    }
    pthread_mutex_unlock(&w->mu);
    if (f)
        f(w->ud);
}

EMBER_API int ember_kv_watch(ember_kv *kv, const char *keys, ember_delivery mode,
                             ember_kv_watch_fn fn, void *userdata, ember_free_fn free_userdata,
                             ember_kv_watcher **out)
{
    int rc = EMBER_OK;
    if (!kv || !fn || !out || mode == EMBER_DELIVER_INLINE)
        rc = err_set(EMBER_EINVAL, "kv, fn or out is NULL, or mode is INLINE");
    char filter[4096];
    if (!rc)
        rc = subject_of(kv, keys ? keys : ">", true, filter, sizeof filter);
    ember_kv_watcher *w = NULL;
    if (!rc && !(w = calloc(1, sizeof *w)))
        rc = err_set(EMBER_ENOMEM, "out of memory");
    if (rc) {
        if (free_userdata)
            free_userdata(userdata);
        return rc;
    }
    atomic_init(&w->refs, 2);
    pthread_mutex_init(&w->mu, NULL);
    w->handle_done = true; /* until the watch is set up, this function owns the handle */
    w->kv = kv;
    w->bucket = strdup(kv->bucket);
    w->prefix_len = kv->prefix_len;
    w->conn = kv->conn;
    w->fn = fn;
    w->ud = userdata;
    w->free_ud = free_userdata;
    snprintf(w->stream, sizeof w->stream, "%s", kv->stream);
    char inbox[64], nuid[23];
    nuid_next(nuid);
    snprintf(inbox, sizeof inbox, "_INBOX.%s", nuid);
    rc = ember_conn_subscribe(&w->sub, kv->conn, inbox, NULL, mode, watch_msg, w,
                              watcher_sub_gone);
    if (rc) {
        /* the failed subscription released its userdata: watcher_sub_gone called the
         * host's free_userdata and dropped the subscription's reference */
        watcher_release(w);
        return rc;
    }
    js *j = conn_account(kv->conn)->js;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "stream_name", kv->stream);
    cJSON *cc = cJSON_AddObjectToObject(o, "config");
    cJSON_AddStringToObject(cc, "deliver_subject", inbox);
    cJSON_AddStringToObject(cc, "deliver_policy", "last_per_subject");
    cJSON_AddStringToObject(cc, "ack_policy", "none");
    cJSON_AddStringToObject(cc, "filter_subject", filter);
    cJSON_AddNumberToObject(cc, "max_deliver", 1);
    cJSON_AddBoolToObject(cc, "mem_storage", true);
    cJSON_AddNumberToObject(cc, "num_replicas", 1);
    char *body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char subj[512];
    snprintf(subj, sizeof subj, "$JS.API.CONSUMER.CREATE.%s", kv->stream);
    char *reply = NULL;
    size_t rl = 0;
    rc = !j ? err_set(EMBER_ESTATE, "JetStream not enabled")
            : !body ? err_set(EMBER_ENOMEM, "out of memory")
                    : js_api_call(j, subj, body, &reply, &rl);
    cJSON_free(body);
    cJSON *r = reply ? cJSON_ParseWithLength(reply, rl) : NULL;
    free(reply);
    uint64_t pending = 0;
    if (!rc) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(r, "error");
        const char *name = js_get_str(r, "name", NULL);
        if (e || !name) {
            const char *d = js_get_str(e, "description", NULL);
            rc = err_set(cJSON_IsObject(e) && js_get_str(e, "description", NULL) &&
                                 strstr(d, "stream not found")
                             ? EMBER_ENOTFOUND
                             : EMBER_EINVAL,
                         "watch: %s", d ? d : "no consumer");
        } else {
            snprintf(w->consumer, sizeof w->consumer, "%s", name);
            js_get_u64(r, "num_pending", &pending, NULL);
        }
    }
    cJSON_Delete(r);
    if (rc) {
        pthread_mutex_lock(&w->mu);
        w->stopped = true;
        ember_free_fn f = w->free_ud;
        w->free_ud = NULL;
        pthread_mutex_unlock(&w->mu);
        ember_sub_unsubscribe(w->sub);
        if (f)
            f(w->ud);
        watcher_release(w);
        return rc;
    }
    if (pending == 0) {
        /* nothing to replay: the end-of-initial-values marker goes through the same
         * queue as the entries, so fn sees it on its delivery thread */
        static const char h[] = "NATS/1.0\r\nEmber-Watch-Init: 1\r\n\r\n";
        msgview mv;
        memset(&mv, 0, sizeof mv);
        mv.subject = inbox;
        mv.subject_len = strlen(inbox);
        mv.hdr = h;
        mv.hdr_len = sizeof h - 1;
        mv.data = "";
        /* from the server itself: also reaches a no_echo connection */
        acc_publish(conn_account(kv->conn), &mv);
    }
    pthread_mutex_lock(&w->mu);
    w->handle_done = false;
    pthread_mutex_unlock(&w->mu);
    *out = w;
    return EMBER_OK;
}

EMBER_API void ember_kv_watch_stop(ember_kv_watcher *w)
{
    if (!w)
        return;
    bool inside = tls_in_watch == w;
    if (!inside)
        pthread_mutex_lock(&w->mu);
    w->stopped = true;
    w->handle_done = true;
    ember_sub *sub = w->sub;
    if (!inside)
        pthread_mutex_unlock(&w->mu);
    if (sub)
        ember_sub_unsubscribe(sub);
    js *j = conn_check(w->conn) == 0 ? conn_account(w->conn)->js : NULL;
    if (j && w->consumer[0]) {
        char subj[600];
        snprintf(subj, sizeof subj, "$JS.API.CONSUMER.DELETE.%s.%s", w->stream, w->consumer);
        char *reply = NULL;
        size_t rl;
        js_api_call(j, subj, NULL, &reply, &rl);
        free(reply);
    }
    if (!inside) {
        pthread_mutex_lock(&w->mu);
        ember_free_fn f = w->free_ud;
        w->free_ud = NULL;
        pthread_mutex_unlock(&w->mu);
        if (f)
            f(w->ud);
    }
    watcher_release(w);
}
