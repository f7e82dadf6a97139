/* js_stream: JetStream streams, as nats-server 2.11 (server/stream.go, jetstream_api.go,
 * jetstream_versioning.go; facts, not code): the stream configuration (parse, checks,
 * defaults, echo), the stream table and its $JS.API handlers, direct get, the publish
 * path (dedupe, expectation headers, rollup, per-message TTL, limits, republish, subject
 * transform, PubAcks once the store says durable), subject delete markers, mirrors and
 * sources between local streams, and recovery from disk.
 *
 * Locks (js.h): js->mu guards the table and config changes; s->mu the publish path. The
 * publish path takes js->mu only for interest retention (before s->mu) and for telling
 * consumers about a rollup's purge (after s->mu is released). Nothing is routed while
 * either lock is held: replies go into the caller's outbox, PubAcks are routed from the
 * store's durable callback (no lock held) or after the locks are released. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "account.h"
#include "js_consumer.h"
#include "js_stream.h"

/* ------------------------------------------------------------------ constants */

#define NS_PER_S 1000000000ll
#define DEFAULT_DUP_WINDOW (120ll * NS_PER_S)
#define MAX_NAME_LEN 255
#define MAX_DESC_LEN (4 * 1024)
#define MAX_METADATA_LEN (128 * 1024)
#define NAMES_LIMIT 1024
#define LIST_LIMIT 256
#define MAX_SUBJECT_DETAILS 100000
#define MAX_HDR_LEN 65535
#define STREAM_MAX_REPLICAS 5

#define META_REQ_LEVEL "_nats.req.level"
#define META_VER "_nats.ver"
#define META_LEVEL "_nats.level"

/* ------------------------------------------------------------------ small helpers */

static char *xstrdup(const char *s) { return s ? strdup(s) : NULL; }

static char *xstrndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

static bool streq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return !strcmp(a, b);
}

