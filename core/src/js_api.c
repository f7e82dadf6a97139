/* js_api: the $JS.API subject space: internal subscriptions and dispatch to the stream
 * and consumer handlers, account info, and no-responders for what Ember does not serve
 * (as nats-server, which subscribes each API subject on its own). */
#define _GNU_SOURCE
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "js.h"
#include "js_consumer.h"
#include "js_stream.h"

#define MAX_TOKS 32

static bool tok_is(const char *t, size_t l, const char *s)
{
    return strlen(s) == l && !memcmp(t, s, l);
}

/* nats-server subscribes $JS.API.> as a whole (API accounting), so a request it does not
 * serve gets no reply at all: the client times out rather than hearing no responders. */
static void no_reply(js_outbox *ob, const msgview *mv)
{
    (void)ob;
    (void)mv;
}

static void account_info(js *j, const msgview *mv, js_outbox *ob)
{
    if (!mv->reply)
        return;
    uint64_t mem = 0, sto = 0, streams = 0, consumers = 0;
    int64_t rmem, rsto;
    pthread_mutex_lock(&j->mu);
    js_streams_usage(j, &mem, &sto, &streams, &consumers);
    rmem = j->mem_used;
    rsto = j->store_used;
    pthread_mutex_unlock(&j->mu);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "type", JS_TYPE("account_info_response"));
    js_add_u64(r, "memory", mem);
    js_add_u64(r, "storage", sto);
    js_add_u64(r, "reserved_memory", rmem > 0 ? (uint64_t)rmem : 0);
    js_add_u64(r, "reserved_storage", rsto > 0 ? (uint64_t)rsto : 0);
    js_add_u64(r, "streams", streams);
    js_add_u64(r, "consumers", consumers);
    cJSON *lim = cJSON_AddObjectToObject(r, "limits");
    js_add_i64(lim, "max_memory", -1);
    js_add_i64(lim, "max_storage", -1);
    js_add_i64(lim, "max_streams", -1);
    js_add_i64(lim, "max_consumers", -1);
    js_add_i64(lim, "max_ack_pending", -1);
    js_add_i64(lim, "memory_max_stream_bytes", -1);
    js_add_i64(lim, "storage_max_stream_bytes", -1);
    cJSON_AddBoolToObject(lim, "max_bytes_required", false);
    if (j->domain)
        cJSON_AddStringToObject(r, "domain", j->domain);
    cJSON *api = cJSON_AddObjectToObject(r, "api");
    cJSON_AddNumberToObject(api, "level", JS_API_LEVEL);
    js_add_u64(api, "total", atomic_load(&j->api_total));
    js_add_u64(api, "errors", atomic_load(&j->api_errors));
    char reply[512];
    snprintf(reply, sizeof reply, "%.*s", (int)mv->reply_len, mv->reply);
    js_out_json(ob, reply, r);
}

/* toks: the tokens after the API prefix. */
static void dispatch(js *j, const char **t, const size_t *tl, int n, const msgview *mv,
                     js_outbox *ob)
{
    if (n == 1 && tok_is(t[0], tl[0], "INFO")) {
        account_info(j, mv, ob);
        return;
    }
    if (n >= 2 && tok_is(t[0], tl[0], "STREAM")) {
        bool known =
            (n == 3 && (tok_is(t[1], tl[1], "CREATE") || tok_is(t[1], tl[1], "UPDATE") ||
                        tok_is(t[1], tl[1], "INFO") || tok_is(t[1], tl[1], "DELETE") ||
                        tok_is(t[1], tl[1], "PURGE"))) ||
            (n == 2 && (tok_is(t[1], tl[1], "NAMES") || tok_is(t[1], tl[1], "LIST"))) ||
            (n == 4 && tok_is(t[1], tl[1], "MSG") &&
             (tok_is(t[2], tl[2], "GET") || tok_is(t[2], tl[2], "DELETE")));
        if (known) {
            js_api_stream(j, t, tl, n, mv, ob);
            return;
        }
    }
    if (n >= 3 && tok_is(t[0], tl[0], "DIRECT") && tok_is(t[1], tl[1], "GET")) {
        js_api_direct_get(j, t, tl, n, mv, ob);
        return;
    }
    if (n >= 3 && tok_is(t[0], tl[0], "CONSUMER")) {
        bool known = (tok_is(t[1], tl[1], "CREATE") && n >= 3) ||
                     (n == 5 && tok_is(t[1], tl[1], "DURABLE") && tok_is(t[2], tl[2], "CREATE")) ||
                     (n == 3 && (tok_is(t[1], tl[1], "NAMES") || tok_is(t[1], tl[1], "LIST"))) ||
                     (n == 4 && (tok_is(t[1], tl[1], "INFO") || tok_is(t[1], tl[1], "DELETE") ||
                                 tok_is(t[1], tl[1], "PAUSE") || tok_is(t[1], tl[1], "UNPIN") ||
                                 tok_is(t[1], tl[1], "RESET"))) ||
                     (n == 5 && tok_is(t[1], tl[1], "MSG") && tok_is(t[2], tl[2], "NEXT"));
        if (known) {
            js_api_consumer(j, t, tl, n, mv, ob);
            return;
        }
    }
    no_reply(ob, mv);
}

