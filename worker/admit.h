/* The admission decision for a model call (architecture.md, "A request's path", steps 2-4):
 * account lists (AllowIPs, Resources, AllowModels, own and every ancestor's), model mapping
 * (ModelMapper, then the owner's MODEL_MAPPER), key-pool level (LevelMapper, then LEVEL_MAPPER,
 * then the account's Level), price (the owner's PRICES, then the default table), the minimum
 * balance, rate limits (the account's own, every ancestor's, the account's ModelLimits and the
 * owner's MODEL_LIMITS for the model) and the credit reservation, in that order. A request
 * refused by a later step gives back what the earlier ones took.
 *
 * After the exchange, tg_admit_finish() corrects the token limits to the real usage and prices it;
 * the credit is settled when the usage record is in the ring (settle.c, tg_settle_bill), so that a
 * process that dies in between leaves its reservation to the journal's reaper (credit.h).
 *
 * Ancestors: the walk follows up_slot for at most TG_ADMIT_WALK_MAX ancestors; limits and lists
 * of ancestors further up are not enforced (docs/quota.md).
 *
 * Lifecycle: one tg_admit_ctx_t per process (workers: tg_admit_worker(), created on the first
 * request); one tg_admit_t per request, in its pool. */
#ifndef TG_ADMIT_H
#define TG_ADMIT_H

#include <h2o.h>
#include <stdint.h>

#include "common/json_scan.h"
#include "shm/accounts.h"
#include "shm/credit.h"
#include "shm/limiter.h"
#include "shm/policy.h"
#include "shm/usage.h"

#define TG_ADMIT_WALK_MAX 16
#define TG_ADMIT_CHARGES 64

/* A token limit charged by estimate, to correct at the end. */
typedef struct tg_admit_charge {
    _Atomic uint64_t *word;
    uint64_t period_ns; /* 0: a day counter */
    uint64_t limit;
} tg_admit_charge_t;

typedef struct tg_admit {
    uint32_t slot;
    int32_t level;  /* key-pool level for this request */
    uint32_t day, month;
    uint64_t rates_ppm, factor_ppm;
    int64_t soft_limit;
    int priced;     /* 0: unpriced model allowed by ALLOW_UNPRICED (billed 0) */
    int mapped;     /* the model was renamed by a mapper */
    int finished;
    tg_price_t price;
    uint64_t est_tokens;
    int64_t est_cost, cost;
    tg_credit_hold_t hold;
    char model[TG_MODEL_MAX]; /* the model used for routing and billing */
    size_t model_len;
    tg_rl_view_t req_view, tok_view; /* the tightest request and token limits (limit 0: none) */
    uint32_t n_charges;
    tg_admit_charge_t charges[TG_ADMIT_CHARGES];
} tg_admit_t;

typedef struct tg_admit_req {
    uint32_t slot;
    const tg_account_settings_t *acct;
    const char *path;
    size_t path_len;
    const char *model; /* as requested */
    size_t model_len;
    int family;          /* AF_INET / AF_INET6 of the client; 0 unknown */
    const uint8_t *addr; /* 4 or 16 bytes, network order */
    uint64_t body_len;
    uint64_t max_tokens; /* max_tokens / max_completion_tokens of the request, 0 when absent */
    const char *request_id; /* journalled with the reservation so that the request is billed even if
                             * this process dies (shm/flight.h); NULL: not journalled when free */
    int stream;
    int unmetered;       /* the endpoint reports no tokens per request (files, threads): estimate none */
    int billed_after;    /* the answer may bill work reserved nowhere (Assistants runs, worker/run_usage.h):
                            refused while the account has no credit left (docs/quota.md) */
} tg_admit_req_t;

typedef struct tg_admit_refusal {
    int status;
    const char *type, *code;
    char message[192];
    uint32_t retry_after_s; /* 0: no Retry-After */
    tg_rl_view_t view;      /* the limit that refused (limit 0: none) */
    int view_tokens;        /* that limit counts tokens */
} tg_admit_refusal_t;

