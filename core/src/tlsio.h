/* tlsio: a TLS engine over memory BIOs (OpenSSL libssl), independent of any socket.
 *
 * The owner moves bytes: ciphertext read from the socket goes in with tlsio_feed,
 * plaintext comes out of tlsio_read; plaintext to send goes in with tlsio_write and the
 * ciphertext to put on the socket comes out of tlsio_take_out. Handshake records produced
 * while feeding (ServerHello, certificate requests, alerts, session tickets) also appear
 * in the output, so after every feed/read/write the owner must send what is pending.
 *
 * Both sides are supported: server mode for accepted connections (optionally requiring a
 * verified client certificate) and client mode for outbound connections (CA file, client
 * certificate and key, peer and host name verification, SNI).
 *
 * Not thread-safe: one tlsio is used by one thread at a time (Ember: the loop thread). An
 * SSL_CTX from tlsio_ctx_new may be shared by any number of tlsio on any threads.
 */
#ifndef EMBER_TLSIO_H
#define EMBER_TLSIO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "util.h"

typedef struct tlsio_config {
    const char *cert_file;  /* PEM certificate (chain); server: required; client: optional */
    const char *key_file;   /* PEM private key of cert_file */
    const char *ca_file;    /* PEM CA bundle: server: to verify client certificates;
                             * client: to verify the server (NULL: the system's defaults) */
    bool verify;            /* server: require and verify a client certificate */
    bool insecure;          /* client: do not verify the server's certificate */
} tlsio_config;

/* An SSL_CTX for server (server true) or client mode from cfg (TLS 1.2 minimum, as
 * nats-server). NULL on failure with a message in err ("error parsing X509 certificate/key
 * pair: ...", "missing 'key_file' in TLS configuration", ...). Free with tlsio_ctx_free. */
SSL_CTX *tlsio_ctx_new(bool server, const tlsio_config *cfg, char *err, size_t errlen);
void tlsio_ctx_free(SSL_CTX *ctx);

typedef struct tlsio tlsio;

/* A new TLS session over ctx. server false: client mode; sni (may be NULL) is sent as the
 * SNI server name and, unless the context is insecure, checked against the server's
 * certificate (a host name or an IP address literal). NULL on ENOMEM. */
tlsio *tlsio_new(SSL_CTX *ctx, bool server, const char *sni);
void tlsio_free(tlsio *t);

enum {
    TLSIO_OK = 0,       /* progress (or nothing to do) */
    TLSIO_WANT = 0,     /* alias: more input needed */
    TLSIO_ERR = -1,     /* fatal: see tlsio_error; send the pending output (an alert), close */
    TLSIO_CLOSED = -2,  /* the peer sent close_notify */
};

/* Give ciphertext read from the socket. Copies it. TLSIO_OK or TLSIO_ERR (ENOMEM). */
int tlsio_feed(tlsio *t, const void *p, size_t n);
/* Advance the handshake with what was fed: 1 when complete (now or before), TLSIO_WANT (0)
 * when more input is needed, TLSIO_ERR when it failed (tlsio_error says why, in
 * nats-server's words where it has them). A client starts its handshake with this call
 * (its ClientHello appears in the output). */
int tlsio_handshake(tlsio *t);
bool tlsio_handshake_done(const tlsio *t);
/* Plaintext out: > 0 bytes copied into buf, TLSIO_WANT (0) when nothing more is
 * available, TLSIO_ERR, or TLSIO_CLOSED. Completes the handshake first when needed. */
ssize_t tlsio_read(tlsio *t, void *buf, size_t cap);
/* Plaintext in (only after the handshake completed): encrypted at once into the output.
 * TLSIO_OK or TLSIO_ERR. */
int tlsio_write(tlsio *t, const void *p, size_t n);
/* Queue a close_notify alert (best effort). */
void tlsio_shutdown(tlsio *t);
/* Ciphertext waiting to be sent, in bytes. */
size_t tlsio_pending_out(const tlsio *t);
/* Append all pending ciphertext to out. TLSIO_OK or TLSIO_ERR (ENOMEM). */
int tlsio_take_out(tlsio *t, bytebuf *out);
/* The last failure ("" when none); valid until the next call on t. */
const char *tlsio_error(const tlsio *t);
/* Negotiated protocol ("TLSv1.3") and cipher suite name, after the handshake. */
const char *tlsio_version(const tlsio *t);
const char *tlsio_cipher(const tlsio *t);
/* Did the peer present a certificate (verified when the context verifies)? */
bool tlsio_peer_has_cert(const tlsio *t);

#endif
