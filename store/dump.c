/* Read-only dump of the usage column family (see dump.h). */
#include "store/dump.h"

#include <jansson.h>
#include <rocksdb/c.h>
#include <stdlib.h>
#include <string.h>

#include "store/schema.h"
#include "store/store-i.h"
#include "shm/usage.h"

static json_t *usage_json(const tg_usage_t *u)
{
    return json_pack("{s:s, s:I, s:I, s:I, s:s, s:s, s:i, s:i, s:I, s:I, s:I, s:I, s:i, s:i, s:s}", "rid", u->request_id, "ts",
                     (json_int_t)u->ts_ms, "acct", (json_int_t)u->account_id, "key", (json_int_t)u->upstream_id, "model",
                     u->model, "path", u->path, "st", (int)u->status, "fl", (int)u->flags, "pt",
                     (json_int_t)u->prompt_tokens, "ct", (json_int_t)u->completion_tokens, "cached",
                     (json_int_t)u->cached_tokens, "cost", (json_int_t)u->cost_nanos, "lat", (int)u->latency_ms, "ttfb",
                     (int)u->ttfb_ms, "run", u->run_id);
}

int tg_store_dump_usage(const char *data_dir, FILE *out, char **err)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/db", data_dir);
    rocksdb_options_t *opts = rocksdb_options_create(), *rollup_opts = tg_rollup_options(opts);
    char *rerr = NULL;
    size_t n = 0;
    char **names = rocksdb_list_column_families(opts, path, &n, &rerr);
    int rc = -1;
    rocksdb_t *db = NULL;
    rocksdb_column_family_handle_t **handles = NULL;
    const rocksdb_options_t **cf_opts = NULL;
    if (rerr) {
        if (asprintf(err, "%s: %s", path, rerr) < 0)
            *err = NULL;
        goto done;
    }
    handles = calloc(n, sizeof(*handles));
    cf_opts = calloc(n, sizeof(*cf_opts));
    for (size_t i = 0; i < n; i++) /* replaying the log needs the roll-up merge operator */
        cf_opts[i] = strcmp(names[i], tg_cf_name(TG_CF_ROLLUPS)) == 0 ? rollup_opts : opts;
    db = rocksdb_open_for_read_only_column_families(opts, path, (int)n, (const char *const *)names, cf_opts, handles, 0,
                                                     &rerr);
    if (rerr) {
        if (asprintf(err, "%s: %s", path, rerr) < 0)
            *err = NULL;
        goto done;
    }
    rocksdb_column_family_handle_t *usage = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], tg_cf_name(TG_CF_USAGE)) == 0)
            usage = handles[i];
    if (usage == NULL) {
        rc = 0; /* nothing stored yet */
        goto done;
    }
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(db, ro, usage);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t vlen;
        const char *v = rocksdb_iter_value(it, &vlen);
        tg_usage_t u;
        if (tg_usage_decode((const uint8_t *)v, vlen, &u) != 0)
            continue;
        json_t *j = usage_json(&u);
        char *line = json_dumps(j, JSON_COMPACT);
        fprintf(out, "%s\n", line);
        free(line);
        json_decref(j);
    }
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    rc = 0;
done:
    if (rerr)
        rocksdb_free(rerr);
    if (db) {
        for (size_t i = 0; i < n; i++)
            rocksdb_column_family_handle_destroy(handles[i]);
        rocksdb_close(db);
    }
    if (names)
        rocksdb_list_column_families_destroy(names, n);
    free(handles);
    free(cf_opts);
    rocksdb_options_destroy(opts);
    rocksdb_options_destroy(rollup_opts);
    return rc;
}
