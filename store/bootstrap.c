/* First start of an empty database: the root account and the seeded upstream keys.
 *
 * Runs in the persister after tg_store_open, before publishing. It is idempotent: a database that
 * already has root is left alone (the config's keys are seeds only; later changes go through the
 * API). Crash safety: the root key file is written (temp file, fsync, link so an existing file is
 * never clobbered, fsync of the directory) before the database commit, and a leftover key file is
 * reused by the next attempt, so a crash between the two never loses a generated root key. The
 * database side is one synced WriteBatch: root, its key index entry, the upstream keys and the id
 * counters appear together or not at all. The root key is printed to stdout only when it was
 * generated, and never logged; provider secrets are sealed before they reach any record. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/keyhash.h"
#include "common/log.h"
#include "store/account_rec.h"
#include "store/store-i.h"
#include "store/upstream_rec.h"

#define ROOT_KEY_ENV "TOLLGATE_ROOT_KEY"

typedef enum { KEY_FROM_ENV, KEY_FROM_FILE, KEY_GENERATED } key_source_t;

/* Reads a key file: 1 and KEY filled when it holds a valid key, 0 when absent, -1 otherwise. */
static int read_key_file(const char *path, char key[TG_KEY_LEN + 1])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    char buf[128];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0)
        return -1;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    int ok = tg_key_is_valid(buf, (size_t)n);
    if (ok) {
        memcpy(key, buf, TG_KEY_LEN);
        key[TG_KEY_LEN] = '\0';
    }
    explicit_bzero(buf, sizeof(buf));
    return ok ? 1 : -1;
}

static void fsync_parent_dir(const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        if (fsync(fd) != 0)
            tg_warn("bootstrap: fsync of the directory of %s: %s", path, strerror(errno));
        close(fd);
    }
    free(copy);
}

/* Writes KEY to PATH (0600) without ever replacing an existing file: a temp file is fsynced and
 * then hard-linked into place, which fails atomically when PATH exists. An existing PATH that
 * already holds KEY is fine. */
static int write_key_file(const char *path, const char *key, char **err)
{
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0)
        return tg_store_fail(err, "out of memory");
    unlink(tmp);
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        tg_store_fail(err, "root key file %s: cannot create %s: %s", path, tmp, strerror(errno));
        goto done;
    }
    char line[TG_KEY_LEN + 2];
    memcpy(line, key, TG_KEY_LEN);
    line[TG_KEY_LEN] = '\n';
    int bad = fchmod(fd, 0600) != 0 || write(fd, line, TG_KEY_LEN + 1) != TG_KEY_LEN + 1 || fsync(fd) != 0;
    int werr = errno;
    explicit_bzero(line, sizeof(line));
    if (close(fd) != 0 && !bad) {
        bad = 1;
        werr = errno;
    }
    if (bad) {
        tg_store_fail(err, "root key file %s: cannot write %s: %s", path, tmp, strerror(werr));
        goto done;
    }
    if (link(tmp, path) != 0) {
        int lerr = errno;
        char have[TG_KEY_LEN + 1];
        if (lerr == EEXIST && read_key_file(path, have) == 1 && strcmp(have, key) == 0) {
            explicit_bzero(have, sizeof(have));
            rc = 0;
        } else if (lerr == EEXIST) {
            tg_store_fail(err, "root key file %s already exists and holds another key; move it away, or unset %s", path,
                          ROOT_KEY_ENV);
        } else {
            tg_store_fail(err, "root key file %s: %s", path, strerror(lerr));
        }
        goto done;
    }
    fsync_parent_dir(path);
    rc = 0;
done:
    unlink(tmp);
    free(tmp);
    return rc;
}

/* Chooses root's key: the environment, else a key file left by an interrupted bootstrap, else a new one. */
static int choose_root_key(const char *path, char key[TG_KEY_LEN + 1], key_source_t *src, char **err)
{
    const char *env = getenv(ROOT_KEY_ENV);
    if (env && *env) {
        if (!tg_key_is_valid(env, strlen(env)))
            return tg_store_fail(err, "%s is not a valid key: expected \"%s\" followed by 45 letters or digits (%d characters)",
                                 ROOT_KEY_ENV, TG_KEY_PREFIX, TG_KEY_LEN);
        memcpy(key, env, TG_KEY_LEN + 1);
        *src = KEY_FROM_ENV;
        return 0;
    }
    int have = read_key_file(path, key);
    if (have == 1) {
        *src = KEY_FROM_FILE;
        return 0;
    }
    if (have < 0)
        return tg_store_fail(err, "root key file %s exists but does not hold a valid key; move it away to let tollgate create one",
                             path);
    if (tg_key_generate(key) != 0)
        return tg_store_fail(err, "cannot generate the root key: random number generator failed");
    *src = KEY_GENERATED;
    return 0;
}

