/* The end of every proxied request: account counters, the usage record into the ring (kept in a
 * local backlog and retried when the ring is momentarily full, never dropped), the access log. */
#ifndef TG_SETTLE_H
#define TG_SETTLE_H

#include "shm/credit.h"
#include "shm/usage.h"
#include "worker/translate.h"

/** Records U for the account in arena slot SLOT (U->cost_nanos is added to its `spent`). */
void tg_settle(uint32_t slot, const tg_usage_t *u, const char *method, const char *client_ip);
/** Records U and settles the admission's BILL (credit.h): the reservation is released and the
 * real cost moves to `spent` once the record is in the ring (or, if the ring is full, when the
 * backlog gets it there), so a worker that dies meanwhile leaves the reservation to the reaper. */
void tg_settle_bill(uint32_t slot, const tg_usage_t *u, const char *method, const char *client_ip,
                    const tg_credit_bill_t *bill);
/** After each relayed event of the request holding H: keeps its flight entry (shm/flight.h)
 * current, so that if this process dies now the orphan is billed like an abandoned stream: the
 * prompt the upstream reported (U's counts when USAGE_SEEN, a translated stream's own otherwise),
 * else the admission's estimate, and the completion estimated from TEXT_CHARS relayed (or the
 * upstream's count when larger). Plain stores, no syscall. */
void tg_settle_progress(const tg_credit_hold_t *h, const tg_translation_t *tr, const tg_usage_t *u, int usage_seen,
                        uint64_t text_chars);
/** Retries records held back by a full ring; call from the loop. Returns how many remain. */
size_t tg_settle_flush_backlog(void);
/** 1 when the ring has room for new requests (admission control). */
int tg_settle_ring_has_room(void);

#endif
