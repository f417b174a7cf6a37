/* tests/unit/test_credit.c: reserve and settle, the minimum-balance gate, HardLimit, overshoot,
 * SoftLimit notice, costs, and the journal lanes: a process killed with reservations open has them
 * released by the reaper; a reboot clears limiter clocks and reservations (shm/credit.c). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "arena_fixture.h"

#include "common/keyhash.h"
#include "shm/accounts.h"
#include "shm/arena.h"
#include "shm/credit.h"

#define USD 1000000000ll

typedef tg_test_arena_t fixture_t; /* tests/unit/arena_fixture.h */

static int setup(void **state)
{
    if (tg_test_arena_setup(state, "credit", (tg_arena_sizes_t){64, 8, 1024}) != 0)
        return -1;
    fixture_t *f = *state;
    for (uint32_t slot = 0; slot < 4; slot++) {
        tg_account_settings_t st;
        memset(&st, 0, sizeof(st));
        st.id = 100 + slot;
        st.flags = TG_ACCT_ENABLED;
        char key[32];
        snprintf(key, sizeof(key), "sk-credit-%u", slot);
        tg_key_hash(key, strlen(key), st.key_hash);
        tg_account_publish(&f->a, slot, &st);
    }
    return 0;
}

static const tg_credit_terms_t NO_TERMS = {0, 0, 24300};

static void test_reserve_settle(void **state)
{
    fixture_t *f = *state;
    tg_account_t *acct = &f->a.accounts[0];
    atomic_store(&acct->balance, 10 * USD);
    tg_credit_hold_t h1, h2, h3;
    assert_int_equal(tg_credit_reserve(&f->a, 0, 4 * USD, &NO_TERMS, &h1), TG_CREDIT_OK);
    assert_int_equal(tg_credit_reserve(&f->a, 0, 4 * USD, &NO_TERMS, &h2), TG_CREDIT_OK);
    assert_true(tg_credit_available(acct) == 2 * USD);
    assert_int_equal(tg_credit_reserve(&f->a, 0, 3 * USD, &NO_TERMS, &h3), TG_CREDIT_NO_FUNDS);
    assert_true(atomic_load(&acct->reserved) == 8 * USD); /* the refused one left nothing behind */
    assert_int_equal(tg_credit_open_holds(&f->a), 2);
    /* settle below the estimate: the difference comes back */
    tg_credit_settle(&f->a, &h1, 1 * USD, 24300, 0);
    assert_true(atomic_load(&acct->spent) == 1 * USD && atomic_load(&acct->reserved) == 4 * USD);
    assert_true(tg_credit_available(acct) == 5 * USD);
    assert_int_equal(tg_credit_reserve(&f->a, 0, 3 * USD, &NO_TERMS, &h3), TG_CREDIT_OK);
    /* settle above the estimate: the overshoot is recorded */
    tg_credit_settle(&f->a, &h2, 5 * USD, 24300, 0);
    assert_true(atomic_load(&acct->overshoot) == 1 * USD);
    tg_credit_settle(&f->a, &h3, 0, 24300, 0);
    assert_true(atomic_load(&acct->reserved) == 0 && atomic_load(&acct->spent) == 6 * USD);
    assert_true(tg_credit_month_spent(acct, 24300) == 6 * USD);
    assert_true(tg_credit_month_spent(acct, 24301) == 0);
    assert_int_equal(tg_credit_open_holds(&f->a), 0);
    /* settling twice is harmless (the hold is spent) */
    tg_credit_settle(&f->a, &h3, 0, 24300, 0);
    assert_true(atomic_load(&acct->reserved) == 0);
    /* a zero estimate holds nothing */
    tg_credit_hold_t h0;
    assert_int_equal(tg_credit_reserve(&f->a, 0, 0, &NO_TERMS, &h0), TG_CREDIT_OK);
    assert_true(h0.lane == TG_LANE_NONE);
    tg_credit_settle(&f->a, &h0, 0, 24300, 0);
}

/* The journal holds as many reservations as the arena was created for (arena.max_inflight_per_worker):
 * one more is refused with TG_CREDIT_BUSY, and settling one makes room again. */
