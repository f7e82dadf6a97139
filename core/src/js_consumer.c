/* js_consumer: JetStream consumers, as nats-server 2.11 (server/consumer.go and the
 * consumer half of server/jetstream_api.go; facts, not code).
 *
 * Everything runs under js->mu (js.h): the API handlers, acks and flow-control replies
 * take it themselves; js_consumers_deliver / js_consumers_tick are called by the JS thread
 * with it held. Messages leave through the js_outbox the caller sends after unlocking.
 *
 * One consumer = struct jconsumer, linked from its stream (s->consumers). Its state is
 * nats-server's: sseq (next stream sequence to look at), dseq (next delivery sequence),
 * the ack floors (adflr / asflr), pending acks (stream seq -> delivery seq + time),
 * redelivery counts (rdc), the redelivery queue (rdq), waiting pull requests, flow
 * control accounting and a cached num-pending count (npc, valid through stream seq npf).
 *
 * Delivery: c_run() is nats-server's loopAndGatherMsgs turned inside out: it delivers
 * what it can now (bounded per call) and returns. It only ever runs on the JS thread, so
 * a consumer's messages leave in order; the API, ack and flow-control handlers mark the
 * consumer (c_signal) and wake that thread. Timers (ack wait, pull expiry, heartbeats, inactivity, state writes) are due
 * times checked by js_consumers_tick.
 *
 * Durable consumers of file streams keep <stream dir>/obs/<name>/meta.json (the config)
 * and state.json (delivered, ack floor, pending acks with their delivery counts),
 * written through a temporary file and rename: on create/update, at most every 100 ms
 * while the state changes, and on close. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "account.h"
#include "js.h"
#include "js_consumer.h"
#include "js_stream.h"
#include "sublist.h"
#include "util.h"

#define NS_PER_MS 1000000ll
#define NS_PER_SEC 1000000000ll

/* nats-server constants */
#define ACK_WAIT_DEFAULT (30 * NS_PER_SEC)      /* JsAckWaitDefault */
#define DELETE_WAIT_DEFAULT (5 * NS_PER_SEC)    /* JsDeleteWaitTimeDefault */
#define FC_MAX_PENDING (32ll * 1024 * 1024)     /* JsFlowControlMaxPending */
#define MAX_ACK_PENDING_DEFAULT 1000            /* JsDefaultMaxAckPending */
#define WAIT_QUEUE_DEFAULT_MAX 512              /* JSWaitQueueDefaultMax */
#define ACK_WAIT_DELAY NS_PER_MS                /* ackWaitDelay */
#define MAX_DESCRIPTION_LEN (4 * 1024)          /* JSMaxDescriptionLen */
#define MAX_METADATA_LEN (128 * 1024)           /* JSMaxMetadataLen */
#define MAX_NAME_LEN 255                        /* JSMaxNameLen */
#define NAMES_LIMIT 1024                        /* JSApiNamesLimit */
#define LIST_LIMIT 256                          /* JSApiListLimit */

/* Ember's own bounds */
#define RUN_MAX_MSGS 256                        /* deliveries per c_run call */
#define RUN_MAX_BYTES (4ll * 1024 * 1024)
#define STATE_WRITE_INTERVAL (100 * NS_PER_MS)  /* as nats-server's consumer flusher */
#define PUSH_INTEREST_POLL (50 * NS_PER_MS)     /* re-check deliver-subject interest */

enum { DP_ALL = 0, DP_LAST, DP_NEW, DP_BY_START_SEQ, DP_BY_START_TIME, DP_LAST_PER_SUBJECT };
enum { AP_NONE = 0, AP_ALL, AP_EXPLICIT };
enum { RP_INSTANT = 0, RP_ORIGINAL };

static const char *dp_names[] = {"all", "last", "new", "by_start_sequence", "by_start_time",
                                 "last_per_subject"};
static const char *ap_names[] = {"none", "all", "explicit"};
static const char *rp_names[] = {"instant", "original"};

/* ------------------------------------------------------------------ small helpers */

static char *xstrndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

static char *xstrdup(const char *s) { return s ? xstrndup(s, strlen(s)) : NULL; }

static bool str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

/* Empty strings count as absent (Go's zero value with omitempty). */
static bool str_set(const char *s) { return s && *s; }

/* Go's time.Duration.String() ("1m0s", "1.5s", "500ms", "100µs"). */
static const char *go_duration(char *out, size_t cap, int64_t d)
{
    char buf[48];
    int w = (int)sizeof buf - 1;
    buf[w] = 0;
    if (d == 0) {
        snprintf(out, cap, "0s");
        return out;
    }
    bool neg = d < 0;
    uint64_t u = neg ? (uint64_t)0 - (uint64_t)d : (uint64_t)d;
#define PUT(c) (buf[--w] = (char)(c))
#define FRAC(prec)                                                 \
    do {                                                           \
        bool print_ = false;                                       \
        for (int i_ = 0; i_ < (prec); i_++) {                      \
            int dg_ = (int)(u % 10);                               \
            print_ = print_ || dg_ != 0;                           \
            if (print_)                                            \
                PUT('0' + dg_);                                    \
            u /= 10;                                               \
        }                                                          \
        if (print_)                                                \
            PUT('.');                                              \
    } while (0)
#define INT(v)                                                     \
    do {                                                           \
        uint64_t v_ = (v);                                         \
        if (v_ == 0)                                               \
            PUT('0');                                              \
        while (v_ > 0) {                                           \
            PUT('0' + (int)(v_ % 10));                             \
            v_ /= 10;                                              \
        }                                                          \
    } while (0)
    if (u < (uint64_t)NS_PER_SEC) {
        int prec;
        if (u < 1000) {
            prec = 0;
            PUT('s');
            PUT('n');
        } else if (u < 1000000) {
            prec = 3;
            PUT('s');
            PUT('\xb5');
            PUT('\xc2'); /* µ in UTF-8 */
        } else {
            prec = 6;
            PUT('s');
            PUT('m');
        }
        FRAC(prec);
        INT(u);
    } else {
        PUT('s');
        FRAC(9);
        INT(u % 60);
        u /= 60;
        if (u > 0) {
            PUT('m');
            INT(u % 60);
            u /= 60;
            if (u > 0) {
                PUT('h');
                INT(u);
            }
        }
    }
    if (neg)
        PUT('-');
#undef PUT
#undef FRAC
#undef INT
    snprintf(out, cap, "%s", buf + w);
    return out;
}

/* Wake the JS thread from a context that holds js->mu (js_kick would deadlock). */
static void kick_locked(js *j)
{
    atomic_store(&j->kicked, true);
    pthread_cond_signal(&j->cv);
}

/* Does anything subscribe to subj? (nats-server: acc.sl.HasInterest) */
static bool has_interest(js *j, const char *subj)
{
    if (!subj || !*subj)
        return false;
    sublist_result *r = sublist_match(j->acc->sl, subj, strlen(subj));
    bool any = r->npsubs > 0;
    for (size_t i = 0; !any && i < r->nqsubs; i++)
        any = r->qsubs[i].n > 0;
    sublist_result_release(r);
    return any;
}

/* ------------------------------------------------------------------ u64 map */

/* Open addressing (linear probing, backward-shift deletion), keys are stream sequences
 * (never 0). a/b are two values: pending = (delivery seq, timestamp); rdc = (count, -). */
typedef struct mapent {
    uint64_t k;
    uint64_t a;
    int64_t b;
} mapent;

typedef struct u64map {
    mapent *e;
    size_t cap, n;
} u64map;

static size_t map_hash(uint64_t k, size_t mask)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (size_t)k & mask;
}

static mapent *map_find(const u64map *m, uint64_t k)
{
    if (!m->n || !k)
        return NULL;
    size_t mask = m->cap - 1, i = map_hash(k, mask);
    while (m->e[i].k) {
        if (m->e[i].k == k)
            return &m->e[i];
        i = (i + 1) & mask;
    }
    return NULL;
}

static int map_grow(u64map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    mapent *ne = calloc(ncap, sizeof *ne);
    if (!ne)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->e[i].k)
            continue;
        size_t j = map_hash(m->e[i].k, ncap - 1);
        while (ne[j].k)
            j = (j + 1) & (ncap - 1);
        ne[j] = m->e[i];
    }
    free(m->e);
    m->e = ne;
    m->cap = ncap;
    return 0;
}

/* Find or insert k (new entries zeroed). NULL on ENOMEM. */
static mapent *map_put(u64map *m, uint64_t k, bool *created)
{
    if (created)
        *created = false;
    mapent *f = map_find(m, k);
    if (f)
        return f;
    if ((m->n + 1) * 10 > m->cap * 7 && map_grow(m) != 0)
        return NULL;
    size_t mask = m->cap - 1, i = map_hash(k, mask);
    while (m->e[i].k)
        i = (i + 1) & mask;
    m->e[i].k = k;
    m->e[i].a = 0;
    m->e[i].b = 0;
    m->n++;
    if (created)
        *created = true;
    return &m->e[i];
}

static bool map_del(u64map *m, uint64_t k)
{
    mapent *f = map_find(m, k);
    if (!f)
        return false;
    size_t mask = m->cap - 1, i = (size_t)(f - m->e), j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->e[j].k)
            break;
        size_t h = map_hash(m->e[j].k, mask);
        /* can the entry at j move to the hole at i? (h not cyclically in (i, j]) */
        if ((j > i && (h <= i || h > j)) || (j < i && (h <= i && h > j))) {
            m->e[i] = m->e[j];
            i = j;
        }
    }
    m->e[i].k = 0;
    m->n--;
    return true;
}

static void map_clear(u64map *m)
{
    free(m->e);
    m->e = NULL;
    m->cap = m->n = 0;
}

/* The keys, sorted (malloc'd; NULL when empty or on ENOMEM). */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t *map_keys_sorted(const u64map *m, size_t *n)
{
    *n = 0;
    if (!m->n)
        return NULL;
    uint64_t *k = malloc(m->n * sizeof *k);
    if (!k)
        return NULL;
    for (size_t i = 0; i < m->cap; i++)
        if (m->e[i].k)
            k[(*n)++] = m->e[i].k;
    qsort(k, *n, sizeof *k, cmp_u64);
    return k;
}

/* Go's json error text for a body that is not valid JSON. */
static void json_err_text(const char *data, size_t len, char *buf, size_t cap)
{
    if (!js_json_syntax_error(data, len, buf, cap))
        snprintf(buf, cap, "unexpected end of JSON input"); /* cJSON refused what Go takes */
}

/* ------------------------------------------------------------------ config */

typedef struct jc_cfg {
    char *durable, *name, *description;
    int deliver_policy;
    uint64_t opt_start_seq;
    bool has_start_time;
    int64_t opt_start_time;
    int ack_policy;
    int64_t ack_wait;
    int64_t max_deliver;
    int64_t *backoff;
    size_t nbackoff;
    char *filter_subject;
    char **filter_subjects;
    size_t nfilter_subjects;
    int replay_policy;
    uint64_t rate_limit;
    char *sample_freq;
    int64_t max_waiting, max_ack_pending;
    bool flow_control, headers_only;
    int64_t max_batch, max_expires, max_bytes;
    char *deliver_subject, *deliver_group;
    int64_t heartbeat, inactive_threshold;
    int64_t num_replicas;
    bool mem_storage, direct;
    char **mkeys, **mvals;   /* metadata, sorted by key */
    size_t nmeta;
    bool has_meta;           /* a (possibly empty) map is set */
    bool has_pause;
    int64_t pause_until;
    char **priority_groups;
    size_t npriority_groups;
    char *priority_policy;   /* NULL / "none" */
    int64_t priority_timeout;
} jc_cfg;

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void cfg_free(jc_cfg *c)
{
    free(c->durable);
    free(c->name);
    free(c->description);
    free(c->backoff);
    free(c->filter_subject);
    strv_free(c->filter_subjects, c->nfilter_subjects);
    free(c->sample_freq);
    free(c->deliver_subject);
    free(c->deliver_group);
    strv_free(c->mkeys, c->nmeta);
    strv_free(c->mvals, c->nmeta);
    strv_free(c->priority_groups, c->npriority_groups);
    free(c->priority_policy);
    memset(c, 0, sizeof *c);
}

static const char *meta_get(const jc_cfg *c, const char *k)
{
    for (size_t i = 0; i < c->nmeta; i++)
        if (!strcmp(c->mkeys[i], k))
            return c->mvals[i];
    return NULL;
}

static void meta_del(jc_cfg *c, const char *k)
{
    for (size_t i = 0; i < c->nmeta; i++) {
        if (!strcmp(c->mkeys[i], k)) {
            free(c->mkeys[i]);
            free(c->mvals[i]);
            memmove(c->mkeys + i, c->mkeys + i + 1, (c->nmeta - i - 1) * sizeof *c->mkeys);
            memmove(c->mvals + i, c->mvals + i + 1, (c->nmeta - i - 1) * sizeof *c->mvals);
            c->nmeta--;
            return;
        }
    }
}

/* Set (insert sorted or replace). */
static int meta_set(jc_cfg *c, const char *k, const char *v)
{
    size_t i = 0;
    while (i < c->nmeta && strcmp(c->mkeys[i], k) < 0)
        i++;
    char *nv = xstrdup(v);
    if (!nv)
        return -1;
    if (i < c->nmeta && !strcmp(c->mkeys[i], k)) {
        free(c->mvals[i]);
        c->mvals[i] = nv;
        c->has_meta = true;
        return 0;
    }
    char *nk = xstrdup(k);
    char **ks = realloc(c->mkeys, (c->nmeta + 1) * sizeof *ks);
    if (ks)
        c->mkeys = ks;
    char **vs = realloc(c->mvals, (c->nmeta + 1) * sizeof *vs);
    if (vs)
        c->mvals = vs;
    if (!nk || !ks || !vs) {
        free(nk);
        free(nv);
        return -1;
    }
    memmove(c->mkeys + i + 1, c->mkeys + i, (c->nmeta - i) * sizeof *c->mkeys);
    memmove(c->mvals + i + 1, c->mvals + i, (c->nmeta - i) * sizeof *c->mvals);
    c->mkeys[i] = nk;
    c->mvals[i] = nv;
    c->nmeta++;
    c->has_meta = true;
    return 0;
}

#define META_REQ_LEVEL "_nats.req.level"
#define META_VER "_nats.ver"
#define META_LEVEL "_nats.level"

/* setStaticConsumerMetadata: drop the dynamic keys, stamp the required API level. */
static int meta_set_static(jc_cfg *c)
{
    meta_del(c, META_VER);
    meta_del(c, META_LEVEL);
    int level = 0;
    if (c->has_pause && c->pause_until != 0)
        level = 1;
    if ((c->priority_policy && strcmp(c->priority_policy, "none")) || c->priority_timeout ||
        c->npriority_groups)
        level = 1;
    return meta_set(c, META_REQ_LEVEL, level ? "1" : "0");
}

/* copyConsumerMetadata(cfg, prev): dynamic keys out, req.level as prev has it. */
static int meta_copy_from(jc_cfg *c, const jc_cfg *prev)
{
    meta_del(c, META_VER);
    meta_del(c, META_LEVEL);
    const char *pv = meta_get(prev, META_REQ_LEVEL);
    if (pv)
        return meta_set(c, META_REQ_LEVEL, pv);
    meta_del(c, META_REQ_LEVEL);
    if (c->nmeta == 0)
        c->has_meta = false;
    return 0;
}

/* An error from parsing, validation or create: a JSE and the text of its placeholder. */
typedef struct jc_err {
    int jse;           /* -1: none */
    char arg[512];
} jc_err;

static int set_err(jc_err *e, int jse, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int set_err(jc_err *e, int jse, const char *fmt, ...)
{
    e->jse = jse;
    e->arg[0] = 0;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->arg, sizeof e->arg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static const char *json_type_name(const cJSON *v)
{
    if (cJSON_IsString(v))
        return "string";
    if (cJSON_IsNumber(v))
        return "number";
    if (cJSON_IsBool(v))
        return "bool";
    if (cJSON_IsArray(v))
        return "array";
    if (cJSON_IsObject(v))
        return "object";
    return "value";
}

/* Go's encoding/json error for a member of the wrong type. */
static int type_err(jc_err *e, const char *path, const char *field, const cJSON *v,
                    const char *gotype)
{
    return set_err(e, JSE_InvalidJSONErr,
                   "json: cannot unmarshal %s into Go struct field %s.%s of type %s",
                   json_type_name(v), path, field, gotype);
}

static int get_str(const cJSON *o, const char *path, const char *k, char **out, jc_err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v))
        return type_err(e, path, k, v, "string");
    free(*out);
    *out = xstrdup(v->valuestring);
    if (!*out)
        return set_err(e, JSE_InvalidJSONErr, "out of memory");
    return 0;
}

static int get_int(const cJSON *o, const char *path, const char *k, int64_t *out,
                   const char *gotype, jc_err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v || cJSON_IsNull(v))
        return 0;
    bool bad = false;
    if (!cJSON_IsNumber(v) || !js_get_i64(o, k, out, &bad) || bad) {
        if (cJSON_IsNumber(v)) {
            char *raw = cJSON_PrintUnformatted(v);
            set_err(e, JSE_InvalidJSONErr,
                    "json: cannot unmarshal number %s into Go struct field %s.%s of type %s",
                    raw ? raw : "", path, k, gotype);
            cJSON_free(raw);
            return -1;
        }
        return type_err(e, path, k, v, gotype);
    }
    return 0;
}

static int get_uint(const cJSON *o, const char *path, const char *k, uint64_t *out, jc_err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v || cJSON_IsNull(v))
        return 0;
    bool bad = false;
    if (!cJSON_IsNumber(v) || !js_get_u64(o, k, out, &bad) || bad)
        return type_err(e, path, k, v, "uint64");
    return 0;
}

static int get_bool(const cJSON *o, const char *path, const char *k, bool *out, jc_err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsBool(v))
        return type_err(e, path, k, v, "bool");
    *out = cJSON_IsTrue(v);
    return 0;
}

static int get_time(const cJSON *o, const char *path, const char *k, bool *has, int64_t *out,
                    jc_err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v))
        return type_err(e, path, k, v, "time.Time");
    /* beyond what int64 nanoseconds hold (year 2262): the far future */
    if (strlen(v->valuestring) > 4 && atoi(v->valuestring) > 2261 &&
        v->valuestring[4] == '-') {
        *out = INT64_MAX;
        *has = true;
        return 0;
    }
    if (js_time_parse(v->valuestring, out) != 0)
        return set_err(e, JSE_InvalidJSONErr, "parsing time \"\\\"%s\\\"\" as "
                       "\"\\\"2006-01-02T15:04:05Z07:00\\\"\": cannot parse", v->valuestring);
    *has = true;
    return 0;
}

/* A Go enum with a custom UnmarshalJSON: "can not unmarshal %q". */
static int get_enum(const cJSON *o, const char *k, const char *const *names, int n,
                    const char *alias, int alias_val, int *out, jc_err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v)
        return 0;
    if (cJSON_IsString(v)) {
        for (int i = 0; i < n; i++)
            if (!strcmp(v->valuestring, names[i])) {
                *out = i;
                return 0;
            }
        if (alias && !strcmp(v->valuestring, alias)) {
            *out = alias_val;
            return 0;
        }
        return set_err(e, JSE_InvalidJSONErr, "can not unmarshal \"\\\"%s\\\"\"", v->valuestring);
    }
    char *raw = cJSON_PrintUnformatted(v);
    set_err(e, JSE_InvalidJSONErr, "can not unmarshal \"%s\"", raw ? raw : "");
    cJSON_free(raw);
    return -1;
}

