/* storeio: the one narrow file I/O interface the file store uses.
 *
 * Two implementations:
 *  - storeio_posix(): the real one (open/pwrite/pread/fdatasync/... on the OS).
 *  - storeio_mem_new(): a test one that keeps every file in memory and remembers, per
 *    file, what was made durable (by sync) and, per directory entry, whether the entry
 *    was made durable (by sync_dir after the create). storeio_mem_crash() then
 *    simulates a power loss: every unsynced byte is dropped (optionally a torn,
 *    random part of it is kept), and files created but never sync_dir'ed vanish.
 *
 * Paths are plain strings; the file store only uses "<dir>/<name>" paths and lists one
 * directory at a time. Every function returns 0 / a non-negative value on success and
 * a negative errno-style value (-ENOENT, -EIO, ...) on failure.
 *
 * Thread safety: both implementations may be called from any thread; the memory one
 * serialises everything behind one mutex. A handle (fd) may be used concurrently by
 * pread/pwrite/sync from different threads, as with POSIX file descriptors.
 */
#ifndef EMBER_STOREIO_H
#define EMBER_STOREIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct storeio storeio;

/* Called once per directory entry by list_dir (names only, no "." or ".."). */
typedef void (*storeio_list_fn)(void *ud, const char *name);

#define STOREIO_CREATE 1 /* create when missing */
#define STOREIO_TRUNC 2  /* truncate to 0 on open */

struct storeio {
    /* Open (flags: STOREIO_*; always read-write). Returns a handle >= 0. */
    int (*open)(storeio *io, const char *path, int flags);
    int (*close)(storeio *io, int fd);
    /* Full writes/reads: return the byte count (a short read means end of file). */
    ssize_t (*pwrite)(storeio *io, int fd, const void *buf, size_t n, uint64_t off);
    ssize_t (*pread)(storeio *io, int fd, void *buf, size_t n, uint64_t off);
    int (*fdatasync)(storeio *io, int fd);
    int (*ftruncate)(storeio *io, int fd, uint64_t size);
    /* File size through a handle (>= 0). */
    int64_t (*fsize)(storeio *io, int fd);
    int (*rename)(storeio *io, const char *from, const char *to);
    int (*unlink)(storeio *io, const char *path);
    /* mkdir -p; 0 when it exists already. */
    int (*mkdir)(storeio *io, const char *path);
    /* Make directory entries (creates, renames, unlinks) under path durable. */
    int (*sync_dir)(storeio *io, const char *path);
    int (*list_dir)(storeio *io, const char *path, storeio_list_fn fn, void *ud);
};

/* The process-wide POSIX implementation (static; never freed). */
storeio *storeio_posix(void);

/* ---- the in-memory test implementation ------------------------------------------ */

storeio *storeio_mem_new(void);
/* Free it (all files). No handle may be in use. */
void storeio_mem_free(storeio *io);

#define STOREIO_CRASH_CLEAN 0 /* drop every unsynced byte and unsynced create */
#define STOREIO_CRASH_TORN 1  /* also keep a random prefix / random 512-byte sectors of
                               * the unsynced bytes, as a real disk may */

/* Simulate a power loss: every open handle becomes invalid (-EBADF), every file falls
 * back to its durable content (plus, in TORN mode, random parts of what was written
 * after the last sync), and files whose creation was not made durable vanish.
 * seed drives the TORN randomness. Callers must not use a store opened on io after
 * this except to free it with store_abandon(); call storeio_mem_reboot() before opening
 * again. */
void storeio_mem_crash(storeio *io, int mode, uint64_t seed);
/* After a crash every call fails (-EIO) until this "reboot" (so a store still running
 * on io cannot report anything durable past the crash). */
void storeio_mem_reboot(storeio *io);
/* Make any further I/O fail with -EIO (n < 0) or after n more successful calls. */
void storeio_mem_fail_after(storeio *io, long n);

/* Direct access for tests and fuzzing: replace a file's content (it becomes durable and
 * its entry exists durably), read it back (malloc'd copy in *out, caller frees), or get
 * its size (-ENOENT when missing). */
int storeio_mem_put(storeio *io, const char *path, const void *data, size_t n);
int storeio_mem_get(storeio *io, const char *path, void **out, size_t *n);
int64_t storeio_mem_size(storeio *io, const char *path);

#endif
