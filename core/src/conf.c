/* conf: a recursive-descent parser for nats-server's configuration format.
 *
 * The grammar follows nats-server's conf/lex.go and conf/parse.go (see conf.h and
 * docs/config.md); where nats-server silently drops a value or accepts garbage, Ember
 * reports an error with its position instead, and a few of nats-server's lexer quirks
 * are smoothed (listed in docs/config.md).
 *
 * Memory: every value is malloc'd and refcounted; a $variable that names a map or an
 * array shares it (scalars are copied, taking the reference's position), so the tree is
 * a DAG whose height is bounded (conf_opts.max_depth, twice for shared values). Map
 * lookups use a small open-addressing index once a map has more than 8 keys.
 */
#define _POSIX_C_SOURCE 200809L
#include "conf.h"

#include "ember.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ document */

struct conf_doc {
    conf_value *root;
    char **files; /* names referenced by positions */
    size_t nfiles, cap;
};

typedef struct gctx { /* one parse: the document, limits and counters */
    conf_doc *doc;
    conf_opts o;
    conf_error *err;
    int files_read;
    size_t total_bytes;
    int depth;            /* containers, includes and environment values open */
    int include_depth;
    const char *inc_stack[64];
    const char *env_stack[16];
    int nenv;
} gctx;

typedef struct scope { /* the maps open in one parser, for $variable lookups */
    conf_value *map;
    struct scope *up;
} scope;

typedef struct parser {
    gctx *g;
    const char *s;
    size_t len, pos;
    int line;
    size_t lstart;    /* offset of the current line's first byte */
    const char *file; /* owned by the document */
    const char *dir;  /* for includes: "" (current directory) or ends without '/' */
    scope *sc;
} parser;

enum { K_TOP, K_BLOCK, K_MAP }; /* what a body is: the file, `{ }` around it, a map */

static const char *doc_add_file(conf_doc *d, const char *name, size_t n)
{
    if (d->nfiles == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        char **f = realloc(d->files, cap * sizeof *f);
        if (!f)
            return NULL;
        d->files = f;
        d->cap = cap;
    }
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    memcpy(s, name, n);
    s[n] = 0;
    d->files[d->nfiles++] = s;
    return s;
}

/* ------------------------------------------------------------------ errors */

static void err_format(conf_error *e)
{
    if (e->pos.file)
        snprintf(e->text, sizeof e->text, "%s:%d:%d: %s", e->pos.file, e->pos.line, e->pos.col,
                 e->msg);
    else
        snprintf(e->text, sizeof e->text, "%s", e->msg);
}

__attribute__((format(printf, 4, 5))) static int perr(parser *p, conf_pos pos, int code,
                                                     const char *fmt, ...)
{
    conf_error *e = p->g->err;
    if (e->code == 0) {
        e->code = code;
        e->pos = pos;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        err_format(e);
    }
    return code;
}

static int enomem(parser *p)
{
    conf_pos none = {0};
    return perr(p, none, EMBER_ENOMEM, "out of memory");
}

/* "'x'", "a new line", "end of file" or "byte 0xNN" for messages. */
static const char *describe(int c, char buf[16])
{
    if (c < 0)
        return "end of file";
    if (c == '\n' || c == '\r')
        return "a new line";
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, 16, "'%c'", c);
    else
        snprintf(buf, 16, "byte 0x%02x", c);
    return buf;
}

/* ------------------------------------------------------------------ values */

static conf_value *val_new(conf_type t, conf_pos pos)
{
    conf_value *v = calloc(1, sizeof *v);
    if (v) {
        v->type = t;
        v->pos = pos;
        v->refs = 1;
    }
    return v;
}

static void val_release(conf_value *v)
{
    if (!v || --v->refs > 0)
        return;
    switch (v->type) {
    case CONF_STRING:
    case CONF_DATETIME:
        free(v->u.str.s);
        break;
    case CONF_MAP:
        for (size_t i = 0; i < v->u.map.n; i++) {
            free(v->u.map.e[i].key);
            val_release(v->u.map.e[i].value);
        }
        free(v->u.map.e);
        free(v->u.map.idx);
        break;
    case CONF_ARRAY:
        for (size_t i = 0; i < v->u.arr.n; i++)
            val_release(v->u.arr.v[i]);
        free(v->u.arr.v);
        break;
    default:
        break;
    }
    free(v);
}

static conf_value *str_new(conf_pos pos, conf_type t, const char *s, size_t n)
{
    conf_value *v = val_new(t, pos);
    if (!v)
        return NULL;
    v->u.str.s = malloc(n + 1);
    if (!v->u.str.s) {
        free(v);
        return NULL;
    }
    memcpy(v->u.str.s, s, n);
    v->u.str.s[n] = 0;
    v->u.str.len = n;
    return v;
}

/* A variable's value at the reference: containers are shared, scalars copied. */
static conf_value *val_ref(const conf_value *src, conf_pos pos)
{
    if (src->type == CONF_MAP || src->type == CONF_ARRAY) {
        conf_value *v = (conf_value *)src;
        v->refs++;
        return v;
    }
    if (src->type == CONF_STRING || src->type == CONF_DATETIME)
        return str_new(pos, src->type, src->u.str.s, src->u.str.len);
    conf_value *v = val_new(src->type, pos);
    if (v)
        v->u = src->u;
    return v;
}

static uint32_t khash(const char *k, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 16777619u;
    }
    return h;
}

static conf_entry *map_find(const conf_value *m, const char *k, size_t n)
{
    if (m->u.map.idx) {
        size_t mask = m->u.map.idx_cap - 1;
        for (size_t i = khash(k, n) & mask; m->u.map.idx[i]; i = (i + 1) & mask) {
            conf_entry *e = &m->u.map.e[m->u.map.idx[i] - 1];
            if (e->key_len == n && memcmp(e->key, k, n) == 0)
                return e;
        }
        return NULL;
    }
    for (size_t i = 0; i < m->u.map.n; i++) {
        conf_entry *e = &m->u.map.e[i];
        if (e->key_len == n && memcmp(e->key, k, n) == 0)
            return e;
    }
    return NULL;
}

