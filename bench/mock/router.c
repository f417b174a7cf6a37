/* router.c - the dispatch table from method + path (exact, or a pattern with one `*`) to handler, and plain
 * (unaccounted) responses. */
#include <string.h>

#include "mock.h"

#define MOCK_PREFIX "/_mock/"
#define GEMINI_PREFIX "/v1beta/"

/* A route path matches the normalized request path (no query) exactly, except that each `*` in it matches one or more
 * bytes other than '/' (at most one `*` per path segment). Routes are tried in order. */
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
    {"POST", "/v1/files", files_create},
    {"GET", "/v1/files", files_list},
    {"GET", "/v1/files/*", files_retrieve},
    {"DELETE", "/v1/files/*", files_delete},
    {"GET", "/v1/files/*/content", files_content},
    {"POST", "/v1/threads", threads_create},
    {"GET", "/v1/threads/*", threads_retrieve},
    {"DELETE", "/v1/threads/*", threads_delete},
    {"POST", "/v1/threads/*/messages", messages_create},
    {"GET", "/v1/threads/*/messages", messages_list},
    {"POST", "/v1/threads/runs", threads_create_and_run},
    {"POST", "/v1/threads/*/runs", runs_create},
    {"GET", "/v1/threads/*/runs", runs_list},
    {"GET", "/v1/threads/*/runs/*", runs_retrieve},
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

/* one segment (no '/') against a pattern segment with at most one `*` */
static int segment_matches(const char *s, size_t n, const char *pat, size_t pn)
{
    const char *star = memchr(pat, '*', pn);
    size_t head, tail;

    if (star == NULL)
        return h2o_memis(s, n, pat, pn);
    head = (size_t)(star - pat);
    tail = pn - head - 1;
    return n > head + tail && memcmp(s, pat, head) == 0 && memcmp(s + n - tail, star + 1, tail) == 0;
}

static int path_matches(h2o_iovec_t path, const char *pattern)
{
    const char *p = path.base, *pend = path.base + path.len, *q = pattern, *qend = pattern + strlen(pattern);

    for (;;) {
        const char *ps = memchr(p, '/', (size_t)(pend - p)), *qs = memchr(q, '/', (size_t)(qend - q));
        const char *pe = ps != NULL ? ps : pend, *qe = qs != NULL ? qs : qend;
        if (!segment_matches(p, (size_t)(pe - p), q, (size_t)(qe - q)))
            return 0;
        if (ps == NULL || qs == NULL)
            return ps == NULL && qs == NULL;
        p = ps + 1;
        q = qs + 1;
    }
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
