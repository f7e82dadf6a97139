/* test_ws: the WebSocket listener.
 *   - ws.c units: Sec-WebSocket-Accept (RFC 6455's example), the upgrade request checks
 *     with nats-server's reasons, the frame reader (masking, fragmentation, split
 *     headers, control frames, every protocol error), close payloads;
 *   - a live session on loopback speaking raw frames to an embedded server: upgrade,
 *     INFO in a binary frame, CONNECT/SUB/PUB/MSG, a message published in-process,
 *     ping/pong, fragmented and split frames, close handshake, bad frames (close 1002),
 *     a bad upgrade (HTTP 400);
 *   - origin checks (same_origin, allowed_origins: 403), websocket-specific credentials
 *     (authorization {}, no_auth_user), permessage-deflate both ways (zlib here);
 *   - the websocket {} and tls {} configuration blocks. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "ember.h"
#include "testutil.h"
#include "ws.h"

/* ------------------------------------------------------------------ units */

static void test_accept_key(void)
{
    char out[32];
    ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out); /* RFC 6455 section 1.3 */
    CHECK(strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
}

static const char *upgrade_reason(const char *req, int *status)
{
    static ws_upgrade u;
    size_t n = ws_upgrade_parse(req, strlen(req), &u);
    *status = n ? u.status : -1;
    return n ? (u.reason ? u.reason : "") : "incomplete";
}

