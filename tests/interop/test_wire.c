/*
 * Wire comparison: raw client-protocol conversations replayed against
 * nats-server and against the server under test, compared byte for byte.
 *
 *   test_wire [--print] [filter]
 *
 * Each case sends fixed bytes (in one or several writes, or one byte per
 * write), then reads until the server closes the connection or, for cases
 * that end with PING, until PONG arrived and a short quiet period passed.
 * The INFO line is compared by its JSON keys and its protocol-relevant
 * values (ids, addresses and versions are masked); everything after it is
 * compared exactly, including whether the server closed the connection.
 *
 * Servers:
 *   EMBER_TEST_SERVER     server under test (default nats-server)
 *   EMBER_TEST_REFERENCE  reference nats-server (default "nats-server")
 * When the server under test is the reference itself (or unset), only the
 * reference runs and is checked against the expectations recorded below
 * (nats-server 2.9.10). Otherwise the reference is checked against the
 * recordings and the server under test against the reference's live output
 * (or against the recordings when the reference binary is missing).
 *
 * A case may declare a known difference: a key from KNOWN_DIFFS, each of
 * which must be described in docs/wire-compat.md (checked at start-up
 * when the file can be found). With target_expect, the server under test
 * must send exactly those bytes instead of the reference's (a documented
 * difference is a requirement); without, any output is tolerated.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef EMBER_WIRE_COMPAT_DOC
#define EMBER_WIRE_COMPAT_DOC "docs/wire-compat.md"
#endif

/* ---- known differences (each key must appear in docs/wire-compat.md) --- */

typedef struct {
    const char *key;
    const char *summary;
} known_diff;

static const known_diff KNOWN_DIFFS[] = {
    {"no-responders-nats-subject",
     "the 503 no-responders frame carries a Nats-Subject header (nats-server 2.12+)"},
};

/* ---- cases --------------------------------------------------------------- */

#define MAX_WRITES 8

typedef struct {
    const char *name;
    const char *args[6];              /* extra server args */
    int auth;                         /* INFO must say auth_required */
    const char *writes[MAX_WRITES];   /* each a separate write */
    int byte_by_byte;                 /* send every byte as its own write */
    const char *expect;               /* nats-server 2.9.10, after the INFO line */
    int closed;                       /* nats-server closes the connection */
    const char *known_diff;           /* key into KNOWN_DIFFS */
    const char *target_expect;        /* with known_diff: what the target must send */
    int target_closed;
} wcase;

static char g_long_pub[5100];     /* PUB with a 5000-byte subject */
static char g_long_connect[5100]; /* CONNECT of ~5000 bytes */

#define CV "CONNECT {\"verbose\":false}\r\n"
#define CVH "CONNECT {\"verbose\":false,\"headers\":true}\r\n"
#define CNR "CONNECT {\"verbose\":false,\"headers\":true,\"no_responders\":true}\r\n"
#define ERR_UNKNOWN "-ERR 'Unknown Protocol Operation'\r\n"
#define ERR_AUTH "-ERR 'Authorization Violation'\r\n"
#define ERR_PUBSUBJ "-ERR 'Invalid Publish Subject'\r\n"
#define ERR_SUBJ "-ERR 'Invalid Subject'\r\n"
#define USERPASS {"--user", "a", "--pass", "b", NULL}
#define TOKEN {"--auth", "tok", NULL}

