/* Account records (account_rec.h): building, finding by key, and mapping to arena settings. */
#include "store/account_rec.h"

#include <stdio.h>
#include <string.h>

#include "common/keyhash.h"
#include "common/log.h"
#include "store/record.h"
#include "store/store-i.h"

json_t *tg_acctrec_new(const tg_acctrec_init_t *in, time_t now)
{
    uint8_t hash[32];
    char hash_hex[65], ts[21];
    tg_key_hash(in->key, in->key_len, hash);
    tg_hex(hash, 32, hash_hex);
    tg_rfc3339(now, ts);
    size_t partial = in->key_len < TG_PARTIAL_KEY_LEN ? in->key_len : TG_PARTIAL_KEY_LEN;
    /* json_pack steals the "o" references and fails as a whole; field order is the stored order. */
    return json_pack("{s:I, s:s, s:s, s:s, s:i, s:f, s:f, s:b, s:s, s:I, s:I, s:s, s:s%, s:I, s:I, s:s, s:s}", "ID",
                     (json_int_t)in->id, "Name", in->name, "Alias", in->name, "Email", in->email ? in->email : "", "Level",
                     in->level, "Rates", in->rates, "Factor", in->factor, "Status", 1, "DNA", in->dna, "ParentID",
                     (json_int_t)in->parent_id, "OwnerID", (json_int_t)in->owner_id, "KeyHash", hash_hex, "PartialKey",
                     in->key + in->key_len - partial, partial, "CreditUsed", (json_int_t)0, "Requests", (json_int_t)0, "CreatedAt",
                     ts, "UpdatedAt", ts);
}

void tg_acctrec_put_keyhash(rocksdb_writebatch_t *batch, tg_store_t *s, const uint8_t hash[32], uint64_t id)
{
    uint8_t v[8];
    tg_be64_put(v, id);
    rocksdb_writebatch_put_cf(batch, s->cf[TG_CF_KEYHASH], (const char *)hash, 32, (const char *)v, 8);
}

json_t *tg_acctrec_by_key(tg_store_t *s, const char *key, size_t len)
{
    uint8_t hash[32];
    tg_key_hash(key, len, hash);
    size_t vlen = 0;
    char *err = NULL;
    char *v = tg_store_get(s, TG_CF_KEYHASH, hash, 32, &vlen, &err);
    if (err) {
        tg_error("store: key index read: %s", err);
        rocksdb_free(err);
        return NULL;
    }
    if (v == NULL)
        return NULL;
    uint64_t id = vlen == 8 ? tg_be64_get((const uint8_t *)v) : 0;
    rocksdb_free(v);
    if (id == 0)
        return NULL;
    json_t *rec = tg_store_json_get(s, TG_CF_ACCOUNTS, id);
    /* The index may briefly point at a record whose key was rotated: trust only a matching hash. */
    char hex[65];
    tg_hex(hash, 32, hex);
    if (rec && strcmp(tg_rec_str(rec, "KeyHash", ""), hex) != 0) {
        json_decref(rec);
        return NULL;
    }
    return rec;
}

/* Ancestors above the account: ".1." → 0, ".1.42." → 1. */
static uint32_t dna_depth(const char *dna)
{
    uint32_t dots = 0;
    for (; *dna; dna++)
        dots += *dna == '.';
    return dots >= 2 ? dots - 2 : 0;
}

int tg_acctrec_settings(const json_t *rec, tg_account_settings_t *out)
{
    memset(out, 0, sizeof(*out));
    out->id = tg_rec_u64(rec, "ID", 0);
    const char *hash = tg_rec_str(rec, "KeyHash", "");
    if (out->id == 0 || tg_unhex(hash, strlen(hash), out->key_hash, 32) != 32)
        return -1;
    out->parent_id = tg_rec_u64(rec, "ParentID", 0);
    out->owner_id = tg_rec_u64(rec, "OwnerID", 0);
    out->level = (int32_t)tg_rec_i64(rec, "Level", 1);
    out->depth = dna_depth(tg_rec_str(rec, "DNA", ""));
    snprintf(out->name, sizeof(out->name), "%s", tg_rec_str(rec, "Name", ""));
    if (tg_rec_bool(rec, "Status", 1))
        out->flags |= TG_ACCT_ENABLED;
    if (tg_rec_bool(rec, "Suspended", 0))
        out->flags |= TG_ACCT_SUSPENDED;
    if (out->id == TG_ROOT_ID) {
        out->flags |= TG_ACCT_ROOT | TG_ACCT_OWNER | TG_ACCT_ENABLED;
        out->owner_id = TG_ROOT_ID;
        out->parent_id = 0;
    } else if (out->parent_id == TG_ROOT_ID) {
        out->flags |= TG_ACCT_OWNER; /* root's children own a key pool (api-compat 7.12) */
    }
    return 0;
}

int64_t tg_acctrec_cards(const json_t *rec)
{
    int64_t sum = 0;
    size_t i;
    json_t *card;
    json_array_foreach(json_object_get(rec, "CreditBalance"), i, card) sum += tg_rec_i64(card, "balance", 0);
    return sum;
}

int64_t tg_acctrec_arena_balance(const json_t *rec)
{
    return tg_rec_u64(rec, "ID", 0) == TG_ROOT_ID ? TG_BALANCE_UNLIMITED : tg_acctrec_cards(rec);
}
