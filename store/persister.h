/* The persister process: the only owner of RocksDB. The master forks it once the arena exists and
 * calls tg_persister_run() in the child; it returns the child's exit code.
 *
 * Stages: open the store → bootstrap an empty database → listen on the unix socket → publish
 * accounts and upstream keys into the arena (hdr->persister_ready = 1) → loop (drain the usage ring
 * every TG_PERSISTER_DRAIN_MS, serve the management API) → on *stop: stop accepting, drain the
 * ring to empty, let open connections finish briefly, close the database, remove the socket. */
#ifndef TG_STORE_PERSISTER_H
#define TG_STORE_PERSISTER_H

#include <signal.h>
#include <stdint.h>

#include "master/config.h"
#include "shm/arena-t.h"

/* Every drain batch costs a synced commit, a read-modify-write of each account's record and
 * roll-ups, and a spend ledger entry per account, whatever its size: at 5 ms these per-batch costs
 * were half the persister's CPU per request under load (docs/benchmarks.md). Credit stays exact
 * meanwhile (workers add to `spent` at once); only the stored view is up to this much behind. */
#define TG_PERSISTER_DRAIN_MS 20
#define TG_PERSISTER_CLOSE_GRACE_MS 500 /* how long open connections may finish at stop */

typedef struct tg_persister_args {
    const tg_config_t *cfg;
    tg_arena_t *arena;
    const uint8_t *master_key;   /* 32 bytes */
    const char *socket_path;     /* <data_dir>/persister.sock */
    volatile sig_atomic_t *stop; /* set by the caller's SIGTERM handler */
} tg_persister_args_t;

/** Runs the persister until *args->stop. 0 after a clean stop; 1 when it could not start (the
 * reason is logged: unusable data directory, newer schema, bad root key, socket in use...). */
int tg_persister_run(const tg_persister_args_t *args);

#endif
