/*
 * ember_lua.c: the Lua 5.4 binding of libember (`require "ember"`).
 *
 * Uses only the public header ember.h. The rule that shapes everything here: no C
 * thread other than the one running Lua ever enters the Lua state. Subscriptions with a
 * Lua callback use EMBER_DELIVER_POLL, so their callbacks run inside conn:poll() (or
 * while conn:request() waits, see below) on the caller's thread; subscriptions without
 * a callback are read with sub:next_msg().
 *
 * Objects (one metatable each): server, conn, sub, msg. For server, conn and sub,
 * __gc, __close and :close() are one idempotent routine. Errors: misuse raises
 * ("ember: ..."); what one waits for (request, next_msg) returns nil, message, code.
 *
 * Ownership
 *  - conn userdata: user value 1 is the connection's reference table (Lua callbacks
 *    and the sub objects that have one, by luaL_ref integer keys, plus "on_error");
 *    user value 2 is the server object, which so outlives its connections. Keeping the
 *    callbacks in a per-connection table rather than in the global registry means a
 *    callback that captures its own connection does not pin it forever: the cycle is
 *    collectable. The references are released on unsubscribe and on close.
 *  - sub userdata: user value 1 is its conn object. The lsub struct inside it is the
 *    userdata handed to ember_conn_subscribe (no free function): the library calls the
 *    callback only for a live (not unsubscribed) subscription of an open connection,
 *    and while that is so the sub object is anchored in the reference table.
 *  - msg userdata: holds one reference on an ember_msg (released by __gc); user value
 *    1 is the conn it arrived on (for msg:respond).
 *
 * Requests: when no Lua callback subscription of this Lua state matches the subject,
 * conn:request() is ember_conn_request (the responder lives in another thread or
 * process; "no responders" comes from the library). When one does, blocking in C would
 * starve it, so the binding publishes with a reply inbox of its own and, until the reply
 * or the deadline, keeps polling every open connection of this Lua state.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "lauxlib.h"
#include "lua.h"

#include "ember.h"

#if LUA_VERSION_NUM < 504
#error "the ember Lua module needs Lua 5.4"
#endif

/* the one exported symbol (the module is built with hidden visibility) */
#if defined(_WIN32)
#define EMBER_LUA_EXPORT __declspec(dllexport)
#else
#define EMBER_LUA_EXPORT __attribute__((visibility("default")))
#endif

#define MT_SERVER "ember.server"
#define MT_CONN "ember.conn"
#define MT_SUB "ember.sub"
#define MT_MSG "ember.msg"
#define MT_JS "ember.jetstream"
#define MT_KV "ember.kv"
#define MT_WATCH "ember.kv_watcher"
#define MT_BATCH "ember.msg_batch"

#define POLL_BATCH 256 /* ember_conn_poll runs at most this many callbacks per call */

/* registry key of the per-state weak table { [lightuserdata lconn] = conn object } */
static const char CONNS_KEY = 'c';

typedef struct lconn lconn;
typedef struct lsub lsub;
typedef struct lwatch lwatch;

typedef struct lserver {
    ember_server *s; /* NULL once freed */
    lconn *conns;    /* connections not yet closed */
    bool free_pending; /* close requested while one of its conns was polling */
    bool accounts;   /* configured with accounts (imports may rename requests) */
} lserver;

/* Where ember_kv_put_async completions go (from the store's flusher thread): published
 * to the connection's put-ack inbox while the connection is open, and run as Lua
 * callbacks inside conn:poll. Shared by the connection and every put in flight. */
typedef struct acksink {
    pthread_mutex_t mu;
    ember_conn *c;   /* NULL once the connection closes (mu) */
    char prefix[48]; /* "_INBOX.<random>." */
    atomic_int refs;
} acksink;

typedef struct waiter {
    uint64_t token;
    ember_msg *reply;
    struct waiter *next;
} waiter;

struct lconn {
    ember_conn *c; /* NULL once closed */
    lserver *srv;
    lconn *next, *prev; /* in srv->conns */
    lsub *subs;         /* live subscriptions made through this binding */
    lwatch *watches;    /* live KV watchers (stopped before the connection closes) */
    /* set while polling (depth > 0): where the callbacks find their Lua context */
    lua_State *L;
    int base; /* stack: base refs table, +1 traceback handler, +2 msg metatable, +3 conn */
    int depth;
    bool close_pending;
    atomic_int slow; /* a subscription dropped messages (set from publisher threads) */
    /* request inbox, for requests answered by Lua callbacks of this state */
    ember_sub *inbox_sub;
    char inbox[48];
    size_t inbox_len;
    uint64_t next_token;
    waiter *waiters;
    /* kv:put_async completions */
    acksink *sink;
    ember_sub *ack_sub;
};

struct lsub {
    ember_sub *s;
    lconn *owner;
    int fn_ref, self_ref; /* in the owner's reference table; LUA_NOREF without callback */
    bool active;
    lsub *next, *prev; /* in owner->subs while active */
};

typedef struct lmsg {
    ember_msg *m; /* one reference; NULL after __gc */
} lmsg;

/* ------------------------------------------------------------------ errors */

static const char *code_name(int rc)
{
    switch (rc) {
    case EMBER_ETIMEDOUT: return "timeout";
    case EMBER_ENORESPONDERS: return "no responders";
    case EMBER_ECLOSED: return "closed";
    case EMBER_ESLOWCONSUMER: return "slow consumer";
    case EMBER_EMAXPAYLOAD: return "max payload";
    case EMBER_EINVAL: return "invalid";
    case EMBER_ENOTFOUND: return "not found";
    case EMBER_EEXISTS: return "exists";
    case EMBER_EWRONGSEQ: return "wrong sequence";
    case EMBER_ELIMIT: return "limit";
    case EMBER_EIO: return "io";
    case EMBER_ESTATE: return "state";
    default: return ember_strerror(rc);
    }
}

static const char *detail(int rc)
{
    const char *d = ember_last_error();
    return d && *d ? d : ember_strerror(rc);
}

static int raise_rc(lua_State *L, int rc)
{
    return luaL_error(L, "ember: %s", detail(rc));
}

/* nil, message, code */
static int fail_rc(lua_State *L, int rc)
{
    lua_pushnil(L);
    lua_pushfstring(L, "ember: %s", detail(rc));
    lua_pushstring(L, code_name(rc));
    return 3;
}

/* A subject or queue name as a C string: no embedded NUL. */
static const char *check_name(lua_State *L, int idx, const char *what)
{
    size_t len;
    const char *s = luaL_checklstring(L, idx, &len);
    if (strlen(s) != len)
        luaL_error(L, "ember: invalid %s (embedded NUL)", what);
    return s;
}

static const char *opt_name(lua_State *L, int idx, const char *what)
{
    if (lua_isnoneornil(L, idx))
        return NULL;
    return check_name(L, idx, what);
}

static int opt_ms(lua_State *L, int idx, int def)
{
    if (lua_isnoneornil(L, idx))
        return def;
    lua_Number n = luaL_checknumber(L, idx);
    if (n < 0)
        return -1;
    if (n > INT_MAX)
        return INT_MAX;
    return (int)n;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ messages */

static lmsg *check_msg(lua_State *L, int idx)
{
    lmsg *u = luaL_checkudata(L, idx, MT_MSG);
    if (!u->m)
        luaL_error(L, "ember: message was released");
    return u;
}

/* Push an empty msg object (m NULL) to be filled by the caller, so that the C message
 * is owned by a collectable object from the moment it exists. conn_idx: the conn object
 * it belongs to (for msg:respond), or 0. */
static lmsg *new_msg(lua_State *L, int conn_idx)
{
    conn_idx = conn_idx ? lua_absindex(L, conn_idx) : 0;
    lmsg *u = lua_newuserdatauv(L, sizeof *u, 1);
    u->m = NULL;
    luaL_setmetatable(L, MT_MSG);
    if (conn_idx) {
        lua_pushvalue(L, conn_idx);
        lua_setiuservalue(L, -2, 1);
    }
    return u;
}

static int msg_gc(lua_State *L)
{
    lmsg *u = luaL_checkudata(L, 1, MT_MSG);
    if (u->m) {
        ember_msg_release(u->m);
        u->m = NULL;
    }
    return 0;
}

/* headers as { key = value } or { key = { v1, v2 } }; nil when the message has none */
static void push_headers(lua_State *L, const ember_msg *m)
{
    const char *k, *v;
    if (!ember_msg_header_at(m, 0, &k, &v)) {
        lua_pushnil(L);
        return;
    }
    lua_newtable(L);
    for (int i = 0; ember_msg_header_at(m, i, &k, &v); i++) {
        int t = lua_getfield(L, -1, k);
        if (t == LUA_TNIL) {
            lua_pop(L, 1);
            lua_pushstring(L, v);
            lua_setfield(L, -2, k);
        } else if (t == LUA_TSTRING) {
            lua_createtable(L, 2, 0);
            lua_insert(L, -2);
            lua_rawseti(L, -2, 1);
            lua_pushstring(L, v);
            lua_rawseti(L, -2, 2);
            lua_setfield(L, -2, k);
        } else {
            lua_pushstring(L, v);
            lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
            lua_pop(L, 1);
        }
    }
}

static int msg_index(lua_State *L)
{
    lmsg *u = check_msg(L, 1);
    size_t kl;
    const char *k = lua_tolstring(L, 2, &kl);
    if (!k)
        return 0;
    switch (kl) {
    case 4:
        if (memcmp(k, "data", 4) == 0) {
            size_t len;
            const char *d = ember_msg_data(u->m, &len);
            lua_pushlstring(L, d ? d : "", len);
            return 1;
        }
        break;
    case 5:
        if (memcmp(k, "reply", 5) == 0) {
            const char *r = ember_msg_reply(u->m);
            if (r && *r)
                lua_pushstring(L, r);
            else
                lua_pushnil(L);
            return 1;
        }
        break;
    case 6:
        if (memcmp(k, "status", 6) == 0) {
            int st = ember_msg_status(u->m);
            if (st)
                lua_pushinteger(L, st);
            else
                lua_pushnil(L);
            return 1;
        }
        break;
    case 7:
        if (memcmp(k, "subject", 7) == 0) {
            lua_pushstring(L, ember_msg_subject(u->m));
            return 1;
        }
        if (memcmp(k, "headers", 7) == 0) {
            push_headers(L, u->m);
            return 1;
        }
        break;
    }
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1)); /* methods */
    return 1;
}

static int msg_header(lua_State *L)
{
    lmsg *u = check_msg(L, 1);
    const char *k = luaL_checkstring(L, 2);
    const char *v = ember_msg_header_get(u->m, k);
    if (v)
        lua_pushstring(L, v);
    else
        lua_pushnil(L);
    return 1;
}

static int msg_header_values(lua_State *L)
{
    lmsg *u = check_msg(L, 1);
    const char *k = luaL_checkstring(L, 2);
    int n = ember_msg_header_values(u->m, k, NULL, 0);
    lua_createtable(L, n, 0);
    if (n > 0) {
        const char **vs = lua_newuserdatauv(L, sizeof *vs * (size_t)n, 0);
        ember_msg_header_values(u->m, k, vs, n);
        for (int i = 0; i < n; i++) {
            lua_pushstring(L, vs[i]);
            lua_rawseti(L, -3, i + 1);
        }
        lua_pop(L, 1);
    }
    return 1;
}

static int msg_tostring(lua_State *L)
{
    lmsg *u = luaL_checkudata(L, 1, MT_MSG);
    if (!u->m) {
        lua_pushstring(L, "ember.msg (released)");
        return 1;
    }
    size_t len;
    ember_msg_data(u->m, &len);
    lua_pushfstring(L, "ember.msg (%s, %d bytes)", ember_msg_subject(u->m), (int)len);
    return 1;
}

/* Build a message with headers from the table at hidx into a new msg object pushed on
 * the stack (so that any Lua error below leaves nothing to leak). */
