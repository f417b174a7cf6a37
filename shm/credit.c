/* Credit reservations, settlement and the per-process journal lanes (design in credit.h). */
#include "shm/credit.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/self_pid.h"

#define MONTH_MASK ((1ull << 56) - 1)

struct tg_credit_local {
    pid_t pid;
    const void *base;
    uint64_t created_ms;
    uint32_t lane;
    uint32_t n_free;
    uint32_t *free_stack; /* free hold indexes of the lane */
    uint64_t next_reap_ms;
};

/* Start time of PID in clock ticks since boot (/proc/PID/stat field 22) and its state letter;
 * 0 when unreadable. */
static uint64_t proc_start(pid_t pid, char *state)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return 0;
    p += 2;
    if (state)
        *state = *p;
    /* fields after the name: 3 state ... 22 starttime */
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (!p)
            return 0;
        p++;
    }
    return strtoull(p, NULL, 10);
}

/* 1 when the process PID (started at TICKS when non-zero) still runs. */
static int alive(pid_t pid, uint64_t ticks)
{
    if (pid <= 0)
        return 0;
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return 0;
    char state = '?';
    uint64_t t = proc_start(pid, &state);
    if (t == 0)
        return kill(pid, 0) == 0 || errno != ESRCH;
    if (state == 'Z' || state == 'X')
        return 0; /* killed, waiting to be reaped by its parent */
    return ticks == 0 || t == ticks;
}

static void month_add(tg_account_t *acct, uint32_t month, int64_t amount, int64_t soft_limit)
{
    uint64_t tag = month & 0xffu;
    uint64_t old = atomic_load_explicit(&acct->month, memory_order_relaxed);
    uint64_t cur, next;
    do {
        cur = (old >> 56) == tag ? (old & MONTH_MASK) : 0;
        uint64_t sum = cur + (uint64_t)amount;
        next = (tag << 56) | (sum > MONTH_MASK ? MONTH_MASK : sum);
    } while (!atomic_compare_exchange_weak_explicit(&acct->month, &old, next, memory_order_relaxed, memory_order_relaxed));
    if (soft_limit > 0 && (int64_t)cur < soft_limit && (int64_t)(next & MONTH_MASK) >= soft_limit)
        atomic_store_explicit(&acct->soft_month, month + 1, memory_order_relaxed);
}

/* Bills and releases every open entry of LANE (index LI), whose owner is dead. 0, or -1 when the
 * ring had no room for an orphan record (the entries left stay ACTIVE for the next reap). */
static int reclaim_lane(tg_arena_t *a, tg_lane_t *lane, uint32_t li, size_t *released, size_t *billed)
{
    int rc = 0;
    size_t n = 0;
    for (uint32_t j = 0; j < a->hdr->lane_holds; j++) {
        tg_hold_t *h = &lane->holds[j];
        if (atomic_load_explicit(&h->state, memory_order_acquire) != TG_HOLD_ACTIVE)
            continue;
        uint32_t month = 0;
        int64_t cost = 0;
        int bill = tg_flight_bill_orphan(a, li, j, h, &month, &cost); /* the record first, then the counters */
        if (bill < 0) {
            rc = -1;
            break;
        }
        if (h->slot < a->hdr->max_accounts) {
            tg_account_t *acct = &a->accounts[h->slot];
            if (bill)
                atomic_fetch_add_explicit(&acct->requests, 1, memory_order_relaxed);
            if (bill && cost > 0) {
                atomic_fetch_add(&acct->spent, cost);
                month_add(acct, month, cost, 0);
            }
            if (bill && cost > h->amount) /* the relayed text went past the budget (flight.h) */
                atomic_fetch_add_explicit(&acct->overshoot, cost - h->amount, memory_order_relaxed);
            atomic_fetch_sub(&acct->reserved, h->amount);
        }
        atomic_store_explicit(&h->state, TG_HOLD_FREE, memory_order_release);
        *billed += (size_t)bill;
        n++;
    }
    atomic_fetch_add(&lane->reclaimed, n);
    *released += n;
    return rc;
}

