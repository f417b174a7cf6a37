/* libFuzzer target: the lean upstream client's HTTP/1.1 response parsing (worker/h1wire.h).
 * Input: first byte = read size (1..128) in its low bits and a HEAD request in its top bit; the
 * rest = the bytes the upstream sent. The bytes are fed the way upstream_h1.c does
 * (tests/unit/h1_feed.h: appended to a buffer, head dropped once parsed, framed body taken from
 * the front). Invariants: headers and body lie inside the buffer, framing never grows the held
 * bytes, and the outcome (status, body, end, bytes beyond the response; the body only when the
 * framing was sound) does not depend on how the bytes were cut. */
#include "../unit/h1_feed.h"
#include "worker/h1wire.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
    int rc, status, keep_alive;
    size_t body, beyond;
    unsigned long hash;
} result_t;

static void check_head(void *ctx, const tg_h1_response_t *r, const char *buf, size_t held, size_t hl,
                       const tg_xfer_header_t *h, size_t nh)
{
    result_t *res = ctx;
    if (hl > held)
        abort();
    for (size_t i = 0; i < nh; i++)
        if (h[i].name.base < buf || h[i].name.base + h[i].name.len > buf + hl || h[i].value.base < buf ||
            h[i].value.base + h[i].value.len > buf + hl)
            abort();
    if (r->state != TG_H1_HEAD)
        res->status = r->status;
}

static void check_body(void *ctx, const char *buf, size_t held, size_t l, size_t body)
{
    result_t *res = ctx;
    if (l > held || body > l)
        abort();
    for (size_t i = 0; i < body; i++)
        res->hash = res->hash * 31 + (unsigned char)buf[i];
    res->body += body;
}

static void run(const unsigned char *d, size_t n, size_t step, int head_request, result_t *res)
{
    memset(res, 0, sizeof(*res));
    tg_h1_feed_hooks_t hooks = {check_head, check_body, res};
    tg_h1_feed_result_t fr;
    tg_h1_feed((const char *)d, n, step, head_request, &hooks, &fr);
    res->rc = fr.rc;
    res->keep_alive = fr.keep_alive;
    res->beyond = fr.beyond;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)(data[0] & 0x7f) + 1;
    int head_request = data[0] >> 7;
    result_t a, b;
    run(data + 1, size - 1, step, head_request, &a);
    run(data + 1, size - 1, size, head_request, &b); /* all at once */
    if (a.rc != b.rc || a.status != b.status || a.keep_alive != b.keep_alive)
        abort(); /* the cut changed the outcome */
    if (a.rc != -1 && (a.body != b.body || a.hash != b.hash || a.beyond != b.beyond))
        abort(); /* ... or the body (on malformed framing, what came before the fault may differ) */
    return 0;
}
