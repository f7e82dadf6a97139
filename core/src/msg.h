/* msg: the refcounted message block shared by every in-process subscriber. */
#ifndef EMBER_MSG_H
#define EMBER_MSG_H

#include <stdatomic.h>
#include <stddef.h>

#include "ember.h"

typedef struct hdr_field {
    char *key;
    char *value;
} hdr_field;

typedef struct hdr_index {
    int status;
    int n;
    hdr_field f[];
} hdr_index;

#define MSG_F_HDR_OWNED 1u   /* hdr is a separate malloc (builder messages) */
#define MSG_F_FROZEN 2u      /* published or delivered: headers may not change */
/* 4u, 8u: MSG_F_POOLED, MSG_F_POOL_BIG, private to msg.c (recycled blocks) */

struct ember_msg {
    atomic_int refs;
    unsigned flags;
    char *subject;
    size_t subject_len;
    char *reply;            /* NULL when none */
    size_t reply_len;
    char *hdr;              /* raw header block "NATS/1.0...\r\n\r\n", NULL when none */
    size_t hdr_len;
    char *data;             /* always NUL-terminated after data_len */
    size_t data_len;
    _Atomic(hdr_index *) hidx; /* lazily parsed headers */
    char buf[];
};

/* Build a frozen message from slices in one allocation (hdr may be NULL). */
ember_msg *msg_build(const char *subject, size_t subject_len, const char *reply,
                     size_t reply_len, const char *hdr, size_t hdr_len, const char *data,
                     size_t data_len);
/* Make (or find) the header index. NULL when there are no headers or on ENOMEM. */
const hdr_index *msg_headers(const ember_msg *m);
/* Parse a header block into a fresh index (NULL on ENOMEM; an empty index for junk). */
hdr_index *hdr_parse(const char *hdr, size_t len);

#endif
