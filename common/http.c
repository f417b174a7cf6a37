/* Shared HTTP helpers: API key extraction and JSON responses. */
#include "common/http.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const h2o_header_t *find_header(h2o_req_t *req, const h2o_token_t *token)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    return i < 0 ? NULL : &req->headers.entries[i];
}

static void trim(const char **p, size_t *n)
{
    while (*n && (**p == ' ' || **p == '\t')) {
        (*p)++;
        (*n)--;
    }
    while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
        (*n)--;
}

int tg_http_api_key(h2o_req_t *req, const char **key, size_t *len)
{
    const h2o_header_t *h = find_header(req, H2O_TOKEN_AUTHORIZATION);
    if (h) {
        const char *p = h->value.base;
        size_t n = h->value.len;
        trim(&p, &n);
        if (n > 7 && strncasecmp(p, "bearer ", 7) == 0) {
            p += 7;
            n -= 7;
            trim(&p, &n);
        }
        if (n) {
            *key = p;
            *len = n;
            return 0;
        }
    }
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-api-key"), -1);
    if (i >= 0) {
        const char *p = req->headers.entries[i].value.base;
        size_t n = req->headers.entries[i].value.len;
        trim(&p, &n);
        if (n) {
            *key = p;
            *len = n;
            return 0;
        }
    }
    return -1;
}

size_t tg_json_escape(char *buf, size_t len, size_t cap, const char *s, size_t slen)
{
    for (size_t i = 0; i < slen && len + 7 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            buf[len++] = '\\';
            buf[len++] = (char)c;
        } else if (c < 0x20) {
            len += (size_t)snprintf(buf + len, cap - len, "\\u%04x", c);
        } else {
            buf[len++] = (char)c;
        }
    }
    return len;
}

const char *tg_http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
    }
}

void tg_http_json(h2o_req_t *req, int status, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = tg_http_reason(status);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_send_inline(req, body, len);
}

void tg_http_error(h2o_req_t *req, int status, const char *type, const char *code, const char *message)
{
    char msg[1024], body[2560];
    size_t m = tg_json_escape(msg, 0, sizeof(msg), message, strlen(message));
    msg[m] = '\0';
    int n;
    if (code)
        n = snprintf(body, sizeof(body), "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"code\":\"%s\"},\"message\":\"%s\"}",
                     msg, type, code, msg);
    else
        n = snprintf(body, sizeof(body), "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"code\":null},\"message\":\"%s\"}", msg,
                     type, msg);
    tg_http_json(req, status, body, (size_t)n);
}

char *tg_pool_fmt(h2o_mem_pool_t *pool, const char *fmt, ...)
{
    /* one formatting pass for the usual short result; a second only when it did not fit */
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    char *p = h2o_mem_alloc_pool(pool, (size_t)n + 1);
    if ((size_t)n < sizeof(buf)) {
        memcpy(p, buf, (size_t)n + 1);
        return p;
    }
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}
