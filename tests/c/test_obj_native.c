/* test_obj_native: the native object store of ember.h (ember_obj_*) on an embedded
 * server: buckets, put/get of every size class (empty, 1 byte, one chunk, many chunks,
 * binary), streaming put and get, info, list, delete, replacement (old chunks purged),
 * digest checks against damaged objects, invalid names, a missing bucket, limits, links,
 * concurrent writers and readers, and a restart on the same store directory. The wire view
 * is checked both ways: the metadata this API writes is read back as the JSON of ADR-20,
 * and an object published exactly as nats.js publishes it (chunks, then metadata with a
 * rollup, over the in-process connection) is read natively. SHA-256 reference values come
 * from libcrypto and from known test vectors. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ember.h"
#include "testutil.h"

static char dir[128];

static ember_server *start(void)
{
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true;
    o.jetstream = true;
    o.store_dir = dir;
    ember_server *s = NULL;
    if (ember_server_new(&s, &o) || ember_server_start(s) ||
        !ember_server_ready_for_connections(s, 10000)) {
        fprintf(stderr, "start: %s\n", ember_last_error());
        ember_server_free(s);
        return NULL;
    }
    return s;
}

static cJSON *api(ember_conn *c, const char *subj, const char *body)
{
    ember_msg *r = NULL;
    if (ember_conn_request(c, subj, body, body ? strlen(body) : 0, 5000, &r))
        return NULL;
    size_t n;
    const char *d = ember_msg_data(r, &n);
    cJSON *j = cJSON_ParseWithLength(d, n);
    ember_msg_release(r);
    return j;
}

/* base64url with padding, written here independently of the library */
static void b64url(const unsigned char *p, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        out[o++] = t[v >> 18];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = t[(v >> 6) & 63];
        out[o++] = t[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0);
        out[o++] = t[v >> 18];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = 0;
}

/* "SHA-256=<base64url>" of data, through libcrypto's one-shot EVP_Digest */
static void digest_of(const void *data, size_t len, char *out)
{
    unsigned char sum[EVP_MAX_MD_SIZE];
    unsigned int sl = 0;
    EVP_Digest(data, len, sum, &sl, EVP_sha256(), NULL);
    strcpy(out, "SHA-256=");
    b64url(sum, sl, out + 8);
}

static void meta_subject(const char *bucket, const char *name, char *out, size_t cap)
{
    char enc[4096];
    b64url((const unsigned char *)name, strlen(name), enc);
    snprintf(out, cap, "$O.%s.M.%s", bucket, enc);
}

static unsigned char *random_bytes(size_t n, unsigned seed)
{
    unsigned char *p = malloc(n ? n : 1);
    uint64_t x = 0x9E3779B97F4A7C15ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)x;
    }
    return p;
}

static uint64_t stream_msgs(ember_conn *c, const char *stream)
{
    ember_stream_info si;
    if (ember_js_stream_info(c, stream, &si) != EMBER_OK)
        return (uint64_t)-1;
    return si.msgs;
}

/* put data as name and read it back both ways; checks the info fields */
static void roundtrip(ember_obj *obj, const char *name, const void *data, size_t len,
                      uint64_t want_chunks)
{
    ember_obj_info *info = NULL;
    int rc = ember_obj_put(obj, name, data, len, NULL, &info);
    CHECK_MSG(rc == EMBER_OK, "put %s (%zu bytes): %s", name, len, ember_last_error());
    if (rc)
        return;
    char want[64];
    digest_of(data, len, want);
    REQUIRE(info);
    CHECK(!strcmp(info->name, name));
    CHECK(!strcmp(info->bucket, "files"));
    CHECK_EQ(info->size, len);
    CHECK_EQ(info->chunks, want_chunks);
    CHECK_EQ(info->chunk_size, 128 * 1024);
    CHECK(!strcmp(info->digest, want));
    CHECK(!info->deleted);
    CHECK(strlen(info->nuid) == 22);
    CHECK(info->revision > 0);
    CHECK(info->mtime_ns > 0);
    CHECK(info->link_bucket == NULL && info->link_name == NULL);
    uint64_t rev = info->revision;
    ember_obj_info_free(info);

    void *got = NULL;
    size_t gl = 99;
    info = NULL;
    rc = ember_obj_get(obj, name, &got, &gl, &info);
    CHECK_MSG(rc == EMBER_OK, "get %s: %s", name, ember_last_error());
    if (rc == EMBER_OK) {
        CHECK_EQ(gl, len);
        CHECK(len == 0 || !memcmp(got, data, len));
        CHECK(((char *)got)[gl] == 0);
        CHECK(info && info->revision == rev && info->size == len);
        free(got);
        ember_obj_info_free(info);
    }

    /* info alone */
    REQUIRE(ember_obj_get_info(obj, name, &info) == EMBER_OK);
    CHECK_EQ(info->revision, rev);
    CHECK(!strcmp(info->digest, want));
    ember_obj_info_free(info);
}

