/* Dashboard endpoints (api-compat 4.2, 7.2, 8): any valid key, about its own account.
 *
 * GET /dashboard/status (alias /dashboard/x-user-status):
 *   {"object":"user_status","id","dna","name","email","alias","public_key","balance","manage","admin"}
 *   balance: dollars, the cards less what workers settled or reserved that the drain has not
 *   moved yet. Root's spending is unlimited (7.12): it shows its own cards, normally 0.
 *   admin: root and owners. manage: admin accounts, and others above USER_API_BALANCE (1.3).
 * GET /dashboard/info (aliases /dashboard/x-user-info, /dashboard/x_user/info): the flat legacy
 *   shape the pages read (7.2) plus the nested keys object, user, limits, usage.
 * GET /dashboard/live: the nested documented shape with today's and this month's usage.
 * GET /dashboard/bill: own usage by model; date=, start=&end=, days=; daily_costs for ranges.
 * GET /dashboard/logs: audit entries by the caller or about its subtree, newest first.
 * GET /dashboard/news: system news and news addressed to the caller or a group above it.
 * GET /dashboard/conf: the owner settings that apply to the caller.
 * GET /dashboard/models: models the caller may use, OpenAI list format.
 * GET /dashboard/billing/usage: OpenAI-legacy usage (cents) for start_date..end_date (≤ 1 year).
 * GET /dashboard/requests: the caller's and its descendants' per-request log (8). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "shm/arena-t.h"
#include "shm/policy.h"
#include "store/account_rec.h"
#include "store/api.h"
#include "store/api_manage-i.h"
#include "store/ledger.h"
#include "store/record.h"
#include "store/store-i.h"
#include "store/usage_q.h"

static double num_of(const json_t *rec, const char *name, double def)
{
    json_t *v = json_object_get(rec, name);
    return json_is_number(v) ? json_number_value(v) : def;
}

static int64_t shown_balance(tg_api_req_t *r, const json_t *acct)
{
    return tg_api_shown_balance(acct, tg_api_inflight(r, tg_rec_u64(acct, "ID", 0)));
}

void tg_api_dashboard_status(tg_api_req_t *r)
{
    const json_t *acct = r->caller;
    uint64_t id = r->caller_id;
    int admin = tg_api_is_admin(acct);
    int64_t balance = shown_balance(r, acct);
    double api_min = tg_api_owner_number(r, acct, "USER_API_BALANCE", 20.0);
    int manage = admin || (double)balance / 1e9 > api_min;
    const char *name = tg_rec_str(acct, "Name", "");
    json_t *body = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:f, s:b, s:b}", "object", "user_status", "id", (json_int_t)id,
                             "dna", tg_rec_str(acct, "DNA", ""), "name", name, "email", tg_rec_str(acct, "Email", ""), "alias",
                             tg_rec_str(acct, "Alias", name), "public_key", tg_rec_str(acct, "PartialKey", ""), "balance",
                             tg_nanos_to_dollars(balance), "manage", manage, "admin", admin);
    tg_api_send(r, 200, body);
}

/* ---- usage sums from the roll-ups ---- */

typedef struct usum {
    tg_rollup_t all;
    json_t *by_model; /* model → {Requests, Prompt, Completion, CreditUsed} counters (integers, cost in nanos) */
    json_t *by_day;   /* day → model → rollup-ish object */
} usum_t;

static void obj_add(json_t *o, const char *k, json_int_t v)
{
    json_t *x = json_object_get(o, k);
    json_object_set_new(o, k, json_integer((x ? json_integer_value(x) : 0) + v));
}

static void add_counters(json_t *o, const tg_rollup_t *r)
{
    obj_add(o, "Requests", (json_int_t)r->requests);
    obj_add(o, "Prompt", (json_int_t)r->prompt);
    obj_add(o, "Completion", (json_int_t)r->completion);
    obj_add(o, "Cached", (json_int_t)r->cached);
    obj_add(o, "Cost", (json_int_t)r->cost_nanos);
}

