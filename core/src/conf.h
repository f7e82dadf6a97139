/* conf: a parser for nats-server's configuration file format (conf/lex.go and
 * conf/parse.go in nats-io/nats-server), producing a tree whose every value and key
 * keeps its file, line and column for error messages. docs/config.md describes the
 * format; the mapping onto ember_server_options lives in options.c.
 *
 * The grammar, in short:
 *   - entries `key = value`, `key: value` or `key value`, ended by a new line, ';' or
 *     ','; a map `key { ... }` needs no separator; keys are bare words or quoted
 *     ('...' or "...", taken literally);
 *   - values: maps `{ }`, arrays `[ ]` (elements separated by ',' or new lines),
 *     double-quoted strings with \t \n \r \" \\ \xHH escapes, single-quoted raw
 *     strings, `( ... )` blocks ending with ')' alone on a line, unquoted strings,
 *     integers with size suffixes (k=1000, kb/ki/kib=1024, m, mb, g, gb, t, tb, p, pb,
 *     e, eb), floats, booleans (true/false, yes/no, on/off), ISO 8601 Zulu dates, and
 *     `$name` variables (a key defined earlier in an enclosing map, else the
 *     environment, whose text is parsed as a value);
 *   - `include path` (path relative to the including file) merges that file's
 *     top-level keys into the current map;
 *   - comments `#` and `//` to the end of the line.
 *
 * Nothing is global: a parse is reentrant, and reads files and the environment only
 * through the callbacks in conf_opts (by default the disk and getenv). Nesting,
 * include depth, file count and sizes are bounded (conf_opts).
 */
#ifndef EMBER_CONF_H
#define EMBER_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum conf_type {
    CONF_STRING,
    CONF_INT,
    CONF_FLOAT,
    CONF_BOOL,
    CONF_DATETIME, /* text kept in str, e.g. "2006-01-02T15:04:05Z" */
    CONF_MAP,
    CONF_ARRAY,
} conf_type;

/* A position: file is the path as given (includes: joined to the including file's
 * directory), owned by the document; line and col are 1-based, col counts bytes. */
typedef struct conf_pos {
    const char *file;
    int line, col;
} conf_pos;

typedef struct conf_value conf_value;

/* One key of a map. A later definition of the same key (exact bytes) replaces the
 * value and position in place, as nats-server's maps do. */
typedef struct conf_entry {
    char *key;          /* NUL-terminated; key_len bytes (may contain NUL bytes) */
    size_t key_len;
    conf_pos key_pos;
    conf_value *value;
    bool used;          /* referenced as a $variable (nats-server: no unknown-field error) */
} conf_entry;

struct conf_value {
    conf_type type;
    conf_pos pos;       /* where the value starts (for $var: where the reference is) */
    int refs;           /* private: containers are shared by $var references */
    int height;         /* private: levels of containers below (0 for a scalar) */
    union {
        struct {
            char *s;    /* NUL-terminated; len bytes (a \x00 escape can embed NUL) */
            size_t len;
        } str;
        int64_t i;
        double f;
        bool b;
        struct {
            conf_entry *e;      /* in order of first definition */
            size_t n, cap;
            uint32_t *idx;      /* private hash index (entry index + 1) */
            size_t idx_cap;
        } map;
        struct {
            conf_value **v;
            size_t n, cap;
        } arr;
    } u;
};

/* Reads a whole file into *data (malloc'd, the parser frees it) and its size into *len.
 * Returns 0 or an errno value. */
typedef int (*conf_read_fn)(void *userdata, const char *path, char **data, size_t *len);
/* Returns the environment variable's value (borrowed for the call) or NULL. */
typedef const char *(*conf_env_fn)(void *userdata, const char *name);

typedef struct conf_opts {
    conf_read_fn read_file;   /* NULL: read from disk */
    conf_env_fn get_env;      /* NULL: getenv */
    void *userdata;
    bool no_include;          /* `include` is an error */
    int max_depth;            /* maps/arrays/includes/environment values nested: 64 */
    int max_include_depth;    /* 10 */
    int max_files;            /* files read in one parse, the first included: 256 */
    size_t max_file_size;     /* 16 MiB */
    size_t max_total_size;    /* all files together: 64 MiB */
} conf_opts;

void conf_opts_init(conf_opts *o);

typedef struct conf_error {
    int code;           /* EMBER_EINVAL (syntax), EMBER_EIO (a file unreadable), EMBER_ENOMEM */
    conf_pos pos;       /* pos.file NULL when there is no position */
    char msg[384];      /* the message without position */
    char text[640];     /* "file:line:col: msg" (or "file: msg") */
} conf_error;

typedef struct conf_doc conf_doc;

/* Parse the file at path. Returns 0 and *out (free with conf_doc_free), or a negative
 * EMBER_E* code with err filled. opts may be NULL for the defaults. */
int conf_parse_file(conf_doc **out, const char *path, const conf_opts *opts, conf_error *err);
/* Parse len bytes of text; name is used in positions and its directory for includes
 * (NULL: "<string>", includes relative to the current directory). */
int conf_parse_string(conf_doc **out, const char *data, size_t len, const char *name,
                      const conf_opts *opts, conf_error *err);
void conf_doc_free(conf_doc *d);
/* The top-level map (never NULL for a parsed document). */
const conf_value *conf_doc_root(const conf_doc *d);

/* The entry of map with exactly this key, or NULL (also when map is not a map). */
const conf_entry *conf_map_get(const conf_value *map, const char *key);
/* "string", "integer", "float", "boolean", "datetime", "map", "array". */
const char *conf_type_name(conf_type t);

/* Go's time.ParseDuration ("300ms", "1.5h", "2h45m", "-1s", "0"): units ns, us (µs),
 * ms, s, m, h. Returns 0 and *ns, or -1 with Go's message in err
 * ("time: invalid duration \"x\""). */
int conf_parse_duration(const char *s, int64_t *ns, char *err, size_t errlen);

#endif
