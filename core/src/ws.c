/* ws: WebSocket framing and the HTTP Upgrade handshake (see ws.h). */
#define _GNU_SOURCE
#include "ws.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <zlib.h>

/* ------------------------------------------------------------------ upgrade request */

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static bool is_ows(char c) { return c == ' ' || c == '\t'; }

/* Does the comma-separated list v[0..n) hold token (case-insensitive)? */
static bool list_has(const char *v, size_t n, const char *token)
{
    size_t tl = strlen(token);
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && v[j] != ',')
            j++;
        size_t a = i, b = j;
        while (a < b && is_ows(v[a]))
            a++;
        while (b > a && is_ows(v[b - 1]))
            b--;
        if (b - a == tl && strncasecmp(v + a, token, tl) == 0)
            return true;
        i = j + 1;
    }
    return false;
}

/* permessage-deflate among the extensions (any parameters) */
static bool ext_has_pmd(const char *v, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && v[j] != ',' && v[j] != ';')
            j++;
        size_t a = i, b = j;
        while (a < b && is_ows(v[a]))
            a++;
        while (b > a && is_ows(v[b - 1]))
            b--;
        if (b - a == 18 && strncasecmp(v + a, "permessage-deflate", 18) == 0)
            return true;
        i = j + 1;
    }
    return false;
}

