/* Usage queries (usage_q.h). */
#include "store/usage_q.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "store/record.h"
#include "store/store-i.h"

int tg_rollups_each(tg_store_t *s, uint64_t id, const char *from, const char *to, tg_rollup_fn fn, void *ud)
{
    uint8_t lo[8 + TG_DAY_LEN];
    tg_be64_put(lo, id);
    memcpy(lo + 8, from, TG_DAY_LEN);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[TG_CF_ROLLUPS]);
    int rc = 0;
    for (rocksdb_iter_seek(it, (const char *)lo, sizeof(lo)); rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < 8 + TG_DAY_LEN || tg_be64_get((const uint8_t *)k) != id || memcmp(k + 8, to, TG_DAY_LEN) > 0)
            break;
        char day[TG_DAY_LEN + 1], model[TG_ROLLUP_KEY_MAX];
        memcpy(day, k + 8, TG_DAY_LEN);
        day[TG_DAY_LEN] = '\0';
        size_t mlen = klen - 8 - TG_DAY_LEN;
        memcpy(model, k + 8 + TG_DAY_LEN, mlen);
        model[mlen] = '\0';
        const char *v = rocksdb_iter_value(it, &vlen);
        tg_rollup_t r;
        if (tg_rollup_decode((const uint8_t *)v, vlen, &r) == 0)
            rc = fn(ud, id, day, model, &r);
    }
    rocksdb_iter_destroy(it);
    return rc;
}

void tg_today(char out[11])
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

static int parse_day(const char *s, struct tm *tm)
{
    memset(tm, 0, sizeof(*tm));
    if (strlen(s) != 10)
        return -1;
    const char *end = strptime(s, "%Y-%m-%d", tm);
    if (end == NULL || *end)
        return -1;
    tm->tm_isdst = -1;
    struct tm chk = *tm;
    if (mktime(&chk) == (time_t)-1 || chk.tm_mday != tm->tm_mday)
        return -1;
    return 0;
}

int64_t tg_day_start(const char *day)
{
    struct tm tm;
    if (parse_day(day, &tm) != 0)
        return 0;
    return (int64_t)mktime(&tm);
}

