/* The Manage API (api-compat 4.1): sub-accounts of the caller.
 *
 *   POST /x-users                  create a child of the caller, funded by the caller
 *   GET  /x-users[/{ident}]        direct children (or the accounts an identifier names)
 *   GET  /x-dna[/{ident}]          every descendant
 *   PUT|POST /x-users/{ident}      update a descendant (or a few fields of oneself)
 *   DELETE /x-users/{ident}        delete a descendant, refunding its parent
 *   POST /x-self, POST /x-root     key rotation
 *
 * Identifiers: numeric id, name, email, DNA path (".1.42."), or a filter L{n} G{n} R{n} T{n}
 * F{x} on Level, Gear, Role, Tier, Factor. Authorization: the caller acts on itself and its
 * descendants only (DNA prefix); management calls need the manage right (tg_api_require_manage).
 * Every write is one WriteBatch (records, ledger entries, indexes, an audit entry) followed by
 * publication into the arena (txn.h). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/keyhash.h"
#include "common/log.h"
#include "shm/policy.h"
#include "store/account_rec.h"
#include "store/acct_fields.h"
#include "store/api.h"
#include "store/api_manage-i.h"
#include "store/ledger.h"
#include "store/record.h"
#include "store/store-i.h"
#include "store/txn.h"

/* ---- field table ---- */

typedef enum { T_STR, T_INT, T_NUM, T_BOOL, T_MONEY, T_ACL, T_MAP, T_OBJ, T_NAME, T_EMAIL } ftype_t;
#define W_CREATE 1u
#define W_UPDATE 2u
#define W_BOTH 3u

typedef struct fdef {
    const char *name;
    ftype_t type;
    unsigned where;
    int perm;
    char sub;        /* ACL / mapper kind */
    int bounded;     /* integer limit bounded by the parent's */
} fdef_t;

static const fdef_t g_fields[] = {
    {"Name", T_NAME, W_BOTH, TG_PERM_ANCESTOR, 0, 0},
    {"Email", T_EMAIL, W_BOTH, TG_PERM_ANCESTOR, 0, 0},
    {"Alias", T_STR, W_BOTH, TG_PERM_SELF, 0, 0},
    {"BillingEmail", T_STR, W_BOTH, TG_PERM_SELF, 0, 0},
    {"QRCode", T_STR, W_BOTH, TG_PERM_SELF, 0, 0},
    {"Status", T_BOOL, W_UPDATE, TG_PERM_ANCESTOR, 0, 0},
    {"Suspended", T_BOOL, W_UPDATE, TG_PERM_ANCESTOR, 0, 0},
    {"CreditGranted", T_MONEY, W_BOTH, TG_PERM_ANCESTOR, 0, 0},
    {"Days", T_NUM, W_BOTH, TG_PERM_ANCESTOR, 0, 0},
    {"Rates", T_NUM, W_BOTH, TG_PERM_ANCESTOR, 0, 0},
    {"Level", T_INT, W_BOTH, TG_PERM_ADMIN, 0, 0},
    {"Gear", T_INT, W_BOTH, TG_PERM_ADMIN, 0, 0},
    {"Role", T_INT, W_BOTH, TG_PERM_ADMIN, 0, 0},
    {"Tier", T_INT, W_BOTH, TG_PERM_ADMIN, 0, 0},
    {"Factor", T_NUM, W_BOTH, TG_PERM_ROOT, 0, 0},
    {"HardLimit", T_MONEY, W_BOTH, TG_PERM_ANCESTOR, 0, 0},
    {"SoftLimit", T_MONEY, W_BOTH, TG_PERM_ANCESTOR, 0, 0},
    {"AutoQuota", T_MONEY, W_BOTH, TG_PERM_ANCESTOR, 0, 0},
    {"ChildLimit", T_INT, W_BOTH, TG_PERM_ANCESTOR, 0, 0},
    {"RPM", T_INT, W_BOTH, TG_PERM_ANCESTOR, 0, 1},
    {"RPH", T_INT, W_BOTH, TG_PERM_ANCESTOR, 0, 1},
    {"RPD", T_INT, W_BOTH, TG_PERM_ANCESTOR, 0, 1},
    {"TPM", T_INT, W_BOTH, TG_PERM_ANCESTOR, 0, 1},
    {"TPH", T_INT, W_BOTH, TG_PERM_ANCESTOR, 0, 1},
    {"TPD", T_INT, W_BOTH, TG_PERM_ANCESTOR, 0, 1},
    {"AllowIPs", T_ACL, W_BOTH, TG_PERM_ANCESTOR, 'I', 0},
    {"AllowModels", T_ACL, W_BOTH, TG_PERM_ANCESTOR, 'M', 0},
    {"AllowLevels", T_ACL, W_BOTH, TG_PERM_ADMIN, 'L', 0},
    {"Resources", T_ACL, W_BOTH, TG_PERM_ANCESTOR, 'R', 0},
    {"ModelMapper", T_MAP, W_BOTH, TG_PERM_ANCESTOR, 'M', 0},
    {"LevelMapper", T_MAP, W_BOTH, TG_PERM_ADMIN, 'L', 0},
    {"ModelLimits", T_OBJ, W_BOTH, TG_PERM_ANCESTOR, 0, 0},
};
#define N_FIELDS (sizeof(g_fields) / sizeof(g_fields[0]))

#define RATES_MAX 1000.0
#define INT_FIELD_MAX 2000000000LL

static const fdef_t *find_field(const char *name)
{
    for (size_t i = 0; i < N_FIELDS; i++)
        if (strcmp(g_fields[i].name, name) == 0)
            return &g_fields[i];
    return NULL;
}

static double num_of(const json_t *rec, const char *name, double def)
{
    json_t *v = json_object_get(rec, name);
    return json_is_number(v) ? json_number_value(v) : def;
}

int64_t tg_manage_money(json_t *v, int *ok)
{
    *ok = 0;
    if (!json_is_number(v))
        return 0;
    double d = json_number_value(v);
    if (!isfinite(d) || fabs(d) > 1e9)
        return 0;
    *ok = 1;
    return (int64_t)llround(d * 1e9);
}

/* ---- identifiers and listings ---- */