static void idx_insert(conf_value *m, size_t entry)
{
    size_t mask = m->u.map.idx_cap - 1;
    const conf_entry *e = &m->u.map.e[entry];
    size_t i = khash(e->key, e->key_len) & mask;
    while (m->u.map.idx[i])
        i = (i + 1) & mask;
    m->u.map.idx[i] = (uint32_t)(entry + 1);
}

/* Set key (taking ownership of key and of the reference on v). */
static int map_set(conf_value *m, char *key, size_t klen, conf_pos kpos, conf_value *v, bool used)
{
    conf_entry *e = map_find(m, key, klen);
    if (e) {
        free(key);
        val_release(e->value);
        e->value = v;
        e->key_pos = kpos;
        e->used = used;
    } else {
        if (m->u.map.n == m->u.map.cap) {
            size_t cap = m->u.map.cap ? m->u.map.cap * 2 : 4;
            conf_entry *ne = realloc(m->u.map.e, cap * sizeof *ne);
            if (!ne)
                return -1;
            m->u.map.e = ne;
            m->u.map.cap = cap;
        }
        size_t n = m->u.map.n;
        if (n + 1 > 8 && (n + 1) * 2 > m->u.map.idx_cap) {
            size_t cap = 32;
            while (cap < (n + 1) * 4)
                cap *= 2;
            uint32_t *idx = calloc(cap, sizeof *idx);
            if (!idx)
                return -1;
            free(m->u.map.idx);
            m->u.map.idx = idx;
            m->u.map.idx_cap = cap;
            for (size_t i = 0; i < n; i++)
                idx_insert(m, i);
        }
        m->u.map.e[n] = (conf_entry){key, klen, kpos, v, used};
        m->u.map.n = n + 1;
        if (m->u.map.idx)
            idx_insert(m, n);
    }
    if (v->height + 1 > m->height)
        m->height = v->height + 1;
    return 0;
}

static int arr_push(conf_value *a, conf_value *v)
{
    if (a->u.arr.n == a->u.arr.cap) {
        size_t cap = a->u.arr.cap ? a->u.arr.cap * 2 : 4;
        conf_value **nv = realloc(a->u.arr.v, cap * sizeof *nv);
        if (!nv)
            return -1;
        a->u.arr.v = nv;
        a->u.arr.cap = cap;
    }
    a->u.arr.v[a->u.arr.n++] = v;
    if (v->height + 1 > a->height)
        a->height = v->height + 1;
    return 0;
}

/* ------------------------------------------------------------------ text buffer */

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static int sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 32;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

/* ------------------------------------------------------------------ lexing helpers */

static int peek(const parser *p) { return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1; }
static int peek_at(const parser *p, size_t off)
{
    return p->pos + off < p->len ? (unsigned char)p->s[p->pos + off] : -1;
}

static void adv(parser *p)
{
    if (p->pos < p->len) {
        if (p->s[p->pos] == '\n') {
            p->line++;
            p->lstart = p->pos + 1;
        }
        p->pos++;
    }
}

static conf_pos here(const parser *p)
{
    return (conf_pos){p->file, p->line, (int)(p->pos - p->lstart) + 1};
}

static bool is_ws(int c) { return c == ' ' || c == '\t'; }
static bool is_nl(int c) { return c == '\n' || c == '\r'; }
static bool is_space(int c) { return is_ws(c) || is_nl(c) || c == '\v' || c == '\f'; }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
/* What ends an unquoted string or a number. */
static bool is_term(int c)
{
    return c < 0 || is_nl(c) || is_ws(c) || c == ';' || c == ',' || c == ']' || c == '}';
}
/* What ends a bare key (nats-server: only white space and the separators; Ember also
 * stops at brackets, braces, ',' and ';', which cannot start a value anyway). */
static bool is_key_end(int c)
{
    return c < 0 || is_space(c) || c == '=' || c == ':' || c == '{' || c == '[' || c == '}' ||
           c == ']' || c == ',' || c == ';';
}

static bool at_comment(const parser *p)
{
    int c = peek(p);
    return c == '#' || (c == '/' && peek_at(p, 1) == '/');
}

static void skip_comment(parser *p)
{
    while (peek(p) >= 0 && !is_nl(peek(p)))
        adv(p);
}

static void skip_ws(parser *p)
{
    while (is_ws(peek(p)))
        adv(p);
}

static void skip_spaces(parser *p)
{
    while (is_space(peek(p)))
        adv(p);
}

static void skip_blank(parser *p) /* white space, new lines and comments */
{
    for (;;) {
        if (is_space(peek(p)))
            adv(p);
        else if (at_comment(p))
            skip_comment(p);
        else
            return;
    }
}

static int depth_enter(parser *p, conf_pos pos)
{
    if (p->g->depth >= p->g->o.max_depth)
        return perr(p, pos, EMBER_EINVAL, "nested too deeply (more than %d levels)",
                    p->g->o.max_depth);
    p->g->depth++;
    return 0;
}

/* Messages name the key a value belongs to: `for "port"` or `in the array`. */
typedef struct what {
    const char *key; /* NULL: an array element */
    size_t len;
} what;
#define WHAT_FMT "%s%s%.*s%s"
#define WHAT_ARGS(w)                                                                 \
    (w).key ? "for " : "in the array", (w).key ? "\"" : "", (w).key ? (int)((w).len > 64 ? 64 : (w).len) : 0, \
        (w).key ? (w).key : "", (w).key ? "\"" : ""

static int parse_value(parser *p, what w, conf_value **out);
static int parse_body(parser *p, conf_value *map, int kind, conf_pos open);
static int parse_text(gctx *g, const char *data, size_t len, const char *file, const char *dir,
                      conf_value **out);

/* ------------------------------------------------------------------ strings */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* At a backslash: append the escaped byte. `open` is where the string started (an
 * escape cut by the end of the file is an unterminated string there). */
