/* OpenAI chat ⇄ Anthropic messages, both directions: requests, answers, and streams (the
 * Anthropic event encoder for Anthropic clients, the decoder for Anthropic upstreams). The
 * mapping tables are in docs/translation.md. */
#define TG_PROTO_INTERNAL
#include "worker/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ANTHROPIC_DEFAULT_MAX_TOKENS 4096

/* Anthropic ids (tool_use ids) must match ^[a-zA-Z0-9_-]+$: other characters become '_'. The same
 * rule applied to a tool call id and to the tool message answering it keeps the pair matched. */
static json_t *anth_id(const char *id)
{
    char buf[256];
    if (!id || !*id) {
        tg_proto_random_id(buf, sizeof(buf), "toolu_");
        return json_string(buf);
    }
    size_t n = 0;
    for (; *id && n + 1 < sizeof(buf); id++) {
        char c = *id;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        buf[n++] = ok ? c : '_';
    }
    buf[n] = '\0';
    return json_string(buf);
}

/* An OpenAI image URL (data: or http) as an Anthropic image block. */
static json_t *anth_image(const char *url)
{
    char mime[128];
    const char *data;
    if (tg_proto_data_url(url, mime, sizeof(mime), &data))
        return json_pack("{s:s,s:{s:s,s:s,s:s}}", "type", "image", "source", "type", "base64", "media_type", mime, "data", data);
    return json_pack("{s:s,s:{s:s,s:s}}", "type", "image", "source", "type", "url", "url", url);
}

static const char *image_url_of(const json_t *part)
{
    json_t *iu = json_object_get(part, "image_url");
    if (json_is_string(iu))
        return json_string_value(iu);
    return tg_proto_str(iu, "url");
}

/* One OpenAI content part as an Anthropic block: 1 and *out, 0 to skip (empty text), -1 + *err. */
static int part_to_block(const json_t *part, size_t i, size_t j, json_t **out, char **err)
{
    *out = NULL;
    const char *type = tg_proto_str(part, "type");
    if (!json_is_object(part) || !type) {
        *err = tg_proto_errf("messages[%zu].content[%zu]: must be an object with a type", i, j);
        return -1;
    }
    if (!strcmp(type, "text") || !strcmp(type, "refusal")) {
        json_t *t = json_object_get(part, !strcmp(type, "text") ? "text" : "refusal");
        if (!json_is_string(t)) {
            *err = tg_proto_errf("messages[%zu].content[%zu].%s: must be a string", i, j, type);
            return -1;
        }
        if (!json_string_length(t))
            return 0;
        *out = json_pack("{s:s,s:O}", "type", "text", "text", t);
        return 1;
    }
    if (!strcmp(type, "image_url")) {
        const char *url = image_url_of(part);
        if (!url || !*url) {
            *err = tg_proto_errf("messages[%zu].content[%zu].image_url.url: required", i, j);
            return -1;
        }
        *out = anth_image(url);
        return 1;
    }
    if (!strcmp(type, "file")) {
        json_t *f = json_object_get(part, "file");
        const char *fd = tg_proto_str(f, "file_data");
        char mime[128];
        const char *data;
        if (fd && tg_proto_data_url(fd, mime, sizeof(mime), &data) && !strcmp(mime, "application/pdf")) {
            *out = json_pack("{s:s,s:{s:s,s:s,s:s}}", "type", "document", "source", "type", "base64", "media_type", mime, "data",
                             data);
            const char *fn = tg_proto_str(f, "filename");
            if (*out && fn)
                json_object_set_new(*out, "title", json_string(fn));
            return 1;
        }
        *err = tg_proto_errf("messages[%zu].content[%zu].file: only PDF file_data (a data: URL) can be sent to this "
                             "upstream",
                             i, j);
        return -1;
    }
    *err = tg_proto_errf("messages[%zu].content[%zu]: unsupported part type '%s'", i, j, type);
    return -1;
}

/* Content (string or parts) as blocks appended to BLOCKS. */
static int content_to_blocks(const json_t *content, size_t i, json_t *blocks, char **err)
{
    if (!content || json_is_null(content))
        return 0;
    if (json_is_string(content)) {
        if (json_string_length(content))
            json_array_append_new(blocks, json_pack("{s:s,s:O}", "type", "text", "text", content));
        return 0;
    }
    if (!json_is_array(content)) {
        *err = tg_proto_errf("messages[%zu].content: must be a string or an array", i);
        return -1;
    }
    size_t j;
    json_t *part;
    json_array_foreach(content, j, part) {
        json_t *b;
        int r = part_to_block(part, i, j, &b, err);
        if (r < 0)
            return -1;
        if (r > 0)
            json_array_append_new(blocks, b);
    }
    return 0;
}

/* Appends a message, merging it into the previous one when the role repeats; steals BLOCKS. */
static void append_msg(json_t *msgs, const char *role, json_t *blocks)
{
    if (!json_array_size(blocks)) {
        json_decref(blocks);
        return;
    }
    json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
    if (last && !strcmp(tg_proto_str(last, "role"), role)) {
        json_array_extend(json_object_get(last, "content"), blocks);
        json_decref(blocks);
        return;
    }
    json_array_append_new(msgs, json_pack("{s:s,s:o}", "role", role, "content", blocks));
}

