/* libFuzzer target: the protocol translators (worker/proto.h). The first byte chooses the client
 * surface (chat, responses, messages), the upstream surface (chat, messages, gemini) and the
 * operation: request, non-streaming response, error body, or a stream (the rest is split into
 * SSE events by worker/sse.c, fed one by one, then the stream is ended). */
#include "worker/proto.h"
#include "worker/sse.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const tg_surface_t froms[] = {TG_SURFACE_CHAT, TG_SURFACE_RESPONSES, TG_SURFACE_MESSAGES};
static const tg_surface_t tos[] = {TG_SURFACE_CHAT, TG_SURFACE_MESSAGES, TG_SURFACE_GEMINI};

static void emit(void *ud, const char *ev, size_t len)
{
    size_t *total = ud;
    /* events come framed: they end with a line break (LF, or CR for a CR-framed passthrough) */
    if (len < 2 || (ev[len - 1] != '\n' && ev[len - 1] != '\r')) {
        fprintf(stderr, "unframed event of %zu bytes: %.*s\n", len, (int)(len > 200 ? 200 : len), ev);
        abort();
    }
    *total += len;
}

typedef struct {
    tg_proto_stream_t *s;
    size_t total;
} feed_t;

static int on_event(void *ud, const char *ev, size_t len)
{
    feed_t *f = ud;
    char *copy = malloc(len ? len : 1);
    memcpy(copy, ev, len);
    int rc = tg_proto_stream_event(f->s, copy, len, emit, &f->total);
    free(copy);
    return rc == 0 ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned b = data[0];
    tg_surface_t from = froms[b % 3], to = tos[(b / 3) % 3];
    unsigned op = (b / 9) % 4;
    int flag = (b / 36) & 1;
    const char *model = (b & 0x80) ? NULL : "fuzz-model";
    size_t n = size - 1;
    char *body = malloc(n ? n : 1);
    memcpy(body, data + 1, n);
    char *err = NULL, *out = NULL;
    size_t out_len = 0;

    switch (op) {
    case 0: {
        tg_proto_request_t req;
        memset(&req, 0, sizeof req);
        if (tg_proto_request(from, to, body, n, model ? model : "m", flag, &req, &err) == 0) {
            if (memchr(req.path, 0, sizeof req.path) == NULL)
                abort();
            free(req.body);
        }
        break;
    }
    case 1: {
        tg_proto_usage_t u;
        if (tg_proto_response(from, to, body, n, model, &out, &out_len, &u, &err) == 0)
            free(out);
        break;
    }
    case 2:
        if (tg_proto_error(from, to, flag ? 429 : 500, body, n, &out, &out_len) == 0)
            free(out);
        break;
    case 3: {
        feed_t f = {0};
        tg_sse_t sse;
        tg_proto_usage_t u;
        f.s = tg_proto_stream_new(from, to, model, flag);
        if (f.s == NULL)
            break;
        tg_sse_init(&sse);
        tg_sse_feed(&sse, body, n, 1 << 20, on_event, &f);
        tg_sse_dispose(&sse);
        tg_proto_stream_end(f.s, emit, &f.total);
        tg_proto_stream_end(f.s, emit, &f.total); /* idempotent */
        tg_proto_stream_usage(f.s, &u);
        (void)tg_proto_stream_text_chars(f.s);
        tg_proto_stream_free(f.s);
        break;
    }
    }
    free(err);
    free(body);
    return 0;
}
