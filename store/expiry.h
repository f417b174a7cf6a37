/* The persister's periodic jobs on stored money and data: card expiry and consolidation, and the
 * retention of raw usage rows.
 *
 * Expiry: the store keeps, in memory, the earliest card expiry of every account that holds cards
 * (filled at start by the publication walk over the accounts, store/publish.c, updated after each
 * management write and expiry run). The
 * job (every TG_EXPIRY_INTERVAL_MS) looks only at accounts whose time has come: it writes off what
 * their expired cards still held (an `expiry` ledger entry per card, one WriteBatch per account),
 * consolidates their cards and publishes the balance change into the arena.
 *
 * Retention: usage rows older than `store.usage_retention_days` are deleted with one DeleteRange
 * (usage keys start with the time) every TG_RETENTION_INTERVAL_MS; roll-ups are kept forever.
 * meta `usage_pruned_before` records the cutoff (verify then compares usage with roll-ups only
 * from there on). */
#ifndef TG_STORE_EXPIRY_H
#define TG_STORE_EXPIRY_H

#include <jansson.h>
#include <stdint.h>

#include "shm/arena-t.h"
#include "store/store.h"

#define TG_EXPIRY_INTERVAL_MS 1000
#define TG_RETENTION_INTERVAL_MS 3600000
#define TG_META_USAGE_PRUNED_BEFORE "usage_pruned_before"

/** Records REC's earliest card expiry (or forgets the account when it has none). */
void tg_expiry_note(tg_store_t *s, const json_t *rec);
/** Forgets account ID. */
void tg_expiry_forget(tg_store_t *s, uint64_t id);
/** Runs the expiry job for accounts due at NOW (seconds). ARENA may be NULL. Returns the number
 * of accounts changed, or -1 when a write failed (logged; retried next run). */
int tg_expiry_run(tg_store_t *s, tg_arena_t *arena, int64_t now);
/** Deletes usage rows older than DAYS days before NOW_MS (DAYS 0: keep everything). 0, or -1. */
int tg_retention_run(tg_store_t *s, uint32_t days, uint64_t now_ms);

#endif
