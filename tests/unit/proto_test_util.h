/* Helpers shared by the unit tests of the protocol translators (tests/unit/test_proto_*.c):
 * an event sink, request/answer/stream runners that parse the results with jansson, and JSON
 * assertions. Static functions in a header: each test binary includes it once. */
#ifndef TG_PROTO_TEST_UTIL_H
#define TG_PROTO_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "worker/proto.h"

typedef struct {
    char *buf;
    size_t len;
    int nevents;
} sink_t;

static void sink_emit(void *ud, const char *ev, size_t len)
{
    sink_t *k = ud;
    assert_true(len >= 2);
    assert_memory_equal(ev + len - 2, "\n\n", 2); /* whole, framed events */
    k->buf = realloc(k->buf, k->len + len + 1);
    memcpy(k->buf + k->len, ev, len);
    k->len += len;
    k->buf[k->len] = '\0';
    k->nevents++;
}

static void sink_free(sink_t *k)
{
    free(k->buf);
    memset(k, 0, sizeof(*k));
}

/* The events of the sink as [{"event": NAME or "", "data": JSON or "[DONE]"}]. */
static __attribute__((unused)) json_t *sink_events(const sink_t *k)
{
    json_t *out = json_array();
    const char *p = k->buf ? k->buf : "";
    while (*p) {
        const char *end = strstr(p, "\n\n");
        assert_non_null(end);
        char name[128] = "";
        const char *data = NULL;
        size_t dlen = 0;
        for (const char *l = p; l < end;) {
            const char *nl = memchr(l, '\n', (size_t)(end - l));
            if (!nl)
                nl = end;
            if (!strncmp(l, "event: ", 7))
                snprintf(name, sizeof(name), "%.*s", (int)(nl - l - 7), l + 7);
            else if (!strncmp(l, "data: ", 6)) {
                data = l + 6;
                dlen = (size_t)(nl - data);
            }
            l = nl + 1;
        }
        assert_non_null(data);
        json_t *d;
        if (dlen == 6 && !memcmp(data, "[DONE]", 6)) {
            d = json_string("[DONE]");
        } else {
            json_error_t je;
            d = json_loadb(data, dlen, 0, &je);
            if (!d)
                fail_msg("event data is not JSON: %.*s (%s)", (int)dlen, data, je.text);
        }
        json_array_append_new(out, json_pack("{s:s,s:o}", "event", name, "data", d));
        p = end + 2;
    }
    return out;
}

static __attribute__((unused)) void feed(tg_proto_stream_t *s, const char *ev, sink_t *k)
{
    int rc = tg_proto_stream_event(s, ev, strlen(ev), sink_emit, k);
    if (rc != 0)
        fail_msg("event refused: %s", ev);
}

/* Follows a dotted path ("choices.0.delta.content") into J. */
static json_t *jp(json_t *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    char *save = NULL;
    for (char *t = strtok_r(buf, ".", &save); t && j; t = strtok_r(NULL, ".", &save)) {
        if (json_is_array(j)) {
            char *e;
            long i = strtol(t, &e, 10);
            j = *e ? NULL : json_array_get(j, (size_t)i);
        } else {
            j = json_object_get(j, t);
        }
    }
    return j;
}

#define assert_jstr(j, path, want)                                                                                                 \
    do {                                                                                                                           \
        json_t *v_ = jp((j), (path));                                                                                              \
        if (!json_is_string(v_))                                                                                                   \
            fail_msg("%s: not a string (want \"%s\")", (path), (want));                                                            \
        assert_string_equal(json_string_value(v_), (want));                                                                        \
    } while (0)
#define assert_jint(j, path, want)                                                                                                 \
    do {                                                                                                                           \
        json_t *v_ = jp((j), (path));                                                                                              \
        if (!json_is_integer(v_))                                                                                                  \
            fail_msg("%s: not an integer (want %lld)", (path), (long long)(want));                                                 \
        assert_int_equal(json_integer_value(v_), (want));                                                                          \
    } while (0)
#define assert_jnull(j, path) assert_true(json_is_null(jp((j), (path))))
#define assert_jabsent(j, path) assert_null(jp((j), (path)))

/* Translates a request and returns the upstream body parsed (path in PATH when not NULL). */
static __attribute__((unused)) json_t *xreq(tg_surface_t from, tg_surface_t to, const char *body, const char *model, int stream,
                                            char *path)
{
    tg_proto_request_t out;
    char *err = NULL;
    int rc = tg_proto_request(from, to, body, strlen(body), model, stream, &out, &err);
    if (rc != 0)
        fail_msg("request refused: %s", err ? err : "(no message)");
    assert_null(err);
    json_error_t je;
    json_t *j = json_loadb(out.body, out.len, 0, &je);
    if (!j)
        fail_msg("upstream body is not JSON: %s", out.body);
    if (path)
        strcpy(path, out.path);
    free(out.body);
    return j;
}

/* Expects a request to be refused with an error that starts with WANT. */
static __attribute__((unused)) void xreq_fails(tg_surface_t from, tg_surface_t to, const char *body, const char *want)
{
    tg_proto_request_t out;
    char *err = NULL;
    int rc = tg_proto_request(from, to, body, strlen(body), NULL, 0, &out, &err);
    if (rc != -1)
        fail_msg("request accepted, wanted error '%s': %.*s", want, (int)out.len, out.body);
    assert_non_null(err);
    assert_null(out.body);
    if (strncmp(err, want, strlen(want)))
        fail_msg("error '%s' does not start with '%s'", err, want);
    free(err);
}

/* Translates an answer; returns the client body parsed, usage in *U. */
static __attribute__((unused)) json_t *xresp(tg_surface_t from, tg_surface_t to, const char *body, const char *model,
                                             tg_proto_usage_t *u)
{
    char *out = NULL, *err = NULL;
    size_t n = 0;
    tg_proto_usage_t tmp;
    int rc = tg_proto_response(from, to, body, strlen(body), model, &out, &n, u ? u : &tmp, &err);
    if (rc != 0)
        fail_msg("answer refused: %s", err ? err : "(no message)");
    json_error_t je;
    json_t *j = json_loadb(out, n, 0, &je);
    assert_non_null(j);
    free(out);
    return j;
}

/* The names of the events (event: line, else data.type, else "chunk"/"[DONE]"), comma-joined. */
static __attribute__((unused)) char *event_names(json_t *evs)
{
    static char buf[8192];
    size_t n = 0;
    size_t i;
    json_t *e;
    buf[0] = '\0';
    json_array_foreach(evs, i, e) {
        const char *name = json_string_value(json_object_get(e, "event"));
        json_t *d = json_object_get(e, "data");
        if (!*name)
            name = json_is_string(d) ? json_string_value(d) : "chunk";
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? "," : "", name);
    }
    return buf;
}
/* ---- end of helpers ---- */

#define CHAT TG_SURFACE_CHAT
#define MSGS TG_SURFACE_MESSAGES

#endif
