/* monitor: nats-server's monitoring endpoints over HTTP and through ember_server_monitor
 * (see monitor.h). Field names, defaults, parameter names and error texts follow
 * nats-server's server/monitor.go; docs/monitoring.md lists what Ember leaves out. */
#define _GNU_SOURCE
#include "monitor.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "account.h"
#include "http.h"
#include "js.h"
#include "js_consumer.h"
#include "leaf.h"
#include "xport.h"

#define MON_MAX_CONNS 128              /* concurrent HTTP connections (more are closed) */
#define MON_READ_CHUNK (64 * 1024)
#define MON_CONN_BUF (HTTP_MAX_HEAD + MON_READ_CHUNK)
#define MON_HEADER_TIMEOUT_MS 5000     /* nats-server's ReadHeaderTimeout */
#define MON_IDLE_TIMEOUT_MS 60000      /* keep-alive connections idle this long are closed */
#define MON_WRITE_TIMEOUT_MS 10000
#define MON_DEFAULT_LIST 1024          /* DefaultConnListSize / DefaultSubListSize */
#define MON_QVAL 1024                  /* longest query parameter value accepted */

enum { RS_ROOT, RS_VARZ, RS_CONNZ, RS_SUBSZ, RS_JSZ, RS_LEAFZ, RS_HEALTHZ, RS_ACCOUNTZ, RS__N };
static const char *const RS_PATHS[RS__N] = {"/",     "/varz",  "/connz",   "/subsz",
                                            "/jsz",  "/leafz", "/healthz", "/accountz"};

typedef struct mon_conn mon_conn;

typedef struct mon_call {
    const char *path, *query;
    size_t path_len, query_len;
    int rc;
    char *json;
    char err[512];
    bool done;
    struct mon_call *next;
} mon_call;

struct monitor {
    server *s;
    /* HTTP (loop thread) */
    uv_tcp_t listener;
    bool listening;
    uv_timer_t timer;
    bool timer_init;
    mon_conn *conns;
    int nconns;
    char *rbuf;
    int bound_port;
    char url[160];
    uint64_t req_stats[RS__N];
    /* calls from other threads (mu) */
    uv_async_t async;
    bool async_init;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool accepting;
    mon_call *head, **tail;
    /* process figures (loop thread) */
    int64_t start_wall_ns;
    uint64_t cpu_last_ns, wall_last_ns;
    double cpu_pct;
};
typedef struct monitor monitor;

struct mon_conn {
    uv_tcp_t tcp;
    monitor *m;
    char *buf;
    size_t len;
    uint64_t discard;         /* body bytes still to skip */
    bool writing, closing, close_after;
    uint64_t last_ms, req_start_ms, write_start_ms;
    uv_write_t wr;
    char *out;
    mon_conn *prev, *next;
};

/* ------------------------------------------------------------------ small helpers */

static int64_t wall_ns(void) { return js_now_wall(); }

static char *dup_mem(const char *p, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, p, n);
        d[n] = 0;
    }
    return d;
}

/* Go's %q of a string (strconv.Quote), for error texts. */
static void go_quote(char *out, size_t cap, const char *s)
{
    size_t o = 0;
#define PUT(c)                                                                                 \
    do {                                                                                       \
        if (o + 1 < cap)                                                                       \
            out[o++] = (c);                                                                    \
    } while (0)
    PUT('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        const char *esc = NULL;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\a': esc = "\\a"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\v': esc = "\\v"; break;
        default: break;
        }
        if (esc) {
            for (; *esc; esc++)
                PUT(*esc);
        } else if (c < 0x20 || c == 0x7f) {
            char h[8];
            snprintf(h, sizeof h, "\\x%02x", c);
            for (char *x = h; *x; x++)
                PUT(*x);
        } else {
            PUT((char)c);
        }
    }
    PUT('"');
#undef PUT
    out[o < cap ? o : cap - 1] = 0;
}

/* nats-server's myUptime: "1y2d3h4m5s", "3h4m5s", "5s". */
static void go_uptime(char *out, size_t cap, int64_t ns)
{
    int64_t secs = ns > 0 ? ns / 1000000000 : 0;
    int64_t mins = secs / 60, hrs = mins / 60, days = hrs / 24, yrs = days / 365;
    if (yrs > 0)
        snprintf(out, cap, "%" PRId64 "y%" PRId64 "d%" PRId64 "h%" PRId64 "m%" PRId64 "s", yrs,
                 days % 365, hrs % 24, mins % 60, secs % 60);
    else if (days > 0)
        snprintf(out, cap, "%" PRId64 "d%" PRId64 "h%" PRId64 "m%" PRId64 "s", days, hrs % 24,
                 mins % 60, secs % 60);
    else if (hrs > 0)
        snprintf(out, cap, "%" PRId64 "h%" PRId64 "m%" PRId64 "s", hrs, mins % 60, secs % 60);
    else if (mins > 0)
        snprintf(out, cap, "%" PRId64 "m%" PRId64 "s", mins, secs % 60);
    else
        snprintf(out, cap, "%" PRId64 "s", secs);
}

static void add_time(cJSON *o, const char *key, int64_t ns)
{
    char tb[64];
    cJSON_AddStringToObject(o, key, js_time_str(tb, sizeof tb, ns));
}

/* A monotonic-ms instant as wall-clock ns. */
static int64_t mono_to_wall(uint64_t mono_ms, int64_t now_wall, uint64_t now_mono_ms)
{
    if (mono_ms == 0 || mono_ms > now_mono_ms)
        return now_wall;
    return now_wall - (int64_t)(now_mono_ms - mono_ms) * 1000000;
}

static int64_t proc_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    if (!f)
        return 0;
    long long size = 0, rss = 0;
    int n = fscanf(f, "%lld %lld", &size, &rss);
    fclose(f);
    long psz = sysconf(_SC_PAGESIZE);
    return n == 2 && psz > 0 ? (int64_t)rss * psz : 0;
}

static uint64_t proc_cpu_ns(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

/* Process CPU in percent of one core, averaged since the previous sample (taken at most
 * once a second, as nats-server's pse refreshes it). */
static double proc_cpu(monitor *m)
{
    uint64_t now = time_mono_ns(), cpu = proc_cpu_ns();
    if (m->wall_last_ns && now - m->wall_last_ns < 1000000000ull)
        return m->cpu_pct;
    if (m->wall_last_ns && now > m->wall_last_ns) {
        double pct = (double)(cpu - m->cpu_last_ns) * 100.0 / (double)(now - m->wall_last_ns);
        m->cpu_pct = (double)(int64_t)(pct * 100 + 0.5) / 100; /* two decimals */
    }
    m->cpu_last_ns = cpu;
    m->wall_last_ns = now;
    return m->cpu_pct;
}

static int num_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static int usable_cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
    return num_cores();
}

/* ------------------------------------------------------------------ query parameters */

typedef struct qctx {
    const char *q;
    size_t qlen;
    char err[640];
} qctx;

/* The value of key (decoded) in out; -1 when absent or empty (as Go's Query().Get). */
static int q_str(qctx *c, const char *key, char *out, size_t cap)
{
    int n = http_query_get(c->q, c->qlen, key, out, cap);
    if (n == -2) {
        /* longer than any value an endpoint accepts: no match can come of it */
        out[0] = 0;
        return -2;
    }
    return n <= 0 ? -1 : n;
}

/* An account name (acc=, account=): "" when absent; one longer than any value accepted
 * becomes " ", which names no account (account names have no spaces). */
static void q_acc(qctx *c, const char *key, char *out, size_t cap)
{
    if (q_str(c, key, out, cap) == -2)
        snprintf(out, cap, " ");
}

static int q_bool(qctx *c, const char *key, bool *out)
{
    char v[MON_QVAL];
    *out = false;
    int n = q_str(c, key, v, sizeof v);
    if (n == -1)
        return 0;
    static const char *const T[] = {"1", "t", "T", "TRUE", "true", "True", NULL};
    static const char *const F[] = {"0", "f", "F", "FALSE", "false", "False", NULL};
    if (n > 0) {
        for (int i = 0; T[i]; i++)
            if (!strcmp(v, T[i])) {
                *out = true;
                return 0;
            }
        for (int i = 0; F[i]; i++)
            if (!strcmp(v, F[i]))
                return 0;
    }
    char qv[400];
    go_quote(qv, sizeof qv, n == -2 ? "(too long)" : v);
    snprintf(c->err, sizeof c->err,
             "Error decoding boolean for '%.60s': strconv.ParseBool: parsing %.399s: invalid syntax", key,
             qv);
    return -1;
}

/* Go's strconv number parsing: 0, or 1 (invalid syntax), 2 (out of range). */
static int parse_go_int(const char *v, bool is_signed, int64_t *si, uint64_t *ui)
{
    const char *p = v;
    bool neg = false;
    if (is_signed && (*p == '+' || *p == '-')) {
        neg = *p == '-';
        p++;
    }
    if (!*p)
        return 1;
    uint64_t x = 0;
    bool range = false;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return 1;
        unsigned d = (unsigned)(*p - '0');
        if (x > (UINT64_MAX - d) / 10)
            range = true;
        else
            x = x * 10 + d;
    }
    if (range)
        return 2;
    if (is_signed) {
        if (neg ? x > (uint64_t)INT64_MAX + 1 : x > (uint64_t)INT64_MAX)
            return 2;
        *si = neg ? (int64_t)(0 - x) : (int64_t)x;
    } else {
        *ui = x;
    }
    return 0;
}

static int q_num(qctx *c, const char *key, bool is_signed, int64_t *si, uint64_t *ui)
{
    char v[MON_QVAL];
    *si = 0;
    *ui = 0;
    int n = q_str(c, key, v, sizeof v);
    if (n == -1)
        return 0;
    int rc = n == -2 ? 1 : parse_go_int(v, is_signed, si, ui);
    if (rc == 0)
        return 0;
    char qv[400];
    go_quote(qv, sizeof qv, n == -2 ? "(too long)" : v);
    snprintf(c->err, sizeof c->err, "Error decoding %s for '%.60s': strconv.%s: parsing %.399s: %s",
             is_signed ? "int" : "uint64", key, is_signed ? "Atoi" : "ParseUint", qv,
             rc == 1 ? "invalid syntax" : "value out of range");
    return -1;
}

static int q_int(qctx *c, const char *key, int64_t *out)
{
    uint64_t u;
    return q_num(c, key, true, out, &u);
}

/* ------------------------------------------------------------------ answers */

