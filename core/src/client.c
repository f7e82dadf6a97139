/* client: TCP clients speaking the NATS client protocol, on the server's loop thread. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "auth.h"
#include "jwt.h"
#include "leaf.h"
#include "nkeys.h"
#include "server.h"
#include "js.h"
#include "xport.h"

void client_retain(client *c) { atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed); }

void client_release(client *c)
{
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (c->parser)
        proto_parser_free(c->parser);
    bytebuf_free(&c->ob);
    bytebuf_free(&c->wb);
    free(c->stab);
    for (size_t i = 0; i < c->nstalled; i++)
        client_release(c->stalled_producers[i]);
    free(c->stalled_producers);
    if (c->leaf)
        leaf_link_free(c);
    auth_perm_free(c->perm);
    auth_user_free(c->own_user);
    bytebuf_free(&c->held);
    if (c->xp)
        xport_client_free(c);
    free(c->name);
    free(c->lang);
    free(c->version);
    pthread_mutex_destroy(&c->mu);
    server *s = c->srv;
    free(c);
    if (s)
        server_release(s);
}

/* The TCP client whose PUB the loop thread is routing right now (for producer stalls). */
static _Thread_local client *tls_tcp_publisher;

#define CLOG(c, lvl, fmt, ...)                                                                 \
    srv_log((c)->srv, lvl, "%s:%d - cid:%llu - " fmt, (c)->ip, (c)->port,                      \
            (unsigned long long)(c)->cid, ##__VA_ARGS__)

/* ------------------------------------------------------------------ sid table */

static size_t sid_hash(const char *p, size_t n)
{
    size_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

sub *client_stab_find(client *c, const char *sid, size_t n, sub ***link)
{
    if (!c->stab)
        return NULL;
    sub **pp = &c->stab[sid_hash(sid, n) & (c->stab_cap - 1)];
    for (; *pp; pp = &(*pp)->tnext)
        if ((*pp)->sid_len == n && memcmp((*pp)->sid, sid, n) == 0) {
            if (link)
                *link = pp;
            return *pp;
        }
    return NULL;
}

int client_stab_add(client *c, sub *s)
{
    if (c->nsubs + 1 > c->stab_cap / 2 * 3 || !c->stab) {
        size_t ncap = c->stab_cap ? c->stab_cap * 2 : 16;
        sub **nt = calloc(ncap, sizeof *nt);
        if (!nt)
            return -1;
        for (size_t i = 0; i < c->stab_cap; i++)
            for (sub *x = c->stab[i], *nx; x; x = nx) {
                nx = x->tnext;
                size_t b = sid_hash(x->sid, x->sid_len) & (ncap - 1);
                x->tnext = nt[b];
                nt[b] = x;
            }
        free(c->stab);
        c->stab = nt;
        c->stab_cap = ncap;
    }
    size_t b = sid_hash(s->sid, s->sid_len) & (c->stab_cap - 1);
    s->tnext = c->stab[b];
    c->stab[b] = s;
    c->nsubs++;
    return 0;
}

void client_stab_unlink(client *c, sub **link)
{
    *link = (*link)->tnext;
    c->nsubs--;
}

static void tcp_sub_destroy(sub *s)
{
    client *c = s->cl;
    free(s->subject);
    free(s->queue);
    free(s->sid);
    free(s);
    client_release(c);
}

/* ------------------------------------------------------------------ outbound */

static void schedule_locked_flush(client *c, bool *need)
{
    *need = !c->in_flush_list;
    c->in_flush_list = true;
}

void client_schedule_flush(client *c)
{
    server *s = c->srv;
    client_retain(c);
    pthread_mutex_lock(&s->fmu);
    if (!s->loop_alive) {
        pthread_mutex_unlock(&s->fmu);
        client_release(c);
        return;
    }
    c->flush_next = s->flush_head;
    s->flush_head = c;
    if (!srv_on_loop(s))
        uv_async_send(&s->async);
    pthread_mutex_unlock(&s->fmu);
}

void client_schedule_close(client *c, int reason)
{
    server *s = c->srv;
    pthread_mutex_lock(&s->fmu);
    if (c->in_close_list || !s->loop_alive) {
        pthread_mutex_unlock(&s->fmu);
        return;
    }
    c->in_close_list = true;
    c->close_reason = reason;
    client_retain(c);
    c->close_next = s->close_head;
    s->close_head = c;
    if (!srv_on_loop(s))
        uv_async_send(&s->async);
    pthread_mutex_unlock(&s->fmu);
}

/* Append protocol bytes (loop thread or any thread), schedule a flush. */
void client_send(client *c, const char *p, size_t n)
{
    bool need = false;
    pthread_mutex_lock(&c->mu);
    if (!atomic_load(&c->closing) || c->close_after_write) {
        bytebuf_append(&c->ob, p, n);
        schedule_locked_flush(c, &need);
    }
    pthread_mutex_unlock(&c->mu);
    if (need)
        client_schedule_flush(c);
}

static void slow_consumer(client *c, int reason);

bool client_sendv(client *c, const struct iovec *v, int n)
{
    bool need = false, ok = false;
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += v[i].iov_len;
    pthread_mutex_lock(&c->mu);
    if (!atomic_load_explicit(&c->closing, memory_order_relaxed)) {
        size_t pending = c->ob.len + (c->writing ? c->wb.len : 0);
        if (pending + total > (size_t)c->srv->opts.max_pending) {
            CLOG(c, EMBER_LOG_INFO, "Slow Consumer Detected: MaxPending of %lld Exceeded",
                 (long long)c->srv->opts.max_pending);
            slow_consumer(c, CR_SLOW_CONSUMER_PENDING);
        } else if (bytebuf_reserve(&c->ob, total) == 0) {
            for (int i = 0; i < n; i++) {
                memcpy(c->ob.p + c->ob.len, v[i].iov_base, v[i].iov_len);
                c->ob.len += v[i].iov_len;
            }
            schedule_locked_flush(c, &need);
            ok = true;
        }
    }
    pthread_mutex_unlock(&c->mu);
    if (need)
        client_schedule_flush(c);
    return ok;
}

void client_send_err(client *c, const char *text)
{
    char buf[512];
    int n = snprintf(buf, sizeof buf, "-ERR '%s'\r\n", text);
    if (n > 0)
        client_send(c, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static void slow_consumer(client *c, int reason)
{
    /* c->mu held */
    if (atomic_exchange(&c->closing, true))
        return;
    atomic_fetch_add(&c->srv->slow_consumers, 1);
    client_schedule_close(c, reason);
}

bool client_tcp_deliver(client *c, sub *s, const msgview *mv)
{
    if (unlikely(c->perm != NULL)) {
        if (auth_deny_delivery(c->perm, mv->subject, mv->subject_len))
            return false;
        if (mv->reply)
            auth_note_reply(c->perm, mv->reply, mv->reply_len);
    }
    const bool with_hdr = mv->hdr && c->headers;
    size_t hlen = with_hdr ? mv->hdr_len : 0;
    size_t total = hlen + mv->data_len;
    /* control line size: op + subject + sid + reply + sizes */
    size_t need = 6 + mv->subject_len + 1 + s->sid_len + 1 + (mv->reply ? mv->reply_len + 1 : 0) +
                  48 + total + 2;
    bool flush = false;
    pthread_mutex_lock(&c->mu);
    if (atomic_load_explicit(&c->closing, memory_order_relaxed)) {
        pthread_mutex_unlock(&c->mu);
        return false;
    }
    size_t pending = c->ob.len + (c->writing ? c->wb.len : 0);
    if (pending + need > (size_t)c->srv->opts.max_pending) {
        CLOG(c, EMBER_LOG_INFO, "Slow Consumer Detected: MaxPending of %lld Exceeded",
             (long long)c->srv->opts.max_pending);
        slow_consumer(c, CR_SLOW_CONSUMER_PENDING);
        pthread_mutex_unlock(&c->mu);
        return false;
    }
    if (bytebuf_reserve(&c->ob, need)) {
        pthread_mutex_unlock(&c->mu);
        return false;
    }
    char *p = c->ob.p + c->ob.len;
    if (with_hdr) {
        memcpy(p, "HMSG ", 5);
        p += 5;
    } else {
        memcpy(p, "MSG ", 4);
        p += 4;
    }
    memcpy(p, mv->subject, mv->subject_len);
    p += mv->subject_len;
    *p++ = ' ';
    memcpy(p, s->sid, s->sid_len);
    p += s->sid_len;
    *p++ = ' ';
    if (mv->reply) {
        memcpy(p, mv->reply, mv->reply_len);
        p += mv->reply_len;
        *p++ = ' ';
    }
    if (with_hdr) {
        p += fmt_u64(p, hlen);
        *p++ = ' ';
    }
    p += fmt_u64(p, total);
    *p++ = '\r';
    *p++ = '\n';
    if (with_hdr) {
        memcpy(p, mv->hdr, hlen);
        p += hlen;
    }
    if (mv->data_len) {
        memcpy(p, mv->data, mv->data_len);
        p += mv->data_len;
    }
    *p++ = '\r';
    *p++ = '\n';
    c->ob.len = (size_t)(p - c->ob.p);
    schedule_locked_flush(c, &flush);
    client *pub = tls_tcp_publisher;
    if (unlikely(pub && pub != c && !pub->stall_pending && !pub->stalled &&
                 pending + need > (size_t)c->srv->opts.max_pending / 4 * 3)) {
        if (c->nstalled == c->stalled_cap) {
            size_t ncap = c->stalled_cap ? c->stalled_cap * 2 : 4;
            client **np = realloc(c->stalled_producers, ncap * sizeof *np);
            if (np) {
                c->stalled_producers = np;
                c->stalled_cap = ncap;
            }
        }
        if (c->nstalled < c->stalled_cap) {
            client_retain(pub);
            c->stalled_producers[c->nstalled++] = pub;
            pub->stall_pending = true;
        }
    }
    pthread_mutex_unlock(&c->mu);
    atomic_fetch_add_explicit(&c->out_msgs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->out_bytes, total, memory_order_relaxed);
    if (flush)
        client_schedule_flush(c);
    return true;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

static void producer_resume(client *p)
{
    p->stall_pending = false;
    if (p->stalled) {
        CLOG(p, EMBER_LOG_TRACE, "producer resumed");
        p->stalled = false;
        if (!p->handle_closed)
            uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read);
    }
}

/* Loop thread: resume the publishers stalled on c once its outbound drained (or always). */
static void resume_producers(client *c, bool always)
{
    pthread_mutex_lock(&c->mu);
    size_t pending = c->ob.len + (c->writing ? c->wb.len : 0);
    if (c->nstalled == 0 || (!always && pending > (size_t)c->srv->opts.max_pending / 2)) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    client **list = c->stalled_producers;
    size_t n = c->nstalled;
    c->stalled_producers = NULL;
    c->nstalled = c->stalled_cap = 0;
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        producer_resume(list[i]);
        client_release(list[i]);
    }
    free(list);
}

static void client_flush(client *c);

static void on_write(uv_write_t *req, int status)
{
    client *c = req->data;
    pthread_mutex_lock(&c->mu);
    c->writing = false;
    c->wb.len = 0;
    bool close_now = c->close_after_write && c->ob.len == 0;
    pthread_mutex_unlock(&c->mu);
    if (status < 0) {
        if (!c->handle_closed)
            client_tcp_close(c, CR_WRITE_ERROR);
    } else if (close_now) {
        client_tcp_close(c, c->close_reason);
    } else if (!c->handle_closed) {
        client_flush(c);
    }
    resume_producers(c, c->handle_closed);
    client_release(c);
}

static void client_flush(client *c)
{
    if (c->handle_closed)
        return;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        if (c->writing || (c->ob.len == 0 && likely(!c->xp || !xport_pending(c)))) {
            bool close_now = !c->writing && c->close_after_write;
            pthread_mutex_unlock(&c->mu);
            if (close_now)
                client_tcp_close(c, c->close_reason);
            return;
        }
        bytebuf t = c->wb;
        c->wb = c->ob;
        c->ob = t;
        c->ob.len = 0;
        c->writing = true;
        c->write_start_ms = time_mono_ms();
        pthread_mutex_unlock(&c->mu);

        uv_buf_t b = uv_buf_init(c->wb.p, (unsigned)c->wb.len);
        /* TLS / WebSocket: b becomes the transport's encoded bytes */
        if (unlikely(c->xp) && xport_encode(c, &b) != 0) {
            pthread_mutex_lock(&c->mu);
            c->writing = false;
            pthread_mutex_unlock(&c->mu);
            client_tcp_close(c, CR_WRITE_ERROR);
            return;
        }
        const size_t total = b.len;
        int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n == (int)total) {
            pthread_mutex_lock(&c->mu);
            c->writing = false;
            c->wb.len = 0;
            /* shrink very large idle buffers */
            if (c->wb.cap > 4 * 1024 * 1024) {
                bytebuf_free(&c->wb);
            }
            pthread_mutex_unlock(&c->mu);
            if (c->nstalled)
                resume_producers(c, false);
            continue;
        }
        if (n < 0 && n != UV_EAGAIN) {
            pthread_mutex_lock(&c->mu);
            c->writing = false;
            pthread_mutex_unlock(&c->mu);
            client_tcp_close(c, CR_WRITE_ERROR);
            return;
        }
        size_t off = n > 0 ? (size_t)n : 0;
        b = uv_buf_init(b.base + off, (unsigned)(total - off));
        c->wreq.data = c;
        client_retain(c);
        int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
        if (rc) {
            client_release(c);
            pthread_mutex_lock(&c->mu);
            c->writing = false;
            pthread_mutex_unlock(&c->mu);
            client_tcp_close(c, CR_WRITE_ERROR);
        }
        return;
    }
}

void client_flush_now(client *c) { client_flush(c); }

void server_process_pending(server *s)
{
    for (;;) {
        pthread_mutex_lock(&s->fmu);
        client *fl = s->flush_head, *cl = s->close_head;
        s->flush_head = NULL;
        s->close_head = NULL;
        pthread_mutex_unlock(&s->fmu);
        if (!fl && !cl)
            return;
        while (fl) {
            client *n = fl->flush_next;
            pthread_mutex_lock(&fl->mu);
            fl->in_flush_list = false;
            pthread_mutex_unlock(&fl->mu);
            client_flush(fl);
            client_release(fl);
            fl = n;
        }
        while (cl) {
            client *n = cl->close_next;
            client_tcp_close(cl, cl->close_reason);
            client_release(cl);
            cl = n;
        }
    }
}

/* ------------------------------------------------------------------ close */

static void on_handle_closed(uv_handle_t *h)
{
    client *c = h->data;
    server_remove_client(c->srv, c);
    client_release(c); /* the loop's reference */
}

void client_tcp_close(client *c, int reason)
{
    if (c->handle_closed)
        return;
    c->handle_closed = true;
    pthread_mutex_lock(&c->mu);
    atomic_store(&c->closing, true);
    bool writing = c->writing;
    bool flush_last = reason != CR_SLOW_CONSUMER_PENDING && reason != CR_SLOW_CONSUMER_DEADLINE;
    pthread_mutex_unlock(&c->mu);
    /* best effort: push out what is pending (e.g. a final -ERR) */
    if (unlikely(c->xp)) {
        reason = xport_close(c, reason, flush_last && !writing);
    } else if (flush_last && !writing && c->ob.len) {
        uv_buf_t b = uv_buf_init(c->ob.p, (unsigned)c->ob.len);
        uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
    for (size_t i = 0; i < c->stab_cap; i++) {
        for (sub *x = c->stab[i], *nx; x; x = nx) {
            nx = x->tnext;
            sub_unsubscribe(c->srv, x);
            sub_release(x);
        }
        c->stab[i] = NULL;
    }
    c->nsubs = 0;
    resume_producers(c, true);
    if (c->kind == CK_LEAF)
        leaf_closed(c, reason);
    else
        CLOG(c, EMBER_LOG_DEBUG, "Client connection closed: %s", close_reason_text(reason));
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* Send -ERR then close once written. */
void client_err_close(client *c, const char *text, int reason)
{
    if (text)
        client_send_err(c, text);
    pthread_mutex_lock(&c->mu);
    atomic_store(&c->closing, true);
    c->close_after_write = true;
    c->close_reason = reason;
    pthread_mutex_unlock(&c->mu);
    client_flush(c);
    /* if nothing was pending the flush closed it; otherwise on_write will */
}

/* ------------------------------------------------------------------ INFO / CONNECT */

static bool auth_required(server *s) { return server_auth_required(s); }
/* For c: websocket clients may need credentials of their own (xport_ws_auth) */
static bool client_auth_required(client *c)
{
    return server_auth_required(c->srv) || (unlikely(c->xp) && xport_ws_auth_override(c->srv) &&
                                            xport_ws_auth_of(c));
}

static void send_info(client *c)
{
    server *s = c->srv;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "server_id", s->id);
    cJSON_AddStringToObject(j, "server_name", s->o_name);
    cJSON_AddStringToObject(j, "version", EMBER_NATS_VERSION);
    cJSON_AddNumberToObject(j, "proto", 1);
    cJSON_AddStringToObject(j, "git_commit", "");
    cJSON_AddStringToObject(j, "go", "ember-" EMBER_VERSION_STRING);
    cJSON_AddStringToObject(j, "host", s->o_host);
    cJSON_AddNumberToObject(j, "port", s->bound_port);
    cJSON_AddBoolToObject(j, "headers", !s->opts.no_header_support);
    if (client_auth_required(c))
        cJSON_AddBoolToObject(j, "auth_required", true);
    cJSON_AddNumberToObject(j, "max_payload", (double)s->opts.max_payload);
    if (s->opts.jetstream)
        cJSON_AddBoolToObject(j, "jetstream", true);
    cJSON_AddNumberToObject(j, "client_id", (double)c->cid);
    if (s->opts.jetstream && s->o_domain)
        cJSON_AddStringToObject(j, "domain", s->o_domain);
    if (s->opts.jetstream)
        cJSON_AddNumberToObject(j, "api_lvl", JS_API_LEVEL);
    cJSON_AddStringToObject(j, "client_ip", c->ip);
    if (server_needs_nonce(s)) /* nkey and JWT users sign it in CONNECT */
        cJSON_AddStringToObject(j, "nonce", client_nonce(c));
    if (unlikely(s->xs))
        xport_info(c, j); /* tls_required, tls_verify; websocket host and port */
    char *txt = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!txt)
        return;
    size_t n = strlen(txt);
    char *line = malloc(n + 8);
    if (line) {
        memcpy(line, "INFO ", 5);
        memcpy(line + 5, txt, n);
        memcpy(line + 5 + n, " \r\n", 3);
        client_send(c, line, n + 8);
        free(line);
    }
    cJSON_free(txt);
}

static bool jbool(cJSON *o, const char *k, bool *out)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v)
        return true;
    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v);
        return true;
    }
    if (cJSON_IsNull(v))
        return true;
    return false;
}

