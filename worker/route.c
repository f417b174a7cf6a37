/* Upstream key choice over the arena's key slots. */
#include "worker/route.h"

#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/seal.h"
#include "shm/keypool.h"
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

int tg_route_pick(uint64_t owner_id, int32_t level, uint32_t protocols, const uint32_t *exclude, size_t n_exclude,
                  int pinned, tg_route_t *out)
{
    /* the pool's shared round-robin cursor, or its pinned key (shm/keypool.h) */
    uint32_t slot;
    if (pinned ? tg_keypool_pin(tg_w->arena, owner_id, level, protocols, &slot) != 0
               : tg_keypool_pick(tg_w->arena, owner_id, level, protocols, tg_now_ms(), exclude, n_exclude, &slot) != 0)
        return -1;
    out->slot = slot;
    if (tg_upstream_read(tg_w->arena, slot, &out->settings) != 0)
        return -1;
    return (out->secret = open_secret(slot, &out->settings)) ? 0 : -1;
}

void tg_route_sleep(uint32_t slot, uint64_t ms)
{
    tg_keypool_sleep_until(tg_w->arena, slot, tg_now_ms() + ms);
}

void tg_route_failed(uint32_t slot, int status, uint32_t retry_after_s)
{
    if (tg_keypool_failed(tg_w->arena, slot, status, retry_after_s, tg_now_ms()) == 0)
        tg_warn("upstream key %llu was refused by its provider (%d); disabled until it is published again",
                (unsigned long long)tg_w->arena->upstreams[slot].id, status);
}

void tg_route_succeeded(uint32_t slot)
{
    tg_keypool_succeeded(tg_w->arena, slot);
}
