/* tests/unit/test_json_scan.c: unit tests for common/json_scan.c (allocation-free member lookup and
 * validation). Every document is scanned from an exact-size heap copy, so under ASan a read past
 * the end of the input is caught. */
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

#include "common/json_scan.h"

/* Result of a lookup, copied out of the scanned buffer before it is freed. */
typedef struct got {
    int rc;
    tg_json_type_t type;
    size_t off; /* span start, relative to the document */
    char text[512];
} got_t;

static got_t get_n(const char *doc, size_t n, const char *key)
{
    got_t g;
    memset(&g, 0, sizeof(g));
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, doc, n);
    tg_json_span_t sp = {NULL, 0, TG_JSON_NONE};
    g.rc = tg_json_get(copy, n, key, &sp);
    if (g.rc == 1) {
        assert_non_null(sp.p);
        assert_true(sp.p >= copy && sp.p + sp.len <= copy + n);
        assert_true(sp.len < sizeof(g.text));
        g.type = sp.type;
        g.off = (size_t)(sp.p - copy);
        memcpy(g.text, sp.p, sp.len);
        g.text[sp.len] = '\0';
    }
    free(copy);
    return g;
}

static got_t get(const char *doc, const char *key)
{
    return get_n(doc, strlen(doc), key);
}

static int validate_n(const char *doc, size_t n)
{
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, doc, n);
    int rc = tg_json_validate(copy, n);
    free(copy);
    return rc;
}

static int validate(const char *doc)
{
    return validate_n(doc, strlen(doc));
}

#define EXPECT_MEMBER(doc, key, want_type, want_text)                                                              \
    do {                                                                                                       \
        got_t g_ = get(doc, key);                                                                              \
        if (g_.rc != 1 || g_.type != (want_type) || strcmp(g_.text, want_text) != 0)                           \
            fail_msg("get(%s, \"%s\"): rc %d type %d text \"%s\", want type %d text \"%s\"", doc, key, g_.rc,   \
                     (int)g_.type, g_.text, (int)(want_type), want_text);                                     \
    } while (0)

static void test_member_types(void **state)
{
    const char *doc = "{\"s\":\"hello\",\"n\":-12.5e+3,\"i\":42,\"o\":{\"a\":1,\"b\":[2]},\"a\":[1,\"x\",{\"y\":[]}],"
                      "\"t\":true,\"f\":false,\"z\":null,\"e\":\"\",\"eo\":{},\"ea\":[]}";
    EXPECT_MEMBER(doc, "s", TG_JSON_STRING, "hello");
    EXPECT_MEMBER(doc, "n", TG_JSON_NUMBER, "-12.5e+3");
    EXPECT_MEMBER(doc, "i", TG_JSON_NUMBER, "42");
    EXPECT_MEMBER(doc, "o", TG_JSON_OBJECT, "{\"a\":1,\"b\":[2]}");
    EXPECT_MEMBER(doc, "a", TG_JSON_ARRAY, "[1,\"x\",{\"y\":[]}]");
    EXPECT_MEMBER(doc, "t", TG_JSON_TRUE, "true");
    EXPECT_MEMBER(doc, "f", TG_JSON_FALSE, "false");
    EXPECT_MEMBER(doc, "z", TG_JSON_NULL, "null");
    EXPECT_MEMBER(doc, "e", TG_JSON_STRING, "");
    EXPECT_MEMBER(doc, "eo", TG_JSON_OBJECT, "{}");
    EXPECT_MEMBER(doc, "ea", TG_JSON_ARRAY, "[]");
    /* a string span starts after the opening quote */
    got_t g = get(doc, "s");
    assert_int_equal(g.off, strlen("{\"s\":\""));

    /* absent keys, including prefixes and extensions of present ones and the empty key */
    assert_int_equal(get(doc, "missing").rc, 0);
    assert_int_equal(get(doc, "ss").rc, 0);
    assert_int_equal(get(doc, "").rc, 0);
    assert_int_equal(get(doc, "S").rc, 0);
    EXPECT_MEMBER("{\"\":5}", "", TG_JSON_NUMBER, "5");
    assert_int_equal(get("{}", "a").rc, 0);
    assert_int_equal(get(" { } ", "a").rc, 0);

    /* a nested object can be scanned in turn through its span */
    g = get(doc, "o");
    got_t inner = get(g.text, "b");
    assert_int_equal(inner.rc, 1);
    assert_int_equal(inner.type, TG_JSON_ARRAY);
    assert_string_equal(inner.text, "[2]");

    /* no out pointer */
    assert_int_equal(tg_json_get("{\"a\":1}", 7, "a", NULL), 1);
}

