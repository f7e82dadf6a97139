/* http: the monitoring port's request parser (see http.h). */
#include "http.h"

#include <string.h>
#include <strings.h>

/* RFC 9110 tchar */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Find the end of the line starting at p (at most end): *eol is where the line's text
 * ends (before CR LF or LF), returns the start of the next line, or NULL when no LF yet. */
static const char *line_end(const char *p, const char *end, const char **eol)
{
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    if (!lf)
        return NULL;
    *eol = (lf > p && lf[-1] == '\r') ? lf - 1 : lf;
    return lf + 1;
}

static int bad(const char **why, const char *text)
{
    if (why)
        *why = text;
    return 400;
}

/* Does the header value (a comma-separated token list) contain tok? */
static bool has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
            return true;
    }
    return false;
}

static void split_target(http_req *r)
{
    const char *t = r->target;
    size_t n = r->target_len;
    if (n == 1 && t[0] == '*') {
        r->path = "/";
        r->path_len = 1;
        r->query = NULL;
        r->query_len = 0;
        return;
    }
    if (t[0] != '/') {
        /* absolute-form: skip "scheme://authority" */
        const char *ss = memchr(t, ':', n);
        const char *p = ss + 3; /* checked by the caller: "://" present */
        const char *end = t + n;
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *qm = memchr(p, '?', (size_t)(end - p));
        if (!slash || (qm && qm < slash)) {
            r->path = "/";
            r->path_len = 1;
            if (qm) {
                r->query = qm + 1;
                r->query_len = (size_t)(end - qm - 1);
            } else {
                r->query = NULL;
                r->query_len = 0;
            }
            return;
        }
        t = slash;
        n = (size_t)(end - slash);
    }
    const char *qm = memchr(t, '?', n);
    r->path = t;
    if (qm) {
        r->path_len = (size_t)(qm - t);
        r->query = qm + 1;
        r->query_len = n - r->path_len - 1;
    } else {
        r->path_len = n;
        r->query = NULL;
        r->query_len = 0;
    }
}

static bool absolute_form_ok(const char *t, size_t n)
{
    /* scheme ":" "//" authority [path-abempty] [ "?" query ] */
    size_t i = 0;
    if (n == 0 || !((t[0] >= 'a' && t[0] <= 'z') || (t[0] >= 'A' && t[0] <= 'Z')))
        return false;
    while (i < n && t[i] != ':') {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '-' || c == '.'))
            return false;
        i++;
    }
    return i + 3 <= n && t[i] == ':' && t[i + 1] == '/' && t[i + 2] == '/';
}

