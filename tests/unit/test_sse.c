/* tests/unit/test_sse.c: unit tests for worker/sse.c (splitting an upstream byte stream into
 * server-sent events however it was chunked, and reading an event's data field). */
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

#include "worker/sse.h"

/* Collected events. */
typedef struct events {
    char *ev[64];
    size_t len[64];
    size_t n;
    size_t stop_after; /* callback returns -1 on this event (1-based); 0 never */
} events_t;

static int collect(void *ud, const char *ev, size_t len)
{
    events_t *e = ud;
    assert_true(e->n < 64);
    e->ev[e->n] = malloc(len + 1);
    assert_non_null(e->ev[e->n]);
    memcpy(e->ev[e->n], ev, len);
    e->ev[e->n][len] = '\0';
    e->len[e->n] = len;
    e->n++;
    return (e->stop_after && e->n == e->stop_after) ? -1 : 0;
}

static void events_free(events_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->ev[i]);
    memset(e, 0, sizeof(*e));
}

/* Feeds STREAM cut at the offsets in CUTS (ascending, inside the stream), each chunk from an
 * exact-size heap copy. Returns the first non-zero feed result, or 0; *pending gets the held bytes. */
static int feed_chunks(const char *stream, size_t len, const size_t *cuts, size_t ncuts, size_t max, events_t *out,
                       size_t *pending)
{
    tg_sse_t s;
    tg_sse_init(&s);
    int rc = 0;
    size_t from = 0;
    for (size_t i = 0; i <= ncuts && rc == 0; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        size_t n = to - from;
        char *chunk = malloc(n ? n : 1);
        assert_non_null(chunk);
        memcpy(chunk, stream + from, n);
        rc = tg_sse_feed(&s, chunk, n, max, collect, out);
        free(chunk);
        from = to;
    }
    if (pending)
        *pending = tg_sse_pending(&s);
    tg_sse_dispose(&s);
    return rc;
}

/* STR with CR and LF made visible, for messages (static buffer). */
static const char *vis(const char *str, size_t n)
{
    static char buf[1024];
    size_t k = 0;
    for (size_t i = 0; i < n && k + 3 < sizeof(buf); i++) {
        if (str[i] == '\r' || str[i] == '\n') {
            buf[k++] = '\\';
            buf[k++] = str[i] == '\r' ? 'r' : 'n';
        } else {
            buf[k++] = str[i];
        }
    }
    buf[k] = '\0';
    return buf;
}

static void expect_events(const events_t *got, const char *const *want, size_t nwant, const char *how)
{
    if (got->n != nwant)
        fail_msg("%s: %zu events, want %zu", how, got->n, nwant);
    for (size_t i = 0; i < nwant; i++)
        if (got->len[i] != strlen(want[i]) || memcmp(got->ev[i], want[i], got->len[i]) != 0)
            fail_msg("%s: event %zu is \"%s\", want \"%s\"", how, i, vis(got->ev[i], got->len[i]), want[i]);
}

/* Events using every delimiter the splitter knows. */
static const char *const EVENTS[] = {
    "data: {\"id\":1,\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
    "event: message_start\r\ndata: {\"type\":\"message_start\"}\r\n\r\n",
    ": keep-alive comment\n\n",
    "event: ping\rdata: {}\r\r",
    "id: 7\nretry: 1000\ndata: line one\ndata: line two\n\n",
    "data: {\"usage\":{\"prompt_tokens\":10}}\n\r\n",
    "data: x\n\n",
    "data: [DONE]\n\n",
};
#define N_EVENTS (sizeof(EVENTS) / sizeof(EVENTS[0]))

static char *joined(size_t *len)
{
    size_t n = 0;
    for (size_t i = 0; i < N_EVENTS; i++)
        n += strlen(EVENTS[i]);
    char *s = malloc(n + 1);
    assert_non_null(s);
    s[0] = '\0';
    for (size_t i = 0; i < N_EVENTS; i++)
        strcat(s, EVENTS[i]);
    *len = n;
    return s;
}

static void test_whole_stream(void **state)
{
    size_t len, pending = 99;
    char *stream = joined(&len);
    events_t e = {0};
    assert_int_equal(feed_chunks(stream, len, NULL, 0, 4096, &e, &pending), 0);
    expect_events(&e, EVENTS, N_EVENTS, "whole");
    assert_int_equal(pending, 0);
    events_free(&e);
    free(stream);
}

