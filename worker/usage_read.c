/* Usage extraction across surfaces (see usage_read.h). */
#include "worker/usage_read.h"

#include <string.h>

#include "common/json_scan.h"

/* The usage object's members, read in one pass (OpenAI's names, then Anthropic's and Responses'). */
enum { K_PROMPT, K_COMPLETION, K_INPUT, K_OUTPUT, K_PROMPT_DETAILS, K_INPUT_DETAILS, K_CACHE_READ, K_CACHE_WRITE, K_COUNT };
static const char *const count_keys[K_COUNT] = {
    "prompt_tokens", "completion_tokens", "input_tokens", "output_tokens", "prompt_tokens_details",
    "input_tokens_details", "cache_read_input_tokens", "cache_creation_input_tokens"};

static void read_counts(tg_usage_t *u, const char *p, size_t n)
{
    tg_json_span_t v[K_COUNT];
    if (tg_json_get_many(p, n, count_keys, K_COUNT, v) <= 0)
        return;
    tg_json_span_u64(&v[K_PROMPT], &u->prompt_tokens);
    tg_json_span_u64(&v[K_COMPLETION], &u->completion_tokens);
    tg_json_span_u64(&v[K_INPUT], &u->prompt_tokens);
    tg_json_span_u64(&v[K_OUTPUT], &u->completion_tokens);
    const tg_json_span_t *d = v[K_PROMPT_DETAILS].type != TG_JSON_NONE ? &v[K_PROMPT_DETAILS] : &v[K_INPUT_DETAILS];
    if (d->type == TG_JSON_OBJECT)
        tg_json_get_u64(d->p, d->len, "cached_tokens", &u->cached_tokens);
    uint64_t cache_read = 0, cache_write = 0;
    int anthropic_cache = tg_json_span_u64(&v[K_CACHE_READ], &cache_read);
    anthropic_cache |= tg_json_span_u64(&v[K_CACHE_WRITE], &cache_write);
    if (anthropic_cache && tg_json_span_u64(&v[K_INPUT], &u->prompt_tokens)) {
        /* Anthropic counts input without the cache; OpenAI's prompt tokens include it */
        u->prompt_tokens += cache_read + cache_write;
        u->cached_tokens = cache_read;
    }
}

int tg_usage_read(tg_usage_t *u, const char *p, size_t n)
{
    /* top-level usage (OpenAI, Gemini via translation), else inside message (Anthropic's
     * message_start) or response (the Responses API's final event); one pass finds all three */
    static const char *const keys[] = {"usage", "message", "response"};
    tg_json_span_t v[3], usage;
    if (tg_json_get_many(p, n, keys, 3, v) <= 0)
        return 0;
    for (size_t i = 0; i < 3; i++) {
        if (i == 0)
            usage = v[0];
        else if (v[i].type != TG_JSON_OBJECT || tg_json_get(v[i].p, v[i].len, "usage", &usage) != 1)
            continue;
        if (usage.type == TG_JSON_OBJECT) {
            read_counts(u, usage.p, usage.len);
            return 1;
        }
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
