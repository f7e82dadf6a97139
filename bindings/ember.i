/*
 * ember.i: one SWIG interface over ember.h, for Tcl and Perl (and any other SWIG target
 * with the unified typemap library; per-language code is marked SWIGTCL / SWIGPERL).
 *
 * The shape, in every language:
 *  - Names lose their ember_ prefix: ember_conn_publish is conn_publish (Tcl:
 *    ember::conn_publish, Perl: Ember::conn_publish); constants keep theirs (EMBER_OK,
 *    EMBER_DELIVER_POLL).
 *  - A negative status is an exception (Tcl: error with errorCode {EMBER <NAME> <code>};
 *    Perl: die), whose message is "ember: <ember_last_error()> (<NAME>)", e.g.
 *    "ember: wrong last sequence: 4 (10071) (EWRONGSEQ)". status_name(code) and
 *    last_status() name and return the code of the last exception of this thread.
 *  - Out-parameters are return values: server_new(opts) returns the server,
 *    conn_connect(srv, NULL) the connection, sub_next_msg(sub, ms) the message,
 *    kv_put(kv, key, value) the revision, kv_keys(kv) a list. A status-only function
 *    returns nothing.
 *  - (const void *data, size_t len) is one binary-safe string argument; msg_data(m) and
 *    kv_entry value are binary-safe strings. Optional strings (reply, queue, filter) may
 *    be NULL/undef or "" for none.
 *  - No target-language callback: subscriptions are made without one (fn, userdata and
 *    free_userdata are not arguments) and read with sub_next_msg(sub, timeout_ms). The
 *    functions that need a callback (server_set_logger, js_publish_async, kv_put_async,
 *    kv_watch) are not wrapped.
 *  - Option structs (server_options, conn_options, stream_config, consumer_config,
 *    kv_config) are objects whose constructor runs the matching *_init; their string
 *    fields keep a process-lifetime copy of what is assigned (distinct values only).
 *  - Ownership: servers, connections and bucket handles are freed explicitly
 *    (server_free, conn_close, kv_close, obj_close), in that order reversed. Messages, KV
 *    entries and object infos returned to Perl are released by Perl's garbage collector;
 *    in Tcl, release them with msg_release / kv_entry_free / obj_info_free (or let them
 *    go with the process).
 *  - Object store: obj_put(obj, name, data, opts) returns the info; obj_get(obj, name)
 *    the data and the info; obj_list(obj) the names; streaming with obj_writer_open /
 *    obj_writer_write / obj_writer_commit and obj_reader_open / obj_reader_read(r, cap)
 *    (bytes, "" at the end) / obj_reader_close.
 */
%module ember

