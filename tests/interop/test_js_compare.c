/*
 * JetStream API comparison: the same raw requests ($JS.API.*, stream
 * publishes, pull requests, direct gets) sent to the reference nats-server
 * and to the server under test, both started fresh with `-js -sd <dir>` for
 * every case; the replies are compared.
 *
 *   test_js_compare [--print] [filter]
 *
 * Servers (as test_wire):
 *   EMBER_TEST_SERVER     server under test (default nats-server)
 *   EMBER_TEST_REFERENCE  reference nats-server (default "nats-server")
 * When both name the same binary the reference is compared with a second
 * instance of itself (which checks the comparison's masking), and the
 * expectations recorded below are checked against it either way.
 *
 * What "the same" means:
 *   - JSON replies: the same field names, recursively (objects by key,
 *     arrays element by element, with the same lengths), and the same
 *     values, except the values in SKIP_VALUES (times, ids, byte counts);
 *     fields that nats-server 2.10/2.11 added and 2.9 lacks may appear in
 *     the target's reply only (ALLOW_EXTRA). Error objects (code, err_code,
 *     description) are compared like every other value (10025 "invalid
 *     JSON" may carry ": <decoder error>" after it, as 2.10+ servers send).
 *   - Status replies (an HMSG with "NATS/1.0 <code> <description>"): the
 *     same code, description and header names/values ("Bad Request - <JSON
 *     decoder error>" only up to the " - ").
 *   - Messages (direct get, pull delivery): the same subject, payload,
 *     headers (Nats-Time-Stamp value masked) and ack-reply tokens (the
 *     timestamp token masked).
 *   - No reply / no responders: the same outcome.
 * Each step may also name substrings the reference's reply must contain
 * (recorded from nats-server 2.9.10), so the reference is checked too.
 *
 * Every wait is bounded (2 s per request); nothing asserts on timing.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REQ_TIMEOUT_MS 2000

/* ---- what may differ ----------------------------------------------------- */

/*
 * Fields the server under test may send although nats-server 2.9 does not:
 * added in 2.10 or 2.11 (Ember advertises 2.11). "parent" is the name of the
 * enclosing object ("*" for any). Only tolerated as extras on the target
 * side; a field the reference sends must always be there.
 */
typedef struct {
    const char *parent, *key, *why;
} field_rule;

static const field_rule ALLOW_EXTRA[] = {
    /* StreamConfig */
    {"config", "compression", "2.10: stream compression (\"none\"/\"s2\")"},
    {"config", "first_seq", "2.10: stream first sequence (omitempty)"},
    {"config", "subject_transform", "2.10: subject transform (omitempty)"},
    {"config", "consumer_limits", "2.10: default consumer limits for the stream"},
    {"config", "allow_msg_ttl", "2.11: per-message TTL switch"},
    {"config", "subject_delete_marker_ttl", "2.11: delete markers (omitempty)"},
    {"config", "metadata", "2.10: metadata; 2.11 always fills _nats.* keys"},
    /* ConsumerConfig */
    {"config", "filter_subjects", "2.10: multiple filters (omitempty)"},
    {"config", "pause_until", "2.11: consumer pause (omitempty)"},
    {"config", "priority_groups", "2.11: priority groups (omitempty)"},
    {"config", "priority_policy", "2.11: priority policy (omitempty)"},
    {"config", "priority_timeout", "2.11: pinned client timeout (omitempty)"},
    /* StreamInfo, ConsumerInfo */
    {"*", "ts", "2.10+: server time of the info"},
    {"*", "paused", "2.11: consumer pause state (omitempty)"},
    {"*", "pause_remaining", "2.11: consumer pause state (omitempty)"},
    {"*", "priority_groups", "2.11: priority group state (omitempty)"},
    /* Account info */
    {"api", "level", "2.11: JetStream API level"},
    {"*", "reserved_memory", "2.10+: account tier reservations"},
    {"*", "reserved_storage", "2.10+: account tier reservations"},
    /* ClusterInfo (values are skipped anyway) */
    {"cluster", "raft_group", "2.10+: raft group name"},
};

/*
 * Values that legitimately differ between two servers, compared by presence
 * only (or, for subtrees, not at all).
 */
typedef struct {
    const char *parent, *key;
    int subtree; /* ignore everything below, including field names */
    const char *why;
} value_rule;

static const value_rule SKIP_VALUES[] = {
    {"*", "created", 0, "creation time"},
    {"*", "ts", 0, "server time"},
    {"*", "time", 0, "stored message time"},
    {"*", "first_ts", 0, "time of the first message"},
    {"*", "last_ts", 0, "time of the last message"},
    {"*", "last_active", 0, "time of the last delivery/ack"},
    {"*", "bytes", 0, "stored size: per-message overhead is the store's own"},
    {"*", "memory", 0, "account memory use: store overhead"},
    {"*", "storage", 0, "account storage use: store overhead"},
    {"api", "total", 0, "API call counters: what counts as a call differs"},
    {"api", "errors", 0, "API call counters"},
    {"*", "cluster", 1, "cluster name/leader/peers are server identities"},
    {"config", "metadata", 1, "2.11 adds _nats.ver/_nats.level/_nats.req.level"},
    {"*", "domain", 0, "JetStream domain"},
};

/*
 * Error descriptions nats-server reworded after 2.9: the target may send the
 * reference's text or the newer one for that err_code.
 */
typedef struct {
    int err_code;
    const char *newer, *why;
} newer_text;

static const newer_text NEWER_DESCRIPTIONS[] = {
    {10084, "consumer in pull mode requires explicit ack policy on workqueue stream",
     "2.9: \"consumer in pull mode requires ack policy\"; reworded by 2.11"},
};

/* ---- case plumbing ------------------------------------------------------- */

#define MAX_STEPS 40

typedef struct {
    const char *subj;
    const char *body;        /* NULL: empty payload */
    const char *hdrs[7];     /* key, value, key, value, ..., NULL */
    const char *expect[4];   /* substrings of the reference's reply summary */
    int timeout_ms;          /* request timeout; 0: REQ_TIMEOUT_MS. Shorter where the
                                reference never answers (the outcome is TIMEOUT) */
} step;

typedef struct {
    const char *name;
    const char *about;
    step steps[MAX_STEPS];
} ccase;

static int g_print;

/* A reply as seen by the client. */
typedef struct {
    natsStatus st;      /* of the request */
    natsMsg *msg;       /* NULL unless st == NATS_OK */
    char kind;          /* 'J' json, 'S' status, 'M' message, 'N' no responders, 'T' timeout, 'E' */
    char *summary;      /* printable one-line summary, malloc'd */
} reply;

static void reply_free(reply *r)
{
    natsMsg_Destroy(r->msg);
    free(r->summary);
    memset(r, 0, sizeof(*r));
}

static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

static const char *hdr(natsMsg *m, const char *k)
{
    const char *v = NULL;
    if (natsMsgHeader_Get(m, k, &v) != NATS_OK)
        return NULL;
    return v;
}

static void summarize(reply *r)
{
    if (r->st == NATS_NO_RESPONDERS) {
        r->kind = 'N';
        r->summary = strdup("NO_RESPONDERS");
        return;
    }
    if (r->st == NATS_TIMEOUT) {
        r->kind = 'T';
        r->summary = strdup("TIMEOUT");
        return;
    }
    if (r->st != NATS_OK || !r->msg) {
        r->kind = 'E';
        r->summary = xasprintf("ERROR %s", natsStatus_GetText(r->st));
        return;
    }
    natsMsg *m = r->msg;
    const char *status = hdr(m, "Status");
    int len = natsMsg_GetDataLength(m);
    const char *data = natsMsg_GetData(m);
    if (status) {
        r->kind = 'S';
        const char *desc = hdr(m, "Description");
        const char **keys = NULL;
        int n = 0;
        size_t cap = 256;
        char *s = malloc(cap);
        snprintf(s, cap, "STATUS %s %s", status, desc ? desc : "");
        if (natsMsgHeader_Keys(m, &keys, &n) == NATS_OK) {
            for (int i = 0; i < n; i++) {
                if (!strcmp(keys[i], "Status") || !strcmp(keys[i], "Description"))
                    continue;
                const char *v = hdr(m, keys[i]);
                char *t = xasprintf("%s | %s: %s", s, keys[i], v ? v : "");
                free(s);
                s = t;
            }
            free((void *)keys);
        }
        r->summary = s;
        return;
    }
    if (len == 0 && !natsMsg_GetReply(m)) {
        const char **keys = NULL;
        int n = 0;
        if (natsMsgHeader_Keys(m, &keys, &n) != NATS_OK || n == 0) {
            free((void *)keys);
            r->kind = 'M';
            r->summary = strdup("EMPTY");
            return;
        }
        free((void *)keys);
    }
    if (len > 0 && data[0] == '{') {
        r->kind = 'J';
        r->summary = xasprintf("%.*s", len, data);
        return;
    }
    r->kind = 'M';
    /* Direct get replies travel on the request's inbox; consumer deliveries
     * carry the stream subject. */
    const char *subj = natsMsg_GetSubject(m);
    if (strncmp(subj, "_INBOX.", 7) == 0)
        subj = "<inbox>";
    char *s = xasprintf("MSG %s %.*s", subj, len, data);
    const char **keys = NULL;
    int n = 0;
    if (s && natsMsgHeader_Keys(m, &keys, &n) == NATS_OK) {
        for (int i = 0; i < n; i++) {
            const char *v = hdr(m, keys[i]);
            char *t = xasprintf("%s | %s: %s", s, keys[i], v ? v : "");
            free(s);
            s = t;
        }
        free((void *)keys);
    }
    r->summary = s;
}

