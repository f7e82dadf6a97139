/* ws: WebSocket (RFC 6455) pieces for the websocket listener, free of sockets and of the
 * broker: the HTTP Upgrade request parser, the Sec-WebSocket-Accept key, a streaming
 * frame reader (unmasking in place, fragmentation, control frames) and frame headers.
 * Checks and error texts follow nats-server's server/websocket.go. */
#ifndef EMBER_WS_H
#define EMBER_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    WS_OP_CONT = 0, WS_OP_TEXT = 1, WS_OP_BINARY = 2,
    WS_OP_CLOSE = 8, WS_OP_PING = 9, WS_OP_PONG = 10,
};

enum {
    WS_CLOSE_NORMAL = 1000, WS_CLOSE_GOING_AWAY = 1001, WS_CLOSE_PROTOCOL_ERROR = 1002,
    WS_CLOSE_NO_STATUS = 1005, WS_CLOSE_INVALID_PAYLOAD = 1007, WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009, WS_CLOSE_INTERNAL = 1011, WS_CLOSE_TLS_HANDSHAKE = 1015,
};

#define WS_MAX_CONTROL_PAYLOAD 125
#define WS_MAX_FRAME_HEADER 14
#define WS_FRAME_SIZE_BROWSERS 4096 /* nats-server: browsers behave better with it */
#define WS_MAX_UPGRADE_REQUEST 8192 /* bytes of request line and headers */

/* ------------------------------------------------------------------ upgrade request */

typedef struct ws_upgrade {
    int status;                 /* 0: valid; else the HTTP status to answer (400, 405, 431) */
    const char *reason;         /* nats-server's reason when status != 0 */
    char key[64];               /* Sec-WebSocket-Key (valid when status == 0) */
    bool browser;               /* User-Agent starts with "Mozilla/" */
    bool no_masking;            /* "Nats-No-Masking: true" */
    bool compress;              /* permessage-deflate offered; the caller clears it when
                                 * compression is off (ws_upgrade_response then accepts it
                                 * when still set) */
    bool safari;                /* browser with "Version/" and "Safari/": no fragmented
                                 * compressed frames (nats-server's nocompfrag) */
    char forwarded_for[64];     /* X-Forwarded-For's first value when it is an IP, or "" */
    /* Origin (else Sec-WebSocket-Origin) and Host: first values, pointing into the request
     * given to ws_upgrade_parse (NULL when absent) */
    const char *origin;
    size_t origin_len;
    const char *host;
    size_t host_len;
} ws_upgrade;

/* Parse the HTTP/1.1 Upgrade request at the start of p[0..n). Returns 0 when the request
 * is not complete yet (and n < WS_MAX_UPGRADE_REQUEST), else the number of bytes the
 * request took (headers and the blank line) with *u filled: u->status 0 when the upgrade
 * is acceptable, or the HTTP status and nats-server's reason. A request longer than
 * WS_MAX_UPGRADE_REQUEST returns n with status 431. */
size_t ws_upgrade_parse(const char *p, size_t n, ws_upgrade *u);

/* ------------------------------------------------------------------ origin checks */

/* An origin ("scheme://host[:port]") as nats-server compares them: scheme and host in
 * lower case, the port with the scheme's default (443 for https, else 80). */
typedef struct ws_origin {
    char scheme[16];
    char host[256];
    char port[16];
} ws_origin;

/* Parse an origin (as Go's url.ParseRequestURI then net.SplitHostPort). 0, or -1 with
 * Go's error text in err. */
int ws_origin_parse(const char *s, size_t n, ws_origin *o, char *err, size_t errlen);
/* nats-server's checkOrigin: with same_origin the request's Origin must have the scheme
 * (https when tls), host and port of its Host header; with allowed (n entries) it must
 * match one of them. No Origin header: accepted. 0 when accepted, else -1 with the reason
 * ("not same origin", "not in the allowed list", a parse error) in err. */
int ws_origin_check(const ws_upgrade *u, bool tls, bool same_origin, const ws_origin *allowed,
                    size_t n, char *err, size_t errlen);

