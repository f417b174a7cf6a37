/* The drain's account update on the stored text (acct_spend.h). Mirrors tg_rec_add_i64,
 * tg_cards_take (first_to_spend's order) and tg_ledger_append in store/ledger.c. */
#include "store/acct_spend.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_scan.h"
#include "store/schema.h"

#define NUM_MAX 24 /* "-9223372036854775808" and a terminator */

typedef struct card {
    int64_t balance, balance0;
    uint64_t id;
    time_t expiry;
    tg_json_span_t bal_span; /* .p NULL: no balance member */
} card_t;

/* A top-level member: where its value is in the text, and its integer value. */
typedef struct field {
    const char *name;
    tg_json_span_t v; /* .p NULL: absent */
    int64_t n;
} field_t;

enum { F_ID, F_USED, F_REQUESTS, F_CARDS, F_OVERDRAFT, F_SEQ, F_COUNT };

typedef struct scan {
    field_t f[F_COUNT];
    card_t cards[TG_SPEND_CARDS_MAX];
    size_t n_cards, members;
} scan_t;

/* A JSON integer as jansson reads one; -1 for a fraction, an exponent or out of range. */
static int span_int(const tg_json_span_t *v, int64_t *out)
{
    if (v->type != TG_JSON_NUMBER || v->len == 0 || v->len >= NUM_MAX)
        return -1;
    size_t i = v->p[0] == '-';
    uint64_t x = 0, lim = i ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (i == v->len)
        return -1;
    for (; i < v->len; i++) {
        char ch = v->p[i];
        if (ch < '0' || ch > '9' || x > (lim - (uint64_t)(ch - '0')) / 10)
            return -1;
        x = x * 10 + (uint64_t)(ch - '0');
    }
    *out = v->p[0] == '-' ? (int64_t)(0 - x) : (int64_t)x;
    return 0;
}

static int key_is(const tg_json_span_t *k, const char *name)
{
    size_t n = strlen(name);
    return k->len == n && memcmp(k->p, name, n) == 0;
}

/* Members of one card: id, balance, expires_at (as the tree path reads them). */
static int card_member(void *ud, const tg_json_span_t *k, const tg_json_span_t *v)
{
    card_t *c = ud;
    if (memchr(k->p, '\\', k->len))
        return 1;
    if (key_is(k, "balance")) {
        if (c->bal_span.p || span_int(v, &c->balance) != 0)
            return 1;
        c->bal_span = *v;
    } else if (key_is(k, "id")) {
        int64_t id;
        if (span_int(v, &id) != 0)
            return 1;
        c->id = id < 0 ? 0 : (uint64_t)id;
    } else if (key_is(k, "expires_at")) {
        char buf[64];
        if (v->type != TG_JSON_STRING)
            return 0; /* not a string: read as "" (never expires) */
        if (v->len >= sizeof(buf) || memchr(v->p, '\\', v->len))
            return 1;
        memcpy(buf, v->p, v->len);
        buf[v->len] = '\0';
        time_t t;
        if (tg_rfc3339_parse(buf, &t) == 0)
            c->expiry = t;
    }
    return 0;
}

static int card_elem(void *ud, const tg_json_span_t *k, const tg_json_span_t *v)
{
    (void)k;
    scan_t *s = ud;
    if (v->type != TG_JSON_OBJECT || s->n_cards == TG_SPEND_CARDS_MAX)
        return 1;
    card_t *c = &s->cards[s->n_cards++];
    memset(c, 0, sizeof(*c));
    c->expiry = (time_t)INT64_MAX / 2; /* no valid expiry: never expires, spent last */
    int rc = tg_json_each(v->p, v->len, card_member, c);
    c->balance0 = c->balance;
    return rc != 0;
}

static int top_member(void *ud, const tg_json_span_t *k, const tg_json_span_t *v)
{
    scan_t *s = ud;
    s->members++;
    if (k == NULL || memchr(k->p, '\\', k->len)) /* an array, or an escaped name */
        return 1;
    for (int i = 0; i < F_COUNT; i++) {
        field_t *f = &s->f[i];
        if (!key_is(k, f->name))
            continue;
        if (f->v.p)
            return 1; /* a duplicate: the tree path keeps the last one */
        f->v = *v;
        if (i == F_CARDS)
            return v->type != TG_JSON_ARRAY || tg_json_each(v->p, v->len, card_elem, s) != 0;
        return span_int(v, &f->n) != 0;
    }
    return 0;
}

/* first_to_spend: the live card with balance that expires first (ties: lowest id), or -1. */
static long first_to_spend(const scan_t *s, time_t now)
{
    long best = -1;
    for (size_t i = 0; i < s->n_cards; i++) {
        const card_t *c = &s->cards[i];
        if (c->balance <= 0 || c->expiry <= now)
            continue;
        const card_t *b = best >= 0 ? &s->cards[best] : NULL;
        if (b == NULL || c->expiry < b->expiry || (c->expiry == b->expiry && c->id < b->id))
            best = (long)i;
    }
    return best;
}