/*
 * ACK_LAST as a step's subject: send the body (+ACK, -NAK, +TERM, +WPI) as a
 * request to the ack reply subject of the last message this side received;
 * the server answers an ack that has a reply subject with an empty message.
 */
#define ACK_LAST "@ack-last"

static natsStatus send_step(natsConnection *nc, const step *sp, const char *last_ack, reply *r)
{
    memset(r, 0, sizeof(*r));
    natsMsg *req = NULL;
    const char *subj = sp->subj;
    if (strcmp(subj, ACK_LAST) == 0) {
        if (!last_ack[0]) {
            r->st = NATS_ILLEGAL_STATE;
            summarize(r);
            return NATS_OK;
        }
        subj = last_ack;
    }
    natsStatus st = natsMsg_Create(&req, subj, NULL, sp->body,
                                   sp->body ? (int)strlen(sp->body) : 0);
    for (int i = 0; st == NATS_OK && sp->hdrs[i]; i += 2)
        st = natsMsgHeader_Add(req, sp->hdrs[i], sp->hdrs[i + 1]);
    if (st != NATS_OK) {
        natsMsg_Destroy(req);
        return st;
    }
    r->st = natsConnection_RequestMsg(&r->msg, nc, req,
                                      sp->timeout_ms ? sp->timeout_ms : REQ_TIMEOUT_MS);
    natsMsg_Destroy(req);
    summarize(r);
    return NATS_OK;
}

/* ---- comparison ------------------------------------------------------------ */

typedef struct {
    int n;
    char buf[8192];
} diffs;

static void diff(diffs *d, const char *fmt, ...)
{
    size_t used = strlen(d->buf);
    if (d->n < 20 && used < sizeof(d->buf) - 1) {
        va_list ap;
        va_start(ap, fmt);
        snprintf(d->buf + used, sizeof(d->buf) - used, "      - ");
        used = strlen(d->buf);
        vsnprintf(d->buf + used, sizeof(d->buf) - used, fmt, ap);
        used = strlen(d->buf);
        snprintf(d->buf + used, sizeof(d->buf) - used, "\n");
        va_end(ap);
    }
    d->n++;
}

static int rule_matches(const char *rp, const char *rk, const char *parent, const char *key)
{
    return strcmp(rk, key) == 0 && (strcmp(rp, "*") == 0 || strcmp(rp, parent) == 0);
}

static int allow_extra(const char *parent, const char *key)
{
    for (size_t i = 0; i < sizeof(ALLOW_EXTRA) / sizeof(*ALLOW_EXTRA); i++)
        if (rule_matches(ALLOW_EXTRA[i].parent, ALLOW_EXTRA[i].key, parent, key))
            return 1;
    return 0;
}

/* 0: compare; 1: presence only; 2: ignore subtree. */
static int skip_value(const char *parent, const char *key)
{
    for (size_t i = 0; i < sizeof(SKIP_VALUES) / sizeof(*SKIP_VALUES); i++)
        if (rule_matches(SKIP_VALUES[i].parent, SKIP_VALUES[i].key, parent, key))
            return SKIP_VALUES[i].subtree ? 2 : 1;
    return 0;
}

static int is_bool(const cJSON *j)
{
    return cJSON_IsBool(j);
}

static char *json_text(const cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    return s ? s : strdup("?");
}

/*
 * Error descriptions: equal, except that 10025 "invalid JSON" (2.9) became
 * "invalid JSON: <decoder error>" in 2.10+; the decoder's wording is the
 * server's own, so the target may append ": ..." to the reference's text.
 */
static int same_description(const cJSON *err_obj, const char *ref, const char *tgt)
{
    if (strcmp(ref, tgt) == 0)
        return 1;
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(err_obj, "err_code");
    for (size_t i = 0; code && i < sizeof(NEWER_DESCRIPTIONS) / sizeof(*NEWER_DESCRIPTIONS); i++)
        if (cJSON_IsNumber(code) && code->valuedouble == NEWER_DESCRIPTIONS[i].err_code &&
            strcmp(tgt, NEWER_DESCRIPTIONS[i].newer) == 0)
            return 1;
    if (code && cJSON_IsNumber(code) && code->valuedouble == 10025) {
        size_t n = strlen(ref);
        return strncmp(ref, tgt, n) == 0 && tgt[n] == ':' && tgt[n + 1] == ' ';
    }
    return 0;
}

/*
 * Status descriptions: equal, except "Bad Request - <JSON decoder error>"
 * (a pull request that does not parse): the decoder's wording is the
 * server's own, so only "Bad Request - " must match.
 */
static int same_status_description(const char *ref, const char *tgt)
{
    static const char bad[] = "Bad Request - ";
    if (strcmp(ref, tgt) == 0)
        return 1;
    return strncmp(ref, bad, sizeof(bad) - 1) == 0 && strncmp(tgt, bad, sizeof(bad) - 1) == 0;
}

static void cmp_json(const cJSON *r, const cJSON *t, const cJSON *r_parent_obj, const char *path,
                     const char *parent, const char *key, diffs *d)
{
    int sv = skip_value(parent, key);
    if (sv == 2)
        return;
    if (cJSON_IsObject(r) && cJSON_IsObject(t)) {
        const cJSON *c;
        cJSON_ArrayForEach(c, r)
        {
            char p[512];
            snprintf(p, sizeof(p), "%s.%s", path, c->string);
            const cJSON *tc = cJSON_GetObjectItemCaseSensitive(t, c->string);
            if (!tc) {
                if (skip_value(key, c->string) == 2)
                    continue;
                diff(d, "%s: missing (reference has it)", p);
                continue;
            }
            cmp_json(c, tc, r, p, key, c->string, d);
        }
        cJSON_ArrayForEach(c, t)
        {
            if (cJSON_GetObjectItemCaseSensitive(r, c->string))
                continue;
            if (allow_extra(key, c->string) || skip_value(key, c->string) == 2)
                continue;
            char *v = json_text(c);
            diff(d, "%s.%s: extra field (value %.80s)", path, c->string, v);
            free(v);
        }
        return;
    }
    if (cJSON_IsArray(r) && cJSON_IsArray(t)) {
        int nr = cJSON_GetArraySize(r), nt = cJSON_GetArraySize(t);
        if (nr != nt && sv == 0)
            diff(d, "%s: %d elements, reference has %d", path, nt, nr);
        int n = nr < nt ? nr : nt;
        for (int i = 0; i < n; i++) {
            char p[512];
            snprintf(p, sizeof(p), "%s[%d]", path, i);
            cmp_json(cJSON_GetArrayItem(r, i), cJSON_GetArrayItem(t, i), r, p, key, key, d);
        }
        return;
    }
    int same_type = (r->type & 0xFF) == (t->type & 0xFF) || (is_bool(r) && is_bool(t));
    if (!same_type) {
        char *a = json_text(r), *b = json_text(t);
        diff(d, "%s: type differs: reference %.80s, target %.80s", path, a, b);
        free(a);
        free(b);
        return;
    }
    if (sv)
        return;
    int equal;
    if (cJSON_IsNumber(r))
        equal = r->valuedouble == t->valuedouble;
    else if (cJSON_IsString(r))
        equal = strcmp(parent, "error") == 0 && strcmp(key, "description") == 0
                    ? same_description(r_parent_obj, r->valuestring, t->valuestring)
                    : strcmp(r->valuestring, t->valuestring) == 0;
    else if (is_bool(r))
        equal = cJSON_IsTrue(r) == cJSON_IsTrue(t);
    else
        equal = 1; /* null */
    if (!equal) {
        char *a = json_text(r), *b = json_text(t);
        diff(d, "%s: reference %.200s, target %.200s", path, a, b);
        free(a);
        free(b);
    }
}

