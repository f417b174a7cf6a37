/* tests/unit/test_acct_spend.c: the drain's account update on the stored text
 * (store/acct_spend.c) against the tree path it replaces (load the record, tg_rec_add_i64,
 * tg_cards_take, tg_ledger_append, store it): the same record and ledger entry, byte for byte,
 * over many random records (cards in every order, expired, tied, spent out, missing fields), and
 * the records it must leave to the tree path. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/acct_spend.h"
#include "store/ledger.h"
#include "store/record.h"
#include "store/store-i.h"

#include "store_fixture.h"

#define NOW_MS 1717200000123ull /* 2024-06-01T00:00:00.123Z */
#define DAY 86400

static int setup(void **state)
{
    return tg_test_store_setup(state, "acct_spend");
}

static int teardown(void **state)
{
    return tg_test_store_teardown(state);
}

/* The tree path on TEXT, committed; *REC and *ENTRY (malloc'd, NULL when none) read back. */
static void tree_path(fx_t *f, const char *text, uint64_t id, int64_t cost, uint64_t requests, char **rec_out,
                      char **entry_out)
{
    json_t *rec = json_loads(text, 0, NULL);
    assert_non_null(rec);
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    assert_int_equal(tg_rec_add_i64(rec, "CreditUsed", cost), 0);
    assert_int_equal(tg_rec_add_i64(rec, "Requests", (int64_t)requests), 0);
    uint64_t seq = 0;
    if (cost > 0) {
        json_t *breakdown = json_array();
        assert_int_equal(tg_cards_take(rec, cost, (time_t)(NOW_MS / 1000), breakdown), 0);
        uint64_t card = (uint64_t)json_integer_value(json_array_get(json_array_get(breakdown, 0), 0));
        json_decref(breakdown);
        char ref[48];
        snprintf(ref, sizeof(ref), "usage: %llu request(s)", (unsigned long long)requests);
        assert_int_equal(tg_ledger_append(b, f->s, rec, "spend", -cost, card, 0, ref, NOW_MS), 0);
        seq = tg_rec_u64(rec, "LedgerSeq", 0);
    }
    assert_int_equal(tg_store_json_put(b, f->s, TG_CF_ACCOUNTS, id, rec), 0);
    json_decref(rec);
    char *err = NULL;
    assert_int_equal(tg_store_commit(f->s, b, &err), 0);
    rocksdb_writebatch_destroy(b);
    uint8_t key[8];
    tg_be64_put(key, id);
    size_t len;
    char *v = tg_store_get(f->s, TG_CF_ACCOUNTS, key, 8, &len, &err);
    assert_null(err);
    *rec_out = strndup(v, len);
    rocksdb_free(v);
    *entry_out = NULL;
    if (seq) {
        uint8_t lkey[TG_LEDGER_KEY_LEN];
        tg_ledger_key(lkey, id, seq);
        v = tg_store_get(f->s, TG_CF_LEDGER, lkey, sizeof(lkey), &len, &err);
        assert_non_null(v);
        *entry_out = strndup(v, len);
        rocksdb_free(v);
    }
}

static json_t *random_card(uint64_t id)
{
    json_t *c = json_object();
    char ts[21];
    if (rand() % 8)
        json_object_set_new(c, "id", json_integer((json_int_t)(rand() % 4 ? id : 1 + (uint64_t)(rand() % 3))));
    json_object_set_new(c, "amount", json_integer(5000000000));
    if (rand() % 10)
        json_object_set_new(c, "balance", json_integer(rand() % 5 ? (json_int_t)(rand() % 3000) * 1000000 : 0));
    tg_rfc3339((time_t)(NOW_MS / 1000) - DAY, ts);
    json_object_set_new(c, "granted_at", json_string(ts));
    switch (rand() % 6) {
    case 0: break; /* no expiry: spent last */
    case 1: json_object_set_new(c, "expires_at", json_string("not a date")); break;
    case 2: /* already expired, or exactly now */
        tg_rfc3339((time_t)(NOW_MS / 1000) - (rand() % 2) * DAY, ts);
        json_object_set_new(c, "expires_at", json_string(ts));
        break;
    default: /* a few distinct days: ties between cards are common */
        tg_rfc3339((time_t)(NOW_MS / 1000) + (1 + rand() % 4) * DAY, ts);
        json_object_set_new(c, "expires_at", json_string(ts));
    }
    json_object_set_new(c, "reference", json_string(rand() % 2 ? "Top-up \"q\" \xc3\xa9" : ""));
    return c;
}

