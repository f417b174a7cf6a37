/* Backup, restore and offline verification of the store (admin.h). */
#include "store/admin.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store-i.h"
#include "store/verify.h"

static int copy_file(const char *from, const char *to, mode_t mode, char **err)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return tg_store_fail(err, "%s: %s", from, strerror(errno));
    int outfd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (outfd < 0) {
        int e = errno;
        close(in);
        return tg_store_fail(err, "%s: %s", to, strerror(e));
    }
    char buf[65536];
    ssize_t n;
    int rc = 0;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        if (write(outfd, buf, (size_t)n) != n) {
            rc = tg_store_fail(err, "%s: %s", to, strerror(errno));
            break;
        }
    if (n < 0)
        rc = tg_store_fail(err, "%s: %s", from, strerror(errno));
    if (rc == 0 && fsync(outfd) != 0)
        rc = tg_store_fail(err, "%s: fsync: %s", to, strerror(errno));
    close(in);
    close(outfd);
    return rc;
}

static int copy_dir(const char *from, const char *to, char **err)
{
    if (mkdir(to, 0700) != 0)
        return tg_store_fail(err, "%s: %s", to, strerror(errno));
    DIR *d = opendir(from);
    if (d == NULL)
        return tg_store_fail(err, "%s: %s", from, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *a = NULL, *b = NULL;
        if (asprintf(&a, "%s/%s", from, e->d_name) < 0 || asprintf(&b, "%s/%s", to, e->d_name) < 0)
            rc = tg_store_fail(err, "out of memory");
        else
            rc = copy_file(a, b, 0600, err);
        free(a);
        free(b);
    }
    closedir(d);
    return rc;
}

int tg_admin_backup(const char *data_dir, const char *dir, FILE *out, char **err)
{
    struct stat st;
    if (stat(dir, &st) == 0)
        return tg_store_fail(err, "%s already exists; give a new directory", dir);
    tg_store_t *s = NULL;
    if (tg_store_open_readonly(&s, data_dir, err) != 0)
        return -1;
    int rc = -1;
    char *db = NULL, *mk_from = NULL, *mk_to = NULL;
    if (mkdir(dir, 0700) != 0) {
        tg_store_fail(err, "%s: %s", dir, strerror(errno));
        goto done;
    }
    if (asprintf(&db, "%s/db", dir) < 0 || asprintf(&mk_from, "%s/master.key", data_dir) < 0 ||
        asprintf(&mk_to, "%s/master.key", dir) < 0) {
        tg_store_fail(err, "out of memory");
        goto done;
    }
    char *rerr = NULL;
    rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(s->db, &rerr);
    if (rerr == NULL)
        rocksdb_checkpoint_create(cp, db, 0, &rerr);
    if (cp)
        rocksdb_checkpoint_object_destroy(cp);
    if (rerr) {
        tg_store_fail(err, "checkpoint of %s into %s: %s", s->db_path, db, rerr);
        rocksdb_free(rerr);
        goto done;
    }
    if (access(mk_from, R_OK) == 0 && copy_file(mk_from, mk_to, 0600, err) != 0)
        goto done;
    uint64_t v = 0;
    tg_store_meta_get(s, TG_META_SCHEMA_VERSION, &v);
    fprintf(out, "tollgate: backup of %s written to %s (schema %llu)%s\n", s->db_path, dir, (unsigned long long)v,
            access(mk_to, R_OK) == 0 ? "; it holds the master key: keep it as safe as the data directory" : "");
    rc = 0;
done:
    free(db);
    free(mk_from);
    free(mk_to);
    tg_store_close(s);
    return rc;
}

