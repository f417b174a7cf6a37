/* The persister's on-disk schema: column families, key encodings, meta keys and the schema
 * version. docs/storage.md describes the same layout for people; keep the two in step.
 *
 * Every integer inside a key is 8 bytes big-endian, so RocksDB's byte order is numeric order and
 * a prefix scan (one account's roll-ups, one time range of usage) is a plain range scan. */
#ifndef TG_STORE_SCHEMA_H
#define TG_STORE_SCHEMA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/keyhash.h" /* tg_hex, tg_unhex */

/* Version of the layout below. A database written by a newer tollgate is refused, not guessed at. */
#define TG_SCHEMA_VERSION 3u

/* Column families, in the order their handles sit in tg_store_t.cf[]. */
typedef enum {
    TG_CF_DEFAULT = 0, /* RocksDB's own, unused */
    TG_CF_ACCOUNTS,    /* u64 id → account JSON */
    TG_CF_KEYHASH,     /* sha256(API key) (32 bytes) → u64 id */
    TG_CF_UPSTREAMS,   /* u64 id → upstream key JSON (secret sealed) */
    TG_CF_USAGE,       /* u64 ts_ms + request id → msgpack usage record, as pushed by the worker */
    TG_CF_ROLLUPS,     /* u64 account id + "YYYY-MM-DD" + model → msgpack counters */
    TG_CF_META,        /* name → value (see TG_META_*) */
    /* schema 2 */
    TG_CF_LEDGER, /* u64 account id + u64 seq → ledger entry JSON (every balance change) */
    TG_CF_AUDIT,  /* u64 ts_ms + u64 seq → audit entry JSON (every management write) */
    TG_CF_CONFIG, /* u64 owner id → owner config JSON (/x-config keys) */
    TG_CF_NEWS,   /* u64 news id → news JSON */
    TG_CF_NAMES,  /* "n:" lowercase name | "e:" lowercase email → u64 account id (uniqueness) */
    TG_CF_TREE,   /* DNA string (".1.42.") → u64 account id: a subtree is a prefix scan */
    TG_CF_COUNT
} tg_cf_t;

/** Name of column family CF as stored in RocksDB. */
const char *tg_cf_name(tg_cf_t cf);

/* Meta keys. All values are u64 big-endian. */
#define TG_META_SCHEMA_VERSION "schema_version"
#define TG_META_NEXT_ACCOUNT_ID "next_account_id"
#define TG_META_NEXT_UPSTREAM_ID "next_upstream_id"
#define TG_META_RING_CURSOR "ring_cursor" /* ring position after the last committed usage batch */
#define TG_META_RING_ARENA "ring_arena"   /* created_ms of the arena that cursor belongs to */
#define TG_META_NEXT_NEWS_ID "next_news_id"
#define TG_META_AUDIT_SEQ "audit_seq" /* last audit sequence number used */
/* and "run:" + an Assistants run id → the account its record billed (store/run_once.h) */

#define TG_DAY_LEN 10 /* "YYYY-MM-DD" */
#define TG_USAGE_KEY_MAX (8 + 64)
#define TG_ROLLUP_KEY_MAX (8 + TG_DAY_LEN + 64)

#define TG_LEDGER_KEY_LEN 16 /* u64 account id + u64 sequence */
#define TG_AUDIT_KEY_LEN 16  /* u64 ts_ms + u64 sequence */

/** Writes V as 8 bytes big-endian. */
void tg_be64_put(uint8_t out[8], uint64_t v);
/** Reads 8 bytes big-endian. */
uint64_t tg_be64_get(const uint8_t in[8]);

/** Usage key: ts_ms + request id (RID_LEN bytes, truncated to fit). Returns the key length. */
size_t tg_usage_key(uint8_t out[TG_USAGE_KEY_MAX], uint64_t ts_ms, const char *rid, size_t rid_len);
/** Roll-up key: account id + DAY (10 chars) + model (truncated to fit). Returns the key length. */
size_t tg_rollup_key(uint8_t out[TG_ROLLUP_KEY_MAX], uint64_t account_id, const char day[TG_DAY_LEN], const char *model,
                     size_t model_len);

/** Ledger key: account id + sequence (both big-endian), so one account's entries are a prefix. */
void tg_ledger_key(uint8_t out[TG_LEDGER_KEY_LEN], uint64_t account_id, uint64_t seq);
/** Audit key: time + sequence, so the audit log is in time order. */
void tg_audit_key(uint8_t out[TG_AUDIT_KEY_LEN], uint64_t ts_ms, uint64_t seq);

/** The counters a roll-up row holds (msgpack map with these names as keys). */
typedef struct tg_rollup {
    uint64_t requests, prompt, completion, cached;
    int64_t cost_nanos;
} tg_rollup_t;

/** Adds SRC into DST. */
void tg_rollup_add(tg_rollup_t *dst, const tg_rollup_t *src);
/** Encodes R into BUF (CAP bytes, 128 is always enough); returns the length or -1. */
int tg_rollup_encode(const tg_rollup_t *r, uint8_t *buf, size_t cap);
/** Decodes a roll-up row into OUT (zeroed first; unknown keys ignored). 0, or -1 when malformed. */
int tg_rollup_decode(const uint8_t *buf, size_t len, tg_rollup_t *out);

/** RFC 3339 UTC timestamp of T, "2006-01-02T15:04:05Z", into OUT (at least 21 bytes). */
void tg_rfc3339(time_t t, char out[21]);
/** Parses an RFC 3339 timestamp ("2006-01-02T15:04:05Z", fractional seconds and a numeric offset
 * accepted). 0 and *OUT, or -1 when malformed. */
int tg_rfc3339_parse(const char *s, time_t *out);

/** Calendar day of unix time TS_MS in the process's time zone (TZ), with a one-day cache so a
 * batch of records costs one localtime_r() per day boundary crossed. */
typedef struct tg_day_cache {
    int64_t start_ms, end_ms; /* [start, end) of the cached day; end 0 = empty */
    char day[TG_DAY_LEN + 1];
} tg_day_cache_t;
const char *tg_day_of(tg_day_cache_t *cache, uint64_t ts_ms);

#endif
