/* libFuzzer target: the SSE splitter and data extraction (worker/sse.h).
 * Input: first byte = chunk size for feeding (1..256), rest = the upstream byte stream. Invariants:
 * every event handed to the callback lies inside what was fed, a data payload lies inside its
 * event, and the result does not depend on how the bytes were chunked. */
#include "worker/sse.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t events, bytes;
    unsigned long hash;
} acc_t;

static int on_event(void *ud, const char *ev, size_t len)
{
    acc_t *a = ud;
    const char *p;
    size_t n;
    char *copy = malloc(len ? len : 1); /* exact-size copy: ASan catches over-reads in tg_sse_data */
    memcpy(copy, ev, len);
    if (tg_sse_data(copy, len, &p, &n) == 0) {
        if (p < copy || p + n > copy + len)
            abort();
        for (size_t i = 0; i < n; i++)
            a->hash = a->hash * 31 + (unsigned char)p[i];
    }
    free(copy);
    a->events++;
    a->bytes += len;
    return 0;
}

static int run(const unsigned char *d, size_t n, size_t chunk, acc_t *a, size_t *pending)
{
    tg_sse_t s;
    int rc = 0;
    tg_sse_init(&s);
    for (size_t off = 0; off < n && rc == 0; off += chunk) {
        size_t k = n - off < chunk ? n - off : chunk;
        char *c = malloc(k);
        memcpy(c, d + off, k);
        rc = tg_sse_feed(&s, c, k, 4096, on_event, a);
        free(c);
    }
    *pending = tg_sse_pending(&s);
    tg_sse_dispose(&s);
    return rc;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    acc_t a = {0}, b = {0};
    size_t pa, pb;
    if (size < 1)
        return 0;
    size_t chunk = (size_t)data[0] + 1;
    int ra = run(data + 1, size - 1, chunk, &a, &pa);
    int rb = run(data + 1, size - 1, size, &b, &pb); /* all at once */
    if (ra == 0 && rb == 0 && (a.events != b.events || a.bytes != b.bytes || a.hash != b.hash || pa != pb))
        abort(); /* chunking changed the events */
    return 0;
}
