/* Fuzz the file store's recovery: arbitrary bytes become block files and an index file
 * (through the in-memory storeio), then the store is opened, read, appended to, closed
 * (which writes a fresh index) and opened again. Must not crash, hang or leak.
 *
 * Input: byte 0 flags (bit 0: also write the index, bit 1: a second block,
 * bit 2: a 1 ms sync interval); bytes 1-2 index length (LE); bytes 3-4 second-block
 * length (LE); then the index bytes, the second block (2.blk), and the rest is 1.blk.
 */
#define STORE_INTERNAL
#include "store.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void recovered(void *ud, const store_recovery *r) { (void)ud, (void)r; }

static void exercise(storeio *io, uint32_t sync_ms)
{
    store_config c = {0};
    c.kind = STORE_FILE;
    c.name = "F";
    c.dir = "/s";
    c.io = io;
    c.block_size = 4096;
    c.sync_interval_ms = sync_ms;
    c.on_recover = recovered;
    store *st;
    if (store_open(&c, &st) != 0)
        return;
    store_state s;
    store_get_state(st, &s);
    store_msg *m;
    uint64_t seq = 0;
    for (int i = 0; i < 200 && store_load_next(st, ">", seq + 1, &m) == 0; i++) {
        seq = m->seq;
        store_msg_release(m);
        if (seq == UINT64_MAX)
            break;
    }
    if (store_load_last(st, "a.>", &m) == 0)
        store_msg_release(m);
    (void)store_num_pending(st, "*.b", 0);
    store_subject_state *ss;
    size_t n;
    if (store_subjects_state(st, NULL, &ss, &n) == 0)
        free(ss);
    if (s.last_seq < UINT64_MAX - 4 &&
        store_append(st, "a.b", 3, NULL, 0, "xyz", 3, 1, 0, &seq) == 0)
        store_remove(st, s.first_seq, true);
    store_expire(st, INT64_MAX);
    store_flush(st);
    store_close(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5)
        return 0;
    uint8_t flags = data[0];
    size_t il = (size_t)data[1] | (size_t)data[2] << 8;
    size_t bl = (size_t)data[3] | (size_t)data[4] << 8;
    data += 5;
    size -= 5;
    if (il > size)
        il = size;
    const uint8_t *idx = data;
    data += il;
    size -= il;
    if (bl > size)
        bl = size;
    const uint8_t *b2 = data;
    data += bl;
    size -= bl;

    storeio *io = storeio_mem_new();
    if (!io)
        return 0;
    storeio_mem_put(io, "/s/blk/1.blk", data, size);
    if (flags & 2)
        storeio_mem_put(io, "/s/blk/2.blk", b2, bl);
    if (flags & 1)
        storeio_mem_put(io, "/s/index.idx", idx, il);
    exercise(io, flags & 4 ? 1 : 0);
    exercise(io, 0); /* reopen: with the index the close wrote */
    storeio_mem_free(io);
    return 0;
}
