/* parser: a streaming, zero-copy parser for the NATS text protocol.
 *
 * Two paths share one set of rules:
 *  - the fast path parses an operation that lies wholly in the caller's buffer, in
 *    place: find the op name, memchr for the '\n' that ends the control line, split
 *    the arguments, and (for messages) jump over the payload to its "\r\n";
 *  - the slow path is a byte-level state machine that takes over when an operation
 *    is cut by the end of the buffer; it keeps the argument text (and then the
 *    payload) in the parser's own buffer, and re-splits the arguments from there when
 *    the operation completes.
 * The fast path either completes an operation, fails with the same error the slow
 * path would give on the same bytes, or declines (nothing changed) and the slow path
 * runs from the same position. The tests and the fuzz target check that any split of
 * a stream yields the same operations and the same final status as the one-shot parse.
 *
 * Semantics follow nats-server's parser (server/parser.go, client.go, leafnode.go);
 * see docs/wire-errors.md for the error classes, measured against nats-server 2.9.10:
 *  - op names are case-insensitive; PUB HPUB SUB UNSUB MSG HMSG LS+ LS- LMSG -ERR need
 *    a space or tab after the name, CONNECT and INFO take their argument after
 *    optional blanks, and PING PONG +OK ignore everything up to the '\n';
 *  - the control line ends at '\n'; one '\r' just before it is dropped;
 *  - max_control_line bounds the argument text (after the op name and its blanks,
 *    without the final '\r'); it is an error as soon as more than that has arrived;
 *  - sizes are 1 to 9 decimal digits (parseSize); anything else is a bad size;
 *  - the payload must be followed by exactly "\r\n", else "Unknown Protocol Operation".
 */
#include "parser.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MCL 4096u
#define DEFAULT_MPAY (1024u * 1024u)
#define SHRINK_ABOVE (64u * 1024u) /* free a larger buffer once its op is done */
#define TOKMAX 40                  /* tokens kept from the front (3 + 32 queues fit) */

/* ------------------------------------------------------------------ op names */

enum { A_NONE, A_OPT, A_REQ }; /* argument shape after the name */

#define M_CLIENT (1u << PROTO_MODE_CLIENT)
#define M_SERVER (1u << PROTO_MODE_SERVER)
#define M_LEAF (1u << PROTO_MODE_LEAF)
#define M_ALL (M_CLIENT | M_SERVER | M_LEAF)

typedef struct opdef {
    char name[8]; /* upper case; letters match either case, other bytes exactly */
    uint8_t len;
    uint8_t kind;
    uint8_t argc;
    uint8_t modes;
} opdef;

enum {
    D_PUB, D_PING, D_PONG, D_HPUB, D_HMSG, D_SUB, D_UNSUB, D_CONNECT, D_INFO,
    D_MSG, D_LSUB, D_LUNSUB, D_LMSG, D_OK, D_ERR, D_COUNT
};

static const opdef OPS[D_COUNT] = {
    [D_PUB] = {"PUB", 3, PROTO_OP_PUB, A_REQ, M_CLIENT},
    [D_PING] = {"PING", 4, PROTO_OP_PING, A_NONE, M_ALL},
    [D_PONG] = {"PONG", 4, PROTO_OP_PONG, A_NONE, M_ALL},
    [D_HPUB] = {"HPUB", 4, PROTO_OP_HPUB, A_REQ, M_CLIENT},
    [D_HMSG] = {"HMSG", 4, PROTO_OP_HMSG, A_REQ, M_SERVER | M_LEAF},
    [D_SUB] = {"SUB", 3, PROTO_OP_SUB, A_REQ, M_CLIENT},
    [D_UNSUB] = {"UNSUB", 5, PROTO_OP_UNSUB, A_REQ, M_CLIENT},
    [D_CONNECT] = {"CONNECT", 7, PROTO_OP_CONNECT, A_OPT, M_CLIENT | M_LEAF},
    [D_INFO] = {"INFO", 4, PROTO_OP_INFO, A_OPT, M_ALL},
    [D_MSG] = {"MSG", 3, PROTO_OP_MSG, A_REQ, M_SERVER},
    [D_LSUB] = {"LS+", 3, PROTO_OP_LSUB, A_REQ, M_LEAF},
    [D_LUNSUB] = {"LS-", 3, PROTO_OP_LUNSUB, A_REQ, M_LEAF},
    [D_LMSG] = {"LMSG", 4, PROTO_OP_LMSG, A_REQ, M_LEAF},
    [D_OK] = {"+OK", 3, PROTO_OP_OK, A_NONE, M_ALL},
    [D_ERR] = {"-ERR", 4, PROTO_OP_ERR, A_REQ, M_ALL},
};

