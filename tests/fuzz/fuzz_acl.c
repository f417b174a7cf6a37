/* libFuzzer target: the ACL lists of an account (AllowIPs, AllowModels, Resources) as the quota
 * engine compiles them (shm/policy.h, shm/matcher.h) and as the Manage API edits and bounds them
 * (store/acct_fields.h).
 * Input lines: 0 AllowIPs, 1 AllowModels, 2 Resources (one account), 3..5 the same lists of its
 * parent, 6.. probes (addresses, model names, paths). Invariants: a list is refused exactly when a
 * naive reference parser finds a bad item, and the message names the list; a compiled list allows
 * exactly what a naive reference matcher allows; a list the Manage API accepts compiles; the
 * intersection of a child's and a parent's list allows nothing that either of them refuses. */
#include <arpa/inet.h>
#include <stdint.h>
#include <sys/socket.h>

#include "fuzz_ref.h"
#include "shm/matcher.h"
#include "shm/policy.h"
#include "store/acct_fields.h"

static const char *const g_names[3] = {"AllowIPs", "AllowModels", "Resources"};
static const char g_kinds[3] = {'I', 'M', 'R'};

/* ---- reference parser and matcher ---- */

typedef struct ref_net {
    int fam; /* 4 or 6; an IPv4-mapped block of /96 or longer is IPv4 */
    uint8_t a[16];
    int prefix;
} ref_net_t;

static int ref_net_parse(const char *s, size_t n, ref_net_t *out)
{
    if (n == 0 || n > 63) /* the longest address with a prefix is far shorter */
        return 0;
    const char *slash = memchr(s, '/', n);
    size_t alen = slash ? (size_t)(slash - s) : n;
    int prefix = -1;
    if (slash && slash + 1 == s + n)
        return 0;
    for (const char *d = slash ? slash + 1 : s + n; d < s + n; d++) {
        if (*d < '0' || *d > '9' || prefix > 128)
            return 0;
        prefix = (prefix < 0 ? 0 : prefix * 10) + (*d - '0');
    }
    char buf[64];
    snprintf(buf, sizeof(buf), "%.*s", (int)alen, s);
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, out->a) == 1) {
        if (prefix > 32)
            return 0;
        out->fam = 4;
        out->prefix = prefix < 0 ? 32 : prefix;
        return 1;
    }
    if (inet_pton(AF_INET6, buf, out->a) != 1 || prefix > 128)
        return 0;
    out->fam = 6;
    out->prefix = prefix < 0 ? 128 : prefix;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(out->a, mapped, 12) == 0 && out->prefix >= 96) {
        memmove(out->a, out->a + 12, 4);
        memset(out->a + 4, 0, 12);
        out->fam = 4;
        out->prefix -= 96;
    }
    return 1;
}

static int bit(const uint8_t *a, int i)
{
    return (a[i / 8] >> (7 - i % 8)) & 1;
}

static int ref_net_has(const ref_net_t *net, int fam, const uint8_t *a)
{
    if (fam != net->fam)
        return 0;
    for (int i = 0; i < net->prefix; i++)
        if (bit(net->a, i) != bit(a, i))
            return 0;
    return 1;
}

enum { REF_ANY = 0, REF_ITEMS, REF_NONE };

typedef struct ref_list {
    char kind;
    int star, none, bad;
    const char **item;
    size_t *len, n, cap;
} ref_list_t;

static void ref_add(const char *s, size_t n, void *ud)
{
    ref_list_t *l = ud;
    if (n == 1 && s[0] == '*') {
        l->star = 1;
        return;
    }
    if (n == 2 && s[0] == '-' && s[1] == '*')
        l->none = 1;
    if (s[0] == '-')
        return;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->item = realloc(l->item, l->cap * sizeof(*l->item));
        l->len = realloc(l->len, l->cap * sizeof(*l->len));
    }
    l->item[l->n] = s;
    l->len[l->n++] = n;
}

static int ref_mode(const ref_list_t *l)
{
    return l->star ? REF_ANY : l->none ? REF_NONE : l->n ? REF_ITEMS : REF_ANY;
}

