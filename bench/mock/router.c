/* router.c - the dispatch table from method + path (exact, or a pattern with one `*`) to handler, and plain
 * (unaccounted) responses. */
#include <string.h>

#include "mock.h"

#define MOCK_PREFIX "/_mock/"
#define GEMINI_PREFIX "/v1beta/"

/* A route path matches the normalized request path (no query) exactly, except that a `*` in it matches one or more
 * bytes other than '/'. Routes are tried in order. */
static const struct route {
    const char *method, *path;
    void (*handle)(h2o_req_t *req);
} routes[] = {
    /* upstream surfaces (counted in /_mock/stats) */
    {"POST", "/v1/chat/completions", openai_chat},
    {"POST", "/chat/completions", openai_chat},
    {"GET", "/v1/models", openai_models},
    {"GET", "/models", openai_models},
    {"POST", "/v1/messages", anthropic_messages},
    {"POST", "/v1/responses", responses_create},
    {"POST", "/responses", responses_create},
    {"POST", "/v1beta/models/*:generateContent", gemini_generate},
    {"POST", "/v1beta/models/*:streamGenerateContent", gemini_generate},
    /* management */
    {"GET", "/_mock/stats", stats_handle_get},
    {"POST", "/_mock/reset", stats_handle_reset},
    {"GET", "/_mock/requests", reqlog_handle_get},
    {"GET", "/_mock/faults", faults_handle_get},
    {"POST", "/_mock/faults", faults_handle_post},
    {"DELETE", "/_mock/faults", faults_handle_delete},
};

const char *status_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

void respond(h2o_req_t *req, int status, const char *content_type, h2o_iovec_t body)
{
    req->res.status = status;
    req->res.reason = status_reason(status);
    req->res.content_length = body.len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    h2o_send_inline(req, body.base, body.len);
}

static int has_prefix(h2o_iovec_t path, const char *prefix)
{
    return path.len >= strlen(prefix) && memcmp(path.base, prefix, strlen(prefix)) == 0;
}

static int path_matches(h2o_iovec_t path, const char *pattern)
{
    const char *star = strchr(pattern, '*');
    size_t head, tail;

    if (star == NULL)
        return h2o_memis(path.base, path.len, pattern, strlen(pattern));
    head = (size_t)(star - pattern);
    tail = strlen(star + 1);
    return path.len > head + tail && memcmp(path.base, pattern, head) == 0 &&
           memcmp(path.base + path.len - tail, star + 1, tail) == 0 &&
           memchr(path.base + head, '/', path.len - head - tail) == NULL;
}

/* unknown path or method: management paths get a plain answer, upstream ones an accounted error (Gemini-style under
 * /v1beta/, else OpenAI-style) */
static void no_route(h2o_req_t *req, int status)
{
    const char *message = status == 404 ? "Unknown request URL (tollgate-mock)." : "Method not allowed (tollgate-mock).";
    h2o_iovec_t path = req->path_normalized;
    const mock_surface_t *surface = has_prefix(path, GEMINI_PREFIX) ? &gemini_surface : &openai_surface;
    mock_exchange_t *ex;

    if (has_prefix(path, MOCK_PREFIX))
        respond(req, status, "application/json", openai_surface.render_error(&req->pool, status, NULL, message));
    else if ((ex = exchange_new(req, surface)) != NULL)
        exchange_reject(ex, status, NULL, message);
}

int router_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    int path_known = 0;

    for (size_t i = 0; i != sizeof(routes) / sizeof(routes[0]); ++i) {
        const struct route *r = &routes[i];
        if (!path_matches(req->path_normalized, r->path))
            continue;
        path_known = 1;
        if (h2o_memis(req->method.base, req->method.len, r->method, strlen(r->method))) {
            r->handle(req);
            return 0;
        }
    }
    no_route(req, path_known ? 405 : 404);
    return 0;
}
