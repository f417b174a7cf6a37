/* exchange.c - the life of one upstream request: per-request knobs, API key (headers or ?key=), fault choice, latency,
 * sending the body or the stream events one h2o_send at a time, cutting a response short (reset/stall), and accounting
 * its outcome. */
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#include "mock.h"

const mock_knob_def_t mock_knob_defs[MOCK_NUM_KNOBS] = {
    {"latency-ms", "x-mock-latency-ms", offsetof(mock_knobs_t, latency_ms), 3600 * 1000},
    {"chunks", "x-mock-chunks", offsetof(mock_knobs_t, chunks), 1000000},
    {"chunk-delay-ms", "x-mock-chunk-delay-ms", offsetof(mock_knobs_t, chunk_delay_ms), 3600 * 1000},
    {"body-bytes", "x-mock-body-bytes", offsetof(mock_knobs_t, body_bytes), 256 << 20},
};

int knob_parse(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (len == 0 || len > 19)
        return -1;
    for (size_t i = 0; i != len; ++i) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

uint64_t *knob_field(mock_knobs_t *knobs, const mock_knob_def_t *def)
{
    return (uint64_t *)((char *)knobs + def->offset);
}

static h2o_iovec_t find_header(h2o_req_t *req, const char *name, size_t len)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, len, -1);
    return i == -1 ? h2o_iovec_init(NULL, 0) : req->headers.entries[i].value;
}

h2o_iovec_t query_param(h2o_req_t *req, const char *name, size_t len)
{
    const char *p, *end = req->path.base + req->path.len;

    if (req->query_at == SIZE_MAX)
        return h2o_iovec_init(NULL, 0);
    for (p = req->path.base + req->query_at + 1; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *stop = amp != NULL ? amp : end;
        size_t n = (size_t)(stop - p);
        if (n >= len && memcmp(p, name, len) == 0 && (n == len || p[len] == '='))
            return n == len ? h2o_iovec_init(stop, 0) : h2o_iovec_init(p + len + 1, n - len - 1);
        p = stop + 1;
    }
    return h2o_iovec_init(NULL, 0);
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
}

/* %XX sequences decoded into pool memory (a malformed one is kept as is) */
static h2o_iovec_t percent_decode(h2o_mem_pool_t *pool, h2o_iovec_t v)
{
    char *out, *d;

    if (v.len == 0 || memchr(v.base, '%', v.len) == NULL)
        return v;
    d = out = h2o_mem_alloc_pool(pool, v.len);
    for (size_t i = 0; i < v.len; ++i) {
        int hi, lo;
        if (v.base[i] == '%' && i + 2 < v.len && (hi = hex_digit(v.base[i + 1])) >= 0 &&
            (lo = hex_digit(v.base[i + 2])) >= 0) {
            *d++ = (char)(hi << 4 | lo);
            i += 2;
        } else {
            *d++ = v.base[i];
        }
    }
    return h2o_iovec_init(out, (size_t)(d - out));
}

/* the upstream API key: the Authorization bearer token, else x-api-key, else x-goog-api-key, else ?key= */
static h2o_iovec_t api_key(h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    h2o_iovec_t v;

    if (i != -1) {
        v = req->headers.entries[i].value;
        if (v.len > 7 && h2o_lcstris(v.base, 7, H2O_STRLIT("bearer "))) {
            h2o_iovec_t token = h2o_str_stripws(v.base + 7, v.len - 7);
            if (token.len != 0)
                return token;
        }
    }
    if ((v = find_header(req, H2O_STRLIT("x-api-key"))).len != 0 ||
        (v = find_header(req, H2O_STRLIT("x-goog-api-key"))).len != 0)
        return v;
    return percent_decode(&req->pool, query_param(req, H2O_STRLIT("key")));
}

/* returns an error message for a bad x-mock-* knob header, or NULL */
static const char *read_knobs(mock_exchange_t *ex)
{
    for (size_t i = 0; i != MOCK_NUM_KNOBS; ++i) {
        const mock_knob_def_t *def = &mock_knob_defs[i];
        h2o_iovec_t v = find_header(ex->req, def->header, strlen(def->header));
        if (v.base != NULL && knob_parse(v.base, v.len, def->max, knob_field(&ex->knobs, def)) != 0)
            return "invalid x-mock-* header value (expected a non-negative integer within limits)";
    }
    return NULL;
}