static json_t *obj_at(json_t *o, const char *k)
{
    json_t *x = json_object_get(o, k);
    if (x == NULL) {
        x = json_object();
        json_object_set_new(o, k, x);
    }
    return x;
}

static int usum_add(void *ud, uint64_t id, const char *day, const char *model, const tg_rollup_t *r)
{
    usum_t *u = ud;
    tg_rollup_add(&u->all, r);
    if (u->by_model)
        add_counters(obj_at(u->by_model, model), r);
    if (u->by_day)
        add_counters(obj_at(obj_at(u->by_day, day), model), r);
    return 0;
}

static tg_rollup_t usage_between(tg_api_req_t *r, uint64_t id, const char *from, const char *to)
{
    usum_t u = {0};
    tg_rollups_each(r->store, id, from, to, usum_add, &u);
    return u.all;
}

static json_t *usage_pascal(const tg_rollup_t *x)
{
    return json_pack("{s:o, s:I, s:I, s:I}", "CreditUsed", tg_api_money(x->cost_nanos), "Requests", (json_int_t)x->requests,
                     "Prompt", (json_int_t)x->prompt, "Completion", (json_int_t)x->completion);
}

static json_t *usage_snake(const tg_rollup_t *x)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:o}", "requests", (json_int_t)x->requests, "prompt_tokens", (json_int_t)x->prompt,
                     "completion_tokens", (json_int_t)x->completion, "cached_tokens", (json_int_t)x->cached, "cost",
                     tg_api_money(x->cost_nanos));
}

static json_t *limits_view(const json_t *a)
{
    return json_pack("{s:o, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I}", "hard_limit", tg_api_money(tg_rec_i64(a, "HardLimit", 0)),
                     "soft_limit", tg_api_money(tg_rec_i64(a, "SoftLimit", 0)), "auto_quota",
                     tg_api_money(tg_rec_i64(a, "AutoQuota", 0)), "rpm", (json_int_t)tg_rec_i64(a, "RPM", 0), "rph",
                     (json_int_t)tg_rec_i64(a, "RPH", 0), "rpd", (json_int_t)tg_rec_i64(a, "RPD", 0), "tpm",
                     (json_int_t)tg_rec_i64(a, "TPM", 0), "tph", (json_int_t)tg_rec_i64(a, "TPH", 0), "tpd",
                     (json_int_t)tg_rec_i64(a, "TPD", 0));
}

static json_t *user_view(const json_t *a)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:f, s:f, s:s, s:s, s:s}", "id",
                     (json_int_t)tg_rec_u64(a, "ID", 0), "name", tg_rec_str(a, "Name", ""), "email", tg_rec_str(a, "Email", ""),
                     "alias", tg_rec_str(a, "Alias", ""), "level", (json_int_t)tg_rec_i64(a, "Level", 1), "gear",
                     (json_int_t)tg_rec_i64(a, "Gear", 0), "role", (json_int_t)tg_rec_i64(a, "Role", 0), "tier",
                     (json_int_t)tg_rec_i64(a, "Tier", 0), "factor", num_of(a, "Factor", 1.0), "rates", num_of(a, "Rates", 1.0),
                     "dna", tg_rec_str(a, "DNA", ""), "created_at", tg_rec_str(a, "CreatedAt", ""), "updated_at",
                     tg_rec_str(a, "UpdatedAt", ""));
}

