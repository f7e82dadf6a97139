/* test_parser: the NATS protocol parser (core/src/parser.c).
 *
 * Every op in every mode, optional arguments, case-insensitivity, several ops per
 * buffer, every byte-boundary split of mixed streams (and one byte at a time) against
 * the one-shot parse, the error classes measured against nats-server 2.9.10 (see
 * docs/wire-errors.md), PROTO_STOPPED, header status lines, and a speed measurement
 * that is printed, never asserted.
 *
 * Standalone: cc -O2 -Icore/src core/src/parser.c tests/c/test_parser.c
 */
#include "parser.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int passed, failed;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (cond) {                                                                      \
            passed++;                                                                    \
        } else {                                                                         \
            failed++;                                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);     \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                               \
    do {                                                                                 \
        long long a_ = (long long)(a), b_ = (long long)(b);                              \
        if (a_ == b_) {                                                                  \
            passed++;                                                                    \
        } else {                                                                         \
            failed++;                                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld vs %lld)\n", __FILE__,  \
                    __LINE__, #a, #b, a_, b_);                                           \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

/* ------------------------------------------------------------------ recorder */

typedef struct rec {
    char *s;
    size_t len, cap;
    int nops;
    int stop_at;          /* stop (return 1) on this op number (1-based), 0: never */
    const char *lo, *hi;  /* when set, every slice must point into [lo, hi) */
    int outside;          /* slices seen outside [lo, hi) */
    proto_parser *clear_on_connect; /* turn require_connect off on CONNECT */
} rec;

static void rec_put(rec *r, const void *p, size_t n)
{
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 256;
        while (cap < r->len + n + 1)
            cap *= 2;
        r->s = realloc(r->s, cap);
        if (!r->s)
            abort();
        r->cap = cap;
    }
    if (n)
        memcpy(r->s + r->len, p, n);
    r->len += n;
    r->s[r->len] = 0;
}

static void rec_printf(rec *r, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    rec_put(r, tmp, (size_t)n);
}

static int rec_eq(const rec *a, const rec *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->s, b->s, a->len) == 0);
}

static void rec_free(rec *r)
{
    free(r->s);
    memset(r, 0, sizeof *r);
}

static const char *kind_name(proto_op_kind k)
{
    switch (k) {
    case PROTO_OP_CONNECT: return "CONNECT";
    case PROTO_OP_INFO: return "INFO";
    case PROTO_OP_PUB: return "PUB";
    case PROTO_OP_HPUB: return "HPUB";
    case PROTO_OP_SUB: return "SUB";
    case PROTO_OP_UNSUB: return "UNSUB";
    case PROTO_OP_PING: return "PING";
    case PROTO_OP_PONG: return "PONG";
    case PROTO_OP_OK: return "+OK";
    case PROTO_OP_ERR: return "-ERR";
    case PROTO_OP_MSG: return "MSG";
    case PROTO_OP_HMSG: return "HMSG";
    case PROTO_OP_LSUB: return "LS+";
    case PROTO_OP_LUNSUB: return "LS-";
    case PROTO_OP_LMSG: return "LMSG";
    }
    return "?";
}

static void rec_slice(rec *r, const char *name, proto_slice s)
{
    if (!s.len)
        return;
    if (r->lo && (s.p < r->lo || s.p + s.len > r->hi))
        r->outside++;
    rec_printf(r, " %s[%zu]=", name, s.len);
    rec_put(r, s.p, s.len);
}

static int on_rec(void *ctx, const proto_op *op)
{
    rec *r = ctx;
    r->nops++;
    rec_printf(r, "%s", kind_name(op->kind));
    rec_slice(r, "subj", op->subject);
    rec_slice(r, "reply", op->reply);
    rec_slice(r, "queue", op->queue);
    rec_slice(r, "sid", op->sid);
    if (op->max != -1)
        rec_printf(r, " max=%lld", (long long)op->max);
    rec_slice(r, "arg", op->arg);
    rec_slice(r, "hdr", op->hdr);
    rec_slice(r, "payload", op->payload);
    if (op->nqueues) {
        rec_printf(r, " nq=%zu", op->nqueues);
        size_t n = op->nqueues < PROTO_MAX_QUEUES ? op->nqueues : PROTO_MAX_QUEUES;
        for (size_t i = 0; i < n; i++)
            rec_slice(r, "q", op->queues[i]);
        rec_slice(r, "qlist", op->qlist);
    }
    rec_put(r, "\n", 1);
    if (op->kind == PROTO_OP_CONNECT && r->clear_on_connect)
        proto_parser_require_connect(r->clear_on_connect, 0);
    return r->stop_at && r->nops == r->stop_at;
}

/* ------------------------------------------------------------------ helpers */

#define MCL 4096
#define MPAY (1024 * 1024)

static size_t mcl_for(proto_mode m) { return m == PROTO_MODE_LEAF ? 16 * MCL : MCL; }

/* Parse s[0..len) in one call, checking that every slice points into the buffer. */
static proto_status parse_once(proto_mode mode, const char *s, size_t len, rec *r)
{
    proto_parser *p = proto_parser_new(mode, mcl_for(mode), MPAY);
    CHECK(p != NULL);
    char *copy = malloc(len ? len : 1);
    memcpy(copy, s, len);
    r->lo = copy;
    r->hi = copy + len;
    size_t consumed = 0;
    proto_status st = proto_parse(p, copy, len, on_rec, r, &consumed);
    CHECK(r->outside == 0); /* zero-copy: whole ops point into the caller's buffer */
    r->lo = r->hi = NULL;
    free(copy);
    proto_parser_free(p);
    return st;
}

/* Parse s[0..len) cut at the given points (ascending), each piece in its own exact
 * allocation so that an out-of-bounds read or a stale slice shows under ASan. */
static proto_status parse_pieces(proto_mode mode, const char *s, size_t len, const size_t *cuts,
                                 size_t ncuts, rec *r)
{
    proto_parser *p = proto_parser_new(mode, mcl_for(mode), MPAY);
    CHECK(p != NULL);
    proto_status st = PROTO_OK;
    size_t start = 0;
    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : len;
        if (end < start)
            end = start;
        size_t n = end - start;
        char *piece = malloc(n ? n : 1);
        memcpy(piece, s + start, n);
        st = proto_parse(p, piece, n, on_rec, r, NULL);
        free(piece);
        start = end;
        if (st != PROTO_OK)
            break;
    }
    proto_parser_free(p);
    return st;
}

