/* fuzz_ws: libFuzzer target for the WebSocket pieces (core/src/ws.c).
 *
 * Byte 0: bit 0 picks the target, bit 1 "masking required" (upgrade: same_origin), bit 2
 *   permessage-deflate on (upgrade: wss), bits 3..7 a split position.
 *   upgrade (bit 0 = 0): the rest is an HTTP request for ws_upgrade_parse; every prefix
 *     must parse as "incomplete" or to the same length, an accepted request must give a
 *     101 response, a refused one an HTTP error; no reason may be missing. The Origin of
 *     an accepted request goes through ws_origin_check (an allowed list, same_origin).
 *   frames (bit 0 = 1): the rest is a client byte stream for ws_read, fed in one call,
 *     in two calls cut at the split position, and one byte at a time: all three must see
 *     the same payload bytes (hashed; inflated for compressed messages), the same control
 *     frames and the same outcome. CLOSE payloads go through ws_close_parse and
 *     ws_close_payload.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Icore/src core/src/ws.c \
 *         tests/fuzz/fuzz_ws.c -lcrypto -lz -o fuzz_ws
 *   ./fuzz_ws -runs=1000000 tests/fuzz/corpus/ws
 */
#include "ws.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct run {
    uint64_t h;
    size_t nbytes;
    int nctl;
    uint64_t ch;
} run;

static uint64_t mix(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static int on_data(void *ud, char *p, size_t n)
{
    run *r = ud;
    r->h = mix(r->h, (const unsigned char *)p, n);
    r->nbytes += n;
    return 0;
}

static int on_ctl(void *ud, int op, const unsigned char *p, size_t n)
{
    run *r = ud;
    if (n > WS_MAX_CONTROL_PAYLOAD)
        abort();
    unsigned char o = (unsigned char)op;
    r->ch = mix(r->ch, &o, 1);
    r->ch = mix(r->ch, p, n);
    r->nctl++;
    if (op == WS_OP_CLOSE) {
        int status;
        const char *body;
        size_t bl;
        char err[160];
        if (ws_close_parse(p, n, &status, &body, &bl, err, sizeof err) == 0) {
            unsigned char out[WS_MAX_CONTROL_PAYLOAD];
            char b[WS_MAX_CONTROL_PAYLOAD + 1];
            memcpy(b, body, bl < WS_MAX_CONTROL_PAYLOAD ? bl : WS_MAX_CONTROL_PAYLOAD);
            b[bl < WS_MAX_CONTROL_PAYLOAD ? bl : WS_MAX_CONTROL_PAYLOAD] = 0;
            if (ws_close_payload(status, b, out) > WS_MAX_CONTROL_PAYLOAD)
                abort();
        } else if (!err[0]) {
            abort();
        }
    }
    return 0;
}

/* Feed stream in pieces; returns the outcome (0 or -1) and fills r. */
static int feed(const unsigned char *data, size_t n, bool mask, bool zip, size_t step1,
                size_t step, run *r, char *err)
{
    unsigned char *copy = malloc(n ? n : 1);
    memcpy(copy, data, n);
    ws_reader rd;
    ws_reader_init(&rd, mask);
    if (zip)
        ws_reader_inflate_on(&rd);
    ws_handler h = {.data = on_data, .control = on_ctl, .ud = r};
    memset(r, 0, sizeof *r);
    int rc = 0;
    size_t off = 0;
    bool first = true;
    while (off < n && rc == 0) {
        size_t k = first ? step1 : step;
        first = false;
        if (k == 0 || k > n - off)
            k = n - off;
        err[0] = 0;
        rc = ws_read(&rd, (char *)copy + off, k, &h, err, 160);
        off += k;
    }
    free(copy);
    ws_reader_free(&rd);
    if (rc == -1 && !err[0])
        abort(); /* every protocol error has a message */
    return rc;
}

static void fuzz_frames(const unsigned char *d, size_t n, bool mask, bool zip, size_t cut)
{
    run a, b, c;
    char ea[160], eb[160], ec[160];
    int ra = feed(d, n, mask, zip, n, n, &a, ea);
    int rb = feed(d, n, mask, zip, cut % (n + 1), n, &b, eb);
    int rc = n <= 4096 ? feed(d, n, mask, zip, 1, 1, &c, ec) : ra;
    if (n > 4096)
        c = a, strcpy(ec, ea);
    /* the outcome and everything seen before it must not depend on the cuts (except how
     * much of a corrupt compressed message was inflated before zlib noticed) */
    if (ra != rb || ra != rc)
        abort();
    bool zerr = zip && ra == -1 && !strncmp(ea, "flate: ", 7);
    if (!zerr && (a.h != b.h || a.h != c.h || a.nbytes != b.nbytes || a.nbytes != c.nbytes))
        abort();
    if (a.nctl != b.nctl || a.nctl != c.nctl || a.ch != b.ch || a.ch != c.ch)
        abort();
    if (ra == -1 && (strcmp(ea, eb) || strcmp(ea, ec)))
        abort();
}

static void fuzz_upgrade(const char *d, size_t n, bool same, bool tls)
{
    ws_upgrade u;
    size_t used = ws_upgrade_parse(d, n, &u);
    if (used > n)
        abort();
    if (used == 0) {
        if (n >= WS_MAX_UPGRADE_REQUEST)
            abort();
        return;
    }
    if (u.status != 0 && !u.reason)
        abort();
    char out[1024];
    if (u.status == 0) {
        if (strlen(u.key) != 24)
            abort();
        size_t rl = ws_upgrade_response(&u, out, sizeof out);
        if (rl == 0 || memcmp(out, "HTTP/1.1 101 ", 13) != 0)
            abort();
        if ((u.origin && (u.origin < d || u.origin + u.origin_len > d + n)) ||
            (u.host && (u.host < d || u.host + u.host_len > d + n)))
            abort();
        static ws_origin allowed[2];
        static bool init;
        char err[400];
        if (!init) {
            if (ws_origin_parse("http://a.example", 16, &allowed[0], err, sizeof err) ||
                ws_origin_parse("https://[::1]:8443", 18, &allowed[1], err, sizeof err))
                abort();
            init = true;
        }
        err[0] = 0;
        if (ws_origin_check(&u, tls, same, allowed, 2, err, sizeof err) != 0 && !err[0])
            abort();
        err[0] = 0;
        if (ws_origin_check(&u, tls, true, NULL, 0, err, sizeof err) != 0 && !err[0])
            abort();
    } else if (ws_http_error(u.status, out, sizeof out) == 0) {
        abort();
    }
    /* a shorter prefix is incomplete or ends at the same place */
    if (used < n) {
        ws_upgrade u2;
        size_t used2 = ws_upgrade_parse(d, used, &u2);
        if (used2 != used && !(u.status == 431 || u2.status == 431))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned char ctl = data[0];
    const unsigned char *d = data + 1;
    size_t n = size - 1;
    if (ctl & 1)
        fuzz_frames(d, n, (ctl & 2) != 0, (ctl & 4) != 0, (size_t)(ctl >> 3));
    else
        fuzz_upgrade((const char *)d, n, (ctl & 2) != 0, (ctl & 4) != 0);
    return 0;
}
