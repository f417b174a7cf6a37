/* OpenAI Responses → OpenAI chat, for upstreams that lack /v1/responses: the request (input
 * items, instructions, function tools, text.format, reasoning.effort), the chat completion back
 * to a Response object, and the encoder of the Responses event stream (response.created,
 * output_item.added, content_part.added, output_text.delta/done, function_call_arguments.delta/
 * done, output_item.done, response.completed with usage). Mapping tables: docs/translation.md. */
#define TG_PROTO_INTERNAL
#include "worker/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------------------------------------
 * Request */

/* One content part of an input message as a chat part; NULL + *err when it cannot be sent. */
static json_t *input_part(const json_t *p, size_t i, size_t j, char **err)
{
    const char *type = tg_proto_str(p, "type");
    if (!type) {
        *err = tg_proto_errf("input[%zu].content[%zu].type: required", i, j);
        return NULL;
    }
    if (!strcmp(type, "input_text") || !strcmp(type, "output_text") || !strcmp(type, "text")) {
        json_t *t = json_object_get(p, "text");
        if (!json_is_string(t)) {
            *err = tg_proto_errf("input[%zu].content[%zu].text: must be a string", i, j);
            return NULL;
        }
        return json_pack("{s:s,s:O}", "type", "text", "text", t);
    }
    if (!strcmp(type, "refusal") && tg_proto_str(p, "refusal"))
        return json_pack("{s:s,s:O}", "type", "text", "text", json_object_get(p, "refusal"));
    if (!strcmp(type, "input_image")) {
        const char *url = tg_proto_str(p, "image_url");
        if (!url) {
            *err = tg_proto_errf("input[%zu].content[%zu]: only images given by image_url can be sent to this "
                                 "upstream",
                                 i, j);
            return NULL;
        }
        json_t *iu = json_pack("{s:s}", "url", url);
        tg_proto_copy(iu, "detail", p, "detail");
        return json_pack("{s:s,s:o}", "type", "image_url", "image_url", iu);
    }
    if (!strcmp(type, "input_file")) {
        json_t *f = json_object();
        tg_proto_copy(f, "file_data", p, "file_data");
        tg_proto_copy(f, "file_id", p, "file_id");
        tg_proto_copy(f, "filename", p, "filename");
        if (!json_object_get(f, "file_data") && !json_object_get(f, "file_id")) {
            json_decref(f);
            *err = tg_proto_errf("input[%zu].content[%zu]: only files given by file_data or file_id can be sent to "
                                 "this upstream",
                                 i, j);
            return NULL;
        }
        return json_pack("{s:s,s:o}", "type", "file", "file", f);
    }
    if (!strcmp(type, "input_audio") && json_is_object(json_object_get(p, "input_audio")))
        return json_pack("{s:s,s:O}", "type", "input_audio", "input_audio", json_object_get(p, "input_audio"));
    *err = tg_proto_errf("input[%zu].content[%zu]: unsupported part type '%s'", i, j, type);
    return NULL;
}

static int message_item(const json_t *it, size_t i, json_t *msgs, char **err)
{
    const char *role = tg_proto_str(it, "role");
    if (!role || (strcmp(role, "user") && strcmp(role, "system") && strcmp(role, "developer") && strcmp(role, "assistant"))) {
        *err = tg_proto_errf("input[%zu].role: must be 'user', 'assistant', 'system' or 'developer'", i);
        return -1;
    }
    json_t *content = json_object_get(it, "content");
    if (json_is_string(content)) {
        json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", role, "content", content));
        return 0;
    }
    if (!json_is_array(content)) {
        *err = tg_proto_errf("input[%zu].content: must be a string or an array", i);
        return -1;
    }
    json_t *parts = json_array(), *p;
    size_t j;
    json_array_foreach(content, j, p) {
        json_t *cp = input_part(p, i, j, err);
        if (!cp) {
            json_decref(parts);
            return -1;
        }
        json_array_append_new(parts, cp);
    }
    json_t *c = parts;
    if (!strcmp(role, "assistant") || !strcmp(role, "system") || !strcmp(role, "developer")) {
        for (j = 0; j < json_array_size(parts); j++)
            if (strcmp(tg_proto_str(json_array_get(parts, j), "type"), "text")) {
                *err = tg_proto_errf("input[%zu].content[%zu]: a %s message takes text only", i, j, role);
                json_decref(parts);
                return -1;
            }
        c = tg_proto_content_text(parts, "");
        json_decref(parts);
    }
    json_array_append_new(msgs, json_pack("{s:s,s:o}", "role", role, "content", c));
    return 0;
}

