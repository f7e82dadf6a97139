#define _GNU_SOURCE
#include "account.h"
#include "auth.h"
#include "jwt.h"
#include "leaf.h"
#include "tlsio.h"
#include "xport.h"
#include "monitor.h"
#include "server.h"
#include "js.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static _Thread_local server *tls_loop_server;

bool srv_on_loop(server *s) { return tls_loop_server == s; }

EMBER_API void ember_server_options_init(ember_server_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->host = "0.0.0.0";
    o->port = 0;
    o->max_payload = 1024 * 1024;
    o->max_control_line = 4096;
    o->max_pending = 64ll * 1024 * 1024;
    o->max_connections = 64 * 1024;
    o->max_subscriptions = 0;
    o->ping_interval_ms = 2 * 60 * 1000;
    o->max_pings_out = 2;
    o->write_deadline_ms = 10 * 1000;
    o->auth_timeout_ms = 2 * 1000;
    o->log_level = EMBER_LOG_INFO;
    o->leaf_reconnect_ms = 1000;
    o->tls_timeout_ms = 2000;
    o->ws_handshake_timeout_ms = 2000;
    o->http_host = NULL; /* the client host (nats-server: HTTPHost defaults to Host) */
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

void srv_log(server *s, int level, const char *fmt, ...)
{
    /* emitted under log_mu: a log file being replaced is never written after fclose */
    pthread_mutex_lock(&s->log_mu);
    if (LOG_ON(&s->lg, level)) {
        va_list ap;
        va_start(ap, fmt);
        log_vemit(&s->lg, level, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&s->log_mu);
}

bool srv_log_on(server *s, int level)
{
    pthread_mutex_lock(&s->log_mu);
    bool on = LOG_ON(&s->lg, level);
    pthread_mutex_unlock(&s->log_mu);
    return on;
}

EMBER_API void ember_server_log_to_stderr(ember_server *s, int level)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->log_mu);
    s->lg.to_stderr = true;
    s->lg.level = level;
    pthread_mutex_unlock(&s->log_mu);
}

EMBER_API int ember_server_log_to_file(ember_server *s, const char *path, int level)
{
    if (!s || !path)
        return err_set(EMBER_EINVAL, "server or path is NULL");
    FILE *f = fopen(path, "ae");
    if (!f)
        return err_set(EMBER_EIO, "cannot open log file \"%s\": %s", path, strerror(errno));
    pthread_mutex_lock(&s->log_mu);
    FILE *old = s->lg.file;
    s->lg.file = f;
    s->lg.level = level;
    pthread_mutex_unlock(&s->log_mu);
    if (old)
        fclose(old);
    return EMBER_OK;
}

EMBER_API void ember_server_set_logger(ember_server *s, int level, ember_log_fn fn,
                                       void *userdata)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->log_mu);
    s->lg.fn = fn;
    s->lg.userdata = userdata;
    s->lg.level = level;
    pthread_mutex_unlock(&s->log_mu);
}


