/* The roll-up rows' merge operator: the drain writes each batch's (account, day, model) totals as a
 * RocksDB merge operand, so it never reads the stored row; RocksDB adds the operands to the row
 * when it is read or compacted. Rows and operands have the same encoding (tg_rollup_encode), so
 * readers (iterators, Get) see exactly the sums the read-modify-write of schema 2 stored. A stored
 * row that does not decode restarts from the operands (what the read-modify-write did, logged);
 * an operand that does not decode is dropped, logged. */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "store/store-i.h"

static char *encoded(const tg_rollup_t *sum, size_t *len, unsigned char *success)
{
    uint8_t buf[128];
    int n = tg_rollup_encode(sum, buf, sizeof(buf));
    char *out = n > 0 ? malloc((size_t)n) : NULL;
    *success = out != NULL;
    *len = 0;
    if (out) {
        memcpy(out, buf, (size_t)n);
        *len = (size_t)n;
    }
    return out;
}

static void add_operands(tg_rollup_t *sum, const char *const *ops, const size_t *lens, int n)
{
    for (int i = 0; i < n; i++) {
        tg_rollup_t d;
        if (tg_rollup_decode((const uint8_t *)ops[i], lens[i], &d) == 0)
            tg_rollup_add(sum, &d);
        else
            tg_error("store: a roll-up merge operand is malformed (%zu bytes); dropped", lens[i]);
    }
}

static char *full_merge(void *state, const char *key, size_t klen, const char *base, size_t blen, const char *const *ops,
                        const size_t *lens, int n, unsigned char *success, size_t *out_len)
{
    (void)state, (void)key, (void)klen;
    tg_rollup_t sum = {0};
    if (base && tg_rollup_decode((const uint8_t *)base, blen, &sum) != 0) {
        tg_error("store: a stored roll-up row is malformed; it restarts from the merged totals");
        memset(&sum, 0, sizeof(sum));
    }
    add_operands(&sum, ops, lens, n);
    return encoded(&sum, out_len, success);
}

static char *partial_merge(void *state, const char *key, size_t klen, const char *const *ops, const size_t *lens, int n,
                           unsigned char *success, size_t *out_len)
{
    (void)state, (void)key, (void)klen;
    tg_rollup_t sum = {0};
    add_operands(&sum, ops, lens, n);
    return encoded(&sum, out_len, success);
}

static void delete_value(void *state, const char *value, size_t len)
{
    (void)state, (void)len;
    free((void *)value);
}

static void no_state(void *state)
{
    (void)state;
}

static const char *name(void *state)
{
    (void)state;
    return "tollgate.rollup_add";
}

rocksdb_options_t *tg_rollup_options(const rocksdb_options_t *base)
{
    rocksdb_options_t *o = rocksdb_options_create_copy((rocksdb_options_t *)base);
    rocksdb_options_set_merge_operator(o, rocksdb_mergeoperator_create(NULL, no_state, full_merge, partial_merge, delete_value, name));
    return o;
}
