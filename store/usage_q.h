/* Reading usage for the bill and log endpoints: roll-up rows of an account over a range of days,
 * date-range query parameters, and the per-request log (usage CF) filtered by a set of accounts. */
#ifndef TG_STORE_USAGE_Q_H
#define TG_STORE_USAGE_Q_H

#include <jansson.h>
#include <stdint.h>

#include "shm/usage.h"
#include "store/api.h"
#include "store/schema.h"

typedef int (*tg_rollup_fn)(void *ud, uint64_t account_id, const char *day, const char *model, const tg_rollup_t *r);

/** Calls FN for every roll-up row of account ID with FROM ≤ day ≤ TO ("YYYY-MM-DD"). */
int tg_rollups_each(tg_store_t *s, uint64_t id, const char *from, const char *to, tg_rollup_fn fn, void *ud);

/** A day range from the query: date|d=DAY, start|s & end|e, days=N (the last N days), else the
 * default (DEF_MONTH: this month so far; otherwise today). MAX_DAYS bounds the span. Answers 400
 * and returns -1 on a bad value. */
int tg_query_days(tg_api_req_t *r, int def_month, int max_days, char from[11], char to[11]);
/** Today's date in the configured zone. */
void tg_today(char out[11]);
/** Unix seconds of local midnight starting DAY. */
int64_t tg_day_start(const char *day);

/** Calls FN for each usage row between FROM_MS and TO_MS (exclusive), newest first. */
int tg_usage_each_desc(tg_store_t *s, uint64_t from_ms, uint64_t to_ms, int (*fn)(void *ud, const tg_usage_t *u), void *ud);

/** Answers the per-request log of the accounts in SUBTREE (records of tg_manage_subtree; ids
 * matched) with the query filters (start/end, model, status, page, size). */
void tg_requests_reply(tg_api_req_t *r, json_t *subtree);

#endif
