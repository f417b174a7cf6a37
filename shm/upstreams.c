/* Upstream key slots: seqlock-protected settings. */
#include "shm/upstreams.h"

#include <string.h>

#include "shm/keypool.h"

static void copy_settings_in(tg_upstream_t *u, const tg_upstream_settings_t *st)
{
    u->flags = st->flags | TG_UPSTREAM_USED;
    u->id = st->id;
    u->owner_id = st->owner_id;
    u->level = st->level;
    u->protocol = st->protocol;
    memcpy(u->name, st->name, TG_NAME_MAX);
    memcpy(u->url, st->url, TG_URL_MAX);
    u->sealed_len = st->sealed_len;
    memcpy(u->sealed, st->sealed, TG_SEALED_MAX);
}

static void copy_settings_out(const tg_upstream_t *u, tg_upstream_settings_t *st)
{
    st->flags = u->flags;
    st->id = u->id;
    st->owner_id = u->owner_id;
    st->level = u->level;
    st->protocol = u->protocol;
    memcpy(st->name, u->name, TG_NAME_MAX);
    memcpy(st->url, u->url, TG_URL_MAX);
    st->sealed_len = u->sealed_len;
    memcpy(st->sealed, u->sealed, TG_SEALED_MAX);
}

static void write_locked(tg_upstream_t *u, const tg_upstream_settings_t *st)
{
    uint32_t s = atomic_load_explicit(&u->seq, memory_order_relaxed);
    atomic_store_explicit(&u->seq, s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    if (st)
        copy_settings_in(u, st);
    else
        u->flags = 0;
    atomic_store_explicit(&u->seq, s + 2, memory_order_release);
}

int tg_upstream_publish(tg_arena_t *a, uint32_t slot, const tg_upstream_settings_t *st)
{
    if (slot >= a->hdr->max_upstreams || st->sealed_len > TG_SEALED_MAX)
        return -1;
    write_locked(&a->upstreams[slot], st);
    tg_keypool_reset(a, slot); /* published anew (an operator's change): its health starts afresh */
    uint32_t hw = atomic_load(&a->hdr->n_upstreams_hw);
    while (hw < slot + 1 && !atomic_compare_exchange_weak(&a->hdr->n_upstreams_hw, &hw, slot + 1))
        ;
    atomic_fetch_add(&a->hdr->settings_gen, 1);
    return 0;
}

void tg_upstream_unpublish(tg_arena_t *a, uint32_t slot)
{
    if (slot < a->hdr->max_upstreams) {
        write_locked(&a->upstreams[slot], NULL);
        atomic_fetch_add(&a->hdr->settings_gen, 1);
    }
}

int tg_upstream_read(const tg_arena_t *a, uint32_t slot, tg_upstream_settings_t *out)
{
    if (slot >= a->hdr->max_upstreams)
        return -1;
    const tg_upstream_t *u = &a->upstreams[slot];
    for (;;) {
        uint32_t s1 = atomic_load_explicit(&u->seq, memory_order_acquire);
        if (s1 & 1)
            continue;
        copy_settings_out(u, out);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&u->seq, memory_order_relaxed) == s1)
            break;
    }
    return (out->flags & TG_UPSTREAM_USED) ? 0 : -1;
}

uint32_t tg_upstream_count(const tg_arena_t *a)
{
    return atomic_load(&a->hdr->n_upstreams_hw);
}
