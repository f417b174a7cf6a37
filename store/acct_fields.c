/* Account field validation: names, emails, ACL edit language and intersection, mappers and
 * ModelLimits (acct_fields.h). */
#include "store/acct_fields.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shm/matcher.h"

int tg_valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 4 || n > 63 || s[0] == '.')
        return 0;
    int letter = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalpha(c))
            letter = 1;
        else if (!isdigit(c) && c != '_' && c != '.' && c != '-')
            return 0;
    }
    if (!letter)
        return 0;
    /* L3, G1, R2, T0, F1.5: list filters, not names */
    if (strchr("LGRTF", s[0])) {
        int filt = 1;
        for (size_t i = 1; i < n; i++)
            filt &= isdigit((unsigned char)s[i]) || s[i] == '.';
        if (filt)
            return 0;
    }
    return 1;
}

int tg_valid_email(const char *s)
{
    size_t n = strlen(s);
    const char *at = strchr(s, '@');
    if (n < 6 || n > 254 || at == NULL || at == s || strchr(at + 1, '@') || at - s > 64)
        return 0;
    for (const char *p = s; p < at; p++) {
        unsigned char c = (unsigned char)*p;
        if (!isalnum(c) && !strchr("!#$%&'*+/=?^_`{|}~.-", c))
            return 0;
    }
    if (s[0] == '.' || at[-1] == '.' || strstr(s, ".."))
        return 0;
    const char *d = at + 1, *dot = strrchr(d, '.');
    if (dot == NULL || dot == d || dot[1] == '\0' || strlen(dot + 1) < 2)
        return 0;
    for (const char *p = d; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!isalnum(c) && c != '-' && c != '.')
            return 0;
        if (c == '.' && (p == d || p[1] == '.' || p[-1] == '-' || p[1] == '-'))
            return 0;
    }
    if (*d == '-')
        return 0;
    for (const char *p = dot + 1; *p; p++)
        if (!isalpha((unsigned char)*p))
            return 0;
    return 1;
}

/* ---- lists ---- */

typedef struct list {
    char **items;
    size_t n, cap;
} list_t;

static void list_free(list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

static int list_has(const list_t *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i], s) == 0)
            return 1;
    return 0;
}

static int list_add(list_t *l, const char *s, size_t n)
{
    char *dup = strndup(s, n);
    if (dup == NULL)
        return -1;
    if (list_has(l, dup)) {
        free(dup);
        return 0;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        char **items = realloc(l->items, cap * sizeof(*items));
        if (items == NULL) {
            free(dup);
            return -1;
        }
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = dup;
    return 0;
}

static void list_remove(list_t *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i], s) == 0) {
            free(l->items[i]);
            memmove(&l->items[i], &l->items[i + 1], (l->n - i - 1) * sizeof(char *));
            l->n--;
            return;
        }
}

static int is_sep(char c)
{
    return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Splits a normalized list or an edit value into L (items kept as written). */
static int list_split(list_t *l, const char *s)
{
    while (*s) {
        while (*s && is_sep(*s))
            s++;
        const char *b = s;
        while (*s && !is_sep(*s))
            s++;
        if (s > b && list_add(l, b, (size_t)(s - b)) != 0)
            return -1;
    }
    return 0;
}

static char *list_join(const list_t *l)
{
    size_t len = 1;
    for (size_t i = 0; i < l->n; i++)
        len += strlen(l->items[i]) + 1;
    char *out = malloc(len), *p = out;
    if (out == NULL)
        return NULL;
    *p = '\0';
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            *p++ = ',';
        size_t n = strlen(l->items[i]);
        memcpy(p, l->items[i], n);
        p += n;
        *p = '\0';
    }
    return out;
}

static int item_valid(char kind, const char *it)
{
    size_t n = strlen(it);
    if (n == 0 || n > 200)
        return 0;
    switch (kind) {
    case 'I': {
        tg_cidr4_t v4;
        tg_cidr6_t v6;
        return tg_cidr_parse(it, n, &v4, &v6) != 0; /* exactly what the quota engine compiles */
    }
    case 'L': { /* exactly what the quota engine compiles */
        uint64_t mask;
        return it[0] >= '0' && it[0] <= '9' && tg_levels_parse(it, &mask) == 0;
    }
    case 'R':
        if (it[0] != '/')
            return 0;
        for (const char *p = it; *p; p++)
            if (!isalnum((unsigned char)*p) && !strchr("/-_.~*", *p))
                return 0;
        return 1;
    default:
        for (const char *p = it; *p; p++)
            if (!isalnum((unsigned char)*p) && !strchr("-_.:/@*+", *p))
                return 0;
        return 1;
    }
}

