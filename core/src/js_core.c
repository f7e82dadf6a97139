/* js_core: the JetStream engine's shared core: errors, outbox, the JS thread, and the
 * JSON / time / base64 / header / subject helpers every JetStream module uses. */
#define _GNU_SOURCE
#include "js.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "account.h"
#include "js_consumer.h"
#include "js_stream.h"

/* ------------------------------------------------------------------ errors */

static const js_err_info js_errs[JSE__COUNT] = {
#define JSE(name, code, err_code, desc) {code, err_code, desc},
#include "js_errors.inc"
#undef JSE
};

const js_err_info *js_err(int jse)
{
    if (jse < 0 || jse >= JSE__COUNT)
        return &js_errs[JSE_BadRequestErr];
    return &js_errs[jse];
}

const char *js_err_vtext(char *buf, size_t cap, int jse, va_list ap)
{
    const char *t = js_err(jse)->desc;
    size_t o = 0;
    bool args_done = false;
    if (cap == 0)
        return buf;
    while (*t && o + 1 < cap) {
        if (*t == '{') {
            const char *end = strchr(t, '}');
            if (end) {
                const char *a = args_done ? NULL : va_arg(ap, const char *);
                if (!a)
                    args_done = true;
                if (a) {
                    size_t n = strlen(a);
                    if (n > cap - 1 - o)
                        n = cap - 1 - o;
                    memcpy(buf + o, a, n);
                    o += n;
                } else if (o >= 2 && buf[o - 2] == ':' && buf[o - 1] == ' ') {
                    /* no argument: "invalid JSON: {err}" reads "invalid JSON" */
                    o -= 2;
                }
                t = end + 1;
                continue;
            }
        }
        buf[o++] = *t++;
    }
    buf[o] = 0;
    return buf;
}

const char *js_err_text(char *buf, size_t cap, int jse, ...)
{
    va_list ap;
    va_start(ap, jse);
    js_err_vtext(buf, cap, jse, ap);
    va_end(ap);
    return buf;
}

static cJSON *err_obj(int jse, va_list ap)
{
    char desc[1024];
    js_err_vtext(desc, sizeof desc, jse, ap);
    const js_err_info *e = js_err(jse);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "code", e->code);
    cJSON_AddNumberToObject(o, "err_code", e->err_code);
    cJSON_AddStringToObject(o, "description", desc);
    return o;
}

cJSON *js_api_error(const char *type, int jse, ...)
{
    cJSON *r = cJSON_CreateObject();
    if (type)
        cJSON_AddStringToObject(r, "type", type);
    va_list ap;
    va_start(ap, jse);
    cJSON_AddItemToObject(r, "error", err_obj(jse, ap));
    va_end(ap);
    return r;
}

void js_add_error(cJSON *resp, int jse, ...)
{
    va_list ap;
    va_start(ap, jse);
    cJSON_DeleteItemFromObject(resp, "error");
    cJSON_AddItemToObject(resp, "error", err_obj(jse, ap));
    va_end(ap);
}

/* ------------------------------------------------------------------ outbox */

struct js_out {
    js_out *next;
    msgview mv;
    char buf[];
};

void js_outbox_init(js_outbox *ob)
{
    ob->head = NULL;
    ob->tail = &ob->head;
}

void js_out_msg(js_outbox *ob, const char *dsubj, const char *subj, size_t subj_len,
                const char *reply, const char *hdr, size_t hdr_len, const void *data,
                size_t data_len)
{
    if (!subj)
        return;
    size_t dl = dsubj ? strlen(dsubj) : 0, rl = reply ? strlen(reply) : 0;
    if (!hdr)
        hdr_len = 0;
    if (!data)
        data_len = 0;
    js_out *o = malloc(sizeof *o + subj_len + 1 + dl + 1 + rl + 1 + hdr_len + data_len + 1);
    if (!o)
        return;
    memset(&o->mv, 0, sizeof o->mv);
    char *p = o->buf;
    memcpy(p, subj, subj_len);
    p[subj_len] = 0;
    o->mv.subject = p;
    o->mv.subject_len = subj_len;
    p += subj_len + 1;
    if (dsubj) {
        memcpy(p, dsubj, dl + 1);
        o->mv.dsubj = p;
        o->mv.dsubj_len = dl;
        p += dl + 1;
    }
    if (reply) {
        memcpy(p, reply, rl + 1);
        o->mv.reply = p;
        o->mv.reply_len = rl;
        p += rl + 1;
    }
    if (hdr_len) {
        memcpy(p, hdr, hdr_len);
        o->mv.hdr = p;
        o->mv.hdr_len = hdr_len;
        p += hdr_len;
    }
    if (data_len)
        memcpy(p, data, data_len);
    p[data_len] = 0;
    o->mv.data = p;
    o->mv.data_len = data_len;
    o->next = NULL;
    *ob->tail = o;
    ob->tail = &o->next;
}

