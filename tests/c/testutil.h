/* testutil: the small harness shared by the C tests: non-fatal CHECKs counted from any
 * thread, bounded waits that never assert on timing, and the one summary line
 * "<name>: N passed, N failed". Header-only; include it from one .c file per test. */
#ifndef EMBER_TESTUTIL_H
#define EMBER_TESTUTIL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

static atomic_int tu_passed, tu_failed;

/* Count a check; on failure print where and go on. Usable from any thread. */
#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            atomic_fetch_add(&tu_passed, 1);                                         \
        } else {                                                                     \
            atomic_fetch_add(&tu_failed, 1);                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

/* CHECK with a printf-style explanation printed on failure. */
#define CHECK_MSG(cond, ...)                                                         \
    do {                                                                             \
        if (cond) {                                                                  \
            atomic_fetch_add(&tu_passed, 1);                                         \
        } else {                                                                     \
            atomic_fetch_add(&tu_failed, 1);                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                            \
            fputc('\n', stderr);                                                     \
        }                                                                            \
    } while (0)

/* Integer equality, printing both sides on failure. */
#define CHECK_EQ(a, b)                                                                  \
    do {                                                                                \
        long long a_ = (long long)(a), b_ = (long long)(b);                             \
        if (a_ == b_) {                                                                 \
            atomic_fetch_add(&tu_passed, 1);                                            \
        } else {                                                                        \
            atomic_fetch_add(&tu_failed, 1);                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__, \
                    __LINE__, #a, #b, a_, b_);                                          \
        }                                                                               \
    } while (0)

/* Like CHECK, but return from the (void) test function when it fails: for checks that
 * later steps cannot do without. */
#define REQUIRE(cond)                                                                  \
    do {                                                                               \
        if (cond) {                                                                    \
            atomic_fetch_add(&tu_passed, 1);                                           \
        } else {                                                                       \
            atomic_fetch_add(&tu_failed, 1);                                           \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond); \
            return;                                                                    \
        }                                                                              \
    } while (0)

static inline uint64_t tu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline void tu_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Evaluate cond until it holds or ms milliseconds passed; yields its last value. A
 * bounded wait for something that must happen, never a timing assertion. */
#define WAIT_UNTIL(cond, ms)                                     \
    __extension__({                                              \
        uint64_t dl_ = tu_now_ms() + (uint64_t)(ms);             \
        bool ok_;                                                \
        while (!(ok_ = (cond)) && tu_now_ms() < dl_)             \
            tu_sleep_ms(1);                                      \
        ok_;                                                     \
    })

/* Print "<name>: N passed, N failed" alone on a line; the process exit code. */
static inline int tu_summary(const char *name)
{
    fflush(stderr);
    printf("%s: %d passed, %d failed\n", name, atomic_load(&tu_passed), atomic_load(&tu_failed));
    fflush(stdout);
    return atomic_load(&tu_failed) ? 1 : 0;
}

#endif