/* A leaf value (or a key, as a string) as Go's encoding/json writes it: cJSON's text with
 * '<', '>' and '&' escaped as Go's HTML-safe \u003c, \u003e, \u0026 (they only occur
 * inside strings). false on ENOMEM. */
static bool put_leaf(bytebuf *b, const cJSON *v)
{
    char *t = cJSON_PrintUnformatted(v);
    if (!t)
        return false;
    bool ok = true;
    for (const char *p = t; *p && ok; p++) {
        const char *esc = *p == '<' ? "\\u003c" : *p == '>' ? "\\u003e" : *p == '&' ? "\\u0026" : NULL;
        ok = esc ? bytebuf_append(b, esc, 6) == 0 : bytebuf_append(b, p, 1) == 0;
    }
    cJSON_free(t);
    return ok;
}

static bool put_indent(bytebuf *b, int depth)
{
    for (int i = 0; i < depth; i++)
        if (bytebuf_append(b, "  ", 2) != 0)
            return false;
    return true;
}

/* Go's json.MarshalIndent(v, "", "  "): what nats-server's endpoints send. */
static bool put_pretty(bytebuf *b, const cJSON *v, int depth)
{
    bool obj = cJSON_IsObject(v), arr = cJSON_IsArray(v);
    if (!obj && !arr)
        return put_leaf(b, v);
    if (!v->child)
        return bytebuf_append(b, obj ? "{}" : "[]", 2) == 0;
    if (depth > 200 || bytebuf_append(b, obj ? "{\n" : "[\n", 2) != 0)
        return false;
    for (const cJSON *it = v->child; it; it = it->next) {
        if (!put_indent(b, depth + 1))
            return false;
        if (obj) {
            cJSON key = {.type = cJSON_String, .valuestring = it->string ? it->string : ""};
            if (!put_leaf(b, &key) || bytebuf_append(b, ": ", 2) != 0)
                return false;
        }
        if (!put_pretty(b, it, depth + 1) ||
            bytebuf_append(b, it->next ? ",\n" : "\n", it->next ? 2 : 1) != 0)
            return false;
    }
    return put_indent(b, depth) && bytebuf_append(b, obj ? "}" : "]", 1) == 0;
}

static int answer_json(mon_answer *a, int status, cJSON *o, bool pretty)
{
    if (!o)
        return EMBER_ENOMEM;
    bytebuf b = {0};
    bool ok = pretty ? put_pretty(&b, o, 0) : put_leaf(&b, o);
    cJSON_Delete(o);
    if (!ok || bytebuf_append(&b, "", 1) != 0) {
        bytebuf_free(&b);
        return EMBER_ENOMEM;
    }
    a->body = b.p; /* malloc'd by bytebuf, NUL-terminated */
    a->len = b.len - 1;
    a->status = status;
    a->ctype = "application/json";
    return 0;
}

static int answer_text(mon_answer *a, int status, const char *text)
{
    a->body = dup_mem(text, strlen(text));
    if (!a->body)
        return EMBER_ENOMEM;
    a->len = strlen(text);
    a->status = status;
    a->ctype = "text/plain; charset=utf-8";
    return 0;
}

static cJSON *new_doc(server *s, int64_t now)
{
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddStringToObject(o, "server_id", s->id);
        add_time(o, "now", now);
    }
    return o;
}

/* ------------------------------------------------------------------ clients and subs */

typedef struct sub_ref {
    sub *x;
    uint64_t cid;
    size_t order;
} sub_ref;

typedef struct sub_list {
    sub_ref *v;
    size_t n, cap;
    bool oom;
} sub_list;

static void visit_sub(void *ctx, const char *subject, const char *queue, void *item)
{
    (void)subject;
    (void)queue;
    sub_list *l = ctx;
    sub *x = item;
    if (atomic_load(&x->closed) || !x->cl)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        sub_ref *nv = realloc(l->v, cap * sizeof *nv);
        if (!nv) {
            l->oom = true;
            return;
        }
        l->v = nv;
        l->cap = cap;
    }
    sub_retain(x);
    l->v[l->n].x = x;
    l->v[l->n].cid = x->cl->cid;
    l->v[l->n].order = l->n;
    l->n++;
}

static int cmp_sub_ref(const void *a, const void *b)
{
    const sub_ref *x = a, *y = b;
    if (x->cid != y->cid)
        return x->cid < y->cid ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Every live subscription of account `only` (NULL: of every account), sorted by owning
 * client id (then insertion order). */
static int subs_collect(server *s, const account *only, sub_list *l)
{
    memset(l, 0, sizeof *l);
    for (size_t i = 0; i < s->naccs && !l->oom; i++)
        if (!only || s->accs[i] == only)
            sublist_visit(s->accs[i]->sl, visit_sub, l);
    if (l->oom)
        return EMBER_ENOMEM;
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, cmp_sub_ref);
    return 0;
}

static void subs_free(sub_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        sub_release(l->v[i].x);
    free(l->v);
}

/* The first index of cid's subscriptions in l (l->n when none). */
static size_t subs_first(const sub_list *l, uint64_t cid)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->v[mid].cid < cid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The account a client works in (its name for monitoring). */
static const char *client_acc_name(const client *c)
{
    return c && c->acc && c->acc->name ? c->acc->name : "$G";
}

/* An account named in a query (acc=, account=): NULL when there is none by that name. */
static account *acc_named(server *s, const char *name)
{
    return name && *name ? server_account(s, name) : NULL;
}

/* Sublist statistics summed over accounts as nats-server's SublistStats.add: counters
 * added, max_fanout the largest, avg_fanout over every account's cached results. */
typedef struct sl_sum {
    sublist_stats st;
    uint64_t max_fanout;
    double tot_fanout, cache_cnt, one_avg;
    int nfan;                       /* accounts with cached results */
} sl_sum;

static void sl_sum_add(sl_sum *t, sublist *sl)
{
    sublist_stats st;
    uint64_t maxf = 0;
    double avgf = 0;
    sublist_get_stats(sl, &st);
    sublist_cache_fanout(sl, &maxf, &avgf);
    t->st.num_subs += st.num_subs;
    t->st.num_cache += st.num_cache;
    t->st.num_inserts += st.num_inserts;
    t->st.num_removes += st.num_removes;
    t->st.num_matches += st.num_matches;
    t->st.cache_hits += st.cache_hits;
    if (maxf > t->max_fanout)
        t->max_fanout = maxf;
    /* the average is over the cached results: weigh each account's by its cache size */
    if (avgf > 0 && st.num_cache > 0) {
        t->tot_fanout += avgf * (double)st.num_cache;
        t->cache_cnt += (double)st.num_cache;
        t->one_avg = avgf;
        t->nfan++;
    }
}

static void sl_sum_put(cJSON *o, const sl_sum *t)
{
    js_add_u64(o, "num_subscriptions", t->st.num_subs);
    js_add_u64(o, "num_cache", t->st.num_cache);
    js_add_u64(o, "num_inserts", t->st.num_inserts);
    js_add_u64(o, "num_removes", t->st.num_removes);
    js_add_u64(o, "num_matches", t->st.num_matches);
    cJSON_AddNumberToObject(o, "cache_hit_rate",
                            t->st.num_matches ? (double)t->st.cache_hits / (double)t->st.num_matches
                                              : 0);
    js_add_u64(o, "max_fanout", t->max_fanout);
    cJSON_AddNumberToObject(o, "avg_fanout", t->nfan == 1 ? t->one_avg
                                             : t->nfan ? t->tot_fanout / t->cache_cnt : 0);
}

static cJSON *sub_detail(const sub *x, bool with_account)
{
    cJSON *d = cJSON_CreateObject();
    if (!d)
        return NULL;
    if (with_account)
        cJSON_AddStringToObject(d, "account", client_acc_name(x->cl));
    cJSON_AddStringToObject(d, "subject", x->subject ? x->subject : "");
    if (x->queue && *x->queue)
        cJSON_AddStringToObject(d, "qgroup", x->queue);
    if (x->sid)
        cJSON_AddItemToObject(d, "sid", cJSON_CreateString(x->sid));
    else
        cJSON_AddStringToObject(d, "sid", "");
    js_add_u64(d, "msgs", sub_delivered(x));
    long long max = atomic_load(&x->max);
    if (max > 0)
        js_add_i64(d, "max", max);
    js_add_u64(d, "cid", x->cl ? x->cl->cid : 0);
    return d;
}

typedef struct cinfo {
    client *c;
    uint64_t cid;
    int kind;
    int64_t start, last; /* wall ns */
    uint64_t pending, in_msgs, out_msgs, in_bytes, out_bytes;
    size_t nsubs, first_sub;
} cinfo;

enum {
    SORT_CID, SORT_START, SORT_SUBS, SORT_PENDING, SORT_MSGS_TO, SORT_MSGS_FROM, SORT_BYTES_TO,
    SORT_BYTES_FROM, SORT_LAST, SORT_IDLE, SORT_UPTIME, SORT_STOP, SORT_REASON, SORT_RTT
};
static const char *const SORT_NAMES[] = {"cid",  "start",  "subs",       "pending", "msgs_to",
                                         "msgs_from", "bytes_to", "bytes_from", "last",
                                         "idle", "uptime", "stop",       "reason",  "rtt", NULL};
static _Thread_local int g_sort; /* the sort of the running qsort (each server's loop) */

#define DESC(f)                                                                                \
    if (x->f != y->f)                                                                          \
        return x->f > y->f ? -1 : 1;
static int cmp_cinfo(const void *a, const void *b)
{
    const cinfo *x = a, *y = b;
    switch (g_sort) {
    case SORT_SUBS: DESC(nsubs) break;
    case SORT_PENDING: DESC(pending) break;
    case SORT_MSGS_TO: DESC(out_msgs) break;
    case SORT_MSGS_FROM: DESC(in_msgs) break;
    case SORT_BYTES_TO: DESC(out_bytes) break;
    case SORT_BYTES_FROM: DESC(in_bytes) break;
    case SORT_LAST: DESC(last) break;
    case SORT_IDLE: /* longest idle first: oldest last activity */
        if (x->last != y->last)
            return x->last < y->last ? -1 : 1;
        break;
    case SORT_UPTIME: /* shortest uptime first, as nats-server's SortByUptime */
        DESC(start) break;
    default: break;
    }
    return x->cid < y->cid ? -1 : x->cid > y->cid;
}
#undef DESC