static const wcase CASES[] = {
    /* CONNECT handling */
    {.name = "connect_verbose_omitted",
     .writes = {"CONNECT {}\r\nPING\r\n"},
     .expect = "+OK\r\nPONG\r\n"},
    {.name = "connect_verbose_false", .writes = {CV "PING\r\n"}, .expect = "PONG\r\n"},
    {.name = "connect_verbose_true_ops",
     .writes = {"CONNECT {\"verbose\":true}\r\nSUB foo 1\r\nPUB foo 1\r\na\r\nUNSUB 1\r\nPING\r\n"},
     .expect = "+OK\r\n+OK\r\n+OK\r\nMSG foo 1 1\r\na\r\n+OK\r\nPONG\r\n"},
    {.name = "connect_verbose_errors",
     .writes = {"CONNECT {\"verbose\":true,\"pedantic\":true}\r\nSUB foo 1\r\nPUB foo..x 1\r\na\r\n"
                "SUB foo..x 2\r\nPING\r\n"},
     .expect = "+OK\r\n+OK\r\n" ERR_PUBSUBJ "+OK\r\n" ERR_SUBJ "PONG\r\n"},
    {.name = "connect_twice",
     .writes = {CV "CONNECT {\"verbose\":true}\r\nPING\r\n"},
     .expect = "+OK\r\nPONG\r\n"},
    {.name = "connect_protocol_0",
     .writes = {"CONNECT {\"verbose\":false,\"protocol\":0}\r\nPING\r\n"},
     .expect = "PONG\r\n"},
    {.name = "connect_protocol_2",
     .writes = {"CONNECT {\"verbose\":false,\"protocol\":2}\r\nPING\r\n"},
     .expect = "-ERR 'invalid client protocol'\r\n",
     .closed = 1},
    {.name = "connect_unknown_fields",
     .writes = {"CONNECT {\"verbose\":false,\"x_unknown\":[1,{\"a\":null}],\"lang\":\"raw\"}\r\nPING\r\n"},
     .expect = "PONG\r\n"},
    {.name = "connect_bad_json", .writes = {"CONNECT {bad json\r\nPING\r\n"}, .expect = "", .closed = 1},
    {.name = "connect_wrong_type",
     .writes = {"CONNECT {\"verbose\":\"yes\"}\r\nPING\r\n"},
     .expect = "",
     .closed = 1},
    {.name = "connect_too_long", .writes = {g_long_connect}, .expect = "-ERR 'maximum control line exceeded'\r\n", .closed = 1},
    {.name = "no_responders_without_headers",
     .writes = {"CONNECT {\"verbose\":false,\"no_responders\":true}\r\nPING\r\n"},
     .expect = "-ERR 'no responders requires headers support'\r\n",
     .closed = 1},
    {.name = "ops_before_connect",
     .writes = {"SUB foo 1\r\nPUB foo 1\r\na\r\nPING\r\n"},
     .expect = "+OK\r\n+OK\r\nMSG foo 1 1\r\na\r\nPONG\r\n"},
    {.name = "ping_before_connect", .writes = {"PING\r\n"}, .expect = "PONG\r\n"},

    /* PING / PONG */
    {.name = "ping_pong", .writes = {CV "PING\r\nPING\r\nping\r\n"}, .expect = "PONG\r\nPONG\r\nPONG\r\n"},
    {.name = "pong_ignored", .writes = {CV "PONG\r\nPING\r\n"}, .expect = "PONG\r\n"},

    /* PUB / SUB / MSG framing */
    {.name = "pub_sub_msg",
     .writes = {CV "SUB foo 1\r\nSUB foo.* 2\r\nPUB foo reply 5\r\nhello\r\nPUB foo 0\r\n\r\nPING\r\n"},
     .expect = "MSG foo 1 reply 5\r\nhello\r\nMSG foo 1 0\r\n\r\nPONG\r\n"},
    {.name = "payload_with_crlf",
     .writes = {CV "SUB foo 1\r\nPUB foo 4\r\na\r\nb\r\nPING\r\n"},
     .expect = "MSG foo 1 4\r\na\r\nb\r\nPONG\r\n"},
    {.name = "ops_case_insensitive",
     .writes = {"connect {\"verbose\":false}\r\nsub foo 1\r\npub foo 1\r\na\r\nPub foo 1\r\nb\r\n"
                "unsub 1\r\npub foo 1\r\nc\r\nping\r\n"},
     .expect = "MSG foo 1 1\r\na\r\nMSG foo 1 1\r\nb\r\nPONG\r\n"},
    {.name = "args_tabs_and_spaces",
     .writes = {CV "SUB  foo\t 1\r\nPUB\tfoo  r\t5\r\nhello\r\nPING\r\n"},
     .expect = "MSG foo 1 r 5\r\nhello\r\nPONG\r\n"},
    {.name = "split_writes",
     .writes = {CV "SU", "B foo 1\r\nPUB fo", "o 5\r\nhel", "lo\r", "\nPI", "NG\r\n"},
     .expect = "MSG foo 1 5\r\nhello\r\nPONG\r\n"},
    {.name = "byte_by_byte",
     .writes = {CVH "SUB foo 1\r\nPUB foo 5\r\nhello\r\nHPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n"},
     .byte_by_byte = 1,
     .expect = "MSG foo 1 5\r\nhello\r\nHMSG foo 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPONG\r\n"},
    {.name = "wildcard_subs",
     .writes = {CV "SUB a.* 1\r\nSUB b.> 2\r\nPUB a.x 1\r\n1\r\nPUB a.x.y 1\r\n2\r\nPUB b.x.y 1\r\n3\r\n"
                "PUB b 1\r\n4\r\nPING\r\n"},
     .expect = "MSG a.x 1 1\r\n1\r\nMSG b.x.y 2 1\r\n3\r\nPONG\r\n"},
    {.name = "queue_sub",
     .writes = {CV "SUB foo q 1\r\nPUB foo 1\r\na\r\nPING\r\n"},
     .expect = "MSG foo 1 1\r\na\r\nPONG\r\n"},
    {.name = "unsub",
     .writes = {CV "SUB foo 1\r\nPUB foo 1\r\na\r\nUNSUB 1\r\nPUB foo 1\r\nb\r\nPING\r\n"},
     .expect = "MSG foo 1 1\r\na\r\nPONG\r\n"},
    {.name = "unsub_max",
     .writes = {CV "SUB foo 1\r\nUNSUB 1 2\r\nPUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nPUB foo 1\r\nc\r\nPING\r\n"},
     .expect = "MSG foo 1 1\r\na\r\nMSG foo 1 1\r\nb\r\nPONG\r\n"},
    {.name = "unsub_max_already_reached",
     .writes = {CV "SUB foo 1\r\nPUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nUNSUB 1 1\r\nPUB foo 1\r\nc\r\nPING\r\n"},
     .expect = "MSG foo 1 1\r\na\r\nMSG foo 1 1\r\nb\r\nPONG\r\n"},
    {.name = "unsub_unknown_sid", .writes = {CV "UNSUB 99\r\nUNSUB 98 5\r\nPING\r\n"}, .expect = "PONG\r\n"},
    {.name = "echo_false",
     .writes = {"CONNECT {\"verbose\":false,\"echo\":false}\r\nSUB foo 1\r\nPUB foo 1\r\na\r\nPING\r\n"},
     .expect = "PONG\r\n"},

    /* HPUB / HMSG framing */
    {.name = "hpub_hmsg",
     .writes = {CVH "SUB foo 1\r\nHPUB foo rep 24 29\r\nNATS/1.0\r\nA: b\r\nA: c\r\n\r\nhello\r\nPING\r\n"},
     .expect = "HMSG foo 1 rep 24 29\r\nNATS/1.0\r\nA: b\r\nA: c\r\n\r\nhello\r\nPONG\r\n"},
    {.name = "hpub_header_only",
     .writes = {CVH "SUB foo 1\r\nHPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\nPING\r\n"},
     .expect = "HMSG foo 1 12 12\r\nNATS/1.0\r\n\r\n\r\nPONG\r\n"},
    {.name = "hpub_status_line",
     .writes = {CVH "SUB foo 1\r\nHPUB foo 32 34\r\nNATS/1.0 408 Request Timeout\r\n\r\nhi\r\nPING\r\n"},
     .expect = "HMSG foo 1 32 34\r\nNATS/1.0 408 Request Timeout\r\n\r\nhi\r\nPONG\r\n"},
    {.name = "hpub_to_client_without_headers_support",
     .writes = {CV "SUB foo 1\r\nHPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n"},
     .expect = "",
     .closed = 1},

    /* No responders */
    {.name = "no_responders_503",
     .writes = {CNR "SUB _INBOX.x 1\r\nPUB nobody _INBOX.x 2\r\nhi\r\nPING\r\n"},
     .expect = "HMSG _INBOX.x 1 16 16\r\nNATS/1.0 503\r\n\r\n\r\nPONG\r\n",
     .known_diff = "no-responders-nats-subject",
     .target_expect = "HMSG _INBOX.x 1 38 38\r\nNATS/1.0 503\r\nNats-Subject: nobody\r\n\r\n\r\nPONG\r\n"},
    {.name = "no_responders_503_hpub",
     .writes = {CNR "SUB _INBOX.* 1\r\nHPUB nobody _INBOX.y 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n"},
     .expect = "HMSG _INBOX.y 1 16 16\r\nNATS/1.0 503\r\n\r\n\r\nPONG\r\n",
     .known_diff = "no-responders-nats-subject",
     .target_expect = "HMSG _INBOX.y 1 38 38\r\nNATS/1.0 503\r\nNats-Subject: nobody\r\n\r\n\r\nPONG\r\n"},
    {.name = "no_responders_no_reply_sub",
     .writes = {CNR "PUB nobody _INBOX.x 2\r\nhi\r\nPING\r\n"},
     .expect = "PONG\r\n"},
    {.name = "no_responders_not_requested",
     .writes = {CVH "SUB _INBOX.x 1\r\nPUB nobody _INBOX.x 2\r\nhi\r\nPING\r\n"},
     .expect = "PONG\r\n"},
    {.name = "no_responders_with_responder",
     .writes = {CNR "SUB _INBOX.x 1\r\nSUB svc 2\r\nPUB svc _INBOX.x 2\r\nhi\r\nPING\r\n"},
     .expect = "MSG svc 2 _INBOX.x 2\r\nhi\r\nPONG\r\n"},

    /* Subject validation */
    {.name = "pedantic_invalid_publish",
     .writes = {"CONNECT {\"verbose\":false,\"pedantic\":true}\r\nSUB > 1\r\nPUB a..b 1\r\nx\r\n"
                "PUB a.* 1\r\ny\r\nPUB a.> 1\r\nz\r\nPING\r\n"},
     .expect = ERR_PUBSUBJ ERR_PUBSUBJ "MSG a.* 1 1\r\ny\r\n" ERR_PUBSUBJ "MSG a.> 1 1\r\nz\r\nPONG\r\n"},
    {.name = "pedantic_defaults_to_true",
     .writes = {CV "PUB a..b 1\r\nx\r\nPING\r\n"},
     .expect = ERR_PUBSUBJ "PONG\r\n"},
    {.name = "non_pedantic_publish",
     .writes = {"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB > 1\r\nPUB a.* 1\r\ny\r\n"
                "PUB a..b 1\r\nx\r\nPING\r\n"},
     .expect = "MSG a.* 1 1\r\ny\r\nPONG\r\n"},
    {.name = "invalid_sub_subjects",
     .writes = {CV "SUB a..b 1\r\nSUB a.>.b 2\r\nSUB .a 3\r\nSUB a.*x 4\r\nPUB a.*x 1\r\nz\r\nPING\r\n"},
     .expect = ERR_SUBJ ERR_SUBJ ERR_SUBJ "MSG a.*x 4 1\r\nz\r\nPONG\r\n"},

    /* Protocol errors */
    {.name = "unknown_op", .writes = {CV "FOO bar\r\nPING\r\n"}, .expect = ERR_UNKNOWN, .closed = 1},
    {.name = "client_sends_msg", .writes = {CV "MSG foo 1 1\r\na\r\n"}, .expect = ERR_UNKNOWN, .closed = 1},
    {.name = "empty_line", .writes = {CV "\r\nPING\r\n"}, .expect = ERR_UNKNOWN, .closed = 1},
    {.name = "payload_size_mismatch",
     .writes = {CV "PUB foo 2\r\nhello\r\nPING\r\n"},
     .expect = ERR_UNKNOWN,
     .closed = 1},
    {.name = "unsub_missing_sid", .writes = {CV "UNSUB\r\n"}, .expect = ERR_UNKNOWN, .closed = 1},
    {.name = "pub_bad_size", .writes = {CV "PUB foo abc\r\n"}, .expect = "", .closed = 1},
    {.name = "pub_too_many_args", .writes = {CV "PUB a b c 1\r\n"}, .expect = "", .closed = 1},
    {.name = "sub_missing_sid", .writes = {CV "SUB foo\r\n"}, .expect = "", .closed = 1},
    {.name = "client_sends_err", .writes = {CV "-ERR 'boom'\r\n"}, .expect = "", .closed = 1},
    {.name = "client_sends_info", .writes = {CV "INFO {\"x\":1}\r\nPING\r\n"}, .expect = "PONG\r\n"},
    {.name = "oversize_pub",
     .writes = {CV "PUB foo 1048577\r\n"},
     .expect = "-ERR 'Maximum Payload Violation'\r\n",
     .closed = 1},
    {.name = "oversize_hpub",
     .writes = {CVH "HPUB foo 12 1048577\r\n"},
     .expect = "-ERR 'Maximum Payload Violation'\r\n",
     .closed = 1},
    {.name = "control_line_too_long",
     .writes = {CV, g_long_pub},
     .expect = "-ERR 'maximum control line exceeded'\r\n",
     .closed = 1},

    /* Authentication (extra server args) */
    {.name = "auth_no_credentials",
     .args = USERPASS,
     .auth = 1,
     .writes = {CV "PING\r\n"},
     .expect = ERR_AUTH,
     .closed = 1},
    {.name = "auth_wrong_password",
     .args = USERPASS,
     .auth = 1,
     .writes = {"CONNECT {\"verbose\":false,\"user\":\"a\",\"pass\":\"x\"}\r\nPING\r\n"},
     .expect = ERR_AUTH,
     .closed = 1},
    {.name = "auth_ping_before_connect",
     .args = USERPASS,
     .auth = 1,
     .writes = {"PING\r\n"},
     .expect = ERR_AUTH,
     .closed = 1},
    {.name = "auth_sub_before_connect",
     .args = USERPASS,
     .auth = 1,
     .writes = {"SUB foo 1\r\n"},
     .expect = ERR_AUTH,
     .closed = 1},
    {.name = "auth_ok",
     .args = USERPASS,
     .auth = 1,
     .writes = {"CONNECT {\"verbose\":false,\"user\":\"a\",\"pass\":\"b\"}\r\nPING\r\n"},
     .expect = "PONG\r\n"},
    {.name = "auth_ok_verbose",
     .args = USERPASS,
     .auth = 1,
     .writes = {"CONNECT {\"user\":\"a\",\"pass\":\"b\"}\r\nPING\r\n"},
     .expect = "+OK\r\nPONG\r\n"},
    {.name = "auth_timeout",
     .args = USERPASS,
     .auth = 1,
     .writes = {NULL}, /* say nothing: nats-server gives up after 2 s */
     .expect = "-ERR 'Authentication Timeout'\r\n",
     .closed = 1},
    {.name = "token_bad",
     .args = TOKEN,
     .auth = 1,
     .writes = {"CONNECT {\"verbose\":false,\"auth_token\":\"bad\"}\r\nPING\r\n"},
     .expect = ERR_AUTH,
     .closed = 1},
    {.name = "token_ok",
     .args = TOKEN,
     .auth = 1,
     .writes = {"CONNECT {\"verbose\":false,\"auth_token\":\"tok\"}\r\nPING\r\n"},
     .expect = "PONG\r\n"},
};

