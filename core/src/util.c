#define _GNU_SOURCE
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/membarrier.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char tls_err[512];

int err_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tls_err, sizeof tls_err, fmt, ap);
    va_end(ap);
    return code;
}

EMBER_API const char *ember_last_error(void) { return tls_err; }

EMBER_API const char *ember_version(void) { return EMBER_VERSION_STRING; }

EMBER_API const char *ember_strerror(int status)
{
    switch (status) {
    case EMBER_OK: return "ok";
    case EMBER_EINVAL: return "invalid argument";
    case EMBER_ETIMEDOUT: return "timeout";
    case EMBER_ENORESPONDERS: return "no responders available for request";
    case EMBER_ECLOSED: return "closed";
    case EMBER_EMAXPAYLOAD: return "maximum payload exceeded";
    case EMBER_ENOTFOUND: return "not found";
    case EMBER_EEXISTS: return "already exists";
    case EMBER_EWRONGSEQ: return "wrong last sequence";
    case EMBER_ESLOWCONSUMER: return "slow consumer, messages dropped";
    case EMBER_EIO: return "i/o error";
    case EMBER_ENOMEM: return "out of memory";
    case EMBER_ELIMIT: return "limit reached";
    case EMBER_ESTATE: return "invalid state";
    case EMBER_EAUTH: return "authorization violation";
    case EMBER_EPERM: return "permissions violation";
    default: return "unknown error";
    }
}

/* ------------------------------------------------------------------ thread bias */

_Thread_local uint32_t t_thread_id;
static atomic_ullong g_next_thread_id;

uint32_t thread_id_assign(void)
{
    unsigned long long t = atomic_fetch_add(&g_next_thread_id, 1) + 1;
    /* after 4 billion threads every new one is THREAD_NOBIAS: it owns nothing (slower,
     * still correct) */
    t_thread_id = t < THREAD_NOBIAS ? (uint32_t)t : THREAD_NOBIAS;
    return t_thread_id;
}

atomic_bool g_asym_membarrier;
static pthread_once_t g_asym_once = PTHREAD_ONCE_INIT;

static void asym_register(void)
{
    const char *off = getenv("EMBER_NO_MEMBARRIER"); /* tests: the fence-only fallback */
    if (off && *off && strcmp(off, "0") != 0)
        return;
    long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
        syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
        atomic_store(&g_asym_membarrier, true);
}

void asym_init(void) { pthread_once(&g_asym_once, asym_register); }

void asym_heavy(void)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&g_asym_membarrier, memory_order_relaxed) &&
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) {
        /* Not registered any more: the child of a fork(2) starts unregistered. Register
         * and try again; else the global command (slower, needs no registration). The
         * owners' side relies on this fence: never go on without it. */
        if (!(syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 &&
              syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0) &&
            syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) != 0)
            abort();
    }
    atomic_thread_fence(memory_order_seq_cst);
}

uint64_t time_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t time_mono_ms(void) { return time_mono_ns() / 1000000ull; }

static _Thread_local uint64_t tls_rand_state;

bool str_eq_ct(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = la != lb;
    for (size_t i = 0; i < la && i < lb; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

uint64_t rand_u64(void)
{
    uint64_t x = tls_rand_state;
    if (unlikely(x == 0)) {
        if (getrandom(&x, sizeof x, 0) != sizeof x)
            x = time_mono_ns() ^ (uint64_t)(uintptr_t)&x;
        if (x == 0)
            x = 0x9E3779B97F4A7C15ull;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    tls_rand_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

void rand_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r <= 0) {
            for (size_t i = 0; i < n; i++)
                p[i] = (unsigned char)rand_u64();
            return;
        }
        p += r;
        n -= (size_t)r;
    }
}

static const char B62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

typedef struct nuid_state {
    char pre[12];
    uint64_t seq, inc;
    bool init;
} nuid_state;
static _Thread_local nuid_state tls_nuid;

static void nuid_reset(nuid_state *n)
{
    unsigned char r[12];
    rand_bytes(r, sizeof r);
    for (int i = 0; i < 12; i++)
        n->pre[i] = B62[r[i] % 62];
    n->seq = rand_u64() % 839299365868340224ull; /* 62^10 */
    n->inc = 33 + rand_u64() % 300;
    n->init = true;
}

void nuid_next(char out[23])
{
    nuid_state *n = &tls_nuid;
    if (!n->init)
        nuid_reset(n);
    n->seq += n->inc;
    if (n->seq >= 839299365868340224ull)
        nuid_reset(n);
    memcpy(out, n->pre, 12);
    uint64_t s = n->seq;
    for (int i = 21; i >= 12; i--) {
        out[i] = B62[s % 62];
        s /= 62;
    }
    out[22] = 0;
}

void server_id_new(char out[57])
{
    static const char B32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    unsigned char r[55];
    rand_bytes(r, sizeof r);
    out[0] = 'N';
    for (int i = 0; i < 55; i++)
        out[i + 1] = B32[r[i] & 31];
    out[56] = 0;
}

static const char *level_tag(int level)
{
    switch (level) {
    case EMBER_LOG_FATAL: return "[FTL]";
    case EMBER_LOG_ERROR: return "[ERR]";
    case EMBER_LOG_WARN: return "[WRN]";
    case EMBER_LOG_INFO: return "[INF]";
    case EMBER_LOG_DEBUG: return "[DBG]";
    default: return "[TRC]";
    }
}

void log_vemit(const logger *lg, int level, const char *fmt, va_list ap)
{
    if (!lg || lg->level < level || (!lg->fn && !lg->to_stderr && !lg->file))
        return;
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    if (lg->fn)
        lg->fn(lg->userdata, level, line);
    if (lg->to_stderr || lg->file) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        localtime_r(&ts.tv_sec, &tm);
        char stamp[64];
        strftime(stamp, sizeof stamp, "%Y/%m/%d %H:%M:%S", &tm);
        if (lg->to_stderr)
            fprintf(stderr, "[%d] %s.%06ld %s %s\n", (int)getpid(), stamp, ts.tv_nsec / 1000,
                    level_tag(level), line);
        if (lg->file) {
            fprintf((FILE *)lg->file, "[%d] %s.%06ld %s %s\n", (int)getpid(), stamp,
                    ts.tv_nsec / 1000, level_tag(level), line);
            fflush((FILE *)lg->file);
        }
    }
}

void log_emit(const logger *lg, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vemit(lg, level, fmt, ap);
    va_end(ap);
}

int bytebuf_reserve(bytebuf *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return 0;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < b->len + extra)
        ncap *= 2;
    char *np = realloc(b->p, ncap);
    if (!np)
        return -1;
    b->p = np;
    b->cap = ncap;
    return 0;
}

int bytebuf_append(bytebuf *b, const void *data, size_t n)
{
    if (bytebuf_reserve(b, n))
        return -1;
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

void bytebuf_free(bytebuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

size_t fmt_u64(char *out, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}