static const char *kind_name(int kind)
{
    switch (kind) {
    case CK_TCP:
    case CK_INPROC: return "Client";
    case CK_LEAF: return "Leafnode";
    default: return NULL;
    }
}

static int ep_connz(monitor *m, qctx *q, mon_answer *a)
{
    server *s = m->s;
    char sortv[MON_QVAL] = "", state[MON_QVAL] = "", acc[MON_QVAL] = "", subsv[MON_QVAL] = "";
    bool auth = false, subs = false, detail = false;
    int64_t offset = 0, limit = 0;
    uint64_t cid = 0;
    int64_t dummy;
    int sortn = q_str(q, "sort", sortv, sizeof sortv);
    if (q_bool(q, "auth", &auth))
        return answer_text(a, 400, q->err);
    if (q_str(q, "subs", subsv, sizeof subsv) > 0 && !strcasecmp(subsv, "detail"))
        detail = true;
    else if (q_bool(q, "subs", &subs))
        return answer_text(a, 400, q->err);
    if (q_int(q, "offset", &offset) || q_int(q, "limit", &limit) ||
        q_num(q, "cid", false, &dummy, &cid))
        return answer_text(a, 400, q->err);
    int st = 0; /* open, closed, all */
    if (q_str(q, "state", state, sizeof state) > 0 || state[0]) {
        if (!strcasecmp(state, "open"))
            st = 0;
        else if (!strcasecmp(state, "closed"))
            st = 1;
        else if (!strcasecmp(state, "any") || !strcasecmp(state, "all"))
            st = 2;
        else {
            char t[MON_QVAL + 64];
            snprintf(t, sizeof t, "Error decoding state for %s", state);
            return answer_text(a, 400, t);
        }
    }
    q_acc(q, "acc", acc, sizeof acc);
    int sort = SORT_CID;
    if (sortn == -2) {
        return answer_text(a, 400, "invalid sorting option: (too long)");
    } else if (sortv[0]) {
        sort = -1;
        for (int i = 0; SORT_NAMES[i]; i++)
            if (!strcmp(sortv, SORT_NAMES[i]))
                sort = i;
        if (sort < 0) {
            char t[MON_QVAL + 64];
            snprintf(t, sizeof t, "invalid sorting option: %s", sortv);
            return answer_text(a, 400, t);
        }
    }
    if (sort == SORT_STOP && st != 1)
        return answer_text(a, 400, "sort by stop only valid on closed connections");
    if (sort == SORT_REASON && st != 1)
        return answer_text(a, 400, "sort by reason only valid on closed connections");
    if (offset < 0)
        offset = 0;
    if (limit <= 0)
        limit = MON_DEFAULT_LIST;
    if (cid > 0)
        limit = 1;

    int64_t now = wall_ns();
    uint64_t now_ms = time_mono_ms();
    cJSON *o = new_doc(s, now);
    if (!o)
        return EMBER_ENOMEM;

    /* open connections (Ember keeps no closed-connection history: state=closed is empty) */
    size_t n = 0, cap = 0;
    cinfo *v = NULL;
    bool oom = false;
    /* acc=: that account's connections (none for an unknown account, as nats-server) */
    account *only = acc_named(s, acc);
    bool acc_ok = !acc[0] || only;
    if (st != 1 && acc_ok) {
        pthread_mutex_lock(&s->mu);
        for (client *c = s->clients; c; c = c->next) {
            if (!kind_name(c->kind))
                continue;
            if (cid && c->cid != cid)
                continue;
            if (only && c->acc != only)
                continue;
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 32;
                cinfo *nv = realloc(v, nc * sizeof *nv);
                if (!nv) {
                    oom = true;
                    break;
                }
                v = nv;
                cap = nc;
            }
            client_retain(c);
            memset(&v[n], 0, sizeof v[n]);
            v[n++].c = c;
        }
        pthread_mutex_unlock(&s->mu);
    }
    sub_list sl;
    int rc = oom ? EMBER_ENOMEM : subs_collect(s, only, &sl);
    if (rc) {
        for (size_t i = 0; i < n; i++)
            client_release(v[i].c);
        free(v);
        cJSON_Delete(o);
        if (!oom)
            subs_free(&sl);
        return EMBER_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        cinfo *ci = &v[i];
        client *c = ci->c;
        ci->cid = c->cid;
        ci->kind = c->kind;
        ci->start = mono_to_wall(c->start_ms, now, now_ms);
        ci->last = mono_to_wall(c->last_in_ms ? c->last_in_ms : c->start_ms, now, now_ms);
        ci->in_msgs = cl_stat_in_msgs(c);
        ci->in_bytes = cl_stat_in_bytes(c);
        ci->out_msgs = cl_stat_out_msgs(c);
        ci->out_bytes = cl_stat_out_bytes(c);
        if (CK_IS_TCP(c->kind)) {
            pthread_mutex_lock(&c->mu);
            ci->pending = c->ob.len + (c->writing ? c->wb.len : 0);
            pthread_mutex_unlock(&c->mu);
        }
        ci->first_sub = subs_first(&sl, c->cid);
        size_t k = ci->first_sub;
        while (k < sl.n && sl.v[k].cid == c->cid)
            k++;
        ci->nsubs = k - ci->first_sub;
    }
    g_sort = sort;
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_cinfo);
    size_t total = n;
    size_t minoff = (uint64_t)offset < total ? (size_t)offset : total;
    size_t maxoff = minoff + ((uint64_t)limit < total - minoff ? (size_t)limit : total - minoff);

    js_add_u64(o, "num_connections", maxoff - minoff);
    js_add_u64(o, "total", total);
    js_add_i64(o, "offset", offset);
    js_add_i64(o, "limit", limit);
    cJSON *arr = cJSON_AddArrayToObject(o, "connections");
    char tb[64];
    for (size_t i = minoff; arr && i < maxoff; i++) {
        cinfo *ci = &v[i];
        client *c = ci->c;
        cJSON *e = cJSON_CreateObject();
        if (!e)
            break;
        cJSON_AddItemToArray(arr, e);
        js_add_u64(e, "cid", ci->cid);
        cJSON_AddStringToObject(e, "kind", kind_name(ci->kind));
        if (ci->kind == CK_TCP) /* xport's flags are loop-thread state: this thread */
            cJSON_AddStringToObject(e, "type", xport_is_ws(c) ? "websocket" : "nats");
        else if (ci->kind == CK_INPROC)
            cJSON_AddStringToObject(e, "type", "in-process");
        bool has_port = CK_IS_TCP(ci->kind) && c->port != 0;
        cJSON_AddStringToObject(e, "ip", has_port ? c->ip : "");
        cJSON_AddNumberToObject(e, "port", has_port ? c->port : 0);
        add_time(e, "start", ci->start);
        add_time(e, "last_activity", ci->last);
        go_uptime(tb, sizeof tb, now - ci->start);
        cJSON_AddStringToObject(e, "uptime", tb);
        go_uptime(tb, sizeof tb, now - ci->last);
        cJSON_AddStringToObject(e, "idle", tb);
        js_add_u64(e, "pending_bytes", ci->pending);
        js_add_u64(e, "in_msgs", ci->in_msgs);
        js_add_u64(e, "out_msgs", ci->out_msgs);
        js_add_u64(e, "in_bytes", ci->in_bytes);
        js_add_u64(e, "out_bytes", ci->out_bytes);
        js_add_u64(e, "subscriptions", ci->nsubs);
        /* name/lang/version are set by CONNECT on this (the loop) thread */
        if (c->name && *c->name)
            cJSON_AddStringToObject(e, "name", c->name);
        if (c->lang && *c->lang)
            cJSON_AddStringToObject(e, "lang", c->lang);
        if (c->version && *c->version)
            cJSON_AddStringToObject(e, "version", c->version);
        /* auth=1: the account, unless the global one (nats-server); Ember does not name
         * the authorized user */
        if (auth && c->acc && c->acc != s->gacc)
            cJSON_AddStringToObject(e, "account", client_acc_name(c));
        if (ci->nsubs && (subs || detail)) {
            cJSON *l = cJSON_AddArrayToObject(e, detail ? "subscriptions_list_detail"
                                                        : "subscriptions_list");
            for (size_t k = ci->first_sub; l && k < ci->first_sub + ci->nsubs; k++) {
                const sub *x = sl.v[k].x;
                cJSON_AddItemToArray(l, detail ? sub_detail(x, false)
                                               : cJSON_CreateString(x->subject ? x->subject : ""));
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        client_release(v[i].c);
    free(v);
    subs_free(&sl);
    return answer_json(a, 200, o, true);
}

static int ep_subsz(monitor *m, qctx *q, mon_answer *a)
{
    server *s = m->s;
    bool detail = false;
    int64_t offset = 0, limit = 0;
    char test[MON_QVAL] = "", acc[MON_QVAL] = "";
    if (q_bool(q, "subs", &detail) || q_int(q, "offset", &offset) || q_int(q, "limit", &limit))
        return answer_text(a, 400, q->err);
    int tn = q_str(q, "test", test, sizeof test);
    q_acc(q, "acc", acc, sizeof acc);
    if (offset < 0)
        offset = 0;
    if (limit <= 0)
        limit = MON_DEFAULT_LIST;
    if (tn > 0 && !subject_is_valid_literal(test, (size_t)tn)) {
        char t[MON_QVAL + 80];
        snprintf(t, sizeof t, "invalid test subject, must be valid publish subject: %s", test);
        return answer_text(a, 400, t);
    }
    /* every account, or the one acc= names (an unknown one: nothing, as nats-server) */
    account *only = acc_named(s, acc);
    bool acc_ok = !acc[0] || only;
    cJSON *o = new_doc(s, wall_ns());
    if (!o)
        return EMBER_ENOMEM;
    sl_sum sum;
    memset(&sum, 0, sizeof sum);
    for (size_t i = 0; acc_ok && i < s->naccs; i++)
        if (!only || s->accs[i] == only)
            sl_sum_add(&sum, s->accs[i]->sl);
    sl_sum_put(o, &sum);
    size_t total = 0;
    cJSON *list = NULL;
    if (detail && acc_ok) {
        sub_list sl;
        if (subs_collect(s, only, &sl)) {
            subs_free(&sl);
            cJSON_Delete(o);
            return EMBER_ENOMEM;
        }
        list = cJSON_CreateArray();
        size_t idx = 0;
        for (size_t i = 0; list && i < sl.n; i++) {
            const sub *x = sl.v[i].x;
            if (tn > 0 && !subject_matches(x->subject, x->subject_len, test, (size_t)tn))
                continue;
            if ((int64_t)idx >= offset && (int64_t)idx < offset + limit)
                cJSON_AddItemToArray(list, sub_detail(x, true));
            idx++;
        }
        total = idx;
        subs_free(&sl);
    }
    js_add_u64(o, "total", total);
    js_add_i64(o, "offset", offset);
    js_add_i64(o, "limit", limit);
    if (list && cJSON_GetArraySize(list) > 0)
        cJSON_AddItemToObject(o, "subscriptions_list", list);
    else
        cJSON_Delete(list);
    return answer_json(a, 200, o, true);
}

/* ------------------------------------------------------------------ JetStream */

static void add_js_config(cJSON *cfg, const js_usage *u)
{
    js_add_i64(cfg, "max_memory", u->max_memory);
    js_add_i64(cfg, "max_storage", u->max_store);
    if (u->store_dir)
        cJSON_AddStringToObject(cfg, "store_dir", u->store_dir);
    /* Ember acks after fsync unless an interval was set (docs/jetstream.md) */
    if (u->sync_interval_ms > 0)
        js_add_i64(cfg, "sync_interval", u->sync_interval_ms * 1000000);
    else
        cJSON_AddBoolToObject(cfg, "sync_always", true);
    if (u->domain)
        cJSON_AddStringToObject(cfg, "domain", u->domain);
}

/* JetStreamStats fields into o: the server's (acc NULL; naccs accounts with JetStream)
 * or one account's. */
static void add_js_stats(cJSON *o, const js_usage *u, const account *acc, size_t naccs)
{
    js_add_u64(o, "memory", u ? u->memory : 0);
    js_add_u64(o, "storage", u ? u->storage : 0);
    if (acc) {
        /* the account's limits; none (nats-server's -1) shows as uint64(-1) */
        js_add_u64(o, "reserved_memory",
                   acc->js_max_memory > 0 ? (uint64_t)acc->js_max_memory : UINT64_MAX);
        js_add_u64(o, "reserved_storage",
                   acc->js_max_store > 0 ? (uint64_t)acc->js_max_store : UINT64_MAX);
    } else {
        js_add_u64(o, "reserved_memory", u ? u->reserved_memory : 0);
        js_add_u64(o, "reserved_storage", u ? u->reserved_storage : 0);
    }
    js_add_u64(o, "accounts", u && !acc ? naccs : 0);
    js_add_u64(o, "ha_assets", 0);
    cJSON *api = cJSON_AddObjectToObject(o, "api");
    if (api) {
        js_add_i64(api, "level", u && !acc ? JS_API_LEVEL : 0);
        js_add_u64(api, "total", u ? u->api_total : 0);
        js_add_u64(api, "errors", u ? u->api_errors : 0);
    }
}

static int cmp_acc_name(const void *a, const void *b)
{
    const account *x = *(account *const *)a, *y = *(account *const *)b;
    return strcmp(x->name, y->name);
}

/* The accounts whose JetStream runs, sorted by name: malloc'd array of *n (NULL when
 * none; *oom on ENOMEM). */
static account **js_accounts(server *s, size_t *n, bool *oom)
{
    *n = 0;
    *oom = false;
    size_t k = 0;
    for (size_t i = 0; i < s->naccs; i++)
        k += s->accs[i]->js != NULL;
    if (!k)
        return NULL;
    account **v = malloc(k * sizeof *v);
    if (!v) {
        *oom = true;
        return NULL;
    }
    for (size_t i = 0; i < s->naccs; i++)
        if (s->accs[i]->js)
            v[(*n)++] = s->accs[i];
    if (*n > 1)
        qsort(v, *n, sizeof *v, cmp_acc_name);
    return v;
}

/* The server's JetStream: every account's usage summed, the server's configuration
 * (limits from the options, as an account without its own limits runs with). false when
 * no account has JetStream. */
static bool js_server_usage(server *s, js_usage *u)
{
    memset(u, 0, sizeof *u);
    bool any = false, mem = false, store = false;
    for (size_t i = 0; i < s->naccs; i++) {
        const account *a = s->accs[i];
        if (!a->js)
            continue;
        js_usage x;
        js_get_usage(a->js, &x);
        if (!any) {
            u->sync_interval_ms = x.sync_interval_ms;
            u->store_dir = x.store_dir;
            u->domain = x.domain;
        }
        any = true;
        u->memory += x.memory;
        u->storage += x.storage;
        u->reserved_memory += x.reserved_memory;
        u->reserved_storage += x.reserved_storage;
        u->streams += x.streams;
        u->consumers += x.consumers;
        u->messages += x.messages;
        u->bytes += x.bytes;
        u->api_total += x.api_total;
        u->api_errors += x.api_errors;
        if (!mem && a->js_max_memory <= 0) {
            u->max_memory = x.max_memory;
            mem = true;
        }
        if (!store && a->js_max_store <= 0) {
            u->max_store = x.max_store;
            store = true;
        }
    }
    if (any && !mem) { /* every account has its own limit: the server's, as js_core sets it */
        u->max_memory = s->opts.jetstream_max_memory;
        if (u->max_memory <= 0) {
            long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
            u->max_memory = pages > 0 && psz > 0 ? (int64_t)pages * psz / 4 * 3 : (1ll << 30);
        }
    }
    if (any && !store)
        u->max_store = s->opts.jetstream_max_store > 0 ? s->opts.jetstream_max_store : (1ll << 40);
    return any;
}

/* Page through a $JS.API *.LIST request, appending each element of `member` to out. */
static int js_list_all(js *j, const char *subject, const char *member, cJSON *out)
{
    int64_t offset = 0;
    for (int guard = 0; guard < 100000; guard++) {
        char body[64];
        snprintf(body, sizeof body, "{\"offset\":%lld}", (long long)offset);
        size_t len;
        char *r = js_api_peek(j, subject, body, &len);
        if (!r)
            return EMBER_ENOMEM;
        cJSON *doc = cJSON_ParseWithLength(r, len);
        free(r);
        if (!doc)
            return EMBER_ENOMEM;
        cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, member);
        int got = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
        while (got > 0 && arr->child) {
            cJSON *it = cJSON_DetachItemViaPointer(arr, arr->child);
            cJSON_AddItemToArray(out, it);
        }
        cJSON *tot = cJSON_GetObjectItemCaseSensitive(doc, "total");
        int64_t total = cJSON_IsNumber(tot) ? (int64_t)tot->valuedouble : 0;
        cJSON_Delete(doc);
        offset += got;
        if (got == 0 || offset >= total)
            return 0;
    }
    return 0;
}

static cJSON *stream_details(server *s, js *j, bool consumers, bool config)
{
    cJSON *streams = cJSON_CreateArray();
    cJSON *out = cJSON_CreateArray();
    if (!streams || !out || js_list_all(j, "$JS.API.STREAM.LIST", "streams", streams)) {
        cJSON_Delete(streams);
        cJSON_Delete(out);
        return NULL;
    }
    const char *leader = s->o_name && *s->o_name ? s->o_name : s->id;
    cJSON *si;
    cJSON_ArrayForEach(si, streams)
    {
        cJSON *cfg = cJSON_GetObjectItemCaseSensitive(si, "config");
        cJSON *nm = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "name") : NULL;
        if (!cJSON_IsString(nm))
            continue;
        cJSON *d = cJSON_CreateObject();
        if (!d)
            break;
        cJSON_AddItemToArray(out, d);
        cJSON_AddStringToObject(d, "name", nm->valuestring);
        cJSON *cr = cJSON_GetObjectItemCaseSensitive(si, "created");
        if (cr)
            cJSON_AddItemToObject(d, "created", cJSON_Duplicate(cr, true));
        cJSON *cl = cJSON_AddObjectToObject(d, "cluster");
        if (cl)
            cJSON_AddStringToObject(cl, "leader", leader);
        if (config)
            cJSON_AddItemToObject(d, "config", cJSON_Duplicate(cfg, true));
        cJSON *state = cJSON_GetObjectItemCaseSensitive(si, "state");
        if (state)
            cJSON_AddItemToObject(d, "state", cJSON_Duplicate(state, true));
        if (consumers) {
            char subj[400];
            snprintf(subj, sizeof subj, "$JS.API.CONSUMER.LIST.%s", nm->valuestring);
            cJSON *cs = cJSON_CreateArray();
            if (cs && js_list_all(j, subj, "consumers", cs) == 0 && cJSON_GetArraySize(cs) > 0) {
                cJSON *ci;
                cJSON_ArrayForEach(ci, cs)
                {
                    if (!config)
                        cJSON_DeleteItemFromObjectCaseSensitive(ci, "config");
                }
                cJSON_AddItemToObject(d, "consumer_detail", cs);
            } else {
                cJSON_Delete(cs);
            }
        }
        cJSON *mi = cJSON_GetObjectItemCaseSensitive(si, "mirror");
        if (mi)
            cJSON_AddItemToObject(d, "mirror", cJSON_Duplicate(mi, true));
        cJSON *so = cJSON_GetObjectItemCaseSensitive(si, "sources");
        if (so)
            cJSON_AddItemToObject(d, "sources", cJSON_Duplicate(so, true));
    }
    cJSON_Delete(streams);
    return out;
}