static void test_upgrade(void)
{
    int st;
    const char *ok = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, "
                     "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\nUser-Agent: Mozilla/5.0\r\n\r\n";
    ws_upgrade u;
    CHECK_EQ(ws_upgrade_parse(ok, strlen(ok), &u), strlen(ok));
    CHECK_EQ(u.status, 0);
    CHECK(u.browser);
    CHECK(strcmp(u.key, "dGhlIHNhbXBsZSBub25jZQ==") == 0);
    char resp[512];
    size_t rl = ws_upgrade_response(&u, resp, sizeof resp);
    CHECK(rl > 0 && strstr(resp, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    CHECK(strncmp(resp, "HTTP/1.1 101 Switching Protocols\r\n", 34) == 0);
    CHECK_EQ(ws_upgrade_parse(ok, strlen(ok) - 2, &u), 0); /* not complete */

    CHECK(!strcmp(upgrade_reason("POST / HTTP/1.1\r\nHost: x\r\n\r\n", &st),
                  "request method must be GET") && st == 405);
    CHECK(!strcmp(upgrade_reason("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", &st),
                  "'Host' missing in request") && st == 400);
    CHECK(!strcmp(upgrade_reason("GET / HTTP/1.1\r\nHost: x\r\n\r\n", &st),
                  "invalid value for header 'Upgrade'"));
    CHECK(!strcmp(upgrade_reason("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\n\r\n", &st),
                  "invalid value for header 'Connection'"));
    CHECK(!strcmp(upgrade_reason("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                 "Connection: upgrade\r\n\r\n", &st),
                  "key missing"));
    CHECK(!strcmp(upgrade_reason("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                 "Connection: upgrade\r\nSec-WebSocket-Key: abc\r\n\r\n", &st),
                  "invalid websocket key"));
    CHECK(!strcmp(upgrade_reason("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                 "Connection: upgrade\r\nSec-WebSocket-Key: "
                                 "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n", &st),
                  "invalid version"));
    CHECK(!strcmp(upgrade_reason("GARBAGE\r\n\r\n", &st), "malformed HTTP request") && st == 400);
    /* too large */
    char *big = malloc(WS_MAX_UPGRADE_REQUEST + 16);
    memset(big, 'a', WS_MAX_UPGRADE_REQUEST + 15);
    big[WS_MAX_UPGRADE_REQUEST + 15] = 0;
    CHECK(ws_upgrade_parse(big, strlen(big), &u) == strlen(big) && u.status == 431);
    free(big);
    char hr[512];
    CHECK(ws_http_error(400, hr, sizeof hr) > 0 && strstr(hr, "HTTP/1.1 400 Bad Request\r\n") &&
          strstr(hr, "\r\n\r\nBad Request\n"));
}

typedef struct collect {
    char data[140000];
    size_t dlen;
    int ops[16];
    unsigned char cpl[16][126];
    size_t cpl_len[16];
    int nctl;
} collect;

static int col_data(void *ud, char *p, size_t n)
{
    collect *c = ud;
    memcpy(c->data + c->dlen, p, n);
    c->dlen += n;
    return 0;
}

static int col_ctl(void *ud, int op, const unsigned char *p, size_t n)
{
    collect *c = ud;
    if (c->nctl < 16) {
        c->ops[c->nctl] = op;
        memcpy(c->cpl[c->nctl], p, n);
        c->cpl_len[c->nctl] = n;
        c->nctl++;
    }
    return 0;
}

/* a client frame: masked with key 1,2,3,4 */
static size_t cframe(unsigned char *out, int op, bool fin, const void *p, size_t n, bool mask)
{
    static const unsigned char key[4] = {1, 2, 3, 4};
    size_t h = ws_frame_header(out, op, true, fin, n, mask ? key : NULL);
    if (op == WS_OP_CONT)
        out[0] = (unsigned char)((fin ? 0x80 : 0) | 0);
    memcpy(out + h, p, n);
    if (mask)
        for (size_t i = 0; i < n; i++)
            out[h + i] ^= key[i & 3];
    return h + n;
}

static int read_all(ws_reader *r, unsigned char *b, size_t n, collect *c, char *err, size_t step)
{
    ws_handler h = {.data = col_data, .control = col_ctl, .ud = c};
    for (size_t off = 0; off < n;) {
        size_t k = n - off < step ? n - off : step;
        int rc = ws_read(r, (char *)b + off, k, &h, err, 160);
        if (rc)
            return rc;
        off += k;
    }
    return 0;
}

static void test_frames(void)
{
    static unsigned char buf[200000];
    static collect col;
    char err[160];
    /* fragmented message + ping in between + 16-bit and 64-bit lengths, fed whole, then
     * byte by byte */
    static char big[70000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    for (int pass = 0; pass < 2; pass++) {
        size_t n = 0;
        n += cframe(buf + n, WS_OP_BINARY, false, "PUB a 5\r\n", 9, true);
        n += cframe(buf + n, WS_OP_PING, true, "hi", 2, true);
        n += cframe(buf + n, WS_OP_CONT, true, "hello\r\n", 7, true);
        n += cframe(buf + n, WS_OP_TEXT, true, big, 300, true);
        n += cframe(buf + n, WS_OP_BINARY, true, big, sizeof big, true);
        n += cframe(buf + n, WS_OP_PONG, true, "", 0, true);
        memset(&col, 0, sizeof col);
        ws_reader r;
        ws_reader_init(&r, true);
        CHECK_EQ(read_all(&r, buf, n, &col, err, pass ? 1 : n), 0);
        CHECK_EQ(col.dlen, 16 + 300 + sizeof big);
        CHECK(memcmp(col.data, "PUB a 5\r\nhello\r\n", 16) == 0);
        CHECK(memcmp(col.data + 16 + 300, big, sizeof big) == 0);
        CHECK_EQ(col.nctl, 2);
        CHECK(col.ops[0] == WS_OP_PING && col.cpl_len[0] == 2 && !memcmp(col.cpl[0], "hi", 2));
        CHECK(col.ops[1] == WS_OP_PONG && col.cpl_len[1] == 0);
    }
    /* protocol errors, with nats-server's messages */
    struct {
        unsigned char b[16];
        size_t n;
        bool mask_required;
        const char *msg;
    } bad[] = {
        {{0x82, 0x00}, 2, true, "mask bit missing"},
        {{0xa2, 0x80}, 2, true, "RSV2 and RSV3 must be clear"},
        {{0xc2, 0x80}, 2, true, "compressed frame received without negotiated permessage-deflate"},
        {{0x89, 0xfe}, 2, true, "control frame length bigger than maximum allowed of 125 bytes"},
        {{0x09, 0x80}, 2, true, "control frame does not have final bit set"},
        {{0x80, 0x80}, 2, true, "invalid continuation frame"},
        {{0x83, 0x80}, 2, true, "unknown opcode 3"},
        {{0x02, 0x80, 1, 2, 3, 4, 0x82, 0x80}, 8, true,
         "new message started before final frame for previous message was received"},
        {{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1}, 10, true, "invalid 64-bit payload length"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ws_reader r;
        ws_reader_init(&r, bad[i].mask_required);
        memset(&col, 0, sizeof col);
        err[0] = 0;
        CHECK_EQ(read_all(&r, bad[i].b, bad[i].n, &col, err, bad[i].n), -1);
        CHECK_MSG(strcmp(err, bad[i].msg) == 0, "case %zu: \"%s\"", i, err);
    }
    /* unmasked frames are fine when masking is not required (Nats-No-Masking) */
    ws_reader r;
    ws_reader_init(&r, false);
    memset(&col, 0, sizeof col);
    size_t n = cframe(buf, WS_OP_BINARY, true, "PING\r\n", 6, false);
    CHECK_EQ(read_all(&r, buf, n, &col, err, n), 0);
    CHECK(col.dlen == 6 && !memcmp(col.data, "PING\r\n", 6));

    /* close payloads */
    int status;
    const char *body;
    size_t bl;
    unsigned char cp[2] = {0x03, 0xe8};
    CHECK(ws_close_parse(cp, 2, &status, &body, &bl, err, sizeof err) == 0 && status == 1000);
    CHECK(ws_close_parse(cp, 0, &status, &body, &bl, err, sizeof err) == 0 && status == 1005);
    CHECK(ws_close_parse(cp, 1, &status, &body, &bl, err, sizeof err) == -1 &&
          !strcmp(err, "close frame payload cannot be 1 byte"));
    unsigned char c1005[2] = {0x03, 0xed};
    CHECK(ws_close_parse(c1005, 2, &status, &body, &bl, err, sizeof err) == -1 &&
          !strcmp(err, "invalid close status code 1005"));
    unsigned char cutf[4] = {0x03, 0xe8, 0xff, 0xfe};
    CHECK(ws_close_parse(cutf, 4, &status, &body, &bl, err, sizeof err) == 0 && status == 1007 &&
          !strncmp(body, "invalid utf8 body in close frame", bl));
    unsigned char out[WS_MAX_CONTROL_PAYLOAD];
    char longtxt[300];
    memset(longtxt, 'x', sizeof longtxt - 1);
    longtxt[sizeof longtxt - 1] = 0;
    CHECK_EQ(ws_close_payload(1002, longtxt, out), 125);
    CHECK(!memcmp(out + 122, "...", 3));
    CHECK(ws_utf8_valid((const unsigned char *)"h\xc3\xa9llo", 6));
    CHECK(!ws_utf8_valid((const unsigned char *)"\xed\xa0\x80", 3)); /* surrogate */
}

/* ------------------------------------------------------------------ origin checks */

static const char *origin_err(const char *origin, const char *host, bool tls, bool same,
                              const ws_origin *allowed, size_t n)
{
    static char err[400];
    ws_upgrade u;
    memset(&u, 0, sizeof u);
    u.origin = origin;
    u.origin_len = origin ? strlen(origin) : 0;
    u.host = host;
    u.host_len = host ? strlen(host) : 0;
    if (ws_origin_check(&u, tls, same, allowed, n, err, sizeof err) == 0)
        return "ok";
    return err;
}

static void test_origin_units(void)
{
    ws_origin o;
    char err[400];
    CHECK(ws_origin_parse("HTTP://Example.COM", 18, &o, err, sizeof err) == 0);
    CHECK(!strcmp(o.scheme, "http") && !strcmp(o.host, "example.com") && !strcmp(o.port, "80"));
    CHECK(ws_origin_parse("https://u:p@h.example:8443/x?y", 30, &o, err, sizeof err) == 0);
    CHECK(!strcmp(o.scheme, "https") && !strcmp(o.host, "h.example") && !strcmp(o.port, "8443"));
    CHECK(ws_origin_parse("https://[::1]", 13, &o, err, sizeof err) == 0);
    CHECK(!strcmp(o.host, "[::1]") && !strcmp(o.port, "443")); /* as Go: brackets kept */
    CHECK(ws_origin_parse("http://[::1]:81", 15, &o, err, sizeof err) == 0);
    CHECK(!strcmp(o.host, "::1") && !strcmp(o.port, "81"));
    CHECK(ws_origin_parse("null", 4, &o, err, sizeof err) == -1);
    CHECK(!strcmp(err, "parse \"null\": invalid URI for request"));
    CHECK(ws_origin_parse("http://h:x", 10, &o, err, sizeof err) == -1);
    CHECK(!strcmp(err, "parse \"http://h:x\": invalid port \":x\" after host"));

    /* same_origin: the Host header, the scheme of the listener */
    CHECK(!strcmp(origin_err("http://127.0.0.1:8080", "127.0.0.1:8080", false, true, NULL, 0), "ok"));
    CHECK(!strcmp(origin_err("http://localhost", "LOCALHOST:80", false, true, NULL, 0), "ok"));
    CHECK(!strcmp(origin_err("https://h.example", "h.example", true, true, NULL, 0), "ok"));
    CHECK(!strcmp(origin_err("http://127.0.0.1:8081", "127.0.0.1:8080", false, true, NULL, 0),
                  "not same origin"));
    CHECK(!strcmp(origin_err("https://127.0.0.1:8080", "127.0.0.1:8080", false, true, NULL, 0),
                  "not same origin"));
    CHECK(!strcmp(origin_err("http://h.example", "h.example", true, true, NULL, 0),
                  "not same origin"));
    CHECK(!strcmp(origin_err(NULL, "h", false, true, NULL, 0), "ok")); /* no Origin: not a browser */
    CHECK(!strcmp(origin_err("null", "h", false, true, NULL, 0),
                  "parse \"null\": invalid URI for request"));
    /* allowed origins: scheme, host and port */
    ws_origin al[2];
    REQUIRE(ws_origin_parse("http://a.example", 16, &al[0], err, sizeof err) == 0);
    REQUIRE(ws_origin_parse("https://b.example:8443", 22, &al[1], err, sizeof err) == 0);
    CHECK(!strcmp(origin_err("http://a.example:80", "x", false, false, al, 2), "ok"));
    CHECK(!strcmp(origin_err("http://A.EXAMPLE", "x", false, false, al, 2), "ok"));
    CHECK(!strcmp(origin_err("https://b.example:8443", "x", false, false, al, 2), "ok"));
    CHECK(!strcmp(origin_err("https://a.example", "x", false, false, al, 2), "not in the allowed list"));
    CHECK(!strcmp(origin_err("http://a.example:81", "x", false, false, al, 2), "not in the allowed list"));
    CHECK(!strcmp(origin_err("http://c.example", "x", false, false, al, 2), "not in the allowed list"));
    CHECK(!strcmp(origin_err("http://c.example", "x", false, false, NULL, 0), "ok")); /* no check */
    /* both: same origin first, then the list */
    CHECK(!strcmp(origin_err("http://a.example", "a.example", false, true, al, 2), "ok"));
    CHECK(!strcmp(origin_err("http://a.example", "b.example", false, true, al, 2), "not same origin"));

    /* the parser keeps Origin (else Sec-WebSocket-Origin) and Host */
    const char *req = "GET / HTTP/1.1\r\nHost: h.example:81\r\nUpgrade: websocket\r\nConnection: "
                      "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Origin: http://s.example\r\n\r\n";
    ws_upgrade u;
    CHECK(ws_upgrade_parse(req, strlen(req), &u) == strlen(req) && u.status == 0);
    CHECK(u.origin && u.origin_len == 16 && !memcmp(u.origin, "http://s.example", 16));
    CHECK(u.host && u.host_len == 12 && !memcmp(u.host, "h.example:81", 12));
}

/* ------------------------------------------------------------------ compression units */

/* raw deflate of p, sync-flushed, without the 00 00 ff ff tail (RFC 7692 7.2.1) */
static size_t zdeflate(const void *p, size_t n, unsigned char *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return 0;
    z.next_in = (Bytef *)p;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_SYNC_FLUSH);
    size_t k = cap - z.avail_out;
    deflateEnd(&z);
    if (k >= 4 && !memcmp(out + k - 4, "\x00\x00\xff\xff", 4))
        k -= 4;
    return k;
}

static size_t zinflate(const unsigned char *p, size_t n, char *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -15) != Z_OK)
        return 0;
    static unsigned char in[300000];
    if (n + 4 > sizeof in)
        return 0;
    memcpy(in, p, n);
    memcpy(in + n, "\x00\x00\xff\xff", 4);
    z.next_in = in;
    z.avail_in = (uInt)(n + 4);
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    int zr = inflate(&z, Z_SYNC_FLUSH);
    size_t k = cap - z.avail_out;
    inflateEnd(&z);
    return zr == Z_OK || zr == Z_STREAM_END || zr == Z_BUF_ERROR ? k : 0;
}

/* a client frame with RSV1 (compressed) when first and rsv1 */
static size_t cframe_z(unsigned char *out, int op, bool fin, bool rsv1, const void *p, size_t n)
{
    size_t k = cframe(out, op, fin, p, n, true);
    if (rsv1)
        out[0] |= 0x40;
    return k;
}

static void test_inflate_units(void)
{
    static unsigned char buf[200000], zb[100000];
    static char msg[50000];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = "PUB a.b 5\r\nhello\r\n"[i % 18];
    size_t zl = zdeflate(msg, sizeof msg, zb, sizeof zb);
    REQUIRE(zl > 0 && zl < sizeof msg / 4);
    static collect col;
    char err[160];
    ws_reader r;
    /* one compressed frame, then an uncompressed one, then a compressed one in 3 fragments
     * with a ping in between; fed 1, 7 and all bytes at a time */
    size_t steps[3] = {1, 7, sizeof buf};
    for (int s = 0; s < 3; s++) {
        size_t n = cframe_z(buf, WS_OP_BINARY, true, true, zb, zl);
        n += cframe_z(buf + n, WS_OP_BINARY, true, false, "plain", 5);
        size_t a = zl / 3, b = zl / 3;
        n += cframe_z(buf + n, WS_OP_BINARY, false, true, zb, a);
        n += cframe_z(buf + n, WS_OP_PING, true, false, "p", 1);
        n += cframe_z(buf + n, WS_OP_CONT, false, false, zb + a, b);
        n += cframe_z(buf + n, WS_OP_CONT, true, false, zb + a + b, zl - a - b);
        memset(&col, 0, sizeof col);
        ws_reader_init(&r, true);
        ws_reader_inflate_on(&r);
        CHECK_EQ(read_all(&r, buf, n, &col, err, steps[s]), 0);
        CHECK_EQ(col.dlen, 2 * sizeof msg + 5);
        CHECK(!memcmp(col.data, msg, sizeof msg) && !memcmp(col.data + sizeof msg, "plain", 5) &&
              !memcmp(col.data + sizeof msg + 5, msg, sizeof msg));
        CHECK(col.nctl == 1 && col.ops[0] == WS_OP_PING);
        ws_reader_free(&r);
    }
    /* an empty compressed message, and RSV1 on a continuation frame */
    memset(&col, 0, sizeof col);
    ws_reader_init(&r, true);
    ws_reader_inflate_on(&r);
    size_t n = cframe_z(buf, WS_OP_BINARY, true, true, "\x02\x00", 2); /* an empty fixed block */
    CHECK_EQ(read_all(&r, buf, n, &col, err, 100), 0);
    CHECK_EQ(col.dlen, 0);
    n = cframe_z(buf, WS_OP_BINARY, false, true, zb, 10);
    n += cframe_z(buf + n, WS_OP_CONT, true, true, zb + 10, zl - 10);
    CHECK_EQ(read_all(&r, buf, n, &col, err, 100), -1);
    CHECK(!strcmp(err, "invalid continuation frame"));
    ws_reader_free(&r);
    /* corrupt deflate data */
    memset(&col, 0, sizeof col);
    ws_reader_init(&r, true);
    ws_reader_inflate_on(&r);
    n = cframe_z(buf, WS_OP_BINARY, true, true, "\xff\xff\xff\xff", 4);
    CHECK_EQ(read_all(&r, buf, n, &col, err, 100), -1);
    CHECK(!strncmp(err, "flate: ", 7));
    ws_reader_free(&r);
}

/* ------------------------------------------------------------------ live session */

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w <= 0)
            return;
        c += w;
        n -= (size_t)w;
    }
}