%{
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"

/* ---- strings assigned to option fields: interned for the life of the process, since
 * the options borrow them (each distinct value is kept once) */
typedef struct ember_swig_interned {
    struct ember_swig_interned *next;
    const char **list; /* set_subjects: the split list, NULL-terminated */
    size_t n;
    char s[];
} ember_swig_interned;
static ember_swig_interned *ember_swig_strings;
static pthread_mutex_t ember_swig_strings_mu = PTHREAD_MUTEX_INITIALIZER;

static ember_swig_interned *ember_swig_intern_node(const char *s, int split)
{
    pthread_mutex_lock(&ember_swig_strings_mu);
    ember_swig_interned *p;
    for (p = ember_swig_strings; p; p = p->next)
        if (strcmp(p->s, s) == 0 && (!split || p->list))
            break;
    if (!p) {
        size_t len = strlen(s);
        p = calloc(1, sizeof *p + len + 1);
        if (p) {
            memcpy(p->s, s, len + 1);
            if (split) {
                /* "a.> b.*" or "a.>,b.*": each subject is a token of its own copy */
                char *copy = strdup(s);
                p->list = calloc(len / 2 + 2, sizeof *p->list);
                if (!copy || !p->list) {
                    free(copy);
                    free(p->list);
                    free(p);
                    p = NULL;
                } else {
                    char *save = NULL;
                    for (char *t = strtok_r(copy, " ,\t", &save); t; t = strtok_r(NULL, " ,\t", &save))
                        p->list[p->n++] = t;
                }
            }
            if (p) {
                p->next = ember_swig_strings;
                ember_swig_strings = p;
            }
        }
    }
    pthread_mutex_unlock(&ember_swig_strings_mu);
    return p;
}

static const char *ember_swig_intern(const char *s)
{
    if (!s)
        return NULL;
    ember_swig_interned *p = ember_swig_intern_node(s, 0);
    return p ? p->s : NULL;
}

/* ---- errors */
static const char *ember_status_name(int status)
{
    switch (status) {
    case EMBER_OK: return "OK";
    case EMBER_EINVAL: return "EINVAL";
    case EMBER_ETIMEDOUT: return "ETIMEDOUT";
    case EMBER_ENORESPONDERS: return "ENORESPONDERS";
    case EMBER_ECLOSED: return "ECLOSED";
    case EMBER_EMAXPAYLOAD: return "EMAXPAYLOAD";
    case EMBER_ENOTFOUND: return "ENOTFOUND";
    case EMBER_EEXISTS: return "EEXISTS";
    case EMBER_EWRONGSEQ: return "EWRONGSEQ";
    case EMBER_ESLOWCONSUMER: return "ESLOWCONSUMER";
    case EMBER_EIO: return "EIO";
    case EMBER_ENOMEM: return "ENOMEM";
    case EMBER_ELIMIT: return "ELIMIT";
    case EMBER_ESTATE: return "ESTATE";
    default: return "EUNKNOWN";
    }
}

static _Thread_local int ember_swig_last;
static int ember_last_status(void) { return ember_swig_last; }

/* "ember: <detail> (<NAME>)" in buf */
static const char *ember_swig_message(int rc, char *buf, size_t cap)
{
    const char *d = ember_last_error();
    snprintf(buf, cap, "ember: %s (%s)", d && *d ? d : ember_strerror(rc), ember_status_name(rc));
    ember_swig_last = rc;
    return buf;
}

#if defined(SWIGTCL)
static void ember_swig_raise(Tcl_Interp *interp, int rc)
{
    char buf[1200], code[16];
    Tcl_SetObjResult(interp, Tcl_NewStringObj(ember_swig_message(rc, buf, sizeof buf), -1));
    snprintf(code, sizeof code, "%d", rc);
    Tcl_SetErrorCode(interp, "EMBER", ember_status_name(rc), code, NULL);
}
#define EMBER_RAISE(rc) do { ember_swig_raise(interp, (rc)); SWIG_fail; } while (0)
#elif defined(SWIGPERL)
#define EMBER_RAISE(rc) do { \
        char ember_buf_[1200]; \
        sv_setpv(get_sv("@", GV_ADD), ember_swig_message((rc), ember_buf_, sizeof ember_buf_)); \
        SWIG_fail; \
    } while (0)
#else
#define EMBER_RAISE(rc) do { \
        char ember_buf_[1200]; \
        SWIG_exception_fail(SWIG_RuntimeError, ember_swig_message((rc), ember_buf_, sizeof ember_buf_)); \
    } while (0)
#endif

/* a binary-safe result object */
#if defined(SWIGTCL)
#if TCL_MAJOR_VERSION < 9
typedef int Tcl_Size;
#endif
#define EMBER_BYTES_OBJ(p, n) Tcl_NewByteArrayObj((const unsigned char *)(p), (Tcl_Size)(n))
#else
#define EMBER_BYTES_OBJ(p, n) SWIG_FromCharPtrAndSize((p), (n))
#endif

%}

%include <stdint.i>

/* ------------------------------------------------------------------ names */

%rename("%(strip:[ember_])s") "";
/* the status helpers keep readable names */
%rename(status_name) ember_status_name;
%rename(last_status) ember_last_status;
const char *ember_status_name(int status);
int ember_last_status(void);

/* ------------------------------------------------------------------ status returns */

/* Functions returning 0 or a negative status: raise on < 0, return nothing (their
 * out-parameters are the results). */
