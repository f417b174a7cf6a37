/* Layout of the shared-memory arena: types only, so every process and module can refer to them.
 *
 * The arena is one file under the data directory, mapped MAP_SHARED by the master, the persister
 * and every worker. It holds no process-private pointers: regions are found by offsets in the
 * header. Any change to these structs bumps TG_ARENA_VERSION, and a file whose header does not
 * match (magic, version, sizes) is recreated, never reused.
 *
 *   [header][account slots][key index][upstream key slots][usage ring slots]
 */
#ifndef TG_ARENA_T_H
#define TG_ARENA_T_H

#include <stdatomic.h>
#include <stdint.h>

#define TG_ARENA_MAGIC 0x314e455241475454ULL /* "TTGARENA1" little-endian-ish tag */
#define TG_ARENA_VERSION 1u

#define TG_NAME_MAX 64
#define TG_URL_MAX 256
#define TG_SEALED_MAX 320 /* 12-byte nonce + 16-byte tag + secret of up to 292 bytes */

/* Account flags (tg_account_t.flags). */
#define TG_ACCT_USED 0x1u      /* slot holds an account */
#define TG_ACCT_ENABLED 0x2u   /* Status: the parent's switch */
#define TG_ACCT_SUSPENDED 0x4u /* set by the system (balance, HardLimit) */
#define TG_ACCT_ROOT 0x8u
#define TG_ACCT_OWNER 0x10u

/* One account. Settings are written only by the persister inside the seqlock (seq odd while
 * writing); workers read them with tg_account_read(). Counters are atomics any process may add to. */
typedef struct tg_account {
    _Atomic uint32_t seq;
    uint32_t flags;
    uint64_t id;
    uint64_t parent_id;
    uint64_t owner_id;
    int32_t level;
    uint32_t depth;
    uint8_t key_hash[32];
    char name[TG_NAME_MAX];
    /* money, nano-dollars */
    _Atomic int64_t balance;  /* published by the persister: spendable balance */
    _Atomic int64_t reserved; /* in-flight reservations (workers) */
    _Atomic int64_t spent;    /* settled but not yet drained into the ledger (workers add, persister subtracts) */
    _Atomic uint64_t requests;
    uint8_t _reserved[40];
} __attribute__((aligned(64))) tg_account_t;

/* Key index entry: SHA-256 of an API key → account slot. Open addressing, linear probing.
 * `word` packs a generation (high 32 bits) and slot+1 (low 32 bits; 0 empty, UINT32_MAX deleted),
 * so a reader that raced a rewrite sees the word change and retries. */
typedef struct tg_index_entry {
    _Atomic uint64_t word;
    uint8_t hash[32];
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
} tg_arena_t;

#endif