static int tool_calls_to_blocks(const json_t *tcs, size_t i, json_t *blocks, char **err)
{
    size_t k;
    json_t *tc;
    if (tcs && !json_is_array(tcs) && !json_is_null(tcs)) {
        *err = tg_proto_errf("messages[%zu].tool_calls: must be an array", i);
        return -1;
    }
    json_array_foreach(tcs, k, tc) {
        json_t *fn = json_object_get(tc, "function");
        const char *name = tg_proto_str(fn, "name");
        if (!name) {
            *err = tg_proto_errf("messages[%zu].tool_calls[%zu].function.name: required", i, k);
            return -1;
        }
        const char *args = tg_proto_str(fn, "arguments");
        json_t *input;
        if (!args || !*args) {
            input = json_object();
        } else {
            json_error_t je;
            input = json_loads(args, JSON_ALLOW_NUL, &je);
            if (!json_is_object(input)) {
                json_decref(input);
                *err = tg_proto_errf("messages[%zu].tool_calls[%zu].function.arguments: must be a JSON object", i, k);
                return -1;
            }
        }
        json_array_append_new(blocks, json_pack("{s:s,s:o,s:s,s:o}", "type", "tool_use", "id", anth_id(tg_proto_str(tc, "id")),
                                                "name", name, "input", input));
    }
    return 0;
}

/* The content of a tool message as tool_result content: a string, or text/image blocks. */
static json_t *tool_result_content(const json_t *content, size_t i, char **err)
{
    if (json_is_string(content))
        return json_incref((json_t *)content);
    if (!content || json_is_null(content))
        return json_string("");
    json_t *blocks = json_array();
    if (content_to_blocks(content, i, blocks, err) < 0) {
        json_decref(blocks);
        return NULL;
    }
    return blocks;
}

static json_t *convert_tools(const json_t *tools)
{
    json_t *out = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        const char *type = tg_proto_str(t, "type");
        json_t *fn = json_object_get(t, "function");
        if ((type && strcmp(type, "function")) || !json_is_object(fn) || !tg_proto_str(fn, "name"))
            continue; /* custom and built-in tools have no Anthropic counterpart */
        json_t *params = json_object_get(fn, "parameters");
        json_t *schema = json_is_object(params) ? json_deep_copy(params) : json_pack("{s:s,s:{}}", "type", "object", "properties");
        if (!json_object_get(schema, "type"))
            json_object_set_new(schema, "type", json_string("object"));
        json_t *o = json_pack("{s:O}", "name", json_object_get(fn, "name"));
        tg_proto_copy(o, "description", fn, "description");
        json_object_set_new(o, "input_schema", schema);
        json_array_append_new(out, o);
    }
    return out;
}

static json_t *convert_tool_choice(const json_t *tc, const json_t *parallel)
{
    json_t *o = NULL;
    if (json_is_string(tc)) {
        const char *v = json_string_value(tc);
        o = json_pack("{s:s}", "type", !strcmp(v, "required") ? "any" : !strcmp(v, "none") ? "none" : "auto");
    } else if (json_is_object(tc)) {
        const char *name = tg_proto_str(json_object_get(tc, "function"), "name");
        o = name ? json_pack("{s:s,s:s}", "type", "tool", "name", name) : json_pack("{s:s}", "type", "auto");
    }
    if (json_is_false(parallel)) {
        if (!o)
            o = json_pack("{s:s}", "type", "auto");
        if (strcmp(tg_proto_str(o, "type"), "none"))
            json_object_set_new(o, "disable_parallel_tool_use", json_true());
    }
    return o;
}

