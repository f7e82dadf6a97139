/* Unit tests for the message store (core/src/store.h): both backends for every
 * operation, limits and discard policies, expiry, restart, the index, torn tails,
 * corrupt records, simulated power loss with concurrent appenders, erase, I/O failure
 * and a 100k-message restart. */
#define _GNU_SOURCE
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ember.h"

static int g_passed, g_failed;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            g_passed++;                                                              \
        } else {                                                                     \
            g_failed++;                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            fprintf(stderr, "store: %d passed, %d failed\n", g_passed, g_failed);    \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- helpers ------------------------------------------------------------------- */

static storeio *g_io; /* the memory I/O for file stores */
static store_recovery g_rep;

static void on_rec(void *ud, const store_recovery *r) { g_rep = *r; }

static store_config cfg_of(store_kind kind, const char *dir)
{
    store_config c = {0};
    c.kind = kind;
    c.name = "T";
    c.dir = dir;
    c.io = g_io;
    c.on_recover = on_rec;
    c.block_size = 4096; /* many blocks, exercise rotation */
    return c;
}

static store *open_kind(store_kind kind, const char *dir, const store_limits *lim)
{
    store_config c = cfg_of(kind, dir);
    if (lim)
        c.limits = *lim;
    store *st = NULL;
    int rc = store_open(&c, &st);
    if (rc != 0)
        fprintf(stderr, "open: %d %s\n", rc, ember_last_error());
    CHECK(rc == 0 && st);
    return st;
}

static uint64_t put(store *st, const char *subj, const char *data, int64_t ts)
{
    uint64_t seq = 0;
    int rc = store_append(st, subj, strlen(subj), NULL, 0, data, strlen(data), ts, 0, &seq);
    CHECK(rc == 0);
    return seq;
}

static bool has_msg(store *st, uint64_t seq, const char *subj, const char *data)
{
    store_msg *m = NULL;
    if (store_load(st, seq, &m) != 0)
        return false;
    bool ok = m->seq == seq && m->subj_len == strlen(subj) &&
              memcmp(m->subj, subj, m->subj_len) == 0 && m->data_len == strlen(data) &&
              memcmp(m->data, data, m->data_len) == 0 && m->data[m->data_len] == 0;
    store_msg_release(m);
    return ok;
}

static const char *kname(store_kind k) { return k == STORE_MEMORY ? "memory" : "file"; }

/* ---- basic operations, both backends -------------------------------------------- */

static void test_basic(store_kind kind)
{
    store *st = open_kind(kind, "/b", NULL);
    store_state s;
    store_get_state(st, &s);
    CHECK(s.msgs == 0 && s.first_seq == 1 && s.last_seq == 0);

    CHECK(put(st, "a.1", "one", 100) == 1);
    CHECK(put(st, "a.2", "two", 200) == 2);
    CHECK(put(st, "b.1", "three", 300) == 3);
    CHECK(put(st, "a.1", "four", 400) == 4);
    uint64_t seq;
    const char hdr[] = "NATS/1.0\r\nX: y\r\n\r\n";
    CHECK(store_append(st, "$O.b.M.xyz", 10, hdr, sizeof hdr - 1, "meta", 4, 500, 0, &seq) ==
          0 && seq == 5);
    store_msg *m;
    CHECK(store_load(st, 5, &m) == 0);
    CHECK(m->hdr_len == sizeof hdr - 1 && memcmp(m->hdr, hdr, m->hdr_len) == 0);
    CHECK(m->ts == 500 && m->data_len == 4);
    store_msg_release(m);
    CHECK(has_msg(st, 1, "a.1", "one") && has_msg(st, 4, "a.1", "four"));
    CHECK(store_load(st, 6, &m) == EMBER_ENOTFOUND);
    CHECK(store_load(st, 0, &m) == EMBER_ENOTFOUND);

    store_get_state(st, &s);
    CHECK(s.msgs == 5 && s.first_seq == 1 && s.last_seq == 5 && s.first_ts == 100 &&
          s.last_ts == 500 && s.num_subjects == 4 && s.num_deleted == 0);
    CHECK(s.bytes == store_msg_size(kind, 3, 0, 3) + store_msg_size(kind, 3, 0, 3) +
                         store_msg_size(kind, 3, 0, 5) + store_msg_size(kind, 3, 0, 4) +
                         store_msg_size(kind, 10, sizeof hdr - 1, 4));

    /* last by subject, literal and wildcard */
    CHECK(store_load_last(st, "a.1", &m) == 0 && m->seq == 4);
    store_msg_release(m);
    CHECK(store_load_last(st, "a.*", &m) == 0 && m->seq == 4);
    store_msg_release(m);
    CHECK(store_load_last(st, "$O.b.M.>", &m) == 0 && m->seq == 5);
    store_msg_release(m);
    CHECK(store_load_last(st, ">", &m) == 0 && m->seq == 5);
    store_msg_release(m);
    CHECK(store_load_last(st, "c.>", &m) == EMBER_ENOTFOUND);
    CHECK(store_load_last(st, "b.1", &m) == 0 && m->seq == 3);
    store_msg_release(m);

    /* next matching */
    CHECK(store_load_next(st, "a.*", 2, &m) == 0 && m->seq == 2);
    store_msg_release(m);
    CHECK(store_load_next(st, "a.1", 2, &m) == 0 && m->seq == 4);
    store_msg_release(m);
    CHECK(store_load_next(st, "b.*", 4, &m) == EMBER_ENOTFOUND);
    CHECK(store_load_next(st, NULL, 0, &m) == 0 && m->seq == 1);
    store_msg_release(m);
    CHECK(store_load_next(st, ">", 6, &m) == EMBER_ENOTFOUND);

    /* counts */
    CHECK(store_num_pending(st, NULL, 0) == 5);
    CHECK(store_num_pending(st, "a.*", 0) == 3);
    CHECK(store_num_pending(st, "a.*", 3) == 1);
    CHECK(store_num_pending(st, "a.1", 2) == 1);
    CHECK(store_num_pending(st, "a.1", 1) == 2);
    CHECK(store_num_pending(st, ">", 4) == 2);
    CHECK(store_num_pending(st, "*.1", 2) == 2);
    CHECK(store_subject_count(st, "a.1") == 2 && store_subject_count(st, "zz") == 0);
    store_subject_state *ss;
    size_t n;
    CHECK(store_subjects_state(st, "a.>", &ss, &n) == 0 && n == 2);
    CHECK(strcmp(ss[0].subject, "a.1") == 0 && ss[0].msgs == 2 && ss[0].first_seq == 1 &&
          ss[0].last_seq == 4);
    CHECK(strcmp(ss[1].subject, "a.2") == 0 && ss[1].msgs == 1);
    free(ss);
    CHECK(store_subjects_state(st, NULL, &ss, &n) == 0 && n == 4);
    free(ss);

    /* remove */
    CHECK(store_remove(st, 2, false) == 0);
    CHECK(store_remove(st, 2, false) == EMBER_ENOTFOUND);
    store_get_state(st, &s);
    CHECK(s.msgs == 4 && s.num_deleted == 1 && s.num_subjects == 3);
    CHECK(store_load_next(st, "a.*", 2, &m) == 0 && m->seq == 4);
    store_msg_release(m);
    CHECK(store_remove(st, 1, true) == 0); /* the first: first_seq moves */
    store_get_state(st, &s);
    CHECK(s.msgs == 3 && s.first_seq == 3 && s.first_ts == 300 && s.num_deleted == 0);

    /* skip consumes a sequence */
    CHECK(store_skip(st, &seq) == 0 && seq == 6);
    CHECK(put(st, "c.1", "x", 600) == 7);
    store_get_state(st, &s);
    CHECK(s.last_seq == 7 && s.num_deleted == 1);

    /* purge with a filter, keep, up-to */
    for (int i = 0; i < 6; i++)
        put(st, "k.v", "h", 700 + i); /* 8..13 */
    uint64_t purged;
    CHECK(store_purge(st, "k.v", 0, 2, &purged) == 0 && purged == 4);
    CHECK(store_subject_count(st, "k.v") == 2);
    CHECK(store_load_last(st, "k.v", &m) == 0 && m->seq == 13);
    store_msg_release(m);
    CHECK(store_purge(st, "k.*", 13, 0, &purged) == 0 && purged == 1); /* seq 12 only */
    CHECK(store_subject_count(st, "k.v") == 1);
    CHECK(store_purge(st, "a.>", 0, 0, &purged) == 0 && purged == 1);
    CHECK(store_purge(st, "bad..subj", 0, 0, &purged) == EMBER_EINVAL);
    store_get_state(st, &s);
    CHECK(s.msgs == 4); /* 3 b.1, 5 $O, 7 c.1, 13 k.v */

    /* compact and truncate */
    CHECK(store_compact(st, 6, &purged) == 0 && purged == 2);
    store_get_state(st, &s);
    CHECK(s.first_seq == 7 && s.msgs == 2);
    CHECK(store_truncate(st, 10) == 0);
    store_get_state(st, &s);
    CHECK(s.last_seq == 10 && s.msgs == 1 && s.last_ts == 600);
    CHECK(put(st, "d", "after", 800) == 11);

    /* full purge keeps the sequence */
    CHECK(store_purge(st, NULL, 0, 0, &purged) == 0 && purged == 2);
    store_get_state(st, &s);
    CHECK(s.msgs == 0 && s.first_seq == 12 && s.last_seq == 11 && s.num_subjects == 0);
    CHECK(put(st, "e", "x", 900) == 12);
    CHECK(store_compact(st, 100, &purged) == 0 && purged == 1);
    store_get_state(st, &s);
    CHECK(s.msgs == 0 && s.first_seq == 100 && s.last_seq == 99);
    CHECK(put(st, "e", "y", 901) == 100);

    /* durability callbacks on both */
    CHECK(store_flush(st) == 0);
    CHECK(store_close(st) == 0);
    fprintf(stderr, "  basic (%s) ok\n", kname(kind));
}

/* ---- limits ------------------------------------------------------------------- */

static void test_limits(store_kind kind)
{
    store_limits lim = {.max_msgs = 3};
    store *st = open_kind(kind, "/l1", &lim);
    for (int i = 0; i < 5; i++)
        put(st, "x", "d", i);
    store_state s;
    store_get_state(st, &s);
    CHECK(s.msgs == 3 && s.first_seq == 3 && s.last_seq == 5);
    store_delete(st);

    uint64_t one = store_msg_size(kind, 1, 0, 10);
    lim = (store_limits){.max_bytes = (int64_t)(one * 2)};
    st = open_kind(kind, "/l2", &lim);
    for (int i = 0; i < 4; i++)
        put(st, "x", "0123456789", i);
    store_get_state(st, &s);
    CHECK(s.msgs == 2 && s.bytes == one * 2 && s.first_seq == 3);
    store_delete(st);

    /* per subject (KV history) */
    lim = (store_limits){.max_msgs_per_subject = 2};
    st = open_kind(kind, "/l3", &lim);
    put(st, "k.a", "1", 1);
    put(st, "k.b", "1", 2);
    put(st, "k.a", "2", 3);
    put(st, "k.a", "3", 4);
    CHECK(store_subject_count(st, "k.a") == 2 && store_subject_count(st, "k.b") == 1);
    store_msg *m;
    CHECK(store_load(st, 1, &m) == EMBER_ENOTFOUND);
    CHECK(store_load_next(st, "k.a", 0, &m) == 0 && m->seq == 3);
    store_msg_release(m);
    /* lowering the limit enforces at once */
    lim.max_msgs_per_subject = 1;
    CHECK(store_update_limits(st, &lim) == 0);
    CHECK(store_subject_count(st, "k.a") == 1);
    store_delete(st);

    /* discard new */
    lim = (store_limits){.max_msgs = 2, .discard = STORE_DISCARD_NEW};
    st = open_kind(kind, "/l4", &lim);
    put(st, "x", "a", 1);
    put(st, "y", "a", 2);
    uint64_t seq;
    CHECK(store_append(st, "z", 1, NULL, 0, "a", 1, 3, 0, &seq) == STORE_EMAXMSGS);
    store_get_state(st, &s);
    CHECK(s.msgs == 2 && s.last_seq == 2);
    store_delete(st);

    lim = (store_limits){.max_bytes = (int64_t)(one * 2 + 1), .discard = STORE_DISCARD_NEW};
    st = open_kind(kind, "/l5", &lim);
    put(st, "x", "0123456789", 1);
    put(st, "x", "0123456789", 2);
    CHECK(store_append(st, "x", 1, NULL, 0, "0123456789", 10, 3, 0, &seq) == STORE_EMAXBYTES);
    store_delete(st);

    /* discard new with a per-subject limit: the subject's oldest still goes */
    lim = (store_limits){.max_msgs = 2, .max_msgs_per_subject = 1, .discard = STORE_DISCARD_NEW};
    st = open_kind(kind, "/l6", &lim);
    put(st, "k.a", "1", 1);
    put(st, "k.b", "1", 2);
    CHECK(put(st, "k.a", "2", 3) == 3); /* replaces k.a */
    CHECK(store_append(st, "k.c", 3, NULL, 0, "1", 1, 4, 0, &seq) == STORE_EMAXMSGS);
    store_delete(st);
    lim = (store_limits){.max_msgs_per_subject = 1, .discard = STORE_DISCARD_NEW,
                         .discard_new_per_subject = true};
    st = open_kind(kind, "/l7", &lim);
    put(st, "k.a", "1", 1);
    CHECK(store_append(st, "k.a", 3, NULL, 0, "2", 1, 2, 0, &seq) == STORE_EMAXMSGSPERSUBJ);
    store_delete(st);

    lim = (store_limits){.max_msg_size = 4};
    st = open_kind(kind, "/l8", &lim);
    CHECK(store_append(st, "x", 1, NULL, 0, "12345", 5, 1, 0, &seq) == STORE_EMSGSIZE);
    CHECK(store_append(st, "x", 1, NULL, 0, "1234", 4, 1, 0, &seq) == 0);
    CHECK(store_append(st, "x", 1, NULL, 0, "1", 1, 1, -5, &seq) == STORE_EBADTTL);
    CHECK(store_append(st, "", 0, NULL, 0, "1", 1, 1, 0, &seq) == EMBER_EINVAL);
    store_delete(st);
    fprintf(stderr, "  limits (%s) ok\n", kname(kind));
}

/* ---- expiry ------------------------------------------------------------------- */

static void test_expiry(store_kind kind)
{
    store_limits lim = {.max_age_ns = 1000};
    store *st = open_kind(kind, "/e", &lim);
    put(st, "a", "1", 100);
    put(st, "a", "2", 200);
    uint64_t seq;
    CHECK(store_append(st, "t", 1, NULL, 0, "ttl", 3, 300, 50, &seq) == 0 && seq == 3);
    put(st, "a", "4", 400);
    CHECK(store_next_expiry(st) == 350);
    CHECK(store_expire(st, 349) == 0);
    CHECK(store_expire(st, 350) == 1); /* the TTL one */
    store_msg *m;
    CHECK(store_load(st, 3, &m) == EMBER_ENOTFOUND);
    CHECK(store_next_expiry(st) == 1100);
    CHECK(store_expire(st, 1250) == 2); /* ts 100 and 200 */
    store_state s;
    store_get_state(st, &s);
    CHECK(s.msgs == 1 && s.first_seq == 4);
    CHECK(store_expire(st, 1400) == 1);
    store_get_state(st, &s);
    CHECK(s.msgs == 0 && s.first_seq == 5 && s.last_seq == 4);
    CHECK(store_next_expiry(st) == 0);
    /* a TTL'd message removed before it expires leaves a stale heap entry: harmless */
    CHECK(store_append(st, "t", 1, NULL, 0, "x", 1, 2000, 10, &seq) == 0);
    CHECK(store_remove(st, seq, false) == 0);
    CHECK(store_expire(st, 5000) == 0);
    store_delete(st);
    fprintf(stderr, "  expiry (%s) ok\n", kname(kind));
}

/* ---- restart ------------------------------------------------------------------ */

static void test_restart(void)
{
    store *st = open_kind(STORE_FILE, "/r", NULL);
    char data[64];
    for (int i = 1; i <= 200; i++) {
        snprintf(data, sizeof data, "payload-%d", i);
        put(st, i % 3 ? "r.a" : "r.b", data, i);
    }
    uint64_t seq;
    CHECK(store_append(st, "r.ttl", 5, NULL, 0, "x", 1, 500, 1000, &seq) == 0 && seq == 201);
    CHECK(store_remove(st, 10, false) == 0);
    CHECK(store_remove(st, 150, true) == 0);
    uint64_t purged;
    CHECK(store_compact(st, 5, &purged) == 0 && purged == 4);
    store_state before;
    store_get_state(st, &before);
    CHECK(store_close(st) == 0);

    for (int round = 0; round < 3; round++) {
        if (round == 1) /* without the index: a rebuild from the blocks */
            CHECK(g_io->unlink(g_io, "/r/index.idx") == 0);
        if (round == 2) { /* a stale index: the last block grew after it was written */
            st = open_kind(STORE_FILE, "/r", NULL);
            CHECK(store_remove(st, 20, false) == 0);
            CHECK(put(st, "r.c", "new", 600) == 202);
            store_get_state(st, &before);
            store_abandon(st); /* no index written; everything was flushed? no: flush */
            st = open_kind(STORE_FILE, "/r", NULL);
            store_abandon(st);
        }
        st = open_kind(STORE_FILE, "/r", NULL);
        if (round == 0)
            CHECK(g_rep.used_index && !g_rep.rebuilt);
        if (round == 1)
            CHECK(!g_rep.used_index && g_rep.rebuilt);
        store_state after;
        store_get_state(st, &after);
        if (round < 2) {
            CHECK(memcmp(&before, &after, sizeof before) == 0);
            CHECK(!has_msg(st, 10, "r.b", "payload-10") && !has_msg(st, 150, "r.a", ""));
            CHECK(has_msg(st, 11, "r.a", "payload-11") && has_msg(st, 200, "r.a", "payload-200"));
            CHECK(store_subject_count(st, "r.b") == before.msgs - store_subject_count(st, "r.a") - 1);
            /* the TTL survives */
            CHECK(store_next_expiry(st) == 1500);
        } else {
            /* abandoned opens: what was appended before the abandon may or may not be
             * there (not flushed), but the state is consistent */
            CHECK(after.last_seq >= 201 && after.first_seq == 5);
        }
        CHECK(store_close(st) == 0);
    }

    /* a purged store keeps its sequence across restarts, also with no index */
    st = open_kind(STORE_FILE, "/r2", NULL);
    for (int i = 0; i < 300; i++)
        put(st, "p", "0123456789012345678901234567890123456789", i);
    CHECK(store_purge(st, NULL, 0, 0, &purged) == 0 && purged == 300);
    CHECK(store_skip(st, &seq) == 0 && seq == 301);
    CHECK(store_close(st) == 0);
    CHECK(g_io->unlink(g_io, "/r2/index.idx") == 0);
    st = open_kind(STORE_FILE, "/r2", NULL);
    store_state s;
    store_get_state(st, &s);
    CHECK(s.msgs == 0 && s.last_seq == 301 && s.first_seq == 302);
    CHECK(put(st, "p", "x", 1) == 302);
    CHECK(store_close(st) == 0);

    /* a configured first sequence */
    store_config c = cfg_of(STORE_FILE, "/r3");
    c.first_seq = 1000;
    CHECK(store_open(&c, &st) == 0);
    CHECK(put(st, "f", "x", 1) == 1000);
    store_abandon(st);
    CHECK(store_open(&c, &st) == 0);
    store_get_state(st, &s);
    CHECK(s.last_seq <= 1000 && s.first_seq >= 1000 - 0); /* unflushed may be lost */
    CHECK(put(st, "f", "y", 2) == s.last_seq + 1);
    CHECK(store_close(st) == 0);
    fprintf(stderr, "  restart ok\n");
}

/* ---- torn tail, corrupt middle -------------------------------------------------- */

static int64_t find_bytes(const char *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0)
            return (int64_t)i;
    return -1;
}

