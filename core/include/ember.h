/*
 * ember.h: the one public header of libember, an embeddable NATS-compatible broker.
 *
 * Conventions
 *  - Functions that can fail return int: EMBER_OK (0) or a negative EMBER_E* code.
 *    ember_strerror(code) names a code; ember_last_error() returns the detailed text
 *    of the calling thread's last failure (valid until that thread's next failing call).
 *  - Objects are opaque. Whoever creates an object frees it (`*_free`, `*_close`,
 *    `*_release`). Out-parameters say who owns them.
 *  - Every function may be called from any thread unless its comment says otherwise;
 *    the comment says what it blocks on.
 *  - Callbacks are (fn, void *userdata) pairs, with an optional ember_free_fn that the
 *    library calls exactly once when it lets go of the userdata. A callback is never
 *    called after the function that registered it returned an error.
 *  - The library installs no signal handler, writes nothing to stderr and never calls
 *    exit() unless the host asks (ember_server_log_to_stderr, wait_for_shutdown with
 *    handle_signals).
 */
#ifndef EMBER_H
#define EMBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define EMBER_API __declspec(dllexport)
#else
#define EMBER_API __attribute__((visibility("default")))
#endif

#define EMBER_VERSION_STRING "0.1.0"
/* The nats-server version Ember advertises in INFO (clients enable features by it). */
#define EMBER_NATS_VERSION "2.11.0"

/* ------------------------------------------------------------------ status codes */

enum {
    EMBER_OK = 0,
    EMBER_EINVAL = -1,        /* invalid argument (NULL handle, invalid subject, bad option) */
    EMBER_ETIMEDOUT = -2,     /* a bounded wait ran out */
    EMBER_ENORESPONDERS = -3, /* a request matched no subscriber */
    EMBER_ECLOSED = -4,       /* the connection, subscription or server is closed */
    EMBER_EMAXPAYLOAD = -5,   /* payload over the server's max_payload */
    EMBER_ENOTFOUND = -6,
    EMBER_EEXISTS = -7,
    EMBER_EWRONGSEQ = -8,
    EMBER_ESLOWCONSUMER = -9, /* pending limits hit: messages were dropped */
    EMBER_EIO = -10,          /* an OS-level failure (listen, file I/O) */
    EMBER_ENOMEM = -11,
    EMBER_ELIMIT = -12,       /* a configured limit (connections, subscriptions) reached */
    EMBER_ESTATE = -13,       /* wrong state for this call (e.g. start twice) */
    EMBER_EAUTH = -14,        /* credentials refused ("Authorization Violation") */
    EMBER_EPERM = -15,        /* the connection's user may not publish/subscribe there */
};

/* A static string naming the code ("timeout", "no responders", ...). Never NULL. */
EMBER_API const char *ember_strerror(int status);
/* The calling thread's last error detail; "" if none. Owned by the library
 * (thread-local), valid until this thread's next failing call. */
EMBER_API const char *ember_last_error(void);
/* "0.1.0" */
EMBER_API const char *ember_version(void);

/* ------------------------------------------------------------------ logging */

enum {
    EMBER_LOG_FATAL = 0,
    EMBER_LOG_ERROR = 1,
    EMBER_LOG_WARN = 2,
    EMBER_LOG_INFO = 3,  /* nats-server's [INF] "notice" lines */
    EMBER_LOG_DEBUG = 4, /* -D */
    EMBER_LOG_TRACE = 5, /* -V: protocol traces */
};
/* `line` is one log line without the trailing newline, e.g.
 * "Listening for client connections on 0.0.0.0:4222"; borrowed for the call only.
 * Called from server threads (the event loop) and from whichever thread caused the event;
 * it must be thread-safe and must not call back into the server it logs for. */
typedef void (*ember_log_fn)(void *userdata, int level, const char *line);
typedef void (*ember_free_fn)(void *userdata);

/* ------------------------------------------------------------------ server options */

/* A leaf-node remote: a NATS system this server joins as a leaf (nats-server's
 * leafnodes { remotes = [...] }). Strings are borrowed like every option string (copied
 * by ember_server_new). */
typedef struct ember_leaf_remote {
    /* One or more URLs separated by commas or spaces, tried in turn:
     * "nats-leaf://[user:password@]host:port", nats:// or tls:// (TLS; ws:// and wss://
     * are refused). user:password in a URL is used when username is NULL. */
    const char *urls;
    const char *username;         /* NULL: none (or from the URL) */
    const char *password;
    const char *auth_token;
    /* The local account bound to the link (NULL: "$G"): the link sees and feeds only
     * that account's subjects, as nats-server's remote account. */
    const char *account;
    /* Comma-separated subjects (wildcards allowed): deny_imports are not received from
     * the remote (no interest sent for them), deny_exports are not sent to it. */
    const char *deny_imports;
    const char *deny_exports;
    /* TLS: used for tls:// URLs, when tls is true, or when the remote requires it. */
    bool tls;
    const char *tls_ca_file;      /* PEM CAs to verify the remote (NULL: the system's) */
    const char *tls_cert_file;    /* client certificate and key (optional) */
    const char *tls_key_file;
    bool tls_insecure;            /* do not verify the remote's certificate (tests only) */
    /* Signing the remote's nonce (nats-server's credentials / nkey of a remote): a .creds
     * file (user JWT + seed) or an nkey seed ("SU..."). Read when the link is made. */
    const char *credentials;
    const char *nkey_seed;
} ember_leaf_remote;

/* Leaf link events, on the server's event-loop thread: connected is true when the link to
 * url came up, false when it went down or an attempt failed (reason says why: the
 * remote's -ERR text, a socket error, "loop detected"). Must not block or call
 * ember_server_shutdown/free. */
typedef void (*ember_leaf_event_fn)(void *userdata, const char *url, bool connected,
                                    const char *reason);

/* A user of the server (nats-server's authorization { users = [...] }). Exactly one of
 * password (with user) or nkey identifies it. Permission lists are comma-separated
 * subjects with wildcards (in the subscribe lists, "subject group" names a queue group:
 * "work.> workers" allows or denies work.> only in the group workers, and a group with a
 * wildcard covers the groups it matches); NULL means no rule (an allow list, when given, allows only
 * what it names; deny wins over allow). Strings are borrowed (copied by ember_server_new). */
typedef struct ember_user {
    const char *user;
    const char *password;         /* plain, or a bcrypt hash ("$2a$...", "$2b$...") */
    const char *nkey;             /* a user public nkey ("U..."): CONNECT signs the nonce */
    const char *publish_allow;
    const char *publish_deny;
    const char *subscribe_allow;
    const char *subscribe_deny;
    /* allow_responses: the user may publish to the reply subject of a message it received
     * (at most responses_max times each, 1 when 0; within responses_expires_ms, 0: no limit),
     * whatever the publish lists say. */
    bool allow_responses;
    int32_t responses_max;
    int64_t responses_expires_ms;
} ember_user;

/* Accounts (nats-server's accounts {} block; see docs/accounts.md). Each account is its
 * own subject space: a message published in one account reaches only subscribers of the
 * same account, and each account has its own JetStream (streams, consumers, KV buckets
 * and object stores). Exports and imports share chosen subjects between accounts. Users
 * not in any account (ember_server_options.users, username/password, token, and
 * connections without credentials) are in the global account "$G".
 *
 * A stream export lets importers receive what the exporting account publishes on
 * subject; a service export lets importers send requests that subscribers of the
 * exporting account answer (the replies travel back through the import). accounts is a
 * comma-separated list of the accounts allowed to import; NULL allows every account.
 * Strings are borrowed (copied by ember_server_new). */
