/* OpenAI chat → Gemini generateContent: the request (contents, systemInstruction, tools with
 * their JSON Schemas reduced to the subset Gemini accepts, generationConfig), the answer back to
 * a chat completion, and the decoder of Gemini's SSE stream (alt=sse: each event is a whole
 * GenerateContentResponse carrying the new text, whole function calls, and cumulative usage).
 * The mapping tables are in docs/translation.md. */
#define TG_PROTO_INTERNAL
#include "worker/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Gemini 3 and later refuse replayed function calls without a thought signature; this value is
 * Google's documented stand-in for histories that did not come from Gemini. */
#define GEMINI_SKIP_SIGNATURE "skip_thought_signature_validator"
#define SCHEMA_MAX_DEPTH 32   /* nesting of a cleaned schema */
#define SCHEMA_MAX_REFS 4     /* $refs inlined along one path (recursive schemas are cut there) */
#define SCHEMA_MAX_NODES 4096 /* schema objects written per schema */

static int gemini_major(const char *model)
{
    const char *p = model ? strstr(model, "gemini-") : NULL;
    if (!p)
        return 0;
    p += 7;
    int v = 0;
    while (*p >= '0' && *p <= '9')
        v = v * 10 + (*p++ - '0');
    return v;
}

/* ---------------------------------------------------------------------------------------------
 * JSON Schema → Gemini Schema (an OpenAPI 3.0 subset): unknown keywords are dropped (Gemini
 * rejects them), local $refs are inlined, type lists become nullable, const becomes enum. */

static json_t *resolve_ref(const json_t *root, const char *ref)
{
    const char *name = NULL;
    json_t *defs = NULL;
    if (!strncmp(ref, "#/$defs/", 8)) {
        defs = json_object_get(root, "$defs");
        name = ref + 8;
    } else if (!strncmp(ref, "#/definitions/", 14)) {
        defs = json_object_get(root, "definitions");
        name = ref + 14;
    }
    return name ? json_object_get(defs, name) : NULL;
}

typedef struct {
    const json_t *root; /* where local $refs point */
    int nodes;          /* budget left */
} schema_ctx_t;

static json_t *clean_schema(schema_ctx_t *cx, const json_t *sch, int depth, int refs);

