/* tests/unit/test_keypool.c: key pool picks (fair round-robin per (owner, level) shared across
 * processes, sleeping and disabled keys skipped, protocols, exclusions), the pinned key, and the
 * sleep rules (shm/keypool.c). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "arena_fixture.h"

#include "shm/arena.h"
#include "shm/keypool.h"
#include "shm/upstreams.h"

typedef tg_test_arena_t fixture_t; /* tests/unit/arena_fixture.h */

/* Keys: slots 0-2 owner 1 level 1 (openai, openai, anthropic), 3 owner 1 level 2, 4 owner 2
 * level 1, 5 unused, 6 owner 1 level 1 disabled by the operator. */
static int setup(void **state)
{
    if (tg_test_arena_setup(state, "keypool", (tg_arena_sizes_t){16, 16, 1024}) != 0)
        return -1;
    fixture_t *f = *state;
    struct {
        uint64_t owner;
        int level, proto, enabled;
    } keys[] = {{1, 1, 0, 1}, {1, 1, 0, 1}, {1, 1, 1, 1}, {1, 2, 0, 1}, {2, 1, 0, 1}, {0, 0, 0, 0}, {1, 1, 0, 0}};
    for (uint32_t i = 0; i < 7; i++) {
        if (i == 5)
            continue;
        tg_upstream_settings_t st;
        memset(&st, 0, sizeof(st));
        st.id = 10 + i;
        st.owner_id = keys[i].owner;
        st.level = keys[i].level;
        st.protocol = keys[i].proto;
        st.flags = keys[i].enabled ? TG_UPSTREAM_ENABLED : 0;
        snprintf(st.url, sizeof(st.url), "http://127.0.0.1:1");
        tg_upstream_publish(&f->a, i, &st);
    }
    return 0;
}

static void test_round_robin(void **state)
{
    fixture_t *f = *state;
    int count[8] = {0};
    uint32_t slot;
    for (int i = 0; i < 300; i++) {
        assert_int_equal(tg_keypool_pick(&f->a, 1, 1, 0, 1000, NULL, 0, &slot), 0);
        count[slot]++;
    }
    assert_int_equal(count[0], 100);
    assert_int_equal(count[1], 100);
    assert_int_equal(count[2], 100);
    assert_int_equal(count[3] + count[4] + count[6], 0);
    /* protocols: only the OpenAI keys */
    memset(count, 0, sizeof(count));
    for (int i = 0; i < 100; i++) {
        assert_int_equal(tg_keypool_pick(&f->a, 1, 1, 1u << 0, 1000, NULL, 0, &slot), 0);
        count[slot]++;
    }
    assert_int_equal(count[0] + count[1], 100);
    assert_true(count[0] >= 49 && count[1] >= 49);
    /* other pools */
    assert_int_equal(tg_keypool_pick(&f->a, 1, 2, 0, 1000, NULL, 0, &slot), 0);
    assert_int_equal(slot, 3);
    assert_int_equal(tg_keypool_pick(&f->a, 2, 1, 0, 1000, NULL, 0, &slot), 0);
    assert_int_equal(slot, 4);
    assert_int_equal(tg_keypool_pick(&f->a, 2, 2, 0, 1000, NULL, 0, &slot), -1);
    assert_int_equal(tg_keypool_pick(&f->a, 3, -1, 0, 1000, NULL, 0, &slot), -1);
    /* any level */
    memset(count, 0, sizeof(count));
    for (int i = 0; i < 400; i++) {
        assert_int_equal(tg_keypool_pick(&f->a, 1, -1, 0, 1000, NULL, 0, &slot), 0);
        count[slot]++;
    }
    assert_true(count[0] == 100 && count[1] == 100 && count[2] == 100 && count[3] == 100);
    /* exclusions (keys already tried by a request) */
    uint32_t tried[] = {0, 2};
    for (int i = 0; i < 10; i++) {
        assert_int_equal(tg_keypool_pick(&f->a, 1, 1, 0, 1000, tried, 2, &slot), 0);
        assert_int_equal(slot, 1);
    }
}

