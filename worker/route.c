/* Upstream key choice over the arena's key slots. */
#include "worker/route.h"

#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/seal.h"
#include "worker/worker.h"

static const char *open_secret(uint32_t slot, const tg_upstream_settings_t *st)
{
    tg_secret_cache_t *c = &tg_w->secrets[slot];
    uint32_t seq = atomic_load_explicit(&tg_w->arena->upstreams[slot].seq, memory_order_acquire);
    if (c->seq == seq && c->secret[0])
        return c->secret;
    if (tg_unseal(tg_w->args->master_key, st->sealed, st->sealed_len, c->secret, sizeof(c->secret)) < 0) {
        tg_error("upstream key %llu: cannot open its sealed secret (wrong master key?)", (unsigned long long)st->id);
        c->secret[0] = '\0';
        return NULL;
    }
    c->seq = seq;
    return c->secret;
}

static int usable(const tg_upstream_settings_t *st, uint64_t owner_id, uint32_t protocols, uint32_t slot, uint64_t now)
{
    return (st->flags & TG_UPSTREAM_ENABLED) && st->owner_id == owner_id && (protocols & (1u << st->protocol)) &&
           atomic_load_explicit(&tg_w->arena->upstreams[slot].sleep_until_ms, memory_order_relaxed) <= now;
}

int tg_route_pick(uint64_t owner_id, int32_t level, uint32_t protocols, tg_route_t *out)
{
    uint32_t n = tg_upstream_count(tg_w->arena);
    uint64_t now = tg_now_ms();
    int64_t fallback = -1;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t slot = (tg_w->rr_cursor + i) % n;
        tg_upstream_settings_t st;
        if (tg_upstream_read(tg_w->arena, slot, &st) != 0 || !usable(&st, owner_id, protocols, slot, now))
            continue;
        if (st.level != level) {
            if (fallback < 0)
                fallback = slot;
            continue;
        }
        tg_w->rr_cursor = slot + 1;
        out->slot = slot;
        out->settings = st;
        return (out->secret = open_secret(slot, &out->settings)) ? 0 : -1;
    }
    if (fallback < 0)
        return -1;
    out->slot = (uint32_t)fallback;
    if (tg_upstream_read(tg_w->arena, out->slot, &out->settings) != 0)
        return -1;
    tg_w->rr_cursor = out->slot + 1;
    return (out->secret = open_secret(out->slot, &out->settings)) ? 0 : -1;
}

void tg_route_sleep(uint32_t slot, uint64_t ms)
{
    atomic_store_explicit(&tg_w->arena->upstreams[slot].sleep_until_ms, tg_now_ms() + ms, memory_order_relaxed);
}

void tg_route_failed(uint32_t slot, int status, uint32_t retry_after_s)
{
    tg_upstream_t *u = &tg_w->arena->upstreams[slot];
    atomic_fetch_add_explicit(&u->failures, 1, memory_order_relaxed);
    uint32_t streak = atomic_fetch_add_explicit(&u->consecutive_failures, 1, memory_order_relaxed);
    uint64_t ms;
    if (status == 429) {
        ms = retry_after_s ? (uint64_t)retry_after_s * 1000u : 60000u;
    } else if (status == 401 || status == 403) {
        ms = 600000u;
        tg_warn("upstream key %llu was refused by its provider (%d); resting it for 10 minutes",
                (unsigned long long)u->id, status);
    } else {
        ms = 30000u << (streak < 5 ? streak : 5);
        if (ms > 600000u)
            ms = 600000u;
    }
    tg_route_sleep(slot, ms);
}

void tg_route_succeeded(uint32_t slot)
{
    tg_upstream_t *u = &tg_w->arena->upstreams[slot];
    atomic_fetch_add_explicit(&u->requests, 1, memory_order_relaxed);
    if (atomic_load_explicit(&u->consecutive_failures, memory_order_relaxed))
        atomic_store_explicit(&u->consecutive_failures, 0, memory_order_relaxed);
}