static void clean_into(json_t *out, schema_ctx_t *cx, const json_t *sch, int depth, int refs)
{
    static const char *const keep[] = {"description",   "title",         "nullable",         "minItems", "maxItems",
                                       "minLength",     "maxLength",     "minimum",          "maximum",  "pattern",
                                       "minProperties", "maxProperties", "propertyOrdering", NULL};
    const char *ref = tg_proto_str(sch, "$ref");
    if (ref) {
        json_t *target = resolve_ref(cx->root, ref);
        if (target && refs < SCHEMA_MAX_REFS && depth < SCHEMA_MAX_DEPTH)
            clean_into(out, cx, target, depth + 1, refs + 1);
        else if (!json_object_get(sch, "type"))
            json_object_set_new(out, "type", json_string("object")); /* recursion cut here */
    }
    json_t *all = json_object_get(sch, "allOf"), *a;
    size_t i;
    if (depth < SCHEMA_MAX_DEPTH) {
        json_array_foreach(all, i, a) {
            clean_into(out, cx, a, depth + 1, refs);
        }
    }
    for (int k = 0; keep[k]; k++)
        tg_proto_copy(out, keep[k], sch, keep[k]);
    json_t *type = json_object_get(sch, "type");
    if (json_is_string(type)) {
        json_object_set(out, "type", type);
    } else if (json_is_array(type)) {
        json_t *t;
        json_array_foreach(type, i, t) {
            if (json_is_string(t) && !strcmp(json_string_value(t), "null"))
                json_object_set_new(out, "nullable", json_true());
            else if (json_is_string(t) && !json_object_get(out, "type"))
                json_object_set(out, "type", t);
        }
    }
    const char *ty = tg_proto_str(out, "type");
    const char *fmt = tg_proto_str(sch, "format");
    if (fmt && ty && (strcmp(ty, "string") || !strcmp(fmt, "date-time") || !strcmp(fmt, "enum")))
        json_object_set_new(out, "format", json_string(fmt));
    json_t *en = json_object_get(sch, "enum");
    if (json_is_array(en)) {
        json_t *strs = json_array(), *e;
        json_array_foreach(en, i, e) {
            if (json_is_string(e))
                json_array_append(strs, e);
        }
        if (json_array_size(strs) == json_array_size(en) && json_array_size(strs)) {
            json_object_set(out, "enum", strs);
            if (!json_object_get(out, "type"))
                json_object_set_new(out, "type", json_string("string"));
        }
        json_decref(strs);
    } else if (json_is_string(json_object_get(sch, "const"))) {
        json_object_set_new(out, "enum", json_pack("[O]", json_object_get(sch, "const")));
        if (!json_object_get(out, "type"))
            json_object_set_new(out, "type", json_string("string"));
    }
    json_t *items = json_object_get(sch, "items");
    if (json_is_object(items)) {
        json_t *c = clean_schema(cx, items, depth + 1, refs);
        if (c)
            json_object_set_new(out, "items", c);
    }
    json_t *props = json_object_get(sch, "properties");
    if (json_is_object(props) && json_object_size(props)) {
        json_t *cp = json_object_get(out, "properties");
        if (!json_is_object(cp)) {
            cp = json_object();
            json_object_set_new(out, "properties", cp);
        }
        const char *key;
        json_t *v;
        json_object_foreach(props, key, v) {
            json_t *c = clean_schema(cx, v, depth + 1, refs);
            if (c)
                json_object_set_new(cp, key, c);
        }
    }
    json_t *req = json_object_get(sch, "required");
    if (json_is_array(req)) {
        json_t *cp = json_object_get(out, "properties"), *r, *kept = json_object_get(out, "required");
        if (!json_is_array(kept)) {
            kept = json_array();
            json_object_set_new(out, "required", kept);
        }
        json_array_foreach(req, i, r) {
            if (json_is_string(r) && json_object_get(cp, json_string_value(r)))
                json_array_append(kept, r);
        }
        if (!json_array_size(kept))
            json_object_del(out, "required");
    }
    json_t *any = json_object_get(sch, "anyOf");
    if (!json_is_array(any))
        any = json_object_get(sch, "oneOf");
    if (json_is_array(any)) {
        json_t *ca = json_array(), *c;
        json_array_foreach(any, i, a) {
            const char *at = tg_proto_str(a, "type");
            if (at && !strcmp(at, "null")) { /* {anyOf:[X, {type:null}]} is a nullable X */
                json_object_set_new(out, "nullable", json_true());
                continue;
            }
            if ((c = clean_schema(cx, a, depth + 1, refs)))
                json_array_append_new(ca, c);
        }
        if (json_array_size(ca) == 1) {
            json_object_update_missing(out, json_array_get(ca, 0));
        } else if (json_array_size(ca) > 1) {
            json_object_set(out, "anyOf", ca);
        }
        json_decref(ca);
    }
}

static json_t *clean_schema(schema_ctx_t *cx, const json_t *sch, int depth, int refs)
{
    if (!json_is_object(sch) || depth > SCHEMA_MAX_DEPTH || cx->nodes <= 0)
        return NULL;
    cx->nodes--;
    json_t *out = json_object();
    clean_into(out, cx, sch, depth, refs);
    return out;
}

/* SCH (a JSON Schema) as a Gemini Schema, or NULL when it is not an object. */
static json_t *gemini_schema(const json_t *sch)
{
    schema_ctx_t cx = {sch, SCHEMA_MAX_NODES};
    return clean_schema(&cx, sch, 0, 0);
}

/* ---------------------------------------------------------------------------------------------
 * Request */

static json_t *inline_part(const char *mime, const char *data)
{
    return json_pack("{s:{s:s,s:s}}", "inlineData", "mimeType", mime, "data", data);
}

