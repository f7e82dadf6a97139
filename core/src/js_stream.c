/* js_stream: JetStream streams, as nats-server 2.11 (server/stream.go and the stream half
 * of server/jetstream_api.go; facts, not code). See js_stream.h and js.h for the threads
 * and locks. */
#define _GNU_SOURCE
#include "js_stream.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "js_consumer.h"

#define MAX_NAME_LEN 255
#define MAX_DESC_LEN 4096
#define MAX_HDR_LEN 65536
#define DEFAULT_DUP_WINDOW_NS (120ll * 1000000000ll)
#define NAMES_LIMIT 1024
#define LIST_LIMIT 256

/* ------------------------------------------------------------------ private state */

typedef struct dd_node {
    struct dd_node *hnext, *qnext;
    uint64_t seq;
    int64_t ts;
    char id[];
} dd_node;

struct jstream_priv {
    sub **subs;
    size_t nsubs;
    /* dedupe (mu): a hash on the id and a FIFO in arrival (= time) order */
    dd_node **dd_tab;
    size_t dd_cap, dd_n;
    dd_node *dd_head, *dd_tail;
    char *last_msg_id;        /* (mu) Nats-Expected-Last-Msg-Id */
    store_recovery rec;
    bool rec_set;
};

void js_stream_retain(jstream *s) { atomic_fetch_add(&s->refs, 1); }

static void cfg_free(js_stream_cfg *c);

static void dd_clear(struct jstream_priv *p)
{
    dd_node *n = p->dd_head;
    while (n) {
        dd_node *x = n->qnext;
        free(n);
        n = x;
    }
    free(p->dd_tab);
    p->dd_tab = NULL;
    p->dd_cap = p->dd_n = 0;
    p->dd_head = p->dd_tail = NULL;
}

