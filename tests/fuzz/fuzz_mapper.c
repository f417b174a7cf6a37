/* libFuzzer target: the mappers (ModelMapper / MODEL_MAPPER, LevelMapper / LEVEL_MAPPER,
 * SWITCH_OVER) as the quota engine compiles and applies them (shm/policy.h) and as the Manage and
 * Admin APIs validate them (tg_mapper_valid, store/acct_fields.h).
 * Input lines: 0 model mapper, 1 level mapper, 2 switch-over, 3.. model names to map.
 * Invariants: a mapper is refused exactly when a naive reference parser refuses it, with a message
 * naming it; compiling is deterministic (same bytes twice, account and owner agree); a model maps
 * to what a naive reference picks (exact rules first, then more literal characters, then the
 * order written), and the result is a valid model string (non-empty, no separators, no padding;
 * only model-name characters when the API accepted the mapper); a level maps to the reference's;
 * every mapper the API accepts compiles. */
#include <stdint.h>

#include "fuzz_ref.h"
#include "shm/matcher.h"
#include "shm/policy.h"
#include "store/acct_fields.h"

/* ---- reference ---- */

typedef struct ref_rule {
    const char *pat, *val;
    size_t pn, vn;
} ref_rule_t;

typedef struct ref_map {
    ref_rule_t *r;
    size_t n, cap;
    int bad;
} ref_map_t;

static int ref_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void ref_trim(const char **s, size_t *n)
{
    while (*n && ref_space(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && ref_space((*s)[*n - 1]))
        (*n)--;
}

/* A positive decimal level of at most 9 digits. */
static int ref_level(const char *s, size_t n, int32_t *out)
{
    if (n == 0 || n > 9)
        return 0;
    int32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return v >= 1;
}

/* KIND 'M', 'L' (right side a level) or 'S' (both sides levels). */
static void ref_map_parse(ref_map_t *m, char kind, const char *s)
{
    memset(m, 0, sizeof(*m));
    const char *end = s + strlen(s);
    while (s < end && !m->bad) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *item = s;
        size_t n = comma ? (size_t)(comma - s) : (size_t)(end - s);
        s = comma ? comma + 1 : end;
        ref_trim(&item, &n);
        if (n == 0)
            continue;
        const char *eq = memchr(item, '=', n);
        if (!eq) {
            m->bad = 1;
            break;
        }
        ref_rule_t r = {item, eq + 1, (size_t)(eq - item), n - (size_t)(eq - item) - 1};
        ref_trim(&r.pat, &r.pn);
        ref_trim(&r.val, &r.vn);
        int32_t lv;
        if (r.pn == 0 || r.vn == 0 || (kind != 'M' && !ref_level(r.val, r.vn, &lv)) ||
            (kind == 'S' && !ref_level(r.pat, r.pn, &lv))) {
            m->bad = 1;
            break;
        }
        if (m->n == m->cap) {
            m->cap = m->cap ? 2 * m->cap : 16;
            m->r = realloc(m->r, m->cap * sizeof(*m->r));
        }
        m->r[m->n++] = r;
    }
}

static size_t literal_chars(const ref_rule_t *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->pn; i++)
        n += r->pat[i] != '*';
    return n > 255 ? 255 : n;
}

/* The rule that maps S: exact patterns first, then more literal characters, then the earliest. */
static const ref_rule_t *ref_pick(const ref_map_t *m, const char *s, size_t sn)
{
    const ref_rule_t *best = NULL;
    int best_exact = 0;
    size_t best_lit = 0;
    for (size_t i = 0; i < m->n; i++) {
        const ref_rule_t *r = &m->r[i];
        if (!ref_glob(r->pat, r->pn, s, sn))
            continue;
        int exact = memchr(r->pat, '*', r->pn) == NULL;
        size_t lit = literal_chars(r);
        if (!best || exact > best_exact || (exact == best_exact && lit > best_lit)) {
            best = r;
            best_exact = exact;
            best_lit = lit;
        }
    }
    return best;
}

/* ---- checks ---- */

