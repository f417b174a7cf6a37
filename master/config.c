/* master/config.c: loads tollgate's YAML configuration into a validated tg_config_t.
 *
 * The file is parsed with libyaml's document API and then walked with field tables: every
 * mapping (top level, arena, server, listen[i], keys[i], ...) is described by a table of fields
 * giving the YAML name, kind, struct offset, range, default and an optional check. The same
 * tables drive defaults, validation and disposal, so adding an option is one table row. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include "master/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <yaml.h>

#define TG_CFG_PATH_MAX 256 /* longest dotted key path kept for messages */
#define TG_CFG_WHY_MAX 256  /* longest reason produced by a check */
#define TG_SECRET_MIN 8
#define TG_ZONEINFO_DIR "/usr/share/zoneinfo"

/* ---- numbers: sizes, durations and plain integers share one scaled-decimal parser ---------- */

typedef struct {
    const char *suffix; /* "" = bare digits */
    uint64_t mult;
} tg_unit_t;

/* Ordered by descending multiplier; the first exact divisor is used when printing a value. */
static const tg_unit_t tg_size_units[] = {
    {"t", 1ull << 40}, {"T", 1ull << 40}, {"g", 1ull << 30}, {"G", 1ull << 30},
    {"m", 1ull << 20}, {"M", 1ull << 20}, {"k", 1ull << 10}, {"K", 1ull << 10}, {"", 1},
};
static const tg_unit_t tg_duration_units[] = {
    {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"", 1000}, {"ms", 1},
};
static const tg_unit_t tg_integer_units[] = {{"", 1}};

#define TG_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* How one kind of number is written in the file. */
typedef struct {
    const char *what;        /* used in "must be <what>" */
    const tg_unit_t *units;
    size_t n_units;
    bool plain_only;         /* refuse quoted scalars ("8080") */
} tg_numtype_t;

static const tg_numtype_t tg_num_integer = {"an integer", tg_integer_units, TG_NELEM(tg_integer_units), true};
static const tg_numtype_t tg_num_size = {"a size like 16m", tg_size_units, TG_NELEM(tg_size_units), false};
static const tg_numtype_t tg_num_duration = {"a duration like 30s", tg_duration_units,
                                             TG_NELEM(tg_duration_units), false};

/* Parses decimal digits followed by one of UNITS' suffixes, scaling by its multiplier. */
static int tg_parse_scaled(const char *s, const tg_unit_t *units, size_t n_units, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    for (size_t i = 0; i < n_units; i++) {
        if (strcmp(p, units[i].suffix) != 0)
            continue;
        if (units[i].mult != 0 && v > UINT64_MAX / units[i].mult)
            return -1;
        *out = v * units[i].mult;
        return 0;
    }
    return -1;
}

/* Prints V using the largest unit that divides it exactly (e.g. 16777216 -> "16m"). */
static void tg_format_scaled(uint64_t v, const tg_numtype_t *nt, char *buf, size_t len)
{
    for (size_t i = 0; i < nt->n_units; i++) {
        uint64_t m = nt->units[i].mult;
        if (v != 0 && v >= m && v % m == 0) {
            snprintf(buf, len, "%llu%s", (unsigned long long)(v / m), nt->units[i].suffix);
            return;
        }
    }
    snprintf(buf, len, "%llu", (unsigned long long)v);
}

/* Byte sizes with k/m/g/t suffixes; see config.h. */
int tg_parse_size(const char *s, uint64_t *out)
{
    return tg_parse_scaled(s, tg_size_units, TG_NELEM(tg_size_units), out);
}

/* Durations in ms with ms/s/m/h suffixes, bare = seconds; see config.h. */
int tg_parse_duration_ms(const char *s, uint64_t *out)
{
    return tg_parse_scaled(s, tg_duration_units, TG_NELEM(tg_duration_units), out);
}

/* ---- protocols ----------------------------------------------------------------------------- */

static const char *const tg_protocol_names[TG_PROTO_COUNT] = {"openai", "anthropic", "gemini", "router"};

/* Name of P as written in the file, or "unknown". */
const char *tg_protocol_name(tg_protocol_t p)
{
    if ((unsigned)p >= TG_PROTO_COUNT)
        return "unknown";
    return tg_protocol_names[p];
}

/* Protocol from its configuration name; -1 if unknown. */
int tg_protocol_parse(const char *s, tg_protocol_t *out)
{
    for (size_t i = 0; s != NULL && i < TG_PROTO_COUNT; i++) {
        if (strcmp(s, tg_protocol_names[i]) == 0) {
            *out = (tg_protocol_t)i;
            return 0;
        }
    }
    return -1;
}

/* ---- error reporting ----------------------------------------------------------------------- */

/* State of one load: where errors go and which document is being walked. */
typedef struct {
    const char *file;
    yaml_document_t *doc;
    char *err; /* first error, malloc'd */
} tg_walk_t;

/* Records "FILE:LINE: KEY: reason" (LINE of NODE, 1 if NULL) unless an error is already set.
 * Always returns -1 so callers can `return tg_fail(...)`. */