void js_stream_release(jstream *s)
{
    if (atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    if (s->priv) {
        dd_clear(s->priv);
        free(s->priv->subs);
        free(s->priv->last_msg_id);
        free(s->priv);
    }
    cfg_free(&s->cfg);
    free(s->name);
    free(s->dir);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

jstream *js_stream_lookup(js *j, const char *name)
{
    for (jstream *s = j->streams; s; s = s->next)
        if (!s->deleted && !strcmp(s->name, name))
            return s;
    return NULL;
}

/* ------------------------------------------------------------------ dedupe */

static uint64_t hash_str(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static dd_node *dd_find(struct jstream_priv *p, const char *id, size_t n)
{
    if (!p->dd_cap)
        return NULL;
    for (dd_node *x = p->dd_tab[hash_str(id, n) & (p->dd_cap - 1)]; x; x = x->hnext)
        if (strlen(x->id) == n && !memcmp(x->id, id, n))
            return x;
    return NULL;
}

static void dd_unlink_hash(struct jstream_priv *p, dd_node *d)
{
    dd_node **pp = &p->dd_tab[hash_str(d->id, strlen(d->id)) & (p->dd_cap - 1)];
    while (*pp && *pp != d)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = d->hnext;
    p->dd_n--;
}

static void dd_expire(struct jstream_priv *p, int64_t now, int64_t window)
{
    while (p->dd_head && (window <= 0 || p->dd_head->ts <= now - window)) {
        dd_node *d = p->dd_head;
        p->dd_head = d->qnext;
        if (!p->dd_head)
            p->dd_tail = NULL;
        dd_unlink_hash(p, d);
        free(d);
    }
}

static void dd_add(struct jstream_priv *p, const char *id, size_t n, uint64_t seq, int64_t ts)
{
    if (p->dd_n + 1 > p->dd_cap / 2) {
        size_t ncap = p->dd_cap ? p->dd_cap * 2 : 64;
        dd_node **nt = calloc(ncap, sizeof *nt);
        if (!nt)
            return;
        for (size_t i = 0; i < p->dd_cap; i++) {
            dd_node *x = p->dd_tab[i];
            while (x) {
                dd_node *nx = x->hnext;
                size_t b = hash_str(x->id, strlen(x->id)) & (ncap - 1);
                x->hnext = nt[b];
                nt[b] = x;
                x = nx;
            }
        }
        free(p->dd_tab);
        p->dd_tab = nt;
        p->dd_cap = ncap;
    }
    dd_node *d = malloc(sizeof *d + n + 1);
    if (!d)
        return;
    memcpy(d->id, id, n);
    d->id[n] = 0;
    d->seq = seq;
    d->ts = ts;
    d->qnext = NULL;
    size_t b = hash_str(id, n) & (p->dd_cap - 1);
    d->hnext = p->dd_tab[b];
    p->dd_tab[b] = d;
    p->dd_n++;
    if (p->dd_tail)
        p->dd_tail->qnext = d;
    else
        p->dd_head = d;
    p->dd_tail = d;
}

/* ------------------------------------------------------------------ config */

static void src_free(js_stream_source *x)
{
    if (!x)
        return;
    free(x->name);
    free(x->filter_subject);
    for (size_t i = 0; i < x->ntransforms; i++) {
        free(x->transforms[i].src);
        free(x->transforms[i].dest);
    }
    free(x->transforms);
    free(x->external_api);
    free(x->external_deliver);
}

static void cfg_free(js_stream_cfg *c)
{
    free(c->name);
    free(c->description);
    for (size_t i = 0; i < c->nsubjects; i++)
        free(c->subjects[i]);
    free(c->subjects);
    if (c->subject_transform) {
        free(c->subject_transform->src);
        free(c->subject_transform->dest);
        free(c->subject_transform);
    }
    if (c->republish) {
        free(c->republish->src);
        free(c->republish->dest);
        free(c->republish);
    }
    if (c->mirror) {
        src_free(c->mirror);
        free(c->mirror);
    }
    for (size_t i = 0; i < c->nsources; i++)
        src_free(&c->sources[i]);
    free(c->sources);
    free(c->compression);
    cJSON_Delete(c->placement);
    cJSON_Delete(c->metadata);
    memset(c, 0, sizeof *c);
}

/* A config error: JSE id and the {err} text. */
typedef struct cfg_err {
    int jse;
    char text[256];
} cfg_err;

static int bad(cfg_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(cfg_err *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->text, sizeof e->text, fmt, ap);
    va_end(ap);
    e->jse = JSE_StreamInvalidConfigF;
    return -1;
}

/* A value Go's JSON decoding refuses (an unknown enum string): 10025 invalid JSON. */
static int bad_json(cfg_err *e)
{
    e->jse = JSE_InvalidJSONErr;
    e->text[0] = 0;
    return -1;
}

static char *dupn(const char *s) { return s ? strdup(s) : NULL; }

static int parse_source(const cJSON *o, js_stream_source *x, cfg_err *e)
{
    bool b = false;
    memset(x, 0, sizeof *x);
    if (!cJSON_IsObject(o))
        return bad(e, "invalid source");
    x->name = dupn(js_get_str(o, "name", &b));
    js_get_u64(o, "opt_start_seq", &x->opt_start_seq, &b);
    const char *t = js_get_str(o, "opt_start_time", &b);
    if (t && js_time_parse(t, &x->opt_start_time_ns) != 0)
        b = true;
    x->filter_subject = dupn(js_get_str(o, "filter_subject", &b));
    const cJSON *ext = cJSON_GetObjectItemCaseSensitive(o, "external");
    if (cJSON_IsObject(ext)) {
        x->external_api = dupn(js_get_str(ext, "api", &b));
        x->external_deliver = dupn(js_get_str(ext, "deliver", &b));
    }
    if (b)
        return bad(e, "invalid source");
    return 0;
}

static int parse_dur(const cJSON *o, const char *k, int64_t *out, bool *bad_)
{
    int64_t v = 0;
    if (js_get_i64(o, k, &v, bad_))
        *out = v;
    return 0;
}

/* Parse a StreamConfig object (unknown fields ignored). Types only; rules in check. */
static int cfg_parse(const cJSON *o, js_stream_cfg *c, cfg_err *e)
{
    memset(c, 0, sizeof *c);
    bool b = false;
    c->name = dupn(js_get_str(o, "name", &b));
    c->description = dupn(js_get_str(o, "description", &b));
    const cJSON *subs = cJSON_GetObjectItemCaseSensitive(o, "subjects");
    if (subs && !cJSON_IsNull(subs)) {
        if (!cJSON_IsArray(subs))
            return bad(e, "invalid subjects");
        int n = cJSON_GetArraySize(subs);
        c->subjects = calloc((size_t)(n ? n : 1), sizeof(char *));
        const cJSON *it;
        cJSON_ArrayForEach(it, subs)
        {
            if (!cJSON_IsString(it))
                return bad(e, "invalid subject");
            c->subjects[c->nsubjects++] = strdup(it->valuestring);
        }
    }
    const char *ret = js_get_str(o, "retention", &b);
    if (!ret || !strcmp(ret, "limits"))
        c->retention = JS_RET_LIMITS;
    else if (!strcmp(ret, "interest"))
        c->retention = JS_RET_INTEREST;
    else if (!strcmp(ret, "workqueue"))
        c->retention = JS_RET_WORKQUEUE;
    else
        return bad_json(e);
    const char *disc = js_get_str(o, "discard", &b);
    if (!disc || !strcmp(disc, "old"))
        c->discard = STORE_DISCARD_OLD;
    else if (!strcmp(disc, "new"))
        c->discard = STORE_DISCARD_NEW;
    else
        return bad_json(e);
    const char *stor = js_get_str(o, "storage", &b);
    if (!stor || !strcmp(stor, "file"))
        c->storage = STORE_FILE;
    else if (!strcmp(stor, "memory"))
        c->storage = STORE_MEMORY;
    else
        return bad_json(e);
    const char *comp = js_get_str(o, "compression", &b);
    if (comp && *comp && strcmp(comp, "none") && strcmp(comp, "s2"))
        return bad_json(e);
    c->compression = strdup(comp && *comp ? comp : "none");
    int64_t v;
    c->max_consumers = js_get_i64(o, "max_consumers", &v, &b) ? v : 0;
    c->max_msgs = js_get_i64(o, "max_msgs", &v, &b) ? v : 0;
    c->max_bytes = js_get_i64(o, "max_bytes", &v, &b) ? v : 0;
    c->max_msgs_per_subject = js_get_i64(o, "max_msgs_per_subject", &v, &b) ? v : 0;
    c->max_msg_size = js_get_i64(o, "max_msg_size", &v, &b) ? (int32_t)v : 0;
    parse_dur(o, "max_age", &c->max_age_ns, &b);
    parse_dur(o, "duplicate_window", &c->duplicate_window_ns, &b);
    c->num_replicas = js_get_i64(o, "num_replicas", &v, &b) ? (int)v : 0;
    js_get_bool(o, "no_ack", &c->no_ack, &b);
    js_get_bool(o, "discard_new_per_subject", &c->discard_new_per_subject, &b);
    js_get_bool(o, "allow_direct", &c->allow_direct, &b);
    js_get_bool(o, "mirror_direct", &c->mirror_direct, &b);
    js_get_bool(o, "sealed", &c->sealed, &b);
    js_get_bool(o, "deny_delete", &c->deny_delete, &b);
    js_get_bool(o, "deny_purge", &c->deny_purge, &b);
    js_get_bool(o, "allow_rollup_hdrs", &c->allow_rollup_hdrs, &b);
    js_get_bool(o, "allow_msg_ttl", &c->allow_msg_ttl, &b);
    parse_dur(o, "subject_delete_marker_ttl", &c->subject_delete_marker_ttl_ns, &b);
    js_get_u64(o, "first_seq", &c->first_seq, &b);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "subject_transform");
    if (cJSON_IsObject(st)) {
        c->subject_transform = calloc(1, sizeof *c->subject_transform);
        c->subject_transform->src = dupn(js_get_str(st, "src", &b));
        c->subject_transform->dest = dupn(js_get_str(st, "dest", &b));
    }
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(o, "republish");
    if (cJSON_IsObject(rp)) {
        c->republish = calloc(1, sizeof *c->republish);
        c->republish->src = dupn(js_get_str(rp, "src", &b));
        c->republish->dest = dupn(js_get_str(rp, "dest", &b));
        js_get_bool(rp, "headers_only", &c->republish->headers_only, &b);
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "mirror");
    if (m && !cJSON_IsNull(m)) {
        c->mirror = calloc(1, sizeof *c->mirror);
        if (parse_source(m, c->mirror, e))
            return -1;
    }
    const cJSON *srcs = cJSON_GetObjectItemCaseSensitive(o, "sources");
    if (cJSON_IsArray(srcs) && cJSON_GetArraySize(srcs) > 0) {
        int n = cJSON_GetArraySize(srcs);
        c->sources = calloc((size_t)n, sizeof *c->sources);
        const cJSON *it;
        cJSON_ArrayForEach(it, srcs)
        {
            if (parse_source(it, &c->sources[c->nsources++], e))
                return -1;
        }
    }
    const cJSON *pl = cJSON_GetObjectItemCaseSensitive(o, "placement");
    if (cJSON_IsObject(pl))
        c->placement = cJSON_Duplicate(pl, true);
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(o, "metadata");
    if (md && !cJSON_IsNull(md)) {
        if (!cJSON_IsObject(md))
            return bad(e, "invalid metadata");
        c->metadata = cJSON_Duplicate(md, true);
        /* dynamic fields are never stored */
        cJSON_DeleteItemFromObjectCaseSensitive(c->metadata, "_nats.ver");
        cJSON_DeleteItemFromObjectCaseSensitive(c->metadata, "_nats.level");
    }
    const cJSON *cl = cJSON_GetObjectItemCaseSensitive(o, "consumer_limits");
    if (cJSON_IsObject(cl)) {
        parse_dur(cl, "inactive_threshold", &c->consumer_inactive_threshold_ns, &b);
        js_get_i64(cl, "max_ack_pending", &c->consumer_max_ack_pending, &b);
    }
    if (b) {
        e->jse = JSE_InvalidJSONErr;
        e->text[0] = 0;
        return -1;
    }
    return 0;
}

static bool subjects_equal_any(js_stream_cfg *c, const char *s)
{
    for (size_t i = 0; i < c->nsubjects; i++)
        if (!strcmp(c->subjects[i], s))
            return true;
    return false;
}

/* nats-server's checkStreamCfg: validate and fill defaults. self: the stream being
 * updated (excluded from the overlap check), NULL on create. js->mu held. */
static int cfg_check(js *j, js_stream_cfg *c, const jstream *self, cfg_err *e)
{
    if (!c->name || !js_name_valid(c->name))
        return bad(e, "stream name is required and can not contain '.', '*', '>', '\\', '/'");
    if (strlen(c->name) > MAX_NAME_LEN)
        return bad(e, "stream name is too long, maximum allowed is %d", MAX_NAME_LEN);
    if (c->description && strlen(c->description) > MAX_DESC_LEN)
        return bad(e, "stream description is too long, maximum allowed is %d", MAX_DESC_LEN);
    if (c->num_replicas == 0)
        c->num_replicas = 1;
    if (c->num_replicas > 5)
        return bad(e, "maximum replicas is %d", 5);
    if (c->num_replicas > 1) {
        /* a single server: as nats-server in standalone mode */
        e->jse = JSE_StreamReplicasNotSupportedErr;
        e->text[0] = 0;
        return -1;
    }
    if (c->num_replicas < 0) {
        e->jse = JSE_ReplicasCountCannotBeNegative;
        e->text[0] = 0;
        return -1;
    }
    if (c->max_msgs == 0 || c->max_msgs < -1)
        c->max_msgs = -1;
    if (c->max_msgs_per_subject == 0 || c->max_msgs_per_subject < -1)
        c->max_msgs_per_subject = -1;
    if (c->max_bytes == 0 || c->max_bytes < -1)
        c->max_bytes = -1;
    if (c->max_msg_size == 0 || c->max_msg_size < -1)
        c->max_msg_size = -1;
    if (c->max_consumers == 0 || c->max_consumers < -1)
        c->max_consumers = -1;
    if (c->max_age_ns < 0)
        return bad(e, "max age can not be negative");
    if (c->max_age_ns != 0 && c->max_age_ns < 100000000ll)
        return bad(e, "max age needs to be >= 100ms");
    if (c->duplicate_window_ns == 0 && !c->mirror && c->nsources == 0) {
        if (c->max_age_ns != 0 && c->max_age_ns < DEFAULT_DUP_WINDOW_NS)
            c->duplicate_window_ns = c->max_age_ns;
        else
            c->duplicate_window_ns = DEFAULT_DUP_WINDOW_NS;
    }
    if (c->duplicate_window_ns < 0)
        return bad(e, "duplicates window can not be negative");
    if (c->max_age_ns != 0 && c->duplicate_window_ns > c->max_age_ns)
        return bad(e, "duplicates window can not be larger then max age");
    if (c->duplicate_window_ns > 0 && c->duplicate_window_ns < 100000000ll)
        return bad(e, "duplicates window needs to be >= 100ms");
    if (c->deny_purge && c->allow_rollup_hdrs)
        return bad(e, "roll-ups require the purge permission");
    if (c->discard_new_per_subject) {
        if (c->discard != STORE_DISCARD_NEW)
            return bad(e, "discard new per subject requires discard new policy to be set");
        if (c->max_msgs_per_subject <= 0)
            return bad(e, "discard new per subject requires max msgs per subject > 0");
    }
    if (c->subject_delete_marker_ttl_ns > 0) {
        if (c->subject_delete_marker_ttl_ns < 1000000000ll)
            return bad(e, "subject delete marker TTL must be at least 1 second");
        if (!c->allow_msg_ttl)
            return bad(e, "subject delete marker cannot be set if message TTLs are disabled");
        if (!c->allow_rollup_hdrs)
            return bad(e, "subject delete marker cannot be set if roll-ups are disabled");
    } else if (c->subject_delete_marker_ttl_ns < 0) {
        return bad(e, "subject delete marker TTL must not be negative");
    }
    if (c->mirror) {
        if (c->nsubjects) {
            e->jse = JSE_MirrorWithSubjectsErr;
            e->text[0] = 0;
            return -1;
        }
        if (c->nsources) {
            e->jse = JSE_MirrorWithSourcesErr;
            e->text[0] = 0;
            return -1;
        }
        if (c->first_seq > 0) {
            e->jse = JSE_MirrorWithFirstSeqErr;
            e->text[0] = 0;
            return -1;
        }
    }
    if (c->mirror || c->nsources) {
        /* Ember mirrors and sources only come with the leaf-node work */
        return bad(e, "mirrors and sources are not supported by Ember yet");
    }
    if (!c->mirror && c->nsubjects == 0 && c->nsources == 0) {
        c->subjects = calloc(1, sizeof(char *));
        c->subjects[0] = strdup(c->name);
        c->nsubjects = 1;
    }
    for (size_t i = 0; i < c->nsubjects; i++) {
        const char *s = c->subjects[i];
        if (!js_subj_valid(s, true))
            return bad(e, "invalid subject");
        for (size_t k = 0; k < i; k++)
            if (!strcmp(c->subjects[k], s))
                return bad(e, "duplicate subjects detected");
        if (!strcmp(s, ">") && !c->no_ack)
            return bad(e, "capturing all subjects requires no-ack to be true");
        if (!strncmp(s, "$JS.API", 7) || !strncmp(s, "$JSC.", 5) || !strncmp(s, "$NRG.", 5) ||
            !strcmp(s, "$JS.>") || !strcmp(s, "$JS.*.>")) {
            e->jse = JSE_StreamInvalidConfigF;
            snprintf(e->text, sizeof e->text, "subjects that overlap with jetstream api require no-ack to be true");
            if (!c->no_ack)
                return -1;
        }
    }
    /* overlap with other streams */
    for (jstream *o = j->streams; o; o = o->next) {
        if (o == self || o->deleted)
            continue;
        for (size_t a = 0; a < c->nsubjects; a++)
            for (size_t b = 0; b < o->cfg.nsubjects; b++)
                if (js_subj_overlap(c->subjects[a], o->cfg.subjects[b])) {
                    e->jse = JSE_StreamSubjectOverlapErr;
                    e->text[0] = 0;
                    return -1;
                }
    }
    if (c->subject_transform && (!c->subject_transform->src || !c->subject_transform->dest))
        return bad(e, "stream subject transform requires src and dest");
    if (c->republish) {
        if (!c->republish->dest || !js_subj_valid(c->republish->dest, true))
            return bad(e, "stream republish destination subject is invalid");
        if (!c->republish->src)
            c->republish->src = strdup(">");
        for (size_t i = 0; i < c->nsubjects; i++)
            if (js_subj_overlap(c->republish->dest, c->subjects[i]))
                return bad(e, "stream configuration for republish destination forms a cycle");
    }
    if (c->retention == JS_RET_WORKQUEUE && c->max_consumers > 0 && false)
        return -1;
    /* required API level (ADR-44): per-message TTLs need level 1 */
    if (!c->metadata)
        c->metadata = cJSON_CreateObject();
    cJSON_DeleteItemFromObjectCaseSensitive(c->metadata, "_nats.req.level");
    cJSON_AddStringToObject(c->metadata, "_nats.req.level",
                            c->allow_msg_ttl || c->subject_delete_marker_ttl_ns ? "1" : "0");
    return 0;
}

/* The config as nats-server echoes it. dynamic: add _nats.ver / _nats.level. */
static cJSON *cfg_json(const js_stream_cfg *c, bool dynamic)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", c->name);
    if (c->description)
        cJSON_AddStringToObject(o, "description", c->description);
    if (c->nsubjects) {
        cJSON *a = cJSON_AddArrayToObject(o, "subjects");
        for (size_t i = 0; i < c->nsubjects; i++)
            cJSON_AddItemToArray(a, cJSON_CreateString(c->subjects[i]));
    }
    static const char *const ret[] = {"limits", "interest", "workqueue"};
    cJSON_AddStringToObject(o, "retention", ret[c->retention]);
    js_add_i64(o, "max_consumers", c->max_consumers);
    js_add_i64(o, "max_msgs", c->max_msgs);
    js_add_i64(o, "max_bytes", c->max_bytes);
    js_add_i64(o, "max_age", c->max_age_ns);
    js_add_i64(o, "max_msgs_per_subject", c->max_msgs_per_subject);
    js_add_i64(o, "max_msg_size", c->max_msg_size);
    cJSON_AddStringToObject(o, "discard", c->discard == STORE_DISCARD_NEW ? "new" : "old");
    cJSON_AddStringToObject(o, "storage", c->storage == STORE_MEMORY ? "memory" : "file");
    cJSON_AddNumberToObject(o, "num_replicas", c->num_replicas);
    if (c->no_ack)
        cJSON_AddBoolToObject(o, "no_ack", true);
    js_add_i64(o, "duplicate_window", c->duplicate_window_ns);
    if (c->placement)
        cJSON_AddItemToObject(o, "placement", cJSON_Duplicate(c->placement, true));
    if (c->subject_transform) {
        cJSON *t = cJSON_AddObjectToObject(o, "subject_transform");
        cJSON_AddStringToObject(t, "src", c->subject_transform->src);
        cJSON_AddStringToObject(t, "dest", c->subject_transform->dest);
    }
    if (c->republish) {
        cJSON *t = cJSON_AddObjectToObject(o, "republish");
        cJSON_AddStringToObject(t, "src", c->republish->src);
        cJSON_AddStringToObject(t, "dest", c->republish->dest);
        if (c->republish->headers_only)
            cJSON_AddBoolToObject(t, "headers_only", true);
    }
    cJSON_AddStringToObject(o, "compression", c->compression ? c->compression : "none");
    if (c->first_seq)
        js_add_u64(o, "first_seq", c->first_seq);
    cJSON_AddBoolToObject(o, "allow_direct", c->allow_direct);
    cJSON_AddBoolToObject(o, "mirror_direct", c->mirror_direct);
    cJSON_AddBoolToObject(o, "sealed", c->sealed);
    cJSON_AddBoolToObject(o, "deny_delete", c->deny_delete);
    cJSON_AddBoolToObject(o, "deny_purge", c->deny_purge);
    cJSON_AddBoolToObject(o, "allow_rollup_hdrs", c->allow_rollup_hdrs);
    if (c->discard_new_per_subject)
        cJSON_AddBoolToObject(o, "discard_new_per_subject", true);
    if (c->allow_msg_ttl)
        cJSON_AddBoolToObject(o, "allow_msg_ttl", true);
    if (c->subject_delete_marker_ttl_ns)
        js_add_i64(o, "subject_delete_marker_ttl", c->subject_delete_marker_ttl_ns);
    cJSON *cl = cJSON_AddObjectToObject(o, "consumer_limits");
    if (c->consumer_inactive_threshold_ns)
        js_add_i64(cl, "inactive_threshold", c->consumer_inactive_threshold_ns);
    if (c->consumer_max_ack_pending)
        js_add_i64(cl, "max_ack_pending", c->consumer_max_ack_pending);
    cJSON *md = c->metadata ? cJSON_Duplicate(c->metadata, true) : cJSON_CreateObject();
    if (dynamic) {
        cJSON_AddStringToObject(md, "_nats.ver", EMBER_NATS_VERSION);
        cJSON_AddStringToObject(md, "_nats.level", "1");
    }
    if (cJSON_GetArraySize(md) > 0)
        cJSON_AddItemToObject(o, "metadata", md);
    else
        cJSON_Delete(md);
    return o;
}

static bool cfg_equal(const js_stream_cfg *a, const js_stream_cfg *b)
{
    cJSON *x = cfg_json(a, false), *y = cfg_json(b, false);
    bool eq = cJSON_Compare(x, y, true);
    cJSON_Delete(x);
    cJSON_Delete(y);
    return eq;
}

static store_limits limits_of(const js_stream_cfg *c)
{
    store_limits l;
    memset(&l, 0, sizeof l);
    l.max_msgs = c->max_msgs;
    l.max_bytes = c->max_bytes;
    l.max_age_ns = c->max_age_ns;
    l.max_msgs_per_subject = c->max_msgs_per_subject;
    l.max_msg_size = c->max_msg_size;
    l.discard = c->discard;
    l.discard_new_per_subject = c->discard_new_per_subject;
    return l;
}

/* ------------------------------------------------------------------ files */

static int write_file_atomic(const char *dir, const char *name, const char *text)
{
    char tmp[4200], path[4200];
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    size_t n = strlen(text), off = 0;
    while (off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    if (fdatasync(fd) != 0) {
        close(fd);
        return -1;
    }
    close(fd);
    if (rename(tmp, path) != 0)
        return -1;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

static int write_meta(jstream *s)
{
    if (!s->dir)
        return 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "config", cfg_json(&s->cfg, false));
    js_add_i64(o, "created", s->created_ns);
    char *txt = cJSON_Print(o);
    cJSON_Delete(o);
    int rc = txt ? write_file_atomic(s->dir, "meta.json", txt) : -1;
    cJSON_free(txt);
    return rc;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 && n < (64 << 20) ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b)
        b[n] = 0;
    fclose(f);
    return b;
}

static int rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return unlink(path);
    struct dirent *de;
    char p[4200];
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", path, de->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    return rmdir(path);
}

