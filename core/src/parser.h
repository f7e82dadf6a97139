/* parser: a streaming, zero-copy parser for the NATS text protocol.
 *
 * Feed it bytes as they arrive, in any split (one byte at a time works). Each
 * complete operation is handed to the `on_op` callback with slices (pointer +
 * length, NOT NUL-terminated) that point into the caller's buffer whenever the
 * operation lies wholly inside one proto_parse() call, and into the parser's own
 * buffer otherwise (an operation split across calls is accumulated, bounded by
 * max_control_line and max_payload). Slices are valid only during the callback.
 *
 * One parser per connection; not thread-safe (one thread at a time).
 *
 * Modes say which operations the peer may send:
 *  - PROTO_MODE_CLIENT: the server parsing a client: CONNECT PUB HPUB SUB UNSUB PING
 *    PONG (+OK -ERR INFO tolerated as nats-server does).
 *  - PROTO_MODE_SERVER: a client parsing a server: INFO MSG HMSG PING PONG +OK -ERR.
 *  - PROTO_MODE_LEAF: a leaf-node link (either side): INFO CONNECT PING PONG +OK -ERR
 *    LS+ LS- LMSG and leaf-style HMSG (no sid), PUB/HPUB are not accepted.
 * Operation names are case-insensitive, as in nats-server.
 *
 * Limits and errors follow nats-server (measured against 2.9.10, see docs/wire-errors.md):
 * max_control_line bounds the argument text of a control line (after the op name and its
 * blanks, without the final '\r') and fails as soon as more has arrived; PING, PONG and
 * +OK ignore whatever follows the name up to '\n', without a limit. max_payload bounds the
 * size of every message op (PUB HPUB MSG HMSG LMSG) and fails as soon as the control line
 * is complete, before any payload byte. After an error the broker sends
 * proto_status_err_text() as -ERR (when not NULL) and closes.
 *
 * The callback may call proto_parser_require_connect() and proto_parser_set_limits() on
 * its parser, but not proto_parse() or proto_parser_free().
 */
#ifndef EMBER_PARSER_H
#define EMBER_PARSER_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    PROTO_MODE_CLIENT = 0,
    PROTO_MODE_SERVER = 1,
    PROTO_MODE_LEAF = 2,
} proto_mode;

typedef enum {
    PROTO_OP_CONNECT = 1,
    PROTO_OP_INFO,
    PROTO_OP_PUB,
    PROTO_OP_HPUB,
    PROTO_OP_SUB,
    PROTO_OP_UNSUB,
    PROTO_OP_PING,
    PROTO_OP_PONG,
    PROTO_OP_OK,
    PROTO_OP_ERR,
    PROTO_OP_MSG,    /* MSG  <subject> <sid> [reply] <size>  (server mode) */
    PROTO_OP_HMSG,   /* HMSG <subject> <sid> [reply] <hdr> <total> (server mode)
                        leaf mode: HMSG <subject> [reply | + reply q.. | | q..] <hdr> <total> */
    PROTO_OP_LSUB,   /* LS+ <subject> [<queue> <weight>] */
    PROTO_OP_LUNSUB, /* LS- <subject> [<queue>] */
    PROTO_OP_LMSG,   /* LMSG <subject> [reply | + reply q.. | | q..] <size> */
} proto_op_kind;

typedef struct proto_slice {
    const char *p;
    size_t len;
} proto_slice;

#define PROTO_MAX_QUEUES 32

typedef struct proto_op {
    proto_op_kind kind;
    proto_slice subject;   /* PUB HPUB SUB MSG HMSG LS+ LS- LMSG */
    proto_slice reply;     /* PUB HPUB MSG HMSG LMSG (len 0 when absent) */
    proto_slice queue;     /* SUB, LS+, LS- (len 0 when absent) */
    proto_slice sid;       /* SUB UNSUB MSG HMSG */
    int64_t max;           /* UNSUB max (-1 when absent); LS+ queue weight (-1 when absent) */
    proto_slice arg;       /* CONNECT/INFO JSON text; -ERR text (without the quotes) */
    proto_slice hdr;       /* HPUB/HMSG: the header block, "NATS/1.0...\r\n\r\n" */
    proto_slice payload;   /* PUB HPUB MSG HMSG LMSG: the payload after the header */
    /* leaf LMSG/HMSG queue routing: `+ reply q..` or `| q..` */
    size_t nqueues;                       /* may exceed PROTO_MAX_QUEUES ... */
    proto_slice queues[PROTO_MAX_QUEUES]; /* ... only the first PROTO_MAX_QUEUES are here */
    proto_slice qlist;     /* all queue names as one span ("q1 q2 ..."), len 0 when none */
} proto_op;

/* Return 0 to go on; non-zero stops proto_parse(), which then returns PROTO_STOPPED. */
typedef int (*proto_op_fn)(void *ctx, const proto_op *op);

typedef enum {
    PROTO_OK = 0,
    PROTO_STOPPED = 1,           /* the callback asked to stop */
    PROTO_ERR_UNKNOWN_OP = -1,   /* unknown operation / malformed op name */
    PROTO_ERR_CONTROL_LINE = -2, /* control line longer than max_control_line */
    PROTO_ERR_MAX_PAYLOAD = -3,  /* announced size above max_payload */
    PROTO_ERR_ARGS = -4,         /* wrong arguments for a known op */
    PROTO_ERR_HEADER = -5,       /* HPUB/HMSG header sizes inconsistent */
    PROTO_ERR_NOMEM = -6,
    PROTO_ERR_AUTH = -7,         /* an op other than CONNECT while proto_parser_require_connect() */
} proto_status;

typedef struct proto_parser proto_parser;

/* max_control_line: 4096 default for clients; max_payload: 1 MiB default (0 means the
 * default for either). For PROTO_MODE_LEAF pass 16x the client control line, as
 * nats-server. Returns NULL on an invalid mode or out of memory. */
proto_parser *proto_parser_new(proto_mode mode, size_t max_control_line, size_t max_payload);
void proto_parser_free(proto_parser *p);
void proto_parser_set_limits(proto_parser *p, size_t max_control_line, size_t max_payload);

/* While on, an operation whose first byte is not 'C'/'c' fails with PROTO_ERR_AUTH
 * (nats-server answers "-ERR 'Authorization Violation'" to anything but CONNECT while
 * it awaits authentication, and for leaf connections always before CONNECT). May be
 * called from inside the callback (e.g. to turn it off once CONNECT was accepted); it
 * takes effect from the next operation on. Off by default. */
void proto_parser_require_connect(proto_parser *p, int on);

/* Parse len bytes. Returns PROTO_OK when all bytes were consumed (possibly leaving a
 * partial operation buffered), PROTO_STOPPED, or a negative error; after an error the
 * parser is unusable (the connection is to be closed or reset). *consumed (may be NULL)
 * gets the number of bytes used up to the end of the last complete operation. */
proto_status proto_parse(proto_parser *p, const char *buf, size_t len,
                         proto_op_fn fn, void *ctx, size_t *consumed);

/* The -ERR text nats-server sends for an error status (without quotes), e.g.
 * "Unknown Protocol Operation", "Maximum Payload Violation", or NULL when it
 * closes without a text. */
const char *proto_status_err_text(proto_status st);

/* Header block helpers (ADR-4): "NATS/1.0[ <status>[ <description>]]\r\nKey: Value\r\n...\r\n".
 * proto_hdr_status returns the status code (e.g. 503) or 0 when none. */
int proto_hdr_status(const char *hdr, size_t len);

#endif
