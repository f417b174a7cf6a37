/* The persister's main loop (persister.h): one thread, one h2o event loop whose wait is bounded
 * by the next drain tick. Signal handling belongs to the caller; a signal only sets *stop and
 * interrupts the loop's epoll_wait. */
#include "store/persister.h"

#include <stdlib.h>

#include "common/clock.h"
#include "common/log.h"
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

static void run_loop(tg_store_t *store, tg_arena_t *arena, tg_server_t *srv, volatile sig_atomic_t *stop)
{
    h2o_evloop_t *loop = tg_server_loop(srv);
    uint64_t next_drain = 0;
    while (!*stop) {
        uint64_t now = mono_ms();
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
    /* Listen first, then publish: persister_ready = 1 tells workers the socket is there too. */
    if (tg_server_open(&srv, a->socket_path, store, a->arena, &err) != 0) {
        tg_error("persister: %s", err ? err : "cannot listen");
        free(err);
        tg_store_close(store);
        return 1;
    }
    if (tg_store_publish_all(store, a->arena) != 0)
        tg_warn("persister: some records could not be published into the arena (see above)");
    tg_info("persister: ready");

    run_loop(store, a->arena, srv, a->stop);

    tg_info("persister: stopping");
    tg_server_stop_accepting(srv);
    drain_to_empty(store, a->arena, srv);
    for (uint64_t until = mono_ms() + TG_PERSISTER_CLOSE_GRACE_MS; !tg_server_idle(srv) && mono_ms() < until;)
        h2o_evloop_run(tg_server_loop(srv), 10);
    tg_server_close(srv);
    tg_store_close(store);
    tg_info("persister: stopped");
    return 0;
}
