/* tests/unit/test_store.c: the persister's store (store/): open and schema checks, bootstrap,
 * publishing into the arena, draining the usage ring (folding, crash recovery through the ring
 * cursor, stuck slots, bad records), secrets at rest, and the unix-socket HTTP server end to end
 * (tg_persister_run in a forked child). Each test gets a fresh directory under /tmp. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/keyhash.h"
#include "common/log.h"
#include "common/seal.h"
#include "shm/accounts.h"
#include "shm/arena.h"
#include "shm/ring.h"
#include "shm/upstreams.h"
#include "shm/usage.h"
#include "store/account_rec.h"
#include "store/drain.h"
#include "store/persister.h"
#include "store/record.h"
#include "store/store-i.h"

#define ROOT_KEY "sk-XvsAbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghi"
#define SECRET1 "sk-upstream-SECRET-one-0123456789abcdefXYZ"
#define SECRET2 "sk-ant-upstream-SECRET-two-9876543210zyxwvu"
#define DAY1_MS 1709287200000ULL /* 2024-03-01T10:00:00Z */
#define DAY_MS 86400000ULL

typedef struct fx {
    char dir[64];
    char arena_path[96];
    char key_file[96];
    char sock_path[96];
    tg_arena_t arena;
    tg_config_t cfg;
    tg_key_seed_t keys[2];
    uint8_t mk[TG_MASTER_KEY_LEN];
} fx_t;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Fills F for directory DIR (paths, config, master key) and maps its arena, creating it when new. */
static void fx_init(fx_t *f, const char *dir)
{
    snprintf(f->dir, sizeof(f->dir), "%s", dir);
    snprintf(f->arena_path, sizeof(f->arena_path), "%s/arena", f->dir);
    snprintf(f->key_file, sizeof(f->key_file), "%s/root.key", f->dir);
    snprintf(f->sock_path, sizeof(f->sock_path), "%s/persister.sock", f->dir);
    tg_arena_sizes_t sizes = {1024, 64, 1024};
    int created = 0;
    char *err = NULL;
    if (tg_arena_open(&f->arena, f->arena_path, &sizes, &created, &err) != 0)
        fail_msg("tg_arena_open: %s", err ? err : "?");
    for (int i = 0; i < TG_MASTER_KEY_LEN; i++)
        f->mk[i] = (uint8_t)(i * 7 + 3);
    f->keys[0] = (tg_key_seed_t){
        .name = "openai-main", .level = 1, .provider = "https://api.openai.com", .secret = SECRET1, .protocol = TG_PROTO_OPENAI};
    f->keys[1] = (tg_key_seed_t){
        .name = "claude", .level = 2, .provider = "https://api.anthropic.com", .secret = SECRET2, .protocol = TG_PROTO_ANTHROPIC};
    f->cfg.data_dir = f->dir;
    f->cfg.timezone = "UTC";
    f->cfg.bootstrap.root_key_file = f->key_file;
    f->cfg.keys = f->keys;
    f->cfg.n_keys = 2;
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    char dir[] = "/tmp/tg_store_test_XXXXXX";
    assert_non_null(mkdtemp(dir));
    fx_init(f, dir);
    setenv("TOLLGATE_ROOT_KEY", ROOT_KEY, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    tg_arena_close(&f->arena);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    unsetenv("TOLLGATE_ROOT_KEY");
    free(f);
    return 0;
}

static tg_store_t *open_store(fx_t *f)
{
    tg_store_t *s = NULL;
    char *err = NULL;
    int rc = tg_store_open(&s, f->dir, &err);
    if (rc != 0)
        fail_msg("tg_store_open: %s", err ? err : "?");
    return s;
}

static tg_store_t *open_bootstrapped(fx_t *f)
{
    tg_store_t *s = open_store(f);
    char *err = NULL;
    if (tg_store_bootstrap(s, &f->cfg, f->mk, &err) != 0)
        fail_msg("tg_store_bootstrap: %s", err ? err : "?");
    return s;
}

static int count_cb(void *ud, const char *k, size_t kl, const char *v, size_t vl)
{
    (void)k, (void)kl, (void)v, (void)vl;
    ++*(size_t *)ud;
    return 0;
}

static size_t count_cf(tg_store_t *s, tg_cf_t cf)
{
    size_t n = 0;
    assert_int_equal(tg_store_each(s, cf, count_cb, &n), 0);
    return n;
}

static void push_flagged(tg_arena_t *a, const char *rid, uint64_t ts, uint64_t acct, const char *model, uint64_t pt,
                         uint64_t ct, uint64_t cached, int64_t cost, uint32_t flags)
{
    tg_usage_t u = {.ts_ms = ts,
                    .account_id = acct,
                    .upstream_id = 1,
                    .status = flags & TG_USAGE_ORPHAN ? 0 : 200,
                    .flags = flags,
                    .prompt_tokens = pt,
                    .completion_tokens = ct,
                    .cached_tokens = cached,
                    .cost_nanos = cost};
    snprintf(u.request_id, sizeof(u.request_id), "%s", rid);
    snprintf(u.model, sizeof(u.model), "%s", model);
    snprintf(u.path, sizeof(u.path), "/v1/chat/completions");
    uint8_t buf[TG_RING_PAYLOAD];
    int n = tg_usage_encode(&u, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(tg_ring_push(a, buf, (size_t)n), TG_RING_OK);
}

static void push_usage(tg_arena_t *a, const char *rid, uint64_t ts, uint64_t acct, const char *model, uint64_t pt, uint64_t ct,
                       uint64_t cached, int64_t cost)
{
    push_flagged(a, rid, ts, acct, model, pt, ct, cached, cost, 0);
}

static tg_rollup_t read_rollup(tg_store_t *s, uint64_t acct, const char *day, const char *model)
{
    uint8_t key[TG_ROLLUP_KEY_MAX];
    size_t klen = tg_rollup_key(key, acct, day, model, strlen(model)), vlen = 0;
    char *err = NULL;
    char *v = tg_store_get(s, TG_CF_ROLLUPS, key, klen, &vlen, &err);
    assert_null(err);
    tg_rollup_t r = {0};
    if (v) {
        assert_int_equal(tg_rollup_decode((const uint8_t *)v, vlen, &r), 0);
        rocksdb_free(v);
    }
    return r;
}

static int64_t root_slot(fx_t *f)
{
    uint8_t hash[32];
    tg_key_hash(ROOT_KEY, strlen(ROOT_KEY), hash);
    return tg_account_lookup(&f->arena, hash);
}

/* ---- open ---- */

static void test_open_errors(void **state)
{
    fx_t *f = *state;
    tg_store_t *s = NULL;
    char *err = NULL, path[128];
    snprintf(path, sizeof(path), "%s/missing", f->dir);
    assert_int_equal(tg_store_open(&s, path, &err), -1);
    assert_null(s);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "No such file"));
    free(err);

    assert_int_equal(tg_store_open(&s, f->arena_path, &err), -1); /* a file, not a directory */
    assert_non_null(strstr(err, "not a directory"));
    free(err);

    /* A database from a newer schema is refused with a clear message. */
    s = open_store(f);
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    tg_store_meta_put(b, s, TG_META_SCHEMA_VERSION, TG_SCHEMA_VERSION + 1);
    assert_int_equal(tg_store_commit(s, b, NULL), 0);
    rocksdb_writebatch_destroy(b);
    tg_store_close(s);
    s = NULL;
    assert_int_equal(tg_store_open(&s, f->dir, &err), -1);
    assert_non_null(strstr(err, "newer"));
    free(err);
}