%typemap(out) int EMBER_STATUS {
    if ($1 < 0)
        EMBER_RAISE($1);
}
/* Functions returning a count, a descriptor or a port (>= 0) or a negative status. */
%typemap(out, fragment=SWIG_From_frag(int)) int EMBER_COUNT {
    if ($1 < 0)
        EMBER_RAISE($1);
    %set_output(SWIG_From_int($1));
}

%apply int EMBER_STATUS {
    int ember_config_load, int ember_server_new, int ember_server_start,
    int ember_server_wait_for_shutdown, int ember_server_log_to_file,
    int ember_msg_new, int ember_msg_header_add, int ember_msg_header_set,
    int ember_msg_header_delete, int ember_msg_header_values,
    int ember_conn_connect, int ember_conn_publish, int ember_conn_publish_msg,
    int ember_conn_subscribe, int ember_conn_request, int ember_conn_request_msg,
    int ember_msg_respond, int ember_conn_flush, int ember_conn_drain,
    int ember_sub_next_msg, int ember_sub_unsubscribe, int ember_sub_auto_unsubscribe,
    int ember_sub_set_pending_limits,
    int ember_js_stream_create, int ember_js_stream_delete, int ember_js_stream_purge,
    int ember_js_stream_info, int ember_js_publish, int ember_js_get, int ember_js_get_last,
    int ember_js_delete_msg, int ember_js_consumer_create, int ember_js_consumer_delete,
    int ember_js_consumer_info, int ember_js_fetch, int ember_js_ack, int ember_js_nak,
    int ember_js_in_progress, int ember_js_term, int ember_js_msg_meta,
    int ember_kv_bucket_create, int ember_kv_bucket_open, int ember_kv_bucket_delete,
    int ember_kv_get, int ember_kv_get_revision, int ember_kv_put, int ember_kv_create,
    int ember_kv_update, int ember_kv_delete, int ember_kv_purge, int ember_kv_keys,
    int ember_kv_history,
    int ember_obj_bucket_create, int ember_obj_bucket_open, int ember_obj_bucket_delete,
    int ember_obj_put, int ember_obj_get, int ember_obj_get_info, int ember_obj_list,
    int ember_obj_delete, int ember_obj_writer_open, int ember_obj_writer_write,
    int ember_obj_writer_commit, int ember_obj_reader_open,
    int ember_server_monitor
};
%apply int EMBER_COUNT {
    int ember_conn_poll, int ember_conn_fd, int ember_server_port, int ember_msg_status,
    int ember_server_monitor_port
};

/* ------------------------------------------------------------------ out-parameters */

/* T **out -> the new object. own: the target language releases it (Perl: through the
 * proxy's destructor) */
%define EMBER_OUT_PTR(TYPE, NAME, OWN)
%typemap(in, numinputs=0) TYPE **NAME (TYPE *tmp = NULL) "$1 = &tmp;"
%typemap(argout) TYPE **NAME {
    %set_output(SWIG_NewPointerObj(%as_voidptr(tmp$argnum), $descriptor(TYPE *), OWN));
}
%enddef

#if defined(SWIGPERL)
#define EMBER_OWN SWIG_POINTER_OWN | %newpointer_flags
#else
#define EMBER_OWN 0
#endif

EMBER_OUT_PTR(ember_config, out, 0)
EMBER_OUT_PTR(ember_server, out, 0)
EMBER_OUT_PTR(ember_conn, out, 0)
EMBER_OUT_PTR(ember_sub, out, 0)
EMBER_OUT_PTR(ember_kv, out, 0)
EMBER_OUT_PTR(ember_msg, out, EMBER_OWN)
EMBER_OUT_PTR(ember_msg, reply, EMBER_OWN)
EMBER_OUT_PTR(ember_kv_entry, out, EMBER_OWN)
EMBER_OUT_PTR(ember_obj, out, 0)
EMBER_OUT_PTR(ember_obj_writer, out, 0)
EMBER_OUT_PTR(ember_obj_reader, out, 0)
EMBER_OUT_PTR(ember_obj_info, out, EMBER_OWN)
/* the object's info from put, get and commit: returned after the other results */
%typemap(in, numinputs=0) ember_obj_info **info (ember_obj_info *tmp = NULL) "$1 = &tmp;"
%typemap(argout) ember_obj_info **info {
    %append_output(SWIG_NewPointerObj(%as_voidptr(tmp$argnum), $descriptor(ember_obj_info *), EMBER_OWN));
}