static bool jstr(cJSON *o, const char *k, const char **out)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v || cJSON_IsNull(v))
        return true;
    if (!cJSON_IsString(v))
        return false;
    *out = v->valuestring;
    return true;
}

static int bcrypt_start(client *c, const char *arg, size_t len, const char *hash,
                        const char *pass);

const char *client_nonce(client *c)
{
    if (!c->nonce[0]) {
        uint8_t rnd[11];
        rand_bytes(rnd, sizeof rnd);
        char *n = nkey_b64url(rnd, sizeof rnd);
        if (n)
            snprintf(c->nonce, sizeof c->nonce, "%s", n);
        free(n);
    }
    return c->nonce;
}

bool server_credentials_ok(server *s, const char *user, const char *pass, const char *token,
                           const char *nkey, const char *sig, const char *nonce,
                           const struct auth_user **au)
{
    *au = NULL;
    if (s->trust) /* operator mode: only user JWTs (client_jwt_auth) */
        return false;
    if (s->users) {
        *au = auth_check(s->users, user, pass, nkey, sig, nonce);
        if (!*au && !user && !nkey && !token)
            *au = auth_no_auth_user(s->users);
        return *au != NULL;
    }
    if (s->o_user)
        return user && pass && str_eq_ct(user, s->o_user) && str_eq_ct(pass, s->o_pass);
    if (s->o_token)
        return token && str_eq_ct(token, s->o_token);
    return true;
}