/* A growable text buffer; on ENOMEM it stays marked failed. */
typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const void *d, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        while (nc < b->n + n + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_fmt(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_fmt(sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        sb_add(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_add(b, big, (size_t)n);
    free(big);
}

/* Go's strconv-free parseInt64 of nats-server: decimal digits only, -1 when invalid. */
static int64_t parse_int64(const char *s, size_t n)
{
    if (n == 0)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Go's time.ParseDuration. 0 ok, -1 invalid. */
static int go_parse_duration(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && (s[i] == '-' || s[i] == '+')) {
        neg = s[i] == '-';
        i++;
    }
    if (i == n)
        return -1;
    if (n - i == 1 && s[i] == '0') {
        *out = 0;
        return 0;
    }
    double total = 0;
    while (i < n) {
        if (!(isdigit((unsigned char)s[i]) || s[i] == '.'))
            return -1;
        double v = 0;
        bool digits = false;
        while (i < n && isdigit((unsigned char)s[i])) {
            v = v * 10 + (s[i] - '0');
            i++;
            digits = true;
        }
        if (i < n && s[i] == '.') {
            i++;
            double scale = 0.1;
            while (i < n && isdigit((unsigned char)s[i])) {
                v += (s[i] - '0') * scale;
                scale /= 10;
                i++;
                digits = true;
            }
        }
        if (!digits)
            return -1;
        size_t us = i;
        while (i < n && !(isdigit((unsigned char)s[i]) || s[i] == '.'))
            i++;
        size_t ul = i - us;
        const char *u = s + us;
        double mult;
        if (ul == 2 && !memcmp(u, "ns", 2))
            mult = 1;
        else if ((ul == 2 && !memcmp(u, "us", 2)) || (ul == 3 && !memcmp(u, "\xc2\xb5s", 3)) ||
                 (ul == 3 && !memcmp(u, "\xce\xbcs", 3)))
            mult = 1e3;
        else if (ul == 2 && !memcmp(u, "ms", 2))
            mult = 1e6;
        else if (ul == 1 && u[0] == 's')
            mult = 1e9;
        else if (ul == 1 && u[0] == 'm')
            mult = 60e9;
        else if (ul == 1 && u[0] == 'h')
            mult = 3600e9;
        else
            return -1; /* missing or unknown unit */
        total += v * mult;
        if (total > 9.223372036854775e18)
            return -1;
    }
    *out = (int64_t)(neg ? -total : total);
    return 0;
}

/* A whole number of seconds as Go's time.Duration.String() prints it. */
static void go_duration_secs(char *buf, size_t cap, int64_t secs)
{
    int64_t h = secs / 3600, m = (secs % 3600) / 60, s = secs % 60;
    if (h)
        snprintf(buf, cap, "%lldh%lldm%llds", (long long)h, (long long)m, (long long)s);
    else if (m)
        snprintf(buf, cap, "%lldm%llds", (long long)m, (long long)s);
    else
        snprintf(buf, cap, "%llds", (long long)s);
}

/* nats-server parseMessageTTL: seconds; -1 for "never"; 0 none. -1 return on invalid. */
static int parse_msg_ttl(const char *v, size_t n, int64_t *secs)
{
    if (n == 5 && !strncasecmp(v, "never", 5)) {
        *secs = -1;
        return 0;
    }
    int64_t d;
    if (go_parse_duration(v, n, &d) == 0) {
        if (d < NS_PER_S)
            return -1;
        *secs = d / NS_PER_S;
        return 0;
    }
    int64_t t = parse_int64(v, n);
    if (t < 0)
        return -1;
    *secs = t;
    return 0;
}

/* The value of a header as a NUL-terminated copy in buf (truncated); false when absent
 * or empty (nats-server treats an empty value as absent). */
static bool hdr_val(const char *hdr, size_t hl, const char *key, const char **v, size_t *vl)
{
    if (!hdr || !hl)
        return false;
    if (!js_hdr_get(hdr, hl, key, v, vl))
        return false;
    return *vl > 0;
}

/* Remove every line of header `key` (case-insensitive) from a header block. Returns a
 * malloc'd copy and its length in *out_len. */
static char *hdr_remove(const char *hdr, size_t hl, const char *key, size_t *out_len)
{
    char *o = malloc(hl + 1);
    if (!o)
        return NULL;
    size_t kl = strlen(key), on = 0;
    const char *p = hdr, *end = hdr + hl;
    bool first = true;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *ln_end = eol ? eol + 1 : end;
        bool drop = false;
        if (!first) {
            const char *colon = memchr(p, ':', (size_t)(ln_end - p));
            if (colon && (size_t)(colon - p) == kl && !strncasecmp(p, key, kl))
                drop = true;
        }
        if (!drop) {
            memcpy(o + on, p, (size_t)(ln_end - p));
            on += (size_t)(ln_end - p);
        }
        first = false;
        p = ln_end;
    }
    o[on] = 0;
    *out_len = on;
    return o;
}

/* Append "key: value\r\n" lines to a header block (or start one): Go's genHeader. */
static void hdr_gen(sbuf *b, const char *hdr, size_t hl)
{
    if (hdr && hl > 2)
        sb_add(b, hdr, hl - 2);
    else
        sb_str(b, "NATS/1.0\r\n");
}

static bool subj_has_wildcard(const char *s)
{
    if (!s)
        return false;
    const char *t = s;
    for (;;) {
        const char *e = strchr(t, '.');
        size_t l = e ? (size_t)(e - t) : strlen(t);
        if (l == 1 && (t[0] == '*' || t[0] == '>'))
            return true;
        if (!e)
            return false;
        t = e + 1;
    }
}

/* Is every subject matched by `sub` also matched by `super` (nats-server
 * subjectIsSubsetMatch)? */
static bool subj_subset(const char *sub, const char *super)
{
    const char *a = sub, *b = super;
    for (;;) {
        const char *ae = strchr(a, '.'), *be = strchr(b, '.');
        size_t al = ae ? (size_t)(ae - a) : strlen(a), bl = be ? (size_t)(be - b) : strlen(b);
        if (bl == 1 && b[0] == '>')
            return true;
        if (al == 1 && a[0] == '>')
            return false;
        if (bl == 1 && b[0] == '*') {
            /* '*' covers any single token, also '*' */
        } else if (al == 1 && a[0] == '*') {
            return false;
        } else if (al != bl || memcmp(a, b, al)) {
            return false;
        }
        if (!ae || !be)
            return !ae && !be;
        a = ae + 1;
        b = be + 1;
    }
}

/* ------------------------------------------------------------------ subject transforms */

enum { TF_NONE = 0, TF_WILDCARD, TF_PARTITION, TF_SPLIT_LEFT, TF_SPLIT_RIGHT, TF_SLICE_LEFT,
       TF_SLICE_RIGHT, TF_SPLIT, TF_LEFT, TF_RIGHT };

typedef struct xtok {
    int type;
    char *lit;        /* TF_NONE: the literal token */
    int *idx;         /* source token indexes */
    int nidx;
    int32_t iarg;
    char *sarg;
} xtok;

typedef struct xform {
    char *src, *dest;
    char **stoks;
    int nstoks;
    xtok *d;
    int nd;
    bool dest_fwc;
    bool identity;
} xform;

static void xform_free(xform *x)
{
    if (!x)
        return;
    for (int i = 0; i < x->nstoks; i++)
        free(x->stoks[i]);
    free(x->stoks);
    for (int i = 0; i < x->nd; i++) {
        free(x->d[i].lit);
        free(x->d[i].idx);
        free(x->d[i].sarg);
    }
    free(x->d);
    free(x->src);
    free(x->dest);
    free(x);
}

static int split_toks(const char *s, char ***out)
{
    int n = 1;
    for (const char *p = s; *p; p++)
        n += *p == '.';
    char **t = calloc((size_t)n, sizeof *t);
    if (!t)
        return -1;
    const char *st = s;
    for (int i = 0; i < n; i++) {
        const char *e = strchr(st, '.');
        size_t l = e ? (size_t)(e - st) : strlen(st);
        t[i] = xstrndup(st, l);
        st = e ? e + 1 : st + l;
    }
    *out = t;
    return n;
}

static void free_toks(char **t, int n)
{
    for (int i = 0; i < n; i++)
        free(t[i]);
    free(t);
}

/* subjectInfo: valid, number of '*', has '>' (last). */
static bool subj_info(const char *s, int *npwc, bool *fwc)
{
    *npwc = 0;
    *fwc = false;
    if (!s || !*s)
        return false;
    const char *t = s;
    for (;;) {
        const char *e = strchr(t, '.');
        size_t l = e ? (size_t)(e - t) : strlen(t);
        if (l == 0 || *fwc)
            return false;
        if (l == 1 && t[0] == '>')
            *fwc = true;
        else if (l == 1 && t[0] == '*')
            (*npwc)++;
        if (!e)
            return true;
        t = e + 1;
    }
}

/* Match "{{ name ( args ) }}" case-insensitively on the name's first letter as
 * nats-server's regexps do; returns the args text (malloc'd) or NULL. */
static char *mf_args(const char *tok, const char *name)
{
    size_t l = strlen(tok);
    if (l < 5 || tok[0] != '{' || tok[1] != '{' || tok[l - 1] != '}' || tok[l - 2] != '}')
        return NULL;
    const char *p = tok + 2, *end = tok + l - 2;
    while (p < end && isspace((unsigned char)*p))
        p++;
    size_t nl = strlen(name);
    if ((size_t)(end - p) < nl)
        return NULL;
    /* first letter either case, the rest as written except for the camel-case humps,
     * which the regexps also accept in either case */
    for (size_t i = 0; i < nl; i++)
        if (tolower((unsigned char)p[i]) != tolower((unsigned char)name[i]))
            return NULL;
    for (size_t i = 1; i < nl; i++)
        if (islower((unsigned char)name[i]) && p[i] != name[i])
            return NULL;
    p += nl;
    while (p < end && isspace((unsigned char)*p))
        p++;
    if (p >= end || *p != '(')
        return NULL;
    const char *q = end;
    while (q > p && isspace((unsigned char)q[-1]))
        q--;
    if (q <= p || q[-1] != ')')
        return NULL;
    return xstrndup(p + 1, (size_t)(q - 1 - (p + 1)));
}

static int split_args(char *a, char ***out)
{
    int n = 1;
    for (char *p = a; *p; p++)
        n += *p == ',';
    char **v = calloc((size_t)n, sizeof *v);
    if (!v)
        return -1;
    char *st = a;
    for (int i = 0; i < n; i++) {
        char *e = strchr(st, ',');
        if (e)
            *e = 0;
        v[i] = st;
        st = e ? e + 1 : st + strlen(st);
        while (*st == ' ' || *st == '\t' || *st == '\n' || *st == '\r' || *st == '\f' ||
               *st == '\v')
            st++;
    }
    *out = v;
    return n;
}

static bool atoi_trim(const char *s, long long *v)
{
    while (*s == ' ')
        s++;
    char *e;
    errno = 0;
    long long x = strtoll(s, &e, 10);
    if (e == s || errno)
        return false;
    while (*e == ' ')
        e++;
    if (*e)
        return false;
    *v = x;
    return true;
}

#define MAP_ERR "invalid mapping destination"

/* indexPlaceHolders: one destination token. 0, or -1 with err. */
static int xtok_parse(const char *tok, xtok *t, char *err, size_t cap)
{
    memset(t, 0, sizeof *t);
    size_t l = strlen(tok);
    if (l > 1 && tok[0] == '$') {
        long long v;
        if (atoi_trim(tok + 1, &v) && tok[1] != ' ') {
            t->type = TF_WILDCARD;
            t->idx = malloc(sizeof(int));
            if (!t->idx)
                return -1;
            t->idx[0] = (int)v;
            t->nidx = 1;
            return 0;
        }
        t->type = TF_NONE;
        return 0;
    }
    if (!(l > 4 && tok[0] == '{' && tok[1] == '{' && tok[l - 2] == '}' && tok[l - 1] == '}')) {
        t->type = TF_NONE;
        return 0;
    }
    static const struct {
        const char *name;
        int type;
    } fns[] = {{"wildcard", TF_WILDCARD},        {"partition", TF_PARTITION},
               {"splitFromLeft", TF_SPLIT_LEFT}, {"splitFromRight", TF_SPLIT_RIGHT},
               {"sliceFromLeft", TF_SLICE_LEFT}, {"sliceFromRight", TF_SLICE_RIGHT},
               {"split", TF_SPLIT},              {"left", TF_LEFT},
               {"right", TF_RIGHT}};
    for (size_t f = 0; f < sizeof fns / sizeof fns[0]; f++) {
        char *a = mf_args(tok, fns[f].name);
        if (!a)
            continue;
        char **av = NULL;
        int an = split_args(a, &av);
        int rc = 0;
        const char *why = NULL;
        long long v;
        if (an < 0) {
            free(a);
            return -1;
        }
        t->type = fns[f].type;
        switch (fns[f].type) {
        case TF_WILDCARD:
            if (an == 1 && !*av[0])
                why = "not enough arguments passed to the function";
            else if (an > 1)
                why = "too many arguments passed to the function";
            else if (!atoi_trim(av[0], &v))
                why = "function argument is invalid or in the wrong format";
            else {
                t->idx = malloc(sizeof(int));
                t->idx[0] = (int)v;
                t->nidx = 1;
            }
            break;
        case TF_PARTITION:
            if (an < 2) {
                why = "not enough arguments passed to the function";
                break;
            }
            if (!atoi_trim(av[0], &v)) {
                why = "function argument is invalid or in the wrong format";
                break;
            }
            t->iarg = (int32_t)v;
            t->idx = calloc((size_t)an, sizeof(int));
            t->nidx = an - 1;
            for (int i = 1; i < an && !why; i++) {
                if (!atoi_trim(av[i], &v))
                    why = "function argument is invalid or in the wrong format";
                else
                    t->idx[i - 1] = (int)v;
            }
            break;
        case TF_SPLIT:
            if (an < 2)
                why = "not enough arguments passed to the function";
            else if (an > 2)
                why = "too many arguments passed to the function";
            else if (!atoi_trim(av[0], &v))
                why = "function argument is invalid or in the wrong format";
            else if (strchr(av[1], ' ') || strchr(av[1], '.'))
                why = "function argument is invalid or in the wrong format";
            else {
                t->idx = malloc(sizeof(int));
                t->idx[0] = (int)v;
                t->nidx = 1;
                t->sarg = xstrdup(av[1]);
            }
            break;
        default: {
            long long w;
            if (an < 2)
                why = "not enough arguments passed to the function";
            else if (an > 2)
                why = "too many arguments passed to the function";
            else if (!atoi_trim(av[0], &w) || !atoi_trim(av[1], &v) || v > INT32_MAX ||
                     v < INT32_MIN)
                why = "function argument is invalid or in the wrong format";
            else {
                t->idx = malloc(sizeof(int));
                t->idx[0] = (int)w;
                t->nidx = 1;
                t->iarg = (int32_t)v;
            }
        }
        }
        if (why) {
            snprintf(err, cap, MAP_ERR ": %s in %s", why, tok);
            rc = -1;
        }
        free(av);
        free(a);
        return rc;
    }
    snprintf(err, cap, MAP_ERR ": unknown function in %s", tok);
    return -1;
}

/* NewSubjectTransform (not strict). dest NULL/"" gives NULL with no error. */
static xform *xform_new(const char *src, const char *dest, char *err, size_t cap, bool *bad)
{
    *bad = false;
    if (!dest || !*dest)
        return NULL;
    if (!src || !*src)
        src = ">";
    int snp, dnp;
    bool sfwc, dfwc;
    if (!subj_info(src, &snp, &sfwc) || !subj_info(dest, &dnp, &dfwc) || dnp > 0 ||
        sfwc != dfwc) {
        snprintf(err, cap, "invalid subject");
        *bad = true;
        return NULL;
    }
    xform *x = calloc(1, sizeof *x);
    if (!x) {
        *bad = true;
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    x->src = xstrdup(src);
    x->dest = xstrdup(dest);
    x->identity = !strcmp(src, ">") && !strcmp(dest, ">");
    x->nstoks = split_toks(src, &x->stoks);
    char **dt = NULL;
    int nd = split_toks(dest, &dt);
    if (x->nstoks < 0 || nd < 0) {
        free_toks(dt, nd > 0 ? nd : 0);
        if (x->nstoks < 0)
            x->nstoks = 0;
        xform_free(x);
        *bad = true;
        return NULL;
    }
    x->d = calloc((size_t)nd, sizeof *x->d);
    x->nd = nd;
    /* source wildcard positions, 1-based */
    int *sti = calloc((size_t)x->nstoks + 1, sizeof(int));
    int k = 0;
    for (int i = 0; i < x->nstoks; i++)
        if (!strcmp(x->stoks[i], "*"))
            sti[++k] = i;
    for (int i = 0; i < nd; i++) {
        xtok *t = &x->d[i];
        if (xtok_parse(dt[i], t, err, cap) != 0) {
            *bad = true;
            break;
        }
        if (t->type == TF_NONE) {
            t->lit = dt[i];
            dt[i] = NULL;
            continue;
        }
        if (snp == 0) {
            snprintf(err, cap, MAP_ERR ": wildcard index out of range in %s", dt[i]);
            *bad = true;
            break;
        }
        for (int a = 0; a < t->nidx; a++) {
            if (t->idx[a] > snp || t->idx[a] < 0) {
                snprintf(err, cap, MAP_ERR ": wildcard index out of range in %s: [%d]", dt[i],
                         t->idx[a]);
                *bad = true;
                break;
            }
            t->idx[a] = sti[t->idx[a]];
        }
        if (*bad)
            break;
    }
    x->dest_fwc = nd > 0 && x->d[nd - 1].type == TF_NONE && x->d[nd - 1].lit &&
                  !strcmp(x->d[nd - 1].lit, ">");
    free(sti);
    free_toks(dt, nd);
    if (*bad) {
        xform_free(x);
        return NULL;
    }
    return x;
}

/* Transform a literal subject; false when it does not match the source. out is malloc'd. */
static bool xform_apply(const xform *x, const char *subj, size_t sl, char **out)
{
    *out = NULL;
    if (x->identity) {
        *out = xstrndup(subj, sl);
        return *out != NULL;
    }
    if (strcmp(x->src, ">") && !js_subj_match(x->src, subj, sl))
        return false;
    const char *tok[256];
    size_t tl[256];
    int n = js_subj_tokens(subj, sl, tok, tl, 256);
    if (n > 256)
        return false;
    sbuf b = {0};
    for (int i = 0; i < x->nd; i++) {
        const xtok *t = &x->d[i];
        if (t->type == TF_NONE) {
            if (!strcmp(t->lit, ">"))
                break;
            sb_str(&b, t->lit);
        } else if (t->type == TF_PARTITION) {
            uint32_t h = 2166136261u;
            for (int a = 0; a < t->nidx; a++)
                for (size_t c = 0; t->idx[a] < n && c < tl[t->idx[a]]; c++) {
                    h ^= (unsigned char)tok[t->idx[a]][c];
                    h *= 16777619u;
                }
            sb_fmt(&b, "%u", t->iarg > 0 ? h % (uint32_t)t->iarg : 0);
        } else {
            int si = t->nidx ? t->idx[0] : -1;
            if (si < 0 || si >= n) {
                /* nothing */
            } else {
                const char *st = tok[si];
                size_t stl = tl[si];
                int pos = t->iarg;
                switch (t->type) {
                case TF_WILDCARD:
                    sb_add(&b, st, stl);
                    break;
                case TF_SPLIT_LEFT:
                    if (pos > 0 && (size_t)pos < stl) {
                        sb_add(&b, st, (size_t)pos);
                        sb_str(&b, ".");
                        sb_add(&b, st + pos, stl - (size_t)pos);
                    } else {
                        sb_add(&b, st, stl);
                    }
                    break;
                case TF_SPLIT_RIGHT:
                    if (pos > 0 && (size_t)pos < stl) {
                        sb_add(&b, st, stl - (size_t)pos);
                        sb_str(&b, ".");
                        sb_add(&b, st + stl - (size_t)pos, (size_t)pos);
                    } else {
                        sb_add(&b, st, stl);
                    }
                    break;
                case TF_SLICE_LEFT:
                    if (pos > 0 && (size_t)pos < stl) {
                        size_t z = (size_t)pos;
                        for (size_t j = 0; j + z <= stl; j += z) {
                            if (j)
                                sb_str(&b, ".");
                            sb_add(&b, st + j, z);
                            if (j + z != stl && j + z + z > stl) {
                                sb_str(&b, ".");
                                sb_add(&b, st + j + z, stl - j - z);
                                break;
                            }
                        }
                    } else {
                        sb_add(&b, st, stl);
                    }
                    break;
                case TF_SLICE_RIGHT:
                    if (pos > 0 && (size_t)pos < stl) {
                        size_t z = (size_t)pos, rem = stl % z;
                        if (rem) {
                            sb_add(&b, st, rem);
                            sb_str(&b, ".");
                        }
                        for (size_t j = rem; j + z <= stl; j += z) {
                            sb_add(&b, st + j, z);
                            if (j + z < stl)
                                sb_str(&b, ".");
                        }
                    } else {
                        sb_add(&b, st, stl);
                    }
                    break;
                case TF_SPLIT: {
                    /* strings.Split then join non-empty parts with '.' */
                    const char *d = t->sarg;
                    size_t dl = strlen(d);
                    bool any = false;
                    size_t j = 0;
                    while (j <= stl) {
                        const char *hit = dl ? memmem(st + j, stl - j, d, dl) : NULL;
                        size_t e = hit ? (size_t)(hit - st) : stl;
                        if (e > j) {
                            if (any)
                                sb_str(&b, ".");
                            sb_add(&b, st + j, e - j);
                            any = true;
                        }
                        if (!hit)
                            break;
                        j = e + dl;
                    }
                    break;
                }
                case TF_LEFT:
                    sb_add(&b, st, pos > 0 && (size_t)pos < stl ? (size_t)pos : stl);
                    break;
                case TF_RIGHT:
                    if (pos > 0 && (size_t)pos < stl)
                        sb_add(&b, st + stl - (size_t)pos, (size_t)pos);
                    else
                        sb_add(&b, st, stl);
                    break;
                }
            }
        }
        if (i < x->nd - 1)
            sb_str(&b, ".");
    }
    if (x->dest_fwc) {
        for (int i = x->nstoks - 1; i < n; i++) {
            sb_add(&b, tok[i], tl[i]);
            if (i < n - 1)
                sb_str(&b, ".");
        }
    }
    if (b.oom || !b.p) {
        free(b.p);
        return false;
    }
    *out = b.p;
    return true;
}

/* ValidateMapping: 0 or -1 with err. */
static int validate_mapping(const char *src, const char *dest, char *err, size_t cap)
{
    if (!dest || !*dest)
        return 0;
    bool sfwc = false;
    const char *t = dest;
    for (;;) {
        const char *e = strchr(t, '.');
        size_t l = e ? (size_t)(e - t) : strlen(t);
        if (l == 0 || sfwc) {
            snprintf(err, cap, MAP_ERR ": invalid transform in %.*s", (int)l, t);
            return -1;
        }
        if (l > 4 && t[0] == '{' && t[1] == '{' && t[l - 2] == '}' && t[l - 1] == '}') {
            /* checked by xform_new */
        } else if (l == 1 && t[0] == '>') {
            sfwc = true;
        } else {
            for (size_t i = 0; i < l; i++)
                if (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\f' || t[i] == '\r') {
                    snprintf(err, cap, MAP_ERR ": invalid transform");
                    return -1;
                }
        }
        if (!e)
            break;
        t = e + 1;
    }
    bool bad;
    xform *x = xform_new(src, dest, err, cap, &bad);
    xform_free(x);
    return bad ? -1 : 0;
}

/* ------------------------------------------------------------------ config: memory */

static void source_free_fields(js_stream_source *s)
{
    free(s->name);
    free(s->filter_subject);
    for (size_t i = 0; i < s->ntransforms; i++) {
        free(s->transforms[i].src);
        free(s->transforms[i].dest);
    }
    free(s->transforms);
    free(s->external_api);
    free(s->external_deliver);
    memset(s, 0, sizeof *s);
}

static void cfg_free(js_stream_cfg *c)
{
    free(c->name);
    free(c->description);
    for (size_t i = 0; i < c->nsubjects; i++)
        free(c->subjects[i]);
    free(c->subjects);
    if (c->subject_transform) {
        free(c->subject_transform->src);
        free(c->subject_transform->dest);
        free(c->subject_transform);
    }
    if (c->republish) {
        free(c->republish->src);
        free(c->republish->dest);
        free(c->republish);
    }
    if (c->mirror) {
        source_free_fields(c->mirror);
        free(c->mirror);
    }
    for (size_t i = 0; i < c->nsources; i++)
        source_free_fields(&c->sources[i]);
    free(c->sources);
    free(c->compression);
    cJSON_Delete(c->placement);
    cJSON_Delete(c->metadata);
    memset(c, 0, sizeof *c);
}

static bool source_copy(js_stream_source *d, const js_stream_source *s)
{
    memset(d, 0, sizeof *d);
    d->name = xstrdup(s->name);
    d->opt_start_seq = s->opt_start_seq;
    d->opt_start_time_ns = s->opt_start_time_ns;
    d->filter_subject = xstrdup(s->filter_subject);
    d->external_api = xstrdup(s->external_api);
    d->external_deliver = xstrdup(s->external_deliver);
    if (s->ntransforms) {
        d->transforms = calloc(s->ntransforms, sizeof *d->transforms);
        if (!d->transforms)
            return false;
        d->ntransforms = s->ntransforms;
        for (size_t i = 0; i < s->ntransforms; i++) {
            d->transforms[i].src = xstrdup(s->transforms[i].src);
            d->transforms[i].dest = xstrdup(s->transforms[i].dest);
        }
    }
    return true;
}

static bool cfg_copy(js_stream_cfg *d, const js_stream_cfg *s)
{
    *d = *s;
    /* nothing of s may be freed through d on failure */
    d->name = d->description = d->compression = NULL;
    d->subjects = NULL;
    d->nsubjects = 0;
    d->subject_transform = NULL;
    d->republish = NULL;
    d->mirror = NULL;
    d->sources = NULL;
    d->nsources = 0;
    d->placement = d->metadata = NULL;
    d->name = xstrdup(s->name);
    d->description = xstrdup(s->description);
    d->subjects = NULL;
    d->nsubjects = 0;
    if (s->nsubjects) {
        d->subjects = calloc(s->nsubjects, sizeof(char *));
        if (!d->subjects)
            goto fail;
        d->nsubjects = s->nsubjects;
        for (size_t i = 0; i < s->nsubjects; i++)
            d->subjects[i] = xstrdup(s->subjects[i]);
    }
    d->subject_transform = NULL;
    if (s->subject_transform) {
        d->subject_transform = calloc(1, sizeof *d->subject_transform);
        if (!d->subject_transform)
            goto fail;
        d->subject_transform->src = xstrdup(s->subject_transform->src);
        d->subject_transform->dest = xstrdup(s->subject_transform->dest);
    }
    d->republish = NULL;
    if (s->republish) {
        d->republish = calloc(1, sizeof *d->republish);
        if (!d->republish)
            goto fail;
        d->republish->src = xstrdup(s->republish->src);
        d->republish->dest = xstrdup(s->republish->dest);
        d->republish->headers_only = s->republish->headers_only;
    }
    d->mirror = NULL;
    if (s->mirror) {
        d->mirror = calloc(1, sizeof *d->mirror);
        if (!d->mirror || !source_copy(d->mirror, s->mirror))
            goto fail;
    }
    d->sources = NULL;
    d->nsources = 0;
    if (s->nsources) {
        d->sources = calloc(s->nsources, sizeof *d->sources);
        if (!d->sources)
            goto fail;
        d->nsources = s->nsources;
        for (size_t i = 0; i < s->nsources; i++)
            if (!source_copy(&d->sources[i], &s->sources[i]))
                goto fail;
    }
    d->compression = xstrdup(s->compression);
    d->placement = s->placement ? cJSON_Duplicate(s->placement, true) : NULL;
    d->metadata = s->metadata ? cJSON_Duplicate(s->metadata, true) : NULL;
    return true;
fail:
    cfg_free(d);
    return false;
}

/* ------------------------------------------------------------------ config: JSON in */

/* Reading a request the way Go's encoding/json fills nats-server's StreamConfigRequest:
 * unknown fields ignored, null leaves the zero value, a wrong type is an error naming
 * the Go field ("json: cannot unmarshal string into Go struct field ..."). */
typedef struct rd {
    char err[512];
    bool failed;
    const char *pfx; /* "StreamConfigRequest." or "StreamConfigRequest.mirror." ... */
} rd;

static const char *json_kind(const cJSON *v)
{
    if (cJSON_IsString(v))
        return "string";
    if (cJSON_IsNumber(v))
        return "number";
    if (cJSON_IsBool(v))
        return "bool";
    if (cJSON_IsArray(v))
        return "array";
    return "object";
}

static void rd_fail(rd *r, const cJSON *v, const char *field, const char *gotype)
{
    if (r->failed)
        return;
    r->failed = true;
    if (cJSON_IsNumber(v) && (!strncmp(gotype, "int", 3) || !strncmp(gotype, "uint", 4) ||
                              !strcmp(gotype, "time.Duration")))
        snprintf(r->err, sizeof r->err,
                 "json: cannot unmarshal number %.17g into Go struct field %s%s of type %s",
                 v->valuedouble, r->pfx, field, gotype);
    else
        snprintf(r->err, sizeof r->err,
                 "json: cannot unmarshal %s into Go struct field %s%s of type %s", json_kind(v),
                 r->pfx, field, gotype);
}

static void rd_failf(rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rd_failf(rd *r, const char *fmt, ...)
{
    if (r->failed)
        return;
    r->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
}

static const cJSON *rd_get(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static bool is_integral(double d) { return d >= -9.3e18 && d <= 9.3e18 && d == (double)(int64_t)d; }

static void rd_str(rd *r, const cJSON *o, const char *key, char **dst)
{
    const cJSON *v = rd_get(o, key);
    if (!v)
        return;
    if (!cJSON_IsString(v)) {
        rd_fail(r, v, key, "string");
        return;
    }
    free(*dst);
    *dst = xstrdup(v->valuestring);
}

static void rd_int(rd *r, const cJSON *o, const char *key, double min, double max,
                   const char *gotype, int64_t *dst)
{
    const cJSON *v = rd_get(o, key);
    if (!v)
        return;
    if (!cJSON_IsNumber(v) || !is_integral(v->valuedouble) || v->valuedouble < min ||
        v->valuedouble > max) {
        rd_fail(r, v, key, gotype);
        return;
    }
    *dst = (int64_t)v->valuedouble;
}

static void rd_uint(rd *r, const cJSON *o, const char *key, uint64_t *dst)
{
    const cJSON *v = rd_get(o, key);
    if (!v)
        return;
    if (!cJSON_IsNumber(v) || !is_integral(v->valuedouble) || v->valuedouble < 0 ||
        v->valuedouble >= 1.8446744073709552e19) {
        rd_fail(r, v, key, "uint64");
        return;
    }
    *dst = (uint64_t)v->valuedouble;
}

static void rd_bool(rd *r, const cJSON *o, const char *key, bool *dst)
{
    const cJSON *v = rd_get(o, key);
    if (!v)
        return;
    if (!cJSON_IsBool(v)) {
        rd_fail(r, v, key, "bool");
        return;
    }
    *dst = cJSON_IsTrue(v);
}

/* Time: RFC 3339 string. */
static void rd_time(rd *r, const cJSON *o, const char *key, int64_t *dst)
{
    const cJSON *v = rd_get(o, key);
    if (!v)
        return;
    if (!cJSON_IsString(v)) {
        rd_failf(r, "Time.UnmarshalJSON: input is not a JSON string");
        return;
    }
    int64_t t;
    if (js_time_parse(v->valuestring, &t) != 0) {
        rd_failf(r, "parsing time \"\\\"%s\\\"\" as \"\\\"2006-01-02T15:04:05Z07:00\\\"\": cannot "
                    "parse \"%s\\\"\" as \"2006\"",
                 v->valuestring, v->valuestring);
        return;
    }
    *dst = t == 0 ? 1 : t; /* 0 means "none" here */
}

/* An enum given as a JSON string, compared exactly (or lower-cased). Returns the index in
 * names, -1 when absent; sets the nats-server UnmarshalJSON error when unknown. */
static int rd_enum(rd *r, const cJSON *o, const char *key, const char *const *names, int n,
                   bool lower)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v)
        return -1;
    if (cJSON_IsString(v)) {
        for (int i = 0; i < n; i++)
            if (lower ? !strcasecmp(v->valuestring, names[i]) : !strcmp(v->valuestring, names[i]))
                return i;
    }
    char *raw = cJSON_PrintUnformatted(v);
    /* Go's %q of the raw JSON bytes */
    sbuf q = {0};
    sb_str(&q, "\"");
    for (const char *p = raw ? raw : ""; *p; p++) {
        if (*p == '"' || *p == '\\')
            sb_str(&q, "\\");
        sb_add(&q, p, 1);
    }
    sb_str(&q, "\"");
    rd_failf(r, "can not unmarshal %s", q.p ? q.p : "");
    free(q.p);
    cJSON_free(raw);
    return -1;
}

static void rd_strarr(rd *r, const cJSON *o, const char *key, char ***dst, size_t *n)
{
    const cJSON *v = rd_get(o, key);
    if (!v)
        return;
    if (!cJSON_IsArray(v)) {
        rd_fail(r, v, key, "[]string");
        return;
    }
    int cnt = cJSON_GetArraySize(v);
    char **a = cnt ? calloc((size_t)cnt, sizeof *a) : NULL;
    size_t k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v)
    {
        if (!cJSON_IsString(e)) {
            if (!cJSON_IsNull(e))
                rd_fail(r, e, key, "string");
            if (a)
                a[k++] = xstrdup("");
            continue;
        }
        if (a)
            a[k++] = xstrdup(e->valuestring);
    }
    for (size_t i = 0; i < *n; i++)
        free((*dst)[i]);
    free(*dst);
    *dst = a;
    *n = k;
}

static void rd_transforms(rd *r, const cJSON *o, const char *key, js_subject_transform **dst,
                          size_t *n)
{
    const cJSON *v = rd_get(o, key);
    if (!v)
        return;
    if (!cJSON_IsArray(v)) {
        rd_fail(r, v, key, "[]server.SubjectTransformConfig");
        return;
    }
    int cnt = cJSON_GetArraySize(v);
    js_subject_transform *a = cnt ? calloc((size_t)cnt, sizeof *a) : NULL;
    size_t k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v)
    {
        if (!a)
            break;
        if (!cJSON_IsObject(e)) {
            if (!cJSON_IsNull(e))
                rd_fail(r, e, key, "server.SubjectTransformConfig");
            k++;
            continue;
        }
        rd_str(r, e, "src", &a[k].src);
        rd_str(r, e, "dest", &a[k].dest);
        k++;
    }
    *dst = a;
    *n = k;
}

static void rd_source(rd *r, const cJSON *v, const char *field, js_stream_source *s)
{
    char pfx[128];
    const char *old = r->pfx;
    snprintf(pfx, sizeof pfx, "%s%s.", old, field);
    r->pfx = pfx;
    rd_str(r, v, "name", &s->name);
    rd_uint(r, v, "opt_start_seq", &s->opt_start_seq);
    rd_time(r, v, "opt_start_time", &s->opt_start_time_ns);
    rd_str(r, v, "filter_subject", &s->filter_subject);
    rd_transforms(r, v, "subject_transforms", &s->transforms, &s->ntransforms);
    const cJSON *ext = rd_get(v, "external");
    if (ext) {
        if (!cJSON_IsObject(ext)) {
            rd_fail(r, ext, "external", "server.ExternalStream");
        } else {
            s->external_api = xstrdup("");
            s->external_deliver = xstrdup("");
            rd_str(r, ext, "api", &s->external_api);
            rd_str(r, ext, "deliver", &s->external_deliver);
        }
    }
    r->pfx = old;
}

/* What a request carried beyond the config. */
typedef struct cfg_req {
    bool pedantic;
    bool storage_set; /* "storage" was given (the pre-create limits check skips it if not) */
} cfg_req;

static const char *const RET_NAMES[] = {"limits", "interest", "workqueue"};
static const char *const DISC_NAMES[] = {"old", "new"};
static const char *const STORE_NAMES[] = {"file", "memory", "any"};

/* Parse a StreamConfigRequest body into *c (raw, no defaults). 0, or -1 with the
 * description of 10025 in err. */
static int cfg_parse(const char *body, size_t len, js_stream_cfg *c, cfg_req *rq, char *err,
                     size_t cap)
{
    memset(c, 0, sizeof *c);
    memset(rq, 0, sizeof *rq);
    size_t nb = 0;
    while (nb < len && isspace((unsigned char)body[nb]))
        nb++;
    if (nb == len) {
        snprintf(err, cap, "unexpected end of JSON input");
        return -1;
    }
    if (js_json_syntax_error(body, len, err, cap))
        return -1;
    cJSON *o = cJSON_ParseWithLength(body, len);
    if (!o || !cJSON_IsObject(o)) {
        snprintf(err, cap, "json: cannot unmarshal %s into Go value of type server.StreamConfigRequest",
                 o ? json_kind(o) : "value");
        cJSON_Delete(o);
        return -1;
    }
    rd r = {.pfx = "StreamConfigRequest."};
    rd_str(&r, o, "name", &c->name);
    rd_str(&r, o, "description", &c->description);
    rd_strarr(&r, o, "subjects", &c->subjects, &c->nsubjects);
    int e = rd_enum(&r, o, "retention", RET_NAMES, 3, false);
    if (e >= 0)
        c->retention = (js_retention)e;
    int64_t v;
    v = 0;
    rd_int(&r, o, "max_consumers", -9.2e18, 9.2e18, "int", &v);
    c->max_consumers = v;
    rd_int(&r, o, "max_msgs", -9.2e18, 9.2e18, "int64", &c->max_msgs);
    rd_int(&r, o, "max_bytes", -9.2e18, 9.2e18, "int64", &c->max_bytes);
    rd_int(&r, o, "max_age", -9.2e18, 9.2e18, "time.Duration", &c->max_age_ns);
    rd_int(&r, o, "max_msgs_per_subject", -9.2e18, 9.2e18, "int64", &c->max_msgs_per_subject);
    v = 0;
    rd_int(&r, o, "max_msg_size", INT32_MIN, INT32_MAX, "int32", &v);
    c->max_msg_size = (int32_t)v;
    e = rd_enum(&r, o, "discard", DISC_NAMES, 2, true);
    if (e >= 0)
        c->discard = e ? STORE_DISCARD_NEW : STORE_DISCARD_OLD;
    e = rd_enum(&r, o, "storage", STORE_NAMES, 3, false);
    c->storage = STORE_FILE;
    if (e >= 0) {
        rq->storage_set = true;
        c->storage = e == 1 ? STORE_MEMORY : STORE_FILE;
    }
    v = 0;
    rd_int(&r, o, "num_replicas", -9.2e18, 9.2e18, "int", &v);
    c->num_replicas = v > INT_MAX ? INT_MAX : v < INT_MIN ? INT_MIN : (int)v;
    rd_bool(&r, o, "no_ack", &c->no_ack);
    rd_int(&r, o, "duplicate_window", -9.2e18, 9.2e18, "time.Duration", &c->duplicate_window_ns);
    const cJSON *pl = rd_get(o, "placement");
    if (pl) {
        if (!cJSON_IsObject(pl)) {
            rd_fail(&r, pl, "placement", "server.Placement");
        } else {
            c->placement = cJSON_CreateObject();
            char *cl = NULL, *pref = NULL;
            char **tags = NULL;
            size_t ntags = 0;
            rd_str(&r, pl, "cluster", &cl);
            rd_str(&r, pl, "preferred", &pref);
            rd_strarr(&r, pl, "tags", &tags, &ntags);
            if (cl && *cl)
                cJSON_AddStringToObject(c->placement, "cluster", cl);
            if (rd_get(pl, "tags") && cJSON_IsArray(rd_get(pl, "tags"))) {
                cJSON *ta = cJSON_AddArrayToObject(c->placement, "tags");
                for (size_t i = 0; i < ntags; i++)
                    cJSON_AddItemToArray(ta, cJSON_CreateString(tags[i]));
            }
            if (pref && *pref)
                cJSON_AddStringToObject(c->placement, "preferred", pref);
            free(cl);
            free(pref);
            for (size_t i = 0; i < ntags; i++)
                free(tags[i]);
            free(tags);
        }
    }
    const cJSON *m = rd_get(o, "mirror");
    if (m) {
        if (!cJSON_IsObject(m)) {
            rd_fail(&r, m, "mirror", "server.StreamSource");
        } else {
            c->mirror = calloc(1, sizeof *c->mirror);
            if (c->mirror)
                rd_source(&r, m, "mirror", c->mirror);
        }
    }
    const cJSON *srcs = rd_get(o, "sources");
    if (srcs) {
        if (!cJSON_IsArray(srcs)) {
            rd_fail(&r, srcs, "sources", "[]*server.StreamSource");
        } else {
            int cnt = cJSON_GetArraySize(srcs);
            c->sources = cnt ? calloc((size_t)cnt, sizeof *c->sources) : NULL;
            const cJSON *s;
            cJSON_ArrayForEach(s, srcs)
            {
                if (!c->sources)
                    break;
                if (cJSON_IsObject(s))
                    rd_source(&r, s, "sources", &c->sources[c->nsources]);
                else if (!cJSON_IsNull(s))
                    rd_fail(&r, s, "sources", "server.StreamSource");
                else
                    c->sources[c->nsources].name = NULL; /* a nil source: invalid name */
                c->nsources++;
            }
        }
    }
    const cJSON *cmp = cJSON_GetObjectItemCaseSensitive(o, "compression");
    if (cmp && !cJSON_IsNull(cmp)) {
        if (!cJSON_IsString(cmp))
            rd_fail(&r, cmp, "compression", "string");
        else if (!strcmp(cmp->valuestring, "s2") || !strcmp(cmp->valuestring, "none"))
            c->compression = xstrdup(cmp->valuestring);
        else
            rd_failf(&r, "unknown compression algorithm");
    }
    rd_uint(&r, o, "first_seq", &c->first_seq);
    const cJSON *st = rd_get(o, "subject_transform");
    if (st) {
        if (!cJSON_IsObject(st)) {
            rd_fail(&r, st, "subject_transform", "server.SubjectTransformConfig");
        } else {
            c->subject_transform = calloc(1, sizeof *c->subject_transform);
            if (c->subject_transform) {
                rd_str(&r, st, "src", &c->subject_transform->src);
                rd_str(&r, st, "dest", &c->subject_transform->dest);
            }
        }
    }
    const cJSON *rp = rd_get(o, "republish");
    if (rp) {
        if (!cJSON_IsObject(rp)) {
            rd_fail(&r, rp, "republish", "server.RePublish");
        } else {
            c->republish = calloc(1, sizeof *c->republish);
            if (c->republish) {
                rd_str(&r, rp, "src", &c->republish->src);
                rd_str(&r, rp, "dest", &c->republish->dest);
                rd_bool(&r, rp, "headers_only", &c->republish->headers_only);
            }
        }
    }
    rd_bool(&r, o, "allow_direct", &c->allow_direct);
    rd_bool(&r, o, "mirror_direct", &c->mirror_direct);
    rd_bool(&r, o, "discard_new_per_subject", &c->discard_new_per_subject);
    rd_bool(&r, o, "sealed", &c->sealed);
    rd_bool(&r, o, "deny_delete", &c->deny_delete);
    rd_bool(&r, o, "deny_purge", &c->deny_purge);
    rd_bool(&r, o, "allow_rollup_hdrs", &c->allow_rollup_hdrs);
    const cJSON *cl = rd_get(o, "consumer_limits");
    if (cl) {
        if (!cJSON_IsObject(cl)) {
            rd_fail(&r, cl, "consumer_limits", "server.StreamConsumerLimits");
        } else {
            const char *old = r.pfx;
            r.pfx = "StreamConfigRequest.consumer_limits.";
            rd_int(&r, cl, "inactive_threshold", -9.2e18, 9.2e18, "time.Duration",
                   &c->consumer_inactive_threshold_ns);
            rd_int(&r, cl, "max_ack_pending", -9.2e18, 9.2e18, "int",
                   &c->consumer_max_ack_pending);
            r.pfx = old;
        }
    }
    rd_bool(&r, o, "allow_msg_ttl", &c->allow_msg_ttl);
    rd_int(&r, o, "subject_delete_marker_ttl", -9.2e18, 9.2e18, "time.Duration",
           &c->subject_delete_marker_ttl_ns);
    const cJSON *md = rd_get(o, "metadata");
    if (md) {
        if (!cJSON_IsObject(md)) {
            rd_fail(&r, md, "metadata", "map[string]string");
        } else {
            c->metadata = cJSON_CreateObject();
            const cJSON *kv;
            cJSON_ArrayForEach(kv, md)
            {
                if (cJSON_IsString(kv))
                    cJSON_AddStringToObject(c->metadata, kv->string, kv->valuestring);
                else if (cJSON_IsNull(kv))
                    cJSON_AddStringToObject(c->metadata, kv->string, "");
                else
                    rd_fail(&r, kv, "metadata", "string");
            }
        }
    }
    rd_bool(&r, o, "pedantic", &rq->pedantic);
    cJSON_Delete(o);
    if (r.failed) {
        snprintf(err, cap, "%s", r.err);
        cfg_free(c);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ API errors */

typedef struct jerr {
    int jse;        /* -1: none */
    char a1[600];   /* the first placeholder ({err}, {prefix}, {seq}, ...) */
    char a2[300];
} jerr;

static void jerr_set(jerr *e, int jse, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void jerr_set(jerr *e, int jse, const char *fmt, ...)
{
    e->jse = jse;
    e->a1[0] = e->a2[0] = 0;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->a1, sizeof e->a1, fmt, ap);
        va_end(ap);
    }
}

static cJSON *jerr_json(const char *type, const jerr *e)
{
    return js_api_error(type, e->jse, e->a1, e->a2, NULL);
}


/* ------------------------------------------------------------------ config: checks */

static bool go_valid_name(const char *n)
{
    if (!n || !*n)
        return false;
    return !strpbrk(n, " \t\r\n\f.*>");
}

/* nats-server IsValidSubject (no rune checks). */
static bool go_valid_subject(const char *s)
{
    if (!s || !*s)
        return false;
    bool fwc = false;
    const char *t = s;
    for (;;) {
        const char *e = strchr(t, '.');
        size_t l = e ? (size_t)(e - t) : strlen(t);
        if (l == 0 || fwc)
            return false;
        for (size_t i = 0; i < l; i++)
            if (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\f' || t[i] == '\r')
                return false;
        if (l == 1 && t[0] == '>')
            fwc = true;
        if (!e)
            return true;
        t = e + 1;
    }
}

static bool go_valid_publish_subject(const char *s)
{
    return go_valid_subject(s) && !subj_has_wildcard(s);
}

static jstream *find_stream(js *j, const char *name)
{
    for (jstream *s = j->streams; s; s = s->next)
        if (!s->deleted && !strcmp(s->name, name))
            return s;
    return NULL;
}

/* StreamSource.composeIName */
static char *source_iname(const js_stream_source *s)
{
    sbuf b = {0};
    sb_str(&b, s->name ? s->name : "");
    if (s->external_api) {
        /* getHash: the first 8 characters of the base64 (URL) SHA-256 in nats-server; a
         * stable FNV-based stand-in here (only used to tell sources apart) */
        uint64_t h = 1469598103934665603ull;
        for (const char *p = s->external_api; *p; p++) {
            h ^= (unsigned char)*p;
            h *= 1099511628211ull;
        }
        sb_fmt(&b, ":%08llx", (unsigned long long)(h & 0xffffffffull));
    }
    sb_str(&b, " ");
    if (s->ntransforms == 0) {
        sb_str(&b, s->filter_subject && *s->filter_subject ? s->filter_subject : ">");
        sb_str(&b, " >");
    } else {
        for (size_t i = 0; i < s->ntransforms; i++) {
            if (i)
                sb_str(&b, "\f");
            const char *src = s->transforms[i].src;
            sb_str(&b, src && *src ? src : ">");
        }
        sb_str(&b, " ");
        for (size_t i = 0; i < s->ntransforms; i++) {
            if (i)
                sb_str(&b, "\f");
            const char *d = s->transforms[i].dest;
            sb_str(&b, d && *d ? d : ">");
        }
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

static size_t metadata_len(const cJSON *md)
{
    size_t n = 0;
    const cJSON *kv;
    if (md)
        cJSON_ArrayForEach(kv, md) n += strlen(kv->string) + strlen(kv->valuestring ? kv->valuestring : "");
    return n;
}

static void md_set(cJSON **md, const char *k, const char *v)
{
    if (!*md)
        *md = cJSON_CreateObject();
    if (!*md)
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(*md, k);
    cJSON_AddStringToObject(*md, k, v);
}

/* setStaticStreamMetadata: the required API level; the dynamic keys removed. */
static void md_static(js_stream_cfg *c)
{
    if (c->metadata) {
        cJSON_DeleteItemFromObjectCaseSensitive(c->metadata, META_VER);
        cJSON_DeleteItemFromObjectCaseSensitive(c->metadata, META_LEVEL);
    }
    md_set(&c->metadata, META_REQ_LEVEL,
           c->allow_msg_ttl || c->subject_delete_marker_ttl_ns > 0 ? "1" : "0");
}

/* copyStreamMetadata(cfg, prev): the required level as the old config had it. */
static void md_copy_from(js_stream_cfg *c, const js_stream_cfg *prev)
{
    if (c->metadata) {
        cJSON_DeleteItemFromObjectCaseSensitive(c->metadata, META_VER);
        cJSON_DeleteItemFromObjectCaseSensitive(c->metadata, META_LEVEL);
    }
    const cJSON *pv = prev->metadata ? cJSON_GetObjectItemCaseSensitive(prev->metadata, META_REQ_LEVEL) : NULL;
    if (pv && cJSON_IsString(pv)) {
        md_set(&c->metadata, META_REQ_LEVEL, pv->valuestring);
        return;
    }
    if (c->metadata) {
        cJSON_DeleteItemFromObjectCaseSensitive(c->metadata, META_REQ_LEVEL);
        if (!c->metadata->child) {
            cJSON_Delete(c->metadata);
            c->metadata = NULL;
        }
    }
}

static bool subjects_collide_any(char **a, size_t na, const char *f)
{
    for (size_t i = 0; i < na; i++)
        if (js_subj_overlap(a[i], f))
            return true;
    return false;
}

/* Do other streams' subjects overlap these (self excluded)? */
static bool subjects_overlap(js *j, char **subjects, size_t n, const jstream *self)
{
    for (jstream *s = j->streams; s; s = s->next) {
        if (s == self || s->deleted)
            continue;
        for (size_t a = 0; a < s->cfg.nsubjects; a++)
            for (size_t b = 0; b < n; b++)
                if (js_subj_overlap(subjects[b], s->cfg.subjects[a]))
                    return true;
    }
    return false;
}

/* checkStreamCfg (2.11): validate `in`, fill the defaults into *out (a copy). Returns
 * true, or false with e set. js->mu held (other streams are looked at). */
static bool cfg_check(js *j, const js_stream_cfg *in, bool pedantic, js_stream_cfg *out, jerr *e)
{
    memset(out, 0, sizeof *out);
    if (!go_valid_name(in->name)) {
        jerr_set(e, JSE_StreamInvalidConfigF,
                 "stream name is required and can not contain '.', '*', '>'");
        return false;
    }
    if (strlen(in->name) > MAX_NAME_LEN) {
        jerr_set(e, JSE_StreamInvalidConfigF, "stream name is too long, maximum allowed is %d",
                 MAX_NAME_LEN);
        return false;
    }
    if (in->description && strlen(in->description) > MAX_DESC_LEN) {
        jerr_set(e, JSE_StreamInvalidConfigF,
                 "stream description is too long, maximum allowed is %d", MAX_DESC_LEN);
        return false;
    }
    if (metadata_len(in->metadata) > MAX_METADATA_LEN) {
        jerr_set(e, JSE_StreamInvalidConfigF, "stream metadata exceeds maximum size of %d bytes",
                 MAX_METADATA_LEN);
        return false;
    }
    if (!cfg_copy(out, in)) {
        jerr_set(e, JSE_StreamCreateErrF, "out of memory");
        return false;
    }
    js_stream_cfg *c = out;
    if (!c->compression)
        c->compression = xstrdup("none");
    if (c->num_replicas == 0)
        c->num_replicas = 1;
    if (c->num_replicas > STREAM_MAX_REPLICAS) {
        jerr_set(e, JSE_StreamInvalidConfigF, "maximum replicas is %d", STREAM_MAX_REPLICAS);
        goto fail;
    }
    if (c->num_replicas < 0) {
        jerr_set(e, JSE_ReplicasCountCannotBeNegative, NULL);
        goto fail;
    }
    if (c->max_msgs == 0)
        c->max_msgs = -1;
    if (c->max_msgs_per_subject == 0)
        c->max_msgs_per_subject = -1;
    if (c->max_bytes == 0)
        c->max_bytes = -1;
    if (c->max_msg_size == 0)
        c->max_msg_size = -1;
    if (c->max_consumers == 0)
        c->max_consumers = -1;
    if (c->duplicate_window_ns == 0 && !c->mirror) {
        int64_t maxw = DEFAULT_DUP_WINDOW;
        if (c->max_age_ns != 0 && c->max_age_ns < maxw) {
            if (pedantic) {
                jerr_set(e, JSE_PedanticErrF,
                         "pedantic mode: duplicate window cannot be bigger than max age");
                goto fail;
            }
            c->duplicate_window_ns = c->max_age_ns;
        } else {
            c->duplicate_window_ns = maxw;
        }
    }
    if (c->max_age_ns > 0 && c->max_age_ns < NS_PER_S / 10) {
        jerr_set(e, JSE_StreamInvalidConfigF, "max age needs to be >= 100ms");
        goto fail;
    }
    if (c->duplicate_window_ns < 0) {
        jerr_set(e, JSE_StreamInvalidConfigF, "duplicates window can not be negative");
        goto fail;
    }
    if (c->max_age_ns != 0 && c->duplicate_window_ns > c->max_age_ns) {
        jerr_set(e, JSE_StreamInvalidConfigF, "duplicates window can not be larger then max age");
        goto fail;
    }
    if (c->duplicate_window_ns > 0 && c->duplicate_window_ns < NS_PER_S / 10) {
        jerr_set(e, JSE_StreamInvalidConfigF, "duplicates window needs to be >= 100ms");
        goto fail;
    }
    if (c->deny_purge && c->allow_rollup_hdrs) {
        jerr_set(e, JSE_StreamInvalidConfigF, "roll-ups require the purge permission");
        goto fail;
    }
    if (c->discard_new_per_subject) {
        if (c->discard != STORE_DISCARD_NEW) {
            jerr_set(e, JSE_StreamInvalidConfigF,
                     "discard new per subject requires discard new policy to be set");
            goto fail;
        }
        if (c->max_msgs_per_subject <= 0) {
            jerr_set(e, JSE_StreamInvalidConfigF,
                     "discard new per subject requires max msgs per subject > 0");
            goto fail;
        }
    }
    if (c->subject_delete_marker_ttl_ns > 0) {
        if (c->subject_delete_marker_ttl_ns < NS_PER_S) {
            jerr_set(e, JSE_StreamInvalidConfigF,
                     "subject delete marker TTL must be at least 1 second");
            goto fail;
        }
        if (!c->allow_msg_ttl) {
            if (pedantic) {
                jerr_set(e, JSE_StreamInvalidConfigF,
                         "subject delete marker cannot be set if message TTLs are disabled");
                goto fail;
            }
            c->allow_msg_ttl = true;
        }
        if (!c->allow_rollup_hdrs) {
            if (pedantic) {
                jerr_set(e, JSE_StreamInvalidConfigF,
                         "subject delete marker cannot be set if roll-ups are disabled");
                goto fail;
            }
            c->allow_rollup_hdrs = true;
            c->deny_purge = false;
        }
    } else if (c->subject_delete_marker_ttl_ns < 0) {
        jerr_set(e, JSE_StreamInvalidConfigF, "subject delete marker TTL must not be negative");
        goto fail;
    }

    /* subjects of the streams we mirror/source (for the delivery prefix checks) */
    char **ssubs = NULL;
    size_t nssubs = 0;
    char *dprefix[65];
    char *aprefix[65];
    size_t ndp = 0, nap = 0;
#define ADD_SUBS(st)                                                                  \
    do {                                                                              \
        for (size_t q_ = 0; q_ < (st)->cfg.nsubjects; q_++) {                        \
            char **nn_ = realloc(ssubs, (nssubs + 1) * sizeof *nn_);                  \
            if (nn_) {                                                                \
                ssubs = nn_;                                                          \
                ssubs[nssubs++] = (st)->cfg.subjects[q_];                             \
            }                                                                         \
        }                                                                             \
    } while (0)

    if (c->mirror) {
        js_stream_source *m = c->mirror;
        if (c->first_seq > 0) {
            jerr_set(e, JSE_MirrorWithFirstSeqErr, NULL);
            goto fail2;
        }
        if (c->nsubjects > 0) {
            jerr_set(e, JSE_MirrorWithSubjectsErr, NULL);
            goto fail2;
        }
        if (c->nsources > 0) {
            jerr_set(e, JSE_MirrorWithSourcesErr, NULL);
            goto fail2;
        }
        if (m->filter_subject && *m->filter_subject && m->ntransforms) {
            jerr_set(e, JSE_MirrorMultipleFiltersNotAllowed, NULL);
            goto fail2;
        }
        if (c->subject_delete_marker_ttl_ns > 0) {
            jerr_set(e, JSE_StreamInvalidConfigF, "subject delete markers forbidden on mirrors");
            goto fail2;
        }
        for (size_t a = 0; a < m->ntransforms; a++) {
            const char *src = m->transforms[a].src;
            if (src && *src && !go_valid_subject(src)) {
                jerr_set(e, JSE_MirrorInvalidSubjectFilter, "invalid subject %s", src);
                goto fail2;
            }
            char why[300];
            if (validate_mapping(src, m->transforms[a].dest, why, sizeof why) != 0) {
                jerr_set(e, JSE_MirrorInvalidTransformDestination, "%s", why);
                goto fail2;
            }
            for (size_t b = 0; b < m->ntransforms; b++) {
                const char *o = m->transforms[b].src;
                if (a != b && js_subj_overlap(src && *src ? src : ">", o && *o ? o : ">")) {
                    jerr_set(e, JSE_MirrorOverlappingSubjectFilters, NULL);
                    goto fail2;
                }
            }
        }
        if (!m->external_api && !m->external_deliver) {
            if (!go_valid_name(m->name)) {
                jerr_set(e, JSE_MirrorInvalidStreamName, NULL);
                goto fail2;
            }
            jstream *os = find_stream(j, m->name);
            if (os) {
                ADD_SUBS(os);
                if (c->max_msg_size > 0 && os->cfg.max_msg_size > 0 &&
                    c->max_msg_size < os->cfg.max_msg_size) {
                    jerr_set(e, JSE_MirrorMaxMessageSizeTooBigErr, NULL);
                    goto fail2;
                }
                if (pedantic && c->mirror_direct != os->cfg.allow_direct) {
                    jerr_set(e, JSE_PedanticErrF,
                             "origin stream has direct get set, mirror has it disabled");
                    goto fail2;
                }
                c->mirror_direct = os->cfg.allow_direct;
            }
        } else {
            if (m->external_deliver && *m->external_deliver && ndp < 64)
                dprefix[ndp++] = m->external_deliver;
            if (m->external_api && *m->external_api && nap < 64)
                aprefix[nap++] = m->external_api;
        }
    }
    for (size_t i = 0; i < c->nsources; i++) {
        js_stream_source *src = &c->sources[i];
        if (!go_valid_name(src->name)) {
            jerr_set(e, JSE_SourceInvalidStreamName, NULL);
            goto fail2;
        }
        char *in_i = source_iname(src);
        for (size_t k = 0; k < i && in_i; k++) {
            char *in_k = source_iname(&c->sources[k]);
            bool dup = in_k && !strcmp(in_i, in_k);
            free(in_k);
            if (dup) {
                free(in_i);
                jerr_set(e, JSE_SourceDuplicateDetected, NULL);
                goto fail2;
            }
        }
        free(in_i);
        if (!src->external_api && !src->external_deliver) {
            jstream *os = find_stream(j, src->name);
            if (os) {
                ADD_SUBS(os);
                if (c->max_msg_size > 0 && os->cfg.max_msg_size > 0 &&
                    c->max_msg_size < os->cfg.max_msg_size) {
                    jerr_set(e, JSE_SourceMaxMessageSizeTooBigErr, NULL);
                    goto fail2;
                }
            }
            if (src->filter_subject && *src->filter_subject && src->ntransforms) {
                jerr_set(e, JSE_SourceMultipleFiltersNotAllowed, NULL);
                goto fail2;
            }
            for (size_t a = 0; a < src->ntransforms; a++) {
                const char *ts = src->transforms[a].src;
                if (ts && *ts && !go_valid_subject(ts)) {
                    jerr_set(e, JSE_SourceInvalidSubjectFilter, "invalid subject %s", ts);
                    goto fail2;
                }
                char why[300];
                if (validate_mapping(ts, src->transforms[a].dest, why, sizeof why) != 0) {
                    jerr_set(e, JSE_SourceInvalidTransformDestination, "%s", why);
                    goto fail2;
                }
            }
            for (size_t a = 0; a < src->ntransforms; a++)
                for (size_t b = 0; b < src->ntransforms; b++) {
                    const char *x = src->transforms[a].src, *y = src->transforms[b].src;
                    if (a != b && subj_subset(x && *x ? x : ">", y && *y ? y : ">")) {
                        jerr_set(e, JSE_SourceOverlappingSubjectFilters, NULL);
                        goto fail2;
                    }
                }
        } else {
            if (src->external_deliver && *src->external_deliver && ndp < 64)
                dprefix[ndp++] = src->external_deliver;
            if (src->external_api && *src->external_api && nap < 64)
                aprefix[nap++] = src->external_api;
        }
    }
    for (size_t i = 0; i < ndp; i++) {
        if (!go_valid_publish_subject(dprefix[i])) {
            jerr_set(e, JSE_StreamInvalidExternalDeliverySubjErrF, "%s", dprefix[i]);
            goto fail2;
        }
        for (size_t k = 0; k < nssubs; k++) {
            char both[1024];
            snprintf(both, sizeof both, "%s.%s", dprefix[i], ssubs[k]);
            if (js_subj_overlap(ssubs[k], both)) {
                jerr_set(e, JSE_StreamExternalDelPrefixOverlapsErrF, "%s", dprefix[i]);
                snprintf(e->a2, sizeof e->a2, "%s", ssubs[k]);
                goto fail2;
            }
        }
    }
    for (size_t i = 0; i < nap; i++) {
        if (!go_valid_publish_subject(aprefix[i])) {
            jerr_set(e, JSE_StreamInvalidConfigF,
                     "stream external api prefix \"%s\" must be a valid subject without wildcards",
                     aprefix[i]);
            goto fail2;
        }
        if (js_subj_overlap(aprefix[i], "$JS.API")) {
            jerr_set(e, JSE_StreamExternalApiOverlapErrF, "%s", aprefix[i]);
            snprintf(e->a2, sizeof e->a2, "$JS.API");
            goto fail2;
        }
    }
    free(ssubs);
    ssubs = NULL;

    /* cycle check through local sources and mirrors */
    {
        const char *visited[1024];
        size_t nvis = 0;
        const js_stream_cfg *queue[1024];
        size_t qh = 0, qt = 0;
        queue[qt++] = c;
        while (qh < qt) {
            const js_stream_cfg *cc = queue[qh++];
            if (nvis < 1024)
                visited[nvis++] = cc->name;
            for (size_t i = 0; i < cc->nsources; i++) {
                const js_stream_source *src = &cc->sources[i];
                if (src->external_api || src->external_deliver)
                    continue;
                bool seen = false;
                for (size_t v = 0; v < nvis; v++)
                    if (streq(visited[v], src->name))
                        seen = true;
                if (seen) {
                    const char *f = src->filter_subject;
                    if (!f || !*f || subjects_collide_any(cc->subjects, cc->nsubjects, f)) {
                        jerr_set(e, JSE_StreamInvalidConfigF, "detected cycle");
                        goto fail;
                    }
                } else {
                    jstream *os = src->name ? find_stream(j, src->name) : NULL;
                    if (os && qt < 1024)
                        queue[qt++] = &os->cfg;
                }
            }
            if (cc->mirror && !cc->mirror->external_api && !cc->mirror->external_deliver) {
                for (size_t v = 0; v < nvis; v++)
                    if (streq(visited[v], cc->mirror->name)) {
                        jerr_set(e, JSE_StreamInvalidConfigF, "detected cycle");
                        goto fail;
                    }
                jstream *os = cc->mirror->name ? find_stream(j, cc->mirror->name) : NULL;
                if (os && qt < 1024)
                    queue[qt++] = &os->cfg;
            }
        }
    }

    if (c->nsubjects == 0) {
        if (!c->mirror && c->nsources == 0) {
            c->subjects = calloc(1, sizeof(char *));
            if (c->subjects) {
                c->subjects[0] = xstrdup(c->name);
                c->nsubjects = 1;
            }
        }
    } else {
        if (c->mirror) {
            jerr_set(e, JSE_MirrorWithSubjectsErr, NULL);
            goto fail;
        }
        for (size_t i = 0; i < c->nsubjects; i++) {
            const char *subj = c->subjects[i];
            if (!go_valid_subject(subj)) {
                jerr_set(e, JSE_StreamInvalidConfigF, "invalid subject");
                goto fail;
            }
            for (size_t k = 0; k < i; k++)
                if (!strcmp(c->subjects[k], subj)) {
                    jerr_set(e, JSE_StreamInvalidConfigF, "duplicate subjects detected");
                    goto fail;
                }
            if (!strcmp(subj, ">")) {
                if (!c->no_ack) {
                    jerr_set(e, JSE_StreamInvalidConfigF,
                             "capturing all subjects requires no-ack to be true");
                    goto fail;
                }
                if (c->num_replicas != 1) {
                    jerr_set(e, JSE_StreamInvalidConfigF,
                             "capturing all subjects requires replicas of 1");
                    goto fail;
                }
            }
            if (!c->no_ack) {
                static const char *const ns[] = {"$JS.>", "$JSC.>", "$NRG.>"};
                for (int k = 0; k < 3; k++)
                    if (js_subj_overlap(subj, ns[k]) && !subj_subset(subj, "$JS.EVENT.>")) {
                        jerr_set(e, JSE_StreamInvalidConfigF,
                                 "subjects that overlap with jetstream api require no-ack to be true");
                        goto fail;
                    }
                if (js_subj_overlap(subj, "$SYS.>") && !subj_subset(subj, "$SYS.ACCOUNT.>")) {
                    jerr_set(e, JSE_StreamInvalidConfigF,
                             "subjects that overlap with system api require no-ack to be true");
                    goto fail;
                }
            }
        }
    }
    if (c->nsubjects == 0 && c->nsources == 0 && !c->mirror) {
        jerr_set(e, JSE_StreamInvalidConfigF,
                 "stream needs at least one configured subject or be a source/mirror");
        goto fail;
    }
    if (c->nsubjects > 1) {
        for (size_t a = 0; a < c->nsubjects; a++)
            for (size_t b = 0; b < c->nsubjects; b++)
                if (strcmp(c->subjects[a], c->subjects[b]) &&
                    js_subj_overlap(c->subjects[b], c->subjects[a])) {
                    jerr_set(e, JSE_StreamInvalidConfigF, "subject \"%s\" overlaps with \"%s\"",
                             c->subjects[a], c->subjects[b]);
                    goto fail;
                }
    }
    if (c->subject_transform) {
        const char *src = c->subject_transform->src;
        if (src && *src && !go_valid_subject(src)) {
            jerr_set(e, JSE_StreamTransformInvalidSource, "invalid subject %s", src);
            goto fail;
        }
        char why[300];
        if (validate_mapping(src, c->subject_transform->dest, why, sizeof why) != 0) {
            jerr_set(e, JSE_StreamTransformInvalidDestination, "%s", why);
            goto fail;
        }
    }
    if (c->republish) {
        js_republish *rp = c->republish;
        if (!rp->src || !*rp->src) {
            if (pedantic) {
                jerr_set(e, JSE_PedanticErrF, "pedantic mode: republish source can not be empty");
                goto fail;
            }
            free(rp->src);
            rp->src = xstrdup(">");
        }
        if (rp->dest && !strcmp(rp->dest, ">") && !strcmp(rp->src, ">") && c->subject_transform &&
            c->nsubjects == 1 && streq(c->subject_transform->src, c->subjects[0])) {
            if (pedantic) {
                jerr_set(e, JSE_PedanticErrF, "implicit republish based on subject transform");
                goto fail;
            }
            free(rp->src);
            free(rp->dest);
            rp->src = xstrdup(c->subject_transform->dest);
            rp->dest = xstrdup(c->subject_transform->dest);
        }
        for (size_t i = 0; i < c->nsubjects; i++)
            if (js_subj_overlap(rp->dest ? rp->dest : "", c->subjects[i])) {
                jerr_set(e, JSE_StreamInvalidConfigF,
                         "stream configuration for republish destination forms a cycle");
                goto fail;
            }
        char why[300];
        bool bad;
        xform *x = xform_new(rp->src, rp->dest, why, sizeof why, &bad);
        xform_free(x);
        if (bad || !rp->dest || !*rp->dest || !go_valid_subject(rp->dest)) {
            jerr_set(e, JSE_StreamInvalidConfigF,
                     "stream configuration for republish with transform from '%s' to '%s' not valid",
                     rp->src, rp->dest ? rp->dest : "");
            goto fail;
        }
    }
    if (c->placement) {
        const cJSON *cl = cJSON_GetObjectItemCaseSensitive(c->placement, "cluster");
        const cJSON *tg = cJSON_GetObjectItemCaseSensitive(c->placement, "tags");
        const cJSON *pr = cJSON_GetObjectItemCaseSensitive(c->placement, "preferred");
        if (!cl && !tg && !pr) {
            cJSON_Delete(c->placement);
            c->placement = NULL;
        } else if (pr) {
            jerr_set(e, JSE_StreamInvalidConfigF, "preferred server not permitted in placement");
            goto fail;
        }
    }
    return true;
fail2:
    free(ssubs);
fail:
    cfg_free(out);
    return false;
#undef ADD_SUBS
}

/* ------------------------------------------------------------------ config: JSON out */

static void add_source_json(cJSON *o, const js_stream_source *s)
{
    cJSON_AddStringToObject(o, "name", s->name ? s->name : "");
    if (s->opt_start_seq)
        js_add_u64(o, "opt_start_seq", s->opt_start_seq);
    if (s->opt_start_time_ns) {
        char tb[64];
        cJSON_AddStringToObject(o, "opt_start_time", js_time_str(tb, sizeof tb, s->opt_start_time_ns));
    }
    if (s->filter_subject && *s->filter_subject)
        cJSON_AddStringToObject(o, "filter_subject", s->filter_subject);
    if (s->ntransforms) {
        cJSON *a = cJSON_AddArrayToObject(o, "subject_transforms");
        for (size_t i = 0; i < s->ntransforms; i++) {
            cJSON *t = cJSON_CreateObject();
            cJSON_AddStringToObject(t, "src", s->transforms[i].src ? s->transforms[i].src : "");
            cJSON_AddStringToObject(t, "dest", s->transforms[i].dest ? s->transforms[i].dest : "");
            cJSON_AddItemToArray(a, t);
        }
    }
    if (s->external_api || s->external_deliver) {
        cJSON *x = cJSON_AddObjectToObject(o, "external");
        cJSON_AddStringToObject(x, "api", s->external_api ? s->external_api : "");
        cJSON_AddStringToObject(x, "deliver", s->external_deliver ? s->external_deliver : "");
    }
}

/* The StreamConfig as nats-server marshals it (field order and omitempty included).
 * dyn: add the dynamic metadata of API responses. */
static cJSON *cfg_json(const js_stream_cfg *c, bool dyn)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "name", c->name ? c->name : "");
    if (c->description && *c->description)
        cJSON_AddStringToObject(o, "description", c->description);
    if (c->nsubjects) {
        cJSON *a = cJSON_AddArrayToObject(o, "subjects");
        for (size_t i = 0; i < c->nsubjects; i++)
            cJSON_AddItemToArray(a, cJSON_CreateString(c->subjects[i]));
    }
    cJSON_AddStringToObject(o, "retention", RET_NAMES[c->retention]);
    js_add_i64(o, "max_consumers", c->max_consumers);
    js_add_i64(o, "max_msgs", c->max_msgs);
    js_add_i64(o, "max_bytes", c->max_bytes);
    js_add_i64(o, "max_age", c->max_age_ns);
    js_add_i64(o, "max_msgs_per_subject", c->max_msgs_per_subject);
    if (c->max_msg_size)
        js_add_i64(o, "max_msg_size", c->max_msg_size);
    cJSON_AddStringToObject(o, "discard", c->discard == STORE_DISCARD_NEW ? "new" : "old");
    cJSON_AddStringToObject(o, "storage", c->storage == STORE_MEMORY ? "memory" : "file");
    js_add_i64(o, "num_replicas", c->num_replicas);
    if (c->no_ack)
        cJSON_AddBoolToObject(o, "no_ack", true);
    if (c->duplicate_window_ns)
        js_add_i64(o, "duplicate_window", c->duplicate_window_ns);
    if (c->placement) {
        cJSON *p = cJSON_AddObjectToObject(o, "placement");
        const cJSON *cl = cJSON_GetObjectItemCaseSensitive(c->placement, "cluster");
        const cJSON *tg = cJSON_GetObjectItemCaseSensitive(c->placement, "tags");
        if (cl)
            cJSON_AddItemToObject(p, "cluster", cJSON_Duplicate(cl, true));
        if (tg && cJSON_GetArraySize(tg) > 0)
            cJSON_AddItemToObject(p, "tags", cJSON_Duplicate(tg, true));
    }
    if (c->mirror)
        add_source_json(cJSON_AddObjectToObject(o, "mirror"), c->mirror);
    if (c->nsources) {
        cJSON *a = cJSON_AddArrayToObject(o, "sources");
        for (size_t i = 0; i < c->nsources; i++) {
            cJSON *s = cJSON_CreateObject();
            add_source_json(s, &c->sources[i]);
            cJSON_AddItemToArray(a, s);
        }
    }
    cJSON_AddStringToObject(o, "compression", c->compression ? c->compression : "none");
    if (c->first_seq)
        js_add_u64(o, "first_seq", c->first_seq);
    if (c->subject_transform) {
        cJSON *t = cJSON_AddObjectToObject(o, "subject_transform");
        cJSON_AddStringToObject(t, "src", c->subject_transform->src ? c->subject_transform->src : "");
        cJSON_AddStringToObject(t, "dest",
                                c->subject_transform->dest ? c->subject_transform->dest : "");
    }
    if (c->republish) {
        cJSON *t = cJSON_AddObjectToObject(o, "republish");
        if (c->republish->src && *c->republish->src)
            cJSON_AddStringToObject(t, "src", c->republish->src);
        cJSON_AddStringToObject(t, "dest", c->republish->dest ? c->republish->dest : "");
        if (c->republish->headers_only)
            cJSON_AddBoolToObject(t, "headers_only", true);
    }
    cJSON_AddBoolToObject(o, "allow_direct", c->allow_direct);
    cJSON_AddBoolToObject(o, "mirror_direct", c->mirror_direct);
    if (c->discard_new_per_subject)
        cJSON_AddBoolToObject(o, "discard_new_per_subject", true);
    cJSON_AddBoolToObject(o, "sealed", c->sealed);
    cJSON_AddBoolToObject(o, "deny_delete", c->deny_delete);
    cJSON_AddBoolToObject(o, "deny_purge", c->deny_purge);
    cJSON_AddBoolToObject(o, "allow_rollup_hdrs", c->allow_rollup_hdrs);
    cJSON *cl = cJSON_AddObjectToObject(o, "consumer_limits");
    if (c->consumer_inactive_threshold_ns)
        js_add_i64(cl, "inactive_threshold", c->consumer_inactive_threshold_ns);
    if (c->consumer_max_ack_pending)
        js_add_i64(cl, "max_ack_pending", c->consumer_max_ack_pending);
    cJSON_AddBoolToObject(o, "allow_msg_ttl", c->allow_msg_ttl);
    if (c->subject_delete_marker_ttl_ns)
        js_add_i64(o, "subject_delete_marker_ttl", c->subject_delete_marker_ttl_ns);
    if ((c->metadata && c->metadata->child) || dyn) {
        cJSON *md = c->metadata ? cJSON_Duplicate(c->metadata, true) : cJSON_CreateObject();
        if (dyn) {
            cJSON_DeleteItemFromObjectCaseSensitive(md, META_VER);
            cJSON_DeleteItemFromObjectCaseSensitive(md, META_LEVEL);
            cJSON_AddStringToObject(md, META_VER, EMBER_NATS_VERSION);
            char lv[16];
            snprintf(lv, sizeof lv, "%d", JS_API_LEVEL);
            cJSON_AddStringToObject(md, META_LEVEL, lv);
        }
        /* Go marshals maps sorted by key */
        cJSON *sorted = cJSON_CreateObject();
        for (;;) {
            cJSON *min = NULL;
            for (cJSON *kv = md->child; kv; kv = kv->next)
                if (!min || strcmp(kv->string, min->string) < 0)
                    min = kv;
            if (!min)
                break;
            cJSON_AddItemToObject(sorted, min->string, cJSON_DetachItemViaPointer(md, min));
        }
        cJSON_Delete(md);
        cJSON_AddItemToObject(o, "metadata", sorted);
    }
    return o;
}

/* Deep equality of two checked configs (as nats-server's reflect.DeepEqual, through the
 * echo). */
static bool cfg_equal(const js_stream_cfg *a, const js_stream_cfg *b)
{
    cJSON *x = cfg_json(a, false), *y = cfg_json(b, false);
    bool eq = x && y && cJSON_Compare(x, y, true);
    cJSON_Delete(x);
    cJSON_Delete(y);
    return eq;
}

/* ------------------------------------------------------------------ private state */

typedef struct dd_ent {
    struct dd_ent *hnext;
    uint64_t seq;
    int64_t ts;
    uint32_t hash;
    size_t idlen;
    char id[];
} dd_ent;

/* A PubAck waiting for the store to report its message durable. Whoever unlinks it from
 * the stream's list completes and frees it. */
typedef struct ackctx {
    struct ackctx *prev, *next;
    jstream *s; /* retained */
    js_puback_fn fn;
    void *ud;
    uint64_t seq;
} ackctx;

/* A mirror or source being pulled from a local origin stream (JS thread, js->mu). */
typedef struct srcstate {
    char *name;            /* origin stream */
    char *iname;           /* nats-server's index name (sources) */
    char *filter;          /* single filter, NULL: all */
    xform **trs;           /* per transform (may be NULL entries: filter only) */
    char **tfilters;
    size_t ntr;
    uint64_t sseq;         /* last origin sequence taken */
    int64_t last_ns;       /* wall clock of the last contact with the origin, 0: never */
    uint64_t lag;
    bool external;         /* not a local stream (another domain, through a leaf link) */
    bool started;
    /* external origin with an API prefix: a push consumer created on it through
     * "<api>.CONSUMER.CREATE.<name>", delivering (flow control, heartbeats) to dsubj */
    char *api;             /* "$JS.<domain>.API"; NULL: deliver-prefix only (not served) */
    int xstate;            /* XS_* */
    sub *dsub, *rsub;      /* deliver and create-reply subscriptions (internal) */
    char dsubj[48], rsubj[48];
    int64_t xsince;        /* monotonic ns of the last state change */
    int64_t xlast;         /* monotonic ns of the last message or heartbeat */
    char xerr[200];        /* the origin's error, for stream info */
} srcstate;

enum { XS_IDLE = 0, XS_CREATING, XS_ACTIVE };
#define XS_CREATE_WAIT_NS (5 * NS_PER_S)
#define XS_HEARTBEAT_NS NS_PER_S
#define XS_STALL_NS (3 * XS_HEARTBEAT_NS)

/* A message with a per-message TTL on a stream with subject delete markers. */
typedef struct ttlent {
    int64_t at;
    uint64_t seq;
} ttlent;

struct jstream_priv {
    sub **subs;
    size_t nsubs;
    /* dedupe (s->mu) */
    dd_ent **ht;
    size_t htcap, htn;
    dd_ent **fifo;
    size_t fhead, fn, fcap;
    bool dd_loaded;
    char *lmsgid;
    /* transforms (s->mu) */
    xform *itr;            /* subject_transform */
    xform *rtr;            /* republish */
    /* PubAcks waiting for durability */
    pthread_mutex_t ack_mu;
    ackctx *acks;
    /* subject delete markers: TTL'd messages (s->mu) */
    ttlent *ttl;
    size_t nttl, ttlcap;
    bool ttl_scanned;
    /* mirror / sources (js->mu) */
    srcstate *src;
    size_t nsrc;
    bool is_mirror;
    char *src_path;        /* file streams: <dir>/sources.json */
    bool src_dirty;
    int64_t src_saved_ns;  /* monotonic time of the last save */
    /* the server's storage of this stream's kind is used up (set by the JS thread from
     * the totals, as nats-server's limitsExceeded reads its usage counters) */
    atomic_bool over_limit;
};

/* ------------------------------------------------------------------ dedupe */

static uint32_t fnv32(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 16777619u;
    }
    return h;
}

static void dd_unlink(struct jstream_priv *p, dd_ent *e)
{
    dd_ent **pp = &p->ht[e->hash & (p->htcap - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    p->htn--;
}

static void dd_clear(struct jstream_priv *p)
{
    for (size_t i = 0; i < p->fn; i++)
        free(p->fifo[p->fhead + i]);
    free(p->fifo);
    free(p->ht);
    p->fifo = NULL;
    p->ht = NULL;
    p->fhead = p->fn = p->fcap = p->htcap = p->htn = 0;
}

/* Drop ids older than the window. */
static void dd_prune(jstream *s, int64_t now)
{
    struct jstream_priv *p = s->priv;
    int64_t w = s->cfg.duplicate_window_ns;
    while (p->fn > 0) {
        dd_ent *e = p->fifo[p->fhead];
        if (now - e->ts < w)
            break;
        if (e->idlen != (size_t)-1)
            dd_unlink(p, e);
        free(e);
        p->fhead++;
        p->fn--;
    }
    if (p->fn == 0) {
        p->fhead = 0;
    } else if (p->fhead > 64 && p->fhead > p->fn) {
        memmove(p->fifo, p->fifo + p->fhead, p->fn * sizeof *p->fifo);
        p->fhead = 0;
    }
}

static dd_ent *dd_find(struct jstream_priv *p, const char *id, size_t n)
{
    if (!p->htcap)
        return NULL;
    uint32_t h = fnv32(id, n);
    for (dd_ent *e = p->ht[h & (p->htcap - 1)]; e; e = e->hnext)
        if (e->hash == h && e->idlen == n && !memcmp(e->id, id, n))
            return e;
    return NULL;
}

static void dd_store(jstream *s, const char *id, size_t n, uint64_t seq, int64_t ts)
{
    struct jstream_priv *p = s->priv;
    dd_ent *old = dd_find(p, id, n);
    if (old) { /* replaced: the old one leaves the table, stays in the fifo until pruned */
        dd_unlink(p, old);
        old->hnext = NULL;
        old->idlen = (size_t)-1; /* never matches again */
    }
    if (p->htn + 1 > p->htcap / 4 * 3) {
        size_t nc = p->htcap ? p->htcap * 2 : 64;
        dd_ent **nt = calloc(nc, sizeof *nt);
        if (!nt)
            return;
        for (size_t i = 0; i < p->htcap; i++) {
            dd_ent *e = p->ht[i];
            while (e) {
                dd_ent *nx = e->hnext;
                e->hnext = nt[e->hash & (nc - 1)];
                nt[e->hash & (nc - 1)] = e;
                e = nx;
            }
        }
        free(p->ht);
        p->ht = nt;
        p->htcap = nc;
    }
    if (p->fhead + p->fn == p->fcap) {
        if (p->fhead > 0) {
            memmove(p->fifo, p->fifo + p->fhead, p->fn * sizeof *p->fifo);
            p->fhead = 0;
        } else {
            size_t nc = p->fcap ? p->fcap * 2 : 64;
            dd_ent **nf = realloc(p->fifo, nc * sizeof *nf);
            if (!nf)
                return;
            p->fifo = nf;
            p->fcap = nc;
        }
    }
    dd_ent *e = malloc(sizeof *e + n + 1);
    if (!e)
        return;
    e->seq = seq;
    e->ts = ts;
    e->idlen = n;
    e->hash = fnv32(id, n);
    memcpy(e->id, id, n);
    e->id[n] = 0;
    e->hnext = p->ht[e->hash & (p->htcap - 1)];
    p->ht[e->hash & (p->htcap - 1)] = e;
    p->htn++;
    p->fifo[p->fhead + p->fn++] = e;
}

static void set_lmsgid(jstream *s, const char *id, size_t n)
{
    free(s->priv->lmsgid);
    s->priv->lmsgid = n ? xstrndup(id, n) : NULL;
}

/* The first sequence whose message is at or after ts (0: none). */
static uint64_t seq_from_time(store *st, int64_t ts)
{
    store_state ss;
    store_get_state(st, &ss);
    if (ss.msgs == 0)
        return 0;
    uint64_t lo = ss.first_seq, hi = ss.last_seq, found = 0;
    while (lo <= hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        store_msg *m = NULL;
        if (store_load_next(st, NULL, mid, &m) != 0)
            break; /* nothing at or after mid */
        if (m->ts >= ts) {
            found = m->seq;
            store_msg_release(m);
            if (mid == 0 || mid <= lo)
                break;
            hi = mid - 1;
        } else {
            lo = m->seq + 1;
            store_msg_release(m);
        }
    }
    return found;
}

/* rebuildDedupe: the ids of the messages inside the window (s->mu). */
static void dd_rebuild(jstream *s)
{
    struct jstream_priv *p = s->priv;
    if (p->dd_loaded)
        return;
    p->dd_loaded = true;
    if (s->cfg.duplicate_window_ns <= 0 || !s->st)
        return;
    uint64_t seq = seq_from_time(s->st, js_now_wall() - s->cfg.duplicate_window_ns);
    if (seq == 0)
        return;
    store_state ss;
    store_get_state(s->st, &ss);
    store_msg *m = NULL;
    while (seq <= ss.last_seq && store_load_next(s->st, NULL, seq, &m) == 0) {
        const char *id = NULL;
        size_t il = 0;
        bool has = hdr_val(m->hdr, m->hdr_len, "Nats-Msg-Id", &id, &il);
        if (has)
            dd_store(s, id, il, m->seq, m->ts);
        if (m->seq == ss.last_seq)
            set_lmsgid(s, has ? id : NULL, has ? il : 0);
        seq = m->seq + 1;
        store_msg_release(m);
    }
}

/* ------------------------------------------------------------------ stream objects */

void js_stream_retain(jstream *s) { atomic_fetch_add(&s->refs, 1); }

static void src_free_one(srcstate *x);
static void priv_free(jstream *s)
{
    struct jstream_priv *p = s->priv;
    if (!p)
        return;
    dd_clear(p);
    free(p->lmsgid);
    xform_free(p->itr);
    xform_free(p->rtr);
    free(p->ttl);
    for (size_t i = 0; i < p->nsrc; i++)
        src_free_one(&p->src[i]);
    free(p->src);
    free(p->src_path);
    free(p->subs);
    pthread_mutex_destroy(&p->ack_mu);
    free(p);
    s->priv = NULL;
}

void js_stream_release(jstream *s)
{
    if (atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    if (s->st)
        store_close(s->st);
    priv_free(s);
    cfg_free(&s->cfg);
    pthread_mutex_destroy(&s->mu);
    free(s->name);
    free(s->dir);
    free(s);
}

jstream *js_stream_lookup(js *j, const char *name)
{
    if (!name)
        return NULL;
    return find_stream(j, name);
}

static store_limits cfg_limits(const js_stream_cfg *c)
{
    store_limits l;
    memset(&l, 0, sizeof l);
    l.max_msgs = c->max_msgs > 0 ? c->max_msgs : 0;
    l.max_bytes = c->max_bytes > 0 ? c->max_bytes : 0;
    l.max_age_ns = c->max_age_ns > 0 ? c->max_age_ns : 0;
    l.max_msgs_per_subject = c->max_msgs_per_subject > 0 ? c->max_msgs_per_subject : 0;
    l.max_msg_size = c->max_msg_size > 0 ? c->max_msg_size : 0;
    l.discard = c->discard;
    l.discard_new_per_subject = c->discard_new_per_subject;
    return l;
}

/* Compile the subject and republish transforms of s->cfg (s->mu or not yet shared). */
static void compile_transforms(jstream *s)
{
    struct jstream_priv *p = s->priv;
    char why[300];
    bool bad;
    xform_free(p->itr);
    xform_free(p->rtr);
    p->itr = p->rtr = NULL;
    if (s->cfg.subject_transform)
        p->itr = xform_new(s->cfg.subject_transform->src, s->cfg.subject_transform->dest, why,
                           sizeof why, &bad);
    if (s->cfg.republish) {
        const char *src = s->cfg.republish->src, *dest = s->cfg.republish->dest;
        p->rtr = xform_new(src && *src ? src : ">", dest && *dest ? dest : ">", why, sizeof why,
                           &bad);
    }
}

static void on_recover(void *ud, const store_recovery *r)
{
    jstream *s = ud;
    server *srv = s->j->srv;
    if (r->truncated_bytes || r->corrupt_records)
        srv_log(srv, EMBER_LOG_WARN,
                "JetStream stream '%s > %s' recovered with damage: %llu corrupt record(s) "
                "(%llu bytes) skipped, %llu torn bytes truncated; %llu messages in %llu "
                "block(s)", s->j->acc->name,
                s->name, (unsigned long long)r->corrupt_records,
                (unsigned long long)r->corrupt_bytes, (unsigned long long)r->truncated_bytes,
                (unsigned long long)r->msgs, (unsigned long long)r->blocks);
    else
        srv_log(srv, EMBER_LOG_DEBUG, "JetStream stream '%s > %s' recovered %llu messages%s", s->j->acc->name,
                s->name, (unsigned long long)r->msgs, r->used_index ? " (index)" : "");
}

static int mkdir_p(const char *path)
{
    char *p = strdup(path);
    if (!p)
        return -1;
    for (char *q = p + 1; *q; q++) {
        if (*q == '/') {
            *q = 0;
            if (mkdir(p, 0750) != 0 && errno != EEXIST) {
                free(p);
                return -1;
            }
            *q = '/';
        }
    }
    int rc = mkdir(p, 0750);
    free(p);
    return rc == 0 || errno == EEXIST ? 0 : -1;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *path)
{
    if (path)
        nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* meta.json: the echoed config and the creation time. */
static int write_meta(jstream *s)
{
    if (!s->dir)
        return 0;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return -1;
    cJSON_AddItemToObject(o, "config", cfg_json(&s->cfg, false));
    char tb[64];
    cJSON_AddStringToObject(o, "created", js_time_str(tb, sizeof tb, s->created_ns));
    js_add_i64(o, "created_ns", s->created_ns);
    char *txt = cJSON_Print(o);
    cJSON_Delete(o);
    if (!txt)
        return -1;
    int rc = js_write_file_atomic(s->dir, "meta.json", txt, strlen(txt), true);
    cJSON_free(txt);
    return rc;
}

static const char *store_err_text(int rc)
{
    switch (rc) {
    case STORE_EMAXMSGS:
        return "maximum messages exceeded";
    case STORE_EMAXBYTES:
        return "maximum bytes exceeded";
    case STORE_EMAXMSGSPERSUBJ:
        return "maximum messages per subject exceeded";
    case STORE_EMSGSIZE:
        return "message too large";
    case EMBER_ECLOSED:
        return "store is closed";
    case EMBER_ENOTFOUND:
        return "no message found";
    default:
        return store_strerror(rc);
    }
}

/* ------------------------------------------------------------------ TTL tracking (SDM) */

static void ttl_push(struct jstream_priv *p, int64_t at, uint64_t seq)
{
    if (p->nttl == p->ttlcap) {
        size_t nc = p->ttlcap ? p->ttlcap * 2 : 32;
        ttlent *n = realloc(p->ttl, nc * sizeof *n);
        if (!n)
            return;
        p->ttl = n;
        p->ttlcap = nc;
    }
    size_t i = p->nttl++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (p->ttl[up].at <= at)
            break;
        p->ttl[i] = p->ttl[up];
        i = up;
    }
    p->ttl[i] = (ttlent){at, seq};
}

static void ttl_pop(struct jstream_priv *p)
{
    ttlent last = p->ttl[--p->nttl];
    size_t i = 0, n = p->nttl;
    while (n) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && p->ttl[c + 1].at < p->ttl[c].at)
            c++;
        if (last.at <= p->ttl[c].at)
            break;
        p->ttl[i] = p->ttl[c];
        i = c;
    }
    if (n)
        p->ttl[i] = last;
}

/* ------------------------------------------------------------------ PubAcks */

static __thread int *tl_inline_status;
/* An API handler (js->mu held) wants the JS thread to run once the lock is released. */
static __thread bool tl_kick;

static void ack_complete(ackctx *a, int status)
{
    jstream *s = a->s;
    js_puback pa;
    memset(&pa, 0, sizeof pa);
    pa.stream = s->name;
    pa.domain = s->j->domain;
    pa.seq = a->seq;
    pa.jse = -1;
    pa.status = status;
    char desc[256];
    if (status != 0) {
        pa.jse = JSE_StreamStoreFailedF;
        pa.seq = 0;
        js_err_text(desc, sizeof desc, JSE_StreamStoreFailedF, store_err_text(status), NULL);
        pa.err_desc = desc;
    }
    if (a->fn)
        a->fn(a->ud, &pa);
    js_stream_release(s);
    free(a);
}

static void ack_link(struct jstream_priv *p, ackctx *a)
{
    pthread_mutex_lock(&p->ack_mu);
    a->prev = NULL;
    a->next = p->acks;
    if (p->acks)
        p->acks->prev = a;
    p->acks = a;
    pthread_mutex_unlock(&p->ack_mu);
}

static void ack_unlink_locked(struct jstream_priv *p, ackctx *a)
{
    if (a->prev)
        a->prev->next = a->next;
    else
        p->acks = a->next;
    if (a->next)
        a->next->prev = a->prev;
    a->prev = a->next = NULL;
}

static void durable_cb(void *ud, uint64_t seq, int status)
{
    (void)seq;
    ackctx *a = ud;
    if (tl_inline_status) { /* called inline while registering: the publisher finishes it */
        *tl_inline_status = status;
        return;
    }
    struct jstream_priv *p = a->s->priv;
    pthread_mutex_lock(&p->ack_mu);
    ack_unlink_locked(p, a);
    pthread_mutex_unlock(&p->ack_mu);
    ack_complete(a, status);
}

/* Complete every PubAck still waiting (the store is gone): status for each. */
static void acks_abandon(jstream *s, int status)
{
    struct jstream_priv *p = s->priv;
    for (;;) {
        pthread_mutex_lock(&p->ack_mu);
        ackctx *a = p->acks;
        if (a)
            ack_unlink_locked(p, a);
        pthread_mutex_unlock(&p->ack_mu);
        if (!a)
            break;
        ack_complete(a, status);
    }
}

/* JSON string escaping for the hand-built PubAck. */
static void sb_jstr(sbuf *b, const char *s)
{
    sb_str(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            sb_add(b, "\\", 1);
            sb_add(b, p, 1);
        } else if (*p < 0x20) {
            sb_fmt(b, "\\u%04x", *p);
        } else {
            sb_add(b, p, 1);
        }
    }
    sb_str(b, "\"");
}

/* The PubAck text exactly as nats-server writes it. malloc'd. */
static char *puback_text(const js_puback *a)
{
    if (a->jse >= 0) {
        cJSON *r = cJSON_CreateObject();
        cJSON *e = cJSON_AddObjectToObject(r, "error");
        const js_err_info *ei = js_err(a->jse);
        cJSON_AddNumberToObject(e, "code", ei->code);
        cJSON_AddNumberToObject(e, "err_code", ei->err_code);
        cJSON_AddStringToObject(e, "description", a->err_desc ? a->err_desc : ei->desc);
        cJSON_AddStringToObject(r, "stream", a->stream);
        cJSON_AddNumberToObject(r, "seq", 0);
        char *t = cJSON_PrintUnformatted(r);
        cJSON_Delete(r);
        char *o = t ? strdup(t) : NULL;
        cJSON_free(t);
        return o;
    }
    sbuf b = {0};
    sb_str(&b, "{\"stream\":");
    sb_jstr(&b, a->stream);
    if (a->domain) {
        sb_str(&b, ", \"domain\":");
        sb_jstr(&b, a->domain);
    }
    sb_fmt(&b, ", \"seq\":%llu", (unsigned long long)a->seq);
    if (a->duplicate)
        sb_str(&b, ",\"duplicate\": true");
    sb_str(&b, "}");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* The wire path's PubAck: routed to the request's reply subject. */
typedef struct wack {
    js *j;
    char reply[];
} wack;

static void wire_ack(void *ud, const js_puback *a)
{
    wack *w = ud;
    if (a->status == EMBER_ECLOSED) { /* stream deleted or server stopping: no answer */
        free(w);
        return;
    }
    char *txt = puback_text(a);
    if (txt) {
        msgview mv;
        memset(&mv, 0, sizeof mv);
        mv.subject = w->reply;
        mv.subject_len = strlen(w->reply);
        mv.data = txt;
        mv.data_len = strlen(txt);
        acc_publish(w->j->acc, &mv);
        free(txt);
    }
    free(w);
}

/* A JSON API reply sent once everything the store wrote so far is durable (MSG.DELETE,
 * PURGE). The flusher thread routes it; when the store answers at once (memory, or
 * already durable) it goes into the handler's outbox instead. Replies to the native API
 * (js_api_call, which needs the answer in the outbox) wait for the flush in place. */
typedef struct synced_reply {
    js *j;
    char *to;
    char *text;
} synced_reply;

static void synced_reply_cb(void *ud, uint64_t seq, int status)
{
    (void)seq;
    (void)status;
    synced_reply *r = ud;
    if (tl_inline_status) {
        *tl_inline_status = 0;
        return;
    }
    msgview mv;
    memset(&mv, 0, sizeof mv);
    mv.subject = r->to;
    mv.subject_len = strlen(r->to);
    mv.data = r->text;
    mv.data_len = strlen(r->text);
    acc_publish(r->j->acc, &mv);
    free(r->to);
    free(r->text);
    free(r);
}

static void reply_when_synced(js *j, store *st, const char *to, cJSON *resp, js_outbox *ob)
{
    if (!to || !st || store_get_kind(st) == STORE_MEMORY) {
        js_out_json(ob, to, resp);
        return;
    }
    if (!strncmp(to, "_EMBER.NATIVE.", 14)) {
        store_flush(st);
        js_out_json(ob, to, resp);
        return;
    }
    synced_reply *r = calloc(1, sizeof *r);
    char *text = cJSON_PrintUnformatted(resp);
    if (!r || !text) {
        free(r);
        cJSON_free(text);
        js_out_json(ob, to, resp);
        return;
    }
    r->j = j;
    r->to = xstrdup(to);
    r->text = xstrdup(text);
    cJSON_free(text);
    int inline_done = INT_MIN;
    tl_inline_status = &inline_done;
    int rc = store_sync_barrier(st, synced_reply_cb, r);
    tl_inline_status = NULL;
    if (rc != 0 || inline_done != INT_MIN) {
        free(r->to);
        free(r->text);
        free(r);
        js_out_json(ob, to, resp);
        return;
    }
    cJSON_Delete(resp);
}

/* ------------------------------------------------------------------ the publish path */

typedef struct pubres {
    jerr e;           /* e.jse -1: no error */
    uint64_t seq;
    bool dup;
    bool stored;      /* appended or skipped: ack once durable */
    bool purged;      /* a rollup removed messages */
    char *rp_subj;    /* republish: subject, header block, data (all malloc'd) */
    char *rp_hdr;
    size_t rp_hl;
    char *rp_data;
    size_t rp_dl;
} pubres;

static void pubres_free(pubres *r)
{
    free(r->rp_subj);
    free(r->rp_hdr);
    free(r->rp_data);
    r->rp_subj = r->rp_hdr = r->rp_data = NULL;
}

/* processJetStreamMsg (2.11), with s->mu held (and js->mu when have_jsmu: needed to ask
 * consumers about interest). sourced: from a source (no TTL check). ts 0: now. */
static void publish_locked(jstream *s, const char *subj, size_t sl, const char *hdr, size_t hl,
                           const void *data, size_t dl, bool have_jsmu, bool sourced, int64_t ts,
                           pubres *r)
{
    memset(r, 0, sizeof *r);
    r->e.jse = -1;
    const js_stream_cfg *c = &s->cfg;
    struct jstream_priv *p = s->priv;
    char *tsubj = NULL, *nhdr = NULL, *csubj = NULL;
    const char *v;
    size_t vl;
    const char *msgid = NULL;
    size_t midl = 0;
    bool rollup_sub = false, rollup_all = false;
    int64_t now = ts ? ts : js_now_wall();

    if (s->deleted || !s->st) {
        jerr_set(&r->e, JSE_StreamNotFoundErr, NULL);
        goto out;
    }
    if (p->itr) {
        char *o;
        if (xform_apply(p->itr, subj, sl, &o)) {
            tsubj = o;
            subj = o;
            sl = strlen(o);
        }
    }
    if (c->sealed) {
        jerr_set(&r->e, JSE_StreamSealedErr, NULL);
        goto out;
    }
    if (hl > 0) {
        if (hdr_val(hdr, hl, "Nats-Expected-Stream", &v, &vl) &&
            (vl != strlen(s->name) || memcmp(v, s->name, vl))) {
            jerr_set(&r->e, JSE_StreamNotMatchErr, NULL);
            goto out;
        }
        int64_t t;
        if (!sourced && hdr_val(hdr, hl, "Nats-TTL", &v, &vl) && parse_msg_ttl(v, vl, &t) == 0 &&
            t != 0 && !c->allow_msg_ttl) {
            jerr_set(&r->e, JSE_MessageTTLDisabledErr, NULL);
            goto out;
        }
        if (hdr_val(hdr, hl, "Nats-Msg-Id", &msgid, &midl)) {
            dd_rebuild(s);
            dd_prune(s, now);
            dd_ent *e = dd_find(p, msgid, midl);
            if (e) {
                r->dup = true;
                r->seq = e->seq;
                goto out;
            }
        } else {
            msgid = NULL;
            midl = 0;
        }
        if (hdr_val(hdr, hl, "Nats-Expected-Last-Subject-Sequence", &v, &vl)) {
            uint64_t want = (uint64_t)parse_int64(v, vl);
            const char *o;
            size_t ol;
            if (hdr_val(hdr, hl, "Nats-Expected-Last-Subject-Sequence-Subject", &o, &ol))
                csubj = xstrndup(o, ol);
            else
                csubj = xstrndup(subj, sl);
            uint64_t fseq = 0;
            store_msg *m = NULL;
            int rc = csubj ? store_load_last(s->st, csubj, &m) : EMBER_ENOMEM;
            if (rc == 0) {
                fseq = m->seq;
                store_msg_release(m);
            }
            bool ok = rc == EMBER_ENOTFOUND ? want == 0 : rc == 0 && fseq == want;
            if (!ok) {
                jerr_set(&r->e, JSE_StreamWrongLastSequenceErrF, "%llu", (unsigned long long)fseq);
                goto out;
            }
        }
        if (hdr_val(hdr, hl, "Nats-Expected-Last-Sequence", &v, &vl)) {
            uint64_t want = (uint64_t)parse_int64(v, vl);
            store_state ss;
            store_get_state(s->st, &ss);
            if (want != ss.last_seq) {
                jerr_set(&r->e, JSE_StreamWrongLastSequenceErrF, "%llu",
                         (unsigned long long)ss.last_seq);
                goto out;
            }
        }
        if (hdr_val(hdr, hl, "Nats-Expected-Last-Msg-Id", &v, &vl)) {
            if (!p->lmsgid && !p->dd_loaded)
                dd_rebuild(s);
            const char *last = p->lmsgid ? p->lmsgid : "";
            if (strlen(last) != vl || memcmp(last, v, vl)) {
                jerr_set(&r->e, JSE_StreamWrongLastMsgIDErrF, "%s", last);
                goto out;
            }
        }
        if (hdr_val(hdr, hl, "Nats-Rollup", &v, &vl)) {
            if (!c->allow_rollup_hdrs || c->deny_purge) {
                jerr_set(&r->e, JSE_StreamRollupFailedF, "rollup not permitted");
                goto out;
            }
            if (vl == 3 && !strncasecmp(v, "sub", 3)) {
                rollup_sub = true;
            } else if (vl == 3 && !strncasecmp(v, "all", 3)) {
                rollup_all = true;
            } else {
                sbuf q = {0};
                for (size_t i = 0; i < vl; i++) {
                    char ch = (char)tolower((unsigned char)v[i]);
                    if (ch == '"' || ch == '\\')
                        sb_add(&q, "\\", 1);
                    sb_add(&q, &ch, 1);
                }
                jerr_set(&r->e, JSE_StreamRollupFailedF, "rollup value invalid: \"%s\"",
                         q.p ? q.p : "");
                free(q.p);
                goto out;
            }
        }
    }
    if (c->max_msg_size >= 0 && hl + dl > (size_t)c->max_msg_size) {
        jerr_set(&r->e, JSE_StreamMessageExceedsMaximumErr, NULL);
        goto out;
    }
    if (hl > MAX_HDR_LEN) {
        jerr_set(&r->e, JSE_StreamHeaderExceedsMaximumErr, NULL);
        goto out;
    }
    if (atomic_load(&p->over_limit)) {
        jerr_set(&r->e, JSE_InsufficientResourcesErr, NULL);
        goto out;
    }
    if (c->retention == JS_RET_INTEREST && have_jsmu &&
        (s->nconsumers == 0 || !js_consumers_interested(s, subj, sl))) {
        uint64_t seq;
        int rc = store_skip(s->st, &seq);
        if (rc != 0) {
            jerr_set(&r->e, JSE_StreamStoreFailedF, "%s", store_err_text(rc));
            goto out;
        }
        set_lmsgid(s, msgid, midl);
        if (msgid)
            dd_store(s, msgid, midl, seq, now);
        r->seq = seq;
        r->stored = true;
        goto out;
    }
    /* republish: the subject and the last sequence of this subject before this one */
    uint64_t tlseq = 0;
    if (p->rtr) {
        if (xform_apply(p->rtr, subj, sl, &r->rp_subj)) {
            char *cs = xstrndup(subj, sl);
            store_msg *m = NULL;
            if (cs && store_load_last(s->st, cs, &m) == 0) {
                tlseq = m->seq;
                store_msg_release(m);
            }
            free(cs);
        }
    }
    int64_t ttl = 0;
    if (hl > 0 && hdr_val(hdr, hl, "Nats-TTL", &v, &vl) && parse_msg_ttl(v, vl, &ttl) != 0) {
        jerr_set(&r->e, JSE_MessageTTLInvalidErr, NULL);
        goto out;
    }
    if (ttl > 0 && c->subject_delete_marker_ttl_ns > 0 && c->max_msgs_per_subject != 1) {
        int64_t min = c->subject_delete_marker_ttl_ns / NS_PER_S;
        if (ttl < min) {
            ttl = min;
            size_t nl = 0;
            char *h = hdr_remove(hdr, hl, "Nats-TTL", &nl);
            if (h) {
                sbuf b = {0};
                hdr_gen(&b, h, nl);
                sb_fmt(&b, "Nats-TTL: %lld\r\n\r\n", (long long)ttl);
                free(h);
                if (!b.oom) {
                    nhdr = b.p;
                    hdr = nhdr;
                    hl = b.n;
                } else {
                    free(b.p);
                }
            }
        }
    }
    char *rsubj = xstrndup(subj, sl);
    if (!rsubj) {
        jerr_set(&r->e, JSE_StreamStoreFailedF, "out of memory");
        goto out;
    }
    /* discard_new_per_subject lets a rollup in even when its subject is full */
    bool pre_rollup = (rollup_sub || rollup_all) && c->discard_new_per_subject;
    uint64_t n = 0;
    if (pre_rollup) {
        store_purge(s->st, rollup_sub ? rsubj : NULL, 0, 0, &n);
        r->purged = n > 0;
    }
    uint64_t seq = 0;
    int64_t ttl_ns = ttl > 0 ? ttl * NS_PER_S : ttl < 0 ? STORE_TTL_NEVER : 0;
    int rc = store_append(s->st, subj, sl, hdr, hl, data, dl, now, ttl_ns, &seq);
    if (rc != 0) {
        free(rsubj);
        if (rc == STORE_EMSGSIZE)
            jerr_set(&r->e, JSE_StreamMessageExceedsMaximumErr, NULL);
        else if (rc == STORE_EBADTTL)
            jerr_set(&r->e, JSE_MessageTTLInvalidErr, NULL);
        else
            jerr_set(&r->e, JSE_StreamStoreFailedF, "%s", store_err_text(rc));
        goto out;
    }
    set_lmsgid(s, msgid, midl);
    if (msgid)
        dd_store(s, msgid, midl, seq, now);
    if (!pre_rollup && (rollup_sub || rollup_all)) {
        store_purge(s->st, rollup_sub ? rsubj : NULL, seq, 0, &n);
        r->purged = n > 0;
    }
    if (ttl_ns > 0 && c->subject_delete_marker_ttl_ns > 0)
        ttl_push(p, now + ttl_ns, seq);
    free(rsubj);
    if (r->rp_subj) {
        char tb[64];
        js_time_str(tb, sizeof tb, now);
        bool ho = c->republish && c->republish->headers_only;
        sbuf b = {0};
        hdr_gen(&b, hdr, hl);
        sb_str(&b, "Nats-Stream: ");
        sb_str(&b, s->name);
        sb_str(&b, "\r\nNats-Subject: ");
        sb_add(&b, subj, sl);
        sb_fmt(&b, "\r\nNats-Sequence: %llu\r\nNats-Time-Stamp: %s\r\nNats-Last-Sequence: %llu\r\n",
               (unsigned long long)seq, tb, (unsigned long long)tlseq);
        if (ho)
            sb_fmt(&b, "Nats-Msg-Size: %zu\r\n", dl);
        sb_str(&b, "\r\n");
        if (b.oom) {
            free(b.p);
            free(r->rp_subj);
            r->rp_subj = NULL;
        } else {
            r->rp_hdr = b.p;
            r->rp_hl = b.n;
            if (!ho && dl) {
                r->rp_data = malloc(dl);
                if (r->rp_data) {
                    memcpy(r->rp_data, data, dl);
                    r->rp_dl = dl;
                }
            }
        }
    }
    r->seq = seq;
    r->stored = true;
out:
    if (r->e.jse >= 0 || r->dup) {
        free(r->rp_subj);
        r->rp_subj = NULL;
    }
    free(tsubj);
    free(nhdr);
    free(csubj);
}

/* After publish_locked, with no lock held: route the republish. */
static void route_republish(jstream *s, pubres *r)
{
    if (!r->rp_subj)
        return;
    msgview mv;
    memset(&mv, 0, sizeof mv);
    mv.subject = r->rp_subj;
    mv.subject_len = strlen(r->rp_subj);
    mv.hdr = r->rp_hdr;
    mv.hdr_len = r->rp_hl;
    mv.data = r->rp_data ? r->rp_data : "";
    mv.data_len = r->rp_dl;
    acc_publish(s->j->acc, &mv);
}

static void call_ack(jstream *s, js_puback_fn fn, void *ud, const pubres *r)
{
    js_puback pa;
    memset(&pa, 0, sizeof pa);
    pa.stream = s->name;
    pa.domain = s->j->domain;
    pa.seq = r->seq;
    pa.duplicate = r->dup;
    pa.jse = r->e.jse;
    char desc[1024];
    if (r->e.jse >= 0) {
        pa.seq = 0;
        js_err_text(desc, sizeof desc, r->e.jse, r->e.a1, r->e.a2, NULL);
        pa.err_desc = desc;
    }
    fn(ud, &pa);
}

static int stream_publish(jstream *s, const char *subj, size_t subj_len, const char *hdr,
                          size_t hdr_len, const void *data, size_t data_len, js_puback_fn fn,
                          void *ud)
{
    js *j = s->j;
    /* interest retention asks the consumers, which needs js->mu first */
    pthread_mutex_lock(&s->mu);
    bool interest = s->cfg.retention == JS_RET_INTEREST;
    pthread_mutex_unlock(&s->mu);
    if (interest)
        pthread_mutex_lock(&j->mu);
    pthread_mutex_lock(&s->mu);
    if (s->deleted || !s->st) {
        pthread_mutex_unlock(&s->mu);
        if (interest)
            pthread_mutex_unlock(&j->mu);
        return EMBER_ENOTFOUND;
    }
    if (fn == wire_ack && s->cfg.no_ack) {
        free(ud);
        fn = NULL;
        ud = NULL;
    }
    pubres r;
    publish_locked(s, subj, subj_len, hdr, hdr_len, data, data_len, interest, false, 0, &r);
    ackctx *a = NULL;
    int inline_status = INT_MIN;
    if (r.stored && fn) {
        a = calloc(1, sizeof *a);
        if (a) {
            js_stream_retain(s);
            a->s = s;
            a->fn = fn;
            a->ud = ud;
            a->seq = r.seq;
            ack_link(s->priv, a);
            tl_inline_status = &inline_status;
            int rc = store_when_durable(s->st, r.seq, durable_cb, a);
            tl_inline_status = NULL;
            if (rc != 0 && inline_status == INT_MIN)
                inline_status = rc;
            if (inline_status != INT_MIN) {
                pthread_mutex_lock(&s->priv->ack_mu);
                ack_unlink_locked(s->priv, a);
                pthread_mutex_unlock(&s->priv->ack_mu);
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    js_outbox ob;
    js_outbox_init(&ob);
    if (r.purged) {
        if (!interest)
            pthread_mutex_lock(&j->mu);
        if (!s->deleted)
            js_consumers_stream_purged(s, &ob);
        if (!interest)
            pthread_mutex_unlock(&j->mu);
    }
    if (interest)
        pthread_mutex_unlock(&j->mu);
    js_outbox_send(j, &ob);
    route_republish(s, &r);
    if (r.stored && fn && !a) {
        /* no memory for the waiter: answer now */
        call_ack(s, fn, ud, &r);
    } else if (a && inline_status != INT_MIN) {
        ack_complete(a, inline_status);
    } else if (!r.stored && fn) {
        call_ack(s, fn, ud, &r);
    }
    if (r.stored) {
        /* the server's storage limits: count the message now (the JS thread recounts
         * exactly on its rounds); past a limit, refuse at once and let the thread know */
        atomic_llong *used = s->cfg.storage == STORE_MEMORY ? &j->mem_bytes : &j->store_bytes;
        int64_t max = s->cfg.storage == STORE_MEMORY ? j->max_memory : j->max_store;
        int64_t sz = (int64_t)store_msg_size(s->cfg.storage, subj_len, hdr ? hdr_len : 0, data_len);
        if (atomic_fetch_add(used, sz) + sz > max) {
            atomic_store(&s->priv->over_limit, true);
            js_kick(j);
        }
        js_kick_stream(s);
    }
    pubres_free(&r);
    return 0;
}

int js_stream_publish(jstream *s, const char *subj, size_t subj_len, const char *hdr,
                      size_t hdr_len, const void *data, size_t data_len, js_puback_fn fn,
                      void *ud)
{
    if (!s || !subj)
        return EMBER_EINVAL;
    return stream_publish(s, subj, subj_len, hdr, hdr_len, data, data_len, fn, ud);
}

/* The internal subscription on each stream subject. */
static void on_stream_msg(void *ud, server *srv, const msgview *mv)
{
    (void)srv;
    jstream *s = ud;
    wack *w = NULL;
    if (mv->reply && mv->reply_len) {
        w = malloc(sizeof *w + mv->reply_len + 1);
        if (w) {
            w->j = s->j;
            memcpy(w->reply, mv->reply, mv->reply_len);
            w->reply[mv->reply_len] = 0;
        }
    }
    int rc = stream_publish(s, mv->subject, mv->subject_len, mv->hdr, mv->hdr_len, mv->data,
                            mv->data_len, w ? wire_ack : NULL, w);
    if (rc != 0)
        free(w);
}

static void sub_release_stream(void *ud) { js_stream_release(ud); }

static void stream_unsubscribe(jstream *s)
{
    struct jstream_priv *p = s->priv;
    for (size_t i = 0; i < p->nsubs; i++)
        server_isub_close(s->j->srv, p->subs[i]);
    free(p->subs);
    p->subs = NULL;
    p->nsubs = 0;
}

static int stream_subscribe(jstream *s)
{
    struct jstream_priv *p = s->priv;
    if (s->cfg.nsubjects == 0)
        return 0;
    p->subs = calloc(s->cfg.nsubjects, sizeof *p->subs);
    if (!p->subs)
        return -1;
    for (size_t i = 0; i < s->cfg.nsubjects; i++) {
        js_stream_retain(s);
        sub *x = acc_isub(s->j->acc, s->cfg.subjects[i], NULL, on_stream_msg, s,
                             sub_release_stream);
        if (!x) {
            js_stream_release(s);
            return -1;
        }
        p->subs[p->nsubs++] = x;
    }
    return 0;
}

/* ------------------------------------------------------------------ lifecycle */

static void sources_setup(jstream *s);
static void sources_save(jstream *s, bool force);

static jstream *stream_alloc(js *j, js_stream_cfg *cfg, int64_t created_ns)
{
    jstream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->priv = calloc(1, sizeof *s->priv);
    s->name = xstrdup(cfg->name);
    if (!s->priv || !s->name) {
        free(s->priv);
        free(s->name);
        free(s);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->j = j;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->priv->ack_mu, NULL);
    s->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    s->created_ns = created_ns;
    return s;
}

/* Open (recover) or create the stream's store. 0, or -1 with e set. */
static int stream_open_store(jstream *s, bool recovering, jerr *e)
{
    js *j = s->j;
    store_config sc;
    memset(&sc, 0, sizeof sc);
    sc.kind = s->cfg.storage;
    sc.name = s->name;
    sc.limits = cfg_limits(&s->cfg);
    sc.first_seq = s->cfg.first_seq;
    sc.sync_interval_ms = j->sync_interval_ms > 0 ? (uint32_t)j->sync_interval_ms : 0;
    sc.on_recover = on_recover;
    sc.recover_ud = s;
    char msgs[4096];
    if (s->cfg.storage == STORE_FILE) {
        size_t l = strlen(j->streams_dir) + strlen(s->name) + 2;
        s->dir = malloc(l);
        if (!s->dir) {
            jerr_set(e, JSE_StreamCreateErrF, "out of memory");
            return -1;
        }
        snprintf(s->dir, l, "%s/%s", j->streams_dir, s->name);
        if (!recovering)
            rm_rf(s->dir); /* leftovers of a stream that is gone */
        if (mkdir_p(s->dir) != 0) {
            jerr_set(e, JSE_StreamCreateErrF, "could not create stream directory: %s",
                     strerror(errno));
            return -1;
        }
        snprintf(msgs, sizeof msgs, "%s/msgs", s->dir);
        sc.dir = msgs;
        s->priv->src_path = malloc(l + 16);
        if (s->priv->src_path)
            snprintf(s->priv->src_path, l + 16, "%s/sources.json", s->dir);
    }
    int rc = store_open(&sc, &s->st);
    if (rc != 0) {
        s->st = NULL;
        jerr_set(e, JSE_StreamStoreFailedF, "%s", store_err_text(rc));
        return -1;
    }
    if (!recovering && write_meta(s) != 0) {
        jerr_set(e, JSE_StreamCreateErrF, "could not write stream metadata: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static void stream_link(js *j, jstream *s)
{
    jstream **pp = &j->streams;
    while (*pp)
        pp = &(*pp)->next;
    s->next = NULL;
    *pp = s;
    j->nstreams++;
}

static void stream_unlink(js *j, jstream *s)
{
    for (jstream **pp = &j->streams; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            j->nstreams--;
            break;
        }
    s->next = NULL;
}

static void reserve(js *j, const js_stream_cfg *c, int sign)
{
    if (c->max_bytes <= 0)
        return;
    int64_t amt = c->max_bytes * (c->num_replicas > 1 ? c->num_replicas : 1);
    if (c->storage == STORE_MEMORY)
        j->mem_used += sign * amt;
    else
        j->store_used += sign * amt;
}

/* Replace the store with an empty memory store (holders of a reference keep a valid
 * pointer); returns the old one. s->mu held. */
static store *stream_swap_store(jstream *s)
{
    store *old = s->st;
    store_config sc;
    memset(&sc, 0, sizeof sc);
    sc.kind = STORE_MEMORY;
    sc.name = s->name;
    store *tomb = NULL;
    if (store_open(&sc, &tomb) != 0)
        tomb = NULL;
    s->st = tomb;
    return old;
}

/* The part of a stream delete done after js->mu is released: closing a file store joins
 * its flusher thread, whose PubAck callbacks route messages and may need js->mu. */
typedef struct deferred_delete {
    jstream *s;     /* the table's reference */
    store *st;      /* the old store, abandoned (its files are already renamed away) */
    char *trash;    /* the renamed directory, removed */
} deferred_delete;

static __thread deferred_delete *tl_deferred;

static void finish_delete(deferred_delete *d)
{
    if (!d->s)
        return;
    if (d->st) {
        /* complete what waits on it (PubAcks, synced replies) before it goes */
        store_flush(d->st);
        if (d->trash)
            store_abandon(d->st); /* the files go with the directory */
        else
            store_delete(d->st);
    }
    if (d->trash)
        rm_rf(d->trash);
    acks_abandon(d->s, EMBER_ECLOSED);
    js_stream_release(d->s);
    free(d->trash);
    memset(d, 0, sizeof *d);
}

/* Delete a stream (js->mu held): consumers, subscriptions, store, files. The directory is
 * renamed out of the way at once (a stream of the same name may be created next); the
 * store is closed and the files removed after js->mu is released (tl_deferred) or here
 * when there is no caller to do that. */
static void stream_delete(js *j, jstream *s, js_outbox *ob)
{
    js_consumers_stream_deleting(s, ob);
    stream_unlink(j, s);
    reserve(j, &s->cfg, -1);
    stream_unsubscribe(s);
    pthread_mutex_lock(&s->mu);
    s->deleted = true;
    store *old = stream_swap_store(s);
    pthread_mutex_unlock(&s->mu);
    deferred_delete d = {s, old, NULL};
    if (s->dir) {
        char nuid[23];
        nuid_next(nuid);
        size_t l = strlen(j->streams_dir) + strlen(s->name) + 48;
        d.trash = malloc(l);
        if (d.trash) {
            snprintf(d.trash, l, "%s/.trash-%s-%s", j->streams_dir, s->name, nuid);
            if (rename(s->dir, d.trash) != 0) {
                free(d.trash);
                d.trash = NULL;
            }
        }
        if (!d.trash && old) { /* could not move it: delete in place, now */
            store_flush(old);
            store_delete(old);
            d.st = NULL;
            rm_rf(s->dir);
        }
    }
    if (tl_deferred && !tl_deferred->s)
        *tl_deferred = d;
    else
        finish_delete(&d);
}

/* Create a stream from a checked config (taken). js->mu held. */
static jstream *stream_create(js *j, js_stream_cfg *cfg, jerr *e)
{
    jstream *s = stream_alloc(j, cfg, js_now_wall());
    if (!s) {
        cfg_free(cfg);
        jerr_set(e, JSE_StreamCreateErrF, "out of memory");
        return NULL;
    }
    if (stream_open_store(s, false, e) != 0) {
        if (s->st) {
            store_delete(s->st);
            s->st = NULL;
        }
        rm_rf(s->dir);
        js_stream_release(s);
        return NULL;
    }
    compile_transforms(s);
    if (stream_subscribe(s) != 0) {
        stream_unsubscribe(s);
        store_delete(s->st);
        s->st = NULL;
        rm_rf(s->dir);
        js_stream_release(s);
        jerr_set(e, JSE_StreamCreateErrF, "could not subscribe to the stream subjects");
        return NULL;
    }
    sources_setup(s);
    stream_link(j, s);
    reserve(j, &s->cfg, 1);
    return s;
}

/* ------------------------------------------------------------------ StreamInfo */

enum { INFO_CREATE, INFO_UPDATE, INFO_INFO, INFO_LIST };

static void add_state(cJSON *o, jstream *s, bool deleted_details, cJSON *subjects)
{
    store_state ss;
    memset(&ss, 0, sizeof ss);
    if (s->st)
        store_get_state(s->st, &ss);
    char tb[64];
    cJSON *st = cJSON_AddObjectToObject(o, "state");
    js_add_u64(st, "messages", ss.msgs);
    js_add_u64(st, "bytes", ss.bytes);
    /* a stream that never held a message reports first_seq 0, as nats-server's stores */
    js_add_u64(st, "first_seq",
               ss.msgs == 0 && ss.last_seq == 0 && s->cfg.first_seq == 0 ? 0 : ss.first_seq);
    cJSON_AddStringToObject(st, "first_ts", js_time_str(tb, sizeof tb, ss.msgs ? ss.first_ts : 0));
    js_add_u64(st, "last_seq", ss.last_seq);
    cJSON_AddStringToObject(st, "last_ts", js_time_str(tb, sizeof tb, ss.last_ts));
    if (ss.num_subjects)
        js_add_u64(st, "num_subjects", ss.num_subjects);
    if (subjects)
        cJSON_AddItemToObject(st, "subjects", subjects);
    if (ss.num_deleted)
        js_add_u64(st, "num_deleted", ss.num_deleted);
    if (deleted_details && ss.num_deleted && s->st) {
        cJSON *d = cJSON_AddArrayToObject(st, "deleted");
        uint64_t seq = ss.first_seq, found = 0;
        store_msg *m = NULL;
        while (seq <= ss.last_seq && found < ss.num_deleted) {
            uint64_t next = ss.last_seq + 1;
            if (store_load_next(s->st, NULL, seq, &m) == 0) {
                next = m->seq;
                store_msg_release(m);
            }
            for (uint64_t q = seq; q < next && q <= ss.last_seq; q++) {
                char b[24];
                snprintf(b, sizeof b, "%llu", (unsigned long long)q);
                cJSON_AddItemToArray(d, cJSON_CreateRaw(b));
                found++;
            }
            seq = next + 1;
        }
    }
    js_add_i64(st, "consumer_count", (int64_t)s->nconsumers);
}

static cJSON *source_info_json(jstream *s, const srcstate *x, const js_stream_source *sc);

static void add_info(cJSON *o, jstream *s, int kind, bool deleted_details, cJSON *subjects)
{
    js *j = s->j;
    char tb[64];
    cJSON_AddItemToObject(o, "config", cfg_json(&s->cfg, kind != INFO_LIST));
    cJSON_AddStringToObject(o, "created", js_time_str(tb, sizeof tb, s->created_ns));
    add_state(o, s, deleted_details, subjects);
    if (kind != INFO_CREATE && j->domain)
        cJSON_AddStringToObject(o, "domain", j->domain);
    if (kind == INFO_INFO) {
        cJSON *cl = cJSON_AddObjectToObject(o, "cluster");
        const char *nm = j->srv->o_name && *j->srv->o_name ? j->srv->o_name : j->srv->id;
        cJSON_AddStringToObject(cl, "leader", nm);
    }
    struct jstream_priv *p = s->priv;
    if (s->cfg.mirror && p->nsrc == 1 && p->is_mirror)
        cJSON_AddItemToObject(o, "mirror", source_info_json(s, &p->src[0], s->cfg.mirror));
    if (!p->is_mirror && p->nsrc > 0) {
        cJSON *a = cJSON_AddArrayToObject(o, "sources");
        for (size_t i = 0; i < p->nsrc && i < s->cfg.nsources; i++)
            cJSON_AddItemToArray(a, source_info_json(s, &p->src[i], &s->cfg.sources[i]));
    }
    cJSON_AddStringToObject(o, "ts", js_time_str(tb, sizeof tb, js_now_wall()));
}

/* ------------------------------------------------------------------ API: helpers */

static bool is_json_obj_or_arr(const char *d, size_t n)
{
    size_t i = 0;
    while (i < n && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r'))
        i++;
    return i < n && (d[i] == '{' || d[i] == '[');
}

static bool is_empty_request(const char *d, size_t n)
{
    if (n == 0)
        return true;
    if (n == 2 && !memcmp(d, "{}", 2))
        return true;
    cJSON *o = cJSON_ParseWithLength(d, n);
    bool empty = o && cJSON_IsObject(o) && !o->child;
    cJSON_Delete(o);
    return empty;
}

/* A request body that must be a JSON object (or array, which Go then rejects). NULL
 * with the 10025 text in err. */
static cJSON *parse_req(const char *d, size_t n, const char *gotype, char *err, size_t cap)
{
    if (js_json_syntax_error(d, n, err, cap))
        return NULL;
    cJSON *o = cJSON_ParseWithLength(d, n);
    if (!o) {
        snprintf(err, cap, "unexpected end of JSON input");
        return NULL;
    }
    if (!cJSON_IsObject(o)) {
        snprintf(err, cap, "json: cannot unmarshal %s into Go value of type %s", json_kind(o),
                 gotype);
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static char *reply_of(const msgview *mv)
{
    if (!mv->reply || !mv->reply_len)
        return NULL;
    return xstrndup(mv->reply, mv->reply_len);
}

static char *tok_dup(const char *t, size_t l) { return xstrndup(t, l); }

static void add_paged(cJSON *r, int64_t total, int64_t offset, int64_t limit)
{
    js_add_i64(r, "total", total);
    js_add_i64(r, "offset", offset);
    js_add_i64(r, "limit", limit);
}

static int cmp_stream_name(const void *a, const void *b)
{
    const jstream *x = *(jstream *const *)a, *y = *(jstream *const *)b;
    return strcmp(x->name, y->name);
}

/* The streams matching a subject filter (all when NULL), sorted by name. */
static jstream **filtered_streams(js *j, const char *filter, size_t *n)
{
    jstream **a = calloc(j->nstreams + 1, sizeof *a);
    size_t k = 0;
    if (!a) {
        *n = 0;
        return NULL;
    }
    for (jstream *s = j->streams; s; s = s->next) {
        if (s->deleted)
            continue;
        if (filter && *filter) {
            bool m = false;
            for (size_t i = 0; i < s->cfg.nsubjects && !m; i++)
                m = js_subj_overlap(filter, s->cfg.subjects[i]);
            if (!m)
                continue;
        }
        a[k++] = s;
    }
    qsort(a, k, sizeof *a, cmp_stream_name);
    *n = k;
    return a;
}

/* ------------------------------------------------------------------ API: create/update */

/* jsNonClusteredStreamLimitsCheck + checkBytesLimits against the server's limits. */
static bool limits_check(js *j, const js_stream_cfg *c, bool storage_set, int64_t add_bytes,
                         int64_t old_reserved, jerr *e)
{
    if (!storage_set)
        return true;
    int64_t add = add_bytes < 0 ? 1 : add_bytes;
    if (add == 0)
        add = 1;
    if (c->storage == STORE_MEMORY) {
        int64_t res = j->mem_used - old_reserved;
        if (res > j->max_memory || add > j->max_memory - res) {
            jerr_set(e, JSE_MemoryResourcesExceededErr, NULL);
            return false;
        }
    } else {
        int64_t res = j->store_used - old_reserved;
        if (res > j->max_store || add > j->max_store - res) {
            jerr_set(e, JSE_StorageResourcesExceededErr, NULL);
            return false;
        }
    }
    return true;
}

static void api_create(js *j, const char *name, const msgview *mv, const char *reply,
                       js_outbox *ob)
{
    const char *type = JS_TYPE("stream_create_response");
    js_stream_cfg raw;
    cfg_req rq;
    jerr e;
    e.jse = -1;
    char perr[512];
    if (cfg_parse(mv->data, mv->data_len, &raw, &rq, perr, sizeof perr) != 0) {
        jerr_set(&e, JSE_InvalidJSONErr, "%s", perr);
        js_out_json(ob, reply, jerr_json(type, &e));
        return;
    }
    md_static(&raw);
    if (!streq(raw.name ? raw.name : "", name)) {
        jerr_set(&e, JSE_StreamMismatchErr, NULL);
        goto err;
    }
    if (strpbrk(name, "\\/")) {
        jerr_set(&e, JSE_StreamNameContainsPathSeparatorsErr, NULL);
        goto err;
    }
    if (raw.sealed) {
        jerr_set(&e, JSE_StreamInvalidConfigF, "stream configuration for create can not be sealed");
        goto err;
    }
    if (raw.mirror_direct && !raw.mirror) {
        jerr_set(&e, JSE_StreamInvalidConfigF, "stream has no mirror but does have mirror direct");
        goto err;
    }
    /* the pre-check on the raw config (storage and max_bytes as sent) */
    if (!limits_check(j, &raw, rq.storage_set, raw.max_bytes, 0, &e))
        goto err;
    js_stream_cfg cfg;
    if (!cfg_check(j, &raw, rq.pedantic, &cfg, &e))
        goto err;
    if (cfg.num_replicas > 1) {
        cfg_free(&cfg);
        jerr_set(&e, JSE_StreamReplicasNotSupportedErr, NULL);
        goto err;
    }
    jstream *s = find_stream(j, name);
    if (s) {
        md_copy_from(&cfg, &s->cfg);
        bool eq = cfg_equal(&cfg, &s->cfg);
        cfg_free(&cfg);
        if (!eq) {
            jerr_set(&e, JSE_StreamNameExistErr, NULL);
            goto err;
        }
    } else {
        if (!limits_check(j, &cfg, true, cfg.max_bytes, 0, &e)) {
            cfg_free(&cfg);
            goto err;
        }
        if (cfg.mirror && !cfg.mirror->ntransforms && cfg.mirror->filter_subject &&
            *cfg.mirror->filter_subject && !go_valid_subject(cfg.mirror->filter_subject)) {
            jerr_set(&e, JSE_StreamCreateErrF, "subject filter '%s' for the mirror invalid subject",
                     cfg.mirror->filter_subject);
            cfg_free(&cfg);
            goto err;
        }
        for (size_t i = 0; i < cfg.nsources; i++) {
            const js_stream_source *src = &cfg.sources[i];
            if (!src->ntransforms && src->filter_subject && *src->filter_subject &&
                !go_valid_subject(src->filter_subject)) {
                jerr_set(&e, JSE_StreamCreateErrF,
                         "subject filter '%s' for the source: invalid subject",
                         src->filter_subject);
                cfg_free(&cfg);
                goto err;
            }
        }
        if (subjects_overlap(j, cfg.subjects, cfg.nsubjects, NULL)) {
            cfg_free(&cfg);
            jerr_set(&e, JSE_StreamSubjectOverlapErr, NULL);
            goto err;
        }
        s = stream_create(j, &cfg, &e);
        if (!s)
            goto err;
    }
    cfg_free(&raw);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "type", type);
    add_info(r, s, INFO_CREATE, false, NULL);
    cJSON_AddBoolToObject(r, "did_create", true);
    js_out_json(ob, reply, r);
    return;
err:
    cfg_free(&raw);
    js_out_json(ob, reply, jerr_json(type, &e));
}

/* Subscribe the subjects of the new config that the old one lacked, drop the others. */
static int resubscribe(jstream *s, char **old, size_t nold)
{
    struct jstream_priv *p = s->priv;
    sub **ns = calloc(s->cfg.nsubjects + 1, sizeof *ns);
    if (!ns)
        return -1;
    size_t k = 0;
    bool *kept = calloc(nold + 1, sizeof *kept);
    if (!kept) {
        free(ns);
        return -1;
    }
    for (size_t i = 0; i < s->cfg.nsubjects; i++) {
        sub *x = NULL;
        for (size_t o = 0; o < nold && o < p->nsubs; o++)
            if (!kept[o] && !strcmp(old[o], s->cfg.subjects[i])) {
                kept[o] = true;
                x = p->subs[o];
                break;
            }
        if (!x) {
            js_stream_retain(s);
            x = acc_isub(s->j->acc, s->cfg.subjects[i], NULL, on_stream_msg, s,
                            sub_release_stream);
            if (!x) {
                js_stream_release(s);
                srv_log(s->j->srv, EMBER_LOG_ERROR,
                        "JetStream stream '%s > %s': could not subscribe to %s", s->j->acc->name, s->name,
                        s->cfg.subjects[i]);
            }
        }
        ns[k++] = x; /* index i: subject i (NULL when the subscribe failed) */
    }
    for (size_t o = 0; o < p->nsubs; o++)
        if (!kept[o])
            server_isub_close(s->j->srv, p->subs[o]);
    free(kept);
    free(p->subs);
    p->subs = ns;
    p->nsubs = k;
    return 0;
}

static bool sources_equal(const js_stream_source *a, const js_stream_source *b)
{
    if (!a || !b)
        return a == b;
    cJSON *x = cJSON_CreateObject(), *y = cJSON_CreateObject();
    add_source_json(x, a);
    add_source_json(y, b);
    bool eq = cJSON_Compare(x, y, true);
    cJSON_Delete(x);
    cJSON_Delete(y);
    return eq;
}

static void api_update(js *j, const char *name, const msgview *mv, const char *reply,
                       js_outbox *ob)
{
    const char *type = JS_TYPE("stream_update_response");
    js_stream_cfg raw, cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg_req rq;
    jerr e;
    e.jse = -1;
    char perr[512];
    if (cfg_parse(mv->data, mv->data_len, &raw, &rq, perr, sizeof perr) != 0) {
        jerr_set(&e, JSE_InvalidJSONErr, "%s", perr);
        js_out_json(ob, reply, jerr_json(type, &e));
        return;
    }
    if (!cfg_check(j, &raw, rq.pedantic, &cfg, &e))
        goto err;
    if (!streq(cfg.name, name)) {
        jerr_set(&e, JSE_StreamMismatchErr, NULL);
        goto err;
    }
    jstream *s = find_stream(j, name);
    if (!s) {
        jerr_set(&e, JSE_StreamNotFoundErr, NULL);
        goto err;
    }
    md_static(&cfg);
    const js_stream_cfg *old = &s->cfg;
    /* configUpdateCheck */
    if (cfg.max_consumers != old->max_consumers) {
        jerr_set(&e, JSE_StreamInvalidConfigF,
                 "stream configuration update can not change MaxConsumers");
        goto err;
    }
    if (cfg.storage != old->storage) {
        jerr_set(&e, JSE_StreamInvalidConfigF,
                 "stream configuration update can not change storage type");
        goto err;
    }
    if (cfg.retention != old->retention &&
        (old->retention == JS_RET_WORKQUEUE || cfg.retention == JS_RET_WORKQUEUE)) {
        jerr_set(&e, JSE_StreamInvalidConfigF,
                 "stream configuration update can not change retention policy to/from workqueue");
        goto err;
    }
    if (!cfg.sealed && old->sealed) {
        jerr_set(&e, JSE_StreamInvalidConfigF,
                 "stream configuration update can not unseal a sealed stream");
        goto err;
    }
    if (!cfg.deny_delete && old->deny_delete) {
        jerr_set(&e, JSE_StreamInvalidConfigF,
                 "stream configuration update can not cancel deny message deletes");
        goto err;
    }
    if (!cfg.deny_purge && old->deny_purge) {
        jerr_set(&e, JSE_StreamInvalidConfigF,
                 "stream configuration update can not cancel deny purge");
        goto err;
    }
    if (!sources_equal(cfg.mirror, old->mirror)) {
        jerr_set(&e, JSE_StreamMirrorNotUpdatableErr, NULL);
        goto err;
    }
    if (old->allow_msg_ttl && !cfg.allow_msg_ttl) {
        jerr_set(&e, JSE_StreamInvalidConfigF, "message TTL status can not be disabled");
        goto err;
    }
    if (cfg.sealed) {
        cfg.max_age_ns = 0;
        cfg.discard = STORE_DISCARD_NEW;
        cfg.deny_delete = cfg.deny_purge = true;
        cfg.allow_rollup_hdrs = false;
    }
    {
        int64_t diff = (cfg.max_bytes > 0 ? cfg.max_bytes : 0) - (old->max_bytes > 0 ? old->max_bytes : 0);
        if (diff < 0)
            diff = 0;
        if (!limits_check(j, &cfg, true, diff, 0, &e))
            goto err;
    }
    if (subjects_overlap(j, cfg.subjects, cfg.nsubjects, s)) {
        jerr_set(&e, JSE_StreamSubjectOverlapErr, NULL);
        goto err;
    }
    /* apply */
    reserve(j, &s->cfg, -1);
    char **old_subjects = s->cfg.subjects;
    size_t nold = s->cfg.nsubjects;
    js_stream_cfg prev;
    pthread_mutex_lock(&s->mu);
    prev = s->cfg;
    s->cfg = cfg;
    memset(&cfg, 0, sizeof cfg);
    store_limits lim = cfg_limits(&s->cfg);
    store_update_limits(s->st, &lim);
    compile_transforms(s);
    if (prev.duplicate_window_ns != s->cfg.duplicate_window_ns)
        dd_prune(s, js_now_wall());
    pthread_mutex_unlock(&s->mu);
    reserve(j, &s->cfg, 1);
    resubscribe(s, old_subjects, nold);
    cfg_free(&prev);
    sources_setup(s);
    write_meta(s);
    /* the new limits may have removed messages */
    js_consumers_stream_purged(s, ob);
    cfg_free(&raw);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "type", type);
    add_info(r, s, INFO_UPDATE, false, NULL);
    js_out_json(ob, reply, r);
    atomic_store(&s->dirty, true);
    tl_kick = true;
    return;
err:
    cfg_free(&raw);
    cfg_free(&cfg);
    js_out_json(ob, reply, jerr_json(type, &e));
}

/* ------------------------------------------------------------------ API: the rest */

static void api_info(js *j, const char *name, const msgview *mv, const char *reply,
                     js_outbox *ob)
{
    const char *type = JS_TYPE("stream_info_response");
    bool details = false;
    char *filter = NULL;
    int64_t offset = 0;
    char perr[512];
    cJSON *r;
    if (is_json_obj_or_arr(mv->data, mv->data_len)) {
        cJSON *o = parse_req(mv->data, mv->data_len, "server.JSApiStreamInfoRequest", perr,
                             sizeof perr);
        rd rr = {.pfx = "JSApiStreamInfoRequest."};
        if (o) {
            rd_bool(&rr, o, "deleted_details", &details);
            rd_str(&rr, o, "subjects_filter", &filter);
            rd_int(&rr, o, "offset", -9.2e18, 9.2e18, "int", &offset);
            cJSON_Delete(o);
            if (rr.failed)
                snprintf(perr, sizeof perr, "%s", rr.err);
        }
        if (!o || rr.failed) {
            free(filter);
            r = js_api_error(type, JSE_InvalidJSONErr, perr, NULL);
            add_paged(r, 0, 0, 0);
            js_out_json(ob, reply, r);
            return;
        }
        if (offset < 0)
            offset = 0;
    }
    jstream *s = find_stream(j, name);
    if (!s) {
        free(filter);
        r = js_api_error(type, JSE_StreamNotFoundErr, NULL);
        add_paged(r, 0, 0, 0);
        js_out_json(ob, reply, r);
        return;
    }
    int64_t total = 0, limit = 0, off = 0;
    cJSON *subjects = NULL;
    if (filter && *filter) {
        store_subject_state *ss = NULL;
        size_t n = 0;
        if (store_subjects_state(s->st, filter, &ss, &n) == 0 && n > 0) {
            total = (int64_t)n;
            limit = MAX_SUBJECT_DETAILS;
            off = offset;
            size_t from = (size_t)offset > n ? n : (size_t)offset;
            size_t to = from + MAX_SUBJECT_DETAILS > n ? n : from + MAX_SUBJECT_DETAILS;
            if (to > from) {
                subjects = cJSON_CreateObject();
                for (size_t i = from; i < to; i++)
                    js_add_u64(subjects, ss[i].subject, ss[i].msgs);
            }
        }
        free(ss);
    }
    free(filter);
    r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "type", type);
    add_paged(r, total, off, limit);
    add_info(r, s, INFO_INFO, details, subjects);
    js_out_json(ob, reply, r);
}

static bool paged_req(const msgview *mv, const char *gotype, const char *pfx, int64_t *offset,
                      char **subject, char *perr, size_t cap)
{
    *offset = 0;
    *subject = NULL;
    if (!is_json_obj_or_arr(mv->data, mv->data_len))
        return true;
    cJSON *o = parse_req(mv->data, mv->data_len, gotype, perr, cap);
    if (!o)
        return false;
    rd rr = {.pfx = pfx};
    rd_int(&rr, o, "offset", -9.2e18, 9.2e18, "int", offset);
    rd_str(&rr, o, "subject", subject);
    cJSON_Delete(o);
    if (rr.failed) {
        snprintf(perr, cap, "%s", rr.err);
        free(*subject);
        *subject = NULL;
        return false;
    }
    if (*offset < 0)
        *offset = 0;
    return true;
}

static void api_names(js *j, const msgview *mv, const char *reply, js_outbox *ob)
{
    const char *type = JS_TYPE("stream_names_response");
    int64_t offset;
    char *filter;
    char perr[512];
    if (!paged_req(mv, "server.JSApiStreamNamesRequest", "JSApiStreamNamesRequest.", &offset,
                   &filter, perr, sizeof perr)) {
        cJSON *r = js_api_error(type, JSE_InvalidJSONErr, perr, NULL);
        add_paged(r, 0, 0, 0);
        cJSON_AddNullToObject(r, "streams");
        js_out_json(ob, reply, r);
        return;
    }
    size_t n;
    jstream **a = filtered_streams(j, filter, &n);
    free(filter);
    size_t off = (size_t)offset > n ? n : (size_t)offset;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "type", type);
    add_paged(r, (int64_t)n, (int64_t)off, NAMES_LIMIT);
    if (off < n) {
        cJSON *arr = cJSON_AddArrayToObject(r, "streams");
        for (size_t i = off, k = 0; i < n && k < NAMES_LIMIT; i++, k++)
            cJSON_AddItemToArray(arr, cJSON_CreateString(a[i]->name));
    } else {
        cJSON_AddNullToObject(r, "streams");
    }
    free(a);
    js_out_json(ob, reply, r);
}

static void api_list(js *j, const msgview *mv, const char *reply, js_outbox *ob)
{
    const char *type = JS_TYPE("stream_list_response");
    int64_t offset;
    char *filter;
    char perr[512];
    if (!paged_req(mv, "server.JSApiStreamListRequest", "JSApiStreamListRequest.", &offset,
                   &filter, perr, sizeof perr)) {
        cJSON *r = js_api_error(type, JSE_InvalidJSONErr, perr, NULL);
        add_paged(r, 0, 0, 0);
        cJSON_AddArrayToObject(r, "streams");
        js_out_json(ob, reply, r);
        return;
    }
    size_t n;
    jstream **a = filtered_streams(j, filter, &n);
    free(filter);
    size_t off = (size_t)offset > n ? n : (size_t)offset;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "type", type);
    add_paged(r, (int64_t)n, (int64_t)off, LIST_LIMIT);
    cJSON *arr = cJSON_AddArrayToObject(r, "streams");
    for (size_t i = off, k = 0; i < n && k < LIST_LIMIT; i++, k++) {
        cJSON *si = cJSON_CreateObject();
        add_info(si, a[i], INFO_LIST, false, NULL);
        cJSON_AddItemToArray(arr, si);
    }
    free(a);
    js_out_json(ob, reply, r);
}

static void api_delete(js *j, const char *name, const msgview *mv, const char *reply,
                       js_outbox *ob)
{
    const char *type = JS_TYPE("stream_delete_response");
    if (!is_empty_request(mv->data, mv->data_len)) {
        js_out_json(ob, reply, js_api_error(type, JSE_NotEmptyRequestErr, NULL));
        return;
    }
    jstream *s = find_stream(j, name);
    if (!s) {
        js_out_json(ob, reply, js_api_error(type, JSE_StreamNotFoundErr, NULL));
        return;
    }
    stream_delete(j, s, ob);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "type", type);
    cJSON_AddBoolToObject(r, "success", true);
    js_out_json(ob, reply, r);
}

static void api_purge(js *j, const char *name, const msgview *mv, const char *reply,
                      js_outbox *ob)
{
    const char *type = JS_TYPE("stream_purge_response");
    uint64_t seq = 0, keep = 0;
    char *filter = NULL;
    char perr[512];
    cJSON *r;
    if (is_json_obj_or_arr(mv->data, mv->data_len)) {
        cJSON *o = parse_req(mv->data, mv->data_len, "server.JSApiStreamPurgeRequest", perr,
                             sizeof perr);
        rd rr = {.pfx = "JSApiStreamPurgeRequest."};
        if (o) {
            rd_uint(&rr, o, "seq", &seq);
            rd_str(&rr, o, "filter", &filter);
            rd_uint(&rr, o, "keep", &keep);
            cJSON_Delete(o);
            if (rr.failed)
                snprintf(perr, sizeof perr, "%s", rr.err);
        }
        if (!o || rr.failed) {
            free(filter);
            r = js_api_error(type, JSE_InvalidJSONErr, perr, NULL);
            js_add_u64(r, "purged", 0);
            js_out_json(ob, reply, r);
            return;
        }
        if (seq > 0 && keep > 0) {
            free(filter);
            r = js_api_error(type, JSE_BadRequestErr, NULL);
            js_add_u64(r, "purged", 0);
            js_out_json(ob, reply, r);
            return;
        }
    }
    jstream *s = find_stream(j, name);
    int jse = -1;
    const char *arg = NULL;
    if (!s)
        jse = JSE_StreamNotFoundErr;
    else if (s->cfg.sealed)
        jse = JSE_StreamSealedErr;
    else if (s->cfg.deny_purge) {
        jse = JSE_StreamPurgeFailedF;
        arg = "stream purge not permitted";
    }
    if (jse >= 0) {
        free(filter);
        r = js_api_error(type, jse, arg, NULL);
        js_add_u64(r, "purged", 0);
        js_out_json(ob, reply, r);
        return;
    }
    uint64_t purged = 0;
    pthread_mutex_lock(&s->mu);
    const char *f = filter && *filter && strcmp(filter, ">") ? filter : NULL;
    int rc = store_purge(s->st, f, seq, keep, &purged);
    pthread_mutex_unlock(&s->mu);
    free(filter);
    if (rc != 0) {
        r = js_api_error(type, JSE_StreamGeneralErrorF, store_err_text(rc), NULL);
        js_add_u64(r, "purged", 0);
        js_out_json(ob, reply, r);
        return;
    }
    js_consumers_stream_purged(s, ob);
    r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "type", type);
    cJSON_AddBoolToObject(r, "success", true);
    js_add_u64(r, "purged", purged);
    reply_when_synced(j, s->st, reply, r, ob);
}

static void api_msg_delete(js *j, const char *name, const msgview *mv, const char *reply,
                           js_outbox *ob)
{
    const char *type = JS_TYPE("stream_msg_delete_response");
    if (is_empty_request(mv->data, mv->data_len)) {
        js_out_json(ob, reply, js_api_error(type, JSE_BadRequestErr, NULL));
        return;
    }
    char perr[512];
    cJSON *o = parse_req(mv->data, mv->data_len, "server.JSApiMsgDeleteRequest", perr, sizeof perr);
    uint64_t seq = 0;
    bool no_erase = false;
    rd rr = {.pfx = "JSApiMsgDeleteRequest."};
    if (o) {
        rd_uint(&rr, o, "seq", &seq);
        rd_bool(&rr, o, "no_erase", &no_erase);
        cJSON_Delete(o);
        if (rr.failed)
            snprintf(perr, sizeof perr, "%s", rr.err);
    }
    if (!o || rr.failed) {
        js_out_json(ob, reply, js_api_error(type, JSE_InvalidJSONErr, perr, NULL));
        return;
    }
    jstream *s = find_stream(j, name);
    if (!s) {
        js_out_json(ob, reply, js_api_error(type, JSE_StreamNotFoundErr, NULL));
        return;
    }
    if (s->cfg.sealed) {
        js_out_json(ob, reply, js_api_error(type, JSE_StreamSealedErr, NULL));
        return;
    }
    if (s->cfg.deny_delete) {
        js_out_json(ob, reply,
                    js_api_error(type, JSE_StreamMsgDeleteFailedF, "message delete not permitted", NULL));
        return;
    }
    pthread_mutex_lock(&s->mu);
    store_state ss;
    store_get_state(s->st, &ss);
    int rc = store_remove(s->st, seq, !no_erase);
    pthread_mutex_unlock(&s->mu);
    if (rc == EMBER_ENOTFOUND) {
        if (s->cfg.storage == STORE_FILE && seq > ss.last_seq) {
            js_out_json(ob, reply,
                        js_api_error(type, JSE_StreamMsgDeleteFailedF, "stream store EOF", NULL));
        } else if (s->cfg.storage == STORE_FILE && (seq == 0 || seq < ss.first_seq)) {
            js_out_json(ob, reply,
                        js_api_error(type, JSE_StreamMsgDeleteFailedF, "no message found", NULL));
        } else {
            char b[24];
            snprintf(b, sizeof b, "%llu", (unsigned long long)seq);
            js_out_json(ob, reply, js_api_error(type, JSE_SequenceNotFoundErrF, b, NULL));
        }
        return;
    }
    if (rc != 0) {
        js_out_json(ob, reply, js_api_error(type, JSE_StreamMsgDeleteFailedF, store_err_text(rc), NULL));
        return;
    }
    js_consumers_stream_purged(s, ob);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "type", type);
    cJSON_AddBoolToObject(r, "success", true);
    reply_when_synced(j, s->st, reply, r, ob);
}

/* A MSG.GET / DIRECT.GET request. */
typedef struct getreq {
    uint64_t seq;
    char *last_by;
    char *next_by;
    int64_t start_time; /* 0: none */
    int64_t batch;
    int64_t max_bytes;
    char **multi_last;
    size_t nmulti;
    uint64_t up_to_seq;
    int64_t up_to_time;
} getreq;

static void getreq_free(getreq *g)
{
    free(g->last_by);
    free(g->next_by);
    for (size_t i = 0; i < g->nmulti; i++)
        free(g->multi_last[i]);
    free(g->multi_last);
    memset(g, 0, sizeof *g);
}

static bool getreq_parse(const cJSON *o, getreq *g, rd *rr)
{
    memset(g, 0, sizeof *g);
    rd_uint(rr, o, "seq", &g->seq);
    rd_str(rr, o, "last_by_subj", &g->last_by);
    rd_str(rr, o, "next_by_subj", &g->next_by);
    rd_time(rr, o, "start_time", &g->start_time);
    rd_int(rr, o, "batch", -9.2e18, 9.2e18, "int", &g->batch);
    rd_int(rr, o, "max_bytes", -9.2e18, 9.2e18, "int", &g->max_bytes);
    rd_strarr(rr, o, "multi_last", &g->multi_last, &g->nmulti);
    rd_uint(rr, o, "up_to_seq", &g->up_to_seq);
    rd_time(rr, o, "up_to_time", &g->up_to_time);
    if (g->last_by && !*g->last_by) {
        free(g->last_by);
        g->last_by = NULL;
    }
    if (g->next_by && !*g->next_by) {
        free(g->next_by);
        g->next_by = NULL;
    }
    return !rr->failed;
}

static void api_msg_get(js *j, const char *name, const msgview *mv, const char *reply,
                        js_outbox *ob)
{
    const char *type = JS_TYPE("stream_msg_get_response");
    if (is_empty_request(mv->data, mv->data_len)) {
        js_out_json(ob, reply, js_api_error(type, JSE_BadRequestErr, NULL));
        return;
    }
    char perr[512];
    cJSON *o = parse_req(mv->data, mv->data_len, "server.JSApiMsgGetRequest", perr, sizeof perr);
    getreq g;
    memset(&g, 0, sizeof g);
    rd rr = {.pfx = "JSApiMsgGetRequest."};
    if (o) {
        getreq_parse(o, &g, &rr);
        cJSON_Delete(o);
        if (rr.failed)
            snprintf(perr, sizeof perr, "%s", rr.err);
    }
    if (!o || rr.failed) {
        getreq_free(&g);
        js_out_json(ob, reply, js_api_error(type, JSE_InvalidJSONErr, perr, NULL));
        return;
    }
    if (g.batch > 0 || g.max_bytes > 0 ||
        (g.seq > 0 && g.last_by) || (g.seq == 0 && !g.last_by && !g.next_by && !g.start_time) ||
        (g.seq > 0 && g.start_time) || (g.start_time && g.last_by) || (g.last_by && g.next_by)) {
        getreq_free(&g);
        js_out_json(ob, reply, js_api_error(type, JSE_BadRequestErr, NULL));
        return;
    }
    jstream *s = find_stream(j, name);
    if (!s) {
        getreq_free(&g);
        js_out_json(ob, reply, js_api_error(type, JSE_StreamNotFoundErr, NULL));
        return;
    }
    uint64_t seq = g.seq;
    store_msg *m = NULL;
    int rc;
    if (g.start_time) {
        seq = seq_from_time(s->st, g.start_time);
    }
    if (seq > 0 && !g.next_by)
        rc = store_load(s->st, seq, &m);
    else if (g.next_by)
        rc = store_load_next(s->st, g.next_by, seq, &m);
    else if (g.last_by)
        rc = store_load_last(s->st, g.last_by, &m);
    else
        rc = EMBER_ENOTFOUND;
    getreq_free(&g);
    if (rc != 0) {
        js_out_json(ob, reply, js_api_error(type, JSE_NoMessageFoundErr, NULL));
        return;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "type", type);
    cJSON *msg = cJSON_AddObjectToObject(r, "message");
    char *subj = xstrndup(m->subj, m->subj_len);
    cJSON_AddStringToObject(msg, "subject", subj ? subj : "");
    free(subj);
    js_add_u64(msg, "seq", m->seq);
    if (m->hdr_len) {
        char *h = js_b64_encode(m->hdr, m->hdr_len);
        if (h)
            cJSON_AddStringToObject(msg, "hdrs", h);
        free(h);
    }
    if (m->data_len) {
        char *d = js_b64_encode(m->data, m->data_len);
        if (d)
            cJSON_AddStringToObject(msg, "data", d);
        free(d);
    }
    char tb[64];
    cJSON_AddStringToObject(msg, "time", js_time_str(tb, sizeof tb, m->ts));
    store_msg_release(m);
    js_out_json(ob, reply, r);
}

void js_api_stream(js *j, const char **toks, const size_t *toklen, int ntoks,
                   const msgview *mv, js_outbox *ob)
{
    if (ntoks < 2)
        return;
    char *reply = reply_of(mv);
    char *name = NULL;
#define IS(i, s) (toklen[i] == strlen(s) && !memcmp(toks[i], s, toklen[i]))
    tl_kick = false;
    deferred_delete dd;
    memset(&dd, 0, sizeof dd);
    tl_deferred = &dd;
    pthread_mutex_lock(&j->mu);
    if (ntoks == 3) {
        name = tok_dup(toks[2], toklen[2]);
        if (!name) {
            /* out of memory: no answer */
        } else if (IS(1, "CREATE")) {
            api_create(j, name, mv, reply, ob);
        } else if (IS(1, "UPDATE")) {
            api_update(j, name, mv, reply, ob);
        } else if (IS(1, "INFO")) {
            api_info(j, name, mv, reply, ob);
        } else if (IS(1, "DELETE")) {
            api_delete(j, name, mv, reply, ob);
        } else if (IS(1, "PURGE")) {
            api_purge(j, name, mv, reply, ob);
        }
    } else if (ntoks == 2 && IS(1, "NAMES")) {
        api_names(j, mv, reply, ob);
    } else if (ntoks == 2 && IS(1, "LIST")) {
        api_list(j, mv, reply, ob);
    } else if (ntoks == 4 && IS(1, "MSG")) {
        name = tok_dup(toks[3], toklen[3]);
        if (name && IS(2, "GET"))
            api_msg_get(j, name, mv, reply, ob);
        else if (name && IS(2, "DELETE"))
            api_msg_delete(j, name, mv, reply, ob);
    }
#undef IS
    pthread_mutex_unlock(&j->mu);
    tl_deferred = NULL;
    finish_delete(&dd);
    if (tl_kick) {
        tl_kick = false;
        js_kick(j);
    }
    free(name);
    free(reply);
}

/* ------------------------------------------------------------------ direct get */

#define DG_MAX_PENDING (64ll * 1024 * 1024)

static void dg_status(js_outbox *ob, const char *reply, const char *line)
{
    /* "NATS/1.0 <code> <text>\r\n\r\n" with no body */
    char h[256];
    int n = snprintf(h, sizeof h, "NATS/1.0 %s\r\n\r\n", line);
    js_out_msg(ob, NULL, reply, strlen(reply), NULL, h, (size_t)n, NULL, 0);
}

static void dg_send(js_outbox *ob, const char *reply, const char *name, const store_msg *m,
                    bool batch, uint64_t np, uint64_t lseq)
{
    char tb[64];
    js_time_str(tb, sizeof tb, m->ts);
    sbuf b = {0};
    hdr_gen(&b, m->hdr, m->hdr_len);
    sb_str(&b, "Nats-Stream: ");
    sb_str(&b, name);
    sb_str(&b, "\r\nNats-Subject: ");
    sb_add(&b, m->subj, m->subj_len);
    sb_fmt(&b, "\r\nNats-Sequence: %llu\r\nNats-Time-Stamp: %s\r\n", (unsigned long long)m->seq,
           tb);
    if (batch)
        sb_fmt(&b, "Nats-Num-Pending: %llu\r\nNats-Last-Sequence: %llu\r\n",
               (unsigned long long)np, (unsigned long long)lseq);
    sb_str(&b, "\r\n");
    if (!b.oom)
        js_out_msg(ob, NULL, reply, strlen(reply), NULL, b.p, b.n, m->data, m->data_len);
    free(b.p);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* MultiLastSeqs: the last sequence <= up_to of every subject matching the filters. */
static int multi_last_seqs(store *st, char **filters, size_t nf, uint64_t up_to, size_t max,
                           uint64_t **out, size_t *n)
{
    uint64_t *seqs = NULL;
    size_t k = 0, cap = 0;
    for (size_t f = 0; f < nf; f++) {
        store_subject_state *ss = NULL;
        size_t ns = 0;
        if (store_subjects_state(st, filters[f], &ss, &ns) != 0)
            continue;
        for (size_t i = 0; i < ns; i++) {
            uint64_t last = 0;
            if (ss[i].last_seq <= up_to) {
                last = ss[i].last_seq;
            } else if (ss[i].first_seq <= up_to) {
                uint64_t q = ss[i].first_seq;
                store_msg *m = NULL;
                while (q <= up_to && store_load_next(st, ss[i].subject, q, &m) == 0) {
                    if (m->seq <= up_to)
                        last = m->seq;
                    q = m->seq + 1;
                    store_msg_release(m);
                }
            }
            if (!last)
                continue;
            bool dup = false;
            for (size_t z = 0; z < k && !dup; z++)
                dup = seqs[z] == last;
            if (dup)
                continue;
            if (k == cap) {
                size_t nc = cap ? cap * 2 : 16;
                uint64_t *ns2 = realloc(seqs, nc * sizeof *ns2);
                if (!ns2)
                    break;
                seqs = ns2;
                cap = nc;
            }
            seqs[k++] = last;
            if (k > max) {
                free(ss);
                free(seqs);
                return -1;
            }
        }
        free(ss);
    }
    if (k)
        qsort(seqs, k, sizeof *seqs, cmp_u64);
    *out = seqs;
    *n = k;
    return 0;
}

static void dg_multi(jstream *s, const getreq *g, const char *reply, js_outbox *ob)
{
    int64_t mb = g->max_bytes ? g->max_bytes : DG_MAX_PENDING;
    uint64_t up_to = g->up_to_seq;
    store_state ss;
    store_get_state(s->st, &ss);
    if (g->up_to_time) {
        up_to = seq_from_time(s->st, g->up_to_time);
        if (up_to == 0)
            up_to = ss.last_seq + 1;
        if (up_to <= ss.first_seq) {
            dg_status(ob, reply, "404 No Results");
            return;
        }
        up_to--;
    }
    if (up_to == 0)
        up_to = ss.last_seq;
    uint64_t *seqs = NULL;
    size_t n = 0;
    if (multi_last_seqs(s->st, g->multi_last, g->nmulti, up_to, 1024, &seqs, &n) != 0) {
        dg_status(ob, reply, "413 Too Many Results");
        return;
    }
    if (n == 0) {
        free(seqs);
        dg_status(ob, reply, "404 No Results");
        return;
    }
    uint64_t np = n - 1, lseq = 0;
    int64_t sent_bytes = 0, sent = 0;
    for (size_t i = 0; i < n; i++) {
        if (seqs[i] < g->seq) {
            if (np > 0)
                np--;
            continue;
        }
        store_msg *m = NULL;
        if (store_load(s->st, seqs[i], &m) != 0) {
            free(seqs);
            dg_status(ob, reply, "404 Message Not Found");
            return;
        }
        dg_send(ob, reply, s->name, m, true, np, lseq);
        if (np > 0)
            np--;
        lseq = m->seq;
        sent_bytes += (int64_t)(m->subj_len + m->hdr_len + m->data_len);
        store_msg_release(m);
        if (sent_bytes >= mb)
            break;
        sent++;
        if (g->batch > 0 && sent >= g->batch)
            break;
    }
    free(seqs);
    char h[200];
    int hl = snprintf(h, sizeof h,
                      "NATS/1.0 204 EOB\r\nNats-Num-Pending: %llu\r\nNats-Last-Sequence: %llu\r\n"
                      "Nats-UpTo-Sequence: %llu\r\n\r\n",
                      (unsigned long long)np, (unsigned long long)lseq, (unsigned long long)up_to);
    js_out_msg(ob, NULL, reply, strlen(reply), NULL, h, (size_t)hl, NULL, 0);
}

/* getDirectRequest */
static void dg_get(jstream *s, const getreq *g, const char *reply, js_outbox *ob)
{
    if (g->nmulti) {
        dg_multi(s, g, reply, ob);
        return;
    }
    uint64_t seq = g->start_time ? seq_from_time(s->st, g->start_time) : g->seq;
    int64_t batch = g->batch;
    bool is_batch = batch > 0;
    uint64_t np = 0, lseq = 0;
    if (!is_batch)
        batch = 1;
    else
        np = store_num_pending(s->st, g->next_by, seq);
    int64_t mb = g->max_bytes ? g->max_bytes : DG_MAX_PENDING;
    int64_t sent_bytes = 0;
    for (int64_t i = 0; i < batch; i++) {
        store_msg *m = NULL;
        int rc;
        if (seq > 0 && !g->next_by) {
            if (i == 0 && !is_batch)
                rc = store_load(s->st, seq, &m);
            else
                rc = store_load_next(s->st, NULL, seq, &m);
            if (rc == 0)
                seq = m->seq;
            seq++;
        } else if (g->next_by) {
            rc = store_load_next(s->st, g->next_by, seq, &m);
            if (rc == 0)
                seq = m->seq;
            seq++;
        } else {
            rc = store_load_last(s->st, g->last_by ? g->last_by : ">", &m);
        }
        if (rc != 0) {
            if (batch > 1 && i > 0)
                break;
            dg_status(ob, reply, "404 Message Not Found");
            return;
        }
        dg_send(ob, reply, s->name, m, is_batch, np, lseq);
        if (is_batch)
            np--;
        lseq = m->seq;
        sent_bytes += (int64_t)(m->subj_len + m->hdr_len + m->data_len);
        store_msg_release(m);
        if (sent_bytes >= mb)
            break;
    }
    if (is_batch) {
        np = store_num_pending(s->st, g->next_by, seq);
        char h[160];
        int hl = snprintf(h, sizeof h,
                          "NATS/1.0 204 EOB\r\nNats-Num-Pending: %llu\r\nNats-Last-Sequence: %llu\r\n\r\n",
                          (unsigned long long)np, (unsigned long long)lseq);
        js_out_msg(ob, NULL, reply, strlen(reply), NULL, h, (size_t)hl, NULL, 0);
    }
}

/* The stream that answers direct gets for `name`: itself with allow_direct, or a mirror
 * of it with mirror_direct. */
static jstream *direct_target(js *j, const char *name)
{
    jstream *s = find_stream(j, name);
    if (s && s->cfg.allow_direct)
        return s;
    for (jstream *m = j->streams; m; m = m->next)
        if (!m->deleted && m->cfg.mirror_direct && m->cfg.mirror && streq(m->cfg.mirror->name, name))
            return m;
    return NULL;
}

void js_api_direct_get(js *j, const char **toks, const size_t *toklen, int ntoks,
                       const msgview *mv, js_outbox *ob)
{
    if (ntoks < 3 || !mv->reply || !mv->reply_len)
        return;
    char *name = tok_dup(toks[2], toklen[2]);
    char *reply = reply_of(mv);
    if (!name || !reply) {
        free(name);
        free(reply);
        return;
    }
    pthread_mutex_lock(&j->mu);
    jstream *s = direct_target(j, name);
    if (!s)
        goto out; /* nobody subscribed: no answer */
    getreq g;
    memset(&g, 0, sizeof g);
    if (ntoks > 3) {
        const char *key = toks[3];
        size_t kl = (size_t)(mv->subject + mv->subject_len - key);
        if (mv->data_len != 0) {
            dg_status(ob, reply, "408 Bad Request");
            goto out;
        }
        g.last_by = xstrndup(key, kl);
        if (!g.last_by || !kl) {
            free(g.last_by);
            dg_status(ob, reply, "408 Bad Request");
            goto out;
        }
    } else {
        if (mv->data_len == 0) {
            dg_status(ob, reply, "408 Empty Request");
            goto out;
        }
        cJSON *o = cJSON_ParseWithLength(mv->data, mv->data_len);
        rd rr = {.pfx = "JSApiMsgGetRequest."};
        if (!o || !cJSON_IsObject(o) || !getreq_parse(o, &g, &rr)) {
            cJSON_Delete(o);
            getreq_free(&g);
            dg_status(ob, reply, "408 Malformed Request");
            goto out;
        }
        cJSON_Delete(o);
        if (g.seq == 0 && !g.last_by && !g.next_by && !g.nmulti && !g.start_time) {
            getreq_free(&g);
            dg_status(ob, reply, "408 Empty Request");
            goto out;
        }
        if ((g.seq > 0 && g.last_by) || (g.seq > 0 && g.start_time) ||
            (g.start_time && g.last_by) || (g.last_by && g.next_by) ||
            (g.last_by && g.batch > 0) || (g.last_by && g.nmulti) || (g.next_by && g.nmulti) ||
            (g.up_to_seq > 0 && g.up_to_time)) {
            getreq_free(&g);
            dg_status(ob, reply, "408 Bad Request");
            goto out;
        }
    }
    dg_get(s, &g, reply, ob);
    getreq_free(&g);
out:
    pthread_mutex_unlock(&j->mu);
    free(name);
    free(reply);
}

/* ------------------------------------------------------------------ engine lifecycle */

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void sdm_scan(jstream *s);

static void recover_one(js *j, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/meta.json", j->streams_dir, name);
    size_t len = 0;
    char *txt = js_read_file(path, &len);
    if (!txt) {
        srv_log(j->srv, EMBER_LOG_WARN,
                "JetStream stream '%s > %s': no readable meta.json, not recovered", j->acc->name, name);
        return;
    }
    cJSON *o = cJSON_ParseWithLength(txt, len);
    free(txt);
    const cJSON *c = o ? cJSON_GetObjectItemCaseSensitive(o, "config") : NULL;
    char *ctxt = c ? cJSON_PrintUnformatted(c) : NULL;
    int64_t created = 0;
    bool bad = false;
    if (o)
        js_get_i64(o, "created_ns", &created, &bad);
    cJSON_Delete(o);
    js_stream_cfg cfg;
    cfg_req rq;
    char perr[512];
    if (!ctxt || cfg_parse(ctxt, strlen(ctxt), &cfg, &rq, perr, sizeof perr) != 0) {
        cJSON_free(ctxt);
        srv_log(j->srv, EMBER_LOG_WARN,
                "JetStream stream '%s > %s': invalid meta.json, not recovered", j->acc->name, name);
        return;
    }
    cJSON_free(ctxt);
    if (!cfg.name || strcmp(cfg.name, name) || cfg.storage != STORE_FILE || find_stream(j, name)) {
        srv_log(j->srv, EMBER_LOG_WARN,
                "JetStream stream '%s > %s': meta.json does not match its directory, not recovered", j->acc->name,
                name);
        cfg_free(&cfg);
        return;
    }
    if (!cfg.compression)
        cfg.compression = xstrdup("none");
    jstream *s = stream_alloc(j, &cfg, created ? created : js_now_wall());
    if (!s) {
        cfg_free(&cfg);
        return;
    }
    jerr e;
    if (stream_open_store(s, true, &e) != 0) {
        char desc[1024];
        js_err_text(desc, sizeof desc, e.jse, e.a1, e.a2, NULL);
        srv_log(j->srv, EMBER_LOG_ERROR, "JetStream stream '%s > %s' could not be recovered: %s", j->acc->name,
                name, desc);
        js_stream_release(s);
        return;
    }
    compile_transforms(s);
    if (stream_subscribe(s) != 0)
        srv_log(j->srv, EMBER_LOG_ERROR,
                "JetStream stream '%s > %s': could not subscribe to its subjects", j->acc->name, name);
    sources_setup(s);
    stream_link(j, s);
    reserve(j, &s->cfg, 1);
    if (s->cfg.subject_delete_marker_ttl_ns > 0)
        sdm_scan(s);
    char cerr[512] = "";
    if (js_consumers_recover(s, cerr, sizeof cerr) != 0)
        srv_log(j->srv, EMBER_LOG_WARN, "JetStream stream '%s > %s': consumer recovery: %s", j->acc->name,
                name, cerr);
    store_state ss;
    store_get_state(s->st, &ss);
    srv_log(j->srv, EMBER_LOG_INFO, "  Restored %llu messages for stream '%s > %s'",
            (unsigned long long)ss.msgs, j->acc->name, name);
}

int js_streams_recover(js *j, char *err, size_t errcap)
{
    (void)err;
    (void)errcap;
    DIR *d = opendir(j->streams_dir);
    if (!d)
        return 0;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strncmp(de->d_name, ".trash-", 7)) { /* a delete cut short by a crash */
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", j->streams_dir, de->d_name);
            rm_rf(p);
            continue;
        }
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **nn = realloc(names, nc * sizeof *nn);
            if (!nn)
                break;
            names = nn;
            cap = nc;
        }
        if ((names[n] = strdup(de->d_name)))
            n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_strp);
    for (size_t i = 0; i < n; i++) {
        recover_one(j, names[i]);
        free(names[i]);
    }
    free(names);
    return 0;
}

void js_streams_close_all(js *j)
{
    /* Detach every stream under js->mu, then close the stores with js->mu released: a
     * file store's close waits for its flusher thread, whose PubAck callbacks route
     * messages (which may reach code that takes js->mu). */
    jstream *list = NULL, **tail = &list;
    while (j->streams) {
        jstream *s = j->streams;
        j->streams = s->next;
        j->nstreams--;
        s->next = NULL;
        js_consumers_close(s);
        stream_unsubscribe(s);
        sources_save(s, true);
        reserve(j, &s->cfg, -1);
        pthread_mutex_lock(&s->mu);
        s->deleted = true;
        pthread_mutex_unlock(&s->mu);
        *tail = s;
        tail = &s->next;
    }
    if (!list)
        return;
    pthread_mutex_unlock(&j->mu);
    while (list) {
        jstream *s = list;
        list = s->next;
        s->next = NULL;
        pthread_mutex_lock(&s->mu);
        store *old = stream_swap_store(s);
        pthread_mutex_unlock(&s->mu);
        if (old)
            store_close(old);
        acks_abandon(s, EMBER_ECLOSED);
        js_stream_release(s);
    }
    pthread_mutex_lock(&j->mu);
}

void js_streams_usage(js *j, uint64_t *memory, uint64_t *storage, uint64_t *streams,
                      uint64_t *consumers)
{
    uint64_t mem = 0, sto = 0, ns = 0, nc = 0;
    for (jstream *s = j->streams; s; s = s->next) {
        if (s->deleted)
            continue;
        store_state ss;
        store_get_state(s->st, &ss);
        if (s->cfg.storage == STORE_MEMORY)
            mem += ss.bytes;
        else
            sto += ss.bytes;
        ns++;
        nc += s->nconsumers;
    }
    *memory = mem;
    *storage = sto;
    *streams = ns;
    *consumers = nc;
}

/* ------------------------------------------------------------------ subject delete markers */

static bool is_marker(const store_msg *m)
{
    const char *v;
    size_t vl;
    return hdr_val(m->hdr, m->hdr_len, "Nats-Marker-Reason", &v, &vl);
}

/* Recover the TTL'd messages of a stream with delete markers (s->mu not needed: at
 * start, before anyone publishes). */
static void sdm_scan(jstream *s)
{
    struct jstream_priv *p = s->priv;
    p->nttl = 0;
    store_state ss;
    store_get_state(s->st, &ss);
    uint64_t seq = ss.first_seq;
    store_msg *m = NULL;
    while (ss.msgs && seq <= ss.last_seq && store_load_next(s->st, NULL, seq, &m) == 0) {
        const char *v;
        size_t vl;
        int64_t ttl;
        if (hdr_val(m->hdr, m->hdr_len, "Nats-TTL", &v, &vl) && parse_msg_ttl(v, vl, &ttl) == 0 &&
            ttl > 0)
            ttl_push(p, m->ts + ttl * NS_PER_S, m->seq);
        seq = m->seq + 1;
        store_msg_release(m);
    }
    p->ttl_scanned = true;
}

static void after_internal_store(jstream *s, pubres *r, js_outbox *ob)
{
    if (r->purged)
        js_consumers_stream_purged(s, ob);
    if (r->rp_subj)
        js_out_msg(ob, NULL, r->rp_subj, strlen(r->rp_subj), NULL, r->rp_hdr, r->rp_hl,
                   r->rp_data, r->rp_dl);
    if (r->stored) {
        atomic_store(&s->dirty, true);
        atomic_store(&s->j->kicked, true);
    }
}

/* A message about to expire: the last of its subject gets a delete marker (which rolls
 * it up), the others go. js->mu held. */
static bool sdm_one(jstream *s, uint64_t seq, int64_t now, js_outbox *ob)
{
    store_msg *m = NULL;
    if (store_load(s->st, seq, &m) != 0)
        return false;
    char *subj = xstrndup(m->subj, m->subj_len);
    bool marker = is_marker(m);
    store_msg_release(m);
    if (!subj)
        return false;
    if (marker || store_subject_count(s->st, subj) > 1) {
        /* not the last (or a marker itself): it goes now, so that the next candidate of
         * its subject sees what remains */
        pthread_mutex_lock(&s->mu);
        bool gone = store_remove(s->st, seq, false) == 0;
        pthread_mutex_unlock(&s->mu);
        free(subj);
        return gone;
    }
    char dur[48], hdr[256];
    go_duration_secs(dur, sizeof dur, s->cfg.subject_delete_marker_ttl_ns / NS_PER_S);
    int hl = snprintf(hdr, sizeof hdr,
                      "NATS/1.0\r\nNats-Marker-Reason: MaxAge\r\nNats-TTL: %s\r\nNats-Rollup: sub\r\n\r\n",
                      dur);
    pubres r;
    pthread_mutex_lock(&s->mu);
    publish_locked(s, subj, strlen(subj), hdr, (size_t)hl, "", 0, true, true, now, &r);
    pthread_mutex_unlock(&s->mu);
    after_internal_store(s, &r, ob);
    pubres_free(&r);
    free(subj);
    return false; /* the rollup's purge was reported by after_internal_store */
}

/* Before store_expire: markers for the subjects that lose their last message. Returns
 * true when messages were removed. js->mu held. */
static bool sdm_process(jstream *s, int64_t now, js_outbox *ob)
{
    struct jstream_priv *p = s->priv;
    uint64_t *cand = NULL;
    size_t n = 0, cap = 0;
#define ADD(q)                                                       \
    do {                                                             \
        if (n == cap) {                                              \
            size_t nc_ = cap ? cap * 2 : 16;                         \
            uint64_t *x_ = realloc(cand, nc_ * sizeof *x_);          \
            if (!x_)                                                 \
                break;                                               \
            cand = x_;                                               \
            cap = nc_;                                               \
        }                                                            \
        cand[n++] = (q);                                             \
    } while (0)
    if (s->cfg.max_age_ns > 0) {
        int64_t cutoff = now - s->cfg.max_age_ns;
        store_state ss;
        store_get_state(s->st, &ss);
        uint64_t seq = ss.first_seq;
        store_msg *m = NULL;
        while (ss.msgs && store_load_next(s->st, NULL, seq, &m) == 0) {
            bool old = m->ts <= cutoff, never = m->ttl_ns == STORE_TTL_NEVER;
            seq = m->seq + 1;
            uint64_t q = m->seq;
            store_msg_release(m);
            if (never)
                continue; /* TTL "never": max_age does not take it */
            if (!old)
                break;
            ADD(q);
        }
    }
    pthread_mutex_lock(&s->mu);
    while (p->nttl > 0 && p->ttl[0].at <= now) {
        uint64_t q = p->ttl[0].seq;
        ttl_pop(p);
        ADD(q);
    }
    pthread_mutex_unlock(&s->mu);
#undef ADD
    if (n > 1)
        qsort(cand, n, sizeof *cand, cmp_u64);
    bool removed = false;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || cand[i] != cand[i - 1])
            removed |= sdm_one(s, cand[i], now, ob);
    free(cand);
    return removed;
}

/* ------------------------------------------------------------------ mirrors and sources */

static void xsrc_close(js *j, srcstate *x);

static void src_free_one(srcstate *x)
{
    if (x->dsub || x->rsub)
        xsrc_close(NULL, x);
    free(x->api);
    free(x->name);
    free(x->iname);
    free(x->filter);
    for (size_t k = 0; k < x->ntr; k++) {
        xform_free(x->trs[k]);
        free(x->tfilters[k]);
    }
    free(x->trs);
    free(x->tfilters);
    memset(x, 0, sizeof *x);
}

static void src_init(srcstate *x, const js_stream_source *sc)
{
    memset(x, 0, sizeof *x);
    x->name = xstrdup(sc->name);
    x->iname = source_iname(sc);
    x->external = sc->external_api || sc->external_deliver;
    if (sc->external_api && *sc->external_api)
        x->api = xstrdup(sc->external_api);
    if (sc->ntransforms) {
        x->trs = calloc(sc->ntransforms, sizeof *x->trs);
        x->tfilters = calloc(sc->ntransforms, sizeof *x->tfilters);
        if (x->trs && x->tfilters) {
            x->ntr = sc->ntransforms;
            for (size_t i = 0; i < sc->ntransforms; i++) {
                const char *src = sc->transforms[i].src;
                x->tfilters[i] = xstrdup(src && *src ? src : ">");
                char why[300];
                bool bad;
                x->trs[i] = xform_new(x->tfilters[i], sc->transforms[i].dest, why, sizeof why, &bad);
            }
        }
    } else if (sc->filter_subject && *sc->filter_subject) {
        x->filter = xstrdup(sc->filter_subject);
    }
}

/* Does the origin message pass the filters? *tr gets the transform to apply (or NULL). */
static bool src_match(const srcstate *x, const store_msg *m, const xform **tr)
{
    *tr = NULL;
    if (x->ntr) {
        for (size_t i = 0; i < x->ntr; i++)
            if (js_subj_match(x->tfilters[i], m->subj, m->subj_len)) {
                *tr = x->trs[i];
                return true;
            }
        return false;
    }
    return !x->filter || js_subj_match(x->filter, m->subj, m->subj_len);
}

static void sources_load(jstream *s)
{
    struct jstream_priv *p = s->priv;
    if (!p->src_path)
        return;
    size_t len;
    char *txt = js_read_file(p->src_path, &len);
    if (!txt)
        return;
    cJSON *o = cJSON_ParseWithLength(txt, len);
    free(txt);
    if (!o)
        return;
    for (size_t i = 0; i < p->nsrc; i++) {
        if (p->is_mirror || !p->src[i].iname)
            continue;
        uint64_t v;
        bool bad = false;
        if (js_get_u64(o, p->src[i].iname, &v, &bad)) {
            p->src[i].sseq = v;
            p->src[i].started = true;
        }
    }
    cJSON_Delete(o);
}

static void sources_save(jstream *s, bool force)
{
    struct jstream_priv *p = s->priv;
    if (!p || !p->src_path || p->is_mirror || !p->src_dirty)
        return;
    int64_t now = js_now_mono();
    if (!force && now - p->src_saved_ns < NS_PER_S)
        return; /* at most once a second; a crash may replay a second of sourcing */
    p->src_saved_ns = now;
    p->src_dirty = false;
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < p->nsrc; i++)
        if (p->src[i].iname)
            js_add_u64(o, p->src[i].iname, p->src[i].sseq);
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (txt && s->dir)
        js_write_file_atomic(s->dir, "sources.json", txt, strlen(txt), false);
    cJSON_free(txt);
}