static void test_buckets(ember_conn *c)
{
    ember_obj_config cfg;
    ember_obj_config_init(&cfg);
    CHECK_EQ(cfg.chunk_size, 128 * 1024);
    CHECK_EQ(cfg.max_bytes, -1);
    ember_obj *obj = NULL;
    cfg.bucket = "bad.name";
    CHECK(ember_obj_bucket_create(c, &cfg, &obj) == EMBER_EINVAL && !obj);
    cfg.bucket = "";
    CHECK(ember_obj_bucket_create(c, &cfg, &obj) == EMBER_EINVAL);
    CHECK(ember_obj_bucket_create(c, NULL, &obj) == EMBER_EINVAL);
    CHECK(ember_obj_bucket_open(c, "nope", &obj) == EMBER_ENOTFOUND && !obj);
    CHECK(strstr(ember_last_error(), "bucket not found") != NULL);
    CHECK(ember_obj_bucket_open(c, "a b", &obj) == EMBER_EINVAL);
    CHECK(ember_obj_bucket_delete(c, "nope") == EMBER_ENOTFOUND);

    cfg.bucket = "files";
    cfg.description = "test files";
    REQUIRE(ember_obj_bucket_create(c, &cfg, &obj) == EMBER_OK);
    ember_obj_close(obj);
    obj = NULL;
    CHECK(ember_obj_bucket_create(c, &cfg, &obj) == EMBER_OK); /* identical: opens */
    ember_obj_close(obj);
    obj = NULL;
    cfg.ttl_ms = 60000;
    CHECK(ember_obj_bucket_create(c, &cfg, &obj) == EMBER_EEXISTS && !obj);
    cfg.ttl_ms = 0;
    ember_obj_close(NULL);

    /* the stream is configured as the clients configure it (ADR-20) */
    cJSON *r = api(c, "$JS.API.STREAM.INFO.OBJ_files", NULL);
    REQUIRE(r);
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(r, "config");
    const cJSON *subs = cJSON_GetObjectItemCaseSensitive(sc, "subjects");
    CHECK(cJSON_GetArraySize(subs) == 2);
    CHECK(!strcmp(cJSON_GetArrayItem(subs, 0)->valuestring, "$O.files.C.>"));
    CHECK(!strcmp(cJSON_GetArrayItem(subs, 1)->valuestring, "$O.files.M.>"));
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sc, "allow_rollup_hdrs")));
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sc, "allow_direct")));
    CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(sc, "discard")->valuestring, "new"));
    CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(sc, "description")->valuestring,
                  "test files"));
    cJSON_Delete(r);
}

static void test_put_get(ember_conn *c)
{
    ember_obj *obj = NULL;
    REQUIRE(ember_obj_bucket_open(c, "files", &obj) == EMBER_OK);

    /* known vectors */
    ember_obj_info *info = NULL;
    REQUIRE(ember_obj_put(obj, "empty", NULL, 0, NULL, &info) == EMBER_OK);
    CHECK(!strcmp(info->digest, "SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU="));
    CHECK_EQ(info->chunks, 0);
    CHECK_EQ(info->size, 0);
    ember_obj_info_free(info);
    REQUIRE(ember_obj_put(obj, "abc", "abc", 3, NULL, &info) == EMBER_OK);
    CHECK(!strcmp(info->digest, "SHA-256=ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0="));
    ember_obj_info_free(info);

    roundtrip(obj, "empty", "", 0, 0);
    roundtrip(obj, "one", "x", 1, 1);
    unsigned char *chunk = random_bytes(128 * 1024, 1);
    roundtrip(obj, "chunk", chunk, 128 * 1024, 1);
    free(chunk);
    unsigned char *chunk1 = random_bytes(128 * 1024 + 1, 2);
    roundtrip(obj, "chunk+1", chunk1, 128 * 1024 + 1, 2);
    free(chunk1);
    size_t big_len = 5 * 1024 * 1024 + 12345;
    unsigned char *big = random_bytes(big_len, 3);
    roundtrip(obj, "big.bin", big, big_len, (big_len + 128 * 1024 - 1) / (128 * 1024));
    free(big);
    /* names are any string: they are base64-encoded into the subject */
    unsigned char bin[256];
    for (int i = 0; i < 256; i++)
        bin[i] = (unsigned char)i;
    roundtrip(obj, "dir/sub dir/file name.tar.gz*>?", bin, sizeof bin, 1);

    /* a put option: a smaller chunk size and a description */
    ember_obj_put_options po;
    ember_obj_put_options_init(&po);
    po.chunk_size = 1000;
    po.description = "small chunks";
    unsigned char *d = random_bytes(10001, 4);
    REQUIRE(ember_obj_put(obj, "small", d, 10001, &po, &info) == EMBER_OK);
    CHECK_EQ(info->chunks, 11);
    CHECK_EQ(info->chunk_size, 1000);
    CHECK(!strcmp(info->description, "small chunks"));
    ember_obj_info_free(info);
    void *got = NULL;
    size_t gl = 0;
    REQUIRE(ember_obj_get(obj, "small", &got, &gl, NULL) == EMBER_OK);
    CHECK(gl == 10001 && !memcmp(got, d, gl));
    free(got);
    free(d);

    /* invalid names and arguments */
    char *longname = malloc(3000);
    memset(longname, 'n', 2999);
    longname[2999] = 0;
    CHECK(ember_obj_put(obj, NULL, "x", 1, NULL, NULL) == EMBER_EINVAL);
    CHECK(ember_obj_put(obj, "", "x", 1, NULL, NULL) == EMBER_EINVAL);
    CHECK(ember_obj_put(obj, longname, "x", 1, NULL, NULL) == EMBER_EINVAL);
    CHECK(ember_obj_put(obj, "x", NULL, 1, NULL, NULL) == EMBER_EINVAL);
    CHECK(ember_obj_put(NULL, "x", "x", 1, NULL, NULL) == EMBER_EINVAL);
    CHECK(ember_obj_get(obj, "", &got, &gl, NULL) == EMBER_EINVAL);
    CHECK(ember_obj_get(obj, NULL, &got, &gl, NULL) == EMBER_EINVAL);
    CHECK(ember_obj_get_info(obj, "", &info) == EMBER_EINVAL);
    CHECK(ember_obj_delete(obj, "") == EMBER_EINVAL);
    CHECK(ember_obj_delete(obj, longname) == EMBER_EINVAL);
    ember_obj_reader *rd = NULL;
    CHECK(ember_obj_reader_open(obj, "", &rd) == EMBER_EINVAL && !rd);
    ember_obj_writer *wr = NULL;
    CHECK(ember_obj_writer_open(obj, longname, NULL, &wr) == EMBER_EINVAL && !wr);
    longname[2048] = 0; /* the longest name allowed */
    CHECK(ember_obj_put(obj, longname, "x", 1, NULL, NULL) == EMBER_OK);
    CHECK(ember_obj_get(obj, longname, &got, &gl, NULL) == EMBER_OK && gl == 1);
    free(got);
    CHECK(ember_obj_delete(obj, longname) == EMBER_OK);
    free(longname);
    ember_obj_put_options bad;
    memset(&bad, 0, sizeof bad);
    CHECK(ember_obj_put(obj, "x", "x", 1, &bad, NULL) == EMBER_EINVAL);

    /* missing objects */
    CHECK(ember_obj_get(obj, "missing", &got, &gl, NULL) == EMBER_ENOTFOUND);
    CHECK(strstr(ember_last_error(), "object not found") != NULL);
    CHECK(ember_obj_get_info(obj, "missing", &info) == EMBER_ENOTFOUND && !info);
    CHECK(ember_obj_reader_open(obj, "missing", &rd) == EMBER_ENOTFOUND);
    CHECK(ember_obj_delete(obj, "missing") == EMBER_ENOTFOUND);
    ember_obj_close(obj);
}