/* The flat legacy body (+ nested keys) of /dashboard/info for ACCT. */
static json_t *info_body(tg_api_req_t *r, const json_t *a)
{
    char today[11], month[11];
    tg_today(today);
    memcpy(month, today, 11);
    memcpy(month + 8, "01", 2);
    uint64_t id = tg_rec_u64(a, "ID", 0);
    tg_rollup_t d = usage_between(r, id, today, today), m = usage_between(r, id, month, today);
    int64_t balance = shown_balance(r, a);
    json_t *cards = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(a, "CreditBalance"), i, c)
    {
        json_array_append_new(cards, json_pack("{s:o, s:o, s:s, s:s, s:s}", "amount", tg_api_money(tg_rec_i64(c, "amount", 0)),
                                               "balance", tg_api_money(tg_rec_i64(c, "balance", 0)), "granted_at",
                                               tg_rec_str(c, "granted_at", ""), "expires_at", tg_rec_str(c, "expires_at", ""),
                                               "reference", tg_rec_str(c, "reference", "")));
    }
    json_t *body = json_object();
    json_object_set_new(body, "object", json_string("user_info"));
    json_object_set_new(body, "id", json_integer((json_int_t)id));
    json_object_set_new(body, "name", json_string(tg_rec_str(a, "Name", "")));
    json_object_set_new(body, "alias", json_string(tg_rec_str(a, "Alias", "")));
    json_object_set_new(body, "email", json_string(tg_rec_str(a, "Email", "")));
    json_object_set_new(body, "dna", json_string(tg_rec_str(a, "DNA", "")));
    json_object_set_new(body, "level", json_integer(tg_rec_i64(a, "Level", 1)));
    json_object_set_new(body, "child", json_integer(tg_rec_i64(a, "Child", 0)));
    json_object_set_new(body, "status", json_boolean(tg_rec_bool(a, "Status", 1)));
    json_object_set_new(body, "create_at", json_string(tg_rec_str(a, "CreatedAt", "")));
    json_object_set_new(body, "credit_balance", cards);
    json_object_set_new(body, "credit_used", tg_api_money(tg_rec_i64(a, "CreditUsed", 0)));
    json_object_set_new(body, "balance", tg_api_money(balance));
    json_object_set_new(body, "daily_usage", usage_pascal(&d));
    json_object_set_new(body, "monthly_usage", usage_pascal(&m));
    json_object_set_new(body, "hard_limit", tg_api_money(tg_rec_i64(a, "HardLimit", 0)));
    json_object_set_new(body, "rate_limit", json_integer(tg_rec_i64(a, "RPM", 0)));
    json_object_set_new(body, "rpm", json_integer(tg_rec_i64(a, "RPM", 0)));
    json_object_set_new(body, "tpd", json_integer(tg_rec_i64(a, "TPD", 0)));
    json_object_set_new(body, "rates", json_real(num_of(a, "Rates", 1.0)));
    json_object_set_new(body, "user", user_view(a));
    json_object_set_new(body, "limits", limits_view(a));
    json_object_set_new(body, "usage", json_pack("{s:o, s:o}", "today", usage_snake(&d), "month", usage_snake(&m)));
    return body;
}

void tg_api_dashboard_info(tg_api_req_t *r)
{
    tg_api_send(r, 200, info_body(r, r->caller));
}

/* GET /x-info?user={id or name} (Admin): the same body for a descendant (api_admin.c calls this). */
void tg_api_info(tg_api_req_t *r)
{
    if (tg_api_require_admin(r) != 0)
        return;
    char who[320];
    json_t *target = NULL;
    if (tg_api_query2(r, "user", "u", who, sizeof(who)) == 1 && *who) {
        if ((target = tg_manage_resolve(r, who, 1)) == NULL)
            return;
    } else {
        target = json_incref(r->caller);
    }
    tg_api_send(r, 200, info_body(r, target));
    json_decref(target);
}

void tg_api_dashboard_live(tg_api_req_t *r)
{
    const json_t *a = r->caller;
    char today[11], month[11];
    tg_today(today);
    memcpy(month, today, 11);
    memcpy(month + 8, "01", 2);
    tg_rollup_t d = usage_between(r, r->caller_id, today, today), m = usage_between(r, r->caller_id, month, today);
    json_t *credits = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(a, "CreditBalance"), i, c)
    {
        json_array_append_new(credits, json_pack("{s:o, s:o, s:s}", "amount", tg_api_money(tg_rec_i64(c, "amount", 0)), "balance",
                                                 tg_api_money(tg_rec_i64(c, "balance", 0)), "expires_at",
                                                 tg_rec_str(c, "expires_at", "")));
    }
    int64_t inflight = r->caller_id == TG_ROOT_ID ? 0 : tg_api_inflight(r, r->caller_id);
    int64_t total = shown_balance(r, a);
    tg_api_send(r, 200,
                json_pack("{s:s, s:o, s:{s:o, s:o, s:o}, s:o, s:{s:o, s:o}, s:I}", "object", "user_info", "user", user_view(a),
                          "balance", "total", tg_api_money(total), "pending", tg_api_money(inflight),
                          "credits", credits, "limits", limits_view(a), "usage", "today", usage_snake(&d), "month",
                          usage_snake(&m), "timestamp", (json_int_t)(tg_now_ms() / 1000)));
}