/* ---- INFO normalisation ------------------------------------------------- */

/* Keys whose values differ by server, run or connection: only presence is compared. */
static const char *MASKED_KEYS[] = {"server_id", "server_name", "version", "go",   "host",
                                    "port",      "client_id",   "client_ip", "nonce", "git_commit",
                                    "connect_urls", "cluster",  "domain",  "xkey", NULL};
/* Keys that may be present on one side only (build-dependent in nats-server). */
static const char *OPTIONAL_KEYS[] = {"git_commit", NULL};
/* What nats-server 2.9.10 sends to a plain client with the flags used here. */
static const char *RECORDED_KEYS[] = {"server_id", "server_name", "version",   "proto",
                                      "go",        "host",        "port",      "headers",
                                      "max_payload", "client_id", "client_ip", NULL};
static const char *RECORDED_VALUES[][2] = {
    {"proto", "1"}, {"headers", "true"}, {"max_payload", "1048576"}, {NULL, NULL}};

#define MAX_KEYS 64

typedef struct {
    char key[64];
    const char *val;
    size_t vlen;
} jkv;

typedef struct {
    jkv kv[MAX_KEYS];
    int n;
    int ok; /* parsed */
} info_t;

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

static const char *skip_string(const char *p, const char *end)
{
    /* p at opening quote */
    p++;
    while (p < end && *p != '"') {
        if (*p == '\\')
            p++;
        p++;
    }
    return p < end ? p + 1 : NULL;
}

