/* tests/unit/test_proto_common.c: what worker/proto.c owns: the pair matrix, passthrough
 * (bodies unchanged, usage captured, the injected usage chunk hidden), SSE event parsing
 * (CRLF, multi-line data, comments), number and text fidelity, and misuse. */
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
#include <jansson.h>

#include "worker/proto.h"

#include "proto_test_util.h"

#define GEM TG_SURFACE_GEMINI
#define RESP TG_SURFACE_RESPONSES

static void test_supported_matrix(void **state)
{
    /* client ↓, upstream →: chat, responses, messages, gemini */
    static const int want[4][4] = {{1, 0, 1, 1}, {1, 1, 1, 1}, {1, 0, 1, 1}, {0, 0, 0, 1}};
    for (int f = 0; f < 4; f++)
        for (int t = 0; t < 4; t++) {
            if (tg_proto_supported((tg_surface_t)f, (tg_surface_t)t) != want[f][t])
                fail_msg("supported(%d, %d) != %d", f, t, want[f][t]);
            tg_proto_stream_t *s = tg_proto_stream_new((tg_surface_t)f, (tg_surface_t)t, NULL, 0);
            assert_int_equal(s != NULL, want[f][t]);
            tg_proto_stream_free(s);
        }
    assert_int_equal(tg_proto_supported((tg_surface_t)7, CHAT), 0);
    tg_proto_stream_free(NULL);
    tg_proto_request_t out;
    char *err = NULL;
    const char *b = "{\"model\":\"x\",\"input\":\"hi\"}";
    assert_int_equal(tg_proto_request(CHAT, RESP, b, strlen(b), "m", 0, &out, &err), -1);
    assert_string_equal(err, "a chat client cannot be served by a responses upstream");
    free(err);
    char *o;
    size_t n;
    tg_proto_usage_t u;
    assert_int_equal(tg_proto_response(GEM, CHAT, b, strlen(b), NULL, &o, &n, &u, &err), -1);
    free(err);
}

static void test_passthrough_request_and_answer(void **state)
{
    const char *b = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}], \"x_custom\": 1}";
    tg_proto_request_t out;
    char *err = NULL;
    assert_int_equal(tg_proto_request(CHAT, CHAT, b, strlen(b), "gpt-4o", 1, &out, &err), 0);
    assert_int_equal(out.len, strlen(b));
    assert_memory_equal(out.body, b, out.len); /* byte for byte */
    assert_string_equal(out.path, "/v1/chat/completions");
    free(out.body);
    assert_int_equal(tg_proto_request(RESP, RESP, b, strlen(b), "gpt-4o", 1, &out, &err), 0);
    assert_string_equal(out.path, "/v1/responses");
    free(out.body);

    const char *a = "{\"id\":\"r\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":4,"
                    "\"prompt_tokens_details\":{\"cached_tokens\":3}}}";
    char *o;
    size_t n;
    tg_proto_usage_t u;
    assert_int_equal(tg_proto_response(CHAT, CHAT, a, strlen(a), "alias", &o, &n, &u, &err), 0);
    assert_int_equal(n, strlen(a));
    assert_memory_equal(o, a, n);
    assert_int_equal(u.prompt_tokens, 10);
    assert_int_equal(u.completion_tokens, 4);
    assert_int_equal(u.cached_tokens, 3);
    assert_int_equal(u.seen, 1);
    free(o);
    a = "{\"id\":\"msg_1\",\"type\":\"message\",\"content\":[],\"usage\":{\"input_tokens\":7,\"cache_read_input_tokens\":5,"
        "\"output_tokens\":2}}";
    assert_int_equal(tg_proto_response(MSGS, MSGS, a, strlen(a), NULL, &o, &n, &u, &err), 0);
    assert_memory_equal(o, a, n);
    assert_int_equal(u.prompt_tokens, 12);
    assert_int_equal(u.cached_tokens, 5);
    free(o);
    a = "{\"id\":\"resp_1\",\"object\":\"response\",\"output\":[],\"usage\":{\"input_tokens\":9,\"input_tokens_details\":"
        "{\"cached_tokens\":1},\"output_tokens\":3}}";
    assert_int_equal(tg_proto_response(RESP, RESP, a, strlen(a), NULL, &o, &n, &u, &err), 0);
    assert_int_equal(u.prompt_tokens, 9);
    assert_int_equal(u.cached_tokens, 1);
    assert_int_equal(u.completion_tokens, 3);
    free(o);
    a = "{\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":2}}";
    assert_int_equal(tg_proto_response(GEM, GEM, a, strlen(a), NULL, &o, &n, &u, &err), 0);
    assert_int_equal(u.prompt_tokens, 4);
    assert_int_equal(u.completion_tokens, 2);
    free(o);
}