static void test_byte_by_byte(void **state)
{
    size_t len, pending = 99;
    char *stream = joined(&len);
    size_t *cuts = malloc(len * sizeof(size_t));
    assert_non_null(cuts);
    for (size_t i = 0; i + 1 < len; i++)
        cuts[i] = i + 1;
    events_t e = {0};
    assert_int_equal(feed_chunks(stream, len, cuts, len - 1, 4096, &e, &pending), 0);
    expect_events(&e, EVENTS, N_EVENTS, "byte by byte");
    assert_int_equal(pending, 0);
    events_free(&e);
    free(cuts);
    free(stream);
}

/* One cut at every position, then every pair of cuts. */
static void test_every_boundary(void **state)
{
    size_t len;
    char *stream = joined(&len);
    char how[64];
    for (size_t a = 0; a <= len; a++) {
        events_t e = {0};
        size_t pending = 99;
        assert_int_equal(feed_chunks(stream, len, &a, 1, 4096, &e, &pending), 0);
        snprintf(how, sizeof(how), "cut at %zu", a);
        expect_events(&e, EVENTS, N_EVENTS, how);
        assert_int_equal(pending, 0);
        events_free(&e);
    }
    for (size_t a = 1; a < len; a++) {
        for (size_t b = a; b < len; b++) {
            size_t cuts[2] = {a, b};
            events_t e = {0};
            assert_int_equal(feed_chunks(stream, len, cuts, 2, 4096, &e, NULL), 0);
            snprintf(how, sizeof(how), "cuts at %zu and %zu", a, b);
            expect_events(&e, EVENTS, N_EVENTS, how);
            events_free(&e);
        }
    }
    free(stream);
}

static void test_random_chunks(void **state)
{
    size_t len;
    char *stream = joined(&len);
    uint64_t x = 0x243f6a8885a308d3ull;
    size_t cuts[512];
    for (int trial = 0; trial < 500; trial++) {
        size_t n = 0, pos = 0;
        for (;;) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            pos += 1 + (size_t)(x % (trial % 3 == 0 ? 4 : 40));
            if (pos >= len)
                break;
            cuts[n++] = pos;
        }
        events_t e = {0};
        size_t pending = 99;
        char how[64];
        snprintf(how, sizeof(how), "random trial %d", trial);
        assert_int_equal(feed_chunks(stream, len, cuts, n, 4096, &e, &pending), 0);
        expect_events(&e, EVENTS, N_EVENTS, how);
        assert_int_equal(pending, 0);
        events_free(&e);
    }
    free(stream);
}

static void test_each_delimiter(void **state)
{
    static const struct {
        const char *stream;
        const char *first;
    } cases[] = {
        {"data: a\n\ndata: b\n\n", "data: a\n\n"},
        {"data: a\r\n\r\ndata: b\r\n\r\n", "data: a\r\n\r\n"},
        {"data: a\r\rdata: b\r\r", "data: a\r\r"},
        {"data: a\n\r\ndata: b\n\r\n", "data: a\n\r\n"},
        {"data: a\r\n\ndata: b\r\n\n", "data: a\r\n\n"},
        {"\n\ndata: b\n\n", "\n\n"}, /* an empty event */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        events_t e = {0};
        size_t pending = 99;
        const char *s = cases[i].stream;
        assert_int_equal(feed_chunks(s, strlen(s), NULL, 0, 4096, &e, &pending), 0);
        if (e.n != 2 || strcmp(e.ev[0], cases[i].first) != 0 || e.len[0] + e.len[1] != strlen(s))
            fail_msg("case %zu: %zu events, first \"%s\"", i, e.n, e.n ? e.ev[0] : "");
        assert_int_equal(pending, 0);
        events_free(&e);
    }
    /* a single line break is not a boundary, whatever its form */
    static const char *no_boundary[] = {"data: a\n", "data: a\r\n", "data: a\r", "data: a\ndata: b\n", "data: a\r\nid: 1\r\n"};
    for (size_t i = 0; i < sizeof(no_boundary) / sizeof(no_boundary[0]); i++) {
        events_t e = {0};
        size_t pending = 0;
        const char *s = no_boundary[i];
        assert_int_equal(feed_chunks(s, strlen(s), NULL, 0, 4096, &e, &pending), 0);
        assert_int_equal(e.n, 0);
        assert_int_equal(pending, strlen(s));
        events_free(&e);
    }
}

