/* tests/unit/test_limiter.c: GCRA against a simulated clock, its exactness under concurrent
 * processes, calendar-day counters and day boundaries in non-UTC zones (shm/limiter.c). */
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "shm/limiter.h"

#define SEC 1000000000ull
#define T0 (1000 * SEC) /* a monotonic "now" well past 0 */

/* RPM 60 (one per second, burst 60): a full bucket, then one per emission interval. */
static void test_gcra_burst_then_rate(void **state)
{
    _Atomic uint64_t tat = 0;
    tg_rl_view_t v;
    for (int i = 0; i < 60; i++)
        assert_int_equal(tg_gcra_take(&tat, T0, TG_NS_PER_MIN, 60, 1, &v), 0);
    assert_true(v.remaining == 0 && v.limit == 60);
    assert_true(v.reset_ms == 60000);
    uint64_t wait = tg_gcra_take(&tat, T0, TG_NS_PER_MIN, 60, 1, &v);
    assert_true(wait == SEC); /* the next unit fits one emission interval later */
    assert_true(tg_gcra_take(&tat, T0 + SEC - 1, TG_NS_PER_MIN, 60, 1, NULL) == 1);
    assert_int_equal(tg_gcra_take(&tat, T0 + SEC, TG_NS_PER_MIN, 60, 1, &v), 0);
    assert_true(v.remaining == 0);
    /* idle for a whole period: the bucket is full again */
    for (int i = 0; i < 60; i++)
        assert_int_equal(tg_gcra_take(&tat, T0 + 200 * SEC, TG_NS_PER_MIN, 60, 1, NULL), 0);
    assert_true(tg_gcra_take(&tat, T0 + 200 * SEC, TG_NS_PER_MIN, 60, 1, NULL) != 0);
}

/* Over a long run with attempts far more frequent than the limit, the admitted count is the
 * burst plus one per emission interval, exactly. */
static void test_gcra_accuracy_long_run(void **state)
{
    const uint64_t limits[] = {1, 7, 60, 1000, 123457};
    for (size_t k = 0; k < sizeof(limits) / sizeof(limits[0]); k++) {
        uint64_t L = limits[k];
        _Atomic uint64_t tat = 0;
        uint64_t admitted = 0, span = 10 * TG_NS_PER_MIN, step = TG_NS_PER_MIN / (L * 4) + 1;
        for (uint64_t t = 0; t <= span; t += step)
            for (int burst = 0; burst < 3; burst++)
                admitted += tg_gcra_take(&tat, T0 + t, TG_NS_PER_MIN, L, 1, NULL) == 0;
        /* L + ceil(span / (P / L)), in exact arithmetic */
        uint64_t bound = L + (uint64_t)(((unsigned __int128)span * L + TG_NS_PER_MIN - 1) / TG_NS_PER_MIN);
        assert_true(admitted <= bound);
        /* attempts are frequent: at most the last interval is missed; the increment is rounded up
         * to the nanosecond, which may cost one unit of the burst and one per million takes */
        if (admitted + 3 + admitted / 1000000 < bound)
            fail_msg("limit %llu: admitted %llu, bound %llu", (unsigned long long)L, (unsigned long long)admitted,
                     (unsigned long long)bound);
    }
}

/* Token limits of millions per minute stay exact: the increment is computed per take, in 128 bits. */
static void test_gcra_large_token_limit(void **state)
{
    _Atomic uint64_t tat = 0;
    uint64_t L = 1000000000; /* 1G TPM: the emission interval is 60 ns */
    uint64_t taken = 0;
    while (tg_gcra_take(&tat, T0, TG_NS_PER_MIN, L, 3333333, NULL) == 0)
        taken += 3333333;
    assert_true(taken <= L && taken + 3333333 > L);
    assert_true(tg_gcra_inc(TG_NS_PER_MIN, L, 1) == 60);
    assert_true(tg_gcra_inc(TG_NS_PER_MIN, 7, 1) == 8571428572ull); /* rounded up */
}