static int get_strv(const cJSON *o, const char *path, const char *k, char ***out, size_t *n,
                    jc_err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsArray(v))
        return type_err(e, path, k, v, "[]string");
    size_t cnt = (size_t)cJSON_GetArraySize(v), i = 0;
    char **r = cnt ? calloc(cnt, sizeof *r) : NULL;
    if (cnt && !r)
        return set_err(e, JSE_InvalidJSONErr, "out of memory");
    const cJSON *it;
    cJSON_ArrayForEach(it, v)
    {
        if (!cJSON_IsString(it)) {
            strv_free(r, cnt);
            return type_err(e, path, k, it, "string");
        }
        r[i++] = xstrdup(it->valuestring);
    }
    strv_free(*out, *n);
    *out = r;
    *n = cnt;
    return 0;
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Parse a ConsumerConfig object (unknown members ignored, as nats-server when not strict). */
static int cfg_parse(const cJSON *c, jc_cfg *cfg, jc_err *e)
{
    const char *P = "CreateConsumerRequest.config";
    memset(cfg, 0, sizeof *cfg);
    if (!c || cJSON_IsNull(c))
        return 0;
    if (!cJSON_IsObject(c))
        return set_err(e, JSE_InvalidJSONErr,
                       "json: cannot unmarshal %s into Go struct field CreateConsumerRequest.config of type server.ConsumerConfig",
                       json_type_name(c));
    int64_t i64;
    if (get_str(c, P, "durable_name", &cfg->durable, e) || get_str(c, P, "name", &cfg->name, e) ||
        get_str(c, P, "description", &cfg->description, e) ||
        get_enum(c, "deliver_policy", dp_names, 6, "undefined", DP_ALL, &cfg->deliver_policy, e) ||
        get_uint(c, P, "opt_start_seq", &cfg->opt_start_seq, e) ||
        get_time(c, P, "opt_start_time", &cfg->has_start_time, &cfg->opt_start_time, e) ||
        get_enum(c, "ack_policy", ap_names, 3, NULL, 0, &cfg->ack_policy, e) ||
        get_int(c, P, "ack_wait", &cfg->ack_wait, "time.Duration", e) ||
        get_int(c, P, "max_deliver", &cfg->max_deliver, "int", e) ||
        get_str(c, P, "filter_subject", &cfg->filter_subject, e) ||
        get_strv(c, P, "filter_subjects", &cfg->filter_subjects, &cfg->nfilter_subjects, e) ||
        get_enum(c, "replay_policy", rp_names, 2, NULL, 0, &cfg->replay_policy, e) ||
        get_uint(c, P, "rate_limit_bps", &cfg->rate_limit, e) ||
        get_str(c, P, "sample_freq", &cfg->sample_freq, e) ||
        get_int(c, P, "max_waiting", &cfg->max_waiting, "int", e) ||
        get_int(c, P, "max_ack_pending", &cfg->max_ack_pending, "int", e) ||
        get_bool(c, P, "flow_control", &cfg->flow_control, e) ||
        get_bool(c, P, "headers_only", &cfg->headers_only, e) ||
        get_int(c, P, "max_batch", &cfg->max_batch, "int", e) ||
        get_int(c, P, "max_expires", &cfg->max_expires, "time.Duration", e) ||
        get_int(c, P, "max_bytes", &cfg->max_bytes, "int", e) ||
        get_str(c, P, "deliver_subject", &cfg->deliver_subject, e) ||
        get_str(c, P, "deliver_group", &cfg->deliver_group, e) ||
        get_int(c, P, "idle_heartbeat", &cfg->heartbeat, "time.Duration", e) ||
        get_int(c, P, "inactive_threshold", &cfg->inactive_threshold, "time.Duration", e) ||
        get_int(c, P, "num_replicas", &cfg->num_replicas, "int", e) ||
        get_bool(c, P, "mem_storage", &cfg->mem_storage, e) ||
        get_bool(c, P, "direct", &cfg->direct, e) ||
        get_time(c, P, "pause_until", &cfg->has_pause, &cfg->pause_until, e) ||
        get_strv(c, P, "priority_groups", &cfg->priority_groups, &cfg->npriority_groups, e) ||
        get_str(c, P, "priority_policy", &cfg->priority_policy, e) ||
        get_int(c, P, "priority_timeout", &cfg->priority_timeout, "time.Duration", e))
        goto fail;
    const cJSON *bo = cJSON_GetObjectItemCaseSensitive(c, "backoff");
    if (bo && !cJSON_IsNull(bo)) {
        if (!cJSON_IsArray(bo)) {
            type_err(e, P, "backoff", bo, "[]time.Duration");
            goto fail;
        }
        size_t n = (size_t)cJSON_GetArraySize(bo), i = 0;
        cfg->backoff = n ? calloc(n, sizeof *cfg->backoff) : NULL;
        const cJSON *it;
        cJSON_ArrayForEach(it, bo)
        {
            if (!cJSON_IsNumber(it) || !(it->valuedouble >= -9.2e18 && it->valuedouble <= 9.2e18) ||
                it->valuedouble != (double)(int64_t)it->valuedouble) {
                type_err(e, P, "backoff", it, "time.Duration");
                goto fail;
            }
            if (cfg->backoff)
                cfg->backoff[i++] = (int64_t)it->valuedouble;
        }
        cfg->nbackoff = cfg->backoff ? n : 0;
    }
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(c, "metadata");
    if (md && !cJSON_IsNull(md)) {
        if (!cJSON_IsObject(md)) {
            type_err(e, P, "metadata", md, "map[string]string");
            goto fail;
        }
        cfg->has_meta = true;
        const cJSON *it;
        cJSON_ArrayForEach(it, md)
        {
            if (!cJSON_IsString(it)) {
                type_err(e, P, "metadata", it, "string");
                goto fail;
            }
            if (meta_set(cfg, it->string, it->valuestring) != 0) {
                set_err(e, JSE_InvalidJSONErr, "out of memory");
                goto fail;
            }
        }
    }
    if (cfg->priority_policy) {
        static const char *pp[] = {"none", "overflow", "pinned_client", "prioritized"};
        bool ok = false;
        for (int i = 0; i < 4; i++)
            ok = ok || !strcmp(cfg->priority_policy, pp[i]);
        if (!ok) {
            set_err(e, JSE_InvalidJSONErr, "unknown priority policy: \"%s\"", cfg->priority_policy);
            goto fail;
        }
        if (!strcmp(cfg->priority_policy, "none")) {
            free(cfg->priority_policy);
            cfg->priority_policy = NULL;
        }
    }
    (void)i64;
    /* empty strings are Go's zero values */
#define ZAP(f)                      \
    if (cfg->f && !*cfg->f) {       \
        free(cfg->f);               \
        cfg->f = NULL;              \
    }
    ZAP(durable);
    ZAP(name);
    ZAP(description);
    ZAP(filter_subject);
    ZAP(sample_freq);
    ZAP(deliver_subject);
    ZAP(deliver_group);
#undef ZAP
    return 0;
fail:
    cfg_free(cfg);
    return -1;
}

/* Echo a config as nats-server marshals ConsumerConfig (field order, omitempty).
 * dyn: add the dynamic metadata (_nats.ver, _nats.level) of API responses. */
static cJSON *cfg_json(const jc_cfg *c, bool dyn)
{
    char tb[64];
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    if (str_set(c->durable))
        cJSON_AddStringToObject(o, "durable_name", c->durable);
    if (str_set(c->name))
        cJSON_AddStringToObject(o, "name", c->name);
    if (str_set(c->description))
        cJSON_AddStringToObject(o, "description", c->description);
    cJSON_AddStringToObject(o, "deliver_policy", dp_names[c->deliver_policy]);
    if (c->opt_start_seq)
        js_add_u64(o, "opt_start_seq", c->opt_start_seq);
    if (c->has_start_time)
        cJSON_AddStringToObject(o, "opt_start_time", js_time_str(tb, sizeof tb, c->opt_start_time));
    cJSON_AddStringToObject(o, "ack_policy", ap_names[c->ack_policy]);
    if (c->ack_wait)
        js_add_i64(o, "ack_wait", c->ack_wait);
    if (c->max_deliver)
        js_add_i64(o, "max_deliver", c->max_deliver);
    if (c->nbackoff) {
        cJSON *a = cJSON_AddArrayToObject(o, "backoff");
        for (size_t i = 0; i < c->nbackoff; i++) {
            char b[24];
            snprintf(b, sizeof b, "%lld", (long long)c->backoff[i]);
            cJSON_AddItemToArray(a, cJSON_CreateRaw(b));
        }
    }
    if (str_set(c->filter_subject))
        cJSON_AddStringToObject(o, "filter_subject", c->filter_subject);
    if (c->nfilter_subjects) {
        cJSON *a = cJSON_AddArrayToObject(o, "filter_subjects");
        for (size_t i = 0; i < c->nfilter_subjects; i++)
            cJSON_AddItemToArray(a, cJSON_CreateString(c->filter_subjects[i]));
    }
    cJSON_AddStringToObject(o, "replay_policy", rp_names[c->replay_policy]);
    if (c->rate_limit)
        js_add_u64(o, "rate_limit_bps", c->rate_limit);
    if (str_set(c->sample_freq))
        cJSON_AddStringToObject(o, "sample_freq", c->sample_freq);
    if (c->max_waiting)
        js_add_i64(o, "max_waiting", c->max_waiting);
    if (c->max_ack_pending)
        js_add_i64(o, "max_ack_pending", c->max_ack_pending);
    if (c->flow_control)
        cJSON_AddBoolToObject(o, "flow_control", true);
    if (c->headers_only)
        cJSON_AddBoolToObject(o, "headers_only", true);
    if (c->max_batch)
        js_add_i64(o, "max_batch", c->max_batch);
    if (c->max_expires)
        js_add_i64(o, "max_expires", c->max_expires);
    if (c->max_bytes)
        js_add_i64(o, "max_bytes", c->max_bytes);
    if (str_set(c->deliver_subject))
        cJSON_AddStringToObject(o, "deliver_subject", c->deliver_subject);
    if (str_set(c->deliver_group))
        cJSON_AddStringToObject(o, "deliver_group", c->deliver_group);
    if (c->heartbeat)
        js_add_i64(o, "idle_heartbeat", c->heartbeat);
    if (c->inactive_threshold)
        js_add_i64(o, "inactive_threshold", c->inactive_threshold);
    js_add_i64(o, "num_replicas", c->num_replicas);
    if (c->mem_storage)
        cJSON_AddBoolToObject(o, "mem_storage", true);
    if (c->direct)
        cJSON_AddBoolToObject(o, "direct", true);
    if (c->nmeta || dyn) {
        /* Go marshals maps with sorted keys */
        jc_cfg tmp = {0};
        bool ok = true;
        for (size_t i = 0; i < c->nmeta && ok; i++)
            ok = meta_set(&tmp, c->mkeys[i], c->mvals[i]) == 0;
        if (dyn && ok) {
            char lv[16];
            snprintf(lv, sizeof lv, "%d", JS_API_LEVEL);
            ok = meta_set(&tmp, META_VER, EMBER_NATS_VERSION) == 0 &&
                 meta_set(&tmp, META_LEVEL, lv) == 0;
        }
        cJSON *m = cJSON_AddObjectToObject(o, "metadata");
        for (size_t i = 0; i < tmp.nmeta; i++)
            cJSON_AddStringToObject(m, tmp.mkeys[i], tmp.mvals[i]);
        cfg_free(&tmp);
    }
    if (c->has_pause)
        cJSON_AddStringToObject(o, "pause_until", js_time_str(tb, sizeof tb, c->pause_until));
    if (c->npriority_groups) {
        cJSON *a = cJSON_AddArrayToObject(o, "priority_groups");
        for (size_t i = 0; i < c->npriority_groups; i++)
            cJSON_AddItemToArray(a, cJSON_CreateString(c->priority_groups[i]));
    }
    if (c->priority_policy)
        cJSON_AddStringToObject(o, "priority_policy", c->priority_policy);
    if (c->priority_timeout)
        js_add_i64(o, "priority_timeout", c->priority_timeout);
    return o;
}

static bool strv_eq(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!str_eq(a[i], b[i]))
            return false;
    return true;
}

/* reflect.DeepEqual of two configs (a nil and an empty metadata map differ in Go; both
 * come from the same code path here, so compare contents). */
static bool cfg_equal(const jc_cfg *a, const jc_cfg *b, bool sans_delivery)
{
    if (!str_eq(a->durable, b->durable) || !str_eq(a->name, b->name) ||
        !str_eq(a->description, b->description) || a->deliver_policy != b->deliver_policy ||
        a->opt_start_seq != b->opt_start_seq || a->has_start_time != b->has_start_time ||
        (a->has_start_time && a->opt_start_time != b->opt_start_time) ||
        a->ack_policy != b->ack_policy || a->ack_wait != b->ack_wait ||
        a->max_deliver != b->max_deliver || a->nbackoff != b->nbackoff ||
        (a->nbackoff && memcmp(a->backoff, b->backoff, a->nbackoff * sizeof *a->backoff)) ||
        !str_eq(a->filter_subject, b->filter_subject) ||
        !strv_eq(a->filter_subjects, a->nfilter_subjects, b->filter_subjects, b->nfilter_subjects) ||
        a->replay_policy != b->replay_policy || a->rate_limit != b->rate_limit ||
        !str_eq(a->sample_freq, b->sample_freq) || a->max_waiting != b->max_waiting ||
        a->max_ack_pending != b->max_ack_pending || a->flow_control != b->flow_control ||
        a->headers_only != b->headers_only || a->max_batch != b->max_batch ||
        a->max_expires != b->max_expires || a->max_bytes != b->max_bytes ||
        (!sans_delivery && !str_eq(a->deliver_subject, b->deliver_subject)) ||
        !str_eq(a->deliver_group, b->deliver_group) || a->heartbeat != b->heartbeat ||
        a->inactive_threshold != b->inactive_threshold || a->num_replicas != b->num_replicas ||
        a->mem_storage != b->mem_storage || a->direct != b->direct ||
        !strv_eq(a->mkeys, a->nmeta, b->mkeys, b->nmeta) ||
        !strv_eq(a->mvals, a->nmeta, b->mvals, b->nmeta) || a->has_pause != b->has_pause ||
        (a->has_pause && a->pause_until != b->pause_until) ||
        !strv_eq(a->priority_groups, a->npriority_groups, b->priority_groups, b->npriority_groups) ||
        !str_eq(a->priority_policy, b->priority_policy) ||
        a->priority_timeout != b->priority_timeout)
        return false;
    return true;
}

/* The filters of a config (filter_subject or filter_subjects), borrowed. */
static size_t cfg_filters(const jc_cfg *c, const char ***out)
{
    static const char *none[1];
    if (c->nfilter_subjects) {
        *out = (const char **)c->filter_subjects;
        return c->nfilter_subjects;
    }
    if (str_set(c->filter_subject)) {
        *out = (const char **)&c->filter_subject;
        return 1;
    }
    *out = none;
    return 0;
}

/* nats-server isValidName: non-empty, no whitespace, '.', '*' or '>'. */
static bool valid_name(const char *n)
{
    if (!n || !*n)
        return false;
    for (const char *p = n; *p; p++)
        if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '\f' || *p == '.' ||
            *p == '*' || *p == '>')
            return false;
    return true;
}

/* setConsumerConfigDefaults (2.11). */
static void cfg_defaults(jc_cfg *c, const jstream *s)
{
    if (!str_set(c->deliver_subject) && c->max_waiting == 0)
        c->max_waiting = WAIT_QUEUE_DEFAULT_MAX;
    if (c->ack_wait == 0 && (c->ack_policy == AP_EXPLICIT || c->ack_policy == AP_ALL))
        c->ack_wait = ACK_WAIT_DEFAULT;
    if (c->max_deliver == 0)
        c->max_deliver = -1;
    if (c->nbackoff > 0)
        c->ack_wait = c->backoff[0];
    if (c->max_ack_pending == 0)
        c->max_ack_pending = s->cfg.consumer_max_ack_pending;
    if (c->inactive_threshold == 0)
        c->inactive_threshold = s->cfg.consumer_inactive_threshold_ns;
    if ((c->ack_policy == AP_EXPLICIT || c->ack_policy == AP_ALL) && c->max_ack_pending == 0)
        c->max_ack_pending = MAX_ACK_PENDING_DEFAULT;
    if (c->priority_timeout < 0)
        c->priority_timeout = 0;
    if (c->priority_policy && !strcmp(c->priority_policy, "pinned_client") &&
        c->priority_timeout == 0)
        c->priority_timeout = 2 * 60 * NS_PER_SEC;
}

/* subjectIsSubsetMatch(a, b): every subject a matches is matched by b. */
static bool subset_match(const char *a, const char *b)
{
    const char *at[128], *bt[128];
    size_t al[128], bl[128];
    int na = js_subj_tokens(a, strlen(a), at, al, 128);
    int nb = js_subj_tokens(b, strlen(b), bt, bl, 128);
    if (na > 128 || nb > 128)
        return false;
    for (int i = 0; i < nb; i++) {
        if (bl[i] == 1 && bt[i][0] == '>')
            return na > i;
        if (i >= na)
            return false;
        bool bw = bl[i] == 1 && bt[i][0] == '*';
        if (bw) {
            if (al[i] == 1 && at[i][0] == '>')
                return false;
            continue;
        }
        if ((al[i] == 1 && (at[i][0] == '*' || at[i][0] == '>')) || al[i] != bl[i] ||
            memcmp(at[i], bt[i], al[i]))
            return false;
    }
    return na == nb;
}

static bool subject_literal(const char *s)
{
    const char *t = s;
    for (;;) {
        const char *e = strchr(t, '.');
        size_t l = e ? (size_t)(e - t) : strlen(t);
        if (l == 1 && (t[0] == '*' || t[0] == '>'))
            return false;
        if (!e)
            return true;
        t = e + 1;
    }
}

/* A priority group name: 1 to 16 of [a-zA-Z0-9/_=-] (nats-server's validGroupName). */
static bool group_name_ok(const char *g)
{
    size_t gl = strlen(g);
    bool ok = gl > 0 && gl <= 16;
    for (size_t k = 0; ok && k < gl; k++) {
        char ch = g[k];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '/' || ch == '_' || ch == '=' || ch == '-';
    }
    return ok;
}

/* checkConsumerCfg (2.11). */
static int cfg_check(const jc_cfg *c, const jstream *s, bool recovering, jc_err *e)
{
    const js_stream_cfg *sc = &s->cfg;
    if (c->num_replicas > 0 && c->num_replicas > sc->num_replicas)
        return set_err(e, JSE_ConsumerReplicasExceedsStream, NULL);
    if (c->num_replicas < 0)
        return set_err(e, JSE_ReplicasCountCannotBeNegative, NULL);
    if ((sc->retention == JS_RET_INTEREST || sc->retention == JS_RET_WORKQUEUE) && !recovering &&
        c->num_replicas != 0 && c->num_replicas != sc->num_replicas)
        return set_err(e, JSE_ConsumerReplicasShouldMatchStream, NULL);
    if (c->nbackoff > 0 && c->max_deliver != -1 && (int64_t)c->nbackoff > c->max_deliver)
        return set_err(e, JSE_ConsumerMaxDeliverBackoffErr, NULL);
    if (c->description && strlen(c->description) > MAX_DESCRIPTION_LEN)
        return set_err(e, JSE_ConsumerDescriptionTooLongErrF, "%d", MAX_DESCRIPTION_LEN);
    if (str_set(c->deliver_subject)) {
        if (!subject_literal(c->deliver_subject))
            return set_err(e, JSE_ConsumerDeliverToWildcardsErr, NULL);
        if (!js_subj_valid(c->deliver_subject, false))
            return set_err(e, JSE_ConsumerInvalidDeliverSubject, NULL);
        for (size_t i = 0; i < sc->nsubjects; i++)
            if (subset_match(c->deliver_subject, sc->subjects[i]))
                return set_err(e, JSE_ConsumerDeliverCycleErr, NULL);
        if (c->max_waiting != 0)
            return set_err(e, JSE_ConsumerPushMaxWaitingErr, NULL);
        if (c->max_ack_pending > 0 && c->ack_policy == AP_NONE)
            return set_err(e, JSE_ConsumerMaxPendingAckPolicyRequiredErr, NULL);
        if (c->heartbeat > 0 && c->heartbeat < 100 * NS_PER_MS)
            return set_err(e, JSE_ConsumerSmallHeartbeatErr, NULL);
    } else {
        if (c->ack_policy == AP_NONE && sc->retention == JS_RET_WORKQUEUE)
            return set_err(e, JSE_ConsumerPullRequiresAckErr, NULL);
        if (c->rate_limit > 0)
            return set_err(e, JSE_ConsumerPullWithRateLimitErr, NULL);
        if (c->max_waiting < 0)
            return set_err(e, JSE_ConsumerMaxWaitingNegativeErr, NULL);
        if (c->heartbeat > 0)
            return set_err(e, JSE_ConsumerHBRequiresPushErr, NULL);
        if (c->flow_control)
            return set_err(e, JSE_ConsumerFCRequiresPushErr, NULL);
        if (c->max_batch < 0)
            return set_err(e, JSE_ConsumerMaxRequestBatchNegativeErr, NULL);
        if (c->max_expires != 0 && c->max_expires < NS_PER_MS)
            return set_err(e, JSE_ConsumerMaxRequestExpiresTooSmall, NULL);
    }
    if (sc->consumer_max_ack_pending > 0 && c->max_ack_pending > sc->consumer_max_ack_pending)
        return set_err(e, JSE_ConsumerMaxPendingAckExcessErrF, "%lld",
                       (long long)sc->consumer_max_ack_pending);
    if (sc->consumer_inactive_threshold_ns > 0 &&
        c->inactive_threshold > sc->consumer_inactive_threshold_ns) {
        char d[48];
        return set_err(e, JSE_ConsumerInactiveThresholdExcess, "%s",
                       go_duration(d, sizeof d, sc->consumer_inactive_threshold_ns));
    }
    if (c->direct) {
        if (!str_set(c->deliver_subject))
            return set_err(e, JSE_ConsumerDirectRequiresPushErr, NULL);
        if (str_set(c->durable))
            return set_err(e, JSE_ConsumerDirectRequiresEphemeralErr, NULL);
    }
    if (str_set(c->filter_subject) && c->nfilter_subjects > 0)
        return set_err(e, JSE_ConsumerDuplicateFilterSubjects, NULL);
    if (str_set(c->filter_subject) && !js_subj_valid(c->filter_subject, true))
        return set_err(e, JSE_StreamInvalidConfigF, "invalid subject");
    for (size_t i = 0; i < c->nfilter_subjects; i++)
        if (!c->filter_subjects[i] || !*c->filter_subjects[i])
            return set_err(e, JSE_ConsumerEmptyFilter, NULL);
    const char **f;
    size_t nf = cfg_filters(c, &f);
    for (size_t i = 0; i < nf; i++) {
        if (!js_subj_valid(f[i], true))
            return set_err(e, JSE_StreamInvalidConfigF, "invalid subject");
        for (size_t k = 0; k < nf; k++)
            if (k != i && js_subj_overlap(f[i], f[k]))
                return set_err(e, JSE_ConsumerOverlappingSubjectFilters, NULL);
    }
    const char *bad = NULL, *dp = NULL;
    bool need_filter = false;
    switch (c->deliver_policy) {
    case DP_ALL:
    case DP_LAST:
    case DP_NEW:
    case DP_LAST_PER_SUBJECT:
        dp = c->deliver_policy == DP_ALL ? "all"
             : c->deliver_policy == DP_LAST ? "last"
             : c->deliver_policy == DP_NEW ? "new"
                                           : "last per subject";
        if (c->opt_start_seq > 0)
            bad = "sequence";
        else if (c->has_start_time)
            bad = "time";
        else if (c->deliver_policy == DP_LAST_PER_SUBJECT && nf == 0)
            need_filter = true;
        if (bad)
            return set_err(e, JSE_ConsumerInvalidPolicyErrF,
                           "consumer delivery policy is deliver %s, but optional start %s is also set",
                           dp, bad);
        if (need_filter)
            return set_err(e, JSE_ConsumerInvalidPolicyErrF,
                           "consumer delivery policy is deliver %s, but optional %s is not set",
                           dp, "filter subject");
        break;
    case DP_BY_START_SEQ:
        if (c->opt_start_seq == 0)
            return set_err(e, JSE_ConsumerInvalidPolicyErrF,
                           "consumer delivery policy is deliver %s, but optional %s is not set",
                           "by start sequence", "start sequence");
        if (c->has_start_time)
            return set_err(e, JSE_ConsumerInvalidPolicyErrF,
                           "consumer delivery policy is deliver %s, but optional start %s is also set",
                           "by start sequence", "time");
        break;
    case DP_BY_START_TIME:
        if (!c->has_start_time)
            return set_err(e, JSE_ConsumerInvalidPolicyErrF,
                           "consumer delivery policy is deliver %s, but optional %s is not set",
                           "by start time", "start time");
        if (c->opt_start_seq != 0)
            return set_err(e, JSE_ConsumerInvalidPolicyErrF,
                           "consumer delivery policy is deliver %s, but optional start %s is also set",
                           "by start time", "start sequence");
        break;
    }
    if (str_set(c->sample_freq)) {
        char *end;
        const char *sf = c->sample_freq;
        long v = strtol(sf, &end, 10);
        if (end == sf || (*end && strcmp(end, "%")) || v < 0)
            return set_err(e, JSE_ConsumerInvalidSamplingErrF,
                           "strconv.Atoi: parsing \"%.*s\": invalid syntax",
                           (int)(strlen(sf) - (sf[strlen(sf) - 1] == '%')), sf);
    }
    if (c->flow_control && c->heartbeat == 0)
        return set_err(e, JSE_ConsumerWithFlowControlNeedsHeartbeats, NULL);
    if (str_set(c->durable) && str_set(c->name) && strcmp(c->name, c->durable))
        return set_err(e, JSE_ConsumerCreateDurableAndNameMismatch, NULL);
    size_t mlen = 0;
    for (size_t i = 0; i < c->nmeta; i++)
        mlen += strlen(c->mkeys[i]) + strlen(c->mvals[i]);
    if (mlen > MAX_METADATA_LEN)
        return set_err(e, JSE_ConsumerMetadataLengthErrF, "%dKB", MAX_METADATA_LEN / 1024);
    if (c->priority_policy) {
        if (str_set(c->deliver_subject))
            return set_err(e, JSE_ConsumerPushWithPriorityGroupErr, NULL);
        if (c->npriority_groups == 0)
            return set_err(e, JSE_ConsumerPriorityPolicyWithoutGroup, NULL);
        for (size_t i = 0; i < c->npriority_groups; i++) {
            const char *g = c->priority_groups[i];
            if (!*g)
                return set_err(e, JSE_ConsumerEmptyGroupName, NULL);
            if (!group_name_ok(g))
                return set_err(e, JSE_ConsumerInvalidGroupNameErr, NULL);
        }
    } else {
        /* policy none: neither groups nor a pin TTL */
        if (c->npriority_groups)
            return set_err(e, JSE_ConsumerPriorityGroupWithPolicyNone, NULL);
        if (c->priority_timeout > 0)
            return set_err(e, JSE_ConsumerPinnedTTLWithoutPriorityPolicyNone, NULL);
    }
    return 0;
}

