/* js_native: the ember_js_* functions of ember.h. Publish, get and ack call the stream and
 * consumer engines directly; stream and consumer administration goes through the same API
 * handlers the wire uses (js_api_call), so both faces give the same answers. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "account.h"
#include "js.h"
#include "js_consumer.h"
#include "js_stream.h"
#include "msg.h"

static js *conn_js(ember_conn *c, int *rc)
{
    *rc = conn_check(c);
    if (*rc)
        return NULL;
    js *j = conn_account(c)->js;
    if (!j)
        *rc = err_set(EMBER_ESTATE, "JetStream not enabled");
    return j;
}

/* An EMBER_E* code for a nats-server err_code, with "description (err_code)" recorded. */
static int map_err(int err_code, const char *desc)
{
    int rc;
    switch (err_code) {
    case 10059: case 10014: case 10037: case 10043:
        rc = EMBER_ENOTFOUND;
        break;
    case 10058: case 10013: case 10148: case 10105: case 10065:
        rc = EMBER_EEXISTS;
        break;
    case 10071: case 10164: case 10070: case 10060: case 10193:
        rc = EMBER_EWRONGSEQ;
        break;
    case 10077: case 10054: case 10047: case 10026: case 10027: case 10023: case 10028:
        rc = EMBER_ELIMIT;
        break;
    case 10076: case 10039:
        rc = EMBER_ESTATE;
        break;
    default:
        rc = EMBER_EINVAL;
    }
    return err_set(rc, "%s (%d)", desc ? desc : "error", err_code);
}

/* Run an API request; *resp gets the parsed reply on success (caller frees). */
static int api(js *j, cJSON **resp, const char *fmt, const char *body, ...)
    __attribute__((format(printf, 3, 5)));
static int api(js *j, cJSON **resp, const char *fmt, const char *body, ...)
{
    char subj[1024];
    va_list ap;
    va_start(ap, body);
    int n = vsnprintf(subj, sizeof subj, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof subj)
        return err_set(EMBER_EINVAL, "name too long");
    char *txt = NULL;
    size_t len = 0;
    if (js_api_call(j, subj, body, &txt, &len) != 0)
        return err_set(EMBER_EINVAL, "no reply to %s", subj);
    cJSON *r = cJSON_ParseWithLength(txt, len);
    free(txt);
    if (!r)
        return err_set(EMBER_EIO, "unreadable reply to %s", subj);
    cJSON *e = cJSON_GetObjectItemCaseSensitive(r, "error");
    if (e) {
        cJSON *ec = cJSON_GetObjectItemCaseSensitive(e, "err_code");
        cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "description");
        int rc = map_err(cJSON_IsNumber(ec) ? ec->valueint : 0,
                         cJSON_IsString(d) ? d->valuestring : NULL);
        cJSON_Delete(r);
        return rc;
    }
    if (resp)
        *resp = r;
    else
        cJSON_Delete(r);
    return EMBER_OK;
}

static uint64_t jnum_u64(const cJSON *o, const char *k)
{
    uint64_t v = 0;
    js_get_u64(o, k, &v, NULL);
    return v;
}

/* ------------------------------------------------------------------ streams */

EMBER_API void ember_stream_config_init(ember_stream_config *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->size = sizeof *cfg;
    cfg->max_msgs = cfg->max_bytes = cfg->max_msgs_per_subject = -1;
    cfg->max_msg_size = -1;
}

static bool name_ok(const char *n)
{
    return n && js_name_valid(n);
}

