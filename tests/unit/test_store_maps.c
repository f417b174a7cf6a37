/* tests/unit/test_store_maps.c: the store's in-memory helpers and codecs: the id → slot map
 * (including deletion inside probe clusters), the per-batch fold map, the roll-up row codec, key
 * encodings, hex decoding, the day cache across a DST change, and the card-expiry index. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/expiry.h"
#include "store/foldmap.h"
#include "store/record.h"
#include "store/store-i.h"
#include "store/schema.h"
#include "store/slotmap.h"

static void test_slotmap_assign_find_remove(void **state)
{
    (void)state;
    tg_slotmap_t m;
    assert_int_equal(tg_slotmap_init(&m, 1000), 0);
    for (uint64_t id = 1; id <= 1000; id++)
        assert_int_equal(tg_slotmap_assign(&m, id * 7919), (int64_t)(id - 1));
    assert_int_equal(tg_slotmap_assign(&m, 123456789), -1); /* full */
    assert_int_equal(tg_slotmap_assign(&m, 7919 * 5), 4);   /* known id keeps its slot */
    /* Remove every third id; the others must stay findable (backward-shift keeps clusters intact). */
    for (uint64_t id = 1; id <= 1000; id += 3)
        tg_slotmap_remove(&m, id * 7919);
    for (uint64_t id = 1; id <= 1000; id++) {
        int64_t slot = tg_slotmap_find(&m, id * 7919);
        if (id % 3 == 1)
            assert_int_equal(slot, -1);
        else
            assert_int_equal(slot, (int64_t)(id - 1));
    }
    /* Freed slots are reused lowest first. */
    assert_int_equal(tg_slotmap_assign(&m, 42), 0);
    assert_int_equal(tg_slotmap_assign(&m, 43), 3);
    assert_int_equal(tg_slotmap_find(&m, 0), -1);
    tg_slotmap_clear(&m);
    assert_int_equal(tg_slotmap_find(&m, 42), -1);
    assert_int_equal(tg_slotmap_set(&m, 10, 42), 0);
    assert_int_equal(tg_slotmap_set(&m, 10, 43), -1); /* slot taken */
    assert_int_equal(tg_slotmap_set(&m, 11, 42), -1); /* id known */
    assert_int_equal(tg_slotmap_find(&m, 42), 10);
    tg_slotmap_dispose(&m);
}

static void test_slotmap_random_churn(void **state)
{
    (void)state;
    enum { CAP = 512, ROUNDS = 20000 };
    tg_slotmap_t m;
    uint64_t present[CAP * 4] = {0}; /* id → slot + 1 (shadow model), ids 1..CAP*4-1 */
    assert_int_equal(tg_slotmap_init(&m, CAP), 0);
    srand(7);
    for (int i = 0; i < ROUNDS; i++) {
        uint64_t id = 1 + (uint64_t)rand() % (CAP * 4 - 1);
        if (rand() % 2) {
            int64_t slot = tg_slotmap_assign(&m, id);
            if (slot >= 0)
                present[id] = (uint64_t)slot + 1;
            else
                assert_int_equal(m.used, CAP);
        } else {
            tg_slotmap_remove(&m, id);
            present[id] = 0;
        }
    }
    for (uint64_t id = 1; id < CAP * 4; id++)
        assert_int_equal(tg_slotmap_find(&m, id), (int64_t)present[id] - 1);
    tg_slotmap_dispose(&m);
}

static void test_foldmap(void **state)
{
    (void)state;
    tg_foldmap_t m;
    assert_int_equal(tg_foldmap_init(&m, 3), 0);
    tg_rollup_t one = {1, 10, 20, 5, 100};
    for (int i = 0; i < 4; i++)
        assert_int_equal(tg_foldmap_add(&m, (const uint8_t *)"a", 1, &one), 0);
    assert_int_equal(tg_foldmap_add(&m, (const uint8_t *)"bb", 2, &one), 0);
    assert_int_equal(tg_foldmap_add(&m, (const uint8_t *)"ab", 2, &one), 0);
    assert_int_equal(tg_foldmap_add(&m, (const uint8_t *)"new", 3, &one), -1); /* full */
    assert_int_equal(m.n, 3);
    assert_int_equal(m.entries[0].sum.requests, 4);
    assert_int_equal(m.entries[0].sum.cost_nanos, 400);
    assert_int_equal(m.entries[1].sum.requests, 1);
    tg_foldmap_clear(&m);
    assert_int_equal(m.n, 0);
    assert_int_equal(tg_foldmap_add(&m, (const uint8_t *)"a", 1, &one), 0);
    assert_int_equal(m.entries[0].sum.requests, 1);
    tg_foldmap_dispose(&m);
}