int http_parse_request(const char *buf, size_t len, http_req *r, const char **why)
{
    memset(r, 0, sizeof *r);
    if (why)
        *why = NULL;
    const char *p = buf, *end = buf + len;
    /* Go tolerates empty lines before the request line (RFC 9112 2.2) */
    int skipped = 0;
    while (p < end && (*p == '\r' || *p == '\n') && skipped < 8) {
        if (*p == '\n')
            skipped++;
        p++;
    }
    size_t limit = len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD;
    const char *lend = buf + limit;
    const char *eol;
    const char *next = line_end(p, lend, &eol);
    if (!next) {
        /* no complete request line yet: reject early what can never become one */
        size_t have = (size_t)(lend - p);
        for (size_t i = 0; i < have && i < sizeof r->method; i++) {
            if (p[i] == ' ')
                break;
            if (!is_tchar((unsigned char)p[i]))
                return bad(why, "malformed HTTP request");
            if (i + 1 == sizeof r->method)
                return bad(why, "method too long");
        }
        if (have > HTTP_MAX_TARGET + 32)
            return 414;
        return len >= HTTP_MAX_HEAD ? 431 : 1;
    }
    /* request line: method SP target SP version */
    const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
    if (!sp1 || sp1 == p)
        return bad(why, "malformed HTTP request");
    size_t ml = (size_t)(sp1 - p);
    if (ml >= sizeof r->method)
        return bad(why, "method too long");
    for (size_t i = 0; i < ml; i++)
        if (!is_tchar((unsigned char)p[i]))
            return bad(why, "invalid method");
    memcpy(r->method, p, ml);
    r->method[ml] = 0;
    const char *t = sp1 + 1;
    const char *sp2 = memchr(t, ' ', (size_t)(eol - t));
    if (!sp2 || sp2 == t)
        return bad(why, "malformed HTTP request");
    r->target = t;
    r->target_len = (size_t)(sp2 - t);
    if (r->target_len > HTTP_MAX_TARGET)
        return 414;
    for (size_t i = 0; i < r->target_len; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c <= ' ' || c == 0x7f)
            return bad(why, "invalid request target");
    }
    if (!(t[0] == '/' || (r->target_len == 1 && t[0] == '*') ||
          absolute_form_ok(t, r->target_len)))
        return bad(why, "invalid request target");
    const char *v = sp2 + 1;
    size_t vl = (size_t)(eol - v);
    if (vl != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9')
        return bad(why, "malformed HTTP version");
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return 505;
    r->minor = v[7] - '0';
    r->keep_alive = r->minor == 1;
    split_target(r);

    /* headers */
    bool conn_close = false, conn_keep = false, have_cl = false;
    int nh = 0;
    p = next;
    for (;;) {
        next = line_end(p, lend, &eol);
        if (!next)
            return len >= HTTP_MAX_HEAD ? 431 : 1;
        if (eol == p)
            break; /* the empty line */
        if (++nh > HTTP_MAX_HEADERS)
            return 431;
        if (*p == ' ' || *p == '\t')
            return bad(why, "malformed MIME header: obsolete line folding");
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p)
            return bad(why, "malformed MIME header line");
        for (const char *k = p; k < colon; k++)
            if (!is_tchar((unsigned char)*k))
                return bad(why, "invalid header field name");
        size_t kl = (size_t)(colon - p);
        const char *val = colon + 1;
        const char *vend = eol;
        while (val < vend && (*val == ' ' || *val == '\t'))
            val++;
        while (vend > val && (vend[-1] == ' ' || vend[-1] == '\t'))
            vend--;
        size_t vlen = (size_t)(vend - val);
        for (size_t i = 0; i < vlen; i++) {
            unsigned char c = (unsigned char)val[i];
            if ((c < ' ' && c != '\t') || c == 0x7f)
                return bad(why, "invalid header field value");
        }
        if (kl == 4 && strncasecmp(p, "Host", 4) == 0) {
            if (r->has_host)
                return bad(why, "too many Host headers");
            r->has_host = true;
        } else if (kl == 10 && strncasecmp(p, "Connection", 10) == 0) {
            if (has_token(val, vlen, "close"))
                conn_close = true;
            if (has_token(val, vlen, "keep-alive"))
                conn_keep = true;
        } else if (kl == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
            if (vlen == 0 || vlen > 18)
                return bad(why, "bad Content-Length");
            int64_t n = 0;
            for (size_t i = 0; i < vlen; i++) {
                if (val[i] < '0' || val[i] > '9')
                    return bad(why, "bad Content-Length");
                n = n * 10 + (val[i] - '0');
            }
            if (have_cl && n != r->content_length)
                return bad(why, "message cannot contain multiple Content-Length headers");
            have_cl = true;
            r->content_length = n;
        } else if (kl == 17 && strncasecmp(p, "Transfer-Encoding", 17) == 0) {
            return 501;
        }
        p = next;
    }
    r->head_len = (size_t)(next - buf);
    if (r->minor == 1 && !r->has_host)
        return bad(why, "missing required Host header");
    if (r->content_length > HTTP_MAX_BODY)
        return 413;
    if (conn_close)
        r->keep_alive = false;
    else if (r->minor == 0 && conn_keep)
        r->keep_alive = true;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode s[0..n) into out (cap); -1 on a bad escape, -2 when it does not fit. */
static int unescape(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = (char)(h * 16 + l);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (o + 1 >= cap)
            return -2;
        out[o++] = c;
    }
    if (cap)
        out[o] = 0;
    return (int)o;
}

int http_query_get(const char *q, size_t qlen, const char *key, char *out, size_t cap)
{
    if (!q || !key || !out || cap == 0)
        return -1;
    char kbuf[64];
    size_t i = 0;
    while (i <= qlen) {
        size_t s = i;
        while (i < qlen && q[i] != '&')
            i++;
        const char *pair = q + s;
        size_t pl = i - s;
        i++; /* past '&' (or the end) */
        if (pl == 0)
            continue;
        /* Go 1.17+: a ';' in the query makes the pair invalid */
        if (memchr(pair, ';', pl))
            continue;
        const char *eq = memchr(pair, '=', pl);
        size_t kl = eq ? (size_t)(eq - pair) : pl;
        int k = unescape(pair, kl, kbuf, sizeof kbuf);
        if (k < 0 || strcmp(kbuf, key) != 0 || strlen(kbuf) != (size_t)k)
            continue;
        const char *val = eq ? eq + 1 : pair + pl;
        size_t vl = eq ? pl - kl - 1 : 0;
        int n = unescape(val, vl, out, cap);
        if (n == -1)
            continue;
        return n;
    }
    return -1;
}

const char *http_status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Request Entity Too Large";
    case 414: return "Request URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}