static int tg_fail(tg_walk_t *w, const yaml_node_t *node, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int tg_fail(tg_walk_t *w, const yaml_node_t *node, const char *key, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    unsigned long line = node ? (unsigned long)node->start_mark.line + 1 : 1;

    if (w->err != NULL)
        return -1;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (asprintf(&w->err, "%s:%lu: %s: %s", w->file, line, *key ? key : "top level", reason) < 0)
        w->err = NULL;
    return -1;
}

/* Builds "PREFIX.NAME" (or just NAME at the top level) into BUF. */
static void tg_key_join(char *buf, size_t len, const char *prefix, const char *name)
{
    if (*prefix)
        snprintf(buf, len, "%s.%s", prefix, name);
    else
        snprintf(buf, len, "%s", name);
}

/* ---- field tables -------------------------------------------------------------------------- */

typedef enum {
    TG_F_STRING,  /* char *, strdup'd; empty refused */
    TG_F_NUMBER,  /* uint32_t/uint64_t/int parsed per tg_numtype_t, range-checked */
    TG_F_ENUM,    /* int-sized enum named by `names` */
    TG_F_SECTION, /* nested mapping described by `sub`, fields addressed from the same base */
    TG_F_LIST,    /* sequence of mappings described by `list` */
} tg_field_kind_t;

/* Extra validation of a string (S) or number (V). Writes a reason into WHY and returns -1. */
typedef int (*tg_check_fn)(const char *s, uint64_t v, char *why, size_t len);

typedef struct tg_table tg_table_t;
typedef struct tg_list tg_list_t;

typedef struct {
    const char *name;
    tg_field_kind_t kind;
    size_t offset;            /* STRING/NUMBER/ENUM/LIST: member offset from the table's base */
    size_t width;             /* NUMBER/ENUM: sizeof the member (4 or 8) */
    uint64_t min, max;        /* NUMBER: inclusive range; LIST: entry count */
    const tg_numtype_t *num;  /* NUMBER */
    const char *const *names; /* ENUM: value i is names[i] */
    size_t n_names;
    tg_check_fn check;        /* STRING/NUMBER: optional */
    const char *def_str;      /* STRING: default, or NULL */
    uint64_t def_num;         /* NUMBER/ENUM: default */
    const tg_table_t *sub;    /* SECTION */
    const tg_list_t *list;    /* LIST */
    bool required;
} tg_field_t;

/* Cross-field checks run after a mapping was walked (MAP may be NULL when it was absent). */
typedef int (*tg_finish_fn)(tg_walk_t *w, const yaml_node_t *map, const char *prefix, void *base);

struct tg_table {
    const tg_field_t *fields;
    size_t n;
    tg_finish_fn finish;
};

/* Checks run over a whole list after its entries were walked. */
typedef int (*tg_list_finish_fn)(tg_walk_t *w, const yaml_node_t *seq, const char *prefix, void *items,
                                 size_t n);

struct tg_list {
    const tg_table_t *item;
    size_t item_size;
    size_t count_offset; /* size_t count member, from the owning base */
    tg_list_finish_fn finish;
};

#define TG_MEMBER_SIZE(type, member) sizeof(((type *)0)->member)
#define TG_STR(nm, type, member, dflt, chk, req) \
    {.name = nm, .kind = TG_F_STRING, .offset = offsetof(type, member), .def_str = dflt, .check = chk, \
     .required = req}
#define TG_NUM(nm, type, member, nt, lo, hi, dflt, chk, req) \
    {.name = nm, .kind = TG_F_NUMBER, .offset = offsetof(type, member), \
     .width = TG_MEMBER_SIZE(type, member), .num = &nt, .min = lo, .max = hi, .def_num = dflt, .check = chk, \
     .required = req}
#define TG_SECTION(nm, table, req) {.name = nm, .kind = TG_F_SECTION, .sub = &table, .required = req}

static char *tg_field_str(void *base, const tg_field_t *f)
{
    char *s;
    memcpy(&s, (char *)base + f->offset, sizeof s);
    return s;
}

static void tg_field_set_str(void *base, const tg_field_t *f, char *s)
{
    memcpy((char *)base + f->offset, &s, sizeof s);
}

static void tg_field_set_num(void *base, const tg_field_t *f, uint64_t v)
{
    if (f->width == sizeof(uint64_t)) {
        memcpy((char *)base + f->offset, &v, sizeof v);
    } else {
        uint32_t v32 = (uint32_t)v;
        memcpy((char *)base + f->offset, &v32, sizeof v32);
    }
}

static void *tg_list_items(void *base, const tg_field_t *f)
{
    void *items;
    memcpy(&items, (char *)base + f->offset, sizeof items);
    return items;
}

static size_t *tg_list_count(void *base, const tg_field_t *f)
{
    return (size_t *)((char *)base + f->list->count_offset);
}

/* Frees every string and list TABLE owns inside BASE. */
static void tg_table_free(const tg_table_t *t, void *base)
{
    for (size_t i = 0; i < t->n; i++) {
        const tg_field_t *f = &t->fields[i];
        if (f->kind == TG_F_STRING) {
            free(tg_field_str(base, f));
            tg_field_set_str(base, f, NULL);
        } else if (f->kind == TG_F_SECTION) {
            tg_table_free(f->sub, base);
        } else if (f->kind == TG_F_LIST) {
            char *items = tg_list_items(base, f);
            for (size_t j = 0; items != NULL && j < *tg_list_count(base, f); j++)
                tg_table_free(f->list->item, items + j * f->list->item_size);
            free(items);
            memset((char *)base + f->offset, 0, sizeof(void *));
            *tg_list_count(base, f) = 0;
        }
    }
}

/* Stores TABLE's defaults into BASE. Returns -1 when out of memory. */
static int tg_table_defaults(const tg_table_t *t, void *base)
{
    for (size_t i = 0; i < t->n; i++) {
        const tg_field_t *f = &t->fields[i];
        if (f->kind == TG_F_STRING && f->def_str != NULL) {
            char *s = strdup(f->def_str);
            if (s == NULL)
                return -1;
            tg_field_set_str(base, f, s);
        } else if (f->kind == TG_F_NUMBER || f->kind == TG_F_ENUM) {
            tg_field_set_num(base, f, f->def_num);
        } else if (f->kind == TG_F_SECTION && tg_table_defaults(f->sub, base) != 0) {
            return -1;
        }
    }
    return 0;
}

/* ---- walking the document ------------------------------------------------------------------ */

/* True for a plain empty/~/null scalar: an absent value, treated as an empty mapping or list. */
static bool tg_node_is_null(const yaml_node_t *n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};

    if (n == NULL)
        return true;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    for (size_t i = 0; i < TG_NELEM(nulls); i++)
        if (strcmp((const char *)n->data.scalar.value, nulls[i]) == 0)
            return true;
    return false;
}

