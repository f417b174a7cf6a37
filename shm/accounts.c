/* Account slots (seqlock-protected settings) and the open-addressed key index (one word per
 * entry: a tag of the key's digest and the slot; the slot's own digest confirms a match). */
#include "shm/accounts.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static uint64_t hash_start(const uint8_t hash[32])
{
    uint64_t h;
    memcpy(&h, hash, sizeof(h));
    return h;
}

/* The entry word of HASH → SLOT: the digest's bytes 8..11 as the tag, slot + 1 below. */
static uint64_t entry_word(const uint8_t hash[32], uint32_t slot)
{
    uint32_t tag;
    memcpy(&tag, hash + 8, sizeof(tag));
    return (uint64_t)tag << 32 | (slot + 1);
}

static uint32_t word_slot(uint64_t w)
{
    return (uint32_t)w;
}

/* Removes HASH → SLOT from the index if present (persister only). */
static void index_remove(tg_arena_t *a, const uint8_t hash[32], uint32_t slot)
{
    uint32_t mask = a->hdr->index_slots - 1;
    uint64_t want = entry_word(hash, slot);
    for (uint32_t i = 0, pos = (uint32_t)hash_start(hash) & mask; i <= mask; i++, pos = (pos + 1) & mask) {
        tg_index_entry_t *e = &a->index[pos];
        uint64_t w = atomic_load_explicit(&e->word, memory_order_relaxed);
        if (word_slot(w) == TG_INDEX_EMPTY)
            return;
        if (w == want) {
            atomic_store_explicit(&e->word, TG_INDEX_DELETED, memory_order_release);
            return;
        }
    }
}

/* Inserts HASH → SLOT (persister only): re-points the key's entry when it has one (the key moved
 * to another slot), else takes the first deleted or empty entry of its chain. One atomic store
 * either way, and an entry never becomes empty again, so a reader probing a chain never stops
 * short of a key that stays in the index. */
static int index_insert(tg_arena_t *a, const uint8_t hash[32], uint32_t slot)
{
    uint32_t mask = a->hdr->index_slots - 1;
    uint64_t word = entry_word(hash, slot);
    tg_index_entry_t *free_entry = NULL;
    for (uint32_t i = 0, pos = (uint32_t)hash_start(hash) & mask; i <= mask; i++, pos = (pos + 1) & mask) {
        tg_index_entry_t *e = &a->index[pos];
        uint64_t w = atomic_load_explicit(&e->word, memory_order_relaxed);
        uint32_t s = word_slot(w);
        if (s == TG_INDEX_EMPTY) {
            if (free_entry == NULL)
                free_entry = e;
            break;
        }
        if (s == TG_INDEX_DELETED) {
            if (free_entry == NULL)
                free_entry = e;
            continue;
        }
        /* same tag: the same key when the slot it names holds this digest (the persister is the
         * only writer of key_hash, so it reads it without the seqlock) */
        if (w >> 32 == word >> 32 && s - 1 < a->hdr->max_accounts && memcmp(a->accounts[s - 1].key_hash, hash, 32) == 0) {
            atomic_store_explicit(&e->word, word, memory_order_release);
            return 0;
        }
    }
    if (free_entry == NULL)
        return -1;
    atomic_store_explicit(&free_entry->word, word, memory_order_release);
    return 0;
}

