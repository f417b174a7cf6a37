/* Settling a request: counters, usage record, access log line. */
#include "worker/settle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/http.h"
#include "common/log.h"
#include "shm/ring.h"
#include "worker/worker.h"

struct tg_pending_record {
    tg_pending_record_t *next;
    size_t len;
    uint8_t data[TG_RING_PAYLOAD];
};

static void access_line(const tg_usage_t *u, const char *method, const char *client_ip)
{
    if (!tg_log_access_enabled())
        return;
    char line[1024], model[160];
    size_t m = tg_json_escape(model, 0, sizeof(model), u->model, strnlen(u->model, sizeof(u->model)));
    model[m] = '\0';
    int n = snprintf(line, sizeof(line),
                     "{\"ts\":%llu,\"rid\":\"%s\",\"ip\":\"%s\",\"method\":\"%s\",\"path\":\"%s\",\"account\":%llu,"
                     "\"model\":\"%s\",\"upstream\":%llu,\"status\":%u,\"stream\":%s,\"prompt_tokens\":%llu,"
                     "\"completion_tokens\":%llu,\"cost_nanos\":%lld,\"latency_ms\":%u,\"ttfb_ms\":%u%s%s}\n",
                     (unsigned long long)u->ts_ms, u->request_id, client_ip, method, u->path,
                     (unsigned long long)u->account_id, model, (unsigned long long)u->upstream_id, u->status,
                     (u->flags & TG_USAGE_STREAM) ? "true" : "false", (unsigned long long)u->prompt_tokens,
                     (unsigned long long)u->completion_tokens, (long long)u->cost_nanos, u->latency_ms, u->ttfb_ms,
                     (u->flags & TG_USAGE_ESTIMATED) ? ",\"estimated\":true" : "",
                     (u->flags & TG_USAGE_ABORTED) ? ",\"aborted\":true" : "");
    if (n > 0)
        tg_log_access(line, n < (int)sizeof(line) ? n : (int)sizeof(line) - 1);
}

void tg_settle(uint32_t slot, const tg_usage_t *u, const char *method, const char *client_ip)
{
    tg_account_t *acct = &tg_w->arena->accounts[slot];
    atomic_fetch_add_explicit(&acct->requests, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&acct->spent, u->cost_nanos, memory_order_relaxed);

    uint8_t buf[TG_RING_PAYLOAD];
    int len = tg_usage_encode(u, buf, sizeof(buf));
    if (len < 0) {
        tg_error("usage record %s does not fit a ring slot", u->request_id);
    } else if (tg_w->backlog != NULL || tg_ring_push(tg_w->arena, buf, (size_t)len) != TG_RING_OK) {
        tg_pending_record_t *r = malloc(sizeof(*r));
        if (r == NULL) {
            tg_error("usage record %s: out of memory for the backlog", u->request_id);
        } else {
            memcpy(r->data, buf, (size_t)len);
            r->len = (size_t)len;
            /* keep order: append at the tail */
            tg_pending_record_t **tail = &tg_w->backlog;
            while (*tail)
                tail = &(*tail)->next;
            r->next = NULL;
            *tail = r;
            tg_w->backlog_len++;
        }
    }
    access_line(u, method, client_ip);
}

size_t tg_settle_flush_backlog(void)
{
    while (tg_w->backlog) {
        tg_pending_record_t *r = tg_w->backlog;
        if (tg_ring_push(tg_w->arena, r->data, r->len) != TG_RING_OK)
            break;
        tg_w->backlog = r->next;
        tg_w->backlog_len--;
        free(r);
    }
    return tg_w->backlog_len;
}

int tg_settle_ring_has_room(void)
{
    uint64_t used = tg_ring_used(tg_w->arena);
    return used + tg_w->backlog_len < (uint64_t)tg_w->arena->hdr->ring_slots * 9 / 10;
}
