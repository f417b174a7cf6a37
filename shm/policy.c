/* Policy blobs, the policy heap, and the owner-level snapshot (design in policy.h). */
#include "shm/policy.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <yaml.h>

#include "shm/matcher.h"

/* The price table built into the binary: generated from conf/prices.yaml by CMake. */
extern const unsigned char tg_prices_builtin[];
extern const size_t tg_prices_builtin_len;

const char *tg_policy_builtin_prices(size_t *len)
{
    *len = tg_prices_builtin_len;
    return (const char *)tg_prices_builtin;
}

static int fail(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(char **err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(err, fmt, ap) < 0)
            *err = NULL;
        va_end(ap);
    }
    return -1;
}

/* ======================================================================================= */
/* Compiling one section                                                                    */
/* ======================================================================================= */

/* Field names for error messages: account records and owner config keys differ. */
typedef struct sec_names {
    const char *ips, *models, *resources, *mmap, *lmap, *mlim, *prices, *switch_over, *failover;
} sec_names_t;

static const sec_names_t g_account_names = {"AllowIPs", "AllowModels", "Resources", "ModelMapper", "LevelMapper",
                                            "ModelLimits", "PRICES", "SWITCH_OVER", "MODEL_FAILOVER"};
static const sec_names_t g_owner_names = {"AllowIPs", "AllowModels", "RESOURCES", "MODEL_MAPPER", "LEVEL_MAPPER",
                                          "MODEL_LIMITS", "PRICES", "SWITCH_OVER", "MODEL_FAILOVER"};

typedef uint32_t (*state_fn)(void *ud, const char *pat, size_t n);

typedef struct sec_in {
    const char *ips, *models, *resources, *mmap, *lmap, *switch_over, *failover;
    const json_t *mlim, *prices;
    uint32_t flags, dct;
    int64_t min_balance;
    state_fn state_for; /* NULL: validation only (states left TG_MLIM_NONE) */
    void *ud;
    const sec_names_t *names;
} sec_in_t;

/* A dynamic array of rule sources plus the strings they point at. */
typedef struct rules {
    tg_rule_src_t *v;
    size_t n, cap;
    char **owned; /* strings to free */
    size_t n_owned, cap_owned;
    void **vals;
    size_t n_vals, cap_vals;
    int oom;
} rules_t;

static void *grow(void *p, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return p;
    size_t c = *cap ? *cap * 2 : 8;
    void *q = realloc(p, c * elem);
    if (q)
        *cap = c;
    return q;
}

static char *rules_own(rules_t *r, const char *s, size_t n)
{
    char **o = grow(r->owned, &r->cap_owned, r->n_owned, sizeof(char *));
    char *c = o ? malloc(n + 1) : NULL;
    if (!c) {
        if (o)
            r->owned = o;
        r->oom = 1;
        return NULL;
    }
    r->owned = o;
    memcpy(c, s, n);
    c[n] = '\0';
    r->owned[r->n_owned++] = c;
    return c;
}

static void *rules_val(rules_t *r, const void *v, size_t n)
{
    void **o = grow(r->vals, &r->cap_vals, r->n_vals, sizeof(void *));
    void *c = o ? malloc(n) : NULL;
    if (!c) {
        if (o)
            r->vals = o;
        r->oom = 1;
        return NULL;
    }
    r->vals = o;
    memcpy(c, v, n);
    r->vals[r->n_vals++] = c;
    return c;
}

static int rules_add(rules_t *r, const char *pat, size_t pn, const void *val, size_t vn, int is_str)
{
    tg_rule_src_t *v = grow(r->v, &r->cap, r->n, sizeof(*v));
    if (!v) {
        r->oom = 1;
        return -1;
    }
    r->v = v;
    v[r->n++] = (tg_rule_src_t){pat, pn, val, vn, is_str};
    return 0;
}

static void rules_dispose(rules_t *r)
{
    for (size_t i = 0; i < r->n_owned; i++)
        free(r->owned[i]);
    for (size_t i = 0; i < r->n_vals; i++)
        free(r->vals[i]);
    free(r->owned);
    free(r->vals);
    free(r->v);
    memset(r, 0, sizeof(*r));
}

static void trim(const char **p, size_t *n)
{
    while (*n && (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')) {
        (*p)++;
        (*n)--;
    }
    while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t' || (*p)[*n - 1] == '\n' || (*p)[*n - 1] == '\r'))
        (*n)--;
}

/* Calls FN for each "left=right" item of a comma-separated mapper. */
typedef int (*pair_fn)(void *ud, const char *l, size_t ln, const char *r, size_t rn);
static int each_pair(const char *s, const char *what, pair_fn fn, void *ud, char **err)
{
    while (s && *s) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        const char *item = s;
        trim(&item, &n);
        s = comma ? comma + 1 : NULL;
        if (n == 0)
            continue;
        const char *eq = memchr(item, '=', n);
        if (!eq)
            return fail(err, "%s: '%.*s' is not of the form pattern=value", what, (int)n, item);
        const char *l = item, *r = eq + 1;
        size_t ln = (size_t)(eq - item), rn = n - ln - 1;
        trim(&l, &ln);
        trim(&r, &rn);
        if (ln == 0 || rn == 0)
            return fail(err, "%s: '%.*s' is not of the form pattern=value", what, (int)n, item);
        int rc = fn(ud, l, ln, r, rn);
        if (rc == -2)
            return fail(err, "%s: '%.*s': the value must be a positive level", what, (int)n, item);
        if (rc != 0)
            return fail(err, "%s: out of memory", what);
    }
    return 0;
}

static int parse_level(const char *s, size_t n, int32_t *out)
{
    int64_t v = 0;
    if (n == 0 || n > 9)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1)
        return -1;
    *out = (int32_t)v;
    return 0;
}

static int add_mmap(void *ud, const char *l, size_t ln, const char *r, size_t rn)
{
    rules_t *rs = ud;
    char *pat = rules_own(rs, l, ln), *dst = rules_own(rs, r, rn);
    if (!pat || !dst)
        return -1;
    return rules_add(rs, pat, ln, dst, rn, 1);
}

static int add_lmap(void *ud, const char *l, size_t ln, const char *r, size_t rn)
{
    rules_t *rs = ud;
    int32_t level[2] = {0, 0}; /* 8 bytes: values are 8-aligned */
    if (parse_level(r, rn, &level[0]) != 0)
        return -2;
    char *pat = rules_own(rs, l, ln);
    void *v = rules_val(rs, level, sizeof(level));
    if (!pat || !v)
        return -1;
    return rules_add(rs, pat, ln, v, sizeof(level), 0);
}

typedef struct acl_ctx {
    rules_t *rs;
    int resources;
    const char *what;
    char **err;
    tg_cidr4_t *v4;
    tg_cidr6_t *v6;
    uint32_t n4, n6;
    size_t cap4, cap6;
} acl_ctx_t;

static int add_acl_item(void *ud, const char *item, size_t len)
{
    acl_ctx_t *c = ud;
    if (item[0] == '-' || (len == 1 && item[0] == '*'))
        return 0;
    if (c->resources && item[0] != '/')
        return fail(c->err, "%s: '%.*s' is not a path (it must start with /)", c->what, (int)len, item);
    if (len > 255)
        return fail(c->err, "%s: '%.*s...' is too long", c->what, 32, item);
    char *pat;
    size_t plen = len;
    if (c->resources && item[len - 1] != '*') { /* prefix match */
        char tmp[260];
        memcpy(tmp, item, len);
        tmp[len] = '*';
        pat = rules_own(c->rs, tmp, len + 1);
        plen = len + 1;
    } else {
        pat = rules_own(c->rs, item, len);
    }
    if (!pat || rules_add(c->rs, pat, plen, NULL, 0, 0) != 0)
        return fail(c->err, "%s: out of memory", c->what);
    return 0;
}

