/* Compiled policy in the arena: per-account blobs (AllowIPs, AllowModels, Resources, ModelMapper,
 * LevelMapper, ModelLimits) in the policy heap, and the owner-level policy snapshot (MODEL_MAPPER,
 * LEVEL_MAPPER, SWITCH_OVER, MODEL_FAILOVER, RESOURCES, MODEL_LIMITS, PRICES, ALLOW_UNPRICED and the
 * defaults).
 *
 * Design.
 *
 * A blob is one "section": a small header with the offset of each compiled list (matcher.h) and
 * the lists themselves, position-independent, so it can be copied and used anywhere. Account
 * blobs live in the policy heap, a region the persister alone allocates (size classes of 64 B to
 * 64 KiB; free lists, a bump pointer and a de-duplication table in the persister's memory, rebuilt
 * from the arena when a persister starts). An account slot refers to its blob by (offset, gen)
 * inside its seqlock. Every block header carries the gen of the blob it holds: the persister
 * writes a new blob into a free block (gen odd while writing, then a fresh even gen), switches the
 * slot to it, and only then frees the old block (gen 0). A reader copies the blob into private
 * memory and checks that the header's gen equals the slot's before and after the copy; a mismatch
 * means the blob was replaced under it, and it reads the slot again. So readers never block and
 * always use one publication whole. Identical blobs are stored once (1,000,000 accounts that
 * inherited the same lists share one block); blobs holding ModelLimits are per account, because
 * each ModelLimits entry owns limiter state in the model-limit region, an index the persister
 * hands out and keeps across republishing while the pattern stays.
 *
 * The snapshot is one buffer of sections: the defaults, and one per owner that has a config of
 * its own (keys it does not set are filled from the defaults at compile time; prices are looked up
 * in the owner's table, then the defaults'). It is double-buffered: the persister compiles into
 * the inactive buffer and then bumps hdr->policy_gen, whose low bit names the active buffer. A
 * worker checks the generation once per request and, when it moved, copies the active buffer into
 * private memory (retrying if the generation moved during the copy), so it always works on one
 * complete snapshot and picks up a new one between requests.
 *
 * Lifecycle. Persister: tg_account_publish() (accounts.h) compiles an account's lists through
 * tg_policy_account_set(); tg_policy_set_defaults()/tg_policy_set_owner() then tg_policy_publish()
 * for the snapshot. The writer state hangs off the persister's tg_arena_t (a->writer) and is
 * freed by tg_arena_close. Workers: tg_policy_view_refresh() per request, tg_policy_blob_copy()
 * for account blobs, the tg_psec_* lookups on what they copied. */
#ifndef TG_POLICY_H
#define TG_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "shm/arena-t.h"

struct json_t;

#define TG_HEAP_BYTES_PER_ACCOUNT 64u
#define TG_HEAP_BYTES_BASE (16u << 20)
#define TG_HEAP_CLASSES 11u /* 64 B .. 64 KiB */
#define TG_BLOB_MAX ((64u << 10) - sizeof(tg_heap_block_t))
#define TG_POLICY_BUF_SIZE (4u << 20)
#define TG_MLIM_NONE 0xffffffffu

/* Sections of a blob. */
enum { TG_SEC_IPS = 0, TG_SEC_MODELS, TG_SEC_RESOURCES, TG_SEC_MMAP, TG_SEC_LMAP, TG_SEC_MLIM, TG_SEC_PRICES,
       TG_SEC_SWITCH, TG_SEC_FAILOVER, TG_SEC_COUNT };

#define TG_PSEC_MAGIC 0x53504754u /* "TGPS" */
#define TG_PSEC_ALLOW_UNPRICED 0x1u

typedef struct tg_psec {
    uint32_t magic;
    uint32_t len;
    uint32_t off[TG_SEC_COUNT]; /* 0 = absent */
    uint8_t mode[TG_SEC_COUNT]; /* TG_LIST_* for the ACL sections */
    uint32_t flags;             /* TG_PSEC_* */
    uint32_t default_completion_tokens;
    int64_t min_balance; /* nano-dollars an account needs to call models */
} tg_psec_t;

