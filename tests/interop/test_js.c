/*
 * JetStream interop suite: drives a NATS server binary started with JetStream
 * (`-js -sd <fresh dir>`) with the official C client (libnats): streams,
 * publishing, limits, consumers (pull and push) and Key-Value.
 *
 *   test_js [filter]
 *
 * runs every case whose name contains `filter` (all when omitted), each
 * against a freshly started server with its own empty store directory, and
 * ends with "N passed, N failed".
 *
 * The server comes from EMBER_TEST_SERVER (harness.h). The expectations are
 * what nats-server 2.9.10 does; cases for features that only 2.11+ servers
 * have are gated on the version in the server's INFO (Ember advertises 2.11).
 *
 * Every wait is bounded and nothing asserts on how long something took:
 * where the server acts on a timer (max_age, ack_wait, TTL) a case polls
 * with a generous bound and checks the outcome, never the delay.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- case plumbing ------------------------------------------------------ */

static int g_case_failed;
static int g_case_skipped;
static const char *g_case_name;
static int g_ver[3]; /* server version from INFO */

static void case_fail(int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "  %s: test_js.c:%d: ", g_case_name, line);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    g_case_failed = 1;
}

static const char *last_err(void)
{
    natsStatus st;
    const char *t = nats_GetLastError(&st);
    return t ? t : "";
}

#define FAIL(...)                                                                                \
    do {                                                                                         \
        case_fail(__LINE__, __VA_ARGS__);                                                        \
        goto done;                                                                               \
    } while (0)