/* uint64_t *revision, *purged -> the number */
%typemap(in, numinputs=0) uint64_t *revision (uint64_t tmp = 0), uint64_t *purged (uint64_t tmp = 0)
    "$1 = &tmp;"
%typemap(argout, fragment=SWIG_From_frag(unsigned long long)) uint64_t *revision, uint64_t *purged {
    %set_output(SWIG_From_unsigned_SS_long_SS_long((unsigned long long)tmp$argnum));
}

/* ember_js_publish's ack -> the stream sequence */
%typemap(in, numinputs=0) ember_pub_ack *ack (ember_pub_ack tmp) "memset(&tmp, 0, sizeof tmp); $1 = &tmp;"
%typemap(argout, fragment=SWIG_From_frag(unsigned long long)) ember_pub_ack *ack {
    %set_output(SWIG_From_unsigned_SS_long_SS_long((unsigned long long)tmp$argnum.seq));
}

/* ember_server_monitor's JSON -> the JSON text (docs/monitoring.md) */
%typemap(in, numinputs=0) char **json_out (char *j = NULL) "$1 = &j;"
%typemap(argout, fragment="SWIG_FromCharPtr") char **json_out {
    %set_output(SWIG_FromCharPtr(j$argnum));
}
%typemap(freearg) char **json_out "ember_free(j$argnum);"

/* ember_js_consumer_create's name buffer -> the consumer's name */
%typemap(in, numinputs=0) (char *name, size_t cap) (char buf[256]) "buf[0] = 0; $1 = buf; $2 = sizeof buf;"
%typemap(argout, fragment="SWIG_FromCharPtr") (char *name, size_t cap) {
    %set_output(SWIG_FromCharPtr(buf$argnum));
}

/* lists: kv_keys -> the keys; msg_header_values -> the values; js_fetch -> messages;
 * kv_history -> entries. Perl: a list; Tcl: a list. */
%typemap(in, numinputs=0) (char ***keys, size_t *n) (char **k = NULL, size_t n = 0) "$1 = &k; $2 = &n;"
%typemap(argout, fragment="SWIG_FromCharPtr") (char ***keys, size_t *n) {
    for (size_t i = 0; i < n$argnum; i++) {
        %append_output(SWIG_FromCharPtr(k$argnum[i]));
    }
}
%typemap(freearg) (char ***keys, size_t *n) "free(k$argnum);"
/* obj_list -> the names */
%typemap(in, numinputs=0) (char ***names, size_t *n) (char **k = NULL, size_t n = 0) "$1 = &k; $2 = &n;"
%typemap(argout, fragment="SWIG_FromCharPtr") (char ***names, size_t *n) {
    for (size_t i = 0; i < n$argnum; i++) {
        %append_output(SWIG_FromCharPtr(k$argnum[i]));
    }
}
%typemap(freearg) (char ***names, size_t *n) "free(k$argnum);"

%typemap(in, numinputs=0) (const char **values, int cap) (const char *v[64]) "$1 = ($1_ltype)v; $2 = 64;"
%typemap(argout, fragment="SWIG_FromCharPtr") (const char **values, int cap) {
    for (int i = 0; i < result && i < 64; i++) {
        %append_output(SWIG_FromCharPtr(v$argnum[i]));
    }
}