static int parse_escape(parser *p, sbuf *b, conf_pos open, bool quoted)
{
    conf_pos epos = here(p);
    adv(p);
    int c = peek(p);
    char ch;
    char d1[16], d2[16];
    switch (c) {
    case 't': ch = '\t'; break;
    case 'n': ch = '\n'; break;
    case 'r': ch = '\r'; break;
    case '"': ch = '"'; break;
    case '\\': ch = '\\'; break;
    case 'x': {
        adv(p);
        int h = peek(p), l = peek_at(p, 1);
        if (h < 0 || is_nl(h) || l < 0 || is_nl(l))
            return perr(p, epos, EMBER_EINVAL,
                        "expected two hexadecimal digits after '\\x', found %s",
                        describe(h < 0 || is_nl(h) ? h : l, d1));
        if (hexval(h) < 0 || hexval(l) < 0)
            return perr(p, epos, EMBER_EINVAL,
                        "expected two hexadecimal digits after '\\x', found %s and %s",
                        describe(h, d1), describe(l, d2));
        adv(p);
        adv(p);
        ch = (char)(hexval(h) * 16 + hexval(l));
        return sb_add(b, &ch, 1) ? enomem(p) : 0;
    }
    default:
        if (c < 0 && quoted)
            return perr(p, open, EMBER_EINVAL, "unterminated string");
        return perr(p, epos, EMBER_EINVAL,
                    "invalid escape %s: only \\xXX, \\t, \\n, \\r, \\\" and \\\\ are allowed",
                    describe(c, d1));
    }
    adv(p);
    return sb_add(b, &ch, 1) ? enomem(p) : 0;
}

static int parse_dq(parser *p, conf_value **out)
{
    conf_pos open = here(p);
    sbuf b = {0};
    int rc = 0;
    adv(p);
    size_t start = p->pos;
    for (;;) {
        int c = peek(p);
        if (c < 0) {
            rc = perr(p, open, EMBER_EINVAL, "unterminated string");
            break;
        }
        if (c == '"' || c == '\\') {
            if (sb_add(&b, p->s + start, p->pos - start)) {
                rc = enomem(p);
                break;
            }
            if (c == '"') {
                adv(p);
                break;
            }
            if ((rc = parse_escape(p, &b, open, true)))
                break;
            start = p->pos;
            continue;
        }
        adv(p);
    }
    if (rc == 0 && !(*out = str_new(open, CONF_STRING, b.p ? b.p : "", b.n)))
        rc = enomem(p);
    free(b.p);
    return rc;
}

static int parse_sq(parser *p, conf_value **out)
{
    conf_pos open = here(p);
    adv(p);
    size_t start = p->pos;
    while (peek(p) != '\'') {
        if (peek(p) < 0)
            return perr(p, open, EMBER_EINVAL, "unterminated string");
        adv(p);
    }
    *out = str_new(open, CONF_STRING, p->s + start, p->pos - start);
    adv(p);
    return *out ? 0 : enomem(p);
}

/* `( ... )`: raw text up to a ')' alone on its line (the new line before it excluded). */
static int parse_block(parser *p, conf_value **out)
{
    conf_pos open = here(p);
    adv(p);
    size_t start = p->pos;
    for (;;) {
        int c = peek(p);
        if (c < 0)
            return perr(p, open, EMBER_EINVAL, "unterminated block: '(' needs a ')' alone on a line");
        if (c == ')' && p->pos > start && p->s[p->pos - 1] == '\n' &&
            (p->pos + 1 == p->len || p->s[p->pos + 1] == '\n')) {
            *out = str_new(open, CONF_STRING, p->s + start, p->pos - 1 - start);
            adv(p);
            return *out ? 0 : enomem(p);
        }
        adv(p);
    }
}

/* ------------------------------------------------------------------ variables */

static int env_value(parser *p, const char *name, conf_pos ref, conf_value **out)
{
    gctx *g = p->g;
    for (int i = 0; i < g->nenv; i++)
        if (strcmp(g->env_stack[i], name) == 0)
            return perr(p, ref, EMBER_EINVAL, "variable reference cycle for \"%s\"", name);
    const char *val = g->o.get_env ? g->o.get_env(g->o.userdata, name) : getenv(name);
    if (!val)
        return perr(p, ref, EMBER_EINVAL, "variable \"%s\" is not defined", name);
    if (g->nenv == (int)(sizeof g->env_stack / sizeof g->env_stack[0]))
        return perr(p, ref, EMBER_EINVAL, "environment variables nested too deeply at \"%s\"",
                    name);
    int rc = depth_enter(p, ref);
    if (rc)
        return rc;
    /* As nats-server: the value is parsed as the text "pk=<value>". */
    size_t vlen = strlen(val);
    char *text = malloc(vlen + 4);
    const char *label = NULL;
    size_t nlen = strlen(name);
    char *lb = malloc(nlen + 8);
    if (lb) {
        memcpy(lb, "<env ", 5);
        memcpy(lb + 5, name, nlen);
        memcpy(lb + 5 + nlen, ">", 2);
        label = doc_add_file(g->doc, lb, nlen + 6);
        free(lb);
    }
    if (!text || !label) {
        free(text);
        g->depth--;
        return enomem(p);
    }
    memcpy(text, "pk=", 3);
    memcpy(text + 3, val, vlen);
    g->env_stack[g->nenv++] = name;
    conf_value *root = NULL;
    rc = parse_text(g, text, vlen + 3, label, "", &root);
    g->nenv--;
    g->depth--;
    free(text);
    if (rc) {
        if (rc == EMBER_ENOMEM)
            return rc;
        char inner[sizeof g->err->msg];
        snprintf(inner, sizeof inner, "%s", g->err->msg);
        g->err->code = 0;
        return perr(p, ref, rc, "variable \"%s\" from the environment could not be parsed: %s",
                    name, inner);
    }
    const conf_entry *e = map_find(root, "pk", 2);
    if (!e) { /* cannot happen: "pk=" always sets pk or fails */
        val_release(root);
        return perr(p, ref, EMBER_EINVAL, "variable \"%s\" from the environment has no value", name);
    }
    *out = val_ref(e->value, ref);
    val_release(root);
    return *out ? 0 : enomem(p);
}