EMBER_API int ember_server_new(ember_server **out, const ember_server_options *opts)
{
    if (!out)
        return err_set(EMBER_EINVAL, "out is NULL");
    *out = NULL;
    asym_init(); /* before any connection can exist: see util.h */
    ember_server_options o;
    ember_server_options_init(&o);
    if (opts) {
        if (opts->size == 0 || opts->size > sizeof o)
            return err_set(EMBER_EINVAL, "options not initialised with ember_server_options_init");
        memcpy(&o, opts, opts->size);
        o.size = sizeof o;
    }
    if (o.port < -1 || o.port > 65535)
        return err_set(EMBER_EINVAL, "invalid port %d", o.port);
    if (o.max_payload <= 0 || o.max_payload > 64ll * 1024 * 1024)
        return err_set(EMBER_EINVAL, "invalid max_payload %lld (1 byte to 64 MiB)",
                       (long long)o.max_payload);
    if (o.max_control_line <= 0)
        return err_set(EMBER_EINVAL, "invalid max_control_line %d", o.max_control_line);
    if (o.max_pending <= 0)
        return err_set(EMBER_EINVAL, "invalid max_pending %lld", (long long)o.max_pending);
    if (o.max_payload > o.max_pending)
        return err_set(EMBER_EINVAL, "max_payload (%lld) over max_pending (%lld)",
                       (long long)o.max_payload, (long long)o.max_pending);
    if ((o.username && !o.password) || (!o.username && o.password))
        return err_set(EMBER_EINVAL, "username and password must be given together");
    if (o.auth_token && o.username)
        return err_set(EMBER_EINVAL, "token and user/password authentication cannot be combined");
    if (o.jetstream_max_memory < 0 || o.jetstream_max_store < 0)
        return err_set(EMBER_EINVAL, "invalid JetStream limits (negative)");
    if (o.jetstream_sync_interval_ms < 0)
        return err_set(EMBER_EINVAL, "invalid sync interval %lld", (long long)o.jetstream_sync_interval_ms);
    if (o.jetstream_domain && js_valid_domain(o.jetstream_domain) != 0)
        return err_set(EMBER_EINVAL, "invalid domain name: \"%s\"", o.jetstream_domain);
    if (o.http_port < -1 || o.http_port > 65535)
        return err_set(EMBER_EINVAL, "invalid http_port %d", o.http_port);
    if (leaf_check_options(&o) != 0)
        return EMBER_EINVAL; /* err_set by leaf_check_options */
    if (xport_check_options(&o) != 0)
        return EMBER_EINVAL; /* err_set by xport_check_options */
    /* nats-server: with TLS, an auth timeout left at its default is tls_timeout + 1s */
    if (o.tls_cert_file && o.auth_timeout_ms == 2000)
        o.auth_timeout_ms = (o.tls_timeout_ms > 0 ? o.tls_timeout_ms : 2000) + 1000;

    server *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(EMBER_ENOMEM, "out of memory");
    atomic_init(&s->refs, 1);
    s->opts = o;
    s->o_host = strdup(o.host ? o.host : "0.0.0.0");
    s->o_name = dup_or_null(o.server_name);
    s->o_user = dup_or_null(o.username);
    s->o_pass = dup_or_null(o.password);
    s->o_token = dup_or_null(o.auth_token);
    s->o_store = dup_or_null(o.store_dir);
    s->o_domain = dup_or_null(o.jetstream_domain);
    s->o_http_host = strdup(o.http_host && *o.http_host ? o.http_host
                                                         : (o.host ? o.host : "0.0.0.0"));
    s->opts.http_host = s->o_http_host;
    s->opts.host = s->o_host;
    s->opts.username = s->o_user;
    s->opts.password = s->o_pass;
    s->opts.auth_token = s->o_token;
    s->opts.store_dir = s->o_store;
    s->opts.jetstream_domain = s->o_domain;
    server_id_new(s->id);
    if (!s->o_name)
        s->o_name = strdup(s->id);
    s->opts.server_name = s->o_name;
    pthread_mutex_init(&s->log_mu, NULL);
    s->lg.level = o.log_fn ? o.log_level : -1;
    s->lg.fn = o.log_fn;
    s->lg.userdata = o.log_userdata;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_init(&s->fmu, NULL);
    s->read_buf_len = 64 * 1024;
    s->read_buf = malloc(s->read_buf_len);
    atomic_init(&s->next_cid, 1);
    if (!s->o_host || !s->o_name || !s->read_buf || !s->o_http_host) {
        server_release(s);
        return err_set(EMBER_ENOMEM, "out of memory");
    }
    /* the accounts: "$G" (whose sublist and internal publisher are s->sl and s->sys) and
     * the configured ones */
    /* operator mode: the accounts come from their JWTs */
    const ember_account *jaccs = NULL;
    size_t njaccs = 0;
    int jrc = jwt_trust_new(&s->trust, &o, &jaccs, &njaccs); /* err_set by jwt_trust_new */
    if (jrc != 0) {
        server_release(s);
        return jrc;
    }
    ember_server_options ao = o;
    if (s->trust) {
        ao.accounts = jaccs;
        ao.accounts_count = njaccs;
    }
    int acrc = accounts_new(s, &ao); /* err_set by accounts_new */
    if (acrc != 0) {
        server_release(s);
        return acrc;
    }
    s->sl = s->gacc->sl;
    s->sys = s->gacc->sys;
    s->opts.accounts = NULL; /* the host's array is not kept: s->accs holds them */
    s->opts.accounts_count = 0;
    s->o_operator = dup_or_null(o.operator_jwt);
    s->opts.operator_jwt = s->o_operator;
    s->opts.account_jwts = NULL; /* checked and copied by jwt_trust_new */
    int arc = auth_users_new(&s->users, &o); /* err_set by auth_users_new */
    if (arc != 0) {
        server_release(s);
        return arc;
    }
    int lrc = leaf_init(s, &o); /* err_set by leaf_init */
    if (lrc != 0) {
        server_release(s);
        return lrc;
    }
    int xrc = xport_init(s, &o); /* err_set by xport_init */
    if (xrc != 0) {
        server_release(s);
        return xrc;
    }
    /* the options are the host's: keep copies of what is read later, drop the rest */
    s->o_tls_cert = dup_or_null(o.tls_cert_file);
    s->o_tls_key = dup_or_null(o.tls_key_file);
    s->o_tls_ca = dup_or_null(o.tls_ca_file);
    s->o_leaf_host = dup_or_null(o.leaf_host);
    s->o_ws_host = dup_or_null(o.ws_host);
    if ((o.tls_cert_file && !s->o_tls_cert) || (o.tls_key_file && !s->o_tls_key) ||
        (o.tls_ca_file && !s->o_tls_ca) || (o.leaf_host && !s->o_leaf_host) ||
        (o.ws_host && !s->o_ws_host)) {
        server_release(s);
        return err_set(EMBER_ENOMEM, "out of memory");
    }
    s->opts.tls_cert_file = s->o_tls_cert;
    s->opts.tls_key_file = s->o_tls_key;
    s->opts.tls_ca_file = s->o_tls_ca;
    s->opts.leaf_host = s->o_leaf_host;
    s->opts.ws_host = s->o_ws_host;
    s->opts.leaf_remotes = NULL; /* copied by leaf_init */
    s->opts.leaf_username = s->opts.leaf_password = NULL;
    s->opts.leaf_tls_cert_file = s->opts.leaf_tls_key_file = s->opts.leaf_tls_ca_file = NULL;
    s->opts.users = NULL; /* copied by auth_users_new */
    s->opts.no_auth_user = NULL;
    s->opts.ws_tls_cert_file = s->opts.ws_tls_key_file = NULL; /* copied by xport_init */
    s->opts.ws_allowed_origins = NULL;
    s->opts.ws_username = s->opts.ws_password = s->opts.ws_auth_token = NULL;
    s->opts.ws_no_auth_user = NULL;
    *out = s;
    return EMBER_OK;
}