/* ------------------------------------------------------------------ publish */

typedef struct wire_ack {
    js *j;
    char *reply;
} wire_ack;

static void puback_json(const js_puback *a, const char *reply, js_outbox *ob)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "stream", a->stream);
    if (a->jse >= 0) {
        const js_err_info *e = js_err(a->jse);
        cJSON *eo = cJSON_AddObjectToObject(r, "error");
        cJSON_AddNumberToObject(eo, "code", e->code);
        cJSON_AddNumberToObject(eo, "err_code", e->err_code);
        cJSON_AddStringToObject(eo, "description", a->err_desc ? a->err_desc : e->desc);
        js_add_u64(r, "seq", 0);
    } else {
        if (a->domain)
            cJSON_AddStringToObject(r, "domain", a->domain);
        js_add_u64(r, "seq", a->seq);
        if (a->duplicate)
            cJSON_AddBoolToObject(r, "duplicate", true);
    }
    js_out_json(ob, reply, r);
}

static void on_wire_ack(void *ud, const js_puback *a)
{
    wire_ack *w = ud;
    js_outbox ob;
    js_outbox_init(&ob);
    puback_json(a, w->reply, &ob);
    js_outbox_send(w->j, &ob);
    free(w->reply);
    free(w);
}

/* The result of a publish that is known now (errors, duplicates). */
static void ack_now(jstream *s, js_puback_fn fn, void *ud, uint64_t seq, bool dup, int jse,
                    const char *desc)
{
    if (!fn)
        return;
    js_puback a = {s->name, s->j->domain, seq, dup, jse, desc};
    fn(ud, &a);
}

typedef struct durable_ack {
    jstream *s;
    js_puback_fn fn;
    void *ud;
} durable_ack;

static void on_durable(void *ud, uint64_t seq, int status)
{
    durable_ack *d = ud;
    js_puback a = {d->s->name, d->s->j->domain, seq, false, -1, NULL};
    char desc[128];
    if (status != 0) {
        a.jse = JSE_StreamStoreFailedF;
        a.err_desc = js_err_text(desc, sizeof desc, JSE_StreamStoreFailedF,
                                 status == EMBER_EIO ? "I/O error" : "store closed", NULL);
        a.seq = 0;
    }
    d->fn(d->ud, &a);
    js_stream_release(d->s);
    free(d);
}

static bool parse_u64s(const char *v, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x;
    return true;
}

/* Nats-TTL: "never" (-1), a Go duration ("5s", "1m30s") or plain seconds. ns, or -2 bad. */
static int64_t parse_ttl(const char *v, size_t n)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return -2;
    memcpy(buf, v, n);
    buf[n] = 0;
    if (!strcmp(buf, "never"))
        return -1;
    char *end;
    long long secs = strtoll(buf, &end, 10);
    if (*end == 0)
        return secs < 0 ? -2 : secs * 1000000000ll;
    /* Go duration */
    const char *p = buf;
    double total = 0;
    while (*p) {
        double x = strtod(p, &end);
        if (end == p)
            return -2;
        p = end;
        double mul;
        if (!strncmp(p, "ns", 2)) {
            mul = 1;
            p += 2;
        } else if (!strncmp(p, "us", 2) || !strncmp(p, "µs", 3)) {
            mul = 1e3;
            p += p[0] == 'u' ? 2 : 3;
        } else if (!strncmp(p, "ms", 2)) {
            mul = 1e6;
            p += 2;
        } else if (*p == 's') {
            mul = 1e9;
            p++;
        } else if (*p == 'm') {
            mul = 60e9;
            p++;
        } else if (*p == 'h') {
            mul = 3600e9;
            p++;
        } else {
            return -2;
        }
        total += x * mul;
    }
    return total < 0 ? -2 : (int64_t)total;
}

static void republish(jstream *s, const char *subj, size_t sl, const char *hdr, size_t hl,
                      const void *data, size_t dl, uint64_t seq, uint64_t last_seq)
{
    js_republish *rp = s->cfg.republish;
    if (!js_subj_match(rp->src, subj, sl))
        return;
    /* dest: a literal subject, or with wildcards mapped token by token ("> " keeps the
     * rest of the original subject) */
    char dest[1024];
    size_t o = 0;
    const char *st[32];
    size_t stl[32];
    int ns = js_subj_tokens(subj, sl, st, stl, 32);
    const char *dt[32];
    size_t dtl[32];
    int nd = js_subj_tokens(rp->dest, strlen(rp->dest), dt, dtl, 32);
    for (int i = 0; i < nd && o < sizeof dest - 2; i++) {
        if (i)
            dest[o++] = '.';
        if (dtl[i] == 1 && dt[i][0] == '>') {
            for (int k = i; k < ns && o < sizeof dest - 2; k++) {
                if (k > i)
                    dest[o++] = '.';
                size_t n = stl[k] < sizeof dest - 2 - o ? stl[k] : sizeof dest - 2 - o;
                memcpy(dest + o, st[k], n);
                o += n;
            }
            break;
        }
        const char *t = dt[i];
        size_t tl = dtl[i];
        if (tl == 1 && t[0] == '*' && i < ns) {
            t = st[i];
            tl = stl[i];
        }
        size_t n = tl < sizeof dest - 2 - o ? tl : sizeof dest - 2 - o;
        memcpy(dest + o, t, n);
        o += n;
    }
    dest[o] = 0;
    size_t base = hl >= 12 ? hl - 2 : 0;
    size_t cap = base + 256 + sl + strlen(s->name);
    char *h = malloc(cap);
    if (!h)
        return;
    size_t n = base ? (memcpy(h, hdr, base), base) : (size_t)sprintf(h, "NATS/1.0\r\n");
    n += (size_t)snprintf(h + n, cap - n,
                          "Nats-Stream: %s\r\nNats-Subject: %.*s\r\nNats-Sequence: %llu\r\n"
                          "Nats-Last-Sequence: %llu\r\n",
                          s->name, (int)sl, subj, (unsigned long long)seq,
                          (unsigned long long)last_seq);
    if (rp->headers_only)
        n += (size_t)snprintf(h + n, cap - n, "Nats-Msg-Size: %zu\r\n", dl);
    n += (size_t)snprintf(h + n, cap - n, "\r\n");
    js_outbox ob;
    js_outbox_init(&ob);
    js_out_msg(&ob, NULL, dest, strlen(dest), NULL, h, n, rp->headers_only ? NULL : data,
               rp->headers_only ? 0 : dl);
    free(h);
    js_outbox_send(s->j, &ob);
}

/* Map a subject through the stream's subject transform (src filter -> dest with
 * wildcard tokens taken in order, as {{wildcard(n)}} / plain "*" mapping). */
static size_t transform(const js_subject_transform *t, const char *subj, size_t sl, char *out,
                        size_t cap)
{
    if (!t || !js_subj_match(t->src, subj, sl) || cap < 2) {
        size_t n = sl < cap - 1 ? sl : cap - 1;
        memcpy(out, subj, n);
        out[n] = 0;
        return n;
    }
    const char *st[32], *ft[32], *dt[32];
    size_t stl[32], ftl[32], dtl[32];
    int ns = js_subj_tokens(subj, sl, st, stl, 32);
    int nf = js_subj_tokens(t->src, strlen(t->src), ft, ftl, 32);
    int nd = js_subj_tokens(t->dest, strlen(t->dest), dt, dtl, 32);
    /* wildcard values of the source, in order */
    const char *wv[32];
    size_t wvl[32];
    int nw = 0;
    for (int i = 0; i < nf && i < ns; i++) {
        if (ftl[i] == 1 && ft[i][0] == '*') {
            wv[nw] = st[i];
            wvl[nw++] = stl[i];
        } else if (ftl[i] == 1 && ft[i][0] == '>') {
            wv[nw] = st[i];
            wvl[nw++] = (size_t)(subj + sl - st[i]);
        }
    }
    size_t o = 0;
    int next_w = 0;
    for (int i = 0; i < nd; i++) {
        if (i && o < cap - 1)
            out[o++] = '.';
        const char *tk = dt[i];
        size_t tl = dtl[i];
        int widx = -1;
        if (tl == 1 && (tk[0] == '*' || tk[0] == '>'))
            widx = next_w++;
        else if (tl > 16 && !strncmp(tk, "{{wildcard(", 11)) {
            widx = atoi(tk + 11) - 1;
        } else if (tl > 4 && !strncmp(tk, "$", 1)) {
            widx = atoi(tk + 1) - 1;
        }
        if (widx >= 0 && widx < nw) {
            tk = wv[widx];
            tl = wvl[widx];
        }
        size_t n = tl < cap - 1 - o ? tl : cap - 1 - o;
        memcpy(out + o, tk, n);
        o += n;
    }
    out[o] = 0;
    return o;
}