static const char *const g_what[3] = {"ModelMapper", "LevelMapper", "SWITCH_OVER"};
static const char g_kind[3] = {'M', 'L', 'S'};

static int model_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-_.:/@+", c);
}

static void check_model(const uint8_t *sec, const ref_map_t *ref, const char *s, size_t sn, int api_ok)
{
    const char *dst = NULL, *dst2 = NULL;
    size_t dn = 0, dn2 = 0;
    int got = tg_psec_map_model(sec, s, sn, &dst, &dn);
    FUZZ_CHECK(got == tg_psec_map_model(sec, s, sn, &dst2, &dn2) && (!got || (dst == dst2 && dn == dn2)),
               "mapping '%.*s' twice differs", (int)sn, s);
    const ref_rule_t *want = ref_pick(ref, s, sn);
    FUZZ_CHECK(got == (want != NULL), "'%.*s': compiled maps %d, reference %d", (int)sn, s, got, want != NULL);
    if (!got)
        return;
    FUZZ_CHECK(dn == want->vn && memcmp(dst, want->val, dn) == 0, "'%.*s' maps to '%.*s', reference '%.*s'", (int)sn, s,
               (int)dn, dst, (int)want->vn, want->val);
    FUZZ_CHECK(dn > 0 && !ref_space(dst[0]) && !ref_space(dst[dn - 1]) && memchr(dst, ',', dn) == NULL,
               "'%.*s' maps to a malformed model '%.*s'", (int)sn, s, (int)dn, dst);
    for (size_t i = 0; api_ok && i < dn; i++)
        FUZZ_CHECK(dst[i] != '\0' && model_char(dst[i]), "an accepted mapper maps '%.*s' to '%.*s'", (int)sn, s, (int)dn, dst);
}

static void check_level(const uint8_t *sec, const ref_map_t *ref, const char *s, size_t sn)
{
    int32_t level = -7, level2 = -7;
    int got = tg_psec_map_level(sec, s, sn, &level);
    FUZZ_CHECK(got == tg_psec_map_level(sec, s, sn, &level2) && level == level2, "level of '%.*s' twice differs", (int)sn,
               s);
    const ref_rule_t *want = ref_pick(ref, s, sn);
    FUZZ_CHECK(got == (want != NULL), "'%.*s': compiled level %d, reference %d", (int)sn, s, got, want != NULL);
    int32_t lv;
    if (got)
        FUZZ_CHECK(ref_level(want->val, want->vn, &lv) && lv == level && level >= 1, "'%.*s': level %d, reference %.*s",
                   (int)sn, s, level, (int)want->vn, want->val);
}

static void check_switch(const uint8_t *sec, const ref_map_t *ref)
{
    for (size_t i = 0; i < ref->n + 3; i++) {
        int32_t from = (int32_t)i, want = 0, v;
        if (i < ref->n)
            ref_level(ref->r[i].pat, ref->r[i].pn, &from);
        for (size_t j = 0; j < ref->n && !want; j++)
            if (ref_level(ref->r[j].pat, ref->r[j].pn, &v) && v == from)
                ref_level(ref->r[j].val, ref->r[j].vn, &want);
        int32_t got = tg_psec_switch_over(sec, from);
        FUZZ_CHECK(got == want, "SWITCH_OVER from %d: %d, reference %d", from, got, want);
    }
}

/* Model names to map: the input's, and some made from each pattern. */
typedef struct names {
    char *s[256];
    size_t n;
} names_t;

static void names_add(names_t *nm, const char *s, size_t n)
{
    if (nm->n == 256)
        return;
    char *c = malloc(n + 1);
    memcpy(c, s, n);
    c[n] = '\0';
    nm->s[nm->n++] = c;
}

static void names_from(names_t *nm, const fuzz_lines_t *ls, const ref_map_t *mm, const ref_map_t *lm)
{
    for (size_t i = 3; i < ls->n; i++)
        names_add(nm, ls->line[i], strlen(ls->line[i]));
    const ref_map_t *maps[2] = {mm, lm};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < maps[k]->n && i < 32; i++) {
            const ref_rule_t *r = &maps[k]->r[i];
            char buf[600];
            size_t o = 0;
            names_add(nm, r->pat, r->pn);
            for (size_t j = 0; j < r->pn && o < sizeof(buf) - 2; j++)
                if (r->pat[j] != '*')
                    buf[o++] = r->pat[j];
                else
                    buf[o++] = '-';
            names_add(nm, buf, o);
        }
}

