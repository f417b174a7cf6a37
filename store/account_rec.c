/* Account records (account_rec.h): building, finding by key, and mapping to arena settings. */
#include "store/account_rec.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/keyhash.h"
#include "common/log.h"
#include "shm/matcher.h"
#include "store/record.h"
#include "store/store-i.h"

/* Fields a child copies from its parent on creation (api-compat 1.6). */
static const char *const tg_acctrec_inherited[] = {"Level",    "Gear",        "Role",        "Tier",      "Factor",      "Rates",
                                                   "RPM",      "RPH",         "RPD",         "TPM",       "TPH",         "TPD",
                                                   "AllowIPs", "AllowModels", "AllowLevels", "Resources", "ModelMapper", "LevelMapper",
                                                   "ModelLimits", "ChildLimit"};
static const size_t tg_acctrec_n_inherited = sizeof(tg_acctrec_inherited) / sizeof(tg_acctrec_inherited[0]);

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

json_t *tg_acctrec_new_child(const tg_acctrec_init_t *init, const json_t *parent, time_t now)
{
    json_t *rec = tg_acctrec_new(init, now);
    if (rec == NULL)
        return NULL;
    for (size_t i = 0; i < tg_acctrec_n_inherited; i++) {
        json_t *pv = json_object_get(parent, tg_acctrec_inherited[i]);
        if (pv)
            json_object_set_new(rec, tg_acctrec_inherited[i], json_deep_copy(pv));
    }
    if (!json_object_get(rec, "ChildLimit"))
        json_object_set_new(rec, "ChildLimit", json_integer(TG_CHILD_LIMIT_UNLIMITED));
    json_object_set_new(rec, "Child", json_integer(0));
    json_object_set_new(rec, "CreditBalance", json_array());
    json_object_set_new(rec, "Overdraft", json_integer(0));
    json_object_set_new(rec, "LedgerSeq", json_integer(0));
    json_object_set_new(rec, "CardSeq", json_integer(0));
    json_object_set_new(rec, "CreditGranted", json_integer(0));
    return rec;
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

/* A non-negative integer field (limits); 0 = unlimited. */
static uint64_t limit_of(const json_t *rec, const char *name)
{
    int64_t v = tg_rec_i64(rec, name, 0);
    return v > 0 ? (uint64_t)v : 0;
}

/* A multiplier (Rates, Factor) in millionths; 0 (= 1.0) when absent or not positive. */
static uint64_t ppm_of(const json_t *rec, const char *name)
{
    const json_t *v = json_object_get(rec, name);
    double d = json_is_number(v) ? json_number_value(v) : 0;
    return d > 0 && d < 1e9 ? (uint64_t)llround(d * 1e6) : 0;
}

static const char *list_of(const json_t *rec, const char *name)
{
    const char *s = tg_rec_str(rec, name, "");
    return *s ? s : NULL;
}

/* The quota engine's fields (docs/quota.md): limits, monthly caps in nano-dollars, multipliers,
 * AllowLevels, and the lists compiled at publish (pointers into REC). */
static void acctrec_quota(const json_t *rec, tg_account_settings_t *out)
{
    out->up_slot = TG_SLOT_NONE;
    out->owner_slot = TG_SLOT_NONE;
    out->gear = (int32_t)tg_rec_i64(rec, "Gear", 0);
    uint64_t rpm = limit_of(rec, "RPM"), rph = limit_of(rec, "RPH"), rpd = limit_of(rec, "RPD");
    out->rpm = rpm > UINT32_MAX ? UINT32_MAX : (uint32_t)rpm;
    out->rph = rph > UINT32_MAX ? UINT32_MAX : (uint32_t)rph;
    out->rpd = rpd > UINT32_MAX ? UINT32_MAX : (uint32_t)rpd;
    out->tpm = limit_of(rec, "TPM");
    out->tph = limit_of(rec, "TPH");
    out->tpd = limit_of(rec, "TPD");
    int64_t hard = tg_rec_i64(rec, "HardLimit", 0), soft = tg_rec_i64(rec, "SoftLimit", 0);
    out->hard_limit = hard > 0 ? hard : 0;
    out->soft_limit = soft > 0 ? soft : 0;
    out->rates_ppm = ppm_of(rec, "Rates");
    out->factor_ppm = ppm_of(rec, "Factor");
    if (tg_levels_parse(list_of(rec, "AllowLevels"), &out->allow_levels) != 0)
        out->allow_levels = ~0ull; /* unreadable: no drift rather than any */
    out->src.allow_ips = list_of(rec, "AllowIPs");
    out->src.allow_models = list_of(rec, "AllowModels");
    out->src.resources = list_of(rec, "Resources");
    out->src.model_mapper = list_of(rec, "ModelMapper");
    out->src.level_mapper = list_of(rec, "LevelMapper");
    const json_t *ml = json_object_get(rec, "ModelLimits");
    out->src.model_limits = json_is_object(ml) && json_object_size(ml) ? ml : NULL;
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
    acctrec_quota(rec, out);
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
    return tg_rec_u64(rec, "ID", 0) == TG_ROOT_ID ? TG_BALANCE_UNLIMITED : tg_acctrec_cards(rec) - tg_rec_i64(rec, "Overdraft", 0);
}

/* "n:" / "e:" + lowercase VALUE. Returns the key length (truncated to fit). */
static size_t names_key(char out[TG_NAMES_KEY_MAX], char kind, const char *value)
{
    size_t n = 0;
    out[n++] = kind;
    out[n++] = ':';
    for (; *value && n < TG_NAMES_KEY_MAX; value++)
        out[n++] = (char)((*value >= 'A' && *value <= 'Z') ? *value - 'A' + 'a' : *value);
    return n;
}

void tg_acctrec_index_put(rocksdb_writebatch_t *batch, tg_store_t *s, const json_t *rec)
{
    uint8_t v[8];
    tg_be64_put(v, tg_rec_u64(rec, "ID", 0));
    char key[TG_NAMES_KEY_MAX];
    size_t n = names_key(key, 'n', tg_rec_str(rec, "Name", ""));
    rocksdb_writebatch_put_cf(batch, s->cf[TG_CF_NAMES], key, n, (const char *)v, 8);
    const char *email = tg_rec_str(rec, "Email", "");
    if (*email) {
        n = names_key(key, 'e', email);
        rocksdb_writebatch_put_cf(batch, s->cf[TG_CF_NAMES], key, n, (const char *)v, 8);
    }
    const char *dna = tg_rec_str(rec, "DNA", "");
    if (*dna)
        rocksdb_writebatch_put_cf(batch, s->cf[TG_CF_TREE], dna, strlen(dna), (const char *)v, 8);
}

void tg_acctrec_index_del(rocksdb_writebatch_t *batch, tg_store_t *s, const json_t *rec)
{
    char key[TG_NAMES_KEY_MAX];
    size_t n = names_key(key, 'n', tg_rec_str(rec, "Name", ""));
    rocksdb_writebatch_delete_cf(batch, s->cf[TG_CF_NAMES], key, n);
    const char *email = tg_rec_str(rec, "Email", "");
    if (*email) {
        n = names_key(key, 'e', email);
        rocksdb_writebatch_delete_cf(batch, s->cf[TG_CF_NAMES], key, n);
    }
    const char *dna = tg_rec_str(rec, "DNA", "");
    if (*dna)
        rocksdb_writebatch_delete_cf(batch, s->cf[TG_CF_TREE], dna, strlen(dna));
}

static uint64_t names_get(tg_store_t *s, char kind, const char *value)
{
    char key[TG_NAMES_KEY_MAX];
    size_t n = names_key(key, kind, value), vlen = 0;
    char *err = NULL;
    char *v = tg_store_get(s, TG_CF_NAMES, key, n, &vlen, &err);
    if (err) {
        tg_error("store: names index read: %s", err);
        rocksdb_free(err);
        return 0;
    }
    uint64_t id = v && vlen == 8 ? tg_be64_get((const uint8_t *)v) : 0;
    rocksdb_free(v);
    return id;
}

uint64_t tg_acctrec_find_name(tg_store_t *s, const char *name)
{
    return names_get(s, 'n', name);
}

uint64_t tg_acctrec_find_email(tg_store_t *s, const char *email)
{
    return names_get(s, 'e', email);
}

int tg_acctrec_each_in_subtree(tg_store_t *s, const char *prefix, int (*fn)(void *ud, uint64_t id, const char *dna), void *ud)
{
    size_t plen = strlen(prefix);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[TG_CF_TREE]);
    int rc = 0;
    char dna[512];
    for (rocksdb_iter_seek(it, prefix, plen); rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < plen || memcmp(k, prefix, plen) != 0)
            break;
        const char *v = rocksdb_iter_value(it, &vlen);
        if (vlen != 8 || klen >= sizeof(dna))
            continue;
        memcpy(dna, k, klen);
        dna[klen] = '\0';
        rc = fn(ud, tg_be64_get((const uint8_t *)v), dna);
    }
    rocksdb_iter_destroy(it);
    return rc;
}