static int function_call_item(const json_t *it, size_t i, json_t *msgs, char **err)
{
    const char *call_id = tg_proto_str(it, "call_id"), *name = tg_proto_str(it, "name");
    if (!call_id || !name) {
        *err = tg_proto_errf("input[%zu]: a function_call needs call_id and name", i);
        return -1;
    }
    const char *args = tg_proto_str(it, "arguments");
    json_t *tc = json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", call_id, "type", "function", "function", "name", name, "arguments",
                           args ? args : "{}");
    json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
    if (!last || strcmp(tg_proto_str(last, "role"), "assistant")) {
        last = json_pack("{s:s,s:n}", "role", "assistant", "content");
        json_array_append_new(msgs, last);
    }
    json_t *tcs = json_object_get(last, "tool_calls");
    if (!json_is_array(tcs)) {
        tcs = json_array();
        json_object_set_new(last, "tool_calls", tcs);
    }
    json_array_append_new(tcs, tc);
    return 0;
}

static int function_output_item(const json_t *it, size_t i, json_t *msgs, char **err)
{
    const char *call_id = tg_proto_str(it, "call_id");
    json_t *output = json_object_get(it, "output");
    if (!call_id) {
        *err = tg_proto_errf("input[%zu].call_id: required", i);
        return -1;
    }
    json_t *text, *images = json_array();
    if (json_is_array(output)) {
        size_t j;
        json_t *p;
        json_array_foreach(output, j, p) {
            const char *t = tg_proto_str(p, "type");
            if (t && !strcmp(t, "input_image")) {
                json_t *cp = input_part(p, i, j, err);
                if (!cp) {
                    json_decref(images);
                    return -1;
                }
                json_array_append_new(images, cp);
            }
        }
        text = tg_proto_content_text(output, "\n");
    } else if (json_is_string(output)) {
        text = json_incref(output);
    } else if (output && !json_is_null(output)) {
        char *d = tg_proto_dump(output, NULL);
        text = json_string(d ? d : "");
        free(d);
    } else {
        text = json_string("");
    }
    json_array_append_new(msgs, json_pack("{s:s,s:s,s:o}", "role", "tool", "tool_call_id", call_id, "content", text));
    if (json_array_size(images))
        json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "user", "content", images));
    json_decref(images);
    return 0;
}

