/* Upstream provider key slots in the arena: settings published by the persister under a
 * per-slot seqlock, health counters updated by workers with atomics. */
#ifndef TG_UPSTREAMS_H
#define TG_UPSTREAMS_H

#include "shm/arena-t.h"

typedef struct tg_upstream_settings {
    uint64_t id, owner_id;
    uint32_t flags; /* TG_UPSTREAM_* (USED implied) */
    int32_t level;
    int32_t protocol;
    char name[TG_NAME_MAX];
    char url[TG_URL_MAX];
    uint32_t sealed_len;
    uint8_t sealed[TG_SEALED_MAX];
} tg_upstream_settings_t;

/** Writes SETTINGS into slot SLOT (persister only). */
int tg_upstream_publish(tg_arena_t *a, uint32_t slot, const tg_upstream_settings_t *settings);
/** Clears slot SLOT (persister only). */
void tg_upstream_unpublish(tg_arena_t *a, uint32_t slot);
/** Consistent copy of slot SLOT; 0, or -1 if unused. */
int tg_upstream_read(const tg_arena_t *a, uint32_t slot, tg_upstream_settings_t *out);
/** Slots in use are below this bound. */
uint32_t tg_upstream_count(const tg_arena_t *a);

#endif
