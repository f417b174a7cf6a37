/* Helpers of the Manage API that the dashboard and admin handlers share (api_manage.c). */
#ifndef TG_STORE_API_MANAGE_I_H
#define TG_STORE_API_MANAGE_I_H

#include <jansson.h>
#include <stdint.h>

#include "store/api.h"

/** Dollars in a JSON number → nano-dollars; *OK = 0 when not a finite number within ±1e9. */
int64_t tg_manage_money(json_t *v, int *ok);
/** The id an identifier names (numeric id, DNA path, email, name), or 0. */
uint64_t tg_manage_ident_id(tg_store_t *s, const char *ident);
/** The account IDENT names, when it is the caller (ALLOW_SELF) or one of its descendants (new
 * reference). Otherwise answers 404 / 403 and returns NULL. */
json_t *tg_manage_resolve(tg_api_req_t *r, const char *ident, int allow_self);
/** The records of TOP's subtree (new array, by id): only its direct children when CHILDREN_ONLY;
 * TOP itself when INCLUDE_TOP. */
json_t *tg_manage_subtree(tg_api_req_t *r, const json_t *top, int children_only, int include_top);
/** REC's parent, or its nearest existing ancestor when the parent was deleted (new reference);
 * NULL for root. */
json_t *tg_manage_parent(tg_store_t *s, const json_t *rec);
/** The "Parent" object of the Manage API responses. */
json_t *tg_manage_parent_view(tg_api_req_t *r, const json_t *p);

#endif