typedef enum ember_response_type {
    EMBER_RESPONSE_SINGLETON = 0, /* one reply per request (nats-server's default) */
    EMBER_RESPONSE_STREAM = 1,    /* any number of replies until the threshold */
    EMBER_RESPONSE_CHUNKED = 2    /* as STREAM (nats-server's chunked) */
} ember_response_type;

typedef struct ember_export {
    const char *subject;          /* may hold wildcards */
    bool service;                 /* false: a stream export */
    const char *accounts;         /* NULL: public */
    ember_response_type response_type;  /* services only */
    int64_t response_threshold_ms;      /* services: replies accepted for 2 minutes (0) */
} ember_export;

/* An import from account `account` of (a subset of) one of its exports. A stream import
 * delivers the exporter's messages on subject here, with prefix + "." prepended to the
 * subject, or renamed to `to` (a literal or the same wildcards); a service import makes
 * requests published here on `to` (NULL: subject) go to the exporter on subject. */
typedef struct ember_import {
    bool service;
    const char *account;
    const char *subject;
    const char *to;
    const char *prefix;           /* streams only; not with to */
} ember_import;

typedef struct ember_account {
    const char *name;             /* not "$G" */
    const ember_user *users;      /* this account's users (as ember_server_options.users) */
    size_t users_count;
    /* JetStream for this account (needs ember_server_options.jetstream). Accounts without
     * it get nats-server's "jetstream not enabled for account" from $JS.API.INFO. Limits:
     * 0 takes the server's. When accounts are configured, "$G" has no JetStream. */
    bool jetstream;
    int64_t jetstream_max_memory;
    int64_t jetstream_max_store;
    const ember_export *exports;  /* array of exports_count */
    size_t exports_count;
    const ember_import *imports;  /* array of imports_count */
    size_t imports_count;
} ember_account;

typedef struct ember_server_options {
    size_t size;                  /* set by ember_server_options_init: keeps the ABI stable */
    const char *server_name;      /* NULL: the server id */
    const char *host;             /* default "0.0.0.0" */
    int port;                     /* 0: 4222; -1: any free port (see ember_server_client_url) */
    bool dont_listen;             /* no client TCP port (in-process connections only) */
    /* limits, nats-server defaults */
    int64_t max_payload;          /* 1 MiB */
    int32_t max_control_line;     /* 4096 */
    int64_t max_pending;          /* 64 MiB outbound per client */
    int32_t max_connections;      /* 65536 */
    int32_t max_subscriptions;    /* 0: unlimited (per connection) */
    int64_t ping_interval_ms;     /* 2 minutes */
    int32_t max_pings_out;        /* 2 */
    int64_t write_deadline_ms;    /* 10 seconds */
    int64_t auth_timeout_ms;      /* 2 seconds; with TLS, left at 2 s: tls_timeout + 1 s */
    /* single-user auth (nats-server --user/--pass and --auth) */
    const char *username;
    const char *password;
    const char *auth_token;
    /* JetStream (nats-server -js, -sd, jetstream { domain }) */
    bool jetstream;
    const char *store_dir;        /* NULL: $TMPDIR/nats/jetstream, as nats-server */
    const char *jetstream_domain; /* NULL: none */
    /* logging: silent unless log_fn is set or ember_server_log_to_stderr is called */
    ember_log_fn log_fn;
    void *log_userdata;
    int log_level;                /* EMBER_LOG_INFO */
    bool no_header_support;       /* false: headers advertised in INFO */
    /* JetStream limits and durability (added after the fields above; the size field keeps
     * older callers working) */
    int64_t jetstream_max_memory; /* bytes for memory streams; 0: 75% of RAM (nats-server) */
    int64_t jetstream_max_store;  /* bytes for file streams; 0: 1 TiB */
    /* 0 (default): a PubAck is sent only after the message was fsync'd (group commit).
     * > 0: ack once written to the OS, fsync at most every sync_interval_ms (faster; a
     * power loss can lose acknowledged messages, a process kill cannot). */
    int64_t jetstream_sync_interval_ms;
    /* Leaf nodes (nats-server's leafnodes {}): remotes this server dials, and the port on
     * which other servers' leafs may connect to this one as a hub. */
    const ember_leaf_remote *leaf_remotes; /* array of leaf_remotes_count; NULL: none */
    size_t leaf_remotes_count;
    const char *leaf_host;        /* leafnodes listen host; NULL: host */
    int leaf_port;                /* 0: no leafnodes listener; -1: any free port */
    const char *leaf_username;    /* accepted leafs must authenticate with these */
    const char *leaf_password;
    int64_t leaf_reconnect_ms;    /* delay between attempts of a remote: 1 second */
    /* TLS on the leafnodes port: accepted leafs must speak TLS (INFO tls_required) */
    const char *leaf_tls_cert_file;
    const char *leaf_tls_key_file;
    const char *leaf_tls_ca_file; /* to verify leafs' certificates (with leaf_tls_verify) */
    bool leaf_tls_verify;         /* require a verified client certificate */
    ember_leaf_event_fn leaf_event_fn; /* optional */
    void *leaf_event_userdata;
    /* Users (nats-server's authorization { users }): TCP clients must authenticate as one
     * of them ("Authorization Violation" otherwise), unless no_auth_user names the user a
     * client without credentials becomes. Not combined with username/auth_token. */
    const ember_user *users;      /* array of users_count; NULL: none */
    size_t users_count;
    const char *no_auth_user;
    /* Monitoring over HTTP (nats-server -m / http_port, http: "host:port"; see
     * docs/monitoring.md). The same JSON is available without a port through
     * ember_server_monitor. dont_listen does not turn this port off. */
    const char *http_host;        /* NULL: host (so "0.0.0.0" by default), as nats-server */
    int http_port;                /* 0: off; -1: any free port (see ember_server_monitor_url) */
    /* TLS for TCP client connections (nats-server's tls {} block; see docs/tls.md). With
     * tls_cert_file set, every TCP client must upgrade to TLS after the INFO (which says
     * tls_required). In-process connections never use TLS. Files are PEM, read by
     * ember_server_new (errors: EMBER_EINVAL with nats-server's text). */
    const char *tls_cert_file;    /* server certificate (chain); NULL: no TLS */
    const char *tls_key_file;     /* its private key (required with tls_cert_file) */
    const char *tls_ca_file;      /* CAs that sign client certificates (for tls_verify) */
    bool tls_verify;              /* clients must present a certificate signed by tls_ca_file */
    bool tls_handshake_first;     /* TLS handshake before the INFO (nats-server handshake_first) */
    int64_t tls_timeout_ms;       /* handshake timeout: 2 seconds (0: the default). When TLS is
                                   * on and auth_timeout_ms was left at its default, the auth
                                   * timeout becomes tls_timeout + 1 s, as nats-server */
    /* WebSocket listener (nats-server's websocket {} block; see docs/websocket.md): the
     * NATS protocol in binary WebSocket frames, for browsers. As nats-server, it needs a
     * TLS certificate (ws_tls_cert_file/ws_tls_key_file: wss://) unless ws_no_tls. */
    const char *ws_host;          /* NULL: host */
    int ws_port;                  /* 0: no websocket listener; -1: any free port */
    bool ws_no_tls;               /* plain ws:// (nats-server warns: not for production) */
    const char *ws_tls_cert_file;
    const char *ws_tls_key_file;
    bool ws_compression;          /* permessage-deflate (RFC 7692, zlib) with the clients that
                                   * offer it, as nats-server: no context takeover, writes
                                   * over 64 bytes compressed, compressed frames inflated */
    int64_t ws_handshake_timeout_ms; /* HTTP upgrade (and TLS) must finish within: 2 s */
    /* Accounts (see ember_account above); NULL: only the global account "$G". */
    const ember_account *accounts; /* array of accounts_count */
    size_t accounts_count;
    /* Operator mode (nats-server's operator + resolver: MEMORY + resolver_preload; see
     * docs/accounts.md): the operator JWT (the token, or a file holding it) is the trust
     * root; account_jwts (tokens or files) are the accounts, each signed by the operator or
     * one of its signing keys, named by their public keys; clients authenticate with a
     * user JWT signed by an account (.creds files) and the nonce signed by the user's key.
     * Not combined with users, accounts, username or auth_token. */
    const char *operator_jwt;
    const char *const *account_jwts; /* array of account_jwts_count */
    size_t account_jwts_count;
    /* WebSocket origin checks (nats-server's websocket { same_origin, allowed_origins }):
     * a request whose Origin header fails them is answered "403 Forbidden" (a request
     * without Origin, i.e. not from a browser, is accepted). ws_same_origin: the Origin's
     * scheme, host and port must be those of the request (Host header; https with wss).
     * ws_allowed_origins: "scheme://host[:port]" strings (default port: 80, 443 for
     * https); the Origin must match one. Strings borrowed as the others (copied by
     * ember_server_new). NULL / false (default): any origin. */
    bool ws_same_origin;
    const char *const *ws_allowed_origins; /* array of ws_allowed_origins_count */
    size_t ws_allowed_origins_count;
    /* WebSocket-specific authorization (nats-server's websocket { authorization { user,
     * password, token, timeout }, no_auth_user }). When ws_username, ws_auth_token or
     * ws_no_auth_user is set, websocket clients must use these instead of the server's
     * username/password/auth_token/no_auth_user (TCP clients are unaffected): the users
     * (users, accounts) still authenticate on both; ws_no_auth_user names the user (of
     * users) a websocket client without credentials becomes. ws_username/ws_auth_token are
     * not combined with users. NULL (default): websocket clients authenticate as TCP ones. */
    const char *ws_username;      /* with ws_password */
    const char *ws_password;
    const char *ws_auth_token;
    const char *ws_no_auth_user;
    int64_t ws_auth_timeout_ms;   /* websocket clients' auth timeout; 0: auth_timeout_ms */
} ember_server_options;

