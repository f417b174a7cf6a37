/* Layout of the shared-memory arena: types only, so every process and module can refer to them.
 *
 * The arena is one file under the data directory, mapped MAP_SHARED by the master, the persister
 * and every worker. It holds no process-private pointers: regions are found by offsets in the
 * header. Any change to these structs bumps TG_ARENA_VERSION, and a file whose header does not
 * match (magic, version, sizes) is recreated, never reused.
 *
 *   [header][account slots][key index][upstream key slots][usage ring slots]
 *   [policy heap][model-limit states][reservation lanes][policy snapshots x 2][key-pool cursors]
 *   [in-flight requests]
 */
#ifndef TG_ARENA_T_H
#define TG_ARENA_T_H

#include <stdatomic.h>
#include <stdint.h>

#include "shm/usage.h"

#define TG_ARENA_MAGIC 0x314e455241475454ULL /* "TTGARENA1" little-endian-ish tag */
#define TG_ARENA_VERSION 4u

#define TG_NAME_MAX 64
#define TG_URL_MAX 256
#define TG_SEALED_MAX 320 /* 12-byte nonce + 16-byte tag + secret of up to 292 bytes */

/* Account flags (tg_account_t.flags). */
#define TG_ACCT_USED 0x1u      /* slot holds an account */
#define TG_ACCT_ENABLED 0x2u   /* Status: the parent's switch */
#define TG_ACCT_SUSPENDED 0x4u /* set by the system (balance, HardLimit) */
#define TG_ACCT_ROOT 0x8u
#define TG_ACCT_OWNER 0x10u
#define TG_ACCT_LIMITED 0x20u    /* some of RPM..TPD is set: the limiter charges this slot (derived at publish) */
#define TG_ACCT_POLICY 0x40u     /* `policy` refers to a compiled blob in the policy heap (derived at publish) */
#define TG_ACCT_POLICY_BAD 0x80u /* the account's lists could not be compiled or stored: refuse its calls */

#define TG_SLOT_NONE 0xffffffffu

/* Rate-limit state indexes: GCRA theoretical arrival times (tat[]) and calendar-day counters (day[]). */
enum { TG_TAT_RPM = 0, TG_TAT_RPH, TG_TAT_TPM, TG_TAT_TPH, TG_TAT_COUNT };
enum { TG_DAY_RPD = 0, TG_DAY_TPD, TG_DAYC_COUNT };

/* Reference from an account slot to its compiled policy blob in the policy heap (shm/policy.h).
 * gen 0 = none. A blob is found at heap offset off16 * 16 and is valid while its block header
 * carries the same gen. */
typedef struct tg_policy_ref {
    uint64_t gen;
    uint32_t off16;
    uint32_t len;
} tg_policy_ref_t;

/* One account: 6 cache lines (384 bytes).
 * Lines 0-3, settings: written only by the persister inside the seqlock (seq odd while writing);
 *   workers read them with tg_account_read() / tg_account_read_limits().
 * Line 4, money: atomics any process adds to (credit.h).
 * Line 5, limiter: GCRA timestamps and day counters (limiter.h), charged by this account's
 *   requests and by its descendants' (an ancestor's limits cap its whole subtree). */
typedef struct tg_account {
    _Atomic uint32_t seq;
    uint32_t flags;
    uint64_t id;
    uint8_t key_hash[32]; /* in the first cache line with seq: a key lookup's confirmation reads one line */
    uint64_t parent_id;
    uint64_t owner_id;
    uint64_t up_id;      /* id expected at up_slot: the nearest ancestor that exists */
    uint32_t up_slot;    /* TG_SLOT_NONE at the top */
    uint32_t owner_slot; /* TG_SLOT_NONE when unknown */
    int32_t level;
    uint32_t depth;
    int32_t gear;
    uint32_t rpm, rph, rpd; /* 0 = unlimited */
    uint64_t tpm, tph, tpd;
    uint64_t allow_levels; /* tg_levels_parse() of AllowLevels: bit L-1 refuses level L; 0 = unrestricted */
    uint64_t rates_ppm;    /* Rates x 1e6 */
    uint64_t factor_ppm;   /* Factor x 1e6 */
    int64_t hard_limit;    /* monthly, nano-dollars; 0 = none */
    int64_t soft_limit;
    tg_policy_ref_t policy;
    char name[TG_NAME_MAX];
    /* money, nano-dollars (line 4) */
    _Atomic int64_t balance __attribute__((aligned(64))); /* published by the persister: spendable balance */
    _Atomic int64_t reserved; /* in-flight reservations (workers; journalled per process, credit.h) */
    _Atomic int64_t spent;    /* settled but not yet drained into the ledger (workers add, persister subtracts) */
    _Atomic uint64_t requests;
    _Atomic uint64_t month;    /* month tag (8 bits) << 56 | nano-dollars settled in that month */
    _Atomic int64_t overshoot; /* sum of (real - estimate) over requests that cost more than reserved */
    _Atomic uint32_t soft_month; /* 1 + month tag in which SoftLimit was reached (0: not yet): for a notice */
    uint32_t _pad1;
    uint64_t _pad2;
    /* limiter (line 5) */
    _Atomic uint64_t tat[TG_TAT_COUNT] __attribute__((aligned(64))); /* CLOCK_MONOTONIC ns */
    _Atomic uint64_t day[TG_DAYC_COUNT];                             /* day tag (16 bits) << 48 | count */
    uint64_t _pad3[2];
} __attribute__((aligned(64))) tg_account_t;