/* ------------------------------------------------------------------ the consumer */

/* A waiting pull request (nats-server waitingRequest). Times are monotonic ns. */
typedef struct wreq {
    struct wreq *next;
    char *reply;
    int64_t n, d, b;       /* batch left, delivered, max bytes left */
    int64_t expires;       /* 0: none */
    int64_t hb, hbt;       /* heartbeat interval and next heartbeat (0: none) */
    bool no_wait;
    /* priority groups (ADR-42): pg = a JSON request (nats-server's non-nil
     * priorityGroup); group, pin id (NULL: none), overflow thresholds, priority */
    bool pg;
    char *group, *pin;
    int64_t min_pending, min_ack_pending;
    int64_t priority;      /* prioritized: 0 first; non-JSON requests last */
} wreq;

struct jconsumer {
    jconsumer *next;
    jstream *s;
    js *j;
    char *name;
    jc_cfg cfg;
    int64_t created;            /* wall ns */
    bool closed;
    const char **filters;       /* borrowed from cfg */
    size_t nfilters;
    bool filtered;              /* isFiltered: filters narrower than the stream's subjects */
    /* delivery state (nats-server's o.sseq, o.dseq, o.adflr, o.asflr) */
    uint64_t sseq, dseq, adflr, asflr;
    u64map pending;             /* stream seq -> a: delivery seq, b: wall ns (re)delivered */
    u64map rdc;                 /* stream seq -> a: redeliveries */
    uint64_t *rdq;              /* redelivery queue */
    size_t rdq_n, rdq_cap;
    u64map rdqi;
    uint64_t *lss;              /* deliver last_per_subject: the skip list */
    size_t lss_n, lss_i;
    uint64_t lss_resume;
    int64_t npc;                /* cached num pending ... */
    uint64_t npf;               /* ... counted through this stream sequence */
    int64_t ldt, lat;           /* last delivery / ack (wall ns, 0: never) */
    uint64_t maxdc;             /* max deliveries, 0: unlimited */
    /* the consumer store's view (what info reports and what is persisted) */
    uint64_t sd_c, sd_s, sa_c, sa_s;
    /* pull */
    wreq *wq_head, *wq_tail;
    int64_t wq_n;
    int64_t wq_last;            /* mono: last request (or delivery with dthresh) */
    int64_t lwqic;              /* mono: last processWaiting */
    /* push */
    bool active;
    int64_t hb_due;             /* mono: next idle heartbeat */
    int64_t pblimit, maxpb, pbytes, fcsz;
    char *fcid;                 /* outstanding flow-control reply subject, NULL: none */
    /* timers (mono, 0: off) */
    int64_t ptmr;               /* check pending acks (redelivery) */
    int64_t dthresh, dtmr;      /* inactivity delete */
    int64_t poll;               /* re-check push interest */
    /* replay_policy original */
    bool replay;
    uint64_t replay_lseq;
    int64_t lts, replay_until;
    bool replay_go;
    bool paused_seen;
    bool signal;                /* run on the JS thread (c_signal) */
    /* priority groups, pinned_client: the current pin */
    char pin_id[23];            /* "" when unpinned */
    char pin_group[32];         /* the group it was assigned for */
    int64_t pinned_ts;          /* wall ns */
    int64_t pin_due;            /* mono: the pin lapses (no pull for priority_timeout) */
    /* persistence (durables of file streams) */
    char *dir;                  /* <stream dir>/obs/<name>, NULL: not persisted */
    bool dirty;
    int64_t last_write;
};

static bool is_push(const jconsumer *o) { return str_set(o->cfg.deliver_subject); }
static bool is_durable(const jconsumer *o) { return str_set(o->cfg.durable); }

static int64_t ack_wait(const jconsumer *o, int64_t next)
{
    return next > 0 ? next + ACK_WAIT_DELAY : o->cfg.ack_wait + ACK_WAIT_DELAY;
}

static void mark_dirty(jconsumer *o)
{
    if (o->dir)
        o->dirty = true;
}

/* Ask the JS thread to run the consumer. Every delivery happens on that one thread, so a
 * consumer's messages leave in order (nats-server: one delivery goroutine per consumer);
 * API, ack and flow-control handlers only signal. */
static void c_signal(jconsumer *o)
{
    o->signal = true;
    kick_locked(o->j);
}

static jconsumer *c_lookup(jstream *s, const char *name, size_t len)
{
    for (jconsumer *o = s->consumers; o; o = o->next)
        if (strlen(o->name) == len && !memcmp(o->name, name, len))
            return o;
    return NULL;
}

static jstream *stream_lookup_n(js *j, const char *name, size_t len)
{
    char buf[512];
    if (len >= sizeof buf)
        return NULL;
    memcpy(buf, name, len);
    buf[len] = 0;
    jstream *s = js_stream_lookup(j, buf);
    return s && !s->deleted ? s : NULL;
}

/* Does subj match the consumer's filters (no filters: everything)? */
static bool c_match(const jconsumer *o, const char *subj, size_t len)
{
    if (!o->nfilters)
        return true;
    for (size_t i = 0; i < o->nfilters; i++)
        if (js_subj_match(o->filters[i], subj, len))
            return true;
    return false;
}

/* nats-server isFiltered: the filters are not exactly the stream's subjects. */
static bool c_is_filtered(const jconsumer *o)
{
    if (!o->nfilters)
        return false;
    const js_stream_cfg *sc = &o->s->cfg;
    if (sc->nsubjects != o->nfilters)
        return true;
    for (size_t i = 0; i < sc->nsubjects; i++) {
        bool found = false;
        for (size_t k = 0; k < o->nfilters && !found; k++)
            found = !strcmp(sc->subjects[i], o->filters[k]);
        if (!found)
            return true;
    }
    return false;
}

static void c_set_filters(jconsumer *o)
{
    o->nfilters = cfg_filters(&o->cfg, &o->filters);
    o->filtered = c_is_filtered(o);
}

/* ---- redelivery queue ---- */

static bool rdq_has(const jconsumer *o, uint64_t seq) { return map_find(&o->rdqi, seq) != NULL; }

static void rdq_add(jconsumer *o, uint64_t seq, bool front)
{
    if (rdq_has(o, seq))
        return;
    if (o->rdq_n == o->rdq_cap) {
        size_t nc = o->rdq_cap ? o->rdq_cap * 2 : 16;
        uint64_t *n = realloc(o->rdq, nc * sizeof *n);
        if (!n)
            return;
        o->rdq = n;
        o->rdq_cap = nc;
    }
    if (!map_put(&o->rdqi, seq, NULL))
        return;
    if (front) {
        memmove(o->rdq + 1, o->rdq, o->rdq_n * sizeof *o->rdq);
        o->rdq[0] = seq;
    } else {
        o->rdq[o->rdq_n] = seq;
    }
    o->rdq_n++;
}

static bool rdq_remove(jconsumer *o, uint64_t seq)
{
    if (!map_del(&o->rdqi, seq))
        return false;
    for (size_t i = 0; i < o->rdq_n; i++) {
        if (o->rdq[i] == seq) {
            memmove(o->rdq + i, o->rdq + i + 1, (o->rdq_n - i - 1) * sizeof *o->rdq);
            o->rdq_n--;
            break;
        }
    }
    return true;
}

static uint64_t rdq_pop(jconsumer *o)
{
    if (!o->rdq_n)
        return 0;
    uint64_t seq = o->rdq[0];
    memmove(o->rdq, o->rdq + 1, (o->rdq_n - 1) * sizeof *o->rdq);
    o->rdq_n--;
    map_del(&o->rdqi, seq);
    return seq;
}

static void rdq_clear(jconsumer *o)
{
    o->rdq_n = 0;
    map_clear(&o->rdqi);
}

/* ---- delivery counts ---- */

static uint64_t delivery_count(const jconsumer *o, uint64_t seq)
{
    mapent *e = map_find(&o->rdc, seq);
    return e && e->a >= 1 ? e->a : 1;
}

static uint64_t inc_delivery_count(jconsumer *o, uint64_t seq)
{
    mapent *e = map_put(&o->rdc, seq, NULL);
    if (!e)
        return 2;
    e->a += 1;
    return e->a + 1;
}

static void dec_delivery_count(jconsumer *o, uint64_t seq)
{
    mapent *e = map_put(&o->rdc, seq, NULL);
    if (e)
        e->a -= 1;
}

/* ---- the consumer store's view (consumerMemStore semantics) ---- */

static void st_update_delivered(jconsumer *o, uint64_t dseq, uint64_t sseq, uint64_t dc)
{
    o->ldt = js_now_wall();
    mark_dirty(o);
    if (dc != 1 && o->cfg.ack_policy == AP_NONE)
        return;
    if (dseq <= o->sa_c)
        return;
    if (o->cfg.ack_policy != AP_NONE) {
        if (dseq > o->sd_c)
            o->sd_c = dseq;
        if (sseq > o->sd_s)
            o->sd_s = sseq;
    } else {
        if (dseq > o->sd_c)
            o->sd_c = o->sa_c = dseq;
        if (sseq > o->sd_s)
            o->sd_s = o->sa_s = sseq;
    }
}

/* UpdateAcks; was_pending: the store had a pending record for sseq. Called after the
 * record was removed from o->pending. */
static void st_update_acks(jconsumer *o, uint64_t dseq, uint64_t sseq, bool was_pending)
{
    o->lat = js_now_wall();
    mark_dirty(o);
    if (o->cfg.ack_policy == AP_NONE || dseq <= o->sa_c)
        return;
    if (!was_pending)
        return;
    if (o->cfg.ack_policy == AP_ALL) {
        o->sa_c = dseq;
        o->sa_s = sseq;
        return;
    }
    if (o->pending.n == 0) {
        o->sa_c = o->sd_c;
        o->sa_s = o->sd_s;
    } else if (dseq == o->sa_c + 1) {
        o->sa_c = dseq;
        o->sa_s = sseq;
        if (o->sd_c > dseq) {
            for (uint64_t ss = sseq + 1; ss <= o->sd_s; ss++) {
                mapent *p = map_find(&o->pending, ss);
                if (p) {
                    if (p->a > 0) {
                        o->sa_c = p->a - 1;
                        o->sa_s = ss - 1;
                    }
                    break;
                }
            }
        }
    }
}

/* writeStoreState: the store takes the consumer's own view. */
static void st_write(jconsumer *o)
{
    o->sd_c = o->dseq - 1;
    o->sd_s = o->sseq - 1;
    o->sa_c = o->adflr;
    o->sa_s = o->asflr;
    mark_dirty(o);
}

/* ---- num pending ---- */

/* Matching messages with seq >= from. */
static uint64_t np_from(const jconsumer *o, uint64_t from)
{
    store *st = o->s->st;
    if (!o->nfilters)
        return store_num_pending(st, NULL, from);
    uint64_t n = 0;
    for (size_t i = 0; i < o->nfilters; i++)
        n += store_num_pending(st, o->filters[i], from);
    return n;
}

/* Matching messages in [from, to]. */
static uint64_t np_range(const jconsumer *o, uint64_t from, uint64_t to)
{
    if (from > to)
        return 0;
    uint64_t a = np_from(o, from), b = np_from(o, to + 1);
    return a > b ? a - b : 0;
}

/* streamNumPending: recount exactly. */
static void c_calc_pending(jconsumer *o)
{
    store_state ss;
    store_get_state(o->s->st, &ss);
    uint64_t L = ss.last_seq;
    if (o->lss && o->lss_i < o->lss_n) {
        o->npc = (int64_t)(o->lss_n - o->lss_i) + (int64_t)np_range(o, o->lss_resume + 1, L);
    } else {
        o->npc = (int64_t)np_range(o, o->sseq, L);
    }
    o->npf = L;
}

/* Count messages stored since the last count (the stream signal's npc++). floor: the
 * lowest sequence still to count (0: the consumer's position). */
static void c_sync_pending_from(jconsumer *o, uint64_t floor)
{
    store_state ss;
    store_get_state(o->s->st, &ss);
    if (ss.last_seq <= o->npf)
        return;
    uint64_t from = o->npf + 1;
    if (!floor)
        floor = o->lss && o->lss_i < o->lss_n ? o->lss_resume + 1 : o->sseq;
    if (from < floor)
        from = floor;
    o->npc += (int64_t)np_range(o, from, ss.last_seq);
    o->npf = ss.last_seq;
}

static void c_sync_pending(jconsumer *o) { c_sync_pending_from(o, 0); }

static uint64_t num_pending(const jconsumer *o) { return o->npc < 0 ? 0 : (uint64_t)o->npc; }

/* ---- advisories ---- */

static void advisory(jconsumer *o, js_outbox *ob, const char *kind, cJSON *body)
{
    char subj[1024];
    snprintf(subj, sizeof subj, "$JS.EVENT.ADVISORY.CONSUMER.%s.%s.%s", kind, o->s->name, o->name);
    char *txt = cJSON_PrintUnformatted(body);
    if (txt) {
        js_out_msg(ob, NULL, subj, strlen(subj), NULL, NULL, 0, txt, strlen(txt));
        cJSON_free(txt);
    }
    cJSON_Delete(body);
}

static cJSON *advisory_base(jconsumer *o, const char *type)
{
    char id[23], tb[64];
    nuid_next(id);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddStringToObject(e, "id", id);
    cJSON_AddStringToObject(e, "timestamp", js_time_str(tb, sizeof tb, js_now_wall()));
    cJSON_AddStringToObject(e, "stream", o->s->name);
    cJSON_AddStringToObject(e, "consumer", o->name);
    return e;
}

static void notify_delivery_exceeded(jconsumer *o, js_outbox *ob, uint64_t sseq, uint64_t dc)
{
    cJSON *e = advisory_base(o, "io.nats.jetstream.advisory.v1.max_deliver");
    js_add_u64(e, "stream_seq", sseq);
    js_add_u64(e, "deliveries", dc);
    if (o->j->domain)
        cJSON_AddStringToObject(e, "domain", o->j->domain);
    advisory(o, ob, "MAX_DELIVERIES", e);
}

/* ---- ack floors ---- */

/* moveAckFloor: after the pending record of (dseq, sseq) was removed. */
static void move_ack_floor(jconsumer *o, uint64_t dseq, uint64_t sseq)
{
    if (o->pending.n == 0) {
        o->adflr = o->dseq - 1;
        o->asflr = o->sseq - 1;
    } else if (dseq == o->adflr + 1) {
        o->adflr = dseq;
        o->asflr = sseq;
        /* the next pending record above sseq (scan whichever is smaller) */
        uint64_t best = 0;
        mapent *bp = NULL;
        if (o->sseq - sseq > o->pending.n * 4) {
            for (size_t i = 0; i < o->pending.cap; i++) {
                mapent *p = &o->pending.e[i];
                if (p->k > sseq && p->k < o->sseq && (!best || p->k < best)) {
                    best = p->k;
                    bp = p;
                }
            }
        } else {
            for (uint64_t ss = sseq + 1; ss < o->sseq; ss++)
                if ((bp = map_find(&o->pending, ss))) {
                    best = ss;
                    break;
                }
        }
        if (bp && bp->a > 0) {
            o->adflr = bp->a - 1;
            o->asflr = best - 1;
        }
    }
}

/* ---- interest / workqueue retention ---- */

/* needAck: would this consumer still ack seq (subject subj, may be NULL when not
 * filtered)? */
static bool need_ack(const jconsumer *o, uint64_t seq, const char *subj, size_t sl)
{
    if (o->filtered) {
        if (!subj)
            return false;
        if (!c_match(o, subj, sl))
            return false;
    }
    bool need = false;
    switch (o->cfg.ack_policy) {
    case AP_NONE:
    case AP_ALL:
        need = seq > o->asflr;
        break;
    case AP_EXPLICIT:
        if (seq > o->asflr)
            need = seq >= o->sseq || map_find(&o->pending, seq) != NULL;
        break;
    }
    if (!need)
        need = map_find(&o->rdc, seq) != NULL;
    return need;
}

static bool any_filtered(const jstream *s, const jconsumer *skip)
{
    for (const jconsumer *o = s->consumers; o; o = o->next)
        if (o != skip && o->filtered)
            return true;
    return false;
}

/* Is there no consumer (other than skip) that still needs seq? */
static bool no_interest(jstream *s, uint64_t seq, const jconsumer *skip, const store_msg *m)
{
    store_msg *own = NULL;
    const char *subj = NULL;
    size_t sl = 0;
    if (m) {
        subj = m->subj;
        sl = m->subj_len;
    } else if (any_filtered(s, skip)) {
        if (store_load(s->st, seq, &own) != 0)
            return false;
        subj = own->subj;
        sl = own->subj_len;
    }
    bool none = true;
    for (jconsumer *o = s->consumers; o && none; o = o->next)
        if (o != skip && !o->closed && need_ack(o, seq, subj, sl))
            none = false;
    if (own)
        store_msg_release(own);
    return none;
}

/* mset.ackMsg: interest and workqueue streams drop a message nobody needs anymore. */
static void stream_ack(jstream *s, uint64_t seq)
{
    if (seq == 0 || s->cfg.retention == JS_RET_LIMITS)
        return;
    store_state ss;
    store_get_state(s->st, &ss);
    if (seq > ss.last_seq || seq < ss.first_seq)
        return;
    if (no_interest(s, seq, NULL, NULL))
        store_remove(s->st, seq, false);
}

/* cleanupNoInterestMessages after o stopped counting (deleted, or filters changed). */
static void cleanup_no_interest(jstream *s, uint64_t start, const jconsumer *skip)
{
    if (s->cfg.retention != JS_RET_INTEREST)
        return;
    bool others = false;
    for (jconsumer *o = s->consumers; o; o = o->next)
        if (o != skip && !o->closed)
            others = true;
    if (!others) {
        store_purge(s->st, NULL, 0, 0, NULL);
        return;
    }
    store_state ss;
    store_get_state(s->st, &ss);
    if (start < ss.first_seq)
        start = ss.first_seq;
    uint64_t seq = start;
    while (seq <= ss.last_seq) {
        store_msg *m = NULL;
        if (store_load_next(s->st, NULL, seq, &m) != 0)
            break;
        if (m->seq > ss.last_seq) {
            store_msg_release(m);
            break;
        }
        seq = m->seq + 1;
        bool drop = no_interest(s, m->seq, skip, m);
        uint64_t ms = m->seq;
        store_msg_release(m);
        if (drop)
            store_remove(s->st, ms, false);
    }
}

/* ---- timers helpers ---- */

static void reset_ptmr(jconsumer *o, int64_t delay)
{
    o->ptmr = js_now_mono() + (delay > 0 ? delay : 1);
}

/* trackPending */
static void track_pending(jconsumer *o, uint64_t sseq, uint64_t dseq)
{
    int64_t now_wall = js_now_wall();
    bool created;
    mapent *p = map_put(&o->pending, sseq, &created);
    if (p) {
        if (created)
            p->a = dseq;
        p->b = now_wall;
    }
    int64_t min_delay = ack_wait(o, 0);
    if (o->cfg.nbackoff) {
        mapent *r = map_find(&o->rdc, sseq);
        int64_t bi = r ? (int64_t)r->a : 0;
        if (bi < 0)
            bi = 0;
        else if (bi >= (int64_t)o->cfg.nbackoff)
            bi = (int64_t)o->cfg.nbackoff - 1;
        min_delay = ack_wait(o, o->cfg.backoff[bi]);
    }
    int64_t dl = js_now_mono() + min_delay;
    if (!o->ptmr || o->ptmr > dl)
        o->ptmr = dl;
}

