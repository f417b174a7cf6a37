/* Per-connection abuse control. libh2o 2.2.5 predates the fix for HTTP/2 rapid reset
 * (CVE-2023-44487): a client can open streams and cancel them at once, each cancelled stream
 * having cost an admission and often an upstream request. tollgate counts, per connection and
 * over a sliding window, the requests it started and those the client cancelled before any
 * answer; a connection that cancels most of many requests is shut down at its next request.
 * The table is per worker, small and fixed; a connection that falls out of it starts afresh. */
#ifndef TG_ABUSE_H
#define TG_ABUSE_H

#include <h2o.h>

#define TG_ABUSE_WINDOW_MS 10000u
#define TG_ABUSE_MIN_CANCELS 64u /* cancels in a window before the ratio is looked at */

/** A request starts on REQ's connection. Returns -1 (and shuts the connection down) when the
 * connection has been cancelling most of its requests: the caller answers nothing more. */
int tg_abuse_request(h2o_req_t *req);
/** A request of connection CONN_ID was cancelled by the client before any answer. */
void tg_abuse_cancelled(uint64_t conn_id);
/** Connections shut down for abuse since start (for logs and tests). */
uint64_t tg_abuse_shutdowns(void);

#endif