static void seq_begin(tg_account_t *acct)
{
    uint32_t s = atomic_load_explicit(&acct->seq, memory_order_relaxed);
    atomic_store_explicit(&acct->seq, s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
}

static void seq_end(tg_account_t *acct)
{
    atomic_thread_fence(memory_order_release);
    uint32_t s = atomic_load_explicit(&acct->seq, memory_order_relaxed);
    atomic_store_explicit(&acct->seq, s + 1, memory_order_release);
}

static uint32_t derived_flags(const tg_account_settings_t *st)
{
    uint32_t f = (st->flags & ~(TG_ACCT_LIMITED | TG_ACCT_POLICY | TG_ACCT_POLICY_BAD)) | TG_ACCT_USED;
    if (st->rpm || st->rph || st->rpd || st->tpm || st->tph || st->tpd)
        f |= TG_ACCT_LIMITED;
    return f;
}

int tg_account_publish(tg_arena_t *a, uint32_t slot, const tg_account_settings_t *st)
{
    if (slot >= a->hdr->max_accounts)
        return -1;
    tg_account_t *acct = &a->accounts[slot];
    int had_key = (acct->flags & TG_ACCT_USED) != 0;
    uint8_t old_hash[32];
    memcpy(old_hash, acct->key_hash, 32);
    tg_policy_ref_t old_ref = had_key ? acct->policy : (tg_policy_ref_t){0, 0, 0};
    tg_policy_ref_t ref = {0, 0, 0};
    uint32_t flags = derived_flags(st);
    char *err = NULL;
    if (tg_policy_account_set(a, slot, &st->src, &old_ref, &ref, &err) != 0) {
        tg_error("account %llu: %s; its calls are refused until its lists are fixed", (unsigned long long)st->id,
                 err ? err : "its lists cannot be compiled");
        free(err);
        flags |= TG_ACCT_POLICY_BAD;
    } else if (ref.gen) {
        flags |= TG_ACCT_POLICY;
    }

    seq_begin(acct);
    acct->flags = flags;
    acct->id = st->id;
    acct->parent_id = st->parent_id;
    acct->owner_id = st->owner_id;
    acct->level = st->level;
    acct->depth = st->depth;
    memcpy(acct->key_hash, st->key_hash, 32);
    memcpy(acct->name, st->name, TG_NAME_MAX);
    acct->name[TG_NAME_MAX - 1] = '\0';
    acct->up_id = st->up_id;
    acct->up_slot = st->up_id ? st->up_slot : TG_SLOT_NONE;
    acct->owner_slot = st->owner_slot;
    acct->gear = st->gear;
    acct->rpm = st->rpm;
    acct->rph = st->rph;
    acct->rpd = st->rpd;
    acct->tpm = st->tpm;
    acct->tph = st->tph;
    acct->tpd = st->tpd;
    acct->allow_levels = st->allow_levels;
    acct->rates_ppm = st->rates_ppm ? st->rates_ppm : 1000000u;
    acct->factor_ppm = st->factor_ppm ? st->factor_ppm : 1000000u;
    acct->hard_limit = st->hard_limit;
    acct->soft_limit = st->soft_limit;
    acct->policy = ref;
    seq_end(acct);
    tg_policy_account_release(a, &old_ref, &ref);

    if (had_key && memcmp(old_hash, st->key_hash, 32) != 0)
        index_remove(a, old_hash, slot);
    if (index_insert(a, st->key_hash, slot) != 0)
        return -1;
    uint32_t hw = atomic_load(&a->hdr->n_accounts_hw);
    while (hw < slot + 1 && !atomic_compare_exchange_weak(&a->hdr->n_accounts_hw, &hw, slot + 1))
        ;
    return 0;
}

void tg_account_unpublish(tg_arena_t *a, uint32_t slot)
{
    tg_account_t *acct = &a->accounts[slot];
    if (!(acct->flags & TG_ACCT_USED))
        return;
    index_remove(a, acct->key_hash, slot);
    tg_policy_ref_t old_ref = acct->policy;
    seq_begin(acct);
    acct->flags = 0;
    acct->id = 0;
    memset(acct->key_hash, 0, 32);
    acct->name[0] = '\0';
    memset(&acct->policy, 0, sizeof(acct->policy));
    seq_end(acct);
    tg_policy_account_release(a, &old_ref, NULL);
}

static void copy_out(const tg_account_t *acct, tg_account_settings_t *out)
{
    out->flags = acct->flags;
    out->id = acct->id;
    out->parent_id = acct->parent_id;
    out->owner_id = acct->owner_id;
    out->level = acct->level;
    out->depth = acct->depth;
    memcpy(out->key_hash, acct->key_hash, 32);
    memcpy(out->name, acct->name, TG_NAME_MAX);
    out->up_id = acct->up_id;
    out->up_slot = acct->up_slot;
    out->owner_slot = acct->owner_slot;
    out->gear = acct->gear;
    out->rpm = acct->rpm;
    out->rph = acct->rph;
    out->rpd = acct->rpd;
    out->tpm = acct->tpm;
    out->tph = acct->tph;
    out->tpd = acct->tpd;
    out->allow_levels = acct->allow_levels;
    out->rates_ppm = acct->rates_ppm;
    out->factor_ppm = acct->factor_ppm;
    out->hard_limit = acct->hard_limit;
    out->soft_limit = acct->soft_limit;
    out->policy = acct->policy;
}

int tg_account_read(const tg_arena_t *a, uint32_t slot, tg_account_settings_t *out)
{
    if (slot >= a->hdr->max_accounts)
        return -1;
    tg_account_t *acct = &a->accounts[slot];
    for (;;) {
        uint32_t s1 = atomic_load_explicit(&acct->seq, memory_order_acquire);
        if (s1 & 1)
            continue;
        copy_out(acct, out);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&acct->seq, memory_order_relaxed) == s1)
            break;
    }
    out->name[TG_NAME_MAX - 1] = '\0';
    memset(&out->src, 0, sizeof(out->src));
    return (out->flags & TG_ACCT_USED) ? 0 : -1;
}

