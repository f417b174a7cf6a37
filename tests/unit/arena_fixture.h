/* A fresh arena in a temporary directory of its own, for the unit tests of shm/: create it with
 * tg_test_arena_open (sizes of the test's choosing) and remove it, file and directory, with
 * tg_test_arena_close. Static functions in a header: each test binary includes it once. */
#ifndef TG_ARENA_FIXTURE_H
#define TG_ARENA_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "shm/arena.h"

typedef struct tg_test_arena {
    char dir[64];
    char path[128];
    tg_arena_t a;
} tg_test_arena_t;

/** Creates /tmp/tg_TAG_test_XXXXXX/arena with SIZES into T. 0, or -1 (the reason on stderr). */
static inline int tg_test_arena_open(tg_test_arena_t *t, const char *tag, tg_arena_sizes_t sizes)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/tg_%s_test_XXXXXX", tag);
    if (!mkdtemp(t->dir))
        return -1;
    snprintf(t->path, sizeof(t->path), "%s/arena", t->dir);
    char *err = NULL;
    int created;
    if (tg_arena_open(&t->a, t->path, &sizes, &created, &err) != 0) {
        fprintf(stderr, "tg_arena_open: %s\n", err ? err : "(no message)");
        free(err);
        return -1;
    }
    return 0;
}

/** Unmaps the arena and removes its file and directory. */
static inline void tg_test_arena_close(tg_test_arena_t *t)
{
    tg_arena_close(&t->a);
    unlink(t->path);
    rmdir(t->dir);
}

#endif
