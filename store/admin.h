/* `tollgate admin` commands on the store (offline tools; they never need the HTTP server):
 *   backup DIR   a consistent RocksDB checkpoint of DATA_DIR/db into DIR/db, plus the master key
 *                (DIR/master.key, 0600: without it sealed provider secrets cannot be opened);
 *                works while tollgate runs (read-only open + checkpoint)
 *   restore DIR  replaces DATA_DIR/db with DIR/db (the old one is kept as db.before-restore-TIME);
 *                refuses while tollgate runs
 *   verify       reconciles every account (store/verify.h); prints each disagreement */
#ifndef TG_STORE_ADMIN_H
#define TG_STORE_ADMIN_H

#include <stdio.h>

/** 0, or -1 with *ERR. */
int tg_admin_backup(const char *data_dir, const char *dir, FILE *out, char **err);
/** 0, or -1 with *ERR. */
int tg_admin_restore(const char *data_dir, const char *dir, FILE *out, char **err);
/** 0 when everything reconciles, 1 when some account disagrees (printed to OUT), -1 with *ERR. */
int tg_admin_verify(const char *data_dir, FILE *out, char **err);

#endif
