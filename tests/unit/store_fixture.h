/* A fresh RocksDB store in a temporary directory of its own, for the unit tests of store/: as
 * cmocka fixtures, tg_test_store_setup opens one into *state (a fx_t: the directory and the open
 * store) and tg_test_store_teardown closes it and removes the directory; tg_test_store_reopen
 * closes and opens it again like a restarted persister. Static functions in a header: each test
 * binary includes it once. */
#ifndef TG_STORE_FIXTURE_H
#define TG_STORE_FIXTURE_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

#include "store/store-i.h"

typedef struct fx {
    char dir[64];
    tg_store_t *s;
} fx_t;

static int tg_test_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/** Opens F's store (closing it first when open); fails the test with the store's message. */
static inline void tg_test_store_reopen(fx_t *f)
{
    if (f->s)
        tg_store_close(f->s);
    f->s = NULL;
    char *err = NULL;
    if (tg_store_open(&f->s, f->dir, &err) != 0)
        fail_msg("open: %s", err ? err : "?");
}

/** A store in /tmp/tg_TAG_test_XXXXXX, into *STATE. */
static inline int tg_test_store_setup(void **state, const char *tag)
{
    fx_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/tg_%s_test_XXXXXX", tag);
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    tg_test_store_reopen(f);
    *state = f;
    return 0;
}

static inline int tg_test_store_teardown(void **state)
{
    fx_t *f = *state;
    if (f->s)
        tg_store_close(f->s);
    nftw(f->dir, tg_test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

#endif