static void test_journal_capacity(void **state)
{
    (void)state;
    tg_test_arena_t t;
    assert_int_equal(tg_test_arena_open(&t, "credit_cap", (tg_arena_sizes_t){16, 1, 1024, 100}), 0);
    assert_int_equal(t.a.hdr->lane_holds, 100);
    assert_true(t.a.hdr->lane_size >= sizeof(tg_lane_t) + 100 * sizeof(tg_hold_t) && t.a.hdr->lane_size % 64 == 0);
    tg_account_settings_t st;
    memset(&st, 0, sizeof(st));
    st.id = 1;
    st.flags = TG_ACCT_ENABLED;
    tg_key_hash("sk-cap", 6, st.key_hash);
    assert_int_equal(tg_account_publish(&t.a, 0, &st), 0);
    atomic_store(&t.a.accounts[0].balance, 1000 * USD);
    tg_credit_hold_t holds[101];
    for (int i = 0; i < 100; i++)
        assert_int_equal(tg_credit_reserve(&t.a, 0, USD, &NO_TERMS, &holds[i]), TG_CREDIT_OK);
    assert_int_equal(tg_credit_reserve(&t.a, 0, USD, &NO_TERMS, &holds[100]), TG_CREDIT_BUSY);
    assert_int_equal(tg_credit_open_holds(&t.a), 100);
    /* the last lane's last entry is inside the arena: write it through the stride */
    assert_true((char *)&tg_lane_at(&t.a, TG_LANES - 1)->holds[99] + sizeof(tg_hold_t) <= (char *)t.a.base + t.a.size);
    tg_credit_settle(&t.a, &holds[7], 0, 24300, 0);
    assert_int_equal(tg_credit_reserve(&t.a, 0, USD, &NO_TERMS, &holds[100]), TG_CREDIT_OK);
    assert_true(atomic_load(&t.a.accounts[0].reserved) == 100 * USD);
    for (int i = 0; i <= 100; i++)
        tg_credit_settle(&t.a, &holds[i], 0, 24300, 0);
    assert_true(atomic_load(&t.a.accounts[0].reserved) == 0);
    tg_test_arena_close(&t);
}

static void test_min_balance_and_hard_limit(void **state)
{
    fixture_t *f = *state;
    tg_account_t *acct = &f->a.accounts[1];
    atomic_store(&acct->balance, USD / 2);
    tg_credit_terms_t t = {USD, 0, 24300};
    tg_credit_hold_t h;
    assert_int_equal(tg_credit_reserve(&f->a, 1, 1000, &t, &h), TG_CREDIT_MIN_BALANCE);
    atomic_store(&acct->balance, 3 * USD);
    assert_int_equal(tg_credit_reserve(&f->a, 1, 1000, &t, &h), TG_CREDIT_OK);
    tg_credit_settle(&f->a, &h, 2 * USD + USD / 2, 24300, 0);
    assert_int_equal(tg_credit_reserve(&f->a, 1, 1000, &t, &h), TG_CREDIT_MIN_BALANCE); /* $0.50 left */

    /* HardLimit: this month's spend + in flight + the estimate */
    atomic_store(&acct->balance, 100 * USD);
    tg_credit_terms_t hard = {0, 5 * USD, 24300};
    assert_int_equal(tg_credit_reserve(&f->a, 1, 2 * USD, &hard, &h), TG_CREDIT_OK); /* 2.5 + 2 <= 5 */
    tg_credit_hold_t h2;
    assert_int_equal(tg_credit_reserve(&f->a, 1, 1 * USD, &hard, &h2), TG_CREDIT_HARD_LIMIT);
    tg_credit_settle(&f->a, &h, USD, 24300, 0);
    assert_int_equal(tg_credit_reserve(&f->a, 1, 1 * USD, &hard, &h2), TG_CREDIT_OK); /* 3.5 + 1 */
    tg_credit_settle(&f->a, &h2, USD, 24300, 0);
    /* a new month starts from zero */
    hard.month = 24301;
    assert_int_equal(tg_credit_reserve(&f->a, 1, 4 * USD, &hard, &h2), TG_CREDIT_OK);
    tg_credit_settle(&f->a, &h2, 4 * USD, 24301, 3 * USD);
    /* SoftLimit crossed in 24301: the slot says so for the persister's notice */
    assert_int_equal(atomic_load(&acct->soft_month), 24302);
    assert_true(tg_credit_month_spent(acct, 24301) == 4 * USD);
}

static void test_cost(void **state)
{
    tg_price_t mini = {150000, 600000, 75000}; /* gpt-4o-mini: $0.15 / $0.60 / $0.075 per M */
    assert_true(tg_cost_nanos(&mini, 1000, 500, 0, 1000000, 1000000) == 450000);
    assert_true(tg_cost_nanos(&mini, 1000, 500, 400, 1000000, 1000000) == 420000); /* 600 + 400 cached */
    assert_true(tg_cost_nanos(&mini, 1000, 500, 0, 1500000, 2000000) == 1350000);  /* Rates 1.5, Factor 2 */
    assert_true(tg_cost_nanos(&mini, 1000, 500, 0, 0, 0) == 450000);                /* 0 = 1.0 */
    assert_true(tg_cost_nanos(&mini, 1, 0, 0, 1000000, 1000000) == 150);
    tg_price_t tiny = {1, 1, 1}; /* $0.000001 per M: a pico-dollar per token */
    assert_true(tg_cost_nanos(&tiny, 400, 0, 0, 1000000, 1000000) == 0); /* 0.4 nano: rounds to 0 */
    assert_true(tg_cost_nanos(&tiny, 600, 0, 0, 1000000, 1000000) == 1); /* 0.6 nano: rounds to 1 */
    assert_true(tg_cost_nanos(NULL, 1000, 1000, 0, 1000000, 1000000) == 0);
    tg_price_t big = {1000000000000ull, 1000000000000ull, 0};
    assert_true(tg_cost_nanos(&big, UINT64_MAX, UINT64_MAX, 0, 1000000000, 1000000000) == INT64_MAX / 4); /* no overflow */
}