enum { LOOK_MORE = -1, LOOK_NONE = -2 };

static inline int name_byte_eq(unsigned char b, unsigned char n)
{
    return (n >= 'A' && n <= 'Z') ? ((b & 0xDFu) == n) : (b == n);
}

/* Which op do the n bytes at s start? The index in OPS when a whole name allowed in
 * `modes` is there, LOOK_MORE when they are a proper prefix of one, else LOOK_NONE.
 * No name is a prefix of another, so the answer is never ambiguous. */
static int op_lookup(unsigned modes, const char *s, size_t n)
{
    static const int8_t cand[][4] = {
        {D_PUB, D_PING, D_PONG, -1}, {D_HPUB, D_HMSG, -1, -1}, {D_SUB, -1, -1, -1},
        {D_UNSUB, -1, -1, -1},       {D_CONNECT, -1, -1, -1},  {D_INFO, -1, -1, -1},
        {D_MSG, -1, -1, -1},         {D_LSUB, D_LUNSUB, D_LMSG, -1},
        {D_OK, -1, -1, -1},          {D_ERR, -1, -1, -1},
    };
    int c;
    switch ((unsigned char)s[0]) {
    case 'P': case 'p': c = 0; break;
    case 'H': case 'h': c = 1; break;
    case 'S': case 's': c = 2; break;
    case 'U': case 'u': c = 3; break;
    case 'C': case 'c': c = 4; break;
    case 'I': case 'i': c = 5; break;
    case 'M': case 'm': c = 6; break;
    case 'L': case 'l': c = 7; break;
    case '+': c = 8; break;
    case '-': c = 9; break;
    default: return LOOK_NONE;
    }
    int more = 0;
    for (int k = 0; k < 4 && cand[c][k] >= 0; k++) {
        const opdef *d = &OPS[cand[c][k]];
        if (!(d->modes & modes))
            continue;
        size_t m = n < d->len ? n : d->len, j;
        for (j = 1; j < m; j++)
            if (!name_byte_eq((unsigned char)s[j], (unsigned char)d->name[j]))
                break;
        if (j < m)
            continue;
        if (n >= d->len)
            return cand[c][k];
        more = 1;
    }
    return more ? LOOK_MORE : LOOK_NONE;
}

/* ------------------------------------------------------------------ parser */

enum {
    ST_START = 0, /* at the first byte of an operation */
    ST_OPNAME,    /* inside the op name (opbuf) */
    ST_WS_REQ,    /* right after a name that needs a blank */
    ST_WS,        /* blanks before the argument */
    ST_ARG,       /* argument text, kept in buf */
    ST_SKIPLF,    /* PING PONG +OK: anything up to '\n' */
    ST_PAYLOAD,   /* payload + "\r\n", kept in buf after the argument text */
    ST_DEAD,      /* after an error */
};

struct proto_parser {
    uint8_t mode;
    uint8_t modes; /* 1 << mode */
    uint8_t state;
    uint8_t oplen;
    uint8_t require_connect;
    uint8_t def; /* OPS index of the op being read */
    char opbuf[8];
    proto_status err;
    size_t mcl, mpay;
    char *buf; /* argument text, then the payload */
    size_t blen, bcap;
    size_t alen;   /* argument length (ST_PAYLOAD) */
    size_t total;  /* payload size incl. headers (ST_PAYLOAD) */
    size_t have;   /* payload bytes (and trailer) buffered so far */
    proto_op op;
};

