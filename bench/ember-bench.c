/*
 * ember-bench: Ember's benchmark program. Prints absolute figures and ratios against a
 * peer measured in the same run (see bench/README.md).
 *
 *   ember-bench tcp [--ember PATH] [--nats PATH] [--msgs N] [--size N] [--runs N]
 *       ember-server vs nats-server as child processes on loopback, driven by the
 *       official C client (libnats): pub/sub throughput, request/reply latency,
 *       start-to-ready time, idle RSS.
 *   ember-bench inproc [--inproc-msgs N] [--size N]
 *       DEMO.md step 5: an embedded server; request/reply and pub/sub in-process in
 *       every delivery mode vs the same server over loopback TCP with libnats.
 *   ember-bench all      (default) both of the above.
 *
 * Everything runs on 127.0.0.1 and every wait is bounded; a watchdog aborts a phase
 * that hangs. Timing uses CLOCK_MONOTONIC. This is a program, not a test: it never
 * fails on a slow figure, it prints it (with the target next to it).
 *
 * Standalone build of the TCP part only (no libember needed):
 *   gcc -O2 -DEMBER_BENCH_NO_INPROC bench/ember-bench.c -Icore/include \
 *       $(pkg-config --cflags --libs libnats) -lpthread -o /tmp/ember-bench
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include <nats/nats.h>

#ifndef EMBER_BENCH_NO_INPROC
#include "ember.h"
#endif

/* ------------------------------------------------------------------ settings */

typedef struct bench_cfg {
    const char *ember_path; /* NULL: next to the binary */
    const char *nats_path;  /* NULL: /usr/bin/nats-server, /usr/sbin/nats-server, $PATH */
    long msgs;              /* tcp pub/sub messages per run */
    long inproc_msgs;       /* in-process pub/sub messages per delivery mode */
    int size;               /* payload bytes */
    int runs;               /* tcp throughput runs per server (median reported) */
    int start_runs;         /* start-to-ready runs per server (best reported) */
    double lat_secs;        /* time per latency measurement */
    long js_msgs;           /* js: async publishes over TCP */
    long js_sync_msgs;      /* js: sync publishes over TCP */
    long js_native_msgs;    /* js: native publishes to the file stream */
    long js_mem_msgs;       /* js: native publishes to the memory stream */
    long js_restart_msgs;   /* js: stored messages for the restart figure */
    int kv_writers;         /* js: threads for the amortised durable KV put */
    int kv_inflight;        /* js: puts in flight for the amortised ember_kv_put_async */
    bool verbose;           /* show server output */
} bench_cfg;

static bench_cfg g_cfg = {
    .ember_path = NULL,
    .nats_path = NULL,
    .msgs = 1000000,
    .inproc_msgs = 2000000,
    .size = 128,
    .runs = 3,
    .start_runs = 5,
    .lat_secs = 1.5,
    .js_msgs = 200000,
    .js_sync_msgs = 2000,
    .js_native_msgs = 200000,
    .js_mem_msgs = 1000000,
    .js_restart_msgs = 1000000,
    .kv_writers = 32,
    .kv_inflight = 256,
    .verbose = false,
};

static const char *g_argv0 = "ember-bench";

/* Targets (from the issues). */
#define TGT_TCP_TPUT_RATIO 1.0   /* ember/nats msgs/s >= */
#define TGT_TCP_LAT_RATIO 1.0    /* ember/nats latency <= */
#define TGT_START_MS 5.0         /* <= */
#define TGT_RSS_MB 3.0           /* <= (MiB) */
#define TGT_INPROC_RR_US 1.5     /* dispatch / poll, <= */
#define TGT_INLINE_RR_US 0.3     /* inline, <= */
#define TGT_INPROC_PUBSUB 10e6   /* msgs/s >= */
#define TGT_VS_LOOPBACK 10.0     /* x faster >= */

/* ------------------------------------------------------------------ time, misc */

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Print s left-aligned in width display columns (UTF-8 aware: "µs", "→"). */
static void pcell(const char *s, int width, bool right)
{
    int cols = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80)
            cols++;
    int pad = width > cols ? width - cols : 1; /* an over-wide cell keeps a space */
    if (right)
        printf("%*s%s", pad, "", s);
    else
        printf("%s%*s", s, pad, "");
}

static const char *fmt_rate(char *buf, size_t n, double v)
{
    if (v <= 0)
        snprintf(buf, n, "n/a");
    else if (v >= 1e6)
        snprintf(buf, n, "%.2f M/s", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, n, "%.1f k/s", v / 1e3);
    else
        snprintf(buf, n, "%.0f /s", v);
    return buf;
}

static const char *fmt_us(char *buf, size_t n, double us)
{
    if (us <= 0)
        snprintf(buf, n, "n/a");
    else if (us < 10)
        snprintf(buf, n, "%.3f µs", us);
    else
        snprintf(buf, n, "%.1f µs", us);
    return buf;
}

static const char *fmt_ratio(char *buf, size_t n, double r)
{
    if (!(r > 0))
        snprintf(buf, n, "n/a");
    else if (r >= 100)
        snprintf(buf, n, "%.0fx", r);
    else
        snprintf(buf, n, "%.2fx", r);
    return buf;
}

/* ------------------------------------------------------------------ watchdog */

static _Atomic int64_t g_wd_deadline; /* 0: disarmed */
static const char *_Atomic g_wd_phase;
#define MAX_CHILDREN 16
static _Atomic pid_t g_children[MAX_CHILDREN];

static void track_child(pid_t pid, bool add)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        pid_t expect = add ? 0 : pid;
        if (atomic_compare_exchange_strong(&g_children[i], &expect, add ? pid : 0))
            return;
    }
}

static void kill_children(void)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        pid_t p = atomic_load(&g_children[i]);
        if (p > 0)
            kill(p, SIGKILL);
    }
}

static void *watchdog_main(void *arg)
{
    (void)arg;
    for (;;) {
        sleep_us(100000);
        int64_t d = atomic_load(&g_wd_deadline);
        if (d && now_ns() > d) {
            fflush(stdout);
            fprintf(stderr,
                    "\nember-bench: phase '%s' did not finish within its bound; aborting "
                    "(a hang in the server or the library?)\n",
                    atomic_load(&g_wd_phase));
            kill_children();
            _exit(3);
        }
    }
    return NULL;
}

static void phase_begin(const char *name, double max_secs)
{
    atomic_store(&g_wd_phase, name);
    atomic_store(&g_wd_deadline, now_ns() + (int64_t)(max_secs * 1e9));
}

static void phase_end(void) { atomic_store(&g_wd_deadline, 0); }

/* ------------------------------------------------------------------ counters */

/* A message counter with exactly one writer (the delivering thread), a target, and
 * the time the target was reached. Plain load+store keeps the hot path free of
 * locked instructions. */
typedef struct counter {
    _Atomic uint64_t count;
    uint64_t target;
    _Atomic int64_t t_target; /* when count reached target (0: not yet) */
} counter;

static void counter_init(counter *c, uint64_t target)
{
    atomic_store(&c->count, 0);
    c->target = target;
    atomic_store(&c->t_target, 0);
}

static inline void counter_hit(counter *c)
{
    uint64_t n = atomic_load_explicit(&c->count, memory_order_relaxed) + 1;
    atomic_store_explicit(&c->count, n, memory_order_release);
    if (n == c->target)
        atomic_store_explicit(&c->t_target, now_ns(), memory_order_release);
}

typedef uint64_t (*dropped_fn)(void *ctx);

/* Wait until count >= goal, or count + dropped >= goal, or no progress for
 * stall_secs, or max_secs overall. Returns the time of completion / last progress. */
static int64_t counter_wait(counter *c, uint64_t goal, dropped_fn df, void *dctx,
                            double stall_secs, double max_secs, bool *complete)
{
    int64_t start = now_ns(), last_progress = start;
    uint64_t last = atomic_load(&c->count);
    *complete = false;
    for (;;) {
        uint64_t n = atomic_load_explicit(&c->count, memory_order_acquire);
        if (n >= goal) {
            *complete = true;
            int64_t t = (goal == c->target) ? atomic_load(&c->t_target) : 0;
            return t ? t : now_ns();
        }
        int64_t t = now_ns();
        if (n != last) {
            last = n;
            last_progress = t;
        }
        if (df && n + df(dctx) >= goal)
            return t; /* everything is accounted for: the rest was dropped */
        if (t - last_progress > (int64_t)(stall_secs * 1e9) ||
            t - start > (int64_t)(max_secs * 1e9))
            return last_progress;
        sleep_us(n + 100000 >= goal ? 50 : 1000);
    }
}

/* ------------------------------------------------------------------ results */

typedef struct lat_result {
    bool ok;
    double mean_us, p50_us, p99_us;
    long iters;
    char err[256];
    /* accumulated over one or more measure_latency calls, then lat_finish */
    int64_t batch_ns;
    long batch_n;
    int64_t *samples;
    long nsamples, cap;
} lat_result;

typedef struct tput_result {
    bool ok;         /* measured (possibly with losses) */
    double rate;     /* msgs/s received */
    double pub_rate; /* msgs/s of the publish loop alone (publisher side) */
    long sent, received, lost;
    double secs;
    char err[256];
} tput_result;

static char g_err[256]; /* error text from a request function (main thread only) */

typedef int (*req_fn)(void *ctx);

static void lat_init(lat_result *r) { memset(r, 0, sizeof *r); }

/* Synchronous request/reply latency: warm up, then a batch loop timed as a whole (mean,
 * no per-call clock overhead), then a per-call sampled loop (p50/p99). Accumulates into
 * r, so several rounds (alternating with a peer) can be merged; lat_finish computes. */
static bool measure_latency(req_fn fn, void *ctx, double secs, lat_result *r)
{
    int64_t t0 = now_ns();
    int64_t warm_end = t0 + (int64_t)(secs * 0.1e9);
    for (long i = 0; i < 200000; i++) {
        if (fn(ctx) != 0)
            goto fail;
        if ((i & 63) == 63 && now_ns() > warm_end)
            break;
    }
    /* mean */
    int64_t b0 = now_ns(), bend = b0 + (int64_t)(secs * 0.45e9), b1 = b0;
    long n = 0;
    for (;;) {
        if (fn(ctx) != 0)
            goto fail;
        n++;
        if ((n & 63) == 0) {
            b1 = now_ns();
            if (b1 > bend || n >= 50000000)
                break;
        }
    }
    r->batch_ns += b1 - b0;
    r->batch_n += n;
    /* percentiles */
    if (!r->samples) {
        r->cap = 2000000;
        r->samples = malloc(sizeof(int64_t) * (size_t)r->cap);
        if (!r->samples) {
            snprintf(r->err, sizeof r->err, "out of memory");
            return false;
        }
    }
    int64_t send = now_ns() + (int64_t)(secs * 0.45e9);
    int64_t prev = now_ns();
    while (r->nsamples < r->cap) {
        if (fn(ctx) != 0)
            goto fail;
        int64_t t = now_ns();
        r->samples[r->nsamples++] = t - prev;
        prev = t;
        if (t > send)
            break;
    }
    return true;
fail:
    snprintf(r->err, sizeof r->err, "%s", g_err);
    return false;
}

static void lat_finish(lat_result *r)
{
    if (!r->err[0] && r->batch_n > 0 && r->nsamples > 0) {
        r->mean_us = (double)r->batch_ns / 1e3 / (double)r->batch_n;
        r->iters = r->batch_n;
        qsort(r->samples, (size_t)r->nsamples, sizeof(int64_t), cmp_i64);
        r->p50_us = (double)r->samples[r->nsamples / 2] / 1e3;
        r->p99_us = (double)r->samples[(r->nsamples * 99) / 100] / 1e3;
        r->ok = true;
    }
    free(r->samples);
    r->samples = NULL;
}