/* The one-shot parse must equal every 2-piece split and the byte-at-a-time parse. */
static void check_splits(proto_mode mode, const char *s, size_t len, int expect_nops,
                         proto_status expect_st)
{
    rec ref = {0};
    proto_status st = parse_once(mode, s, len, &ref);
    CHECK_EQ_INT(st, expect_st);
    if (expect_nops >= 0)
        CHECK_EQ_INT(ref.nops, expect_nops);

    for (size_t k = 0; k <= len; k++) {
        rec r = {0};
        proto_status st2 = parse_pieces(mode, s, len, &k, 1, &r);
        if (st2 != st || !rec_eq(&r, &ref)) {
            fprintf(stderr, "split at %zu of %zu: status %d vs %d\n--- one-shot:\n%s--- split:\n%s",
                    k, len, st2, st, ref.s ? ref.s : "", r.s ? r.s : "");
        }
        CHECK_EQ_INT(st2, st);
        CHECK(rec_eq(&r, &ref));
        rec_free(&r);
    }

    size_t *cuts = malloc((len + 1) * sizeof *cuts);
    for (size_t k = 0; k < len; k++)
        cuts[k] = k + 1;
    rec r = {0};
    proto_status st3 = parse_pieces(mode, s, len, cuts, len ? len - 1 : 0, &r);
    CHECK_EQ_INT(st3, st);
    CHECK(rec_eq(&r, &ref));
    rec_free(&r);

    /* a few random multi-piece splits */
    unsigned seed = (unsigned)len * 2654435761u + 1;
    for (int round = 0; round < 20 && len > 2; round++) {
        size_t n = 0, at = 0;
        while (n < len) {
            seed = seed * 1103515245u + 12345u;
            at += 1 + (seed >> 16) % 17;
            if (at >= len)
                break;
            cuts[n++] = at;
        }
        rec r2 = {0};
        proto_status st4 = parse_pieces(mode, s, len, cuts, n, &r2);
        CHECK_EQ_INT(st4, st);
        CHECK(rec_eq(&r2, &ref));
        rec_free(&r2);
    }
    free(cuts);
    rec_free(&ref);
}

/* Parse str in one shot and compare the record with `want`. */
static void expect(proto_mode mode, const char *in, proto_status st, const char *want)
{
    rec r = {0};
    proto_status got = parse_once(mode, in, strlen(in), &r);
    if (got != st || strcmp(r.s ? r.s : "", want) != 0)
        fprintf(stderr, "input %.200s\n  status %d (want %d)\n  got:  %.300s  want: %.300s", in,
                got, st, r.s ? r.s : "(none)\n", want);
    CHECK_EQ_INT(got, st);
    CHECK(strcmp(r.s ? r.s : "", want) == 0);
    rec_free(&r);
    /* and the same result for any split */
    check_splits(mode, in, strlen(in), -1, st);
}

/* Build "HPUB/HMSG" framing pieces: a header block from lines. */
static size_t build(char *dst, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsprintf(dst, fmt, ap);
    va_end(ap);
    return (size_t)n;
}

/* ------------------------------------------------------------------ tests */

static void test_client_ops(void)
{
    const proto_mode C = PROTO_MODE_CLIENT;
    expect(C, "CONNECT {\"verbose\":false}\r\n", PROTO_OK,
           "CONNECT arg[17]={\"verbose\":false}\n");
    expect(C, "CONNECT{}\r\n", PROTO_OK, "CONNECT arg[2]={}\n");
    expect(C, "CONNECT \t {} \r\n", PROTO_OK, "CONNECT arg[3]={} \n");
    expect(C, "CONNECT\r\n", PROTO_OK, "CONNECT\n"); /* empty: the JSON check fails later */
    expect(C, "INFO {\"a\":1}\r\n", PROTO_OK, "INFO arg[7]={\"a\":1}\n");
    expect(C, "PUB foo 3\r\nabc\r\n", PROTO_OK, "PUB subj[3]=foo payload[3]=abc\n");
    expect(C, "PUB foo bar 3\r\nabc\r\n", PROTO_OK,
           "PUB subj[3]=foo reply[3]=bar payload[3]=abc\n");
    expect(C, "PUB foo 0\r\n\r\n", PROTO_OK, "PUB subj[3]=foo\n");
    expect(C, "PUB foo 4\r\n\r\n\r\n\r\n", PROTO_OK, "PUB subj[3]=foo payload[4]=\r\n\r\n\n");
    expect(C, "PUB foo 000000003\r\nabc\r\n", PROTO_OK, "PUB subj[3]=foo payload[3]=abc\n");
    expect(C, "HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n", PROTO_OK,
           "HPUB subj[3]=foo hdr[12]=NATS/1.0\r\n\r\n payload[2]=hi\n");
    expect(C, "HPUB foo r 12 12\r\nNATS/1.0\r\n\r\n\r\n", PROTO_OK,
           "HPUB subj[3]=foo reply[1]=r hdr[12]=NATS/1.0\r\n\r\n\n");
    expect(C, "HPUB foo 0 2\r\nhi\r\n", PROTO_OK, "HPUB subj[3]=foo payload[2]=hi\n");
    expect(C, "SUB foo 1\r\n", PROTO_OK, "SUB subj[3]=foo sid[1]=1\n");
    expect(C, "SUB foo q 1\r\n", PROTO_OK, "SUB subj[3]=foo queue[1]=q sid[1]=1\n");
    expect(C, "SUB foo\r1\r\n", PROTO_OK, "SUB subj[3]=foo sid[1]=1\n"); /* splitArg splits on \r */
    expect(C, "UNSUB 1\r\n", PROTO_OK, "UNSUB sid[1]=1\n");
    expect(C, "UNSUB 1 10\r\n", PROTO_OK, "UNSUB sid[1]=1 max=10\n");
    expect(C, "UNSUB 1 0\r\n", PROTO_OK, "UNSUB sid[1]=1 max=0\n");
    expect(C, "UNSUB 1 abc\r\n", PROTO_OK, "UNSUB sid[1]=1\n"); /* as nats-server: max -1 */
    expect(C, "PING\r\n", PROTO_OK, "PING\n");
    expect(C, "PONG\r\n", PROTO_OK, "PONG\n");
    expect(C, "PING\n", PROTO_OK, "PING\n");
    expect(C, "PINGxyz foo\r\n", PROTO_OK, "PING\n"); /* nats-server ignores up to \n */
    expect(C, "PONGX\r\n", PROTO_OK, "PONG\n");
    expect(C, "+OK\r\n", PROTO_OK, "+OK\n");
    expect(C, "+OKAY\r\n", PROTO_OK, "+OK\n");
    expect(C, "-ERR 'Unknown Protocol Operation'\r\n", PROTO_OK,
           "-ERR arg[26]=Unknown Protocol Operation\n");
    expect(C, "-ERR\tboom \r\n", PROTO_OK, "-ERR arg[4]=boom\n");
    /* not client ops */
    expect(C, "MSG foo 1 3\r\nabc\r\n", PROTO_ERR_UNKNOWN_OP, "");
    expect(C, "HMSG foo 1 12 14\r\n", PROTO_ERR_UNKNOWN_OP, "");
    expect(C, "LS+ foo\r\n", PROTO_ERR_UNKNOWN_OP, "");
    expect(C, "LMSG foo 2\r\nhi\r\n", PROTO_ERR_UNKNOWN_OP, "");
}