/* ---- sending -------------------------------------------------------------------------------------------------------- */

static h2o_iovec_t render_piece(mock_exchange_t *ex, size_t index)
{
    size_t half = ex->body.len / 2;

    if (ex->body.base == NULL)
        return ex->surface->render_event(ex, index);
    if (ex->nevents == 1)
        return ex->body;
    return index == 0 ? h2o_iovec_init(ex->body.base, half) : h2o_iovec_init(ex->body.base + half, ex->body.len - half);
}

static void start_response_once(mock_exchange_t *ex)
{
    if (!ex->started) {
        ex->started = 1;
        h2o_start_response(ex->req, &ex->generator);
    }
}

/* Ends the response abruptly. HTTP/1: the connection is shut down (and closed with RST) before anything more is written.
 * HTTP/2: the stream is reset (RST_STREAM), the connection survives. */
static void drop(mock_exchange_t *ex)
{
    h2o_req_t *req = ex->req;
    h2o_iovec_t none = {NULL, 0};

    if (req->version < 0x200 && req->conn->callbacks->get_socket != NULL) {
        h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
        if (sock != NULL) {
            int fd = h2o_socket_get_fd(sock);
            struct linger linger = {1, 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger));
            shutdown(fd, SHUT_RDWR);
        }
    }
    hold_release(&ex->hold);
    start_response_once(ex);
    h2o_send(req, &none, 0, H2O_SEND_STATE_ERROR);
}