static inline int is_blank(char c) { return c == ' ' || c == '\t'; }

static inline int is_msg_kind(int kind)
{
    return kind == PROTO_OP_PUB || kind == PROTO_OP_HPUB || kind == PROTO_OP_MSG ||
           kind == PROTO_OP_HMSG || kind == PROTO_OP_LMSG;
}

static inline void op_init(proto_op *op, int kind)
{
    static const proto_slice none = {NULL, 0};
    op->kind = (proto_op_kind)kind;
    op->subject = none;
    op->reply = none;
    op->queue = none;
    op->sid = none;
    op->max = -1;
    op->arg = none;
    op->hdr = none;
    op->payload = none;
    op->nqueues = 0;
    op->qlist = none;
}

/* nats-server's parseSize: 1 to 9 ASCII digits, else -1. */
static inline int64_t parse_size(const char *d, size_t l)
{
    if (l == 0 || l > 9)
        return -1;
    int64_t n = 0;
    for (size_t i = 0; i < l; i++) {
        unsigned v = (unsigned char)d[i] - '0';
        if (v > 9)
            return -1;
        n = n * 10 + v;
    }
    return n;
}

/* Argument separators: blanks, and also '\r' for the ops nats-server splits with
 * splitArg (SUB UNSUB MSG HMSG LMSG LS+ LS-); PUB and HPUB split on blanks only. */
static inline int is_sep(char c, int cr) { return c == ' ' || c == '\t' || (cr && c == '\r'); }

/* Split a[0..len) into tokens, keeping the first `max` in t. Returns the count, but
 * stops at max + 1 when `all` is 0. */
static size_t tok_split(const char *a, size_t len, int cr, proto_slice *t, size_t max, int all)
{
    size_t n = 0, i = 0;
    for (;;) {
        while (i < len && is_sep(a[i], cr))
            i++;
        if (i == len)
            return n;
        size_t s = i;
        while (i < len && !is_sep(a[i], cr))
            i++;
        if (n < max) {
            t[n].p = a + s;
            t[n].len = i - s;
        } else if (!all) {
            return max + 1;
        }
        n++;
    }
}

/* The last k tokens of a[0..len) (there are at least k), in order, into t[0..k). */
static void tok_last(const char *a, size_t len, int cr, proto_slice *t, size_t k)
{
    size_t e = len;
    for (size_t j = k; j-- > 0;) {
        while (e > 0 && is_sep(a[e - 1], cr))
            e--;
        size_t s = e;
        while (s > 0 && !is_sep(a[s - 1], cr))
            s--;
        t[j].p = a + s;
        t[j].len = e - s;
        e = s;
    }
}

/* Leaf LMSG / HMSG: <subject> [reply | + reply q.. | | q..] [<hdr>] <size>
 * (nats-server processLeafMsgArgs / processLeafHeaderMsgArgs). */
