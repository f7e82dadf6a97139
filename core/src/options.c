/* options: ember_config_load, mapping a nats-server configuration file (parsed by
 * conf.c) onto ember_server_options.
 *
 * Key names and value types follow nats-server's server/opts.go (processConfigFileLine,
 * parseAuthorization, parseJetStream): keys are matched case-insensitively, durations
 * are Go duration strings ("2m", "10s") or, with a warning, a number of seconds. Keys
 * fall in four groups:
 *   - mapped onto the options (the table in docs/config.md);
 *   - known to nats-server but meaningless for Ember (log files, pid files, ...):
 *     ignored with an INFO note;
 *   - nats-server features Ember does not have (cluster, gateways, HTTPS
 *     monitoring, ...): ignored with a WARN line;
 *   - security features Ember does not have (operators and JWT resolvers, account
 *     mappings/limits, encryption at rest): an error, because running without them would
 *     quietly weaken what the file asks for.
 * Anything else is reported as `unknown field "x"` at WARN (nats-server makes that an
 * error), except keys used as $variables, as in nats-server.
 */
#define _POSIX_C_SOURCE 200809L
#include "conf.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct ember_config {
    char **strs; /* the strings stored into options */
    size_t n, cap;
    ember_leaf_remote *remotes; /* leafnodes { remotes } stored into options */
    size_t nremotes;
    ember_user *users;          /* authorization { users } stored into options */
    void **blocks;              /* accounts {}: arrays stored into options */
    size_t nblocks;
};

typedef struct loader {
    ember_server_options *o; /* the working copy */
    ember_config *cfg;
    ember_log_fn log_fn;     /* the host's logger when the load started */
    void *log_ud;
    int log_level;
    int code;
    char err[640];
    bool store_dir_set;
    ember_user default_perms;   /* authorization { default_permissions } */
    bool have_default_perms;
    int debug, trace; /* -1: not in the file */
    const char **seen_users;    /* user names and nkeys so far (authorization and accounts) */
    size_t nseen;
} loader;

/* ------------------------------------------------------------------ reporting */

static void vformat_at(char *buf, size_t cap, conf_pos pos, const char *fmt, va_list ap)
{
    int n = 0;
    if (pos.file)
        n = snprintf(buf, cap, "%s:%d:%d: ", pos.file, pos.line, pos.col);
    if (n < 0 || (size_t)n >= cap)
        n = 0;
    vsnprintf(buf + n, cap - (size_t)n, fmt, ap);
}

__attribute__((format(printf, 3, 4))) static int lerr(loader *l, conf_pos pos, const char *fmt, ...)
{
    if (l->code == 0) {
        va_list ap;
        va_start(ap, fmt);
        vformat_at(l->err, sizeof l->err, pos, fmt, ap);
        va_end(ap);
        l->code = EMBER_EINVAL;
    }
    return -1;
}

__attribute__((format(printf, 4, 5))) static void lnote(loader *l, int level, conf_pos pos,
                                                       const char *fmt, ...)
{
    if (!l->log_fn || level > l->log_level)
        return;
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vformat_at(line, sizeof line, pos, fmt, ap);
    va_end(ap);
    l->log_fn(l->log_ud, level, line);
}

static int nomem(loader *l)
{
    if (l->code == 0) {
        l->code = EMBER_ENOMEM;
        snprintf(l->err, sizeof l->err, "out of memory");
    }
    return -1;
}

/* ------------------------------------------------------------------ typed values */

static const char *a_type(conf_type t)
{
    switch (t) {
    case CONF_STRING: return "a string";
    case CONF_INT: return "an integer";
    case CONF_FLOAT: return "a float";
    case CONF_BOOL: return "a boolean";
    case CONF_DATETIME: return "a datetime";
    case CONF_MAP: return "a map";
    case CONF_ARRAY: return "an array";
    }
    return "?";
}

static int wrong_type(loader *l, const conf_entry *e, const char *want)
{
    return lerr(l, e->value->pos, "field \"%s\": expected %s, got %s", e->key, want,
                a_type(e->value->type));
}

static int cfg_keep(loader *l, const char *s, size_t n, const char **out)
{
    ember_config *c = l->cfg;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        char **ns = realloc(c->strs, cap * sizeof *ns);
        if (!ns)
            return nomem(l);
        c->strs = ns;
        c->cap = cap;
    }
    char *d = malloc(n + 1);
    if (!d)
        return nomem(l);
    memcpy(d, s, n);
    d[n] = 0;
    c->strs[c->n++] = d;
    *out = d;
    return 0;
}

/* A zeroed array owned by the config (freed by ember_config_free); NULL on ENOMEM. */
static void *cfg_alloc(loader *l, size_t n, size_t size)
{
    ember_config *c = l->cfg;
    void **nb = realloc(c->blocks, (c->nblocks + 1) * sizeof *nb);
    if (!nb) {
        nomem(l);
        return NULL;
    }
    c->blocks = nb;
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        nomem(l);
        return NULL;
    }
    c->blocks[c->nblocks++] = p;
    return p;
}

static int get_str(loader *l, const conf_entry *e, const char **out)
{
    const conf_value *v = e->value;
    if (v->type != CONF_STRING)
        return wrong_type(l, e, "a string");
    if (memchr(v->u.str.s, 0, v->u.str.len))
        return lerr(l, v->pos, "field \"%s\": the string contains a NUL byte", e->key);
    return cfg_keep(l, v->u.str.s, v->u.str.len, out);
}

static int get_int(loader *l, const conf_entry *e, int64_t min, int64_t max, int64_t *out)
{
    const conf_value *v = e->value;
    if (v->type != CONF_INT)
        return wrong_type(l, e, "an integer");
    if (v->u.i < min || v->u.i > max) {
        if (v->u.i > max && max == INT32_MAX)
            return lerr(l, v->pos, "%s value is too big", e->key); /* nats-server's words */
        return lerr(l, v->pos, "field \"%s\": %lld is out of range (%lld to %lld)", e->key,
                    (long long)v->u.i, (long long)min, (long long)max);
    }
    *out = v->u.i;
    return 0;
}

static int get_bool(loader *l, const conf_entry *e, bool *out)
{
    if (e->value->type != CONF_BOOL)
        return wrong_type(l, e, "a boolean");
    *out = e->value->u.b;
    return 0;
}

/* A duration: a Go duration string, or (with nats-server's warning) seconds. */
static int get_duration_ns(loader *l, const conf_entry *e, int64_t *ns)
{
    const conf_value *v = e->value;
    if (v->type == CONF_STRING) {
        char msg[256];
        if (memchr(v->u.str.s, 0, v->u.str.len) ||
            conf_parse_duration(v->u.str.s, ns, msg, sizeof msg) != 0) {
            if (memchr(v->u.str.s, 0, v->u.str.len))
                snprintf(msg, sizeof msg, "time: invalid duration");
            return lerr(l, v->pos, "error parsing %s: %s", e->key, msg);
        }
        return 0;
    }
    if (v->type == CONF_INT) {
        lnote(l, EMBER_LOG_WARN, v->pos,
              "invalid use of field \"%s\": %s should be converted to a duration", e->key, e->key);
        if (v->u.i > INT64_MAX / 1000000000 || v->u.i < INT64_MIN / 1000000000)
            return lerr(l, v->pos, "field \"%s\": %lld seconds is out of range", e->key,
                        (long long)v->u.i);
        *ns = v->u.i * 1000000000;
        return 0;
    }
    return wrong_type(l, e, "a duration (like \"2m\" or \"10s\")");
}

/* A positive duration in milliseconds (sub-millisecond rounds up); 0 leaves *ms as it
 * was (nats-server: 0 means the default). */
static int get_duration_ms(loader *l, const conf_entry *e, int64_t *ms)
{
    int64_t ns;
    if (get_duration_ns(l, e, &ns))
        return -1;
    if (ns < 0)
        return lerr(l, e->value->pos, "field \"%s\": the duration must not be negative", e->key);
    if (ns > 0)
        *ms = ns / 1000000 + (ns % 1000000 ? 1 : 0);
    return 0;
}

/* ------------------------------------------------------------------ key groups */

static bool key_in(const char *key, const char *const *names)
{
    for (; *names; names++)
        if (strcasecmp(key, *names) == 0)
            return true;
    return false;
}

/* Known to nats-server, without meaning for Ember: INFO note. */
static const char *const top_unused[] = {
    "logtime", "logtime_utc", "logfile", "log_file", "logfile_size_limit", "log_size_limit",
    "logfile_max_num", "log_max_num", "syslog", "remote_syslog", "pidfile", "pid_file",
    "ports_file_dir", "max_traced_msg_len", "connect_error_reports", "reconnect_error_reports",
    "disable_sublist_cache", "no_sublist_cache", "lame_duck_duration", "lame_duck_grace_period",
    "prof_port", "prof_block_rate", "max_closed_clients", "client_advertise", "server_tags",
    "server_metadata", "no_system_account", "no_system", "no_sys_acc", "system_account",
    "system", "max_sub_tokens", "max_subscription_tokens", "no_fast_producer_stall",
    "write_timeout", "default_js_domain", "http_base_path", "feature_flags", "ocsp_cache",
    "allow_non_tls", NULL};