/* The metadata as ADR-20 (and nats.js / nats.go) expect it. */
static void test_meta_json(ember_conn *c)
{
    ember_obj *obj = NULL;
    REQUIRE(ember_obj_bucket_open(c, "files", &obj) == EMBER_OK);
    ember_obj_put_options po;
    ember_obj_put_options_init(&po);
    po.description = "a report";
    const char *name = "reports/2024 Q1?.pdf"; /* '?' gives '/' -> '_' in base64url */
    unsigned char *d = random_bytes(300000, 5);
    ember_obj_info *info = NULL;
    REQUIRE(ember_obj_put(obj, name, d, 300000, &po, &info) == EMBER_OK);
    char subj[512];
    meta_subject("files", name, subj, sizeof subj);
    ember_msg *m = NULL;
    REQUIRE(ember_js_get_last(c, "OBJ_files", subj, &m) == EMBER_OK);
    CHECK(!strcmp(ember_msg_header_get(m, "Nats-Rollup"), "sub"));
    size_t n;
    const char *body = ember_msg_data(m, &n);
    cJSON *j = cJSON_ParseWithLength(body, n);
    REQUIRE(j);
    char want[64];
    digest_of(d, 300000, want);
    CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(j, "name")->valuestring, name));
    CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(j, "description")->valuestring, "a report"));
    CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(j, "bucket")->valuestring, "files"));
    CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(j, "nuid")->valuestring, info->nuid));
    CHECK(cJSON_GetObjectItemCaseSensitive(j, "size")->valuedouble == 300000);
    CHECK(cJSON_GetObjectItemCaseSensitive(j, "chunks")->valuedouble == 3);
    CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(j, "digest")->valuestring, want));
    CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "mtime")));
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(j, "options");
    CHECK(cJSON_GetObjectItemCaseSensitive(o, "max_chunk_size")->valuedouble == 131072);
    CHECK(cJSON_GetObjectItemCaseSensitive(o, "link") == NULL);
    CHECK(!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "deleted")));
    cJSON_Delete(j);
    ember_msg_release(m);

    /* the chunks: $O.files.C.<nuid>, in order, 128 KiB each but the last */
    char csubj[128];
    snprintf(csubj, sizeof csubj, "$O.files.C.%s", info->nuid);
    size_t off = 0;
    for (uint64_t seq = info->revision - 3; seq < info->revision; seq++) {
        REQUIRE(ember_js_get(c, "OBJ_files", seq, &m) == EMBER_OK);
        CHECK(!strcmp(ember_msg_subject(m), csubj));
        const void *cd = ember_msg_data(m, &n);
        CHECK(n == (off + 131072 <= 300000 ? 131072 : 300000 - off));
        CHECK(!memcmp(cd, d + off, n));
        off += n;
        ember_msg_release(m);
    }
    CHECK_EQ(off, 300000);
    ember_obj_info_free(info);
    free(d);

    /* what a nats.js client reads with STREAM.MSG.GET {last_by_subj} */
    char req[600];
    snprintf(req, sizeof req, "{\"last_by_subj\":\"%s\"}", subj);
    cJSON *r = api(c, "$JS.API.STREAM.MSG.GET.OBJ_files", req);
    CHECK(r && cJSON_GetObjectItemCaseSensitive(r, "message") != NULL);
    cJSON_Delete(r);
    ember_obj_close(obj);
}