int client_jwt_auth(client *c, const char *ujwt, const char *sig, char *why, size_t cap)
{
    server *s = c->srv;
    if (!ujwt) {
        snprintf(why, cap, "no user JWT in CONNECT");
        return -1;
    }
    jwt_user ju;
    if (jwt_user_check(s->trust, ujwt, sig, c->nonce, (int64_t)time(NULL), &ju, why, cap) != 0)
        return -1;
    char desc[100];
    snprintf(desc, sizeof desc, "User \"%s\"", ju.pub);
    auth_user *au = auth_user_new(&ju.perms, ju.account, desc);
    account *acc = server_account(s, ju.account);
    int64_t exp = ju.expires;
    jwt_user_free(&ju);
    if (!au || !acc) {
        auth_user_free(au);
        snprintf(why, cap, "out of memory");
        return -1;
    }
    auth_perm_free(c->perm);
    auth_user_free(c->own_user);
    c->own_user = au;
    c->auth_user = au;
    c->perm = auth_perm_new(au);
    if (!c->connected)
        c->acc = acc;
    c->auth_expires = exp;
    return 0;
}

static int process_connect(client *c, const char *arg, size_t len)
{
    server *s = c->srv;
    cJSON *j = cJSON_ParseWithLength(arg, len);
    bool ok = j && cJSON_IsObject(j);
    bool verbose = c->verbose, pedantic = c->pedantic, echo = c->echo, headers = c->headers,
         nr = c->no_responders;
    const char *name = NULL, *lang = NULL, *version = NULL, *user = NULL, *pass = NULL,
               *token = NULL, *nkey = NULL, *sig = NULL, *ujwt = NULL;
    int protocol = c->protocol;
    if (ok) {
        ok = jbool(j, "verbose", &verbose) && jbool(j, "pedantic", &pedantic) &&
             jbool(j, "echo", &echo) && jbool(j, "headers", &headers) &&
             jbool(j, "no_responders", &nr) && jstr(j, "name", &name) &&
             jstr(j, "lang", &lang) && jstr(j, "version", &version) &&
             jstr(j, "user", &user) && jstr(j, "pass", &pass) && jstr(j, "auth_token", &token) &&
             jstr(j, "nkey", &nkey) && jstr(j, "sig", &sig) && jstr(j, "jwt", &ujwt);
        cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "protocol");
        if (p && cJSON_IsNumber(p))
            protocol = p->valueint;
        else if (p && !cJSON_IsNull(p))
            ok = false;
    }
    if (!ok) {
        cJSON_Delete(j);
        CLOG(c, EMBER_LOG_ERROR, "Client parser ERROR: invalid CONNECT JSON");
        client_err_close(c, NULL, CR_PROTOCOL);
        return -1;
    }
    c->verbose = verbose;
    c->pedantic = pedantic;
    c->echo = echo;
    c->headers = headers && !s->opts.no_header_support;
    c->no_responders = nr;
    c->protocol = protocol;
    free(c->name);
    free(c->lang);
    free(c->version);
    c->name = name ? strdup(name) : NULL;
    c->lang = lang ? strdup(lang) : NULL;
    c->version = version ? strdup(version) : NULL;
    /* authentication */
    bool authed = true;
    if (s->trust) { /* operator mode: a user JWT and the nonce signed by its key */
        char why[256];
        if (client_jwt_auth(c, ujwt, sig, why, sizeof why) != 0) {
            CLOG(c, EMBER_LOG_ERROR, "authentication error - %s", why);
            cJSON_Delete(j);
            client_err_close(c, "Authorization Violation", CR_AUTH);
            return -1;
        }
    } else if (s->users && c->bcrypt_state == 0 && user && !nkey) {
        const char *hash = auth_bcrypt_hash(s->users, user);
        if (hash) { /* slow: check it on the thread pool, read nothing meanwhile */
            int rc = bcrypt_start(c, arg, len, hash, pass);
            cJSON_Delete(j);
            if (rc) {
                client_err_close(c, NULL, CR_AUTH);
                return -1;
            }
            return 1;
        }
    }
    if (s->trust) {
        /* done above */
    } else if (s->users) {
        const auth_user *au = c->bcrypt_state >= 2
                                  ? (c->bcrypt_state == 2 ? auth_find_user(s->users, user) : NULL)
                                  : auth_check(s->users, user, pass, nkey, sig, c->nonce);
        if (!au && !user && !nkey && !token) {
            /* a websocket override brings its own no_auth_user (xport_check_options) */
            const xport_ws_auth *wa = unlikely(c->xp) ? xport_ws_auth_of(c) : NULL;
            au = wa && wa->override
                     ? (wa->no_auth_user ? auth_find_user(s->users, wa->no_auth_user) : NULL)
                     : auth_no_auth_user(s->users);
        }
        authed = au != NULL;
        if (!authed) { /* nats-server 2.9's authViolation log line */
            if (auth_users_need_nonce(s->users))
                CLOG(c, EMBER_LOG_ERROR, "authentication error - Nkey \"%s\"", nkey ? nkey : "");
            else
                CLOG(c, EMBER_LOG_ERROR, "authentication error - User \"%s\"", user ? user : "");
            cJSON_Delete(j);
            client_err_close(c, "Authorization Violation", CR_AUTH);
            return -1;
        }
        c->auth_user = au;
        auth_perm_free(c->perm);
        c->perm = auth_perm_new(au);
        if (!c->connected) { /* its subscriptions live in its account: fixed once */
            account *acc = server_account(s, auth_user_account(au));
            c->acc = acc ? acc : s->gacc;
        }
    } else if (unlikely(c->xp) && xport_ws_auth_override(s) && xport_ws_auth_of(c)) {
        const xport_ws_auth *wa = xport_ws_auth_of(c); /* websocket { authorization {} } */
        if (wa->token)
            authed = token && str_eq_ct(token, wa->token);
        else if (wa->user)
            authed = user && pass && str_eq_ct(user, wa->user) && str_eq_ct(pass, wa->pass);
        else
            authed = false;
    } else if (s->o_user)
        authed = user && pass && str_eq_ct(user, s->o_user) && str_eq_ct(pass, s->o_pass);
    else if (s->o_token)
        authed = token && str_eq_ct(token, s->o_token);
    if (!authed) {
        CLOG(c, EMBER_LOG_ERROR, "authentication error"); /* as nats-server 2.9 */
        cJSON_Delete(j);
        client_err_close(c, "Authorization Violation", CR_AUTH);
        return -1;
    }
    cJSON_Delete(j); /* user, pass, ... pointed into it */
    if (protocol < 0 || protocol > 1) {
        client_err_close(c, "invalid client protocol", CR_PROTOCOL);
        return -1;
    }
    if (c->no_responders && !c->headers) {
        client_err_close(c, "no responders requires headers support", CR_PROTOCOL);
        return -1;
    }
    c->connected = true;
    proto_parser_require_connect(c->parser, 0);
    if (c->verbose)
        client_send(c, "+OK\r\n", 5);
    return 0;
}