static void ref_list_init(ref_list_t *l, char kind, const char *s)
{
    memset(l, 0, sizeof(*l));
    l->kind = kind;
    ref_items(s, ref_add, l);
    if (ref_mode(l) != REF_ITEMS)
        return;
    for (size_t i = 0; i < l->n && !l->bad; i++) {
        ref_net_t net;
        if (kind == 'I')
            l->bad = !ref_net_parse(l->item[i], l->len[i], &net);
        else
            l->bad = l->len[i] > 255 || (kind == 'R' && l->item[i][0] != '/');
    }
}

static void ref_list_free(ref_list_t *l)
{
    free(l->item);
    free(l->len);
}

static int ref_ip_allowed(const ref_list_t *l, int fam, const uint8_t *a)
{
    int mode = ref_mode(l);
    if (mode == REF_ANY)
        return 1;
    if (mode == REF_NONE) { /* loopback only */
        static const uint8_t one[16] = {[15] = 1};
        return fam == 4 ? a[0] == 127 : memcmp(a, one, 16) == 0;
    }
    for (size_t i = 0; i < l->n; i++) {
        ref_net_t net;
        if (ref_net_parse(l->item[i], l->len[i], &net) && ref_net_has(&net, fam, a))
            return 1;
    }
    return 0;
}

static int ref_name_allowed(const ref_list_t *l, const char *s, size_t sn)
{
    int mode = ref_mode(l);
    if (mode != REF_ITEMS)
        return mode == REF_ANY;
    for (size_t i = 0; i < l->n; i++) {
        const char *p = l->item[i];
        size_t pn = l->len[i];
        if (l->kind == 'R' && p[pn - 1] != '*') { /* a resource is a prefix: "p*" */
            char *q = malloc(pn + 1);
            memcpy(q, p, pn);
            q[pn] = '*';
            int m = ref_glob(q, pn + 1, s, sn);
            free(q);
            if (m)
                return 1;
        } else if (ref_glob(p, pn, s, sn)) {
            return 1;
        }
    }
    return 0;
}

/* ---- probes ---- */

typedef struct addr {
    int fam; /* 4 or 6, after unmapping */
    uint8_t a[16];
} addr_t;

#define MAX_ADDRS 512
#define MAX_NAMES 512

typedef struct probes {
    addr_t addr[MAX_ADDRS];
    size_t n_addr;
    const char *name[MAX_NAMES];
    size_t name_len[MAX_NAMES], n_name;
    char *owned[MAX_NAMES];
    size_t n_owned;
} probes_t;

static void add_addr(probes_t *p, int fam, const uint8_t *a)
{
    if (p->n_addr == MAX_ADDRS)
        return;
    addr_t *x = &p->addr[p->n_addr++];
    memset(x, 0, sizeof(*x));
    x->fam = fam;
    memcpy(x->a, a, fam == 4 ? 4 : 16);
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (fam == 6 && memcmp(a, mapped, 12) == 0) {
        x->fam = 4;
        memmove(x->a, x->a + 12, 4);
        memset(x->a + 4, 0, 12);
    }
}

static void add_name(probes_t *p, const char *s, size_t n)
{
    if (p->n_name < MAX_NAMES) {
        p->name[p->n_name] = s;
        p->name_len[p->n_name++] = n;
    }
}

static void add_owned(probes_t *p, char *s)
{
    if (p->n_owned == MAX_NAMES || p->n_name == MAX_NAMES) {
        free(s);
        return;
    }
    p->owned[p->n_owned++] = s;
    add_name(p, s, strlen(s));
}

/* Addresses at and around the edges of each block of L. */
static void probe_blocks(probes_t *p, const ref_list_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        ref_net_t net;
        if (!ref_net_parse(l->item[i], l->len[i], &net))
            continue;
        int max = net.fam == 4 ? 32 : 128;
        uint8_t a[16];
        int flips[3] = {net.prefix - 1, net.prefix, max - 1};
        add_addr(p, net.fam, net.a);
        for (int k = 0; k < 3; k++) {
            if (flips[k] < 0 || flips[k] >= max)
                continue;
            memcpy(a, net.a, 16);
            a[flips[k] / 8] ^= (uint8_t)(0x80 >> (flips[k] % 8));
            add_addr(p, net.fam, a);
        }
    }
}