static void test_sleep_and_disable(void **state)
{
    fixture_t *f = *state;
    uint32_t slot;
    uint64_t now = 1000000;
    /* 429 with Retry-After: 5 s */
    assert_true(tg_keypool_failed(&f->a, 0, 429, 5, now) == 5000);
    /* 5xx: 30 s, doubling on repeats, at most 10 min */
    assert_true(tg_keypool_failed(&f->a, 1, 500, 0, now) == 30000);
    assert_true(tg_keypool_failed(&f->a, 1, 502, 0, now) == 60000);
    assert_true(tg_keypool_failed(&f->a, 1, 0, 0, now) == 120000);
    for (int i = 0; i < 5; i++)
        tg_keypool_failed(&f->a, 1, 503, 0, now);
    assert_true(tg_keypool_failed(&f->a, 1, 503, 0, now) == 600000);
    assert_true(tg_keypool_failed(&f->a, 3, 429, 0, now) == 60000); /* 429 without Retry-After: 60 s */
    /* 401: disabled, not asleep */
    assert_true(tg_keypool_failed(&f->a, 2, 401, 0, now) == 0);
    assert_int_equal(tg_keypool_pick(&f->a, 1, 1, 0, now, NULL, 0, &slot), -1);
    assert_int_equal(tg_keypool_pick(&f->a, 1, 1, 0, now + 5000, NULL, 0, &slot), 0);
    assert_int_equal(slot, 0); /* awake again */
    assert_int_equal(tg_keypool_pick(&f->a, 1, 1, 0, now + 10000000, NULL, 0, &slot), 0);
    assert_int_equal(tg_keypool_pick(&f->a, 1, 1, 1u << 1, now + 10000000, NULL, 0, &slot), -1); /* 2 stays disabled */
    /* a success ends the streak; a publish clears everything */
    tg_keypool_succeeded(&f->a, 1);
    assert_true(tg_keypool_failed(&f->a, 1, 500, 0, now) == 30000);
    tg_upstream_settings_t st;
    assert_int_equal(tg_upstream_read(&f->a, 2, &st), 0);
    tg_upstream_publish(&f->a, 2, &st);
    assert_int_equal(tg_keypool_pick(&f->a, 1, 1, 1u << 1, now, NULL, 0, &slot), 0);
    assert_int_equal(slot, 2);
    tg_keypool_begin(&f->a, 2);
    tg_keypool_begin(&f->a, 2);
    tg_keypool_end(&f->a, 2);
    assert_int_equal(atomic_load(&f->a.upstreams[2].inflight), 1);
}

/* The cursor is in the arena: processes picking at once still split the pool evenly. */
static void test_shared_cursor(void **state)
{
    fixture_t *f = *state;
    _Atomic int *counts = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(counts != MAP_FAILED);
    for (int p = 0; p < 3; p++) {
        pid_t pid = fork();
        if (pid == 0) {
            for (int i = 0; i < 1000; i++) {
                uint32_t slot;
                if (tg_keypool_pick(&f->a, 1, 1, 0, 1000, NULL, 0, &slot) != 0)
                    _exit(1);
                atomic_fetch_add(&counts[slot], 1);
            }
            _exit(0);
        }
    }
    for (int p = 0; p < 3; p++) {
        int st;
        wait(&st);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    assert_int_equal(atomic_load(&counts[0]), 1000);
    assert_int_equal(atomic_load(&counts[1]), 1000);
    assert_int_equal(atomic_load(&counts[2]), 1000);
    munmap(counts, 4096);
}

/* The pinned key: lowest id of the pool, asleep or not; disabled keys and other protocols skipped. */
static void test_pin(void **state)
{
    fixture_t *f = *state;
    uint32_t slot;
    assert_int_equal(tg_keypool_pin(&f->a, 1, 1, 0, &slot), 0);
    assert_int_equal(slot, 0);
    tg_keypool_failed(&f->a, 0, 500, 0, 1000); /* asleep: still the pin */
    assert_int_equal(tg_keypool_pin(&f->a, 1, 1, 0, &slot), 0);
    assert_int_equal(slot, 0);
    tg_keypool_failed(&f->a, 0, 401, 0, 1000); /* disabled: the next id */
    assert_int_equal(tg_keypool_pin(&f->a, 1, 1, 0, &slot), 0);
    assert_int_equal(slot, 1);
    assert_int_equal(tg_keypool_pin(&f->a, 1, 1, 1u << 1, &slot), 0);
    assert_int_equal(slot, 2);
    assert_int_equal(tg_keypool_pin(&f->a, 1, 2, 0, &slot), 0);
    assert_int_equal(slot, 3);
    assert_int_equal(tg_keypool_pin(&f->a, 2, 2, 0, &slot), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_robin, setup, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_sleep_and_disable, setup, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_shared_cursor, setup, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_pin, setup, tg_test_arena_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