static int ep_jsz(monitor *m, qctx *q, mon_answer *a)
{
    server *s = m->s;
    bool accounts = false, streams = false, consumers = false, dconsumers = false, config = false;
    bool leader = false, raft = false, sleader = false;
    int64_t offset = 0, limit = 0;
    char acc[MON_QVAL] = "";
    if (q_bool(q, "accounts", &accounts) || q_bool(q, "streams", &streams) ||
        q_bool(q, "consumers", &consumers) || q_bool(q, "direct-consumers", &dconsumers) ||
        q_bool(q, "config", &config) || q_int(q, "offset", &offset) ||
        q_int(q, "limit", &limit) || q_bool(q, "leader-only", &leader) ||
        q_bool(q, "raft", &raft) || q_bool(q, "stream-leader-only", &sleader))
        return answer_text(a, 400, q->err);
    q_acc(q, "acc", acc, sizeof acc);
    if (offset < 0)
        offset = 0;
    if (limit == 0)
        limit = 1024;
    if (consumers)
        streams = true;
    if (streams && !acc[0])
        accounts = true;
    cJSON *o = new_doc(s, wall_ns());
    if (!o)
        return EMBER_ENOMEM;
    js_usage u;
    size_t naccs = 0;
    bool oom = false;
    account **jaccs = js_accounts(s, &naccs, &oom);
    if (oom) {
        cJSON_Delete(o);
        return EMBER_ENOMEM;
    }
    if (!naccs || !js_server_usage(s, &u)) {
        free(jaccs);
        cJSON_AddBoolToObject(o, "disabled", true);
        cJSON *cfg = cJSON_AddObjectToObject(o, "config");
        if (cfg) {
            js_add_i64(cfg, "max_memory", 0);
            js_add_i64(cfg, "max_storage", 0);
        }
        add_js_stats(o, NULL, NULL, 0);
        js_add_u64(o, "streams", 0);
        js_add_u64(o, "consumers", 0);
        js_add_u64(o, "messages", 0);
        js_add_u64(o, "bytes", 0);
        js_add_u64(o, "total", 0);
        return answer_json(a, 200, o, true);
    }
    cJSON *cfg = cJSON_AddObjectToObject(o, "config");
    if (cfg)
        add_js_config(cfg, &u);
    cJSON_AddObjectToObject(o, "limits"); /* no JetStream server limits are set */
    add_js_stats(o, &u, NULL, naccs);
    js_add_u64(o, "streams", u.streams);
    js_add_u64(o, "consumers", u.consumers);
    js_add_u64(o, "messages", u.messages);
    js_add_u64(o, "bytes", u.bytes);
    /* the JetStream accounts by name: acc= naming one selects it; else accounts=1 lists
     * them from offset, limit of them (limit < 0: all) */
    size_t from = 0, to = 0;
    for (size_t i = 0; acc[0] && i < naccs; i++)
        if (!strcmp(jaccs[i]->name, acc)) {
            from = i;
            to = i + 1;
        }
    if (to == 0 && accounts) {
        from = 0;
        to = naccs;
        if (limit > 0) {
            from = (uint64_t)offset < naccs ? (size_t)offset : naccs;
            to = from + ((uint64_t)limit < naccs - from ? (size_t)limit : naccs - from);
        }
    }
    cJSON *ads = to > from ? cJSON_AddArrayToObject(o, "account_details") : NULL;
    for (size_t i = from; ads && i < to; i++) {
        account *a = jaccs[i];
        cJSON *d = cJSON_CreateObject();
        if (!d)
            break;
        cJSON_AddItemToArray(ads, d);
        js_usage au;
        js_get_usage(a->js, &au);
        cJSON_AddStringToObject(d, "name", a->name);
        cJSON_AddStringToObject(d, "id", a->name);
        add_js_stats(d, &au, a, 0);
        if (streams) {
            cJSON *sd = stream_details(s, a->js, consumers, config);
            if (sd && cJSON_GetArraySize(sd) > 0)
                cJSON_AddItemToObject(d, "stream_detail", sd);
            else
                cJSON_Delete(sd);
        }
    }
    free(jaccs);
    js_add_u64(o, "total", naccs);
    (void)dconsumers; /* Ember has no direct (non-public) consumers */
    (void)leader;     /* a single server always leads */
    (void)raft;
    (void)sleader;
    return answer_json(a, 200, o, true);
}