static void day_add(const char *day, int delta, char out[11])
{
    struct tm tm;
    parse_day(day, &tm);
    tm.tm_mday += delta;
    tm.tm_hour = 12;
    mktime(&tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

static long day_span(const char *a, const char *b)
{
    return (long)((tg_day_start(b) - tg_day_start(a) + 43200) / 86400) + 1;
}

int tg_query_days(tg_api_req_t *r, int def_month, int max_days, char from[11], char to[11])
{
    char a[32], b[32], today[11];
    struct tm tm;
    tg_today(today);
    if (tg_api_query2(r, "date", "d", a, sizeof(a)) == 1) {
        if (parse_day(a, &tm) != 0) {
            tg_api_error(r, 400, "invalid_parameter", "date: must be YYYY-MM-DD");
            return -1;
        }
        memcpy(from, a, 11);
        memcpy(to, a, 11);
        return 0;
    }
    int hs = tg_api_query2(r, "start", "s", a, sizeof(a)), he = tg_api_query2(r, "end", "e", b, sizeof(b));
    if (hs != 1)
        hs = tg_api_query(r, "start_date", a, sizeof(a));
    if (he != 1)
        he = tg_api_query(r, "end_date", b, sizeof(b));
    if (hs == 1 || he == 1) {
        if (hs != 1 || parse_day(a, &tm) != 0) {
            tg_api_error(r, 400, "invalid_parameter", "start: must be YYYY-MM-DD");
            return -1;
        }
        if (he != 1)
            memcpy(b, today, 11);
        else if (parse_day(b, &tm) != 0) {
            tg_api_error(r, 400, "invalid_parameter", "end: must be YYYY-MM-DD");
            return -1;
        }
        if (strcmp(a, b) > 0) {
            tg_api_error(r, 400, "invalid_parameter", "end: must not be before start");
            return -1;
        }
        if (day_span(a, b) > max_days) {
            tg_api_error(r, 400, "invalid_parameter", "end: the range may span at most %d days", max_days);
            return -1;
        }
        memcpy(from, a, 11);
        memcpy(to, b, 11);
        return 0;
    }
    if (tg_api_query(r, "days", a, sizeof(a)) == 1) {
        char *end;
        long n = strtol(a, &end, 10);
        if (*end || n < 1 || n > max_days) {
            tg_api_error(r, 400, "invalid_parameter", "days: must be an integer from 1 to %d", max_days);
            return -1;
        }
        day_add(today, -(int)(n - 1), from);
        memcpy(to, today, 11);
        return 0;
    }
    memcpy(to, today, 11);
    memcpy(from, today, 11);
    if (def_month)
        memcpy(from + 8, "01", 2);
    return 0;
}

int tg_usage_each_desc(tg_store_t *s, uint64_t from_ms, uint64_t to_ms, int (*fn)(void *ud, const tg_usage_t *u), void *ud)
{
    uint8_t hi[8];
    tg_be64_put(hi, to_ms);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[TG_CF_USAGE]);
    int rc = 0;
    rocksdb_iter_seek_for_prev(it, (const char *)hi, 8);
    /* seek_for_prev lands on the last key <= hi; keys equal to the 8-byte prefix are longer, so
     * anything at exactly to_ms sorts after hi and is excluded */
    for (; rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_prev(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < 8)
            continue;
        uint64_t ts = tg_be64_get((const uint8_t *)k);
        if (ts >= to_ms)
            continue;
        if (ts < from_ms)
            break;
        const char *v = rocksdb_iter_value(it, &vlen);
        tg_usage_t u;
        if (tg_usage_decode((const uint8_t *)v, vlen, &u) == 0)
            rc = fn(ud, &u);
    }
    rocksdb_iter_destroy(it);
    return rc;
}

/* ---- per-request log ---- */

typedef struct req_q {
    uint64_t *ids;
    size_t n_ids;
    int all; /* every account (root) */
    json_t *names;
    const char *model;
    uint32_t status;
    size_t skip, want, total;
    json_t *out;
} req_q_t;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int req_one(void *ud, const tg_usage_t *u)
{
    req_q_t *q = ud;
    if (!q->all && bsearch(&u->account_id, q->ids, q->n_ids, sizeof(uint64_t), cmp_u64) == NULL)
        return 0;
    if (q->model && strcmp(q->model, u->model) != 0)
        return 0;
    if (q->status && u->status != q->status)
        return 0;
    q->total++;
    if (q->total <= q->skip || json_array_size(q->out) >= q->want)
        return 0;
    char key[24], ts[21];
    snprintf(key, sizeof(key), "%llu", (unsigned long long)u->account_id);
    tg_rfc3339((time_t)(u->ts_ms / 1000), ts);
    json_t *name = json_object_get(q->names, key);
    json_array_append_new(
        q->out, json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:I, s:i, s:I, s:I, s:I, s:o, s:i, s:i, s:b, s:b, s:b, s:b, s:s, s:b}", "request_id",
                          u->request_id, "created_at", ts, "timestamp", (json_int_t)u->ts_ms, "account_id",
                          (json_int_t)u->account_id, "account_name", json_is_string(name) ? json_string_value(name) : "", "path",
                          u->path, "model", u->model, "upstream_key_id", (json_int_t)u->upstream_id, "status", (int)u->status,
                          "prompt_tokens", (json_int_t)u->prompt_tokens, "completion_tokens", (json_int_t)u->completion_tokens,
                          "cached_tokens", (json_int_t)u->cached_tokens, "cost", json_real(tg_nanos_to_dollars(u->cost_nanos)),
                          "latency_ms", (int)u->latency_ms, "ttfb_ms", (int)u->ttfb_ms, "stream", (u->flags & TG_USAGE_STREAM) != 0,
                          "estimated", (u->flags & TG_USAGE_ESTIMATED) != 0, "aborted", (u->flags & TG_USAGE_ABORTED) != 0, "orphan",
                          (u->flags & TG_USAGE_ORPHAN) != 0, "run_id", u->run_id, "run_repeat",
                          (u->flags & TG_USAGE_RUN_REPEAT) != 0));
    return 0;
}

