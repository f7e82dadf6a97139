#include "msg.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "parser.h"
#include "util.h"

/* ------------------------------------------------------------------ block pool
 *
 * Small message blocks (the common case: a subject and a payload of a few hundred
 * bytes) are recycled instead of going back to malloc. With queued delivery the
 * publisher allocates and the consumer thread frees; with glibc every such free takes
 * the publisher's arena lock against the publisher's next malloc. Here a freed block
 * goes to a per-thread list (no atomics); a thread that frees more than it allocates
 * hands its list over in one CAS to a shared stack, and a thread that runs out takes
 * the whole shared stack in one exchange (pop-all: no ABA). Both levels are bounded;
 * beyond the bounds blocks go back to free(). Under AddressSanitizer the pool is off so
 * that a use after release is still reported. */

#if defined(__SANITIZE_ADDRESS__)
#define MSG_POOL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MSG_POOL 0
#endif
#endif
#ifndef MSG_POOL
#define MSG_POOL 1
#endif

#define MSG_F_POOLED 4u          /* the block came from the pool ... */
#define MSG_F_POOL_BIG 8u        /* ... of the larger class */
#define MSG_POOL_CLASSES 2
__attribute__((unused)) static const size_t pool_class_size[MSG_POOL_CLASSES] = {256, 512}; /* struct included */
#define MSG_POOL_TLS_MAX 256     /* blocks a thread keeps per class before sharing them */
#define MSG_POOL_SHARED_MAX 8192 /* soft bound of each shared stack (2 + 4 MiB) */

/* A free block. A thread's list is handed to the shared stack as one batch: its first
 * node records the batch's length and last node, so that pushing and taking are O(1)
 * per batch. */
typedef struct pool_node {
    struct pool_node *next;       /* within a list / batch */
    struct pool_node *next_batch; /* shared stack: the batch below (first nodes only) */
    struct pool_node *batch_tail;
    long batch_n;
} pool_node;

#if MSG_POOL
static _Atomic(pool_node *) g_pool_head[MSG_POOL_CLASSES]; /* stacks of batches */
static atomic_long g_pool_count[MSG_POOL_CLASSES]; /* blocks in them (after CAS/exchange) */
static pthread_key_t g_pool_key;
static pthread_once_t g_pool_once = PTHREAD_ONCE_INIT;

typedef struct pool_tls {
    pool_node *head, *tail;
    long n;
} pool_tls;
static _Thread_local pool_tls t_pool[MSG_POOL_CLASSES];
static _Thread_local bool t_pool_registered; /* the thread-exit destructor is armed */

/* Give the calling thread's list of class k to the shared stack (or free it when that
 * is full). */
static void pool_flush_tls(int k)
{
    pool_tls *t = &t_pool[k];
    pool_node *first = t->head;
    long n = t->n;
    pool_node *last = t->tail;
    t->head = t->tail = NULL;
    t->n = 0;
    if (!first)
        return;
    if (atomic_load_explicit(&g_pool_count[k], memory_order_relaxed) + n > MSG_POOL_SHARED_MAX) {
        while (first) {
            pool_node *next = first->next;
            free(first);
            first = next;
        }
        return;
    }
    last->next = NULL;
    first->batch_tail = last;
    first->batch_n = n;
    pool_node *old = atomic_load_explicit(&g_pool_head[k], memory_order_relaxed);
    do
        first->next_batch = old;
    while (!atomic_compare_exchange_weak_explicit(&g_pool_head[k], &old, first,
                                                  memory_order_release, memory_order_relaxed));
    atomic_fetch_add_explicit(&g_pool_count[k], n, memory_order_relaxed);
}

static void pool_thread_exit(void *arg)
{
    (void)arg;
    t_pool_registered = false; /* a later destructor releasing messages arms it again */
    for (int k = 0; k < MSG_POOL_CLASSES; k++)
        pool_flush_tls(k);
}

static void pool_key_init(void) { (void)pthread_key_create(&g_pool_key, pool_thread_exit); }

static bool pool_register(void)
{
    if (!t_pool_registered) {
        pthread_once(&g_pool_once, pool_key_init);
        t_pool_registered = pthread_setspecific(g_pool_key, t_pool) == 0;
    }
    return t_pool_registered;
}