static int add_ip_item(void *ud, const char *item, size_t len)
{
    acl_ctx_t *c = ud;
    if (item[0] == '-' || (len == 1 && item[0] == '*'))
        return 0;
    tg_cidr4_t v4;
    tg_cidr6_t v6;
    int fam = tg_cidr_parse(item, len, &v4, &v6);
    if (fam == 0)
        return fail(c->err, "%s: '%.*s' is not an IP address or CIDR block", c->what, (int)(len > 64 ? 64 : len), item);
    if (fam == 4) {
        tg_cidr4_t *v = grow(c->v4, &c->cap4, c->n4, sizeof(*v));
        if (!v)
            return fail(c->err, "%s: out of memory", c->what);
        c->v4 = v;
        c->v4[c->n4++] = v4;
    } else {
        tg_cidr6_t *v = grow(c->v6, &c->cap6, c->n6, sizeof(*v));
        if (!v)
            return fail(c->err, "%s: out of memory", c->what);
        c->v6 = v;
        c->v6[c->n6++] = v6;
    }
    return 0;
}

static int set_off(tg_mbuf_t *b, int sec, size_t off, char **err)
{
    if (off == (size_t)-1 || b->oom)
        return fail(err, "policy: out of memory");
    ((tg_psec_t *)b->p)->off[sec] = (uint32_t)off;
    return 0;
}

static int compile_acl(tg_mbuf_t *b, int sec, const char *list, int resources, const char *what, char **err)
{
    int mode = tg_list_mode(list);
    ((tg_psec_t *)b->p)->mode[sec] = (uint8_t)mode;
    if (mode != TG_LIST_ITEMS)
        return 0;
    rules_t rs = {0};
    acl_ctx_t c = {&rs, resources, what, err, NULL, NULL, 0, 0, 0, 0};
    int rc = tg_list_each(list, add_acl_item, &c);
    if (rc == 0)
        rc = set_off(b, sec, tg_rules_compile(b, rs.v, rs.n), err);
    rules_dispose(&rs);
    return rc;
}

static int compile_ips(tg_mbuf_t *b, const char *list, const char *what, char **err)
{
    int mode = tg_list_mode(list);
    ((tg_psec_t *)b->p)->mode[TG_SEC_IPS] = (uint8_t)mode;
    if (mode == TG_LIST_ANY)
        return 0;
    acl_ctx_t c = {NULL, 0, what, err, NULL, NULL, 0, 0, 0, 0};
    int rc = 0;
    if (mode == TG_LIST_NONE) { /* "-*": loopback only (api-compat 1.5) */
        rc = add_ip_item(&c, "127.0.0.0/8", 11);
        if (rc == 0)
            rc = add_ip_item(&c, "::1", 3);
        ((tg_psec_t *)b->p)->mode[TG_SEC_IPS] = TG_LIST_ITEMS;
    } else {
        rc = tg_list_each(list, add_ip_item, &c);
    }
    if (rc == 0)
        rc = set_off(b, TG_SEC_IPS, tg_cidr_compile(b, c.v4, c.n4, c.v6, c.n6), err);
    free(c.v4);
    free(c.v6);
    return rc;
}

static int compile_pairs(tg_mbuf_t *b, int sec, const char *s, pair_fn fn, const char *what, char **err)
{
    if (!s || !*s)
        return 0;
    rules_t rs = {0};
    int rc = each_pair(s, what, fn, &rs, err);
    if (rc == 0 && rs.n)
        rc = set_off(b, sec, tg_rules_compile(b, rs.v, rs.n), err);
    rules_dispose(&rs);
    return rc;
}

typedef struct switch_pair {
    int32_t from, to;
} switch_pair_t;

typedef struct switch_acc {
    switch_pair_t *v;
    size_t n, cap;
} switch_acc_t;

static int add_switch(void *ud, const char *l, size_t ln, const char *r, size_t rn)
{
    switch_acc_t *s = ud;
    switch_pair_t p;
    if (parse_level(l, ln, &p.from) != 0 || parse_level(r, rn, &p.to) != 0)
        return -2;
    switch_pair_t *v = grow(s->v, &s->cap, s->n, sizeof(*v));
    if (!v)
        return -1;
    s->v = v;
    v[s->n++] = p;
    return 0;
}

static int compile_switch(tg_mbuf_t *b, const char *s, const char *what, char **err)
{
    if (!s || !*s)
        return 0;
    switch_acc_t acc = {0};
    int rc = each_pair(s, what, add_switch, &acc, err);
    if (rc == 0 && acc.n) {
        uint32_t n[2] = {(uint32_t)acc.n, 0};
        size_t off = tg_mbuf_add(b, n, sizeof(n), 8);
        if (off != (size_t)-1)
            tg_mbuf_add(b, acc.v, acc.n * sizeof(switch_pair_t), 4);
        rc = set_off(b, TG_SEC_SWITCH, off, err);
    }
    free(acc.v);
    return rc;
}

static const char *const g_ml_keys[TG_ML_COUNT] = {"rpm", "rph", "rpd", "tpm", "tph", "tpd"};

static int compile_mlim(tg_mbuf_t *b, const sec_in_t *in, char **err)
{
    const json_t *obj = in->mlim;
    const char *what = in->names->mlim;
    if (!obj || json_is_null(obj))
        return 0;
    if (!json_is_object(obj))
        return fail(err, "%s: must be an object {\"model\":{\"rpm\":N,...}}", what);
    if (json_object_size(obj) == 0)
        return 0;
    rules_t rs = {0};
    const char *key;
    json_t *val;
    int rc = 0;
    json_object_foreach((json_t *)obj, key, val)
    {
        size_t kn = strlen(key);
        if (kn == 0 || kn > 255) {
            rc = fail(err, "%s: a model pattern is empty or too long", what);
            break;
        }
        if (!json_is_object(val)) {
            rc = fail(err, "%s: %s: must be an object of limits (rpm, rph, rpd, tpm, tph, tpd)", what, key);
            break;
        }
        tg_mlimit_t ml;
        memset(&ml, 0, sizeof(ml));
        const char *lk;
        json_t *lv;
        json_object_foreach(val, lk, lv)
        {
            int k = -1;
            for (int i = 0; i < TG_ML_COUNT; i++)
                if (strcmp(lk, g_ml_keys[i]) == 0)
                    k = i;
            if (k < 0) {
                rc = fail(err, "%s: %s: unknown limit '%s' (use rpm, rph, rpd, tpm, tph, tpd)", what, key, lk);
                break;
            }
            if (!json_is_integer(lv) || json_integer_value(lv) < 0) {
                rc = fail(err, "%s: %s: %s must be a non-negative integer", what, key, lk);
                break;
            }
            ml.lim[k] = (uint64_t)json_integer_value(lv);
        }
        if (rc)
            break;
        int any = 0;
        for (int i = 0; i < TG_ML_COUNT; i++)
            any |= ml.lim[i] != 0;
        if (!any)
            continue; /* all unlimited: nothing to enforce */
        ml.state = TG_MLIM_NONE;
        if (in->state_for) {
            ml.state = in->state_for(in->ud, key, kn);
            if (ml.state == TG_MLIM_NONE) {
                rc = fail(err, "%s: the model-limit region is full (raise arena.max_accounts)", what);
                break;
            }
        }
        char *pat = rules_own(&rs, key, kn);
        void *v = rules_val(&rs, &ml, sizeof(ml));
        if (!pat || !v || rules_add(&rs, pat, kn, v, sizeof(ml), 0) != 0) {
            rc = fail(err, "%s: out of memory", what);
            break;
        }
    }
    if (rc == 0 && rs.n)
        rc = set_off(b, TG_SEC_MLIM, tg_rules_compile(b, rs.v, rs.n), err);
    rules_dispose(&rs);
    return rc;
}

static int price_field(const json_t *v, const char *model, const char *k, int required, uint64_t *out, char **err)
{
    const json_t *x = json_object_get(v, k);
    if (!x) {
        if (required)
            return fail(err, "PRICES: %s: '%s' (USD per million tokens) is required", model, k);
        return 1;
    }
    if (!json_is_number(x) || json_number_value(x) < 0 || json_number_value(x) > 1e6)
        return fail(err, "PRICES: %s: '%s' must be a number of USD per million tokens", model, k);
    *out = (uint64_t)llround(json_number_value(x) * 1e6);
    return 0;
}

