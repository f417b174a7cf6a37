/* Choosing an upstream key for a request: the owner's pool at the wanted level, round-robin,
 * skipping disabled and sleeping keys; and opening the key's sealed secret (cached per slot). */
#ifndef TG_ROUTE_H
#define TG_ROUTE_H

#include <stdint.h>

#include "shm/upstreams.h"

typedef struct tg_route {
    uint32_t slot;
    tg_upstream_settings_t settings;
    const char *secret; /* plaintext, owned by the worker's cache */
} tg_route_t;

/** Picks a key of OWNER_ID at LEVEL (any level of the owner when that level has none usable).
 * Returns 0 and fills *out, or -1 when the owner has no usable key. */
int tg_route_pick(uint64_t owner_id, int32_t level, tg_route_t *out);
/** Puts a key to sleep for MS milliseconds (upstream 429/5xx/connect failure). */
void tg_route_sleep(uint32_t slot, uint64_t ms);

#endif