static int user_parts(const json_t *content, size_t i, json_t *parts, char **err)
{
    if (!content || json_is_null(content))
        return 0;
    if (json_is_string(content)) {
        if (json_string_length(content))
            json_array_append_new(parts, json_pack("{s:O}", "text", content));
        return 0;
    }
    if (!json_is_array(content)) {
        *err = tg_proto_errf("messages[%zu].content: must be a string or an array", i);
        return -1;
    }
    size_t j;
    json_t *p;
    json_array_foreach(content, j, p) {
        const char *type = tg_proto_str(p, "type");
        char mime[128];
        const char *data;
        if (!type) {
            *err = tg_proto_errf("messages[%zu].content[%zu].type: required", i, j);
            return -1;
        }
        if (!strcmp(type, "text") || !strcmp(type, "refusal")) {
            json_t *t = json_object_get(p, !strcmp(type, "text") ? "text" : "refusal");
            if (!json_is_string(t)) {
                *err = tg_proto_errf("messages[%zu].content[%zu].%s: must be a string", i, j, type);
                return -1;
            }
            if (json_string_length(t))
                json_array_append_new(parts, json_pack("{s:O}", "text", t));
        } else if (!strcmp(type, "image_url")) {
            json_t *iu = json_object_get(p, "image_url");
            const char *url = json_is_string(iu) ? json_string_value(iu) : tg_proto_str(iu, "url");
            if (!url || !*url) {
                *err = tg_proto_errf("messages[%zu].content[%zu].image_url.url: required", i, j);
                return -1;
            }
            if (tg_proto_data_url(url, mime, sizeof(mime), &data)) {
                json_array_append_new(parts, inline_part(mime, data));
            } else {
                const char *gm = tg_proto_guess_mime(url);
                json_t *fd = json_pack("{s:s}", "fileUri", url);
                json_object_set_new(fd, "mimeType", json_string(gm ? gm : "image/jpeg"));
                json_array_append_new(parts, json_pack("{s:o}", "fileData", fd));
            }
        } else if (!strcmp(type, "input_audio")) {
            json_t *a = json_object_get(p, "input_audio");
            const char *d = tg_proto_str(a, "data"), *fmt = tg_proto_str(a, "format");
            if (!d) {
                *err = tg_proto_errf("messages[%zu].content[%zu].input_audio.data: required", i, j);
                return -1;
            }
            snprintf(mime, sizeof(mime), "audio/%s", fmt ? fmt : "wav");
            json_array_append_new(parts, inline_part(mime, d));
        } else if (!strcmp(type, "file")) {
            const char *fd = tg_proto_str(json_object_get(p, "file"), "file_data");
            if (!fd || !tg_proto_data_url(fd, mime, sizeof(mime), &data)) {
                *err = tg_proto_errf("messages[%zu].content[%zu].file: only file_data (a data: URL) can be sent to "
                                     "this upstream",
                                     i, j);
                return -1;
            }
            json_array_append_new(parts, inline_part(mime, data));
        } else {
            *err = tg_proto_errf("messages[%zu].content[%zu]: unsupported part type '%s'", i, j, type);
            return -1;
        }
    }
    return 0;
}

static void append_content(json_t *contents, const char *role, json_t *parts)
{
    if (!json_array_size(parts)) {
        json_decref(parts);
        return;
    }
    json_t *last = json_array_get(contents, json_array_size(contents) - 1);
    if (last && !strcmp(tg_proto_str(last, "role"), role)) {
        json_array_extend(json_object_get(last, "parts"), parts);
        json_decref(parts);
        return;
    }
    json_array_append_new(contents, json_pack("{s:s,s:o}", "role", role, "parts", parts));
}

static int assistant_parts(const json_t *m, size_t i, json_t *parts, json_t *names, int major, char **err)
{
    json_t *text = tg_proto_content_text(json_object_get(m, "content"), "");
    if (text && json_string_length(text))
        json_array_append_new(parts, json_pack("{s:O}", "text", text));
    json_decref(text);
    json_t *tcs = json_object_get(m, "tool_calls"), *tc;
    size_t k;
    json_array_foreach(tcs, k, tc) {
        json_t *fn = json_object_get(tc, "function");
        const char *name = tg_proto_str(fn, "name"), *args = tg_proto_str(fn, "arguments");
        if (!name) {
            *err = tg_proto_errf("messages[%zu].tool_calls[%zu].function.name: required", i, k);
            return -1;
        }
        json_t *a;
        if (!args || !*args) {
            a = json_object();
        } else {
            json_error_t je;
            a = json_loads(args, JSON_ALLOW_NUL, &je);
            if (!json_is_object(a)) {
                json_decref(a);
                *err = tg_proto_errf("messages[%zu].tool_calls[%zu].function.arguments: must be a JSON object", i, k);
                return -1;
            }
        }
        json_t *part = json_pack("{s:{s:s,s:o}}", "functionCall", "name", name, "args", a);
        const char *sig = tg_proto_str(json_object_get(json_object_get(tc, "extra_content"), "google"), "thought_signature");
        if (sig)
            json_object_set_new(part, "thoughtSignature", json_string(sig));
        else if (k == 0 && major >= 3)
            json_object_set_new(part, "thoughtSignature", json_string(GEMINI_SKIP_SIGNATURE));
        json_array_append_new(parts, part);
        const char *id = tg_proto_str(tc, "id");
        if (id)
            json_object_set_new(names, id, json_string(name));
    }
    return 0;
}

