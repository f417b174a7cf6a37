/* Server-sent events: splits an upstream byte stream into whole events, however the bytes were
 * chunked, so the relay can inspect each event (usage capture) and forward it unchanged. */
#ifndef TG_SSE_H
#define TG_SSE_H

#include <h2o.h>
#include <stddef.h>

typedef struct tg_sse {
    h2o_buffer_t *partial; /* bytes of the event still incomplete */
} tg_sse_t;

/** Called once per complete event; EV spans the whole event including its terminating blank line.
 * Return 0 to go on, -1 to stop feeding. */
typedef int (*tg_sse_event_cb)(void *ud, const char *ev, size_t len);

void tg_sse_init(tg_sse_t *s);
void tg_sse_dispose(tg_sse_t *s);
/** Feeds N bytes; calls CB for each event completed. Returns 0, or -1 if CB stopped or an event
 * grew beyond MAX bytes. */
int tg_sse_feed(tg_sse_t *s, const char *p, size_t n, size_t max, tg_sse_event_cb cb, void *ud);
/** Bytes held in an incomplete event (a stream that ends with some is truncated). */
size_t tg_sse_pending(const tg_sse_t *s);
/** Finds the payload of the event's `data:` field (first line only); 0 and sets *p and *n, or -1. */
int tg_sse_data(const char *ev, size_t len, const char **p, size_t *n);

#endif
