/* ember-server: a standalone Ember broker, with nats-server's flag names. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ember.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: ember-server [options]\n"
            "\n"
            "Server Options:\n"
            "    -c, --config <file>              Configuration file (nats-server format)\n"
            "    -a, --addr, --net <host>         Bind to host address (default: 0.0.0.0)\n"
            "    -p, --port <port>                Use port for clients (default: 4222, -1: random)\n"
            "    -n, --name, --server_name <name> Server name (default: server ID)\n"
            "        --dont_listen                Open no client port\n"
            "    -m, --http_port <port>           Use port for http monitoring (-1: random)\n"
            "        --max_payload <bytes>        Maximum message payload (default: 1048576)\n"
            "        --max_pending <bytes>        Maximum outbound bytes per client (default: 64MB)\n"
            "        --max_connections <n>        Maximum client connections (default: 65536)\n"
            "        --ping_interval <seconds>    Interval of server pings (default: 120)\n"
            "\n"
            "Logging Options:\n"
            "    -l, --log <file>                 File to redirect log output\n"
            "    -D, --debug                      Enable debugging output\n"
            "    -V, --trace                      Trace the raw protocol\n"
            "    -DV                              Debug and trace\n"
            "\n"
            "JetStream Options:\n"
            "    -js, --jetstream                 Enable JetStream functionality\n"
            "    -sd, --store_dir <dir>           Set the storage directory\n"
            "\n"
            "Authorization Options:\n"
            "        --user <user>                User required for connections\n"
            "        --pass <password>            Password required for connections\n"
            "        --auth <token>               Authorization token required for connections\n"
            "\n"
            "TLS Options:\n"
            "        --tls                        Enable TLS, do not verify clients (default: false)\n"
            "        --tlscert <file>             Server certificate file\n"
            "        --tlskey <file>              Private key for server certificate\n"
            "        --tlsverify                  Enable TLS, verify client certificates\n"
            "        --tlscacert <file>           Client certificate CA for verification\n"
            "\n"
            "Common Options:\n"
            "    -h, --help                       Show this message\n"
            "    -v, --version                    Show version\n");
}

static FILE *log_file;

static void file_logger(void *ud, int level, const char *line)
{
    static const char *tags[] = {"[FTL]", "[ERR]", "[WRN]", "[INF]", "[DBG]", "[TRC]"};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    char stamp[64];
    strftime(stamp, sizeof stamp, "%Y/%m/%d %H:%M:%S", &tm);
    fprintf(log_file, "[%d] %s.%06ld %s %s\n", (int)getpid(), stamp, ts.tv_nsec / 1000,
            tags[level < 0 ? 0 : level > 5 ? 5 : level], line);
    fflush(log_file);
}

static void file_logger_stderr(void *ud, int level, const char *line)
{
    fprintf(stderr, "ember-server: %s\n", line);
}

static int parse_int(const char *flag, const char *v, long long *out)
{
    char *end;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end) {
        fprintf(stderr, "ember-server: invalid value \"%s\" for flag %s\n", v, flag);
        return -1;
    }
    *out = x;
    return 0;
}

/* The options from the command line: the configuration file (-c) first, then the flags.
 * Returns -1 to go on, or the exit code (help, version, a bad flag). Also run again on
 * SIGHUP to reload. */