static bool b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* Go's base64.StdEncoding.DecodeString(key) gives 16 bytes */
static bool key_valid(const char *k, size_t n)
{
    if (n != 24 || k[22] != '=' || k[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (!b64_char(k[i]))
            return false;
    return true;
}

static bool hname_is(const char *p, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(p, name, n) == 0;
}

size_t ws_upgrade_parse(const char *p, size_t n, ws_upgrade *u)
{
    memset(u, 0, sizeof *u);
    /* find the end of the headers: an empty line (CRLF CRLF, or bare LFs as Go accepts) */
    size_t end = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\n')
            continue;
        if (i + 1 < n && p[i + 1] == '\n') {
            end = i + 2;
            break;
        }
        if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') {
            end = i + 3;
            break;
        }
    }
    if (end == 0) {
        if (n >= WS_MAX_UPGRADE_REQUEST) {
            u->status = 431;
            u->reason = "request headers too large";
            return n;
        }
        return 0;
    }
    if (end > WS_MAX_UPGRADE_REQUEST) {
        u->status = 431;
        u->reason = "request headers too large";
        return end;
    }
    /* request line: METHOD SP target SP HTTP/1.x */
    const char *line = p, *le = memchr(p, '\n', end);
    size_t ll = (size_t)(le - line);
    if (ll && line[ll - 1] == '\r')
        ll--;
    const char *sp1 = memchr(line, ' ', ll);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', ll - (size_t)(sp1 + 1 - line)) : NULL;
    if (!sp1 || !sp2 || sp1 == line || sp2 == sp1 + 1 || (size_t)(line + ll - (sp2 + 1)) != 8 ||
        strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || (sp2[8] != '0' && sp2[8] != '1')) {
        u->status = 400;
        u->reason = "malformed HTTP request";
        return end;
    }
    bool get = (size_t)(sp1 - line) == 3 && memcmp(line, "GET", 3) == 0;
    bool have_origin = false, have_sorigin = false;
    const char *sorigin = NULL;
    size_t sorigin_len = 0;
    bool host = false, upgrade = false, connection = false, version = false, have_key = false,
         key_ok = false, have_ua = false, have_nm = false, have_xff = false;
    for (const char *h = le + 1; h < p + end;) {
        const char *he = memchr(h, '\n', (size_t)(p + end - h));
        if (!he)
            break;
        size_t hl = (size_t)(he - h);
        if (hl && h[hl - 1] == '\r')
            hl--;
        const char *next = he + 1;
        if (hl == 0)
            break;
        const char *colon = memchr(h, ':', hl);
        if (!colon || colon == h || is_ows(h[0])) {
            u->status = 400;
            u->reason = "malformed HTTP request";
            return end;
        }
        size_t nl = (size_t)(colon - h);
        const char *v = colon + 1, *ve = h + hl;
        while (v < ve && is_ows(*v))
            v++;
        while (ve > v && is_ows(ve[-1]))
            ve--;
        size_t vl = (size_t)(ve - v);
        if (hname_is(h, nl, "host")) {
            if (!host && vl > 0) {
                u->host = v;
                u->host_len = vl;
            }
            host = host || vl > 0;
        } else if (hname_is(h, nl, "origin")) {
            if (!have_origin && vl > 0) {
                u->origin = v;
                u->origin_len = vl;
            }
            have_origin = true;
        } else if (hname_is(h, nl, "sec-websocket-origin")) {
            if (!have_sorigin && vl > 0) {
                sorigin = v;
                sorigin_len = vl;
            }
            have_sorigin = true;
        } else if (hname_is(h, nl, "upgrade")) {
            upgrade = upgrade || list_has(v, vl, "websocket");
        } else if (hname_is(h, nl, "connection")) {
            connection = connection || list_has(v, vl, "upgrade");
        } else if (hname_is(h, nl, "sec-websocket-key")) {
            if (!have_key) {
                have_key = vl > 0;
                key_ok = key_valid(v, vl);
                if (key_ok) {
                    memcpy(u->key, v, vl);
                    u->key[vl] = 0;
                }
            }
        } else if (hname_is(h, nl, "sec-websocket-version")) {
            version = version || list_has(v, vl, "13");
        } else if (hname_is(h, nl, "sec-websocket-extensions")) {
            u->compress = u->compress || ext_has_pmd(v, vl);
        } else if (hname_is(h, nl, "user-agent")) {
            if (!have_ua) {
                u->browser = vl >= 8 && memcmp(v, "Mozilla/", 8) == 0;
                u->safari = u->browser && memmem(v, vl, "Version/", 8) &&
                            memmem(v, vl, "Safari/", 7);
            }
            have_ua = true;
        } else if (hname_is(h, nl, "nats-no-masking")) {
            if (!have_nm)
                u->no_masking = vl == 4 && memcmp(v, "true", 4) == 0;
            have_nm = true;
        } else if (hname_is(h, nl, "x-forwarded-for")) {
            if (!have_xff && vl < sizeof u->forwarded_for) {
                char ip[64];
                unsigned char bin[16];
                memcpy(ip, v, vl);
                ip[vl] = 0;
                if (inet_pton(AF_INET, ip, bin) == 1 || inet_pton(AF_INET6, ip, bin) == 1)
                    memcpy(u->forwarded_for, ip, vl + 1);
            }
            have_xff = true;
        }
        h = next;
    }
    if (!u->origin && sorigin) { /* Go's Header.Get("Origin") is "" when absent or empty */
        u->origin = sorigin;
        u->origin_len = sorigin_len;
    }
    /* nats-server's checks, in its order (RFC 6455 section 4.2.1) */
    if (!get) {
        u->status = 405;
        u->reason = "request method must be GET";
    } else if (!host) {
        u->status = 400;
        u->reason = "'Host' missing in request";
    } else if (!upgrade) {
        u->status = 400;
        u->reason = "invalid value for header 'Upgrade'";
    } else if (!connection) {
        u->status = 400;
        u->reason = "invalid value for header 'Connection'";
    } else if (!have_key) {
        u->status = 400;
        u->reason = "key missing";
    } else if (!key_ok) {
        u->status = 400;
        u->reason = "invalid websocket key";
    } else if (!version) {
        u->status = 400;
        u->reason = "invalid version";
    }
    return end;
}

/* ------------------------------------------------------------------ origin checks */

static bool is_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static void lower_copy(char *dst, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
    dst[n] = 0;
}

/* nats-server's wsGetHostAndPort: net.SplitHostPort, a missing port becoming the scheme's
 * default (and the host the whole string, brackets included), the host in lower case */
