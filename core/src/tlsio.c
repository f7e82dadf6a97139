/* tlsio: TLS over memory BIOs (see tlsio.h). Error texts follow what nats-server (Go's
 * crypto/tls) logs for the same failures where the mapping is clear, OpenSSL's own
 * reason text otherwise. */
#define _GNU_SOURCE
#include "tlsio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

struct tlsio {
    SSL *ssl;
    BIO *rbio;            /* network -> SSL (owned by ssl) */
    BIO *wbio;            /* SSL -> network (owned by ssl) */
    bool server;
    bool done;            /* handshake complete */
    bool failed;
    bool first_checked;   /* server: the first record's type was looked at */
    int alert_in;         /* fatal alert received from the peer (-1: none) */
    char err[256];
};

/* Go's names of TLS alerts (crypto/tls alert.go), for "remote error: tls: <name>". */
static const char *go_alert_name(int a)
{
    switch (a) {
    case 0: return "close notify";
    case 10: return "unexpected message";
    case 20: return "bad record MAC";
    case 21: return "decryption failed";
    case 22: return "record overflow";
    case 30: return "decompression failure";
    case 40: return "handshake failure";
    case 42: return "bad certificate";
    case 43: return "unsupported certificate";
    case 44: return "revoked certificate";
    case 45: return "expired certificate";
    case 46: return "unknown certificate";
    case 47: return "illegal parameter";
    case 48: return "unknown certificate authority";
    case 49: return "access denied";
    case 50: return "error decoding message";
    case 51: return "error decrypting message";
    case 70: return "protocol version not supported";
    case 71: return "insufficient security level";
    case 80: return "internal error";
    case 86: return "inappropriate fallback";
    case 90: return "user canceled";
    case 100: return "no renegotiation";
    case 109: return "missing extension";
    case 110: return "unsupported extension";
    case 112: return "unrecognized name";
    case 115: return "unknown PSK identity";
    case 116: return "certificate required";
    case 120: return "no application protocol";
    default: return NULL;
    }
}

static bool inet_pton_any(const char *s, unsigned char *out)
{
    return inet_pton(AF_INET, s, out) == 1 || inet_pton(AF_INET6, s, out) == 1;
}

static void info_cb(const SSL *ssl, int where, int ret)
{
    if (!(where & SSL_CB_ALERT) || !(where & SSL_CB_READ))
        return; /* only alerts received from the peer */
    tlsio *t = SSL_get_app_data(ssl);
    /* ret: level << 8 | description; level 2 = fatal (any alert but close_notify ends it) */
    int desc = ret & 0xff;
    if (t && desc != 0 && t->alert_in < 0)
        t->alert_in = desc;
}

static void openssl_errtext(char *buf, size_t cap, const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, cap, "%s", r ? r : fallback);
}

SSL_CTX *tlsio_ctx_new(bool server, const tlsio_config *cfg, char *err, size_t errlen)
{
    tlsio_config none = {0};
    if (!cfg)
        cfg = &none;
    ERR_clear_error();
    if (cfg->cert_file && *cfg->cert_file && !(cfg->key_file && *cfg->key_file)) {
        snprintf(err, errlen, "missing 'key_file' in TLS configuration");
        return NULL;
    }
    if (cfg->key_file && *cfg->key_file && !(cfg->cert_file && *cfg->cert_file)) {
        snprintf(err, errlen, "missing 'cert_file' in TLS configuration");
        return NULL;
    }
    if (server && !(cfg->cert_file && *cfg->cert_file)) {
        snprintf(err, errlen, "missing 'cert_file' in TLS configuration");
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx) {
        snprintf(err, errlen, "cannot create the TLS context: out of memory");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    if (cfg->cert_file && *cfg->cert_file) {
        char why[160];
        /* an unreadable file: Go's words (nats-server 2.9) rather than OpenSSL's */
        const char *files[2] = {cfg->cert_file, cfg->key_file};
        for (int i = 0; i < 2; i++) {
            FILE *f = fopen(files[i], "r");
            if (!f) {
                snprintf(why, sizeof why, "%s", strerror(errno));
                if (why[0] >= 'A' && why[0] <= 'Z')
                    why[0] = (char)(why[0] - 'A' + 'a');
                snprintf(err, errlen, "error parsing X509 certificate/key pair: open %s: %s",
                         files[i], why);
                goto fail;
            }
            fclose(f);
        }
        if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1) {
            openssl_errtext(why, sizeof why, "cannot read the certificate");
            snprintf(err, errlen, "error parsing X509 certificate/key pair: %s: %s", cfg->cert_file,
                     why);
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1) {
            unsigned long e = ERR_peek_last_error();
            if (e && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
                snprintf(err, errlen, "error parsing X509 certificate/key pair: tls: private key "
                                      "does not match public key");
                goto fail;
            }
            openssl_errtext(why, sizeof why, "cannot read the private key");
            snprintf(err, errlen, "error parsing X509 certificate/key pair: %s: %s", cfg->key_file,
                     why);
            goto fail;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            snprintf(err, errlen,
                     "error parsing X509 certificate/key pair: tls: private key does not match "
                     "public key");
            goto fail;
        }
    }
    if (cfg->ca_file && *cfg->ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL) != 1) {
            FILE *f = fopen(cfg->ca_file, "r");
            if (!f)
                snprintf(err, errlen, "open %s: %s", cfg->ca_file, strerror(errno));
            else {
                fclose(f);
                snprintf(err, errlen, "failed to parse root ca certificate");
            }
            goto fail;
        }
    } else if (!server) {
        SSL_CTX_set_default_verify_paths(ctx);
    }
    if (server) {
        if (cfg->verify)
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        else
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        /* a client certificate must chain to ca_file: advertise its names */
        if (cfg->verify && cfg->ca_file && *cfg->ca_file) {
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca_file);
            if (names)
                SSL_CTX_set_client_CA_list(ctx, names);
        }
        static const unsigned char sid_ctx[] = "ember";
        SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    } else {
        SSL_CTX_set_verify(ctx, cfg->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    }
    ERR_clear_error();
    return ctx;
fail:
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return NULL;
}