static void test_rollup_codec(void **state)
{
    (void)state;
    tg_rollup_t r = {123, 4567890123ULL, 42, 7, -5}, back;
    uint8_t buf[128];
    int n = tg_rollup_encode(&r, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(tg_rollup_decode(buf, (size_t)n, &back), 0);
    assert_memory_equal(&r, &back, sizeof(r));
    assert_int_equal(tg_rollup_encode(&r, buf, 10), -1);
    assert_int_equal(tg_rollup_decode((const uint8_t *)"\x93\x01\x02\x03", 4, &back), -1); /* an array */
}

static void test_keys_and_hex(void **state)
{
    (void)state;
    uint8_t k[TG_ROLLUP_KEY_MAX];
    size_t n = tg_rollup_key(k, 0x0102030405060708ULL, "2024-03-01", "gpt-4o", 6);
    assert_int_equal(n, 8 + 10 + 6);
    assert_memory_equal(k,
                        "\x01\x02\x03\x04\x05\x06\x07\x08"
                        "2024-03-01gpt-4o",
                        n);
    assert_int_equal(tg_be64_get(k), 0x0102030405060708ULL);
    uint8_t u[TG_USAGE_KEY_MAX];
    char long_rid[200];
    memset(long_rid, 'r', sizeof(long_rid));
    assert_int_equal(tg_usage_key(u, 1, long_rid, sizeof(long_rid)), TG_USAGE_KEY_MAX);
    /* Big-endian keys sort numerically. */
    uint8_t a[8], b[8];
    tg_be64_put(a, 255);
    tg_be64_put(b, 256);
    assert_true(memcmp(a, b, 8) < 0);

    uint8_t out[4];
    assert_int_equal(tg_unhex("00fFa1", 6, out, sizeof(out)), 3);
    assert_memory_equal(out, "\x00\xff\xa1", 3);
    assert_int_equal(tg_unhex("abc", 3, out, sizeof(out)), -1);
    assert_int_equal(tg_unhex("zz", 2, out, sizeof(out)), -1);
    assert_int_equal(tg_unhex("0011223344", 10, out, sizeof(out)), -1);

    char ts[21];
    tg_rfc3339(0, ts);
    assert_string_equal(ts, "1970-01-01T00:00:00Z");
}

/* An account record holding one card that expires at T. */
static json_t *card_rec(uint64_t id, time_t t)
{
    char ts[21];
    tg_rfc3339(t, ts);
    return json_pack("{s:I, s:[{s:s}]}", "ID", (json_int_t)id, "CreditBalance", "expires_at", ts);
}

/* Expected expiry of ID in the store's list (0: not listed), read through the list itself. */
static int64_t listed_at(const tg_store_t *s, uint64_t id)
{
    int64_t found = 0;
    int copies = 0;
    for (size_t i = 0; i < s->expiry.n; i++)
        if (s->expiry.ids[i] == id) {
            found = s->expiry.at[i];
            copies++;
        }
    assert_true(copies <= 1);
    return found;
}

/* Noting, re-noting and forgetting many accounts keeps exactly one entry per account with its
 * latest expiry (the index is probed by id; forgetting moves the last entry into the hole). */
static void test_expiry_index_churn(void **state)
{
    (void)state;
    enum { N = 5000 };
    tg_store_t *s = calloc(1, sizeof(*s));
    static int64_t want[N + 1];
    memset(want, 0, sizeof(want));
    uint64_t r = 12345;
    for (int round = 0; round < 6 * N; round++) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        uint64_t id = 1 + (r >> 33) % N;
        if ((r >> 20) % 3 == 0) {
            tg_expiry_forget(s, id);
            want[id] = 0;
        } else {
            time_t t = 1700000000 + (time_t)((r >> 40) % 100000);
            json_t *rec = card_rec(id, t);
            tg_expiry_note(s, rec);
            json_decref(rec);
            want[id] = t;
        }
    }
    size_t listed = 0;
    for (uint64_t id = 1; id <= N; id++) {
        assert_int_equal(listed_at(s, id), want[id]);
        listed += want[id] != 0;
    }
    assert_int_equal(s->expiry.n, listed);
    /* a record without cards is forgotten */
    for (uint64_t id = 1; id <= N; id++) {
        json_t *rec = json_pack("{s:I, s:[]}", "ID", (json_int_t)id, "CreditBalance");
        tg_expiry_note(s, rec);
        json_decref(rec);
    }
    assert_int_equal(s->expiry.n, 0);
    free(s->expiry.ids);
    free(s->expiry.at);
    free(s->expiry.index);
    free(s);
}

static void test_day_cache(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    tg_day_cache_t c = {0};
    assert_string_equal(tg_day_of(&c, 1709337599999ULL), "2024-03-01"); /* 23:59:59.999Z */
    assert_string_equal(tg_day_of(&c, 1709337600000ULL), "2024-03-02");
    assert_string_equal(tg_day_of(&c, 1709251200000ULL), "2024-03-01"); /* back across the boundary */

    /* A zone with DST: 2024-03-10 in New York is 23 hours long. */
    setenv("TZ", "America/New_York", 1);
    tzset();
    memset(&c, 0, sizeof(c));
    assert_string_equal(tg_day_of(&c, 1710046800000ULL), "2024-03-10"); /* 00:00 EST = 05:00Z */
    assert_string_equal(tg_day_of(&c, 1710129599000ULL), "2024-03-10"); /* 23:59:59 EDT = 03:59:59Z next day */
    assert_string_equal(tg_day_of(&c, 1710129600000ULL), "2024-03-11"); /* 00:00 EDT */
    setenv("TZ", "UTC", 1);
    tzset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slotmap_assign_find_remove),
        cmocka_unit_test(test_slotmap_random_churn),
        cmocka_unit_test(test_foldmap),
        cmocka_unit_test(test_rollup_codec),
        cmocka_unit_test(test_keys_and_hex),
        cmocka_unit_test(test_day_cache),
        cmocka_unit_test(test_expiry_index_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
