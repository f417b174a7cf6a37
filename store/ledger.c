/* Cards, transfers and ledger entries (see the design note in ledger.h). */
#include "store/ledger.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "store/account_rec.h"
#include "store/record.h"
#include "store/store-i.h"

#define DAY_SECS 86400
#define CONSOLIDATE_SPAN_SECS (60 * DAY_SECS)

static time_t card_expiry(const json_t *card)
{
    time_t t = 0;
    const char *s = tg_rec_str(card, "expires_at", "");
    if (*s == '\0' || tg_rfc3339_parse(s, &t) != 0)
        return (time_t)INT64_MAX / 2; /* no valid expiry: never expires, spent last */
    return t;
}

static json_t *cards_of(json_t *rec)
{
    json_t *cards = json_object_get(rec, "CreditBalance");
    if (!json_is_array(cards)) {
        cards = json_array();
        json_object_set_new(rec, "CreditBalance", cards);
    }
    return cards;
}

static int set_i64(json_t *obj, const char *name, int64_t v)
{
    return json_object_set_new(obj, name, json_integer((json_int_t)v));
}

int64_t tg_acct_balance(const json_t *rec)
{
    return tg_acctrec_cards(rec) - tg_rec_i64(rec, "Overdraft", 0);
}

int64_t tg_cards_live(const json_t *rec, time_t now)
{
    int64_t sum = 0;
    size_t i;
    json_t *card;
    json_array_foreach(json_object_get(rec, "CreditBalance"), i, card) if (card_expiry(card) > now) sum +=
        tg_rec_i64(card, "balance", 0);
    return sum;
}

time_t tg_cards_next_expiry(const json_t *rec)
{
    time_t best = 0;
    size_t i;
    json_t *card;
    json_array_foreach(json_object_get(rec, "CreditBalance"), i, card)
    {
        time_t t = card_expiry(card);
        if (tg_rec_i64(card, "balance", 0) > 0 && t < (time_t)INT64_MAX / 2 && (best == 0 || t < best))
            best = t;
    }
    return best;
}

/* Index of the live card with balance that expires first (ties: lowest id), or -1. */
static ssize_t first_to_spend(json_t *cards, time_t now)
{
    ssize_t best = -1;
    time_t best_t = 0;
    uint64_t best_id = 0;
    size_t i;
    json_t *card;
    json_array_foreach(cards, i, card)
    {
        if (tg_rec_i64(card, "balance", 0) <= 0)
            continue;
        time_t t = card_expiry(card);
        if (t <= now)
            continue;
        uint64_t id = tg_rec_u64(card, "id", 0);
        if (best < 0 || t < best_t || (t == best_t && id < best_id)) {
            best = (ssize_t)i;
            best_t = t;
            best_id = id;
        }
    }
    return best;
}

static void breakdown_add(json_t *breakdown, uint64_t card, int64_t amount)
{
    if (breakdown)
        json_array_append_new(breakdown, json_pack("[I,I]", (json_int_t)card, (json_int_t)amount));
}

int tg_cards_take(json_t *rec, int64_t amount, time_t now, json_t *breakdown)
{
    json_t *cards = cards_of(rec);
    while (amount > 0) {
        ssize_t i = first_to_spend(cards, now);
        if (i < 0)
            break;
        json_t *card = json_array_get(cards, (size_t)i);
        int64_t bal = tg_rec_i64(card, "balance", 0), take = bal < amount ? bal : amount;
        if (set_i64(card, "balance", bal - take) != 0)
            return -1;
        breakdown_add(breakdown, tg_rec_u64(card, "id", 0), take);
        amount -= take;
    }
    if (amount > 0) {
        if (set_i64(rec, "Overdraft", tg_rec_i64(rec, "Overdraft", 0) + amount) != 0)
            return -1;
        breakdown_add(breakdown, 0, amount);
    }
    return 0;
}

int64_t tg_cards_grant(json_t *rec, int64_t amount, time_t now, int64_t valid_secs, const char *reference)
{
    json_t *cards = cards_of(rec);
    uint64_t id = tg_rec_u64(rec, "CardSeq", 0) + 1;
    int64_t over = tg_rec_i64(rec, "Overdraft", 0), pay = over > 0 ? (over < amount ? over : amount) : 0;
    char granted[21], expires[21];
    tg_rfc3339(now, granted);
    tg_rfc3339(now + (time_t)valid_secs, expires);
    json_t *card = json_pack("{s:I, s:I, s:I, s:s, s:s, s:s}", "id", (json_int_t)id, "amount", (json_int_t)amount, "balance",
                             (json_int_t)(amount - pay), "granted_at", granted, "expires_at", expires, "reference",
                             reference ? reference : "");
    if (card == NULL || json_array_append_new(cards, card) != 0 || set_i64(rec, "CardSeq", (int64_t)id) != 0 ||
        (pay > 0 && set_i64(rec, "Overdraft", over - pay) != 0))
        return -1;
    return (int64_t)id;
}