/* Read until `needle` is in the accumulated bytes, EOF or ms. Returns 1 found, 0 EOF or
 * timeout (accumulated bytes in *acc, *alen). */
static int recv_until(int fd, char *acc, size_t cap, size_t *alen, const void *needle, size_t nl,
                      int ms)
{
    uint64_t end = tu_now_ms() + (uint64_t)ms;
    for (;;) {
        if (nl && *alen >= nl && memmem(acc, *alen, needle, nl))
            return 1;
        uint64_t now = tu_now_ms();
        if (now >= end)
            return 0;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, (int)(end - now)) <= 0)
            continue;
        ssize_t r = read(fd, acc + *alen, cap - *alen);
        if (r <= 0)
            return 0;
        *alen += (size_t)r;
    }
}

/* The payload length and header size of the frame at b (avail bytes); false until the
 * whole frame is there. */
static bool frame_len(const unsigned char *b, size_t avail, uint64_t *len, size_t *h)
{
    *len = b[1] & 0x7f;
    *h = 2;
    if (*len == 126) {
        if (avail < 4)
            return false;
        *len = ((uint64_t)b[2] << 8) | b[3];
        *h = 4;
    } else if (*len == 127) {
        if (avail < 10)
            return false;
        *len = 0;
        for (int k = 0; k < 8; k++)
            *len = (*len << 8) | b[2 + k];
        *h = 10;
    }
    return *len <= avail - *h;
}