int js_stream_publish(jstream *s, const char *subj, size_t subj_len, const char *hdr,
                      size_t hdr_len, const void *data, size_t data_len, js_puback_fn fn,
                      void *ud)
{
    js *j = s->j;
    char desc[512];
    const char *v;
    size_t vl;
    if (!hdr)
        hdr_len = 0;
    /* interest retention: is anyone interested? (js->mu, before the stream lock) */
    bool interest = true;
    if (s->cfg.retention == JS_RET_INTEREST) {
        pthread_mutex_lock(&j->mu);
        interest = js_consumers_interested(s, subj, subj_len);
        pthread_mutex_unlock(&j->mu);
    }
    pthread_mutex_lock(&s->mu);
    if (s->deleted) {
        pthread_mutex_unlock(&s->mu);
        ack_now(s, fn, ud, 0, false, JSE_StreamNotFoundErr, "stream not found");
        return 0;
    }
    js_stream_cfg *c = &s->cfg;
    struct jstream_priv *p = s->priv;
    int jse = -1;
    const char *arg = NULL;
    char argbuf[64];
    if (c->sealed) {
        jse = JSE_StreamSealedErr;
        goto fail;
    }
    if (c->max_msg_size > 0 && (int64_t)(hdr_len + data_len) > c->max_msg_size) {
        jse = JSE_StreamMessageExceedsMaximumErr;
        goto fail;
    }
    if (hdr_len > MAX_HDR_LEN) {
        jse = JSE_StreamHeaderExceedsMaximumErr;
        goto fail;
    }
    int64_t now = js_now_wall();
    /* dedupe */
    const char *msgid = NULL;
    size_t msgid_len = 0;
    if (js_hdr_get(hdr, hdr_len, "Nats-Msg-Id", &msgid, &msgid_len) && msgid_len) {
        dd_expire(p, now, c->duplicate_window_ns);
        dd_node *d = dd_find(p, msgid, msgid_len);
        if (d) {
            uint64_t seq = d->seq;
            pthread_mutex_unlock(&s->mu);
            ack_now(s, fn, ud, seq, true, -1, NULL);
            return 0;
        }
    } else {
        msgid = NULL;
    }
    if (js_hdr_get(hdr, hdr_len, "Nats-Expected-Stream", &v, &vl) && vl &&
        (vl != strlen(s->name) || memcmp(v, s->name, vl))) {
        jse = JSE_StreamNotMatchErr;
        goto fail;
    }
    int64_t ttl = 0;
    if (js_hdr_get(hdr, hdr_len, "Nats-TTL", &v, &vl)) {
        int64_t t = parse_ttl(v, vl);
        if (t == -2) {
            jse = JSE_MessageTTLInvalidErr;
            goto fail;
        }
        if (t != 0 && !c->allow_msg_ttl) {
            jse = JSE_MessageTTLDisabledErr;
            goto fail;
        }
        if (t > 0 && t < 1000000000ll) {
            jse = JSE_MessageTTLInvalidErr;
            goto fail;
        }
        ttl = t > 0 ? t : 0;
    }
    store_state ss;
    store_get_state(s->st, &ss);
    if (js_hdr_get(hdr, hdr_len, "Nats-Expected-Last-Subject-Sequence", &v, &vl)) {
        uint64_t want = 0;
        if (!parse_u64s(v, vl, &want)) {
            jse = JSE_StreamWrongLastSequenceErrF;
            snprintf(argbuf, sizeof argbuf, "0");
            arg = argbuf;
            goto fail;
        }
        char subjbuf[1024];
        const char *check = subjbuf;
        const char *ov;
        size_t ol;
        if (js_hdr_get(hdr, hdr_len, "Nats-Expected-Last-Subject-Sequence-Subject", &ov, &ol) &&
            ol && ol < sizeof subjbuf) {
            memcpy(subjbuf, ov, ol);
            subjbuf[ol] = 0;
        } else {
            size_t n = subj_len < sizeof subjbuf - 1 ? subj_len : sizeof subjbuf - 1;
            memcpy(subjbuf, subj, n);
            subjbuf[n] = 0;
        }
        store_msg *lm = NULL;
        uint64_t have = 0;
        if (store_load_last(s->st, check, &lm) == EMBER_OK) {
            have = lm->seq;
            store_msg_release(lm);
        }
        if (have != want) {
            jse = JSE_StreamWrongLastSequenceErrF;
            snprintf(argbuf, sizeof argbuf, "%llu", (unsigned long long)have);
            arg = argbuf;
            goto fail;
        }
    } else if (js_hdr_get(hdr, hdr_len, "Nats-Expected-Last-Subject-Sequence-Subject", &v, &vl)) {
        jse = JSE_StreamExpectedLastSeqPerSubjectInvalid;
        goto fail;
    }
    if (js_hdr_get(hdr, hdr_len, "Nats-Expected-Last-Sequence", &v, &vl)) {
        uint64_t want = 0;
        if (!parse_u64s(v, vl, &want) || want != ss.last_seq) {
            jse = JSE_StreamWrongLastSequenceErrF;
            snprintf(argbuf, sizeof argbuf, "%llu", (unsigned long long)ss.last_seq);
            arg = argbuf;
            goto fail;
        }
    }
    if (js_hdr_get(hdr, hdr_len, "Nats-Expected-Last-Msg-Id", &v, &vl) && vl) {
        const char *last = p->last_msg_id ? p->last_msg_id : "";
        if (strlen(last) != vl || memcmp(last, v, vl)) {
            jse = JSE_StreamWrongLastMsgIDErrF;
            arg = last;
            goto fail;
        }
    }
    bool rollup_sub = false, rollup_all = false;
    if (js_hdr_get(hdr, hdr_len, "Nats-Rollup", &v, &vl)) {
        if (!c->allow_rollup_hdrs || c->deny_purge) {
            jse = JSE_StreamRollupFailedF;
            arg = "rollup not permitted";
            goto fail;
        }
        if (vl == 3 && !memcmp(v, "sub", 3)) {
            rollup_sub = true;
        } else if (vl == 3 && !memcmp(v, "all", 3)) {
            rollup_all = true;
        } else {
            jse = JSE_StreamRollupFailedF;
            snprintf(argbuf, sizeof argbuf, "rollup value invalid: \"%.*s\"", (int)(vl < 32 ? vl : 32), v);
            arg = argbuf;
            goto fail;
        }
    }
    /* the stored subject (subject transform) */
    char tsubj[1024];
    size_t tsl = subj_len;
    const char *ssubj = subj;
    if (c->subject_transform) {
        tsl = transform(c->subject_transform, subj, subj_len, tsubj, sizeof tsubj);
        ssubj = tsubj;
    }
    /* the account's storage limits (nats-server: "insufficient resources") */
    {
        uint64_t sz = store_msg_size(c->storage, tsl, hdr_len, data_len);
        atomic_llong *used = c->storage == STORE_MEMORY ? &j->mem_bytes : &j->store_bytes;
        int64_t max = c->storage == STORE_MEMORY ? j->max_memory : j->max_store;
        if (interest && atomic_load(used) + (int64_t)sz > max) {
            jse = JSE_InsufficientResourcesErr;
            goto fail;
        }
        if (interest)
            atomic_fetch_add(used, (int64_t)sz);
    }
    uint64_t seq = 0;
    int rc;
    if (!interest) {
        rc = store_skip(s->st, &seq);
    } else {
        rc = store_append(s->st, ssubj, tsl, hdr_len ? hdr : NULL, hdr_len, data, data_len, now,
                          ttl, &seq);
    }
    if (rc != 0) {
        switch (rc) {
        case STORE_EMAXMSGS:
            jse = JSE_StreamStoreFailedF;
            arg = "maximum messages exceeded";
            break;
        case STORE_EMAXBYTES:
            jse = JSE_StreamStoreFailedF;
            arg = "maximum bytes exceeded";
            break;
        case STORE_EMAXMSGSPERSUBJ:
            jse = JSE_StreamStoreFailedF;
            arg = "maximum messages per subject exceeded";
            break;
        case STORE_EMSGSIZE:
            jse = JSE_StreamMessageExceedsMaximumErr;
            break;
        default:
            jse = JSE_StreamStoreFailedF;
            arg = store_strerror(rc);
        }
        goto fail;
    }
    /* the last message's id (empty when it had none), for Nats-Expected-Last-Msg-Id */
    free(p->last_msg_id);
    p->last_msg_id = msgid ? strndup(msgid, msgid_len) : NULL;
    if (msgid)
        dd_add(p, msgid, msgid_len, seq, now);
    bool rolled = false;
    if (rollup_sub && interest) {
        char f[1024];
        size_t n = tsl < sizeof f - 1 ? tsl : sizeof f - 1;
        memcpy(f, ssubj, n);
        f[n] = 0;
        store_purge(s->st, f, seq, 0, NULL);
        rolled = true;
    } else if (rollup_all && interest) {
        store_compact(s->st, seq, NULL);
        rolled = true;
    }
    durable_ack *d = NULL;
    if (fn) {
        d = malloc(sizeof *d);
        if (d) {
            js_stream_retain(s);
            d->s = s;
            d->fn = fn;
            d->ud = ud;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (c->republish && interest)
        republish(s, ssubj, tsl, hdr, hdr_len, data, data_len, seq, ss.last_seq);
    if (rolled) {
        pthread_mutex_lock(&j->mu);
        js_outbox ob;
        js_outbox_init(&ob);
        js_consumers_stream_purged(s, &ob);
        pthread_mutex_unlock(&j->mu);
        js_outbox_send(j, &ob);
    }
    js_kick_stream(s);
    if (fn && !d) {
        ack_now(s, fn, ud, 0, false, JSE_StreamStoreFailedF, "out of memory");
        return 0;
    }
    if (d && store_when_durable(s->st, seq, on_durable, d) != 0)
        on_durable(d, seq, EMBER_ECLOSED);
    return 0;
fail:
    pthread_mutex_unlock(&s->mu);
    if (fn)
        js_err_text(desc, sizeof desc, jse, arg, NULL);
    ack_now(s, fn, ud, 0, false, jse, desc);
    return 0;
}

/* The wire path: an internal subscription per stream subject. */
static void on_publish(void *ud, server *srv, const msgview *mv)
{
    (void)srv;
    jstream *s = ud;
    wire_ack *w = NULL;
    if (mv->reply && !s->cfg.no_ack) {
        w = malloc(sizeof *w);
        if (w) {
            w->j = s->j;
            w->reply = strndup(mv->reply, mv->reply_len);
            if (!w->reply) {
                free(w);
                w = NULL;
            }
        }
    }
    js_stream_publish(s, mv->subject, mv->subject_len, mv->hdr, mv->hdr_len, mv->data,
                      mv->data_len, w ? on_wire_ack : NULL, w);
}

static void sub_ud_release(void *ud) { js_stream_release(ud); }

static void unsubscribe_stream(jstream *s)
{
    struct jstream_priv *p = s->priv;
    for (size_t i = 0; i < p->nsubs; i++)
        server_isub_close(s->j->srv, p->subs[i]);
    free(p->subs);
    p->subs = NULL;
    p->nsubs = 0;
}

static int subscribe_stream(jstream *s)
{
    struct jstream_priv *p = s->priv;
    p->subs = calloc(s->cfg.nsubjects ? s->cfg.nsubjects : 1, sizeof(sub *));
    if (!p->subs)
        return -1;
    for (size_t i = 0; i < s->cfg.nsubjects; i++) {
        js_stream_retain(s);
        sub *x = server_isub(s->j->srv, s->cfg.subjects[i], NULL, on_publish, s, sub_ud_release);
        if (!x) {
            js_stream_release(s);
            unsubscribe_stream(s);
            return -1;
        }
        p->subs[p->nsubs++] = x;
    }
    return 0;
}

/* ------------------------------------------------------------------ create / recover */

static void on_recover(void *ud, const store_recovery *r)
{
    jstream *s = ud;
    s->priv->rec = *r;
    s->priv->rec_set = true;
}

/* Rebuild the dedupe window from stored messages. */
static void rebuild_dedupe(jstream *s)
{
    if (s->cfg.duplicate_window_ns <= 0)
        return;
    int64_t from = js_now_wall() - s->cfg.duplicate_window_ns;
    store_state ss;
    store_get_state(s->st, &ss);
    if (!ss.msgs)
        return;
    /* walk back to the first message inside the window (binary search would be nicer;
     * the window is usually small) */
    uint64_t seq = ss.last_seq;
    uint64_t start = ss.first_seq;
    while (seq >= ss.first_seq && seq > 0) {
        store_msg *m = NULL;
        if (store_load(s->st, seq, &m) == EMBER_OK) {
            bool older = m->ts < from;
            store_msg_release(m);
            if (older) {
                start = seq + 1;
                break;
            }
        }
        if (seq == ss.first_seq)
            break;
        seq--;
    }
    for (uint64_t q = start; q <= ss.last_seq; q++) {
        store_msg *m = NULL;
        if (store_load(s->st, q, &m) != EMBER_OK)
            continue;
        const char *id;
        size_t il;
        if (js_hdr_get(m->hdr, m->hdr_len, "Nats-Msg-Id", &id, &il) && il) {
            dd_add(s->priv, id, il, m->seq, m->ts);
            free(s->priv->last_msg_id);
            s->priv->last_msg_id = strndup(id, il);
        }
        store_msg_release(m);
    }
}

/* Make the stream object and open its store. cfg is moved into the stream. */
static int stream_open(js *j, js_stream_cfg *cfg, int64_t created, jstream **out, char *err,
                       size_t errcap)
{
    jstream *s = calloc(1, sizeof *s);
    struct jstream_priv *p = calloc(1, sizeof *p);
    if (!s || !p) {
        free(s);
        free(p);
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    atomic_init(&s->refs, 1);
    s->j = j;
    s->priv = p;
    pthread_mutex_init(&s->mu, NULL);
    s->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    s->name = strdup(s->cfg.name);
    s->created_ns = created;
    store_config sc;
    memset(&sc, 0, sizeof sc);
    sc.kind = s->cfg.storage;
    sc.name = s->name;
    sc.limits = limits_of(&s->cfg);
    sc.first_seq = s->cfg.first_seq;
    sc.sync_interval_ms = (uint32_t)(j->sync_interval_ms > 0 ? j->sync_interval_ms : 0);
    sc.on_recover = on_recover;
    sc.recover_ud = s;
    char msgs[4200];
    if (s->cfg.storage == STORE_FILE) {
        size_t n = strlen(j->streams_dir) + strlen(s->name) + 2;
        s->dir = malloc(n);
        snprintf(s->dir, n, "%s/%s", j->streams_dir, s->name);
        mkdir(s->dir, 0750);
        snprintf(msgs, sizeof msgs, "%s/msgs", s->dir);
        sc.dir = msgs;
    }
    int rc = store_open(&sc, &s->st);
    if (rc != 0) {
        snprintf(err, errcap, "could not open the store of stream '%s': %s", s->name,
                 store_strerror(rc));
        js_stream_release(s);
        return -1;
    }
    if (p->rec_set && (p->rec.truncated_bytes || p->rec.corrupt_records))
        srv_log(j->srv, EMBER_LOG_WARN,
                "JetStream stream '%s': recovery truncated %llu bytes of a torn tail and "
                "skipped %llu corrupt records (%llu bytes)",
                s->name, (unsigned long long)p->rec.truncated_bytes,
                (unsigned long long)p->rec.corrupt_records,
                (unsigned long long)p->rec.corrupt_bytes);
    rebuild_dedupe(s);
    *out = s;
    return 0;
}

static void link_stream(js *j, jstream *s)
{
    jstream **pp = &j->streams;
    while (*pp)
        pp = &(*pp)->next;
    *pp = s;
    j->nstreams++;
    int64_t res = s->cfg.max_bytes > 0 ? s->cfg.max_bytes : 0;
    if (s->cfg.storage == STORE_MEMORY)
        j->mem_used += res;
    else
        j->store_used += res;
}

static void unlink_stream(js *j, jstream *s)
{
    for (jstream **pp = &j->streams; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            j->nstreams--;
            break;
        }
    int64_t res = s->cfg.max_bytes > 0 ? s->cfg.max_bytes : 0;
    if (s->cfg.storage == STORE_MEMORY)
        j->mem_used -= res;
    else
        j->store_used -= res;
}

int js_streams_recover(js *j, char *err, size_t errcap)
{
    DIR *d = opendir(j->streams_dir);
    if (!d)
        return 0;
    struct dirent *de;
    int count = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s/meta.json", j->streams_dir, de->d_name);
        char *txt = read_file(path);
        if (!txt) {
            srv_log(j->srv, EMBER_LOG_WARN, "JetStream: no readable meta.json in %s/%s, skipped",
                    j->streams_dir, de->d_name);
            continue;
        }
        cJSON *o = cJSON_Parse(txt);
        free(txt);
        const cJSON *co = o ? cJSON_GetObjectItemCaseSensitive(o, "config") : NULL;
        js_stream_cfg cfg;
        cfg_err ce = {0};
        int64_t created = 0;
        js_get_i64(o, "created", &created, NULL);
        if (!co || cfg_parse(co, &cfg, &ce) != 0 || cfg_check(j, &cfg, NULL, &ce) != 0) {
            srv_log(j->srv, EMBER_LOG_ERROR,
                    "JetStream: could not load stream '%s' from %s: invalid meta.json (%s)",
                    de->d_name, path, ce.text);
            if (co)
                cfg_free(&cfg);
            cJSON_Delete(o);
            continue;
        }
        cJSON_Delete(o);
        jstream *s = NULL;
        if (stream_open(j, &cfg, created, &s, err, errcap) != 0) {
            cfg_free(&cfg);
            closedir(d);
            return -1;
        }
        link_stream(j, s);
        if (js_consumers_recover(s, err, errcap) != 0) {
            closedir(d);
            return -1;
        }
        if (subscribe_stream(s) != 0) {
            snprintf(err, errcap, "out of memory");
            closedir(d);
            return -1;
        }
        store_state ss;
        store_get_state(s->st, &ss);
        srv_log(j->srv, EMBER_LOG_INFO, "  Restored %llu messages for stream '$G > %s'",
                (unsigned long long)ss.msgs, s->name);
        atomic_store(&s->dirty, true);
        count++;
    }
    closedir(d);
    if (count)
        srv_log(j->srv, EMBER_LOG_INFO, "  Recovered %d streams", count);
    return 0;
}

void js_streams_close_all(js *j)
{
    while (j->streams) {
        jstream *s = j->streams;
        unsubscribe_stream(s);
        js_consumers_close(s);
        unlink_stream(j, s);
        pthread_mutex_lock(&s->mu);
        s->deleted = true;
        store *st = s->st;
        pthread_mutex_unlock(&s->mu);
        if (st)
            store_close(st);
        /* the store is gone: nothing may use it any more (late acks were flushed) */
        s->st = NULL;
        js_stream_release(s);
    }
}

int64_t js_streams_tick(js *j, int64_t now, js_outbox *ob)
{
    int64_t next = 0;
    /* recount what the streams hold (the publish path only adds) */
    int64_t mem = 0, sto = 0;
    for (jstream *s = j->streams; s; s = s->next) {
        if (!s->st)
            continue;
        store_state ss;
        store_get_state(s->st, &ss);
        if (s->cfg.storage == STORE_MEMORY)
            mem += (int64_t)ss.bytes;
        else
            sto += (int64_t)ss.bytes;
    }
    atomic_store(&j->mem_bytes, mem);
    atomic_store(&j->store_bytes, sto);
    for (jstream *s = j->streams; s; s = s->next) {
        if (!s->st)
            continue;
        int64_t due = store_next_expiry(s->st);
        if (due > 0 && due <= now) {
            uint64_t n = store_expire(s->st, now);
            if (n)
                js_consumers_stream_purged(s, ob);
            due = store_next_expiry(s->st);
        }
        if (due > 0 && (next == 0 || due < next))
            next = due;
        /* keep the dedupe window from growing without bound */
        pthread_mutex_lock(&s->mu);
        dd_expire(s->priv, now, s->cfg.duplicate_window_ns);
        if (s->priv->dd_head) {
            int64_t d = s->priv->dd_head->ts + s->cfg.duplicate_window_ns;
            if (next == 0 || d < next)
                next = d;
        }
        pthread_mutex_unlock(&s->mu);
    }
    return next;
}

void js_streams_usage(js *j, uint64_t *memory, uint64_t *storage, uint64_t *streams,
                      uint64_t *consumers)
{
    *memory = *storage = *streams = *consumers = 0;
    for (jstream *s = j->streams; s; s = s->next) {
        if (s->deleted || !s->st)
            continue;
        store_state ss;
        store_get_state(s->st, &ss);
        if (s->cfg.storage == STORE_MEMORY)
            *memory += ss.bytes;
        else
            *storage += ss.bytes;
        (*streams)++;
        *consumers += s->nconsumers;
    }
}

/* ------------------------------------------------------------------ API helpers */

static char *reply_of(const msgview *mv)
{
    return mv->reply ? strndup(mv->reply, mv->reply_len) : NULL;
}

static char *tokdup(const char *t, size_t l) { return strndup(t, l); }

static cJSON *stream_info_json(jstream *s, const char *type, const char *subjects_filter,
                               uint64_t offset, bool deleted_details)
{
    cJSON *r = cJSON_CreateObject();
    if (type)
        cJSON_AddStringToObject(r, "type", type);
    char ts[64];
    if (type) {
        /* total / offset / limit for the subjects paging (as nats-server) */
    }
    cJSON_AddItemToObject(r, "config", cfg_json(&s->cfg, true));
    cJSON_AddStringToObject(r, "created", js_time_str(ts, sizeof ts, s->created_ns));
    store_state st;
    store_get_state(s->st, &st);
    cJSON *so = cJSON_AddObjectToObject(r, "state");
    js_add_u64(so, "messages", st.msgs);
    js_add_u64(so, "bytes", st.bytes);
    /* a stream that never stored anything reports 0, as nats-server */
    js_add_u64(so, "first_seq", st.msgs == 0 && st.last_seq == 0 ? 0 : st.first_seq);
    cJSON_AddStringToObject(so, "first_ts", js_time_str(ts, sizeof ts, st.msgs ? st.first_ts : 0));
    js_add_u64(so, "last_seq", st.last_seq);
    cJSON_AddStringToObject(so, "last_ts", js_time_str(ts, sizeof ts, st.last_ts));
    if (st.num_subjects)
        js_add_u64(so, "num_subjects", st.num_subjects);
    if (subjects_filter && *subjects_filter) {
        store_subject_state *sst = NULL;
        size_t n = 0;
        if (store_subjects_state(s->st, strcmp(subjects_filter, ">") ? subjects_filter : NULL,
                                 &sst, &n) == 0 && n) {
            cJSON *m = cJSON_AddObjectToObject(so, "subjects");
            size_t lim = 100000;
            for (size_t i = (size_t)offset; i < n && i < offset + lim; i++)
                js_add_u64(m, sst[i].subject, sst[i].msgs);
        }
        free(sst);
    }
    if (st.num_deleted) {
        js_add_u64(so, "num_deleted", st.num_deleted);
        if (deleted_details && st.msgs) {
            cJSON *a = cJSON_AddArrayToObject(so, "deleted");
            uint64_t shown = 0;
            for (uint64_t q = st.first_seq; q <= st.last_seq && shown < 100000; q++) {
                store_msg *m = NULL;
                if (store_load(s->st, q, &m) == EMBER_OK) {
                    store_msg_release(m);
                } else {
                    char b[24];
                    snprintf(b, sizeof b, "%llu", (unsigned long long)q);
                    cJSON_AddItemToArray(a, cJSON_CreateRaw(b));
                    shown++;
                }
            }
        }
    }
    cJSON_AddNumberToObject(so, "consumer_count", (double)s->nconsumers);
    if (s->j->domain)
        cJSON_AddStringToObject(r, "domain", s->j->domain);
    cJSON_AddStringToObject(r, "ts", js_time_str(ts, sizeof ts, js_now_wall()));
    return r;
}

/* The request body as JSON; on bad JSON queue the 10025 error and return NULL. */
static cJSON *body_or_error(const msgview *mv, const char *type, const char *reply,
                            js_outbox *ob)
{
    cJSON *b = js_parse_body(mv->data, mv->data_len);
    if (!b)
        js_out_json(ob, reply, js_api_error(type, JSE_InvalidJSONErr, NULL));
    return b;
}

static void api_create(js *j, const char *name, const msgview *mv, bool update, js_outbox *ob)
{
    const char *type = update ? JS_TYPE("stream_update_response") : JS_TYPE("stream_create_response");
    char *reply = reply_of(mv);
    /* an empty body is not a config: nats-server's JSON decoding fails */
    cJSON *b = mv->data_len ? body_or_error(mv, type, reply, ob) : NULL;
    if (!mv->data_len)
        js_out_json(ob, reply, js_api_error(type, JSE_InvalidJSONErr, NULL));
    if (!b) {
        free(reply);
        return;
    }
    js_stream_cfg cfg;
    cfg_err ce = {0};
    if (cfg_parse(b, &cfg, &ce) != 0) {
        cJSON_Delete(b);
        if (ce.jse == JSE_InvalidJSONErr)
            js_out_json(ob, reply, js_api_error(type, JSE_InvalidJSONErr, NULL));
        else
            js_out_json(ob, reply, js_api_error(type, ce.jse, ce.text, NULL));
        cfg_free(&cfg);
        free(reply);
        return;
    }
    cJSON_Delete(b);
    if (!cfg.name || strcmp(cfg.name, name)) {
        js_out_json(ob, reply, js_api_error(type, JSE_StreamMismatchErr, NULL));
        cfg_free(&cfg);
        free(reply);
        return;
    }
    if (!update && (cfg.sealed || (cfg.mirror_direct && !cfg.mirror))) {
        js_out_json(ob, reply, js_api_error(type, JSE_StreamInvalidConfigF,
                                            cfg.sealed ? "stream configuration for create can not be sealed"
                                                       : "stream has no mirror but does have mirror direct",
                                            NULL));
        cfg_free(&cfg);
        free(reply);
        return;
    }
    pthread_mutex_lock(&j->mu);
    jstream *cur = js_stream_lookup(j, name);
    if (update && !cur) {
        pthread_mutex_unlock(&j->mu);
        js_out_json(ob, reply, js_api_error(type, JSE_StreamNotFoundErr, NULL));
        cfg_free(&cfg);
        free(reply);
        return;
    }
    if (cfg_check(j, &cfg, cur, &ce) != 0) {
        pthread_mutex_unlock(&j->mu);
        js_out_json(ob, reply, js_api_error(type, ce.jse, ce.text, NULL));
        cfg_free(&cfg);
        free(reply);
        return;
    }
    if (!update) {
        if (cur) {
            cJSON *r;
            if (cfg_equal(&cur->cfg, &cfg)) {
                r = stream_info_json(cur, type, NULL, 0, false);
                cJSON_AddBoolToObject(r, "did_create", true); /* as nats-server, also here */
            } else {
                r = js_api_error(type, JSE_StreamNameExistErr, NULL);
            }
            pthread_mutex_unlock(&j->mu);
            js_out_json(ob, reply, r);
            cfg_free(&cfg);
            free(reply);
            return;
        }
        int64_t res = cfg.max_bytes > 0 ? cfg.max_bytes : 0;
        if ((cfg.storage == STORE_MEMORY && j->mem_used + res > j->max_memory) ||
            (cfg.storage == STORE_FILE && j->store_used + res > j->max_store)) {
            pthread_mutex_unlock(&j->mu);
            js_out_json(ob, reply, js_api_error(type, JSE_InsufficientResourcesErr, NULL));
            cfg_free(&cfg);
            free(reply);
            return;
        }
        char err[256];
        jstream *s = NULL;
        if (stream_open(j, &cfg, js_now_wall(), &s, err, sizeof err) != 0) {
            pthread_mutex_unlock(&j->mu);
            js_out_json(ob, reply, js_api_error(type, JSE_StreamCreateErrF, err, NULL));
            cfg_free(&cfg);
            free(reply);
            return;
        }
        if (write_meta(s) != 0 || subscribe_stream(s) != 0) {
            pthread_mutex_unlock(&j->mu);
            store_delete(s->st);
            s->st = NULL;
            if (s->dir)
                rm_tree(s->dir);
            js_stream_release(s);
            js_out_json(ob, reply, js_api_error(type, JSE_StreamCreateErrF,
                                                "could not write the stream's metadata", NULL));
            free(reply);
            return;
        }
        link_stream(j, s);
        cJSON *r = stream_info_json(s, type, NULL, 0, false);
        cJSON_AddBoolToObject(r, "did_create", true);
        pthread_mutex_unlock(&j->mu);
        srv_log(j->srv, EMBER_LOG_DEBUG, "JetStream: created stream '%s'", s->name);
        js_out_json(ob, reply, r);
        free(reply);
        return;
    }
    /* update */
    if (!cur) {
        pthread_mutex_unlock(&j->mu);
        js_out_json(ob, reply, js_api_error(type, JSE_StreamNotFoundErr, NULL));
        cfg_free(&cfg);
        free(reply);
        return;
    }
    js_stream_cfg *old = &cur->cfg;
    const char *why = NULL;
    if (cfg.storage != old->storage)
        why = "stream configuration update can not change storage type";
    else if (cfg.retention != old->retention &&
             (cfg.retention == JS_RET_WORKQUEUE || old->retention == JS_RET_WORKQUEUE))
        why = "stream configuration update can not change retention policy to/from workqueue";
    else if (old->sealed && !cfg.sealed)
        why = "stream configuration update can not unseal a sealed stream";
    else if (old->deny_delete && !cfg.deny_delete)
        why = "stream configuration update can not cancel deny message deletes";
    else if (old->deny_purge && !cfg.deny_purge)
        why = "stream configuration update can not cancel deny purge";
    else if (old->allow_msg_ttl && !cfg.allow_msg_ttl)
        why = "message TTL status can not be disabled";
    if (why) {
        pthread_mutex_unlock(&j->mu);
        js_out_json(ob, reply, js_api_error(type, JSE_StreamInvalidConfigF, why, NULL));
        cfg_free(&cfg);
        free(reply);
        return;
    }
    if (cfg.sealed) {
        /* as nats-server: a sealed stream keeps everything and takes nothing */
        cfg.max_age_ns = 0;
        cfg.discard = STORE_DISCARD_NEW;
        cfg.deny_delete = cfg.deny_purge = true;
        cfg.allow_rollup_hdrs = false;
    }
    if (!cfg.first_seq)
        cfg.first_seq = old->first_seq;
    store_limits lim = limits_of(&cfg);
    int rc = store_update_limits(cur->st, &lim);
    if (rc != 0) {
        pthread_mutex_unlock(&j->mu);
        js_out_json(ob, reply, js_api_error(type, JSE_StreamUpdateErrF, store_strerror(rc), NULL));
        cfg_free(&cfg);
        free(reply);
        return;
    }
    bool subjects_changed = cfg.nsubjects != old->nsubjects;
    for (size_t i = 0; !subjects_changed && i < cfg.nsubjects; i++)
        if (!subjects_equal_any(old, cfg.subjects[i]))
            subjects_changed = true;
    if (subjects_changed)
        unsubscribe_stream(cur);
    pthread_mutex_lock(&cur->mu);
    int64_t oldres = old->max_bytes > 0 ? old->max_bytes : 0;
    js_stream_cfg prev = cur->cfg;
    cur->cfg = cfg;
    /* keep the fields an update does not carry */
    pthread_mutex_unlock(&cur->mu);
    cfg_free(&prev);
    int64_t newres = cur->cfg.max_bytes > 0 ? cur->cfg.max_bytes : 0;
    if (cur->cfg.storage == STORE_MEMORY)
        j->mem_used += newres - oldres;
    else
        j->store_used += newres - oldres;
    if (subjects_changed)
        subscribe_stream(cur);
    write_meta(cur);
    js_consumers_stream_purged(cur, ob); /* limits may have removed messages */
    cJSON *r = stream_info_json(cur, type, NULL, 0, false);
    pthread_mutex_unlock(&j->mu);
    js_out_json(ob, reply, r);
    free(reply);
}

static cJSON *paged_error(const char *type, int jse, bool streams)
{
    cJSON *r = js_api_error(type, jse, NULL);
    js_add_u64(r, "total", 0);
    js_add_u64(r, "offset", 0);
    js_add_u64(r, "limit", 0);
    if (streams)
        cJSON_AddNullToObject(r, "streams");
    return r;
}

static void api_info(js *j, const char *name, const msgview *mv, js_outbox *ob)
{
    const char *type = JS_TYPE("stream_info_response");
    char *reply = reply_of(mv);
    cJSON *b = js_parse_body(mv->data, mv->data_len);
    if (!b) {
        js_out_json(ob, reply, paged_error(type, JSE_InvalidJSONErr, false));
        free(reply);
        return;
    }
    const char *filter = js_get_str(b, "subjects_filter", NULL);
    bool dd = false;
    js_get_bool(b, "deleted_details", &dd, NULL);
    uint64_t offset = 0;
    js_get_u64(b, "offset", &offset, NULL);
    pthread_mutex_lock(&j->mu);
    jstream *s = js_stream_lookup(j, name);
    cJSON *r = s ? stream_info_json(s, type, filter, offset, dd)
                 : js_api_error(type, JSE_StreamNotFoundErr, NULL);
    /* the response is paged (subjects): nats-server always writes the paging fields */
    cJSON *st = s ? cJSON_GetObjectItemCaseSensitive(r, "state") : NULL;
    cJSON *subs = st ? cJSON_GetObjectItemCaseSensitive(st, "subjects") : NULL;
    js_add_u64(r, "total", subs ? (uint64_t)cJSON_GetArraySize(subs) : 0);
    js_add_u64(r, "offset", s && subs ? offset : 0);
    js_add_u64(r, "limit", s && subs ? 100000 : 0);
    pthread_mutex_unlock(&j->mu);
    cJSON_Delete(b);
    js_out_json(ob, reply, r);
    free(reply);
}

static int cmp_stream_name(const void *a, const void *b)
{
    return strcmp((*(jstream *const *)a)->name, (*(jstream *const *)b)->name);
}

static void api_names_list(js *j, const msgview *mv, bool list, js_outbox *ob)
{
    const char *type = list ? JS_TYPE("stream_list_response") : JS_TYPE("stream_names_response");
    char *reply = reply_of(mv);
    cJSON *b = js_parse_body(mv->data, mv->data_len);
    if (!b) {
        cJSON *r = paged_error(type, JSE_InvalidJSONErr, !list);
        if (list)
            cJSON_AddArrayToObject(r, "streams");
        js_out_json(ob, reply, r);
        free(reply);
        return;
    }
    uint64_t offset = 0;
    js_get_u64(b, "offset", &offset, NULL);
    const char *subject = js_get_str(b, "subject", NULL);
    size_t limit = list ? LIST_LIMIT : NAMES_LIMIT;
    pthread_mutex_lock(&j->mu);
    size_t n = 0;
    jstream **arr = calloc(j->nstreams + 1, sizeof *arr);
    for (jstream *s = j->streams; s && arr; s = s->next) {
        if (s->deleted)
            continue;
        if (subject && *subject) {
            bool m = false;
            for (size_t i = 0; i < s->cfg.nsubjects && !m; i++)
                m = js_subj_overlap(subject, s->cfg.subjects[i]);
            if (!m)
                continue;
        }
        arr[n++] = s;
    }
    if (arr)
        qsort(arr, n, sizeof *arr, cmp_stream_name);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "type", type);
    js_add_u64(r, "total", n);
    js_add_u64(r, "offset", offset);
    js_add_u64(r, "limit", limit);
    /* names: Go's nil slice when empty; list: always an array */
    cJSON *a = n > offset || list ? cJSON_AddArrayToObject(r, "streams") : NULL;
    if (!a)
        cJSON_AddNullToObject(r, "streams");
    for (size_t i = (size_t)offset; a && i < n && i < offset + limit; i++) {
        if (list)
            cJSON_AddItemToArray(a, stream_info_json(arr[i], NULL, NULL, 0, false));
        else
            cJSON_AddItemToArray(a, cJSON_CreateString(arr[i]->name));
    }
    pthread_mutex_unlock(&j->mu);
    free(arr);
    cJSON_Delete(b);
    js_out_json(ob, reply, r);
    free(reply);
}

static void api_delete(js *j, const char *name, const msgview *mv, js_outbox *ob)
{
    const char *type = JS_TYPE("stream_delete_response");
    char *reply = reply_of(mv);
    pthread_mutex_lock(&j->mu);
    jstream *s = js_stream_lookup(j, name);
    if (!s) {
        pthread_mutex_unlock(&j->mu);
        js_out_json(ob, reply, js_api_error(type, JSE_StreamNotFoundErr, NULL));
        free(reply);
        return;
    }
    unsubscribe_stream(s);
    js_consumers_stream_deleting(s, ob);
    unlink_stream(j, s);
    pthread_mutex_lock(&s->mu);
    s->deleted = true;
    store *st = s->st;
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_unlock(&j->mu);
    if (st)
        store_delete(st);
    s->st = NULL;
    if (s->dir)
        rm_tree(s->dir);
    srv_log(j->srv, EMBER_LOG_DEBUG, "JetStream: deleted stream '%s'", name);
    js_stream_release(s);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "type", type);
    cJSON_AddBoolToObject(r, "success", true);
    js_out_json(ob, reply, r);
    free(reply);
}