static void test_server_ops(void)
{
    const proto_mode S = PROTO_MODE_SERVER;
    expect(S, "INFO {\"server_id\":\"x\"}\r\n", PROTO_OK, "INFO arg[17]={\"server_id\":\"x\"}\n");
    expect(S, "MSG foo 1 3\r\nabc\r\n", PROTO_OK, "MSG subj[3]=foo sid[1]=1 payload[3]=abc\n");
    expect(S, "MSG foo 1 _INBOX.x 3\r\nabc\r\n", PROTO_OK,
           "MSG subj[3]=foo reply[8]=_INBOX.x sid[1]=1 payload[3]=abc\n");
    expect(S, "msg foo 1 0\r\n\r\n", PROTO_OK, "MSG subj[3]=foo sid[1]=1\n");
    expect(S, "HMSG foo 9 16 18\r\nNATS/1.0 503\r\n\r\nhi\r\n", PROTO_OK,
           "HMSG subj[3]=foo sid[1]=9 hdr[16]=NATS/1.0 503\r\n\r\n payload[2]=hi\n");
    expect(S, "HMSG foo 9 r 12 12\r\nNATS/1.0\r\n\r\n\r\n", PROTO_OK,
           "HMSG subj[3]=foo reply[1]=r sid[1]=9 hdr[12]=NATS/1.0\r\n\r\n\n");
    expect(S, "PING\r\nPONG\r\n+OK\r\n-ERR 'x'\r\n", PROTO_OK, "PING\nPONG\n+OK\n-ERR arg[1]=x\n");
    expect(S, "MSG foo 3\r\nabc\r\n", PROTO_ERR_ARGS, "");
    expect(S, "MSG foo 1 2 3 4\r\n", PROTO_ERR_ARGS, "");
    expect(S, "HMSG foo 1 12\r\n", PROTO_ERR_ARGS, "");
    expect(S, "HMSG foo 1 20 10\r\n", PROTO_ERR_HEADER, "");
    expect(S, "MSG foo 1 3\r\nabcd\r\n", PROTO_ERR_UNKNOWN_OP, "");
    expect(S, "PUB foo 3\r\nabc\r\n", PROTO_ERR_UNKNOWN_OP, "");
    expect(S, "CONNECT {}\r\n", PROTO_ERR_UNKNOWN_OP, "");
    expect(S, "SUB foo 1\r\n", PROTO_ERR_UNKNOWN_OP, "");
    expect(S, "LS+ foo\r\n", PROTO_ERR_UNKNOWN_OP, "");
}

static void test_leaf_ops(void)
{
    const proto_mode L = PROTO_MODE_LEAF;
    expect(L, "INFO {}\r\nCONNECT {}\r\n", PROTO_OK, "INFO arg[2]={}\nCONNECT arg[2]={}\n");
    expect(L, "LS+ foo\r\n", PROTO_OK, "LS+ subj[3]=foo\n");
    expect(L, "LS+ foo q 3\r\n", PROTO_OK, "LS+ subj[3]=foo queue[1]=q max=3\n");
    expect(L, "LS+ foo q x\r\n", PROTO_OK, "LS+ subj[3]=foo queue[1]=q\n"); /* weight -1 */
    expect(L, "LS- foo\r\n", PROTO_OK, "LS- subj[3]=foo\n");
    expect(L, "LS- foo q\r\n", PROTO_OK, "LS- subj[3]=foo queue[1]=q\n");
    expect(L, "LS- foo q x \r\n", PROTO_OK, "LS- subj[3]=foo queue[3]=q x\n");
    expect(L, "LMSG foo 2\r\nhi\r\n", PROTO_OK, "LMSG subj[3]=foo payload[2]=hi\n");
    expect(L, "LMSG foo r 2\r\nhi\r\n", PROTO_OK, "LMSG subj[3]=foo reply[1]=r payload[2]=hi\n");
    expect(L, "LMSG foo + r q1 q2 2\r\nhi\r\n", PROTO_OK,
           "LMSG subj[3]=foo reply[1]=r payload[2]=hi nq=2 q[2]=q1 q[2]=q2 qlist[5]=q1 q2\n");
    expect(L, "LMSG foo + r 2\r\nhi\r\n", PROTO_OK, "LMSG subj[3]=foo reply[1]=r payload[2]=hi\n");
    expect(L, "LMSG foo | q1 2\r\nhi\r\n", PROTO_OK,
           "LMSG subj[3]=foo payload[2]=hi nq=1 q[2]=q1 qlist[2]=q1\n");
    expect(L, "LMSG foo |  q1\tq2  2\r\nhi\r\n", PROTO_OK,
           "LMSG subj[3]=foo payload[2]=hi nq=2 q[2]=q1 q[2]=q2 qlist[5]=q1\tq2\n");
    expect(L, "HMSG foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n", PROTO_OK,
           "HMSG subj[3]=foo hdr[12]=NATS/1.0\r\n\r\n payload[2]=hi\n");
    expect(L, "HMSG foo r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n", PROTO_OK,
           "HMSG subj[3]=foo reply[1]=r hdr[12]=NATS/1.0\r\n\r\n payload[2]=hi\n");
    expect(L, "HMSG foo + r q1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n", PROTO_OK,
           "HMSG subj[3]=foo reply[1]=r hdr[12]=NATS/1.0\r\n\r\n payload[2]=hi nq=1 q[2]=q1 "
           "qlist[2]=q1\n");
    expect(L, "HMSG foo | q1 q2 12 12\r\nNATS/1.0\r\n\r\n\r\n", PROTO_OK,
           "HMSG subj[3]=foo hdr[12]=NATS/1.0\r\n\r\n nq=2 q[2]=q1 q[2]=q2 qlist[5]=q1 q2\n");
    expect(L, "ls+ foo\r\nlmsg foo 1\r\nx\r\nLs- foo\r\n", PROTO_OK,
           "LS+ subj[3]=foo\nLMSG subj[3]=foo payload[1]=x\nLS- subj[3]=foo\n");
    /* errors, as nats-server's leafnode.go */
    expect(L, "LS+ foo q\r\n", PROTO_ERR_ARGS, "");
    expect(L, "LS+ foo q 1 x\r\n", PROTO_ERR_ARGS, "");
    expect(L, "LS+\r\n", PROTO_ERR_UNKNOWN_OP, "");
    expect(L, "LS- \r\n", PROTO_ERR_ARGS, "");
    expect(L, "LMSG foo\r\n", PROTO_ERR_ARGS, "");
    expect(L, "LMSG foo x\r\n", PROTO_ERR_ARGS, "");
    expect(L, "LMSG foo * q 2\r\nhi\r\n", PROTO_ERR_ARGS, "");
    expect(L, "LMSG foo ++ q 2\r\nhi\r\n", PROTO_ERR_ARGS, "");
    expect(L, "LMSG foo 2\r\nhix\r\n", PROTO_ERR_UNKNOWN_OP, "");
    expect(L, "LMSG foo 2000000\r\n", PROTO_ERR_MAX_PAYLOAD, "");
    expect(L, "HMSG foo 10 5\r\n", PROTO_ERR_HEADER, "");
    expect(L, "HMSG foo 5\r\n", PROTO_ERR_ARGS, "");
    expect(L, "HMSG foo x 5\r\n", PROTO_ERR_HEADER, "");
    expect(L, "PUB foo 2\r\nhi\r\n", PROTO_ERR_UNKNOWN_OP, "");
    expect(L, "HPUB foo 12 14\r\n", PROTO_ERR_UNKNOWN_OP, "");
    expect(L, "SUB foo 1\r\n", PROTO_ERR_UNKNOWN_OP, "");
    expect(L, "MSG foo 1 2\r\nhi\r\n", PROTO_ERR_UNKNOWN_OP, "");

    /* more queues than PROTO_MAX_QUEUES: nqueues counts them all, qlist spans them */
    char line[4096], want[8192];
    size_t n = build(line, "LMSG a.b + rep");
    for (int i = 0; i < 45; i++)
        n += build(line + n, " q%d", i);
    n += build(line + n, " 1\r\nZ\r\n");
    size_t w = build(want, "LMSG subj[3]=a.b reply[3]=rep payload[1]=Z nq=45");
    for (int i = 0; i < PROTO_MAX_QUEUES; i++)
        w += build(want + w, " q[%d]=q%d", i < 10 ? 2 : 3, i);
    const char *ql = strstr(line, "q0");
    size_t qlen = (size_t)(strstr(line, " 1\r\n") - ql);
    w += build(want + w, " qlist[%zu]=%.*s\n", qlen, (int)qlen, ql);
    expect(L, line, PROTO_OK, want);
    /* same in HMSG form */
    n = build(line, "HMSG a.b |");
    for (int i = 0; i < 40; i++)
        n += build(line + n, " q%d", i);
    n += build(line + n, " 12 12\r\nNATS/1.0\r\n\r\n\r\n");
    rec r = {0};
    CHECK_EQ_INT(parse_once(L, line, n, &r), PROTO_OK);
    CHECK(strstr(r.s, " nq=40 ") != NULL);
    CHECK(strstr(r.s, " q[3]=q31 qlist[") != NULL);
    CHECK(strstr(r.s, "q38 q39\n") != NULL);
    rec_free(&r);
}