/* The machine's thread hand-off floor: a synchronous round trip between two threads
 * through a mutex+condvar (what a blocking wait costs: two futex sleeps and wake-ups),
 * and through spinning on an atomic (what a cross-core cache-line ping-pong costs).
 * Every DISPATCH/POLL request/reply pays at least two hand-offs. */
typedef struct pingpong {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int turn;
    _Atomic int sturn;
    _Atomic bool stop;
    long n;
    bool spin;
} pingpong;

static void *pingpong_main(void *p)
{
    pingpong *x = p;
    for (long i = 0; i < x->n; i++) {
        if (x->spin) {
            while (atomic_load_explicit(&x->sturn, memory_order_acquire) != 1)
                if (atomic_load_explicit(&x->stop, memory_order_relaxed))
                    return NULL;
            atomic_store_explicit(&x->sturn, 0, memory_order_release);
        } else {
            pthread_mutex_lock(&x->mu);
            while (x->turn != 1)
                pthread_cond_wait(&x->cv, &x->mu);
            x->turn = 0;
            pthread_cond_broadcast(&x->cv);
            pthread_mutex_unlock(&x->mu);
        }
    }
    return NULL;
}

/* Mean round trip in µs over at most n round trips or ~0.3 s (spinning: when the two
 * threads share one free CPU, each round trip costs a scheduler time slice), or -1. */
__attribute__((unused)) static double pingpong_us(bool spin, long n)
{
    pingpong x;
    memset(&x, 0, sizeof x);
    pthread_mutex_init(&x.mu, NULL);
    pthread_cond_init(&x.cv, NULL);
    x.n = n;
    x.spin = spin;
    pthread_t th;
    if (pthread_create(&th, NULL, pingpong_main, &x) != 0)
        return -1;
    int64_t t0 = now_ns(), give_up = t0 + 300000000LL;
    long done = 0;
    for (; done < n; done++) {
        if (spin) {
            atomic_store_explicit(&x.sturn, 1, memory_order_release);
            while (atomic_load_explicit(&x.sturn, memory_order_acquire) != 0)
                if (now_ns() > give_up)
                    goto out;
            if ((done & 255) == 255 && now_ns() > give_up) {
                done++;
                break;
            }
        } else {
            pthread_mutex_lock(&x.mu);
            x.turn = 1;
            pthread_cond_broadcast(&x.cv);
            while (x.turn != 0)
                pthread_cond_wait(&x.cv, &x.mu);
            pthread_mutex_unlock(&x.mu);
        }
    }
out:;
    int64_t t1 = now_ns();
    atomic_store(&x.stop, true);
    pthread_join(th, NULL);
    pthread_mutex_destroy(&x.mu);
    pthread_cond_destroy(&x.cv);
    return done > 0 ? (double)(t1 - t0) / 1e3 / (double)done : -1;
}

/* ------------------------------------------------------------------ machine load */

/* Other processes competing for the CPUs change every figure that needs two threads
 * running at once. Measure how much CPU the rest of the machine used during a part:
 * busy time of all CPUs (/proc/stat) minus our own and our waited-for children's. */

typedef struct load_mark {
    int64_t t;
    double busy_s; /* all CPUs, seconds */
    double self_s; /* this process + reaped children, seconds */
} load_mark;

static double rusage_s(int who)
{
    struct rusage ru;
    if (getrusage(who, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static void load_take(load_mark *m)
{
    m->t = now_ns();
    m->busy_s = -1;
    m->self_s = rusage_s(RUSAGE_SELF) + rusage_s(RUSAGE_CHILDREN);
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return;
    unsigned long long v[8] = {0};
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7]) == 8) {
        long hz = sysconf(_SC_CLK_TCK);
        /* user nice system [idle iowait] irq softirq steal */
        m->busy_s = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)(hz > 0 ? hz : 100);
    }
    fclose(f);
}

/* "other processes used 0.9 of 2 CPUs" */
static void load_report(const load_mark *a, const char *part)
{
    load_mark b;
    load_take(&b);
    double wall = (double)(b.t - a->t) / 1e9;
    if (a->busy_s < 0 || b.busy_s < 0 || wall <= 0)
        return;
    double others = ((b.busy_s - a->busy_s) - (b.self_s - a->self_s)) / wall;
    if (others < 0)
        others = 0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    printf("  machine: during %s (%.1f s) other processes kept %.2f of %ld CPUs busy%s\n", part,
           wall, others, ncpu,
           others > 0.25 ? "; figures that need two threads running at once (cross-thread "
                           "hand-offs, spinning waits) are pessimistic"
                         : "");
}

/* ------------------------------------------------------------------ child servers */

static const char *find_nats_server(void)
{
    static char buf[PATH_MAX];
    if (g_cfg.nats_path)
        return access(g_cfg.nats_path, X_OK) == 0 ? g_cfg.nats_path : NULL;
    const char *fixed[] = {"/usr/bin/nats-server", "/usr/sbin/nats-server",
                           "/usr/local/bin/nats-server"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (access(fixed[i], X_OK) == 0)
            return fixed[i];
    const char *path = getenv("PATH");
    if (!path)
        return NULL;
    char *dup = strdup(path), *save = NULL;
    for (char *d = strtok_r(dup, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(buf, sizeof buf, "%s/nats-server", d);
        if (access(buf, X_OK) == 0) {
            free(dup);
            return buf;
        }
    }
    free(dup);
    return NULL;
}

static const char *find_ember_server(void)
{
    static char buf[PATH_MAX];
    if (g_cfg.ember_path)
        return access(g_cfg.ember_path, X_OK) == 0 ? g_cfg.ember_path : NULL;
    char dir[PATH_MAX - 32];
    const char *slash = strrchr(g_argv0, '/');
    if (slash) {
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - g_argv0), g_argv0);
    } else {
        ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
        if (n <= 0)
            return NULL;
        dir[n] = 0;
        char *s = strrchr(dir, '/');
        if (s)
            *s = 0;
    }
    const char *rel[] = {"../core/ember-server", "ember-server"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(buf, sizeof buf, "%s/%s", dir[0] ? dir : ".", rel[i]);
        if (access(buf, X_OK) == 0)
            return buf;
    }
    return NULL;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Extra arguments for spawned servers (the js part: -js -sd DIR). */
static const char *g_extra_args[8];

static pid_t spawn_server(const char *path, int port)
{
    char portbuf[16];
    snprintf(portbuf, sizeof portbuf, "%d", port);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        if (!g_cfg.verbose) {
            int dn = open("/dev/null", O_RDWR);
            if (dn >= 0) {
                dup2(dn, 0);
                dup2(dn, 1);
                dup2(dn, 2);
                if (dn > 2)
                    close(dn);
            }
        }
        const char *argv[16] = {path, "-a", "127.0.0.1", "-p", portbuf};
        int ac = 5;
        for (int k = 0; g_extra_args[k] && ac < 15; k++)
            argv[ac++] = g_extra_args[k];
        argv[ac] = NULL;
        execv(path, (char *const *)argv);
        _exit(127);
    }
    track_child(pid, true);
    return pid;
}

/* Connect to 127.0.0.1:port and read the INFO line. 1: ready, 0: not yet, -1: error */
static int probe_info(int port, char *info, size_t infolen)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return 0;
    }
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    size_t got = 0;
    int ret = 0;
    while (got < sizeof buf - 1) {
        ssize_t n = read(fd, buf + got, sizeof buf - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = 0;
        if (strstr(buf, "\r\n")) {
            ret = strncmp(buf, "INFO ", 5) == 0 ? 1 : -1;
            break;
        }
    }
    if (ret == 1 && info) {
        char *e = strstr(buf, "\r\n");
        *e = 0;
        size_t l = strlen(buf);
        if (l >= infolen)
            l = infolen - 1;
        memcpy(info, buf, l);
        info[l] = 0;
    }
    close(fd);
    return ret;
}

/* Wait until the server answers with INFO. Returns the ns since t_spawn, or -1. */
static int64_t wait_ready(pid_t pid, int port, int64_t t_spawn, double timeout_s,
                          char *why, size_t whylen)
{
    int64_t deadline = t_spawn + (int64_t)(timeout_s * 1e9);
    for (;;) {
        int r = probe_info(port, NULL, 0);
        if (r == 1)
            return now_ns() - t_spawn;
        if (r < 0) {
            snprintf(why, whylen, "port %d answered without an INFO line", port);
            return -1;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            track_child(pid, false);
            if (WIFEXITED(st))
                snprintf(why, whylen, "server exited with status %d%s", WEXITSTATUS(st),
                         WEXITSTATUS(st) == 127 ? " (could not exec?)" : "");
            else
                snprintf(why, whylen, "server killed by signal %d", WTERMSIG(st));
            return -2;
        }
        if (now_ns() > deadline) {
            snprintf(why, whylen, "not ready within %.0f s", timeout_s);
            return -1;
        }
        sleep_us(100);
    }
}

static void stop_server(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    int64_t deadline = now_ns() + 3000000000LL;
    int st;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (now_ns() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            break;
        }
        sleep_us(1000);
    }
    track_child(pid, false);
}

/* Start a server on a free port; retries a few times (another process may take the
 * port between our probe and the server's bind). Returns pid, fills port/ready_ns. */
static pid_t start_server(const char *path, int *port_out, int64_t *ready_ns, char *why,
                          size_t whylen)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        int port = free_port();
        if (port <= 0) {
            snprintf(why, whylen, "no free port: %s", strerror(errno));
            return -1;
        }
        int64_t t0 = now_ns();
        pid_t pid = spawn_server(path, port);
        if (pid < 0) {
            snprintf(why, whylen, "fork: %s", strerror(errno));
            return -1;
        }
        int64_t r = wait_ready(pid, port, t0, 5.0, why, whylen);
        if (r >= 0) {
            *port_out = port;
            *ready_ns = r;
            return pid;
        }
        stop_server(pid);
        if (r == -1)
            return -1; /* a timeout or a wrong answer is not a port race */
    }
    return -1;
}

static double rss_mib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    double kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtod(line + 6, NULL);
            break;
        }
    fclose(f);
    return kb < 0 ? -1 : kb / 1024.0;
}

/* ------------------------------------------------------------------ libnats */

static _Atomic uint64_t g_nats_async_errs;

static void nats_err_cb(natsConnection *nc, natsSubscription *sub, natsStatus err,
                        void *closure)
{
    (void)nc;
    (void)sub;
    (void)err;
    (void)closure;
    atomic_fetch_add(&g_nats_async_errs, 1);
}

static natsStatus nats_connect(natsConnection **nc, const char *url, bool send_asap,
                               char *err, size_t errlen)
{
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetURL(o, url);
    if (s == NATS_OK)
        s = natsOptions_SetAllowReconnect(o, false);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, 2000);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, nats_err_cb, NULL);
    if (s == NATS_OK && send_asap)
        s = natsOptions_SetSendAsap(o, true);
    if (s == NATS_OK)
        s = natsConnection_Connect(nc, o);
    if (s != NATS_OK)
        snprintf(err, errlen, "connect %s: %s (%s)", url, natsStatus_GetText(s),
                 nats_GetLastError(NULL));
    natsOptions_Destroy(o);
    return s;
}

typedef struct nats_tp_ctx {
    counter cnt;
} nats_tp_ctx;

static void nats_count_cb(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *cl)
{
    (void)nc;
    (void)sub;
    natsMsg_Destroy(msg);
    counter_hit(&((nats_tp_ctx *)cl)->cnt);
}

static uint64_t nats_dropped(void *ctx)
{
    int64_t d = 0;
    if (natsSubscription_GetDropped((natsSubscription *)ctx, &d) != NATS_OK)
        return 0;
    return (uint64_t)d;
}

