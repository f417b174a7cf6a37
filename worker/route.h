/* Choosing an upstream key for a request: the owner's pool at the wanted level, round-robin,
 * skipping disabled and sleeping keys; and opening the key's sealed secret (cached per slot). */
#ifndef TG_ROUTE_H
#define TG_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "shm/upstreams.h"

typedef struct tg_route {
    uint32_t slot;
    tg_upstream_settings_t settings;
    const char *secret; /* plaintext, owned by the worker's cache */
} tg_route_t;

/** Picks a key of OWNER_ID at LEVEL (LEVEL < 0: any level) whose protocol is in PROTOCOLS (a bit
 * mask of 1 << tg_protocol_t), skipping the slots in EXCLUDE[0..N_EXCLUDE); or, when PINNED, the
 * pool's pinned key (tg_keypool_pin). Returns 0 and fills *out, or -1 when no usable key is left
 * there. */
int tg_route_pick(uint64_t owner_id, int32_t level, uint32_t protocols, const uint32_t *exclude, size_t n_exclude,
                  int pinned, tg_route_t *out);
/** Puts a key to sleep for MS milliseconds. */
void tg_route_sleep(uint32_t slot, uint64_t ms);
/** Records an upstream failure of the key in SLOT and puts it to sleep (api-compat 7.4): on 429
 * for RETRY_AFTER_S seconds or 60 s; on 5xx or a connection failure (STATUS 0) for 30 s doubling
 * on repeats up to 10 min; on 401/403 the key is disabled until the persister publishes it again
 * (shm/keypool.h). */
void tg_route_failed(uint32_t slot, int status, uint32_t retry_after_s);
/** Records a good answer: the key's failure streak ends. */
void tg_route_succeeded(uint32_t slot);

#endif