static ember_msg *build_msg(lua_State *L, const char *subject, const char *reply,
                            const char *data, size_t len, int hidx)
{
    hidx = lua_absindex(L, hidx);
    luaL_checktype(L, hidx, LUA_TTABLE);
    lmsg *u = new_msg(L, 0);
    int rc = ember_msg_new(&u->m, subject, reply, data, len);
    if (rc)
        raise_rc(L, rc);
    ember_msg *m = u->m;
    lua_pushnil(L);
    while (lua_next(L, hidx)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "ember: header keys must be strings");
        const char *k = lua_tostring(L, -2);
        if (lua_type(L, -1) == LUA_TTABLE) {
            lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
            for (lua_Integer i = 1; i <= n; i++) {
                lua_rawgeti(L, -1, i);
                const char *v = lua_tostring(L, -1);
                if (!v)
                    luaL_error(L, "ember: header \"%s\": values must be strings", k);
                if ((rc = ember_msg_header_add(m, k, v)) != 0)
                    luaL_error(L, "ember: header \"%s\": %s", k, detail(rc));
                lua_pop(L, 1);
            }
        } else {
            const char *v = lua_tostring(L, -1); /* converts a number in place: fine for values */
            if (!v)
                luaL_error(L, "ember: header \"%s\": value must be a string or a list of strings", k);
            if ((rc = ember_msg_header_add(m, k, v)) != 0)
                luaL_error(L, "ember: header \"%s\": %s", k, detail(rc));
        }
        lua_pop(L, 1);
    }
    return m;
}

/* ------------------------------------------------------------------ server */

static lserver *check_server(lua_State *L, int idx)
{
    lserver *s = luaL_checkudata(L, idx, MT_SERVER);
    if (!s->s)
        luaL_error(L, "ember: server closed");
    return s;
}

static int log_level_of(lua_State *L, int idx)
{
    if (lua_isboolean(L, idx))
        return lua_toboolean(L, idx) ? EMBER_LOG_INFO : -1;
    if (lua_type(L, idx) == LUA_TSTRING) {
        const char *v = lua_tostring(L, idx);
        static const char *const names[] = {"fatal", "error", "warn", "info", "debug", "trace", NULL};
        for (int i = 0; names[i]; i++)
            if (strcmp(v, names[i]) == 0)
                return i;
    }
    return luaL_error(L, "ember: logging must be true, false or one of "
                         "\"error\", \"warn\", \"info\", \"debug\", \"trace\"");
}

static void opt_bool(lua_State *L, const char *k, bool *out)
{
    if (!lua_isboolean(L, -1))
        luaL_error(L, "ember: server option %s must be a boolean", k);
    *out = lua_toboolean(L, -1);
}

static const char *opt_str(lua_State *L, const char *k)
{
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "ember: server option %s must be a string", k);
    return lua_tostring(L, -1); /* stays valid: the options table holds it */
}

static lua_Integer opt_int(lua_State *L, const char *k)
{
    if (!lua_isinteger(L, -1))
        luaL_error(L, "ember: server option %s must be an integer", k);
    return lua_tointeger(L, -1);
}

/* ember.server{ ... } */
static int l_server(lua_State *L)
{
    ember_server_options o;
    ember_server_options_init(&o);
    int log_level = -1;
    int ready_ms = 5000;
    ember_config *cfg = NULL;
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        /* config_file first: the other keys override what it sets */
        if (lua_getfield(L, 1, "config_file") != LUA_TNIL) {
            const char *path = opt_str(L, "config_file");
            int crc = ember_config_load(&cfg, path, &o);
            if (crc)
                return raise_rc(L, crc);
        }
        lua_pop(L, 1);
        lua_pushnil(L);
        while (lua_next(L, 1)) {
            if (lua_type(L, -2) != LUA_TSTRING)
                return luaL_error(L, "ember: server option names must be strings");
            const char *k = lua_tostring(L, -2);
            if (strcmp(k, "port") == 0) o.port = (int)opt_int(L, k);
            else if (strcmp(k, "host") == 0) o.host = opt_str(L, k);
            else if (strcmp(k, "server_name") == 0) o.server_name = opt_str(L, k);
            else if (strcmp(k, "dont_listen") == 0) opt_bool(L, k, &o.dont_listen);
            else if (strcmp(k, "logging") == 0) log_level = log_level_of(L, -1);
            else if (strcmp(k, "max_payload") == 0) o.max_payload = opt_int(L, k);
            else if (strcmp(k, "max_connections") == 0) o.max_connections = (int32_t)opt_int(L, k);
            else if (strcmp(k, "max_subscriptions") == 0) o.max_subscriptions = (int32_t)opt_int(L, k);
            else if (strcmp(k, "max_pending") == 0) o.max_pending = opt_int(L, k);
            else if (strcmp(k, "username") == 0) o.username = opt_str(L, k);
            else if (strcmp(k, "password") == 0) o.password = opt_str(L, k);
            else if (strcmp(k, "auth_token") == 0) o.auth_token = opt_str(L, k);
            else if (strcmp(k, "no_header_support") == 0) opt_bool(L, k, &o.no_header_support);
            else if (strcmp(k, "ready_timeout") == 0) ready_ms = (int)opt_int(L, k);
            else if (strcmp(k, "jetstream") == 0) opt_bool(L, k, &o.jetstream);
            else if (strcmp(k, "store_dir") == 0) o.store_dir = opt_str(L, k);
            else if (strcmp(k, "jetstream_domain") == 0) o.jetstream_domain = opt_str(L, k);
            else if (strcmp(k, "jetstream_max_memory") == 0) o.jetstream_max_memory = opt_int(L, k);
            else if (strcmp(k, "jetstream_max_store") == 0) o.jetstream_max_store = opt_int(L, k);
            else if (strcmp(k, "jetstream_sync_interval_ms") == 0)
                o.jetstream_sync_interval_ms = opt_int(L, k);
            else if (strcmp(k, "http_port") == 0) o.http_port = (int)opt_int(L, k);
            else if (strcmp(k, "http_host") == 0) o.http_host = opt_str(L, k);
            else if (strcmp(k, "config_file") == 0) { /* loaded above */ }
            else {
                ember_config_free(cfg);
                return luaL_error(L, "ember: unknown server option \"%s\"", k);
            }
            lua_pop(L, 1);
        }
    }
    lserver *u = lua_newuserdatauv(L, sizeof *u, 0);
    memset(u, 0, sizeof *u);
    luaL_setmetatable(L, MT_SERVER);
    u->accounts = o.accounts_count > 0 || o.operator_jwt;
    int rc = ember_server_new(&u->s, &o);
    ember_config_free(cfg); /* the server copied what it keeps */
    if (rc)
        return raise_rc(L, rc);
    if (log_level >= 0)
        ember_server_log_to_stderr(u->s, log_level);
    rc = ember_server_start(u->s);
    if (rc) {
        lua_pushfstring(L, "ember: %s", detail(rc));
        ember_server_free(u->s);
        u->s = NULL;
        return lua_error(L);
    }
    if (ready_ms != 0 && !ember_server_ready_for_connections(u->s, ready_ms)) {
        lua_pushfstring(L, "ember: server not ready: %s", detail(EMBER_ETIMEDOUT));
        ember_server_free(u->s);
        u->s = NULL;
        return lua_error(L);
    }
    return 1;
}

static int server_ready(lua_State *L)
{
    lserver *s = check_server(L, 1);
    int ms = opt_ms(L, 2, 5000);
    if (ember_server_ready_for_connections(s->s, ms)) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushboolean(L, 0);
    lua_pushfstring(L, "ember: %s", detail(EMBER_ETIMEDOUT));
    return 2;
}

static int server_client_url(lua_State *L)
{
    lserver *s = check_server(L, 1);
    const char *url = ember_server_client_url(s->s);
    if (url)
        lua_pushstring(L, url);
    else
        lua_pushnil(L);
    return 1;
}

static int server_port(lua_State *L)
{
    lua_pushinteger(L, ember_server_port(check_server(L, 1)->s));
    return 1;
}

static int server_id(lua_State *L)
{
    lua_pushstring(L, ember_server_id(check_server(L, 1)->s));
    return 1;
}

static int server_name(lua_State *L)
{
    lua_pushstring(L, ember_server_name(check_server(L, 1)->s));
    return 1;
}

static int server_stats(lua_State *L)
{
    lserver *s = check_server(L, 1);
    ember_server_stats st;
    memset(&st, 0, sizeof st);
    ember_server_get_stats(s->s, &st);
    lua_createtable(L, 0, 8);
#define F(n) (lua_pushinteger(L, (lua_Integer)st.n), lua_setfield(L, -2, #n))
    F(in_msgs); F(out_msgs); F(in_bytes); F(out_bytes);
    F(connections); F(total_connections); F(subscriptions); F(slow_consumers);
#undef F
    return 1;
}

/* A parsed JSON value as a Lua value (objects and arrays as tables, arrays 1-based;
 * integral numbers as integers; null as nil). */
static void push_json(lua_State *L, const cJSON *v, int depth)
{
    luaL_checkstack(L, 4, "ember: JSON too deep");
    if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        bool arr = cJSON_IsArray(v);
        lua_createtable(L, arr ? cJSON_GetArraySize(v) : 0, arr ? 0 : cJSON_GetArraySize(v));
        lua_Integer i = 1;
        const cJSON *it;
        cJSON_ArrayForEach(it, v)
        {
            if (depth > 64 || cJSON_IsNull(it))
                continue;
            push_json(L, it, depth + 1);
            if (arr)
                lua_rawseti(L, -2, i++);
            else
                lua_setfield(L, -2, it->string);
        }
    } else if (cJSON_IsString(v)) {
        lua_pushstring(L, v->valuestring);
    } else if (cJSON_IsBool(v)) {
        lua_pushboolean(L, cJSON_IsTrue(v));
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == (double)(lua_Integer)d && d >= -9.2e18 && d <= 9.2e18)
            lua_pushinteger(L, (lua_Integer)d);
        else
            lua_pushnumber(L, d);
    } else {
        lua_pushnil(L);
    }
}

/* server:monitor(path) -> table, json: nats-server's monitoring JSON (docs/monitoring.md) */
static int server_monitor(lua_State *L)
{
    lserver *s = check_server(L, 1);
    const char *path = luaL_optstring(L, 2, "/varz");
    char *json = NULL;
    int rc = ember_server_monitor(s->s, path, &json);
    if (rc)
        return raise_rc(L, rc);
    cJSON *doc = cJSON_Parse(json);
    if (!doc) {
        ember_free(json);
        return luaL_error(L, "ember: monitor JSON does not parse");
    }
    push_json(L, doc, 0);
    cJSON_Delete(doc);
    lua_pushstring(L, json);
    ember_free(json);
    return 2;
}

static int server_monitor_url(lua_State *L)
{
    const char *url = ember_server_monitor_url(check_server(L, 1)->s);
    if (url)
        lua_pushstring(L, url);
    else
        lua_pushnil(L);
    return 1;
}

static int server_monitor_port(lua_State *L)
{
    lua_pushinteger(L, ember_server_monitor_port(check_server(L, 1)->s));
    return 1;
}

static int server_shutdown(lua_State *L)
{
    lserver *s = luaL_checkudata(L, 1, MT_SERVER);
    if (s->s)
        ember_server_shutdown(s->s);
    return 0;
}

static void conn_close_now(lua_State *L, lconn *c);

static void server_maybe_free(lserver *s)
{
    if (s->s && s->free_pending && !s->conns) {
        ember_server_free(s->s);
        s->s = NULL;
    }
}

/* close (also __gc and __close): shut down, close its connections, free */
static int server_close(lua_State *L)
{
    lserver *s = luaL_checkudata(L, 1, MT_SERVER);
    if (!s->s)
        return 0;
    ember_server_shutdown(s->s);
    s->free_pending = true;
    for (lconn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->depth > 0)
            c->close_pending = true; /* polling: closed when its poll returns */
        else
            conn_close_now(L, c);
    }
    server_maybe_free(s);
    return 0;
}

static int server_is_closed(lua_State *L)
{
    lserver *s = luaL_checkudata(L, 1, MT_SERVER);
    lua_pushboolean(L, s->s == NULL);
    return 1;
}

static int server_tostring(lua_State *L)
{
    lserver *s = luaL_checkudata(L, 1, MT_SERVER);
    if (!s->s)
        lua_pushstring(L, "ember.server (closed)");
    else {
        const char *url = ember_server_client_url(s->s);
        lua_pushfstring(L, "ember.server (%s)", url ? url : "no listener");
    }
    return 1;
}

/* ------------------------------------------------------------------ connection */

static lconn *to_conn(lua_State *L, int idx) { return luaL_checkudata(L, idx, MT_CONN); }

static lconn *check_conn(lua_State *L, int idx)
{
    lconn *c = to_conn(L, idx);
    if (!c->c || c->close_pending)
        luaL_error(L, "ember: connection closed");
    return c;
}