static int host_and_port(bool tls, const char *hp, size_t n, ws_origin *o, char *err,
                         size_t errlen)
{
    const char *host = hp, *port = NULL;
    size_t hl = n, pl = 0;
    const char *colon = NULL;
    for (size_t i = n; i > 0; i--)
        if (hp[i - 1] == ':') {
            colon = hp + i - 1;
            break;
        }
    const char *msg = NULL;
    size_t j = 0, k = 0;
    if (!colon) {
        port = NULL; /* missing port */
    } else if (n && hp[0] == '[') {
        const char *end = memchr(hp, ']', n);
        if (!end) {
            msg = "missing ']' in address";
        } else if ((size_t)(end + 1 - hp) == n) {
            port = NULL;
        } else if (end + 1 == colon) {
            host = hp + 1;
            hl = (size_t)(end - hp - 1);
            j = 1;
            k = (size_t)(end + 1 - hp);
            port = colon + 1;
        } else if (end[1] == ':') {
            msg = "too many colons in address";
        } else {
            port = NULL;
        }
    } else {
        hl = (size_t)(colon - hp);
        if (memchr(hp, ':', hl))
            msg = "too many colons in address";
        port = colon + 1;
    }
    if (!msg && port) {
        if (memchr(hp + j, '[', n - j))
            msg = "unexpected '[' in address";
        else if (memchr(hp + k, ']', n - k))
            msg = "unexpected ']' in address";
    }
    if (msg) {
        snprintf(err, errlen, "address %.*s: %s", (int)(n > 300 ? 300 : n), hp, msg);
        return -1;
    }
    if (port) {
        pl = (size_t)(hp + n - port);
    } else {
        host = hp;
        hl = n;
        port = tls ? "443" : "80";
        pl = strlen(port);
    }
    if (hl >= sizeof o->host || pl >= sizeof o->port) {
        snprintf(err, errlen, "address %.*s: too long", (int)(n > 300 ? 300 : n), hp);
        return -1;
    }
    lower_copy(o->host, host, hl);
    memcpy(o->port, port, pl);
    o->port[pl] = 0;
    return 0;
}

int ws_origin_parse(const char *s, size_t n, ws_origin *o, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    int pn = (int)(n > 300 ? 300 : n);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            snprintf(err, errlen, "parse \"%.*s\": net/url: invalid control character in URL",
                     pn, s);
            return -1;
        }
    /* Go's getScheme: a letter, then letters, digits, '+', '-', '.', up to ':' */
    size_t sl = 0;
    bool scheme = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            continue;
        if ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.') {
            if (i == 0)
                break;
            continue;
        }
        if (c == ':') {
            if (i == 0) {
                snprintf(err, errlen, "parse \"%.*s\": missing protocol scheme", pn, s);
                return -1;
            }
            sl = i;
            scheme = true;
        }
        break;
    }
    const char *rest = s + (scheme ? sl + 1 : 0);
    size_t rl = n - (size_t)(rest - s);
    if (scheme) {
        if (sl >= sizeof o->scheme) {
            snprintf(err, errlen, "parse \"%.*s\": scheme too long", pn, s);
            return -1;
        }
        lower_copy(o->scheme, s, sl);
    }
    const char *q = memchr(rest, '?', rl); /* the query is not part of the authority */
    if (q)
        rl = (size_t)(q - rest);
    const char *host = "";
    size_t hl = 0;
    if (rl == 0 || rest[0] != '/') {
        if (!scheme) {
            snprintf(err, errlen, "parse \"%.*s\": invalid URI for request", pn, s);
            return -1;
        }
        /* opaque ("http:x"): no host */
    } else if (scheme && rl >= 2 && rest[1] == '/') {
        const char *a = rest + 2, *ae = memchr(a, '/', rl - 2);
        if (!ae)
            ae = rest + rl;
        for (const char *p = ae; p > a; p--) /* userinfo@ */
            if (p[-1] == '@') {
                a = p;
                break;
            }
        host = a;
        hl = (size_t)(ae - a);
        /* Go's parseHost: what follows the host's last ':' must be a port */
        const char *cp = NULL;
        if (hl && host[0] == '[') {
            const char *rb = memchr(host, ']', hl);
            if (!rb) {
                snprintf(err, errlen, "parse \"%.*s\": missing ']' in host", pn, s);
                return -1;
            }
            if (rb + 1 < host + hl)
                cp = rb + 1; /* must be ":port" */
        } else {
            for (size_t i = hl; i > 0; i--)
                if (host[i - 1] == ':') {
                    cp = host + i - 1;
                    break;
                }
        }
        if (cp && (cp[0] != ':' || !is_digits(cp + 1, (size_t)(host + hl - cp - 1)))) {
            snprintf(err, errlen, "parse \"%.*s\": invalid port \"%.*s\" after host", pn, s,
                     (int)(host + hl - cp), cp);
            return -1;
        }
    }
    return host_and_port(strcmp(o->scheme, "https") == 0, host, hl, o, err, errlen);
}