int tg_acct_spend_entry(char *buf, size_t cap, uint64_t seq, int64_t amount, uint64_t card, uint64_t requests,
                        uint64_t ts_ms, int64_t balance)
{
    int n = snprintf(buf, cap,
                     "{\"seq\":%" PRId64 ",\"kind\":\"spend\",\"amount\":%" PRId64 ",\"card\":%" PRId64
                     ",\"counterparty\":0,\"reference\":\"usage: %" PRIu64 " request(s)\",\"ts\":%" PRId64
                     ",\"balance\":%" PRId64 "}",
                     (int64_t)seq, amount, (int64_t)card, requests, (int64_t)ts_ms, balance);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* One change of the text: the bytes [at, at+del) become TEXT. */
typedef struct edit {
    const char *at;
    size_t del;
    char text[NUM_MAX + 24];
    size_t len;
} edit_t;

static void edit_num(edit_t *e, const tg_json_span_t *v, int64_t n)
{
    e->at = v->p;
    e->del = v->len;
    e->len = (size_t)snprintf(e->text, sizeof(e->text), "%" PRId64, n);
}

static int by_position(const void *a, const void *b)
{
    const edit_t *x = a, *y = b;
    return x->at < y->at ? -1 : x->at > y->at;
}

int tg_acct_spend_text(const char *text, size_t len, uint64_t id, int64_t cost, uint64_t requests, uint64_t now_ms,
                       tg_acct_spend_t *out)
{
    memset(out, 0, sizeof(*out));
    scan_t s;
    memset(&s, 0, sizeof(s));
    const char *names[F_COUNT] = {"ID", "CreditUsed", "Requests", "CreditBalance", "Overdraft", "LedgerSeq"};
    for (int i = 0; i < F_COUNT; i++)
        s.f[i].name = names[i];
    if (tg_json_each(text, len, top_member, &s) != 0 || !s.f[F_ID].v.p || s.f[F_ID].n < 0 || (uint64_t)s.f[F_ID].n != id)
        return 1;
    if (s.f[F_CARDS].v.p == NULL)
        s.n_cards = 0;
    const char *end = text + len; /* the closing brace: appended members go before it */
    while (end > text && end[-1] != '}')
        end--;
    if (end == text)
        return 1;
    end--;

    edit_t edits[F_COUNT + TG_SPEND_CARDS_MAX];
    size_t n_edits = 0;
    char tail[256];
    size_t tail_len = 0;
    size_t members = s.members;
#define SET_FIELD(idx, value)                                                                                              \
    do {                                                                                                                   \
        field_t *f_ = &s.f[idx];                                                                                           \
        f_->n = (value);                                                                                                   \
        if (f_->v.p) {                                                                                                     \
            edit_num(&edits[n_edits++], &f_->v, f_->n);                                                                    \
        } else {                                                                                                           \
            tail_len += (size_t)snprintf(tail + tail_len, sizeof(tail) - tail_len, "%s\"%s\":%" PRId64,                    \
                                         members++ ? "," : "", f_->name, f_->n);                                           \
        }                                                                                                                  \
    } while (0)
    /* Appended members are written once at their final value, so each field is set exactly once
     * below, in the tree path's order (CreditUsed, Requests, CreditBalance, Overdraft, LedgerSeq). */
    SET_FIELD(F_USED, s.f[F_USED].n + cost);
    SET_FIELD(F_REQUESTS, s.f[F_REQUESTS].n + (int64_t)requests);
    if (cost > 0) {
        if (s.f[F_CARDS].v.p == NULL)
            tail_len += (size_t)snprintf(tail + tail_len, sizeof(tail) - tail_len, "%s\"CreditBalance\":[]", members++ ? "," : "");
        time_t now = (time_t)(now_ms / 1000);
        int64_t amount = cost;
        uint64_t first_card = 0;
        int touched = 0;
        while (amount > 0) {
            long i = first_to_spend(&s, now);
            if (i < 0)
                break;
            card_t *c = &s.cards[i];
            int64_t take = c->balance < amount ? c->balance : amount;
            c->balance -= take;
            if (!touched++)
                first_card = c->id;
            amount -= take;
        }
        if (amount > 0)
            SET_FIELD(F_OVERDRAFT, s.f[F_OVERDRAFT].n + amount);
        int64_t balance = -s.f[F_OVERDRAFT].n;
        for (size_t i = 0; i < s.n_cards; i++) {
            balance += s.cards[i].balance;
            if (s.cards[i].balance != s.cards[i].balance0)
                edit_num(&edits[n_edits++], &s.cards[i].bal_span, s.cards[i].balance);
        }
        uint64_t seq = (s.f[F_SEQ].n < 0 ? 0 : (uint64_t)s.f[F_SEQ].n) + 1;
        SET_FIELD(F_SEQ, (int64_t)seq);
        char entry[256];
        int n = tg_acct_spend_entry(entry, sizeof(entry), seq, -cost, first_card, requests, now_ms, balance);
        if (n < 0 || (out->entry = malloc((size_t)n + 1)) == NULL)
            return -1;
        memcpy(out->entry, entry, (size_t)n + 1);
        out->entry_len = (size_t)n;
        out->seq = seq;
    }
#undef SET_FIELD
    qsort(edits, n_edits, sizeof(edits[0]), by_position);
    size_t size = len + tail_len;
    for (size_t i = 0; i < n_edits; i++)
        size += edits[i].len - edits[i].del;
    char *rec = malloc(size + 1), *w = rec;
    if (rec == NULL) {
        tg_acct_spend_free(out);
        return -1;
    }
    const char *r = text;
    for (size_t i = 0; i < n_edits; i++) {
        memcpy(w, r, (size_t)(edits[i].at - r));
        w += edits[i].at - r;
        memcpy(w, edits[i].text, edits[i].len);
        w += edits[i].len;
        r = edits[i].at + edits[i].del;
    }
    memcpy(w, r, (size_t)(end - r));
    w += end - r;
    memcpy(w, tail, tail_len);
    w += tail_len;
    memcpy(w, end, (size_t)(text + len - end));
    w += text + len - end;
    *w = '\0';
    out->rec = rec;
    out->rec_len = (size_t)(w - rec);
    return 0;
}

void tg_acct_spend_free(tg_acct_spend_t *out)
{
    free(out->rec);
    free(out->entry);
    memset(out, 0, sizeof(*out));
}