static void push_conns_table(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &CONNS_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_createtable(L, 0, 1);
        lua_pushstring(L, "v");
        lua_setfield(L, -2, "__mode");
        lua_setmetatable(L, -2);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &CONNS_KEY);
    }
}

static void slow_fn(void *ud, ember_sub *sub, int status)
{
    lconn *c = ud; /* called on a publisher's thread: only flag it */
    atomic_store(&c->slow, 1);
}

/* srv:connect{ name=, no_echo=, pending_msgs_limit=, pending_bytes_limit=, user=, password=,
 * token=, nkey_seed=, account= } */
static int server_connect(lua_State *L)
{
    lserver *s = check_server(L, 1);
    ember_conn_options o;
    ember_conn_options_init(&o);
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, 2)) {
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
            if (strcmp(k, "name") == 0) o.name = opt_str(L, k);
            else if (strcmp(k, "no_echo") == 0) opt_bool(L, k, &o.no_echo);
            else if (strcmp(k, "pending_msgs_limit") == 0) o.pending_msgs_limit = opt_int(L, k);
            else if (strcmp(k, "pending_bytes_limit") == 0) o.pending_bytes_limit = opt_int(L, k);
            else if (strcmp(k, "user") == 0) o.user = opt_str(L, k);
            else if (strcmp(k, "password") == 0) o.password = opt_str(L, k);
            else if (strcmp(k, "token") == 0) o.auth_token = opt_str(L, k);
            else if (strcmp(k, "nkey_seed") == 0) o.nkey_seed = opt_str(L, k);
            else if (strcmp(k, "account") == 0) o.account = opt_str(L, k);
            else return luaL_error(L, "ember: unknown connection option \"%s\"", k);
            lua_pop(L, 1);
        }
    }
    lconn *c = lua_newuserdatauv(L, sizeof *c, 2);
    memset(c, 0, sizeof *c);
    atomic_init(&c->slow, 0);
    c->base = -1;
    luaL_setmetatable(L, MT_CONN);
    lua_newtable(L); /* reference table */
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 2);
    o.error_fn = slow_fn;
    o.error_userdata = c;
    int rc = ember_conn_connect(&c->c, s->s, &o);
    if (rc)
        return raise_rc(L, rc);
    c->srv = s;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    push_conns_table(L);
    lua_pushvalue(L, -2);
    lua_rawsetp(L, -2, c);
    lua_pop(L, 1);
    return 1;
}

/* Close for real (not while polling). Releases the Lua references held for callbacks
 * when the conn object can still be found (it cannot while being finalized, but then
 * they are garbage anyway). */
static void watches_stop_all(lconn *c);
static void acks_detach(lconn *c);

static void conn_close_now(lua_State *L, lconn *c)
{
    if (!c->c)
        return;
    watches_stop_all(c); /* a watcher must not outlive its connection (kv.c) */
    acks_detach(c);         /* puts still in flight complete into nothing */
    ember_conn_close(c->c); /* no callback runs after this */
    c->c = NULL;
    c->close_pending = false;
    for (lsub *s = c->subs, *n; s; s = n) {
        n = s->next;
        s->active = false;
        s->next = s->prev = NULL;
        s->fn_ref = s->self_ref = LUA_NOREF;
    }
    c->subs = NULL;
    c->inbox_sub = NULL;
    c->ack_sub = NULL;
    /* unlink from the server */
    lserver *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else if (srv && srv->conns == c)
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
    /* drop the reference table (callbacks, anchored subs) */
    push_conns_table(L);
    if (lua_rawgetp(L, -1, c) == LUA_TUSERDATA) {
        lua_newtable(L);
        lua_setiuservalue(L, -2, 1);
    }
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_rawsetp(L, -2, c);
    lua_pop(L, 1);
    if (srv)
        server_maybe_free(srv);
}

static int conn_close(lua_State *L)
{
    lconn *c = to_conn(L, 1);
    if (!c->c)
        return 0;
    if (c->depth > 0) {
        c->close_pending = true; /* inside one of its callbacks: after the poll */
        return 0;
    }
    conn_close_now(L, c);
    return 0;
}

static int conn_gc(lua_State *L)
{
    lconn *c = to_conn(L, 1);
    c->depth = 0; /* unreachable: nobody is polling it */
    return conn_close(L);
}

static int conn_is_closed(lua_State *L)
{
    lconn *c = to_conn(L, 1);
    lua_pushboolean(L, !c->c || c->close_pending || ember_conn_is_closed(c->c));
    return 1;
}

static int conn_tostring(lua_State *L)
{
    lconn *c = to_conn(L, 1);
    lua_pushfstring(L, "ember.conn (%s)", c->c ? "open" : "closed");
    return 1;
}

/* __index of the conn methods table (a miss on a conn's method lookup). The handler
 * lives in the connection's reference table; conn.__index is a plain table so that
 * method calls cost no extra C call, hence on_error can be assigned but not read. */
static int conn_missing(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TSTRING && strcmp(lua_tostring(L, 2), "on_error") == 0)
        return luaL_error(L, "ember: conn.on_error can be assigned, not read");
    return 0;
}

static int conn_newindex(lua_State *L)
{
    to_conn(L, 1);
    if (lua_type(L, 2) != LUA_TSTRING || strcmp(lua_tostring(L, 2), "on_error") != 0)
        return luaL_error(L, "ember: connections have no field \"%s\" (only on_error can be set)",
                          luaL_tolstring(L, 2, NULL));
    if (!lua_isnil(L, 3))
        luaL_checktype(L, 3, LUA_TFUNCTION);
    lua_getiuservalue(L, 1, 1);
    lua_pushvalue(L, 3);
    lua_setfield(L, -2, "on_error");
    return 0;
}

static int conn_fd(lua_State *L)
{
    lconn *c = check_conn(L, 1);
    int fd = ember_conn_fd(c->c);
    if (fd < 0)
        return raise_rc(L, EMBER_EINVAL);
    lua_pushinteger(L, fd);
    return 1;
}

/* conn:publish(subject, data [, reply [, headers]]) */
static int conn_publish(lua_State *L)
{
    lconn *c = check_conn(L, 1);
    const char *subject = check_name(L, 2, "subject");
    size_t len = 0;
    const char *data = luaL_optlstring(L, 3, "", &len);
    const char *reply = opt_name(L, 4, "reply subject");
    int rc;
    if (lua_isnoneornil(L, 5)) {
        rc = ember_conn_publish(c->c, subject, reply, data, len);
    } else {
        ember_msg *m = build_msg(L, subject, reply, data, len, 5);
        rc = ember_conn_publish_msg(c->c, m);
    }
    if (rc)
        return raise_rc(L, rc);
    return 0;
}

static void respond_to(lua_State *L, lconn *c, lmsg *req, int data_idx, int hdr_idx)
{
    size_t len = 0;
    const char *data = luaL_optlstring(L, data_idx, "", &len);
    const char *reply = ember_msg_reply(req->m);
    if (!reply || !*reply)
        luaL_error(L, "ember: message has no reply subject");
    int rc;
    if (lua_isnoneornil(L, hdr_idx)) {
        rc = ember_msg_respond(c->c, req->m, data, len);
    } else {
        ember_msg *m = build_msg(L, reply, NULL, data, len, hdr_idx);
        rc = ember_conn_publish_msg(c->c, m);
    }
    if (rc)
        raise_rc(L, rc);
}

/* conn:respond(msg, data [, headers]) */
static int conn_respond(lua_State *L)
{
    lconn *c = check_conn(L, 1);
    lmsg *m = check_msg(L, 2);
    respond_to(L, c, m, 3, 4);
    return 0;
}

/* msg:respond(data [, headers]): on the connection the message arrived on */
static int msg_respond(lua_State *L)
{
    lmsg *m = check_msg(L, 1);
    if (lua_getiuservalue(L, 1, 1) != LUA_TUSERDATA)
        return luaL_error(L, "ember: message has no connection: use conn:respond(msg, data)");
    lconn *c = check_conn(L, -1);
    lua_pop(L, 1);
    respond_to(L, c, m, 2, 3);
    return 0;
}

/* ------------------------------------------------------------------ poll */

/* message handler: the error with a traceback */
static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Report an error (string on the stack top, popped) through conn.on_error(err, sub)
 * or, without a handler, on stderr. Never raises. */
static void report_error(lua_State *L, lconn *c, int refs_idx, int msgh_idx, int self_ref)
{
    int err = lua_gettop(L);
    lua_getfield(L, refs_idx, "on_error"); /* raw table, no metamethods */
    if (lua_isfunction(L, -1)) {
        lua_pushvalue(L, err);
        if (self_ref != LUA_NOREF)
            lua_rawgeti(L, refs_idx, self_ref);
        else
            lua_pushnil(L);
        if (lua_pcall(L, 2, 0, msgh_idx) == LUA_OK) {
            lua_settop(L, err - 1);
            return;
        }
        fprintf(stderr, "ember: error in on_error handler: %s\n", lua_tostring(L, -1));
    } else {
        lua_pop(L, 1);
    }
    const char *e = lua_tostring(L, err);
    fprintf(stderr, "ember: error in subscription callback: %s\n", e ? e : "?");
    fflush(stderr);
    lua_settop(L, err - 1);
}

/* Runs protected: (refs, lsub*, msg*, msg metatable, conn) */
static int deliver(lua_State *L)
{
    lsub *s = lua_touserdata(L, 2);
    ember_msg *m = lua_touserdata(L, 3);
    lua_rawgeti(L, 1, s->fn_ref);
    lmsg *u = lua_newuserdatauv(L, sizeof *u, 1);
    u->m = ember_msg_retain(m);
    lua_pushvalue(L, 4);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, 5);
    lua_setiuservalue(L, -2, 1);
    lua_rawgeti(L, 1, s->self_ref);
    lua_call(L, 2, 0);
    return 0;
}

/* ember_msg_fn of Lua callback subscriptions: runs inside ember_conn_poll, on the
 * thread that polls, with c->L and c->base set by poll_conn. */
static void poll_cb(void *ud, ember_sub *sub, ember_msg *m)
{
    lsub *s = ud;
    lconn *c = s->owner;
    lua_State *L = c->L;
    int base = c->base;
    if (!s->active || c->close_pending)
        return;
    lua_pushcfunction(L, deliver);
    lua_pushvalue(L, base);
    lua_pushlightuserdata(L, s);
    lua_pushlightuserdata(L, m);
    lua_pushvalue(L, base + 2);
    lua_pushvalue(L, base + 3);
    if (lua_pcall(L, 5, 0, base + 1) != LUA_OK)
        report_error(L, c, base, base + 1, s->self_ref);
}

/* Poll the conn object at conn_idx: wait up to timeout_ms for the first message, then
 * run what is pending, batch after batch, until a batch comes back short or at least
 * max callbacks ran. Returns the number of callbacks run, or a negative status. Errors
 * of callbacks are reported (conn.on_error or stderr), never raised. */
static int poll_conn(lua_State *L, int conn_idx, int timeout_ms, int max)
{
    conn_idx = lua_absindex(L, conn_idx);
    lconn *c = to_conn(L, conn_idx);
    if (!c->c)
        return EMBER_ECLOSED;
    luaL_checkstack(L, 16, "ember: poll");
    lua_State *saved_L = c->L;
    int saved_base = c->base;
    lua_getiuservalue(L, conn_idx, 1);
    int base = lua_gettop(L);
    lua_pushcfunction(L, traceback);
    luaL_getmetatable(L, MT_MSG);
    lua_pushvalue(L, conn_idx);
    c->L = L;
    c->base = base;
    c->depth++;
    int total = 0, rc = 0;
    for (;;) {
        int n = ember_conn_poll(c->c, timeout_ms);
        if (n < 0) {
            rc = n;
            break;
        }
        total += n;
        if (n < POLL_BATCH || total >= max || c->close_pending)
            break;
        timeout_ms = 0;
    }
    c->depth--;
    c->L = saved_L;
    c->base = saved_base;
    if (atomic_exchange(&c->slow, 0)) {
        ember_conn_stats st;
        memset(&st, 0, sizeof st);
        ember_conn_get_stats(c->c, &st);
        lua_pushfstring(L, "ember: slow consumer: %I messages dropped on this connection so far",
                        (lua_Integer)st.dropped);
        report_error(L, c, base, base + 1, LUA_NOREF);
    }
    lua_settop(L, base - 1);
    if (c->depth == 0 && c->close_pending)
        conn_close_now(L, c);
    if (rc == EMBER_ECLOSED && total > 0)
        rc = 0;
    return rc ? rc : total;
}

