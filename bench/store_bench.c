/* store_bench: micro-benchmark of the message store (core/src/store.h).
 *
 * Not built by CMake. Build and run (from the repo root, after a normal build):
 *   cc -O2 -I core/src -I core/include bench/store_bench.c core/src/memstore.c \
 *      core/src/filestore.c core/src/storeio.c core/src/sublist.c core/src/util.c \
 *      -lpthread -o /tmp/store_bench && /tmp/store_bench [dir] [restart_msgs]
 *
 * Prints (figures only, nothing asserted):
 *   - memory append, 1 thread, 128-byte payloads;
 *   - durable file append (default sync: completion after fdatasync, group commit),
 *     1/4/8 appender threads, 128-byte payloads, each append followed by
 *     store_when_durable; time until the last completion;
 *   - the peer in the same run: one pwrite+fdatasync per message on the same disk
 *     (what "sync every write" without group commit costs), as a ratio;
 *   - restart with N stored messages (default 1,000,000): open with the index, and a
 *     full rebuild from the blocks without it.
 */
#define _GNU_SOURCE
#include "store.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char g_payload[128];

static void rmrf(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "rm failed\n");
}

/* ---- memory -------------------------------------------------------------------- */

static void bench_memory(void)
{
    store_config c = {.kind = STORE_MEMORY, .name = "M"};
    store *st;
    store_open(&c, &st);
    const int N = 2000000;
    double t0 = now();
    for (int i = 0; i < N; i++) {
        uint64_t seq;
        store_append(st, "bench.mem", 9, NULL, 0, g_payload, sizeof g_payload, i, 0, &seq);
    }
    double dt = now() - t0;
    printf("memory append      1 thread : %10.0f msgs/s\n", N / dt);
    store_close(st);
}

/* ---- durable file appends ------------------------------------------------------ */

typedef struct fctx {
    store *st;
    int n;
    atomic_long *done;
} fctx;

static void on_durable(void *ud, uint64_t seq, int status)
{
    atomic_fetch_add((atomic_long *)ud, 1);
}

static void *appender(void *arg)
{
    fctx *c = arg;
    for (int i = 0; i < c->n; i++) {
        uint64_t seq;
        if (store_append(c->st, "bench.file", 10, NULL, 0, g_payload, sizeof g_payload, i, 0,
                         &seq) != 0)
            break;
        store_when_durable(c->st, seq, on_durable, c->done);
    }
    return NULL;
}