static int compile_prices(tg_mbuf_t *b, const json_t *obj, char **err)
{
    if (!obj || json_is_null(obj))
        return 0;
    if (!json_is_object(obj))
        return fail(err, "PRICES: must be an object {\"model\":{\"input\":USD,\"output\":USD,\"cached\":USD}}");
    if (json_object_size(obj) == 0)
        return 0;
    rules_t rs = {0};
    const char *key;
    json_t *val;
    int rc = 0;
    json_object_foreach((json_t *)obj, key, val)
    {
        size_t kn = strlen(key);
        if (kn == 0 || kn > 255) {
            rc = fail(err, "PRICES: a model pattern is empty or too long");
            break;
        }
        if (!json_is_object(val)) {
            rc = fail(err, "PRICES: %s: must be an object {\"input\",\"output\",\"cached\"}", key);
            break;
        }
        const char *fk;
        json_t *fv;
        json_object_foreach(val, fk, fv)
        {
            if (strcmp(fk, "input") && strcmp(fk, "output") && strcmp(fk, "cached")) {
                rc = fail(err, "PRICES: %s: unknown field '%s' (use input, output, cached)", key, fk);
                break;
            }
        }
        if (rc)
            break;
        tg_price_t p = {0, 0, 0};
        if (price_field(val, key, "input", 1, &p.input, err) < 0 || price_field(val, key, "output", 1, &p.output, err) < 0) {
            rc = -1;
            break;
        }
        int r = price_field(val, key, "cached", 0, &p.cached, err);
        if (r < 0) {
            rc = -1;
            break;
        }
        if (r == 1)
            p.cached = p.input;
        char *pat = rules_own(&rs, key, kn);
        void *v = rules_val(&rs, &p, sizeof(p));
        if (!pat || !v || rules_add(&rs, pat, kn, v, sizeof(p), 0) != 0) {
            rc = fail(err, "PRICES: out of memory");
            break;
        }
    }
    if (rc == 0 && rs.n)
        rc = set_off(b, TG_SEC_PRICES, tg_rules_compile(b, rs.v, rs.n), err);
    rules_dispose(&rs);
    return rc;
}

/* Compiles IN into B (emptied first). Returns 0, or -1 with *ERR. */
static int sec_compile(tg_mbuf_t *b, const sec_in_t *in, char **err)
{
    b->len = 0;
    b->oom = 0;
    tg_psec_t h;
    memset(&h, 0, sizeof(h));
    h.magic = TG_PSEC_MAGIC;
    h.flags = in->flags;
    h.default_completion_tokens = in->dct;
    h.min_balance = in->min_balance;
    if (tg_mbuf_add(b, &h, sizeof(h), 8) != 0)
        return fail(err, "policy: out of memory");
    const sec_names_t *nm = in->names;
    if (compile_ips(b, in->ips, nm->ips, err) != 0 || compile_acl(b, TG_SEC_MODELS, in->models, 0, nm->models, err) != 0 ||
        compile_acl(b, TG_SEC_RESOURCES, in->resources, 1, nm->resources, err) != 0 ||
        compile_pairs(b, TG_SEC_MMAP, in->mmap, add_mmap, nm->mmap, err) != 0 ||
        compile_pairs(b, TG_SEC_LMAP, in->lmap, add_lmap, nm->lmap, err) != 0 ||
        compile_switch(b, in->switch_over, nm->switch_over, err) != 0 ||
        compile_pairs(b, TG_SEC_FAILOVER, in->failover, add_mmap, nm->failover, err) != 0 || compile_mlim(b, in, err) != 0 ||
        compile_prices(b, in->prices, err) != 0)
        return -1;
    if (tg_mbuf_add(b, NULL, 0, 16) == (size_t)-1 || b->oom)
        return fail(err, "policy: out of memory");
    ((tg_psec_t *)b->p)->len = (uint32_t)b->len;
    return 0;
}

/* 1 when a compiled section restricts or maps nothing (an account then needs no blob). */
static int sec_empty(const uint8_t *sec)
{
    const tg_psec_t *h = tg_psec(sec);
    for (int i = 0; i < TG_SEC_COUNT; i++)
        if (h->off[i] || h->mode[i] != TG_LIST_ANY)
            return 0;
    return 1;
}

static json_t *parse_json_text(const char *text, const char *what, char **err)
{
    if (!text || !*text)
        return NULL;
    json_error_t je;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        fail(err, "%s: not valid JSON: %s", what, je.text);
    return j;
}

static void account_in(sec_in_t *in, const tg_account_src_t *src)
{
    memset(in, 0, sizeof(*in));
    in->ips = src->allow_ips;
    in->models = src->allow_models;
    in->resources = src->resources;
    in->mmap = src->model_mapper;
    in->lmap = src->level_mapper;
    in->mlim = src->model_limits;
    in->names = &g_account_names;
}

/* The compiled bytes of B when RC is 0 (the caller owns them), else NULL with B freed. */
static uint8_t *sec_take(tg_mbuf_t *b, int rc, size_t *len)
{
    if (rc != 0) {
        tg_mbuf_dispose(b);
        return NULL;
    }
    *len = b->len;
    return b->p;
}

/* What the checks return for a section they compiled (and free). */
static int sec_checked(uint8_t *sec)
{
    int rc = sec ? 0 : -1;
    free(sec);
    return rc;
}

uint8_t *tg_policy_account_compile(const tg_account_src_t *src, size_t *len, char **err)
{
    sec_in_t in;
    account_in(&in, src);
    tg_mbuf_t b = {0};
    int rc = sec_compile(&b, &in, err);
    if (rc == 0 && b.len > TG_BLOB_MAX)
        rc = fail(err, "the account's lists are too long (%zu bytes compiled, at most %zu)", b.len, (size_t)TG_BLOB_MAX);
    return sec_take(&b, rc, len);
}

int tg_policy_account_check(const tg_account_src_t *src, char **err)
{
    size_t len;
    return sec_checked(tg_policy_account_compile(src, &len, err));
}

uint8_t *tg_policy_owner_compile(const tg_owner_conf_t *conf, size_t *len, char **err)
{
    char *e = NULL;
    json_t *ml = parse_json_text(conf->model_limits, "MODEL_LIMITS", &e);
    json_t *pr = e ? NULL : parse_json_text(conf->prices, "PRICES", &e);
    if (e) {
        json_decref(ml);
        if (err)
            *err = e;
        else
            free(e);
        return NULL;
    }
    sec_in_t in;
    memset(&in, 0, sizeof(in));
    in.resources = conf->resources;
    in.mmap = conf->model_mapper;
    in.lmap = conf->level_mapper;
    in.switch_over = conf->switch_over;
    in.failover = conf->model_failover;
    in.mlim = ml;
    in.prices = pr;
    in.names = &g_owner_names;
    tg_mbuf_t b = {0};
    int rc = sec_compile(&b, &in, err);
    json_decref(ml);
    json_decref(pr);
    return sec_take(&b, rc, len);
}

int tg_policy_owner_check(const tg_owner_conf_t *conf, char **err)
{
    size_t len;
    return sec_checked(tg_policy_owner_compile(conf, &len, err));
}

/* ======================================================================================= */
/* Prices (YAML)                                                                            */
/* ======================================================================================= */

static const yaml_node_t *ymap_get(yaml_document_t *d, const yaml_node_t *map, const char *key)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(d, p->key);
        if (k && k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(d, p->value);
    }
    return NULL;
}

static int yscalar_number(const yaml_node_t *n, double *out)
{
    if (!n || n->type != YAML_SCALAR_NODE)
        return -1;
    const char *s = (const char *)n->data.scalar.value;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno != 0 || !isfinite(v) || v < 0)
        return -1;
    *out = v;
    return 0;
}