/* conn:poll([timeout_ms [, max]]) -> number of callbacks run */
static int conn_poll(lua_State *L)
{
    check_conn(L, 1);
    int ms = opt_ms(L, 2, 0);
    lua_Integer max = luaL_optinteger(L, 3, INT_MAX);
    if (max < 1)
        return luaL_argerror(L, 3, "must be positive");
    int n = poll_conn(L, 1, ms, max > INT_MAX ? INT_MAX : (int)max);
    if (n < 0)
        return raise_rc(L, n);
    lua_pushinteger(L, n);
    return 1;
}

/* ------------------------------------------------------------------ subscriptions */

static lsub *to_sub(lua_State *L, int idx) { return luaL_checkudata(L, idx, MT_SUB); }

static void sub_unlink(lsub *s)
{
    lconn *c = s->owner;
    if (s->prev)
        s->prev->next = s->next;
    else if (c && c->subs == s)
        c->subs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->next = s->prev = NULL;
}

/* Unsubscribe and release the callback's references; sub object at idx. */
static void sub_release(lua_State *L, int idx)
{
    lsub *s = to_sub(L, idx);
    if (!s->active)
        return;
    s->active = false;
    lconn *c = s->owner;
    if (!c || !c->c)
        return;
    ember_sub_unsubscribe(s->s);
    sub_unlink(s);
    if (s->fn_ref != LUA_NOREF) {
        lua_getiuservalue(L, idx, 1); /* conn */
        lua_getiuservalue(L, -1, 1);  /* its reference table */
        luaL_unref(L, -1, s->fn_ref);
        luaL_unref(L, -1, s->self_ref);
        lua_pop(L, 2);
        s->fn_ref = s->self_ref = LUA_NOREF;
    }
}

static int sub_unsubscribe(lua_State *L)
{
    sub_release(L, 1);
    return 0;
}

/* conn:subscribe(subject [, fn [, queue]]) */
static int conn_subscribe(lua_State *L)
{
    lconn *c = check_conn(L, 1);
    const char *subject = check_name(L, 2, "subject");
    bool has_fn = !lua_isnoneornil(L, 3);
    if (has_fn)
        luaL_checktype(L, 3, LUA_TFUNCTION);
    const char *queue = opt_name(L, 4, "queue name");
    lsub *s = lua_newuserdatauv(L, sizeof *s, 1);
    int sidx = lua_gettop(L);
    memset(s, 0, sizeof *s);
    s->fn_ref = s->self_ref = LUA_NOREF;
    s->owner = c;
    luaL_setmetatable(L, MT_SUB);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, sidx, 1);
    if (has_fn) {
        lua_getiuservalue(L, 1, 1);
        lua_pushvalue(L, 3);
        s->fn_ref = luaL_ref(L, -2);
        lua_pushvalue(L, sidx);
        s->self_ref = luaL_ref(L, -2);
        lua_pop(L, 1);
    }
    int rc = ember_conn_subscribe(&s->s, c->c, subject, queue, EMBER_DELIVER_POLL,
                                  has_fn ? poll_cb : NULL, s, NULL);
    if (rc) {
        if (has_fn) {
            lua_getiuservalue(L, 1, 1);
            luaL_unref(L, -1, s->fn_ref);
            luaL_unref(L, -1, s->self_ref);
            lua_pop(L, 1);
            s->fn_ref = s->self_ref = LUA_NOREF;
        }
        s->owner = NULL;
        return raise_rc(L, rc);
    }
    s->active = true;
    s->next = c->subs;
    if (c->subs)
        c->subs->prev = s;
    c->subs = s;
    lua_settop(L, sidx);
    return 1;
}

static bool sub_usable(lsub *s) { return s->active && s->owner && s->owner->c; }

/* sub:next_msg([timeout_ms]) -> msg | nil, err, code */
static int sub_next_msg(lua_State *L)
{
    lsub *s = to_sub(L, 1);
    int ms = opt_ms(L, 2, 0);
    if (!sub_usable(s)) {
        lua_pushnil(L);
        lua_pushstring(L, "ember: subscription closed");
        lua_pushstring(L, "closed");
        return 3;
    }
    if (s->fn_ref != LUA_NOREF)
        return luaL_error(L, "ember: subscription has a callback: use conn:poll()");
    lua_getiuservalue(L, 1, 1);
    lmsg *u = new_msg(L, -1);
    int rc = ember_sub_next_msg(s->s, &u->m, ms);
    if (rc)
        return fail_rc(L, rc);
    return 1;
}

static int sub_gc(lua_State *L)
{
    sub_release(L, 1);
    return 0;
}

static int sub_is_valid(lua_State *L)
{
    lsub *s = to_sub(L, 1);
    lua_pushboolean(L, sub_usable(s) && ember_sub_is_valid(s->s));
    return 1;
}

static int sub_subject(lua_State *L)
{
    lsub *s = to_sub(L, 1);
    if (!s->owner || !s->owner->c || !s->s)
        return luaL_error(L, "ember: subscription closed");
    lua_pushstring(L, ember_sub_subject(s->s));
    return 1;
}

static int sub_pending(lua_State *L)
{
    lsub *s = to_sub(L, 1);
    if (!sub_usable(s)) {
        lua_pushinteger(L, 0);
        lua_pushinteger(L, 0);
        return 2;
    }
    ember_sub_stats st;
    memset(&st, 0, sizeof st);
    ember_sub_get_stats(s->s, &st);
    lua_pushinteger(L, (lua_Integer)st.pending_msgs);
    lua_pushinteger(L, (lua_Integer)st.dropped);
    return 2;
}

static int sub_tostring(lua_State *L)
{
    lsub *s = to_sub(L, 1);
    if (sub_usable(s))
        lua_pushfstring(L, "ember.sub (%s)", ember_sub_subject(s->s));
    else
        lua_pushstring(L, "ember.sub (closed)");
    return 1;
}

/* ------------------------------------------------------------------ request */

/* NATS subject match: pattern with * and > against a literal subject */
static bool subject_matches(const char *pat, const char *subj)
{
    for (;;) {
        const char *pe = strchr(pat, '.'), *se = strchr(subj, '.');
        size_t pl = pe ? (size_t)(pe - pat) : strlen(pat);
        size_t sl = se ? (size_t)(se - subj) : strlen(subj);
        if (pl == 1 && pat[0] == '>')
            return true;
        if (!(pl == 1 && pat[0] == '*') && (pl != sl || memcmp(pat, subj, pl) != 0))
            return false;
        if (!pe || !se)
            return !pe && !se;
        pat = pe + 1;
        subj = se + 1;
    }
}

/* Could a Lua callback subscription of this state answer subject? One whose subject
 * matches, or, when the server has accounts (a service import may rename the subject on
 * its way), any callback subscription at all: the request then polls this state's
 * connections while it waits, since their callbacks run only when polled. */
static bool local_responder(lua_State *L, const char *subject, bool any)
{
    int top = lua_gettop(L);
    bool found = false;
    push_conns_table(L);
    lua_pushnil(L);
    while (!found && lua_next(L, top + 1)) {
        lconn *c = lua_touserdata(L, -1);
        if (c && c->c)
            for (lsub *s = c->subs; s; s = s->next)
                if (s->active && s->fn_ref != LUA_NOREF &&
                    (any || subject_matches(ember_sub_subject(s->s), subject))) {
                    found = true;
                    break;
                }
        lua_pop(L, 1);
    }
    lua_settop(L, top);
    return found;
}

/* POLL callback of the binding's request inbox: C only, runs inside ember_conn_poll */
static void inbox_cb(void *ud, ember_sub *sub, ember_msg *m)
{
    lconn *c = ud;
    const char *subj = ember_msg_subject(m);
    if (strlen(subj) <= c->inbox_len)
        return;
    uint64_t token = strtoull(subj + c->inbox_len, NULL, 10);
    for (waiter *w = c->waiters; w; w = w->next)
        if (w->token == token) {
            if (!w->reply)
                w->reply = ember_msg_retain(m);
            return;
        }
}

static void random_token(char *out, size_t n)
{
    static const char alpha[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned char rnd[32];
    size_t got = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        got = fread(rnd, 1, n < sizeof rnd ? n : sizeof rnd, f);
        fclose(f);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)(uintptr_t)out;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        unsigned v = (i < got ? rnd[i] : 0) ^ (unsigned)(x >> 33);
        out[i] = alpha[v % 62];
    }
    out[n] = 0;
}

static int ensure_inbox(lconn *c)
{
    if (c->inbox_sub)
        return 0;
    char tok[23];
    random_token(tok, 22);
    c->inbox_len = (size_t)snprintf(c->inbox, sizeof c->inbox, "_INBOX.%s.", tok);
    char subj[64];
    snprintf(subj, sizeof subj, "%s*", c->inbox);
    return ember_conn_subscribe(&c->inbox_sub, c->c, subj, NULL, EMBER_DELIVER_POLL, inbox_cb,
                                c, NULL);
}

#define PUMP_MAXFDS 64
typedef struct pump_state {
    struct pollfd fds[PUMP_MAXFDS];
    int nfds;
    int ran;
} pump_state;

/* Protected: poll every open connection of this state once without waiting; collect
 * their descriptors to wait on. (lightuserdata pump_state) */
static int pump(lua_State *L)
{
    pump_state *ps = lua_touserdata(L, 1);
    push_conns_table(L);
    int t = lua_gettop(L);
    /* anchor every conn object on the stack first: callbacks may close or drop them */
    lua_pushnil(L);
    while (lua_next(L, t)) {
        luaL_checkstack(L, 2, "ember: too many connections");
        lua_insert(L, -2); /* value below, key on top for lua_next */
    }
    ps->ran = 0;
    ps->nfds = 0;
    for (int i = t + 1; i <= lua_gettop(L); i++) {
        lconn *c = luaL_testudata(L, i, MT_CONN);
        if (!c || !c->c || c->close_pending || ember_conn_is_closed(c->c))
            continue;
        int n = poll_conn(L, i, 0, INT_MAX);
        if (n > 0)
            ps->ran += n;
        if (c->c && ps->nfds < PUMP_MAXFDS) {
            ps->fds[ps->nfds].fd = ember_conn_fd(c->c);
            ps->fds[ps->nfds].events = POLLIN;
            ps->fds[ps->nfds].revents = 0;
            ps->nfds++;
        }
    }
    return 0;
}

/* Request through the binding's own inbox while polling this state's connections, so
 * that a responder written in Lua in this state gets to answer. */
static int request_pumped(lua_State *L, lconn *c, const char *subject, const char *data,
                          size_t len, int timeout_ms, int hdr_idx)
{
    int rc = ensure_inbox(c);
    if (rc)
        return raise_rc(L, rc);
    lmsg *out = new_msg(L, 1); /* receives the reply */
    int out_idx = lua_gettop(L);
    waiter w = {.token = ++c->next_token, .reply = NULL, .next = c->waiters};
    char reply[80];
    snprintf(reply, sizeof reply, "%s%llu", c->inbox, (unsigned long long)w.token);
    if (hdr_idx) {
        ember_msg *m = build_msg(L, subject, reply, data, len, hdr_idx);
        rc = ember_conn_publish_msg(c->c, m);
        lua_pop(L, 1);
    } else {
        rc = ember_conn_publish(c->c, subject, reply, data, len);
    }
    if (rc)
        return raise_rc(L, rc);
    c->waiters = &w; /* from here until unlinked below, nothing may raise */
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : now_ms() + timeout_ms;
    pump_state ps;
    int status = LUA_OK;
    for (;;) {
        lua_pushcfunction(L, pump);
        lua_pushlightuserdata(L, &ps);
        status = lua_pcall(L, 1, 0, 0);
        if (status != LUA_OK)
            break; /* error object on the stack */
        if (w.reply || !c->c || c->close_pending)
            break;
        int64_t left = deadline - now_ms();
        if (left <= 0)
            break;
        if (ps.ran == 0)
            poll(ps.fds, (nfds_t)ps.nfds, left > INT_MAX ? INT_MAX : (int)left);
    }
    for (waiter **pp = &c->waiters; *pp; pp = &(*pp)->next)
        if (*pp == &w) {
            *pp = w.next;
            break;
        }
    out->m = w.reply; /* owned by the msg object now, also if we raise below */
    if (status != LUA_OK)
        return lua_error(L);
    if (w.reply) {
        lua_settop(L, out_idx);
        return 1;
    }
    if (!c->c || c->close_pending)
        return luaL_error(L, "ember: connection closed");
    lua_pushnil(L);
    lua_pushfstring(L, "ember: request on \"%s\" timed out after %d ms", subject, timeout_ms);
    lua_pushstring(L, "timeout");
    return 3;
}

