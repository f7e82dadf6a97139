/* storeio: POSIX file I/O and an in-memory implementation that simulates power loss. */
#define _GNU_SOURCE
#include "storeio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- POSIX --------------------------------------------------------------------- */

static int px_open(storeio *io, const char *path, int flags)
{
    int of = O_RDWR | O_CLOEXEC;
    if (flags & STOREIO_CREATE)
        of |= O_CREAT;
    if (flags & STOREIO_TRUNC)
        of |= O_TRUNC;
    int fd = open(path, of, 0644);
    return fd < 0 ? -errno : fd;
}

static int px_close(storeio *io, int fd) { return close(fd) < 0 ? -errno : 0; }

static ssize_t px_pwrite(storeio *io, int fd, const void *buf, size_t n, uint64_t off)
{
    const char *p = buf;
    size_t done = 0;
    while (done < n) {
        ssize_t r = pwrite(fd, p + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        done += (size_t)r;
    }
    return (ssize_t)done;
}

static ssize_t px_pread(storeio *io, int fd, void *buf, size_t n, uint64_t off)
{
    char *p = buf;
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, p + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

static int px_fdatasync(storeio *io, int fd) { return fdatasync(fd) < 0 ? -errno : 0; }

static int px_ftruncate(storeio *io, int fd, uint64_t size)
{
    return ftruncate(fd, (off_t)size) < 0 ? -errno : 0;
}

static int64_t px_fsize(storeio *io, int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    return (int64_t)st.st_size;
}

static int px_rename(storeio *io, const char *from, const char *to)
{
    return rename(from, to) < 0 ? -errno : 0;
}

static int px_unlink(storeio *io, const char *path) { return unlink(path) < 0 ? -errno : 0; }

static int px_mkdir(storeio *io, const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return -EINVAL;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                return -errno;
            buf[i] = c;
        }
    }
    return 0;
}

static int px_sync_dir(storeio *io, const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static int px_list_dir(storeio *io, const char *path, storeio_list_fn fn, void *ud)
{
    DIR *d = opendir(path);
    if (!d)
        return -errno;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        fn(ud, e->d_name);
    }
    closedir(d);
    return 0;
}

static storeio g_posix = {
    px_open, px_close, px_pwrite, px_pread, px_fdatasync, px_ftruncate, px_fsize,
    px_rename, px_unlink, px_mkdir, px_sync_dir, px_list_dir,
};

storeio *storeio_posix(void) { return &g_posix; }

/* ---- in memory ----------------------------------------------------------------- */

typedef struct mfile {
    char *path;          /* NULL once unlinked / replaced */
    char *cur, *dur;     /* current and durable content */
    size_t cur_len, cur_cap, dur_len;
    bool entry_durable;  /* the directory entry survives a crash */
    int refs;            /* namespace (1 while linked) + open handles */
    struct mfile *next;
} mfile;

typedef struct mhandle {
    mfile *f; /* NULL = free or invalidated */
    bool used;
} mhandle;

typedef struct memio {
    storeio io;
    pthread_mutex_t mu;
    mfile *files;        /* every mfile, linked or not */
    mhandle *h;
    int nh;
    long fail_after;     /* -1 = never */
    bool failing;
} memio;

static memio *M(storeio *io) { return (memio *)io; }

static bool mem_fail_locked(memio *m)
{
    if (m->failing)
        return true;
    if (m->fail_after > 0 && --m->fail_after == 0)
        m->failing = true;
    return false;
}

static mfile *mem_find(memio *m, const char *path)
{
    for (mfile *f = m->files; f; f = f->next)
        if (f->path && strcmp(f->path, path) == 0)
            return f;
    return NULL;
}

static void mem_unref(memio *m, mfile *f)
{
    if (--f->refs > 0)
        return;
    for (mfile **pp = &m->files; *pp; pp = &(*pp)->next) {
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    }
    free(f->path);
    free(f->cur);
    free(f->dur);
    free(f);
}

static void mem_detach(memio *m, mfile *f)
{
    free(f->path);
    f->path = NULL;
    mem_unref(m, f);
}