/* Returns NODE's text if it is a non-null scalar without NUL bytes, else NULL. */
static const char *tg_scalar(const yaml_node_t *n)
{
    if (n == NULL || n->type != YAML_SCALAR_NODE || tg_node_is_null(n))
        return NULL;
    if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
        return NULL;
    return (const char *)n->data.scalar.value;
}

/* Returns the value node of KEY in mapping MAP, or NULL. */
static yaml_node_t *tg_map_value(tg_walk_t *w, const yaml_node_t *map, const char *key)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        const char *k = tg_scalar(yaml_document_get_node(w->doc, p->key));
        if (k != NULL && strcmp(k, key) == 0)
            return yaml_document_get_node(w->doc, p->value);
    }
    return NULL;
}

static int tg_walk_map(tg_walk_t *w, const yaml_node_t *node, const char *prefix, const tg_table_t *t,
                       void *base);

static int tg_set_string(tg_walk_t *w, const tg_field_t *f, const yaml_node_t *node, const char *path,
                         void *base)
{
    char why[TG_CFG_WHY_MAX];
    const char *s = tg_scalar(node);
    char *copy;

    if (s == NULL)
        return tg_fail(w, node, path, "must be a string");
    if (*s == '\0')
        return tg_fail(w, node, path, "must not be empty");
    if (f->check != NULL && f->check(s, 0, why, sizeof why) != 0)
        return tg_fail(w, node, path, "%s", why);
    copy = strdup(s);
    if (copy == NULL)
        return tg_fail(w, node, path, "out of memory");
    free(tg_field_str(base, f));
    tg_field_set_str(base, f, copy);
    return 0;
}

static int tg_set_number(tg_walk_t *w, const tg_field_t *f, const yaml_node_t *node, const char *path,
                         void *base)
{
    char lo[32], hi[32], why[TG_CFG_WHY_MAX];
    const char *s = tg_scalar(node);
    uint64_t v = 0;
    /* "-1" is a well-formed number that is out of range, not a type error */
    bool negative = s != NULL && s[0] == '-' && tg_parse_scaled(s + 1, f->num->units, f->num->n_units, &v) == 0;

    tg_format_scaled(f->min, f->num, lo, sizeof lo);
    tg_format_scaled(f->max, f->num, hi, sizeof hi);
    if (s == NULL || (f->num->plain_only && node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) ||
        (!negative && tg_parse_scaled(s, f->num->units, f->num->n_units, &v) != 0))
        return tg_fail(w, node, path, "must be %s between %s and %s", f->num->what, lo, hi);
    if (negative || v < f->min || v > f->max)
        return tg_fail(w, node, path, "must be between %s and %s", lo, hi);
    if (f->check != NULL && f->check(s, v, why, sizeof why) != 0)
        return tg_fail(w, node, path, "%s", why);
    tg_field_set_num(base, f, v);
    return 0;
}

static int tg_set_enum(tg_walk_t *w, const tg_field_t *f, const yaml_node_t *node, const char *path,
                       void *base)
{
    char choices[TG_CFG_WHY_MAX] = "";
    const char *s = tg_scalar(node);

    for (size_t i = 0; s != NULL && i < f->n_names; i++) {
        if (strcmp(s, f->names[i]) == 0) {
            tg_field_set_num(base, f, i);
            return 0;
        }
    }
    for (size_t i = 0; i < f->n_names; i++) {
        size_t used = strlen(choices);
        snprintf(choices + used, sizeof choices - used, "%s%s", i ? ", " : "", f->names[i]);
    }
    return tg_fail(w, node, path, "must be one of %s", choices);
}

