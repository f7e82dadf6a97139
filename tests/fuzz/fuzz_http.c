/* fuzz_http: libFuzzer target for the monitoring port's HTTP request parser
 * (core/src/http.c: http_parse_request, http_query_get).
 *
 * Input: the bytes a client sends. Checks, besides ASan/UBSan:
 *   - a complete parse (0) stays within the input: head_len <= size, the method is a
 *     NUL-terminated token, path/query slices lie inside the buffer, path starts with
 *     '/', minor is 0 or 1, content_length is within HTTP_MAX_BODY;
 *   - incremental feeding agrees: every prefix shorter than head_len answers "need more"
 *     (1) or the same error status, never a different complete request, and parsing the
 *     input again from a copy gives the same result (no hidden state);
 *   - the query of a parsed request answers http_query_get for the keys the endpoints
 *     use, and each decoded value fits the buffer and is NUL-terminated;
 *   - the status is one of 0, 1, 400, 413, 414, 431, 501, 505.
 * The server (monitor.c) serves requests as they are parsed here, so a pipelined
 * remainder after head_len is parsed again the same way.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Icore/src \
 *         core/src/http.c tests/fuzz/fuzz_http.c -o fuzz_http
 *   ./fuzz_http -runs=1000000 -dict=tests/fuzz/fuzz_http.dict tests/fuzz/corpus/http
 */
#include "http.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_req(const char *buf, size_t n, const http_req *r)
{
    if (r->head_len == 0 || r->head_len > n)
        abort();
    size_t ml = strnlen(r->method, sizeof r->method);
    if (ml == 0 || ml >= sizeof r->method)
        abort();
    if (r->minor != 0 && r->minor != 1)
        abort();
    if (r->content_length < 0 || r->content_length > HTTP_MAX_BODY)
        abort();
    if (!r->path || r->path_len == 0 || r->path[0] != '/')
        abort();
    /* path is inside buf, or the static "/" */
    bool in = r->path >= buf && r->path + r->path_len <= buf + r->head_len;
    if (!in && !(r->path_len == 1 && r->path[0] == '/'))
        abort();
    if (r->query && (r->query < buf || r->query + r->query_len > buf + r->head_len))
        abort();
    if (r->target < buf || r->target + r->target_len > buf + r->head_len ||
        r->target_len > HTTP_MAX_TARGET)
        abort();
    static const char *const keys[] = {"subs", "sort", "limit", "offset", "cid", "state",
                                       "acc", "test", "stream", "consumer", "details", ""};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char v[32];
        memset(v, 'X', sizeof v);
        int k = http_query_get(r->query, r->query_len, keys[i], v, sizeof v);
        if (k >= 0 && (k >= (int)sizeof v || v[k] != 0 || strlen(v) > (size_t)k))
            abort();
        if (k < -2)
            abort();
    }
}

static bool status_ok(int st)
{
    return st == 0 || st == 1 || st == 400 || st == 413 || st == 414 || st == 431 ||
           st == 501 || st == 505;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy so ASan sees any read past the end */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    size_t off = 0;
    for (int round = 0; round < 8 && off <= size; round++) {
        const char *p = buf + off;
        size_t n = size - off;
        http_req r;
        const char *why = NULL;
        int st = http_parse_request(p, n, &r, &why);
        if (!status_ok(st))
            abort();
        if (st == 400 && !why)
            abort();
        http_req r2;
        if (http_parse_request(p, n, &r2, NULL) != st)
            abort();
        if (st != 0)
            break;
        check_req(p, n, &r);
        /* prefixes: never a complete request shorter than the head */
        size_t step = r.head_len > 64 ? r.head_len / 32 : 1;
        for (size_t cut = 0; cut < r.head_len; cut += step) {
            http_req rp;
            int sp = http_parse_request(p, cut, &rp, NULL);
            if (sp == 0 || !status_ok(sp))
                abort();
        }
        /* the next pipelined request, after this one's body */
        uint64_t next = off + r.head_len + (uint64_t)r.content_length;
        if (next >= size)
            break;
        off = (size_t)next;
    }
    /* the query decoder on the raw input as a query string */
    char v[8];
    int k = http_query_get(buf, size, "a", v, sizeof v);
    if (k >= 0 && v[k] != 0)
        abort();
    free(buf);
    return 0;
}
