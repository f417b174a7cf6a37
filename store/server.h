/* The persister's HTTP/1.1 server on a unix socket (libh2o evloop). Workers forward the
 * management plane here (libcurl with CURLOPT_UNIX_SOCKET_PATH); tests may use curl --unix-socket.
 * Lifecycle: opened by the persister after publishing, run by its loop, stopped at drain. */
#ifndef TG_STORE_SERVER_H
#define TG_STORE_SERVER_H

#include <h2o.h>

#include "shm/arena-t.h"
#include "store/store.h"

typedef struct tg_server tg_server_t;

#define TG_SERVER_MAX_BODY (1u << 20) /* management bodies are small: 413 above 1 MiB */

/** Creates the event loop, binds SOCKET_PATH (a stale file is replaced; mode 0600) and starts
 * accepting. 0, or -1 with *ERR (malloc'd). */
int tg_server_open(tg_server_t **out, const char *socket_path, tg_store_t *store, tg_arena_t *arena, char **err);
/** The event loop to run (h2o_evloop_run). */
h2o_evloop_t *tg_server_loop(tg_server_t *srv);
/** Stops accepting new connections and removes the socket file. */
void tg_server_stop_accepting(tg_server_t *srv);
/** 1 when no client connection is open. */
int tg_server_idle(tg_server_t *srv);
/** Stops accepting (if still) and frees what can be freed. libh2o 2.2.5 cannot dispose a context
 * or loop with live connections (it asserts), and forwarding workers keep theirs alive, so the
 * loop and context are left to process exit: call this only on the way out. */
void tg_server_close(tg_server_t *srv);

#endif