size_t tg_credit_reap(tg_arena_t *a)
{
    size_t released = 0;
    pid_t me = tg_self_pid();
    for (uint32_t i = 0; i < a->hdr->n_lanes; i++) {
        tg_lane_t *lane = tg_lane_at(a, i);
        uint64_t w = atomic_load(&lane->owner);
        if (w == 0)
            continue;
        pid_t pid = (pid_t)(w & 0xffffffffu);
        uint64_t kind = w & ~0xffffffffull;
        if (pid == me)
            continue;
        uint64_t ticks = kind == TG_LANE_OWNED ? atomic_load(&lane->start_ticks) : 0;
        if (alive(pid, ticks))
            continue;
        if (!atomic_compare_exchange_strong(&lane->owner, &w, TG_LANE_RECLAIMING | (uint64_t)(uint32_t)me))
            continue;
        size_t before = released, billed = 0;
        int rc = reclaim_lane(a, lane, i, &released, &billed);
        if (released > before || rc != 0)
            tg_warn("credit: process %d died: %zu reservation(s) released, %zu request(s) in flight billed by estimate%s",
                    (int)pid, released - before, billed, rc ? "; the ring is full, the rest at the next reap" : "");
        if (rc != 0) {
            atomic_store(&lane->owner, w); /* still the dead owner's: a later reap finishes it */
            continue;
        }
        atomic_store(&lane->start_ticks, 0);
        atomic_store(&lane->owner, 0);
    }
    return released;
}

static struct tg_credit_local *local_get(tg_arena_t *a)
{
    struct tg_credit_local *L = a->credit;
    pid_t me = tg_self_pid();
    if (L && L->pid == me && L->base == a->base && L->created_ms == a->hdr->created_ms)
        return L;
    if (!L) {
        L = calloc(1, sizeof(*L));
        if (!L)
            return NULL;
        a->credit = L;
    }
    /* new, or inherited across fork (the parent's lane is not ours): start over in place */
    if (!L->free_stack)
        L->free_stack = malloc(a->hdr->lane_holds * sizeof(uint32_t));
    if (!L->free_stack)
        return NULL;
    L->pid = me;
    L->base = a->base;
    L->created_ms = a->hdr->created_ms;
    L->lane = TG_LANE_NONE;
    L->n_free = 0;
    L->next_reap_ms = 0;
    return L;
}

/* Claims a lane for this process. 0, or -1 when every lane is taken by a live process. */
static int lane_claim(tg_arena_t *a, struct tg_credit_local *L)
{
    pid_t me = tg_self_pid();
    uint64_t ticks = proc_start(me, NULL);
    for (int round = 0; round < 2; round++) {
        for (uint32_t i = 0; i < a->hdr->n_lanes; i++) {
            tg_lane_t *lane = tg_lane_at(a, i);
            uint64_t expect = 0;
            if (atomic_load_explicit(&lane->owner, memory_order_relaxed) != 0 ||
                !atomic_compare_exchange_strong(&lane->owner, &expect, TG_LANE_OWNED | (uint64_t)(uint32_t)me))
                continue;
            atomic_store(&lane->start_ticks, ticks);
            L->lane = i;
            L->n_free = a->hdr->lane_holds;
            for (uint32_t j = 0; j < a->hdr->lane_holds; j++) /* low indexes on top: few pages touched */
                L->free_stack[j] = a->hdr->lane_holds - 1 - j;
            return 0;
        }
        tg_credit_reap(a);
    }
    return -1;
}

static struct tg_credit_local *local_lane(tg_arena_t *a)
{
    struct tg_credit_local *L = local_get(a);
    if (!L)
        return NULL;
    if (L->lane == TG_LANE_NONE) {
        tg_credit_reap(a); /* a new process (a restarted worker): release what its predecessor held */
        if (lane_claim(a, L) != 0)
            return NULL;
        L->next_reap_ms = tg_now_ms() + 1000;
    }
    return L;
}

void tg_credit_maybe_reap(tg_arena_t *a, uint64_t now_ms)
{
    struct tg_credit_local *L = local_get(a);
    if (!L || now_ms < L->next_reap_ms)
        return;
    L->next_reap_ms = now_ms + 1000;
    tg_credit_reap(a);
}