/* ------------------------------------------------------------------ ops */

static void send_no_responders(client *c, const msgview *mv)
{
    /* deliver a 503 status to the publisher's own subscription matching the reply */
    for (size_t i = 0; i < c->stab_cap; i++)
        for (sub *x = c->stab[i]; x; x = x->tnext) {
            if (atomic_load(&x->closed))
                continue;
            if (!subject_matches(x->subject, x->subject_len, mv->reply, mv->reply_len))
                continue;
            char hdr[NO_RESPONDERS_HDR_CAP];
            msgview nr;
            no_responders_view(&nr, hdr, sizeof hdr, mv);
            client_tcp_deliver(c, x, &nr);
            return;
        }
}

static void process_pub(client *c, const proto_op *op)
{
    server *s = c->srv;
    atomic_fetch_add_explicit(&c->in_msgs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->in_bytes, op->hdr.len + op->payload.len, memory_order_relaxed);
    /* as nats-server: the error is reported, the message still goes through */
    if (c->pedantic && !subject_is_valid_literal(op->subject.p, op->subject.len))
        client_send_err(c, "Invalid Publish Subject");
    if (unlikely(c->perm != NULL) && !auth_can_publish(c->perm, op->subject.p, op->subject.len)) {
        char t[600];
        snprintf(t, sizeof t, "Permissions Violation for Publish to \"%.*s\"",
                 (int)(op->subject.len > 400 ? 400 : op->subject.len), op->subject.p);
        client_send_err(c, t);
        CLOG(c, EMBER_LOG_ERROR, "Publish Violation - %s, Subject \"%.*s\"",
             auth_user_desc(c->auth_user), (int)op->subject.len, op->subject.p);
        return;
    }
    if (c->verbose)
        client_send(c, "+OK\r\n", 5);
    msgview mv = {0};
    mv.subject = op->subject.p;
    mv.subject_len = op->subject.len;
    if (op->reply.len) {
        mv.reply = op->reply.p;
        mv.reply_len = op->reply.len;
    }
    if (op->kind == PROTO_OP_HPUB && op->hdr.len) {
        mv.hdr = op->hdr.p;
        mv.hdr_len = op->hdr.len;
    }
    mv.data = op->payload.p;
    mv.data_len = op->payload.len;
    tls_tcp_publisher = c;
    int n = server_route(s, c, &mv);
    tls_tcp_publisher = NULL;
    if (n == 0 && mv.reply && c->headers && c->no_responders)
        send_no_responders(c, &mv);
}