typedef struct barrier_reply {
    js *j;
    char *reply;
    char *json;
} barrier_reply;

static void on_barrier(void *ud, uint64_t seq, int status)
{
    (void)seq;
    (void)status;
    barrier_reply *b = ud;
    js_outbox ob;
    js_outbox_init(&ob);
    if (b->reply)
        js_out_msg(&ob, NULL, b->reply, strlen(b->reply), NULL, NULL, 0, b->json,
                   strlen(b->json));
    js_outbox_send(b->j, &ob);
    free(b->reply);
    cJSON_free(b->json);
    free(b);
}

/* Reply once what the request changed is durable. Called without js->mu. */
static void reply_when_durable(js *j, store *st, char *reply, cJSON *r)
{
    barrier_reply *b = malloc(sizeof *b);
    char *txt = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    if (!b || !txt) {
        free(b);
        cJSON_free(txt);
        free(reply);
        return;
    }
    b->j = j;
    b->reply = reply;
    b->json = txt;
    if (!st || store_sync_barrier(st, on_barrier, b) != 0)
        on_barrier(b, 0, 0);
}

static cJSON *add_purged(cJSON *r)
{
    js_add_u64(r, "purged", 0);
    return r;
}
#define PURGE_ERR(...) add_purged(js_api_error(__VA_ARGS__))