/* Fill with nats-server's defaults. Strings in the struct are borrowed: they must stay
 * valid until ember_server_new returns (the server copies them). */
EMBER_API void ember_server_options_init(ember_server_options *opts);

/* A configuration loaded from a nats-server format file: owns the strings that
 * ember_config_load stored into the options (see docs/config.md). */
typedef struct ember_config ember_config;
/* Load the nats-server format configuration file at path into opts (which should come
 * from ember_server_options_init; the host may override fields afterwards). Strings set
 * in opts point into *out, which the caller owns and frees with ember_config_free once
 * ember_server_new has returned (the server copies them). On error *out is NULL and
 * opts is unchanged.
 * Errors: EMBER_EINVAL with "file:line:col: message" in ember_last_error(); EMBER_EIO
 * when the file or a file it includes cannot be read. Unknown keys are not errors: each
 * is reported through opts->log_fn (if set) as a warning "file:line:col: unknown field
 * \"x\"". Blocks on reading the files. */
EMBER_API int ember_config_load(ember_config **out, const char *path, ember_server_options *opts);
/* Free a loaded configuration (NULL is ignored); strings it set in options become
 * invalid. */
EMBER_API void ember_config_free(ember_config *cfg);

/* ------------------------------------------------------------------ server */

typedef struct ember_server ember_server;

/* Validate options and create a server (not yet started). *out is owned by the caller
 * and freed with ember_server_free. Opens no socket. opts and everything it points to
 * are read during the call only (the server keeps copies). */
EMBER_API int ember_server_new(ember_server **out, const ember_server_options *opts);
/* Start the server's thread: binds listeners and returns without waiting. A listen
 * failure is reported through ember_server_ready_for_connections (false) and the log. */
EMBER_API int ember_server_start(ember_server *s);
/* Block up to timeout_ms until the server accepts connections (listeners bound).
 * Returns false on timeout or if start failed (ember_last_error() says why). */
EMBER_API bool ember_server_ready_for_connections(ember_server *s, int timeout_ms);
/* "nats://127.0.0.1:4222" with the port actually bound (useful with port -1); host
 * 0.0.0.0 / :: is reported as 127.0.0.1. NULL with dont_listen or before ready.
 * The string is owned by the server and valid until ember_server_free. */
EMBER_API const char *ember_server_client_url(const ember_server *s);
/* The bound client port (0 if none). */
EMBER_API int ember_server_port(const ember_server *s);
EMBER_API const char *ember_server_id(const ember_server *s);
EMBER_API const char *ember_server_name(const ember_server *s);
/* Stop accepting, close every connection (in-process ones become closed), stop the
 * server thread. Idempotent and safe from any thread, concurrently with itself, and
 * from inside a message callback (then it does not wait for that callback's thread).
 * Blocks until the server thread has ended (except from within a server callback). */
EMBER_API void ember_server_shutdown(ember_server *s);
/* Block until the server has shut down. With handle_signals, SIGINT and SIGTERM
 * (blocked in the calling thread while it waits) trigger the shutdown. */
EMBER_API int ember_server_wait_for_shutdown(ember_server *s, bool handle_signals);
/* Shut down (if needed) and free. Every ember_conn of this server must have been closed
 * with ember_conn_close before (they are closed by shutdown, but still need freeing). */
EMBER_API void ember_server_free(ember_server *s);

/* Log nats-server style lines to stderr ("[pid] 2006/01/02 15:04:05.000000 [INF] ..."),
 * at most up to `level` (EMBER_LOG_INFO, _DEBUG, _TRACE). Call before or after start. */
EMBER_API void ember_server_log_to_stderr(ember_server *s, int level);
/* Append the same nats-server style lines to the file at path (created if needed), at most
 * up to `level`; replaces a previous log file. EMBER_EIO if it cannot be opened. The file
 * is closed by ember_server_free. Call before or after start. */
EMBER_API int ember_server_log_to_file(ember_server *s, const char *path, int level);
/* Route the server's log lines to fn (replaces any previous logger); fn NULL: silent. */
EMBER_API void ember_server_set_logger(ember_server *s, int level, ember_log_fn fn,
                                       void *userdata);

typedef struct ember_server_stats {
    uint64_t in_msgs, out_msgs, in_bytes, out_bytes;
    uint64_t connections;       /* current, TCP + in-process */
    uint64_t total_connections;
    uint64_t subscriptions;
    uint64_t slow_consumers;
} ember_server_stats;
EMBER_API void ember_server_get_stats(ember_server *s, ember_server_stats *out);
/* Apply what can change at runtime, as nats-server's config reload (ember-server runs it
 * on SIGHUP with the configuration file read again; the library installs no handler):
 * limits (max_payload, max_pending, max_connections, max_subscriptions, ping interval and
 * max pings, write deadline, auth timeout) and the users with their permissions and
 * no_auth_user. New connections use the new users; connected clients (TCP and in-process)
 * of a user that is still there get its new permissions at once; clients of a user that is
 * gone are closed, as nats-server (an in-process connection then fails every call with
 * EMBER_ECLOSED, "connection closed: Authorization Violation"; the host still frees it
 * with ember_conn_close). With TLS on, the certificate, key and CA files are read again
 * (same or new paths; certificate rotation) and tls_verify may change: new connections use
 * them; a file that does not load refuses the reload with the error ember_server_new would
 * give. Anything else that differs from the running options (ports and hosts, dont_listen,
 * server name, JetStream, leaf nodes, turning TLS on or off, tls_handshake_first,
 * websocket, monitoring, single user/token, max_control_line, adding or removing all users)
 * refuses the whole reload:
 * EMBER_EINVAL, "config reload not supported for <field>". Logging is the host's
 * (ember_server_log_to_*). opts is read during the call only. Any thread except the
 * server's own (callbacks run there: EMBER_ESTATE); blocks until the loop applied it. */