static void test_streaming(ember_conn *c)
{
    ember_obj *obj = NULL;
    REQUIRE(ember_obj_bucket_open(c, "files", &obj) == EMBER_OK);
    size_t len = 1000000;
    unsigned char *d = random_bytes(len, 6);
    ember_obj_writer *w = NULL;
    REQUIRE(ember_obj_writer_open(obj, "streamed", NULL, &w) == EMBER_OK);
    /* pieces of every size: small, across chunk boundaries, several chunks at once */
    size_t off = 0, piece = 1;
    while (off < len) {
        size_t k = piece < len - off ? piece : len - off;
        REQUIRE(ember_obj_writer_write(w, d + off, k) == EMBER_OK);
        off += k;
        piece = piece * 3 + 7;
    }
    CHECK(ember_obj_writer_write(w, NULL, 0) == EMBER_OK);
    ember_obj_info *info = NULL;
    REQUIRE(ember_obj_writer_commit(w, &info) == EMBER_OK);
    CHECK_EQ(info->size, len);
    CHECK_EQ(info->chunks, 8);
    char want[64];
    digest_of(d, len, want);
    CHECK(!strcmp(info->digest, want));
    ember_obj_info_free(info);

    /* read with small and odd buffers */
    ember_obj_reader *r = NULL;
    REQUIRE(ember_obj_reader_open(obj, "streamed", &r) == EMBER_OK);
    const ember_obj_info *ri = ember_obj_reader_info(r);
    CHECK(ri && ri->size == len && !strcmp(ri->name, "streamed"));
    unsigned char *back = malloc(len + 10);
    size_t got = 0;
    int64_t n;
    size_t cap = 777;
    while ((n = ember_obj_reader_read(r, back + got, cap)) > 0) {
        got += (size_t)n;
        CHECK((size_t)n <= cap);
        cap = cap == 777 ? 200000 : 777;
        if (got + cap > len + 10)
            cap = len + 10 - got;
    }
    CHECK_EQ(n, 0);
    CHECK_EQ(got, len);
    CHECK(!memcmp(back, d, len));
    CHECK_EQ(ember_obj_reader_read(r, back, 10), 0); /* stays at the end */
    CHECK(ember_obj_reader_read(r, back, 0) == EMBER_EINVAL);
    ember_obj_reader_close(r);
    ember_obj_reader_close(NULL);
    free(back);

    /* abort: nothing of the object stays */
    uint64_t before = stream_msgs(c, "OBJ_files");
    REQUIRE(ember_obj_writer_open(obj, "aborted", NULL, &w) == EMBER_OK);
    REQUIRE(ember_obj_writer_write(w, d, len) == EMBER_OK);
    ember_obj_writer_abort(w);
    ember_obj_writer_abort(NULL);
    CHECK_EQ(stream_msgs(c, "OBJ_files"), before);
    CHECK(ember_obj_get_info(obj, "aborted", &info) == EMBER_ENOTFOUND);

    /* a writer on a bucket deleted in between fails and leaves nothing */
    ember_obj_config cfg;
    ember_obj_config_init(&cfg);
    cfg.bucket = "gone";
    ember_obj *gone = NULL;
    REQUIRE(ember_obj_bucket_create(c, &cfg, &gone) == EMBER_OK);
    REQUIRE(ember_obj_writer_open(gone, "x", NULL, &w) == EMBER_OK);
    REQUIRE(ember_obj_bucket_delete(c, "gone") == EMBER_OK);
    int rc = ember_obj_writer_write(w, d, len);
    if (rc == EMBER_OK)
        rc = ember_obj_writer_commit(w, NULL);
    else
        CHECK(ember_obj_writer_commit(w, NULL) == rc); /* sticky */
    CHECK_EQ(rc, EMBER_ENOTFOUND);
    CHECK(strstr(ember_last_error(), "bucket not found") != NULL);
    CHECK(ember_obj_writer_open(gone, "x", NULL, &w) == EMBER_ENOTFOUND);
    CHECK(ember_obj_put(gone, "x", "x", 1, NULL, NULL) == EMBER_ENOTFOUND);
    CHECK(ember_obj_get_info(gone, "x", &info) == EMBER_ENOTFOUND);
    char **names = NULL;
    size_t nn = 0;
    CHECK(ember_obj_list(gone, &names, &nn) == EMBER_ENOTFOUND);
    ember_obj_close(gone);
    free(d);
    ember_obj_close(obj);
}

static void test_list_delete_replace(ember_conn *c)
{
    ember_obj_config cfg;
    ember_obj_config_init(&cfg);
    cfg.bucket = "ldr";
    ember_obj *obj = NULL;
    REQUIRE(ember_obj_bucket_create(c, &cfg, &obj) == EMBER_OK);
    char **names = NULL;
    size_t n = 9;
    REQUIRE(ember_obj_list(obj, &names, &n) == EMBER_OK);
    CHECK_EQ(n, 0);
    free(names);

    CHECK(ember_obj_put(obj, "b", "bb", 2, NULL, NULL) == EMBER_OK);
    CHECK(ember_obj_put(obj, "a", "a", 1, NULL, NULL) == EMBER_OK);
    CHECK(ember_obj_put(obj, "c", NULL, 0, NULL, NULL) == EMBER_OK);
    CHECK_EQ(stream_msgs(c, "OBJ_ldr"), 5); /* 2 chunks + 3 metadata */
    REQUIRE(ember_obj_list(obj, &names, &n) == EMBER_OK);
    CHECK_EQ(n, 3);
    if (n == 3)
        CHECK(!strcmp(names[0], "a") && !strcmp(names[1], "b") && !strcmp(names[2], "c"));
    free(names);

    /* delete: a deleted marker replaces the metadata, the chunks go */
    REQUIRE(ember_obj_delete(obj, "b") == EMBER_OK);
    CHECK_EQ(stream_msgs(c, "OBJ_ldr"), 4);
    void *got = NULL;
    size_t gl = 0;
    CHECK(ember_obj_get(obj, "b", &got, &gl, NULL) == EMBER_ENOTFOUND);
    ember_obj_reader *rd = NULL;
    CHECK(ember_obj_reader_open(obj, "b", &rd) == EMBER_ENOTFOUND);
    ember_obj_info *info = NULL;
    REQUIRE(ember_obj_get_info(obj, "b", &info) == EMBER_OK);
    CHECK(info->deleted && info->size == 0 && info->chunks == 0 && !strcmp(info->digest, ""));
    CHECK(!strcmp(info->name, "b") && strlen(info->nuid) == 22);
    ember_obj_info_free(info);
    char subj[256];
    meta_subject("ldr", "b", subj, sizeof subj);
    ember_msg *m = NULL;
    REQUIRE(ember_js_get_last(c, "OBJ_ldr", subj, &m) == EMBER_OK);
    size_t ml;
    cJSON *j = cJSON_ParseWithLength(ember_msg_data(m, &ml), ml);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "deleted")));
    CHECK(cJSON_GetObjectItemCaseSensitive(j, "size")->valuedouble == 0);
    CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(j, "digest")->valuestring, ""));
    CHECK(!strcmp(ember_msg_header_get(m, "Nats-Rollup"), "sub"));
    cJSON_Delete(j);
    ember_msg_release(m);
    CHECK(ember_obj_delete(obj, "b") == EMBER_ENOTFOUND); /* already deleted */
    REQUIRE(ember_obj_list(obj, &names, &n) == EMBER_OK);
    CHECK(n == 2 && !strcmp(names[0], "a") && !strcmp(names[1], "c"));
    free(names);
    /* put again after a delete */
    CHECK(ember_obj_put(obj, "b", "new", 3, NULL, NULL) == EMBER_OK);
    CHECK(ember_obj_get(obj, "b", &got, &gl, NULL) == EMBER_OK && gl == 3 && !memcmp(got, "new", 3));
    free(got);
    CHECK_EQ(stream_msgs(c, "OBJ_ldr"), 5);

    /* replace: the old object's chunks are purged, its metadata rolled up */
    ember_obj_put_options po;
    ember_obj_put_options_init(&po);
    po.chunk_size = 100;
    unsigned char *d1 = random_bytes(1000, 7), *d2 = random_bytes(250, 8);
    REQUIRE(ember_obj_put(obj, "r", d1, 1000, &po, &info) == EMBER_OK);
    char old_nuid[32];
    snprintf(old_nuid, sizeof old_nuid, "%s", info->nuid);
    ember_obj_info_free(info);
    CHECK_EQ(stream_msgs(c, "OBJ_ldr"), 5 + 11);
    REQUIRE(ember_obj_put(obj, "r", d2, 250, &po, &info) == EMBER_OK);
    CHECK(strcmp(info->nuid, old_nuid) != 0);
    CHECK_EQ(info->chunks, 3);
    ember_obj_info_free(info);
    CHECK_EQ(stream_msgs(c, "OBJ_ldr"), 5 + 4);
    char csubj[128];
    snprintf(csubj, sizeof csubj, "$O.ldr.C.%s", old_nuid);
    CHECK(ember_js_get_last(c, "OBJ_ldr", csubj, &m) == EMBER_ENOTFOUND);
    CHECK(ember_obj_get(obj, "r", &got, &gl, NULL) == EMBER_OK && gl == 250 && !memcmp(got, d2, 250));
    free(got);
    /* and a delete of the replacement purges only its chunks */
    CHECK(ember_obj_delete(obj, "r") == EMBER_OK);
    CHECK_EQ(stream_msgs(c, "OBJ_ldr"), 5 + 1);
    free(d1);
    free(d2);
    ember_obj_close(obj);
    CHECK(ember_obj_bucket_delete(c, "ldr") == EMBER_OK);
    CHECK(ember_obj_bucket_open(c, "ldr", &obj) == EMBER_ENOTFOUND);
}