#define CHECK(c)                                                                                 \
    do {                                                                                         \
        if (!(c))                                                                                \
            FAIL("check failed: %s", #c);                                                        \
    } while (0)
#define CHECK_NATS(expr)                                                                         \
    do {                                                                                         \
        natsStatus _s = (expr);                                                                  \
        if (_s != NATS_OK)                                                                       \
            FAIL("%s -> %s (%s)", #expr, natsStatus_GetText(_s), last_err());                    \
    } while (0)
#define CHECK_STATUS(expr, want)                                                                 \
    do {                                                                                         \
        natsStatus _s = (expr);                                                                  \
        if (_s != (want))                                                                        \
            FAIL("%s -> %s, expected %s (%s)", #expr, natsStatus_GetText(_s),                    \
                 natsStatus_GetText(want), last_err());                                          \
    } while (0)
#define CHECK_U64(got, want)                                                                     \
    do {                                                                                         \
        uint64_t _g = (uint64_t)(got), _w = (uint64_t)(want);                                    \
        if (_g != _w)                                                                            \
            FAIL("%s = %" PRIu64 ", expected %" PRIu64, #got, _g, _w);                           \
    } while (0)
#define CHECK_I64(got, want)                                                                     \
    do {                                                                                         \
        int64_t _g = (int64_t)(got), _w = (int64_t)(want);                                       \
        if (_g != _w)                                                                            \
            FAIL("%s = %" PRId64 ", expected %" PRId64, #got, _g, _w);                           \
    } while (0)
#define CHECK_STR(got, want)                                                                     \
    do {                                                                                         \
        const char *_g = (got), *_w = (want);                                                    \
        if (!_g || strcmp(_g, _w) != 0)                                                          \
            FAIL("%s = \"%s\", expected \"%s\"", #got, _g ? _g : "(null)", _w);                 \
    } while (0)
/*
 * A JetStream API call that must fail with natsStatus `want_st`, JetStream
 * error code `want_code` (jerr, passed as the call's errCode argument) and,
 * if `want_text` is not NULL, an error text containing it.
 */
#define CHECK_JSERR(expr, jerr, want_st, want_code, want_text)                                   \
    do {                                                                                         \
        (jerr) = 0;                                                                              \
        natsStatus _s = (expr);                                                                  \
        const char *_t = last_err();                                                             \
        if (_s != (want_st) || (int)(jerr) != (int)(want_code) ||                                \
            ((want_text) && !strstr(_t, (want_text) ? (want_text) : "")))                        \
            FAIL("%s -> %s, err_code %d, \"%s\"; expected %s, %d, \"%s\"", #expr,               \
                 natsStatus_GetText(_s), (int)(jerr), _t, natsStatus_GetText(want_st),          \
                 (int)(want_code), (want_text) ? (want_text) : "*");                             \
    } while (0)

/* Skip the rest of a case (a feature the server's version does not have). */
#define SKIP(...)                                                                                \
    do {                                                                                         \
        printf("  %s: skipped: ", g_case_name);                                                  \
        printf(__VA_ARGS__);                                                                     \
        printf("\n");                                                                            \
        g_case_skipped = 1;                                                                      \
        goto done;                                                                               \
    } while (0)

/* Parse "x.y.z" out of the server's INFO line. */
static void read_server_version(const th_server *s)
{
    char info[8192];
    g_ver[0] = g_ver[1] = g_ver[2] = 0;
    int fd = th_raw_connect(s->port, 0, 5000);
    if (fd < 0)
        return;
    if (th_raw_read_info(fd, info, sizeof(info), NULL, 5000) > 0) {
        const char *v = strstr(info, "\"version\":\"");
        if (v)
            sscanf(v + 11, "%d.%d.%d", &g_ver[0], &g_ver[1], &g_ver[2]);
    }
    close(fd);
}

static int server_at_least(int maj, int min, int patch)
{
    if (g_ver[0] != maj)
        return g_ver[0] > maj;
    if (g_ver[1] != min)
        return g_ver[1] > min;
    return g_ver[2] >= patch;
}

/* ---- JetStream helpers -------------------------------------------------- */

#define MS 1000000LL /* nanoseconds per millisecond */

static natsStatus js_connect(const th_server *s, natsConnection **nc, jsCtx **js)
{
    *js = NULL;
    natsStatus st = th_connect(s, NULL, nc);
    if (st == NATS_OK) {
        jsOptions o;
        jsOptions_Init(&o);
        o.Wait = 4000; /* API calls over loopback; bounds a failing run */
        st = natsConnection_JetStream(js, *nc, &o);
    }
    return st;
}

static void js_close(natsConnection *nc, jsCtx *js)
{
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

/* Add a stream `name` on the single subject `subj`, storage file, other
 * settings from `tweak` (may be NULL; its Name/Subjects are overwritten). */
static natsStatus add_stream(jsCtx *js, const char *name, const char *subj,
                             const jsStreamConfig *tweak, jsErrCode *jerr)
{
    jsStreamConfig cfg;
    const char *subjects[1] = {subj};
    if (tweak)
        cfg = *tweak;
    else
        jsStreamConfig_Init(&cfg);
    cfg.Name = name;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    jsStreamInfo *si = NULL;
    natsStatus st = js_AddStream(&si, js, &cfg, NULL, jerr);
    jsStreamInfo_Destroy(si);
    return st;
}

/* Stream state (messages, first and last sequence); 0 or a natsStatus. */
static natsStatus stream_state(jsCtx *js, const char *name, jsStreamState *out)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus st = js_GetStreamInfo(&si, js, name, NULL, &jerr);
    if (st == NATS_OK) {
        *out = si->State;
        out->Subjects = NULL;
        out->Deleted = NULL;
        out->Lost = NULL;
        jsStreamInfo_Destroy(si);
    }
    return st;
}

/* Poll stream info until it holds `want` messages; 1 when it did within
 * max_ms, 0 otherwise (the count last seen is left in *seen). */
static int wait_stream_msgs(jsCtx *js, const char *name, uint64_t want, int max_ms,
                            uint64_t *seen)
{
    int64_t deadline = th_now_ms() + max_ms;
    for (;;) {
        jsStreamState ss;
        if (stream_state(js, name, &ss) == NATS_OK) {
            if (seen)
                *seen = ss.Msgs;
            if (ss.Msgs == want)
                return 1;
        }
        if (th_now_ms() >= deadline)
            return 0;
        th_sleep_ms(50);
    }
}

static natsStatus publish_n(jsCtx *js, const char *subj, int n)
{
    for (int i = 0; i < n; i++) {
        char buf[32];
        int len = snprintf(buf, sizeof(buf), "m%d", i + 1);
        jsPubAck *pa = NULL;
        natsStatus st = js_Publish(&pa, js, subj, buf, len, NULL, NULL);
        jsPubAck_Destroy(pa);
        if (st != NATS_OK)
            return st;
    }
    return NATS_OK;
}

/* Publish one message with one header; the ack (if any) goes to *pa. */
static natsStatus publish_hdr(jsCtx *js, jsPubAck **pa, const char *subj, const char *data,
                              const char *hkey, const char *hval, jsErrCode *jerr)
{
    natsMsg *m = NULL;
    natsStatus st = natsMsg_Create(&m, subj, NULL, data, (int)strlen(data));
    if (st == NATS_OK && hkey)
        st = natsMsgHeader_Set(m, hkey, hval);
    if (st == NATS_OK)
        st = js_PublishMsg(pa, js, m, NULL, jerr);
    natsMsg_Destroy(m);
    return st;
}

static int msg_is(natsMsg *m, const char *subj, const char *data)
{
    if (!m)
        return 0;
    if (subj && strcmp(natsMsg_GetSubject(m), subj) != 0)
        return 0;
    return natsMsg_GetDataLength(m) == (int)strlen(data) &&
           memcmp(natsMsg_GetData(m), data, strlen(data)) == 0;
}

static uint64_t msg_stream_seq(natsMsg *m)
{
    jsMsgMetaData *md = NULL;
    uint64_t seq = 0;
    if (natsMsg_GetMetaData(&md, m) == NATS_OK) {
        seq = md->Sequence.Stream;
        jsMsgMetaData_Destroy(md);
    }
    return seq;
}

static uint64_t msg_num_delivered(natsMsg *m)
{
    jsMsgMetaData *md = NULL;
    uint64_t n = 0;
    if (natsMsg_GetMetaData(&md, m) == NATS_OK) {
        n = md->NumDelivered;
        jsMsgMetaData_Destroy(md);
    }
    return n;
}

static natsStatus consumer_info(jsCtx *js, const char *stream, const char *name,
                                jsConsumerInfo **ci)
{
    jsErrCode jerr = 0;
    *ci = NULL;
    return js_GetConsumerInfo(ci, js, stream, name, NULL, &jerr);
}

/* ---- account and stream management ------------------------------------- */

static int case_account_info(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsAccountInfo *ai = NULL;
    jsErrCode jerr = 0;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(js_GetAccountInfo(&ai, js, NULL, &jerr));
    CHECK_I64(ai->Streams, 0);
    CHECK_I64(ai->Consumers, 0);
    CHECK_U64(ai->Memory, 0);
    CHECK_U64(ai->Store, 0);
    /* No account limits configured: every limit is -1 (unlimited). */
    CHECK_I64(ai->Limits.MaxStreams, -1);
    CHECK_I64(ai->Limits.MaxConsumers, -1);
    CHECK_I64(ai->Limits.MaxMemory, -1);
    CHECK_I64(ai->Limits.MaxStore, -1);
    jsAccountInfo_Destroy(ai);
    ai = NULL;

    jsStreamConfig mem;
    jsStreamConfig_Init(&mem);
    mem.Storage = js_MemoryStorage;
    CHECK_NATS(add_stream(js, "A", "a.>", NULL, &jerr));
    CHECK_NATS(add_stream(js, "B", "b.>", &mem, &jerr));
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = "D";
    cc.AckPolicy = js_AckExplicit;
    jsConsumerInfo *ci = NULL;
    CHECK_NATS(js_AddConsumer(&ci, js, "A", &cc, NULL, &jerr));
    jsConsumerInfo_Destroy(ci);
    CHECK_NATS(publish_n(js, "a.x", 3));
    CHECK_NATS(publish_n(js, "b.x", 2));

    CHECK_NATS(js_GetAccountInfo(&ai, js, NULL, &jerr));
    CHECK_I64(ai->Streams, 2);
    CHECK_I64(ai->Consumers, 1);
    CHECK(ai->Store > 0);
    CHECK(ai->Memory > 0);
    CHECK(ai->API.Total > 0);
done:
    jsAccountInfo_Destroy(ai);
    js_close(nc, js);
    return 0;
}

static int case_stream_add(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    const char *subj[] = {"file.>"};
    const char *subj2[] = {"mem.a", "mem.b"};

    CHECK_NATS(js_connect(s, &nc, &js));
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = "FILE";
    cfg.Subjects = subj;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    CHECK_NATS(js_AddStream(&si, js, &cfg, NULL, &jerr));
    /* The config comes back with the defaults filled in. */
    CHECK_STR(si->Config->Name, "FILE");
    CHECK(si->Config->SubjectsLen == 1);
    CHECK_STR(si->Config->Subjects[0], "file.>");
    CHECK(si->Config->Storage == js_FileStorage);
    CHECK(si->Config->Retention == js_LimitsPolicy);
    CHECK(si->Config->Discard == js_DiscardOld);
    CHECK_I64(si->Config->MaxMsgs, -1);
    CHECK_I64(si->Config->MaxBytes, -1);
    CHECK_I64(si->Config->MaxMsgSize, -1);
    CHECK_I64(si->Config->MaxMsgsPerSubject, -1);
    CHECK_I64(si->Config->MaxConsumers, -1);
    CHECK_I64(si->Config->MaxAge, 0);
    CHECK_I64(si->Config->Replicas, 1);
    CHECK_I64(si->Config->Duplicates, 120000 * MS); /* 2 minutes */
    CHECK_U64(si->State.Msgs, 0);
    CHECK_U64(si->State.Bytes, 0);
    CHECK_U64(si->State.FirstSeq, 0);
    CHECK_U64(si->State.LastSeq, 0);
    CHECK(si->Created > 0);
    jsStreamInfo_Destroy(si);
    si = NULL;

    jsStreamConfig_Init(&cfg);
    cfg.Name = "MEM";
    cfg.Subjects = subj2;
    cfg.SubjectsLen = 2;
    cfg.Storage = js_MemoryStorage;
    cfg.MaxAge = 500 * MS; /* duplicate window is clamped to max_age */
    CHECK_NATS(js_AddStream(&si, js, &cfg, NULL, &jerr));
    CHECK(si->Config->Storage == js_MemoryStorage);
    CHECK(si->Config->SubjectsLen == 2);
    CHECK_I64(si->Config->MaxAge, 500 * MS);
    CHECK_I64(si->Config->Duplicates, 500 * MS);
    jsStreamInfo_Destroy(si);
    si = NULL;

    /* Both store what is published to them. */
    CHECK_NATS(publish_n(js, "file.x", 2));
    CHECK_NATS(publish_n(js, "mem.b", 3));
    jsStreamState st;
    CHECK_NATS(stream_state(js, "FILE", &st));
    CHECK_U64(st.Msgs, 2);
    CHECK_U64(st.FirstSeq, 1);
    CHECK_U64(st.LastSeq, 2);
    CHECK_NATS(stream_state(js, "MEM", &st));
    CHECK_U64(st.Msgs, 3);
    CHECK_U64(st.LastSeq, 3);

    /* Subjects overlapping another stream's. */
    jsStreamConfig_Init(&cfg);
    cfg.Name = "OVER";
    cfg.Subjects = subj;
    cfg.SubjectsLen = 1;
    CHECK_JSERR(js_AddStream(&si, js, &cfg, NULL, &jerr), jerr, NATS_ERR, 10065,
                "subjects overlap with an existing stream");
done:
    jsStreamInfo_Destroy(si);
    js_close(nc, js);
    return 0;
}

static int case_stream_readd(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    const char *subj[] = {"re.>"};

    CHECK_NATS(js_connect(s, &nc, &js));
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = "RE";
    cfg.Subjects = subj;
    cfg.SubjectsLen = 1;
    cfg.MaxMsgs = 100;
    CHECK_NATS(js_AddStream(&si, js, &cfg, NULL, &jerr));
    jsStreamInfo_Destroy(si);
    si = NULL;
    CHECK_NATS(publish_n(js, "re.a", 3));
    /* The identical config again: success, and the stream is untouched. */
    CHECK_NATS(js_AddStream(&si, js, &cfg, NULL, &jerr));
    CHECK_U64(si->State.Msgs, 3);
    CHECK_I64(si->Config->MaxMsgs, 100);
    jsStreamInfo_Destroy(si);
    si = NULL;
    /* A different config under the same name. */
    cfg.MaxMsgs = 200;
    CHECK_JSERR(js_AddStream(&si, js, &cfg, NULL, &jerr), jerr, NATS_ERR, 10058,
                "stream name already in use with a different configuration");
    CHECK(si == NULL);
    jsStreamState st;
    CHECK_NATS(stream_state(js, "RE", &st));
    CHECK_U64(st.Msgs, 3);
done:
    jsStreamInfo_Destroy(si);
    js_close(nc, js);
    return 0;
}

static int case_stream_update(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    const char *subj[] = {"up.a"};
    const char *subj2[] = {"up.a", "up.b"};

    CHECK_NATS(js_connect(s, &nc, &js));
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = "UP";
    cfg.Subjects = subj;
    cfg.SubjectsLen = 1;
    CHECK_NATS(js_AddStream(&si, js, &cfg, NULL, &jerr));
    jsStreamInfo_Destroy(si);
    si = NULL;
    CHECK_NATS(publish_n(js, "up.a", 10));

    /* Add a subject and lower max_msgs: the oldest messages go. */
    cfg.Subjects = subj2;
    cfg.SubjectsLen = 2;
    cfg.MaxMsgs = 4;
    cfg.Description = "updated";
    CHECK_NATS(js_UpdateStream(&si, js, &cfg, NULL, &jerr));
    CHECK_I64(si->Config->MaxMsgs, 4);
    CHECK(si->Config->SubjectsLen == 2);
    CHECK_STR(si->Config->Description, "updated");
    CHECK_U64(si->State.Msgs, 4);
    CHECK_U64(si->State.FirstSeq, 7);
    CHECK_U64(si->State.LastSeq, 10);
    jsStreamInfo_Destroy(si);
    si = NULL;
    jsPubAck *pa = NULL;
    CHECK_NATS(js_Publish(&pa, js, "up.b", "x", 1, NULL, &jerr));
    CHECK_U64(pa->Sequence, 11);
    CHECK_STR(pa->Stream, "UP");
    jsPubAck_Destroy(pa);

    /* The storage type cannot change. */
    cfg.Storage = js_MemoryStorage;
    CHECK_JSERR(js_UpdateStream(&si, js, &cfg, NULL, &jerr), jerr, NATS_ERR, 10052,
                "can not change storage type");
    /* Updating a stream that does not exist. */
    cfg.Storage = js_FileStorage;
    cfg.Name = "NOPE";
    CHECK_JSERR(js_UpdateStream(&si, js, &cfg, NULL, &jerr), jerr, NATS_NOT_FOUND, 10059,
                NULL);
done:
    jsStreamInfo_Destroy(si);
    js_close(nc, js);
    return 0;
}

static int case_stream_info(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(add_stream(js, "INF", "inf.>", NULL, &jerr));
    CHECK_NATS(publish_n(js, "inf.a", 2));
    CHECK_NATS(publish_n(js, "inf.b", 3));
    CHECK_NATS(js_GetStreamInfo(&si, js, "INF", NULL, &jerr));
    CHECK_U64(si->State.Msgs, 5);
    CHECK_U64(si->State.FirstSeq, 1);
    CHECK_U64(si->State.LastSeq, 5);
    CHECK(si->State.Bytes > 0);
    CHECK_I64(si->State.NumSubjects, 2);
    CHECK(si->State.FirstTime > 0 && si->State.LastTime >= si->State.FirstTime);
    CHECK_I64(si->State.Consumers, 0);
    jsStreamInfo_Destroy(si);
    si = NULL;

    /* With a subjects filter the per-subject counts come back. */
    jsOptions o;
    jsOptions_Init(&o);
    o.Stream.Info.SubjectsFilter = ">";
    CHECK_NATS(js_GetStreamInfo(&si, js, "INF", &o, &jerr));
    CHECK(si->State.Subjects != NULL);
    CHECK(si->State.Subjects->Count == 2);
    for (int i = 0; i < si->State.Subjects->Count; i++) {
        jsStreamStateSubject *e = &si->State.Subjects->List[i];
        if (strcmp(e->Subject, "inf.a") == 0)
            CHECK_U64(e->Msgs, 2);
        else if (strcmp(e->Subject, "inf.b") == 0)
            CHECK_U64(e->Msgs, 3);
        else
            FAIL("unexpected subject %s", e->Subject);
    }
    jsStreamInfo_Destroy(si);
    si = NULL;

    /* Missing stream. */
    CHECK_JSERR(js_GetStreamInfo(&si, js, "MISSING", NULL, &jerr), jerr, NATS_NOT_FOUND,
                10059, NULL);
    CHECK(si == NULL);
done:
    jsStreamInfo_Destroy(si);
    js_close(nc, js);
    return 0;
}

static int case_stream_names_list(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    jsStreamNamesList *names = NULL;
    jsStreamInfoList *list = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    /* No streams: libnats reports NATS_NOT_FOUND for an empty list. */
    CHECK_STATUS(js_StreamNames(&names, js, NULL, &jerr), NATS_NOT_FOUND);
    CHECK_STATUS(js_Streams(&list, js, NULL, &jerr), NATS_NOT_FOUND);

    CHECK_NATS(add_stream(js, "S1", "s1", NULL, &jerr));
    CHECK_NATS(add_stream(js, "S2", "s2", NULL, &jerr));
    CHECK_NATS(add_stream(js, "S3", "s3", NULL, &jerr));
    CHECK_NATS(publish_n(js, "s2", 2));
    CHECK_NATS(js_StreamNames(&names, js, NULL, &jerr));
    CHECK(names->Count == 3);
    int seen = 0;
    for (int i = 0; i < names->Count; i++) {
        if (strcmp(names->List[i], "S1") == 0)
            seen |= 1;
        else if (strcmp(names->List[i], "S2") == 0)
            seen |= 2;
        else if (strcmp(names->List[i], "S3") == 0)
            seen |= 4;
    }
    CHECK(seen == 7);

    CHECK_NATS(js_Streams(&list, js, NULL, &jerr));
    CHECK(list->Count == 3);
    seen = 0;
    for (int i = 0; i < list->Count; i++) {
        jsStreamInfo *si = list->List[i];
        if (strcmp(si->Config->Name, "S2") == 0) {
            CHECK_U64(si->State.Msgs, 2);
            seen |= 2;
        } else {
            CHECK_U64(si->State.Msgs, 0);
            seen |= 1;
        }
    }
    CHECK(seen == 3);
done:
    jsStreamNamesList_Destroy(names);
    jsStreamInfoList_Destroy(list);
    js_close(nc, js);
    return 0;
}

static int case_stream_delete(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    jsStreamInfo *si = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(add_stream(js, "DEL", "del.>", NULL, &jerr));
    CHECK_NATS(publish_n(js, "del.a", 3));
    CHECK_NATS(js_DeleteStream(js, "DEL", NULL, &jerr));
    CHECK_JSERR(js_GetStreamInfo(&si, js, "DEL", NULL, &jerr), jerr, NATS_NOT_FOUND, 10059,
                NULL);
    CHECK_JSERR(js_DeleteStream(js, "DEL", NULL, &jerr), jerr, NATS_NOT_FOUND, 10059, NULL);
    /* Nothing listens on the subject any more. */
    jsPubAck *pa = NULL;
    CHECK_STATUS(js_Publish(&pa, js, "del.a", "x", 1, NULL, &jerr), NATS_NO_RESPONDERS);
    /* The name can be reused, and starts from sequence 1 again. */
    CHECK_NATS(add_stream(js, "DEL", "del.>", NULL, &jerr));
    CHECK_NATS(js_Publish(&pa, js, "del.a", "x", 1, NULL, &jerr));
    CHECK_U64(pa->Sequence, 1);
    jsPubAck_Destroy(pa);
done:
    jsStreamInfo_Destroy(si);
    js_close(nc, js);
    return 0;
}

/* Stream "P" on p.> holding p.a x4 and p.b x4, interleaved (seq 1..8). */
static natsStatus purge_setup(jsCtx *js)
{
    jsErrCode jerr = 0;
    natsStatus st = add_stream(js, "P", "p.>", NULL, &jerr);
    for (int i = 0; st == NATS_OK && i < 4; i++) {
        st = publish_n(js, "p.a", 1);
        if (st == NATS_OK)
            st = publish_n(js, "p.b", 1);
    }
    return st;
}

static int case_purge_all(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    jsStreamState st;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(purge_setup(js));
    CHECK_NATS(js_PurgeStream(js, "P", NULL, &jerr));
    CHECK_NATS(stream_state(js, "P", &st));
    CHECK_U64(st.Msgs, 0);
    CHECK_U64(st.Bytes, 0);
    CHECK_U64(st.FirstSeq, 9);
    CHECK_U64(st.LastSeq, 8);
    /* Sequences continue after a purge. */
    jsPubAck *pa = NULL;
    CHECK_NATS(js_Publish(&pa, js, "p.a", "x", 1, NULL, &jerr));
    CHECK_U64(pa->Sequence, 9);
    jsPubAck_Destroy(pa);
    CHECK_JSERR(js_PurgeStream(js, "MISSING", NULL, &jerr), jerr, NATS_NOT_FOUND, 10059, NULL);
done:
    js_close(nc, js);
    return 0;
}

static int case_purge_filter(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    jsStreamState st;
    natsMsg *m = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(purge_setup(js));
    jsOptions o;
    jsOptions_Init(&o);
    o.Stream.Purge.Subject = "p.a";
    CHECK_NATS(js_PurgeStream(js, "P", &o, &jerr));
    CHECK_NATS(stream_state(js, "P", &st));
    CHECK_U64(st.Msgs, 4);
    CHECK_U64(st.FirstSeq, 2);
    CHECK_U64(st.LastSeq, 8);
    CHECK_JSERR(js_GetLastMsg(&m, js, "P", "p.a", NULL, &jerr), jerr, NATS_NOT_FOUND, 10037,
                NULL);
    CHECK_NATS(js_GetLastMsg(&m, js, "P", "p.b", NULL, &jerr));
    CHECK(msg_is(m, "p.b", "m1"));
done:
    natsMsg_Destroy(m);
    js_close(nc, js);
    return 0;
}

static int case_purge_keep(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    jsStreamState st;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(purge_setup(js));
    jsOptions o;
    jsOptions_Init(&o);
    o.Stream.Purge.Keep = 3;
    CHECK_NATS(js_PurgeStream(js, "P", &o, &jerr));
    CHECK_NATS(stream_state(js, "P", &st));
    CHECK_U64(st.Msgs, 3);
    CHECK_U64(st.FirstSeq, 6);
    CHECK_U64(st.LastSeq, 8);
    /* Keep with a filter: keep the last p.b only. */
    jsOptions_Init(&o);
    o.Stream.Purge.Keep = 1;
    o.Stream.Purge.Subject = "p.b";
    CHECK_NATS(js_PurgeStream(js, "P", &o, &jerr));
    CHECK_NATS(stream_state(js, "P", &st));
    CHECK_U64(st.Msgs, 2); /* seq 7 (p.a) and 8 (p.b) */
    CHECK_U64(st.FirstSeq, 7);
    /* (seq and keep together: libnats refuses that itself; test_js_compare
     * sends it raw.) */
done:
    js_close(nc, js);
    return 0;
}

static int case_purge_seq(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    jsStreamState st;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(purge_setup(js));
    /* Purge up to, not including, sequence 5. */
    jsOptions o;
    jsOptions_Init(&o);
    o.Stream.Purge.Sequence = 5;
    CHECK_NATS(js_PurgeStream(js, "P", &o, &jerr));
    CHECK_NATS(stream_state(js, "P", &st));
    CHECK_U64(st.Msgs, 4);
    CHECK_U64(st.FirstSeq, 5);
    CHECK_U64(st.LastSeq, 8);
    /* With a filter: p.b below 8 goes (seq 6), p.a stays. */
    jsOptions_Init(&o);
    o.Stream.Purge.Sequence = 8;
    o.Stream.Purge.Subject = "p.b";
    CHECK_NATS(js_PurgeStream(js, "P", &o, &jerr));
    CHECK_NATS(stream_state(js, "P", &st));
    CHECK_U64(st.Msgs, 3);
    CHECK_U64(st.FirstSeq, 5);
done:
    js_close(nc, js);
    return 0;
}

static int case_get_msg(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsMsg *m = NULL;
    jsPubAck *pa = NULL;
    const char *v = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(add_stream(js, "G", "g.>", NULL, &jerr));
    CHECK_NATS(publish_n(js, "g.a", 1));                                     /* 1 */
    CHECK_NATS(publish_hdr(js, &pa, "g.b.x", "hello", "X-Hdr", "v1", &jerr)); /* 2 */
    jsPubAck_Destroy(pa);
    pa = NULL;
    CHECK_NATS(publish_n(js, "g.a", 2));                                     /* 3, 4 */
    CHECK_NATS(publish_n(js, "g.c", 1));                                     /* 5 */

    CHECK_NATS(js_GetMsg(&m, js, "G", 2, NULL, &jerr));
    CHECK(msg_is(m, "g.b.x", "hello"));
    CHECK_NATS(natsMsgHeader_Get(m, "X-Hdr", &v));
    CHECK_STR(v, "v1");
    natsMsg_Destroy(m);
    m = NULL;
    CHECK_NATS(js_GetMsg(&m, js, "G", 1, NULL, &jerr));
    CHECK(msg_is(m, "g.a", "m1"));
    natsMsg_Destroy(m);
    m = NULL;

    CHECK_NATS(js_GetLastMsg(&m, js, "G", "g.a", NULL, &jerr));
    CHECK(msg_is(m, "g.a", "m2"));
    natsMsg_Destroy(m);
    m = NULL;
    /* Wildcards: the last message on any matching subject. */
    CHECK_NATS(js_GetLastMsg(&m, js, "G", "g.b.*", NULL, &jerr));
    CHECK(msg_is(m, "g.b.x", "hello"));
    natsMsg_Destroy(m);
    m = NULL;
    CHECK_NATS(js_GetLastMsg(&m, js, "G", "g.>", NULL, &jerr));
    CHECK(msg_is(m, "g.c", "m1"));
    natsMsg_Destroy(m);
    m = NULL;

    CHECK_JSERR(js_GetMsg(&m, js, "G", 99, NULL, &jerr), jerr, NATS_NOT_FOUND, 10037, NULL);
    CHECK_JSERR(js_GetLastMsg(&m, js, "G", "g.zzz", NULL, &jerr), jerr, NATS_NOT_FOUND,
                10037, NULL);
    /* (libnats maps 10059 on a message get to NATS_ERR, not NATS_NOT_FOUND) */
    CHECK_JSERR(js_GetMsg(&m, js, "NOSTREAM", 1, NULL, &jerr), jerr, NATS_ERR, 10059,
                "stream not found");
done:
    natsMsg_Destroy(m);
    jsPubAck_Destroy(pa);
    js_close(nc, js);
    return 0;
}

static int case_direct_get(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsMsg *m = NULL;
    jsPubAck *pa = NULL;
    const char *v = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.AllowDirect = true;
    CHECK_NATS(add_stream(js, "DG", "dg.>", &cfg, &jerr));
    CHECK_NATS(publish_n(js, "dg.a", 1));                                    /* 1 */
    CHECK_NATS(publish_hdr(js, &pa, "dg.b", "bee", "X-Hdr", "v1", &jerr));   /* 2 */
    CHECK_NATS(publish_n(js, "dg.a", 2));                                    /* 3, 4 */

    jsDirectGetMsgOptions o;
    jsDirectGetMsgOptions_Init(&o);
    o.Sequence = 2;
    CHECK_NATS(js_DirectGetMsg(&m, js, "DG", NULL, &o));
    CHECK(msg_is(m, "dg.b", "bee"));
    CHECK_NATS(natsMsgHeader_Get(m, "X-Hdr", &v));
    CHECK_STR(v, "v1");
    /* Direct get replies carry the stream, subject, sequence and time. */
    CHECK_NATS(natsMsgHeader_Get(m, "Nats-Stream", &v));
    CHECK_STR(v, "DG");
    CHECK_NATS(natsMsgHeader_Get(m, "Nats-Subject", &v));
    CHECK_STR(v, "dg.b");
    CHECK_NATS(natsMsgHeader_Get(m, "Nats-Sequence", &v));
    CHECK_STR(v, "2");
    CHECK_NATS(natsMsgHeader_Get(m, "Nats-Time-Stamp", &v));
    CHECK(v && strlen(v) >= 20);
    natsMsg_Destroy(m);
    m = NULL;

    jsDirectGetMsgOptions_Init(&o);
    o.LastBySubject = "dg.a";
    CHECK_NATS(js_DirectGetMsg(&m, js, "DG", NULL, &o));
    CHECK(msg_is(m, "dg.a", "m2"));
    CHECK_NATS(natsMsgHeader_Get(m, "Nats-Sequence", &v));
    CHECK_STR(v, "4");
    natsMsg_Destroy(m);
    m = NULL;

    jsDirectGetMsgOptions_Init(&o);
    o.NextBySubject = "dg.a";
    o.Sequence = 2;
    CHECK_NATS(js_DirectGetMsg(&m, js, "DG", NULL, &o));
    CHECK_NATS(natsMsgHeader_Get(m, "Nats-Sequence", &v));
    CHECK_STR(v, "3");
    natsMsg_Destroy(m);
    m = NULL;

    /* Misses: a 404 status, which libnats reports as NATS_NOT_FOUND. */
    jsDirectGetMsgOptions_Init(&o);
    o.Sequence = 99;
    CHECK_STATUS(js_DirectGetMsg(&m, js, "DG", NULL, &o), NATS_NOT_FOUND);
    jsDirectGetMsgOptions_Init(&o);
    o.LastBySubject = "dg.none";
    CHECK_STATUS(js_DirectGetMsg(&m, js, "DG", NULL, &o), NATS_NOT_FOUND);
done:
    natsMsg_Destroy(m);
    jsPubAck_Destroy(pa);
    js_close(nc, js);
    return 0;
}

static int case_delete_msg(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsMsg *m = NULL;
    jsStreamInfo *si = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(add_stream(js, "DM", "dm", NULL, &jerr));
    CHECK_NATS(publish_n(js, "dm", 5));
    CHECK_NATS(js_DeleteMsg(js, "DM", 2, NULL, &jerr));
    CHECK_NATS(js_EraseMsg(js, "DM", 4, NULL, &jerr));
    CHECK_JSERR(js_GetMsg(&m, js, "DM", 2, NULL, &jerr), jerr, NATS_NOT_FOUND, 10037, NULL);
    CHECK_JSERR(js_GetMsg(&m, js, "DM", 4, NULL, &jerr), jerr, NATS_NOT_FOUND, 10037, NULL);
    CHECK_NATS(js_GetMsg(&m, js, "DM", 3, NULL, &jerr));
    CHECK(msg_is(m, "dm", "m3"));
    natsMsg_Destroy(m);
    m = NULL;
    /* Deleting the first message moves first_seq. */
    CHECK_NATS(js_DeleteMsg(js, "DM", 1, NULL, &jerr));
    jsOptions o;
    jsOptions_Init(&o);
    o.Stream.Info.DeletedDetails = true;
    CHECK_NATS(js_GetStreamInfo(&si, js, "DM", &o, &jerr));
    CHECK_U64(si->State.Msgs, 2);
    CHECK_U64(si->State.FirstSeq, 3);
    CHECK_U64(si->State.LastSeq, 5);
    CHECK_U64(si->State.NumDeleted, 1); /* seq 4, inside the range */
    CHECK(si->State.DeletedLen == 1 && si->State.Deleted[0] == 4);
    /* A sequence that is already gone, or beyond the end. */
    CHECK_JSERR(js_DeleteMsg(js, "DM", 2, NULL, &jerr), jerr, NATS_ERR, 10057, NULL);
    CHECK_JSERR(js_DeleteMsg(js, "DM", 50, NULL, &jerr), jerr, NATS_ERR, 10057, NULL);
    CHECK_JSERR(js_DeleteMsg(js, "NOSTREAM", 1, NULL, &jerr), jerr, NATS_NOT_FOUND, 10059,
                NULL);
done:
    jsStreamInfo_Destroy(si);
    natsMsg_Destroy(m);
    js_close(nc, js);
    return 0;
}

/* ---- publishing ---------------------------------------------------------- */

static int case_publish_ack(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    jsPubAck *pa = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(add_stream(js, "PUB", "pub.>", NULL, &jerr));
    for (int i = 1; i <= 20; i++) {
        CHECK_NATS(js_Publish(&pa, js, i % 2 ? "pub.odd" : "pub.even", "x", 1, NULL, &jerr));
        CHECK_STR(pa->Stream, "PUB");
        CHECK_U64(pa->Sequence, i);
        CHECK(!pa->Duplicate);
        CHECK(pa->Domain == NULL);
        jsPubAck_Destroy(pa);
        pa = NULL;
    }
    /* Headers and an empty body are stored as sent. */
    CHECK_NATS(publish_hdr(js, &pa, "pub.h", "", "K", "v", &jerr));
    CHECK_U64(pa->Sequence, 21);
    jsPubAck_Destroy(pa);
    pa = NULL;
    natsMsg *m = NULL;
    const char *v = NULL;
    CHECK_NATS(js_GetMsg(&m, js, "PUB", 21, NULL, &jerr));
    CHECK(natsMsg_GetDataLength(m) == 0);
    natsStatus hs = natsMsgHeader_Get(m, "K", &v);
    natsMsg_Destroy(m);
    CHECK_NATS(hs);
    /* No stream on the subject: no responders. */
    CHECK_STATUS(js_Publish(&pa, js, "elsewhere", "x", 1, NULL, &jerr), NATS_NO_RESPONDERS);
    jsStreamState st;
    CHECK_NATS(stream_state(js, "PUB", &st));
    CHECK_U64(st.Msgs, 21);
    CHECK_U64(st.LastSeq, 21);
done:
    jsPubAck_Destroy(pa);
    js_close(nc, js);
    return 0;
}

typedef struct {
    pthread_mutex_t mu;
    int ok, err;
    uint64_t max_seq;
} async_acks;

static void on_async_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    async_acks *a = closure;
    pthread_mutex_lock(&a->mu);
    if (pa) {
        a->ok++;
        if (pa->Sequence > a->max_seq)
            a->max_seq = pa->Sequence;
    }
    if (pae)
        a->err++;
    pthread_mutex_unlock(&a->mu);
    natsMsg_Destroy(msg);
}

static int case_publish_async_10k(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    async_acks acks = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
    enum { N = 10000 };

    CHECK_NATS(th_connect(s, NULL, &nc));
    jsOptions o;
    jsOptions_Init(&o);
    o.Wait = 5000;
    o.PublishAsync.MaxPending = 1024;
    o.PublishAsync.AckHandler = on_async_ack;
    o.PublishAsync.AckHandlerClosure = &acks;
    CHECK_NATS(natsConnection_JetStream(&js, nc, &o));
    CHECK_NATS(add_stream(js, "ASYNC", "async.*", NULL, &jerr));
    for (int i = 0; i < N; i++) {
        char buf[32];
        int len = snprintf(buf, sizeof(buf), "payload-%d", i);
        CHECK_NATS(js_PublishAsync(js, i % 2 ? "async.a" : "async.b", buf, len, NULL));
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 30000;
    CHECK_NATS(js_PublishAsyncComplete(js, &po));
    /* The last ack callback may still be running when Complete returns. */
    int64_t deadline = th_now_ms() + 5000;
    for (;;) {
        pthread_mutex_lock(&acks.mu);
        int n = acks.ok + acks.err;
        pthread_mutex_unlock(&acks.mu);
        if (n >= N || th_now_ms() > deadline)
            break;
        th_sleep_ms(10);
    }
    pthread_mutex_lock(&acks.mu);
    int ok = acks.ok, err = acks.err;
    uint64_t max_seq = acks.max_seq;
    pthread_mutex_unlock(&acks.mu);
    CHECK_I64(ok, N);
    CHECK_I64(err, 0);
    CHECK_U64(max_seq, N);
    jsStreamState st;
    CHECK_NATS(stream_state(js, "ASYNC", &st));
    CHECK_U64(st.Msgs, N);
    CHECK_U64(st.FirstSeq, 1);
    CHECK_U64(st.LastSeq, N);
    /* Spot checks of the content. */
    natsMsg *m = NULL;
    CHECK_NATS(js_GetMsg(&m, js, "ASYNC", 1, NULL, &jerr));
    int good = msg_is(m, "async.b", "payload-0");
    natsMsg_Destroy(m);
    m = NULL;
    CHECK(good);
    CHECK_NATS(js_GetMsg(&m, js, "ASYNC", N, NULL, &jerr));
    good = msg_is(m, "async.a", "payload-9999");
    natsMsg_Destroy(m);
    CHECK(good);
done:
    js_close(nc, js);
    return 0;
}

static int case_dedupe(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    jsPubAck *pa = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(add_stream(js, "DD", "dd", NULL, &jerr));
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = "id-1";
    CHECK_NATS(js_Publish(&pa, js, "dd", "first", 5, &po, &jerr));
    CHECK_U64(pa->Sequence, 1);
    CHECK(!pa->Duplicate);
    jsPubAck_Destroy(pa);
    pa = NULL;
    CHECK_NATS(publish_n(js, "dd", 1)); /* seq 2, no id */
    /* Same id: acknowledged with the original sequence, flagged, not stored. */
    CHECK_NATS(js_Publish(&pa, js, "dd", "again", 5, &po, &jerr));
    CHECK_U64(pa->Sequence, 1);
    CHECK(pa->Duplicate);
    CHECK_STR(pa->Stream, "DD");
    jsPubAck_Destroy(pa);
    pa = NULL;
    /* The raw header works the same. */
    CHECK_NATS(publish_hdr(js, &pa, "dd", "hdr", "Nats-Msg-Id", "id-1", &jerr));
    CHECK_U64(pa->Sequence, 1);
    CHECK(pa->Duplicate);
    jsPubAck_Destroy(pa);
    pa = NULL;
    po.MsgId = "id-2";
    CHECK_NATS(js_Publish(&pa, js, "dd", "second", 6, &po, &jerr));
    CHECK_U64(pa->Sequence, 3);
    CHECK(!pa->Duplicate);
    jsPubAck_Destroy(pa);
    pa = NULL;
    jsStreamState st;
    CHECK_NATS(stream_state(js, "DD", &st));
    CHECK_U64(st.Msgs, 3);
    CHECK_U64(st.LastSeq, 3);
    natsMsg *m = NULL;
    CHECK_NATS(js_GetMsg(&m, js, "DD", 1, NULL, &jerr));
    int good = msg_is(m, "dd", "first");
    natsMsg_Destroy(m);
    CHECK(good);
done:
    jsPubAck_Destroy(pa);
    js_close(nc, js);
    return 0;
}

static int case_publish_expectations(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    jsPubAck *pa = NULL;
    jsPubOptions po;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(add_stream(js, "EX", "ex.>", NULL, &jerr));
    jsPubOptions_Init(&po);
    po.MsgId = "a1";
    CHECK_NATS(js_Publish(&pa, js, "ex.a", "1", 1, &po, &jerr)); /* 1 */
    jsPubAck_Destroy(pa);
    pa = NULL;
    CHECK_NATS(publish_n(js, "ex.b", 1)); /* 2 */

    /* Expected stream. */
    jsPubOptions_Init(&po);
    po.ExpectStream = "OTHER";
    CHECK_JSERR(js_Publish(&pa, js, "ex.a", "x", 1, &po, &jerr), jerr, NATS_ERR, 10060,
                "expected stream does not match");
    po.ExpectStream = "EX";
    CHECK_NATS(js_Publish(&pa, js, "ex.a", "x", 1, &po, &jerr)); /* 3 */
    CHECK_U64(pa->Sequence, 3);
    jsPubAck_Destroy(pa);
    pa = NULL;

    /* Expected last sequence of the stream. */
    jsPubOptions_Init(&po);
    po.ExpectLastSeq = 2;
    CHECK_JSERR(js_Publish(&pa, js, "ex.a", "x", 1, &po, &jerr), jerr, NATS_ERR, 10071,
                "wrong last sequence: 3");
    po.ExpectLastSeq = 3;
    CHECK_NATS(js_Publish(&pa, js, "ex.a", "x", 1, &po, &jerr)); /* 4 */
    CHECK_U64(pa->Sequence, 4);
    jsPubAck_Destroy(pa);
    pa = NULL;

    /* Expected last sequence on the subject. */
    jsPubOptions_Init(&po);
    po.ExpectLastSubjectSeq = 3;
    CHECK_JSERR(js_Publish(&pa, js, "ex.b", "x", 1, &po, &jerr), jerr, NATS_ERR, 10071,
                "wrong last sequence: 2");
    po.ExpectLastSubjectSeq = 2;
    CHECK_NATS(js_Publish(&pa, js, "ex.b", "x", 1, &po, &jerr)); /* 5 */
    CHECK_U64(pa->Sequence, 5);
    jsPubAck_Destroy(pa);
    pa = NULL;

    /* Expect no message on the subject (Nats-Expected-Last-Subject-Sequence: 0). */
    jsPubOptions_Init(&po);
    po.ExpectNoMessage = true;
    CHECK_JSERR(js_Publish(&pa, js, "ex.b", "x", 1, &po, &jerr), jerr, NATS_ERR, 10071,
                "wrong last sequence: 5");
    CHECK_NATS(js_Publish(&pa, js, "ex.c", "x", 1, &po, &jerr)); /* 6 */
    CHECK_U64(pa->Sequence, 6);
    jsPubAck_Destroy(pa);
    pa = NULL;

    /* Expected last message id: the last message (seq 6) had none. */
    jsPubOptions_Init(&po);
    po.ExpectLastMsgId = "a1";
    CHECK_JSERR(js_Publish(&pa, js, "ex.a", "x", 1, &po, &jerr), jerr, NATS_ERR, 10070,
                "wrong last msg ID: ");
    jsPubOptions_Init(&po);
    po.MsgId = "a2";
    CHECK_NATS(js_Publish(&pa, js, "ex.a", "x", 1, &po, &jerr)); /* 7 */
    jsPubAck_Destroy(pa);
    pa = NULL;
    jsPubOptions_Init(&po);
    po.ExpectLastMsgId = "a1";
    CHECK_JSERR(js_Publish(&pa, js, "ex.a", "x", 1, &po, &jerr), jerr, NATS_ERR, 10070,
                "wrong last msg ID: a2");
    po.ExpectLastMsgId = "a2";
    CHECK_NATS(js_Publish(&pa, js, "ex.a", "x", 1, &po, &jerr)); /* 8 */
    CHECK_U64(pa->Sequence, 8);
    jsPubAck_Destroy(pa);
    pa = NULL;

    /* Failed expectations stored nothing. */
    jsStreamState st;
    CHECK_NATS(stream_state(js, "EX", &st));
    CHECK_U64(st.Msgs, 8);
    CHECK_U64(st.LastSeq, 8);
done:
    jsPubAck_Destroy(pa);
    js_close(nc, js);
    return 0;
}

/* ---- limits -------------------------------------------------------------- */

static int case_limit_max_msgs_discard_old(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsMsg *m = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.MaxMsgs = 5;
    CHECK_NATS(add_stream(js, "MO", "mo", &cfg, &jerr));
    CHECK_NATS(publish_n(js, "mo", 12));
    jsStreamState st;
    CHECK_NATS(stream_state(js, "MO", &st));
    CHECK_U64(st.Msgs, 5);
    CHECK_U64(st.FirstSeq, 8);
    CHECK_U64(st.LastSeq, 12);
    CHECK_NATS(js_GetMsg(&m, js, "MO", 8, NULL, &jerr));
    CHECK(msg_is(m, "mo", "m8"));
done:
    natsMsg_Destroy(m);
    js_close(nc, js);
    return 0;
}

static int case_limit_max_msgs_discard_new(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    jsPubAck *pa = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.MaxMsgs = 5;
    cfg.Discard = js_DiscardNew;
    CHECK_NATS(add_stream(js, "MN", "mn", &cfg, &jerr));
    CHECK_NATS(publish_n(js, "mn", 5));
    CHECK_JSERR(js_Publish(&pa, js, "mn", "x", 1, NULL, &jerr), jerr, NATS_ERR, 10077,
                "maximum messages exceeded");
    jsStreamState st;
    CHECK_NATS(stream_state(js, "MN", &st));
    CHECK_U64(st.Msgs, 5);
    CHECK_U64(st.FirstSeq, 1);
    CHECK_U64(st.LastSeq, 5);
    /* Room again after a delete; the rejected publish used no sequence. */
    CHECK_NATS(js_DeleteMsg(js, "MN", 1, NULL, &jerr));
    CHECK_NATS(js_Publish(&pa, js, "mn", "x", 1, NULL, &jerr));
    CHECK_U64(pa->Sequence, 6);
done:
    jsPubAck_Destroy(pa);
    js_close(nc, js);
    return 0;
}

static int case_limit_max_bytes(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    jsPubAck *pa = NULL;
    char payload[100];
    memset(payload, 'b', sizeof(payload));

    CHECK_NATS(js_connect(s, &nc, &js));
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.MaxBytes = 1000;
    CHECK_NATS(add_stream(js, "BO", "bo", &cfg, &jerr));
    cfg.Discard = js_DiscardNew;
    CHECK_NATS(add_stream(js, "BN", "bn", &cfg, &jerr));

    /* Discard old: never above the limit, the newest kept. */
    for (int i = 0; i < 30; i++) {
        CHECK_NATS(js_Publish(&pa, js, "bo", payload, sizeof(payload), NULL, &jerr));
        jsPubAck_Destroy(pa);
        pa = NULL;
    }
    jsStreamState st;
    CHECK_NATS(stream_state(js, "BO", &st));
    CHECK(st.Bytes <= 1000);
    CHECK(st.Msgs >= 5 && st.Msgs < 10); /* each message is 100 bytes + overhead */
    CHECK_U64(st.LastSeq, 30);
    CHECK_U64(st.FirstSeq, 30 - st.Msgs + 1);

    /* Discard new: rejected once the next message would not fit. */
    int stored = 0;
    natsStatus ps = NATS_OK;
    for (int i = 0; i < 30; i++) {
        jerr = 0;
        ps = js_Publish(&pa, js, "bn", payload, sizeof(payload), NULL, &jerr);
        jsPubAck_Destroy(pa);
        pa = NULL;
        if (ps != NATS_OK)
            break;
        stored++;
    }
    CHECK(ps == NATS_ERR);
    CHECK_I64(jerr, 10077);
    CHECK(strstr(last_err(), "maximum bytes exceeded") != NULL);
    CHECK(stored >= 5 && stored < 10);
    CHECK_NATS(stream_state(js, "BN", &st));
    CHECK_U64(st.Msgs, stored);
    CHECK(st.Bytes <= 1000);
done:
    jsPubAck_Destroy(pa);
    js_close(nc, js);
    return 0;
}

static int case_limit_max_msg_size(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    jsPubAck *pa = NULL;
    char payload[101];
    memset(payload, 'x', sizeof(payload));

    CHECK_NATS(js_connect(s, &nc, &js));
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.MaxMsgSize = 100;
    CHECK_NATS(add_stream(js, "MS", "ms", &cfg, &jerr));
    CHECK_NATS(js_Publish(&pa, js, "ms", payload, 100, NULL, &jerr));
    CHECK_U64(pa->Sequence, 1);
    jsPubAck_Destroy(pa);
    pa = NULL;
    CHECK_JSERR(js_Publish(&pa, js, "ms", payload, 101, NULL, &jerr), jerr, NATS_ERR, 10054,
                "message size exceeds maximum allowed");
    jsStreamState st;
    CHECK_NATS(stream_state(js, "MS", &st));
    CHECK_U64(st.Msgs, 1);
done:
    jsPubAck_Destroy(pa);
    js_close(nc, js);
    return 0;
}

static int case_limit_max_msgs_per_subject(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsMsg *m = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.MaxMsgsPerSubject = 2;
    CHECK_NATS(add_stream(js, "PS", "ps.*", &cfg, &jerr));
    CHECK_NATS(publish_n(js, "ps.a", 5)); /* 1-5, keeps 4,5 */
    CHECK_NATS(publish_n(js, "ps.b", 1)); /* 6 */
    CHECK_NATS(publish_n(js, "ps.a", 1)); /* 7, keeps 5,7 */
    jsStreamState st;
    CHECK_NATS(stream_state(js, "PS", &st));
    CHECK_U64(st.Msgs, 3);
    CHECK_U64(st.FirstSeq, 5);
    CHECK_U64(st.LastSeq, 7);
    CHECK_NATS(js_GetMsg(&m, js, "PS", 5, NULL, &jerr));
    CHECK(msg_is(m, "ps.a", "m5"));
    natsMsg_Destroy(m);
    m = NULL;
    /* With discard new, the per-subject limit still drops the oldest. */
    jsStreamConfig_Init(&cfg);
    cfg.MaxMsgsPerSubject = 1;
    cfg.Discard = js_DiscardNew;
    CHECK_NATS(add_stream(js, "PN", "pn.*", &cfg, &jerr));
    CHECK_NATS(publish_n(js, "pn.a", 3));
    CHECK_NATS(stream_state(js, "PN", &st));
    CHECK_U64(st.Msgs, 1);
    CHECK_U64(st.FirstSeq, 3);
done:
    natsMsg_Destroy(m);
    js_close(nc, js);
    return 0;
}

static int case_limit_max_age(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    uint64_t seen = 0;

    CHECK_NATS(js_connect(s, &nc, &js));
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.MaxAge = 1000 * MS;
    cfg.Storage = js_MemoryStorage;
    CHECK_NATS(add_stream(js, "AGE", "age", &cfg, &jerr));
    cfg.Storage = js_FileStorage;
    CHECK_NATS(add_stream(js, "AGEF", "agef", &cfg, &jerr));
    CHECK_NATS(publish_n(js, "age", 3));
    CHECK_NATS(publish_n(js, "agef", 3));
    /* Expiry within a generous bound. */
    if (!wait_stream_msgs(js, "AGE", 0, 10000, &seen))
        FAIL("memory stream still holds %" PRIu64 " messages 10 s after publishing", seen);
    if (!wait_stream_msgs(js, "AGEF", 0, 10000, &seen))
        FAIL("file stream still holds %" PRIu64 " messages 10 s after publishing", seen);
    jsStreamState st;
    CHECK_NATS(stream_state(js, "AGE", &st));
    CHECK_U64(st.FirstSeq, 4);
    CHECK_U64(st.LastSeq, 3);
    CHECK_U64(st.Bytes, 0);
    CHECK_NATS(stream_state(js, "AGEF", &st));
    CHECK_U64(st.FirstSeq, 4);
    CHECK_U64(st.LastSeq, 3);
    /* New messages are accepted and continue the sequence. */
    jsPubAck *pa = NULL;
    CHECK_NATS(js_Publish(&pa, js, "age", "x", 1, NULL, &jerr));
    CHECK_U64(pa->Sequence, 4);
    jsPubAck_Destroy(pa);
done:
    js_close(nc, js);
    return 0;
}

static int case_rollup(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    jsPubAck *pa = NULL;
    natsMsg *m = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.AllowRollup = true;
    CHECK_NATS(add_stream(js, "RU", "ru.*", &cfg, &jerr));
    CHECK_NATS(publish_n(js, "ru.a", 3)); /* 1-3 */
    CHECK_NATS(publish_n(js, "ru.b", 2)); /* 4-5 */
    /* Rollup of one subject: earlier ru.a messages go. */
    CHECK_NATS(publish_hdr(js, &pa, "ru.a", "snap-a", "Nats-Rollup", "sub", &jerr));
    CHECK_U64(pa->Sequence, 6);
    jsPubAck_Destroy(pa);
    pa = NULL;
    jsStreamState st;
    CHECK_NATS(stream_state(js, "RU", &st));
    CHECK_U64(st.Msgs, 3);
    CHECK_U64(st.FirstSeq, 4);
    CHECK_NATS(js_GetLastMsg(&m, js, "RU", "ru.a", NULL, &jerr));
    CHECK(msg_is(m, "ru.a", "snap-a"));
    natsMsg_Destroy(m);
    m = NULL;
    /* Rollup of everything. */
    CHECK_NATS(publish_hdr(js, &pa, "ru.c", "snap-all", "Nats-Rollup", "all", &jerr));
    CHECK_U64(pa->Sequence, 7);
    jsPubAck_Destroy(pa);
    pa = NULL;
    CHECK_NATS(stream_state(js, "RU", &st));
    CHECK_U64(st.Msgs, 1);
    CHECK_U64(st.FirstSeq, 7);
    CHECK_U64(st.LastSeq, 7);
    /* An unknown rollup value is refused. Version gate: nats-server 2.9/2.10
     * drop such a message without any reply (the publish times out); 2.11.0
     * answers 10111 "rollup value invalid: \"bogus\"". */
    if (server_at_least(2, 11, 0)) {
        CHECK_JSERR(publish_hdr(js, &pa, "ru.c", "x", "Nats-Rollup", "bogus", &jerr), jerr,
                    NATS_ERR, 10111, "rollup value invalid: \"bogus\"");
        CHECK_NATS(stream_state(js, "RU", &st));
        CHECK_U64(st.Msgs, 1);
    }
    /* Without allow_rollup_hdrs the header is refused. */
    CHECK_NATS(add_stream(js, "NRU", "nru", NULL, &jerr));
    CHECK_NATS(publish_n(js, "nru", 2));
    CHECK_JSERR(publish_hdr(js, &pa, "nru", "x", "Nats-Rollup", "sub", &jerr), jerr, NATS_ERR,
                10111, "rollup not permitted");
    CHECK_NATS(stream_state(js, "NRU", &st));
    CHECK_U64(st.Msgs, 2);
done:
    natsMsg_Destroy(m);
    jsPubAck_Destroy(pa);
    js_close(nc, js);
    return 0;
}

static int case_sealed(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    jsPubAck *pa = NULL;
    jsStreamInfo *si = NULL;
    const char *subj[] = {"seal"};

    CHECK_NATS(js_connect(s, &nc, &js));
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = "SEAL";
    cfg.Subjects = subj;
    cfg.SubjectsLen = 1;
    CHECK_NATS(js_AddStream(&si, js, &cfg, NULL, &jerr));
    jsStreamInfo_Destroy(si);
    si = NULL;
    CHECK_NATS(publish_n(js, "seal", 3));
    /* Sealing is an update. */
    cfg.Sealed = true;
    CHECK_NATS(js_UpdateStream(&si, js, &cfg, NULL, &jerr));
    CHECK(si->Config->Sealed);
    /* A sealed stream denies delete and purge too. */
    CHECK(si->Config->DenyDelete);
    CHECK(si->Config->DenyPurge);
    jsStreamInfo_Destroy(si);
    si = NULL;
    CHECK_JSERR(js_Publish(&pa, js, "seal", "x", 1, NULL, &jerr), jerr, NATS_ERR, 10109,
                "invalid operation on sealed stream");
    CHECK_JSERR(js_DeleteMsg(js, "SEAL", 1, NULL, &jerr), jerr, NATS_ERR, 10109,
                "invalid operation on sealed stream");
    CHECK_JSERR(js_PurgeStream(js, "SEAL", NULL, &jerr), jerr, NATS_ERR, 10109,
                "invalid operation on sealed stream");
    /* Unsealing is refused. */
    cfg.Sealed = false;
    CHECK_JSERR(js_UpdateStream(&si, js, &cfg, NULL, &jerr), jerr, NATS_ERR, 10052,
                "can not unseal a sealed stream");
    jsStreamState st;
    CHECK_NATS(stream_state(js, "SEAL", &st));
    CHECK_U64(st.Msgs, 3);
    /* Sealed on create is invalid. */
    cfg.Name = "SEAL2";
    cfg.Subjects = (const char *[]){"seal2"};
    cfg.Sealed = true;
    CHECK_JSERR(js_AddStream(&si, js, &cfg, NULL, &jerr), jerr, NATS_ERR, 10052,
                "stream configuration for create can not be sealed");
    /* Deleting a sealed stream is allowed. */
    CHECK_NATS(js_DeleteStream(js, "SEAL", NULL, &jerr));
done:
    jsStreamInfo_Destroy(si);
    jsPubAck_Destroy(pa);
    js_close(nc, js);
    return 0;
}

static int case_deny_delete_purge(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    jsStreamInfo *si = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.DenyDelete = true;
    CHECK_NATS(add_stream(js, "NODEL", "nodel", &cfg, &jerr));
    jsStreamConfig_Init(&cfg);
    cfg.DenyPurge = true;
    CHECK_NATS(add_stream(js, "NOPURGE", "nopurge", &cfg, &jerr));
    CHECK_NATS(publish_n(js, "nodel", 3));
    CHECK_NATS(publish_n(js, "nopurge", 3));

    CHECK_JSERR(js_DeleteMsg(js, "NODEL", 2, NULL, &jerr), jerr, NATS_ERR, 10057,
                "message delete not permitted");
    CHECK_NATS(js_PurgeStream(js, "NODEL", NULL, &jerr)); /* purge still allowed */
    CHECK_JSERR(js_PurgeStream(js, "NOPURGE", NULL, &jerr), jerr, NATS_ERR, 10110,
                "stream purge not permitted");
    CHECK_NATS(js_DeleteMsg(js, "NOPURGE", 2, NULL, &jerr)); /* delete still allowed */
    jsStreamState st;
    CHECK_NATS(stream_state(js, "NODEL", &st));
    CHECK_U64(st.Msgs, 0);
    CHECK_NATS(stream_state(js, "NOPURGE", &st));
    CHECK_U64(st.Msgs, 2);
    /* The flags cannot be taken back. */
    const char *subj[] = {"nodel"};
    jsStreamConfig_Init(&cfg);
    cfg.Name = "NODEL";
    cfg.Subjects = subj;
    cfg.SubjectsLen = 1;
    CHECK_JSERR(js_UpdateStream(&si, js, &cfg, NULL, &jerr), jerr, NATS_ERR, 10052,
                "can not cancel deny message deletes");
done:
    jsStreamInfo_Destroy(si);
    js_close(nc, js);
    return 0;
}

/* ---- retention policies ------------------------------------------------- */

static natsStatus add_pull_consumer(jsCtx *js, const char *stream, const char *durable,
                                    const char *filter, jsErrCode *jerr)
{
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable;
    cc.AckPolicy = js_AckExplicit;
    cc.FilterSubject = filter;
    jsConsumerInfo *ci = NULL;
    natsStatus st = js_AddConsumer(&ci, js, stream, &cc, NULL, jerr);
    jsConsumerInfo_Destroy(ci);
    return st;
}

/* Fetch exactly `n` messages (several fetches if needed, bounded). */
static natsStatus fetch_n(natsSubscription *sub, int n, natsMsg **out)
{
    int got = 0;
    int64_t deadline = th_now_ms() + 10000;
    while (got < n) {
        natsMsgList list = {0};
        jsErrCode jerr = 0;
        int64_t left = deadline - th_now_ms();
        if (left <= 0)
            return NATS_TIMEOUT;
        natsStatus st = natsSubscription_Fetch(&list, sub, n - got, left, &jerr);
        if (st != NATS_OK && st != NATS_TIMEOUT) {
            natsMsgList_Destroy(&list);
            return st;
        }
        for (int i = 0; i < list.Count; i++) {
            if (got < n) {
                out[got++] = list.Msgs[i];
                list.Msgs[i] = NULL;
            }
        }
        natsMsgList_Destroy(&list);
    }
    return NATS_OK;
}

static void destroy_msgs(natsMsg **m, int n)
{
    for (int i = 0; i < n; i++) {
        natsMsg_Destroy(m[i]);
        m[i] = NULL;
    }
}

static int case_workqueue(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsSubscription *sub = NULL;
    natsMsg *msgs[5] = {0};
    jsConsumerInfo *ci = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Retention = js_WorkQueuePolicy;
    CHECK_NATS(add_stream(js, "WQ", "wq.>", &cfg, &jerr));
    CHECK_NATS(publish_n(js, "wq.a", 5));

    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Config.AckPolicy = js_AckExplicit;
    CHECK_NATS(js_PullSubscribe(&sub, js, "wq.>", "W", NULL, &so, &jerr));
    CHECK_NATS(fetch_n(sub, 5, msgs));
    for (int i = 0; i < 5; i++)
        CHECK_U64(msg_stream_seq(msgs[i]), i + 1);
    /* Fetched but not acked: still stored. */
    jsStreamState st;
    CHECK_NATS(stream_state(js, "WQ", &st));
    CHECK_U64(st.Msgs, 5);
    /* Acked messages are removed (AckSync: the server has processed it). */
    CHECK_NATS(natsMsg_AckSync(msgs[0], NULL, &jerr));
    CHECK_NATS(natsMsg_AckSync(msgs[2], NULL, &jerr));
    CHECK_NATS(stream_state(js, "WQ", &st));
    CHECK_U64(st.Msgs, 3);
    CHECK_U64(st.FirstSeq, 2);
    for (int i = 0; i < 5; i++)
        if (i != 0 && i != 2)
            CHECK_NATS(natsMsg_AckSync(msgs[i], NULL, &jerr));
    CHECK_NATS(stream_state(js, "WQ", &st));
    CHECK_U64(st.Msgs, 0);
    CHECK_U64(st.FirstSeq, 6);
    CHECK_U64(st.LastSeq, 5);

    /* Workqueue consumer rules. */
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = "W2";
    cc.AckPolicy = js_AckExplicit;
    CHECK_JSERR(js_AddConsumer(&ci, js, "WQ", &cc, NULL, &jerr), jerr, NATS_ERR, 10099,
                "multiple non-filtered consumers not allowed on workqueue stream");
    cc.FilterSubject = "wq.b";
    CHECK_JSERR(js_AddConsumer(&ci, js, "WQ", &cc, NULL, &jerr), jerr, NATS_ERR, 10100,
                "filtered consumer not unique on workqueue stream");
    /* Delete the unfiltered one; then filters must not overlap. */
    natsSubscription_Destroy(sub);
    sub = NULL;
    CHECK_NATS(js_DeleteConsumer(js, "WQ", "W", NULL, &jerr));
    CHECK_NATS(js_AddConsumer(&ci, js, "WQ", &cc, NULL, &jerr));
    jsConsumerInfo_Destroy(ci);
    ci = NULL;
    cc.Durable = "W3";
    cc.FilterSubject = "wq.*";
    CHECK_JSERR(js_AddConsumer(&ci, js, "WQ", &cc, NULL, &jerr), jerr, NATS_ERR, 10100,
                "filtered consumer not unique on workqueue stream");
    cc.FilterSubject = "wq.c";
    cc.AckPolicy = js_AckNone;
    /* 2.9.10: "consumer in pull mode requires ack policy"; 2.11.0: "consumer in pull
     * mode requires explicit ack policy on workqueue stream". */
    CHECK_JSERR(js_AddConsumer(&ci, js, "WQ", &cc, NULL, &jerr), jerr, NATS_ERR, 10084,
                "consumer in pull mode requires ");
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = js_DeliverLast;
    CHECK_JSERR(js_AddConsumer(&ci, js, "WQ", &cc, NULL, &jerr), jerr, NATS_ERR, 10101,
                "consumer must be deliver all on workqueue stream");
done:
    jsConsumerInfo_Destroy(ci);
    destroy_msgs(msgs, 5);
    natsSubscription_Destroy(sub);
    js_close(nc, js);
    return 0;
}

static int case_interest(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsSubscription *s1 = NULL, *s2 = NULL;
    natsMsg *m1[2] = {0}, *m2[2] = {0};
    jsPubAck *pa = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Retention = js_InterestPolicy;
    CHECK_NATS(add_stream(js, "INT", "int.>", &cfg, &jerr));
    /* No consumers: acknowledged, sequence used, nothing kept. */
    CHECK_NATS(publish_n(js, "int.a", 3));
    jsStreamState st;
    CHECK_NATS(stream_state(js, "INT", &st));
    CHECK_U64(st.Msgs, 0);
    CHECK_U64(st.LastSeq, 3);

    CHECK_NATS(add_pull_consumer(js, "INT", "C1", NULL, &jerr));
    CHECK_NATS(add_pull_consumer(js, "INT", "C2", NULL, &jerr));
    CHECK_NATS(js_Publish(&pa, js, "int.a", "x", 1, NULL, &jerr));
    CHECK_U64(pa->Sequence, 4);
    CHECK_NATS(publish_n(js, "int.a", 1)); /* 5 */
    CHECK_NATS(stream_state(js, "INT", &st));
    CHECK_U64(st.Msgs, 2);

    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = "INT";
    so.Consumer = "C1";
    CHECK_NATS(js_PullSubscribe(&s1, js, "int.>", "C1", NULL, &so, &jerr));
    so.Consumer = "C2";
    CHECK_NATS(js_PullSubscribe(&s2, js, "int.>", "C2", NULL, &so, &jerr));
    CHECK_NATS(fetch_n(s1, 2, m1));
    CHECK_NATS(fetch_n(s2, 2, m2));
    CHECK_U64(msg_stream_seq(m1[0]), 4);
    CHECK_U64(msg_stream_seq(m2[1]), 5);
    /* Acked by one consumer only: kept. */
    CHECK_NATS(natsMsg_AckSync(m1[0], NULL, &jerr));
    CHECK_NATS(natsMsg_AckSync(m1[1], NULL, &jerr));
    CHECK_NATS(stream_state(js, "INT", &st));
    CHECK_U64(st.Msgs, 2);
    /* Acked by both: removed. */
    CHECK_NATS(natsMsg_AckSync(m2[0], NULL, &jerr));
    CHECK_NATS(stream_state(js, "INT", &st));
    CHECK_U64(st.Msgs, 1);
    CHECK_U64(st.FirstSeq, 5);
    CHECK_NATS(natsMsg_AckSync(m2[1], NULL, &jerr));
    CHECK_NATS(stream_state(js, "INT", &st));
    CHECK_U64(st.Msgs, 0);
    /* A filtered consumer only holds the messages it matches. */
    CHECK_NATS(js_DeleteConsumer(js, "INT", "C2", NULL, &jerr));
    natsSubscription_Destroy(s2);
    s2 = NULL;
    CHECK_NATS(add_pull_consumer(js, "INT", "C3", "int.b", &jerr));
    CHECK_NATS(publish_n(js, "int.b", 1)); /* 6: C1 and C3 */
    CHECK_NATS(stream_state(js, "INT", &st));
    CHECK_U64(st.Msgs, 1);
    CHECK_NATS(js_DeleteConsumer(js, "INT", "C1", NULL, &jerr));
    natsSubscription_Destroy(s1);
    s1 = NULL;
    CHECK_NATS(js_DeleteConsumer(js, "INT", "C3", NULL, &jerr));
    /* Deleting the last interested consumers removes what they held. */
    uint64_t seen = 0;
    if (!wait_stream_msgs(js, "INT", 0, 5000, &seen))
        FAIL("stream holds %" PRIu64 " messages after every consumer was deleted", seen);
done:
    jsPubAck_Destroy(pa);
    destroy_msgs(m1, 2);
    destroy_msgs(m2, 2);
    natsSubscription_Destroy(s1);
    natsSubscription_Destroy(s2);
    js_close(nc, js);
    return 0;
}

/* ---- pull consumers ------------------------------------------------------ */

/* Stream "PL" on pl.>, `n` messages on pl.a; pull subscription with durable
 * "PD" (explicit ack, ack_wait/max_deliver when not 0). */
static natsStatus pull_setup(jsCtx *js, int n, int64_t ack_wait, int64_t max_deliver,
                             natsSubscription **sub)
{
    jsErrCode jerr = 0;
    natsStatus st = add_stream(js, "PL", "pl.>", NULL, &jerr);
    if (st == NATS_OK && n > 0)
        st = publish_n(js, "pl.a", n);
    if (st == NATS_OK) {
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Config.AckPolicy = js_AckExplicit;
        if (ack_wait)
            so.Config.AckWait = ack_wait;
        if (max_deliver)
            so.Config.MaxDeliver = max_deliver;
        st = js_PullSubscribe(sub, js, "pl.>", "PD", NULL, &so, &jerr);
    }
    return st;
}

static int case_pull_fetch_batch(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsSubscription *sub = NULL;
    natsMsgList list = {0};
    jsConsumerInfo *ci = NULL;
    jsMsgMetaData *md = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(pull_setup(js, 10, 0, 0, &sub));
    CHECK_NATS(natsSubscription_Fetch(&list, sub, 4, 5000, &jerr));
    CHECK(list.Count == 4);
    for (int i = 0; i < list.Count; i++) {
        char want[16];
        snprintf(want, sizeof(want), "m%d", i + 1);
        CHECK(msg_is(list.Msgs[i], "pl.a", want));
        CHECK_NATS(natsMsg_GetMetaData(&md, list.Msgs[i]));
        CHECK_STR(md->Stream, "PL");
        CHECK_STR(md->Consumer, "PD");
        CHECK_U64(md->Sequence.Stream, i + 1);
        CHECK_U64(md->Sequence.Consumer, i + 1);
        CHECK_U64(md->NumDelivered, 1);
        CHECK_U64(md->NumPending, 10 - (i + 1));
        CHECK(md->Timestamp > 0);
        jsMsgMetaData_Destroy(md);
        md = NULL;
        CHECK_NATS(natsMsg_Ack(list.Msgs[i], NULL));
    }
    natsMsgList_Destroy(&list);
    /* Asking for more than is there returns what there is. */
    CHECK_NATS(natsSubscription_Fetch(&list, sub, 10, 5000, &jerr));
    CHECK(list.Count == 6);
    CHECK_U64(msg_stream_seq(list.Msgs[0]), 5);
    CHECK_U64(msg_stream_seq(list.Msgs[5]), 10);
    for (int i = 0; i < list.Count; i++)
        CHECK_NATS(natsMsg_AckSync(list.Msgs[i], NULL, &jerr));
    natsMsgList_Destroy(&list);

    CHECK_NATS(consumer_info(js, "PL", "PD", &ci));
    CHECK_U64(ci->Delivered.Consumer, 10);
    CHECK_U64(ci->Delivered.Stream, 10);
    CHECK_U64(ci->AckFloor.Consumer, 10);
    CHECK_U64(ci->AckFloor.Stream, 10);
    CHECK_U64(ci->NumPending, 0);
    CHECK_I64(ci->NumAckPending, 0);
    CHECK_I64(ci->NumRedelivered, 0);
    CHECK_I64(ci->NumWaiting, 0);
    CHECK_STR(ci->Stream, "PL");
    CHECK_STR(ci->Name, "PD");
done:
    jsMsgMetaData_Destroy(md);
    jsConsumerInfo_Destroy(ci);
    natsMsgList_Destroy(&list);
    natsSubscription_Destroy(sub);
    js_close(nc, js);
    return 0;
}

typedef struct {
    jsCtx *js;
    int delay_ms;
} late_pub;

static void *late_publisher(void *arg)
{
    late_pub *lp = arg;
    th_sleep_ms(lp->delay_ms);
    publish_n(lp->js, "pl.late", 1);
    return NULL;
}

static int case_pull_fetch_timeout(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsSubscription *sub = NULL;
    natsMsgList list = {0};
    jsConsumerInfo *ci = NULL;
    pthread_t th;
    int started = 0;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(pull_setup(js, 0, 0, 0, &sub));
    /* Nothing there: the fetch times out empty. */
    CHECK_STATUS(natsSubscription_Fetch(&list, sub, 1, 300, &jerr), NATS_TIMEOUT);
    CHECK(list.Count == 0);
    natsMsgList_Destroy(&list);
    /* no_wait on an empty consumer (the server answers 404 No Messages; libnats
     * 3.4 still waits for Expires, so keep it short). */
    jsFetchRequest fr;
    jsFetchRequest_Init(&fr);
    fr.Batch = 5;
    fr.NoWait = true;
    fr.Expires = 300 * MS;
    CHECK_STATUS(natsSubscription_FetchRequest(&list, sub, &fr), NATS_TIMEOUT);
    CHECK(list.Count == 0);
    natsMsgList_Destroy(&list);
    /* A waiting fetch gets a message published while it waits. */
    late_pub lp = {js, 200};
    CHECK(pthread_create(&th, NULL, late_publisher, &lp) == 0);
    started = 1;
    CHECK_NATS(natsSubscription_Fetch(&list, sub, 1, 10000, &jerr));
    CHECK(list.Count == 1);
    CHECK(msg_is(list.Msgs[0], "pl.late", "m1"));
    CHECK_NATS(natsMsg_AckSync(list.Msgs[0], NULL, &jerr));
    natsMsgList_Destroy(&list);
    /* Expired requests are no longer waiting. */
    CHECK_NATS(consumer_info(js, "PL", "PD", &ci));
    CHECK_I64(ci->NumWaiting, 0);
    CHECK_U64(ci->NumPending, 0);
done:
    if (started)
        pthread_join(th, NULL);
    jsConsumerInfo_Destroy(ci);
    natsMsgList_Destroy(&list);
    natsSubscription_Destroy(sub);
    js_close(nc, js);
    return 0;
}

static int case_pull_ack_info(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsSubscription *sub = NULL;
    natsMsg *msgs[5] = {0};
    jsConsumerInfo *ci = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(pull_setup(js, 8, 0, 0, &sub));
    CHECK_NATS(consumer_info(js, "PL", "PD", &ci));
    CHECK_U64(ci->NumPending, 8);
    CHECK_I64(ci->NumAckPending, 0);
    CHECK_U64(ci->Delivered.Stream, 0);
    jsConsumerInfo_Destroy(ci);
    ci = NULL;

    CHECK_NATS(fetch_n(sub, 5, msgs));
    CHECK_NATS(natsMsg_AckSync(msgs[0], NULL, &jerr));
    CHECK_NATS(natsMsg_AckSync(msgs[2], NULL, &jerr));
    CHECK_NATS(consumer_info(js, "PL", "PD", &ci));
    CHECK_U64(ci->NumPending, 3);     /* never delivered */
    CHECK_I64(ci->NumAckPending, 3);  /* delivered, not acked: 2, 4, 5 */
    CHECK_I64(ci->NumRedelivered, 0);
    CHECK_U64(ci->Delivered.Consumer, 5);
    CHECK_U64(ci->Delivered.Stream, 5);
    CHECK_U64(ci->AckFloor.Stream, 1); /* the floor only moves over a contiguous run */
    CHECK_U64(ci->AckFloor.Consumer, 1);
    jsConsumerInfo_Destroy(ci);
    ci = NULL;

    CHECK_NATS(natsMsg_AckSync(msgs[1], NULL, &jerr));
    CHECK_NATS(consumer_info(js, "PL", "PD", &ci));
    CHECK_U64(ci->AckFloor.Stream, 3);
    CHECK_I64(ci->NumAckPending, 2);
    jsConsumerInfo_Destroy(ci);
    ci = NULL;

    CHECK_NATS(natsMsg_AckSync(msgs[3], NULL, &jerr));
    CHECK_NATS(natsMsg_AckSync(msgs[4], NULL, &jerr));
    CHECK_NATS(publish_n(js, "pl.b", 2));
    CHECK_NATS(consumer_info(js, "PL", "PD", &ci));
    CHECK_U64(ci->AckFloor.Stream, 5);
    CHECK_I64(ci->NumAckPending, 0);
    CHECK_U64(ci->NumPending, 5);
    /* A second ack of the same message is harmless. */
    CHECK_NATS(natsMsg_Ack(msgs[0], NULL));
done:
    jsConsumerInfo_Destroy(ci);
    destroy_msgs(msgs, 5);
    natsSubscription_Destroy(sub);
    js_close(nc, js);
    return 0;
}

static int case_pull_redelivery(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsSubscription *sub = NULL;
    natsMsg *m[2] = {0};
    jsConsumerInfo *ci = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(pull_setup(js, 1, 500 * MS, 0, &sub));
    CHECK_NATS(fetch_n(sub, 1, &m[0]));
    CHECK_U64(msg_num_delivered(m[0]), 1);
    /* Not acked: it comes back after ack_wait (bounded by fetch_n). */
    CHECK_NATS(fetch_n(sub, 1, &m[1]));
    CHECK_U64(msg_stream_seq(m[1]), 1);
    CHECK_U64(msg_num_delivered(m[1]), 2);
    CHECK(msg_is(m[1], "pl.a", "m1"));
    CHECK_NATS(consumer_info(js, "PL", "PD", &ci));
    CHECK_I64(ci->NumRedelivered, 1);
    CHECK_I64(ci->NumAckPending, 1);
    CHECK_U64(ci->NumPending, 0);
    CHECK_U64(ci->Delivered.Consumer, 2);
    CHECK_U64(ci->Delivered.Stream, 1);
    jsConsumerInfo_Destroy(ci);
    ci = NULL;
    CHECK_NATS(natsMsg_AckSync(m[1], NULL, &jerr));
    CHECK_NATS(consumer_info(js, "PL", "PD", &ci));
    CHECK_I64(ci->NumRedelivered, 0);
    CHECK_I64(ci->NumAckPending, 0);
    CHECK_U64(ci->AckFloor.Stream, 1);
    CHECK_U64(ci->AckFloor.Consumer, 2);
done:
    jsConsumerInfo_Destroy(ci);
    destroy_msgs(m, 2);
    natsSubscription_Destroy(sub);
    js_close(nc, js);
    return 0;
}

static int case_pull_max_deliver(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsSubscription *sub = NULL;
    natsMsg *m[2] = {0};
    natsMsgList list = {0};
    jsConsumerInfo *ci = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(pull_setup(js, 1, 500 * MS, 2, &sub));
    CHECK_NATS(fetch_n(sub, 1, &m[0]));
    CHECK_NATS(fetch_n(sub, 1, &m[1]));
    CHECK_U64(msg_num_delivered(m[1]), 2);
    /* Delivered max_deliver times: not again (a bounded wait of 3 ack_waits). */
    natsStatus st = natsSubscription_Fetch(&list, sub, 1, 1500, &jerr);
    if (st != NATS_TIMEOUT || list.Count != 0)
        FAIL("a message came a 3rd time with max_deliver 2 (%s, %d msgs)",
             natsStatus_GetText(st), list.Count);
    CHECK_NATS(consumer_info(js, "PL", "PD", &ci));
    CHECK_U64(ci->Delivered.Consumer, 2);
    CHECK_U64(ci->NumPending, 0);
    jsConsumerInfo_Destroy(ci);
    ci = NULL;
    /* New messages are still delivered. */
    CHECK_NATS(publish_n(js, "pl.b", 1));
    natsMsgList_Destroy(&list);
    CHECK_NATS(natsSubscription_Fetch(&list, sub, 1, 5000, &jerr));
    CHECK(list.Count == 1);
    CHECK_U64(msg_stream_seq(list.Msgs[0]), 2);
    CHECK_NATS(natsMsg_AckSync(list.Msgs[0], NULL, &jerr));
done:
    jsConsumerInfo_Destroy(ci);
    natsMsgList_Destroy(&list);
    destroy_msgs(m, 2);
    natsSubscription_Destroy(sub);
    js_close(nc, js);
    return 0;
}

/*
 * Send an ack-protocol body (-NAK, +TERM, +WPI, +ACK) to a message's reply
 * subject as a request: the server answers (an empty message) only after it
 * has processed it, so what follows sees its effect. natsMsg_Nak() and
 * friends are fire-and-forget, and the server handles acks asynchronously.
 */
static natsStatus ack_sync(natsConnection *nc, natsMsg *m, const char *body)
{
    natsMsg *resp = NULL;
    const char *reply = natsMsg_GetReply(m);
    if (!reply || strncmp(reply, "$JS.ACK.", 8) != 0)
        return NATS_ILLEGAL_STATE;
    natsStatus st = natsConnection_RequestString(&resp, nc, reply, body, 5000);
    natsMsg_Destroy(resp);
    return st;
}

static int case_pull_nak(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsSubscription *sub = NULL;
    natsMsg *m[4] = {0};
    jsConsumerInfo *ci = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(pull_setup(js, 2, 0, 0, &sub)); /* ack_wait 30 s: only a Nak brings it back */
    CHECK_NATS(fetch_n(sub, 1, &m[0]));
    CHECK_U64(msg_stream_seq(m[0]), 1);
    CHECK_NATS(ack_sync(nc, m[0], "-NAK"));
    /* Redelivered first, before message 2. */
    CHECK_NATS(fetch_n(sub, 1, &m[1]));
    CHECK_U64(msg_stream_seq(m[1]), 1);
    CHECK_U64(msg_num_delivered(m[1]), 2);
    CHECK(msg_is(m[1], "pl.a", "m1"));
    /* The client API (asynchronous): both come, in either order. */
    CHECK_NATS(natsMsg_Nak(m[1], NULL));
    CHECK_NATS(fetch_n(sub, 2, &m[2]));
    int i1 = msg_stream_seq(m[2]) == 1 ? 2 : 3, i2 = 5 - i1;
    CHECK_U64(msg_stream_seq(m[i1]), 1);
    CHECK_U64(msg_num_delivered(m[i1]), 3);
    CHECK_U64(msg_stream_seq(m[i2]), 2);
    CHECK_U64(msg_num_delivered(m[i2]), 1);
    CHECK_NATS(consumer_info(js, "PL", "PD", &ci));
    CHECK_I64(ci->NumAckPending, 2);
    CHECK_I64(ci->NumRedelivered, 1);
    CHECK_U64(ci->Delivered.Consumer, 4);
    jsConsumerInfo_Destroy(ci);
    ci = NULL;
    CHECK_NATS(natsMsg_AckSync(m[2], NULL, &jerr));
    CHECK_NATS(natsMsg_AckSync(m[3], NULL, &jerr));
    CHECK_NATS(consumer_info(js, "PL", "PD", &ci));
    CHECK_I64(ci->NumAckPending, 0);
    CHECK_I64(ci->NumRedelivered, 0);
    CHECK_U64(ci->AckFloor.Stream, 2);
    CHECK_U64(ci->AckFloor.Consumer, 4);
done:
    jsConsumerInfo_Destroy(ci);
    destroy_msgs(m, 4);
    natsSubscription_Destroy(sub);
    js_close(nc, js);
    return 0;
}

static int case_pull_term(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsSubscription *sub = NULL;
    natsMsg *m[2] = {0};
    natsMsgList list = {0};
    jsConsumerInfo *ci = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(pull_setup(js, 2, 500 * MS, 0, &sub));
    CHECK_NATS(fetch_n(sub, 1, &m[0]));
    CHECK_NATS(natsMsg_Term(m[0], NULL));
    CHECK_NATS(natsConnection_Flush(nc));
    /* Terminated: never redelivered, the next fetch gets message 2. */
    CHECK_NATS(fetch_n(sub, 1, &m[1]));
    CHECK_U64(msg_stream_seq(m[1]), 2);
    CHECK_U64(msg_num_delivered(m[1]), 1);
    CHECK_NATS(natsMsg_AckSync(m[1], NULL, &jerr));
    natsStatus st = natsSubscription_Fetch(&list, sub, 1, 1500, &jerr);
    if (st != NATS_TIMEOUT || list.Count != 0)
        FAIL("a terminated message came back (%s, %d msgs)", natsStatus_GetText(st),
             list.Count);
    CHECK_NATS(consumer_info(js, "PL", "PD", &ci));
    CHECK_I64(ci->NumAckPending, 0);
    CHECK_I64(ci->NumRedelivered, 0);
    CHECK_U64(ci->AckFloor.Stream, 2);
    CHECK_U64(ci->Delivered.Consumer, 2);
done:
    jsConsumerInfo_Destroy(ci);
    natsMsgList_Destroy(&list);
    destroy_msgs(m, 2);
    natsSubscription_Destroy(sub);
    js_close(nc, js);
    return 0;
}

static int case_pull_in_progress(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsSubscription *sub = NULL;
    natsMsg *m = NULL;
    natsMsgList list = {0};
    jsConsumerInfo *ci = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(pull_setup(js, 1, 0, 0, &sub)); /* ack_wait 30 s */
    CHECK_NATS(fetch_n(sub, 1, &m));
    /* In progress is not an ack: still pending, and may be repeated. */
    CHECK_NATS(natsMsg_InProgress(m, NULL));
    CHECK_NATS(natsMsg_InProgress(m, NULL));
    CHECK_NATS(natsConnection_Flush(nc));
    CHECK_NATS(consumer_info(js, "PL", "PD", &ci));
    CHECK_I64(ci->NumAckPending, 1);
    CHECK_U64(ci->AckFloor.Stream, 0);
    jsConsumerInfo_Destroy(ci);
    ci = NULL;
    CHECK_STATUS(natsSubscription_Fetch(&list, sub, 1, 300, &jerr), NATS_TIMEOUT);
    /* The final ack after it. */
    CHECK_NATS(natsMsg_AckSync(m, NULL, &jerr));
    CHECK_NATS(consumer_info(js, "PL", "PD", &ci));
    CHECK_I64(ci->NumAckPending, 0);
    CHECK_I64(ci->NumRedelivered, 0);
    CHECK_U64(ci->AckFloor.Stream, 1);
done:
    jsConsumerInfo_Destroy(ci);
    natsMsgList_Destroy(&list);
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
    js_close(nc, js);
    return 0;
}

/* ---- consumer management -------------------------------------------------- */

static int case_consumer_durable_ephemeral(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    jsConsumerInfo *ci = NULL;
    natsSubscription *sub = NULL;
    jsConsumerNamesList *names = NULL;
    char eph[64] = "";

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(add_stream(js, "CE", "ce.>", NULL, &jerr));
    CHECK_NATS(publish_n(js, "ce.a", 3));

    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = "DUR";
    cc.AckPolicy = js_AckExplicit;
    CHECK_NATS(js_AddConsumer(&ci, js, "CE", &cc, NULL, &jerr));
    CHECK_STR(ci->Name, "DUR");
    CHECK_STR(ci->Config->Durable, "DUR");
    CHECK_STR(ci->Stream, "CE");
    CHECK_U64(ci->NumPending, 3);
    CHECK(ci->Config->AckPolicy == js_AckExplicit);
    CHECK(ci->Config->DeliverPolicy == js_DeliverAll);
    CHECK_I64(ci->Config->AckWait, 30000 * MS);
    CHECK_I64(ci->Config->MaxDeliver, -1);
    CHECK_I64(ci->Config->MaxAckPending, 1000);
    CHECK_I64(ci->Config->MaxWaiting, 512);
    CHECK(ci->Config->DeliverSubject == NULL);
    jsConsumerInfo_Destroy(ci);
    ci = NULL;
    /* Same durable, same config: fine. */
    CHECK_NATS(js_AddConsumer(&ci, js, "CE", &cc, NULL, &jerr));
    jsConsumerInfo_Destroy(ci);
    ci = NULL;

    /* Ephemeral pull: a server-chosen name, no durable name. */
    jsConsumerConfig_Init(&cc);
    cc.AckPolicy = js_AckExplicit;
    CHECK_NATS(js_AddConsumer(&ci, js, "CE", &cc, NULL, &jerr));
    CHECK(ci->Name != NULL && strlen(ci->Name) > 0);
    CHECK(ci->Config->Durable == NULL);
    CHECK_U64(ci->NumPending, 3);
    snprintf(eph, sizeof(eph), "%s", ci->Name);
    jsConsumerInfo_Destroy(ci);
    ci = NULL;
    CHECK_NATS(consumer_info(js, "CE", eph, &ci));
    CHECK_STR(ci->Name, eph);
    jsConsumerInfo_Destroy(ci);
    ci = NULL;

    /* Ephemeral push through a subscription: gone after unsubscribe. */
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Config.AckPolicy = js_AckNone;
    CHECK_NATS(js_SubscribeSync(&sub, js, "ce.a", NULL, &so, &jerr));
    CHECK_NATS(natsSubscription_GetConsumerInfo(&ci, sub, NULL, &jerr));
    CHECK(ci->Config->Durable == NULL);
    CHECK(ci->Config->DeliverSubject != NULL);
    CHECK(ci->PushBound);
    char push_name[64];
    snprintf(push_name, sizeof(push_name), "%s", ci->Name);
    jsConsumerInfo_Destroy(ci);
    ci = NULL;
    CHECK_NATS(js_ConsumerNames(&names, js, "CE", NULL, &jerr));
    CHECK(names->Count == 3);
    jsConsumerNamesList_Destroy(names);
    names = NULL;
    CHECK_NATS(natsSubscription_Unsubscribe(sub));
    CHECK_JSERR(js_GetConsumerInfo(&ci, js, "CE", push_name, NULL, &jerr), jerr, NATS_NOT_FOUND,
                10014, NULL);
done:
    jsConsumerNamesList_Destroy(names);
    jsConsumerInfo_Destroy(ci);
    natsSubscription_Destroy(sub);
    js_close(nc, js);
    return 0;
}

static int case_consumer_list_delete(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    jsConsumerInfo *ci = NULL;
    jsConsumerNamesList *names = NULL;
    jsConsumerInfoList *list = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(add_stream(js, "CL", "cl.>", NULL, &jerr));
    CHECK_NATS(publish_n(js, "cl.a", 2));
    CHECK_NATS(publish_n(js, "cl.b", 3));
    CHECK_STATUS(js_ConsumerNames(&names, js, "CL", NULL, &jerr), NATS_NOT_FOUND);
    CHECK_NATS(add_pull_consumer(js, "CL", "CA", "cl.a", &jerr));
    CHECK_NATS(add_pull_consumer(js, "CL", "CB", "cl.b", &jerr));
    CHECK_NATS(add_pull_consumer(js, "CL", "CC", NULL, &jerr));

    CHECK_NATS(js_ConsumerNames(&names, js, "CL", NULL, &jerr));
    CHECK(names->Count == 3);
    int seen = 0;
    for (int i = 0; i < names->Count; i++)
        seen |= strcmp(names->List[i], "CA") == 0   ? 1
                : strcmp(names->List[i], "CB") == 0 ? 2
                : strcmp(names->List[i], "CC") == 0 ? 4
                                                    : 8;
    CHECK(seen == 7);
    jsConsumerNamesList_Destroy(names);
    names = NULL;

    CHECK_NATS(js_Consumers(&list, js, "CL", NULL, &jerr));
    CHECK(list->Count == 3);
    for (int i = 0; i < list->Count; i++) {
        jsConsumerInfo *c = list->List[i];
        uint64_t want = strcmp(c->Name, "CA") == 0 ? 2 : strcmp(c->Name, "CB") == 0 ? 3 : 5;
        CHECK_U64(c->NumPending, want);
        CHECK_STR(c->Stream, "CL");
    }
    jsConsumerInfoList_Destroy(list);
    list = NULL;

    jsStreamState st;
    CHECK_NATS(stream_state(js, "CL", &st));
    CHECK_I64(st.Consumers, 3);

    CHECK_NATS(js_DeleteConsumer(js, "CL", "CB", NULL, &jerr));
    CHECK_JSERR(js_DeleteConsumer(js, "CL", "CB", NULL, &jerr), jerr, NATS_NOT_FOUND, 10014,
                NULL);
    CHECK_JSERR(js_GetConsumerInfo(&ci, js, "CL", "CB", NULL, &jerr), jerr, NATS_NOT_FOUND,
                10014, NULL);
    CHECK_JSERR(js_GetConsumerInfo(&ci, js, "NOSTREAM", "CB", NULL, &jerr), jerr, NATS_ERR,
                10059, "stream not found");
    CHECK_NATS(js_ConsumerNames(&names, js, "CL", NULL, &jerr));
    CHECK(names->Count == 2);
    CHECK_NATS(stream_state(js, "CL", &st));
    CHECK_I64(st.Consumers, 2);
    /* Deleting the stream deletes its consumers. */
    CHECK_NATS(js_DeleteStream(js, "CL", NULL, &jerr));
    CHECK_NATS(add_stream(js, "CL", "cl.>", NULL, &jerr));
    CHECK_JSERR(js_GetConsumerInfo(&ci, js, "CL", "CA", NULL, &jerr), jerr, NATS_NOT_FOUND,
                10014, NULL);
done:
    jsConsumerInfoList_Destroy(list);
    jsConsumerNamesList_Destroy(names);
    jsConsumerInfo_Destroy(ci);
    js_close(nc, js);
    return 0;
}

/* ---- push consumers ------------------------------------------------------ */

/* Stream "DP" on dp.*: dp.a m1 (1), dp.b m1 (2), dp.a m2 (3), dp.b m2 (4), dp.a m3 (5). */
static natsStatus push_setup(jsCtx *js)
{
    jsErrCode jerr = 0;
    natsStatus st = add_stream(js, "DP", "dp.*", NULL, &jerr);
    const char *subj[] = {"dp.a", "dp.b", "dp.a", "dp.b", "dp.a"};
    const char *data[] = {"m1", "m1", "m2", "m2", "m3"};
    for (int i = 0; st == NATS_OK && i < 5; i++) {
        jsPubAck *pa = NULL;
        st = js_Publish(&pa, js, subj[i], data[i], 2, NULL, &jerr);
        jsPubAck_Destroy(pa);
    }
    return st;
}

/* Receive from a push subscription, expecting exactly the stream sequences
 * `want` (n of them) and then nothing for a short while. Returns 1 if so. */
static int expect_seqs(natsSubscription *sub, const uint64_t *want, int n, const char *what)
{
    for (int i = 0; i < n; i++) {
        natsMsg *m = NULL;
        natsStatus st = natsSubscription_NextMsg(&m, sub, 5000);
        if (st != NATS_OK) {
            case_fail(__LINE__, "%s: message %d of %d: %s", what, i + 1, n,
                      natsStatus_GetText(st));
            return 0;
        }
        uint64_t seq = msg_stream_seq(m);
        natsMsg_Destroy(m);
        if (seq != want[i]) {
            case_fail(__LINE__, "%s: message %d has stream seq %" PRIu64 ", expected %" PRIu64,
                      what, i + 1, seq, want[i]);
            return 0;
        }
    }
    natsMsg *m = NULL;
    natsStatus st = natsSubscription_NextMsg(&m, sub, 300);
    if (st != NATS_TIMEOUT) {
        case_fail(__LINE__, "%s: unexpected extra message (seq %" PRIu64 ")", what,
                  m ? msg_stream_seq(m) : 0);
        natsMsg_Destroy(m);
        return 0;
    }
    return 1;
}

static int case_push_basic(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsSubscription *sub = NULL;
    natsMsg *m = NULL;
    jsConsumerInfo *ci = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(push_setup(js));
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.ManualAck = true;
    so.Config.AckPolicy = js_AckExplicit;
    CHECK_NATS(js_SubscribeSync(&sub, js, "dp.*", NULL, &so, &jerr));
    for (int i = 1; i <= 5; i++) {
        CHECK_NATS(natsSubscription_NextMsg(&m, sub, 5000));
        CHECK_U64(msg_stream_seq(m), i);
        /* The message travels with its stream subject and an ack reply. */
        CHECK(strncmp(natsMsg_GetSubject(m), "dp.", 3) == 0);
        CHECK(strncmp(natsMsg_GetReply(m), "$JS.ACK.DP.", 11) == 0);
        CHECK_NATS(natsMsg_AckSync(m, NULL, &jerr));
        natsMsg_Destroy(m);
        m = NULL;
    }
    /* Live messages follow. */
    CHECK_NATS(publish_n(js, "dp.c", 1));
    CHECK_NATS(natsSubscription_NextMsg(&m, sub, 5000));
    CHECK(msg_is(m, "dp.c", "m1"));
    CHECK_U64(msg_stream_seq(m), 6);
    CHECK_NATS(natsMsg_AckSync(m, NULL, &jerr));
    CHECK_NATS(natsSubscription_GetConsumerInfo(&ci, sub, NULL, &jerr));
    CHECK_U64(ci->Delivered.Stream, 6);
    CHECK_U64(ci->AckFloor.Stream, 6);
    CHECK_I64(ci->NumAckPending, 0);
    CHECK_U64(ci->NumPending, 0);
    CHECK(ci->PushBound);
done:
    jsConsumerInfo_Destroy(ci);
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
    js_close(nc, js);
    return 0;
}

static int case_push_deliver_policies(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsSubscription *sub = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(push_setup(js));
    jsSubOptions so;

    static const uint64_t all[] = {1, 2, 3, 4, 5};
    jsSubOptions_Init(&so);
    so.Config.AckPolicy = js_AckNone;
    so.Config.DeliverPolicy = js_DeliverAll;
    CHECK_NATS(js_SubscribeSync(&sub, js, "dp.*", NULL, &so, &jerr));
    if (!expect_seqs(sub, all, 5, "deliver all"))
        goto done;
    natsSubscription_Destroy(sub);
    sub = NULL;

    static const uint64_t last[] = {5};
    so.Config.DeliverPolicy = js_DeliverLast;
    CHECK_NATS(js_SubscribeSync(&sub, js, "dp.*", NULL, &so, &jerr));
    if (!expect_seqs(sub, last, 1, "deliver last"))
        goto done;
    natsSubscription_Destroy(sub);
    sub = NULL;

    /* Last of a filtered subject. */
    static const uint64_t last_b[] = {4};
    CHECK_NATS(js_SubscribeSync(&sub, js, "dp.b", NULL, &so, &jerr));
    if (!expect_seqs(sub, last_b, 1, "deliver last, filter dp.b"))
        goto done;
    natsSubscription_Destroy(sub);
    sub = NULL;

    static const uint64_t from3[] = {3, 4, 5};
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = 3;
    CHECK_NATS(js_SubscribeSync(&sub, js, "dp.*", NULL, &so, &jerr));
    if (!expect_seqs(sub, from3, 3, "deliver by_start_sequence 3"))
        goto done;
    natsSubscription_Destroy(sub);
    sub = NULL;
    so.Config.OptStartSeq = 0;

    static const uint64_t lps[] = {4, 5};
    so.Config.DeliverPolicy = js_DeliverLastPerSubject;
    CHECK_NATS(js_SubscribeSync(&sub, js, "dp.*", NULL, &so, &jerr));
    if (!expect_seqs(sub, lps, 2, "deliver last_per_subject"))
        goto done;
    natsSubscription_Destroy(sub);
    sub = NULL;

    static const uint64_t fresh[] = {6};
    so.Config.DeliverPolicy = js_DeliverNew;
    CHECK_NATS(js_SubscribeSync(&sub, js, "dp.*", NULL, &so, &jerr));
    CHECK_NATS(publish_n(js, "dp.b", 1));
    if (!expect_seqs(sub, fresh, 1, "deliver new"))
        goto done;
done:
    natsSubscription_Destroy(sub);
    js_close(nc, js);
    return 0;
}

static int case_push_filter_subject(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsSubscription *sub = NULL;
    jsConsumerInfo *ci = NULL;
    natsMsg *m = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(push_setup(js));
    /* A durable push consumer with an explicit deliver subject and filter. */
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = "FA";
    cc.DeliverSubject = "deliver.fa";
    cc.FilterSubject = "dp.a";
    cc.AckPolicy = js_AckNone;
    /* A deliver subject inside the stream's own subjects is refused. */
    cc.DeliverSubject = "dp.deliver";
    CHECK_JSERR(js_AddConsumer(&ci, js, "DP", &cc, NULL, &jerr), jerr, NATS_ERR, 10081,
                "consumer deliver subject forms a cycle");
    cc.DeliverSubject = "deliver.fa";
    CHECK_NATS(js_AddConsumer(&ci, js, "DP", &cc, NULL, &jerr));
    CHECK_U64(ci->NumPending, 3);
    CHECK(!ci->PushBound);
    CHECK_STR(ci->Config->FilterSubject, "dp.a");
    jsConsumerInfo_Destroy(ci);
    ci = NULL;
    /* Messages arrive on the deliver subject's subscription but carry the
     * stream subject. */
    CHECK_NATS(natsConnection_SubscribeSync(&sub, nc, "deliver.fa"));
    static const char *want[] = {"m1", "m2", "m3"};
    static const uint64_t seqs[] = {1, 3, 5};
    for (int i = 0; i < 3; i++) {
        CHECK_NATS(natsSubscription_NextMsg(&m, sub, 5000));
        CHECK(msg_is(m, "dp.a", want[i]));
        CHECK_U64(msg_stream_seq(m), seqs[i]);
        natsMsg_Destroy(m);
        m = NULL;
    }
    CHECK_NATS(publish_n(js, "dp.b", 1)); /* 6: filtered out */
    CHECK_NATS(publish_n(js, "dp.a", 1)); /* 7 */
    CHECK_NATS(natsSubscription_NextMsg(&m, sub, 5000));
    CHECK_U64(msg_stream_seq(m), 7);
    CHECK_NATS(consumer_info(js, "DP", "FA", &ci));
    CHECK_U64(ci->NumPending, 0);
    CHECK_U64(ci->Delivered.Stream, 7);
    CHECK_U64(ci->Delivered.Consumer, 4);
    CHECK(ci->PushBound);
done:
    natsMsg_Destroy(m);
    jsConsumerInfo_Destroy(ci);
    natsSubscription_Destroy(sub);
    js_close(nc, js);
    return 0;
}

static natsStatus publish_async_n(jsCtx *js, const char *subj, int n, int size)
{
    char *buf = malloc((size_t)size);
    if (!buf)
        return NATS_NO_MEMORY;
    natsStatus st = NATS_OK;
    for (int i = 0; st == NATS_OK && i < n; i++) {
        memset(buf, 'a' + i % 26, (size_t)size);
        st = js_PublishAsync(js, subj, buf, size, NULL);
    }
    free(buf);
    if (st == NATS_OK) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 30000;
        st = js_PublishAsyncComplete(js, &po);
    }
    return st;
}

static int case_push_ordered(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsSubscription *sub = NULL;
    natsMsg *m = NULL;
    enum { N = 2000 };

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(add_stream(js, "ORD", "ord.>", NULL, &jerr));
    CHECK_NATS(publish_async_n(js, "ord.x", N / 2, 100));
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Ordered = true;
    CHECK_NATS(js_SubscribeSync(&sub, js, "ord.>", NULL, &so, &jerr));
    for (int i = 1; i <= N; i++) {
        if (i == N / 2 + 1)
            CHECK_NATS(publish_async_n(js, "ord.y", N / 2, 100));
        CHECK_NATS(natsSubscription_NextMsg(&m, sub, 5000));
        jsMsgMetaData *md = NULL;
        CHECK_NATS(natsMsg_GetMetaData(&md, m));
        uint64_t sseq = md->Sequence.Stream, dseq = md->Sequence.Consumer;
        jsMsgMetaData_Destroy(md);
        if (sseq != (uint64_t)i || dseq != (uint64_t)i)
            FAIL("message %d: stream seq %" PRIu64 ", consumer seq %" PRIu64, i, sseq, dseq);
        CHECK_STR(natsMsg_GetSubject(m), i <= N / 2 ? "ord.x" : "ord.y");
        natsMsg_Destroy(m);
        m = NULL;
    }
done:
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
    js_close(nc, js);
    return 0;
}

static int case_push_flow_control(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsSubscription *sub = NULL;
    natsMsg *m = NULL;
    enum { N = 200, SIZE = 32 * 1024 }; /* 6.4 MB: well over one flow-control window */

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(add_stream(js, "FC", "fc.>", NULL, &jerr));
    CHECK_NATS(publish_async_n(js, "fc.x", N, SIZE));
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Config.AckPolicy = js_AckNone;
    so.Config.FlowControl = true;
    so.Config.Heartbeat = 1000 * MS;
    CHECK_NATS(js_SubscribeSync(&sub, js, "fc.>", NULL, &so, &jerr));
    for (int i = 1; i <= N; i++) {
        CHECK_NATS(natsSubscription_NextMsg(&m, sub, 5000));
        CHECK_U64(msg_stream_seq(m), i);
        CHECK(natsMsg_GetDataLength(m) == SIZE);
        natsMsg_Destroy(m);
        m = NULL;
    }
done:
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
    js_close(nc, js);
    return 0;
}

/* The status line of a status message, e.g. ("100", "Idle Heartbeat"). */
static int status_is(natsMsg *m, const char *code, const char *desc)
{
    const char *c = NULL, *d = NULL;
    if (natsMsgHeader_Get(m, "Status", &c) != NATS_OK || !c || strcmp(c, code) != 0)
        return 0;
    if (!desc)
        return 1;
    return natsMsgHeader_Get(m, "Description", &d) == NATS_OK && d && strcmp(d, desc) == 0;
}

static int count_tokens(const char *s)
{
    int n = 1;
    for (; *s; s++)
        n += *s == '.';
    return n;
}

/* Flow control and heartbeats as they are on the wire, seen through a plain
 * subscription on the deliver subject: the test answers flow control itself. */
static int case_push_flow_control_raw(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsSubscription *sub = NULL;
    natsMsg *m = NULL;
    jsConsumerInfo *ci = NULL;
    enum { N = 200, SIZE = 32 * 1024 };
    int data = 0, fc = 0, hb = 0;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(add_stream(js, "FCR", "fcr.>", NULL, &jerr));
    CHECK_NATS(publish_async_n(js, "fcr.x", N, SIZE));
    CHECK_NATS(natsConnection_SubscribeSync(&sub, nc, "deliver.fcr"));
    CHECK_NATS(natsSubscription_SetPendingLimits(sub, -1, -1));
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = "FCD";
    cc.DeliverSubject = "deliver.fcr";
    cc.AckPolicy = js_AckNone;
    cc.FlowControl = true;
    cc.Heartbeat = 1000 * MS;
    CHECK_NATS(js_AddConsumer(&ci, js, "FCR", &cc, NULL, &jerr));
    CHECK(ci->Config->FlowControl);
    CHECK_I64(ci->Config->Heartbeat, 1000 * MS);
    int64_t deadline = th_now_ms() + 30000;
    while (data < N && th_now_ms() < deadline) {
        CHECK_NATS(natsSubscription_NextMsg(&m, sub, 5000));
        if (status_is(m, "100", "FlowControl Request")) {
            const char *r = natsMsg_GetReply(m);
            CHECK(r && strncmp(r, "$JS.FC.FCR.FCD.", 15) == 0);
            CHECK(natsMsg_GetDataLength(m) == 0);
            CHECK_NATS(natsConnection_Publish(nc, r, NULL, 0));
            fc++;
        } else if (status_is(m, "100", "Idle Heartbeat")) {
            hb++;
        } else {
            data++;
            CHECK_STR(natsMsg_GetSubject(m), "fcr.x");
            CHECK(natsMsg_GetDataLength(m) == SIZE);
            CHECK_U64(msg_stream_seq(m), data);
        }
        natsMsg_Destroy(m);
        m = NULL;
    }
    CHECK_I64(data, N);
    if (fc == 0)
        FAIL("no FlowControl Request in %d bytes", N * SIZE);
    (void)hb;
done:
    jsConsumerInfo_Destroy(ci);
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
    js_close(nc, js);
    return 0;
}

static int case_push_heartbeat_raw(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsSubscription *sub = NULL;
    natsMsg *m = NULL;
    jsConsumerInfo *ci = NULL;
    const char *v = NULL;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(add_stream(js, "HB", "hb.>", NULL, &jerr));
    CHECK_NATS(natsConnection_SubscribeSync(&sub, nc, "deliver.hb"));
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = "HBC";
    cc.DeliverSubject = "deliver.hb";
    cc.AckPolicy = js_AckExplicit;
    cc.Heartbeat = 250 * MS;
    CHECK_NATS(js_AddConsumer(&ci, js, "HB", &cc, NULL, &jerr));
    /* Idle: a heartbeat on the deliver subject, no body, no reply. */
    CHECK_NATS(natsSubscription_NextMsg(&m, sub, 5000));
    CHECK(status_is(m, "100", "Idle Heartbeat"));
    CHECK_STR(natsMsg_GetSubject(m), "deliver.hb");
    CHECK(natsMsg_GetReply(m) == NULL || natsMsg_GetReply(m)[0] == 0);
    CHECK(natsMsg_GetDataLength(m) == 0);
    CHECK_NATS(natsMsgHeader_Get(m, "Nats-Last-Consumer", &v));
    CHECK_STR(v, "0");
    CHECK_NATS(natsMsgHeader_Get(m, "Nats-Last-Stream", &v));
    CHECK_STR(v, "0");
    natsMsg_Destroy(m);
    m = NULL;
    /* A message: the stream subject and a v1 ack subject
     * $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>. */
    CHECK_NATS(publish_n(js, "hb.x", 1));
    for (int i = 0; i < 20; i++) {
        CHECK_NATS(natsSubscription_NextMsg(&m, sub, 5000));
        if (!status_is(m, "100", NULL))
            break;
        natsMsg_Destroy(m);
        m = NULL;
    }
    CHECK(m != NULL);
    CHECK(msg_is(m, "hb.x", "m1"));
    const char *r = natsMsg_GetReply(m);
    CHECK(r != NULL);
    CHECK(strncmp(r, "$JS.ACK.HB.HBC.1.1.1.", 21) == 0);
    CHECK(count_tokens(r) == 9);
    CHECK(strcmp(strrchr(r, '.'), ".0") == 0);
    CHECK_NATS(natsConnection_PublishString(nc, r, "+ACK"));
    natsMsg_Destroy(m);
    m = NULL;
    /* Later heartbeats name the last delivered sequences. */
    int found = 0;
    for (int i = 0; i < 20 && !found; i++) {
        CHECK_NATS(natsSubscription_NextMsg(&m, sub, 5000));
        if (status_is(m, "100", "Idle Heartbeat")) {
            CHECK_NATS(natsMsgHeader_Get(m, "Nats-Last-Consumer", &v));
            CHECK_STR(v, "1");
            CHECK_NATS(natsMsgHeader_Get(m, "Nats-Last-Stream", &v));
            CHECK_STR(v, "1");
            found = 1;
        }
        natsMsg_Destroy(m);
        m = NULL;
    }
    CHECK(found);
done:
    jsConsumerInfo_Destroy(ci);
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
    js_close(nc, js);
    return 0;
}

/* ---- Key-Value ----------------------------------------------------------- */

static natsStatus kv_create(jsCtx *js, const char *bucket, uint8_t history, int64_t ttl,
                            kvStore **kv)
{
    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = bucket;
    kc.History = history;
    kc.TTL = ttl;
    return js_CreateKeyValue(kv, js, &kc);
}

static int entry_is(kvEntry *e, const char *key, const char *val, uint64_t rev, kvOperation op)
{
    if (!e)
        return 0;
    if (strcmp(kvEntry_Key(e), key) != 0 || kvEntry_Revision(e) != rev ||
        kvEntry_Operation(e) != op)
        return 0;
    if (val && (kvEntry_ValueLen(e) != (int)strlen(val) ||
                memcmp(kvEntry_Value(e), val, strlen(val)) != 0))
        return 0;
    return 1;
}

#define CHECK_ENTRY(e, key, val, rev, op)                                                        \
    do {                                                                                         \
        kvEntry *_e = (e);                                                                       \
        const char *_v = (val);                                                                  \
        if (!entry_is(_e, key, _v, rev, op))                                                     \
            FAIL("entry %s = \"%.*s\" rev %" PRIu64 " op %d, expected %s = \"%s\" rev %" PRIu64  \
                 " op %d",                                                                       \
                 _e ? kvEntry_Key(_e) : "(null)", _e ? kvEntry_ValueLen(_e) : 0,                 \
                 _e ? (const char *)kvEntry_Value(_e) : "", _e ? kvEntry_Revision(_e) : 0,       \
                 _e ? (int)kvEntry_Operation(_e) : -1, key, _v ? _v : "*", (uint64_t)(rev),      \
                 (int)(op));                                                                     \
    } while (0)

static int case_kv_basic(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    kvStore *kv = NULL;
    kvEntry *e = NULL;
    jsStreamInfo *si = NULL;
    kvStatus *sts = NULL;
    jsErrCode jerr = 0;
    uint64_t rev = 0;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(kv_create(js, "B", 5, 0, &kv));
    CHECK_STR(kvStore_Bucket(kv), "B");
    /* The bucket is stream KV_B as libnats configures it. */
    CHECK_NATS(js_GetStreamInfo(&si, js, "KV_B", NULL, &jerr));
    CHECK(si->Config->SubjectsLen == 1);
    CHECK_STR(si->Config->Subjects[0], "$KV.B.>");
    CHECK_I64(si->Config->MaxMsgsPerSubject, 5);
    CHECK(si->Config->AllowRollup);
    CHECK(si->Config->DenyDelete);
    CHECK(si->Config->AllowDirect);
    CHECK(si->Config->Discard == js_DiscardNew);
    jsStreamInfo_Destroy(si);
    si = NULL;
    /* Creating it again with the same settings is fine. */
    kvStore *kv2 = NULL;
    CHECK_NATS(kv_create(js, "B", 5, 0, &kv2));
    kvStore_Destroy(kv2);
    kv2 = NULL;
    CHECK_NATS(js_KeyValue(&kv2, js, "B"));
    kvStore_Destroy(kv2);
    CHECK_STATUS(js_KeyValue(&kv2, js, "NOBUCKET"), NATS_NOT_FOUND);

    CHECK_NATS(kvStore_PutString(&rev, kv, "k1", "v1"));
    CHECK_U64(rev, 1);
    CHECK_NATS(kvStore_Get(&e, kv, "k1"));
    CHECK_ENTRY(e, "k1", "v1", 1, kvOp_Put);
    CHECK_STR(kvEntry_Bucket(e), "B");
    CHECK(kvEntry_Created(e) > 0);
    CHECK_U64(kvEntry_Delta(e), 0);
    kvEntry_Destroy(e);
    e = NULL;
    CHECK_NATS(kvStore_PutString(&rev, kv, "k1", "v2"));
    CHECK_U64(rev, 2);

    /* Create: only if absent. */
    CHECK_STATUS(kvStore_CreateString(&rev, kv, "k1", "x"), NATS_ERR);
    CHECK(strstr(last_err(), "wrong last sequence: 2") != NULL);
    CHECK_NATS(kvStore_CreateString(&rev, kv, "k2", "w1"));
    CHECK_U64(rev, 3);
    /* Update: only from the given revision. */
    CHECK_STATUS(kvStore_UpdateString(&rev, kv, "k1", "v3", 1), NATS_ERR);
    CHECK(strstr(last_err(), "wrong last sequence: 2") != NULL);
    CHECK_NATS(kvStore_UpdateString(&rev, kv, "k1", "v3", 2));
    CHECK_U64(rev, 4);
    CHECK_NATS(kvStore_GetRevision(&e, kv, "k1", 2));
    CHECK_ENTRY(e, "k1", "v2", 2, kvOp_Put);
    kvEntry_Destroy(e);
    e = NULL;
    CHECK_STATUS(kvStore_GetRevision(&e, kv, "k1", 3), NATS_NOT_FOUND); /* that is k2 */
    CHECK_STATUS(kvStore_Get(&e, kv, "nokey"), NATS_NOT_FOUND);

    /* Delete: a marker; the key reads as not found; Create works again. */
    CHECK_NATS(kvStore_Delete(kv, "k1"));
    CHECK_STATUS(kvStore_Get(&e, kv, "k1"), NATS_NOT_FOUND);
    CHECK_NATS(kvStore_CreateString(&rev, kv, "k1", "again"));
    CHECK_U64(rev, 6);
    CHECK_NATS(kvStore_Get(&e, kv, "k1"));
    CHECK_ENTRY(e, "k1", "again", 6, kvOp_Put);
    kvEntry_Destroy(e);
    e = NULL;

    /* Purge: the marker replaces the key's whole history. */
    CHECK_NATS(kvStore_PutString(&rev, kv, "k2", "w2")); /* 7 */
    CHECK_NATS(kvStore_Purge(kv, "k2", NULL));          /* 8 */
    CHECK_STATUS(kvStore_Get(&e, kv, "k2"), NATS_NOT_FOUND);
    jsOptions o;
    jsOptions_Init(&o);
    o.Stream.Info.SubjectsFilter = "$KV.B.k2";
    CHECK_NATS(js_GetStreamInfo(&si, js, "KV_B", &o, &jerr));
    CHECK(si->State.Subjects && si->State.Subjects->Count == 1);
    CHECK_U64(si->State.Subjects->List[0].Msgs, 1);
    jsStreamInfo_Destroy(si);
    si = NULL;

    CHECK_NATS(kvStore_Status(&sts, kv));
    CHECK_STR(kvStatus_Bucket(sts), "B");
    CHECK_I64(kvStatus_History(sts), 5);
    /* k1: 1,2,4,5(del),6; k2: 8 (purge) */
    CHECK_U64(kvStatus_Values(sts), 6);

    /* Invalid keys are refused by the client. */
    CHECK_STATUS(kvStore_PutString(&rev, kv, "bad key", "x"), NATS_INVALID_ARG);
    CHECK_NATS(js_DeleteKeyValue(js, "B"));
    CHECK_STATUS(js_KeyValue(&kv2, js, "B"), NATS_NOT_FOUND);
done:
    kvStatus_Destroy(sts);
    jsStreamInfo_Destroy(si);
    kvEntry_Destroy(e);
    kvStore_Destroy(kv);
    js_close(nc, js);
    return 0;
}

static int case_kv_history_keys(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    kvStore *kv = NULL;
    kvEntryList hist = {0};
    kvKeysList keys = {0};
    uint64_t rev = 0;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(kv_create(js, "H", 5, 0, &kv));
    /* Empty bucket: no keys. */
    natsStatus ks = kvStore_Keys(&keys, kv, NULL);
    CHECK(ks == NATS_OK || ks == NATS_NOT_FOUND);
    CHECK(keys.Count == 0);
    kvKeysList_Destroy(&keys);

    for (int i = 1; i <= 7; i++) {
        char v[16];
        snprintf(v, sizeof(v), "v%d", i);
        CHECK_NATS(kvStore_PutString(&rev, kv, "k", v));
    }
    CHECK_NATS(kvStore_PutString(&rev, kv, "a", "x")); /* 8 */
    CHECK_NATS(kvStore_PutString(&rev, kv, "b", "x")); /* 9 */
    CHECK_NATS(kvStore_PutString(&rev, kv, "c.d", "x")); /* 10 */
    CHECK_NATS(kvStore_Delete(kv, "b"));               /* 11 */

    /* History keeps the last 5 revisions, oldest first. */
    CHECK_NATS(kvStore_History(&hist, kv, "k", NULL));
    CHECK(hist.Count == 5);
    for (int i = 0; i < hist.Count; i++) {
        char v[16];
        snprintf(v, sizeof(v), "v%d", i + 3);
        CHECK_ENTRY(hist.Entries[i], "k", v, (uint64_t)(i + 3), kvOp_Put);
    }
    kvEntryList_Destroy(&hist);
    CHECK_NATS(kvStore_History(&hist, kv, "b", NULL));
    CHECK(hist.Count == 2);
    CHECK_ENTRY(hist.Entries[0], "b", "x", 9, kvOp_Put);
    CHECK_ENTRY(hist.Entries[1], "b", NULL, 11, kvOp_Delete);
    kvEntryList_Destroy(&hist);
    CHECK_STATUS(kvStore_History(&hist, kv, "nokey", NULL), NATS_NOT_FOUND);

    /* Keys skips deleted ones. */
    CHECK_NATS(kvStore_Keys(&keys, kv, NULL));
    CHECK(keys.Count == 3);
    int seen = 0;
    for (int i = 0; i < keys.Count; i++)
        seen |= strcmp(keys.Keys[i], "k") == 0   ? 1
                : strcmp(keys.Keys[i], "a") == 0 ? 2
                : strcmp(keys.Keys[i], "c.d") == 0 ? 4
                                                   : 8;
    CHECK(seen == 7);
done:
    kvEntryList_Destroy(&hist);
    kvKeysList_Destroy(&keys);
    kvStore_Destroy(kv);
    js_close(nc, js);
    return 0;
}

static int case_kv_watch(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    kvStore *kv = NULL;
    kvWatcher *w = NULL;
    kvEntry *e = NULL;
    uint64_t rev = 0;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(kv_create(js, "W", 3, 0, &kv));
    /* Empty: the initial-values-done marker (NULL entry) comes at once. */
    CHECK_NATS(kvStore_WatchAll(&w, kv, NULL));
    CHECK_NATS(kvWatcher_Next(&e, w, 5000));
    CHECK(e == NULL);
    kvWatcher_Destroy(w);
    w = NULL;

    CHECK_NATS(kvStore_PutString(&rev, kv, "user.a", "1")); /* 1 */
    CHECK_NATS(kvStore_PutString(&rev, kv, "user.b", "1")); /* 2 */
    CHECK_NATS(kvStore_PutString(&rev, kv, "user.a", "2")); /* 3 */
    CHECK_NATS(kvStore_PutString(&rev, kv, "other", "1"));  /* 4 */
    CHECK_NATS(kvStore_Watch(&w, kv, "user.*", NULL));
    /* Latest value per key, in revision order, then the marker. */
    CHECK_NATS(kvWatcher_Next(&e, w, 5000));
    CHECK_ENTRY(e, "user.b", "1", 2, kvOp_Put);
    kvEntry_Destroy(e);
    e = NULL;
    CHECK_NATS(kvWatcher_Next(&e, w, 5000));
    CHECK_ENTRY(e, "user.a", "2", 3, kvOp_Put);
    kvEntry_Destroy(e);
    e = NULL;
    CHECK_NATS(kvWatcher_Next(&e, w, 5000));
    CHECK(e == NULL);
    /* Live updates, including deletes and purges; other keys not. */
    CHECK_NATS(kvStore_PutString(&rev, kv, "other", "2"));  /* 5 */
    CHECK_NATS(kvStore_PutString(&rev, kv, "user.c", "1")); /* 6 */
    CHECK_NATS(kvStore_Delete(kv, "user.a"));               /* 7 */
    CHECK_NATS(kvStore_Purge(kv, "user.b", NULL));          /* 8 */
    CHECK_NATS(kvWatcher_Next(&e, w, 5000));
    CHECK_ENTRY(e, "user.c", "1", 6, kvOp_Put);
    CHECK(kvEntry_Delta(e) == 0);
    kvEntry_Destroy(e);
    e = NULL;
    CHECK_NATS(kvWatcher_Next(&e, w, 5000));
    CHECK_ENTRY(e, "user.a", NULL, 7, kvOp_Delete);
    kvEntry_Destroy(e);
    e = NULL;
    CHECK_NATS(kvWatcher_Next(&e, w, 5000));
    CHECK_ENTRY(e, "user.b", NULL, 8, kvOp_Purge);
    kvEntry_Destroy(e);
    e = NULL;
    CHECK_STATUS(kvWatcher_Next(&e, w, 300), NATS_TIMEOUT);
    kvWatcher_Destroy(w);
    w = NULL;

    /* Include history, ignore deletes. */
    kvWatchOptions wo;
    kvWatchOptions_Init(&wo);
    wo.IncludeHistory = true;
    wo.IgnoreDeletes = true;
    CHECK_NATS(kvStore_Watch(&w, kv, "user.*", &wo));
    static const struct {
        const char *key;
        uint64_t rev;
    } want[] = {{"user.a", 1}, {"user.a", 3}, {"user.c", 6}};
    for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++) {
        CHECK_NATS(kvWatcher_Next(&e, w, 5000));
        CHECK_ENTRY(e, want[i].key, NULL, want[i].rev, kvOp_Put);
        kvEntry_Destroy(e);
        e = NULL;
    }
    CHECK_NATS(kvWatcher_Next(&e, w, 5000));
    CHECK(e == NULL);
done:
    kvEntry_Destroy(e);
    kvWatcher_Destroy(w);
    kvStore_Destroy(kv);
    js_close(nc, js);
    return 0;
}

static int case_kv_watchall_10k(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    kvStore *kv = NULL;
    kvWatcher *w = NULL;
    kvEntry *e = NULL;
    char *seen = NULL;
    enum { N = 10000 };

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(kv_create(js, "BIG", 1, 0, &kv));
    /* A put is a publish to $KV.<bucket>.<key>: publish them asynchronously. */
    for (int i = 0; i < N; i++) {
        char subj[64], val[32];
        snprintf(subj, sizeof(subj), "$KV.BIG.key%05d", i);
        int len = snprintf(val, sizeof(val), "value%d", i);
        CHECK_NATS(js_PublishAsync(js, subj, val, len, NULL));
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 30000;
    CHECK_NATS(js_PublishAsyncComplete(js, &po));
    /* One key updated: it must come once, with its last value. */
    uint64_t rev = 0;
    CHECK_NATS(kvStore_PutString(&rev, kv, "key00007", "updated"));
    CHECK_U64(rev, N + 1);

    seen = calloc(N, 1);
    CHECK(seen != NULL);
    CHECK_NATS(kvStore_WatchAll(&w, kv, NULL));
    int count = 0;
    int64_t deadline = th_now_ms() + 40000;
    for (;;) {
        if (th_now_ms() > deadline)
            FAIL("watch: %d entries and no end-of-initial-values marker in 40 s", count);
        natsStatus st = kvWatcher_Next(&e, w, 5000);
        if (st != NATS_OK)
            FAIL("watch: after %d entries: %s", count, natsStatus_GetText(st));
        if (e == NULL)
            break;
        int idx = -1;
        sscanf(kvEntry_Key(e), "key%d", &idx);
        if (idx < 0 || idx >= N || seen[idx])
            FAIL("watch: unexpected or repeated key %s", kvEntry_Key(e));
        seen[idx] = 1;
        if (idx == 7 && strcmp(kvEntry_ValueString(e), "updated") != 0)
            FAIL("watch: key00007 = %s", kvEntry_ValueString(e));
        count++;
        kvEntry_Destroy(e);
        e = NULL;
    }
    CHECK_I64(count, N);
done:
    free(seen);
    kvEntry_Destroy(e);
    kvWatcher_Destroy(w);
    kvStore_Destroy(kv);
    js_close(nc, js);
    return 0;
}

static int case_kv_ttl(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    kvStore *kv = NULL;
    kvEntry *e = NULL;
    uint64_t rev = 0, seen = 0;

    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(kv_create(js, "TTL", 1, 1000 * MS, &kv));
    CHECK_NATS(kvStore_PutString(&rev, kv, "a", "1"));
    CHECK_NATS(kvStore_PutString(&rev, kv, "b", "1"));
    if (!wait_stream_msgs(js, "KV_TTL", 0, 10000, &seen))
        FAIL("bucket still holds %" PRIu64 " values 10 s after they were put (ttl 1 s)", seen);
    CHECK_STATUS(kvStore_Get(&e, kv, "a"), NATS_NOT_FOUND);
    CHECK_STATUS(kvStore_Get(&e, kv, "b"), NATS_NOT_FOUND);
    /* The key can be created again. */
    CHECK_NATS(kvStore_CreateString(&rev, kv, "a", "2"));
    CHECK_U64(rev, 3);
done:
    kvEntry_Destroy(e);
    kvStore_Destroy(kv);
    js_close(nc, js);
    return 0;
}

/* ---- 2.10+/2.11+ features (gated on the server's version) ---------------- */

/* A raw JetStream API request; the reply body is copied to out (NUL-ended). */
static natsStatus js_api(natsConnection *nc, const char *subj, const char *body, char *out,
                         size_t cap)
{
    natsMsg *resp = NULL;
    out[0] = 0;
    natsStatus st = natsConnection_RequestString(&resp, nc, subj, body, 5000);
    if (st == NATS_OK) {
        snprintf(out, cap, "%.*s", natsMsg_GetDataLength(resp), natsMsg_GetData(resp));
        natsMsg_Destroy(resp);
    }
    return st;
}

#define CHECK_CONTAINS(text, needle)                                                             \
    do {                                                                                         \
        if (!strstr((text), (needle)))                                                           \
            FAIL("expected %s in: %s", needle, text);                                            \
    } while (0)

/* Per-message TTL (Nats-TTL header, stream allow_msg_ttl): nats-server 2.11+.
 * Ember advertises 2.11.0, so it must have it; 2.9 has neither. */
static int case_msg_ttl(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    jsPubAck *pa = NULL;
    natsMsg *m = NULL;
    char resp[8192];
    uint64_t seen = 0;

    if (!server_at_least(2, 11, 0))
        SKIP("per-message TTL needs nats-server 2.11 (server is %d.%d.%d)", g_ver[0], g_ver[1],
             g_ver[2]);
    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(js_api(nc, "$JS.API.STREAM.CREATE.MTTL",
                      "{\"name\":\"MTTL\",\"subjects\":[\"mttl.>\"],\"storage\":\"file\","
                      "\"allow_msg_ttl\":true}",
                      resp, sizeof(resp)));
    CHECK(strstr(resp, "\"error\"") == NULL);
    CHECK_CONTAINS(resp, "\"allow_msg_ttl\":true");
    CHECK_NATS(add_stream(js, "NOTTL", "nottl", NULL, &jerr));

    CHECK_NATS(publish_hdr(js, &pa, "mttl.a", "short", "Nats-TTL", "1s", &jerr)); /* 1 */
    jsPubAck_Destroy(pa);
    pa = NULL;
    CHECK_NATS(publish_n(js, "mttl.b", 1)); /* 2: no TTL */
    CHECK_NATS(publish_hdr(js, &pa, "mttl.c", "never", "Nats-TTL", "never", &jerr)); /* 3 */
    jsPubAck_Destroy(pa);
    pa = NULL;
    CHECK_NATS(js_GetMsg(&m, js, "MTTL", 1, NULL, &jerr));
    const char *v = NULL;
    CHECK_NATS(natsMsgHeader_Get(m, "Nats-TTL", &v));
    CHECK_STR(v, "1s");
    natsMsg_Destroy(m);
    m = NULL;
    if (!wait_stream_msgs(js, "MTTL", 2, 10000, &seen))
        FAIL("stream holds %" PRIu64 " messages 10 s after a 1s-TTL message", seen);
    CHECK_JSERR(js_GetMsg(&m, js, "MTTL", 1, NULL, &jerr), jerr, NATS_NOT_FOUND, 10037, NULL);
    CHECK_NATS(js_GetMsg(&m, js, "MTTL", 2, NULL, &jerr));
    natsMsg_Destroy(m);
    m = NULL;

    /* Invalid values and streams without TTLs. */
    CHECK_JSERR(publish_hdr(js, &pa, "mttl.a", "x", "Nats-TTL", "bogus", &jerr), jerr,
                NATS_ERR, 10165, "invalid per-message TTL");
    CHECK_JSERR(publish_hdr(js, &pa, "mttl.a", "x", "Nats-TTL", "500ms", &jerr), jerr,
                NATS_ERR, 10165, "invalid per-message TTL");
    CHECK_JSERR(publish_hdr(js, &pa, "nottl", "x", "Nats-TTL", "1s", &jerr), jerr, NATS_ERR,
                10166, "per-message TTL is disabled");
done:
    natsMsg_Destroy(m);
    jsPubAck_Destroy(pa);
    js_close(nc, js);
    return 0;
}

/* Consumer create with "action" (nats-server 2.10+): create must not update,
 * update must not create. 2.9 ignores the field. */
static int case_consumer_create_action(th_server *s)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    char resp[8192];

    if (!server_at_least(2, 10, 0))
        SKIP("consumer create actions need nats-server 2.10 (server is %d.%d.%d)", g_ver[0],
             g_ver[1], g_ver[2]);
    CHECK_NATS(js_connect(s, &nc, &js));
    CHECK_NATS(add_stream(js, "ACT", "act.>", NULL, &jerr));
    const char *create =
        "{\"stream_name\":\"ACT\",\"action\":\"create\",\"config\":{\"durable_name\":\"C\","
        "\"ack_policy\":\"explicit\",\"ack_wait\":30000000000}}";
    CHECK_NATS(js_api(nc, "$JS.API.CONSUMER.CREATE.ACT.C", create, resp, sizeof(resp)));
    CHECK(strstr(resp, "\"error\"") == NULL);
    /* Same config again: fine (idempotent). */
    CHECK_NATS(js_api(nc, "$JS.API.CONSUMER.CREATE.ACT.C", create, resp, sizeof(resp)));
    CHECK(strstr(resp, "\"error\"") == NULL);
    /* Create with a different config: 10148. */
    CHECK_NATS(js_api(nc, "$JS.API.CONSUMER.CREATE.ACT.C",
                      "{\"stream_name\":\"ACT\",\"action\":\"create\",\"config\":{"
                      "\"durable_name\":\"C\",\"ack_policy\":\"explicit\","
                      "\"ack_wait\":10000000000}}",
                      resp, sizeof(resp)));
    CHECK_CONTAINS(resp, "\"err_code\":10148");
    CHECK_CONTAINS(resp, "consumer already exists");
    /* Update of a consumer that does not exist: 10149. */
    CHECK_NATS(js_api(nc, "$JS.API.CONSUMER.CREATE.ACT.D",
                      "{\"stream_name\":\"ACT\",\"action\":\"update\",\"config\":{"
                      "\"durable_name\":\"D\",\"ack_policy\":\"explicit\"}}",
                      resp, sizeof(resp)));
    CHECK_CONTAINS(resp, "\"err_code\":10149");
    CHECK_CONTAINS(resp, "consumer does not exist");
    /* Update of an existing one changes it. */
    CHECK_NATS(js_api(nc, "$JS.API.CONSUMER.CREATE.ACT.C",
                      "{\"stream_name\":\"ACT\",\"action\":\"update\",\"config\":{"
                      "\"durable_name\":\"C\",\"ack_policy\":\"explicit\","
                      "\"ack_wait\":10000000000}}",
                      resp, sizeof(resp)));
    CHECK(strstr(resp, "\"error\"") == NULL);
    CHECK_CONTAINS(resp, "\"ack_wait\":10000000000");
done:
    js_close(nc, js);
    return 0;
}

/* ---- runner ------------------------------------------------------------- */

typedef struct {
    const char *name;
    int (*fn)(th_server *);
} tcase;

static const tcase CASES[] = {
    {"account_info", case_account_info},
    {"stream_add", case_stream_add},
    {"stream_readd", case_stream_readd},
    {"stream_update", case_stream_update},
    {"stream_info", case_stream_info},
    {"stream_names_list", case_stream_names_list},
    {"stream_delete", case_stream_delete},
    {"purge_all", case_purge_all},
    {"purge_filter", case_purge_filter},
    {"purge_keep", case_purge_keep},
    {"purge_seq", case_purge_seq},
    {"get_msg", case_get_msg},
    {"direct_get", case_direct_get},
    {"delete_msg", case_delete_msg},
    {"publish_ack", case_publish_ack},
    {"publish_async_10k", case_publish_async_10k},
    {"dedupe", case_dedupe},
    {"publish_expectations", case_publish_expectations},
    {"limit_max_msgs_discard_old", case_limit_max_msgs_discard_old},
    {"limit_max_msgs_discard_new", case_limit_max_msgs_discard_new},
    {"limit_max_bytes", case_limit_max_bytes},
    {"limit_max_msg_size", case_limit_max_msg_size},
    {"limit_max_msgs_per_subject", case_limit_max_msgs_per_subject},
    {"limit_max_age", case_limit_max_age},
    {"rollup", case_rollup},
    {"sealed", case_sealed},
    {"deny_delete_purge", case_deny_delete_purge},
    {"workqueue", case_workqueue},
    {"interest", case_interest},
    {"pull_fetch_batch", case_pull_fetch_batch},
    {"pull_fetch_timeout", case_pull_fetch_timeout},
    {"pull_ack_info", case_pull_ack_info},
    {"pull_redelivery", case_pull_redelivery},
    {"pull_max_deliver", case_pull_max_deliver},
    {"pull_nak", case_pull_nak},
    {"pull_term", case_pull_term},
    {"pull_in_progress", case_pull_in_progress},
    {"consumer_durable_ephemeral", case_consumer_durable_ephemeral},
    {"consumer_list_delete", case_consumer_list_delete},
    {"push_basic", case_push_basic},
    {"push_deliver_policies", case_push_deliver_policies},
    {"push_filter_subject", case_push_filter_subject},
    {"push_ordered", case_push_ordered},
    {"push_flow_control", case_push_flow_control},
    {"push_flow_control_raw", case_push_flow_control_raw},
    {"push_heartbeat_raw", case_push_heartbeat_raw},
    {"kv_basic", case_kv_basic},
    {"kv_history_keys", case_kv_history_keys},
    {"kv_watch", case_kv_watch},
    {"kv_watchall_10k", case_kv_watchall_10k},
    {"kv_ttl", case_kv_ttl},
    {"msg_ttl", case_msg_ttl},                           /* 2.11+ */
    {"consumer_create_action", case_consumer_create_action}, /* 2.10+ */
};

/*
 * Does the server answer the JetStream API at all? $JS.API.INFO and the info
 * of a stream that does not exist, each within 2 s. A server without it
 * would otherwise make every case wait out every request timeout.
 */
static int js_api_answers(const th_server *s)
{
    static const char *const probes[] = {"$JS.API.INFO", "$JS.API.STREAM.INFO.NO_SUCH_STREAM"};
    natsConnection *nc = NULL;
    int ok = th_connect(s, NULL, &nc) == NATS_OK;
    for (size_t i = 0; ok && i < sizeof(probes) / sizeof(*probes); i++) {
        natsMsg *m = NULL;
        ok = natsConnection_RequestString(&m, nc, probes[i], "", 2000) == NATS_OK;
        natsMsg_Destroy(m);
    }
    natsConnection_Destroy(nc);
    return ok;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (nats_Open(-1) != NATS_OK) {
        fprintf(stderr, "nats_Open failed\n");
        return 2;
    }
    printf("js: server binary %s\n", th_server_binary());
    int passed = 0, failed = 0, skipped = 0, version_known = 0, no_api = 0;
    int64_t t_all = th_now_ms();
    for (size_t i = 0; i < sizeof(CASES) / sizeof(*CASES); i++) {
        const tcase *c = &CASES[i];
        if (filter && !strstr(c->name, filter))
            continue;
        g_case_failed = 0;
        g_case_skipped = 0;
        g_case_name = c->name;
        if (no_api >= 3) {
            printf("FAIL %s (not run: no JetStream API in the last 3 cases)\n", c->name);
            failed++;
            continue;
        }
        char dir[] = "/tmp/ember-js-XXXXXX";
        if (!mkdtemp(dir)) {
            printf("FAIL %s (mkdtemp: %s)\n", c->name, strerror(errno));
            failed++;
            continue;
        }
        const char *args[] = {"-js", "-sd", dir, NULL};
        th_server srv;
        int64_t t0 = th_now_ms();
        if (th_server_start(&srv, NULL, args) != 0) {
            printf("FAIL %s (server did not start)\n", c->name);
            failed++;
            rm_tree(dir);
            continue;
        }
        if (!version_known) {
            read_server_version(&srv);
            version_known = 1;
            printf("js: server version %d.%d.%d\n", g_ver[0], g_ver[1], g_ver[2]);
        }
        if (js_api_answers(&srv)) {
            no_api = 0;
            c->fn(&srv);
        } else {
            no_api++;
            case_fail(0, "no reply to $JS.API.INFO or $JS.API.STREAM.INFO within 2 s: "
                         "JetStream API not available");
        }
        if (!g_case_failed && !th_server_alive(&srv))
            case_fail(0, "the server died during the case");
        if (g_case_failed)
            th_server_dump_log(&srv, 3000);
        if (th_server_stop(&srv) != 0)
            g_case_failed = 1;
        rm_tree(dir);
        int64_t dt = th_now_ms() - t0;
        if (g_case_failed) {
            printf("FAIL %s (%lld ms)\n", c->name, (long long)dt);
            failed++;
        } else if (g_case_skipped) {
            printf("skip %s (%lld ms)\n", c->name, (long long)dt);
            skipped++;
        } else {
            printf("ok   %s (%lld ms)\n", c->name, (long long)dt);
            passed++;
        }
    }
    nats_CloseAndWait(5000);
    printf("total %lld ms\n", (long long)(th_now_ms() - t_all));
    if (skipped)
        printf("%d skipped (features newer than the server's version)\n", skipped);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