static json_t *function_response(const json_t *m, size_t i, const json_t *names, char **err)
{
    const char *id = tg_proto_str(m, "tool_call_id");
    const char *name = id ? tg_proto_str(names, id) : NULL;
    if (!id) {
        *err = tg_proto_errf("messages[%zu].tool_call_id: required", i);
        return NULL;
    }
    if (!name) {
        *err = tg_proto_errf("messages[%zu].tool_call_id: no earlier tool call has id '%s'", i, id);
        return NULL;
    }
    json_t *text = tg_proto_content_text(json_object_get(m, "content"), "\n");
    if (!text)
        return NULL;
    json_error_t je;
    json_t *v = json_loads(json_string_value(text), 0, &je), *resp;
    if (json_is_object(v)) {
        resp = v;
        json_decref(text);
    } else {
        resp = json_pack("{s:o}", "output", v ? v : text);
        if (v)
            json_decref(text);
    }
    return json_pack("{s:{s:s,s:o}}", "functionResponse", "name", name, "response", resp);
}

json_t *tg_proto_chat_to_gemini_req(const json_t *chat, const char *model, char **err)
{
    int major = gemini_major(model);
    json_t *contents = json_array(), *sys = json_array(), *names = json_object();
    json_t *out = NULL;
    json_t *list = json_object_get(chat, "messages");
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m) {
        const char *role = tg_proto_str(m, "role");
        json_t *parts = json_array();
        if (!strcmp(role, "system") || !strcmp(role, "developer")) {
            if (user_parts(json_object_get(m, "content"), i, parts, err) < 0)
                goto fail_parts;
            json_array_extend(sys, parts);
            json_decref(parts);
        } else if (!strcmp(role, "user")) {
            if (user_parts(json_object_get(m, "content"), i, parts, err) < 0)
                goto fail_parts;
            append_content(contents, "user", parts);
        } else if (!strcmp(role, "assistant")) {
            if (assistant_parts(m, i, parts, names, major, err) < 0)
                goto fail_parts;
            append_content(contents, "model", parts);
        } else if (!strcmp(role, "tool")) {
            json_t *fr = function_response(m, i, names, err);
            if (!fr)
                goto fail_parts;
            json_array_append_new(parts, fr);
            append_content(contents, "user", parts);
        } else {
            *err = tg_proto_errf("messages[%zu].role: '%s' cannot be translated", i, role);
            goto fail_parts;
        }
        continue;
    fail_parts:
        json_decref(parts);
        goto fail;
    }
    out = json_pack("{s:O}", "contents", contents);
    if (json_array_size(sys))
        json_object_set_new(out, "systemInstruction", json_pack("{s:O}", "parts", sys));

    json_t *tools = json_object_get(chat, "tools"), *t, *decls = json_array();
    json_array_foreach(tools, i, t) {
        const char *type = tg_proto_str(t, "type");
        json_t *fn = json_object_get(t, "function");
        if ((type && strcmp(type, "function")) || !tg_proto_str(fn, "name"))
            continue;
        json_t *d = json_pack("{s:O}", "name", json_object_get(fn, "name"));
        tg_proto_copy(d, "description", fn, "description");
        json_t *params = json_object_get(fn, "parameters");
        json_t *c = gemini_schema(params);
        if (c && json_object_size(json_object_get(c, "properties")))
            json_object_set(d, "parameters", c);
        json_decref(c);
        json_array_append_new(decls, d);
    }
    if (json_array_size(decls)) {
        json_object_set_new(out, "tools", json_pack("[{s:O}]", "functionDeclarations", decls));
        json_t *tc = json_object_get(chat, "tool_choice");
        json_t *fcc = NULL;
        if (json_is_string(tc)) {
            const char *v = json_string_value(tc);
            if (!strcmp(v, "none"))
                fcc = json_pack("{s:s}", "mode", "NONE");
            else if (!strcmp(v, "required"))
                fcc = json_pack("{s:s}", "mode", "ANY");
        } else if (json_is_object(tc) && tg_proto_str(json_object_get(tc, "function"), "name")) {
            fcc = json_pack("{s:s,s:[s]}", "mode", "ANY", "allowedFunctionNames",
                            tg_proto_str(json_object_get(tc, "function"), "name"));
        }
        if (fcc)
            json_object_set_new(out, "toolConfig", json_pack("{s:o}", "functionCallingConfig", fcc));
    }
    json_decref(decls);

    json_t *gc = json_object();
    json_t *mt = json_object_get(chat, "max_completion_tokens");
    if (!json_is_integer(mt))
        mt = json_object_get(chat, "max_tokens");
    if (json_is_integer(mt))
        json_object_set(gc, "maxOutputTokens", mt);
    tg_proto_copy(gc, "temperature", chat, "temperature");
    tg_proto_copy(gc, "topP", chat, "top_p");
    tg_proto_copy(gc, "topK", json_object_get(chat, "_tg"), "top_k");
    tg_proto_copy(gc, "presencePenalty", chat, "presence_penalty");
    tg_proto_copy(gc, "frequencyPenalty", chat, "frequency_penalty");
    tg_proto_copy(gc, "seed", chat, "seed");
    json_t *stop = json_object_get(chat, "stop");
    if (json_is_string(stop))
        json_object_set_new(gc, "stopSequences", json_pack("[O]", stop));
    else if (json_is_array(stop) && json_array_size(stop))
        json_object_set(gc, "stopSequences", stop);
    json_t *rf = json_object_get(chat, "response_format");
    const char *rft = tg_proto_str(rf, "type");
    if (rft && (!strcmp(rft, "json_object") || !strcmp(rft, "json_schema"))) {
        json_object_set_new(gc, "responseMimeType", json_string("application/json"));
        json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
        json_t *c = gemini_schema(schema);
        if (c)
            json_object_set_new(gc, "responseSchema", c);
    }
    if (json_object_size(gc))
        json_object_set(out, "generationConfig", gc);
    json_decref(gc);
    json_decref(contents);
    json_decref(sys);
    json_decref(names);
    return out;