EMBER_API int ember_js_stream_create(ember_conn *c, const ember_stream_config *in)
{
    int rc;
    js *j = conn_js(c, &rc);
    if (!j)
        return rc;
    if (!in || in->size == 0 || in->size > sizeof(ember_stream_config))
        return err_set(EMBER_EINVAL, "config not initialised with ember_stream_config_init");
    ember_stream_config cfg;
    ember_stream_config_init(&cfg);
    memcpy(&cfg, in, in->size);
    if (!name_ok(cfg.name))
        return err_set(EMBER_EINVAL, "invalid stream name \"%s\"", cfg.name ? cfg.name : "");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", cfg.name);
    if (cfg.description)
        cJSON_AddStringToObject(o, "description", cfg.description);
    if (cfg.nsubjects) {
        cJSON *a = cJSON_AddArrayToObject(o, "subjects");
        for (size_t i = 0; i < cfg.nsubjects; i++)
            cJSON_AddItemToArray(a, cJSON_CreateString(cfg.subjects[i] ? cfg.subjects[i] : ""));
    }
    static const char *const ret[] = {"limits", "interest", "workqueue"};
    cJSON_AddStringToObject(o, "retention", ret[(unsigned)cfg.retention % 3]);
    cJSON_AddStringToObject(o, "storage", cfg.storage == EMBER_STORAGE_MEMORY ? "memory" : "file");
    cJSON_AddStringToObject(o, "discard", cfg.discard == EMBER_DISCARD_NEW ? "new" : "old");
    js_add_i64(o, "max_msgs", cfg.max_msgs);
    js_add_i64(o, "max_bytes", cfg.max_bytes);
    js_add_i64(o, "max_age", cfg.max_age_ms * 1000000);
    js_add_i64(o, "max_msgs_per_subject", cfg.max_msgs_per_subject);
    js_add_i64(o, "max_msg_size", cfg.max_msg_size);
    if (cfg.duplicate_window_ms > 0)
        js_add_i64(o, "duplicate_window", cfg.duplicate_window_ms * 1000000);
    cJSON_AddNumberToObject(o, "num_replicas", 1);
    cJSON_AddBoolToObject(o, "allow_direct", cfg.allow_direct);
    cJSON_AddBoolToObject(o, "allow_rollup_hdrs", cfg.allow_rollup);
    cJSON_AddBoolToObject(o, "deny_delete", cfg.deny_delete);
    cJSON_AddBoolToObject(o, "deny_purge", cfg.deny_purge);
    if (cfg.allow_msg_ttl)
        cJSON_AddBoolToObject(o, "allow_msg_ttl", true);
    char *body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!body)
        return err_set(EMBER_ENOMEM, "out of memory");
    rc = api(j, NULL, "$JS.API.STREAM.CREATE.%s", body, cfg.name);
    cJSON_free(body);
    return rc;
}

EMBER_API int ember_js_stream_delete(ember_conn *c, const char *stream)
{
    int rc;
    js *j = conn_js(c, &rc);
    if (!j)
        return rc;
    if (!name_ok(stream))
        return err_set(EMBER_EINVAL, "invalid stream name");
    return api(j, NULL, "$JS.API.STREAM.DELETE.%s", NULL, stream);
}

EMBER_API int ember_js_stream_purge(ember_conn *c, const char *stream, const char *filter,
                                    uint64_t *purged)
{
    int rc;
    js *j = conn_js(c, &rc);
    if (!j)
        return rc;
    if (!name_ok(stream))
        return err_set(EMBER_EINVAL, "invalid stream name");
    char *body = NULL;
    if (filter) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "filter", filter);
        body = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
    }
    cJSON *r = NULL;
    rc = api(j, &r, "$JS.API.STREAM.PURGE.%s", body, stream);
    cJSON_free(body);
    if (rc == EMBER_OK) {
        if (purged)
            *purged = jnum_u64(r, "purged");
        cJSON_Delete(r);
    }
    return rc;
}

EMBER_API int ember_js_stream_info(ember_conn *c, const char *stream, ember_stream_info *out)
{
    int rc;
    js *j = conn_js(c, &rc);
    if (!j)
        return rc;
    if (!name_ok(stream) || !out)
        return err_set(EMBER_EINVAL, "invalid stream name or out");
    cJSON *r = NULL;
    rc = api(j, &r, "$JS.API.STREAM.INFO.%s", NULL, stream);
    if (rc)
        return rc;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(r, "state");
    memset(out, 0, sizeof *out);
    out->msgs = jnum_u64(st, "messages");
    out->bytes = jnum_u64(st, "bytes");
    out->first_seq = jnum_u64(st, "first_seq");
    out->last_seq = jnum_u64(st, "last_seq");
    out->num_subjects = jnum_u64(st, "num_subjects");
    out->consumers = jnum_u64(st, "consumer_count");
    cJSON_Delete(r);
    return EMBER_OK;
}

int js_conn_stream(ember_conn *c, const char *name, const char *missing, jstream **out)
{
    int rc;
    js *j = conn_js(c, &rc);
    if (!j)
        return rc;
    pthread_mutex_lock(&j->mu);
    jstream *s = js_stream_lookup(j, name);
    if (s)
        js_stream_retain(s);
    pthread_mutex_unlock(&j->mu);
    if (!s)
        return missing ? err_set(EMBER_ENOTFOUND, "%s", missing) : map_err(10059, "stream not found");
    *out = s;
    return EMBER_OK;
}