uint32_t tg_credit_open_holds(const tg_arena_t *a)
{
    const struct tg_credit_local *L = a->credit;
    if (!L || L->pid != tg_self_pid() || L->lane == TG_LANE_NONE)
        return 0;
    return a->hdr->lane_holds - L->n_free;
}

void tg_credit_detach(tg_arena_t *a)
{
    struct tg_credit_local *L = a->credit;
    if (!L)
        return;
    if (L->pid == tg_self_pid() && a->hdr && L->base == a->base && L->lane != TG_LANE_NONE && L->n_free == a->hdr->lane_holds) {
        tg_lane_t *lane = tg_lane_at(a, L->lane);
        atomic_store(&lane->start_ticks, 0);
        atomic_store(&lane->owner, 0);
    }
    free(L->free_stack);
    free(L);
    a->credit = NULL;
}

int64_t tg_credit_month_spent(const tg_account_t *acct, uint32_t month)
{
    uint64_t w = atomic_load_explicit(&((tg_account_t *)acct)->month, memory_order_relaxed);
    return (w >> 56) == (month & 0xffu) ? (int64_t)(w & MONTH_MASK) : 0;
}

int64_t tg_credit_available(const tg_account_t *acct)
{
    tg_account_t *x = (tg_account_t *)acct;
    return atomic_load(&x->balance) - atomic_load(&x->spent) - atomic_load(&x->reserved);
}

int tg_credit_reserve(tg_arena_t *a, uint32_t slot, int64_t amount, const tg_credit_terms_t *t, tg_credit_hold_t *out)
{
    memset(out, 0, sizeof(*out));
    out->lane = TG_LANE_NONE;
    out->slot = slot;
    tg_account_t *acct = &a->accounts[slot];
    int64_t bal = atomic_load_explicit(&acct->balance, memory_order_relaxed);
    int64_t sp = atomic_load_explicit(&acct->spent, memory_order_relaxed);
    if (t->min_balance > 0 && bal - sp < t->min_balance)
        return TG_CREDIT_MIN_BALANCE;
    int64_t month = t->hard_limit > 0 ? tg_credit_month_spent(acct, t->month) : 0;
    if (t->hard_limit > 0 && month + amount > t->hard_limit)
        return TG_CREDIT_HARD_LIMIT;
    if (amount <= 0 && !t->flight)
        return TG_CREDIT_OK; /* nothing to hold (a free or an unpriced model) and no request to bill */
    struct tg_credit_local *L = local_lane(a);
    if (!L || L->n_free == 0)
        return TG_CREDIT_BUSY;
    uint32_t idx = L->free_stack[--L->n_free];
    tg_hold_t *h = &tg_lane_at(a, L->lane)->holds[idx];
    h->slot = slot;
    h->amount = amount > 0 ? amount : 0;
    h->t_ms = t->now_ms;
    tg_flight_fill(a, L->lane, idx, t->flight, t->month);
    atomic_store_explicit(&h->state, TG_HOLD_ACTIVE, memory_order_release); /* journal first ... */
    if (amount <= 0) { /* journalled for the reaper only: nothing is reserved */
        out->lane = L->lane;
        out->idx = idx;
        return TG_CREDIT_OK;
    }
    int64_t r = atomic_fetch_add(&acct->reserved, amount) + amount;  /* ... then the account */
    bal = atomic_load(&acct->balance);
    sp = atomic_load(&acct->spent);
    int why = TG_CREDIT_OK;
    if (r > bal - sp)
        why = TG_CREDIT_NO_FUNDS;
    else if (t->hard_limit > 0 && month + r > t->hard_limit)
        why = TG_CREDIT_HARD_LIMIT;
    if (why != TG_CREDIT_OK) {
        atomic_fetch_sub(&acct->reserved, amount);
        atomic_store_explicit(&h->state, TG_HOLD_FREE, memory_order_release);
        L->free_stack[L->n_free++] = idx;
        return why;
    }
    out->lane = L->lane;
    out->idx = idx;
    out->amount = amount;
    return TG_CREDIT_OK;
}