/* Count the request and, when its reply carries an "error", an error (as nats-server's
 * api.total / api.errors). */
static void count(js *j, const msgview *mv, const js_outbox *ob)
{
    atomic_fetch_add(&j->api_total, 1);
    if (!mv->reply)
        return;
    if (js_outbox_has_error(ob, mv->reply, mv->reply_len))
        atomic_fetch_add(&j->api_errors, 1);
}

void js_api_handle(js *j, const msgview *mv, js_outbox *ob)
{
    const char *t[MAX_TOKS];
    size_t tl[MAX_TOKS];
    int n = js_subj_tokens(mv->subject, mv->subject_len, t, tl, MAX_TOKS);
    if (n > MAX_TOKS)
        n = MAX_TOKS;
    int skip = 2;
    if (n >= 3 && tok_is(t[2], tl[2], "API") && !tok_is(t[1], tl[1], "API"))
        skip = 3;
    if (n <= skip)
        return;
    dispatch(j, t + skip, tl + skip, n - skip, mv, ob);
    count(j, mv, ob);
}

typedef struct call_wait {
    atomic_int refs;        /* the caller and the subscription */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *data;
    size_t len;
    bool done;
} call_wait;

static void on_call_reply(void *ud, server *srv, const msgview *mv)
{
    (void)srv;
    call_wait *w = ud;
    pthread_mutex_lock(&w->mu);
    if (!w->done) {
        w->data = malloc(mv->data_len + 1);
        if (w->data) {
            memcpy(w->data, mv->data, mv->data_len);
            w->data[mv->data_len] = 0;
            w->len = mv->data_len;
        }
        w->done = true;
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
}

static void call_wait_release(void *p)
{
    call_wait *w = p;
    if (atomic_fetch_sub(&w->refs, 1) != 1)
        return;
    free(w->data);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

int js_api_call(js *j, const char *subject, const char *body, char **reply, size_t *reply_len)
{
    static atomic_ullong next;
    char to[64];
    snprintf(to, sizeof to, "_EMBER.NATIVE.%llu", (unsigned long long)atomic_fetch_add(&next, 1));
    *reply = NULL;
    msgview mv;
    memset(&mv, 0, sizeof mv);
    mv.subject = subject;
    mv.subject_len = strlen(subject);
    mv.reply = to;
    mv.reply_len = strlen(to);
    mv.data = body ? body : "";
    mv.data_len = body ? strlen(body) : 0;
    /* a reply may come later (once a purge or delete is durable, from the store's
     * flusher thread): listen before asking */
    call_wait *w = calloc(1, sizeof *w);
    if (!w)
        return EMBER_ENOMEM;
    atomic_init(&w->refs, 2);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    sub *s = acc_isub(j->acc, to, NULL, on_call_reply, w, call_wait_release);
    if (!s) {
        call_wait_release(w);
        call_wait_release(w);
        return EMBER_ENOMEM;
    }
    js_outbox ob;
    js_outbox_init(&ob);
    js_api_handle(j, &mv, &ob);
    *reply = js_outbox_take(&ob, to, reply_len);
    js_outbox_send(j, &ob);
    int rc = 0;
    if (!*reply) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 30;
        pthread_mutex_lock(&w->mu);
        while (!w->done)
            if (pthread_cond_timedwait(&w->cv, &w->mu, &dl) != 0)
                break;
        if (w->done && w->data) {
            *reply = w->data;
            *reply_len = w->len;
            w->data = NULL;
        } else {
            rc = EMBER_ENOTFOUND;
        }
        pthread_mutex_unlock(&w->mu);
    }
    server_isub_close(j->srv, s);
    call_wait_release(w);
    return rc;
}

char *js_api_peek(js *j, const char *subject, const char *body, size_t *len)
{
    static const char to[] = "_EMBER.MONITOR";
    msgview mv;
    memset(&mv, 0, sizeof mv);
    mv.subject = subject;
    mv.subject_len = strlen(subject);
    mv.reply = to;
    mv.reply_len = sizeof to - 1;
    mv.data = body ? body : "";
    mv.data_len = body ? strlen(body) : 0;
    const char *t[MAX_TOKS];
    size_t tl[MAX_TOKS];
    int n = js_subj_tokens(mv.subject, mv.subject_len, t, tl, MAX_TOKS);
    if (n > MAX_TOKS)
        n = MAX_TOKS;
    *len = 0;
    if (n <= 2)
        return NULL;
    js_outbox ob;
    js_outbox_init(&ob);
    dispatch(j, t + 2, tl + 2, n - 2, &mv, &ob); /* not count(): monitoring is no API use */
    char *reply = js_outbox_take(&ob, to, len);
    js_outbox_send(j, &ob);
    return reply;
}

static void on_api(void *ud, server *srv, const msgview *mv)
{
    js *j = ud;
    (void)srv;
    js_outbox ob;
    js_outbox_init(&ob);
    js_api_handle(j, mv, &ob);
    js_outbox_send(j, &ob);
}

static void on_ack(void *ud, server *srv, const msgview *mv)
{
    js *j = ud;
    (void)srv;
    js_outbox ob;
    js_outbox_init(&ob);
    js_consumer_ack(j, mv, &ob);
    js_outbox_send(j, &ob);
}

static void on_fc(void *ud, server *srv, const msgview *mv)
{
    js *j = ud;
    (void)srv;
    js_outbox ob;
    js_outbox_init(&ob);
    js_consumer_fc(j, mv, &ob);
    js_outbox_send(j, &ob);
}

/* $JS.<domain>.API.$KV.> -> $KV.> and $JS.<domain>.API.$OBJ.> -> $OBJ.> (nats-server's
 * generateJSMappingTable): a KV or object-store client given the domain publishes there. */
static void on_domain_map(void *ud, server *srv, const msgview *mv)
{
    (void)srv;
    js *j = ud;
    size_t skip = 4 + strlen(j->domain) + 5; /* the length of "$JS.<domain>.API." */
    if (mv->subject_len <= skip)
        return;
    msgview out = *mv;
    out.subject = mv->subject + skip;
    out.subject_len = mv->subject_len - skip;
    out.dsubj = NULL;
    out.dsubj_len = 0;
    out.blk = NULL;
    out.blk_owned = false;
    acc_publish(j->acc, &out);
}

void js_api_subscribe_all(js *j);
void js_api_subscribe_all(js *j)
{
    account *acc = j->acc;
    j->subs[j->nsubs++] = acc_isub(acc, "$JS.API.>", NULL, on_api, j, NULL);
    if (j->domain) {
        char subj[300];
        snprintf(subj, sizeof subj, "$JS.%s.API.>", j->domain);
        j->subs[j->nsubs++] = acc_isub(acc, subj, NULL, on_api, j, NULL);
        snprintf(subj, sizeof subj, "$JS.%s.API.$KV.>", j->domain);
        j->subs[j->nsubs++] = acc_isub(acc, subj, NULL, on_domain_map, j, NULL);
        snprintf(subj, sizeof subj, "$JS.%s.API.$OBJ.>", j->domain);
        j->subs[j->nsubs++] = acc_isub(acc, subj, NULL, on_domain_map, j, NULL);
    }
    j->subs[j->nsubs++] = acc_isub(acc, "$JS.ACK.>", NULL, on_ack, j, NULL);
    j->subs[j->nsubs++] = acc_isub(acc, "$JS.FC.>", NULL, on_fc, j, NULL);
    size_t k = 0;
    for (size_t i = 0; i < j->nsubs; i++)
        if (j->subs[i])
            j->subs[k++] = j->subs[i];
    j->nsubs = k;
}