/* Ack reply subjects: $JS.ACK.<stream>.<consumer>.<dc>.<sseq>.<dseq>.<ts>.<pending>
 * (v1, 9 tokens); compared token by token with the timestamp masked. */
static void cmp_reply_subject(const char *r, const char *t, diffs *d)
{
    if (!r && !t)
        return;
    if (!r || !t) {
        diff(d, "reply subject: reference %s, target %s", r ? r : "(none)", t ? t : "(none)");
        return;
    }
    if (strncmp(r, "$JS.ACK.", 8) != 0) {
        if (strncmp(t, "_INBOX.", 7) != 0 || strncmp(r, "_INBOX.", 7) != 0)
            if (strcmp(r, t) != 0)
                diff(d, "reply subject: reference %s, target %s", r, t);
        return;
    }
    char *a = strdup(r), *b = strdup(t), *sa = NULL, *sb = NULL;
    int i = 0;
    char *ta = strtok_r(a, ".", &sa), *tb = strtok_r(b, ".", &sb);
    for (; ta || tb; i++, ta = strtok_r(NULL, ".", &sa), tb = strtok_r(NULL, ".", &sb)) {
        if (!ta || !tb) {
            diff(d, "ack subject: %s vs reference %s: token count differs", t, r);
            break;
        }
        if (i == 7)
            continue; /* timestamp */
        if (strcmp(ta, tb) != 0) {
            diff(d, "ack subject token %d: reference %s, target %s (%s vs %s)", i, ta, tb, r, t);
            break;
        }
    }
    free(a);
    free(b);
}

static void cmp_headers(natsMsg *r, natsMsg *t, diffs *d)
{
    const char **rk = NULL, **tk = NULL;
    int nr = 0, nt = 0;
    natsMsgHeader_Keys(r, &rk, &nr);
    natsMsgHeader_Keys(t, &tk, &nt);
    for (int i = 0; i < nr; i++) {
        const char *tv = hdr(t, rk[i]), *rv = hdr(r, rk[i]);
        if (!tv)
            diff(d, "header %s missing (reference: %s)", rk[i], rv ? rv : "");
        else if (strcmp(rk[i], "Nats-Time-Stamp") != 0 && rv && strcmp(rv, tv) != 0 &&
                 !(strcmp(rk[i], "Description") == 0 && same_status_description(rv, tv)))
            diff(d, "header %s: reference %s, target %s", rk[i], rv, tv);
    }
    for (int i = 0; i < nt; i++)
        if (!hdr(r, tk[i]))
            diff(d, "extra header %s: %s", tk[i], hdr(t, tk[i]));
    free((void *)rk);
    free((void *)tk);
}

static void cmp_replies(reply *r, reply *t, diffs *d)
{
    if (r->kind != t->kind) {
        diff(d, "reply kind differs:\n          reference: %.400s\n          target:    %.400s",
             r->summary, t->summary);
        return;
    }
    switch (r->kind) {
    case 'J': {
        cJSON *jr = cJSON_Parse(r->summary), *jt = cJSON_Parse(t->summary);
        if (!jr || !jt)
            diff(d, "unparsable JSON: %s", !jr ? r->summary : t->summary);
        else
            cmp_json(jr, jt, NULL, "$", "", "", d);
        cJSON_Delete(jr);
        cJSON_Delete(jt);
        break;
    }
    case 'S': {
        const char *rs = hdr(r->msg, "Status"), *ts = hdr(t->msg, "Status");
        const char *rd = hdr(r->msg, "Description"), *td = hdr(t->msg, "Description");
        if (strcmp(rs, ts) != 0 || !same_status_description(rd ? rd : "", td ? td : ""))
            diff(d, "status: reference \"%s %s\", target \"%s %s\"", rs, rd ? rd : "", ts,
                 td ? td : "");
        cmp_headers(r->msg, t->msg, d);
        if (natsMsg_GetDataLength(r->msg) != natsMsg_GetDataLength(t->msg))
            diff(d, "status body: reference %d bytes, target %d bytes",
                 natsMsg_GetDataLength(r->msg), natsMsg_GetDataLength(t->msg));
        break;
    }
    case 'M': {
        int inboxes = strncmp(natsMsg_GetSubject(r->msg), "_INBOX.", 7) == 0 &&
                      strncmp(natsMsg_GetSubject(t->msg), "_INBOX.", 7) == 0;
        if (!inboxes && strcmp(natsMsg_GetSubject(r->msg), natsMsg_GetSubject(t->msg)) != 0)
            diff(d, "subject: reference %s, target %s", natsMsg_GetSubject(r->msg),
                 natsMsg_GetSubject(t->msg));
        int lr = natsMsg_GetDataLength(r->msg), lt = natsMsg_GetDataLength(t->msg);
        if (lr != lt || memcmp(natsMsg_GetData(r->msg), natsMsg_GetData(t->msg), lr) != 0)
            diff(d, "payload: reference %.*s, target %.*s", lr, natsMsg_GetData(r->msg), lt,
                 natsMsg_GetData(t->msg));
        cmp_headers(r->msg, t->msg, d);
        cmp_reply_subject(natsMsg_GetReply(r->msg), natsMsg_GetReply(t->msg), d);
        break;
    }
    default:
        if (strcmp(r->summary, t->summary) != 0)
            diff(d, "reference %s, target %s", r->summary, t->summary);
    }
}

/* ---- servers ------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

typedef struct {
    th_server srv;
    char dir[64];
    natsConnection *nc;
    int started;
} side;

static int side_start(side *s, const char *bin)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "/tmp/ember-jscmp-XXXXXX");
    if (!mkdtemp(s->dir)) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    const char *args[] = {"-js", "-sd", s->dir, NULL};
    if (th_server_start(&s->srv, bin, args) != 0)
        return -1;
    s->started = 1;
    natsOptions *o = th_opts_new(&s->srv);
    if (!o)
        return -1;
    natsStatus st = th_connect(&s->srv, o, &s->nc);
    natsOptions_Destroy(o);
    if (st != NATS_OK) {
        fprintf(stderr, "connect to %s: %s\n", bin, natsStatus_GetText(st));
        return -1;
    }
    return 0;
}

static int side_stop(side *s, int dump)
{
    int rc = 0;
    natsConnection_Destroy(s->nc);
    s->nc = NULL;
    if (s->started) {
        if (dump)
            th_server_dump_log(&s->srv, 3000);
        rc = th_server_stop(&s->srv);
    }
    if (s->dir[0])
        nftw(s->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    s->dir[0] = 0;
    s->started = 0;
    return rc;
}

/* ---- cases ----------------------------------------------------------------- */

#define API "$JS.API."
#define T_ERR(code, err) "\"error\":{\"code\":" #code ",\"err_code\":" #err
#define NOHDR {NULL}
#define EXPECT(...) {__VA_ARGS__}

