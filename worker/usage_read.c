/* Usage extraction across surfaces (see usage_read.h). */
#include "worker/usage_read.h"

#include <string.h>

#include "common/json_scan.h"

static void read_counts(tg_usage_t *u, const char *p, size_t n)
{
    tg_json_get_u64(p, n, "prompt_tokens", &u->prompt_tokens);
    tg_json_get_u64(p, n, "completion_tokens", &u->completion_tokens);
    tg_json_get_u64(p, n, "input_tokens", &u->prompt_tokens);
    tg_json_get_u64(p, n, "output_tokens", &u->completion_tokens);
    tg_json_span_t d;
    if ((tg_json_get(p, n, "prompt_tokens_details", &d) == 1 || tg_json_get(p, n, "input_tokens_details", &d) == 1) &&
        d.type == TG_JSON_OBJECT)
        tg_json_get_u64(d.p, d.len, "cached_tokens", &u->cached_tokens);
    uint64_t cache_read = 0, cache_write = 0;
    int anthropic_cache = tg_json_get_u64(p, n, "cache_read_input_tokens", &cache_read);
    anthropic_cache |= tg_json_get_u64(p, n, "cache_creation_input_tokens", &cache_write);
    if (anthropic_cache && tg_json_get_u64(p, n, "input_tokens", &u->prompt_tokens)) {
        /* Anthropic counts input without the cache; OpenAI's prompt tokens include it */
        u->prompt_tokens += cache_read + cache_write;
        u->cached_tokens = cache_read;
    }
}

int tg_usage_read(tg_usage_t *u, const char *p, size_t n)
{
    static const char *const holders[] = {"message", "response"};
    tg_json_span_t usage, holder;
    if (tg_json_get(p, n, "usage", &usage) == 1 && usage.type == TG_JSON_OBJECT) {
        read_counts(u, usage.p, usage.len);
        return 1;
    }
    for (size_t i = 0; i < sizeof(holders) / sizeof(holders[0]); i++)
        if (tg_json_get(p, n, holders[i], &holder) == 1 && holder.type == TG_JSON_OBJECT &&
            tg_json_get(holder.p, holder.len, "usage", &usage) == 1 && usage.type == TG_JSON_OBJECT) {
            read_counts(u, usage.p, usage.len);
            return 1;
        }
    return 0;
}

/* Length of the JSON string value that starts right after NEEDLE in [p, p+n), 0 if none. */
static size_t string_after(const char *p, size_t n, const char *needle)
{
    size_t nl = strlen(needle);
    const char *v = memmem(p, n, needle, nl);
    if (!v)
        return 0;
    size_t chars = 0;
    for (const char *q = v + nl, *end = p + n; q < end && *q != '"'; q++, chars++)
        if (*q == '\\' && q + 1 < end)
            q++;
    return chars;
}

size_t tg_usage_event_text(const char *p, size_t n)
{
    size_t c = string_after(p, n, "\"content\":\"");
    if (!c)
        c = string_after(p, n, "\"text\":\"");
    if (!c && memmem(p, n, "output_text.delta", 17))
        c = string_after(p, n, "\"delta\":\"");
    return c;
}