/* 1 publisher connection -> 1 subscriber connection, async callback counting. */
static void nats_pubsub(const char *url, long n, int size, const char *subj, tput_result *r)
{
    memset(r, 0, sizeof *r);
    natsConnection *pc = NULL, *sc = NULL;
    natsSubscription *sub = NULL;
    nats_tp_ctx ctx;
    char *buf = calloc(1, (size_t)size + 1);
    long warm = n / 10 < 50000 ? n / 10 : 50000;
    memset(buf, 'x', (size_t)size);
    counter_init(&ctx.cnt, (uint64_t)(warm + n));
    if (nats_connect(&sc, url, false, r->err, sizeof r->err) != NATS_OK ||
        nats_connect(&pc, url, false, r->err, sizeof r->err) != NATS_OK)
        goto out;
    natsStatus s = natsConnection_Subscribe(&sub, sc, subj, nats_count_cb, &ctx);
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(sub, -1, -1);
    if (s == NATS_OK)
        s = natsConnection_FlushTimeout(sc, 5000);
    if (s != NATS_OK) {
        snprintf(r->err, sizeof r->err, "subscribe: %s", natsStatus_GetText(s));
        goto out;
    }
    bool complete;
    for (long i = 0; i < warm && s == NATS_OK; i++)
        s = natsConnection_Publish(pc, subj, buf, size);
    if (s == NATS_OK)
        s = natsConnection_FlushTimeout(pc, 5000);
    if (s != NATS_OK) {
        snprintf(r->err, sizeof r->err, "publish (warm-up): %s", natsStatus_GetText(s));
        goto out;
    }
    counter_wait(&ctx.cnt, (uint64_t)warm, nats_dropped, sub, 2.0, 5.0, &complete);
    uint64_t base = atomic_load(&ctx.cnt.count) + nats_dropped(sub);
    if (base < (uint64_t)warm) {
        snprintf(r->err, sizeof r->err, "warm-up: only %llu of %ld messages arrived",
                 (unsigned long long)atomic_load(&ctx.cnt.count), warm);
        goto out;
    }
    uint64_t drop0 = nats_dropped(sub);
    int64_t t0 = now_ns();
    for (long i = 0; i < n && s == NATS_OK; i++)
        s = natsConnection_Publish(pc, subj, buf, size);
    int64_t t_pub = now_ns();
    if (s == NATS_OK)
        s = natsConnection_FlushTimeout(pc, 10000);
    if (s != NATS_OK) {
        snprintf(r->err, sizeof r->err, "publish: %s", natsStatus_GetText(s));
        goto out;
    }
    int64_t t_end = counter_wait(&ctx.cnt, (uint64_t)(warm + n), nats_dropped, sub, 2.0,
                                 10.0, &complete);
    uint64_t got = atomic_load(&ctx.cnt.count) - (uint64_t)warm;
    r->pub_rate = t_pub > t0 ? (double)n * 1e9 / (double)(t_pub - t0) : 0;
    r->sent = n;
    r->received = (long)got;
    r->lost = n - (long)got;
    r->secs = (double)(t_end - t0) / 1e9;
    r->rate = r->secs > 0 ? (double)got / r->secs : 0;
    r->ok = true;
    if (r->lost)
        snprintf(r->err, sizeof r->err, "%ld lost: libnats dropped %llu as slow consumer%s",
                 r->lost, (unsigned long long)(nats_dropped(sub) - drop0),
                 natsConnection_IsClosed(sc) ? "; the server closed the subscriber's connection"
                                             : "; the rest never arrived");
out:
    if (sub) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    if (pc)
        natsConnection_Destroy(pc);
    if (sc)
        natsConnection_Destroy(sc);
    free(buf);
}

typedef struct nats_rr_ctx {
    natsConnection *nc;
    const char *subj;
    const char *data;
    int len;
} nats_rr_ctx;

