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

/* Decimal formatting without printf: writes digits, returns count. */
size_t fmt_u64(char *out, uint64_t v);

#endif