static void test_torn_and_corrupt(void)
{
    store_config c = cfg_of(STORE_FILE, "/t");
    c.block_size = 1 << 20;
    store *st;
    CHECK(store_open(&c, &st) == 0);
    char data[64];
    for (int i = 1; i <= 50; i++) {
        snprintf(data, sizeof data, "msg-%03d-body", i);
        put(st, "t.x", data, i);
    }
    CHECK(store_close(st) == 0);
    CHECK(g_io->unlink(g_io, "/t/index.idx") == 0);

    /* torn tail: a partial record appended */
    void *buf;
    size_t n;
    CHECK(storeio_mem_get(g_io, "/t/blk/1.blk", &buf, &n) == 0);
    char *nb = malloc(n + 30);
    memcpy(nb, buf, n);
    memcpy(nb + n, buf, 30); /* the start of a record, cut short */
    CHECK(storeio_mem_put(g_io, "/t/blk/1.blk", nb, n + 30) == 0);
    CHECK(store_open(&c, &st) == 0);
    CHECK(g_rep.truncated_bytes == 30 && g_rep.corrupt_records == 0);
    store_state s;
    store_get_state(st, &s);
    CHECK(s.msgs == 50);
    CHECK(put(st, "t.x", "after-torn", 51) == 51);
    CHECK(store_close(st) == 0);
    CHECK(storeio_mem_size(g_io, "/t/blk/1.blk") > (int64_t)n);
    free(nb);
    free(buf);

    /* a corrupt record in the middle: skipped, later records kept */
    CHECK(g_io->unlink(g_io, "/t/index.idx") == 0);
    CHECK(storeio_mem_get(g_io, "/t/blk/1.blk", &buf, &n) == 0);
    int64_t at = find_bytes(buf, n, "msg-025-body");
    CHECK(at > 0);
    ((char *)buf)[at + 2] ^= 0x40;
    CHECK(storeio_mem_put(g_io, "/t/blk/1.blk", buf, n) == 0);
    CHECK(store_open(&c, &st) == 0);
    CHECK(g_rep.corrupt_records == 1 && g_rep.truncated_bytes == 0 && g_rep.corrupt_bytes > 0);
    store_get_state(st, &s);
    CHECK(s.msgs == 50 && s.last_seq == 51 && s.num_deleted == 1);
    CHECK(!has_msg(st, 25, "t.x", "msg-025-body"));
    CHECK(has_msg(st, 24, "t.x", "msg-024-body") && has_msg(st, 26, "t.x", "msg-026-body"));
    CHECK(has_msg(st, 51, "t.x", "after-torn"));
    CHECK(store_close(st) == 0);
    free(buf);

    /* a corrupted length field in the middle: resynchronised too */
    CHECK(g_io->unlink(g_io, "/t/index.idx") == 0);
    CHECK(storeio_mem_get(g_io, "/t/blk/1.blk", &buf, &n) == 0);
    at = find_bytes(buf, n, "msg-030-body");
    CHECK(at > 0);
    /* the record header is 44 bytes + subject "t.x" before the data */
    char *rec = (char *)buf + at - 3 - 44;
    CHECK(memcmp(rec, "EBM1", 4) == 0);
    rec[8] = (char)0xff;
    rec[9] = (char)0xff;
    CHECK(storeio_mem_put(g_io, "/t/blk/1.blk", buf, n) == 0);
    CHECK(store_open(&c, &st) == 0);
    CHECK(g_rep.corrupt_records == 2); /* 25 (still) and 30 */
    CHECK(has_msg(st, 31, "t.x", "msg-031-body") && has_msg(st, 29, "t.x", "msg-029-body"));
    store_msg *m;
    CHECK(store_load(st, 30, &m) == EMBER_ENOTFOUND);
    CHECK(store_close(st) == 0);
    free(buf);

    /* corruption after the index was written is caught when loading */
    CHECK(storeio_mem_get(g_io, "/t/blk/1.blk", &buf, &n) == 0);
    at = find_bytes(buf, n, "msg-040-body");
    ((char *)buf)[at] ^= 1;
    CHECK(storeio_mem_put(g_io, "/t/blk/1.blk", buf, n) == 0);
    CHECK(store_open(&c, &st) == 0);
    CHECK(g_rep.used_index);
    CHECK(store_load(st, 40, &m) == STORE_ECORRUPT);
    CHECK(has_msg(st, 41, "t.x", "msg-041-body"));
    CHECK(store_close(st) == 0);
    free(buf);
    fprintf(stderr, "  torn tail / corrupt middle ok\n");
}

