/*
 * kv_state: an application that keeps its state in a key-value bucket of its own embedded
 * broker. Each run opens the store directory, reads the state the previous run left
 * (a run counter and the time of the last run), updates it with compare-and-set, and
 * closes. Run it twice and the second run finds what the first one wrote:
 *
 *   ./build/examples/example-kv_state /tmp/kv-demo     # runs: 1
 *   ./build/examples/example-kv_state /tmp/kv-demo     # runs: 2, last run at ...
 *
 * NATS clients see the same bucket over TCP when the server listens (here it does not:
 * dont_listen), e.g. `nats kv get app runs`.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ember.h"

static int fail(const char *what, int rc)
{
    fprintf(stderr, "kv_state: %s: %s (%s)\n", what, ember_strerror(rc), ember_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "kv-state-data";
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true;
    o.jetstream = true;
    o.store_dir = dir;
    ember_server *srv = NULL;
    int rc = ember_server_new(&srv, &o);
    if (rc)
        return fail("server", rc);
    if ((rc = ember_server_start(srv)) || !ember_server_ready_for_connections(srv, 10000))
        return fail("start", rc ? rc : EMBER_ETIMEDOUT);
    ember_conn *c = NULL;
    if ((rc = ember_conn_connect(&c, srv, NULL)))
        return fail("connect", rc);

    /* the bucket: created on the first run, found on the next ones */
    ember_kv_config kc;
    ember_kv_config_init(&kc);
    kc.bucket = "app";
    kc.history = 5;
    ember_kv *kv = NULL;
    if ((rc = ember_kv_bucket_open(c, "app", &kv)) == EMBER_ENOTFOUND)
        rc = ember_kv_bucket_create(c, &kc, &kv);
    if (rc)
        return fail("bucket", rc);

    /* read the previous state */
    uint64_t runs = 0, rev = 0;
    ember_kv_entry *e = NULL;
    if ((rc = ember_kv_get(kv, "runs", &e)) == EMBER_OK) {
        runs = strtoull(e->value, NULL, 10);
        rev = e->revision;
        ember_kv_entry_free(e);
    } else if (rc != EMBER_ENOTFOUND) {
        return fail("get runs", rc);
    }
    if (ember_kv_get(kv, "last_run", &e) == EMBER_OK) {
        printf("previous run at %s (revision %" PRIu64 ")\n", (const char *)e->value,
               e->revision);
        ember_kv_entry_free(e);
    } else {
        printf("first run: no state yet in %s\n", dir);
    }

    /* update: compare-and-set on the counter (create on the first run) */
    char buf[64];
    snprintf(buf, sizeof buf, "%" PRIu64, runs + 1);
    rc = rev ? ember_kv_update(kv, "runs", buf, strlen(buf), rev, NULL)
             : ember_kv_create(kv, "runs", buf, strlen(buf), NULL);
    if (rc)
        return fail("update runs", rc);
    time_t now = time(NULL);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    if ((rc = ember_kv_put(kv, "last_run", buf, strlen(buf), NULL)))
        return fail("put last_run", rc);
    printf("runs: %" PRIu64 "\n", runs + 1);

    /* the history of the counter, as kept by the bucket */
    ember_kv_entry **h = NULL;
    size_t n = 0;
    if (ember_kv_history(kv, "runs", &h, &n) == EMBER_OK) {
        printf("history of runs:");
        for (size_t i = 0; i < n; i++)
            printf(" %s@%" PRIu64, (const char *)h[i]->value, h[i]->revision);
        printf("\n");
        ember_kv_entries_free(h, n);
    }

    ember_kv_close(kv);
    ember_conn_close(c);
    ember_server_free(srv); /* flushes the store: the next run finds everything */
    return 0;
}