EMBER_API int ember_server_reload(ember_server *s, const ember_server_options *opts);
/* The number of leaf-node links up now (solicited and accepted). Any thread. */
EMBER_API int ember_server_leafnode_count(ember_server *s);
/* The bound leafnodes port (useful with leaf_port -1), 0 when not listening. */
EMBER_API int ember_server_leafnode_port(const ember_server *s);
/* The bound websocket port (useful with ws_port -1), 0 when not listening (or before
 * ember_server_ready_for_connections). Any thread. */
EMBER_API int ember_server_websocket_port(const ember_server *s);

/* Monitoring (docs/monitoring.md). The JSON that nats-server's monitoring port serves
 * (/varz, /connz, /subsz, /jsz, /leafz, /healthz, /accountz, with nats-server's field names), built
 * from the live server without any port: path_and_query is an endpoint path with an
 * optional query, e.g. "/varz", "connz?subs=1&sort=msgs_to" (the leading '/' may be
 * left out). On success *json_out is a NUL-terminated JSON document owned by the caller
 * (free it with ember_free). /healthz always succeeds: its "status" says "ok", "error"
 * or "unavailable" and "status_code" holds the HTTP status the port would send.
 * Errors (*json_out NULL): EMBER_EINVAL for a NULL argument or a bad query parameter
 * (ember_last_error() holds nats-server's text, e.g. "invalid sorting option: x");
 * EMBER_ENOTFOUND for an unknown path (or "/", which is HTML on the port only);
 * EMBER_ESTATE before the server is ready; EMBER_ECLOSED once it shuts down; EMBER_ENOMEM.
 * Any thread: the document is built on the server's event-loop thread, and the call
 * blocks until it is (briefly: the loop never waits on hosts); from a callback that runs
 * on that thread it is built in place. */
EMBER_API int ember_server_monitor(ember_server *s, const char *path_and_query, char **json_out);
/* "http://127.0.0.1:8222" with the monitoring port actually bound (useful with http_port
 * -1); host 0.0.0.0 / :: is reported as 127.0.0.1. NULL when http_port is 0 or before
 * ready. Owned by the server, valid until ember_server_free. */
EMBER_API const char *ember_server_monitor_url(const ember_server *s);
/* The bound monitoring port, 0 when none (or before ready). */
EMBER_API int ember_server_monitor_port(const ember_server *s);
/* Free memory the library handed to the caller where its comment says so (the JSON of
 * ember_server_monitor). NULL is ignored. */
EMBER_API void ember_free(void *p);

/* ------------------------------------------------------------------ messages */

/* A message: subject, optional reply, optional headers, data. Refcounted; immutable
 * once published or delivered. Delivered messages are shared between subscribers. */
typedef struct ember_msg ember_msg;

/* Create a message to publish (copies all inputs). *out owned by the caller
 * (ember_msg_release). data may be NULL when len is 0. reply may be NULL. */
EMBER_API int ember_msg_new(ember_msg **out, const char *subject, const char *reply,
                            const void *data, size_t len);
/* Headers (only on a message created with ember_msg_new and not yet published):
 * add appends a value; set replaces all values of key; delete removes them. Keys keep
 * their case; lookups are case-sensitive, as in nats.go. */
EMBER_API int ember_msg_header_add(ember_msg *m, const char *key, const char *value);
EMBER_API int ember_msg_header_set(ember_msg *m, const char *key, const char *value);
EMBER_API int ember_msg_header_delete(ember_msg *m, const char *key);
/* First value of key, or NULL. Borrowed from the message: valid while m is held. */
EMBER_API const char *ember_msg_header_get(const ember_msg *m, const char *key);
/* All values of key: fills up to `cap` borrowed pointers, returns the total count. */
EMBER_API int ember_msg_header_values(const ember_msg *m, const char *key,
                                      const char **values, int cap);
/* Iterate over header fields: idx from 0; returns false past the end. Borrowed. */
EMBER_API bool ember_msg_header_at(const ember_msg *m, int idx, const char **key,
                                   const char **value);
/* Status code from the header line ("NATS/1.0 503"), 0 if none. */
EMBER_API int ember_msg_status(const ember_msg *m);
/* The raw header block ("NATS/1.0\r\n...\r\n\r\n") or NULL; borrowed. */
EMBER_API const char *ember_msg_headers_raw(const ember_msg *m, size_t *len);

EMBER_API const char *ember_msg_subject(const ember_msg *m);
/* NULL when the message has no reply subject. */
EMBER_API const char *ember_msg_reply(const ember_msg *m);
/* The payload (always followed by a NUL byte not counted in len, for convenience). */
EMBER_API const void *ember_msg_data(const ember_msg *m, size_t *len);
EMBER_API ember_msg *ember_msg_retain(ember_msg *m);
EMBER_API void ember_msg_release(ember_msg *m);

/* ------------------------------------------------------------------ in-process connection */

typedef struct ember_conn ember_conn;
typedef struct ember_sub ember_sub;

/* How a subscription's messages reach the host.
 *  DISPATCH: the callback runs on a dispatcher thread owned by the connection.
 *  POLL:     the callback runs inside ember_conn_poll on the host's thread; with no
 *            callback, read with ember_sub_next_msg.
 *  INLINE:   the callback runs in the publisher's thread, during its publish call
 *            (for TCP publishers: the server's event-loop thread). Fastest; the callback
 *            must not block. */
typedef enum {
    EMBER_DELIVER_DISPATCH = 0,
    EMBER_DELIVER_POLL = 1,
    EMBER_DELIVER_INLINE = 2,
} ember_delivery;

/* msg is borrowed for the call: ember_msg_retain it to keep it. */
typedef void (*ember_msg_fn)(void *userdata, ember_sub *sub, ember_msg *msg);

typedef struct ember_conn_options {
    size_t size;            /* set by init */
    const char *name;       /* for monitoring */
    bool no_echo;           /* do not receive own publishes */
    int64_t pending_msgs_limit;   /* per subscription: 65536 */
    int64_t pending_bytes_limit;  /* per subscription: 64 MiB */
    /* Called when a subscription drops messages (slow consumer); on the thread that
     * published. May be NULL. */
    void (*error_fn)(void *userdata, ember_sub *sub, int status);
    void *error_userdata;
    /* Credentials (optional): the connection authenticates as one of the server's users
     * (users, username/password, auth_token) and that user's permissions apply to it:
     * a refused publish or subscribe returns EMBER_EPERM with nats-server's "Permissions
     * Violation for ..." text. Wrong credentials: ember_conn_connect fails with EMBER_EAUTH.
     * Without credentials the connection is the host's own: not checked, no permissions. */
    const char *user;
    const char *password;
    const char *auth_token;
    const char *nkey_seed;        /* an nkey user's seed ("SU..."): signs a nonce locally */
    /* Without credentials: the account the connection works in (NULL: "$G"); unknown
     * names fail with EMBER_ENOTFOUND. With credentials the user's account is used and
     * this must be NULL or the same name (EMBER_EAUTH otherwise). */
    const char *account;
} ember_conn_options;
EMBER_API void ember_conn_options_init(ember_conn_options *o);

