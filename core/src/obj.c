/* obj: the native object-store API of ember.h (ADR-20 buckets over JetStream streams).
 * Bucket B is the stream OBJ_B on $O.B.C.> and $O.B.M.>; an object is its chunks on
 * $O.B.C.<nuid> and one metadata message (the clients' JSON) on $O.B.M.<base64url name>.
 * Reads (info, get, list) go straight to the bucket stream's store; writes go through
 * the stream publish path (ember_js_publish / _async) with the headers the NATS clients
 * use, and purges through the same API handlers as the wire. SHA-256 comes from
 * libcrypto (OpenSSL's EVP interface). */
#define _GNU_SOURCE
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "js.h"
#include "js_stream.h"
#include "msg.h"

#define OBJ_DEFAULT_CHUNK (128u * 1024u)
#define OBJ_NAME_MAX 2048
#define OBJ_DIGEST_PREFIX "SHA-256="
#define OBJ_SHA_LEN 32
/* chunk publishes in flight per writer (their acks are awaited before the metadata) */
#define OBJ_WINDOW 64
/* conditional metadata writes lost to a concurrent writer before giving up */
#define OBJ_RETRIES 64
/* links followed by a get (the clients never link to a link; this stops a cycle) */
#define OBJ_LINK_DEPTH 4

struct ember_obj {
    ember_conn *conn;
    char *bucket;
    char *stream;       /* OBJ_<bucket> */
    uint32_t chunk_size;
};

static int name_check(const char *name)
{
    if (!name || !*name)
        return err_set(EMBER_EINVAL, "object name is empty");
    if (strlen(name) > OBJ_NAME_MAX)
        return err_set(EMBER_EINVAL, "object name longer than %d bytes", OBJ_NAME_MAX);
    return EMBER_OK;
}

/* "$O.<bucket>.M.<base64url padded name>", malloc'd (NULL: out of memory). */
static char *meta_subject(const char *bucket, const char *name)
{
    char *b = js_b64_encode(name, strlen(name));
    if (!b)
        return NULL;
    for (char *p = b; *p; p++) {
        if (*p == '+')
            *p = '-';
        else if (*p == '/')
            *p = '_';
    }
    char *s = NULL;
    if (asprintf(&s, "$O.%s.M.%s", bucket, b) < 0)
        s = NULL;
    free(b);
    return s;
}

/* ------------------------------------------------------------------ buckets */

EMBER_API void ember_obj_config_init(ember_obj_config *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->size = sizeof *cfg;
    cfg->max_bytes = -1;
    cfg->chunk_size = OBJ_DEFAULT_CHUNK;
}

EMBER_API void ember_obj_put_options_init(ember_obj_put_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->size = sizeof *opts;
}

static int obj_new(ember_conn *c, const char *bucket, uint32_t chunk_size, ember_obj **out)
{
    ember_obj *o = calloc(1, sizeof *o);
    if (!o)
        return err_set(EMBER_ENOMEM, "out of memory");
    o->conn = c;
    o->chunk_size = chunk_size ? chunk_size : OBJ_DEFAULT_CHUNK;
    o->bucket = strdup(bucket);
    if (asprintf(&o->stream, "OBJ_%s", bucket) < 0)
        o->stream = NULL;
    if (!o->bucket || !o->stream) {
        ember_obj_close(o);
        return err_set(EMBER_ENOMEM, "out of memory");
    }
    *out = o;
    return EMBER_OK;
}

EMBER_API void ember_obj_close(ember_obj *obj)
{
    if (!obj)
        return;
    free(obj->bucket);
    free(obj->stream);
    free(obj);
}

EMBER_API int ember_obj_bucket_create(ember_conn *c, const ember_obj_config *in, ember_obj **out)
{
    if (!out)
        return err_set(EMBER_EINVAL, "out is NULL");
    *out = NULL;
    if (!in || in->size == 0 || in->size > sizeof(ember_obj_config))
        return err_set(EMBER_EINVAL, "config not initialised with ember_obj_config_init");
    ember_obj_config cfg;
    ember_obj_config_init(&cfg);
    memcpy(&cfg, in, in->size);
    if (!js_bucket_name_valid(cfg.bucket))
        return err_set(EMBER_EINVAL, "invalid bucket name");
    if (cfg.ttl_ms < 0)
        return err_set(EMBER_EINVAL, "invalid ttl");
    char stream[256], chunks[256], meta[256];
    snprintf(stream, sizeof stream, "OBJ_%s", cfg.bucket);
    snprintf(chunks, sizeof chunks, "$O.%s.C.>", cfg.bucket);
    snprintf(meta, sizeof meta, "$O.%s.M.>", cfg.bucket);
    const char *subjects[] = {chunks, meta};
    ember_stream_config sc;
    ember_stream_config_init(&sc);
    sc.name = stream;
    sc.subjects = subjects;
    sc.nsubjects = 2;
    sc.description = cfg.description;
    sc.storage = cfg.storage;
    sc.max_bytes = cfg.max_bytes;
    sc.max_age_ms = cfg.ttl_ms;
    sc.discard = EMBER_DISCARD_NEW;
    sc.allow_rollup = true;
    sc.allow_direct = true;
    int rc = ember_js_stream_create(c, &sc);
    if (rc)
        return rc;
    return obj_new(c, cfg.bucket, cfg.chunk_size, out);
}

