/* fuzz_parser: libFuzzer target for the NATS protocol parser (core/src/parser.c).
 *
 * Input: byte 0 picks a split position, byte 1 holds flags, the rest is the stream.
 * For each mode the stream is parsed
 *   1. in one call,
 *   2. in two calls, cut where byte 0 says,
 *   3. in pieces of 1..16 bytes (sizes from the stream itself), and, for short
 *      inputs, one byte at a time,
 *   4. stopping (PROTO_STOPPED) at one op and resuming from `consumed`,
 * and every way must give the same operations (hashed with all their bytes, which
 * also makes ASan check every slice) and the same final status. Flags: bit 0 small
 * limits (control line 24, payload 40) to reach the limit paths, bit 1
 * require_connect (turned off by the first CONNECT, as a broker would).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Icore/src \
 *         core/src/parser.c tests/fuzz/fuzz_parser.c -o fuzz_parser
 *   ./fuzz_parser -runs=1000000 tests/fuzz/corpus/parser
 */
#include "parser.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct run {
    uint64_t h;
    size_t nops;
    size_t stop_at; /* 1-based op number to stop at, 0: never */
    proto_parser *p;
    int clear_on_connect;
} run;

static void mix(run *r, const void *data, size_t n)
{
    const unsigned char *d = data;
    uint64_t h = r->h;
    for (size_t i = 0; i < n; i++) {
        h ^= d[i];
        h *= 1099511628211ull;
    }
    r->h = h;
}

static void mix_slice(run *r, proto_slice s)
{
    if (s.len && !s.p)
        abort();
    mix(r, &s.len, sizeof s.len);
    if (s.len)
        mix(r, s.p, s.len);
}

static int on_op(void *ctx, const proto_op *op)
{
    run *r = ctx;
    r->nops++;
    int k = (int)op->kind;
    if (k < PROTO_OP_CONNECT || k > PROTO_OP_LMSG)
        abort();
    mix(r, &k, sizeof k);
    mix_slice(r, op->subject);
    mix_slice(r, op->reply);
    mix_slice(r, op->queue);
    mix_slice(r, op->sid);
    mix(r, &op->max, sizeof op->max);
    mix_slice(r, op->arg);
    mix_slice(r, op->hdr);
    mix_slice(r, op->payload);
    mix(r, &op->nqueues, sizeof op->nqueues);
    size_t nq = op->nqueues < PROTO_MAX_QUEUES ? op->nqueues : PROTO_MAX_QUEUES;
    for (size_t i = 0; i < nq; i++)
        mix_slice(r, op->queues[i]);
    mix_slice(r, op->qlist);
    /* a few invariants */
    if (op->nqueues && (op->kind != PROTO_OP_LMSG && op->kind != PROTO_OP_HMSG))
        abort();
    if (op->hdr.len && op->kind != PROTO_OP_HPUB && op->kind != PROTO_OP_HMSG)
        abort();
    if ((op->kind == PROTO_OP_PUB || op->kind == PROTO_OP_SUB || op->kind == PROTO_OP_MSG) &&
        op->subject.len == 0)
        abort();
    if (op->kind == PROTO_OP_CONNECT && r->clear_on_connect)
        proto_parser_require_connect(r->p, 0);
    return r->stop_at && r->nops == r->stop_at;
}

typedef struct cfg {
    proto_mode mode;
    size_t mcl, mpay;
    int require_connect;
} cfg;

static proto_parser *mk(const cfg *c, run *r)
{
    proto_parser *p = proto_parser_new(c->mode, c->mcl, c->mpay);
    if (!p)
        abort();
    if (c->require_connect)
        proto_parser_require_connect(p, 1);
    r->p = p;
    r->clear_on_connect = c->require_connect;
    return p;
}

/* Feed data in pieces ending at the given cut points; each piece in its own exact
 * heap allocation so stale or out-of-bounds slices are caught. */
