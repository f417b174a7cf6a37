/* A per-batch accumulator: byte-string key → tg_rollup_t counters. The drain folds many usage
 * records that share a key (one account's day and model, or one account) into a single entry,
 * so a batch of thousands of records becomes a handful of read-modify-writes. Cleared, not
 * freed, between batches. */
#ifndef TG_STORE_FOLDMAP_H
#define TG_STORE_FOLDMAP_H

#include <stddef.h>
#include <stdint.h>

#include "store/schema.h"

#define TG_FOLD_KEY_MAX 96

typedef struct tg_fold_entry {
    uint8_t key[TG_FOLD_KEY_MAX];
    uint32_t key_len;
    tg_rollup_t sum;
} tg_fold_entry_t;

typedef struct tg_foldmap {
    tg_fold_entry_t *entries; /* in insertion order */
    uint32_t n, cap;
    uint32_t *table; /* entry index + 1, 0 = empty */
    uint32_t mask;
} tg_foldmap_t;

/** Room for CAP distinct keys. 0, or -1 when out of memory. */
int tg_foldmap_init(tg_foldmap_t *m, uint32_t cap);
void tg_foldmap_dispose(tg_foldmap_t *m);
void tg_foldmap_clear(tg_foldmap_t *m);
/** Adds DELTA to KEY's entry (created at zero). 0, or -1 when the map is full or the key too long. */
int tg_foldmap_add(tg_foldmap_t *m, const uint8_t *key, size_t key_len, const tg_rollup_t *delta);
/** KEY's entry, or NULL. */
const tg_fold_entry_t *tg_foldmap_find(const tg_foldmap_t *m, const uint8_t *key, size_t key_len);

#endif