static void send_next(mock_exchange_t *ex)
{
    h2o_iovec_t piece;
    int last;

    if (ex->cut != CUT_NONE && ex->next == ex->cut_at) {
        if (ex->cut == CUT_STALL)
            hold_forever(&ex->hold);
        else
            drop(ex);
        return;
    }
    start_response_once(ex);
    piece = render_piece(ex, ex->next++);
    last = ex->next == ex->nevents;
    if (last && ex->outcome == OUTCOME_PENDING) {
        ex->outcome = OUTCOME_SERVED;
        stats_finish(&ex->acct, OUTCOME_SERVED, ex->llm.prompt_tokens, ex->llm.completion_tokens);
    }
    h2o_send(ex->req, &piece, 1, last ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void on_wake(mock_hold_t *hold)
{
    send_next(H2O_STRUCT_FROM_MEMBER(mock_exchange_t, hold, hold));
}

static void on_gone(mock_hold_t *hold)
{
    drop(H2O_STRUCT_FROM_MEMBER(mock_exchange_t, hold, hold));
}

static void on_proceed(h2o_generator_t *generator, h2o_req_t *req)
{
    mock_exchange_t *ex = H2O_STRUCT_FROM_MEMBER(mock_exchange_t, generator, generator);

    if (ex->knobs.chunk_delay_ms != 0)
        hold_for(&ex->hold, ex->knobs.chunk_delay_ms);
    else
        send_next(ex);
}

/* the client went away after the response started */
static void on_stop(h2o_generator_t *generator, h2o_req_t *req)
{
    hold_release(&H2O_STRUCT_FROM_MEMBER(mock_exchange_t, generator, generator)->hold);
}

/* runs when the request is freed, however it ended */
static void on_dispose(void *p)
{
    mock_exchange_t *ex = p;

    hold_release(&ex->hold);
    if (ex->outcome == OUTCOME_PENDING) {
        ex->outcome = OUTCOME_ABORTED;
        stats_finish(&ex->acct, OUTCOME_ABORTED, 0, 0);
    }
    if (ex->outcome != OUTCOME_SERVED && ex->tokens_sent != 0)
        stats_partial(&ex->acct, ex->tokens_sent);
    reqlog_add(ex);
}

/* sets the status line and starts sending after the latency */
static void begin(mock_exchange_t *ex, int status, const char *content_type)
{
    h2o_req_t *req = ex->req;

    req->res.status = status;
    req->res.reason = status_reason(status);
    if (content_type != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    if (ex->body.base != NULL) {
        req->res.content_length = ex->body.len;
        ex->nevents = ex->cut == CUT_NONE ? 1 : 2;
        ex->cut_at = 1;
    }
    if (ex->knobs.latency_ms != 0)
        hold_for(&ex->hold, ex->knobs.latency_ms);
    else
        send_next(ex);
}

/* ---- API ------------------------------------------------------------------------------------------------------------ */

mock_exchange_t *exchange_new(h2o_req_t *req, const mock_surface_t *surface)
{
    mock_exchange_t *ex = h2o_mem_alloc_shared(&req->pool, sizeof(*ex), on_dispose);
    const char *error;

    memset(ex, 0, offsetof(mock_exchange_t, scratch));
    ex->req = req;
    ex->surface = surface;
    ex->knobs = mock_defaults;
    ex->llm.max_tokens = -1;
    ex->generator = (h2o_generator_t){on_proceed, on_stop};
    hold_prepare(&ex->hold, req, on_wake, on_gone);
    ex->key = api_key(req);
    h2o_iovec_t rid = find_header(req, H2O_STRLIT("x-request-id"));
    size_t rid_len = rid.len < sizeof(ex->request_id) ? rid.len : sizeof(ex->request_id) - 1;
    memcpy(ex->request_id, rid.base ? rid.base : "", rid_len);
    ex->request_id[rid_len] = '\0';
    stats_begin(&ex->acct, ex->key);
    if ((error = read_knobs(ex)) != NULL) {
        exchange_reject(ex, 400, NULL, error);
        return NULL;
    }
    return ex;
}

static void answer_error(mock_exchange_t *ex, mock_outcome_t outcome, int status, const char *code, const char *message)
{
    ex->outcome = outcome;
    stats_finish(&ex->acct, outcome, 0, 0);
    ex->cut = CUT_NONE;
    ex->body = ex->surface->render_error(&ex->req->pool, status, code, message);
    if (status == 429)
        h2o_add_header(&ex->req->pool, &ex->req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
    begin(ex, status, "application/json");
}

void exchange_reject(mock_exchange_t *ex, int status, const char *code, const char *message)
{
    answer_error(ex, OUTCOME_REJECTED, status, code, message);
}

int exchange_apply_fault(mock_exchange_t *ex)
{
    h2o_iovec_t header = find_header(ex->req, H2O_STRLIT("x-mock-fault"));
    mock_fault_t fault;
    const char *code, *message;
    int status;

    if (header.base == NULL) {
        fault = faults_take(ex->key);
    } else if (fault_parse(header.base, header.len, &fault) != 0) {
        exchange_reject(ex, 400, NULL, "unknown x-mock-fault (429, 500, 503, 401, reset, stall, midstream-reset, "
                                       "midstream-stall, none)");
        return 1;
    }
    if (fault == FAULT_NONE)
        return 0;

    if ((status = fault_error(fault, &code, &message)) != 0) {
        answer_error(ex, OUTCOME_FAULT, status, code, message);
        return 1;
    }
    ex->outcome = OUTCOME_FAULT;
    stats_finish(&ex->acct, OUTCOME_FAULT, 0, 0);
    ex->cut = fault_cut(fault);
    if (fault_is_midstream(fault))
        return 0; /* cut in the middle of the response exchange_serve sends */
    ex->cut_at = 0;
    begin(ex, 502, NULL); /* the status is never sent */
    return 1;
}

char *exchange_event_buffer(mock_exchange_t *ex, size_t size)
{
    if (size <= sizeof(ex->scratch))
        return ex->scratch;
    if (size > ex->event_cap) {
        ex->event_buf = h2o_mem_alloc_pool(&ex->req->pool, size);
        ex->event_cap = size;
    }
    return ex->event_buf;
}

void exchange_serve(mock_exchange_t *ex, const char *content_type)
{
    if (ex->body.base == NULL)
        h2o_add_header(&ex->req->pool, &ex->req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache"));
    begin(ex, 200, content_type);
}
