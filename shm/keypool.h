/* Upstream key pool state in the arena: per-key health (sleeping-until, disabled, in-flight,
 * failure streak; the atomics of tg_upstream_t) and one round-robin cursor per (owner, level)
 * pool, shared by every worker so the rotation is fair across processes.
 *
 * Picking. The keys of a pool are the enabled, not disabled, not sleeping upstream slots of the
 * owner at the level. A pick takes the pool's cursor (fetch_add) and returns the (cursor mod k)-th
 * of the k usable keys, so k keys each get 1/k of the picks whatever the number of workers. The
 * cursors live in a small open-addressed table (key owner_id << 16 | level); a worker inserts a
 * pool's cursor by CAS the first time it sees the pool. Entries are never removed: the table has
 * twice as many entries as upstream slots, and when it is full a pick falls back to a hash of the
 * request counter (still spreads, not strictly round-robin).
 *
 * Sleep rules (api-compat 7.4): on 429 for Retry-After or 60 s; on 5xx or a connection failure
 * for 30 s doubling on each repeat up to 10 min; on 401/403 the key is disabled (until the
 * persister publishes it again, e.g. after an operator fixed its secret).
 *
 * Lifecycle: workers only (the persister clears the health atomics when it publishes a key). */
#ifndef TG_KEYPOOL_H
#define TG_KEYPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "shm/arena-t.h"

/** Picks a usable key of OWNER_ID at LEVEL (LEVEL < 0: any level) whose protocol is in PROTOCOLS
 * (bit mask of 1 << tg_protocol_t; 0 = any) at NOW_MS, skipping the slots in
 * EXCLUDE[0..N_EXCLUDE). Returns 0 and *SLOT, or -1 when the pool has no usable key. */
int tg_keypool_pick(tg_arena_t *a, uint64_t owner_id, int32_t level, uint32_t protocols, uint64_t now_ms,
                    const uint32_t *exclude, size_t n_exclude, uint32_t *slot);
/** The pinned key of pool (OWNER_ID, LEVEL) for PROTOCOLS: the enabled, not disabled key with the
 * lowest id, asleep or not (objects a provider keeps, such as files, exist on one key only).
 * Returns 0 and *SLOT, or -1 when the pool has none. */
int tg_keypool_pin(tg_arena_t *a, uint64_t owner_id, int32_t level, uint32_t protocols, uint32_t *slot);
/** Records a failure of the key in SLOT (STATUS: HTTP status, 0 = connection failure or timeout;
 * RETRY_AFTER_S from the answer) and applies the sleep rules. Returns the sleep in ms (0 when
 * the key was disabled). */
uint64_t tg_keypool_failed(tg_arena_t *a, uint32_t slot, int status, uint32_t retry_after_s, uint64_t now_ms);
/** Records a good answer: the failure streak ends. */
void tg_keypool_succeeded(tg_arena_t *a, uint32_t slot);
/** Puts the key in SLOT to sleep until UNTIL_MS. */
void tg_keypool_sleep_until(tg_arena_t *a, uint32_t slot, uint64_t until_ms);
/** Disables (1) or re-enables (0) the key in SLOT. */
void tg_keypool_set_disabled(tg_arena_t *a, uint32_t slot, int disabled);
/** In-flight requests on the key in SLOT. */
void tg_keypool_begin(tg_arena_t *a, uint32_t slot);
void tg_keypool_end(tg_arena_t *a, uint32_t slot);
/** Persister, when it publishes a key: clears its health (sleep, disabled, streak). */
void tg_keypool_reset(tg_arena_t *a, uint32_t slot);

#endif