/* Open an in-process connection to a started server (no socket; works with
 * dont_listen). opts may be NULL for defaults. *out is owned by the caller, who ends it
 * with ember_conn_close (which also frees it). */
EMBER_API int ember_conn_connect(ember_conn **out, ember_server *s, const ember_conn_options *opts);
/* Publish. subject must be a valid literal subject; reply may be NULL. Copies nothing
 * more than once: one message block is built and shared. Returns EMBER_EMAXPAYLOAD when
 * len > max_payload, EMBER_ECLOSED after close. Never blocks on subscribers except for
 * INLINE callbacks it runs and bounded stalls on slow TCP subscribers. */
EMBER_API int ember_conn_publish(ember_conn *c, const char *subject, const char *reply,
                                 const void *data, size_t len);
/* Publish a message built with ember_msg_new (with headers). m stays owned by the caller. */
EMBER_API int ember_conn_publish_msg(ember_conn *c, ember_msg *m);
/* Subscribe. queue NULL for none. fn NULL (DISPATCH or POLL only): read with
 * ember_sub_next_msg. userdata is freed with free_userdata (if not NULL) when the
 * subscription is freed, also on error. *out is owned by the connection: it stays
 * valid until the connection is freed, even after unsubscribe. */
EMBER_API int ember_conn_subscribe(ember_sub **out, ember_conn *c, const char *subject,
                                   const char *queue, ember_delivery mode, ember_msg_fn fn,
                                   void *userdata, ember_free_fn free_userdata);
/* Request/reply: publish with a unique reply inbox and wait up to timeout_ms for the
 * first reply. *reply owned by the caller (ember_msg_release). EMBER_ENORESPONDERS
 * when nobody subscribes to subject; EMBER_ETIMEDOUT. */
EMBER_API int ember_conn_request(ember_conn *c, const char *subject, const void *data,
                                 size_t len, int timeout_ms, ember_msg **reply);
EMBER_API int ember_conn_request_msg(ember_conn *c, ember_msg *m, int timeout_ms,
                                     ember_msg **reply);
/* Answer a request (publish to its reply subject). EMBER_EINVAL if it has none. */
EMBER_API int ember_msg_respond(ember_conn *c, const ember_msg *request, const void *data,
                                size_t len);
/* Run pending POLL callbacks on the calling thread, waiting up to timeout_ms (0: don't
 * wait, -1: forever) for the first. Returns the number of callbacks run (>= 0) or an
 * error. Only one thread may poll a connection at a time. */
EMBER_API int ember_conn_poll(ember_conn *c, int timeout_ms);
/* A file descriptor that is readable while messages for POLL subscriptions with a
 * callback are pending (or the connection closed); for select/poll/epoll/asyncio. It may
 * stay readable once after the queue emptied (the next ember_conn_poll returns 0 and
 * clears it). Callback-less subscriptions do not signal it: wait in ember_sub_next_msg.
 * Owned by the connection. -1 on failure. */
EMBER_API int ember_conn_fd(ember_conn *c);
/* Wait until every message published so far on this connection was handed to its
 * subscribers' queues or outbound buffers. In-process publishing is synchronous, so
 * this returns at once unless closed. */
EMBER_API int ember_conn_flush(ember_conn *c, int timeout_ms);
/* Unsubscribe everything, let subscribers' pending messages be delivered (bounded by
 * timeout_ms), then close. Publishing after drain fails with EMBER_ECLOSED. */
EMBER_API int ember_conn_drain(ember_conn *c, int timeout_ms);
/* Close: unsubscribe all, stop the dispatcher (waits for a running callback unless
 * called from it), free the connection and its subscriptions. Idempotent: the handle
 * must not be used after this call. */
EMBER_API void ember_conn_close(ember_conn *c);
EMBER_API bool ember_conn_is_closed(const ember_conn *c);

typedef struct ember_conn_stats {
    uint64_t in_msgs, in_bytes;   /* delivered to this connection */
    uint64_t out_msgs, out_bytes; /* published by this connection */
    uint64_t dropped;             /* dropped by pending limits */
} ember_conn_stats;
EMBER_API void ember_conn_get_stats(ember_conn *c, ember_conn_stats *out);

/* Next message of a callback-less subscription, waiting up to timeout_ms (-1 forever).
 * *out owned by the caller. EMBER_ETIMEDOUT, EMBER_ECLOSED (unsubscribed and empty),
 * EMBER_ESLOWCONSUMER once after drops (then the next call goes on). */
EMBER_API int ember_sub_next_msg(ember_sub *sub, ember_msg **out, int timeout_ms);
/* Stop receiving. Messages already queued are discarded. Idempotent. */
EMBER_API int ember_sub_unsubscribe(ember_sub *sub);
/* Unsubscribe automatically after max messages in total have been delivered. */
EMBER_API int ember_sub_auto_unsubscribe(ember_sub *sub, int64_t max);
EMBER_API int ember_sub_set_pending_limits(ember_sub *sub, int64_t msgs, int64_t bytes);
typedef struct ember_sub_stats {
    uint64_t delivered;    /* handed to the host */
    uint64_t pending_msgs, pending_bytes;
    uint64_t dropped;
} ember_sub_stats;
EMBER_API void ember_sub_get_stats(ember_sub *sub, ember_sub_stats *out);
EMBER_API const char *ember_sub_subject(const ember_sub *sub);
EMBER_API bool ember_sub_is_valid(const ember_sub *sub);

/* ------------------------------------------------------------------ JetStream (native) */

/* Streams and consumers of the server's JetStream (options.jetstream), reached from an
 * in-process connection. Publish, get, fetch and ack call the engine directly (no JSON, no
 * wire protocol); the wire API ($JS.API.*) and this API share the same streams, consumers
 * and engine functions, so TCP clients see what the host stores and the other way round.
 *
 * Errors (besides EMBER_EINVAL for bad arguments and EMBER_ECLOSED): EMBER_ESTATE when
 * JetStream is not enabled; EMBER_ENOTFOUND for a missing stream, consumer or message;
 * EMBER_EEXISTS for a stream or consumer name in use with another configuration;
 * EMBER_EWRONGSEQ when an expectation header failed; EMBER_ELIMIT when a stream limit
 * refused a message (discard new, max_msg_size); EMBER_EIO when the store failed.
 * ember_last_error() then holds nats-server's description and its err_code, e.g.
 * "wrong last sequence: 4 (10071)". Any thread; the calls block only on the store (a
 * durable publish waits for its fsync) and on the waits they are given. */

typedef enum { EMBER_STORAGE_FILE = 0, EMBER_STORAGE_MEMORY = 1 } ember_storage;
typedef enum {
    EMBER_RETENTION_LIMITS = 0,
    EMBER_RETENTION_INTEREST = 1,
    EMBER_RETENTION_WORKQUEUE = 2,
} ember_retention;
typedef enum { EMBER_DISCARD_OLD = 0, EMBER_DISCARD_NEW = 1 } ember_discard;

