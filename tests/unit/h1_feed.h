/* The lean upstream client's read loop (worker/upstream_h1.c) over bytes in memory, for the unit
 * tests (test_h1wire.c) and the fuzz target (tests/fuzz/fuzz_h1wire.c) of worker/h1wire.c: the
 * bytes are delivered STEP at a time and appended to a buffer; each head is parsed and dropped, body
 * bytes are framed and taken from the front. Hooks see every head and every framed piece of body,
 * to record them and check their bounds. Static functions in a header: each binary includes it once. */
#ifndef TG_H1_FEED_H
#define TG_H1_FEED_H

#include <stdlib.h>
#include <string.h>

#include "worker/h1wire.h"

typedef struct tg_h1_feed_hooks {
    /* A head of HL bytes was parsed from BUF (HELD bytes held), NH headers in H; R's state is still
     * TG_H1_HEAD after an interim (1xx) head. */
    void (*head)(void *ctx, const tg_h1_response_t *r, const char *buf, size_t held, size_t hl, const tg_xfer_header_t *h,
                 size_t nh);
    /* BODY bytes of body at the front of BUF were framed; HELD bytes were held before framing, L after. */
    void (*body)(void *ctx, const char *buf, size_t held, size_t l, size_t body);
    void *ctx;
} tg_h1_feed_hooks_t;

typedef struct tg_h1_feed_result {
    int rc;          /* 1: the response ended, 0: more bytes were due, -1: refused */
    int keep_alive;  /* the response's, as parsed */
    size_t beyond;   /* rc 1: bytes held or not yet read after the end of the response */
    const char *why; /* rc -1 from the head parser: its reason */
} tg_h1_feed_result_t;

/* Feeds WIRE[0..LEN) STEP bytes at a time (HEAD_REQUEST: the answer to a HEAD) until the response
 * ends, is refused or the bytes run out. */
static inline void tg_h1_feed(const char *wire, size_t len, size_t step, int head_request, const tg_h1_feed_hooks_t *hooks,
                              tg_h1_feed_result_t *res)
{
    tg_h1_response_t r;
    tg_h1_response_init(&r, head_request);
    memset(res, 0, sizeof(*res));
    char *buf = malloc(len + 1);
    if (buf == NULL)
        abort();
    size_t held = 0, fed = 0;
    for (;;) {
        size_t n = len - fed < step ? len - fed : step;
        memcpy(buf + held, wire + fed, n);
        held += n;
        fed += n;
        for (;;) {
            if (r.state == TG_H1_HEAD) {
                tg_xfer_header_t h[TG_H1_MAX_HEADERS];
                size_t nh;
                int hl = tg_h1_parse_head(&r, buf, held, h, &nh, &res->why);
                if (hl < 0) {
                    res->rc = -1;
                    break;
                }
                if (hl == 0)
                    break;
                hooks->head(hooks->ctx, &r, buf, held, (size_t)hl, h, nh);
                memmove(buf, buf + hl, held - (size_t)hl);
                held -= (size_t)hl;
                continue;
            }
            size_t l = held, body;
            int rc = tg_h1_frame_body(&r, buf, &l, &body);
            if (rc < 0) {
                res->rc = -1;
                break;
            }
            hooks->body(hooks->ctx, buf, held, l, body);
            memmove(buf, buf + body, l - body);
            held = l - body;
            if (rc == 1) {
                res->rc = 1;
                res->beyond = held + (len - fed); /* what was held plus what never needed reading */
            }
            break;
        }
        if (res->rc != 0 || fed == len)
            break;
    }
    res->keep_alive = r.keep_alive;
    free(buf);
}

#endif