/* hasMaxDeliveries */
static bool has_max_deliveries(jconsumer *o, js_outbox *ob, uint64_t seq)
{
    if (o->maxdc == 0)
        return false;
    uint64_t dc = delivery_count(o, seq);
    if (dc < o->maxdc)
        return false;
    if (dc == o->maxdc)
        notify_delivery_exceeded(o, ob, seq, dc);
    mapent *p = map_find(&o->pending, seq);
    if (p) {
        uint64_t pd = p->a;
        map_del(&o->pending, seq);
        st_update_delivered(o, pd, seq, dc + 1);
        move_ack_floor(o, pd, seq);
    }
    mapent *r = map_put(&o->rdc, seq, NULL);
    if (r)
        r->a = dc;
    return true;
}

/* Force every pending message onto the redelivery queue (deliver subject changed). */
static void force_expire_pending(jconsumer *o)
{
    size_t n;
    uint64_t *keys = map_keys_sorted(&o->pending, &n);
    if (!keys)
        return;
    size_t added = 0;
    for (size_t i = 0; i < n; i++)
        if (!rdq_has(o, keys[i])) {
            rdq_add(o, keys[i], false);
            added++;
        }
    if (added) {
        mapent *first = map_find(&o->pending, keys[0]);
        int64_t off = first ? js_now_wall() - first->b : 0;
        for (size_t i = 0; i < n; i++) {
            mapent *p = map_find(&o->pending, keys[i]);
            if (p)
                p->b += off;
        }
    }
    free(keys);
}

/* ------------------------------------------------------------------ acks */

static void c_run(jconsumer *o, js_outbox *ob);

/* processAckMsg; returns whether the ack was valid enough to answer (nats-server does
 * not answer an ack above the delivery pointer). */
static bool process_ack_msg(jconsumer *o, uint64_t sseq, uint64_t dseq)
{
    if (o->closed)
        return false;
    if (sseq >= o->sseq)
        return false;
    bool in_place = o->s->cfg.retention != JS_RET_LIMITS;
    bool need_signal = false, was_pending = false;
    uint64_t floor = sseq, sgap = 0;
    switch (o->cfg.ack_policy) {
    case AP_EXPLICIT: {
        mapent *p = map_find(&o->pending, sseq);
        if (p) {
            if (o->cfg.max_ack_pending > 0 && (int64_t)o->pending.n >= o->cfg.max_ack_pending)
                need_signal = true;
            dseq = p->a;
            map_del(&o->pending, sseq);
            was_pending = true;
            move_ack_floor(o, dseq, sseq);
        }
        map_del(&o->rdc, sseq);
        rdq_remove(o, sseq);
        break;
    }
    case AP_ALL: {
        if (dseq <= o->adflr || sseq <= o->asflr)
            return true;
        if (o->cfg.max_ack_pending > 0 && (int64_t)o->pending.n >= o->cfg.max_ack_pending)
            need_signal = true;
        was_pending = map_find(&o->pending, sseq) != NULL;
        sgap = sseq - o->asflr;
        o->adflr = dseq;
        o->asflr = sseq;
        size_t n;
        uint64_t *keys = map_keys_sorted(&o->pending, &n);
        for (size_t i = 0; i < n && keys[i] <= sseq; i++) {
            map_del(&o->pending, keys[i]);
            map_del(&o->rdc, keys[i]);
            rdq_remove(o, keys[i]);
            if (keys[i] < floor)
                floor = keys[i];
        }
        free(keys);
        /* redelivery counts and queue entries below the floor without pending records */
        if (o->rdc.n) {
            size_t rn;
            uint64_t *rk = map_keys_sorted(&o->rdc, &rn);
            for (size_t i = 0; i < rn && rk[i] <= sseq; i++) {
                map_del(&o->rdc, rk[i]);
                rdq_remove(o, rk[i]);
            }
            free(rk);
        }
        break;
    }
    default:
        return in_place;
    }
    st_update_acks(o, dseq, sseq, was_pending);
    if (in_place) {
        if (sgap > 1) {
            for (uint64_t seq = sseq; seq >= floor && seq > 0; seq--)
                stream_ack(o->s, seq);
        } else {
            stream_ack(o->s, sseq);
        }
    }
    (void)need_signal; /* the caller runs the consumer after every ack */
    return true;
}

/* time.ParseDuration (what -NAK accepts as a delay). */
static int parse_go_duration(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < len && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    if (i == len)
        return -1;
    if (len - i == 1 && s[i] == '0') {
        *out = 0;
        return 0;
    }
    double total = 0;
    while (i < len) {
        size_t st = i;
        double v = 0, frac = 0, scale = 1;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            v = v * 10 + (s[i++] - '0');
        bool pre = i > st;
        if (i < len && s[i] == '.') {
            i++;
            size_t fs = i;
            while (i < len && s[i] >= '0' && s[i] <= '9') {
                scale /= 10;
                frac += (s[i++] - '0') * scale;
            }
            if (!pre && i == fs)
                return -1;
        } else if (!pre) {
            return -1;
        }
        size_t us = i;
        while (i < len && !(s[i] >= '0' && s[i] <= '9') && s[i] != '.')
            i++;
        size_t ul = i - us;
        double unit;
        if (ul == 2 && !memcmp(s + us, "ns", 2))
            unit = 1;
        else if ((ul == 2 && !memcmp(s + us, "us", 2)) || (ul == 3 && !memcmp(s + us, "\xc2\xb5s", 3)) ||
                 (ul == 3 && !memcmp(s + us, "\xce\xbcs", 3)))
            unit = 1e3;
        else if (ul == 2 && !memcmp(s + us, "ms", 2))
            unit = 1e6;
        else if (ul == 1 && s[us] == 's')
            unit = 1e9;
        else if (ul == 1 && s[us] == 'm')
            unit = 60e9;
        else if (ul == 1 && s[us] == 'h')
            unit = 3600e9;
        else
            return -1;
        total += (v + frac) * unit;
    }
    if (total > 9.2e18)
        return -1;
    *out = (int64_t)(neg ? -total : total);
    return 0;
}

static void process_nak(jconsumer *o, js_outbox *ob, uint64_t sseq, uint64_t dseq, uint64_t dc,
                        const char *msg, size_t len)
{
    if (dseq <= o->adflr || dseq > o->dseq)
        return;
    mapent *p = map_find(&o->pending, sseq);
    if (!p)
        return;
    cJSON *e = advisory_base(o, "io.nats.jetstream.advisory.v1.nak");
    js_add_u64(e, "consumer_seq", dseq);
    js_add_u64(e, "stream_seq", sseq);
    js_add_u64(e, "deliveries", dc);
    if (o->j->domain)
        cJSON_AddStringToObject(e, "domain", o->j->domain);
    advisory(o, ob, "MSG_NAKED", e);
    if (len > 4) {
        const char *a = msg + 4;
        size_t al = len - 4;
        while (al && (*a == ' ' || *a == '\t' || *a == '\r' || *a == '\n')) {
            a++;
            al--;
        }
        while (al && (a[al - 1] == ' ' || a[al - 1] == '\t' || a[al - 1] == '\r' || a[al - 1] == '\n'))
            al--;
        if (al) {
            int64_t d = 0;
            int rc = -1;
            if (a[0] == '{') {
                cJSON *jd = cJSON_ParseWithLength(a, al);
                if (jd && cJSON_IsObject(jd)) {
                    bool bad = false;
                    rc = 0;
                    if (!js_get_i64(jd, "delay", &d, &bad) && bad)
                        rc = -1;
                }
                cJSON_Delete(jd);
            } else {
                rc = parse_go_duration(a, al, &d);
            }
            if (rc == 0) {
                rdq_remove(o, sseq);
                p = map_find(&o->pending, sseq);
                if (p) {
                    p->b = js_now_wall() - o->cfg.ack_wait + d;
                    st_update_delivered(o, p->a, sseq, dc);
                    if (o->ptmr)
                        reset_ptmr(o, 10 * NS_PER_MS);
                }
                return;
            }
            if (srv_log_on(o->j->srv, EMBER_LOG_WARN))
                srv_log(o->j->srv, EMBER_LOG_WARN,
                        "JetStream consumer '%s > %s > %s' bad NAK delay value: \"%.*s\"", o->j->acc->name,
                        o->s->name, o->name, (int)al, a);
        }
    }
    if (!rdq_has(o, sseq))
        rdq_add(o, sseq, false);
}

static void progress_update(jconsumer *o, uint64_t sseq)
{
    mapent *p = map_find(&o->pending, sseq);
    if (p) {
        p->b = js_now_wall();
        st_update_delivered(o, p->a, sseq, 1);
    }
}

static bool process_term(jconsumer *o, js_outbox *ob, uint64_t sseq, uint64_t dseq,
                         uint64_t dc, const char *reason, size_t rlen)
{
    bool ok = process_ack_msg(o, sseq, dseq);
    cJSON *e = advisory_base(o, "io.nats.jetstream.advisory.v1.terminated");
    js_add_u64(e, "consumer_seq", dseq);
    js_add_u64(e, "stream_seq", sseq);
    js_add_u64(e, "deliveries", dc);
    char *r = xstrndup(reason ? reason : "", reason ? rlen : 0);
    cJSON_AddStringToObject(e, "reason", r ? r : "");
    free(r);
    if (o->j->domain)
        cJSON_AddStringToObject(e, "domain", o->j->domain);
    advisory(o, ob, "MSG_TERMINATED", e);
    return ok;
}

/* ------------------------------------------------------------------ pull requests */

static void wr_free(wreq *wr)
{
    if (wr) {
        free(wr->reply);
        free(wr->group);
        free(wr->pin);
        free(wr);
    }
}

static void wq_remove(jconsumer *o, wreq *pre, wreq *wr)
{
    if (pre)
        pre->next = wr->next;
    else
        o->wq_head = wr->next;
    if (o->wq_tail == wr)
        o->wq_tail = pre;
    wr->next = NULL;
    o->wq_n--;
}

static void wq_append(jconsumer *o, wreq *wr)
{
    wr->next = NULL;
    if (o->wq_tail)
        o->wq_tail->next = wr;
    else
        o->wq_head = wr;
    o->wq_tail = wr;
    o->wq_n++;
}

/* ---- priority groups (ADR-42) */

enum { PP_NONE = 0, PP_OVERFLOW, PP_PINNED, PP_PRIORITIZED };

static int prio_policy(const jconsumer *o)
{
    const char *p = o->cfg.priority_policy;
    if (!p)
        return PP_NONE;
    if (!strcmp(p, "overflow"))
        return PP_OVERFLOW;
    if (!strcmp(p, "pinned_client"))
        return PP_PINNED;
    if (!strcmp(p, "prioritized"))
        return PP_PRIORITIZED;
    return PP_NONE;
}

static bool has_group(const jconsumer *o, const char *g)
{
    for (size_t i = 0; g && i < o->cfg.npriority_groups; i++)
        if (!strcmp(o->cfg.priority_groups[i], g))
            return true;
    return false;
}

/* waitQueue.cycle: the head goes to the end. */
static void wq_cycle(jconsumer *o)
{
    wreq *wr = o->wq_head;
    if (wr && o->wq_n > 1) {
        wq_remove(o, NULL, wr);
        wq_append(o, wr);
    }
}

/* insertAtPosition: after every request of the same or a higher priority. */
static void wq_insert_prio(jconsumer *o, wreq *wr)
{
    wreq *pre = NULL, *cur = o->wq_head;
    while (cur && cur->priority <= wr->priority) {
        pre = cur;
        cur = cur->next;
    }
    wr->next = cur;
    if (pre)
        pre->next = wr;
    else
        o->wq_head = wr;
    if (!cur)
        o->wq_tail = wr;
    o->wq_n++;
}

/* $JS.EVENT.ADVISORY.CONSUMER.PINNED / UNPINNED (reason NULL: pinned). */
static void pin_advisory(jconsumer *o, js_outbox *ob, const char *group, const char *reason)
{
    cJSON *e = advisory_base(o, reason ? "io.nats.jetstream.advisory.v1.consumer_group_unpinned"
                                       : "io.nats.jetstream.advisory.v1.consumer_group_pinned");
    if (o->j->domain)
        cJSON_AddStringToObject(e, "domain", o->j->domain);
    cJSON_AddStringToObject(e, "group", group);
    if (reason)
        cJSON_AddStringToObject(e, "reason", reason);
    else
        cJSON_AddStringToObject(e, "pinned_id", o->pin_id);
    advisory(o, ob, reason ? "UNPINNED" : "PINNED", e);
}

/* setPinnedTimer */
static void pin_touch(jconsumer *o, int64_t now) { o->pin_due = now + o->cfg.priority_timeout; }

/* assignNewPinId: the request (of a group) gets a new pin. */
static void pin_assign(jconsumer *o, js_outbox *ob, wreq *wr, int64_t now)
{
    if (!wr->pg || !wr->group || !*wr->group)
        return;
    char *pin = malloc(sizeof o->pin_id);
    if (!pin)
        return;
    nuid_next(o->pin_id);
    memcpy(pin, o->pin_id, sizeof o->pin_id);
    free(wr->pin);
    wr->pin = pin;
    snprintf(o->pin_group, sizeof o->pin_group, "%s", wr->group);
    o->pinned_ts = js_now_wall();
    pin_touch(o, now);
    pin_advisory(o, ob, wr->group, NULL);
}

/* unassignPinId */
static void pin_clear(jconsumer *o)
{
    o->pin_id[0] = 0;
    o->pinned_ts = 0;
    o->pin_due = 0;
}

static void pending_hdrs(char *buf, size_t cap, int64_t n, int64_t b)
{
    snprintf(buf, cap, "Nats-Pending-Messages: %lld\r\nNats-Pending-Bytes: %lld\r\n",
             (long long)n, (long long)b);
}

static void send_idle_heartbeat(jconsumer *o, js_outbox *ob, const char *to)
{
    char h[600];
    int n = snprintf(h, sizeof h, "Nats-Last-Consumer: %llu\r\nNats-Last-Stream: %llu\r\n",
                     (unsigned long long)(o->dseq - 1), (unsigned long long)(o->sseq - 1));
    if (o->fcid && n > 0 && (size_t)n < sizeof h)
        snprintf(h + n, sizeof h - (size_t)n, "Nats-Consumer-Stalled: %s\r\n", o->fcid);
    js_out_status(ob, to, 100, "Idle Heartbeat", h, NULL);
}

/* processWaiting: expire, drop requests nobody listens to anymore, send heartbeats.
 * Returns the batch total of the requests left; *fexp the next due time (0: none). */
static int64_t process_waiting(jconsumer *o, js_outbox *ob, bool eos, int64_t now, int64_t *fexp)
{
    int64_t brp = 0, next = 0;
    if (fexp)
        *fexp = 0;
    if (!o->wq_n)
        return 0;
    o->lwqic = now;
    wreq *pre = NULL, *wr = o->wq_head;
    while (wr) {
        bool expired = wr->expires && now > wr->expires;
        if ((eos && wr->no_wait) || expired) {
            if (expired) {
                char h[128];
                pending_hdrs(h, sizeof h, wr->n, wr->b);
                js_out_status(ob, wr->reply, 408, "Request Timeout", h, NULL);
                wreq *nx = wr->next;
                wq_remove(o, pre, wr);
                wr_free(wr);
                wr = nx;
                continue;
            } else if (wr->expires == 0 || wr->d > 0) {
                js_out_status(ob, wr->reply, 404, "No Messages", NULL, NULL);
                wreq *nx = wr->next;
                wq_remove(o, pre, wr);
                wr_free(wr);
                wr = nx;
                continue;
            }
        }
        if (!has_interest(o->j, wr->reply)) {
            wreq *nx = wr->next;
            wq_remove(o, pre, wr);
            wr_free(wr);
            wr = nx;
            continue;
        }
        brp += wr->n;
        if (wr->hbt) {
            if (now > wr->hbt) {
                send_idle_heartbeat(o, ob, wr->reply);
                wr->hbt = now + wr->hb;
            }
            if (!next || wr->hbt < next)
                next = wr->hbt;
        }
        if (wr->expires && (!next || wr->expires < next))
            next = wr->expires;
        pre = wr;
        wr = wr->next;
    }
    if (fexp)
        *fexp = next;
    return brp;
}

/* nextWaiting: the request the next message (of sz bytes) goes to; the request is
 * detached from the queue when its batch is done (*done: the caller frees it). */
static wreq *next_waiting(jconsumer *o, js_outbox *ob, int64_t sz, int64_t now, bool *done)
{
    *done = false;
    int pp = prio_policy(o);
    bool need_pin = pp == PP_PINNED && !o->pin_id[0];
    int64_t cycled = 0;
    while (o->wq_head) {
        wreq *wr = o->wq_head;
        if (wr->expires == 0 || now < wr->expires) {
            bool assigned = false, wrong_pin = false;
            if (need_pin) {
                if (!wr->pin) {
                    pin_assign(o, ob, wr, now);
                    assigned = true;
                } else {
                    wrong_pin = true; /* probably the old pin */
                }
            } else if (o->pin_id[0]) {
                if (wr->pin && !strcmp(wr->pin, o->pin_id)) {
                    /* the pinned client: served below */
                } else if (!wr->pin) {
                    /* not pinned: waits for the pin to go */
                    wq_cycle(o);
                    if (++cycled >= o->wq_n)
                        return NULL;
                    continue;
                } else {
                    wrong_pin = true;
                }
            }
            if (wrong_pin) {
                char h[128];
                pending_hdrs(h, sizeof h, wr->n, wr->b);
                js_out_status(ob, wr->reply, 423, "Nats-Wrong-Pin-Id", h, NULL);
                wq_remove(o, NULL, wr);
                wr_free(wr);
                continue;
            }
            if (pp == PP_OVERFLOW && wr->pg && (wr->min_pending > 0 || wr->min_ack_pending > 0) &&
                !((wr->min_pending > 0 && wr->min_pending <= o->npc + 1) ||
                  (wr->min_ack_pending > 0 && wr->min_ack_pending <= (int64_t)o->pending.n))) {
                /* below both thresholds: not this request's turn */
                wq_cycle(o);
                if (++cycled >= o->wq_n)
                    return NULL;
                continue;
            }
            if (wr->b > 0) {
                if (sz <= wr->b) {
                    wr->b -= sz;
                    if (wr->b == 0)
                        wr->n = 1;
                } else {
                    char h[128];
                    pending_hdrs(h, sizeof h, wr->n, wr->b);
                    js_out_status(ob, wr->reply, 409, "Message Size Exceeds MaxBytes", h, NULL);
                    if (assigned)
                        pin_clear(o);
                    wq_remove(o, NULL, wr);
                    wr_free(wr);
                    continue;
                }
            }
            if (has_interest(o->j, wr->reply)) {
                /* pop (prioritized: popAndRequeue, back among its priority) */
                wr->d++;
                wr->n--;
                if (wr->n > 0 && o->wq_n > 1) {
                    wq_remove(o, NULL, wr);
                    if (pp == PP_PRIORITIZED)
                        wq_insert_prio(o, wr);
                    else
                        wq_append(o, wr);
                } else if (wr->n <= 0) {
                    wq_remove(o, NULL, wr);
                    *done = true;
                }
                return wr;
            }
        } else {
            char h[128];
            pending_hdrs(h, sizeof h, wr->n, wr->b);
            js_out_status(ob, wr->reply, 408, "Request Timeout", h, NULL);
        }
        wq_remove(o, NULL, wr);
        wr_free(wr);
    }
    return NULL;
}

