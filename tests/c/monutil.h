/* Helpers of the monitoring tests (test_monitor.c, test_monitor_accounts.c): fetch an
 * endpoint's JSON through ember_server_monitor, read values at dotted paths, remove a
 * test directory. Include after testutil.h, with _GNU_SOURCE defined first. */
#ifndef EMBER_MONUTIL_H
#define EMBER_MONUTIL_H

#include <cjson/cJSON.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"
#include "jsonpath.h"
#include "testutil.h"

/* The endpoint's JSON (caller deletes), NULL after a failed check. */
static inline cJSON *mon(ember_server *s, const char *path)
{
    char *json = NULL;
    int rc = ember_server_monitor(s, path, &json);
    CHECK_MSG(rc == EMBER_OK, "%s: %s (%s)", path, ember_strerror(rc), ember_last_error());
    if (rc)
        return NULL;
    cJSON *o = cJSON_Parse(json);
    CHECK_MSG(o != NULL, "%s: not JSON: %.200s", path, json);
    ember_free(json);
    return o;
}

/* The error of a request expected to fail: its code, and the error text in text. */
static inline int mon_err(ember_server *s, const char *path, char *text, size_t cap)
{
    char *json = (char *)1;
    int rc = ember_server_monitor(s, path, &json);
    CHECK(json == NULL || rc == EMBER_OK);
    if (rc == EMBER_OK)
        ember_free(json);
    snprintf(text, cap, "%s", ember_last_error());
    return rc;
}

/* A number or string at a path; -12345 / "" when absent. */
static inline double num(const cJSON *o, const char *path)
{
    const cJSON *v = at(o, path);
    return cJSON_IsNumber(v) ? v->valuedouble : -12345;
}
static inline const char *str(const cJSON *o, const char *path)
{
    const cJSON *v = at(o, path);
    return cJSON_IsString(v) ? v->valuestring : "";
}
static inline bool has(const cJSON *o, const char *path) { return at(o, path) != NULL; }
static inline int count(const cJSON *o, const char *path)
{
    const cJSON *v = at(o, path);
    return cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
}

static inline int tu_rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}
/* rm -rf p */
static inline void rm_rf(const char *p) { nftw(p, tu_rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

#endif