static proto_status parse_leaf_msg(size_t mpay, const char *a, size_t alen, int hashdr,
                                   proto_op *op, size_t *total, size_t *hdr)
{
    proto_slice t[TOKMAX], tail[3];
    size_t n = tok_split(a, alen, 1, t, TOKMAX, 1);
    size_t nsz = hashdr ? 2 : 1, base = 1 + nsz, qs = 0, qe = 0;
    if (n < base)
        return PROTO_ERR_ARGS;
    /* tokens from n - 3 on, wherever they are */
    if (n > TOKMAX)
        tok_last(a, alen, 1, tail, 3);
#define TOK(i) ((i) < TOKMAX ? t[(i)] : tail[(i) - (n - 3)])
    op->subject = t[0];
    if (n == base + 1) {
        op->reply = t[1];
    } else if (n > base + 1) {
        if (t[1].len != 1)
            return PROTO_ERR_ARGS;
        if (t[1].p[0] == '+') {
            op->reply = t[2];
            qs = 3;
        } else if (t[1].p[0] == '|') {
            qs = 2;
        } else {
            return PROTO_ERR_ARGS;
        }
        qe = n - nsz;
    }
    proto_slice szt = TOK(n - 1);
    int64_t sz = parse_size(szt.p, szt.len), hs = 0;
    if (hashdr) {
        proto_slice ht = TOK(n - 2);
        hs = parse_size(ht.p, ht.len);
        if (hs < 0)
            return PROTO_ERR_HEADER;
    }
    if (sz < 0)
        return PROTO_ERR_ARGS;
    if (hs > sz)
        return PROTO_ERR_HEADER;
    if ((uint64_t)sz > mpay)
        return PROTO_ERR_MAX_PAYLOAD;
    if (qe > qs) {
        size_t nq = qe - qs;
        size_t keep = nq < PROTO_MAX_QUEUES ? nq : PROTO_MAX_QUEUES;
        for (size_t j = 0; j < keep; j++)
            op->queues[j] = t[qs + j];
        op->nqueues = nq;
        proto_slice lastq = TOK(qe - 1);
        op->qlist.p = t[qs].p;
        op->qlist.len = (size_t)(lastq.p + lastq.len - t[qs].p);
    }
#undef TOK
    *total = (size_t)sz;
    *hdr = (size_t)hs;
    return PROTO_OK;
}

/* Fill op from the argument text a[0..alen) of an op of `kind`, in `mode`. For messages,
 * *total gets the payload size (headers included) and *hdr the header size, and a size
 * above mpay is an error. */