int64_t tg_cards_expire(json_t *rec, time_t now, json_t *expired)
{
    json_t *cards = cards_of(rec);
    int64_t total = 0;
    for (size_t i = 0; i < json_array_size(cards);) {
        json_t *card = json_array_get(cards, i);
        if (card_expiry(card) > now) {
            i++;
            continue;
        }
        int64_t bal = tg_rec_i64(card, "balance", 0);
        if (bal > 0) {
            total += bal;
            breakdown_add(expired, tg_rec_u64(card, "id", 0), bal);
        }
        json_array_remove(cards, i);
    }
    return total;
}

/* Sorts CARDS by expiry (then id), in place (insertion sort: a dozen cards). */
static void sort_by_expiry(json_t *cards)
{
    size_t n = json_array_size(cards);
    for (size_t i = 1; i < n; i++) {
        json_t *c = json_incref(json_array_get(cards, i));
        time_t t = card_expiry(c);
        uint64_t id = tg_rec_u64(c, "id", 0);
        size_t j = i;
        while (j > 0) {
            json_t *p = json_array_get(cards, j - 1);
            time_t pt = card_expiry(p);
            if (pt < t || (pt == t && tg_rec_u64(p, "id", 0) <= id))
                break;
            json_array_set(cards, j, p);
            j--;
        }
        json_array_set_new(cards, j, c);
    }
}

/* Merges card J into card I (I < J in expiry order): sums, earliest grant, latest expiry, lowest id. */
static void merge_cards(json_t *cards, size_t i, size_t j)
{
    json_t *a = json_array_get(cards, i), *b = json_array_get(cards, j);
    set_i64(a, "amount", tg_rec_i64(a, "amount", 0) + tg_rec_i64(b, "amount", 0));
    set_i64(a, "balance", tg_rec_i64(a, "balance", 0) + tg_rec_i64(b, "balance", 0));
    if (strcmp(tg_rec_str(b, "granted_at", ""), tg_rec_str(a, "granted_at", "")) < 0)
        json_object_set(a, "granted_at", json_object_get(b, "granted_at"));
    if (card_expiry(b) > card_expiry(a))
        json_object_set(a, "expires_at", json_object_get(b, "expires_at"));
    if (tg_rec_u64(b, "id", 0) < tg_rec_u64(a, "id", 0))
        json_object_set(a, "id", json_object_get(b, "id"));
    json_object_set_new(a, "reference", json_string("Consolidated"));
    json_array_remove(cards, j);
}

int tg_cards_consolidate(json_t *rec, size_t max)
{
    json_t *cards = cards_of(rec);
    size_t before = json_array_size(cards);
    if (before <= max)
        return 0;
    /* Spent-out cards go first: they hold nothing. */
    for (size_t i = 0; i < json_array_size(cards) && json_array_size(cards) > max;) {
        if (tg_rec_i64(json_array_get(cards, i), "balance", 0) <= 0)
            json_array_remove(cards, i);
        else
            i++;
    }
    sort_by_expiry(cards);
    /* Cards expiring on the same (UTC) day. */
    for (size_t i = 0; i + 1 < json_array_size(cards) && json_array_size(cards) > max;) {
        if (card_expiry(json_array_get(cards, i)) / DAY_SECS == card_expiry(json_array_get(cards, i + 1)) / DAY_SECS)
            merge_cards(cards, i, i + 1);
        else
            i++;
    }
    /* Cards within 60 days of the first card of their group. */
    for (size_t i = 0; i + 1 < json_array_size(cards) && json_array_size(cards) > max;) {
        json_t *a = json_array_get(cards, i);
        time_t first = card_expiry(a);
        if (card_expiry(json_array_get(cards, i + 1)) - first <= CONSOLIDATE_SPAN_SECS)
            merge_cards(cards, i, i + 1);
        else
            i++;
    }
    /* Still too many: merge the two neighbours closest in expiry until it fits. */
    while (json_array_size(cards) > max) {
        size_t best = 0;
        time_t gap = 0;
        for (size_t i = 0; i + 1 < json_array_size(cards); i++) {
            time_t g = card_expiry(json_array_get(cards, i + 1)) - card_expiry(json_array_get(cards, i));
            if (i == 0 || g < gap) {
                gap = g;
                best = i;
            }
        }
        merge_cards(cards, best, best + 1);
    }
    return (int)(before - json_array_size(cards));
}

static int64_t scale(int64_t v, double num, double den)
{
    return (int64_t)llroundl((long double)v * (long double)num / (long double)den);
}

