/* sublist: subject validation and the subscription trie (`*` and `>` wildcards,
 * queue groups, a bounded match cache).
 *
 * Items are opaque `void *` pointers owned by the caller (the broker's subscriptions).
 * The sublist keeps a reference on each item it stores, and each match result keeps a
 * reference on each item it lists, through the retain/release functions given at
 * creation; so a result stays valid after the item was removed from the sublist.
 *
 * Thread safety: every function may be called from any thread concurrently.
 * Internally: a rwlock over the trie, a mutex over the cache.
 */
#ifndef EMBER_SUBLIST_H
#define EMBER_SUBLIST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Subject rules, as nats-server (server/sublist.go):
 * tokens separated by '.', no empty token, no whitespace (space, \t, \r, \n, \f)
 * anywhere. A "subscription subject" may use '*' as a whole token and '>' as the
 * whole last token. A "literal subject" (publish) has no wildcard tokens at all
 * ('*' or '>' inside a longer token, like "a*b", are ordinary characters). */
bool subject_is_valid_sub(const char *subj, size_t len);
bool subject_is_valid_literal(const char *subj, size_t len);
/* Queue group names: non-empty, no whitespace. */
bool subject_is_valid_queue(const char *q, size_t len);
/* Does the literal subject `lit` match the (possibly wildcard) subject `pattern`? */
bool subject_matches(const char *pattern, size_t plen, const char *lit, size_t llen);

typedef void (*sublist_item_fn)(void *item);

typedef struct sublist sublist;

/* One queue group in a result: all members of that group that matched.
 * The broker picks one of them per message. */
typedef struct sublist_qgroup {
    const char *name;       /* points into the result, NUL-terminated */
    void **items;
    size_t n;
} sublist_qgroup;

/* An immutable, refcounted match result. Shared between the cache and callers. */
typedef struct sublist_result {
    atomic_int refs;
    void **psubs;           /* plain (non-queue) subscriptions */
    size_t npsubs;
    sublist_qgroup *qsubs;  /* queue groups */
    size_t nqsubs;
    /* private: how to release the items when the last reference goes */
    sublist_item_fn release;
} sublist_result;

/* retain/release may be NULL (items are then not refcounted). */
sublist *sublist_new(sublist_item_fn retain, sublist_item_fn release);
/* Frees the trie and cache; releases the sublist's reference on every item.
 * Results still held by callers stay valid until released (they never point
 * into the sublist). */
void sublist_free(sublist *sl);

/* Insert `item` under `subject` (wildcards allowed) and optional `queue` (NULL or ""
 * = no queue). Returns 0, or -1 if the subject or queue is invalid (nothing stored).
 * The same item may not be inserted twice. */
int sublist_insert(sublist *sl, const char *subject, const char *queue, void *item);
/* Remove the item stored under subject/queue. Returns 0, or -1 if not found. */
int sublist_remove(sublist *sl, const char *subject, const char *queue, void *item);

/* Match a literal subject. Returns a retained result (never NULL: an empty result
 * when nothing matches, or on allocation failure an empty static result).
 * Release with sublist_result_release. Results are cached (up to 1024 entries,
 * as nats-server's slCacheMax) and cache entries that an insert/remove could
 * change are invalidated. */
sublist_result *sublist_match(sublist *sl, const char *subject, size_t len);
void sublist_result_release(sublist_result *r);

/* Statistics */
typedef struct sublist_stats {
    uint64_t num_subs;
    uint64_t num_cache;
    uint64_t num_inserts;
    uint64_t num_removes;
    uint64_t num_matches;
    uint64_t cache_hits;
} sublist_stats;
void sublist_get_stats(sublist *sl, sublist_stats *out);
/* Fan-out of the cached match results (nats-server's max_fanout / avg_fanout: plain
 * subscriptions plus queue groups per cached subject; 0 when the cache is empty). */
void sublist_cache_fanout(sublist *sl, uint64_t *max_fanout, double *avg_fanout);
/* Number of trie nodes (one per distinct token path). For tests: shows that
 * removes prune empty nodes. */
size_t sublist_num_nodes(sublist *sl);

/* Calls fn for every stored (subject, queue, item), under the read lock; fn must
 * not call back into the sublist. Used for interest propagation (leaf nodes). */
typedef void (*sublist_visit_fn)(void *ctx, const char *subject, const char *queue, void *item);
void sublist_visit(sublist *sl, sublist_visit_fn fn, void *ctx);

#endif