/* Walks a sequence of mappings into a freshly allocated array owned by BASE. */
static int tg_set_list(tg_walk_t *w, const tg_field_t *f, const yaml_node_t *node, const char *path,
                       void *base)
{
    const tg_list_t *l = f->list;
    size_t n = 0;
    char *items;

    if (!tg_node_is_null(node) && node->type != YAML_SEQUENCE_NODE)
        return tg_fail(w, node, path, "must be a list");
    if (node != NULL && node->type == YAML_SEQUENCE_NODE)
        n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (n < f->min || n > f->max)
        return tg_fail(w, node, path, "must have between %llu and %llu entries", (unsigned long long)f->min,
                       (unsigned long long)f->max);
    items = calloc(n ? n : 1, l->item_size);
    if (items == NULL)
        return tg_fail(w, node, path, "out of memory");
    memcpy((char *)base + f->offset, &items, sizeof items);
    *tg_list_count(base, f) = n; /* owned by BASE from here on, so dispose frees partial lists */
    for (size_t i = 0; i < n; i++) {
        char item_path[TG_CFG_PATH_MAX + 24]; /* room for "[index]" */
        void *item = items + i * l->item_size;
        const yaml_node_t *item_node = yaml_document_get_node(w->doc, node->data.sequence.items.start[i]);
        snprintf(item_path, sizeof item_path, "%s[%zu]", path, i);
        if (tg_table_defaults(l->item, item) != 0)
            return tg_fail(w, item_node, item_path, "out of memory");
        if (tg_walk_map(w, item_node, item_path, l->item, item) != 0)
            return -1;
    }
    return l->finish ? l->finish(w, node, path, items, n) : 0;
}

static int tg_set_field(tg_walk_t *w, const tg_field_t *f, const yaml_node_t *node, const char *path, void *base)
{
    switch (f->kind) {
    case TG_F_STRING:
        return tg_set_string(w, f, node, path, base);
    case TG_F_NUMBER:
        return tg_set_number(w, f, node, path, base);
    case TG_F_ENUM:
        return tg_set_enum(w, f, node, path, base);
    case TG_F_SECTION:
        return tg_walk_map(w, node, path, f->sub, base);
    case TG_F_LIST:
        return tg_set_list(w, f, node, path, base);
    }
    return tg_fail(w, node, path, "internal error: unknown field kind");
}

static const tg_field_t *tg_find_field(const tg_table_t *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->fields[i].name, name) == 0)
            return &t->fields[i];
    return NULL;
}

/* Walks mapping NODE (NULL or a null scalar = empty) against table T, storing into BASE:
 * refuses non-mappings, unknown and duplicate keys, and missing required fields. */
static int tg_walk_map(tg_walk_t *w, const yaml_node_t *node, const char *prefix, const tg_table_t *t, void *base)
{
    uint64_t seen = 0; /* bit i: fields[i] was given */
    char path[TG_CFG_PATH_MAX];
    yaml_node_pair_t *p = NULL, *end = NULL;

    if (!tg_node_is_null(node) && node->type != YAML_MAPPING_NODE)
        return tg_fail(w, node, prefix, "must be a mapping");
    if (node != NULL && node->type == YAML_MAPPING_NODE) {
        p = node->data.mapping.pairs.start;
        end = node->data.mapping.pairs.top;
    }
    for (; p < end; p++) {
        const yaml_node_t *key = yaml_document_get_node(w->doc, p->key);
        const char *name = tg_scalar(key);
        const tg_field_t *f;
        if (name == NULL)
            return tg_fail(w, key, prefix, "keys must be plain strings");
        tg_key_join(path, sizeof path, prefix, name);
        f = tg_find_field(t, name);
        if (f == NULL)
            return tg_fail(w, key, path, "unknown key");
        if (seen & (1ull << (f - t->fields)))
            return tg_fail(w, key, path, "duplicate key");
        seen |= 1ull << (f - t->fields);
        if (tg_set_field(w, f, yaml_document_get_node(w->doc, p->value), path, base) != 0)
            return -1;
    }
    for (size_t i = 0; i < t->n; i++) {
        if (t->fields[i].required && !(seen & (1ull << i))) {
            tg_key_join(path, sizeof path, prefix, t->fields[i].name);
            return tg_fail(w, node, path, "is required");
        }
    }
    return t->finish ? t->finish(w, node, prefix, base) : 0;
}

/* ---- value checks -------------------------------------------------------------------------- */

