/* tests/unit/test_acct_fields.c: the Manage API's list edits and bounds (store/acct_fields.c) agree
 * with what the quota engine compiles (shm/matcher.c): AllowIPs items, IPv4-mapped blocks under
 * a parent's list, AllowLevels up to 64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shm/matcher.h"
#include "store/acct_fields.h"

static void expect_edit(char kind, const char *value, const char *want)
{
    char why[200] = "";
    char *got = tg_acl_edit(kind, "", value, why, sizeof(why));
    if (want == NULL) {
        assert_null(got);
        assert_true(why[0] != '\0');
        return;
    }
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void expect_intersect(char kind, const char *child, const char *parent, const char *want)
{
    char *got = tg_acl_intersect(kind, child, parent);
    assert_string_equal(got, want);
    free(got);
}

static void test_ip_items(void **state)
{
    (void)state;
    expect_edit('I', "10.0.0.0/8, ::1", "10.0.0.0/8,::1");
    expect_edit('I', "10.0.0.0/-0", NULL); /* the prefix is digits only */
    expect_edit('I', "10.0.0.0/+8", NULL);
}

/* An IPv4-mapped block is an IPv4 block to the quota engine, so it is bounded like one: a parent
 * of "::/0" (IPv6 clients only) once let a child keep ::ffff:10.0.0.0/104 and call from IPv4
 * addresses the parent may not use (found by tests/fuzz/fuzz_acl). */
static void test_mapped_blocks_bounded_as_ipv4(void **state)
{
    (void)state;
    expect_intersect('I', "::ffff:10.0.0.0/104,0.0.0.0/0", "::/0", "-*");
    expect_intersect('I', "::ffff:10.1.2.3", "10.0.0.0/8", "::ffff:10.1.2.3");
    expect_intersect('I', "10.1.2.3,2001:db8::1", "::ffff:10.0.0.0/104", "10.1.2.3");
    expect_intersect('I', "2001:db8:1::/48,10.0.0.0/8", "2001:db8::/32", "2001:db8:1::/48");
    expect_intersect('I', "2001:db8::/16", "2001:db8::/32", "-*"); /* wider than the parent */
}

/* Level runs 1..64 and AllowLevels with it; "64" was accepted here but refused by the compiler,
 * whose fallback mask then allowed no level at all. */
static void test_levels(void **state)
{
    (void)state;
    expect_edit('L', "2, 64", "2,64");
    expect_edit('L', "65", NULL);
    expect_edit('L', "+5", NULL);
    expect_edit('L', "0", NULL);
    uint64_t mask;
    assert_int_equal(tg_levels_parse("2,64", &mask), 0);
    assert_true(tg_levels_allow(mask, 64) && !tg_levels_allow(mask, 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ip_items),
        cmocka_unit_test(test_mapped_blocks_bounded_as_ipv4),
        cmocka_unit_test(test_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