/* ---- erase -------------------------------------------------------------------- */

/* The active block is zero-filled ahead of its end (so an fsync does not also grow the
 * file): after a crash the zeros are the block's clean end, not a torn tail; a clean
 * close trims them; garbage after the zeros is still a torn tail. */
static void test_prealloc(void)
{
    store_config c = cfg_of(STORE_FILE, "/pa");
    c.block_size = 1 << 20;
    store *st;
    CHECK(store_open(&c, &st) == 0);
    char data[64];
    for (int i = 1; i <= 20; i++) {
        snprintf(data, sizeof data, "pa-%03d", i);
        put(st, "p.x", data, i);
    }
    CHECK(store_flush(st) == 0);
    int64_t sz = storeio_mem_size(g_io, "/pa/blk/1.blk");
    CHECK(sz >= 64 * 1024); /* 20 small records and the zeros ahead of them */
    storeio_mem_crash(g_io, STOREIO_CRASH_CLEAN, 7);
    store_abandon(st);
    storeio_mem_reboot(g_io);

    CHECK(store_open(&c, &st) == 0);
    CHECK(g_rep.truncated_bytes == 0 && g_rep.corrupt_records == 0 && g_rep.corrupt_bytes == 0);
    store_state s;
    store_get_state(st, &s);
    CHECK(s.msgs == 20 && s.last_seq == 20);
    CHECK(has_msg(st, 20, "p.x", "pa-020"));
    CHECK(put(st, "p.x", "pa-021", 21) == 21); /* appended over the zeros */
    CHECK(store_close(st) == 0);
    int64_t trimmed = storeio_mem_size(g_io, "/pa/blk/1.blk");
    CHECK(trimmed > 0 && trimmed < 4096); /* clean close: no zero tail */

    /* zeros, then garbage: a torn tail, all of it truncated and counted */
    CHECK(g_io->unlink(g_io, "/pa/index.idx") == 0);
    void *buf;
    size_t n;
    CHECK(storeio_mem_get(g_io, "/pa/blk/1.blk", &buf, &n) == 0);
    char *nb = calloc(1, n + 5000);
    memcpy(nb, buf, n);
    memcpy(nb + n + 4990, "junk!", 5);
    CHECK(storeio_mem_put(g_io, "/pa/blk/1.blk", nb, n + 5000) == 0);
    CHECK(store_open(&c, &st) == 0);
    CHECK(g_rep.truncated_bytes == 5000);
    store_get_state(st, &s);
    CHECK(s.msgs == 21);
    CHECK(has_msg(st, 21, "p.x", "pa-021"));
    CHECK(store_close(st) == 0);
    free(nb);
    free(buf);

    /* a block rotated away from before a crash keeps its zeros until the next open */
    CHECK(storeio_mem_get(g_io, "/pa/blk/1.blk", &buf, &n) == 0);
    nb = calloc(1, n + 8192);
    memcpy(nb, buf, n);
    CHECK(storeio_mem_put(g_io, "/pa/blk/1.blk", nb, n + 8192) == 0);
    CHECK(storeio_mem_put(g_io, "/pa/blk/2.blk", "", 0) == 0); /* a newer, empty block */
    CHECK(g_io->unlink(g_io, "/pa/index.idx") == 0);
    CHECK(store_open(&c, &st) == 0);
    CHECK(g_rep.truncated_bytes == 0);
    CHECK(storeio_mem_size(g_io, "/pa/blk/1.blk") == (int64_t)n);
    store_get_state(st, &s);
    CHECK(s.msgs == 21);
    CHECK(store_close(st) == 0);
    free(nb);
    free(buf);
}

