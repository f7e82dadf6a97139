/* store: the JetStream message store (one interface, two backends: memory and file).
 *
 * A store holds one stream's messages, numbered by a 64-bit sequence that only grows
 * (never reused, also across restarts and purges). It enforces the stream's limits
 * (max_msgs, max_bytes, max_age, max_msgs_per_subject, max_msg_size, discard old|new)
 * and per-message TTLs, and answers the queries the stream engine, consumers, KV and
 * the object store need. Semantics follow nats-server's server/store.go, memstore.go
 * and filestore.go (facts, not code): see docs/store.md.
 *
 * Durability (file backend). store_append() returns the assigned sequence at once; the
 * record is in the store (readable by every query) but not yet durable. The caller asks
 * to be told when it is: store_when_durable(st, seq, cb, ud). The store's flusher thread
 * writes the buffered records, fdatasync()s every block written since the last round
 * (one fsync covers every append made meanwhile: group commit), and then calls the
 * callbacks of every sequence it covered, outside the store lock. The stream sends its
 * PubAck from that callback, so by default a PubAck means "fsynced".
 *   - sync_interval_ms == 0 (default): completion after fdatasync.
 *   - sync_interval_ms  > 0: completion as soon as the record is written to the OS
 *     (survives a process kill, not a power loss); fdatasync at most every N ms.
 * Memory backend: store_when_durable() calls cb at once, in the caller's thread.
 * On an I/O error the store becomes failed: pending and later completions get
 * EMBER_EIO, appends fail with EMBER_EIO (an fsync error is never retried).
 *
 * Expiry (max_age and per-message TTL) is done by store_expire(st, now_ns), which the
 * owner calls from its timer (store_next_expiry() says when); there is no internal
 * timer. Timestamps are whatever clock the caller stamps messages with (wall-clock ns
 * for JetStream); now_ns must be on the same clock.
 *
 * Thread safety: every function may be called from any thread; each store serialises
 * its operations behind one mutex (reads included). The file backend has one flusher
 * thread per store for writing, fsync and completions. Completion callbacks run on the
 * flusher thread (or inline in the caller for already-durable sequences and the memory
 * backend), never while the store lock is held, so they may call back into the store.
 * A callback must not call store_close() on its own store.
 *
 * Errors: 0 or a negative code: EMBER_EINVAL, EMBER_ENOTFOUND, EMBER_ENOMEM, EMBER_EIO,
 * EMBER_ECLOSED, or one of the STORE_E* codes below (store_strerror names them all).
 */
#ifndef EMBER_STORE_H
#define EMBER_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storeio.h"

/* Store-specific errors (below the EMBER_E* range). */
enum {
    STORE_EMAXMSGS = -100,       /* discard new: "maximum messages exceeded" (10077) */
    STORE_EMAXBYTES = -101,      /* discard new: "maximum bytes exceeded" (10077) */
    STORE_EMAXMSGSPERSUBJ = -102,/* discard new per subject (10077) */
    STORE_EMSGSIZE = -103,       /* hdr+data over max_msg_size (10054) */
    STORE_EBADTTL = -104,        /* negative per-message TTL */
    STORE_ECORRUPT = -105,       /* a record failed its checksum when loaded */
};
const char *store_strerror(int code);

typedef enum store_kind { STORE_MEMORY = 0, STORE_FILE = 1 } store_kind;
typedef enum store_discard { STORE_DISCARD_OLD = 0, STORE_DISCARD_NEW = 1 } store_discard;

/* Limits: 0 (or negative) means unlimited, like nats-server's -1. */
typedef struct store_limits {
    int64_t max_msgs;
    int64_t max_bytes;              /* counted as nats-server does (see store_msg_size) */
    int64_t max_age_ns;
    int64_t max_msgs_per_subject;
    int64_t max_msg_size;           /* header + data bytes */
    store_discard discard;
    bool discard_new_per_subject;   /* with discard new: reject instead of evicting */
} store_limits;

