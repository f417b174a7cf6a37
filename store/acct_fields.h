/* Validation and application of the account fields that the Manage API accepts (api-compat 1.2,
 * 1.5, 1.6, 4.1, 7.13): every body field is type- and range-checked with a message naming it,
 * unknown fields are refused, limits and lists are bounded by the parent, ACL edits follow the
 * mini-language. Used by POST /x-users (create) and PUT|POST /x-users/{id} (update). */
#ifndef TG_STORE_ACCT_FIELDS_H
#define TG_STORE_ACCT_FIELDS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Who may set a field. */
enum { TG_PERM_ANCESTOR = 0, TG_PERM_ADMIN, TG_PERM_ROOT, TG_PERM_SELF };

/** 1 when NAME is a valid account name: 4–63 characters of A-Z a-z 0-9 _ . -, at least one
 * letter, not starting with '.', and not shaped like a list filter (L3, G1, ...). */
int tg_valid_name(const char *name);
/** 1 when EMAIL looks like a deliverable address (local@domain.tld, ≤ 254 characters). */
int tg_valid_email(const char *email);

/** Applies the ACL edit VALUE (items split on commas/whitespace; "-x" removes, others add; "*"
 * resets to unrestricted; "-*" forbids all) to the normalized list OLD ("" unrestricted, "-*"
 * none, else "a,b,c"). KIND: 'I' AllowIPs, 'M' AllowModels, 'L' AllowLevels, 'R' Resources.
 * Returns the new normalized list (malloc'd) or NULL with *WHY (static text naming the bad item
 * in BUF). */
char *tg_acl_edit(char kind, const char *old, const char *value, char *why, size_t why_cap);
/** The part of list CHILD that list PARENT allows (malloc'd; "-*" when nothing is left). */
char *tg_acl_intersect(char kind, const char *child, const char *parent);

/** Validates a mapper string (`src=dst` pairs, comma-separated). KIND: 'M' model mapper, 'L'
 * level mapper (dst a positive integer), 'S' switch-over (both sides positive integers). 0 or -1
 * with a reason in WHY. */
int tg_mapper_valid(char kind, const char *value, char *why, size_t why_cap);
/** Merges a ModelLimits edit V (an object {model: {rpm..tpd} | "*" | null} or the string "*" /
 * "=" to clear) into OLD (may be NULL). New reference, or NULL with WHY. */
json_t *tg_model_limits_merge(const json_t *old, const json_t *v, char *why, size_t why_cap);

#endif