static void test_gcra_refund_and_charge(void **state)
{
    _Atomic uint64_t tat = 0;
    assert_int_equal(tg_gcra_take(&tat, T0, TG_NS_PER_MIN, 100, 40, NULL), 0);
    assert_int_equal(tg_gcra_take(&tat, T0, TG_NS_PER_MIN, 100, 40, NULL), 0);
    assert_true(tg_gcra_take(&tat, T0, TG_NS_PER_MIN, 100, 40, NULL) != 0);
    /* undo one take: the third fits */
    tg_gcra_refund(&tat, T0, tg_gcra_inc(TG_NS_PER_MIN, 100, 40));
    assert_int_equal(tg_gcra_take(&tat, T0, TG_NS_PER_MIN, 100, 40, NULL), 0);
    /* a refund never makes the bucket more than full */
    tg_gcra_refund(&tat, T0, UINT64_MAX / 8);
    assert_true(atomic_load(&tat) == T0);
    tg_gcra_refund(&tat, T0 + SEC, 5);
    assert_true(atomic_load(&tat) == T0);
    /* a charge (real usage above the estimate) is capped at two periods of debt */
    tg_gcra_charge(&tat, T0, TG_NS_PER_MIN, 10 * TG_NS_PER_MIN);
    assert_true(atomic_load(&tat) == T0 + 2 * TG_NS_PER_MIN);
    uint64_t wait = tg_gcra_take(&tat, T0, TG_NS_PER_MIN, 100, 1, NULL);
    assert_true(wait > TG_NS_PER_MIN);
}

/* A take larger than the whole limit passes only on a full bucket (and then leaves a debt). */
static void test_gcra_oversized(void **state)
{
    _Atomic uint64_t tat = 0;
    assert_int_equal(tg_gcra_take(&tat, T0, TG_NS_PER_MIN, 1000, 5000, NULL), 0);
    uint64_t wait = tg_gcra_take(&tat, T0, TG_NS_PER_MIN, 1000, 1, NULL);
    assert_true(wait > 3 * TG_NS_PER_MIN); /* 5 minutes of tokens taken, 1 minute of burst */
    uint64_t w2 = tg_gcra_take(&tat, T0 + SEC, TG_NS_PER_MIN, 1000, 5000, NULL);
    assert_true(w2 == 5 * TG_NS_PER_MIN - SEC); /* an oversized take waits for a full bucket */
    assert_int_equal(tg_gcra_take(&tat, T0 + 5 * TG_NS_PER_MIN, TG_NS_PER_MIN, 1000, 5000, NULL), 0);
}

/* Several processes on one word at one frozen instant: exactly L admissions in total. */
static void test_gcra_exact_across_processes(void **state)
{
    _Atomic uint64_t *tat = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    _Atomic uint64_t *admitted = tat + 8;
    assert_true(tat != MAP_FAILED);
    atomic_store(tat, 0);
    atomic_store(admitted, 0);
    const int procs = 4;
    const uint64_t L = 5000;
    for (int p = 0; p < procs; p++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            uint64_t mine = 0;
            for (int i = 0; i < 4000; i++)
                mine += tg_gcra_take(tat, T0, TG_NS_PER_MIN, L, 1, NULL) == 0;
            atomic_fetch_add(admitted, mine);
            _exit(0);
        }
    }
    for (int p = 0; p < procs; p++) {
        int st;
        wait(&st);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    assert_true(atomic_load(admitted) == L);
    munmap(tat, 4096);
}

static void test_day_counter(void **state)
{
    _Atomic uint64_t w = 0;
    tg_rl_view_t v;
    assert_int_equal(tg_day_take(&w, 19000, 10, 4, &v), 0);
    assert_true(v.remaining == 6);
    assert_int_equal(tg_day_take(&w, 19000, 10, 6, &v), 0);
    assert_true(v.remaining == 0);
    assert_int_equal(tg_day_take(&w, 19000, 10, 1, &v), -1);
    assert_true(tg_day_count(&w, 19000) == 10);
    /* a correction down, and one for a day that is over, which changes nothing */
    tg_day_adjust(&w, 19000, -3);
    assert_true(tg_day_count(&w, 19000) == 7);
    tg_day_adjust(&w, 18999, -7);
    assert_true(tg_day_count(&w, 19000) == 7);
    tg_day_adjust(&w, 19000, -100);
    assert_true(tg_day_count(&w, 19000) == 0);
    /* the next day starts from zero */
    assert_int_equal(tg_day_take(&w, 19000, 10, 10, NULL), 0);
    assert_int_equal(tg_day_take(&w, 19001, 10, 10, NULL), 0);
    assert_true(tg_day_count(&w, 19000) == 0 && tg_day_count(&w, 19001) == 10);
    /* a lone take above the limit passes on a fresh day only */
    assert_int_equal(tg_day_take(&w, 19002, 10, 50, NULL), 0);
    assert_int_equal(tg_day_take(&w, 19002, 10, 1, NULL), -1);
}

