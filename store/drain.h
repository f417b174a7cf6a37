/* The drain's two halves, exposed for tests (a crash between them is what the ring cursor
 * recovers from). tg_store_drain() is commit followed by finish; production code calls only that. */
#ifndef TG_STORE_DRAIN_H
#define TG_STORE_DRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/** Collects up to MAX_RECORDS ready records and commits them (usage rows, roll-ups, account
 * counters, ring cursor) in one synced WriteBatch, without touching the ring or the arena.
 * *DRAINED = positions consumed, *END = ring position after them. 0, or -1 when the write failed. */
int tg_drain_commit(tg_store_t *s, tg_arena_t *arena, size_t max_records, size_t *drained, uint64_t *end);
/** After a successful commit: releases the ring up to END and moves the batch's cost from each
 * account's `spent` into its published balance. */
void tg_drain_finish(tg_store_t *s, tg_arena_t *arena, uint64_t end);

#endif