static proto_status parse_args(int mode, size_t mpay, int kind, const char *a, size_t alen,
                               proto_op *op, size_t *total, size_t *hdr)
{
    proto_slice t[6];
    size_t n;
    int64_t sz, hs;

    switch (kind) {
    case PROTO_OP_PUB: /* PUB <subject> [reply] <size> */
        n = tok_split(a, alen, 0, t, 3, 0);
        if (n == 2) {
            sz = parse_size(t[1].p, t[1].len);
        } else if (n == 3) {
            op->reply = t[1];
            sz = parse_size(t[2].p, t[2].len);
        } else {
            return PROTO_ERR_ARGS;
        }
        op->subject = t[0];
        if (sz < 0)
            return PROTO_ERR_ARGS;
        if ((uint64_t)sz > mpay)
            return PROTO_ERR_MAX_PAYLOAD;
        *total = (size_t)sz;
        *hdr = 0;
        return PROTO_OK;

    case PROTO_OP_HPUB: /* HPUB <subject> [reply] <hdr> <total> */
    case PROTO_OP_MSG:  /* MSG <subject> <sid> [reply] <size> */
    case PROTO_OP_HMSG: /* HMSG <subject> <sid> [reply] <hdr> <total> */
    {
        if (kind == PROTO_OP_HMSG && mode == PROTO_MODE_LEAF)
            return parse_leaf_msg(mpay, a, alen, 1, op, total, hdr);
        int hashdr = kind != PROTO_OP_MSG;
        size_t fixed = (kind == PROTO_OP_HPUB ? 1 : 2) + (hashdr ? 2 : 1); /* without reply */
        n = tok_split(a, alen, kind != PROTO_OP_HPUB, t, fixed + 1, 0);
        if (n != fixed && n != fixed + 1)
            return PROTO_ERR_ARGS;
        op->subject = t[0];
        if (kind != PROTO_OP_HPUB)
            op->sid = t[1];
        if (n == fixed + 1)
            op->reply = t[fixed - (hashdr ? 2 : 1)];
        sz = parse_size(t[n - 1].p, t[n - 1].len);
        hs = 0;
        if (hashdr) {
            hs = parse_size(t[n - 2].p, t[n - 2].len);
            if (hs < 0)
                return PROTO_ERR_HEADER;
        }
        if (sz < 0)
            return PROTO_ERR_ARGS;
        if (hs > sz)
            return PROTO_ERR_HEADER;
        if ((uint64_t)sz > mpay)
            return PROTO_ERR_MAX_PAYLOAD;
        *total = (size_t)sz;
        *hdr = (size_t)hs;
        return PROTO_OK;
    }

    case PROTO_OP_LMSG:
        return parse_leaf_msg(mpay, a, alen, 0, op, total, hdr);

    case PROTO_OP_SUB: /* SUB <subject> [queue] <sid> */
        n = tok_split(a, alen, 1, t, 3, 0);
        if (n == 2) {
            op->sid = t[1];
        } else if (n == 3) {
            op->queue = t[1];
            op->sid = t[2];
        } else {
            return PROTO_ERR_ARGS;
        }
        op->subject = t[0];
        return PROTO_OK;

    case PROTO_OP_UNSUB: /* UNSUB <sid> [max] */
        n = tok_split(a, alen, 1, t, 2, 0);
        if (n < 1 || n > 2)
            return PROTO_ERR_ARGS;
        op->sid = t[0];
        if (n == 2)
            op->max = parse_size(t[1].p, t[1].len); /* -1 when not a size, as nats-server */
        return PROTO_OK;

    case PROTO_OP_LSUB: /* LS+ <subject> [<queue> <weight>] */
        n = tok_split(a, alen, 1, t, 3, 0);
        if (n == 3) {
            op->queue = t[1];
            op->max = parse_size(t[2].p, t[2].len);
        } else if (n != 1) {
            return PROTO_ERR_ARGS;
        }
        op->subject = t[0];
        return PROTO_OK;

    case PROTO_OP_LUNSUB: /* LS- <subject> [<queue>]; nats-server keys on the whole text */
        n = tok_split(a, alen, 1, t, 2, 0);
        if (n == 0)
            return PROTO_ERR_ARGS;
        op->subject = t[0];
        if (n > 1) {
            size_t e = alen;
            while (e > 0 && is_sep(a[e - 1], 1))
                e--;
            op->queue.p = t[1].p;
            op->queue.len = (size_t)(a + e - t[1].p);
        }
        return PROTO_OK;

    case PROTO_OP_ERR: { /* -ERR '<text>': trimmed, quotes stripped as nats.go does */
        size_t s = 0, e = alen;
        while (s < e && is_blank(a[s]))
            s++;
        while (e > s && is_blank(a[e - 1]))
            e--;
        while (s < e && a[s] == '\'')
            s++;
        while (e > s && a[e - 1] == '\'')
            e--;
        op->arg.p = a + s;
        op->arg.len = e - s;
        return PROTO_OK;
    }

    case PROTO_OP_CONNECT:
    case PROTO_OP_INFO:
        op->arg.p = a;
        op->arg.len = alen;
        return PROTO_OK;

    default: /* PING PONG +OK */
        return PROTO_OK;
    }
}

static proto_status fail(proto_parser *p, proto_status st)
{
    p->state = ST_DEAD;
    p->err = st;
    return st;
}

static int reserve(proto_parser *p, size_t need)
{
    if (need <= p->bcap)
        return 0;
    size_t cap = p->bcap ? p->bcap : 256;
    while (cap < need)
        cap = cap > (SIZE_MAX / 2) ? need : cap * 2;
    char *nb = realloc(p->buf, cap);
    if (!nb)
        return -1;
    p->buf = nb;
    p->bcap = cap;
    return 0;
}

static inline proto_status emit(proto_parser *p, proto_op_fn fn, void *ctx)
{
    return (fn && fn(ctx, &p->op)) ? PROTO_STOPPED : PROTO_OK;
}

/* ------------------------------------------------------------------ fast path */

/* Parse one whole op at s[0..avail) in place. Returns its length (> 0) with *st
 * PROTO_OK or PROTO_STOPPED; 0 when the op is not complete here (nothing changed);
 * or -1 with the error in *st. */