static void test_case_and_blanks(void)
{
    const proto_mode C = PROTO_MODE_CLIENT;
    expect(C, "pub foo 1\r\na\r\nPuB foo 1\r\nb\r\npUB foo 1\r\nc\r\n", PROTO_OK,
           "PUB subj[3]=foo payload[1]=a\nPUB subj[3]=foo payload[1]=b\n"
           "PUB subj[3]=foo payload[1]=c\n");
    expect(C, "hpub foo 12 12\r\nNATS/1.0\r\n\r\n\r\n", PROTO_OK,
           "HPUB subj[3]=foo hdr[12]=NATS/1.0\r\n\r\n\n");
    expect(C, "sub foo 1\r\nSuB foo 2\r\nunsub 1\r\nUnSuB 2\r\n", PROTO_OK,
           "SUB subj[3]=foo sid[1]=1\nSUB subj[3]=foo sid[1]=2\nUNSUB sid[1]=1\nUNSUB sid[1]=2\n");
    expect(C, "ping\r\npInG\r\npong\r\n+ok\r\n-err 'x'\r\nconnect {}\r\ninfo {}\r\n", PROTO_OK,
           "PING\nPING\nPONG\n+OK\n-ERR arg[1]=x\nCONNECT arg[2]={}\nINFO arg[2]={}\n");
    expect(PROTO_MODE_SERVER, "msg a 1 0\r\n\r\nhMsG a 1 12 12\r\nNATS/1.0\r\n\r\n\r\n", PROTO_OK,
           "MSG subj[1]=a sid[1]=1\nHMSG subj[1]=a sid[1]=1 hdr[12]=NATS/1.0\r\n\r\n\n");
    /* blanks: spaces and tabs, any number; bare \n ends a line */
    expect(C, "PUB\tfoo\t \t3\r\nabc\r\n", PROTO_OK, "PUB subj[3]=foo payload[3]=abc\n");
    expect(C, "PUB    foo   3   \r\nabc\r\n", PROTO_OK, "PUB subj[3]=foo payload[3]=abc\n");
    expect(C, "SUB\tfoo\tq\t1\n", PROTO_OK, "SUB subj[3]=foo queue[1]=q sid[1]=1\n");
    expect(C, "SUB foo 1\nPUB foo 1\na\r\n", PROTO_OK,
           "SUB subj[3]=foo sid[1]=1\nPUB subj[3]=foo payload[1]=a\n");
    /* blanks between the name and the argument are not part of the control line */
    char big[7000];
    size_t n = build(big, "PUB");
    memset(big + n, ' ', 6000);
    n += 6000;
    n += build(big + n, "foo 0\r\n\r\n");
    rec r = {0};
    CHECK_EQ_INT(parse_once(C, big, n, &r), PROTO_OK);
    CHECK(strcmp(r.s, "PUB subj[3]=foo\n") == 0);
    rec_free(&r);
    check_splits(C, big, n, 1, PROTO_OK);
}