void tlsio_ctx_free(SSL_CTX *ctx)
{
    if (ctx)
        SSL_CTX_free(ctx);
}

tlsio *tlsio_new(SSL_CTX *ctx, bool server, const char *sni)
{
    tlsio *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->server = server;
    t->alert_in = -1;
    t->ssl = SSL_new(ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        if (t->ssl)
            SSL_free(t->ssl);
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        free(t);
        return NULL;
    }
    /* an empty read BIO means "want more", not EOF */
    BIO_set_mem_eof_return(t->rbio, -1);
    BIO_set_mem_eof_return(t->wbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_app_data(t->ssl, t);
    SSL_set_info_callback(t->ssl, info_cb);
    if (server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if (sni && *sni) {
            unsigned char ip[16];
            bool is_ip = inet_pton_any(sni, ip);
            if (!is_ip)
                SSL_set_tlsext_host_name(t->ssl, sni);
            if (SSL_get_verify_mode(t->ssl) & SSL_VERIFY_PEER) {
                X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
                if (is_ip)
                    X509_VERIFY_PARAM_set1_ip_asc(vp, sni);
                else
                    X509_VERIFY_PARAM_set1_host(vp, sni, 0);
            }
        }
    }
    return t;
}

void tlsio_free(tlsio *t)
{
    if (!t)
        return;
    SSL_free(t->ssl); /* frees both BIOs */
    free(t);
}

int tlsio_feed(tlsio *t, const void *p, size_t n)
{
    if (n == 0)
        return TLSIO_OK;
    if (t->server && !t->first_checked) {
        /* Go's crypto/tls: a first record that is neither a handshake nor an alert is a
         * plain-text client (a probe); say so as nats-server does */
        t->first_checked = true;
        unsigned char b0 = ((const unsigned char *)p)[0];
        if (b0 != 0x16 && b0 != 0x15) {
            t->failed = true;
            snprintf(t->err, sizeof t->err,
                     b0 == 0x80 ? "tls: unsupported SSLv2 handshake received"
                                : "tls: first record does not look like a TLS handshake");
            return TLSIO_ERR;
        }
    }
    while (n > 0) {
        int chunk = n > (size_t)1 << 30 ? 1 << 30 : (int)n;
        int w = BIO_write(t->rbio, p, chunk);
        if (w <= 0) {
            snprintf(t->err, sizeof t->err, "out of memory");
            return TLSIO_ERR;
        }
        p = (const char *)p + w;
        n -= (size_t)w;
    }
    return TLSIO_OK;
}

/* Describe a failed SSL call (handshake or read). */
static int fail(tlsio *t, int rc)
{
    t->failed = true;
    unsigned long e = ERR_peek_last_error();
    int reason = e ? ERR_GET_REASON(e) : 0;
    const char *an = t->alert_in >= 0 ? go_alert_name(t->alert_in) : NULL;
    long vr = SSL_get_verify_result(t->ssl);
    if (t->alert_in >= 0) {
        if (an)
            snprintf(t->err, sizeof t->err, "remote error: tls: %s", an);
        else
            snprintf(t->err, sizeof t->err, "remote error: tls: alert(%d)", t->alert_in);
    } else if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
        snprintf(t->err, sizeof t->err, "tls: client didn't provide a certificate");
    } else if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED && vr != X509_V_OK) {
        const char *why = X509_verify_cert_error_string(vr);
        if (vr == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
            vr == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
            vr == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
            vr == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE)
            why = "x509: certificate signed by unknown authority";
        else if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
            why = "x509: certificate is valid for other names";
        else if (vr == X509_V_ERR_CERT_HAS_EXPIRED || vr == X509_V_ERR_CERT_NOT_YET_VALID)
            why = "x509: certificate has expired or is not yet valid";
        /* Go's crypto/tls (nats-server 2.9) words it per side */
        snprintf(t->err, sizeof t->err, "tls: failed to verify %scertificate: %s",
                 t->server ? "client " : "", why);
    } else if (e) {
        char buf[200];
        ERR_error_string_n(e, buf, sizeof buf);
        const char *r = ERR_reason_error_string(e);
        snprintf(t->err, sizeof t->err, "tls: %s", r ? r : buf);
    } else if (rc == 0) {
        snprintf(t->err, sizeof t->err, "EOF");
    } else {
        snprintf(t->err, sizeof t->err, "tls: handshake failed");
    }
    ERR_clear_error();
    return TLSIO_ERR;
}