/* ---- /dashboard/bill ---- */

static json_t *model_stats(json_t *c)
{
    return json_pack("{s:O, s:O, s:O, s:O, s:o}", "Requests", json_object_get(c, "Requests"), "Prompt",
                     json_object_get(c, "Prompt"), "Completion", json_object_get(c, "Completion"), "Cached",
                     json_object_get(c, "Cached"), "CreditUsed",
                     tg_api_money((int64_t)json_integer_value(json_object_get(c, "Cost"))));
}

void tg_api_dashboard_bill(tg_api_req_t *r)
{
    char from[11], to[11];
    if (tg_query_days(r, 0, 366, from, to) != 0)
        return;
    usum_t u = {{0}, json_object(), json_object()};
    tg_rollups_each(r->store, r->caller_id, from, to, usum_add, &u);
    json_t *summary = json_object();
    const char *model;
    json_t *c;
    json_object_foreach(u.by_model, model, c)
    {
        double req = (double)json_integer_value(json_object_get(c, "Requests"));
        double cost = (double)json_integer_value(json_object_get(c, "Cost"));
        json_object_set_new(summary, model,
                            json_pack("{s:o, s:{s:f, s:f}}", "model_stats", model_stats(c), "usage_analysis", "cost_percentage",
                                      u.all.cost_nanos ? 100.0 * cost / (double)u.all.cost_nanos : 0.0, "request_percentage",
                                      u.all.requests ? 100.0 * req / (double)u.all.requests : 0.0));
    }
    json_t *daily = json_array();
    const char *day;
    json_t *models;
    json_object_foreach(u.by_day, day, models)
    {
        tg_rollup_t t = {0};
        json_t *items = json_array();
        json_object_foreach(models, model, c)
        {
            t.requests += (uint64_t)json_integer_value(json_object_get(c, "Requests"));
            t.prompt += (uint64_t)json_integer_value(json_object_get(c, "Prompt"));
            t.completion += (uint64_t)json_integer_value(json_object_get(c, "Completion"));
            t.cost_nanos += (int64_t)json_integer_value(json_object_get(c, "Cost"));
            json_array_append_new(items, json_pack("{s:s, s:o, s:{s:o}}", "name", model, "cost",
                                                   tg_api_money((int64_t)json_integer_value(json_object_get(c, "Cost"))), "usage",
                                                   "model_stats", model_stats(c)));
        }
        json_array_append_new(daily, json_pack("{s:s, s:I, s:o, s:I, s:I, s:I, s:o}", "date", day, "timestamp",
                                               (json_int_t)tg_day_start(day), "total_credit_used", tg_api_money(t.cost_nanos),
                                               "total_requests", (json_int_t)t.requests, "total_prompt", (json_int_t)t.prompt,
                                               "total_completion", (json_int_t)t.completion, "line_items", items));
    }
    json_decref(u.by_model);
    json_decref(u.by_day);
    tg_api_send(r, 200,
                json_pack("{s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:o, s:o}", "start", from, "end", to, "total_credit_used",
                          tg_api_money(u.all.cost_nanos), "total_requests", (json_int_t)u.all.requests, "total_prompt",
                          (json_int_t)u.all.prompt, "total_completion", (json_int_t)u.all.completion, "total_cached",
                          (json_int_t)u.all.cached, "usage_summary", summary, "daily_costs", daily));
}