/* ~20 mixed ops per mode, split at every byte boundary and fed one byte at a time. */
static void test_streams(void)
{
    char s[8192];
    size_t n = 0;
    const char *hdr = "NATS/1.0\r\nA: 1\r\nA: 2\r\nB: x y\r\nMulti: a, b\r\n\r\n";
    size_t hl = strlen(hdr);
    n += build(s + n, "CONNECT {\"verbose\":false,\"headers\":true}\r\n");
    n += build(s + n, "PING\r\n");
    n += build(s + n, "SUB foo 1\r\n");
    n += build(s + n, "SUB bar.* q1 2\r\n");
    n += build(s + n, "PUB foo 5\r\nhello\r\n");
    n += build(s + n, "PUB foo reply.1 0\r\n\r\n");
    n += build(s + n, "pub foo 3\r\nabc\r\n");
    n += build(s + n, "HPUB foo %zu %zu\r\n%shello\r\n", hl, hl + 5, hdr);
    n += build(s + n, "HPUB foo _INBOX.r %zu %zu\r\n%s\r\n", hl, hl, hdr); /* 0-length payload */
    n += build(s + n, "PUB\tfoo\t\t2\nhi\r\n");
    n += build(s + n, "UNSUB 1\r\n");
    n += build(s + n, "UNSUB 2 10\r\n");
    n += build(s + n, "PONG\r\n");
    n += build(s + n, "+OK\r\n");
    n += build(s + n, "-ERR 'Unknown Protocol Operation'\r\n");
    n += build(s + n, "INFO {\"server_id\":\"x\"}\r\n");
    n += build(s + n, "PUB big 300\r\n");
    for (int i = 0; i < 300; i++)
        s[n++] = (char)('a' + i % 26);
    n += build(s + n, "\r\n");
    n += build(s + n, "PING junk\r\n");
    n += build(s + n, "hPuB bar.x 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
    n += build(s + n, "sub baz 3\r\n");
    n += build(s + n, "PUB foo 4\r\n\r\n\r\n\r\n");
    n += build(s + n, "CONNECT\t{}\r\n");
    check_splits(PROTO_MODE_CLIENT, s, n, 22, PROTO_OK);

    /* the same stream, cut short at every length: a prefix never errors */
    for (size_t k = 0; k < n; k++) {
        rec r = {0};
        CHECK_EQ_INT(parse_once(PROTO_MODE_CLIENT, s, k, &r), PROTO_OK);
        rec_free(&r);
    }

    n = 0;
    n += build(s + n, "INFO {\"server_id\":\"x\",\"headers\":true}\r\n");
    n += build(s + n, "PING\r\n");
    n += build(s + n, "+OK\r\n");
    n += build(s + n, "MSG foo 1 5\r\nhello\r\n");
    n += build(s + n, "MSG foo 1 _INBOX.a 0\r\n\r\n");
    n += build(s + n, "HMSG foo 2 %zu %zu\r\n%shello\r\n", hl, hl + 5, hdr);
    n += build(s + n, "HMSG foo 2 _INBOX.b %zu %zu\r\n%s\r\n", hl, hl, hdr);
    n += build(s + n, "HMSG _INBOX.c 3 16 16\r\nNATS/1.0 503\r\n\r\n\r\n");
    n += build(s + n, "msg\tfoo\t1\t2\nhi\r\n");
    n += build(s + n, "PONG\r\n");
    n += build(s + n, "-ERR 'Permissions Violation for Publish to \"x\"'\r\n");
    n += build(s + n, "MSG foo 1 4\r\n\r\n\r\n\r\n");
    n += build(s + n, "INFO {\"ldm\":true}\r\n");
    check_splits(PROTO_MODE_SERVER, s, n, 13, PROTO_OK);

    n = 0;
    n += build(s + n, "INFO {\"server_id\":\"h\",\"leafnode_urls\":[]}\r\n");
    n += build(s + n, "CONNECT {\"server_id\":\"l\",\"headers\":true}\r\n");
    n += build(s + n, "LS+ $LDS.abc\r\n");
    n += build(s + n, "LS+ foo.> q1 3\r\n");
    n += build(s + n, "LS- foo.> q1\r\n");
    n += build(s + n, "LMSG foo 5\r\nhello\r\n");
    n += build(s + n, "LMSG foo rep 0\r\n\r\n");
    n += build(s + n, "LMSG foo + rep q1 q2 3\r\nabc\r\n");
    n += build(s + n, "LMSG foo | q1 3\r\nabc\r\n");
    n += build(s + n, "HMSG foo %zu %zu\r\n%shello\r\n", hl, hl + 5, hdr);
    n += build(s + n, "HMSG foo + rep q9 %zu %zu\r\n%s\r\n", hl, hl, hdr);
    n += build(s + n, "HMSG foo | a b c %zu %zu\r\n%sxy\r\n", hl, hl + 2, hdr);
    n += build(s + n, "PING\r\nPONG\r\n");
    n += build(s + n, "LS- $LDS.abc\r\n");
    check_splits(PROTO_MODE_LEAF, s, n, 15, PROTO_OK);
}

/* The error classes; see docs/wire-errors.md for nats-server 2.9.10's bytes. */
static void test_errors(void)
{
    const proto_mode C = PROTO_MODE_CLIENT;
    expect(C, "FOO\r\n", PROTO_ERR_UNKNOWN_OP, "");
    expect(C, "\r\n", PROTO_ERR_UNKNOWN_OP, "");
    expect(C, "PING\r\nFOO\r\nPING\r\n", PROTO_ERR_UNKNOWN_OP, "PING\n");
    expect(C, "PUB foo\r\n", PROTO_ERR_ARGS, "");
    expect(C, "PUB foo bar\r\n", PROTO_ERR_ARGS, "");
    expect(C, "PUB foo -1\r\n", PROTO_ERR_ARGS, "");
    expect(C, "PUB foo +3\r\nabc\r\n", PROTO_ERR_ARGS, "");
    expect(C, "PUB foo bar baz 3\r\nabc\r\n", PROTO_ERR_ARGS, "");
    expect(C, "PUB foo 1234567890\r\n", PROTO_ERR_ARGS, ""); /* 10 digits: not a size */
    expect(C, "PUB foo 0000000003\r\nabc\r\n", PROTO_ERR_ARGS, "");
    expect(C, "PUB foo 3\r\nabcd\r\n", PROTO_ERR_UNKNOWN_OP, "");
    expect(C, "PUB foo 3\r\nabc\n", PROTO_ERR_UNKNOWN_OP, "");
    expect(C, "PUB foo 1\r\na\rX", PROTO_ERR_UNKNOWN_OP, "");
    expect(C, "PUB foo 1\r\naX", PROTO_ERR_UNKNOWN_OP, "");
    expect(C, "PUBfoo 3\r\n", PROTO_ERR_UNKNOWN_OP, "");
    expect(C, "PUB\r\n", PROTO_ERR_UNKNOWN_OP, "");
    expect(C, "PUB \r\n", PROTO_ERR_ARGS, "");
    expect(C, "PUB \n", PROTO_ERR_ARGS, "");
    expect(C, "PUB foo 2000000\r\n", PROTO_ERR_MAX_PAYLOAD, "");
    expect(C, "PUB foo 1048577\r\n", PROTO_ERR_MAX_PAYLOAD, "");
    expect(C, "PUB foo r 1048577\r\n", PROTO_ERR_MAX_PAYLOAD, "");
    expect(C, "HPUB foo 10 5\r\n", PROTO_ERR_HEADER, "");
    expect(C, "HPUB foo 5\r\n", PROTO_ERR_ARGS, "");
    expect(C, "HPUB foo x 5\r\n", PROTO_ERR_HEADER, "");
    expect(C, "HPUB foo 5 x\r\n", PROTO_ERR_ARGS, "");
    expect(C, "HPUB foo r x 12 14\r\n", PROTO_ERR_ARGS, "");
    expect(C, "HPUB \r\n", PROTO_ERR_ARGS, "");
    expect(C, "HPUB foo 12 2000000\r\n", PROTO_ERR_MAX_PAYLOAD, "");
    expect(C, "HPUB foo 3000000 2000000\r\n", PROTO_ERR_HEADER, ""); /* checked before size */
    expect(C, "HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi!\r\n", PROTO_ERR_UNKNOWN_OP, "");
    expect(C, "SUB\r\n", PROTO_ERR_UNKNOWN_OP, "");
    expect(C, "SUB \r\n", PROTO_ERR_ARGS, "");
    expect(C, "SUB foo\r\n", PROTO_ERR_ARGS, "");
    expect(C, "SUB foo q 1 x\r\n", PROTO_ERR_ARGS, "");
    expect(C, "UNSUB\r\n", PROTO_ERR_UNKNOWN_OP, "");
    expect(C, "UNSUB \r\n", PROTO_ERR_ARGS, "");
    expect(C, "UNSUB 1 2 3\r\n", PROTO_ERR_ARGS, "");
    expect(C, "-ERR\r\n", PROTO_ERR_UNKNOWN_OP, "");
    expect(C, "PI\r\n", PROTO_ERR_UNKNOWN_OP, "");
    expect(C, "CONNEC\r\n", PROTO_ERR_UNKNOWN_OP, "");
    expect(C, "+O\r\n", PROTO_ERR_UNKNOWN_OP, "");
    check_splits(C, "\0PING\r\n", 7, 0, PROTO_ERR_UNKNOWN_OP);
    check_splits(C, "PUB a 1\r\n\0\r\nSUB a\0 1\r\n", 22, 2, PROTO_OK); /* NULs are bytes */

    /* the payload limit is exact, and checked before any payload byte */
    {
        size_t n = 64 + MPAY;
        char *s = malloc(n);
        size_t k = (size_t)sprintf(s, "PUB foo %d\r\n", MPAY);
        memset(s + k, 'x', MPAY);
        memcpy(s + k + MPAY, "\r\n", 2);
        rec r = {0};
        CHECK_EQ_INT(parse_once(C, s, k + MPAY + 2, &r), PROTO_OK);
        CHECK_EQ_INT(r.nops, 1);
        rec_free(&r);
        /* fed in 1000-byte pieces through the internal buffer */
        size_t cuts[2000], nc = 0;
        for (size_t at = 1000; at < k + MPAY + 2; at += 1000)
            cuts[nc++] = at;
        rec r2 = {0};
        CHECK_EQ_INT(parse_pieces(C, s, k + MPAY + 2, cuts, nc, &r2), PROTO_OK);
        CHECK_EQ_INT(r2.nops, 1);
        CHECK(r2.len > MPAY && strstr(r2.s, "payload[1048576]=xxxx") != NULL);
        rec_free(&r2);
        free(s);
        proto_parser *p = proto_parser_new(C, MCL, MPAY);
        CHECK_EQ_INT(proto_parse(p, "PUB foo 1048577\r", 16, NULL, NULL, NULL), PROTO_OK);
        CHECK_EQ_INT(proto_parse(p, "\n", 1, NULL, NULL, NULL), PROTO_ERR_MAX_PAYLOAD);
        proto_parser_free(p);
    }

    /* max_control_line: the argument text (after the name and its blanks, without \r) */
    {
        char s[12000];
        size_t n;
        n = build(s, "PUB ");
        memset(s + n, 'a', 4094);
        n += 4094;
        n += build(s + n, " 0\r\n\r\n"); /* argument exactly 4096 */
        check_splits(C, s, n, 1, PROTO_OK);
        rec r = {0};
        CHECK_EQ_INT(parse_once(C, s, n, &r), PROTO_OK);
        CHECK_EQ_INT(r.nops, 1);
        rec_free(&r);
        /* 4096 + '\r' in one piece and '\n' in the next is still fine */
        proto_parser *p = proto_parser_new(C, MCL, MPAY);
        CHECK_EQ_INT(proto_parse(p, s, n - 3, NULL, NULL, NULL), PROTO_OK);
        CHECK_EQ_INT(proto_parse(p, s + n - 3, 3, NULL, NULL, NULL), PROTO_OK);
        proto_parser_free(p);

        n = build(s, "PUB ");
        memset(s + n, 'a', 4095);
        n += 4095;
        n += build(s + n, " 0\r\n\r\n"); /* 4097 */
        expect(C, s, PROTO_ERR_CONTROL_LINE, "");

        /* a 5000-byte line: an error before its \r\n arrives */
        n = build(s, "PUB ");
        memset(s + n, 'a', 5000);
        n += 5000;
        p = proto_parser_new(C, MCL, MPAY);
        CHECK_EQ_INT(proto_parse(p, s, n, NULL, NULL, NULL), PROTO_ERR_CONTROL_LINE);
        CHECK_EQ_INT(proto_parse(p, "\r\n", 2, NULL, NULL, NULL), PROTO_ERR_CONTROL_LINE);
        proto_parser_free(p);
        p = proto_parser_new(C, MCL, MPAY); /* one byte at a time: fails at byte 4+4097 */
        size_t i;
        for (i = 0; i < n; i++)
            if (proto_parse(p, s + i, 1, NULL, NULL, NULL) != PROTO_OK)
                break;
        CHECK_EQ_INT(i, 4 + 4096);
        proto_parser_free(p);

        n = build(s, "CONNECT {\"name\":\"");
        memset(s + n, 'n', 5000);
        n += 5000;
        n += build(s + n, "\"}\r\n");
        expect(C, s, PROTO_ERR_CONTROL_LINE, "");
        n = build(s, "SUB ");
        memset(s + n, 'a', 5000);
        n += 5000;
        n += build(s + n, " 1\r\n");
        expect(C, s, PROTO_ERR_CONTROL_LINE, "");

        /* PING/PONG/+OK ignore their tail, without a limit (as nats-server) */
        n = build(s, "PING");
        memset(s + n, 'x', 10000);
        n += 10000;
        n += build(s + n, "\r\n");
        expect(C, s, PROTO_OK, "PING\n");

        /* set_limits */
        p = proto_parser_new(C, MCL, MPAY);
        proto_parser_set_limits(p, 8, 4);
        CHECK_EQ_INT(proto_parse(p, "PUB a 4\r\nabcd\r\n", 15, NULL, NULL, NULL), PROTO_OK);
        CHECK_EQ_INT(proto_parse(p, "PUB a 5\r\n", 9, NULL, NULL, NULL), PROTO_ERR_MAX_PAYLOAD);
        proto_parser_free(p);
        p = proto_parser_new(C, MCL, MPAY);
        proto_parser_set_limits(p, 8, 4);
        CHECK_EQ_INT(proto_parse(p, "SUB abcdefg 1\r\n", 15, NULL, NULL, NULL), PROTO_ERR_CONTROL_LINE);
        proto_parser_free(p);
        p = proto_parser_new(C, MCL, MPAY);
        proto_parser_set_limits(p, 8, 4);
        CHECK_EQ_INT(proto_parse(p, "SUB abcdef 1\r\n", 14, NULL, NULL, NULL), PROTO_OK);
        proto_parser_free(p);

        /* leaf: the caller passes 16x */
        n = build(s, "LS+ ");
        memset(s + n, 'a', 10000);
        n += 10000;
        n += build(s + n, "\r\n");
        check_splits(PROTO_MODE_LEAF, s, n, 1, PROTO_OK);
    }

    /* after an error the parser keeps failing; consumed stops at the last whole op */
    {
        proto_parser *p = proto_parser_new(C, MCL, MPAY);
        size_t consumed = 99;
        CHECK_EQ_INT(proto_parse(p, "PING\r\nSUB a 1\r\nFOO", 18, NULL, NULL, &consumed),
                     PROTO_ERR_UNKNOWN_OP);
        CHECK_EQ_INT(consumed, 15);
        CHECK_EQ_INT(proto_parse(p, "PING\r\n", 6, NULL, NULL, &consumed), PROTO_ERR_UNKNOWN_OP);
        CHECK_EQ_INT(consumed, 0);
        proto_parser_free(p);
    }

    /* CONNECT first (auth pending, or any leaf connection) */
    {
        rec r = {0};
        proto_parser *p = proto_parser_new(C, MCL, MPAY);
        proto_parser_require_connect(p, 1);
        CHECK_EQ_INT(proto_parse(p, "PING\r\n", 6, on_rec, &r, NULL), PROTO_ERR_AUTH);
        CHECK_EQ_INT(r.nops, 0);
        proto_parser_free(p);
        const char *bad[] = {"FOO\r\n", "\r\n", "PUB foo 1\r\na\r\n", "SUB foo 1\r\n"};
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
            p = proto_parser_new(C, MCL, MPAY);
            proto_parser_require_connect(p, 1);
            CHECK_EQ_INT(proto_parse(p, bad[i], strlen(bad[i]), NULL, NULL, NULL), PROTO_ERR_AUTH);
            proto_parser_free(p);
        }
        p = proto_parser_new(C, MCL, MPAY);
        proto_parser_require_connect(p, 1);
        CHECK_EQ_INT(proto_parse(p, "COX\r\n", 5, NULL, NULL, NULL), PROTO_ERR_UNKNOWN_OP);
        proto_parser_free(p);
        /* CONNECT accepted (the callback turns the check off) then anything goes, in one
         * buffer and byte by byte */
        const char *ok = "connect {\"user\":\"u\"}\r\nPING\r\nSUB a 1\r\n";
        for (int bytewise = 0; bytewise < 2; bytewise++) {
            rec r2 = {0};
            p = proto_parser_new(C, MCL, MPAY);
            r2.clear_on_connect = p;
            proto_parser_require_connect(p, 1);
            proto_status st = PROTO_OK;
            if (bytewise) {
                for (size_t i = 0; ok[i] && st == PROTO_OK; i++)
                    st = proto_parse(p, ok + i, 1, on_rec, &r2, NULL);
            } else {
                st = proto_parse(p, ok, strlen(ok), on_rec, &r2, NULL);
            }
            CHECK_EQ_INT(st, PROTO_OK);
            CHECK_EQ_INT(r2.nops, 3);
            proto_parser_free(p);
            rec_free(&r2);
        }
        /* while the check stays on, a second op fails */
        p = proto_parser_new(PROTO_MODE_LEAF, 16 * MCL, MPAY);
        proto_parser_require_connect(p, 1);
        CHECK_EQ_INT(proto_parse(p, "CONNECT {}\r\nLS+ foo\r\n", 21, NULL, NULL, NULL),
                     PROTO_ERR_AUTH);
        proto_parser_free(p);
        rec_free(&r);
    }
}

