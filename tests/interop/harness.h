/*
 * Interop test harness: runs a NATS server binary (nats-server or anything
 * that takes nats-server's flags, e.g. ember-server) as a child process on a
 * free loopback port, and offers helpers for libnats connections and raw
 * protocol sockets.
 *
 * The binary comes from the environment variable EMBER_TEST_SERVER (default
 * "nats-server", looked up in PATH). Every wait in here is bounded; nothing
 * asserts on how long something took.
 */
#ifndef EMBER_INTEROP_HARNESS_H
#define EMBER_INTEROP_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <nats/nats.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Default bound for waiting until a started server accepts TCP connections. */
#define TH_START_TIMEOUT_MS 5000
/* Default bound for a stopping server to exit after SIGTERM before SIGKILL. */
#define TH_STOP_TIMEOUT_MS 5000

typedef struct th_server {
    pid_t pid;           /* child pid, 0 when not running */
    int port;            /* client port on 127.0.0.1 */
    char url[64];        /* nats://127.0.0.1:<port> */
    char bin[1024];      /* binary that was started */
    char log_path[256];  /* the child's stdout+stderr */
    int exited_early;    /* the child was found dead before th_server_stop */
    int exit_status;     /* waitpid status once reaped */
} th_server;

/* The server binary under test: $EMBER_TEST_SERVER or "nats-server". */
const char *th_server_binary(void);

/* Monotonic milliseconds. */
int64_t th_now_ms(void);
void th_sleep_ms(int ms);

/* A loopback TCP port that was free a moment ago (bind port 0, read, close). */
int th_free_port(void);

/* Wait until something accepts TCP connections on 127.0.0.1:port. 0 or -1. */
int th_wait_tcp(int port, int timeout_ms);

/*
 * Start `bin` (NULL = th_server_binary()) as
 *     bin -a 127.0.0.1 -p <free port> [extra_args...]
 * where extra_args is a NULL-terminated list (may be NULL). Returns 0 once
 * the server accepts TCP connections, -1 on failure (a message is printed).
 * Retries with another port if the child exits during startup.
 */
int th_server_start(th_server *s, const char *bin, const char *const *extra_args);

/* Still running? (reaps the child if it died) */
int th_server_alive(th_server *s);

/*
 * SIGTERM, wait up to TH_STOP_TIMEOUT_MS, then SIGKILL; always reaps the
 * child and removes the log (unless EMBER_TEST_KEEP_LOGS is set). Returns 0
 * if the server was alive until asked to stop, -1 if it had died on its own
 * (a crash during the test); a message is printed either way when abnormal.
 */
int th_server_stop(th_server *s);

/* Print the last `max_bytes` of the server's log to stderr, indented. */
void th_server_dump_log(const th_server *s, size_t max_bytes);

/* libnats options preset for `s`: URL, 2s connect timeout, no reconnect.
 * Returns NULL on failure. Caller destroys. */
natsOptions *th_opts_new(const th_server *s);

/* Connect with the given options (NULL = th_opts_new(s) defaults). */
natsStatus th_connect(const th_server *s, natsOptions *opts, natsConnection **nc);

/* ---- raw protocol sockets ---------------------------------------------- */

typedef struct th_buf {
    char *data;   /* always NUL-terminated (data may contain NULs) */
    size_t len;
    size_t cap;
    int closed;   /* the peer closed (EOF or reset) */
} th_buf;

void th_buf_init(th_buf *b);
void th_buf_free(th_buf *b);
void th_buf_reset(th_buf *b);
void th_buf_append(th_buf *b, const void *p, size_t n);

/* Blocking TCP connect to 127.0.0.1:port, bounded by timeout_ms. rcvbuf > 0
 * sets SO_RCVBUF before connecting. Returns fd or -1. */
int th_raw_connect(int port, int rcvbuf, int timeout_ms);

/* Write everything (bounded by timeout_ms). 0, or -1 on error/timeout. */
int th_raw_write(int fd, const void *p, size_t n, int timeout_ms);
int th_raw_write_str(int fd, const char *s);

/*
 * Read into b until one of:
 *  - the peer closes (b->closed = 1), returns 1;
 *  - `until` is non-NULL and b ends with it, and then nothing more arrives
 *    for quiet_ms; returns 2;
 *  - `until` is NULL and nothing arrives for quiet_ms; returns 2;
 *  - max_ms elapses; returns 0.
 * Returns -1 on a read error other than a reset.
 */
int th_raw_read(int fd, th_buf *b, const char *until, int quiet_ms, int max_ms);

/* Read until b contains `needle` (anywhere), the peer closes, or max_ms.
 * Returns 1 when found, 0 otherwise. */
int th_raw_read_contains(int fd, th_buf *b, const char *needle, int max_ms);

/* Read the INFO line (up to CRLF) into `line` (NUL-terminated); returns its
 * length, or -1. Whatever arrived after the line stays in `rest` if given. */
int th_raw_read_info(int fd, char *line, size_t cap, th_buf *rest, int max_ms);

/* Connect a raw socket, read INFO, send `connect_line` (e.g.
 * "CONNECT {\"verbose\":false}\r\n") then "PING\r\n" and wait for PONG.
 * Returns fd or -1. */
int th_raw_session(int port, const char *connect_line, int max_ms);
/* Same, with SO_RCVBUF set to rcvbuf (if > 0) before connecting, and
 * `after_connect` (may be NULL) sent between the CONNECT line and the PING. */
int th_raw_session_ex(int port, const char *connect_line, const char *after_connect, int rcvbuf,
                      int max_ms);

/* Escape bytes for printing (\r \n \xNN); returns a malloc'd string. */
char *th_escape(const void *p, size_t n, size_t max);

#ifdef __cplusplus
}
#endif

#endif