void js_out_json(js_outbox *ob, const char *to, cJSON *resp)
{
    if (!resp)
        return;
    if (to && *to) {
        char *txt = cJSON_PrintUnformatted(resp);
        if (txt) {
            js_out_msg(ob, NULL, to, strlen(to), NULL, NULL, 0, txt, strlen(txt));
            cJSON_free(txt);
        }
    }
    cJSON_Delete(resp);
}

void js_out_status(js_outbox *ob, const char *to, int code, const char *desc,
                   const char *extra_hdrs, const char *reply)
{
    if (!to || !*to)
        return;
    char stack[512];
    size_t el = extra_hdrs ? strlen(extra_hdrs) : 0, dl = desc ? strlen(desc) : 0;
    size_t need = 32 + dl + el;
    char *h = need <= sizeof stack ? stack : malloc(need);
    if (!h)
        return;
    int n = snprintf(h, need, "NATS/1.0 %d%s%s\r\n%s\r\n", code, dl ? " " : "", desc ? desc : "",
                     extra_hdrs ? extra_hdrs : "");
    if (n > 0)
        js_out_msg(ob, NULL, to, strlen(to), reply, h, (size_t)n, NULL, 0);
    if (h != stack)
        free(h);
}

void js_outbox_send(js *j, js_outbox *ob)
{
    js_out *o = ob->head;
    js_outbox_init(ob);
    while (o) {
        js_out *next = o->next;
        acc_publish(j->acc, &o->mv);
        free(o);
        o = next;
    }
}

void js_outbox_discard(js_outbox *ob)
{
    js_out *o = ob->head;
    js_outbox_init(ob);
    while (o) {
        js_out *next = o->next;
        free(o);
        o = next;
    }
}

char *js_outbox_take(js_outbox *ob, const char *to, size_t *len)
{
    size_t tl = strlen(to);
    for (js_out **pp = &ob->head; *pp; pp = &(*pp)->next) {
        js_out *o = *pp;
        if (o->mv.subject_len == tl && !memcmp(o->mv.subject, to, tl)) {
            char *d = malloc(o->mv.data_len + 1);
            if (d) {
                memcpy(d, o->mv.data, o->mv.data_len);
                d[o->mv.data_len] = 0;
                if (len)
                    *len = o->mv.data_len;
            }
            *pp = o->next;
            if (ob->tail == &o->next)
                ob->tail = pp;
            free(o);
            return d;
        }
    }
    return NULL;
}

bool js_outbox_has_error(const js_outbox *ob, const char *to, size_t to_len)
{
    for (const js_out *o = ob->head; o; o = o->next)
        if (o->mv.subject_len == to_len && !memcmp(o->mv.subject, to, to_len) &&
            o->mv.data_len && memmem(o->mv.data, o->mv.data_len, "\"error\":", 8))
            return true;
    return false;
}

/* ------------------------------------------------------------------ clocks */

int64_t js_now_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

int64_t js_now_mono(void) { return (int64_t)time_mono_ns(); }

/* ------------------------------------------------------------------ the engine */