int ws_origin_check(const ws_upgrade *u, bool tls, bool same_origin, const ws_origin *allowed,
                    size_t n, char *err, size_t errlen)
{
    if (!same_origin && n == 0)
        return 0;
    if (!u->origin || !u->origin_len) /* no Origin: not a browser, accepted (RFC 6455 1.6) */
        return 0;
    ws_origin o;
    if (ws_origin_parse(u->origin, u->origin_len, &o, err, errlen) != 0)
        return -1;
    if (same_origin) {
        ws_origin r;
        if (host_and_port(tls, u->host ? u->host : "", u->host ? u->host_len : 0, &r, err,
                          errlen) != 0)
            return -1;
        if (strcmp(o.host, r.host) != 0 || strcmp(o.port, r.port) != 0 ||
            strcmp(o.scheme, tls ? "https" : "http") != 0) {
            snprintf(err, errlen, "not same origin");
            return -1;
        }
    }
    if (n) {
        for (size_t i = 0; i < n; i++)
            if (!strcmp(allowed[i].host, o.host) && !strcmp(allowed[i].scheme, o.scheme) &&
                !strcmp(allowed[i].port, o.port))
                return 0;
        snprintf(err, errlen, "not in the allowed list");
        return -1;
    }
    return 0;
}

void ws_accept_key(const char *key, char out[32])
{
    unsigned char in[64 + sizeof ws_guid], md[EVP_MAX_MD_SIZE];
    size_t kl = strnlen(key, 64);
    memcpy(in, key, kl);
    memcpy(in + kl, ws_guid, sizeof ws_guid - 1);
    unsigned int mdl = 0;
    EVP_Digest(in, kl + sizeof ws_guid - 1, md, &mdl, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdl); /* 20 bytes -> 28 chars + NUL */
}

size_t ws_upgrade_response(const ws_upgrade *u, char *out, size_t cap)
{
    char acc[32];
    ws_accept_key(u->key, acc);
    int n = snprintf(out, cap,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                     "Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s\r\n",
                     acc,
                     u->compress ? "Sec-WebSocket-Extensions: permessage-deflate; "
                                   "server_no_context_takeover; client_no_context_takeover\r\n"
                                 : "",
                     u->no_masking ? "Nats-No-Masking: true\r\n" : "");
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static const char *status_text(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    default: return "Error";
    }
}

size_t ws_http_error(int status, char *out, size_t cap)
{
    const char *t = status_text(status);
    int n = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Sec-Websocket-Version: 13\r\nX-Content-Type-Options: nosniff\r\n"
                     "Connection: close\r\nContent-Length: %zu\r\n\r\n%s\n",
                     status, t, strlen(t) + 1, t);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* ------------------------------------------------------------------ frames */

static int perr(char *err, size_t cap, const char *msg)
{
    snprintf(err, cap, "%s", msg);
    return -1;
}

void ws_reader_init(ws_reader *r, bool mask_required)
{
    memset(r, 0, sizeof *r);
    r->mask_required = mask_required;
}

void ws_reader_inflate_on(ws_reader *r) { r->inflate = true; }

void ws_reader_free(ws_reader *r)
{
    if (r->z) {
        inflateEnd(r->z);
        free(r->z);
        r->z = NULL;
    }
}

/* Inflate p[0..n) of the current compressed message into h->data, in chunks. */
static int inflate_feed(ws_reader *r, const unsigned char *p, size_t n, const ws_handler *h,
                        char *err, size_t errlen)
{
    z_stream *z = r->z;
    if (r->z_end || n == 0)
        return 0; /* bytes after the final deflate block are ignored */
    unsigned char out[16384];
    z->next_in = (unsigned char *)p;
    z->avail_in = (uInt)n;
    for (;;) {
        z->next_out = out;
        z->avail_out = sizeof out;
        int zr = inflate(z, Z_SYNC_FLUSH);
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
            snprintf(err, errlen, "flate: %s", z->msg ? z->msg : "corrupt input");
            return -1;
        }
        size_t got = sizeof out - z->avail_out;
        if (got) {
            int rc = h->data(h->ud, (char *)out, got);
            if (rc)
                return rc;
        }
        if (zr == Z_STREAM_END) {
            r->z_end = true;
            return 0;
        }
        if (zr == Z_BUF_ERROR || (z->avail_in == 0 && z->avail_out != 0))
            return 0;
    }
}