/* ------------------------------------------------------------------ publish */

/* The stream whose subjects take subj, retained; NULL if none. */
static jstream *stream_for_subject(js *j, const char *subj, size_t len)
{
    jstream *found = NULL;
    pthread_mutex_lock(&j->mu);
    for (jstream *s = j->streams; s && !found; s = s->next) {
        if (s->deleted)
            continue;
        for (size_t i = 0; i < s->cfg.nsubjects; i++)
            if (js_subj_match(s->cfg.subjects[i], subj, len)) {
                found = s;
                break;
            }
    }
    if (found)
        js_stream_retain(found);
    pthread_mutex_unlock(&j->mu);
    return found;
}

static int ack_status(const js_puback *a)
{
    if (a->jse < 0)
        return EMBER_OK;
    return map_err(js_err(a->jse)->err_code, a->err_desc);
}

typedef struct pub_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int status;
    char err[512];
    ember_pub_ack ack;
} pub_wait;

static void on_sync_ack(void *ud, const js_puback *a)
{
    pub_wait *w = ud;
    int st = ack_status(a);
    pthread_mutex_lock(&w->mu);
    w->status = st;
    if (st)
        snprintf(w->err, sizeof w->err, "%s", ember_last_error());
    w->ack.seq = a->seq;
    w->ack.duplicate = a->duplicate;
    snprintf(w->ack.stream, sizeof w->ack.stream, "%s", a->stream ? a->stream : "");
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

typedef struct pub_async {
    ember_pub_ack_fn fn;     /* one of the two */
    ember_kv_put_fn seq_fn;
    void *ud;
} pub_async;

static void on_async_ack(void *ud, const js_puback *a)
{
    pub_async *p = ud;
    int st = ack_status(a);
    if (p->seq_fn) {
        p->seq_fn(p->ud, st, st ? 0 : a->seq);
        free(p);
        return;
    }
    ember_pub_ack ack;
    memset(&ack, 0, sizeof ack);
    ack.seq = a->seq;
    ack.duplicate = a->duplicate;
    snprintf(ack.stream, sizeof ack.stream, "%s", a->stream ? a->stream : "");
    p->fn(p->ud, st, st ? NULL : &ack);
    free(p);
}

/* Store m in its stream (fn called with the result) and give it to core subscribers. */
static int publish(ember_conn *c, ember_msg *m, js_puback_fn fn, void *ud)
{
    int rc;
    js *j = conn_js(c, &rc);
    if (!j)
        return rc;
    if (!m)
        return err_set(EMBER_EINVAL, "message is NULL");
    if (!js_subj_valid(m->subject, false))
        return err_set(EMBER_EINVAL, "invalid publish subject \"%s\"", m->subject);
    server *srv = conn_server(c);
    if ((int64_t)(m->data_len + m->hdr_len) > srv->opts.max_payload)
        return err_set(EMBER_EMAXPAYLOAD, "maximum payload exceeded: %zu > %lld",
                       m->data_len + m->hdr_len, (long long)srv->opts.max_payload);
    jstream *s = stream_for_subject(j, m->subject, m->subject_len);
    if (!s)
        return err_set(EMBER_ENOTFOUND, "no stream matches subject \"%s\"", m->subject);
    m->flags |= MSG_F_FROZEN;
    rc = js_stream_publish(s, m->subject, m->subject_len, m->hdr, m->hdr_len, m->data,
                           m->data_len, fn, ud);
    js_stream_release(s);
    if (rc)
        return err_set(rc, "publish to stream failed: %s", ember_strerror(rc));
    /* core subscribers of the subject get it too, as over the wire */
    msgview mv;
    memset(&mv, 0, sizeof mv);
    mv.subject = m->subject;
    mv.subject_len = m->subject_len;
    mv.hdr = m->hdr;
    mv.hdr_len = m->hdr_len;
    mv.data = m->data;
    mv.data_len = m->data_len;
    mv.blk = m;
    mv.skip_internal = true;
    conn_publish_view(c, &mv, NULL);
    return EMBER_OK;
}

EMBER_API int ember_js_publish(ember_conn *c, ember_msg *m, ember_pub_ack *ack)
{
    pub_wait w;
    memset(&w, 0, sizeof w);
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    int rc = publish(c, m, on_sync_ack, &w);
    if (rc == EMBER_OK) {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        rc = w.status;
        if (rc)
            err_set(rc, "%s", w.err);
        else if (ack)
            *ack = w.ack;
    }
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    return rc;
}

static int publish_async(ember_conn *c, ember_msg *m, ember_pub_ack_fn fn,
                         ember_kv_put_fn seq_fn, void *userdata)
{
    if (!fn && !seq_fn)
        return err_set(EMBER_EINVAL, "fn is NULL");
    pub_async *p = malloc(sizeof *p);
    if (!p)
        return err_set(EMBER_ENOMEM, "out of memory");
    p->fn = fn;
    p->seq_fn = seq_fn;
    p->ud = userdata;
    int rc = publish(c, m, on_async_ack, p);
    if (rc)
        free(p);
    return rc;
}

EMBER_API int ember_js_publish_async(ember_conn *c, ember_msg *m, ember_pub_ack_fn fn,
                                     void *userdata)
{
    return publish_async(c, m, fn, NULL, userdata);
}

int js_publish_async_seq(ember_conn *c, ember_msg *m, ember_kv_put_fn fn, void *ud)
{
    return publish_async(c, m, NULL, fn, ud);
}

/* ------------------------------------------------------------------ get */

static int build_get(const char *stream, store_msg *sm, ember_msg **out)
{
    char ts[64], seq[24];
    js_time_str(ts, sizeof ts, sm->ts);
    snprintf(seq, sizeof seq, "%llu", (unsigned long long)sm->seq);
    size_t extra = 64 + strlen(stream) + sm->subj_len + strlen(ts) + strlen(seq);
    size_t base = sm->hdr_len >= 12 ? sm->hdr_len - 2 : 0; /* drop the final CRLF */
    char *h = malloc(base + extra + 16);
    if (!h)
        return err_set(EMBER_ENOMEM, "out of memory");
    size_t n;
    if (base) {
        memcpy(h, sm->hdr, base);
        n = base;
    } else {
        n = (size_t)sprintf(h, "NATS/1.0\r\n");
    }
    n += (size_t)sprintf(h + n, "Nats-Stream: %s\r\nNats-Subject: %.*s\r\nNats-Sequence: %s\r\n"
                                "Nats-Time-Stamp: %s\r\n\r\n",
                         stream, (int)sm->subj_len, sm->subj, seq, ts);
    *out = msg_build(sm->subj, sm->subj_len, NULL, 0, h, n, sm->data, sm->data_len);
    free(h);
    return *out ? EMBER_OK : err_set(EMBER_ENOMEM, "out of memory");
}

static int get_common(ember_conn *c, const char *stream, uint64_t seq, const char *last,
                      ember_msg **out)
{
    int rc;
    js *j = conn_js(c, &rc);
    if (!j)
        return rc;
    if (!out || !name_ok(stream))
        return err_set(EMBER_EINVAL, "invalid stream name or out");
    *out = NULL;
    jstream *s;
    if ((rc = js_conn_stream(c, stream, NULL, &s)))
        return rc;
    store_msg *sm = NULL;
    rc = last ? store_load_last(s->st, last, &sm) : store_load(s->st, seq, &sm);
    if (rc == EMBER_OK) {
        rc = build_get(s->name, sm, out);
        store_msg_release(sm);
    } else if (rc == EMBER_ENOTFOUND) {
        rc = map_err(10037, "no message found");
    } else {
        rc = err_set(rc, "load failed: %s", store_strerror(rc));
    }
    js_stream_release(s);
    return rc;
}

EMBER_API int ember_js_get(ember_conn *c, const char *stream, uint64_t seq, ember_msg **out)
{
    return get_common(c, stream, seq, NULL, out);
}

EMBER_API int ember_js_get_last(ember_conn *c, const char *stream, const char *subject,
                                ember_msg **out)
{
    if (!subject || !js_subj_valid(subject, true))
        return err_set(EMBER_EINVAL, "invalid subject");
    return get_common(c, stream, 0, subject, out);
}

EMBER_API int ember_js_delete_msg(ember_conn *c, const char *stream, uint64_t seq)
{
    int rc;
    js *j = conn_js(c, &rc);
    if (!j)
        return rc;
    if (!name_ok(stream))
        return err_set(EMBER_EINVAL, "invalid stream name");
    char body[64];
    snprintf(body, sizeof body, "{\"seq\":%llu}", (unsigned long long)seq);
    return api(j, NULL, "$JS.API.STREAM.MSG.DELETE.%s", body, stream);
}

/* ------------------------------------------------------------------ consumers */

EMBER_API void ember_consumer_config_init(ember_consumer_config *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->size = sizeof *cfg;
    cfg->max_deliver = -1;
}

EMBER_API int ember_js_consumer_create(ember_conn *c, const char *stream,
                                       const ember_consumer_config *in, char *name,
                                       size_t cap)
{
    int rc;
    js *j = conn_js(c, &rc);
    if (!j)
        return rc;
    if (!name_ok(stream))
        return err_set(EMBER_EINVAL, "invalid stream name");
    ember_consumer_config cfg;
    ember_consumer_config_init(&cfg);
    if (in) {
        if (in->size == 0 || in->size > sizeof cfg)
            return err_set(EMBER_EINVAL, "config not initialised with ember_consumer_config_init");
        memcpy(&cfg, in, in->size);
    }
    if (cfg.durable_name && !name_ok(cfg.durable_name))
        return err_set(EMBER_EINVAL, "invalid durable name \"%s\"", cfg.durable_name);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "stream_name", stream);
    /* create, not update: a different config for an existing name is EMBER_EEXISTS */
    cJSON_AddStringToObject(o, "action", "create");
    cJSON *cc = cJSON_AddObjectToObject(o, "config");
    if (cfg.durable_name)
        cJSON_AddStringToObject(cc, "durable_name", cfg.durable_name);
    if (cfg.filter_subject)
        cJSON_AddStringToObject(cc, "filter_subject", cfg.filter_subject);
    static const char *const dp[] = {"all", "last", "new", "by_start_sequence",
                                     "last_per_subject"};
    cJSON_AddStringToObject(cc, "deliver_policy", dp[(unsigned)cfg.deliver_policy % 5]);
    if (cfg.deliver_policy == EMBER_DELIVER_POLICY_BY_START_SEQUENCE)
        js_add_u64(cc, "opt_start_seq", cfg.opt_start_seq);
    static const char *const ap[] = {"explicit", "none", "all"};
    cJSON_AddStringToObject(cc, "ack_policy", ap[(unsigned)cfg.ack_policy % 3]);
    if (cfg.ack_wait_ms > 0)
        js_add_i64(cc, "ack_wait", cfg.ack_wait_ms * 1000000);
    if (cfg.max_deliver != 0)
        js_add_i64(cc, "max_deliver", cfg.max_deliver);
    if (cfg.max_ack_pending > 0)
        js_add_i64(cc, "max_ack_pending", cfg.max_ack_pending);
    if (cfg.inactive_threshold_ms > 0)
        js_add_i64(cc, "inactive_threshold", cfg.inactive_threshold_ms * 1000000);
    char *body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!body)
        return err_set(EMBER_ENOMEM, "out of memory");
    cJSON *r = NULL;
    if (cfg.durable_name)
        rc = api(j, &r, "$JS.API.CONSUMER.CREATE.%s.%s", body, stream, cfg.durable_name);
    else
        rc = api(j, &r, "$JS.API.CONSUMER.CREATE.%s", body, stream);
    cJSON_free(body);
    if (rc)
        return rc;
    const char *nm = js_get_str(r, "name", NULL);
    if (name && cap) {
        if (!nm || strlen(nm) >= cap) {
            cJSON_Delete(r);
            return err_set(EMBER_EINVAL, "name buffer too small");
        }
        strcpy(name, nm);
    }
    cJSON_Delete(r);
    return EMBER_OK;
}