static void nats_echo_cb(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *cl)
{
    (void)sub;
    (void)cl;
    const char *reply = natsMsg_GetReply(msg);
    if (reply)
        natsConnection_Publish(nc, reply, natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
    natsMsg_Destroy(msg);
}

static int nats_req_once(void *p)
{
    nats_rr_ctx *x = p;
    natsMsg *reply = NULL;
    natsStatus s = natsConnection_Request(&reply, x->nc, x->subj, x->data, x->len, 2000);
    if (s != NATS_OK) {
        snprintf(g_err, sizeof g_err, "natsConnection_Request: %s", natsStatus_GetText(s));
        return -1;
    }
    natsMsg_Destroy(reply);
    return 0;
}

/* A libnats responder on one connection, libnats requester on another (both with
 * SendAsap, so that no flusher-thread hop sits in the round trip). Accumulates into r
 * (lat_init before, lat_finish after). */
static void nats_reqrep(const char *url, int size, const char *subj, double secs,
                        lat_result *r)
{
    natsConnection *rc = NULL, *qc = NULL;
    natsSubscription *sub = NULL;
    char *buf = calloc(1, (size_t)size + 1);
    memset(buf, 'r', (size_t)size);
    if (nats_connect(&rc, url, true, r->err, sizeof r->err) != NATS_OK ||
        nats_connect(&qc, url, true, r->err, sizeof r->err) != NATS_OK)
        goto out;
    natsStatus s = natsConnection_Subscribe(&sub, rc, subj, nats_echo_cb, NULL);
    if (s == NATS_OK)
        s = natsConnection_FlushTimeout(rc, 5000);
    if (s != NATS_OK) {
        snprintf(r->err, sizeof r->err, "subscribe: %s", natsStatus_GetText(s));
        goto out;
    }
    nats_rr_ctx x = {qc, subj, buf, size};
    measure_latency(nats_req_once, &x, secs, r);
out:
    if (sub) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    if (qc)
        natsConnection_Destroy(qc);
    if (rc)
        natsConnection_Destroy(rc);
    free(buf);
}

/* ------------------------------------------------------------------ tcp subcommand */

typedef struct server_run {
    const char *label;
    const char *path;
    char why[256]; /* why n/a */
    bool present;
    double start_ms; /* best */
    double rss_idle, rss_after;
    pid_t pid;
    int port;
    char url[64];
    char info[512];
    double tput[16];      /* runs that lost nothing */
    int ntput;
    double tput_lossy[16]; /* runs that lost messages */
    int nlossy;
    tput_result last_tput;
    char lossy_err[256];
    lat_result lat;
} server_run;

static void tcp_start_times(server_run *sr)
{
    double best = -1;
    for (int i = 0; i < g_cfg.start_runs; i++) {
        int port;
        int64_t rns;
        pid_t pid = start_server(sr->path, &port, &rns, sr->why, sizeof sr->why);
        if (pid < 0) {
            sr->present = false;
            return;
        }
        stop_server(pid);
        double ms = (double)rns / 1e6;
        if (best < 0 || ms < best)
            best = ms;
    }
    sr->start_ms = best;
}

static void tcp_launch(server_run *sr)
{
    int64_t rns;
    sr->pid = start_server(sr->path, &sr->port, &rns, sr->why, sizeof sr->why);
    if (sr->pid < 0) {
        sr->present = false;
        return;
    }
    snprintf(sr->url, sizeof sr->url, "nats://127.0.0.1:%d", sr->port);
    probe_info(sr->port, sr->info, sizeof sr->info);
    sleep_us(300000); /* let it settle; "idle" = after start, before any client load */
    sr->rss_idle = rss_mib(sr->pid);
}

static double median(double *v, int n)
{
    if (n <= 0)
        return 0;
    double tmp[16];
    memcpy(tmp, v, sizeof(double) * (size_t)n);
    qsort(tmp, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

static void print_row(const char *metric, const char *a, const char *b, const char *ratio,
                      const char *better, const char *target, const char *verdict)
{
    printf("  ");
    pcell(metric, 30, false);
    pcell(a, 13, true);
    pcell(b, 13, true);
    pcell(ratio, 11, true);
    printf("  ");
    pcell(better, 8, false);
    pcell(target, 22, false);
    printf("%s\n", verdict);
}

static int cmd_tcp(void)
{
    server_run srv[2];
    memset(srv, 0, sizeof srv);
    srv[0].label = "ember";
    srv[1].label = "nats-server";
    srv[0].path = find_ember_server();
    srv[1].path = find_nats_server();
    for (int i = 0; i < 2; i++) {
        srv[i].present = srv[i].path != NULL;
        if (!srv[i].present)
            snprintf(srv[i].why, sizeof srv[i].why, "%s not found%s", i ? "nats-server" : "ember-server",
                     i ? (g_cfg.nats_path ? " at --nats" : " (use --nats PATH)")
                       : (g_cfg.ember_path ? " at --ember" : " (use --ember PATH)"));
    }

    load_mark lm;
    load_take(&lm);
    printf("== tcp: ember-server vs nats-server over loopback, official C client (libnats %s)\n",
           nats_GetVersion());
    for (int i = 0; i < 2; i++)
        printf("   %-12s %s\n", srv[i].label, srv[i].present ? srv[i].path : srv[i].why);
    printf("   payload %d B, %ld msgs per throughput run, %d runs (median), start-to-ready best of %d\n",
           g_cfg.size, g_cfg.msgs, g_cfg.runs, g_cfg.start_runs);
    fflush(stdout);

    /* (3) start-to-ready */
    for (int i = 0; i < 2; i++)
        if (srv[i].present) {
            phase_begin("tcp start-to-ready", 10.0 + 6.0 * g_cfg.start_runs);
            tcp_start_times(&srv[i]);
            phase_end();
            if (srv[i].present)
                printf("   %-12s start-to-ready %.2f ms (best of %d)\n", srv[i].label,
                       srv[i].start_ms, g_cfg.start_runs);
            else
                printf("   %-12s failed to start: %s\n", srv[i].label, srv[i].why);
        }

    /* long-lived instances: (4) idle RSS */
    for (int i = 0; i < 2; i++)
        if (srv[i].present) {
            phase_begin("tcp launch", 15.0);
            tcp_launch(&srv[i]);
            phase_end();
            if (srv[i].present) {
                printf("   %-12s %s  (idle RSS %.2f MiB)\n", srv[i].label, srv[i].url,
                       srv[i].rss_idle);
                if (g_cfg.verbose)
                    printf("      %.200s\n", srv[i].info);
            } else {
                printf("   %-12s failed to start: %s\n", srv[i].label, srv[i].why);
            }
        }
    fflush(stdout);

    /* (1) throughput, alternating servers run by run */
    for (int run = 0; run < g_cfg.runs; run++)
        for (int i = 0; i < 2; i++) {
            if (!srv[i].present)
                continue;
            char subj[64];
            snprintf(subj, sizeof subj, "bench.tput.%d", run);
            phase_begin("tcp pub/sub throughput", 40.0);
            tput_result *tr = &srv[i].last_tput;
            nats_pubsub(srv[i].url, g_cfg.msgs, g_cfg.size, subj, tr);
            phase_end();
            char b[32];
            if (tr->ok) {
                if (tr->lost) {
                    srv[i].tput_lossy[srv[i].nlossy++] = tr->rate;
                    size_t l = strnlen(tr->err, sizeof srv[i].lossy_err - 1);
                    memcpy(srv[i].lossy_err, tr->err, l);
                    srv[i].lossy_err[l] = 0;
                } else {
                    srv[i].tput[srv[i].ntput++] = tr->rate;
                }
                printf("   %-12s pub/sub run %d: %s (%ld/%ld received in %.3f s)%s%s\n",
                       srv[i].label, run + 1, fmt_rate(b, sizeof b, tr->rate), tr->received,
                       tr->sent, tr->secs, tr->lost ? "  LOST: " : "",
                       tr->lost ? tr->err : "");
            } else {
                printf("   %-12s pub/sub run %d: error: %s\n", srv[i].label, run + 1, tr->err);
            }
            fflush(stdout);
        }

    /* (2) request/reply latency, alternating servers round by round */
    int lat_rounds = 4;
    for (int i = 0; i < 2; i++)
        lat_init(&srv[i].lat);
    for (int round = 0; round < lat_rounds; round++)
        for (int i = 0; i < 2; i++) {
            if (!srv[i].present || srv[i].lat.err[0])
                continue;
            phase_begin("tcp request/reply", 30.0);
            nats_reqrep(srv[i].url, g_cfg.size, "bench.rr", g_cfg.lat_secs / lat_rounds * 1.4,
                        &srv[i].lat);
            phase_end();
        }
    for (int i = 0; i < 2; i++) {
        if (!srv[i].present)
            continue;
        lat_finish(&srv[i].lat);
        if (!srv[i].lat.ok)
            printf("   %-12s request/reply: error: %s\n", srv[i].label, srv[i].lat.err);
        else
            printf("   %-12s request/reply: mean %.1f µs over %ld calls\n", srv[i].label,
                   srv[i].lat.mean_us, srv[i].lat.iters);
        srv[i].rss_after = rss_mib(srv[i].pid);
    }

    for (int i = 0; i < 2; i++)
        if (srv[i].pid > 0) {
            int st;
            if (waitpid(srv[i].pid, &st, WNOHANG) == srv[i].pid) {
                track_child(srv[i].pid, false);
                if (WIFSIGNALED(st))
                    printf("   %-12s DIED during the runs: killed by signal %d\n", srv[i].label,
                           WTERMSIG(st));
                else
                    printf("   %-12s DIED during the runs: exit status %d\n", srv[i].label,
                           WEXITSTATUS(st));
            } else {
                stop_server(srv[i].pid);
            }
        }

    /* table */
    server_run *e = &srv[0], *n = &srv[1];
    char a[48], b[48], r[48], tgt[64];
    printf("\n");
    print_row("metric", "ember", "nats-server", "ember/nats", "better", "target", "");
    print_row("------", "-----", "-----------", "----------", "------", "------", "");

    /* the median of the runs that lost nothing; of all runs only if every run lost some */
    double et = e->ntput ? median(e->tput, e->ntput) : median(e->tput_lossy, e->nlossy);
    double nt = n->ntput ? median(n->tput, n->ntput) : median(n->tput_lossy, n->nlossy);
    char label[64];
    snprintf(label, sizeof label, "pub/sub %dB 1→1 msgs/s", g_cfg.size);
    print_row(label, fmt_rate(a, sizeof a, et), fmt_rate(b, sizeof b, nt),
              fmt_ratio(r, sizeof r, et > 0 && nt > 0 ? et / nt : 0), "higher", "≥1.0x nats",
              et > 0 && nt > 0
                  ? (e->nlossy ? "MISS (lost msgs)" : et / nt >= TGT_TCP_TPUT_RATIO ? "ok" : "MISS")
                  : "");
    for (int k = 0; k < 2; k++) {
        server_run *x = &srv[k];
        if (x->nlossy)
            printf("    %s LOST messages in %d of %d runs (%s; median over %s), last: %s\n",
                   x->label, x->nlossy, x->nlossy + x->ntput,
                   x->ntput ? "excluded" : "included", x->ntput ? "the others" : "all",
                   x->lossy_err);
    }

    struct {
        const char *name;
        double ev, nv;
    } lat[3] = {
        {"req/reply mean", e->lat.ok ? e->lat.mean_us : 0, n->lat.ok ? n->lat.mean_us : 0},
        {"req/reply p50", e->lat.ok ? e->lat.p50_us : 0, n->lat.ok ? n->lat.p50_us : 0},
        {"req/reply p99", e->lat.ok ? e->lat.p99_us : 0, n->lat.ok ? n->lat.p99_us : 0},
    };
    /* The verdict uses p50: on a shared 2-core box the mean moves by +-20% between two
     * identical servers (a few scheduler hiccups), the median by a few %. */
    for (int i = 0; i < 3; i++) {
        double ratio = lat[i].ev > 0 && lat[i].nv > 0 ? lat[i].ev / lat[i].nv : 0;
        print_row(lat[i].name, fmt_us(a, sizeof a, lat[i].ev), fmt_us(b, sizeof b, lat[i].nv),
                  fmt_ratio(r, sizeof r, ratio), "lower", i == 1 ? "≤1.0x nats" : "",
                  i == 1 && ratio > 0 ? (ratio <= TGT_TCP_LAT_RATIO ? "ok" : "MISS") : "");
    }

    double es = e->present ? e->start_ms : 0, ns = n->present ? n->start_ms : 0;
    snprintf(a, sizeof a, es > 0 ? "%.2f ms" : "n/a", es);
    snprintf(b, sizeof b, ns > 0 ? "%.2f ms" : "n/a", ns);
    snprintf(tgt, sizeof tgt, "≤%.0f ms", TGT_START_MS);
    print_row("start-to-ready (best)", a, b, fmt_ratio(r, sizeof r, es > 0 && ns > 0 ? es / ns : 0),
              "lower", tgt, es > 0 ? (es <= TGT_START_MS ? "ok" : "MISS") : "");

    double er = e->present ? e->rss_idle : 0, nr = n->present ? n->rss_idle : 0;
    snprintf(a, sizeof a, er > 0 ? "%.2f MiB" : "n/a", er);
    snprintf(b, sizeof b, nr > 0 ? "%.2f MiB" : "n/a", nr);
    snprintf(tgt, sizeof tgt, "≤%.0f MiB", TGT_RSS_MB);
    print_row("idle RSS after start", a, b, fmt_ratio(r, sizeof r, er > 0 && nr > 0 ? er / nr : 0),
              "lower", tgt, er > 0 ? (er <= TGT_RSS_MB ? "ok" : "MISS") : "");

    double ea = e->present ? e->rss_after : 0, na = n->present ? n->rss_after : 0;
    snprintf(a, sizeof a, ea > 0 ? "%.2f MiB" : "n/a", ea);
    snprintf(b, sizeof b, na > 0 ? "%.2f MiB" : "n/a", na);
    print_row("RSS after the runs (info)", a, b,
              fmt_ratio(r, sizeof r, ea > 0 && na > 0 ? ea / na : 0), "lower", "", "");
    printf("  ratio = ember/nats-server; \"better\" says which direction wins "
           "(throughput: >1 ember faster; latency, time, memory: <1 ember better)\n");
    load_report(&lm, "tcp");
    printf("\n");
    fflush(stdout);
    return e->present ? 0 : 1;
}

/* ------------------------------------------------------------------ inproc subcommand */

#ifndef EMBER_BENCH_NO_INPROC

static const char *mode_name(ember_delivery m)
{
    switch (m) {
    case EMBER_DELIVER_INLINE:
        return "INLINE";
    case EMBER_DELIVER_DISPATCH:
        return "DISPATCH";
    case EMBER_DELIVER_POLL:
        return "POLL";
    }
    return "?";
}

typedef struct ember_resp {
    ember_conn *c;
    _Atomic uint64_t errors;
    _Atomic int last_error;
} ember_resp;

static void ember_echo_cb(void *ud, ember_sub *sub, ember_msg *m)
{
    (void)sub;
    ember_resp *x = ud;
    size_t len = 0;
    const void *d = ember_msg_data(m, &len);
    int rc = ember_msg_respond(x->c, m, d, len);
    if (rc != EMBER_OK) {
        atomic_fetch_add(&x->errors, 1);
        atomic_store(&x->last_error, rc);
    }
}

typedef struct poll_thread {
    pthread_t th;
    ember_conn *c;
    ember_sub *sub;   /* for next_msg mode */
    counter *cnt;     /* for next_msg mode */
    _Atomic bool stop;
    _Atomic int error;
} poll_thread;

static void *poll_main(void *p)
{
    poll_thread *t = p;
    while (!atomic_load_explicit(&t->stop, memory_order_relaxed)) {
        int n = ember_conn_poll(t->c, 100);
        if (n < 0 && n != EMBER_ETIMEDOUT) {
            atomic_store(&t->error, n);
            break;
        }
    }
    return NULL;
}

static void *next_msg_main(void *p)
{
    poll_thread *t = p;
    while (!atomic_load_explicit(&t->stop, memory_order_relaxed)) {
        ember_msg *m = NULL;
        int rc = ember_sub_next_msg(t->sub, &m, 100);
        if (rc == EMBER_OK) {
            ember_msg_release(m);
            counter_hit(t->cnt);
        } else if (rc != EMBER_ETIMEDOUT && rc != EMBER_ESLOWCONSUMER) {
            atomic_store(&t->error, rc);
            break;
        }
    }
    return NULL;
}

typedef struct ember_rr_ctx {
    ember_conn *c;
    const char *subj;
    const void *data;
    size_t len;
} ember_rr_ctx;

static int ember_req_once(void *p)
{
    ember_rr_ctx *x = p;
    ember_msg *reply = NULL;
    int rc = ember_conn_request(x->c, x->subj, x->data, x->len, 2000, &reply);
    if (rc != EMBER_OK) {
        snprintf(g_err, sizeof g_err, "ember_conn_request: %s (%s)", ember_strerror(rc),
                 ember_last_error());
        return -1;
    }
    ember_msg_release(reply);
    return 0;
}

static void ember_fail(char *err, size_t len, const char *what, int rc)
{
    snprintf(err, len, "%s: %s (%s)", what, ember_strerror(rc), ember_last_error());
}

/* (a) in-process request/reply, responder in the given delivery mode */
static void inproc_reqrep(ember_server *s, ember_delivery mode, lat_result *r)
{
    lat_init(r);
    ember_conn *rc = NULL, *qc = NULL;
    ember_resp resp = {0};
    poll_thread pt = {0};
    bool pt_started = false;
    char subj[64];
    snprintf(subj, sizeof subj, "bench.inproc.rr.%s", mode_name(mode));
    char *buf = calloc(1, (size_t)g_cfg.size + 1);
    memset(buf, 'q', (size_t)g_cfg.size);
    int st = ember_conn_connect(&rc, s, NULL);
    if (st != EMBER_OK) {
        ember_fail(r->err, sizeof r->err, "ember_conn_connect", st);
        goto out;
    }
    st = ember_conn_connect(&qc, s, NULL);
    if (st != EMBER_OK) {
        ember_fail(r->err, sizeof r->err, "ember_conn_connect", st);
        goto out;
    }
    resp.c = rc;
    ember_sub *sub = NULL;
    st = ember_conn_subscribe(&sub, rc, subj, NULL, mode, ember_echo_cb, &resp, NULL);
    if (st != EMBER_OK) {
        ember_fail(r->err, sizeof r->err, "ember_conn_subscribe", st);
        goto out;
    }
    if (mode == EMBER_DELIVER_POLL) {
        pt.c = rc;
        if (pthread_create(&pt.th, NULL, poll_main, &pt) != 0) {
            snprintf(r->err, sizeof r->err, "pthread_create failed");
            goto out;
        }
        pt_started = true;
    }
    ember_rr_ctx x = {qc, subj, buf, (size_t)g_cfg.size};
    /* check the echo once */
    ember_msg *reply = NULL;
    st = ember_conn_request(qc, subj, buf, (size_t)g_cfg.size, 2000, &reply);
    if (st != EMBER_OK) {
        ember_fail(r->err, sizeof r->err, "ember_conn_request", st);
        goto out;
    }
    size_t rlen = 0;
    const void *rd = ember_msg_data(reply, &rlen);
    bool same = rlen == (size_t)g_cfg.size && memcmp(rd, buf, rlen) == 0;
    ember_msg_release(reply);
    if (!same) {
        snprintf(r->err, sizeof r->err, "reply payload differs from the request (%zu bytes)",
                 rlen);
        goto out;
    }
    measure_latency(ember_req_once, &x, g_cfg.lat_secs, r);
    lat_finish(r);
    if (atomic_load(&resp.errors))
        snprintf(r->err, sizeof r->err, "%llu ember_msg_respond errors (last: %s)",
                 (unsigned long long)atomic_load(&resp.errors),
                 ember_strerror(atomic_load(&resp.last_error)));
out:
    if (pt_started) {
        atomic_store(&pt.stop, true);
        pthread_join(pt.th, NULL);
        if (atomic_load(&pt.error) && !r->err[0])
            snprintf(r->err, sizeof r->err, "ember_conn_poll: %s",
                     ember_strerror(atomic_load(&pt.error)));
    }
    if (qc)
        ember_conn_close(qc);
    if (rc)
        ember_conn_close(rc);
    free(buf);
}

static void ember_count_cb(void *ud, ember_sub *sub, ember_msg *m)
{
    (void)sub;
    (void)m;
    counter_hit(ud);
}

static uint64_t ember_sub_dropped(void *ctx)
{
    ember_sub_stats st;
    memset(&st, 0, sizeof st);
    ember_sub_get_stats((ember_sub *)ctx, &st);
    return st.dropped;
}

enum { PS_INLINE, PS_DISPATCH, PS_POLL, PS_NEXTMSG, PS_COUNT };
static const char *const ps_names[PS_COUNT] = {
    "INLINE callback", "DISPATCH callback", "POLL ember_conn_poll", "POLL ember_sub_next_msg"};

/* (c) in-process 1->1 pub/sub, separate publisher and subscriber connections */
static void inproc_pubsub(ember_server *s, ember_conn *pc, int kind, long n, tput_result *r)
{
    memset(r, 0, sizeof *r);
    ember_delivery mode = kind == PS_INLINE     ? EMBER_DELIVER_INLINE
                          : kind == PS_DISPATCH ? EMBER_DELIVER_DISPATCH
                                                : EMBER_DELIVER_POLL;
    long warm = n / 10 < 100000 ? n / 10 : 100000;
    long total = warm + n;
    ember_conn *sc = NULL;
    ember_sub *sub = NULL;
    counter cnt;
    counter_init(&cnt, (uint64_t)total);
    poll_thread pt = {0};
    bool pt_started = false;
    char subj[64];
    snprintf(subj, sizeof subj, "bench.inproc.ps.%d", kind);
    char *buf = calloc(1, (size_t)g_cfg.size + 1);
    memset(buf, 'p', (size_t)g_cfg.size);

    ember_conn_options co;
    ember_conn_options_init(&co);
    co.name = "bench-sub";
    co.pending_msgs_limit = total;
    co.pending_bytes_limit = (int64_t)total * (g_cfg.size + 512);
    int st = ember_conn_connect(&sc, s, &co);
    if (st != EMBER_OK) {
        ember_fail(r->err, sizeof r->err, "ember_conn_connect", st);
        goto out;
    }
    st = ember_conn_subscribe(&sub, sc, subj, NULL, mode,
                              kind == PS_NEXTMSG ? NULL : ember_count_cb,
                              kind == PS_NEXTMSG ? NULL : &cnt, NULL);
    if (st != EMBER_OK) {
        ember_fail(r->err, sizeof r->err, "ember_conn_subscribe", st);
        goto out;
    }
    st = ember_sub_set_pending_limits(sub, total, (int64_t)total * (g_cfg.size + 512));
    if (st != EMBER_OK) {
        ember_fail(r->err, sizeof r->err, "ember_sub_set_pending_limits", st);
        goto out;
    }
    if (kind == PS_POLL || kind == PS_NEXTMSG) {
        pt.c = sc;
        pt.sub = sub;
        pt.cnt = &cnt;
        if (pthread_create(&pt.th, NULL, kind == PS_POLL ? poll_main : next_msg_main, &pt)) {
            snprintf(r->err, sizeof r->err, "pthread_create failed");
            goto out;
        }
        pt_started = true;
    }
    bool complete;
    for (long i = 0; i < warm; i++)
        if ((st = ember_conn_publish(pc, subj, NULL, buf, (size_t)g_cfg.size)) != EMBER_OK) {
            ember_fail(r->err, sizeof r->err, "ember_conn_publish (warm-up)", st);
            goto out;
        }
    counter_wait(&cnt, (uint64_t)warm, ember_sub_dropped, sub, 2.0, 5.0, &complete);
    if (atomic_load(&cnt.count) + ember_sub_dropped(sub) < (uint64_t)warm) {
        snprintf(r->err, sizeof r->err, "warm-up: only %llu of %ld messages arrived%s",
                 (unsigned long long)atomic_load(&cnt.count), warm,
                 atomic_load(&pt.error) ? " (poll error)" : "");
        goto out;
    }
    uint64_t drop0 = ember_sub_dropped(sub);
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++)
        if ((st = ember_conn_publish(pc, subj, NULL, buf, (size_t)g_cfg.size)) != EMBER_OK) {
            ember_fail(r->err, sizeof r->err, "ember_conn_publish", st);
            goto out;
        }
    int64_t t_pub = now_ns();
    r->pub_rate = t_pub > t0 ? (double)n * 1e9 / (double)(t_pub - t0) : 0;
    /* INLINE: the last delivery happened inside the last publish call */
    int64_t t_end = counter_wait(&cnt, (uint64_t)total, ember_sub_dropped, sub, 2.0, 10.0,
                                 &complete);
    uint64_t got = atomic_load(&cnt.count) - (uint64_t)warm;
    r->sent = n;
    r->received = (long)got;
    r->lost = n - (long)got;
    r->secs = (double)(t_end - t0) / 1e9;
    r->rate = r->secs > 0 ? (double)got / r->secs : 0;
    r->ok = true;
    if (r->lost)
        snprintf(r->err, sizeof r->err, "%ld lost (%llu dropped by pending limits)", r->lost,
                 (unsigned long long)(ember_sub_dropped(sub) - drop0));
out:
    if (pt_started) {
        atomic_store(&pt.stop, true);
        pthread_join(pt.th, NULL);
    }
    if (sub)
        ember_sub_unsubscribe(sub);
    if (sc)
        ember_conn_close(sc);
    free(buf);
}

static void print_inproc_header(const char *a, const char *b, const char *c, const char *d,
                                const char *e, const char *f)
{
    printf("  ");
    pcell(a, 34, false);
    pcell(b, 12, true);
    pcell(c, 12, true);
    pcell(d, 12, true);
    pcell(e, 13, true);
    printf("  %s\n", f);
}

static int cmd_inproc(void)
{
    int status = 0;
    printf("== inproc: DEMO.md step 5, embedded ember server (libember %s), in-process vs "
           "loopback TCP (libnats %s)\n",
           ember_version(), nats_GetVersion());
    printf("   payload %d B, %ld msgs per pub/sub mode, %.1f s per latency figure\n", g_cfg.size,
           g_cfg.inproc_msgs, g_cfg.lat_secs);
    fflush(stdout);

    load_mark lm;
    load_take(&lm);
    ember_server_options o;
    ember_server_options_init(&o);
    o.host = "127.0.0.1";
    o.port = -1;
    ember_server *s = NULL;
    phase_begin("inproc server start", 15.0);
    int64_t t0 = now_ns();
    int st = ember_server_new(&s, &o);
    if (st != EMBER_OK) {
        printf("   ember_server_new failed: %s (%s)\n\n", ember_strerror(st), ember_last_error());
        phase_end();
        return 1;
    }
    st = ember_server_start(s);
    if (st != EMBER_OK || !ember_server_ready_for_connections(s, 5000)) {
        printf("   embedded server did not become ready within 5 s: %s (%s)\n\n",
               st != EMBER_OK ? ember_strerror(st) : "not ready", ember_last_error());
        ember_server_free(s);
        phase_end();
        return 1;
    }
    int64_t t_ready = now_ns() - t0;
    phase_end();
    const char *url = ember_server_client_url(s);
    printf("   embedded server ready in %.2f ms, %s\n", (double)t_ready / 1e6,
           url ? url : "(no client URL)");
    fflush(stdout);

    /* (a) in-process request/reply per delivery mode */
    const ember_delivery modes[3] = {EMBER_DELIVER_INLINE, EMBER_DELIVER_DISPATCH,
                                     EMBER_DELIVER_POLL};
    lat_result rr[3], rr_tcp;
    for (int i = 0; i < 3; i++) {
        phase_begin("inproc request/reply", 30.0);
        inproc_reqrep(s, modes[i], &rr[i]);
        phase_end();
        if (rr[i].err[0])
            printf("   request/reply %s: %s%s\n", mode_name(modes[i]),
                   rr[i].ok ? "warning: " : "error: ", rr[i].err);
        fflush(stdout);
    }
    /* (b) the same over loopback TCP with libnats */
    lat_init(&rr_tcp);
    if (url) {
        phase_begin("inproc loopback request/reply", 30.0);
        nats_reqrep(url, g_cfg.size, "bench.inproc.rr.tcp", g_cfg.lat_secs, &rr_tcp);
        lat_finish(&rr_tcp);
        phase_end();
        if (!rr_tcp.ok)
            printf("   request/reply loopback: error: %s\n", rr_tcp.err);
    } else {
        snprintf(rr_tcp.err, sizeof rr_tcp.err, "no client URL");
    }

    /* (c) pub/sub */
    tput_result ps[PS_COUNT], ps_tcp;
    ember_conn *pc = NULL;
    st = ember_conn_connect(&pc, s, NULL);
    for (int k = 0; k < PS_COUNT; k++) {
        if (st != EMBER_OK) {
            memset(&ps[k], 0, sizeof ps[k]);
            ember_fail(ps[k].err, sizeof ps[k].err, "ember_conn_connect", st);
            continue;
        }
        phase_begin("inproc pub/sub", 40.0);
        inproc_pubsub(s, pc, k, g_cfg.inproc_msgs, &ps[k]);
        phase_end();
        if (ps[k].err[0])
            printf("   pub/sub %s: %s%s\n", ps_names[k], ps[k].ok ? "warning: " : "error: ",
                   ps[k].err);
        fflush(stdout);
    }
    /* publish with no interest: the publisher-side floor (validate, route, no match) */
    double nosub_rate = 0;
    if (st == EMBER_OK) {
        phase_begin("inproc publish without subscribers", 20.0);
        char *buf = calloc(1, (size_t)g_cfg.size + 1);
        long n = g_cfg.inproc_msgs;
        int64_t p0 = now_ns();
        int prc = EMBER_OK;
        for (long i = 0; i < n && prc == EMBER_OK; i++)
            prc = ember_conn_publish(pc, "bench.inproc.nobody", NULL, buf, (size_t)g_cfg.size);
        int64_t p1 = now_ns();
        free(buf);
        phase_end();
        if (prc == EMBER_OK)
            nosub_rate = (double)n * 1e9 / (double)(p1 - p0);
        else
            printf("   publish without subscribers: %s (%s)\n", ember_strerror(prc),
                   ember_last_error());
    }
    if (pc)
        ember_conn_close(pc);
    memset(&ps_tcp, 0, sizeof ps_tcp);
    if (url) {
        phase_begin("inproc loopback pub/sub", 40.0);
        nats_pubsub(url, g_cfg.msgs, g_cfg.size, "bench.inproc.ps.tcp", &ps_tcp);
        phase_end();
        if (ps_tcp.err[0])
            printf("   pub/sub loopback: %s%s\n", ps_tcp.ok ? "warning: " : "error: ",
                   ps_tcp.err);
    }

    ember_server_stats ss;
    memset(&ss, 0, sizeof ss);
    ember_server_get_stats(s, &ss);

    phase_begin("thread hand-off floor", 20.0);
    double floor_cv = pingpong_us(false, 5000), floor_spin = pingpong_us(true, 200000);
    phase_end();

    /* tables */
    char a[48], b[48], c[48], d[48], t[64];
    printf("\n  request/reply, %d B echo (synchronous loop; ratio = loopback µs / this µs)\n",
           g_cfg.size);
    print_inproc_header("path", "mean", "p50", "p99", "vs loopback", "target");
    for (int i = 0; i < 4; i++) {
        lat_result *x = i < 3 ? &rr[i] : &rr_tcp;
        char name[64];
        if (i < 3)
            snprintf(name, sizeof name, "in-process, responder %s", mode_name(modes[i]));
        else
            snprintf(name, sizeof name, "loopback TCP (libnats both ends)");
        double ratio = x->ok && rr_tcp.ok ? rr_tcp.mean_us / x->mean_us : 0;
        t[0] = 0;
        if (i < 3) {
            double tgt = modes[i] == EMBER_DELIVER_INLINE ? TGT_INLINE_RR_US : TGT_INPROC_RR_US;
            snprintf(t, sizeof t, "≤%.1f µs %s, ≥%.0fx %s", tgt,
                     !x->ok ? "n/a" : x->mean_us <= tgt ? "ok" : "MISS", TGT_VS_LOOPBACK,
                     ratio <= 0 ? "n/a" : ratio >= TGT_VS_LOOPBACK ? "ok" : "MISS");
        }
        printf("  ");
        pcell(name, 34, false);
        pcell(x->ok ? fmt_us(a, sizeof a, x->mean_us) : "n/a", 12, true);
        pcell(x->ok ? fmt_us(b, sizeof b, x->p50_us) : "n/a", 12, true);
        pcell(x->ok ? fmt_us(c, sizeof c, x->p99_us) : "n/a", 12, true);
        pcell(i < 3 ? fmt_ratio(d, sizeof d, ratio) : "1x", 13, true);
        printf("  ");
        printf("%s\n", t);
    }
    printf("  this machine's thread hand-off floor (round trip between two threads): "
           "condvar %s, spinning %s\n",
           fmt_us(a, sizeof a, floor_cv), fmt_us(b, sizeof b, floor_spin));
    printf("  (DISPATCH and POLL cost at least two hand-offs per request; DEMO.md reference, "
           "Go embedding on 2 cores: in-process ~14 µs, loopback ~60 µs)\n");

    printf("\n  pub/sub %d B, 1 publisher → 1 subscriber connection (msgs/s = received; "
           "ratio = this / loopback)\n",
           g_cfg.size);
    printf("  ");
    pcell("path", 34, false);
    pcell("msgs/s", 12, true);
    pcell("ns/msg", 9, true);
    pcell("pub side", 12, true);
    pcell("lost", 8, true);
    pcell("vs loopback", 13, true);
    printf("  target\n");
    for (int k = 0; k <= PS_COUNT + 1; k++) {
        tput_result nosub;
        memset(&nosub, 0, sizeof nosub);
        if (k == PS_COUNT + 1) {
            nosub.ok = nosub_rate > 0;
            nosub.rate = nosub.pub_rate = nosub_rate;
        }
        tput_result *x = k < PS_COUNT ? &ps[k] : k == PS_COUNT ? &ps_tcp : &nosub;
        char name[64];
        if (k < PS_COUNT)
            snprintf(name, sizeof name, "in-process, %s", ps_names[k]);
        else if (k == PS_COUNT)
            snprintf(name, sizeof name, "loopback TCP (libnats both ends)");
        else
            snprintf(name, sizeof name, "(info) in-process, no subscriber");
        double ratio = x->ok && ps_tcp.ok && ps_tcp.rate > 0 ? x->rate / ps_tcp.rate : 0;
        t[0] = 0;
        if (k < PS_COUNT)
            /* the 10x-over-loopback target is for request/reply only */
            snprintf(t, sizeof t, "≥%.0f M/s %s", TGT_INPROC_PUBSUB / 1e6,
                     !x->ok ? "n/a" : x->rate >= TGT_INPROC_PUBSUB ? "ok" : "MISS");
        snprintf(b, sizeof b, x->ok && x->rate > 0 ? "%.1f" : "n/a",
                 x->ok && x->rate > 0 ? 1e9 / x->rate : 0);
        snprintf(c, sizeof c, x->ok && k <= PS_COUNT ? "%ld" : "", x->lost);
        printf("  ");
        pcell(name, 34, false);
        pcell(x->ok ? fmt_rate(a, sizeof a, x->rate) : "n/a", 12, true);
        pcell(b, 9, true);
        pcell(x->ok && x->pub_rate > 0 ? fmt_rate(d, sizeof d, x->pub_rate) : "", 12, true);
        pcell(c, 8, true);
        pcell(k < PS_COUNT ? fmt_ratio(d, sizeof d, ratio) : k == PS_COUNT ? "1x" : "", 13, true);
        printf("  ");
        printf("%s\n", t);
    }
    printf("  server totals: in %llu msgs, out %llu msgs, slow consumers %llu\n",
           (unsigned long long)ss.in_msgs, (unsigned long long)ss.out_msgs,
           (unsigned long long)ss.slow_consumers);
    load_report(&lm, "inproc");
    printf("\n");
    fflush(stdout);
    /* after the tables, so that a hang here does not hide the figures */
    phase_begin("inproc server shutdown", 15.0);
    ember_server_shutdown(s);
    ember_server_free(s);
    phase_end();
    return status;
}

#else /* EMBER_BENCH_NO_INPROC */

static int cmd_inproc(void)
{
    printf("== inproc: not compiled in (built with -DEMBER_BENCH_NO_INPROC)\n\n");
    return 0;
}

#endif


/* ------------------------------------------------------------------ js */

#define TGT_JS_ASYNC_RATIO 1.0   /* ember/nats async publish msgs/s >= (ember fsyncs) */
#define TGT_JS_NATIVE_FILE 200e3 /* in-process native publish, file stream, durable */
#define TGT_JS_NATIVE_MEM 1e6    /* in-process native publish, memory stream */
#define TGT_JS_RESTART_MS 1000.0 /* restart with 1 M stored messages, ready in <= */

typedef struct js_tcp_result {
    bool ok;
    char why[160];
    double sync_rate, async_rate, pull_rate;
} js_tcp_result;

static void rm_rf(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "ember-bench: could not remove %s\n", dir);
}

static void js_tcp_one(const char *path, js_tcp_result *r)
{
    memset(r, 0, sizeof *r);
    char dir[] = "/tmp/ember-bench-js-XXXXXX";
    if (!mkdtemp(dir)) {
        snprintf(r->why, sizeof r->why, "mkdtemp: %s", strerror(errno));
        return;
    }
    g_extra_args[0] = "-js";
    g_extra_args[1] = "-sd";
    g_extra_args[2] = dir;
    g_extra_args[3] = NULL;
    int port;
    int64_t ready;
    pid_t pid = start_server(path, &port, &ready, r->why, sizeof r->why);
    g_extra_args[0] = NULL;
    if (pid < 0) {
        rm_rf(dir);
        return;
    }
    char url[64];
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", port);
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 4096;
    jo.Wait = 10000;
    char cerr[128];
    natsStatus st = nats_connect(&nc, url, false, cerr, sizeof cerr);
    if (st == NATS_OK)
        st = natsConnection_JetStream(&js, nc, &jo);
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[] = {"bench.js"};
    sc.Name = "BENCH";
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    jsErrCode jerr = 0;
    if (st == NATS_OK)
        st = js_AddStream(NULL, js, &sc, NULL, &jerr);
    if (st != NATS_OK) {
        snprintf(r->why, sizeof r->why, "setup: %s (%d)", natsStatus_GetText(st), (int)jerr);
        goto out;
    }
    char *payload = malloc((size_t)g_cfg.size + 1);
    memset(payload, 'x', (size_t)g_cfg.size);
    /* sync publish: one round trip (and, for ember, one fsync) per message */
    long nsync = g_cfg.js_sync_msgs;
    phase_begin("js tcp sync publish", 60);
    int64_t t0 = now_ns();
    for (long i = 0; i < nsync && st == NATS_OK; i++)
        st = js_Publish(NULL, js, "bench.js", payload, g_cfg.size, NULL, &jerr);
    r->sync_rate = st == NATS_OK ? nsync / ((now_ns() - t0) / 1e9) : 0;
    phase_end();
    /* async publish */
    long nasync = g_cfg.js_msgs;
    phase_begin("js tcp async publish", 120);
    t0 = now_ns();
    for (long i = 0; i < nasync && st == NATS_OK; i++)
        st = js_PublishAsync(js, "bench.js", payload, g_cfg.size, NULL);
    if (st == NATS_OK) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 60000;
        st = js_PublishAsyncComplete(js, &po);
    }
    r->async_rate = st == NATS_OK ? nasync / ((now_ns() - t0) / 1e9) : 0;
    phase_end();
    free(payload);
    if (st != NATS_OK) {
        snprintf(r->why, sizeof r->why, "publish: %s", natsStatus_GetText(st));
        goto out;
    }
    /* pull consume everything with a batch of 256, explicit acks (async) */
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.MaxAckPending = 100000;
    st = js_PullSubscribe(&sub, js, "bench.js", "PULL", &jo, &so, &jerr);
    long total = nsync + nasync, got = 0;
    phase_begin("js tcp pull consume", 120);
    t0 = now_ns();
    while (st == NATS_OK && got < total) {
        natsMsgList list = {0};
        st = natsSubscription_Fetch(&list, sub, 256, 5000, &jerr);
        for (int k = 0; k < list.Count; k++)
            natsMsg_Ack(list.Msgs[k], NULL);
        got += list.Count;
        natsMsgList_Destroy(&list);
    }
    r->pull_rate = got == total ? total / ((now_ns() - t0) / 1e9) : 0;
    phase_end();
    natsSubscription_Destroy(sub);
    if (got != total)
        snprintf(r->why, sizeof r->why, "pull: %ld of %ld (%s)", got, total, natsStatus_GetText(st));
    else
        r->ok = true;
out:
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    stop_server(pid);
    rm_rf(dir);
}