char *tg_acl_edit(char kind, const char *old, const char *value, char *why, size_t why_cap)
{
    list_t in = {0}, cur = {0};
    char *out = NULL;
    if (list_split(&in, value) != 0) {
        snprintf(why, why_cap, "out of memory");
        goto done;
    }
    if (in.n == 1 && strcmp(in.items[0], "*") == 0) {
        out = strdup("");
        goto done;
    }
    if (in.n == 1 && strcmp(in.items[0], "-*") == 0) {
        out = strdup("-*");
        goto done;
    }
    if (in.n == 0) {
        snprintf(why, why_cap, "is empty; use \"*\" for unrestricted or \"-*\" to forbid all");
        goto done;
    }
    int unrestricted = old == NULL || *old == '\0';
    if (!unrestricted && strcmp(old, "-*") != 0)
        list_split(&cur, old);
    for (size_t i = 0; i < in.n; i++) {
        const char *it = in.items[i];
        int rm = it[0] == '-';
        const char *name = rm ? it + 1 : it;
        if (strcmp(name, "*") == 0 || !item_valid(kind, name)) {
            snprintf(why, why_cap, "item \"%.80s\" is not valid here", it);
            goto done;
        }
        if (rm) {
            if (unrestricted && cur.n == 0) {
                snprintf(why, why_cap, "cannot remove \"%.80s\" from an unrestricted list; list what is allowed instead", name);
                goto done;
            }
            list_remove(&cur, name);
        } else {
            list_add(&cur, name, strlen(name));
        }
    }
    out = cur.n == 0 ? strdup("-*") : list_join(&cur);
done:
    list_free(&in);
    list_free(&cur);
    return out;
}

/* 1 when parent item P covers child item C. */
static int covers(char kind, const char *p, const char *c)
{
    switch (kind) {
    case 'I': { /* as compiled: an IPv4-mapped block of /96 or longer is an IPv4 block */
        tg_cidr4_t p4, c4;
        tg_cidr6_t p6, c6;
        int fp = tg_cidr_parse(p, strlen(p), &p4, &p6), fc = tg_cidr_parse(c, strlen(c), &c4, &c6);
        if (fp == 0 || fp != fc)
            return 0;
        if (fp == 4)
            return (c4.mask & p4.mask) == p4.mask && (c4.net & p4.mask) == p4.net;
        if (c6.prefix < p6.prefix)
            return 0;
        for (int bit = 0; bit < p6.prefix; bit++)
            if (((p6.net[bit / 8] >> (7 - bit % 8)) & 1) != ((c6.net[bit / 8] >> (7 - bit % 8)) & 1))
                return 0;
        return 1;
    }
    case 'R': {
        size_t n = strlen(p);
        while (n && p[n - 1] == '*')
            n--;
        return strncmp(p, c, n) == 0;
    }
    case 'L': return strcmp(p, c) == 0;
    default: {
        /* glob match of the child item (a name or a pattern, taken literally) by the parent pattern */
        const char *s = c, *pp = p, *star = NULL, *mark = NULL;
        while (*s) {
            if (*pp == '*') {
                star = pp++;
                mark = s;
            } else if (*pp == *s) {
                pp++;
                s++;
            } else if (star) {
                pp = star + 1;
                s = ++mark;
            } else {
                return 0;
            }
        }
        while (*pp == '*')
            pp++;
        return *pp == '\0';
    }
    }
}

char *tg_acl_intersect(char kind, const char *child, const char *parent)
{
    if (parent == NULL || *parent == '\0')
        return strdup(child ? child : "");
    if (strcmp(parent, "-*") == 0 || (child && strcmp(child, "-*") == 0))
        return strdup("-*");
    if (child == NULL || *child == '\0')
        return strdup(parent);
    list_t c = {0}, p = {0}, out = {0};
    list_split(&c, child);
    list_split(&p, parent);
    for (size_t i = 0; i < c.n; i++)
        for (size_t j = 0; j < p.n; j++)
            if (covers(kind, p.items[j], c.items[i])) {
                list_add(&out, c.items[i], strlen(c.items[i]));
                break;
            }
    char *s = out.n ? list_join(&out) : strdup("-*");
    list_free(&c);
    list_free(&p);
    list_free(&out);
    return s;
}

static int pos_int(const char *s, size_t n)
{
    if (n == 0 || n > 9)
        return 0;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v > 0;
}