static const char *skip_value(const char *p, const char *end)
{
    if (p >= end)
        return NULL;
    if (*p == '"')
        return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            if (*p == '"') {
                p = skip_string(p, end);
                if (!p)
                    return NULL;
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if (*p == '}' || *p == ']') {
                depth--;
                if (depth == 0)
                    return p + 1;
            }
            p++;
        }
        return NULL;
    }
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ')
        p++;
    return p;
}

static void parse_info(const char *line, info_t *info)
{
    memset(info, 0, sizeof(*info));
    if (strncmp(line, "INFO ", 5) != 0)
        return;
    const char *p = line + 5, *end = line + strlen(line);
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') {
        info->ok = 1;
        return;
    }
    while (p < end) {
        if (*p != '"')
            return;
        const char *ks = p + 1, *ke = skip_string(p, end);
        if (!ke)
            return;
        p = skip_ws(ke, end);
        if (p >= end || *p != ':')
            return;
        p = skip_ws(p + 1, end);
        const char *vs = p, *ve = skip_value(p, end);
        if (!ve)
            return;
        if (info->n < MAX_KEYS) {
            jkv *kv = &info->kv[info->n++];
            size_t kl = (size_t)(ke - 1 - ks);
            if (kl >= sizeof(kv->key))
                kl = sizeof(kv->key) - 1;
            memcpy(kv->key, ks, kl);
            kv->key[kl] = 0;
            kv->val = vs;
            kv->vlen = (size_t)(ve - vs);
        }
        p = skip_ws(ve, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}') {
            info->ok = 1;
            /* only whitespace may follow */
            p = skip_ws(p + 1, end);
            if (p != end)
                info->ok = 0;
        }
        return;
    }
}

