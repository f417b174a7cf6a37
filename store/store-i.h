/* The store's internals, shared by the store/ modules only (bootstrap, publish, drain, the HTTP
 * API). Everything here runs on the persister's single thread. */
#ifndef TG_STORE_I_H
#define TG_STORE_I_H

#include <jansson.h>
#include <rocksdb/c.h>
#include <stdint.h>

#include "store/foldmap.h"
#include "store/schema.h"
#include "store/slotmap.h"
#include "store/store.h"
#include "store/stats.h"

struct tg_store {
    int readonly;
    char *data_dir;
    char *db_path;
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_options_t *rollup_opts; /* opts + the roll-up merge operator (rollup_merge.c) */
    rocksdb_column_family_handle_t *cf[TG_CF_COUNT];
    rocksdb_column_family_handle_t **extra_cf; /* families of a newer minor layout: kept open, unused */
    size_t n_extra_cf;
    rocksdb_readoptions_t *ro;
    rocksdb_writeoptions_t *wo; /* sync = true: every write is on disk when rocksdb_write returns */

    /* publish.c: which arena slot holds which id (built by tg_store_publish_all) */
    tg_slotmap_t acct_slots, up_slots;
    int slots_ready;

    /* drain.c */
    int resumed;             /* the previous persister's committed-but-unreleased batch was handled */
    uint64_t stuck_pos;      /* ring position seen STUCK, UINT64_MAX when none */
    uint64_t stuck_since_ns; /* monotonic time it was first seen STUCK */
    uint32_t stuck_timeout_ms;
    uint64_t bad_records;    /* undecodable records skipped since open */
    uint64_t write_failures; /* consecutive failed batch commits */
    tg_foldmap_t fold_rollups, fold_accounts;
    tg_foldmap_t fold_orphans; /* usage keys of the orphan records stored by this batch */
    tg_foldmap_t fold_dups;    /* account id → cost of the orphan records skipped as duplicates and of the
                                  runs billed already (store/run_once.h): it leaves `spent` only */
    tg_foldmap_t fold_runs;    /* run markers put by this batch (store/run_once.h) */
    int batch_plain;           /* this batch holds a record that is not an orphan */
    int batch_cut;             /* this batch ended before an orphan (more is ready) */
    int batch_read_failed;     /* looking up an orphan's key failed: the batch is retried */
    uint32_t fold_cap;
    rocksdb_writebatch_t *batch;
    tg_day_cache_t day;

    /* expiry.c: accounts holding cards that will expire (id → earliest expiry, unsorted), and an
     * open-addressed index id → position + 1 (linear probing, 0 empty) sized 2 × cap */
    struct {
        uint64_t *ids;
        int64_t *at;
        size_t n, cap;
        uint32_t *index;
        size_t mask;
    } expiry;

    /* runtime settings (tg_store_set_runtime) */
    uint8_t master_key[32];
    int have_master_key;
    int allow_private_providers;

    /* api_util.c: last audit sequence number handed out (0 = not loaded yet) */
    uint64_t audit_seq;

    /* metrics.c: counters since open */
    tg_store_stats_t stats;
};

/** Upgrades a database of schema version FROM to TG_SCHEMA_VERSION (migrate.c), one synced
 * WriteBatch per step, the version bumped in the step's batch. 0, or -1 with *ERR. */
int tg_store_migrate(tg_store_t *s, uint64_t from, char **err);

/** Sets *ERR (when ERR is non-NULL) to a malloc'd message; returns -1. */
int tg_store_fail(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Value of KEY in CF (malloc'd, free with rocksdb_free), or NULL when absent. On a read error
 * returns NULL and sets *ERR (rocksdb-allocated, free with rocksdb_free). */
char *tg_store_get(tg_store_t *s, tg_cf_t cf, const void *key, size_t klen, size_t *vlen, char **err);
/** Reads a u64 meta value; 1 found, 0 absent, -1 read error or bad size (logged). */
int tg_store_meta_get(tg_store_t *s, const char *name, uint64_t *out);
/** Adds a put of meta NAME = V to BATCH. */
void tg_store_meta_put(rocksdb_writebatch_t *batch, tg_store_t *s, const char *name, uint64_t v);
/** Adds a put of JSON (compact text) under u64 ID in CF to BATCH. 0, or -1 when it cannot be dumped. */
int tg_store_json_put(rocksdb_writebatch_t *batch, tg_store_t *s, tg_cf_t cf, uint64_t id, const json_t *json);
/** Loads the JSON object stored under u64 ID in CF into *OUT (new reference, NULL unless
 * TG_LOAD_OK). Read errors and malformed records are logged. */
enum { TG_LOAD_OK = 1, TG_LOAD_ABSENT = 0, TG_LOAD_ERROR = -1, TG_LOAD_MALFORMED = -2 };
int tg_store_json_load(tg_store_t *s, tg_cf_t cf, uint64_t id, json_t **out);
/** The JSON object stored under u64 ID in CF (new reference), or NULL when absent or unreadable. */
json_t *tg_store_json_get(tg_store_t *s, tg_cf_t cf, uint64_t id);
/** Commits BATCH with sync. 0, or -1 with *ERR (malloc'd; may be NULL). */
int tg_store_commit(tg_store_t *s, rocksdb_writebatch_t *batch, char **err);

/** Calls FN for every record of CF in key order, with the key and value; stops early when FN
 * returns non-zero and returns that value. -1 on an iterator error (logged). */
typedef int (*tg_store_each_fn)(void *ud, const char *key, size_t klen, const char *val, size_t vlen);
int tg_store_each(tg_store_t *s, tg_cf_t cf, tg_store_each_fn fn, void *ud);

/** Options for the `rollups` family: a copy of BASE with the roll-up merge operator
 * (rollup_merge.c: operands are tg_rollup_encode'd totals, added field by field). Every read-write
 * open of the database must use it for that family (a flush of merge operands needs it). */
rocksdb_options_t *tg_rollup_options(const rocksdb_options_t *base);

#endif