static void test_open_records_schema_and_families(void **state)
{
    fx_t *f = *state;
    tg_store_t *s = open_store(f);
    uint64_t v = 0;
    assert_int_equal(tg_store_meta_get(s, TG_META_SCHEMA_VERSION, &v), 1);
    assert_int_equal(v, TG_SCHEMA_VERSION);
    tg_store_close(s);
    /* Every family exists on disk, so a second open (which lists them) works. */
    rocksdb_options_t *o = rocksdb_options_create();
    size_t n = 0;
    char *err = NULL, path[128];
    snprintf(path, sizeof(path), "%s/db", f->dir);
    char **names = rocksdb_list_column_families(o, path, &n, &err);
    assert_null(err);
    assert_int_equal(n, TG_CF_COUNT);
    rocksdb_list_column_families_destroy(names, n);
    rocksdb_options_destroy(o);
    s = open_store(f);
    tg_store_close(s);
}

/* ---- bootstrap ---- */

static void test_bootstrap_env_key(void **state)
{
    fx_t *f = *state;
    tg_store_t *s = open_bootstrapped(f);

    json_t *root = tg_store_json_get(s, TG_CF_ACCOUNTS, TG_ROOT_ID);
    assert_non_null(root);
    assert_string_equal(tg_rec_str(root, "Name", ""), "root");
    assert_string_equal(tg_rec_str(root, "DNA", ""), ".1.");
    assert_int_equal(tg_rec_u64(root, "OwnerID", 0), 1);
    assert_int_equal(tg_rec_u64(root, "ParentID", 9), 0);
    assert_int_equal(tg_rec_i64(root, "Level", 0), 1);
    assert_true(tg_rec_bool(root, "Status", 0));
    assert_string_equal(tg_rec_str(root, "PartialKey", ""), ROOT_KEY + strlen(ROOT_KEY) - 20);
    uint8_t hash[32];
    char hex[65];
    tg_key_hash(ROOT_KEY, strlen(ROOT_KEY), hash);
    tg_hex(hash, 32, hex);
    assert_string_equal(tg_rec_str(root, "KeyHash", ""), hex);
    assert_true(strlen(tg_rec_str(root, "CreatedAt", "")) == 20);
    json_decref(root);

    /* The key index resolves the key; another key does not. */
    json_t *by_key = tg_acctrec_by_key(s, ROOT_KEY, strlen(ROOT_KEY));
    assert_non_null(by_key);
    assert_int_equal(tg_rec_u64(by_key, "ID", 0), 1);
    json_decref(by_key);
    assert_null(tg_acctrec_by_key(s, "sk-Xvsnope", 10));

    /* Upstream keys 1 and 2, sealed; the counters are set. */
    json_t *up = tg_store_json_get(s, TG_CF_UPSTREAMS, 2);
    assert_non_null(up);
    assert_string_equal(tg_rec_str(up, "Provider", ""), "https://api.anthropic.com");
    assert_string_equal(tg_rec_str(up, "Protocol", ""), "anthropic");
    assert_int_equal(tg_rec_i64(up, "Level", 0), 2);
    const char *sealed_hex = tg_rec_str(up, "Sealed", "");
    char *text = json_dumps(up, JSON_COMPACT);
    assert_null(strstr(text, "SECRET"));
    free(text);
    uint8_t sealed[TG_SEALED_MAX];
    int n = tg_unhex(sealed_hex, strlen(sealed_hex), sealed, sizeof(sealed));
    assert_true(n > 0);
    char plain[TG_SEALED_MAX];
    assert_int_equal(tg_unseal(f->mk, sealed, (size_t)n, plain, sizeof(plain)), (int)strlen(SECRET2));
    assert_string_equal(plain, SECRET2);
    json_decref(up);
    uint64_t next = 0;
    assert_int_equal(tg_store_meta_get(s, TG_META_NEXT_ACCOUNT_ID, &next), 1);
    assert_int_equal(next, 2);
    assert_int_equal(tg_store_meta_get(s, TG_META_NEXT_UPSTREAM_ID, &next), 1);
    assert_int_equal(next, 3);
    tg_store_close(s);

    /* root.key: the key, mode 0600. */
    struct stat st;
    assert_int_equal(stat(f->key_file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char buf[128] = {0};
    FILE *fp = fopen(f->key_file, "r");
    assert_non_null(fp);
    assert_non_null(fgets(buf, sizeof(buf), fp));
    fclose(fp);
    assert_string_equal(buf, ROOT_KEY "\n");
}

static void test_bootstrap_bad_env_key(void **state)
{
    fx_t *f = *state;
    setenv("TOLLGATE_ROOT_KEY", "sk-Xvs-too-short-secretvalue", 1);
    tg_store_t *s = open_store(f);
    char *err = NULL;
    assert_int_equal(tg_store_bootstrap(s, &f->cfg, f->mk, &err), -1);
    assert_non_null(strstr(err, "TOLLGATE_ROOT_KEY"));
    assert_null(strstr(err, "secretvalue"));
    free(err);
    assert_null(tg_store_json_get(s, TG_CF_ACCOUNTS, TG_ROOT_ID));
    assert_int_equal(access(f->key_file, F_OK), -1);
    tg_store_close(s);
}

static void test_bootstrap_idempotent(void **state)
{
    fx_t *f = *state;
    unsetenv("TOLLGATE_ROOT_KEY"); /* generated key */
    tg_store_t *s = open_bootstrapped(f);
    json_t *first = tg_store_json_get(s, TG_CF_ACCOUNTS, TG_ROOT_ID);
    assert_non_null(first);
    char *first_text = json_dumps(first, JSON_COMPACT);
    char key[TG_KEY_LEN + 2] = {0};
    FILE *fp = fopen(f->key_file, "r");
    assert_non_null(fp);
    assert_non_null(fgets(key, sizeof(key), fp));
    fclose(fp);
    assert_true(tg_key_is_valid(key, TG_KEY_LEN));

    /* Again, in the same session and after a reopen, even with another env key: nothing changes. */
    char *err = NULL;
    assert_int_equal(tg_store_bootstrap(s, &f->cfg, f->mk, &err), 0);
    tg_store_close(s);
    setenv("TOLLGATE_ROOT_KEY", ROOT_KEY, 1);
    s = open_bootstrapped(f);
    json_t *again = tg_store_json_get(s, TG_CF_ACCOUNTS, TG_ROOT_ID);
    char *again_text = json_dumps(again, JSON_COMPACT);
    assert_string_equal(first_text, again_text);
    assert_int_equal(count_cf(s, TG_CF_ACCOUNTS), 1);
    assert_int_equal(count_cf(s, TG_CF_UPSTREAMS), 2);
    json_t *by_key = tg_acctrec_by_key(s, key, TG_KEY_LEN);
    assert_non_null(by_key);
    json_decref(by_key);
    free(first_text);
    free(again_text);
    json_decref(first);
    json_decref(again);
    tg_store_close(s);
}

static void test_bootstrap_reuses_leftover_key_file(void **state)
{
    fx_t *f = *state;
    /* A key file left by an interrupted first start is reused, not replaced. */
    unsetenv("TOLLGATE_ROOT_KEY");
    FILE *fp = fopen(f->key_file, "w");
    assert_non_null(fp);
    fprintf(fp, "%s\n", ROOT_KEY);
    fclose(fp);
    tg_store_t *s = open_bootstrapped(f);
    json_t *acct = tg_acctrec_by_key(s, ROOT_KEY, strlen(ROOT_KEY));
    assert_non_null(acct);
    json_decref(acct);
    tg_store_close(s);

    /* A key file holding another key than the env's is refused on an empty database. */
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    assert_int_equal(mkdir(f->dir, 0700), 0);
    fp = fopen(f->key_file, "w");
    assert_non_null(fp);
    fprintf(fp, "sk-XvsZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ\n");
    fclose(fp);
    setenv("TOLLGATE_ROOT_KEY", ROOT_KEY, 1);
    s = open_store(f);
    char *err = NULL;
    assert_int_equal(tg_store_bootstrap(s, &f->cfg, f->mk, &err), -1);
    assert_non_null(strstr(err, "already exists"));
    assert_null(strstr(err, ROOT_KEY));
    free(err);
    tg_store_close(s);
}

/* ---- publish ---- */

static void test_publish(void **state)
{
    fx_t *f = *state;
    /* A stale account the database does not know sits in slot 5 (a previous run's). */
    tg_account_settings_t stale = {.id = 99, .flags = TG_ACCT_ENABLED, .name = "ghost"};
    tg_key_hash("sk-ghost", 8, stale.key_hash);
    assert_int_equal(tg_account_publish(&f->arena, 5, &stale), 0);

    tg_store_t *s = open_bootstrapped(f);
    assert_int_equal(atomic_load(&f->arena.hdr->persister_ready), 0);
    assert_int_equal(tg_store_publish_all(s, &f->arena), 0);
    assert_int_equal(atomic_load(&f->arena.hdr->persister_ready), 1);

    int64_t slot = root_slot(f);
    assert_true(slot >= 0);
    tg_account_settings_t st;
    assert_int_equal(tg_account_read(&f->arena, (uint32_t)slot, &st), 0);
    assert_int_equal(st.id, 1);
    assert_int_equal(st.owner_id, 1);
    assert_int_equal(st.flags & (TG_ACCT_ROOT | TG_ACCT_OWNER | TG_ACCT_ENABLED), TG_ACCT_ROOT | TG_ACCT_OWNER | TG_ACCT_ENABLED);
    assert_string_equal(st.name, "root");
    assert_true(atomic_load(&f->arena.accounts[slot].balance) == INT64_MAX / 4);
    assert_int_equal(tg_account_read(&f->arena, 5, &st), -1); /* stale slot freed */
    uint8_t ghost[32];
    tg_key_hash("sk-ghost", 8, ghost);
    assert_int_equal(tg_account_lookup(&f->arena, ghost), -1);

    /* Upstream keys: settings and a sealed secret that opens to the plaintext. */
    int found = 0;
    for (uint32_t i = 0; i < tg_upstream_count(&f->arena); i++) {
        tg_upstream_settings_t u;
        if (tg_upstream_read(&f->arena, i, &u) != 0)
            continue;
        found++;
        char plain[TG_SEALED_MAX];
        assert_true(tg_unseal(f->mk, u.sealed, u.sealed_len, plain, sizeof(plain)) > 0);
        if (u.id == 1) {
            assert_string_equal(u.url, "https://api.openai.com");
            assert_int_equal(u.level, 1);
            assert_int_equal(u.protocol, TG_PROTO_OPENAI);
            assert_string_equal(plain, SECRET1);
            assert_true(u.flags & TG_UPSTREAM_ENABLED);
        } else {
            assert_int_equal(u.id, 2);
            assert_int_equal(u.protocol, TG_PROTO_ANTHROPIC);
            assert_string_equal(plain, SECRET2);
        }
    }
    assert_int_equal(found, 2);
    tg_store_close(s);

    /* A restarted persister keeps every id in the slot it had. */
    s = open_store(f);
    assert_int_equal(tg_store_publish_all(s, &f->arena), 0);
    assert_int_equal(root_slot(f), slot);
    tg_store_close(s);
}

/* ---- drain ---- */

static void test_drain_folds_and_advances(void **state)
{
    fx_t *f = *state;
    tg_store_t *s = open_bootstrapped(f);
    assert_int_equal(tg_store_publish_all(s, &f->arena), 0);
    int64_t slot = root_slot(f);
    const int n = 300;
    int64_t total_cost = 0;
    for (int i = 0; i < n; i++) {
        char rid[32];
        snprintf(rid, sizeof(rid), "req-%04d", i);
        uint64_t ts = DAY1_MS + (i % 2 ? DAY_MS : 0) + (uint64_t)i;
        int64_t cost = 1000 + i;
        push_usage(&f->arena, rid, ts, 1, i % 3 ? "gpt-4o" : "claude-3-5-sonnet", 10, 20, 5, cost);
        atomic_fetch_add(&f->arena.accounts[slot].spent, cost); /* what a worker does at settle */
        total_cost += cost;
    }
    /* Small batches: the same roll-up rows are read and added to across batches. */
    size_t drained = 0, sum = 0;
    do {
        assert_int_equal(tg_store_drain(s, &f->arena, 64, &drained), 0);
        sum += drained;
    } while (drained > 0);
    assert_int_equal(sum, n);
    assert_int_equal(tg_ring_tail(&f->arena), n);
    assert_int_equal(tg_ring_used(&f->arena), 0);
    assert_int_equal(count_cf(s, TG_CF_USAGE), n);

    /* Roll-ups: per (account, day, model); the four combinations add up to the whole. */
    tg_rollup_t all = {0};
    const char *days[] = {"2024-03-01", "2024-03-02"}, *models[] = {"gpt-4o", "claude-3-5-sonnet"};
    for (int d = 0; d < 2; d++)
        for (int m = 0; m < 2; m++) {
            tg_rollup_t r = read_rollup(s, 1, days[d], models[m]);
            assert_true(r.requests > 0);
            assert_int_equal(r.prompt, r.requests * 10);
            assert_int_equal(r.completion, r.requests * 20);
            assert_int_equal(r.cached, r.requests * 5);
            tg_rollup_add(&all, &r);
        }
    assert_int_equal(all.requests, n);
    assert_true(all.cost_nanos == total_cost);
    /* Exact split: even i are on day 1; i % 3 == 0 are claude. */
    tg_rollup_t claude1 = read_rollup(s, 1, "2024-03-01", "claude-3-5-sonnet");
    int expect = 0;
    for (int i = 0; i < n; i += 2)
        expect += i % 3 == 0;
    assert_int_equal(claude1.requests, expect);

    /* The account's counters and the arena's credit bookkeeping. */
    json_t *root = tg_store_json_get(s, TG_CF_ACCOUNTS, 1);
    assert_true(tg_rec_i64(root, "CreditUsed", 0) == total_cost);
    assert_int_equal(tg_rec_i64(root, "Requests", 0), n);
    json_decref(root);
    assert_true(atomic_load(&f->arena.accounts[slot].spent) == 0);
    assert_true(atomic_load(&f->arena.accounts[slot].balance) == INT64_MAX / 4);
    uint64_t cursor = 0;
    assert_int_equal(tg_store_meta_get(s, TG_META_RING_CURSOR, &cursor), 1);
    assert_int_equal(cursor, n);

    /* The raw record is stored as pushed. */
    uint8_t key[TG_USAGE_KEY_MAX];
    size_t klen = tg_usage_key(key, DAY1_MS + DAY_MS + 7, "req-0007", 8), vlen = 0;
    char *err = NULL;
    char *v = tg_store_get(s, TG_CF_USAGE, key, klen, &vlen, &err);
    assert_non_null(v);
    tg_usage_t u;
    assert_int_equal(tg_usage_decode((const uint8_t *)v, vlen, &u), 0);
    assert_string_equal(u.request_id, "req-0007");
    assert_int_equal(u.cost_nanos, 1007);
    rocksdb_free(v);
    tg_store_close(s);
}

static void test_drain_skips_bad_record(void **state)
{
    fx_t *f = *state;
    tg_store_t *s = open_bootstrapped(f);
    push_usage(&f->arena, "good-1", DAY1_MS, 1, "m", 1, 1, 0, 10);
    assert_int_equal(tg_ring_push(&f->arena, "\xc1garbage", 8), TG_RING_OK);
    push_usage(&f->arena, "good-2", DAY1_MS, 1, "m", 1, 1, 0, 10);
    size_t drained = 0;
    assert_int_equal(tg_store_drain(s, &f->arena, 100, &drained), 0);
    assert_int_equal(drained, 3);
    assert_int_equal(tg_ring_tail(&f->arena), 3);
    assert_int_equal(count_cf(s, TG_CF_USAGE), 2);
    assert_int_equal(read_rollup(s, 1, "2024-03-01", "m").requests, 2);
    assert_int_equal(tg_store_drain(s, &f->arena, 100, &drained), 0);
    assert_int_equal(drained, 0);
    tg_store_close(s);
}

static void test_drain_crash_between_commit_and_release(void **state)
{
    fx_t *f = *state;
    tg_store_t *s = open_bootstrapped(f);
    assert_int_equal(tg_store_publish_all(s, &f->arena), 0);
    int64_t slot = root_slot(f);
    const int n = 50;
    for (int i = 0; i < n; i++) {
        char rid[32];
        snprintf(rid, sizeof(rid), "crash-%d", i);
        push_usage(&f->arena, rid, DAY1_MS + (uint64_t)i, 1, "gpt-4o", 1, 2, 0, 100);
        atomic_fetch_add(&f->arena.accounts[slot].spent, 100);
    }
    /* The persister commits a batch, then dies before releasing it. */
    size_t drained = 0;
    uint64_t end = 0;
    assert_int_equal(tg_drain_commit(s, &f->arena, 4096, &drained, &end), 0);
    assert_int_equal(drained, n);
    assert_int_equal(end, n);
    assert_int_equal(tg_ring_tail(&f->arena), 0);
    tg_store_close(s);

    /* Two more records arrive while no persister runs. */
    push_usage(&f->arena, "late-1", DAY1_MS + 1000, 1, "gpt-4o", 1, 2, 0, 100);
    push_usage(&f->arena, "late-2", DAY1_MS + 1001, 1, "gpt-4o", 1, 2, 0, 100);
    atomic_fetch_add(&f->arena.accounts[slot].spent, 200);

    /* The next persister releases the stored batch instead of storing it again. */
    s = open_store(f);
    assert_int_equal(tg_store_publish_all(s, &f->arena), 0);
    assert_int_equal(tg_store_drain(s, &f->arena, 4096, &drained), 0);
    assert_int_equal(drained, 2); /* only the new ones */
    assert_int_equal(tg_ring_tail(&f->arena), n + 2);
    assert_int_equal(count_cf(s, TG_CF_USAGE), n + 2);
    tg_rollup_t r = read_rollup(s, 1, "2024-03-01", "gpt-4o");
    assert_int_equal(r.requests, n + 2);
    assert_int_equal(r.cost_nanos, 100 * (n + 2));
    json_t *root = tg_store_json_get(s, TG_CF_ACCOUNTS, 1);
    assert_int_equal(tg_rec_i64(root, "Requests", 0), n + 2);
    json_decref(root);
    assert_true(atomic_load(&f->arena.accounts[slot].spent) == 0);
    tg_store_close(s);
}

/* Orphan records (shm/flight.h) are stored only when no record has their key: not when the worker
 * pushed the real one before it died (in an earlier batch, or earlier in the ring than the orphan
 * would be in the same batch), nor twice when a reaper died and another pushed it again. Every
 * record's cost leaves `spent`, the skipped ones' included (their producer added it there). */
static void test_drain_orphans_stored_once(void **state)
{
    fx_t *f = *state;
    tg_store_t *s = open_bootstrapped(f);
    assert_int_equal(tg_store_publish_all(s, &f->arena), 0);
    int64_t slot = root_slot(f);
    const uint32_t O = TG_USAGE_ORPHAN | TG_USAGE_ESTIMATED;
    _Atomic int64_t *spent = &f->arena.accounts[slot].spent;
    push_usage(&f->arena, "r1", DAY1_MS + 1, 1, "m", 10, 20, 0, 100); /* a worker's record, drained first */
    atomic_fetch_add(spent, 100);
    size_t drained = 0;
    assert_int_equal(tg_store_drain(s, &f->arena, 4096, &drained), 0);
    assert_int_equal(drained, 1);

    push_flagged(&f->arena, "r1", DAY1_MS + 1, 1, "m", 30, 40, 0, 500, O); /* its worker died before freeing the entry */
    push_flagged(&f->arena, "r2", DAY1_MS + 2, 1, "m", 30, 40, 0, 300, O); /* really in flight */
    push_flagged(&f->arena, "r2", DAY1_MS + 2, 1, "m", 30, 40, 0, 300, O); /* again, by a second reaper */
    push_usage(&f->arena, "r3", DAY1_MS + 3, 1, "m", 10, 20, 0, 50);
    push_flagged(&f->arena, "r3", DAY1_MS + 3, 1, "m", 30, 40, 0, 400, O); /* twin of the record just before */
    push_flagged(&f->arena, "r4", DAY1_MS + 3, 1, "m", 30, 40, 0, 700, O); /* another request, same millisecond */
    atomic_fetch_add(spent, 500 + 300 + 300 + 50 + 400 + 700);
    /* one call: the batch cut before the r3 orphan is followed at once by the next */
    assert_int_equal(tg_store_drain(s, &f->arena, 4096, &drained), 0);
    assert_int_equal(drained, 6);
    assert_int_equal(tg_ring_used(&f->arena), 0);
    assert_int_equal(count_cf(s, TG_CF_USAGE), 4); /* r1, r2, r3, r4 */
    tg_rollup_t r = read_rollup(s, 1, "2024-03-01", "m");
    assert_int_equal(r.requests, 4);
    assert_int_equal(r.cost_nanos, 100 + 300 + 50 + 700);
    json_t *root = tg_store_json_get(s, TG_CF_ACCOUNTS, 1);
    assert_int_equal(tg_rec_i64(root, "CreditUsed", 0), 100 + 300 + 50 + 700);
    json_decref(root);
    assert_true(atomic_load(spent) == 0);

    /* the stored r1 and r3 are the workers' own, r2 the first orphan */
    const char *rids[] = {"r1", "r2", "r3"};
    const int64_t costs[] = {100, 300, 50};
    for (int i = 0; i < 3; i++) {
        uint8_t key[TG_USAGE_KEY_MAX];
        size_t klen = tg_usage_key(key, DAY1_MS + 1 + (uint64_t)i, rids[i], 2), vlen = 0;
        char *err = NULL;
        char *v = tg_store_get(s, TG_CF_USAGE, key, klen, &vlen, &err);
        assert_non_null(v);
        tg_usage_t u;
        assert_int_equal(tg_usage_decode((const uint8_t *)v, vlen, &u), 0);
        assert_true(u.cost_nanos == costs[i]);
        assert_int_equal((u.flags & TG_USAGE_ORPHAN) != 0, i == 1);
        rocksdb_free(v);
    }
    tg_store_close(s);
}

/* A record that bills an Assistants run (store/run_once.h) of account 1, 3 + 4 tokens. */
static void push_run(tg_arena_t *a, const char *rid, uint64_t ts, const char *run, int64_t cost)
{
    tg_usage_t u = {.ts_ms = ts, .account_id = 1, .upstream_id = 1, .status = 200, .prompt_tokens = 3, .completion_tokens = 4,
                    .cost_nanos = cost};
    snprintf(u.request_id, sizeof(u.request_id), "%s", rid);
    snprintf(u.model, sizeof(u.model), "gpt-4o-mini");
    snprintf(u.path, sizeof(u.path), "/v1/threads/t/runs/%s", run);
    snprintf(u.run_id, sizeof(u.run_id), "%s", run);
    uint8_t buf[TG_RING_PAYLOAD];
    int n = tg_usage_encode(&u, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(tg_ring_push(a, buf, (size_t)n), TG_RING_OK);
}

/* The stored record of RID at TS. */
static tg_usage_t stored_usage(tg_store_t *s, const char *rid, uint64_t ts)
{
    uint8_t key[TG_USAGE_KEY_MAX];
    size_t klen = tg_usage_key(key, ts, rid, strlen(rid)), vlen = 0;
    char *err = NULL;
    char *v = tg_store_get(s, TG_CF_USAGE, key, klen, &vlen, &err);
    assert_non_null(v);
    tg_usage_t u;
    assert_int_equal(tg_usage_decode((const uint8_t *)v, vlen, &u), 0);
    rocksdb_free(v);
    return u;
}

static int64_t credit_used(tg_store_t *s)
{
    json_t *root = tg_store_json_get(s, TG_CF_ACCOUNTS, 1);
    int64_t v = tg_rec_i64(root, "CreditUsed", 0);
    json_decref(root);
    return v;
}

/* Each run is billed by its first record only: a later one in the same batch, in a later batch,
 * or after a crash between commit and release is stored with no tokens and no cost, flagged; the
 * workers' `spent` is always given back in full. */
static void test_drain_runs_billed_once(void **state)
{
    fx_t *f = *state;
    tg_store_t *s = open_bootstrapped(f);
    assert_int_equal(tg_store_publish_all(s, &f->arena), 0);
    _Atomic int64_t *spent = &f->arena.accounts[root_slot(f)].spent;
    push_run(&f->arena, "q1", DAY1_MS + 1, "run_A", 100);
    push_run(&f->arena, "q2", DAY1_MS + 2, "run_A", 100); /* polled again, same batch */
    push_run(&f->arena, "q3", DAY1_MS + 3, "run_B", 70);
    push_usage(&f->arena, "q4", DAY1_MS + 4, 1, "gpt-4o-mini", 1, 1, 0, 5);
    atomic_fetch_add(spent, 100 + 100 + 70 + 5);
    size_t drained = 0;
    assert_int_equal(tg_store_drain(s, &f->arena, 4096, &drained), 0);
    assert_int_equal(drained, 4);
    assert_int_equal(count_cf(s, TG_CF_USAGE), 4);
    assert_true(credit_used(s) == 175);
    assert_true(atomic_load(spent) == 0);
    tg_rollup_t r = read_rollup(s, 1, "2024-03-01", "gpt-4o-mini");
    assert_int_equal(r.requests, 4);
    assert_int_equal(r.prompt, 3 + 3 + 1);
    assert_true(r.cost_nanos == 175);
    tg_usage_t u = stored_usage(s, "q1", DAY1_MS + 1);
    assert_true(u.cost_nanos == 100 && u.prompt_tokens == 3 && !(u.flags & TG_USAGE_RUN_REPEAT));
    u = stored_usage(s, "q2", DAY1_MS + 2);
    assert_true(u.cost_nanos == 0 && u.prompt_tokens == 0 && u.completion_tokens == 0 && (u.flags & TG_USAGE_RUN_REPEAT));
    assert_string_equal(u.run_id, "run_A");
    uint64_t who = 0;
    assert_int_equal(tg_store_meta_get(s, "run:run_A", &who), 1);
    assert_int_equal(who, 1);

    /* a later batch */
    push_run(&f->arena, "q5", DAY1_MS + 5, "run_A", 100);
    atomic_fetch_add(spent, 100);
    assert_int_equal(tg_store_drain(s, &f->arena, 4096, &drained), 0);
    assert_int_equal(drained, 1);
    assert_true(credit_used(s) == 175);
    assert_true(atomic_load(spent) == 0);
    assert_true(stored_usage(s, "q5", DAY1_MS + 5).flags & TG_USAGE_RUN_REPEAT);

    /* a persister that dies between commit and release; the next one resumes */
    push_run(&f->arena, "q6", DAY1_MS + 6, "run_B", 70);
    push_run(&f->arena, "q7", DAY1_MS + 7, "run_C", 30);
    atomic_fetch_add(spent, 70 + 30);
    uint64_t end = 0;
    assert_int_equal(tg_drain_commit(s, &f->arena, 4096, &drained, &end), 0);
    assert_int_equal(drained, 2);
    tg_store_close(s);
    s = open_store(f);
    assert_int_equal(tg_store_publish_all(s, &f->arena), 0);
    push_run(&f->arena, "q8", DAY1_MS + 8, "run_C", 30);
    atomic_fetch_add(spent, 30);
    assert_int_equal(tg_store_drain(s, &f->arena, 4096, &drained), 0);
    assert_int_equal(drained, 1);
    assert_true(credit_used(s) == 175 + 30);
    assert_true(atomic_load(spent) == 0);
    assert_true(stored_usage(s, "q6", DAY1_MS + 6).flags & TG_USAGE_RUN_REPEAT);
    assert_true(stored_usage(s, "q7", DAY1_MS + 7).cost_nanos == 30);
    assert_true(stored_usage(s, "q8", DAY1_MS + 8).flags & TG_USAGE_RUN_REPEAT);
    tg_store_close(s);
}

static void test_drain_cursor_of_another_arena_is_ignored(void **state)
{
    fx_t *f = *state;
    tg_store_t *s = open_bootstrapped(f);
    for (int i = 0; i < 5; i++) {
        char rid[16];
        snprintf(rid, sizeof(rid), "a-%d", i);
        push_usage(&f->arena, rid, DAY1_MS, 1, "m", 1, 1, 0, 1);
    }
    size_t drained = 0;
    assert_int_equal(tg_store_drain(s, &f->arena, 100, &drained), 0);
    assert_int_equal(drained, 5);
    tg_store_close(s);

    /* The arena is recreated (say, resized): its ring restarts at 0, below the stored cursor 5. */
    tg_arena_close(&f->arena);
    unlink(f->arena_path);
    tg_arena_sizes_t sizes = {1024, 64, 1024};
    int created = 0;
    char *err = NULL;
    struct timespec ms = {0, 2000000};
    nanosleep(&ms, NULL); /* a distinct created_ms */
    assert_int_equal(tg_arena_open(&f->arena, f->arena_path, &sizes, &created, &err), 0);
    push_usage(&f->arena, "b-0", DAY1_MS, 1, "m", 1, 1, 0, 1);
    s = open_store(f);
    assert_int_equal(tg_store_drain(s, &f->arena, 100, &drained), 0);
    assert_int_equal(drained, 1); /* stored, not mistaken for an already-stored record */
    assert_int_equal(count_cf(s, TG_CF_USAGE), 6);
    tg_store_close(s);
}

/* Claims the next ring position as a producer that never publishes, with producer pid PID. */
static void claim_without_publish(tg_arena_t *a, int32_t pid)
{
    uint64_t pos = atomic_fetch_add(&a->hdr->ring_head, 1);
    a->ring[pos & (a->hdr->ring_slots - 1)].pid = pid;
}

static pid_t dead_pid(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    waitpid(pid, NULL, 0);
    return pid;
}

static void test_drain_skips_stuck_slot_after_timeout(void **state)
{
    fx_t *f = *state;
    tg_store_t *s = open_bootstrapped(f);
    tg_store_set_stuck_timeout(s, 100);
    push_usage(&f->arena, "before", DAY1_MS, 1, "m", 1, 1, 0, 1);
    claim_without_publish(&f->arena, dead_pid());
    push_usage(&f->arena, "after", DAY1_MS, 1, "m", 1, 1, 0, 1);

    size_t drained = 0;
    assert_int_equal(tg_store_drain(s, &f->arena, 100, &drained), 0);
    assert_int_equal(drained, 1); /* up to the stuck slot */
    assert_int_equal(tg_ring_tail(&f->arena), 1);
    assert_int_equal(tg_store_drain(s, &f->arena, 100, &drained), 0);
    assert_int_equal(drained, 0); /* stuck, but not for long enough yet */
    assert_int_equal(tg_ring_tail(&f->arena), 1);
    struct timespec t = {0, 150 * 1000000};
    nanosleep(&t, NULL);
    assert_int_equal(tg_store_drain(s, &f->arena, 100, &drained), 0);
    assert_int_equal(drained, 1); /* skipped, then "after" */
    assert_int_equal(tg_ring_tail(&f->arena), 3);
    assert_int_equal(atomic_load(&f->arena.hdr->ring_skipped), 1);
    assert_int_equal(count_cf(s, TG_CF_USAGE), 2);

    /* A live producer mid-write (PENDING) is waited for, never skipped. */
    claim_without_publish(&f->arena, (int32_t)getpid());
    nanosleep(&t, NULL);
    assert_int_equal(tg_store_drain(s, &f->arena, 100, &drained), 0);
    assert_int_equal(tg_store_drain(s, &f->arena, 100, &drained), 0);
    assert_int_equal(drained, 0);
    assert_int_equal(tg_ring_tail(&f->arena), 3);
    tg_store_close(s);
}

/* ---- secrets at rest ---- */

static int file_contains(const char *path, const char *needle)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    struct stat st;
    fstat(fd, &st);
    int found = 0;
    if (st.st_size > 0) {
        char *buf = malloc((size_t)st.st_size);
        ssize_t n = read(fd, buf, (size_t)st.st_size);
        found = n > 0 && memmem(buf, (size_t)n, needle, strlen(needle)) != NULL;
        free(buf);
    }
    close(fd);
    return found;
}

static const char *g_needle;
static int g_hits, g_files;
static int scan_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag == FTW_F && S_ISREG(st->st_mode)) {
        g_files++;
        g_hits += file_contains(path, g_needle);
    }
    return 0;
}

