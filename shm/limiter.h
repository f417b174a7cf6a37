/* Rate limits in the arena: GCRA for the rolling limits (RPM, RPH, TPM, TPH) and calendar-day
 * counters for RPD and TPD, each one 64-bit atomic word that any process updates with a CAS loop.
 *
 * GCRA (the generic cell rate algorithm). A limit of L units per period P has an emission interval
 * T = P / L. The state is one timestamp, the theoretical arrival time `tat` (CLOCK_MONOTONIC ns).
 * Taking c units at time now: base = max(tat, now); next = base + c*T (computed as c*P/L in 128
 * bits, rounded up, so large token limits lose no precision). The take is admitted when
 * next - now <= P, i.e. the bucket of capacity L has room for c, and then tat = next by CAS. A
 * take larger than the whole bucket is admitted only when the bucket is full (tat <= now), so an
 * oversized request is not refused forever; it leaves the limit in debt. Undo and corrections move
 * tat back (never below now) or forward (never beyond now + 2P). Concurrency adds no error: every
 * admission is one successful CAS on the same word, so the admitted count obeys the bound exactly:
 * over any interval of length t starting from a full bucket, at most L + ceil(t / T) units.
 *
 * Day counters. The word is (day tag, 16 bits) << 48 | count (48 bits). A take on a new day
 * starts from 0; a take is refused when count + c > L (again, a lone oversized take on a fresh
 * day is admitted). The day is the calendar day in the configured time zone (tg_cal_t): each
 * process caches [start, end) of the current local day and calls localtime_r() only when a
 * timestamp leaves it, so there is no per-request time-zone work.
 *
 * Lifecycle: pure functions over arena words; tg_cal_t is process-private (workers keep one). */
#ifndef TG_LIMITER_H
#define TG_LIMITER_H

#include <stdatomic.h>
#include <stdint.h>

#define TG_NS_PER_MIN 60000000000ull
#define TG_NS_PER_HOUR 3600000000000ull

/* What a limit looks like after a take (for x-ratelimit-* headers). */
typedef struct tg_rl_view {
    uint64_t limit;
    uint64_t remaining;
    uint64_t reset_ms; /* until the limit is whole again */
} tg_rl_view_t;

/** Increment of tat for COST units of a limit of LIMIT per PERIOD_NS (ceil(cost * period / limit)). */
uint64_t tg_gcra_inc(uint64_t period_ns, uint64_t limit, uint64_t cost);
/** Takes COST units at NOW_NS. Returns 0 when admitted (and fills *VIEW when non-NULL), else the
 * nanoseconds to wait before the same take would be admitted (> 0). LIMIT must be > 0. */
uint64_t tg_gcra_take(_Atomic uint64_t *tat, uint64_t now_ns, uint64_t period_ns, uint64_t limit, uint64_t cost,
                      tg_rl_view_t *view);
/** Gives back INC nanoseconds of budget (an undone take, or a correction down); tat never goes
 * below NOW_NS. */
void tg_gcra_refund(_Atomic uint64_t *tat, uint64_t now_ns, uint64_t inc);
/** Charges INC more nanoseconds (a correction up: the real cost exceeded the estimate); tat never
 * goes beyond NOW_NS + 2 * PERIOD_NS. */
void tg_gcra_charge(_Atomic uint64_t *tat, uint64_t now_ns, uint64_t period_ns, uint64_t inc);
/** Remaining whole units and time to refill, read-only. */
void tg_gcra_view(_Atomic uint64_t *tat, uint64_t now_ns, uint64_t period_ns, uint64_t limit, tg_rl_view_t *view);

#define TG_DAY_COUNT_MAX ((1ull << 48) - 1)
/** Takes COST on day DAY (local days since 1970-01-01). 0 when admitted (*VIEW filled when
 * non-NULL, reset_ms left 0 for the caller), -1 when the day's budget is spent. */
int tg_day_take(_Atomic uint64_t *word, uint32_t day, uint64_t limit, uint64_t cost, tg_rl_view_t *view);
/** Adds DELTA (may be negative; the count never goes below 0) to day DAY's count; nothing when
 * the word has moved on to another day. */
void tg_day_adjust(_Atomic uint64_t *word, uint32_t day, int64_t delta);
/** The count of day DAY (0 when the word holds another day). */
uint64_t tg_day_count(_Atomic uint64_t *word, uint32_t day);

/* The calendar in the process's time zone (TZ; workers and the persister set it from the
 * config's `timezone`). */
typedef struct tg_cal {
    int64_t start_ms, end_ms; /* [start, end) of the cached local day; end 0 = empty */
    uint32_t day;             /* local days since 1970-01-01 */
    uint32_t month;           /* local (year * 12 + month - 1) */
} tg_cal_t;

/** Refreshes *CAL for NOW_MS (cheap while NOW_MS stays inside the cached day). */
void tg_cal_update(tg_cal_t *cal, uint64_t now_ms);
/** Civil day number of a date (days since 1970-01-01; MONTH 1..12). */
int64_t tg_days_from_civil(int64_t year, unsigned month, unsigned mday);

#endif