void tg_api_dashboard_billing_usage(tg_api_req_t *r)
{
    char a[16], b[16];
    if (tg_api_query(r, "start_date", a, sizeof(a)) != 1 || tg_api_query(r, "end_date", b, sizeof(b)) != 1) {
        tg_api_error(r, 400, "invalid_parameter", "start_date and end_date (YYYY-MM-DD) are required");
        return;
    }
    char from[11], to[11];
    if (tg_query_days(r, 0, 366, from, to) != 0)
        return;
    usum_t u = {{0}, NULL, json_object()};
    tg_rollups_each(r->store, r->caller_id, from, to, usum_add, &u);
    json_t *daily = json_array();
    const char *day, *model;
    json_t *models, *c;
    json_object_foreach(u.by_day, day, models)
    {
        json_t *items = json_array();
        json_object_foreach(models, model, c) json_array_append_new(
            items, json_pack("{s:s, s:f}", "name", model, "cost", (double)json_integer_value(json_object_get(c, "Cost")) / 1e7));
        json_array_append_new(daily, json_pack("{s:I, s:o}", "timestamp", (json_int_t)tg_day_start(day), "line_items", items));
    }
    json_decref(u.by_day);
    tg_api_send(r, 200,
                json_pack("{s:s, s:o, s:f}", "object", "list", "daily_costs", daily, "total_usage",
                          (double)u.all.cost_nanos / 1e7));
}

/* ---- /dashboard/logs ---- */

typedef struct logs_q {
    const json_t *caller;
    const char *action;
    uint64_t target;
    size_t skip, want, total;
    json_t *out;
} logs_q_t;

void tg_audit_list(tg_api_req_t *r, const char *dna, uint64_t self_id, const char *action, uint64_t target, long page, long size);

void tg_api_dashboard_logs(tg_api_req_t *r)
{
    char action[64] = "", target[24] = "", page[16], size[16];
    long pg = 1, sz = 24;
    tg_api_query(r, "action", action, sizeof(action));
    tg_api_query(r, "target_id", target, sizeof(target));
    if (tg_api_query(r, "page", page, sizeof(page)) == 1 && (pg = strtol(page, NULL, 10)) < 1) {
        tg_api_error(r, 400, "invalid_parameter", "page: must be a positive integer");
        return;
    }
    if (tg_api_query(r, "size", size, sizeof(size)) == 1 && ((sz = strtol(size, NULL, 10)) < 1 || sz > 100)) {
        tg_api_error(r, 400, "invalid_parameter", "size: must be an integer from 1 to 100");
        return;
    }
    tg_audit_list(r, tg_rec_str(r->caller, "DNA", ".none."), r->caller_id, *action ? action : NULL,
                  *target ? strtoull(target, NULL, 10) : 0, pg, sz);
}

void tg_audit_list(tg_api_req_t *r, const char *dna, uint64_t self_id, const char *action, uint64_t target, long page, long size)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(r->store->db, r->store->ro, r->store->cf[TG_CF_AUDIT]);
    size_t skip = (size_t)(page - 1) * (size_t)size, total = 0, dlen = strlen(dna);
    json_t *out = json_array();
    for (rocksdb_iter_seek_to_last(it); rocksdb_iter_valid(it); rocksdb_iter_prev(it)) {
        size_t vlen;
        const char *v = rocksdb_iter_value(it, &vlen);
        json_t *e = json_loadb(v, vlen, 0, NULL);
        if (e == NULL)
            continue;
        int visible = tg_rec_u64(e, "operator_id", 0) == self_id || strncmp(tg_rec_str(e, "target_dna", ""), dna, dlen) == 0;
        if (visible && action && strcmp(tg_rec_str(e, "action", ""), action) != 0)
            visible = 0;
        if (visible && target && tg_rec_u64(e, "target_id", 0) != target)
            visible = 0;
        if (visible) {
            total++;
            if (total > skip && json_array_size(out) < (size_t)size) {
                json_object_del(e, "operator_dna");
                json_object_del(e, "target_dna");
                json_array_append(out, e);
            }
        }
        json_decref(e);
    }
    rocksdb_iter_destroy(it);
    tg_api_send(r, 200,
                json_pack("{s:o, s:I, s:i, s:i, s:b}", "logs", out, "total", (json_int_t)total, "page", (int)page, "size", (int)size,
                          "has_more", skip + json_array_size(out) < total));
}

