/* tests/unit/test_admin_fields.c: provider URL validation of /x-keys (store/admin_fields.c),
 * in particular loopback and private hosts in every spelling a resolver accepts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store/admin_fields.h"

static int valid(const char *url, int allow_private)
{
    char why[160] = "";
    int rc = tg_provider_url_valid(url, allow_private, why, sizeof(why));
    assert_true(rc == 0 || why[0] != '\0');
    return rc == 0;
}

static void test_public_urls(void **state)
{
    (void)state;
    assert_true(valid("https://api.openai.com/v1", 0));
    assert_true(valid("http://8.8.8.8:8080/v1", 0));
    assert_true(valid("https://[2001:4860::8888]/v1", 0));
    assert_false(valid("ftp://example.com", 0));
    assert_false(valid("https://user@example.com", 0));
    assert_false(valid("https://example.com/?q=1", 0));
}

/* Shorthand IPv4 numbers (127.1, 2130706433, 0x7f.0.0.1) and a trailing dot reach loopback through
 * curl and the resolver; they once passed the private-host check (found by
 * tests/fuzz/fuzz_mgmt_body with "https://1", i.e. 0.0.0.1). */
static void test_private_spellings(void **state)
{
    (void)state;
    static const char *const urls[] = {"http://127.0.0.1/v1", "http://127.1/v1",     "http://2130706433/",
                                       "http://0x7f.0.0.1/",  "http://0177.0.0.1/",  "https://1",
                                       "http://10.1/",        "http://localhost./",  "http://LOCALHOST/",
                                       "http://a.localhost/", "http://[::1]:9000/",  "http://[::ffff:192.168.1.1]/",
                                       "http://192.168.257/", "http://169.254.169.254/latest"};
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        assert_false(valid(urls[i], 0));
        assert_true(valid(urls[i], 1)); /* store.allow_private_providers */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_public_urls),
        cmocka_unit_test(test_private_spellings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
