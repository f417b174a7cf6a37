/* Opening and closing the RocksDB database, its column families and schema version, and the
 * small read/write helpers the other store modules share (store-i.h).
 *
 * Options: one database at <data_dir>/db; missing column families are created on open; families
 * found on disk that this build does not know are opened too (RocksDB requires it) and left
 * alone. Every write goes through one WriteOptions with sync = true: a management change or a
 * usage batch is on disk (WAL fsynced) before the caller acts on it. */
#include "store/store-i.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

int tg_store_fail(char **err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(err, fmt, ap) < 0)
            *err = NULL;
        va_end(ap);
    }
    return -1;
}

/* The data directory must exist and be usable before RocksDB is asked: its own error messages
 * for that case are cryptic. */
static int check_data_dir(const char *dir, char **err)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return tg_store_fail(err, "data directory %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return tg_store_fail(err, "data directory %s: not a directory", dir);
    if (access(dir, R_OK | W_OK | X_OK) != 0)
        return tg_store_fail(err, "data directory %s: %s (the persister needs read, write and search permission)", dir,
                             strerror(errno));
    return 0;
}

static rocksdb_options_t *make_options(void)
{
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_create_missing_column_families(o, 1);
    rocksdb_options_increase_parallelism(o, 2);
    rocksdb_options_set_keep_log_file_num(o, 4);
    rocksdb_options_set_max_log_file_size(o, 8u << 20);
    rocksdb_options_set_max_open_files(o, 512);
    return o;
}

/* Names of the families to open: ours, plus any other the database already has. */
static int family_names(tg_store_t *s, char ***names_out, size_t *n_out, char **err)
{
    size_t n_disk = 0;
    char *lerr = NULL;
    char **disk = rocksdb_list_column_families(s->opts, s->db_path, &n_disk, &lerr);
    if (lerr) { /* no database yet (or unreadable: the open below reports that) */
        rocksdb_free(lerr);
        rocksdb_list_column_families_destroy(disk, n_disk); /* an empty array is still allocated */
        disk = NULL;
        n_disk = 0;
    }
    char **names = calloc(TG_CF_COUNT + n_disk, sizeof(*names));
    if (names == NULL) {
        rocksdb_list_column_families_destroy(disk, n_disk);
        return tg_store_fail(err, "out of memory");
    }
    size_t n = 0;
    for (int i = 0; i < TG_CF_COUNT; i++)
        names[n++] = strdup(tg_cf_name((tg_cf_t)i));
    for (size_t i = 0; i < n_disk; i++) {
        int known = 0;
        for (int j = 0; j < TG_CF_COUNT; j++)
            known |= strcmp(disk[i], tg_cf_name((tg_cf_t)j)) == 0;
        if (!known)
            names[n++] = strdup(disk[i]);
    }
    rocksdb_list_column_families_destroy(disk, n_disk);
    for (size_t i = 0; i < n; i++)
        if (names[i] == NULL) {
            for (size_t j = 0; j < n; j++)
                free(names[j]);
            free(names);
            return tg_store_fail(err, "out of memory");
        }
    *names_out = names;
    *n_out = n;
    return 0;
}

