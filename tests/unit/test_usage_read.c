/* tests/unit/test_usage_read.c: unit tests for worker/usage_read.c (token usage from an answer or
 * a stream event, whichever surface it comes from) and for the append helpers of common/put.h
 * that format hot-path header values (rate-limit resets) and access log lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/put.h"
#include "worker/usage_read.h"

static int read_doc(tg_usage_t *u, const char *doc)
{
    memset(u, 0, sizeof(*u));
    return tg_usage_read(u, doc, strlen(doc));
}

static void test_openai(void **state)
{
    (void)state;
    tg_usage_t u;
    assert_int_equal(read_doc(&u, "{\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,"
                                  "\"total_tokens\":18,\"prompt_tokens_details\":{\"cached_tokens\":4}}}"),
                     1);
    assert_int_equal(u.prompt_tokens, 11);
    assert_int_equal(u.completion_tokens, 7);
    assert_int_equal(u.cached_tokens, 4);
}

static void test_anthropic_cache(void **state)
{
    (void)state;
    tg_usage_t u;
    /* message_start: usage inside message; input excludes the cache, which is added back */
    assert_int_equal(read_doc(&u, "{\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":10,"
                                  "\"cache_read_input_tokens\":5,\"cache_creation_input_tokens\":2,\"output_tokens\":1}}}"),
                     1);
    assert_int_equal(u.prompt_tokens, 17);
    assert_int_equal(u.cached_tokens, 5);
    assert_int_equal(u.completion_tokens, 1);
    /* message_delta: top-level usage with output only; the input already read stays */
    assert_int_equal(tg_usage_read(&u, "{\"usage\":{\"output_tokens\":9}}", 29), 1);
    assert_int_equal(u.prompt_tokens, 17);
    assert_int_equal(u.completion_tokens, 9);
}

static void test_responses_and_misses(void **state)
{
    (void)state;
    tg_usage_t u;
    assert_int_equal(read_doc(&u, "{\"type\":\"response.completed\",\"usage\":null,\"response\":{\"usage\":{\"input_tokens\":3,"
                                  "\"output_tokens\":2,\"input_tokens_details\":{\"cached_tokens\":1}}}}"),
                     1);
    assert_int_equal(u.prompt_tokens, 3);
    assert_int_equal(u.completion_tokens, 2);
    assert_int_equal(u.cached_tokens, 1);
    assert_int_equal(read_doc(&u, "{\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}"), 0);
    assert_int_equal(read_doc(&u, "{\"usage\":{\"prompt_tokens\":1}"), 0); /* not a whole object */
    assert_int_equal(read_doc(&u, "{\"usage\":{\"prompt_tokens\":-1,\"completion_tokens\":2.5}}"), 1);
    assert_int_equal(u.prompt_tokens, 0); /* not unsigned integers: left alone */
    assert_int_equal(u.completion_tokens, 0);
}

static void test_put(void **state)
{
    (void)state;
    char buf[128], *p = buf;
    p = tg_put_u64(p, 0);
    *p++ = ' ';
    p = tg_put_u64(p, UINT64_MAX);
    *p++ = ' ';
    p = tg_put_u64_pad(p, 7, 3);
    *p++ = ' ';
    p = tg_put_hex_pad(p, 0xfedcba9876543210ULL, 16);
    *p++ = ' ';
    p = tg_put_hex_pad(p, 0x1abcULL, 3); /* the highest digit is dropped */
    *p++ = ' ';
    p = tg_put_hex_pad(p, 0xa, 4);
    *p++ = ' ';
    static const uint8_t ip[4] = {127, 0, 10, 255};
    p = tg_put_ipv4(p, ip);
    p = tg_put_str(p, " ok");
    p = tg_put_mem(p, "!?", 1);
    *p = '\0';
    assert_string_equal(buf, "0 18446744073709551615 007 fedcba9876543210 abc 000a 127.0.10.255 ok!");
    tg_copy_cut(buf, 4, "POST", 4);
    assert_string_equal(buf, "POS");
    tg_copy_cut(buf, sizeof(buf), "GET", 3);
    assert_string_equal(buf, "GET");
}

static void test_put_duration(void **state)
{
    (void)state;
    static const struct { uint64_t ms; const char *want; } cases[] = {
        {0, "0ms"}, {250, "250ms"}, {999, "999ms"}, {1000, "1s"}, {1500, "1.500s"}, {1005, "1.005s"},
        {59999, "59.999s"}, {60000, "1m0s"}, {360500, "6m0s"}, {3599999, "59m59s"}, {3600000, "1h0m0s"},
        {3723000, "1h2m3s"}, {UINT64_MAX, "5124095576030h25m51s"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[32];
        *tg_put_duration_ms(buf, cases[i].ms) = '\0';
        assert_string_equal(buf, cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai),
        cmocka_unit_test(test_anthropic_cache),
        cmocka_unit_test(test_responses_and_misses),
        cmocka_unit_test(test_put),
        cmocka_unit_test(test_put_duration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
