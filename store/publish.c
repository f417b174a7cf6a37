/* Publishing the database into the arena at persister start: every account (settings, key index,
 * balance) and every upstream key (settings, sealed secret), then hdr->persister_ready = 1.
 *
 * Slots. Workers address accounts and keys by arena slot, so an id must keep its slot across a
 * persister restart while workers keep running. Publishing therefore first reads which id each
 * used slot holds (the store's slot maps are rebuilt from the arena, not from the database), gives
 * every database record its existing slot or the lowest free one, and finally frees the slots
 * whose id is no longer in the database. Accounts and upstream keys are two instances of one
 * generic region walk below. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "shm/accounts.h"
#include "shm/policy.h"
#include "shm/upstreams.h"
#include "store/account_rec.h"
#include "store/expiry.h"
#include "store/record.h"
#include "store/store-i.h"
#include "store/upstream_rec.h"

/* One arena region holding database records of one column family. */
typedef struct region {
    const char *what;
    tg_cf_t cf;
    size_t map_offset; /* offsetof(tg_store_t, the region's slot map) */
    uint32_t (*capacity)(const tg_arena_t *a);
    uint64_t (*id_at)(const tg_arena_t *a, uint32_t slot); /* 0 when the slot is unused */
    int (*publish)(tg_arena_t *a, const tg_slotmap_t *map, uint32_t slot, const json_t *rec);
    void (*unpublish)(tg_arena_t *a, uint32_t slot);
    void (*loaded)(tg_store_t *s, const json_t *rec); /* every readable record, published or not (may be NULL) */
} region_t;

static uint32_t account_capacity(const tg_arena_t *a)
{
    return a->hdr->max_accounts;
}

static uint64_t account_id_at(const tg_arena_t *a, uint32_t slot)
{
    const tg_account_t *acct = &a->accounts[slot];
    return (acct->flags & TG_ACCT_USED) ? acct->id : 0;
}

/* The quota engine's links of REC (account_rec.h): the nearest ancestor in the arena, and the owner. */
static void links_from_map(const tg_slotmap_t *map, const json_t *rec, tg_account_settings_t *st)
{
    st->up_id = 0;
    st->up_slot = TG_SLOT_NONE;
    st->owner_slot = TG_SLOT_NONE;
    uint64_t self = tg_rec_u64(rec, "ID", 0);
    if (self != TG_ROOT_ID) {
        /* DNA ".1.42.57." lists the ancestors from root down to the account itself: the nearest
         * one that is still in the arena governs (a deleted parent's children stay governed by
         * the higher ancestors, api-compat 1.1). Without a DNA, ParentID. */
        uint64_t ids[64];
        size_t n = 0;
        for (const char *p = tg_rec_str(rec, "DNA", ""); *p && n < 64;) {
            if (*p < '0' || *p > '9') {
                p++;
                continue;
            }
            uint64_t v = 0;
            while (*p >= '0' && *p <= '9')
                v = v * 10 + (uint64_t)(*p++ - '0');
            ids[n++] = v;
        }
        if (n == 0 || ids[n - 1] != self) { /* an ancestors-only DNA */
            if (n == 64)
                n--;
            ids[n++] = self;
        }
        if (n == 1) { /* no DNA: the parent */
            ids[0] = tg_rec_u64(rec, "ParentID", 0);
            ids[1] = self;
            n = 2;
        }
        for (size_t i = n - 1; i-- > 0;) {
            int64_t slot = ids[i] ? tg_slotmap_find(map, ids[i]) : -1;
            if (slot >= 0) {
                st->up_id = ids[i];
                st->up_slot = (uint32_t)slot;
                break;
            }
        }
    }
    int64_t os = st->owner_id ? tg_slotmap_find(map, st->owner_id) : -1;
    st->owner_slot = os >= 0 ? (uint32_t)os : TG_SLOT_NONE;
}

void tg_store_account_links(tg_store_t *s, const json_t *rec, tg_account_settings_t *st)
{
    links_from_map(&s->acct_slots, rec, st);
}

static int account_publish(tg_arena_t *a, const tg_slotmap_t *map, uint32_t slot, const json_t *rec)
{
    tg_account_settings_t st;
    if (tg_acctrec_settings(rec, &st) != 0)
        return -1;
    links_from_map(map, rec, &st);
    if (tg_account_publish(a, slot, &st) != 0)
        return -1;
    atomic_store(&a->accounts[slot].balance, tg_acctrec_arena_balance(rec));
    return 0;
}

static uint32_t upstream_capacity(const tg_arena_t *a)
{
    return a->hdr->max_upstreams;
}

static uint64_t upstream_id_at(const tg_arena_t *a, uint32_t slot)
{
    const tg_upstream_t *u = &a->upstreams[slot];
    return (u->flags & TG_UPSTREAM_USED) ? u->id : 0;
}

