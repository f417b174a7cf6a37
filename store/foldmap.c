/* Per-batch fold map (foldmap.h): open addressing on an FNV-1a hash of the key bytes. */
#include "store/foldmap.h"

#include <stdlib.h>
#include <string.h>

static uint32_t key_hash(const uint8_t *k, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ k[i]) * 16777619u;
    return h;
}

int tg_foldmap_init(tg_foldmap_t *m, uint32_t cap)
{
    memset(m, 0, sizeof(*m));
    uint32_t size = 16;
    while (size < 2 * (uint64_t)cap)
        size <<= 1;
    m->entries = malloc((size_t)(cap ? cap : 1) * sizeof(*m->entries));
    m->table = calloc(size, sizeof(*m->table));
    if (m->entries == NULL || m->table == NULL) {
        tg_foldmap_dispose(m);
        return -1;
    }
    m->cap = cap;
    m->mask = size - 1;
    return 0;
}

void tg_foldmap_dispose(tg_foldmap_t *m)
{
    free(m->entries);
    free(m->table);
    memset(m, 0, sizeof(*m));
}

void tg_foldmap_clear(tg_foldmap_t *m)
{
    if (m->n)
        memset(m->table, 0, ((size_t)m->mask + 1) * sizeof(*m->table));
    m->n = 0;
}

const tg_fold_entry_t *tg_foldmap_find(const tg_foldmap_t *m, const uint8_t *key, size_t key_len)
{
    if (key_len > TG_FOLD_KEY_MAX || m->table == NULL)
        return NULL;
    for (uint32_t pos = key_hash(key, key_len) & m->mask; m->table[pos] != 0; pos = (pos + 1) & m->mask) {
        const tg_fold_entry_t *e = &m->entries[m->table[pos] - 1];
        if (e->key_len == key_len && memcmp(e->key, key, key_len) == 0)
            return e;
    }
    return NULL;
}

int tg_foldmap_add(tg_foldmap_t *m, const uint8_t *key, size_t key_len, const tg_rollup_t *delta)
{
    if (key_len > TG_FOLD_KEY_MAX)
        return -1;
    uint32_t pos = key_hash(key, key_len) & m->mask;
    for (; m->table[pos] != 0; pos = (pos + 1) & m->mask) {
        tg_fold_entry_t *e = &m->entries[m->table[pos] - 1];
        if (e->key_len == key_len && memcmp(e->key, key, key_len) == 0) {
            tg_rollup_add(&e->sum, delta);
            return 0;
        }
    }
    if (m->n >= m->cap)
        return -1;
    tg_fold_entry_t *e = &m->entries[m->n];
    memcpy(e->key, key, key_len);
    e->key_len = (uint32_t)key_len;
    e->sum = *delta;
    m->table[pos] = ++m->n;
    return 0;
}
