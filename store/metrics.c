/* GET /metrics: Prometheus text exposition (format 0.0.4) of the persister's counters (stats.h),
 * the arena (ring and account occupancy, key-pool health) and the drain's lag. Served on the
 * persister's socket without a key; workers route /metrics from the admin listener. Label values
 * are escaped per the exposition format. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "shm/ring.h"
#include "shm/upstreams.h"
#include "shm/usage.h"
#include "store/api.h"
#include "store/account_rec.h"
#include "store/record.h"
#include "store/stats.h"
#include "store/store-i.h"

static const uint64_t g_batch_bounds[TG_STATS_BATCH_BUCKETS - 1] = {1, 8, 64, 256, 1024, 4096, 16384};
static const uint64_t g_latency_bounds[TG_STATS_LATENCY_BUCKETS - 1] = {50,   100,   250,   500,   1000, 2500,
                                                                         5000, 10000, 30000, 60000, 120000};

void tg_stats_note_record(tg_store_stats_t *st, const tg_usage_t *u)
{
    tg_stats_series_t *se = NULL;
    for (uint32_t i = 0; i < st->n_series; i++)
        if (st->series[i].status == u->status && strcmp(st->series[i].model, u->model) == 0) {
            se = &st->series[i];
            break;
        }
    if (se == NULL && st->n_series < TG_STATS_MODELS) {
        se = &st->series[st->n_series++];
        memset(se, 0, sizeof(*se));
        snprintf(se->model, sizeof(se->model), "%s", u->model);
        se->status = u->status;
    }
    if (se == NULL) {
        st->other_requests++;
    } else {
        se->requests++;
        se->prompt += u->prompt_tokens;
        se->completion += u->completion_tokens;
        se->cost_nanos += u->cost_nanos;
    }
    if (u->upstream_id != 0) {
        size_t b = 0;
        while (b < TG_STATS_LATENCY_BUCKETS - 1 && u->latency_ms > g_latency_bounds[b])
            b++;
        st->latency_hist[b]++;
        st->latency_count++;
        st->latency_sum_ms += u->latency_ms;
    }
    if (u->ts_ms > st->last_record_ts_ms)
        st->last_record_ts_ms = u->ts_ms;
}

void tg_stats_note_batch(tg_store_stats_t *st, size_t n, uint64_t now_ms)
{
    size_t b = 0;
    while (b < TG_STATS_BATCH_BUCKETS - 1 && n > g_batch_bounds[b])
        b++;
    st->batch_hist[b]++;
    st->batches++;
    st->batch_sum += n;
    st->records_drained += n;
    st->last_batch_ms = now_ms;
    st->lag_ms = st->last_record_ts_ms && now_ms > st->last_record_ts_ms ? now_ms - st->last_record_ts_ms : 0;
}

/* Writes S escaped as a label value. */
static void label(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', f);
        if (*s == '\n') {
            fputs("\\n", f);
            continue;
        }
        fputc(*s, f);
    }
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void histogram(FILE *f, const char *name, const uint64_t *bounds, const uint64_t *counts, size_t n, double scale,
                      double sum, uint64_t total)
{
    uint64_t cum = 0;
    for (size_t i = 0; i < n; i++) {
        cum += counts[i];
        if (i + 1 < n)
            fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, (double)bounds[i] * scale, (unsigned long long)cum);
        else
            fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    }
    fprintf(f, "%s_sum %.6f\n%s_count %llu\n", name, sum, name, (unsigned long long)total);
}

/* Age of the oldest record still in the ring, in ms (0 when empty or not readable yet). */
static uint64_t ring_oldest_age_ms(tg_arena_t *a)
{
    if (tg_ring_used(a) == 0)
        return 0;
    const uint8_t *data;
    size_t len;
    tg_usage_t u;
    if (tg_ring_peek(a, tg_ring_tail(a), &data, &len) != TG_RING_OK || tg_usage_decode(data, len, &u) != 0)
        return 0;
    uint64_t now = tg_now_ms();
    return now > u.ts_ms ? now - u.ts_ms : 0;
}