static void test_erase(void)
{
    store *st = open_kind(STORE_FILE, "/er", NULL);
    put(st, "e", "keep-me-1", 1);
    put(st, "e", "SECRET-PAYLOAD", 2);
    put(st, "e", "keep-me-3", 3);
    CHECK(store_flush(st) == 0);
    CHECK(store_remove(st, 2, true) == 0);
    CHECK(store_flush(st) == 0);
    void *buf;
    size_t n;
    CHECK(storeio_mem_get(g_io, "/er/blk/1.blk", &buf, &n) == 0);
    CHECK(find_bytes(buf, n, "SECRET-PAYLOAD") < 0);
    CHECK(find_bytes(buf, n, "keep-me-3") > 0);
    free(buf);
    /* erase of a record still in the write buffer */
    put(st, "e", "SECRET-TWO", 4);
    CHECK(store_remove(st, 4, true) == 0);
    CHECK(store_close(st) == 0);
    CHECK(storeio_mem_get(g_io, "/er/blk/1.blk", &buf, &n) == 0);
    CHECK(find_bytes(buf, n, "SECRET-TWO") < 0);
    free(buf);
    st = open_kind(STORE_FILE, "/er", NULL);
    store_state s;
    store_get_state(st, &s);
    CHECK(s.msgs == 2 && s.last_seq == 4);
    CHECK(has_msg(st, 3, "e", "keep-me-3"));
    store_delete(st);
    fprintf(stderr, "  erase ok\n");
}