/* Fills BATCH with root, its key index entry, the seeded upstream keys and the id counters. */
static int fill_batch(rocksdb_writebatch_t *b, tg_store_t *s, const tg_config_t *cfg, const uint8_t *master_key, const char *key,
                      char **err)
{
    time_t now = time(NULL);
    tg_acctrec_init_t init = {.id = TG_ROOT_ID,
                              .parent_id = 0,
                              .owner_id = TG_ROOT_ID,
                              .name = "root",
                              .email = "",
                              .dna = ".1.",
                              .level = 1,
                              .rates = 1.0,
                              .factor = 1.0,
                              .key = key,
                              .key_len = TG_KEY_LEN};
    json_t *root = tg_acctrec_new(&init, now);
    if (root == NULL || tg_store_json_put(b, s, TG_CF_ACCOUNTS, TG_ROOT_ID, root) != 0) {
        json_decref(root);
        return tg_store_fail(err, "bootstrap: cannot build the root account record");
    }
    tg_acctrec_index_put(b, s, root);
    json_decref(root);
    uint8_t hash[32];
    tg_key_hash(key, TG_KEY_LEN, hash);
    tg_acctrec_put_keyhash(b, s, hash, TG_ROOT_ID);

    for (size_t i = 0; i < cfg->n_keys; i++) {
        char *why = NULL;
        json_t *up = tg_uprec_new(i + 1, TG_ROOT_ID, &cfg->keys[i], master_key, now, &why);
        if (up == NULL || tg_store_json_put(b, s, TG_CF_UPSTREAMS, i + 1, up) != 0) {
            tg_store_fail(err, "bootstrap: keys[%zu]: %s", i, why ? why : "cannot build the record");
            free(why);
            json_decref(up);
            return -1;
        }
        json_decref(up);
    }
    tg_store_meta_put(b, s, TG_META_NEXT_ACCOUNT_ID, TG_ROOT_ID + 1);
    tg_store_meta_put(b, s, TG_META_NEXT_UPSTREAM_ID, cfg->n_keys + 1);
    return 0;
}

int tg_store_bootstrap(tg_store_t *s, const tg_config_t *cfg, const uint8_t *master_key, char **err)
{
    if (err)
        *err = NULL;
    uint8_t root_id[8];
    tg_be64_put(root_id, TG_ROOT_ID);
    size_t len = 0;
    char *rerr = NULL;
    char *have = tg_store_get(s, TG_CF_ACCOUNTS, root_id, 8, &len, &rerr);
    if (rerr) {
        tg_store_fail(err, "bootstrap: cannot read the accounts: %s", rerr);
        rocksdb_free(rerr);
        return -1;
    }
    if (have) { /* not a first start */
        rocksdb_free(have);
        return 0;
    }

    char *path = NULL;
    if (cfg->bootstrap.root_key_file && *cfg->bootstrap.root_key_file)
        path = strdup(cfg->bootstrap.root_key_file);
    else if (asprintf(&path, "%s/root.key", s->data_dir) < 0)
        path = NULL;
    if (path == NULL)
        return tg_store_fail(err, "out of memory");

    char key[TG_KEY_LEN + 1];
    key_source_t src = KEY_GENERATED;
    rocksdb_writebatch_t *b = NULL;
    int rc = -1;
    if (choose_root_key(path, key, &src, err) != 0)
        goto done;
    if (write_key_file(path, key, err) != 0)
        goto done;
    b = rocksdb_writebatch_create();
    if (fill_batch(b, s, cfg, master_key, key, err) != 0)
        goto done;
    char *cerr = NULL;
    if (tg_store_commit(s, b, &cerr) != 0) {
        tg_store_fail(err, "bootstrap: writing the root account: %s", cerr ? cerr : "?");
        free(cerr);
        goto done;
    }
    if (src == KEY_GENERATED)
        printf("tollgate: root key: %s (saved to %s)\n", key, path);
    else if (src == KEY_FROM_ENV)
        printf("tollgate: root account created with the key from %s\n", ROOT_KEY_ENV);
    else
        printf("tollgate: root account created with the key in %s\n", path);
    fflush(stdout);
    tg_info("bootstrap: created the root account and %zu upstream key(s)", cfg->n_keys);
    rc = 0;
done:
    explicit_bzero(key, sizeof(key));
    if (b)
        rocksdb_writebatch_destroy(b);
    free(path);
    return rc;
}
