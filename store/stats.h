/* Counters the persister keeps for GET /metrics (metrics.c): drain throughput and batch sizes,
 * requests by status and model seen by the drain, upstream latency. In memory, since the
 * persister started (Prometheus counters may reset). */
#ifndef TG_STORE_STATS_H
#define TG_STORE_STATS_H

#include <stdint.h>

#define TG_STATS_MODELS 64         /* distinct (model, status) series kept; the rest count as "other" */
#define TG_STATS_BATCH_BUCKETS 8   /* batch size histogram: 1, 8, 64, 256, 1024, 4096, 16384, +Inf */
#define TG_STATS_LATENCY_BUCKETS 12 /* upstream latency histogram (ms) */

typedef struct tg_stats_series {
    char model[64];
    uint32_t status;
    uint64_t requests;
    uint64_t prompt, completion;
    int64_t cost_nanos;
} tg_stats_series_t;

typedef struct tg_store_stats {
    uint64_t records_drained, batches, batch_failures, bad_records;
    uint64_t orphans_stored, orphans_duplicate; /* records of requests whose worker died (shm/flight.h) */
    uint64_t batch_hist[TG_STATS_BATCH_BUCKETS];
    uint64_t batch_sum;
    uint64_t last_batch_ms;       /* wall time of the last committed batch */
    uint64_t last_record_ts_ms;   /* completion time of the newest drained record */
    uint64_t lag_ms;              /* now - ts of the last drained record, at its batch */
    uint64_t latency_hist[TG_STATS_LATENCY_BUCKETS];
    uint64_t latency_count, latency_sum_ms;
    tg_stats_series_t series[TG_STATS_MODELS];
    uint32_t n_series;
    uint64_t other_requests;
    uint64_t expired_cards, expiry_runs, retention_deleted_before_ms, retention_runs;
    uint64_t api_requests[6];     /* by status class: 1xx..5xx (index 1..5), 0 other */
} tg_store_stats_t;

struct tg_usage;
/** Counts one drained record (model/status series, latency histogram). */
void tg_stats_note_record(tg_store_stats_t *st, const struct tg_usage *u);
/** Counts one committed batch of N records at wall time NOW_MS. */
void tg_stats_note_batch(tg_store_stats_t *st, size_t n, uint64_t now_ms);

#endif