/* Server frames are unmasked: decode all complete binary frames of acc into text. */
typedef struct sframes {
    char text[65536];
    size_t tlen;
    int ctl_ops[8];
    unsigned char ctl[8][126];
    size_t ctl_len[8];
    int nctl;
} sframes;

static void decode_server(const char *acc, size_t n, sframes *f)
{
    memset(f, 0, sizeof *f);
    size_t i = 0;
    while (i + 2 <= n) {
        const unsigned char *b = (const unsigned char *)acc + i;
        if (b[1] & 0x80)
            return; /* servers must not mask */
        uint64_t len;
        size_t h;
        if (!frame_len(b, n - i, &len, &h))
            return;
        int op = b[0] & 0x0f;
        if (op >= 8) {
            if (f->nctl < 8) {
                f->ctl_ops[f->nctl] = op;
                memcpy(f->ctl[f->nctl], b + h, len);
                f->ctl_len[f->nctl++] = len;
            }
        } else if (f->tlen + len < sizeof f->text) {
            memcpy(f->text + f->tlen, b + h, len);
            f->tlen += len;
        }
        i += h + len;
    }
    f->text[f->tlen] = 0;
}

static int ws_open(int port, char *acc, size_t cap, size_t *alen)
{
    int fd = tcp_connect(port);
    if (fd < 0)
        return -1;
    const char *req = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n";
    send_all(fd, req, strlen(req));
    *alen = 0;
    recv_until(fd, acc, cap, alen, "INFO {", 6, 3000);
    return fd;
}

#define WSTR(fd, op, fin, str) wsend(fd, op, fin, str, sizeof(str) - 1)
static void wsend(int fd, int op, bool fin, const char *s, size_t n)
{
    static unsigned char b[70000];
    size_t k = cframe(b, op, fin, s, n, true);
    send_all(fd, b, k);
}