/* nats-server features Ember does not have: WARN. */
static const char *const top_unsupported[] = {
    "https", "https_port", "cluster", "gateway", "mqtt", "mappings", "maps", "ocsp", "proxy_protocol",
    "proxies", "default_sentinel", NULL};
/* Security features Ember does not have: an error. */
static const char *const top_refused[] = {
    "trusted", "trusted_keys", "account_resolver", "accounts_resolver", "resolver_tls",
    "resolver_pinned_accounts", NULL};

static const char *const auth_refused[] = {
    "permissions", "auth_callout", "auth_hook", "proxy_required", NULL};

static const char *const js_unsupported[] = {
    "strict", "extension_hint", "limits", "tpm", "unique_tag",
    "max_outstanding_catchup", "max_buffered_msgs", "max_buffered_size", "request_queue_limit",
    "max_ack_pending", "max_ha_assets", "max_request_batch", NULL};
static const char *const js_refused[] = {
    "key", "ek", "encryption_key", "prev_key", "prev_ek", "prev_encryption_key", "cipher", NULL};

static int refuse(loader *l, const conf_entry *e)
{
    return lerr(l, e->key_pos,
                "field \"%s\" is not supported by Ember: refusing to run without what it asks for",
                e->key);
}

/* strerror as Go words it ("no such file or directory"). */
static void go_strerror(char *buf, size_t cap, int e)
{
    snprintf(buf, cap, "%s", strerror(e));
    if (buf[0] >= 'A' && buf[0] <= 'Z')
        buf[0] = (char)(buf[0] - 'A' + 'a');
}

/* An unknown field where a typo would silently weaken security (users, permissions,
 * authorization): an error, as nats-server makes every unknown field. */
static int unknown_err(loader *l, const conf_entry *e)
{
    if (e->used)
        return 0;
    return lerr(l, e->key_pos, "unknown field \"%s\"", e->key);
}

static void unknown(loader *l, const conf_entry *e)
{
    if (!e->used) /* a key used as a $variable is fine, as in nats-server */
        lnote(l, EMBER_LOG_WARN, e->key_pos, "unknown field \"%s\"", e->key);
}

/* ------------------------------------------------------------------ blocks */

static int set_store_dir(loader *l, const conf_entry *e)
{
    if (l->store_dir_set)
        return lerr(l, e->key_pos, "Duplicate 'store_dir' configuration");
    l->store_dir_set = true;
    return get_str(l, e, &l->o->store_dir);
}

/* ------------------------------------------------------------------ users and permissions */

static int get_str_list(loader *l, const conf_entry *e, const char **out);

/* publish / subscribe: a subject, a list (allow), or { allow, deny }. */
static int do_perm_dir(loader *l, const conf_entry *e, const char **allow, const char **deny)
{
    const conf_value *v = e->value;
    if (v->type == CONF_STRING || v->type == CONF_ARRAY)
        return get_str_list(l, e, allow);
    if (v->type != CONF_MAP)
        return wrong_type(l, e, "a subject, a list of subjects or a map");
    for (size_t i = 0; i < v->u.map.n; i++) {
        const conf_entry *x = &v->u.map.e[i];
        if (!strcasecmp(x->key, "allow")) {
            if (get_str_list(l, x, allow))
                return -1;
        } else if (!strcasecmp(x->key, "deny")) {
            if (get_str_list(l, x, deny))
                return -1;
        } else {
            return lerr(l, x->key_pos, "Unknown field \"%s\" parsing permissions", x->key);
        }
    }
    return 0;
}

static int do_permissions(loader *l, const conf_entry *top, ember_user *u)
{
    const conf_value *m = top->value;
    if (m->type != CONF_MAP)
        return wrong_type(l, top, "a map");
    for (size_t i = 0; i < m->u.map.n; i++) {
        const conf_entry *e = &m->u.map.e[i];
        const char *k = e->key;
        if (!strcasecmp(k, "publish") || !strcasecmp(k, "import")) {
            if (do_perm_dir(l, e, &u->publish_allow, &u->publish_deny))
                return -1;
        } else if (!strcasecmp(k, "subscribe") || !strcasecmp(k, "export")) {
            if (do_perm_dir(l, e, &u->subscribe_allow, &u->subscribe_deny))
                return -1;
        } else if (!strcasecmp(k, "allow_responses") || !strcasecmp(k, "allow_response")) {
            const conf_value *v = e->value;
            if (v->type == CONF_BOOL) {
                u->allow_responses = v->u.b;
            } else if (v->type == CONF_MAP) {
                u->allow_responses = true;
                for (size_t j = 0; j < v->u.map.n; j++) {
                    const conf_entry *x = &v->u.map.e[j];
                    int64_t n;
                    if (!strcasecmp(x->key, "max")) {
                        if (get_int(l, x, 0, INT32_MAX, &n))
                            return -1;
                        u->responses_max = (int32_t)n;
                    } else if (!strcasecmp(x->key, "expires") || !strcasecmp(x->key, "ttl")) {
                        if (get_duration_ms(l, x, &u->responses_expires_ms))
                            return -1;
                    } else {
                        return lerr(l, x->key_pos, "Unknown field \"%s\" parsing permissions",
                                    x->key);
                    }
                }
            } else {
                return wrong_type(l, e, "a boolean or a map");
            }
        } else {
            return lerr(l, e->key_pos, "Unknown field \"%s\" parsing permissions", k);
        }
    }
    return 0;
}

static int parse_users(loader *l, const conf_value *a, ember_user *us);

static int do_users(loader *l, const conf_entry *top)
{
    const conf_value *a = top->value;
    if (a->type != CONF_ARRAY)
        return wrong_type(l, top, "an array");
    if (a->u.arr.n == 0)
        return 0;
    ember_user *us = calloc(a->u.arr.n, sizeof *us);
    if (!us)
        return nomem(l);
    free(l->cfg->users);
    l->cfg->users = us;
    l->o->users = us;
    l->o->users_count = a->u.arr.n;
    return parse_users(l, a, us);
}

/* The users of an array (maps) into us (a->u.arr.n entries). */
static int parse_users(loader *l, const conf_value *a, ember_user *us)
{
    for (size_t i = 0; i < a->u.arr.n; i++) {
        const conf_value *m = a->u.arr.v[i];
        if (m->type != CONF_MAP)
            return lerr(l, m->pos, "users: expected a map for each user, got %s", a_type(m->type));
        bool perms = false;
        for (size_t j = 0; j < m->u.map.n; j++) {
            const conf_entry *e = &m->u.map.e[j];
            const char *k = e->key;
            int rc = 0;
            if (!strcasecmp(k, "user") || !strcasecmp(k, "username"))
                rc = get_str(l, e, &us[i].user);
            else if (!strcasecmp(k, "pass") || !strcasecmp(k, "password"))
                rc = get_str(l, e, &us[i].password);
            else if (!strcasecmp(k, "nkey"))
                rc = get_str(l, e, &us[i].nkey);
            else if (!strcasecmp(k, "permissions") || !strcasecmp(k, "permission")) {
                rc = do_permissions(l, e, &us[i]);
                perms = true;
            } else if (!strcasecmp(k, "account") || !strcasecmp(k, "allowed_connection_types") ||
                       !strcasecmp(k, "connection_types") || !strcasecmp(k, "clients"))
                rc = refuse(l, e);
            else
                rc = unknown_err(l, e);
            if (rc)
                return -1;
        }
        if (!perms)
            us[i].responses_max = -1; /* mark: default_permissions apply */
        /* unique across authorization {} and every account, as nats-server checks */
        const char *id = us[i].nkey ? us[i].nkey : us[i].user;
        if (id) {
            for (size_t k = 0; k < l->nseen; k++)
                if (!strcmp(l->seen_users[k], id))
                    return lerr(l, m->pos, "Duplicate %s \"%s\" detected",
                                us[i].nkey ? "nkey" : "user", id);
            const char **nv = realloc(l->seen_users, (l->nseen + 1) * sizeof *nv);
            if (!nv)
                return nomem(l);
            l->seen_users = nv;
            nv[l->nseen++] = id;
        }
    }
    return 0;
}

/* default_permissions: for users that have no permissions of their own. */
static int apply_default_permissions(loader *l, const conf_entry *e)
{
    ember_user d;
    memset(&d, 0, sizeof d);
    if (do_permissions(l, e, &d))
        return -1;
    l->default_perms = d;
    l->have_default_perms = true;
    return 0;
}

static void apply_defaults(ember_user *us, size_t n, const ember_user *defaults)
{
    for (size_t i = 0; us && i < n; i++) {
        if (us[i].responses_max != -1)
            continue;
        const char *user = us[i].user, *pass = us[i].password, *nkey = us[i].nkey;
        if (defaults)
            us[i] = *defaults;
        else
            memset(&us[i], 0, sizeof us[i]);
        us[i].user = user;
        us[i].password = pass;
        us[i].nkey = nkey;
    }
}