static int tg_why(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int tg_why(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -1;
}

static int tg_check_host(const char *s, uint64_t v, char *why, size_t len)
{
    unsigned char addr[sizeof(struct in6_addr)];

    if (strcmp(s, "localhost") == 0 || inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1)
        return 0;
    return tg_why(why, len, "must be an IPv4/IPv6 address or \"localhost\"");
}

static int tg_check_readable(const char *s, uint64_t v, char *why, size_t len)
{
    struct stat st;
    int fd = open(s, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return tg_why(why, len, "cannot read %s: %s", s, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return tg_why(why, len, "%s is not a regular file", s);
    }
    close(fd);
    return 0;
}

/* upstream.ca_file: a readable file holding at least one PEM certificate. */
static int tg_check_ca_file(const char *s, uint64_t v, char *why, size_t len)
{
    if (tg_check_readable(s, v, why, len) != 0)
        return -1;
    FILE *f = fopen(s, "r");
    X509 *cert = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    ERR_clear_error();
    if (cert == NULL)
        return tg_why(why, len, "%s holds no PEM certificate", s);
    X509_free(cert);
    return 0;
}

static int tg_check_timezone(const char *s, uint64_t v, char *why, size_t len)
{
    char file[512];
    struct stat st;

    if (strcmp(s, "UTC") == 0)
        return 0;
    if (s[0] == '/' || strstr(s, "..") != NULL || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                             "0123456789/_+-") != strlen(s))
        return tg_why(why, len, "must be \"UTC\" or a zone name like Europe/Berlin");
    snprintf(file, sizeof file, "%s/%s", TG_ZONEINFO_DIR, s);
    if (stat(file, &st) != 0 || !S_ISREG(st.st_mode))
        return tg_why(why, len, "unknown time zone (not under %s)", TG_ZONEINFO_DIR);
    return 0;
}

static int tg_check_level(const char *s, uint64_t v, char *why, size_t len)
{
    static const char *const levels[] = {"debug", "info", "warn", "error"};

    for (size_t i = 0; i < TG_NELEM(levels); i++)
        if (strcmp(s, levels[i]) == 0)
            return 0;
    return tg_why(why, len, "must be one of debug, info, warn, error");
}

static int tg_check_error_log(const char *s, uint64_t v, char *why, size_t len)
{
    if (strcmp(s, "off") == 0)
        return tg_why(why, len, "must be \"-\" (stderr) or a path; \"off\" is only valid for log.access");
    return 0;
}

static int tg_check_pow2(const char *s, uint64_t v, char *why, size_t len)
{
    if (v == 0 || (v & (v - 1)) != 0)
        return tg_why(why, len, "must be a power of two");
    return 0;
}

static int tg_check_key_name(const char *s, uint64_t v, char *why, size_t len)
{
    if (strlen(s) > 64)
        return tg_why(why, len, "must be at most 64 characters");
    if (strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != strlen(s))
        return tg_why(why, len, "may only contain letters, digits, '.', '_' and '-'");
    return 0;
}

static int tg_check_env_name(const char *s, uint64_t v, char *why, size_t len)
{
    if ((s[0] >= '0' && s[0] <= '9') ||
        strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != strlen(s))
        return tg_why(why, len, "must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
    return 0;
}

/* Secrets end up in request headers: refuse short values and control characters (CR/LF). */
static int tg_check_secret(const char *s, uint64_t v, char *why, size_t len)
{
    if (strlen(s) < TG_SECRET_MIN)
        return tg_why(why, len, "must be at least %d characters", TG_SECRET_MIN);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return tg_why(why, len, "must not contain control characters");
    return 0;
}

/* Checks the ":PORT" (or empty) text after a URL's host. */
static int tg_check_url_port(const char *rest, size_t n, char *why, size_t len)
{
    unsigned long port = 0;

    if (n == 0)
        return 0;
    if (rest[0] != ':' || n < 2 || n > 6 || strspn(rest + 1, "0123456789") < n - 1)
        return tg_why(why, len, "has an invalid port");
    for (size_t i = 1; i < n; i++)
        port = port * 10 + (unsigned long)(rest[i] - '0');
    if (port < 1 || port > 65535)
        return tg_why(why, len, "has an invalid port (1..65535)");
    return 0;
}

static int tg_check_url(const char *s, uint64_t v, char *why, size_t len)
{
    const char *auth, *host_end;
    size_t auth_len;

    if (strncmp(s, "http://", 7) == 0)
        auth = s + 7;
    else if (strncmp(s, "https://", 8) == 0)
        auth = s + 8;
    else
        return tg_why(why, len, "must be an http:// or https:// URL");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return tg_why(why, len, "must not contain spaces or control characters");
    if (strpbrk(s, "?#") != NULL)
        return tg_why(why, len, "must not contain a query or fragment");
    auth_len = strcspn(auth, "/");
    if (memchr(auth, '@', auth_len) != NULL)
        return tg_why(why, len, "must not contain credentials (use secret/secret_env)");
    if (auth[0] == '[') {
        host_end = memchr(auth, ']', auth_len);
        if (host_end == NULL || host_end == auth + 1)
            return tg_why(why, len, "has an invalid IPv6 host");
        host_end++;
    } else {
        host_end = auth + strcspn(auth, ":/");
    }
    if (host_end == auth)
        return tg_why(why, len, "must include a host");
    return tg_check_url_port(host_end, auth_len - (size_t)(host_end - auth), why, len);
}

/* ---- the tables ---------------------------------------------------------------------------- */

#define TG_MIB (1ull << 20)
#define TG_SEC 1000ull
#define TG_MIN (60 * TG_SEC)
#define TG_HOUR (60 * TG_MIN)

static const tg_field_t tg_tls_fields[] = {
    TG_STR("cert", tg_listen_t, tls_cert, NULL, tg_check_readable, true),
    TG_STR("key", tg_listen_t, tls_key, NULL, tg_check_readable, true),
};
static const tg_table_t tg_tls_table = {tg_tls_fields, TG_NELEM(tg_tls_fields), NULL};

static const tg_field_t tg_listen_fields[] = {
    TG_STR("host", tg_listen_t, host, NULL, tg_check_host, true),
    TG_NUM("port", tg_listen_t, port, tg_num_integer, 1, 65535, 0, NULL, true),
    TG_SECTION("tls", tg_tls_table, false),
};
static const tg_table_t tg_listen_table = {tg_listen_fields, TG_NELEM(tg_listen_fields), NULL};

/* Refuses a host:port that an earlier listen entry already uses. */
static int tg_listen_finish(tg_walk_t *w, const yaml_node_t *seq, const char *prefix, void *items, size_t n)
{
    const tg_listen_t *l = items;

    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (l[i].port == l[j].port && strcmp(l[i].host, l[j].host) == 0) {
                char path[TG_CFG_PATH_MAX];
                snprintf(path, sizeof path, "%s[%zu]", prefix, i);
                return tg_fail(w, yaml_document_get_node(w->doc, seq->data.sequence.items.start[i]), path,
                               "duplicate listen address %s:%d (also %s[%zu])", l[i].host, l[i].port, prefix, j);
            }
        }
    }
    return 0;
}
static const tg_list_t tg_listen_list = {&tg_listen_table, sizeof(tg_listen_t), offsetof(tg_config_t, n_listens),
                                         tg_listen_finish};