static const ccase CASES[] = {
    {"account_info",
     "$JS.API.INFO before and after creating a stream",
     {
         {API "INFO", NULL, NOHDR,
          EXPECT("\"type\":\"io.nats.jetstream.api.v1.account_info_response\"",
                 "\"streams\":0", "\"limits\":{")},
         {API "STREAM.CREATE.S", "{\"name\":\"S\",\"subjects\":[\"s.>\"]}", NOHDR, EXPECT(NULL)},
         {API "INFO", "", NOHDR, EXPECT("\"streams\":1", "\"consumers\":0")},
     }},
    {"stream_create",
     "stream create: minimal, full, idempotent, conflicting and invalid configs",
     {
         {API "STREAM.CREATE.S", "{\"name\":\"S\",\"subjects\":[\"s.>\"]}", NOHDR,
          EXPECT("\"type\":\"io.nats.jetstream.api.v1.stream_create_response\"",
                 "\"did_create\":true", "\"max_msgs\":-1", "\"duplicate_window\":120000000000")},
         /* identical again: the existing stream */
         {API "STREAM.CREATE.S", "{\"name\":\"S\",\"subjects\":[\"s.>\"]}", NOHDR,
          EXPECT("stream_create_response\"")},
         {API "STREAM.CREATE.M",
          "{\"name\":\"M\",\"description\":\"d\",\"subjects\":[\"m.a\",\"m.b\"],\"storage\":"
          "\"memory\",\"retention\":\"limits\",\"max_msgs\":10,\"max_bytes\":100000,\"max_age\":"
          "60000000000,\"max_msgs_per_subject\":3,\"max_msg_size\":1000,\"discard\":\"new\","
          "\"duplicate_window\":5000000000,\"allow_direct\":true,\"allow_rollup_hdrs\":true,"
          "\"deny_delete\":true,\"max_consumers\":5}",
          NOHDR, EXPECT("\"storage\":\"memory\"", "\"discard\":\"new\"")},
         {API "STREAM.CREATE.S", "{\"name\":\"S\",\"subjects\":[\"s.>\"],\"max_msgs\":5}", NOHDR,
          EXPECT(T_ERR(400, 10058),
                 "stream name already in use with a different configuration")},
         {API "STREAM.CREATE.X", "{\"name\":\"Y\",\"subjects\":[\"y\"]}", NOHDR,
          EXPECT(T_ERR(400, 10056), "stream name in subject does not match request")},
         {API "STREAM.CREATE.O", "{\"name\":\"O\",\"subjects\":[\"s.a\"]}", NOHDR,
          EXPECT(T_ERR(400, 10065), "subjects overlap with an existing stream")},
         {API "STREAM.CREATE.W",
          "{\"name\":\"W\",\"subjects\":[\"w\"],\"retention\":\"workqueue\",\"storage\":"
          "\"memory\"}",
          NOHDR, EXPECT("\"retention\":\"workqueue\"")},
         {API "STREAM.CREATE.I",
          "{\"name\":\"I\",\"subjects\":[\"i\"],\"retention\":\"interest\"}", NOHDR,
          EXPECT("\"retention\":\"interest\"")},
         {API "STREAM.CREATE.D",
          "{\"name\":\"D\",\"subjects\":[\"d\"],\"duplicate_window\":5000000000,\"max_age\":"
          "1000000000}",
          NOHDR, EXPECT(T_ERR(500, 10052))},
         {API "STREAM.CREATE.SEAL", "{\"name\":\"SEAL\",\"subjects\":[\"seal\"],\"sealed\":true}",
          NOHDR, EXPECT(T_ERR(500, 10052), "stream configuration for create can not be sealed")},
         {API "STREAM.CREATE.N", "{\"name\":\"N\",\"subjects\":[\"n\"],\"retention\":\"bogus\"}",
          NOHDR, EXPECT(T_ERR(400, 10025))},
         {API "STREAM.CREATE.B", "{bad json", NOHDR, EXPECT(T_ERR(400, 10025))},
         {API "STREAM.CREATE.B", NULL, NOHDR, EXPECT(T_ERR(400, 10025))},
         /* no name: it does not match the subject's */
         {API "STREAM.CREATE.E", "{}", NOHDR, EXPECT(T_ERR(400, 10056))},
     }},
    {"stream_info_update_delete",
     "stream info (missing, filters), names/list, update, delete",
     {
         {API "STREAM.INFO.NOPE", NULL, NOHDR,
          EXPECT("\"type\":\"io.nats.jetstream.api.v1.stream_info_response\"",
                 T_ERR(404, 10059), "\"description\":\"stream not found\"")},
         {API "STREAM.CREATE.S", "{\"name\":\"S\",\"subjects\":[\"s.>\"]}", NOHDR, EXPECT(NULL)},
         {"s.a", "one", NOHDR, EXPECT("{\"stream\":\"S\", \"seq\":1}")},
         {"s.a", "two", NOHDR, EXPECT("\"seq\":2")},
         {"s.b", "three", NOHDR, EXPECT("\"seq\":3")},
         {API "STREAM.INFO.S", NULL, NOHDR,
          EXPECT("\"messages\":3", "\"first_seq\":1", "\"last_seq\":3", "\"num_subjects\":2")},
         {API "STREAM.INFO.S", "{\"subjects_filter\":\">\"}", NOHDR,
          EXPECT("\"subjects\":{\"s.a\":2,\"s.b\":1}")},
         {API "STREAM.MSG.DELETE.S", "{\"seq\":2}", NOHDR, EXPECT("\"success\":true")},
         {API "STREAM.INFO.S", "{\"deleted_details\":true}", NOHDR,
          EXPECT("\"deleted\":[2]", "\"num_deleted\":1")},
         {API "STREAM.NAMES", NULL, NOHDR,
          EXPECT("\"type\":\"io.nats.jetstream.api.v1.stream_names_response\"",
                 "\"streams\":[\"S\"]", "\"total\":1")},
         {API "STREAM.NAMES", "{\"subject\":\"s.a\"}", NOHDR, EXPECT("\"streams\":[\"S\"]")},
         {API "STREAM.NAMES", "{\"subject\":\"zzz\"}", NOHDR, EXPECT("\"total\":0")},
         {API "STREAM.LIST", NULL, NOHDR,
          EXPECT("\"type\":\"io.nats.jetstream.api.v1.stream_list_response\"", "\"total\":1")},
         {API "STREAM.UPDATE.S", "{\"name\":\"S\",\"subjects\":[\"s.>\"],\"max_msgs\":1}",
          NOHDR,
          EXPECT("\"type\":\"io.nats.jetstream.api.v1.stream_update_response\"",
                 "\"max_msgs\":1", "\"messages\":1")},
         {API "STREAM.UPDATE.S", "{\"name\":\"S\",\"subjects\":[\"s.>\"],\"storage\":\"memory\"}",
          NOHDR, EXPECT(T_ERR(500, 10052), "can not change storage type")},
         {API "STREAM.UPDATE.NOPE", "{\"name\":\"NOPE\",\"subjects\":[\"nope\"]}", NOHDR,
          EXPECT(T_ERR(404, 10059))},
         {API "STREAM.UPDATE.S", "{\"name\":\"X\",\"subjects\":[\"s.>\"]}", NOHDR,
          EXPECT(T_ERR(400, 10056))},
         {API "STREAM.DELETE.S", NULL, NOHDR,
          EXPECT("\"type\":\"io.nats.jetstream.api.v1.stream_delete_response\"",
                 "\"success\":true")},
         {API "STREAM.DELETE.S", NULL, NOHDR, EXPECT(T_ERR(404, 10059))},
         {API "STREAM.NAMES", NULL, NOHDR, EXPECT("\"total\":0")},
         {API "STREAM.LIST", NULL, NOHDR, EXPECT("\"total\":0")},
     }},
    {"msg_get_delete_purge",
     "STREAM.MSG.GET (seq, last_by_subj incl. wildcard, next_by_subj, misses), "
     "MSG.DELETE, PURGE",
     {
         {API "STREAM.CREATE.S", "{\"name\":\"S\",\"subjects\":[\"s.>\"]}", NOHDR, EXPECT(NULL)},
         {"s.a", "one", {"X-Hdr", "v1"}, EXPECT("\"seq\":1")},
         {"s.b", "two", NOHDR, EXPECT("\"seq\":2")},
         {"s.a", "three", NOHDR, EXPECT("\"seq\":3")},
         {"s.c.d", "four", NOHDR, EXPECT("\"seq\":4")},
         {API "STREAM.MSG.GET.S", "{\"seq\":1}", NOHDR,
          EXPECT("\"type\":\"io.nats.jetstream.api.v1.stream_msg_get_response\"",
                 "\"subject\":\"s.a\"", "\"hdrs\":", "\"data\":\"b25l\"")},
         {API "STREAM.MSG.GET.S", "{\"seq\":99}", NOHDR,
          EXPECT(T_ERR(404, 10037), "\"description\":\"no message found\"")},
         {API "STREAM.MSG.GET.S", "{\"last_by_subj\":\"s.a\"}", NOHDR, EXPECT("\"seq\":3")},
         {API "STREAM.MSG.GET.S", "{\"last_by_subj\":\"s.*\"}", NOHDR, EXPECT("\"seq\":3")},
         {API "STREAM.MSG.GET.S", "{\"last_by_subj\":\"s.>\"}", NOHDR, EXPECT("\"seq\":4")},
         {API "STREAM.MSG.GET.S", "{\"next_by_subj\":\"s.a\",\"seq\":2}", NOHDR,
          EXPECT("\"seq\":3")},
         {API "STREAM.MSG.GET.S", "{\"last_by_subj\":\"zzz\"}", NOHDR,
          EXPECT(T_ERR(404, 10037))},
         {API "STREAM.MSG.GET.NOPE", "{\"seq\":1}", NOHDR, EXPECT(T_ERR(404, 10059))},
         {API "STREAM.MSG.GET.S", "{bad", NOHDR, EXPECT(T_ERR(400, 10025))},
         {API "STREAM.MSG.GET.S", NULL, NOHDR,
          EXPECT(T_ERR(400, 10003), "\"description\":\"bad request\"")},
         {API "STREAM.MSG.GET.S", "{\"seq\":1,\"last_by_subj\":\"s.a\"}", NOHDR,
          EXPECT(T_ERR(400, 10003))},
         {API "STREAM.MSG.DELETE.S", "{\"seq\":2}", NOHDR,
          EXPECT("\"type\":\"io.nats.jetstream.api.v1.stream_msg_delete_response\"",
                 "\"success\":true")},
         /* Deleting it again: an erased message is "sequence N not found" (10043). */
         {API "STREAM.MSG.DELETE.S", "{\"seq\":2}", NOHDR,
          EXPECT(T_ERR(400, 10043), "\"description\":\"sequence 2 not found\"")},
         /* Beyond the last sequence: the file store's own error text. */
         {API "STREAM.MSG.DELETE.S", "{\"seq\":99}", NOHDR,
          EXPECT(T_ERR(500, 10057), "\"description\":\"stream store EOF\"")},
         {API "STREAM.MSG.DELETE.S", "{\"seq\":3,\"no_erase\":true}", NOHDR,
          EXPECT("\"success\":true")},
         {API "STREAM.MSG.DELETE.NOPE", "{\"seq\":1}", NOHDR, EXPECT(T_ERR(404, 10059))},
         {"s.a", "five", NOHDR, EXPECT("\"seq\":5")},
         {"s.a", "six", NOHDR, EXPECT("\"seq\":6")},
         {API "STREAM.PURGE.S", "{\"seq\":2,\"keep\":1}", NOHDR, EXPECT(T_ERR(400, 10003))},
         {API "STREAM.PURGE.S", "{\"filter\":\"s.a\",\"keep\":1}", NOHDR,
          EXPECT("\"type\":\"io.nats.jetstream.api.v1.stream_purge_response\"",
                 "\"success\":true", "\"purged\":2")},
         {API "STREAM.PURGE.S", "{\"seq\":5}", NOHDR, EXPECT("\"purged\":1")},
         {API "STREAM.PURGE.S", NULL, NOHDR, EXPECT("\"purged\":1")},
         {API "STREAM.PURGE.S", "{bad", NOHDR, EXPECT(T_ERR(400, 10025))},
         {API "STREAM.PURGE.NOPE", NULL, NOHDR, EXPECT(T_ERR(404, 10059))},
         {API "STREAM.INFO.S", NULL, NOHDR,
          EXPECT("\"messages\":0", "\"first_seq\":7", "\"last_seq\":6")},
     }},
    {"publish",
     "stream publishes: PubAck, dedupe, expectation headers, limits",
     {
         {API "STREAM.CREATE.S", "{\"name\":\"S\",\"subjects\":[\"s.>\"]}", NOHDR, EXPECT(NULL)},
         {API "STREAM.CREATE.N",
          "{\"name\":\"N\",\"subjects\":[\"n\"],\"max_msgs\":1,\"discard\":\"new\"}", NOHDR,
          EXPECT(NULL)},
         {API "STREAM.CREATE.NB",
          "{\"name\":\"NB\",\"subjects\":[\"nb\"],\"max_bytes\":60,\"discard\":\"new\"}", NOHDR,
          EXPECT(NULL)},
         {API "STREAM.CREATE.Z", "{\"name\":\"Z\",\"subjects\":[\"z\"],\"max_msg_size\":8}",
          NOHDR, EXPECT(NULL)},
         {"s.a", "x", NOHDR, EXPECT("{\"stream\":\"S\", \"seq\":1}")},
         {"s.a", "x", {"Nats-Msg-Id", "id1"}, EXPECT("{\"stream\":\"S\", \"seq\":2}")},
         {"s.a", "y", {"Nats-Msg-Id", "id1"},
          EXPECT("{\"stream\":\"S\", \"seq\":2,\"duplicate\": true}")},
         {"s.a", "x", {"Nats-Expected-Last-Sequence", "1"},
          EXPECT("\"stream\":\"S\"", T_ERR(400, 10071), "wrong last sequence: 2")},
         {"s.a", "x", {"Nats-Expected-Stream", "OTHER"},
          EXPECT(T_ERR(400, 10060), "expected stream does not match")},
         {"s.a", "x", {"Nats-Expected-Last-Msg-Id", "nope"},
          EXPECT(T_ERR(400, 10070), "wrong last msg ID: id1")},
         {"s.a", "x", {"Nats-Expected-Last-Subject-Sequence", "1"},
          EXPECT(T_ERR(400, 10071), "wrong last sequence: 2")},
         {"s.b", "x", {"Nats-Expected-Last-Subject-Sequence", "0"}, EXPECT("\"seq\":3")},
         {"s.a", "x", {"Nats-Expected-Last-Sequence", "3", "Nats-Expected-Stream", "S"},
          EXPECT("{\"stream\":\"S\", \"seq\":4}")},
         /* The last message (4) has no id. */
         {"s.a", "x", {"Nats-Expected-Last-Msg-Id", "id1"},
          EXPECT(T_ERR(400, 10070), "\"description\":\"wrong last msg ID: \"}",
                 "\"stream\":\"S\",\"seq\":0")},
         {"s.a", "x", {"Nats-Rollup", "sub"}, EXPECT(T_ERR(500, 10111), "rollup not permitted")},
         {"n", "1", NOHDR, EXPECT("\"seq\":1")},
         {"n", "2", NOHDR,
          EXPECT("\"stream\":\"N\",\"seq\":0", T_ERR(503, 10077), "maximum messages exceeded")},
         {"nb", "0123456789", NOHDR, EXPECT("\"seq\":1")},
         {"nb", "0123456789012345678901234567890123456789", NOHDR,
          EXPECT(T_ERR(503, 10077), "maximum bytes exceeded")},
         {"z", "12345678", NOHDR, EXPECT("\"seq\":1")},
         {"z", "123456789", NOHDR,
          EXPECT(T_ERR(400, 10054), "message size exceeds maximum allowed")},
         {"nostream.x", "x", NOHDR, EXPECT("NO_RESPONDERS")},
     }},
    {"consumer",
     "consumer create (durable, named, filtered), info, names, list, delete, errors",
     {
         {API "STREAM.CREATE.S", "{\"name\":\"S\",\"subjects\":[\"s.>\"]}", NOHDR, EXPECT(NULL)},
         {"s.a", "1", NOHDR, EXPECT("\"seq\":1")},
         {"s.b", "2", NOHDR, EXPECT("\"seq\":2")},
         {API "CONSUMER.DURABLE.CREATE.S.D",
          "{\"stream_name\":\"S\",\"config\":{\"durable_name\":\"D\",\"ack_policy\":"
          "\"explicit\"}}",
          NOHDR,
          EXPECT("\"type\":\"io.nats.jetstream.api.v1.consumer_create_response\"",
                 "\"num_pending\":2", "\"max_ack_pending\":1000", "\"max_waiting\":512")},
         /* same again: fine */
         {API "CONSUMER.DURABLE.CREATE.S.D",
          "{\"stream_name\":\"S\",\"config\":{\"durable_name\":\"D\",\"ack_policy\":"
          "\"explicit\"}}",
          NOHDR, EXPECT("consumer_create_response\"", "\"name\":\"D\"")},
         {API "CONSUMER.CREATE.S.C2",
          "{\"stream_name\":\"S\",\"config\":{\"name\":\"C2\",\"durable_name\":\"C2\","
          "\"ack_policy\":\"explicit\",\"filter_subject\":\"s.a\"}}",
          NOHDR, EXPECT("\"num_pending\":1", "\"filter_subject\":\"s.a\"")},
         {API "CONSUMER.CREATE.S.C3.s.b",
          "{\"stream_name\":\"S\",\"config\":{\"name\":\"C3\",\"durable_name\":\"C3\","
          "\"ack_policy\":\"none\",\"filter_subject\":\"s.b\",\"deliver_subject\":\"dlv.c3\"}}",
          NOHDR, EXPECT("\"deliver_subject\":\"dlv.c3\"", "\"ack_policy\":\"none\"")},
         {API "CONSUMER.INFO.S.D", NULL, NOHDR,
          EXPECT("\"type\":\"io.nats.jetstream.api.v1.consumer_info_response\"",
                 "\"stream_name\":\"S\"", "\"delivered\":{\"consumer_seq\":0,\"stream_seq\":0}",
                 "\"ack_floor\":{\"consumer_seq\":0,\"stream_seq\":0}")},
         {API "CONSUMER.INFO.S.NOPE", NULL, NOHDR,
          EXPECT(T_ERR(404, 10014), "\"description\":\"consumer not found\"")},
         {API "CONSUMER.INFO.NOPE.D", NULL, NOHDR, EXPECT(T_ERR(404, 10059))},
         {API "CONSUMER.NAMES.S", NULL, NOHDR,
          EXPECT("\"type\":\"io.nats.jetstream.api.v1.consumer_names_response\"",
                 "\"consumers\":[\"C2\",\"C3\",\"D\"]", "\"total\":3")},
         {API "CONSUMER.LIST.S", NULL, NOHDR,
          EXPECT("\"type\":\"io.nats.jetstream.api.v1.consumer_list_response\"",
                 "\"total\":3")},
         {API "CONSUMER.DURABLE.CREATE.S.X",
          "{\"stream_name\":\"S\",\"config\":{\"durable_name\":\"Y\",\"ack_policy\":"
          "\"explicit\"}}",
          NOHDR,
          EXPECT(T_ERR(400, 10017),
                 "consumer name in subject does not match durable name in request")},
         {API "CONSUMER.DURABLE.CREATE.NOPE.D",
          "{\"stream_name\":\"NOPE\",\"config\":{\"durable_name\":\"D\"}}", NOHDR,
          EXPECT(T_ERR(404, 10059))},
         {API "CONSUMER.DURABLE.CREATE.S.D", "{bad", NOHDR, EXPECT(T_ERR(400, 10025))},
         {API "CONSUMER.CREATE.S.E",
          "{\"stream_name\":\"S\",\"config\":{\"name\":\"E\",\"deliver_subject\":\"s.x\"}}",
          NOHDR, EXPECT("\"err_code\":10081", "consumer deliver subject forms a cycle")},
         {API "CONSUMER.CREATE.S.F",
          "{\"stream_name\":\"S\",\"config\":{\"name\":\"F\",\"ack_policy\":\"explicit\","
          "\"deliver_policy\":\"by_start_sequence\"}}",
          NOHDR,
          EXPECT(T_ERR(400, 10094), "consumer delivery policy is deliver by start sequence, "
                                    "but optional start sequence is not set")},
         {API "CONSUMER.DURABLE.CREATE.S.D",
          "{\"stream_name\":\"S\",\"config\":{\"durable_name\":\"D\",\"ack_policy\":"
          "\"explicit\",\"deliver_policy\":\"last\"}}",
          NOHDR,
          EXPECT(T_ERR(500, 10012), "\"description\":\"deliver policy can not be updated\"")},
         {API "CONSUMER.DELETE.S.C2", NULL, NOHDR,
          EXPECT("\"type\":\"io.nats.jetstream.api.v1.consumer_delete_response\"",
                 "\"success\":true")},
         {API "CONSUMER.DELETE.S.C2", NULL, NOHDR, EXPECT(T_ERR(404, 10014))},
         {API "CONSUMER.DELETE.NOPE.C2", NULL, NOHDR, EXPECT(T_ERR(404, 10059))},
         {API "STREAM.INFO.S", NULL, NOHDR, EXPECT("\"consumer_count\":2")},
     }},
    {"pull",
     "CONSUMER.MSG.NEXT: no_wait 404, expiry 408, delivery, limits",
     {
         {API "STREAM.CREATE.S", "{\"name\":\"S\",\"subjects\":[\"s.>\"]}", NOHDR, EXPECT(NULL)},
         {API "CONSUMER.DURABLE.CREATE.S.D",
          "{\"stream_name\":\"S\",\"config\":{\"durable_name\":\"D\",\"ack_policy\":"
          "\"explicit\"}}",
          NOHDR, EXPECT(NULL)},
         {API "CONSUMER.DURABLE.CREATE.S.MB",
          "{\"stream_name\":\"S\",\"config\":{\"durable_name\":\"MB\",\"ack_policy\":"
          "\"explicit\",\"max_batch\":2}}",
          NOHDR, EXPECT("\"max_batch\":2")},
         {API "CONSUMER.MSG.NEXT.S.D", "{\"batch\":1,\"no_wait\":true}", NOHDR,
          EXPECT("STATUS 404 No Messages")},
         {API "CONSUMER.MSG.NEXT.S.D", "{\"batch\":1,\"expires\":200000000}", NOHDR,
          EXPECT("STATUS 408 Request Timeout", "Nats-Pending-Messages: 1",
                 "Nats-Pending-Bytes: 0")},
         {"s.a", "one", {"X-Hdr", "v1"}, EXPECT("\"seq\":1")},
         {"s.b", "two", NOHDR, EXPECT("\"seq\":2")},
         {"s.a", "three", NOHDR, EXPECT("\"seq\":3")},
         {API "CONSUMER.MSG.NEXT.S.D", "{\"batch\":1}", NOHDR, EXPECT("MSG s.a one")},
         {API "CONSUMER.MSG.NEXT.S.D", "1", NOHDR, EXPECT("MSG s.b two")},
         {API "CONSUMER.MSG.NEXT.S.D", NULL, NOHDR, EXPECT("MSG s.a three")},
         /* all delivered, none acked */
         {API "CONSUMER.MSG.NEXT.S.D", "{\"batch\":1,\"no_wait\":true}", NOHDR,
          EXPECT("STATUS 404 No Messages")},
         {API "CONSUMER.INFO.S.D", NULL, NOHDR,
          EXPECT("\"num_ack_pending\":3", "\"num_pending\":0", "\"num_waiting\":0")},
         {API "CONSUMER.MSG.NEXT.S.MB", "{\"batch\":5}", NOHDR,
          EXPECT("STATUS 409 Exceeded MaxRequestBatch of 2")},
         {API "CONSUMER.MSG.NEXT.S.MB", "{\"batch\":1,\"max_bytes\":1}", NOHDR,
          EXPECT("STATUS 409 Message Size Exceeds MaxBytes")},
         /* No such consumer: the API import means someone is subscribed, but nobody
          * answers. */
         {API "CONSUMER.MSG.NEXT.S.NOPE", "{\"batch\":1,\"no_wait\":true}", NOHDR,
          EXPECT("TIMEOUT"), 500},
     }},
    {"direct_get",
     "$JS.API.DIRECT.GET: by seq, last/next by subject, subject form, misses, bad requests",
     {
         {API "STREAM.CREATE.S", "{\"name\":\"S\",\"subjects\":[\"s.>\"],\"allow_direct\":true}",
          NOHDR, EXPECT("\"allow_direct\":true")},
         {API "STREAM.CREATE.ND", "{\"name\":\"ND\",\"subjects\":[\"nd\"]}", NOHDR, EXPECT(NULL)},
         {"s.a", "one", {"X-Hdr", "v1"}, EXPECT("\"seq\":1")},
         {"s.b", "two", NOHDR, EXPECT("\"seq\":2")},
         {"s.a", "three", NOHDR, EXPECT("\"seq\":3")},
         {"nd", "x", NOHDR, EXPECT("\"seq\":1")},
         {API "DIRECT.GET.S", "{\"seq\":1}", NOHDR,
          EXPECT("MSG <inbox> one", "X-Hdr: v1", "Nats-Stream: S", "Nats-Sequence: 1")},
         {API "DIRECT.GET.S", "{\"last_by_subj\":\"s.a\"}", NOHDR, EXPECT("MSG <inbox> three")},
         {API "DIRECT.GET.S", "{\"next_by_subj\":\"s.a\",\"seq\":2}", NOHDR,
          EXPECT("MSG <inbox> three")},
         {API "DIRECT.GET.S", "{\"next_by_subj\":\"s.b\"}", NOHDR, EXPECT("MSG <inbox> two")},
         {API "DIRECT.GET.S.s.b", NULL, NOHDR, EXPECT("MSG <inbox> two")},
         {API "DIRECT.GET.S", "{\"seq\":99}", NOHDR, EXPECT("STATUS 404 Message Not Found")},
         {API "DIRECT.GET.S", "{\"last_by_subj\":\"s.none\"}", NOHDR,
          EXPECT("STATUS 404 Message Not Found")},
         {API "DIRECT.GET.S.s.none", NULL, NOHDR, EXPECT("STATUS 404 Message Not Found")},
         {API "DIRECT.GET.S", NULL, NOHDR, EXPECT("STATUS 408 Empty Request")},
         {API "DIRECT.GET.S", "{bad", NOHDR, EXPECT("STATUS 408 Malformed Request")},
         {API "DIRECT.GET.S.s.a", "{\"seq\":1}", NOHDR, EXPECT("STATUS 408 Bad Request")},
         {API "DIRECT.GET.S", "{\"seq\":1,\"last_by_subj\":\"s.a\"}", NOHDR,
          EXPECT("STATUS 408 Bad Request")},
         /* Without allow_direct (or without the stream) nobody answers. */
         {API "DIRECT.GET.ND", "{\"seq\":1}", NOHDR, EXPECT("TIMEOUT"), 500},
         {API "DIRECT.GET.NOPE", "{\"seq\":1}", NOHDR, EXPECT("TIMEOUT"), 500},
     }},
    {"acks",
     "acks through the ack reply subject (+ACK, -NAK, +WPI, +TERM) and the consumer state",
     {
         {API "STREAM.CREATE.S", "{\"name\":\"S\",\"subjects\":[\"s.>\"]}", NOHDR, EXPECT(NULL)},
         {API "CONSUMER.DURABLE.CREATE.S.D",
          "{\"stream_name\":\"S\",\"config\":{\"durable_name\":\"D\",\"ack_policy\":"
          "\"explicit\"}}",
          NOHDR, EXPECT(NULL)},
         {"s.a", "1", NOHDR, EXPECT("\"seq\":1")},
         {"s.a", "2", NOHDR, EXPECT("\"seq\":2")},
         {"s.a", "3", NOHDR, EXPECT("\"seq\":3")},
         {API "CONSUMER.MSG.NEXT.S.D", "{\"batch\":1}", NOHDR, EXPECT("MSG s.a 1")},
         {ACK_LAST, "+WPI", NOHDR, EXPECT("EMPTY")},
         {API "CONSUMER.INFO.S.D", NULL, NOHDR,
          EXPECT("\"num_ack_pending\":1", "\"num_pending\":2")},
         {ACK_LAST, "+ACK", NOHDR, EXPECT("EMPTY")},
         {API "CONSUMER.INFO.S.D", NULL, NOHDR,
          EXPECT("\"num_ack_pending\":0", "\"ack_floor\":{\"consumer_seq\":1,\"stream_seq\":1")},
         {API "CONSUMER.MSG.NEXT.S.D", "{\"batch\":1}", NOHDR, EXPECT("MSG s.a 2")},
         {ACK_LAST, "-NAK", NOHDR, EXPECT("EMPTY")},
         /* redelivered at once, before 3 */
         {API "CONSUMER.MSG.NEXT.S.D", "{\"batch\":1}", NOHDR, EXPECT("MSG s.a 2")},
         {API "CONSUMER.INFO.S.D", NULL, NOHDR,
          EXPECT("\"num_redelivered\":1", "\"num_ack_pending\":1")},
         {ACK_LAST, "+TERM", NOHDR, EXPECT("EMPTY")},
         {API "CONSUMER.MSG.NEXT.S.D", "{\"batch\":1}", NOHDR, EXPECT("MSG s.a 3")},
         {ACK_LAST, "", NOHDR, EXPECT("EMPTY")},
         {API "CONSUMER.INFO.S.D", NULL, NOHDR,
          EXPECT("\"num_ack_pending\":0", "\"num_redelivered\":0",
                 "\"ack_floor\":{\"consumer_seq\":4,\"stream_seq\":3")},
         {API "CONSUMER.MSG.NEXT.S.D", "{\"batch\":1,\"no_wait\":true}", NOHDR,
          EXPECT("STATUS 404 No Messages")},
     }},
    {"retention",
     "workqueue and interest streams: consumer rules and removal on ack",
     {
         {API "STREAM.CREATE.WQ",
          "{\"name\":\"WQ\",\"subjects\":[\"wq.>\"],\"retention\":\"workqueue\"}", NOHDR,
          EXPECT(NULL)},
         {API "CONSUMER.DURABLE.CREATE.WQ.A",
          "{\"stream_name\":\"WQ\",\"config\":{\"durable_name\":\"A\",\"ack_policy\":"
          "\"explicit\"}}",
          NOHDR, EXPECT("consumer_create_response\"")},
         {API "CONSUMER.DURABLE.CREATE.WQ.B",
          "{\"stream_name\":\"WQ\",\"config\":{\"durable_name\":\"B\",\"ack_policy\":"
          "\"explicit\"}}",
          NOHDR,
          EXPECT(T_ERR(400, 10099),
                 "multiple non-filtered consumers not allowed on workqueue stream")},
         {API "CONSUMER.DURABLE.CREATE.WQ.B",
          "{\"stream_name\":\"WQ\",\"config\":{\"durable_name\":\"B\",\"ack_policy\":"
          "\"explicit\",\"filter_subject\":\"wq.b\"}}",
          NOHDR,
          EXPECT(T_ERR(400, 10100), "filtered consumer not unique on workqueue stream")},
         {API "CONSUMER.DELETE.WQ.A", NULL, NOHDR, EXPECT("\"success\":true")},
         {API "CONSUMER.DURABLE.CREATE.WQ.B",
          "{\"stream_name\":\"WQ\",\"config\":{\"durable_name\":\"B\",\"ack_policy\":"
          "\"none\",\"filter_subject\":\"wq.b\"}}",
          NOHDR, EXPECT(T_ERR(400, 10084), "consumer in pull mode requires ")},
         {API "CONSUMER.DURABLE.CREATE.WQ.B",
          "{\"stream_name\":\"WQ\",\"config\":{\"durable_name\":\"B\",\"ack_policy\":"
          "\"explicit\",\"filter_subject\":\"wq.b\",\"deliver_policy\":\"new\"}}",
          NOHDR,
          EXPECT(T_ERR(400, 10101), "consumer must be deliver all on workqueue stream")},
         {API "CONSUMER.DURABLE.CREATE.WQ.B",
          "{\"stream_name\":\"WQ\",\"config\":{\"durable_name\":\"B\",\"ack_policy\":"
          "\"explicit\",\"filter_subject\":\"wq.b\"}}",
          NOHDR, EXPECT("\"filter_subject\":\"wq.b\"")},
         {"wq.b", "job", NOHDR, EXPECT("\"seq\":1")},
         {API "CONSUMER.MSG.NEXT.WQ.B", "{\"batch\":1}", NOHDR, EXPECT("MSG wq.b job")},
         {API "STREAM.INFO.WQ", NULL, NOHDR, EXPECT("\"messages\":1")},
         {ACK_LAST, "+ACK", NOHDR, EXPECT("EMPTY")},
         {API "STREAM.INFO.WQ", NULL, NOHDR, EXPECT("\"messages\":0", "\"first_seq\":2")},
         {API "STREAM.CREATE.IN",
          "{\"name\":\"IN\",\"subjects\":[\"in.>\"],\"retention\":\"interest\"}", NOHDR,
          EXPECT(NULL)},
         {"in.a", "nobody", NOHDR, EXPECT("{\"stream\":\"IN\", \"seq\":1}")},
         {API "STREAM.INFO.IN", NULL, NOHDR, EXPECT("\"messages\":0", "\"last_seq\":1")},
         {API "CONSUMER.DURABLE.CREATE.IN.C",
          "{\"stream_name\":\"IN\",\"config\":{\"durable_name\":\"C\",\"ack_policy\":"
          "\"explicit\"}}",
          NOHDR, EXPECT(NULL)},
         {"in.a", "kept", NOHDR, EXPECT("\"seq\":2")},
         {API "STREAM.INFO.IN", NULL, NOHDR, EXPECT("\"messages\":1")},
         {API "CONSUMER.MSG.NEXT.IN.C", "{\"batch\":1}", NOHDR, EXPECT("MSG in.a kept")},
         {ACK_LAST, "+ACK", NOHDR, EXPECT("EMPTY")},
         {API "STREAM.INFO.IN", NULL, NOHDR, EXPECT("\"messages\":0")},
     }},
    {"kv_stream",
     "a KV bucket stream as libnats creates it, driven raw: put, create, update, "
     "delete/purge markers, direct get by subject",
     {
         {API "STREAM.CREATE.KV_B",
          "{\"name\":\"KV_B\",\"subjects\":[\"$KV.B.>\"],\"max_msgs_per_subject\":3,"
          "\"max_bytes\":-1,\"max_msg_size\":-1,\"discard\":\"new\",\"allow_rollup_hdrs\":"
          "true,\"deny_delete\":true,\"allow_direct\":true,\"storage\":\"file\","
          "\"num_replicas\":1}",
          NOHDR, EXPECT("\"max_msgs_per_subject\":3", "\"allow_direct\":true")},
         {"$KV.B.k", "v1", NOHDR, EXPECT("{\"stream\":\"KV_B\", \"seq\":1}")},
         /* create = expect no message on the key */
         {"$KV.B.k", "v2", {"Nats-Expected-Last-Subject-Sequence", "0"},
          EXPECT(T_ERR(400, 10071), "wrong last sequence: 1")},
         {"$KV.B.j", "w1", {"Nats-Expected-Last-Subject-Sequence", "0"}, EXPECT("\"seq\":2")},
         /* update from revision 1 */
         {"$KV.B.k", "v2", {"Nats-Expected-Last-Subject-Sequence", "1"}, EXPECT("\"seq\":3")},
         {"$KV.B.k", "v3", {"Nats-Expected-Last-Subject-Sequence", "1"},
          EXPECT(T_ERR(400, 10071), "wrong last sequence: 3")},
         {API "DIRECT.GET.KV_B.$KV.B.k", NULL, NOHDR,
          EXPECT("MSG <inbox> v2", "Nats-Subject: $KV.B.k", "Nats-Sequence: 3")},
         {API "DIRECT.GET.KV_B", "{\"seq\":1}", NOHDR, EXPECT("MSG <inbox> v1")},
         {API "STREAM.MSG.GET.KV_B", "{\"last_by_subj\":\"$KV.B.k\"}", NOHDR,
          EXPECT("\"seq\":3")},
         /* delete marker */
         {"$KV.B.k", NULL, {"KV-Operation", "DEL"}, EXPECT("\"seq\":4")},
         {API "DIRECT.GET.KV_B.$KV.B.k", NULL, NOHDR, EXPECT("KV-Operation: DEL")},
         /* purge marker with rollup of the key */
         {"$KV.B.j", NULL, {"KV-Operation", "PURGE", "Nats-Rollup", "sub"}, EXPECT("\"seq\":5")},
         {API "STREAM.INFO.KV_B", "{\"subjects_filter\":\"$KV.B.>\"}", NOHDR,
          EXPECT("\"subjects\":{", "\"messages\":4")},
         /* messages cannot be deleted in a KV stream (deny_delete) */
         {API "STREAM.MSG.DELETE.KV_B", "{\"seq\":1}", NOHDR,
          EXPECT(T_ERR(500, 10057), "message delete not permitted")},
         /* history limit: a 4th value of k drops the oldest */
         {"$KV.B.k", "v4", NOHDR, EXPECT("\"seq\":6")},
         {API "STREAM.MSG.GET.KV_B", "{\"seq\":1}", NOHDR, EXPECT(T_ERR(404, 10037))},
         {API "STREAM.PURGE.KV_B", "{\"filter\":\"$KV.B.j\",\"keep\":0}", NOHDR,
          EXPECT("\"purged\":1")},
         {API "STREAM.INFO.KV_B", NULL, NOHDR, EXPECT("\"messages\":3", "\"num_subjects\":1")},
     }},
    {"bad_requests",
     "malformed JSON bodies on each API",
     {
         {API "STREAM.CREATE.S", "{\"name\":\"S\",\"subjects\":[\"s.>\"]}", NOHDR, EXPECT(NULL)},
         {API "CONSUMER.DURABLE.CREATE.S.D",
          "{\"stream_name\":\"S\",\"config\":{\"durable_name\":\"D\",\"ack_policy\":"
          "\"explicit\"}}",
          NOHDR, EXPECT(NULL)},
         {API "STREAM.UPDATE.S", "{bad", NOHDR, EXPECT(T_ERR(400, 10025))},
         {API "STREAM.INFO.S", "{bad", NOHDR, EXPECT(T_ERR(400, 10025))},
         {API "STREAM.NAMES", "{bad", NOHDR, EXPECT(T_ERR(400, 10025))},
         {API "STREAM.LIST", "{bad", NOHDR, EXPECT(T_ERR(400, 10025))},
         {API "STREAM.MSG.DELETE.S", "{bad", NOHDR, EXPECT(T_ERR(400, 10025))},
         {API "CONSUMER.CREATE.S.X", "{bad", NOHDR, EXPECT(T_ERR(400, 10025))},
         {API "CONSUMER.NAMES.S", "{bad", NOHDR, EXPECT(T_ERR(400, 10025))},
         {API "CONSUMER.LIST.S", "{bad", NOHDR, EXPECT(T_ERR(400, 10025))},
         /* "400 Bad Request - <decoder error>": only the part before " - " is compared */
         {API "CONSUMER.MSG.NEXT.S.D", "{bad", NOHDR, EXPECT("STATUS 400 Bad Request - ")},
     }},
};