static inline ptrdiff_t fast_one(proto_parser *p, const char *s, size_t avail, proto_op_fn fn,
                            void *ctx, proto_status *st)
{
    proto_op *op = &p->op;
    int di;
    size_t a;

    if (p->require_connect && s[0] != 'C' && s[0] != 'c') {
        *st = PROTO_ERR_AUTH;
        return -1;
    }
    /* The common case first: "PUB " / "MSG " in upper or lower case. */
    if (avail >= 4 && s[3] == ' ' &&
        ((((unsigned char)s[0] | 0x20) == 'p' && ((unsigned char)s[1] | 0x20) == 'u' &&
          ((unsigned char)s[2] | 0x20) == 'b' && p->mode == PROTO_MODE_CLIENT) ||
         (((unsigned char)s[0] | 0x20) == 'm' && ((unsigned char)s[1] | 0x20) == 's' &&
          ((unsigned char)s[2] | 0x20) == 'g' && p->mode == PROTO_MODE_SERVER))) {
        di = p->mode == PROTO_MODE_CLIENT ? D_PUB : D_MSG;
        a = 4;
    } else {
        di = op_lookup(p->modes, s, avail);
        if (di == LOOK_MORE)
            return 0;
        if (di == LOOK_NONE) {
            *st = PROTO_ERR_UNKNOWN_OP;
            return -1;
        }
        const opdef *d = &OPS[di];
        a = d->len;
        if (d->argc == A_NONE) {
            const char *nl = memchr(s + a, '\n', avail - a);
            if (!nl)
                return 0;
            op_init(op, d->kind);
            *st = emit(p, fn, ctx);
            return (nl - s) + 1;
        }
        if (d->argc == A_REQ) {
            if (a == avail)
                return 0;
            if (!is_blank(s[a])) {
                *st = PROTO_ERR_UNKNOWN_OP;
                return -1;
            }
            a++;
        }
    }
    while (a < avail && is_blank(s[a]))
        a++;
    if (a == avail)
        return 0;
    const char *nlp = memchr(s + a, '\n', avail - a);
    if (!nlp)
        return 0;
    size_t nl = (size_t)(nlp - s), ae = nl;
    if (ae > a && s[ae - 1] == '\r')
        ae--;
    if (ae - a > p->mcl) {
        *st = PROTO_ERR_CONTROL_LINE;
        return -1;
    }
    int kind = OPS[di].kind;
    size_t total = 0, hdr = 0;
    op_init(op, kind);
    proto_status r = parse_args(p->mode, p->mpay, kind, s + a, ae - a, op, &total, &hdr);
    if (r != PROTO_OK) {
        *st = r;
        return -1;
    }
    if (!is_msg_kind(kind)) {
        *st = emit(p, fn, ctx);
        return (ptrdiff_t)nl + 1;
    }
    size_t d0 = nl + 1;
    if (avail - d0 < total + 2)
        return 0; /* the slow path takes it from the op name on */
    if (s[d0 + total] != '\r' || s[d0 + total + 1] != '\n') {
        *st = PROTO_ERR_UNKNOWN_OP;
        return -1;
    }
    op->hdr.p = s + d0;
    op->hdr.len = hdr;
    op->payload.p = s + d0 + hdr;
    op->payload.len = total - hdr;
    *st = emit(p, fn, ctx);
    return (ptrdiff_t)(d0 + total + 2);
}

/* ------------------------------------------------------------------ slow path */

static void slow_reset(proto_parser *p)
{
    p->state = ST_START;
    p->oplen = 0;
    p->blen = 0;
    if (p->bcap > SHRINK_ABOVE) {
        free(p->buf);
        p->buf = NULL;
        p->bcap = 0;
    }
}

/* The control line is complete: its argument is buf[0..blen) (maybe with a final '\r'). */
static proto_status slow_line(proto_parser *p, proto_op_fn fn, void *ctx, int *emitted)
{
    size_t alen = p->blen, total = 0, hdr = 0;
    if (alen && p->buf[alen - 1] == '\r')
        alen--;
    int kind = OPS[p->def].kind;
    op_init(&p->op, kind);
    proto_status r = parse_args(p->mode, p->mpay, kind, p->buf ? p->buf : "", alen, &p->op,
                                &total, &hdr);
    if (r != PROTO_OK)
        return fail(p, r);
    if (!is_msg_kind(kind)) {
        r = emit(p, fn, ctx);
        *emitted = 1;
        slow_reset(p);
        return r;
    }
    if (reserve(p, alen + total + 2))
        return fail(p, PROTO_ERR_NOMEM);
    p->alen = alen;
    p->total = total;
    p->have = 0;
    p->state = ST_PAYLOAD;
    return PROTO_OK;
}