/* Keys inside nested values never match at the top level. */
static void test_nested_keys_do_not_match(void **state)
{
    const char *doc = "{\"messages\":[{\"role\":\"user\",\"model\":\"inner\"}],"
                      "\"meta\":{\"model\":\"deep\",\"x\":{\"model\":\"deeper\"}},"
                      "\"note\":\"model\",\"model\":\"gpt-4o\",\"after\":{\"model\":1}}";
    EXPECT_MEMBER(doc, "model", TG_JSON_STRING, "gpt-4o");
    assert_int_equal(get(doc, "role").rc, 0);
    assert_int_equal(get(doc, "x").rc, 0);

    assert_int_equal(get("{\"meta\":{\"model\":\"x\"}}", "model").rc, 0);
    assert_int_equal(get("{\"a\":[\"model\",{\"model\":2}],\"b\":\"model\"}", "model").rc, 0);
    assert_int_equal(get("{\"a\":\"\\\"model\\\":1\"}", "model").rc, 0); /* inside a string */
    /* first occurrence wins when a key repeats */
    EXPECT_MEMBER("{\"model\":\"a\",\"model\":\"b\"}", "model", TG_JSON_STRING, "a");
}

static void test_escapes(void **state)
{
    /* \" inside strings does not close them; \\ before a quote does not escape it */
    const char *doc = "{\"k\\\"ey\":\"v\\\"}\",\"s\":\"a\\\"b\\\\\",\"t\":\"x\\\\\",\"model\":\"m\\u00e9\\n\"}";
    EXPECT_MEMBER(doc, "s", TG_JSON_STRING, "a\\\"b\\\\");
    EXPECT_MEMBER(doc, "t", TG_JSON_STRING, "x\\\\");
    EXPECT_MEMBER(doc, "model", TG_JSON_STRING, "m\\u00e9\\n"); /* escapes are kept raw */
    EXPECT_MEMBER(doc, "k\\\"ey", TG_JSON_STRING, "v\\\"}");  /* keys compare raw too */
    assert_int_equal(get(doc, "k\"ey").rc, 0);
    assert_int_equal(get(doc, "v").rc, 0);
    /* a string of only backslash pairs */
    EXPECT_MEMBER("{\"a\":\"\\\\\\\\\",\"b\":1}", "b", TG_JSON_NUMBER, "1");
    /* braces and brackets in strings are not structure */
    EXPECT_MEMBER("{\"a\":\"}]{[\",\"b\":\"]\"}", "b", TG_JSON_STRING, "]");
    /* UTF-8 passes through */
    EXPECT_MEMBER("{\"a\":\"h\xc3\xa9llo \xe2\x82\xac\"}", "a", TG_JSON_STRING, "h\xc3\xa9llo \xe2\x82\xac");
}

static void test_whitespace(void **state)
{
    const char *doc = " \t\r\n{ \n\"a\" \t:\r\n [ 1 , 2 ] , \"b\" : { } ,\"c\":\"x\"\n,\"d\"\t:\ttrue\t}\n\t ";
    EXPECT_MEMBER(doc, "a", TG_JSON_ARRAY, "[ 1 , 2 ]");
    EXPECT_MEMBER(doc, "b", TG_JSON_OBJECT, "{ }");
    EXPECT_MEMBER(doc, "c", TG_JSON_STRING, "x");
    EXPECT_MEMBER(doc, "d", TG_JSON_TRUE, "true");
    assert_int_equal(validate(doc), 1);
    /* only the four JSON whitespace characters count */
    assert_int_equal(get("{\"a\":1}\f", "a").rc, -1);
    assert_int_equal(get("\v{\"a\":1}", "a").rc, -1);
    assert_int_equal(get("{\"a\":\xc2\xa0" "1}", "a").rc, -1);
    assert_int_equal(validate("[1]\f"), 0);
}