int64_t tg_cards_rescale(json_t *rec, double num, double den)
{
    int64_t before = tg_acct_balance(rec);
    size_t i;
    json_t *card;
    json_array_foreach(cards_of(rec), i, card)
    {
        set_i64(card, "amount", scale(tg_rec_i64(card, "amount", 0), num, den));
        set_i64(card, "balance", scale(tg_rec_i64(card, "balance", 0), num, den));
    }
    int64_t over = tg_rec_i64(rec, "Overdraft", 0);
    if (over)
        set_i64(rec, "Overdraft", scale(over, num, den));
    return tg_acct_balance(rec) - before;
}

int64_t tg_money_convert(int64_t amount, double from_rates, double to_rates)
{
    if (!(from_rates > 0) || !(to_rates > 0))
        return amount;
    return scale(amount, to_rates, from_rates);
}

int tg_ledger_append(rocksdb_writebatch_t *b, tg_store_t *s, json_t *rec, const char *kind, int64_t amount, uint64_t card,
                     uint64_t counterparty, const char *reference, uint64_t ts_ms)
{
    uint64_t id = tg_rec_u64(rec, "ID", 0), seq = tg_rec_u64(rec, "LedgerSeq", 0) + 1;
    json_t *e = json_pack("{s:I, s:s, s:I, s:I, s:I, s:s, s:I, s:I}", "seq", (json_int_t)seq, "kind", kind, "amount",
                          (json_int_t)amount, "card", (json_int_t)card, "counterparty", (json_int_t)counterparty, "reference",
                          reference ? reference : "", "ts", (json_int_t)ts_ms, "balance", (json_int_t)tg_acct_balance(rec));
    char *text = e ? json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(e);
    if (text == NULL || set_i64(rec, "LedgerSeq", (int64_t)seq) != 0) {
        free(text);
        return -1;
    }
    uint8_t key[TG_LEDGER_KEY_LEN];
    tg_ledger_key(key, id, seq);
    rocksdb_writebatch_put_cf(b, s->cf[TG_CF_LEDGER], (const char *)key, sizeof(key), text, strlen(text));
    free(text);
    return 0;
}

static double rates_of(const json_t *rec)
{
    json_t *v = json_object_get(rec, "Rates");
    double r = json_is_number(v) ? json_number_value(v) : 1.0;
    return r > 0 ? r : 1.0;
}

static uint64_t id_of(const json_t *rec)
{
    return tg_rec_u64(rec, "ID", 0);
}

int tg_ledger_fund(rocksdb_writebatch_t *b, tg_store_t *s, json_t *payer, json_t *child, int64_t amount, double days,
                   const char *reference, time_t now, int64_t *cost)
{
    uint64_t ts = (uint64_t)now * 1000u;
    int is_root = id_of(payer) == TG_ROOT_ID;
    int64_t pay = is_root ? amount : tg_money_convert(amount, rates_of(child), rates_of(payer));
    *cost = pay;
    if (tg_cards_take(payer, pay, now, NULL) != 0 ||
        tg_ledger_append(b, s, payer, is_root ? "mint" : "transfer", -pay, 0, id_of(child), reference, ts) != 0)
        return -1;
    int64_t card = tg_cards_grant(child, amount, now, (int64_t)llround(days * DAY_SECS), reference);
    if (card < 0 || tg_ledger_append(b, s, child, "top-up", amount, (uint64_t)card, id_of(payer), reference, ts) != 0)
        return -1;
    json_object_set_new(child, "CreditGranted", json_integer((json_int_t)amount));
    tg_cards_consolidate(child, TG_CARDS_MAX);
    return 0;
}

/* RECEIVER gets a refund card of VALUE, then pays the fee (from that card when FROM_CARD). */
static int refund_with_fee(rocksdb_writebatch_t *b, tg_store_t *s, json_t *receiver, uint64_t from, int64_t value, time_t now,
                           const char *why, int fee_from_card)
{
    uint64_t ts = (uint64_t)now * 1000u;
    if (!fee_from_card) { /* claw-back: the fee comes from the cards the receiver already has (api-compat 1.3) */
        if (tg_cards_take(receiver, TG_FEE_NANOS, now, NULL) != 0 ||
            tg_ledger_append(b, s, receiver, "fee", -TG_FEE_NANOS, 0, from, why, ts) != 0)
            return -1;
    }
    int64_t card = tg_cards_grant(receiver, value, now, (int64_t)TG_REFUND_DAYS * DAY_SECS, why);
    if (card < 0 || tg_ledger_append(b, s, receiver, "refund", value, (uint64_t)card, from, why, ts) != 0)
        return -1;
    if (!fee_from_card) {
        tg_cards_consolidate(receiver, TG_CARDS_MAX);
        return 0;
    }
    {
        json_t *cards = cards_of(receiver), *c = json_array_get(cards, json_array_size(cards) - 1);
        int64_t bal = tg_rec_i64(c, "balance", 0), take = bal < TG_FEE_NANOS ? bal : TG_FEE_NANOS;
        set_i64(c, "balance", bal - take);
        if (take < TG_FEE_NANOS && tg_cards_take(receiver, TG_FEE_NANOS - take, now, NULL) != 0)
            return -1;
    }
    if (tg_ledger_append(b, s, receiver, "fee", -TG_FEE_NANOS, (uint64_t)card, from, why, ts) != 0)
        return -1;
    tg_cards_consolidate(receiver, TG_CARDS_MAX);
    return 0;
}