static void finish_users(loader *l)
{
    apply_defaults(l->cfg->users, l->o->users_count,
                   l->have_default_perms ? &l->default_perms : NULL);
}

static int do_authorization(loader *l, const conf_entry *top)
{
    const conf_value *m = top->value;
    if (m->type != CONF_MAP)
        return wrong_type(l, top, "a map");
    bool have_user = false, have_token = false;
    for (size_t i = 0; i < m->u.map.n; i++) {
        const conf_entry *e = &m->u.map.e[i];
        const char *k = e->key;
        if (!strcasecmp(k, "user") || !strcasecmp(k, "username")) {
            if (get_str(l, e, &l->o->username))
                return -1;
            have_user = true;
        } else if (!strcasecmp(k, "pass") || !strcasecmp(k, "password")) {
            if (get_str(l, e, &l->o->password))
                return -1;
            have_user = true;
        } else if (!strcasecmp(k, "token")) {
            if (get_str(l, e, &l->o->auth_token))
                return -1;
            have_token = true;
        } else if (!strcasecmp(k, "timeout")) {
            const conf_value *v = e->value;
            double secs;
            if (v->type == CONF_INT) {
                secs = (double)v->u.i;
            } else if (v->type == CONF_FLOAT) {
                secs = v->u.f;
            } else if (v->type == CONF_STRING) {
                int64_t ns;
                char msg[256];
                if (memchr(v->u.str.s, 0, v->u.str.len) ||
                    conf_parse_duration(v->u.str.s, &ns, msg, sizeof msg) != 0)
                    return lerr(l, v->pos, "error parsing authorization config, 'timeout' %s",
                                memchr(v->u.str.s, 0, v->u.str.len) ? "time: invalid duration" : msg);
                secs = (double)ns / 1e9;
            } else {
                return lerr(l, v->pos, "error parsing authorization config, 'timeout' wrong type");
            }
            if (!(secs >= 0) || secs > 1e9)
                return lerr(l, v->pos, "field \"timeout\": %g seconds is out of range", secs);
            if (secs > 60)
                lnote(l, EMBER_LOG_WARN, v->pos,
                      "invalid use of field \"timeout\": timeout of %g seconds is high, consider "
                      "keeping it under 60 seconds. possibly caused by unquoted duration; use "
                      "'1m' instead of 1m, for example",
                      secs);
            if (secs > 0) {
                int64_t ms = (int64_t)(secs * 1000 + 0.5);
                l->o->auth_timeout_ms = ms > 0 ? ms : 1;
            }
        } else if (!strcasecmp(k, "users")) {
            if (do_users(l, e))
                return -1;
        } else if (!strcasecmp(k, "default_permissions") || !strcasecmp(k, "default_permission")) {
            if (apply_default_permissions(l, e))
                return -1;
        } else if (key_in(k, auth_refused)) {
            return refuse(l, e);
        } else if (unknown_err(l, e)) {
            return -1;
        }
    }
    if (have_user && have_token)
        return lerr(l, top->key_pos, "Cannot have a user/pass and token");
    if (l->o->users_count && have_user)
        return lerr(l, top->key_pos, "Can not have a single user/pass and a users array");
    if (l->o->users_count && have_token)
        return lerr(l, top->key_pos, "Can not have a token and a users array");
    finish_users(l);
    return 0;
}

/* nats-server's getStorageSize: an integer (units already applied by the lexer) or a
 * string "<n>K|M|G|T". */
static int get_storage_size(loader *l, const conf_entry *e, const char *what, int64_t *out)
{
    const conf_value *v = e->value;
    if (v->type == CONF_INT) {
        if (v->u.i < 0)
            return lerr(l, v->pos, "%s must not be negative", what);
        *out = v->u.i;
        return 0;
    }
    if (v->type != CONF_STRING)
        return lerr(l, v->pos, "%s must be int64 or string", what);
    const char *s = v->u.str.s;
    size_t n = strlen(s);
    if (n == 0) {
        *out = 0;
        return 0;
    }
    int shift;
    switch (s[n - 1]) {
    case 'K': shift = 10; break;
    case 'M': shift = 20; break;
    case 'G': shift = 30; break;
    case 'T': shift = 40; break;
    default:
        return lerr(l, v->pos, "%s sizes defined as strings must end in K, M, G, T", what);
    }
    char *end;
    long long x = strtoll(s, &end, 10);
    if (end != s + n - 1 || x < 0 || x > (INT64_MAX >> shift))
        return lerr(l, v->pos, "%s invalid size \"%s\"", what, s);
    *out = (int64_t)x << shift;
    return 0;
}

static int do_leafnodes(loader *l, const conf_entry *top);
static int do_accounts(loader *l, const conf_entry *top);
static int do_resolver_preload(loader *l, const conf_entry *top);
static int do_jetstream(loader *l, const conf_entry *top)
{
    const conf_value *v = top->value;
    if (v->type == CONF_BOOL) {
        l->o->jetstream = v->u.b;
        return 0;
    }
    if (v->type == CONF_STRING) {
        const char *s = v->u.str.s;
        if (!strcasecmp(s, "enabled") || !strcasecmp(s, "enable"))
            l->o->jetstream = true;
        else if (!strcasecmp(s, "disabled") || !strcasecmp(s, "disable"))
            l->o->jetstream = false;
        else
            return lerr(l, v->pos, "Expected 'enabled' or 'disabled' for string value, got '%s'", s);
        return 0;
    }
    if (v->type != CONF_MAP)
        return wrong_type(l, top, "a boolean, \"enabled\", \"disabled\" or a map");
    bool enable = true;
    for (size_t i = 0; i < v->u.map.n; i++) {
        const conf_entry *e = &v->u.map.e[i];
        const char *k = e->key;
        if (!strcasecmp(k, "store") || !strcasecmp(k, "store_dir") || !strcasecmp(k, "storedir")) {
            if (set_store_dir(l, e))
                return -1;
        } else if (!strcasecmp(k, "domain")) {
            if (get_str(l, e, &l->o->jetstream_domain))
                return -1;
        } else if (!strcasecmp(k, "sync") || !strcasecmp(k, "sync_interval")) {
            /* "always" is Ember's default anyway (ack after fsync); a duration relaxes it */
            if (e->value->type == CONF_STRING && !strcasecmp(e->value->u.str.s, "always")) {
                l->o->jetstream_sync_interval_ms = 0;
            } else if (get_duration_ms(l, e, &l->o->jetstream_sync_interval_ms)) {
                return -1;
            }
        } else if (!strcasecmp(k, "max_memory_store") || !strcasecmp(k, "max_mem_store") ||
                   !strcasecmp(k, "max_mem")) {
            if (get_storage_size(l, e, "max_mem_store", &l->o->jetstream_max_memory))
                return -1;
        } else if (!strcasecmp(k, "max_file_store") || !strcasecmp(k, "max_file")) {
            if (get_storage_size(l, e, "max_file_store", &l->o->jetstream_max_store))
                return -1;
        } else if (!strcasecmp(k, "enable") || !strcasecmp(k, "enabled")) {
            if (get_bool(l, e, &enable))
                return -1;
        } else if (key_in(k, js_refused)) {
            return refuse(l, e);
        } else if (key_in(k, js_unsupported)) {
            lnote(l, EMBER_LOG_WARN, e->key_pos, "field \"%s\" is not supported by Ember, ignored",
                  k);
        } else {
            unknown(l, e);
        }
    }
    l->o->jetstream = enable;
    return 0;
}

/* "host:port", "[::1]:4222", ":4222" or a port number (nats-server's parseListen), into
 * *hostp / *portp (listen: host/port; http: http_host/http_port); an empty host stores
 * empty_host. */
static int parse_listen(loader *l, const conf_entry *e, const char **hostp, int *portp,
                        const char *empty_host)
{
    const conf_value *v = e->value;
    if (v->type == CONF_INT) {
        if (v->u.i < -1 || v->u.i > 65535)
            return lerr(l, v->pos, "field \"%s\": port %lld is out of range (-1 to 65535)", e->key,
                        (long long)v->u.i);
        *portp = (int)v->u.i;
        return 0;
    }
    if (v->type != CONF_STRING)
        return lerr(l, v->pos, "expected port or host:port, got %s", a_type(v->type));
    const char *s = v->u.str.s;
    size_t n = v->u.str.len;
    if (memchr(s, 0, n))
        return lerr(l, v->pos, "field \"%s\": the string contains a NUL byte", e->key);
    const char *colon = NULL, *host = s;
    size_t hlen;
    if (n && s[0] == '[') {
        const char *rb = memchr(s, ']', n);
        if (!rb || rb + 1 >= s + n || rb[1] != ':')
            return lerr(l, v->pos, "could not parse address string \"%s\"", s);
        host = s + 1;
        hlen = (size_t)(rb - s - 1);
        colon = rb + 1;
    } else {
        colon = memchr(s, ':', n);
        if (!colon || memchr(colon + 1, ':', n - (size_t)(colon + 1 - s)))
            return lerr(l, v->pos, "could not parse address string \"%s\"", s);
        hlen = (size_t)(colon - s);
    }
    const char *ps = colon + 1;
    char *end;
    long port = strtol(ps, &end, 10);
    if (!*ps || *end || port < -1 || port > 65535)
        return lerr(l, v->pos, "could not parse port \"%s\"", ps);
    if (hlen == 0) {
        *hostp = empty_host;
    } else if (cfg_keep(l, host, hlen, hostp)) {
        return -1;
    }
    *portp = (int)port;
    return 0;
}

