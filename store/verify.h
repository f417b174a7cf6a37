/* Reconciliation of the ledger (reliability.md promise 3), used at persister start and by
 * `tollgate admin verify`:
 *   1. per account: Σ ledger amounts == Σ card balances − Overdraft;
 *   2. per account: Σ spend entries == CreditUsed − SpendBase (SpendBase: spend before schema 2);
 *   3. per account: Σ roll-up cost == CreditUsed;
 *   4. (full) per account: Σ usage row cost == Σ roll-up cost, while no usage row was pruned by
 *      retention (afterwards: usage ≤ roll-ups).
 * Deleted accounts are not checked (their rows stay as history). */
#ifndef TG_STORE_VERIFY_H
#define TG_STORE_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/** Called once per disagreement: account ID (NAME), which check (WHAT), the two sides. */
typedef void (*tg_verify_fn)(void *ud, uint64_t id, const char *name, const char *what, int64_t expected, int64_t actual);

/** Runs checks 1–3 (and 4 when FULL). Returns the number of disagreements (0 = reconciled), or -1
 * on a read error. *ACCOUNTS = accounts checked. */
long tg_verify(tg_store_t *s, int full, tg_verify_fn fn, void *ud, size_t *accounts);

#endif
