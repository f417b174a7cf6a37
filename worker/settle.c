/* Settling a request: counters, usage record, access log line. */
#include "worker/settle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/http.h"
#include "common/log.h"
#include "common/put.h"
#include "shm/ring.h"
#include "worker/usage_read.h"
#include "worker/worker.h"

struct tg_pending_record {
    tg_pending_record_t *next;
    size_t len;
    int has_bill;
    tg_credit_bill_t bill; /* settled when the record reaches the ring */
    uint8_t data[TG_RING_PAYLOAD];
};

/* Appends the field S of at most CAP bytes (stops at a NUL). */
static char *put_field(char *p, const char *s, size_t cap)
{
    return tg_put_mem(p, s, strnlen(s, cap));
}

static char *put_i64(char *p, int64_t v)
{
    if (v < 0) {
        *p++ = '-';
        return tg_put_u64(p, (uint64_t)0 - (uint64_t)v);
    }
    return tg_put_u64(p, (uint64_t)v);
}

/* One JSON line per request, built with append helpers (no format parsing per request). Every
 * field is bounded (usage.h sizes, escaped model at most 160 bytes), so the line fits. */
static void access_line(const tg_usage_t *u, const char *method, const char *client_ip)
{
    if (!tg_log_access_enabled())
        return;
    char line[1024], *p = line;
    p = tg_put_str(p, "{\"ts\":");
    p = tg_put_u64(p, u->ts_ms);
    p = tg_put_str(p, ",\"rid\":\"");
    p = put_field(p, u->request_id, sizeof(u->request_id));
    p = tg_put_str(p, "\",\"ip\":\"");
    p = put_field(p, client_ip, 64);
    p = tg_put_str(p, "\",\"method\":\"");
    p = put_field(p, method, 8);
    p = tg_put_str(p, "\",\"path\":\"");
    p = put_field(p, u->path, sizeof(u->path));
    p = tg_put_str(p, "\",\"account\":");
    p = tg_put_u64(p, u->account_id);
    p = tg_put_str(p, ",\"model\":\"");
    p += tg_json_escape(p, 0, 160, u->model, strnlen(u->model, sizeof(u->model)));
    p = tg_put_str(p, "\",\"upstream\":");
    p = tg_put_u64(p, u->upstream_id);
    p = tg_put_str(p, ",\"status\":");
    p = tg_put_u64(p, u->status);
    p = tg_put_str(p, (u->flags & TG_USAGE_STREAM) ? ",\"stream\":true" : ",\"stream\":false");
    p = tg_put_str(p, ",\"prompt_tokens\":");
    p = tg_put_u64(p, u->prompt_tokens);
    p = tg_put_str(p, ",\"completion_tokens\":");
    p = tg_put_u64(p, u->completion_tokens);
    p = tg_put_str(p, ",\"cost_nanos\":");
    p = put_i64(p, u->cost_nanos);
    p = tg_put_str(p, ",\"latency_ms\":");
    p = tg_put_u64(p, u->latency_ms);
    p = tg_put_str(p, ",\"ttfb_ms\":");
    p = tg_put_u64(p, u->ttfb_ms);
    if (u->flags & TG_USAGE_ESTIMATED)
        p = tg_put_str(p, ",\"estimated\":true");
    if (u->flags & TG_USAGE_ABORTED)
        p = tg_put_str(p, ",\"aborted\":true");
    p = tg_put_mem(p, "}\n", 2);
    tg_log_access(line, (int)(p - line));
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

void tg_settle_progress(const tg_credit_hold_t *h, const tg_translation_t *tr, const tg_usage_t *u, int usage_seen,
                        uint64_t text_chars)
{
    if (h->lane == TG_LANE_NONE)
        return;
    tg_usage_t t; /* only its token counts are used */
    t.prompt_tokens = usage_seen ? u->prompt_tokens : 0;
    t.cached_tokens = usage_seen ? u->cached_tokens : 0;
    t.completion_tokens = usage_seen ? u->completion_tokens : 0;
    tg_translate_usage(tr, &t, &text_chars); /* a translated stream counts on its own */
    uint64_t est = tg_usage_text_tokens(text_chars);
    tg_flight_progress(tg_w->arena, h, t.prompt_tokens, t.cached_tokens, est > t.completion_tokens ? est : t.completion_tokens);
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
