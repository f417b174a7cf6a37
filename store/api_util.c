/* Helpers shared by the management, dashboard and admin handlers (api.h): errors, bodies, query
 * strings, the caller's relation to other accounts, the public account view, and audit entries. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/http.h"
#include "common/log.h"
#include "common/keyhash.h"
#include "store/account_rec.h"
#include "store/api.h"
#include "store/ledger.h"
#include "store/record.h"
#include "store/store-i.h"

static const char *error_type(int status)
{
    switch (status) {
    case 400:
    case 405:
    case 413: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 409: return "conflict_error";
    case 429: return "rate_limit_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

void tg_api_error(tg_api_req_t *r, int status, const char *code, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tg_http_error(r->req, status, error_type(status), code, msg);
}

json_t *tg_api_body(tg_api_req_t *r)
{
    h2o_iovec_t body = r->req->entity;
    size_t n = body.base ? body.len : 0;
    const char *p = body.base;
    while (n && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
        p++;
        n--;
    }
    if (n == 0)
        return json_object();
    json_error_t jerr;
    json_t *j = json_loadb(p, n, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        tg_api_error(r, 400, "invalid_json", "the body is not valid JSON: %s (at character %d)", jerr.text, jerr.position);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        tg_api_error(r, 400, "invalid_json", "the body must be a JSON object");
        return NULL;
    }
    return j;
}

int tg_api_query(tg_api_req_t *r, const char *name, char *out, size_t cap)
{
    h2o_req_t *req = r->req;
    if (req->query_at == SIZE_MAX || req->query_at >= req->path.len)
        return 0;
    const char *q = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    size_t nlen = strlen(name);
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(pe - q));
        const char *ke = eq ? eq : pe;
        if ((size_t)(ke - q) == nlen && memcmp(q, name, nlen) == 0) {
            size_t o = 0;
            for (const char *v = eq ? eq + 1 : pe; v < pe; v++) {
                char c = *v;
                if (c == '+') {
                    c = ' ';
                } else if (c == '%' && pe - v >= 3 && tg_hex_digit(v[1]) >= 0 && tg_hex_digit(v[2]) >= 0) {
                    c = (char)(tg_hex_digit(v[1]) << 4 | tg_hex_digit(v[2]));
                    v += 2;
                }
                if (o + 1 >= cap)
                    return -1;
                out[o++] = c;
            }
            out[o] = '\0';
            return 1;
        }
        q = pe + 1;
    }
    return 0;
}

int tg_api_query2(tg_api_req_t *r, const char *a, const char *b, char *out, size_t cap)
{
    int rc = tg_api_query(r, a, out, cap);
    return rc != 0 ? rc : tg_api_query(r, b, out, cap);
}

const char *tg_api_client_ip(tg_api_req_t *r, char *buf, size_t cap)
{
    ssize_t i = h2o_find_header_by_str(&r->req->headers, H2O_STRLIT("x-forwarded-for"), -1);
    if (i < 0) {
        snprintf(buf, cap, "local");
        return buf;
    }
    h2o_iovec_t v = r->req->headers.entries[i].value;
    size_t n = v.len < cap - 1 ? v.len : cap - 1;
    memcpy(buf, v.base, n);
    buf[n] = '\0';
    return buf;
}

void tg_api_header(tg_api_req_t *r, const char *name, const char *value)
{
    h2o_req_t *req = r->req;
    h2o_iovec_t n = h2o_strdup(&req->pool, name, SIZE_MAX), v = h2o_strdup(&req->pool, value, SIZE_MAX);
    h2o_add_header_by_str(&req->pool, &req->res.headers, n.base, n.len, 0, NULL, v.base, v.len);
}

int tg_api_is_admin(const json_t *rec)
{
    uint64_t id = tg_rec_u64(rec, "ID", 0);
    return id == TG_ROOT_ID || tg_rec_u64(rec, "ParentID", 0) == TG_ROOT_ID;
}

int tg_api_in_subtree(const json_t *anc, const json_t *rec)
{
    const char *a = tg_rec_str(anc, "DNA", ""), *d = tg_rec_str(rec, "DNA", "");
    size_t n = strlen(a);
    return n > 0 && strncmp(a, d, n) == 0;
}

int tg_api_is_ancestor(const json_t *anc, const json_t *rec)
{
    return tg_api_in_subtree(anc, rec) && strlen(tg_rec_str(anc, "DNA", "")) < strlen(tg_rec_str(rec, "DNA", ""));
}

int64_t tg_api_inflight(tg_api_req_t *r, uint64_t id)
{
    if (r->arena == NULL || !r->store->slots_ready)
        return 0;
    int64_t slot = tg_slotmap_find(&r->store->acct_slots, id);
    if (slot < 0)
        return 0;
    tg_account_t *a = &r->arena->accounts[slot];
    return atomic_load(&a->spent) + atomic_load(&a->reserved);
}

int64_t tg_api_available(tg_api_req_t *r, const json_t *rec)
{
    uint64_t id = tg_rec_u64(rec, "ID", 0);
    if (id == TG_ROOT_ID)
        return TG_BALANCE_UNLIMITED;
    return tg_acct_balance(rec) - tg_api_inflight(r, id);
}

double tg_api_owner_number(tg_api_req_t *r, const json_t *rec, const char *key, double def)
{
    uint64_t owner = tg_rec_u64(rec, "OwnerID", TG_ROOT_ID);
    json_t *conf = tg_store_json_get(r->store, TG_CF_CONFIG, owner);
    json_t *v = json_object_get(conf, key);
    double out = def;
    if (json_is_number(v))
        out = json_number_value(v);
    else if (json_is_string(v)) {
        char *end;
        double d = strtod(json_string_value(v), &end);
        if (end != json_string_value(v) && *end == '\0')
            out = d;
    }
    json_decref(conf);
    return out;
}

int tg_api_require_manage(tg_api_req_t *r)
{
    if (tg_api_is_admin(r->caller))
        return 0;
    double min = tg_api_owner_number(r, r->caller, "USER_API_BALANCE", 20.0);
    int64_t have = tg_api_available(r, r->caller);
    if ((double)have / 1e9 > min)
        return 0;
    tg_api_error(r, 401, "insufficient_balance",
                 "management needs a balance above $%.2f (USER_API_BALANCE); this account has $%.2f", min,
                 tg_nanos_to_dollars(have));
    return -1;
}

int tg_api_require_admin(tg_api_req_t *r)
{
    if (tg_api_is_admin(r->caller))
        return 0;
    tg_api_error(r, 403, "not_owner", "only root and owners (root's direct children) may use the Admin API");
    return -1;
}

int64_t tg_api_shown_balance(const json_t *rec, int64_t inflight)
{
    /* root mints what it grants: its Overdraft is the money outstanding, not a debt; it shows its cards */
    if (tg_rec_u64(rec, "ID", 0) == TG_ROOT_ID)
        return tg_acctrec_cards(rec);
    return tg_acct_balance(rec) - inflight;
}