static int do_listen(loader *l, const conf_entry *e)
{
    return parse_listen(l, e, &l->o->host, &l->o->port, "0.0.0.0");
}

/* ------------------------------------------------------------------ top level */

/* ------------------------------------------------------------------ tls, websocket */

/* tls {} keys nats-server has and Ember ignores (with a warning) or refuses (they would
 * weaken or change who may connect) */
static const char *const tls_ignored[] = {
    "cipher_suites", "curve_preferences", "min_version", "connection_rate_limit", "insecure",
    "ocsp_peer", NULL};
static const char *const tls_refused[] = {
    "verify_and_map", "verify_cert_and_check_known_urls", "pinned_certs", "cert_store",
    "cert_match_by", "cert_match", "cert_match_skip_invalid", "ca_certs_match", "certs", NULL};

/* The file-name fields of a tls block (nats-server's wording for a wrong type). */
static int tls_file(loader *l, const conf_entry *e, const char **out)
{
    if (e->value->type != CONF_STRING)
        return lerr(l, e->value->pos, "error parsing tls config, expected '%s' to be filename",
                    e->key);
    return get_str(l, e, out);
}

static int tls_bool(loader *l, const conf_entry *e, bool *out)
{
    if (e->value->type != CONF_BOOL)
        return lerr(l, e->value->pos, "error parsing tls config, expected '%s' to be a boolean",
                    e->key);
    *out = e->value->u.b;
    return 0;
}

/* tls { cert_file, key_file, ca_file, verify, timeout, handshake_first } for the client
 * port (ws false) or inside websocket {} (ws true: certificate and key only). */
static int do_tls(loader *l, const conf_entry *top, bool ws)
{
    const conf_value *m = top->value;
    if (m->type != CONF_MAP)
        return wrong_type(l, top, "a map");
    ember_server_options *o = l->o;
    for (size_t i = 0; i < m->u.map.n; i++) {
        const conf_entry *e = &m->u.map.e[i];
        const char *k = e->key;
        const conf_value *v = e->value;
        if (!strcasecmp(k, "cert_file")) {
            if (tls_file(l, e, ws ? &o->ws_tls_cert_file : &o->tls_cert_file))
                return -1;
        } else if (!strcasecmp(k, "key_file")) {
            if (tls_file(l, e, ws ? &o->ws_tls_key_file : &o->tls_key_file))
                return -1;
        } else if (!ws && !strcasecmp(k, "ca_file")) {
            if (tls_file(l, e, &o->tls_ca_file))
                return -1;
        } else if (!ws && !strcasecmp(k, "verify")) {
            if (tls_bool(l, e, &o->tls_verify))
                return -1;
        } else if (!ws && !strcasecmp(k, "timeout")) {
            double secs;
            if (v->type == CONF_INT) {
                secs = (double)v->u.i;
            } else if (v->type == CONF_FLOAT) {
                secs = v->u.f;
            } else if (v->type == CONF_STRING) {
                int64_t ns;
                char msg[256];
                if (memchr(v->u.str.s, 0, v->u.str.len) ||
                    conf_parse_duration(v->u.str.s, &ns, msg, sizeof msg) != 0)
                    return lerr(l, v->pos, "error parsing tls config, 'timeout' %s",
                                memchr(v->u.str.s, 0, v->u.str.len) ? "time: invalid duration" : msg);
                secs = (double)ns / 1e9;
            } else {
                return lerr(l, v->pos, "error parsing tls config, 'timeout' wrong type");
            }
            if (!(secs >= 0) || secs > 1e9)
                return lerr(l, v->pos, "field \"timeout\": %g seconds is out of range", secs);
            if (secs > 0) {
                int64_t ms = (int64_t)(secs * 1000 + 0.5);
                o->tls_timeout_ms = ms > 0 ? ms : 1;
            }
        } else if (!ws && (!strcasecmp(k, "handshake_first") || !strcasecmp(k, "first") ||
                           !strcasecmp(k, "immediate"))) {
            if (v->type == CONF_BOOL) {
                o->tls_handshake_first = v->u.b;
            } else if (v->type == CONF_STRING && (!strcasecmp(v->u.str.s, "true") ||
                                                  !strcasecmp(v->u.str.s, "on"))) {
                o->tls_handshake_first = true;
            } else if (v->type == CONF_STRING && (!strcasecmp(v->u.str.s, "false") ||
                                                  !strcasecmp(v->u.str.s, "off"))) {
                o->tls_handshake_first = false;
            } else if (v->type == CONF_STRING) {
                /* "auto" or a fallback delay: clients of both kinds on one port */
                return lerr(l, v->pos,
                            "field \"%s\": the fallback to non-TLS clients (\"%s\") is not "
                            "supported by Ember; use true or false",
                            k, v->u.str.s);
            } else {
                return wrong_type(l, e, "a boolean");
            }
        } else if (key_in(k, tls_refused)) {
            if (!strcasecmp(k, "verify_and_map") && v->type == CONF_BOOL && !v->u.b)
                continue;
            return refuse(l, e);
        } else if (key_in(k, tls_ignored) || (ws && (!strcasecmp(k, "ca_file") ||
                                                      !strcasecmp(k, "verify") ||
                                                      !strcasecmp(k, "timeout") ||
                                                      !strcasecmp(k, "handshake_first")))) {
            if (ws && !strcasecmp(k, "verify") && v->type == CONF_BOOL && v->u.b)
                return refuse(l, e); /* client certificates on the websocket port */
            lnote(l, EMBER_LOG_WARN, e->key_pos, "field \"%s\" is not supported by Ember, ignored",
                  k);
        } else {
            unknown(l, e);
        }
    }
    /* nats-server loads the key pair while parsing: a missing file is an error here, at
     * the tls block (the certificate itself is checked by ember_server_new) */
    const char *files[2] = {ws ? o->ws_tls_cert_file : o->tls_cert_file,
                            ws ? o->ws_tls_key_file : o->tls_key_file};
    for (int i = 0; i < 2; i++) {
        if (!files[i] || !*files[i])
            continue;
        FILE *f = fopen(files[i], "r");
        if (!f) {
            char why[128];
            go_strerror(why, sizeof why, errno);
            return lerr(l, top->key_pos, "error parsing X509 certificate/key pair: open %s: %s",
                        files[i], why);
        }
        fclose(f);
    }
    return 0;
}

/* A string or an array of strings (nats-server's parseStringArray) into an array owned by
 * the config. */
static int get_str_array(loader *l, const conf_entry *e, const char *const **out, size_t *n)
{
    const conf_value *v = e->value;
    size_t cnt = v->type == CONF_ARRAY ? v->u.arr.n : 1;
    if (v->type != CONF_ARRAY && v->type != CONF_STRING)
        return lerr(l, v->pos, "error parsing %s: unsupported type %s", e->key, a_type(v->type));
    const char **a = cfg_alloc(l, cnt, sizeof *a);
    if (!a)
        return -1;
    for (size_t i = 0; i < cnt; i++) {
        const conf_value *x = v->type == CONF_ARRAY ? v->u.arr.v[i] : v;
        if (x->type != CONF_STRING)
            return lerr(l, x->pos, "error parsing %s: unsupported type in array %s", e->key,
                        a_type(x->type));
        if (memchr(x->u.str.s, 0, x->u.str.len))
            return lerr(l, x->pos, "field \"%s\": the string contains a NUL byte", e->key);
        if (cfg_keep(l, x->u.str.s, x->u.str.len, &a[i]))
            return -1;
    }
    *out = a;
    *n = cnt;
    return 0;
}

static const char *const ws_ignored[] = {
    "advertise", "jwt_cookie", "user_cookie", "pass_cookie", "token_cookie", "headers",
    "ping_interval", NULL};
static const char *const ws_origins[] = {
    "allowed_origins", "allowed_origin", "allow_origins", "allow_origin", "origins", "origin",
    NULL};

/* websocket { authorization { user, password, token, timeout } } (nats-server's
 * parseSimpleAuth) */