json_t *tg_proto_responses_to_chat_req(const json_t *req, char **err)
{
    json_t *v;
    if ((v = json_object_get(req, "previous_response_id")) && !json_is_null(v)) {
        *err = tg_proto_errf("previous_response_id: stored responses are not available with this upstream; send the "
                             "whole conversation in input");
        return NULL;
    }
    if ((v = json_object_get(req, "conversation")) && !json_is_null(v)) {
        *err = tg_proto_errf("conversation: stored conversations are not available with this upstream");
        return NULL;
    }
    if (json_is_true(json_object_get(req, "background"))) {
        *err = tg_proto_errf("background: background responses are not available with this upstream");
        return NULL;
    }
    json_t *input = json_object_get(req, "input");
    if (!json_is_string(input) && !json_is_array(input)) {
        *err = tg_proto_errf("input: %s", input ? "must be a string or an array" : "required");
        return NULL;
    }
    json_t *msgs = json_array();
    json_t *out = json_pack("{s:O}", "messages", msgs);
    json_decref(msgs);
    const char *instr = tg_proto_str(req, "instructions");
    if (instr && *instr)
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system", "content", instr));
    if (json_is_string(input)) {
        json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "user", "content", input));
    } else {
        size_t i;
        json_t *it;
        json_array_foreach(input, i, it) {
            if (!json_is_object(it)) {
                *err = tg_proto_errf("input[%zu]: must be an object", i);
                goto fail;
            }
            const char *type = tg_proto_str(it, "type");
            int r = 0;
            if (!type || !strcmp(type, "message"))
                r = message_item(it, i, msgs, err);
            else if (!strcmp(type, "function_call"))
                r = function_call_item(it, i, msgs, err);
            else if (!strcmp(type, "function_call_output"))
                r = function_output_item(it, i, msgs, err);
            else if (!strcmp(type, "reasoning"))
                continue; /* reasoning items are the upstream model's own; a chat model takes none */
            else if (!strcmp(type, "item_reference")) {
                *err = tg_proto_errf("input[%zu]: item references need stored responses, not available with this "
                                     "upstream",
                                     i);
                r = -1;
            } else {
                *err = tg_proto_errf("input[%zu]: item type '%s' cannot be sent to this upstream", i, type);
                r = -1;
            }
            if (r < 0)
                goto fail;
        }
    }
    json_t *tools = json_object_get(req, "tools"), *t, *ctools = json_array();
    size_t i;
    json_array_foreach(tools, i, t) {
        const char *type = tg_proto_str(t, "type");
        if (!type || strcmp(type, "function") || !tg_proto_str(t, "name"))
            continue; /* hosted tools (web_search, file_search, ...) and custom tools are dropped */
        json_t *fn = json_pack("{s:O}", "name", json_object_get(t, "name"));
        tg_proto_copy(fn, "description", t, "description");
        tg_proto_copy(fn, "parameters", t, "parameters");
        tg_proto_copy(fn, "strict", t, "strict");
        json_array_append_new(ctools, json_pack("{s:s,s:o}", "type", "function", "function", fn));
    }
    if (json_array_size(ctools)) {
        json_object_set(out, "tools", ctools);
        json_t *tc = json_object_get(req, "tool_choice");
        const char *tct = tg_proto_str(tc, "type");
        if (json_is_string(tc))
            json_object_set(out, "tool_choice", tc);
        else if (tct && !strcmp(tct, "function") && tg_proto_str(tc, "name"))
            json_object_set_new(out, "tool_choice",
                                json_pack("{s:s,s:{s:O}}", "type", "function", "function", "name", json_object_get(tc, "name")));
        tg_proto_copy(out, "parallel_tool_calls", req, "parallel_tool_calls");
    }
    json_decref(ctools);
    tg_proto_copy(out, "max_completion_tokens", req, "max_output_tokens");
    tg_proto_copy(out, "temperature", req, "temperature");
    tg_proto_copy(out, "top_p", req, "top_p");
    tg_proto_copy(out, "user", req, "user");
    tg_proto_copy(out, "service_tier", req, "service_tier");
    tg_proto_copy(out, "prompt_cache_key", req, "prompt_cache_key");
    tg_proto_copy(out, "safety_identifier", req, "safety_identifier");
    json_t *text = json_object_get(req, "text");
    json_t *fmt = json_object_get(text, "format");
    const char *ft = tg_proto_str(fmt, "type");
    if (ft && !strcmp(ft, "json_object")) {
        json_object_set_new(out, "response_format", json_pack("{s:s}", "type", "json_object"));
    } else if (ft && !strcmp(ft, "json_schema")) {
        json_t *js = json_object();
        json_object_set_new(js, "name", json_string(tg_proto_str(fmt, "name") ? tg_proto_str(fmt, "name") : "response"));
        tg_proto_copy(js, "description", fmt, "description");
        tg_proto_copy(js, "schema", fmt, "schema");
        tg_proto_copy(js, "strict", fmt, "strict");
        json_object_set_new(out, "response_format", json_pack("{s:s,s:o}", "type", "json_schema", "json_schema", js));
    }
    tg_proto_copy(out, "verbosity", text, "verbosity");
    tg_proto_copy(out, "reasoning_effort", json_object_get(req, "reasoning"), "effort");
    if (json_is_true(json_object_get(req, "stream")))
        json_object_set_new(out, "stream", json_true());
    return out;
fail:
    json_decref(out);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Answers */

static json_t *resp_usage(const tg_proto_usage_t *u, uint64_t reasoning)
{
    return json_pack("{s:I,s:{s:I},s:I,s:{s:I},s:I}", "input_tokens", (json_int_t)u->prompt_tokens, "input_tokens_details",
                     "cached_tokens", (json_int_t)u->cached_tokens, "output_tokens", (json_int_t)u->completion_tokens,
                     "output_tokens_details", "reasoning_tokens", (json_int_t)reasoning, "total_tokens",
                     (json_int_t)(u->prompt_tokens + u->completion_tokens));
}