static void test_secrets_sealed_at_rest(void **state)
{
    fx_t *f = *state;
    tg_store_t *s = open_bootstrapped(f);
    assert_int_equal(tg_store_publish_all(s, &f->arena), 0);
    tg_store_close(s);
    char db[128];
    snprintf(db, sizeof(db), "%s/db", f->dir);
    const char *needles[] = {SECRET1, SECRET2, ROOT_KEY};
    for (size_t i = 0; i < 3; i++) {
        g_needle = needles[i];
        g_hits = g_files = 0;
        assert_int_equal(nftw(db, scan_entry, 16, FTW_PHYS), 0);
        assert_true(g_files > 0);
        assert_int_equal(g_hits, 0);
    }
    /* The providers' URLs are there (the scan itself works). */
    g_needle = "https://api.anthropic.com";
    g_hits = 0;
    assert_int_equal(nftw(db, scan_entry, 16, FTW_PHYS), 0);
    assert_true(g_hits > 0);
}

/* ---- the persister process, end to end over its unix socket ---- */

static volatile sig_atomic_t g_stop;
static void on_term(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* Sends REQUEST on a new connection to PATH and reads the whole answer into BUF. */
static int http_exchange(const char *path, const char *request, char *buf, size_t cap)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    size_t len = strlen(request), off = 0;
    while (off < len) {
        ssize_t w = write(fd, request + off, len - off);
        assert_true(w > 0);
        off += (size_t)w;
    }
    size_t got = 0;
    for (ssize_t r; got < cap - 1 && (r = read(fd, buf + got, cap - 1 - got)) > 0;)
        got += (size_t)r;
    buf[got] = '\0';
    close(fd);
    return 0;
}