/* ---- runner ---------------------------------------------------------------- */

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

static int g_no_api; /* consecutive cases whose target did not answer $JS.API.INFO */

static int run_case(const ccase *c, const char *ref, const char *target)
{
    side rs, ts;
    int bad = 0, target_timeouts = 0;
    if (side_start(&rs, ref) != 0) {
        printf("    reference %s did not start\n", ref);
        side_stop(&rs, 1);
        return 1;
    }
    if (side_start(&ts, target) != 0) {
        printf("    target %s did not start\n", target);
        side_stop(&rs, 0);
        side_stop(&ts, 1);
        return 1;
    }
    /* A target without a JetStream API would make every step wait 2 s. */
    static const char *const probes[] = {"$JS.API.INFO", "$JS.API.STREAM.INFO.NO_SUCH_STREAM"};
    int answered = 1;
    for (size_t i = 0; answered && i < sizeof(probes) / sizeof(*probes); i++) {
        natsMsg *probe = NULL;
        answered = natsConnection_RequestString(&probe, ts.nc, probes[i], "", REQ_TIMEOUT_MS) ==
                   NATS_OK;
        natsMsg_Destroy(probe);
    }
    if (!answered) {
        printf("    target: no reply to $JS.API.INFO or $JS.API.STREAM.INFO within %d ms: "
               "JetStream API not available\n",
               REQ_TIMEOUT_MS);
        g_no_api++;
        side_stop(&rs, 0);
        side_stop(&ts, 1);
        return 1;
    }
    g_no_api = 0;
    char ack_r[256] = "", ack_t[256] = "";
    for (int i = 0; i < MAX_STEPS && c->steps[i].subj; i++) {
        const step *sp = &c->steps[i];
        reply r, t;
        if (send_step(rs.nc, sp, ack_r, &r) != NATS_OK ||
            send_step(ts.nc, sp, ack_t, &t) != NATS_OK) {
            printf("    step %d: could not build the request\n", i + 1);
            bad = 1;
            break;
        }
        diffs d;
        memset(&d, 0, sizeof(d));
        for (int k = 0; k < 4 && sp->expect[k]; k++)
            if (!strstr(r.summary, sp->expect[k]))
                diff(&d, "reference reply lacks the recorded (2.9.10) %s", sp->expect[k]);
        if (r.kind == 'E')
            diff(&d, "reference request failed: %s", r.summary);
        cmp_replies(&r, &t, &d);
        if (g_print || d.n) {
            printf("    step %d: %s %s%s%s\n", i + 1, sp->subj, sp->body ? sp->body : "",
                   sp->hdrs[0] ? " +hdr " : "", sp->hdrs[0] ? sp->hdrs[0] : "");
            printf("      reference: %.600s\n", r.summary);
            printf("      target:    %.600s\n", t.summary);
        }
        if (d.n) {
            printf("%s", d.buf);
            if (d.n > 20)
                printf("      ... %d differences in all\n", d.n);
            bad = 1;
        }
        if (r.kind == 'M' && natsMsg_GetReply(r.msg))
            snprintf(ack_r, sizeof(ack_r), "%s", natsMsg_GetReply(r.msg));
        if (t.kind == 'M' && natsMsg_GetReply(t.msg))
            snprintf(ack_t, sizeof(ack_t), "%s", natsMsg_GetReply(t.msg));
        if (t.kind == 'T' && r.kind != 'T')
            target_timeouts++;
        reply_free(&r);
        reply_free(&t);
        if (target_timeouts >= 3) {
            printf("    target timed out on 3 requests the reference answered: rest of the "
                   "case not run\n");
            bad = 1;
            break;
        }
    }
    if (!th_server_alive(&rs.srv) || !th_server_alive(&ts.srv))
        bad = 1;
    if (side_stop(&rs, bad) != 0)
        bad = 1;
    if (side_stop(&ts, bad) != 0)
        bad = 1;
    return bad;
}