/* Run the state machine over buf[*pi..len) until one op is emitted (*emitted = 1),
 * the bytes run out, or an error. */
static proto_status slow(proto_parser *p, const char *buf, size_t len, size_t *pi,
                         proto_op_fn fn, void *ctx, int *emitted)
{
    size_t i = *pi;
    proto_status r = PROTO_OK;

    while (i < len && !*emitted) {
        switch (p->state) {
        case ST_START:
            if (p->require_connect && buf[i] != 'C' && buf[i] != 'c')
                return fail(p, PROTO_ERR_AUTH);
            p->oplen = 0;
            p->state = ST_OPNAME;
            /* fall through */
        case ST_OPNAME: {
            p->opbuf[p->oplen++] = buf[i++];
            int di = op_lookup(p->modes, p->opbuf, p->oplen);
            if (di == LOOK_NONE)
                return fail(p, PROTO_ERR_UNKNOWN_OP);
            if (di == LOOK_MORE)
                break;
            p->def = (uint8_t)di;
            p->blen = 0;
            p->state = OPS[di].argc == A_NONE ? ST_SKIPLF
                       : OPS[di].argc == A_REQ ? ST_WS_REQ
                                               : ST_WS;
            break;
        }
        case ST_WS_REQ:
            if (!is_blank(buf[i]))
                return fail(p, PROTO_ERR_UNKNOWN_OP);
            i++;
            p->state = ST_WS;
            break;
        case ST_WS:
            while (i < len && is_blank(buf[i]))
                i++;
            if (i == len)
                break;
            if (buf[i] == '\n') { /* no argument at all */
                i++;
                r = slow_line(p, fn, ctx, emitted);
                if (r < 0)
                    return r;
                break;
            }
            p->state = ST_ARG;
            /* fall through */
        case ST_ARG: {
            const char *nl = memchr(buf + i, '\n', len - i);
            size_t chunk = nl ? (size_t)(nl - (buf + i)) : len - i;
            size_t eff = p->blen + chunk;
            char last = chunk ? buf[i + chunk - 1] : (p->blen ? p->buf[p->blen - 1] : 0);
            if (eff && last == '\r')
                eff--;
            if (eff > p->mcl)
                return fail(p, PROTO_ERR_CONTROL_LINE);
            if (chunk) {
                if (reserve(p, p->blen + chunk))
                    return fail(p, PROTO_ERR_NOMEM);
                memcpy(p->buf + p->blen, buf + i, chunk);
                p->blen += chunk;
                i += chunk;
            }
            if (nl) {
                i++;
                r = slow_line(p, fn, ctx, emitted);
                if (r < 0)
                    return r;
            }
            break;
        }
        case ST_SKIPLF: {
            const char *nl = memchr(buf + i, '\n', len - i);
            if (!nl) {
                i = len;
                break;
            }
            i = (size_t)(nl - buf) + 1;
            op_init(&p->op, OPS[p->def].kind);
            r = emit(p, fn, ctx);
            *emitted = 1;
            slow_reset(p);
            break;
        }
        case ST_PAYLOAD: {
            size_t need = p->total + 2 - p->have, n = len - i;
            if (n > need)
                n = need;
            char *dst = p->buf + p->alen;
            memcpy(dst + p->have, buf + i, n);
            size_t old = p->have;
            p->have += n;
            i += n;
            if (old <= p->total && p->have > p->total && dst[p->total] != '\r')
                return fail(p, PROTO_ERR_UNKNOWN_OP);
            if (p->have == p->total + 2) {
                if (dst[p->total + 1] != '\n')
                    return fail(p, PROTO_ERR_UNKNOWN_OP);
                size_t total = 0, hdr = 0;
                int kind = OPS[p->def].kind;
                op_init(&p->op, kind);
                /* parsed before, when the control line was complete; the limit
                 * checked then holds even if set_limits() was called since */
                r = parse_args(p->mode, SIZE_MAX, kind, p->buf, p->alen, &p->op, &total, &hdr);
                if (r != PROTO_OK) /* cannot happen */
                    return fail(p, r);
                p->op.hdr.p = dst;
                p->op.hdr.len = hdr;
                p->op.payload.p = dst + hdr;
                p->op.payload.len = total - hdr;
                r = emit(p, fn, ctx);
                *emitted = 1;
                slow_reset(p);
            }
            break;
        }
        default:
            return p->err;
        }
    }
    *pi = i;
    return r;
}

