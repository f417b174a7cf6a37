/* The master's supervision: forks the persister and the workers, restarts a child that dies
 * (with back-off), reloads the config on SIGHUP, drains on SIGTERM/SIGINT, reopens logs on
 * SIGUSR1. Signal handlers only set flags; the loop does the work. */
#ifndef TG_SUPERVISE_H
#define TG_SUPERVISE_H

#include <stddef.h>
#include <stdint.h>

#include "master/config.h"
#include "shm/arena-t.h"
#include "worker/worker.h"

typedef struct tg_master {
    tg_config_t cfg;
    const char *config_path;
    int workers; /* resolved count */
    int workers_override; /* from --workers, 0 when absent */
    tg_arena_t arena;
    uint8_t master_key[32];
    tg_listener_t *listeners;
    size_t n_listeners;
    char *persister_socket;
} tg_master_t;

/** Runs the process tree until SIGTERM/SIGINT has drained it; returns the exit code. */
int tg_supervise(tg_master_t *m);

#endif