void tg_credit_settle(tg_arena_t *a, tg_credit_hold_t *h, int64_t real, uint32_t month, int64_t soft_limit)
{
    tg_account_t *acct = &a->accounts[h->slot];
    if (real > 0) {
        atomic_fetch_add_explicit(&acct->spent, real, memory_order_relaxed);
        month_add(acct, month, real, soft_limit);
    }
    if (h->lane == TG_LANE_NONE)
        return;
    if (real > h->amount)
        atomic_fetch_add_explicit(&acct->overshoot, real - h->amount, memory_order_relaxed);
    atomic_fetch_sub_explicit(&acct->reserved, h->amount, memory_order_release); /* counters first ... */
    struct tg_credit_local *L = a->credit;
    if (L && L->pid == tg_self_pid() && L->lane == h->lane) { /* ... then the journal entry */
        atomic_store_explicit(&tg_lane_at(a, h->lane)->holds[h->idx].state, TG_HOLD_FREE, memory_order_release);
        L->free_stack[L->n_free++] = h->idx;
    }
    h->lane = TG_LANE_NONE;
}

/* ---- after a reboot ---- */

static int read_boot_id(uint8_t out[16])
{
    char buf[64];
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    int k = 0;
    for (ssize_t i = 0; i < n && k < 32; i++) {
        char c = buf[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (v < 0)
            continue;
        if (k % 2 == 0)
            out[k / 2] = (uint8_t)(v << 4);
        else
            out[k / 2] |= (uint8_t)v;
        k++;
    }
    return k == 32 ? 0 : -1;
}

void tg_quota_boot_check(tg_arena_t *a)
{
    uint8_t id[16];
    if (read_boot_id(id) != 0 || memcmp(a->hdr->boot_id, id, 16) == 0)
        return;
    /* every process of the previous boot is dead: bill their requests in flight, then void the rest */
    for (uint32_t i = 0; i < a->hdr->n_lanes; i++) {
        tg_lane_t *lane = &a->lanes[i];
        size_t released = 0, billed = 0;
        if (atomic_load(&lane->owner) != 0 && reclaim_lane(a, lane, i, &released, &billed) != 0)
            tg_warn("credit: the usage ring is full; requests in flight before the reboot are not all billed");
    }
    uint32_t hw = atomic_load(&a->hdr->n_accounts_hw);
    for (uint32_t i = 0; i < hw && i < a->hdr->max_accounts; i++) {
        tg_account_t *acct = &a->accounts[i];
        for (int k = 0; k < TG_TAT_COUNT; k++)
            atomic_store(&acct->tat[k], 0);
        atomic_store(&acct->reserved, 0);
    }
    uint32_t mtop = atomic_load(&a->hdr->mlim_top);
    for (uint32_t i = 0; i < mtop && i < a->hdr->mlim_slots; i++)
        for (int k = 0; k < TG_TAT_COUNT; k++)
            atomic_store(&a->mlim[i].tat[k], 0);
    for (uint32_t i = 0; i < a->hdr->n_lanes; i++) {
        tg_lane_t *lane = tg_lane_at(a, i);
        if (atomic_load(&lane->owner) == 0)
            continue;
        for (uint32_t j = 0; j < a->hdr->lane_holds; j++)
            atomic_store(&lane->holds[j].state, TG_HOLD_FREE);
        atomic_store(&lane->start_ticks, 0);
        atomic_store(&lane->owner, 0);
    }
    memcpy(a->hdr->boot_id, id, 16);
}

int64_t tg_cost_nanos(const tg_price_t *p, uint64_t prompt, uint64_t completion, uint64_t cached, uint64_t rates_ppm,
                      uint64_t factor_ppm)
{
    if (!p)
        return 0;
    const uint64_t cap = 1000000000000ull; /* 1e12 tokens: keeps the 128-bit product far from overflow */
    prompt = prompt > cap ? cap : prompt;
    completion = completion > cap ? cap : completion;
    if (cached > prompt)
        cached = prompt;
    unsigned __int128 pico = (unsigned __int128)(prompt - cached) * p->input + (unsigned __int128)cached * p->cached +
                             (unsigned __int128)completion * p->output;
    unsigned __int128 v = pico * (rates_ppm ? rates_ppm : 1000000u) * (factor_ppm ? factor_ppm : 1000000u);
    v = (v + 500000000000000ull) / 1000000000000000ull;
    return v > (unsigned __int128)(INT64_MAX / 4) ? INT64_MAX / 4 : (int64_t)v;
}
