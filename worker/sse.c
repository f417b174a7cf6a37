/* SSE event splitting without copying in the common case (events that arrive whole). */
#include "worker/sse.h"

#include <string.h>

void tg_sse_init(tg_sse_t *s)
{
    h2o_buffer_init(&s->partial, &h2o_socket_buffer_prototype);
}

void tg_sse_dispose(tg_sse_t *s)
{
    h2o_buffer_dispose(&s->partial);
}

size_t tg_sse_pending(const tg_sse_t *s)
{
    return s->partial->size;
}

/* Offset just past the first event boundary (blank line) in [p, p+n) at or after FROM, or 0. */
static size_t boundary(const char *p, size_t n, size_t from)
{
    for (size_t i = from > 3 ? from - 3 : 0; i + 1 < n; i++) {
        if (p[i] != '\n' && p[i] != '\r')
            continue;
        if (p[i] == '\n' && p[i + 1] == '\n')
            return i + 2;
        if (p[i] == '\r' && p[i + 1] == '\r')
            return i + 2;
        if (p[i] == '\r' && p[i + 1] == '\n' && i + 3 < n && p[i + 2] == '\r' && p[i + 3] == '\n')
            return i + 4;
        if (p[i] == '\n' && p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

static int emit_all(const char *p, size_t n, size_t max, size_t *used, tg_sse_event_cb cb, void *ud)
{
    size_t off = 0, end;
    while (off < n && (end = boundary(p + off, n - off, 0)) != 0) {
        if (end > max || cb(ud, p + off, end) != 0)
            return -1;
        off += end;
    }
    *used = off;
    return 0;
}

int tg_sse_feed(tg_sse_t *s, const char *p, size_t n, size_t max, tg_sse_event_cb cb, void *ud)
{
    if (s->partial->size == 0) {
        size_t used;
        if (emit_all(p, n, max, &used, cb, ud) != 0)
            return -1;
        p += used;
        n -= used;
    } else {
        size_t before = s->partial->size;
        h2o_iovec_t dst = h2o_buffer_reserve(&s->partial, n);
        memcpy(dst.base, p, n);
        s->partial->size += n;
        size_t end = boundary(s->partial->bytes, s->partial->size, before);
        if (end == 0)
            return s->partial->size > max ? -1 : 0;
        /* the held event is complete: emit it, then whatever else is whole */
        if (end > max || cb(ud, s->partial->bytes, end) != 0)
            return -1;
        size_t used;
        if (emit_all(s->partial->bytes + end, s->partial->size - end, max, &used, cb, ud) != 0)
            return -1;
        h2o_buffer_consume(&s->partial, end + used);
        return s->partial->size > max ? -1 : 0;
    }
    if (n) {
        if (n > max)
            return -1;
        h2o_iovec_t dst = h2o_buffer_reserve(&s->partial, n);
        memcpy(dst.base, p, n);
        s->partial->size += n;
    }
    return 0;
}

int tg_sse_data(const char *ev, size_t len, const char **p, size_t *n)
{
    const char *end = ev + len;
    for (const char *line = ev; line < end;) {
        const char *lend = line; /* lines end at LF, CR or CRLF */
        while (lend < end && *lend != '\n' && *lend != '\r')
            lend++;
        if (lend - line >= 5 && memcmp(line, "data:", 5) == 0) {
            const char *v = line + 5;
            if (v < lend && *v == ' ')
                v++;
            *p = v;
            *n = (size_t)(lend - v);
            return 0;
        }
        line = lend < end && *lend == '\r' && lend + 1 < end && lend[1] == '\n' ? lend + 2 : lend + 1;
    }
    return -1;
}
