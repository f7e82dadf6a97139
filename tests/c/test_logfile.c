/* ember_server_log_to_file: nats-server style lines appended to a file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ember.h"

static int passed, failed;
#define CHECK(c)                                                                               \
    do {                                                                                       \
        if (c)                                                                                 \
            passed++;                                                                          \
        else {                                                                                 \
            failed++;                                                                          \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c);              \
        }                                                                                      \
    } while (0)

int main(void)
{
    char dir[] = "/tmp/ember-logfile-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/server.log", dir);
    ember_server_options o;
    ember_server_options_init(&o);
    o.host = "127.0.0.1";
    o.port = -1;
    ember_server *s;
    CHECK(ember_server_new(&s, &o) == EMBER_OK);
    CHECK(ember_server_log_to_file(s, "/nonexistent-dir/x.log", EMBER_LOG_INFO) == EMBER_EIO);
    CHECK(ember_server_log_to_file(NULL, path, EMBER_LOG_INFO) == EMBER_EINVAL);
    CHECK(ember_server_log_to_file(s, path, EMBER_LOG_INFO) == EMBER_OK);
    CHECK(ember_server_start(s) == EMBER_OK);
    CHECK(ember_server_ready_for_connections(s, 5000));
    ember_server_free(s);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    char buf[8192] = {0};
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    CHECK(n > 0);
    CHECK(strstr(buf, "[INF] Listening for client connections on 127.0.0.1:") != NULL);
    CHECK(strstr(buf, "[INF] Server is ready") != NULL);
    CHECK(strstr(buf, "[DBG]") == NULL); /* level respected */
    unlink(path);
    rmdir(dir);
    printf("logfile: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