json_t *tg_proto_chat_to_messages_req(const json_t *chat, const char *model, int stream, char **err)
{
    json_t *out = json_pack("{s:s}", "model", model);
    json_t *system = json_array(), *msgs = json_array();
    json_t *list = json_object_get(chat, "messages");
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m) {
        const char *role = tg_proto_str(m, "role");
        json_t *content = json_object_get(m, "content");
        if (!strcmp(role, "system") || !strcmp(role, "developer")) {
            if (json_is_array(content)) {
                size_t j;
                json_t *p;
                json_array_foreach(content, j, p) {
                    const char *pt = tg_proto_str(p, "type");
                    if (!pt || strcmp(pt, "text") || !json_is_string(json_object_get(p, "text"))) {
                        *err = tg_proto_errf("messages[%zu].content[%zu]: a %s message takes text parts only", i, j, role);
                        goto fail;
                    }
                }
            } else if (content && !json_is_string(content) && !json_is_null(content)) {
                *err = tg_proto_errf("messages[%zu].content: must be a string or an array", i);
                goto fail;
            }
            if (content_to_blocks(content, i, system, err) < 0)
                goto fail;
        } else if (!strcmp(role, "user")) {
            json_t *blocks = json_array();
            if (content_to_blocks(content, i, blocks, err) < 0) {
                json_decref(blocks);
                goto fail;
            }
            append_msg(msgs, "user", blocks);
        } else if (!strcmp(role, "assistant")) {
            json_t *blocks = json_array();
            if (content_to_blocks(content, i, blocks, err) < 0 ||
                tool_calls_to_blocks(json_object_get(m, "tool_calls"), i, blocks, err) < 0) {
                json_decref(blocks);
                goto fail;
            }
            append_msg(msgs, "assistant", blocks);
        } else if (!strcmp(role, "tool")) {
            const char *id = tg_proto_str(m, "tool_call_id");
            if (!id) {
                *err = tg_proto_errf("messages[%zu].tool_call_id: required", i);
                goto fail;
            }
            json_t *c = tool_result_content(content, i, err);
            if (!c)
                goto fail;
            append_msg(msgs, "user", json_pack("[{s:s,s:o,s:o}]", "type", "tool_result", "tool_use_id", anth_id(id), "content", c));
        } else {
            *err = tg_proto_errf("messages[%zu].role: '%s' cannot be translated", i, role);
            goto fail;
        }
    }
    if (json_array_size(system) == 1)
        json_object_set(out, "system", json_object_get(json_array_get(system, 0), "text"));
    else if (json_array_size(system) > 1)
        json_object_set(out, "system", system);
    json_object_set(out, "messages", msgs);

    json_t *mt = json_object_get(chat, "max_completion_tokens");
    if (!json_is_integer(mt))
        mt = json_object_get(chat, "max_tokens");
    json_object_set_new(out, "max_tokens",
                        json_is_integer(mt) && json_integer_value(mt) > 0 ? json_integer(json_integer_value(mt))
                                                                          : json_integer(ANTHROPIC_DEFAULT_MAX_TOKENS));
    json_t *temp = json_object_get(chat, "temperature");
    if (json_is_number(temp)) {
        double t = json_number_value(temp);
        json_object_set_new(out, "temperature", t > 1 ? json_real(1.0) : t < 0 ? json_real(0.0) : json_copy(temp));
    } else {
        tg_proto_copy(out, "top_p", chat, "top_p"); /* newer Claude models refuse both at once */
    }
    tg_proto_copy(out, "top_k", json_object_get(chat, "_tg"), "top_k");
    json_t *stop = json_object_get(chat, "stop");
    if (json_is_string(stop))
        json_object_set_new(out, "stop_sequences", json_pack("[O]", stop));
    else if (json_is_array(stop) && json_array_size(stop))
        json_object_set(out, "stop_sequences", stop);
    const char *user = tg_proto_str(chat, "user");
    if (user)
        json_object_set_new(out, "metadata", json_pack("{s:s}", "user_id", user));
    json_t *tools = convert_tools(json_object_get(chat, "tools"));
    if (json_array_size(tools)) {
        json_object_set(out, "tools", tools);
        tg_proto_set(out, "tool_choice",
                     convert_tool_choice(json_object_get(chat, "tool_choice"), json_object_get(chat, "parallel_tool_calls")));
    }
    json_decref(tools);
    if (stream)
        json_object_set_new(out, "stream", json_true());
    json_decref(system);
    json_decref(msgs);
    return out;
fail:
    json_decref(system);
    json_decref(msgs);
    json_decref(out);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Anthropic request → chat */

static json_t *image_part(const json_t *src, const char *where, char **err)
{
    const char *st = tg_proto_str(src, "type");
    if (st && !strcmp(st, "base64")) {
        const char *mt = tg_proto_str(src, "media_type"), *data = tg_proto_str(src, "data");
        if (!mt || !data) {
            *err = tg_proto_errf("%s.source: media_type and data required", where);
            return NULL;
        }
        char *url = tg_proto_errf("data:%s;base64,%s", mt, data);
        json_t *p = url ? json_pack("{s:s,s:{s:s}}", "type", "image_url", "image_url", "url", url) : NULL;
        free(url);
        return p;
    }
    if (st && !strcmp(st, "url") && tg_proto_str(src, "url"))
        return json_pack("{s:s,s:{s:s}}", "type", "image_url", "image_url", "url", tg_proto_str(src, "url"));
    *err = tg_proto_errf("%s.source: unsupported source type '%s'", where, st ? st : "(none)");
    return NULL;
}

static json_t *document_part(const json_t *b, const char *where, char **err)
{
    json_t *src = json_object_get(b, "source");
    const char *st = tg_proto_str(src, "type");
    if (st && !strcmp(st, "base64") && tg_proto_str(src, "data")) {
        const char *mt = tg_proto_str(src, "media_type");
        char *url = tg_proto_errf("data:%s;base64,%s", mt ? mt : "application/pdf", tg_proto_str(src, "data"));
        const char *title = tg_proto_str(b, "title");
        json_t *p = url ? json_pack("{s:s,s:{s:s,s:s}}", "type", "file", "file", "filename", title ? title : "document.pdf",
                                    "file_data", url)
                        : NULL;
        free(url);
        return p;
    }
    if (st && !strcmp(st, "text") && tg_proto_str(src, "data"))
        return json_pack("{s:s,s:O}", "type", "text", "text", json_object_get(src, "data"));
    if (st && !strcmp(st, "content")) {
        json_t *t = tg_proto_content_text(json_object_get(src, "content"), "\n");
        return t ? json_pack("{s:s,s:o}", "type", "text", "text", t) : NULL;
    }
    *err = tg_proto_errf("%s.source: document source '%s' cannot be sent to this upstream", where, st ? st : "(none)");
    return NULL;
}

