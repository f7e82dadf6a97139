/* Unit tests for core/src/sublist.c: validation, matching, queue groups, remove and
 * prune, refcounts, cache invalidation and limits, a multi-threaded stress test, and an
 * informational cache-hit throughput figure (never asserted). */
#define _POSIX_C_SOURCE 200809L
#include "sublist.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_passed, g_failed;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            g_passed++;                                                              \
        } else {                                                                     \
            g_failed++;                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            fprintf(stderr, "sublist: %d passed, %d failed\n", g_passed, g_failed);  \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

/* ---- counting items ------------------------------------------------------ */

typedef struct titem {
    atomic_int refs;
    int id;
} titem;

static atomic_long g_live_refs; /* sum over all items */

static void item_retain(void *p)
{
    atomic_fetch_add(&((titem *)p)->refs, 1);
    atomic_fetch_add(&g_live_refs, 1);
}

static void item_release(void *p)
{
    int old = atomic_fetch_sub(&((titem *)p)->refs, 1);
    if (old <= 0) {
        fprintf(stderr, "release of item %d below zero\n", ((titem *)p)->id);
        abort();
    }
    atomic_fetch_sub(&g_live_refs, 1);
}

static int refs_of(titem *t)
{
    return atomic_load(&t->refs);
}

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- helpers --------------------------------------------------------------- */

static sublist_result *M(sublist *sl, const char *s)
{
    return sublist_match(sl, s, strlen(s));
}

static bool has_psub(const sublist_result *r, const void *item)
{
    for (size_t i = 0; i < r->npsubs; i++)
        if (r->psubs[i] == item)
            return true;
    return false;
}

static const sublist_qgroup *find_q(const sublist_result *r, const char *name)
{
    for (size_t i = 0; i < r->nqsubs; i++)
        if (strcmp(r->qsubs[i].name, name) == 0)
            return &r->qsubs[i];
    return NULL;
}

static bool has_qsub(const sublist_result *r, const char *q, const void *item)
{
    const sublist_qgroup *g = find_q(r, q);
    if (!g)
        return false;
    for (size_t i = 0; i < g->n; i++)
        if (g->items[i] == item)
            return true;
    return false;
}

static size_t count_of(sublist *sl, const char *s)
{
    sublist_result *r = M(sl, s);
    size_t n = r->npsubs;
    for (size_t i = 0; i < r->nqsubs; i++)
        n += r->qsubs[i].n;
    sublist_result_release(r);
    return n;
}

static bool match_has(sublist *sl, const char *s, const void *item)
{
    sublist_result *r = M(sl, s);
    bool b = has_psub(r, item);
    sublist_result_release(r);
    return b;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_validation(void)
{
    static const struct {
        const char *s;
        bool sub, lit;
    } t[] = {
        {"foo", true, true},
        {"foo.bar", true, true},
        {"foo.bar.baz", true, true},
        {"a.b.c.d.e.f.g", true, true},
        {"", false, false},
        {".", false, false},
        {"foo..bar", false, false},
        {".foo", false, false},
        {"foo.", false, false},
        {"..", false, false},
        {"foo bar", false, false},
        {"foo\tbar", false, false},
        {"foo.\n", false, false},
        {"foo\r.bar", false, false},
        {"foo.\fbar", false, false},
        {" ", false, false},
        {"foo. .bar", false, false},
        {"*", true, false},
        {">", true, false},
        {"foo.*", true, false},
        {"*.bar", true, false},
        {"foo.*.bar", true, false},
        {"*.*", true, false},
        {"foo.>", true, false},
        {"*.>", true, false},
        {"foo.>.bar", false, false},
        {">.bar", false, false},
        {">.>", false, false},
        {"foo.>.", false, false},
        {"foo*.bar", true, true},
        {"foo.bar*", true, true},
        {"foo.*bar", true, true},
        {"foo>.bar", true, true},
        {"foo.>bar", true, true},
        {"a>b.c", true, true},
        {"**", true, true},
        {">>", true, true},
        {"foo.**.bar", true, true},
        {"$JS.API.STREAM.INFO.x", true, true},
        {"_INBOX.abc123", true, true},
        {"\xc3\xa9t\xc3\xa9.x", true, true},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        size_t n = strlen(t[i].s);
        bool vs = subject_is_valid_sub(t[i].s, n);
        bool vl = subject_is_valid_literal(t[i].s, n);
        if (vs != t[i].sub || vl != t[i].lit)
            fprintf(stderr, "subject '%s': sub=%d (want %d) literal=%d (want %d)\n", t[i].s, vs,
                    t[i].sub, vl, t[i].lit);
        CHECK(vs == t[i].sub);
        CHECK(vl == t[i].lit);
    }
    /* length is honoured (not NUL-terminated slices) */
    CHECK(subject_is_valid_literal("foo.bar.", 7));
    CHECK(!subject_is_valid_literal("foo.bar.", 8));
    CHECK(subject_is_valid_sub("foo.> trailing", 5));
    CHECK(!subject_is_valid_sub(NULL, 0));

    CHECK(subject_is_valid_queue("q", 1));
    CHECK(subject_is_valid_queue("workers.v1", 10));
    CHECK(subject_is_valid_queue("*", 1));
    CHECK(!subject_is_valid_queue("", 0));
    CHECK(!subject_is_valid_queue("a b", 3));
    CHECK(!subject_is_valid_queue("a\tb", 3));
    CHECK(!subject_is_valid_queue("ab\n", 3));
}

static void test_subject_matches(void)
{
    static const struct {
        const char *pat, *lit;
        bool m;
    } t[] = {
        {"foo", "foo", true},
        {"foo", "bar", false},
        {"foo", "foo.bar", false},
        {"foo.bar", "foo", false},
        {"foo.bar", "foo.bar", true},
        {"foo.bar", "foo.baz", false},
        {"foo.bar", "foo.barx", false},
        {"foo.*", "foo.bar", true},
        {"foo.*", "foo", false},
        {"foo.*", "foo.bar.baz", false},
        {"*.bar", "foo.bar", true},
        {"*.bar", "foo.baz", false},
        {"*.*", "a.b", true},
        {"*.*", "a", false},
        {"*.*", "a.b.c", false},
        {"*", "a", true},
        {"*", "a.b", false},
        {"foo.>", "foo.bar", true},
        {"foo.>", "foo.bar.baz", true},
        {"foo.>", "foo", false},
        {"foo.>", "bar.baz", false},
        {">", "a", true},
        {">", "a.b.c", true},
        {"*.>", "a", false},
        {"*.>", "a.b", true},
        {"foo.*.baz", "foo.bar.baz", true},
        {"foo.*.baz", "foo.bar.bax", false},
        {"foo*.bar", "foo*.bar", true},
        {"foo*.bar", "fooX.bar", false},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        bool m = subject_matches(t[i].pat, strlen(t[i].pat), t[i].lit, strlen(t[i].lit));
        if (m != t[i].m)
            fprintf(stderr, "subject_matches('%s', '%s') = %d\n", t[i].pat, t[i].lit, m);
        CHECK(m == t[i].m);
    }
}

static void test_basic_match(void)
{
    titem it[16] = {0};
    for (int i = 0; i < 16; i++)
        it[i].id = i;
    sublist *sl = sublist_new(item_retain, item_release);
    CHECK(sl != NULL);

    CHECK(sublist_insert(sl, "foo.bar", NULL, &it[0]) == 0);
    CHECK(sublist_insert(sl, "foo.*", NULL, &it[1]) == 0);
    CHECK(sublist_insert(sl, "foo.>", "", &it[2]) == 0);
    CHECK(sublist_insert(sl, "*.bar", NULL, &it[3]) == 0);
    CHECK(sublist_insert(sl, ">", NULL, &it[4]) == 0);
    CHECK(sublist_insert(sl, "*.*", NULL, &it[5]) == 0);
    CHECK(sublist_insert(sl, "foo", NULL, &it[6]) == 0);
    CHECK(sublist_insert(sl, "foo.bar.baz", NULL, &it[7]) == 0);
    CHECK(sublist_insert(sl, "foo.*.baz", NULL, &it[8]) == 0);
    CHECK(sublist_insert(sl, "*", NULL, &it[9]) == 0);
    CHECK(sublist_insert(sl, "foo*.bar", NULL, &it[10]) == 0);
    CHECK(refs_of(&it[0]) == 1);

    /* invalid inserts store nothing and take no reference */
    CHECK(sublist_insert(sl, "foo..bar", NULL, &it[15]) == -1);
    CHECK(sublist_insert(sl, "foo.>.bar", NULL, &it[15]) == -1);
    CHECK(sublist_insert(sl, "", NULL, &it[15]) == -1);
    CHECK(sublist_insert(sl, "foo bar", NULL, &it[15]) == -1);
    CHECK(sublist_insert(sl, "foo", "q w", &it[15]) == -1);
    CHECK(refs_of(&it[15]) == 0);

    sublist_result *r = M(sl, "foo.bar");
    CHECK(r->nqsubs == 0);
    CHECK(r->npsubs == 6);
    CHECK(has_psub(r, &it[0]) && has_psub(r, &it[1]) && has_psub(r, &it[2]));
    CHECK(has_psub(r, &it[3]) && has_psub(r, &it[4]) && has_psub(r, &it[5]));
    CHECK(refs_of(&it[0]) == 2); /* sublist + result */
    sublist_result_release(r);
    CHECK(refs_of(&it[0]) == 2); /* the cache keeps the result */

    r = M(sl, "foo");
    CHECK(r->npsubs == 3);
    CHECK(has_psub(r, &it[6]) && has_psub(r, &it[4]) && has_psub(r, &it[9]));
    sublist_result_release(r);

    r = M(sl, "foo.bar.baz");
    CHECK(r->npsubs == 4);
    CHECK(has_psub(r, &it[7]) && has_psub(r, &it[8]) && has_psub(r, &it[2]) &&
          has_psub(r, &it[4]));
    sublist_result_release(r);

    r = M(sl, "baz.bar");
    CHECK(r->npsubs == 3);
    CHECK(has_psub(r, &it[3]) && has_psub(r, &it[4]) && has_psub(r, &it[5]));
    sublist_result_release(r);

    /* '*' inside a token is an ordinary character */
    r = M(sl, "foo*.bar");
    CHECK(r->npsubs == 4);
    CHECK(has_psub(r, &it[10]) && has_psub(r, &it[3]) && has_psub(r, &it[4]) &&
          has_psub(r, &it[5]));
    sublist_result_release(r);
    CHECK(count_of(sl, "fooX.bar") == 3);

    CHECK(count_of(sl, "x.y.z") == 1); /* only '>' */
    CHECK(count_of(sl, "bar") == 2);   /* '>' and '*' */

    /* invalid subjects match nothing and are not cached */
    sublist_stats st;
    sublist_get_stats(sl, &st);
    uint64_t cached = st.num_cache;
    r = M(sl, "foo..bar");
    CHECK(r->npsubs == 0 && r->nqsubs == 0);
    sublist_result_release(r);
    r = sublist_match(sl, "", 0);
    CHECK(r->npsubs == 0);
    sublist_result_release(r);
    r = M(sl, ".foo");
    CHECK(r->npsubs == 0);
    sublist_result_release(r);
    r = M(sl, "foo.");
    CHECK(r->npsubs == 0);
    sublist_result_release(r);
    sublist_get_stats(sl, &st);
    CHECK(st.num_cache == cached);

    /* length-delimited subject (not NUL-terminated) */
    r = sublist_match(sl, "foo.bar.baz.qux", 7);
    CHECK(r->npsubs == 6);
    sublist_result_release(r);

    /* nothing matches: empty result, cached */
    sublist *sl2 = sublist_new(NULL, NULL);
    r = M(sl2, "nothing.here");
    CHECK(r != NULL && r->npsubs == 0 && r->nqsubs == 0 && r->psubs == NULL && r->qsubs == NULL);
    sublist_result_release(r);
    sublist_get_stats(sl2, &st);
    CHECK(st.num_cache == 1 && st.num_matches == 1 && st.cache_hits == 0);
    r = M(sl2, "nothing.here");
    sublist_result_release(r);
    sublist_get_stats(sl2, &st);
    CHECK(st.num_cache == 1 && st.num_matches == 2 && st.cache_hits == 1);
    /* NULL retain/release: no refcounting at all */
    CHECK(sublist_insert(sl2, "a.b", NULL, &it[11]) == 0);
    r = M(sl2, "a.b");
    CHECK(r->npsubs == 1 && r->psubs[0] == &it[11]);
    sublist_result_release(r);
    CHECK(refs_of(&it[11]) == 0);
    sublist_free(sl2);

    sublist_get_stats(sl, &st);
    CHECK(st.num_subs == 11);
    CHECK(st.num_inserts == 11);
    sublist_free(sl);
    for (int i = 0; i < 16; i++)
        CHECK(refs_of(&it[i]) == 0);
    CHECK(atomic_load(&g_live_refs) == 0);
}

static void test_queues(void)
{
    titem it[10] = {0};
    sublist *sl = sublist_new(item_retain, item_release);
    CHECK(sublist_insert(sl, "foo.bar", "q1", &it[0]) == 0);
    CHECK(sublist_insert(sl, "foo.bar", "q1", &it[1]) == 0);
    CHECK(sublist_insert(sl, "foo.*", "q1", &it[2]) == 0);
    CHECK(sublist_insert(sl, "foo.>", "q1", &it[3]) == 0);
    CHECK(sublist_insert(sl, "foo.*", "q2", &it[4]) == 0);
    CHECK(sublist_insert(sl, ">", "q3", &it[5]) == 0);
    CHECK(sublist_insert(sl, "foo.bar", NULL, &it[6]) == 0);
    CHECK(sublist_insert(sl, "foo.baz", "q1", &it[7]) == 0);

    sublist_result *r = M(sl, "foo.bar");
    CHECK(r->npsubs == 1 && r->psubs[0] == &it[6]);
    CHECK(r->nqsubs == 3);
    const sublist_qgroup *g1 = find_q(r, "q1");
    const sublist_qgroup *g2 = find_q(r, "q2");
    const sublist_qgroup *g3 = find_q(r, "q3");
    CHECK(g1 && g2 && g3);
    CHECK(g1->n == 4);
    CHECK(has_qsub(r, "q1", &it[0]) && has_qsub(r, "q1", &it[1]) && has_qsub(r, "q1", &it[2]) &&
          has_qsub(r, "q1", &it[3]));
    CHECK(!has_qsub(r, "q1", &it[7]));
    CHECK(g2->n == 1 && g2->items[0] == &it[4]);
    CHECK(g3->n == 1 && g3->items[0] == &it[5]);
    /* names are NUL-terminated strings inside the result */
    CHECK(strlen(g1->name) == 2);

    /* remove one member: the held result is unaffected, a new match sees the change */
    CHECK(sublist_remove(sl, "foo.bar", "q1", &it[0]) == 0);
    CHECK(sublist_remove(sl, "foo.bar", "q1", &it[0]) == -1);
    CHECK(sublist_remove(sl, "foo.bar", NULL, &it[1]) == -1); /* wrong queue */
    CHECK(sublist_remove(sl, "foo.bar", "q2", &it[1]) == -1);
    CHECK(g1->n == 4 && has_qsub(r, "q1", &it[0]));
    CHECK(refs_of(&it[0]) == 1); /* only the result holds it now */
    sublist_result *r2 = M(sl, "foo.bar");
    CHECK(find_q(r2, "q1")->n == 3 && !has_qsub(r2, "q1", &it[0]));
    sublist_result_release(r2);
    sublist_result_release(r);
    CHECK(refs_of(&it[0]) == 0);

    /* removing the whole of q2 drops the group */
    CHECK(sublist_remove(sl, "foo.*", "q2", &it[4]) == 0);
    r = M(sl, "foo.bar");
    CHECK(r->nqsubs == 2 && find_q(r, "q2") == NULL);
    sublist_result_release(r);

    r = M(sl, "foo.baz");
    CHECK(find_q(r, "q1")->n == 3); /* it[7], it[2], it[3] */
    sublist_result_release(r);

    sublist_free(sl);
    for (int i = 0; i < 10; i++)
        CHECK(refs_of(&it[i]) == 0);
}

typedef struct visit_acc {
    int n;
    int found_q;
    int found_fwc;
} visit_acc;

static void visit_cb(void *ctx, const char *subject, const char *queue, void *item)
{
    visit_acc *a = ctx;
    a->n++;
    if (queue && strcmp(queue, "grp") == 0 && strcmp(subject, "a.*.c") == 0 &&
        ((titem *)item)->id == 2)
        a->found_q++;
    if (!queue && strcmp(subject, "a.b.>") == 0 && ((titem *)item)->id == 3)
        a->found_fwc++;
}

static void test_remove_prune_visit(void)
{
    titem it[8] = {0};
    for (int i = 0; i < 8; i++)
        it[i].id = i;
    sublist *sl = sublist_new(item_retain, item_release);
    CHECK(sublist_num_nodes(sl) == 0);
    CHECK(sublist_insert(sl, "a.b.c", NULL, &it[0]) == 0);
    CHECK(sublist_num_nodes(sl) == 3);
    CHECK(sublist_insert(sl, "a.b.c", NULL, &it[1]) == 0);
    CHECK(sublist_insert(sl, "a.*.c", "grp", &it[2]) == 0);
    CHECK(sublist_insert(sl, "a.b.>", NULL, &it[3]) == 0);
    CHECK(sublist_insert(sl, "x.y.z.w", NULL, &it[4]) == 0);
    CHECK(sublist_num_nodes(sl) == 3 + 2 + 1 + 4);

    visit_acc acc = {0};
    sublist_visit(sl, visit_cb, &acc);
    CHECK(acc.n == 5 && acc.found_q == 1 && acc.found_fwc == 1);

    CHECK(sublist_remove(sl, "a.b", NULL, &it[0]) == -1);
    CHECK(sublist_remove(sl, "a.b.c.d", NULL, &it[0]) == -1);
    CHECK(sublist_remove(sl, "a.b.c", NULL, &it[5]) == -1);
    CHECK(sublist_remove(sl, "a.b.c", "grp", &it[0]) == -1);
    CHECK(sublist_remove(sl, "a.b..c", NULL, &it[0]) == -1);

    CHECK(sublist_remove(sl, "a.b.c", NULL, &it[0]) == 0);
    CHECK(sublist_num_nodes(sl) == 10); /* it[1] still there */
    CHECK(sublist_remove(sl, "a.b.c", NULL, &it[1]) == 0);
    CHECK(sublist_num_nodes(sl) == 9); /* "c" pruned */
    CHECK(sublist_remove(sl, "x.y.z.w", NULL, &it[4]) == 0);
    CHECK(sublist_num_nodes(sl) == 5);
    CHECK(sublist_remove(sl, "a.b.>", NULL, &it[3]) == 0);
    CHECK(sublist_num_nodes(sl) == 3); /* a, *, c */
    CHECK(sublist_remove(sl, "a.*.c", "grp", &it[2]) == 0);
    CHECK(sublist_num_nodes(sl) == 0);
    CHECK(count_of(sl, "a.b.c") == 0);

    sublist_stats st;
    sublist_get_stats(sl, &st);
    CHECK(st.num_subs == 0 && st.num_inserts == 5 && st.num_removes == 5);
    for (int i = 0; i < 8; i++)
        CHECK(refs_of(&it[i]) == 0);

    /* many siblings at one level: exercises the level hash table growth and
     * backward-shift deletion in every removal order */
    enum { N = 300 };
    static titem many[N];
    char buf[64];
    for (int i = 0; i < N; i++) {
        atomic_store(&many[i].refs, 0);
        many[i].id = i;
        snprintf(buf, sizeof buf, "lvl.t%d.end", i);
        CHECK(sublist_insert(sl, buf, NULL, &many[i]) == 0);
    }
    CHECK(sublist_num_nodes(sl) == 1 + 2 * N);
    for (int i = 0; i < N; i++) {
        snprintf(buf, sizeof buf, "lvl.t%d.end", i);
        sublist_result *r = M(sl, buf);
        CHECK(r->npsubs == 1 && r->psubs[0] == &many[i]);
        sublist_result_release(r);
    }
    for (int k = 0; k < N; k++) {
        int i = (k * 7) % N; /* 7 is coprime with 300 */
        snprintf(buf, sizeof buf, "lvl.t%d.end", i);
        CHECK(sublist_remove(sl, buf, NULL, &many[i]) == 0);
        if (k % 37 == 0) {
            for (int j = 0; j < N; j++) {
                snprintf(buf, sizeof buf, "lvl.t%d.end", j);
                bool removed = false;
                for (int m = 0; m <= k; m++)
                    if ((m * 7) % N == j)
                        removed = true;
                CHECK(match_has(sl, buf, &many[j]) == !removed);
            }
        }
    }
    CHECK(sublist_num_nodes(sl) == 0);
    sublist_free(sl);
    for (int i = 0; i < N; i++)
        CHECK(refs_of(&many[i]) == 0);
    CHECK(atomic_load(&g_live_refs) == 0);
}

static void test_refcounts(void)
{
    titem a = {0}, b = {0}, c = {0};
    sublist *sl = sublist_new(item_retain, item_release);
    CHECK(sublist_insert(sl, "r.x", NULL, &a) == 0);
    CHECK(sublist_insert(sl, "r.*", "q", &b) == 0);
    CHECK(sublist_insert(sl, "r.>", NULL, &c) == 0);
    CHECK(refs_of(&a) == 1 && refs_of(&b) == 1 && refs_of(&c) == 1);

    sublist_result *r1 = M(sl, "r.x"); /* miss: cache 1 + caller 1 */
    sublist_result *r2 = M(sl, "r.x"); /* hit: same result */
    CHECK(r1 == r2);
    CHECK(atomic_load(&r1->refs) == 3);
    CHECK(refs_of(&a) == 2); /* sublist + one result */

    /* the result outlives removal of its items */
    CHECK(sublist_remove(sl, "r.x", NULL, &a) == 0);
    CHECK(sublist_remove(sl, "r.*", "q", &b) == 0);
    CHECK(refs_of(&a) == 1 && refs_of(&b) == 1);
    CHECK(atomic_load(&r1->refs) == 2); /* cache entry invalidated */
    CHECK(r1->npsubs == 2 && has_psub(r1, &a) && has_psub(r1, &c));
    CHECK(r1->nqsubs == 1 && r1->qsubs[0].items[0] == &b);

    sublist_result *r3 = M(sl, "r.x");
    CHECK(r3 != r1 && r3->npsubs == 1 && r3->psubs[0] == &c && r3->nqsubs == 0);
    CHECK(refs_of(&c) == 3); /* sublist, r1, r3 */

    sublist_result_release(r1);
    CHECK(refs_of(&a) == 1);
    sublist_result_release(r2);
    CHECK(refs_of(&a) == 0 && refs_of(&b) == 0);

    /* results outlive the sublist itself */
    sublist_free(sl);
    CHECK(refs_of(&c) == 1); /* only r3 */
    CHECK(r3->psubs[0] == &c);
    sublist_result_release(r3);
    CHECK(refs_of(&c) == 0);
    CHECK(atomic_load(&g_live_refs) == 0);

    /* NULL-safety */
    sublist_result_release(NULL);
    sublist_free(NULL);
}

static void test_cache_invalidation(void)
{
    titem it[6] = {0};
    sublist *sl = sublist_new(item_retain, item_release);
    sublist_stats st;

    CHECK(count_of(sl, "foo.bar") == 0);
    CHECK(count_of(sl, "other.subject") == 0);
    CHECK(count_of(sl, "foo.baz.qux") == 0);
    sublist_get_stats(sl, &st);
    CHECK(st.num_cache == 3);

    /* insert a matching wildcard: the next match sees it */
    CHECK(sublist_insert(sl, "foo.*", NULL, &it[0]) == 0);
    sublist_get_stats(sl, &st);
    CHECK(st.num_cache == 2); /* only foo.bar was dropped */
    CHECK(match_has(sl, "foo.bar", &it[0]));

    /* a '>' subscription invalidates deeper subjects too */
    CHECK(sublist_insert(sl, "foo.>", NULL, &it[1]) == 0);
    CHECK(match_has(sl, "foo.baz.qux", &it[1]));
    CHECK(match_has(sl, "foo.bar", &it[1]));
    CHECK(match_has(sl, "foo.bar", &it[0]));

    /* unrelated insert keeps the cached entries (hits keep coming) */
    sublist_get_stats(sl, &st);
    uint64_t n_cache = st.num_cache, hits = st.cache_hits;
    CHECK(sublist_insert(sl, "unrelated.x", NULL, &it[2]) == 0);
    CHECK(sublist_insert(sl, "*.y", NULL, &it[3]) == 0);
    sublist_get_stats(sl, &st);
    CHECK(st.num_cache == n_cache);
    CHECK(count_of(sl, "foo.bar") == 2);
    sublist_get_stats(sl, &st);
    CHECK(st.cache_hits == hits + 1);

    /* literal insert invalidates exactly that subject */
    CHECK(sublist_insert(sl, "foo.bar", "q", &it[4]) == 0);
    sublist_result *r = M(sl, "foo.bar");
    CHECK(has_qsub(r, "q", &it[4]) && r->npsubs == 2);
    sublist_result_release(r);

    /* remove: the next match no longer sees it */
    CHECK(sublist_remove(sl, "foo.*", NULL, &it[0]) == 0);
    CHECK(!match_has(sl, "foo.bar", &it[0]));
    CHECK(match_has(sl, "foo.bar", &it[1]));
    CHECK(sublist_remove(sl, "foo.>", NULL, &it[1]) == 0);
    CHECK(!match_has(sl, "foo.bar", &it[1]));
    CHECK(count_of(sl, "foo.baz.qux") == 0);
    CHECK(sublist_remove(sl, "foo.bar", "q", &it[4]) == 0);
    CHECK(count_of(sl, "foo.bar") == 0);

    /* '>' at the root invalidates everything */
    CHECK(count_of(sl, "a") == 0);
    CHECK(count_of(sl, "a.b.c.d") == 0);
    CHECK(sublist_insert(sl, ">", NULL, &it[5]) == 0);
    sublist_get_stats(sl, &st);
    CHECK(st.num_cache == 0);
    CHECK(match_has(sl, "a", &it[5]) && match_has(sl, "a.b.c.d", &it[5]));

    sublist_free(sl);
    for (int i = 0; i < 6; i++)
        CHECK(refs_of(&it[i]) == 0);
}

static void test_cache_limit(void)
{
    titem it = {0};
    sublist *sl = sublist_new(item_retain, item_release);
    CHECK(sublist_insert(sl, "c.>", NULL, &it) == 0);
    sublist_stats st;
    char buf[64];
    sublist_result *held = M(sl, "c.0");

    for (int i = 1; i < 1024; i++) {
        snprintf(buf, sizeof buf, "c.%d", i);
        sublist_result_release(M(sl, buf));
    }
    sublist_get_stats(sl, &st);
    CHECK(st.num_cache == 1024);
    CHECK(refs_of(&it) == 1 + 1024); /* sublist + one per cached result (held is one) */

    /* one more goes over the limit: swept down to 256, including the new one */
    sublist_result_release(M(sl, "c.new"));
    sublist_get_stats(sl, &st);
    CHECK(st.num_cache == 256);
    int refs_after = refs_of(&it);
    uint64_t hits = st.cache_hits;
    sublist_result_release(M(sl, "c.0")); /* was `held` kept by the sweep? */
    sublist_get_stats(sl, &st);
    bool held_kept = st.cache_hits == hits + 1;
    CHECK(refs_after == 1 + 256 + (held_kept ? 0 : 1));
    hits = st.cache_hits;
    sublist_result_release(M(sl, "c.new"));
    sublist_get_stats(sl, &st);
    CHECK(st.cache_hits == hits + 1);

    /* the held result stays valid whether or not it was evicted */
    CHECK(held->npsubs == 1 && held->psubs[0] == &it);

    /* and the cache keeps working: fill past the limit again */
    for (int i = 0; i < 5000; i++) {
        snprintf(buf, sizeof buf, "c.x.%d", i);
        sublist_result *r = M(sl, buf);
        CHECK(r->npsubs == 1);
        sublist_result_release(r);
        sublist_get_stats(sl, &st);
        CHECK(st.num_cache >= 1 && st.num_cache <= 1024);
    }
    /* invalidation of a populated cache empties it */
    CHECK(sublist_remove(sl, "c.>", NULL, &it) == 0);
    sublist_get_stats(sl, &st);
    CHECK(st.num_cache == 0);
    CHECK(refs_of(&it) == 1); /* only `held` */
    sublist_result_release(held);
    CHECK(refs_of(&it) == 0);
    sublist_free(sl);
    CHECK(atomic_load(&g_live_refs) == 0);
}

/* ---- stress ------------------------------------------------------------------ */

#define NTHREADS 4
#define ITEMS_PER_THREAD 8

typedef struct stress_ctx {
    sublist *sl;
    int tid;
    titem items[ITEMS_PER_THREAD];
    long iters;
    long failures;
} stress_ctx;

static atomic_int g_stop;

static const struct {
    const char *pat;
    const char *lit; /* a literal that pat matches */
} g_pats[] = {
    {"s.a.b", "s.a.b"},   {"s.*.b", "s.x.b"},   {"s.a.*", "s.a.c"},   {"s.>", "s.q.r.t"},
    {"*.a.b", "s.a.b"},   {">", "s.a.b"},       {"t.u", "t.u"},       {"*.*", "t.u"},
    {"s.a.>", "s.a.b.c"}, {"*.a.*", "s.a.zz"}, {"t.*", "t.v"},       {"s.a.b.c", "s.a.b.c"},
};
static const char *g_lits[] = {"s.a.b", "s.x.b", "s.a.c", "s.q.r.t", "t.u",
                               "t.v",   "s.a.b.c", "s.a.zz", "zz", "s.a"};

static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void *stress_thread(void *arg)
{
    stress_ctx *c = arg;
    uint32_t seed = 0x9e3779b9u * (uint32_t)(c->tid + 1);
    const size_t npats = sizeof(g_pats) / sizeof(g_pats[0]);
    const size_t nlits = sizeof(g_lits) / sizeof(g_lits[0]);
    const long max_iters = 200000;
    double deadline = now_sec() + 1.0;
    char qname[16];
    snprintf(qname, sizeof qname, "q%d", c->tid % 2);

    for (long it = 0; it < max_iters; it++) {
        if ((it & 255) == 0 && (now_sec() > deadline || atomic_load(&g_stop)))
            break;
        c->iters++;
        titem *item = &c->items[rnd(&seed) % ITEMS_PER_THREAD];
        size_t pi = rnd(&seed) % npats;
        bool queued = (rnd(&seed) & 3) == 0;
        const char *q = queued ? qname : NULL;

        if (sublist_insert(c->sl, g_pats[pi].pat, q, item) != 0) {
            c->failures++;
            continue;
        }
        /* our own insert must be visible right after it returned ... */
        sublist_result *r = M(c->sl, g_pats[pi].lit);
        bool seen = queued ? has_qsub(r, qname, item) : has_psub(r, item);
        if (!seen)
            c->failures++;
        sublist_result_release(r);

        /* ... some unrelated matches meanwhile, holding results across calls ... */
        sublist_result *keep = M(c->sl, g_lits[rnd(&seed) % nlits]);
        for (int k = 0; k < 3; k++)
            sublist_result_release(M(c->sl, g_lits[rnd(&seed) % nlits]));

        if (sublist_remove(c->sl, g_pats[pi].pat, q, item) != 0)
            c->failures++;
        /* ... and our own remove must be visible right after it returned. An item is
         * used by one pattern at a time, so it must be gone from every result. */
        r = M(c->sl, g_pats[pi].lit);
        seen = queued ? has_qsub(r, qname, item) : has_psub(r, item);
        if (seen)
            c->failures++;
        sublist_result_release(r);
        /* the held result is still readable */
        for (size_t i = 0; i < keep->npsubs; i++)
            if (((titem *)keep->psubs[i])->id < 0)
                c->failures++;
        sublist_result_release(keep);

        /* occasionally churn many distinct subjects through the cache (sweeps) */
        if ((it % 512) == 0) {
            char buf[48];
            for (int k = 0; k < 300; k++) {
                snprintf(buf, sizeof buf, "s.a.%d.%d", c->tid, (int)(rnd(&seed) % 5000));
                sublist_result_release(M(c->sl, buf));
            }
        }
    }
    return NULL;
}

static void test_stress(void)
{
    sublist *sl = sublist_new(item_retain, item_release);
    /* some permanent subscriptions so results are never trivially empty */
    static titem perm[4];
    CHECK(sublist_insert(sl, "s.>", NULL, &perm[0]) == 0);
    CHECK(sublist_insert(sl, "t.*", "pq", &perm[1]) == 0);
    CHECK(sublist_insert(sl, "s.a.b", NULL, &perm[2]) == 0);
    CHECK(sublist_insert(sl, "*.*", NULL, &perm[3]) == 0);

    static stress_ctx ctx[NTHREADS];
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        memset(&ctx[i], 0, sizeof ctx[i]);
        ctx[i].sl = sl;
        ctx[i].tid = i;
        for (int k = 0; k < ITEMS_PER_THREAD; k++)
            ctx[i].items[k].id = i * 100 + k;
    }
    double t0 = now_sec();
    for (int i = 0; i < NTHREADS; i++)
        CHECK(pthread_create(&th[i], NULL, stress_thread, &ctx[i]) == 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    double dt = now_sec() - t0;
    long total = 0;
    for (int i = 0; i < NTHREADS; i++) {
        CHECK(ctx[i].failures == 0);
        CHECK(ctx[i].iters > 0);
        total += ctx[i].iters;
    }
    printf("sublist: stress %d threads, %ld insert/match/remove rounds in %.2fs\n", NTHREADS,
           total, dt);

    sublist_stats st;
    sublist_get_stats(sl, &st);
    CHECK(st.num_subs == 4);
    CHECK(st.num_inserts == st.num_removes + 4);
    CHECK(st.num_cache <= 1024);
    CHECK(sublist_num_nodes(sl) > 0);
    for (int i = 0; i < NTHREADS; i++)
        for (int k = 0; k < ITEMS_PER_THREAD; k++)
            CHECK(refs_of(&ctx[i].items[k]) == 0);
    sublist_free(sl);
    for (int i = 0; i < 4; i++)
        CHECK(refs_of(&perm[i]) == 0);
    CHECK(atomic_load(&g_live_refs) == 0);
}

/* ---- throughput (informational) ------------------------------------------------ */

typedef struct hit_arg {
    sublist *sl;
    const char *subj;
    size_t len;
    long n;
} hit_arg;

static void *hit_thread(void *arg)
{
    hit_arg *a = arg;
    for (long i = 0; i < a->n; i++)
        sublist_result_release(sublist_match(a->sl, a->subj, a->len));
    return NULL;
}

static void bench_hit(void)
{
    static titem it[4];
    sublist *sl = sublist_new(item_retain, item_release);
    CHECK(sublist_insert(sl, "orders.eu.created", NULL, &it[0]) == 0);
    CHECK(sublist_insert(sl, "orders.*.created", NULL, &it[1]) == 0);
    CHECK(sublist_insert(sl, "orders.>", "workers", &it[2]) == 0);
    const char *subj = "orders.eu.created";
    size_t len = strlen(subj);
    sublist_result_release(sublist_match(sl, subj, len)); /* warm the cache */

    const long n = 2000000;
    double t0 = now_sec();
    size_t sink = 0;
    for (long i = 0; i < n; i++) {
        sublist_result *r = sublist_match(sl, subj, len);
        sink += r->npsubs;
        sublist_result_release(r);
    }
    double dt = now_sec() - t0;
    CHECK(sink == (size_t)n * 2);
    printf("sublist: cache-hit match+release %.1f ns/op (%.1f M/s, informational)\n",
           dt * 1e9 / (double)n, (double)n / dt / 1e6);

    /* the same hit from NTHREADS threads at once (shared mutex and refcount) */
    pthread_t th[NTHREADS];
    hit_arg ha = {sl, subj, len, n / 4};
    t0 = now_sec();
    for (int i = 0; i < NTHREADS; i++)
        CHECK(pthread_create(&th[i], NULL, hit_thread, &ha) == 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    dt = now_sec() - t0;
    printf("sublist: cache-hit match+release, %d threads: %.1f M/s aggregate (informational)\n",
           NTHREADS, (double)(ha.n * NTHREADS) / dt / 1e6);

    /* miss path for comparison: a sublist whose cache is bypassed by distinct subjects */
    char buf[64];
    const long m = 200000;
    t0 = now_sec();
    for (long i = 0; i < m; i++) {
        snprintf(buf, sizeof buf, "orders.r%ld.created", i);
        sublist_result_release(M(sl, buf));
    }
    dt = now_sec() - t0;
    printf("sublist: cache-miss match %.1f ns/op (incl. snprintf, informational)\n",
           dt * 1e9 / (double)m);
    sublist_free(sl);
}

int main(void)
{
    test_validation();
    test_subject_matches();
    test_basic_match();
    test_queues();
    test_remove_prune_visit();
    test_refcounts();
    test_cache_invalidation();
    test_cache_limit();
    test_stress();
    bench_hit();
    CHECK(atomic_load(&g_live_refs) == 0);
    printf("sublist: %d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
