/* fuzz_conf: libFuzzer target for the configuration parser (core/src/conf.c) and its
 * mapping onto ember_server_options (core/src/options.c).
 *
 * Input: one or more files separated by the line "\n===\n". The first is parsed as
 * "/f/0.conf"; `include N.conf` reads file N from the input (anything else: ENOENT).
 * Environment variables come from a fixed table (numbers, chains, a cycle, a map, a
 * broken value). Limits are small (depth 16, 4 include levels, 8 files) to reach them.
 *
 * Checks, besides ASan/UBSan and leaks:
 *   - every value in the tree is well formed (types, NUL-terminated strings, positions,
 *     each map key found again by conf_map_get);
 *   - round trip: the tree printed back as configuration text (quoted keys and strings
 *     with escapes) parses to an equal tree (floats within 1e-9 relative);
 *   - the first file, unless it mentions include, is also loaded with ember_config_load
 *     (through a memfd) and, when that succeeds, freed again; on failure the options
 *     must be unchanged.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Icore/src -Icore/include \
 *         core/src/conf.c core/src/options.c core/src/util.c tests/fuzz/fuzz_conf.c \
 *         -o fuzz_conf
 *   ./fuzz_conf -runs=1000000 -dict=tests/fuzz/fuzz_conf.dict tests/fuzz/corpus/conf
 */
#define _GNU_SOURCE
#include "conf.h"
#include "ember.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_FILES 8
#define SEP "\n===\n"

typedef struct files {
    const char *data[MAX_FILES];
    size_t len[MAX_FILES];
    int n;
} files;

static int read_cb(void *ud, const char *path, char **data, size_t *len)
{
    files *f = ud;
    if (strncmp(path, "/f/", 3) != 0)
        return ENOENT;
    char *end;
    long i = strtol(path + 3, &end, 10);
    if (end == path + 3 || strcmp(end, ".conf") != 0 || i < 0 || i >= f->n)
        return ENOENT;
    *data = malloc(f->len[i] + 1);
    if (!*data)
        return ENOMEM;
    memcpy(*data, f->data[i], f->len[i]);
    *len = f->len[i];
    return 0;
}

static const char *env_cb(void *ud, const char *name)
{
    static const char *const tab[][2] = {
        {"A", "1k"},  {"B", "$A"},     {"C", "{x: $B, y: [1, 2]}"}, {"L1", "$L2"},
        {"L2", "$L1"}, {"S", "hello world"}, {"E", ""},            {"BAD", "[1,"},
        {"Q", "\"q\\x41\""}, {"D", "2024-01-01T00:00:00Z"},
    };
    (void)ud;
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strcmp(tab[i][0], name) == 0)
            return tab[i][1];
    return NULL;
}

/* ------------------------------------------------------------------ checks */

static long budget;

static void check_value(const conf_value *v, int depth)
{
    if (--budget < 0)
        return;
    if (!v || depth > 200 || v->refs < 1 || !v->pos.file || v->pos.line < 1 || v->pos.col < 1)
        abort();
    switch (v->type) {
    case CONF_STRING:
    case CONF_DATETIME:
        if (!v->u.str.s || v->u.str.s[v->u.str.len] != 0)
            abort();
        break;
    case CONF_INT:
    case CONF_BOOL:
        break;
    case CONF_FLOAT:
        if (!isfinite(v->u.f))
            abort();
        break;
    case CONF_MAP:
        for (size_t i = 0; i < v->u.map.n; i++) {
            const conf_entry *e = &v->u.map.e[i];
            if (!e->key || e->key[e->key_len] != 0 || !e->key_pos.file || e->key_pos.line < 1)
                abort();
            if (strlen(e->key) == e->key_len && conf_map_get(v, e->key) != e)
                abort();
            check_value(e->value, depth + 1);
        }
        break;
    case CONF_ARRAY:
        for (size_t i = 0; i < v->u.arr.n; i++)
            check_value(v->u.arr.v[i], depth + 1);
        break;
    default:
        abort();
    }
}

/* ------------------------------------------------------------------ printing */