static int do_ws_authorization(loader *l, const conf_entry *top)
{
    const conf_value *m = top->value;
    if (m->type != CONF_MAP)
        return wrong_type(l, top, "a map");
    ember_server_options *o = l->o;
    for (size_t i = 0; i < m->u.map.n; i++) {
        const conf_entry *e = &m->u.map.e[i];
        const char *k = e->key;
        if (!strcasecmp(k, "user") || !strcasecmp(k, "username")) {
            if (get_str(l, e, &o->ws_username))
                return -1;
        } else if (!strcasecmp(k, "pass") || !strcasecmp(k, "password")) {
            if (get_str(l, e, &o->ws_password))
                return -1;
        } else if (!strcasecmp(k, "token")) {
            if (get_str(l, e, &o->ws_auth_token))
                return -1;
        } else if (!strcasecmp(k, "timeout")) {
            /* seconds; nats-server takes any other type as 1 second */
            const conf_value *v = e->value;
            double secs = v->type == CONF_INT ? (double)v->u.i : v->type == CONF_FLOAT ? v->u.f : 1;
            if (!(secs >= 0) || secs > 1e9)
                return lerr(l, v->pos, "field \"timeout\": %g seconds is out of range", secs);
            int64_t ms = (int64_t)(secs * 1000 + 0.5);
            o->ws_auth_timeout_ms = secs > 0 && ms == 0 ? 1 : ms;
        } else if (!strcasecmp(k, "users") || !strcasecmp(k, "nkeys")) {
            /* nats-server: an unknown field (an error); ignoring it would open the door */
            return lerr(l, e->key_pos, "unknown field \"%s\"", k);
        } else {
            unknown(l, e);
        }
    }
    return 0;
}

static int do_websocket(loader *l, const conf_entry *top)
{
    const conf_value *m = top->value;
    if (m->type != CONF_MAP)
        return lerr(l, m->pos, "Expected websocket to be a map, got %s", a_type(m->type));
    ember_server_options *o = l->o;
    for (size_t i = 0; i < m->u.map.n; i++) {
        const conf_entry *e = &m->u.map.e[i];
        const char *k = e->key;
        int64_t n;
        if (!strcasecmp(k, "listen")) {
            /* parse as the client listen, then move the result */
            const char *h = o->host;
            int p = o->port;
            if (do_listen(l, e))
                return -1;
            o->ws_host = o->host;
            o->ws_port = o->port;
            o->host = h;
            o->port = p;
        } else if (!strcasecmp(k, "port")) {
            if (get_int(l, e, -1, 65535, &n))
                return -1;
            o->ws_port = (int)n;
        } else if (!strcasecmp(k, "host") || !strcasecmp(k, "net")) {
            if (get_str(l, e, &o->ws_host))
                return -1;
        } else if (!strcasecmp(k, "no_tls")) {
            if (get_bool(l, e, &o->ws_no_tls))
                return -1;
        } else if (!strcasecmp(k, "tls")) {
            if (do_tls(l, e, true))
                return -1;
        } else if (!strcasecmp(k, "compress") || !strcasecmp(k, "compression")) {
            if (get_bool(l, e, &o->ws_compression))
                return -1;
        } else if (!strcasecmp(k, "handshake_timeout")) {
            if (get_duration_ms(l, e, &o->ws_handshake_timeout_ms))
                return -1;
        } else if (!strcasecmp(k, "same_origin")) {
            if (get_bool(l, e, &o->ws_same_origin))
                return -1;
        } else if (key_in(k, ws_origins)) {
            if (get_str_array(l, e, &o->ws_allowed_origins, &o->ws_allowed_origins_count))
                return -1;
        } else if (!strcasecmp(k, "authorization") || !strcasecmp(k, "authentication")) {
            if (do_ws_authorization(l, e))
                return -1;
        } else if (!strcasecmp(k, "no_auth_user")) {
            if (get_str(l, e, &o->ws_no_auth_user))
                return -1;
        } else if (key_in(k, ws_ignored)) {
            lnote(l, EMBER_LOG_WARN, e->key_pos, "field \"%s\" is not supported by Ember, ignored",
                  k);
        } else {
            unknown(l, e);
        }
    }
    return 0;
}

static int do_top(loader *l, const conf_entry *e)
{
    const char *k = e->key;
    ember_server_options *o = l->o;
    int64_t n;
    bool b = false;
    if (!strcasecmp(k, "host") || !strcasecmp(k, "net"))
        return get_str(l, e, &o->host);
    if (!strcasecmp(k, "listen"))
        return do_listen(l, e);
    /* monitoring (nats-server: http_port / monitor_port, or http: "host:port") */
    if (!strcasecmp(k, "http_port") || !strcasecmp(k, "monitor_port")) {
        if (get_int(l, e, -1, 65535, &n))
            return -1;
        o->http_port = (int)n;
        return 0;
    }
    if (!strcasecmp(k, "http"))
        return parse_listen(l, e, &o->http_host, &o->http_port, NULL); /* NULL: as host */
    if (!strcasecmp(k, "port")) {
        if (get_int(l, e, -1, 65535, &n))
            return -1;
        o->port = (int)n;
        return 0;
    }
    if (!strcasecmp(k, "server_name")) {
        if (e->value->type == CONF_STRING && memchr(e->value->u.str.s, ' ', e->value->u.str.len))
            return lerr(l, e->value->pos, "server name cannot contain spaces");
        return get_str(l, e, &o->server_name);
    }
    if (!strcasecmp(k, "max_payload")) {
        if (get_int(l, e, 1, INT32_MAX, &n))
            return -1;
        o->max_payload = n;
        return 0;
    }
    if (!strcasecmp(k, "max_control_line")) {
        if (get_int(l, e, 1, INT32_MAX, &n))
            return -1;
        o->max_control_line = (int32_t)n;
        return 0;
    }
    if (!strcasecmp(k, "max_pending")) {
        if (get_int(l, e, 1, INT64_MAX, &n))
            return -1;
        o->max_pending = n;
        return 0;
    }
    if (!strcasecmp(k, "max_connections") || !strcasecmp(k, "max_conn")) {
        if (e->value->type == CONF_INT && e->value->u.i <= 0)
            return lerr(l, e->value->pos,
                        "field \"%s\": %lld would refuse every client in nats-server; Ember needs "
                        "a positive limit (or dont_listen)",
                        k, (long long)e->value->u.i);
        if (get_int(l, e, 1, INT32_MAX, &n))
            return -1;
        o->max_connections = (int32_t)n;
        return 0;
    }
    if (!strcasecmp(k, "max_subscriptions") || !strcasecmp(k, "max_subs")) {
        if (get_int(l, e, 0, INT32_MAX, &n))
            return -1;
        o->max_subscriptions = (int32_t)n;
        return 0;
    }
    if (!strcasecmp(k, "ping_interval"))
        return get_duration_ms(l, e, &o->ping_interval_ms);
    if (!strcasecmp(k, "ping_max") || !strcasecmp(k, "max_pings_out")) {
        if (get_int(l, e, 0, INT32_MAX, &n))
            return -1;
        o->max_pings_out = (int32_t)n;
        return 0;
    }
    if (!strcasecmp(k, "write_deadline"))
        return get_duration_ms(l, e, &o->write_deadline_ms);
    if (!strcasecmp(k, "authorization"))
        return do_authorization(l, e);
    if (!strcasecmp(k, "no_auth_user"))
        return get_str(l, e, &l->o->no_auth_user);
    if (!strcasecmp(k, "accounts"))
        return do_accounts(l, e);
    if (!strcasecmp(k, "operator") || !strcasecmp(k, "operators") || !strcasecmp(k, "root") ||
        !strcasecmp(k, "roots") || !strcasecmp(k, "root_operator") ||
        !strcasecmp(k, "root_operators") || !strcasecmp(k, "trusted_operators")) {
        const conf_value *v = e->value;
        if (v->type == CONF_ARRAY && v->u.arr.n == 1 && v->u.arr.v[0]->type == CONF_STRING)
            return cfg_keep(l, v->u.arr.v[0]->u.str.s, v->u.arr.v[0]->u.str.len, &o->operator_jwt);
        if (v->type == CONF_ARRAY)
            return lerr(l, v->pos, "field \"%s\": Ember takes one operator", k);
        return get_str(l, e, &o->operator_jwt);
    }
    if (!strcasecmp(k, "resolver")) {
        const conf_value *v = e->value;
        if (v->type == CONF_STRING && !strcasecmp(v->u.str.s, "MEMORY"))
            return 0;
        return lerr(l, v->pos, "resolver: Ember has the MEMORY resolver only (accounts from "
                    "resolver_preload)");
    }
    if (!strcasecmp(k, "resolver_preload"))
        return do_resolver_preload(l, e);
    if (!strcasecmp(k, "tls"))
        return do_tls(l, e, false);
    if (!strcasecmp(k, "websocket") || !strcasecmp(k, "ws"))
        return do_websocket(l, e);
    if (!strcasecmp(k, "jetstream"))
        return do_jetstream(l, e);
    if (!strcasecmp(k, "leafnodes") || !strcasecmp(k, "leaf"))
        return do_leafnodes(l, e);
    if (!strcasecmp(k, "store_dir") || !strcasecmp(k, "storedir"))
        return set_store_dir(l, e);
    if (!strcasecmp(k, "debug")) {
        if (get_bool(l, e, &b))
            return -1;
        l->debug = b;
        return 0;
    }
    if (!strcasecmp(k, "trace") || !strcasecmp(k, "trace_verbose") ||
        !strcasecmp(k, "trace_headers")) {
        if (get_bool(l, e, &b))
            return -1;
        l->trace = b;
        return 0;
    }
    if (!strcasecmp(k, "no_header_support"))
        return get_bool(l, e, &o->no_header_support);
    if (!strcasecmp(k, "dont_listen")) /* Ember's own */
        return get_bool(l, e, &o->dont_listen);
    if (key_in(k, top_refused))
        return refuse(l, e);
    if (key_in(k, top_unsupported)) {
        lnote(l, EMBER_LOG_WARN, e->key_pos, "field \"%s\" is not supported by Ember, ignored", k);
        return 0;
    }
    if (key_in(k, top_unused)) {
        lnote(l, EMBER_LOG_INFO, e->key_pos, "field \"%s\" is not used by Ember, ignored", k);
        return 0;
    }
    unknown(l, e);
    return 0;
}