static void test_stopped(void)
{
    const char *s = "PING\r\nPUB a 1\r\nx\r\nSUB a 1\r\nPUB b 2\r\nyz\r\nPONG\r\n";
    size_t len = strlen(s);
    rec ref = {0};
    CHECK_EQ_INT(parse_once(PROTO_MODE_CLIENT, s, len, &ref), PROTO_OK);
    CHECK_EQ_INT(ref.nops, 5);

    /* stop at every op in turn; resume from `consumed` */
    for (int stop = 1; stop <= 5; stop++) {
        for (size_t cut = 0; cut <= len; cut++) {
            proto_parser *p = proto_parser_new(PROTO_MODE_CLIENT, MCL, MPAY);
            rec r = {0};
            r.stop_at = stop;
            size_t off = 0, end = cut, consumed;
            int stopped = 0;
            while (off < len) {
                if (end <= off)
                    end = len;
                proto_status st = proto_parse(p, s + off, end - off, on_rec, &r, &consumed);
                if (st == PROTO_STOPPED) {
                    CHECK(!stopped);
                    stopped = 1;
                    CHECK_EQ_INT(r.nops, stop);
                    r.stop_at = 0;
                    off += consumed; /* the rest of this piece again */
                    continue;
                }
                CHECK_EQ_INT(st, PROTO_OK);
                off = end;
            }
            CHECK(stopped);
            CHECK(rec_eq(&r, &ref));
            proto_parser_free(p);
            rec_free(&r);
        }
    }
    /* consumed on a stop in the middle of a buffer */
    proto_parser *p = proto_parser_new(PROTO_MODE_CLIENT, MCL, MPAY);
    rec r = {0};
    r.stop_at = 2;
    size_t consumed = 0;
    CHECK_EQ_INT(proto_parse(p, s, len, on_rec, &r, &consumed), PROTO_STOPPED);
    CHECK_EQ_INT(consumed, 18);
    proto_parser_free(p);
    rec_free(&r);
    rec_free(&ref);
}