static int build_options(int argc, char **argv, ember_server_options *op, ember_config **cfgp,
                         int *levelp, const char **logpathp)
{
    ember_server_options_init(op);
    *cfgp = NULL;
    *levelp = EMBER_LOG_INFO;
    *logpathp = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *path = NULL;
        if ((!strcmp(a, "-c") || !strcmp(a, "--config") || !strcmp(a, "-config")) && i + 1 < argc)
            path = argv[i + 1];
        else if (!strncmp(a, "--config=", 9))
            path = a + 9;
        if (path) {
            op->log_fn = file_logger_stderr;
            op->log_level = EMBER_LOG_WARN;
            if (ember_config_load(cfgp, path, op) != EMBER_OK) {
                fprintf(stderr, "ember-server: %s\n", ember_last_error());
                return 1;
            }
            op->log_fn = NULL;
            if (op->log_level > *levelp)
                *levelp = op->log_level; /* debug / trace from the file */
            break;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        /* accept --flag=value and -flag value */
        char flag[64];
        const char *eq = strchr(a, '=');
        if (eq && a[0] == '-' && (size_t)(eq - a) < sizeof flag) {
            memcpy(flag, a, (size_t)(eq - a));
            flag[eq - a] = 0;
            v = eq + 1;
            a = flag;
        }
#define NEEDV()                                                                                \
    do {                                                                                       \
        if (!v) {                                                                              \
            if (i + 1 >= argc) {                                                               \
                fprintf(stderr, "ember-server: flag needs an argument: %s\n", a);            \
                return 1;                                                              \
            }                                                                                  \
            v = argv[++i];                                                                     \
        }                                                                                      \
    } while (0)
        long long n;
        if (!strcmp(a, "-c") || !strcmp(a, "--config") || !strcmp(a, "-config")) {
            NEEDV(); /* loaded above */
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help") || !strcmp(a, "-help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--version") || !strcmp(a, "-version")) {
            printf("ember-server: v%s (nats-server compatible %s)\n", ember_version(),
                   EMBER_NATS_VERSION);
            return 0;
        } else if (!strcmp(a, "-a") || !strcmp(a, "--addr") || !strcmp(a, "--net") ||
                   !strcmp(a, "-addr") || !strcmp(a, "-net")) {
            NEEDV();
            op->host = v;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--port") || !strcmp(a, "-port")) {
            NEEDV();
            if (parse_int(a, v, &n))
                return 1;
            op->port = (int)n;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--name") || !strcmp(a, "--server_name") ||
                   !strcmp(a, "-name") || !strcmp(a, "-server_name")) {
            NEEDV();
            op->server_name = v;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--http_port") || !strcmp(a, "-http_port")) {
            NEEDV();
            if (parse_int(a, v, &n))
                return 1;
            op->http_port = (int)n;
        } else if (!strcmp(a, "--dont_listen")) {
            op->dont_listen = true;
        } else if (!strcmp(a, "--max_payload")) {
            NEEDV();
            if (parse_int(a, v, &n))
                return 1;
            op->max_payload = n;
        } else if (!strcmp(a, "--max_pending")) {
            NEEDV();
            if (parse_int(a, v, &n))
                return 1;
            op->max_pending = n;
        } else if (!strcmp(a, "--max_connections")) {
            NEEDV();
            if (parse_int(a, v, &n))
                return 1;
            op->max_connections = (int)n;
        } else if (!strcmp(a, "--ping_interval")) {
            NEEDV();
            if (parse_int(a, v, &n))
                return 1;
            op->ping_interval_ms = n * 1000;
        } else if (!strcmp(a, "-l") || !strcmp(a, "--log") || !strcmp(a, "-log")) {
            NEEDV();
            *logpathp = v;
        } else if (!strcmp(a, "-D") || !strcmp(a, "--debug") || !strcmp(a, "-debug")) {
            if (*levelp < EMBER_LOG_DEBUG)
                *levelp = EMBER_LOG_DEBUG;
        } else if (!strcmp(a, "-V") || !strcmp(a, "--trace") || !strcmp(a, "-trace") ||
                   !strcmp(a, "-DV") || !strcmp(a, "-VD")) {
            *levelp = EMBER_LOG_TRACE;
        } else if (!strcmp(a, "-js") || !strcmp(a, "--jetstream") || !strcmp(a, "-jetstream")) {
            op->jetstream = true;
        } else if (!strcmp(a, "-sd") || !strcmp(a, "--store_dir") || !strcmp(a, "-store_dir")) {
            NEEDV();
            op->store_dir = v;
        } else if (!strcmp(a, "--user") || !strcmp(a, "-user")) {
            NEEDV();
            op->username = v;
        } else if (!strcmp(a, "--pass") || !strcmp(a, "-pass")) {
            NEEDV();
            op->password = v;
        } else if (!strcmp(a, "--auth") || !strcmp(a, "-auth")) {
            NEEDV();
            op->auth_token = v;
        } else if (!strcmp(a, "--tls") || !strcmp(a, "-tls")) {
            /* TLS is on as soon as a certificate is given */
        } else if (!strcmp(a, "--tlscert") || !strcmp(a, "-tlscert")) {
            NEEDV();
            op->tls_cert_file = v;
        } else if (!strcmp(a, "--tlskey") || !strcmp(a, "-tlskey")) {
            NEEDV();
            op->tls_key_file = v;
        } else if (!strcmp(a, "--tlscacert") || !strcmp(a, "-tlscacert")) {
            NEEDV();
            op->tls_ca_file = v;
        } else if (!strcmp(a, "--tlsverify") || !strcmp(a, "-tlsverify")) {
            op->tls_verify = true;
        } else {
            fprintf(stderr, "ember-server: flag provided but not defined: %s\n", a);
            usage(stderr);
            return 1;
        }
    }
    return -1;
}

