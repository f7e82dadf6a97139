/* A program built against an installed Ember (find_package and pkg-config). */
#include <ember.h>
#include <stdio.h>
#include <string.h>

static void echo(void *ud, ember_sub *sub, ember_msg *m)
{
    size_t n;
    const void *d = ember_msg_data(m, &n);
    ember_msg_respond(ud, m, d, n);
}

int main(void)
{
    ember_server_options o;
    ember_server_options_init(&o);
    o.dont_listen = true;
    ember_server *s;
    if (ember_server_new(&s, &o) || ember_server_start(s) ||
        !ember_server_ready_for_connections(s, 5000)) {
        fprintf(stderr, "server: %s\n", ember_last_error());
        return 1;
    }
    ember_conn *c;
    ember_conn_connect(&c, s, NULL);
    ember_conn_subscribe(NULL, c, "echo", NULL, EMBER_DELIVER_INLINE, echo, c, NULL);
    ember_msg *r;
    int rc = ember_conn_request(c, "echo", "ping", 4, 1000, &r);
    int ok = rc == 0 && strcmp(ember_msg_data(r, NULL), "ping") == 0;
    if (rc == 0)
        ember_msg_release(r);
    ember_conn_close(c);
    ember_server_free(s);
    printf("consumer: %s (ember %s)\n", ok ? "ok" : "FAILED", ember_version());
    return ok ? 0 : 1;
}