static void test_err_text(void)
{
    CHECK(strcmp(proto_status_err_text(PROTO_ERR_UNKNOWN_OP), "Unknown Protocol Operation") == 0);
    CHECK(strcmp(proto_status_err_text(PROTO_ERR_CONTROL_LINE), "maximum control line exceeded") == 0);
    CHECK(strcmp(proto_status_err_text(PROTO_ERR_MAX_PAYLOAD), "Maximum Payload Violation") == 0);
    CHECK(strcmp(proto_status_err_text(PROTO_ERR_AUTH), "Authorization Violation") == 0);
    CHECK(proto_status_err_text(PROTO_ERR_ARGS) == NULL);
    CHECK(proto_status_err_text(PROTO_ERR_HEADER) == NULL);
    CHECK(proto_status_err_text(PROTO_ERR_NOMEM) == NULL);
    CHECK(proto_status_err_text(PROTO_OK) == NULL);
    CHECK(proto_status_err_text(PROTO_STOPPED) == NULL);
}

static void test_hdr_status(void)
{
#define HS(s) proto_hdr_status(s, strlen(s))
    CHECK_EQ_INT(HS("NATS/1.0\r\n\r\n"), 0);
    CHECK_EQ_INT(HS("NATS/1.0\r\nA: 1\r\n\r\n"), 0);
    CHECK_EQ_INT(HS("NATS/1.0 503\r\n\r\n"), 503);
    CHECK_EQ_INT(HS("NATS/1.0 408 Request Timeout\r\n\r\n"), 408);
    CHECK_EQ_INT(HS("NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 1\r\n\r\n"), 100);
    CHECK_EQ_INT(HS("NATS/1.0 404 No Messages\r\n\r\n"), 404);
    CHECK_EQ_INT(HS("NATS/1.0  409\tConflict\r\n\r\n"), 409);
    CHECK_EQ_INT(HS("NATS/1.0 503"), 503);
    CHECK_EQ_INT(HS("NATS/1.0 50"), 0);
    CHECK_EQ_INT(HS("NATS/1.0 5034\r\n"), 0);
    CHECK_EQ_INT(HS("NATS/1.0 abc\r\n"), 0);
    CHECK_EQ_INT(HS("NATS/1.0\r\n503\r\n"), 0);
    CHECK_EQ_INT(HS("NATS/2.0 503\r\n"), 0);
    CHECK_EQ_INT(HS("NATS/1."), 0);
    CHECK_EQ_INT(HS(""), 0);
    CHECK_EQ_INT(proto_hdr_status(NULL, 0), 0);
    CHECK_EQ_INT(proto_hdr_status("NATS/1.0 503", 11), 0); /* length respected */
#undef HS
}