/* A ModelLimits / MODEL_LIMITS entry. */
enum { TG_ML_RPM = 0, TG_ML_RPH, TG_ML_RPD, TG_ML_TPM, TG_ML_TPH, TG_ML_TPD, TG_ML_COUNT };
typedef struct tg_mlimit {
    uint64_t lim[TG_ML_COUNT]; /* 0 = unlimited */
    uint32_t state;            /* index into the model-limit region, TG_MLIM_NONE when none */
    uint32_t _pad;
} tg_mlimit_t;

/* A price: pico-dollars (1e-12 USD) per token, i.e. USD per million tokens x 1e6. */
typedef struct tg_price {
    uint64_t input, output, cached;
} tg_price_t;

/* Built-in defaults (api-compat 1.3 and docs/quota.md). */
#define TG_DEFAULT_MIN_BALANCE 1000000000ll /* $1.00 to call models */
#define TG_DEFAULT_COMPLETION_TOKENS 4096u  /* reserved when a request names no max_tokens */

/* ---- compiling (persister) ---- */

/* The lists of one account, as stored in its record (api-compat 1.2). NULL or "" = unrestricted. */
typedef struct tg_account_src {
    const char *allow_ips, *allow_models, *resources, *model_mapper, *level_mapper;
    const struct json_t *model_limits; /* ModelLimits object, or NULL */
} tg_account_src_t;

/* Owner config (the /x-config keys, api-compat 2.1; also the system defaults). NULL / -1 = not
 * set (the defaults apply). */
typedef struct tg_owner_conf {
    const char *model_mapper; /* MODEL_MAPPER: "src=dst, ..." */
    const char *level_mapper; /* LEVEL_MAPPER: "pattern=level, ..." */
    const char *switch_over;  /* SWITCH_OVER: "1=2, 2=3" */
    const char *resources;    /* RESOURCES: path prefixes */
    const char *model_limits; /* MODEL_LIMITS: JSON text {"model":{"rpm":N,...}} */
    const char *prices;       /* PRICES: JSON text {"model":{"input":USD/M,"output":USD/M,"cached":USD/M}} */
    int allow_unpriced;       /* ALLOW_UNPRICED: 0/1, -1 not set */
    int64_t min_balance;      /* nano-dollars, -1 not set */
    int64_t default_completion_tokens; /* -1 not set */
    const char *model_failover; /* MODEL_FAILOVER: "model=backup, ..." (mapper syntax) */
} tg_owner_conf_t;
#define TG_OWNER_CONF_UNSET {NULL, NULL, NULL, NULL, NULL, NULL, -1, -1, -1, NULL}

/** Checks an account's lists without storing anything (for management-API validation). 0, or -1
 * with *ERR (malloc'd, names the field). */
int tg_policy_account_check(const tg_account_src_t *src, char **err);
/** Checks an owner config. 0, or -1 with *ERR (malloc'd, names the key). */
int tg_policy_owner_check(const tg_owner_conf_t *conf, char **err);
/** The section tg_policy_account_check / tg_policy_owner_check compile, for the tg_psec_* lookups
 * without an arena (ModelLimits states are TG_MLIM_NONE, no prices or flags for an account): a
 * malloc'd buffer of *LEN bytes, or NULL with *ERR as the checks report it. */
uint8_t *tg_policy_account_compile(const tg_account_src_t *src, size_t *len, char **err);
uint8_t *tg_policy_owner_compile(const tg_owner_conf_t *conf, size_t *len, char **err);

/** Persister: compiles SRC for the account in SLOT and stores it in the heap. *REF receives the
 * new reference (gen 0 when every list is unrestricted); OLD is the slot's current reference,
 * whose ModelLimits states are kept for patterns that stay. Call tg_policy_account_release(OLD)
 * once the slot points at *REF. 0, or -1 (*ERR malloc'd) when a list is malformed or the heap is
 * full; *REF is then unset. */
int tg_policy_account_set(tg_arena_t *a, uint32_t slot, const tg_account_src_t *src, const tg_policy_ref_t *old,
                          tg_policy_ref_t *ref, char **err);
/** Persister: drops a reference that no slot holds any more (frees its block and the ModelLimits
 * states that *KEEP does not also hold; KEEP may be NULL). */
void tg_policy_account_release(tg_arena_t *a, const tg_policy_ref_t *old, const tg_policy_ref_t *keep);

/** Persister: sets the system defaults: the price table (YAML text of conf/prices.yaml; NULL =
 * the table built into the binary) and the default config keys (CONF may be NULL). Takes effect
 * at the next tg_policy_publish. 0, or -1 with *ERR. */