static ember_msg *pool_get(int k)
{
    pool_tls *t = &t_pool[k];
    if (!t->head) {
        if (!pool_register()) /* could not clean up at thread exit: keep nothing */
            return NULL;
        pool_node *b = atomic_exchange_explicit(&g_pool_head[k], NULL, memory_order_acquire);
        if (!b)
            return NULL;
        /* join the batches into the thread's list */
        long total = 0;
        t->head = b;
        for (;;) {
            total += b->batch_n;
            pool_node *nb = b->next_batch;
            if (!nb) {
                t->tail = b->batch_tail;
                break;
            }
            b->batch_tail->next = nb;
            b = nb;
        }
        t->n = total;
        atomic_fetch_sub_explicit(&g_pool_count[k], total, memory_order_relaxed);
    }
    pool_node *n = t->head;
    t->head = n->next;
    if (!t->head)
        t->tail = NULL;
    t->n--;
    return (ember_msg *)(void *)n;
}

static void pool_put(ember_msg *m, int k)
{
    if (!pool_register()) { /* cannot clean up at thread exit: do not keep it */
        free(m);
        return;
    }
    pool_tls *t = &t_pool[k];
    pool_node *n = (pool_node *)(void *)m;
    n->next = t->head;
    t->head = n;
    if (!t->tail)
        t->tail = n;
    if (++t->n > MSG_POOL_TLS_MAX)
        pool_flush_tls(k);
}
#endif

static ember_msg *msg_alloc(size_t total, unsigned *flags)
{
#if MSG_POOL
    for (int k = 0; k < MSG_POOL_CLASSES; k++) {
        if (total > pool_class_size[k])
            continue;
        ember_msg *m = pool_get(k);
        if (!m)
            m = malloc(pool_class_size[k]);
        *flags = m ? MSG_F_POOLED | (k ? MSG_F_POOL_BIG : 0) : 0;
        return m;
    }
#endif
    *flags = 0;
    return malloc(total);
}

static void msg_dealloc(ember_msg *m)
{
#if MSG_POOL
    if (m->flags & MSG_F_POOLED) {
        pool_put(m, (m->flags & MSG_F_POOL_BIG) ? 1 : 0);
        return;
    }
#endif
    free(m);
}

ember_msg *msg_build(const char *subject, size_t subject_len, const char *reply,
                     size_t reply_len, const char *hdr, size_t hdr_len, const char *data,
                     size_t data_len)
{
    size_t total = sizeof(ember_msg) + subject_len + 1 + (reply ? reply_len + 1 : 0) +
                   (hdr ? hdr_len + 1 : 0) + data_len + 1;
    unsigned pooled;
    ember_msg *m = msg_alloc(total, &pooled);
    if (!m)
        return NULL;
    atomic_init(&m->refs, 1);
    m->flags = MSG_F_FROZEN | pooled;
    atomic_init(&m->hidx, NULL);
    char *p = m->buf;
    m->subject = p;
    m->subject_len = subject_len;
    memcpy(p, subject, subject_len);
    p[subject_len] = 0;
    p += subject_len + 1;
    if (reply) {
        m->reply = p;
        m->reply_len = reply_len;
        memcpy(p, reply, reply_len);
        p[reply_len] = 0;
        p += reply_len + 1;
    } else {
        m->reply = NULL;
        m->reply_len = 0;
    }
    if (hdr) {
        m->hdr = p;
        m->hdr_len = hdr_len;
        memcpy(p, hdr, hdr_len);
        p[hdr_len] = 0;
        p += hdr_len + 1;
    } else {
        m->hdr = NULL;
        m->hdr_len = 0;
    }
    m->data = p;
    m->data_len = data_len;
    if (data_len)
        memcpy(p, data, data_len);
    p[data_len] = 0;
    return m;
}

EMBER_API int ember_msg_new(ember_msg **out, const char *subject, const char *reply,
                            const void *data, size_t len)
{
    if (!out)
        return err_set(EMBER_EINVAL, "out is NULL");
    *out = NULL;
    if (!subject || !*subject)
        return err_set(EMBER_EINVAL, "subject is empty");
    if (!data && len)
        return err_set(EMBER_EINVAL, "data is NULL with a non-zero length");
    ember_msg *m = msg_build(subject, strlen(subject), reply, reply ? strlen(reply) : 0, NULL,
                             0, data, len);
    if (!m)
        return err_set(EMBER_ENOMEM, "out of memory");
    m->flags &= ~MSG_F_FROZEN; /* a builder: headers may still change */
    *out = m;
    return EMBER_OK;
}