/* The common part of nats-server's StreamConfig. Strings are borrowed for the call. */
typedef struct ember_stream_config {
    size_t size;                    /* set by init */
    const char *name;
    const char *const *subjects;    /* NULL/0: the stream's name is its subject */
    size_t nsubjects;
    const char *description;        /* NULL: none */
    ember_storage storage;          /* file */
    ember_retention retention;      /* limits */
    ember_discard discard;          /* old */
    int64_t max_msgs;               /* -1: unlimited */
    int64_t max_bytes;              /* -1 */
    int64_t max_age_ms;             /* 0: unlimited */
    int64_t max_msgs_per_subject;   /* -1 */
    int32_t max_msg_size;           /* -1 */
    int64_t duplicate_window_ms;    /* 0: 2 minutes (or max_age when smaller) */
    bool allow_direct;
    bool allow_rollup;              /* allow_rollup_hdrs */
    bool deny_delete, deny_purge;
    bool allow_msg_ttl;
} ember_stream_config;
EMBER_API void ember_stream_config_init(ember_stream_config *cfg);

/* Create a stream; creating it again with the same configuration succeeds (EMBER_EEXISTS
 * for a different one, as nats-server's 10058). */
EMBER_API int ember_js_stream_create(ember_conn *c, const ember_stream_config *cfg);
EMBER_API int ember_js_stream_delete(ember_conn *c, const char *stream);
/* Purge messages matching filter (NULL: all); *purged (may be NULL) gets the count. */
EMBER_API int ember_js_stream_purge(ember_conn *c, const char *stream, const char *filter,
                                    uint64_t *purged);
typedef struct ember_stream_info {
    uint64_t msgs, bytes, first_seq, last_seq, num_subjects, consumers;
} ember_stream_info;
EMBER_API int ember_js_stream_info(ember_conn *c, const char *stream, ember_stream_info *out);

typedef struct ember_pub_ack {
    uint64_t seq;
    bool duplicate;                 /* Nats-Msg-Id seen within the duplicate window */
    char stream[256];               /* the stream that stored it */
} ember_pub_ack;
/* Publish m (with its headers: Nats-Msg-Id, Nats-Expected-*, Nats-Rollup, Nats-TTL) into
 * the stream whose subjects match its subject, and wait until it is stored (durably: for
 * a file stream, fsync'd unless the server has a sync interval). Core subscribers of the
 * subject receive it as well, as with a publish over the wire. ack may be NULL.
 * EMBER_ENOTFOUND when no stream takes the subject. m stays owned by the caller. */
EMBER_API int ember_js_publish(ember_conn *c, ember_msg *m, ember_pub_ack *ack);
/* The same without waiting: fn(userdata, status, ack) is called once, from the store's
 * flusher thread or from this call (memory streams, errors); status is EMBER_OK or an
 * error code (ack NULL then). fn must not block. Returns an error (and fn is never
 * called) only when nothing was attempted. */
typedef void (*ember_pub_ack_fn)(void *userdata, int status, const ember_pub_ack *ack);
EMBER_API int ember_js_publish_async(ember_conn *c, ember_msg *m, ember_pub_ack_fn fn,
                                     void *userdata);

/* Read a stored message by sequence, or (ember_js_get_last) the last one on a subject
 * (wildcards allowed). *out is owned by the caller; it has the stored subject, headers and
 * data, plus the headers Nats-Stream, Nats-Subject, Nats-Sequence and Nats-Time-Stamp as a
 * direct get over the wire has. */
EMBER_API int ember_js_get(ember_conn *c, const char *stream, uint64_t seq, ember_msg **out);
EMBER_API int ember_js_get_last(ember_conn *c, const char *stream, const char *subject,
                                ember_msg **out);
/* Delete one message (erased unless no_erase). */
EMBER_API int ember_js_delete_msg(ember_conn *c, const char *stream, uint64_t seq);

typedef enum {
    EMBER_DELIVER_POLICY_ALL = 0,
    EMBER_DELIVER_POLICY_LAST = 1,
    EMBER_DELIVER_POLICY_NEW = 2,
    EMBER_DELIVER_POLICY_BY_START_SEQUENCE = 3,
    EMBER_DELIVER_POLICY_LAST_PER_SUBJECT = 4,
} ember_deliver_policy;
typedef enum { EMBER_ACK_EXPLICIT = 0, EMBER_ACK_NONE = 1, EMBER_ACK_ALL = 2 } ember_ack_policy;

/* A pull consumer (the common part of nats-server's ConsumerConfig). */
typedef struct ember_consumer_config {
    size_t size;                    /* set by init */
    const char *durable_name;       /* NULL: ephemeral (removed after inactive_threshold) */
    const char *filter_subject;     /* NULL: all */
    ember_deliver_policy deliver_policy;
    uint64_t opt_start_seq;         /* for EMBER_DELIVER_POLICY_BY_START_SEQUENCE */
    ember_ack_policy ack_policy;    /* explicit */
    int64_t ack_wait_ms;            /* 0: 30 s */
    int64_t max_deliver;            /* -1: unlimited */
    int64_t max_ack_pending;        /* 0: 1000 */
    int64_t inactive_threshold_ms;  /* 0: server default (5 s for ephemerals) */
} ember_consumer_config;
EMBER_API void ember_consumer_config_init(ember_consumer_config *cfg);

/* Create (or find identical) a pull consumer on stream. name (may be NULL) receives the
 * consumer's name, NUL-terminated, in cap bytes (ephemerals get a generated one). */
EMBER_API int ember_js_consumer_create(ember_conn *c, const char *stream,
                                       const ember_consumer_config *cfg, char *name,
                                       size_t cap);
EMBER_API int ember_js_consumer_delete(ember_conn *c, const char *stream, const char *consumer);
typedef struct ember_consumer_info {
    uint64_t num_pending;           /* not yet delivered, matching the filter */
    uint64_t num_ack_pending;       /* delivered, not yet acknowledged */
    uint64_t num_redelivered;
    uint64_t delivered_stream_seq, ack_floor_stream_seq;
} ember_consumer_info;
EMBER_API int ember_js_consumer_info(ember_conn *c, const char *stream, const char *consumer,
                                     ember_consumer_info *out);

/* Fetch up to max messages from a pull consumer into msgs[]: a pull request that expires
 * after timeout_ms (0: no wait, only what is there now), as MSG.NEXT over the wire; it
 * returns when max messages arrived or the request expired. Returns the number fetched
 * (>= 0; 0 when none arrived in time), EMBER_ENOTFOUND for a missing consumer, or an
 * error. Each msgs[i] is owned by the caller and must be acknowledged (ember_js_ack) as
 * the consumer's ack policy requires. */
EMBER_API int ember_js_fetch(ember_conn *c, const char *stream, const char *consumer,
                             ember_msg **msgs, int max, int timeout_ms);
/* Acknowledge a message from ember_js_fetch (or a JetStream delivery to an in-process
 * subscription): ack, negative ack (redeliver after delay_ms, 0: at once), in progress
 * (restart the ack wait), terminate (never redeliver). */
EMBER_API int ember_js_ack(ember_conn *c, const ember_msg *m);
EMBER_API int ember_js_nak(ember_conn *c, const ember_msg *m, int64_t delay_ms);
EMBER_API int ember_js_in_progress(ember_conn *c, const ember_msg *m);
EMBER_API int ember_js_term(ember_conn *c, const ember_msg *m);

/* The JetStream metadata of a message delivered by a consumer (from its ack subject) or
 * read with ember_js_get (from its Nats-* headers; consumer fields 0 then). */
typedef struct ember_js_meta {
    uint64_t stream_seq, consumer_seq;
    uint64_t num_delivered, num_pending;
    int64_t timestamp_ns;           /* wall clock, ns since the epoch */
} ember_js_meta;
EMBER_API int ember_js_msg_meta(const ember_msg *m, ember_js_meta *out);