typedef struct out {
    char *p;
    size_t n, cap;
    bool fail; /* too big or not printable: no round trip */
} out;

static void put(out *o, const char *s, size_t n)
{
    if (o->fail)
        return;
    if (o->n + n > (1u << 20)) {
        o->fail = true;
        return;
    }
    if (o->n + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 256;
        while (cap < o->n + n + 1)
            cap *= 2;
        o->p = realloc(o->p, cap);
        if (!o->p)
            abort();
        o->cap = cap;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
    o->p[o->n] = 0;
}
static void puts_(out *o, const char *s) { put(o, s, strlen(s)); }

static void put_string(out *o, const char *s, size_t n)
{
    puts_(o, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char b[8];
        if (c == '"')
            puts_(o, "\\\"");
        else if (c == '\\')
            puts_(o, "\\\\");
        else if (c < 0x20 || c >= 0x7f) {
            snprintf(b, sizeof b, "\\x%02x", c);
            puts_(o, b);
        } else
            put(o, (const char *)&c, 1);
    }
    puts_(o, "\"");
}

static void put_value(out *o, const conf_value *v);

static void put_key(out *o, const conf_entry *e)
{
    /* quoted keys are taken literally: pick a quote the key does not contain */
    const char *q = !memchr(e->key, '"', e->key_len) ? "\"" : !memchr(e->key, '\'', e->key_len) ? "'" : NULL;
    if (!q) {
        o->fail = true;
        return;
    }
    puts_(o, q);
    put(o, e->key, e->key_len);
    puts_(o, q);
    puts_(o, " = ");
}

static void put_value(out *o, const conf_value *v)
{
    char b[64];
    if (o->fail)
        return;
    switch (v->type) {
    case CONF_STRING: put_string(o, v->u.str.s, v->u.str.len); break;
    case CONF_DATETIME: put(o, v->u.str.s, v->u.str.len); break;
    case CONF_INT:
        snprintf(b, sizeof b, "%lld", (long long)v->u.i);
        puts_(o, b);
        break;
    case CONF_FLOAT:
        snprintf(b, sizeof b, "%.17f", v->u.f);
        if (strchr(b, 'e') || strchr(b, 'n') || strlen(b) > 40) {
            o->fail = true;
            return;
        }
        puts_(o, b);
        break;
    case CONF_BOOL: puts_(o, v->u.b ? "true" : "false"); break;
    case CONF_MAP:
        puts_(o, "{\n");
        for (size_t i = 0; i < v->u.map.n; i++) {
            put_key(o, &v->u.map.e[i]);
            put_value(o, v->u.map.e[i].value);
            puts_(o, "\n");
        }
        puts_(o, "}");
        break;
    case CONF_ARRAY:
        puts_(o, "[");
        for (size_t i = 0; i < v->u.arr.n; i++) {
            put_value(o, v->u.arr.v[i]);
            puts_(o, ",\n");
        }
        puts_(o, "]");
        break;
    }
}

static bool same(const conf_value *a, const conf_value *b)
{
    if (--budget < 0)
        return true;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case CONF_STRING:
    case CONF_DATETIME:
        return a->u.str.len == b->u.str.len && memcmp(a->u.str.s, b->u.str.s, a->u.str.len) == 0;
    case CONF_INT: return a->u.i == b->u.i;
    case CONF_BOOL: return a->u.b == b->u.b;
    case CONF_FLOAT: return fabs(a->u.f - b->u.f) <= 1e-9 * fmax(1.0, fabs(a->u.f));
    case CONF_MAP:
        if (a->u.map.n != b->u.map.n)
            return false;
        for (size_t i = 0; i < a->u.map.n; i++) {
            const conf_entry *x = &a->u.map.e[i], *y = &b->u.map.e[i];
            if (x->key_len != y->key_len || memcmp(x->key, y->key, x->key_len) != 0 ||
                !same(x->value, y->value))
                return false;
        }
        return true;
    case CONF_ARRAY:
        if (a->u.arr.n != b->u.arr.n)
            return false;
        for (size_t i = 0; i < a->u.arr.n; i++)
            if (!same(a->u.arr.v[i], b->u.arr.v[i]))
                return false;
        return true;
    }
    return false;
}

