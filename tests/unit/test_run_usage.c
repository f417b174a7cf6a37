/* tests/unit/test_run_usage.c: unit tests for worker/run_usage.c (finished Assistants runs and
 * their usage in an answer). Documents are scanned from exact-size heap copies, so under ASan a
 * read past the end is caught. */
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

#include "worker/run_usage.h"

/* A run object as the provider renders it. */
static char *run_json(const char *id, const char *status, const char *model, const char *usage)
{
    char *s = NULL;
    int n = asprintf(&s,
                     "{\"id\":\"%s\",\"object\":\"thread.run\",\"created_at\":1,\"thread_id\":\"thread_1\",\"status\":\"%s\","
                     "\"model\":\"%s\",\"tools\":[{\"type\":\"code_interpreter\"}],\"metadata\":{\"usage\":\"no\"},"
                     "\"usage\":%s}",
                     id, status, model, usage);
    assert_true(n > 0);
    return s;
}

static size_t scan(const char *doc, tg_run_t *out, size_t max)
{
    size_t n = strlen(doc);
    char *copy = malloc(n ? n : 1);
    memcpy(copy, doc, n);
    size_t got = tg_run_scan(copy, n, out, max);
    free(copy);
    return got;
}

static const char *const USAGE = "{\"prompt_tokens\":123,\"completion_tokens\":45,\"total_tokens\":168}";

static void test_finished_run(void **state)
{
    (void)state;
    char *doc = run_json("run_abc", "completed", "gpt-4o", USAGE);
    tg_run_t r;
    assert_int_equal(scan(doc, &r, 1), 1);
    assert_string_equal(r.id, "run_abc");
    assert_string_equal(r.model, "gpt-4o");
    assert_int_equal(r.prompt_tokens, 123);
    assert_int_equal(r.completion_tokens, 45);
    free(doc);
}

/* Every terminal status bills; a run still going does not, whatever it reports. */
static void test_statuses(void **state)
{
    (void)state;
    static const char *const done[] = {"completed", "failed", "cancelled", "expired", "incomplete"};
    static const char *const going[] = {"queued", "in_progress", "requires_action", "cancelling", "Completed", ""};
    tg_run_t r;
    for (size_t i = 0; i < sizeof(done) / sizeof(done[0]); i++) {
        char *doc = run_json("run_1", done[i], "gpt-4o", USAGE);
        assert_int_equal(scan(doc, &r, 1), 1);
        free(doc);
    }
    for (size_t i = 0; i < sizeof(going) / sizeof(going[0]); i++) {
        char *doc = run_json("run_1", going[i], "gpt-4o", USAGE);
        assert_int_equal(scan(doc, &r, 1), 0);
        free(doc);
    }
}

/* No usage (null, or not an object), other objects with usage (a run step), missing or odd
 * fields: not a billable run. */
static void test_not_billable(void **state)
{
    (void)state;
    tg_run_t r;
    char *doc = run_json("run_1", "completed", "gpt-4o", "null");
    assert_int_equal(scan(doc, &r, 1), 0);
    free(doc);
    doc = run_json("run_1", "failed", "gpt-4o", "7");
    assert_int_equal(scan(doc, &r, 1), 0);
    free(doc);
    doc = run_json("", "completed", "gpt-4o", USAGE);
    assert_int_equal(scan(doc, &r, 1), 0);
    free(doc);
    doc = run_json("run_\\u0031", "completed", "gpt-4o", USAGE); /* ids are never escaped */
    assert_int_equal(scan(doc, &r, 1), 0);
    free(doc);
    char id[TG_RUN_ID_MAX + 1];
    memset(id, 'x', TG_RUN_ID_MAX);
    id[TG_RUN_ID_MAX] = '\0';
    doc = run_json(id, "completed", "gpt-4o", USAGE); /* one byte too long for a record */
    assert_int_equal(scan(doc, &r, 1), 0);
    free(doc);
    id[TG_RUN_ID_MAX - 1] = '\0';
    doc = run_json(id, "completed", "gpt-4o", USAGE); /* the longest that fits */
    assert_int_equal(scan(doc, &r, 1), 1);
    assert_string_equal(r.id, id);
    free(doc);

    assert_int_equal(scan("{\"id\":\"step_1\",\"object\":\"thread.run.step\",\"status\":\"completed\",\"model\":\"m\","
                          "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}",
                          &r, 1),
                     0);
    assert_int_equal(scan("{\"id\":\"run_1\",\"object\":\"thread.run\",\"status\":\"completed\",\"usage\":{}}", &r, 1), 0);
    assert_int_equal(scan("{\"id\":\"run_1\",\"object\":\"thread.run\",\"status\":\"completed\",\"model\":\"m\",\"usage\":{}",
                          &r, 1),
                     0); /* truncated */
    assert_int_equal(scan("[]", &r, 1), 0);
    assert_int_equal(scan("", &r, 1), 0);
    assert_int_equal(scan("data: [DONE]", &r, 1), 0);
}

/* Usage counts that are not unsigned integers read as 0; the run still bills (its id is marked). */
static void test_odd_counts(void **state)
{
    (void)state;
    tg_run_t r;
    char *doc = run_json("run_1", "failed", "gpt-4o", "{\"prompt_tokens\":-1,\"completion_tokens\":1.5}");
    assert_int_equal(scan(doc, &r, 1), 1);
    assert_int_equal(r.prompt_tokens, 0);
    assert_int_equal(r.completion_tokens, 0);
    free(doc);
}

/* A list: every finished run in order, runs still going and other objects skipped, at most MAX. */
static void test_list(void **state)
{
    (void)state;
    char *a = run_json("run_a", "completed", "gpt-4o", USAGE);
    char *b = run_json("run_b", "queued", "gpt-4o", "null");
    char *c = run_json("run_c", "expired", "gpt-4o-mini", "{\"prompt_tokens\":9,\"completion_tokens\":0}");
    char *doc = NULL;
    assert_true(asprintf(&doc, "{\"object\":\"list\",\"data\":[%s, %s ,\"x\",{\"object\":\"thread.message\"},%s],"
                               "\"first_id\":\"run_a\",\"last_id\":\"run_c\",\"has_more\":false}",
                         a, b, c) > 0);
    tg_run_t r[4];
    assert_int_equal(scan(doc, r, 4), 2);
    assert_string_equal(r[0].id, "run_a");
    assert_string_equal(r[1].id, "run_c");
    assert_string_equal(r[1].model, "gpt-4o-mini");
    assert_int_equal(r[1].prompt_tokens, 9);
    assert_int_equal(scan(doc, r, 1), 1);
    assert_string_equal(r[0].id, "run_a");
    assert_int_equal(scan(doc, r, 0), 0);
    assert_int_equal(scan("{\"object\":\"list\",\"data\":[]}", r, 4), 0);
    assert_int_equal(scan("{\"object\":\"list\",\"data\":{}}", r, 4), 0);
    free(a);
    free(b);
    free(c);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finished_run), cmocka_unit_test(test_statuses), cmocka_unit_test(test_not_billable),
        cmocka_unit_test(test_odd_counts),   cmocka_unit_test(test_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