static void process_sub(client *c, const proto_op *op)
{
    server *s = c->srv;
    if (!subject_is_valid_sub(op->subject.p, op->subject.len)) {
        client_send_err(c, "Invalid Subject");
        return;
    }
    if (op->queue.len && !subject_is_valid_queue(op->queue.p, op->queue.len)) {
        client_send_err(c, "Invalid Queue Name");
        return;
    }
    if (unlikely(c->perm != NULL) && !auth_can_subscribe(c->perm, op->subject.p, op->subject.len,
                                                         op->queue.p, op->queue.len)) {
        char t[700];
        int sl = (int)(op->subject.len > 300 ? 300 : op->subject.len);
        int ql = (int)(op->queue.len > 200 ? 200 : op->queue.len);
        if (op->queue.len) {
            snprintf(t, sizeof t, "Permissions Violation for Subscription to \"%.*s\" using queue \"%.*s\"",
                     sl, op->subject.p, ql, op->queue.p);
            CLOG(c, EMBER_LOG_ERROR, "Subscription Violation - %s, Subject \"%.*s\", Queue: \"%.*s\", SID %.*s",
                 auth_user_desc(c->auth_user), sl, op->subject.p, ql, op->queue.p,
                 (int)op->sid.len, op->sid.p);
        } else {
            snprintf(t, sizeof t, "Permissions Violation for Subscription to \"%.*s\"", sl,
                     op->subject.p);
            CLOG(c, EMBER_LOG_ERROR, "Subscription Violation - %s, Subject \"%.*s\", SID %.*s",
                 auth_user_desc(c->auth_user), sl, op->subject.p, (int)op->sid.len, op->sid.p);
        }
        client_send_err(c, t);
        return;
    }
    if (s->opts.max_subscriptions > 0 && c->nsubs >= (size_t)s->opts.max_subscriptions) {
        CLOG(c, EMBER_LOG_ERROR, "Maximum Subscriptions Exceeded (max=%d)",
             s->opts.max_subscriptions);
        client_send_err(c, "maximum subscriptions exceeded");
        return;
    }
    if (client_stab_find(c, op->sid.p, op->sid.len, NULL)) {
        if (c->verbose)
            client_send(c, "+OK\r\n", 5);
        return;
    }
    sub *x = calloc(1, sizeof *x);
    if (!x)
        return;
    atomic_init(&x->refs, 1); /* the sid table's */
    x->cl = c;
    client_retain(c);
    x->destroy = tcp_sub_destroy;
    x->subject = strndup(op->subject.p, op->subject.len);
    x->subject_len = op->subject.len;
    x->queue = op->queue.len ? strndup(op->queue.p, op->queue.len) : NULL;
    x->sid = strndup(op->sid.p, op->sid.len);
    x->sid_len = op->sid.len;
    if (!x->subject || !x->sid || (op->queue.len && !x->queue) || client_stab_add(c, x)) {
        sub_release(x);
        return;
    }
    if (sublist_insert(c->acc->sl, x->subject, x->queue, x) != 0) {
        sub **link;
        if (client_stab_find(c, x->sid, x->sid_len, &link)) {
            *link = x->tnext;
            c->nsubs--;
        }
        atomic_store(&x->closed, true);
        sub_release(x);
        client_send_err(c, "Invalid Subject");
        return;
    }
    atomic_fetch_add(&s->nsubs, 1);
    leaf_sub_changed(s, x, 1);
    if (c->verbose)
        client_send(c, "+OK\r\n", 5);
}