int tg_account_read_limits(const tg_arena_t *a, uint32_t slot, tg_account_limits_t *out)
{
    if (slot >= a->hdr->max_accounts)
        return -1;
    tg_account_t *acct = &a->accounts[slot];
    for (;;) {
        uint32_t s1 = atomic_load_explicit(&acct->seq, memory_order_acquire);
        if (s1 & 1)
            continue;
        out->id = acct->id;
        out->up_id = acct->up_id;
        out->flags = acct->flags;
        out->up_slot = acct->up_slot;
        out->rpm = acct->rpm;
        out->rph = acct->rph;
        out->rpd = acct->rpd;
        out->tpm = acct->tpm;
        out->tph = acct->tph;
        out->tpd = acct->tpd;
        out->policy = acct->policy;
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&acct->seq, memory_order_relaxed) == s1)
            break;
    }
    return (out->flags & TG_ACCT_USED) ? 0 : -1;
}

/* 1 when slot SLOT is used and holds key HASH (a consistent read of just the key). */
static int key_confirmed(const tg_arena_t *a, uint32_t slot, const uint8_t hash[32])
{
    if (slot >= a->hdr->max_accounts)
        return 0;
    tg_account_t *acct = &a->accounts[slot];
    for (;;) {
        uint32_t s1 = atomic_load_explicit(&acct->seq, memory_order_acquire);
        if (s1 & 1)
            continue;
        int same = (acct->flags & TG_ACCT_USED) && memcmp(acct->key_hash, hash, 32) == 0;
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&acct->seq, memory_order_relaxed) == s1)
            return same;
    }
}

int64_t tg_account_lookup(const tg_arena_t *a, const uint8_t hash[32])
{
    uint32_t mask = a->hdr->index_slots - 1;
    uint64_t tag = entry_word(hash, 0) >> 32;
    for (uint32_t i = 0, pos = (uint32_t)hash_start(hash) & mask; i <= mask; i++, pos = (pos + 1) & mask) {
        uint64_t w = atomic_load_explicit(&a->index[pos].word, memory_order_acquire);
        uint32_t s = word_slot(w);
        if (s == TG_INDEX_EMPTY)
            return -1;
        if (s == TG_INDEX_DELETED || w >> 32 != tag)
            continue;
        /* the slot is the authority: an entry read while the persister rewrote it, or another
         * key with the same tag, fails here and the probe goes on */
        if (key_confirmed(a, s - 1, hash))
            return (int64_t)(s - 1);
    }
    return -1;
}

int64_t tg_account_find_id(const tg_arena_t *a, uint64_t id)
{
    uint32_t hw = atomic_load(&a->hdr->n_accounts_hw);
    for (uint32_t i = 0; i < hw; i++)
        if ((a->accounts[i].flags & TG_ACCT_USED) && a->accounts[i].id == id)
            return i;
    return -1;
}