void server_retain(server *s) { atomic_fetch_add(&s->refs, 1); }

static void server_destroy(server *s)
{
    leaf_free(s);
    accounts_free(s);
    jwt_trust_free(s->trust);
    free(s->o_operator);
    free(s->o_tls_cert);
    free(s->o_tls_key);
    free(s->o_tls_ca);
    free(s->o_leaf_host);
    free(s->o_ws_host);
    auth_users_free(s->users);
    auth_users_free_retired(s->retired_users);
    xport_free(s);
    monitor_free(s);
    free(s->o_http_host);
    free(s->o_host);
    free(s->o_name);
    free(s->o_user);
    free(s->o_pass);
    free(s->o_token);
    free(s->o_store);
    free(s->o_domain);
    free(s->read_buf);
    if (s->lg.file)
        fclose(s->lg.file);
    pthread_mutex_destroy(&s->log_mu);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->fmu);
    free(s);
}

void server_release(server *s)
{
    if (atomic_fetch_sub(&s->refs, 1) == 1)
        server_destroy(s);
}

int server_add_client(server *s, client *c)
{
    pthread_mutex_lock(&s->mu);
    if (s->state != SS_RUNNING) {
        pthread_mutex_unlock(&s->mu);
        return err_set(EMBER_ECLOSED, "server is not running");
    }
    c->next = s->clients;
    c->prev = NULL;
    if (s->clients)
        s->clients->prev = c;
    s->clients = c;
    client_retain(c);
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(&s->nconns, 1);
    atomic_fetch_add(&s->total_conns, 1);
    return EMBER_OK;
}

void server_remove_client(server *s, client *c)
{
    bool found = false;
    pthread_mutex_lock(&s->mu);
    for (client *x = s->clients; x; x = x->next)
        if (x == c) {
            found = true;
            break;
        }
    if (found) {
        if (c->prev)
            c->prev->next = c->next;
        else
            s->clients = c->next;
        if (c->next)
            c->next->prev = c->prev;
        c->prev = c->next = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (found) {
        atomic_fetch_sub(&s->nconns, 1);
        atomic_fetch_add(&s->closed_in_msgs, cl_stat_in_msgs(c));
        atomic_fetch_add(&s->closed_in_bytes, cl_stat_in_bytes(c));
        atomic_fetch_add(&s->closed_out_msgs, cl_stat_out_msgs(c));
        atomic_fetch_add(&s->closed_out_bytes, cl_stat_out_bytes(c));
        client_release(c);
    }
}

/* ------------------------------------------------------------------ loop thread */

int srv_listen(server *s, uv_tcp_t *h, const char *host, int port, int backlog,
               uv_connection_cb cb, void *data, int *bound, bool *inited)
{
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
        return UV_EINVAL;
    uv_tcp_init(&s->loop, h);
    h->data = data;
    *inited = true;
    int rc = uv_tcp_bind(h, (struct sockaddr *)&ss, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)h, backlog, cb);
    if (rc)
        return rc;
    struct sockaddr_storage b;
    int blen = sizeof b;
    uv_tcp_getsockname(h, (struct sockaddr *)&b, &blen);
    *bound = ntohs(b.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&b)->sin6_port
                                          : ((struct sockaddr_in *)&b)->sin_port);
    return 0;
}

static void apply_reload(server *s);

static void on_async(uv_async_t *h)
{
    server *s = h->data;
    apply_reload(s);
    server_process_pending(s);
    if (atomic_load(&s->shutdown_requested))
        uv_stop(&s->loop);
}