/* (Re)build the mirror/source state from s->cfg, keeping the positions of sources that
 * stay. js->mu held (or the stream not yet shared). */
static void sources_setup(jstream *s)
{
    struct jstream_priv *p = s->priv;
    srcstate *old = p->src;
    size_t nold = p->nsrc;
    bool first = !old;
    p->src = NULL;
    p->nsrc = 0;
    p->is_mirror = s->cfg.mirror != NULL;
    size_t n = s->cfg.mirror ? 1 : s->cfg.nsources;
    if (n) {
        p->src = calloc(n, sizeof *p->src);
        if (p->src) {
            p->nsrc = n;
            for (size_t i = 0; i < n; i++) {
                const js_stream_source *sc = s->cfg.mirror ? s->cfg.mirror : &s->cfg.sources[i];
                srcstate *x = &p->src[i];
                src_init(x, sc);
                for (size_t k = 0; k < nold; k++)
                    if (old[k].iname && x->iname && !strcmp(old[k].iname, x->iname)) {
                        x->sseq = old[k].sseq;
                        x->last_ns = old[k].last_ns;
                        x->lag = old[k].lag;
                        x->started = old[k].started;
                    }
            }
        }
    }
    for (size_t k = 0; k < nold; k++)
        src_free_one(&old[k]);
    free(old);
    if (first && p->nsrc && !p->is_mirror)
        sources_load(s);
    p->src_dirty = true;
}

