/* Ledger reconciliation (verify.h). Streams each column family once, in key order, into per-account
 * totals held in one array sorted by id (the accounts CF is in id order). */
#include "store/verify.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "shm/usage.h"
#include "store/expiry.h"
#include "store/ledger.h"
#include "store/record.h"
#include "store/store-i.h"

typedef struct acct_sum {
    uint64_t id;
    char name[64];
    int64_t balance, credit_used, spend_base;
    int64_t ledger, spend, rollup, usage;
} acct_sum_t;

typedef struct sums {
    acct_sum_t *a;
    size_t n, cap;
} sums_t;

static acct_sum_t *find(sums_t *s, uint64_t id)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->a[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n && s->a[lo].id == id ? &s->a[lo] : NULL;
}

static int load_account(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    sums_t *s = ud;
    json_t *rec = json_loadb(val, vlen, 0, NULL);
    if (rec == NULL || klen != 8)
        return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        acct_sum_t *a = realloc(s->a, cap * sizeof(*a));
        if (a == NULL) {
            json_decref(rec);
            return -1;
        }
        s->a = a;
        s->cap = cap;
    }
    acct_sum_t *e = &s->a[s->n++];
    memset(e, 0, sizeof(*e));
    e->id = tg_be64_get((const uint8_t *)key);
    snprintf(e->name, sizeof(e->name), "%s", tg_rec_str(rec, "Name", ""));
    e->balance = tg_acct_balance(rec);
    e->credit_used = tg_rec_i64(rec, "CreditUsed", 0);
    e->spend_base = tg_rec_i64(rec, "SpendBase", 0);
    json_decref(rec);
    return 0;
}

static int add_ledger(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    acct_sum_t *e = klen == TG_LEDGER_KEY_LEN ? find(ud, tg_be64_get((const uint8_t *)key)) : NULL;
    if (e == NULL)
        return 0;
    json_t *j = json_loadb(val, vlen, 0, NULL);
    int64_t amount = tg_rec_i64(j, "amount", 0);
    e->ledger += amount;
    if (strcmp(tg_rec_str(j, "kind", ""), "spend") == 0)
        e->spend -= amount;
    json_decref(j);
    return 0;
}

static int add_rollup(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    acct_sum_t *e = klen >= 8 ? find(ud, tg_be64_get((const uint8_t *)key)) : NULL;
    tg_rollup_t r;
    if (e && tg_rollup_decode((const uint8_t *)val, vlen, &r) == 0)
        e->rollup += r.cost_nanos;
    return 0;
}

static int add_usage(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    tg_usage_t u;
    if (tg_usage_decode((const uint8_t *)val, vlen, &u) != 0)
        return 0;
    acct_sum_t *e = find(ud, u.account_id);
    if (e)
        e->usage += u.cost_nanos;
    return 0;
}

long tg_verify(tg_store_t *s, int full, tg_verify_fn fn, void *ud, size_t *accounts)
{
    sums_t sums = {0};
    long issues = -1;
    *accounts = 0;
    if (tg_store_each(s, TG_CF_ACCOUNTS, load_account, &sums) != 0 || tg_store_each(s, TG_CF_LEDGER, add_ledger, &sums) != 0 ||
        tg_store_each(s, TG_CF_ROLLUPS, add_rollup, &sums) != 0 ||
        (full && tg_store_each(s, TG_CF_USAGE, add_usage, &sums) != 0))
        goto done;
    uint64_t pruned = 0;
    int was_pruned = tg_store_meta_get(s, TG_META_USAGE_PRUNED_BEFORE, &pruned) == 1;
    issues = 0;
    for (size_t i = 0; i < sums.n; i++) {
        acct_sum_t *e = &sums.a[i];
        if (e->ledger != e->balance) {
            issues++;
            fn(ud, e->id, e->name, "ledger sum vs cards - overdraft", e->balance, e->ledger);
        }
        if (e->spend != e->credit_used - e->spend_base) {
            issues++;
            fn(ud, e->id, e->name, "spend entries vs CreditUsed", e->credit_used - e->spend_base, e->spend);
        }
        if (e->rollup != e->credit_used) {
            issues++;
            fn(ud, e->id, e->name, "roll-up cost vs CreditUsed", e->credit_used, e->rollup);
        }
        if (full && (was_pruned ? e->usage > e->rollup : e->usage != e->rollup)) {
            issues++;
            fn(ud, e->id, e->name, "usage rows vs roll-ups", e->rollup, e->usage);
        }
    }
    *accounts = sums.n;
done:
    free(sums.a);
    return issues;
}