static void test_live(void)
{
    ember_server_options o;
    ember_server_options_init(&o);
    o.host = "127.0.0.1";
    o.port = -1;
    o.ws_port = -1;
    o.ws_no_tls = true;
    ember_server *srv = NULL;
    REQUIRE(ember_server_new(&srv, &o) == EMBER_OK);
    REQUIRE(ember_server_start(srv) == EMBER_OK);
    REQUIRE(ember_server_ready_for_connections(srv, 5000));
    int port = ember_server_websocket_port(srv);
    REQUIRE(port > 0);

    static char acc[262144];
    size_t alen = 0;
    int fd = ws_open(port, acc, sizeof acc, &alen);
    REQUIRE(fd >= 0);
    CHECK(alen > 12 && !memcmp(acc, "HTTP/1.1 101 Switching Protocols\r\n", 34));
    CHECK(memmem(acc, alen, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", 52) != NULL);
    char *body = memmem(acc, alen, "\r\n\r\n", 4);
    REQUIRE(body != NULL);
    body += 4;
    static sframes f;
    recv_until(fd, acc, sizeof acc, &alen, " \r\n", 3, 3000);
    decode_server(body, alen - (size_t)(body - acc), &f);
    CHECK(strncmp(f.text, "INFO {", 6) == 0);
    CHECK(strstr(f.text, "\"port\":") && !strstr(f.text, "tls_required"));
    CHECK(((unsigned char)body[0]) == 0x82); /* a final binary frame */

    /* CONNECT, SUB, a fragmented PUB with a ping between the fragments, split frames */
    alen = 0;
    WSTR(fd, WS_OP_BINARY, true, "CONNECT {\"verbose\":false,\"protocol\":1}\r\nSUB ws.>  1\r\n");
    WSTR(fd, WS_OP_BINARY, false, "PUB ws.a 5\r\nhe");
    WSTR(fd, WS_OP_PING, true, "p1");
    WSTR(fd, WS_OP_CONT, true, "llo\r\n");
    static unsigned char split[64];
    size_t sl = cframe(split, WS_OP_BINARY, true, "PING\r\n", 6, true);
    for (size_t i = 0; i < sl; i++) {
        send_all(fd, split + i, 1);
        tu_sleep_ms(1);
    }
    CHECK(recv_until(fd, acc, sizeof acc, &alen, "PONG\r\n", 6, 3000));
    decode_server(acc, alen, &f);
    CHECK(strstr(f.text, "MSG ws.a 1 5\r\nhello\r\n") != NULL);
    CHECK(f.nctl >= 1 && f.ctl_ops[0] == WS_OP_PONG && f.ctl_len[0] == 2 &&
          !memcmp(f.ctl[0], "p1", 2));

    /* a message from an in-process publisher, and a large one (several frames' worth) */
    ember_conn *c = NULL;
    REQUIRE(ember_conn_connect(&c, srv, NULL) == EMBER_OK);
    alen = 0;
    CHECK(ember_conn_publish(c, "ws.inproc", NULL, "from C", 6) == EMBER_OK);
    CHECK(recv_until(fd, acc, sizeof acc, &alen, "from C\r\n", 8, 3000));
    decode_server(acc, alen, &f);
    CHECK(strstr(f.text, "MSG ws.inproc 1 6\r\nfrom C\r\n") != NULL);
    static char big[60000];
    memset(big, 'z', sizeof big);
    alen = 0;
    CHECK(ember_conn_publish(c, "ws.big", NULL, big, sizeof big) == EMBER_OK);
    WSTR(fd, WS_OP_BINARY, true, "PING\r\n");
    CHECK(recv_until(fd, acc, sizeof acc, &alen, "PONG\r\n", 6, 3000));
    decode_server(acc, alen, &f);
    CHECK(f.tlen >= sizeof big + 20 && strstr(f.text, "MSG ws.big 1 60000\r\n") != NULL);

    /* the close handshake: the status is echoed, then the server closes */
    alen = 0;
    WSTR(fd, WS_OP_CLOSE, true, "\x03\xe8" "bye");
    recv_until(fd, acc, sizeof acc, &alen, NULL, 0, 3000); /* until EOF */
    decode_server(acc, alen, &f);
    CHECK(f.nctl == 1 && f.ctl_ops[0] == WS_OP_CLOSE && f.ctl_len[0] == 5 &&
          !memcmp(f.ctl[0], "\x03\xe8" "bye", 5));
    close(fd);

    /* a bad frame (unmasked): close 1002 with nats-server's reason, then EOF */
    fd = ws_open(port, acc, sizeof acc, &alen);
    REQUIRE(fd >= 0);
    alen = 0;
    send_all(fd, "\x82\x06PING\r\n", 8);
    recv_until(fd, acc, sizeof acc, &alen, NULL, 0, 3000);
    decode_server(acc, alen, &f);
    CHECK(f.nctl == 1 && f.ctl_ops[0] == WS_OP_CLOSE && f.ctl_len[0] == 2 + 16 &&
          !memcmp(f.ctl[0], "\x03\xea" "mask bit missing", 18));
    close(fd);

    /* a protocol error inside: -ERR in a frame, then close 1002... as nats-server: the
     * parser's error text, then a close frame with the reason */
    fd = ws_open(port, acc, sizeof acc, &alen);
    REQUIRE(fd >= 0);
    alen = 0;
    WSTR(fd, WS_OP_BINARY, true, "FOO\r\n");
    recv_until(fd, acc, sizeof acc, &alen, NULL, 0, 3000);
    decode_server(acc, alen, &f);
    CHECK(strstr(f.text, "-ERR 'Unknown Protocol Operation'\r\n") != NULL);
    CHECK(f.nctl == 1 && f.ctl_ops[0] == WS_OP_CLOSE && f.ctl_len[0] >= 2 &&
          f.ctl[0][0] == 0x03 && f.ctl[0][1] == 0xea);
    close(fd);

    /* a bad upgrade: HTTP 400 and closed */
    fd = tcp_connect(port);
    REQUIRE(fd >= 0);
    const char *bad = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, bad, strlen(bad));
    alen = 0;
    recv_until(fd, acc, sizeof acc, &alen, NULL, 0, 3000);
    CHECK(alen > 0 && !strncmp(acc, "HTTP/1.1 400 Bad Request\r\n", 26));
    close(fd);

    ember_conn_close(c);
    ember_server_free(srv);
}

/* Like decode_server, inflating compressed messages (RSV1 on their first frame); counts
 * them in *nz and the bytes of their frames in *zbytes. */
static void decode_server_z(const char *acc, size_t n, sframes *f, int *nz, size_t *zbytes)
{
    static unsigned char cm[300000];
    size_t cml = 0;
    bool inz = false;
    memset(f, 0, sizeof *f);
    *nz = 0;
    *zbytes = 0;
    size_t i = 0;
    while (i + 2 <= n) {
        const unsigned char *b = (const unsigned char *)acc + i;
        uint64_t len;
        size_t h;
        if (!frame_len(b, n - i, &len, &h))
            return;
        int op = b[0] & 0x0f;
        bool fin = (b[0] & 0x80) != 0;
        if (op >= 8) {
            if (f->nctl < 8) {
                f->ctl_ops[f->nctl] = op;
                memcpy(f->ctl[f->nctl], b + h, len);
                f->ctl_len[f->nctl++] = len;
            }
        } else if ((op != 0 && (b[0] & 0x40)) || (op == 0 && inz)) {
            if (op != 0) {
                inz = true;
                cml = 0;
                (*nz)++;
            }
            *zbytes += h + len;
            if (cml + len <= sizeof cm) {
                memcpy(cm + cml, b + h, len);
                cml += len;
            }
            if (fin) {
                inz = false;
                f->tlen += zinflate(cm, cml, f->text + f->tlen, sizeof f->text - 1 - f->tlen);
            }
        } else if (f->tlen + len < sizeof f->text) {
            memcpy(f->text + f->tlen, b + h, len);
            f->tlen += len;
        }
        i += h + len;
    }
    f->text[f->tlen] = 0;
}

/* An upgrade request with extra headers; returns the socket, the response in acc. */
static int ws_open_with(int port, const char *extra, char *acc, size_t cap, size_t *alen,
                        const char *wait_for)
{
    int fd = tcp_connect(port);
    if (fd < 0)
        return -1;
    char req[1024];
    snprintf(req, sizeof req,
             "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n%s\r\n",
             port, extra);
    send_all(fd, req, strlen(req));
    *alen = 0;
    recv_until(fd, acc, cap, alen, wait_for, wait_for ? strlen(wait_for) : 0, 3000);
    return fd;
}

static ember_server *start_ws(ember_server_options *o)
{
    o->host = "127.0.0.1";
    o->port = -1;
    o->ws_port = -1;
    o->ws_no_tls = true;
    ember_server *srv = NULL;
    if (ember_server_new(&srv, o) != EMBER_OK)
        return NULL;
    if (ember_server_start(srv) != EMBER_OK || !ember_server_ready_for_connections(srv, 5000)) {
        ember_server_free(srv);
        return NULL;
    }
    return srv;
}

static void test_live_origin(void)
{
    static char acc[65536];
    size_t alen;
    ember_server_options o;
    ember_server_options_init(&o);
    const char *allowed[] = {"http://good.example", "not a url"};
    o.ws_allowed_origins = allowed;
    o.ws_allowed_origins_count = 2;
    ember_server *srv = start_ws(&o);
    REQUIRE(srv != NULL);
    int port = ember_server_websocket_port(srv);
    /* a disallowed origin: 403 with Go's http.Error body, then closed */
    int fd = ws_open_with(port, "Origin: http://bad.example\r\n", acc, sizeof acc, &alen, NULL);
    REQUIRE(fd >= 0);
    acc[alen] = 0;
    CHECK(alen > 0 && !strncmp(acc, "HTTP/1.1 403 Forbidden\r\n", 24));
    CHECK(strstr(acc, "\r\n\r\nForbidden\n") && strstr(acc, "Sec-Websocket-Version: 13\r\n"));
    close(fd);
    /* an allowed one (default port) upgrades; so does a request without Origin */
    fd = ws_open_with(port, "Origin: http://good.example:80\r\n", acc, sizeof acc, &alen,
                      "INFO {");
    REQUIRE(fd >= 0);
    CHECK(alen > 12 && !strncmp(acc, "HTTP/1.1 101 Switching Protocols\r\n", 34));
    close(fd);
    fd = ws_open_with(port, "", acc, sizeof acc, &alen, "INFO {");
    REQUIRE(fd >= 0);
    CHECK(alen > 12 && !strncmp(acc, "HTTP/1.1 101 ", 13));
    close(fd);
    char *vz = NULL;
    CHECK(ember_server_monitor(srv, "/varz", &vz) == EMBER_OK && vz);
    CHECK(vz && strstr(vz, "\"allowed_origins\": [") && strstr(vz, "\"not a url\"\n"));
    ember_free(vz);
    ember_server_free(srv);

    /* same_origin: the Host header (127.0.0.1:port, ws:// so http) */
    ember_server_options_init(&o);
    o.ws_same_origin = true;
    srv = start_ws(&o);
    REQUIRE(srv != NULL);
    port = ember_server_websocket_port(srv);
    char hdr[128];
    snprintf(hdr, sizeof hdr, "Origin: http://127.0.0.1:%d\r\n", port);
    fd = ws_open_with(port, hdr, acc, sizeof acc, &alen, "INFO {");
    REQUIRE(fd >= 0);
    CHECK(alen > 12 && !strncmp(acc, "HTTP/1.1 101 ", 13));
    close(fd);
    snprintf(hdr, sizeof hdr, "Origin: https://127.0.0.1:%d\r\n", port);
    fd = ws_open_with(port, hdr, acc, sizeof acc, &alen, NULL);
    REQUIRE(fd >= 0);
    CHECK(alen > 12 && !strncmp(acc, "HTTP/1.1 403 Forbidden\r\n", 24));
    close(fd);
    ember_server_free(srv);
}

/* CONNECT (and PING) over websocket; returns what came back until PONG, -ERR or EOF. */
static const char *ws_connect_as(int port, const char *connect, sframes *f, bool *auth_req)
{
    static char acc[65536];
    size_t alen;
    int fd = ws_open_with(port, "", acc, sizeof acc, &alen, " \r\n");
    if (fd < 0)
        return "";
    char *body = memmem(acc, alen, "\r\n\r\n", 4);
    if (body) {
        decode_server(body + 4, alen - (size_t)(body + 4 - acc), f);
        *auth_req = strstr(f->text, "\"auth_required\":true") != NULL;
    }
    char msg[512];
    snprintf(msg, sizeof msg, "%s\r\nPING\r\n", connect);
    wsend(fd, WS_OP_BINARY, true, msg, strlen(msg));
    alen = 0;
    for (int i = 0; i < 50; i++) {
        if (recv_until(fd, acc, sizeof acc, &alen, "PONG", 4, 100) ||
            memmem(acc, alen, "-ERR", 4))
            break;
    }
    decode_server(acc, alen, f);
    close(fd);
    return f->text;
}

/* The same over plain TCP. */
static const char *tcp_connect_as(int port, const char *connect, char *acc, size_t cap,
                                  bool *auth_req)
{
    size_t alen = 0;
    int fd = tcp_connect(port);
    if (fd < 0)
        return "";
    recv_until(fd, acc, cap - 1, &alen, " \r\n", 3, 3000);
    acc[alen] = 0;
    *auth_req = strstr(acc, "\"auth_required\":true") != NULL;
    char msg[512];
    snprintf(msg, sizeof msg, "%s\r\nPING\r\n", connect);
    send_all(fd, msg, strlen(msg));
    alen = 0;
    for (int i = 0; i < 50; i++) {
        if (recv_until(fd, acc, cap - 1, &alen, "PONG", 4, 100) || memmem(acc, alen, "-ERR", 4))
            break;
    }
    acc[alen] = 0;
    close(fd);
    return acc;
}

static void test_live_auth(void)
{
    static sframes f;
    static char tacc[4096];
    bool ar = false;
    ember_server_options o;
    /* user/password for TCP, others for websocket */
    ember_server_options_init(&o);
    o.username = "tcpu";
    o.password = "tcpp";
    o.ws_username = "wsu";
    o.ws_password = "wsp";
    ember_server *srv = start_ws(&o);
    REQUIRE(srv != NULL);
    int wp = ember_server_websocket_port(srv), tp = ember_server_port(srv);
    CHECK(strstr(ws_connect_as(wp, "CONNECT {\"user\":\"wsu\",\"pass\":\"wsp\"}", &f, &ar), "PONG"));
    CHECK(ar);
    CHECK(strstr(ws_connect_as(wp, "CONNECT {\"user\":\"tcpu\",\"pass\":\"tcpp\"}", &f, &ar),
                 "-ERR 'Authorization Violation'\r\n"));
    CHECK(strstr(ws_connect_as(wp, "CONNECT {\"user\":\"wsu\",\"pass\":\"x\"}", &f, &ar),
                 "-ERR 'Authorization Violation'\r\n"));
    CHECK(strstr(tcp_connect_as(tp, "CONNECT {\"user\":\"tcpu\",\"pass\":\"tcpp\"}", tacc,
                                sizeof tacc, &ar), "PONG"));
    CHECK(strstr(tcp_connect_as(tp, "CONNECT {\"user\":\"wsu\",\"pass\":\"wsp\"}", tacc,
                                sizeof tacc, &ar), "-ERR 'Authorization Violation'\r\n"));
    ember_server_free(srv);

    /* no auth for TCP, a token for websocket: only websocket clients must authenticate */
    ember_server_options_init(&o);
    o.ws_auth_token = "s3cret";
    srv = start_ws(&o);
    REQUIRE(srv != NULL);
    wp = ember_server_websocket_port(srv);
    tp = ember_server_port(srv);
    CHECK(strstr(ws_connect_as(wp, "CONNECT {\"auth_token\":\"s3cret\"}", &f, &ar), "PONG") && ar);
    CHECK(strstr(ws_connect_as(wp, "CONNECT {}", &f, &ar), "-ERR 'Authorization Violation'\r\n"));
    CHECK(strstr(tcp_connect_as(tp, "CONNECT {}", tacc, sizeof tacc, &ar), "PONG") && !ar);
    ember_server_free(srv);

    /* users for both; websocket's no_auth_user */
    ember_server_options_init(&o);
    ember_user users[2] = {{.user = "a", .password = "pa"}, {.user = "b", .password = "pb"}};
    o.users = users;
    o.users_count = 2;
    o.ws_no_auth_user = "b";
    srv = start_ws(&o);
    REQUIRE(srv != NULL);
    wp = ember_server_websocket_port(srv);
    tp = ember_server_port(srv);
    CHECK(strstr(ws_connect_as(wp, "CONNECT {}", &f, &ar), "PONG") && ar);
    CHECK(strstr(ws_connect_as(wp, "CONNECT {\"user\":\"a\",\"pass\":\"pa\"}", &f, &ar), "PONG"));
    CHECK(strstr(ws_connect_as(wp, "CONNECT {\"user\":\"a\",\"pass\":\"x\"}", &f, &ar),
                 "-ERR 'Authorization Violation'\r\n"));
    CHECK(strstr(tcp_connect_as(tp, "CONNECT {}", tacc, sizeof tacc, &ar),
                 "-ERR 'Authorization Violation'\r\n"));
    ember_server_free(srv);

    /* nats-server's option checks */
    ember_server_options_init(&o);
    o.port = -1;
    o.ws_port = -1;
    o.ws_no_tls = true;
    o.users = users;
    o.users_count = 2;
    o.ws_username = "x";
    o.ws_password = "y";
    CHECK(ember_server_new(&srv, &o) == EMBER_EINVAL);
    CHECK(!strcmp(ember_last_error(),
                  "websocket authentication username not compatible with presence of users/nkeys"));
    o.ws_username = o.ws_password = NULL;
    o.ws_no_auth_user = "zed";
    CHECK(ember_server_new(&srv, &o) == EMBER_EINVAL);
    CHECK(!strcmp(ember_last_error(), "no_auth_user: \"zed\" not present as user in "
                                      "authorization block or account configuration"));
    o.users = NULL;
    o.users_count = 0;
    CHECK(ember_server_new(&srv, &o) == EMBER_EINVAL);
    CHECK(!strcmp(ember_last_error(), "no_auth_user: \"zed\" present, but users are not defined"));
}

static void test_live_compress(void)
{
    static char acc[300000];
    static sframes f;
    static unsigned char fb[70000], zb[70000];
    size_t alen;
    int nz;
    size_t zbytes;
    ember_server_options o;
    ember_server_options_init(&o);
    o.ws_compression = true;
    ember_server *srv = start_ws(&o);
    REQUIRE(srv != NULL);
    int port = ember_server_websocket_port(srv);
    const char *offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
    int fd = ws_open_with(port, offer, acc, sizeof acc, &alen, "\r\n\r\n");
    REQUIRE(fd >= 0);
    recv_until(fd, acc, sizeof acc, &alen, NULL, 0, 300); /* the INFO frame */
    CHECK(memmem(acc, alen, "\r\nSec-WebSocket-Extensions: permessage-deflate; "
                 "server_no_context_takeover; client_no_context_takeover\r\n", 91) != NULL);
    char *body = memmem(acc, alen, "\r\n\r\n", 4);
    REQUIRE(body != NULL);
    body += 4;
    /* the INFO (over 64 bytes) comes compressed */
    CHECK(((unsigned char)body[0]) == 0xc2);
    decode_server_z(body, alen - (size_t)(body - acc), &f, &nz, &zbytes);
    CHECK(nz == 1 && !strncmp(f.text, "INFO {", 6) && strstr(f.text, "} \r\n"));

    /* compressed client frames: one message, then one in two fragments */
    const char *m1 = "CONNECT {\"verbose\":false}\r\nSUB z.> 1\r\nPUB z.a 5\r\nhello\r\n";
    size_t zl = zdeflate(m1, strlen(m1), zb, sizeof zb);
    size_t n = cframe_z(fb, WS_OP_BINARY, true, true, zb, zl);
    const char *m2 = "PUB z.b 6\r\nworld!\r\nPING\r\n";
    zl = zdeflate(m2, strlen(m2), zb, sizeof zb);
    n += cframe_z(fb + n, WS_OP_BINARY, false, true, zb, 5);
    n += cframe_z(fb + n, WS_OP_CONT, true, false, zb + 5, zl - 5);
    send_all(fd, fb, n);
    alen = 0;
    for (int i = 0; i < 30; i++) {
        recv_until(fd, acc, sizeof acc, &alen, NULL, 0, 100);
        decode_server_z(acc, alen, &f, &nz, &zbytes);
        if (strstr(f.text, "PONG\r\n"))
            break;
    }
    CHECK(strstr(f.text, "MSG z.a 1 5\r\nhello\r\n") && strstr(f.text, "MSG z.b 1 6\r\nworld!\r\n"));
    CHECK(strstr(f.text, "PONG\r\n"));

    /* a large, compressible message: compressed (much smaller on the wire) */
    ember_conn *c = NULL;
    REQUIRE(ember_conn_connect(&c, srv, NULL) == EMBER_OK);
    static char big[60000];
    memset(big, 'z', sizeof big);
    CHECK(ember_conn_publish(c, "z.big", NULL, big, sizeof big) == EMBER_OK);
    CHECK(ember_conn_flush(c, 2000) == EMBER_OK);
    send_all(fd, fb, cframe_z(fb, WS_OP_BINARY, true, false, "PING\r\n", 6));
    alen = 0;
    for (int i = 0; i < 30; i++) {
        recv_until(fd, acc, sizeof acc, &alen, NULL, 0, 100);
        decode_server_z(acc, alen, &f, &nz, &zbytes);
        if (strstr(f.text, "PONG\r\n"))
            break;
    }
    CHECK(strstr(f.text, "MSG z.big 1 60000\r\n") && f.tlen >= sizeof big + 20);
    CHECK(nz >= 1 && zbytes < 2000 && alen < 3000);
    close(fd);

    /* a browser's (not Safari) compressed writes are cut in 4 KiB frames */
    fd = ws_open_with(port, "Sec-WebSocket-Extensions: permessage-deflate\r\n"
                            "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0\r\n",
                      acc, sizeof acc, &alen, "\r\n\r\n");
    REQUIRE(fd >= 0);
    recv_until(fd, acc, sizeof acc, &alen, NULL, 0, 300);
    static char rnd[30000];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof rnd; i++) { /* incompressible-ish */
        x = x * 1103515245u + 12345u;
        rnd[i] = (char)('A' + (x >> 16) % 60);
    }
    send_all(fd, fb, cframe_z(fb, WS_OP_BINARY, true, false, "CONNECT {}\r\nSUB r 1\r\nPING\r\n", 27));
    alen = 0;
    recv_until(fd, acc, sizeof acc, &alen, "PONG", 4, 1000);
    CHECK(ember_conn_publish(c, "r", NULL, rnd, sizeof rnd) == EMBER_OK);
    send_all(fd, fb, cframe_z(fb, WS_OP_BINARY, true, false, "PING\r\n", 6));
    alen = 0;
    for (int i = 0; i < 30; i++) {
        recv_until(fd, acc, sizeof acc, &alen, NULL, 0, 100);
        decode_server_z(acc, alen, &f, &nz, &zbytes);
        if (strstr(f.text, "PONG\r\n"))
            break;
    }
    CHECK(strstr(f.text, "MSG r 1 30000\r\n") && nz == 1);
    CHECK(memmem(f.text, f.tlen, rnd, sizeof rnd) != NULL);
    CHECK(alen > 4 && ((unsigned char)acc[0]) == 0x42); /* RSV1, binary, not final */
    close(fd);

    /* not offered: no extension, no RSV1 */
    fd = ws_open_with(port, "", acc, sizeof acc, &alen, " \r\n");
    REQUIRE(fd >= 0);
    CHECK(!memmem(acc, alen, "Sec-WebSocket-Extensions", 24));
    body = memmem(acc, alen, "\r\n\r\n", 4);
    CHECK(body && ((unsigned char)body[4]) == 0x82);
    close(fd);
    ember_conn_close(c);
    ember_server_free(srv);

    /* compression off: an offer is declined; a compressed frame is a protocol error */
    ember_server_options_init(&o);
    srv = start_ws(&o);
    REQUIRE(srv != NULL);
    port = ember_server_websocket_port(srv);
    fd = ws_open_with(port, offer, acc, sizeof acc, &alen, " \r\n");
    REQUIRE(fd >= 0);
    CHECK(!memmem(acc, alen, "Sec-WebSocket-Extensions", 24));
    zl = zdeflate("PING\r\n", 6, zb, sizeof zb);
    send_all(fd, fb, cframe_z(fb, WS_OP_BINARY, true, true, zb, zl));
    alen = 0;
    recv_until(fd, acc, sizeof acc, &alen, NULL, 0, 3000);
    decode_server(acc, alen, &f);
    CHECK(f.nctl == 1 && f.ctl_ops[0] == WS_OP_CLOSE && f.ctl[0][0] == 0x03 && f.ctl[0][1] == 0xea);
    close(fd);
    ember_server_free(srv);
}

