/* id → arena slot map (slotmap.h): linear probing with backward-shift deletion, so there are no
 * tombstones to clean up however often accounts come and go. */
#include "store/slotmap.h"

#include <stdlib.h>
#include <string.h>

static uint32_t id_hash(uint64_t id)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (uint32_t)id;
}

int tg_slotmap_init(tg_slotmap_t *m, uint32_t cap)
{
    memset(m, 0, sizeof(*m));
    uint32_t size = 16;
    while (size < 2 * (uint64_t)cap)
        size <<= 1;
    m->ids = calloc(cap ? cap : 1, sizeof(*m->ids));
    m->table = calloc(size, sizeof(*m->table));
    if (m->ids == NULL || m->table == NULL) {
        tg_slotmap_dispose(m);
        return -1;
    }
    m->cap = cap;
    m->mask = size - 1;
    return 0;
}

void tg_slotmap_dispose(tg_slotmap_t *m)
{
    free(m->ids);
    free(m->table);
    memset(m, 0, sizeof(*m));
}

void tg_slotmap_clear(tg_slotmap_t *m)
{
    memset(m->ids, 0, (size_t)m->cap * sizeof(*m->ids));
    memset(m->table, 0, ((size_t)m->mask + 1) * sizeof(*m->table));
    m->free_hint = 0;
    m->used = 0;
}

/* Table position holding ID, or of the empty entry where it would go. */
static uint32_t probe(const tg_slotmap_t *m, uint64_t id)
{
    uint32_t pos = id_hash(id) & m->mask;
    while (m->table[pos] != 0 && m->ids[m->table[pos] - 1] != id)
        pos = (pos + 1) & m->mask;
    return pos;
}

int64_t tg_slotmap_find(const tg_slotmap_t *m, uint64_t id)
{
    if (id == 0)
        return -1;
    uint32_t e = m->table[probe(m, id)];
    return e ? (int64_t)e - 1 : -1;
}

int tg_slotmap_set(tg_slotmap_t *m, uint32_t slot, uint64_t id)
{
    if (id == 0 || slot >= m->cap || m->ids[slot] != 0)
        return -1;
    uint32_t pos = probe(m, id);
    if (m->table[pos] != 0)
        return -1;
    m->ids[slot] = id;
    m->table[pos] = slot + 1;
    m->used++;
    return 0;
}

int64_t tg_slotmap_assign(tg_slotmap_t *m, uint64_t id)
{
    int64_t have = tg_slotmap_find(m, id);
    if (have >= 0 || id == 0)
        return have;
    while (m->free_hint < m->cap && m->ids[m->free_hint] != 0)
        m->free_hint++;
    if (m->free_hint >= m->cap)
        return -1;
    uint32_t slot = m->free_hint;
    if (tg_slotmap_set(m, slot, id) != 0)
        return -1;
    return slot;
}

void tg_slotmap_remove(tg_slotmap_t *m, uint64_t id)
{
    if (id == 0)
        return;
    uint32_t pos = probe(m, id);
    if (m->table[pos] == 0)
        return;
    uint32_t slot = m->table[pos] - 1;
    m->ids[slot] = 0;
    if (slot < m->free_hint)
        m->free_hint = slot;
    m->used--;
    /* Backward-shift: pull later entries of the cluster into the hole when their home allows it. */
    uint32_t hole = pos;
    for (uint32_t next = (hole + 1) & m->mask; m->table[next] != 0; next = (next + 1) & m->mask) {
        uint32_t home = id_hash(m->ids[m->table[next] - 1]) & m->mask;
        /* Movable when home is not cyclically within (hole, next]. */
        if (((next - home) & m->mask) >= ((next - hole) & m->mask)) {
            m->table[hole] = m->table[next];
            hole = next;
        }
    }
    m->table[hole] = 0;
}
