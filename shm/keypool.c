/* Key pool health and shared round-robin cursors (design in keypool.h). */
#include "shm/keypool.h"

#include <string.h>

#define PICK_LOCAL 64 /* candidates remembered in one pass; more need a second pass */

typedef struct key_view {
    uint32_t flags;
    int32_t level;
    int32_t protocol;
    uint64_t owner_id;
    uint64_t id;
} key_view_t;

/* Consistent copy of the few settings a pick needs. */
static int read_key(const tg_arena_t *a, uint32_t slot, key_view_t *out)
{
    const tg_upstream_t *u = &a->upstreams[slot];
    for (;;) {
        uint32_t s1 = atomic_load_explicit(&u->seq, memory_order_acquire);
        if (s1 & 1)
            continue;
        out->flags = u->flags;
        out->level = u->level;
        out->protocol = u->protocol;
        out->owner_id = u->owner_id;
        out->id = u->id;
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&u->seq, memory_order_relaxed) == s1)
            return (out->flags & TG_UPSTREAM_USED) ? 0 : -1;
    }
}

static int usable(tg_arena_t *a, uint32_t slot, uint64_t owner_id, int32_t level, uint32_t protocols, uint64_t now_ms,
                  const uint32_t *ex, size_t nex)
{
    key_view_t k;
    if (read_key(a, slot, &k) != 0 || !(k.flags & TG_UPSTREAM_ENABLED) || k.owner_id != owner_id ||
        (level >= 0 && k.level != level) || (protocols && !(protocols & (1u << (k.protocol & 31)))))
        return 0;
    tg_upstream_t *u = &a->upstreams[slot];
    if (atomic_load_explicit(&u->disabled, memory_order_relaxed) ||
        atomic_load_explicit(&u->sleep_until_ms, memory_order_relaxed) > now_ms)
        return 0;
    for (size_t i = 0; i < nex; i++)
        if (ex[i] == slot)
            return 0;
    return 1;
}

/* The cursor of pool (OWNER_ID, LEVEL), inserted when absent; NULL when the table is full. */
static _Atomic uint64_t *cursor_of(tg_arena_t *a, uint64_t owner_id, int32_t level)
{
    uint64_t key = (owner_id << 16) | (((uint64_t)(level < 0 ? 0xffff : level) + 1) & 0xffff);
    if (key == 0)
        key = 1;
    uint32_t mask = a->hdr->cursor_slots - 1;
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    for (uint32_t i = 0, pos = (uint32_t)(h >> 32) & mask; i <= mask; i++, pos = (pos + 1) & mask) {
        tg_rr_cursor_t *c = &a->cursors[pos];
        uint64_t k = atomic_load_explicit(&c->key, memory_order_acquire);
        if (k == key)
            return &c->next;
        if (k == 0) {
            uint64_t expect = 0;
            if (atomic_compare_exchange_strong(&c->key, &expect, key) || expect == key)
                return &c->next;
        }
    }
    return NULL;
}

int tg_keypool_pick(tg_arena_t *a, uint64_t owner_id, int32_t level, uint32_t protocols, uint64_t now_ms,
                    const uint32_t *exclude, size_t n_exclude, uint32_t *slot)
{
    uint32_t n = atomic_load_explicit(&a->hdr->n_upstreams_hw, memory_order_acquire);
    if (n > a->hdr->max_upstreams)
        n = a->hdr->max_upstreams;
    uint32_t cand[PICK_LOCAL];
    uint32_t k = 0;
    for (uint32_t s = 0; s < n; s++)
        if (usable(a, s, owner_id, level, protocols, now_ms, exclude, n_exclude)) {
            if (k < PICK_LOCAL)
                cand[k] = s;
            k++;
        }
    if (k == 0)
        return -1;
    static _Atomic uint64_t fallback_counter;
    _Atomic uint64_t *cur = cursor_of(a, owner_id, level);
    uint64_t ticket = cur ? atomic_fetch_add_explicit(cur, 1, memory_order_relaxed)
                          : atomic_fetch_add_explicit(&fallback_counter, 1, memory_order_relaxed) * 0x9e3779b97f4a7c15ull;
    uint32_t want = (uint32_t)(ticket % k);
    if (want < PICK_LOCAL && k <= PICK_LOCAL) {
        *slot = cand[want];
        return 0;
    }
    /* a big pool: find the want-th usable key again (it may have changed meanwhile: take the last seen) */
    uint32_t seen = 0, last = cand[0];
    for (uint32_t s = 0; s < n; s++)
        if (usable(a, s, owner_id, level, protocols, now_ms, exclude, n_exclude)) {
            last = s;
            if (seen++ == want)
                break;
        }
    *slot = last;
    return 0;
}