static uint8_t *compile_account(const char *mm, const char *lm, size_t *len, char **err)
{
    tg_account_src_t src = {NULL, NULL, NULL, mm, lm, NULL};
    return tg_policy_account_compile(&src, len, err);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    fuzz_lines_t ls;
    lines_split(&ls, data, size);
    ref_map_t ref[3];
    int api_ok[3];
    char why[200];
    for (int k = 0; k < 3; k++) {
        ref_map_parse(&ref[k], g_kind[k], ls.line[k]);
        why[0] = '\0';
        api_ok[k] = tg_mapper_valid(g_kind[k], ls.line[k], why, sizeof(why)) == 0;
        FUZZ_CHECK(api_ok[k] || why[0], "a refused %s must say why", g_what[k]);
    }
    int compare = size <= 4096; /* the reference is slow, and patterns stay short */

    /* the account's lists */
    size_t len = 0, len2 = 0;
    char *err = NULL;
    uint8_t *sec = compile_account(ls.line[0], ls.line[1], &len, &err);
    if (sec == NULL) {
        FUZZ_CHECK(err && *err, "a refused mapper must say why");
        int k = ref[0].bad ? 0 : ref[1].bad ? 1 : -1;
        if (k >= 0)
            FUZZ_CHECK(strncmp(err, g_what[k], strlen(g_what[k])) == 0, "the message must name %s: %s", g_what[k], err);
        else
            FUZZ_CHECK(!compare || strstr(err, "too long"), "refused mappers the reference accepts: %s", err);
        FUZZ_CHECK(!api_ok[0] || !api_ok[1] || strstr(err, "too long"), "a mapper the API accepts does not compile: %s", err);
        free(err);
    } else {
        FUZZ_CHECK(!ref[0].bad && !ref[1].bad, "a mapper the reference refuses compiled");
        uint8_t *again = compile_account(ls.line[0], ls.line[1], &len2, &err);
        FUZZ_CHECK(again && len2 == len && memcmp(again, sec, len) == 0, "compiling twice gave different bytes");
        free(again);
    }

    /* the owner's config: the same mappers plus SWITCH_OVER */
    tg_owner_conf_t conf = TG_OWNER_CONF_UNSET;
    conf.model_mapper = ls.line[0];
    conf.level_mapper = ls.line[1];
    conf.switch_over = ls.line[2];
    size_t olen;
    err = NULL;
    uint8_t *osec = tg_policy_owner_compile(&conf, &olen, &err);
    if (osec == NULL) {
        FUZZ_CHECK(err && *err, "a refused owner config must say why");
        FUZZ_CHECK(ref[0].bad || ref[1].bad || ref[2].bad, "owner mappers the reference accepts were refused: %s", err);
        FUZZ_CHECK(!api_ok[0] || !api_ok[1] || !api_ok[2], "owner mappers the API accepts do not compile: %s", err);
        free(err);
    } else {
        FUZZ_CHECK(!ref[0].bad && !ref[1].bad && !ref[2].bad, "owner mappers the reference refuses compiled");
        check_switch(osec, &ref[2]);
    }

    if (sec && osec && compare) {
        names_t nm = {.n = 0};
        names_from(&nm, &ls, &ref[0], &ref[1]);
        for (size_t i = 0; i < nm.n; i++) {
            size_t n = strlen(nm.s[i]);
            check_model(sec, &ref[0], nm.s[i], n, api_ok[0]);
            check_model(osec, &ref[0], nm.s[i], n, api_ok[0]);
            check_level(sec, &ref[1], nm.s[i], n);
            check_level(osec, &ref[1], nm.s[i], n);
            free(nm.s[i]);
        }
    }
    free(sec);
    free(osec);
    for (int k = 0; k < 3; k++)
        free(ref[k].r);
    lines_free(&ls);
    return 0;
}