static void set_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

static uint64_t utc_ms(int y, unsigned m, unsigned d, int hh, int mm, int ss)
{
    return (uint64_t)((tg_days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss) * 1000);
}

/* Asia/Shanghai (UTC+8): the local day 2024-03-01 runs from 2024-02-29T16:00Z to 2024-03-01T16:00Z. */
static void test_calendar_shanghai(void **state)
{
    set_tz("Asia/Shanghai");
    tg_cal_t cal = {0};
    tg_cal_update(&cal, utc_ms(2024, 3, 1, 15, 59, 59));
    assert_int_equal(cal.day, tg_days_from_civil(2024, 3, 1));
    assert_true(cal.start_ms == (int64_t)utc_ms(2024, 2, 29, 16, 0, 0));
    assert_true(cal.end_ms == (int64_t)utc_ms(2024, 3, 1, 16, 0, 0));
    assert_int_equal(cal.month, 2024 * 12 + 2);
    tg_cal_update(&cal, utc_ms(2024, 3, 1, 16, 0, 0));
    assert_int_equal(cal.day, tg_days_from_civil(2024, 3, 2));
    /* a day counter rolls over at local midnight, not at UTC midnight */
    _Atomic uint64_t w = 0;
    tg_cal_update(&cal, utc_ms(2024, 3, 31, 15, 0, 0)); /* 23:00 local on the 31st */
    assert_int_equal(tg_day_take(&w, cal.day, 1, 1, NULL), 0);
    assert_int_equal(cal.month, 2024 * 12 + 2);
    tg_cal_update(&cal, utc_ms(2024, 3, 31, 16, 30, 0)); /* 00:30 local on April 1st, still March 31 in UTC */
    assert_int_equal(tg_day_take(&w, cal.day, 1, 1, NULL), 0);
    assert_int_equal(cal.month, 2024 * 12 + 3);
    set_tz("UTC");
}

/* America/New_York: the DST days last 23 and 25 hours. */
static void test_calendar_dst(void **state)
{
    set_tz("America/New_York");
    tg_cal_t cal = {0};
    tg_cal_update(&cal, utc_ms(2024, 3, 10, 12, 0, 0));
    assert_int_equal(cal.day, tg_days_from_civil(2024, 3, 10));
    assert_true(cal.end_ms - cal.start_ms == 23 * 3600 * 1000ll);
    assert_true(cal.start_ms == (int64_t)utc_ms(2024, 3, 10, 5, 0, 0));
    tg_cal_update(&cal, utc_ms(2024, 11, 3, 12, 0, 0));
    assert_true(cal.end_ms - cal.start_ms == 25 * 3600 * 1000ll);
    /* the cache holds within the day and moves at its end */
    int64_t end = cal.end_ms;
    tg_cal_update(&cal, (uint64_t)end - 1);
    assert_true(cal.end_ms == end);
    tg_cal_update(&cal, (uint64_t)end);
    assert_int_equal(cal.day, tg_days_from_civil(2024, 11, 4));
    set_tz("UTC");
}

static void test_days_from_civil(void **state)
{
    assert_int_equal(tg_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(tg_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(tg_days_from_civil(2024, 2, 29) + 1, tg_days_from_civil(2024, 3, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gcra_burst_then_rate),
        cmocka_unit_test(test_gcra_accuracy_long_run),
        cmocka_unit_test(test_gcra_large_token_limit),
        cmocka_unit_test(test_gcra_refund_and_charge),
        cmocka_unit_test(test_gcra_oversized),
        cmocka_unit_test(test_gcra_exact_across_processes),
        cmocka_unit_test(test_day_counter),
        cmocka_unit_test(test_calendar_shanghai),
        cmocka_unit_test(test_calendar_dst),
        cmocka_unit_test(test_days_from_civil),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