/* Only [p, p+n) is looked at: bytes after N, and the lack of a NUL, do not matter. */
static void test_length_bounds(void **state)
{
    const char *buf = "{\"a\":1}{\"b\":2}";
    got_t g = get_n(buf, 7, "a");
    assert_int_equal(g.rc, 1);
    assert_string_equal(g.text, "1");
    assert_int_equal(get_n(buf, 7, "b").rc, 0);
    assert_int_equal(get_n(buf, 14, "a").rc, -1);
    /* a number at the very end of a (truncated) buffer */
    assert_int_equal(get_n("{\"a\":123}", 8, "a").rc, -1);
    assert_int_equal(validate_n("123", 3), 1);
    assert_int_equal(validate_n("1234", 2), 1);
    assert_int_equal(validate_n("true", 3), 0);
    assert_int_equal(validate_n("\"ab\"", 3), 0);
}

static void expect_malformed(const char *doc)
{
    got_t g = get(doc, "a");
    if (g.rc != -1)
        fail_msg("tg_json_get accepted malformed %s (rc %d)", doc, g.rc);
    g = get(doc, "zzz");
    if (g.rc != -1)
        fail_msg("tg_json_get accepted malformed %s for an absent key (rc %d)", doc, g.rc);
    if (validate(doc) != 0)
        fail_msg("tg_json_validate accepted malformed %s", doc);
}