static void process_unsub(client *c, const proto_op *op)
{
    sub **link = NULL;
    sub *x = client_stab_find(c, op->sid.p, op->sid.len, &link);
    if (x) {
        long long max = op->max;
        if (max > 0 && sub_delivered(x) < (unsigned long long)max &&
            !atomic_load(&x->closed)) {
            atomic_store(&x->max, max);
            /* a delivery may have raced past the new max */
            if (sub_delivered(x) >= (unsigned long long)max)
                goto remove;
        } else {
        remove:
            *link = x->tnext;
            c->nsubs--;
            sub_unsubscribe(c->srv, x);
            sub_release(x);
        }
    }
    if (c->verbose)
        client_send(c, "+OK\r\n", 5);
}

static int on_op(void *ctx, const proto_op *op)
{
    client *c = ctx;
    if (atomic_load_explicit(&c->closing, memory_order_relaxed))
        return 1;
    if (!c->connected && op->kind != PROTO_OP_CONNECT && client_auth_required(c)) {
        CLOG(c, EMBER_LOG_ERROR, "Authorization Error");
        client_err_close(c, "Authorization Violation", CR_AUTH);
        return 1;
    }
    switch (op->kind) {
    case PROTO_OP_CONNECT:
        if (process_connect(c, op->arg.p, op->arg.len))
            return 1;
        break;
    case PROTO_OP_HPUB:
        if (!c->headers) {
            /* nats-server: headers not negotiated -> protocol violation, closed silently */
            CLOG(c, EMBER_LOG_ERROR, "Client parser ERROR: message headers not supported");
            client_err_close(c, NULL, CR_PROTOCOL);
            return 1;
        }
        process_pub(c, op);
        break;
    case PROTO_OP_PUB:
        process_pub(c, op);
        break;
    case PROTO_OP_SUB:
        process_sub(c, op);
        break;
    case PROTO_OP_UNSUB:
        process_unsub(c, op);
        break;
    case PROTO_OP_PING:
        client_send(c, "PONG\r\n", 6);
        break;
    case PROTO_OP_PONG:
        c->pings_out = 0;
        break;
    case PROTO_OP_ERR:
        /* nats-server closes a client that sends -ERR */
        client_err_close(c, NULL, CR_CLIENT);
        return 1;
    default:
        break; /* INFO, +OK from a client: ignored */
    }
    return atomic_load_explicit(&c->closing, memory_order_relaxed) ? 1 : 0;
}