#ifndef EMBER_BENCH_NO_INPROC
typedef struct js_async_ctx {
    _Atomic uint64_t acked, errs;
} js_async_ctx;

static void js_bench_ack(void *ud, int status, const ember_pub_ack *ack)
{
    js_async_ctx *c = ud;
    (void)ack;
    if (status == EMBER_OK)
        atomic_fetch_add_explicit(&c->acked, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&c->errs, 1, memory_order_relaxed);
}

/* Publish n messages natively (async, bounded in flight); msgs/s or 0. */
static double js_native_publish(ember_conn *c, const char *subj, long n)
{
    js_async_ctx ctx = {0};
    ember_msg *m = NULL;
    if (ember_msg_new(&m, subj, NULL, NULL, 0) != EMBER_OK)
        return 0;
    ember_msg_release(m);
    char *payload = malloc((size_t)g_cfg.size + 1);
    memset(payload, 'x', (size_t)g_cfg.size);
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        while (i - (long)atomic_load_explicit(&ctx.acked, memory_order_relaxed) -
                   (long)atomic_load(&ctx.errs) > 65536)
            sched_yield();
        if (ember_msg_new(&m, subj, NULL, payload, (size_t)g_cfg.size) != EMBER_OK ||
            ember_js_publish_async(c, m, js_bench_ack, &ctx) != EMBER_OK) {
            ember_msg_release(m);
            free(payload);
            return 0;
        }
        ember_msg_release(m);
    }
    int64_t deadline = now_ns() + 120000000000ll;
    while (atomic_load(&ctx.acked) + atomic_load(&ctx.errs) < (uint64_t)n && now_ns() < deadline)
        sleep_us(100);
    double secs = (now_ns() - t0) / 1e9;
    free(payload);
    return atomic_load(&ctx.acked) == (uint64_t)n ? n / secs : 0;
}