/* Damaged objects: a missing chunk, an extra chunk, a wrong digest. */
static void test_digest(ember_conn *c)
{
    ember_obj *obj = NULL;
    REQUIRE(ember_obj_bucket_open(c, "files", &obj) == EMBER_OK);
    ember_obj_put_options po;
    ember_obj_put_options_init(&po);
    po.chunk_size = 1000;
    unsigned char *d = random_bytes(3000, 9);
    ember_obj_info *info = NULL;
    REQUIRE(ember_obj_put(obj, "damaged", d, 3000, &po, &info) == EMBER_OK);
    uint64_t meta_seq = info->revision;
    char nuid[32];
    snprintf(nuid, sizeof nuid, "%s", info->nuid);
    ember_obj_info_free(info);
    /* remove the middle chunk */
    REQUIRE(ember_js_delete_msg(c, "OBJ_files", meta_seq - 2) == EMBER_OK);
    void *got = (void *)1;
    size_t gl = 5;
    CHECK(ember_obj_get(obj, "damaged", &got, &gl, NULL) == EMBER_EIO);
    CHECK(got == NULL && gl == 0);
    CHECK(strstr(ember_last_error(), "digest mismatch") != NULL);
    /* streaming: the data comes, then the error instead of the end, and it sticks */
    ember_obj_reader *r = NULL;
    REQUIRE(ember_obj_reader_open(obj, "damaged", &r) == EMBER_OK);
    unsigned char buf[4096];
    int64_t n, total = 0;
    while ((n = ember_obj_reader_read(r, buf, sizeof buf)) > 0)
        total += n;
    CHECK_EQ(n, EMBER_EIO);
    CHECK_EQ(total, 2000);
    CHECK(strstr(ember_last_error(), "digest mismatch") != NULL);
    CHECK_EQ(ember_obj_reader_read(r, buf, sizeof buf), EMBER_EIO);
    ember_obj_reader_close(r);

    /* an extra chunk on the object's subject */
    REQUIRE(ember_obj_put(obj, "extra", d, 3000, &po, &info) == EMBER_OK);
    char csubj[128];
    snprintf(csubj, sizeof csubj, "$O.files.C.%s", info->nuid);
    ember_obj_info_free(info);
    ember_msg *m = NULL;
    REQUIRE(ember_msg_new(&m, csubj, NULL, "junk", 4) == EMBER_OK);
    REQUIRE(ember_js_publish(c, m, NULL) == EMBER_OK);
    ember_msg_release(m);
    CHECK(ember_obj_get(obj, "extra", &got, &gl, NULL) == EMBER_EIO);
    CHECK(strstr(ember_last_error(), "digest mismatch") != NULL);

    /* a chunk with changed bytes: metadata written by hand with another digest */
    const char *fake_nuid = "FAKENUID0000000000000A";
    snprintf(csubj, sizeof csubj, "$O.files.C.%s", fake_nuid);
    REQUIRE(ember_msg_new(&m, csubj, NULL, "hello world", 11) == EMBER_OK);
    REQUIRE(ember_js_publish(c, m, NULL) == EMBER_OK);
    ember_msg_release(m);
    char want[64], meta[512], subj[256];
    digest_of("hello_world", 11, want);
    snprintf(meta, sizeof meta,
             "{\"name\":\"forged\",\"bucket\":\"files\",\"nuid\":\"%s\",\"size\":11,"
             "\"chunks\":1,\"digest\":\"%s\"}", fake_nuid, want);
    meta_subject("files", "forged", subj, sizeof subj);
    REQUIRE(ember_msg_new(&m, subj, NULL, meta, strlen(meta)) == EMBER_OK);
    REQUIRE(ember_js_publish(c, m, NULL) == EMBER_OK);
    ember_msg_release(m);
    CHECK(ember_obj_get(obj, "forged", &got, &gl, NULL) == EMBER_EIO);
    CHECK(strstr(ember_last_error(), "digest mismatch") != NULL);
    /* an unknown digest type */
    snprintf(meta, sizeof meta,
             "{\"name\":\"md5\",\"bucket\":\"files\",\"nuid\":\"%s\",\"size\":11,"
             "\"chunks\":1,\"digest\":\"MD5=abc\"}", fake_nuid);
    meta_subject("files", "md5", subj, sizeof subj);
    REQUIRE(ember_msg_new(&m, subj, NULL, meta, strlen(meta)) == EMBER_OK);
    REQUIRE(ember_js_publish(c, m, NULL) == EMBER_OK);
    ember_msg_release(m);
    CHECK(ember_obj_get(obj, "md5", &got, &gl, NULL) == EMBER_EIO);
    CHECK(strstr(ember_last_error(), "unknown digest type") != NULL);
    /* unreadable metadata */
    meta_subject("files", "garbage", subj, sizeof subj);
    REQUIRE(ember_msg_new(&m, subj, NULL, "not json", 8) == EMBER_OK);
    REQUIRE(ember_js_publish(c, m, NULL) == EMBER_OK);
    ember_msg_release(m);
    CHECK(ember_obj_get_info(obj, "garbage", &info) == EMBER_EIO);
    /* a put replaces it all the same */
    CHECK(ember_obj_put(obj, "garbage", "ok", 2, NULL, NULL) == EMBER_OK);
    CHECK(ember_obj_get(obj, "garbage", &got, &gl, NULL) == EMBER_OK && gl == 2);
    free(got);
    free(d);
    ember_obj_close(obj);
}

