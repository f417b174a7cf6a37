/* In-flight requests: what a journal entry's request is (tg_flight_t, arena-t.h), so that a
 * request whose process died after it reached an upstream is still billed exactly once.
 *
 * The owner of a reservation fills its flight entry before the journal entry becomes ACTIVE
 * (request id, account, model, path, the admission's prompt estimate and completion budget, its
 * price, Rates and Factor), marks it DISPATCHED just before each upstream exchange starts, keeps
 * its tokens current as the answer is relayed (tg_flight_progress: the upstream's reported prompt
 * once known, completion tokens estimated from the text relayed so far, as for a stream the client
 * abandoned, api-compat 7.15), and sets ts_ms just before it pushes the usage record (the record's
 * own ts_ms). The reaper (credit.c), for each ACTIVE entry of a dead process that was DISPATCHED,
 * pushes one "orphan" record: flagged TG_USAGE_ESTIMATED | TG_USAGE_ORPHAN, status 0, the tokens of
 * the entry (the prompt only when nothing was relayed: the upstream did receive it), their cost at
 * the admission's price (tg_flight_orphan_cost: at most the reserved amount, unless the relayed
 * text alone passed the completion budget), and the ts_ms of the entry (set by the reaper by CAS
 * when the worker had not got that far). So an orphan has the same usage key (ts_ms,
 * request id) as the real record the worker may have pushed before it died, and as the orphan of
 * a reaper that died mid-way: the persister stores at most one record per key (store/drain.c).
 * Entries never dispatched are released without a record: their request never left tollgate. */
#ifndef TG_FLIGHT_H
#define TG_FLIGHT_H

#include <stddef.h>
#include <stdint.h>

#include "shm/arena-t.h"
#include "shm/policy.h"

struct tg_credit_hold;

/* What the admission knows of a request, copied into its flight entry. */
typedef struct tg_flight_info {
    const char *request_id; /* NUL-terminated */
    uint64_t account_id;
    const char *model, *path;
    size_t model_len, path_len;
    uint64_t prompt_tokens, completion_tokens; /* estimates: the completion budget reserved */
    int stream;
    const tg_price_t *price; /* NULL: unpriced (billed 0) */
    uint64_t rates_ppm, factor_ppm;
} tg_flight_info_t;

/** Owner: fills the flight entry of (LANE, IDX) for INFO admitted in MONTH, before the journal
 * entry becomes ACTIVE; INFO NULL clears it (a reservation with no request to bill). */
void tg_flight_fill(tg_arena_t *a, uint32_t lane, uint32_t idx, const tg_flight_info_t *info, uint32_t month);
/** Owner: the request's upstream exchange with key UPSTREAM_ID starts now. No-op without a hold. */
void tg_flight_dispatched(tg_arena_t *a, const struct tg_credit_hold *h, uint64_t upstream_id);
/** Owner: the request fell over to MODEL (LEN bytes) priced PRICE (NULL: unpriced); its orphan
 * is recorded and priced so from now on. No-op without a hold. */
void tg_flight_model(tg_arena_t *a, const struct tg_credit_hold *h, const char *model, size_t len, const tg_price_t *price);
/** Owner, for each relayed event (plain stores, no syscall): the upstream reported PROMPT tokens
 * (CACHED of them from a cache; PROMPT 0: not yet, the admission's estimate stays) and the
 * COMPLETION tokens estimated from the text relayed so far. No-op without a hold. */
void tg_flight_progress(tg_arena_t *a, const struct tg_credit_hold *h, uint64_t prompt, uint64_t cached,
                        uint64_t completion);
/** The cost of an orphan of entry F whose reservation is AMOUNT: its tokens at its price, capped
 * at AMOUNT unless the relayed completion passed the budget (the text proves more was produced). */
int64_t tg_flight_orphan_cost(const tg_flight_t *f, int64_t amount);
/** Owner: the usage record about to be pushed has TS_MS. No-op without a hold. */
void tg_flight_record_ts(tg_arena_t *a, const struct tg_credit_hold *h, uint64_t ts_ms);
/** Reaper: pushes the orphan record of the ACTIVE entry H at (LANE, IDX) of a dead process when it
 * was dispatched (*MONTH = the admission's month, *COST = the record's cost). 1 pushed, 0 nothing
 * to bill, -1 the ring has no room now (leave the entry for a later reap). */
int tg_flight_bill_orphan(tg_arena_t *a, uint32_t lane, uint32_t idx, const tg_hold_t *h, uint32_t *month,
                          int64_t *cost);

#endif