/* ------------------------------------------------------------------ accounts */

static int get_str_list(loader *l, const conf_entry *e, const char **out);

/* The "stream" or "service" key of an export or import item: at most one kind per item
 * (nats-server's "Detected service but already saw a stream"). 0 or -1. */
static int stream_or_service(loader *l, const conf_entry *e, bool *stream, bool *service,
                             bool *is_svc)
{
    *is_svc = !strcasecmp(e->key, "service");
    if ((*is_svc && *stream) || (!*is_svc && *service))
        return lerr(l, e->key_pos, "Detected %s but already saw a %s", e->key,
                    *is_svc ? "stream" : "service");
    *stream |= !*is_svc;
    *service |= *is_svc;
    return 0;
}

/* exports: [ { stream: "a.>" }, { service: "q", accounts: [B], response_type: stream } ] */
static int do_exports(loader *l, const conf_entry *top, ember_account *a)
{
    const conf_value *v = top->value;
    if (v->type != CONF_ARRAY)
        return lerr(l, v->pos, "Exports should be an array, got %s", a_type(v->type));
    ember_export *xs = cfg_alloc(l, v->u.arr.n, sizeof *xs);
    if (!xs)
        return -1;
    a->exports = xs;
    a->exports_count = v->u.arr.n;
    for (size_t i = 0; i < v->u.arr.n; i++) {
        const conf_value *m = v->u.arr.v[i];
        ember_export *x = &xs[i];
        if (m->type != CONF_MAP)
            return lerr(l, m->pos, "Export Items should be a map with type entry, got %s",
                        a_type(m->type));
        bool stream = false, service = false, rt = false;
        for (size_t j = 0; j < m->u.map.n; j++) {
            const conf_entry *e = &m->u.map.e[j];
            const char *k = e->key;
            if (!strcasecmp(k, "stream") || !strcasecmp(k, "service")) {
                bool is_svc;
                if (stream_or_service(l, e, &stream, &service, &is_svc))
                    return -1;
                if (e->value->type != CONF_STRING)
                    return lerr(l, e->value->pos, "Expected %s name to be string, got %s", k,
                                a_type(e->value->type));
                if (get_str(l, e, &x->subject))
                    return -1;
                x->service = is_svc;
            } else if (!strcasecmp(k, "accounts")) {
                if (get_str_list(l, e, &x->accounts))
                    return -1;
            } else if (!strcasecmp(k, "response") || !strcasecmp(k, "response_type")) {
                if (rt)
                    return lerr(l, e->key_pos, "Duplicate response type definition");
                rt = true;
                const conf_value *t = e->value;
                if (t->type != CONF_STRING)
                    return lerr(l, t->pos, "Expected response type to be string, got %s",
                                a_type(t->type));
                if (!strcasecmp(t->u.str.s, "single") || !strcasecmp(t->u.str.s, "singleton"))
                    x->response_type = EMBER_RESPONSE_SINGLETON;
                else if (!strcasecmp(t->u.str.s, "stream"))
                    x->response_type = EMBER_RESPONSE_STREAM;
                else if (!strcasecmp(t->u.str.s, "chunk") || !strcasecmp(t->u.str.s, "chunked"))
                    x->response_type = EMBER_RESPONSE_CHUNKED;
                else
                    return lerr(l, t->pos, "Unknown response type: \"%s\"", t->u.str.s);
            } else if (!strcasecmp(k, "threshold") || !strcasecmp(k, "response_threshold") ||
                       !strcasecmp(k, "response_max_time") || !strcasecmp(k, "response_time")) {
                if (get_duration_ms(l, e, &x->response_threshold_ms))
                    return -1;
            } else if (!strcasecmp(k, "latency") || !strcasecmp(k, "allow_trace") ||
                       !strcasecmp(k, "account_token_position")) {
                lnote(l, EMBER_LOG_WARN, e->key_pos,
                      "field \"%s\" is not supported by Ember, ignored", k);
            } else {
                unknown(l, e);
            }
        }
        if (rt && !service)
            return lerr(l, m->pos, "Detected response directive on non-service");
        if (!x->subject)
            return lerr(l, m->pos, "Export Items should be a map with type entry");
    }
    return 0;
}

/* {account: B, subject: "x"} of an import */
static int import_source(loader *l, const conf_entry *e, ember_import *x)
{
    const conf_value *v = e->value;
    if (v->type != CONF_MAP)
        return lerr(l, v->pos, "%s entry should be an account map, got %s",
                    x->service ? "Service" : "Stream", a_type(v->type));
    for (size_t i = 0; i < v->u.map.n; i++) {
        const conf_entry *f = &v->u.map.e[i];
        if (!strcasecmp(f->key, "account")) {
            if (get_str(l, f, &x->account))
                return -1;
        } else if (!strcasecmp(f->key, "subject")) {
            if (get_str(l, f, &x->subject))
                return -1;
        } else {
            unknown(l, f);
        }
    }
    if (!x->account || !x->subject)
        return lerr(l, v->pos, "Expect an account name and a subject");
    return 0;
}

/* imports: [ { stream: {account: A, subject: "a.>"}, prefix: "x" },
 *            { service: {account: A, subject: "q"}, to: "aq" } ] */
static int do_imports(loader *l, const conf_entry *top, ember_account *a)
{
    const conf_value *v = top->value;
    if (v->type != CONF_ARRAY)
        return lerr(l, v->pos, "Imports should be an array, got %s", a_type(v->type));
    ember_import *xs = cfg_alloc(l, v->u.arr.n, sizeof *xs);
    if (!xs)
        return -1;
    a->imports = xs;
    a->imports_count = v->u.arr.n;
    for (size_t i = 0; i < v->u.arr.n; i++) {
        const conf_value *m = v->u.arr.v[i];
        ember_import *x = &xs[i];
        if (m->type != CONF_MAP)
            return lerr(l, m->pos, "Import Items should be a map with type entry, got %s",
                        a_type(m->type));
        bool stream = false, service = false;
        for (size_t j = 0; j < m->u.map.n; j++) {
            const conf_entry *e = &m->u.map.e[j];
            const char *k = e->key;
            if (!strcasecmp(k, "stream") || !strcasecmp(k, "service")) {
                bool is_svc;
                if (stream_or_service(l, e, &stream, &service, &is_svc))
                    return -1;
                x->service = is_svc;
                if (import_source(l, e, x))
                    return -1;
            } else if (!strcasecmp(k, "prefix")) {
                if (get_str(l, e, &x->prefix))
                    return -1;
            } else if (!strcasecmp(k, "to")) {
                if (get_str(l, e, &x->to))
                    return -1;
            } else if (!strcasecmp(k, "share") || !strcasecmp(k, "allow_trace")) {
                lnote(l, EMBER_LOG_WARN, e->key_pos,
                      "field \"%s\" is not supported by Ember, ignored", k);
            } else {
                unknown(l, e);
            }
        }
        if (stream && x->prefix && x->to)
            return lerr(l, m->pos, "Stream import can not have a 'prefix' and a 'to' property");
        if (!stream && !service)
            return lerr(l, m->pos, "Import Items should be a map with type entry");
    }
    return 0;
}

