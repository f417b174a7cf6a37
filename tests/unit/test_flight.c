/* tests/unit/test_flight.c: requests in flight on a process that dies are billed by the reaper
 * (shm/flight.h, credit.c): one orphan record per dispatched request, with the estimate and the
 * key the worker would have used; undispatched ones are only released; a full ring delays the
 * billing instead of losing it; a reboot bills what the previous boot had in flight. */
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

#include "common/clock.h"
#include "shm/accounts.h"
#include "shm/credit.h"
#include "shm/ring.h"
#include "shm/usage.h"

#define USD 1000000000ll
#define MONTH 24300u

typedef tg_test_arena_t fixture_t; /* tests/unit/arena_fixture.h */

static int setup_ring(void **state, uint32_t ring_slots)
{
    if (tg_test_arena_setup(state, "flight", (tg_arena_sizes_t){16, 8, ring_slots}) != 0)
        return -1;
    fixture_t *f = *state;
    tg_account_settings_t st;
    memset(&st, 0, sizeof(st));
    st.id = 42;
    st.flags = TG_ACCT_ENABLED;
    tg_account_publish(&f->a, 0, &st);
    atomic_store(&f->a.accounts[0].balance, 100 * USD);
    return 0;
}

static int setup(void **state)
{
    return setup_ring(state, 1024);
}

static int setup_tiny_ring(void **state)
{
    return setup_ring(state, 4);
}

/* Reserves AMOUNT for request RID as the admission does (with its flight entry). */
static int reserve(fixture_t *f, const char *rid, int64_t amount, int stream, tg_credit_hold_t *h)
{
    tg_flight_info_t info = {rid, 42, "gpt-4o-mini", "/v1/chat/completions", 11, 20, 100, 32, stream};
    tg_credit_terms_t t = {0, 0, MONTH, tg_now_ms() - 250, &info};
    return tg_credit_reserve(&f->a, 0, amount, &t, h);
}

/* Forks a process that runs BODY (reservations), and waits to be killed; returns its pid once BODY
 * is done. */
static pid_t run_child(fixture_t *f, void (*body)(fixture_t *))
{
    pid_t pid = tg_test_arena_child(f, body);
    assert_true(pid > 0);
    return pid;
}

static void kill_and_reap(fixture_t *f, pid_t pid, size_t expect_released)
{
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(tg_credit_reap(&f->a), expect_released);
}

/* Pops the next record of the ring (consumer side). */
static int pop(fixture_t *f, tg_usage_t *u)
{
    uint64_t pos = tg_ring_tail(&f->a);
    const uint8_t *data;
    size_t len;
    if (tg_ring_peek(&f->a, pos, &data, &len) != TG_RING_OK)
        return -1;
    int rc = tg_usage_decode(data, len, u);
    tg_ring_release(&f->a, pos + 1);
    return rc;
}

static void worker_with_requests(fixture_t *f)
{
    tg_credit_hold_t h[5];
    if (reserve(f, "req_answered", 2 * USD, 1, &h[0]) != TG_CREDIT_OK || reserve(f, "req_waiting", 3 * USD, 0, &h[1]) != 0 ||
        reserve(f, "req_not_sent", 4 * USD, 0, &h[2]) != 0 || reserve(f, "req_free", 0, 0, &h[3]) != 0 ||
        reserve(f, "req_settled", 5 * USD, 0, &h[4]) != 0)
        _exit(3);
    if (h[3].lane == TG_LANE_NONE)
        _exit(5); /* a free request is journalled too */
    tg_flight_dispatched(&f->a, &h[0], 7);
    tg_flight_record_ts(&f->a, &h[0], 1700000000123ull); /* its record was about to be pushed */
    tg_flight_dispatched(&f->a, &h[1], 8);
    tg_flight_dispatched(&f->a, &h[3], 9);
    tg_flight_dispatched(&f->a, &h[4], 7);
    tg_credit_settle(&f->a, &h[4], USD, MONTH, 0); /* finished normally: nothing left to bill */
}

