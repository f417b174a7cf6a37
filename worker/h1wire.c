/* HTTP/1.1 request head and response framing for the lean upstream client (see h1wire.h). The
 * response head is parsed by picohttpparser (bundled in libh2o); the body is framed by
 * Content-Length, chunked transfer coding (phr_decode_chunked) or the connection's end. */
#include "worker/h1wire.h"

#include <string.h>
#include <strings.h>

void tg_h1_response_init(tg_h1_response_t *r, int head_request)
{
    memset(r, 0, sizeof(*r));
    r->head_request = head_request ? 1 : 0;
    r->chunked.consume_trailer = 1; /* the connection is reused: the trailer must be read to its end */
}

static int is_name(const tg_xfer_header_t *h, const char *name, size_t len)
{
    return h->name.len == len && memcmp(h->name.base, name, len) == 0;
}

/* Whether the comma-separated list V holds TOKEN (case-insensitive). */
static int has_token(h2o_iovec_t v, const char *token, size_t len)
{
    const char *p = v.base, *end = v.base + v.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *s = p;
        while (p < end && *p != ',')
            p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - s) == len && strncasecmp(s, token, len) == 0)
            return 1;
    }
    return 0;
}

/* Whether the last coding of a Transfer-Encoding list is chunked. */
static int last_is_chunked(h2o_iovec_t v)
{
    const char *e = v.base + v.len;
    while (e > v.base && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    const char *s = e;
    while (s > v.base && s[-1] != ',' && s[-1] != ' ' && s[-1] != '\t')
        s--;
    return e - s == 7 && strncasecmp(s, "chunked", 7) == 0;
}

/* Parses a Content-Length value; -1 unless it is all digits and fits. */
static int parse_length(h2o_iovec_t v, uint64_t *out)
{
    uint64_t n = 0;
    if (v.len == 0 || v.len > 19)
        return -1;
    for (size_t i = 0; i < v.len; i++) {
        if (v.base[i] < '0' || v.base[i] > '9')
            return -1;
        n = n * 10 + (uint64_t)(v.base[i] - '0');
    }
    *out = n;
    return 0;
}

/* Decides the body's framing and the connection's reuse from the final head. */
static int frame_from_head(tg_h1_response_t *r, int minor, const tg_xfer_header_t *h, size_t n, const char **why)
{
    int te = 0, chunked = 0, has_length = 0, conn_close = 0, conn_keep = 0;
    uint64_t length = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_name(&h[i], "content-length", 14)) {
            uint64_t v;
            if (parse_length(h[i].value, &v) != 0 || (has_length && v != length)) {
                *why = "the upstream sent an invalid Content-Length";
                return -1;
            }
            has_length = 1;
            length = v;
        } else if (is_name(&h[i], "transfer-encoding", 17)) {
            te = 1;
            chunked = last_is_chunked(h[i].value); /* the last field decides */
        } else if (is_name(&h[i], "connection", 10)) {
            conn_close |= has_token(h[i].value, "close", 5);
            conn_keep |= has_token(h[i].value, "keep-alive", 10);
        }
    }
    r->keep_alive = minor >= 1 ? !conn_close : (conn_keep && !conn_close);
    if (r->head_request || r->status == 204 || r->status == 304) {
        r->state = TG_H1_DONE;
    } else if (te) {
        r->state = chunked ? TG_H1_BODY_CHUNKED : TG_H1_BODY_EOF;
    } else if (has_length) {
        r->remaining = length;
        r->state = length ? TG_H1_BODY_LENGTH : TG_H1_DONE;
    } else {
        r->state = TG_H1_BODY_EOF;
    }
    if (r->state == TG_H1_BODY_EOF)
        r->keep_alive = 0;
    return 0;
}