/* publish as a wire client does: a core publish that the stream captures (PubAck reply) */
static int wire_publish(ember_conn *c, const char *subj, const void *data, size_t len,
                        bool rollup)
{
    ember_msg *m = NULL, *reply = NULL;
    if (ember_msg_new(&m, subj, NULL, data, len))
        return -1;
    if (rollup)
        ember_msg_header_set(m, "Nats-Rollup", "sub");
    int rc = ember_conn_request_msg(c, m, 5000, &reply);
    ember_msg_release(m);
    if (rc)
        return rc;
    size_t n;
    const char *d = ember_msg_data(reply, &n);
    rc = strstr(d, "\"seq\"") && !strstr(d, "\"error\"") ? 0 : -1;
    ember_msg_release(reply);
    return rc;
}

/* An object exactly as nats.js (@nats-io/obj) writes one, read natively. */
static void test_wire_object(ember_conn *c)
{
    ember_obj *obj = NULL;
    REQUIRE(ember_obj_bucket_open(c, "files", &obj) == EMBER_OK);
    const char *nuid = "Y9dkHc7Jf0Ol1mIwWhTjzZ";
    size_t len = 300001, chunk = 128 * 1024;
    unsigned char *d = random_bytes(len, 10);
    char csubj[128];
    snprintf(csubj, sizeof csubj, "$O.files.C.%s", nuid);
    for (size_t off = 0; off < len; off += chunk)
        REQUIRE(wire_publish(c, csubj, d + off, len - off < chunk ? len - off : chunk, false) == 0);
    char want[64], meta[1024], subj[256];
    digest_of(d, len, want);
    /* nats.js 3.x: Object.assign({bucket, nuid, size, chunks}, {name, description,
     * options, metadata, headers}) + mtime, digest, deleted */
    snprintf(meta, sizeof meta,
             "{\"bucket\":\"files\",\"nuid\":\"%s\",\"size\":%zu,\"chunks\":3,"
             "\"name\":\"from-js.bin\",\"description\":\"\",\"options\":{\"max_chunk_size\":"
             "131072},\"metadata\":{\"k\":\"v\"},\"headers\":{\"X-A\":[\"1\"]},"
             "\"mtime\":\"2025-01-02T03:04:05.678Z\",\"digest\":\"%s\",\"deleted\":false}",
             nuid, len, want);
    meta_subject("files", "from-js.bin", subj, sizeof subj);
    REQUIRE(wire_publish(c, subj, meta, strlen(meta), true) == 0);

    void *got = NULL;
    size_t gl = 0;
    ember_obj_info *info = NULL;
    int rc = ember_obj_get(obj, "from-js.bin", &got, &gl, &info);
    CHECK_MSG(rc == EMBER_OK, "%s", ember_last_error());
    if (rc == EMBER_OK) {
        CHECK(gl == len && !memcmp(got, d, len));
        CHECK(!strcmp(info->nuid, nuid) && info->chunks == 3 && info->size == len);
        CHECK(!strcmp(info->description, "") && !info->deleted);
        free(got);
        ember_obj_info_free(info);
    }
    char **names = NULL;
    size_t n = 0;
    REQUIRE(ember_obj_list(obj, &names, &n) == EMBER_OK);
    bool found = false;
    for (size_t i = 0; i < n; i++)
        found |= !strcmp(names[i], "from-js.bin");
    CHECK(found);
    free(names);

    /* a hex digest is accepted too (nats.js accepts both) */
    unsigned char sum[EVP_MAX_MD_SIZE];
    unsigned int sl = 0;
    EVP_Digest(d, len, sum, &sl, EVP_sha256(), NULL);
    char hex[80];
    for (unsigned i = 0; i < sl; i++)
        sprintf(hex + 2 * i, "%02x", sum[i]);
    snprintf(meta, sizeof meta,
             "{\"bucket\":\"files\",\"nuid\":\"%s\",\"size\":%zu,\"chunks\":3,"
             "\"name\":\"hex\",\"options\":{\"max_chunk_size\":131072},"
             "\"digest\":\"SHA-256=%s\"}", nuid, len, hex);
    meta_subject("files", "hex", subj, sizeof subj);
    REQUIRE(wire_publish(c, subj, meta, strlen(meta), true) == 0);
    CHECK(ember_obj_get(obj, "hex", &got, &gl, NULL) == EMBER_OK && gl == len);
    free(got);

    /* links as nats.js link() / nats.go AddLink make them */
    snprintf(meta, sizeof meta,
             "{\"name\":\"alias\",\"bucket\":\"files\",\"options\":{\"link\":{\"bucket\":"
             "\"files\",\"name\":\"from-js.bin\"}},\"nuid\":\"%s\"}", "LINKNUID00000000000000");
    meta_subject("files", "alias", subj, sizeof subj);
    REQUIRE(wire_publish(c, subj, meta, strlen(meta), true) == 0);
    REQUIRE(ember_obj_get_info(obj, "alias", &info) == EMBER_OK);
    CHECK(info->link_bucket && !strcmp(info->link_bucket, "files"));
    CHECK(info->link_name && !strcmp(info->link_name, "from-js.bin"));
    ember_obj_info_free(info);
    rc = ember_obj_get(obj, "alias", &got, &gl, &info);
    CHECK_MSG(rc == EMBER_OK, "%s", ember_last_error());
    if (rc == EMBER_OK) {
        CHECK(gl == len && !memcmp(got, d, len));
        CHECK(!strcmp(info->name, "from-js.bin")); /* the linked object's info */
        free(got);
        ember_obj_info_free(info);
    }
    snprintf(meta, sizeof meta,
             "{\"name\":\"dirlink\",\"bucket\":\"files\",\"options\":{\"link\":{\"bucket\":"
             "\"other\"}},\"nuid\":\"LINKNUID00000000000001\"}");
    meta_subject("files", "dirlink", subj, sizeof subj);
    REQUIRE(wire_publish(c, subj, meta, strlen(meta), true) == 0);
    CHECK(ember_obj_get(obj, "dirlink", &got, &gl, NULL) == EMBER_EINVAL);
    CHECK(strstr(ember_last_error(), "link to a bucket") != NULL);
    /* a link to itself */
    snprintf(meta, sizeof meta,
             "{\"name\":\"loop\",\"bucket\":\"files\",\"options\":{\"link\":{\"bucket\":"
             "\"files\",\"name\":\"loop\"}},\"nuid\":\"LINKNUID00000000000002\"}");
    meta_subject("files", "loop", subj, sizeof subj);
    REQUIRE(wire_publish(c, subj, meta, strlen(meta), true) == 0);
    CHECK(ember_obj_get(obj, "loop", &got, &gl, NULL) == EMBER_EINVAL);

    /* a native delete of the client's object keeps its fields (headers, metadata) */
    REQUIRE(ember_obj_delete(obj, "from-js.bin") == EMBER_OK);
    meta_subject("files", "from-js.bin", subj, sizeof subj);
    ember_msg *m = NULL;
    REQUIRE(ember_js_get_last(c, "OBJ_files", subj, &m) == EMBER_OK);
    size_t ml;
    cJSON *j = cJSON_ParseWithLength(ember_msg_data(m, &ml), ml);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "deleted")));
    CHECK(cJSON_GetObjectItemCaseSensitive(j, "metadata") != NULL);
    CHECK(cJSON_GetObjectItemCaseSensitive(j, "headers") != NULL);
    cJSON_Delete(j);
    ember_msg_release(m);
    CHECK(ember_js_get_last(c, "OBJ_files", csubj, &m) == EMBER_ENOTFOUND);
    /* the link now points at nothing */
    CHECK(ember_obj_get(obj, "alias", &got, &gl, NULL) == EMBER_ENOTFOUND);
    free(d);
    ember_obj_close(obj);
}