/* An account record as the stores hold them, with any of the money fields missing. */
static json_t *random_record(uint64_t id)
{
    json_t *r = json_object();
    json_object_set_new(r, "ID", json_integer((json_int_t)id));
    json_object_set_new(r, "Name", json_string("acct \"x\" \xe2\x82\xac \\ /"));
    json_object_set_new(r, "Rates", json_real(rand() % 2 ? 1.0 : 1.25));
    if (rand() % 5)
        json_object_set_new(r, "CreditUsed", json_integer(rand() % 100000));
    if (rand() % 5)
        json_object_set_new(r, "Requests", json_integer(rand() % 100));
    if (rand() % 6) {
        json_t *cards = json_array();
        int n = rand() % 15;
        for (int i = 0; i < n; i++)
            json_array_append_new(cards, random_card((uint64_t)i + 1));
        json_object_set_new(r, "CreditBalance", cards);
    }
    if (rand() % 3)
        json_object_set_new(r, "Overdraft", json_integer(rand() % 3 ? 0 : (json_int_t)(rand() % 1000)));
    if (rand() % 3)
        json_object_set_new(r, "LedgerSeq", json_integer(rand() % 50));
    json_object_set_new(r, "Limits", json_pack("{s:[i,i], s:{s:n}}", "a", 1, 2, "b", "c"));
    if (rand() % 2)
        json_object_set_new(r, "Status", json_true());
    return r;
}

static void test_same_as_tree_path(void **state)
{
    fx_t *f = *state;
    srand(12345);
    int fast = 0;
    for (int i = 0; i < 3000; i++) {
        uint64_t id = 10 + (uint64_t)i;
        json_t *r = random_record(id);
        char *text = json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(r);
        int64_t costs[] = {0, 1, 999, 1500000000, 40000000000};
        int64_t cost = costs[rand() % 5];
        uint64_t requests = (uint64_t)(rand() % 4);
        tg_acct_spend_t out;
        size_t len = strlen(text);
        char *exact = malloc(len); /* no terminator, as RocksDB hands values over: ASan sees overreads */
        memcpy(exact, text, len);
        int rc = tg_acct_spend_text(exact, len, id, cost, requests, NOW_MS, &out);
        free(exact);
        assert_int_equal(rc, 0);
        fast++;
        char *want_rec, *want_entry;
        tree_path(f, text, id, cost, requests, &want_rec, &want_entry);
        if (strcmp(out.rec, want_rec) != 0)
            fail_msg("record %d (cost %lld):\n in   %s\n text %s\n tree %s", i, (long long)cost, text, out.rec, want_rec);
        assert_int_equal(out.rec_len, strlen(want_rec));
        if (want_entry == NULL) {
            assert_null(out.entry);
        } else {
            assert_non_null(out.entry);
            assert_string_equal(out.entry, want_entry);
            assert_int_equal(out.entry_len, strlen(want_entry));
        }
        tg_acct_spend_free(&out);
        free(want_rec);
        free(want_entry);
        free(text);
    }
    assert_int_equal(fast, 3000);
}

