/* Tests for core/src/conf.c (the nats-server configuration format parser) and
 * ember_config_load (core/src/options.c): every syntax form, includes, variables from
 * the file and the environment, size units, durations, errors with their exact
 * file:line:col, the mapping onto ember_server_options with its warnings, and a server
 * started from a loaded file. Files are written into a mkdtemp directory. */
#define _GNU_SOURCE
#include "conf.h"
#include "ember.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int g_passed, g_failed;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            g_passed++;                                                              \
        } else {                                                                     \
            g_failed++;                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

#define CHECK_STR(a, b)                                                                     \
    do {                                                                                    \
        const char *a_ = (a), *b_ = (b);                                                    \
        if (a_ && b_ && strcmp(a_, b_) == 0) {                                              \
            g_passed++;                                                                     \
        } else {                                                                            \
            g_failed++;                                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s\n   got: %s\n  want: %s\n",     \
                    __FILE__, __LINE__, #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
        }                                                                                   \
    } while (0)

static char g_dir[256];

static const char *path_of(const char *name)
{
    static char buf[8][512];
    static int i;
    char *p = buf[i++ % 8];
    snprintf(p, 512, "%s/%s", g_dir, name);
    return p;
}

static const char *write_file(const char *name, const char *text)
{
    const char *p = path_of(name);
    char dir[512];
    snprintf(dir, sizeof dir, "%s", p);
    char *slash = strrchr(dir, '/');
    if (slash && slash > dir + strlen(g_dir)) {
        *slash = 0;
        mkdir(dir, 0700);
    }
    FILE *f = fopen(p, "wb");
    if (!f) {
        perror(p);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
    return p;
}

/* ------------------------------------------------------------------ tree helpers */

static conf_error g_err;

static conf_doc *parse(const char *text)
{
    conf_doc *d = NULL;
    int rc = conf_parse_string(&d, text, strlen(text), "t.conf", NULL, &g_err);
    if (rc) {
        fprintf(stderr, "  parse failed: %s\n  input: %s\n", g_err.text, text);
        return NULL;
    }
    return d;
}

/* The error text for a text that must fail. */
static const char *parse_err(const char *text)
{
    conf_doc *d = NULL;
    int rc = conf_parse_string(&d, text, strlen(text), "t.conf", NULL, &g_err);
    if (rc == 0) {
        conf_doc_free(d);
        return "(parsed without error)";
    }
    return g_err.text;
}

/* Dotted path through maps; a number picks an array element. */
static const conf_value *get(const conf_doc *d, const char *path)
{
    if (!d)
        return NULL;
    const conf_value *v = conf_doc_root(d);
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *t = strtok_r(buf, ".", &save); t && v; t = strtok_r(NULL, ".", &save)) {
        if (v->type == CONF_ARRAY) {
            size_t i = (size_t)atoi(t);
            v = i < v->u.arr.n ? v->u.arr.v[i] : NULL;
        } else {
            const conf_entry *e = conf_map_get(v, t);
            v = e ? e->value : NULL;
        }
    }
    return v;
}

static bool is_int(const conf_doc *d, const char *path, int64_t want)
{
    const conf_value *v = get(d, path);
    if (!v || v->type != CONF_INT || v->u.i != want) {
        fprintf(stderr, "  %s: want int %lld, got %s %lld\n", path, (long long)want,
                v ? conf_type_name(v->type) : "nothing", v && v->type == CONF_INT ? (long long)v->u.i : 0);
        return false;
    }
    return true;
}

static bool is_str(const conf_doc *d, const char *path, const char *want)
{
    const conf_value *v = get(d, path);
    if (!v || v->type != CONF_STRING || strcmp(v->u.str.s, want) != 0) {
        fprintf(stderr, "  %s: want string \"%s\", got %s \"%s\"\n", path, want,
                v ? conf_type_name(v->type) : "nothing",
                v && v->type == CONF_STRING ? v->u.str.s : "");
        return false;
    }
    return true;
}

static bool is_bool(const conf_doc *d, const char *path, bool want)
{
    const conf_value *v = get(d, path);
    return v && v->type == CONF_BOOL && v->u.b == want;
}

static bool is_float(const conf_doc *d, const char *path, double want)
{
    const conf_value *v = get(d, path);
    return v && v->type == CONF_FLOAT && v->u.f == want;
}

static size_t count(const conf_doc *d, const char *path)
{
    const conf_value *v = path ? get(d, path) : conf_doc_root(d);
    if (!v)
        return (size_t)-1;
    return v->type == CONF_MAP ? v->u.map.n : v->type == CONF_ARRAY ? v->u.arr.n : (size_t)-1;
}

/* ------------------------------------------------------------------ syntax */

static void test_separators(void)
{
    conf_doc *d = parse("a = 1\nb: 2\nc 3\nd=4;e=5, f:6\n  g\t=\t7  \n"
                        "h:\t8;\n"
                        "i\n9\n"); /* no separator: the value may follow on the next line */
    CHECK(d);
    CHECK(is_int(d, "a", 1) && is_int(d, "b", 2) && is_int(d, "c", 3));
    CHECK(is_int(d, "d", 4) && is_int(d, "e", 5) && is_int(d, "f", 6));
    CHECK(is_int(d, "g", 7) && is_int(d, "h", 8) && is_int(d, "i", 9));
    CHECK(count(d, NULL) == 9);
    conf_doc_free(d);

    /* quoted keys, duplicate keys (the last wins, in place) */
    d = parse("\"my key\": 1\n'x y' = 2\n\"a.b\" 3\nk: 1\nk: 2\n");
    CHECK(d);
    CHECK(is_int(d, "my key", 1) && is_int(d, "x y", 2));
    CHECK(conf_map_get(conf_doc_root(d), "a.b") && conf_map_get(conf_doc_root(d), "a.b")->value->u.i == 3);
    CHECK(is_int(d, "k", 2));
    CHECK(count(d, NULL) == 4);
    CHECK(conf_doc_root(d)->u.map.e[3].key_pos.line == 5); /* the position of the last */
    conf_doc_free(d);

    /* empty documents */
    d = parse("");
    CHECK(d && count(d, NULL) == 0);
    conf_doc_free(d);
    d = parse("# only a comment\n\n// another\n   \n");
    CHECK(d && count(d, NULL) == 0);
    conf_doc_free(d);
}

static void test_strings(void)
{
    conf_doc *d = parse("dq = \"tab\\tnl\\ncr\\rq\\\"bs\\\\hex\\x41\\x7a\"\n"
                        "sq = 'raw \\n $x \"q\"'\n"
                        "uq = foo.bar-baz/qux*>\n"
                        "url = nats://user:pw@host:4222\n"
                        "hash = a#b\n"
                        "esc = a\\tb\n"
                        "empty = \"\"\n"
                        "multi = \"line1\nline2\"\n"
                        "nul = \"a\\x00b\"\n");
    CHECK(d);
    CHECK(is_str(d, "dq", "tab\tnl\ncr\rq\"bs\\hexAz"));
    CHECK(is_str(d, "sq", "raw \\n $x \"q\""));
    CHECK(is_str(d, "uq", "foo.bar-baz/qux*>"));
    CHECK(is_str(d, "url", "nats://user:pw@host:4222"));
    CHECK(is_str(d, "hash", "a#b"));
    CHECK(is_str(d, "esc", "a\tb"));
    CHECK(is_str(d, "empty", ""));
    CHECK(is_str(d, "multi", "line1\nline2"));
    const conf_value *v = get(d, "nul");
    CHECK(v && v->type == CONF_STRING && v->u.str.len == 3 && memcmp(v->u.str.s, "a\0b", 3) == 0);
    conf_doc_free(d);

    /* ( ... ) blocks: raw text up to a ')' alone on a line */
    d = parse("cert (\n-----BEGIN-----\nab(c)d\n  )\n-----END-----\n)\nnext = 1\n");
    CHECK(d);
    CHECK(is_str(d, "cert", "\n-----BEGIN-----\nab(c)d\n  )\n-----END-----"));
    CHECK(is_int(d, "next", 1));
    conf_doc_free(d);

    /* a value that starts like a number but is text */
    d = parse("a = 10s\nb = 1h30m\nc = 4222abc\nd = 1.5s\ne = 0x1f\nf = 127.0.0.1\n"
              "g = 127.0.0.1:4222\nh = 1m30s\ni = 12-3\n");
    CHECK(d);
    CHECK(is_str(d, "a", "10s") && is_str(d, "b", "1h30m") && is_str(d, "c", "4222abc"));
    CHECK(is_str(d, "d", "1.5s") && is_str(d, "e", "0x1f") && is_str(d, "f", "127.0.0.1"));
    CHECK(is_str(d, "g", "127.0.0.1:4222") && is_str(d, "h", "1m30s") && is_str(d, "i", "12-3"));
    conf_doc_free(d);
}

static void test_scalars(void)
{
    conf_doc *d = parse("t1 = true\nt2 = YES\nt3 = On\nf1 = false\nf2 = no\nf3 = OFF\n"
                        "i1 = 0\ni2 = -42\ni3 = 9223372036854775807\ni4 = -9223372036854775808\n"
                        "x1 = 0.5\nx2 = -1.25\nx3 = 100.0\nx4 = 3.14159\n"
                        "dt = 2024-03-01T12:30:45Z\n");
    CHECK(d);
    CHECK(is_bool(d, "t1", true) && is_bool(d, "t2", true) && is_bool(d, "t3", true));
    CHECK(is_bool(d, "f1", false) && is_bool(d, "f2", false) && is_bool(d, "f3", false));
    CHECK(is_int(d, "i1", 0) && is_int(d, "i2", -42));
    CHECK(is_int(d, "i3", INT64_MAX) && is_int(d, "i4", INT64_MIN));
    CHECK(is_float(d, "x1", 0.5) && is_float(d, "x2", -1.25) && is_float(d, "x3", 100.0));
    CHECK(is_float(d, "x4", 3.14159));
    const conf_value *v = get(d, "dt");
    CHECK(v && v->type == CONF_DATETIME && strcmp(v->u.str.s, "2024-03-01T12:30:45Z") == 0);
    conf_doc_free(d);

    /* quoted booleans are strings */
    d = parse("a = \"true\"\nb = 'no'\n");
    CHECK(is_str(d, "a", "true") && is_str(d, "b", "no"));
    conf_doc_free(d);
}

static void test_sizes(void)
{
    conf_doc *d = parse("a = 1k\nb = 1kb\nc = 1K\nd = 1KB\ne = 1ki\nf = 1kib\ng = 2m\nh = 2mb\n"
                        "i = 2MiB\nj = 3g\nk = 3gb\nl = 1t\nm = 1tb\nn = 1p\no = 1pb\np = 2e\n"
                        "q = 1eb\nr = -2k\ns = 64MB\n");
    CHECK(d);
    CHECK(is_int(d, "a", 1000) && is_int(d, "b", 1024) && is_int(d, "c", 1000));
    CHECK(is_int(d, "d", 1024) && is_int(d, "e", 1024) && is_int(d, "f", 1024));
    CHECK(is_int(d, "g", 2000000) && is_int(d, "h", 2 * 1048576) && is_int(d, "i", 2 * 1048576));
    CHECK(is_int(d, "j", 3000000000ll) && is_int(d, "k", 3ll << 30));
    CHECK(is_int(d, "l", 1000000000000ll) && is_int(d, "m", 1ll << 40));
    CHECK(is_int(d, "n", 1000000000000000ll) && is_int(d, "o", 1ll << 50));
    CHECK(is_int(d, "p", 2000000000000000000ll) && is_int(d, "q", 1ll << 60));
    CHECK(is_int(d, "r", -2000) && is_int(d, "s", 64ll << 20));
    conf_doc_free(d);
    /* a size in an array and before '}' */
    d = parse("a = [1k, 2kb]\nb { c: 1mb }\n");
    CHECK(is_int(d, "a.0", 1000) && is_int(d, "a.1", 2048) && is_int(d, "b.c", 1 << 20));
    conf_doc_free(d);
}

static void test_durations(void)
{
    int64_t ns;
    char err[128];
    CHECK(conf_parse_duration("2m", &ns, err, sizeof err) == 0 && ns == 120000000000ll);
    CHECK(conf_parse_duration("10s", &ns, err, sizeof err) == 0 && ns == 10000000000ll);
    CHECK(conf_parse_duration("300ms", &ns, err, sizeof err) == 0 && ns == 300000000ll);
    CHECK(conf_parse_duration("1.5h", &ns, err, sizeof err) == 0 && ns == 5400000000000ll);
    CHECK(conf_parse_duration("1h30m", &ns, err, sizeof err) == 0 && ns == 5400000000000ll);
    CHECK(conf_parse_duration("2h45m10.5s", &ns, err, sizeof err) == 0 && ns == 9910500000000ll);
    CHECK(conf_parse_duration("-1s", &ns, err, sizeof err) == 0 && ns == -1000000000ll);
    CHECK(conf_parse_duration("+5us", &ns, err, sizeof err) == 0 && ns == 5000);
    CHECK(conf_parse_duration("5\xC2\xB5s", &ns, err, sizeof err) == 0 && ns == 5000);
    CHECK(conf_parse_duration("7ns", &ns, err, sizeof err) == 0 && ns == 7);
    CHECK(conf_parse_duration("0", &ns, err, sizeof err) == 0 && ns == 0);
    CHECK(conf_parse_duration(".5s", &ns, err, sizeof err) == 0 && ns == 500000000);
    CHECK(conf_parse_duration("10", &ns, err, sizeof err) == -1);
    CHECK_STR(err, "time: missing unit in duration \"10\"");
    CHECK(conf_parse_duration("1d", &ns, err, sizeof err) == -1);
    CHECK_STR(err, "time: unknown unit \"d\" in duration \"1d\"");
    CHECK(conf_parse_duration("", &ns, err, sizeof err) == -1);
    CHECK_STR(err, "time: invalid duration \"\"");
    CHECK(conf_parse_duration("abc", &ns, err, sizeof err) == -1);
    CHECK_STR(err, "time: invalid duration \"abc\"");
    CHECK(conf_parse_duration("99999999999h", &ns, err, sizeof err) == -1);
    CHECK(conf_parse_duration(".s", &ns, err, sizeof err) == -1);
}

static void test_blocks_arrays(void)
{
    conf_doc *d = parse("a { b { c: 1 }, d = [1, 2] }\n"
                        "e\n{\n  x: 1\n  y = \"two\"; z three\n}\n"
                        "f: {}\n"
                        "g = { h: 1, i: 2, }\n"
                        "map_nl {\n  k:\n    5\n}\n");
    CHECK(d);
    CHECK(is_int(d, "a.b.c", 1) && is_int(d, "a.d.0", 1) && is_int(d, "a.d.1", 2));
    CHECK(is_int(d, "e.x", 1) && is_str(d, "e.y", "two") && is_str(d, "e.z", "three"));
    CHECK(count(d, "f") == 0 && count(d, "g") == 2);
    CHECK(is_int(d, "map_nl.k", 5));
    conf_doc_free(d);

    d = parse("a = [1, 2, 3]\n"
              "b = [\n  one   # a comment\n  'two', \"three\" // another\n  4k\n\n]\n"
              "c = [1,2,]\n"
              "d = []\n"
              "e = [[1, 2], [3, [4]]]\n"
              "f = [ {user: a, pass: b}, {user: c, pass: d} ]\n"
              "g = [/tmp/a, /tmp/b]\n"
              "h = [true, 1.5, x, $a]\n");
    CHECK(d);
    CHECK(count(d, "a") == 3 && is_int(d, "a.2", 3));
    CHECK(count(d, "b") == 4 && is_str(d, "b.0", "one") && is_str(d, "b.1", "two"));
    CHECK(is_str(d, "b.2", "three") && is_int(d, "b.3", 4000));
    CHECK(count(d, "c") == 2 && count(d, "d") == 0);
    CHECK(is_int(d, "e.1.1.0", 4) && count(d, "e.0") == 2);
    CHECK(is_str(d, "f.1.user", "c") && is_str(d, "f.0.pass", "b"));
    CHECK(is_str(d, "g.0", "/tmp/a") && is_str(d, "g.1", "/tmp/b"));
    CHECK(is_bool(d, "h.0", true) && is_float(d, "h.1", 1.5) && is_str(d, "h.2", "x"));
    CHECK(count(d, "h.3") == 3); /* $a: the array above */
    conf_doc_free(d);

    /* JSON-shaped files: braces around the top level */
    d = parse("{\n  \"port\": 4222,\n  \"debug\": true,\n  \"auth\": {\"user\": \"a\", \"n\": [1, 2]}\n}\n");
    CHECK(d);
    CHECK(is_int(d, "port", 4222) && is_bool(d, "debug", true) && is_str(d, "auth.user", "a"));
    CHECK(is_int(d, "auth.n.1", 2));
    conf_doc_free(d);

    /* many keys (the hashed index) */
    char big[20000];
    size_t n = 0;
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "k%d = %d\n", i, i);
    snprintf(big + n, sizeof big - n, "k500 = -1\n");
    d = parse(big);
    CHECK(d && count(d, NULL) == 1000 && is_int(d, "k999", 999) && is_int(d, "k500", -1));
    CHECK(d && is_int(d, "k0", 0));
    conf_doc_free(d);
}