static const jkv *info_get(const info_t *in, const char *key)
{
    for (int i = 0; i < in->n; i++)
        if (strcmp(in->kv[i].key, key) == 0)
            return &in->kv[i];
    return NULL;
}

static int in_list(const char *const *list, const char *key)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(list[i], key) == 0)
            return 1;
    return 0;
}

/* Compare `got` with `want`; print problems prefixed by `who`. 0 = equal. */
static int compare_info(const char *who, const info_t *got, const info_t *want)
{
    int bad = 0;
    if (!got->ok) {
        printf("    %s: INFO is not a JSON object\n", who);
        return 1;
    }
    for (int i = 0; i < want->n; i++) {
        const jkv *w = &want->kv[i];
        const jkv *g = info_get(got, w->key);
        if (!g) {
            if (!in_list(OPTIONAL_KEYS, w->key)) {
                printf("    %s: INFO lacks key \"%s\"\n", who, w->key);
                bad = 1;
            }
            continue;
        }
        if (in_list(MASKED_KEYS, w->key))
            continue;
        if (g->vlen != w->vlen || memcmp(g->val, w->val, w->vlen) != 0) {
            printf("    %s: INFO \"%s\" is %.*s, want %.*s\n", who, w->key, (int)g->vlen, g->val,
                   (int)w->vlen, w->val);
            bad = 1;
        }
    }
    for (int i = 0; i < got->n; i++)
        if (!info_get(want, got->kv[i].key) && !in_list(OPTIONAL_KEYS, got->kv[i].key)) {
            printf("    %s: INFO has unexpected key \"%s\"\n", who, got->kv[i].key);
            bad = 1;
        }
    return bad;
}