EMBER_API int ember_js_consumer_delete(ember_conn *c, const char *stream, const char *consumer)
{
    int rc;
    js *j = conn_js(c, &rc);
    if (!j)
        return rc;
    if (!name_ok(stream) || !name_ok(consumer))
        return err_set(EMBER_EINVAL, "invalid stream or consumer name");
    return api(j, NULL, "$JS.API.CONSUMER.DELETE.%s.%s", NULL, stream, consumer);
}

EMBER_API int ember_js_consumer_info(ember_conn *c, const char *stream, const char *consumer,
                                     ember_consumer_info *out)
{
    int rc;
    js *j = conn_js(c, &rc);
    if (!j)
        return rc;
    if (!name_ok(stream) || !name_ok(consumer) || !out)
        return err_set(EMBER_EINVAL, "invalid stream or consumer name, or out");
    cJSON *r = NULL;
    rc = api(j, &r, "$JS.API.CONSUMER.INFO.%s.%s", NULL, stream, consumer);
    if (rc)
        return rc;
    memset(out, 0, sizeof *out);
    out->num_pending = jnum_u64(r, "num_pending");
    out->num_ack_pending = jnum_u64(r, "num_ack_pending");
    out->num_redelivered = jnum_u64(r, "num_redelivered");
    out->delivered_stream_seq =
        jnum_u64(cJSON_GetObjectItemCaseSensitive(r, "delivered"), "stream_seq");
    out->ack_floor_stream_seq =
        jnum_u64(cJSON_GetObjectItemCaseSensitive(r, "ack_floor"), "stream_seq");
    cJSON_Delete(r);
    return EMBER_OK;
}

