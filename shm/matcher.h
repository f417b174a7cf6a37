/* Compiled lists for the policy blobs (policy.h): wildcard rule tables (AllowModels, Resources,
 * ModelMapper, LevelMapper, ModelLimits, prices) and CIDR sets (AllowIPs), laid out as
 * position-independent bytes so a blob can sit in the arena and be copied as a whole.
 *
 * Patterns. `*` matches any run of characters (possibly empty); there is no other special
 * character and matching is case-sensitive. A rule table is sorted at compile time so that the
 * first rule that matches is the one that wins: exact names first, then patterns with more
 * literal characters (more specific), then the order in which they were written. So in
 * `gpt-4*=a, gpt-4o*=b`, "gpt-4o-mini" maps to b and "gpt-4-turbo" to a, whatever the order.
 * Resources are prefixes: an item `/v1/chat` allows `/v1/chat/completions`.
 *
 * Lists (api-compat 1.5, 7.13) are items separated by commas and/or whitespace. An empty value
 * or one holding `*` is unrestricted; `-*` forbids everything (for AllowIPs: loopback only).
 * Items starting with `-` are edit commands of the management API and are ignored here.
 *
 * Writers: the persister compiles (tg_mbuf_*). Readers: any process, on a private copy of a
 * validated blob (policy.h), so the match functions trust the layout they are given. */
#ifndef TG_MATCHER_H
#define TG_MATCHER_H

#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer for compiling. */
typedef struct tg_mbuf {
    uint8_t *p;
    size_t len, cap;
    int oom;
} tg_mbuf_t;

/** Appends LEN bytes (aligned to ALIGN, 1/4/8); returns their offset, or (size_t)-1 when out of memory. */
size_t tg_mbuf_add(tg_mbuf_t *b, const void *data, size_t len, size_t align);
void tg_mbuf_dispose(tg_mbuf_t *b);

enum { TG_RULE_EXACT = 0, TG_RULE_PREFIX, TG_RULE_SUFFIX, TG_RULE_GLOB, TG_RULE_ANY };

/* One rule of a table; offsets are from the start of the blob. */
typedef struct tg_rule {
    uint32_t pat_off;
    uint16_t pat_len;
    uint8_t kind;
    uint8_t spec; /* literal characters, capped at 255 */
    uint32_t val_off;
    uint32_t val_len; /* string value length; 0 for an integer or struct value */
} tg_rule_t;

typedef struct tg_rule_table {
    uint32_t n;
    uint32_t _pad;
    tg_rule_t rules[];
} tg_rule_table_t;

/* Compile-side rule list: patterns and values gathered before sorting. */
typedef struct tg_rule_src {
    const char *pat;
    size_t pat_len;
    const void *val; /* copied into the blob */
    size_t val_len;
    int is_str; /* value is a string (val_len recorded) rather than a struct (aligned 8) */
} tg_rule_src_t;

/** Writes a sorted rule table for SRC[0..N) into B; returns its offset or (size_t)-1. */
size_t tg_rules_compile(tg_mbuf_t *b, tg_rule_src_t *src, size_t n);
/** Index of the first rule of the table at OFF in BLOB matching S, or -1. For prefix tables
 * compile each item with a trailing `*`. */
int tg_rules_match(const uint8_t *blob, uint32_t off, const char *s, size_t n);
/** The rule at index I of the table at OFF. */
const tg_rule_t *tg_rules_at(const uint8_t *blob, uint32_t off, int i);

/** 1 when pattern P (with `*`) matches all of S. */
int tg_glob(const char *p, size_t pn, const char *s, size_t sn);

/* CIDR sets. */
typedef struct tg_cidr4 {
    uint32_t net, mask; /* host byte order */
} tg_cidr4_t;
typedef struct tg_cidr6 {
    uint8_t net[16];
    uint8_t prefix;
    uint8_t _pad[3];
} tg_cidr6_t;
typedef struct tg_cidr_set {
    uint32_t n4, n6;
    /* n4 tg_cidr4_t, then n6 tg_cidr6_t */
} tg_cidr_set_t;

/** Parses one address or CIDR block (a.b.c.d, a.b.c.d/n, IPv6, IPv6/n). 4 or 6, or 0 when bad. */
int tg_cidr_parse(const char *s, size_t n, tg_cidr4_t *v4, tg_cidr6_t *v6);
/** Writes a CIDR set into B; returns its offset or (size_t)-1. */
size_t tg_cidr_compile(tg_mbuf_t *b, const tg_cidr4_t *v4, uint32_t n4, const tg_cidr6_t *v6, uint32_t n6);
/** 1 when ADDR (FAMILY AF_INET: 4 bytes network order; AF_INET6: 16 bytes; IPv4-mapped IPv6 is
 * matched as IPv4) is inside the set at OFF. */
int tg_cidr_match(const uint8_t *blob, uint32_t off, int family, const uint8_t *addr);

/* List splitting. */
typedef int (*tg_item_fn)(void *ud, const char *item, size_t len);
/** Calls FN for each item of LIST (split on commas and whitespace); stops at a non-zero return
 * and returns it. */
int tg_list_each(const char *list, tg_item_fn fn, void *ud);
/** TG_LIST_* mode of an ACL value (NULL and "" are unrestricted). */
enum { TG_LIST_ANY = 0, TG_LIST_ITEMS = 1, TG_LIST_NONE = 2 };
int tg_list_mode(const char *list);
/** AllowLevels → a mask of the levels it refuses: 0 = unrestricted; otherwise bit L-1 set refuses
 * level L (1..64) and any level outside 1..64 is refused ("-*" refuses all; a list of every level
 * is unrestricted). -1 on a bad item (an item is a decimal level 1..64, as Level is). */
int tg_levels_parse(const char *list, uint64_t *mask);
/** 1 when MASK (from tg_levels_parse) allows LEVEL. */
static inline int tg_levels_allow(uint64_t mask, int32_t level)
{
    if (level < 1 || level > 64)
        return mask == 0;
    return !((mask >> (level - 1)) & 1u);
}

#endif