static struct {
    ember_server *s;
    int argc;
    char **argv;
    atomic_bool stop;
} hup;

static void *sighup_thread(void *arg)
{
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    for (;;) {
        int sig;
        if (sigwait(&set, &sig) != 0 || atomic_load(&hup.stop))
            return NULL;
        ember_server_options o;
        ember_config *cfg;
        int level;
        const char *logpath;
        if (build_options(hup.argc, hup.argv, &o, &cfg, &level, &logpath) >= 0) {
            fprintf(stderr, "ember-server: reload: the options could not be read\n");
            continue;
        }
        if (ember_server_reload(hup.s, &o) != EMBER_OK)
            fprintf(stderr, "ember-server: reload: %s\n", ember_last_error());
        else if (!logpath)
            ember_server_log_to_stderr(hup.s, level);
        ember_config_free(cfg);
    }
}

int main(int argc, char **argv)
{
    /* SIGHUP is taken by a thread of ours (never by the library) */
    sigset_t hupset;
    sigemptyset(&hupset);
    sigaddset(&hupset, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &hupset, NULL);
    ember_server_options o;
    int level;
    const char *logpath;
    ember_config *cfg;
    int brc = build_options(argc, argv, &o, &cfg, &level, &logpath);
    if (brc >= 0)
        return brc;
    if (logpath) {
        log_file = fopen(logpath, "a");
        if (!log_file) {
            perror(logpath);
            return 1;
        }
        o.log_fn = file_logger;
        o.log_level = level;
    }
    ember_server *s;
    int rc = ember_server_new(&s, &o);
    ember_config_free(cfg); /* the server copied what it needs */
    if (rc) {
        fprintf(stderr, "ember-server: %s\n", ember_last_error());
        return 1;
    }
    if (!logpath)
        ember_server_log_to_stderr(s, level);
    rc = ember_server_start(s);
    if (rc || !ember_server_ready_for_connections(s, 5000)) {
        fprintf(stderr, "ember-server: %s\n", ember_last_error());
        ember_server_free(s);
        return 1;
    }
    /* SIGHUP: read the configuration file and the flags again, and reload */
    hup.s = s;
    hup.argc = argc;
    hup.argv = argv;
    pthread_t ht;
    bool hup_thread = pthread_create(&ht, NULL, sighup_thread, &hup) == 0;
    ember_server_wait_for_shutdown(s, true);
    if (hup_thread) {
        atomic_store(&hup.stop, true);
        pthread_kill(ht, SIGHUP); /* wake it: it sees the server stopping and ends */
        pthread_join(ht, NULL);
    }
    ember_server_free(s);
    if (log_file)
        fclose(log_file);
    return 0;
}