static cJSON *source_info_json(jstream *s, const srcstate *x, const js_stream_source *sc)
{
    (void)s;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", sc->name ? sc->name : "");
    if (sc->external_api || sc->external_deliver) {
        cJSON *e = cJSON_AddObjectToObject(o, "external");
        cJSON_AddStringToObject(e, "api", sc->external_api ? sc->external_api : "");
        cJSON_AddStringToObject(e, "deliver", sc->external_deliver ? sc->external_deliver : "");
    }
    js_add_u64(o, "lag", x->lag);
    js_add_i64(o, "active", x->last_ns ? js_now_wall() - x->last_ns : -1);
    if (x->external && !x->api) {
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddNumberToObject(e, "code", 501);
        cJSON_AddNumberToObject(e, "err_code", 10003);
        cJSON_AddStringToObject(e, "description",
                                "external mirrors and sources need an api prefix in Ember "
                                "(a deliver prefix alone is not supported)");
    } else if (x->external && x->xerr[0]) {
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddNumberToObject(e, "code", 503);
        cJSON_AddStringToObject(e, "description", x->xerr);
    }
    if (x->filter)
        cJSON_AddStringToObject(o, "filter_subject", x->filter);
    if (sc->ntransforms) {
        cJSON *a = cJSON_AddArrayToObject(o, "subject_transforms");
        for (size_t i = 0; i < sc->ntransforms; i++) {
            cJSON *t = cJSON_CreateObject();
            const char *src = sc->transforms[i].src;
            cJSON_AddStringToObject(t, "src", src && *src ? src : ">");
            cJSON_AddStringToObject(t, "dest", sc->transforms[i].dest ? sc->transforms[i].dest : "");
            cJSON_AddItemToArray(a, t);
        }
    }
    return o;
}