int tlsio_handshake(tlsio *t)
{
    if (t->done)
        return 1;
    if (t->failed)
        return TLSIO_ERR;
    ERR_clear_error();
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1) {
        t->done = true;
        return 1;
    }
    int e = SSL_get_error(t->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return TLSIO_WANT;
    }
    return fail(t, rc);
}

bool tlsio_handshake_done(const tlsio *t) { return t->done; }

ssize_t tlsio_read(tlsio *t, void *buf, size_t cap)
{
    if (t->failed)
        return TLSIO_ERR;
    if (!t->done) {
        int h = tlsio_handshake(t);
        if (h != 1)
            return h;
    }
    if (cap > INT32_MAX)
        cap = INT32_MAX;
    ERR_clear_error();
    int rc = SSL_read(t->ssl, buf, (int)cap);
    if (rc > 0)
        return rc;
    int e = SSL_get_error(t->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return TLSIO_WANT;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        return TLSIO_CLOSED;
    }
    return fail(t, rc);
}

int tlsio_write(tlsio *t, const void *p, size_t n)
{
    if (t->failed || !t->done) {
        if (!t->failed)
            snprintf(t->err, sizeof t->err, "write before the TLS handshake completed");
        return TLSIO_ERR;
    }
    ERR_clear_error();
    while (n > 0) {
        int chunk = n > (size_t)1 << 30 ? 1 << 30 : (int)n;
        int rc = SSL_write(t->ssl, p, chunk);
        if (rc <= 0)
            return fail(t, rc);
        p = (const char *)p + rc;
        n -= (size_t)rc;
    }
    return TLSIO_OK;
}

void tlsio_shutdown(tlsio *t)
{
    if (t->done && !t->failed) {
        ERR_clear_error();
        SSL_shutdown(t->ssl);
        ERR_clear_error();
    }
}

size_t tlsio_pending_out(const tlsio *t) { return BIO_ctrl_pending(t->wbio); }

int tlsio_take_out(tlsio *t, bytebuf *out)
{
    size_t n = BIO_ctrl_pending(t->wbio);
    while (n > 0) {
        if (bytebuf_reserve(out, n))
            return TLSIO_ERR;
        int chunk = n > (size_t)1 << 30 ? 1 << 30 : (int)n;
        int r = BIO_read(t->wbio, out->p + out->len, chunk);
        if (r <= 0)
            break;
        out->len += (size_t)r;
        n = BIO_ctrl_pending(t->wbio);
    }
    return TLSIO_OK;
}

const char *tlsio_error(const tlsio *t) { return t->err; }

const char *tlsio_version(const tlsio *t) { return SSL_get_version(t->ssl); }

const char *tlsio_cipher(const tlsio *t)
{
    const char *c = SSL_get_cipher_name(t->ssl);
    return c ? c : "";
}

bool tlsio_peer_has_cert(const tlsio *t)
{
    X509 *x = SSL_get0_peer_certificate(t->ssl);
    return x != NULL;
}