/* conn:request(subject, data [, timeout_ms [, headers]]) -> msg | nil, err, code */
static int conn_request(lua_State *L)
{
    lconn *c = check_conn(L, 1);
    const char *subject = check_name(L, 2, "subject");
    size_t len = 0;
    const char *data = luaL_optlstring(L, 3, "", &len);
    int ms = opt_ms(L, 4, 1000);
    int hdr_idx = lua_isnoneornil(L, 5) ? 0 : 5;
    if (hdr_idx)
        luaL_checktype(L, 5, LUA_TTABLE);
    if (local_responder(L, subject, c->srv && c->srv->accounts))
        return request_pumped(L, c, subject, data, len, ms, hdr_idx);
    ember_msg *m = hdr_idx ? build_msg(L, subject, NULL, data, len, hdr_idx) : NULL;
    lmsg *reply = new_msg(L, 1);
    int rc = m ? ember_conn_request_msg(c->c, m, ms, &reply->m)
               : ember_conn_request(c->c, subject, data, len, ms, &reply->m);
    if (rc == EMBER_ETIMEDOUT || rc == EMBER_ENORESPONDERS)
        return fail_rc(L, rc);
    if (rc)
        return raise_rc(L, rc);
    return 1;
}

/* ------------------------------------------------------------------ JetStream */

/* JetStream and KV calls follow the module's two conventions: misuse raises (invalid
 * arguments, a closed connection, JetStream not enabled), outcomes return
 * nil, message, code ("not found", "exists", "wrong sequence", "limit", "io", "timeout"). */
static int js_fail(lua_State *L, int rc)
{
    switch (rc) {
    case EMBER_ENOTFOUND:
    case EMBER_EEXISTS:
    case EMBER_EWRONGSEQ:
    case EMBER_ELIMIT:
    case EMBER_EIO:
    case EMBER_ETIMEDOUT:
        return fail_rc(L, rc);
    case EMBER_ESTATE:
        return luaL_error(L, "ember: %s (start the server with jetstream = true)", detail(rc));
    default:
        return raise_rc(L, rc);
    }
}

static int push_true(lua_State *L)
{
    lua_pushboolean(L, 1);
    return 1;
}

/* The conn behind a JetStream or KV object (user value 1), checked open. */
static lconn *owner_conn(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_getiuservalue(L, idx, 1);
    lconn *c = luaL_testudata(L, -1, MT_CONN);
    lua_pop(L, 1); /* the object's user value keeps it alive */
    if (!c || !c->c || c->close_pending)
        luaL_error(L, "ember: connection closed");
    return c;
}

static lconn *check_js(lua_State *L, int idx)
{
    luaL_checkudata(L, idx, MT_JS);
    return owner_conn(L, idx);
}

/* conn:jetstream() -> js: a light handle on the connection's JetStream */
static int conn_jetstream(lua_State *L)
{
    check_conn(L, 1);
    lua_newuserdatauv(L, 1, 1);
    luaL_setmetatable(L, MT_JS);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    return 1;
}

static int js_tostring(lua_State *L)
{
    luaL_checkudata(L, 1, MT_JS);
    lua_pushliteral(L, "ember.jetstream");
    return 1;
}

/* one option of a configuration table, at the stack top */
static const char *cfg_str(lua_State *L, const char *what, const char *k)
{
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "ember: %s option %s must be a string", what, k);
    size_t len;
    const char *v = lua_tolstring(L, -1, &len);
    if (strlen(v) != len)
        luaL_error(L, "ember: %s option %s: embedded NUL", what, k);
    return v; /* anchored by the configuration table */
}

static int64_t cfg_int(lua_State *L, const char *what, const char *k)
{
    if (!lua_isinteger(L, -1))
        luaL_error(L, "ember: %s option %s must be an integer", what, k);
    return (int64_t)lua_tointeger(L, -1);
}

static bool cfg_bool(lua_State *L, const char *what, const char *k)
{
    if (!lua_isboolean(L, -1))
        luaL_error(L, "ember: %s option %s must be a boolean", what, k);
    return lua_toboolean(L, -1);
}

static int cfg_enum(lua_State *L, const char *what, const char *k, const char *const names[])
{
    if (lua_type(L, -1) == LUA_TSTRING) {
        const char *v = lua_tostring(L, -1);
        for (int i = 0; names[i]; i++)
            if (strcmp(v, names[i]) == 0)
                return i;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 0; names[i]; i++) {
        luaL_addstring(&b, i ? ", \"" : "\"");
        luaL_addstring(&b, names[i]);
        luaL_addchar(&b, '"');
    }
    luaL_pushresult(&b);
    return luaL_error(L, "ember: %s option %s must be one of %s", what, k, lua_tostring(L, -1));
}

static const char *const storage_names[] = {"file", "memory", NULL};

/* js:add_stream{ name=, subjects=, ... } table at idx into cfg; the subjects array is a
 * userdata pushed on the stack (valid while it stays there). */
static void parse_stream_cfg(lua_State *L, int idx, ember_stream_config *cfg)
{
    static const char *const retention[] = {"limits", "interest", "workqueue", NULL};
    static const char *const discard[] = {"old", "new", NULL};
    const char *W = "stream";
    idx = lua_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    ember_stream_config_init(cfg);
    const char **subjects = NULL;
    lua_pushnil(L); /* slot for the subjects array */
    int sidx = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "ember: stream option names must be strings");
        const char *k = lua_tostring(L, -2);
        if (strcmp(k, "name") == 0) cfg->name = cfg_str(L, W, k);
        else if (strcmp(k, "subjects") == 0) {
            if (lua_type(L, -1) == LUA_TSTRING) {
                subjects = lua_newuserdatauv(L, sizeof *subjects, 0);
                lua_replace(L, sidx);
                subjects[0] = cfg_str(L, W, k);
                cfg->nsubjects = 1;
            } else if (lua_type(L, -1) == LUA_TTABLE) {
                size_t n = lua_rawlen(L, -1);
                subjects = lua_newuserdatauv(L, sizeof *subjects * (n ? n : 1), 0);
                lua_replace(L, sidx);
                for (size_t i = 0; i < n; i++) {
                    lua_rawgeti(L, -1, (lua_Integer)i + 1);
                    subjects[i] = cfg_str(L, W, "subjects[i]");
                    lua_pop(L, 1); /* the list in the configuration table anchors it */
                }
                cfg->nsubjects = n;
            } else {
                luaL_error(L, "ember: stream option subjects must be a string or a list of strings");
            }
            cfg->subjects = subjects;
        }
        else if (strcmp(k, "description") == 0) cfg->description = cfg_str(L, W, k);
        else if (strcmp(k, "storage") == 0) cfg->storage = (ember_storage)cfg_enum(L, W, k, storage_names);
        else if (strcmp(k, "retention") == 0) cfg->retention = (ember_retention)cfg_enum(L, W, k, retention);
        else if (strcmp(k, "discard") == 0) cfg->discard = (ember_discard)cfg_enum(L, W, k, discard);
        else if (strcmp(k, "max_msgs") == 0) cfg->max_msgs = cfg_int(L, W, k);
        else if (strcmp(k, "max_bytes") == 0) cfg->max_bytes = cfg_int(L, W, k);
        else if (strcmp(k, "max_age_ms") == 0) cfg->max_age_ms = cfg_int(L, W, k);
        else if (strcmp(k, "max_msgs_per_subject") == 0) cfg->max_msgs_per_subject = cfg_int(L, W, k);
        else if (strcmp(k, "max_msg_size") == 0) cfg->max_msg_size = (int32_t)cfg_int(L, W, k);
        else if (strcmp(k, "duplicate_window_ms") == 0) cfg->duplicate_window_ms = cfg_int(L, W, k);
        else if (strcmp(k, "allow_direct") == 0) cfg->allow_direct = cfg_bool(L, W, k);
        else if (strcmp(k, "allow_rollup") == 0) cfg->allow_rollup = cfg_bool(L, W, k);
        else if (strcmp(k, "deny_delete") == 0) cfg->deny_delete = cfg_bool(L, W, k);
        else if (strcmp(k, "deny_purge") == 0) cfg->deny_purge = cfg_bool(L, W, k);
        else if (strcmp(k, "allow_msg_ttl") == 0) cfg->allow_msg_ttl = cfg_bool(L, W, k);
        else luaL_error(L, "ember: unknown stream option \"%s\"", k);
        lua_pop(L, 1);
    }
    if (!cfg->name)
        luaL_error(L, "ember: stream option name is required");
}

static void push_stream_info(lua_State *L, const ember_stream_info *si)
{
    lua_createtable(L, 0, 6);
#define F(n) (lua_pushinteger(L, (lua_Integer)si->n), lua_setfield(L, -2, #n))
    F(msgs); F(bytes); F(first_seq); F(last_seq); F(num_subjects); F(consumers);
#undef F
}

/* js:add_stream(cfg) -> info | nil, err, code */
static int js_add_stream(lua_State *L)
{
    lconn *c = check_js(L, 1);
    ember_stream_config cfg;
    parse_stream_cfg(L, 2, &cfg);
    int rc = ember_js_stream_create(c->c, &cfg);
    if (rc)
        return js_fail(L, rc);
    ember_stream_info si;
    memset(&si, 0, sizeof si);
    if ((rc = ember_js_stream_info(c->c, cfg.name, &si)) != 0)
        return js_fail(L, rc);
    push_stream_info(L, &si);
    return 1;
}

/* js:stream_info(name) -> info | nil, err, code */
static int js_stream_info(lua_State *L)
{
    lconn *c = check_js(L, 1);
    const char *name = check_name(L, 2, "stream name");
    ember_stream_info si;
    memset(&si, 0, sizeof si);
    int rc = ember_js_stream_info(c->c, name, &si);
    if (rc)
        return js_fail(L, rc);
    push_stream_info(L, &si);
    return 1;
}

/* js:purge_stream(name [, filter]) -> purged | nil, err, code */
static int js_purge_stream(lua_State *L)
{
    lconn *c = check_js(L, 1);
    const char *name = check_name(L, 2, "stream name");
    const char *filter = opt_name(L, 3, "subject");
    uint64_t purged = 0;
    int rc = ember_js_stream_purge(c->c, name, filter, &purged);
    if (rc)
        return js_fail(L, rc);
    lua_pushinteger(L, (lua_Integer)purged);
    return 1;
}

/* js:delete_stream(name) -> true | nil, err, code */
static int js_delete_stream(lua_State *L)
{
    lconn *c = check_js(L, 1);
    int rc = ember_js_stream_delete(c->c, check_name(L, 2, "stream name"));
    return rc ? js_fail(L, rc) : push_true(L);
}

static uint64_t check_seq(lua_State *L, int idx)
{
    lua_Integer v = luaL_checkinteger(L, idx);
    if (v < 0)
        luaL_argerror(L, idx, "sequence must not be negative");
    return (uint64_t)v;
}

/* js:publish(subject, data [, opts]) -> seq, duplicate | nil, err, code
 * opts: headers, msg_id, expected_stream, expected_last_seq, expected_last_subject_seq,
 * expected_last_msg_id */