/* ------------------------------------------------------------------ read */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    client *c = h->data;
    buf->base = c->srv->read_buf;
    buf->len = c->srv->read_buf_len;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

/* ------------------------------------------------------------------ bcrypt off the loop */

typedef struct bcrypt_job {
    uv_work_t w;
    client *c;
    char *arg, *hash, *pass;
    size_t len;
    bool ok;
} bcrypt_job;

static void bcrypt_work(uv_work_t *w)
{
    bcrypt_job *b = w->data;
    b->ok = auth_bcrypt_ok(b->hash, b->pass);
}

static void bcrypt_job_free(bcrypt_job *b)
{
    if (b->pass) {
        OPENSSL_cleanse(b->pass, strlen(b->pass));
        free(b->pass);
    }
    if (b->arg) {
        OPENSSL_cleanse(b->arg, b->len);
        free(b->arg);
    }
    free(b->hash);
    free(b);
}

static void bcrypt_done(uv_work_t *w, int status)
{
    bcrypt_job *b = w->data;
    client *c = b->c;
    if (status == 0 && !c->handle_closed && !atomic_load(&c->closing)) {
        c->bcrypt_state = b->ok ? 2 : 3;
        int rc = process_connect(c, b->arg, b->len);
        c->bcrypt_state = 0;
        bytebuf held = c->held;
        memset(&c->held, 0, sizeof c->held);
        if (rc == 0 && held.len)
            client_input(c, held.p, held.len); /* what came after CONNECT, in order */
        bytebuf_free(&held);
        if (rc == 0 && !c->handle_closed && !atomic_load(&c->closing) && !c->stalled &&
            c->bcrypt_state == 0)
            uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        server_process_pending(c->srv);
    }
    bcrypt_job_free(b);
    client_release(c);
}

static int bcrypt_start(client *c, const char *arg, size_t len, const char *hash,
                        const char *pass)
{
    bcrypt_job *b = calloc(1, sizeof *b);
    if (!b)
        return -1;
    b->c = c;
    b->len = len;
    b->arg = malloc(len ? len : 1);
    b->hash = strdup(hash);
    b->pass = strdup(pass ? pass : "");
    if (!b->arg || !b->hash || !b->pass) {
        bcrypt_job_free(b);
        return -1;
    }
    memcpy(b->arg, arg, len);
    b->w.data = b;
    client_retain(c);
    if (uv_queue_work(&c->srv->loop, &b->w, bcrypt_work, bcrypt_done) != 0) {
        client_release(c);
        bcrypt_job_free(b);
        return -1;
    }
    c->bcrypt_state = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
    return 0;
}

void client_input(client *c, char *p, size_t n)
{
    if (unlikely(c->bcrypt_state == 1)) { /* CONNECT is being checked: keep the rest */
        bytebuf_append(&c->held, p, n);
        return;
    }
    size_t used = 0;
    proto_status st2 = proto_parse(c->parser, p, n, c->kind == CK_LEAF ? leaf_on_op : on_op, c,
                                   &used);
    if (unlikely(st2 == PROTO_STOPPED && c->bcrypt_state == 1 && !c->handle_closed)) {
        if (used < n)
            bytebuf_append(&c->held, p + used, n - used);
        return;
    }
    if (st2 < 0 && !c->handle_closed && !atomic_load(&c->closing)) {
        const char *text = proto_status_err_text(st2);
        if (st2 == PROTO_ERR_MAX_PAYLOAD)
            CLOG(c, EMBER_LOG_ERROR, "%s", "Maximum Payload Violation");
        else if (st2 == PROTO_ERR_AUTH)
            CLOG(c, EMBER_LOG_ERROR, "Authorization Error");
        else
            CLOG(c, EMBER_LOG_ERROR, "Client parser ERROR (%d)", (int)st2);
        client_err_close(c, text,
                         st2 == PROTO_ERR_MAX_PAYLOAD ? CR_MAX_PAYLOAD
                         : st2 == PROTO_ERR_AUTH      ? CR_AUTH
                                                      : CR_PROTOCOL);
    }
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    client *c = st->data;
    server *s = c->srv;
    if (nread < 0) {
        client_tcp_close(c, nread == UV_EOF ? CR_CLIENT : CR_READ_ERROR);
        server_process_pending(s);
        return;
    }
    if (nread == 0)
        return;
    c->last_in_ms = time_mono_ms();
    client_retain(c);
    if (unlikely(c->xp))
        xport_input(c, buf->base, (size_t)nread); /* TLS / WebSocket: calls client_input */
    else
        client_input(c, buf->base, (size_t)nread);
    if (c->stall_pending && !c->handle_closed && !c->stalled) {
        c->stall_pending = false;
        c->stalled = true;
        c->stall_start_ms = time_mono_ms();
        uv_read_stop((uv_stream_t *)&c->tcp);
        CLOG(c, EMBER_LOG_TRACE, "producer stalled");
    }
    client_release(c);
    server_process_pending(s);
}