#define SRC_BATCH 4096

/* Store one origin message in a mirror (same sequence and time). s->mu held. */
static int mirror_store(jstream *s, const store_msg *m, const xform *tr)
{
    store_state ms;
    store_get_state(s->st, &ms);
    if (m->seq <= ms.last_seq)
        return 0;
    if (m->seq > ms.last_seq + 1) {
        if (ms.msgs == 0) {
            uint64_t purged;
            store_compact(s->st, m->seq, &purged);
        } else {
            for (uint64_t q = ms.last_seq + 1; q < m->seq; q++) {
                uint64_t got;
                if (store_skip(s->st, &got) != 0)
                    break;
            }
        }
    }
    char *subj = NULL;
    const char *sp = m->subj;
    size_t sl = m->subj_len;
    if (tr && xform_apply(tr, m->subj, m->subj_len, &subj)) {
        sp = subj;
        sl = strlen(subj);
    }
    int64_t ttl = 0;
    const char *v;
    size_t vl;
    if (hdr_val(m->hdr, m->hdr_len, "Nats-TTL", &v, &vl) && parse_msg_ttl(v, vl, &ttl) != 0)
        ttl = 0;
    uint64_t seq;
    int rc = store_append(s->st, sp, sl, m->hdr, m->hdr_len, m->data, m->data_len, m->ts,
                          ttl > 0 ? ttl * NS_PER_S : ttl < 0 ? STORE_TTL_NEVER : 0, &seq);
    free(subj);
    return rc;
}