/* ------------------------------------------------------------------ API */

proto_parser *proto_parser_new(proto_mode mode, size_t max_control_line, size_t max_payload)
{
    if ((unsigned)mode > PROTO_MODE_LEAF)
        return NULL;
    proto_parser *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->mode = (uint8_t)mode;
    p->modes = (uint8_t)(1u << mode);
    p->state = ST_START;
    proto_parser_set_limits(p, max_control_line, max_payload);
    return p;
}

void proto_parser_free(proto_parser *p)
{
    if (!p)
        return;
    free(p->buf);
    free(p);
}

void proto_parser_set_limits(proto_parser *p, size_t max_control_line, size_t max_payload)
{
    p->mcl = max_control_line ? max_control_line : DEFAULT_MCL;
    p->mpay = max_payload ? max_payload : DEFAULT_MPAY;
}

void proto_parser_require_connect(proto_parser *p, int on) { p->require_connect = on != 0; }

proto_status proto_parse(proto_parser *p, const char *buf, size_t len, proto_op_fn fn,
                         void *ctx, size_t *consumed)
{
    size_t i = 0, done = 0;
    proto_status st = PROTO_OK;

    if (p->state == ST_DEAD) {
        st = p->err;
        goto out;
    }
    while (i < len) {
        if (p->state == ST_START) {
            ptrdiff_t n = fast_one(p, buf + i, len - i, fn, ctx, &st);
            if (n > 0) {
                i += (size_t)n;
                done = i;
                if (st == PROTO_STOPPED)
                    goto out;
                continue;
            }
            if (n < 0) {
                fail(p, st);
                goto out;
            }
        }
        int emitted = 0;
        st = slow(p, buf, len, &i, fn, ctx, &emitted);
        if (st < 0)
            goto out;
        if (emitted) {
            done = i;
            if (st == PROTO_STOPPED)
                goto out;
        }
    }
out:
    if (consumed)
        *consumed = done;
    return st;
}

const char *proto_status_err_text(proto_status st)
{
    switch (st) {
    case PROTO_ERR_UNKNOWN_OP:
        return "Unknown Protocol Operation";
    case PROTO_ERR_CONTROL_LINE:
        return "maximum control line exceeded";
    case PROTO_ERR_MAX_PAYLOAD:
        return "Maximum Payload Violation";
    case PROTO_ERR_AUTH:
        return "Authorization Violation";
    case PROTO_ERR_ARGS:   /* nats-server closes without a -ERR */
    case PROTO_ERR_HEADER: /* likewise */
    case PROTO_ERR_NOMEM:
    default:
        return NULL;
    }
}

int proto_hdr_status(const char *hdr, size_t len)
{
    if (!hdr || len < 8 || memcmp(hdr, "NATS/1.0", 8) != 0)
        return 0;
    size_t i = 8;
    while (i < len && is_blank(hdr[i]))
        i++;
    if (len - i < 3)
        return 0;
    int v = 0;
    for (size_t k = 0; k < 3; k++) {
        unsigned d = (unsigned char)hdr[i + k] - '0';
        if (d > 9)
            return 0;
        v = v * 10 + (int)d;
    }
    if (i + 3 < len) {
        char c = hdr[i + 3];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
            return 0;
    }
    return v;
}