static int open_db(tg_store_t *s, char **err)
{
    char **names = NULL;
    size_t n = 0;
    if (family_names(s, &names, &n, err) != 0)
        return -1;
    const rocksdb_options_t **cf_opts = calloc(n, sizeof(*cf_opts));
    rocksdb_column_family_handle_t **handles = calloc(n, sizeof(*handles));
    int rc = -1;
    if (cf_opts == NULL || handles == NULL) {
        tg_store_fail(err, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        cf_opts[i] = strcmp(names[i], tg_cf_name(TG_CF_ROLLUPS)) == 0 ? s->rollup_opts : s->opts;
    char *rerr = NULL;
    if (s->readonly)
        s->db = rocksdb_open_for_read_only_column_families(s->opts, s->db_path, (int)n, (const char *const *)names, cf_opts,
                                                            handles, 0, &rerr);
    else
        s->db =
            rocksdb_open_column_families(s->opts, s->db_path, (int)n, (const char *const *)names, cf_opts, handles, &rerr);
    if (rerr) {
        tg_store_fail(err, "cannot open database %s: %s", s->db_path, rerr);
        rocksdb_free(rerr);
        s->db = NULL;
        goto done;
    }
    for (int i = 0; i < TG_CF_COUNT; i++)
        s->cf[i] = handles[i];
    s->n_extra_cf = n - TG_CF_COUNT;
    if (s->n_extra_cf) {
        s->extra_cf = calloc(s->n_extra_cf, sizeof(*s->extra_cf));
        for (size_t i = 0; i < s->n_extra_cf; i++) {
            if (s->extra_cf)
                s->extra_cf[i] = handles[TG_CF_COUNT + i];
            else
                rocksdb_column_family_handle_destroy(handles[TG_CF_COUNT + i]);
        }
        if (s->extra_cf == NULL)
            s->n_extra_cf = 0;
    }
    rc = 0;
done:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(cf_opts);
    free(handles);
    return rc;
}

/* Records the schema version in a new database; refuses a newer one. */
static int check_schema(tg_store_t *s, char **err)
{
    uint64_t v = 0;
    int have = tg_store_meta_get(s, TG_META_SCHEMA_VERSION, &v);
    if (have < 0)
        return tg_store_fail(err, "database %s: cannot read the schema version", s->db_path);
    if (have == 0) {
        rocksdb_writebatch_t *b = rocksdb_writebatch_create();
        tg_store_meta_put(b, s, TG_META_SCHEMA_VERSION, TG_SCHEMA_VERSION);
        char *cerr = NULL;
        int rc = tg_store_commit(s, b, &cerr);
        rocksdb_writebatch_destroy(b);
        if (rc != 0) {
            tg_store_fail(err, "database %s: cannot record the schema version: %s", s->db_path, cerr ? cerr : "?");
            free(cerr);
            return -1;
        }
        return 0;
    }
    if (v > TG_SCHEMA_VERSION)
        return tg_store_fail(err,
                             "database %s has schema version %llu, newer than this tollgate supports (%u); "
                             "run a newer tollgate or restore a backup",
                             s->db_path, (unsigned long long)v, TG_SCHEMA_VERSION);
    if (v == 0)
        return tg_store_fail(err, "database %s: invalid schema version 0", s->db_path);
    if (v < TG_SCHEMA_VERSION && tg_store_migrate(s, v, err) != 0)
        return -1;
    return 0;
}

static int store_open(tg_store_t **out, const char *data_dir, int readonly, char **err);

static int check_schema_readonly(tg_store_t *s, char **err)
{
    uint64_t v = 0;
    if (tg_store_meta_get(s, TG_META_SCHEMA_VERSION, &v) != 1)
        return tg_store_fail(err, "database %s: no schema version", s->db_path);
    if (v != TG_SCHEMA_VERSION)
        return tg_store_fail(err, "database %s has schema version %llu, this tollgate reads %u%s", s->db_path,
                             (unsigned long long)v, TG_SCHEMA_VERSION,
                             v < TG_SCHEMA_VERSION ? " (start tollgate once to migrate it)" : "");
    return 0;
}

int tg_store_open(tg_store_t **out, const char *data_dir, char **err)
{
    return store_open(out, data_dir, 0, err);
}

/* Read-only: no lock, no writes; families missing on disk (an older schema) are an error. */
int tg_store_open_readonly(tg_store_t **out, const char *data_dir, char **err)
{
    return store_open(out, data_dir, 1, err);
}

static int store_open(tg_store_t **out, const char *data_dir, int readonly, char **err)
{
    *out = NULL;
    if (err)
        *err = NULL;
    if (check_data_dir(data_dir, err) != 0)
        return -1;
    tg_store_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return tg_store_fail(err, "out of memory");
    s->stuck_pos = UINT64_MAX;
    s->stuck_timeout_ms = TG_STORE_STUCK_TIMEOUT_MS;
    s->data_dir = strdup(data_dir);
    if (s->data_dir == NULL || asprintf(&s->db_path, "%s/db", data_dir) < 0) {
        s->db_path = NULL;
        tg_store_close(s);
        return tg_store_fail(err, "out of memory");
    }
    s->readonly = readonly;
    s->opts = make_options();
    if (readonly)
        rocksdb_options_set_create_if_missing(s->opts, 0);
    s->rollup_opts = tg_rollup_options(s->opts);
    s->ro = rocksdb_readoptions_create();
    s->wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(s->wo, 1);
    if (open_db(s, err) != 0 || (readonly ? check_schema_readonly(s, err) : check_schema(s, err)) != 0) {
        tg_store_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

int tg_store_flush(tg_store_t *s)
{
    if (s->readonly)
        return 0;
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    int rc = 0;
    for (int i = 0; i < TG_CF_COUNT && rc == 0; i++) {
        char *err = NULL;
        rocksdb_flush_cf(s->db, fo, s->cf[i], &err);
        if (err) {
            tg_error("store: flushing %s: %s", tg_cf_name((tg_cf_t)i), err);
            rocksdb_free(err);
            rc = -1;
        }
    }
    rocksdb_flushoptions_destroy(fo);
    return rc;
}

void tg_store_close(tg_store_t *s)
{
    if (s == NULL)
        return;
    if (s->db) {
        for (int i = 0; i < TG_CF_COUNT; i++)
            if (s->cf[i])
                rocksdb_column_family_handle_destroy(s->cf[i]);
        for (size_t i = 0; i < s->n_extra_cf; i++)
            rocksdb_column_family_handle_destroy(s->extra_cf[i]);
        rocksdb_close(s->db);
    }
    free(s->extra_cf);
    explicit_bzero(s->master_key, sizeof(s->master_key));
    free(s->expiry.ids);
    free(s->expiry.at);
    free(s->expiry.index);
    if (s->batch)
        rocksdb_writebatch_destroy(s->batch);
    tg_foldmap_dispose(&s->fold_rollups);
    tg_foldmap_dispose(&s->fold_orphans);
    tg_foldmap_dispose(&s->fold_dups);
    tg_foldmap_dispose(&s->fold_runs);
    tg_foldmap_dispose(&s->fold_accounts);
    tg_slotmap_dispose(&s->acct_slots);
    tg_slotmap_dispose(&s->up_slots);
    if (s->ro)
        rocksdb_readoptions_destroy(s->ro);
    if (s->wo)
        rocksdb_writeoptions_destroy(s->wo);
    if (s->opts)
        rocksdb_options_destroy(s->opts);
    if (s->rollup_opts)
        rocksdb_options_destroy(s->rollup_opts);
    free(s->db_path);
    free(s->data_dir);
    free(s);
}

void tg_store_set_runtime(tg_store_t *s, const uint8_t *master_key, const tg_config_t *cfg)
{
    if (master_key) {
        memcpy(s->master_key, master_key, sizeof(s->master_key));
        s->have_master_key = 1;
    }
    if (cfg)
        s->allow_private_providers = cfg->store.allow_private_providers;
}

void tg_store_set_stuck_timeout(tg_store_t *s, uint32_t ms)
{
    s->stuck_timeout_ms = ms;
}

char *tg_store_get(tg_store_t *s, tg_cf_t cf, const void *key, size_t klen, size_t *vlen, char **err)
{
    *err = NULL;
    return rocksdb_get_cf(s->db, s->ro, s->cf[cf], key, klen, vlen, err);
}

int tg_store_meta_get(tg_store_t *s, const char *name, uint64_t *out)
{
    size_t len = 0;
    char *err = NULL;
    char *v = tg_store_get(s, TG_CF_META, name, strlen(name), &len, &err);
    if (err) {
        tg_error("store: reading meta %s: %s", name, err);
        rocksdb_free(err);
        return -1;
    }
    if (v == NULL)
        return 0;
    int rc = 1;
    if (len == 8) {
        *out = tg_be64_get((const uint8_t *)v);
    } else {
        tg_error("store: meta %s has %zu bytes, expected 8", name, len);
        rc = -1;
    }
    rocksdb_free(v);
    return rc;
}

void tg_store_meta_put(rocksdb_writebatch_t *batch, tg_store_t *s, const char *name, uint64_t v)
{
    uint8_t buf[8];
    tg_be64_put(buf, v);
    rocksdb_writebatch_put_cf(batch, s->cf[TG_CF_META], name, strlen(name), (const char *)buf, 8);
}

int tg_store_json_put(rocksdb_writebatch_t *batch, tg_store_t *s, tg_cf_t cf, uint64_t id, const json_t *json)
{
    char *text = json_dumps(json, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text == NULL)
        return -1;
    uint8_t key[8];
    tg_be64_put(key, id);
    rocksdb_writebatch_put_cf(batch, s->cf[cf], (const char *)key, 8, text, strlen(text));
    free(text);
    return 0;
}

int tg_store_json_load(tg_store_t *s, tg_cf_t cf, uint64_t id, json_t **out)
{
    *out = NULL;
    uint8_t key[8];
    tg_be64_put(key, id);
    size_t len = 0;
    char *err = NULL;
    char *v = tg_store_get(s, cf, key, 8, &len, &err);
    if (err) {
        tg_error("store: reading %s/%llu: %s", tg_cf_name(cf), (unsigned long long)id, err);
        rocksdb_free(err);
        return TG_LOAD_ERROR;
    }
    if (v == NULL)
        return TG_LOAD_ABSENT;
    json_error_t jerr;
    json_t *j = json_loadb(v, len, 0, &jerr);
    rocksdb_free(v);
    if (j == NULL || !json_is_object(j)) {
        tg_error("store: %s/%llu is not a JSON object: %s", tg_cf_name(cf), (unsigned long long)id, j ? "wrong type" : jerr.text);
        json_decref(j);
        return TG_LOAD_MALFORMED;
    }
    *out = j;
    return TG_LOAD_OK;
}

json_t *tg_store_json_get(tg_store_t *s, tg_cf_t cf, uint64_t id)
{
    json_t *j;
    tg_store_json_load(s, cf, id, &j);
    return j;
}

int tg_store_commit(tg_store_t *s, rocksdb_writebatch_t *batch, char **err)
{
    char *rerr = NULL;
    rocksdb_write(s->db, s->wo, batch, &rerr);
    if (rerr) {
        tg_store_fail(err, "%s", rerr);
        rocksdb_free(rerr);
        return -1;
    }
    return 0;
}

int tg_store_each(tg_store_t *s, tg_cf_t cf, tg_store_each_fn fn, void *ud)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[cf]);
    int rc = 0;
    for (rocksdb_iter_seek_to_first(it); rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        rc = fn(ud, k, klen, v, vlen);
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    if (err) {
        tg_error("store: scanning %s: %s", tg_cf_name(cf), err);
        rocksdb_free(err);
        rc = -1;
    }
    rocksdb_iter_destroy(it);
    return rc;
}