/* Store one origin message in a sourcing stream: the Nats-Stream-Source header, no
 * expectations, through the publish checks. s->mu held. */
static int source_store(jstream *s, const srcstate *x, const store_msg *m, const xform *tr,
                        js_outbox *ob, bool *retry)
{
    *retry = false;
    size_t hl = m->hdr_len;
    char *h1 = NULL;
    sbuf b = {0};
    if (hl) {
        h1 = hdr_remove(m->hdr, hl, "Nats-Stream-Source", &hl);
        /* drop every Nats-Expected-* header */
        static const char *const exp[] = {"Nats-Expected-Stream", "Nats-Expected-Last-Sequence",
                                          "Nats-Expected-Last-Subject-Sequence",
                                          "Nats-Expected-Last-Subject-Sequence-Subject",
                                          "Nats-Expected-Last-Msg-Id"};
        for (size_t i = 0; h1 && i < sizeof exp / sizeof exp[0]; i++) {
            size_t nl;
            char *h2 = hdr_remove(h1, hl, exp[i], &nl);
            free(h1);
            h1 = h2;
            hl = nl;
        }
    }
    hdr_gen(&b, h1, h1 ? hl : 0);
    free(h1);
    /* iname is "<name[:hash]> <filter> <dest>" */
    const char *in = x->iname ? x->iname : "";
    const char *sp1 = strchr(in, ' ');
    sb_str(&b, "Nats-Stream-Source: ");
    sb_add(&b, in, sp1 ? (size_t)(sp1 - in) : strlen(in));
    sb_fmt(&b, " %llu", (unsigned long long)m->seq);
    if (sp1)
        sb_str(&b, sp1);
    sb_str(&b, "\r\n\r\n");
    if (b.oom) {
        free(b.p);
        *retry = true;
        return EMBER_ENOMEM;
    }
    char *subj = NULL;
    const char *sp = m->subj;
    size_t sl = m->subj_len;
    if (tr && xform_apply(tr, m->subj, m->subj_len, &subj)) {
        sp = subj;
        sl = strlen(subj);
    }
    pubres r;
    publish_locked(s, sp, sl, b.p, b.n, m->data, m->data_len, true, true, 0, &r);
    free(subj);
    free(b.p);
    int rc = 0;
    if (r.e.jse == JSE_StreamStoreFailedF) {
        *retry = true;
        rc = -1;
    }
    after_internal_store(s, &r, ob);
    pubres_free(&r);
    return rc;
}