static void test_passthrough_chat_stream_hides_injected_usage(void **state)
{
    const char *chunk = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n";
    const char *usage = "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1}}\n\n";
    const char *both = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
                       "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\n\n";
    for (int wants = 0; wants < 2; wants++) {
        tg_proto_stream_t *s = tg_proto_stream_new(CHAT, CHAT, NULL, wants);
        sink_t k = {0};
        feed(s, chunk, &k);
        feed(s, usage, &k);
        feed(s, both, &k);
        feed(s, "data: [DONE]\n\n", &k);
        tg_proto_stream_end(s, sink_emit, &k);
        if (wants) { /* the client asked: everything verbatim */
            char *all;
            assert_true(asprintf(&all, "%s%s%s%s", chunk, usage, both, "data: [DONE]\n\n") > 0);
            assert_string_equal(k.buf, all);
            free(all);
        } else {
            json_t *ev = sink_events(&k);
            assert_string_equal(event_names(ev), "chunk,chunk,[DONE]");
            assert_memory_equal(k.buf, chunk, strlen(chunk)); /* untouched events stay byte-exact */
            assert_jabsent(ev, "1.data.usage");
            assert_jstr(ev, "1.data.choices.0.finish_reason", "stop");
            json_decref(ev);
        }
        tg_proto_usage_t u;
        tg_proto_stream_usage(s, &u);
        assert_int_equal(u.prompt_tokens, 5);
        assert_int_equal(u.completion_tokens, 2);
        assert_int_equal(tg_proto_stream_text_chars(s), 2);
        sink_free(&k);
        tg_proto_stream_free(s);
    }
}