int tg_admin_restore(const char *data_dir, const char *dir, FILE *out, char **err)
{
    char *src = NULL, *dst = NULL, *old = NULL, *mk_src = NULL, *mk_dst = NULL, *mk_old = NULL;
    int rc = -1;
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    if (asprintf(&src, "%s/db", dir) < 0 || asprintf(&dst, "%s/db", data_dir) < 0 ||
        asprintf(&old, "%s/db.before-restore-%s", data_dir, stamp) < 0 || asprintf(&mk_src, "%s/master.key", dir) < 0 ||
        asprintf(&mk_dst, "%s/master.key", data_dir) < 0 || asprintf(&mk_old, "%s/master.key.before-restore-%s", data_dir, stamp) < 0) {
        tg_store_fail(err, "out of memory");
        goto done;
    }
    /* the backup must be a readable database of this schema */
    tg_store_t *s = NULL;
    if (tg_store_open_readonly(&s, dir, err) != 0)
        goto done;
    tg_store_close(s);
    /* nothing may hold the live database: a read-write open takes RocksDB's lock */
    struct stat st;
    if (stat(dst, &st) == 0) {
        rocksdb_options_t *o = rocksdb_options_create(), *ro = tg_rollup_options(o);
        char *lerr = NULL;
        size_t n = 0;
        char **names = rocksdb_list_column_families(o, dst, &n, &lerr);
        rocksdb_t *db = NULL;
        if (lerr == NULL) {
            const rocksdb_options_t **opts = calloc(n, sizeof(*opts));
            rocksdb_column_family_handle_t **h = calloc(n, sizeof(*h));
            for (size_t i = 0; i < n; i++) /* opening replays the log: roll-up operands may be flushed */
                opts[i] = strcmp(names[i], tg_cf_name(TG_CF_ROLLUPS)) == 0 ? ro : o;
            db = rocksdb_open_column_families(o, dst, (int)n, (const char *const *)names, opts, h, &lerr);
            if (db) {
                for (size_t i = 0; i < n; i++)
                    rocksdb_column_family_handle_destroy(h[i]);
                rocksdb_close(db);
            }
            free(opts);
            free(h);
            rocksdb_list_column_families_destroy(names, n);
        }
        rocksdb_options_destroy(o);
        rocksdb_options_destroy(ro);
        if (lerr) {
            tg_store_fail(err, "%s is in use or unreadable (%s); stop tollgate before restoring", dst, lerr);
            rocksdb_free(lerr);
            goto done;
        }
        if (rename(dst, old) != 0) {
            tg_store_fail(err, "cannot move %s aside: %s", dst, strerror(errno));
            goto done;
        }
    }
    if (copy_dir(src, dst, err) != 0)
        goto done;
    if (access(mk_src, R_OK) == 0) {
        if (access(mk_dst, F_OK) == 0 && rename(mk_dst, mk_old) != 0) {
            tg_store_fail(err, "cannot move %s aside: %s", mk_dst, strerror(errno));
            goto done;
        }
        if (copy_file(mk_src, mk_dst, 0600, err) != 0)
            goto done;
    }
    fprintf(out, "tollgate: restored %s from %s (the previous database is in %s)\n", dst, dir, old);
    rc = 0;
done:
    free(src);
    free(dst);
    free(old);
    free(mk_src);
    free(mk_dst);
    free(mk_old);
    return rc;
}

static void print_issue(void *ud, uint64_t id, const char *name, const char *what, int64_t expected, int64_t actual)
{
    fprintf((FILE *)ud, "account %llu (%s): %s: expected %lld, found %lld nano-dollars (difference %lld)\n",
            (unsigned long long)id, name, what, (long long)expected, (long long)actual, (long long)(actual - expected));
}

int tg_admin_verify(const char *data_dir, FILE *out, char **err)
{
    tg_store_t *s = NULL;
    if (tg_store_open_readonly(&s, data_dir, err) != 0)
        return -1;
    size_t n = 0;
    long issues = tg_verify(s, 1, print_issue, out, &n);
    tg_store_close(s);
    if (issues < 0)
        return tg_store_fail(err, "the store could not be read completely");
    fprintf(out, "tollgate: %zu account(s) checked, %ld disagreement(s)\n", n, issues);
    return issues ? 1 : 0;
}