/* ------------------------------------------------------------------ external origins
 *
 * A mirror or source in another JetStream domain (external.api "$JS.<domain>.API",
 * reached through a leaf link) is fed by a push consumer created on the origin, as
 * nats-server does: ack none, flow control, 1 s idle heartbeats, starting after the last
 * origin sequence taken. Deliveries arrive on an internal subscription (the link carries
 * the stream subject after '@' in the $JS.ACK reply, leaf.c gives it back as the subject)
 * and are stored from the thread that routes them. No message or heartbeat for 3 s, or
 * no answer to the create request within 5 s, and the consumer is created again from
 * where it stopped on a fresh deliver subject (so a stale consumer's deliveries find no
 * one); origin sequences already taken are skipped, so nothing is stored twice. */

typedef struct xsrc_ctx {
    js *j;
    char *stream;
    char dsubj[48];
} xsrc_ctx;

static void xsrc_ctx_free(void *ud)
{
    xsrc_ctx *cx = ud;
    free(cx->stream);
    free(cx);
}

/* js->mu held (j may be NULL when the stream is being freed). */
static void xsrc_close(js *j, srcstate *x)
{
    (void)j;
    server *srv = x->dsub ? x->dsub->cl->srv : (x->rsub ? x->rsub->cl->srv : NULL);
    if (srv) {
        server_isub_close(srv, x->dsub);
        server_isub_close(srv, x->rsub);
    }
    x->dsub = x->rsub = NULL;
    x->dsubj[0] = x->rsubj[0] = 0;
    x->xstate = XS_IDLE;
}