/* A compressed message starts: a fresh inflater (no context takeover). */
static int inflate_start(ws_reader *r, char *err, size_t errlen)
{
    r->z_end = false;
    if (r->z)
        return inflateReset(r->z) == Z_OK ? 0 : perr(err, errlen, "flate: reset failed");
    z_stream *z = calloc(1, sizeof *z);
    if (!z || inflateInit2(z, -15) != Z_OK) {
        free(z);
        return perr(err, errlen, "flate: out of memory");
    }
    r->z = z;
    return 0;
}

static bool is_control(int op) { return op >= WS_OP_CLOSE; }

static void unmask(ws_reader *r, unsigned char *p, size_t n)
{
    unsigned k = r->mkpos;
    for (size_t i = 0; i < n; i++)
        p[i] ^= r->mkey[(k + i) & 3];
    r->mkpos = (unsigned)((k + n) & 3);
}

/* How many header bytes the frame needs, once the first two are known. */
static size_t header_need(const ws_reader *r)
{
    unsigned len7 = r->hdr[1] & 0x7f;
    size_t need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
    if (r->hdr[1] & 0x80)
        need += 4;
    return need;
}

/* The current frame's payload is complete: a control frame is handled; the final frame of
 * a compressed message gets the deflate tail RFC 7692 has the sender remove. */
static int frame_end(ws_reader *r, const ws_handler *h, char *err, size_t errlen)
{
    r->in_payload = false;
    if (is_control(r->op))
        return h->control(h->ud, r->op, r->cbuf, r->clen);
    if (r->msg_compressed && r->fin) {
        static const unsigned char tail[4] = {0x00, 0x00, 0xff, 0xff};
        r->msg_compressed = false;
        return inflate_feed(r, tail, sizeof tail, h, err, errlen);
    }
    return 0;
}

int ws_read(ws_reader *r, char *buf, size_t n, const ws_handler *h, char *err, size_t errlen)
{
    size_t pos = 0;
    while (pos < n) {
        if (!r->in_payload) {
            r->hdr[r->hlen++] = (unsigned char)buf[pos++];
            if (r->hlen == 1) {
                unsigned char b0 = r->hdr[0];
                if (b0 & 0x30)
                    return perr(err, errlen, "RSV2 and RSV3 must be clear");
                if ((b0 & 0x40) && !r->inflate)
                    return perr(err, errlen,
                                "compressed frame received without negotiated permessage-deflate");
                continue;
            }
            if (r->hlen == 2) {
                unsigned char b0 = r->hdr[0], b1 = r->hdr[1];
                int op = b0 & 0x0f;
                bool fin = (b0 & 0x80) != 0;
                if (r->mask_required && !(b1 & 0x80))
                    return perr(err, errlen, "mask bit missing");
                unsigned len7 = b1 & 0x7f;
                switch (op) {
                case WS_OP_PING:
                case WS_OP_PONG:
                case WS_OP_CLOSE:
                    if (len7 > WS_MAX_CONTROL_PAYLOAD)
                        return perr(err, errlen,
                                    "control frame length bigger than maximum allowed of 125 bytes");
                    if (!fin)
                        return perr(err, errlen, "control frame does not have final bit set");
                    break;
                case WS_OP_TEXT:
                case WS_OP_BINARY:
                    if (r->in_message)
                        return perr(err, errlen,
                                    "new message started before final frame for previous message "
                                    "was received");
                    r->in_message = !fin;
                    r->msg_compressed = (b0 & 0x40) != 0;
                    if (r->msg_compressed && inflate_start(r, err, errlen))
                        return -1;
                    break;
                case WS_OP_CONT:
                    /* RSV1 (compressed) only on a message's first frame */
                    if (!r->in_message || (b0 & 0x40))
                        return perr(err, errlen, "invalid continuation frame");
                    r->in_message = !fin;
                    break;
                default:
                    snprintf(err, errlen, "unknown opcode %d", op);
                    return -1;
                }
                r->op = op;
                r->fin = fin;
            }
            if ((r->hdr[1] & 0x7f) == 127 && r->hlen == 10 && (r->hdr[2] & 0x80))
                return perr(err, errlen, "invalid 64-bit payload length");
            if (r->hlen < header_need(r))
                continue;
            /* header complete */
            unsigned len7 = r->hdr[1] & 0x7f;
            size_t off = 2;
            if (len7 == 126) {
                r->rem = ((uint64_t)r->hdr[2] << 8) | r->hdr[3];
                off = 4;
            } else if (len7 == 127) {
                uint64_t v = 0;
                for (int i = 0; i < 8; i++)
                    v = (v << 8) | r->hdr[2 + i];
                if (v >> 63)
                    return perr(err, errlen, "invalid 64-bit payload length");
                r->rem = v;
                off = 10;
            } else {
                r->rem = len7;
            }
            r->masked = (r->hdr[1] & 0x80) != 0;
            if (r->masked)
                memcpy(r->mkey, r->hdr + off, 4);
            r->mkpos = 0;
            r->hlen = 0;
            r->clen = 0;
            r->in_payload = true;
        } else {
            size_t avail = n - pos;
            size_t take = r->rem < avail ? (size_t)r->rem : avail;
            unsigned char *p = (unsigned char *)buf + pos;
            pos += take;
            r->rem -= take;
            if (r->masked)
                unmask(r, p, take);
            if (is_control(r->op)) {
                memcpy(r->cbuf + r->clen, p, take); /* rem <= 125 checked above */
                r->clen += take;
            } else if (take) {
                int rc = r->msg_compressed ? inflate_feed(r, p, take, h, err, errlen)
                                           : h->data(h->ud, (char *)p, take);
                if (rc) {
                    if (r->rem == 0)
                        r->in_payload = false;
                    return rc;
                }
            }
        }
        if (r->in_payload && r->rem == 0) {
            int rc = frame_end(r, h, err, errlen);
            if (rc)
                return rc;
        }
    }
    /* a frame whose header just completed with an empty payload */
    if (r->in_payload && r->rem == 0)
        return frame_end(r, h, err, errlen);
    return 0;
}