static double bench_file(const char *base, int threads, int per_thread)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/fa%d", base, threads);
    rmrf(dir);
    store_config c = {.kind = STORE_FILE, .name = "F", .dir = dir};
    store *st;
    if (store_open(&c, &st) != 0) {
        fprintf(stderr, "open %s failed\n", dir);
        return 0;
    }
    atomic_long done = 0;
    pthread_t th[16];
    fctx ctx[16];
    double t0 = now();
    for (int i = 0; i < threads; i++) {
        ctx[i] = (fctx){st, per_thread, &done};
        pthread_create(&th[i], NULL, appender, &ctx[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    long total = (long)threads * per_thread;
    while (atomic_load(&done) < total)
        usleep(100);
    double dt = now() - t0;
    store_close(st);
    rmrf(dir);
    double r = total / dt;
    printf("durable file append %2d thr  : %10.0f msgs/s (every PubAck after fdatasync)\n",
           threads, r);
    return r;
}

/* Synchronous publishers: each waits for its own completion before the next append
 * (a client doing one js.publish at a time); only group commit makes this scale. */
typedef struct sctx {
    store *st;
    double until;
    long n;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ready;
} sctx;

static void on_sync_done(void *ud, uint64_t seq, int status)
{
    sctx *c = ud;
    pthread_mutex_lock(&c->mu);
    c->ready = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void *sync_publisher(void *arg)
{
    sctx *c = arg;
    while (now() < c->until) {
        uint64_t seq;
        c->ready = 0;
        if (store_append(c->st, "bench.sync", 10, NULL, 0, g_payload, sizeof g_payload, 1, 0,
                         &seq) != 0)
            break;
        store_when_durable(c->st, seq, on_sync_done, c);
        pthread_mutex_lock(&c->mu);
        while (!c->ready)
            pthread_cond_wait(&c->cv, &c->mu);
        pthread_mutex_unlock(&c->mu);
        c->n++;
    }
    return NULL;
}

static void bench_sync_publishers(const char *base, int threads)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/sp%d", base, threads);
    rmrf(dir);
    store_config c = {.kind = STORE_FILE, .name = "S", .dir = dir};
    store *st;
    if (store_open(&c, &st) != 0)
        return;
    sctx *ctx = calloc((size_t)threads, sizeof *ctx);
    pthread_t *th = calloc((size_t)threads, sizeof *th);
    double t0 = now();
    for (int i = 0; i < threads; i++) {
        ctx[i].st = st;
        ctx[i].until = t0 + 1.0;
        pthread_mutex_init(&ctx[i].mu, NULL);
        pthread_cond_init(&ctx[i].cv, NULL);
        pthread_create(&th[i], NULL, sync_publisher, &ctx[i]);
    }
    long total = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        total += ctx[i].n;
    }
    double dt = now() - t0;
    printf("sync publishers    %3d thr  : %10.0f msgs/s (each waits for its fsync)\n", threads,
           total / dt);
    store_close(st);
    free(ctx);
    free(th);
    rmrf(dir);
}

static double bench_fsync_each(const char *base)
{
    char path[512];
    snprintf(path, sizeof path, "%s/fsync-each", base);
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
    if (fd < 0)
        return 0;
    int n = 0;
    double t0 = now(), dt;
    off_t off = 0;
    do {
        if (pwrite(fd, g_payload, sizeof g_payload, off) < 0)
            break;
        off += sizeof g_payload;
        fdatasync(fd);
        n++;
    } while ((dt = now() - t0) < 1.0);
    close(fd);
    unlink(path);
    printf("peer: pwrite+fdatasync each : %10.0f msgs/s\n", n / dt);
    return n / dt;
}

/* ---- restart -------------------------------------------------------------------- */

static store_recovery g_rep;
static void on_rec(void *ud, const store_recovery *r) { g_rep = *r; }

static void bench_restart(const char *base, long n)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/restart", base);
    rmrf(dir);
    store_config c = {.kind = STORE_FILE, .name = "R", .dir = dir, .on_recover = on_rec};
    store *st;
    store_open(&c, &st);
    char subj[32];
    double t0 = now();
    for (long i = 0; i < n; i++) {
        snprintf(subj, sizeof subj, "kv.key%ld", i % 10000);
        uint64_t seq;
        store_append(st, subj, strlen(subj), NULL, 0, g_payload, sizeof g_payload, i, 0, &seq);
    }
    store_flush(st);
    double t1 = now();
    store_close(st);
    double t2 = now();
    store_open(&c, &st);
    double t3 = now();
    store_state s;
    store_get_state(st, &s);
    printf("fill %ld msgs (1 thread, flush at end): %.0f ms; close (index) %.0f ms\n", n,
           (t1 - t0) * 1e3, (t2 - t1) * 1e3);
    printf("restart %ld msgs, with index : %8.0f ms (used_index=%d, msgs=%llu)\n", n,
           (t3 - t2) * 1e3, g_rep.used_index, (unsigned long long)s.msgs);
    store_abandon(st);
    char ip[600];
    snprintf(ip, sizeof ip, "%s/index.idx", dir);
    unlink(ip);
    double t4 = now();
    store_open(&c, &st);
    double t5 = now();
    store_get_state(st, &s);
    printf("restart %ld msgs, rebuild    : %8.0f ms (used_index=%d, msgs=%llu)\n", n,
           (t5 - t4) * 1e3, g_rep.used_index, (unsigned long long)s.msgs);
    store_close(st);
    rmrf(dir);
}

int main(int argc, char **argv)
{
    const char *base = argc > 1 ? argv[1] : "/tmp/ember-store-bench";
    long restart_n = argc > 2 ? atol(argv[2]) : 1000000;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", base);
    if (system(cmd) != 0)
        return 1;
    memset(g_payload, 'x', sizeof g_payload);
    bench_memory();
    double peer = bench_fsync_each(base);
    double best = 0;
    int thr[] = {1, 4, 8};
    for (int i = 0; i < 3; i++) {
        double r = bench_file(base, thr[i], 400000 / thr[i]);
        if (r > best)
            best = r;
    }
    if (peer > 0)
        printf("group commit vs fsync-each  : %.1fx\n", best / peer);
    bench_sync_publishers(base, 1);
    bench_sync_publishers(base, 16);
    bench_sync_publishers(base, 128);
    bench_restart(base, restart_n);
    rmrf(base);
    return 0;
}