static ember_server *js_embedded(const char *dir, int64_t sync_ms)
{
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true;
    o.jetstream = true;
    o.store_dir = dir;
    o.jetstream_sync_interval_ms = sync_ms;
    ember_server *s = NULL;
    if (ember_server_new(&s, &o) || ember_server_start(s) ||
        !ember_server_ready_for_connections(s, 60000)) {
        ember_server_free(s);
        return NULL;
    }
    return s;
}

static int js_inproc(void)
{
    char dir[] = "/tmp/ember-bench-jsn-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char a[32], b[32], r[32];
    ember_server *s = js_embedded(dir, 0);
    ember_conn *c = NULL;
    if (!s || ember_conn_connect(&c, s, NULL)) {
        printf("   embedded server: %s\n", ember_last_error());
        ember_server_free(s);
        rm_rf(dir);
        return 1;
    }
    ember_stream_config sc;
    ember_stream_config_init(&sc);
    const char *fsub[] = {"nat.file"}, *msub[] = {"nat.mem"};
    sc.name = "NFILE";
    sc.subjects = fsub;
    sc.nsubjects = 1;
    ember_js_stream_create(c, &sc);
    sc.name = "NMEM";
    sc.subjects = msub;
    sc.storage = EMBER_STORAGE_MEMORY;
    ember_js_stream_create(c, &sc);

    phase_begin("js native publish file", 180);
    double file_rate = js_native_publish(c, "nat.file", g_cfg.js_native_msgs);
    phase_end();
    phase_begin("js native publish memory", 180);
    double mem_rate = js_native_publish(c, "nat.mem", g_cfg.js_mem_msgs);
    phase_end();

    /* fetch from the memory stream (ack none) */
    ember_consumer_config cc;
    ember_consumer_config_init(&cc);
    cc.durable_name = "F";
    cc.ack_policy = EMBER_ACK_NONE;
    double fetch_rate = 0;
    if (ember_js_consumer_create(c, "NMEM", &cc, NULL, 0) == EMBER_OK) {
        phase_begin("js native fetch", 120);
        ember_msg *msgs[256];
        long got = 0, want = g_cfg.js_mem_msgs;
        int64_t t0 = now_ns();
        while (got < want) {
            int n = ember_js_fetch(c, "NMEM", "F", msgs, 256, 2000);
            if (n <= 0)
                break;
            for (int k = 0; k < n; k++)
                ember_msg_release(msgs[k]);
            got += n;
        }
        fetch_rate = got == want ? got / ((now_ns() - t0) / 1e9) : 0;
        phase_end();
    }

    /* restart with 1 M stored messages: fill the file stream, fast (sync interval) */
    ember_conn_close(c);
    ember_server_free(s);
    long fill = g_cfg.js_restart_msgs - g_cfg.js_native_msgs;
    s = js_embedded(dir, 1000);
    c = NULL;
    double restart_ms = -1;
    if (s && ember_conn_connect(&c, s, NULL) == EMBER_OK) {
        phase_begin("js fill for restart", 300);
        double fr = fill > 0 ? js_native_publish(c, "nat.file", fill) : 1;
        phase_end();
        ember_conn_close(c);
        ember_server_free(s);
        s = NULL;
        if (fr > 0) {
            phase_begin("js restart", 120);
            int64_t t0 = now_ns();
            s = js_embedded(dir, 0);
            restart_ms = s ? (now_ns() - t0) / 1e6 : -1;
            phase_end();
            ember_stream_info si = {0};
            if (s && ember_conn_connect(&c, s, NULL) == EMBER_OK) {
                ember_js_stream_info(c, "NFILE", &si);
                ember_conn_close(c);
            }
            printf("   restart: %llu messages recovered\n", (unsigned long long)si.msgs);
        }
    }
    ember_server_free(s);
    rm_rf(dir);

    print_row("metric", "ember", "target", "", "better", "", "");
    print_row("------", "-----", "------", "", "------", "", "");
    snprintf(b, sizeof b, ">= %.0fk/s", TGT_JS_NATIVE_FILE / 1e3);
    print_row("native publish, file (fsync)", fmt_rate(a, sizeof a, file_rate), b, "", "higher", "",
              file_rate >= TGT_JS_NATIVE_FILE ? "ok" : "MISS");
    snprintf(b, sizeof b, ">= %.1fM/s", TGT_JS_NATIVE_MEM / 1e6);
    print_row("native publish, memory", fmt_rate(a, sizeof a, mem_rate), b, "", "higher", "",
              mem_rate >= TGT_JS_NATIVE_MEM ? "ok" : "MISS");
    print_row("native fetch, memory (256)", fmt_rate(a, sizeof a, fetch_rate), "", "", "higher", "", "");
    snprintf(a, sizeof a, "%.0f ms", restart_ms);
    snprintf(b, sizeof b, "<= %.0f ms", TGT_JS_RESTART_MS);
    snprintf(r, sizeof r, "%ld msgs", g_cfg.js_restart_msgs);
    print_row("restart to ready", a, b, r, "lower", "",
              restart_ms >= 0 && restart_ms <= TGT_JS_RESTART_MS ? "ok" : "MISS");
    printf("\n");
    return 0;
}
#endif