/* Limiter state of one ModelLimits / MODEL_LIMITS entry, in the model-limit region; the persister
 * assigns an entry per (account, model pattern) or (owner, model pattern). */
typedef struct tg_mlim_state {
    _Atomic uint64_t tat[TG_TAT_COUNT];
    _Atomic uint64_t day[TG_DAYC_COUNT];
    uint64_t _pad[2];
} __attribute__((aligned(64))) tg_mlim_state_t;

/* Policy heap block header; the payload follows. gen is even and non-zero while the block holds a
 * published blob, odd while the persister writes it, 0 when free. cls never changes once set. */
typedef struct tg_heap_block {
    _Atomic uint64_t gen;
    uint32_t cls; /* block size = 64 << cls bytes, header included */
    uint32_t len; /* payload bytes */
} tg_heap_block_t;

/* Reservation journal (credit.h): one lane per process that reserves credit; each lane holds
 * hdr->lane_holds reservations (arena.max_inflight_per_worker) and takes hdr->lane_size bytes. */
#define TG_LANES 128u
typedef struct tg_hold {
    _Atomic uint32_t state; /* TG_HOLD_FREE / TG_HOLD_ACTIVE */
    uint32_t slot;
    int64_t amount;
    uint64_t t_ms;
    uint64_t _pad;
} tg_hold_t;
typedef struct tg_lane {
    _Atomic uint64_t owner;       /* 0 free; TG_LANE_OWNED | pid, or TG_LANE_RECLAIMING | reclaimer pid */
    _Atomic uint64_t start_ticks; /* the owner's start time (/proc/PID/stat field 22): tells a reused pid */
    _Atomic uint64_t reclaimed;   /* holds reclaimed from dead owners over the lane's life */
    uint8_t _pad[40];
    tg_hold_t holds[]; /* hdr->lane_holds of them */
} __attribute__((aligned(64))) tg_lane_t;

/* What a reservation's request is, kept beside the lane entry with the same (lane, index) in the
 * in-flight region (flight.h): enough for the reaper to bill a request whose process died after
 * it reached an upstream, as the text relayed so far shows it. Apart from the hot 32-byte lane
 * entries, so the journal stays compact; like them, written only by the lane's owner while the
 * entry is ACTIVE. The three token counts change while the answer flows (relaxed stores, each
 * read on its own by the reaper). */
#define TG_FLIGHT_DISPATCHED 0x1u /* the upstream exchange was started: bill it if the process dies */
#define TG_FLIGHT_STREAM 0x2u
typedef struct tg_flight {
    char request_id[TG_REQUEST_ID_MAX];
    uint64_t account_id;
    uint64_t upstream_id;                /* the key of the latest attempt */
    _Atomic uint64_t prompt_tokens;      /* the admission's estimate, then the upstream's report once relayed */
    _Atomic uint64_t cached_tokens;      /* part of prompt_tokens the upstream reported read from a cache */
    _Atomic uint64_t completion_tokens;  /* estimated from the text relayed so far (0: none yet) */
    uint64_t completion_budget;          /* completion tokens the reservation covers */
    uint64_t price_input, price_output, price_cached; /* the admission's price (tg_price_t; 0: unpriced) */
    uint64_t rates_ppm, factor_ppm;
    _Atomic uint64_t ts_ms;     /* ts of the usage record, set before the worker pushes it (0: not yet) */
    _Atomic uint32_t flags;     /* TG_FLIGHT_* */
    uint32_t month;             /* month of the admission (credit.h) */
    char model[TG_MODEL_MAX];
    char path[TG_PATH_MAX];
} tg_flight_t;

/* Policy snapshot buffer (policy.h): two of them, the active one is hdr->policy_gen & 1. */
typedef struct tg_policy_buf {
    uint64_t gen;
    uint32_t len;
    uint32_t _pad;
    uint8_t data[];
} tg_policy_buf_t;

/* Round-robin cursor of one (owner, level) key pool (keypool.h). */
typedef struct tg_rr_cursor {
    _Atomic uint64_t key; /* 0 empty; else owner_id << 16 | level + 1 */
    _Atomic uint64_t next;
} tg_rr_cursor_t;

/* Key index entry: SHA-256 of an API key → account slot. Open addressing, linear probing; one
 * atomic word per entry, eight to a cache line: a tag (bytes 8..11 of the digest; bytes 0..7 pick
 * the start position) in the high 32 bits, slot+1 in the low 32 bits (0 empty, UINT32_MAX
 * deleted). The digest itself is only in the account slot, which confirms every match, so a
 * lookup reads about one index line and one account line. */
