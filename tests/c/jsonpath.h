/* The item of a cJSON tree at a dotted path ("a.b[2].c"), NULL when absent. Shared by the
 * monitoring tests (monutil.h) and the interop comparison with nats-server
 * (tests/interop/test_monitor_compare.c). Needs strtok_r (_GNU_SOURCE or POSIX). */
#ifndef EMBER_JSONPATH_H
#define EMBER_JSONPATH_H

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline const cJSON *at(const cJSON *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = o;
    for (char *save = NULL, *t = strtok_r(buf, ".", &save); t && cur;
         t = strtok_r(NULL, ".", &save)) {
        char *br = strchr(t, '[');
        if (br)
            *br = 0;
        cur = cJSON_GetObjectItemCaseSensitive(cur, t);
        if (br)
            cur = cJSON_GetArrayItem(cur, atoi(br + 1));
    }
    return cur;
}

#endif