EMBER_API int ember_js_fetch(ember_conn *c, const char *stream, const char *consumer,
                             ember_msg **msgs, int max, int timeout_ms)
{
    int rc;
    js *j = conn_js(c, &rc);
    if (!j)
        return rc;
    if (!name_ok(stream) || !name_ok(consumer) || !msgs || max <= 0 || timeout_ms < 0)
        return err_set(EMBER_EINVAL, "invalid stream, consumer, msgs, max or timeout");
    char inbox[64], nuid[23];
    nuid_next(nuid);
    snprintf(inbox, sizeof inbox, "_INBOX.%s", nuid);
    ember_sub *sub;
    rc = ember_conn_subscribe(&sub, c, inbox, NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL);
    if (rc)
        return rc;
    char subj[600], body[128];
    int n = snprintf(subj, sizeof subj, "$JS.API.CONSUMER.MSG.NEXT.%s.%s", stream, consumer);
    if (n < 0 || (size_t)n >= sizeof subj) {
        ember_sub_unsubscribe(sub);
        return err_set(EMBER_EINVAL, "names too long");
    }
    if (timeout_ms == 0)
        snprintf(body, sizeof body, "{\"batch\":%d,\"no_wait\":true}", max);
    else
        snprintf(body, sizeof body, "{\"batch\":%d,\"expires\":%lld}", max,
                 (long long)timeout_ms * 1000000ll);
    msgview mv;
    memset(&mv, 0, sizeof mv);
    mv.subject = subj;
    mv.subject_len = (size_t)n;
    mv.reply = inbox;
    mv.reply_len = strlen(inbox);
    mv.data = body;
    mv.data_len = strlen(body);
    js_outbox ob;
    js_outbox_init(&ob);
    js_api_handle(j, &mv, &ob);
    js_outbox_send(j, &ob);
    int got = 0;
    bool saw_status = false;
    uint64_t deadline = time_mono_ms() + (uint64_t)(timeout_ms ? timeout_ms : 100) + 1000;
    rc = EMBER_OK;
    while (got < max) {
        uint64_t now = time_mono_ms();
        if (now >= deadline)
            break;
        ember_msg *m = NULL;
        int r = ember_sub_next_msg(sub, &m, (int)(deadline - now));
        if (r == EMBER_ETIMEDOUT)
            break;
        if (r == EMBER_ESLOWCONSUMER)
            continue;
        if (r) {
            rc = r;
            break;
        }
        int status = ember_msg_status(m);
        if (status && status != 100)
            saw_status = true;
        if (status) {
            /* 404 No Messages / 408 Request Timeout / 409 ...: the request is over; a
             * 100 heartbeat is not */
            if (status == 100) {
                ember_msg_release(m);
                continue;
            }
            if (status == 503 && got == 0)
                rc = map_err(10014, "consumer not found");
            if (status == 409 && got == 0) {
                size_t rl = 0;
                const char *raw = ember_msg_headers_raw(m, &rl);
                const char *d = raw ? strchr(raw, ' ') : NULL;
                d = d ? strchr(d + 1, ' ') : NULL;
                char desc[256];
                snprintf(desc, sizeof desc, "%s", d ? d + 1 : "request failed");
                desc[strcspn(desc, "\r\n")] = 0;
                rc = !strcasecmp(desc, "Consumer Deleted") ? err_set(EMBER_ENOTFOUND, "%s", desc)
                                                          : err_set(EMBER_ELIMIT, "%s", desc);
            }
            ember_msg_release(m);
            break;
        }
        msgs[got++] = m;
    }
    ember_sub_unsubscribe(sub);
    if (rc && got == 0)
        return rc;
    if (got == 0 && !saw_status) {
        /* no answer at all: as with nats-server, a pull for a consumer that does not
         * exist is dropped; tell the host why */
        cJSON *r = NULL;
        int irc = api(j, &r, "$JS.API.CONSUMER.INFO.%s.%s", NULL, stream, consumer);
        cJSON_Delete(r);
        if (irc)
            return irc;
    }
    return got;
}