void tg_api_metrics(tg_api_req_t *r)
{
    if (tg_rec_u64(r->caller, "ID", 0) != TG_ROOT_ID) {
        tg_api_error(r, 403, "permission_error", "metrics are for the root account's key");
        return;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL) {
        tg_api_error(r, 500, "api_error", "out of memory");
        return;
    }
    const tg_store_stats_t *st = &r->store->stats;
    tg_arena_t *a = r->arena;

    head(f, "tollgate_persister_records_drained_total", "counter", "Usage records moved from the ring into the store.");
    fprintf(f, "tollgate_persister_records_drained_total %llu\n", (unsigned long long)st->records_drained);
    head(f, "tollgate_persister_orphans_total", "counter",
         "Estimated records of requests whose worker died in flight: stored, or skipped as a duplicate.");
    fprintf(f, "tollgate_persister_orphans_total{outcome=\"stored\"} %llu\n", (unsigned long long)st->orphans_stored);
    fprintf(f, "tollgate_persister_orphans_total{outcome=\"duplicate\"} %llu\n", (unsigned long long)st->orphans_duplicate);
    head(f, "tollgate_persister_batch_failures_total", "counter", "Drain batches whose write failed (retried).");
    fprintf(f, "tollgate_persister_batch_failures_total %llu\n", (unsigned long long)st->batch_failures);
    head(f, "tollgate_persister_batch_size", "histogram", "Records per committed drain batch.");
    histogram(f, "tollgate_persister_batch_size", g_batch_bounds, st->batch_hist, TG_STATS_BATCH_BUCKETS, 1.0,
              (double)st->batch_sum, st->batches);
    head(f, "tollgate_persister_lag_seconds", "gauge", "Age of the oldest usage record not yet drained.");
    fprintf(f, "tollgate_persister_lag_seconds %.3f\n", (double)ring_oldest_age_ms(a) / 1000.0);
    head(f, "tollgate_persister_last_batch_lag_seconds", "gauge",
         "At the last committed batch: its time minus the completion time of its newest record.");
    fprintf(f, "tollgate_persister_last_batch_lag_seconds %.3f\n", (double)st->lag_ms / 1000.0);

    head(f, "tollgate_ring_used", "gauge", "Usage ring slots holding records not yet drained.");
    fprintf(f, "tollgate_ring_used %llu\n", (unsigned long long)tg_ring_used(a));
    head(f, "tollgate_ring_slots", "gauge", "Usage ring capacity.");
    fprintf(f, "tollgate_ring_slots %u\n", a->hdr->ring_slots);
    head(f, "tollgate_ring_full_events_total", "counter", "Times a worker found the ring full.");
    fprintf(f, "tollgate_ring_full_events_total %llu\n", (unsigned long long)atomic_load(&a->hdr->ring_full_events));
    head(f, "tollgate_ring_skipped_total", "counter", "Ring claims abandoned by producers that died.");
    fprintf(f, "tollgate_ring_skipped_total %llu\n", (unsigned long long)atomic_load(&a->hdr->ring_skipped));

    head(f, "tollgate_arena_accounts", "gauge", "Account slots in use.");
    fprintf(f, "tollgate_arena_accounts %u\n", r->store->slots_ready ? r->store->acct_slots.used : 0);
    head(f, "tollgate_arena_accounts_max", "gauge", "Account slots in the arena.");
    fprintf(f, "tollgate_arena_accounts_max %u\n", a->hdr->max_accounts);
    head(f, "tollgate_arena_upstream_keys", "gauge", "Upstream key slots in use.");
    fprintf(f, "tollgate_arena_upstream_keys %u\n", r->store->slots_ready ? r->store->up_slots.used : 0);
    head(f, "tollgate_arena_upstream_keys_max", "gauge", "Upstream key slots in the arena.");
    fprintf(f, "tollgate_arena_upstream_keys_max %u\n", a->hdr->max_upstreams);

    /* Key-pool health, one series per key. */
    uint64_t now = tg_now_ms();
    static const char *const key_metrics[][3] = {
        {"tollgate_upstream_key_up", "gauge", "1 when the key is enabled and not sleeping."},
        {"tollgate_upstream_key_sleeping", "gauge", "1 while the key cools down after a 429, 5xx or connect failure."},
        {"tollgate_upstream_key_inflight", "gauge", "Requests in flight on the key."},
        {"tollgate_upstream_key_requests_total", "counter", "Requests sent with the key."},
        {"tollgate_upstream_key_failures_total", "counter", "Failed attempts with the key."},
    };
    uint32_t n_up = tg_upstream_count(a);
    for (size_t m = 0; m < sizeof(key_metrics) / sizeof(key_metrics[0]); m++) {
        head(f, key_metrics[m][0], key_metrics[m][1], key_metrics[m][2]);
        for (uint32_t slot = 0; slot < n_up && slot < a->hdr->max_upstreams; slot++) {
            tg_upstream_settings_t us;
            if (tg_upstream_read(a, slot, &us) != 0)
                continue;
            tg_upstream_t *u = &a->upstreams[slot];
            int sleeping = atomic_load(&u->sleep_until_ms) > now;
            uint64_t v = 0;
            switch (m) {
            case 0: v = (us.flags & TG_UPSTREAM_ENABLED) && !sleeping; break;
            case 1: v = (uint64_t)sleeping; break;
            case 2: v = atomic_load(&u->inflight); break;
            case 3: v = atomic_load(&u->requests); break;
            default: v = atomic_load(&u->failures); break;
            }
            fprintf(f, "%s{id=\"%llu\",owner=\"%llu\",level=\"%d\",name=\"", key_metrics[m][0], (unsigned long long)us.id,
                    (unsigned long long)us.owner_id, us.level);
            label(f, us.name);
            fprintf(f, "\"} %llu\n", (unsigned long long)v);
            explicit_bzero(us.sealed, sizeof(us.sealed));
        }
    }

    head(f, "tollgate_requests_total", "counter", "Proxied requests drained since the persister started, by model and status.");
    for (uint32_t i = 0; i < st->n_series; i++) {
        fputs("tollgate_requests_total{model=\"", f);
        label(f, st->series[i].model);
        fprintf(f, "\",status=\"%u\"} %llu\n", st->series[i].status, (unsigned long long)st->series[i].requests);
    }
    if (st->other_requests)
        fprintf(f, "tollgate_requests_total{model=\"other\",status=\"other\"} %llu\n", (unsigned long long)st->other_requests);
    head(f, "tollgate_tokens_total", "counter", "Tokens billed, by model and kind.");
    for (uint32_t i = 0; i < st->n_series; i++) {
        for (int k = 0; k < 2; k++) {
            fputs("tollgate_tokens_total{model=\"", f);
            label(f, st->series[i].model);
            fprintf(f, "\",status=\"%u\",kind=\"%s\"} %llu\n", st->series[i].status, k ? "completion" : "prompt",
                    (unsigned long long)(k ? st->series[i].completion : st->series[i].prompt));
        }
    }
    head(f, "tollgate_cost_dollars_total", "counter", "Cost billed to accounts, by model.");
    for (uint32_t i = 0; i < st->n_series; i++) {
        fputs("tollgate_cost_dollars_total{model=\"", f);
        label(f, st->series[i].model);
        fprintf(f, "\",status=\"%u\"} %.9f\n", st->series[i].status, tg_nanos_to_dollars(st->series[i].cost_nanos));
    }
    head(f, "tollgate_upstream_latency_seconds", "histogram", "Upstream request latency (request start to last byte).");
    histogram(f, "tollgate_upstream_latency_seconds", g_latency_bounds, st->latency_hist, TG_STATS_LATENCY_BUCKETS, 0.001,
              (double)st->latency_sum_ms / 1000.0, st->latency_count);

    head(f, "tollgate_card_expiry_runs_total", "counter", "Runs of the card expiry job.");
    fprintf(f, "tollgate_card_expiry_runs_total %llu\n", (unsigned long long)st->expiry_runs);
    head(f, "tollgate_cards_expired_total", "counter", "Accounts whose expired cards were written off.");
    fprintf(f, "tollgate_cards_expired_total %llu\n", (unsigned long long)st->expired_cards);
    head(f, "tollgate_usage_retention_cutoff_seconds", "gauge", "Usage rows before this unix time were deleted.");
    fprintf(f, "tollgate_usage_retention_cutoff_seconds %llu\n", (unsigned long long)(st->retention_deleted_before_ms / 1000));
    head(f, "tollgate_management_requests_total", "counter", "Management API answers by status class.");
    for (int c = 1; c <= 5; c++)
        fprintf(f, "tollgate_management_requests_total{class=\"%dxx\"} %llu\n", c, (unsigned long long)st->api_requests[c]);
    fclose(f);

    h2o_req_t *req = r->req;
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; version=0.0.4; charset=utf-8"));
    h2o_iovec_t body = h2o_strdup(&req->pool, text, len);
    free(text);
    h2o_send_inline(req, body.base, body.len);
}