/* Names made from each pattern of L: as written, with '*' as "", as "x", and with a suffix. */
static void probe_patterns(probes_t *p, const ref_list_t *l)
{
    for (size_t i = 0; i < l->n && i < 64; i++) {
        const char *s = l->item[i];
        size_t n = l->len[i];
        add_name(p, s, n);
        for (int v = 0; v < 3; v++) {
            char *o = malloc(2 * n + 4), *q = o;
            for (size_t j = 0; j < n; j++) {
                if (s[j] != '*')
                    *q++ = s[j];
                else if (v == 1)
                    *q++ = 'x';
                else if (v == 2)
                    *q++ = '*';
            }
            if (v == 2) {
                *q++ = '/';
                *q++ = 'x';
            }
            *q = '\0';
            add_owned(p, o);
        }
    }
}

static void probes_from_lines(probes_t *p, const fuzz_lines_t *ls)
{
    for (size_t i = 6; i < ls->n; i++) {
        const char *s = ls->line[i];
        size_t n = strlen(s);
        add_name(p, s, n);
        uint8_t a[16];
        if (inet_pton(AF_INET, s, a) == 1)
            add_addr(p, 4, a);
        else if (inet_pton(AF_INET6, s, a) == 1)
            add_addr(p, 6, a);
        else if (n >= 16)
            add_addr(p, 6, (const uint8_t *)s);
        else if (n >= 4)
            add_addr(p, 4, (const uint8_t *)s);
    }
    static const uint8_t lo4[4] = {127, 0, 0, 1}, lo6[16] = {[15] = 1};
    add_addr(p, 4, lo4);
    add_addr(p, 6, lo6);
}

static void probes_free(probes_t *p)
{
    for (size_t i = 0; i < p->n_owned; i++)
        free(p->owned[i]);
}

/* ---- the real thing ---- */

/* Compiles LIST as the account list of kind K (0..2). NULL with *ERR when refused. */
static uint8_t *compile_one(int k, const char *list, char **err)
{
    tg_account_src_t src = {NULL, NULL, NULL, NULL, NULL, NULL};
    if (k == 0)
        src.allow_ips = list;
    else if (k == 1)
        src.allow_models = list;
    else
        src.resources = list;
    size_t len;
    return tg_policy_account_compile(&src, &len, err);
}

static int sec_allows(const uint8_t *sec, int k, const probes_t *p, size_t i)
{
    if (k == 0) {
        const addr_t *a = &p->addr[i];
        return tg_psec_ip_allowed(sec, a->fam == 4 ? AF_INET : AF_INET6, a->a);
    }
    if (k == 1)
        return tg_psec_model_allowed(sec, p->name[i], p->name_len[i]);
    return tg_psec_path_allowed(sec, p->name[i], p->name_len[i]);
}

static size_t n_probes(int k, const probes_t *p)
{
    return k == 0 ? p->n_addr : p->n_name;
}

