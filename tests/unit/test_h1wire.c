/* tests/unit/test_h1wire.c: unit tests for worker/h1wire.c, the lean upstream client's HTTP/1.1
 * wire format: the request head it writes, and the response head and body framing it reads
 * however the bytes are cut (the client feeds whatever each socket read brought). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "h1_feed.h"
#include "worker/h1wire.h"

/* What a whole exchange produced. */
typedef struct outcome {
    int rc;           /* 1: the response ended, 0: more bytes were due, -1: refused */
    int status;
    int keep_alive;
    int interim;      /* 1xx heads skipped */
    char body[4096];
    size_t body_len;
    size_t beyond;    /* bytes held after the end of the response */
    char first_header[64]; /* "name=value" of the first header */
} outcome_t;

static void record_head(void *ctx, const tg_h1_response_t *r, const char *buf, size_t held, size_t hl,
                        const tg_xfer_header_t *h, size_t nh)
{
    (void)buf;
    outcome_t *o = ctx;
    assert_true(hl <= held);
    if (r->state == TG_H1_HEAD) {
        o->interim++;
        return;
    }
    o->status = r->status;
    if (nh)
        snprintf(o->first_header, sizeof(o->first_header), "%.*s=%.*s", (int)h[0].name.len, h[0].name.base,
                 (int)h[0].value.len, h[0].value.base);
}

static void record_body(void *ctx, const char *buf, size_t held, size_t l, size_t body)
{
    outcome_t *o = ctx;
    assert_true(l <= held);
    assert_true(body <= l);
    assert_true(o->body_len + body <= sizeof(o->body));
    memcpy(o->body + o->body_len, buf, body);
    o->body_len += body;
}

/* Runs the client's read loop (h1_feed.h) over WIRE delivered STEP bytes at a time. */
static void run(const char *wire, size_t len, size_t step, int head_request, outcome_t *o)
{
    memset(o, 0, sizeof(*o));
    tg_h1_feed_hooks_t hooks = {record_head, record_body, o};
    tg_h1_feed_result_t res;
    tg_h1_feed(wire, len, step, head_request, &hooks, &res);
    if (res.rc == -1 && o->status == 0)
        assert_non_null(res.why); /* a head refused says why */
    o->rc = res.rc;
    o->keep_alive = res.keep_alive;
    o->beyond = res.beyond;
}

static void run_all_steps(const char *wire, int head_request, const outcome_t *want)
{
    size_t len = strlen(wire);
    for (size_t step = 1; step <= len; step++) {
        outcome_t o;
        run(wire, len, step, head_request, &o);
        assert_int_equal(o.rc, want->rc);
        assert_int_equal(o.status, want->status);
        assert_int_equal(o.keep_alive, want->keep_alive);
        assert_int_equal(o.body_len, want->body_len);
        assert_memory_equal(o.body, want->body, want->body_len);
        assert_int_equal(o.beyond, want->beyond);
    }
}

static void test_content_length(void **state)
{
    const char *wire = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\":\"xyz\"}";
    outcome_t want = {.rc = 1, .status = 200, .keep_alive = 1, .body = "{\"a\":\"xyz\"}", .body_len = 11};
    run_all_steps(wire, 0, &want);
    outcome_t o;
    run(wire, strlen(wire), strlen(wire), 0, &o);
    assert_string_equal(o.first_header, "content-type=application/json"); /* names lower-cased */
}

static void test_chunked_with_trailer(void **state)
{
    const char *wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n"
                       "6\r\ndata: \r\n"
                       "a;ext=1\r\n0123456789\r\n"
                       "0\r\nX-Trailer: yes\r\n\r\n";
    outcome_t want = {.rc = 1, .status = 200, .keep_alive = 1, .body = "data: 0123456789", .body_len = 16};
    run_all_steps(wire, 0, &want);
}

static void test_chunked_then_extra_bytes(void **state)
{
    const char *wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nJUNK";
    outcome_t o;
    run(wire, strlen(wire), strlen(wire), 0, &o);
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.body_len, 3);
    assert_int_equal(o.beyond, 4); /* the client must not reuse such a connection */
}

static void test_content_length_then_extra_bytes(void **state)
{
    const char *wire = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n";
    outcome_t o;
    run(wire, strlen(wire), strlen(wire), 0, &o);
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.body_len, 2);
    assert_int_equal(o.beyond, strlen("HTTP/1.1 200 OK\r\n"));
}

static void test_interim_heads_skipped(void **state)
{
    const char *wire = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                       "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
    outcome_t want = {.rc = 1, .status = 201, .keep_alive = 1, .body = "ok", .body_len = 2};
    run_all_steps(wire, 0, &want);
    outcome_t o;
    run(wire, strlen(wire), strlen(wire), 0, &o);
    assert_int_equal(o.interim, 2);
}