static void test_comments_and_ends(void)
{
    conf_doc *d = parse("# c1\n// c2\na = 1 # trailing\nb = 2 // trailing\nc { # in map\n"
                        "  d = 3 // x\n  // whole line\n}\ne = \"# not a comment\"\n"
                        "f = 'x' ;g = 2\r\nh = 3\r\n");
    CHECK(d);
    CHECK(is_int(d, "a", 1) && is_int(d, "b", 2) && is_int(d, "c.d", 3));
    CHECK(is_str(d, "e", "# not a comment") && is_str(d, "f", "x"));
    CHECK(is_int(d, "g", 2) && is_int(d, "h", 3));
    conf_doc_free(d);

    /* a UTF-8 byte order mark is skipped */
    d = parse("\xEF\xBB\xBFport = 1\n");
    CHECK(is_int(d, "port", 1));
    conf_doc_free(d);
}

static void test_positions(void)
{
    conf_doc *d = parse("a = 1\n  bb: \"x\"\nm {\n\tk = [1,\n   22]\n}\n");
    CHECK(d);
    const conf_entry *e = conf_map_get(conf_doc_root(d), "bb");
    CHECK(e && e->key_pos.line == 2 && e->key_pos.col == 3);
    CHECK(e && e->value->pos.line == 2 && e->value->pos.col == 7);
    CHECK(e && strcmp(e->key_pos.file, "t.conf") == 0);
    const conf_value *v = get(d, "m.k.1");
    CHECK(v && v->pos.line == 5 && v->pos.col == 4);
    v = get(d, "m.k");
    CHECK(v && v->pos.line == 4 && v->pos.col == 6);
    conf_doc_free(d);
}