static void test_malformed(void **state)
{
    static const char *bad[] = {
        "", " ", "{", "}", "{\"a\"", "{\"a\":", "{\"a\":1", "{\"a\":1,", "{\"a\":\"x", "{\"a\":\"x\\", "{\"a\":\"x\\\"}",
        /* trailing garbage */
        "{\"a\":1}x", "{\"a\":1}}", "{\"a\":1} {}", "{\"a\":1},", "{\"a\":1}\"", "{\"a\":1}0",
        /* missing colon / wrong separators */
        "{\"a\" 1}", "{\"a\"}", "{\"a\",1}", "{\"a\"=1}", "{\"a\"::1}", "{\"a\":1;\"b\":2}", "{\"a\":1 \"b\":2}",
        /* control characters inside strings, in values and keys */
        "{\"a\":\"x\ny\"}", "{\"a\":\"\x01\"}", "{\"a\":\"\t\"}", "{\"a\tb\":1}", "{\"a\":\"\x1f\"}",
        /* structure */
        "{,}", "{\"a\":1,}", "{\"a\":}", "{\"a\":1]", "{\"a\":[1}", "{\"a\":[1,]}", "{\"a\":[1 2]}", "{\"a\":[,1]}",
        "{\"a\":{\"b\"}}", "{\"a\":{\"b\":1,}}", "{\"a\":]}", "{a:1}", "{'a':1}", "{\"a\":'x'}", "{1:2}",
        "{\"a\":{}", "{\"a\":[[]}",
        /* literals */
        "{\"a\":tru}", "{\"a\":nul}", "{\"a\":fals}", "{\"a\":truex}", "{\"a\":True}", "{\"a\":NULL}", "{\"a\":-}",
        "{\"a\":x}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_malformed(bad[i]);
    /* well-formed values that are not objects: tg_json_get refuses, tg_json_validate accepts */
    assert_int_equal(get("[1]", "a").rc, -1);
    assert_int_equal(get("\"a\"", "a").rc, -1);
    assert_int_equal(get("1", "a").rc, -1);
    assert_int_equal(get("null", "a").rc, -1);
}

/* Every proper prefix of a well-formed document is rejected. */
static void test_truncation_everywhere(void **state)
{
    const char *doc = " {\"model\" : \"gpt-4o\", \"messages\":[{\"role\":\"user\",\"content\":\"hi \\\"there\\\\\"}],"
                      "\"stream\":true,\"n\":null,\"t\":-1.5e3,\"o\":{\"p\":[false,{}]}} ";
    size_t n = strlen(doc);
    assert_int_equal(get(doc, "stream").rc, 1);
    assert_int_equal(validate(doc), 1);
    for (size_t cut = 0; cut < n - 1; cut++) { /* n - 1: the doc without its trailing space is complete */
        got_t g = get_n(doc, cut, "stream");
        if (g.rc != -1)
            fail_msg("prefix of %zu bytes: tg_json_get rc %d", cut, g.rc);
        if (validate_n(doc, cut) != 0)
            fail_msg("prefix of %zu bytes validated", cut);
    }
}

static char *nested(size_t levels, int object_wrapped, int closed)
{
    size_t cap = 2 * levels + 16;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t k = 0;
    if (object_wrapped) {
        memcpy(s, "{\"a\":", 5);
        k = 5;
    }
    for (size_t i = 0; i < levels; i++)
        s[k++] = '[';
    if (closed)
        for (size_t i = 0; i < levels; i++)
            s[k++] = ']';
    if (object_wrapped && closed)
        s[k++] = '}';
    s[k] = '\0';
    return s;
}

/* Nesting is bounded (128): deep documents are refused quickly and without blowing the stack. */
static void test_depth_limit(void **state)
{
    /* 128 levels in all (the outer object plus 127 arrays) are fine */
    char *s = nested(127, 1, 1);
    got_t g = get(s, "a");
    assert_int_equal(g.rc, 1);
    assert_int_equal(g.type, TG_JSON_ARRAY);
    free(s);
    s = nested(128, 0, 1);
    assert_int_equal(validate(s), 1);
    free(s);
    /* mixed objects and arrays at 100 levels */
    char mixed[1024];
    size_t k = 0;
    for (int i = 0; i < 50; i++)
        k += (size_t)sprintf(mixed + k, "{\"a\":[");
    k += (size_t)sprintf(mixed + k, "1");
    for (int i = 0; i < 50; i++)
        k += (size_t)sprintf(mixed + k, "]}");
    assert_int_equal(validate(mixed), 1);
    assert_int_equal(get(mixed, "a").rc, 1);

    /* beyond the bound */
    static const size_t deep[] = {131, 200, 1000, 100000};
    for (size_t i = 0; i < sizeof(deep) / sizeof(deep[0]); i++) {
        s = nested(deep[i], 1, 1);
        if (get(s, "a").rc != -1)
            fail_msg("%zu nested arrays accepted by tg_json_get", deep[i]);
        free(s);
        s = nested(deep[i], 0, 1);
        if (validate(s) != 0)
            fail_msg("%zu nested arrays accepted by tg_json_validate", deep[i]);
        free(s);
        s = nested(deep[i], 0, 0); /* unclosed */
        assert_int_equal(validate(s), 0);
        free(s);
    }
    /* get and validate draw the line at the same total depth */
    for (size_t levels = 120; levels <= 140; levels++) {
        s = nested(levels - 1, 1, 1); /* the outer object is one level */
        int rc_get = get(s, "a").rc;
        free(s);
        s = nested(levels, 0, 1);
        int ok = validate(s);
        free(s);
        if ((rc_get == 1) != (ok == 1))
            fail_msg("%zu levels: tg_json_get %d, tg_json_validate %d", levels, rc_get, ok);
        if (levels <= 128 && ok != 1)
            fail_msg("%zu levels rejected", levels);
        if (levels > 130 && ok != 0)
            fail_msg("%zu levels accepted", levels);
    }
}

static void test_get_u64(void **state)
{
    const char *doc = "{\"prompt_tokens\":1234,\"zero\":0,\"big\":18446744073709551615,\"s\":\"12\",\"t\":true,"
                      "\"o\":{\"cached_tokens\":5},\"n\":null}";
    size_t n = strlen(doc);
    uint64_t v = 777;
    assert_int_equal(tg_json_get_u64(doc, n, "prompt_tokens", &v), 1);
    assert_true(v == 1234);
    assert_int_equal(tg_json_get_u64(doc, n, "zero", &v), 1);
    assert_true(v == 0);
    assert_int_equal(tg_json_get_u64(doc, n, "big", &v), 1);
    assert_true(v == UINT64_MAX);
    /* absent, not a number, nested, or a malformed document: 0 and *out untouched */
    const char *keys[] = {"missing", "s", "t", "o", "n", "cached_tokens"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        v = 777;
        assert_int_equal(tg_json_get_u64(doc, n, keys[i], &v), 0);
        assert_true(v == 777);
    }
    v = 777;
    assert_int_equal(tg_json_get_u64("{\"a\":5", 6, "a", &v), 0);
    assert_true(v == 777);
    assert_int_equal(tg_json_get_u64("{\"a\":5}x", 8, "a", &v), 0);
    assert_true(v == 777);
    assert_int_equal(tg_json_get_u64(" {\"a\" : 99 } ", 13, "a", &v), 1);
    assert_true(v == 99);
}

static void test_validate(void **state)
{
    static const char *good[] = {"\"s\"", "\"\"", "0", "-1", "1.5e10", "true", "false", "null", "[]", "{}", " [ ] ",
                                 "[1,\"a\",{\"b\":[null,true,false]}]", "{\"a\":{\"b\":{\"c\":[]}}}", "\n\t\"x\"\r\n"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (validate(good[i]) != 1)
            fail_msg("rejected valid %s", good[i]);
    static const char *bad[] = {"", " ", "tru", "nulll", "\"abc", "[1,]", "{\"a\"}", "1 2", "[", "]", "[1]]", "{}{}",
                                "\"a\" \"b\"", "[\"\x01\"]", "-", "+", "[true false]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (validate(bad[i]) != 0)
            fail_msg("accepted invalid %s", bad[i]);
}

static void test_span_copy(void **state)
{
    const char *doc = "{\"model\":\"gpt-4o\",\"esc\":\"a\\\"b\"}";
    tg_json_span_t sp;
    assert_int_equal(tg_json_get(doc, strlen(doc), "model", &sp), 1);
    char buf[16];
    memset(buf, '#', sizeof(buf));
    assert_int_equal(tg_json_span_copy(&sp, buf, 6), -1); /* no room for the NUL */
    assert_int_equal(buf[0], '#');
    assert_int_equal(tg_json_span_copy(&sp, buf, 7), 0);
    assert_string_equal(buf, "gpt-4o");
    assert_int_equal(buf[7], '#');
    assert_int_equal(tg_json_get(doc, strlen(doc), "esc", &sp), 1);
    assert_int_equal(tg_json_span_copy(&sp, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "a\\\"b");
}

/* tg_json_each over an array span that tg_json_get returned: items in order, each span exact
 * (nested containers whole, strings without their quotes), from an exact-size copy. */
typedef struct items {
    tg_json_span_t v[8];
    int n;
} items_t;

static int collect_item(void *ud, const tg_json_span_t *k, const tg_json_span_t *v)
{
    items_t *it = ud;
    assert_null(k);
    assert_true(it->n < 8);
    it->v[it->n++] = *v;
    return 0;
}

static void test_each_array_span(void **state)
{
    (void)state;
    const char *doc = "{\"data\": [ 1 , \"a,]\", {\"x\":[2,3]} ,[ ] ,null]}";
    char *copy = malloc(strlen(doc));
    memcpy(copy, doc, strlen(doc));
    tg_json_span_t arr;
    assert_int_equal(tg_json_get(copy, strlen(doc), "data", &arr), 1);
    assert_int_equal(arr.type, TG_JSON_ARRAY);
    static const char *const want[] = {"1", "a,]", "{\"x\":[2,3]}", "[ ]", "null"};
    static const tg_json_type_t types[] = {TG_JSON_NUMBER, TG_JSON_STRING, TG_JSON_OBJECT, TG_JSON_ARRAY, TG_JSON_NULL};
    items_t it = {0};
    assert_int_equal(tg_json_each(arr.p, arr.len, collect_item, &it), 0);
    assert_int_equal(it.n, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(it.v[i].type, types[i]);
        assert_int_equal(it.v[i].len, strlen(want[i]));
        assert_memory_equal(it.v[i].p, want[i], it.v[i].len);
        assert_true(it.v[i].p >= copy && it.v[i].p + it.v[i].len <= copy + strlen(doc));
    }
    free(copy);

    memset(&it, 0, sizeof(it));
    assert_int_equal(tg_json_each("[1 2]", 5, collect_item, &it), -1); /* the item before the fault was seen */
    assert_int_equal(it.n, 1);
    assert_int_equal(it.v[0].len, 1);
}

/* tg_json_get_many: one pass gives what one tg_json_get per key gives (first occurrence, nested
 * keys ignored, absent keys typed NONE), and a malformed object is -1 whatever the keys. */
static void test_get_many(void **state)
{
    (void)state;
    static const char *const keys[] = {"model", "stream", "max_tokens", "absent"};
    const char *doc = "{\"inner\":{\"model\":\"no\"},\"model\":\"gpt-4o\",\"stream\":true,\"model\":\"second\","
                      "\"max_tokens\":128}";
    size_t n = strlen(doc);
    char *copy = malloc(n);
    assert_non_null(copy);
    memcpy(copy, doc, n);
    tg_json_span_t v[4];
    assert_int_equal(tg_json_get_many(copy, n, keys, 4, v), 3);
    for (size_t i = 0; i < 4; i++) {
        tg_json_span_t one = {NULL, 0, TG_JSON_NONE};
        int rc = tg_json_get(copy, n, keys[i], &one);
        assert_int_equal(rc, v[i].type != TG_JSON_NONE);
        if (rc == 1) {
            assert_ptr_equal(one.p, v[i].p);
            assert_int_equal(one.len, v[i].len);
            assert_int_equal(one.type, v[i].type);
        }
    }
    assert_int_equal(v[0].len, 6);
    assert_memory_equal(v[0].p, "gpt-4o", 6);
    assert_int_equal(v[1].type, TG_JSON_TRUE);
    uint64_t x = 0;
    assert_int_equal(tg_json_span_u64(&v[2], &x), 1);
    assert_int_equal(x, 128);
    assert_int_equal(tg_json_span_u64(&v[0], &x), 0); /* a string is not a number */
    assert_int_equal(tg_json_span_u64(&v[3], &x), 0);
    assert_int_equal(x, 128);
    free(copy);
    const char *bad = "{\"model\":\"gpt-4o\",\"stream\":tru}";
    assert_int_equal(tg_json_get_many(bad, strlen(bad), keys, 4, v), -1);
    assert_int_equal(tg_json_get_many("{}", 2, keys, 4, v), 0);
    assert_int_equal(v[0].type, TG_JSON_NONE);
}

/* tg_json_each: every member (key and value) or element in order; malformed text; FN stops it. */
typedef struct walk {
    char out[256];
    int stop_at, calls;
} walk_t;

static int walk_fn(void *ud, const tg_json_span_t *k, const tg_json_span_t *v)
{
    walk_t *w = ud;
    size_t n = strlen(w->out);
    snprintf(w->out + n, sizeof(w->out) - n, "%.*s=%.*s;", k ? (int)k->len : 1, k ? k->p : "-", (int)v->len, v->p);
    return ++w->calls == w->stop_at ? 7 : 0;
}

static int walk(const char *doc, int stop_at, walk_t *w)
{
    memset(w, 0, sizeof(*w));
    w->stop_at = stop_at;
    size_t n = strlen(doc);
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, doc, n);
    int rc = tg_json_each(copy, n, walk_fn, w);
    free(copy);
    return rc;
}

static void test_each(void **state)
{
    (void)state;
    walk_t w;
    assert_int_equal(walk(" {\"a\":1, \"b\" : [1,{\"c\":2}],\"d\":\"x\\\"y\"} ", 0, &w), 0);
    assert_string_equal(w.out, "a=1;b=[1,{\"c\":2}];d=x\\\"y;");
    assert_int_equal(walk("[1, true ,{}]", 0, &w), 0);
    assert_string_equal(w.out, "-=1;-=true;-={};");
    assert_int_equal(walk("{}", 0, &w), 0);
    assert_int_equal(w.calls, 0);
    assert_int_equal(walk("[ ]", 0, &w), 0);
    assert_int_equal(walk("{\"a\":1,\"b\":2}", 1, &w), 7);
    assert_int_equal(w.calls, 1);
    assert_int_equal(walk("{\"a\":1,}", 0, &w), -1);
    assert_int_equal(walk("{\"a\":1} x", 0, &w), -1);
    assert_int_equal(walk("{\"a\" 1}", 0, &w), -1);
    assert_int_equal(walk("\"str\"", 0, &w), -1);
    assert_int_equal(walk("[1,2", 0, &w), -1);
    assert_int_equal(walk("", 0, &w), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_member_types),
        cmocka_unit_test(test_nested_keys_do_not_match),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_whitespace),
        cmocka_unit_test(test_length_bounds),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_truncation_everywhere),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_get_u64),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_span_copy),
        cmocka_unit_test(test_each_array_span),
        cmocka_unit_test(test_get_many),
        cmocka_unit_test(test_each),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