/* Requires exactly one of secret/secret_env and resolves secret_env into secret. */
static int tg_key_finish(tg_walk_t *w, const yaml_node_t *map, const char *prefix, void *base)
{
    tg_key_seed_t *k = base;
    char path[TG_CFG_PATH_MAX], why[TG_CFG_WHY_MAX];
    const char *value;

    if ((k->secret == NULL) == (k->secret_env == NULL)) {
        tg_key_join(path, sizeof path, prefix, "secret");
        return tg_fail(w, map, path, "exactly one of secret or secret_env is required");
    }
    if (k->secret_env == NULL)
        return 0;
    tg_key_join(path, sizeof path, prefix, "secret_env");
    value = getenv(k->secret_env);
    if (value == NULL || *value == '\0')
        return tg_fail(w, tg_map_value(w, map, "secret_env"), path, "environment variable %s is not set or empty",
                       k->secret_env);
    if (tg_check_secret(value, 0, why, sizeof why) != 0)
        return tg_fail(w, tg_map_value(w, map, "secret_env"), path, "environment variable %s %s", k->secret_env, why);
    k->secret = strdup(value);
    return k->secret ? 0 : tg_fail(w, map, path, "out of memory");
}

static const tg_field_t tg_key_fields[] = {
    TG_STR("name", tg_key_seed_t, name, NULL, tg_check_key_name, true),
    TG_NUM("level", tg_key_seed_t, level, tg_num_integer, 1, INT32_MAX, 0, NULL, true),
    TG_STR("provider", tg_key_seed_t, provider, NULL, tg_check_url, true),
    TG_STR("secret", tg_key_seed_t, secret, NULL, tg_check_secret, false),
    TG_STR("secret_env", tg_key_seed_t, secret_env, NULL, tg_check_env_name, false),
    {.name = "protocol", .kind = TG_F_ENUM, .offset = offsetof(tg_key_seed_t, protocol),
     .width = TG_MEMBER_SIZE(tg_key_seed_t, protocol), .names = tg_protocol_names, .n_names = TG_PROTO_COUNT,
     .def_num = TG_PROTO_OPENAI},
};
static const tg_table_t tg_key_table = {tg_key_fields, TG_NELEM(tg_key_fields), tg_key_finish};

/* Refuses a key name that an earlier entry already uses. */
static int tg_keys_finish(tg_walk_t *w, const yaml_node_t *seq, const char *prefix, void *items, size_t n)
{
    const tg_key_seed_t *k = items;

    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(k[i].name, k[j].name) == 0) {
                char path[TG_CFG_PATH_MAX];
                snprintf(path, sizeof path, "%s[%zu].name", prefix, i);
                return tg_fail(w, yaml_document_get_node(w->doc, seq->data.sequence.items.start[i]), path,
                               "duplicate key name \"%s\" (also %s[%zu])", k[i].name, prefix, j);
            }
        }
    }
    return 0;
}
static const tg_list_t tg_keys_list = {&tg_key_table, sizeof(tg_key_seed_t), offsetof(tg_config_t, n_keys),
                                       tg_keys_finish};

static const tg_field_t tg_arena_fields[] = {
    TG_NUM("max_accounts", tg_config_t, arena.max_accounts, tg_num_integer, 16, 16 * TG_MIB, 100000, NULL, false),
    TG_NUM("max_upstream_keys", tg_config_t, arena.max_upstream_keys, tg_num_integer, 1, TG_MIB, 4096, NULL, false),
    TG_NUM("ring_slots", tg_config_t, arena.ring_slots, tg_num_integer, 1024, 16 * TG_MIB, 65536, tg_check_pow2,
           false),
    TG_NUM("max_inflight_per_worker", tg_config_t, arena.max_inflight_per_worker, tg_num_integer, 64, TG_MIB, 8192,
           NULL, false),
};
static const tg_table_t tg_arena_table = {tg_arena_fields, TG_NELEM(tg_arena_fields), NULL};

