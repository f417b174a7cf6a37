/* GCRA and calendar-day counters over arena atomics (design in limiter.h). */
#include "shm/limiter.h"

#include <time.h>

uint64_t tg_gcra_inc(uint64_t period_ns, uint64_t limit, uint64_t cost)
{
    if (limit == 0)
        return 0;
    unsigned __int128 v = (unsigned __int128)cost * period_ns + (limit - 1);
    v /= limit;
    return v > (unsigned __int128)(UINT64_MAX / 4) ? UINT64_MAX / 4 : (uint64_t)v;
}

static void fill_view(tg_rl_view_t *view, uint64_t tat, uint64_t now, uint64_t period, uint64_t limit)
{
    if (!view)
        return;
    uint64_t busy = tat > now ? tat - now : 0;
    view->limit = limit;
    view->remaining = busy >= period ? 0 : (uint64_t)(((unsigned __int128)(period - busy) * limit) / period);
    view->reset_ms = (busy + 999999u) / 1000000u;
}

uint64_t tg_gcra_take(_Atomic uint64_t *tat, uint64_t now, uint64_t period, uint64_t limit, uint64_t cost,
                      tg_rl_view_t *view)
{
    uint64_t inc = tg_gcra_inc(period, limit, cost);
    uint64_t old = atomic_load_explicit(tat, memory_order_relaxed);
    for (;;) {
        uint64_t base = old > now ? old : now;
        uint64_t next = base + inc;
        if (base > now && next - now > period) {
            uint64_t wait = next - now - period;
            uint64_t idle = base - now; /* an oversized take fits once the bucket is full */
            if (view)
                fill_view(view, old, now, period, limit);
            return wait < idle ? wait : idle;
        }
        if (atomic_compare_exchange_weak_explicit(tat, &old, next, memory_order_relaxed, memory_order_relaxed)) {
            fill_view(view, next, now, period, limit);
            return 0;
        }
    }
}

void tg_gcra_refund(_Atomic uint64_t *tat, uint64_t now, uint64_t inc)
{
    uint64_t old = atomic_load_explicit(tat, memory_order_relaxed);
    for (;;) {
        if (old <= now || inc == 0)
            return; /* the bucket is full already */
        uint64_t next = old - now > inc ? old - inc : now;
        if (atomic_compare_exchange_weak_explicit(tat, &old, next, memory_order_relaxed, memory_order_relaxed))
            return;
    }
}

void tg_gcra_charge(_Atomic uint64_t *tat, uint64_t now, uint64_t period, uint64_t inc)
{
    uint64_t old = atomic_load_explicit(tat, memory_order_relaxed);
    for (;;) {
        uint64_t base = old > now ? old : now;
        uint64_t cap = now + 2 * period;
        uint64_t next = base + inc > cap ? cap : base + inc;
        if (next <= old)
            return;
        if (atomic_compare_exchange_weak_explicit(tat, &old, next, memory_order_relaxed, memory_order_relaxed))
            return;
    }
}

void tg_gcra_view(_Atomic uint64_t *tat, uint64_t now, uint64_t period, uint64_t limit, tg_rl_view_t *view)
{
    fill_view(view, atomic_load_explicit(tat, memory_order_relaxed), now, period, limit);
}

/* ---- day counters ---- */

static uint64_t day_word(uint32_t day, uint64_t count)
{
    return ((uint64_t)(day & 0xffffu) << 48) | (count > TG_DAY_COUNT_MAX ? TG_DAY_COUNT_MAX : count);
}

static uint64_t word_count(uint64_t w, uint32_t day)
{
    return (w >> 48) == (day & 0xffffu) ? (w & TG_DAY_COUNT_MAX) : 0;
}

int tg_day_take(_Atomic uint64_t *word, uint32_t day, uint64_t limit, uint64_t cost, tg_rl_view_t *view)
{
    uint64_t old = atomic_load_explicit(word, memory_order_relaxed);
    for (;;) {
        uint64_t cur = word_count(old, day);
        if (cur > 0 && cur + cost > limit) {
            if (view) {
                view->limit = limit;
                view->remaining = cur >= limit ? 0 : limit - cur;
                view->reset_ms = 0;
            }
            return -1;
        }
        uint64_t next = day_word(day, cur + cost);
        if (atomic_compare_exchange_weak_explicit(word, &old, next, memory_order_relaxed, memory_order_relaxed)) {
            if (view) {
                view->limit = limit;
                view->remaining = cur + cost >= limit ? 0 : limit - cur - cost;
                view->reset_ms = 0;
            }
            return 0;
        }
    }
}

void tg_day_adjust(_Atomic uint64_t *word, uint32_t day, int64_t delta)
{
    uint64_t old = atomic_load_explicit(word, memory_order_relaxed);
    for (;;) {
        if (delta == 0 || (old >> 48) != (day & 0xffffu))
            return; /* another day began since: the old day's count no longer matters */
        uint64_t cur = old & TG_DAY_COUNT_MAX;
        uint64_t next = delta < 0 ? (cur > (uint64_t)-delta ? cur - (uint64_t)-delta : 0) : cur + (uint64_t)delta;
        if (atomic_compare_exchange_weak_explicit(word, &old, day_word(day, next), memory_order_relaxed,
                                                  memory_order_relaxed))
            return;
    }
}

uint64_t tg_day_count(_Atomic uint64_t *word, uint32_t day)
{
    return word_count(atomic_load_explicit(word, memory_order_relaxed), day);
}

/* ---- calendar ---- */

int64_t tg_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    /* Howard Hinnant's days_from_civil */
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void tg_cal_update(tg_cal_t *cal, uint64_t now_ms)
{
    if (cal->end_ms != 0 && (int64_t)now_ms >= cal->start_ms && (int64_t)now_ms < cal->end_ms)
        return;
    time_t t = (time_t)(now_ms / 1000u);
    struct tm tm;
    localtime_r(&t, &tm);
    cal->day = (uint32_t)tg_days_from_civil((int64_t)tm.tm_year + 1900, (unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday);
    cal->month = (uint32_t)((tm.tm_year + 1900) * 12 + tm.tm_mon);
    struct tm s = tm;
    s.tm_hour = s.tm_min = s.tm_sec = 0;
    s.tm_isdst = -1;
    time_t start = mktime(&s);
    struct tm e = tm;
    e.tm_mday += 1;
    e.tm_hour = e.tm_min = e.tm_sec = 0;
    e.tm_isdst = -1;
    time_t end = mktime(&e);
    if (start == (time_t)-1 || end == (time_t)-1 || end <= start) { /* cannot happen with a sane zone: cache one second */
        start = t;
        end = t + 1;
    }
    cal->start_ms = (int64_t)start * 1000;
    cal->end_ms = (int64_t)end * 1000;
}