json_t *tg_prices_yaml_parse(const char *text, size_t len, uint32_t *dct, char **err)
{
    *dct = 0;
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        fail(err, "prices: out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        fail(err, "prices: line %zu: %s", parser.problem_mark.line + 1, parser.problem ? parser.problem : "malformed YAML");
        yaml_parser_delete(&parser);
        return NULL;
    }
    json_t *out = json_object();
    const yaml_node_t *root = yaml_document_get_root_node(&doc);
    int rc = 0;
    if (!root || root->type != YAML_MAPPING_NODE) {
        rc = fail(err, "prices: the file must be a mapping with a `prices` key");
        goto done;
    }
    const yaml_node_t *d = ymap_get(&doc, root, "default_completion_tokens");
    if (d) {
        double v;
        if (yscalar_number(d, &v) != 0 || v < 1 || v > 10000000 || v != floor(v)) {
            rc = fail(err, "prices: line %zu: default_completion_tokens: a positive integer is required",
                      d->start_mark.line + 1);
            goto done;
        }
        *dct = (uint32_t)v;
    }
    const yaml_node_t *prices = ymap_get(&doc, root, "prices");
    if (!prices || prices->type != YAML_MAPPING_NODE) {
        rc = fail(err, "prices: a `prices` mapping (model: {input, output, cached}) is required");
        goto done;
    }
    for (yaml_node_pair_t *p = prices->data.mapping.pairs.start; p < prices->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(&doc, p->key), *v = yaml_document_get_node(&doc, p->value);
        if (!k || k->type != YAML_SCALAR_NODE || !v || v->type != YAML_MAPPING_NODE) {
            rc = fail(err, "prices: line %zu: each entry is `model: {input: USD, output: USD, cached: USD}`",
                      (k ? k->start_mark.line : 0) + 1);
            goto done;
        }
        json_t *e = json_object();
        for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top; q++) {
            const yaml_node_t *fk = yaml_document_get_node(&doc, q->key), *fv = yaml_document_get_node(&doc, q->value);
            double num;
            if (!fk || fk->type != YAML_SCALAR_NODE || yscalar_number(fv, &num) != 0) {
                json_decref(e);
                rc = fail(err, "prices: line %zu: %s: prices are non-negative numbers (USD per million tokens)",
                          (fk ? fk->start_mark.line : 0) + 1, (const char *)k->data.scalar.value);
                goto done;
            }
            json_object_set_new(e, (const char *)fk->data.scalar.value, json_real(num));
        }
        json_object_set_new(out, (const char *)k->data.scalar.value, e);
    }
    /* validate the shape through the compiler */
    tg_mbuf_t b = {0};
    tg_mbuf_add(&b, NULL, sizeof(tg_psec_t), 8);
    if (compile_prices(&b, out, err) != 0)
        rc = -1;
    tg_mbuf_dispose(&b);
done:
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (rc != 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* ======================================================================================= */
/* The persister's writer: heap allocator, model-limit states, snapshot sources             */
/* ======================================================================================= */

typedef struct owner_src {
    uint64_t owner_id;
    char *model_mapper, *level_mapper, *switch_over, *resources, *model_failover;
    json_t *model_limits, *prices;
    int allow_unpriced;
    int64_t min_balance, dct;
} owner_src_t;

typedef struct owner_state {
    uint64_t owner_id;
    char *pat;
    uint32_t idx;
    uint32_t mark;
} owner_state_t;

typedef struct dedupe_entry {
    uint64_t hash;
    uint64_t off1; /* block offset + 1; 0 empty */
} dedupe_entry_t;

struct tg_policy_writer {
    uint64_t top;
    uint64_t *free_blocks[TG_HEAP_CLASSES];
    size_t n_free[TG_HEAP_CLASSES], cap_free[TG_HEAP_CLASSES];
    uint32_t *refs; /* per 64-byte unit of the heap: references to the block starting there */
    dedupe_entry_t *map;
    size_t map_cap, map_n;
    uint32_t *mlim_fifo; /* free model-limit states, oldest first */
    size_t fifo_head, fifo_n, fifo_cap;
    owner_state_t *ostates;
    size_t n_ostates, cap_ostates;
    uint32_t mark;
    owner_src_t defaults;
    int have_defaults;
    owner_src_t *owners;
    size_t n_owners, cap_owners;
    tg_mbuf_t scratch;
};

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h ? h : 1;
}

static tg_heap_block_t *block_at(const tg_arena_t *a, uint64_t off)
{
    return (tg_heap_block_t *)(a->heap + off);
}

static int map_grow(struct tg_policy_writer *w);

static void map_put(struct tg_policy_writer *w, uint64_t hash, uint64_t off)
{
    if ((w->map_n + 1) * 2 > w->map_cap && map_grow(w) != 0)
        return; /* no dedupe for this one */
    size_t mask = w->map_cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        if (w->map[i].off1 == 0) {
            w->map[i].hash = hash;
            w->map[i].off1 = off + 1;
            w->map_n++;
            return;
        }
        if (w->map[i].hash == hash) { /* same hash: the newer block takes the entry */
            w->map[i].off1 = off + 1;
            return;
        }
    }
}

static int map_grow(struct tg_policy_writer *w)
{
    size_t cap = w->map_cap ? w->map_cap * 2 : 1024;
    dedupe_entry_t *old = w->map;
    size_t old_cap = w->map_cap;
    dedupe_entry_t *m = calloc(cap, sizeof(*m));
    if (!m)
        return -1;
    w->map = m;
    w->map_cap = cap;
    w->map_n = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].off1)
            map_put(w, old[i].hash, old[i].off1 - 1);
    free(old);
    return 0;
}

static uint64_t map_find(const struct tg_policy_writer *w, uint64_t hash)
{
    if (!w->map_cap)
        return 0;
    size_t mask = w->map_cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        if (w->map[i].off1 == 0)
            return 0;
        if (w->map[i].hash == hash)
            return w->map[i].off1;
    }
}

/* Removes the entry of block OFF (backward-shift deletion keeps probe chains intact). */
static void map_remove(struct tg_policy_writer *w, uint64_t hash, uint64_t off)
{
    if (!w->map_cap)
        return;
    size_t mask = w->map_cap - 1, i = hash & mask;
    for (;; i = (i + 1) & mask) {
        if (w->map[i].off1 == 0)
            return;
        if (w->map[i].hash == hash)
            break;
    }
    if (w->map[i].off1 != off + 1)
        return;
    w->map[i].off1 = 0;
    w->map_n--;
    for (size_t j = (i + 1) & mask; w->map[j].off1; j = (j + 1) & mask) {
        dedupe_entry_t e = w->map[j];
        w->map[j].off1 = 0;
        w->map_n--;
        map_put(w, e.hash, e.off1 - 1);
    }
}

static int push_free(struct tg_policy_writer *w, uint32_t cls, uint64_t off)
{
    uint64_t *v = grow(w->free_blocks[cls], &w->cap_free[cls], w->n_free[cls], sizeof(uint64_t));
    if (!v)
        return -1;
    w->free_blocks[cls] = v;
    v[w->n_free[cls]++] = off;
    return 0;
}

static void fifo_push(struct tg_policy_writer *w, uint32_t idx)
{
    if (w->fifo_n == w->fifo_cap) {
        size_t cap = w->fifo_cap ? w->fifo_cap * 2 : 256;
        uint32_t *v = malloc(cap * sizeof(*v));
        if (!v)
            return; /* the state is lost for reuse, not for correctness */
        for (size_t i = 0; i < w->fifo_n; i++)
            v[i] = w->mlim_fifo[(w->fifo_head + i) % w->fifo_cap];
        free(w->mlim_fifo);
        w->mlim_fifo = v;
        w->fifo_cap = cap;
        w->fifo_head = 0;
    }
    w->mlim_fifo[(w->fifo_head + w->fifo_n) % w->fifo_cap] = idx;
    w->fifo_n++;
}

static uint32_t mlim_alloc(tg_arena_t *a, struct tg_policy_writer *w)
{
    uint32_t idx;
    if (w->fifo_n) {
        idx = w->mlim_fifo[w->fifo_head];
        w->fifo_head = (w->fifo_head + 1) % w->fifo_cap;
        w->fifo_n--;
    } else {
        uint32_t top = atomic_load(&a->hdr->mlim_top);
        if (top >= a->hdr->mlim_slots)
            return TG_MLIM_NONE;
        idx = top;
        atomic_store(&a->hdr->mlim_top, top + 1);
    }
    tg_mlim_state_t *s = &a->mlim[idx];
    for (int i = 0; i < TG_TAT_COUNT; i++)
        atomic_store_explicit(&s->tat[i], 0, memory_order_relaxed);
    for (int i = 0; i < TG_DAYC_COUNT; i++)
        atomic_store_explicit(&s->day[i], 0, memory_order_relaxed);
    return idx;
}