json_t *tg_api_money(int64_t nanos)
{
    return json_real(tg_nanos_to_dollars(nanos));
}

json_t *tg_api_cards_view(const json_t *rec)
{
    json_t *out = json_array();
    size_t i;
    json_t *card;
    json_array_foreach(json_object_get(rec, "CreditBalance"), i, card)
    {
        json_array_append_new(out, json_pack("{s:o, s:o, s:s, s:s, s:s}", "amount", tg_api_money(tg_rec_i64(card, "amount", 0)),
                                             "balance", tg_api_money(tg_rec_i64(card, "balance", 0)), "granted_at",
                                             tg_rec_str(card, "granted_at", ""), "expires_at", tg_rec_str(card, "expires_at", ""),
                                             "reference", tg_rec_str(card, "reference", "")));
    }
    return out;
}

/* Fields of the record shown as they are, in this order, with their defaults when absent. */
static const char *const g_money_fields[] = {"CreditGranted", "CreditUsed", "HardLimit", "SoftLimit", "AutoQuota"};
static const char *const g_hidden_fields[] = {"KeyHash", "LedgerSeq", "CardSeq", "Overdraft", "SpendBase", "CreditBalance"};

json_t *tg_api_account_view(const json_t *rec, int64_t inflight)
{
    json_t *out = json_object();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)rec, key, v)
    {
        int skip = 0;
        for (size_t i = 0; i < sizeof(g_hidden_fields) / sizeof(g_hidden_fields[0]); i++)
            skip |= strcmp(key, g_hidden_fields[i]) == 0;
        if (skip)
            continue;
        int money = 0;
        for (size_t i = 0; i < sizeof(g_money_fields) / sizeof(g_money_fields[0]); i++)
            money |= strcmp(key, g_money_fields[i]) == 0;
        if (money)
            json_object_set_new(out, key, tg_api_money(json_is_integer(v) ? (int64_t)json_integer_value(v) : 0));
        else
            json_object_set(out, key, v);
    }
    for (size_t i = 0; i < sizeof(g_money_fields) / sizeof(g_money_fields[0]); i++)
        if (!json_object_get(out, g_money_fields[i]))
            json_object_set_new(out, g_money_fields[i], json_real(0));
    json_object_set_new(out, "CreditBalance", tg_api_cards_view(rec));
    json_object_set_new(out, "Balance", tg_api_money(tg_api_shown_balance(rec, inflight)));
    json_object_set_new(out, "SecretKey", json_string("***"));
    return out;
}

void tg_api_audit(tg_api_req_t *r, rocksdb_writebatch_t *batch, const char *action, const json_t *target, json_t *details)
{
    tg_store_t *s = r->store;
    if (s->audit_seq == 0) {
        uint64_t v = 0;
        if (tg_store_meta_get(s, TG_META_AUDIT_SEQ, &v) < 0)
            v = 0;
        s->audit_seq = v;
    }
    uint64_t seq = ++s->audit_seq, now = tg_now_ms();
    char ip[64], ts[21];
    tg_api_client_ip(r, ip, sizeof(ip));
    tg_rfc3339((time_t)(now / 1000), ts);
    json_t *e = json_pack("{s:I, s:s, s:I, s:s, s:s, s:I, s:s, s:s, s:o, s:s, s:s}", "id", (json_int_t)seq, "action", action,
                          "operator_id", (json_int_t)r->caller_id, "operator_name", tg_rec_str(r->caller, "Name", ""),
                          "operator_dna", tg_rec_str(r->caller, "DNA", ""), "target_id",
                          (json_int_t)(target ? tg_rec_u64(target, "ID", 0) : 0), "target_name",
                          target ? tg_rec_str(target, "Name", "") : "", "target_dna", target ? tg_rec_str(target, "DNA", "") : "",
                          "details", details ? details : json_object(), "ip", ip, "created_at", ts);
    char *text = e ? json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(e);
    if (text == NULL) {
        tg_error("audit: entry for %s could not be encoded", action);
        return;
    }
    uint8_t key[TG_AUDIT_KEY_LEN];
    tg_audit_key(key, now, seq);
    rocksdb_writebatch_put_cf(batch, s->cf[TG_CF_AUDIT], (const char *)key, sizeof(key), text, strlen(text));
    tg_store_meta_put(batch, s, TG_META_AUDIT_SEQ, seq);
    free(text);
}
