/* The drain's update of one account, done on the record's stored JSON text.
 *
 * A drain batch changes few fields of an account record: CreditUsed and Requests grow, the cost
 * leaves the cards (earliest expiry first; what they do not cover grows Overdraft) and LedgerSeq
 * names the batch's `spend` ledger entry. Loading the whole record into a tree and writing it back
 * cost the persister most of its time when every record of a batch belonged to a different
 * account. This path scans the text once and rewrites only those numbers, producing the same
 * record and ledger entry, byte for byte, as the tree path (store/drain.c's fallback:
 * tg_rec_add_i64, tg_cards_take, tg_ledger_append, tg_store_json_put). Records it does not fully
 * understand (a money field that is not an integer, escaped names, duplicate members, a foreign
 * ID, more than TG_SPEND_CARDS_MAX cards) are left to the tree path. */
#ifndef TG_STORE_ACCT_SPEND_H
#define TG_STORE_ACCT_SPEND_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TG_SPEND_CARDS_MAX 64

typedef struct tg_acct_spend {
    char *rec;       /* the new record text (malloc'd) */
    size_t rec_len;
    char *entry;     /* the `spend` ledger entry (malloc'd), NULL when COST <= 0 */
    size_t entry_len;
    uint64_t seq;    /* the entry's ledger sequence */
} tg_acct_spend_t;

/** Applies a batch's COST (nano-dollars) and REQUESTS to the record TEXT (LEN bytes) of account
 * ID at NOW_MS. 0 with *OUT filled (free with tg_acct_spend_free), 1 when the tree path must do it
 * (nothing allocated), -1 out of memory. */
int tg_acct_spend_text(const char *text, size_t len, uint64_t id, int64_t cost, uint64_t requests, uint64_t now_ms,
                       tg_acct_spend_t *out);
void tg_acct_spend_free(tg_acct_spend_t *out);

/** The `spend` ledger entry text (what tg_ledger_append writes for it): into BUF (CAP bytes).
 * Returns its length, or -1 when it does not fit. */
int tg_acct_spend_entry(char *buf, size_t cap, uint64_t seq, int64_t amount, uint64_t card, uint64_t requests,
                        uint64_t ts_ms, int64_t balance);

#endif