static void test_pending_bytes(void **state)
{
    tg_sse_t s;
    tg_sse_init(&s);
    events_t e = {0};
    assert_int_equal(tg_sse_pending(&s), 0);
    const char *a = "data: one\n\ndata: tw";
    assert_int_equal(tg_sse_feed(&s, a, strlen(a), 4096, collect, &e), 0);
    assert_int_equal(e.n, 1);
    assert_string_equal(e.ev[0], "data: one\n\n");
    assert_int_equal(tg_sse_pending(&s), strlen("data: tw"));
    assert_int_equal(tg_sse_feed(&s, "o\n", 2, 4096, collect, &e), 0);
    assert_int_equal(e.n, 1);
    assert_int_equal(tg_sse_pending(&s), strlen("data: two\n"));
    assert_int_equal(tg_sse_feed(&s, "", 0, 4096, collect, &e), 0); /* empty feed changes nothing */
    assert_int_equal(tg_sse_pending(&s), strlen("data: two\n"));
    assert_int_equal(tg_sse_feed(&s, "\ndata: three", 12, 4096, collect, &e), 0);
    assert_int_equal(e.n, 2);
    assert_string_equal(e.ev[1], "data: two\n\n");
    assert_int_equal(tg_sse_pending(&s), strlen("data: three"));
    assert_int_equal(tg_sse_feed(&s, "\n\n", 2, 4096, collect, &e), 0);
    assert_int_equal(e.n, 3);
    assert_string_equal(e.ev[2], "data: three\n\n");
    assert_int_equal(tg_sse_pending(&s), 0);
    /* a truncated stream leaves its tail pending */
    assert_int_equal(tg_sse_feed(&s, "data: {\"trunc", 13, 4096, collect, &e), 0);
    assert_int_equal(tg_sse_pending(&s), 13);
    assert_int_equal(e.n, 3);
    tg_sse_dispose(&s);
    events_free(&e);
}

static void test_callback_stops(void **state)
{
    size_t len;
    char *stream = joined(&len);
    /* whole and byte by byte: the callback's -1 stops feeding at once */
    events_t e = {0};
    e.stop_after = 2;
    assert_int_equal(feed_chunks(stream, len, NULL, 0, 4096, &e, NULL), -1);
    assert_int_equal(e.n, 2);
    events_free(&e);
    size_t *cuts = malloc(len * sizeof(size_t));
    assert_non_null(cuts);
    for (size_t i = 0; i + 1 < len; i++)
        cuts[i] = i + 1;
    e.stop_after = 3;
    assert_int_equal(feed_chunks(stream, len, cuts, len - 1, 4096, &e, NULL), -1);
    assert_int_equal(e.n, 3);
    events_free(&e);
    /* an event completed inside the held bytes, then a stop on the next one in the same chunk */
    size_t cut = strlen(EVENTS[0]) - 1;
    e.stop_after = 2;
    assert_int_equal(feed_chunks(stream, len, &cut, 1, 4096, &e, NULL), -1);
    assert_int_equal(e.n, 2);
    events_free(&e);
    free(cuts);
    free(stream);
}

/* Events no longer than MAX pass in any chunking. */
static void test_max_not_exceeded(void **state)
{
    size_t len, longest = 0;
    char *stream = joined(&len);
    for (size_t i = 0; i < N_EVENTS; i++)
        if (strlen(EVENTS[i]) > longest)
            longest = strlen(EVENTS[i]);
    size_t *cuts = malloc(len * sizeof(size_t));
    assert_non_null(cuts);
    for (size_t i = 0; i + 1 < len; i++)
        cuts[i] = i + 1;
    events_t e = {0};
    assert_int_equal(feed_chunks(stream, len, cuts, len - 1, longest, &e, NULL), 0);
    expect_events(&e, EVENTS, N_EVENTS, "byte by byte at max");
    events_free(&e);
    for (size_t a = 0; a <= len; a++) {
        assert_int_equal(feed_chunks(stream, len, &a, 1, longest, &e, NULL), 0);
        expect_events(&e, EVENTS, N_EVENTS, "one cut at max");
        events_free(&e);
    }
    free(cuts);
    free(stream);
}