/* (ember_msg **msgs, int max): max is the argument, the messages the result */
%typemap(in, fragment=SWIG_AsVal_frag(int)) (ember_msg **msgs, int max) (ember_msg **arr = NULL, int max = 0) {
    int res = SWIG_AsVal(int)($input, &max);
    if (!SWIG_IsOK(res) || max < 1 || max > 4096) {
        SWIG_exception_fail(SWIG_ValueError, "fetch batch must be 1..4096");
    }
    arr = calloc((size_t)max, sizeof *arr);
    if (!arr) {
        SWIG_exception_fail(SWIG_MemoryError, "out of memory");
    }
    $1 = arr;
    $2 = max;
}
%typemap(argout) (ember_msg **msgs, int max) {
    for (int i = 0; i < result; i++) {
        %append_output(SWIG_NewPointerObj(%as_voidptr(arr$argnum[i]), $descriptor(ember_msg *), EMBER_OWN));
        arr$argnum[i] = NULL;
    }
}
%typemap(freearg) (ember_msg **msgs, int max) {
    if (arr$argnum) {
        for (int i = 0; i < max$argnum; i++)
            if (arr$argnum[i])
                ember_msg_release(arr$argnum[i]);
        free(arr$argnum);
    }
}

%typemap(in, numinputs=0) (ember_kv_entry ***entries, size_t *n) (ember_kv_entry **e = NULL, size_t n = 0)
    "$1 = &e; $2 = &n;"
%typemap(argout) (ember_kv_entry ***entries, size_t *n) {
    for (size_t i = 0; i < n$argnum; i++) {
        %append_output(SWIG_NewPointerObj(%as_voidptr(e$argnum[i]), $descriptor(ember_kv_entry *), EMBER_OWN));
        e$argnum[i] = NULL;
    }
    ember_kv_entries_free(e$argnum, 0); /* the array; the entries now belong to the caller */
    e$argnum = NULL;
}
%typemap(freearg) (ember_kv_entry ***entries, size_t *n) "ember_kv_entries_free(e$argnum, n$argnum);"

/* ------------------------------------------------------------------ data in and out */

/* Binary-safe in both directions. Tcl: byte arrays (text beyond Latin-1 goes through
 * `encoding convertto utf-8` / `convertfrom`); Perl: byte strings (any defined scalar is
 * taken by its string value, undef is empty). */
#if defined(SWIGTCL)
%typemap(in) (const void *data, size_t len), (const void *value, size_t len) {
    Tcl_Size n = 0;
    $1 = ($1_ltype)Tcl_GetByteArrayFromObj($input, &n);
    $2 = (size_t)n;
}
#elif defined(SWIGPERL)
%typemap(in) (const void *data, size_t len), (const void *value, size_t len) {
    STRLEN n = 0;
    if (SvOK($input)) {
        $1 = ($1_ltype)SvPV($input, n);
    } else {
        $1 = NULL;
    }
    $2 = (size_t)n;
}
#else
%apply (char *STRING, size_t LENGTH) { (const void *data, size_t len) };
%apply (char *STRING, size_t LENGTH) { (const void *value, size_t len) };
#endif

/* ember_msg_data(m, &len) -> the payload, binary-safe (headers_raw likewise) */
%typemap(in, numinputs=0) size_t *len (size_t tmp = 0) "$1 = &tmp;"
%typemap(out, fragment="SWIG_FromCharPtrAndSize") const void *ember_msg_data {
    %set_output(EMBER_BYTES_OBJ($1 ? (const char *)$1 : "", $1 ? *arg2 : 0));
}
%typemap(out, fragment="SWIG_FromCharPtrAndSize") const char *ember_msg_headers_raw {
    %set_output(SWIG_FromCharPtrAndSize($1 ? $1 : "", $1 ? *arg2 : 0));
}

/* obj_get(obj, name) -> the object's data (binary-safe), then its info */
%typemap(in, numinputs=0) (void **data, size_t *len) (void *d = NULL, size_t n = 0) "$1 = &d; $2 = &n;"
%typemap(argout, fragment="SWIG_FromCharPtrAndSize") (void **data, size_t *len) {
    %append_output(EMBER_BYTES_OBJ(d$argnum ? (const char *)d$argnum : "", n$argnum));
}
%typemap(freearg) (void **data, size_t *len) "free(d$argnum);"