static int upstream_publish(tg_arena_t *a, const tg_slotmap_t *map, uint32_t slot, const json_t *rec)
{
    (void)map;
    tg_upstream_settings_t st;
    int rc = tg_uprec_settings(rec, &st) == 0 ? tg_upstream_publish(a, slot, &st) : -1;
    explicit_bzero(st.sealed, sizeof(st.sealed));
    return rc;
}

static const region_t g_accounts = {
    .what = "account",
    .cf = TG_CF_ACCOUNTS,
    .map_offset = offsetof(tg_store_t, acct_slots),
    .capacity = account_capacity,
    .id_at = account_id_at,
    .publish = account_publish,
    .unpublish = tg_account_unpublish,
    .loaded = tg_expiry_note, /* the card-expiry list is filled from the same walk: one parse per record */
};
static const region_t g_upstreams = {
    .what = "upstream key",
    .cf = TG_CF_UPSTREAMS,
    .map_offset = offsetof(tg_store_t, up_slots),
    .capacity = upstream_capacity,
    .id_at = upstream_id_at,
    .publish = upstream_publish,
    .unpublish = tg_upstream_unpublish,
};

typedef struct walk {
    tg_store_t *s;
    const region_t *r;
    tg_arena_t *arena;
    tg_slotmap_t *map;
    uint8_t *seen; /* per slot: published from the database in this walk */
    size_t published, failed;
} walk_t;

static int publish_record(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    walk_t *w = ud;
    uint64_t id = klen == 8 ? tg_be64_get((const uint8_t *)key) : 0;
    json_t *rec = id ? json_loadb(val, vlen, 0, NULL) : NULL;
    int64_t slot = -1;
    int readable = tg_rec_id_matches(rec, id);
    if (readable && w->r->loaded)
        w->r->loaded(w->s, rec);
    if (!readable) {
        tg_error("publish: %s record %llu is unreadable; skipped", w->r->what, (unsigned long long)id);
    } else if ((slot = tg_slotmap_assign(w->map, id)) < 0) {
        tg_error("publish: no free arena slot for %s %llu (the arena holds %u; raise the limit in the config)", w->r->what,
                 (unsigned long long)id, w->map->cap);
    } else if (w->r->publish(w->arena, w->map, (uint32_t)slot, rec) != 0) {
        tg_error("publish: %s %llu could not be published", w->r->what, (unsigned long long)id);
        tg_slotmap_remove(w->map, id);
        w->r->unpublish(w->arena, (uint32_t)slot);
        slot = -1;
    } else {
        w->seen[slot] = 1;
        w->published++;
    }
    if (slot < 0)
        w->failed++;
    json_decref(rec);
    return 0;
}

static int publish_region(tg_store_t *s, tg_arena_t *arena, const region_t *r)
{
    tg_slotmap_t *map = (tg_slotmap_t *)((char *)s + r->map_offset);
    uint32_t cap = r->capacity(arena);
    if (map->cap != cap) {
        tg_slotmap_dispose(map);
        if (tg_slotmap_init(map, cap) != 0) {
            tg_error("publish: out of memory");
            return -1;
        }
    }
    tg_slotmap_clear(map);
    /* Adopt the slots the arena already has (a restart keeps every id where workers see it). */
    for (uint32_t slot = 0; slot < cap; slot++) {
        uint64_t id = r->id_at(arena, slot);
        if (id != 0 && tg_slotmap_set(map, slot, id) != 0)
            r->unpublish(arena, slot); /* a duplicate of an id already adopted */
    }
    walk_t w = {s, r, arena, map, calloc(cap ? cap : 1, 1), 0, 0};
    if (w.seen == NULL) {
        tg_error("publish: out of memory");
        return -1;
    }
    int rc = tg_store_each(s, r->cf, publish_record, &w);
    /* Free the slots of ids the database no longer has. */
    size_t freed = 0;
    for (uint32_t slot = 0; rc == 0 && slot < cap; slot++) {
        if (map->ids[slot] != 0 && !w.seen[slot]) {
            r->unpublish(arena, slot);
            tg_slotmap_remove(map, map->ids[slot]);
            freed++;
        }
    }
    free(w.seen);
    tg_info("publish: %zu %s(s) published, %zu stale slot(s) freed%s", w.published, r->what, freed,
            w.failed ? ", some records failed (see above)" : "");
    return rc == 0 && w.failed == 0 ? 0 : -1;
}

int tg_store_publish_all(tg_store_t *s, tg_arena_t *arena)
{
    int rc = publish_region(s, arena, &g_accounts);
    if (publish_region(s, arena, &g_upstreams) != 0)
        rc = -1;
    s->slots_ready = 1;
    /* the owner-level policy snapshot: the built-in price table (conf/prices.yaml) and whatever
     * owner configs the persister has set (tg_policy_set_owner) */
    char *err = NULL;
    if (tg_policy_publish(arena, &err) != 0) {
        tg_error("publish: the policy snapshot: %s", err ? err : "failed");
        free(err);
        rc = -1;
    }
    atomic_fetch_add(&arena->hdr->settings_gen, 1);
    atomic_store(&arena->hdr->persister_ready, 1);
    return rc;
}