static const tg_field_t tg_server_fields[] = {
    TG_NUM("max_request_body", tg_config_t, server.max_request_body, tg_num_size, 1024, 1024 * TG_MIB, 16 * TG_MIB,
           NULL, false),
    TG_NUM("drain_timeout", tg_config_t, server.drain_timeout_ms, tg_num_duration, 0, TG_HOUR, 30 * TG_SEC, NULL,
           false),
    TG_NUM("max_connections", tg_config_t, server.max_connections, tg_num_integer, 1, 1000000, 10000, NULL, false),
};
static const tg_table_t tg_server_table = {tg_server_fields, TG_NELEM(tg_server_fields), NULL};

static const char *const tg_client_abort_names[] = {"cancel", "finish"};

/* upstream.client: index 0 is TG_UPSTREAM_AUTO, 1 TG_UPSTREAM_CURL (worker/upstream.h) */
static const char *const tg_client_names[] = {"auto", "curl"};
static const tg_field_t tg_upstream_fields[] = {
    TG_NUM("connect_timeout", tg_config_t, upstream.connect_timeout_ms, tg_num_duration, 1, 10 * TG_MIN,
           5 * TG_SEC, NULL, false),
    TG_NUM("first_byte_timeout", tg_config_t, upstream.first_byte_timeout_ms, tg_num_duration, 1, TG_HOUR,
           120 * TG_SEC, NULL, false),
    TG_NUM("idle_timeout", tg_config_t, upstream.idle_timeout_ms, tg_num_duration, 1, 24 * TG_HOUR, 300 * TG_SEC,
           NULL, false),
    TG_NUM("max_connections", tg_config_t, upstream.max_connections, tg_num_integer, 1, 65536, 256, NULL, false),
    {.name = "client_abort", .kind = TG_F_ENUM, .offset = offsetof(tg_config_t, upstream.client_abort),
     .width = TG_MEMBER_SIZE(tg_config_t, upstream.client_abort), .names = tg_client_abort_names, .n_names = 2,
     .def_num = TG_CLIENT_ABORT_CANCEL},
    {.name = "client", .kind = TG_F_ENUM, .offset = offsetof(tg_config_t, upstream.client),
     .width = TG_MEMBER_SIZE(tg_config_t, upstream.client), .names = tg_client_names, .n_names = 2, .def_num = 0},
    TG_STR("ca_file", tg_config_t, upstream.ca_file, NULL, tg_check_ca_file, false),
};
static const tg_table_t tg_upstream_table = {tg_upstream_fields, TG_NELEM(tg_upstream_fields), NULL};

static const tg_field_t tg_log_fields[] = {
    TG_STR("access", tg_config_t, log.access, "-", NULL, false),
    TG_STR("error", tg_config_t, log.error, "-", tg_check_error_log, false),
    TG_STR("level", tg_config_t, log.level, "info", tg_check_level, false),
};
static const tg_table_t tg_log_table = {tg_log_fields, TG_NELEM(tg_log_fields), NULL};

static const tg_field_t tg_bootstrap_fields[] = {
    TG_STR("root_key_file", tg_config_t, bootstrap.root_key_file, NULL, NULL, false),
};
static const tg_table_t tg_bootstrap_table = {tg_bootstrap_fields, TG_NELEM(tg_bootstrap_fields), NULL};

static const char *const tg_bool_names[] = {"false", "true"};
static const tg_field_t tg_store_fields[] = {
    TG_NUM("usage_retention_days", tg_config_t, store.usage_retention_days, tg_num_integer, 0, 36500, 90, NULL, false),
    {.name = "allow_private_providers", .kind = TG_F_ENUM, .offset = offsetof(tg_config_t, store.allow_private_providers),
     .width = TG_MEMBER_SIZE(tg_config_t, store.allow_private_providers), .names = tg_bool_names, .n_names = 2, .def_num = 0},
};
static const tg_table_t tg_store_table = {tg_store_fields, TG_NELEM(tg_store_fields), NULL};

/* Fills what depends on other fields: default listen address, root key path, key count limit. */
static int tg_root_finish(tg_walk_t *w, const yaml_node_t *map, const char *prefix, void *base)
{
    tg_config_t *cfg = base;
    size_t dir_len = strlen(cfg->data_dir);

    if (cfg->n_keys > cfg->arena.max_upstream_keys)
        return tg_fail(w, tg_map_value(w, map, "keys"), "keys",
                       "has %zu entries, more than arena.max_upstream_keys (%u)", cfg->n_keys,
                       cfg->arena.max_upstream_keys);
    if (cfg->bootstrap.root_key_file == NULL &&
        asprintf(&cfg->bootstrap.root_key_file, "%s%sroot.key", cfg->data_dir,
                 cfg->data_dir[dir_len - 1] == '/' ? "" : "/") < 0) {
        cfg->bootstrap.root_key_file = NULL;
        return tg_fail(w, map, "bootstrap.root_key_file", "out of memory");
    }
    if (cfg->listens == NULL) {
        cfg->listens = calloc(1, sizeof *cfg->listens);
        if (cfg->listens == NULL || (cfg->listens[0].host = strdup("127.0.0.1")) == NULL)
            return tg_fail(w, map, "listen", "out of memory");
        cfg->listens[0].port = 8080;
        cfg->n_listens = 1;
    }
    return 0;
}