/* ---- power loss ------------------------------------------------------------------ */

#define PL_MAX 200000

typedef struct pl_ctx {
    store *st;
    _Atomic uint8_t *durable; /* by seq: 1 = reported durable */
    atomic_int stop;
    atomic_long appended;
    int id;
} pl_ctx;

static void pl_done(void *ud, uint64_t seq, int status)
{
    pl_ctx *c = ud;
    if (status == 0 && seq < PL_MAX)
        atomic_store(&c->durable[seq], 1);
}

static void pl_payload(uint64_t seq, char *out, size_t *n)
{
    /* deterministic by seq, varying length */
    size_t len = 20 + (seq * 7919) % 300;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)('a' + (seq + i) % 26);
    *n = len;
}

static void *pl_thread(void *arg)
{
    pl_ctx *c = arg;
    char buf[400];
    while (!atomic_load(&c->stop)) {
        /* the payload depends on the seq, which is only known after the append: use
         * the store lock order by appending a seq-tagged subject instead */
        uint64_t seq;
        size_t n;
        store_state s;
        (void)s;
        char subj[32];
        snprintf(subj, sizeof subj, "pl.%d", c->id);
        /* append with a placeholder, verify by reading back the same bytes later:
         * we store the payload of the *expected* seq and check consistency on load */
        pl_payload((uint64_t)atomic_load(&c->appended), buf, &n);
        int rc = store_append(c->st, subj, strlen(subj), NULL, 0, buf, n, 1, 0, &seq);
        if (rc != 0)
            break;
        atomic_fetch_add(&c->appended, 1);
        if (seq >= PL_MAX)
            break;
        if (store_when_durable(c->st, seq, pl_done, c) != 0)
            break;
    }
    return NULL;
}