/* jetstream: enabled | disabled | true | false | { max_mem, max_file, ... } */
static int do_account_js(loader *l, const conf_entry *top, ember_account *a)
{
    const conf_value *v = top->value;
    if (v->type == CONF_BOOL) {
        a->jetstream = v->u.b;
        return 0;
    }
    if (v->type == CONF_STRING) {
        const char *s = v->u.str.s;
        if (!strcasecmp(s, "enabled") || !strcasecmp(s, "enable"))
            a->jetstream = true;
        else if (!strcasecmp(s, "disabled") || !strcasecmp(s, "disable"))
            a->jetstream = false;
        else
            return lerr(l, v->pos, "Expected 'enabled' or 'disabled' for string value, got '%s'", s);
        return 0;
    }
    if (v->type != CONF_MAP)
        return wrong_type(l, top, "a boolean, \"enabled\", \"disabled\" or a map");
    a->jetstream = true;
    for (size_t i = 0; i < v->u.map.n; i++) {
        const conf_entry *e = &v->u.map.e[i];
        const char *k = e->key;
        if (!strcasecmp(k, "max_memory") || !strcasecmp(k, "max_mem") ||
            !strcasecmp(k, "mem") || !strcasecmp(k, "memory")) {
            if (get_storage_size(l, e, "max_mem", &a->jetstream_max_memory))
                return -1;
        } else if (!strcasecmp(k, "max_store") || !strcasecmp(k, "max_file") ||
                   !strcasecmp(k, "max_disk") || !strcasecmp(k, "store") || !strcasecmp(k, "disk")) {
            if (get_storage_size(l, e, "max_file", &a->jetstream_max_store))
                return -1;
        } else if (!strcasecmp(k, "max_streams") || !strcasecmp(k, "streams") ||
                   !strcasecmp(k, "max_consumers") || !strcasecmp(k, "consumers") ||
                   !strcasecmp(k, "max_bytes_required") || !strcasecmp(k, "max_ack_pending") ||
                   !strcasecmp(k, "cluster_traffic")) {
            lnote(l, EMBER_LOG_WARN, e->key_pos, "field \"%s\" is not supported by Ember, ignored",
                  k);
        } else {
            unknown(l, e);
        }
    }
    return 0;
}

/* resolver_preload: { <account public key>: <account JWT> } */
static int do_resolver_preload(loader *l, const conf_entry *top)
{
    const conf_value *v = top->value;
    if (v->type != CONF_MAP)
        return wrong_type(l, top, "a map of account public keys to JWTs");
    const char **jwts = cfg_alloc(l, v->u.map.n, sizeof *jwts);
    if (!jwts)
        return -1;
    for (size_t i = 0; i < v->u.map.n; i++)
        if (get_str(l, &v->u.map.e[i], &jwts[i]))
            return -1;
    l->o->account_jwts = jwts;
    l->o->account_jwts_count = v->u.map.n;
    return 0;
}

static int do_accounts(loader *l, const conf_entry *top)
{
    const conf_value *v = top->value;
    if (l->o->accounts_count)
        return lerr(l, top->key_pos, "Duplicate 'accounts' configuration");
    if (v->type == CONF_ARRAY) { /* accounts: [A, B] */
        ember_account *as = cfg_alloc(l, v->u.arr.n, sizeof *as);
        if (!as)
            return -1;
        for (size_t i = 0; i < v->u.arr.n; i++) {
            const conf_value *n = v->u.arr.v[i];
            if (n->type != CONF_STRING)
                return lerr(l, n->pos, "Expected account names to be strings, got %s",
                            a_type(n->type));
            if (!strcmp(n->u.str.s, "$G"))
                return lerr(l, n->pos, "\"%s\" is a Reserved Account", n->u.str.s);
            for (size_t k = 0; k < i; k++)
                if (!strcmp(as[k].name, n->u.str.s))
                    return lerr(l, n->pos, "Duplicate Account Entry: %s", n->u.str.s);
            if (cfg_keep(l, n->u.str.s, n->u.str.len, &as[i].name))
                return -1;
        }
        l->o->accounts = as;
        l->o->accounts_count = v->u.arr.n;
        return 0;
    }
    if (v->type != CONF_MAP)
        return wrong_type(l, top, "a map or an array of names");
    ember_account *as = cfg_alloc(l, v->u.map.n, sizeof *as);
    if (!as)
        return -1;
    size_t na = 0;
    for (size_t i = 0; i < v->u.map.n; i++) {
        const conf_entry *ae = &v->u.map.e[i];
        if (ae->used) /* a $variable defined in the block */
            continue;
        if (ae->value->type != CONF_MAP)
            return lerr(l, ae->value->pos, "Expected map entries for accounts");
        if (!strcmp(ae->key, "$G"))
            return lerr(l, ae->key_pos, "\"%s\" is a Reserved Account", ae->key);
        ember_account *a = &as[na++];
        if (cfg_keep(l, ae->key, strlen(ae->key), &a->name))
            return -1;
        ember_user defaults;
        bool have_defaults = false;
        const conf_entry *users_e = NULL;
        const conf_value *m = ae->value;
        for (size_t j = 0; j < m->u.map.n; j++) {
            const conf_entry *e = &m->u.map.e[j];
            const char *k = e->key;
            int rc = 0;
            if (!strcasecmp(k, "users")) {
                if (e->value->type != CONF_ARRAY)
                    return wrong_type(l, e, "an array");
                ember_user *us = cfg_alloc(l, e->value->u.arr.n, sizeof *us);
                if (!us)
                    return -1;
                a->users = us;
                a->users_count = e->value->u.arr.n;
                users_e = e;
                rc = parse_users(l, e->value, us);
            } else if (!strcasecmp(k, "exports")) {
                rc = do_exports(l, e, a);
            } else if (!strcasecmp(k, "imports")) {
                rc = do_imports(l, e, a);
            } else if (!strcasecmp(k, "jetstream")) {
                rc = do_account_js(l, e, a);
            } else if (!strcasecmp(k, "default_permissions") ||
                       !strcasecmp(k, "default_permission")) {
                memset(&defaults, 0, sizeof defaults);
                rc = do_permissions(l, e, &defaults);
                have_defaults = true;
            } else if (!strcasecmp(k, "nkey") || !strcasecmp(k, "mappings") ||
                       !strcasecmp(k, "maps") || !strcasecmp(k, "limits") ||
                       !strcasecmp(k, "msg_trace") || !strcasecmp(k, "trace_dest")) {
                rc = refuse(l, e);
            } else if (!e->used) {
                return lerr(l, e->key_pos, "unknown field \"%s\"", k);
            }
            if (rc)
                return -1;
        }
        if (users_e && (l->o->username || l->o->auth_token))
            return lerr(l, users_e->key_pos, l->o->username
                                                 ? "Can not have a single user/pass and accounts"
                                                 : "Can not have a token and accounts");
        apply_defaults((ember_user *)a->users, a->users_count, have_defaults ? &defaults : NULL);
    }
    l->o->accounts = as;
    l->o->accounts_count = na;
    return 0;
}

/* ------------------------------------------------------------------ leafnodes */

/* A string or an array of strings, kept as one comma-separated string. */
static int get_str_list(loader *l, const conf_entry *e, const char **out)
{
    const conf_value *v = e->value;
    if (v->type == CONF_STRING)
        return get_str(l, e, out);
    if (v->type != CONF_ARRAY)
        return wrong_type(l, e, "a string or an array of strings");
    size_t n = 0;
    for (size_t i = 0; i < v->u.arr.n; i++) {
        const conf_value *x = v->u.arr.v[i];
        if (x->type != CONF_STRING || memchr(x->u.str.s, 0, x->u.str.len))
            return lerr(l, x->pos, "field \"%s\": expected strings in the array, got %s", e->key,
                        a_type(x->type));
        n += x->u.str.len + 1;
    }
    char *buf = malloc(n + 1);
    if (!buf)
        return nomem(l);
    size_t at = 0;
    for (size_t i = 0; i < v->u.arr.n; i++) {
        const conf_value *x = v->u.arr.v[i];
        if (i)
            buf[at++] = ',';
        memcpy(buf + at, x->u.str.s, x->u.str.len);
        at += x->u.str.len;
    }
    int rc = cfg_keep(l, buf, at, out);
    free(buf);
    return rc;
}

/* tls { cert_file, key_file, ca_file, verify | insecure } of leafnodes or of a remote. */
static int do_leaf_tls(loader *l, const conf_entry *top, const char **cert, const char **key,
                       const char **ca, bool *verify, bool *insecure, bool *on)
{
    const conf_value *m = top->value;
    if (m->type != CONF_MAP)
        return wrong_type(l, top, "a map");
    if (on)
        *on = true;
    for (size_t i = 0; i < m->u.map.n; i++) {
        const conf_entry *e = &m->u.map.e[i];
        const char *k = e->key;
        int rc = 0;
        if (!strcasecmp(k, "cert_file"))
            rc = get_str(l, e, cert);
        else if (!strcasecmp(k, "key_file"))
            rc = get_str(l, e, key);
        else if (!strcasecmp(k, "ca_file"))
            rc = get_str(l, e, ca);
        else if (!strcasecmp(k, "verify") && verify)
            rc = get_bool(l, e, verify);
        else if (!strcasecmp(k, "insecure") && insecure)
            rc = get_bool(l, e, insecure);
        else if (!strcasecmp(k, "timeout") || !strcasecmp(k, "cipher_suites") ||
                 !strcasecmp(k, "curve_preferences") || !strcasecmp(k, "min_version") ||
                 !strcasecmp(k, "handshake_first"))
            lnote(l, EMBER_LOG_INFO, e->key_pos, "field \"%s\" is not used by Ember, ignored", k);
        else if (!strcasecmp(k, "verify_and_map") || !strcasecmp(k, "pinned_certs") ||
                 !strcasecmp(k, "cert_store") || !strcasecmp(k, "cert_match") ||
                 !strcasecmp(k, "ocsp_peer") || !strcasecmp(k, "verify_cert_and_check_known_urls"))
            rc = refuse(l, e);
        else
            unknown(l, e);
        if (rc)
            return -1;
    }
    return 0;
}

