/* A bounded free list of fixed-size objects for one event loop (no locking): objects that live
 * from one request to its end (and sometimes beyond it) are reused instead of going to malloc and
 * free every request. An object handed out is zeroed, as calloc gave it. */
#ifndef TG_WORKER_FREELIST_H
#define TG_WORKER_FREELIST_H

#include <stdlib.h>
#include <string.h>

typedef struct tg_freelist {
    size_t size; /* bytes of one object (at least a pointer) */
    size_t max;  /* objects kept at most; the rest are freed */
    size_t n;    /* objects kept now */
    void *head;  /* the first kept object; each holds the next in its first bytes */
} tg_freelist_t;

#define TG_FREELIST_INIT(type, max) {sizeof(type), (max), 0, NULL}

/** A zeroed object of FL's size (a kept one, else from calloc), or NULL when out of memory. */
static inline void *tg_freelist_get(tg_freelist_t *fl)
{
    void *p = fl->head;
    if (!p)
        return calloc(1, fl->size);
    memcpy(&fl->head, p, sizeof(void *));
    fl->n--;
    memset(p, 0, fl->size);
    return p;
}

/** Gives P (from tg_freelist_get) back: kept while FL has room, else freed. */
static inline void tg_freelist_put(tg_freelist_t *fl, void *p)
{
    if (fl->n >= fl->max) {
        free(p);
        return;
    }
    memcpy(p, &fl->head, sizeof(void *));
    fl->head = p;
    fl->n++;
}

#endif
