/* A worker process: the h2o event loop that serves the proxy and forwards management paths.
 * Lifecycle: forked by the master after the arena is mapped and the listeners are bound; runs
 * until asked to stop, then stops accepting, lets in-flight requests finish (up to the drain
 * timeout) and exits. All of its state lives in one tg_worker_t. */
#ifndef TG_WORKER_H
#define TG_WORKER_H

#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>

#include "master/config.h"
#include "shm/arena-t.h"
#include "worker/upstream.h"

typedef struct tg_listener {
    int fd;
    SSL_CTX *ssl_ctx; /* NULL for plain HTTP/1.1 + h2c */
} tg_listener_t;

typedef struct tg_worker_args {
    const tg_config_t *cfg;
    tg_arena_t *arena;
    const uint8_t *master_key; /* 32 bytes */
    const tg_listener_t *listeners;
    size_t n_listeners;
    const char *persister_socket;
    int index;
    volatile sig_atomic_t *stop; /* set by the SIGTERM handler: drain and exit */
} tg_worker_args_t;

/* Cached plaintext of an upstream secret, valid while the slot's seqlock value is unchanged. */
typedef struct tg_secret_cache {
    uint32_t seq;
    char secret[TG_SEALED_MAX];
} tg_secret_cache_t;

typedef struct tg_pending_record tg_pending_record_t;

typedef struct tg_worker {
    const tg_worker_args_t *args;
    const tg_config_t *cfg;
    tg_arena_t *arena;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t *accept_ctxs;
    h2o_socket_t **listen_socks;
    tg_upstream_client_t *client;
    tg_secret_cache_t *secrets; /* one per upstream slot */
    uint64_t rid_prefix;        /* random per process: request ids stay unique across restarts */
    uint64_t rid_counter;
    size_t inflight;            /* requests accepted and not yet disposed */
    tg_pending_record_t *backlog; /* usage records waiting for ring space */
    size_t backlog_len;
} tg_worker_t;

/** Runs a worker until it has drained; returns the process exit code. */
int tg_worker_run(const tg_worker_args_t *args);

/* Used by the request path (proxy.c, forward.c, settle.c). */
extern tg_worker_t *tg_w;
/** Writes a new request id ("req_" + 28 hex) into OUT (at least 33 bytes). */
void tg_worker_request_id(char *out);

#endif