/* The origin's stream and consumer sequence from a $JS.ACK reply (v1: 9 tokens, v2: 12
 * with domain and account hash). */
static bool xsrc_parse_ack(const char *r, size_t n, uint64_t *sseq, int64_t *ts, uint64_t *pending)
{
    const char *tok[16];
    size_t tl[16], nt = 0;
    const char *p = r, *end = r + n;
    while (p <= end && nt < 16) {
        const char *q = memchr(p, '.', (size_t)(end - p));
        if (!q)
            q = end;
        tok[nt] = p;
        tl[nt++] = (size_t)(q - p);
        p = q + 1;
    }
    if (nt < 9 || tl[0] != 3 || memcmp(tok[0], "$JS", 3) || tl[1] != 3 || memcmp(tok[1], "ACK", 3))
        return false;
    size_t b = nt == 9 ? 4 : 6; /* index of the delivered count */
    if (nt != 9 && nt < 11)
        return false;
    char buf[32];
    uint64_t v[5];
    for (int k = 0; k < 5; k++) {
        size_t l = tl[b + (size_t)k];
        if (l == 0 || l >= sizeof buf)
            return false;
        memcpy(buf, tok[b + (size_t)k], l);
        buf[l] = 0;
        char *e;
        v[k] = strtoull(buf, &e, 10);
        if (*e)
            return false;
    }
    *sseq = v[1];
    *ts = (int64_t)v[3];
    *pending = v[4];
    return *sseq > 0;
}

static srcstate *xsrc_find(js *j, const xsrc_ctx *cx, jstream **sp)
{
    jstream *s = find_stream(j, cx->stream);
    if (!s || s->deleted || !s->st || !s->priv)
        return NULL;
    struct jstream_priv *p = s->priv;
    for (size_t i = 0; i < p->nsrc; i++)
        if (p->src[i].external && !strcmp(p->src[i].dsubj, cx->dsubj)) {
            *sp = s;
            return &p->src[i];
        }
    return NULL;
}

/* A delivery, heartbeat or flow-control request from the origin's consumer. */
static void xsrc_on_deliver(void *ud, server *srv, const msgview *mv)
{
    (void)srv;
    xsrc_ctx *cx = ud;
    js *j = cx->j;
    js_outbox ob;
    js_outbox_init(&ob);
    pthread_mutex_lock(&j->mu);
    jstream *s = NULL;
    srcstate *x = xsrc_find(j, cx, &s);
    if (!x)
        goto out;
    struct jstream_priv *p = s->priv;
    x->xlast = js_now_mono();
    x->last_ns = js_now_wall();
    if (x->xstate == XS_CREATING)
        x->xstate = XS_ACTIVE;
    int st = mv->hdr ? proto_hdr_status(mv->hdr, mv->hdr_len) : 0;
    if (st == 100) { /* idle heartbeat, or flow control: answer it */
        if (mv->reply)
            js_out_msg(&ob, NULL, mv->reply, mv->reply_len, NULL, NULL, 0, "", 0);
        goto out;
    }
    uint64_t sseq, pending;
    int64_t ts;
    if (st || !mv->reply || !xsrc_parse_ack(mv->reply, mv->reply_len, &sseq, &ts, &pending))
        goto out;
    x->lag = pending;
    if (sseq <= x->sseq)
        goto out; /* taken already (a consumer created again) */
    store_msg m = {0};
    m.seq = sseq;
    m.ts = ts;
    m.subj = mv->subject;
    m.subj_len = (uint32_t)mv->subject_len;
    m.hdr = mv->hdr_len ? mv->hdr : NULL;
    m.hdr_len = (uint32_t)mv->hdr_len;
    m.data = mv->data;
    m.data_len = (uint32_t)mv->data_len;
    const xform *tr = NULL;
    if (!src_match(x, &m, &tr)) {
        x->sseq = sseq;
        p->src_dirty = true;
        goto out;
    }
    pthread_mutex_lock(&s->mu);
    bool retry = false;
    int rc = p->is_mirror ? mirror_store(s, &m, tr) : source_store(s, x, &m, tr, &ob, &retry);
    pthread_mutex_unlock(&s->mu);
    if (rc == 0 && !retry) {
        x->sseq = sseq;
        p->src_dirty = true;
        if (p->is_mirror) {
            atomic_store(&s->dirty, true);
            atomic_store(&j->kicked, true);
        }
    } else {
        xsrc_close(j, x); /* try again from x->sseq + 1 */
        x->xsince = js_now_mono();
    }
out:
    pthread_mutex_unlock(&j->mu);
    js_outbox_send(j, &ob);
}

/* The origin's answer to the consumer create request. */
static void xsrc_on_created(void *ud, server *srv, const msgview *mv)
{
    (void)srv;
    xsrc_ctx *cx = ud;
    js *j = cx->j;
    pthread_mutex_lock(&j->mu);
    jstream *s = NULL;
    srcstate *x = xsrc_find(j, cx, &s);
    if (x && x->xstate == XS_CREATING) {
        cJSON *o = cJSON_ParseWithLength(mv->data, mv->data_len);
        cJSON *e = o ? cJSON_GetObjectItemCaseSensitive(o, "error") : NULL;
        if (o && !e) {
            x->xstate = XS_ACTIVE;
            x->xlast = js_now_mono();
            x->xerr[0] = 0;
        } else {
            cJSON *d = e ? cJSON_GetObjectItemCaseSensitive(e, "description") : NULL;
            snprintf(x->xerr, sizeof x->xerr, "%s",
                     cJSON_IsString(d) ? d->valuestring : "invalid consumer create response");
            xsrc_close(j, x); /* retried by the tick */
            x->xsince = js_now_mono();
        }
        cJSON_Delete(o);
    }
    pthread_mutex_unlock(&j->mu);
}

static sub *xsrc_sub(js *j, jstream *s, const char *subject, const char *dsubj, isub_fn fn)
{
    xsrc_ctx *cx = calloc(1, sizeof *cx);
    if (!cx)
        return NULL;
    cx->j = j;
    cx->stream = xstrdup(s->cfg.name);
    snprintf(cx->dsubj, sizeof cx->dsubj, "%s", dsubj);
    sub *x = acc_isub(j->acc, subject, NULL, fn, cx, xsrc_ctx_free);
    if (!x)
        xsrc_ctx_free(cx);
    return x;
}

/* JS thread, js->mu held: start, watch and restart the origin's consumer. */
static void xsrc_tick(js *j, jstream *s, srcstate *x, const js_stream_source *sc, js_outbox *ob)
{
    struct jstream_priv *p = s->priv;
    int64_t now = js_now_mono();
    if (!x->started) {
        x->started = true;
        store_state ms;
        store_get_state(s->st, &ms);
        if (p->is_mirror && ms.last_seq > 0)
            x->sseq = ms.last_seq; /* a mirror's sequences are the origin's */
        else if (!p->is_mirror && x->sseq == 0 && sc->opt_start_seq > 0)
            x->sseq = sc->opt_start_seq - 1;
        p->src_dirty = true;
    }
    if (x->xstate == XS_CREATING && now - x->xsince > XS_CREATE_WAIT_NS) {
        if (!x->xerr[0])
            snprintf(x->xerr, sizeof x->xerr, "no answer from %s", x->api);
        xsrc_close(j, x);
        x->xsince = now - XS_CREATE_WAIT_NS; /* again now */
    }
    if (x->xstate == XS_ACTIVE && now - x->xlast > XS_STALL_NS) {
        xsrc_close(j, x);
        x->xsince = now - XS_CREATE_WAIT_NS;
    }
    if (x->xstate != XS_IDLE || now - x->xsince < NS_PER_S)
        return;
    /* create a consumer on the origin, delivering to a fresh subject */
    char nuid[23];
    nuid_next(nuid);
    snprintf(x->dsubj, sizeof x->dsubj, "$JS.S.%s", nuid);
    nuid_next(nuid);
    snprintf(x->rsubj, sizeof x->rsubj, "$JS.SC.%s", nuid);
    x->dsub = xsrc_sub(j, s, x->dsubj, x->dsubj, xsrc_on_deliver);
    x->rsub = xsrc_sub(j, s, x->rsubj, x->dsubj, xsrc_on_created);
    if (!x->dsub || !x->rsub) {
        xsrc_close(j, x);
        return;
    }
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "stream_name", x->name);
    cJSON *c = cJSON_AddObjectToObject(req, "config");
    cJSON_AddStringToObject(c, "description", p->is_mirror ? "ember mirror" : "ember source");
    cJSON_AddStringToObject(c, "deliver_subject", x->dsubj);
    if (x->sseq > 0) {
        cJSON_AddStringToObject(c, "deliver_policy", "by_start_sequence");
        js_add_u64(c, "opt_start_seq", x->sseq + 1);
    } else if (sc->opt_start_time_ns) {
        char tb[64];
        cJSON_AddStringToObject(c, "deliver_policy", "by_start_time");
        cJSON_AddStringToObject(c, "opt_start_time", js_time_str(tb, sizeof tb, sc->opt_start_time_ns));
    } else {
        cJSON_AddStringToObject(c, "deliver_policy", "all");
    }
    cJSON_AddStringToObject(c, "ack_policy", "none");
    cJSON_AddNumberToObject(c, "max_deliver", 1);
    cJSON_AddBoolToObject(c, "flow_control", true);
    cJSON_AddNumberToObject(c, "idle_heartbeat", (double)XS_HEARTBEAT_NS);
    cJSON_AddNumberToObject(c, "inactive_threshold", (double)(10 * NS_PER_S));
    cJSON_AddNumberToObject(c, "num_replicas", 1);
    cJSON_AddBoolToObject(c, "mem_storage", true);
    if (x->filter)
        cJSON_AddStringToObject(c, "filter_subject", x->filter);
    char *txt = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    char subj[512];
    snprintf(subj, sizeof subj, "%s.CONSUMER.CREATE.%s", x->api, x->name);
    if (txt)
        js_out_msg(ob, NULL, subj, strlen(subj), x->rsubj, NULL, 0, txt, strlen(txt));
    cJSON_free(txt);
    x->xstate = XS_CREATING;
    x->xsince = now;
}

/* Pull what is new from each origin. js->mu held. Returns true when more is waiting. */
static bool sources_pull(js *j, jstream *s, int64_t now, js_outbox *ob)
{
    struct jstream_priv *p = s->priv;
    bool more = false;
    for (size_t i = 0; i < p->nsrc; i++) {
        srcstate *x = &p->src[i];
        if (x->external && x->api && x->name) {
            xsrc_tick(j, s, x, p->is_mirror ? s->cfg.mirror : &s->cfg.sources[i], ob);
            continue;
        }
        if (x->external || !x->name)
            continue;
        jstream *o = find_stream(j, x->name);
        if (!o || o == s || !o->st)
            continue;
        const js_stream_source *sc = p->is_mirror ? s->cfg.mirror : &s->cfg.sources[i];
        if (!x->started) {
            x->started = true;
            store_state ms;
            store_get_state(s->st, &ms);
            if (p->is_mirror && (ms.last_seq > 0 || (!sc->opt_start_seq && !sc->opt_start_time_ns))) {
                x->sseq = ms.last_seq; /* a mirror's sequences are the origin's */
            } else if (sc->opt_start_seq > 0) {
                x->sseq = sc->opt_start_seq - 1;
            } else if (sc->opt_start_time_ns) {
                uint64_t q = seq_from_time(o->st, sc->opt_start_time_ns);
                if (q) {
                    x->sseq = q - 1;
                } else {
                    store_state os;
                    store_get_state(o->st, &os);
                    x->sseq = os.last_seq;
                }
            } else {
                x->sseq = 0;
            }
            p->src_dirty = true;
        }
        x->last_ns = now;
        uint64_t start = x->sseq + 1;
        for (int k = 0; k < SRC_BATCH; k++) {
            store_msg *m = NULL;
            if (store_load_next(o->st, NULL, start, &m) != 0)
                break;
            const xform *tr = NULL;
            if (src_match(x, m, &tr)) {
                pthread_mutex_lock(&s->mu);
                int rc = 0;
                bool retry = false;
                if (s->deleted)
                    retry = true;
                else if (p->is_mirror)
                    rc = mirror_store(s, m, tr);
                else
                    rc = source_store(s, x, m, tr, ob, &retry);
                pthread_mutex_unlock(&s->mu);
                if (p->is_mirror && rc == 0) {
                    atomic_store(&s->dirty, true);
                    atomic_store(&j->kicked, true);
                }
                if (retry || (p->is_mirror && rc != 0)) {
                    store_msg_release(m);
                    break;
                }
            }
            x->sseq = m->seq;
            p->src_dirty = true;
            start = m->seq + 1;
            store_msg_release(m);
            if (k == SRC_BATCH - 1)
                more = true;
        }
        x->lag = store_num_pending(o->st, x->ntr ? NULL : x->filter, x->sseq + 1);
    }
    return more;
}

/* ------------------------------------------------------------------ timers */

int64_t js_streams_tick(js *j, int64_t now, js_outbox *ob)
{
    int64_t next = 0;
    /* server storage use against its limits */
    uint64_t mem = 0, sto = 0, ns = 0, nc = 0;
    js_streams_usage(j, &mem, &sto, &ns, &nc);
    atomic_store(&j->mem_bytes, (int64_t)mem);
    atomic_store(&j->store_bytes, (int64_t)sto);
    for (jstream *s = j->streams; s; s = s->next)
        if (!s->deleted)
            atomic_store(&s->priv->over_limit,
                         s->cfg.storage == STORE_MEMORY ? (int64_t)mem > j->max_memory
                                                        : (int64_t)sto > j->max_store);
#define DUE(t)                              \
    do {                                    \
        int64_t t_ = (t);                   \
        if (t_ > 0 && (next == 0 || t_ < next)) \
            next = t_;                      \
    } while (0)
    for (jstream *s = j->streams; s; s = s->next) {
        if (s->deleted || !s->st)
            continue;
        struct jstream_priv *p = s->priv;
        int64_t due = store_next_expiry(s->st);
        if (s->cfg.subject_delete_marker_ttl_ns > 0) {
            pthread_mutex_lock(&s->mu);
            if (!p->ttl_scanned)
                sdm_scan(s);
            int64_t ttl_at = p->nttl ? p->ttl[0].at : 0;
            pthread_mutex_unlock(&s->mu);
            if ((due && due <= now) || (ttl_at && ttl_at <= now)) {
                if (sdm_process(s, now, ob))
                    js_consumers_stream_purged(s, ob);
                pthread_mutex_lock(&s->mu);
                ttl_at = p->nttl ? p->ttl[0].at : 0;
                pthread_mutex_unlock(&s->mu);
            }
            DUE(ttl_at);
            due = store_next_expiry(s->st);
        }
        if (due && due <= now) {
            uint64_t n = store_expire(s->st, now);
            if (n)
                js_consumers_stream_purged(s, ob);
            due = store_next_expiry(s->st);
        }
        DUE(due);
        if (p->nsrc) {
            if (sources_pull(j, s, now, ob))
                DUE(now);
            else
                DUE(now + NS_PER_S); /* refresh lag/active */
            sources_save(s, false);
        }
    }
#undef DUE
    return next;
}