/* A recovery report, given to on_recover once per open of a file store. */
typedef struct store_recovery {
    bool used_index;          /* the index file was valid and used */
    bool rebuilt;             /* (some) blocks were scanned record by record */
    uint64_t truncated_bytes; /* torn tails cut off (all blocks) */
    uint64_t corrupt_records; /* bad regions skipped in the middle of a block */
    uint64_t corrupt_bytes;   /* bytes in those regions */
    uint64_t blocks;          /* block files found */
    uint64_t msgs;            /* messages recovered */
} store_recovery;

typedef struct store_config {
    store_kind kind;
    const char *name;           /* for messages only; copied */
    const char *dir;            /* file backend: the stream's directory; copied */
    store_limits limits;
    uint64_t first_seq;         /* first sequence of a new store (0 or 1 = 1) */
    uint32_t sync_interval_ms;  /* 0 = durable before completion (default) */
    uint64_t block_size;        /* file backend: rotate blocks past this (0 = 8 MiB) */
    storeio *io;                /* file backend: NULL = storeio_posix() */
    void (*on_recover)(void *ud, const store_recovery *r);
    void *recover_ud;
} store_config;

/* A message as stored. Refcounted, immutable, one allocation; strings are not
 * NUL-terminated except data (data[data_len] == 0). */
typedef struct store_msg {
    atomic_int refs;
    uint64_t seq;
    int64_t ts;          /* ns, as given to store_append */
    int64_t ttl_ns;      /* per-message TTL, 0 = none */
    const char *subj;
    uint32_t subj_len;
    const char *hdr;     /* NULL when hdr_len == 0 */
    uint32_t hdr_len;
    const char *data;
    uint32_t data_len;
} store_msg;

void store_msg_retain(store_msg *m);
void store_msg_release(store_msg *m);

typedef struct store_state {
    uint64_t msgs, bytes;
    uint64_t first_seq;   /* last_seq+1 when empty */
    int64_t first_ts;     /* 0 when empty */
    uint64_t last_seq;    /* 0 (or first_seq-1) for a new store */
    int64_t last_ts;
    uint64_t num_subjects;
    uint64_t num_deleted; /* interior gaps: last-first+1-msgs (0 when empty) */
} store_state;

typedef struct store_subject_state {
    const char *subject;  /* NUL-terminated, inside the returned array's allocation */
    uint64_t msgs, first_seq, last_seq;
} store_subject_state;

typedef struct store store;

/* Completion: status 0 (durable) or EMBER_EIO / EMBER_ECLOSED. seq as passed in. */
typedef void (*store_durable_fn)(void *ud, uint64_t seq, int status);

/* Open (file: recover what is in dir, creating it when missing) or create (memory).
 * *out owned by the caller (store_close). Limits may be changed later. */
int store_open(const store_config *cfg, store **out);
/* Flush, fsync, write the index (file), fail nothing: every pending completion is
 * called (status 0 when it became durable) before this returns. Frees st. */
int store_close(store *st);
/* Free without flushing, writing or calling completions (after a simulated crash). */
void store_abandon(store *st);
/* Close and remove all files (stream delete); pending completions get EMBER_ECLOSED. */
int store_delete(store *st);

int store_update_limits(store *st, const store_limits *lim);
store_kind store_get_kind(const store *st);

/* ttl_ns for a message that never expires, neither by TTL nor by max_age ("Nats-TTL:
 * never"). Kept as a TTL that runs out at INT64_MAX, which survives a restart. */
#define STORE_TTL_NEVER INT64_MAX

/* Append a message. subj must be a literal subject; hdr may be NULL. ts_ns is its
 * timestamp; ttl_ns > 0 gives it a per-message TTL (expires at ts+ttl; STORE_TTL_NEVER:
 * exempt from max_age too). *seq_out gets
 * the new sequence. Enforces limits (discard old evicts, discard new refuses with
 * STORE_EMAXMSGS / STORE_EMAXBYTES / STORE_EMAXMSGSPERSUBJ; per-subject limit evicts
 * the subject's oldest). Never blocks on I/O except when a full write buffer is
 * written out (a pwrite, no fsync). */
int store_append(store *st, const char *subj, size_t subj_len, const void *hdr,
                 size_t hdr_len, const void *data, size_t data_len, int64_t ts_ns,
                 int64_t ttl_ns, uint64_t *seq_out);