/* The Response object around OUTPUT (stolen), with the request-echo fields at their defaults. */
static json_t *resp_object(const char *id, long long created, const char *status, const char *model, json_t *output, json_t *usage)
{
    return json_pack("{s:s,s:s,s:I,s:s,s:b,s:n,s:n,s:n,s:n,s:s,s:o,s:b,s:n,s:{s:n,s:n},s:b,s:n,s:{s:{s:s}},s:s,s:[],"
                     "s:n,s:s,s:o,s:n,s:{}}",
                     "id", id, "object", "response", "created_at", (json_int_t)created, "status", status, "background", 0, "error",
                     "incomplete_details", "instructions", "max_output_tokens", "model", model ? model : "", "output", output,
                     "parallel_tool_calls", 1, "previous_response_id", "reasoning", "effort", "summary", "store", 0, "temperature",
                     "text", "format", "type", "text", "tool_choice", "auto", "tools", "top_p", "truncation", "disabled", "usage",
                     usage ? usage : json_null(), "user", "metadata");
}

/* The status a finish reason gives a Response: "completed" or "incomplete" (+ details). */
static const char *resp_status(const char *finish, json_t **details)
{
    *details = NULL;
    if (finish && !strcmp(finish, "length")) {
        *details = json_pack("{s:s}", "reason", "max_output_tokens");
        return "incomplete";
    }
    if (finish && !strcmp(finish, "content_filter")) {
        *details = json_pack("{s:s}", "reason", "content_filter");
        return "incomplete";
    }
    return "completed";
}

static json_t *text_part(json_t *text)
{
    return json_pack("{s:s,s:o,s:[],s:[]}", "type", "output_text", "text", text, "annotations", "logprobs");
}

json_t *tg_proto_chat_to_responses_resp(const json_t *chat, char **err)
{
    json_t *ch = json_array_get(json_object_get(chat, "choices"), 0);
    json_t *msg = json_object_get(ch, "message");
    if (!json_is_object(msg)) {
        *err = tg_proto_errf("upstream answer: choices[0].message: required");
        return NULL;
    }
    json_t *output = json_array();
    char id[192];
    json_t *content = json_array();
    json_t *text = tg_proto_content_text(json_object_get(msg, "content"), "");
    if (text && json_string_length(text))
        json_array_append_new(content, text_part(json_incref(text)));
    json_decref(text);
    const char *refusal = tg_proto_str(msg, "refusal");
    if (refusal && *refusal)
        json_array_append_new(content, json_pack("{s:s,s:s}", "type", "refusal", "refusal", refusal));
    if (json_array_size(content)) {
        tg_proto_random_id(id, sizeof(id), "msg_");
        json_array_append_new(output, json_pack("{s:s,s:s,s:s,s:s,s:O}", "id", id, "type", "message", "status", "completed", "role",
                                                "assistant", "content", content));
    }
    json_decref(content);
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(msg, "tool_calls"), i, tc) {
        json_t *fn = json_object_get(tc, "function");
        const char *call_id = tg_proto_str(tc, "id"), *name = tg_proto_str(fn, "name"), *args = tg_proto_str(fn, "arguments");
        char cid[64];
        if (!call_id) {
            tg_proto_random_id(cid, sizeof(cid), "call_");
            call_id = cid;
        }
        tg_proto_random_id(id, sizeof(id), "fc_");
        json_array_append_new(output,
                              json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", id, "type", "function_call", "status", "completed",
                                        "arguments", args ? args : "{}", "call_id", call_id, "name", name ? name : ""));
    }
    tg_proto_usage_t u = {0};
    uint64_t reasoning = 0;
    tg_proto_usage_from_chat(json_object_get(chat, "usage"), &u, &reasoning);
    json_t *details;
    const char *status = resp_status(tg_proto_str(ch, "finish_reason"), &details);
    tg_proto_derive_id(id, sizeof(id), "resp_", tg_proto_str(chat, "id"));
    json_t *created = json_object_get(chat, "created");
    json_t *out = resp_object(id, json_is_integer(created) ? json_integer_value(created) : (long long)time(NULL), status,
                              tg_proto_str(chat, "model"), output, u.seen ? resp_usage(&u, reasoning) : NULL);
    if (out && details)
        json_object_set(out, "incomplete_details", details);
    json_decref(details);
    if (!out)
        *err = tg_proto_errf("upstream answer: could not be translated");
    return out;
}

/* ---------------------------------------------------------------------------------------------
 * Stream encoder: the client speaks Responses */

enum { ITEM_NONE = 0, ITEM_MESSAGE, ITEM_CALL };

