/* worker/freelist.h: objects come back zeroed, are reused last-in first-out, and at most MAX are kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "worker/freelist.h"

typedef struct obj {
    char bytes[200];
} obj_t;

static int all_zero(const obj_t *o)
{
    for (size_t i = 0; i < sizeof(o->bytes); i++)
        if (o->bytes[i])
            return 0;
    return 1;
}

static void test_reuse_zeroed(void **state)
{
    (void)state;
    tg_freelist_t fl = TG_FREELIST_INIT(obj_t, 2);
    obj_t *a = tg_freelist_get(&fl), *b = tg_freelist_get(&fl), *c = tg_freelist_get(&fl);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_true(all_zero(a));
    memset(a, 0x5a, sizeof(*a));
    memset(b, 0xa5, sizeof(*b));
    tg_freelist_put(&fl, a);
    tg_freelist_put(&fl, b);
    tg_freelist_put(&fl, c); /* over MAX: freed, not kept */
    assert_int_equal(fl.n, 2);
    obj_t *x = tg_freelist_get(&fl), *y = tg_freelist_get(&fl);
    assert_ptr_equal(x, b); /* the last one given back comes first */
    assert_ptr_equal(y, a);
    assert_true(all_zero(x)); /* zeroed again, the link included */
    assert_true(all_zero(y));
    assert_int_equal(fl.n, 0);
    assert_null(fl.head);
    obj_t *z = tg_freelist_get(&fl); /* empty: a fresh one */
    assert_non_null(z);
    assert_true(all_zero(z));
    free(x);
    free(y);
    free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse_zeroed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