/* processNextMsgRequest */
static void process_next_request(jconsumer *o, js_outbox *ob, const char *reply,
                                 const char *msg, size_t len)
{
    if (!reply || !*reply)
        return;
    char buf[256];
    if (is_push(o)) {
        js_out_status(ob, reply, 409, "Consumer is push based", NULL, NULL);
        return;
    }
    int64_t now = js_now_mono();
    while (len && (*msg == ' ' || *msg == '\t' || *msg == '\r' || *msg == '\n')) {
        msg++;
        len--;
    }
    while (len && (msg[len - 1] == ' ' || msg[len - 1] == '\t' || msg[len - 1] == '\r' ||
                   msg[len - 1] == '\n'))
        len--;
    int64_t batch = 1, max_bytes = 0, expires_d = 0, hb = 0;
    bool no_wait = false;
    /* the priority group fields of a JSON request */
    bool pg = false;
    char *group = NULL, *pin = NULL;
    int64_t minp = 0, minap = 0, prio = 0;
    int pp = prio_policy(o);
    if (len && msg[0] == '{') {
        cJSON *r = cJSON_ParseWithLength(msg, len);
        if (!r || !cJSON_IsObject(r)) {
            char e[200];
            if (!r)
                json_err_text(msg, len, e, sizeof e);
            else
                snprintf(e, sizeof e,
                         "json: cannot unmarshal %s into Go value of type server.JSApiConsumerGetNextRequest",
                         json_type_name(r));
            snprintf(buf, sizeof buf, "Bad Request - %s", e);
            cJSON_Delete(r);
            js_out_status(ob, reply, 400, buf, NULL, NULL);
            return;
        }
        jc_err e = {.jse = -1};
        const char *P = "JSApiConsumerGetNextRequest";
        bool nw = false;
        if (get_int(r, P, "expires", &expires_d, "time.Duration", &e) ||
            get_int(r, P, "batch", &batch, "int", &e) ||
            get_int(r, P, "max_bytes", &max_bytes, "int", &e) ||
            get_bool(r, P, "no_wait", &nw, &e) ||
            get_int(r, P, "idle_heartbeat", &hb, "time.Duration", &e) ||
            get_str(r, P, "group", &group, &e) ||
            get_int(r, P, "min_pending", &minp, "int64", &e) ||
            get_int(r, P, "min_ack_pending", &minap, "int64", &e) ||
            get_str(r, P, "id", &pin, &e) ||
            get_int(r, P, "priority", &prio, "int", &e)) {
            cJSON_Delete(r);
            free(group);
            free(pin);
            snprintf(buf, sizeof buf, "Bad Request - %.230s", e.arg);
            js_out_status(ob, reply, 400, buf, NULL, NULL);
            return;
        }
        if (!cJSON_GetObjectItemCaseSensitive(r, "batch"))
            batch = 0; /* Go's zero value */
        cJSON_Delete(r);
        pg = true;
        if (pin && !*pin) {
            free(pin);
            pin = NULL;
        }
        no_wait = nw;
        if (hb > 0 && hb * 2 > expires_d) {
            js_out_status(ob, reply, 400, "Bad Request - heartbeat value too large", NULL, NULL);
            goto drop;
        }
    } else if (len) {
        /* strconv.Atoi */
        char num[32];
        if (len < sizeof num) {
            memcpy(num, msg, len);
            num[len] = 0;
            char *end;
            errno = 0;
            long long v = strtoll(num, &end, 10);
            if (*end == 0 && errno == 0 && end != num && num[0] != ' ')
                batch = v;
        }
    }
    char d[48];
    if (o->cfg.max_batch > 0 && batch > o->cfg.max_batch) {
        snprintf(buf, sizeof buf, "Exceeded MaxRequestBatch of %lld", (long long)o->cfg.max_batch);
        js_out_status(ob, reply, 409, buf, NULL, NULL);
        goto drop;
    }
    if (expires_d > 0 && o->cfg.max_expires > 0 && expires_d > o->cfg.max_expires) {
        snprintf(buf, sizeof buf, "Exceeded MaxRequestExpires of %s",
                 go_duration(d, sizeof d, o->cfg.max_expires));
        js_out_status(ob, reply, 409, buf, NULL, NULL);
        goto drop;
    }
    if (max_bytes > 0 && o->cfg.max_bytes > 0 && max_bytes > o->cfg.max_bytes) {
        snprintf(buf, sizeof buf, "Exceeded MaxRequestMaxBytes of %lld", (long long)o->cfg.max_bytes);
        js_out_status(ob, reply, 409, buf, NULL, NULL);
        goto drop;
    }
    if (pg) {
        const char *bad = NULL;
        if ((minp != 0 || minap != 0) && pp != PP_OVERFLOW)
            bad = "Bad Request - Not a Overflow Priority consumer";
        else if (pin && pp != PP_PINNED)
            bad = "Bad Request - Not a Pinned Client Priority consumer";
        else if (prio < 0 || prio > 9)
            bad = "Bad Request - Priority must be between 0 and 9";
        else if (pp != PP_NONE && (!group || !*group))
            bad = "Bad Request - Priority Group missing";
        else if (pp != PP_NONE && !has_group(o, group))
            bad = "Bad Request - Invalid Priority Group";
        if (bad) {
            js_out_status(ob, reply, 400, bad, NULL, NULL);
            goto drop;
        }
        if (pp != PP_NONE && o->pin_id[0]) {
            if (pin && !strcmp(pin, o->pin_id)) {
                pin_touch(o, now);
            } else if (pin) {
                js_out_status(ob, reply, 423, "Nats-Pin-Id mismatch", NULL, NULL);
                goto drop;
            }
        }
    }
    if (o->wq_n >= o->cfg.max_waiting && now - o->lwqic > NS_PER_SEC)
        process_waiting(o, ob, false, now, NULL);
    if (no_wait) {
        c_sync_pending(o);
        uint64_t msgs_pending = num_pending(o) + o->rdq_n;
        if (msgs_pending == 0 && expires_d <= 0) {
            o->wq_last = now;
            js_out_status(ob, reply, 404, "No Messages", NULL, NULL);
            goto drop;
        }
        if (msgs_pending > 0) {
            int64_t brp = process_waiting(o, ob, false, now, NULL);
            if ((int64_t)msgs_pending < brp) {
                o->wq_last = now;
                js_out_status(ob, reply, 408, "Requests Pending", NULL, NULL);
                goto drop;
            }
        }
    }
    if (o->wq_n >= o->cfg.max_waiting) {
        if (hb == 0)
            js_out_status(ob, reply, 409, "Exceeded MaxWaiting", NULL, NULL);
        goto drop;
    }
    wreq *wr = calloc(1, sizeof *wr);
    if (!wr || !(wr->reply = xstrdup(reply))) {
        free(wr);
        goto drop;
    }
    wr->n = batch;
    wr->b = max_bytes;
    wr->no_wait = no_wait;
    wr->expires = expires_d > 0 ? now + expires_d : 0;
    wr->hb = hb > 0 ? hb : 0;
    wr->hbt = hb > 0 ? now + hb : 0;
    wr->pg = pg;
    wr->group = group;
    wr->pin = pin;
    wr->min_pending = minp;
    wr->min_ack_pending = minap;
    wr->priority = pg ? prio : INT32_MAX;
    if (pp == PP_PRIORITIZED)
        wq_insert_prio(o, wr);
    else
        wq_append(o, wr);
    o->wq_last = now;
    c_signal(o);
    return;
drop:
    free(group);
    free(pin);
}

/* ------------------------------------------------------------------ delivery */

enum { GN_OK = 0, GN_EOF, GN_MAXACK, GN_ERR };

/* getNextMsg: a redelivery first, then the skip list, then the next matching message.
 * *dc is the delivery count. */
static store_msg *get_next(jconsumer *o, js_outbox *ob, uint64_t *dc, int *err)
{
    store *st = o->s->st;
    *err = GN_OK;
    while (o->rdq_n) {
        uint64_t seq = rdq_pop(o);
        uint64_t d = inc_delivery_count(o, seq);
        if (o->maxdc > 0 && d > o->maxdc) {
            if (d == o->maxdc + 1)
                notify_delivery_exceeded(o, ob, seq, d - 1);
            mapent *p = map_find(&o->pending, seq);
            if (p) {
                uint64_t pd = p->a;
                map_del(&o->pending, seq);
                st_update_delivered(o, pd, seq, d);
                move_ack_floor(o, pd, seq);
            }
            continue;
        }
        store_msg *m = NULL;
        int rc = store_load(st, seq, &m);
        if (rc != 0) {
            dec_delivery_count(o, seq);
            /* removed meanwhile: treat like a TERM so the floors move on */
            mapent *p = map_find(&o->pending, seq);
            if (p)
                process_term(o, ob, seq, p->a, d - 1, "Unacknowledged message was deleted", 34);
            continue;
        }
        *dc = d;
        return m;
    }
    if (o->cfg.max_ack_pending > 0 && (int64_t)o->pending.n >= o->cfg.max_ack_pending) {
        *err = GN_MAXACK;
        return NULL;
    }
    while (o->lss && o->lss_i < o->lss_n) {
        uint64_t seq = o->lss[o->lss_i++];
        if (o->lss_i == o->lss_n)
            o->sseq = o->lss_resume;
        else
            o->sseq = seq;
        o->sseq++;
        store_msg *m = NULL;
        if (store_load(st, seq, &m) == 0) {
            *dc = 1;
            return m;
        }
        o->npc--; /* counted but gone */
    }
    store_state ss;
    store_get_state(st, &ss);
    store_msg *best = NULL;
    if (!o->nfilters) {
        if (store_load_next(st, NULL, o->sseq, &best) != 0)
            best = NULL;
    } else {
        for (size_t i = 0; i < o->nfilters; i++) {
            store_msg *m = NULL;
            if (store_load_next(st, o->filters[i], o->sseq, &m) != 0)
                continue;
            if (!best || m->seq < best->seq) {
                if (best)
                    store_msg_release(best);
                best = m;
            } else {
                store_msg_release(m);
            }
        }
    }
    if (!best) {
        /* checkNumPendingOnEOF: nothing matches from sseq through ss.last_seq */
        o->npc = 0;
        if (ss.last_seq > o->npf)
            o->npf = ss.last_seq;
        /* as nats-server's LoadNextMsg, EOF moves the pointer past the stream's end */
        if (ss.last_seq >= o->sseq)
            o->sseq = ss.last_seq + 1;
        *err = GN_EOF;
        return NULL;
    }
    if (best->seq >= o->sseq)
        o->sseq = best->seq + 1;
    *dc = 1;
    return best;
}

/* needFlowControl */
static bool need_fc(jconsumer *o, int64_t sz)
{
    if (o->maxpb == 0)
        return false;
    if (!o->fcid && o->pbytes > o->maxpb / 2)
        return true;
    if (o->fcid && (o->pbytes - o->fcsz) >= o->maxpb)
        o->fcsz += sz;
    return false;
}

static void send_fc(jconsumer *o, js_outbox *ob)
{
    if (!is_push(o))
        return;
    static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    char id[5];
    uint64_t r = rand_u64();
    for (int i = 0; i < 4; i++) {
        id[i] = digits[r % 62];
        r /= 62;
    }
    id[4] = 0;
    size_t need = strlen(o->s->name) + strlen(o->name) + 32;
    char *fc = malloc(need);
    if (!fc)
        return;
    snprintf(fc, need, "$JS.FC.%s.%s.%s", o->s->name, o->name, id);
    free(o->fcid);
    o->fcid = fc;
    o->fcsz = o->pbytes;
    js_out_status(ob, o->cfg.deliver_subject, 100, "FlowControl Request", NULL, fc);
}

/* convertToHeadersOnly: the stored headers (or a bare status line) + Nats-Msg-Size. */
static char *headers_only(const store_msg *m, size_t *hl)
{
    size_t base = m->hdr_len >= 4 ? m->hdr_len - 2 : 0;
    size_t cap = (base ? base : 10) + 64;
    char *h = malloc(cap);
    if (!h)
        return NULL;
    size_t o = 0;
    if (base) {
        memcpy(h, m->hdr, base);
        o = base;
    } else {
        memcpy(h, "NATS/1.0\r\n", 10);
        o = 10;
    }
    o += (size_t)snprintf(h + o, cap - o, "Nats-Msg-Size: %u\r\n\r\n", m->data_len);
    *hl = o;
    return h;
}

static bool c_paused(const jconsumer *o)
{
    return o->cfg.has_pause && o->cfg.pause_until != 0 && js_now_wall() < o->cfg.pause_until;
}

/* A push consumer's interest, as nats-server's sublist notification: a subscription on
 * exactly the deliver subject (wildcard subscriptions do not count), in the deliver group
 * when one is set, plain ones otherwise. */
static bool push_interest(const jconsumer *o)
{
    const char *subj = o->cfg.deliver_subject, *grp = o->cfg.deliver_group;
    size_t sl = strlen(subj);
    sublist_result *r = sublist_match(o->j->acc->sl, subj, sl);
    bool any = false;
    if (!str_set(grp)) {
        for (size_t i = 0; !any && i < r->npsubs; i++) {
            const sub *x = r->psubs[i];
            any = x->subject_len == sl && !memcmp(x->subject, subj, sl);
        }
    } else {
        for (size_t i = 0; !any && i < r->nqsubs; i++) {
            const sublist_qgroup *g = &r->qsubs[i];
            if (!g->n || strcmp(g->name, grp))
                continue;
            const sub *x = g->items[0];
            any = x->subject_len == sl && !memcmp(x->subject, subj, sl);
        }
    }
    sublist_result_release(r);
    return any;
}

static void update_interest(jconsumer *o, int64_t now)
{
    if (!is_push(o))
        return;
    bool interest = push_interest(o);
    o->active = interest;
    if (!interest) {
        if (!o->dtmr && o->dthresh > 0)
            o->dtmr = now + o->dthresh;
    } else {
        o->dtmr = 0;
    }
}

/* Deliver what can be delivered now (nats-server's loopAndGatherMsgs, one pass). */
static void c_run(jconsumer *o, js_outbox *ob)
{
    if (o->closed)
        return;
    int64_t now = js_now_mono();
    bool push = is_push(o);
    int err = GN_OK;
    size_t sent = 0;
    int64_t bytes = 0;
    bool more = false, eos = true;
    c_sync_pending(o);
    if (push)
        update_interest(o, now);
    for (;;) {
        err = GN_OK;
        if (c_paused(o))
            break;
        if (push) {
            if (!o->active || (o->maxpb > 0 && o->pbytes > o->maxpb))
                break;
        } else if (!o->wq_n) {
            break;
        }
        if (sent >= RUN_MAX_MSGS || bytes >= RUN_MAX_BYTES) {
            more = true; /* the JS thread continues; not the end of the stream */
            eos = false;
            break;
        }
        if (o->replay_until && now < o->replay_until) {
            eos = false;
            break;
        }
        uint64_t save_sseq = o->sseq;
        size_t save_lss = o->lss_i;
        uint64_t dc = 1;
        store_msg *m = get_next(o, ob, &dc, &err);
        if (!m)
            break;
        if (dc == 1) {
            if (m->seq > o->npf)
                c_sync_pending_from(o, m->seq); /* appended since the run began */
            o->npc--;
        }
        /* replay_policy original: keep the original spacing until caught up */
        if (o->replay && o->lts > 0 && !o->replay_go) {
            int64_t delay = m->ts - o->lts;
            if (delay > NS_PER_MS) {
                o->replay_until = now + delay;
                o->replay_go = true;
                eos = false;
                goto put_back;
            }
        }
        char ack[1024];
        snprintf(ack, sizeof ack, "$JS.ACK.%s.%s.%llu.%llu.%llu.%lld.%llu", o->s->name, o->name,
                 (unsigned long long)dc, (unsigned long long)m->seq, (unsigned long long)o->dseq,
                 (long long)m->ts, (unsigned long long)num_pending(o));
        const char *hdr = m->hdr;
        size_t hl = m->hdr_len;
        const char *data = m->data;
        size_t dl = m->data_len;
        char *ho = NULL;
        if (o->cfg.headers_only) {
            ho = headers_only(m, &hl);
            if (!ho) {
                store_msg_release(m);
                break;
            }
            hdr = ho;
            data = NULL;
            dl = 0;
        }
        int64_t sz = (int64_t)(m->subj_len + strlen(ack) + hl + dl);
        const char *dsubj;
        char *reply_copy = NULL;
        int64_t wrn = 1, wrb = 0;
        if (push) {
            dsubj = o->cfg.deliver_subject;
        } else {
            bool done;
            wreq *wr = next_waiting(o, ob, sz, now, &done);
            if (!wr) {
                free(ho);
                goto put_back;
            }
            wrn = wr->n;
            wrb = wr->b;
            reply_copy = xstrdup(wr->reply);
            if (done)
                wr_free(wr);
            else if (wr->hb > 0)
                wr->hbt = now + wr->hb;
            dsubj = reply_copy;
            if (!dsubj) {
                free(ho);
                store_msg_release(m);
                break;
            }
            if (prio_policy(o) == PP_PINNED) {
                /* genHeader(hdr, Nats-Pin-Id, current pin) */
                size_t base = hl >= 4 ? hl - 2 : 0, cap = (base ? base : 10) + 64;
                char *ph = malloc(cap);
                if (ph) {
                    size_t n = base;
                    if (base)
                        memcpy(ph, hdr, base);
                    else
                        memcpy(ph, "NATS/1.0\r\n", (n = 10));
                    n += (size_t)snprintf(ph + n, cap - n, "Nats-Pin-Id: %s\r\n\r\n", o->pin_id);
                    free(ho);
                    ho = ph;
                    hdr = ph;
                    hl = n;
                    sz = (int64_t)(m->subj_len + strlen(ack) + hl + dl);
                }
            }
        }
        o->replay_go = false;
        o->replay_until = 0;
        o->lts = m->ts;
        /* deliverMsg */
        {
            uint64_t dseq = o->dseq++;
            int64_t psz = (int64_t)(strlen(dsubj) + strlen(ack) + hl + dl);
            if (o->maxpb > 0)
                o->pbytes += psz;
            st_update_delivered(o, dseq, m->seq, dc);
            if (o->cfg.ack_policy == AP_EXPLICIT || o->cfg.ack_policy == AP_ALL) {
                track_pending(o, m->seq, dseq);
            } else {
                o->adflr = dseq;
                o->asflr = m->seq;
            }
            js_out_msg(ob, dsubj, m->subj, m->subj_len, ack, hdr, hl, data, dl);
            if (o->maxpb > 0 && need_fc(o, psz))
                send_fc(o, ob);
            if (!push && o->dthresh > 0)
                o->wq_last = now;
            if (o->cfg.ack_policy == AP_NONE && o->s->cfg.retention != JS_RET_LIMITS)
                stream_ack(o->s, m->seq);
        }
        if (wrn <= 0 && wrb > 0) {
            char h[128];
            pending_hdrs(h, sizeof h, wrn, wrb);
            js_out_status(ob, dsubj, 409, "Batch Completed", h, NULL);
        }
        if (push && o->cfg.heartbeat > 0)
            o->hb_due = now + o->cfg.heartbeat;
        sent++;
        bytes += sz;
        free(ho);
        free(reply_copy);
        store_msg_release(m);
        continue;
    put_back:
        /* not delivered: undo what get_next did */
        if (dc == 1) {
            o->sseq = save_sseq;
            o->lss_i = save_lss;
            o->npc++;
        } else {
            dec_delivery_count(o, m->seq);
            rdq_add(o, m->seq, true);
        }
        store_msg_release(m);
        break;
    }
    if (o->replay && o->sseq > o->replay_lseq)
        o->replay = false;
    if (!push)
        process_waiting(o, ob, eos && err != GN_MAXACK, now, NULL);
    if (more)
        c_signal(o);
}

/* ------------------------------------------------------------------ persistence */


static int mkdir_p(const char *path)
{
    char *p = xstrdup(path);
    if (!p)
        return -1;
    for (char *q = p + 1; *q; q++) {
        if (*q == '/') {
            *q = 0;
            if (mkdir(p, 0750) != 0 && errno != EEXIST) {
                free(p);
                return -1;
            }
            *q = '/';
        }
    }
    int rc = mkdir(p, 0750);
    free(p);
    return rc == 0 || errno == EEXIST ? 0 : -1;
}

static void c_write_meta(jconsumer *o, bool sync)
{
    if (!o->dir)
        return;
    if (mkdir_p(o->dir) != 0)
        goto fail;
    char tb[64];
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "stream_name", o->s->name);
    cJSON_AddStringToObject(m, "name", o->name);
    cJSON_AddStringToObject(m, "created", js_time_str(tb, sizeof tb, o->created));
    cJSON_AddItemToObject(m, "config", cfg_json(&o->cfg, false));
    char *txt = cJSON_Print(m);
    cJSON_Delete(m);
    if (!txt)
        goto fail;
    int rc = js_write_file_atomic(o->dir, "meta.json", txt, strlen(txt), sync);
    cJSON_free(txt);
    if (rc == 0)
        return;
fail:
    srv_log(o->j->srv, EMBER_LOG_WARN, "JetStream consumer '%s > %s > %s' could not write its config: %s", o->j->acc->name,
            o->s->name, o->name, strerror(errno));
}

/* The state file: a header line, the store view, then one line per pending ack and per
 * redelivery count; "end" last. */
static void c_write_state(jconsumer *o, bool sync)
{
    o->dirty = false;
    o->last_write = js_now_mono();
    if (!o->dir)
        return;
    bytebuf b = {0};
    char line[128];
    int n = snprintf(line, sizeof line, "ember-consumer-state 1\ndelivered %llu %llu\nackfloor %llu %llu\n",
                     (unsigned long long)o->sd_c, (unsigned long long)o->sd_s,
                     (unsigned long long)o->sa_c, (unsigned long long)o->sa_s);
    bytebuf_append(&b, line, (size_t)n);
    for (size_t i = 0; i < o->pending.cap; i++) {
        const mapent *p = &o->pending.e[i];
        if (!p->k)
            continue;
        n = snprintf(line, sizeof line, "pending %llu %llu %lld\n", (unsigned long long)p->k,
                     (unsigned long long)p->a, (long long)p->b);
        bytebuf_append(&b, line, (size_t)n);
    }
    for (size_t i = 0; i < o->rdc.cap; i++) {
        const mapent *p = &o->rdc.e[i];
        if (!p->k)
            continue;
        n = snprintf(line, sizeof line, "redelivered %llu %llu\n", (unsigned long long)p->k,
                     (unsigned long long)p->a);
        bytebuf_append(&b, line, (size_t)n);
    }
    bytebuf_append(&b, "end\n", 4);
    if (!b.p || mkdir_p(o->dir) != 0 || js_write_file_atomic(o->dir, "state", b.p, b.len, sync) != 0)
        srv_log(o->j->srv, EMBER_LOG_WARN,
                "JetStream consumer '%s > %s > %s' could not write its state: %s", o->j->acc->name, o->s->name,
                o->name, strerror(errno));
    bytebuf_free(&b);
}

static void c_remove_files(jconsumer *o)
{
    if (!o->dir)
        return;
    static const char *files[] = {"meta.json", "meta.json.tmp", "state", "state.tmp"};
    char p[4096];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/%s", o->dir, files[i]);
        unlink(p);
    }
    rmdir(o->dir);
    snprintf(p, sizeof p, "%s/obs", o->s->dir);
    rmdir(p); /* fails while other consumers have files: fine */
}

/* ------------------------------------------------------------------ lifecycle */

static void c_free(jconsumer *o)
{
    if (!o)
        return;
    while (o->wq_head) {
        wreq *wr = o->wq_head;
        o->wq_head = wr->next;
        wr_free(wr);
    }
    cfg_free(&o->cfg);
    map_clear(&o->pending);
    map_clear(&o->rdc);
    map_clear(&o->rdqi);
    free(o->rdq);
    free(o->lss);
    free(o->fcid);
    free(o->dir);
    free(o->name);
    free(o);
}

static void c_unlink(jconsumer *o)
{
    jstream *s = o->s;
    for (jconsumer **pp = &s->consumers; *pp; pp = &(*pp)->next) {
        if (*pp == o) {
            *pp = o->next;
            s->nconsumers--;
            break;
        }
    }
    o->next = NULL;
}

/* Delete a consumer (API delete, inactivity, stream delete): waiting pulls get 409
 * Consumer Deleted, interest retention drops what nobody needs anymore, files go. */
static void c_delete(jconsumer *o, js_outbox *ob, bool stream_deleting)
{
    jstream *s = o->s;
    for (wreq *wr = o->wq_head; wr; wr = wr->next)
        js_out_status(ob, wr->reply, 409, "Consumer Deleted", NULL, NULL);
    if (!stream_deleting) {
        cJSON *e = advisory_base(o, "io.nats.jetstream.advisory.v1.consumer_action");
        cJSON_AddStringToObject(e, "action", "delete");
        if (o->j->domain)
            cJSON_AddStringToObject(e, "domain", o->j->domain);
        advisory(o, ob, "DELETED", e);
    }
    o->closed = true;
    c_unlink(o);
    if (!stream_deleting)
        cleanup_no_interest(s, o->asflr, o);
    c_remove_files(o);
    c_free(o);
}