EMBER_API int ember_obj_bucket_open(ember_conn *c, const char *bucket, ember_obj **out)
{
    if (!out)
        return err_set(EMBER_EINVAL, "out is NULL");
    *out = NULL;
    if (!js_bucket_name_valid(bucket))
        return err_set(EMBER_EINVAL, "invalid bucket name");
    char stream[256];
    snprintf(stream, sizeof stream, "OBJ_%s", bucket);
    ember_stream_info si;
    int rc = ember_js_stream_info(c, stream, &si);
    if (rc == EMBER_ENOTFOUND)
        return err_set(EMBER_ENOTFOUND, "bucket not found");
    if (rc)
        return rc;
    return obj_new(c, bucket, OBJ_DEFAULT_CHUNK, out);
}

EMBER_API int ember_obj_bucket_delete(ember_conn *c, const char *bucket)
{
    if (!js_bucket_name_valid(bucket))
        return err_set(EMBER_EINVAL, "invalid bucket name");
    char stream[256];
    snprintf(stream, sizeof stream, "OBJ_%s", bucket);
    int rc = ember_js_stream_delete(c, stream);
    if (rc == EMBER_ENOTFOUND)
        return err_set(EMBER_ENOTFOUND, "bucket not found");
    return rc;
}

/* A bucket's stream, retained (EMBER_ENOTFOUND "bucket not found"). */
static int bucket_stream(ember_conn *c, const char *stream, jstream **out)
{
    return js_conn_stream(c, stream, "bucket not found", out);
}

/* ------------------------------------------------------------------ metadata */

EMBER_API void ember_obj_info_free(ember_obj_info *info) { free(info); }

/* The metadata message of an object: its JSON and where it is. */
typedef struct meta_rec {
    cJSON *json;        /* the parsed metadata */
    uint64_t seq;
    int64_t ts;
} meta_rec;

/* Load the latest metadata message of name in bucket (stream OBJ_<bucket>).
 * EMBER_ENOTFOUND "object not found" when there is none. */
static int meta_load(ember_conn *c, const char *bucket, const char *name, meta_rec *out)
{
    memset(out, 0, sizeof *out);
    int rc = name_check(name);
    if (rc)
        return rc;
    char stream[256];
    snprintf(stream, sizeof stream, "OBJ_%s", bucket);
    char *subj = meta_subject(bucket, name);
    if (!subj)
        return err_set(EMBER_ENOMEM, "out of memory");
    jstream *s;
    if ((rc = bucket_stream(c, stream, &s))) {
        free(subj);
        return rc;
    }
    store_msg *m = NULL;
    rc = store_load_last(s->st, subj, &m);
    js_stream_release(s);
    free(subj);
    if (rc == EMBER_ENOTFOUND)
        return err_set(EMBER_ENOTFOUND, "object not found");
    if (rc)
        return err_set(rc, "load failed: %s", store_strerror(rc));
    out->json = cJSON_ParseWithLength(m->data, m->data_len);
    out->seq = m->seq;
    out->ts = m->ts;
    store_msg_release(m);
    if (!cJSON_IsObject(out->json)) {
        cJSON_Delete(out->json);
        out->json = NULL;
        return err_set(EMBER_EIO, "bad object metadata for \"%s\"", name);
    }
    return EMBER_OK;
}

static bool meta_deleted(const cJSON *j)
{
    bool d = false;
    js_get_bool(j, "deleted", &d, NULL);
    return d;
}

/* The info of a metadata record, one allocation (NULL: out of memory). */
static ember_obj_info *info_make(const cJSON *j, const char *bucket, const char *name,
                                 uint64_t seq, int64_t ts)
{
    const char *nm = js_get_str(j, "name", NULL);
    const char *bk = js_get_str(j, "bucket", NULL);
    const char *desc = js_get_str(j, "description", NULL);
    const char *nuid = js_get_str(j, "nuid", NULL);
    const char *dig = js_get_str(j, "digest", NULL);
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive(j, "options");
    const cJSON *link = cJSON_GetObjectItemCaseSensitive(opts, "link");
    const char *lb = cJSON_IsObject(link) ? js_get_str(link, "bucket", NULL) : NULL;
    const char *ln = cJSON_IsObject(link) ? js_get_str(link, "name", NULL) : NULL;
    if (cJSON_IsObject(link) && !lb)
        lb = "";
    if (ln && !*ln)
        ln = NULL; /* a link to a whole bucket */
    const char *strs[7] = {bk ? bk : bucket, nm ? nm : name, desc ? desc : "",
                           nuid ? nuid : "", dig ? dig : "", lb, ln};
    size_t total = sizeof(ember_obj_info);
    for (int i = 0; i < 7; i++)
        total += strs[i] ? strlen(strs[i]) + 1 : 0;
    ember_obj_info *info = calloc(1, total);
    if (!info)
        return NULL;
    char *p = (char *)(info + 1);
    const char **dst[7] = {&info->bucket, &info->name, &info->description, &info->nuid,
                           &info->digest, &info->link_bucket, &info->link_name};
    for (int i = 0; i < 7; i++) {
        if (!strs[i])
            continue;
        size_t l = strlen(strs[i]);
        memcpy(p, strs[i], l + 1);
        *dst[i] = p;
        p += l + 1;
    }
    js_get_u64(j, "size", &info->size, NULL);
    js_get_u64(j, "chunks", &info->chunks, NULL);
    uint64_t cs = 0;
    if (js_get_u64(opts, "max_chunk_size", &cs, NULL) && cs <= UINT32_MAX)
        info->chunk_size = (uint32_t)cs;
    info->mtime_ns = ts;
    info->revision = seq;
    info->deleted = meta_deleted(j);
    return info;
}