static void api_purge(js *j, const char *name, const msgview *mv, js_outbox *ob)
{
    const char *type = JS_TYPE("stream_purge_response");
    char *reply = reply_of(mv);
    cJSON *b = js_parse_body(mv->data, mv->data_len);
    if (!b) {
        js_out_json(ob, reply, PURGE_ERR(type, JSE_InvalidJSONErr, NULL));
        free(reply);
        return;
    }
    bool bad_ = false;
    const char *filter = js_get_str(b, "filter", &bad_);
    uint64_t seq = 0, keep = 0;
    bool has_seq = js_get_u64(b, "seq", &seq, &bad_);
    bool has_keep = js_get_u64(b, "keep", &keep, &bad_);
    if (bad_) {
        cJSON_Delete(b);
        js_out_json(ob, reply, PURGE_ERR(type, JSE_InvalidJSONErr, NULL));
        free(reply);
        return;
    }
    if (has_seq && has_keep) {
        cJSON_Delete(b);
        js_out_json(ob, reply, PURGE_ERR(type, JSE_BadRequestErr, NULL));
        free(reply);
        return;
    }
    pthread_mutex_lock(&j->mu);
    jstream *s = js_stream_lookup(j, name);
    if (!s) {
        pthread_mutex_unlock(&j->mu);
        cJSON_Delete(b);
        js_out_json(ob, reply, PURGE_ERR(type, JSE_StreamNotFoundErr, NULL));
        free(reply);
        return;
    }
    if (s->cfg.sealed || s->cfg.deny_purge) {
        pthread_mutex_unlock(&j->mu);
        cJSON_Delete(b);
        js_out_json(ob, reply, s->cfg.sealed ? PURGE_ERR(type, JSE_StreamSealedErr, NULL)
                                             : PURGE_ERR(type, JSE_StreamPurgeFailedF,
                                                            "stream purge not permitted", NULL));
        free(reply);
        return;
    }
    uint64_t purged = 0;
    int rc;
    pthread_mutex_lock(&s->mu);
    if (!filter && !has_seq && !has_keep) {
        rc = store_purge(s->st, NULL, 0, 0, &purged);
    } else if (!filter && has_seq) {
        rc = store_compact(s->st, seq, &purged);
    } else {
        rc = store_purge(s->st, filter && *filter ? filter : NULL, has_seq ? seq : 0,
                         has_keep ? keep : 0, &purged);
    }
    pthread_mutex_unlock(&s->mu);
    cJSON_Delete(b);
    if (rc != 0) {
        pthread_mutex_unlock(&j->mu);
        js_out_json(ob, reply, PURGE_ERR(type, JSE_StreamPurgeFailedF, store_strerror(rc), NULL));
        free(reply);
        return;
    }
    js_consumers_stream_purged(s, ob);
    store *st = s->st;
    js_stream_retain(s);
    pthread_mutex_unlock(&j->mu);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "type", type);
    cJSON_AddBoolToObject(r, "success", true);
    js_add_u64(r, "purged", purged);
    /* the outbox may hold consumer messages: send them first, then the durable reply */
    js_outbox_send(j, ob);
    reply_when_durable(j, st, reply, r);
    js_stream_release(s);
}