/* The body of a process that dies with holds open: four reservations on slot 2, one settled. */
static void reserve_four_settle_one(fixture_t *f)
{
    tg_credit_hold_t h[4];
    for (int i = 0; i < 4; i++)
        if (tg_credit_reserve(&f->a, 2, (i + 1) * USD, &NO_TERMS, &h[i]) != TG_CREDIT_OK)
            _exit(3);
    tg_credit_settle(&f->a, &h[0], USD / 2, 24300, 0); /* one settled normally */
}

/* A process killed with reservations open: the reaper gives them back, once. */
static void test_reap_killed_process(void **state)
{
    fixture_t *f = *state;
    tg_account_t *acct = &f->a.accounts[2];
    atomic_store(&acct->balance, 100 * USD);
    pid_t pid = tg_test_arena_child(f, reserve_four_settle_one);
    assert_true(pid > 0);
    assert_true(atomic_load(&acct->reserved) == 9 * USD);
    assert_int_equal(tg_credit_reap(&f->a), 0); /* alive: nothing to do */
    kill(pid, SIGKILL);
    /* not waited for yet: a zombie counts as dead */
    for (int i = 0; i < 200 && tg_credit_reap(&f->a) == 0; i++)
        usleep(5000);
    assert_true(atomic_load(&acct->reserved) == 0);
    assert_true(atomic_load(&acct->spent) == USD / 2);
    assert_int_equal(tg_credit_reap(&f->a), 0); /* once */
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFSIGNALED(st));
    /* the lane is free again: a new process can claim it */
    for (uint32_t i = 0; i < f->a.hdr->n_lanes; i++)
        assert_true(atomic_load(&tg_lane_at(&f->a, i)->owner) == 0 ||
                    (pid_t)(atomic_load(&tg_lane_at(&f->a, i)->owner) & 0xffffffffu) == getpid());
}

/* A clean exit releases the lane; a forked child does not use its parent's lane. */
static void test_lanes_per_process(void **state)
{
    fixture_t *f = *state;
    atomic_store(&f->a.accounts[3].balance, 10 * USD);
    tg_credit_hold_t h;
    assert_int_equal(tg_credit_reserve(&f->a, 3, USD, &NO_TERMS, &h), TG_CREDIT_OK);
    uint32_t mine = h.lane;
    pid_t pid = fork();
    if (pid == 0) {
        tg_credit_hold_t c;
        int ok = tg_credit_reserve(&f->a, 3, USD, &NO_TERMS, &c) == TG_CREDIT_OK && c.lane != mine &&
                 tg_credit_open_holds(&f->a) == 1;
        tg_credit_settle(&f->a, &c, 0, 24300, 0);
        tg_credit_detach(&f->a);
        _exit(ok ? 0 : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(tg_credit_reap(&f->a), 0); /* the child released its lane itself */
    tg_credit_settle(&f->a, &h, 0, 24300, 0);
    assert_true(atomic_load(&f->a.accounts[3].reserved) == 0);
    tg_credit_detach(&f->a);
    assert_true(atomic_load(&tg_lane_at(&f->a, mine)->owner) == 0);
}

/* After a reboot the limiter clocks and every reservation are void. */
static void test_boot_check(void **state)
{
    fixture_t *f = *state;
    tg_account_t *acct = &f->a.accounts[0];
    atomic_store(&acct->tat[TG_TAT_RPM], 123);
    atomic_store(&acct->reserved, 5 * USD);
    atomic_store(&acct->spent, 7);
    atomic_store(&tg_lane_at(&f->a, 3)->owner, TG_LANE_OWNED | 999999);
    atomic_store(&tg_lane_at(&f->a, 3)->holds[0].state, TG_HOLD_ACTIVE);
    tg_quota_boot_check(&f->a); /* same boot: nothing */
    assert_true(atomic_load(&acct->tat[TG_TAT_RPM]) == 123);
    memset(f->a.hdr->boot_id, 0, 16); /* as if the arena was last used before a reboot */
    tg_quota_boot_check(&f->a);
    assert_true(atomic_load(&acct->tat[TG_TAT_RPM]) == 0 && atomic_load(&acct->reserved) == 0);
    assert_true(atomic_load(&acct->spent) == 7); /* money settled stays */
    assert_true(atomic_load(&tg_lane_at(&f->a, 3)->owner) == 0 && atomic_load(&tg_lane_at(&f->a, 3)->holds[0].state) == TG_HOLD_FREE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reserve_settle, setup, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_min_balance_and_hard_limit, setup, tg_test_arena_teardown),
        cmocka_unit_test(test_cost),
        cmocka_unit_test_setup_teardown(test_reap_killed_process, setup, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_lanes_per_process, setup, tg_test_arena_teardown),
        cmocka_unit_test(test_journal_capacity),
        cmocka_unit_test_setup_teardown(test_boot_check, setup, tg_test_arena_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
