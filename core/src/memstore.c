/* memstore: the store's index core (sequences, subjects, limits, expiry, queries), the
 * public store_* entry points, and the memory backend (the index holding its records).
 * The file backend (filestore.c) keeps the same index, with file locations instead of
 * records. */
#define _GNU_SOURCE
#define STORE_INTERNAL
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"
#include "sublist.h"
#include "util.h"

/* ---- messages ------------------------------------------------------------------ */

store_msg *store_msg_alloc(uint64_t seq, int64_t ts, int64_t ttl, const char *subj,
                           size_t sl, const void *hdr, size_t hl, const void *data,
                           size_t dl)
{
    store_msg *m = malloc(sizeof *m + sl + hl + dl + 1);
    if (!m)
        return NULL;
    char *p = (char *)(m + 1);
    atomic_init(&m->refs, 1);
    m->seq = seq;
    m->ts = ts;
    m->ttl_ns = ttl;
    memcpy(p, subj, sl);
    m->subj = p;
    m->subj_len = (uint32_t)sl;
    p += sl;
    if (hl) {
        memcpy(p, hdr, hl);
        m->hdr = p;
    } else {
        m->hdr = NULL;
    }
    m->hdr_len = (uint32_t)hl;
    p += hl;
    if (dl)
        memcpy(p, data, dl);
    p[dl] = 0;
    m->data = p;
    m->data_len = (uint32_t)dl;
    return m;
}

void store_msg_retain(store_msg *m)
{
    if (m)
        atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void store_msg_release(store_msg *m)
{
    if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        free(m);
}

uint64_t store_msg_size(store_kind kind, size_t subj_len, size_t hdr_len, size_t data_len)
{
    if (kind == STORE_MEMORY)
        return 16 + subj_len + hdr_len + data_len;
    return 22 + subj_len + hdr_len + data_len + 8 + (hdr_len ? 4 : 0);
}

const char *store_strerror(int code)
{
    switch (code) {
    case STORE_EMAXMSGS: return "maximum messages exceeded";
    case STORE_EMAXBYTES: return "maximum bytes exceeded";
    case STORE_EMAXMSGSPERSUBJ: return "maximum messages per subject exceeded";
    case STORE_EMSGSIZE: return "message size exceeds maximum allowed";
    case STORE_EBADTTL: return "invalid per-message TTL";
    case STORE_ECORRUPT: return "message corrupt (checksum mismatch)";
    default: return ember_strerror(code);
    }
}

/* ---- subjects ------------------------------------------------------------------ */

static uint32_t subj_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h ? h : 1;
}

static uint32_t subj_find(const store *st, const char *s, size_t n)
{
    if (!st->ht_cap)
        return UINT32_MAX;
    uint32_t h = subj_hash(s, n), mask = st->ht_cap - 1;
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t v = st->ht[i];
        if (!v)
            return UINT32_MAX;
        const ssubj *ss = &st->subs[v - 1];
        if (ss->hash == h && ss->len == n && memcmp(ss->s, s, n) == 0)
            return v - 1;
    }
}

static void ht_put(store *st, uint32_t id)
{
    uint32_t mask = st->ht_cap - 1;
    for (uint32_t i = st->subs[id].hash & mask;; i = (i + 1) & mask) {
        if (!st->ht[i]) {
            st->ht[i] = id + 1;
            return;
        }
    }
}

static int ht_grow(store *st)
{
    uint32_t ncap = st->ht_cap ? st->ht_cap * 2 : 64;
    uint32_t *nh = calloc(ncap, sizeof *nh);
    if (!nh)
        return EMBER_ENOMEM;
    free(st->ht);
    st->ht = nh;
    st->ht_cap = ncap;
    for (uint32_t id = 0; id < st->subs_n; id++)
        if (st->subs[id].s)
            ht_put(st, id);
    return 0;
}

static uint32_t subj_add(store *st, const char *s, size_t n)
{
    if ((uint64_t)(st->nsubjects + 1) * 4 > (uint64_t)st->ht_cap * 3 && ht_grow(st) != 0)
        return UINT32_MAX;
    uint32_t id;
    if (st->nfree) {
        id = st->free_ids[--st->nfree];
    } else {
        if (st->subs_n == st->subs_cap) {
            uint32_t nc = st->subs_cap ? st->subs_cap * 2 : 64;
            ssubj *ns = realloc(st->subs, nc * sizeof *ns);
            if (!ns)
                return UINT32_MAX;
            st->subs = ns;
            st->subs_cap = nc;
        }
        id = st->subs_n++;
    }
    ssubj *ss = &st->subs[id];
    memset(ss, 0, sizeof *ss);
    ss->s = malloc(n + 1);
    if (!ss->s) {
        st->free_ids[st->nfree++] = id; /* cannot fail: it came from there or is new */
        return UINT32_MAX;
    }
    memcpy(ss->s, s, n);
    ss->s[n] = 0;
    ss->len = (uint32_t)n;
    ss->hash = subj_hash(s, n);
    ht_put(st, id);
    st->nsubjects++;
    return id;
}

