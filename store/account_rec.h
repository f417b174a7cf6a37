/* Account records: the JSON object stored per account in the `accounts` column family (fields of
 * api-compat 1.2, PascalCase; layout in docs/storage.md), the `keyhash` index that finds one by
 * API key, and the translation into the arena's account settings. */
#ifndef TG_STORE_ACCOUNT_REC_H
#define TG_STORE_ACCOUNT_REC_H

#include <jansson.h>
#include <rocksdb/c.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "shm/accounts.h"
#include "store/store.h"

#define TG_ROOT_ID 1u
/* Root's spendable balance in the arena: unlimited (what root grants is minted, api-compat 7.12),
 * and far enough from INT64_MAX that reservations can be added to it without overflow. */
#define TG_BALANCE_UNLIMITED (INT64_MAX / 4)
#define TG_PARTIAL_KEY_LEN 20
/* ChildLimit when none is set: no limit on the number of children (api-compat 1.6). */
#define TG_CHILD_LIMIT_UNLIMITED 88888888

typedef struct tg_acctrec_init {
    uint64_t id, parent_id, owner_id;
    const char *name;
    const char *email;
    const char *dna;
    int level;
    double rates, factor;
    const char *key; /* the API key in plaintext: only its hash and last characters are kept */
    size_t key_len;
} tg_acctrec_init_t;

/** A new account record with counters at zero and CreatedAt = UpdatedAt = NOW. NULL when out of memory. */
json_t *tg_acctrec_new(const tg_acctrec_init_t *init, time_t now);
/** A new child of PARENT (tg_acctrec_new): the fields a child inherits (api-compat 1.6) copied from PARENT,
 * ChildLimit unlimited unless inherited, no children, cards, overdraft or credit yet, and its
 * ledger and card sequences at zero. NULL when out of memory. Both account creators (the Manage
 * API and `tollgate admin import`) build their records with it. */
json_t *tg_acctrec_new_child(const tg_acctrec_init_t *init, const json_t *parent, time_t now);
/** Adds keyhash[HASH] = ID to BATCH. */
void tg_acctrec_put_keyhash(rocksdb_writebatch_t *batch, tg_store_t *s, const uint8_t hash[32], uint64_t id);
/** The account whose API key is KEY (LEN bytes), whatever its Status (new reference), or NULL. */
json_t *tg_acctrec_by_key(tg_store_t *s, const char *key, size_t len);
/** Arena settings of record REC. 0, or -1 when a required field (ID, KeyHash) is missing or bad.
 * out->src (the lists compiled by tg_account_publish) points into REC: publish before REC goes.
 * The links (up_id, up_slot, owner_slot) are left unset: fill them with tg_store_account_links. */
int tg_acctrec_settings(const json_t *rec, tg_account_settings_t *out);
/** Fills ST's links from the persister's slot map: up_id/up_slot = the nearest ancestor of REC
 * (by DNA) that is in the arena, owner_slot = the slot of OwnerID. Call between
 * tg_acctrec_settings and tg_account_publish (store/publish.c). */
void tg_store_account_links(tg_store_t *s, const json_t *rec, tg_account_settings_t *st);
/** Sum of the account's cards (CreditBalance[].balance), nano-dollars; 0 while it has none. */
int64_t tg_acctrec_cards(const json_t *rec);
/** The balance the arena shows for REC: unlimited for root, else its cards less its Overdraft. */
int64_t tg_acctrec_arena_balance(const json_t *rec);

/* Secondary indexes (names and tree CFs): unique lowercase Name and Email, and the DNA path. */
#define TG_NAMES_KEY_MAX 320
/** Adds REC's name, email and DNA index entries to BATCH. */
void tg_acctrec_index_put(rocksdb_writebatch_t *batch, tg_store_t *s, const json_t *rec);
/** Adds deletes of REC's index entries to BATCH. */
void tg_acctrec_index_del(rocksdb_writebatch_t *batch, tg_store_t *s, const json_t *rec);
/** Id of the account named NAME (case-insensitive), or 0. */
uint64_t tg_acctrec_find_name(tg_store_t *s, const char *name);
/** Id of the account with email EMAIL (case-insensitive), or 0. */
uint64_t tg_acctrec_find_email(tg_store_t *s, const char *email);
/** Calls FN for the id of every account whose DNA starts with PREFIX (the subtree of the account
 * whose DNA is PREFIX, itself included), in DNA order. Stops when FN returns non-zero. */
int tg_acctrec_each_in_subtree(tg_store_t *s, const char *prefix, int (*fn)(void *ud, uint64_t id, const char *dna),
                               void *ud);

#endif