/* ------------------------------------------------------------------ varz, leafz, healthz */

static int ep_varz(monitor *m, mon_answer *a)
{
    server *s = m->s;
    const ember_server_options *op = &s->opts;
    int64_t now = wall_ns();
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return EMBER_ENOMEM;
    char tb[64];
    cJSON_AddStringToObject(o, "server_id", s->id);
    cJSON_AddStringToObject(o, "server_name", s->o_name);
    cJSON_AddStringToObject(o, "version", EMBER_NATS_VERSION);
    cJSON_AddNumberToObject(o, "proto", 1);
    cJSON_AddStringToObject(o, "go", "ember-" EMBER_VERSION_STRING); /* as INFO's "go" */
    cJSON_AddStringToObject(o, "host", s->o_host);
    cJSON_AddNumberToObject(o, "port", s->bound_port);
    if ((op->username && *op->username) || (op->auth_token && *op->auth_token))
        cJSON_AddBoolToObject(o, "auth_required", true);
    if (op->tls_cert_file && *op->tls_cert_file) {
        cJSON_AddBoolToObject(o, "tls_required", true);
        if (op->tls_verify)
            cJSON_AddBoolToObject(o, "tls_verify", true);
    }
    js_add_i64(o, "max_connections", op->max_connections);
    if (op->max_subscriptions > 0)
        js_add_i64(o, "max_subscriptions", op->max_subscriptions);
    js_add_i64(o, "ping_interval", op->ping_interval_ms * 1000000);
    js_add_i64(o, "ping_max", op->max_pings_out);
    cJSON_AddStringToObject(o, "http_host", s->o_http_host ? s->o_http_host : "0.0.0.0");
    cJSON_AddNumberToObject(o, "http_port", m->bound_port);
    cJSON_AddStringToObject(o, "http_base_path", "");
    cJSON_AddNumberToObject(o, "https_port", 0);
    cJSON_AddNumberToObject(o, "auth_timeout", (double)op->auth_timeout_ms / 1000.0);
    js_add_i64(o, "max_control_line", op->max_control_line);
    js_add_i64(o, "max_payload", op->max_payload);
    js_add_i64(o, "max_pending", op->max_pending);
    cJSON_AddObjectToObject(o, "cluster");
    cJSON_AddObjectToObject(o, "gateway");
    cJSON *leaf = cJSON_AddObjectToObject(o, "leaf");
    if (leaf && op->leaf_port != 0) {
        cJSON_AddStringToObject(leaf, "host",
                                op->leaf_host && *op->leaf_host ? op->leaf_host : s->o_host);
        cJSON_AddNumberToObject(leaf, "port", ember_server_leafnode_port(s));
    }
    cJSON_AddObjectToObject(o, "mqtt");
    cJSON *ws = cJSON_AddObjectToObject(o, "websocket");
    if (ws && op->ws_port != 0) {
        cJSON_AddStringToObject(ws, "host", op->ws_host && *op->ws_host ? op->ws_host : s->o_host);
        cJSON_AddNumberToObject(ws, "port", ember_server_websocket_port(s));
        int64_t hs = op->ws_handshake_timeout_ms > 0 ? op->ws_handshake_timeout_ms : 2000;
        js_add_i64(ws, "handshake_timeout", hs * 1000000);
        if (op->ws_no_tls)
            cJSON_AddBoolToObject(ws, "no_tls", true);
        if (op->ws_compression)
            cJSON_AddBoolToObject(ws, "compression", true);
        xport_ws_varz(s, ws); /* origins, websocket authorization */
    }
    cJSON *jsv = cJSON_AddObjectToObject(o, "jetstream");
    js_usage u;
    if (jsv && js_server_usage(s, &u)) {
        size_t naccs = 0;
        for (size_t i = 0; i < s->naccs; i++)
            naccs += s->accs[i]->js != NULL;
        cJSON *cfg = cJSON_AddObjectToObject(jsv, "config");
        if (cfg)
            add_js_config(cfg, &u);
        cJSON *st = cJSON_AddObjectToObject(jsv, "stats");
        if (st)
            add_js_stats(st, &u, NULL, naccs);
        cJSON_AddObjectToObject(jsv, "limits");
    }
    /* nats-server's TLS_TIMEOUT default is 2 s */
    cJSON_AddNumberToObject(o, "tls_timeout",
                            op->tls_timeout_ms > 0 ? (double)op->tls_timeout_ms / 1000.0 : 2);
    js_add_i64(o, "write_deadline", op->write_deadline_ms * 1000000);
    add_time(o, "start", m->start_wall_ns);
    add_time(o, "now", now);
    go_uptime(tb, sizeof tb, now - m->start_wall_ns);
    cJSON_AddStringToObject(o, "uptime", tb);
    js_add_i64(o, "mem", proc_rss());
    cJSON_AddNumberToObject(o, "cores", num_cores());
    cJSON_AddNumberToObject(o, "gomaxprocs", usable_cores());
    cJSON_AddNumberToObject(o, "cpu", proc_cpu(m));
    ember_server_stats st;
    ember_server_get_stats(s, &st);
    int nleafs = leaf_count(s);
    js_add_u64(o, "connections", st.connections);
    js_add_u64(o, "total_connections", st.total_connections);
    cJSON_AddNumberToObject(o, "routes", 0);
    cJSON_AddNumberToObject(o, "remotes", 0);
    cJSON_AddNumberToObject(o, "leafnodes", nleafs);
    js_add_u64(o, "in_msgs", st.in_msgs);
    js_add_u64(o, "out_msgs", st.out_msgs);
    js_add_u64(o, "in_bytes", st.in_bytes);
    js_add_u64(o, "out_bytes", st.out_bytes);
    js_add_u64(o, "slow_consumers", st.slow_consumers);
    uint64_t nsubs = 0; /* of every account, as nats-server's numSubscriptions */
    for (size_t i = 0; i < s->naccs; i++) {
        sublist_stats ss;
        sublist_get_stats(s->accs[i]->sl, &ss);
        nsubs += ss.num_subs;
    }
    js_add_u64(o, "subscriptions", nsubs);
    cJSON *hr = cJSON_AddObjectToObject(o, "http_req_stats");
    for (int i = 0; hr && i < RS__N; i++)
        if (m->req_stats[i])
            js_add_u64(hr, RS_PATHS[i], m->req_stats[i]);
    add_time(o, "config_load_time", m->start_wall_ns);
    cJSON_AddStringToObject(o, "config_digest", "");
    cJSON *scs = cJSON_AddObjectToObject(o, "slow_consumer_stats");
    if (scs) {
        js_add_u64(scs, "clients", st.slow_consumers);
        js_add_u64(scs, "routes", 0);
        js_add_u64(scs, "gateways", 0);
        js_add_u64(scs, "leafs", 0);
    }
    return answer_json(a, 200, o, true);
}

static int ep_leafz(monitor *m, qctx *q, mon_answer *a)
{
    server *s = m->s;
    bool subs = false;
    char acc[MON_QVAL] = "";
    if (q_bool(q, "subs", &subs))
        return answer_text(a, 400, q->err);
    q_acc(q, "acc", acc, sizeof acc);
    cJSON *o = new_doc(s, wall_ns());
    if (!o)
        return EMBER_ENOMEM;
    cJSON *arr = cJSON_CreateArray();
    if (arr)
        leaf_fill_leafz(s, arr, subs);
    /* acc=: the links bound to that account only */
    for (cJSON *e = arr ? arr->child : NULL, *next; acc[0] && e; e = next) {
        next = e->next;
        const cJSON *an = cJSON_GetObjectItemCaseSensitive(e, "account");
        if (!cJSON_IsString(an) || strcmp(an->valuestring, acc) != 0)
            cJSON_Delete(cJSON_DetachItemViaPointer(arr, e));
    }
    cJSON_AddNumberToObject(o, "leafnodes", arr ? cJSON_GetArraySize(arr) : 0);
    if (arr)
        cJSON_AddItemToObject(o, "leafs", arr);
    return answer_json(a, 200, o, true);
}