typedef struct tg_index_entry {
    _Atomic uint64_t word;
} tg_index_entry_t;

#define TG_INDEX_EMPTY 0u
#define TG_INDEX_DELETED 0xffffffffu

/* Upstream provider key. Settings under a seqlock (persister), health counters atomic (workers). */
#define TG_UPSTREAM_USED 0x1u
#define TG_UPSTREAM_ENABLED 0x2u
typedef struct tg_upstream {
    _Atomic uint32_t seq;
    uint32_t flags;
    uint64_t id;
    uint64_t owner_id;
    int32_t level;
    int32_t protocol; /* tg_protocol_t */
    char name[TG_NAME_MAX];
    char url[TG_URL_MAX];
    uint32_t sealed_len;
    uint8_t sealed[TG_SEALED_MAX]; /* AES-256-GCM sealed secret: only processes holding the master key can open it */
    _Atomic uint64_t sleep_until_ms;
    _Atomic uint32_t inflight;
    _Atomic uint32_t consecutive_failures;
    _Atomic uint64_t requests;
    _Atomic uint64_t failures;
    _Atomic uint32_t disabled; /* set by a worker when the provider refused the key (401/403); cleared on publish */
} __attribute__((aligned(64))) tg_upstream_t;

/* Usage ring: bounded multi-producer single-consumer queue of fixed-size slots (Vyukov's
 * sequence-number scheme). A slot at position p is free for a producer when seq == p, holds a
 * record for the consumer when seq == p + 1, and is recycled by the consumer to p + slots. */
#define TG_RING_SLOT_SIZE 512u
#define TG_RING_PAYLOAD (TG_RING_SLOT_SIZE - 16u)
typedef struct tg_ring_slot {
    _Atomic uint64_t seq;
    uint32_t len;
    int32_t pid; /* producer, written before the payload: lets the consumer skip a claim whose producer died */
    uint8_t data[TG_RING_PAYLOAD];
} tg_ring_slot_t;

typedef struct tg_arena_hdr {
    uint64_t magic;
    uint32_t version;
    uint32_t header_size;
    uint64_t total_size;
    uint32_t max_accounts;
    uint32_t index_slots; /* power of two, >= 2 * max_accounts */
    uint32_t max_upstreams;
    uint32_t ring_slots; /* power of two */
    uint32_t account_size, index_entry_size, upstream_size, ring_slot_size;
    uint64_t off_accounts, off_index, off_upstreams, off_ring;
    uint64_t created_ms;
    /* shared state */
    _Atomic uint32_t persister_ready; /* 1 once the persister published every account */
    _Atomic uint32_t n_accounts_hw;   /* high-water mark of used account slots */
    _Atomic uint32_t n_upstreams_hw;
    _Atomic uint32_t _pad0;
    _Atomic uint64_t settings_gen; /* bumped by the persister after each publish */
    _Atomic uint64_t ring_head __attribute__((aligned(64)));
    _Atomic uint64_t ring_tail __attribute__((aligned(64)));
    _Atomic uint64_t ring_full_events;
    _Atomic uint64_t ring_skipped; /* claims abandoned by dead producers */
    /* quota engine regions (shm/policy.h, credit.h, keypool.h) */
    uint64_t heap_bytes;
    uint32_t mlim_slots, n_lanes, lane_holds, policy_buf_size, cursor_slots, lane_size;
    uint64_t off_heap, off_mlim, off_lanes, off_policy, off_cursors;
    uint64_t off_flights; /* n_lanes x lane_holds tg_flight_t */
    uint32_t flight_size, _pad3;
    uint8_t boot_id[16]; /* kernel boot id when the limiter clocks were last valid (CLOCK_MONOTONIC) */
    _Atomic uint64_t heap_top __attribute__((aligned(64))); /* persister: bump pointer of the policy heap */
    _Atomic uint64_t heap_gen;    /* persister: last blob generation handed out */
    _Atomic uint32_t mlim_top;    /* persister: model-limit states ever handed out */
    _Atomic uint32_t _pad2;
    _Atomic uint64_t policy_gen __attribute__((aligned(64))); /* snapshot generation; the active buffer is gen & 1 */
} tg_arena_hdr_t;

typedef struct tg_arena {
    void *base;
    uint64_t size;
    int fd;
    tg_arena_hdr_t *hdr;
    tg_account_t *accounts;
    tg_index_entry_t *index;
    tg_upstream_t *upstreams;
    tg_ring_slot_t *ring;
    uint8_t *heap;
    tg_mlim_state_t *mlim;
    tg_lane_t *lanes;
    tg_policy_buf_t *policy[2];
    tg_rr_cursor_t *cursors;
    tg_flight_t *flights;
    /* process-private state of the quota engine (never in the arena): the persister's policy
     * writer and this process's reservation lane; created on first use, freed by tg_arena_close */
    struct tg_policy_writer *writer;
    struct tg_credit_local *credit;
} tg_arena_t;

#endif