static mfile *mem_handle(memio *m, int fd)
{
    if (fd < 0 || fd >= m->nh || !m->h[fd].used)
        return NULL;
    return m->h[fd].f;
}

static int mem_reserve(mfile *f, size_t n)
{
    if (n <= f->cur_cap)
        return 0;
    size_t cap = f->cur_cap ? f->cur_cap : 4096;
    while (cap < n)
        cap *= 2;
    char *p = realloc(f->cur, cap);
    if (!p)
        return -ENOMEM;
    f->cur = p;
    f->cur_cap = cap;
    return 0;
}

static int mem_open(storeio *io, const char *path, int flags)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    int rc;
    if (mem_fail_locked(m)) {
        rc = -EIO;
        goto out;
    }
    mfile *f = mem_find(m, path);
    if (!f) {
        if (!(flags & STOREIO_CREATE)) {
            rc = -ENOENT;
            goto out;
        }
        f = calloc(1, sizeof *f);
        if (!f || !(f->path = strdup(path))) {
            free(f);
            rc = -ENOMEM;
            goto out;
        }
        f->refs = 1;
        f->next = m->files;
        m->files = f;
    }
    if (flags & STOREIO_TRUNC)
        f->cur_len = 0;
    int fd = -1;
    for (int i = 0; i < m->nh; i++)
        if (!m->h[i].used) {
            fd = i;
            break;
        }
    if (fd < 0) {
        mhandle *nh = realloc(m->h, (size_t)(m->nh + 16) * sizeof *nh);
        if (!nh) {
            rc = -ENOMEM;
            goto out;
        }
        memset(nh + m->nh, 0, 16 * sizeof *nh);
        m->h = nh;
        fd = m->nh;
        m->nh += 16;
    }
    m->h[fd].used = true;
    m->h[fd].f = f;
    f->refs++;
    rc = fd;