int tg_mapper_valid(char kind, const char *value, char *why, size_t why_cap)
{
    const char *s = value;
    while (*s) {
        while (*s == ',' || *s == ' ' || *s == '\t' || *s == '\n')
            s++;
        if (!*s)
            break;
        const char *b = s;
        while (*s && *s != ',')
            s++;
        const char *e = s;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        const char *eq = memchr(b, '=', (size_t)(e - b));
        if (eq == NULL) {
            snprintf(why, why_cap, "\"%.*s\" is not a src=dst pair", (int)(e - b > 80 ? 80 : e - b), b);
            return -1;
        }
        const char *ks = b, *ke = eq, *vs = eq + 1, *ve = e;
        while (ke > ks && (ke[-1] == ' ' || ke[-1] == '\t'))
            ke--;
        while (vs < ve && (*vs == ' ' || *vs == '\t'))
            vs++;
        if (ke == ks || ve == vs) {
            snprintf(why, why_cap, "\"%.*s\" has an empty side", (int)(e - b > 80 ? 80 : e - b), b);
            return -1;
        }
        for (const char *p = ks; p < ke; p++)
            if (!isalnum((unsigned char)*p) && !strchr("-_.:/@*+", *p)) {
                snprintf(why, why_cap, "\"%.*s\" has a bad character", (int)(ke - ks > 80 ? 80 : ke - ks), ks);
                return -1;
            }
        for (const char *p = vs; p < ve; p++)
            if (!isalnum((unsigned char)*p) && !strchr("-_.:/@+", *p)) {
                snprintf(why, why_cap, "\"%.*s\" has a bad character", (int)(ve - vs > 80 ? 80 : ve - vs), vs);
                return -1;
            }
        if ((kind == 'L' || kind == 'S') && !pos_int(vs, (size_t)(ve - vs))) {
            snprintf(why, why_cap, "\"%.*s\": the level must be a positive integer", (int)(ve - vs > 80 ? 80 : ve - vs), vs);
            return -1;
        }
        if (kind == 'S' && !pos_int(ks, (size_t)(ke - ks))) {
            snprintf(why, why_cap, "\"%.*s\": the level must be a positive integer", (int)(ke - ks > 80 ? 80 : ke - ks), ks);
            return -1;
        }
    }
    return 0;
}

static const char *const g_limit_keys[] = {"rpm", "rph", "rpd", "tpm", "tph", "tpd"};

json_t *tg_model_limits_merge(const json_t *old, const json_t *v, char *why, size_t why_cap)
{
    if (json_is_string(v) && (strcmp(json_string_value(v), "*") == 0 || strcmp(json_string_value(v), "=") == 0))
        return json_object();
    json_t *parsed = NULL;
    if (json_is_string(v)) { /* a JSON document in a string, as /x-config accepts */
        parsed = json_loads(json_string_value(v), 0, NULL);
        if (!json_is_object(parsed)) {
            json_decref(parsed);
            snprintf(why, why_cap, "must be an object {\"model\":{\"rpm\":N,...}} or \"*\" to clear");
            return NULL;
        }
        v = parsed;
    }
    if (!json_is_object(v)) {
        snprintf(why, why_cap, "must be an object {\"model\":{\"rpm\":N,...}} or \"*\" to clear");
        return NULL;
    }
    json_t *out = json_is_object(old) ? json_deep_copy(old) : json_object();
    const char *model;
    json_t *lim;
    json_object_foreach((json_t *)v, model, lim)
    {
        if (*model == '\0' || strlen(model) > 64) {
            snprintf(why, why_cap, "model names must be 1..64 characters");
            goto bad;
        }
        if (json_is_null(lim) || (json_is_string(lim) && (strcmp(json_string_value(lim), "*") == 0 ||
                                                           strcmp(json_string_value(lim), "=") == 0))) {
            json_object_del(out, model);
            continue;
        }
        if (!json_is_object(lim)) {
            snprintf(why, why_cap, "%.64s: must be an object of rpm, rph, rpd, tpm, tph, tpd", model);
            goto bad;
        }
        json_t *clean = json_object();
        const char *k;
        json_t *n;
        json_object_foreach(lim, k, n)
        {
            int known = 0;
            for (size_t i = 0; i < sizeof(g_limit_keys) / sizeof(g_limit_keys[0]); i++)
                known |= strcmp(k, g_limit_keys[i]) == 0;
            if (!known) {
                snprintf(why, why_cap, "%.64s.%.16s: unknown limit (use rpm, rph, rpd, tpm, tph, tpd)", model, k);
                json_decref(clean);
                goto bad;
            }
            if (!json_is_integer(n) || json_integer_value(n) < 0 || json_integer_value(n) > 1000000000000LL) {
                snprintf(why, why_cap, "%.64s.%.16s: must be a non-negative integer", model, k);
                json_decref(clean);
                goto bad;
            }
            json_object_set(clean, k, n);
        }
        json_object_set_new(out, model, clean);
    }
    json_decref(parsed);
    return out;
bad:
    json_decref(parsed);
    json_decref(out);
    return NULL;
}
