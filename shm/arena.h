/* Creating, re-attaching and unmapping the shared-memory arena (layout in arena-t.h).
 * Lifecycle: the master calls tg_arena_open() before forking; children inherit the mapping. */
#ifndef TG_ARENA_H
#define TG_ARENA_H

#include "shm/arena-t.h"

#include <stddef.h>

typedef struct tg_arena_sizes {
    uint32_t max_accounts;
    uint32_t max_upstreams;
    uint32_t ring_slots; /* power of two */
    uint32_t lane_holds; /* reservations in flight per process (credit.h); 0 = TG_LANE_HOLDS_DEFAULT */
} tg_arena_sizes_t;

#define TG_LANE_HOLDS_DEFAULT 8192u

/** Maps PATH. An existing file is re-attached when its header matches SIZES and the layout
 * version; otherwise (absent, or mismatched) it is created anew and *created is set to 1.
 * On failure returns -1 and sets *err (malloc'd). */
int tg_arena_open(tg_arena_t *arena, const char *path, const tg_arena_sizes_t *sizes, int *created, char **err);
/** Unmaps and closes. */
void tg_arena_close(tg_arena_t *arena);
/** Bytes the arena file needs for SIZES. */
uint64_t tg_arena_bytes(const tg_arena_sizes_t *sizes);

#endif