static int js_publish(lua_State *L)
{
    lconn *c = check_js(L, 1);
    const char *subject = check_name(L, 2, "subject");
    size_t len = 0;
    const char *data = luaL_optlstring(L, 3, "", &len);
    ember_msg *m;
    if (lua_isnoneornil(L, 4)) {
        lmsg *u = new_msg(L, 0);
        int rc = ember_msg_new(&u->m, subject, NULL, data, len);
        if (rc)
            return raise_rc(L, rc);
        m = u->m;
    } else {
        luaL_checktype(L, 4, LUA_TTABLE);
        if (lua_getfield(L, 4, "headers") == LUA_TNIL) {
            lua_pop(L, 1);
            lua_newtable(L);
        }
        m = build_msg(L, subject, NULL, data, len, -1);
        static const struct { const char *opt, *hdr; bool num; } map[] = {
            {"msg_id", "Nats-Msg-Id", false},
            {"expected_stream", "Nats-Expected-Stream", false},
            {"expected_last_seq", "Nats-Expected-Last-Sequence", true},
            {"expected_last_subject_seq", "Nats-Expected-Last-Subject-Sequence", true},
            {"expected_last_msg_id", "Nats-Expected-Last-Msg-Id", false},
        };
        lua_pushnil(L);
        while (lua_next(L, 4)) {
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
            size_t i, n = sizeof map / sizeof map[0];
            for (i = 0; i < n && strcmp(k, map[i].opt) != 0; i++)
                ;
            if (i < n) {
                char num[32];
                const char *v;
                if (map[i].num) {
                    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0)
                        return luaL_error(L, "ember: publish option %s must be a sequence number", k);
                    snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, -1));
                    v = num;
                } else {
                    v = cfg_str(L, "publish", k);
                }
                int rc = ember_msg_header_set(m, map[i].hdr, v);
                if (rc)
                    return luaL_error(L, "ember: publish option %s: %s", k, detail(rc));
            } else if (strcmp(k, "headers") != 0) {
                return luaL_error(L, "ember: unknown publish option \"%s\"", k);
            }
            lua_pop(L, 1);
        }
    }
    ember_pub_ack ack;
    memset(&ack, 0, sizeof ack);
    int rc = ember_js_publish(c->c, m, &ack);
    if (rc)
        return js_fail(L, rc);
    lua_pushinteger(L, (lua_Integer)ack.seq);
    lua_pushboolean(L, ack.duplicate);
    return 2;
}

/* js:get_msg(stream, seq) -> msg | nil, err, code */
static int js_get_msg(lua_State *L)
{
    lconn *c = check_js(L, 1);
    const char *stream = check_name(L, 2, "stream name");
    uint64_t seq = check_seq(L, 3);
    lua_getiuservalue(L, 1, 1);
    lmsg *u = new_msg(L, -1);
    int rc = ember_js_get(c->c, stream, seq, &u->m);
    return rc ? js_fail(L, rc) : 1;
}

/* js:get_last_msg(stream, subject) -> msg | nil, err, code */
static int js_get_last_msg(lua_State *L)
{
    lconn *c = check_js(L, 1);
    const char *stream = check_name(L, 2, "stream name");
    const char *subject = check_name(L, 3, "subject");
    lua_getiuservalue(L, 1, 1);
    lmsg *u = new_msg(L, -1);
    int rc = ember_js_get_last(c->c, stream, subject, &u->m);
    return rc ? js_fail(L, rc) : 1;
}

/* js:delete_msg(stream, seq) -> true | nil, err, code */
static int js_delete_msg(lua_State *L)
{
    lconn *c = check_js(L, 1);
    const char *stream = check_name(L, 2, "stream name");
    int rc = ember_js_delete_msg(c->c, stream, check_seq(L, 3));
    return rc ? js_fail(L, rc) : push_true(L);
}

/* js:add_consumer(stream [, cfg]) -> name | nil, err, code */
static int js_add_consumer(lua_State *L)
{
    static const char *const deliver[] = {"all", "last", "new", "by_start_sequence",
                                          "last_per_subject", NULL};
    static const char *const ackp[] = {"explicit", "none", "all", NULL};
    const char *W = "consumer";
    lconn *c = check_js(L, 1);
    const char *stream = check_name(L, 2, "stream name");
    ember_consumer_config cfg;
    ember_consumer_config_init(&cfg);
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, 3)) {
            if (lua_type(L, -2) != LUA_TSTRING)
                return luaL_error(L, "ember: consumer option names must be strings");
            const char *k = lua_tostring(L, -2);
            if (strcmp(k, "durable_name") == 0) cfg.durable_name = cfg_str(L, W, k);
            else if (strcmp(k, "filter_subject") == 0) cfg.filter_subject = cfg_str(L, W, k);
            else if (strcmp(k, "deliver_policy") == 0)
                cfg.deliver_policy = (ember_deliver_policy)cfg_enum(L, W, k, deliver);
            else if (strcmp(k, "opt_start_seq") == 0) cfg.opt_start_seq = (uint64_t)cfg_int(L, W, k);
            else if (strcmp(k, "ack_policy") == 0) cfg.ack_policy = (ember_ack_policy)cfg_enum(L, W, k, ackp);
            else if (strcmp(k, "ack_wait_ms") == 0) cfg.ack_wait_ms = cfg_int(L, W, k);
            else if (strcmp(k, "max_deliver") == 0) cfg.max_deliver = cfg_int(L, W, k);
            else if (strcmp(k, "max_ack_pending") == 0) cfg.max_ack_pending = cfg_int(L, W, k);
            else if (strcmp(k, "inactive_threshold_ms") == 0) cfg.inactive_threshold_ms = cfg_int(L, W, k);
            else return luaL_error(L, "ember: unknown consumer option \"%s\"", k);
            lua_pop(L, 1);
        }
    }
    char name[256];
    int rc = ember_js_consumer_create(c->c, stream, &cfg, name, sizeof name);
    if (rc)
        return js_fail(L, rc);
    lua_pushstring(L, name);
    return 1;
}

/* js:consumer_info(stream, name) -> info | nil, err, code */
static int js_consumer_info(lua_State *L)
{
    lconn *c = check_js(L, 1);
    const char *stream = check_name(L, 2, "stream name");
    const char *name = check_name(L, 3, "consumer name");
    ember_consumer_info ci;
    memset(&ci, 0, sizeof ci);
    int rc = ember_js_consumer_info(c->c, stream, name, &ci);
    if (rc)
        return js_fail(L, rc);
    lua_createtable(L, 0, 5);
#define F(n) (lua_pushinteger(L, (lua_Integer)ci.n), lua_setfield(L, -2, #n))
    F(num_pending); F(num_ack_pending); F(num_redelivered); F(delivered_stream_seq);
    F(ack_floor_stream_seq);
#undef F
    return 1;
}

/* js:delete_consumer(stream, name) -> true | nil, err, code */
static int js_delete_consumer(lua_State *L)
{
    lconn *c = check_js(L, 1);
    const char *stream = check_name(L, 2, "stream name");
    int rc = ember_js_consumer_delete(c->c, stream, check_name(L, 3, "consumer name"));
    return rc ? js_fail(L, rc) : push_true(L);
}

/* Fetched messages not yet handed to msg objects: released by __gc if a Lua error
 * (out of memory) interrupts the hand-over. */
typedef struct lbatch {
    int n;
    ember_msg *msgs[];
} lbatch;

static int batch_gc(lua_State *L)
{
    lbatch *b = luaL_checkudata(L, 1, MT_BATCH);
    for (int i = 0; i < b->n; i++)
        if (b->msgs[i]) {
            ember_msg_release(b->msgs[i]);
            b->msgs[i] = NULL;
        }
    return 0;
}

#define FETCH_MAX 4096

/* js:fetch(stream, consumer [, batch [, timeout_ms]]) -> { msg... } | nil, err, code
 * Waits up to timeout_ms (default 0: only what is there now) for the first message. */