static int do_leaf_remote(loader *l, const conf_value *m, ember_leaf_remote *r)
{
    if (m->type != CONF_MAP)
        return lerr(l, m->pos, "leafnodes remotes: expected a map for each remote, got %s",
                    a_type(m->type));
    for (size_t i = 0; i < m->u.map.n; i++) {
        const conf_entry *e = &m->u.map.e[i];
        const char *k = e->key;
        int rc = 0;
        if (!strcasecmp(k, "url") || !strcasecmp(k, "urls"))
            rc = get_str_list(l, e, &r->urls);
        else if (!strcasecmp(k, "account") || !strcasecmp(k, "local"))
            rc = get_str(l, e, &r->account);
        else if (!strcasecmp(k, "deny_imports") || !strcasecmp(k, "deny_import"))
            rc = get_str_list(l, e, &r->deny_imports);
        else if (!strcasecmp(k, "deny_exports") || !strcasecmp(k, "deny_export"))
            rc = get_str_list(l, e, &r->deny_exports);
        else if (!strcasecmp(k, "tls"))
            rc = do_leaf_tls(l, e, &r->tls_cert_file, &r->tls_key_file, &r->tls_ca_file, NULL,
                             &r->tls_insecure, &r->tls);
        else if (!strcasecmp(k, "credentials") || !strcasecmp(k, "creds"))
            rc = get_str(l, e, &r->credentials);
        else if (!strcasecmp(k, "nkey") || !strcasecmp(k, "seed"))
            rc = get_str(l, e, &r->nkey_seed);
        else if (!strcasecmp(k, "ws_compression") || !strcasecmp(k, "ws_no_masking"))
            rc = refuse(l, e);
        else if (!strcasecmp(k, "compression") || !strcasecmp(k, "hub") ||
                 !strcasecmp(k, "first_info_timeout") || !strcasecmp(k, "no_randomize") ||
                 !strcasecmp(k, "dont_randomize"))
            lnote(l, EMBER_LOG_INFO, e->key_pos, "field \"%s\" is not used by Ember, ignored", k);
        else
            unknown(l, e);
        if (rc)
            return -1;
    }
    if (!r->urls)
        return lerr(l, m->pos, "leafnodes remote: missing \"url\"");
    return 0;
}

static int do_leafnodes(loader *l, const conf_entry *top)
{
    const conf_value *m = top->value;
    if (m->type != CONF_MAP)
        return wrong_type(l, top, "a map");
    ember_server_options *o = l->o;
    for (size_t i = 0; i < m->u.map.n; i++) {
        const conf_entry *e = &m->u.map.e[i];
        const char *k = e->key;
        int64_t n;
        if (!strcasecmp(k, "host") || !strcasecmp(k, "net")) {
            if (get_str(l, e, &o->leaf_host))
                return -1;
        } else if (!strcasecmp(k, "port")) {
            if (get_int(l, e, -1, 65535, &n))
                return -1;
            o->leaf_port = (int)n;
        } else if (!strcasecmp(k, "listen")) {
            /* "host:port" or a port */
            if (e->value->type == CONF_INT) {
                if (get_int(l, e, -1, 65535, &n))
                    return -1;
                o->leaf_port = (int)n;
                continue;
            }
            const char *hp;
            if (get_str(l, e, &hp))
                return -1;
            const char *colon = strrchr(hp, ':');
            char *end = NULL;
            long port = colon ? strtol(colon + 1, &end, 10) : -2;
            if (!colon || end == colon + 1 || *end || port < -1 || port > 65535)
                return lerr(l, e->value->pos, "could not parse address string \"%s\"", hp);
            o->leaf_port = (int)port;
            if (colon > hp && cfg_keep(l, hp, (size_t)(colon - hp), &o->leaf_host))
                return -1;
        } else if (!strcasecmp(k, "reconnect") || !strcasecmp(k, "reconnect_delay") ||
                   !strcasecmp(k, "reconnect_interval")) {
            if (get_duration_ms(l, e, &o->leaf_reconnect_ms))
                return -1;
        } else if (!strcasecmp(k, "authorization")) {
            const conf_value *a = e->value;
            if (a->type != CONF_MAP)
                return wrong_type(l, e, "a map");
            for (size_t j = 0; j < a->u.map.n; j++) {
                const conf_entry *x = &a->u.map.e[j];
                if (!strcasecmp(x->key, "user") || !strcasecmp(x->key, "username")) {
                    if (get_str(l, x, &o->leaf_username))
                        return -1;
                } else if (!strcasecmp(x->key, "pass") || !strcasecmp(x->key, "password")) {
                    if (get_str(l, x, &o->leaf_password))
                        return -1;
                } else if (!strcasecmp(x->key, "timeout")) {
                    lnote(l, EMBER_LOG_INFO, x->key_pos,
                          "field \"timeout\" is not used by Ember, ignored");
                } else if (!strcasecmp(x->key, "users") || !strcasecmp(x->key, "account") ||
                           !strcasecmp(x->key, "nkey")) {
                    if (refuse(l, x))
                        return -1;
                } else {
                    unknown(l, x);
                }
            }
        } else if (!strcasecmp(k, "remotes")) {
            const conf_value *a = e->value;
            if (a->type != CONF_ARRAY)
                return wrong_type(l, e, "an array");
            ember_leaf_remote *rs = calloc(a->u.arr.n ? a->u.arr.n : 1, sizeof *rs);
            if (!rs)
                return nomem(l);
            free(l->cfg->remotes);
            l->cfg->remotes = rs;
            l->cfg->nremotes = a->u.arr.n;
            for (size_t j = 0; j < a->u.arr.n; j++)
                if (do_leaf_remote(l, a->u.arr.v[j], &rs[j]))
                    return -1;
            o->leaf_remotes = rs;
            o->leaf_remotes_count = a->u.arr.n;
        } else if (!strcasecmp(k, "tls")) {
            if (do_leaf_tls(l, e, &o->leaf_tls_cert_file, &o->leaf_tls_key_file,
                            &o->leaf_tls_ca_file, &o->leaf_tls_verify, NULL, NULL))
                return -1;
        } else if (!strcasecmp(k, "advertise") || !strcasecmp(k, "no_advertise") ||
                   !strcasecmp(k, "compression") || !strcasecmp(k, "min_version") ||
                   !strcasecmp(k, "isolate_leafnode_interest") ||
                   !strcasecmp(k, "write_deadline")) {
            lnote(l, EMBER_LOG_INFO, e->key_pos, "field \"%s\" is not used by Ember, ignored", k);
        } else {
            unknown(l, e);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ public */

EMBER_API void ember_config_free(ember_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->remotes);
    free(cfg->users);
    for (size_t i = 0; i < cfg->nblocks; i++)
        free(cfg->blocks[i]);
    free(cfg->blocks);
    for (size_t i = 0; i < cfg->n; i++)
        free(cfg->strs[i]);
    free(cfg->strs);
    free(cfg);
}

EMBER_API int ember_config_load(ember_config **out, const char *path, ember_server_options *opts)
{
    if (out)
        *out = NULL;
    if (!out || !path || !opts)
        return err_set(EMBER_EINVAL, "out, path and opts must not be NULL");
    if (opts->size == 0 || opts->size > sizeof(ember_server_options))
        return err_set(EMBER_EINVAL, "options not initialised with ember_server_options_init");

    ember_server_options o;
    memset(&o, 0, sizeof o);
    memcpy(&o, opts, opts->size);
    loader l = {.o = &o, .log_fn = o.log_fn, .log_ud = o.log_userdata, .log_level = o.log_level,
                .debug = -1, .trace = -1};
    if (!(l.cfg = calloc(1, sizeof *l.cfg)))
        return err_set(EMBER_ENOMEM, "out of memory");

    conf_doc *doc = NULL;
    conf_error cerr;
    int rc = conf_parse_file(&doc, path, NULL, &cerr);
    if (rc) {
        ember_config_free(l.cfg);
        return err_set(rc, "%s", cerr.text);
    }
    const conf_value *root = conf_doc_root(doc);
    if (root->u.map.n == 0) {
        conf_pos none = {0};
        lnote(&l, EMBER_LOG_WARN, none, "%s: config has no values or is empty", path);
    }
    for (size_t i = 0; i < root->u.map.n; i++)
        if (do_top(&l, &root->u.map.e[i]))
            break;
    conf_doc_free(doc);
    free(l.seen_users);
    if (l.code) {
        ember_config_free(l.cfg);
        return err_set(l.code, "%s", l.err);
    }
    if (l.trace == 1)
        o.log_level = EMBER_LOG_TRACE;
    else if (l.debug == 1)
        o.log_level = EMBER_LOG_DEBUG;
    else if ((l.trace == 0 || l.debug == 0) && o.log_level > EMBER_LOG_INFO)
        o.log_level = EMBER_LOG_INFO;
    memcpy(opts, &o, opts->size);
    *out = l.cfg;
    return EMBER_OK;
}
