/* util: errors, time, random ids, logging. */
#ifndef EMBER_UTIL_H
#define EMBER_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include "ember.h"

#define EMBER_INTERNAL __attribute__((visibility("hidden")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Record the calling thread's last error and return code (for `return err_set(...)`). */
int err_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

uint64_t time_mono_ns(void);
uint64_t time_mono_ms(void);

/* Fast thread-local PRNG (xorshift64*), seeded from getrandom. */
uint64_t rand_u64(void);
/* Compare two NUL-terminated secrets in time independent of where they differ. */
bool str_eq_ct(const char *a, const char *b);
/* Fill buf with n random bytes from the OS (falls back to rand_u64). */
void rand_bytes(void *buf, size_t n);

/* NUID: 22 characters, 12 random prefix + 10 sequential, as the NATS clients make them.
 * out must hold 23 bytes. Thread-safe (thread-local generator). */
void nuid_next(char out[23]);
/* A server id shaped like nats-server's (an nkey public key: 'N' + 55 base32 chars).
 * out must hold 57 bytes. */
void server_id_new(char out[57]);

/* A logger: level filter + sink. */
typedef struct logger {
    int level;              /* maximum level emitted; -1 = silent */
    ember_log_fn fn;
    void *userdata;
    bool to_stderr;
    void *file;             /* FILE *: nats-server style lines appended to a file */
} logger;

void log_emit(const logger *lg, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void log_vemit(const logger *lg, int level, const char *fmt, va_list ap);
#define LOG_ON(lg, lvl) ((lg)->level >= (lvl) && ((lg)->fn || (lg)->to_stderr || (lg)->file))

/* A growable byte buffer. */
typedef struct bytebuf {
    char *p;
    size_t len, cap;
} bytebuf;
int bytebuf_reserve(bytebuf *b, size_t extra);
int bytebuf_append(bytebuf *b, const void *data, size_t n);
void bytebuf_free(bytebuf *b);

/* A spin lock for critical sections of a few instructions on hot paths (the sublist
 * cache probe, a connection's request waiters): one locked instruction to take it and
 * a plain store to drop it, where a mutex costs two locked instructions and two calls.
 * A waiter spins briefly, then yields (the holder may have been preempted). Zero is
 * unlocked; nothing to destroy. */
typedef struct cspin {
    atomic_int v;
} cspin;

/* A pause in a busy-wait loop (eases the sibling hyper-thread, saves power). */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline void cspin_lock(cspin *l)
{
    if (!atomic_exchange_explicit(&l->v, 1, memory_order_acquire))
        return;
    for (unsigned n = 0;; n++) {
        if (!atomic_load_explicit(&l->v, memory_order_relaxed) &&
            !atomic_exchange_explicit(&l->v, 1, memory_order_acquire))
            return;
        if (n < 64)
            cpu_relax();
        else
            sched_yield();
    }
}

static inline void cspin_unlock(cspin *l) { atomic_store_explicit(&l->v, 0, memory_order_release); }

/* ---- Data written mostly by one thread, without locked instructions.
 *
 * Counters and guards on the in-process delivery path are biased toward one thread:
 * the first thread that writes them becomes their owner for good (one compare-and-swap,
 * ever) and from then on writes its own copy with plain stores; any other thread writes
 * a shared copy atomically; readers add both. A flag that another thread must see before
 * it acts (Dekker: "I am inside" against "closing") pairs asym_light() on the owner's
 * side, a compiler barrier when the kernel offers membarrier(2), with asym_heavy() on the
 * rare side, a membarrier that runs a full fence on every CPU running one of our threads.
 * Without membarrier both are full fences (correct, and as slow as before). */

/* A small id for the calling thread, never 0 and never reused within the process
 * (THREAD_NOBIAS, which owns nothing, once 4 billion threads have had one). */
#define THREAD_NOBIAS UINT32_MAX
extern _Thread_local uint32_t t_thread_id;
uint32_t thread_id_assign(void);
static inline uint32_t thread_id(void)
{
    uint32_t t = t_thread_id;
    return likely(t != 0) ? t : thread_id_assign();
}

/* Does the calling thread (me) own the data whose owner field is *owner? The first
 * caller becomes the owner. */
static inline bool bias_mine(_Atomic uint32_t *owner, uint32_t me)
{
    uint32_t o = atomic_load_explicit(owner, memory_order_relaxed);
    if (likely(o == me))
        return true; /* (no owner is ever THREAD_NOBIAS) */
    if (o != 0 || me == THREAD_NOBIAS)
        return false;
    return atomic_compare_exchange_strong_explicit(owner, &o, me, memory_order_relaxed,
                                                   memory_order_relaxed);
}

/* Add to the owner's copy of a counter (only its owner calls this). */
static inline void own_add(atomic_ullong *c, unsigned long long v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

/* Add v to a biased counter: to the owner's copy when mine, else to the shared one. */
static inline void bias_add(bool mine, atomic_ullong *own, atomic_ullong *shared,
                            unsigned long long v)
{
    if (likely(mine))
        own_add(own, v);
    else
        atomic_fetch_add_explicit(shared, v, memory_order_relaxed);
}

/* Register for membarrier (once per process; ember_server_new calls it, before any
 * connection can use the pair below). */
void asym_init(void);
extern atomic_bool g_asym_membarrier;
static inline void asym_light(void)
{
    if (likely(atomic_load_explicit(&g_asym_membarrier, memory_order_relaxed)))
        atomic_signal_fence(memory_order_seq_cst);
    else
        atomic_thread_fence(memory_order_seq_cst);
}
void asym_heavy(void);

/* Decimal formatting without printf: writes digits, returns count. */
size_t fmt_u64(char *out, uint64_t v);

#endif