/* ------------------------------------------------------------------ options */

static void nolog(void *ud, int level, const char *line)
{
    (void)ud;
    if (level < EMBER_LOG_FATAL || level > EMBER_LOG_TRACE || !line || !*line)
        abort();
}

static void load_options(const uint8_t *data, size_t len)
{
    /* ember_config_load reads the disk: an include there could name any file, even
     * /proc/self/fd/0 (stdin, which blocks), so inputs with includes stay in the
     * in-memory parse above. */
    static const char kw[] = "include";
    for (size_t i = 0; i + 7 <= len; i++)
        if (strncasecmp((const char *)data + i, kw, 7) == 0)
            return;
    static int fd = -1;
    if (fd < 0)
        fd = memfd_create("fuzz_conf", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, 0) != 0 || pwrite(fd, data, len, 0) != (ssize_t)len)
        return;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ember_server_options o;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.log_fn = nolog;
    o.log_level = EMBER_LOG_TRACE;
    ember_server_options before = o;
    ember_config *cfg = NULL;
    int rc = ember_config_load(&cfg, path, &o);
    if (rc == 0) {
        if (!cfg)
            abort();
        /* every string stored is readable */
        const char *strs[] = {o.server_name, o.host, o.username, o.password, o.auth_token,
                              o.store_dir, o.jetstream_domain};
        for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
            if (strs[i])
                (void)strlen(strs[i]);
        ember_config_free(cfg);
    } else {
        if (cfg || memcmp(&o, &before, sizeof o) != 0 || !*ember_last_error())
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    files f = {.n = 0};
    const char *p = (const char *)data, *end = p + size;
    while (f.n < MAX_FILES) {
        const char *s = memmem(p, (size_t)(end - p), SEP, sizeof SEP - 1);
        f.data[f.n] = p;
        f.len[f.n] = s ? (size_t)(s - p) : (size_t)(end - p);
        f.n++;
        if (!s)
            break;
        p = s + sizeof SEP - 1;
    }

    conf_opts o;
    conf_opts_init(&o);
    o.read_file = read_cb;
    o.get_env = env_cb;
    o.userdata = &f;
    o.max_depth = 16;
    o.max_include_depth = 4;
    o.max_files = 8;
    o.max_total_size = 1 << 16;

    conf_doc *d = NULL;
    conf_error err;
    int rc = conf_parse_file(&d, "/f/0.conf", &o, &err);
    if (rc) {
        if (d || !err.code || err.code != rc || !err.text[0])
            abort();
        if (rc != EMBER_EINVAL && rc != EMBER_EIO && rc != EMBER_ENOMEM)
            abort();
    } else {
        const conf_value *root = conf_doc_root(d);
        if (!root || root->type != CONF_MAP)
            abort();
        budget = 100000;
        check_value(root, 0);

        /* round trip through the printed form */
        out t = {0};
        for (size_t i = 0; i < root->u.map.n && !t.fail; i++) {
            put_key(&t, &root->u.map.e[i]);
            put_value(&t, root->u.map.e[i].value);
            puts_(&t, "\n");
        }
        if (!t.fail) {
            conf_opts o2;
            conf_opts_init(&o2);
            o2.no_include = true;
            o2.max_depth = 1000; /* printing flattened shared values */
            conf_doc *d2 = NULL;
            rc = conf_parse_string(&d2, t.p ? t.p : "", t.n, "printed", &o2, &err);
            if (rc) {
                fprintf(stderr, "round trip failed: %s\n%s\n", err.text, t.p);
                abort();
            }
            budget = 100000;
            if (!same(root, conf_doc_root(d2))) {
                fprintf(stderr, "round trip differs:\n%s\n", t.p);
                abort();
            }
            conf_doc_free(d2);
        }
        free(t.p);
        conf_doc_free(d);
    }

    load_options((const uint8_t *)f.data[0], f.len[0]);
    return 0;
}