/* Consume the next sequence without a message (interest retention with no interest). */
int store_skip(store *st, uint64_t *seq_out);
/* Call cb(ud, seq, status) once seq (and everything written before it) is durable. */
int store_when_durable(store *st, uint64_t seq, store_durable_fn cb, void *ud);
/* Call cb(ud, 0, status) once every record written so far (appends, removes, purges)
 * is durable; for replies to MSG.DELETE / PURGE. */
int store_sync_barrier(store *st, store_durable_fn cb, void *ud);
/* Block until everything written so far is durable (0 or EMBER_EIO). */
int store_flush(store *st);

/* ---- reads: *out is a new reference (store_msg_release). EMBER_ENOTFOUND. -------- */
int store_load(store *st, uint64_t seq, store_msg **out);
/* The last message whose subject matches filter (wildcards allowed; NULL/">" = any). */
int store_load_last(store *st, const char *filter, store_msg **out);
/* The first message with seq >= start whose subject matches filter. */
int store_load_next(store *st, const char *filter, uint64_t start, store_msg **out);

void store_get_state(store *st, store_state *out);
/* Messages matching filter with seq >= from_seq (exact). */
uint64_t store_num_pending(store *st, const char *filter, uint64_t from_seq);
/* Number of messages on one literal subject. */
uint64_t store_subject_count(store *st, const char *subj);
/* Per-subject state of every subject matching filter (NULL = all), sorted by subject.
 * *out is one malloc'd array (free() it) of *n entries. */
int store_subjects_state(store *st, const char *filter, store_subject_state **out,
                         size_t *n);

/* ---- removes ----------------------------------------------------------------------- */
/* Remove one message; erase also overwrites its bytes (file: on disk). ENOTFOUND. */
int store_remove(store *st, uint64_t seq, bool erase);
/* Purge messages matching filter (NULL/">" = all) with seq < up_to_seq (0 = no bound),
 * keeping the newest `keep` matching messages (0 = keep none). *purged may be NULL.
 * A full purge (no filter, no bound, keep 0) leaves first_seq = last_seq + 1. */
int store_purge(store *st, const char *filter, uint64_t up_to_seq, uint64_t keep,
                uint64_t *purged);
/* Remove every message with seq < seq; if seq > last_seq+1 the next append gets seq. */
int store_compact(store *st, uint64_t seq, uint64_t *purged);
/* Remove every message with seq > seq (last_seq becomes seq). */
int store_truncate(store *st, uint64_t seq);

/* ---- expiry -------------------------------------------------------------------- */
/* Remove messages older than max_age and those whose TTL ran out at now_ns. Returns
 * the number removed. */
uint64_t store_expire(store *st, int64_t now_ns);
/* The earliest time (same clock as ts) at which store_expire has work, or 0 = none. */
int64_t store_next_expiry(store *st);

/* Bytes nats-server accounts for a message (memory: 16+subj+hdr+data; file:
 * 22+subj+hdr+data+8, +4 with headers). */
uint64_t store_msg_size(store_kind kind, size_t subj_len, size_t hdr_len, size_t data_len);

/* ---- internal: shared by memstore.c (the index core, the public entry points and the
 * memory backend) and filestore.c (the file backend). Not for the stream engine. ----- */
#ifdef STORE_INTERNAL
#include <pthread.h>

/* One sequence slot. subj == 0: no message (deleted, skipped, or never stored). */
typedef struct sentry {
    int64_t ts;
    uint64_t prev, next;  /* same-subject neighbours (0 = none) */
    uint64_t loc;         /* memory: store_msg *; file: block id << 32 | offset */
    uint32_t subj;        /* subject id + 1 */
    uint32_t size;        /* accounted bytes (store_msg_size) */
    uint32_t len;         /* file: record length */
    uint32_t flags;       /* SENTRY_TTL, SENTRY_NEVER */
} sentry;
#define SENTRY_TTL 1u
#define SENTRY_NEVER 2u   /* TTL "never": max_age skips it (its heap entry is at INT64_MAX) */

typedef struct ssubj {
    char *s;              /* NUL-terminated, NULL when the slot is free */
    uint32_t len, hash;
    uint64_t msgs, first, last;
} ssubj;

