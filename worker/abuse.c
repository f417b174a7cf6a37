/* Rapid-reset defence: per-connection request/cancel counts (see abuse.h). */
#include "worker/abuse.h"

#include <sys/socket.h>

#include "common/clock.h"
#include "common/log.h"

#define SLOTS 1024u /* power of two */

typedef struct conn_count {
    uint64_t conn_id; /* 0 = free */
    uint64_t window_start_ms;
    uint32_t started, cancelled;
} conn_count_t;

static conn_count_t g_table[SLOTS];
static uint64_t g_shutdowns;

static conn_count_t *entry(uint64_t conn_id, uint64_t now)
{
    conn_count_t *e = &g_table[(conn_id * 0x9e3779b97f4a7c15ULL) >> 54 & (SLOTS - 1)];
    if (e->conn_id != conn_id || now - e->window_start_ms > TG_ABUSE_WINDOW_MS) {
        e->conn_id = conn_id; /* a new connection, or a new window: start counting again */
        e->window_start_ms = now;
        e->started = e->cancelled = 0;
    }
    return e;
}

int tg_abuse_request(h2o_req_t *req)
{
    uint64_t now = tg_mono_ns() / 1000000u;
    conn_count_t *e = entry(req->conn->id, now);
    e->started++;
    if (e->cancelled < TG_ABUSE_MIN_CANCELS || e->cancelled * 2 < e->started)
        return 0;
    h2o_socket_t *sock = req->conn->callbacks->get_socket ? req->conn->callbacks->get_socket(req->conn) : NULL;
    if (sock == NULL)
        return 0;
    /* h2o sees the end of the stream on its next read and closes the connection itself */
    shutdown(h2o_socket_get_fd(sock), SHUT_RDWR);
    tg_warn("connection %llu cancelled %u of its last %u requests: shut down (HTTP/2 rapid reset defence)",
            (unsigned long long)req->conn->id, e->cancelled, e->started);
    e->conn_id = 0;
    g_shutdowns++;
    return -1;
}

void tg_abuse_cancelled(uint64_t conn_id)
{
    conn_count_t *e = entry(conn_id, tg_mono_ns() / 1000000u);
    e->cancelled++;
}

uint64_t tg_abuse_shutdowns(void)
{
    return g_shutdowns;
}
