/* The persister's main loop (persister.h): one thread, one h2o event loop whose wait is bounded
 * by the next drain tick. Signal handling belongs to the caller; a signal only sets *stop and
 * interrupts the loop's epoll_wait. */
#include "store/persister.h"

#include <stdlib.h>

#include "common/clock.h"
#include "common/log.h"
#include "shm/credit.h"
#include "store/expiry.h"
#include "store/txn.h"
#include "store/verify.h"
#include "shm/ring.h"
#include "store/server.h"
#include "store/store.h"

static uint64_t mono_ms(void)
{
    return tg_mono_ns() / 1000000u;
}

/* Roll-up days and other calendar dates follow the configured zone (api-compat 7.8). */
static void apply_timezone(const char *tz)
{
    if (tz && *tz) {
        setenv("TZ", tz, 1);
        tzset();
    }
}

/* Periodic jobs other than the drain: card expiry every second, the journal lanes of dead
 * processes every second (from the start on: their requests in flight are billed, shm/flight.h),
 * usage retention hourly (the first run a few seconds after start). */
typedef struct jobs {
    uint64_t next_expiry, next_retention, next_reap;
    uint32_t retention_days;
} jobs_t;

static void run_jobs(tg_store_t *store, tg_arena_t *arena, jobs_t *j, uint64_t now)
{
    if (now >= j->next_expiry) {
        tg_expiry_run(store, arena, (int64_t)(tg_now_ms() / 1000));
        j->next_expiry = now + TG_EXPIRY_INTERVAL_MS;
    }
    if (now >= j->next_reap) {
        tg_credit_reap(arena);
        j->next_reap = now + 1000;
    }
    if (now >= j->next_retention) {
        tg_retention_run(store, j->retention_days, tg_now_ms());
        j->next_retention = now + TG_RETENTION_INTERVAL_MS;
    }
}

static void verify_at_start(tg_store_t *store);

static void run_loop(tg_store_t *store, tg_arena_t *arena, tg_server_t *srv, volatile sig_atomic_t *stop, jobs_t *jobs)
{
    h2o_evloop_t *loop = tg_server_loop(srv);
    uint64_t next_drain = 0;
    while (!*stop) {
        uint64_t now = mono_ms();
        run_jobs(store, arena, jobs, now);
        if (now >= next_drain) {
            size_t n = 0;
            int rc = tg_store_drain(store, arena, TG_STORE_DRAIN_BATCH, &n);
            /* A full batch means more is waiting: go again right after serving ready events. */
            next_drain = rc == 0 && n == TG_STORE_DRAIN_BATCH ? now : now + TG_PERSISTER_DRAIN_MS;
        }
        now = mono_ms();
        h2o_evloop_run(loop, next_drain > now ? (int32_t)(next_drain - now) : 0);
    }
}

/* At stop: drain until the ring is empty. Gives up only when no progress was made for longer than
 * a stuck slot takes to be skipped (the records stay in the file-backed ring for the next start). */
static void drain_to_empty(tg_store_t *store, tg_arena_t *arena, tg_server_t *srv)
{
    uint64_t patience = TG_STORE_STUCK_TIMEOUT_MS + 1000, deadline = mono_ms() + patience;
    size_t total = 0;
    for (;;) {
        size_t n = 0;
        int rc = tg_store_drain(store, arena, TG_STORE_DRAIN_BATCH, &n);
        total += n;
        if (rc == 0 && n == 0 && tg_ring_used(arena) == 0)
            break;
        if (n > 0) {
            deadline = mono_ms() + patience;
            continue;
        }
        if (mono_ms() > deadline) {
            tg_warn("persister: %llu usage record(s) left in the ring at stop; the next start drains them",
                    (unsigned long long)tg_ring_used(arena));
            break;
        }
        h2o_evloop_run(tg_server_loop(srv), 1);
    }
    tg_info("persister: drained %zu usage record(s) at stop", total);
}

static void log_disagreement(void *ud, uint64_t id, const char *name, const char *what, int64_t expected, int64_t actual)
{
    (void)ud;
    tg_error("verify: account %llu (%s): %s: expected %lld, found %lld nano-dollars", (unsigned long long)id, name, what,
             (long long)expected, (long long)actual);
}

/* The balances about to be published are re-derived from the records; they must agree with the
 * ledger (and the spend with the roll-ups). A disagreement is logged as an error, never repaired
 * silently: `tollgate admin verify` prints the same report offline. */
static void verify_at_start(tg_store_t *store)
{
    size_t n = 0;
    uint64_t t0 = mono_ms();
    long issues = tg_verify(store, 0, log_disagreement, NULL, &n);
    if (issues < 0)
        tg_error("verify: the ledger could not be read at start");
    else
        tg_info("verify: %zu account(s) reconciled with the ledger in %llu ms%s", n, (unsigned long long)(mono_ms() - t0),
                issues ? "; DISAGREEMENTS FOUND (see above)" : "");
}

int tg_persister_run(const tg_persister_args_t *a)
{
    const tg_config_t *cfg = a->cfg;
    tg_store_t *store = NULL;
    tg_server_t *srv = NULL;
    char *err = NULL;
    signal(SIGPIPE, SIG_IGN); /* a client that left must not kill the persister mid-write */
    apply_timezone(cfg->timezone);

    if (tg_store_open(&store, cfg->data_dir, &err) != 0 || tg_store_bootstrap(store, cfg, a->master_key, &err) != 0) {
        tg_error("persister: %s", err ? err : "cannot start");
        free(err);
        tg_store_close(store);
        return 1;
    }
    tg_store_set_runtime(store, a->master_key, cfg);
    verify_at_start(store);
    /* Listen first, then publish: persister_ready = 1 tells workers the socket is there too. */
    if (tg_server_open(&srv, a->socket_path, store, a->arena, &err) != 0) {
        tg_error("persister: %s", err ? err : "cannot listen");
        free(err);
        tg_store_close(store);
        return 1;
    }
    if (tg_store_load_owner_configs(store, a->arena) != 0)
        tg_warn("persister: some owner configurations could not be read (see above)");
    if (tg_store_publish_all(store, a->arena) != 0)
        tg_warn("persister: some records could not be published into the arena (see above)");
    tg_info("persister: ready");

    jobs_t jobs = {mono_ms(), mono_ms() + 5000, mono_ms(), cfg->store.usage_retention_days};
    run_loop(store, a->arena, srv, a->stop, &jobs);

    tg_info("persister: stopping");
    tg_server_stop_accepting(srv);
    drain_to_empty(store, a->arena, srv);
    for (uint64_t until = mono_ms() + TG_PERSISTER_CLOSE_GRACE_MS; !tg_server_idle(srv) && mono_ms() < until;)
        h2o_evloop_run(tg_server_loop(srv), 10);
    tg_server_close(srv);
    tg_store_flush(store);
    tg_store_close(store);
    tg_info("persister: stopped");
    return 0;
}
