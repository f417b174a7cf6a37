/* Bulk import of accounts into a stopped store (import.h): check every line, then write. */
#include "store/import.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/keyhash.h"
#include "store/account_rec.h"
#include "store/acct_fields.h"
#include "store/api_manage-i.h"
#include "store/ledger.h"
#include "store/record.h"
#include "store/schema.h"
#include "store/store-i.h"

#define IMPORT_CHUNK 10000u     /* accounts per WriteBatch */
#define IMPORT_SHOWN_ERRORS 50  /* line errors printed; the rest are counted */
#define LIMIT_MAX 2000000000LL

static const char *const g_limit_fields[] = {"RPM", "RPH", "RPD", "TPM", "TPH", "TPD"};
static const char *const g_known[] = {"Name", "Email", "Parent", "CreditGranted", "RPM", "RPH", "RPD",
                                      "TPM",  "TPH",   "TPD",    "Key",           "KeyHash"};

typedef struct imp {
    tg_store_t *s;
    FILE *errs;
    long line, errors;
    time_t now;
    uint64_t first_id;      /* id of the first new account */
    json_t **recs;          /* new records, in file order (id = first_id + index) */
    char **keys;            /* generated key per record, or NULL */
    size_t n, cap;
    json_t *names, *emails, *hashes; /* lowercase Name / Email and KeyHash hex seen in FILE -> index */
    json_t *loaded;         /* existing accounts touched (parents), by id text */
    rocksdb_writebatch_t **batches; /* batch k: the ledger entries and records of recs[k*CHUNK...] */
    size_t n_batches;
    size_t n_generated;
} imp_t;

