/* tests/unit/test_rollup_merge.c: the roll-up rows' merge operator (store/rollup_merge.c) through
 * a real store: operands added to a stored row and to each other, read by Get and by the roll-up
 * iterator, in the memtable and after flush and compaction (full and partial merges), across a
 * reopen; a malformed row restarting from the operands; the schema 2 → 3 migration; and the usage
 * dump, which opens the database itself, replaying operands left in the log. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shm/usage.h"
#include "store/dump.h"
#include "store/store-i.h"
#include "store/usage_q.h"

#include "store_fixture.h"

static int setup(void **state)
{
    return tg_test_store_setup(state, "rollup_merge");
}

static int teardown(void **state)
{
    return tg_test_store_teardown(state);
}

static size_t key_of(uint8_t key[TG_ROLLUP_KEY_MAX], uint64_t id)
{
    return tg_rollup_key(key, id, "2024-06-01", "gpt-4o", 6);
}

/* Adds R to the row of account ID: as a plain put (PUT) or as a merge operand. */
static void write_row(fx_t *f, uint64_t id, tg_rollup_t r, int put)
{
    uint8_t key[TG_ROLLUP_KEY_MAX], buf[128];
    size_t klen = key_of(key, id);
    int n = tg_rollup_encode(&r, buf, sizeof(buf));
    assert_true(n > 0);
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    if (put)
        rocksdb_writebatch_put_cf(b, f->s->cf[TG_CF_ROLLUPS], (const char *)key, klen, (const char *)buf, (size_t)n);
    else
        rocksdb_writebatch_merge_cf(b, f->s->cf[TG_CF_ROLLUPS], (const char *)key, klen, (const char *)buf, (size_t)n);
    char *err = NULL;
    assert_int_equal(tg_store_commit(f->s, b, &err), 0);
    rocksdb_writebatch_destroy(b);
}

static tg_rollup_t get_row(fx_t *f, uint64_t id)
{
    uint8_t key[TG_ROLLUP_KEY_MAX];
    size_t klen = key_of(key, id), vlen = 0;
    char *err = NULL;
    char *v = tg_store_get(f->s, TG_CF_ROLLUPS, key, klen, &vlen, &err);
    if (err)
        fail_msg("get: %s", err);
    assert_non_null(v);
    tg_rollup_t r;
    assert_int_equal(tg_rollup_decode((const uint8_t *)v, vlen, &r), 0);
    rocksdb_free(v);
    return r;
}

static int sum_rows(void *ud, uint64_t id, const char *day, const char *model, const tg_rollup_t *r)
{
    (void)id, (void)day, (void)model;
    tg_rollup_add(ud, r);
    return 0;
}

static tg_rollup_t iter_row(fx_t *f, uint64_t id)
{
    tg_rollup_t sum = {0};
    assert_int_equal(tg_rollups_each(f->s, id, "2024-06-01", "2024-06-01", sum_rows, &sum), 0);
    return sum;
}

static void flush_and_compact(fx_t *f)
{
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    char *err = NULL;
    rocksdb_flush_cf(f->s->db, fo, f->s->cf[TG_CF_ROLLUPS], &err);
    rocksdb_flushoptions_destroy(fo);
    if (err)
        fail_msg("flush: %s", err);
    rocksdb_compact_range_cf(f->s->db, f->s->cf[TG_CF_ROLLUPS], NULL, 0, NULL, 0);
}

static void assert_rollup(tg_rollup_t got, int64_t requests, int64_t prompt, int64_t completion, int64_t cached, int64_t cost)
{
    assert_int_equal(got.requests, requests);
    assert_int_equal(got.prompt, prompt);
    assert_int_equal(got.completion, completion);
    assert_int_equal(got.cached, cached);
    assert_int_equal(got.cost_nanos, cost);
}

static void test_operands_add_to_the_row(void **state)
{
    fx_t *f = *state;
    write_row(f, 5, (tg_rollup_t){2, 100, 50, 10, 7000}, 1);        /* a row stored by schema 2 */
    write_row(f, 5, (tg_rollup_t){1, 10, 5, 0, 300}, 0);
    write_row(f, 5, (tg_rollup_t){3, 1, 1, 1, -1}, 0);
    assert_rollup(get_row(f, 5), 6, 111, 56, 11, 7299);             /* in the memtable */
    assert_rollup(iter_row(f, 5), 6, 111, 56, 11, 7299);
    flush_and_compact(f);
    assert_rollup(get_row(f, 5), 6, 111, 56, 11, 7299);             /* merged by compaction */
    write_row(f, 5, (tg_rollup_t){1, 0, 0, 0, 1}, 0);
    tg_test_store_reopen(f);                                                      /* the operand replayed from the log */
    assert_rollup(get_row(f, 5), 7, 111, 56, 11, 7300);
    assert_rollup(iter_row(f, 5), 7, 111, 56, 11, 7300);
}