/* Build the recorded INFO of nats-server 2.9.10 for a case. */
static void recorded_info(const wcase *c, info_t *in, char *storage, size_t cap)
{
    size_t o = 0;
    o += (size_t)snprintf(storage + o, cap - o, "INFO {");
    int first = 1;
    for (int i = 0; RECORDED_KEYS[i]; i++) {
        const char *k = RECORDED_KEYS[i];
        const char *v = "\"x\"";
        for (int j = 0; RECORDED_VALUES[j][0]; j++)
            if (strcmp(RECORDED_VALUES[j][0], k) == 0)
                v = RECORDED_VALUES[j][1];
        o += (size_t)snprintf(storage + o, cap - o, "%s\"%s\":%s", first ? "" : ",", k, v);
        first = 0;
    }
    if (c->auth)
        o += (size_t)snprintf(storage + o, cap - o, ",\"auth_required\":true");
    snprintf(storage + o, cap - o, "}");
    parse_info(storage, in);
}

/* ---- running a case ------------------------------------------------------ */

typedef struct {
    char info[8192];
    th_buf out;
    int ran;
} run_result;

static int run_case(const char *bin, const wcase *c, run_result *r)
{
    th_server srv;
    memset(r->info, 0, sizeof(r->info));
    th_buf_init(&r->out);
    r->ran = 0;
    if (th_server_start(&srv, bin, c->args) != 0)
        return -1;
    int rc = -1;
    int fd = th_raw_connect(srv.port, 0, 5000);
    if (fd < 0) {
        printf("    %s: cannot connect\n", bin);
        goto out;
    }
    if (th_raw_read_info(fd, r->info, sizeof(r->info), &r->out, 5000) < 0) {
        printf("    %s: no INFO line\n", bin);
        goto out;
    }
    int write_failed = 0;
    for (int i = 0; i < MAX_WRITES && c->writes[i] && !write_failed; i++) {
        const char *w = c->writes[i];
        size_t n = strlen(w);
        if (c->byte_by_byte) {
            for (size_t k = 0; k < n; k++)
                if (th_raw_write(fd, w + k, 1, 5000) != 0) {
                    write_failed = 1;
                    break;
                }
        } else if (th_raw_write(fd, w, n, 5000) != 0) {
            write_failed = 1;
        }
        if (i > 0 || c->writes[i + 1])
            th_sleep_ms(20); /* let each write arrive as its own segment */
    }
    /* A server that closes early may make a later write fail: that is fine,
     * what it sent and the close are what gets compared. */
    if (c->closed)
        th_raw_read(fd, &r->out, NULL, 3000, 5000);
    else
        th_raw_read(fd, &r->out, "PONG\r\n", 150, 5000);
    r->ran = 1;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (th_server_stop(&srv) != 0) {
        printf("    %s: server crashed\n", bin);
        rc = -1;
    }
    return rc;
}

