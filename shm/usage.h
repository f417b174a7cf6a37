/* The usage record: one per proxied request, pushed by a worker into the ring and stored by the
 * persister. Encoded as a msgpack map with short keys, so fields can be added without a new
 * format (unknown keys are ignored on decode). */
#ifndef TG_USAGE_H
#define TG_USAGE_H

#include <stddef.h>
#include <stdint.h>

#define TG_REQUEST_ID_MAX 40
#define TG_MODEL_MAX 64
#define TG_PATH_MAX 64
#define TG_RUN_ID_MAX 64

#define TG_USAGE_STREAM 0x1u
#define TG_USAGE_ESTIMATED 0x2u /* tokens counted by tollgate, not reported by the upstream */
#define TG_USAGE_ABORTED 0x4u   /* the client left before the end */
#define TG_USAGE_ORPHAN 0x8u    /* billed by the reaper: the worker died with the request in flight (shm/flight.h) */
#define TG_USAGE_RUN_REPEAT 0x10u /* the run (run_id) was billed by an earlier record: stored with 0 tokens, cost 0 */

typedef struct tg_usage {
    char request_id[TG_REQUEST_ID_MAX];
    uint64_t ts_ms; /* completion time, unix ms */
    uint64_t account_id;
    uint64_t upstream_id; /* 0 when no upstream was reached */
    char model[TG_MODEL_MAX];
    char path[TG_PATH_MAX];
    uint32_t status;
    uint32_t flags;
    uint64_t prompt_tokens, completion_tokens, cached_tokens;
    int64_t cost_nanos;
    uint32_t latency_ms, ttfb_ms;
    char run_id[TG_RUN_ID_MAX]; /* an Assistants run billed by this record (worker/run_usage.h); "" none */
} tg_usage_t;

/** Encodes U into BUF (CAP bytes); returns the length, or -1 if it does not fit. */
int tg_usage_encode(const tg_usage_t *u, uint8_t *buf, size_t cap);
/** Decodes a record; returns 0, or -1 when BUF is not a usage record. */
int tg_usage_decode(const uint8_t *buf, size_t len, tg_usage_t *out);

#endif
