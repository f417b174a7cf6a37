/* In-flight entries and the orphan records of dead processes (design in flight.h). */
#include "shm/flight.h"

#include <string.h>

#include "common/clock.h"
#include "shm/credit.h"
#include "shm/ring.h"
#include "shm/usage.h"

static tg_flight_t *entry(tg_arena_t *a, uint32_t lane, uint32_t idx)
{
    return &a->flights[(uint64_t)lane * a->hdr->lane_holds + idx];
}

static void copy_str(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static void set_price(tg_flight_t *f, const tg_price_t *price)
{
    f->price_input = price ? price->input : 0;
    f->price_output = price ? price->output : 0;
    f->price_cached = price ? price->cached : 0;
}

void tg_flight_fill(tg_arena_t *a, uint32_t lane, uint32_t idx, const tg_flight_info_t *info, uint32_t month)
{
    tg_flight_t *f = entry(a, lane, idx);
    atomic_store_explicit(&f->flags, 0, memory_order_relaxed);
    atomic_store_explicit(&f->ts_ms, 0, memory_order_relaxed);
    if (!info)
        return;
    copy_str(f->request_id, sizeof(f->request_id), info->request_id, strlen(info->request_id));
    f->account_id = info->account_id;
    f->upstream_id = 0;
    atomic_store_explicit(&f->prompt_tokens, info->prompt_tokens, memory_order_relaxed);
    atomic_store_explicit(&f->cached_tokens, 0, memory_order_relaxed);
    atomic_store_explicit(&f->completion_tokens, 0, memory_order_relaxed);
    f->completion_budget = info->completion_tokens;
    set_price(f, info->price);
    f->rates_ppm = info->rates_ppm;
    f->factor_ppm = info->factor_ppm;
    f->month = month;
    copy_str(f->model, sizeof(f->model), info->model, info->model_len);
    copy_str(f->path, sizeof(f->path), info->path, info->path_len);
    if (info->stream)
        atomic_store_explicit(&f->flags, TG_FLIGHT_STREAM, memory_order_relaxed);
}

void tg_flight_dispatched(tg_arena_t *a, const tg_credit_hold_t *h, uint64_t upstream_id)
{
    if (h->lane == TG_LANE_NONE)
        return;
    tg_flight_t *f = entry(a, h->lane, h->idx);
    f->upstream_id = upstream_id;
    atomic_fetch_or_explicit(&f->flags, TG_FLIGHT_DISPATCHED, memory_order_release);
}

void tg_flight_model(tg_arena_t *a, const tg_credit_hold_t *h, const char *model, size_t len, const tg_price_t *price)
{
    if (h->lane == TG_LANE_NONE)
        return;
    tg_flight_t *f = entry(a, h->lane, h->idx);
    copy_str(f->model, sizeof(f->model), model, len);
    set_price(f, price);
}

void tg_flight_progress(tg_arena_t *a, const tg_credit_hold_t *h, uint64_t prompt, uint64_t cached, uint64_t completion)
{
    if (h->lane == TG_LANE_NONE)
        return;
    tg_flight_t *f = entry(a, h->lane, h->idx);
    if (prompt) {
        atomic_store_explicit(&f->prompt_tokens, prompt, memory_order_relaxed);
        atomic_store_explicit(&f->cached_tokens, cached, memory_order_relaxed);
    }
    atomic_store_explicit(&f->completion_tokens, completion, memory_order_relaxed);
}

int64_t tg_flight_orphan_cost(const tg_flight_t *f, int64_t amount)
{
    tg_price_t price = {f->price_input, f->price_output, f->price_cached};
    uint64_t completion = atomic_load_explicit(&f->completion_tokens, memory_order_relaxed);
    int64_t cost = tg_cost_nanos(&price, atomic_load_explicit(&f->prompt_tokens, memory_order_relaxed), completion,
                                 atomic_load_explicit(&f->cached_tokens, memory_order_relaxed), f->rates_ppm, f->factor_ppm);
    if (cost > amount && completion <= f->completion_budget)
        cost = amount > 0 ? amount : 0; /* an estimate never bills more than was reserved ... */
    return cost; /* ... unless the text relayed already went past the budget reserved for it */
}

void tg_flight_record_ts(tg_arena_t *a, const tg_credit_hold_t *h, uint64_t ts_ms)
{
    if (h->lane != TG_LANE_NONE)
        atomic_store_explicit(&entry(a, h->lane, h->idx)->ts_ms, ts_ms, memory_order_release);
}

int tg_flight_bill_orphan(tg_arena_t *a, uint32_t lane, uint32_t idx, const tg_hold_t *h, uint32_t *month,
                          int64_t *cost)
{
    tg_flight_t *f = entry(a, lane, idx);
    uint32_t flags = atomic_load_explicit(&f->flags, memory_order_acquire);
    *month = f->month;
    *cost = 0;
    if (!(flags & TG_FLIGHT_DISPATCHED))
        return 0;
    /* the key of the record: the worker's own when it got that far, else one chosen once for all reapers */
    uint64_t ts = 0, now = tg_now_ms();
    if (!atomic_compare_exchange_strong(&f->ts_ms, &ts, now))
        now = ts;
    tg_usage_t u;
    memset(&u, 0, sizeof(u));
    copy_str(u.request_id, sizeof(u.request_id), f->request_id, strnlen(f->request_id, sizeof(f->request_id)));
    copy_str(u.model, sizeof(u.model), f->model, strnlen(f->model, sizeof(f->model)));
    copy_str(u.path, sizeof(u.path), f->path, strnlen(f->path, sizeof(f->path)));
    u.ts_ms = now;
    u.account_id = f->account_id;
    u.upstream_id = f->upstream_id;
    u.status = 0; /* no answer was completed: the process died */
    u.flags = TG_USAGE_ESTIMATED | TG_USAGE_ORPHAN | ((flags & TG_FLIGHT_STREAM) ? TG_USAGE_STREAM : 0);
    u.prompt_tokens = atomic_load_explicit(&f->prompt_tokens, memory_order_relaxed);
    u.cached_tokens = atomic_load_explicit(&f->cached_tokens, memory_order_relaxed);
    u.completion_tokens = atomic_load_explicit(&f->completion_tokens, memory_order_relaxed);
    u.cost_nanos = tg_flight_orphan_cost(f, h->amount);
    u.latency_ms = h->t_ms && now > h->t_ms ? (uint32_t)(now - h->t_ms) : 0;
    uint8_t buf[TG_RING_PAYLOAD];
    int len = tg_usage_encode(&u, buf, sizeof(buf));
    if (len < 0)
        return 0; /* cannot happen: every field is bounded */
    if (tg_ring_push(a, buf, (size_t)len) != TG_RING_OK)
        return -1;
    *cost = u.cost_nanos;
    return 1;
}