/* A tool_result's content as a tool message; images it holds go to IMAGES (a user message). */
static json_t *tool_message(const json_t *b, const char *where, json_t *images, char **err)
{
    const char *id = tg_proto_str(b, "tool_use_id");
    if (!id) {
        *err = tg_proto_errf("%s.tool_use_id: required", where);
        return NULL;
    }
    json_t *c = json_object_get(b, "content"), *text;
    if (json_is_array(c)) {
        size_t k;
        json_t *cb;
        json_array_foreach(c, k, cb) {
            const char *t = tg_proto_str(cb, "type");
            if (t && !strcmp(t, "image")) {
                char w[128];
                snprintf(w, sizeof(w), "%s.content[%zu]", where, k);
                json_t *p = image_part(json_object_get(cb, "source"), w, err);
                if (!p)
                    return NULL;
                json_array_append_new(images, p);
            }
        }
        text = tg_proto_content_text(c, "\n");
    } else {
        text = json_is_string(c) ? json_incref(c) : json_string("");
    }
    return json_pack("{s:s,s:s,s:o}", "role", "tool", "tool_call_id", id, "content", text);
}

static int user_to_chat(const json_t *m, size_t i, json_t *out, char **err)
{
    json_t *content = json_object_get(m, "content");
    if (json_is_string(content)) {
        json_array_append_new(out, json_pack("{s:s,s:O}", "role", "user", "content", content));
        return 0;
    }
    json_t *parts = json_array(), *images = json_array();
    size_t j;
    json_t *b;
    char where[96];
    json_array_foreach(content, j, b) {
        snprintf(where, sizeof(where), "messages[%zu].content[%zu]", i, j);
        const char *t = tg_proto_str(b, "type");
        json_t *p = NULL;
        if (!t) {
            *err = tg_proto_errf("%s.type: required", where);
            goto fail;
        } else if (!strcmp(t, "text")) {
            if (!json_is_string(json_object_get(b, "text"))) {
                *err = tg_proto_errf("%s.text: must be a string", where);
                goto fail;
            }
            p = json_pack("{s:s,s:O}", "type", "text", "text", json_object_get(b, "text"));
        } else if (!strcmp(t, "image")) {
            p = image_part(json_object_get(b, "source"), where, err);
        } else if (!strcmp(t, "document")) {
            p = document_part(b, where, err);
        } else if (!strcmp(t, "tool_result")) {
            json_t *tm = tool_message(b, where, images, err);
            if (!tm)
                goto fail;
            json_array_append_new(out, tm);
            continue;
        } else if (!strcmp(t, "thinking") || !strcmp(t, "redacted_thinking")) {
            continue;
        } else {
            *err = tg_proto_errf("%s: unsupported block type '%s'", where, t);
            goto fail;
        }
        if (!p)
            goto fail;
        json_array_append_new(parts, p);
    }
    json_array_extend(images, parts);
    if (json_array_size(images) == 1 && !strcmp(tg_proto_str(json_array_get(images, 0), "type"), "text"))
        json_array_append_new(
            out, json_pack("{s:s,s:O}", "role", "user", "content", json_object_get(json_array_get(images, 0), "text")));
    else if (json_array_size(images))
        json_array_append_new(out, json_pack("{s:s,s:O}", "role", "user", "content", images));
    json_decref(parts);
    json_decref(images);
    return 0;
fail:
    json_decref(parts);
    json_decref(images);
    return -1;
}