/* ------------------------------------------------------------------ kv */

#define TGT_KV_GET_US 1.0   /* in-process get <= */
#define TGT_KV_PUT_US 5.0   /* in-process durable put, amortised under concurrency <= */

typedef struct kv_tcp_result {
    bool ok;
    char why[160];
    double get_us, put_us;
} kv_tcp_result;

/* kvStore_Put (sync, one in flight) and kvStore_Get over TCP; microseconds per op. */
static void kv_tcp_one(const char *path, kv_tcp_result *r)
{
    memset(r, 0, sizeof *r);
    char dir[] = "/tmp/ember-bench-kv-XXXXXX";
    if (!mkdtemp(dir)) {
        snprintf(r->why, sizeof r->why, "mkdtemp: %s", strerror(errno));
        return;
    }
    g_extra_args[0] = "-js";
    g_extra_args[1] = "-sd";
    g_extra_args[2] = dir;
    g_extra_args[3] = NULL;
    int port;
    int64_t ready;
    pid_t pid = start_server(path, &port, &ready, r->why, sizeof r->why);
    g_extra_args[0] = NULL;
    if (pid < 0) {
        rm_rf(dir);
        return;
    }
    char url[64], cerr[128];
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", port);
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    kvStore *kv = NULL;
    natsStatus st = nats_connect(&nc, url, false, cerr, sizeof cerr);
    if (st == NATS_OK)
        st = natsConnection_JetStream(&js, nc, NULL);
    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = "bench";
    if (st == NATS_OK)
        st = js_CreateKeyValue(&kv, js, &kc);
    if (st != NATS_OK) {
        snprintf(r->why, sizeof r->why, "setup: %s", natsStatus_GetText(st));
        goto out;
    }
    char *val = malloc((size_t)g_cfg.size + 1);
    memset(val, 'v', (size_t)g_cfg.size);
    long n = 2000;
    phase_begin("kv tcp put", 60);
    int64_t t0 = now_ns();
    for (long i = 0; i < n && st == NATS_OK; i++) {
        char key[32];
        snprintf(key, sizeof key, "k%ld", i % 100);
        st = kvStore_Put(NULL, kv, key, val, g_cfg.size);
    }
    r->put_us = st == NATS_OK ? (now_ns() - t0) / 1e3 / n : 0;
    phase_end();
    phase_begin("kv tcp get", 60);
    t0 = now_ns();
    for (long i = 0; i < n && st == NATS_OK; i++) {
        char key[32];
        snprintf(key, sizeof key, "k%ld", i % 100);
        kvEntry *e = NULL;
        st = kvStore_Get(&e, kv, key);
        kvEntry_Destroy(e);
    }
    r->get_us = st == NATS_OK ? (now_ns() - t0) / 1e3 / n : 0;
    phase_end();
    free(val);
    r->ok = st == NATS_OK;
    if (!r->ok)
        snprintf(r->why, sizeof r->why, "%s", natsStatus_GetText(st));
out:
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    stop_server(pid);
    rm_rf(dir);
}

#ifndef EMBER_BENCH_NO_INPROC
typedef struct kv_writer {
    ember_kv *kv;
    long n;
    int id;
    bool ok;
} kv_writer;

static void *kv_writer_main(void *p)
{
    kv_writer *w = p;
    char *val = malloc((size_t)g_cfg.size + 1);
    memset(val, 'v', (size_t)g_cfg.size);
    w->ok = true;
    for (long i = 0; i < w->n; i++) {
        char key[32];
        snprintf(key, sizeof key, "w%d.k%ld", w->id, i % 100);
        if (ember_kv_put(w->kv, key, val, (size_t)g_cfg.size, NULL) != EMBER_OK) {
            w->ok = false;
            break;
        }
    }
    free(val);
    return NULL;
}

/* ember_kv_put_async from one thread with up to `window` puts in flight. */
typedef struct kv_window {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long inflight, done, errs;
    long window;
} kv_window;

static void kv_async_done(void *ud, int status, uint64_t revision)
{
    (void)revision;
    kv_window *w = ud;
    pthread_mutex_lock(&w->mu);
    w->inflight--;
    w->done++;
    if (status != EMBER_OK)
        w->errs++;
    if (w->inflight <= w->window / 2 || w->inflight == 0)
        pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static double kv_put_async_run(ember_kv *kv, long n, long window)
{
    kv_window w;
    memset(&w, 0, sizeof w);
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    w.window = window;
    char *val = malloc((size_t)g_cfg.size + 1);
    memset(val, 'v', (size_t)g_cfg.size);
    long sent = 0;
    int64_t t0 = now_ns();
    for (; sent < n; sent++) {
        char key[32];
        snprintf(key, sizeof key, "a.k%ld", sent % 1000);
        pthread_mutex_lock(&w.mu);
        while (w.inflight >= window)
            pthread_cond_wait(&w.cv, &w.mu);
        w.inflight++;
        pthread_mutex_unlock(&w.mu);
        if (ember_kv_put_async(kv, key, val, (size_t)g_cfg.size, kv_async_done, &w) != EMBER_OK) {
            pthread_mutex_lock(&w.mu);
            w.inflight--;
            w.errs++;
            pthread_mutex_unlock(&w.mu);
            break;
        }
    }
    pthread_mutex_lock(&w.mu);
    while (w.inflight > 0)
        pthread_cond_wait(&w.cv, &w.mu);
    bool ok = w.errs == 0 && w.done == n;
    pthread_mutex_unlock(&w.mu);
    double us = ok ? (now_ns() - t0) / 1e3 / n : 0;
    free(val);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    return us;
}

/* In-process: get latency, durable put amortised over writer threads and with many
 * asynchronous puts in flight from one thread. */
static void kv_inproc(double *get_us, double *put1_us, double *put8_us, double *puta_us)
{
    *get_us = *put1_us = *put8_us = *puta_us = 0;
    char dir[] = "/tmp/ember-bench-kvn-XXXXXX";
    if (!mkdtemp(dir))
        return;
    ember_server *s = js_embedded(dir, 0);
    ember_conn *c = NULL;
    ember_kv *kv = NULL;
    ember_kv_config kc;
    ember_kv_config_init(&kc);
    kc.bucket = "bench";
    if (!s || ember_conn_connect(&c, s, NULL) || ember_kv_bucket_create(c, &kc, &kv)) {
        ember_server_free(s);
        rm_rf(dir);
        return;
    }
    /* one writer: each put waits for its own fsync */
    kv_writer w1 = {kv, 2000, 0, false};
    phase_begin("kv native put x1", 60);
    int64_t t0 = now_ns();
    kv_writer_main(&w1);
    if (w1.ok)
        *put1_us = (now_ns() - t0) / 1e3 / w1.n;
    phase_end();
    /* 32 writers: one fsync covers many puts (group commit) */
    const int W = g_cfg.kv_writers;
    kv_writer *ws = calloc((size_t)W, sizeof *ws);
    pthread_t *th = calloc((size_t)W, sizeof *th);
    if (!ws || !th) {
        free(ws);
        free(th);
        ember_kv_close(kv);
        ember_conn_close(c);
        ember_server_free(s);
        rm_rf(dir);
        return;
    }
    phase_begin("kv native put, many writers", 120);
    t0 = now_ns();
    for (int i = 0; i < W; i++) {
        ws[i] = (kv_writer){kv, 1000, i + 1, false};
        pthread_create(&th[i], NULL, kv_writer_main, &ws[i]);
    }
    bool ok = true;
    for (int i = 0; i < W; i++) {
        pthread_join(th[i], NULL);
        ok = ok && ws[i].ok;
    }
    if (ok)
        *put8_us = (now_ns() - t0) / 1e3 / (W * 1000.0);
    free(ws);
    free(th);
    phase_end();
    /* one thread, many puts in flight: they share fsyncs without a thread each */
    phase_begin("kv native put_async", 120);
    *puta_us = kv_put_async_run(kv, 100000, g_cfg.kv_inflight);
    phase_end();
    /* gets: straight from the store */
    long n = 200000;
    phase_begin("kv native get", 60);
    t0 = now_ns();
    bool gok = true;
    for (long i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof key, "w1.k%ld", i % 100);
        ember_kv_entry *e = NULL;
        if (ember_kv_get(kv, key, &e) != EMBER_OK) {
            gok = false;
            break;
        }
        ember_kv_entry_free(e);
    }
    if (gok)
        *get_us = (now_ns() - t0) / 1e3 / n;
    phase_end();
    ember_kv_close(kv);
    ember_conn_close(c);
    ember_server_free(s);
    rm_rf(dir);
}
#endif