/* ------------------------------------------------------------------ acks */

static int ack_with(ember_conn *c, const ember_msg *m, const char *body)
{
    int rc;
    js *j = conn_js(c, &rc);
    if (!j)
        return rc;
    if (!m || !m->reply || strncmp(m->reply, "$JS.ACK.", 8))
        return err_set(EMBER_EINVAL, "not a JetStream message (no $JS.ACK reply subject)");
    msgview mv;
    memset(&mv, 0, sizeof mv);
    mv.subject = m->reply;
    mv.subject_len = m->reply_len;
    mv.data = body;
    mv.data_len = strlen(body);
    js_outbox ob;
    js_outbox_init(&ob);
    js_consumer_ack(j, &mv, &ob);
    js_outbox_send(j, &ob);
    return EMBER_OK;
}

EMBER_API int ember_js_ack(ember_conn *c, const ember_msg *m) { return ack_with(c, m, "+ACK"); }

EMBER_API int ember_js_nak(ember_conn *c, const ember_msg *m, int64_t delay_ms)
{
    char body[64];
    if (delay_ms > 0)
        snprintf(body, sizeof body, "-NAK {\"delay\":%lld}", (long long)delay_ms * 1000000ll);
    else
        snprintf(body, sizeof body, "-NAK");
    return ack_with(c, m, body);
}