static void print_bytes(const char *label, const char *p, size_t n, int closed)
{
    char *e = th_escape(p, n, 600);
    printf("    %-22s \"%s\"%s\n", label, e, closed ? " [closed]" : " [open]");
    free(e);
}

static int same_bytes(const th_buf *b, const char *want, int want_closed)
{
    size_t n = strlen(want);
    return b->len == n && memcmp(b->data, want, n) == 0 && !!b->closed == !!want_closed;
}

static int bin_available(const char *bin)
{
    if (strchr(bin, '/'))
        return access(bin, X_OK) == 0;
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    char *dup = strdup(path), *save = NULL;
    int found = 0;
    for (char *dir = strtok_r(dup, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
        char full[4096];
        snprintf(full, sizeof(full), "%s/%s", dir, bin);
        found = access(full, X_OK) == 0;
    }
    free(dup);
    return found;
}

static int is_reference(const char *target, const char *ref)
{
    if (strcmp(target, ref) == 0)
        return 1;
    const char *base = strrchr(target, '/');
    base = base ? base + 1 : target;
    if (strcmp(base, "nats-server") == 0)
        return 1;
    char a[4096], b[4096];
    if (realpath(target, a) && realpath(ref, b) && strcmp(a, b) == 0)
        return 1;
    return 0;
}

/* Every known-difference key must be described in docs/wire-compat.md. */
static int check_doc(void)
{
    const char *path = getenv("EMBER_WIRE_COMPAT_DOC");
    if (!path || !*path)
        path = EMBER_WIRE_COMPAT_DOC;
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("note: %s not found; known differences not checked against it\n", path);
        return 0;
    }
    static char doc[1 << 20];
    size_t n = fread(doc, 1, sizeof(doc) - 1, f);
    doc[n] = 0;
    fclose(f);
    int bad = 0;
    for (size_t i = 0; i < sizeof(KNOWN_DIFFS) / sizeof(*KNOWN_DIFFS); i++)
        if (!strstr(doc, KNOWN_DIFFS[i].key)) {
            printf("FAIL known difference \"%s\" is not described in %s\n", KNOWN_DIFFS[i].key, path);
            bad = 1;
        }
    for (size_t i = 0; i < sizeof(CASES) / sizeof(*CASES); i++) {
        const char *k = CASES[i].known_diff;
        if (!k)
            continue;
        int listed = 0;
        for (size_t j = 0; j < sizeof(KNOWN_DIFFS) / sizeof(*KNOWN_DIFFS); j++)
            listed |= strcmp(KNOWN_DIFFS[j].key, k) == 0;
        if (!listed) {
            printf("FAIL case %s names unknown difference \"%s\"\n", CASES[i].name, k);
            bad = 1;
        }
    }
    return bad;
}