int tg_keypool_pin(tg_arena_t *a, uint64_t owner_id, int32_t level, uint32_t protocols, uint32_t *slot)
{
    uint32_t n = atomic_load_explicit(&a->hdr->n_upstreams_hw, memory_order_acquire);
    if (n > a->hdr->max_upstreams)
        n = a->hdr->max_upstreams;
    uint64_t best = UINT64_MAX;
    for (uint32_t s = 0; s < n; s++) {
        key_view_t k;
        if (read_key(a, s, &k) != 0 || !(k.flags & TG_UPSTREAM_ENABLED) || k.owner_id != owner_id ||
            (level >= 0 && k.level != level) || (protocols && !(protocols & (1u << (k.protocol & 31)))) ||
            atomic_load_explicit(&a->upstreams[s].disabled, memory_order_relaxed) || k.id >= best)
            continue;
        best = k.id;
        *slot = s;
    }
    return best == UINT64_MAX ? -1 : 0;
}

uint64_t tg_keypool_failed(tg_arena_t *a, uint32_t slot, int status, uint32_t retry_after_s, uint64_t now_ms)
{
    tg_upstream_t *u = &a->upstreams[slot];
    atomic_fetch_add_explicit(&u->failures, 1, memory_order_relaxed);
    uint32_t streak = atomic_fetch_add_explicit(&u->consecutive_failures, 1, memory_order_relaxed);
    if (status == 401 || status == 403) {
        tg_keypool_set_disabled(a, slot, 1);
        return 0;
    }
    uint64_t ms;
    if (status == 429) {
        ms = retry_after_s ? (uint64_t)retry_after_s * 1000u : 60000u;
    } else {
        ms = 30000ull << (streak < 5 ? streak : 5);
        if (ms > 600000u)
            ms = 600000u;
    }
    tg_keypool_sleep_until(a, slot, now_ms + ms);
    return ms;
}

void tg_keypool_succeeded(tg_arena_t *a, uint32_t slot)
{
    tg_upstream_t *u = &a->upstreams[slot];
    atomic_fetch_add_explicit(&u->requests, 1, memory_order_relaxed);
    if (atomic_load_explicit(&u->consecutive_failures, memory_order_relaxed))
        atomic_store_explicit(&u->consecutive_failures, 0, memory_order_relaxed);
}

void tg_keypool_sleep_until(tg_arena_t *a, uint32_t slot, uint64_t until_ms)
{
    atomic_store_explicit(&a->upstreams[slot].sleep_until_ms, until_ms, memory_order_relaxed);
}

void tg_keypool_set_disabled(tg_arena_t *a, uint32_t slot, int disabled)
{
    atomic_store_explicit(&a->upstreams[slot].disabled, disabled ? 1u : 0u, memory_order_relaxed);
}

void tg_keypool_begin(tg_arena_t *a, uint32_t slot)
{
    atomic_fetch_add_explicit(&a->upstreams[slot].inflight, 1, memory_order_relaxed);
}

void tg_keypool_end(tg_arena_t *a, uint32_t slot)
{
    atomic_fetch_sub_explicit(&a->upstreams[slot].inflight, 1, memory_order_relaxed);
}

void tg_keypool_reset(tg_arena_t *a, uint32_t slot)
{
    tg_upstream_t *u = &a->upstreams[slot];
    atomic_store(&u->sleep_until_ms, 0);
    atomic_store(&u->disabled, 0);
    atomic_store(&u->consecutive_failures, 0);
}