/* ------------------------------------------------------------------ key-value (native) */

/* Key-value buckets as the NATS clients make them (ADR-8): bucket B is the stream KV_B on
 * $KV.B.>, so TCP clients (nats.go, nats.js, nats.c kvStore_*) and this API share every
 * bucket. Reads go straight to the store, writes through the stream's publish path; no
 * JSON on either. Errors as for JetStream above; EMBER_ENOTFOUND for a missing bucket or
 * key (also a deleted or purged one), EMBER_EWRONGSEQ for a failed create or update.
 * Bucket names: letters, digits, '-' and '_'; keys: letters, digits and "-/_=.", not
 * starting or ending with '.'. Any thread. */
typedef struct ember_kv ember_kv;

typedef struct ember_kv_config {
    size_t size;                  /* set by init */
    const char *bucket;
    const char *description;      /* NULL: none */
    int32_t history;              /* values kept per key: 1 (1..64) */
    int64_t ttl_ms;               /* 0: values never expire */
    int64_t max_bytes;            /* -1: unlimited */
    int32_t max_value_size;       /* -1: unlimited */
    ember_storage storage;        /* file */
} ember_kv_config;
EMBER_API void ember_kv_config_init(ember_kv_config *cfg);

/* Create a bucket (or open it when it exists with the same configuration). *out is owned
 * by the caller (ember_kv_close); it is valid while c is open. */
EMBER_API int ember_kv_bucket_create(ember_conn *c, const ember_kv_config *cfg, ember_kv **out);
/* Open an existing bucket. */
EMBER_API int ember_kv_bucket_open(ember_conn *c, const char *bucket, ember_kv **out);
/* Delete a bucket and everything in it. */
EMBER_API int ember_kv_bucket_delete(ember_conn *c, const char *bucket);
/* Free the handle (the bucket stays). NULL is ignored. */
EMBER_API void ember_kv_close(ember_kv *kv);

typedef enum { EMBER_KV_PUT = 0, EMBER_KV_DEL = 1, EMBER_KV_PURGE = 2 } ember_kv_op;
/* An entry; every pointer inside is owned by the entry (ember_kv_entry_free). */
typedef struct ember_kv_entry {
    const char *bucket;
    const char *key;
    const void *value;            /* followed by a NUL byte not counted in len */
    size_t len;
    uint64_t revision;            /* the stream sequence */
    int64_t created_ns;           /* wall clock */
    uint64_t delta;               /* watch: entries still to come after this one */
    ember_kv_op op;
} ember_kv_entry;
EMBER_API void ember_kv_entry_free(ember_kv_entry *e);

/* The latest value of key (EMBER_ENOTFOUND when missing, deleted or purged). */
EMBER_API int ember_kv_get(ember_kv *kv, const char *key, ember_kv_entry **out);
/* The entry of key at revision (EMBER_ENOTFOUND when that revision is not key's). */
EMBER_API int ember_kv_get_revision(ember_kv *kv, const char *key, uint64_t revision,
                                    ember_kv_entry **out);
/* Write a value; *revision (may be NULL) gets its revision. Durable when it returns. */
EMBER_API int ember_kv_put(ember_kv *kv, const char *key, const void *value, size_t len,
                           uint64_t *revision);
/* ember_kv_put without waiting: the value is in the bucket (readable) when the call
 * returns, and fn(userdata, status, revision) is called once when it is durable
 * (EMBER_OK and its revision) or failed (an error code, revision 0; the store's error).
 * Many puts in flight share one fsync (group commit), so a writer that keeps many
 * outstanding pays a fraction of a sync each. fn runs on the bucket store's flusher
 * thread, or in this call (memory buckets); it must not block or call back into this
 * bucket's writes. kv and its connection may be closed while puts are in flight: fn
 * still runs (at the latest while the server shuts down, with an error if the value
 * could not be made durable). Returns an error (and fn is never called) when nothing
 * was written: invalid key, bucket not found, closed connection, fn NULL. Any thread. */
typedef void (*ember_kv_put_fn)(void *userdata, int status, uint64_t revision);
EMBER_API int ember_kv_put_async(ember_kv *kv, const char *key, const void *value, size_t len,
                                 ember_kv_put_fn fn, void *userdata);
/* Write only if key has no value (never set, deleted or purged): EMBER_EWRONGSEQ if it has. */
EMBER_API int ember_kv_create(ember_kv *kv, const char *key, const void *value, size_t len,
                              uint64_t *revision);
/* Write only if key's latest revision is last (compare-and-set): EMBER_EWRONGSEQ if not. */
EMBER_API int ember_kv_update(ember_kv *kv, const char *key, const void *value, size_t len,
                              uint64_t last, uint64_t *revision);
/* Delete (a DEL marker; history kept) or purge (a PURGE marker replacing the history). */
EMBER_API int ember_kv_delete(ember_kv *kv, const char *key);
EMBER_API int ember_kv_purge(ember_kv *kv, const char *key);

/* The keys that have a value, sorted. *keys is one allocation holding the array and the
 * strings: free(*keys). */
EMBER_API int ember_kv_keys(ember_kv *kv, char ***keys, size_t *n);
/* Every kept entry of key, oldest first (markers included). Free with
 * ember_kv_entries_free(*entries, *n) (or free entries one by one with
 * ember_kv_entry_free and then the array with ember_kv_entries_free(*entries, 0)).
 * EMBER_ENOTFOUND when there is none. */
EMBER_API int ember_kv_history(ember_kv *kv, const char *key, ember_kv_entry ***entries,
                               size_t *n);
EMBER_API void ember_kv_entries_free(ember_kv_entry **entries, size_t n);

/* Watch keys matching `keys` (a key or a wildcard filter such as "cfg.*" or ">"): fn gets
 * the latest entry of every matching key first (deletes and purges included), then one
 * call with e == NULL marking the end of those initial values, then every change as it
 * happens. e is borrowed for the call. fn runs as `mode` says (EMBER_DELIVER_DISPATCH:
 * the connection's dispatcher thread; EMBER_DELIVER_POLL: ember_conn_poll). Stop with
 * ember_kv_watch_stop (which calls free_userdata) before ember_conn_close. A watcher
 * still running when its connection closes ends with it: free_userdata is called then,
 * and the handle must not be used any more. */
typedef struct ember_kv_watcher ember_kv_watcher;
typedef void (*ember_kv_watch_fn)(void *userdata, const ember_kv_entry *e);
EMBER_API int ember_kv_watch(ember_kv *kv, const char *keys, ember_delivery mode,
                             ember_kv_watch_fn fn, void *userdata, ember_free_fn free_userdata,
                             ember_kv_watcher **out);
EMBER_API void ember_kv_watch_stop(ember_kv_watcher *w);

/* ------------------------------------------------------------------ object store (native) */

/* Object stores as the NATS clients make them (ADR-20): bucket B is the stream OBJ_B on
 * $O.B.C.> (chunks) and $O.B.M.> (metadata). An object is a run of chunk messages on
 * $O.B.C.<nuid> plus one metadata message on $O.B.M.<base64url(name)> holding the JSON
 * the clients write (name, size, chunks, nuid, "SHA-256=" digest, ...), so objects put
 * here are read by nats.js / nats.go object stores and the other way round. Reads go
 * straight to the store; writes go through the stream publish path (durable when the
 * call returns). Errors as for JetStream above; EMBER_ENOTFOUND for a missing bucket or
 * object (also a deleted one), EMBER_EINVAL for an invalid bucket or object name,
 * EMBER_EIO when the data read does not match the object's size and SHA-256 digest
 * ("digest mismatch") or its metadata cannot be read. Bucket names: letters, digits, '-' and '_'; object names: any
 * non-empty string up to 2048 bytes. The bucket handle may be used from any thread;
 * a writer or reader from one thread at a time. */