bool ws_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

static bool close_status_valid(int code)
{
    if (code == 1004 || code == 1005 || code == 1006 || code == 1015)
        return false;
    if (code < 1000 || code >= 5000)
        return false;
    if (code >= 1016 && code <= 2999)
        return false;
    return true;
}

int ws_close_parse(const unsigned char *p, size_t n, int *status, const char **body,
                   size_t *body_len, char *err, size_t errlen)
{
    *status = WS_CLOSE_NO_STATUS;
    *body = "";
    *body_len = 0;
    if (n == 1)
        return perr(err, errlen, "close frame payload cannot be 1 byte");
    if (n >= 2) {
        int st = (p[0] << 8) | p[1];
        if (!close_status_valid(st)) {
            snprintf(err, errlen, "invalid close status code %d", st);
            return -1;
        }
        *status = st;
        if (n > 2) {
            if (!ws_utf8_valid(p + 2, n - 2)) {
                *status = WS_CLOSE_INVALID_PAYLOAD;
                *body = "invalid utf8 body in close frame";
                *body_len = strlen(*body);
            } else {
                *body = (const char *)p + 2;
                *body_len = n - 2;
            }
        }
    }
    return 0;
}

size_t ws_close_payload(int status, const char *text, unsigned char *out)
{
    out[0] = (unsigned char)(status >> 8);
    out[1] = (unsigned char)status;
    size_t tl = text ? strlen(text) : 0;
    if (tl > WS_MAX_CONTROL_PAYLOAD - 2) {
        memcpy(out + 2, text, WS_MAX_CONTROL_PAYLOAD - 5);
        memcpy(out + 2 + WS_MAX_CONTROL_PAYLOAD - 5, "...", 3);
        return WS_MAX_CONTROL_PAYLOAD;
    }
    if (tl)
        memcpy(out + 2, text, tl);
    return 2 + tl;
}

size_t ws_frame_header(unsigned char *out, int op, bool first, bool final, uint64_t len,
                       const unsigned char *mask_key)
{
    unsigned char b0 = first ? (unsigned char)op : 0;
    if (final)
        b0 |= 0x80;
    unsigned char mb = mask_key ? 0x80 : 0;
    size_t n;
    out[0] = b0;
    if (len <= 125) {
        out[1] = mb | (unsigned char)len;
        n = 2;
    } else if (len < 65536) {
        out[1] = mb | 126;
        out[2] = (unsigned char)(len >> 8);
        out[3] = (unsigned char)len;
        n = 4;
    } else {
        out[1] = mb | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (unsigned char)(len >> (56 - 8 * i));
        n = 10;
    }
    if (mask_key) {
        memcpy(out + n, mask_key, 4);
        n += 4;
    }
    return n;
}