static void test_no_body_statuses_and_head(void **state)
{
    outcome_t want = {.rc = 1, .status = 204, .keep_alive = 1};
    run_all_steps("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", 0, &want);
    want.status = 304;
    run_all_steps("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", 0, &want);
    want.status = 200;
    run_all_steps("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", 1, &want); /* HEAD */
    run_all_steps("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, &want);
}

static void test_read_to_eof(void **state)
{
    const char *wire = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end";
    outcome_t o;
    run(wire, strlen(wire), 5, 0, &o);
    assert_int_equal(o.rc, 0); /* goes on until the connection ends */
    assert_int_equal(o.keep_alive, 0);
    assert_int_equal(o.body_len, 13);
    tg_h1_response_t r;
    tg_h1_response_init(&r, 0);
    r.state = TG_H1_BODY_EOF;
    assert_int_equal(tg_h1_at_eof(&r), 0);
    assert_int_equal(r.state, TG_H1_DONE);
    /* a transfer coding other than chunked last is also read to the end */
    const char *gz = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nzz";
    run(gz, strlen(gz), strlen(gz), 0, &o);
    assert_int_equal(o.rc, 0);
    assert_int_equal(o.keep_alive, 0);
    assert_int_equal(o.body_len, 2);
}

static void test_cut_short(void **state)
{
    tg_h1_response_t r;
    tg_h1_response_init(&r, 0);
    assert_int_equal(tg_h1_at_eof(&r), -1); /* nothing of the head */
    tg_xfer_header_t h[TG_H1_MAX_HEADERS];
    size_t nh;
    const char *why;
    char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
    assert_int_equal(tg_h1_parse_head(&r, head, strlen(head), h, &nh, &why), (int)strlen(head));
    char part[] = "abc";
    size_t len = 3, body;
    assert_int_equal(tg_h1_frame_body(&r, part, &len, &body), 0);
    assert_int_equal(body, 3);
    assert_int_equal(r.remaining, 7);
    assert_int_equal(tg_h1_at_eof(&r), -1);
    tg_h1_response_init(&r, 0);
    char chead[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_true(tg_h1_parse_head(&r, chead, strlen(chead), h, &nh, &why) > 0);
    assert_int_equal(tg_h1_at_eof(&r), -1);
}

static void test_connection_reuse(void **state)
{
    outcome_t o;
    const char *close11 = "HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n";
    run(close11, strlen(close11), 100, 0, &o);
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.keep_alive, 0);
    const char *h10 = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok";
    run(h10, strlen(h10), 100, 0, &o);
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.keep_alive, 0);
    const char *h10ka = "HTTP/1.0 200 OK\r\nConnection: foo, Keep-Alive\r\nContent-Length: 2\r\n\r\nok";
    run(h10ka, strlen(h10ka), 100, 0, &o);
    assert_int_equal(o.keep_alive, 1);
    const char *h10eof = "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nok";
    run(h10eof, strlen(h10eof), 100, 0, &o);
    assert_int_equal(o.keep_alive, 0); /* framed by the end of the connection */
}

static void test_malformed(void **state)
{
    static const char *const bad[] = {
        "HTTX/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        outcome_t o;
        run(bad[i], strlen(bad[i]), strlen(bad[i]), 0, &o);
        if (o.rc != -1)
            fail_msg("accepted: %s", bad[i]);
    }
    /* equal repeated lengths are fine */
    outcome_t o;
    const char *dup = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok";
    run(dup, strlen(dup), 7, 0, &o);
    assert_int_equal(o.rc, 1);
}

static void test_head_too_large(void **state)
{
    size_t len = TG_H1_MAX_HEAD + 100;
    char *buf = malloc(len);
    assert_non_null(buf);
    memcpy(buf, "HTTP/1.1 200 OK\r\nX-Big: ", 24);
    memset(buf + 24, 'a', len - 24);
    tg_h1_response_t r;
    tg_h1_response_init(&r, 0);
    tg_xfer_header_t h[TG_H1_MAX_HEADERS];
    size_t nh;
    const char *why = NULL;
    assert_int_equal(tg_h1_parse_head(&r, buf, TG_H1_MAX_HEAD - 1, h, &nh, &why), 0);
    assert_int_equal(tg_h1_parse_head(&r, buf, len, h, &nh, &why), -1);
    assert_string_equal(why, "the upstream's response head is too large");
    free(buf);
}

static void test_request_head(void **state)
{
    const char *hdrs[] = {"Authorization: Bearer sk-1", "Content-Type: application/json"};
    char out[256];
    size_t n = tg_h1_request_head(out, sizeof(out), "POST", "/v1/chat/completions?x=1", 24, "127.0.0.1:9000", 14, hdrs, 2,
                                  1, 1234);
    const char *want = "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n"
                       "Authorization: Bearer sk-1\r\nContent-Type: application/json\r\nContent-Length: 1234\r\n\r\n";
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);

    n = tg_h1_request_head(out, sizeof(out), "GET", "", 0, "[::1]:80", 8, NULL, 0, 0, 0);
    want = "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n";
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);

    n = tg_h1_request_head(out, sizeof(out), "POST", "/", 1, "h:1", 3, NULL, 0, 1, 0);
    want = "POST / HTTP/1.1\r\nHost: h:1\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);

    /* too little room: the length needed comes back and only the room is written */
    char small[12];
    memset(small, '#', sizeof(small));
    size_t need = tg_h1_request_head(small, 10, "POST", "/", 1, "h:1", 3, NULL, 0, 1, 0);
    assert_int_equal(need, strlen(want));
    assert_memory_equal(small, want, 10);
    assert_int_equal(small[10], '#');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_chunked_with_trailer),
        cmocka_unit_test(test_chunked_then_extra_bytes),
        cmocka_unit_test(test_content_length_then_extra_bytes),
        cmocka_unit_test(test_interim_heads_skipped),
        cmocka_unit_test(test_no_body_statuses_and_head),
        cmocka_unit_test(test_read_to_eof),
        cmocka_unit_test(test_cut_short),
        cmocka_unit_test(test_connection_reuse),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_head_too_large),
        cmocka_unit_test(test_request_head),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