typedef struct ember_obj ember_obj;

typedef struct ember_obj_config {
    size_t size;                  /* set by init */
    const char *bucket;
    const char *description;      /* NULL: none */
    int64_t ttl_ms;               /* 0: objects never expire (the stream's max_age) */
    int64_t max_bytes;            /* -1: unlimited */
    ember_storage storage;        /* file */
    uint32_t chunk_size;          /* 128 KiB: chunk size of objects put through the
                                   * returned handle (at most the server's max_payload) */
} ember_obj_config;
EMBER_API void ember_obj_config_init(ember_obj_config *cfg);

/* Create a bucket (or open it when it exists with the same configuration). *out is owned
 * by the caller (ember_obj_close); it is valid while c is open. */
EMBER_API int ember_obj_bucket_create(ember_conn *c, const ember_obj_config *cfg,
                                      ember_obj **out);
/* Open an existing bucket (chunk size 128 KiB). */
EMBER_API int ember_obj_bucket_open(ember_conn *c, const char *bucket, ember_obj **out);
/* Delete a bucket and every object in it. */
EMBER_API int ember_obj_bucket_delete(ember_conn *c, const char *bucket);
/* Free the handle (the bucket stays). NULL is ignored. */
EMBER_API void ember_obj_close(ember_obj *obj);

/* An object's metadata; every pointer inside is owned by the info (ember_obj_info_free). */
typedef struct ember_obj_info {
    const char *bucket;
    const char *name;
    const char *description;      /* "" when none */
    const char *nuid;             /* the chunks are on $O.<bucket>.C.<nuid> */
    const char *digest;           /* "SHA-256=<base64url>"; "" for a deleted object */
    uint64_t size;                /* bytes */
    uint64_t chunks;
    uint32_t chunk_size;          /* max_chunk_size it was put with (0: not recorded) */
    int64_t mtime_ns;             /* when the metadata was stored (wall clock) */
    uint64_t revision;            /* stream sequence of the metadata message */
    bool deleted;
    /* a link made by a client (nats.go AddLink, nats.js link): the object it points to;
     * both NULL when the object is not a link, link_name NULL for a link to a bucket */
    const char *link_bucket;
    const char *link_name;
} ember_obj_info;
EMBER_API void ember_obj_info_free(ember_obj_info *info);

/* Per-put options; NULL for the defaults. */
typedef struct ember_obj_put_options {
    size_t size;                  /* set by init */
    const char *description;      /* NULL: none */
    uint32_t chunk_size;          /* 0: the handle's */
} ember_obj_put_options;
EMBER_API void ember_obj_put_options_init(ember_obj_put_options *opts);

/* Put an object from a buffer (data may be NULL when len is 0), replacing any object of
 * that name (whose chunks are then purged). Durable when it returns. info (may be NULL)
 * gets the new object's metadata, owned by the caller (ember_obj_info_free). On error
 * nothing of the new object stays in the bucket. Concurrent puts of one name are safe:
 * the last one wins and each purges the chunks of the object it replaced. Blocks on the
 * store (the chunks share fsyncs; the metadata and the purge wait for their own). */
EMBER_API int ember_obj_put(ember_obj *obj, const char *name, const void *data, size_t len,
                            const ember_obj_put_options *opts, ember_obj_info **info);

/* Streaming put: open a writer, write the data in pieces of any size (it is cut into
 * chunks and stored as it comes), then commit it (the object appears, replacing any
 * object of that name) or abort it (what was stored is purged). Exactly one of commit
 * and abort must be called once open succeeded; both free the writer. After a failed
 * write, commit fails with the same error (and purges). Data is copied: the caller's
 * buffer may be reused when write returns. *out is owned by the caller. A writer does
 * not need its bucket handle (which may be closed first) but must end before its
 * connection is closed. Use a writer from one thread at a time; write and commit block
 * on the store (chunks are stored while later ones are written, and commit waits for
 * all of them). */
typedef struct ember_obj_writer ember_obj_writer;
EMBER_API int ember_obj_writer_open(ember_obj *obj, const char *name,
                                    const ember_obj_put_options *opts, ember_obj_writer **out);
EMBER_API int ember_obj_writer_write(ember_obj_writer *w, const void *data, size_t len);
/* Store the last chunk and the metadata; info (may be NULL) as for ember_obj_put. */
EMBER_API int ember_obj_writer_commit(ember_obj_writer *w, ember_obj_info **info);
/* NULL is ignored. */
EMBER_API void ember_obj_writer_abort(ember_obj_writer *w);

/* Get a whole object: *data is a malloc'd copy (free() it), followed by a NUL byte not
 * counted in *len (an empty object is a 1-byte allocation); info (may be NULL) gets its
 * metadata (ember_obj_info_free). Links made by clients are followed (info is then the
 * linked object's).
 * EMBER_ENOTFOUND for a missing or deleted object, EMBER_EIO "digest mismatch" when the
 * chunks do not add up to the metadata's size and digest (nothing is returned then). */
EMBER_API int ember_obj_get(ember_obj *obj, const char *name, void **data, size_t *len,
                            ember_obj_info **info);

/* Streaming get: open a reader on an object, then read it chunk by chunk into the
 * caller's buffer (cap > 0): ember_obj_reader_read returns the number of bytes copied
 * (> 0), 0 at the end (once the size and SHA-256 digest were verified) or an error:
 * EMBER_EIO "digest mismatch" when the data does not match (also when chunks are missing,
 * for example because the object was replaced or deleted while it was read); the bytes
 * read before come first, the error takes the place of the 0. An error is sticky. *out is owned by the caller (ember_obj_reader_close); like a writer it does
 * not need its bucket handle but must be closed before its connection. Use a reader from
 * one thread at a time; it blocks only on loading chunks from the store. */
typedef struct ember_obj_reader ember_obj_reader;
EMBER_API int ember_obj_reader_open(ember_obj *obj, const char *name, ember_obj_reader **out);
EMBER_API int64_t ember_obj_reader_read(ember_obj_reader *r, void *buf, size_t cap);
/* The object's metadata, owned by the reader (valid until ember_obj_reader_close). */
EMBER_API const ember_obj_info *ember_obj_reader_info(const ember_obj_reader *r);
/* NULL is ignored. */
EMBER_API void ember_obj_reader_close(ember_obj_reader *r);

/* The metadata of an object, also of a deleted one (deleted true, size 0): EMBER_ENOTFOUND
 * only when the bucket never had an object of that name (or it was purged). *out is owned
 * by the caller (ember_obj_info_free). */
EMBER_API int ember_obj_get_info(ember_obj *obj, const char *name, ember_obj_info **out);
/* The names of the objects that are not deleted, sorted (byte order). *names is one
 * allocation holding the array and the strings: free(*names). */
EMBER_API int ember_obj_list(ember_obj *obj, char ***names, size_t *n);
/* Delete an object: its metadata is replaced by a deleted marker (as the clients do) and
 * its chunks are purged. EMBER_ENOTFOUND when missing or already deleted. */
EMBER_API int ember_obj_delete(ember_obj *obj, const char *name);

#ifdef __cplusplus
}
#endif
#endif
