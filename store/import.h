/* `tollgate admin import FILE [--keys-out OUT]`: creates many accounts at once, writing the store
 * directly while tollgate is stopped (a reseller moving its customers in, the S4 benchmark's
 * million accounts). FILE holds one JSON object per line (docs/storage.md, "Bulk import"):
 *   {"Name": "...", "Email": "...", "Parent": 1 | "name", "CreditGranted": 5,
 *    "RPM": 60, "RPH": 0, "RPD": 0, "TPM": 0, "TPH": 0, "TPD": 0,
 *    "Key": "sk-Xvs..." | "KeyHash": "<64 hex>"}
 * Name and Email are required and unique; Parent (default root) is an existing account or one
 * defined on an earlier line; a line without Key or KeyHash gets a generated key, written with the
 * account's id and name to OUT (required then; created 0600, never overwritten). Funding follows
 * the Manage API: root mints, any other parent pays from its cards at the Rates.
 *
 * All or nothing: every line is checked before anything is written, and each problem is reported
 * with its line number. Refuses while tollgate runs (the database lock is held). */
#ifndef TG_STORE_IMPORT_H
#define TG_STORE_IMPORT_H

#include <stdint.h>
#include <stdio.h>

/** Imports FILE ("-": stdin) into DATA_DIR's store; generated keys go to KEYS_OUT (may be NULL
 * when every line gives its key). Refuses when the store would then hold more than MAX_ACCOUNTS
 * accounts (arena.max_accounts). The summary goes to OUT, line errors to ERRS. 0, or -1 with *ERR. */
int tg_admin_import(const char *data_dir, const char *file, const char *keys_out, uint32_t max_accounts, FILE *out,
                    FILE *errs, char **err);

#endif
