/* Interop test harness: see harness.h. */
#define _GNU_SOURCE
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *th_server_binary(void)
{
    const char *e = getenv("EMBER_TEST_SERVER");
    return (e && *e) ? e : "nats-server";
}

int64_t th_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void th_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void loopback(struct sockaddr_in *a, int port)
{
    memset(a, 0, sizeof(*a));
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

int th_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    loopback(&a, 0);
    socklen_t len = sizeof(a);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Non-blocking connect bounded by timeout_ms. */
static int connect_bounded(int port, int rcvbuf, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct sockaddr_in a;
    loopback(&a, port);
    int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
    if (rc != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    if (rc != 0) {
        struct pollfd p = {fd, POLLOUT, 0};
        if (poll(&p, 1, timeout_ms) != 1) {
            close(fd);
            return -1;
        }
        int err = 0;
        socklen_t el = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
            close(fd);
            return -1;
        }
    }
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

int th_wait_tcp(int port, int timeout_ms)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    for (;;) {
        int fd = connect_bounded(port, 0, 200);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        if (th_now_ms() >= deadline)
            return -1;
        th_sleep_ms(10);
    }
}

int th_server_alive(th_server *s)
{
    if (s->pid <= 0)
        return 0;
    int st;
    pid_t r = waitpid(s->pid, &st, WNOHANG);
    if (r == s->pid) {
        s->exit_status = st;
        s->exited_early = 1;
        s->pid = 0;
        return 0;
    }
    return 1;
}

static void describe_status(int st, char *buf, size_t n)
{
    if (WIFEXITED(st))
        snprintf(buf, n, "exit code %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, n, "signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(buf, n, "status 0x%x", st);
}

static int spawn_once(th_server *s, const char *bin, const char *const *extra, int port)
{
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    size_t nextra = 0;
    while (extra && extra[nextra])
        nextra++;
    const char **argv = calloc(nextra + 6, sizeof(char *));
    if (!argv)
        return -1;
    size_t i = 0;
    argv[i++] = bin;
    argv[i++] = "-a";
    argv[i++] = "127.0.0.1";
    argv[i++] = "-p";
    argv[i++] = portstr;
    for (size_t k = 0; k < nextra; k++)
        argv[i++] = extra[k];
    argv[i] = NULL;

    snprintf(s->log_path, sizeof(s->log_path), "/tmp/ember-interop-XXXXXX");
    int logfd = mkstemp(s->log_path);
    if (logfd < 0) {
        free(argv);
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(logfd);
        free(argv);
        return -1;
    }
    if (pid == 0) {
        /* Never outlive the test program. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1)
            _exit(127);
        signal(SIGPIPE, SIG_DFL);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        execvp(bin, (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    close(logfd);
    free(argv);
    s->pid = pid;
    s->port = port;
    snprintf(s->url, sizeof(s->url), "nats://127.0.0.1:%d", port);
    snprintf(s->bin, sizeof(s->bin), "%s", bin);
    return 0;
}

int th_server_start(th_server *s, const char *bin, const char *const *extra_args)
{
    memset(s, 0, sizeof(*s));
    if (!bin)
        bin = th_server_binary();
    for (int attempt = 0; attempt < 3; attempt++) {
        int port = th_free_port();
        if (port <= 0) {
            fprintf(stderr, "harness: no free port\n");
            return -1;
        }
        if (spawn_once(s, bin, extra_args, port) != 0) {
            fprintf(stderr, "harness: cannot start %s: %s\n", bin, strerror(errno));
            return -1;
        }
        int64_t deadline = th_now_ms() + TH_START_TIMEOUT_MS;
        for (;;) {
            if (!th_server_alive(s))
                break;
            int fd = connect_bounded(port, 0, 200);
            if (fd >= 0) {
                close(fd);
                s->exited_early = 0;
                return 0;
            }
            if (th_now_ms() >= deadline)
                break;
            th_sleep_ms(10);
        }
        if (s->pid > 0) {
            fprintf(stderr, "harness: %s did not accept connections on port %d within %d ms\n",
                    bin, port, TH_START_TIMEOUT_MS);
            th_server_dump_log(s, 2000);
            s->exited_early = 0;
            th_server_stop(s);
            return -1;
        }
        char d[64];
        describe_status(s->exit_status, d, sizeof(d));
        fprintf(stderr, "harness: %s exited during startup (%s), attempt %d\n", bin, d,
                attempt + 1);
        th_server_dump_log(s, 2000);
        unlink(s->log_path);
        if (WIFEXITED(s->exit_status) && WEXITSTATUS(s->exit_status) == 127)
            return -1; /* exec failed: retrying will not help */
    }
    return -1;
}

int th_server_stop(th_server *s)
{
    int rc = 0;
    th_server_alive(s); /* reaps a child that died on its own */
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        int64_t deadline = th_now_ms() + TH_STOP_TIMEOUT_MS;
        int st = 0;
        pid_t r = 0;
        while ((r = waitpid(s->pid, &st, WNOHANG)) == 0 && th_now_ms() < deadline)
            th_sleep_ms(5);
        if (r == 0) {
            fprintf(stderr, "harness: warning: %s did not exit within %d ms of SIGTERM; "
                            "sending SIGKILL\n",
                    s->bin, TH_STOP_TIMEOUT_MS);
            kill(s->pid, SIGKILL);
            while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR) {
            }
        }
        s->exit_status = st;
        s->pid = 0;
    } else if (s->exited_early) {
        char d[64];
        describe_status(s->exit_status, d, sizeof(d));
        fprintf(stderr, "harness: %s (port %d) died during the test: %s\n", s->bin, s->port, d);
        th_server_dump_log(s, 4000);
        rc = -1;
    }
    if (s->log_path[0] && !getenv("EMBER_TEST_KEEP_LOGS"))
        unlink(s->log_path);
    else if (s->log_path[0])
        fprintf(stderr, "harness: server log kept at %s\n", s->log_path);
    s->log_path[0] = 0;
    return rc;
}

