/* Account slots and the API-key index in the arena.
 *
 * Writers: only the persister publishes settings (tg_account_publish) and edits the index.
 * Readers: any process; tg_account_read() copies a slot consistently under its seqlock, and
 * tg_account_lookup() maps an API key's SHA-256 to a slot, confirming against the slot's own hash
 * so that a reader racing a key rotation can only miss, never match the wrong account. */
#ifndef TG_ACCOUNTS_H
#define TG_ACCOUNTS_H

#include "shm/arena-t.h"
#include "shm/policy.h"

#include <stddef.h>

/** The settings a publisher writes; counters are left alone. A zeroed struct is a valid start:
 * 0 means unlimited / none / 1.0 for every quota field. */
typedef struct tg_account_settings {
    uint64_t id, parent_id, owner_id;
    uint32_t flags; /* TG_ACCT_* (TG_ACCT_USED implied; LIMITED and POLICY are derived) */
    int32_t level;
    uint32_t depth;
    uint8_t key_hash[32];
    char name[TG_NAME_MAX];
    /* quota engine (docs/quota.md) */
    uint64_t up_id;      /* the nearest ancestor that exists (api-compat 1.1: a deleted parent's */
    uint32_t up_slot;    /*   children stay governed by the higher ancestors); slot or TG_SLOT_NONE */
    uint32_t owner_slot; /* slot of owner_id, or TG_SLOT_NONE */
    int32_t gear;
    uint32_t rpm, rph, rpd;
    uint64_t tpm, tph, tpd;
    uint64_t allow_levels;         /* tg_levels_parse() of AllowLevels; 0 = unrestricted */
    uint64_t rates_ppm;            /* Rates x 1e6; 0 = 1.0 */
    uint64_t factor_ppm;           /* Factor x 1e6; 0 = 1.0 */
    int64_t hard_limit, soft_limit; /* monthly, nano-dollars; 0 = none */
    tg_policy_ref_t policy;        /* read: the compiled lists (policy.h); ignored by publish */
    tg_account_src_t src;          /* publish: the lists to compile (pointers valid during the call); read: zeroed */
} tg_account_settings_t;

/** Writes SETTINGS into slot SLOT inside the seqlock and points KEY_HASH at it in the index
 * (removing the slot's previous key from the index when the hash changed). The lists in
 * settings->src are compiled into the policy heap first; when they cannot be (malformed, heap
 * full) the account is published with TG_ACCT_POLICY_BAD, so its calls are refused rather than
 * let through unrestricted, and the error is logged. Persister only. */
int tg_account_publish(tg_arena_t *a, uint32_t slot, const tg_account_settings_t *settings);
/** Frees slot SLOT: removes its key from the index and clears its settings. Persister only. */
void tg_account_unpublish(tg_arena_t *a, uint32_t slot);
/** Consistent copy of slot SLOT's settings; returns 0, or -1 if the slot is unused. */
int tg_account_read(const tg_arena_t *a, uint32_t slot, tg_account_settings_t *out);
/** What the limiter needs of an ancestor: a consistent copy of part of slot SLOT. */
typedef struct tg_account_limits {
    uint64_t id, up_id;
    uint32_t flags, up_slot;
    uint32_t rpm, rph, rpd;
    uint64_t tpm, tph, tpd;
    tg_policy_ref_t policy;
} tg_account_limits_t;
/** Consistent copy of slot SLOT's limits; 0, or -1 if the slot is unused. */
int tg_account_read_limits(const tg_arena_t *a, uint32_t slot, tg_account_limits_t *out);
/** Looks up an API key by its SHA-256. Returns the slot, or -1 when unknown. */
int64_t tg_account_lookup(const tg_arena_t *a, const uint8_t hash[32]);
/** Slot of account ID by linear scan of used slots (management paths only; not the hot path). */
int64_t tg_account_find_id(const tg_arena_t *a, uint64_t id);

#endif
