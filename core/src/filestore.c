/* filestore: the file backend of the message store.
 *
 * Layout: <dir>/blk/<id>.blk append-only block files, <dir>/index.idx (written on clean
 * close). Every record: 44-byte header + subject + header bytes + data:
 *   0 magic "EBM1" | 4 crc32c of bytes [8, len) | 8 len (total) | 12 type | 13 flags
 *   14 subj_len u16 | 16 hdr_len u32 | 20 seq u64 | 28 ts i64 | 36 ttl i64
 * (little endian). Types: MSG; DEL (a tombstone for seq); META (seq = floor: every
 * sequence below is gone; ts = last_ts; ttl = last_seq); TRUNC (last_seq := seq);
 * ERASED (an overwritten MSG). Every block starts with a META, so the sequence
 * high-water mark survives when older blocks are removed. See docs/store.md.
 */
#define _GNU_SOURCE
#define STORE_INTERNAL
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ember.h"
#include "util.h"

#define REC_HDR 44u
#define REC_MAGIC 0x314D4245u /* "EBM1" */
#define REC_MAX (256u << 20)
#define BLK_DEFAULT (8u << 20)
#define WBUF_MAX (1u << 20)
/* While sync rounds are small (publishers waiting for their PubAck one at a time), the
 * active block is kept zero-filled ahead of its end: an fdatasync that only carries data
 * into blocks already written costs one device flush (~95 us here) where an append that
 * grows the file also writes the inode (~145 us). The zeros go ahead in steps of what
 * the block holds (64 KiB..1 MiB), refreshed when fewer than PREALLOC_LOW remain;
 * recovery reads a zero tail as the block's clean end. Large rounds (bulk publishing)
 * skip it: writing every byte twice would cost more than the inode write saves. */
#define PREALLOC_MIN (64u << 10)
#define PREALLOC_MAX (1u << 20)
#define PREALLOC_LOW (32u << 10)
#define PREALLOC_ROUND_MAX (16u << 10) /* average bytes a sync round, above: no zeros */

enum { REC_MSG = 1, REC_DEL = 2, REC_META = 3, REC_TRUNC = 4, REC_ERASED = 5 };

/* ---- CRC32C -------------------------------------------------------------------- */

static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static bool crc_hw;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
#if defined(__x86_64__)
    __builtin_cpu_init();
    crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t c, const uint8_t *p,
                                                           size_t n)
{
    uint64_t c64 = c;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = __builtin_ia32_crc32di(c64, v);
        p += 8;
        n -= 8;
    }
    c = (uint32_t)c64;
    while (n--)
        c = __builtin_ia32_crc32qi(c, *p++);
    return c;
}
#endif

