/* The ledger: money that reconciles to the nano-dollar.
 *
 * Design. An account's money lives in its record (accounts CF) as prepaid cards
 * (`CreditBalance`: {id, amount, balance, granted_at, expires_at, reference}, nano-dollars) plus
 * an `Overdraft` (what was spent beyond the cards: requests in flight when the cards ran out, or
 * root's unlimited spending). Its balance is Σ card.balance − Overdraft. Every change of that
 * balance appends one ledger entry (ledger CF, key = account id + sequence, the sequence kept in
 * the record's `LedgerSeq`) in the same WriteBatch as the record, so for every account at every
 * commit: Σ ledger amounts == Σ card balances − Overdraft. `tollgate admin verify` and the
 * persister's start check exactly that.
 *
 * Entry kinds (the `amount` is the change of THIS account's balance, signed):
 *   mint      root grants money it does not have (api-compat 7.12): root's side of a grant
 *   top-up    a card granted by an ancestor (the child's side of a transfer or a mint)
 *   transfer  money leaving for another account (payer's side; a claw-back's or delete's child side)
 *   spend     drained usage cost (one entry per account per drain batch)
 *   refund    a card returned to an ancestor (claw-back, delete)
 *   fee       the $0.20 handling fee of a claw-back or delete refund
 *   expiry    what an expired card still held
 *   rescale   a Rates change rescaling the cards (api-compat 1.3)
 *   migrate   opening balance written by the schema 1 → 2 migration
 *
 * Spending takes the card that expires first (among those not yet expired); what no card covers
 * grows the Overdraft, and the next granted card pays the Overdraft back first. Expired cards are
 * written off by the periodic expiry job; above TG_CARDS_MAX cards they are consolidated
 * (same-day expiries, then expiries within 60 days; the merged card keeps the latest expiry).
 *
 * Transfers use the Rates arithmetic of api-compat 1.3: funding a child with X costs the payer
 * X / child.Rates × payer.Rates; a claw-back of X returns X / child.Rates × receiver.Rates as a
 * 180-day card and charges a $0.20 fee; deleting returns the child's balance the same way. Root
 * mints: its side is a `mint` entry that grows its Overdraft (its spendable balance is unlimited).
 * All functions here work on in-memory records and a caller's WriteBatch; nothing is committed. */
#ifndef TG_STORE_LEDGER_H
#define TG_STORE_LEDGER_H

#include <jansson.h>
#include <rocksdb/c.h>
#include <stdint.h>
#include <time.h>

#include "store/store.h"

#define TG_CARDS_MAX 12                               /* consolidation starts above this many cards */
#define TG_FEE_NANOS 200000000LL                      /* $0.20 claw-back / delete fee */
#define TG_REFUND_DAYS 180                            /* cards refunded to an ancestor */
#define TG_DEFAULT_DAYS 365                           /* Days default on create and top-up (7.3) */
#define TG_MONEY_MAX_NANOS (1000000000LL * 1000000000LL) /* $1e9: the largest amount an API accepts */

/** Σ card balances − Overdraft, nano-dollars. */
int64_t tg_acct_balance(const json_t *rec);
/** Sum of the balances of cards not expired at NOW. */
int64_t tg_cards_live(const json_t *rec, time_t now);
/** Expiry of the first card to expire (balance > 0), or 0 when none. */
time_t tg_cards_next_expiry(const json_t *rec);

/** Takes AMOUNT (> 0) from the cards, earliest expiry first, skipping cards expired at NOW; what
 * they do not cover is added to Overdraft. When BREAKDOWN (an array) is given, appends one
 * [card id, amount] pair per card touched (card 0 = the overdraft). 0, or -1 out of memory. */
int tg_cards_take(json_t *rec, int64_t amount, time_t now, json_t *breakdown);
/** Grants a new card of AMOUNT (> 0) valid VALID_SECS from NOW with REFERENCE; its balance first
 * pays back any Overdraft. Returns the new card's id (> 0), or -1 out of memory. */
int64_t tg_cards_grant(json_t *rec, int64_t amount, time_t now, int64_t valid_secs, const char *reference);
/** Removes the cards expired at NOW; returns what they still held (> 0 means an expiry entry is
 * due) and appends [card id, amount] pairs to EXPIRED when given. */
int64_t tg_cards_expire(json_t *rec, time_t now, json_t *expired);
/** Merges cards while there are more than MAX (see the design note). Returns how many cards were
 * merged away. The balance does not change. */
int tg_cards_consolidate(json_t *rec, size_t max);
/** Multiplies every card's amount and balance and the Overdraft by NUM/DEN; returns the change of
 * the balance. */
int64_t tg_cards_rescale(json_t *rec, double num, double den);

/** AMOUNT × TO / FROM rounded to the nano-dollar (the Rates arithmetic). */
int64_t tg_money_convert(int64_t amount, double from_rates, double to_rates);

/** Appends a ledger entry for REC to BATCH (REC's LedgerSeq is incremented; store REC in the same
 * batch). BALANCE_AFTER is recorded as `balance`. 0, or -1 when the entry cannot be built. */
int tg_ledger_append(rocksdb_writebatch_t *b, tg_store_t *s, json_t *rec, const char *kind, int64_t amount, uint64_t card,
                     uint64_t counterparty, const char *reference, uint64_t ts_ms);

/** Funding: PAYER (an ancestor of CHILD, or root) grants CHILD a card of AMOUNT valid DAYS.
 * Root mints; anyone else pays tg_money_convert(AMOUNT, child.Rates, payer.Rates) from its cards.
 * *COST is what the payer paid. 0, or -1 out of memory. The caller checks the payer's funds. */
int tg_ledger_fund(rocksdb_writebatch_t *b, tg_store_t *s, json_t *payer, json_t *child, int64_t amount, double days,
                   const char *reference, time_t now, int64_t *cost);
/** Claw-back: takes AMOUNT from CHILD (the caller checks CHILD holds it) and gives RECEIVER a
 * 180-day card of AMOUNT converted by the Rates, then charges RECEIVER the fee. *CREDITED is the
 * card's amount. 0, or -1. */
int tg_ledger_clawback(rocksdb_writebatch_t *b, tg_store_t *s, json_t *receiver, json_t *child, int64_t amount, time_t now,
                       int64_t *credited);
/** Delete: moves CHILD's whole positive balance to RECEIVER as a 180-day card, converted by the
 * Rates, less the fee (nothing when it would not cover the fee). *CREDITED is the card's value
 * after the fee (0 when none). 0, or -1. */
int tg_ledger_refund_delete(rocksdb_writebatch_t *b, tg_store_t *s, json_t *receiver, json_t *child, time_t now,
                            int64_t *credited);
/** Rates change of REC from OLD to NEW: cards rescaled, a `rescale` entry when the balance moved. */
int tg_ledger_rescale(rocksdb_writebatch_t *b, tg_store_t *s, json_t *rec, double old_rates, double new_rates, time_t now);
/** Expiry job for one account: removes expired cards and appends one `expiry` entry per card that
 * still held money, then consolidates. Returns the balance change (≤ 0); *CHANGED = 1 when REC
 * changed and must be stored. */
int64_t tg_ledger_expire(rocksdb_writebatch_t *b, tg_store_t *s, json_t *rec, time_t now, int *changed);

/** Σ of the ledger amounts of account ID (a prefix scan). 0 and *SUM, or -1 on a read error. */
int tg_ledger_sum(tg_store_t *s, uint64_t id, int64_t *sum);

#endif
