/* tests/unit/test_flight.c: requests in flight on a process that dies are billed by the reaper
 * (shm/flight.h, credit.c): one orphan record per dispatched request, with the key the worker
 * would have used, billed like an abandoned stream (the prompt reported or estimated, the
 * completion relayed so far; the prompt only before any progress), at most the reservation unless
 * the relayed text passed its budget; undispatched ones are only released; a full ring delays the
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

/* $1 per million prompt tokens, $2 per million completion tokens, $0.50 per million cached ones
 * (pico-dollars per token): 1,000 nano-dollars per prompt token. */
static const tg_price_t PRICE = {1000000, 2000000, 500000};
#define EST_PROMPT 100  /* the admission's estimates */
#define BUDGET 32
#define NANOS(prompt, cached, completion) ((int64_t)((prompt) - (cached)) * 1000 + (cached) * 500 + (completion) * 2000)
#define RESERVED NANOS(EST_PROMPT, 0, BUDGET) /* what the admission reserves: 164,000 nano-dollars */

/* Reserves AMOUNT for request RID as the admission does (with its flight entry). */
static int reserve(fixture_t *f, const char *rid, int64_t amount, int stream, tg_credit_hold_t *h)
{
    tg_flight_info_t info = {rid, 42, "gpt-4o-mini", "/v1/chat/completions", 11, 20, EST_PROMPT, BUDGET, stream,
                             &PRICE, 0, 0};
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
    /* nothing was relayed: each is billed its prompt only (the upstream did receive it) */
    assert_true(atomic_load(&acct->spent) == 1 * USD + 2 * NANOS(EST_PROMPT, 0, 0));
    assert_true(tg_credit_month_spent(acct, MONTH) == 1 * USD + 2 * NANOS(EST_PROMPT, 0, 0));
    assert_true(atomic_load(&acct->overshoot) == 0);
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
        assert_int_equal(u.prompt_tokens, EST_PROMPT);
        assert_int_equal(u.completion_tokens, 0);
        if (strcmp(u.request_id, "req_answered") == 0) {
            seen |= 1;
            assert_true(u.cost_nanos == NANOS(EST_PROMPT, 0, 0));
            assert_int_equal(u.ts_ms, 1700000000123ull); /* the worker's key: a twin of its real record */
            assert_int_equal(u.upstream_id, 7);
            assert_true(u.flags & TG_USAGE_STREAM);
        } else if (strcmp(u.request_id, "req_waiting") == 0) {
            seen |= 2;
            assert_true(u.cost_nanos == NANOS(EST_PROMPT, 0, 0));
            assert_true(u.ts_ms > 1700000000123ull);
            assert_int_equal(u.upstream_id, 8);
            assert_true(u.latency_ms >= 250); /* from the admission on */
            assert_false(u.flags & TG_USAGE_STREAM);
        } else {
            assert_string_equal(u.request_id, "req_free");
            seen |= 4;
            assert_true(u.cost_nanos == 0); /* never more than its reservation: nothing was reserved */
        }
    }
    assert_int_equal(seen, 7); /* req_not_sent never reached an upstream: no record */
    assert_int_equal(tg_credit_reap(&f->a), 0); /* once */
    assert_int_equal(tg_ring_used(&f->a), 0);
}

static void worker_relaying(fixture_t *f)
{
    tg_credit_hold_t h[5];
    if (reserve(f, "req_partial", RESERVED, 1, &h[0]) != TG_CREDIT_OK || reserve(f, "req_big_prompt", RESERVED, 1, &h[1]) != 0 ||
        reserve(f, "req_past_budget", RESERVED, 1, &h[2]) != 0 || reserve(f, "req_reported_first", RESERVED, 1, &h[3]) != 0 ||
        reserve(f, "req_failover", RESERVED, 1, &h[4]) != 0)
        _exit(3);
    for (int i = 0; i < 5; i++)
        tg_flight_dispatched(&f->a, &h[i], 7);
    /* the upstream reported its prompt (20 of it cached), then 10 tokens' worth of text was relayed */
    tg_flight_progress(&f->a, &h[0], 120, 20, 0);
    tg_flight_progress(&f->a, &h[0], 0, 0, 4);
    tg_flight_progress(&f->a, &h[0], 0, 0, 10);
    /* a prompt far larger than estimated: the estimate is capped at what was reserved */
    tg_flight_progress(&f->a, &h[1], 1000, 0, 5);
    /* no report, but more text than the budget: the text proves it, billed past the reservation */
    tg_flight_progress(&f->a, &h[2], 0, 0, BUDGET + 18);
    /* the prompt is known (Anthropic's message_start) but no text followed */
    tg_flight_progress(&f->a, &h[3], 90, 0, 0);
    /* the first model failed: the backup, at half the price, relayed 8 tokens' worth */
    static const tg_price_t half = {500000, 1000000, 250000};
    tg_flight_model(&f->a, &h[4], "gpt-4o-backup", 13, &half);
    tg_flight_progress(&f->a, &h[4], 0, 0, 8);
    tg_credit_hold_t none = {.lane = TG_LANE_NONE};
    tg_flight_progress(&f->a, &none, 1, 1, 1); /* not journalled: nothing to keep */
}