static void test_passthrough_other_streams(void **state)
{
    sink_t k = {0};
    tg_proto_stream_t *s = tg_proto_stream_new(MSGS, MSGS, NULL, 0);
    const char *evs[] = {
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":"
        "10,\"cache_read_input_tokens\":90,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
        "\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
        "\"text\":\"héllo\"}}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":"
        "{\"output_tokens\":3}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        NULL};
    size_t total = 0;
    for (int i = 0; evs[i]; i++) {
        feed(s, evs[i], &k);
        total += strlen(evs[i]);
    }
    tg_proto_stream_end(s, sink_emit, &k);
    assert_int_equal(k.len, total); /* relayed as they came, nothing added */
    tg_proto_usage_t u;
    tg_proto_stream_usage(s, &u);
    assert_int_equal(u.prompt_tokens, 100);
    assert_int_equal(u.cached_tokens, 90);
    assert_int_equal(u.completion_tokens, 3);
    assert_int_equal(tg_proto_stream_text_chars(s), 5);
    sink_free(&k);
    tg_proto_stream_free(s);

    s = tg_proto_stream_new(RESP, RESP, NULL, 0);
    feed(s, "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hey\"}\n\n", &k);
    feed(s,
         "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":"
         "8,\"input_tokens_details\":{\"cached_tokens\":2},\"output_tokens\":1}}}\n\n",
         &k);
    tg_proto_stream_usage(s, &u);
    assert_int_equal(u.prompt_tokens, 8);
    assert_int_equal(u.cached_tokens, 2);
    assert_int_equal(tg_proto_stream_text_chars(s), 3);
    assert_int_equal(k.nevents, 2);
    sink_free(&k);
    tg_proto_stream_free(s);
}

static void test_sse_framing(void **state)
{
    tg_proto_stream_t *s = tg_proto_stream_new(MSGS, CHAT, NULL, 0);
    sink_t k = {0};
    /* data split over several data: lines (joined with \n), CRLF, no space after the colon, an id
     * field and a comment */
    feed(s, ": comment\r\nid: 1\r\ndata:{\"id\":\"x\",\r\ndata: \"choices\":[{\"index\":0,\"delta\":{\"content\":\"A\"}}]}\r\n\r\n",
         &k);
    feed(s, "retry: 100\n\n", &k); /* no data: ignored */
    feed(s, "event: x\rdata: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"-\"}}]}\r\r", &k); /* CR only */
    feed(s, "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"B\"},\"finish_reason\":\"stop\"}]}", &k);
    feed(s, "data: [DONE]\r\n\r\n", &k);
    json_t *ev = sink_events(&k);
    assert_string_equal(event_names(ev), "message_start,content_block_start,content_block_delta,content_block_delta,"
                                         "content_block_delta,content_block_stop,message_delta,message_stop");
    assert_jstr(ev, "2.data.delta.text", "A");
    assert_jstr(ev, "3.data.delta.text", "-");
    assert_jstr(ev, "4.data.delta.text", "B");
    json_decref(ev);
    /* after the end, later events are ignored */
    int before = k.nevents;
    feed(s, "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"C\"}}]}\n\n", &k);
    assert_int_equal(k.nevents, before);
    sink_free(&k);
    tg_proto_stream_free(s);

    /* a chunk that is JSON but neither a chunk nor a usage report */
    s = tg_proto_stream_new(MSGS, CHAT, NULL, 0);
    const char *bad = "data: {\"hello\":1}\n\n";
    assert_int_equal(tg_proto_stream_event(s, bad, strlen(bad), sink_emit, &k), -1);
    bad = "data: \"str\"\n\n";
    assert_int_equal(tg_proto_stream_event(s, bad, strlen(bad), sink_emit, &k), -1);
    assert_int_equal(tg_proto_stream_event(s, "", 0, sink_emit, &k), 0);
    sink_free(&k);
    tg_proto_stream_free(s);
}

static void test_fidelity(void **state)
{
    /* numbers come out as written, text as sent (UTF-8, escapes, NUL) */
    tg_proto_request_t out;
    char *err = NULL;
    const char *b = "{\"model\":\"c\",\"max_tokens\":10,\"temperature\":0.7,\"top_p\":0.1,\"messages\":[{\"role\":\"user\","
                    "\"content\":\"naïve 日本語 \\\"q\\\" \\u0000 end\"},{\"role\":\"assistant\",\"content\":[{\"type\":"
                    "\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{\"x\":0.1,\"big\":9007199254740993,\"neg\":-2e-7}}]}]}";
    assert_int_equal(tg_proto_request(MSGS, CHAT, b, strlen(b), "gpt-4o", 0, &out, &err), 0);
    assert_non_null(strstr(out.body, "\"temperature\":0.7,"));
    assert_non_null(strstr(out.body, "\"top_p\":0.1"));
    assert_non_null(strstr(out.body, "naïve 日本語 \\\"q\\\" \\u0000 end"));
    assert_non_null(strstr(out.body, "{\\\"x\\\":0.1,\\\"big\\\":9007199254740993,\\\"neg\\\":-2e-7}"));
    free(out.body);
    /* a data: URL that is not base64 stays a URL */
    b = "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":"
        "\"data:image/svg+xml,%3Csvg%3E\"}}]}]}";
    json_t *j = xreq(CHAT, MSGS, b, "c", 0, NULL);
    assert_jstr(j, "messages.0.content.0.source.type", "url");
    json_decref(j);
    b = "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":"
        "\"data:;base64,AAAA\"}}]}]}";
    j = xreq(CHAT, MSGS, b, "c", 0, NULL);
    assert_jstr(j, "messages.0.content.0.source.media_type", "application/octet-stream");
    json_decref(j);
}

static void test_ids(void **state)
{
    /* ids keep the upstream's identity under the client's prefix; invented ones are random */
    tg_proto_usage_t u;
    json_t *a = xresp(CHAT, MSGS, "{\"content\":[],\"stop_reason\":\"end_turn\"}", NULL, &u);
    json_t *b = xresp(CHAT, MSGS, "{\"content\":[],\"stop_reason\":\"end_turn\"}", NULL, &u);
    const char *ia = json_string_value(jp(a, "id")), *ib = json_string_value(jp(b, "id"));
    assert_true(!strncmp(ia, "chatcmpl-", 9) && strlen(ia) == 9 + 24);
    assert_string_not_equal(ia, ib);
    json_decref(a);
    json_decref(b);
    a = xresp(MSGS, CHAT, "{\"id\":\"gen-17/x:y\",\"choices\":[{\"message\":{\"content\":\"k\"}}]}", NULL, &u);
    assert_jstr(a, "id", "msg_gen-17_x_y");
    json_decref(a);
}

/* Mutated inputs (bytes flipped, cut short, spliced) through every entry point: any result is
 * fine, crashes, leaks and sanitizer reports are not. Deterministic (fixed seed). */
static const char *const seeds[] = {
    "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":[{\"type\":"
    "\"text\",\"text\":\"a\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AA\"}}]},{\"role\":"
    "\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"c\",\"content\":\"r\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
    "\"f\",\"parameters\":{\"type\":\"object\",\"properties\":{\"a\":{\"$ref\":\"#/$defs/A\"}},\"$defs\":{\"A\":{\"anyOf\":"
    "[{\"type\":\"string\"},{\"type\":\"null\"}]}}}}}],\"tool_choice\":\"required\",\"stop\":\"x\",\"max_tokens\":5}",
    "{\"model\":\"c\",\"max_tokens\":9,\"system\":[{\"type\":\"text\",\"text\":\"s\"}],\"messages\":[{\"role\":\"user\","
    "\"content\":[{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"AA\"}}]},"
    "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}]},{\"role\":"
    "\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t\",\"content\":[{\"type\":\"text\",\"text\":\"r\"}]}]}],"
    "\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":\"object\"}}],\"tool_choice\":{\"type\":\"any\"}}",
    "{\"model\":\"r\",\"instructions\":\"i\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":"
    "\"a\"}]},{\"type\":\"function_call\",\"call_id\":\"c\",\"name\":\"f\",\"arguments\":\"{}\"},{\"type\":"
    "\"function_call_output\",\"call_id\":\"c\",\"output\":\"o\"}],\"tools\":[{\"type\":\"function\",\"name\":\"f\"}],"
    "\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"n\",\"schema\":{}}}}",
};
static const char *const answers[] = {
    "{\"id\":\"msg_1\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\","
    "\"input\":{\"a\":1}}],\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":1,\"output_tokens\":2}}",
    "{\"id\":\"c\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"a\",\"tool_calls\":[{\"id\":"
    "\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"},{\"functionCall\":{\"name\":\"f\",\"args\":{}}}]},"
    "\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":1}}",
};
static const char *const events[] = {
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":1}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
    "\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
    "\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n",
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\",\"tool_calls\":[{\"index\":3,\"id\":\"x\","
    "\"function\":{\"name\":\"f\",\"arguments\":\"{\"}}]},\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":2}}\n\n",
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"},{\"functionCall\":{\"name\":\"f\",\"args\":{}}}]},"
    "\"finishReason\":\"MAX_TOKENS\"}],\"usageMetadata\":{\"promptTokenCount\":1}}\r\n\r\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":"
    "{\"output_tokens\":3}}\n\n",
    "data: [DONE]\n\n",
};