void js_kick(js *j)
{
    if (atomic_exchange(&j->kicked, true))
        return;
    pthread_mutex_lock(&j->mu);
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

void js_kick_stream(jstream *s)
{
    atomic_store(&s->dirty, true);
    /* a stream nobody consumes or sources from gives the JS thread nothing to do now:
     * don't wake it for every message (it sees dirty on its next round) */
    if (atomic_load_explicit(&s->kick_wanted, memory_order_relaxed))
        js_kick(s->j);
}

static void *js_thread(void *arg)
{
    js *j = arg;
    pthread_mutex_lock(&j->mu);
    while (!j->stop) {
        atomic_store(&j->kicked, false);
        js_outbox ob;
        js_outbox_init(&ob);
        for (jstream *s = j->streams; s; s = s->next)
            if (atomic_exchange(&s->dirty, false))
                js_consumers_deliver(s, &ob);
        int64_t now_wall = js_now_wall();
        int64_t next_wall = js_streams_tick(j, now_wall, &ob);
        int64_t now = js_now_mono();
        int64_t next = js_consumers_tick(j, now, &ob);
        /* which streams a publish must wake us for: those with consumers, and any
         * stream when some stream mirrors or sources (its origin may be any of them) */
        bool sourcing = false;
        for (jstream *s = j->streams; s && !sourcing; s = s->next)
            sourcing = s->cfg.mirror || s->cfg.nsources;
        for (jstream *s = j->streams; s; s = s->next) {
            bool want = sourcing || s->nconsumers > 0;
            if (atomic_load_explicit(&s->kick_wanted, memory_order_relaxed) != want)
                atomic_store(&s->kick_wanted, want);
        }
        if (ob.head) {
            pthread_mutex_unlock(&j->mu);
            js_outbox_send(j, &ob);
            pthread_mutex_lock(&j->mu);
            continue; /* sending may have produced work (acks, pulls) */
        }
        if (j->stop || atomic_load(&j->kicked))
            continue;
        /* sleep until the earliest timer (at most 1 s) or a kick */
        int64_t wait = 1000000000ll;
        if (next > 0 && next - now < wait)
            wait = next - now;
        if (next_wall > 0 && next_wall - now_wall < wait)
            wait = next_wall - now_wall;
        if (wait < 0)
            wait = 0;
        if (wait > 0) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t at = (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec + wait;
            ts.tv_sec = at / 1000000000ll;
            ts.tv_nsec = at % 1000000000ll;
            pthread_cond_timedwait(&j->cv, &j->mu, &ts);
        }
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

int js_valid_domain(const char *d)
{
    if (!d || !*d)
        return -1;
    for (const char *p = d; *p; p++)
        if (*p == ' ' || *p == '.' || *p == '*' || *p == '>' || *p == '\t' || *p == '\r' ||
            *p == '\n')
            return -1;
    return 0;
}

static int mkdirs(const char *path)
{
    char *p = strdup(path);
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

/* API entry points (js_api.c) */
void js_api_subscribe_all(js *j);

/* The JetStream of one account, in <store_dir>/jetstream/<account>/streams. */
static int js_start_acc(server *srv, account *acc, char *err, size_t errcap)
{
    js *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    j->srv = srv;
    j->acc = acc;
    pthread_mutex_init(&j->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->cv, &ca);
    pthread_condattr_destroy(&ca);
    const char *base = srv->opts.store_dir;
    char tmp[4096];
    if (!base || !*base) {
        const char *t = getenv("TMPDIR");
        snprintf(tmp, sizeof tmp, "%s/nats", t && *t ? t : "/tmp");
        base = tmp;
    }
    size_t bl = strlen(base);
    size_t al = strlen(acc->name);
    j->store_dir = malloc(bl + 16);
    j->streams_dir = malloc(bl + al + 32);
    j->domain = srv->opts.jetstream_domain ? strdup(srv->opts.jetstream_domain) : NULL;
    if (!j->store_dir || !j->streams_dir) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    snprintf(j->store_dir, bl + 16, "%s/jetstream", base);
    snprintf(j->streams_dir, bl + al + 32, "%s/jetstream/%s/streams", base, acc->name);
    j->max_memory = acc->js_max_memory > 0 ? acc->js_max_memory : srv->opts.jetstream_max_memory;
    if (j->max_memory <= 0) {
        long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
        j->max_memory = pages > 0 && psz > 0 ? (int64_t)pages * psz / 4 * 3 : (1ll << 30);
    }
    j->max_store = acc->js_max_store > 0 ? acc->js_max_store
                   : srv->opts.jetstream_max_store > 0 ? srv->opts.jetstream_max_store : (1ll << 40);
    j->sync_interval_ms = srv->opts.jetstream_sync_interval_ms;
    if (mkdirs(j->streams_dir) != 0) {
        snprintf(err, errcap, "could not create storage directory - %s", strerror(errno));
        goto fail;
    }
    if (acc != srv->gacc)
        srv_log(srv, EMBER_LOG_INFO, "Enabled JetStream for account \"%s\"", acc->name);
    else
        srv_log(srv, EMBER_LOG_INFO, "Starting JetStream");
    srv_log(srv, EMBER_LOG_INFO, "  Max Memory:      %lld B", (long long)j->max_memory);
    srv_log(srv, EMBER_LOG_INFO, "  Max Storage:     %lld B", (long long)j->max_store);
    srv_log(srv, EMBER_LOG_INFO, "  Store Directory: \"%s\"", j->store_dir);
    if (j->domain)
        srv_log(srv, EMBER_LOG_INFO, "  Domain:          %s", j->domain);
    srv_log(srv, EMBER_LOG_INFO, "  API Level:       %d", JS_API_LEVEL);
    srv_log(srv, EMBER_LOG_INFO, "  Sync:            %s",
            j->sync_interval_ms ? "interval" : "always (acks after fsync)");
    acc->js = j;
    if (acc == srv->gacc)
        srv->js = j;
    pthread_mutex_lock(&j->mu);
    int rc = js_streams_recover(j, err, errcap);
    pthread_mutex_unlock(&j->mu);
    if (rc != 0) {
        srv->js = acc->js = NULL;
        pthread_mutex_lock(&j->mu);
        js_streams_close_all(j);
        pthread_mutex_unlock(&j->mu);
        goto fail;
    }
    if (pthread_create(&j->thread, NULL, js_thread, j) != 0) {
        snprintf(err, errcap, "could not start the JetStream thread");
        srv->js = acc->js = NULL;
        pthread_mutex_lock(&j->mu);
        js_streams_close_all(j);
        pthread_mutex_unlock(&j->mu);
        goto fail;
    }
    j->thread_started = true;
    js_api_subscribe_all(j);
    return 0;
fail:
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j->store_dir);
    free(j->streams_dir);
    free(j->domain);
    free(j);
    return -1;
}

int js_start(server *srv, char *err, size_t errcap)
{
    for (size_t i = 0; i < srv->naccs; i++)
        if (srv->accs[i]->js_enabled && js_start_acc(srv, srv->accs[i], err, errcap) != 0) {
            js_stop(srv);
            return -1;
        }
    return 0;
}

static void js_stop_acc(server *srv, account *acc)
{
    js *j = acc->js;
    if (!j)
        return;
    for (size_t i = 0; i < j->nsubs; i++)
        server_isub_close(srv, j->subs[i]);
    j->nsubs = 0;
    pthread_mutex_lock(&j->mu);
    j->stop = true;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    if (j->thread_started)
        pthread_join(j->thread, NULL);
    pthread_mutex_lock(&j->mu);
    js_streams_close_all(j);
    pthread_mutex_unlock(&j->mu);
    acc->js = NULL;
    if (acc == srv->gacc) {
        srv->js = NULL;
        srv_log(srv, EMBER_LOG_INFO, "JetStream stopped");
    }
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j->store_dir);
    free(j->streams_dir);
    free(j->domain);
    free(j);
}

void js_stop(server *srv)
{
    for (size_t i = 0; i < srv->naccs; i++)
        js_stop_acc(srv, srv->accs[i]);
}

/* ------------------------------------------------------------------ monitoring */

void js_get_usage(js *j, js_usage *u)
{
    memset(u, 0, sizeof *u);
    pthread_mutex_lock(&j->mu);
    js_streams_usage(j, &u->memory, &u->storage, &u->streams, &u->consumers);
    for (jstream *s = j->streams; s; s = s->next) {
        if (s->deleted || !s->st)
            continue;
        store_state ss;
        store_get_state(s->st, &ss);
        u->messages += ss.msgs;
        u->bytes += ss.bytes;
    }
    u->reserved_memory = j->mem_used > 0 ? (uint64_t)j->mem_used : 0;
    u->reserved_storage = j->store_used > 0 ? (uint64_t)j->store_used : 0;
    pthread_mutex_unlock(&j->mu);
    u->api_total = atomic_load(&j->api_total);
    u->api_errors = atomic_load(&j->api_errors);
    u->max_memory = j->max_memory;
    u->max_store = j->max_store;
    u->sync_interval_ms = j->sync_interval_ms;
    u->store_dir = j->store_dir;
    u->domain = j->domain;
}

bool js_has_stream(js *j, const char *name)
{
    pthread_mutex_lock(&j->mu);
    jstream *s = js_stream_lookup(j, name);
    bool ok = s && !s->deleted;
    pthread_mutex_unlock(&j->mu);
    return ok;
}

/* ------------------------------------------------------------------ time */

const char *js_time_str(char *buf, size_t cap, int64_t ts_ns)
{
    if (ts_ns == 0) {
        snprintf(buf, cap, "0001-01-01T00:00:00Z");
        return buf;
    }
    int64_t sec = ts_ns / 1000000000ll, ns = ts_ns % 1000000000ll;
    if (ns < 0) {
        ns += 1000000000ll;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    int n = (int)strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    if (ns && (size_t)n + 12 < cap) {
        char frac[16];
        snprintf(frac, sizeof frac, ".%09lld", (long long)ns);
        size_t fl = strlen(frac);
        while (fl > 1 && frac[fl - 1] == '0')
            frac[--fl] = 0;
        memcpy(buf + n, frac, fl + 1);
        n += (int)fl;
    }
    if ((size_t)n + 2 <= cap) {
        buf[n] = 'Z';
        buf[n + 1] = 0;
    }
    return buf;
}

int js_time_parse(const char *s, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    int64_t ns = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (isdigit((unsigned char)*p)) {
            if (digits < 9) {
                ns = ns * 10 + (*p - '0');
                digits++;
            }
            p++;
        }
        while (digits++ < 9)
            ns *= 10;
    }
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return -1;
        off = sign * (hh * 3600 + mm * 60);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    int64_t sec = (int64_t)timegm(&tm) - off;
    /* ns since the epoch fit int64 from 1678 to 2262 */
    if (sec > 9223372035ll || sec < -9223372035ll)
        return -1;
    *out = sec * 1000000000ll + ns;
    return 0;
}

/* ------------------------------------------------------------------ JSON */

void js_add_u64(cJSON *o, const char *key, uint64_t v)
{
    char b[24];
    snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    cJSON_AddRawToObject(o, key, b);
}

void js_add_i64(cJSON *o, const char *key, int64_t v)
{
    char b[24];
    snprintf(b, sizeof b, "%lld", (long long)v);
    cJSON_AddRawToObject(o, key, b);
}

bool js_get_i64(const cJSON *o, const char *key, int64_t *out, bool *bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v))
        return false;
    if (!cJSON_IsNumber(v) || !(v->valuedouble <= 9.2e18 && v->valuedouble >= -9.2e18) ||
        v->valuedouble != (double)(int64_t)v->valuedouble) {
        if (bad)
            *bad = true;
        return false;
    }
    *out = (int64_t)v->valuedouble;
    return true;
}

