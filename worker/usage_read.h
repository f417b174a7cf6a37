/* Reading token usage from an upstream answer or stream event, whatever the surface: OpenAI chat
 * (`usage.prompt_tokens`, `prompt_tokens_details.cached_tokens`), Responses (`response.usage`,
 * `input_tokens_details`), Anthropic (`message.usage` in message_start, `usage` in message_delta,
 * `cache_read_input_tokens`). Counts are normalised to OpenAI's meaning: prompt tokens include
 * cached ones, cached tokens are the part read from a cache. */
#ifndef TG_USAGE_READ_H
#define TG_USAGE_READ_H

#include <stddef.h>

#include "shm/usage.h"

/** Reads the usage found in JSON object P (N bytes) into U (fields absent there are left alone).
 * Returns 1 when a usage object was found. */
int tg_usage_read(tg_usage_t *u, const char *p, size_t n);
/** Characters of generated text in one stream event's JSON (OpenAI `delta.content`, Anthropic
 * `delta.text`, Responses `delta`), counted roughly (escapes count as one): used to bill a stream
 * the client abandoned by estimate (api-compat 7.15). */
size_t tg_usage_event_text(const char *p, size_t n);
/** Completion tokens estimated from CHARS characters of generated text (one token per 4). */
static inline uint64_t tg_usage_text_tokens(uint64_t chars)
{
    return (chars + 3) / 4;
}

#endif