/* Calls FN for every model-limit state of the section at SEC. */
static void sec_each_state(const uint8_t *sec, void (*fn)(void *ud, const char *pat, size_t n, uint32_t idx), void *ud)
{
    const tg_psec_t *h = tg_psec(sec);
    if (h->magic != TG_PSEC_MAGIC || !h->off[TG_SEC_MLIM])
        return;
    const tg_rule_table_t *t = (const tg_rule_table_t *)(sec + h->off[TG_SEC_MLIM]);
    for (uint32_t i = 0; i < t->n; i++) {
        const tg_mlimit_t *ml = (const tg_mlimit_t *)(sec + t->rules[i].val_off);
        if (ml->state != TG_MLIM_NONE)
            fn(ud, (const char *)sec + t->rules[i].pat_off, t->rules[i].pat_len, ml->state);
    }
}

typedef struct mark_ctx {
    uint8_t *used;
    uint32_t top;
} mark_ctx_t;

static void mark_state(void *ud, const char *pat, size_t n, uint32_t idx)
{
    mark_ctx_t *m = ud;
    if (idx < m->top)
        m->used[idx] = 1;
}

typedef struct snap_hdr {
    uint32_t magic;
    uint32_t len;
    uint64_t gen;
    uint32_t n_owners;
    uint32_t defaults_off;
    uint32_t owners_off;
    uint32_t _pad;
} snap_hdr_t;

typedef struct snap_owner {
    uint64_t owner_id;
    uint32_t sec_off;
    uint32_t _pad;
} snap_owner_t;

#define TG_SNAP_MAGIC 0x50534754u /* "TGSP" */

typedef struct ostate_ctx {
    struct tg_policy_writer *w;
    uint64_t owner_id;
} ostate_ctx_t;

static void note_owner_state(void *ud, const char *pat, size_t n, uint32_t idx)
{
    ostate_ctx_t *c = ud;
    struct tg_policy_writer *w = c->w;
    owner_state_t *v = grow(w->ostates, &w->cap_ostates, w->n_ostates, sizeof(*v));
    if (!v)
        return;
    w->ostates = v;
    char *p = strndup(pat, n);
    if (!p)
        return;
    v[w->n_ostates++] = (owner_state_t){c->owner_id, p, idx, 0};
}

/* Walks the sections of the active snapshot in the arena (the writer's own process wrote it or a
 * previous persister did; nobody else writes it). */
static void snapshot_each_section(const tg_arena_t *a, void (*fn)(void *ud, uint64_t owner, const uint8_t *sec), void *ud)
{
    uint64_t g = atomic_load(&a->hdr->policy_gen);
    if (g == 0)
        return;
    const tg_policy_buf_t *pb = a->policy[g & 1];
    if (pb->len < sizeof(snap_hdr_t) || pb->len > a->hdr->policy_buf_size - sizeof(tg_policy_buf_t))
        return;
    const snap_hdr_t *h = (const snap_hdr_t *)pb->data;
    if (h->magic != TG_SNAP_MAGIC)
        return;
    fn(ud, 0, pb->data + h->defaults_off);
    const snap_owner_t *o = (const snap_owner_t *)(pb->data + h->owners_off);
    for (uint32_t i = 0; i < h->n_owners; i++)
        fn(ud, o[i].owner_id, pb->data + o[i].sec_off);
}

typedef struct rebuild_ctx {
    struct tg_policy_writer *w;
    mark_ctx_t mark;
} rebuild_ctx_t;

static void rebuild_section(void *ud, uint64_t owner, const uint8_t *sec)
{
    rebuild_ctx_t *r = ud;
    sec_each_state(sec, mark_state, &r->mark);
    ostate_ctx_t oc = {r->w, owner};
    sec_each_state(sec, note_owner_state, &oc);
}

/* Builds the writer state from the arena: which blocks are referenced, which are free, which
 * model-limit states are in use. */
static int writer_rebuild(tg_arena_t *a, struct tg_policy_writer *w)
{
    const tg_arena_hdr_t *h = a->hdr;
    uint64_t units = h->heap_bytes / 64;
    w->refs = calloc(units ? units : 1, sizeof(uint32_t));
    uint32_t mtop = atomic_load(&h->mlim_top);
    mark_ctx_t mark = {calloc(mtop ? mtop : 1, 1), mtop};
    if (!w->refs || !mark.used) {
        free(mark.used);
        return -1;
    }
    w->top = atomic_load(&h->heap_top);
    if (w->top > h->heap_bytes)
        w->top = h->heap_bytes;
    uint32_t hw = atomic_load(&h->n_accounts_hw);
    for (uint32_t i = 0; i < hw && i < h->max_accounts; i++) {
        tg_account_t *acct = &a->accounts[i];
        if (!(acct->flags & TG_ACCT_USED) || acct->policy.gen == 0)
            continue;
        uint64_t off = (uint64_t)acct->policy.off16 * 16;
        if (off + 64 > w->top || off % 64 || atomic_load(&block_at(a, off)->gen) != acct->policy.gen)
            continue;
        w->refs[off / 64]++;
    }
    for (uint64_t off = 0; off < w->top;) {
        tg_heap_block_t *b = block_at(a, off);
        if (b->cls >= TG_HEAP_CLASSES || off + (64ull << b->cls) > w->top) { /* torn tail: cut the heap here */
            w->top = off;
            atomic_store(&a->hdr->heap_top, off);
            break;
        }
        if (w->refs[off / 64] == 0) {
            atomic_store(&b->gen, 0);
            if (push_free(w, b->cls, off) != 0) {
                free(mark.used);
                return -1;
            }
        } else {
            const uint8_t *payload = (const uint8_t *)(b + 1);
            map_put(w, fnv1a(payload, b->len), off);
            sec_each_state(payload, mark_state, &mark);
        }
        off += 64ull << b->cls;
    }
    rebuild_ctx_t rc = {w, mark};
    snapshot_each_section(a, rebuild_section, &rc);
    for (uint32_t i = 0; i < mtop; i++)
        if (!mark.used[i])
            fifo_push(w, i);
    free(mark.used);
    return 0;
}

static struct tg_policy_writer *writer_get(tg_arena_t *a)
{
    if (a->writer)
        return a->writer;
    struct tg_policy_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    if (writer_rebuild(a, w) != 0) {
        a->writer = w;
        tg_policy_writer_free(a);
        return NULL;
    }
    a->writer = w;
    return w;
}

static void owner_src_free(owner_src_t *o)
{
    free(o->model_mapper);
    free(o->level_mapper);
    free(o->switch_over);
    free(o->model_failover);
    free(o->resources);
    json_decref(o->model_limits);
    json_decref(o->prices);
    memset(o, 0, sizeof(*o));
}

void tg_policy_writer_free(tg_arena_t *a)
{
    struct tg_policy_writer *w = a->writer;
    if (!w)
        return;
    for (unsigned i = 0; i < TG_HEAP_CLASSES; i++)
        free(w->free_blocks[i]);
    free(w->refs);
    free(w->map);
    free(w->mlim_fifo);
    for (size_t i = 0; i < w->n_ostates; i++)
        free(w->ostates[i].pat);
    free(w->ostates);
    owner_src_free(&w->defaults);
    for (size_t i = 0; i < w->n_owners; i++)
        owner_src_free(&w->owners[i]);
    free(w->owners);
    tg_mbuf_dispose(&w->scratch);
    free(w);
    a->writer = NULL;
}

static uint32_t class_for(size_t total)
{
    uint32_t c = 0;
    while ((64ull << c) < total)
        c++;
    return c;
}