fail:
    json_decref(contents);
    json_decref(sys);
    json_decref(names);
    json_decref(out);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Answers */

static uint64_t count_of(const json_t *um, const char *key)
{
    json_t *v = json_object_get(um, key);
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static void gemini_usage(const json_t *um, tg_proto_usage_t *u, uint64_t *reasoning)
{
    if (!json_is_object(um))
        return;
    u->prompt_tokens = count_of(um, "promptTokenCount") + count_of(um, "toolUsePromptTokenCount");
    u->completion_tokens = count_of(um, "candidatesTokenCount") + count_of(um, "thoughtsTokenCount");
    u->cached_tokens = count_of(um, "cachedContentTokenCount");
    *reasoning = count_of(um, "thoughtsTokenCount");
    u->seen = 1;
}

static json_t *tool_call_of(const json_t *part, const json_t *fc)
{
    char gen[64];
    const char *id = tg_proto_str(fc, "id");
    if (!id) {
        tg_proto_random_id(gen, sizeof(gen), "call_");
        id = gen;
    }
    json_t *args = json_object_get(fc, "args");
    char *a = json_is_object(args) ? tg_proto_dump(args, NULL) : strdup("{}");
    const char *name = tg_proto_str(fc, "name");
    json_t *tc =
        a ? json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", id, "type", "function", "function", "name", name ? name : "", "arguments", a)
          : NULL;
    free(a);
    const char *sig = tg_proto_str(part, "thoughtSignature");
    if (tc && sig)
        json_object_set_new(tc, "extra_content", json_pack("{s:{s:s}}", "google", "thought_signature", sig));
    return tc;
}

json_t *tg_proto_gemini_to_chat_resp(const json_t *resp, char **err)
{
    json_t *cands = json_object_get(resp, "candidates");
    if (cands && !json_is_array(cands)) {
        *err = tg_proto_errf("upstream answer: candidates: must be an array");
        return NULL;
    }
    json_t *cand = json_array_get(cands, 0);
    json_t *texts = json_array(), *thoughts = json_array(), *tcs = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(json_object_get(cand, "content"), "parts"), i, p) {
        json_t *fc = json_object_get(p, "functionCall");
        if (json_is_object(fc)) {
            json_t *tc = tool_call_of(p, fc);
            if (tc)
                json_array_append_new(tcs, tc);
        } else if (json_is_string(json_object_get(p, "text"))) {
            json_array_append(json_is_true(json_object_get(p, "thought")) ? thoughts : texts, p);
        }
    }
    const char *fr;
    if (!cand && tg_proto_str(json_object_get(resp, "promptFeedback"), "blockReason"))
        fr = "content_filter";
    else
        fr = tg_proto_finish_from_gemini(tg_proto_str(cand, "finishReason"), json_array_size(tcs) > 0);
    json_t *text = tg_proto_content_text(texts, "");
    json_t *msg = json_pack("{s:s,s:o,s:n}", "role", "assistant", "content",
                            json_string_length(text) || !json_array_size(tcs) ? json_incref(text) : json_null(), "refusal");
    json_decref(text);
    if (json_array_size(thoughts))
        json_object_set_new(msg, "reasoning_content", tg_proto_content_text(thoughts, ""));
    if (json_array_size(tcs))
        json_object_set(msg, "tool_calls", tcs);
    tg_proto_usage_t u = {0};
    uint64_t reasoning = 0;
    gemini_usage(json_object_get(resp, "usageMetadata"), &u, &reasoning);
    char id[192];
    tg_proto_derive_id(id, sizeof(id), "chatcmpl-", tg_proto_str(resp, "responseId"));
    const char *model = tg_proto_str(resp, "modelVersion");
    json_t *out = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:n,s:s}]}", "id", id, "object", "chat.completion", "created",
                            (json_int_t)time(NULL), "model", model ? model : "", "choices", "index", 0, "message", msg, "logprobs",
                            "finish_reason", fr);
    if (out && u.seen)
        json_object_set_new(out, "usage", tg_proto_chat_usage(&u, reasoning));
    json_decref(texts);
    json_decref(thoughts);
    json_decref(tcs);
    if (!out)
        *err = tg_proto_errf("upstream answer: could not be translated");
    return out;
}