int tg_policy_set_defaults(tg_arena_t *a, const char *prices_yaml, size_t len, const tg_owner_conf_t *conf, char **err);
/** Persister: sets (CONF non-NULL) or removes (NULL) owner OWNER_ID's config. Takes effect at the
 * next tg_policy_publish. 0, or -1 with *ERR when a key is malformed (nothing changes then). */
int tg_policy_set_owner(tg_arena_t *a, uint64_t owner_id, const tg_owner_conf_t *conf, char **err);
/** Persister: compiles the defaults and every owner's config into the inactive snapshot buffer
 * and makes it the active one. 0, or -1 with *ERR (the active snapshot stays). */
int tg_policy_publish(tg_arena_t *a, char **err);
/** The price table built into the binary (conf/prices.yaml at build time). */
const char *tg_policy_builtin_prices(size_t *len);
/** Parses a price table (YAML) into a JSON object {"model":{"input","output","cached"}} (new
 * reference) and its optional default_completion_tokens (*DCT, 0 when absent). NULL with *ERR. */
struct json_t *tg_prices_yaml_parse(const char *text, size_t len, uint32_t *dct, char **err);

/** Frees the persister's writer state (tg_arena_close does it). */
void tg_policy_writer_free(tg_arena_t *a);

/* ---- reading (workers) ---- */

/** Copies the blob REF points at into BUF (CAP bytes). Returns its length, 0 when REF is none,
 * -1 when it was replaced meanwhile (read the slot again), -2 when it does not fit. */
int tg_policy_blob_copy(const tg_arena_t *a, const tg_policy_ref_t *ref, uint8_t *buf, size_t cap);

/* A worker's private copy of the snapshot. */
typedef struct tg_policy_view {
    uint64_t gen;
    uint8_t *buf;
    size_t cap, len;
} tg_policy_view_t;

/** Brings V up to the arena's current snapshot: 1 when it changed, 0 when it was current, -1 when
 * out of memory (V keeps the snapshot it had). */
int tg_policy_view_refresh(tg_policy_view_t *v, const tg_arena_t *a);
void tg_policy_view_dispose(tg_policy_view_t *v);
/** The section of OWNER_ID (its own, or the defaults); NULL before the first snapshot. */
const uint8_t *tg_policy_owner_section(const tg_policy_view_t *v, uint64_t owner_id);
/** The defaults section; NULL before the first snapshot. */
const uint8_t *tg_policy_defaults_section(const tg_policy_view_t *v);

/* Lookups on a section (an account blob or a snapshot section). */
static inline const tg_psec_t *tg_psec(const uint8_t *sec)
{
    return (const tg_psec_t *)sec;
}
/** 1 when the section lets FAMILY/ADDR in (AllowIPs; unrestricted when absent). */
int tg_psec_ip_allowed(const uint8_t *sec, int family, const uint8_t *addr);
/** 1 when the section allows MODEL (AllowModels). */
int tg_psec_model_allowed(const uint8_t *sec, const char *model, size_t n);
/** 1 when the section allows PATH (Resources / RESOURCES, prefixes). */
int tg_psec_path_allowed(const uint8_t *sec, const char *path, size_t n);
/** ModelMapper: 1 and *DST, *DN when a rule maps MODEL, else 0. */
int tg_psec_map_model(const uint8_t *sec, const char *model, size_t n, const char **dst, size_t *dn);
/** LevelMapper: 1 and *LEVEL when a rule matches MODEL, else 0. */
int tg_psec_map_level(const uint8_t *sec, const char *model, size_t n, int32_t *level);
/** ModelLimits entry for MODEL, or NULL. */
const tg_mlimit_t *tg_psec_model_limit(const uint8_t *sec, const char *model, size_t n);
/** Price of MODEL, or NULL. */
const tg_price_t *tg_psec_price(const uint8_t *sec, const char *model, size_t n);
/** SWITCH_OVER: the level to fail over to from LEVEL, or 0. */
int32_t tg_psec_switch_over(const uint8_t *sec, int32_t level);
/** MODEL_FAILOVER: 1 and *DST, *DN (the backup of MODEL), else 0. */
int tg_psec_failover(const uint8_t *sec, const char *model, size_t n, const char **dst, size_t *dn);

#endif
