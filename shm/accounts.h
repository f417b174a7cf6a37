/* Account slots and the API-key index in the arena.
 *
 * Writers: only the persister publishes settings (tg_account_publish) and edits the index.
 * Readers: any process; tg_account_read() copies a slot consistently under its seqlock, and
 * tg_account_lookup() maps an API key's SHA-256 to a slot, confirming against the slot's own hash
 * so that a reader racing a key rotation can only miss, never match the wrong account. */
#ifndef TG_ACCOUNTS_H
#define TG_ACCOUNTS_H

#include "shm/arena-t.h"

#include <stddef.h>

/** The settings a publisher writes; counters are left alone. */
typedef struct tg_account_settings {
    uint64_t id, parent_id, owner_id;
    uint32_t flags; /* TG_ACCT_* (TG_ACCT_USED implied) */
    int32_t level;
    uint32_t depth;
    uint8_t key_hash[32];
    char name[TG_NAME_MAX];
} tg_account_settings_t;

/** Writes SETTINGS into slot SLOT inside the seqlock and points KEY_HASH at it in the index
 * (removing the slot's previous key from the index when the hash changed). Persister only. */
int tg_account_publish(tg_arena_t *a, uint32_t slot, const tg_account_settings_t *settings);
/** Frees slot SLOT: removes its key from the index and clears its settings. Persister only. */
void tg_account_unpublish(tg_arena_t *a, uint32_t slot);
/** Consistent copy of slot SLOT's settings; returns 0, or -1 if the slot is unused. */
int tg_account_read(const tg_arena_t *a, uint32_t slot, tg_account_settings_t *out);
/** Looks up an API key by its SHA-256. Returns the slot, or -1 when unknown. */
int64_t tg_account_lookup(const tg_arena_t *a, const uint8_t hash[32]);
/** Slot of account ID by linear scan of used slots (management paths only; not the hot path). */
int64_t tg_account_find_id(const tg_arena_t *a, uint64_t id);

#endif