static int resolve_var(parser *p, const char *name, size_t n, conf_pos ref, conf_value **out)
{
    for (scope *s = p->sc; s; s = s->up) {
        conf_entry *e = map_find(s->map, name, n);
        if (e) {
            e->used = true;
            *out = val_ref(e->value, ref);
            return *out ? 0 : enomem(p);
        }
    }
    if (memchr(name, 0, n) || memchr(name, '=', n) || n == 0)
        return perr(p, ref, EMBER_EINVAL, "variable \"%.*s\" is not defined", (int)n, name);
    return env_value(p, name, ref, out);
}

/* ------------------------------------------------------------------ scalars */

/* An unquoted string from the current position; it may turn out to be a boolean or a
 * $variable (when it has no escapes). */
static int parse_unquoted(parser *p, conf_pos vpos, conf_value **out)
{
    sbuf b = {0};
    bool esc = false;
    size_t start = p->pos;
    int rc = 0;
    for (;;) {
        int c = peek(p);
        if (is_term(c))
            break;
        if (c == '\\') {
            esc = true;
            if (sb_add(&b, p->s + start, p->pos - start)) {
                rc = enomem(p);
                goto out;
            }
            if ((rc = parse_escape(p, &b, vpos, false)))
                goto out;
            start = p->pos;
            continue;
        }
        adv(p);
    }
    if (sb_add(&b, p->s + start, p->pos - start)) {
        rc = enomem(p);
        goto out;
    }
    if (!esc) {
        static const char *const yes[] = {"true", "yes", "on"};
        static const char *const no[] = {"false", "no", "off"};
        for (int i = 0; i < 3; i++) {
            if (strcasecmp(b.p, yes[i]) == 0 || strcasecmp(b.p, no[i]) == 0) {
                if (!(*out = val_new(CONF_BOOL, vpos))) {
                    rc = enomem(p);
                    goto out;
                }
                (*out)->u.b = strcasecmp(b.p, yes[i]) == 0;
                goto out;
            }
        }
        if (b.p[0] == '$' && strncmp(b.p + 1, "2a$", 3) != 0) { /* "$2a$..." is bcrypt text */
            rc = resolve_var(p, b.p + 1, b.n - 1, vpos, out);
            goto out;
        }
    }
    if (!(*out = str_new(vpos, CONF_STRING, b.p, b.n)))
        rc = enomem(p);
out:
    free(b.p);
    return rc;
}

static const struct {
    const char *s;
    int64_t mult;
} suffixes[] = {
    {"k", 1000ll},
    {"kb", 1ll << 10}, {"ki", 1ll << 10}, {"kib", 1ll << 10},
    {"m", 1000000ll},
    {"mb", 1ll << 20}, {"mi", 1ll << 20}, {"mib", 1ll << 20},
    {"g", 1000000000ll},
    {"gb", 1ll << 30}, {"gi", 1ll << 30}, {"gib", 1ll << 30},
    {"t", 1000000000000ll},
    {"tb", 1ll << 40}, {"ti", 1ll << 40}, {"tib", 1ll << 40},
    {"p", 1000000000000000ll},
    {"pb", 1ll << 50}, {"pi", 1ll << 50}, {"pib", 1ll << 50},
    {"e", 1000000000000000000ll},
    {"eb", 1ll << 60}, {"ei", 1ll << 60}, {"eib", 1ll << 60},
};

static bool is_suffix_start(int c) { return c > 0 && c < 128 && strchr("kKmMgGtTpPeE", c); }

static double pow10_int(int e)
{
    static const double exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    if (e <= 22)
        return exact[e];
    double r = 1e22;
    for (e -= 22; e > 0 && r <= 1.7976931348623157e308; e--)
        r *= 10;
    return r;
}

/* Locale-independent decimal to double for "digits[.digits]": exact (correctly rounded)
 * while the significant digits fit in 2^53 and the scale in 10^22. */
static bool decimal_to_double(const char *s, size_t n, double *out)
{
    uint64_t mant = 0;
    int sig = 0, exp10 = 0;
    bool frac = false, any = false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            frac = true;
            continue;
        }
        int d = s[i] - '0';
        if (!any && d == 0) {
            if (frac)
                exp10--;
            continue;
        }
        any = true;
        if (sig < 19) {
            mant = mant * 10 + (uint64_t)d;
            sig++;
            if (frac)
                exp10--;
        } else if (!frac) {
            exp10++;
        }
    }
    double v = (double)mant;
    if (exp10 < 0) {
        if (exp10 < -340)
            v = 0;
        else if (exp10 >= -22)
            v /= pow10_int(-exp10);
        else
            v = v / 1e22 / pow10_int(-exp10 - 22);
    } else if (exp10 > 0) {
        v *= pow10_int(exp10);
    }
    *out = v;
    return v <= 1.7976931348623157e308;
}

/* A value starting with a digit or '-': an integer (with an optional size suffix), a
 * float, an IP address (a string), an ISO 8601 date, or, when other characters follow
 * (like "10s" or "1h30m"), an unquoted string. */
/* The number's text in messages, cut at 40 bytes ("%.*s%s"). */
#define NUM_ARGS(p, start)                                                       \
    (int)((p)->pos - (start) > 40 ? 40 : (p)->pos - (start)), (p)->s + (start), \
        (p)->pos - (start) > 40 ? "..." : ""

