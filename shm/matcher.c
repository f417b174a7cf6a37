/* Wildcard rule tables, CIDR sets and list parsing (matcher.h). */
#include "shm/matcher.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

size_t tg_mbuf_add(tg_mbuf_t *b, const void *data, size_t len, size_t align)
{
    if (b->oom)
        return (size_t)-1;
    size_t off = (b->len + align - 1) & ~(align - 1);
    if (off + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < off + len)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return (size_t)-1;
        }
        memset(p + b->cap, 0, cap - b->cap);
        b->p = p;
        b->cap = cap;
    }
    if (off > b->len) /* alignment gap: zeroed, so equal lists compile to equal bytes (de-duplication) */
        memset(b->p + b->len, 0, off - b->len);
    if (data && len)
        memcpy(b->p + off, data, len);
    else if (len)
        memset(b->p + off, 0, len);
    b->len = off + len;
    return off;
}

void tg_mbuf_dispose(tg_mbuf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

int tg_glob(const char *p, size_t pn, const char *s, size_t sn)
{
    size_t pi = 0, si = 0, star = (size_t)-1, mark = 0;
    while (si < sn) {
        if (pi < pn && p[pi] == '*') {
            star = pi++;
            mark = si;
        } else if (pi < pn && p[pi] == s[si]) {
            pi++;
            si++;
        } else if (star != (size_t)-1) {
            pi = star + 1;
            si = ++mark;
        } else {
            return 0;
        }
    }
    while (pi < pn && p[pi] == '*')
        pi++;
    return pi == pn;
}

static void classify(const char *p, size_t n, uint8_t *kind, uint8_t *spec)
{
    size_t stars = 0, lit = 0;
    for (size_t i = 0; i < n; i++)
        p[i] == '*' ? stars++ : lit++;
    *spec = lit > 255 ? 255 : (uint8_t)lit;
    if (stars == 0)
        *kind = TG_RULE_EXACT;
    else if (lit == 0)
        *kind = TG_RULE_ANY;
    else if (stars == 1 && p[n - 1] == '*')
        *kind = TG_RULE_PREFIX;
    else if (stars == 1 && p[0] == '*')
        *kind = TG_RULE_SUFFIX;
    else
        *kind = TG_RULE_GLOB;
}

typedef struct sort_item {
    tg_rule_t r;
    size_t order;
} sort_item_t;

static int rule_cmp(const void *a, const void *b)
{
    const sort_item_t *x = a, *y = b;
    int xe = x->r.kind == TG_RULE_EXACT, ye = y->r.kind == TG_RULE_EXACT;
    if (xe != ye)
        return ye - xe;
    if (x->r.spec != y->r.spec)
        return (int)y->r.spec - (int)x->r.spec;
    return x->order < y->order ? -1 : x->order > y->order;
}

size_t tg_rules_compile(tg_mbuf_t *b, tg_rule_src_t *src, size_t n)
{
    sort_item_t *items = calloc(n ? n : 1, sizeof(*items));
    if (!items) {
        b->oom = 1;
        return (size_t)-1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t plen = src[i].pat_len > 0xffff ? 0xffff : src[i].pat_len;
        size_t po = tg_mbuf_add(b, src[i].pat, plen, 1);
        size_t vo = 0;
        if (src[i].val && src[i].val_len)
            vo = tg_mbuf_add(b, src[i].val, src[i].val_len, src[i].is_str ? 1 : 8);
        if (po == (size_t)-1 || vo == (size_t)-1) {
            free(items);
            return (size_t)-1;
        }
        items[i].r.pat_off = (uint32_t)po;
        items[i].r.pat_len = (uint16_t)plen;
        classify(src[i].pat, plen, &items[i].r.kind, &items[i].r.spec);
        items[i].r.val_off = (uint32_t)vo;
        items[i].r.val_len = src[i].is_str ? (uint32_t)src[i].val_len : 0;
        items[i].order = i;
    }
    qsort(items, n, sizeof(*items), rule_cmp);
    size_t off = tg_mbuf_add(b, NULL, sizeof(tg_rule_table_t) + n * sizeof(tg_rule_t), 8);
    if (off != (size_t)-1) {
        tg_rule_table_t *t = (tg_rule_table_t *)(b->p + off);
        t->n = (uint32_t)n;
        for (size_t i = 0; i < n; i++)
            t->rules[i] = items[i].r;
    }
    free(items);
    return off;
}

static int rule_matches(const uint8_t *blob, const tg_rule_t *r, const char *s, size_t n)
{
    const char *p = (const char *)blob + r->pat_off;
    size_t pn = r->pat_len;
    switch (r->kind) {
    case TG_RULE_EXACT: return pn == n && memcmp(p, s, n) == 0;
    case TG_RULE_ANY: return 1;
    case TG_RULE_PREFIX: return n >= pn - 1 && memcmp(p, s, pn - 1) == 0;
    case TG_RULE_SUFFIX: return n >= pn - 1 && memcmp(p + 1, s + n - (pn - 1), pn - 1) == 0;
    default: return tg_glob(p, pn, s, n);
    }
}

int tg_rules_match(const uint8_t *blob, uint32_t off, const char *s, size_t n)
{
    const tg_rule_table_t *t = (const tg_rule_table_t *)(blob + off);
    for (uint32_t i = 0; i < t->n; i++)
        if (rule_matches(blob, &t->rules[i], s, n))
            return (int)i;
    return -1;
}

const tg_rule_t *tg_rules_at(const uint8_t *blob, uint32_t off, int i)
{
    const tg_rule_table_t *t = (const tg_rule_table_t *)(blob + off);
    return &t->rules[i];
}

/* ---- CIDR ---- */

int tg_cidr_parse(const char *s, size_t n, tg_cidr4_t *v4, tg_cidr6_t *v6)
{
    char buf[64];
    if (n == 0 || n >= sizeof(buf))
        return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *slash = strchr(buf, '/');
    long prefix = -1;
    if (slash) { /* decimal digits only: no sign, no space */
        *slash = '\0';
        if (slash[1] == '\0')
            return 0;
        prefix = 0;
        for (const char *d = slash + 1; *d; d++) {
            if (*d < '0' || *d > '9' || prefix > 128)
                return 0;
            prefix = prefix * 10 + (*d - '0');
        }
    }
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        if (prefix > 32)
            return 0;
        if (prefix < 0)
            prefix = 32;
        uint32_t mask = prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
        v4->mask = mask;
        v4->net = ntohl(a4.s_addr) & mask;
        return 4;
    }
    if (inet_pton(AF_INET6, buf, &a6) == 1) {
        if (prefix > 128)
            return 0;
        if (prefix < 0)
            prefix = 128;
        /* an IPv4-mapped block is an IPv4 block */
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a6.s6_addr, mapped, 12) == 0 && prefix >= 96) {
            uint32_t a;
            memcpy(&a, a6.s6_addr + 12, 4);
            long p4 = prefix - 96;
            uint32_t mask = p4 == 0 ? 0 : 0xffffffffu << (32 - p4);
            v4->mask = mask;
            v4->net = ntohl(a) & mask;
            return 4;
        }
        memset(v6, 0, sizeof(*v6));
        v6->prefix = (uint8_t)prefix;
        for (int i = 0; i < 16; i++) {
            int bits = (int)prefix - i * 8;
            uint8_t m = bits >= 8 ? 0xff : bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
            v6->net[i] = a6.s6_addr[i] & m;
        }
        return 6;
    }
    return 0;
}