uint32_t store_crc32c(uint32_t crc, const void *buf, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const uint8_t *p = buf;
    uint32_t c = ~crc;
#if defined(__x86_64__)
    if (crc_hw)
        return ~crc_sse42(c, p, n);
#endif
    while (n >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
        lo ^= c;
        c = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^
            crc_tab[5][(lo >> 16) & 0xff] ^ crc_tab[4][lo >> 24] ^ crc_tab[3][hi & 0xff] ^
            crc_tab[2][(hi >> 8) & 0xff] ^ crc_tab[1][(hi >> 16) & 0xff] ^
            crc_tab[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = (c >> 8) ^ crc_tab[0][(c ^ *p++) & 0xff];
    return ~c;
}

/* ---- little-endian helpers ----------------------------------------------------- */

static void wr16(char *p, uint16_t v) { p[0] = (char)v; p[1] = (char)(v >> 8); }
static void wr32(char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (char)(v >> (8 * i));
}
static void wr64(char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (char)(v >> (8 * i));
}
static uint16_t rd16(const char *p)
{
    const uint8_t *u = (const uint8_t *)p;
    return (uint16_t)(u[0] | u[1] << 8);
}
static uint32_t rd32(const char *p)
{
    const uint8_t *u = (const uint8_t *)p;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}
static uint64_t rd64(const char *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* ---- types --------------------------------------------------------------------- */

typedef struct fblk {
    uint32_t id;
    int fd;
    uint64_t size;     /* bytes, including those still in the write buffer */
    uint64_t wr;       /* bytes written to the file */
    uint64_t zeroed;   /* file size: zeros from wr to here (active block: preallocated) */
    uint64_t max_seq;  /* highest message sequence in it */
    uint64_t last_off; /* last record, for index validation */
    uint32_t last_crc;
    int refs;          /* the flusher holds one while syncing */
    bool dirty;        /* written since the last sync */
    bool dead;         /* unlinked: close when refs drops to 0 */
} fblk;

typedef struct fwaiter {
    uint64_t pos, seq;
    store_durable_fn cb;
    void *ud;
} fwaiter;

typedef struct fdead {
    fblk *b;
    uint64_t pos; /* unlink once this log position is synced */
} fdead;

typedef struct fstore {
    storeio *io;
    char *dir, *blkdir;
    uint64_t block_size;
    uint32_t sync_ms;
    fblk **blks;       /* sorted by id; the last one is active */
    size_t nblks, blks_cap;
    bytebuf wbuf;      /* bytes of the active block from active->wr on */
    uint64_t log_pos, synced_pos, durable_pos, durable_seq;
    fwaiter *w;
    size_t w_head, w_n, w_cap;
    fdead *dead;
    size_t ndead, dead_cap;
    bool dirsync;      /* a block was created since the last sync */
    bool floor_dirty;
    uint64_t floor_written;
    int failed;        /* 0 or EMBER_EIO */
    bool stop, abandon, started, idle;
    pthread_t thr;
    pthread_cond_t cv;
    int64_t last_sync_ns;
    uint64_t round_avg; /* bytes a sync round, moving average (prealloc) */
    /* recovery */
    store_recovery rep;
} fstore;

#define FS(st) ((fstore *)(st)->bed)

static void fs_fail(store *st, int rc, const char *what)
{
    fstore *fs = FS(st);
    if (!fs->failed) {
        fs->failed = EMBER_EIO;
        err_set(EMBER_EIO, "store %s: %s: %s", st->name, what, strerror(-rc));
    }
}

static char *path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + lb + 2);
    if (p) {
        memcpy(p, a, la);
        p[la] = '/';
        memcpy(p + la + 1, b, lb + 1);
    }
    return p;
}

static char *blk_path(fstore *fs, uint32_t id)
{
    char name[32];
    snprintf(name, sizeof name, "%" PRIu32 ".blk", id);
    return path_join(fs->blkdir, name);
}

static fblk *blk_find(fstore *fs, uint32_t id)
{
    size_t lo = 0, hi = fs->nblks;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (fs->blks[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < fs->nblks && fs->blks[lo]->id == id ? fs->blks[lo] : NULL;
}

static int blk_push(fstore *fs, fblk *b)
{
    if (fs->nblks == fs->blks_cap) {
        size_t nc = fs->blks_cap ? fs->blks_cap * 2 : 16;
        fblk **nb = realloc(fs->blks, nc * sizeof *nb);
        if (!nb)
            return EMBER_ENOMEM;
        fs->blks = nb;
        fs->blks_cap = nc;
    }
    fs->blks[fs->nblks++] = b;
    return 0;
}

static void blk_close(fstore *fs, fblk *b)
{
    if (b->fd >= 0)
        fs->io->close(fs->io, b->fd);
    free(b);
}

/* ---- records ------------------------------------------------------------------- */

static uint32_t rec_encode(char *p, int type, uint64_t seq, int64_t ts, int64_t ttl,
                           const char *subj, size_t sl, const void *hdr, size_t hl,
                           const void *data, size_t dl)
{
    uint32_t len = (uint32_t)(REC_HDR + sl + hl + dl);
    wr32(p, REC_MAGIC);
    wr32(p + 8, len);
    p[12] = (char)type;
    p[13] = 0;
    wr16(p + 14, (uint16_t)sl);
    wr32(p + 16, (uint32_t)hl);
    wr64(p + 20, seq);
    wr64(p + 28, (uint64_t)ts);
    wr64(p + 36, (uint64_t)ttl);
    char *q = p + REC_HDR;
    if (sl)
        memcpy(q, subj, sl);
    if (hl)
        memcpy(q + sl, hdr, hl);
    if (dl)
        memcpy(q + sl + hl, data, dl);
    uint32_t crc = store_crc32c(0, p + 8, len - 8);
    wr32(p + 4, crc);
    return crc;
}

/* Is there a whole valid record at p (avail bytes)? */
static bool rec_valid(const char *p, size_t avail, uint32_t *len_out)
{
    if (avail < REC_HDR || rd32(p) != REC_MAGIC)
        return false;
    uint32_t len = rd32(p + 8);
    if (len < REC_HDR || len > avail || len > REC_MAX)
        return false;
    if ((uint64_t)REC_HDR + rd16(p + 14) + rd32(p + 16) > len)
        return false;
    if (store_crc32c(0, p + 8, len - 8) != rd32(p + 4))
        return false;
    *len_out = len;
    return true;
}

static void fs_kick(fstore *fs)
{
    if (fs->idle)
        pthread_cond_signal(&fs->cv);
}

/* Write the buffered bytes of the active block (store lock held). */
static int fs_flush_wbuf(store *st)
{
    fstore *fs = FS(st);
    if (fs->wbuf.len == 0)
        return 0;
    if (fs->failed)
        return fs->failed;
    fblk *b = fs->blks[fs->nblks - 1];
    ssize_t w = fs->io->pwrite(fs->io, b->fd, fs->wbuf.p, fs->wbuf.len, b->wr);
    if (w < 0 || (size_t)w != fs->wbuf.len) {
        fs_fail(st, w < 0 ? (int)w : -EIO, "write");
        return EMBER_EIO;
    }
    b->wr += fs->wbuf.len;
    if (b->zeroed < b->wr)
        b->zeroed = b->wr;
    b->dirty = true;
    fs->wbuf.len = 0;
    return 0;
}

static int fs_append_rec(store *st, int type, uint64_t seq, int64_t ts, int64_t ttl,
                         const char *subj, size_t sl, const void *hdr, size_t hl,
                         const void *data, size_t dl, uint32_t *blk_id, uint32_t *off);

/* Drop a block's zero tail (a block that is no longer active; failures only waste the
 * space, and recovery reads the zeros as the block's end). */
static void fs_trim(fstore *fs, fblk *b)
{
    if (b->zeroed > b->wr && fs->io->ftruncate(fs->io, b->fd, b->wr) == 0)
        b->zeroed = b->wr;
}

/* Keep zeros ahead of the active block's end (store lock held, after fs_flush_wbuf).
 * Written under the lock so no data write can land in the range meanwhile; the next
 * fdatasync makes them durable with the data. */
static void fs_prealloc(store *st)
{
    static const char zeros[64 << 10];
    fstore *fs = FS(st);
    if (!fs->nblks || fs->failed || fs->sync_ms > 0 || fs->round_avg > PREALLOC_ROUND_MAX)
        return;
    fblk *b = fs->blks[fs->nblks - 1];
    uint64_t from = b->zeroed > b->wr ? b->zeroed : b->wr;
    if (from - b->wr >= PREALLOC_LOW || b->wr >= fs->block_size)
        return;
    uint64_t step = b->wr < PREALLOC_MIN ? PREALLOC_MIN : b->wr > PREALLOC_MAX ? PREALLOC_MAX : b->wr;
    uint64_t to = from + step;
    if (to > fs->block_size)
        to = fs->block_size;
    while (from < to) {
        size_t n = to - from > sizeof zeros ? sizeof zeros : (size_t)(to - from);
        ssize_t w = fs->io->pwrite(fs->io, b->fd, zeros, n, from);
        if (w != (ssize_t)n)
            return; /* only slower appends: the data writes report real errors */
        from += n;
        b->zeroed = from;
        b->dirty = true;
    }
}

/* Start a new active block (its first record is a META). */
static int fs_rotate(store *st)
{
    fstore *fs = FS(st);
    int rc = fs_flush_wbuf(st);
    if (rc != 0)
        return rc;
    if (fs->nblks)
        fs_trim(fs, fs->blks[fs->nblks - 1]);
    uint32_t id = fs->nblks ? fs->blks[fs->nblks - 1]->id + 1 : 1;
    char *path = blk_path(fs, id);
    fblk *b = calloc(1, sizeof *b);
    if (!path || !b) {
        free(path);
        free(b);
        return EMBER_ENOMEM;
    }
    b->id = id;
    b->fd = fs->io->open(fs->io, path, STOREIO_CREATE | STOREIO_TRUNC);
    free(path);
    if (b->fd < 0) {
        fs_fail(st, b->fd, "create block");
        free(b);
        return EMBER_EIO;
    }
    if ((rc = blk_push(fs, b)) != 0) {
        blk_close(fs, b);
        return rc;
    }
    fs->dirsync = true;
    uint64_t floor = st->msgs ? st->first_seq : st->last_seq + 1;
    fs->floor_written = floor;
    return fs_append_rec(st, REC_META, floor, st->last_ts, (int64_t)st->last_seq, NULL, 0,
                         NULL, 0, NULL, 0, NULL, NULL);
}

static int fs_append_rec(store *st, int type, uint64_t seq, int64_t ts, int64_t ttl,
                         const char *subj, size_t sl, const void *hdr, size_t hl,
                         const void *data, size_t dl, uint32_t *blk_id, uint32_t *off)
{
    fstore *fs = FS(st);
    if (fs->failed)
        return fs->failed;
    uint64_t len = REC_HDR + sl + hl + dl;
    if (len > REC_MAX)
        return EMBER_EINVAL;
    fblk *b = fs->nblks ? fs->blks[fs->nblks - 1] : NULL;
    if (type != REC_META || !b) {
        if (!b || (b->size > 0 && b->size + len > fs->block_size)) {
            int rc = fs_rotate(st);
            if (rc != 0)
                return rc;
            b = fs->blks[fs->nblks - 1];
        }
    }
    if (bytebuf_reserve(&fs->wbuf, len) != 0)
        return EMBER_ENOMEM;
    uint32_t crc = rec_encode(fs->wbuf.p + fs->wbuf.len, type, seq, ts, ttl, subj, sl, hdr,
                              hl, data, dl);
    fs->wbuf.len += len;
    if (blk_id)
        *blk_id = b->id;
    if (off)
        *off = (uint32_t)b->size;
    b->last_off = b->size;
    b->last_crc = crc;
    b->size += len;
    fs->log_pos += len;
    if (type == REC_MSG && seq > b->max_seq)
        b->max_seq = seq;
    if (fs->wbuf.len >= WBUF_MAX)
        fs_flush_wbuf(st);
    fs_kick(fs);
    return 0;
}

/* ---- backend ops --------------------------------------------------------------- */

static int fb_write(store *st, uint64_t seq, const char *subj, size_t sl, const void *hdr,
                    size_t hl, const void *data, size_t dl, int64_t ts, int64_t ttl,
                    sentry *e)
{
    uint32_t id, off;
    int rc = fs_append_rec(st, REC_MSG, seq, ts, ttl, subj, sl, hdr, hl, data, dl, &id, &off);
    if (rc != 0)
        return rc;
    e->loc = (uint64_t)id << 32 | off;
    e->len = (uint32_t)(REC_HDR + sl + hl + dl);
    return 0;
}

/* Read a record's bytes (store lock held). */
static int fs_read(store *st, uint32_t id, uint32_t off, uint32_t len, char *buf)
{
    fstore *fs = FS(st);
    fblk *b = blk_find(fs, id);
    if (!b)
        return EMBER_ENOTFOUND;
    if (off >= b->wr) {
        if (b != fs->blks[fs->nblks - 1] || off - b->wr + len > fs->wbuf.len)
            return STORE_ECORRUPT;
        memcpy(buf, fs->wbuf.p + (off - b->wr), len);
        return 0;
    }
    if (off + len > b->wr)
        return STORE_ECORRUPT;
    ssize_t r = fs->io->pread(fs->io, b->fd, buf, len, off);
    if (r < 0)
        return EMBER_EIO;
    return (uint32_t)r == len ? 0 : STORE_ECORRUPT;
}

static int fb_load(store *st, uint64_t seq, const sentry *e, store_msg **out)
{
    store_msg *m = malloc(sizeof *m + e->len + 1);
    if (!m)
        return EMBER_ENOMEM;
    char *p = (char *)(m + 1);
    int rc = fs_read(st, (uint32_t)(e->loc >> 32), (uint32_t)e->loc, e->len, p);
    uint32_t len;
    if (rc == 0 && (!rec_valid(p, e->len, &len) || len != e->len || p[12] != REC_MSG ||
                    rd64(p + 20) != seq))
        rc = STORE_ECORRUPT;
    if (rc != 0) {
        free(m);
        return err_set(rc, "store %s: load %" PRIu64 ": %s", st->name, seq,
                       store_strerror(rc));
    }
    uint32_t sl = rd16(p + 14), hl = rd32(p + 16);
    atomic_init(&m->refs, 1);
    m->seq = seq;
    m->ts = (int64_t)rd64(p + 28);
    m->ttl_ns = (int64_t)rd64(p + 36);
    m->subj = p + REC_HDR;
    m->subj_len = sl;
    m->hdr = hl ? p + REC_HDR + sl : NULL;
    m->hdr_len = hl;
    m->data = p + REC_HDR + sl + hl;
    m->data_len = len - REC_HDR - sl - hl;
    p[len] = 0;
    *out = m;
    return 0;
}

/* Overwrite a record with an ERASED record of the same length. */
static void fs_erase(store *st, uint64_t seq, const sentry *e)
{
    fstore *fs = FS(st);
    fblk *b = blk_find(fs, (uint32_t)(e->loc >> 32));
    uint32_t off = (uint32_t)e->loc;
    if (!b || fs->failed)
        return;
    char *rec = malloc(e->len);
    if (!rec)
        return;
    size_t fill = e->len - REC_HDR;
    char *junk = malloc(fill ? fill : 1);
    if (!junk) {
        free(rec);
        return;
    }
    rand_bytes(junk, fill);
    uint32_t crc = rec_encode(rec, REC_ERASED, seq, 0, 0, NULL, 0, NULL, 0, junk, fill);
    if (b->last_off == off)
        b->last_crc = crc;
    if (off >= b->wr) {
        memcpy(fs->wbuf.p + (off - b->wr), rec, e->len);
    } else {
        ssize_t w = fs->io->pwrite(fs->io, b->fd, rec, e->len, off);
        if (w != (ssize_t)e->len)
            fs_fail(st, w < 0 ? (int)w : -EIO, "erase");
        b->dirty = true;
        fs_kick(fs);
    }
    free(junk);
    free(rec);
}

static void fb_removed(store *st, uint64_t seq, sentry *e, bool erase, bool front)
{
    fstore *fs = FS(st);
    if (erase)
        fs_erase(st, seq, e);
    if (front)
        fs->floor_dirty = true;
    else
        fs_append_rec(st, REC_DEL, seq, 0, 0, NULL, 0, NULL, 0, NULL, 0, NULL, NULL);
}

/* Blocks before the active one whose messages are all below the floor go (unlinked once
 * the META recording the floor is synced). */
static void fs_retire_blocks(store *st)
{
    fstore *fs = FS(st);
    uint64_t floor = st->msgs ? st->first_seq : st->last_seq + 1;
    size_t k = 0;
    while (k + 1 < fs->nblks && fs->blks[k]->max_seq < floor)
        k++;
    if (k == 0)
        return;
    if (fs->ndead + k > fs->dead_cap) {
        size_t nc = (fs->ndead + k) * 2;
        fdead *nd = realloc(fs->dead, nc * sizeof *nd);
        if (!nd)
            return;
        fs->dead = nd;
        fs->dead_cap = nc;
    }
    for (size_t i = 0; i < k; i++)
        fs->dead[fs->ndead++] = (fdead){fs->blks[i], fs->log_pos};
    memmove(fs->blks, fs->blks + k, (fs->nblks - k) * sizeof *fs->blks);
    fs->nblks -= k;
    fs_kick(fs);
}

static void fb_commit(store *st)
{
    fstore *fs = FS(st);
    uint64_t floor = st->msgs ? st->first_seq : st->last_seq + 1;
    if (st->truncated) {
        fs_append_rec(st, REC_TRUNC, st->last_seq, 0, 0, NULL, 0, NULL, 0, NULL, 0, NULL,
                      NULL);
        st->truncated = false;
    }
    if (st->meta_dirty || (fs->floor_dirty && floor != fs->floor_written)) {
        fs_append_rec(st, REC_META, floor, st->last_ts, (int64_t)st->last_seq, NULL, 0, NULL,
                      0, NULL, 0, NULL, NULL);
        fs->floor_written = floor;
        fs_retire_blocks(st);
    }
    st->meta_dirty = false;
    fs->floor_dirty = false;
}

static int fs_add_waiter(fstore *fs, uint64_t seq, store_durable_fn cb, void *ud)
{
    if (fs->w_head + fs->w_n == fs->w_cap) {
        if (fs->w_head > 0) {
            memmove(fs->w, fs->w + fs->w_head, fs->w_n * sizeof *fs->w);
            fs->w_head = 0;
        } else {
            size_t nc = fs->w_cap ? fs->w_cap * 2 : 256;
            fwaiter *nw = realloc(fs->w, nc * sizeof *nw);
            if (!nw)
                return EMBER_ENOMEM;
            fs->w = nw;
            fs->w_cap = nc;
        }
    }
    fs->w[fs->w_head + fs->w_n++] = (fwaiter){fs->log_pos, seq, cb, ud};
    fs_kick(fs);
    return 0;
}

/* 1: durable now; 0: queued; 2: failed store; 3: closing; < 0: error. */
static int fb_when_durable(store *st, uint64_t seq, store_durable_fn cb, void *ud)
{
    fstore *fs = FS(st);
    if (fs->failed)
        return 2;
    if (fs->stop)
        return 3;
    if (seq <= fs->durable_seq || fs->durable_pos >= fs->log_pos)
        return 1;
    return fs_add_waiter(fs, seq, cb, ud);
}

static int fb_barrier(store *st, store_durable_fn cb, void *ud)
{
    fstore *fs = FS(st);
    if (fs->failed)
        return 2;
    if (fs->stop)
        return 3;
    if (fs->durable_pos >= fs->log_pos)
        return 1;
    return fs_add_waiter(fs, 0, cb, ud);
}

/* ---- the flusher --------------------------------------------------------------- */

static int64_t now_ns(void) { return (int64_t)time_mono_ns(); }

static void fs_reap_dead(store *st, bool all)
{
    fstore *fs = FS(st);
    size_t k = 0;
    for (size_t i = 0; i < fs->ndead; i++) {
        fdead d = fs->dead[i];
        if ((all || d.pos <= fs->synced_pos) && d.b->refs == 0) {
            if (!all || !fs->failed) {
                char *p = blk_path(fs, d.b->id);
                if (p)
                    fs->io->unlink(fs->io, p);
                free(p);
            }
            blk_close(fs, d.b);
        } else {
            fs->dead[k++] = d;
        }
    }
    fs->ndead = k;
}

/* One round: write, maybe sync, complete. Store lock held on entry and exit. */
static void fs_round(store *st, bool force_sync)
{
    fstore *fs = FS(st);
    fs_flush_wbuf(st);
    fs_prealloc(st);
    uint64_t target = fs->log_pos, target_seq = st->last_seq;
    int64_t t = now_ns();
    bool do_sync = fs->sync_ms == 0 || force_sync ||
                   t - fs->last_sync_ns >= (int64_t)fs->sync_ms * 1000000;
    bool any_dirty = fs->dirsync;
    for (size_t i = 0; i < fs->nblks && !any_dirty; i++)
        any_dirty = fs->blks[i]->dirty;
    if (do_sync && !fs->failed && (any_dirty || fs->synced_pos < target)) {
        size_t n = 0;
        fblk **list = malloc((fs->nblks ? fs->nblks : 1) * sizeof *list);
        if (list) {
            for (size_t i = 0; i < fs->nblks; i++)
                if (fs->blks[i]->dirty) {
                    fs->blks[i]->dirty = false;
                    fs->blks[i]->refs++;
                    list[n++] = fs->blks[i];
                }
            bool ds = fs->dirsync;
            fs->dirsync = false;
            pthread_mutex_unlock(&st->mu);
            int rc = 0;
            for (size_t i = 0; i < n && rc == 0; i++)
                rc = fs->io->fdatasync(fs->io, list[i]->fd);
            if (rc == 0 && ds)
                rc = fs->io->sync_dir(fs->io, fs->blkdir);
            pthread_mutex_lock(&st->mu);
            for (size_t i = 0; i < n; i++)
                list[i]->refs--;
            free(list);
            if (rc != 0)
                fs_fail(st, rc, "fdatasync");
            else {
                uint64_t bytes = target - fs->synced_pos;
                fs->round_avg = (fs->round_avg * 7 + bytes) / 8;
                fs->synced_pos = target;
                fs->last_sync_ns = t;
            }
        }
    } else if (do_sync && !any_dirty && !fs->failed) {
        fs->synced_pos = target;
    }
    if (!fs->failed) {
        uint64_t dpos = fs->sync_ms == 0 ? fs->synced_pos : target;
        if (dpos >= target) {
            fs->durable_pos = target;
            fs->durable_seq = target_seq;
        }
    }
    fs_reap_dead(st, false);
    /* complete */
    size_t n = 0;
    while (n < fs->w_n && (fs->failed || fs->w[fs->w_head + n].pos <= fs->durable_pos))
        n++;
    if (n == 0)
        return;
    fwaiter *done = malloc(n * sizeof *done);
    if (!done)
        return;
    memcpy(done, fs->w + fs->w_head, n * sizeof *done);
    fs->w_head += n;
    fs->w_n -= n;
    if (fs->w_n == 0)
        fs->w_head = 0;
    int status = fs->failed;
    pthread_mutex_unlock(&st->mu);
    for (size_t i = 0; i < n; i++)
        done[i].cb(done[i].ud, done[i].seq, status);
    free(done);
    pthread_mutex_lock(&st->mu);
}

static bool fs_has_work(store *st)
{
    fstore *fs = FS(st);
    if (fs->failed) /* nothing will be written again: only tell the waiters */
        return fs->w_n > 0;
    if (fs->wbuf.len > 0 || fs->w_n > 0)
        return true;
    if (fs->sync_ms == 0) {
        if (fs->synced_pos < fs->log_pos || fs->dirsync)
            return true;
        for (size_t i = 0; i < fs->nblks; i++)
            if (fs->blks[i]->dirty)
                return true;
    }
    return false;
}

static void *fs_flusher(void *arg)
{
    store *st = arg;
    fstore *fs = FS(st);
    pthread_mutex_lock(&st->mu);
    while (!fs->abandon) {
        if (fs->stop) {
            fs_round(st, true);
            if (fs->w_n == 0 || fs->failed)
                break;
            continue;
        }
        bool due = fs->sync_ms > 0 && fs->synced_pos < fs->log_pos &&
                   now_ns() - fs->last_sync_ns >= (int64_t)fs->sync_ms * 1000000;
        if (!due && !fs_has_work(st)) {
            fs->idle = true;
            if (fs->sync_ms > 0 && fs->synced_pos < fs->log_pos) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)fs->sync_ms * 1000000;
                ts.tv_sec += (time_t)(ns / 1000000000);
                ts.tv_nsec = (long)(ns % 1000000000);
                pthread_cond_timedwait(&fs->cv, &st->mu, &ts);
            } else {
                pthread_cond_wait(&fs->cv, &st->mu);
            }
            fs->idle = false;
            continue;
        }
        fs_round(st, false);
    }
    /* a failed store: nothing more will complete; tell the remaining waiters */
    while (fs->w_n > 0 && !fs->abandon) {
        fwaiter w = fs->w[fs->w_head++];
        fs->w_n--;
        int status = fs->failed ? fs->failed : EMBER_ECLOSED;
        pthread_mutex_unlock(&st->mu);
        w.cb(w.ud, w.seq, status);
        pthread_mutex_lock(&st->mu);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

/* ---- the index file ------------------------------------------------------------ */

static int fs_write_index(store *st)
{
    fstore *fs = FS(st);
    bytebuf b = {0};
    char tmp[48];
    uint64_t floor = st->msgs ? st->first_seq : st->last_seq + 1;
    int rc = 0;
#define PUT(p, n)                                 \
    do {                                          \
        if (rc == 0 && bytebuf_append(&b, p, n)) \
            rc = EMBER_ENOMEM;                    \
    } while (0)
    PUT("EMBIDX01", 8);
    wr64(tmp, floor);
    wr64(tmp + 8, st->last_seq);
    wr64(tmp + 16, (uint64_t)st->last_ts);
    wr32(tmp + 24, (uint32_t)fs->nblks);
    PUT(tmp, 28);
    for (size_t i = 0; i < fs->nblks; i++) {
        fblk *k = fs->blks[i];
        wr32(tmp, k->id);
        wr64(tmp + 4, k->size);
        wr64(tmp + 12, k->max_seq);
        wr64(tmp + 20, k->last_off);
        wr32(tmp + 28, k->last_crc);
        PUT(tmp, 32);
    }
    /* subjects, densely renumbered */
    uint32_t *map = malloc((st->subs_n ? st->subs_n : 1) * sizeof *map);
    if (!map)
        rc = EMBER_ENOMEM;
    uint32_t ns = 0;
    for (uint32_t id = 0; rc == 0 && id < st->subs_n; id++)
        if (st->subs[id].s)
            map[id] = ns++;
    wr32(tmp, ns);
    PUT(tmp, 4);
    for (uint32_t id = 0; rc == 0 && id < st->subs_n; id++) {
        const ssubj *ss = &st->subs[id];
        if (!ss->s)
            continue;
        wr32(tmp, ss->len);
        PUT(tmp, 4);
        PUT(ss->s, ss->len);
    }
    wr64(tmp, st->msgs);
    PUT(tmp, 8);
    if (rc == 0 && bytebuf_reserve(&b, st->msgs * 48 + 4) != 0)
        rc = EMBER_ENOMEM;
    for (size_t i = 0; rc == 0 && i < st->ents_n; i++) {
        const sentry *e = &st->ents[st->ents_off + i];
        if (!e->subj)
            continue;
        char *p = b.p + b.len;
        wr64(p, st->first_seq + i);
        wr64(p + 8, (uint64_t)e->ts);
        wr32(p + 16, map[e->subj - 1]);
        wr32(p + 20, (uint32_t)(e->loc >> 32));
        wr32(p + 24, (uint32_t)e->loc);
        wr32(p + 28, e->len);
        wr32(p + 32, e->size);
        wr32(p + 36, 0);
        wr64(p + 40, 0);
        b.len += 48;
    }
    free(map);
    if (rc == 0) {
        /* patch the TTLs in place: walk entries and heap together by seq */
        size_t nt = 0;
        sttl *ts = NULL;
        if (st->ttl_n) {
            ts = malloc(st->ttl_n * sizeof *ts);
            if (!ts)
                rc = EMBER_ENOMEM;
            else
                for (size_t i = 0; i < st->ttl_n; i++) {
                    const sttl *t = &st->ttl[i];
                    const sentry *e = store_ent(st, t->seq);
                    if (e && e->subj && (e->flags & SENTRY_TTL) && e->ts == t->ts)
                        ts[nt++] = *t;
                }
        }
        if (nt) {
            /* entries are sorted by seq: binary search each TTL's entry */
            size_t base = b.len - st->msgs * 48, cnt = st->msgs;
            for (size_t i = 0; i < nt; i++) {
                size_t lo = 0, hi = cnt;
                while (lo < hi) {
                    size_t mid = (lo + hi) / 2;
                    if (rd64(b.p + base + mid * 48) < ts[i].seq)
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                if (lo < cnt && rd64(b.p + base + lo * 48) == ts[i].seq) {
                    char *p = b.p + base + lo * 48;
                    wr32(p + 36, 1);
                    wr64(p + 40, (uint64_t)(ts[i].at - ts[i].ts));
                }
            }
        }
        free(ts);
    }
    if (rc == 0) {
        wr32(tmp, store_crc32c(0, b.p, b.len));
        PUT(tmp, 4);
    }
#undef PUT
    char *path = path_join(fs->dir, "index.idx"), *tpath = path_join(fs->dir, "index.tmp");
    if (rc == 0 && (!path || !tpath))
        rc = EMBER_ENOMEM;
    if (rc == 0) {
        int fd = fs->io->open(fs->io, tpath, STOREIO_CREATE | STOREIO_TRUNC);
        if (fd < 0) {
            rc = EMBER_EIO;
        } else {
            ssize_t w = fs->io->pwrite(fs->io, fd, b.p, b.len, 0);
            if (w != (ssize_t)b.len || fs->io->fdatasync(fs->io, fd) != 0)
                rc = EMBER_EIO;
            fs->io->close(fs->io, fd);
            if (rc == 0 && fs->io->rename(fs->io, tpath, path) != 0)
                rc = EMBER_EIO;
            if (rc == 0)
                fs->io->sync_dir(fs->io, fs->dir);
            else
                fs->io->unlink(fs->io, tpath);
        }
    }
    free(path);
    free(tpath);
    bytebuf_free(&b);
    return rc;
}

/* ---- recovery ------------------------------------------------------------------ */

typedef struct idlist {
    uint32_t *ids;
    size_t n, cap;
    bool oom;
} idlist;

static void list_blk(void *ud, const char *name)
{
    idlist *l = ud;
    char *end;
    if (name[0] < '1' || name[0] > '9')
        return;
    unsigned long v = strtoul(name, &end, 10);
    if (strcmp(end, ".blk") != 0 || v == 0 || v > UINT32_MAX)
        return;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        uint32_t *ni = realloc(l->ids, nc * sizeof *ni);
        if (!ni) {
            l->oom = true;
            return;
        }
        l->ids = ni;
        l->cap = nc;
    }
    l->ids[l->n++] = (uint32_t)v;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Apply one valid record found while scanning. */
static void fs_apply(store *st, fblk *b, const char *p, uint32_t off, uint32_t len)
{
    uint64_t seq = rd64(p + 20);
    int64_t ts = (int64_t)rd64(p + 28), ttl = (int64_t)rd64(p + 36);
    switch (p[12]) {
    case REC_MSG: {
        uint32_t sl = rd16(p + 14), hl = rd32(p + 16);
        if (sl == 0 || seq == 0 || ttl < 0) {
            FS(st)->rep.corrupt_records++;
            break;
        }
        uint64_t size = store_msg_size(STORE_FILE, sl, hl, len - REC_HDR - sl - hl);
        if (store_core_insert(st, seq, p + REC_HDR, sl, ts, ttl, (uint32_t)size,
                              (uint64_t)b->id << 32 | off, len) != 0) {
            FS(st)->rep.corrupt_records++; /* out of order: not a record of ours */
            break;
        }
        if (seq > b->max_seq)
            b->max_seq = seq;
        break;
    }
    case REC_DEL:
        store_core_forget(st, seq);
        break;
    case REC_META:
        if (ttl >= 0)
            store_core_floor(st, seq, (uint64_t)ttl, ts);
        break;
    case REC_TRUNC:
        if (seq <= st->last_seq)
            store_core_set_last(st, seq);
        break;
    default:
        break;
    }
}

/* Scan [from, end of file) of a block, applying records; truncate a torn tail. */
static int fs_scan(store *st, fblk *b, uint64_t from)
{
    fstore *fs = FS(st);
    int64_t fsz = fs->io->fsize(fs->io, b->fd);
    if (fsz < 0)
        return EMBER_EIO;
    if ((uint64_t)fsz > UINT32_MAX)
        fsz = UINT32_MAX; /* offsets are 32-bit: the rest counts as a torn tail */
    uint64_t size = (uint64_t)fsz;
    if (from >= size) {
        b->size = b->wr = b->zeroed = size;
        return 0;
    }
    size_t n = (size_t)(size - from);
    char *buf = malloc(n);
    if (!buf)
        return EMBER_ENOMEM;
    ssize_t r = fs->io->pread(fs->io, b->fd, buf, n, from);
    if (r < 0) {
        free(buf);
        return EMBER_EIO;
    }
    n = (size_t)r;
    fs->rep.rebuilt = true;
    size_t off = 0, good_end = 0;
    while (off < n) {
        uint32_t len;
        if (rec_valid(buf + off, n - off, &len)) {
            b->last_off = from + off;
            b->last_crc = rd32(buf + off + 4);
            fs_apply(st, b, buf + off, (uint32_t)(from + off), len);
            off += len;
            good_end = off;
            continue;
        }
        /* resynchronise: the next offset holding a valid record */
        size_t nx = off + 1;
        for (; nx + REC_HDR <= n; nx++) {
            if (rd32(buf + nx) == REC_MAGIC && rec_valid(buf + nx, n - nx, &len))
                break;
        }
        if (nx + REC_HDR > n)
            break; /* nothing valid after: a torn tail */
        fs->rep.corrupt_records++;
        fs->rep.corrupt_bytes += nx - off;
        off = nx;
    }
    uint64_t keep = from + good_end;
    bool zero_tail = keep < size;
    for (size_t i = good_end; zero_tail && i < n; i++)
        zero_tail = buf[i] == 0;
    free(buf);
    if (zero_tail && n == (size_t)(size - from)) {
        /* preallocated space: the block's clean end, kept for the next appends */
        b->size = b->wr = keep;
        b->zeroed = size;
        return 0;
    }
    if (keep < size) {
        fs->rep.truncated_bytes += size - keep;
        if (fs->io->ftruncate(fs->io, b->fd, keep) != 0 ||
            fs->io->fdatasync(fs->io, b->fd) != 0)
            return EMBER_EIO;
    }
    b->size = b->wr = b->zeroed = keep;
    return 0;
}

static int fs_open_blk(store *st, uint32_t id, fblk **out)
{
    fstore *fs = FS(st);
    char *path = blk_path(fs, id);
    fblk *b = calloc(1, sizeof *b);
    if (!path || !b) {
        free(path);
        free(b);
        return EMBER_ENOMEM;
    }
    b->id = id;
    b->fd = fs->io->open(fs->io, path, 0);
    free(path);
    if (b->fd < 0) {
        free(b);
        return EMBER_EIO;
    }
    int rc = blk_push(fs, b);
    if (rc != 0) {
        blk_close(fs, b);
        return rc;
    }
    *out = b;
    return 0;
}

typedef struct ixblk {
    uint32_t id;
    uint64_t size, max_seq, last_off;
    uint32_t last_crc;
    bool present;
} ixblk;

/* Try the index file. 1 = used (blocks opened, state loaded), 0 = not usable (nothing
 * changed), < 0 = error. */
static int fs_load_index(store *st, const idlist *disk)
{
    fstore *fs = FS(st);
    char *path = path_join(fs->dir, "index.idx");
    if (!path)
        return EMBER_ENOMEM;
    int fd = fs->io->open(fs->io, path, 0);
    free(path);
    if (fd < 0)
        return 0;
    int64_t sz = fs->io->fsize(fs->io, fd);
    char *buf = NULL;
    int res = 0;
    ixblk *ib = NULL;
    uint32_t nb = 0, ns = 0;
    const char **sp = NULL;
    uint32_t *sl = NULL;
    if (sz < 8 + 28 + 4 + 8 + 4 || sz > (int64_t)1 << 40)
        goto out;
    buf = malloc((size_t)sz);
    if (!buf || fs->io->pread(fs->io, fd, buf, (size_t)sz, 0) != sz)
        goto out;
    size_t n = (size_t)sz - 4;
    if (memcmp(buf, "EMBIDX01", 8) != 0 || store_crc32c(0, buf, n) != rd32(buf + n))
        goto out;
    size_t p = 8;
#define NEED(k)              \
    do {                     \
        if (n - p < (k))     \
            goto out;        \
    } while (0)
    uint64_t floor = rd64(buf + p), last = rd64(buf + p + 8);
    int64_t last_ts = (int64_t)rd64(buf + p + 16);
    nb = rd32(buf + p + 24);
    p += 28;
    if (nb > (n - p) / 32)
        goto out;
    ib = calloc(nb ? nb : 1, sizeof *ib);
    if (!ib)
        goto out;
    for (uint32_t i = 0; i < nb; i++, p += 32) {
        ib[i] = (ixblk){rd32(buf + p), rd64(buf + p + 4), rd64(buf + p + 12),
                        rd64(buf + p + 20), rd32(buf + p + 28), false};
        if (i > 0 && ib[i].id <= ib[i - 1].id)
            goto out;
    }
    NEED(4);
    ns = rd32(buf + p);
    p += 4;
    if (ns > (n - p) / 4)
        goto out;
    sp = calloc(ns ? ns : 1, sizeof *sp);
    sl = calloc(ns ? ns : 1, sizeof *sl);
    if (!sp || !sl)
        goto out;
    for (uint32_t i = 0; i < ns; i++) {
        NEED(4);
        sl[i] = rd32(buf + p);
        p += 4;
        NEED(sl[i]);
        if (sl[i] == 0 || sl[i] > 65535)
            goto out;
        sp[i] = buf + p;
        p += sl[i];
    }
    NEED(8);
    uint64_t nm = rd64(buf + p);
    p += 8;
    if (nm != (n - p) / 48 || (n - p) % 48 != 0)
        goto out;
    /* validate the blocks against the disk */
    size_t di = 0;
    uint32_t max_ix = nb ? ib[nb - 1].id : 0;
    for (size_t i = 0; i < disk->n; i++) {
        uint32_t id = disk->ids[i];
        bool found = false;
        for (uint32_t j = 0; j < nb; j++)
            if (ib[j].id == id) {
                ib[j].present = true;
                found = true;
                break;
            }
        if (!found && id < max_ix)
            goto out; /* a block the index does not know, before its end: stale */
        (void)di;
    }
    /* missing indexed blocks must be a prefix (removed after the index was written) */
    bool seen_present = false;
    for (uint32_t j = 0; j < nb; j++) {
        if (ib[j].present)
            seen_present = true;
        else if (seen_present)
            goto out;
    }
    /* open the present indexed blocks and check their size and last record */
    for (uint32_t j = 0; j < nb; j++) {
        if (!ib[j].present)
            continue;
        fblk *b;
        if (fs_open_blk(st, ib[j].id, &b) != 0)
            goto bad;
        int64_t fsz = fs->io->fsize(fs->io, b->fd);
        if (fsz < 0 || (uint64_t)fsz < ib[j].size || ib[j].last_off >= ib[j].size + 1)
            goto bad;
        if (ib[j].size > 0) {
            char h[REC_HDR];
            if (ib[j].size - ib[j].last_off < REC_HDR ||
                fs->io->pread(fs->io, b->fd, h, REC_HDR, ib[j].last_off) != REC_HDR ||
                rd32(h) != REC_MAGIC || rd32(h + 4) != ib[j].last_crc ||
                rd32(h + 8) != ib[j].size - ib[j].last_off)
                goto bad;
        }
        b->size = b->wr = ib[j].size;
        b->max_seq = ib[j].max_seq;
        b->last_off = ib[j].last_off;
        b->last_crc = ib[j].last_crc;
    }
    /* load the messages */
    uint64_t prev = 0;
    for (uint64_t i = 0; i < nm; i++, p += 48) {
        const char *e = buf + p;
        uint64_t seq = rd64(e);
        uint32_t sid = rd32(e + 16), bid = rd32(e + 20), off = rd32(e + 24), len = rd32(e + 28);
        if (seq <= prev || sid >= ns)
            goto bad;
        prev = seq;
        fblk *b = blk_find(fs, bid);
        if (!b)
            continue; /* a removed prefix block */
        if ((uint64_t)off + len > b->size || len < REC_HDR)
            goto bad;
        int64_t ttl = rd32(e + 36) ? (int64_t)rd64(e + 40) : 0;
        if (ttl < 0 || store_core_insert(st, seq, sp[sid], sl[sid], (int64_t)rd64(e + 8), ttl,
                                         rd32(e + 32), (uint64_t)bid << 32 | off, len) != 0)
            goto bad;
    }
    store_core_floor(st, floor, last, last_ts);
    if (st->msgs == 0 && last >= st->last_seq) {
        st->last_seq = last;
        st->first_seq = last + 1;
    }
    res = 1;
    fs->rep.used_index = true;
    goto out;
#undef NEED
bad:
    /* undo: close what was opened, reset the index core */
    for (size_t i = 0; i < fs->nblks; i++)
        blk_close(fs, fs->blks[i]);
    fs->nblks = 0;
    res = -1000; /* caller resets the core */
out:
    free(sp);
    free(sl);
    free(ib);
    free(buf);
    fs->io->close(fs->io, fd);
    return res;
}

static void fs_core_reset(store *st, uint64_t first)
{
    const store_backend *be = st->be;
    st->be = NULL;
    while (st->msgs > 0)
        store_core_forget(st, st->first_seq);
    st->be = be;
    st->ents_n = 0;
    st->ents_off = 0;
    st->ttl_n = 0;
    st->first_seq = first;
    st->last_seq = first - 1;
    st->last_ts = 0;
}

static int fs_recover(store *st, const store_config *cfg)
{
    fstore *fs = FS(st);
    idlist disk = {0};
    int rc = fs->io->list_dir(fs->io, fs->blkdir, list_blk, &disk);
    if (rc == 0 && disk.oom)
        rc = EMBER_ENOMEM;
    if (rc != 0) {
        free(disk.ids);
        return rc == EMBER_ENOMEM ? rc : EMBER_EIO;
    }
    if (disk.n)
        qsort(disk.ids, disk.n, sizeof *disk.ids, cmp_u32);
    fs->rep.blocks = disk.n;
    uint64_t first = cfg->first_seq ? cfg->first_seq : 1;
    int ix = disk.n ? fs_load_index(st, &disk) : 0;
    if (ix < 0 && ix != -1000) {
        free(disk.ids);
        return ix;
    }
    if (ix == -1000)
        fs_core_reset(st, first);
    if (ix == 1) {
        /* scan what was appended after the index: tails and newer blocks */
        size_t nidx = fs->nblks;
        for (size_t i = 0; i < nidx && rc == 0; i++)
            rc = fs_scan(st, fs->blks[i], fs->blks[i]->size);
        uint32_t max_ix = nidx ? fs->blks[nidx - 1]->id : 0;
        for (size_t i = 0; i < disk.n && rc == 0; i++) {
            fblk *b;
            if (disk.ids[i] <= max_ix)
                continue;
            if ((rc = fs_open_blk(st, disk.ids[i], &b)) == 0)
                rc = fs_scan(st, b, 0);
        }
    } else {
        for (size_t i = 0; i < disk.n && rc == 0; i++) {
            fblk *b;
            if ((rc = fs_open_blk(st, disk.ids[i], &b)) == 0)
                rc = fs_scan(st, b, 0);
        }
    }
    free(disk.ids);
    if (rc != 0)
        return rc;
    fs->rep.msgs = st->msgs;
    uint64_t floor = st->msgs ? st->first_seq : st->last_seq + 1;
    fs->floor_written = floor;
    if (fs->nblks == 0) {
        /* a new store: its first block records the starting sequence */
        if (disk.n == 0) {
            st->first_seq = first;
            st->last_seq = first - 1;
        }
        rc = fs_rotate(st);
        if (rc == 0)
            rc = fs_flush_wbuf(st);
        if (rc == 0 && fs->io->fdatasync(fs->io, fs->blks[0]->fd) != 0)
            rc = EMBER_EIO;
        if (rc == 0 && fs->io->sync_dir(fs->io, fs->blkdir) != 0)
            rc = EMBER_EIO;
        fs->dirsync = false;
        fs->blks[0]->dirty = false;
    }
    /* a crash may leave zeros behind blocks that were rotated away from: only the active
     * (last) block keeps them */
    for (size_t i = 0; i + 1 < fs->nblks; i++)
        fs_trim(fs, fs->blks[i]);
    /* everything found is on disk: durable */
    fs->synced_pos = fs->durable_pos = fs->log_pos;
    fs->durable_seq = st->last_seq;
    /* blocks wholly below the floor can go now */
    fs_retire_blocks(st);
    fs_reap_dead(st, true);
    return rc;
}

/* ---- open / close -------------------------------------------------------------- */

static int fb_close(store *st, bool flush, bool destroy)
{
    fstore *fs = FS(st);
    if (!fs)
        return 0;
    int rc = 0;
    if (fs->started) {
        pthread_mutex_lock(&st->mu);
        fs->stop = true;
        if (!flush)
            fs->abandon = true;
        pthread_cond_signal(&fs->cv);
        pthread_mutex_unlock(&st->mu);
        pthread_join(fs->thr, NULL);
    }
    if (destroy) {
        /* a deleted store: whoever waits for durability hears "closed" (an abandoned one,
         * a simulated crash, tells nobody) */
        while (fs->w_n > 0) {
            fwaiter w = fs->w[fs->w_head++];
            fs->w_n--;
            w.cb(w.ud, w.seq, EMBER_ECLOSED);
        }
    }
    pthread_mutex_lock(&st->mu);
    if (flush) {
        if (fs->failed)
            rc = fs->failed;
        else
            rc = fs_write_index(st);
        if (rc == 0 && fs->nblks)
            fs_trim(fs, fs->blks[fs->nblks - 1]);
    }
    fs_reap_dead(st, flush || destroy);
    for (size_t i = 0; i < fs->nblks; i++) {
        if (destroy) {
            char *p = blk_path(fs, fs->blks[i]->id);
            if (p)
                fs->io->unlink(fs->io, p);
            free(p);
        }
        blk_close(fs, fs->blks[i]);
    }
    for (size_t i = 0; i < fs->ndead; i++)
        blk_close(fs, fs->dead[i].b);
    if (destroy) {
        char *p = path_join(fs->dir, "index.idx");
        if (p)
            fs->io->unlink(fs->io, p);
        free(p);
    }
    pthread_mutex_unlock(&st->mu);
    free(fs->blks);
    free(fs->dead);
    free(fs->w);
    bytebuf_free(&fs->wbuf);
    free(fs->dir);
    free(fs->blkdir);
    pthread_cond_destroy(&fs->cv);
    free(fs);
    st->bed = NULL;
    return rc;
}

static const store_backend file_backend = {
    fb_write, fb_load, fb_removed, fb_commit, fb_when_durable, fb_barrier, fb_close,
};

int filestore_open(store *st, const store_config *cfg)
{
    fstore *fs = calloc(1, sizeof *fs);
    if (!fs)
        return EMBER_ENOMEM;
    st->bed = fs;
    st->be = NULL; /* no backend calls during recovery */
    fs->io = cfg->io ? cfg->io : storeio_posix();
    fs->block_size = cfg->block_size ? cfg->block_size : BLK_DEFAULT;
    if (fs->block_size < 4096)
        fs->block_size = 4096;
    if (fs->block_size > (1u << 30))
        fs->block_size = 1u << 30;
    fs->sync_ms = cfg->sync_interval_ms;
    pthread_cond_init(&fs->cv, NULL);
    fs->dir = strdup(cfg->dir);
    fs->blkdir = fs->dir ? path_join(fs->dir, "blk") : NULL;
    int rc = 0;
    if (!fs->dir || !fs->blkdir)
        rc = EMBER_ENOMEM;
    else if (fs->io->mkdir(fs->io, fs->blkdir) != 0)
        rc = err_set(EMBER_EIO, "store %s: cannot create %s", st->name, fs->blkdir);
    if (rc == 0) {
        /* recovery runs with be == NULL except for fs_rotate's own appends */
        st->be = NULL;
        rc = fs_recover(st, cfg);
    }
    if (rc == 0 && cfg->on_recover)
        cfg->on_recover(cfg->recover_ud, &fs->rep);
    st->be = &file_backend;
    st->meta_dirty = false;
    st->truncated = false;
    if (rc == 0) {
        fs->last_sync_ns = now_ns();
        if (pthread_create(&fs->thr, NULL, fs_flusher, st) != 0)
            rc = EMBER_ENOMEM;
        else
            fs->started = true;
    }
    if (rc != 0) {
        fb_close(st, false, false);
        return rc == EMBER_ENOMEM ? rc : err_set(rc, "store %s: open failed", st->name);
    }
    return 0;
}