/* Sec-WebSocket-Accept for key: base64(SHA-1(key + GUID)), NUL-terminated (28 chars). */
void ws_accept_key(const char *key, char out[32]);

/* The "101 Switching Protocols" response for u into out (cap bytes); its length, or 0
 * when cap is too small. With u->compress it accepts permessage-deflate with
 * server_no_context_takeover and client_no_context_takeover, as nats-server. */
size_t ws_upgrade_response(const ws_upgrade *u, char *out, size_t cap);
/* An HTTP error response as Go's http.Error (status text body, Sec-Websocket-Version). */
size_t ws_http_error(int status, char *out, size_t cap);

/* ------------------------------------------------------------------ frames */

typedef struct ws_reader {
    bool mask_required;         /* server side: clients must mask (set before use) */
    /* frame header being collected */
    unsigned char hdr[WS_MAX_FRAME_HEADER];
    size_t hlen;
    bool in_payload;            /* header done, payload bytes follow */
    int op;                     /* opcode of the current frame */
    bool fin;
    bool masked;
    unsigned char mkey[4];
    unsigned mkpos;
    uint64_t rem;               /* payload bytes left in the current frame */
    bool in_message;            /* a data message started and its final frame is pending */
    /* a control frame's payload (collected, at most 125 bytes) */
    unsigned char cbuf[WS_MAX_CONTROL_PAYLOAD];
    size_t clen;
    /* permessage-deflate (ws_reader_inflate_on): compressed messages are inflated */
    bool inflate;
    bool msg_compressed;        /* the current message is compressed (RSV1 on its first frame) */
    bool z_end;                 /* the deflate stream of the current message ended */
    void *z;                    /* z_stream, allocated on the first compressed message */
} ws_reader;

void ws_reader_init(ws_reader *r, bool mask_required);
/* Accept compressed messages (permessage-deflate was negotiated; no context takeover:
 * each message is inflated on its own). */
void ws_reader_inflate_on(ws_reader *r);
/* Free what the reader allocated (the inflater). */
void ws_reader_free(ws_reader *r);

typedef struct ws_handler {
    /* Unmasked payload bytes of data frames, in order (p points into the caller's
     * buffer). Nonzero stops ws_read, which returns that value. */
    int (*data)(void *ud, char *p, size_t n);
    /* A complete control frame (PING, PONG, CLOSE) with its unmasked payload. Nonzero
     * stops ws_read, which returns that value. */
    int (*control)(void *ud, int op, const unsigned char *p, size_t n);
    void *ud;
} ws_handler;

/* Decode frames from buf[0..n) (modified: payloads are unmasked in place; compressed
 * messages reach h->data inflated, from a buffer of the reader's). Returns 0
 * when all was consumed, a handler's nonzero value, or -1 on a protocol error with
 * nats-server's message in err (the peer is owed a close frame with status 1002). */
int ws_read(ws_reader *r, char *buf, size_t n, const ws_handler *h, char *err, size_t errlen);

/* A CLOSE frame's payload: *status (WS_CLOSE_NO_STATUS when absent) and the body
 * (pointer into p, *body_len). -1 with err set on a protocol error (1-byte payload,
 * invalid status); an invalid UTF-8 body turns the status into 1007 with nats-server's
 * body text. */
int ws_close_parse(const unsigned char *p, size_t n, int *status, const char **body,
                   size_t *body_len, char *err, size_t errlen);
/* The payload of a CLOSE frame with status and text (truncated to fit 125 bytes with
 * "..." as nats-server). Returns its length (<= 125). */
size_t ws_close_payload(int status, const char *text, unsigned char *out);

/* Write a frame header (first/final flags, opcode, optional mask key) for a payload of
 * len bytes; returns its size (2 to 14). */
size_t ws_frame_header(unsigned char *out, int op, bool first, bool final, uint64_t len,
                       const unsigned char *mask_key);

/* Is s[0..n) valid UTF-8? */
bool ws_utf8_valid(const unsigned char *s, size_t n);

#endif