static proto_status feed(const cfg *c, const uint8_t *data, size_t size, const size_t *cuts,
                         size_t ncuts, run *r)
{
    proto_parser *p = mk(c, r);
    proto_status st = PROTO_OK;
    size_t start = 0;
    for (size_t k = 0; k <= ncuts && st == PROTO_OK; k++) {
        size_t end = k < ncuts ? cuts[k] : size;
        if (end < start)
            end = start;
        size_t n = end - start;
        char *piece = malloc(n ? n : 1);
        if (!piece)
            abort();
        memcpy(piece, data + start, n);
        size_t consumed = 0;
        st = proto_parse(p, piece, n, on_op, r, &consumed);
        if (consumed > n)
            abort();
        free(piece);
        start = end;
    }
    proto_parser_free(p);
    return st;
}

static void same(const run *a, proto_status sa, const run *b, proto_status sb)
{
    if (sa != sb || a->h != b->h || a->nops != b->nops) {
        fprintf(stderr, "mismatch: status %d/%d ops %zu/%zu\n", sa, sb, a->nops, b->nops);
        abort();
    }
}

static void one_mode(const cfg *c, const uint8_t *data, size_t size, uint8_t splitb)
{
    static const uint64_t H0 = 1469598103934665603ull;
    run ref = {H0, 0, 0, NULL, 0};
    proto_status st = feed(c, data, size, NULL, 0, &ref);
    if (st == PROTO_STOPPED || (st != PROTO_OK && !proto_status_err_text(st) &&
                                st != PROTO_ERR_ARGS && st != PROTO_ERR_HEADER &&
                                st != PROTO_ERR_NOMEM))
        abort();

    /* two pieces */
    size_t cut = size ? (size_t)splitb * size / 255 : 0;
    run r2 = {H0, 0, 0, NULL, 0};
    same(&ref, st, &r2, feed(c, data, size, &cut, 1, &r2));

    /* many small pieces, sizes taken from the data */
    size_t *cuts = malloc((size + 1) * sizeof *cuts);
    if (!cuts)
        abort();
    size_t n = 0, at = 0;
    for (size_t i = 0; at < size; i++) {
        at += 1 + (size ? data[(i * 7) % size] % 16 : 0);
        if (at < size)
            cuts[n++] = at;
    }
    run r3 = {H0, 0, 0, NULL, 0};
    same(&ref, st, &r3, feed(c, data, size, cuts, n, &r3));

    /* one byte at a time (short inputs: it is quadratic in allocations only) */
    if (size <= 2048) {
        for (size_t i = 0; i + 1 < size; i++)
            cuts[i] = i + 1;
        run r4 = {H0, 0, 0, NULL, 0};
        same(&ref, st, &r4, feed(c, data, size, cuts, size ? size - 1 : 0, &r4));
    }
    free(cuts);

    /* stop at one op, resume from `consumed` */
    if (ref.nops) {
        run r5 = {H0, 0, 1 + splitb % ref.nops, NULL, 0};
        proto_parser *p = mk(c, &r5);
        size_t off = 0, consumed = 0;
        proto_status s5 = proto_parse(p, (const char *)data, size, on_op, &r5, &consumed);
        if (s5 != PROTO_STOPPED || r5.nops != r5.stop_at || consumed > size)
            abort();
        r5.stop_at = 0;
        off = consumed;
        s5 = proto_parse(p, (const char *)data + off, size - off, on_op, &r5, NULL);
        same(&ref, st, &r5, s5);
        proto_parser_free(p);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t splitb = data[0], flags = data[1];
    data += 2;
    size -= 2;
    for (int m = PROTO_MODE_CLIENT; m <= PROTO_MODE_LEAF; m++) {
        cfg c;
        c.mode = (proto_mode)m;
        c.mcl = (flags & 1) ? 24 : (m == PROTO_MODE_LEAF ? 16 * 4096 : 4096);
        c.mpay = (flags & 1) ? 40 : 1024 * 1024;
        c.require_connect = (flags & 2) != 0;
        one_mode(&c, data, size, splitb);
    }
    /* the header helper on the same bytes */
    (void)proto_hdr_status((const char *)data, size);
    return 0;
}