static const tg_field_t tg_root_fields[] = {
    {.name = "listen", .kind = TG_F_LIST, .offset = offsetof(tg_config_t, listens), .list = &tg_listen_list,
     .min = 1, .max = 64},
    TG_NUM("workers", tg_config_t, workers, tg_num_integer, 0, 1024, 0, NULL, false),
    TG_STR("data_dir", tg_config_t, data_dir, "./data", NULL, false),
    TG_STR("timezone", tg_config_t, timezone, "UTC", tg_check_timezone, false),
    TG_SECTION("arena", tg_arena_table, false),
    TG_SECTION("server", tg_server_table, false),
    TG_SECTION("upstream", tg_upstream_table, false),
    TG_SECTION("log", tg_log_table, false),
    TG_SECTION("bootstrap", tg_bootstrap_table, false),
    TG_SECTION("store", tg_store_table, false),
    {.name = "keys", .kind = TG_F_LIST, .offset = offsetof(tg_config_t, keys), .list = &tg_keys_list, .min = 0,
     .max = TG_MIB},
};
static const tg_table_t tg_root_table = {tg_root_fields, TG_NELEM(tg_root_fields), tg_root_finish};

/* ---- loading ------------------------------------------------------------------------------- */

static int tg_fail_syntax(tg_walk_t *w, const yaml_parser_t *parser)
{
    yaml_node_t at = {.start_mark = parser->problem_mark};

    if (parser->problem == NULL)
        return tg_fail(w, &at, "syntax error", "out of memory");
    if (parser->context != NULL)
        return tg_fail(w, &at, "syntax error", "%s (%s)", parser->problem, parser->context);
    return tg_fail(w, &at, "syntax error", "%s", parser->problem);
}

/* Parses FP into DOC, refusing YAML errors and files with more than one document. */
static int tg_load_document(tg_walk_t *w, FILE *fp, yaml_document_t *doc)
{
    yaml_parser_t parser;
    yaml_document_t extra;
    int rc = -1;

    if (!yaml_parser_initialize(&parser))
        return tg_fail(w, NULL, "syntax error", "out of memory");
    yaml_parser_set_input_file(&parser, fp);
    if (!yaml_parser_load(&parser, doc)) {
        tg_fail_syntax(w, &parser);
        goto out;
    }
    if (!yaml_parser_load(&parser, &extra)) {
        tg_fail_syntax(w, &parser);
        yaml_document_delete(doc);
        goto out;
    }
    if (yaml_document_get_root_node(&extra) != NULL) {
        tg_fail(w, yaml_document_get_root_node(&extra), "top level", "only one YAML document is allowed");
        yaml_document_delete(doc);
    } else {
        rc = 0;
    }
    yaml_document_delete(&extra);
out:
    yaml_parser_delete(&parser);
    return rc;
}

/* Opens PATH for reading, refusing directories. */
static FILE *tg_open_config(tg_walk_t *w, const char *path)
{
    struct stat st;
    FILE *fp = fopen(path, "rb");
    int e = errno;

    if (fp != NULL && fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(fp);
        fp = NULL;
        e = EISDIR;
    }
    if (fp == NULL && asprintf(&w->err, "%s: cannot open: %s", path, strerror(e)) < 0)
        w->err = NULL;
    return fp;
}

/* Opens, parses and walks PATH into a local config; publishes it to *OUT only on success. */
int tg_config_load(const char *path, tg_config_t *out, char **err)
{
    tg_walk_t w = {.file = path};
    yaml_document_t doc;
    tg_config_t cfg = {0};
    FILE *fp = NULL;
    bool have_doc = false;
    int rc = -1;

    *err = NULL;
    memset(out, 0, sizeof *out);
    fp = tg_open_config(&w, path);
    if (fp == NULL)
        goto out;
    if (tg_load_document(&w, fp, &doc) != 0)
        goto out;
    have_doc = true;
    w.doc = &doc;
    if ((cfg.path = strdup(path)) == NULL || tg_table_defaults(&tg_root_table, &cfg) != 0) {
        tg_fail(&w, NULL, "top level", "out of memory");
        goto out;
    }
    if (tg_walk_map(&w, yaml_document_get_root_node(&doc), "", &tg_root_table, &cfg) != 0)
        goto out;
    *out = cfg;
    rc = 0;
out:
    if (rc != 0) {
        tg_config_dispose(&cfg);
        *err = w.err ? w.err : strdup("configuration error (out of memory)");
    }
    if (have_doc)
        yaml_document_delete(&doc);
    if (fp != NULL)
        fclose(fp);
    return rc;
}

/* Frees everything the field tables own, plus the path; leaves *CFG zeroed. */
void tg_config_dispose(tg_config_t *cfg)
{
    if (cfg == NULL)
        return;
    tg_table_free(&tg_root_table, cfg);
    free(cfg->path);
    memset(cfg, 0, sizeof *cfg);
}