static int assistant_to_chat(const json_t *m, size_t i, json_t *out, char **err)
{
    json_t *content = json_object_get(m, "content");
    if (json_is_string(content)) {
        if (json_string_length(content))
            json_array_append_new(out, json_pack("{s:s,s:O}", "role", "assistant", "content", content));
        return 0;
    }
    json_t *tcs = json_array();
    json_t *texts = json_array();
    size_t j;
    json_t *b;
    json_array_foreach(content, j, b) {
        const char *t = tg_proto_str(b, "type");
        if (!t) {
            *err = tg_proto_errf("messages[%zu].content[%zu].type: required", i, j);
            goto fail;
        }
        if (!strcmp(t, "text")) {
            json_array_append(texts, b);
        } else if (!strcmp(t, "tool_use")) {
            const char *id = tg_proto_str(b, "id"), *name = tg_proto_str(b, "name");
            if (!id || !name) {
                *err = tg_proto_errf("messages[%zu].content[%zu]: tool_use needs id and name", i, j);
                goto fail;
            }
            json_t *in = json_object_get(b, "input");
            char *args = in ? tg_proto_dump(in, NULL) : strdup("{}");
            if (!args)
                goto fail;
            json_array_append_new(
                tcs, json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", id, "type", "function", "function", "name", name, "arguments", args));
            free(args);
        }
        /* thinking, redacted_thinking and server-tool blocks have no chat counterpart */
    }
    json_t *text = tg_proto_content_text(texts, "");
    if (!text)
        goto fail;
    if (!json_string_length(text) && !json_array_size(tcs)) {
        json_decref(text);
    } else {
        json_t *msg = json_pack("{s:s,s:o}", "role", "assistant", "content",
                                json_string_length(text) || !json_array_size(tcs) ? text : (json_decref(text), json_null()));
        if (json_array_size(tcs))
            json_object_set(msg, "tool_calls", tcs);
        json_array_append_new(out, msg);
    }
    json_decref(tcs);
    json_decref(texts);
    return 0;
fail:
    json_decref(tcs);
    json_decref(texts);
    return -1;
}

json_t *tg_proto_messages_to_chat_req(const json_t *req, char **err)
{
    json_t *list = json_object_get(req, "messages");
    if (!json_is_array(list)) {
        *err = tg_proto_errf("messages: %s", list ? "must be an array" : "required");
        return NULL;
    }
    json_t *msgs = json_array();
    json_t *out = json_pack("{s:O}", "messages", msgs);
    json_decref(msgs);
    json_t *system = json_object_get(req, "system");
    if (json_is_string(system) && json_string_length(system)) {
        json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "system", "content", system));
    } else if (json_is_array(system)) {
        size_t j;
        json_t *b;
        json_array_foreach(system, j, b) {
            const char *t = tg_proto_str(b, "type");
            if (!t || strcmp(t, "text") || !json_is_string(json_object_get(b, "text"))) {
                *err = tg_proto_errf("system[%zu]: only text blocks are allowed", j);
                goto fail;
            }
        }
        json_t *t = tg_proto_content_text(system, "\n");
        if (t && json_string_length(t))
            json_array_append_new(msgs, json_pack("{s:s,s:o}", "role", "system", "content", t));
        else
            json_decref(t);
    } else if (system && !json_is_null(system) && !json_is_string(system)) {
        *err = tg_proto_errf("system: must be a string or an array of text blocks");
        goto fail;
    }
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m) {
        const char *role = tg_proto_str(m, "role");
        json_t *content = json_object_get(m, "content");
        if (!json_is_object(m) || !role || (strcmp(role, "user") && strcmp(role, "assistant"))) {
            *err = tg_proto_errf("messages[%zu].role: must be 'user' or 'assistant'", i);
            goto fail;
        }
        if (!json_is_string(content) && !json_is_array(content)) {
            *err = tg_proto_errf("messages[%zu].content: must be a string or an array", i);
            goto fail;
        }
        if ((!strcmp(role, "user") ? user_to_chat(m, i, msgs, err) : assistant_to_chat(m, i, msgs, err)) < 0)
            goto fail;
    }
    json_t *mt = json_object_get(req, "max_tokens");
    if (json_is_integer(mt))
        json_object_set(out, "max_completion_tokens", mt);
    tg_proto_copy(out, "temperature", req, "temperature");
    tg_proto_copy(out, "top_p", req, "top_p");
    if (json_is_integer(json_object_get(req, "top_k")))
        json_object_set_new(out, "_tg", json_pack("{s:O}", "top_k", json_object_get(req, "top_k")));
    tg_proto_copy(out, "stop", req, "stop_sequences");
    const char *uid = tg_proto_str(json_object_get(req, "metadata"), "user_id");
    if (uid)
        json_object_set_new(out, "user", json_string(uid));
    json_t *tools = json_object_get(req, "tools"), *t;
    json_t *ctools = json_array();
    json_array_foreach(tools, i, t) {
        const char *type = tg_proto_str(t, "type"), *name = tg_proto_str(t, "name");
        if ((type && strcmp(type, "custom")) || !name)
            continue; /* Anthropic-defined tools (bash, web_search, ...) run on Anthropic only */
        json_t *fn = json_pack("{s:s}", "name", name);
        tg_proto_copy(fn, "description", t, "description");
        json_t *schema = json_object_get(t, "input_schema");
        if (json_is_object(schema))
            json_object_set(fn, "parameters", schema);
        else
            json_object_set_new(fn, "parameters", json_pack("{s:s,s:{}}", "type", "object", "properties"));
        json_array_append_new(ctools, json_pack("{s:s,s:o}", "type", "function", "function", fn));
    }
    if (json_array_size(ctools)) {
        json_object_set(out, "tools", ctools);
        json_t *tc = json_object_get(req, "tool_choice");
        const char *tt = tg_proto_str(tc, "type");
        if (tt && !strcmp(tt, "any"))
            json_object_set_new(out, "tool_choice", json_string("required"));
        else if (tt && !strcmp(tt, "none"))
            json_object_set_new(out, "tool_choice", json_string("none"));
        else if (tt && !strcmp(tt, "tool") && tg_proto_str(tc, "name"))
            json_object_set_new(out, "tool_choice",
                                json_pack("{s:s,s:{s:s}}", "type", "function", "function", "name", tg_proto_str(tc, "name")));
        else if (tt)
            json_object_set_new(out, "tool_choice", json_string("auto"));
        if (json_is_true(json_object_get(tc, "disable_parallel_tool_use")))
            json_object_set_new(out, "parallel_tool_calls", json_false());
    }
    json_decref(ctools);
    if (json_is_true(json_object_get(req, "stream")))
        json_object_set_new(out, "stream", json_true());
    return out;
fail:
    json_decref(out);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Answers */