static int js_fetch(lua_State *L)
{
    lconn *c = check_js(L, 1);
    const char *stream = check_name(L, 2, "stream name");
    const char *consumer = check_name(L, 3, "consumer name");
    lua_Integer max = luaL_optinteger(L, 4, 1);
    if (max < 1 || max > FETCH_MAX)
        return luaL_argerror(L, 4, "batch must be 1..4096");
    int ms = opt_ms(L, 5, 0);
    lua_settop(L, 5);
    lbatch *b = lua_newuserdatauv(L, sizeof *b + sizeof b->msgs[0] * (size_t)max, 0);
    b->n = 0;
    luaL_setmetatable(L, MT_BATCH);
    int n = ember_js_fetch(c->c, stream, consumer, b->msgs, (int)max, ms);
    if (n < 0)
        return js_fail(L, n);
    b->n = n;
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lmsg *u = new_msg(L, 1);
        lua_getiuservalue(L, 1, 1); /* the msg belongs to the conn, not to the js handle */
        lua_setiuservalue(L, -2, 1);
        u->m = b->msgs[i];
        b->msgs[i] = NULL;
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* msg:ack(), msg:nak([delay_ms]), msg:in_progress(), msg:term() -> true | nil, err, code */
static lconn *msg_conn(lua_State *L, lmsg **m)
{
    *m = check_msg(L, 1);
    if (lua_getiuservalue(L, 1, 1) != LUA_TUSERDATA)
        luaL_error(L, "ember: message has no connection");
    lconn *c = check_conn(L, -1);
    lua_pop(L, 1);
    return c;
}

static int msg_ack(lua_State *L)
{
    lmsg *m;
    lconn *c = msg_conn(L, &m);
    int rc = ember_js_ack(c->c, m->m);
    return rc ? js_fail(L, rc) : push_true(L);
}

static int msg_nak(lua_State *L)
{
    lmsg *m;
    lconn *c = msg_conn(L, &m);
    lua_Integer delay = luaL_optinteger(L, 2, 0);
    int rc = ember_js_nak(c->c, m->m, delay < 0 ? 0 : (int64_t)delay);
    return rc ? js_fail(L, rc) : push_true(L);
}

static int msg_in_progress(lua_State *L)
{
    lmsg *m;
    lconn *c = msg_conn(L, &m);
    int rc = ember_js_in_progress(c->c, m->m);
    return rc ? js_fail(L, rc) : push_true(L);
}

static int msg_term(lua_State *L)
{
    lmsg *m;
    lconn *c = msg_conn(L, &m);
    int rc = ember_js_term(c->c, m->m);
    return rc ? js_fail(L, rc) : push_true(L);
}

/* msg:metadata() -> { stream_seq, consumer_seq, num_delivered, num_pending, timestamp_ns }
 * | nil, err, code (not a JetStream message) */
static int msg_metadata(lua_State *L)
{
    lmsg *u = check_msg(L, 1);
    ember_js_meta meta;
    memset(&meta, 0, sizeof meta);
    int rc = ember_js_msg_meta(u->m, &meta);
    if (rc)
        return fail_rc(L, rc);
    lua_createtable(L, 0, 5);
#define F(n) (lua_pushinteger(L, (lua_Integer)meta.n), lua_setfield(L, -2, #n))
    F(stream_seq); F(consumer_seq); F(num_delivered); F(num_pending); F(timestamp_ns);
#undef F
    return 1;
}

/* ------------------------------------------------------------------ key-value */

typedef struct lkv {
    ember_kv *kv; /* NULL once closed */
} lkv;

struct lwatch {
    ember_kv_watcher *w; /* NULL once stopped */
    lconn *owner;
    int fn_ref, self_ref; /* in the owner's reference table */
    lwatch *next, *prev;  /* in owner->watches while active */
};

static lkv *check_kv(lua_State *L, int idx, lconn **c)
{
    lkv *k = luaL_checkudata(L, idx, MT_KV);
    *c = owner_conn(L, idx);
    if (!k->kv)
        luaL_error(L, "ember: bucket handle closed");
    return k;
}

/* Push a KV object for a new handle (k->kv to be filled): user value 1 is the conn
 * object at conn_idx, 2 the bucket name. */
static lkv *new_kv(lua_State *L, int conn_idx, const char *bucket)
{
    conn_idx = lua_absindex(L, conn_idx);
    lkv *k = lua_newuserdatauv(L, sizeof *k, 2);
    k->kv = NULL;
    luaL_setmetatable(L, MT_KV);
    lua_pushvalue(L, conn_idx);
    lua_setiuservalue(L, -2, 1);
    lua_pushstring(L, bucket);
    lua_setiuservalue(L, -2, 2);
    return k;
}

static void push_op(lua_State *L, ember_kv_op op)
{
    lua_pushstring(L, op == EMBER_KV_DEL ? "DEL" : op == EMBER_KV_PURGE ? "PURGE" : "PUT");
}

/* an entry as a table: bucket, key, value, revision, created_ns, delta, operation */
static void push_entry(lua_State *L, const ember_kv_entry *e)
{
    lua_createtable(L, 0, 7);
    lua_pushstring(L, e->bucket);
    lua_setfield(L, -2, "bucket");
    lua_pushstring(L, e->key);
    lua_setfield(L, -2, "key");
    lua_pushlstring(L, e->value ? e->value : "", e->value ? e->len : 0);
    lua_setfield(L, -2, "value");
    lua_pushinteger(L, (lua_Integer)e->revision);
    lua_setfield(L, -2, "revision");
    lua_pushinteger(L, (lua_Integer)e->created_ns);
    lua_setfield(L, -2, "created_ns");
    lua_pushinteger(L, (lua_Integer)e->delta);
    lua_setfield(L, -2, "delta");
    push_op(L, e->op);
    lua_setfield(L, -2, "operation");
}

/* protected push_entry (lightuserdata entry): the caller frees the entry after the pcall */
static int push_entry_p(lua_State *L)
{
    push_entry(L, lua_touserdata(L, 1));
    return 1;
}

/* js:create_key_value{ bucket=, history=, ttl_ms=, max_bytes=, max_value_size=, storage=,
 * description= } -> kv | nil, err, code */
static int js_create_key_value(lua_State *L)
{
    const char *W = "key-value";
    lconn *c = check_js(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    ember_kv_config cfg;
    ember_kv_config_init(&cfg);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            return luaL_error(L, "ember: key-value option names must be strings");
        const char *k = lua_tostring(L, -2);
        if (strcmp(k, "bucket") == 0) cfg.bucket = cfg_str(L, W, k);
        else if (strcmp(k, "description") == 0) cfg.description = cfg_str(L, W, k);
        else if (strcmp(k, "history") == 0) cfg.history = (int32_t)cfg_int(L, W, k);
        else if (strcmp(k, "ttl_ms") == 0) cfg.ttl_ms = cfg_int(L, W, k);
        else if (strcmp(k, "max_bytes") == 0) cfg.max_bytes = cfg_int(L, W, k);
        else if (strcmp(k, "max_value_size") == 0) cfg.max_value_size = (int32_t)cfg_int(L, W, k);
        else if (strcmp(k, "storage") == 0) cfg.storage = (ember_storage)cfg_enum(L, W, k, storage_names);
        else return luaL_error(L, "ember: unknown key-value option \"%s\"", k);
        lua_pop(L, 1);
    }
    if (!cfg.bucket)
        return luaL_error(L, "ember: key-value option bucket is required");
    lua_getiuservalue(L, 1, 1);
    lkv *k = new_kv(L, -1, cfg.bucket);
    int rc = ember_kv_bucket_create(c->c, &cfg, &k->kv);
    return rc ? js_fail(L, rc) : 1;
}

/* js:key_value(bucket) -> kv | nil, err, "not found" */
static int js_key_value(lua_State *L)
{
    lconn *c = check_js(L, 1);
    const char *bucket = check_name(L, 2, "bucket name");
    lua_getiuservalue(L, 1, 1);
    lkv *k = new_kv(L, -1, bucket);
    int rc = ember_kv_bucket_open(c->c, bucket, &k->kv);
    return rc ? js_fail(L, rc) : 1;
}

/* js:delete_key_value(bucket) -> true | nil, err, code */
static int js_delete_key_value(lua_State *L)
{
    lconn *c = check_js(L, 1);
    int rc = ember_kv_bucket_delete(c->c, check_name(L, 2, "bucket name"));
    return rc ? js_fail(L, rc) : push_true(L);
}

static int kv_close(lua_State *L)
{
    lkv *k = luaL_checkudata(L, 1, MT_KV);
    if (k->kv) {
        ember_kv_close(k->kv); /* frees the handle only; watchers do not use it */
        k->kv = NULL;
    }
    return 0;
}

static int kv_tostring(lua_State *L)
{
    lkv *k = luaL_checkudata(L, 1, MT_KV);
    lua_getiuservalue(L, 1, 2);
    if (k->kv && lua_type(L, -1) == LUA_TSTRING)
        lua_pushfstring(L, "ember.kv (%s)", lua_tostring(L, -1));
    else
        lua_pushliteral(L, "ember.kv (closed)");
    return 1;
}

static const char *check_key(lua_State *L, int idx)
{
    return check_name(L, idx, "key");
}

/* kv:bucket() -> the bucket's name (also after close) */
static int kv_bucket(lua_State *L)
{
    luaL_checkudata(L, 1, MT_KV);
    lua_getiuservalue(L, 1, 2);
    return 1;
}

/* kv:get(key [, revision]) -> entry | nil, err, code */
static int kv_get(lua_State *L)
{
    lconn *c;
    lkv *k = check_kv(L, 1, &c);
    const char *key = check_key(L, 2);
    ember_kv_entry *e = NULL;
    int rc = lua_isnoneornil(L, 3) ? ember_kv_get(k->kv, key, &e)
                                   : ember_kv_get_revision(k->kv, key, check_seq(L, 3), &e);
    if (rc)
        return js_fail(L, rc);
    lua_pushcfunction(L, push_entry_p);
    lua_pushlightuserdata(L, e);
    int st = lua_pcall(L, 1, 1, 0);
    ember_kv_entry_free(e);
    return st == LUA_OK ? 1 : lua_error(L);
}

static int kv_write(lua_State *L, int mode)
{
    lconn *c;
    lkv *k = check_kv(L, 1, &c);
    const char *key = check_key(L, 2);
    size_t len = 0;
    const char *v = luaL_optlstring(L, 3, "", &len);
    uint64_t rev = 0;
    int rc;
    if (mode == 0)
        rc = ember_kv_put(k->kv, key, v, len, &rev);
    else if (mode == 1)
        rc = ember_kv_create(k->kv, key, v, len, &rev);
    else
        rc = ember_kv_update(k->kv, key, v, len, check_seq(L, 4), &rev);
    if (rc)
        return js_fail(L, rc);
    lua_pushinteger(L, (lua_Integer)rev);
    return 1;
}

/* kv:put(key, value) -> revision | nil, err, code */
static int kv_put(lua_State *L) { return kv_write(L, 0); }
/* kv:create(key, value) -> revision | nil, err, "wrong sequence" when the key has a value */
static int kv_create(lua_State *L) { return kv_write(L, 1); }
/* kv:update(key, value, last_revision) -> revision | nil, err, "wrong sequence" */
static int kv_update(lua_State *L)
{
    luaL_checkinteger(L, 4);
    return kv_write(L, 2);
}

/* kv:delete(key), kv:purge(key) -> true | nil, err, code */
static int kv_delete(lua_State *L)
{
    lconn *c;
    lkv *k = check_kv(L, 1, &c);
    int rc = ember_kv_delete(k->kv, check_key(L, 2));
    return rc ? js_fail(L, rc) : push_true(L);
}

static int kv_purge(lua_State *L)
{
    lconn *c;
    lkv *k = check_kv(L, 1, &c);
    int rc = ember_kv_purge(k->kv, check_key(L, 2));
    return rc ? js_fail(L, rc) : push_true(L);
}

/* Protected helpers: push a C-allocated result into Lua, so that a memory error while
 * building the tables cannot leak the C side (the caller frees after lua_pcall). */
typedef struct keys_arg {
    char **keys;
    size_t n;
} keys_arg;

static int push_keys(lua_State *L)
{
    keys_arg *a = lua_touserdata(L, 1);
    lua_createtable(L, (int)a->n, 0);
    for (size_t i = 0; i < a->n; i++) {
        lua_pushstring(L, a->keys[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

typedef struct hist_arg {
    ember_kv_entry **entries;
    size_t n;
} hist_arg;

static int push_history(lua_State *L)
{
    hist_arg *a = lua_touserdata(L, 1);
    lua_createtable(L, (int)a->n, 0);
    for (size_t i = 0; i < a->n; i++) {
        push_entry(L, a->entries[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* kv:keys() -> { key... } (sorted; empty when the bucket has none) */
static int kv_keys(lua_State *L)
{
    lconn *c;
    lkv *k = check_kv(L, 1, &c);
    keys_arg a = {NULL, 0};
    int rc = ember_kv_keys(k->kv, &a.keys, &a.n);
    if (rc)
        return js_fail(L, rc);
    lua_pushcfunction(L, push_keys);
    lua_pushlightuserdata(L, &a);
    int st = lua_pcall(L, 1, 1, 0);
    free(a.keys);
    return st == LUA_OK ? 1 : lua_error(L);
}

/* kv:history(key) -> { entry... } oldest first | nil, err, "not found" */
static int kv_history(lua_State *L)
{
    lconn *c;
    lkv *k = check_kv(L, 1, &c);
    hist_arg a = {NULL, 0};
    int rc = ember_kv_history(k->kv, check_key(L, 2), &a.entries, &a.n);
    if (rc)
        return js_fail(L, rc);
    lua_pushcfunction(L, push_history);
    lua_pushlightuserdata(L, &a);
    int st = lua_pcall(L, 1, 1, 0);
    ember_kv_entries_free(a.entries, a.n);
    return st == LUA_OK ? 1 : lua_error(L);
}

/* ---- put_async */

static void sink_release(acksink *k)
{
    if (atomic_fetch_sub(&k->refs, 1) == 1) {
        pthread_mutex_destroy(&k->mu);
        free(k);
    }
}

static void acks_detach(lconn *c)
{
    acksink *k = c->sink;
    if (!k)
        return;
    pthread_mutex_lock(&k->mu);
    k->c = NULL;
    pthread_mutex_unlock(&k->mu);
    c->sink = NULL;
    sink_release(k);
}

typedef struct put_pending {
    acksink *sink;
    int ref; /* the callback, in the connection's reference table */
} put_pending;

/* ember_kv_put_fn: any thread. Publishes "<status> <revision>" to <prefix><ref>. */
static void put_done(void *ud, int status, uint64_t revision)
{
    put_pending *p = ud;
    acksink *k = p->sink;
    char subj[80], data[48];
    snprintf(subj, sizeof subj, "%s%d", k->prefix, p->ref);
    int n = snprintf(data, sizeof data, "%d %llu", status, (unsigned long long)revision);
    pthread_mutex_lock(&k->mu);
    if (k->c)
        ember_conn_publish(k->c, subj, NULL, data, (size_t)n);
    pthread_mutex_unlock(&k->mu);
    sink_release(k);
    free(p);
}

/* Runs protected: (refs, ref, status, revision) */
static int deliver_put_ack(lua_State *L)
{
    int ref = (int)lua_tointeger(L, 2);
    int status = (int)lua_tointeger(L, 3);
    lua_rawgeti(L, 1, ref);
    luaL_unref(L, 1, ref);
    if (!lua_isfunction(L, -1))
        return 0;
    if (status == EMBER_OK) {
        lua_pushvalue(L, 4);
        lua_call(L, 1, 0);
    } else {
        lua_pushnil(L);
        lua_pushfstring(L, "ember: %s", ember_strerror(status));
        lua_pushstring(L, code_name(status));
        lua_call(L, 3, 0);
    }
    return 0;
}

/* POLL callback of the put-ack inbox: runs inside ember_conn_poll on the Lua thread */
static void ack_cb(void *ud, ember_sub *sub, ember_msg *m)
{
    (void)sub;
    lconn *c = ud;
    if (!c->c || c->close_pending || c->depth == 0 || !c->sink)
        return;
    const char *subj = ember_msg_subject(m);
    size_t pl = strlen(c->sink->prefix);
    if (strlen(subj) <= pl)
        return;
    int ref = atoi(subj + pl);
    size_t n;
    const char *d = ember_msg_data(m, &n);
    int status = 0;
    unsigned long long rev = 0;
    if (sscanf(d, "%d %llu", &status, &rev) != 2)
        return;
    lua_State *L = c->L;
    int base = c->base;
    lua_pushcfunction(L, deliver_put_ack);
    lua_pushvalue(L, base);
    lua_pushinteger(L, ref);
    lua_pushinteger(L, status);
    lua_pushinteger(L, (lua_Integer)rev);
    if (lua_pcall(L, 4, 0, base + 1) != LUA_OK)
        report_error(L, c, base, base + 1, LUA_NOREF);
}

static int ensure_acks(lconn *c)
{
    if (c->sink)
        return 0;
    acksink *k = calloc(1, sizeof *k);
    if (!k)
        return EMBER_ENOMEM;
    pthread_mutex_init(&k->mu, NULL);
    atomic_init(&k->refs, 1);
    k->c = c->c;
    char tok[23];
    random_token(tok, 22);
    snprintf(k->prefix, sizeof k->prefix, "_INBOX.%s.", tok);
    char subj[64];
    snprintf(subj, sizeof subj, "%s*", k->prefix);
    int rc = ember_conn_subscribe(&c->ack_sub, c->c, subj, NULL, EMBER_DELIVER_POLL, ack_cb, c,
                                  NULL);
    if (rc) {
        sink_release(k);
        return rc;
    }
    c->sink = k;
    return 0;
}

/* kv:put_async(key, value, fn) -> true | nil, err, code. fn(revision) or
 * fn(nil, err, code) runs inside conn:poll once the value is durable (or failed). */
static int kv_put_async(lua_State *L)
{
    lconn *c;
    lkv *k = check_kv(L, 1, &c);
    const char *key = check_key(L, 2);
    size_t len = 0;
    const char *v = luaL_optlstring(L, 3, "", &len);
    luaL_checktype(L, 4, LUA_TFUNCTION);
    if (!c || !c->c)
        return luaL_error(L, "ember: connection closed");
    int rc = ensure_acks(c);
    if (rc)
        return raise_rc(L, rc);
    put_pending *p = malloc(sizeof *p);
    if (!p)
        return raise_rc(L, EMBER_ENOMEM);
    lua_getiuservalue(L, 1, 1); /* conn */
    lua_getiuservalue(L, -1, 1); /* its reference table */
    lua_pushvalue(L, 4);
    p->ref = luaL_ref(L, -2);
    p->sink = c->sink;
    atomic_fetch_add(&p->sink->refs, 1);
    rc = ember_kv_put_async(k->kv, key, v, len, put_done, p);
    if (rc) {
        luaL_unref(L, -1, p->ref);
        sink_release(p->sink);
        free(p);
        return js_fail(L, rc);
    }
    return push_true(L);
}

/* ---- watch */

static void watch_unlink(lwatch *w)
{
    lconn *c = w->owner;
    if (w->prev)
        w->prev->next = w->next;
    else if (c && c->watches == w)
        c->watches = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->next = w->prev = NULL;
}

/* C side of a stop; the caller releases the Lua references */
static void watch_stop_c(lwatch *w)
{
    if (!w->w)
        return;
    ember_kv_watcher *cw = w->w;
    w->w = NULL;
    watch_unlink(w);
    ember_kv_watch_stop(cw); /* fn is not called after this (also from inside fn) */
}

static void watches_stop_all(lconn *c)
{
    while (c->watches) {
        lwatch *w = c->watches;
        watch_stop_c(w);
        w->fn_ref = w->self_ref = LUA_NOREF; /* the reference table is dropped by the close */
    }
}

/* Runs protected: (refs, lwatch*, entry* or NULL, conn) */
static int deliver_entry(lua_State *L)
{
    lwatch *w = lua_touserdata(L, 2);
    const ember_kv_entry *e = lua_touserdata(L, 3);
    lua_rawgeti(L, 1, w->fn_ref);
    if (e)
        push_entry(L, e);
    else
        lua_pushnil(L);
    lua_rawgeti(L, 1, w->self_ref);
    lua_call(L, 2, 0);
    return 0;
}

/* ember_kv_watch_fn: EMBER_DELIVER_POLL, so it runs inside ember_conn_poll on the Lua
 * thread, with c->L and c->base set by poll_conn */
static void watch_cb(void *ud, const ember_kv_entry *e)
{
    lwatch *w = ud;
    lconn *c = w->owner;
    if (!w->w || !c || c->close_pending || c->depth == 0)
        return;
    lua_State *L = c->L;
    int base = c->base;
    lua_pushcfunction(L, deliver_entry);
    lua_pushvalue(L, base);
    lua_pushlightuserdata(L, w);
    lua_pushlightuserdata(L, (void *)e);
    lua_pushvalue(L, base + 3);
    if (lua_pcall(L, 4, 0, base + 1) != LUA_OK)
        report_error(L, c, base, base + 1, w->self_ref);
}

/* Stop and release the references; watcher object at idx. Idempotent. */
static int watch_stop(lua_State *L)
{
    lwatch *w = luaL_checkudata(L, 1, MT_WATCH);
    if (!w->w)
        return 0;
    watch_stop_c(w);
    if (w->fn_ref != LUA_NOREF) {
        lua_getiuservalue(L, 1, 1); /* conn */
        lua_getiuservalue(L, -1, 1); /* its reference table */
        if (lua_istable(L, -1)) {
            luaL_unref(L, -1, w->fn_ref);
            luaL_unref(L, -1, w->self_ref);
        }
        lua_pop(L, 2);
        w->fn_ref = w->self_ref = LUA_NOREF;
    }
    return 0;
}

static int watch_is_active(lua_State *L)
{
    lwatch *w = luaL_checkudata(L, 1, MT_WATCH);
    lua_pushboolean(L, w->w != NULL && w->owner && w->owner->c &&
                           !ember_conn_is_closed(w->owner->c));
    return 1;
}

static int watch_tostring(lua_State *L)
{
    lwatch *w = luaL_checkudata(L, 1, MT_WATCH);
    lua_pushstring(L, w->w ? "ember.kv_watcher (active)" : "ember.kv_watcher (stopped)");
    return 1;
}

/* kv:watch([keys,] fn) -> watcher. fn(entry, watcher) runs inside conn:poll(): first the
 * latest entry of every matching key, then fn(nil, watcher) once, then every change. */
static int kv_watch(lua_State *L)
{
    lconn *c;
    lkv *k = check_kv(L, 1, &c);
    const char *keys = ">";
    int fn_idx = 2;
    if (lua_type(L, 2) == LUA_TSTRING) {
        keys = check_name(L, 2, "key filter");
        fn_idx = 3;
    } else if (lua_isnil(L, 2)) {
        fn_idx = 3;
    }
    luaL_checktype(L, fn_idx, LUA_TFUNCTION);
    lwatch *w = lua_newuserdatauv(L, sizeof *w, 1);
    int widx = lua_gettop(L);
    memset(w, 0, sizeof *w);
    w->fn_ref = w->self_ref = LUA_NOREF;
    luaL_setmetatable(L, MT_WATCH);
    lua_getiuservalue(L, 1, 1); /* conn */
    lua_setiuservalue(L, widx, 1);
    /* anchor the function and the object first: nothing may raise once it is live */
    lua_getiuservalue(L, widx, 1);
    lua_getiuservalue(L, -1, 1); /* the conn's reference table */
    lua_pushvalue(L, fn_idx);
    w->fn_ref = luaL_ref(L, -2);
    lua_pushvalue(L, widx);
    w->self_ref = luaL_ref(L, -2);
    lua_pop(L, 1); /* keeps the conn on the stack */
    int rc = ember_kv_watch(k->kv, keys, EMBER_DELIVER_POLL, watch_cb, w, NULL, &w->w);
    if (rc) {
        w->w = NULL;
        lua_getiuservalue(L, -1, 1);
        luaL_unref(L, -1, w->fn_ref);
        luaL_unref(L, -1, w->self_ref);
        w->fn_ref = w->self_ref = LUA_NOREF;
        return js_fail(L, rc);
    }
    w->owner = c;
    w->next = c->watches;
    if (c->watches)
        c->watches->prev = w;
    c->watches = w;
    lua_settop(L, widx);
    return 1;
}

/* ------------------------------------------------------------------ module */

/* ember.clock(): monotonic seconds (float), for frame timing and benchmarks */
static int l_clock(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
    return 1;
}

/* A metatable with its methods table; index_fn (optional) gets the methods table as
 * upvalue 1 and handles fields; without it __index is the methods table. */
static void new_class(lua_State *L, const char *name, const luaL_Reg *meta,
                      const luaL_Reg *methods, lua_CFunction index_fn)
{
    luaL_newmetatable(L, name);
    luaL_setfuncs(L, meta, 0);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    if (index_fn)
        lua_pushcclosure(L, index_fn, 1);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "ember");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
}

EMBER_LUA_EXPORT int luaopen_ember(lua_State *L)
{
    static const luaL_Reg server_meta[] = {
        {"__gc", server_close}, {"__close", server_close}, {"__tostring", server_tostring},
        {NULL, NULL}};
    static const luaL_Reg server_methods[] = {
        {"ready", server_ready},       {"client_url", server_client_url},
        {"port", server_port},         {"id", server_id},
        {"name", server_name},         {"stats", server_stats},
        {"connect", server_connect},   {"shutdown", server_shutdown},
        {"monitor", server_monitor},   {"monitor_url", server_monitor_url},
        {"monitor_port", server_monitor_port},
        {"close", server_close},       {"is_closed", server_is_closed},
        {NULL, NULL}};
    static const luaL_Reg conn_meta[] = {
        {"__gc", conn_gc},         {"__close", conn_close},       {"__tostring", conn_tostring},
        {"__newindex", conn_newindex}, {NULL, NULL}};
    static const luaL_Reg conn_methods[] = {
        {"publish", conn_publish}, {"subscribe", conn_subscribe}, {"request", conn_request},
        {"respond", conn_respond}, {"poll", conn_poll},           {"fd", conn_fd},
        {"jetstream", conn_jetstream},
        {"close", conn_close},     {"is_closed", conn_is_closed}, {NULL, NULL}};
    static const luaL_Reg sub_meta[] = {
        {"__gc", sub_gc}, {"__close", sub_unsubscribe}, {"__tostring", sub_tostring},
        {NULL, NULL}};
    static const luaL_Reg sub_methods[] = {
        {"next_msg", sub_next_msg}, {"unsubscribe", sub_unsubscribe},
        {"close", sub_unsubscribe}, {"is_valid", sub_is_valid},
        {"subject", sub_subject},   {"pending", sub_pending},
        {NULL, NULL}};
    static const luaL_Reg msg_meta[] = {
        {"__gc", msg_gc}, {"__tostring", msg_tostring}, {NULL, NULL}};
    static const luaL_Reg msg_methods[] = {
        {"respond", msg_respond}, {"header", msg_header},
        {"header_values", msg_header_values},
        {"ack", msg_ack},         {"nak", msg_nak},
        {"in_progress", msg_in_progress}, {"term", msg_term},
        {"metadata", msg_metadata}, {NULL, NULL}};
    static const luaL_Reg js_meta[] = {{"__tostring", js_tostring}, {NULL, NULL}};
    static const luaL_Reg js_methods[] = {
        {"add_stream", js_add_stream},         {"stream_info", js_stream_info},
        {"purge_stream", js_purge_stream},     {"delete_stream", js_delete_stream},
        {"publish", js_publish},               {"get_msg", js_get_msg},
        {"get_last_msg", js_get_last_msg},     {"delete_msg", js_delete_msg},
        {"add_consumer", js_add_consumer},     {"consumer_info", js_consumer_info},
        {"delete_consumer", js_delete_consumer}, {"fetch", js_fetch},
        {"create_key_value", js_create_key_value}, {"key_value", js_key_value},
        {"delete_key_value", js_delete_key_value}, {NULL, NULL}};
    static const luaL_Reg kv_meta[] = {
        {"__gc", kv_close}, {"__close", kv_close}, {"__tostring", kv_tostring}, {NULL, NULL}};
    static const luaL_Reg kv_methods[] = {
        {"bucket", kv_bucket}, {"get", kv_get},         {"put", kv_put},
        {"put_async", kv_put_async},
        {"create", kv_create}, {"update", kv_update},   {"delete", kv_delete},
        {"purge", kv_purge},   {"keys", kv_keys},       {"history", kv_history},
        {"watch", kv_watch},   {"close", kv_close},     {NULL, NULL}};
    static const luaL_Reg watch_meta[] = {
        {"__gc", watch_stop}, {"__close", watch_stop}, {"__tostring", watch_tostring},
        {NULL, NULL}};
    static const luaL_Reg watch_methods[] = {
        {"stop", watch_stop}, {"close", watch_stop}, {"is_active", watch_is_active},
        {NULL, NULL}};
    static const luaL_Reg batch_meta[] = {{"__gc", batch_gc}, {NULL, NULL}};
    static const luaL_Reg no_methods[] = {{NULL, NULL}};
    static const luaL_Reg funcs[] = {{"server", l_server}, {"clock", l_clock}, {NULL, NULL}};

    new_class(L, MT_SERVER, server_meta, server_methods, NULL);
    new_class(L, MT_CONN, conn_meta, conn_methods, NULL);
    luaL_getmetatable(L, MT_CONN); /* methods miss: conn_missing */
    lua_getfield(L, -1, "__index");
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, conn_missing);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_pop(L, 2);
    new_class(L, MT_SUB, sub_meta, sub_methods, NULL);
    new_class(L, MT_MSG, msg_meta, msg_methods, msg_index);
    new_class(L, MT_JS, js_meta, js_methods, NULL);
    new_class(L, MT_KV, kv_meta, kv_methods, NULL);
    new_class(L, MT_WATCH, watch_meta, watch_methods, NULL);
    new_class(L, MT_BATCH, batch_meta, no_methods, NULL);
    luaL_newlib(L, funcs);
    lua_pushstring(L, ember_version());
    lua_setfield(L, -2, "version");
    lua_pushstring(L, EMBER_NATS_VERSION);
    lua_setfield(L, -2, "nats_version");
    return 1;
}