static void get(fx_t *f, const char *path, const char *auth_header, char *buf, size_t cap)
{
    char req[512];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n%s%sConnection: close\r\n\r\n", path,
             auth_header ? auth_header : "", auth_header ? "\r\n" : "");
    assert_int_equal(http_exchange(f->sock_path, req, buf, cap), 0);
}

static void test_persister_end_to_end(void **state)
{
    fx_t *f = *state;
    /* The persister runs in a fresh process (this binary, re-executed), as under the master, which
     * never opens RocksDB itself: a child forked after RocksDB started its thread pool would
     * inherit a pool without threads. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/proc/self/exe", "test_store", "--run-persister", f->dir, (char *)NULL);
        _exit(127);
    }
    /* Wait until it has published (it listens before that) and the socket accepts. */
    char buf[8192];
    for (int i = 0; i < 500 && atomic_load(&f->arena.hdr->persister_ready) != 1; i++) {
        struct timespec t = {0, 10 * 1000000};
        nanosleep(&t, NULL);
    }
    assert_int_equal(atomic_load(&f->arena.hdr->persister_ready), 1);
    int probe = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un psa = {.sun_family = AF_UNIX};
    snprintf(psa.sun_path, sizeof(psa.sun_path), "%s", f->sock_path);
    assert_int_equal(connect(probe, (struct sockaddr *)&psa, sizeof(psa)), 0);
    close(probe);
    struct stat st;
    assert_int_equal(stat(f->sock_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    get(f, "/dashboard/status", "Authorization: Bearer " ROOT_KEY, buf, sizeof(buf));
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    assert_non_null(strstr(buf, "application/json"));
    assert_non_null(strstr(buf, "\"object\":\"user_status\""));
    assert_non_null(strstr(buf, "\"id\":1,"));
    assert_non_null(strstr(buf, "\"dna\":\".1.\""));
    assert_non_null(strstr(buf, "\"name\":\"root\""));
    assert_non_null(strstr(buf, "\"alias\":\"root\""));
    assert_non_null(strstr(buf, "\"email\":\"\""));
    char expect[64];
    snprintf(expect, sizeof(expect), "\"public_key\":\"%s\"", ROOT_KEY + strlen(ROOT_KEY) - 20);
    assert_non_null(strstr(buf, expect));
    assert_non_null(strstr(buf, "\"balance\":0"));
    assert_non_null(strstr(buf, "\"manage\":true"));
    assert_non_null(strstr(buf, "\"admin\":true"));
    assert_null(strstr(buf, ROOT_KEY)); /* only the partial key */

    get(f, "/dashboard/x-user-status?x=1", "Authorization: " ROOT_KEY, buf, sizeof(buf)); /* bare key, alias path */
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    get(f, "/dashboard/status", "x-api-key: " ROOT_KEY, buf, sizeof(buf));
    assert_non_null(strstr(buf, "HTTP/1.1 200"));

    const char *wrong = "sk-XvsWRONGWRONGWRONGWRONGWRONGWRONGWRONGWRONGWRONGW";
    char hdr[128];
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", wrong);
    get(f, "/dashboard/status", hdr, buf, sizeof(buf));
    assert_non_null(strstr(buf, "HTTP/1.1 401"));
    assert_non_null(strstr(buf, "\"code\":\"invalid_api_key\""));
    assert_null(strstr(buf, "WRONGWRONG"));
    get(f, "/dashboard/status", NULL, buf, sizeof(buf));
    assert_non_null(strstr(buf, "HTTP/1.1 401"));

    get(f, "/healthz", NULL, buf, sizeof(buf));
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    assert_non_null(strstr(buf, "{\"status\":\"ok\"}"));
    get(f, "/no/such/path", NULL, buf, sizeof(buf));
    assert_non_null(strstr(buf, "HTTP/1.1 404"));
    assert_non_null(strstr(buf, "\"error\":{"));
    assert_int_equal(http_exchange(f->sock_path,
                                   "POST /dashboard/status HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                                   buf, sizeof(buf)),
                     0);
    assert_non_null(strstr(buf, "HTTP/1.1 405"));
    /* Management bodies are capped at 1 MiB. */
    assert_int_equal(http_exchange(f->sock_path,
                                   "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\nConnection: close\r\n\r\n", buf,
                                   sizeof(buf)),
                     0);
    assert_non_null(strstr(buf, "HTTP/1.1 413"));

    /* Usage pushed while it runs is drained by the loop; what is pushed just before stop, at stop. */
    push_usage(&f->arena, "e2e-1", DAY1_MS, 1, "gpt-4o", 1, 1, 0, 5);
    for (int i = 0; i < 200 && tg_ring_tail(&f->arena) < 1; i++) {
        struct timespec t = {0, 5 * 1000000};
        nanosleep(&t, NULL);
    }
    assert_int_equal(tg_ring_tail(&f->arena), 1);
    for (int i = 0; i < 100; i++) {
        char rid[32];
        snprintf(rid, sizeof(rid), "e2e-stop-%d", i);
        push_usage(&f->arena, rid, DAY1_MS, 1, "gpt-4o", 1, 1, 0, 5);
    }
    /* A client that keeps its connection open (as a forwarding worker does) does not hold up the stop. */
    int idle = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un isa = {.sun_family = AF_UNIX};
    snprintf(isa.sun_path, sizeof(isa.sun_path), "%s", f->sock_path);
    assert_int_equal(connect(idle, (struct sockaddr *)&isa, sizeof(isa)), 0);
    const char *ka = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(idle, ka, strlen(ka)), (ssize_t)strlen(ka));
    size_t got = 0;
    while (got < sizeof(buf) - 1 && !strstr(buf, "\"ok\"}")) {
        ssize_t r = read(idle, buf + got, sizeof(buf) - 1 - got);
        assert_true(r > 0);
        got += (size_t)r;
        buf[got] = '\0';
    }
    assert_non_null(strstr(buf, "HTTP/1.1 200"));

    assert_int_equal(kill(pid, SIGTERM), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(access(f->sock_path, F_OK), -1); /* socket removed */
    assert_int_equal(tg_ring_used(&f->arena), 0);
    close(idle);

    tg_store_t *s = open_store(f); /* the database was closed cleanly and holds everything */
    assert_int_equal(count_cf(s, TG_CF_USAGE), 101);
    tg_store_close(s);
}

static void test_persister_refuses_unusable_data_dir(void **state)
{
    fx_t *f = *state;
    char missing[128];
    snprintf(missing, sizeof(missing), "%s/nope", f->dir);
    f->cfg.data_dir = missing;
    volatile sig_atomic_t stop = 0;
    tg_persister_args_t args = {&f->cfg, &f->arena, f->mk, f->sock_path, &stop};
    tg_log_init("persister", (tg_log_level_t)(TG_LOG_ERROR + 1)); /* quiet: the failure is the expected outcome */
    assert_int_equal(tg_persister_run(&args), 1);
    tg_log_init("test", TG_LOG_WARN);
    assert_int_equal(access(f->sock_path, F_OK), -1);
}

/* Child mode of test_persister_end_to_end: the persister for fixture directory DIR, stopped by
 * SIGTERM. Exits through exit() so that LeakSanitizer checks the persister too. */
static int run_persister(const char *dir)
{
    static fx_t f;
    fx_init(&f, dir);
    tg_log_init("persister", TG_LOG_WARN);
    struct sigaction sa = {.sa_handler = on_term};
    sigaction(SIGTERM, &sa, NULL);
    tg_persister_args_t args = {&f.cfg, &f.arena, f.mk, f.sock_path, &g_stop};
    int rc = tg_persister_run(&args);
    tg_arena_close(&f.arena);
    return rc;
}

int main(int argc, char **argv)
{
    setenv("TZ", "UTC", 1);
    tzset();
    if (argc == 3 && strcmp(argv[1], "--run-persister") == 0)
        return run_persister(argv[2]);
    tg_log_init("test", TG_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_records_schema_and_families, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap_env_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap_bad_env_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap_reuses_leftover_key_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_folds_and_advances, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_skips_bad_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_crash_between_commit_and_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_orphans_stored_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_runs_billed_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_cursor_of_another_arena_is_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_skips_stuck_slot_after_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_sealed_at_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persister_end_to_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persister_refuses_unusable_data_dir, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