void th_server_dump_log(const th_server *s, size_t max_bytes)
{
    if (!s->log_path[0])
        return;
    FILE *f = fopen(s->log_path, "rb");
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long start = size > (long)max_bytes ? size - (long)max_bytes : 0;
    fseek(f, start, SEEK_SET);
    fprintf(stderr, "  ---- server log (%s, last %ld bytes) ----\n", s->bin, size - start);
    char line[1024];
    while (fgets(line, sizeof(line), f))
        fprintf(stderr, "  | %s%s", line, strchr(line, '\n') ? "" : "\n");
    fprintf(stderr, "  ----\n");
    fclose(f);
}

natsOptions *th_opts_new(const th_server *s)
{
    natsOptions *o = NULL;
    if (natsOptions_Create(&o) != NATS_OK)
        return NULL;
    if (natsOptions_SetURL(o, s->url) != NATS_OK || natsOptions_SetTimeout(o, 2000) != NATS_OK ||
        natsOptions_SetAllowReconnect(o, false) != NATS_OK) {
        natsOptions_Destroy(o);
        return NULL;
    }
    return o;
}

natsStatus th_connect(const th_server *s, natsOptions *opts, natsConnection **nc)
{
    *nc = NULL;
    if (opts)
        return natsConnection_Connect(nc, opts);
    natsOptions *o = th_opts_new(s);
    if (!o)
        return NATS_NO_MEMORY;
    natsStatus st = natsConnection_Connect(nc, o);
    natsOptions_Destroy(o);
    return st;
}

/* ---- raw sockets -------------------------------------------------------- */