/* A time bound from the query: unix ms, or a YYYY-MM-DD day (its start; END: the next day's). */
static int time_bound(tg_api_req_t *r, const char *name, int is_end, uint64_t *out)
{
    char v[32];
    if (tg_api_query(r, name, v, sizeof(v)) != 1)
        return 0;
    char *end;
    unsigned long long ms = strtoull(v, &end, 10);
    if (*end == '\0' && end != v) {
        *out = ms;
        return 0;
    }
    int64_t t = tg_day_start(v);
    if (t == 0) {
        tg_api_error(r, 400, "invalid_parameter", "%s: must be YYYY-MM-DD or unix milliseconds", name);
        return -1;
    }
    *out = (uint64_t)(t + (is_end ? 86400 : 0)) * 1000u;
    return 0;
}

void tg_requests_reply(tg_api_req_t *r, json_t *subtree)
{
    req_q_t q = {0};
    q.names = json_object();
    q.n_ids = json_array_size(subtree);
    q.ids = malloc((q.n_ids ? q.n_ids : 1) * sizeof(uint64_t));
    size_t i;
    json_t *rec;
    json_array_foreach(subtree, i, rec)
    {
        char key[24];
        q.ids[i] = tg_rec_u64(rec, "ID", 0);
        snprintf(key, sizeof(key), "%llu", (unsigned long long)q.ids[i]);
        json_object_set_new(q.names, key, json_string(tg_rec_str(rec, "Name", "")));
    }
    qsort(q.ids, q.n_ids, sizeof(uint64_t), cmp_u64);
    uint64_t from = 0, to = tg_now_ms() + 1;
    char model[80], status[16], page[16], size[16];
    long pg = 1, sz = 50;
    if (time_bound(r, "start", 0, &from) != 0 || time_bound(r, "end", 1, &to) != 0)
        goto done;
    if (tg_api_query(r, "model", model, sizeof(model)) == 1 && *model)
        q.model = model;
    if (tg_api_query(r, "status", status, sizeof(status)) == 1 && *status) {
        long st = strtol(status, NULL, 10);
        if (st < 100 || st > 599) {
            tg_api_error(r, 400, "invalid_parameter", "status: must be an HTTP status code");
            goto done;
        }
        q.status = (uint32_t)st;
    }
    if (tg_api_query(r, "page", page, sizeof(page)) == 1 && (pg = strtol(page, NULL, 10)) < 1) {
        tg_api_error(r, 400, "invalid_parameter", "page: must be a positive integer");
        goto done;
    }
    if (tg_api_query(r, "size", size, sizeof(size)) == 1 && ((sz = strtol(size, NULL, 10)) < 1 || sz > 1000)) {
        tg_api_error(r, 400, "invalid_parameter", "size: must be an integer from 1 to 1000");
        goto done;
    }
    q.skip = (size_t)(pg - 1) * (size_t)sz;
    q.want = (size_t)sz;
    q.out = json_array();
    tg_usage_each_desc(r->store, from, to, req_one, &q);
    tg_api_send(r, 200,
                json_pack("{s:s, s:o, s:I, s:i, s:i, s:b}", "object", "list", "data", q.out, "total", (json_int_t)q.total, "page",
                          (int)pg, "size", (int)sz, "has_more", q.skip + json_array_size(q.out) < q.total));
done:
    free(q.ids);
    json_decref(q.names);
}