/* Allocates a block for PAYLOAD bytes; its offset, or UINT64_MAX when the heap is full. */
static uint64_t heap_alloc(tg_arena_t *a, struct tg_policy_writer *w, size_t payload)
{
    uint32_t cls = class_for(payload + sizeof(tg_heap_block_t));
    if (cls >= TG_HEAP_CLASSES)
        return UINT64_MAX;
    if (w->n_free[cls])
        return w->free_blocks[cls][--w->n_free[cls]];
    uint64_t size = 64ull << cls;
    if (w->top + size > a->hdr->heap_bytes)
        return UINT64_MAX;
    uint64_t off = w->top;
    tg_heap_block_t *b = block_at(a, off);
    atomic_store(&b->gen, 0);
    b->cls = cls;
    b->len = 0;
    w->top += size;
    atomic_store(&a->hdr->heap_top, w->top);
    return off;
}

/* Stores a blob (de-duplicated); fills *REF. 0, or -1 when the heap is full. */
static int blob_store(tg_arena_t *a, struct tg_policy_writer *w, const uint8_t *data, size_t len, tg_policy_ref_t *ref)
{
    uint64_t hash = fnv1a(data, len);
    uint64_t off1 = map_find(w, hash);
    if (off1) {
        tg_heap_block_t *b = block_at(a, off1 - 1);
        if (b->len == len && memcmp(b + 1, data, len) == 0) {
            w->refs[(off1 - 1) / 64]++;
            ref->gen = atomic_load(&b->gen);
            ref->off16 = (uint32_t)((off1 - 1) / 16);
            ref->len = (uint32_t)len;
            return 0;
        }
    }
    uint64_t off = heap_alloc(a, w, len);
    if (off == UINT64_MAX)
        return -1;
    tg_heap_block_t *b = block_at(a, off);
    uint64_t gen = atomic_fetch_add(&a->hdr->heap_gen, 2) + 2;
    atomic_store_explicit(&b->gen, gen - 1, memory_order_relaxed); /* odd: being written */
    atomic_thread_fence(memory_order_release);
    memcpy(b + 1, data, len);
    b->len = (uint32_t)len;
    atomic_store_explicit(&b->gen, gen, memory_order_release);
    w->refs[off / 64] = 1;
    map_put(w, hash, off);
    ref->gen = gen;
    ref->off16 = (uint32_t)(off / 16);
    ref->len = (uint32_t)len;
    return 0;
}

typedef struct keep_ctx {
    const uint8_t *keep; /* the new blob, or NULL */
    tg_arena_t *a;
    struct tg_policy_writer *w;
} keep_ctx_t;

static int sec_holds_state(const uint8_t *sec, uint32_t idx)
{
    const tg_psec_t *h = tg_psec(sec);
    if (!sec || h->magic != TG_PSEC_MAGIC || !h->off[TG_SEC_MLIM])
        return 0;
    const tg_rule_table_t *t = (const tg_rule_table_t *)(sec + h->off[TG_SEC_MLIM]);
    for (uint32_t i = 0; i < t->n; i++)
        if (((const tg_mlimit_t *)(sec + t->rules[i].val_off))->state == idx)
            return 1;
    return 0;
}

static void free_state_unless_kept(void *ud, const char *pat, size_t n, uint32_t idx)
{
    keep_ctx_t *k = ud;
    if (!sec_holds_state(k->keep, idx))
        fifo_push(k->w, idx);
}

static const uint8_t *ref_payload(const tg_arena_t *a, const struct tg_policy_writer *w, const tg_policy_ref_t *ref)
{
    if (!ref || ref->gen == 0)
        return NULL;
    uint64_t off = (uint64_t)ref->off16 * 16;
    if (off % 64 || off + 64 > w->top)
        return NULL;
    tg_heap_block_t *b = block_at(a, off);
    return atomic_load(&b->gen) == ref->gen ? (const uint8_t *)(b + 1) : NULL;
}

void tg_policy_account_release(tg_arena_t *a, const tg_policy_ref_t *old, const tg_policy_ref_t *keep)
{
    struct tg_policy_writer *w = a->writer;
    if (!w || !old || old->gen == 0)
        return;
    const uint8_t *payload = ref_payload(a, w, old);
    if (!payload)
        return;
    uint64_t off = (uint64_t)old->off16 * 16;
    if (w->refs[off / 64] > 1) {
        w->refs[off / 64]--;
        return;
    }
    keep_ctx_t k = {ref_payload(a, w, keep), a, w};
    sec_each_state(payload, free_state_unless_kept, &k);
    tg_heap_block_t *b = block_at(a, off);
    map_remove(w, fnv1a(payload, b->len), off);
    w->refs[off / 64] = 0;
    atomic_store_explicit(&b->gen, 0, memory_order_release);
    push_free(w, b->cls, off);
}

typedef struct acct_state_ctx {
    tg_arena_t *a;
    struct tg_policy_writer *w;
    const uint8_t *old; /* the account's current blob: its states are kept for patterns that stay */
    uint32_t *fresh;    /* states handed out by this compile: returned if it fails */
    size_t n_fresh, cap_fresh;
} acct_state_ctx_t;

static uint32_t account_state_for(void *ud, const char *pat, size_t n)
{
    acct_state_ctx_t *c = ud;
    const tg_psec_t *h = c->old ? tg_psec(c->old) : NULL;
    if (h && h->magic == TG_PSEC_MAGIC && h->off[TG_SEC_MLIM]) {
        const tg_rule_table_t *t = (const tg_rule_table_t *)(c->old + h->off[TG_SEC_MLIM]);
        for (uint32_t i = 0; i < t->n; i++)
            if (t->rules[i].pat_len == n && memcmp(c->old + t->rules[i].pat_off, pat, n) == 0) {
                uint32_t st = ((const tg_mlimit_t *)(c->old + t->rules[i].val_off))->state;
                if (st != TG_MLIM_NONE)
                    return st;
            }
    }
    uint32_t *v = grow(c->fresh, &c->cap_fresh, c->n_fresh, sizeof(uint32_t));
    if (!v)
        return TG_MLIM_NONE;
    c->fresh = v;
    uint32_t idx = mlim_alloc(c->a, c->w);
    if (idx != TG_MLIM_NONE)
        v[c->n_fresh++] = idx;
    return idx;
}

int tg_policy_account_set(tg_arena_t *a, uint32_t slot, const tg_account_src_t *src, const tg_policy_ref_t *old,
                          tg_policy_ref_t *ref, char **err)
{
    memset(ref, 0, sizeof(*ref));
    struct tg_policy_writer *w = writer_get(a);
    if (!w)
        return fail(err, "policy: out of memory");
    acct_state_ctx_t sc = {a, w, ref_payload(a, w, old), NULL, 0, 0};
    sec_in_t in;
    account_in(&in, src);
    in.state_for = account_state_for;
    in.ud = &sc;
    int rc = sec_compile(&w->scratch, &in, err);
    if (rc == 0 && !sec_empty(w->scratch.p)) {
        if (w->scratch.len > TG_BLOB_MAX)
            rc = fail(err, "the account's lists are too long (%zu bytes compiled, at most %zu)", w->scratch.len,
                      (size_t)TG_BLOB_MAX);
        else if (blob_store(a, w, w->scratch.p, w->scratch.len, ref) != 0)
            rc = fail(err, "the policy heap is full (raise arena.max_accounts)");
    }
    if (rc != 0) {
        memset(ref, 0, sizeof(*ref));
        for (size_t i = 0; i < sc.n_fresh; i++) /* states handed out for the blob that was not stored */
            fifo_push(w, sc.fresh[i]);
    }
    free(sc.fresh);
    (void)slot;
    return rc;
}

/* ---- snapshot ---- */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int owner_src_set(owner_src_t *o, uint64_t owner_id, const tg_owner_conf_t *conf, char **err)
{
    memset(o, 0, sizeof(*o));
    o->owner_id = owner_id;
    char *e = NULL;
    o->model_limits = parse_json_text(conf->model_limits, "MODEL_LIMITS", &e);
    if (!e)
        o->prices = parse_json_text(conf->prices, "PRICES", &e);
    if (e) {
        owner_src_free(o);
        if (err)
            *err = e;
        else
            free(e);
        return -1;
    }
    o->model_mapper = dup_or_null(conf->model_mapper);
    o->level_mapper = dup_or_null(conf->level_mapper);
    o->switch_over = dup_or_null(conf->switch_over);
    o->model_failover = dup_or_null(conf->model_failover);
    o->resources = dup_or_null(conf->resources);
    o->allow_unpriced = conf->allow_unpriced;
    o->min_balance = conf->min_balance;
    o->dct = conf->default_completion_tokens;
    return 0;
}