static void test_misc(void)
{
    CHECK(proto_parser_new((proto_mode)7, MCL, MPAY) == NULL);
    proto_parser_free(NULL);
    /* empty input */
    proto_parser *p = proto_parser_new(PROTO_MODE_CLIENT, 0, 0); /* 0: the defaults */
    size_t consumed = 7;
    CHECK_EQ_INT(proto_parse(p, "", 0, NULL, NULL, &consumed), PROTO_OK);
    CHECK_EQ_INT(consumed, 0);
    CHECK_EQ_INT(proto_parse(p, "PUB a 1048576\r\n", 15, NULL, NULL, NULL), PROTO_OK);
    proto_parser_free(p);
    /* slices of an op split across calls point into the parser, whole ops into the
     * caller's buffer */
    p = proto_parser_new(PROTO_MODE_CLIENT, MCL, MPAY);
    rec r = {0};
    const char *a = "PUB foo 3\r\nab";
    r.lo = a;
    r.hi = a + strlen(a);
    CHECK_EQ_INT(proto_parse(p, a, strlen(a), on_rec, &r, NULL), PROTO_OK);
    const char *b = "c\r\nPUB bar 1\r\nz\r\n";
    r.lo = b;
    r.hi = b + strlen(b);
    CHECK_EQ_INT(proto_parse(p, b, strlen(b), on_rec, &r, NULL), PROTO_OK);
    CHECK_EQ_INT(r.nops, 2);
    CHECK_EQ_INT(r.outside, 2); /* subject and payload of the first, from the parser */
    proto_parser_free(p);
    rec_free(&r);
}

/* ------------------------------------------------------------------ speed */

static int count_op(void *ctx, const proto_op *op)
{
    (*(size_t *)ctx) += op->payload.len;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench_one(const char *label, proto_mode mode, const char *line, size_t psize,
                      size_t read_size)
{
    const size_t nops = 100000;
    size_t oplen = strlen(line) + psize + 2;
    char *s = malloc(nops * oplen);
    for (size_t i = 0; i < nops; i++) {
        char *o = s + i * oplen;
        memcpy(o, line, strlen(line));
        memset(o + strlen(line), 'x', psize);
        memcpy(o + strlen(line) + psize, "\r\n", 2);
    }
    size_t total = nops * oplen, sink = 0;
    proto_parser *p = proto_parser_new(mode, MCL, MPAY);
    double best = 0;
    for (int round = 0; round < 5; round++) {
        double t0 = now_s();
        int reps = 10;
        for (int r = 0; r < reps; r++) {
            for (size_t off = 0; off < total; off += read_size) {
                size_t n = total - off < read_size ? total - off : read_size;
                if (proto_parse(p, s + off, n, count_op, &sink, NULL) != PROTO_OK)
                    abort();
            }
        }
        double dt = now_s() - t0;
        double rate = (double)(nops * (size_t)reps) / dt;
        if (rate > best)
            best = rate;
    }
    CHECK(sink == (size_t)5 * 10 * nops * psize);
    printf("parser speed: %-44s %6.1f M ops/s, %5.2f GB/s\n", label, best / 1e6,
           best * (double)oplen / 1e9);
    proto_parser_free(p);
    free(s);
}

static void bench(void)
{
    bench_one("PUB foo.bar 128, one 14.7 MB buffer", PROTO_MODE_CLIENT, "PUB foo.bar 128\r\n", 128,
              (size_t)1 << 30);
    bench_one("PUB foo.bar 128, 64 KiB reads", PROTO_MODE_CLIENT, "PUB foo.bar 128\r\n", 128,
              65536);
    bench_one("PUB foo.bar 128, 4 KiB reads", PROTO_MODE_CLIENT, "PUB foo.bar 128\r\n", 128, 4096);
    bench_one("PUB foo.bar 16, 64 KiB reads", PROTO_MODE_CLIENT, "PUB foo.bar 16\r\n", 16, 65536);
    bench_one("MSG foo.bar 1 128, 64 KiB reads", PROTO_MODE_SERVER, "MSG foo.bar 1 128\r\n", 128,
              65536);
}

int main(void)
{
    test_client_ops();
    test_server_ops();
    test_leaf_ops();
    test_case_and_blanks();
    test_streams();
    test_errors();
    test_stopped();
    test_err_text();
    test_hdr_status();
    test_misc();
    if (!getenv("EMBER_TEST_NO_BENCH"))
        bench();
    printf("parser: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