/* ---- /dashboard/news ---- */

void tg_api_dashboard_news(tg_api_req_t *r)
{
    json_t *sys = json_array(), *user = json_array();
    const char *dna = tg_rec_str(r->caller, "DNA", ".none.");
    char now[21];
    tg_rfc3339(time(NULL), now);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(r->store->db, r->store->ro, r->store->cf[TG_CF_NEWS]);
    for (rocksdb_iter_seek_to_last(it); rocksdb_iter_valid(it); rocksdb_iter_prev(it)) {
        size_t vlen;
        const char *v = rocksdb_iter_value(it, &vlen);
        json_t *e = json_loadb(v, vlen, 0, NULL);
        if (e == NULL)
            continue;
        const char *target = tg_rec_str(e, "target_dna", "");
        int expired = strcmp(tg_rec_str(e, "expires_at", "9999"), now) <= 0;
        json_t *item = json_pack("{s:I, s:s, s:s, s:s, s:s}", "id", (json_int_t)tg_rec_u64(e, "id", 0), "title",
                                 tg_rec_str(e, "title", ""), "content", tg_rec_str(e, "content", ""), "created_at",
                                 tg_rec_str(e, "created_at", ""), "expires_at", tg_rec_str(e, "expires_at", ""));
        if (!expired && *target == '\0' && json_array_size(sys) < 8)
            json_array_append(sys, item);
        else if (!expired && *target && strncmp(dna, target, strlen(target)) == 0 && json_array_size(user) < 8)
            json_array_append(user, item);
        json_decref(item);
        json_decref(e);
    }
    rocksdb_iter_destroy(it);
    tg_api_send(r, 200, json_pack("{s:b, s:o, s:o}", "success", 1, "system_news", sys, "user_news", user));
}

/* ---- /dashboard/conf, /dashboard/models ---- */

void tg_api_dashboard_conf(tg_api_req_t *r)
{
    uint64_t owner = tg_rec_u64(r->caller, "OwnerID", TG_ROOT_ID);
    json_t *conf = tg_store_json_get(r->store, TG_CF_CONFIG, owner);
    json_t *out = json_object();
    static const char *const shown[] = {"MODEL_MAPPER", "RESOURCES", "MODEL_LIMITS", "MODEL_FAILOVER", "ALLOW_UNPRICED"};
    for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
        json_t *v = json_object_get(conf, shown[i]);
        if (v)
            json_object_set(out, shown[i], v);
    }
    json_object_set_new(out, "USER_MIN_BALANCE", json_real(tg_api_owner_number(r, r->caller, "USER_MIN_BALANCE", 2.0)));
    json_object_set_new(out, "USER_API_BALANCE", json_real(tg_api_owner_number(r, r->caller, "USER_API_BALANCE", 20.0)));
    json_object_set_new(out, "TIMEZONE", json_string(getenv("TZ") ? getenv("TZ") : "UTC"));
    json_decref(conf);
    tg_api_send(r, 200, json_pack("{s:b, s:I, s:o}", "success", 1, "oid", (json_int_t)owner, "configs", out));
}

static int model_allowed(const char *allow, const char *model)
{
    if (allow == NULL || *allow == '\0')
        return 1;
    if (strcmp(allow, "-*") == 0)
        return 0;
    char *copy = strdup(allow);
    int ok = 0;
    for (char *save = NULL, *it = strtok_r(copy, ", \t", &save); it && !ok; it = strtok_r(NULL, ", \t", &save)) {
        /* glob */
        const char *s = model, *p = it, *star = NULL, *mark = NULL;
        while (*s) {
            if (*p == '*') {
                star = p++;
                mark = s;
            } else if (*p == *s) {
                p++;
                s++;
            } else if (star) {
                p = star + 1;
                s = ++mark;
            } else {
                break;
            }
        }
        if (*s == '\0') {
            while (*p == '*')
                p++;
            ok = *p == '\0';
        }
    }
    free(copy);
    return ok;
}