static void health_fail(cJSON *o, bool details, int *code, int status, const char *st,
                        const char *type, const char *acc, const char *stream,
                        const char *consumer, const char *text)
{
    *code = status;
    if (!details) {
        cJSON_ReplaceItemInObjectCaseSensitive(o, "status", cJSON_CreateString(st));
        cJSON_AddStringToObject(o, "error", text);
        return;
    }
    cJSON *errs = cJSON_GetObjectItemCaseSensitive(o, "errors");
    if (!errs)
        errs = cJSON_AddArrayToObject(o, "errors");
    cJSON *e = cJSON_CreateObject();
    if (!errs || !e) {
        cJSON_Delete(e);
        return;
    }
    cJSON_AddStringToObject(e, "type", type);
    if (acc && *acc)
        cJSON_AddStringToObject(e, "account", acc);
    if (stream && *stream)
        cJSON_AddStringToObject(e, "stream", stream);
    if (consumer && *consumer)
        cJSON_AddStringToObject(e, "consumer", consumer);
    cJSON_AddStringToObject(e, "error", text);
    cJSON_AddItemToArray(errs, e);
}

/* nats-server's healthz for a server without clustering. */
static int ep_healthz(monitor *m, qctx *q, bool http, mon_answer *a)
{
    server *s = m->s;
    bool jsen = false, jsen_only = false, js_server_only = false, js_meta_only = false;
    bool details = false;
    if (q_bool(q, "js-enabled", &jsen) || q_bool(q, "js-enabled-only", &jsen_only) ||
        q_bool(q, "js-server-only", &js_server_only) ||
        q_bool(q, "js-meta-only", &js_meta_only) || q_bool(q, "details", &details))
        return answer_text(a, 400, q->err);
    if (jsen)
        srv_log(s, EMBER_LOG_WARN, "Healthcheck: js-enabled deprecated, use js-enabled-only instead");
    char acc[MON_QVAL] = "", stream[MON_QVAL] = "", consumer[MON_QVAL] = "";
    q_acc(q, "account", acc, sizeof acc);
    q_str(q, "stream", stream, sizeof stream);
    q_str(q, "consumer", consumer, sizeof consumer);
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return EMBER_ENOMEM;
    cJSON_AddStringToObject(o, "status", "ok");
    int code = 0;
    char t[1200];
    bool js_on = false;
    for (size_t i = 0; i < s->naccs; i++)
        js_on = js_on || s->accs[i]->js != NULL;
    /* account=: an account with JetStream (nats-server looks for its store directory) */
    account *ha = acc_named(s, acc);
    js *hj = ha ? ha->js : NULL;
    if (!acc[0] && stream[0]) {
        snprintf(t, sizeof t, "%s must not be empty when checking stream health", "\"account\"");
        health_fail(o, details, &code, 400, "error", "BAD_REQUEST", NULL, NULL, NULL, t);
    } else if (!stream[0] && consumer[0]) {
        snprintf(t, sizeof t, "%s must not be empty when checking consumer health", "\"stream\"");
        health_fail(o, details, &code, 400, "error", "BAD_REQUEST", NULL, NULL, NULL, t);
    } else if (js_server_only || !s->opts.jetstream) {
        /* nothing more to check */
    } else if (!js_on) {
        health_fail(o, details, &code, 503, "unavailable", "JETSTREAM", NULL, NULL, NULL,
                    js_err(JSE_NotEnabledErr)->desc);
    } else if (jsen_only || jsen) {
        /* enabled is all that was asked */
    } else if (acc[0] && !hj) {
        char qa[300];
        go_quote(qa, sizeof qa, acc);
        snprintf(t, sizeof t, "JetStream account %.299s not found", qa);
        health_fail(o, details, &code, 404, "unavailable", "ACCOUNT", acc, NULL, NULL, t);
    } else if (stream[0] && !js_has_stream(hj, stream)) {
        char qs[300], qa[300];
        go_quote(qs, sizeof qs, stream);
        go_quote(qa, sizeof qa, acc);
        snprintf(t, sizeof t, "JetStream stream %.299s not found on account %.299s", qs, qa);
        health_fail(o, details, &code, 404, "unavailable", "STREAM", acc, stream, NULL, t);
    } else if (consumer[0] && !js_consumer_exists(hj, stream, consumer)) {
        char qc[300], qs[300], qa[300];
        go_quote(qc, sizeof qc, consumer);
        go_quote(qs, sizeof qs, stream);
        go_quote(qa, sizeof qa, acc);
        snprintf(t, sizeof t, "JetStream consumer %.299s not found for stream %.299s on account %.299s", qc,
                 qs, qa);
        health_fail(o, details, &code, 404, "unavailable", "CONSUMER", acc, stream, consumer, t);
    }
    if (details) {
        bool errs = cJSON_GetObjectItemCaseSensitive(o, "errors") != NULL;
        cJSON_ReplaceItemInObjectCaseSensitive(o, "status", cJSON_CreateString(errs ? "error" : "ok"));
    }
    if (code == 0)
        code = 200;
    if (code != 200 && http) {
        cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
        srv_log(s, EMBER_LOG_WARN, "Healthcheck failed: %s%s%s", e ? "\"" : "",
                e ? e->valuestring : "1 or more errors", e ? "\"" : "");
    }
    if (!http) {
        /* nats-server's HealthStatus.StatusCode (dropped from the HTTP body only) */
        cJSON *n = cJSON_CreateObject();
        if (!n) {
            cJSON_Delete(o);
            return EMBER_ENOMEM;
        }
        cJSON *status = cJSON_DetachItemFromObjectCaseSensitive(o, "status");
        if (status)
            cJSON_AddItemToArray(n, status); /* keeps its key */
        cJSON_AddNumberToObject(n, "status_code", code);
        while (o->child)
            cJSON_AddItemToArray(n, cJSON_DetachItemViaPointer(o, o->child));
        cJSON_Delete(o);
        o = n;
    }
    return answer_json(a, code, o, false);
}

/* ------------------------------------------------------------------ accountz */

static const char *resp_type_name(int rtype)
{
    switch (rtype) {
    case EMBER_RESPONSE_STREAM: return "Streamed";
    case EMBER_RESPONSE_CHUNKED: return "Chunked";
    default: return "Singleton";
    }
}

static void add_export(cJSON *arr, const acc_export *x)
{
    cJSON *e = cJSON_CreateObject();
    if (!e)
        return;
    cJSON_AddItemToArray(arr, e);
    cJSON_AddStringToObject(e, "subject", x->subject ? x->subject : "");
    cJSON_AddStringToObject(e, "type", x->service ? "service" : "stream");
    if (x->service)
        cJSON_AddStringToObject(e, "response_type", resp_type_name(x->rtype));
    if (x->naccs) {
        cJSON *l = cJSON_AddArrayToObject(e, "approved_accounts");
        for (size_t k = 0; l && k < x->naccs; k++)
            cJSON_AddItemToArray(l, cJSON_CreateString(x->accs[k]));
    }
}

static void add_import(cJSON *arr, const acc_import *m)
{
    cJSON *e = cJSON_CreateObject();
    if (!e)
        return;
    cJSON_AddItemToArray(arr, e);
    const char *subj = m->subject ? m->subject : "";
    if (m->service) {
        /* nats-server: subject is where the importer sends, to the exporter's subject */
        cJSON_AddStringToObject(e, "subject", m->to ? m->to : subj);
        cJSON_AddStringToObject(e, "account", m->from ? m->from->name : "");
        cJSON_AddStringToObject(e, "to", subj);
        cJSON_AddStringToObject(e, "type", "service");
    } else {
        cJSON_AddStringToObject(e, "subject", subj);
        cJSON_AddStringToObject(e, "account", m->from ? m->from->name : "");
        if (m->prefix) {
            size_t n = strlen(m->prefix) + strlen(subj) + 2;
            char *l = malloc(n);
            if (l) {
                snprintf(l, n, "%s.%s", m->prefix, subj);
                cJSON_AddStringToObject(e, "local_subject", l);
                free(l);
            }
        } else {
            cJSON_AddStringToObject(e, "local_subject", m->to ? m->to : subj);
        }
        cJSON_AddStringToObject(e, "type", "stream");
    }
    cJSON_AddBoolToObject(e, "invalid", false);
    cJSON_AddBoolToObject(e, "share", false);
    cJSON_AddBoolToObject(e, "tracking", false);
}

/* nats-server's AccountInfo of a configured account (no JWT, mappings or revocations). */
static cJSON *account_info(monitor *m, account *a)
{
    server *s = m->s;
    cJSON *d = cJSON_CreateObject();
    if (!d)
        return NULL;
    cJSON_AddStringToObject(d, "account_name", a->name);
    add_time(d, "update_time", m->start_wall_ns); /* accounts come with the configuration */
    cJSON_AddBoolToObject(d, "expired", false);
    cJSON_AddBoolToObject(d, "complete", true);
    cJSON_AddBoolToObject(d, "jetstream_enabled", a->js != NULL);
    uint64_t nclients = 0, nleafs = 0;
    pthread_mutex_lock(&s->mu);
    for (client *c = s->clients; c; c = c->next) {
        if (c->acc != a)
            continue;
        if (c->kind == CK_LEAF)
            nleafs++;
        else if (c->kind == CK_TCP || c->kind == CK_INPROC)
            nclients++;
    }
    pthread_mutex_unlock(&s->mu);
    js_add_u64(d, "leafnode_connections", nleafs);
    js_add_u64(d, "client_connections", nclients);
    sl_sum sum;
    memset(&sum, 0, sizeof sum);
    sl_sum_add(&sum, a->sl);
    js_add_u64(d, "subscriptions", sum.st.num_subs);
    /* services first, then streams; imports: streams, then services (nats-server's order) */
    if (a->nexports) {
        cJSON *ex = cJSON_AddArrayToObject(d, "exports");
        for (int pass = 0; ex && pass < 2; pass++)
            for (size_t i = 0; i < a->nexports; i++)
                if (a->exports[i].service == (pass == 0))
                    add_export(ex, &a->exports[i]);
    }
    if (a->nimports) {
        cJSON *im = cJSON_AddArrayToObject(d, "imports");
        for (int pass = 0; im && pass < 2; pass++)
            for (size_t i = 0; i < a->nimports; i++)
                if (a->imports[i].service == (pass == 1))
                    add_import(im, &a->imports[i]);
    }
    cJSON *st = cJSON_AddObjectToObject(d, "sublist_stats");
    if (st)
        sl_sum_put(st, &sum);
    return d;
}