int tg_policy_set_defaults(tg_arena_t *a, const char *prices_yaml, size_t len, const tg_owner_conf_t *conf, char **err)
{
    struct tg_policy_writer *w = writer_get(a);
    if (!w)
        return fail(err, "policy: out of memory");
    if (!prices_yaml)
        prices_yaml = tg_policy_builtin_prices(&len);
    uint32_t dct = 0;
    json_t *prices = tg_prices_yaml_parse(prices_yaml, len, &dct, err);
    if (!prices)
        return -1;
    tg_owner_conf_t none = TG_OWNER_CONF_UNSET;
    if (!conf)
        conf = &none;
    if (tg_policy_owner_check(conf, err) != 0) {
        json_decref(prices);
        return -1;
    }
    owner_src_t o;
    if (owner_src_set(&o, 0, conf, err) != 0) {
        json_decref(prices);
        return -1;
    }
    if (o.prices) { /* PRICES in the defaults add to (and win over) the file's table */
        const char *k;
        json_t *v;
        json_object_foreach(o.prices, k, v) json_object_set(prices, k, v);
        json_decref(o.prices);
    }
    o.prices = prices;
    if (o.dct < 0 && dct)
        o.dct = dct;
    owner_src_free(&w->defaults);
    w->defaults = o;
    w->have_defaults = 1;
    return 0;
}

int tg_policy_set_owner(tg_arena_t *a, uint64_t owner_id, const tg_owner_conf_t *conf, char **err)
{
    struct tg_policy_writer *w = writer_get(a);
    if (!w)
        return fail(err, "policy: out of memory");
    size_t i = 0;
    while (i < w->n_owners && w->owners[i].owner_id != owner_id)
        i++;
    if (!conf) {
        if (i < w->n_owners) {
            owner_src_free(&w->owners[i]);
            w->owners[i] = w->owners[--w->n_owners];
        }
        return 0;
    }
    if (tg_policy_owner_check(conf, err) != 0)
        return -1;
    owner_src_t o;
    if (owner_src_set(&o, owner_id, conf, err) != 0)
        return -1;
    if (i < w->n_owners) {
        owner_src_free(&w->owners[i]);
        w->owners[i] = o;
        return 0;
    }
    owner_src_t *v = grow(w->owners, &w->cap_owners, w->n_owners, sizeof(*v));
    if (!v) {
        owner_src_free(&o);
        return fail(err, "policy: out of memory");
    }
    w->owners = v;
    v[w->n_owners++] = o;
    return 0;
}

typedef struct owner_state_ctx {
    tg_arena_t *a;
    struct tg_policy_writer *w;
    uint64_t owner_id;
} owner_state_ctx_t;

static uint32_t owner_state_for(void *ud, const char *pat, size_t n)
{
    owner_state_ctx_t *c = ud;
    struct tg_policy_writer *w = c->w;
    for (size_t i = 0; i < w->n_ostates; i++) {
        owner_state_t *s = &w->ostates[i];
        if (s->owner_id == c->owner_id && strlen(s->pat) == n && memcmp(s->pat, pat, n) == 0) {
            s->mark = w->mark;
            return s->idx;
        }
    }
    uint32_t idx = mlim_alloc(c->a, w);
    if (idx == TG_MLIM_NONE)
        return idx;
    owner_state_t *v = grow(w->ostates, &w->cap_ostates, w->n_ostates, sizeof(*v));
    char *p = v ? strndup(pat, n) : NULL;
    if (!p) {
        if (v)
            w->ostates = v;
        fifo_push(w, idx);
        return TG_MLIM_NONE;
    }
    w->ostates = v;
    v[w->n_ostates++] = (owner_state_t){c->owner_id, p, idx, w->mark};
    return idx;
}

static int owner_cmp(const void *x, const void *y)
{
    uint64_t a = ((const owner_src_t *)x)->owner_id, b = ((const owner_src_t *)y)->owner_id;
    return a < b ? -1 : a > b;
}

/* Compiles owner O (NULL fields filled from DEF) into W->scratch. */
static int compile_owner(tg_arena_t *a, struct tg_policy_writer *w, const owner_src_t *o, const owner_src_t *def, char **err)
{
    owner_state_ctx_t sc = {a, w, o->owner_id};
    sec_in_t in;
    memset(&in, 0, sizeof(in));
    in.mmap = o->model_mapper ? o->model_mapper : def->model_mapper;
    in.lmap = o->level_mapper ? o->level_mapper : def->level_mapper;
    in.switch_over = o->switch_over ? o->switch_over : def->switch_over;
    in.failover = o->model_failover ? o->model_failover : def->model_failover;
    in.resources = o->resources ? o->resources : def->resources;
    in.mlim = o->model_limits ? o->model_limits : def->model_limits;
    in.prices = o->prices; /* looked up in the owner's, then the defaults' */
    int allow = o->allow_unpriced >= 0 ? o->allow_unpriced : def->allow_unpriced;
    in.flags = allow > 0 ? TG_PSEC_ALLOW_UNPRICED : 0;
    int64_t dct = o->dct >= 0 ? o->dct : def->dct;
    in.dct = dct > 0 ? (uint32_t)dct : TG_DEFAULT_COMPLETION_TOKENS;
    int64_t mb = o->min_balance >= 0 ? o->min_balance : def->min_balance;
    in.min_balance = mb >= 0 ? mb : TG_DEFAULT_MIN_BALANCE;
    in.state_for = owner_state_for;
    in.ud = &sc;
    in.names = &g_owner_names;
    return sec_compile(&w->scratch, &in, err);
}

int tg_policy_publish(tg_arena_t *a, char **err)
{
    struct tg_policy_writer *w = writer_get(a);
    if (!w)
        return fail(err, "policy: out of memory");
    if (!w->have_defaults && tg_policy_set_defaults(a, NULL, 0, NULL, err) != 0)
        return -1;
    w->mark++;
    if (w->n_owners > 1)
        qsort(w->owners, w->n_owners, sizeof(*w->owners), owner_cmp);
    tg_mbuf_t snap = {0};
    snap_hdr_t h;
    memset(&h, 0, sizeof(h));
    h.magic = TG_SNAP_MAGIC;
    h.n_owners = (uint32_t)w->n_owners;
    int rc = 0;
    tg_mbuf_add(&snap, &h, sizeof(h), 8);
    owner_src_t def = w->defaults;
    def.prices = w->defaults.prices;
    def.owner_id = 0;
    if (compile_owner(a, w, &def, &def, err) != 0) {
        rc = -1;
        goto done;
    }
    size_t doff = tg_mbuf_add(&snap, w->scratch.p, w->scratch.len, 16);
    size_t ooff = tg_mbuf_add(&snap, NULL, w->n_owners * sizeof(snap_owner_t), 8);
    for (size_t i = 0; rc == 0 && i < w->n_owners; i++) {
        if (compile_owner(a, w, &w->owners[i], &def, err) != 0) {
            rc = -1;
            break;
        }
        size_t soff = tg_mbuf_add(&snap, w->scratch.p, w->scratch.len, 16);
        if (snap.oom)
            break;
        snap_owner_t *so = (snap_owner_t *)(snap.p + ooff) + i;
        so->owner_id = w->owners[i].owner_id;
        so->sec_off = (uint32_t)soff;
    }
    if (rc != 0)
        goto done;
    if (snap.oom || doff == (size_t)-1 || ooff == (size_t)-1) {
        rc = fail(err, "policy: out of memory");
        goto done;
    }
    if (snap.len > a->hdr->policy_buf_size - sizeof(tg_policy_buf_t)) {
        rc = fail(err, "policy: the compiled owner configs take %zu bytes, more than the snapshot holds (%zu)", snap.len,
                  (size_t)(a->hdr->policy_buf_size - sizeof(tg_policy_buf_t)));
        goto done;
    }
    uint64_t g = atomic_load(&a->hdr->policy_gen) + 1;
    snap_hdr_t *sh = (snap_hdr_t *)snap.p;
    sh->len = (uint32_t)snap.len;
    sh->gen = g;
    sh->defaults_off = (uint32_t)doff;
    sh->owners_off = (uint32_t)ooff;
    tg_policy_buf_t *pb = a->policy[g & 1];
    memcpy(pb->data, snap.p, snap.len);
    pb->len = (uint32_t)snap.len;
    pb->gen = g;
    atomic_store_explicit(&a->hdr->policy_gen, g, memory_order_release);
done:
    /* owner states not used by this publication go back (after the switch: none is referenced) */
    if (rc == 0) {
        for (size_t i = 0; i < w->n_ostates;) {
            if (w->ostates[i].mark != w->mark) {
                fifo_push(w, w->ostates[i].idx);
                free(w->ostates[i].pat);
                w->ostates[i] = w->ostates[--w->n_ostates];
            } else {
                i++;
            }
        }
    }
    tg_mbuf_dispose(&snap);
    return rc;
}