static void on_housekeeping(uv_timer_t *t)
{
    server *s = t->data;
    uint64_t now = time_mono_ms();
    accounts_tick(s, now);
    /* collect TCP clients under the lock, then act without it */
    client *list[256];
    size_t n = 0;
    size_t skip = 0;
    for (;;) {
        n = 0;
        size_t idx = 0;
        pthread_mutex_lock(&s->mu);
        for (client *c = s->clients; c && n < 256; c = c->next) {
            if (!CK_IS_TCP(c->kind))
                continue;
            if (idx++ < skip)
                continue;
            client_retain(c);
            list[n++] = c;
        }
        pthread_mutex_unlock(&s->mu);
        for (size_t i = 0; i < n; i++) {
            client_tcp_housekeeping(list[i], now);
            client_release(list[i]);
        }
        if (n < 256)
            break;
        skip += n;
    }
}

static void on_walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_connection(uv_stream_t *l, int status)
{
    server *s = l->data;
    if (status < 0) {
        srv_log(s, EMBER_LOG_ERROR, "Error accepting client connection: %s", uv_strerror(status));
        return;
    }
    client_tcp_accept(s);
}

static void close_all_clients(server *s)
{
    for (;;) {
        pthread_mutex_lock(&s->mu);
        client *c = s->clients;
        while (c && CK_IS_TCP(c->kind) && c->handle_closed)
            c = c->next;
        if (c)
            client_retain(c);
        pthread_mutex_unlock(&s->mu);
        if (!c)
            break;
        if (CK_IS_TCP(c->kind)) {
            client_tcp_close(c, CR_SHUTDOWN);
        } else {
            inproc_server_closing(c);
            server_remove_client(s, c);
        }
        client_release(c);
        /* let uv close callbacks run so closed TCP clients leave the list */
        uv_run(&s->loop, UV_RUN_NOWAIT);
    }
}

static void *server_thread(void *arg)
{
    server *s = arg;
    tls_loop_server = s;
    int rc = uv_loop_init(&s->loop);
    if (rc) {
        pthread_mutex_lock(&s->mu);
        s->start_failed = true;
        snprintf(s->start_err, sizeof s->start_err, "event loop init: %s", uv_strerror(rc));
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        return NULL;
    }
    uv_async_init(&s->loop, &s->async, on_async);
    s->async.data = s;
    pthread_mutex_lock(&s->fmu);
    s->loop_alive = true;
    pthread_mutex_unlock(&s->fmu);
    uv_timer_init(&s->loop, &s->housekeeping);
    s->housekeeping.data = s;

    srv_log(s, EMBER_LOG_INFO, "Starting nats-server (ember %s)", EMBER_VERSION_STRING);
    srv_log(s, EMBER_LOG_INFO, "  Version:  %s", EMBER_NATS_VERSION);
    srv_log(s, EMBER_LOG_INFO, "  Name:     %s", s->o_name);
    srv_log(s, EMBER_LOG_INFO, "  ID:       %s", s->id);
    if (auth_plaintext_passwords(s->users, s->o_pass)) /* as nats-server */
        srv_log(s, EMBER_LOG_WARN, "Plaintext passwords detected, use nkeys or bcrypt");

    bool failed = false;
    char err[256] = "";
    if (monitor_start(s, err, sizeof err) != 0)
        failed = true;
    if (!failed && accounts_start(s, err, sizeof err) != 0)
        failed = true;
    if (!failed && s->opts.jetstream && js_start(s, err, sizeof err) != 0)
        failed = true;
    if (!failed && !s->opts.dont_listen) {
        int port = s->opts.port == 0 ? 4222 : (s->opts.port < 0 ? 0 : s->opts.port);
        rc = srv_listen(s, &s->listener, s->o_host, port, 511, on_connection, s, &s->bound_port,
                        &s->listening);
        if (rc == UV_EINVAL && !s->listening) {
            failed = true;
            snprintf(err, sizeof err, "invalid listen host \"%s\"", s->o_host);
        } else {
            if (rc) {
                failed = true;
                snprintf(err, sizeof err, "Error listening on port: %s:%d, \"%s\"", s->o_host,
                         port, uv_strerror(rc));
            } else {
                const char *h = s->o_host;
                if (!strcmp(h, "0.0.0.0") || !strcmp(h, "::") || !*h)
                    h = "127.0.0.1";
                if (strchr(h, ':'))
                    snprintf(s->client_url, sizeof s->client_url, "nats://[%s]:%d", h, s->bound_port);
                else
                    snprintf(s->client_url, sizeof s->client_url, "nats://%s:%d", h, s->bound_port);
                srv_log(s, EMBER_LOG_INFO, "Listening for client connections on %s:%d",
                        s->o_host, s->bound_port);
            }
        }
    }
    if (!failed && xport_start(s, err, sizeof err) != 0)
        failed = true;
    if (!failed && leaf_start(s, err, sizeof err) != 0)
        failed = true;
    if (failed) {
        srv_log(s, EMBER_LOG_FATAL, "%s", err);
    } else {
        srv_log(s, EMBER_LOG_INFO, "Server is ready");
        uv_timer_start(&s->housekeeping, on_housekeeping, 250, 250);
    }
    pthread_mutex_lock(&s->mu);
    if (failed) {
        s->start_failed = true;
        snprintf(s->start_err, sizeof s->start_err, "%s", err);
    } else {
        s->ready = true;
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);

    if (!failed && !atomic_load(&s->shutdown_requested))
        uv_run(&s->loop, UV_RUN_DEFAULT);

    /* shutting down */
    pthread_mutex_lock(&s->mu);
    s->state = SS_SHUTTING;
    pthread_mutex_unlock(&s->mu);
    if (s->listening)
        uv_close((uv_handle_t *)&s->listener, NULL);
    monitor_stop(s);
    srv_log(s, EMBER_LOG_INFO, "Initiating Shutdown...");
    leaf_stop(s);
    xport_stop(s);
    js_stop(s);
    accounts_stop(s);
    server_process_pending(s);
    close_all_clients(s);
    uv_timer_stop(&s->housekeeping);
    pthread_mutex_lock(&s->fmu);
    s->loop_alive = false;
    pthread_mutex_unlock(&s->fmu);
    server_process_pending(s);
    uv_walk(&s->loop, on_walk_close, NULL);
    while (uv_run(&s->loop, UV_RUN_NOWAIT))
        ;
    uv_loop_close(&s->loop);
    srv_log(s, EMBER_LOG_INFO, "Server Exiting..");
    pthread_mutex_lock(&s->mu);
    s->state = SS_DONE;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

EMBER_API int ember_server_start(ember_server *s)
{
    if (!s)
        return err_set(EMBER_EINVAL, "server is NULL");
    pthread_mutex_lock(&s->mu);
    if (s->state != SS_NEW || s->thread_started) {
        pthread_mutex_unlock(&s->mu);
        return err_set(EMBER_ESTATE, "server already started");
    }
    s->state = SS_RUNNING;
    /* server threads never take the host's process signals */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&s->thread, NULL, server_thread, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        s->state = SS_DONE;
        pthread_mutex_unlock(&s->mu);
        return err_set(EMBER_ENOMEM, "cannot create server thread: %s", strerror(rc));
    }
    s->thread_started = true;
    pthread_mutex_unlock(&s->mu);
    return EMBER_OK;
}

