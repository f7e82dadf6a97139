/* th_check: the counting CHECK of the interop tests that go on after a failure
 * (test_auth.c, test_accounts.c, test_jwt.c), and their summary line. Header-only:
 * include it from one .c file per test. */
#ifndef EMBER_TH_CHECK_H
#define EMBER_TH_CHECK_H

#include <stdio.h>

static int passed, failed;
#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (cond)                                                                              \
            passed++;                                                                          \
        else {                                                                                 \
            failed++;                                                                          \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);           \
        }                                                                                      \
    } while (0)

/* "<name>: N passed, N failed"; the exit code. */
static inline int th_check_summary(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, passed, failed);
    return failed ? 1 : 0;
}

#endif