static cJSON *stored_msg_json(const store_msg *m)
{
    cJSON *o = cJSON_CreateObject();
    char *subj = strndup(m->subj, m->subj_len);
    cJSON_AddStringToObject(o, "subject", subj ? subj : "");
    free(subj);
    js_add_u64(o, "seq", m->seq);
    if (m->hdr_len) {
        char *h = js_b64_encode(m->hdr, m->hdr_len);
        cJSON_AddStringToObject(o, "hdrs", h ? h : "");
        free(h);
    }
    if (m->data_len) {
        char *d = js_b64_encode(m->data, m->data_len);
        cJSON_AddStringToObject(o, "data", d ? d : "");
        free(d);
    }
    char ts[64];
    cJSON_AddStringToObject(o, "time", js_time_str(ts, sizeof ts, m->ts));
    return o;
}

/* seq / last_by_subj / next_by_subj as nats-server's JSApiMsgGetRequest. */
static int load_req(jstream *s, const cJSON *b, store_msg **out, int *jse)
{
    bool bad_ = false;
    uint64_t seq = 0;
    bool has_seq = js_get_u64(b, "seq", &seq, &bad_);
    const char *last = js_get_str(b, "last_by_subj", &bad_);
    const char *next = js_get_str(b, "next_by_subj", &bad_);
    if (bad_) {
        *jse = JSE_InvalidJSONErr;
        return -1;
    }
    if ((has_seq && last) || (last && next) || (!has_seq && !last && !next) ||
        (has_seq && seq == 0 && !next)) {
        *jse = JSE_BadRequestErr;
        return -1;
    }
    int rc;
    if (last)
        rc = store_load_last(s->st, last, out);
    else if (next)
        rc = store_load_next(s->st, next, has_seq ? seq : 0, out);
    else
        rc = store_load(s->st, seq, out);
    if (rc != 0) {
        *jse = JSE_NoMessageFoundErr;
        return -1;
    }
    return 0;
}

static void api_msg_get(js *j, const char *name, const msgview *mv, js_outbox *ob)
{
    const char *type = JS_TYPE("stream_msg_get_response");
    char *reply = reply_of(mv);
    cJSON *b = body_or_error(mv, type, reply, ob);
    if (!b) {
        free(reply);
        return;
    }
    pthread_mutex_lock(&j->mu);
    jstream *s = js_stream_lookup(j, name);
    cJSON *r;
    if (!s) {
        r = js_api_error(type, JSE_StreamNotFoundErr, NULL);
    } else {
        store_msg *m = NULL;
        int jse;
        if (load_req(s, b, &m, &jse) != 0) {
            r = js_api_error(type, jse, NULL);
        } else {
            r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "type", type);
            cJSON_AddItemToObject(r, "message", stored_msg_json(m));
            store_msg_release(m);
        }
    }
    pthread_mutex_unlock(&j->mu);
    cJSON_Delete(b);
    js_out_json(ob, reply, r);
    free(reply);
}

static void api_msg_delete(js *j, const char *name, const msgview *mv, js_outbox *ob)
{
    const char *type = JS_TYPE("stream_msg_delete_response");
    char *reply = reply_of(mv);
    if (mv->data_len == 0) {
        js_out_json(ob, reply, js_api_error(type, JSE_BadRequestErr, NULL));
        free(reply);
        return;
    }
    cJSON *b = body_or_error(mv, type, reply, ob);
    if (!b) {
        free(reply);
        return;
    }
    uint64_t seq = 0;
    bool no_erase = false, bad_ = false;
    js_get_u64(b, "seq", &seq, &bad_);
    js_get_bool(b, "no_erase", &no_erase, &bad_);
    cJSON_Delete(b);
    if (bad_) {
        js_out_json(ob, reply, js_api_error(type, JSE_InvalidJSONErr, NULL));
        free(reply);
        return;
    }
    pthread_mutex_lock(&j->mu);
    jstream *s = js_stream_lookup(j, name);
    if (!s) {
        pthread_mutex_unlock(&j->mu);
        js_out_json(ob, reply, js_api_error(type, JSE_StreamNotFoundErr, NULL));
        free(reply);
        return;
    }
    if (s->cfg.sealed || s->cfg.deny_delete) {
        pthread_mutex_unlock(&j->mu);
        js_out_json(ob, reply, s->cfg.sealed ? js_api_error(type, JSE_StreamSealedErr, NULL)
                                             : js_api_error(type, JSE_StreamMsgDeleteFailedF,
                                                            "message delete not permitted", NULL));
        free(reply);
        return;
    }
    pthread_mutex_lock(&s->mu);
    store_state sst;
    store_get_state(s->st, &sst);
    int rc = seq ? store_remove(s->st, seq, !no_erase) : EMBER_ENOTFOUND;
    pthread_mutex_unlock(&s->mu);
    if (rc != 0) {
        char b2[32];
        snprintf(b2, sizeof b2, "%llu", (unsigned long long)seq);
        pthread_mutex_unlock(&j->mu);
        /* as nats-server's stores: past the end is EOF, a hole is "sequence N not found" */
        js_out_json(ob, reply,
                    rc != EMBER_ENOTFOUND ? js_api_error(type, JSE_StreamMsgDeleteFailedF, store_strerror(rc), NULL)
                    : seq > sst.last_seq  ? js_api_error(type, JSE_StreamMsgDeleteFailedF, "stream store EOF", NULL)
                    : seq < sst.first_seq ? js_api_error(type, JSE_StreamMsgDeleteFailedF, "no message found", NULL)
                                          : js_api_error(type, JSE_SequenceNotFoundErrF, b2, NULL));
        free(reply);
        return;
    }
    js_consumers_stream_purged(s, ob);
    store *st = s->st;
    js_stream_retain(s);
    pthread_mutex_unlock(&j->mu);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "type", type);
    cJSON_AddBoolToObject(r, "success", true);
    js_outbox_send(j, ob);
    reply_when_durable(j, st, reply, r);
    js_stream_release(s);
}