static void hidx_free(hdr_index *h)
{
    if (!h)
        return;
    for (int i = 0; i < h->n; i++) {
        free(h->f[i].key);
        free(h->f[i].value);
    }
    free(h);
}

EMBER_API ember_msg *ember_msg_retain(ember_msg *m)
{
    if (m)
        atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

EMBER_API void ember_msg_release(ember_msg *m)
{
    if (!m)
        return;
    /* the only reference (nobody else can take one from it): no locked instruction */
    if (atomic_load_explicit(&m->refs, memory_order_acquire) != 1 &&
        atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    hidx_free(atomic_load(&m->hidx));
    if (m->flags & MSG_F_HDR_OWNED)
        free(m->hdr);
    msg_dealloc(m);
}

EMBER_API const char *ember_msg_subject(const ember_msg *m) { return m ? m->subject : NULL; }
EMBER_API const char *ember_msg_reply(const ember_msg *m) { return m ? m->reply : NULL; }
EMBER_API const void *ember_msg_data(const ember_msg *m, size_t *len)
{
    if (!m) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = m->data_len;
    return m->data;
}
EMBER_API const char *ember_msg_headers_raw(const ember_msg *m, size_t *len)
{
    if (len)
        *len = m ? m->hdr_len : 0;
    return m ? m->hdr : NULL;
}

static char *dup_trim(const char *p, size_t n)
{
    while (n && (*p == ' ' || *p == '\t')) {
        p++;
        n--;
    }
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

hdr_index *hdr_parse(const char *hdr, size_t len)
{
    /* count lines to size the index */
    int lines = 0;
    for (size_t i = 0; i < len; i++)
        if (hdr[i] == '\n')
            lines++;
    hdr_index *h = calloc(1, sizeof(hdr_index) + (size_t)(lines + 1) * sizeof(hdr_field));
    if (!h)
        return NULL;
    h->status = proto_hdr_status(hdr, len);
    size_t i = 0;
    /* skip the first line */
    while (i < len && hdr[i] != '\n')
        i++;
    i++;
    while (i < len) {
        size_t s = i;
        while (i < len && hdr[i] != '\n')
            i++;
        size_t e = i;
        if (e > s && hdr[e - 1] == '\r')
            e--;
        i++;
        if (e == s)
            continue; /* blank line */
        const char *colon = memchr(hdr + s, ':', e - s);
        if (!colon)
            continue;
        char *k = dup_trim(hdr + s, (size_t)(colon - (hdr + s)));
        char *v = dup_trim(colon + 1, (size_t)(hdr + e - colon - 1));
        if (!k || !v) {
            free(k);
            free(v);
            hidx_free(h);
            return NULL;
        }
        h->f[h->n].key = k;
        h->f[h->n].value = v;
        h->n++;
    }
    return h;
}

const hdr_index *msg_headers(const ember_msg *m)
{
    if (!m || !m->hdr)
        return NULL;
    hdr_index *h = atomic_load_explicit(&((ember_msg *)m)->hidx, memory_order_acquire);
    if (h)
        return h;
    h = hdr_parse(m->hdr, m->hdr_len);
    if (!h)
        return NULL;
    hdr_index *expected = NULL;
    if (!atomic_compare_exchange_strong(&((ember_msg *)m)->hidx, &expected, h)) {
        hidx_free(h);
        return expected;
    }
    return h;
}

EMBER_API const char *ember_msg_header_get(const ember_msg *m, const char *key)
{
    const hdr_index *h = msg_headers(m);
    if (!h || !key)
        return NULL;
    for (int i = 0; i < h->n; i++)
        if (strcmp(h->f[i].key, key) == 0)
            return h->f[i].value;
    return NULL;
}

EMBER_API int ember_msg_header_values(const ember_msg *m, const char *key,
                                      const char **values, int cap)
{
    const hdr_index *h = msg_headers(m);
    if (!h || !key)
        return 0;
    int n = 0;
    for (int i = 0; i < h->n; i++)
        if (strcmp(h->f[i].key, key) == 0) {
            if (values && n < cap)
                values[n] = h->f[i].value;
            n++;
        }
    return n;
}

EMBER_API bool ember_msg_header_at(const ember_msg *m, int idx, const char **key,
                                   const char **value)
{
    const hdr_index *h = msg_headers(m);
    if (!h || idx < 0 || idx >= h->n)
        return false;
    if (key)
        *key = h->f[idx].key;
    if (value)
        *value = h->f[idx].value;
    return true;
}

EMBER_API int ember_msg_status(const ember_msg *m)
{
    const hdr_index *h = msg_headers(m);
    return h ? h->status : 0;
}

static bool key_ok(const char *k)
{
    if (!k || !*k)
        return false;
    for (const char *p = k; *p; p++)
        if (*p == ':' || *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' ||
            (unsigned char)*p < 33 || (unsigned char)*p > 126)
            return false;
    return true;
}

static bool value_ok(const char *v)
{
    if (!v)
        return false;
    for (const char *p = v; *p; p++)
        if (*p == '\r' || *p == '\n')
            return false;
    return true;
}

static int msg_editable(ember_msg *m)
{
    if (!m)
        return err_set(EMBER_EINVAL, "message is NULL");
    if (m->flags & MSG_F_FROZEN)
        return err_set(EMBER_ESTATE, "message headers can no longer change (published or delivered)");
    return 0;
}

static void msg_hdr_changed(ember_msg *m)
{
    hidx_free(atomic_exchange(&m->hidx, NULL));
}

/* Rebuild the header block without the fields named key (all when key NULL), then
 * append key/value if given. */
static int hdr_rebuild(ember_msg *m, const char *del_key, const char *add_key,
                       const char *add_value)
{
    bytebuf b = {0};
    const char *first = "NATS/1.0\r\n";
    size_t first_len = strlen(first);
    if (m->hdr) {
        const char *nl = memchr(m->hdr, '\n', m->hdr_len);
        if (nl) {
            first = m->hdr;
            first_len = (size_t)(nl - m->hdr) + 1;
        }
    }
    if (bytebuf_append(&b, first, first_len))
        goto nomem;
    const hdr_index *h = m->hdr ? msg_headers(m) : NULL;
    if (m->hdr && !h)
        goto nomem;
    for (int i = 0; h && i < h->n; i++) {
        if (del_key && strcmp(h->f[i].key, del_key) == 0)
            continue;
        if (bytebuf_append(&b, h->f[i].key, strlen(h->f[i].key)) || bytebuf_append(&b, ": ", 2) ||
            bytebuf_append(&b, h->f[i].value, strlen(h->f[i].value)) ||
            bytebuf_append(&b, "\r\n", 2))
            goto nomem;
    }
    if (add_key) {
        if (bytebuf_append(&b, add_key, strlen(add_key)) || bytebuf_append(&b, ": ", 2) ||
            bytebuf_append(&b, add_value, strlen(add_value)) || bytebuf_append(&b, "\r\n", 2))
            goto nomem;
    }
    if (bytebuf_append(&b, "\r\n", 2) || bytebuf_append(&b, "", 1))
        goto nomem;
    if (m->flags & MSG_F_HDR_OWNED)
        free(m->hdr);
    msg_hdr_changed(m);
    m->hdr = b.p;
    m->hdr_len = b.len - 1;
    m->flags |= MSG_F_HDR_OWNED;
    return EMBER_OK;
nomem:
    bytebuf_free(&b);
    return err_set(EMBER_ENOMEM, "out of memory");
}

EMBER_API int ember_msg_header_add(ember_msg *m, const char *key, const char *value)
{
    int rc = msg_editable(m);
    if (rc)
        return rc;
    if (!key_ok(key))
        return err_set(EMBER_EINVAL, "invalid header key");
    if (!value_ok(value))
        return err_set(EMBER_EINVAL, "invalid header value (NULL or containing CR/LF)");
    return hdr_rebuild(m, NULL, key, value);
}

EMBER_API int ember_msg_header_set(ember_msg *m, const char *key, const char *value)
{
    int rc = msg_editable(m);
    if (rc)
        return rc;
    if (!key_ok(key))
        return err_set(EMBER_EINVAL, "invalid header key");
    if (!value_ok(value))
        return err_set(EMBER_EINVAL, "invalid header value (NULL or containing CR/LF)");
    return hdr_rebuild(m, key, key, value);
}

EMBER_API int ember_msg_header_delete(ember_msg *m, const char *key)
{
    int rc = msg_editable(m);
    if (rc)
        return rc;
    if (!key)
        return err_set(EMBER_EINVAL, "key is NULL");
    if (!m->hdr)
        return EMBER_OK;
    return hdr_rebuild(m, key, NULL, NULL);
}
