/* http: a small, bounded HTTP/1.x request parser for the monitoring port (monitor.c).
 * Pure functions over a byte buffer: no allocation, no I/O, safe on any input.
 *
 * What it accepts: a request line "METHOD SP target SP HTTP/1.x" (origin-form "/path?q",
 * absolute-form "http://host/path?q", or "*"), header lines "Name: value", and an empty
 * line; CRLF or bare LF line ends, as Go's net/http. Bodies are not parsed: the caller
 * skips content_length bytes. Transfer-Encoding is answered with 501 (the monitoring
 * endpoints take no body). */
#ifndef EMBER_HTTP_H
#define EMBER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEAD (32 * 1024)   /* request line + headers (431 beyond) */
#define HTTP_MAX_TARGET (8 * 1024)  /* request-target (414 beyond) */
#define HTTP_MAX_HEADERS 100        /* header lines (431 beyond) */
#define HTTP_MAX_BODY (1024 * 1024) /* Content-Length accepted and skipped (413 beyond) */

typedef struct http_req {
    char method[16];         /* NUL-terminated token */
    const char *target;      /* slices into the parsed buffer */
    size_t target_len;
    const char *path;        /* the path part of target ("/" for "*" and bare absolute URLs) */
    size_t path_len;
    const char *query;       /* after '?', without it (NULL when none) */
    size_t query_len;
    int minor;               /* HTTP/1.<minor>: 0 or 1 */
    bool keep_alive;         /* HTTP/1.1 unless "Connection: close"; 1.0 only with keep-alive */
    bool has_host;
    int64_t content_length;  /* 0 when none */
    size_t head_len;         /* bytes of the request line, headers and the empty line */
} http_req;

/* Parse the request at the start of buf. Returns 0 with *r filled when the head is
 * complete, 1 when more bytes are needed (and none of the limits is exceeded yet), or
 * an HTTP status for a request that cannot be served: 400 (malformed, or HTTP/1.1 without
 * Host), 413 (body too large), 414 (target too long), 431 (head too large / too many
 * headers), 501 (Transfer-Encoding), 505 (a version other than HTTP/1.0 and 1.1).
 * On 400 *why (if not NULL) gets a static explanation (Go's texts where it has one). */
int http_parse_request(const char *buf, size_t len, http_req *r, const char **why);

/* The first value of `key` in a query string ("a=1&b=x%20y"), percent- and '+'-decoded
 * into out (cap bytes, NUL-terminated). Pairs with a bad escape are skipped, as Go's
 * url.ParseQuery does. Returns the decoded length, -1 when the key is absent, -2 when
 * the value does not fit in cap. */
int http_query_get(const char *q, size_t qlen, const char *key, char *out, size_t cap);

/* The reason phrase for a status code ("Not Found"); "Unknown" for others. */
const char *http_status_text(int status);

#endif