/* ------------------------------------------------------------------ variables */

static const char *fake_env(void *ud, const char *name)
{
    (void)ud;
    if (!strcmp(name, "FAKE_PORT"))
        return "5222";
    if (!strcmp(name, "FAKE_MAP"))
        return "{ a: 1, b: [x, y] }";
    return NULL;
}

static void test_variables(void)
{
    conf_doc *d = parse("v = 4222\nport: $v\n"
                        "s = \"hello\"\nt = $s\n"
                        "a { v = 2\n  x: $v\n  inner { y: $v, z: $s } }\n"
                        "w: $v\n"
                        "m { k: 1 }\nn = $m\n"
                        "arr = [$v, $s]\n"
                        "pw = $2a$11$abcdefghijklmnopqrstu\n");
    CHECK(d);
    CHECK(is_int(d, "port", 4222) && is_str(d, "t", "hello"));
    CHECK(is_int(d, "a.x", 2) && is_int(d, "a.inner.y", 2) && is_str(d, "a.inner.z", "hello"));
    CHECK(is_int(d, "w", 4222));
    CHECK(is_int(d, "n.k", 1) && get(d, "n") == get(d, "m")); /* maps are shared */
    CHECK(is_int(d, "arr.0", 4222) && is_str(d, "arr.1", "hello"));
    CHECK(is_str(d, "pw", "$2a$11$abcdefghijklmnopqrstu"));
    const conf_entry *e = conf_map_get(conf_doc_root(d), "v");
    CHECK(e && e->used);
    CHECK(!conf_map_get(conf_doc_root(d), "port")->used);
    /* a scalar reference takes the position of the reference */
    const conf_value *p = get(d, "port");
    CHECK(p && p->pos.line == 2 && p->pos.col == 7);
    conf_doc_free(d);

    /* environment: parsed as a value */
    setenv("EMBER_T_PORT", "4333", 1);
    setenv("EMBER_T_SIZE", "1k", 1);
    setenv("EMBER_T_STR", "hello", 1);
    setenv("EMBER_T_ARR", "[1, 2, 3]", 1);
    setenv("EMBER_T_CHAIN", "$EMBER_T_PORT", 1);
    setenv("EMBER_T_BOOL", "yes", 1);
    d = parse("p = $EMBER_T_PORT\nz = $EMBER_T_SIZE\ns = $EMBER_T_STR\na = $EMBER_T_ARR\n"
              "c = $EMBER_T_CHAIN\nb = $EMBER_T_BOOL\nEMBER_T_STR = shadow\nsh = $EMBER_T_STR\n");
    CHECK(d);
    CHECK(is_int(d, "p", 4333) && is_int(d, "z", 1000) && is_str(d, "s", "hello"));
    CHECK(count(d, "a") == 3 && is_int(d, "a.2", 3) && is_int(d, "c", 4333));
    CHECK(is_bool(d, "b", true));
    CHECK(is_str(d, "sh", "shadow")); /* the file's own key first */
    conf_doc_free(d);

    /* environment through the callback */
    conf_opts o;
    conf_opts_init(&o);
    o.get_env = fake_env;
    const char *txt = "p = $FAKE_PORT\nm = $FAKE_MAP\n";
    CHECK(conf_parse_string(&d, txt, strlen(txt), "t.conf", &o, &g_err) == 0);
    CHECK(is_int(d, "p", 5222) && is_int(d, "m.a", 1) && is_str(d, "m.b.1", "y"));
    conf_doc_free(d);
    txt = "p = $EMBER_T_PORT\n"; /* getenv is not consulted when a callback is set */
    CHECK(conf_parse_string(&d, txt, strlen(txt), "t.conf", &o, &g_err) == EMBER_EINVAL);
    CHECK_STR(g_err.text, "t.conf:1:5: variable \"EMBER_T_PORT\" is not defined");

    /* cycles and parse errors in the environment */
    setenv("EMBER_T_LOOP_A", "$EMBER_T_LOOP_B", 1);
    setenv("EMBER_T_LOOP_B", "$EMBER_T_LOOP_A", 1);
    CHECK_STR(parse_err("x = $EMBER_T_LOOP_A\n"),
              "t.conf:1:5: variable \"EMBER_T_LOOP_A\" from the environment could not be parsed: "
              "variable \"EMBER_T_LOOP_B\" from the environment could not be parsed: variable "
              "reference cycle for \"EMBER_T_LOOP_A\"");
    setenv("EMBER_T_BAD", "[1,", 1);
    CHECK_STR(parse_err("\n  x = $EMBER_T_BAD\n"),
              "t.conf:2:7: variable \"EMBER_T_BAD\" from the environment could not be parsed: "
              "unterminated array ('[' without a matching ']')");
    /* a variable defined later is not visible yet */
    CHECK_STR(parse_err("a = $later_x\nlater_x = 1\n"), "t.conf:1:5: variable \"later_x\" is not defined");
    /* block scoping: an inner key is not visible outside its map */
    CHECK_STR(parse_err("m { inner_only = 1 }\nx = $inner_only\n"),
              "t.conf:2:5: variable \"inner_only\" is not defined");
}