static void test_orphans_billed_from_what_was_relayed(void **state)
{
    fixture_t *f = *state;
    tg_account_t *acct = &f->a.accounts[0];
    kill_and_reap(f, run_child(f, worker_relaying), 5);
    const int64_t partial = NANOS(120, 20, 10), past = NANOS(EST_PROMPT, 0, BUDGET + 18), first = NANOS(90, 0, 0),
                  backup = NANOS(EST_PROMPT, 0, 8) / 2;
    assert_true(partial < RESERVED && NANOS(1000, 0, 5) > RESERVED && past > RESERVED);
    assert_true(atomic_load(&acct->reserved) == 0);
    assert_true(atomic_load(&acct->spent) == partial + RESERVED + past + first + backup);
    assert_true(tg_credit_month_spent(acct, MONTH) == partial + RESERVED + past + first + backup);
    assert_true(atomic_load(&acct->overshoot) == past - RESERVED);
    tg_usage_t u;
    int seen = 0;
    while (pop(f, &u) == 0) {
        assert_true((u.flags & (TG_USAGE_ORPHAN | TG_USAGE_ESTIMATED)) == (TG_USAGE_ORPHAN | TG_USAGE_ESTIMATED));
        if (strcmp(u.request_id, "req_partial") == 0) {
            seen |= 1;
            assert_int_equal(u.prompt_tokens, 120);
            assert_int_equal(u.cached_tokens, 20);
            assert_int_equal(u.completion_tokens, 10);
            assert_true(u.cost_nanos == partial);
        } else if (strcmp(u.request_id, "req_big_prompt") == 0) {
            seen |= 2;
            assert_int_equal(u.prompt_tokens, 1000);
            assert_int_equal(u.completion_tokens, 5);
            assert_true(u.cost_nanos == RESERVED);
        } else if (strcmp(u.request_id, "req_past_budget") == 0) {
            seen |= 4;
            assert_int_equal(u.prompt_tokens, EST_PROMPT);
            assert_int_equal(u.completion_tokens, BUDGET + 18);
            assert_true(u.cost_nanos == past);
        } else if (strcmp(u.request_id, "req_failover") == 0) {
            seen |= 16;
            assert_string_equal(u.model, "gpt-4o-backup");
            assert_int_equal(u.completion_tokens, 8);
            assert_true(u.cost_nanos == backup);
        } else {
            assert_string_equal(u.request_id, "req_reported_first");
            seen |= 8;
            assert_int_equal(u.prompt_tokens, 90);
            assert_int_equal(u.completion_tokens, 0);
            assert_true(u.cost_nanos == first);
        }
    }
    assert_int_equal(seen, 31);
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
    assert_true(atomic_load(&acct->reserved) == 0 && atomic_load(&acct->spent) == 2 * NANOS(EST_PROMPT, 0, 0));
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
    assert_true(atomic_load(&f->a.accounts[0].reserved) == 0 &&
                atomic_load(&f->a.accounts[0].spent) == 2 * NANOS(EST_PROMPT, 0, 0));
    assert_int_equal(tg_credit_reap(&f->a), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reaper_bills_dispatched_requests, setup, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_orphans_billed_from_what_was_relayed, setup, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_full_ring_delays_billing, setup_tiny_ring, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_reboot_bills_requests_in_flight, setup, tg_test_arena_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