static void anth_usage(const json_t *u, tg_proto_stream_t *s, tg_proto_usage_t *out)
{
    uint64_t in = 0, cr = 0, cw = 0;
    if (s) {
        in = s->a_in;
        cr = s->a_cache_read;
        cw = s->a_cache_write;
    }
    json_t *v;
    if (json_is_integer(v = json_object_get(u, "input_tokens")))
        in = (uint64_t)json_integer_value(v);
    if (json_is_integer(v = json_object_get(u, "cache_read_input_tokens")))
        cr = (uint64_t)json_integer_value(v);
    if (json_is_integer(v = json_object_get(u, "cache_creation_input_tokens")))
        cw = (uint64_t)json_integer_value(v);
    if (json_is_integer(v = json_object_get(u, "output_tokens")))
        out->completion_tokens = (uint64_t)json_integer_value(v);
    out->prompt_tokens = in + cr + cw;
    out->cached_tokens = cr;
    out->seen = 1;
    if (s) {
        s->a_in = in;
        s->a_cache_read = cr;
        s->a_cache_write = cw;
    }
}

json_t *tg_proto_messages_to_chat_resp(const json_t *resp, char **err)
{
    json_t *content = json_object_get(resp, "content");
    if (!json_is_array(content)) {
        *err = tg_proto_errf("upstream answer: content: must be an array");
        return NULL;
    }
    json_t *texts = json_array(), *thinking = json_array(), *tcs = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b) {
        const char *t = tg_proto_str(b, "type");
        if (!t)
            continue;
        if (!strcmp(t, "text")) {
            json_array_append(texts, b);
        } else if (!strcmp(t, "thinking")) {
            json_t *th = json_object_get(b, "thinking");
            if (json_is_string(th))
                json_array_append_new(thinking, json_pack("{s:O}", "text", th));
        } else if (!strcmp(t, "tool_use")) {
            json_t *in = json_object_get(b, "input");
            char *args = in && !json_is_null(in) ? tg_proto_dump(in, NULL) : strdup("{}");
            const char *id = tg_proto_str(b, "id"), *name = tg_proto_str(b, "name");
            char gen[64];
            if (!id) {
                tg_proto_random_id(gen, sizeof(gen), "toolu_");
                id = gen;
            }
            if (args)
                json_array_append_new(tcs, json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", id, "type", "function", "function", "name",
                                                     name ? name : "", "arguments", args));
            free(args);
        }
    }
    json_t *text = tg_proto_content_text(texts, "");
    json_t *msg = json_pack("{s:s,s:o,s:n}", "role", "assistant", "content",
                            json_string_length(text) || !json_array_size(tcs) ? json_incref(text) : json_null(), "refusal");
    json_decref(text);
    if (json_array_size(thinking))
        json_object_set_new(msg, "reasoning_content", tg_proto_content_text(thinking, ""));
    if (json_array_size(tcs))
        json_object_set(msg, "tool_calls", tcs);
    tg_proto_usage_t u = {0};
    if (json_is_object(json_object_get(resp, "usage")))
        anth_usage(json_object_get(resp, "usage"), NULL, &u);
    char id[192];
    tg_proto_derive_id(id, sizeof(id), "chatcmpl-", tg_proto_str(resp, "id"));
    const char *model = tg_proto_str(resp, "model");
    json_t *out = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:n,s:s}]}", "id", id, "object", "chat.completion", "created",
                            (json_int_t)time(NULL), "model", model ? model : "", "choices", "index", 0, "message", msg, "logprobs",
                            "finish_reason", tg_proto_finish_from_anthropic(tg_proto_str(resp, "stop_reason")));
    if (out && json_is_object(json_object_get(resp, "usage")))
        json_object_set_new(out, "usage", tg_proto_chat_usage(&u, 0));
    json_decref(texts);
    json_decref(thinking);
    json_decref(tcs);
    if (!out)
        *err = tg_proto_errf("upstream answer: could not be translated");
    return out;
}

static json_t *anth_usage_json(const tg_proto_usage_t *u)
{
    uint64_t cached = u->cached_tokens <= u->prompt_tokens ? u->cached_tokens : u->prompt_tokens;
    return json_pack("{s:I,s:I,s:I,s:I}", "input_tokens", (json_int_t)(u->prompt_tokens - cached), "cache_creation_input_tokens",
                     (json_int_t)0, "cache_read_input_tokens", (json_int_t)cached, "output_tokens",
                     (json_int_t)u->completion_tokens);
}

/* Tool call arguments as a tool_use input (an object; anything else becomes {}). */
static json_t *args_to_input(const char *args)
{
    json_error_t je;
    json_t *in = args && *args ? json_loads(args, JSON_ALLOW_NUL, &je) : NULL;
    if (!json_is_object(in)) {
        json_decref(in);
        in = json_object();
    }
    return in;
}