EMBER_API int ember_obj_get_info(ember_obj *obj, const char *name, ember_obj_info **out)
{
    if (!out)
        return err_set(EMBER_EINVAL, "out is NULL");
    *out = NULL;
    if (!obj)
        return err_set(EMBER_EINVAL, "obj is NULL");
    meta_rec mr;
    int rc = meta_load(obj->conn, obj->bucket, name, &mr);
    if (rc)
        return rc;
    *out = info_make(mr.json, obj->bucket, name, mr.seq, mr.ts);
    cJSON_Delete(mr.json);
    return *out ? EMBER_OK : err_set(EMBER_ENOMEM, "out of memory");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

EMBER_API int ember_obj_list(ember_obj *obj, char ***names, size_t *n)
{
    if (!names || !n)
        return err_set(EMBER_EINVAL, "names or n is NULL");
    *names = NULL;
    *n = 0;
    if (!obj)
        return err_set(EMBER_EINVAL, "obj is NULL");
    jstream *s;
    int rc = bucket_stream(obj->conn, obj->stream, &s);
    if (rc)
        return rc;
    char filter[256];
    snprintf(filter, sizeof filter, "$O.%s.M.>", obj->bucket);
    store_subject_state *ss = NULL;
    size_t ns = 0;
    rc = store_subjects_state(s->st, filter, &ss, &ns);
    if (rc) {
        js_stream_release(s);
        return err_set(rc, "subjects: %s", store_strerror(rc));
    }
    /* the name of every metadata subject's latest message that is not a delete marker */
    char **tmp = calloc(ns ? ns : 1, sizeof *tmp);
    size_t live = 0, total = 0;
    for (size_t i = 0; tmp && i < ns; i++) {
        store_msg *m = NULL;
        if (store_load(s->st, ss[i].last_seq, &m) != EMBER_OK)
            continue;
        cJSON *j = cJSON_ParseWithLength(m->data, m->data_len);
        store_msg_release(m);
        const char *nm = js_get_str(j, "name", NULL);
        if (nm && *nm && !meta_deleted(j)) {
            tmp[live] = strdup(nm);
            if (tmp[live])
                total += strlen(tmp[live++]) + 1;
        }
        cJSON_Delete(j);
    }
    js_stream_release(s);
    free(ss);
    char **arr = tmp ? malloc((live ? live : 1) * sizeof(char *) + total) : NULL;
    if (!arr) {
        for (size_t i = 0; tmp && i < live; i++)
            free(tmp[i]);
        free(tmp);
        return err_set(EMBER_ENOMEM, "out of memory");
    }
    qsort(tmp, live, sizeof *tmp, cmp_str);
    char *p = (char *)(arr + (live ? live : 1));
    for (size_t i = 0; i < live; i++) {
        size_t l = strlen(tmp[i]);
        memcpy(p, tmp[i], l + 1);
        arr[i] = p;
        p += l + 1;
        free(tmp[i]);
    }
    free(tmp);
    *names = arr;
    *n = live;
    return EMBER_OK;
}

/* ------------------------------------------------------------------ writes */

static int purge_subject(ember_conn *c, const char *stream, const char *subj)
{
    return ember_js_stream_purge(c, stream, subj, NULL);
}

/* Publish data on subj with headers (NULL-terminated key, value pairs) and wait until it
 * is stored; *seq gets its sequence. */
static int publish_wait(ember_conn *c, const char *subj, const void *data, size_t len,
                        const char *const *hdrs, uint64_t *seq)
{
    ember_msg *m;
    int rc = ember_msg_new(&m, subj, NULL, data, len);
    if (rc)
        return rc;
    for (size_t i = 0; hdrs && hdrs[i]; i += 2)
        if ((rc = ember_msg_header_set(m, hdrs[i], hdrs[i + 1]))) {
            ember_msg_release(m);
            return rc;
        }
    ember_pub_ack ack;
    rc = ember_js_publish(c, m, &ack);
    ember_msg_release(m);
    if (rc == EMBER_ENOTFOUND && strstr(ember_last_error(), "no stream"))
        return err_set(EMBER_ENOTFOUND, "bucket not found");
    if (rc == EMBER_OK && seq)
        *seq = ack.seq;
    return rc;
}

/* Publish a metadata document on subj with the clients' rollup header, on condition that
 * the subject's last message is still `last` (0: none): EMBER_EWRONGSEQ when another
 * writer came first. */
static int publish_meta(ember_conn *c, const char *subj, const char *body, uint64_t last,
                        uint64_t *seq)
{
    char exp[24];
    snprintf(exp, sizeof exp, "%llu", (unsigned long long)last);
    const char *h[] = {"Nats-Rollup", "sub", "Nats-Expected-Last-Subject-Sequence", exp, NULL};
    return publish_wait(c, subj, body, strlen(body), h, seq);
}

struct ember_obj_writer {
    ember_conn *conn;
    char *bucket;
    char *stream;
    char *name;
    char *description;
    char *meta_subj;
    char chunk_subj[256];
    char nuid[23];
    uint32_t chunk_size;
    unsigned char *buf;        /* the chunk being filled */
    size_t fill;
    EVP_MD_CTX *sha;
    uint64_t size, chunks;
    int err;                   /* sticky: the first failure */
    char err_text[512];
    /* chunk publishes in flight: their acks arrive on the store's flusher thread */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int inflight;              /* (mu) */
    int ack_err;               /* (mu) the first failed ack */
    char ack_text[512];        /* (mu) */
};

static void writer_free(ember_obj_writer *w)
{
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    EVP_MD_CTX_free(w->sha);
    free(w->buf);
    free(w->bucket);
    free(w->stream);
    free(w->name);
    free(w->description);
    free(w->meta_subj);
    free(w);
}

/* Record the writer's first error (its text from ember_last_error) and return it. */
static int writer_fail(ember_obj_writer *w, int rc)
{
    if (!w->err) {
        w->err = rc;
        snprintf(w->err_text, sizeof w->err_text, "%s", ember_last_error());
    }
    return rc;
}

/* Set the writer's error as this thread's last error and return it. */
static int writer_error(ember_obj_writer *w)
{
    return err_set(w->err, "%s", w->err_text);
}

static void chunk_acked(void *ud, int status, const ember_pub_ack *ack)
{
    (void)ack;
    ember_obj_writer *w = ud;
    pthread_mutex_lock(&w->mu);
    if (status && !w->ack_err) {
        w->ack_err = status;
        snprintf(w->ack_text, sizeof w->ack_text, "%s", ember_last_error());
    }
    w->inflight--;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Wait until at most max chunk publishes are in flight; take over a failed ack. */
static int writer_wait(ember_obj_writer *w, int max)
{
    pthread_mutex_lock(&w->mu);
    while (w->inflight > max)
        pthread_cond_wait(&w->cv, &w->mu);
    int rc = w->ack_err;
    if (rc && !w->err) {
        w->err = rc;
        snprintf(w->err_text, sizeof w->err_text, "%s", w->ack_text);
    }
    pthread_mutex_unlock(&w->mu);
    return rc ? w->err : EMBER_OK;
}

static int send_chunk(ember_obj_writer *w, const void *data, size_t len)
{
    int rc = writer_wait(w, OBJ_WINDOW - 1);
    if (rc)
        return rc;
    ember_msg *m;
    if ((rc = ember_msg_new(&m, w->chunk_subj, NULL, data, len)))
        return writer_fail(w, rc);
    if (EVP_DigestUpdate(w->sha, data, len) != 1) {
        ember_msg_release(m);
        return writer_fail(w, err_set(EMBER_EIO, "sha-256 failed"));
    }
    pthread_mutex_lock(&w->mu);
    w->inflight++;
    pthread_mutex_unlock(&w->mu);
    rc = ember_js_publish_async(w->conn, m, chunk_acked, w);
    ember_msg_release(m);
    if (rc) {
        pthread_mutex_lock(&w->mu);
        w->inflight--;
        pthread_mutex_unlock(&w->mu);
        if (rc == EMBER_ENOTFOUND && strstr(ember_last_error(), "no stream"))
            rc = err_set(EMBER_ENOTFOUND, "bucket not found");
        return writer_fail(w, rc);
    }
    w->size += len;
    w->chunks++;
    return EMBER_OK;
}

EMBER_API int ember_obj_writer_open(ember_obj *obj, const char *name,
                                    const ember_obj_put_options *in, ember_obj_writer **out)
{
    if (!out)
        return err_set(EMBER_EINVAL, "out is NULL");
    *out = NULL;
    if (!obj)
        return err_set(EMBER_EINVAL, "obj is NULL");
    int rc = name_check(name);
    if (rc)
        return rc;
    ember_obj_put_options opts;
    ember_obj_put_options_init(&opts);
    if (in) {
        if (in->size == 0 || in->size > sizeof opts)
            return err_set(EMBER_EINVAL, "options not initialised with ember_obj_put_options_init");
        memcpy(&opts, in, in->size);
    }
    if ((rc = conn_check(obj->conn)))
        return rc;
    int64_t max_payload = conn_server(obj->conn)->opts.max_payload;
    uint32_t cs = opts.chunk_size ? opts.chunk_size : obj->chunk_size;
    if (max_payload > 0 && (int64_t)cs > max_payload)
        cs = (uint32_t)max_payload; /* as the clients do */
    ember_obj_writer *w = calloc(1, sizeof *w);
    if (!w)
        return err_set(EMBER_ENOMEM, "out of memory");
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->conn = obj->conn;
    w->chunk_size = cs;
    w->bucket = strdup(obj->bucket);
    w->stream = strdup(obj->stream);
    w->name = strdup(name);
    w->description = opts.description && *opts.description ? strdup(opts.description) : NULL;
    w->meta_subj = meta_subject(obj->bucket, name);
    w->sha = EVP_MD_CTX_new();
    nuid_next(w->nuid);
    snprintf(w->chunk_subj, sizeof w->chunk_subj, "$O.%s.C.%s", obj->bucket, w->nuid);
    if (!w->bucket || !w->stream || !w->name || !w->meta_subj || !w->sha ||
        (opts.description && *opts.description && !w->description)) {
        writer_free(w);
        return err_set(EMBER_ENOMEM, "out of memory");
    }
    if (EVP_DigestInit_ex(w->sha, EVP_sha256(), NULL) != 1) {
        writer_free(w);
        return err_set(EMBER_EIO, "sha-256 not available");
    }
    /* the bucket must exist now: a missing one is reported here, not at commit */
    jstream *s;
    if ((rc = bucket_stream(obj->conn, obj->stream, &s))) {
        writer_free(w);
        return rc;
    }
    js_stream_release(s);
    *out = w;
    return EMBER_OK;
}

EMBER_API int ember_obj_writer_write(ember_obj_writer *w, const void *data, size_t len)
{
    if (!w)
        return err_set(EMBER_EINVAL, "writer is NULL");
    if (w->err)
        return writer_error(w);
    if (!data && len)
        return err_set(EMBER_EINVAL, "data is NULL with a non-zero length");
    const unsigned char *p = data;
    while (len) {
        if (w->fill == 0 && len >= w->chunk_size) {
            /* a whole chunk straight from the caller's buffer */
            int rc = send_chunk(w, p, w->chunk_size);
            if (rc)
                return rc;
            p += w->chunk_size;
            len -= w->chunk_size;
            continue;
        }
        if (!w->buf && !(w->buf = malloc(w->chunk_size)))
            return writer_fail(w, err_set(EMBER_ENOMEM, "out of memory"));
        size_t n = w->chunk_size - w->fill;
        if (n > len)
            n = len;
        memcpy(w->buf + w->fill, p, n);
        w->fill += n;
        p += n;
        len -= n;
        if (w->fill == w->chunk_size) {
            w->fill = 0;
            int rc = send_chunk(w, w->buf, w->chunk_size);
            if (rc)
                return rc;
        }
    }
    return EMBER_OK;
}

/* Wait for every chunk in flight, then purge what was stored. */
static void writer_discard(ember_obj_writer *w)
{
    writer_wait(w, 0);
    if (w->chunks && conn_check(w->conn) == EMBER_OK) {
        int saved = w->err;
        char text[512];
        snprintf(text, sizeof text, "%s", ember_last_error());
        purge_subject(w->conn, w->stream, w->chunk_subj);
        if (saved)
            err_set(saved, "%s", text); /* the purge does not hide the reason */
    }
}

EMBER_API void ember_obj_writer_abort(ember_obj_writer *w)
{
    if (!w)
        return;
    writer_discard(w);
    writer_free(w);
}

/* The SHA-256 digest as the clients write it: "SHA-256=" + base64url with padding. */
static char *digest_string(const unsigned char *sum)
{
    char *b = js_b64_encode(sum, OBJ_SHA_LEN);
    if (!b)
        return NULL;
    for (char *p = b; *p; p++) {
        if (*p == '+')
            *p = '-';
        else if (*p == '/')
            *p = '_';
    }
    char *s = NULL;
    if (asprintf(&s, "%s%s", OBJ_DIGEST_PREFIX, b) < 0)
        s = NULL;
    free(b);
    return s;
}

static int writer_commit(ember_obj_writer *w, ember_obj_info **info)
{
    if (w->err)
        return writer_error(w);
    if (w->fill) {
        int rc = send_chunk(w, w->buf, w->fill);
        w->fill = 0;
        if (rc)
            return rc;
    }
    int rc = writer_wait(w, 0);
    if (rc)
        return writer_error(w);
    unsigned char sum[EVP_MAX_MD_SIZE];
    unsigned int sl = 0;
    if (EVP_DigestFinal_ex(w->sha, sum, &sl) != 1 || sl != OBJ_SHA_LEN)
        return writer_fail(w, err_set(EMBER_EIO, "sha-256 failed"));
    char *digest = digest_string(sum);
    char mtime[64];
    js_time_str(mtime, sizeof mtime, js_now_wall());
    /* the clients' ObjectInfo (nats.go field order) */
    cJSON *doc = cJSON_CreateObject();
    if (doc && digest) {
        cJSON_AddStringToObject(doc, "name", w->name);
        if (w->description)
            cJSON_AddStringToObject(doc, "description", w->description);
        cJSON *o = cJSON_AddObjectToObject(doc, "options");
        js_add_u64(o, "max_chunk_size", w->chunk_size);
        cJSON_AddStringToObject(doc, "bucket", w->bucket);
        cJSON_AddStringToObject(doc, "nuid", w->nuid);
        js_add_u64(doc, "size", w->size);
        cJSON_AddStringToObject(doc, "mtime", mtime);
        js_add_u64(doc, "chunks", w->chunks);
        cJSON_AddStringToObject(doc, "digest", digest);
    }
    free(digest);
    char *body = doc && digest ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    if (!body)
        return writer_fail(w, err_set(EMBER_ENOMEM, "out of memory"));
    /* replace the current metadata, conditionally: when another writer replaced it in
     * between, read it again, so that the chunks purged are those of the object this
     * one replaced */
    uint64_t seq = 0;
    char old_nuid[64] = "";
    bool old_live = false;
    rc = EMBER_EWRONGSEQ;
    for (int attempt = 0; attempt < OBJ_RETRIES && rc == EMBER_EWRONGSEQ; attempt++) {
        meta_rec mr;
        int lrc = meta_load(w->conn, w->bucket, w->name, &mr);
        if (lrc && lrc != EMBER_ENOTFOUND && lrc != EMBER_EIO) {
            rc = lrc;
            break;
        }
        old_nuid[0] = 0;
        old_live = false;
        if (lrc == EMBER_OK) {
            const char *nu = js_get_str(mr.json, "nuid", NULL);
            snprintf(old_nuid, sizeof old_nuid, "%s", nu ? nu : "");
            old_live = !meta_deleted(mr.json);
        }
        cJSON_Delete(mr.json);
        rc = publish_meta(w->conn, w->meta_subj, body, lrc == EMBER_ENOTFOUND ? 0 : mr.seq,
                          &seq);
    }
    if (rc) {
        cJSON_free(body);
        return writer_fail(w, rc);
    }
    if (old_live && old_nuid[0] && strcmp(old_nuid, w->nuid) != 0) {
        char old_subj[320];
        snprintf(old_subj, sizeof old_subj, "$O.%s.C.%s", w->bucket, old_nuid);
        purge_subject(w->conn, w->stream, old_subj); /* a failure leaves chunks, not errors */
    }
    w->chunks = 0; /* committed: nothing to purge any more */
    if (info) {
        int64_t ts = js_now_wall();
        jstream *s;
        if (bucket_stream(w->conn, w->stream, &s) == EMBER_OK) {
            store_msg *m = NULL;
            if (store_load(s->st, seq, &m) == EMBER_OK) {
                ts = m->ts;
                store_msg_release(m);
            }
            js_stream_release(s);
        }
        cJSON *j = cJSON_Parse(body);
        *info = j ? info_make(j, w->bucket, w->name, seq, ts) : NULL;
        cJSON_Delete(j);
        if (!*info) {
            cJSON_free(body);
            return err_set(EMBER_ENOMEM, "out of memory (the object was stored)");
        }
    }
    cJSON_free(body);
    return EMBER_OK;
}

EMBER_API int ember_obj_writer_commit(ember_obj_writer *w, ember_obj_info **info)
{
    if (info)
        *info = NULL;
    if (!w)
        return err_set(EMBER_EINVAL, "writer is NULL");
    int rc = writer_commit(w, info);
    if (rc)
        writer_discard(w);
    writer_free(w);
    return rc;
}

EMBER_API int ember_obj_put(ember_obj *obj, const char *name, const void *data, size_t len,
                            const ember_obj_put_options *opts, ember_obj_info **info)
{
    if (info)
        *info = NULL;
    if (!data && len)
        return err_set(EMBER_EINVAL, "data is NULL with a non-zero length");
    ember_obj_writer *w;
    int rc = ember_obj_writer_open(obj, name, opts, &w);
    if (rc)
        return rc;
    rc = ember_obj_writer_write(w, data, len);
    if (rc) {
        ember_obj_writer_abort(w);
        return rc;
    }
    return ember_obj_writer_commit(w, info);
}

EMBER_API int ember_obj_delete(ember_obj *obj, const char *name)
{
    if (!obj)
        return err_set(EMBER_EINVAL, "obj is NULL");
    int rc = name_check(name);
    if (rc)
        return rc;
    char *subj = meta_subject(obj->bucket, name);
    if (!subj)
        return err_set(EMBER_ENOMEM, "out of memory");
    char nuid[64] = "";
    rc = EMBER_EWRONGSEQ;
    for (int attempt = 0; attempt < OBJ_RETRIES && rc == EMBER_EWRONGSEQ; attempt++) {
        meta_rec mr;
        if ((rc = meta_load(obj->conn, obj->bucket, name, &mr)))
            break;
        if (meta_deleted(mr.json)) {
            cJSON_Delete(mr.json);
            rc = err_set(EMBER_ENOTFOUND, "object not found");
            break;
        }
        /* the clients' delete marker: the metadata as it was, emptied */
        cJSON *j = mr.json;
        const char *nu = js_get_str(j, "nuid", NULL);
        snprintf(nuid, sizeof nuid, "%s", nu ? nu : "");
        cJSON_DeleteItemFromObjectCaseSensitive(j, "deleted");
        cJSON_DeleteItemFromObjectCaseSensitive(j, "size");
        cJSON_DeleteItemFromObjectCaseSensitive(j, "chunks");
        cJSON_DeleteItemFromObjectCaseSensitive(j, "digest");
        js_add_u64(j, "size", 0);
        js_add_u64(j, "chunks", 0);
        cJSON_AddStringToObject(j, "digest", "");
        cJSON_AddBoolToObject(j, "deleted", true);
        char *body = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        rc = body ? publish_meta(obj->conn, subj, body, mr.seq, NULL)
                  : err_set(EMBER_ENOMEM, "out of memory");
        cJSON_free(body);
    }
    free(subj);
    if (rc)
        return rc;
    if (nuid[0]) {
        char chunks[320];
        snprintf(chunks, sizeof chunks, "$O.%s.C.%s", obj->bucket, nuid);
        rc = purge_subject(obj->conn, obj->stream, chunks);
    }
    return rc;
}

/* ------------------------------------------------------------------ reads */

struct ember_obj_reader {
    ember_conn *conn;
    char stream[264];           /* OBJ_<bucket> (bucket names are <= 200 bytes) */
    char chunk_subj[320];
    char bucket[256];          /* the bucket the object is in (after links) */
    ember_obj_info *info;
    unsigned char want[OBJ_SHA_LEN];
    EVP_MD_CTX *sha;
    store_msg *cur;             /* the chunk being read */
    size_t off;
    uint64_t next_seq;          /* where the next chunk is looked for */
    uint64_t got;               /* bytes of chunks loaded */
    bool done;
    int err;                    /* sticky */
    char err_text[512];
};

/* A nuid names one subject token. */
static bool nuid_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (const char *p = s; *p; p++)
        if (*p == '.' || *p == '*' || *p == '>' || (unsigned char)*p <= ' ')
            return false;
    return true;
}

static bool is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

/* Parse "SHA-256=<base64url padded | base64 | hex>" (as nats.js accepts it). */
static int digest_parse(const char *d, unsigned char *out)
{
    size_t pl = strlen(OBJ_DIGEST_PREFIX);
    if (!d || strncmp(d, OBJ_DIGEST_PREFIX, pl) != 0)
        return err_set(EMBER_EIO, "unknown digest type: %s", d ? d : "");
    const char *v = d + pl;
    size_t vl = strlen(v);
    if (vl == 2 * OBJ_SHA_LEN && is_hex(v, vl)) {
        for (size_t i = 0; i < OBJ_SHA_LEN; i++) {
            unsigned int b;
            sscanf(v + 2 * i, "%2x", &b);
            out[i] = (unsigned char)b;
        }
        return EMBER_OK;
    }
    size_t n = 0;
    unsigned char *raw = js_b64_decode(v, &n);
    if (!raw || n != OBJ_SHA_LEN) {
        free(raw);
        return err_set(EMBER_EIO, "unable to parse digest: %s", d);
    }
    memcpy(out, raw, OBJ_SHA_LEN);
    free(raw);
    return EMBER_OK;
}

EMBER_API void ember_obj_reader_close(ember_obj_reader *r)
{
    if (!r)
        return;
    if (r->cur)
        store_msg_release(r->cur);
    EVP_MD_CTX_free(r->sha);
    free(r->info);
    free(r);
}

EMBER_API int ember_obj_reader_open(ember_obj *obj, const char *name, ember_obj_reader **out)
{
    if (!out)
        return err_set(EMBER_EINVAL, "out is NULL");
    *out = NULL;
    if (!obj)
        return err_set(EMBER_EINVAL, "obj is NULL");
    int rc = name_check(name);
    if (rc)
        return rc;
    char bucket[256], nm[OBJ_NAME_MAX + 1];
    snprintf(bucket, sizeof bucket, "%s", obj->bucket);
    snprintf(nm, sizeof nm, "%s", name);
    ember_obj_info *info = NULL;
    for (int depth = 0;; depth++) {
        meta_rec mr;
        if ((rc = meta_load(obj->conn, bucket, nm, &mr))) {
            if (rc == EMBER_ENOTFOUND && depth > 0)
                rc = err_set(EMBER_ENOTFOUND, "linked object not found");
            return rc;
        }
        info = info_make(mr.json, bucket, nm, mr.seq, mr.ts);
        cJSON_Delete(mr.json);
        if (!info)
            return err_set(EMBER_ENOMEM, "out of memory");
        if (info->deleted) {
            free(info);
            return err_set(EMBER_ENOTFOUND, depth ? "linked object not found" : "object not found");
        }
        if (!info->link_bucket)
            break;
        /* a link made by a client: read the object it points to */
        bool to_bucket = !info->link_name;
        bool bad = !js_bucket_name_valid(info->link_bucket) ||
                   (info->link_name && name_check(info->link_name) != EMBER_OK);
        if (!to_bucket && !bad) {
            snprintf(bucket, sizeof bucket, "%s", info->link_bucket);
            snprintf(nm, sizeof nm, "%s", info->link_name);
        }
        free(info);
        if (to_bucket)
            return err_set(EMBER_EINVAL, "object is a link to a bucket");
        if (bad)
            return err_set(EMBER_EIO, "bad object link");
        if (depth + 1 >= OBJ_LINK_DEPTH)
            return err_set(EMBER_EINVAL, "too many links");
    }
    ember_obj_reader *r = calloc(1, sizeof *r);
    if (!r) {
        free(info);
        return err_set(EMBER_ENOMEM, "out of memory");
    }
    r->conn = obj->conn;
    r->info = info;
    snprintf(r->stream, sizeof r->stream, "OBJ_%s", bucket);
    snprintf(r->bucket, sizeof r->bucket, "%s", bucket);
    snprintf(r->chunk_subj, sizeof r->chunk_subj, "$O.%s.C.%s", bucket, info->nuid);
    if (!nuid_valid(info->nuid)) {
        ember_obj_reader_close(r);
        return err_set(EMBER_EIO, "bad object metadata: nuid \"%s\"", info->nuid);
    }
    if ((rc = digest_parse(info->digest, r->want))) {
        ember_obj_reader_close(r);
        return rc;
    }
    r->sha = EVP_MD_CTX_new();
    if (!r->sha || EVP_DigestInit_ex(r->sha, EVP_sha256(), NULL) != 1) {
        ember_obj_reader_close(r);
        return err_set(EMBER_EIO, "sha-256 not available");
    }
    *out = r;
    return EMBER_OK;
}

EMBER_API const ember_obj_info *ember_obj_reader_info(const ember_obj_reader *r)
{
    return r ? r->info : NULL;
}

static int reader_fail(ember_obj_reader *r, int rc)
{
    r->err = rc;
    snprintf(r->err_text, sizeof r->err_text, "%s", ember_last_error());
    return rc;
}

/* Every chunk was read: check the size and the digest. */
static int reader_finish(ember_obj_reader *r)
{
    unsigned char sum[EVP_MAX_MD_SIZE];
    unsigned int sl = 0;
    if (EVP_DigestFinal_ex(r->sha, sum, &sl) != 1 || sl != OBJ_SHA_LEN)
        return reader_fail(r, err_set(EMBER_EIO, "sha-256 failed"));
    if (r->got == r->info->size && memcmp(sum, r->want, OBJ_SHA_LEN) == 0) {
        r->done = true;
        return EMBER_OK;
    }
    /* tell a replaced or deleted object from a damaged one */
    meta_rec mr;
    int lrc = meta_load(r->conn, r->bucket, r->info->name, &mr);
    cJSON_Delete(mr.json);
    if (lrc != EMBER_OK || mr.seq != r->info->revision)
        return reader_fail(r, err_set(EMBER_EIO, "digest mismatch: the object was replaced "
                                                 "or deleted while it was read"));
    return reader_fail(r, err_set(EMBER_EIO,
                                  "digest mismatch: read %llu bytes, the object has %llu",
                                  (unsigned long long)r->got,
                                  (unsigned long long)r->info->size));
}

/* Load the next chunk into r->cur; EMBER_ENOTFOUND when there is none. */
static int reader_next_chunk(ember_obj_reader *r)
{
    jstream *s;
    int rc = bucket_stream(r->conn, r->stream, &s);
    if (rc)
        return rc == EMBER_ENOTFOUND ? err_set(EMBER_EIO, "digest mismatch: the bucket was "
                                                          "deleted while it was read")
                                     : rc;
    store_msg *m = NULL;
    rc = store_load_next(s->st, r->chunk_subj, r->next_seq, &m);
    js_stream_release(s);
    if (rc == EMBER_ENOTFOUND)
        return rc;
    if (rc)
        return err_set(rc == EMBER_ECLOSED ? EMBER_ECLOSED : EMBER_EIO, "load failed: %s",
                       store_strerror(rc));
    r->next_seq = m->seq + 1;
    r->got += m->data_len;
    if (r->got > r->info->size) {
        store_msg_release(m);
        return err_set(EMBER_EIO, "digest mismatch: more data than the object's %llu bytes",
                       (unsigned long long)r->info->size);
    }
    if (m->data_len && EVP_DigestUpdate(r->sha, m->data, m->data_len) != 1) {
        store_msg_release(m);
        return err_set(EMBER_EIO, "sha-256 failed");
    }
    r->cur = m;
    r->off = 0;
    return EMBER_OK;
}

EMBER_API int64_t ember_obj_reader_read(ember_obj_reader *r, void *buf, size_t cap)
{
    if (!r || !buf || cap == 0)
        return err_set(EMBER_EINVAL, "reader or buf is NULL, or cap is 0");
    if (r->err)
        return err_set(r->err, "%s", r->err_text);
    if (cap > INT64_MAX)
        cap = INT64_MAX;
    unsigned char *p = buf;
    size_t n = 0;
    while (n < cap && !r->done) {
        if (r->cur && r->off < r->cur->data_len) {
            size_t k = r->cur->data_len - r->off;
            if (k > cap - n)
                k = cap - n;
            memcpy(p + n, r->cur->data + r->off, k);
            r->off += k;
            n += k;
            continue;
        }
        if (r->cur) {
            store_msg_release(r->cur);
            r->cur = NULL;
        }
        int rc = reader_next_chunk(r);
        if (rc == EMBER_ENOTFOUND)
            rc = reader_finish(r);
        else if (rc)
            rc = reader_fail(r, rc);
        if (rc) {
            if (n)
                return (int64_t)n; /* the error comes with the next call */
            return rc;
        }
    }
    return (int64_t)n;
}

EMBER_API int ember_obj_get(ember_obj *obj, const char *name, void **data, size_t *len,
                            ember_obj_info **info)
{
    if (info)
        *info = NULL;
    if (!data || !len)
        return err_set(EMBER_EINVAL, "data or len is NULL");
    *data = NULL;
    *len = 0;
    ember_obj_reader *r;
    int rc = ember_obj_reader_open(obj, name, &r);
    if (rc)
        return rc;
    uint64_t size = r->info->size;
    unsigned char *buf = size < SIZE_MAX ? malloc((size_t)size + 1) : NULL;
    if (!buf) {
        ember_obj_reader_close(r);
        return err_set(EMBER_ENOMEM, "out of memory for an object of %llu bytes",
                       (unsigned long long)size);
    }
    size_t got = 0;
    int64_t n = 0;
    while (got < size && (n = ember_obj_reader_read(r, buf + got, (size_t)size - got)) > 0)
        got += (size_t)n;
    if (n >= 0) {
        /* the end: verifies the digest (and finds extra data) */
        unsigned char extra;
        n = ember_obj_reader_read(r, &extra, 1);
        if (n > 0)
            n = err_set(EMBER_EIO, "digest mismatch: more data than the object's size");
    }
    if (n < 0) {
        free(buf);
        ember_obj_reader_close(r);
        return (int)n;
    }
    buf[got] = 0;
    *data = buf;
    *len = got;
    if (info) {
        *info = r->info;
        r->info = NULL;
    }
    ember_obj_reader_close(r);
    return EMBER_OK;
}