#ifndef PROTO_FUZZ_ROUNDS
#define PROTO_FUZZ_ROUNDS 3000
#endif
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)rng_state;
}

static size_t mutate(const char *in, char *out, size_t cap)
{
    size_t n = strlen(in);
    if (n > cap)
        n = cap;
    memcpy(out, in, n);
    int k = 1 + (int)(rnd() % 4);
    static const char pool[] = "{}[]\":,0-9\\nulltrue ";
    for (int i = 0; i < k && n; i++) {
        switch (rnd() % 4) {
        case 0: /* flip one byte */
            out[rnd() % n] = pool[rnd() % (sizeof(pool) - 1)];
            break;
        case 1: /* cut short */
            n = rnd() % n;
            break;
        case 2: { /* drop a span */
            size_t a = rnd() % n, l = rnd() % 16;
            if (a + l > n)
                l = n - a;
            memmove(out + a, out + a + l, n - a - l);
            n -= l;
            break;
        }
        default: { /* duplicate a span */
            size_t a = rnd() % n, l = rnd() % 24;
            if (a + l > n)
                l = n - a;
            if (n + l <= cap) {
                memmove(out + a + l, out + a, n - a);
                n += l;
            }
        }
        }
    }
    return n;
}

static void sink_drop(void *ud, const char *ev, size_t len)
{
    (*(size_t *)ud) += len;
}

static void test_mutations_do_not_crash(void **state)
{
    char buf[4096];
    for (int round = 0; round < PROTO_FUZZ_ROUNDS; round++) {
        tg_surface_t from = (tg_surface_t)(rnd() % 4), to = (tg_surface_t)(rnd() % 4);
        size_t n = mutate(seeds[rnd() % 3], buf, sizeof(buf));
        tg_proto_request_t out;
        char *err = NULL;
        if (tg_proto_request(from, to, buf, n, (rnd() & 1) ? "gemini-3-pro" : NULL, (int)(rnd() & 1), &out, &err) == 0)
            free(out.body);
        else
            free(err);
        n = mutate(answers[rnd() % 3], buf, sizeof(buf));
        char *o = NULL;
        size_t on;
        tg_proto_usage_t u;
        err = NULL;
        if (tg_proto_response(from, to, buf, n, NULL, &o, &on, &u, &err) == 0)
            free(o);
        else
            free(err);
        if (tg_proto_error(from, to, 400 + (int)(rnd() % 200), buf, n, &o, &on) == 0)
            free(o);
        tg_proto_stream_t *s = tg_proto_stream_new(from, to, NULL, (int)(rnd() & 1));
        size_t got = 0;
        for (int e = 0; s && e < 6; e++) {
            n = mutate(events[rnd() % 7], buf, sizeof(buf));
            tg_proto_stream_event(s, buf, n, sink_drop, &got);
        }
        if (s)
            tg_proto_stream_end(s, sink_drop, &got);
        tg_proto_stream_free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_supported_matrix),
        cmocka_unit_test(test_passthrough_request_and_answer),
        cmocka_unit_test(test_passthrough_chat_stream_hides_injected_usage),
        cmocka_unit_test(test_passthrough_other_streams),
        cmocka_unit_test(test_sse_framing),
        cmocka_unit_test(test_fidelity),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_mutations_do_not_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