/* ---------------------------------------------------------------------------------------------
 * Stream decoder */

int tg_proto_dec_gemini(tg_proto_stream_t *s, const char *event, json_t *data)
{
    json_t *e = json_object_get(data, "error");
    if (json_is_object(e)) {
        const char *st = tg_proto_str(e, "status");
        tg_proto_hub_error(s, st, tg_proto_str(e, "message"));
        return 0;
    }
    tg_proto_hub_set_ids(s, tg_proto_str(data, "responseId"), tg_proto_str(data, "modelVersion"));
    gemini_usage(json_object_get(data, "usageMetadata"), &s->usage, &s->reasoning_tokens);
    json_t *cands = json_object_get(data, "candidates");
    json_t *cand = json_array_get(cands, 0);
    if (!cand && !json_object_get(data, "usageMetadata") && !json_object_get(data, "promptFeedback"))
        return -1; /* not a GenerateContentResponse */
    tg_proto_hub_start(s);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(json_object_get(cand, "content"), "parts"), i, p) {
        json_t *fc = json_object_get(p, "functionCall");
        if (json_is_object(fc)) {
            const char *sig = tg_proto_str(p, "thoughtSignature");
            json_t *extra = sig ? json_pack("{s:{s:s}}", "google", "thought_signature", sig) : NULL;
            int ord = s->ntools++;
            tg_proto_hub_tool(s, ord, tg_proto_str(fc, "id"), tg_proto_str(fc, "name"), extra);
            json_decref(extra);
            json_t *args = json_object_get(fc, "args");
            size_t n;
            char *a = json_is_object(args) ? tg_proto_dump(args, &n) : (n = 2, strdup("{}"));
            if (a)
                tg_proto_hub_tool_args(s, ord, a, n);
            free(a);
            continue;
        }
        json_t *t = json_object_get(p, "text");
        if (!json_is_string(t))
            continue;
        if (json_is_true(json_object_get(p, "thought")))
            tg_proto_hub_reasoning(s, json_string_value(t), json_string_length(t));
        else
            tg_proto_hub_text(s, json_string_value(t), json_string_length(t));
    }
    const char *fr = tg_proto_str(cand, "finishReason");
    if (fr)
        tg_proto_hub_finish(s, tg_proto_finish_from_gemini(fr, s->ntools > 0));
    else if (!cand && tg_proto_str(json_object_get(data, "promptFeedback"), "blockReason"))
        tg_proto_hub_finish(s, "content_filter");
    return 0;
}