/* ------------------------------------------------------------------ includes */

static void test_includes(void)
{
    write_file("inc/users.conf", "user = alice\npassword = $pw_inner\npw_inner = 'not yet'\n");
    write_file("inc/base.conf", "pw_inner = s3cret\ninclude \"deeper/more.conf\"\n");
    write_file("inc/deeper/more.conf", "deep = 1k\n");
    write_file("inc/vars.conf", "shared_port = 7222\n");
    const char *main_conf = write_file("main.conf",
                                       "include ./inc/vars.conf\n"
                                       "port = $shared_port\n"
                                       "authorization {\n"
                                       "  include 'inc/base.conf'\n"
                                       "  timeout: 2\n"
                                       "}\n"
                                       "Include \"inc/deeper/more.conf\"; after = 1\n");
    (void)main_conf;
    /* users.conf refers to pw_inner before defining it: an error in that file */
    conf_doc *d = NULL;
    const char *uc = path_of("inc/users.conf");
    CHECK(conf_parse_file(&d, uc, NULL, &g_err) == EMBER_EINVAL);
    char want[1024];
    snprintf(want, sizeof want, "%s:2:12: variable \"pw_inner\" is not defined", uc);
    CHECK_STR(g_err.text, want);

    CHECK(conf_parse_file(&d, path_of("main.conf"), NULL, &g_err) == 0);
    if (!d) {
        fprintf(stderr, "  %s\n", g_err.text);
        return;
    }
    CHECK(is_int(d, "shared_port", 7222) && is_int(d, "port", 7222));
    CHECK(is_str(d, "authorization.pw_inner", "s3cret") && is_int(d, "authorization.deep", 1000));
    CHECK(is_int(d, "authorization.timeout", 2));
    CHECK(is_int(d, "deep", 1000) && is_int(d, "after", 1));
    /* positions in included files name those files */
    const conf_entry *e = conf_map_get(get(d, "authorization"), "deep");
    snprintf(want, sizeof want, "%s/inc/deeper/more.conf", g_dir);
    CHECK(e && strcmp(e->key_pos.file, want) == 0 && e->key_pos.line == 1 && e->key_pos.col == 1);
    e = conf_map_get(conf_doc_root(d), "shared_port");
    CHECK(e && e->used); /* used as a variable by the including file */
    conf_doc_free(d);

    /* a missing include: EMBER_EIO, positioned at the file name */
    const char *m2 = write_file("missing.conf", "port: 1\ninclude 'nope/missing.conf'\n");
    CHECK(conf_parse_file(&d, m2, NULL, &g_err) == EMBER_EIO);
    snprintf(want, sizeof want,
             "%s:2:9: cannot read include file \"%s/nope/missing.conf\": No such file or directory",
             m2, g_dir);
    CHECK_STR(g_err.text, want);

    /* include cycles are caught */
    const char *cyc = write_file("cycle_a.conf", "a = 1\ninclude cycle_b.conf\n");
    write_file("cycle_b.conf", "b = 1\ninclude cycle_a.conf\n");
    CHECK(conf_parse_file(&d, cyc, NULL, &g_err) == EMBER_EINVAL);
    snprintf(want, sizeof want, "%s/cycle_b.conf:2:9: include cycle: \"%s\" includes itself", g_dir, cyc);
    CHECK_STR(g_err.text, want);

    /* includes nested too deeply */
    for (int i = 0; i < 12; i++) {
        char name[32], text[64];
        snprintf(name, sizeof name, "chain%d.conf", i);
        snprintf(text, sizeof text, "k%d = %d\ninclude chain%d.conf\n", i, i, i + 1);
        write_file(name, text);
    }
    CHECK(conf_parse_file(&d, path_of("chain0.conf"), NULL, &g_err) == EMBER_EINVAL);
    snprintf(want, sizeof want, "%s/chain9.conf:2:9: includes nested too deeply (more than 10 levels)",
             g_dir);
    CHECK_STR(g_err.text, want);

    /* an error inside an included file is reported there */
    write_file("bad_inc.conf", "ok = 1\n  broken = \"abc\n");
    const char *bi = write_file("bad_main.conf", "include bad_inc.conf\n");
    CHECK(conf_parse_file(&d, bi, NULL, &g_err) == EMBER_EINVAL);
    snprintf(want, sizeof want, "%s/bad_inc.conf:2:12: unterminated string", g_dir);
    CHECK_STR(g_err.text, want);

    /* includes may be disabled */
    conf_opts o;
    conf_opts_init(&o);
    o.no_include = true;
    CHECK(conf_parse_string(&d, "include x.conf\n", 15, "t.conf", &o, &g_err) == EMBER_EINVAL);
    CHECK_STR(g_err.text, "t.conf:1:1: include is not allowed here");

    /* the main file missing */
    CHECK(conf_parse_file(&d, path_of("does-not-exist.conf"), NULL, &g_err) == EMBER_EIO);
    CHECK(strstr(g_err.text, "cannot read configuration file") != NULL);
    /* a key named include, with a separator, is an ordinary key */
    d = parse("include: 5\ninclude = 6\n");
    CHECK(is_int(d, "include", 6));
    conf_doc_free(d);
}