/* Records the text path does not take: nothing is allocated and 1 sends them to the tree path. */
static void test_left_to_tree_path(void **state)
{
    (void)state;
    const char *cases[] = {
        "{\"ID\":7,\"CreditUsed\":1.5}",                           /* a money field that is not an integer */
        "{\"ID\":7,\"Overdraft\":\"3\"}",                          /* ... or not a number */
        "{\"ID\":7,\"LedgerSeq\":99999999999999999999}",           /* out of range */
        "{\"ID\":7,\"CreditUsed\":1,\"CreditUsed\":2}",            /* duplicate member */
        "{\"ID\":8,\"CreditUsed\":1}",                             /* another account's record */
        "{\"CreditUsed\":1}",                                      /* no ID */
        "{\"ID\":7,\"Credit\\u0055sed\":1}",                       /* an escaped name */
        "{\"ID\":7,\"CreditBalance\":{}}",                         /* cards that are not an array */
        "{\"ID\":7,\"CreditBalance\":[1]}",                        /* a card that is not an object */
        "{\"ID\":7,\"CreditBalance\":[{\"balance\":2.5}]}",        /* a card balance that is not an integer */
        "{\"ID\":7,\"CreditBalance\":[{\"balance\":1,\"balance\":2}]}",
        "{\"ID\":7,\"CreditBalance\":[{\"expires_at\":\"2030-01-01T00:00:00\\u005a\"}]}",
        "{\"ID\":7,\"CreditUsed\":1",                              /* malformed */
        "[7]",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tg_acct_spend_t out;
        if (tg_acct_spend_text(cases[i], strlen(cases[i]), 7, 100, 1, NOW_MS, &out) != 1)
            fail_msg("case %zu taken by the text path: %s", i, cases[i]);
        assert_null(out.rec);
        assert_null(out.entry);
    }
    /* more cards than the text path holds */
    json_t *r = json_pack("{s:I, s:[]}", "ID", (json_int_t)7, "CreditBalance");
    for (int i = 0; i <= TG_SPEND_CARDS_MAX; i++)
        json_array_append_new(json_object_get(r, "CreditBalance"), json_pack("{s:i, s:i}", "id", i + 1, "balance", 1));
    char *text = json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER);
    tg_acct_spend_t out;
    assert_int_equal(tg_acct_spend_text(text, strlen(text), 7, 100, 1, NOW_MS, &out), 1);
    free(text);
    json_decref(r);
}

/* A worked example: the card expiring first pays, then the next, then the overdraft. */
static void test_example(void **state)
{
    (void)state;
    const char *in = "{\"ID\":3,\"Name\":\"a\",\"CreditUsed\":5,\"Requests\":1,\"CreditBalance\":["
                     "{\"id\":1,\"balance\":100,\"expires_at\":\"2024-07-01T00:00:00Z\"},"
                     "{\"id\":2,\"balance\":30,\"expires_at\":\"2024-06-15T00:00:00Z\"},"
                     "{\"id\":3,\"balance\":50,\"expires_at\":\"2024-05-01T00:00:00Z\"}],\"LedgerSeq\":4}";
    tg_acct_spend_t out;
    assert_int_equal(tg_acct_spend_text(in, strlen(in), 3, 150, 2, NOW_MS, &out), 0);
    assert_string_equal(out.rec, "{\"ID\":3,\"Name\":\"a\",\"CreditUsed\":155,\"Requests\":3,\"CreditBalance\":["
                                 "{\"id\":1,\"balance\":0,\"expires_at\":\"2024-07-01T00:00:00Z\"},"
                                 "{\"id\":2,\"balance\":0,\"expires_at\":\"2024-06-15T00:00:00Z\"},"
                                 "{\"id\":3,\"balance\":50,\"expires_at\":\"2024-05-01T00:00:00Z\"}],\"LedgerSeq\":5,"
                                 "\"Overdraft\":20}");
    tg_acct_spend_free(&out);
}

/* Every truncation of a record is malformed text: left to the tree path, never read past. */
static void test_truncated(void **state)
{
    (void)state;
    const char *in = "{\"ID\":3,\"CreditUsed\":5,\"CreditBalance\":[{\"id\":1,\"balance\":100,"
                     "\"expires_at\":\"2099-07-01T00:00:00Z\"}],\"LedgerSeq\":4}";
    size_t n = strlen(in);
    for (size_t len = 0; len < n; len++) {
        char *p = malloc(len ? len : 1);
        memcpy(p, in, len);
        tg_acct_spend_t out;
        if (tg_acct_spend_text(p, len, 3, 10, 1, NOW_MS, &out) != 1)
            fail_msg("a record cut at %zu bytes was taken", len);
        free(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_same_as_tree_path, setup, teardown),
        cmocka_unit_test(test_left_to_tree_path),
        cmocka_unit_test(test_example),
        cmocka_unit_test(test_truncated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