static int parse_number(parser *p, conf_pos vpos, conf_value **out)
{
    char d[16];
    size_t start = p->pos;
    bool neg = peek(p) == '-';
    if (neg) {
        adv(p);
        if (peek(p) == '.')
            return perr(p, here(p), EMBER_EINVAL, "floats must start with a digit, not '.'");
        if (!is_digit(peek(p)))
            return perr(p, here(p), EMBER_EINVAL, "expected a digit after '-', found %s",
                        describe(peek(p), d));
    }
    size_t ds = p->pos;
    while (is_digit(peek(p)))
        adv(p);
    size_t ndig = p->pos - ds;
    int c = peek(p);

    if (c == '-' && !neg) { /* 2006-01-02T15:04:05Z */
        if (ndig != 4)
            goto as_string;
        static const char pat[] = "-00-00T00:00:00Z";
        for (const char *f = pat; *f; f++) {
            int r = peek(p);
            bool ok = *f == '0' ? is_digit(r) : r == *f;
            if (!ok) {
                if (f == pat + 1 || !is_term(r))
                    goto as_string; /* "2024-x" is just text */
                return perr(p, here(p), EMBER_EINVAL,
                            "invalid date: expected %s in an ISO 8601 datetime "
                            "(2006-01-02T15:04:05Z), found %s",
                            *f == '0' ? "a digit" : (char[]){'\'', *f, '\'', 0}, describe(r, d));
            }
            adv(p);
        }
        if (!is_term(peek(p)))
            goto as_string;
        *out = str_new(vpos, CONF_DATETIME, p->s + start, p->pos - start);
        return *out ? 0 : enomem(p);
    }

    if (c == '.') {
        adv(p);
        if (!is_digit(peek(p))) {
            if (!is_term(peek(p)))
                goto as_string;
            return perr(p, here(p), EMBER_EINVAL, "a float needs a digit after '.', found %s",
                        describe(peek(p), d));
        }
        while (is_digit(peek(p)))
            adv(p);
        if (peek(p) == '.') { /* an IP address, 127.0.0.1 or 127.0.0.1:4222 */
            while (is_digit(peek(p)) || peek(p) == '.' || peek(p) == ':' || peek(p) == '-')
                adv(p);
            if (!is_term(peek(p)))
                goto as_string;
            *out = str_new(vpos, CONF_STRING, p->s + start, p->pos - start);
            return *out ? 0 : enomem(p);
        }
        if (!is_term(peek(p)))
            goto as_string;
        double f;
        if (!decimal_to_double(p->s + ds, p->pos - ds, &f))
            return perr(p, vpos, EMBER_EINVAL, "float \"%.*s%s\" is out of range",
                        NUM_ARGS(p, start));
        if (!(*out = val_new(CONF_FLOAT, vpos)))
            return enomem(p);
        (*out)->u.f = neg ? -f : f;
        return 0;
    }

    int64_t mult = 1;
    if (is_suffix_start(c)) {
        size_t ss = p->pos;
        adv(p);
        while (peek(p) > 0 && strchr("bBiI", peek(p)))
            adv(p);
        if (!is_term(peek(p)))
            goto as_string;
        size_t sl = p->pos - ss;
        mult = 0;
        for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++)
            if (strlen(suffixes[i].s) == sl && strncasecmp(suffixes[i].s, p->s + ss, sl) == 0)
                mult = suffixes[i].mult;
        if (!mult)
            return perr(p, vpos, EMBER_EINVAL, "invalid size suffix \"%.*s\" in \"%.*s%s\"",
                        (int)(sl > 8 ? 8 : sl), p->s + ss, NUM_ARGS(p, start));
    } else if (!is_term(c)) {
        goto as_string;
    }

    uint64_t v = 0, lim = neg ? (1ull << 63) : (1ull << 63) - 1;
    for (size_t i = 0; i < ndig; i++) {
        unsigned dig = (unsigned)(p->s[ds + i] - '0');
        if (v > (lim - dig) / 10)
            return perr(p, vpos, EMBER_EINVAL, "integer \"%.*s%s\" is out of range",
                        NUM_ARGS(p, start));
        v = v * 10 + dig;
    }
    int64_t iv = neg ? (int64_t)(0 - v) : (int64_t)v;
    int64_t res;
    if (__builtin_mul_overflow(iv, mult, &res))
        return perr(p, vpos, EMBER_EINVAL, "integer \"%.*s%s\" is out of range",
                    NUM_ARGS(p, start));
    if (!(*out = val_new(CONF_INT, vpos)))
        return enomem(p);
    (*out)->u.i = res;
    return 0;

as_string: /* no new line was crossed: rewind on the same line */
    p->pos = start;
    return parse_unquoted(p, vpos, out);
}

/* ------------------------------------------------------------------ containers */

static int parse_array(parser *p, conf_value **out)
{
    conf_pos open = here(p);
    char d[16];
    int rc = depth_enter(p, open);
    if (rc)
        return rc;
    conf_value *a = val_new(CONF_ARRAY, open);
    if (!a) {
        p->g->depth--;
        return enomem(p);
    }
    adv(p);
    for (;;) {
        skip_blank(p);
        int c = peek(p);
        if (c < 0) {
            rc = perr(p, open, EMBER_EINVAL, "unterminated array ('[' without a matching ']')");
            break;
        }
        if (c == ']') {
            adv(p);
            break;
        }
        if (c == ',') {
            rc = perr(p, here(p), EMBER_EINVAL, "unexpected ',' in the array: expected a value");
            break;
        }
        conf_value *v = NULL;
        if ((rc = parse_value(p, (what){NULL, 0}, &v)))
            break;
        if (arr_push(a, v)) {
            val_release(v);
            rc = enomem(p);
            break;
        }
        skip_ws(p);
        if (at_comment(p))
            skip_comment(p);
        c = peek(p);
        if (c == ',' || is_nl(c)) {
            adv(p);
        } else if (c == ']') {
            adv(p);
            break;
        } else if (c < 0) {
            rc = perr(p, open, EMBER_EINVAL, "unterminated array ('[' without a matching ']')");
            break;
        } else {
            rc = perr(p, here(p), EMBER_EINVAL,
                      "expected ',', a new line or ']' after an array element, found %s",
                      describe(c, d));
            break;
        }
    }
    p->g->depth--;
    if (rc == 0 && a->height > 2 * p->g->o.max_depth)
        rc = perr(p, open, EMBER_EINVAL, "nested too deeply through variables");
    if (rc) {
        val_release(a);
        return rc;
    }
    *out = a;
    return 0;
}

static int parse_map(parser *p, conf_value **out)
{
    conf_pos open = here(p);
    int rc = depth_enter(p, open);
    if (rc)
        return rc;
    conf_value *m = val_new(CONF_MAP, open);
    if (!m) {
        p->g->depth--;
        return enomem(p);
    }
    adv(p);
    scope sc = {m, p->sc};
    p->sc = &sc;
    rc = parse_body(p, m, K_MAP, open);
    p->sc = sc.up;
    p->g->depth--;
    if (rc == 0 && m->height > 2 * p->g->o.max_depth)
        rc = perr(p, open, EMBER_EINVAL, "nested too deeply through variables");
    if (rc) {
        val_release(m);
        return rc;
    }
    *out = m;
    return 0;
}

