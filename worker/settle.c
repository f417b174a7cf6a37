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
    int has_bill;
    tg_credit_bill_t bill; /* settled when the record reaches the ring */
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
    tg_settle_bill(slot, u, method, client_ip, NULL);
}

/* The record is in the ring (or lost): the credit settles (credit.h). */
static void settle_credit(uint32_t slot, int64_t cost, const tg_credit_bill_t *bill)
{
    if (bill) {
        tg_credit_bill_t b = *bill;
        tg_credit_settle(tg_w->arena, &b.hold, b.cost, b.month, b.soft_limit);
    } else {
        atomic_fetch_add_explicit(&tg_w->arena->accounts[slot].spent, cost, memory_order_relaxed);
    }
}

void tg_settle_bill(uint32_t slot, const tg_usage_t *u, const char *method, const char *client_ip,
                    const tg_credit_bill_t *bill)
{
    tg_account_t *acct = &tg_w->arena->accounts[slot];
    atomic_fetch_add_explicit(&acct->requests, 1, memory_order_relaxed);

    uint8_t buf[TG_RING_PAYLOAD];
    int len = tg_usage_encode(u, buf, sizeof(buf));
    if (len < 0) {
        tg_error("usage record %s does not fit a ring slot", u->request_id);
        settle_credit(slot, u->cost_nanos, bill);
    } else if (tg_w->backlog == NULL && tg_ring_push(tg_w->arena, buf, (size_t)len) == TG_RING_OK) {
        settle_credit(slot, u->cost_nanos, bill);
    } else {
        tg_pending_record_t *r = malloc(sizeof(*r));
        if (r == NULL) {
            tg_error("usage record %s: out of memory for the backlog", u->request_id);
            settle_credit(slot, u->cost_nanos, bill);
        } else {
            memcpy(r->data, buf, (size_t)len);
            r->len = (size_t)len;
            r->has_bill = bill != NULL;
            if (bill) {
                r->bill = *bill;
            } else {
                memset(&r->bill, 0, sizeof(r->bill));
                r->bill.hold.slot = slot;
                r->bill.cost = u->cost_nanos;
            }
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
        settle_credit(r->bill.hold.slot, r->bill.cost, r->has_bill ? &r->bill : NULL);
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