typedef struct sttl {
    int64_t at;           /* expiry time */
    uint64_t seq;
    int64_t ts;           /* the message's ts, to tell a stale heap entry */
} sttl;

typedef struct store_backend {
    /* Persist a new message (seq == last_seq+1); fill e->loc / e->len. */
    int (*write)(store *st, uint64_t seq, const char *subj, size_t sl, const void *hdr,
                 size_t hl, const void *data, size_t dl, int64_t ts, int64_t ttl,
                 sentry *e);
    int (*load)(store *st, uint64_t seq, const sentry *e, store_msg **out);
    /* A message leaves the store. front: it was the first message (the file store
     * records the new floor instead of a tombstone). */
    void (*removed)(store *st, uint64_t seq, sentry *e, bool erase, bool front);
    /* End of every mutating call: persist meta changes (floor, last seq, truncation). */
    void (*commit)(store *st);
    int (*when_durable)(store *st, uint64_t seq, store_durable_fn cb, void *ud);
    int (*barrier)(store *st, store_durable_fn cb, void *ud);
    /* Called WITHOUT the store lock. flush: orderly close; else abandon. Frees the
     * backend's data (not the index). destroy: also remove the files. */
    int (*close)(store *st, bool flush, bool destroy);
} store_backend;

struct store {
    pthread_mutex_t mu;
    store_kind kind;
    char *name;
    store_limits lim;
    const store_backend *be;
    void *bed;              /* backend data */
    bool closed;
    /* sequences: ents[ents_off + (seq - first_seq)] for seq in [first_seq, last_seq]
     * while msgs > 0; ents_n == 0 when empty. */
    sentry *ents;
    size_t ents_off, ents_n, ents_cap;
    uint64_t first_seq, last_seq, msgs, bytes;
    int64_t last_ts;
    bool meta_dirty;        /* last_seq / first_seq moved without a message */
    bool truncated;         /* last_seq moved down (store_truncate) */
    /* subjects: slots + open-addressing table of slot index + 1 */
    ssubj *subs;
    uint32_t subs_n, subs_cap, nsubjects;
    uint32_t *free_ids;
    uint32_t nfree, free_cap;
    uint32_t *ht;
    uint32_t ht_cap;        /* power of two */
    /* per-message TTLs: a binary min-heap on at */
    sttl *ttl;
    size_t ttl_n, ttl_cap;
};

static inline sentry *store_ent(store *st, uint64_t seq)
{
    if (st->ents_n == 0 || seq < st->first_seq || seq - st->first_seq >= st->ents_n)
        return 0;
    return &st->ents[st->ents_off + (seq - st->first_seq)];
}

/* Index core (memstore.c), called with st->mu held. */
int store_core_init(store *st, const store_config *cfg);
void store_core_free(store *st);
/* Recovery: add a message at seq (> last_seq; the gap becomes deleted slots). */
int store_core_insert(store *st, uint64_t seq, const char *subj, size_t sl, int64_t ts,
                      int64_t ttl, uint32_t size, uint64_t loc, uint32_t len);
/* Recovery: remove seq if present (no backend call). */
void store_core_forget(store *st, uint64_t seq);
/* Recovery: all seqs below floor are gone; last_seq is at least last. */
void store_core_floor(store *st, uint64_t floor, uint64_t last, int64_t last_ts);
/* Recovery: set last_seq exactly (a truncation record). */
void store_core_set_last(store *st, uint64_t last);
/* A subject's text by id (id = sentry.subj - 1). */
const ssubj *store_core_subject(const store *st, uint32_t id);
store_msg *store_msg_alloc(uint64_t seq, int64_t ts, int64_t ttl, const char *subj,
                           size_t sl, const void *hdr, size_t hl, const void *data,
                           size_t dl);

/* File backend (filestore.c): attach to st (after store_core_init) and recover. */
int filestore_open(store *st, const store_config *cfg);

/* CRC32C (Castagnoli), hardware-accelerated when the CPU has SSE4.2. */
uint32_t store_crc32c(uint32_t crc, const void *buf, size_t n);
#endif /* STORE_INTERNAL */

#endif
