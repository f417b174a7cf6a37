/* A fresh arena in a temporary directory of its own, for the unit tests of shm/ and worker/:
 * create it with tg_test_arena_open (sizes of the test's choosing), re-attach it like a restarted
 * process with tg_test_arena_reopen, and remove it, file and directory, with tg_test_arena_close.
 * Tests that open arenas themselves take only the directory (tg_test_arena_dir and
 * tg_test_arena_remove). As cmocka fixtures: tg_test_arena_setup allocates one into *state and
 * tg_test_arena_teardown frees it. tg_test_arena_child forks a process that works in the arena
 * and then waits to be killed (lanes and holds of a dead process). Static functions in a header:
 * each test binary includes it once. */
#ifndef TG_ARENA_FIXTURE_H
#define TG_ARENA_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
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

/** cmocka set-up body: allocates a fixture, opens its arena (as tg_test_arena_open) and stores it
 * in *STATE. 0, or -1. */
static inline int tg_test_arena_setup(void **state, const char *tag, tg_arena_sizes_t sizes)
{
    tg_test_arena_t *t = calloc(1, sizeof(*t));
    if (!t)
        return -1;
    if (tg_test_arena_open(t, tag, sizes) != 0) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

/** cmocka teardown for tg_test_arena_setup: closes and removes the arena and frees the fixture. */
static inline int tg_test_arena_teardown(void **state)
{
    tg_test_arena_t *t = *state;
    tg_test_arena_close(t);
    free(t);
    return 0;
}

/** Forks a process that runs BODY on T (reservations, say; it may _exit on failure) and then waits
 * to be killed. Returns its pid once BODY is done, or -1 when the fork or the pipe failed or the
 * child died before reporting. */
static inline pid_t tg_test_arena_child(tg_test_arena_t *t, void (*body)(tg_test_arena_t *))
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        body(t);
        if (write(fds[1], "x", 1) != 1)
            _exit(4);
        for (;;)
            pause();
    }
    close(fds[1]);
    char x;
    ssize_t n = read(fds[0], &x, 1);
    close(fds[0]);
    if (n == 1)
        return pid;
    waitpid(pid, NULL, 0);
    return -1;
}

#endif