int main(int argc, char **argv)
{
    int print = 0;
    const char *filter = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--print") == 0)
            print = 1;
        else
            filter = argv[i];
    }
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    memcpy(g_long_pub, "PUB ", 4);
    memset(g_long_pub + 4, 'a', 5000);
    memcpy(g_long_pub + 5004, " 1\r\n", 5);
    {
        const char *pre = "CONNECT {\"verbose\":false,\"name\":\"";
        size_t pl = strlen(pre);
        memcpy(g_long_connect, pre, pl);
        memset(g_long_connect + pl, 'x', 5000);
        memcpy(g_long_connect + pl + 5000, "\"}\r\nPING\r\n", 11);
    }

    const char *ref = getenv("EMBER_TEST_REFERENCE");
    if (!ref || !*ref)
        ref = "nats-server";
    const char *target = getenv("EMBER_TEST_SERVER");
    int only_ref = !target || !*target || is_reference(target, ref);
    int have_ref = bin_available(ref);
    if (only_ref && !have_ref) {
        printf("reference server %s not found\n0 passed, 1 failed\n", ref);
        return 1;
    }
    if (only_ref)
        printf("wire: %s against the recorded nats-server 2.9.10 conversations\n", ref);
    else if (have_ref)
        printf("wire: %s compared with %s (live) and the recordings\n", target, ref);
    else
        printf("wire: %s compared with the recordings (%s not found)\n", target, ref);

    int passed = 0, failed = check_doc();
    int64_t t0 = th_now_ms();
    for (size_t i = 0; i < sizeof(CASES) / sizeof(*CASES); i++) {
        const wcase *c = &CASES[i];
        if (filter && !strstr(c->name, filter))
            continue;
        int bad = 0, known = 0;
        char recbuf[2048];
        info_t rec, ri, ti;
        recorded_info(c, &rec, recbuf, sizeof(recbuf));
        run_result rr, tr;
        memset(&rr, 0, sizeof(rr));
        memset(&tr, 0, sizeof(tr));

        if (have_ref) {
            if (run_case(ref, c, &rr) != 0) {
                bad = 1;
            } else {
                parse_info(rr.info, &ri);
                if (compare_info("reference vs recording", &ri, &rec))
                    bad = 1;
                if (!same_bytes(&rr.out, c->expect, c->closed)) {
                    printf("    reference differs from the recording:\n");
                    print_bytes("recorded (2.9.10):", c->expect, strlen(c->expect), c->closed);
                    print_bytes("reference sent:", rr.out.data, rr.out.len, rr.out.closed);
                    bad = 1;
                }
                if (print) {
                    printf("    INFO: %s\n", rr.info);
                    print_bytes("reference sent:", rr.out.data, rr.out.len, rr.out.closed);
                }
            }
        }
        if (!only_ref) {
            if (run_case(target, c, &tr) != 0) {
                bad = 1;
            } else {
                parse_info(tr.info, &ti);
                if (compare_info("target INFO", &ti, rr.ran ? &ri : &rec))
                    bad = 1;
                const char *want = rr.ran ? rr.out.data : c->expect;
                size_t wlen = rr.ran ? rr.out.len : strlen(c->expect);
                int wclosed = rr.ran ? rr.out.closed : c->closed;
                int same = tr.out.len == wlen && memcmp(tr.out.data, want, wlen) == 0 &&
                           !!tr.out.closed == !!wclosed;
                if (c->known_diff && c->target_expect) {
                    /* A documented difference is a requirement, not a tolerance. */
                    known = 1;
                    if (!same_bytes(&tr.out, c->target_expect, c->target_closed)) {
                        printf("    the server under test must send the documented form "
                               "(docs/wire-compat.md, %s):\n",
                               c->known_diff);
                        print_bytes("should send:", c->target_expect, strlen(c->target_expect),
                                    c->target_closed);
                        print_bytes("target sent:", tr.out.data, tr.out.len, tr.out.closed);
                        bad = 1;
                    }
                } else if (!same && c->known_diff) {
                    known = 1;
                } else if (!same) {
                    print_bytes("reference sent:", want, wlen, wclosed);
                    print_bytes("target sent:", tr.out.data, tr.out.len, tr.out.closed);
                    bad = 1;
                }
                if (print) {
                    printf("    INFO: %s\n", tr.info);
                    print_bytes("target sent:", tr.out.data, tr.out.len, tr.out.closed);
                }
            }
        }
        if (bad) {
            printf("FAIL %s\n", c->name);
            failed++;
        } else if (known) {
            printf("ok   %s (known difference: %s)\n", c->name, c->known_diff);
            passed++;
        } else {
            printf("ok   %s\n", c->name);
            passed++;
        }
        th_buf_free(&rr.out);
        th_buf_free(&tr.out);
    }
    printf("total %lld ms\n", (long long)(th_now_ms() - t0));
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