static int ep_accountz(monitor *m, qctx *q, mon_answer *a)
{
    server *s = m->s;
    char acc[MON_QVAL] = "";
    q_acc(q, "acc", acc, sizeof acc);
    account *x = NULL;
    if (acc[0] && !(x = acc_named(s, acc))) {
        char t[MON_QVAL + 64];
        snprintf(t, sizeof t, "Account %s does not exist", acc);
        return answer_text(a, 400, t);
    }
    cJSON *o = new_doc(s, wall_ns());
    if (!o)
        return EMBER_ENOMEM;
    /* no system account: "system_account" is left out, as nats-server without one */
    if (!x) {
        cJSON *l = cJSON_AddArrayToObject(o, "accounts");
        for (size_t i = 0; l && i < s->naccs; i++)
            cJSON_AddItemToArray(l, cJSON_CreateString(s->accs[i]->name));
    } else {
        cJSON *d = account_info(m, x);
        if (!d) {
            cJSON_Delete(o);
            return EMBER_ENOMEM;
        }
        cJSON_AddItemToObject(o, "account_detail", d);
    }
    return answer_json(a, 200, o, true);
}

static int ep_root(mon_answer *a)
{
    static const char html[] =
        "<html lang=\"en\">\n"
        "  <head>\n"
        "    <title>Ember (nats-server " EMBER_NATS_VERSION " compatible)</title>\n"
        "    <style type=\"text/css\">\n"
        "      body { font-family: ui-sans-serif,system-ui,sans-serif; margin-left: 32px }\n"
        "      a { display:block; margin-left: 7px; padding-bottom: 6px; color: rgb(72 72 92); "
        "text-decoration: none }\n"
        "      a:hover { font-weight: 600; color: rgb(59 50 202) }\n"
        "    </style>\n"
        "  </head>\n"
        "  <body>\n"
        "    <h3>Ember v" EMBER_VERSION_STRING " (nats-server " EMBER_NATS_VERSION
        " compatible monitoring)</h3>\n"
        "    <a href=./varz>General</a>\n"
        "    <a href=./jsz>JetStream</a>\n"
        "    <a href=./connz>Connections</a>\n"
        "    <a href=./accountz>Accounts</a>\n"
        "    <a href=./subsz>Subscriptions</a>\n"
        "    <a href=./leafz>LeafNodes</a>\n"
        "    <a href=./healthz>Health Probe</a>\n"
        "    <a href=https://docs.nats.io/running-a-nats-service/nats_admin/monitoring>Help</a>\n"
        "  </body>\n"
        "</html>\n";
    a->body = dup_mem(html, sizeof html - 1);
    if (!a->body)
        return EMBER_ENOMEM;
    a->len = sizeof html - 1;
    a->status = 200;
    a->ctype = "text/html; charset=utf-8";
    return 0;
}

int monitor_answer(server *s, const char *path, size_t path_len, const char *query,
                   size_t query_len, bool http, mon_answer *out)
{
    memset(out, 0, sizeof *out);
    monitor *m = s->mon;
    if (!m)
        return EMBER_ESTATE;
    int ep = -1;
    for (int i = 0; i < RS__N; i++)
        if (path_len == strlen(RS_PATHS[i]) && !memcmp(path, RS_PATHS[i], path_len))
            ep = i;
    if (path_len == 15 && !memcmp(path, "/subscriptionsz", 15))
        ep = RS_SUBSZ; /* nats-server's alias */
    if (ep < 0)
        return answer_text(out, 404, "404 page not found\n");
    if (http)
        m->req_stats[ep]++;
    qctx q = {.q = query, .qlen = query ? query_len : 0};
    switch (ep) {
    case RS_ROOT: return ep_root(out);
    case RS_VARZ: return ep_varz(m, out);
    case RS_CONNZ: return ep_connz(m, &q, out);
    case RS_SUBSZ: return ep_subsz(m, &q, out);
    case RS_JSZ: return ep_jsz(m, &q, out);
    case RS_LEAFZ: return ep_leafz(m, &q, out);
    case RS_HEALTHZ: return ep_healthz(m, &q, http, out);
    case RS_ACCOUNTZ: return ep_accountz(m, &q, out);
    }
    return answer_text(out, 404, "404 page not found\n");
}

/* ------------------------------------------------------------------ calls from hosts */

/* Run one call (loop thread) into c. */
static void call_run(server *s, mon_call *c)
{
    mon_answer a;
    int rc = monitor_answer(s, c->path, c->path_len, c->query, c->query_len, false, &a);
    c->json = NULL;
    bool json = !rc && !strcmp(a.ctype, "application/json");
    bool healthz = c->path_len == 8 && !memcmp(c->path, "/healthz", 8);
    if (rc) {
        c->rc = rc;
        snprintf(c->err, sizeof c->err, "%s", rc == EMBER_ENOMEM ? "out of memory" : "server not ready");
        return;
    }
    if (json && (a.status == 200 || healthz)) {
        c->rc = 0;
        c->json = a.body;
        return;
    }
    int pl = c->path_len > 200 ? 200 : (int)c->path_len;
    if (a.status == 400) {
        c->rc = EMBER_EINVAL;
        snprintf(c->err, sizeof c->err, "%.*s", (int)a.len, a.body);
    } else if (!json && a.status == 200) {
        c->rc = EMBER_ENOTFOUND;
        snprintf(c->err, sizeof c->err, "no JSON at \"%.*s\": the index is an HTML page of the HTTP port", pl, c->path);
    } else {
        c->rc = EMBER_ENOTFOUND;
        snprintf(c->err, sizeof c->err, "no monitoring endpoint \"%.*s\"", pl, c->path);
    }
    free(a.body);
}

static void on_async(uv_async_t *h)
{
    monitor *m = h->data;
    pthread_mutex_lock(&m->mu);
    mon_call *list = m->head;
    m->head = NULL;
    m->tail = &m->head;
    pthread_mutex_unlock(&m->mu);
    while (list) {
        mon_call *c = list;
        list = c->next;
        call_run(m->s, c);
        pthread_mutex_lock(&m->mu);
        c->done = true;
        pthread_cond_broadcast(&m->cv);
        pthread_mutex_unlock(&m->mu);
    }
}

EMBER_API void ember_free(void *p) { free(p); }

EMBER_API int ember_server_monitor(ember_server *s, const char *path_and_query, char **json_out)
{
    if (json_out)
        *json_out = NULL;
    if (!s || !path_and_query || !json_out)
        return err_set(EMBER_EINVAL, "server, path or json_out is NULL");
    char pbuf[2 * HTTP_MAX_TARGET];
    size_t pl = strlen(path_and_query);
    if (pl + 2 > sizeof pbuf)
        return err_set(EMBER_EINVAL, "monitoring path too long");
    size_t o = 0;
    if (path_and_query[0] != '/')
        pbuf[o++] = '/';
    memcpy(pbuf + o, path_and_query, pl + 1);
    mon_call c;
    memset(&c, 0, sizeof c);
    c.path = pbuf;
    const char *qm = strchr(pbuf, '?');
    c.path_len = qm ? (size_t)(qm - pbuf) : strlen(pbuf);
    c.query = qm ? qm + 1 : NULL;
    c.query_len = qm ? strlen(qm + 1) : 0;

    pthread_mutex_lock(&s->mu);
    bool ready = s->ready && s->state == SS_RUNNING;
    bool gone = s->state == SS_SHUTTING || s->state == SS_DONE;
    monitor *m = s->mon;
    pthread_mutex_unlock(&s->mu);
    if (!ready || !m) {
        if (gone || atomic_load(&s->shutdown_requested))
            return err_set(EMBER_ECLOSED, "server is shut down");
        return err_set(EMBER_ESTATE, "server not ready");
    }
    if (srv_on_loop(s)) {
        pthread_mutex_lock(&m->mu);
        bool ok = m->accepting;
        pthread_mutex_unlock(&m->mu);
        if (!ok)
            return err_set(EMBER_ECLOSED, "server is shut down");
        call_run(s, &c);
    } else {
        pthread_mutex_lock(&m->mu);
        if (!m->accepting) {
            pthread_mutex_unlock(&m->mu);
            return err_set(EMBER_ECLOSED, "server is shut down");
        }
        *m->tail = &c;
        m->tail = &c.next;
        uv_async_send(&m->async);
        while (!c.done)
            pthread_cond_wait(&m->cv, &m->mu);
        pthread_mutex_unlock(&m->mu);
    }
    if (c.rc)
        return err_set(c.rc, "%s", c.err);
    *json_out = c.json;
    return EMBER_OK;
}

EMBER_API const char *ember_server_monitor_url(const ember_server *s)
{
    if (!s)
        return NULL;
    server *x = (server *)s;
    pthread_mutex_lock(&x->mu);
    const char *u = x->ready && x->mon && x->mon->bound_port ? x->mon->url : NULL;
    pthread_mutex_unlock(&x->mu);
    return u;
}

EMBER_API int ember_server_monitor_port(const ember_server *s)
{
    if (!s)
        return 0;
    server *x = (server *)s;
    pthread_mutex_lock(&x->mu);
    int p = x->ready && x->mon ? x->mon->bound_port : 0;
    pthread_mutex_unlock(&x->mu);
    return p;
}

/* ------------------------------------------------------------------ HTTP connections */

static void conn_process(mon_conn *c);

static void on_conn_closed(uv_handle_t *h)
{
    mon_conn *c = h->data;
    free(c->buf);
    free(c->out);
    free(c);
}

static void conn_close(mon_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    monitor *m = c->m;
    if (c->prev)
        c->prev->next = c->next;
    else
        m->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    m->nconns--;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    mon_conn *c = h->data;
    *b = uv_buf_init(c->m->rbuf, MON_READ_CHUNK);
}

static void on_written(uv_write_t *w, int status);

static void conn_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b);