/* updateInactiveThreshold (may stamp the ephemeral default into cfg). */
static void update_inactive_threshold(jconsumer *o, jc_cfg *cfg)
{
    int64_t jitter = 100 * NS_PER_MS + (int64_t)(rand_u64() % 900) * NS_PER_MS;
    if (!str_set(cfg->durable) && cfg->inactive_threshold <= 0) {
        o->dthresh = DELETE_WAIT_DEFAULT + jitter;
        cfg->inactive_threshold = DELETE_WAIT_DEFAULT;
    } else if (cfg->inactive_threshold > 0) {
        o->dthresh = str_set(cfg->deliver_subject) ? cfg->inactive_threshold
                                                    : cfg->inactive_threshold + jitter;
    } else {
        o->dthresh = 0;
    }
}

/* GetSeqFromTime: the first message stamped at or after t (binary search; timestamps
 * grow with sequences), or last_seq + 1. */
static uint64_t seq_from_time(store *st, uint64_t first, int64_t t)
{
    store_state ss;
    store_get_state(st, &ss);
    uint64_t lo = first, hi = ss.last_seq + 1;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        store_msg *m = NULL;
        if (store_load_next(st, NULL, mid, &m) != 0) {
            hi = mid;
            continue;
        }
        if (m->ts >= t)
            hi = mid;
        else
            lo = m->seq + 1;
        store_msg_release(m);
    }
    uint64_t seq = ss.last_seq + 1;
    store_msg *m = NULL;
    if (lo <= ss.last_seq && store_load_next(st, NULL, lo, &m) == 0) {
        seq = m->seq;
        store_msg_release(m);
    }
    return seq;
}

/* selectStartingSeqNo */
static void select_start(jconsumer *o)
{
    store *st = o->s->st;
    store_state ss;
    store_get_state(st, &ss);
    const jc_cfg *c = &o->cfg;
    uint64_t first = ss.first_seq; /* last_seq + 1 when empty */
    o->sseq = 0;
    if (c->opt_start_seq == 0) {
        if (c->deliver_policy == DP_ALL) {
            o->sseq = first;
        } else if (c->deliver_policy == DP_LAST) {
            if (!o->nfilters) {
                o->sseq = ss.last_seq;
            } else {
                for (size_t i = 0; i < o->nfilters; i++) {
                    store_msg *m = NULL;
                    if (store_load_last(st, o->filters[i], &m) == 0) {
                        if (m->seq > o->sseq)
                            o->sseq = m->seq;
                        store_msg_release(m);
                    }
                }
            }
        } else if (c->deliver_policy == DP_LAST_PER_SUBJECT) {
            if (o->s->cfg.max_msgs_per_subject == 1) {
                o->sseq = first;
            } else {
                size_t cap = 0, n = 0;
                uint64_t *seqs = NULL;
                for (size_t i = 0; i < (o->nfilters ? o->nfilters : 1); i++) {
                    store_subject_state *arr = NULL;
                    size_t an = 0;
                    if (store_subjects_state(st, o->nfilters ? o->filters[i] : NULL, &arr, &an) != 0)
                        continue;
                    if (n + an > cap) {
                        size_t nc = (n + an) * 2;
                        uint64_t *ns = realloc(seqs, nc * sizeof *ns);
                        if (!ns) {
                            free(arr);
                            continue;
                        }
                        seqs = ns;
                        cap = nc;
                    }
                    for (size_t k = 0; k < an; k++)
                        seqs[n++] = arr[k].last_seq;
                    free(arr);
                }
                if (n)
                    qsort(seqs, n, sizeof *seqs, cmp_u64);
                o->lss = seqs;
                o->lss_n = n;
                o->lss_i = 0;
                o->lss_resume = ss.last_seq;
                o->sseq = n ? seqs[0] : ss.last_seq;
            }
        } else if (c->deliver_policy == DP_BY_START_TIME) {
            o->sseq = seq_from_time(st, first, c->opt_start_time);
        } else {
            o->sseq = ss.last_seq + 1; /* DeliverNew */
        }
    } else {
        o->sseq = c->opt_start_seq;
    }
    if (o->sseq > ss.last_seq && c->opt_start_seq == 0)
        o->sseq = ss.last_seq + 1;
    else if (o->sseq < first)
        o->sseq = first;
    if (o->sseq == 0)
        o->sseq = 1;
    o->dseq = 1;
    o->adflr = 0;
    o->asflr = o->sseq - 1;
    /* SetStarting */
    o->sd_s = o->sseq - 1;
}

static void c_setup_run_state(jconsumer *o)
{
    int64_t now = js_now_mono();
    if (o->cfg.flow_control) {
        o->pblimit = FC_MAX_PENDING;
        o->maxpb = o->pblimit / 16;
    }
    if (is_push(o)) {
        o->active = push_interest(o);
        if (o->cfg.heartbeat > 0)
            o->hb_due = now + o->cfg.heartbeat;
    }
    if (o->dthresh > 0 && (!is_push(o) || !o->active))
        o->dtmr = now + o->dthresh;
    if (o->cfg.replay_policy == RP_ORIGINAL) {
        store_state ss;
        store_get_state(o->s->st, &ss);
        o->replay = true;
        o->replay_lseq = ss.last_seq;
    }
}

/* A new consumer (addConsumer after the existing-consumer checks). Takes cfg. */
static jconsumer *c_new(jstream *s, jc_cfg *cfg, const char *name)
{
    jconsumer *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->s = s;
    o->j = s->j;
    o->name = xstrdup(name);
    o->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    if (!o->name) {
        c_free(o);
        return NULL;
    }
    o->created = js_now_wall();
    o->maxdc = o->cfg.max_deliver > 0 ? (uint64_t)o->cfg.max_deliver : 0;
    c_set_filters(o);
    if (s->dir && is_durable(o) && !o->cfg.mem_storage) {
        size_t l = strlen(s->dir) + strlen(o->name) + 8;
        o->dir = malloc(l);
        if (o->dir)
            snprintf(o->dir, l, "%s/obs/%s", s->dir, o->name);
    }
    return o;
}

static void c_link(jconsumer *o)
{
    jstream *s = o->s;
    jconsumer **pp = &s->consumers;
    while (*pp)
        pp = &(*pp)->next;
    *pp = o;
    s->nconsumers++;
}

/* partitionUnique */
static bool partition_unique(jstream *s, const char *name, const char **parts, size_t nparts)
{
    for (size_t i = 0; i < nparts; i++) {
        for (jconsumer *o = s->consumers; o; o = o->next) {
            if (name && !strcmp(o->name, name))
                continue;
            if (!o->nfilters)
                return false;
            for (size_t k = 0; k < o->nfilters; k++)
                if (js_subj_overlap(parts[i], o->filters[k]))
                    return false;
        }
    }
    return true;
}

/* checkNewConsumerConfig + updateConfig. Takes ncfg on success. */
static int c_update(jconsumer *o, jc_cfg *ncfg, jc_err *e, js_outbox *ob)
{
    const jc_cfg *c = &o->cfg;
    if (!cfg_equal(c, ncfg, false)) {
        if (c->deliver_policy != ncfg->deliver_policy)
            return set_err(e, JSE_ConsumerCreateErrF, "deliver policy can not be updated");
        if (c->mem_storage != ncfg->mem_storage)
            return set_err(e, JSE_ConsumerCreateErrF, "storage type can not be updated");
        if (c->direct != ncfg->direct)
            return set_err(e, JSE_ConsumerCreateErrF, "direct can not be updated");
        if (c->opt_start_seq != ncfg->opt_start_seq)
            return set_err(e, JSE_ConsumerCreateErrF, "start sequence can not be updated");
        if (c->has_start_time != ncfg->has_start_time ||
            (c->has_start_time && c->opt_start_time != ncfg->opt_start_time))
            return set_err(e, JSE_ConsumerCreateErrF, "start time can not be updated");
        if (c->ack_policy != ncfg->ack_policy)
            return set_err(e, JSE_ConsumerCreateErrF, "ack policy can not be updated");
        if (c->replay_policy != ncfg->replay_policy)
            return set_err(e, JSE_ConsumerCreateErrF, "replay policy can not be updated");
        if (c->heartbeat != ncfg->heartbeat)
            return set_err(e, JSE_ConsumerCreateErrF, "heart beats can not be updated");
        if (c->flow_control != ncfg->flow_control)
            return set_err(e, JSE_ConsumerCreateErrF, "flow control can not be updated");
        if (!str_eq(c->deliver_subject, ncfg->deliver_subject)) {
            if (!str_set(c->deliver_subject))
                return set_err(e, JSE_ConsumerCreateErrF, "can not update pull consumer to push based");
            if (!str_set(ncfg->deliver_subject))
                return set_err(e, JSE_ConsumerCreateErrF, "can not update push consumer to pull based");
            if (has_interest(o->j, c->deliver_subject))
                return set_err(e, JSE_ConsumerNameExistErr, NULL);
        }
        if (c->max_waiting != ncfg->max_waiting)
            return set_err(e, JSE_ConsumerCreateErrF, "max waiting can not be updated");
        if (ncfg->nbackoff > 0 && ncfg->max_deliver != -1 &&
            (int64_t)ncfg->nbackoff > ncfg->max_deliver)
            return set_err(e, JSE_ConsumerMaxDeliverBackoffErr, NULL);
    }
    int64_t now = js_now_mono();
    if (!str_eq(c->deliver_subject, ncfg->deliver_subject) && o->pending.n)
        force_expire_pending(o);
    if (ncfg->ack_wait != c->ack_wait && o->ptmr)
        reset_ptmr(o, 100 * NS_PER_MS);
    o->maxdc = ncfg->max_deliver > 0 ? (uint64_t)ncfg->max_deliver : 0;
    if (ncfg->inactive_threshold != c->inactive_threshold) {
        update_inactive_threshold(o, ncfg);
        o->dtmr = o->dthresh > 0 ? now + o->dthresh : 0;
    }
    const char **nf;
    size_t nnf = cfg_filters(ncfg, &nf);
    bool filters_changed = !strv_eq((char **)o->filters, o->nfilters, (char **)nf, nnf);
    cfg_free(&o->cfg);
    o->cfg = *ncfg;
    memset(ncfg, 0, sizeof *ncfg);
    c_set_filters(o);
    if (prio_policy(o) != PP_PINNED || !has_group(o, o->pin_group))
        pin_clear(o); /* a pin only lives in a pinned_client group */
    else if (o->pin_id[0])
        pin_touch(o, now); /* priority_timeout may have changed */
    if (is_push(o))
        update_interest(o, now);
    if (filters_changed) {
        if (o->s->cfg.retention == JS_RET_INTEREST)
            cleanup_no_interest(o->s, o->asflr, NULL);
        c_calc_pending(o);
    }
    c_write_meta(o, false);
    c_signal(o);
    (void)ob;
    return 0;
}

/* addConsumerWithAssignment: create, or update/return the existing one. */
enum { ACT_CREATE_OR_UPDATE = 0, ACT_UPDATE, ACT_CREATE };

static jconsumer *c_add(jstream *s, jc_cfg *cfg, int action, bool pedantic, jc_err *e,
                        js_outbox *ob, bool *created)
{
    *created = false;
    const js_stream_cfg *sc = &s->cfg;
    /* setConsumerConfigDefaults, with its pedantic errors */
    if (pedantic) {
        if (cfg->nbackoff > 0 && cfg->ack_wait != cfg->backoff[0]) {
            set_err(e, JSE_PedanticErrF, "first backoff value has to equal batch AckWait");
            return NULL;
        }
        if (cfg->max_ack_pending == 0 && sc->consumer_max_ack_pending > 0) {
            set_err(e, JSE_PedanticErrF, "max_ack_pending must be set if it's configured in stream limits");
            return NULL;
        }
        if (cfg->inactive_threshold == 0 && sc->consumer_inactive_threshold_ns > 0) {
            set_err(e, JSE_PedanticErrF, "inactive_threshold must be set if it's configured in stream limits");
            return NULL;
        }
    }
    cfg_defaults(cfg, s);
    if (cfg_check(cfg, s, false, e) != 0)
        return NULL;
    const char *cname = str_set(cfg->durable) ? cfg->durable : str_set(cfg->name) ? cfg->name : NULL;
    const char **parts;
    size_t nparts = cfg_filters(cfg, &parts);
    if (cname) {
        jconsumer *eo = c_lookup(s, cname, strlen(cname));
        if (eo) {
            if (action == ACT_CREATE) {
                if (meta_copy_from(cfg, &eo->cfg) != 0 || !cfg_equal(cfg, &eo->cfg, false)) {
                    set_err(e, JSE_ConsumerAlreadyExists, NULL);
                    return NULL;
                }
            }
            if (sc->retention == JS_RET_WORKQUEUE && !partition_unique(s, cname, parts, nparts)) {
                set_err(e, JSE_ConsumerWQConsumerNotUniqueErr, NULL);
                return NULL;
            }
            if (c_update(eo, cfg, e, ob) != 0)
                return NULL;
            return eo;
        }
    }
    if (action == ACT_UPDATE) {
        set_err(e, JSE_ConsumerDoesNotExist, NULL);
        return NULL;
    }
    size_t npublic = 0; /* numPublicConsumers: direct (mirror/source) ones do not count */
    for (jconsumer *x = s->consumers; x; x = x->next)
        npublic += !x->cfg.direct;
    if (sc->max_consumers > 0 && (int64_t)npublic >= sc->max_consumers) {
        set_err(e, JSE_MaximumConsumersLimitErr, NULL);
        return NULL;
    }
    if (sc->retention == JS_RET_WORKQUEUE && !cfg->direct) {
        if (cfg->ack_policy != AP_EXPLICIT) {
            set_err(e, JSE_ConsumerWQRequiresExplicitAckErr, NULL);
            return NULL;
        }
        if (s->nconsumers > 0) {
            if (nparts == 0) {
                set_err(e, JSE_ConsumerWQMultipleUnfilteredErr, NULL);
                return NULL;
            }
            if (!partition_unique(s, cname, parts, nparts)) {
                set_err(e, JSE_ConsumerWQConsumerNotUniqueErr, NULL);
                return NULL;
            }
        }
        if (cfg->deliver_policy != DP_ALL) {
            set_err(e, JSE_ConsumerWQConsumerNotDeliverAllErr, NULL);
            return NULL;
        }
    }
    char gen[9];
    const char *name;
    if (str_set(cfg->durable)) {
        if (strlen(cfg->durable) > MAX_NAME_LEN) {
            set_err(e, JSE_ConsumerNameTooLongErrF, "%d", MAX_NAME_LEN);
            return NULL;
        }
        name = cfg->durable;
    } else if (str_set(cfg->name)) {
        name = cfg->name;
    } else {
        static const char digits[] =
            "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        do {
            for (int i = 0; i < 8; i++)
                gen[i] = digits[rand_u64() % 62];
            gen[8] = 0;
        } while (c_lookup(s, gen, 8));
        cfg->name = xstrdup(gen);
        if (!cfg->name) {
            set_err(e, JSE_ConsumerCreateErrF, "out of memory");
            return NULL;
        }
        name = cfg->name;
    }
    if (!valid_name(name)) {
        set_err(e, JSE_ConsumerBadDurableNameErr, NULL);
        return NULL;
    }
    char namecopy[MAX_NAME_LEN + 1];
    snprintf(namecopy, sizeof namecopy, "%s", name);
    jconsumer *o = c_new(s, cfg, namecopy);
    if (!o) {
        set_err(e, JSE_ConsumerCreateErrF, "out of memory");
        return NULL;
    }
    if (o->dir && mkdir_p(o->dir) != 0) {
        set_err(e, JSE_ConsumerStoreFailedErrF, "%s", strerror(errno));
        c_free(o);
        return NULL;
    }
    select_start(o);
    update_inactive_threshold(o, &o->cfg);
    c_setup_run_state(o);
    c_calc_pending(o);
    c_link(o);
    c_write_meta(o, false);
    c_write_state(o, false);
    *created = true;
    cJSON *adv = advisory_base(o, "io.nats.jetstream.advisory.v1.consumer_action");
    cJSON_AddStringToObject(adv, "action", "create");
    if (o->j->domain)
        cJSON_AddStringToObject(adv, "domain", o->j->domain);
    advisory(o, ob, "CREATED", adv);
    return o;
}

/* ------------------------------------------------------------------ info */

static void add_seq_info(cJSON *o, const char *key, uint64_t c, uint64_t s, int64_t last)
{
    char tb[64];
    cJSON *x = cJSON_AddObjectToObject(o, key);
    js_add_u64(x, "consumer_seq", c);
    js_add_u64(x, "stream_seq", s);
    if (last)
        cJSON_AddStringToObject(x, "last_active", js_time_str(tb, sizeof tb, last));
}

/* ConsumerInfo fields added to r (after its "type"). */
static void c_info_into(jconsumer *o, cJSON *r, js_outbox *ob)
{
    char tb[64];
    int64_t now = js_now_mono();
    c_sync_pending(o);
    c_calc_pending(o);
    int64_t waiting = 0;
    if (is_push(o)) {
        update_interest(o, now);
    } else {
        /* processWaiting without sending from this thread: count the live requests
         * (the JS thread expires the others) */
        for (wreq *wr = o->wq_head; wr; wr = wr->next)
            if (!(wr->expires && now > wr->expires) && has_interest(o->j, wr->reply))
                waiting++;
    }
    cJSON_AddStringToObject(r, "stream_name", o->s->name);
    cJSON_AddStringToObject(r, "name", o->name);
    cJSON_AddStringToObject(r, "created", js_time_str(tb, sizeof tb, o->created));
    cJSON_AddItemToObject(r, "config", cfg_json(&o->cfg, true));
    bool has_state = o->sd_c != 0 || o->sd_s != 0;
    add_seq_info(r, "delivered", has_state ? o->sd_c : o->dseq - 1,
                 has_state ? o->sd_s : o->sseq - 1, o->ldt);
    add_seq_info(r, "ack_floor", o->sa_c, o->sa_s, o->lat);
    js_add_u64(r, "num_ack_pending", o->pending.n);
    js_add_u64(r, "num_redelivered", o->cfg.max_deliver == 1 ? 0 : o->rdc.n);
    js_add_i64(r, "num_waiting", waiting);
    js_add_u64(r, "num_pending", num_pending(o));
    if (is_push(o) && o->active)
        cJSON_AddBoolToObject(r, "push_bound", true);
    if (c_paused(o)) {
        cJSON_AddBoolToObject(r, "paused", true);
        js_add_i64(r, "pause_remaining", o->cfg.pause_until - js_now_wall());
    }
    cJSON_AddStringToObject(r, "ts", js_time_str(tb, sizeof tb, js_now_wall()));
    if (o->cfg.npriority_groups) {
        /* nats-server reports the first group (one pin per consumer) */
        cJSON *a = cJSON_AddArrayToObject(r, "priority_groups");
        cJSON *g = cJSON_CreateObject();
        cJSON_AddStringToObject(g, "group", o->cfg.priority_groups[0]);
        if (o->pin_id[0])
            cJSON_AddStringToObject(g, "pinned_client_id", o->pin_id);
        cJSON_AddStringToObject(g, "pinned_ts", o->pinned_ts ? js_time_str(tb, sizeof tb, o->pinned_ts)
                                                             : "0001-01-01T00:00:00Z");
        cJSON_AddItemToArray(a, g);
    }
}

static cJSON *c_info(jconsumer *o, const char *type, js_outbox *ob)
{
    cJSON *r = cJSON_CreateObject();
    if (type)
        cJSON_AddStringToObject(r, "type", type);
    c_info_into(o, r, ob);
    return r;
}

/* ------------------------------------------------------------------ timers */

/* checkPending: queue what waited longer than ack_wait (or its backoff step). */
static void check_pending(jconsumer *o, js_outbox *ob)
{
    int64_t now_wall = js_now_wall();
    store_state ss;
    store_get_state(o->s->st, &ss);
    uint64_t fseq = ss.first_seq;
    int64_t ttl = o->cfg.ack_wait;
    int64_t next = ack_wait(o, 0);
    size_t nb = o->cfg.nbackoff;
    if (nb)
        next = o->cfg.backoff[nb - 1];
    bool update_state = false;
    size_t n;
    uint64_t *keys = map_keys_sorted(&o->pending, &n);
    uint64_t *expired = n ? malloc(n * sizeof *expired) : NULL;
    size_t ne = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t seq = keys[i];
        mapent *p = map_find(&o->pending, seq);
        if (!p)
            continue;
        if (seq < fseq || seq <= o->asflr) {
            uint64_t pd = p->a;
            map_del(&o->pending, seq);
            map_del(&o->rdc, seq);
            rdq_remove(o, seq);
            update_state = true;
            if (seq > o->asflr)
                o->asflr = seq;
            if (pd > o->adflr)
                o->adflr = pd;
            continue;
        }
        int64_t elapsed = now_wall - p->b, deadline = ttl;
        if (nb) {
            mapent *r = map_find(&o->rdc, seq);
            int64_t dc = r ? (int64_t)r->a : 0;
            if (dc < 0)
                dc = 0;
            int64_t nbi = dc + 1;
            if (dc + 1 >= (int64_t)nb) {
                dc = (int64_t)nb - 1;
                nbi = dc;
            }
            deadline = o->cfg.backoff[dc];
            if (o->cfg.backoff[nbi] < next)
                next = o->cfg.backoff[nbi];
        }
        if (elapsed >= deadline) {
            if (!rdq_has(o, seq) && !has_max_deliveries(o, ob, seq) && expired)
                expired[ne++] = seq;
        } else if (deadline - elapsed < next) {
            next = deadline - elapsed;
        }
    }
    free(keys);
    if (ne) {
        for (size_t i = 0; i < ne; i++)
            rdq_add(o, expired[i], false);
        mapent *f = map_find(&o->pending, expired[0]);
        int64_t off = f ? now_wall - f->b : 0;
        for (size_t i = 0; i < ne; i++) {
            mapent *p = map_find(&o->pending, expired[i]);
            if (p)
                p->b += off;
        }
    }
    free(expired);
    if (o->pending.n > 0) {
        reset_ptmr(o, next);
    } else {
        o->ptmr = 0;
        rdq_clear(o);
        map_clear(&o->pending);
        o->adflr = o->dseq - 1;
        o->asflr = o->sseq - 1;
    }
    if (update_state)
        st_write(o);
    if (ne)
        c_run(o, ob);
}