/* Models: the owner's PRICES and MODEL_MAPPER sources, the caller's explicit AllowModels items and
 * ModelLimits keys, and every model the caller has used; filtered by AllowModels. */
void tg_api_dashboard_models(tg_api_req_t *r)
{
    json_t *seen = json_object();
    uint64_t owner = tg_rec_u64(r->caller, "OwnerID", TG_ROOT_ID);
    json_t *conf = tg_store_json_get(r->store, TG_CF_CONFIG, owner);
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(conf, "PRICES"), k, v) json_object_set_new(seen, k, json_true());
    /* every model the built-in price table names exactly (patterns are not models) */
    size_t blen;
    const char *builtin = tg_policy_builtin_prices(&blen);
    uint32_t dct;
    char *perr = NULL;
    json_t *table = tg_prices_yaml_parse(builtin, blen, &dct, &perr);
    free(perr);
    json_object_foreach(table, k, v) if (!strchr(k, '*'))
        json_object_set_new(seen, k, json_true());
    json_decref(table);
    json_object_foreach(json_object_get(r->caller, "ModelLimits"), k, v) json_object_set_new(seen, k, json_true());
    const char *lists[] = {tg_rec_str(conf, "MODEL_MAPPER", ""), tg_rec_str(r->caller, "ModelMapper", ""),
                           tg_rec_str(r->caller, "AllowModels", "")};
    for (size_t l = 0; l < 3; l++) {
        char *copy = strdup(lists[l]);
        for (char *save = NULL, *it = strtok_r(copy, ", \t", &save); it; it = strtok_r(NULL, ", \t", &save)) {
            char *eq = strchr(it, '=');
            if (eq)
                *eq = '\0';
            if (*it && *it != '-' && !strchr(it, '*'))
                json_object_set_new(seen, it, json_true());
        }
        free(copy);
    }
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(r->store->db, r->store->ro, r->store->cf[TG_CF_ROLLUPS]);
    uint8_t prefix[8];
    tg_be64_put(prefix, r->caller_id);
    for (rocksdb_iter_seek(it, (const char *)prefix, 8); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen;
        const char *key = rocksdb_iter_key(it, &klen);
        if (klen <= 8 + TG_DAY_LEN || memcmp(key, prefix, 8) != 0)
            break;
        char model[80];
        size_t mlen = klen - 8 - TG_DAY_LEN < sizeof(model) - 1 ? klen - 8 - TG_DAY_LEN : sizeof(model) - 1;
        memcpy(model, key + 8 + TG_DAY_LEN, mlen);
        model[mlen] = '\0';
        json_object_set_new(seen, model, json_true());
    }
    rocksdb_iter_destroy(it);
    json_t *data = json_array();
    const char *allow = tg_rec_str(r->caller, "AllowModels", "");
    json_object_foreach(seen, k, v) if (model_allowed(allow, k))
        json_array_append_new(data, json_pack("{s:s, s:s, s:i, s:s}", "id", k, "object", "model", "created", 0, "owned_by", "tollgate"));
    json_decref(seen);
    json_decref(conf);
    tg_api_send(r, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

/* ---- /dashboard/requests ---- */

void tg_api_dashboard_requests(tg_api_req_t *r)
{
    char who[320];
    json_t *top = NULL;
    if (tg_api_query2(r, "u", "user", who, sizeof(who)) == 1 && *who) {
        if ((top = tg_manage_resolve(r, who, 1)) == NULL)
            return;
    } else {
        top = json_incref(r->caller);
    }
    json_t *subtree = tg_manage_subtree(r, top, 0, 1);
    tg_requests_reply(r, subtree);
    json_decref(subtree);
    json_decref(top);
}