static void abs_deadline(struct timespec *ts, int timeout_ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

EMBER_API bool ember_server_ready_for_connections(ember_server *s, int timeout_ms)
{
    if (!s) {
        err_set(EMBER_EINVAL, "server is NULL");
        return false;
    }
    struct timespec ts;
    abs_deadline(&ts, timeout_ms < 0 ? 0 : timeout_ms);
    pthread_mutex_lock(&s->mu);
    while (!s->ready && !s->start_failed && s->state == SS_RUNNING) {
        if (!s->thread_started)
            break;
        if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT)
            break;
    }
    bool ok = s->ready && s->state == SS_RUNNING && !atomic_load(&s->shutdown_requested);
    if (!ok) {
        if (s->start_failed)
            err_set(EMBER_EIO, "%s", s->start_err);
        else if (!s->thread_started)
            err_set(EMBER_ESTATE, "server not started");
        else if (s->state != SS_RUNNING || atomic_load(&s->shutdown_requested))
            err_set(EMBER_ECLOSED, "server is shut down");
        else
            err_set(EMBER_ETIMEDOUT, "server not ready for connections after %d ms", timeout_ms);
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

EMBER_API const char *ember_server_client_url(const ember_server *s)
{
    if (!s || s->opts.dont_listen)
        return NULL;
    server *m = (server *)s;
    pthread_mutex_lock(&m->mu);
    bool ready = m->ready;
    pthread_mutex_unlock(&m->mu);
    return ready ? s->client_url : NULL;
}

EMBER_API int ember_server_websocket_port(const ember_server *s)
{
    return s ? xport_ws_port(s) : 0;
}

EMBER_API int ember_server_port(const ember_server *s)
{
    if (!s)
        return 0;
    server *m = (server *)s;
    pthread_mutex_lock(&m->mu);
    int p = m->ready ? m->bound_port : 0;
    pthread_mutex_unlock(&m->mu);
    return p;
}

EMBER_API const char *ember_server_id(const ember_server *s) { return s ? s->id : NULL; }
EMBER_API const char *ember_server_name(const ember_server *s) { return s ? s->o_name : NULL; }

EMBER_API void ember_server_shutdown(ember_server *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    if (!s->thread_started) {
        s->state = SS_DONE;
        atomic_store(&s->shutdown_requested, true);
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    bool first = !atomic_exchange(&s->shutdown_requested, true);
    pthread_mutex_unlock(&s->mu);
    if (first)
        srv_log(s, EMBER_LOG_DEBUG, "shutdown requested");
    pthread_mutex_lock(&s->fmu);
    if (s->loop_alive)
        uv_async_send(&s->async);
    pthread_mutex_unlock(&s->fmu);
    if (srv_on_loop(s))
        return; /* from a callback on the loop thread: the loop ends after it returns */
    /* Wait for the loop thread to finish (do not wait from a thread it may wait for:
     * in-process callbacks never block the loop, so waiting is safe here). */
    pthread_mutex_lock(&s->mu);
    while (s->state != SS_DONE)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

static void server_join(server *s)
{
    pthread_mutex_lock(&s->mu);
    if (!s->thread_started || s->joined) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    while (s->joining)
        pthread_cond_wait(&s->cv, &s->mu);
    if (s->joined) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    s->joining = true;
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_mutex_lock(&s->mu);
    s->joined = true;
    s->joining = false;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

EMBER_API int ember_server_wait_for_shutdown(ember_server *s, bool handle_signals)
{
    if (!s)
        return err_set(EMBER_EINVAL, "server is NULL");
    if (srv_on_loop(s))
        return err_set(EMBER_ESTATE, "cannot wait for shutdown on the server's own thread");
    if (!handle_signals) {
        pthread_mutex_lock(&s->mu);
        while (s->state != SS_DONE && s->state != SS_NEW)
            pthread_cond_wait(&s->cv, &s->mu);
        pthread_mutex_unlock(&s->mu);
        return EMBER_OK;
    }
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    for (;;) {
        pthread_mutex_lock(&s->mu);
        bool done = s->state == SS_DONE || s->state == SS_NEW;
        pthread_mutex_unlock(&s->mu);
        if (done)
            break;
        struct timespec ts = {0, 100 * 1000000L};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM) {
            srv_log(s, EMBER_LOG_INFO, "Trapped \"%s\" signal",
                    sig == SIGINT ? "interrupt" : "terminated");
            ember_server_shutdown(s);
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return EMBER_OK;
}

EMBER_API void ember_server_free(ember_server *s)
{
    if (!s)
        return;
    ember_server_shutdown(s);
    server_join(s);
    server_release(s);
}

/* ------------------------------------------------------------------ reload */

/* A field that cannot change at runtime: equal, or the reload is refused. */
static bool str_same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static int reload_refuse(const char *field)
{
    return err_set(EMBER_EINVAL, "config reload not supported for %s", field);
}

bool server_auth_required(const server *s)
{
    return s->o_user || s->o_token || s->users || s->trust;
}

bool server_needs_nonce(const server *s) { return s->trust || auth_users_need_nonce(s->users); }

static bool auth_users_any_in(const ember_server_options *o)
{
    for (size_t i = 0; o->accounts && i < o->accounts_count; i++)
        if (o->accounts[i].users_count)
            return true;
    return false;
}


static void reload_req_free(struct reload_req *r)
{
    auth_users_free(r->users);
    r->users = NULL;
    if (r->tls_ctx)
        tlsio_ctx_free(r->tls_ctx);
    r->tls_ctx = NULL;
    free(r->tls_cert);
    free(r->tls_key);
    free(r->tls_ca);
    r->tls_cert = r->tls_key = r->tls_ca = NULL;
}

/* On the loop thread: swap in what a reload brings (s->reload_next), close the clients
 * whose user is gone, wake the caller. */
static void apply_reload(server *s)
{
    pthread_mutex_lock(&s->fmu);
    struct reload_req *r = s->reload_next;
    s->reload_next = NULL;
    pthread_mutex_unlock(&s->fmu);
    if (!r)
        return;
    ember_server_options *n = &r->o;
    s->opts.max_payload = n->max_payload;
    s->opts.max_pending = n->max_pending;
    s->opts.max_connections = n->max_connections;
    s->opts.max_subscriptions = n->max_subscriptions;
    s->opts.ping_interval_ms = n->ping_interval_ms;
    s->opts.max_pings_out = n->max_pings_out;
    s->opts.write_deadline_ms = n->write_deadline_ms;
    s->opts.auth_timeout_ms = n->auth_timeout_ms;
    auth_users *old = s->users;
    s->users = r->users;
    r->users = NULL;
    if (r->tls_ctx) { /* only this thread reads them (/varz, accepting connections) */
        xport_reload_tls(s, r->tls_ctx, n->tls_verify);
        r->tls_ctx = NULL;
        free(s->o_tls_cert);
        free(s->o_tls_key);
        free(s->o_tls_ca);
        s->opts.tls_cert_file = s->o_tls_cert = r->tls_cert;
        s->opts.tls_key_file = s->o_tls_key = r->tls_key;
        s->opts.tls_ca_file = s->o_tls_ca = r->tls_ca;
        s->opts.tls_verify = n->tls_verify;
        r->tls_cert = r->tls_key = r->tls_ca = NULL;
    }
    if (old) /* clients may still point at its users: kept until the server goes */
        auth_users_retire(old, &s->retired_users);
    /* clients of a user that is still there get its new permissions; clients of a user
     * that is gone are closed, as nats-server does (in-process ones after the list lock) */
    int closed = 0;
    size_t ngone = 0, gone_cap = 0;
    client **gone = NULL;
    pthread_mutex_lock(&s->mu);
    for (client *c = s->clients; c; c = c->next) {
        if (!c->auth_user || c->own_user) /* JWT users are not in the users */
            continue;
        const auth_user *nu = auth_find_same(s->users, c->auth_user);
        if (nu) {
            auth_perm_rebind(c->perm, nu);
            if (c->kind == CK_TCP) /* read on this thread only (logs) */
                c->auth_user = nu;
        } else if (c->kind == CK_TCP) {
            client_schedule_close(c, CR_AUTH);
            closed++;
        } else if (c->kind == CK_INPROC) {
            if (ngone == gone_cap) {
                size_t nc = gone_cap ? gone_cap * 2 : 8;
                client **ng = realloc(gone, nc * sizeof *ng);
                if (!ng)
                    continue; /* out of memory: this one keeps working */
                gone = ng;
                gone_cap = nc;
            }
            client_retain(c);
            gone[ngone++] = c;
        }
    }
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < ngone; i++) {
        client *c = gone[i];
        srv_log(s, EMBER_LOG_ERROR, "in-process - cid:%llu - authentication error - %s",
                (unsigned long long)c->cid, auth_user_desc(c->auth_user));
        inproc_auth_revoked(c);
        server_remove_client(s, c);
        client_release(c);
        closed++;
    }
    free(gone);
    srv_log(s, EMBER_LOG_INFO, "Reloaded server configuration%s",
            closed ? " (clients of removed users closed)" : "");
    pthread_mutex_lock(&s->mu);
    r->done = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

EMBER_API int ember_server_reload(ember_server *s, const ember_server_options *opts)
{
    if (!s || !opts)
        return err_set(EMBER_EINVAL, "server or options is NULL");
    ember_server_options n;
    ember_server_options_init(&n);
    if (opts->size == 0 || opts->size > sizeof n)
        return err_set(EMBER_EINVAL, "options not initialised with ember_server_options_init");
    memcpy(&n, opts, opts->size);
    n.size = sizeof n;
    const ember_server_options *o = &s->opts;
    /* what a running server cannot change (nats-server refuses these too) */
    int port_o = o->port, port_n = n.port;
    if (port_n != port_o)
        return reload_refuse("port");
    if (!str_same(n.host ? n.host : "0.0.0.0", o->host))
        return reload_refuse("host");
    if (n.dont_listen != o->dont_listen)
        return reload_refuse("dont_listen");
    if (n.server_name && !str_same(n.server_name, o->server_name))
        return reload_refuse("server_name");
    if (n.jetstream != o->jetstream || !str_same(n.jetstream_domain, o->jetstream_domain) ||
        (n.store_dir && !str_same(n.store_dir, o->store_dir)))
        return reload_refuse("jetstream");
    if (n.leaf_port != o->leaf_port || n.leaf_remotes_count != o->leaf_remotes_count)
        return reload_refuse("leafnodes");
    if (n.http_port != o->http_port)
        return reload_refuse("http_port");
    if (!str_same(n.username, o->username) || !str_same(n.password, o->password) ||
        !str_same(n.auth_token, o->auth_token))
        return reload_refuse("authorization user/password/token");
    if (n.max_control_line != o->max_control_line)
        return reload_refuse("max_control_line");
    if (n.max_payload <= 0 || n.max_payload > 64ll * 1024 * 1024 || n.max_pending <= 0 ||
        n.max_payload > n.max_pending)
        return err_set(EMBER_EINVAL, "invalid max_payload %lld / max_pending %lld",
                       (long long)n.max_payload, (long long)n.max_pending);
    /* TLS: on stays on and off stays off; the certificate, key, CA and verify may change
     * (the files are read again, as nats-server does on reload: certificate rotation) */
    if ((n.tls_cert_file != NULL) != (o->tls_cert_file != NULL) ||
        n.tls_handshake_first != o->tls_handshake_first)
        return reload_refuse("tls");
    if (n.ws_port != o->ws_port)
        return reload_refuse("websocket");
    if (!str_same(n.operator_jwt, o->operator_jwt) || n.account_jwts_count != o->account_jwts_count)
        return reload_refuse("operator");
    if (!s->trust && !accounts_same(s, &n))
        return reload_refuse("accounts");
    if ((s->users == NULL) != (n.users_count == 0 && !auth_users_any_in(&n)))
        return reload_refuse("authorization users (adding or removing all of them)");
    struct reload_req r;
    memset(&r, 0, sizeof r);
    r.o = n;
    if (n.tls_cert_file) {
        if (!n.tls_key_file)
            return err_set(EMBER_EINVAL, "missing 'key_file' in TLS configuration");
        tlsio_config tc = {.cert_file = n.tls_cert_file, .key_file = n.tls_key_file,
                           .ca_file = n.tls_ca_file, .verify = n.tls_verify};
        char terr[512];
        if (!(r.tls_ctx = tlsio_ctx_new(true, &tc, terr, sizeof terr)))
            return err_set(EMBER_EINVAL, "%s", terr);
        r.tls_cert = dup_or_null(n.tls_cert_file);
        r.tls_key = dup_or_null(n.tls_key_file);
        r.tls_ca = dup_or_null(n.tls_ca_file);
        if (!r.tls_cert || !r.tls_key || (n.tls_ca_file && !r.tls_ca)) {
            reload_req_free(&r);
            return err_set(EMBER_ENOMEM, "out of memory");
        }
    }
    int rc = auth_users_new(&r.users, &n);
    if (rc) {
        reload_req_free(&r);
        return rc;
    }
    pthread_mutex_lock(&s->mu);
    bool running = s->state == SS_RUNNING && s->ready;
    pthread_mutex_unlock(&s->mu);
    if (!running || srv_on_loop(s)) {
        reload_req_free(&r);
        return err_set(EMBER_ESTATE, running ? "ember_server_reload called from the server's own "
                                               "thread"
                                             : "server is not running");
    }
    pthread_mutex_lock(&s->fmu);
    bool queued = s->loop_alive && !s->reload_next;
    if (queued) {
        s->reload_next = &r;
        uv_async_send(&s->async);
    }
    pthread_mutex_unlock(&s->fmu);
    if (!queued) {
        reload_req_free(&r);
        return err_set(EMBER_ESTATE, "server is shutting down or another reload is running");
    }
    /* the loop applies it (or shutdown drops it) */
    pthread_mutex_lock(&s->mu);
    while (!r.done && s->state == SS_RUNNING)
        pthread_cond_wait(&s->cv, &s->mu);
    bool done = r.done;
    pthread_mutex_unlock(&s->mu);
    if (!done) {
        pthread_mutex_lock(&s->fmu);
        if (s->reload_next == &r)
            s->reload_next = NULL;
        pthread_mutex_unlock(&s->fmu);
        reload_req_free(&r);
        return err_set(EMBER_ECLOSED, "server shut down during the reload");
    }
    reload_req_free(&r); /* what the loop did not take */
    return EMBER_OK;
}

EMBER_API void ember_server_get_stats(ember_server *s, ember_server_stats *out)
{
    if (!s || !out)
        return;
    memset(out, 0, sizeof *out);
    out->in_msgs = atomic_load(&s->closed_in_msgs);
    out->in_bytes = atomic_load(&s->closed_in_bytes);
    out->out_msgs = atomic_load(&s->closed_out_msgs);
    out->out_bytes = atomic_load(&s->closed_out_bytes);
    pthread_mutex_lock(&s->mu);
    for (client *c = s->clients; c; c = c->next) {
        out->in_msgs += cl_stat_in_msgs(c);
        out->in_bytes += cl_stat_in_bytes(c);
        out->out_msgs += cl_stat_out_msgs(c);
        out->out_bytes += cl_stat_out_bytes(c);
    }
    pthread_mutex_unlock(&s->mu);
    out->connections = atomic_load(&s->nconns);
    out->total_connections = atomic_load(&s->total_conns);
    out->subscriptions = atomic_load(&s->nsubs);
    out->slow_consumers = atomic_load(&s->slow_consumers);
}

const char *close_reason_text(int r)
{
    switch (r) {
    case CR_CLIENT: return "Client Closed";
    case CR_SLOW_CONSUMER_PENDING: return "Slow Consumer (Pending Bytes)";
    case CR_SLOW_CONSUMER_DEADLINE: return "Slow Consumer (Write Deadline)";
    case CR_PROTOCOL: return "Protocol Violation";
    case CR_AUTH: return "Authentication Failure";
    case CR_AUTH_TIMEOUT: return "Authentication Timeout";
    case CR_STALE: return "Stale Connection";
    case CR_MAX_PAYLOAD: return "Maximum Message Payload Exceeded";
    case CR_MAX_CONNECTIONS: return "Maximum Connections Exceeded";
    case CR_SHUTDOWN: return "Server Shutdown";
    case CR_WRITE_ERROR: return "Write Error";
    case CR_READ_ERROR: return "Read Error";
    case CR_TLS_HANDSHAKE: return "TLS Handshake Failure";
    case CR_AUTH_EXPIRED: return "Authentication Expired";
    default: return "Unknown";
    }
}