/* ------------------------------------------------------------------ errors */

static void test_errors(void)
{
    CHECK_STR(parse_err("a = \"abc\n"), "t.conf:1:5: unterminated string");
    CHECK_STR(parse_err("a = 'abc"), "t.conf:1:5: unterminated string");
    CHECK_STR(parse_err("port:\nhost: x\n"), "t.conf:1:6: expected a value for \"port\", found a new line");
    CHECK_STR(parse_err("port ="), "t.conf:1:7: expected a value for \"port\", found end of file");
    CHECK_STR(parse_err("port"), "t.conf:1:5: expected a value for \"port\", found end of file");
    CHECK_STR(parse_err("a { b: }"), "t.conf:1:8: expected a value for \"b\", found '}'");
    CHECK_STR(parse_err("a = 99999999999999999999\n"),
              "t.conf:1:5: integer \"99999999999999999999\" is out of range");
    CHECK_STR(parse_err("a = 9000000eb\n"), "t.conf:1:5: integer \"9000000eb\" is out of range");
    CHECK_STR(parse_err("a = 1kbb\n"), "t.conf:1:5: invalid size suffix \"kbb\" in \"1kbb\"");
    CHECK_STR(parse_err("a = .5\n"), "t.conf:1:5: floats must start with a digit, not '.'");
    CHECK_STR(parse_err("a = -x\n"), "t.conf:1:6: expected a digit after '-', found 'x'");
    CHECK_STR(parse_err("a = 1.\n"), "t.conf:1:7: a float needs a digit after '.', found a new line");
    CHECK_STR(parse_err("a = $NOPE_EMBER_X\n"), "t.conf:1:5: variable \"NOPE_EMBER_X\" is not defined");
    CHECK_STR(parse_err("a {\n  b: 1\n"), "t.conf:1:3: unterminated map ('{' without a matching '}')");
    CHECK_STR(parse_err("a = [1, 2"), "t.conf:1:5: unterminated array ('[' without a matching ']')");
    CHECK_STR(parse_err("a = [1,,2]"), "t.conf:1:8: unexpected ',' in the array: expected a value");
    CHECK_STR(parse_err("a = [1 2]"),
              "t.conf:1:8: expected ',', a new line or ']' after an array element, found '2'");
    CHECK_STR(parse_err("a = \"x\\qy\""),
              "t.conf:1:7: invalid escape 'q': only \\xXX, \\t, \\n, \\r, \\\" and \\\\ are allowed");
    CHECK_STR(parse_err("a = \"\\xZZ\""),
              "t.conf:1:6: expected two hexadecimal digits after '\\x', found 'Z' and 'Z'");
    CHECK_STR(parse_err("a = \"x\" y\n"),
              "t.conf:1:9: unexpected 'y' after the value of \"a\": expected a new line, ';' or ','");
    CHECK_STR(parse_err("a = 1\n}\n"), "t.conf:2:1: unexpected '}'");
    CHECK_STR(parse_err("= 1\n"), "t.conf:1:1: unexpected key separator '=': expected a key");
    CHECK_STR(parse_err("m { ] }\n"), "t.conf:1:5: expected a key, found ']'");
    CHECK_STR(parse_err("'abc = 1\n"), "t.conf:1:1: unterminated quoted key");
    CHECK_STR(parse_err("a = 2024-01-02\n"),
              "t.conf:1:15: invalid date: expected 'T' in an ISO 8601 datetime "
              "(2006-01-02T15:04:05Z), found a new line");
    CHECK_STR(parse_err("c = (\nno end\n"), "t.conf:1:5: unterminated block: '(' needs a ')' alone on a line");
    CHECK_STR(parse_err("include\n"), "t.conf:1:8: expected a file name after include, found a new line");
    CHECK_STR(parse_err("include [a]\n"), "t.conf:1:9: expected a file name after include, found '['");
    CHECK_STR(parse_err("{ a = 1\n"), "t.conf:1:1: unterminated map ('{' without a matching '}')");

    /* a float beyond double's range */
    char huge[512];
    snprintf(huge, sizeof huge, "a = 1");
    memset(huge + 5, '0', 400);
    snprintf(huge + 405, sizeof huge - 405, ".5\n");
    CHECK_STR(parse_err(huge),
              "t.conf:1:5: float \"1000000000000000000000000000000000000000...\" is out of range");

    /* depth limits */
    char deep[400];
    memset(deep, '[', 200);
    snprintf(deep, sizeof deep, "a = ");
    memset(deep + 4, '[', 100);
    deep[104] = 0;
    CHECK_STR(parse_err(deep), "t.conf:1:69: nested too deeply (more than 64 levels)");
    /* heights through variables are bounded too */
    char chain[4096];
    size_t n = (size_t)snprintf(chain, sizeof chain, "v0 = 1\n");
    for (int i = 1; i < 200 && n < sizeof chain - 64; i++)
        n += (size_t)snprintf(chain + n, sizeof chain - n, "v%d = [[$v%d]]\n", i, i - 1);
    CHECK(strstr(parse_err(chain), "nested too deeply through variables") != NULL);
}