static void test_operands_without_a_row(void **state)
{
    fx_t *f = *state;
    write_row(f, 6, (tg_rollup_t){1, 2, 3, 4, 5}, 0);
    flush_and_compact(f); /* one file of operands only */
    write_row(f, 6, (tg_rollup_t){1, 2, 3, 4, 5}, 0);
    write_row(f, 6, (tg_rollup_t){1, 2, 3, 4, 5}, 0);
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    char *err = NULL;
    rocksdb_flush_cf(f->s->db, fo, f->s->cf[TG_CF_ROLLUPS], &err);
    rocksdb_flushoptions_destroy(fo);
    assert_null(err);
    assert_rollup(get_row(f, 6), 3, 6, 9, 12, 15); /* operands across two files */
    flush_and_compact(f);
    assert_rollup(get_row(f, 6), 3, 6, 9, 12, 15);
    assert_rollup(iter_row(f, 6), 3, 6, 9, 12, 15);
}

static void test_malformed_row_restarts(void **state)
{
    fx_t *f = *state;
    uint8_t key[TG_ROLLUP_KEY_MAX];
    size_t klen = key_of(key, 7);
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    rocksdb_writebatch_put_cf(b, f->s->cf[TG_CF_ROLLUPS], (const char *)key, klen, "junk", 4);
    assert_int_equal(tg_store_commit(f->s, b, NULL), 0);
    rocksdb_writebatch_destroy(b);
    write_row(f, 7, (tg_rollup_t){1, 1, 1, 1, 9}, 0);
    assert_rollup(get_row(f, 7), 1, 1, 1, 1, 9);
    flush_and_compact(f);
    assert_rollup(get_row(f, 7), 1, 1, 1, 1, 9);
}

static void test_migration_2_to_3(void **state)
{
    fx_t *f = *state;
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    tg_store_meta_put(b, f->s, TG_META_SCHEMA_VERSION, 2);
    assert_int_equal(tg_store_commit(f->s, b, NULL), 0);
    rocksdb_writebatch_destroy(b);
    write_row(f, 8, (tg_rollup_t){4, 40, 20, 0, 900}, 1); /* written by the read-modify-write of schema 2 */
    tg_store_close(f->s);
    f->s = NULL;
    /* a read-only tool refuses the old version until tollgate has migrated it */
    tg_store_t *ro = NULL;
    char *err = NULL;
    assert_int_not_equal(tg_store_open_readonly(&ro, f->dir, &err), 0);
    assert_non_null(strstr(err, "schema version 2"));
    free(err);
    tg_test_store_reopen(f);
    uint64_t v = 0;
    assert_int_equal(tg_store_meta_get(f->s, TG_META_SCHEMA_VERSION, &v), 1);
    assert_int_equal(v, 3);
    assert_rollup(get_row(f, 8), 4, 40, 20, 0, 900);
    write_row(f, 8, (tg_rollup_t){1, 1, 1, 1, 100}, 0);
    assert_rollup(get_row(f, 8), 5, 41, 21, 1, 1000);
}

/* `tollgate admin usage` opens the database itself: with roll-up operands still in the log (no
 * flush), it must replay them and see every usage row written after them. */
static void test_dump_replays_merges(void **state)
{
    fx_t *f = *state;
    for (int i = 0; i < 3; i++) {
        tg_usage_t u;
        memset(&u, 0, sizeof(u));
        u.ts_ms = 1717200000000ull + (uint64_t)i;
        snprintf(u.request_id, sizeof(u.request_id), "req-%d", i);
        snprintf(u.model, sizeof(u.model), "gpt-4o");
        u.account_id = 1;
        uint8_t raw[512], key[TG_USAGE_KEY_MAX];
        int n = tg_usage_encode(&u, raw, sizeof(raw));
        assert_true(n > 0);
        size_t klen = tg_usage_key(key, u.ts_ms, u.request_id, strlen(u.request_id));
        rocksdb_writebatch_t *b = rocksdb_writebatch_create();
        rocksdb_writebatch_put_cf(b, f->s->cf[TG_CF_USAGE], (const char *)key, klen, (const char *)raw, (size_t)n);
        assert_int_equal(tg_store_commit(f->s, b, NULL), 0);
        rocksdb_writebatch_destroy(b);
        write_row(f, 1, (tg_rollup_t){1, 0, 0, 0, 1}, 0);
    }
    tg_store_close(f->s);
    f->s = NULL;
    char *buf = NULL, *err = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_int_equal(tg_store_dump_usage(f->dir, out, &err), 0);
    fclose(out);
    int lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += buf[i] == '\n';
    free(buf);
    assert_int_equal(lines, 3);
    tg_test_store_reopen(f);
    assert_rollup(get_row(f, 1), 3, 0, 0, 0, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_operands_add_to_the_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_operands_without_a_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_row_restarts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_2_to_3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump_replays_merges, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