out:
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_close(storeio *io, int fd)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    int rc = 0;
    if (fd < 0 || fd >= m->nh || !m->h[fd].used) {
        rc = -EBADF;
    } else {
        if (m->h[fd].f)
            mem_unref(m, m->h[fd].f);
        m->h[fd].used = false;
        m->h[fd].f = NULL;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static ssize_t mem_pwrite(storeio *io, int fd, const void *buf, size_t n, uint64_t off)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    ssize_t rc;
    mfile *f = mem_handle(m, fd);
    if (!f)
        rc = -EBADF;
    else if (mem_fail_locked(m))
        rc = -EIO;
    else if ((rc = mem_reserve(f, (size_t)off + n)) == 0) {
        if (off > f->cur_len)
            memset(f->cur + f->cur_len, 0, (size_t)off - f->cur_len);
        memcpy(f->cur + off, buf, n);
        if (off + n > f->cur_len)
            f->cur_len = (size_t)off + n;
        rc = (ssize_t)n;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static ssize_t mem_pread(storeio *io, int fd, void *buf, size_t n, uint64_t off)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    ssize_t rc;
    mfile *f = mem_handle(m, fd);
    if (!f)
        rc = -EBADF;
    else if (mem_fail_locked(m))
        rc = -EIO;
    else if (off >= f->cur_len)
        rc = 0;
    else {
        size_t k = f->cur_len - (size_t)off < n ? f->cur_len - (size_t)off : n;
        memcpy(buf, f->cur + off, k);
        rc = (ssize_t)k;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_fdatasync(storeio *io, int fd)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    int rc = 0;
    mfile *f = mem_handle(m, fd);
    if (!f)
        rc = -EBADF;
    else if (mem_fail_locked(m))
        rc = -EIO;
    else {
        char *d = malloc(f->cur_len ? f->cur_len : 1);
        if (!d)
            rc = -ENOMEM;
        else {
            if (f->cur_len)
                memcpy(d, f->cur, f->cur_len);
            free(f->dur);
            f->dur = d;
            f->dur_len = f->cur_len;
        }
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_ftruncate(storeio *io, int fd, uint64_t size)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    int rc = 0;
    mfile *f = mem_handle(m, fd);
    if (!f)
        rc = -EBADF;
    else if (mem_fail_locked(m))
        rc = -EIO;
    else if ((rc = mem_reserve(f, (size_t)size)) == 0) {
        if (size > f->cur_len)
            memset(f->cur + f->cur_len, 0, (size_t)size - f->cur_len);
        f->cur_len = (size_t)size;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int64_t mem_fsize(storeio *io, int fd)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    mfile *f = mem_handle(m, fd);
    int64_t rc = f ? (int64_t)f->cur_len : -EBADF;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_rename(storeio *io, const char *from, const char *to)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    int rc = 0;
    mfile *f = mem_find(m, from);
    if (mem_fail_locked(m))
        rc = -EIO;
    else if (!f)
        rc = -ENOENT;
    else {
        char *np = strdup(to);
        if (!np)
            rc = -ENOMEM;
        else {
            mfile *old = mem_find(m, to);
            if (old && old != f)
                mem_detach(m, old);
            free(f->path);
            f->path = np;
            /* Model: a rename is atomic and durable at once (the file's content is
             * still only what was synced). */
            f->entry_durable = true;
        }
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_unlink(storeio *io, const char *path)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    int rc = 0;
    mfile *f = mem_find(m, path);
    if (mem_fail_locked(m))
        rc = -EIO;
    else if (!f)
        rc = -ENOENT;
    else
        mem_detach(m, f); /* model: unlink is durable at once */
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_mkdir(storeio *io, const char *path) { return 0; }

/* Is path directly inside dir? */
static bool mem_in_dir(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    while (n > 0 && dir[n - 1] == '/')
        n--;
    if (strncmp(path, dir, n) != 0 || path[n] != '/')
        return false;
    return strchr(path + n + 1, '/') == NULL && path[n + 1] != 0;
}

static int mem_sync_dir(storeio *io, const char *path)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    int rc = 0;
    if (mem_fail_locked(m))
        rc = -EIO;
    else
        for (mfile *f = m->files; f; f = f->next)
            if (f->path && mem_in_dir(f->path, path))
                f->entry_durable = true;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_list_dir(storeio *io, const char *path, storeio_list_fn fn, void *ud)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    /* Collect first, call without the lock (fn may call back into io). */
    size_t n = 0, cap = 16;
    char **names = malloc(cap * sizeof *names);
    int rc = names ? 0 : -ENOMEM;
    for (mfile *f = m->files; f && rc == 0; f = f->next) {
        if (!f->path || !mem_in_dir(f->path, path))
            continue;
        if (n == cap) {
            char **nn = realloc(names, cap * 2 * sizeof *nn);
            if (!nn) {
                rc = -ENOMEM;
                break;
            }
            names = nn;
            cap *= 2;
        }
        names[n] = strdup(strrchr(f->path, '/') + 1);
        if (!names[n])
            rc = -ENOMEM;
        else
            n++;
    }
    pthread_mutex_unlock(&m->mu);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0)
            fn(ud, names[i]);
        free(names[i]);
    }
    free(names);
    return rc;
}

storeio *storeio_mem_new(void)
{
    memio *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->io = (storeio){
        mem_open, mem_close, mem_pwrite, mem_pread, mem_fdatasync, mem_ftruncate,
        mem_fsize, mem_rename, mem_unlink, mem_mkdir, mem_sync_dir, mem_list_dir,
    };
    pthread_mutex_init(&m->mu, NULL);
    m->fail_after = -1;
    return &m->io;
}

void storeio_mem_free(storeio *io)
{
    if (!io)
        return;
    memio *m = M(io);
    mfile *f = m->files;
    while (f) {
        mfile *n = f->next;
        free(f->path);
        free(f->cur);
        free(f->dur);
        free(f);
        f = n;
    }
    free(m->h);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static uint64_t mix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void storeio_mem_crash(storeio *io, int mode, uint64_t seed)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    /* Invalidate handles: they keep no reference past the crash. */
    for (int i = 0; i < m->nh; i++) {
        if (m->h[i].used && m->h[i].f) {
            mfile *f = m->h[i].f;
            m->h[i].f = NULL;
            mem_unref(m, f);
        }
    }
    mfile *f = m->files;
    while (f) {
        mfile *next = f->next;
        if (f->path && !f->entry_durable) {
            mem_detach(m, f);
        } else if (f->path) {
            size_t nl = f->dur_len;
            char *nc = malloc(f->cur_len > f->dur_len ? f->cur_len + 1 : f->dur_len + 1);
            if (nc) {
                memcpy(nc, f->dur ? f->dur : "", f->dur_len);
                if (mode == STOREIO_CRASH_TORN) {
                    size_t lo = f->dur_len < f->cur_len ? f->dur_len : f->cur_len;
                    size_t hi = f->dur_len > f->cur_len ? f->dur_len : f->cur_len;
                    /* new length: somewhere between durable and current */
                    nl = hi > lo ? lo + (size_t)(mix64(&seed) % (hi - lo + 1)) : f->dur_len;
                    if (nl > f->dur_len)
                        memset(nc + f->dur_len, 0, nl - f->dur_len);
                    /* each 512-byte sector of what was written may or may not land */
                    size_t lim = nl < f->cur_len ? nl : f->cur_len;
                    for (size_t s = 0; s < lim; s += 512) {
                        size_t e = s + 512 < lim ? s + 512 : lim;
                        bool differs = e > f->dur_len ||
                                       memcmp(f->cur + s, f->dur + s, e - s) != 0;
                        if (differs && (mix64(&seed) & 1))
                            memcpy(nc + s, f->cur + s, e - s);
                    }
                }
                free(f->cur);
                f->cur = nc;
                f->cur_cap = f->cur_len > f->dur_len ? f->cur_len + 1 : f->dur_len + 1;
                f->cur_len = nl;
                /* what survived is now the durable state */
                char *nd = malloc(nl + 1);
                if (nd) {
                    memcpy(nd, nc, nl);
                    free(f->dur);
                    f->dur = nd;
                    f->dur_len = nl;
                }
            }
        }
        f = next;
    }
    /* the machine is down: nothing succeeds until storeio_mem_reboot() */
    m->failing = true;
    m->fail_after = -1;
    pthread_mutex_unlock(&m->mu);
}

void storeio_mem_reboot(storeio *io)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    m->failing = false;
    m->fail_after = -1;
    pthread_mutex_unlock(&m->mu);
}

void storeio_mem_fail_after(storeio *io, long n)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    if (n < 0) {
        m->failing = true;
    } else {
        m->failing = false;
        m->fail_after = n == 0 ? -1 : n;
        if (n == 0)
            m->failing = true;
    }
    pthread_mutex_unlock(&m->mu);
}

int storeio_mem_put(storeio *io, const char *path, const void *data, size_t n)
{
    int fd = mem_open(io, path, STOREIO_CREATE | STOREIO_TRUNC);
    if (fd < 0)
        return fd;
    memio *m = M(io);
    ssize_t w = n ? mem_pwrite(io, fd, data, n, 0) : 0;
    int rc = w < 0 ? (int)w : mem_fdatasync(io, fd);
    pthread_mutex_lock(&m->mu);
    mfile *f = mem_handle(m, fd);
    if (f)
        f->entry_durable = true;
    pthread_mutex_unlock(&m->mu);
    mem_close(io, fd);
    return rc;
}

int storeio_mem_get(storeio *io, const char *path, void **out, size_t *n)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    int rc = 0;
    mfile *f = mem_find(m, path);
    if (!f) {
        rc = -ENOENT;
    } else {
        *out = malloc(f->cur_len ? f->cur_len : 1);
        if (!*out)
            rc = -ENOMEM;
        else {
            memcpy(*out, f->cur, f->cur_len);
            *n = f->cur_len;
        }
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int64_t storeio_mem_size(storeio *io, const char *path)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    mfile *f = mem_find(m, path);
    int64_t rc = f ? (int64_t)f->cur_len : -ENOENT;
    pthread_mutex_unlock(&m->mu);
    return rc;
}