/* deleteNotActive. Returns true when o was deleted. */
static bool delete_not_active(jconsumer *o, js_outbox *ob, int64_t now)
{
    if (is_push(o)) {
        update_interest(o, now);
        if (o->active) {
            o->dtmr = 0;
            return false;
        }
    } else {
        int64_t elapsed = o->wq_last ? now - o->wq_last : INT64_MAX;
        if (elapsed < o->dthresh) {
            o->dtmr = now + (o->dthresh - elapsed);
            return false;
        }
        process_waiting(o, ob, true, now, NULL);
        if (o->wq_n > 0) {
            o->dtmr = now + o->dthresh;
            return false;
        }
        /* wait for the last pending ack to expire, plus the threshold */
        int64_t now_wall = js_now_wall(), delay = 0;
        size_t nb = o->cfg.nbackoff;
        for (size_t i = 0; i < o->pending.cap; i++) {
            mapent *p = &o->pending.e[i];
            if (!p->k)
                continue;
            int64_t aw;
            if (!nb) {
                aw = ack_wait(o, 0);
            } else {
                mapent *r = map_find(&o->rdc, p->k);
                int64_t bi = r ? (int64_t)r->a : 0;
                if (bi < 0)
                    bi = 0;
                else if (bi >= (int64_t)nb)
                    bi = (int64_t)nb - 1;
                aw = ack_wait(o, o->cfg.backoff[bi]);
            }
            int64_t ts = p->b + aw + o->dthresh;
            if (ts > now_wall && ts - now_wall > delay)
                delay = ts - now_wall;
        }
        if (delay > 0) {
            o->dtmr = now + delay;
            return false;
        }
    }
    srv_log(o->j->srv, EMBER_LOG_DEBUG, "JetStream consumer '%s > %s > %s' deleted after inactivity", o->j->acc->name,
            o->s->name, o->name);
    c_delete(o, ob, false);
    return true;
}

static void due_min(int64_t *next, int64_t t)
{
    if (t > 0 && (*next == 0 || t < *next))
        *next = t;
}

/* One consumer's timers; returns its next due time (0: none) or -1 when deleted. */
static int64_t c_tick(jconsumer *o, js_outbox *ob, int64_t now)
{
    int64_t next = 0;
    if (o->ptmr && now >= o->ptmr) {
        o->ptmr = 0;
        check_pending(o, ob);
    }
    if (o->replay_until && now >= o->replay_until)
        c_run(o, ob);
    if (c_paused(o)) {
        o->paused_seen = true;
        due_min(&next, now + (o->cfg.pause_until - js_now_wall()));
    } else if (o->paused_seen) {
        o->paused_seen = false; /* the pause ended */
        c_run(o, ob);
    }
    if (is_push(o)) {
        if (o->cfg.heartbeat > 0) {
            if (now >= o->hb_due) {
                update_interest(o, now);
                if (o->active)
                    send_idle_heartbeat(o, ob, o->cfg.deliver_subject);
                o->hb_due = now + o->cfg.heartbeat;
            }
            due_min(&next, o->hb_due);
        }
        /* notice interest coming and going (nats-server is told by the sublist) */
        bool was = o->active;
        if (!o->active || o->poll <= now) {
            update_interest(o, now);
            o->poll = now + PUSH_INTEREST_POLL;
        }
        if (o->active && (!was || o->rdq_n || o->sseq <= o->npf))
            c_run(o, ob);
        if (!o->active && (o->rdq_n || num_pending(o) > 0))
            due_min(&next, now + PUSH_INTEREST_POLL);
    } else if (o->wq_n) {
        int64_t fexp = 0;
        c_run(o, ob); /* ends with processWaiting */
        process_waiting(o, ob, false, now, &fexp);
        due_min(&next, fexp);
    }
    if (o->pin_due && now >= o->pin_due) {
        /* no pull from the pinned client for priority_timeout: the pin goes */
        bool was = o->pin_id[0] != 0;
        pin_clear(o);
        if (was) {
            pin_advisory(o, ob, o->pin_group, "timeout");
            c_run(o, ob);
        }
    }
    due_min(&next, o->pin_due);
    if (o->dtmr && now >= o->dtmr) {
        o->dtmr = 0;
        if (delete_not_active(o, ob, now))
            return -1;
    }
    due_min(&next, o->dtmr);
    due_min(&next, o->ptmr);
    due_min(&next, o->replay_until);
    if (o->dirty) {
        if (now - o->last_write >= STATE_WRITE_INTERVAL)
            c_write_state(o, false);
        else
            due_min(&next, o->last_write + STATE_WRITE_INTERVAL);
    }
    return next;
}

/* ------------------------------------------------------------------ engine hooks */

void js_consumers_deliver(jstream *s, js_outbox *ob)
{
    for (jconsumer *o = s->consumers; o; o = o->next)
        c_run(o, ob);
}

int64_t js_consumers_tick(js *j, int64_t now, js_outbox *ob)
{
    int64_t next = 0;
    for (jstream *s = j->streams; s; s = s->next) {
        jconsumer *o = s->consumers;
        while (o) {
            jconsumer *nx = o->next;
            if (o->signal) {
                o->signal = false;
                c_run(o, ob);
            }
            int64_t due = c_tick(o, ob, now);
            if (due > 0)
                due_min(&next, due);
            o = nx;
        }
    }
    return next;
}

/* The stream lost messages (purge, rollup, expiry, message delete): move past them as
 * consumer.purge does, without knowing what was removed: every consumer moves up to the
 * stream's new first sequence and drops pending acks whose messages are gone (those
 * below the first sequence; when the stream has interior gaps, also any pending message
 * that no longer loads). Called often (every expiry round), so it does only the work
 * the removal can have made necessary. */
void js_consumers_stream_purged(jstream *s, js_outbox *ob)
{
    (void)ob;
    store_state ss;
    store_get_state(s->st, &ss);
    uint64_t fseq = ss.first_seq;
    bool interior = ss.num_deleted > 0;
    for (jconsumer *o = s->consumers; o; o = o->next) {
        o->filtered = c_is_filtered(o); /* the stream's subjects may have changed */
        bool changed = false, behind = o->sseq < fseq;
        if (behind) {
            o->sseq = fseq;
            changed = true;
        }
        if (o->lss && o->lss_i < o->lss_n) {
            /* drop skip-list entries that are gone */
            size_t k = o->lss_i;
            for (size_t i = o->lss_i; i < o->lss_n; i++)
                if (o->lss[i] >= fseq)
                    o->lss[k++] = o->lss[i];
            if (k != o->lss_n)
                behind = true; /* recount */
            o->lss_n = k;
        }
        if (o->asflr < fseq - 1) {
            o->asflr = fseq - 1;
            changed = true;
        }
        if (o->pending.n) {
            uint64_t *gone = malloc(o->pending.n * sizeof *gone);
            size_t ng = 0;
            for (size_t i = 0; gone && i < o->pending.cap; i++) {
                uint64_t seq = o->pending.e[i].k;
                if (!seq)
                    continue;
                bool g = seq <= o->asflr;
                if (!g && interior) {
                    store_msg *m = NULL;
                    if (store_load(s->st, seq, &m) == 0)
                        store_msg_release(m);
                    else
                        g = true;
                }
                if (g)
                    gone[ng++] = seq;
            }
            for (size_t i = 0; i < ng; i++) {
                mapent *p = map_find(&o->pending, gone[i]);
                if (p && p->a > o->adflr) {
                    o->adflr = p->a;
                    if (o->adflr > o->dseq)
                        o->dseq = o->adflr;
                }
                map_del(&o->pending, gone[i]);
                map_del(&o->rdc, gone[i]);
            }
            free(gone);
            if (ng) {
                changed = true;
                if (o->pending.n == 0) {
                    map_clear(&o->pending);
                    map_clear(&o->rdc);
                }
            }
        }
        if (o->pending.n == 0 && (o->adflr != o->dseq - 1 || o->asflr != o->sseq - 1)) {
            o->adflr = o->dseq - 1;
            o->asflr = o->sseq - 1;
            changed = true;
        }
        if (changed && o->rdq_n) {
            uint64_t *old = o->rdq;
            size_t on = o->rdq_n;
            o->rdq = NULL;
            o->rdq_n = o->rdq_cap = 0;
            map_clear(&o->rdqi);
            for (size_t i = 0; i < on; i++)
                if (map_find(&o->pending, old[i]))
                    rdq_add(o, old[i], false);
            free(old);
        }
        if (changed)
            st_write(o);
        /* without interior gaps and with the consumer at or past the first sequence,
         * nothing it had yet to deliver went away: the count stands */
        if (behind || interior)
            c_calc_pending(o);
        if (changed || behind)
            c_signal(o);
    }
}

void js_consumers_stream_deleting(jstream *s, js_outbox *ob)
{
    while (s->consumers)
        c_delete(s->consumers, ob, true);
}

bool js_consumers_interested(jstream *s, const char *subj, size_t subj_len)
{
    for (jconsumer *o = s->consumers; o; o = o->next)
        if (!o->closed && c_match(o, subj, subj_len))
            return true;
    return false;
}

void js_consumers_close(jstream *s)
{
    while (s->consumers) {
        jconsumer *o = s->consumers;
        s->consumers = o->next;
        s->nconsumers--;
        if (o->dir) {
            c_write_meta(o, true);
            c_write_state(o, true);
        }
        c_free(o);
    }
    s->nconsumers = 0;
}

/* Read <dir>/state into o. */
static void c_read_state(jconsumer *o)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/state", o->dir);
    size_t len;
    char *buf = js_read_file(path, &len);
    if (!buf)
        return;
    if (strncmp(buf, "ember-consumer-state 1\n", 23) || !strstr(buf, "\nend\n")) {
        srv_log(o->j->srv, EMBER_LOG_WARN, "JetStream consumer '%s > %s > %s': bad state file", o->j->acc->name,
                o->s->name, o->name);
        free(buf);
        return;
    }
    unsigned long long a, b;
    long long c;
    for (char *line = buf, *nl; line && *line; line = nl) {
        nl = strchr(line, '\n');
        if (nl)
            *nl++ = 0;
        if (sscanf(line, "delivered %llu %llu", &a, &b) == 2) {
            o->sd_c = a;
            o->sd_s = b;
        } else if (sscanf(line, "ackfloor %llu %llu", &a, &b) == 2) {
            o->sa_c = a;
            o->sa_s = b;
        } else if (sscanf(line, "pending %llu %llu %lld", &a, &b, &c) == 3) {
            mapent *p = map_put(&o->pending, a, NULL);
            if (p) {
                p->a = b;
                p->b = c;
            }
        } else if (sscanf(line, "redelivered %llu %llu", &a, &b) == 2) {
            mapent *p = map_put(&o->rdc, a, NULL);
            if (p)
                p->a = b;
        }
    }
    free(buf);
}

static int c_recover_one(jstream *s, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/obs/%s/meta.json", s->dir, name);
    size_t len;
    char *txt = js_read_file(path, &len);
    if (!txt)
        return -1;
    cJSON *m = cJSON_ParseWithLength(txt, len);
    free(txt);
    if (!m)
        return -1;
    jc_err e = {.jse = -1};
    jc_cfg cfg;
    int64_t created = 0;
    const char *cs = js_get_str(m, "created", NULL);
    if (cs)
        js_time_parse(cs, &created);
    int rc = cfg_parse(cJSON_GetObjectItemCaseSensitive(m, "config"), &cfg, &e);
    cJSON_Delete(m);
    if (rc != 0)
        return -1;
    cfg_defaults(&cfg, s);
    if (cfg_check(&cfg, s, true, &e) != 0 || !str_set(cfg.durable) || strcmp(cfg.durable, name) ||
        c_lookup(s, name, strlen(name))) {
        cfg_free(&cfg);
        return -1;
    }
    jconsumer *o = c_new(s, &cfg, name);
    if (!o)
        return -1;
    if (created)
        o->created = created;
    if (!o->dir) { /* a durable of a file stream always has one; be safe */
        c_free(o);
        return -1;
    }
    select_start(o); /* the state (if any) overrides */
    c_read_state(o);
    if (o->sd_c || o->sd_s) {
        /* applyState */
        o->sseq = o->sd_s + 1;
        o->dseq = o->sd_c + 1;
        o->adflr = o->sa_c;
        o->asflr = o->sa_s;
        free(o->lss);
        o->lss = NULL;
        o->lss_n = o->lss_i = 0;
    }
    /* a stream that lost its tail: do not skip what is stored again */
    store_state ss;
    store_get_state(s->st, &ss);
    if (o->sseq > ss.last_seq + 1) {
        srv_log(s->j->srv, EMBER_LOG_WARN,
                "JetStream consumer '%s > %s > %s' delivered sequence %llu past last stream sequence of %llu", s->j->acc->name,
                s->name, o->name, (unsigned long long)(o->sseq - 1), (unsigned long long)ss.last_seq);
        o->sseq = ss.last_seq + 1;
        size_t n;
        uint64_t *keys = map_keys_sorted(&o->pending, &n);
        for (size_t i = 0; i < n; i++)
            if (keys[i] > ss.last_seq) {
                map_del(&o->pending, keys[i]);
                map_del(&o->rdc, keys[i]);
            }
        free(keys);
        if (o->asflr > ss.last_seq)
            o->asflr = ss.last_seq;
        st_write(o);
    }
    /* checkRedelivered: counts of messages no longer in the stream go */
    size_t rn;
    uint64_t *rk = map_keys_sorted(&o->rdc, &rn);
    for (size_t i = 0; i < rn; i++)
        if (rk[i] < ss.first_seq)
            map_del(&o->rdc, rk[i]);
    free(rk);
    update_inactive_threshold(o, &o->cfg);
    c_setup_run_state(o);
    if (o->pending.n) {
        int64_t delay = 500 * NS_PER_MS + (int64_t)(rand_u64() % 1000) * NS_PER_MS;
        if (o->cfg.ack_wait < delay)
            delay = ack_wait(o, 0);
        reset_ptmr(o, delay);
    }
    c_calc_pending(o);
    c_link(o);
    o->dirty = false;
    atomic_store(&s->dirty, true); /* let the JS thread deliver what is waiting */
    return 0;
}

int js_consumers_recover(jstream *s, char *err, size_t errcap)
{
    (void)err;
    (void)errcap;
    if (!s->dir)
        return 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/obs", s->dir);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            char **nn = realloc(names, nc * sizeof *nn);
            if (!nn)
                break;
            names = nn;
            cap = nc;
        }
        if ((names[n] = xstrdup(de->d_name)))
            n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_strp);
    for (size_t i = 0; i < n; i++) {
        if (c_recover_one(s, names[i]) != 0)
            srv_log(s->j->srv, EMBER_LOG_WARN,
                    "JetStream consumer '%s > %s > %s' could not be recovered", s->j->acc->name, s->name, names[i]);
        free(names[i]);
    }
    free(names);
    return 0;
}

/* ------------------------------------------------------------------ API */

static bool tok_is(const char *t, size_t l, const char *s)
{
    return strlen(s) == l && !memcmp(t, s, l);
}

/* The 503 nats-server's core answers when no consumer subscribes the subject (a
 * MSG.NEXT or ack for a consumer that does not exist). */
static void no_responders(js_outbox *ob, const char *reply, const msgview *mv)
{
    if (!reply || !*reply)
        return;
    size_t cap = mv->subject_len + 32;
    char *h = malloc(cap);
    if (!h)
        return;
    snprintf(h, cap, "Nats-Subject: %.*s\r\n", (int)mv->subject_len, mv->subject);
    js_out_status(ob, reply, 503, NULL, h, NULL);
    free(h);
}

/* Parse a request body; NULL with the error text in err when invalid (an empty body is
 * an empty object). */
static cJSON *parse_req(const msgview *mv, char *err, size_t cap)
{
    size_t i = 0;
    while (i < mv->data_len && (mv->data[i] == ' ' || mv->data[i] == '\t' || mv->data[i] == '\r' ||
                                mv->data[i] == '\n'))
        i++;
    if (i == mv->data_len)
        return cJSON_CreateObject();
    cJSON *r = cJSON_ParseWithLength(mv->data, mv->data_len);
    if (!r) {
        json_err_text(mv->data, mv->data_len, err, cap);
        return NULL;
    }
    if (!cJSON_IsObject(r)) {
        snprintf(err, cap, "json: cannot unmarshal %s into Go value of type server.CreateConsumerRequest",
                 json_type_name(r));
        cJSON_Delete(r);
        return NULL;
    }
    return r;
}

/* isEmptyRequest */
static bool empty_request(const msgview *mv)
{
    if (mv->data_len == 0)
        return true;
    if (mv->data_len == 2 && !memcmp(mv->data, "{}", 2))
        return true;
    cJSON *r = cJSON_ParseWithLength(mv->data, mv->data_len);
    bool empty = r && cJSON_IsObject(r) && !r->child;
    cJSON_Delete(r);
    return empty;
}

static void reply_error(js_outbox *ob, const char *reply, const char *type, const jc_err *e)
{
    js_out_json(ob, reply, js_api_error(type, e->jse, e->arg[0] ? e->arg : NULL, NULL));
}

#define T_CREATE JS_TYPE("consumer_create_response")
#define T_INFO JS_TYPE("consumer_info_response")
#define T_DELETE JS_TYPE("consumer_delete_response")
#define T_NAMES JS_TYPE("consumer_names_response")
#define T_LIST JS_TYPE("consumer_list_response")

enum { RT_NEW = 0, RT_LEGACY_EPHEMERAL, RT_LEGACY_DURABLE };

static void api_create(js *j, const char **t, const size_t *tl, int n, const msgview *mv,
                       const char *reply, js_outbox *ob)
{
    jc_err e = {.jse = -1};
    char err[600];
    cJSON *req = parse_req(mv, err, sizeof err);
    if (!req) {
        set_err(&e, JSE_InvalidJSONErr, "%s", err);
        reply_error(ob, reply, T_CREATE, &e);
        return;
    }
    char *stream = NULL, *cname = NULL, *filtered = NULL;
    jc_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    int rt, action = ACT_CREATE_OR_UPDATE;
    bool pedantic = false;
    /* the request */
    const cJSON *sn = cJSON_GetObjectItemCaseSensitive(req, "stream_name");
    if (sn && !cJSON_IsNull(sn) && !cJSON_IsString(sn)) {
        type_err(&e, "CreateConsumerRequest", "stream_name", sn, "string");
        goto fail;
    }
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(req, "action");
    if (act && !cJSON_IsNull(act)) {
        if (cJSON_IsString(act) && !strcmp(act->valuestring, ""))
            action = ACT_CREATE_OR_UPDATE;
        else if (cJSON_IsString(act) && !strcmp(act->valuestring, "create"))
            action = ACT_CREATE;
        else if (cJSON_IsString(act) && !strcmp(act->valuestring, "update"))
            action = ACT_UPDATE;
        else {
            char *raw = cJSON_PrintUnformatted(act);
            set_err(&e, JSE_InvalidJSONErr, "unknown consumer action: %s", raw ? raw : "");
            cJSON_free(raw);
            goto fail;
        }
    }
    if (get_bool(req, "CreateConsumerRequest", "pedantic", &pedantic, &e) ||
        cfg_parse(cJSON_GetObjectItemCaseSensitive(req, "config"), &cfg, &e))
        goto fail;
    const char *req_stream = sn && cJSON_IsString(sn) ? sn->valuestring : "";
    /* the subject */
    if (n == 3) {
        rt = RT_LEGACY_EPHEMERAL;
        stream = xstrndup(t[2], tl[2]);
    } else if (tok_is(t[1], tl[1], "DURABLE")) {
        rt = RT_LEGACY_DURABLE;
        if (n != 5) {
            set_err(&e, JSE_ConsumerDurableNameNotInSubjectErr, NULL);
            goto fail;
        }
        stream = xstrndup(t[3], tl[3]);
        cname = xstrndup(t[4], tl[4]);
    } else {
        rt = RT_NEW;
        stream = xstrndup(t[2], tl[2]);
        cname = xstrndup(t[3], tl[3]);
        if (n > 4)
            filtered = xstrndup(t[4], (size_t)(mv->subject + mv->subject_len - t[4]));
    }
    if (!stream || (n > 3 && !cname)) {
        set_err(&e, JSE_ConsumerCreateErrF, "out of memory");
        goto fail;
    }
    if (strcmp(stream, req_stream)) {
        set_err(&e, JSE_StreamMismatchErr, NULL);
        goto fail;
    }
    if (cname && (strchr(cname, '/') || strchr(cname, '\\'))) {
        set_err(&e, JSE_ConsumerNameContainsPathSeparatorsErr, NULL);
        goto fail;
    }
    if (rt == RT_LEGACY_DURABLE) {
        if (!str_set(cfg.durable)) {
            set_err(&e, JSE_ConsumerDurableNameNotSetErr, NULL);
            goto fail;
        }
        if (strcmp(cname, cfg.durable)) {
            set_err(&e, JSE_ConsumerDurableNameNotMatchSubjectErr, NULL);
            goto fail;
        }
    }
    if (rt == RT_NEW) {
        if (str_set(cfg.durable) && strcmp(cname, cfg.durable)) {
            set_err(&e, JSE_ConsumerDurableNameNotMatchSubjectErr, NULL);
            goto fail;
        }
        free(cfg.name);
        cfg.name = xstrdup(cname);
    }
    if (rt == RT_LEGACY_EPHEMERAL && str_set(cfg.durable)) {
        set_err(&e, JSE_ConsumerEphemeralWithDurableNameErr, NULL);
        goto fail;
    }
    if (filtered && cfg.nfilter_subjects) {
        set_err(&e, JSE_ConsumerMultipleFiltersNotAllowed, NULL);
        goto fail;
    }
    if (filtered && !str_eq(cfg.filter_subject, filtered)) {
        set_err(&e, JSE_ConsumerCreateFilterSubjectMismatchErr, NULL);
        goto fail;
    }
    if (cfg.num_replicas > 1) {
        set_err(&e, JSE_StreamReplicasNotSupportedErr, NULL);
        goto fail;
    }
    jstream *s = stream_lookup_n(j, stream, strlen(stream));
    if (!s) {
        set_err(&e, JSE_StreamNotFoundErr, NULL);
        goto fail;
    }
    const char *lookup = cname ? cname : cfg.name;
    jconsumer *eo = lookup ? c_lookup(s, lookup, strlen(lookup)) : NULL;
    if (eo) {
        /* PauseUntil is not updatable here */
        cfg.has_pause = eo->cfg.has_pause;
        cfg.pause_until = eo->cfg.pause_until;
    }
    if (meta_set_static(&cfg) != 0) {
        set_err(&e, JSE_ConsumerCreateErrF, "out of memory");
        goto fail;
    }
    bool created;
    jconsumer *o = c_add(s, &cfg, action, pedantic, &e, ob, &created);
    if (!o)
        goto fail;
    js_out_json(ob, reply, c_info(o, T_CREATE, ob));
    c_signal(o);
    cfg_free(&cfg);
    cJSON_Delete(req);
    free(stream);
    free(cname);
    free(filtered);
    return;
fail:
    reply_error(ob, reply, T_CREATE, &e);
    cfg_free(&cfg);
    cJSON_Delete(req);
    free(stream);
    free(cname);
    free(filtered);
}

