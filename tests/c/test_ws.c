/* test_ws: the WebSocket listener.
 *   - ws.c units: Sec-WebSocket-Accept (RFC 6455's example), the upgrade request checks
 *     with nats-server's reasons, the frame reader (masking, fragmentation, split
 *     headers, control frames, every protocol error), close payloads;
 *   - a live session on loopback speaking raw frames to an embedded server: upgrade,
 *     INFO in a binary frame, CONNECT/SUB/PUB/MSG, a message published in-process,
 *     ping/pong, fragmented and split frames, close handshake, bad frames (close 1002),
 *     a bad upgrade (HTTP 400);
 *   - the websocket {} and tls {} configuration blocks. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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
        uint64_t len = b[1] & 0x7f;
        size_t h = 2;
        if (len == 126) {
            if (i + 4 > n)
                return;
            len = ((uint64_t)b[2] << 8) | b[3];
            h = 4;
        } else if (len == 127) {
            if (i + 10 > n)
                return;
            len = 0;
            for (int k = 0; k < 8; k++)
                len = (len << 8) | b[2 + k];
            h = 10;
        }
        if (i + h + len > n)
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
                               "tls {\n  cert_file: \"/x/cert.pem\"\n  key_file: \"/x/key.pem\"\n"
                               "  ca_file: \"/x/ca.pem\"\n  verify: true\n  timeout: 1.5\n"
                               "  handshake_first: true\n}\n");
    CHECK(ember_config_load(&cfg, p, &o) == EMBER_OK);
    CHECK(o.ws_port == -1 && o.ws_host && !strcmp(o.ws_host, "127.0.0.1"));
    CHECK(o.ws_no_tls && !o.ws_compression && o.ws_handshake_timeout_ms == 3000);
    CHECK(o.tls_cert_file && !strcmp(o.tls_cert_file, "/x/cert.pem"));
    CHECK(o.tls_key_file && !strcmp(o.tls_key_file, "/x/key.pem"));
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
    p = write_conf("websocket {\n  authorization { token: x }\n}\n");
    CHECK(ember_config_load(&cfg, p, &o) == EMBER_EINVAL);
    unlink(p);
}

int main(void)
{
    test_accept_key();
    test_upgrade();
    test_frames();
    test_live();
    test_config();
    return tu_summary("test_ws");
}