/* ------------------------------------------------------------------ options */

typedef struct logbuf {
    int n;
    int level[32];
    char line[32][512];
} logbuf;

static void log_cb(void *ud, int level, const char *line)
{
    logbuf *b = ud;
    if (b->n < 32) {
        b->level[b->n] = level;
        snprintf(b->line[b->n], sizeof b->line[0], "%s", line);
        b->n++;
    }
}

static bool has_log(const logbuf *b, int level, const char *text)
{
    for (int i = 0; i < b->n; i++)
        if (b->level[i] == level && strcmp(b->line[i], text) == 0)
            return true;
    fprintf(stderr, "  no log line [%d] %s; have:\n", level, text);
    for (int i = 0; i < b->n; i++)
        fprintf(stderr, "    [%d] %s\n", b->level[i], b->line[i]);
    return false;
}

/* Load text (written to name) into fresh options; returns the status. */
static int load(const char *name, const char *text, ember_server_options *o, ember_config **cfg,
                logbuf *lb)
{
    ember_server_options_init(o);
    if (lb) {
        memset(lb, 0, sizeof *lb);
        o->log_fn = log_cb;
        o->log_userdata = lb;
    }
    return ember_config_load(cfg, write_file(name, text), o);
}

static int read_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, 1);
        if (r <= 0)
            return -1;
        if (buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = 0;
    return (int)n;
}

static void test_options_realistic(void)
{
    const char *text =
        "# An Ember broker for the tests\n"
        "PASS = \"s3cret\"              # a variable, used below\n"
        "server_name: \"ember-test\"\n"
        "listen: 127.0.0.1:-1\n"
        "max_payload: 2MB\n"
        "max_control_line = 2kb\n"
        "max_pending: 128MB\n"
        "max_connections 1k\n"
        "max_subs: 100\n"
        "ping_interval: \"30s\"\n"
        "ping_max: 3\n"
        "write_deadline: \"2.5s\"\n"
        "authorization {\n"
        "  user: alice\n"
        "  password: $PASS\n"
        "  timeout: 1.5\n"
        "}\n"
        "logtime: true\n"
        "mystery_key: 1\n"
        "cluster { port: 6222 }\n"
        "debug: true\n"
        "no_header_support: false\n";
    ember_server_options o;
    ember_config *cfg = NULL;
    logbuf lb;
    int rc = load("real.conf", text, &o, &cfg, &lb);
    CHECK(rc == EMBER_OK);
    if (rc) {
        fprintf(stderr, "  %s\n", ember_last_error());
        return;
    }
    CHECK(cfg != NULL);
    CHECK_STR(o.server_name, "ember-test");
    CHECK_STR(o.host, "127.0.0.1");
    CHECK(o.port == -1);
    CHECK(o.max_payload == 2 * 1048576);
    CHECK(o.max_control_line == 2048);
    CHECK(o.max_pending == 128ll << 20);
    CHECK(o.max_connections == 1000);
    CHECK(o.max_subscriptions == 100);
    CHECK(o.ping_interval_ms == 30000);
    CHECK(o.max_pings_out == 3);
    CHECK(o.write_deadline_ms == 2500);
    CHECK_STR(o.username, "alice");
    CHECK_STR(o.password, "s3cret");
    CHECK(o.auth_token == NULL);
    CHECK(o.auth_timeout_ms == 1500);
    CHECK(o.log_level == EMBER_LOG_DEBUG);
    CHECK(!o.no_header_support && !o.jetstream && !o.dont_listen);
    const char *p = path_of("real.conf");
    char want[1024];
    snprintf(want, sizeof want, "%s:19:1: unknown field \"mystery_key\"", p);
    CHECK(has_log(&lb, EMBER_LOG_WARN, want));
    snprintf(want, sizeof want, "%s:18:1: field \"logtime\" is not used by Ember, ignored", p);
    CHECK(has_log(&lb, EMBER_LOG_INFO, want));
    snprintf(want, sizeof want, "%s:20:1: field \"cluster\" is not supported by Ember, ignored", p);
    CHECK(has_log(&lb, EMBER_LOG_WARN, want));
    CHECK(lb.n == 3); /* PASS was used as a variable: no warning for it */

    /* the server copies the strings: the config can go once ember_server_new returned */
    o.log_fn = NULL;
    ember_server *s = NULL;
    rc = ember_server_new(&s, &o);
    CHECK(rc == EMBER_OK);
    ember_config_free(cfg);
    if (rc) {
        fprintf(stderr, "  %s\n", ember_last_error());
        return;
    }
    CHECK(ember_server_start(s) == EMBER_OK);
    CHECK(ember_server_ready_for_connections(s, 5000));
    int port = ember_server_port(s);
    CHECK(port > 0);
    CHECK_STR(ember_server_name(s), "ember-test");

    /* a client sees the options in INFO */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    char line[4096];
    CHECK(read_line(fd, line, sizeof line) > 0);
    CHECK(strncmp(line, "INFO ", 5) == 0);
    CHECK(strstr(line, "\"server_name\":\"ember-test\"") != NULL);
    CHECK(strstr(line, "\"max_payload\":2097152") != NULL);
    CHECK(strstr(line, "\"auth_required\":true") != NULL);
    CHECK(strstr(line, "\"headers\":true") != NULL);
    /* the credentials from the file are the ones that work */
    const char *conn = "CONNECT {\"user\":\"alice\",\"pass\":\"s3cret\",\"verbose\":false}\r\nPING\r\n";
    CHECK(write(fd, conn, strlen(conn)) == (ssize_t)strlen(conn));
    CHECK(read_line(fd, line, sizeof line) > 0);
    CHECK(strncmp(line, "PONG", 4) == 0);
    close(fd);

    fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    CHECK(read_line(fd, line, sizeof line) > 0);
    conn = "CONNECT {\"user\":\"alice\",\"pass\":\"wrong\",\"verbose\":false}\r\nPING\r\n";
    CHECK(write(fd, conn, strlen(conn)) == (ssize_t)strlen(conn));
    CHECK(read_line(fd, line, sizeof line) > 0);
    CHECK(strstr(line, "-ERR 'Authorization Violation'") != NULL);
    close(fd);

    ember_server_shutdown(s);
    ember_server_free(s);
}