json_t *tg_proto_chat_to_messages_resp(const json_t *chat, char **err)
{
    json_t *ch = json_array_get(json_object_get(chat, "choices"), 0);
    json_t *msg = json_object_get(ch, "message");
    if (!json_is_object(msg)) {
        *err = tg_proto_errf("upstream answer: choices[0].message: required");
        return NULL;
    }
    json_t *content = json_array();
    json_t *text = tg_proto_content_text(json_object_get(msg, "content"), "");
    if (text && json_string_length(text))
        json_array_append_new(content, json_pack("{s:s,s:O}", "type", "text", "text", text));
    json_decref(text);
    const char *refusal = tg_proto_str(msg, "refusal");
    if (refusal && *refusal)
        json_array_append_new(content, json_pack("{s:s,s:s}", "type", "text", "text", refusal));
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(msg, "tool_calls"), i, tc) {
        json_t *fn = json_object_get(tc, "function");
        const char *name = tg_proto_str(fn, "name");
        json_array_append_new(content, json_pack("{s:s,s:o,s:s,s:o}", "type", "tool_use", "id", anth_id(tg_proto_str(tc, "id")),
                                                 "name", name ? name : "", "input", args_to_input(tg_proto_str(fn, "arguments"))));
    }
    tg_proto_usage_t u = {0};
    tg_proto_usage_from_chat(json_object_get(chat, "usage"), &u, NULL);
    char id[192];
    tg_proto_derive_id(id, sizeof(id), "msg_", tg_proto_str(chat, "id"));
    const char *model = tg_proto_str(chat, "model");
    const char *fr = tg_proto_str(ch, "finish_reason");
    if (!fr && json_array_size(json_object_get(msg, "tool_calls")))
        fr = "tool_calls";
    json_t *out = json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:n,s:o}", "id", id, "type", "message", "role", "assistant", "model",
                            model ? model : "", "content", content, "stop_reason", tg_proto_finish_to_anthropic(fr),
                            "stop_sequence", "usage", anth_usage_json(&u));
    if (!out)
        *err = tg_proto_errf("upstream answer: could not be translated");
    return out;
}

/* ---------------------------------------------------------------------------------------------
 * Stream encoder: the client speaks Anthropic messages */

enum { BLOCK_NONE = 0, BLOCK_TEXT, BLOCK_TOOL };

static void me_close_block(tg_proto_stream_t *s)
{
    if (!s->cur_kind)
        return;
    tg_proto_emit_json(s, "content_block_stop", json_pack("{s:s,s:i}", "type", "content_block_stop", "index", s->cur_index));
    s->cur_kind = BLOCK_NONE;
}

static int me_open_block(tg_proto_stream_t *s, int kind, json_t *block)
{
    me_close_block(s);
    int idx = s->next_index++;
    tg_proto_emit_json(s, "content_block_start",
                       json_pack("{s:s,s:i,s:o}", "type", "content_block_start", "index", idx, "content_block", block));
    s->cur_kind = kind;
    s->cur_index = idx;
    return idx;
}

static void me_start(tg_proto_stream_t *s)
{
    json_t *usage = anth_usage_json(&s->usage);
    json_object_set_new(usage, "output_tokens", json_integer(0));
    tg_proto_emit_json(s, "message_start",
                       json_pack("{s:s,s:{s:s,s:s,s:s,s:s,s:[],s:n,s:n,s:o}}", "type", "message_start", "message", "id", s->id,
                                 "type", "message", "role", "assistant", "model", tg_proto_client_model(s), "content",
                                 "stop_reason", "stop_sequence", "usage", usage));
}

static void me_text(tg_proto_stream_t *s, const char *t, size_t n)
{
    if (s->cur_kind != BLOCK_TEXT)
        me_open_block(s, BLOCK_TEXT, json_pack("{s:s,s:s}", "type", "text", "text", ""));
    tg_proto_emit_json(s, "content_block_delta",
                       json_pack("{s:s,s:i,s:{s:s,s:s%}}", "type", "content_block_delta", "index", s->cur_index, "delta", "type",
                                 "text_delta", "text", t, n));
}

static void me_reasoning(tg_proto_stream_t *s, const char *t, size_t n)
{
    /* not relayed: a thinking block needs a signature that only Anthropic can issue */
}

static void me_tool(tg_proto_stream_t *s, int ord, const char *id, const char *name, const json_t *extra)
{
    int idx =
        me_open_block(s, BLOCK_TOOL, json_pack("{s:s,s:o,s:s,s:{}}", "type", "tool_use", "id", anth_id(id), "name", name, "input"));
    tg_proto_map_set(&s->omap, &s->omap_len, (size_t)ord, idx);
}

static void me_tool_args(tg_proto_stream_t *s, int ord, const char *a, size_t n)
{
    int idx = tg_proto_map_get(s->omap, s->omap_len, (size_t)ord);
    if (idx < 0)
        return;
    tg_proto_emit_json(s, "content_block_delta",
                       json_pack("{s:s,s:i,s:{s:s,s:s%}}", "type", "content_block_delta", "index", idx, "delta", "type",
                                 "input_json_delta", "partial_json", a, n));
}

static void me_finish(tg_proto_stream_t *s)
{
    me_close_block(s);
}

static void me_close(tg_proto_stream_t *s)
{
    if (s->failed)
        return; /* Anthropic ends a stream after its error event */
    me_close_block(s);
    json_t *usage = anth_usage_json(&s->usage);
    if (!s->usage.seen) {
        json_object_del(usage, "input_tokens");
        json_object_del(usage, "cache_read_input_tokens");
        json_object_del(usage, "cache_creation_input_tokens");
    }
    tg_proto_emit_json(s, "message_delta",
                       json_pack("{s:s,s:{s:o,s:n},s:o}", "type", "message_delta", "delta", "stop_reason",
                                 s->finished ? json_string(tg_proto_finish_to_anthropic(s->finish)) : json_null(), "stop_sequence",
                                 "usage", usage));
    tg_proto_emit_json(s, "message_stop", json_pack("{s:s}", "type", "message_stop"));
}