EMBER_API int ember_js_in_progress(ember_conn *c, const ember_msg *m)
{
    return ack_with(c, m, "+WPI");
}

EMBER_API int ember_js_term(ember_conn *c, const ember_msg *m) { return ack_with(c, m, "+TERM"); }

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

EMBER_API int ember_js_msg_meta(const ember_msg *m, ember_js_meta *out)
{
    if (!m || !out)
        return err_set(EMBER_EINVAL, "message or out is NULL");
    memset(out, 0, sizeof *out);
    if (m->reply && !strncmp(m->reply, "$JS.ACK.", 8)) {
        const char *t[16];
        size_t tl[16];
        int n = js_subj_tokens(m->reply, m->reply_len, t, tl, 16);
        int b;
        if (n == 9)
            b = 4; /* $JS.ACK.<stream>.<consumer>.<delivered>... */
        else if (n >= 11)
            b = 6; /* $JS.ACK.<domain>.<hash>.<stream>.<consumer>.<delivered>... */
        else
            return err_set(EMBER_EINVAL, "malformed ack subject");
        uint64_t ts = 0;
        if (!parse_u64(t[b], tl[b], &out->num_delivered) ||
            !parse_u64(t[b + 1], tl[b + 1], &out->stream_seq) ||
            !parse_u64(t[b + 2], tl[b + 2], &out->consumer_seq) ||
            !parse_u64(t[b + 3], tl[b + 3], &ts) ||
            !parse_u64(t[b + 4], tl[b + 4], &out->num_pending))
            return err_set(EMBER_EINVAL, "malformed ack subject");
        out->timestamp_ns = (int64_t)ts;
        return EMBER_OK;
    }
    const char *v;
    size_t vl;
    if (js_hdr_get(m->hdr, m->hdr_len, "Nats-Sequence", &v, &vl) &&
        parse_u64(v, vl, &out->stream_seq)) {
        if (js_hdr_get(m->hdr, m->hdr_len, "Nats-Time-Stamp", &v, &vl) && vl < 64) {
            char buf[64];
            memcpy(buf, v, vl);
            buf[vl] = 0;
            int64_t ns;
            if (js_time_parse(buf, &ns) == 0)
                out->timestamp_ns = ns;
        }
        return EMBER_OK;
    }
    return err_set(EMBER_EINVAL, "not a JetStream message");
}