/* An identifier from the path rest ("/name"), percent-decoded. */
static int rest_ident(tg_api_req_t *r, char *out, size_t cap)
{
    h2o_iovec_t rest = r->rest;
    if (rest.len <= 1)
        return 0;
    size_t o = 0;
    for (size_t i = 1; i < rest.len; i++) {
        char c = rest.base[i];
        if (c == '%' && i + 2 < rest.len && isxdigit((unsigned char)rest.base[i + 1]) && isxdigit((unsigned char)rest.base[i + 2])) {
            char hex[3] = {rest.base[i + 1], rest.base[i + 2], 0};
            c = (char)strtol(hex, NULL, 16);
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 1;
}

static int is_filter(const char *s)
{
    if (!strchr("LGRTF", s[0]) || s[1] == '\0')
        return 0;
    for (const char *p = s + 1; *p; p++)
        if (!isdigit((unsigned char)*p) && *p != '.')
            return 0;
    return 1;
}

static int all_digits(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

uint64_t tg_manage_ident_id(tg_store_t *s, const char *ident)
{
    if (all_digits(ident))
        return strtoull(ident, NULL, 10);
    if (ident[0] == '.') {
        size_t vlen = 0;
        char *err = NULL;
        char *v = tg_store_get(s, TG_CF_TREE, ident, strlen(ident), &vlen, &err);
        if (err)
            rocksdb_free(err);
        uint64_t id = v && vlen == 8 ? tg_be64_get((const uint8_t *)v) : 0;
        rocksdb_free(v);
        return id;
    }
    if (strchr(ident, '@'))
        return tg_acctrec_find_email(s, ident);
    return tg_acctrec_find_name(s, ident);
}

json_t *tg_manage_resolve(tg_api_req_t *r, const char *ident, int allow_self)
{
    uint64_t id = tg_manage_ident_id(r->store, ident);
    json_t *rec = id ? tg_store_json_get(r->store, TG_CF_ACCOUNTS, id) : NULL;
    if (rec == NULL) {
        tg_api_error(r, 404, "account_not_found", "no account %s", ident);
        return NULL;
    }
    if (id == r->caller_id ? !allow_self : !tg_api_is_ancestor(r->caller, rec)) {
        json_decref(rec);
        if (id == r->caller_id)
            tg_api_error(r, 403, "not_allowed", "an account cannot do this to itself; ask an ancestor");
        else
            tg_api_error(r, 403, "not_ancestor", "account %s is not a descendant of the caller", ident);
        return NULL;
    }
    return rec;
}

typedef struct gather {
    tg_store_t *s;
    json_t *arr; /* records (new references) */
    uint64_t parent_only;
    uint64_t skip_id;
} gather_t;

static int gather_one(void *ud, uint64_t id, const char *dna)
{
    gather_t *g = ud;
    if (id == g->skip_id)
        return 0;
    json_t *rec = tg_store_json_get(g->s, TG_CF_ACCOUNTS, id);
    if (rec == NULL)
        return 0;
    if (g->parent_only && tg_rec_u64(rec, "ParentID", 0) != g->parent_only) {
        json_decref(rec);
        return 0;
    }
    json_array_append_new(g->arr, rec);
    return 0;
}

static int by_id(const void *a, const void *b)
{
    uint64_t x = tg_rec_u64(*(json_t *const *)a, "ID", 0), y = tg_rec_u64(*(json_t *const *)b, "ID", 0);
    return x < y ? -1 : x > y;
}

json_t *tg_manage_subtree(tg_api_req_t *r, const json_t *top, int children_only, int include_top)
{
    gather_t g = {r->store, json_array(), children_only ? tg_rec_u64(top, "ID", 0) : 0,
                  include_top ? 0 : tg_rec_u64(top, "ID", 0)};
    tg_acctrec_each_in_subtree(r->store, tg_rec_str(top, "DNA", ".none."), gather_one, &g);
    /* sort by id */
    size_t n = json_array_size(g.arr);
    json_t **v = malloc((n ? n : 1) * sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(g.arr, i));
    qsort(v, n, sizeof(*v), by_id);
    json_array_clear(g.arr);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(g.arr, v[i]);
    free(v);
    return g.arr;
}

/* Filter L2, G1, R3, T0, F1.5 on REC. */
static int filter_matches(const json_t *rec, const char *f)
{
    static const char *const names[] = {"Level", "Gear", "Role", "Tier", "Factor"};
    const char *which = strchr("LGRTF", f[0]);
    const char *field = names[which - "LGRTF"];
    double want = strtod(f + 1, NULL);
    double def = f[0] == 'F' ? 1.0 : f[0] == 'L' ? 1.0 : 0.0;
    return fabs(num_of(rec, field, def) - want) < 1e-9;
}

static void list_accounts(tg_api_req_t *r, int all_descendants)
{
    char ident[320] = "";
    int have_ident = rest_ident(r, ident, sizeof(ident));
    if (have_ident < 0) {
        tg_api_error(r, 400, "invalid_identifier", "the identifier is too long");
        return;
    }
    json_t *list;
    if (have_ident && !is_filter(ident)) {
        json_t *one = tg_manage_resolve(r, ident, 1);
        if (one == NULL)
            return;
        if (all_descendants) { /* /x-dna/{ident}: that account's subtree */
            list = tg_manage_subtree(r, one, 0, 1);
            json_decref(one);
        } else {
            list = json_array();
            json_array_append_new(list, one);
        }
    } else {
        list = tg_manage_subtree(r, r->caller, !all_descendants, 0);
    }
    /* query filters */
    char q[320], order[8] = "asc", pagebuf[24], sizebuf[24];
    static const char *const qnames[] = {"id", "name", "email", "level", "dna"};
    json_t *out = json_array();
    size_t i;
    json_t *rec;
    json_array_foreach(list, i, rec)
    {
        int keep = !have_ident || !is_filter(ident) || filter_matches(rec, ident);
        for (size_t k = 0; keep && k < sizeof(qnames) / sizeof(qnames[0]); k++) {
            if (tg_api_query(r, qnames[k], q, sizeof(q)) != 1 || *q == '\0')
                continue;
            switch (k) {
            case 0: keep = tg_rec_u64(rec, "ID", 0) == strtoull(q, NULL, 10); break;
            case 1: keep = strcasecmp(tg_rec_str(rec, "Name", ""), q) == 0; break;
            case 2: keep = strcasecmp(tg_rec_str(rec, "Email", ""), q) == 0; break;
            case 3: keep = tg_rec_i64(rec, "Level", 1) == strtoll(q, NULL, 10); break;
            default: keep = strncmp(tg_rec_str(rec, "DNA", ""), q, strlen(q)) == 0; break;
            }
        }
        if (keep)
            json_array_append_new(out, tg_api_account_view(rec, tg_api_inflight(r, tg_rec_u64(rec, "ID", 0))));
    }
    json_decref(list);
    if (tg_api_query(r, "order", order, sizeof(order)) == 1 && strcasecmp(order, "desc") == 0) {
        size_t n = json_array_size(out);
        json_t *rev = json_array();
        for (size_t k = n; k > 0; k--)
            json_array_append(rev, json_array_get(out, k - 1));
        json_decref(out);
        out = rev;
    }
    /* pagination: page (1), size (default all, at most 1000) */
    long page = 1, size = 1000;
    if (tg_api_query(r, "page", pagebuf, sizeof(pagebuf)) == 1 && (page = strtol(pagebuf, NULL, 10)) < 1) {
        json_decref(out);
        tg_api_error(r, 400, "invalid_parameter", "page: must be a positive integer");
        return;
    }
    if (tg_api_query(r, "size", sizebuf, sizeof(sizebuf)) == 1 && ((size = strtol(sizebuf, NULL, 10)) < 1 || size > 1000)) {
        json_decref(out);
        tg_api_error(r, 400, "invalid_parameter", "size: must be an integer from 1 to 1000");
        return;
    }
    size_t total = json_array_size(out), from = (size_t)(page - 1) * (size_t)size;
    json_t *pg = json_array();
    for (size_t k = from; k < total && k < from + (size_t)size; k++)
        json_array_append(pg, json_array_get(out, k));
    json_decref(out);
    char buf[32];
    snprintf(buf, sizeof(buf), "%zu", total);
    tg_api_header(r, "X-Total-Count", buf);
    snprintf(buf, sizeof(buf), "%ld", page);
    tg_api_header(r, "X-Page", buf);
    snprintf(buf, sizeof(buf), "%ld", size);
    tg_api_header(r, "X-Per-Page", buf);
    snprintf(buf, sizeof(buf), "%zu", (total + (size_t)size - 1) / (size_t)size);
    tg_api_header(r, "X-Total-Pages", buf);
    tg_api_send(r, 200, pg);
}

void tg_api_users_get(tg_api_req_t *r)
{
    if (tg_api_require_manage(r) == 0)
        list_accounts(r, 0);
}

void tg_api_dna_get(tg_api_req_t *r)
{
    if (tg_api_require_manage(r) == 0)
        list_accounts(r, 1);
}

/* ---- applying fields ---- */

/* The nearest existing ancestor of REC (new reference), or NULL for root. */
json_t *tg_manage_parent(tg_store_t *s, const json_t *rec)
{
    uint64_t pid = tg_rec_u64(rec, "ParentID", 0);
    if (pid == 0)
        return NULL;
    json_t *p = tg_store_json_get(s, TG_CF_ACCOUNTS, pid);
    if (p)
        return p;
    /* the parent was deleted: walk up the DNA */
    char dna[512];
    snprintf(dna, sizeof(dna), "%s", tg_rec_str(rec, "DNA", ""));
    size_t n = strlen(dna);
    while (n > 1) {
        dna[n - 1] = '\0'; /* drop the trailing dot, then the last id */
        char *dot = strrchr(dna, '.');
        if (dot == NULL)
            break;
        dot[1] = '\0';
        n = strlen(dna);
        if (n <= 1)
            break;
        uint64_t id = tg_manage_ident_id(s, dna);
        if (id && id != tg_rec_u64(rec, "ID", 0) && (p = tg_store_json_get(s, TG_CF_ACCOUNTS, id)) != NULL)
            return p;
    }
    return tg_store_json_get(s, TG_CF_ACCOUNTS, TG_ROOT_ID);
}

typedef struct apply {
    json_t *changes;    /* field → new value as shown (for the response and the audit) */
    int acl_changed;    /* an ACL field changed: descendants are re-intersected */
    int rates_changed;
    double old_rates, new_rates;
    int64_t credit;     /* CreditGranted in nano-dollars (0 = none) */
    int has_credit;
    double days;
    const char *rename; /* new Name, when renamed */
    const char *new_email;
} apply_t;

/* Checks and applies the fields of BODY to NR (the new record). P: the parent that bounds NR (may
 * be NULL for root). MODE: W_CREATE or W_UPDATE. SELF: the caller edits itself. Answers 400/403
 * and returns -1 on the first bad field. */
static int apply_fields(tg_api_req_t *r, json_t *body, json_t *nr, const json_t *p, unsigned mode, int self, const char *ident,
                        apply_t *ap)
{
    int caller_root = r->caller_id == TG_ROOT_ID, caller_admin = tg_api_is_admin(r->caller);
    ap->changes = json_object();
    ap->days = TG_DEFAULT_DAYS;
    const char *key;
    json_t *v;
    char why[200];
    json_object_foreach(body, key, v)
    {
        const fdef_t *f = find_field(key);
        if (f == NULL) {
            tg_api_error(r, 400, "unknown_field", "%s: unknown field", key);
            return -1;
        }
        if (!(f->where & mode)) {
            tg_api_error(r, 400, "invalid_field", "%s: cannot be set when %s", key, mode == W_CREATE ? "creating" : "updating");
            return -1;
        }
        /* Name in an update body equal to the identifier, current name or id is not a rename (7.9) */
        if (mode == W_UPDATE && strcmp(key, "Name") == 0 && json_is_string(v)) {
            char idbuf[24];
            snprintf(idbuf, sizeof(idbuf), "%llu", (unsigned long long)tg_rec_u64(nr, "ID", 0));
            const char *nv = json_string_value(v);
            if (strcmp(nv, ident) == 0 || strcasecmp(nv, tg_rec_str(nr, "Name", "")) == 0 || strcmp(nv, idbuf) == 0)
                continue;
        }
        if (self && f->perm != TG_PERM_SELF) {
            tg_api_error(r, 403, "not_allowed", "%s: an account may change only its own Alias, BillingEmail and QRCode", key);
            return -1;
        }
        if ((f->perm == TG_PERM_ROOT && !caller_root) || (f->perm == TG_PERM_ADMIN && !caller_admin)) {
            tg_api_error(r, 403, "not_allowed", "%s: only %s may set this field", key,
                         f->perm == TG_PERM_ROOT ? "root" : "root and owners");
            return -1;
        }
        switch (f->type) {
        case T_NAME:
        case T_EMAIL:
        case T_STR:
        case T_ACL:
        case T_MAP:
            if (!json_is_string(v)) {
                tg_api_error(r, 400, "invalid_type", "%s: must be a string", key);
                return -1;
            }
            if (strlen(json_string_value(v)) > 4096) {
                tg_api_error(r, 400, "invalid_value", "%s: longer than 4096 characters", key);
                return -1;
            }
            break;
        case T_INT:
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT_FIELD_MAX) {
                tg_api_error(r, 400, "invalid_type", "%s: must be a non-negative integer (a JSON number, not a string)", key);
                return -1;
            }
            break;
        case T_NUM:
        case T_MONEY:
            if (!json_is_number(v)) {
                tg_api_error(r, 400, "invalid_type", "%s: must be a number (a JSON number, not a string)", key);
                return -1;
            }
            break;
        case T_BOOL:
            if (!json_is_boolean(v)) {
                tg_api_error(r, 400, "invalid_type", "%s: must be true or false", key);
                return -1;
            }
            break;
        case T_OBJ: break;
        }
        const char *sv = json_is_string(v) ? json_string_value(v) : NULL;
        switch (f->type) {
        case T_NAME:
            if (!tg_valid_name(sv)) {
                tg_api_error(r, 400, "invalid_name",
                             "Name: must be 4-63 characters of letters, digits, '_', '.', '-', with at least one letter "
                             "(and not shaped like a filter such as L2)");
                return -1;
            }
            if (tg_acctrec_find_name(r->store, sv) != 0) {
                tg_api_error(r, 400, "name_taken", "Name: \"%s\" is already taken", sv);
                return -1;
            }
            ap->rename = sv;
            json_object_set(nr, key, v);
            if (mode == W_CREATE)
                json_object_set(nr, "Alias", v);
            break;
        case T_EMAIL:
            if (!tg_valid_email(sv)) {
                tg_api_error(r, 400, "invalid_email", "Email: \"%.100s\" is not a valid email address", sv);
                return -1;
            }
            if (strcasecmp(sv, tg_rec_str(nr, "Email", "")) == 0)
                continue;
            if (tg_acctrec_find_email(r->store, sv) != 0) {
                tg_api_error(r, 400, "email_taken", "Email: \"%s\" is already used by another account", sv);
                return -1;
            }
            ap->new_email = sv;
            json_object_set(nr, key, v);
            break;
        case T_STR:
            if (strcmp(key, "BillingEmail") == 0 && *sv && !tg_valid_email(sv)) {
                tg_api_error(r, 400, "invalid_email", "BillingEmail: \"%.100s\" is not a valid email address", sv);
                return -1;
            }
            if (strcmp(key, "QRCode") == 0 && *sv && strncmp(sv, "https://", 8) != 0 && strncmp(sv, "http://", 7) != 0) {
                tg_api_error(r, 400, "invalid_url", "QRCode: must be an http:// or https:// URL");
                return -1;
            }
            if (strcmp(key, "Alias") == 0 && strlen(sv) > 63) {
                tg_api_error(r, 400, "invalid_value", "Alias: at most 63 characters");
                return -1;
            }
            json_object_set(nr, key, v);
            break;
        case T_BOOL: json_object_set(nr, key, v); break;
        case T_MONEY: {
            int ok;
            int64_t nanos = tg_manage_money(v, &ok);
            if (strcmp(key, "CreditGranted") == 0) {
                if (!ok || nanos == 0 || (mode == W_CREATE && nanos < 0)) {
                    tg_api_error(r, 400, "invalid_value", "CreditGranted: must be a %snumber of dollars up to 1e9",
                                 mode == W_CREATE ? "positive " : "non-zero ");
                    return -1;
                }
                ap->credit = nanos;
                ap->has_credit = 1;
                continue; /* applied by the ledger */
            }
            if (!ok || nanos < 0) {
                tg_api_error(r, 400, "invalid_value", "%s: must be a non-negative number of dollars up to 1e9", key);
                return -1;
            }
            json_object_set_new(nr, key, json_integer((json_int_t)nanos));
            break;
        }
        case T_NUM: {
            double d = json_number_value(v);
            if (strcmp(key, "Days") == 0) {
                if (!(d > 0 && d <= 3650)) {
                    tg_api_error(r, 400, "invalid_value", "Days: must be more than 0 and at most 3650");
                    return -1;
                }
                ap->days = d;
                continue;
            }
            if (!(d > 0 && d <= RATES_MAX)) {
                tg_api_error(r, 400, "invalid_value", "%s: must be more than 0 and at most %g", key, RATES_MAX);
                return -1;
            }
            if (strcmp(key, "Rates") == 0) {
                double pr = p ? num_of(p, "Rates", 1.0) : 0;
                if (d < pr - 1e-12) {
                    tg_api_error(r, 400, "invalid_value", "Rates: must be at least the parent's Rates (%g)", pr);
                    return -1;
                }
                double old = num_of(nr, "Rates", 1.0);
                if (fabs(old - d) > 1e-12 && mode == W_UPDATE) {
                    ap->rates_changed = 1;
                    ap->old_rates = old;
                    ap->new_rates = d;
                }
            }
            json_object_set_new(nr, key, json_real(d));
            break;
        }
        case T_INT: {
            json_int_t iv = json_integer_value(v);
            if (f->bounded && p) {
                json_int_t pv = (json_int_t)tg_rec_i64(p, key, 0);
                if (pv > 0 && (iv == 0 || iv > pv)) {
                    tg_api_error(r, 400, "exceeds_parent", "%s: must be from 1 to %lld (the parent's %s)", key, (long long)pv,
                                 key);
                    return -1;
                }
            }
            if (strcmp(key, "Level") == 0 && (iv < 1 || iv > 64)) {
                tg_api_error(r, 400, "invalid_value", "Level: must be from 1 to 64");
                return -1;
            }
            json_object_set(nr, key, v);
            break;
        }
        case T_ACL: {
            const char *old = mode == W_CREATE ? "" : tg_rec_str(nr, key, "");
            char *edited = tg_acl_edit(f->sub, old, sv, why, sizeof(why));
            if (edited == NULL) {
                tg_api_error(r, 400, "invalid_value", "%s: %s", key, why);
                return -1;
            }
            char *bounded = tg_acl_intersect(f->sub, edited, p ? tg_rec_str(p, key, "") : "");
            free(edited);
            if (strcmp(bounded, tg_rec_str(nr, key, "")) != 0)
                ap->acl_changed = 1;
            json_object_set_new(nr, key, json_string(bounded));
            free(bounded);
            break;
        }
        case T_MAP:
            if (tg_mapper_valid(f->sub, sv, why, sizeof(why)) != 0) {
                tg_api_error(r, 400, "invalid_value", "%s: %s", key, why);
                return -1;
            }
            json_object_set(nr, key, v);
            break;
        case T_OBJ: {
            json_t *merged = tg_model_limits_merge(json_object_get(nr, key), v, why, sizeof(why));
            if (merged == NULL) {
                tg_api_error(r, 400, "invalid_value", "%s: %s", key, why);
                return -1;
            }
            json_object_set_new(nr, key, merged);
            break;
        }
        }
        if (f->type == T_MONEY)
            json_object_set_new(ap->changes, key, json_real(json_number_value(v)));
        else
            json_object_set(ap->changes, key, json_object_get(nr, key));
    }
    return 0;
}

/* The quota engine compiles these lists at publish: refuse what it would not compile. */
static int policy_check(tg_api_req_t *r, const json_t *nr)
{
    const char *f[5] = {"AllowIPs", "AllowModels", "Resources", "ModelMapper", "LevelMapper"};
    const char *v[5];
    for (int i = 0; i < 5; i++) {
        v[i] = tg_rec_str(nr, f[i], "");
        if (*v[i] == '\0')
            v[i] = NULL;
    }
    const json_t *ml = json_object_get(nr, "ModelLimits");
    tg_account_src_t src = {v[0], v[1], v[2], v[3], v[4], json_is_object(ml) && json_object_size(ml) ? ml : NULL};
    char *err = NULL;
    if (tg_policy_account_check(&src, &err) == 0)
        return 0;
    tg_api_error(r, 400, "invalid_value", "%s", err ? err : "the account's lists cannot be compiled");
    free(err);
    return -1;
}

/* ---- responses ---- */

json_t *tg_manage_parent_view(tg_api_req_t *r, const json_t *p)
{
    int64_t inflight = tg_api_inflight(r, tg_rec_u64(p, "ID", 0));
    return json_pack("{s:I, s:s, s:I, s:f, s:o, s:I, s:I, s:o, s:o, s:o, s:I}", "ID", (json_int_t)tg_rec_u64(p, "ID", 0), "Name",
                     tg_rec_str(p, "Name", ""), "Level", (json_int_t)tg_rec_i64(p, "Level", 1), "Rates", num_of(p, "Rates", 1.0),
                     "Balance", tg_api_money(tg_api_shown_balance(p, inflight)), "Child",
                     (json_int_t)tg_rec_i64(p, "Child", 0), "ChildLimit",
                     (json_int_t)tg_rec_i64(p, "ChildLimit", TG_CHILD_LIMIT_UNLIMITED), "CreditBalance", tg_api_cards_view(p),
                     "HardLimit", tg_api_money(tg_rec_i64(p, "HardLimit", 0)), "SoftLimit",
                     tg_api_money(tg_rec_i64(p, "SoftLimit", 0)), "RPM", (json_int_t)tg_rec_i64(p, "RPM", 0));
}

/* The key fields of REC that the Updates object always carries. */
static void add_key_fields(json_t *upd, const json_t *rec)
{
    json_object_set_new(upd, "Name", json_string(tg_rec_str(rec, "Name", "")));
    json_object_set_new(upd, "Email", json_string(tg_rec_str(rec, "Email", "")));
    json_object_set_new(upd, "CreditGranted", tg_api_money(tg_rec_i64(rec, "CreditGranted", 0)));
    json_object_set_new(upd, "CreditBalance", tg_api_cards_view(rec));
    json_object_set_new(upd, "Balance", tg_api_money(tg_api_shown_balance(rec, 0)));
    json_object_set_new(upd, "HardLimit", tg_api_money(tg_rec_i64(rec, "HardLimit", 0)));
    json_object_set_new(upd, "SoftLimit", tg_api_money(tg_rec_i64(rec, "SoftLimit", 0)));
    json_object_set_new(upd, "Level", json_integer(tg_rec_i64(rec, "Level", 1)));
    json_object_set_new(upd, "Rates", json_real(num_of(rec, "Rates", 1.0)));
    json_object_set_new(upd, "RPM", json_integer(tg_rec_i64(rec, "RPM", 0)));
    json_object_set_new(upd, "ChildLimit", json_integer(tg_rec_i64(rec, "ChildLimit", TG_CHILD_LIMIT_UNLIMITED)));
    json_object_set_new(upd, "Child", json_integer(tg_rec_i64(rec, "Child", 0)));
    json_object_set_new(upd, "Status", json_boolean(tg_rec_bool(rec, "Status", 1)));
}

/* The caller's funds cover COST (root's always do). Answers 400 and returns -1 otherwise. */
static int check_funds(tg_api_req_t *r, const json_t *payer, int64_t cost)
{
    if (tg_rec_u64(payer, "ID", 0) == TG_ROOT_ID)
        return 0;
    int64_t have = tg_api_available(r, payer);
    if (have >= cost)
        return 0;
    tg_api_error(r, 400, "insufficient_balance",
                 "CreditGranted: the caller's balance ($%.2f) does not cover the transfer ($%.2f at the Rates)",
                 tg_nanos_to_dollars(have), tg_nanos_to_dollars(cost));
    return -1;
}

/* ---- create ---- */

void tg_api_users_create(tg_api_req_t *r)
{
    if (r->rest.len > 1) { /* POST /x-users/{id} is an update (api-compat 4.0) */
        tg_api_users_update(r);
        return;
    }
    if (tg_api_require_manage(r) != 0)
        return;
    json_t *body = tg_api_body(r);
    if (body == NULL)
        return;
    tg_txn_t t;
    tg_txn_init(&t, r->store, r->arena);
    apply_t ap = {0};
    json_t *parent = tg_txn_load(&t, r->caller_id), *nr = NULL, *resp = NULL;
    if (parent == NULL) {
        tg_api_error(r, 500, NULL, "the caller's record cannot be read");
        goto done;
    }
    for (const char *const *req = (const char *const[]){"Name", "Email", "CreditGranted", NULL}; *req; req++)
        if (!json_object_get(body, *req)) {
            tg_api_error(r, 400, "missing_field", "%s: required", *req);
            goto done;
        }
    int64_t child_limit = tg_rec_i64(parent, "ChildLimit", TG_CHILD_LIMIT_UNLIMITED);
    if (tg_rec_i64(parent, "Child", 0) >= child_limit) {
        tg_api_error(r, 403, "child_limit", "this account may have at most %lld children (ChildLimit)", (long long)child_limit);
        goto done;
    }
    uint64_t id = 0;
    if (tg_store_meta_get(r->store, TG_META_NEXT_ACCOUNT_ID, &id) != 1 || id == 0) {
        tg_api_error(r, 500, NULL, "the account counter cannot be read");
        goto done;
    }
    char key[TG_KEY_LEN + 1], dna[512];
    if (tg_key_generate(key) != 0) {
        tg_api_error(r, 500, NULL, "the random number generator failed");
        goto done;
    }
    snprintf(dna, sizeof(dna), "%s%llu.", tg_rec_str(parent, "DNA", "."), (unsigned long long)id);
    tg_acctrec_init_t init = {.id = id,
                              .parent_id = r->caller_id,
                              .owner_id = r->caller_id == TG_ROOT_ID ? id : tg_rec_u64(parent, "OwnerID", TG_ROOT_ID),
                              .name = "pending",
                              .email = "",
                              .dna = dna,
                              .level = (int)tg_rec_i64(parent, "Level", 1),
                              .rates = num_of(parent, "Rates", 1.0),
                              .factor = num_of(parent, "Factor", 1.0),
                              .key = key,
                              .key_len = TG_KEY_LEN};
    nr = tg_acctrec_new_child(&init, parent, t.now);
    if (nr == NULL || tg_txn_add_new(&t, nr) == NULL) {
        nr = NULL;
        tg_api_error(r, 500, NULL, "out of memory");
        goto done;
    }
    if (apply_fields(r, body, nr, parent, W_CREATE, 0, "", &ap) != 0 || policy_check(r, nr) != 0)
        goto done;
    double min_bal = tg_api_owner_number(r, parent, "USER_MIN_BALANCE", 2.0);
    if ((double)ap.credit / 1e9 < min_bal - 1e-9) {
        tg_api_error(r, 400, "below_minimum", "CreditGranted: a new account needs at least $%.2f (USER_MIN_BALANCE)", min_bal);
        goto done;
    }
    int64_t cost = tg_rec_u64(parent, "ID", 0) == TG_ROOT_ID
                       ? ap.credit
                       : tg_money_convert(ap.credit, num_of(nr, "Rates", 1.0), num_of(parent, "Rates", 1.0));
    if (check_funds(r, parent, cost) != 0)
        goto done;
    int64_t paid = 0;
    if (tg_ledger_fund(t.b, r->store, parent, nr, ap.credit, ap.days, "Initial Funding", t.now, &paid) != 0) {
        tg_api_error(r, 500, NULL, "the transfer could not be recorded");
        goto done;
    }
    tg_rec_add_i64(parent, "Child", 1);
    uint8_t hash[32];
    tg_key_hash(key, TG_KEY_LEN, hash);
    tg_acctrec_put_keyhash(t.b, r->store, hash, id);
    tg_acctrec_index_put(t.b, r->store, nr);
    tg_store_meta_put(t.b, r->store, TG_META_NEXT_ACCOUNT_ID, id + 1);
    json_t *details = json_deep_copy(ap.changes);
    json_object_set_new(details, "CreditGranted", tg_api_money(ap.credit));
    json_object_set_new(details, "ParentPaid", tg_api_money(paid));
    tg_api_audit(r, t.b, "add_user", nr, details);
    char *err = NULL;
    if (tg_txn_commit(&t, &err) != 0) {
        tg_error("x-users: creating %s: %s", tg_rec_str(nr, "Name", ""), err ? err : "?");
        free(err);
        tg_api_error(r, 500, NULL, "the account could not be stored");
        goto done;
    }
    json_t *upd = json_object();
    add_key_fields(upd, nr);
    resp = json_pack("{s:s, s:o, s:{s:I, s:s, s:s, s:s, s:s, s:s, s:o}}", "Action", "add", "Parent",
                     tg_manage_parent_view(r, parent), "User", "ID", (json_int_t)id, "Name", tg_rec_str(nr, "Name", ""), "Alias",
                     tg_rec_str(nr, "Alias", ""), "DNA", tg_rec_str(nr, "DNA", ""), "SecretKey", key, "PartialKey",
                     tg_rec_str(nr, "PartialKey", ""), "Updates", upd);
    explicit_bzero(key, sizeof(key));
    tg_api_send(r, 200, resp);
done:
    json_decref(ap.changes);
    json_decref(body);
    tg_txn_dispose(&t);
}

/* ---- update ---- */

/* After an ACL change of TOP, every descendant's lists are re-intersected with its parent's. */
static void cascade_acls(tg_api_req_t *r, tg_txn_t *t, json_t *top)
{
    json_t *subtree = tg_manage_subtree(r, top, 0, 0);
    static const struct {
        const char *name;
        char kind;
    } acls[] = {{"AllowIPs", 'I'}, {"AllowModels", 'M'}, {"AllowLevels", 'L'}, {"Resources", 'R'}};
    size_t i;
    json_t *rec;
    /* DNA order: every parent comes before its children */
    json_array_foreach(subtree, i, rec)
    {
        json_t *d = tg_txn_load(t, tg_rec_u64(rec, "ID", 0));
        json_t *pp = tg_manage_parent(r->store, d);
        json_t *p = pp ? tg_txn_load(t, tg_rec_u64(pp, "ID", 0)) : NULL;
        json_decref(pp);
        if (d == NULL || p == NULL)
            continue;
        for (size_t k = 0; k < sizeof(acls) / sizeof(acls[0]); k++) {
            char *x = tg_acl_intersect(acls[k].kind, tg_rec_str(d, acls[k].name, ""), tg_rec_str(p, acls[k].name, ""));
            if (x && strcmp(x, tg_rec_str(d, acls[k].name, "")) != 0)
                json_object_set_new(d, acls[k].name, json_string(x));
            free(x);
        }
    }
    json_decref(subtree);
}

/* Orders SUBTREE by DNA (parents first): tg_manage_subtree sorts by id, which is the same order
 * for a tree grown by creation (a child's id is always above its parent's). */

void tg_api_users_update(tg_api_req_t *r)
{
    char ident[320];
    if (rest_ident(r, ident, sizeof(ident)) != 1) {
        tg_api_error(r, 400, "missing_identifier", "use /x-users/{id|name|email}");
        return;
    }
    json_t *body = tg_api_body(r);
    if (body == NULL)
        return;
    tg_txn_t t;
    tg_txn_init(&t, r->store, r->arena);
    apply_t ap = {0};
    json_t *target0 = NULL, *resp = NULL;
    int self = 0;
    uint64_t tid = tg_manage_ident_id(r->store, ident);
    self = tid == r->caller_id;
    if (!self && tg_api_require_manage(r) != 0)
        goto done;
    if ((target0 = tg_manage_resolve(r, ident, 1)) == NULL)
        goto done;
    json_t *nr = tg_txn_load(&t, tid);
    json_t *op = tg_txn_load(&t, r->caller_id);
    json_t *pcopy = tg_manage_parent(r->store, nr);
    json_t *p = pcopy ? tg_txn_load(&t, tg_rec_u64(pcopy, "ID", 0)) : NULL;
    json_decref(pcopy);
    if (nr == NULL || op == NULL) {
        tg_api_error(r, 500, NULL, "the records cannot be read");
        goto done;
    }
    char old_name[80], old_email[320];
    snprintf(old_name, sizeof(old_name), "%s", tg_rec_str(nr, "Name", ""));
    snprintf(old_email, sizeof(old_email), "%s", tg_rec_str(nr, "Email", ""));
    if (apply_fields(r, body, nr, p, W_UPDATE, self, ident, &ap) != 0 || policy_check(r, nr) != 0)
        goto done;
    /* a Rates change must keep every child at or above it */
    if (ap.rates_changed) {
        json_t *kids = tg_manage_subtree(r, nr, 1, 0);
        size_t i;
        json_t *k;
        json_array_foreach(kids, i, k) if (num_of(k, "Rates", 1.0) < ap.new_rates - 1e-12)
        {
            tg_api_error(r, 400, "invalid_value", "Rates: child %s has Rates %g, lower than %g", tg_rec_str(k, "Name", ""),
                         num_of(k, "Rates", 1.0), ap.new_rates);
            json_decref(kids);
            goto done;
        }
        json_decref(kids);
        if (tg_ledger_rescale(t.b, r->store, nr, ap.old_rates, ap.new_rates, t.now) != 0) {
            tg_api_error(r, 500, NULL, "the rescale could not be recorded");
            goto done;
        }
    }
    int64_t moved = 0;
    if (ap.has_credit) {
        if (self) {
            tg_api_error(r, 403, "not_allowed", "CreditGranted: an account cannot fund itself");
            goto done;
        }
        if (ap.credit > 0) {
            int64_t cost = r->caller_id == TG_ROOT_ID ? ap.credit
                                                      : tg_money_convert(ap.credit, num_of(nr, "Rates", 1.0),
                                                                         num_of(op, "Rates", 1.0));
            if (check_funds(r, op, cost) != 0)
                goto done;
            if (tg_ledger_fund(t.b, r->store, op, nr, ap.credit, ap.days, "Recharge", t.now, &moved) != 0) {
                tg_api_error(r, 500, NULL, "the transfer could not be recorded");
                goto done;
            }
        } else {
            int64_t want = -ap.credit, have = tg_api_available(r, nr);
            if (want > have) {
                tg_api_error(r, 400, "insufficient_balance", "CreditGranted: the account holds only $%.2f to claw back",
                             tg_nanos_to_dollars(have));
                goto done;
            }
            if (tg_ledger_clawback(t.b, r->store, op, nr, want, t.now, &moved) != 0) {
                tg_api_error(r, 500, NULL, "the claw-back could not be recorded");
                goto done;
            }
        }
        json_object_set_new(ap.changes, "CreditGranted", tg_api_money(ap.credit));
    }
    if (ap.rename || ap.new_email) {
        json_t *old = json_pack("{s:s, s:s, s:s}", "Name", old_name, "Email", old_email, "DNA", "");
        tg_acctrec_index_del(t.b, r->store, old);
        json_decref(old);
        tg_acctrec_index_put(t.b, r->store, nr);
    }
    if (ap.acl_changed)
        cascade_acls(r, &t, nr);
    char ts[21];
    tg_rfc3339(t.now, ts);
    json_object_set_new(nr, "UpdatedAt", json_string(ts));
    json_t *details = json_deep_copy(ap.changes);
    if (ap.has_credit)
        json_object_set_new(details, ap.credit > 0 ? "ParentPaid" : "ParentCredited", tg_api_money(moved));
    tg_api_audit(r, t.b, ap.has_credit ? (ap.credit > 0 ? "recharge_user" : "clawback_user") : "update_user", nr, details);
    char *err = NULL;
    if (tg_txn_commit(&t, &err) != 0) {
        tg_error("x-users: updating %s: %s", old_name, err ? err : "?");
        free(err);
        tg_api_error(r, 500, NULL, "the account could not be stored");
        goto done;
    }
    json_t *upd = json_deep_copy(ap.changes);
    add_key_fields(upd, nr);
    resp = json_pack("{s:s, s:o, s:{s:I, s:s, s:o}}", "Action", "update", "Parent", tg_manage_parent_view(r, op), "User", "ID",
                     (json_int_t)tid, "Name", tg_rec_str(nr, "Name", ""), "Updates", upd);
    tg_api_send(r, 200, resp);
done:
    json_decref(target0);
    json_decref(ap.changes);
    json_decref(body);
    tg_txn_dispose(&t);
}

/* ---- delete ---- */

void tg_api_users_delete(tg_api_req_t *r)
{
    char ident[320];
    if (rest_ident(r, ident, sizeof(ident)) != 1) {
        tg_api_error(r, 400, "missing_identifier", "use /x-users/{id|name|email}");
        return;
    }
    if (tg_api_require_manage(r) != 0)
        return;
    json_t *target0 = tg_manage_resolve(r, ident, 0);
    if (target0 == NULL)
        return;
    tg_txn_t t;
    tg_txn_init(&t, r->store, r->arena);
    uint64_t tid = tg_rec_u64(target0, "ID", 0);
    json_t *nr = tg_txn_load(&t, tid);
    json_t *pcopy = tg_manage_parent(r->store, nr);
    json_t *p = pcopy ? tg_txn_load(&t, tg_rec_u64(pcopy, "ID", 0)) : NULL;
    json_decref(pcopy);
    if (nr == NULL || p == NULL) {
        tg_api_error(r, 500, NULL, "the records cannot be read");
        goto done;
    }
    /* what the worker settled but the drain has not moved yet still leaves the balance */
    int64_t inflight = tg_api_inflight(r, tid);
    if (inflight > 0 && (tg_cards_take(nr, inflight, t.now, NULL) != 0 ||
                         tg_ledger_append(t.b, r->store, nr, "spend", -inflight, 0, 0, "in flight at deletion", t.now_ms) != 0)) {
        tg_api_error(r, 500, NULL, "the deletion could not be recorded");
        goto done;
    }
    int changed = 0;
    tg_ledger_expire(t.b, r->store, nr, t.now, &changed);
    json_t *user_view = json_pack("{s:I, s:s, s:f, s:o}", "ID", (json_int_t)tid, "Name", tg_rec_str(nr, "Name", ""), "Rates",
                                  num_of(nr, "Rates", 1.0), "CreditBalance", tg_api_cards_view(nr));
    int64_t credited = 0;
    if (tg_ledger_refund_delete(t.b, r->store, p, nr, t.now, &credited) != 0) {
        json_decref(user_view);
        tg_api_error(r, 500, NULL, "the refund could not be recorded");
        goto done;
    }
    if (tg_rec_u64(nr, "ParentID", 0) == tg_rec_u64(p, "ID", 0))
        tg_rec_add_i64(p, "Child", -1);
    tg_txn_delete(&t, nr);
    json_t *details = json_pack("{s:s, s:s, s:o}", "Name", tg_rec_str(nr, "Name", ""), "Email", tg_rec_str(nr, "Email", ""),
                                "Refunded", tg_api_money(credited));
    tg_api_audit(r, t.b, "delete_user", nr, details);
    char *err = NULL;
    if (tg_txn_commit(&t, &err) != 0) {
        json_decref(user_view);
        tg_error("x-users: deleting %s: %s", ident, err ? err : "?");
        free(err);
        tg_api_error(r, 500, NULL, "the deletion could not be stored");
        goto done;
    }
    json_t *resp = json_pack("{s:s, s:{s:I, s:s, s:f, s:o, s:o}, s:o, s:o}", "Action", "delete", "Parent", "ID",
                             (json_int_t)tg_rec_u64(p, "ID", 0), "Name", tg_rec_str(p, "Name", ""), "Rates", num_of(p, "Rates", 1.0),
                             "CreditBalance", tg_api_cards_view(p), "Balance", tg_api_money(tg_api_shown_balance(p, 0)), "User", user_view,
                             "Refunded", tg_api_money(credited));
    tg_api_send(r, 200, resp);
done:
    json_decref(target0);
    tg_txn_dispose(&t);
}

/* ---- key rotation ---- */

static void today(char out[11])
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

/* Gives account ID the key KEY: record fields, key index (old entry removed), audit, publish. */
static int rotate(tg_api_req_t *r, uint64_t id, const char *key, const char *action)
{
    tg_txn_t t;
    tg_txn_init(&t, r->store, r->arena);
    json_t *rec = tg_txn_load(&t, id);
    int rc = -1;
    if (rec == NULL)
        goto done;
    uint8_t old_hash[32], hash[32];
    const char *old_hex = tg_rec_str(rec, "KeyHash", "");
    if (tg_unhex(old_hex, strlen(old_hex), old_hash, 32) == 32)
        rocksdb_writebatch_delete_cf(t.b, r->store->cf[TG_CF_KEYHASH], (const char *)old_hash, 32);
    char hex[65], ts[21];
    tg_key_hash(key, TG_KEY_LEN, hash);
    tg_hex(hash, 32, hex);
    json_object_set_new(rec, "KeyHash", json_string(hex));
    json_object_set_new(rec, "PartialKey", json_string(key + TG_KEY_LEN - TG_PARTIAL_KEY_LEN));
    tg_rfc3339(t.now, ts);
    json_object_set_new(rec, "UpdatedAt", json_string(ts));
    tg_acctrec_put_keyhash(t.b, r->store, hash, id);
    tg_api_audit(r, t.b, action, rec, json_pack("{s:s}", "SecretKey", "***"));
    char *err = NULL;
    if (tg_txn_commit(&t, &err) != 0) {
        tg_error("%s: account %llu: %s", action, (unsigned long long)id, err ? err : "?");
        free(err);
        goto done;
    }
    rc = 0;
done:
    tg_txn_dispose(&t);
    return rc;
}

static void rotate_reply(tg_api_req_t *r, const char *action, uint64_t id, const char *name, const char *key)
{
    char ts[21];
    tg_rfc3339(time(NULL), ts);
    tg_api_send(r, 200,
                json_pack("{s:b, s:s, s:{s:s, s:I, s:s, s:s, s:s}}", "success", 1, "message",
                          "the key was rotated; the old key no longer works", "rotate", "action", action, "id", (json_int_t)id,
                          "name", name, "key", key, "timestamp", ts));
}

static int check_confirm(tg_api_req_t *r, json_t *body, const char *suffix, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            ok |= strcmp(*a, k) == 0;
        if (!ok) {
            tg_api_error(r, 400, "unknown_field", "%s: unknown field", k);
            return -1;
        }
    }
    char want[40], d[11];
    today(d);
    snprintf(want, sizeof(want), "%s-%s", d, suffix);
    json_t *c = json_object_get(body, "confirm");
    if (!json_is_string(c) || strcmp(json_string_value(c), want) != 0) {
        tg_api_error(r, 400, "confirm_required", "confirm: must be \"%s\" (today's date)", want);
        return -1;
    }
    return 0;
}

void tg_api_self_rotate(tg_api_req_t *r)
{
    json_t *body = tg_api_body(r);
    if (body == NULL)
        return;
    if (check_confirm(r, body, "ROTATE-SELF", (const char *const[]){"confirm", NULL}) != 0) {
        json_decref(body);
        return;
    }
    json_decref(body);
    char key[TG_KEY_LEN + 1];
    if (tg_key_generate(key) != 0 || rotate(r, r->caller_id, key, "rotate_self") != 0) {
        tg_api_error(r, 500, NULL, "the key could not be rotated");
        return;
    }
    rotate_reply(r, "rotate_self", r->caller_id, tg_rec_str(r->caller, "Name", ""), key);
    explicit_bzero(key, sizeof(key));
}

void tg_api_root_rotate(tg_api_req_t *r)
{
    if (r->caller_id != TG_ROOT_ID) {
        tg_api_error(r, 403, "not_root", "only root may use /x-root");
        return;
    }
    json_t *body = tg_api_body(r);
    if (body == NULL)
        return;
    json_t *target = NULL;
    if (check_confirm(r, body, "ROTATE-ROOT", (const char *const[]){"confirm", "name", "key", NULL}) != 0)
        goto done;
    json_t *name = json_object_get(body, "name"), *keyv = json_object_get(body, "key");
    if ((name && !json_is_string(name)) || (keyv && !json_is_string(keyv))) {
        tg_api_error(r, 400, "invalid_type", "%s: must be a string", name && !json_is_string(name) ? "name" : "key");
        goto done;
    }
    const char *who = name ? json_string_value(name) : "root";
    uint64_t id = tg_manage_ident_id(r->store, who);
    target = id ? tg_store_json_get(r->store, TG_CF_ACCOUNTS, id) : NULL;
    if (target == NULL) {
        tg_api_error(r, 404, "account_not_found", "name: no account %s", who);
        goto done;
    }
    char key[TG_KEY_LEN + 1];
    if (keyv) {
        const char *k = json_string_value(keyv);
        if (!tg_key_is_valid(k, strlen(k))) {
            tg_api_error(r, 400, "invalid_key", "key: must be \"sk-Xvs\" followed by 45 letters or digits");
            goto done;
        }
        json_t *other = tg_acctrec_by_key(r->store, k, strlen(k));
        if (other) {
            json_decref(other);
            tg_api_error(r, 400, "key_taken", "key: already in use");
            goto done;
        }
        memcpy(key, k, TG_KEY_LEN + 1);
    } else if (tg_key_generate(key) != 0) {
        tg_api_error(r, 500, NULL, "the random number generator failed");
        goto done;
    }
    if (rotate(r, id, key, "rotate_root") != 0) {
        tg_api_error(r, 500, NULL, "the key could not be rotated");
        goto done;
    }
    rotate_reply(r, "rotate_root", id, tg_rec_str(target, "Name", ""), key);
    explicit_bzero(key, sizeof(key));
done:
    json_decref(target);
    json_decref(body);
}