bool js_get_u64(const cJSON *o, const char *key, uint64_t *out, bool *bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v))
        return false;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 1.8e19) ||
        v->valuedouble != (double)(uint64_t)v->valuedouble) {
        if (bad)
            *bad = true;
        return false;
    }
    *out = (uint64_t)v->valuedouble;
    return true;
}

bool js_get_bool(const cJSON *o, const char *key, bool *out, bool *bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v))
        return false;
    if (!cJSON_IsBool(v)) {
        if (bad)
            *bad = true;
        return false;
    }
    *out = cJSON_IsTrue(v);
    return true;
}

const char *js_get_str(const cJSON *o, const char *key, bool *bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v))
        return NULL;
    if (!cJSON_IsString(v)) {
        if (bad)
            *bad = true;
        return NULL;
    }
    return v->valuestring;
}

cJSON *js_parse_body(const char *data, size_t len)
{
    size_t i = 0;
    while (i < len && isspace((unsigned char)data[i]))
        i++;
    if (i == len)
        return cJSON_CreateObject();
    cJSON *j = cJSON_ParseWithLength(data, len);
    if (!j)
        return NULL;
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* ------------------------------------------------------------------ base64 */

static const char b64std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *js_b64_encode(const void *in, size_t n)
{
    const unsigned char *p = in;
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64std[v >> 18];
        out[o++] = b64std[(v >> 12) & 63];
        out[o++] = b64std[(v >> 6) & 63];
        out[o++] = b64std[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        out[o++] = b64std[v >> 18];
        out[o++] = b64std[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64std[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = 0;
    return out;
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

void *js_b64_decode(const char *s, size_t *n)
{
    size_t len = strlen(s);
    unsigned char *out = malloc(len / 4 * 3 + 4);
    if (!out)
        return NULL;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '=')
            break;
        int v = b64val((unsigned char)s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    out[o] = 0;
    *n = o;
    return out;
}

/* ------------------------------------------------------------------ headers */

bool js_hdr_get(const char *hdr, size_t hdr_len, const char *key, const char **val,
                size_t *val_len)
{
    if (!hdr || !hdr_len)
        return false;
    size_t kl = strlen(key);
    const char *end = hdr + hdr_len;
    const char *p = memchr(hdr, '\n', hdr_len); /* skip the status line */
    const char *ci_v = NULL;
    size_t ci_l = 0;
    while (p && ++p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        const char *le = eol;
        if (le > p && le[-1] == '\r')
            le--;
        const char *colon = le > p ? memchr(p, ':', (size_t)(le - p)) : NULL;
        if (colon && (size_t)(colon - p) == kl) {
            const char *v = colon + 1;
            while (v < le && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = le;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if (!memcmp(p, key, kl)) {
                *val = v;
                *val_len = (size_t)(ve - v);
                return true;
            }
            if (!ci_v && !strncasecmp(p, key, kl)) {
                ci_v = v;
                ci_l = (size_t)(ve - v);
            }
        }
        p = eol;
    }
    if (ci_v) {
        *val = ci_v;
        *val_len = ci_l;
        return true;
    }
    return false;
}

/* ------------------------------------------------------------------ subjects */

int js_subj_tokens(const char *s, size_t len, const char **tok, size_t *toklen, int max)
{
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (n < max) {
                tok[n] = s + start;
                toklen[n] = i - start;
            }
            n++;
            start = i + 1;
        }
    }
    return n;
}

bool js_subj_match(const char *filter, const char *subj, size_t subj_len)
{
    if (!filter || !*filter || !strcmp(filter, ">"))
        return true;
    const char *f = filter;
    size_t i = 0;
    for (;;) {
        const char *fe = strchr(f, '.');
        size_t fl = fe ? (size_t)(fe - f) : strlen(f);
        size_t j = i;
        while (j < subj_len && subj[j] != '.')
            j++;
        if (fl == 1 && f[0] == '>')
            return true;
        if (!(fl == 1 && f[0] == '*') && (fl != j - i || memcmp(f, subj + i, fl)))
            return false;
        bool fmore = fe != NULL, smore = j < subj_len;
        if (!fmore || !smore)
            return fmore == smore;
        f = fe + 1;
        i = j + 1;
    }
}

static bool overlap_rec(const char *a, const char *b)
{
    for (;;) {
        const char *ae = strchr(a, '.'), *be = strchr(b, '.');
        size_t al = ae ? (size_t)(ae - a) : strlen(a), bl = be ? (size_t)(be - b) : strlen(b);
        if ((al == 1 && a[0] == '>') || (bl == 1 && b[0] == '>'))
            return true;
        bool aw = al == 1 && a[0] == '*', bw = bl == 1 && b[0] == '*';
        if (!aw && !bw && (al != bl || memcmp(a, b, al)))
            return false;
        if (!ae || !be)
            return !ae && !be;
        a = ae + 1;
        b = be + 1;
    }
}

bool js_subj_overlap(const char *a, const char *b) { return overlap_rec(a, b); }

bool js_subj_valid(const char *s, bool allow_wildcards)
{
    if (!s || !*s)
        return false;
    const char *t = s;
    for (;;) {
        const char *e = strchr(t, '.');
        size_t l = e ? (size_t)(e - t) : strlen(t);
        if (l == 0)
            return false;
        for (size_t i = 0; i < l; i++) {
            unsigned char c = (unsigned char)t[i];
            if (c <= ' ' || c == 127)
                return false;
            if ((c == '*' || c == '>') && l > 1) {
                /* a wildcard char inside a longer token is a literal for nats-server */
                continue;
            }
        }
        if (l == 1 && (t[0] == '*' || t[0] == '>')) {
            if (!allow_wildcards)
                return false;
            if (t[0] == '>' && e)
                return false;
        }
        if (!e)
            return true;
        t = e + 1;
    }
}

bool js_name_valid(const char *n)
{
    if (!n || !*n)
        return false;
    size_t l = strlen(n);
    if (l > 255)
        return false;
    for (size_t i = 0; i < l; i++) {
        unsigned char c = (unsigned char)n[i];
        if (c <= ' ' || c == '.' || c == '*' || c == '>' || c == '/' || c == '\\' || c == 127)
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ Go's JSON syntax errors */

/* nats-server answers a malformed body with 10025 "invalid JSON: <Go decoder error>";
 * this finds the first syntax error as encoding/json's scanner words it. */
typedef struct gscan {
    const unsigned char *p, *end;
    char *err;
    size_t cap;
    int depth;
} gscan;

static bool gs_fail(gscan *g, const char *ctx)
{
    if (g->p >= g->end) {
        snprintf(g->err, g->cap, "unexpected end of JSON input");
        return false;
    }
    unsigned c = *g->p;
    char q[16];
    if (c == '\'')
        snprintf(q, sizeof q, "'\\''");
    else if (c == '\\')
        snprintf(q, sizeof q, "'\\\\'");
    else if (c == '\n')
        snprintf(q, sizeof q, "'\\n'");
    else if (c == '\r')
        snprintf(q, sizeof q, "'\\r'");
    else if (c == '\t')
        snprintf(q, sizeof q, "'\\t'");
    else if (c < 0x20 || c == 0x7f)
        snprintf(q, sizeof q, "'\\x%02x'", c);
    else if (c >= 0x80)
        snprintf(q, sizeof q, "'\\u00%02x'", c);
    else
        snprintf(q, sizeof q, "'%c'", c);
    snprintf(g->err, g->cap, "invalid character %s %s", q, ctx);
    return false;
}

static void gs_ws(gscan *g)
{
    while (g->p < g->end && (*g->p == ' ' || *g->p == '\t' || *g->p == '\n' || *g->p == '\r'))
        g->p++;
}

static bool gs_value(gscan *g);

static bool gs_string(gscan *g)
{
    g->p++;
    while (g->p < g->end) {
        unsigned c = *g->p;
        if (c == '"') {
            g->p++;
            return true;
        }
        if (c < 0x20)
            return gs_fail(g, "in string literal");
        if (c == '\\') {
            g->p++;
            if (g->p >= g->end)
                break;
            if (*g->p == 'u') {
                g->p++;
                for (int i = 0; i < 4; i++, g->p++)
                    if (g->p >= g->end || !isxdigit(*g->p))
                        return gs_fail(g, "in \\u hexadecimal character escape");
                continue;
            }
            if (!strchr("\"\\/bfnrt", *g->p))
                return gs_fail(g, "in string escape code");
        }
        g->p++;
    }
    return gs_fail(g, "");
}

static bool gs_number(gscan *g)
{
    if (*g->p == '-') {
        g->p++;
        if (g->p >= g->end || !isdigit(*g->p))
            return gs_fail(g, "in numeric literal");
    }
    if (*g->p == '0') {
        g->p++;
    } else {
        while (g->p < g->end && isdigit(*g->p))
            g->p++;
    }
    if (g->p < g->end && *g->p == '.') {
        g->p++;
        if (g->p >= g->end || !isdigit(*g->p))
            return gs_fail(g, "after decimal point in numeric literal");
        while (g->p < g->end && isdigit(*g->p))
            g->p++;
    }
    if (g->p < g->end && (*g->p == 'e' || *g->p == 'E')) {
        g->p++;
        if (g->p < g->end && (*g->p == '+' || *g->p == '-'))
            g->p++;
        if (g->p >= g->end || !isdigit(*g->p))
            return gs_fail(g, "in exponent of numeric literal");
        while (g->p < g->end && isdigit(*g->p))
            g->p++;
    }
    return true;
}

static bool gs_literal(gscan *g, const char *lit)
{
    char ctx[64];
    for (size_t i = 0; lit[i]; i++, g->p++) {
        if (g->p >= g->end || *g->p != (unsigned char)lit[i]) {
            if (i == 0)
                return gs_fail(g, "looking for beginning of value");
            snprintf(ctx, sizeof ctx, "in literal %s (expecting '%c')", lit, lit[i]);
            return gs_fail(g, ctx);
        }
    }
    return true;
}

static bool gs_value(gscan *g)
{
    gs_ws(g);
    if (g->p >= g->end)
        return gs_fail(g, "");
    if (++g->depth > 10000) {
        snprintf(g->err, g->cap, "exceeded max depth");
        return false;
    }
    bool ok = true;
    switch (*g->p) {
    case '{':
        g->p++;
        gs_ws(g);
        if (g->p < g->end && *g->p == '}') {
            g->p++;
            break;
        }
        for (;;) {
            gs_ws(g);
            if (g->p >= g->end || *g->p != '"') {
                ok = gs_fail(g, "looking for beginning of object key string");
                break;
            }
            if (!(ok = gs_string(g)))
                break;
            gs_ws(g);
            if (g->p >= g->end || *g->p != ':') {
                ok = gs_fail(g, "after object key");
                break;
            }
            g->p++;
            if (!(ok = gs_value(g)))
                break;
            gs_ws(g);
            if (g->p < g->end && *g->p == ',') {
                g->p++;
                continue;
            }
            if (g->p < g->end && *g->p == '}') {
                g->p++;
                break;
            }
            ok = gs_fail(g, "after object key:value pair");
            break;
        }
        break;
    case '[':
        g->p++;
        gs_ws(g);
        if (g->p < g->end && *g->p == ']') {
            g->p++;
            break;
        }
        for (;;) {
            if (!(ok = gs_value(g)))
                break;
            gs_ws(g);
            if (g->p < g->end && *g->p == ',') {
                g->p++;
                continue;
            }
            if (g->p < g->end && *g->p == ']') {
                g->p++;
                break;
            }
            ok = gs_fail(g, "after array element");
            break;
        }
        break;
    case '"':
        ok = gs_string(g);
        break;
    case 't':
        ok = gs_literal(g, "true");
        break;
    case 'f':
        ok = gs_literal(g, "false");
        break;
    case 'n':
        ok = gs_literal(g, "null");
        break;
    default:
        if (*g->p == '-' || isdigit(*g->p))
            ok = gs_number(g);
        else
            ok = gs_fail(g, "looking for beginning of value");
    }
    g->depth--;
    return ok;
}

bool js_json_syntax_error(const char *d, size_t n, char *err, size_t cap)
{
    gscan g = {(const unsigned char *)d, (const unsigned char *)d + n, err, cap, 0};
    if (!gs_value(&g))
        return true;
    gs_ws(&g);
    if (g.p < g.end)
        return !gs_fail(&g, "after top-level value");
    return false;
}

bool js_bucket_name_valid(const char *b)
{
    if (!b || !*b || strlen(b) > 200)
        return false;
    for (const char *p = b; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return false;
    return true;
}

/* ------------------------------------------------------------------ files */

static void fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Write a file atomically and durably (tmp, fsync, rename, dir fsync). 0 or -1. */
int js_write_file_atomic(const char *dir, const char *name, const char *data, size_t len,
                             bool sync)
{
    char path[4096], tmp[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            unlink(tmp);
            return -1;
        }
        off += (size_t)w;
    }
    if (sync && fdatasync(fd) != 0) {
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    if (sync)
        fsync_dir(dir);
    return 0;
}

char *js_read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size > (64 << 20)) {
        close(fd);
        return NULL;
    }
    char *b = malloc((size_t)st.st_size + 1);
    if (!b) {
        close(fd);
        return NULL;
    }
    size_t off = 0;
    while (off < (size_t)st.st_size) {
        ssize_t r = read(fd, b + off, (size_t)st.st_size - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        off += (size_t)r;
    }
    close(fd);
    b[off] = 0;
    *len = off;
    return b;
}