static void subj_del(store *st, uint32_t id)
{
    ssubj *ss = &st->subs[id];
    uint32_t mask = st->ht_cap - 1, i = ss->hash & mask;
    while (st->ht[i] != id + 1)
        i = (i + 1) & mask;
    /* backward-shift deletion */
    for (uint32_t j = (i + 1) & mask; st->ht[j]; j = (j + 1) & mask) {
        uint32_t home = st->subs[st->ht[j] - 1].hash & mask;
        bool move = i <= j ? (home <= i || home > j) : (home <= i && home > j);
        if (move) {
            st->ht[i] = st->ht[j];
            i = j;
        }
    }
    st->ht[i] = 0;
    free(ss->s);
    ss->s = NULL;
    st->nsubjects--;
    if (st->nfree == st->free_cap) {
        uint32_t nc = st->free_cap ? st->free_cap * 2 : 64;
        uint32_t *nf = realloc(st->free_ids, nc * sizeof *nf);
        if (!nf)
            return; /* the slot just leaks until close */
        st->free_ids = nf;
        st->free_cap = nc;
    }
    st->free_ids[st->nfree++] = id;
}

const ssubj *store_core_subject(const store *st, uint32_t id) { return &st->subs[id]; }

/* ---- TTL heap ------------------------------------------------------------------ */

/* When a message stored at ts with TTL ttl (> 0) expires: INT64_MAX = never (also what
 * a never-TTL comes back as from the file index, which keeps at - ts). */
static int64_t ttl_deadline(int64_t ts, int64_t ttl)
{
    if (ttl == STORE_TTL_NEVER || (ts > 0 && ttl >= INT64_MAX - ts))
        return INT64_MAX;
    return ts + ttl;
}

static int ttl_push(store *st, int64_t at, uint64_t seq, int64_t ts)
{
    if (st->ttl_n == st->ttl_cap) {
        size_t nc = st->ttl_cap ? st->ttl_cap * 2 : 64;
        sttl *nt = realloc(st->ttl, nc * sizeof *nt);
        if (!nt)
            return EMBER_ENOMEM;
        st->ttl = nt;
        st->ttl_cap = nc;
    }
    size_t i = st->ttl_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (st->ttl[p].at <= at)
            break;
        st->ttl[i] = st->ttl[p];
        i = p;
    }
    st->ttl[i] = (sttl){at, seq, ts};
    return 0;
}

static void ttl_pop(store *st)
{
    sttl last = st->ttl[--st->ttl_n];
    size_t i = 0, n = st->ttl_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && st->ttl[c + 1].at < st->ttl[c].at)
            c++;
        if (last.at <= st->ttl[c].at)
            break;
        st->ttl[i] = st->ttl[c];
        i = c;
    }
    if (n)
        st->ttl[i] = last;
}

/* ---- sequence slots ------------------------------------------------------------ */

/* Make room for one more slot at the end. */
static int ents_reserve(store *st)
{
    if (st->ents_off + st->ents_n < st->ents_cap)
        return 0;
    if (st->ents_off > 0 && st->ents_off >= st->ents_cap / 2) {
        memmove(st->ents, st->ents + st->ents_off, st->ents_n * sizeof *st->ents);
        st->ents_off = 0;
        return 0;
    }
    size_t nc = st->ents_cap ? st->ents_cap * 2 : 1024;
    sentry *ne = realloc(st->ents, nc * sizeof *ne);
    if (!ne)
        return EMBER_ENOMEM;
    st->ents = ne;
    st->ents_cap = nc;
    return 0;
}

/* Slots exist for [first_seq, first_seq + ents_n); sequences after the last slot up to
 * last_seq (skips, truncations) are implicit deleted slots. */
#define ENTS_MAX_GAP (1ull << 26)

/* The slot for seq > every slot (the caller sets last_seq); fills the gap with deleted
 * slots. NULL on ENOMEM or an absurd gap (corrupt recovery input). */
static sentry *ents_push(store *st, uint64_t seq)
{
    if (st->ents_n == 0) {
        st->first_seq = seq;
        st->ents_off = 0;
    } else if (seq - (st->first_seq + st->ents_n) > ENTS_MAX_GAP) {
        return NULL;
    }
    while (st->first_seq + st->ents_n < seq) {
        if (ents_reserve(st) != 0)
            return NULL;
        memset(&st->ents[st->ents_off + st->ents_n++], 0, sizeof(sentry));
    }
    if (ents_reserve(st) != 0)
        return NULL;
    sentry *e = &st->ents[st->ents_off + st->ents_n++];
    memset(e, 0, sizeof *e);
    return e;
}

/* The last sequence with a slot (only meaningful when ents_n > 0). */
static uint64_t ents_last(const store *st) { return st->first_seq + st->ents_n - 1; }

/* Drop slots of deleted sequences at the end (after removing from the back). */
static void ents_trim_tail(store *st)
{
    while (st->ents_n > 0 && st->ents[st->ents_off + st->ents_n - 1].subj == 0)
        st->ents_n--;
}

/* After the first message went: move first_seq to the next live slot. */
static void ents_advance(store *st)
{
    if (st->msgs == 0) {
        st->ents_n = 0;
        st->ents_off = 0;
        st->first_seq = st->last_seq + 1;
        return;
    }
    while (st->ents_n > 0 && st->ents[st->ents_off].subj == 0) {
        st->ents_off++;
        st->ents_n--;
        st->first_seq++;
    }
}

/* ---- core ---------------------------------------------------------------------- */