/* obj_reader_read(r, cap) -> up to cap bytes (binary-safe); "" at the end */
%typemap(in, fragment=SWIG_AsVal_frag(int)) (void *buf, size_t cap) (void *b = NULL, int cap = 0) {
    int res = SWIG_AsVal(int)($input, &cap);
    if (!SWIG_IsOK(res) || cap < 1 || cap > 64 * 1024 * 1024) {
        SWIG_exception_fail(SWIG_ValueError, "read size must be 1..67108864");
    }
    b = malloc((size_t)cap);
    if (!b) {
        SWIG_exception_fail(SWIG_MemoryError, "out of memory");
    }
    $1 = b;
    $2 = (size_t)cap;
}
%typemap(out) int64_t ember_obj_reader_read {
    if ($1 < 0)
        EMBER_RAISE((int)$1);
}
%typemap(argout, fragment="SWIG_FromCharPtrAndSize") (void *buf, size_t cap) {
    %set_output(EMBER_BYTES_OBJ((const char *)b$argnum, result > 0 ? (size_t)result : 0));
}
%typemap(freearg) (void *buf, size_t cap) "free(b$argnum);"

/* optional strings: undef/NULL or "" (Tcl has no NULL string) mean none */
%typemap(check) const char *reply, const char *queue, const char *filter
    "if ($1 && !*$1) $1 = NULL;"

/* no callbacks: subscriptions are read with sub_next_msg */
%typemap(in, numinputs=0) (ember_msg_fn fn, void *userdata, ember_free_fn free_userdata)
    "$1 = NULL; $2 = NULL; $3 = NULL;"

/* ------------------------------------------------------------------ option structs */

/* strings assigned to option fields are interned (the options borrow them) */
%typemap(memberin) const char * "$1 = ember_swig_intern($input);"

%immutable ember_server_options::size;
%immutable ember_conn_options::size;
%immutable ember_stream_config::size;
%immutable ember_consumer_config::size;
%immutable ember_kv_config::size;
%immutable ember_obj_config::size;
%immutable ember_obj_put_options::size;
%ignore ember_server_options::log_fn;
%ignore ember_server_options::log_userdata;
%ignore ember_conn_options::error_fn;
%ignore ember_conn_options::error_userdata;
%ignore ember_stream_config::subjects;
%ignore ember_stream_config::nsubjects;

/* every option struct: the constructor runs its *_init */
%define EMBER_OPTIONS(TYPE, INIT)
%extend TYPE {
    TYPE() {
        TYPE *o = calloc(1, sizeof *o);
        if (o)
            INIT(o);
        return o;
    }
    ~TYPE() { free($self); }
}
%ignore INIT;
%enddef
EMBER_OPTIONS(ember_server_options, ember_server_options_init)
EMBER_OPTIONS(ember_conn_options, ember_conn_options_init)
EMBER_OPTIONS(ember_stream_config, ember_stream_config_init)
EMBER_OPTIONS(ember_consumer_config, ember_consumer_config_init)
EMBER_OPTIONS(ember_kv_config, ember_kv_config_init)
EMBER_OPTIONS(ember_obj_config, ember_obj_config_init)
EMBER_OPTIONS(ember_obj_put_options, ember_obj_put_options_init)

%extend ember_stream_config {
    /* the stream's subjects, separated by spaces or commas: "orders.> audit.*" */
    void set_subjects(const char *subjects) {
        ember_swig_interned *p = subjects ? ember_swig_intern_node(subjects, 1) : NULL;
        $self->subjects = p ? p->list : NULL;
        $self->nsubjects = p ? p->n : 0;
    }
}

/* ------------------------------------------------------------------ messages and entries */

/* The message as a proxy class without fields, so Perl can release what it owns. */
%nodefaultctor ember_msg;
struct ember_msg {};
%extend ember_msg {
    ~ember_msg() { ember_msg_release($self); }
}
#if defined(SWIGPERL)
/* Perl releases messages and entries itself */
%ignore ember_free;
%ignore ember_msg_release;
%ignore ember_msg_retain;
%ignore ember_kv_entry_free;
%ignore ember_obj_info_free;
#endif

