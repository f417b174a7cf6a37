/* The persister's private map from a record id (account or upstream key) to the arena slot that
 * holds it. Arena slots are the workers' view; ids are the database's. The map lives only in the
 * persister, is rebuilt from the arena at start (so an id keeps the slot it already had and
 * workers never see it move), and hands out free slots to new ids. */
#ifndef TG_STORE_SLOTMAP_H
#define TG_STORE_SLOTMAP_H

#include <stdint.h>

typedef struct tg_slotmap {
    uint32_t cap;       /* number of arena slots */
    uint64_t *ids;      /* slot → id, 0 = free */
    uint32_t *table;    /* open addressing on id: slot + 1, 0 = empty */
    uint32_t mask;      /* table size - 1 */
    uint32_t free_hint; /* lowest slot that may be free */
    uint32_t used;
} tg_slotmap_t;

/** Sizes the map for CAP slots, all free. 0, or -1 when out of memory. */
int tg_slotmap_init(tg_slotmap_t *m, uint32_t cap);
void tg_slotmap_dispose(tg_slotmap_t *m);
/** Empties the map. */
void tg_slotmap_clear(tg_slotmap_t *m);
/** Slot of ID, or -1. */
int64_t tg_slotmap_find(const tg_slotmap_t *m, uint64_t id);
/** Records that SLOT (free) holds ID (not yet mapped). 0, or -1 if the slot is taken or the id known. */
int tg_slotmap_set(tg_slotmap_t *m, uint32_t slot, uint64_t id);
/** Slot of ID, giving it the lowest free slot when it has none. -1 when every slot is taken. */
int64_t tg_slotmap_assign(tg_slotmap_t *m, uint64_t id);
/** Forgets ID and frees its slot. */
void tg_slotmap_remove(tg_slotmap_t *m, uint64_t id);

#endif
