/* The usage ring: lock-free multi-producer (workers), single-consumer (persister) queue of
 * msgpack-encoded usage records in fixed-size arena slots.
 *
 * Design. Slot p (position modulo size) carries a sequence number. A producer claims position
 * `head` by CAS when the slot's seq equals head, writes its pid, the payload and then releases
 * seq = head + 1. The consumer reads position `tail` when seq == tail + 1. It does not recycle a
 * slot when it reads it: it first makes the records durable, then calls tg_ring_release(), which
 * sets seq = p + size for each slot and advances the shared tail. A persister that dies between
 * reading and releasing therefore reads the same records again after restart; the store
 * recognises them by the ring cursor it commits in the same batch as the records. A producer that dies between its claim and its publish would
 * block the consumer forever; tg_ring_peek() reports a claimed slot as TG_RING_PENDING while its
 * producer lives and TG_RING_STUCK when the producer is gone (or never got to write its pid, a
 * window of nanoseconds); the consumer skips a slot with tg_ring_skip() only after it stayed
 * STUCK for seconds. No lock is ever held. */
#ifndef TG_RING_H
#define TG_RING_H

#include "shm/arena-t.h"

#include <stddef.h>

enum { TG_RING_OK = 0, TG_RING_FULL, TG_RING_EMPTY, TG_RING_PENDING, TG_RING_STUCK, TG_RING_TOOBIG, TG_RING_LOST };

/** Appends one record of LEN bytes (≤ TG_RING_PAYLOAD). TG_RING_OK or TG_RING_FULL / TG_RING_TOOBIG, or
 * TG_RING_LOST when this producer stalled so long after its claim that the consumer skipped it. */
int tg_ring_push(tg_arena_t *a, const void *data, size_t len);
/** Records in the ring not yet released by the consumer. */
uint64_t tg_ring_used(const tg_arena_t *a);
/** Consumer: looks at position POS (start with tg_ring_tail()). On TG_RING_OK sets *data and *len to
 * the record in place (valid until released); TG_RING_EMPTY, TG_RING_PENDING or TG_RING_STUCK otherwise. */
int tg_ring_peek(tg_arena_t *a, uint64_t pos, const uint8_t **data, size_t *len);
/** Consumer: the first position not yet released. */
uint64_t tg_ring_tail(const tg_arena_t *a);
/** Consumer: recycles every slot before END and moves the shared tail there. */
void tg_ring_release(tg_arena_t *a, uint64_t end);
/** Consumer: recycles a stuck slot at POS == tail (its producer died mid-write). 0, or -1 when
 * the producer published after all (read it normally then). */
int tg_ring_skip(tg_arena_t *a, uint64_t pos);

#endif