int tg_ledger_clawback(rocksdb_writebatch_t *b, tg_store_t *s, json_t *receiver, json_t *child, int64_t amount, time_t now,
                       int64_t *credited)
{
    uint64_t ts = (uint64_t)now * 1000u;
    if (tg_cards_take(child, amount, now, NULL) != 0 ||
        tg_ledger_append(b, s, child, "transfer", -amount, 0, id_of(receiver), "claw-back", ts) != 0)
        return -1;
    json_object_set_new(child, "CreditGranted", json_integer(-(json_int_t)amount));
    int64_t value = tg_money_convert(amount, rates_of(child), rates_of(receiver));
    *credited = value;
    return refund_with_fee(b, s, receiver, id_of(child), value, now, "claw-back", 0);
}

int tg_ledger_refund_delete(rocksdb_writebatch_t *b, tg_store_t *s, json_t *receiver, json_t *child, time_t now,
                            int64_t *credited)
{
    uint64_t ts = (uint64_t)now * 1000u;
    *credited = 0;
    int64_t bal = tg_cards_live(child, now) - tg_rec_i64(child, "Overdraft", 0);
    if (bal <= 0)
        return 0;
    if (tg_cards_take(child, bal, now, NULL) != 0 ||
        tg_ledger_append(b, s, child, "transfer", -bal, 0, id_of(receiver), "delete", ts) != 0)
        return -1;
    int64_t value = tg_money_convert(bal, rates_of(child), rates_of(receiver));
    if (value <= TG_FEE_NANOS)
        return 0; /* nothing worth refunding: the remainder is the fee */
    *credited = value - TG_FEE_NANOS;
    return refund_with_fee(b, s, receiver, id_of(child), value, now, "delete refund", 1);
}

int tg_ledger_rescale(rocksdb_writebatch_t *b, tg_store_t *s, json_t *rec, double old_rates, double new_rates, time_t now)
{
    int64_t delta = tg_cards_rescale(rec, new_rates, old_rates);
    if (delta == 0)
        return 0;
    return tg_ledger_append(b, s, rec, "rescale", delta, 0, 0, "Rates change", (uint64_t)now * 1000u);
}

int64_t tg_ledger_expire(rocksdb_writebatch_t *b, tg_store_t *s, json_t *rec, time_t now, int *changed)
{
    *changed = 0;
    json_t *expired = json_array();
    size_t n_before = json_array_size(json_object_get(rec, "CreditBalance"));
    int64_t total = tg_cards_expire(rec, now, expired);
    size_t i;
    json_t *pair;
    json_array_foreach(expired, i, pair)
    {
        int64_t amount = (int64_t)json_integer_value(json_array_get(pair, 1));
        uint64_t card = (uint64_t)json_integer_value(json_array_get(pair, 0));
        tg_ledger_append(b, s, rec, "expiry", -amount, card, 0, "card expired", (uint64_t)now * 1000u);
    }
    json_decref(expired);
    if (json_array_size(json_object_get(rec, "CreditBalance")) != n_before)
        *changed = 1;
    if (tg_cards_consolidate(rec, TG_CARDS_MAX) > 0)
        *changed = 1;
    return -total;
}

typedef struct sum_ud {
    int64_t sum;
} sum_ud_t;

int tg_ledger_sum(tg_store_t *s, uint64_t id, int64_t *sum)
{
    uint8_t prefix[8], upper[8];
    tg_be64_put(prefix, id);
    tg_be64_put(upper, id + 1);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)upper, 8);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, ro, s->cf[TG_CF_LEDGER]);
    int64_t total = 0;
    for (rocksdb_iter_seek(it, (const char *)prefix, 8); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t vlen;
        const char *v = rocksdb_iter_value(it, &vlen);
        json_t *e = json_loadb(v, vlen, 0, NULL);
        total += tg_rec_i64(e, "amount", 0);
        json_decref(e);
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    if (err) {
        tg_error("ledger: reading account %llu: %s", (unsigned long long)id, err);
        rocksdb_free(err);
        return -1;
    }
    *sum = total;
    return 0;
}
