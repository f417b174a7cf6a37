/* Schema migrations (docs/storage.md, "Schema version"). Each step upgrades the database by one
 * version in one synced WriteBatch that also records the new version, so a crash leaves either
 * the old or the new layout, never a mix; the step runs again on the next open.
 *
 * 1 → 2: the ledger. Every account's cards get ids (`CardSeq`), an `Overdraft` of 0 and one
 * `migrate` ledger entry holding its opening balance (so Σ ledger == balance from then on); the
 * names (unique Name/Email) and tree (DNA → id) indexes are built. The new column families
 * themselves were created at open.
 *
 * 2 → 3: roll-up rows are summed by a merge operator (rollup_merge.c). The stored rows keep their
 * encoding, so nothing is rewritten; the version only moves on, so that a tollgate without the
 * operator (schema 2) refuses the database instead of failing on its first merged row. */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "store/account_rec.h"
#include "store/ledger.h"
#include "store/record.h"
#include "store/store-i.h"

typedef struct mig {
    tg_store_t *s;
    rocksdb_writebatch_t *b;
    size_t accounts, failed;
    uint64_t now_ms;
} mig_t;

static int migrate_account_1_2(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    mig_t *m = ud;
    uint64_t id = klen == 8 ? tg_be64_get((const uint8_t *)key) : 0;
    json_t *rec = json_loadb(val, vlen, 0, NULL);
    if (!tg_rec_id_matches(rec, id)) {
        tg_error("migrate: account record %llu is unreadable; left as it is", (unsigned long long)id);
        m->failed++;
        json_decref(rec);
        return 0;
    }
    uint64_t card_id = 0;
    size_t i;
    json_t *card;
    json_array_foreach(json_object_get(rec, "CreditBalance"), i, card)
    {
        if (json_is_object(card))
            json_object_set_new(card, "id", json_integer((json_int_t)++card_id));
    }
    json_object_set_new(rec, "CardSeq", json_integer((json_int_t)card_id));
    if (!json_object_get(rec, "Overdraft"))
        json_object_set_new(rec, "Overdraft", json_integer(0));
    json_object_set_new(rec, "LedgerSeq", json_integer(0));
    json_object_set_new(rec, "SpendBase", json_integer((json_int_t)tg_rec_i64(rec, "CreditUsed", 0)));
    int64_t bal = tg_acct_balance(rec);
    int rc = 0;
    if (bal != 0)
        rc = tg_ledger_append(m->b, m->s, rec, "migrate", bal, 0, 0, "opening balance (schema 2)", m->now_ms);
    if (rc == 0)
        rc = tg_store_json_put(m->b, m->s, TG_CF_ACCOUNTS, id, rec);
    if (rc == 0) {
        tg_acctrec_index_put(m->b, m->s, rec);
        m->accounts++;
    } else {
        m->failed++;
    }
    json_decref(rec);
    return rc;
}

static int step_1_2(tg_store_t *s, char **err)
{
    mig_t m = {s, rocksdb_writebatch_create(), 0, 0, tg_now_ms()};
    int rc = tg_store_each(s, TG_CF_ACCOUNTS, migrate_account_1_2, &m);
    if (rc != 0) {
        rocksdb_writebatch_destroy(m.b);
        return tg_store_fail(err, "database %s: migrating schema 1 to 2 failed reading the accounts", s->db_path);
    }
    tg_store_meta_put(m.b, s, TG_META_SCHEMA_VERSION, 2);
    char *cerr = NULL;
    rc = tg_store_commit(s, m.b, &cerr);
    rocksdb_writebatch_destroy(m.b);
    if (rc != 0) {
        tg_store_fail(err, "database %s: migrating schema 1 to 2: %s", s->db_path, cerr ? cerr : "?");
        free(cerr);
        return -1;
    }
    tg_info("migrate: schema 1 -> 2: %zu account(s) given a ledger%s", m.accounts,
            m.failed ? "; some records were unreadable (see above)" : "");
    return 0;
}

static int step_2_3(tg_store_t *s, char **err)
{
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    tg_store_meta_put(b, s, TG_META_SCHEMA_VERSION, 3);
    char *cerr = NULL;
    int rc = tg_store_commit(s, b, &cerr);
    rocksdb_writebatch_destroy(b);
    if (rc != 0) {
        tg_store_fail(err, "database %s: migrating schema 2 to 3: %s", s->db_path, cerr ? cerr : "?");
        free(cerr);
        return -1;
    }
    tg_info("migrate: schema 2 -> 3: roll-up rows are now merged");
    return 0;
}

int tg_store_migrate(tg_store_t *s, uint64_t from, char **err)
{
    if (from == 1 && step_1_2(s, err) != 0)
        return -1;
    if (from <= 2 && step_2_3(s, err) != 0)
        return -1;
    return 0;
}