int main(int argc, char **argv)
{
    const char *filter = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--print") == 0)
            g_print = 1;
        else
            filter = argv[i];
    }
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    const char *ref = getenv("EMBER_TEST_REFERENCE");
    if (!ref || !*ref)
        ref = "nats-server";
    const char *target = th_server_binary();
    if (!bin_available(ref)) {
        printf("reference server %s not found\n0 passed, 1 failed\n", ref);
        return 1;
    }
    if (nats_Open(-1) != NATS_OK) {
        fprintf(stderr, "nats_Open failed\n");
        return 2;
    }
    printf("jscompare: %s compared with %s\n", target, ref);
    int passed = 0, failed = 0;
    int64_t t0 = th_now_ms();
    for (size_t i = 0; i < sizeof(CASES) / sizeof(*CASES); i++) {
        const ccase *c = &CASES[i];
        if (filter && !strstr(c->name, filter))
            continue;
        if (g_no_api >= 3) {
            printf("FAIL %s (not run: no JetStream API in the last 3 cases)\n", c->name);
            failed++;
            continue;
        }
        if (g_print)
            printf("  %s: %s\n", c->name, c->about);
        int64_t t1 = th_now_ms();
        if (run_case(c, ref, target)) {
            printf("FAIL %s (%lld ms)\n", c->name, (long long)(th_now_ms() - t1));
            failed++;
        } else {
            printf("ok   %s (%lld ms)\n", c->name, (long long)(th_now_ms() - t1));
            passed++;
        }
    }
    nats_CloseAndWait(5000);
    printf("total %lld ms\n", (long long)(th_now_ms() - t0));
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