int store_core_init(store *st, const store_config *cfg)
{
    if (pthread_mutex_init(&st->mu, NULL) != 0)
        return EMBER_ENOMEM;
    st->kind = cfg->kind;
    st->name = strdup(cfg->name ? cfg->name : "");
    if (!st->name)
        return EMBER_ENOMEM;
    st->lim = cfg->limits;
    uint64_t fs = cfg->first_seq ? cfg->first_seq : 1;
    st->first_seq = fs;
    st->last_seq = fs - 1;
    return 0;
}

void store_core_free(store *st)
{
    if (st->kind == STORE_MEMORY)
        for (size_t i = 0; i < st->ents_n; i++) {
            sentry *e = &st->ents[st->ents_off + i];
            if (e->subj)
                store_msg_release((store_msg *)(uintptr_t)e->loc);
        }
    for (uint32_t i = 0; i < st->subs_n; i++)
        free(st->subs[i].s);
    free(st->subs);
    free(st->free_ids);
    free(st->ht);
    free(st->ents);
    free(st->ttl);
    free(st->name);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

/* Link a filled slot (subj id, size, ts already known) into its subject and totals. */
static int core_link(store *st, uint64_t seq, sentry *e, const char *subj, size_t sl)
{
    uint32_t id = subj_find(st, subj, sl);
    if (id == UINT32_MAX && (id = subj_add(st, subj, sl)) == UINT32_MAX)
        return EMBER_ENOMEM;
    ssubj *ss = &st->subs[id];
    e->subj = id + 1;
    e->prev = ss->last;
    e->next = 0;
    if (ss->last)
        store_ent(st, ss->last)->next = seq;
    else
        ss->first = seq;
    ss->last = seq;
    ss->msgs++;
    st->msgs++;
    st->bytes += e->size;
    return 0;
}

/* Remove a live message: unlink it everywhere, tell the backend. */
static void core_remove(store *st, uint64_t seq, sentry *e, bool erase)
{
    ssubj *ss = &st->subs[e->subj - 1];
    if (e->prev)
        store_ent(st, e->prev)->next = e->next;
    else
        ss->first = e->next;
    if (e->next)
        store_ent(st, e->next)->prev = e->prev;
    else
        ss->last = e->prev;
    if (--ss->msgs == 0)
        subj_del(st, e->subj - 1);
    st->msgs--;
    st->bytes -= e->size;
    bool front = seq == st->first_seq;
    if (st->be)
        st->be->removed(st, seq, e, erase, front);
    e->subj = 0;
    if (front)
        ents_advance(st);
}

int store_core_insert(store *st, uint64_t seq, const char *subj, size_t sl, int64_t ts,
                      int64_t ttl, uint32_t size, uint64_t loc, uint32_t len)
{
    if (seq <= st->last_seq)
        return EMBER_EINVAL;
    if (st->msgs == 0)
        st->ents_n = 0;
    sentry *e = ents_push(st, seq);
    if (!e)
        return EMBER_ENOMEM;
    e->ts = ts;
    e->size = size;
    e->loc = loc;
    e->len = len;
    int rc = core_link(st, seq, e, subj, sl);
    if (rc != 0) {
        st->ents_n--;
        ents_trim_tail(st);
        if (st->ents_n == 0)
            st->first_seq = st->last_seq + 1;
        return rc;
    }
    st->last_seq = seq;
    st->last_ts = ts;
    if (ttl > 0) {
        int64_t at = ttl_deadline(ts, ttl);
        e->flags |= SENTRY_TTL | (at == INT64_MAX ? SENTRY_NEVER : 0);
        if (ttl_push(st, at, seq, ts) != 0)
            return EMBER_ENOMEM;
    }
    return 0;
}

void store_core_forget(store *st, uint64_t seq)
{
    sentry *e = store_ent(st, seq);
    if (e && e->subj)
        core_remove(st, seq, e, false);
}

void store_core_floor(store *st, uint64_t floor, uint64_t last, int64_t last_ts)
{
    while (st->msgs > 0 && st->first_seq < floor)
        core_remove(st, st->first_seq, store_ent(st, st->first_seq), false);
    if (last > st->last_seq) {
        st->last_seq = last;
        st->last_ts = last_ts;
    }
    if (st->msgs == 0) {
        if (floor > st->last_seq + 1)
            st->last_seq = floor - 1;
        ents_advance(st);
    }
}

/* Remove every message after seq (from the back). */
static void core_cut_after(store *st, uint64_t seq)
{
    while (st->msgs > 0 && ents_last(st) > seq) {
        sentry *e = &st->ents[st->ents_off + st->ents_n - 1];
        if (e->subj)
            core_remove(st, ents_last(st), e, false);
        if (st->msgs == 0)
            break;
        st->ents_n--;
    }
    ents_trim_tail(st);
}

void store_core_set_last(store *st, uint64_t last)
{
    core_cut_after(st, last);
    st->last_seq = last;
    if (st->msgs == 0)
        ents_advance(st);
}

/* ---- the memory backend -------------------------------------------------------- */

static int mem_write(store *st, uint64_t seq, const char *subj, size_t sl, const void *hdr,
                     size_t hl, const void *data, size_t dl, int64_t ts, int64_t ttl,
                     sentry *e)
{
    store_msg *m = store_msg_alloc(seq, ts, ttl, subj, sl, hdr, hl, data, dl);
    if (!m)
        return EMBER_ENOMEM;
    e->loc = (uint64_t)(uintptr_t)m;
    return 0;
}

static int mem_load(store *st, uint64_t seq, const sentry *e, store_msg **out)
{
    store_msg *m = (store_msg *)(uintptr_t)e->loc;
    store_msg_retain(m);
    *out = m;
    return 0;
}

static void mem_removed(store *st, uint64_t seq, sentry *e, bool erase, bool front)
{
    store_msg *m = (store_msg *)(uintptr_t)e->loc;
    if (erase && atomic_load(&m->refs) == 1) {
        /* nobody else holds it: scrub the bytes before freeing */
        char *p = (char *)(m + 1);
        memset(p, 0, (size_t)m->subj_len + m->hdr_len + m->data_len);
    }
    store_msg_release(m);
    e->loc = 0;
}

static void mem_commit(store *st) { st->meta_dirty = false; st->truncated = false; }

static int mem_when_durable(store *st, uint64_t seq, store_durable_fn cb, void *ud)
{
    return 1; /* "already durable": the caller calls cb after unlocking */
}

static int mem_barrier(store *st, store_durable_fn cb, void *ud) { return 1; }

static int mem_close(store *st, bool flush, bool destroy) { return 0; }

static const store_backend mem_backend = {
    mem_write, mem_load, mem_removed, mem_commit, mem_when_durable, mem_barrier, mem_close,
};

/* ---- public entry points ------------------------------------------------------- */

static bool filter_all(const char *f) { return !f || !*f || (f[0] == '>' && f[1] == 0); }

static bool filter_literal(const char *f)
{
    size_t n = strlen(f);
    return subject_is_valid_literal(f, n);
}

int store_open(const store_config *cfg, store **out)
{
    if (!cfg || !out || (cfg->kind != STORE_MEMORY && cfg->kind != STORE_FILE))
        return err_set(EMBER_EINVAL, "store: bad config");
    if (cfg->kind == STORE_FILE && (!cfg->dir || !*cfg->dir))
        return err_set(EMBER_EINVAL, "store: a file store needs a directory");
    store *st = calloc(1, sizeof *st);
    if (!st)
        return EMBER_ENOMEM;
    int rc = store_core_init(st, cfg);
    if (rc != 0) {
        free(st->name);
        free(st);
        return rc;
    }
    if (cfg->kind == STORE_MEMORY) {
        st->be = &mem_backend;
    } else if ((rc = filestore_open(st, cfg)) != 0) {
        st->be = NULL;
        store_core_free(st);
        return rc;
    }
    *out = st;
    return 0;
}

static int store_close_impl(store *st, bool flush, bool destroy)
{
    if (!st)
        return EMBER_EINVAL;
    pthread_mutex_lock(&st->mu);
    st->closed = true;
    pthread_mutex_unlock(&st->mu);
    int rc = st->be->close(st, flush, destroy);
    store_core_free(st);
    return rc;
}

int store_close(store *st) { return store_close_impl(st, true, false); }
void store_abandon(store *st) { store_close_impl(st, false, false); }
int store_delete(store *st) { return store_close_impl(st, false, true); }

store_kind store_get_kind(const store *st) { return st->kind; }

static void enforce_limits(store *st)
{
    if (st->lim.discard != STORE_DISCARD_OLD)
        return;
    while (st->lim.max_msgs > 0 && st->msgs > (uint64_t)st->lim.max_msgs)
        core_remove(st, st->first_seq, store_ent(st, st->first_seq), false);
    while (st->lim.max_bytes > 0 && st->bytes > (uint64_t)st->lim.max_bytes)
        core_remove(st, st->first_seq, store_ent(st, st->first_seq), false);
}

static void enforce_per_subject_all(store *st)
{
    if (st->lim.max_msgs_per_subject <= 0)
        return;
    uint64_t max = (uint64_t)st->lim.max_msgs_per_subject;
    for (uint32_t id = 0; id < st->subs_n; id++) {
        while (st->subs[id].s && st->subs[id].msgs > max) {
            uint64_t s = st->subs[id].first;
            core_remove(st, s, store_ent(st, s), false);
        }
    }
}

int store_update_limits(store *st, const store_limits *lim)
{
    if (!st || !lim)
        return EMBER_EINVAL;
    pthread_mutex_lock(&st->mu);
    st->lim = *lim;
    enforce_per_subject_all(st);
    enforce_limits(st);
    st->be->commit(st);
    pthread_mutex_unlock(&st->mu);
    return 0;
}

int store_append(store *st, const char *subj, size_t subj_len, const void *hdr,
                 size_t hdr_len, const void *data, size_t data_len, int64_t ts_ns,
                 int64_t ttl_ns, uint64_t *seq_out)
{
    if (!st || !subj || subj_len == 0 || subj_len > 65535 || hdr_len > UINT32_MAX / 2 ||
        data_len > UINT32_MAX / 2 || (hdr_len && !hdr) || (data_len && !data))
        return EMBER_EINVAL;
    if (ttl_ns < 0)
        return STORE_EBADTTL;
    pthread_mutex_lock(&st->mu);
    int rc = 0;
    if (st->closed) {
        rc = EMBER_ECLOSED;
        goto out;
    }
    const store_limits *L = &st->lim;
    if (L->max_msg_size > 0 && (int64_t)(hdr_len + data_len) > L->max_msg_size) {
        rc = STORE_EMSGSIZE;
        goto out;
    }
    uint32_t id = subj_find(st, subj, subj_len);
    ssubj *ss = id == UINT32_MAX ? NULL : &st->subs[id];
    uint64_t size = store_msg_size(st->kind, subj_len, hdr_len, data_len);
    bool asl = L->max_msgs_per_subject > 0 && ss &&
               ss->msgs >= (uint64_t)L->max_msgs_per_subject;
    if (L->discard == STORE_DISCARD_NEW) {
        if (asl && L->discard_new_per_subject) {
            rc = STORE_EMAXMSGSPERSUBJ;
            goto out;
        }
        if (L->max_msgs > 0 && st->msgs >= (uint64_t)L->max_msgs && !asl) {
            rc = STORE_EMAXMSGS;
            goto out;
        }
        if (L->max_bytes > 0 && st->bytes + size >= (uint64_t)L->max_bytes) {
            /* at the subject limit the oldest of the subject goes: is that enough? */
            if (!asl || store_ent(st, ss->first)->size < size) {
                rc = STORE_EMAXBYTES;
                goto out;
            }
        }
    }
    uint64_t seq = st->last_seq + 1;
    sentry *e = ents_push(st, seq);
    if (!e) {
        rc = EMBER_ENOMEM;
        goto out;
    }
    e->ts = ts_ns;
    e->size = (uint32_t)size;
    rc = st->be->write(st, seq, subj, subj_len, hdr, hdr_len, data, data_len, ts_ns,
                       ttl_ns, e);
    if (rc == 0)
        rc = core_link(st, seq, e, subj, subj_len);
    if (rc != 0) {
        /* The file backend may have written the record: it is then recovered after a
         * restart (a store without memory is in trouble anyway). */
        st->ents_n--;
        ents_trim_tail(st);
        if (st->ents_n == 0)
            st->first_seq = st->last_seq + 1;
        goto out;
    }
    st->last_seq = seq;
    st->last_ts = ts_ns;
    if (ttl_ns > 0) {
        int64_t at = ttl_deadline(ts_ns, ttl_ns);
        e->flags |= SENTRY_TTL | (at == INT64_MAX ? SENTRY_NEVER : 0);
        ttl_push(st, at, seq, ts_ns);
    }
    if (L->max_msgs_per_subject > 0) {
        ss = &st->subs[e->subj - 1];
        while (ss->msgs > (uint64_t)L->max_msgs_per_subject)
            core_remove(st, ss->first, store_ent(st, ss->first), false);
    }
    enforce_limits(st);
    st->be->commit(st);
    if (seq_out)
        *seq_out = seq;
out:
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int store_skip(store *st, uint64_t *seq_out)
{
    if (!st)
        return EMBER_EINVAL;
    pthread_mutex_lock(&st->mu);
    int rc = 0;
    if (st->closed) {
        rc = EMBER_ECLOSED;
    } else {
        st->last_seq++;
        if (st->msgs == 0)
            st->first_seq = st->last_seq + 1;
    }
    if (rc == 0) {
        st->meta_dirty = true;
        st->be->commit(st);
        if (seq_out)
            *seq_out = st->last_seq;
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int store_when_durable(store *st, uint64_t seq, store_durable_fn cb, void *ud)
{
    if (!st || !cb)
        return EMBER_EINVAL;
    pthread_mutex_lock(&st->mu);
    int rc = seq == 0 || seq > st->last_seq ? EMBER_EINVAL
                                            : st->be->when_durable(st, seq, cb, ud);
    pthread_mutex_unlock(&st->mu);
    if (rc == 1) {
        cb(ud, seq, 0);
        rc = 0;
    } else if (rc > 1) { /* 2: failed store, 3: closing */
        cb(ud, seq, rc == 2 ? EMBER_EIO : EMBER_ECLOSED);
        rc = 0;
    }
    return rc;
}

int store_sync_barrier(store *st, store_durable_fn cb, void *ud)
{
    if (!st || !cb)
        return EMBER_EINVAL;
    pthread_mutex_lock(&st->mu);
    int rc = st->be->barrier(st, cb, ud);
    pthread_mutex_unlock(&st->mu);
    if (rc == 1) {
        cb(ud, 0, 0);
        rc = 0;
    } else if (rc > 1) { /* 2: failed store, 3: closing */
        cb(ud, 0, rc == 2 ? EMBER_EIO : EMBER_ECLOSED);
        rc = 0;
    }
    return rc;
}

typedef struct flush_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int status;
} flush_wait;

static void flush_done(void *ud, uint64_t seq, int status)
{
    flush_wait *w = ud;
    pthread_mutex_lock(&w->mu);
    w->done = true;
    w->status = status;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int store_flush(store *st)
{
    flush_wait w = {.done = false};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    int rc = store_sync_barrier(st, flush_done, &w);
    if (rc == 0) {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        rc = w.status;
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return rc;
}

/* ---- reads --------------------------------------------------------------------- */

/* A per-query cache of "does subject id match the filter". */
typedef struct match_cache {
    const char *filter;
    size_t flen;
    uint32_t id[256];
    bool r[256];
} match_cache;

static void mc_init(match_cache *mc, const char *filter)
{
    mc->filter = filter;
    mc->flen = strlen(filter);
    memset(mc->id, 0, sizeof mc->id); /* id 0 = "no subject": never asked */
}

/* sid = sentry.subj (id + 1) */
static bool mc_match(match_cache *mc, const store *st, uint32_t sid)
{
    uint32_t k = sid & 255;
    if (mc->id[k] == sid)
        return mc->r[k];
    const ssubj *ss = &st->subs[sid - 1];
    bool r = subject_matches(mc->filter, mc->flen, ss->s, ss->len);
    mc->id[k] = sid;
    mc->r[k] = r;
    return r;
}

static int load_locked(store *st, uint64_t seq, store_msg **out)
{
    sentry *e = store_ent(st, seq);
    if (!e || !e->subj)
        return EMBER_ENOTFOUND;
    return st->be->load(st, seq, e, out);
}

int store_load(store *st, uint64_t seq, store_msg **out)
{
    if (!st || !out)
        return EMBER_EINVAL;
    pthread_mutex_lock(&st->mu);
    int rc = st->closed ? EMBER_ECLOSED : load_locked(st, seq, out);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static uint64_t last_match_locked(store *st, const char *filter)
{
    if (st->msgs == 0)
        return 0;
    if (filter_all(filter)) {
        uint64_t s = ents_last(st);
        while (s >= st->first_seq && !store_ent(st, s)->subj)
            s--;
        return s;
    }
    if (filter_literal(filter)) {
        uint32_t id = subj_find(st, filter, strlen(filter));
        return id == UINT32_MAX ? 0 : st->subs[id].last;
    }
    uint64_t best = 0;
    size_t flen = strlen(filter);
    if ((uint64_t)st->nsubjects <= st->ents_n) {
        for (uint32_t id = 0; id < st->subs_n; id++) {
            const ssubj *ss = &st->subs[id];
            if (ss->s && ss->last > best && subject_matches(filter, flen, ss->s, ss->len))
                best = ss->last;
        }
        return best;
    }
    match_cache mc;
    mc_init(&mc, filter);
    for (uint64_t s = ents_last(st); s >= st->first_seq; s--) {
        sentry *e = store_ent(st, s);
        if (e->subj && mc_match(&mc, st, e->subj))
            return s;
    }
    return 0;
}

int store_load_last(store *st, const char *filter, store_msg **out)
{
    if (!st || !out)
        return EMBER_EINVAL;
    pthread_mutex_lock(&st->mu);
    int rc;
    if (st->closed) {
        rc = EMBER_ECLOSED;
    } else {
        uint64_t s = last_match_locked(st, filter);
        rc = s ? load_locked(st, s, out) : EMBER_ENOTFOUND;
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static uint64_t next_match_locked(store *st, const char *filter, uint64_t start)
{
    if (st->msgs == 0 || start > ents_last(st))
        return 0;
    if (start < st->first_seq)
        start = st->first_seq;
    if (filter_all(filter)) {
        for (uint64_t s = start; s <= ents_last(st); s++)
            if (store_ent(st, s)->subj)
                return s;
        return 0;
    }
    if (filter_literal(filter)) {
        uint32_t id = subj_find(st, filter, strlen(filter));
        if (id == UINT32_MAX)
            return 0;
        const ssubj *ss = &st->subs[id];
        if (start <= ss->first)
            return ss->first;
        if (start > ss->last)
            return 0;
        for (uint64_t s = start; s <= ss->last; s++)
            if (store_ent(st, s)->subj == id + 1)
                return s;
        return 0;
    }
    match_cache mc;
    mc_init(&mc, filter);
    for (uint64_t s = start; s <= ents_last(st); s++) {
        sentry *e = store_ent(st, s);
        if (e->subj && mc_match(&mc, st, e->subj))
            return s;
    }
    return 0;
}

int store_load_next(store *st, const char *filter, uint64_t start, store_msg **out)
{
    if (!st || !out)
        return EMBER_EINVAL;
    pthread_mutex_lock(&st->mu);
    int rc;
    if (st->closed) {
        rc = EMBER_ECLOSED;
    } else {
        uint64_t s = next_match_locked(st, filter, start);
        rc = s ? load_locked(st, s, out) : EMBER_ENOTFOUND;
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

void store_get_state(store *st, store_state *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&st->mu);
    out->msgs = st->msgs;
    out->bytes = st->bytes;
    out->first_seq = st->msgs ? st->first_seq : st->last_seq + 1;
    out->last_seq = st->last_seq;
    out->last_ts = st->last_ts;
    if (st->msgs) {
        out->first_ts = store_ent(st, st->first_seq)->ts;
        out->num_deleted = st->last_seq - st->first_seq + 1 - st->msgs;
    }
    out->num_subjects = st->nsubjects;
    pthread_mutex_unlock(&st->mu);
}

/* Messages of one subject with seq >= from. */
static uint64_t subj_pending(store *st, const ssubj *ss, uint32_t sid, uint64_t from)
{
    if (from <= ss->first)
        return ss->msgs;
    if (from > ss->last)
        return 0;
    uint64_t n = 0;
    for (uint64_t s = ss->last; s >= from; s = store_ent(st, s)->prev) {
        n++;
        if (store_ent(st, s)->prev == 0)
            break;
    }
    return n;
}

static uint64_t num_pending_locked(store *st, const char *filter, uint64_t from)
{
    if (st->msgs == 0 || from > ents_last(st))
        return 0;
    if (from < st->first_seq)
        from = st->first_seq;
    uint64_t end = ents_last(st);
    if (filter_all(filter)) {
        if (from == st->first_seq)
            return st->msgs;
        uint64_t n = 0;
        if (end - from < from - st->first_seq) {
            for (uint64_t s = from; s <= end; s++)
                n += store_ent(st, s)->subj != 0;
            return n;
        }
        for (uint64_t s = st->first_seq; s < from; s++)
            n += store_ent(st, s)->subj != 0;
        return st->msgs - n;
    }
    if (filter_literal(filter)) {
        uint32_t id = subj_find(st, filter, strlen(filter));
        return id == UINT32_MAX ? 0 : subj_pending(st, &st->subs[id], id + 1, from);
    }
    uint64_t n = 0;
    size_t flen = strlen(filter);
    if ((uint64_t)st->nsubjects <= end - from + 1) {
        for (uint32_t id = 0; id < st->subs_n; id++) {
            const ssubj *ss = &st->subs[id];
            if (ss->s && subject_matches(filter, flen, ss->s, ss->len))
                n += subj_pending(st, ss, id + 1, from);
        }
        return n;
    }
    match_cache mc;
    mc_init(&mc, filter);
    for (uint64_t s = from; s <= end; s++) {
        sentry *e = store_ent(st, s);
        n += e->subj && mc_match(&mc, st, e->subj);
    }
    return n;
}

uint64_t store_num_pending(store *st, const char *filter, uint64_t from_seq)
{
    pthread_mutex_lock(&st->mu);
    uint64_t n = num_pending_locked(st, filter, from_seq);
    pthread_mutex_unlock(&st->mu);
    return n;
}

uint64_t store_subject_count(store *st, const char *subj)
{
    if (!subj)
        return 0;
    pthread_mutex_lock(&st->mu);
    uint32_t id = subj_find(st, subj, strlen(subj));
    uint64_t n = id == UINT32_MAX ? 0 : st->subs[id].msgs;
    pthread_mutex_unlock(&st->mu);
    return n;
}

static int cmp_subj_state(const void *a, const void *b)
{
    return strcmp(((const store_subject_state *)a)->subject,
                  ((const store_subject_state *)b)->subject);
}

int store_subjects_state(store *st, const char *filter, store_subject_state **out,
                         size_t *n)
{
    if (!st || !out || !n)
        return EMBER_EINVAL;
    pthread_mutex_lock(&st->mu);
    bool all = filter_all(filter);
    size_t flen = all ? 0 : strlen(filter);
    size_t cnt = 0, chars = 0;
    for (uint32_t id = 0; id < st->subs_n; id++) {
        const ssubj *ss = &st->subs[id];
        if (ss->s && (all || subject_matches(filter, flen, ss->s, ss->len))) {
            cnt++;
            chars += ss->len + 1;
        }
    }
    store_subject_state *arr = malloc(cnt * sizeof *arr + chars + 1);
    int rc = 0;
    if (!arr) {
        rc = EMBER_ENOMEM;
    } else {
        char *p = (char *)(arr + cnt);
        size_t i = 0;
        for (uint32_t id = 0; id < st->subs_n; id++) {
            const ssubj *ss = &st->subs[id];
            if (!ss->s || !(all || subject_matches(filter, flen, ss->s, ss->len)))
                continue;
            memcpy(p, ss->s, ss->len + 1);
            arr[i++] = (store_subject_state){p, ss->msgs, ss->first, ss->last};
            p += ss->len + 1;
        }
        qsort(arr, cnt, sizeof *arr, cmp_subj_state);
        *out = arr;
        *n = cnt;
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* ---- removes ------------------------------------------------------------------- */

int store_remove(store *st, uint64_t seq, bool erase)
{
    if (!st)
        return EMBER_EINVAL;
    pthread_mutex_lock(&st->mu);
    int rc = 0;
    sentry *e = store_ent(st, seq);
    if (st->closed)
        rc = EMBER_ECLOSED;
    else if (!e || !e->subj)
        rc = EMBER_ENOTFOUND;
    else {
        core_remove(st, seq, e, erase);
        st->be->commit(st);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static uint64_t compact_locked(store *st, uint64_t seq)
{
    uint64_t n = 0;
    while (st->msgs > 0 && st->first_seq < seq) {
        core_remove(st, st->first_seq, store_ent(st, st->first_seq), false);
        n++;
    }
    if (st->msgs == 0 && seq > st->last_seq + 1) {
        st->last_seq = seq - 1;
        st->first_seq = seq;
        st->meta_dirty = true;
    }
    return n;
}

int store_purge(store *st, const char *filter, uint64_t up_to_seq, uint64_t keep,
                uint64_t *purged)
{
    if (!st)
        return EMBER_EINVAL;
    if (!filter_all(filter) && !subject_is_valid_sub(filter, strlen(filter)))
        return EMBER_EINVAL;
    pthread_mutex_lock(&st->mu);
    if (st->closed) {
        pthread_mutex_unlock(&st->mu);
        return EMBER_ECLOSED;
    }
    uint64_t n = 0;
    uint64_t total = num_pending_locked(st, filter, 0);
    uint64_t todo = keep >= total ? 0 : total - keep;
    uint64_t end = up_to_seq ? up_to_seq : UINT64_MAX; /* exclusive */
    if (filter_all(filter)) {
        while (n < todo && st->msgs > 0 && st->first_seq < end) {
            core_remove(st, st->first_seq, store_ent(st, st->first_seq), false);
            n++;
        }
        if (st->msgs == 0 && keep == 0 && up_to_seq == 0)
            st->meta_dirty = true; /* first = last+1 must survive a restart */
    } else if (todo > 0) {
        match_cache mc;
        mc_init(&mc, filter);
        bool lit = filter_literal(filter);
        uint32_t lid = lit ? subj_find(st, filter, strlen(filter)) : UINT32_MAX;
        uint64_t s = lit ? st->subs[lid].first : st->first_seq;
        while (n < todo && s && s < end && st->msgs > 0 && s <= ents_last(st)) {
            if (s < st->first_seq)
                s = st->first_seq;
            sentry *e = store_ent(st, s);
            uint64_t next = lit ? e->next : s + 1;
            if (e->subj && (lit || mc_match(&mc, st, e->subj))) {
                core_remove(st, s, e, false);
                n++;
            }
            s = next;
        }
    }
    st->be->commit(st);
    pthread_mutex_unlock(&st->mu);
    if (purged)
        *purged = n;
    return 0;
}

int store_compact(store *st, uint64_t seq, uint64_t *purged)
{
    if (!st)
        return EMBER_EINVAL;
    pthread_mutex_lock(&st->mu);
    if (st->closed) {
        pthread_mutex_unlock(&st->mu);
        return EMBER_ECLOSED;
    }
    uint64_t n = compact_locked(st, seq);
    st->be->commit(st);
    pthread_mutex_unlock(&st->mu);
    if (purged)
        *purged = n;
    return 0;
}

int store_truncate(store *st, uint64_t seq)
{
    if (!st)
        return EMBER_EINVAL;
    pthread_mutex_lock(&st->mu);
    int rc = 0;
    if (st->closed) {
        rc = EMBER_ECLOSED;
    } else if (seq > st->last_seq) {
        rc = EMBER_EINVAL;
    } else if (seq < st->last_seq) {
        uint64_t floor = st->msgs ? st->first_seq : st->last_seq + 1;
        if (seq + 1 < floor)
            seq = floor - 1; /* cannot go below what is already gone */
        core_cut_after(st, seq);
        st->last_seq = seq;
        if (st->msgs == 0)
            ents_advance(st);
        st->last_ts = 0;
        if (st->msgs > 0) {
            /* the new last may be a deleted slot: trim to the last message */
            st->last_ts = store_ent(st, ents_last(st))->ts;
        }
        st->truncated = true;
        st->meta_dirty = true;
        st->be->commit(st);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* ---- expiry -------------------------------------------------------------------- */

uint64_t store_expire(store *st, int64_t now_ns)
{
    pthread_mutex_lock(&st->mu);
    uint64_t n = 0;
    if (st->closed)
        goto out;
    if (st->lim.max_age_ns > 0) {
        int64_t cutoff = now_ns - st->lim.max_age_ns;
        /* messages with TTL "never" stay (nats-server skips them the same way) */
        for (uint64_t s = st->first_seq; st->msgs > 0 && s <= st->last_seq; s++) {
            if (s < st->first_seq)
                s = st->first_seq; /* removing the first moved it past a gap */
            sentry *e = store_ent(st, s);
            if (!e)
                break;
            if (!e->subj || (e->flags & SENTRY_NEVER))
                continue;
            if (e->ts > cutoff)
                break;
            core_remove(st, s, e, false);
            n++;
        }
    }
    while (st->ttl_n > 0 && st->ttl[0].at <= now_ns) {
        sttl t = st->ttl[0];
        ttl_pop(st);
        sentry *e = store_ent(st, t.seq);
        if (e && e->subj && (e->flags & SENTRY_TTL) && e->ts == t.ts) {
            core_remove(st, t.seq, e, false);
            n++;
        }
    }
    if (n)
        st->be->commit(st);
out:
    pthread_mutex_unlock(&st->mu);
    return n;
}

int64_t store_next_expiry(store *st)
{
    pthread_mutex_lock(&st->mu);
    int64_t at = 0;
    /* drop stale heap tops so the answer is useful */
    while (st->ttl_n > 0) {
        sentry *e = store_ent(st, st->ttl[0].seq);
        if (e && e->subj && (e->flags & SENTRY_TTL) && e->ts == st->ttl[0].ts)
            break;
        ttl_pop(st);
    }
    if (st->ttl_n > 0 && st->ttl[0].at != INT64_MAX)
        at = st->ttl[0].at;
    if (st->lim.max_age_ns > 0 && st->msgs > 0) {
        /* the oldest message that max_age can take (not a TTL "never" one) */
        const sentry *e = NULL;
        for (uint64_t s = st->first_seq; s <= st->last_seq; s++) {
            e = store_ent(st, s);
            if (!e || (e->subj && !(e->flags & SENTRY_NEVER)))
                break;
            e = NULL;
        }
        int64_t a = e ? e->ts + st->lim.max_age_ns : 0;
        if (a && (at == 0 || a < at))
            at = a;
    }
    pthread_mutex_unlock(&st->mu);
    return at;
}
