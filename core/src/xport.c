/* xport: TLS and WebSocket transports of TCP-based clients (see xport.h). */
#define _GNU_SOURCE
#include "xport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "auth.h"
#include "tlsio.h"
#include "ws.h"

#define XLOG(c, lvl, fmt, ...)                                                                 \
    srv_log((c)->srv, lvl, "%s:%d - cid:%llu - " fmt, (c)->ip, (c)->port,                      \
            (unsigned long long)(c)->cid, ##__VA_ARGS__)

struct xport_srv {
    SSL_CTX *tls_ctx;          /* client connections (NULL: no TLS) */
    bool tls_verify;
    bool handshake_first;
    int64_t tls_timeout_ms;
    /* websocket */
    bool ws_on;
    char *ws_host;
    int ws_port_cfg;
    SSL_CTX *ws_ctx;           /* wss (NULL: plain ws) */
    int64_t ws_timeout_ms;
    uv_tcp_t ws_listener;
    bool ws_listening;
    atomic_int ws_bound_port;
    bool ws_compression;
    bool ws_same_origin;
    ws_origin *ws_allowed;     /* the parsed allowed origins */
    size_t ws_allowed_n;
    char **ws_bad_origins;     /* allowed origins that do not parse (logged at start) */
    char **ws_origins_cfg;     /* the allowed origins as configured (for /varz) */
    size_t ws_origins_cfg_n;
    size_t ws_bad_n;
    xport_ws_auth ws_auth;     /* strings owned */
};

enum { WSS_HTTP = 0, WSS_OPEN, WSS_CLOSED };

typedef struct xport xport;
struct xport {
    /* TLS */
    tlsio *tls;
    bool tls_server;
    bool tls_input_seen;        /* the peer sent bytes since TLS started */
    bool tls_done;
    void (*on_tls_done)(client *c);
    int64_t tls_timeout_ms;
    uint64_t tls_start_ms;
    /* WebSocket */
    bool ws;
    int ws_state;
    bytebuf http;               /* the upgrade request so far */
    ws_reader wr;
    bool ws_browser;
    bool ws_compress;           /* permessage-deflate negotiated */
    bool ws_nocompfrag;         /* no fragmented compressed frames (Safari) */
    z_stream *def;              /* the deflater, reset for each write (no context takeover) */
    bytebuf zbuf;               /* compressed output scratch */
    bool ws_close_sent;
    uint64_t ws_start_ms;
    int64_t ws_timeout_ms;
    bytebuf ctl;                /* plaintext to send before the data: HTTP answers, control frames */
    bytebuf frames;             /* framing scratch */
    /* output of xport_encode */
    bytebuf out;
    bytebuf held;               /* plaintext queued before the TLS handshake completed */
};

/* ------------------------------------------------------------------ server level */

int xport_check_options(const ember_server_options *o)
{
    if (o->tls_timeout_ms < 0)
        return err_set(EMBER_EINVAL, "invalid tls_timeout %lld", (long long)o->tls_timeout_ms);
    if (o->ws_handshake_timeout_ms < 0)
        return err_set(EMBER_EINVAL, "invalid websocket handshake_timeout %lld",
                       (long long)o->ws_handshake_timeout_ms);
    if (o->tls_key_file && !o->tls_cert_file)
        return err_set(EMBER_EINVAL, "missing 'cert_file' in TLS configuration");
    if (o->tls_cert_file && !o->tls_key_file)
        return err_set(EMBER_EINVAL, "missing 'key_file' in TLS configuration");
    if ((o->tls_verify || o->tls_handshake_first || o->tls_ca_file) && !o->tls_cert_file)
        return err_set(EMBER_EINVAL, "TLS options given without 'cert_file' and 'key_file'");
    if (o->ws_port < -1 || o->ws_port > 65535)
        return err_set(EMBER_EINVAL, "invalid websocket port %d", o->ws_port);
    if (o->ws_port != 0) {
        if ((o->ws_tls_cert_file != NULL) != (o->ws_tls_key_file != NULL))
            return err_set(EMBER_EINVAL, "websocket: missing '%s' in TLS configuration",
                           o->ws_tls_cert_file ? "key_file" : "cert_file");
        if (!o->ws_tls_cert_file && !o->ws_no_tls)
            return err_set(EMBER_EINVAL, "websocket requires TLS configuration");
        if (o->ws_allowed_origins_count && !o->ws_allowed_origins)
            return err_set(EMBER_EINVAL, "ws_allowed_origins is NULL with ws_allowed_origins_count %zu",
                           o->ws_allowed_origins_count);
        for (size_t i = 0; i < o->ws_allowed_origins_count; i++)
            if (!o->ws_allowed_origins[i])
                return err_set(EMBER_EINVAL, "ws_allowed_origins[%zu] is NULL", i);
        if (o->ws_auth_timeout_ms < 0)
            return err_set(EMBER_EINVAL, "invalid websocket authorization timeout %lld",
                           (long long)o->ws_auth_timeout_ms);
        /* nats-server's validateWebsocketOptions (validateNoAuthUser for no_auth_user) */
        bool users = o->users_count > 0;
        for (size_t i = 0; o->accounts && i < o->accounts_count; i++)
            users = users || o->accounts[i].users_count > 0;
        if (o->ws_no_auth_user) {
            if (o->operator_jwt)
                return err_set(EMBER_EINVAL, "no_auth_user not compatible with Trusted Operator");
            if (!users)
                return err_set(EMBER_EINVAL, "no_auth_user: \"%s\" present, but users are not defined",
                               o->ws_no_auth_user);
            bool found = false;
            for (size_t i = 0; !found && o->users && i < o->users_count; i++)
                found = o->users[i].user && !strcmp(o->users[i].user, o->ws_no_auth_user);
            for (size_t i = 0; !found && o->accounts && i < o->accounts_count; i++)
                for (size_t k = 0; !found && o->accounts[i].users && k < o->accounts[i].users_count; k++)
                    found = o->accounts[i].users[k].user &&
                            !strcmp(o->accounts[i].users[k].user, o->ws_no_auth_user);
            if (!found)
                return err_set(EMBER_EINVAL, "no_auth_user: \"%s\" not present as user in "
                               "authorization block or account configuration", o->ws_no_auth_user);
        }
        if (users && o->ws_username)
            return err_set(EMBER_EINVAL, "websocket authentication username not compatible with "
                           "presence of users/nkeys");
        if (users && o->ws_auth_token)
            return err_set(EMBER_EINVAL, "websocket authentication token not compatible with "
                           "presence of users/nkeys");
    }
    return 0;
}

static char *dup0(const char *s) { return s ? strdup(s) : NULL; }

const xport_ws_auth *xport_ws_auth_of(const client *c)
{
    const struct xport_srv *xs = c->srv->xs;
    return xs && c->xp && c->xp->ws ? &xs->ws_auth : NULL;
}

bool xport_ws_auth_override(const server *s)
{
    const struct xport_srv *xs = s->xs;
    return xs && xs->ws_auth.override;
}

int xport_init(server *s, const ember_server_options *o)
{
    if (!o->tls_cert_file && o->ws_port == 0)
        return 0;
    struct xport_srv *xs = calloc(1, sizeof *xs);
    if (!xs)
        return err_set(EMBER_ENOMEM, "out of memory");
    s->xs = xs;
    char err[512];
    if (o->tls_cert_file) {
        tlsio_config cfg = {.cert_file = o->tls_cert_file, .key_file = o->tls_key_file,
                            .ca_file = o->tls_ca_file, .verify = o->tls_verify};
        xs->tls_ctx = tlsio_ctx_new(true, &cfg, err, sizeof err);
        if (!xs->tls_ctx)
            return err_set(EMBER_EINVAL, "%s", err);
        xs->tls_verify = o->tls_verify;
        xs->handshake_first = o->tls_handshake_first;
        xs->tls_timeout_ms = o->tls_timeout_ms > 0 ? o->tls_timeout_ms : 2000;
    }
    if (o->ws_port != 0) {
        xs->ws_on = true;
        xs->ws_port_cfg = o->ws_port;
        xs->ws_host = strdup(o->ws_host ? o->ws_host : (o->host ? o->host : "0.0.0.0"));
        if (!xs->ws_host)
            return err_set(EMBER_ENOMEM, "out of memory");
        xs->ws_timeout_ms = o->ws_handshake_timeout_ms > 0 ? o->ws_handshake_timeout_ms : 2000;
        if (o->ws_tls_cert_file) {
            tlsio_config cfg = {.cert_file = o->ws_tls_cert_file, .key_file = o->ws_tls_key_file};
            xs->ws_ctx = tlsio_ctx_new(true, &cfg, err, sizeof err);
            if (!xs->ws_ctx)
                return err_set(EMBER_EINVAL, "websocket: %s", err);
        }
        xs->ws_compression = o->ws_compression;
        xs->ws_same_origin = o->ws_same_origin;
        if (o->ws_allowed_origins_count) {
            xs->ws_allowed = calloc(o->ws_allowed_origins_count, sizeof *xs->ws_allowed);
            xs->ws_bad_origins = calloc(o->ws_allowed_origins_count, sizeof *xs->ws_bad_origins);
            xs->ws_origins_cfg = calloc(o->ws_allowed_origins_count, sizeof *xs->ws_origins_cfg);
            if (!xs->ws_allowed || !xs->ws_bad_origins || !xs->ws_origins_cfg)
                return err_set(EMBER_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < o->ws_allowed_origins_count; i++) {
            const char *ao = o->ws_allowed_origins[i];
            if (!(xs->ws_origins_cfg[xs->ws_origins_cfg_n++] = strdup(ao)))
                return err_set(EMBER_ENOMEM, "out of memory");
            ws_origin org;
            if (ws_origin_parse(ao, strlen(ao), &org, err, sizeof err) != 0) {
                /* nats-server logs "error parsing allowed origin" and skips it */
                if (!(xs->ws_bad_origins[xs->ws_bad_n++] = strdup(err)))
                    return err_set(EMBER_ENOMEM, "out of memory");
                continue;
            }
            /* several per host: any may match (nats-server 2.10; 2.9 kept the last) */
            xs->ws_allowed[xs->ws_allowed_n++] = org;
        }
        xport_ws_auth *wa = &xs->ws_auth;
        wa->user = dup0(o->ws_username);
        wa->pass = dup0(o->ws_username ? (o->ws_password ? o->ws_password : "") : NULL);
        wa->token = dup0(o->ws_auth_token);
        wa->no_auth_user = dup0(o->ws_no_auth_user);
        wa->timeout_ms = o->ws_auth_timeout_ms;
        wa->override = o->ws_username || o->ws_auth_token || o->ws_no_auth_user;
        if ((o->ws_username && (!wa->user || !wa->pass)) || (o->ws_auth_token && !wa->token) ||
            (o->ws_no_auth_user && !wa->no_auth_user))
            return err_set(EMBER_ENOMEM, "out of memory");
    }
    return 0;
}

void xport_free(server *s)
{
    struct xport_srv *xs = s->xs;
    if (!xs)
        return;
    tlsio_ctx_free(xs->tls_ctx);
    tlsio_ctx_free(xs->ws_ctx);
    free(xs->ws_host);
    free(xs->ws_allowed);
    for (size_t i = 0; i < xs->ws_bad_n; i++)
        free(xs->ws_bad_origins[i]);
    free(xs->ws_bad_origins);
    for (size_t i = 0; i < xs->ws_origins_cfg_n; i++)
        free(xs->ws_origins_cfg[i]);
    free(xs->ws_origins_cfg);
    free((char *)xs->ws_auth.user);
    free((char *)xs->ws_auth.pass);
    free((char *)xs->ws_auth.token);
    free((char *)xs->ws_auth.no_auth_user);
    free(xs);
    s->xs = NULL;
}

int xport_ws_port(const server *s)
{
    return s->xs ? atomic_load(&((struct xport_srv *)s->xs)->ws_bound_port) : 0;
}

static void on_ws_connection(uv_stream_t *l, int status)
{
    server *s = l->data;
    if (status < 0) {
        srv_log(s, EMBER_LOG_ERROR, "Error accepting websocket connection: %s", uv_strerror(status));
        return;
    }
    client_accept_from(s, l, true);
}

int xport_start(server *s, char *err, size_t errlen)
{
    struct xport_srv *xs = s->xs;
    if (!xs)
        return 0;
    if (xs->tls_ctx)
        srv_log(s, EMBER_LOG_INFO, "TLS required for client connections");
    if (!xs->ws_on)
        return 0;
    int port = xs->ws_port_cfg < 0 ? 0 : xs->ws_port_cfg;
    int bp = 0;
    int rc = srv_listen(s, &xs->ws_listener, xs->ws_host, port, 511, on_ws_connection, s, &bp,
                        &xs->ws_listening);
    if (rc == UV_EINVAL && !xs->ws_listening) {
        snprintf(err, errlen, "invalid websocket host \"%s\"", xs->ws_host);
        return -1;
    }
    if (rc) {
        snprintf(err, errlen, "Unable to listen for websocket connections: listen tcp %s:%d: %s",
                 xs->ws_host, port, uv_strerror(rc));
        return -1;
    }
    atomic_store(&xs->ws_bound_port, bp);
    for (size_t i = 0; i < xs->ws_bad_n; i++)
        srv_log(s, EMBER_LOG_ERROR, "error parsing allowed origin: %s", xs->ws_bad_origins[i]);
    srv_log(s, EMBER_LOG_INFO, "Listening for websocket clients on %s://%s:%d",
            xs->ws_ctx ? "wss" : "ws", xs->ws_host, bp);
    if (!xs->ws_ctx)
        srv_log(s, EMBER_LOG_WARN, "Websocket not configured with TLS. DO NOT USE IN PRODUCTION!");
    return 0;
}

void xport_stop(server *s)
{
    struct xport_srv *xs = s->xs;
    if (xs && xs->ws_listening) {
        xs->ws_listening = false;
        uv_close((uv_handle_t *)&xs->ws_listener, NULL);
    }
}

/* ------------------------------------------------------------------ helpers */

static xport *xp_get(client *c)
{
    if (!c->xp) {
        c->xp = calloc(1, sizeof(xport));
    }
    return c->xp;
}

/* Ask the loop to flush c (the transport has bytes of its own). */
static void kick(client *c)
{
    pthread_mutex_lock(&c->mu);
    bool need = !c->in_flush_list;
    c->in_flush_list = true;
    pthread_mutex_unlock(&c->mu);
    if (need)
        client_schedule_flush(c);
}

static bool gone(client *c) { return c->handle_closed || atomic_load(&c->closing); }

void xport_client_free(client *c)
{
    xport *x = c->xp;
    if (!x)
        return;
    tlsio_free(x->tls);
    if (x->ws)
        ws_reader_free(&x->wr);
    if (x->def) {
        deflateEnd(x->def);
        free(x->def);
    }
    bytebuf_free(&x->zbuf);
    bytebuf_free(&x->http);
    bytebuf_free(&x->ctl);
    bytebuf_free(&x->frames);
    bytebuf_free(&x->out);
    bytebuf_free(&x->held);
    free(x);
    c->xp = NULL;
}

bool xport_is_ws(const client *c) { return c->xp && c->xp->ws; }
bool xport_is_tls(const client *c) { return c->xp && c->xp->tls && c->xp->tls_done; }

const char *xport_tls_error(const client *c)
{
    return c->xp && c->xp->tls ? tlsio_error(c->xp->tls) : NULL;
}

bool xport_ready(const client *c)
{
    const xport *x = c->xp;
    return !x || ((!x->tls || x->tls_done) && (!x->ws || x->ws_state == WSS_OPEN));
}

/* ------------------------------------------------------------------ TLS */

int xport_start_tls(client *c, SSL_CTX *ctx, bool server, const char *sni, int64_t timeout_ms,
                    void (*on_done)(client *c))
{
    xport *x = xp_get(c);
    if (!x)
        return -1;
    tlsio_free(x->tls);
    x->tls = tlsio_new(ctx, server, sni);
    if (!x->tls)
        return -1;
    x->tls_server = server;
    x->tls_input_seen = false;
    x->tls_done = false;
    x->on_tls_done = on_done;
    x->tls_timeout_ms = timeout_ms;
    x->tls_start_ms = time_mono_ms();
    if (server)
        XLOG(c, EMBER_LOG_DEBUG, "Starting TLS client connection handshake");
    else
        XLOG(c, EMBER_LOG_DEBUG, "Starting TLS client handshake");
    if (!server) {
        if (tlsio_handshake(x->tls) < 0) {
            XLOG(c, EMBER_LOG_ERROR, "TLS handshake error: %s", tlsio_error(x->tls));
            client_schedule_close(c, CR_TLS_HANDSHAKE);
            return 0;
        }
        kick(c);
    }
    return 0;
}

static void tls_failed(client *c)
{
    xport *x = c->xp;
    const char *e = tlsio_error(x->tls);
    if (!x->tls_done) {
        XLOG(c, EMBER_LOG_ERROR, "TLS handshake error: %s", e);
        client_tcp_close(c, CR_TLS_HANDSHAKE);
    } else {
        XLOG(c, EMBER_LOG_ERROR, "read error: %s", e);
        client_tcp_close(c, CR_READ_ERROR);
    }
}

/* ------------------------------------------------------------------ WebSocket */

static void ws_queue_frame(xport *x, int op, const unsigned char *p, size_t n)
{
    unsigned char h[WS_MAX_FRAME_HEADER];
    size_t hl = ws_frame_header(h, op, true, true, n, NULL);
    bytebuf_append(&x->ctl, h, hl);
    if (n)
        bytebuf_append(&x->ctl, p, n);
}

static void ws_queue_close(xport *x, int status, const char *text, size_t tlen)
{
    if (x->ws_close_sent)
        return;
    x->ws_close_sent = true;
    unsigned char pl[WS_MAX_CONTROL_PAYLOAD];
    size_t n = 0;
    if (status != WS_CLOSE_NO_STATUS) {
        char body[WS_MAX_CONTROL_PAYLOAD + 1];
        size_t bl = tlen < sizeof body - 1 ? tlen : sizeof body - 1;
        memcpy(body, text, bl);
        body[bl] = 0;
        n = ws_close_payload(status, body, pl);
    }
    ws_queue_frame(x, WS_OP_CLOSE, pl, n);
}

static int ws_status_for(int reason)
{
    switch (reason) {
    case CR_CLIENT: return WS_CLOSE_NORMAL;
    case CR_AUTH_TIMEOUT:
    case CR_AUTH:
    case CR_SLOW_CONSUMER_PENDING:
    case CR_SLOW_CONSUMER_DEADLINE:
    case CR_MAX_CONNECTIONS: return WS_CLOSE_POLICY;
    case CR_TLS_HANDSHAKE: return WS_CLOSE_TLS_HANDSHAKE;
    case CR_PROTOCOL: return WS_CLOSE_PROTOCOL_ERROR;
    case CR_MAX_PAYLOAD: return WS_CLOSE_TOO_BIG;
    case CR_WRITE_ERROR:
    case CR_READ_ERROR:
    case CR_STALE:
    case CR_SHUTDOWN: return WS_CLOSE_GOING_AWAY;
    default: return WS_CLOSE_INTERNAL;
    }
}

static void ws_protocol_error(client *c, const char *msg)
{
    xport *x = c->xp;
    ws_queue_close(x, WS_CLOSE_PROTOCOL_ERROR, msg, strlen(msg));
    XLOG(c, EMBER_LOG_ERROR, "read error: %s", msg);
    client_err_close(c, NULL, CR_READ_ERROR);
}

static int ws_on_data(void *ud, char *p, size_t n)
{
    client *c = ud;
    client_input(c, p, n);
    return gone(c) ? 1 : 0;
}

static int ws_on_control(void *ud, int op, const unsigned char *p, size_t n)
{
    client *c = ud;
    xport *x = c->xp;
    if (op == WS_OP_PING) {
        ws_queue_frame(x, WS_OP_PONG, p, n);
        kick(c);
    } else if (op == WS_OP_CLOSE) {
        int status;
        const char *body;
        size_t bl;
        char err[160];
        if (ws_close_parse(p, n, &status, &body, &bl, err, sizeof err) != 0) {
            ws_protocol_error(c, err);
            return 1;
        }
        /* echo the status (nothing for "no status"), then close as the client did */
        if (!x->ws_close_sent) {
            x->ws_close_sent = true;
            unsigned char pl[WS_MAX_CONTROL_PAYLOAD];
            size_t pn = 0;
            if (status != WS_CLOSE_NO_STATUS) {
                char b[WS_MAX_CONTROL_PAYLOAD + 1];
                size_t k = bl < sizeof b - 1 ? bl : sizeof b - 1;
                memcpy(b, body, k);
                b[k] = 0;
                pn = ws_close_payload(status, b, pl);
            }
            ws_queue_frame(x, WS_OP_CLOSE, pl, pn);
        }
        client_err_close(c, NULL, CR_CLIENT);
        return 1;
    }
    return 0; /* PONG */
}

static void ws_http_input(client *c, const char *p, size_t n)
{
    xport *x = c->xp;
    if (bytebuf_append(&x->http, p, n)) {
        client_tcp_close(c, CR_READ_ERROR);
        return;
    }
    ws_upgrade u;
    size_t used = ws_upgrade_parse(x->http.p, x->http.len, &u);
    if (used == 0)
        return;
    struct xport_srv *xs = c->srv->xs;
    char oerr[400];
    if (u.status == 0 && ws_origin_check(&u, xs->ws_ctx != NULL, xs->ws_same_origin, xs->ws_allowed,
                                         xs->ws_allowed_n, oerr, sizeof oerr) != 0) {
        u.status = 403; /* nats-server's point 7, before its "data before handshake" check */
        u.reason = NULL;
    }
    if (u.status == 0 && used < x->http.len) {
        u.status = 400;
        u.reason = "client sent data before handshake is complete";
    }
    char resp[512];
    if (u.status) {
        if (u.status == 403)
            srv_log(c->srv, EMBER_LOG_ERROR,
                    "%s:%d - websocket handshake error: origin not allowed: %s", c->ip, c->port,
                    oerr);
        else
            srv_log(c->srv, EMBER_LOG_ERROR, "%s:%d - websocket handshake error: %s", c->ip,
                    c->port, u.reason);
        size_t rl = ws_http_error(u.status, resp, sizeof resp);
        bytebuf_append(&x->ctl, resp, rl);
        x->ws_state = WSS_CLOSED;
        x->ws_close_sent = true; /* no close frame on a connection that never upgraded */
        client_err_close(c, NULL, CR_PROTOCOL);
        return;
    }
    u.compress = u.compress && xs->ws_compression; /* negotiated when offered and on */
    size_t rl = ws_upgrade_response(&u, resp, sizeof resp);
    bytebuf_append(&x->ctl, resp, rl);
    x->ws_state = WSS_OPEN;
    x->ws_browser = u.browser;
    x->ws_compress = u.compress;
    x->ws_nocompfrag = u.compress && u.safari;
    ws_reader_init(&x->wr, !u.no_masking);
    if (u.compress)
        ws_reader_inflate_on(&x->wr);
    XLOG(c, EMBER_LOG_DEBUG, "Websocket connection upgraded%s%s", u.browser ? " (browser)" : "",
         u.compress ? " with compression" : "");
    bytebuf_free(&x->http); /* u points into it */
    client_send_info(c);
}

/* Plaintext (after TLS) for the layer above: WebSocket or the parser. */
static void layer_input(client *c, char *p, size_t n)
{
    xport *x = c->xp;
    if (!x->ws) {
        client_input(c, p, n);
        return;
    }
    if (x->ws_state == WSS_HTTP) {
        ws_http_input(c, p, n);
        return;
    }
    if (x->ws_state != WSS_OPEN)
        return;
    ws_handler h = {.data = ws_on_data, .control = ws_on_control, .ud = c};
    char err[160];
    int rc = ws_read(&x->wr, p, n, &h, err, sizeof err);
    if (rc < 0 && !gone(c))
        ws_protocol_error(c, err);
}

/* ------------------------------------------------------------------ client hooks */

void xport_input(client *c, char *p, size_t n)
{
    xport *x = c->xp;
    if (!x->tls) {
        layer_input(c, p, n);
        return;
    }
    server *s = c->srv;
    x->tls_input_seen = true;
    if (tlsio_feed(x->tls, p, n) != TLSIO_OK) {
        tls_failed(c);
        return;
    }
    if (!x->tls_done) {
        int h = tlsio_handshake(x->tls);
        if (h < 0) {
            tls_failed(c);
            return;
        }
        if (h == 0) {
            if (tlsio_pending_out(x->tls))
                kick(c);
            return;
        }
        x->tls_done = true;
        XLOG(c, EMBER_LOG_DEBUG, "TLS handshake complete");
        const char *ver = tlsio_version(x->tls);
        if (!strncmp(ver, "TLSv", 4))
            ver += 4; /* "1.3", as nats-server */
        XLOG(c, EMBER_LOG_DEBUG, "TLS version %s, cipher suite %s", ver, tlsio_cipher(x->tls));
        if (x->held.len) {
            if (tlsio_write(x->tls, x->held.p, x->held.len) != TLSIO_OK) {
                tls_failed(c);
                return;
            }
            bytebuf_free(&x->held);
        }
        kick(c);
        if (x->on_tls_done)
            x->on_tls_done(c);
        if (gone(c))
            return;
    }
    /* p was copied into the TLS engine: the server's read buffer is free for plaintext */
    for (;;) {
        ssize_t r = tlsio_read(x->tls, s->read_buf, s->read_buf_len);
        if (r > 0) {
            layer_input(c, s->read_buf, (size_t)r);
            if (gone(c))
                break;
            continue;
        }
        if (r == TLSIO_WANT)
            break;
        if (r == TLSIO_CLOSED) {
            client_tcp_close(c, CR_CLIENT);
            return;
        }
        tls_failed(c);
        return;
    }
    if (!c->handle_closed && tlsio_pending_out(x->tls))
        kick(c);
}

bool xport_pending(const client *c)
{
    const xport *x = c->xp;
    return x->ctl.len > 0 || (x->tls && tlsio_pending_out(x->tls) > 0);
}

#define WS_COMPRESS_THRESHOLD 64 /* nats-server: smaller writes are not compressed */

/* permessage-deflate: p[0..n) as one compressed message (a fresh deflate stream, no
 * context takeover, sync-flushed without its 00 00 ff ff tail), fragmented in 4 KiB frames
 * for browsers other than Safari, as nats-server's wsCollapsePtoNB. */
static int ws_frame_compressed(xport *x, const char *p, size_t n)
{
    if (!x->def) {
        x->def = calloc(1, sizeof *x->def);
        if (!x->def || deflateInit2(x->def, Z_BEST_SPEED, Z_DEFLATED, -15, 8,
                                    Z_DEFAULT_STRATEGY) != Z_OK) {
            free(x->def);
            x->def = NULL;
            return -1;
        }
    } else if (deflateReset(x->def) != Z_OK) {
        return -1;
    }
    z_stream *z = x->def;
    x->zbuf.len = 0;
    if (bytebuf_reserve(&x->zbuf, deflateBound(z, n > 1u << 30 ? 1u << 30 : n) + 64))
        return -1;
    size_t left = n;
    const char *in = p;
    for (;;) {
        if (z->avail_in == 0 && left) {
            size_t k = left > (1u << 30) ? (1u << 30) : left;
            z->next_in = (Bytef *)in;
            z->avail_in = (uInt)k;
            in += k;
            left -= k;
        }
        if (x->zbuf.cap - x->zbuf.len < 64 && bytebuf_reserve(&x->zbuf, x->zbuf.cap))
            return -1;
        size_t room = x->zbuf.cap - x->zbuf.len;
        if (room > (1u << 30))
            room = 1u << 30;
        z->next_out = (Bytef *)x->zbuf.p + x->zbuf.len;
        z->avail_out = (uInt)room;
        int zr = deflate(z, left ? Z_NO_FLUSH : Z_SYNC_FLUSH);
        if (zr != Z_OK && zr != Z_BUF_ERROR)
            return -1;
        x->zbuf.len += room - z->avail_out;
        if (!left && z->avail_in == 0 && z->avail_out != 0)
            break;
    }
    size_t cl = x->zbuf.len;
    const unsigned char *cp = (const unsigned char *)x->zbuf.p;
    if (cl >= 4 && !memcmp(cp + cl - 4, "\x00\x00\xff\xff", 4))
        cl -= 4;
    size_t max = x->ws_browser && !x->ws_nocompfrag ? WS_FRAME_SIZE_BROWSERS : 0;
    if (max == 0 || cl <= max)
        max = cl ? cl : 1;
    size_t nframes = (cl + max - 1) / max;
    if (nframes == 0)
        nframes = 1;
    if (bytebuf_reserve(&x->frames, cl + nframes * 10))
        return -1;
    size_t off = 0;
    do {
        size_t k = cl - off < max ? cl - off : max;
        unsigned char *h = (unsigned char *)x->frames.p + x->frames.len;
        size_t hl = ws_frame_header(h, WS_OP_BINARY, off == 0, off + k == cl, k, NULL);
        if (off == 0)
            h[0] |= 0x40; /* RSV1: compressed, on the first frame only */
        x->frames.len += hl;
        memcpy(x->frames.p + x->frames.len, cp + off, k);
        x->frames.len += k;
        off += k;
    } while (off < cl);
    if (x->zbuf.cap > 4 * 1024 * 1024)
        bytebuf_free(&x->zbuf);
    return 0;
}

/* Frame plaintext as binary messages into x->frames (after the queued control bytes). */
static int ws_frame_data(xport *x, const char *p, size_t n)
{
    if (x->ws_compress && n > WS_COMPRESS_THRESHOLD)
        return ws_frame_compressed(x, p, n);
    size_t max = x->ws_browser ? WS_FRAME_SIZE_BROWSERS : n;
    if (max == 0)
        max = 1;
    size_t nframes = (n + max - 1) / max;
    if (bytebuf_reserve(&x->frames, n + nframes * 10))
        return -1;
    while (n > 0) {
        size_t k = n < max ? n : max;
        unsigned char *h = (unsigned char *)x->frames.p + x->frames.len;
        x->frames.len += ws_frame_header(h, WS_OP_BINARY, true, true, k, NULL);
        memcpy(x->frames.p + x->frames.len, p, k);
        x->frames.len += k;
        p += k;
        n -= k;
    }
    return 0;
}

int xport_encode(client *c, uv_buf_t *b)
{
    xport *x = c->xp;
    const char *p = b->base;
    size_t n = b->len;
    x->out.len = 0;
    if (x->ws) {
        x->frames.len = 0;
        if (x->ctl.len) {
            if (bytebuf_append(&x->frames, x->ctl.p, x->ctl.len))
                return -1;
            x->ctl.len = 0;
        }
        /* data only on an open connection (nothing before the upgrade, nothing after our
         * close frame) */
        if (n && x->ws_state == WSS_OPEN && !x->ws_close_sent && ws_frame_data(x, p, n))
            return -1;
        p = x->frames.p;
        n = x->frames.len;
        if (x->frames.cap > 4 * 1024 * 1024 && n == 0)
            bytebuf_free(&x->frames);
    }
    if (!x->tls) {
        *b = uv_buf_init((char *)p, (unsigned)n);
        return 0;
    }
    if (x->tls_done) {
        if (n && tlsio_write(x->tls, p, n) != TLSIO_OK)
            return -1;
    } else if (n && x->tls_server && !x->tls_input_seen && !x->ws) {
        /* before the client started TLS: the plain INFO */
        if (bytebuf_append(&x->out, p, n))
            return -1;
    } else if (n) {
        /* during the handshake: sent encrypted once it completed */
        if (bytebuf_append(&x->held, p, n))
            return -1;
    }
    if (tlsio_take_out(x->tls, &x->out) != TLSIO_OK)
        return -1;
    if (x->out.cap > 4 * 1024 * 1024 && x->out.len == 0)
        bytebuf_free(&x->out);
    *b = uv_buf_init(x->out.p, (unsigned)x->out.len);
    return 0;
}

int xport_close(client *c, int reason, bool flush)
{
    xport *x = c->xp;
    if (x->tls && !x->tls_done && (reason == CR_CLIENT || reason == CR_READ_ERROR)) {
        /* the peer left during the handshake: nats-server reports it as a failed one */
        XLOG(c, EMBER_LOG_ERROR, "TLS handshake error: %s",
             reason == CR_CLIENT ? "EOF" : "read error");
        reason = CR_TLS_HANDSHAKE;
    }
    if (x->ws && x->ws_state == WSS_OPEN && !x->ws_close_sent) {
        const char *t = close_reason_text(reason);
        ws_queue_close(x, ws_status_for(reason), t, strlen(t));
    }
    if (x->tls && x->tls_done)
        tlsio_shutdown(x->tls);
    if (!flush)
        return reason;
    uv_buf_t b = uv_buf_init(c->ob.p, (unsigned)c->ob.len);
    if (xport_encode(c, &b) == 0 && b.len)
        uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    return reason;
}

void xport_housekeeping(client *c, uint64_t now)
{
    xport *x = c->xp;
    if (x->tls && !x->tls_done) {
        if (x->tls_timeout_ms > 0 && now - x->tls_start_ms >= (uint64_t)x->tls_timeout_ms) {
            /* nats-server queues "-ERR 'Secure Connection - TLS Required'" but closes before
             * it reaches the client: the peer sees the connection end */
            XLOG(c, EMBER_LOG_ERROR, "TLS handshake timeout");
            client_tcp_close(c, CR_TLS_HANDSHAKE);
        }
        return;
    }
    if (x->ws && x->ws_state == WSS_HTTP && x->ws_timeout_ms > 0 &&
        now - x->ws_start_ms >= (uint64_t)x->ws_timeout_ms) {
        XLOG(c, EMBER_LOG_DEBUG, "websocket handshake timeout");
        client_tcp_close(c, CR_READ_ERROR);
    }
}

static void send_info_cb(client *c) { client_send_info(c); }

int xport_accept_client(client *c, bool ws, bool *info_now)
{
    struct xport_srv *xs = c->srv->xs;
    *info_now = true;
    if (!xs)
        return 0;
    if (ws) {
        xport *x = xp_get(c);
        if (!x)
            return -1;
        x->ws = true;
        x->ws_state = WSS_HTTP;
        x->ws_start_ms = time_mono_ms();
        x->ws_timeout_ms = xs->ws_timeout_ms;
        *info_now = false; /* after the upgrade */
        /* wss: TLS first (HTTPS), then the HTTP upgrade on top */
        if (xs->ws_ctx && xport_start_tls(c, xs->ws_ctx, true, NULL, xs->ws_timeout_ms, NULL))
            return -1;
        return 0;
    }
    if (!xs->tls_ctx)
        return 0;
    if (xs->handshake_first)
        *info_now = false;
    return xport_start_tls(c, xs->tls_ctx, true, NULL, xs->tls_timeout_ms,
                           xs->handshake_first ? send_info_cb : NULL);
}

void xport_ws_varz(const server *s, cJSON *ws)
{
    const struct xport_srv *xs = s->xs;
    if (!xs || !xs->ws_on)
        return;
    if (xs->ws_auth.no_auth_user)
        cJSON_AddStringToObject(ws, "no_auth_user", xs->ws_auth.no_auth_user);
    if (xs->ws_auth.timeout_ms > 0)
        cJSON_AddNumberToObject(ws, "auth_timeout", (double)xs->ws_auth.timeout_ms / 1000.0);
    if (xs->ws_same_origin)
        cJSON_AddBoolToObject(ws, "same_origin", true);
    if (xs->ws_origins_cfg_n) {
        cJSON *a = cJSON_AddArrayToObject(ws, "allowed_origins");
        for (size_t i = 0; a && i < xs->ws_origins_cfg_n; i++)
            cJSON_AddItemToArray(a, cJSON_CreateString(xs->ws_origins_cfg[i]));
    }
}

void xport_reload_tls(server *s, SSL_CTX *ctx, bool verify)
{
    struct xport_srv *xs = s->xs;
    if (!xs || !xs->tls_ctx) {
        tlsio_ctx_free(ctx);
        return;
    }
    SSL_CTX *old = xs->tls_ctx;
    xs->tls_ctx = ctx;
    xs->tls_verify = verify;
    tlsio_ctx_free(old); /* its connections hold references of their own */
}

void xport_info(client *c, cJSON *j)
{
    struct xport_srv *xs = c->srv->xs;
    if (!xs)
        return;
    if (c->xp && c->xp->ws) {
        bool tls = xs->ws_ctx != NULL;
        if (tls) {
            cJSON_AddBoolToObject(j, "tls_required", true);
            cJSON_AddBoolToObject(j, "tls_available", true);
        }
        cJSON_ReplaceItemInObjectCaseSensitive(j, "host", cJSON_CreateString(xs->ws_host));
        cJSON_ReplaceItemInObjectCaseSensitive(j, "port",
                                               cJSON_CreateNumber(atomic_load(&xs->ws_bound_port)));
        return;
    }
    if (xs->tls_ctx) {
        cJSON_AddBoolToObject(j, "tls_required", true);
        if (xs->tls_verify)
            cJSON_AddBoolToObject(j, "tls_verify", true);
    }
}
