/* xport: the transports of TCP-based clients beyond plain TCP, layered under client.c's
 * read/write path: TLS (tlsio.c) and WebSocket (ws.c), alone or together (wss).
 *
 * A client with c->xp == NULL is plain TCP and never enters this file. With c->xp set:
 *   on_read       -> xport_input (decrypt / unframe)  -> client_input (the parser)
 *   client_flush  -> xport_encode (frame / encrypt)   -> the socket
 * Everything here runs on the loop thread (the thread of on_read and client_flush).
 *
 * Server level: the client TLS context (tls_* options), the websocket listener (ws_*
 * options) and its optional TLS context; s->xs is NULL when neither is configured. */
#ifndef EMBER_XPORT_H
#define EMBER_XPORT_H

#include <cjson/cJSON.h>
#include <openssl/ssl.h>
#include <stdbool.h>

#include "server.h"

/* ------------------------------------------------------------------ server level */

/* ember_server_new: validate the tls_* and ws_* options (err_set and -1 when wrong). */
int xport_check_options(const ember_server_options *o);
/* ember_server_new: load certificates and keys (s->xs stays NULL when nothing is
 * configured). 0, or the negative code given to err_set (EMBER_EINVAL with nats-server's
 * text, EMBER_ENOMEM). */
int xport_init(server *s, const ember_server_options *o);
/* Loop thread, at start: listen on the websocket port. 0, or -1 with err filled. */
int xport_start(server *s, char *err, size_t errlen);
/* Loop thread, at shutdown: close the websocket listener. */
void xport_stop(server *s);
/* server_destroy: free the contexts. */
void xport_free(server *s);
/* The bound websocket port (0: none). Any thread. */
int xport_ws_port(const server *s);

/* Websocket-specific authorization (nats-server's websocket { authorization {},
 * no_auth_user }, its wsConfigAuth / processClientOrLeafAuthentication). */
typedef struct xport_ws_auth {
    bool override;              /* user, token or no_auth_user set: websocket clients use
                                 * these instead of the server's user/pass/token/no_auth_user
                                 * (and need to authenticate even when TCP clients do not) */
    const char *user, *pass, *token, *no_auth_user;
    int64_t timeout_ms;         /* > 0: websocket clients' auth timeout */
} xport_ws_auth;
/* c's websocket authorization settings; NULL when c is not a websocket client. */
const xport_ws_auth *xport_ws_auth_of(const client *c);
/* Do websocket clients of s have their own credentials (override)? */
bool xport_ws_auth_override(const server *s);
/* /varz "websocket": no_auth_user, auth_timeout, same_origin, allowed_origins. */
void xport_ws_varz(const server *s, cJSON *ws);

/* ------------------------------------------------------------------ per client */

/* client.c, an accepted client (ws: from the websocket listener): attach TLS and/or
 * WebSocket as configured. *info_now is set false when the INFO must wait (TLS
 * handshake first, WebSocket upgrade): xport sends it with client_send_info. 0, or -1 on
 * ENOMEM (close the client). */
int xport_accept_client(client *c, bool ws, bool *info_now);

/* Put TLS under c (loop thread): server mode for an accepted connection, client mode
 * (server false) for one this server dialed, e.g. a leaf remote. sni: the name sent as
 * SNI and verified in the server's certificate (client mode, may be NULL). Bytes queued
 * before the call are sent as they are; from now on input is TLS, output is encrypted
 * once the handshake completed, and on_done(c) (may be NULL) runs when it did. In client
 * mode the ClientHello is sent at once. A failed handshake logs "TLS handshake error:
 * ..." and closes c (CR_TLS_HANDSHAKE); timeout_ms > 0 bounds the handshake (checked by
 * housekeeping). 0, or -1 on ENOMEM. */
int xport_start_tls(client *c, SSL_CTX *ctx, bool server, const char *sni, int64_t timeout_ms,
                    void (*on_done)(client *c));

/* client_release: free c->xp. */
void xport_client_free(client *c);
/* on_read: raw socket bytes (p may be modified). */
void xport_input(client *c, char *p, size_t n);
/* client_flush: does the transport have bytes of its own to send (handshake records,
 * control frames) even when the outbound buffer is empty? */
bool xport_pending(const client *c);
/* client_flush, when no write is in progress: b holds the plaintext to send (may be
 * empty); on return it holds the bytes to write (owned by the transport, valid until the
 * next xport_encode). 0, or -1 on a fatal error (close with CR_WRITE_ERROR). */
int xport_encode(client *c, uv_buf_t *b);
/* client_tcp_close: queue the farewell (a WebSocket close frame for reason, a TLS
 * close_notify) and, when flush, try to write it with what ob holds. Returns the close
 * reason to report (a peer leaving during the TLS handshake is CR_TLS_HANDSHAKE). */
int xport_close(client *c, int reason, bool flush);
/* Are the transport's handshakes (TLS, WebSocket upgrade) complete? */
bool xport_ready(const client *c);
/* client_tcp_housekeeping while !xport_ready: the handshake timeouts. */
void xport_housekeeping(client *c, uint64_t now_ms);
/* send_info: the INFO fields that depend on the transport (tls_required, tls_verify,
 * websocket host/port). */
void xport_info(client *c, cJSON *info);
/* A reload's new TLS context for client connections (loop thread): new connections use
 * it, connections made before keep theirs; the old one is released. */
void xport_reload_tls(server *s, SSL_CTX *ctx, bool verify);
/* Is c a WebSocket client / a TLS one (handshake done)? */
bool xport_is_ws(const client *c);
bool xport_is_tls(const client *c);
/* The TLS error of c's session (why a handshake failed), NULL when none. Loop thread. */
const char *xport_tls_error(const client *c);

#endif