static void line_error(imp_t *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line_error(imp_t *m, const char *fmt, ...)
{
    if (m->errors++ >= IMPORT_SHOWN_ERRORS)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(m->errs, "line %ld: ", m->line);
    vfprintf(m->errs, fmt, ap);
    fputc('\n', m->errs);
    va_end(ap);
}

static void lower(const char *in, char *out, size_t cap)
{
    size_t i = 0;
    for (; in[i] && i + 1 < cap; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[i] = '\0';
}

/* The record of PARENT (an id or a name): a new account of an earlier line, or an existing one
 * (loaded once and kept, its changes are written at the end). Borrowed; NULL after an error. */
static json_t *parent_of(imp_t *m, const json_t *parent)
{
    uint64_t id = TG_ROOT_ID;
    if (json_is_string(parent)) {
        char low[TG_NAMES_KEY_MAX];
        lower(json_string_value(parent), low, sizeof(low));
        json_t *idx = json_object_get(m->names, low);
        if (idx)
            return m->recs[json_integer_value(idx)];
        id = tg_acctrec_find_name(m->s, json_string_value(parent));
        if (id == 0) {
            line_error(m, "Parent: no account is named \"%.100s\" (in the store or on an earlier line)", json_string_value(parent));
            return NULL;
        }
    } else if (json_is_integer(parent) && json_integer_value(parent) > 0) {
        id = (uint64_t)json_integer_value(parent);
        if (id >= m->first_id && id < m->first_id + m->n)
            return m->recs[id - m->first_id];
    } else if (parent) {
        line_error(m, "Parent: must be an account id or a Name");
        return NULL;
    }
    char key[24];
    snprintf(key, sizeof(key), "%llu", (unsigned long long)id);
    json_t *rec = json_object_get(m->loaded, key);
    if (rec)
        return rec;
    rec = tg_store_json_get(m->s, TG_CF_ACCOUNTS, id);
    if (rec == NULL) {
        line_error(m, "Parent: account %llu does not exist", (unsigned long long)id);
        return NULL;
    }
    json_object_set_new(m->loaded, key, rec);
    return rec;
}

/* The key digest of line OBJ into HASH (*GENERATED set for a new key, written to KEY). 0, or -1. */
static int key_of(imp_t *m, const json_t *obj, uint8_t hash[32], char key[TG_KEY_LEN + 1], int *generated)
{
    const json_t *k = json_object_get(obj, "Key"), *kh = json_object_get(obj, "KeyHash");
    *generated = 0;
    if (k && kh) {
        line_error(m, "give Key or KeyHash, not both");
        return -1;
    }
    if (k) {
        const char *v = json_string_value(k);
        if (!v || !tg_key_is_valid(v, strlen(v))) {
            line_error(m, "Key: must be an API key of the form %s followed by 45 letters and digits", TG_KEY_PREFIX);
            return -1;
        }
        tg_key_hash(v, strlen(v), hash);
        memcpy(key, v, TG_KEY_LEN + 1);
    } else if (kh) {
        const char *v = json_string_value(kh);
        if (!v || strlen(v) != 64 || tg_unhex(v, 64, hash, 32) != 32) {
            line_error(m, "KeyHash: must be the SHA-256 of the key as 64 hex digits");
            return -1;
        }
        key[0] = '\0';
    } else {
        if (tg_key_generate(key) != 0) {
            line_error(m, "the random number generator failed");
            return -1;
        }
        tg_key_hash(key, TG_KEY_LEN, hash);
        *generated = 1;
    }
    char hex[65];
    tg_hex(hash, 32, hex);
    size_t vlen = 0;
    char *rerr = NULL, *v = tg_store_get(m->s, TG_CF_KEYHASH, hash, 32, &vlen, &rerr);
    int taken = v != NULL || json_object_get(m->hashes, hex) != NULL;
    rocksdb_free(v);
    rocksdb_free(rerr);
    if (taken) {
        line_error(m, "%s: this key is already in use", k ? "Key" : "KeyHash");
        return -1;
    }
    return 0;
}

/* Name and Email: valid and unique in the store and in FILE. 0, or -1. */
static int check_unique(imp_t *m, const json_t *obj)
{
    const char *name = json_string_value(json_object_get(obj, "Name"));
    const char *email = json_string_value(json_object_get(obj, "Email"));
    char low[TG_NAMES_KEY_MAX];
    if (!name || !tg_valid_name(name)) {
        line_error(m, "Name: required; 4-63 characters of letters, digits, '_', '.', '-', with at least one letter");
        return -1;
    }
    lower(name, low, sizeof(low));
    if (json_object_get(m->names, low) || tg_acctrec_find_name(m->s, name) != 0) {
        line_error(m, "Name: \"%s\" is already taken", name);
        return -1;
    }
    if (!email || !tg_valid_email(email)) {
        line_error(m, "Email: required; \"%.100s\" is not a valid email address", email ? email : "");
        return -1;
    }
    lower(email, low, sizeof(low));
    if (json_object_get(m->emails, low) || tg_acctrec_find_email(m->s, email) != 0) {
        line_error(m, "Email: \"%.100s\" is already used by another account", email);
        return -1;
    }
    return 0;
}

static rocksdb_writebatch_t *batch_for(imp_t *m, size_t index)
{
    size_t k = index / IMPORT_CHUNK;
    if (k == m->n_batches) {
        rocksdb_writebatch_t **nb = realloc(m->batches, (k + 1) * sizeof(*nb));
        if (!nb)
            return NULL;
        m->batches = nb;
        m->batches[m->n_batches++] = rocksdb_writebatch_create();
    }
    return m->batches[k];
}

/* Checks line OBJ and, when it is good, adds its account (record, funding). */
static void import_line(imp_t *m, json_t *obj)
{
    const char *key_name;
    json_t *v;
    json_object_foreach(obj, key_name, v) {
        int known = 0;
        for (size_t i = 0; i < sizeof(g_known) / sizeof(g_known[0]); i++)
            known |= strcmp(key_name, g_known[i]) == 0;
        if (!known) {
            line_error(m, "%.60s: unknown field (known: Name, Email, Parent, CreditGranted, RPM..TPD, Key, KeyHash)", key_name);
            return;
        }
    }
    if (check_unique(m, obj) != 0)
        return;
    int ok = 1;
    int64_t credit = 0;
    json_t *cg = json_object_get(obj, "CreditGranted");
    if (cg && ((credit = tg_manage_money(cg, &ok)), !ok || credit < 0)) {
        line_error(m, "CreditGranted: must be a non-negative number of dollars up to 1e9");
        return;
    }
    for (size_t i = 0; i < sizeof(g_limit_fields) / sizeof(g_limit_fields[0]); i++) {
        json_t *l = json_object_get(obj, g_limit_fields[i]);
        if (l && (!json_is_integer(l) || json_integer_value(l) < 0 || json_integer_value(l) > LIMIT_MAX)) {
            line_error(m, "%s: must be an integer from 0 (unlimited) to %lld", g_limit_fields[i], LIMIT_MAX);
            return;
        }
    }
    uint8_t hash[32];
    char key[TG_KEY_LEN + 1];
    int generated;
    if (key_of(m, obj, hash, key, &generated) != 0)
        return;
    json_t *parent = parent_of(m, json_object_get(obj, "Parent"));
    if (parent == NULL)
        return;
    uint64_t parent_id = tg_rec_u64(parent, "ID", 0);
    if (tg_rec_i64(parent, "Child", 0) >= tg_rec_i64(parent, "ChildLimit", TG_CHILD_LIMIT_UNLIMITED)) {
        line_error(m, "Parent: account %llu may have no more children (ChildLimit)", (unsigned long long)parent_id);
        return;
    }
    uint64_t id = m->first_id + m->n;
    char dna[512];
    snprintf(dna, sizeof(dna), "%s%llu.", tg_rec_str(parent, "DNA", "."), (unsigned long long)id);
    const char *name = json_string_value(json_object_get(obj, "Name"));
    tg_acctrec_init_t init = {.id = id,
                              .parent_id = parent_id,
                              .owner_id = parent_id == TG_ROOT_ID ? id : tg_rec_u64(parent, "OwnerID", TG_ROOT_ID),
                              .name = name,
                              .email = json_string_value(json_object_get(obj, "Email")),
                              .dna = dna,
                              .level = (int)tg_rec_i64(parent, "Level", 1),
                              .rates = tg_rec_f64(parent, "Rates", 1.0),
                              .factor = tg_rec_f64(parent, "Factor", 1.0),
                              .key = key,
                              .key_len = strlen(key)};
    json_t *rec = tg_acctrec_new_child(&init, parent, m->now);
    if (rec == NULL) {
        line_error(m, "out of memory");
        return;
    }
    for (size_t i = 0; i < sizeof(g_limit_fields) / sizeof(g_limit_fields[0]); i++) {
        json_t *l = json_object_get(obj, g_limit_fields[i]);
        if (l)
            json_object_set(rec, g_limit_fields[i], l);
    }
    char hex[65];
    tg_hex(hash, 32, hex);
    if (!generated && key[0] == '\0') { /* KeyHash given: no plaintext, so no partial key to show */
        json_object_set_new(rec, "KeyHash", json_string(hex));
        json_object_set_new(rec, "PartialKey", json_string(""));
    }
    if (credit > 0 && parent_id != TG_ROOT_ID) {
        int64_t cost = tg_money_convert(credit, tg_rec_f64(rec, "Rates", 1.0), tg_rec_f64(parent, "Rates", 1.0));
        int64_t have = tg_acctrec_arena_balance(parent);
        if (have < cost) {
            line_error(m, "CreditGranted: the parent's balance ($%.2f) does not cover the transfer ($%.2f at the Rates)",
                       (double)have / 1e9, (double)cost / 1e9);
            json_decref(rec);
            return;
        }
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        json_t **r = realloc(m->recs, cap * sizeof(*r));
        char **k = r ? realloc(m->keys, cap * sizeof(*k)) : NULL;
        if (r)
            m->recs = r;
        if (k)
            m->keys = k;
        if (!r || !k) {
            line_error(m, "out of memory");
            json_decref(rec);
            return;
        }
        m->cap = cap;
    }
    rocksdb_writebatch_t *b = batch_for(m, m->n);
    int64_t paid = 0;
    if (b == NULL || (credit > 0 && tg_ledger_fund(b, m->s, parent, rec, credit, TG_DEFAULT_DAYS, "Initial Funding",
                                                   m->now, &paid) != 0)) {
        line_error(m, "out of memory");
        json_decref(rec);
        return;
    }
    tg_rec_add_i64(parent, "Child", 1);
    m->keys[m->n] = generated ? strdup(key) : NULL;
    m->n_generated += generated;
    explicit_bzero(key, sizeof(key));
    char low[TG_NAMES_KEY_MAX];
    lower(name, low, sizeof(low));
    json_object_set_new(m->names, low, json_integer((json_int_t)m->n));
    lower(json_string_value(json_object_get(obj, "Email")), low, sizeof(low));
    json_object_set_new(m->emails, low, json_true());
    json_object_set_new(m->hashes, hex, json_true());
    m->recs[m->n++] = rec;
}

/* Writes the generated keys to PATH (new file, 0600): {"ID":..,"Name":..,"SecretKey":..} lines. */
static int write_keys(imp_t *m, const char *path, char **err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return tg_store_fail(err, "%s: %s (the keys file must be new)", path, strerror(errno));
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return tg_store_fail(err, "%s: %s", path, strerror(errno));
    }
    for (size_t i = 0; i < m->n; i++)
        if (m->keys[i])
            fprintf(f, "{\"ID\":%llu,\"Name\":\"%s\",\"SecretKey\":\"%s\"}\n", (unsigned long long)(m->first_id + i),
                    tg_rec_str(m->recs[i], "Name", ""), m->keys[i]);
    int bad = fflush(f) != 0 || fsync(fd) != 0;
    if (fclose(f) != 0 || bad)
        return tg_store_fail(err, "%s: %s", path, strerror(errno));
    return 0;
}

/* Writes every batch: the account counter goes first (ids are taken even if a later batch fails),
 * the changed existing parents last. */
static int write_all(imp_t *m, char **err)
{
    size_t nb = (m->n + IMPORT_CHUNK - 1) / IMPORT_CHUNK;
    for (size_t k = 0; k < nb; k++) {
        rocksdb_writebatch_t *b = m->batches[k];
        if (k == 0)
            tg_store_meta_put(b, m->s, TG_META_NEXT_ACCOUNT_ID, m->first_id + m->n);
        for (size_t i = k * IMPORT_CHUNK; i < m->n && i < (k + 1) * IMPORT_CHUNK; i++) {
            uint8_t hash[32];
            const char *hex = tg_rec_str(m->recs[i], "KeyHash", "");
            if (tg_unhex(hex, strlen(hex), hash, 32) != 32 ||
                tg_store_json_put(b, m->s, TG_CF_ACCOUNTS, m->first_id + i, m->recs[i]) != 0)
                return tg_store_fail(err, "account %llu cannot be encoded", (unsigned long long)(m->first_id + i));
            tg_acctrec_put_keyhash(b, m->s, hash, m->first_id + i);
            tg_acctrec_index_put(b, m->s, m->recs[i]);
        }
        if (k == nb - 1) {
            const char *idtext;
            json_t *rec;
            json_object_foreach(m->loaded, idtext, rec) {
                if (tg_store_json_put(b, m->s, TG_CF_ACCOUNTS, tg_rec_u64(rec, "ID", 0), rec) != 0)
                    return tg_store_fail(err, "account %s cannot be encoded", idtext);
            }
        }
        char *cerr = NULL;
        if (tg_store_commit(m->s, b, &cerr) != 0) {
            if (k == 0)
                tg_store_fail(err, "writing failed, nothing was imported: %s", cerr ? cerr : "?");
            else
                tg_store_fail(err, "writing failed after accounts %llu..%llu were stored (the first %zu accounts of the file): %s",
                              (unsigned long long)m->first_id, (unsigned long long)(m->first_id + k * IMPORT_CHUNK - 1),
                              k * IMPORT_CHUNK, cerr ? cerr : "?");
            free(cerr);
            return -1;
        }
    }
    return 0;
}

static int count_account(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    (void)key, (void)klen, (void)val, (void)vlen;
    (*(size_t *)ud)++;
    return 0;
}

int tg_admin_import(const char *data_dir, const char *file, const char *keys_out, uint32_t max_accounts, FILE *out,
                    FILE *errs, char **err)
{
    FILE *in = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    if (in == NULL)
        return tg_store_fail(err, "%s: %s", file, strerror(errno));
    imp_t m = {.errs = errs, .now = time(NULL)};
    m.names = json_object();
    m.emails = json_object();
    m.hashes = json_object();
    m.loaded = json_object();
    int rc = -1;
    char *db_err = NULL;
    if (tg_store_open(&m.s, data_dir, &db_err) != 0) {
        tg_store_fail(err, "%s (is tollgate running? stop it before importing)", db_err ? db_err : "cannot open the store");
        free(db_err);
        goto done;
    }
    json_t *root = tg_store_json_get(m.s, TG_CF_ACCOUNTS, TG_ROOT_ID);
    json_decref(root);
    if (root == NULL || tg_store_meta_get(m.s, TG_META_NEXT_ACCOUNT_ID, &m.first_id) != 1 || m.first_id == 0) {
        tg_store_fail(err, "%s holds no root account: start tollgate once before importing", data_dir);
        goto done;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, in)) >= 0) {
        m.line++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        json_error_t je;
        json_t *obj = json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES, &je);
        if (!json_is_object(obj))
            line_error(&m, "not a JSON object%s%s", obj ? "" : ": ", obj ? "" : je.text);
        else
            import_line(&m, obj);
        json_decref(obj);
    }
    free(line);
    if (ferror(in)) {
        tg_store_fail(err, "%s: %s", file, strerror(errno));
        goto done;
    }
    if (m.n_generated > 0 && keys_out == NULL) {
        tg_store_fail(err, "%zu line(s) give no Key or KeyHash: name a file for the generated keys with --keys-out", m.n_generated);
        goto done;
    }
    size_t existing = 0;
    if (m.errors == 0 && tg_store_each(m.s, TG_CF_ACCOUNTS, count_account, &existing) != 0) {
        tg_store_fail(err, "the accounts in the store cannot be counted");
        goto done;
    }
    if (m.errors == 0 && existing + m.n > max_accounts) {
        tg_store_fail(err, "the store would hold %zu accounts but arena.max_accounts is %u: raise it first", existing + m.n,
                      max_accounts);
        goto done;
    }
    if (m.errors > 0) {
        if (m.errors > IMPORT_SHOWN_ERRORS)
            fprintf(errs, "... and %ld more\n", m.errors - IMPORT_SHOWN_ERRORS);
        tg_store_fail(err, "%s: %ld line(s) with errors; nothing was imported", file, m.errors);
        goto done;
    }
    if (m.n == 0) {
        fprintf(out, "tollgate: %s holds no accounts; nothing to import\n", file);
        rc = 0;
        goto done;
    }
    if (m.n_generated > 0 && write_keys(&m, keys_out, err) != 0)
        goto done;
    if (write_all(&m, err) != 0)
        goto done;
    fprintf(out, "tollgate: imported %zu account(s), ids %llu..%llu%s%s\n", m.n, (unsigned long long)m.first_id,
            (unsigned long long)(m.first_id + m.n - 1), m.n_generated ? "; generated keys in " : "",
            m.n_generated ? keys_out : "");
    rc = 0;
done:
    if (in != stdin)
        fclose(in);
    for (size_t i = 0; i < m.n; i++) {
        json_decref(m.recs[i]);
        if (m.keys[i]) {
            explicit_bzero(m.keys[i], strlen(m.keys[i]));
            free(m.keys[i]);
        }
    }
    for (size_t k = 0; k < m.n_batches; k++)
        rocksdb_writebatch_destroy(m.batches[k]);
    free(m.batches);
    free(m.recs);
    free(m.keys);
    json_decref(m.names);
    json_decref(m.emails);
    json_decref(m.hashes);
    json_decref(m.loaded);
    tg_store_close(m.s);
    return rc;
}