static void cmd_kv(void)
{
    const char *paths[2] = {find_ember_server(), find_nats_server()};
    kv_tcp_result res[2];
    for (int i = 0; i < 2; i++) {
        if (paths[i])
            kv_tcp_one(paths[i], &res[i]);
        else {
            memset(&res[i], 0, sizeof res[i]);
            snprintf(res[i].why, sizeof res[i].why, "not found");
        }
    }
    double gi = 0, p1 = 0, p8 = 0, pa = 0;
#ifndef EMBER_BENCH_NO_INPROC
    kv_inproc(&gi, &p1, &p8, &pa);
#endif
    printf("== kv: put/get, %d B values; C client (kvStore_*) over TCP vs the native API\n",
           g_cfg.size);
    for (int i = 0; i < 2; i++)
        if (!res[i].ok)
            printf("   %s: %s\n", i ? "nats-server" : "ember-server", res[i].why);
    char a[32], b[32], c[32], r[32], t[32];
    print_row("metric", "ember native", "ember TCP", "nats-server", "better", "target", "");
    print_row("------", "------------", "---------", "-----------", "------", "------", "");
    snprintf(t, sizeof t, "<= %.1f us", TGT_KV_GET_US);
    print_row("get", fmt_us(a, sizeof a, gi), fmt_us(b, sizeof b, res[0].get_us),
              fmt_us(c, sizeof c, res[1].get_us), "lower", t,
              gi > 0 && gi <= TGT_KV_GET_US ? "ok" : "MISS");
    print_row("put, 1 writer (fsync each)", fmt_us(a, sizeof a, p1),
              fmt_us(b, sizeof b, res[0].put_us), fmt_us(c, sizeof c, res[1].put_us), "lower", "",
              "");
    snprintf(t, sizeof t, "<= %.1f us", TGT_KV_PUT_US);
    char wname[48];
    snprintf(wname, sizeof wname, "put, %d writers (amortised)", g_cfg.kv_writers);
    /* a thread each, every one sleeping until its fsync: bounded by the sleep/wake cost
     * per put (see README); the target is checked on the asynchronous put below */
    print_row(wname, fmt_us(a, sizeof a, p8), "", "", "lower", "", "");
    snprintf(wname, sizeof wname, "put_async, %d in flight", g_cfg.kv_inflight);
    print_row(wname, fmt_us(a, sizeof a, pa), "", "", "lower", t,
              pa > 0 && pa <= TGT_KV_PUT_US ? "ok" : "MISS");
    if (res[1].get_us > 0 && gi > 0)
        printf("  native get vs nats-server over TCP: %s faster\n",
               fmt_ratio(r, sizeof r, res[1].get_us / gi));
    printf("  (ember acks a put after fsync; nats-server acks before it)\n\n");
}

static int cmd_js(void)
{
    const char *paths[2] = {find_ember_server(), find_nats_server()};
    const char *labels[2] = {"ember", "nats-server"};
    printf("== js: JetStream, file stream, %d B payloads, official C client (libnats %s)\n",
           g_cfg.size, nats_GetVersion());
    printf("   ember acks after fsync (group commit); nats-server (default sync_interval 2m) "
           "acks before it\n");
    js_tcp_result res[2];
    for (int i = 0; i < 2; i++) {
        if (!paths[i]) {
            memset(&res[i], 0, sizeof res[i]);
            snprintf(res[i].why, sizeof res[i].why, "not found");
        } else {
            js_tcp_one(paths[i], &res[i]);
        }
        printf("   %-12s %s\n", labels[i], res[i].ok ? (paths[i]) : res[i].why);
    }
    char a[32], b[32], r[32];
    print_row("metric", "ember", "nats-server", "ember/nats", "better", "target", "");
    print_row("------", "-----", "-----------", "----------", "------", "------", "");
    struct {
        const char *name;
        double e, n, tgt;
    } rows[] = {
        {"sync publish (1 in flight)", res[0].sync_rate, res[1].sync_rate, 0},
        {"async publish", res[0].async_rate, res[1].async_rate, TGT_JS_ASYNC_RATIO},
        {"pull consume (batch 256)", res[0].pull_rate, res[1].pull_rate, 0},
    };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        double ratio = rows[k].e > 0 && rows[k].n > 0 ? rows[k].e / rows[k].n : 0;
        char t[32] = "";
        if (rows[k].tgt > 0)
            snprintf(t, sizeof t, ">= %.1fx", rows[k].tgt);
        print_row(rows[k].name, fmt_rate(a, sizeof a, rows[k].e), fmt_rate(b, sizeof b, rows[k].n),
                  fmt_ratio(r, sizeof r, ratio), "higher", t,
                  rows[k].tgt > 0 ? (ratio >= rows[k].tgt ? "ok" : "MISS") : "");
    }
    printf("\n");
#ifndef EMBER_BENCH_NO_INPROC
    printf("== js inproc: native API on an embedded server (%ld file / %ld memory msgs)\n",
           g_cfg.js_native_msgs, g_cfg.js_mem_msgs);
    js_inproc();
#endif
    cmd_kv();
    return 0;
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ember-bench [tcp|inproc|js|all] [options]\n"
            "  tcp       ember-server vs nats-server on loopback (libnats client)\n"
            "  inproc    embedded server: in-process (every delivery mode) vs loopback\n"
            "  js        JetStream: ember-server vs nats-server (file stream publish, pull),\n"
            "            then the native in-process API and restart time\n"
            "  all       all three (default)\n"
            "options:\n"
            "  --ember PATH        ember-server binary (default: <bindir>/../core/ember-server)\n"
            "  --nats PATH         nats-server binary (default: /usr/bin/nats-server)\n"
            "  --msgs N            messages per TCP pub/sub run (default %ld)\n"
            "  --inproc-msgs N     messages per in-process pub/sub mode (default %ld)\n"
            "  --size N            payload bytes (default %d)\n"
            "  --runs N            TCP throughput runs per server, median shown (default %d)\n"
            "  --start-runs N      start-to-ready runs per server, best shown (default %d)\n"
            "  --lat-secs S        seconds per latency figure (default %.1f)\n"
            "  --js-msgs N         js: async/native publishes (default 200000)\n"
            "  --js-restart-msgs N js: stored messages for the restart figure (default 1000000)\n"
            "  --kv-writers N      js: threads for the amortised durable KV put (default 32)\n"
            "  --kv-inflight N     js: ember_kv_put_async calls in flight (default 256)\n"
            "  -v, --verbose       show the servers' own output\n",
            g_cfg.msgs, g_cfg.inproc_msgs, g_cfg.size, g_cfg.runs, g_cfg.start_runs,
            g_cfg.lat_secs);
}

static long parse_long(const char *opt, const char *v, long lo, long hi)
{
    char *end = NULL;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || errno || *end || x < lo || x > hi) {
        fprintf(stderr, "ember-bench: %s wants a number in [%ld, %ld]\n", opt, lo, hi);
        exit(2);
    }
    return x;
}

static void print_env(void)
{
    struct utsname u;
    char model[256] = "?";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                if (c) {
                    c++;
                    while (*c == ' ')
                        c++;
                    c[strcspn(c, "\n")] = 0;
                    snprintf(model, sizeof model, "%s", c);
                }
                break;
            }
        fclose(f);
    }
    uname(&u);
    printf("ember-bench: %s %s, %ld CPUs (%s)\n\n", u.sysname, u.release,
           sysconf(_SC_NPROCESSORS_ONLN), model);
}

int main(int argc, char **argv)
{
    g_argv0 = argv[0];
    const char *cmd = "all";
    int i = 1;
    if (i < argc && argv[i][0] != '-')
        cmd = argv[i++];
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            g_cfg.verbose = true;
        } else if (!strcmp(a, "--ember") && v) {
            g_cfg.ember_path = v;
            i++;
        } else if (!strcmp(a, "--nats") && v) {
            g_cfg.nats_path = v;
            i++;
        } else if (!strcmp(a, "--msgs")) {
            g_cfg.msgs = parse_long(a, v, 1000, 100000000);
            i++;
        } else if (!strcmp(a, "--inproc-msgs")) {
            g_cfg.inproc_msgs = parse_long(a, v, 1000, 100000000);
            i++;
        } else if (!strcmp(a, "--size")) {
            g_cfg.size = (int)parse_long(a, v, 0, 1024 * 1024);
            i++;
        } else if (!strcmp(a, "--runs")) {
            g_cfg.runs = (int)parse_long(a, v, 1, 16);
            i++;
        } else if (!strcmp(a, "--start-runs")) {
            g_cfg.start_runs = (int)parse_long(a, v, 1, 50);
            i++;
        } else if (!strcmp(a, "--js-msgs")) {
            g_cfg.js_msgs = parse_long(a, v, 1000, 100000000);
            g_cfg.js_native_msgs = g_cfg.js_msgs;
            i++;
        } else if (!strcmp(a, "--kv-writers")) {
            g_cfg.kv_writers = (int)parse_long(a, v, 1, 1024);
            i++;
        } else if (!strcmp(a, "--kv-inflight")) {
            g_cfg.kv_inflight = (int)parse_long(a, v, 1, 100000);
            i++;
        } else if (!strcmp(a, "--js-restart-msgs")) {
            g_cfg.js_restart_msgs = parse_long(a, v, 1000, 100000000);
            i++;
        } else if (!strcmp(a, "--lat-secs")) {
            double s = v ? strtod(v, NULL) : 0;
            if (!(s >= 0.1 && s <= 10)) {
                fprintf(stderr, "ember-bench: --lat-secs wants 0.1 .. 10\n");
                return 2;
            }
            g_cfg.lat_secs = s;
            i++;
        } else {
            fprintf(stderr, "ember-bench: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    bool do_tcp = !strcmp(cmd, "tcp") || !strcmp(cmd, "all");
    bool do_inproc = !strcmp(cmd, "inproc") || !strcmp(cmd, "all");
    bool do_js = !strcmp(cmd, "js") || !strcmp(cmd, "all");
    if (!do_tcp && !do_inproc && !do_js) {
        fprintf(stderr, "ember-bench: unknown subcommand '%s'\n", cmd);
        usage(stderr);
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t wd;
    pthread_create(&wd, NULL, watchdog_main, NULL);
    pthread_detach(wd);

    natsStatus ns = nats_Open(-1);
    if (ns != NATS_OK) {
        fprintf(stderr, "ember-bench: nats_Open: %s\n", natsStatus_GetText(ns));
        return 1;
    }
    print_env();
    int rc = 0;
    if (do_tcp)
        rc |= cmd_tcp();
    if (do_inproc)
        rc |= cmd_inproc();
    if (do_js)
        rc |= cmd_js();
    nats_CloseAndWait(2000);
    return rc;
}
