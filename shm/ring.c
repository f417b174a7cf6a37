/* Usage ring implementation; the design essay is in ring.h. */
#include "shm/ring.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "common/self_pid.h"

static tg_ring_slot_t *slot_at(tg_arena_t *a, uint64_t pos)
{
    return &a->ring[pos & (a->hdr->ring_slots - 1)];
}

int tg_ring_push(tg_arena_t *a, const void *data, size_t len)
{
    if (len > TG_RING_PAYLOAD)
        return TG_RING_TOOBIG;
    uint64_t pos = atomic_load_explicit(&a->hdr->ring_head, memory_order_relaxed);
    tg_ring_slot_t *s;
    for (;;) {
        s = slot_at(a, pos);
        uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
        int64_t diff = (int64_t)(seq - pos);
        if (diff == 0) {
            if (atomic_compare_exchange_weak_explicit(&a->hdr->ring_head, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
        } else if (diff < 0) {
            atomic_fetch_add_explicit(&a->hdr->ring_full_events, 1, memory_order_relaxed);
            return TG_RING_FULL;
        } else {
            pos = atomic_load_explicit(&a->hdr->ring_head, memory_order_relaxed);
        }
    }
    s->pid = (int32_t)tg_self_pid();
    s->len = (uint32_t)len;
    memcpy(s->data, data, len);
    /* CAS, not a store: if the consumer gave this claim up for dead (a producer stalled for
     * seconds) and recycled the slot, publishing now would corrupt the ring; the record is
     * reported as lost instead */
    uint64_t expect = pos;
    if (!atomic_compare_exchange_strong_explicit(&s->seq, &expect, pos + 1, memory_order_release, memory_order_relaxed))
        return TG_RING_LOST;
    return TG_RING_OK;
}

uint64_t tg_ring_used(const tg_arena_t *a)
{
    uint64_t head = atomic_load_explicit(&a->hdr->ring_head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&a->hdr->ring_tail, memory_order_relaxed);
    return head - tail;
}

uint64_t tg_ring_tail(const tg_arena_t *a)
{
    return atomic_load_explicit(&a->hdr->ring_tail, memory_order_acquire);
}

int tg_ring_peek(tg_arena_t *a, uint64_t pos, const uint8_t **data, size_t *len)
{
    tg_ring_slot_t *s = slot_at(a, pos);
    uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
    if (seq == pos + 1) {
        *data = s->data;
        *len = s->len;
        return TG_RING_OK;
    }
    if (atomic_load_explicit(&a->hdr->ring_head, memory_order_acquire) <= pos)
        return TG_RING_EMPTY;
    /* Claimed but not published: a producer is mid-write, or died there. */
    int32_t pid = s->pid;
    if (pid == 0 || (kill(pid, 0) != 0 && errno == ESRCH))
        return TG_RING_STUCK;
    return TG_RING_PENDING;
}

void tg_ring_release(tg_arena_t *a, uint64_t end)
{
    uint64_t pos = atomic_load_explicit(&a->hdr->ring_tail, memory_order_relaxed);
    uint32_t size = a->hdr->ring_slots;
    for (; pos < end; pos++) {
        tg_ring_slot_t *s = slot_at(a, pos);
        s->pid = 0;
        atomic_store_explicit(&s->seq, pos + size, memory_order_release);
    }
    atomic_store_explicit(&a->hdr->ring_tail, end, memory_order_release);
}

int tg_ring_skip(tg_arena_t *a, uint64_t pos)
{
    tg_ring_slot_t *s = slot_at(a, pos);
    uint64_t expect = pos;
    /* only a claim still unpublished is skipped: a producer that publishes at the last moment wins */
    if (!atomic_compare_exchange_strong_explicit(&s->seq, &expect, pos + a->hdr->ring_slots, memory_order_acq_rel,
                                                 memory_order_relaxed))
        return -1;
    atomic_fetch_add(&a->hdr->ring_skipped, 1);
    s->pid = 0;
    atomic_store_explicit(&a->hdr->ring_tail, pos + 1, memory_order_release);
    return 0;
}
