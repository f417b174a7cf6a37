/* Assistants runs billed once, whatever the number of calls, workers and restarts that see them
 * (worker/run_usage.h). A usage record that names a run (run_id) bills it only when no earlier
 * record did. The persister keeps one marker per billed run, meta key "run:" + run id → u64
 * account id, written in the same WriteBatch as the record that billed it; the markers of the
 * batch being built are also held in memory (fold_runs), since a WriteBatch cannot be read.
 * Markers are never deleted (a run can be polled again at any time). */
#ifndef TG_STORE_RUN_ONCE_H
#define TG_STORE_RUN_ONCE_H

#include <stddef.h>
#include <stdint.h>

#include "shm/usage.h"
#include "store/store.h"

#define TG_RUN_MARKER_PREFIX "run:"

/** U (decoded from *RAW, *LEN bytes) names a run and is about to join the current batch. A run
 * already billed (a marker stored, or an earlier record of this batch): U's tokens and cost are
 * zeroed, it is flagged TG_USAGE_RUN_REPEAT and re-encoded into BUF (CAP bytes), *RAW and *LEN
 * then point there, and its cost is noted to leave the account's `spent` only (fold_dups). A
 * first sighting: its marker joins the batch. 0, or -1 when the lookup failed (the batch is
 * retried). */
int tg_run_once(tg_store_t *s, tg_usage_t *u, const uint8_t **raw, size_t *len, uint8_t *buf, size_t cap);

#endif