static void http_date(char *out, size_t cap)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    static const char *const D[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const M[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT", D[tm.tm_wday], tm.tm_mday,
             M[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Queue one response (headers + body unless head_only) and stop reading until written. */
static void conn_respond(mon_conn *c, int minor, int status, const char *ctype,
                         const char *extra, const char *body, size_t blen, bool head_only)
{
    char date[64], head[640];
    http_date(date, sizeof date);
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.%d %d %s\r\n"
                      "Content-Type: %s\r\n"
                      "%s"
                      "Date: %s\r\n"
                      "Content-Length: %zu\r\n"
                      "%s"
                      "\r\n",
                      minor, status, http_status_text(status), ctype, extra ? extra : "", date,
                      blen, c->close_after ? "Connection: close\r\n" : "");
    if (hn < 0 || (size_t)hn >= sizeof head) {
        conn_close(c);
        return;
    }
    size_t total = (size_t)hn + (head_only ? 0 : blen);
    char *out = malloc(total ? total : 1);
    if (!out) {
        conn_close(c);
        return;
    }
    memcpy(out, head, (size_t)hn);
    if (!head_only && blen)
        memcpy(out + hn, body, blen);
    c->out = out;
    c->writing = true;
    c->write_start_ms = time_mono_ms();
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_buf_t ub = uv_buf_init(out, (unsigned)total);
    c->wr.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &ub, 1, on_written) != 0) {
        free(c->out);
        c->out = NULL;
        c->writing = false;
        conn_close(c);
    }
}

static void on_written(uv_write_t *w, int status)
{
    mon_conn *c = w->data;
    free(c->out);
    c->out = NULL;
    c->writing = false;
    if (c->closing)
        return;
    if (status < 0 || c->close_after) {
        conn_close(c);
        return;
    }
    c->last_ms = time_mono_ms();
    c->req_start_ms = c->len ? c->last_ms : 0;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, conn_read) != 0) {
        conn_close(c);
        return;
    }
    conn_process(c);
}

/* Error answers for requests that cannot be parsed: Go's plain texts, then close. */
static void conn_fail(mon_conn *c, int status, const char *why)
{
    char body[256];
    if (status == 400 && why && strcmp(why, "missing required Host header") == 0)
        snprintf(body, sizeof body, "400 Bad Request: %s", why);
    else
        snprintf(body, sizeof body, "%d %s", status, http_status_text(status));
    c->close_after = true;
    c->len = 0;
    conn_respond(c, 1, status, "text/plain; charset=utf-8", NULL, body, strlen(body), false);
}

static void conn_process(mon_conn *c)
{
    monitor *m = c->m;
    while (!c->writing && !c->closing && c->len > 0) {
        http_req r;
        const char *why = NULL;
        int st = http_parse_request(c->buf, c->len, &r, &why);
        if (st == 1)
            return;
        if (st != 0) {
            conn_fail(c, st, why);
            return;
        }
        bool head_only = !strcmp(r.method, "HEAD");
        c->close_after = !r.keep_alive;
        mon_answer a;
        memset(&a, 0, sizeof a);
        int rc = 0;
        const char *extra = NULL;
        if (!head_only && strcmp(r.method, "GET") != 0) {
            rc = answer_text(&a, 405, "405 method not allowed\n");
            extra = "Allow: GET, HEAD\r\n";
        } else {
            rc = monitor_answer(m->s, r.path, r.path_len, r.query, r.query_len, true, &a);
            if (!rc && a.status == 404)
                extra = "X-Content-Type-Options: nosniff\r\n";
            else if (!rc && !strcmp(a.ctype, "application/json"))
                extra = "Access-Control-Allow-Origin: *\r\n";
        }
        if (rc) {
            free(a.body);
            memset(&a, 0, sizeof a);
            c->close_after = true;
            a.status = 500;
            a.ctype = "text/plain; charset=utf-8";
        }
        /* consume the head and as much of the body as is here */
        size_t used = r.head_len;
        uint64_t body = (uint64_t)r.content_length;
        size_t here = c->len - used;
        size_t take = body < here ? (size_t)body : here;
        used += take;
        c->discard = body - take;
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
        conn_respond(c, r.minor, a.status, a.ctype, extra, a.body ? a.body : "", a.len, head_only);
        free(a.body);
    }
}

static void conn_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    mon_conn *c = st->data;
    if (c->closing)
        return;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    uint64_t now = time_mono_ms();
    c->last_ms = now;
    size_t off = 0, n = (size_t)nread;
    while (off < n && !c->closing) {
        if (c->discard) {
            size_t take = c->discard < n - off ? (size_t)c->discard : n - off;
            c->discard -= take;
            off += take;
            continue;
        }
        if (c->len == 0)
            c->req_start_ms = now;
        size_t room = MON_CONN_BUF - c->len;
        size_t take = n - off < room ? n - off : room;
        if (take == 0) {
            conn_close(c); /* a pipelining flood: more than a full head while answering */
            return;
        }
        memcpy(c->buf + c->len, b->base + off, take);
        c->len += take;
        off += take;
        conn_process(c);
    }
}

static void on_tcp_closed_free(uv_handle_t *h) { free(h); }

static void on_http_connection(uv_stream_t *l, int status)
{
    monitor *m = l->data;
    if (status < 0)
        return;
    mon_conn *c = calloc(1, sizeof *c);
    uv_tcp_t *t = c ? &c->tcp : malloc(sizeof *t);
    if (!t)
        return;
    uv_tcp_init(l->loop, t);
    t->data = c;
    if (uv_accept(l, (uv_stream_t *)t) != 0 || !c || m->nconns >= MON_MAX_CONNS ||
        !(c->buf = malloc(MON_CONN_BUF))) {
        if (c) {
            c->closing = true; /* never linked */
            uv_close((uv_handle_t *)t, on_conn_closed);
        } else {
            uv_close((uv_handle_t *)t, on_tcp_closed_free);
        }
        return;
    }
    c->m = m;
    c->last_ms = time_mono_ms();
    c->next = m->conns;
    if (m->conns)
        m->conns->prev = c;
    m->conns = c;
    m->nconns++;
    uv_tcp_nodelay(t, 1);
    if (uv_read_start((uv_stream_t *)t, on_alloc, conn_read) != 0)
        conn_close(c);
}

static void on_timer(uv_timer_t *t)
{
    monitor *m = t->data;
    uint64_t now = time_mono_ms();
    mon_conn *c = m->conns;
    while (c) {
        mon_conn *next = c->next;
        if (c->writing) {
            if (now - c->write_start_ms > MON_WRITE_TIMEOUT_MS)
                conn_close(c);
        } else if (c->len > 0 || c->discard) {
            if (now - c->req_start_ms > MON_HEADER_TIMEOUT_MS)
                conn_close(c);
        } else if (now - c->last_ms > MON_IDLE_TIMEOUT_MS) {
            conn_close(c);
        }
        c = next;
    }
}

/* ------------------------------------------------------------------ lifecycle */

int monitor_start(server *s, char *err, size_t errlen)
{
    monitor *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    m->s = s;
    m->tail = &m->head;
    m->start_wall_ns = wall_ns();
    m->wall_last_ns = time_mono_ns();
    m->cpu_last_ns = proc_cpu_ns();
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    if (uv_async_init(&s->loop, &m->async, on_async) != 0) {
        pthread_mutex_destroy(&m->mu);
        pthread_cond_destroy(&m->cv);
        free(m);
        snprintf(err, errlen, "monitor: cannot create the event loop handle");
        return -1;
    }
    m->async.data = m;
    m->async_init = true;
    m->accepting = true;
    pthread_mutex_lock(&s->mu);
    s->mon = m;
    pthread_mutex_unlock(&s->mu);
    if (s->opts.http_port == 0)
        return 0;

    const char *host = s->o_http_host ? s->o_http_host : "0.0.0.0";
    int port = s->opts.http_port < 0 ? 0 : s->opts.http_port;
    bool v6 = strchr(host, ':') != NULL;
    char hp[300];
    snprintf(hp, sizeof hp, v6 ? "[%s]:%d" : "%s:%d", host, port);
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0) {
        snprintf(err, errlen, "can't listen to the monitor port: listen tcp: lookup %s: invalid host",
                 host);
        return -1;
    }
    m->rbuf = malloc(MON_READ_CHUNK);
    if (!m->rbuf) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = srv_listen(s, &m->listener, host, port, 128, on_http_connection, m, &m->bound_port,
                        &m->listening);
    if (rc) {
        snprintf(err, errlen, "can't listen to the monitor port: listen tcp %s: %s", hp,
                 uv_strerror(rc));
        return -1;
    }
    const char *uh = host;
    if (!strcmp(uh, "0.0.0.0") || !strcmp(uh, "::") || !*uh)
        uh = "127.0.0.1";
    snprintf(m->url, sizeof m->url, strchr(uh, ':') ? "http://[%s]:%d" : "http://%s:%d", uh,
             m->bound_port);
    uv_timer_init(&s->loop, &m->timer);
    m->timer.data = m;
    m->timer_init = true;
    uv_timer_start(&m->timer, on_timer, 1000, 1000);
    srv_log(s, EMBER_LOG_INFO, v6 ? "Starting http monitor on [%s]:%d" : "Starting http monitor on %s:%d",
            host, m->bound_port);
    return 0;
}

void monitor_stop(server *s)
{
    monitor *m = s->mon;
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    bool was = m->accepting;
    m->accepting = false;
    mon_call *list = m->head;
    m->head = NULL;
    m->tail = &m->head;
    for (mon_call *c = list; c; c = c->next) {
        c->rc = EMBER_ECLOSED;
        snprintf(c->err, sizeof c->err, "server is shut down");
        c->done = true;
    }
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    if (!was)
        return;
    if (m->async_init && !uv_is_closing((uv_handle_t *)&m->async))
        uv_close((uv_handle_t *)&m->async, NULL);
    if (m->listening && !uv_is_closing((uv_handle_t *)&m->listener))
        uv_close((uv_handle_t *)&m->listener, NULL);
    if (m->timer_init && !uv_is_closing((uv_handle_t *)&m->timer)) {
        uv_timer_stop(&m->timer);
        uv_close((uv_handle_t *)&m->timer, NULL);
    }
    while (m->conns)
        conn_close(m->conns);
}

void monitor_free(server *s)
{
    monitor *m = s->mon;
    if (!m)
        return;
    s->mon = NULL;
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    free(m->rbuf);
    free(m);
}