static void test_power_loss(void)
{
    _Atomic uint8_t *durable = calloc(PL_MAX, 1);
    uint64_t seed = 12345;
    int rounds = 12;
    uint64_t total_durable = 0;
    for (int round = 0; round < rounds; round++) {
        store_config c = cfg_of(STORE_FILE, "/pl");
        c.block_size = 16384;
        store *st;
        int rc = store_open(&c, &st);
        CHECK(rc == 0);
        store_state s0;
        store_get_state(st, &s0);
        pl_ctx ctx[2];
        pthread_t th[2];
        for (int i = 0; i < 2; i++) {
            ctx[i] = (pl_ctx){.st = st, .durable = durable, .id = i};
            pthread_create(&th[i], NULL, pl_thread, &ctx[i]);
        }
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        usleep((useconds_t)(2000 + (seed >> 33) % 20000));
        storeio_mem_crash(g_io, round % 2 ? STOREIO_CRASH_TORN : STOREIO_CRASH_CLEAN, seed);
        for (int i = 0; i < 2; i++) {
            atomic_store(&ctx[i].stop, 1);
            pthread_join(th[i], NULL);
        }
        store_abandon(st);
        storeio_mem_reboot(g_io);

        CHECK(store_open(&c, &st) == 0);
        store_state s;
        store_get_state(st, &s);
        /* every sequence reported durable is present, intact, on the right subject */
        for (uint64_t q = 1; q < PL_MAX; q++) {
            if (!atomic_load(&durable[q]))
                continue;
            store_msg *m;
            rc = store_load(st, q, &m);
            if (rc != 0)
                fprintf(stderr, "round %d: durable seq %" PRIu64 " lost (%d)\n", round, q, rc);
            CHECK(rc == 0);
            CHECK(m->subj_len == 4 && memcmp(m->subj, "pl.", 3) == 0);
            store_msg_release(m);
            total_durable++;
        }
        /* every message that is there loads and checks out */
        uint64_t present = 0;
        for (uint64_t q = s.first_seq; q <= s.last_seq; q++) {
            store_msg *m;
            if (store_load(st, q, &m) == 0) {
                present++;
                store_msg_release(m);
            }
        }
        CHECK(present == s.msgs);
        /* the sequence never goes backwards past a durable one */
        for (uint64_t q = s.last_seq + 1; q < PL_MAX; q++)
            CHECK(!atomic_load(&durable[q]));
        /* appending goes on from last_seq */
        uint64_t seq;
        CHECK(store_append(st, "pl.x", 4, NULL, 0, "z", 1, 1, 0, &seq) == 0 &&
              seq == s.last_seq + 1);
        CHECK(store_flush(st) == 0);
        durable[seq] = 1;
        CHECK(store_close(st) == 0);
        if (s.last_seq > PL_MAX - 20000)
            break;
    }
    fprintf(stderr, "  power loss: %d rounds, %" PRIu64 " durable checks ok\n", rounds,
            total_durable);
    free(durable);
}

