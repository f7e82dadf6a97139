/* js_consumer: JetStream consumers (js_consumer.c): config parse/validate/defaults/echo,
 * create/info/delete/names/list, pull requests (MSG.NEXT), push delivery, acks, flow
 * control, heartbeats, redelivery, inactive cleanup, interest/workqueue retention and
 * durable state on disk. Every function here runs with js->mu held unless it says
 * otherwise. Locks and threads: see js.h. */
#ifndef EMBER_JS_CONSUMER_H
#define EMBER_JS_CONSUMER_H

#include "js.h"
#include "js_stream.h"

/* $JS.API.CONSUMER.* (takes js->mu itself). toks as in js_api_stream. */
void js_api_consumer(js *j, const char **toks, const size_t *toklen, int ntoks,
                     const msgview *mv, js_outbox *ob);
/* $JS.ACK.> (takes js->mu itself): +ACK, -NAK, +WPI, +NXT, +TERM. */
void js_consumer_ack(js *j, const msgview *mv, js_outbox *ob);
/* $JS.FC.> flow-control replies (takes js->mu itself). */
void js_consumer_fc(js *j, const msgview *mv, js_outbox *ob);
/* Does stream/consumer exist? (takes js->mu itself). A MSG.NEXT for a consumer that does
 * not exist gets no answer at all (as nats-server, whose $JS.API.> import counts as
 * interest), so native callers that want "not found" ask first. */
bool js_consumer_exists(js *j, const char *stream, const char *consumer);

/* s has new messages: deliver to its consumers (push, and waiting pull requests). */
void js_consumers_deliver(jstream *s, js_outbox *ob);
/* Every consumer's timers (pull expiry, heartbeats, ack_wait redelivery, inactive
 * threshold). Returns the next monotonic ns something is due, 0 for none. */
int64_t js_consumers_tick(js *j, int64_t now_mono_ns, js_outbox *ob);
/* The stream was purged / had messages removed: consumers move past what is gone. */
void js_consumers_stream_purged(jstream *s, js_outbox *ob);
/* The stream is being deleted: delete every consumer (waiting pulls get 409 Consumer
 * Deleted), remove their files. */
void js_consumers_stream_deleting(jstream *s, js_outbox *ob);
/* Recover the durable consumers of a file stream from <s->dir>/obs. 0 or -1 + err. */
int js_consumers_recover(jstream *s, char *err, size_t errcap);
/* Persist state and free every consumer of s (shutdown). */
void js_consumers_close(jstream *s);
/* Interest retention: would any consumer of s deliver a message on subj? */
bool js_consumers_interested(jstream *s, const char *subj, size_t subj_len);

#endif