%ignore ember_msg_header_at;
/* msg_headers(m): every header field as a flat list: key, value, key, value, ... */
%{
typedef struct ember_swig_headers {
    int unused;
} ember_swig_headers;
%}
%typemap(in, numinputs=0) ember_swig_headers *fields (ember_swig_headers h) "$1 = &h;"
%typemap(argout, fragment="SWIG_FromCharPtr") ember_swig_headers *fields {
    const char *k, *v;
    for (int i = 0; ember_msg_header_at(arg1, i, &k, &v); i++) {
        %append_output(SWIG_FromCharPtr(k));
        %append_output(SWIG_FromCharPtr(v));
    }
}
%rename(msg_headers) ember_swig_msg_headers;
%inline %{
static void ember_swig_msg_headers(const ember_msg *m, ember_swig_headers *fields)
{
    (void)m;
    (void)fields; /* the argout typemap reads the fields */
}
%}

/* entries: read-only fields, a binary-safe value, freed by the destructor */
%nodefaultctor ember_kv_entry;
%immutable ember_kv_entry::bucket;
%immutable ember_kv_entry::key;
%immutable ember_kv_entry::revision;
%immutable ember_kv_entry::created_ns;
%immutable ember_kv_entry::delta;
%immutable ember_kv_entry::op;
%immutable ember_kv_entry::value;
%immutable ember_kv_entry::len;
/* the value field: len bytes (the getter's arg1 is the entry) */
%typemap(out, fragment="SWIG_FromCharPtrAndSize") const void *value {
    %set_output(EMBER_BYTES_OBJ($1 ? (const char *)$1 : "", $1 ? arg1->len : 0));
}
%extend ember_kv_entry {
    ~ember_kv_entry() { ember_kv_entry_free($self); }
}

/* the key-value bucket handle: kv_close frees it */
%nodefaultctor ember_kv;
%nodefaultdtor ember_kv;

/* object infos: read-only fields, freed by the destructor (Perl) or obj_info_free (Tcl);
 * obj_reader_info returns one owned by the reader */
%nodefaultctor ember_obj_info;
%immutable ember_obj_info::bucket;
%immutable ember_obj_info::name;
%immutable ember_obj_info::description;
%immutable ember_obj_info::nuid;
%immutable ember_obj_info::digest;
%immutable ember_obj_info::size;
%immutable ember_obj_info::chunks;
%immutable ember_obj_info::chunk_size;
%immutable ember_obj_info::mtime_ns;
%immutable ember_obj_info::revision;
%immutable ember_obj_info::deleted;
%immutable ember_obj_info::link_bucket;
%immutable ember_obj_info::link_name;
%extend ember_obj_info {
    ~ember_obj_info() { ember_obj_info_free($self); }
}
/* the bucket handle (obj_close), writers (obj_writer_commit / _abort) and readers
 * (obj_reader_close) are freed explicitly */
%nodefaultctor ember_obj;
%nodefaultdtor ember_obj;
%nodefaultctor ember_obj_writer;
%nodefaultdtor ember_obj_writer;
%nodefaultctor ember_obj_reader;
%nodefaultdtor ember_obj_reader;
/* obj_reader_info: the reader keeps its info (the proxy does not own it) */

/* ------------------------------------------------------------------ not wrapped */

/* they take a callback */
%ignore ember_server_set_logger;
%ignore ember_js_publish_async;
%ignore ember_kv_put_async;
%ignore ember_kv_put_fn;
%ignore ember_kv_watch;
%ignore ember_kv_watch_stop;
%ignore ember_kv_watcher;
%ignore ember_log_fn;
%ignore ember_msg_fn;
%ignore ember_free_fn;
%ignore ember_pub_ack_fn;
%ignore ember_kv_watch_fn;
/* the header_at loop is msg_headers; entries arrays are lists */
%ignore ember_kv_entries_free;

/* ------------------------------------------------------------------ the header */

#define __attribute__(x)
%include "ember.h"