static void me_error(tg_proto_stream_t *s, const char *type, const char *message)
{
    static const char *const known[] = {"invalid_request_error",
                                        "authentication_error",
                                        "billing_error",
                                        "permission_error",
                                        "not_found_error",
                                        "request_too_large",
                                        "rate_limit_error",
                                        "api_error",
                                        "overloaded_error",
                                        "timeout_error",
                                        NULL};
    int native = 0;
    for (int i = 0; known[i] && !native; i++)
        native = !strcmp(type, known[i]);
    tg_proto_emit_json(
        s, "error",
        json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", native ? type : "api_error", "message", message));
}

const tg_proto_enc_t tg_proto_enc_messages = {me_start,     me_text,   me_reasoning, me_tool,
                                              me_tool_args, me_finish, me_close,     me_error};

/* ---------------------------------------------------------------------------------------------
 * Stream decoder: the upstream speaks Anthropic messages */

enum { DEC_TEXT = -2, DEC_THINKING = -3, DEC_OTHER = -4 };

int tg_proto_dec_messages(tg_proto_stream_t *s, const char *event, json_t *data)
{
    const char *type = tg_proto_str(data, "type");
    if (!type)
        type = event;
    json_t *ix = json_object_get(data, "index");
    size_t idx = json_is_integer(ix) && json_integer_value(ix) >= 0 ? (size_t)json_integer_value(ix) : 0;
    if (!strcmp(type, "message_start")) {
        json_t *m = json_object_get(data, "message");
        tg_proto_hub_set_ids(s, tg_proto_str(m, "id"), tg_proto_str(m, "model"));
        if (json_is_object(json_object_get(m, "usage")))
            anth_usage(json_object_get(m, "usage"), s, &s->usage);
        tg_proto_hub_start(s);
    } else if (!strcmp(type, "content_block_start")) {
        json_t *cb = json_object_get(data, "content_block");
        const char *bt = tg_proto_str(cb, "type");
        if (!json_is_integer(ix) || !bt)
            return -1;
        if (!strcmp(bt, "text")) {
            tg_proto_map_set(&s->dmap, &s->dmap_len, idx, DEC_TEXT);
            json_t *t = json_object_get(cb, "text");
            if (json_is_string(t))
                tg_proto_hub_text(s, json_string_value(t), json_string_length(t));
        } else if (!strcmp(bt, "tool_use")) {
            int ord = s->ntools++;
            tg_proto_map_set(&s->dmap, &s->dmap_len, idx, ord);
            tg_proto_hub_tool(s, ord, tg_proto_str(cb, "id"), tg_proto_str(cb, "name"), NULL);
            json_t *in = json_object_get(cb, "input");
            if (json_is_object(in) && json_object_size(in)) { /* some compatible servers send it whole */
                size_t n;
                char *a = tg_proto_dump(in, &n);
                if (a)
                    tg_proto_hub_tool_args(s, ord, a, n);
                free(a);
            }
        } else if (!strcmp(bt, "thinking")) {
            tg_proto_map_set(&s->dmap, &s->dmap_len, idx, DEC_THINKING);
            json_t *t = json_object_get(cb, "thinking");
            if (json_is_string(t))
                tg_proto_hub_reasoning(s, json_string_value(t), json_string_length(t));
        } else {
            tg_proto_map_set(&s->dmap, &s->dmap_len, idx, DEC_OTHER);
        }
    } else if (!strcmp(type, "content_block_delta")) {
        json_t *d = json_object_get(data, "delta");
        const char *dt = tg_proto_str(d, "type");
        if (!dt)
            return -1;
        json_t *v;
        if (!strcmp(dt, "text_delta") && json_is_string(v = json_object_get(d, "text"))) {
            tg_proto_hub_text(s, json_string_value(v), json_string_length(v));
        } else if (!strcmp(dt, "input_json_delta") && json_is_string(v = json_object_get(d, "partial_json"))) {
            int ord = tg_proto_map_get(s->dmap, s->dmap_len, idx);
            if (ord >= 0)
                tg_proto_hub_tool_args(s, ord, json_string_value(v), json_string_length(v));
        } else if (!strcmp(dt, "thinking_delta") && json_is_string(v = json_object_get(d, "thinking"))) {
            tg_proto_hub_reasoning(s, json_string_value(v), json_string_length(v));
        } /* signature_delta, citations_delta: nothing to relay */
    } else if (!strcmp(type, "message_delta")) {
        json_t *u = json_object_get(data, "usage");
        if (json_is_object(u))
            anth_usage(u, s, &s->usage);
        const char *sr = tg_proto_str(json_object_get(data, "delta"), "stop_reason");
        if (sr)
            tg_proto_hub_finish(s, tg_proto_finish_from_anthropic(sr));
    } else if (!strcmp(type, "message_stop")) {
        tg_proto_hub_close(s);
    } else if (!strcmp(type, "error")) {
        json_t *e = json_object_get(data, "error");
        tg_proto_hub_error(s, tg_proto_str(e, "type"), tg_proto_str(e, "message"));
    } /* ping, content_block_stop and unknown events: nothing */
    return 0;
}