/* ---- I/O failure ------------------------------------------------------------------ */

static atomic_int g_fail_status = 1;

static void fail_cb(void *ud, uint64_t seq, int status) { atomic_store(&g_fail_status, status); }

static void test_io_failure(void)
{
    storeio *io = storeio_mem_new();
    store_config c = cfg_of(STORE_FILE, "/f");
    c.io = io;
    store *st;
    CHECK(store_open(&c, &st) == 0);
    put(st, "a", "1", 1);
    CHECK(store_flush(st) == 0);
    storeio_mem_fail_after(io, -1);
    uint64_t seq;
    int rc = store_append(st, "a", 1, NULL, 0, "2", 1, 2, 0, &seq);
    CHECK(rc == 0); /* buffered */
    CHECK(store_when_durable(st, seq, fail_cb, NULL) == 0);
    CHECK(store_flush(st) == EMBER_EIO);
    CHECK(atomic_load(&g_fail_status) == EMBER_EIO);
    CHECK(store_append(st, "a", 1, NULL, 0, "3", 1, 3, 0, &seq) == EMBER_EIO);
    store_abandon(st);
    storeio_mem_free(io);
    fprintf(stderr, "  i/o failure ok\n");
}

/* ---- sync interval (async acks) --------------------------------------------------- */

static atomic_int g_async_done;
static void async_cb(void *ud, uint64_t seq, int status)
{
    if (status == 0)
        atomic_fetch_add(&g_async_done, 1);
}