size_t tg_cidr_compile(tg_mbuf_t *b, const tg_cidr4_t *v4, uint32_t n4, const tg_cidr6_t *v6, uint32_t n6)
{
    tg_cidr_set_t h = {n4, n6};
    size_t off = tg_mbuf_add(b, &h, sizeof(h), 8);
    if (off == (size_t)-1 || (n4 && tg_mbuf_add(b, v4, n4 * sizeof(*v4), 4) == (size_t)-1) ||
        (n6 && tg_mbuf_add(b, v6, n6 * sizeof(*v6), 4) == (size_t)-1))
        return (size_t)-1;
    return off;
}

int tg_cidr_match(const uint8_t *blob, uint32_t off, int family, const uint8_t *addr)
{
    const tg_cidr_set_t *set = (const tg_cidr_set_t *)(blob + off);
    const tg_cidr4_t *v4 = (const tg_cidr4_t *)(set + 1);
    const tg_cidr6_t *v6 = (const tg_cidr6_t *)(v4 + set->n4);
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family == AF_INET6 && memcmp(addr, mapped, 12) == 0) {
        family = AF_INET;
        addr += 12;
    }
    if (family == AF_INET) {
        uint32_t a;
        memcpy(&a, addr, 4);
        a = ntohl(a);
        for (uint32_t i = 0; i < set->n4; i++)
            if ((a & v4[i].mask) == v4[i].net)
                return 1;
        return 0;
    }
    if (family != AF_INET6)
        return 0;
    for (uint32_t i = 0; i < set->n6; i++) {
        int full = v6[i].prefix / 8, rest = v6[i].prefix % 8;
        if (memcmp(addr, v6[i].net, (size_t)full) != 0)
            continue;
        if (rest && (addr[full] & (uint8_t)(0xff << (8 - rest))) != v6[i].net[full])
            continue;
        return 1;
    }
    return 0;
}

/* ---- lists ---- */

static int is_sep(char c)
{
    return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int tg_list_each(const char *list, tg_item_fn fn, void *ud)
{
    if (!list)
        return 0;
    const char *p = list;
    while (*p) {
        while (*p && is_sep(*p))
            p++;
        const char *start = p;
        while (*p && !is_sep(*p))
            p++;
        if (p > start) {
            int rc = fn(ud, start, (size_t)(p - start));
            if (rc)
                return rc;
        }
    }
    return 0;
}

typedef struct mode_scan {
    int any, none, items;
} mode_scan_t;

static int scan_mode(void *ud, const char *item, size_t len)
{
    mode_scan_t *m = ud;
    if (len == 1 && item[0] == '*')
        m->any = 1;
    else if (len == 2 && item[0] == '-' && item[1] == '*')
        m->none = 1;
    else if (item[0] != '-')
        m->items++;
    return 0;
}

int tg_list_mode(const char *list)
{
    mode_scan_t m = {0};
    tg_list_each(list, scan_mode, &m);
    if (m.any)
        return TG_LIST_ANY;
    if (m.none)
        return TG_LIST_NONE;
    return m.items ? TG_LIST_ITEMS : TG_LIST_ANY;
}

static int add_level(void *ud, const char *item, size_t len)
{
    uint64_t *allowed = ud;
    if (item[0] == '-' || (len == 1 && item[0] == '*'))
        return 0;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (item[i] < '0' || item[i] > '9' || v > 1000)
            return -1;
        v = v * 10 + (item[i] - '0');
    }
    if (v < 1 || v > 64)
        return -1;
    *allowed |= 1ull << (v - 1);
    return 0;
}

int tg_levels_parse(const char *list, uint64_t *mask)
{
    *mask = 0;
    int mode = tg_list_mode(list);
    if (mode == TG_LIST_ANY)
        return 0;
    if (mode == TG_LIST_NONE) {
        *mask = ~0ull; /* every level refused */
        return 0;
    }
    uint64_t allowed = 0;
    if (tg_list_each(list, add_level, &allowed) != 0)
        return -1;
    *mask = ~allowed;
    return 0;
}