static int parse_value(parser *p, what w, conf_value **out)
{
    char d[16];
    conf_pos vpos = here(p);
    int c = peek(p);
    if (c < 0 || is_nl(c) || c == '}' || c == ']' || c == ',' || c == ';')
        return perr(p, vpos, EMBER_EINVAL, "expected a value " WHAT_FMT ", found %s", WHAT_ARGS(w),
                    describe(c, d));
    switch (c) {
    case '[': return parse_array(p, out);
    case '{': return parse_map(p, out);
    case '"': return parse_dq(p, out);
    case '\'': return parse_sq(p, out);
    case '(': return parse_block(p, out);
    case '.': return perr(p, vpos, EMBER_EINVAL, "floats must start with a digit, not '.'");
    default:
        if (c == '-' || is_digit(c))
            return parse_number(p, vpos, out);
        return parse_unquoted(p, vpos, out);
    }
}

/* ------------------------------------------------------------------ include */

static int read_disk(const char *path, size_t max, char **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        return EISDIR;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int e = 0;
    while (buf) {
        if (n == cap) {
            if (cap > max) {
                e = EFBIG;
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                e = ENOMEM;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            e = errno;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (!buf)
        return ENOMEM;
    if (!e && n > max)
        e = EFBIG;
    if (e) {
        free(buf);
        return e;
    }
    *data = buf;
    *len = n;
    return 0;
}

static int load_file(gctx *g, const char *path, char **data, size_t *len)
{
    if (g->files_read >= g->o.max_files)
        return EMFILE;
    size_t left = g->o.max_total_size > g->total_bytes ? g->o.max_total_size - g->total_bytes : 0;
    size_t max = g->o.max_file_size < left ? g->o.max_file_size : left;
    int e;
    if (g->o.read_file) {
        e = g->o.read_file(g->o.userdata, path, data, len);
        if (e == 0 && *len > max) {
            free(*data);
            e = EFBIG;
        }
    } else {
        e = read_disk(path, max, data, len);
    }
    if (e == 0) {
        g->files_read++;
        g->total_bytes += *len;
    }
    return e;
}

static const char *file_error(int e)
{
    if (e == EFBIG)
        return "file too large (see the configuration size limits)";
    if (e == EMFILE)
        return "too many files included";
    return strerror(e);
}

/* After the `include` keyword: read the file name, parse that file on its own (its
 * variables see only itself and the environment) and merge its keys into map. */
static int parse_include(parser *p, conf_value *map, conf_pos kpos)
{
    gctx *g = p->g;
    char d[16];
    skip_ws(p);
    conf_pos ipos = here(p);
    int c = peek(p);
    size_t start, end;
    if (c < 0 || is_nl(c) || c == '[' || c == '{' || c == '(' || c == '\\' || c == '-' ||
        is_digit(c) || c == ';' || c == '}')
        return perr(p, ipos, EMBER_EINVAL, "expected a file name after include, found %s",
                    describe(c, d));
    if (c == '"' || c == '\'') {
        adv(p);
        start = p->pos;
        while (peek(p) != c) {
            if (peek(p) < 0)
                return perr(p, ipos, EMBER_EINVAL, "unterminated include file name");
            adv(p);
        }
        end = p->pos;
        adv(p);
    } else {
        start = p->pos;
        while (!(peek(p) < 0 || is_nl(peek(p)) || is_ws(peek(p)) || peek(p) == ';' ||
                 peek(p) == '}'))
            adv(p);
        end = p->pos;
    }
    size_t nlen = end - start;
    const char *name = p->s + start;
    if (nlen == 0)
        return perr(p, ipos, EMBER_EINVAL, "empty include file name");
    if (memchr(name, 0, nlen))
        return perr(p, ipos, EMBER_EINVAL, "include file name contains a NUL byte");
    if (g->o.no_include)
        return perr(p, kpos, EMBER_EINVAL, "include is not allowed here");

    /* Resolve against the including file's directory (nats-server: filepath.Join). */
    size_t dl = name[0] == '/' ? 0 : strlen(p->dir);
    char *full = malloc(dl + 1 + nlen + 1);
    if (!full)
        return enomem(p);
    size_t fl = 0;
    if (dl) {
        memcpy(full, p->dir, dl);
        full[dl] = '/';
        fl = dl + 1;
    }
    memcpy(full + fl, name, nlen);
    fl += nlen;
    full[fl] = 0;
    const char *fname = doc_add_file(g->doc, full, fl);
    free(full);
    if (!fname)
        return enomem(p);

    if (g->include_depth >= g->o.max_include_depth ||
        g->include_depth >= (int)(sizeof g->inc_stack / sizeof g->inc_stack[0]))
        return perr(p, ipos, EMBER_EINVAL, "includes nested too deeply (more than %d levels)",
                    g->o.max_include_depth);
    for (int i = 0; i < g->include_depth; i++)
        if (strcmp(g->inc_stack[i], fname) == 0)
            return perr(p, ipos, EMBER_EINVAL, "include cycle: \"%s\" includes itself", fname);
    int rc = depth_enter(p, ipos);
    if (rc)
        return rc;
    char *data = NULL;
    size_t len = 0;
    int e = load_file(g, fname, &data, &len);
    if (e) {
        g->depth--;
        return perr(p, ipos, e == ENOMEM ? EMBER_ENOMEM : EMBER_EIO,
                    "cannot read include file \"%s\": %s", fname, file_error(e));
    }
    const char *slash = strrchr(fname, '/');
    char *dir = slash ? strndup(fname, (size_t)(slash == fname ? 1 : slash - fname)) : strdup("");
    if (!dir) {
        free(data);
        g->depth--;
        return enomem(p);
    }
    g->inc_stack[g->include_depth++] = fname;
    conf_value *root = NULL;
    rc = parse_text(g, data, len, fname, dir, &root);
    g->include_depth--;
    g->depth--;
    free(data);
    free(dir);
    if (rc)
        return rc;
    for (size_t i = 0; i < root->u.map.n && rc == 0; i++) {
        const conf_entry *e2 = &root->u.map.e[i];
        char *k = malloc(e2->key_len + 1);
        if (!k) {
            rc = enomem(p);
            break;
        }
        memcpy(k, e2->key, e2->key_len + 1);
        e2->value->refs++;
        if (map_set(map, k, e2->key_len, e2->key_pos, e2->value, e2->used)) {
            free(k);
            e2->value->refs--;
            rc = enomem(p);
        }
    }
    val_release(root);
    if (rc == 0 && map->height > 2 * g->o.max_depth)
        rc = perr(p, ipos, EMBER_EINVAL, "nested too deeply through variables");
    return rc;
}

/* ------------------------------------------------------------------ entries */

static int parse_entry(parser *p, conf_value *map, int kind, const char **kout, size_t *klout)
{
    char d[16];
    conf_pos kpos = here(p);
    int c = peek(p);
    size_t start, end;
    bool quoted = false;
    if (c == '"' || c == '\'') {
        quoted = true;
        adv(p);
        start = p->pos;
        while (peek(p) != c) {
            if (peek(p) < 0)
                return perr(p, kpos, EMBER_EINVAL, "unterminated quoted key");
            adv(p);
        }
        end = p->pos;
        adv(p);
    } else {
        if (c == '=' || c == ':')
            return perr(p, kpos, EMBER_EINVAL, "unexpected key separator '%c': expected a key", c);
        if (is_key_end(c))
            return perr(p, kpos, EMBER_EINVAL, "expected a key, found %s", describe(c, d));
        start = p->pos;
        while (!is_key_end(peek(p)))
            adv(p);
        end = p->pos;
    }
    size_t klen = end - start;
    const char *k = p->s + start;
    *kout = k;
    *klout = klen;
    if (!quoted && klen == 7 && strncasecmp(k, "include", 7) == 0 && is_space(peek(p))) {
        /* `include file`; but `include = x` is a key (nats-server would include "=") */
        size_t ahead = p->pos;
        while (ahead < p->len && is_ws((unsigned char)p->s[ahead]))
            ahead++;
        if (ahead == p->len || (p->s[ahead] != '=' && p->s[ahead] != ':'))
            return parse_include(p, map, kpos);
    }

    skip_spaces(p);
    c = peek(p);
    if (c == '=' || c == ':') {
        adv(p);
        if (kind == K_MAP)
            skip_spaces(p);
        else
            skip_ws(p);
    }
    conf_value *v = NULL;
    int rc = parse_value(p, (what){k, klen}, &v);
    if (rc)
        return rc;
    char *key = malloc(klen + 1);
    if (!key) {
        val_release(v);
        return enomem(p);
    }
    memcpy(key, k, klen);
    key[klen] = 0;
    if (map_set(map, key, klen, kpos, v, false)) {
        free(key);
        val_release(v);
        return enomem(p);
    }
    return 0;
}

/* After a value (or an include): spaces, a comment, then a new line, ';' or ','; '}'
 * and the end of the file are left for the body to handle. */
static int value_end(parser *p, const char *key, size_t klen)
{
    char d[16];
    skip_ws(p);
    if (at_comment(p))
        skip_comment(p);
    int c = peek(p);
    if (c < 0 || c == '}')
        return 0;
    if (is_nl(c) || c == ';' || c == ',') {
        adv(p);
        return 0;
    }
    return perr(p, here(p), EMBER_EINVAL,
                "unexpected %s after the value of \"%.*s\": expected a new line, ';' or ','",
                describe(c, d), (int)(klen > 64 ? 64 : klen), key);
}

static int parse_body(parser *p, conf_value *map, int kind, conf_pos open)
{
    char d[16];
    for (;;) {
        skip_blank(p);
        int c = peek(p);
        if (c < 0) {
            if (kind == K_TOP)
                return 0;
            return perr(p, open, EMBER_EINVAL, "unterminated map ('{' without a matching '}')");
        }
        if (c == '}') {
            if (kind != K_TOP) {
                adv(p);
                return 0;
            }
            return perr(p, here(p), EMBER_EINVAL, "unexpected %s", describe(c, d));
        }
        if (c == '{' && kind != K_MAP) { /* `{ ... }` around top-level keys, as JSON */
            conf_pos bpos = here(p);
            int rc = depth_enter(p, bpos);
            if (rc)
                return rc;
            adv(p);
            rc = parse_body(p, map, K_BLOCK, bpos);
            p->g->depth--;
            if (rc)
                return rc;
            continue;
        }
        const char *key = NULL;
        size_t klen = 0;
        int rc = parse_entry(p, map, kind, &key, &klen);
        if (rc == 0)
            rc = value_end(p, key, klen);
        if (rc)
            return rc;
    }
}

/* Parse a whole text as a top-level body into a new map. */
static int parse_text(gctx *g, const char *data, size_t len, const char *file, const char *dir,
                      conf_value **out)
{
    parser p = {.g = g, .s = data, .len = len, .line = 1, .file = file, .dir = dir};
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) { /* UTF-8 byte order mark */
        p.pos = 3;
        p.lstart = 3;
    }
    conf_pos start = {file, 1, 1};
    conf_value *root = val_new(CONF_MAP, start);
    if (!root)
        return enomem(&p);
    scope sc = {root, NULL};
    p.sc = &sc;
    int rc = parse_body(&p, root, K_TOP, start);
    if (rc) {
        val_release(root);
        return rc;
    }
    *out = root;
    return 0;
}

/* ------------------------------------------------------------------ public */

void conf_opts_init(conf_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_depth = 64;
    o->max_include_depth = 10;
    o->max_files = 256;
    o->max_file_size = 16u << 20;
    o->max_total_size = 64u << 20;
}

static int parse_common(conf_doc **out, const char *data, size_t len, bool from_file,
                        const char *name, const conf_opts *opts, conf_error *err)
{
    conf_error dummy;
    if (!err)
        err = &dummy;
    memset(err, 0, sizeof *err);
    *out = NULL;
    gctx g = {.err = err};
    if (opts)
        g.o = *opts;
    else
        conf_opts_init(&g.o);
    conf_opts def;
    conf_opts_init(&def);
    if (g.o.max_depth <= 0)
        g.o.max_depth = def.max_depth;
    if (g.o.max_include_depth <= 0)
        g.o.max_include_depth = def.max_include_depth;
    if (g.o.max_files <= 0)
        g.o.max_files = def.max_files;
    if (g.o.max_file_size == 0)
        g.o.max_file_size = def.max_file_size;
    if (g.o.max_total_size == 0)
        g.o.max_total_size = def.max_total_size;
    conf_doc *d = calloc(1, sizeof *d);
    if (!d) {
        err->code = EMBER_ENOMEM;
        snprintf(err->msg, sizeof err->msg, "out of memory");
        err_format(err);
        return err->code;
    }
    g.doc = d;
    const char *label = name ? name : "<string>";
    const char *file = doc_add_file(d, label, strlen(label));
    const char *slash = name ? strrchr(name, '/') : NULL;
    char *dir = slash ? strndup(name, (size_t)(slash == name ? 1 : slash - name)) : strdup("");
    int rc = 0;
    char *buf = NULL;
    if (!file || !dir) {
        err->code = rc = EMBER_ENOMEM;
        snprintf(err->msg, sizeof err->msg, "out of memory");
        err_format(err);
        goto done;
    }
    if (from_file) {
        int e = load_file(&g, name, &buf, &len);
        if (e) {
            err->code = rc = e == ENOMEM ? EMBER_ENOMEM : EMBER_EIO;
            snprintf(err->msg, sizeof err->msg, "cannot read configuration file \"%s\": %s", name,
                     file_error(e));
            err_format(err);
            goto done;
        }
        data = buf;
        g.inc_stack[0] = file;
        g.include_depth = 1; /* the top file counts as the first level */
    }
    rc = parse_text(&g, data, len, file, dir, &d->root);
done:
    free(buf);
    free(dir);
    if (rc) {
        conf_doc_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

int conf_parse_file(conf_doc **out, const char *path, const conf_opts *opts, conf_error *err)
{
    return parse_common(out, NULL, 0, true, path, opts, err);
}

int conf_parse_string(conf_doc **out, const char *data, size_t len, const char *name,
                      const conf_opts *opts, conf_error *err)
{
    return parse_common(out, data ? data : "", data ? len : 0, false, name, opts, err);
}

void conf_doc_free(conf_doc *d)
{
    if (!d)
        return;
    val_release(d->root);
    for (size_t i = 0; i < d->nfiles; i++)
        free(d->files[i]);
    free(d->files);
    free(d);
}

const conf_value *conf_doc_root(const conf_doc *d) { return d ? d->root : NULL; }

const conf_entry *conf_map_get(const conf_value *map, const char *key)
{
    if (!map || map->type != CONF_MAP || !key)
        return NULL;
    return map_find(map, key, strlen(key));
}

const char *conf_type_name(conf_type t)
{
    switch (t) {
    case CONF_STRING: return "string";
    case CONF_INT: return "integer";
    case CONF_FLOAT: return "float";
    case CONF_BOOL: return "boolean";
    case CONF_DATETIME: return "datetime";
    case CONF_MAP: return "map";
    case CONF_ARRAY: return "array";
    }
    return "?";
}

/* ------------------------------------------------------------------ durations */

int conf_parse_duration(const char *orig, int64_t *ns, char *err, size_t errlen)
{
    static const struct {
        const char *u;
        uint64_t ns;
    } units[] = {
        {"ns", 1},
        {"us", 1000},
        {"\xC2\xB5s", 1000}, /* U+00B5 micro sign */
        {"\xCE\xBCs", 1000}, /* U+03BC Greek mu */
        {"ms", 1000000},
        {"s", 1000000000ull},
        {"m", 60ull * 1000000000ull},
        {"h", 3600ull * 1000000000ull},
    };
    const uint64_t top = 1ull << 63;
    const char *s = orig;
    bool neg = false;
    uint64_t d = 0;
    if (*s == '-' || *s == '+') {
        neg = *s == '-';
        s++;
    }
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    if (*s == 0)
        goto invalid;
    while (*s) {
        uint64_t v = 0, f = 0;
        double scale = 1;
        if (!(*s == '.' || is_digit((unsigned char)*s)))
            goto invalid;
        const char *b = s;
        while (is_digit((unsigned char)*s)) {
            if (v > top / 10)
                goto invalid;
            v = v * 10 + (uint64_t)(*s - '0');
            if (v > top)
                goto invalid;
            s++;
        }
        bool pre = s != b, post = false;
        if (*s == '.') {
            s++;
            b = s;
            bool overflow = false;
            while (is_digit((unsigned char)*s)) {
                if (!overflow) {
                    if (f > (top - 1) / 10) {
                        overflow = true;
                    } else {
                        uint64_t y = f * 10 + (uint64_t)(*s - '0');
                        if (y > top)
                            overflow = true;
                        else {
                            f = y;
                            scale *= 10;
                        }
                    }
                }
                s++;
            }
            post = s != b;
        }
        if (!pre && !post)
            goto invalid;
        b = s;
        while (*s && *s != '.' && !is_digit((unsigned char)*s))
            s++;
        size_t ul = (size_t)(s - b);
        if (ul == 0) {
            snprintf(err, errlen, "time: missing unit in duration \"%s\"", orig);
            return -1;
        }
        uint64_t unit = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (strlen(units[i].u) == ul && memcmp(units[i].u, b, ul) == 0)
                unit = units[i].ns;
        if (!unit) {
            snprintf(err, errlen, "time: unknown unit \"%.*s\" in duration \"%s\"", (int)ul, b, orig);
            return -1;
        }
        if (v > top / unit)
            goto invalid;
        v *= unit;
        if (f > 0) {
            v += (uint64_t)((double)f * ((double)unit / scale));
            if (v > top)
                goto invalid;
        }
        d += v;
        if (d > top)
            goto invalid;
    }
    if (neg) {
        *ns = (int64_t)(0 - d);
        return 0;
    }
    if (d > top - 1)
        goto invalid;
    *ns = (int64_t)d;
    return 0;
invalid:
    snprintf(err, errlen, "time: invalid duration \"%s\"", orig);
    return -1;
}