void js_api_stream(js *j, const char **t, const size_t *tl, int n, const msgview *mv,
                   js_outbox *ob)
{
#define IS(i, s) (strlen(s) == tl[i] && !memcmp(t[i], s, tl[i]))
    if (n == 2) {
        api_names_list(j, mv, IS(1, "LIST"), ob);
        return;
    }
    char *name = n == 3 ? tokdup(t[2], tl[2]) : tokdup(t[3], tl[3]);
    if (!name)
        return;
    if (n == 3 && IS(1, "CREATE"))
        api_create(j, name, mv, false, ob);
    else if (n == 3 && IS(1, "UPDATE"))
        api_create(j, name, mv, true, ob);
    else if (n == 3 && IS(1, "INFO"))
        api_info(j, name, mv, ob);
    else if (n == 3 && IS(1, "DELETE"))
        api_delete(j, name, mv, ob);
    else if (n == 3 && IS(1, "PURGE"))
        api_purge(j, name, mv, ob);
    else if (n == 4 && IS(2, "GET"))
        api_msg_get(j, name, mv, ob);
    else if (n == 4 && IS(2, "DELETE"))
        api_msg_delete(j, name, mv, ob);
    free(name);
#undef IS
}

/* ------------------------------------------------------------------ direct get */

static void direct_reply_x(js_outbox *ob, const char *reply, const char *stream, store_msg *m,
                           const char *extra);
static void direct_reply(js_outbox *ob, const char *reply, const char *stream, store_msg *m)
{
    direct_reply_x(ob, reply, stream, m, NULL);
}

static void direct_reply_x(js_outbox *ob, const char *reply, const char *stream, store_msg *m,
                           const char *extra)
{
    char ts[64];
    js_time_str(ts, sizeof ts, m->ts);
    size_t base = m->hdr_len >= 12 ? m->hdr_len - 2 : 0;
    size_t cap = base + 200 + strlen(stream) + m->subj_len + (extra ? strlen(extra) : 0);
    char *h = malloc(cap);
    if (!h)
        return;
    size_t n = base ? (memcpy(h, m->hdr, base), base) : (size_t)sprintf(h, "NATS/1.0\r\n");
    n += (size_t)snprintf(h + n, cap - n,
                          "Nats-Stream: %s\r\nNats-Subject: %.*s\r\nNats-Sequence: %llu\r\n"
                          "Nats-Time-Stamp: %s\r\n%s\r\n",
                          stream, (int)m->subj_len, m->subj, (unsigned long long)m->seq, ts,
                          extra ? extra : "");
    js_out_msg(ob, NULL, reply, strlen(reply), NULL, h, n, m->data, m->data_len);
    free(h);
}

/* ADR-31 batch get: up to batch messages from seq (matching next_by_subj), each with
 * Nats-Num-Pending / Nats-Last-Sequence, then 204 EOB. js->mu held. */
static void direct_batch(jstream *s, const cJSON *b, uint64_t batch, uint64_t max_bytes,
                         const char *reply, js_outbox *ob)
{
    uint64_t seq = 0;
    js_get_u64(b, "seq", &seq, NULL);
    const char *start_time = js_get_str(b, "start_time", NULL);
    const char *next = js_get_str(b, "next_by_subj", NULL);
    if (start_time) {
        int64_t t = 0;
        if (js_time_parse(start_time, &t) == 0) {
            store_state ss;
            store_get_state(s->st, &ss);
            seq = ss.last_seq + 1;
            for (uint64_t q = ss.first_seq; q <= ss.last_seq; q++) {
                store_msg *m = NULL;
                if (store_load(s->st, q, &m) == EMBER_OK) {
                    bool after = m->ts >= t;
                    store_msg_release(m);
                    if (after) {
                        seq = q;
                        break;
                    }
                }
            }
        }
    }
    uint64_t np = store_num_pending(s->st, next, seq);
    uint64_t lseq = 0, bytes = 0;
    for (uint64_t i = 0; i < batch; i++) {
        store_msg *m = NULL;
        if (store_load_next(s->st, next, seq, &m) != EMBER_OK) {
            if (i == 0) {
                js_out_status(ob, reply, 404, "Message Not Found", NULL, NULL);
                return;
            }
            break;
        }
        seq = m->seq + 1;
        if (np > 0)
            np--;
        char extra[96];
        snprintf(extra, sizeof extra, "Nats-Num-Pending: %llu\r\nNats-Last-Sequence: %llu\r\n",
                 (unsigned long long)np, (unsigned long long)lseq);
        direct_reply_x(ob, reply, s->name, m, extra);
        lseq = m->seq;
        bytes += m->subj_len + m->hdr_len + m->data_len;
        store_msg_release(m);
        if (bytes >= max_bytes)
            break;
    }
    np = store_num_pending(s->st, next, seq);
    char eob[160];
    snprintf(eob, sizeof eob, "Nats-Num-Pending: %llu\r\nNats-Last-Sequence: %llu\r\n",
             (unsigned long long)np, (unsigned long long)lseq);
    js_out_status(ob, reply, 204, "EOB", eob, NULL);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* ADR-31 multi_last: the last message of every subject matching the filters (at or below
 * up_to_seq), in sequence order, then 204 EOB with Nats-UpTo-Sequence. js->mu held. */
static void direct_multi(jstream *s, const cJSON *b, const cJSON *multi, uint64_t batch,
                         uint64_t max_bytes, const char *reply, js_outbox *ob)
{
    const size_t max_resp = 1024;
    store_state ss;
    store_get_state(s->st, &ss);
    uint64_t upto = 0;
    js_get_u64(b, "up_to_seq", &upto, NULL);
    if (upto == 0 || upto > ss.last_seq)
        upto = ss.last_seq;
    uint64_t *seqs = NULL;
    size_t n = 0, cap = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, multi)
    {
        if (!cJSON_IsString(it))
            continue;
        store_subject_state *sst = NULL;
        size_t ns = 0;
        if (store_subjects_state(s->st, it->valuestring, &sst, &ns) != 0)
            continue;
        for (size_t i = 0; i < ns; i++) {
            uint64_t last = sst[i].last_seq;
            if (last > upto) {
                last = 0;
                uint64_t q = sst[i].first_seq;
                while (q <= upto) {
                    store_msg *m = NULL;
                    if (store_load_next(s->st, sst[i].subject, q, &m) != EMBER_OK)
                        break;
                    if (m->seq <= upto)
                        last = m->seq;
                    q = m->seq + 1;
                    store_msg_release(m);
                }
                if (!last)
                    continue;
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                uint64_t *ns2 = realloc(seqs, cap * sizeof *seqs);
                if (!ns2)
                    break;
                seqs = ns2;
            }
            seqs[n++] = last;
        }
        free(sst);
    }
    if (n > 1) {
        qsort(seqs, n, sizeof *seqs, cmp_u64);
        size_t k = 1;
        for (size_t i = 1; i < n; i++)
            if (seqs[i] != seqs[k - 1])
                seqs[k++] = seqs[i];
        n = k;
    }
    if (n > max_resp) {
        js_out_status(ob, reply, 413, "Too Many Results", NULL, NULL);
        free(seqs);
        return;
    }
    if (n == 0) {
        js_out_status(ob, reply, 404, "No Results", NULL, NULL);
        free(seqs);
        return;
    }
    uint64_t lseq = 0, bytes = 0, sent = 0, np = n;
    for (size_t i = 0; i < n; i++) {
        store_msg *m = NULL;
        if (store_load(s->st, seqs[i], &m) != EMBER_OK)
            continue;
        np--;
        char extra[96];
        snprintf(extra, sizeof extra, "Nats-Num-Pending: %llu\r\nNats-Last-Sequence: %llu\r\n",
                 (unsigned long long)np, (unsigned long long)lseq);
        direct_reply_x(ob, reply, s->name, m, extra);
        lseq = m->seq;
        bytes += m->subj_len + m->hdr_len + m->data_len;
        store_msg_release(m);
        sent++;
        if (bytes >= max_bytes || (batch > 0 && sent >= batch))
            break;
    }
    free(seqs);
    char eob[200];
    snprintf(eob, sizeof eob,
             "Nats-Num-Pending: %llu\r\nNats-Last-Sequence: %llu\r\nNats-UpTo-Sequence: %llu\r\n",
             (unsigned long long)np, (unsigned long long)lseq, (unsigned long long)upto);
    js_out_status(ob, reply, 204, "EOB", eob, NULL);
}

void js_api_direct_get(js *j, const char **t, const size_t *tl, int n, const msgview *mv,
                       js_outbox *ob)
{
    /* toks: DIRECT GET <stream> [subject...] */
    char *name = tokdup(t[2], tl[2]);
    char *reply = reply_of(mv);
    if (!name || !reply) {
        free(name);
        free(reply);
        return;
    }
    pthread_mutex_lock(&j->mu);
    jstream *s = js_stream_lookup(j, name);
    if (!s || !s->cfg.allow_direct) {
        /* nobody serves direct gets of this stream; nats-server's API-wide subscription
         * takes the request, so the client hears nothing (times out) */
        pthread_mutex_unlock(&j->mu);
        free(name);
        free(reply);
        return;
    }
    store_msg *m = NULL;
    if (n > 3) {
        /* $JS.API.DIRECT.GET.<stream>.<subject>: the subject is everything after */
        if (mv->data_len) {
            pthread_mutex_unlock(&j->mu);
            js_out_status(ob, reply, 408, "Bad Request", NULL, NULL);
            free(name);
            free(reply);
            return;
        }
        const char *subj = t[3];
        size_t sl = (size_t)(mv->subject + mv->subject_len - subj);
        char *f = strndup(subj, sl);
        int rc = f ? store_load_last(s->st, f, &m) : EMBER_ENOMEM;
        free(f);
        if (rc != 0)
            m = NULL;
    } else {
        if (mv->data_len == 0) {
            pthread_mutex_unlock(&j->mu);
            js_out_status(ob, reply, 408, "Empty Request", NULL, NULL);
            free(name);
            free(reply);
            return;
        }
        cJSON *b = js_parse_body(mv->data, mv->data_len);
        int jse;
        if (!b) {
            pthread_mutex_unlock(&j->mu);
            js_out_status(ob, reply, 408, "Malformed Request", NULL, NULL);
            free(name);
            free(reply);
            return;
        }
        uint64_t batch = 0;
        js_get_u64(b, "batch", &batch, NULL);
        const cJSON *multi = cJSON_GetObjectItemCaseSensitive(b, "multi_last");
        if ((cJSON_IsArray(multi) && cJSON_GetArraySize(multi) > 0) || batch > 0) {
            uint64_t max_bytes = 0;
            js_get_u64(b, "max_bytes", &max_bytes, NULL);
            if (!max_bytes)
                max_bytes = (uint64_t)j->srv->opts.max_pending;
            if (cJSON_IsArray(multi) && cJSON_GetArraySize(multi) > 0)
                direct_multi(s, b, multi, batch, max_bytes, reply, ob);
            else
                direct_batch(s, b, batch, max_bytes, reply, ob);
            cJSON_Delete(b);
            pthread_mutex_unlock(&j->mu);
            free(name);
            free(reply);
            return;
        }
        if (load_req(s, b, &m, &jse) != 0) {
            m = NULL;
            if (jse != JSE_NoMessageFoundErr) {
                cJSON_Delete(b);
                pthread_mutex_unlock(&j->mu);
                js_out_status(ob, reply, 408, "Bad Request", NULL, NULL);
                free(name);
                free(reply);
                return;
            }
        }
        cJSON_Delete(b);
    }
    pthread_mutex_unlock(&j->mu);
    if (!m)
        js_out_status(ob, reply, 404, "Message Not Found", NULL, NULL);
    else {
        direct_reply(ob, reply, name, m);
        store_msg_release(m);
    }
    free(name);
    free(reply);
}