static void test_reaper_bills_dispatched_requests(void **state)
{
    fixture_t *f = *state;
    tg_account_t *acct = &f->a.accounts[0];
    pid_t pid = run_child(f, worker_with_requests);
    assert_true(atomic_load(&acct->reserved) == 9 * USD);
    assert_int_equal(tg_credit_reap(&f->a), 0); /* alive: nothing to do */
    assert_int_equal(tg_ring_used(&f->a), 0);
    kill_and_reap(f, pid, 4);

    assert_true(atomic_load(&acct->reserved) == 0);
    assert_true(atomic_load(&acct->spent) == 1 * USD + 2 * USD + 3 * USD); /* settled + the two estimates */
    assert_true(tg_credit_month_spent(acct, MONTH) == 6 * USD);
    assert_int_equal(atomic_load(&acct->requests), 3); /* the account's live counter counts the orphans */
    assert_int_equal(tg_ring_used(&f->a), 3);
    tg_usage_t u;
    int seen = 0;
    while (pop(f, &u) == 0) {
        assert_true(u.flags & TG_USAGE_ORPHAN);
        assert_true(u.flags & TG_USAGE_ESTIMATED);
        assert_int_equal(u.status, 0);
        assert_int_equal(u.account_id, 42);
        assert_string_equal(u.model, "gpt-4o-mini");
        assert_string_equal(u.path, "/v1/chat/completions");
        assert_int_equal(u.prompt_tokens, 100);
        assert_int_equal(u.completion_tokens, 32);
        if (strcmp(u.request_id, "req_answered") == 0) {
            seen |= 1;
            assert_true(u.cost_nanos == 2 * USD);
            assert_int_equal(u.ts_ms, 1700000000123ull); /* the worker's key: a twin of its real record */
            assert_int_equal(u.upstream_id, 7);
            assert_true(u.flags & TG_USAGE_STREAM);
        } else if (strcmp(u.request_id, "req_waiting") == 0) {
            seen |= 2;
            assert_true(u.cost_nanos == 3 * USD);
            assert_true(u.ts_ms > 1700000000123ull);
            assert_int_equal(u.upstream_id, 8);
            assert_true(u.latency_ms >= 250); /* from the admission on */
            assert_false(u.flags & TG_USAGE_STREAM);
        } else {
            assert_string_equal(u.request_id, "req_free");
            seen |= 4;
            assert_true(u.cost_nanos == 0);
        }
    }
    assert_int_equal(seen, 7); /* req_not_sent never reached an upstream: no record */
    assert_int_equal(tg_credit_reap(&f->a), 0); /* once */
    assert_int_equal(tg_ring_used(&f->a), 0);
}

static void worker_two_in_flight(fixture_t *f)
{
    tg_credit_hold_t h[2];
    if (reserve(f, "req_a", USD, 0, &h[0]) != TG_CREDIT_OK || reserve(f, "req_b", USD, 0, &h[1]) != TG_CREDIT_OK)
        _exit(3);
    tg_flight_dispatched(&f->a, &h[0], 1);
    tg_flight_dispatched(&f->a, &h[1], 1);
}

/* The ring is full when the reaper runs: the lane stays the dead process's until there is room. */
static void test_full_ring_delays_billing(void **state)
{
    fixture_t *f = *state;
    tg_account_t *acct = &f->a.accounts[0];
    pid_t pid = run_child(f, worker_two_in_flight);
    for (int i = 0; i < 4; i++)
        assert_int_equal(tg_ring_push(&f->a, "x", 1), TG_RING_OK);
    kill_and_reap(f, pid, 0);
    assert_true(atomic_load(&acct->reserved) == 2 * USD && atomic_load(&acct->spent) == 0);
    tg_ring_release(&f->a, 1); /* room for one: one billed, the other waits */
    assert_int_equal(tg_credit_reap(&f->a), 1);
    tg_ring_release(&f->a, 4);
    assert_int_equal(tg_credit_reap(&f->a), 1);
    assert_true(atomic_load(&acct->reserved) == 0 && atomic_load(&acct->spent) == 2 * USD);
    tg_usage_t u;
    assert_int_equal(pop(f, &u), 0);
    assert_int_equal(pop(f, &u), 0);
    assert_true(u.flags & TG_USAGE_ORPHAN);
    assert_int_equal(pop(f, &u), -1);
    for (uint32_t i = 0; i < f->a.hdr->n_lanes; i++)
        assert_true(atomic_load(&f->a.lanes[i].owner) == 0);
}

/* After a reboot every process of the arena's last boot is gone: their dispatched requests are billed. */
static void test_reboot_bills_requests_in_flight(void **state)
{
    fixture_t *f = *state;
    pid_t pid = run_child(f, worker_two_in_flight);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    memset(f->a.hdr->boot_id, 0, 16); /* as if the arena was last used before a reboot */
    tg_quota_boot_check(&f->a);
    assert_int_equal(tg_ring_used(&f->a), 2);
    assert_true(atomic_load(&f->a.accounts[0].reserved) == 0 && atomic_load(&f->a.accounts[0].spent) == 2 * USD);
    assert_int_equal(tg_credit_reap(&f->a), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reaper_bills_dispatched_requests, setup, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_full_ring_delays_billing, setup_tiny_ring, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_reboot_bills_requests_in_flight, setup, tg_test_arena_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
