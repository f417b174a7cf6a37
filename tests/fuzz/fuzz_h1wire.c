/* libFuzzer target: the lean upstream client's HTTP/1.1 response parsing (worker/h1wire.h).
 * Input: first byte = read size (1..128) in its low bits and a HEAD request in its top bit; the rest = the bytes
 * the upstream sent. The bytes are fed the way upstream_h1.c does (appended to a buffer, head
 * dropped once parsed, framed body taken from the front). Invariants: headers and body lie inside
 * the buffer, framing never grows the held bytes, and the outcome (status, body, end, bytes beyond
 * the response; the body only when the framing was sound) does not depend on how the bytes were
 * cut. */
#include "worker/h1wire.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
    int rc, status, keep_alive;
    size_t body, beyond;
    unsigned long hash;
} result_t;

static void run(const unsigned char *d, size_t n, size_t step, int head_request, result_t *res)
{
    tg_h1_response_t r;
    tg_h1_response_init(&r, head_request);
    memset(res, 0, sizeof(*res));
    char *buf = malloc(n ? n : 1);
    size_t held = 0, fed = 0;
    for (;;) {
        size_t k = n - fed < step ? n - fed : step;
        memcpy(buf + held, d + fed, k);
        held += k;
        fed += k;
        for (;;) {
            if (r.state == TG_H1_HEAD) {
                tg_xfer_header_t h[TG_H1_MAX_HEADERS];
                size_t nh;
                const char *why;
                int hl = tg_h1_parse_head(&r, buf, held, h, &nh, &why);
                if (hl < 0) {
                    res->rc = -1;
                    break;
                }
                if (hl == 0)
                    break;
                if ((size_t)hl > held)
                    abort();
                for (size_t i = 0; i < nh; i++)
                    if (h[i].name.base < buf || h[i].name.base + h[i].name.len > buf + hl ||
                        h[i].value.base < buf || h[i].value.base + h[i].value.len > buf + hl)
                        abort();
                if (r.state != TG_H1_HEAD)
                    res->status = r.status;
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
            if (l > held || body > l)
                abort();
            for (size_t i = 0; i < body; i++)
                res->hash = res->hash * 31 + (unsigned char)buf[i];
            res->body += body;
            memmove(buf, buf + body, l - body);
            held = l - body;
            if (rc == 1) {
                res->rc = 1;
                res->beyond = held + (n - fed); /* what was held plus what never needed reading */
            }
            break;
        }
        if (res->rc != 0 || fed == n)
            break;
    }
    res->keep_alive = r.keep_alive;
    free(buf);
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