static void test_limits_memory(ember_conn *c)
{
    ember_obj_config cfg;
    ember_obj_config_init(&cfg);
    cfg.bucket = "tiny";
    cfg.max_bytes = 64 * 1024;
    ember_obj *obj = NULL;
    REQUIRE(ember_obj_bucket_create(c, &cfg, &obj) == EMBER_OK);
    unsigned char *d = random_bytes(200000, 11);
    CHECK(ember_obj_put(obj, "toobig", d, 200000, NULL, NULL) == EMBER_ELIMIT);
    CHECK(strstr(ember_last_error(), "maximum bytes") != NULL);
    CHECK_EQ(stream_msgs(c, "OBJ_tiny"), 0); /* the chunks that fitted were purged */
    CHECK(ember_obj_get_info(obj, "toobig", NULL) == EMBER_EINVAL);
    ember_obj_info *info = NULL;
    CHECK(ember_obj_get_info(obj, "toobig", &info) == EMBER_ENOTFOUND);
    CHECK(ember_obj_put(obj, "fits", d, 1000, NULL, NULL) == EMBER_OK);
    ember_obj_close(obj);
    CHECK(ember_obj_bucket_delete(c, "tiny") == EMBER_OK);

    ember_obj_config_init(&cfg);
    cfg.bucket = "mem";
    cfg.storage = EMBER_STORAGE_MEMORY;
    cfg.chunk_size = 4096;
    REQUIRE(ember_obj_bucket_create(c, &cfg, &obj) == EMBER_OK);
    REQUIRE(ember_obj_put(obj, "m", d, 200000, NULL, &info) == EMBER_OK);
    CHECK_EQ(info->chunks, (200000 + 4095) / 4096);
    ember_obj_info_free(info);
    void *got = NULL;
    size_t gl = 0;
    CHECK(ember_obj_get(obj, "m", &got, &gl, NULL) == EMBER_OK && gl == 200000 &&
          !memcmp(got, d, gl));
    free(got);
    /* a chunk size over max_payload is capped at it, as the clients cap it */
    ember_obj_put_options po;
    ember_obj_put_options_init(&po);
    po.chunk_size = 64u * 1024 * 1024;
    REQUIRE(ember_obj_put(obj, "capped", d, 200000, &po, &info) == EMBER_OK);
    CHECK_EQ(info->chunk_size, 1024 * 1024);
    CHECK_EQ(info->chunks, 1);
    ember_obj_info_free(info);
    ember_obj_close(obj);
    free(d);
}

/* Writers of the same name on several threads, readers alongside: every put ends with
 * exactly one object left, and a reader sees a whole object or a clean error. */
typedef struct race_arg {
    ember_conn *conn;
    int id;
    atomic_int *stop;
    atomic_int reads_ok, reads_replaced;
} race_arg;

static void *race_writer(void *p)
{
    race_arg *a = p;
    ember_obj *obj = NULL;
    if (ember_obj_bucket_open(a->conn, "race", &obj) != EMBER_OK)
        return NULL;
    ember_obj_put_options po;
    ember_obj_put_options_init(&po);
    po.chunk_size = 512;
    for (int i = 0; i < 15; i++) {
        size_t len = 2000 + (size_t)(a->id * 100 + i);
        unsigned char *d = random_bytes(len, (unsigned)(a->id * 1000 + i));
        int rc = ember_obj_put(obj, "same", d, len, &po, NULL);
        CHECK_MSG(rc == EMBER_OK, "%s", ember_last_error());
        free(d);
    }
    ember_obj_close(obj);
    return NULL;
}

