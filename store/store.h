/* The persister's store: the only code that opens tollgate's RocksDB database.
 *
 * Lifecycle (all in the persister process, after fork, on one thread):
 *   tg_store_open → tg_store_bootstrap (first start only) → tg_store_publish_all (arena gets every
 *   account and upstream key, then persister_ready = 1) → tg_store_drain every few ms and until
 *   empty on stop → tg_store_close.
 * The same calls serve tests and offline tools; none of them needs the HTTP server. */
#ifndef TG_STORE_H
#define TG_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "master/config.h"
#include "shm/arena-t.h"

typedef struct tg_store tg_store_t;

#define TG_STORE_STUCK_TIMEOUT_MS 2000u /* a claimed-but-dead ring slot is skipped after this long */
#define TG_STORE_DRAIN_BATCH 4096u      /* records per WriteBatch in the persister loop */

/** Opens (creating when absent) the database at DATA_DIR/db with every column family. Refuses a
 * database whose schema version is newer than this build's. On failure returns -1 and sets *ERR
 * (malloc'd, names the path and the cause). */
int tg_store_open(tg_store_t **out, const char *data_dir, char **err);
/** Opens the database read-only (works while a persister runs: it sees what was committed when it
 * opened). Refuses a schema other than this build's. 0, or -1 with *ERR. */
int tg_store_open_readonly(tg_store_t **out, const char *data_dir, char **err);
/** Writes every column family's memtable to its files, so that reopening replays no log (a
 * tollgate older than schema 3 cannot replay roll-up merges: it would refuse the database by its
 * version, but only after dropping the log's tail). The persister calls it at a clean stop.
 * 0, or -1 (logged). */
int tg_store_flush(tg_store_t *s);
/** Closes the database (every write so far is durable) and frees the store. NULL is fine. */
void tg_store_close(tg_store_t *s);

/** First start: when the database has no root account, creates root (id 1) with the key from
 * $TOLLGATE_ROOT_KEY or a generated one, writes that key to cfg->bootstrap.root_key_file (0600)
 * and seeds the upstream keys of CFG (secrets sealed under MASTER_KEY). Prints one line to stdout.
 * Does nothing on a database that already has root. 0, or -1 with *ERR. */
int tg_store_bootstrap(tg_store_t *s, const tg_config_t *cfg, const uint8_t *master_key, char **err);

/** Publishes every account and upstream key into ARENA (an id keeps the slot it already has; slots
 * of ids no longer in the database are freed), then sets hdr->persister_ready = 1. 0, or -1 (logged). */
int tg_store_publish_all(tg_store_t *s, tg_arena_t *arena);

/** One drain batch: moves up to MAX_RECORDS usage records from the ring into the database in one
 * synced WriteBatch (raw record, day roll-ups, account counters, ring cursor), then releases them
 * from the ring and moves their cost out of the accounts' `spent`. *DRAINED = ring positions
 * consumed (0 when the ring had nothing ready). The first call after open also finishes a batch
 * that a previous persister committed but did not release. 0, or -1 when the write failed (nothing
 * released; the same records are tried again next time). */
int tg_store_drain(tg_store_t *s, tg_arena_t *arena, size_t max_records, size_t *drained);

/** Settings the management API needs: the master key (32 bytes, sealing provider secrets) and
 * the config's store section. MASTER_KEY may be NULL (tools that never seal). */
void tg_store_set_runtime(tg_store_t *s, const uint8_t *master_key, const tg_config_t *cfg);

/** How long a ring slot must stay TG_RING_STUCK before the drain skips it (default
 * TG_STORE_STUCK_TIMEOUT_MS; tests shorten it). */
void tg_store_set_stuck_timeout(tg_store_t *s, uint32_t ms);

#endif