static void test_options_in_process(void)
{
    ember_server_options o;
    ember_config *cfg = NULL;
    int rc = load("inproc.conf",
                  "dont_listen: true\nserver_name = inproc\nmax_payload = 1kb\n"
                  "authorization { token: \"t0k\" }\n",
                  &o, &cfg, NULL);
    CHECK(rc == EMBER_OK);
    if (rc)
        return;
    CHECK(o.dont_listen && o.max_payload == 1024);
    CHECK_STR(o.auth_token, "t0k");
    ember_server *s = NULL;
    CHECK(ember_server_new(&s, &o) == EMBER_OK);
    ember_config_free(cfg);
    if (!s)
        return;
    CHECK(ember_server_start(s) == EMBER_OK);
    CHECK(ember_server_ready_for_connections(s, 5000));
    CHECK(ember_server_client_url(s) == NULL);
    ember_conn *c = NULL;
    CHECK(ember_conn_connect(&c, s, NULL) == EMBER_OK);
    if (c) {
        ember_sub *sub = NULL;
        CHECK(ember_conn_subscribe(&sub, c, "cfg.test", NULL, EMBER_DELIVER_POLL, NULL, NULL, NULL) ==
              EMBER_OK);
        CHECK(ember_conn_publish(c, "cfg.test", NULL, "hi", 2) == EMBER_OK);
        ember_msg *m = NULL;
        CHECK(sub && ember_sub_next_msg(sub, &m, 2000) == EMBER_OK);
        if (m) {
            size_t len = 0;
            const char *data = ember_msg_data(m, &len);
            CHECK(len == 2 && memcmp(data, "hi", 2) == 0);
            ember_msg_release(m);
        }
        char big[2048] = {0};
        CHECK(ember_conn_publish(c, "cfg.test", NULL, big, sizeof big) == EMBER_EMAXPAYLOAD);
        ember_conn_close(c);
    }
    ember_server_shutdown(s);
    ember_server_free(s);
}

static void test_options_values(void)
{
    ember_server_options o;
    ember_config *cfg = NULL;
    logbuf lb;

    /* durations as seconds: nats-server's warning */
    CHECK(load("d.conf", "ping_interval: 60\nwrite_deadline = \"250ms\"\n", &o, &cfg, &lb) == 0);
    CHECK(o.ping_interval_ms == 60000 && o.write_deadline_ms == 250);
    char want[1024];
    snprintf(want, sizeof want,
             "%s:1:16: invalid use of field \"ping_interval\": ping_interval should be converted "
             "to a duration",
             path_of("d.conf"));
    CHECK(has_log(&lb, EMBER_LOG_WARN, want));
    ember_config_free(cfg);

    /* host/net, port, aliases, trace, jetstream forms */
    CHECK(load("e.conf",
               "net: 10.0.0.1\nport: 4333\nmax_conn: 7\nmax_subscriptions: 9\nmax_pings_out: 4\n"
               "trace: true\njetstream: enabled\nstore_dir: '/var/lib/ember'\n",
               &o, &cfg, NULL) == 0);
    CHECK_STR(o.host, "10.0.0.1");
    CHECK(o.port == 4333 && o.max_connections == 7 && o.max_subscriptions == 9 && o.max_pings_out == 4);
    CHECK(o.log_level == EMBER_LOG_TRACE && o.jetstream);
    CHECK_STR(o.store_dir, "/var/lib/ember");
    ember_config_free(cfg);

    CHECK(load("j.conf", "jetstream { store_dir: /data/js, domain: edge, max_mem: 1G }\n", &o, &cfg, &lb) == 0);
    CHECK(o.jetstream);
    CHECK_STR(o.store_dir, "/data/js");
    CHECK_STR(o.jetstream_domain, "edge");
    CHECK(o.jetstream_max_memory == 1000ll * 1000 * 1000); /* "1G" in the lexer: 10^9 */
    ember_config_free(cfg);
    CHECK(load("js.conf", "jetstream { max_file_store: \"2G\", sync_interval: \"250ms\", tpm: 1 }\n",
               &o, &cfg, &lb) == 0);
    CHECK(o.jetstream_max_store == 2ll << 30 && o.jetstream_sync_interval_ms == 250);
    snprintf(want, sizeof want, "%s:1:59: field \"tpm\" is not supported by Ember, ignored",
             path_of("js.conf"));
    CHECK(has_log(&lb, EMBER_LOG_WARN, want));
    ember_config_free(cfg);
    CHECK(load("js2.conf", "jetstream { sync: always, max_mem: \"3X\" }\n", &o, &cfg, &lb) != 0);
    CHECK(strstr(ember_last_error(), "sizes defined as strings must end in K, M, G, T") != NULL);

    CHECK(load("j2.conf", "jetstream { enabled: false, store: /x }\njetstream_x: 1\n", &o, &cfg, NULL) == 0);
    CHECK(!o.jetstream);
    ember_config_free(cfg);
    CHECK(load("j3.conf", "jetstream: false\n", &o, &cfg, NULL) == 0 && !o.jetstream);
    ember_config_free(cfg);
    CHECK(load("l.conf", "listen: \"[::1]:4555\"\n", &o, &cfg, NULL) == 0);
    CHECK_STR(o.host, "::1");
    CHECK(o.port == 4555);
    ember_config_free(cfg);
    CHECK(load("l2.conf", "listen: 4666\n", &o, &cfg, NULL) == 0 && o.port == 4666);
    ember_config_free(cfg);
    CHECK(load("l3.conf", "listen: \":4777\"\n", &o, &cfg, NULL) == 0 && o.port == 4777);
    CHECK_STR(o.host, "0.0.0.0");
    ember_config_free(cfg);
    CHECK(load("to.conf", "authorization { token: abc, timeout: \"3s\" }\n", &o, &cfg, &lb) == 0);
    CHECK(o.auth_timeout_ms == 3000);
    ember_config_free(cfg);
    /* an unknown field in authorization or a user is an error (a typo there would drop
     * a restriction), as nats-server makes every unknown field */
    CHECK(load("to2.conf", "authorization { token: abc, bogus: 1 }\n", &o, &cfg, &lb) == EMBER_EINVAL);
    snprintf(want, sizeof want, "%s:1:29: unknown field \"bogus\"", path_of("to2.conf"));
    CHECK(strstr(ember_last_error(), want) != NULL);
    CHECK(load("to3.conf", "authorization {\n  users = [\n    { user: a, password: a, permisions: { publish: x } }\n  ]\n}\n",
               &o, &cfg, &lb) == EMBER_EINVAL);
    snprintf(want, sizeof want, "%s:3:29: unknown field \"permisions\"", path_of("to3.conf"));
    CHECK(strstr(ember_last_error(), want) != NULL);
    CHECK(load("to4.conf", "accounts {\n  A: { users: [ {user: x, password: x} ] }\n  B: { users: [ {user: x, password: y} ] }\n}\n",
               &o, &cfg, &lb) == EMBER_EINVAL);
    snprintf(want, sizeof want, "%s:3:", path_of("to4.conf"));
    CHECK(strstr(ember_last_error(), want) && strstr(ember_last_error(), "Duplicate user \"x\" detected"));
    CHECK(load("to5.conf", "tls {\n  cert_file: \"/nonexistent/c.pem\"\n  key_file: \"/nonexistent/k.pem\"\n}\n",
               &o, &cfg, &lb) == EMBER_EINVAL);
    snprintf(want, sizeof want, "%s:1:1: error parsing X509 certificate/key pair: open /nonexistent/c.pem: no such file or directory",
             path_of("to5.conf"));
    CHECK(strstr(ember_last_error(), want) != NULL);
    /* keys are case-insensitive, as in nats-server */
    CHECK(load("case.conf", "PORT: 4999\nServer_Name: x\n", &o, &cfg, NULL) == 0 && o.port == 4999);
    CHECK_STR(o.server_name, "x");
    ember_config_free(cfg);
    /* log lines respect the host's log level */
    ember_server_options_init(&o);
    memset(&lb, 0, sizeof lb);
    o.log_fn = log_cb;
    o.log_userdata = &lb;
    o.log_level = EMBER_LOG_WARN;
    CHECK(ember_config_load(&cfg, write_file("lv.conf", "logtime: true\nzz: 1\n"), &o) == 0);
    CHECK(lb.n == 1 && lb.level[0] == EMBER_LOG_WARN);
    ember_config_free(cfg);
}

