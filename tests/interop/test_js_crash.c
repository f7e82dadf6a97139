/*
 * JetStream crash test with the official C client: publish asynchronously to a file
 * stream, SIGKILL the server in the middle, restart it on the same store directory and
 * check that every message the server acknowledged is there, at the sequence its PubAck
 * named, with its payload. Three rounds, killing after a different number of acks.
 *
 * A killed process leaves its writes in the page cache, so this proves "an ack is never
 * sent before the write"; that acks also wait for fsync (power loss) is proven by the
 * store tests, which drop every unsynced byte through the store's I/O interface.
 *
 * The server binary comes from EMBER_TEST_SERVER (harness.h). Bounded everywhere; no
 * assertion on timing.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define N_MSGS 20000

static int failures;
#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);           \
            failures++;                                                                        \
        }                                                                                      \
    } while (0)

static _Atomic uint64_t acked_seq[N_MSGS]; /* 0: not acknowledged */
static atomic_int nacked;

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    (void)pae;
    (void)closure;
    if (pa && msg) {
        const char *d = natsMsg_GetData(msg);
        int len = natsMsg_GetDataLength(msg);
        char buf[32];
        if (len > 1 && len < (int)sizeof buf && d[0] == 'm') {
            memcpy(buf, d + 1, (size_t)len - 1);
            buf[len - 1] = 0;
            int id = atoi(buf);
            if (id >= 0 && id < N_MSGS) {
                atomic_store(&acked_seq[id], pa->Sequence);
                atomic_fetch_add(&nacked, 1);
            }
        }
    }
    natsMsg_Destroy(msg);
}

static void kill_server(th_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        int st;
        waitpid(s->pid, &st, 0);
        s->pid = 0;
    }
}

static int round_(const char *dir, int kill_after, bool first)
{
    th_server s;
    const char *args[] = {"-js", "-sd", dir, NULL};
    if (th_server_start(&s, NULL, args) != 0)
        return -1;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsStatus st = th_connect(&s, NULL, &nc);
    CHECK(st == NATS_OK);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.MaxPending = 2048;
    if (st == NATS_OK)
        st = natsConnection_JetStream(&js, nc, &jo);
    CHECK(st == NATS_OK);
    if (first && st == NATS_OK) {
        jsStreamConfig sc;
        jsStreamConfig_Init(&sc);
        sc.Name = "CRASH";
        const char *subjects[] = {"crash.>"};
        sc.Subjects = subjects;
        sc.SubjectsLen = 1;
        sc.Storage = js_FileStorage;
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;
        st = js_AddStream(&si, js, &sc, NULL, &jerr);
        CHECK(st == NATS_OK);
        jsStreamInfo_Destroy(si);
    }
    static int next_id;
    int start_acks = atomic_load(&nacked);
    bool killed = false;
    int64_t deadline = th_now_ms() + 20000;
    for (; next_id < N_MSGS && th_now_ms() < deadline; next_id++) {
        char payload[32];
        int n = snprintf(payload, sizeof payload, "m%d", next_id);
        st = js_PublishAsync(js, "crash.x", payload, n, NULL);
        if (st != NATS_OK)
            break;
        if (atomic_load(&nacked) - start_acks >= kill_after) {
            kill_server(&s); /* in the middle of the async stream */
            killed = true;
            next_id++;
            break;
        }
    }
    if (!killed) {
        /* the publisher got ahead of the acks: wait for enough of them, then kill */
        while (atomic_load(&nacked) - start_acks < kill_after && th_now_ms() < deadline)
            th_sleep_ms(1);
        kill_server(&s);
    }
    th_sleep_ms(200); /* let the client notice; acks can no longer arrive */
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return 0;
}

static int verify(const char *dir)
{
    th_server s;
    const char *args[] = {"-js", "-sd", dir, NULL};
    if (th_server_start(&s, NULL, args) != 0)
        return -1;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    CHECK(th_connect(&s, NULL, &nc) == NATS_OK);
    CHECK(natsConnection_JetStream(&js, nc, NULL) == NATS_OK);
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus st = js_GetStreamInfo(&si, js, "CRASH", NULL, &jerr);
    CHECK(st == NATS_OK);
    int acked = 0, found = 0, wrong = 0;
    for (int id = 0; id < N_MSGS; id++) {
        uint64_t seq = atomic_load(&acked_seq[id]);
        if (!seq)
            continue;
        acked++;
        natsMsg *m = NULL;
        st = js_GetMsg(&m, js, "CRASH", seq, NULL, &jerr);
        if (st != NATS_OK) {
            if (wrong++ < 5)
                fprintf(stderr, "acked message m%d (seq %llu) missing after restart: %s (%d)\n",
                        id, (unsigned long long)seq, natsStatus_GetText(st), (int)jerr);
            continue;
        }
        char want[32];
        snprintf(want, sizeof want, "m%d", id);
        if (natsMsg_GetDataLength(m) == (int)strlen(want) &&
            !memcmp(natsMsg_GetData(m), want, strlen(want)))
            found++;
        else if (wrong++ < 5)
            fprintf(stderr, "seq %llu holds %.*s, acked as %s\n", (unsigned long long)seq,
                    natsMsg_GetDataLength(m), natsMsg_GetData(m), want);
        natsMsg_Destroy(m);
    }
    printf("  acked %d, found after restart %d\n", acked, found);
    CHECK(acked > 0);
    CHECK(found == acked);
    if (si) {
        CHECK(si->State.Msgs >= (uint64_t)acked);
        jsStreamInfo_Destroy(si);
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    th_server_stop(&s);
    return 0;
}

int main(void)
{
    char dir[] = "/tmp/ember-js-crash-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    printf("test_js_crash: %s\n", th_server_binary());
    const int kill_after[] = {500, 2000, 5000};
    for (int r = 0; r < 3; r++) {
        printf("round %d: kill -9 after %d acks\n", r + 1, kill_after[r]);
        if (round_(dir, kill_after[r], r == 0) != 0 || verify(dir) != 0) {
            failures++;
            break;
        }
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    nats_Close();
    printf("test_js_crash: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
