/* A management write: the records it loads and changes, one synced WriteBatch, then publication
 * into the arena (api-compat 4; architecture "management writes").
 *
 * Usage: tg_txn_init → tg_txn_load / tg_txn_add_new / tg_txn_delete (records are owned by the
 * transaction; change them in place, add extra puts to txn->b) → tg_txn_commit → tg_txn_dispose.
 * Commit puts every tracked record into the batch, writes it (RocksDB first), and only then
 * publishes: settings through tg_account_publish (seqlock), the balance as an atomic add of the
 * change since load (workers keep spending meanwhile), new accounts into a free slot, deleted
 * ones out of the key index at once. Everything runs on the persister's thread. */
#ifndef TG_STORE_TXN_H
#define TG_STORE_TXN_H

#include <jansson.h>
#include <rocksdb/c.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "shm/arena-t.h"
#include "store/store.h"

typedef struct tg_txn_acct {
    json_t *rec;
    int64_t balance0; /* balance (Σ cards − Overdraft) when loaded; 0 for a new account */
    int is_new, deleted;
} tg_txn_acct_t;

typedef struct tg_txn {
    tg_store_t *s;
    tg_arena_t *arena; /* NULL: no publication (tools, tests) */
    rocksdb_writebatch_t *b;
    tg_txn_acct_t *acct;
    size_t n, cap;
    time_t now;
    uint64_t now_ms;
} tg_txn_t;

void tg_txn_init(tg_txn_t *t, tg_store_t *s, tg_arena_t *arena);
void tg_txn_dispose(tg_txn_t *t);
/** The record of account ID, tracked for commit (loaded once; later calls return the same
 * object). Borrowed; NULL when absent or unreadable. */
json_t *tg_txn_load(tg_txn_t *t, uint64_t id);
/** Tracks REC (reference stolen) as a new account. Returns REC, or NULL. */
json_t *tg_txn_add_new(tg_txn_t *t, json_t *rec);
/** Marks tracked REC as deleted: its record, key index and name/DNA index entries go; it leaves
 * the arena at commit. */
void tg_txn_delete(tg_txn_t *t, json_t *rec);
/** Writes everything and publishes. 0, or -1 with *ERR (malloc'd) when the write failed (nothing
 * was published). */
int tg_txn_commit(tg_txn_t *t, char **err);

/** Publishes REC into the arena: settings, and BALANCE_DELTA added to the published balance (or,
 * for an account new to the arena, the balance set). Root's balance stays unlimited. */
void tg_store_publish_account(tg_store_t *s, tg_arena_t *arena, const json_t *rec, int64_t balance_delta);
/** Removes account ID from the arena (its key stops working at once). */
void tg_store_unpublish_account(tg_store_t *s, tg_arena_t *arena, uint64_t id);

/** After a write of owner OWNER_ID's config (config CF, CONF the stored object): sets it in the
 * quota engine's policy writer and publishes a new snapshot (shm/policy.h). ARENA may be NULL. */
void tg_store_publish_owner_config(tg_store_t *s, tg_arena_t *arena, uint64_t owner_id, const json_t *conf);
/** At start, before tg_store_publish_all: hands every stored owner config to the policy writer. */
int tg_store_load_owner_configs(tg_store_t *s, tg_arena_t *arena);
/** The quota engine's own check of an owner config object (what it would refuse to compile). 0, or
 * -1 with *ERR (malloc'd, names the key). */
int tg_store_owner_config_check(const json_t *conf, char **err);

#endif