/* Emits event TYPE with the members of BODY (stolen) after type and sequence_number. */
static void re_emit(tg_proto_stream_t *s, const char *type, json_t *body)
{
    json_t *ev = json_pack("{s:s,s:I}", "type", type, "sequence_number", (json_int_t)s->seq++);
    if (ev && body)
        json_object_update(ev, body);
    json_decref(body);
    tg_proto_emit_json(s, type, ev);
}

static json_t *re_response(tg_proto_stream_t *s, const char *status, int with_usage)
{
    return resp_object(s->id, s->created, status, tg_proto_client_model(s), json_incref(s->items),
                       with_usage && s->usage.seen ? resp_usage(&s->usage, s->reasoning_tokens) : NULL);
}

static void re_start(tg_proto_stream_t *s)
{
    if (!s->items)
        s->items = json_array();
    re_emit(s, "response.created", json_pack("{s:o}", "response", re_response(s, "in_progress", 0)));
    re_emit(s, "response.in_progress", json_pack("{s:o}", "response", re_response(s, "in_progress", 0)));
}

static json_t *cur_item(tg_proto_stream_t *s)
{
    return json_array_get(s->items, (size_t)s->cur_index);
}

static void re_close_item(tg_proto_stream_t *s)
{
    json_t *item = cur_item(s);
    if (!s->cur_kind || !item)
        return;
    const char *item_id = tg_proto_str(item, "id");
    json_t *text = tg_proto_strn(s->buf ? s->buf : "", s->buf_len);
    if (s->cur_kind == ITEM_MESSAGE) {
        re_emit(s, "response.output_text.done",
                json_pack("{s:s,s:i,s:i,s:O,s:[]}", "item_id", item_id, "output_index", s->cur_index, "content_index", 0, "text",
                          text, "logprobs"));
        json_t *part = text_part(json_incref(text));
        re_emit(s, "response.content_part.done",
                json_pack("{s:s,s:i,s:i,s:O}", "item_id", item_id, "output_index", s->cur_index, "content_index", 0, "part", part));
        json_object_set_new(item, "content", json_pack("[o]", part));
    } else {
        json_object_set(item, "arguments", text);
        re_emit(s, "response.function_call_arguments.done",
                json_pack("{s:s,s:i,s:O,s:O}", "item_id", item_id, "output_index", s->cur_index, "name",
                          json_object_get(item, "name"), "arguments", text));
    }
    json_decref(text);
    json_object_set_new(item, "status", json_string("completed"));
    re_emit(s, "response.output_item.done", json_pack("{s:i,s:O}", "output_index", s->cur_index, "item", item));
    s->cur_kind = ITEM_NONE;
    s->buf_len = 0;
}

static void re_open_item(tg_proto_stream_t *s, int kind, json_t *item)
{
    re_close_item(s);
    if (!item)
        return;
    s->cur_index = (int)json_array_size(s->items);
    s->cur_kind = kind;
    s->buf_len = 0;
    json_array_append_new(s->items, item);
    re_emit(s, "response.output_item.added", json_pack("{s:i,s:o}", "output_index", s->cur_index, "item", json_deep_copy(item)));
}

static void re_text(tg_proto_stream_t *s, const char *t, size_t n)
{
    if (s->cur_kind != ITEM_MESSAGE) {
        char id[64];
        tg_proto_random_id(id, sizeof(id), "msg_");
        re_open_item(s, ITEM_MESSAGE,
                     json_pack("{s:s,s:s,s:s,s:s,s:[]}", "id", id, "type", "message", "status", "in_progress", "role", "assistant",
                               "content"));
        re_emit(s, "response.content_part.added",
                json_pack("{s:s,s:i,s:i,s:o}", "item_id", id, "output_index", s->cur_index, "content_index", 0, "part",
                          text_part(json_string(""))));
    }
    json_t *item = cur_item(s);
    re_emit(s, "response.output_text.delta",
            json_pack("{s:s,s:i,s:i,s:s%,s:[]}", "item_id", tg_proto_str(item, "id"), "output_index", s->cur_index, "content_index",
                      0, "delta", t, n, "logprobs"));
    tg_proto_buf_add(s, t, n);
}

static void re_reasoning(tg_proto_stream_t *s, const char *t, size_t n)
{
    /* not relayed: Responses reasoning items carry the upstream's encrypted state, a chat
     * upstream has none to give */
}