/* ======================================================================================= */
/* Reading                                                                                  */
/* ======================================================================================= */

int tg_policy_blob_copy(const tg_arena_t *a, const tg_policy_ref_t *ref, uint8_t *buf, size_t cap)
{
    if (ref->gen == 0)
        return 0;
    uint64_t off = (uint64_t)ref->off16 * 16;
    if (off % 64 || off + sizeof(tg_heap_block_t) + ref->len > a->hdr->heap_bytes)
        return -1;
    if (ref->len > cap)
        return -2;
    const tg_heap_block_t *b = block_at(a, off);
    if (atomic_load_explicit(&((tg_heap_block_t *)b)->gen, memory_order_acquire) != ref->gen)
        return -1;
    memcpy(buf, b + 1, ref->len);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&((tg_heap_block_t *)b)->gen, memory_order_relaxed) != ref->gen)
        return -1;
    if (tg_psec(buf)->magic != TG_PSEC_MAGIC || tg_psec(buf)->len != ref->len)
        return -1;
    return (int)ref->len;
}

int tg_policy_view_refresh(tg_policy_view_t *v, const tg_arena_t *a)
{
    for (;;) {
        uint64_t g = atomic_load_explicit(&a->hdr->policy_gen, memory_order_acquire);
        if (g == v->gen)
            return 0;
        if (g == 0) {
            v->gen = 0;
            v->len = 0;
            return 1;
        }
        const tg_policy_buf_t *pb = a->policy[g & 1];
        size_t len = pb->len;
        if (len < sizeof(snap_hdr_t) || len > a->hdr->policy_buf_size - sizeof(tg_policy_buf_t))
            continue; /* being written: look again */
        if (len > v->cap) {
            size_t cap = v->cap ? v->cap : 4096;
            while (cap < len)
                cap *= 2;
            uint8_t *p = malloc(cap);
            if (!p)
                return -1;
            free(v->buf);
            v->buf = p;
            v->cap = cap;
            v->gen = UINT64_MAX; /* the old copy is gone */
        }
        memcpy(v->buf, pb->data, len);
        uint64_t bgen = pb->gen;
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&a->hdr->policy_gen, memory_order_relaxed) != g || bgen != g)
            continue;
        v->gen = g;
        v->len = len;
        return 1;
    }
}

void tg_policy_view_dispose(tg_policy_view_t *v)
{
    free(v->buf);
    memset(v, 0, sizeof(*v));
}

const uint8_t *tg_policy_defaults_section(const tg_policy_view_t *v)
{
    if (v->gen == 0 || v->len == 0)
        return NULL;
    const snap_hdr_t *h = (const snap_hdr_t *)v->buf;
    return v->buf + h->defaults_off;
}

const uint8_t *tg_policy_owner_section(const tg_policy_view_t *v, uint64_t owner_id)
{
    if (v->gen == 0 || v->len == 0)
        return NULL;
    const snap_hdr_t *h = (const snap_hdr_t *)v->buf;
    const snap_owner_t *o = (const snap_owner_t *)(v->buf + h->owners_off);
    size_t lo = 0, hi = h->n_owners;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (o[mid].owner_id == owner_id)
            return v->buf + o[mid].sec_off;
        if (o[mid].owner_id < owner_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return v->buf + h->defaults_off;
}

int tg_psec_ip_allowed(const uint8_t *sec, int family, const uint8_t *addr)
{
    const tg_psec_t *h = tg_psec(sec);
    if (h->mode[TG_SEC_IPS] == TG_LIST_ANY || !h->off[TG_SEC_IPS])
        return h->mode[TG_SEC_IPS] != TG_LIST_NONE;
    return tg_cidr_match(sec, h->off[TG_SEC_IPS], family, addr);
}

static int acl_allowed(const uint8_t *sec, int which, const char *s, size_t n)
{
    const tg_psec_t *h = tg_psec(sec);
    if (h->mode[which] == TG_LIST_NONE)
        return 0;
    if (h->mode[which] == TG_LIST_ANY || !h->off[which])
        return 1;
    return tg_rules_match(sec, h->off[which], s, n) >= 0;
}

int tg_psec_model_allowed(const uint8_t *sec, const char *model, size_t n)
{
    return acl_allowed(sec, TG_SEC_MODELS, model, n);
}

int tg_psec_path_allowed(const uint8_t *sec, const char *path, size_t n)
{
    return acl_allowed(sec, TG_SEC_RESOURCES, path, n);
}

/* The rule of section SECTION that MODEL matches first, or NULL (no such section, no match). */
static const tg_rule_t *matched_rule(const uint8_t *sec, int section, const char *model, size_t n)
{
    const tg_psec_t *h = tg_psec(sec);
    if (!h->off[section])
        return NULL;
    int i = tg_rules_match(sec, h->off[section], model, n);
    return i < 0 ? NULL : tg_rules_at(sec, h->off[section], i);
}

/* A model-to-model section (ModelMapper, ModelFailover): 1 and *DST and *DN set to the target of the
 * first rule MODEL matches, else 0. */
static int model_target(const uint8_t *sec, int section, const char *model, size_t n, const char **dst, size_t *dn)
{
    const tg_rule_t *r = matched_rule(sec, section, model, n);
    if (!r)
        return 0;
    *dst = (const char *)sec + r->val_off;
    *dn = r->val_len;
    return 1;
}

int tg_psec_map_model(const uint8_t *sec, const char *model, size_t n, const char **dst, size_t *dn)
{
    return model_target(sec, TG_SEC_MMAP, model, n, dst, dn);
}

int tg_psec_map_level(const uint8_t *sec, const char *model, size_t n, int32_t *level)
{
    const tg_rule_t *r = matched_rule(sec, TG_SEC_LMAP, model, n);
    if (!r)
        return 0;
    memcpy(level, sec + r->val_off, sizeof(*level));
    return 1;
}

const tg_mlimit_t *tg_psec_model_limit(const uint8_t *sec, const char *model, size_t n)
{
    const tg_rule_t *r = matched_rule(sec, TG_SEC_MLIM, model, n);
    return r ? (const tg_mlimit_t *)(sec + r->val_off) : NULL;
}

const tg_price_t *tg_psec_price(const uint8_t *sec, const char *model, size_t n)
{
    const tg_rule_t *r = matched_rule(sec, TG_SEC_PRICES, model, n);
    return r ? (const tg_price_t *)(sec + r->val_off) : NULL;
}

int32_t tg_psec_switch_over(const uint8_t *sec, int32_t level)
{
    const tg_psec_t *h = tg_psec(sec);
    if (!h->off[TG_SEC_SWITCH])
        return 0;
    const uint32_t *n = (const uint32_t *)(sec + h->off[TG_SEC_SWITCH]);
    const switch_pair_t *p = (const switch_pair_t *)(n + 2);
    for (uint32_t i = 0; i < n[0]; i++)
        if (p[i].from == level)
            return p[i].to;
    return 0;
}

int tg_psec_failover(const uint8_t *sec, const char *model, size_t n, const char **dst, size_t *dn)
{
    return model_target(sec, TG_SEC_FAILOVER, model, n, dst, dn);
}