int tg_h1_parse_head(tg_h1_response_t *r, char *buf, size_t len, tg_xfer_header_t *headers, size_t *n_headers,
                     const char **why)
{
    struct phr_header ph[TG_H1_MAX_HEADERS];
    size_t nph = TG_H1_MAX_HEADERS, msg_len;
    int minor, status;
    const char *msg;
    *n_headers = 0;
    int rc = phr_parse_response(buf, len, &minor, &status, &msg, &msg_len, ph, &nph, 0);
    if (rc == -2) {
        if (len < TG_H1_MAX_HEAD)
            return 0;
        *why = "the upstream's response head is too large";
        return -1;
    }
    if (rc < 0) {
        *why = "the upstream sent a malformed response head";
        return -1;
    }
    if (status < 100 || status > 999) {
        *why = "the upstream sent an invalid status code";
        return -1;
    }
    r->status = status;
    if (status == 101) {
        *why = "the upstream switched protocols unasked";
        return -1;
    }
    if (status < 200)
        return rc; /* interim: its headers are not reported */
    size_t n = 0;
    for (size_t i = 0; i < nph; i++) {
        if (ph[i].name == NULL)
            continue; /* obsolete line folding: the continuation is dropped */
        char *name = buf + (ph[i].name - buf);
        for (size_t k = 0; k < ph[i].name_len; k++)
            if (name[k] >= 'A' && name[k] <= 'Z')
                name[k] = (char)(name[k] + 32);
        headers[n].name = h2o_iovec_init(name, ph[i].name_len);
        headers[n].value = h2o_iovec_init(ph[i].value, ph[i].value_len);
        n++;
    }
    *n_headers = n;
    if (frame_from_head(r, minor, headers, n, why) != 0)
        return -1;
    return rc;
}

int tg_h1_frame_body(tg_h1_response_t *r, char *buf, size_t *len, size_t *body)
{
    switch (r->state) {
    case TG_H1_BODY_LENGTH: {
        size_t take = *len < r->remaining ? *len : (size_t)r->remaining;
        r->remaining -= take;
        *body = take;
        if (r->remaining)
            return 0;
        r->state = TG_H1_DONE;
        return 1;
    }
    case TG_H1_BODY_EOF:
        *body = *len;
        return 0;
    case TG_H1_BODY_CHUNKED: {
        size_t n = *len;
        ssize_t rc = phr_decode_chunked(&r->chunked, buf, &n);
        if (rc == -1)
            return -1;
        *body = n;
        if (rc == -2) {
            *len = n;
            return 0;
        }
        *len = n + (size_t)rc;
        r->state = TG_H1_DONE;
        return 1;
    }
    case TG_H1_DONE:
        *body = 0;
        return 1;
    default: /* TG_H1_HEAD: no body yet */
        *body = 0;
        return 0;
    }
}

int tg_h1_at_eof(tg_h1_response_t *r)
{
    if (r->state == TG_H1_BODY_EOF) {
        r->state = TG_H1_DONE;
        return 0;
    }
    return r->state == TG_H1_DONE ? 0 : -1;
}

typedef struct {
    char *p;
    size_t cap, len;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (o->len < o->cap)
        memcpy(o->p + o->len, s, o->len + n <= o->cap ? n : o->cap - o->len);
    o->len += n;
}

size_t tg_h1_request_head(char *dst, size_t cap, const char *method, const char *path, size_t path_len, const char *host,
                          size_t host_len, const char *const *headers, size_t n_headers, int with_length,
                          size_t body_len)
{
    out_t o = {dst, cap, 0};
    put(&o, method, strlen(method));
    put(&o, " ", 1);
    if (path_len)
        put(&o, path, path_len);
    else
        put(&o, "/", 1);
    put(&o, " HTTP/1.1\r\nHost: ", 17);
    put(&o, host, host_len);
    put(&o, "\r\n", 2);
    for (size_t i = 0; i < n_headers; i++) {
        put(&o, headers[i], strlen(headers[i]));
        put(&o, "\r\n", 2);
    }
    if (with_length) {
        char num[24];
        size_t k = sizeof(num);
        do {
            num[--k] = (char)('0' + body_len % 10);
            body_len /= 10;
        } while (body_len);
        put(&o, "Content-Length: ", 16);
        put(&o, num + k, sizeof(num) - k);
        put(&o, "\r\n", 2);
    }
    put(&o, "\r\n", 2);
    return o.len;
}
