/* The endpoint table (exact paths, and stateful prefixes) and multipart model extraction. */
#include "worker/endpoint.h"

#include <string.h>

#include "master/config.h"

#define P(x) (1u << (x))
#define OPENAI_LIKE (P(TG_PROTO_OPENAI) | P(TG_PROTO_ROUTER))

static const tg_endpoint_t g_endpoints[] = {
    {"/v1/chat/completions", TG_API_CHAT, "/v1/chat/completions", OPENAI_LIKE, 0, 0},
    {"/chat/completions", TG_API_CHAT, "/v1/chat/completions", OPENAI_LIKE, 0, 0},
    {"/v2/chat/completions", TG_API_CHAT, "/v1/chat/completions", OPENAI_LIKE, 0, 0},
    {"/v1/responses", TG_API_RESPONSES, "/v1/responses", OPENAI_LIKE, 0, 0},
    {"/responses", TG_API_RESPONSES, "/v1/responses", OPENAI_LIKE, 0, 0},
    {"/v1/messages", TG_API_MESSAGES, "/v1/messages", P(TG_PROTO_ANTHROPIC) | P(TG_PROTO_ROUTER), 0, 0},
    {"/messages", TG_API_MESSAGES, "/v1/messages", P(TG_PROTO_ANTHROPIC) | P(TG_PROTO_ROUTER), 0, 0},
    {"/v1/embeddings", TG_API_OPENAI, "/v1/embeddings", OPENAI_LIKE, 0, 0},
    {"/embeddings", TG_API_OPENAI, "/v1/embeddings", OPENAI_LIKE, 0, 0},
    {"/v1/moderations", TG_API_OPENAI, "/v1/moderations", OPENAI_LIKE, 0, 1},
    {"/v1/images/generations", TG_API_OPENAI, "/v1/images/generations", OPENAI_LIKE, 0, 1},
    {"/v1/images/edits", TG_API_OPENAI, "/v1/images/edits", OPENAI_LIKE, 1, 1},
    {"/v1/images/variations", TG_API_OPENAI, "/v1/images/variations", OPENAI_LIKE, 1, 1},
    {"/v1/audio/speech", TG_API_OPENAI, "/v1/audio/speech", OPENAI_LIKE, 0, 0},
    {"/v1/audio/transcriptions", TG_API_OPENAI, "/v1/audio/transcriptions", OPENAI_LIKE, 1, 0},
    {"/v1/audio/translations", TG_API_OPENAI, "/v1/audio/translations", OPENAI_LIKE, 1, 0},
    {"/v1/files", TG_API_STATEFUL, NULL, OPENAI_LIKE, 0, 1, 1},
    {"/v1/threads", TG_API_STATEFUL, NULL, OPENAI_LIKE, 0, 1, 1, 1},
};

const tg_endpoint_t *tg_endpoint_find(h2o_iovec_t path)
{
    const char *q = memchr(path.base, '?', path.len);
    size_t len = q ? (size_t)(q - path.base) : path.len;
    while (len > 1 && path.base[len - 1] == '/')
        len--;
    for (size_t i = 0; i < sizeof(g_endpoints) / sizeof(g_endpoints[0]); i++) {
        const tg_endpoint_t *ep = &g_endpoints[i];
        size_t n = strlen(ep->path);
        if (h2o_memis(path.base, len, ep->path, n) ||
            (ep->stateful && len > n + 1 && memcmp(path.base, ep->path, n) == 0 && path.base[n] == '/'))
            return ep;
    }
    return NULL;
}

int tg_multipart_model(h2o_iovec_t body, h2o_iovec_t ct, h2o_iovec_t *model)
{
    const char *b = memmem(ct.base, ct.len, "boundary=", 9);
    if (!b)
        return -1;
    b += 9;
    size_t blen = (size_t)(ct.base + ct.len - b);
    if (blen && *b == '"') {
        b++;
        const char *end = memchr(b, '"', (size_t)(ct.base + ct.len - b));
        if (!end)
            return -1;
        blen = (size_t)(end - b);
    } else {
        const char *semi = memchr(b, ';', blen);
        if (semi)
            blen = (size_t)(semi - b);
    }
    static const char field[] = "name=\"model\"";
    const char *f = memmem(body.base, body.len, field, sizeof(field) - 1);
    if (!f)
        return -1;
    const char *end = body.base + body.len;
    const char *v = memmem(f, (size_t)(end - f), "\r\n\r\n", 4);
    if (!v)
        return -1;
    v += 4;
    /* the value ends at CRLF "--" boundary */
    for (const char *p = v; p + 4 + blen <= end; p++)
        if (p[0] == '\r' && p[1] == '\n' && p[2] == '-' && p[3] == '-' && memcmp(p + 4, b, blen) == 0) {
            *model = h2o_iovec_init(v, (size_t)(p - v));
            return model->len ? 0 : -1;
        }
    return -1;
}