/* Errors: the status, the exact message, and opts left untouched. */
static void expect_load_error(const char *name, const char *text, int code, const char *msg_after_path)
{
    ember_server_options o, before;
    ember_server_options_init(&o);
    o.port = 1234;
    before = o;
    ember_config *cfg = (ember_config *)&o; /* must be reset to NULL */
    const char *p = write_file(name, text);
    int rc = ember_config_load(&cfg, p, &o);
    CHECK(rc == code);
    CHECK(cfg == NULL);
    CHECK(memcmp(&o, &before, sizeof o) == 0);
    char want[1024];
    snprintf(want, sizeof want, "%s:%s", p, msg_after_path);
    CHECK_STR(ember_last_error(), want);
}

static void test_options_errors(void)
{
    expect_load_error("e1.conf", "port: 'abc'\n", EMBER_EINVAL,
                      "1:7: field \"port\": expected an integer, got a string");
    expect_load_error("e2.conf", "port: 70000\n", EMBER_EINVAL,
                      "1:7: field \"port\": 70000 is out of range (-1 to 65535)");
    expect_load_error("e3.conf", "\n\n  debug: 1\n", EMBER_EINVAL,
                      "3:10: field \"debug\": expected a boolean, got an integer");
    expect_load_error("e4.conf", "max_payload: 3gb\n", EMBER_EINVAL, "1:14: max_payload value is too big");
    expect_load_error("e5.conf", "ping_interval: \"2 minutes\"\n", EMBER_EINVAL,
                      "1:16: error parsing ping_interval: time: unknown unit \" minutes\" in duration "
                      "\"2 minutes\"");
    expect_load_error("e6.conf", "authorization { user: a, password: b, token: c }\n", EMBER_EINVAL,
                      "1:1: Cannot have a user/pass and token");
    expect_load_error("e7.conf", "tls { pinned_certs: [] }\n", EMBER_EINVAL,
                      "1:7: field \"pinned_certs\" is not supported by Ember: refusing to run without what it asks for");
    expect_load_error("e8.conf", "authorization {\n  users = [ {user: a, password: b, account: X} ]\n}\n",
                      EMBER_EINVAL,
                      "2:36: field \"account\" is not supported by Ember: refusing to run without what it asks for");
    expect_load_error("e9.conf", "store_dir: /a\njetstream { store_dir: /b }\n", EMBER_EINVAL,
                      "2:13: Duplicate 'store_dir' configuration");
    expect_load_error("e10.conf", "server_name: \"has space\"\n", EMBER_EINVAL,
                      "1:14: server name cannot contain spaces");
    expect_load_error("e11.conf", "max_connections: 0\n", EMBER_EINVAL,
                      "1:18: field \"max_connections\": 0 would refuse every client in nats-server; "
                      "Ember needs a positive limit (or dont_listen)");
    expect_load_error("e12.conf", "jetstream: maybe\n", EMBER_EINVAL,
                      "1:12: Expected 'enabled' or 'disabled' for string value, got 'maybe'");
    expect_load_error("e13.conf", "listen: \"nohost\"\n", EMBER_EINVAL,
                      "1:9: could not parse address string \"nohost\"");
    expect_load_error("e14.conf", "authorization: yes\n", EMBER_EINVAL,
                      "1:16: field \"authorization\": expected a map, got a boolean");
    expect_load_error("e15.conf", "port: 1\nport = \n", EMBER_EINVAL,
                      "2:8: expected a value for \"port\", found a new line");
    expect_load_error("e16.conf", "jetstream { cipher: aes }\n", EMBER_EINVAL,
                      "1:13: field \"cipher\" is not supported by Ember: refusing to run without what it asks for");

    /* unreadable file: EMBER_EIO */
    ember_server_options o;
    ember_server_options_init(&o);
    ember_config *cfg = NULL;
    CHECK(ember_config_load(&cfg, path_of("no-such.conf"), &o) == EMBER_EIO);
    CHECK(cfg == NULL);
    CHECK(strstr(ember_last_error(), "No such file or directory") != NULL);
    /* arguments */
    CHECK(ember_config_load(NULL, "x", &o) == EMBER_EINVAL);
    CHECK(ember_config_load(&cfg, "x", NULL) == EMBER_EINVAL);
    ember_server_options raw;
    memset(&raw, 0, sizeof raw);
    CHECK(ember_config_load(&cfg, path_of("d.conf"), &raw) == EMBER_EINVAL);
    ember_config_free(NULL);
}

static void cleanup(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", g_dir);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/ember-conf-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 2;
    }
    test_separators();
    test_strings();
    test_scalars();
    test_sizes();
    test_durations();
    test_blocks_arrays();
    test_comments_and_ends();
    test_positions();
    test_variables();
    test_includes();
    test_errors();
    test_options_realistic();
    test_options_in_process();
    test_options_values();
    test_options_errors();
    cleanup();
    printf("conf: %d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