static void re_tool(tg_proto_stream_t *s, int ord, const char *id, const char *name, const json_t *extra)
{
    char fid[64];
    tg_proto_random_id(fid, sizeof(fid), "fc_");
    re_open_item(s, ITEM_CALL,
                 json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", fid, "type", "function_call", "status", "in_progress", "arguments",
                           "", "call_id", id, "name", name));
    tg_proto_map_set(&s->omap, &s->omap_len, (size_t)ord, s->cur_index);
}

static void re_tool_args(tg_proto_stream_t *s, int ord, const char *a, size_t n)
{
    int idx = tg_proto_map_get(s->omap, s->omap_len, (size_t)ord);
    json_t *item = json_array_get(s->items, (size_t)idx);
    if (idx < 0 || !item)
        return;
    re_emit(s, "response.function_call_arguments.delta",
            json_pack("{s:s,s:i,s:s%}", "item_id", tg_proto_str(item, "id"), "output_index", idx, "delta", a, n));
    if (idx == s->cur_index && s->cur_kind == ITEM_CALL) {
        tg_proto_buf_add(s, a, n);
    } else { /* arguments for a call already closed (interleaved upstream): keep the item whole */
        const char *old = tg_proto_str(item, "arguments");
        size_t ol = old ? strlen(old) : 0;
        char *joined = malloc(ol + n + 1);
        if (joined) {
            memcpy(joined, old ? old : "", ol);
            memcpy(joined + ol, a, n);
            json_object_set_new(item, "arguments", tg_proto_strn(joined, ol + n));
            free(joined);
        }
    }
}

static void re_finish(tg_proto_stream_t *s)
{
    re_close_item(s);
}

static void re_close(tg_proto_stream_t *s)
{
    if (s->failed)
        return; /* response.failed went out with the error */
    re_close_item(s);
    json_t *details = NULL;
    const char *status = s->finished ? resp_status(s->finish, &details) : "incomplete";
    json_t *r = re_response(s, status, 1);
    if (r && details)
        json_object_set(r, "incomplete_details", details);
    json_decref(details);
    re_emit(s, !strcmp(status, "completed") ? "response.completed" : "response.incomplete", json_pack("{s:o}", "response", r));
}

static void re_error(tg_proto_stream_t *s, const char *type, const char *message)
{
    if (!s->items)
        s->items = json_array();
    re_close_item(s);
    re_emit(s, "error", json_pack("{s:s,s:s,s:n}", "code", type, "message", message, "param"));
    json_t *r = re_response(s, "failed", 1);
    if (r)
        json_object_set_new(r, "error", json_pack("{s:s,s:s}", "code", "server_error", "message", message));
    re_emit(s, "response.failed", json_pack("{s:o}", "response", r));
}

const tg_proto_enc_t tg_proto_enc_responses = {re_start,     re_text,   re_reasoning, re_tool,
                                               re_tool_args, re_finish, re_close,     re_error};

/* ---------------------------------------------------------------------------------------------
 * Stream decoder for a Responses upstream (passthrough only: usage and relayed text) */

int tg_proto_dec_responses(tg_proto_stream_t *s, const char *event, json_t *data)
{
    const char *type = tg_proto_str(data, "type");
    if (!type)
        type = event;
    json_t *d = json_object_get(data, "delta");
    if (!strcmp(type, "response.output_text.delta") && json_is_string(d)) {
        tg_proto_hub_text(s, json_string_value(d), json_string_length(d));
    } else if (!strcmp(type, "response.function_call_arguments.delta") && json_is_string(d)) {
        tg_proto_hub_tool_args(s, 0, json_string_value(d), json_string_length(d));
    } else if (!strcmp(type, "response.completed") || !strcmp(type, "response.incomplete") || !strcmp(type, "response.failed")) {
        json_t *u = json_object_get(json_object_get(data, "response"), "usage");
        if (json_is_object(u)) {
            json_t *v;
            s->usage.prompt_tokens = json_is_integer(v = json_object_get(u, "input_tokens")) ? (uint64_t)json_integer_value(v) : 0;
            s->usage.completion_tokens =
                json_is_integer(v = json_object_get(u, "output_tokens")) ? (uint64_t)json_integer_value(v) : 0;
            v = json_object_get(json_object_get(u, "input_tokens_details"), "cached_tokens");
            s->usage.cached_tokens = json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
            s->usage.seen = 1;
        }
    }
    return 0;
}