/* An event longer than MAX makes the feed fail however the bytes arrive, and is never delivered. */
static void test_event_larger_than_max(void **state)
{
    char big[256];
    memcpy(big, "data: ", 6);
    memset(big + 6, 'x', 200);
    memcpy(big + 206, "\n\n", 3);
    size_t blen = strlen(big); /* 208 */
    const char *small = "data: s\n\n";
    char stream[512];
    snprintf(stream, sizeof(stream), "%s%s%s", small, big, small);
    size_t len = strlen(stream);
    const size_t max = 64;

    /* byte by byte: the held bytes pass MAX before the event completes */
    size_t *cuts = malloc(len * sizeof(size_t));
    assert_non_null(cuts);
    for (size_t i = 0; i + 1 < len; i++)
        cuts[i] = i + 1;
    events_t e = {0};
    assert_int_equal(feed_chunks(stream, len, cuts, len - 1, max, &e, NULL), -1);
    assert_int_equal(e.n, 1);
    events_free(&e);

    free(cuts);

    /* any other chunking: whole, and one cut anywhere */
    for (size_t a = 0; a <= len; a++) {
        int rc = feed_chunks(stream, len, &a, 1, max, &e, NULL);
        int delivered_big = 0;
        for (size_t i = 0; i < e.n; i++)
            delivered_big |= e.len[i] == blen;
        events_free(&e);
        if (rc != -1 || delivered_big)
            fail_msg("%zu-byte event with max %zu, %s (cut at %zu): feed returned %d and %s the event", blen, max,
                     a == 0 || a == len ? "fed whole" : "fed in two chunks", a, rc,
                     delivered_big ? "delivered" : "did not deliver");
    }
}

static void test_data_field(void **state)
{
    static const struct {
        const char *ev;
        const char *want; /* NULL: no data field */
    } cases[] = {
        {"data: {\"a\":1}\n\n", "{\"a\":1}"},
        {"data:{\"a\":1}\n\n", "{\"a\":1}"},        /* no space */
        {"data:  two spaces\n\n", " two spaces"},   /* only one space is stripped */
        {"data: crlf\r\n\r\n", "crlf"},
        {"event: x\ndata: second line\n\n", "second line"},
        {"event: x\r\ndata: after crlf\r\n\r\n", "after crlf"},
        {"data: first\ndata: second\n\n", "first"},
        {"data: [DONE]\n\n", "[DONE]"},
        {"data:\n\n", ""},
        {"data: no terminator", "no terminator"},
        {"event: ping\n\n", NULL},
        {": data: comment\n\n", NULL},
        {" data: leading space\n\n", NULL},
        {"id: 1 data: inline\n\n", NULL},
        {"Data: case\n\n", NULL},
        {"dat", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].ev);
        char *copy = malloc(len ? len : 1); /* exact size: no read past the event */
        assert_non_null(copy);
        memcpy(copy, cases[i].ev, len);
        const char *p = NULL;
        size_t n = 0;
        int rc = tg_sse_data(copy, len, &p, &n);
        if (cases[i].want == NULL) {
            if (rc != -1)
                fail_msg("case %zu: found data in \"%s\"", i, cases[i].ev);
        } else {
            if (rc != 0 || n != strlen(cases[i].want) || memcmp(p, cases[i].want, n) != 0)
                fail_msg("case %zu: rc %d data \"%.*s\", want \"%s\"", i, rc, (int)n, p ? p : "", cases[i].want);
            assert_true(p >= copy && p + n <= copy + len);
        }
        free(copy);
    }
}

/* The splitter accepts CR-only line endings ("\r\r" ends an event), so the data field must be found
 * on CR-terminated lines too. */
static void test_data_field_cr_lines(void **state)
{
    static const struct {
        const char *ev;
        const char *want;
    } cases[] = {
        {"data: only\r\r", "only"},
        {"event: ping\rdata: {\"a\":1}\r\r", "{\"a\":1}"},
        {"data: first\rdata: second\r\r", "first"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *p = NULL;
        size_t n = 0;
        int rc = tg_sse_data(cases[i].ev, strlen(cases[i].ev), &p, &n);
        if (rc != 0 || n != strlen(cases[i].want) || memcmp(p, cases[i].want, n) != 0) {
            char got[128];
            snprintf(got, sizeof(got), "%.100s", rc == 0 ? vis(p, n) : "");
            fail_msg("CR-only event \"%s\": rc %d, data \"%s\", want \"%s\"", vis(cases[i].ev, strlen(cases[i].ev)),
                     rc, got, cases[i].want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_stream),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_every_boundary),
        cmocka_unit_test(test_random_chunks),
        cmocka_unit_test(test_each_delimiter),
        cmocka_unit_test(test_pending_bytes),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_max_not_exceeded),
        cmocka_unit_test(test_event_larger_than_max),
        cmocka_unit_test(test_data_field),
        cmocka_unit_test(test_data_field_cr_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