static int cmp_consumer_name(const void *a, const void *b)
{
    return strcmp((*(jconsumer *const *)a)->name, (*(jconsumer *const *)b)->name);
}

static void api_names_list(js *j, const char **t, const size_t *tl, const msgview *mv,
                           const char *reply, js_outbox *ob, bool list)
{
    const char *type = list ? T_LIST : T_NAMES;
    int64_t offset = 0;
    jc_err e = {.jse = -1};
    /* isJSONObjectOrArray */
    size_t i = 0;
    while (i < mv->data_len && (mv->data[i] == ' ' || mv->data[i] == '\t' || mv->data[i] == '\r' ||
                                mv->data[i] == '\n'))
        i++;
    if (i < mv->data_len && (mv->data[i] == '{' || mv->data[i] == '[')) {
        cJSON *r = cJSON_ParseWithLength(mv->data, mv->data_len);
        if (!r) {
            char err[200];
            json_err_text(mv->data, mv->data_len, err, sizeof err);
            set_err(&e, JSE_InvalidJSONErr, "%s", err);
        } else if (!cJSON_IsObject(r)) {
            set_err(&e, JSE_InvalidJSONErr,
                    "json: cannot unmarshal array into Go value of type server.JSApiConsumersRequest");
        } else {
            get_int(r, "JSApiConsumersRequest", "offset", &offset, "int", &e);
        }
        cJSON_Delete(r);
    }
    jstream *s = NULL;
    if (e.jse < 0 && !(s = stream_lookup_n(j, t[2], tl[2])))
        set_err(&e, JSE_StreamNotFoundErr, NULL);
    cJSON *resp = cJSON_CreateObject();
    cJSON_AddStringToObject(resp, "type", type);
    if (e.jse >= 0) {
        js_add_error(resp, e.jse, e.arg[0] ? e.arg : NULL, NULL);
        js_add_i64(resp, "total", 0);
        js_add_i64(resp, "offset", 0);
        js_add_i64(resp, "limit", 0);
        cJSON_AddArrayToObject(resp, "consumers");
        js_out_json(ob, reply, resp);
        return;
    }
    if (offset < 0)
        offset = 0;
    size_t total = s->nconsumers, k = 0;
    jconsumer **arr = total ? malloc(total * sizeof *arr) : NULL;
    for (jconsumer *o = s->consumers; o && arr; o = o->next)
        if (!o->cfg.direct) /* getPublicConsumers */
            arr[k++] = o;
    total = k;
    if (total > 1)
        qsort(arr, total, sizeof *arr, cmp_consumer_name);
    if ((size_t)offset > total)
        offset = (int64_t)total;
    js_add_u64(resp, "total", total);
    js_add_i64(resp, "offset", offset);
    js_add_i64(resp, "limit", list ? LIST_LIMIT : NAMES_LIMIT);
    cJSON *a = cJSON_AddArrayToObject(resp, "consumers");
    size_t limit = list ? LIST_LIMIT : NAMES_LIMIT, cnt = 0;
    for (size_t x = (size_t)offset; x < total && cnt < limit; x++, cnt++) {
        if (list) {
            cJSON *info = cJSON_CreateObject();
            c_info_into(arr[x], info, ob);
            cJSON_AddItemToArray(a, info);
        } else {
            cJSON_AddItemToArray(a, cJSON_CreateString(arr[x]->name));
        }
    }
    free(arr);
    js_out_json(ob, reply, resp);
}

static void api_info_delete(js *j, const char **t, const size_t *tl, const msgview *mv,
                            const char *reply, js_outbox *ob, bool del)
{
    const char *type = del ? T_DELETE : T_INFO;
    jc_err e = {.jse = -1};
    if (!empty_request(mv)) {
        set_err(&e, JSE_NotEmptyRequestErr, NULL);
        reply_error(ob, reply, type, &e);
        return;
    }
    jstream *s = stream_lookup_n(j, t[2], tl[2]);
    if (!s) {
        set_err(&e, JSE_StreamNotFoundErr, NULL);
        reply_error(ob, reply, type, &e);
        return;
    }
    jconsumer *o = c_lookup(s, t[3], tl[3]);
    if (!o) {
        set_err(&e, JSE_ConsumerNotFoundErr, NULL);
        reply_error(ob, reply, type, &e);
        return;
    }
    if (!del) {
        js_out_json(ob, reply, c_info(o, T_INFO, ob));
        return;
    }
    c_delete(o, ob, false);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "type", T_DELETE);
    cJSON_AddBoolToObject(r, "success", true);
    js_out_json(ob, reply, r);
}

#define T_PAUSE JS_TYPE("consumer_pause_response")

/* The pause advisory (sendPauseAdvisoryLocked). */
static void pause_advisory(jconsumer *o, js_outbox *ob)
{
    cJSON *e = advisory_base(o, "io.nats.jetstream.advisory.v1.consumer_pause");
    bool paused = c_paused(o);
    cJSON_AddBoolToObject(e, "paused", paused);
    if (o->cfg.has_pause && o->cfg.pause_until) {
        char tb[64];
        cJSON_AddStringToObject(e, "pause_until", js_time_str(tb, sizeof tb, o->cfg.pause_until));
    }
    if (o->j->domain)
        cJSON_AddStringToObject(e, "domain", o->j->domain);
    advisory(o, ob, "PAUSE", e);
}

/* $JS.API.CONSUMER.PAUSE.<stream>.<consumer> {"pause_until": time}: pause until then, or
 * resume (no time, or the zero time), as nats-server's jsConsumerPauseRequest. */
static void api_pause(js *j, const char **t, const size_t *tl, const msgview *mv,
                      const char *reply, js_outbox *ob)
{
    jc_err e = {.jse = -1};
    bool has = false;
    int64_t until = 0;
    if (mv->data_len) {
        char err[600];
        cJSON *req = parse_req(mv, err, sizeof err);
        if (!req) {
            set_err(&e, JSE_InvalidJSONErr, "%s", err);
            reply_error(ob, reply, T_PAUSE, &e);
            return;
        }
        const cJSON *pu = cJSON_GetObjectItemCaseSensitive(req, "pause_until");
        int rc = 0;
        /* Go's zero time.Time, "0001-01-01T00:00:00Z": no pause */
        if (!(cJSON_IsString(pu) && !strncmp(pu->valuestring, "0001-01-01T00:00:00", 19)))
            rc = get_time(req, "JSApiConsumerPauseRequest", "pause_until", &has, &until, &e);
        cJSON_Delete(req);
        if (rc) {
            reply_error(ob, reply, T_PAUSE, &e);
            return;
        }
    }
    jstream *s = stream_lookup_n(j, t[2], tl[2]);
    if (!s) {
        set_err(&e, JSE_StreamNotFoundErr, NULL);
        reply_error(ob, reply, T_PAUSE, &e);
        return;
    }
    jconsumer *o = c_lookup(s, t[3], tl[3]);
    if (!o) {
        set_err(&e, JSE_ConsumerNotFoundErr, NULL);
        reply_error(ob, reply, T_PAUSE, &e);
        return;
    }
    o->cfg.has_pause = has;
    o->cfg.pause_until = has ? until : 0;
    meta_set_static(&o->cfg);
    c_write_meta(o, false);
    pause_advisory(o, ob);
    if (!c_paused(o))
        c_run(o, ob); /* resumed: deliver what waited */
    c_signal(o);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "type", T_PAUSE);
    bool paused = c_paused(o);
    cJSON_AddBoolToObject(r, "paused", paused);
    char tb[64];
    cJSON_AddStringToObject(r, "pause_until",
                            has ? js_time_str(tb, sizeof tb, until) : "0001-01-01T00:00:00Z");
    if (paused)
        js_add_i64(r, "pause_remaining", until - js_now_wall());
    js_out_json(ob, reply, r);
}

#define T_UNPIN JS_TYPE("consumer_unpin_response")

/* $JS.API.CONSUMER.UNPIN.<stream>.<consumer> {"group": name}: drop the pin, as
 * nats-server's jsConsumerUnpinRequest. */
static void api_unpin(js *j, const char **t, const size_t *tl, const msgview *mv,
                      const char *reply, js_outbox *ob)
{
    jc_err e = {.jse = -1};
    char *group = NULL;
    if (mv->data_len) {
        char err[600];
        cJSON *req = parse_req(mv, err, sizeof err);
        if (!req) {
            set_err(&e, JSE_InvalidJSONErr, "%s", err);
            reply_error(ob, reply, T_UNPIN, &e);
            return;
        }
        int rc = get_str(req, "JSApiConsumerUnpinRequest", "group", &group, &e);
        cJSON_Delete(req);
        if (rc) {
            reply_error(ob, reply, T_UNPIN, &e);
            return;
        }
    } else {
        set_err(&e, JSE_InvalidJSONErr, "unexpected end of JSON input");
        reply_error(ob, reply, T_UNPIN, &e);
        return;
    }
    jstream *s = NULL;
    jconsumer *o = NULL;
    if (!group || !*group) {
        set_err(&e, JSE_InvalidJSONErr, "consumer group not specified");
    } else {
        if (!group_name_ok(group))
            set_err(&e, JSE_ConsumerInvalidGroupNameErr, NULL);
        else if (!(s = stream_lookup_n(j, t[2], tl[2])))
            set_err(&e, JSE_StreamNotFoundErr, NULL);
        else if (!(o = c_lookup(s, t[3], tl[3])))
            set_err(&e, JSE_ConsumerNotFoundErr, NULL);
        else if (!has_group(o, group))
            set_err(&e, JSE_ConsumerInvalidPriorityGroupErr, NULL);
    }
    if (e.jse >= 0) {
        free(group);
        reply_error(ob, reply, T_UNPIN, &e);
        return;
    }
    pin_clear(o);
    pin_advisory(o, ob, group, "admin");
    free(group);
    c_signal(o);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "type", T_UNPIN);
    js_out_json(ob, reply, r);
}

#define T_RESET JS_TYPE("consumer_reset_response")

/* $JS.API.CONSUMER.RESET.<stream>.<consumer> {"seq": n} (nats-server 2.14, ADR-60): move
 * the consumer to a new starting sequence (no body or seq 0: back to its ack floor),
 * forgetting pending acks and redeliveries, as processResetReq / resetStartingSeq do on
 * a single server. Like MSG.NEXT, nobody answers for a consumer that does not exist. */
static void api_reset(jconsumer *o, const msgview *mv, const char *reply, js_outbox *ob)
{
    if (!reply || !*reply)
        return;
    jc_err e = {.jse = -1};
    uint64_t seq = 0;
    if (mv->data_len) {
        char err[600];
        cJSON *req = parse_req(mv, err, sizeof err);
        if (!req) {
            set_err(&e, JSE_InvalidJSONErr, "%s", err);
            reply_error(ob, reply, T_RESET, &e);
            return;
        }
        int rc = get_uint(req, "JSApiConsumerResetRequest", "seq", &seq, &e);
        cJSON_Delete(req);
        if (rc) {
            reply_error(ob, reply, T_RESET, &e);
            return;
        }
    }
    const jc_cfg *c = &o->cfg;
    if (seq == 0) {
        seq = o->asflr + 1;
    } else if (c->deliver_policy == DP_ALL) {
        /* always allowed */
    } else if (c->deliver_policy == DP_BY_START_SEQ) {
        if (seq < c->opt_start_seq)
            set_err(&e, JSE_ConsumerInvalidResetErr, "below start seq");
    } else if (c->deliver_policy == DP_BY_START_TIME) {
        if (seq < seq_from_time(o->s->st, 0, c->opt_start_time))
            set_err(&e, JSE_ConsumerInvalidResetErr, "below start time");
    } else {
        set_err(&e, JSE_ConsumerInvalidResetErr, "not allowed");
    }
    if (e.jse >= 0) {
        reply_error(ob, reply, T_RESET, &e);
        return;
    }
    /* resetLocalStartingSeq */
    uint64_t old_floor = o->asflr;
    map_clear(&o->pending);
    map_clear(&o->rdc);
    rdq_clear(o);
    o->sseq = seq;
    o->dseq = 1;
    o->adflr = 0;
    o->asflr = seq - 1;
    o->ldt = o->lat = 0;
    /* the store: Reset(seq - 1) */
    o->sd_c = o->sa_c = 0;
    o->sd_s = o->sa_s = seq - 1;
    mark_dirty(o);
    /* interest streams: what this consumer now counts as acked may go */
    if (o->s->cfg.retention == JS_RET_INTEREST && seq - 1 > old_floor) {
        store_state ss;
        store_get_state(o->s->st, &ss);
        uint64_t q = old_floor + 1 > ss.first_seq ? old_floor + 1 : ss.first_seq;
        store_msg *m = NULL;
        while (q < seq && q <= ss.last_seq && store_load_next(o->s->st, NULL, q, &m) == 0) {
            uint64_t at = m->seq;
            bool gone = at < seq && no_interest(o->s, at, NULL, m);
            store_msg_release(m);
            if (at >= seq)
                break;
            if (gone)
                store_remove(o->s->st, at, false);
            q = at + 1;
        }
    }
    c_calc_pending(o);
    c_signal(o);
    cJSON *r = c_info(o, T_RESET, ob);
    js_add_u64(r, "reset_seq", seq);
    js_out_json(ob, reply, r);
}

void js_api_consumer(js *j, const char **t, const size_t *tl, int n, const msgview *mv,
                     js_outbox *ob)
{
    if (n < 3)
        return;
    char *reply = mv->reply && mv->reply_len ? xstrndup(mv->reply, mv->reply_len) : NULL;
    pthread_mutex_lock(&j->mu);
    if (tok_is(t[1], tl[1], "CREATE") || (n == 5 && tok_is(t[1], tl[1], "DURABLE") &&
                                          tok_is(t[2], tl[2], "CREATE"))) {
        api_create(j, t, tl, n, mv, reply, ob);
    } else if (n == 3 && tok_is(t[1], tl[1], "NAMES")) {
        api_names_list(j, t, tl, mv, reply, ob, false);
    } else if (n == 3 && tok_is(t[1], tl[1], "LIST")) {
        api_names_list(j, t, tl, mv, reply, ob, true);
    } else if (n == 4 && tok_is(t[1], tl[1], "INFO")) {
        api_info_delete(j, t, tl, mv, reply, ob, false);
    } else if (n == 4 && tok_is(t[1], tl[1], "DELETE")) {
        api_info_delete(j, t, tl, mv, reply, ob, true);
    } else if (n == 4 && tok_is(t[1], tl[1], "PAUSE")) {
        api_pause(j, t, tl, mv, reply, ob);
    } else if (n == 4 && tok_is(t[1], tl[1], "UNPIN")) {
        api_unpin(j, t, tl, mv, reply, ob);
    } else if (n == 4 && tok_is(t[1], tl[1], "RESET")) {
        jstream *s = stream_lookup_n(j, t[2], tl[2]);
        jconsumer *o = s ? c_lookup(s, t[3], tl[3]) : NULL;
        if (o)
            api_reset(o, mv, reply, ob);
    } else if (n == 5 && tok_is(t[1], tl[1], "MSG") && tok_is(t[2], tl[2], "NEXT")) {
        /* no such consumer: nobody answers (in nats-server the account's $JS.API.>
         * import is interest, so the requester times out rather than getting a 503) */
        jstream *s = stream_lookup_n(j, t[3], tl[3]);
        jconsumer *o = s ? c_lookup(s, t[4], tl[4]) : NULL;
        if (o)
            process_next_request(o, ob, reply, mv->data, mv->data_len);
    } else {
        no_responders(ob, reply, mv);
    }
    pthread_mutex_unlock(&j->mu);
    free(reply);
}

bool js_consumer_exists(js *j, const char *stream, const char *consumer)
{
    if (!stream || !consumer)
        return false;
    pthread_mutex_lock(&j->mu);
    jstream *s = stream_lookup_n(j, stream, strlen(stream));
    bool found = s && c_lookup(s, consumer, strlen(consumer)) != NULL;
    pthread_mutex_unlock(&j->mu);
    return found;
}

/* parseAckReplyNum: -1 (as unsigned: huge) when not a number. */
static uint64_t ack_num(const char *s, size_t n)
{
    if (!n)
        return UINT64_MAX;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return UINT64_MAX;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    return v;
}

static bool has_prefix(const char *d, size_t n, const char *p)
{
    size_t pl = strlen(p);
    return n >= pl && !memcmp(d, p, pl);
}

static bool equals(const char *d, size_t n, const char *p)
{
    return strlen(p) == n && !memcmp(d, p, n);
}

void js_consumer_ack(js *j, const msgview *mv, js_outbox *ob)
{
    const char *t[16];
    size_t tl[16];
    int n = js_subj_tokens(mv->subject, mv->subject_len, t, tl, 16);
    char *reply = mv->reply && mv->reply_len ? xstrndup(mv->reply, mv->reply_len) : NULL;
    int off;
    if (n == 9)
        off = 2;                       /* $JS.ACK.<stream>.<consumer>.<dc>.<sseq>.<dseq>.<ts>.<pending> */
    else if (n >= 11 && n <= 16)
        off = 4;                       /* $JS.ACK.<domain>.<hash>.<stream>.<consumer>.... */
    else
        off = -1;
    pthread_mutex_lock(&j->mu);
    jstream *s = off > 0 ? stream_lookup_n(j, t[off], tl[off]) : NULL;
    jconsumer *o = s ? c_lookup(s, t[off + 1], tl[off + 1]) : NULL;
    if (!o || o->cfg.ack_policy == AP_NONE) {
        /* nats-server has no ack subscription for it */
        no_responders(ob, reply, mv);
        goto out;
    }
    bool at_limit = o->cfg.max_ack_pending > 0 && (int64_t)o->pending.n >= o->cfg.max_ack_pending;
    uint64_t dc = ack_num(t[off + 2], tl[off + 2]);
    uint64_t sseq = ack_num(t[off + 3], tl[off + 3]);
    uint64_t dseq = ack_num(t[off + 4], tl[off + 4]);
    const char *msg = mv->data;
    size_t len = mv->data_len;
    bool skip_reply = sseq == 0;
    if (len == 0 || equals(msg, len, "+ACK") || equals(msg, len, "+OK")) {
        if (!process_ack_msg(o, sseq, dseq))
            skip_reply = true;
    } else if (has_prefix(msg, len, "+NXT")) {
        process_ack_msg(o, sseq, dseq);
        process_next_request(o, ob, reply, msg + 4, len - 4);
        skip_reply = true;
    } else if (has_prefix(msg, len, "-NAK")) {
        process_nak(o, ob, sseq, dseq, dc, msg, len);
        c_signal(o); /* a redelivery, or a new timer */
    } else if (equals(msg, len, "+WPI")) {
        progress_update(o, sseq);
    } else if (has_prefix(msg, len, "+TERM")) {
        const char *r = msg + 5;
        size_t rl = len - 5;
        while (rl && (*r == ' ' || *r == '\t' || *r == '\r' || *r == '\n')) {
            r++;
            rl--;
        }
        while (rl && (r[rl - 1] == ' ' || r[rl - 1] == '\t' || r[rl - 1] == '\r' || r[rl - 1] == '\n'))
            rl--;
        if (!process_term(o, ob, sseq, dseq, dc, r, rl))
            skip_reply = true;
    }
    if (reply && !skip_reply)
        js_out_msg(ob, NULL, reply, strlen(reply), NULL, NULL, 0, NULL, 0);
    if (at_limit && (int64_t)o->pending.n < o->cfg.max_ack_pending)
        c_signal(o); /* max_ack_pending no longer stalls it */
out:
    pthread_mutex_unlock(&j->mu);
    free(reply);
}

void js_consumer_fc(js *j, const msgview *mv, js_outbox *ob)
{
    const char *t[8];
    size_t tl[8];
    int n = js_subj_tokens(mv->subject, mv->subject_len, t, tl, 8);
    if (n != 5)
        return;
    pthread_mutex_lock(&j->mu);
    jstream *s = stream_lookup_n(j, t[2], tl[2]);
    jconsumer *o = s ? c_lookup(s, t[3], tl[3]) : NULL;
    if (o && o->fcid && strlen(o->fcid) == mv->subject_len &&
        !memcmp(o->fcid, mv->subject, mv->subject_len)) {
        if (o->maxpb < o->pblimit) {
            o->maxpb *= 2;
            if (o->maxpb > o->pblimit)
                o->maxpb = o->pblimit;
        }
        o->pbytes -= o->fcsz;
        if (o->pbytes < 0)
            o->pbytes = 0;
        free(o->fcid);
        o->fcid = NULL;
        o->fcsz = 0;
        c_signal(o);
    }
    pthread_mutex_unlock(&j->mu);
}