/* ------------------------------------------------------------------ configuration */

static const char *write_conf(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/ember-test-ws-%d.conf", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_config(void)
{
    ember_server_options o;
    ember_config *cfg = NULL;
    ember_server_options_init(&o);
    const char *p = write_conf("websocket {\n  listen: \"127.0.0.1:-1\"\n  no_tls: true\n"
                               "  compression: false\n  handshake_timeout: \"3s\"\n}\n"
                               /* the key pair must exist at load, as in nats-server */
                               "tls {\n  cert_file: \"/dev/null\"\n  key_file: \"/dev/null\"\n"
                               "  ca_file: \"/x/ca.pem\"\n  verify: true\n  timeout: 1.5\n"
                               "  handshake_first: true\n}\n");
    CHECK(ember_config_load(&cfg, p, &o) == EMBER_OK);
    CHECK(o.ws_port == -1 && o.ws_host && !strcmp(o.ws_host, "127.0.0.1"));
    CHECK(o.ws_no_tls && !o.ws_compression && o.ws_handshake_timeout_ms == 3000);
    CHECK(o.tls_cert_file && !strcmp(o.tls_cert_file, "/dev/null"));
    CHECK(o.tls_key_file && !strcmp(o.tls_key_file, "/dev/null"));
    CHECK(o.tls_ca_file && !strcmp(o.tls_ca_file, "/x/ca.pem"));
    CHECK(o.tls_verify && o.tls_handshake_first && o.tls_timeout_ms == 1500);
    CHECK(!strcmp(o.host, "0.0.0.0") && o.port == 0); /* the client listen is untouched */
    ember_config_free(cfg);

    ember_server_options_init(&o);
    p = write_conf("tls {\n  cert_file: 5\n}\n");
    CHECK(ember_config_load(&cfg, p, &o) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), ":2:") &&
          strstr(ember_last_error(), "error parsing tls config, expected 'cert_file' to be filename"));
    p = write_conf("tls {\n  timeout: true\n}\n");
    CHECK(ember_config_load(&cfg, p, &o) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "error parsing tls config, 'timeout' wrong type"));
    p = write_conf("tls {\n  pinned_certs: [\"aa\"]\n}\n");
    CHECK(ember_config_load(&cfg, p, &o) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "field \"pinned_certs\" is not supported by Ember"));
    p = write_conf("websocket: 5\n");
    CHECK(ember_config_load(&cfg, p, &o) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "Expected websocket to be a map"));
    p = write_conf("websocket {\n  authorization { users: [] }\n}\n");
    CHECK(ember_config_load(&cfg, p, &o) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "unknown field \"users\""));

    ember_server_options_init(&o);
    p = write_conf("websocket {\n  port: 8080\n  no_tls: true\n  compression: true\n"
                   "  same_origin: true\n  allowed_origins: [\"http://a.example\", "
                   "\"https://b.example:8443\"]\n  authorization {\n    user: wsu\n"
                   "    password: wsp\n    timeout: 3\n  }\n  no_auth_user: nobody\n}\n");
    CHECK(ember_config_load(&cfg, p, &o) == EMBER_OK);
    CHECK(o.ws_compression && o.ws_same_origin && o.ws_allowed_origins_count == 2);
    CHECK(o.ws_allowed_origins && !strcmp(o.ws_allowed_origins[1], "https://b.example:8443"));
    CHECK(o.ws_username && !strcmp(o.ws_username, "wsu") && o.ws_password &&
          !strcmp(o.ws_password, "wsp") && o.ws_auth_timeout_ms == 3000);
    CHECK(o.ws_no_auth_user && !strcmp(o.ws_no_auth_user, "nobody") && !o.ws_auth_token);
    CHECK(o.username == NULL && o.no_auth_user == NULL); /* the server's are untouched */
    ember_config_free(cfg);
    ember_server_options_init(&o);
    p = write_conf("websocket {\n  origin: \"http://x.example\"\n  authorization { token: t }\n}\n");
    CHECK(ember_config_load(&cfg, p, &o) == EMBER_OK);
    CHECK(o.ws_allowed_origins_count == 1 && !strcmp(o.ws_allowed_origins[0], "http://x.example"));
    CHECK(o.ws_auth_token && !strcmp(o.ws_auth_token, "t"));
    ember_config_free(cfg);
    unlink(p);
}

int main(void)
{
    test_accept_key();
    test_upgrade();
    test_frames();
    test_origin_units();
    test_inflate_units();
    test_live();
    test_live_origin();
    test_live_auth();
    test_live_compress();
    test_config();
    return tu_summary("test_ws");
}