typedef struct tg_admit_ctx {
    tg_arena_t *arena;
    tg_policy_view_t policy;
    tg_cal_t cal;
    uint8_t *blob[TG_ADMIT_WALK_MAX + 1];
    size_t blob_cap[TG_ADMIT_WALK_MAX + 1];
} tg_admit_ctx_t;

/** Prepares C for ARENA; TIMEZONE (NULL: leave the process's TZ) sets the calendar's zone. */
void tg_admit_ctx_init(tg_admit_ctx_t *c, tg_arena_t *arena, const char *timezone);
void tg_admit_ctx_dispose(tg_admit_ctx_t *c);
/** The worker's context (created on first use from tg_w). */
tg_admit_ctx_t *tg_admit_worker(void);

/** Decides on REQ. 0: admitted, *OUT holds the reservation (finish and settle it exactly once).
 * -1: refused, *WHY says how to answer; nothing is held. */
int tg_admit(tg_admit_ctx_t *c, const tg_admit_req_t *req, tg_admit_t *out, tg_admit_refusal_t *why);
/** The exchange is over: corrects the token limits from the estimate to PROMPT + COMPLETION and
 * returns the real cost (nano-dollars; CACHED is part of PROMPT). Idempotent. */
int64_t tg_admit_finish(tg_admit_ctx_t *c, tg_admit_t *adm, uint64_t prompt, uint64_t completion, uint64_t cached);
/** The price of MODEL as an answer named it (an Assistants run), for OWNER_ID (then the defaults):
 * 1 and *PRICE when priced, 0 when not. */
int tg_admit_price_of(tg_admit_ctx_t *c, uint64_t owner_id, const char *model, size_t n, tg_price_t *price);
/** The bill to settle once the usage record is pushed (after tg_admit_finish). */
tg_credit_bill_t tg_admit_bill(const tg_admit_t *adm);
/** SWITCH_OVER of OWNER_ID: the level to fail over to from LEVEL, or 0. */
int32_t tg_admit_switch_over(tg_admit_ctx_t *c, uint64_t owner_id, int32_t level);
/** MODEL_FAILOVER of OWNER_ID (api-compat 7.4): moves ADM to the backup of its model, following
 * the chain past backups the caller in SLOT may not use (its AllowModels) or that have no price
 * (unless ALLOW_UNPRICED); models in SEEN[0..N_SEEN) and ADM's own end the chain. On 0, ADM holds
 * the backup (model, price; mapped set) and *LEVEL its level (the caller's LevelMapper, the
 * owner's LEVEL_MAPPER, else ACCT_LEVEL); -1 when there is no backup left. The reservation and
 * the limits taken at admission stay as they are. */
int tg_admit_failover(tg_admit_ctx_t *c, uint64_t owner_id, uint32_t slot, int32_t acct_level, tg_admit_t *adm,
                      const char *const *seen, size_t n_seen, int32_t *level);

/* HTTP glue (worker). */
/** Fills REQ's client address from the connection (storage in SS). */
void tg_admit_peer(h2o_req_t *req, struct sockaddr_storage *ss, tg_admit_req_t *in);
/** max_tokens / max_completion_tokens / max_output_tokens of a JSON body, 0 when absent. */
uint64_t tg_admit_max_tokens(const char *body, size_t len);
/** Adds x-ratelimit-* headers for the limits that applied (none when no limit applies). */
void tg_admit_headers(h2o_req_t *req, const tg_admit_t *adm);
/** Answers a refusal (status, Retry-After, x-ratelimit-*, JSON error). */
void tg_admit_refuse(h2o_req_t *req, const tg_admit_refusal_t *why);
/** The body to send upstream: BODY with the model (the raw span MODEL inside it) replaced by the
 * mapped model when a mapper renamed it; BODY itself otherwise. */
h2o_iovec_t tg_admit_body(h2o_mem_pool_t *pool, h2o_iovec_t body, const tg_json_span_t *model, const tg_admit_t *adm);
/** Formats NANOS as dollars with nine decimals ("0.000001234") into BUF (32 bytes). */
size_t tg_admit_dollars(char *buf, int64_t nanos);

#endif