/* The compiled section of the three lists against the reference. */
static void check_account(const fuzz_lines_t *ls, const ref_list_t *ref, const probes_t *p, int compare)
{
    tg_account_src_t src = {ls->line[0], ls->line[1], ls->line[2], NULL, NULL, NULL};
    size_t len, total = strlen(ls->line[0]) + strlen(ls->line[1]) + strlen(ls->line[2]);
    char *err = NULL;
    uint8_t *sec = tg_policy_account_compile(&src, &len, &err);
    int first_bad = -1;
    for (int k = 2; k >= 0; k--)
        if (ref[k].bad)
            first_bad = k;
    if (sec == NULL) {
        FUZZ_CHECK(err && *err, "a refused list must say why");
        if (first_bad < 0)
            FUZZ_CHECK(total > 2048 && strstr(err, "too long"), "refused lists the reference accepts: %s", err);
        else
            FUZZ_CHECK(strncmp(err, g_names[first_bad], strlen(g_names[first_bad])) == 0,
                       "the message must name %s: %s", g_names[first_bad], err);
        free(err);
        return;
    }
    FUZZ_CHECK(first_bad < 0, "%s accepted though it holds a bad item", g_names[first_bad]);
    if (!compare) {
        free(sec);
        return;
    }
    for (size_t i = 0; i < p->n_addr; i++) {
        const addr_t *a = &p->addr[i];
        int got = sec_allows(sec, 0, p, i), want = ref_ip_allowed(&ref[0], a->fam, a->a);
        FUZZ_CHECK(got == want, "AllowIPs probe %zu (family %d): compiled %d, reference %d", i, a->fam, got, want);
    }
    for (size_t i = 0; i < p->n_name; i++) {
        for (int k = 1; k <= 2; k++) {
            int got = sec_allows(sec, k, p, i), want = ref_name_allowed(&ref[k], p->name[i], p->name_len[i]);
            FUZZ_CHECK(got == want, "%s probe '%.*s': compiled %d, reference %d", g_names[k], (int)p->name_len[i],
                       p->name[i], got, want);
        }
    }
    free(sec);
}

/* The Manage API's normalization and bounding of list K. */
static void check_intersection(int k, const char *child_in, const char *parent_in, const probes_t *p)
{
    char why[200] = "";
    char kind = g_kinds[k];
    if (strlen(child_in) > 4096 || strlen(parent_in) > 4096)
        return; /* the API refuses longer values before editing */
    char *child = tg_acl_edit(kind, "", child_in, why, sizeof(why));
    if (child == NULL) {
        FUZZ_CHECK(why[0], "a refused %s edit must say why", g_names[k]);
        return;
    }
    char *parent = tg_acl_edit(kind, "", parent_in, why, sizeof(why));
    if (parent == NULL) {
        FUZZ_CHECK(why[0], "a refused %s edit must say why", g_names[k]);
        free(child);
        return;
    }
    char *again = tg_acl_edit(kind, "", child, why, sizeof(why));
    FUZZ_CHECK(child[0] == '\0' || (again && strcmp(again, child) == 0), "%s: re-editing '%s' gave '%s'", g_names[k],
               child, again ? again : why);
    free(again);
    char *in = tg_acl_intersect(kind, child, parent);
    char *err = NULL;
    uint8_t *sc = compile_one(k, child, &err), *sp = sc ? compile_one(k, parent, &err) : NULL;
    uint8_t *si = sp ? compile_one(k, in, &err) : NULL;
    FUZZ_CHECK(si != NULL, "%s accepted by the Manage API does not compile: %s", g_names[k], err ? err : "?");
    /* "-*" is loopback-only for AllowIPs by definition (api-compat 1.5), whatever the parent says */
    int loopback_only = k == 0 && strcmp(in, "-*") == 0;
    for (size_t i = 0; i < n_probes(k, p) && !loopback_only; i++)
        if (sec_allows(si, k, p, i))
            FUZZ_CHECK(sec_allows(sc, k, p, i) && sec_allows(sp, k, p, i),
                       "%s: the intersection '%s' of '%s' and '%s' allows probe %zu", g_names[k], in, child, parent, i);
    free(sc);
    free(sp);
    free(si);
    free(child);
    free(parent);
    free(in);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    fuzz_lines_t ls;
    lines_split(&ls, data, size);
    ref_list_t ref[6];
    for (int i = 0; i < 6; i++)
        ref_list_init(&ref[i], g_kinds[i % 3], ls.line[i]);
    probes_t *p = calloc(1, sizeof(*p));
    probes_from_lines(p, &ls);
    for (int i = 0; i < 6; i++) {
        if (i % 3 == 0)
            probe_blocks(p, &ref[i]);
        else
            probe_patterns(p, &ref[i]);
    }
    check_account(&ls, ref, p, size <= 4096); /* the reference matcher is slow */
    for (int k = 0; k < 3; k++)
        check_intersection(k, ls.line[k], ls.line[k + 3], p);
    probes_free(p);
    free(p);
    for (int i = 0; i < 6; i++)
        ref_list_free(&ref[i]);
    lines_free(&ls);
    return 0;
}
