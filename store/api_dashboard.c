/* Dashboard endpoints (api-compat 4.2): any valid key, about its own account only.
 *
 * GET /dashboard/status (alias /dashboard/x-user-status):
 *   {"object":"user_status","id","dna","name","email","alias","public_key","balance","manage","admin"}
 * balance: dollars; the sum of the account's cards minus what workers settled that the persister
 *   has not drained yet. Root's spending is unlimited (api-compat 7.12): it shows its own cards,
 *   which it normally has none of, so 0.
 * admin: root and owners (root's direct children).
 * manage: admin accounts always; others when their balance exceeds USER_API_BALANCE (api-compat 1.3,
 *   default $20; a per-owner setting once /x-config exists). */
#include "shm/arena-t.h"
#include "store/account_rec.h"
#include "store/api.h"
#include "store/record.h"
#include "store/store-i.h"

#define TG_USER_API_BALANCE_NANOS (20 * TG_NANOS_PER_DOLLAR)

/* Settled spend of account ID that the drain has not moved into the database yet. */
static int64_t undrained_spend(tg_api_req_t *r, uint64_t id)
{
    int64_t slot = r->store->slots_ready ? tg_slotmap_find(&r->store->acct_slots, id) : -1;
    return slot < 0 ? 0 : atomic_load(&r->arena->accounts[slot].spent);
}

void tg_api_dashboard_status(tg_api_req_t *r)
{
    const json_t *acct = r->caller;
    uint64_t id = r->caller_id;
    int is_root = id == TG_ROOT_ID;
    int admin = is_root || tg_rec_u64(acct, "ParentID", 0) == TG_ROOT_ID;
    int64_t balance = tg_acctrec_cards(acct) - (is_root ? 0 : undrained_spend(r, id));
    int manage = admin || balance > TG_USER_API_BALANCE_NANOS;
    const char *name = tg_rec_str(acct, "Name", "");
    json_t *body = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:f, s:b, s:b}", "object", "user_status", "id", (json_int_t)id,
                             "dna", tg_rec_str(acct, "DNA", ""), "name", name, "email", tg_rec_str(acct, "Email", ""), "alias",
                             tg_rec_str(acct, "Alias", name), "public_key", tg_rec_str(acct, "PartialKey", ""), "balance",
                             tg_nanos_to_dollars(balance), "manage", manage, "admin", admin);
    tg_api_send(r, 200, body);
}