void th_buf_init(th_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void th_buf_free(th_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void th_buf_reset(th_buf *b)
{
    b->len = 0;
    b->closed = 0;
    if (b->data)
        b->data[0] = 0;
}

void th_buf_append(th_buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *d = realloc(b->data, nc);
        if (!d)
            abort();
        b->data = d;
        b->cap = nc;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

int th_raw_connect(int port, int rcvbuf, int timeout_ms)
{
    return connect_bounded(port, rcvbuf, timeout_ms);
}

int th_raw_write(int fd, const void *p, size_t n, int timeout_ms)
{
    const char *c = p;
    int64_t deadline = th_now_ms() + timeout_ms;
    while (n > 0) {
        int left = (int)(deadline - th_now_ms());
        if (left <= 0)
            return -1;
        struct pollfd pf = {fd, POLLOUT, 0};
        int pr = poll(&pf, 1, left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return -1;
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int th_raw_write_str(int fd, const char *s)
{
    return th_raw_write(fd, s, strlen(s), 5000);
}

static int ends_with(const th_buf *b, const char *suffix)
{
    size_t n = strlen(suffix);
    return b->len >= n && memcmp(b->data + b->len - n, suffix, n) == 0;
}

/* One bounded read step: 1 got data, 0 timeout, -2 closed, -1 error. */
static int read_step(int fd, th_buf *b, int wait_ms)
{
    struct pollfd pf = {fd, POLLIN, 0};
    int pr = poll(&pf, 1, wait_ms < 0 ? 0 : wait_ms);
    if (pr < 0)
        return errno == EINTR ? 0 : -1;
    if (pr == 0)
        return 0;
    char tmp[65536];
    ssize_t r = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT);
    if (r > 0) {
        th_buf_append(b, tmp, (size_t)r);
        return 1;
    }
    if (r == 0) {
        b->closed = 1;
        return -2;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 0;
    if (errno == ECONNRESET || errno == EPIPE) {
        b->closed = 1;
        return -2;
    }
    return -1;
}

int th_raw_read(int fd, th_buf *b, const char *until, int quiet_ms, int max_ms)
{
    if (!b->data)
        th_buf_append(b, "", 0);
    int64_t deadline = th_now_ms() + max_ms;
    int64_t last_data = th_now_ms();
    for (;;) {
        int64_t now = th_now_ms();
        if (now >= deadline)
            return 0;
        int armed = until == NULL || ends_with(b, until);
        int wait = (int)(deadline - now);
        if (armed) {
            int64_t quiet_left = last_data + quiet_ms - now;
            if (quiet_left <= 0)
                return 2;
            if (quiet_left < wait)
                wait = (int)quiet_left;
        }
        int r = read_step(fd, b, wait);
        if (r == -2)
            return 1;
        if (r == -1)
            return -1;
        if (r == 1)
            last_data = th_now_ms();
    }
}

int th_raw_read_contains(int fd, th_buf *b, const char *needle, int max_ms)
{
    if (!b->data)
        th_buf_append(b, "", 0);
    int64_t deadline = th_now_ms() + max_ms;
    for (;;) {
        if (memmem(b->data, b->len, needle, strlen(needle)))
            return 1;
        int64_t left = deadline - th_now_ms();
        if (left <= 0 || b->closed)
            return 0;
        int r = read_step(fd, b, (int)left);
        if (r < 0 && !memmem(b->data, b->len, needle, strlen(needle)))
            return 0;
    }
}

int th_raw_read_info(int fd, char *line, size_t cap, th_buf *rest, int max_ms)
{
    th_buf b;
    th_buf_init(&b);
    int rc = -1;
    if (th_raw_read_contains(fd, &b, "\r\n", max_ms)) {
        char *eol = memmem(b.data, b.len, "\r\n", 2);
        size_t n = (size_t)(eol - b.data);
        if (n + 1 <= cap) {
            memcpy(line, b.data, n);
            line[n] = 0;
            rc = (int)n;
            if (rest)
                th_buf_append(rest, eol + 2, b.len - n - 2);
        }
    }
    if (rest && b.closed)
        rest->closed = 1;
    th_buf_free(&b);
    return rc;
}

int th_raw_session(int port, const char *connect_line, int max_ms)
{
    return th_raw_session_ex(port, connect_line, NULL, 0, max_ms);
}

int th_raw_session_ex(int port, const char *connect_line, const char *after_connect, int rcvbuf,
                      int max_ms)
{
    int fd = th_raw_connect(port, rcvbuf, max_ms);
    if (fd < 0)
        return -1;
    char info[8192];
    th_buf rest;
    th_buf_init(&rest);
    if (th_raw_read_info(fd, info, sizeof(info), &rest, max_ms) < 0 ||
        strncmp(info, "INFO ", 5) != 0 || th_raw_write_str(fd, connect_line) != 0 ||
        (after_connect && th_raw_write_str(fd, after_connect) != 0) ||
        th_raw_write_str(fd, "PING\r\n") != 0 ||
        !th_raw_read_contains(fd, &rest, "PONG\r\n", max_ms)) {
        th_buf_free(&rest);
        close(fd);
        return -1;
    }
    th_buf_free(&rest);
    return fd;
}

char *th_escape(const void *p, size_t n, size_t max)
{
    const unsigned char *c = p;
    size_t lim = n < max ? n : max;
    char *out = malloc(lim * 4 + 32);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < lim; i++) {
        unsigned char ch = c[i];
        if (ch == '\r') {
            out[o++] = '\\';
            out[o++] = 'r';
        } else if (ch == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (ch == '\\') {
            out[o++] = '\\';
            out[o++] = '\\';
        } else if (ch < 32 || ch >= 127) {
            o += (size_t)sprintf(out + o, "\\x%02x", ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    if (lim < n)
        o += (size_t)sprintf(out + o, "...(+%zu bytes)", n - lim);
    out[o] = 0;
    return out;
}