static void *race_reader(void *p)
{
    race_arg *a = p;
    ember_obj *obj = NULL;
    if (ember_obj_bucket_open(a->conn, "race", &obj) != EMBER_OK)
        return NULL;
    while (!atomic_load(a->stop)) {
        void *got = NULL;
        size_t gl = 0;
        ember_obj_info *info = NULL;
        int rc = ember_obj_get(obj, "same", &got, &gl, &info);
        if (rc == EMBER_OK) {
            char want[64];
            digest_of(got, gl, want);
            CHECK(!strcmp(want, info->digest) && gl == info->size);
            atomic_fetch_add(&a->reads_ok, 1);
            free(got);
            ember_obj_info_free(info);
        } else {
            CHECK_MSG(rc == EMBER_ENOTFOUND || (rc == EMBER_EIO && strstr(ember_last_error(),
                                                                          "replaced")),
                      "%d %s", rc, ember_last_error());
            if (rc == EMBER_EIO)
                atomic_fetch_add(&a->reads_replaced, 1);
        }
    }
    ember_obj_close(obj);
    return NULL;
}

static void test_concurrency(ember_server *s)
{
    ember_conn *c = NULL;
    REQUIRE(ember_conn_connect(&c, s, NULL) == EMBER_OK);
    ember_obj_config cfg;
    ember_obj_config_init(&cfg);
    cfg.bucket = "race";
    ember_obj *obj = NULL;
    REQUIRE(ember_obj_bucket_create(c, &cfg, &obj) == EMBER_OK);
    atomic_int stop = 0;
    race_arg args[4];
    pthread_t th[4];
    ember_conn *conns[4];
    for (int i = 0; i < 4; i++) {
        memset(&args[i], 0, sizeof args[i]);
        REQUIRE(ember_conn_connect(&conns[i], s, NULL) == EMBER_OK);
        args[i].conn = conns[i];
        args[i].id = i;
        args[i].stop = &stop;
        pthread_create(&th[i], NULL, i < 3 ? race_writer : race_reader, &args[i]);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    atomic_store(&stop, 1);
    pthread_join(th[3], NULL);
    for (int i = 0; i < 4; i++)
        ember_conn_close(conns[i]);
    /* one object: its chunks and one metadata message, nothing else */
    ember_obj_info *info = NULL;
    REQUIRE(ember_obj_get_info(obj, "same", &info) == EMBER_OK);
    CHECK_EQ(stream_msgs(c, "OBJ_race"), info->chunks + 1);
    ember_obj_info_free(info);
    void *got = NULL;
    size_t gl = 0;
    CHECK(ember_obj_get(obj, "same", &got, &gl, NULL) == EMBER_OK);
    free(got);
    ember_obj_close(obj);
    ember_conn_close(c);
}

static void test_restart(void)
{
    ember_server *s = start();
    REQUIRE(s);
    ember_conn *c = NULL;
    REQUIRE(ember_conn_connect(&c, s, NULL) == EMBER_OK);
    ember_obj *obj = NULL;
    REQUIRE(ember_obj_bucket_open(c, "files", &obj) == EMBER_OK);
    size_t big_len = 5 * 1024 * 1024 + 12345;
    unsigned char *big = random_bytes(big_len, 3);
    void *got = NULL;
    size_t gl = 0;
    int rc = ember_obj_get(obj, "big.bin", &got, &gl, NULL);
    CHECK_MSG(rc == EMBER_OK, "%s", ember_last_error());
    CHECK(gl == big_len && got && !memcmp(got, big, big_len));
    free(got);
    free(big);
    CHECK(ember_obj_get(obj, "streamed", &got, &gl, NULL) == EMBER_OK && gl == 1000000);
    free(got);
    CHECK(ember_obj_get(obj, "empty", &got, &gl, NULL) == EMBER_OK && gl == 0);
    free(got);
    char **names = NULL;
    size_t n = 0;
    REQUIRE(ember_obj_list(obj, &names, &n) == EMBER_OK);
    bool streamed = false, from_js = false;
    for (size_t i = 0; i < n; i++) {
        streamed |= !strcmp(names[i], "streamed");
        from_js |= !strcmp(names[i], "from-js.bin");
    }
    CHECK(streamed && !from_js);
    free(names);
    ember_obj_close(obj);
    /* the memory bucket is gone, as in nats-server */
    CHECK(ember_obj_bucket_open(c, "mem", &obj) == EMBER_ENOTFOUND);
    ember_conn_close(c);
    ember_server_free(s);
}

static void test_disabled(void)
{
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true;
    ember_server *s = NULL;
    REQUIRE(ember_server_new(&s, &o) == EMBER_OK && ember_server_start(s) == EMBER_OK);
    REQUIRE(ember_server_ready_for_connections(s, 5000));
    ember_conn *c = NULL;
    REQUIRE(ember_conn_connect(&c, s, NULL) == EMBER_OK);
    ember_obj *obj = NULL;
    CHECK(ember_obj_bucket_open(c, "files", &obj) == EMBER_ESTATE);
    ember_obj_config cfg;
    ember_obj_config_init(&cfg);
    cfg.bucket = "files";
    CHECK(ember_obj_bucket_create(c, &cfg, &obj) == EMBER_ESTATE);
    ember_conn_close(c);
    ember_server_free(s);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/ember-obj-native-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    ember_server *s = start();
    if (!s)
        return 1;
    ember_conn *c = NULL;
    if (ember_conn_connect(&c, s, NULL))
        return 1;
    test_buckets(c);
    test_put_get(c);
    test_meta_json(c);
    test_streaming(c);
    test_list_delete_replace(c);
    test_digest(c);
    test_wire_object(c);
    test_limits_memory(c);
    test_concurrency(s);
    ember_conn_close(c);
    ember_server_free(s);
    test_restart();
    test_disabled();
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return tu_summary("test_obj_native");
}
