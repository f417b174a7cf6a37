/* A fresh arena in a temporary directory of its own, for the unit tests of shm/ and worker/:
 * create it with tg_test_arena_open (sizes of the test's choosing), re-attach it like a restarted
 * process with tg_test_arena_reopen, and remove it, file and directory, with tg_test_arena_close.
 * Tests that open arenas themselves take only the directory (tg_test_arena_dir and
 * tg_test_arena_remove). Static functions in a header: each test binary includes it once. */
#ifndef TG_ARENA_FIXTURE_H
#define TG_ARENA_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "shm/arena.h"

typedef struct tg_test_arena {
    char dir[64];
    char path[128];       /* DIR/arena */
    tg_arena_sizes_t sizes; /* as last opened */
    tg_arena_t a;
} tg_test_arena_t;

/** Creates the directory /tmp/tg_TAG_test_XXXXXX and sets T's dir and path (no arena yet). 0 or -1. */
static inline int tg_test_arena_dir(tg_test_arena_t *t, const char *tag)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/tg_%s_test_XXXXXX", tag);
    if (!mkdtemp(t->dir))
        return -1;
    snprintf(t->path, sizeof(t->path), "%s/arena", t->dir);
    return 0;
}

/* Opens T's arena file with T's sizes; *CREATED as tg_arena_open reports it. */
static inline int tg_test_arena_attach(tg_test_arena_t *t, int *created)
{
    char *err = NULL;
    if (tg_arena_open(&t->a, t->path, &t->sizes, created, &err) != 0) {
        fprintf(stderr, "tg_arena_open: %s\n", err ? err : "(no message)");
        free(err);
        return -1;
    }
    return 0;
}

/** Creates /tmp/tg_TAG_test_XXXXXX/arena with SIZES into T. 0, or -1 (the reason on stderr). */
static inline int tg_test_arena_open(tg_test_arena_t *t, const char *tag, tg_arena_sizes_t sizes)
{
    int created;
    if (tg_test_arena_dir(t, tag) != 0)
        return -1;
    t->sizes = sizes;
    return tg_test_arena_attach(t, &created);
}

/** Unmaps the arena and attaches its file again with the same sizes, as a restarted process
 * would. 0 with *CREATED (0 when the contents were kept), or -1. */
static inline int tg_test_arena_reopen(tg_test_arena_t *t, int *created)
{
    tg_arena_close(&t->a);
    return tg_test_arena_attach(t, created);
}

/** Removes the arena file and the directory (the arena must not be mapped by T). */
static inline void tg_test_arena_remove(tg_test_arena_t *t)
{
    unlink(t->path);
    rmdir(t->dir);
}

/** Unmaps the arena and removes its file and directory. */
static inline void tg_test_arena_close(tg_test_arena_t *t)
{
    tg_arena_close(&t->a);
    tg_test_arena_remove(t);
}

#endif