static void on_unregistered_closed(uv_handle_t *h) { client_release(h->data); }

client *client_tcp_alloc(server *s, int kind)
{
    client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    atomic_init(&c->refs, 1);
    server_retain(s);
    c->srv = s;
    c->acc = s->gacc;
    c->cid = atomic_fetch_add(&s->next_cid, 1);
    c->kind = kind;
    pthread_mutex_init(&c->mu, NULL);
    c->verbose = c->pedantic = c->echo = true;
    c->start_ms = c->last_in_ms = c->last_ping_ms = time_mono_ms();
    uv_tcp_init(&s->loop, &c->tcp);
    c->tcp.data = c;
    return c;
}

void client_tcp_begin(client *c)
{
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    client_flush(c);
}

void client_tcp_peer(client *c)
{
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->ip, sizeof c->ip);
            c->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&ss, c->ip, sizeof c->ip);
            c->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
    }
}

void client_send_info(client *c) { send_info(c); }

void client_tcp_accept(server *s) { client_accept_from(s, (uv_stream_t *)&s->listener, false); }

void client_accept_from(server *s, uv_stream_t *l, bool ws)
{
    client *c = client_tcp_alloc(s, CK_TCP);
    if (!c)
        return;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        c->handle_closed = true;
        uv_close((uv_handle_t *)&c->tcp, on_unregistered_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    client_tcp_peer(c);
    c->parser = proto_parser_new(PROTO_MODE_CLIENT, (size_t)s->opts.max_control_line,
                                 (size_t)s->opts.max_payload);
    if (c->parser && (auth_required(s) || (ws && xport_ws_auth_override(s))))
        proto_parser_require_connect(c->parser, 1); /* nats-server's first-byte rule */
    if (!c->parser || server_add_client(s, c) != 0) {
        c->handle_closed = true;
        uv_close((uv_handle_t *)&c->tcp, on_unregistered_closed);
        return;
    }
    CLOG(c, EMBER_LOG_DEBUG, "Client connection created");
    bool info_now = true; /* TLS handshake first / WebSocket upgrade: INFO comes later */
    if (unlikely(s->xs) && xport_accept_client(c, ws, &info_now) != 0) {
        client_tcp_close(c, CR_READ_ERROR);
        return;
    }
    if (info_now)
        send_info(c);
    if (s->opts.max_connections > 0 && atomic_load(&s->nconns) > (unsigned long long)s->opts.max_connections) {
        CLOG(c, EMBER_LOG_ERROR, "maximum connections exceeded");
        client_err_close(c, "maximum connections exceeded", CR_MAX_CONNECTIONS);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    client_flush(c);
}

void client_tcp_housekeeping(client *c, uint64_t now)
{
    server *s = c->srv;
    if (c->handle_closed)
        return;
    if (c->stalled && now - c->stall_start_ms >= 1000)
        producer_resume(c); /* bounded stall, as nats-server's (at most 1 s) */
    pthread_mutex_lock(&c->mu);
    bool stuck = c->writing && now - c->write_start_ms > (uint64_t)s->opts.write_deadline_ms;
    if (stuck)
        slow_consumer(c, CR_SLOW_CONSUMER_DEADLINE);
    pthread_mutex_unlock(&c->mu);
    if (stuck) {
        CLOG(c, EMBER_LOG_INFO, "Slow Consumer Detected: WriteDeadline of %lldms exceeded",
             (long long)s->opts.write_deadline_ms);
        return;
    }
    if (!c->connected) {
        if (unlikely(c->xp) && !xport_ready(c)) {
            xport_housekeeping(c, now); /* TLS / WebSocket handshake timeouts */
            return;
        }
        if (c->kind == CK_LEAF) {
            leaf_housekeeping_unconnected(c, now);
            return;
        }
        const xport_ws_auth *wa = unlikely(c->xp) ? xport_ws_auth_of(c) : NULL;
        int64_t ato = wa && wa->timeout_ms > 0 ? wa->timeout_ms : s->opts.auth_timeout_ms;
        if (client_auth_required(c) && now - c->start_ms >= (uint64_t)ato) {
            CLOG(c, EMBER_LOG_ERROR, "Authentication Timeout");
            client_err_close(c, "Authentication Timeout", CR_AUTH_TIMEOUT);
        }
        return;
    }
    if (unlikely(c->auth_expires) && (int64_t)time(NULL) >= c->auth_expires) {
        CLOG(c, EMBER_LOG_DEBUG, "User JWT expired");
        client_err_close(c, "User Authentication Expired", CR_AUTH_EXPIRED);
        return;
    }
    if (s->opts.ping_interval_ms > 0 &&
        now - c->last_ping_ms >= (uint64_t)s->opts.ping_interval_ms) {
        c->last_ping_ms = now;
        if (c->pings_out + 1 > s->opts.max_pings_out) {
            CLOG(c, EMBER_LOG_DEBUG, "Stale Client Connection - Closing");
            client_err_close(c, "Stale Connection", CR_STALE);
            return;
        }
        /* skip the ping when the client was active within the interval (as nats-server) */
        if (now - c->last_in_ms < (uint64_t)s->opts.ping_interval_ms && c->pings_out == 0)
            return;
        c->pings_out++;
        client_send(c, "PING\r\n", 6);
    }
}