static void test_async_mode(void)
{
    store_config c = cfg_of(STORE_FILE, "/as");
    c.sync_interval_ms = 50;
    atomic_store(&g_async_done, 0);
    store *st;
    CHECK(store_open(&c, &st) == 0);
    for (int i = 0; i < 100; i++) {
        uint64_t seq = put(st, "a", "x", i);
        CHECK(store_when_durable(st, seq, async_cb, NULL) == 0);
    }
    for (int i = 0; i < 200 && atomic_load(&g_async_done) < 100; i++)
        usleep(1000);
    CHECK(atomic_load(&g_async_done) == 100);
    usleep(120000); /* the interval sync happened: a crash now loses nothing */
    storeio_mem_crash(g_io, STOREIO_CRASH_CLEAN, 1);
    store_abandon(st);
    storeio_mem_reboot(g_io);
    CHECK(store_open(&c, &st) == 0);
    store_state s;
    store_get_state(st, &s);
    CHECK(s.msgs == 100);
    CHECK(store_close(st) == 0);
    fprintf(stderr, "  sync interval ok\n");
}

/* ---- many messages, real files ---------------------------------------------------- */

static void test_100k(void)
{
    char dir[] = "/tmp/ember-store-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    store_config c = cfg_of(STORE_FILE, dir);
    c.io = NULL;
    c.block_size = 0;
    store *st;
    CHECK(store_open(&c, &st) == 0);
    char data[128];
    memset(data, 'p', sizeof data);
    char subj[32];
    const int N = 100000;
    double t0 = now_sec();
    for (int i = 1; i <= N; i++) {
        snprintf(subj, sizeof subj, "kv.k%d", i % 1000);
        uint64_t seq;
        CHECK(store_append(st, subj, strlen(subj), NULL, 0, data, sizeof data, i, 0, &seq) ==
              0);
    }
    CHECK(store_remove(st, 500, false) == 0);
    CHECK(store_flush(st) == 0);
    double t1 = now_sec();
    CHECK(store_close(st) == 0);
    double t2 = now_sec();
    CHECK(store_open(&c, &st) == 0);
    double t3 = now_sec();
    CHECK(g_rep.used_index);
    store_state s;
    store_get_state(st, &s);
    CHECK(s.msgs == (uint64_t)N - 1 && s.last_seq == (uint64_t)N && s.num_subjects == 1000);
    CHECK(store_num_pending(st, "kv.k7", 0) == 100);
    store_msg *m;
    CHECK(store_load_last(st, "kv.k7", &m) == 0 && m->seq == 99007);
    store_msg_release(m);
    store_abandon(st); /* leaves the index in place */
    /* rebuild without index */
    char ip[256];
    snprintf(ip, sizeof ip, "%s/index.idx", dir);
    unlink(ip);
    double t4 = now_sec();
    CHECK(store_open(&c, &st) == 0);
    double t5 = now_sec();
    CHECK(!g_rep.used_index && g_rep.rebuilt);
    store_get_state(st, &s);
    CHECK(s.msgs == (uint64_t)N - 1 && s.last_seq == (uint64_t)N);
    CHECK(store_delete(st) == 0);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
    fprintf(stderr,
            "  100k: append+fsync %.0f ms, close %.0f ms, open with index %.0f ms, "
            "rebuild %.0f ms (informational)\n",
            (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, (t5 - t4) * 1e3);
}

/* ---- concurrent readers and writers (TSan food) ------------------------------------- */

typedef struct rw_ctx {
    store *st;
    atomic_int stop;
} rw_ctx;

static void *rw_reader(void *arg)
{
    rw_ctx *c = arg;
    while (!atomic_load(&c->stop)) {
        store_msg *m;
        if (store_load_last(c->st, "rw.>", &m) == 0)
            store_msg_release(m);
        if (store_load_next(c->st, "rw.a", 1, &m) == 0)
            store_msg_release(m);
        (void)store_num_pending(c->st, "rw.*", 1);
        store_state s;
        store_get_state(c->st, &s);
    }
    return NULL;
}

static void test_concurrent(store_kind kind)
{
    store_limits lim = {.max_msgs = 500};
    store *st = open_kind(kind, "/cc", &lim);
    rw_ctx c = {.st = st};
    pthread_t r;
    pthread_create(&r, NULL, rw_reader, &c);
    for (int i = 0; i < 3000; i++) {
        uint64_t seq = put(st, i % 2 ? "rw.a" : "rw.b", "data", i);
        if (i % 100 == 0)
            CHECK(store_when_durable(st, seq, async_cb, NULL) == 0);
        if (i % 7 == 0)
            store_remove(st, seq, i % 14 == 0);
    }
    atomic_store(&c.stop, 1);
    pthread_join(r, NULL);
    store_state s;
    store_get_state(st, &s);
    CHECK(s.msgs <= 500 && s.last_seq == 3000);
    CHECK(store_delete(st) == 0);
    fprintf(stderr, "  concurrent (%s) ok\n", kname(kind));
}

int main(void)
{
    g_io = storeio_mem_new();
    for (int k = 0; k < 2; k++) {
        store_kind kind = k ? STORE_FILE : STORE_MEMORY;
        test_basic(kind);
        test_limits(kind);
        test_expiry(kind);
        test_concurrent(kind);
    }
    test_restart();
    test_torn_and_corrupt();
    test_prealloc();
    test_erase();
    test_io_failure();
    test_async_mode();
    test_power_loss();
    test_100k();
    storeio_mem_free(g_io);
    printf("store: %d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
