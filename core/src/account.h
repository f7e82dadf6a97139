/* account: accounts as nats-server's accounts {} (each its own subject space and its own
 * JetStream), with stream and service exports/imports between them. The global account
 * "$G" always exists; without configured accounts it is the only one. */
#ifndef EMBER_ACCOUNT_H
#define EMBER_ACCOUNT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "server.h"

typedef struct acc_export {
    char *subject;
    bool service;
    char **accs;            /* who may import; NULL (naccs 0): public */
    size_t naccs;
    int rtype;              /* ember_response_type */
    int64_t rthr_ms;        /* response threshold */
} acc_export;

typedef struct acc_import {
    struct account *owner;  /* the importing account */
    struct account *from;   /* the exporting account */
    bool service;
    char *subject;          /* in the exporter */
    char *to;               /* service: local subject; stream: mapped subject (or NULL) */
    char *prefix;           /* stream: NULL or the prefix */
    const acc_export *exp;  /* the export it uses */
    sub *isub;              /* service: on `to` in owner; stream: on subject in from */
} acc_import;

typedef struct acc_resp acc_resp;

struct account {
    char *name;
    server *srv;
    sublist *sl;
    client *sys;            /* internal client working in this account */
    struct js *js;          /* JetStream of this account, NULL when off */
    bool js_enabled;
    int64_t js_max_memory, js_max_store;
    acc_export *exports;
    size_t nexports;
    acc_import *imports;
    size_t nimports;
    /* service replies on their way back (exporter side): "_R_.<token>" -> importer */
    pthread_mutex_t rmu;
    acc_resp **rtab;        /* hash buckets (rmu) */
    size_t rcap, rcount;
    sub *resp_sub;          /* "_R_.>" here while some import uses a service export */
    sub *jsinfo_sub;        /* JetStream on but not here: $JS.API.INFO answered 10039 */
};

/* ember_server_new: the global account and the configured ones, exports checked and
 * imports resolved (errors with nats-server's texts, EMBER_EINVAL). */
int accounts_new(server *s, const ember_server_options *o);
void accounts_free(server *s);
/* Loop thread at start / shutdown: import and reply subscriptions on, and off. */
int accounts_start(server *s, char *err, size_t errcap);
void accounts_stop(server *s);
/* Housekeeping (loop thread): drop service replies past their threshold. */
void accounts_tick(server *s, uint64_t now_ms);
/* By name (NULL or "" or "$G": the global account); NULL when unknown. */
account *server_account(server *s, const char *name);
/* Were accounts configured (more than "$G")? */
bool accounts_configured(const server *s);
/* A reload may change users, not the accounts themselves: same names, JetStream,
 * exports and imports. */
bool accounts_same(const server *s, const ember_server_options *b);

/* Subscriptions and publishes of the server itself inside an account. */
sub *acc_isub(account *a, const char *subject, const char *queue, isub_fn fn, void *ud,
              void (*ud_free)(void *ud));
int acc_publish(account *a, msgview *mv);

#endif
