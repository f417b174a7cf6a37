/* Protocol translation: dispatch between surfaces, the helpers the translators share, the OpenAI
 * chat side of the hub (request finishing, stream decoder and encoder) and the stream plumbing.
 * See proto.h for the design and docs/translation.md for the mapping tables. */
#define TG_PROTO_INTERNAL
#include "worker/proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ---------------------------------------------------------------------------------------------
 * Small helpers */

char *tg_proto_errf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

json_t *tg_proto_parse(const char *body, size_t len, const char *what, char **err)
{
    json_error_t je;
    json_t *j = body ? json_loadb(body, len, JSON_ALLOW_NUL, &je) : NULL;
    if (!j) {
        *err = body ? tg_proto_errf("%s: not valid JSON (%s at offset %d)", what, je.text, je.position)
                    : tg_proto_errf("%s: empty", what);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        *err = tg_proto_errf("%s: must be a JSON object", what);
        return NULL;
    }
    return j;
}

char *tg_proto_dump(const json_t *j, size_t *len)
{
    /* 15 significant digits: every decimal a client or model wrote with up to 15 digits comes out
     * as written (0.7, not 0.69999999999999996) */
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15) | JSON_ENCODE_ANY);
    if (s && len)
        *len = strlen(s);
    return s;
}

const char *tg_proto_str(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

int tg_proto_set(json_t *obj, const char *key, json_t *val)
{
    if (!val)
        return -1;
    return json_object_set_new(obj, key, val);
}

int tg_proto_copy(json_t *dst, const char *dkey, const json_t *src, const char *skey)
{
    json_t *v = json_object_get(src, skey);
    if (!v || json_is_null(v))
        return 0;
    json_object_set(dst, dkey, v);
    return 1;
}

/* A JSON string from bytes that may not be valid UTF-8 (non-ASCII bytes then become '?'). */
json_t *tg_proto_strn(const char *s, size_t n)
{
    json_t *j = json_stringn(s ? s : "", s ? n : 0);
    if (j)
        return j;
    char *c = malloc(n + 1);
    if (!c)
        return NULL;
    for (size_t i = 0; i < n; i++)
        c[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    j = json_stringn(c, n);
    free(c);
    return j;
}

json_t *tg_proto_content_text(const json_t *content, const char *sep)
{
    if (json_is_string(content))
        return json_stringn(json_string_value(content), json_string_length(content));
    if (!json_is_array(content))
        return json_string("");
    size_t total = 0, seplen = strlen(sep), i;
    json_t *part;
    json_array_foreach(content, i, part) {
        json_t *t = json_object_get(part, "text");
        if (!json_is_string(t))
            t = json_object_get(part, "refusal");
        if (json_is_string(t))
            total += json_string_length(t) + seplen;
    }
    char *buf = malloc(total + 1);
    if (!buf)
        return NULL;
    size_t n = 0;
    json_array_foreach(content, i, part) {
        json_t *t = json_object_get(part, "text");
        if (!json_is_string(t))
            t = json_object_get(part, "refusal");
        if (!json_is_string(t))
            continue;
        if (n) {
            memcpy(buf + n, sep, seplen);
            n += seplen;
        }
        memcpy(buf + n, json_string_value(t), json_string_length(t));
        n += json_string_length(t);
    }
    json_t *j = json_stringn(buf, n);
    free(buf);
    return j;
}

void tg_proto_random_id(char *buf, size_t size, const char *prefix)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char r[24];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long long x = (unsigned long long)ts.tv_nsec ^ ((unsigned long long)ts.tv_sec << 20) ^ (uintptr_t)buf;
        for (size_t i = 0; i < sizeof(r); i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            r[i] = (unsigned char)(x >> 33);
        }
    }
    size_t n = (size_t)snprintf(buf, size, "%s", prefix);
    for (size_t i = 0; i < sizeof(r) && n + 1 < size; i++)
        buf[n++] = alnum[r[i] % 62];
    if (n < size)
        buf[n] = '\0';
}

void tg_proto_derive_id(char *buf, size_t size, const char *prefix, const char *upstream)
{
    static const char *const known[] = {"chatcmpl-", "msg_", "resp_", NULL};
    if (!upstream || !*upstream) {
        tg_proto_random_id(buf, size, prefix);
        return;
    }
    for (int i = 0; known[i]; i++) {
        size_t k = strlen(known[i]);
        if (strncmp(upstream, known[i], k) == 0 && upstream[k]) {
            upstream += k;
            break;
        }
    }
    size_t n = (size_t)snprintf(buf, size, "%s", prefix);
    for (; *upstream && n + 1 < size; upstream++) {
        char c = *upstream;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        buf[n++] = ok ? c : '_';
    }
    if (n < size)
        buf[n] = '\0';
}

int tg_proto_data_url(const char *url, char *mime, size_t mime_size, const char **data)
{
    if (!url || strncasecmp(url, "data:", 5) != 0)
        return 0;
    const char *p = url + 5, *comma = strchr(p, ',');
    if (!comma)
        return 0;
    const char *b64 = NULL;
    for (const char *q = p; q + 7 <= comma; q++)
        if (strncasecmp(q, ";base64", 7) == 0 && (q + 7 == comma || q[7] == ';'))
            b64 = q;
    if (!b64)
        return 0;
    const char *semi = memchr(p, ';', (size_t)(comma - p));
    size_t mlen = (size_t)((semi ? semi : comma) - p);
    if (mlen + 1 > mime_size)
        mlen = mime_size - 1;
    memcpy(mime, p, mlen);
    mime[mlen] = '\0';
    if (!mlen)
        snprintf(mime, mime_size, "application/octet-stream");
    *data = comma + 1;
    return 1;
}

const char *tg_proto_guess_mime(const char *url)
{
    static const struct {
        const char *ext, *mime;
    } tab[] = {{".png", "image/png"},
               {".jpg", "image/jpeg"},
               {".jpeg", "image/jpeg"},
               {".gif", "image/gif"},
               {".webp", "image/webp"},
               {".heic", "image/heic"},
               {".heif", "image/heif"},
               {".pdf", "application/pdf"},
               {".mp3", "audio/mpeg"},
               {".wav", "audio/wav"},
               {".flac", "audio/flac"},
               {".mp4", "video/mp4"},
               {".txt", "text/plain"},
               {".md", "text/markdown"},
               {".csv", "text/csv"},
               {".html", "text/html"},
               {NULL, NULL}};
    if (!url)
        return NULL;
    size_t n = strcspn(url, "?#");
    for (int i = 0; tab[i].ext; i++) {
        size_t e = strlen(tab[i].ext);
        if (n > e && strncasecmp(url + n - e, tab[i].ext, e) == 0)
            return tab[i].mime;
    }
    return NULL;
}

int tg_proto_is_reasoning_model(const char *model)
{
    if (!model)
        return 0;
    const char *slash = strrchr(model, '/'); /* "openai/o3" */
    if (slash)
        model = slash + 1;
    if (model[0] == 'o' && model[1] >= '1' && model[1] <= '9')
        return 1;
    return strncmp(model, "gpt-5", 5) == 0 || strstr(model, "codex") != NULL;
}

static uint64_t u64_of(const json_t *v)
{
    if (json_is_integer(v))
        return json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
    if (json_is_real(v))
        return json_real_value(v) > 0 ? (uint64_t)json_real_value(v) : 0;
    return 0;
}

json_t *tg_proto_chat_usage(const tg_proto_usage_t *u, uint64_t reasoning_tokens)
{
    return json_pack("{s:I,s:I,s:I,s:{s:I},s:{s:I}}", "prompt_tokens", (json_int_t)u->prompt_tokens, "completion_tokens",
                     (json_int_t)u->completion_tokens, "total_tokens", (json_int_t)(u->prompt_tokens + u->completion_tokens),
                     "prompt_tokens_details", "cached_tokens", (json_int_t)u->cached_tokens, "completion_tokens_details",
                     "reasoning_tokens", (json_int_t)reasoning_tokens);
}

void tg_proto_usage_from_chat(const json_t *usage, tg_proto_usage_t *u, uint64_t *reasoning_tokens)
{
    if (!json_is_object(usage))
        return;
    u->prompt_tokens = u64_of(json_object_get(usage, "prompt_tokens"));
    u->completion_tokens = u64_of(json_object_get(usage, "completion_tokens"));
    u->cached_tokens = u64_of(json_object_get(json_object_get(usage, "prompt_tokens_details"), "cached_tokens"));
    if (reasoning_tokens)
        *reasoning_tokens = u64_of(json_object_get(json_object_get(usage, "completion_tokens_details"), "reasoning_tokens"));
    u->seen = 1;
}

const char *tg_proto_finish_from_anthropic(const char *r)
{
    if (!r)
        return "stop";
    if (!strcmp(r, "max_tokens") || !strcmp(r, "model_context_window_exceeded"))
        return "length";
    if (!strcmp(r, "tool_use"))
        return "tool_calls";
    if (!strcmp(r, "refusal"))
        return "content_filter";
    return "stop"; /* end_turn, stop_sequence, pause_turn */
}

const char *tg_proto_finish_to_anthropic(const char *f)
{
    if (!f)
        return "end_turn";
    if (!strcmp(f, "length"))
        return "max_tokens";
    if (!strcmp(f, "tool_calls") || !strcmp(f, "function_call"))
        return "tool_use";
    if (!strcmp(f, "content_filter"))
        return "refusal";
    return "end_turn";
}

const char *tg_proto_finish_from_gemini(const char *r, int had_tool_calls)
{
    if (r && !strcmp(r, "MAX_TOKENS"))
        return "length";
    if (r && (!strcmp(r, "SAFETY") || !strcmp(r, "RECITATION") || !strcmp(r, "BLOCKLIST") || !strcmp(r, "PROHIBITED_CONTENT") ||
              !strcmp(r, "SPII") || !strcmp(r, "IMAGE_SAFETY")))
        return "content_filter";
    return had_tool_calls ? "tool_calls" : "stop"; /* STOP, OTHER, MALFORMED_FUNCTION_CALL, ... */
}

const char *tg_proto_error_type_openai(int status)
{
    switch (status) {
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 429:
        return "rate_limit_error";
    default:
        return status >= 500 || status < 400 ? "server_error" : "invalid_request_error";
    }
}

const char *tg_proto_error_type_anthropic(int status)
{
    switch (status) {
    case 401:
        return "authentication_error";
    case 402:
        return "billing_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 503:
    case 529:
        return "overloaded_error";
    case 504:
        return "timeout_error";
    default:
        return status >= 500 || status < 400 ? "api_error" : "invalid_request_error";
    }
}

const char *tg_proto_error_status_gemini(int status)
{
    switch (status) {
    case 400:
        return "INVALID_ARGUMENT";
    case 401:
        return "UNAUTHENTICATED";
    case 403:
        return "PERMISSION_DENIED";
    case 404:
        return "NOT_FOUND";
    case 409:
        return "ABORTED";
    case 429:
        return "RESOURCE_EXHAUSTED";
    case 499:
        return "CANCELLED";
    case 501:
        return "UNIMPLEMENTED";
    case 503:
        return "UNAVAILABLE";
    case 504:
        return "DEADLINE_EXCEEDED";
    default:
        return status >= 500 || status < 400 ? "INTERNAL" : "FAILED_PRECONDITION";
    }
}

/* ---------------------------------------------------------------------------------------------
 * Dispatch */

static int is_client(tg_surface_t s)
{
    return s == TG_SURFACE_CHAT || s == TG_SURFACE_RESPONSES || s == TG_SURFACE_MESSAGES;
}

static int is_upstream(tg_surface_t s)
{
    return s == TG_SURFACE_CHAT || s == TG_SURFACE_MESSAGES || s == TG_SURFACE_GEMINI;
}

int tg_proto_supported(tg_surface_t from, tg_surface_t to)
{
    if ((unsigned)from > TG_SURFACE_GEMINI || (unsigned)to > TG_SURFACE_GEMINI)
        return 0;
    if (from == to)
        return 1;
    return is_client(from) && is_upstream(to);
}

static const char *surface_name(tg_surface_t s)
{
    switch (s) {
    case TG_SURFACE_CHAT:
        return "chat";
    case TG_SURFACE_RESPONSES:
        return "responses";
    case TG_SURFACE_MESSAGES:
        return "messages";
    case TG_SURFACE_GEMINI:
        return "gemini";
    }
    return "?";
}

/* The chat hub ready for an OpenAI chat upstream. */
static int chat_req_finish(json_t *hub, tg_surface_t from, const char *model, int stream)
{
    json_object_del(hub, "_tg");
    json_object_set_new(hub, "model", json_string(model));
    if (stream) {
        json_object_set_new(hub, "stream", json_true());
        json_t *so = json_object_get(hub, "stream_options");
        if (!json_is_object(so)) {
            so = json_object();
            json_object_set_new(hub, "stream_options", so);
        }
        json_object_set_new(so, "include_usage", json_true());
    } else {
        json_object_del(hub, "stream");
        json_object_del(hub, "stream_options");
    }
    json_t *mct = json_object_get(hub, "max_completion_tokens");
    if (from != TG_SURFACE_CHAT && mct && !tg_proto_is_reasoning_model(model)) {
        json_object_set(hub, "max_tokens", mct);
        json_object_del(hub, "max_completion_tokens");
    }
    return 0;
}

/* Validates the outline of a chat request (the per-field checks happen where fields are read). */
static int chat_req_check(const json_t *req, char **err)
{
    json_t *msgs = json_object_get(req, "messages");
    if (!json_is_array(msgs)) {
        *err = tg_proto_errf("messages: %s", msgs ? "must be an array" : "required");
        return -1;
    }
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        if (!json_is_object(m)) {
            *err = tg_proto_errf("messages[%zu]: must be an object", i);
            return -1;
        }
        if (!json_is_string(json_object_get(m, "role"))) {
            *err = tg_proto_errf("messages[%zu].role: must be a string", i);
            return -1;
        }
    }
    json_t *n = json_object_get(req, "n");
    if (json_is_integer(n) && json_integer_value(n) > 1) {
        *err = tg_proto_errf("n: only 1 choice can be translated for this upstream");
        return -1;
    }
    return 0;
}

static int gemini_path(char *path, size_t size, const char *model, int stream)
{
    if (!strncmp(model, "models/", 7))
        model += 7;
    size_t n = (size_t)snprintf(path, size, "/v1beta/models/");
    for (const unsigned char *p = (const unsigned char *)model; *p; p++) {
        int ok =
            (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_';
        if (n + 4 >= size)
            return -1;
        if (ok)
            path[n++] = (char)*p;
        else
            n += (size_t)snprintf(path + n, size - n, "%%%02X", *p);
    }
    const char *tail = stream ? ":streamGenerateContent?alt=sse" : ":generateContent";
    if (n + strlen(tail) + 1 > size)
        return -1;
    snprintf(path + n, size - n, "%s", tail);
    return 0;
}

static const char *surface_path(tg_surface_t s)
{
    switch (s) {
    case TG_SURFACE_CHAT:
        return "/v1/chat/completions";
    case TG_SURFACE_RESPONSES:
        return "/v1/responses";
    case TG_SURFACE_MESSAGES:
        return "/v1/messages";
    default:
        return "";
    }
}

int tg_proto_request(tg_surface_t from, tg_surface_t to, const char *body, size_t len, const char *model, int stream,
                     tg_proto_request_t *out, char **err)
{
    memset(out, 0, sizeof(*out));
    *err = NULL;
    if (!tg_proto_supported(from, to)) {
        *err = tg_proto_errf("a %s client cannot be served by a %s upstream", surface_name(from), surface_name(to));
        return -1;
    }
    json_t *req = tg_proto_parse(body, len, "request body", err);
    if (!req)
        return -1;
    if (!model || !*model)
        model = tg_proto_str(req, "model");
    if (!model || !*model) {
        json_decref(req);
        *err = tg_proto_errf("model: required");
        return -1;
    }
    int rc = -1;
    json_t *hub = NULL, *up = NULL;
    if (to == TG_SURFACE_GEMINI ? gemini_path(out->path, sizeof(out->path), model, stream)
                                : (snprintf(out->path, sizeof(out->path), "%s", surface_path(to)), 0)) {
        *err = tg_proto_errf("model: name too long");
        goto done;
    }
    if (from == to) { /* passthrough: the body goes as it came */
        out->body = malloc(len ? len : 1);
        if (!out->body)
            goto done;
        memcpy(out->body, body, len);
        out->len = len;
        rc = 0;
        goto done;
    }
    switch (from) {
    case TG_SURFACE_CHAT:
        if (chat_req_check(req, err) < 0)
            goto done;
        hub = json_incref(req);
        break;
    case TG_SURFACE_MESSAGES:
        hub = tg_proto_messages_to_chat_req(req, err);
        break;
    case TG_SURFACE_RESPONSES:
        hub = tg_proto_responses_to_chat_req(req, err);
        break;
    default:
        break;
    }
    if (!hub)
        goto done;
    switch (to) {
    case TG_SURFACE_CHAT:
        chat_req_finish(hub, from, model, stream);
        up = json_incref(hub);
        break;
    case TG_SURFACE_MESSAGES:
        up = tg_proto_chat_to_messages_req(hub, model, stream, err);
        break;
    case TG_SURFACE_GEMINI:
        up = tg_proto_chat_to_gemini_req(hub, model, err);
        break;
    default:
        break;
    }
    if (!up)
        goto done;
    out->body = tg_proto_dump(up, &out->len);
    if (!out->body) {
        *err = tg_proto_errf("request body: could not be encoded");
        goto done;
    }
    rc = 0;
done:
    if (rc < 0 && !*err)
        *err = tg_proto_errf("out of memory");
    if (rc < 0) {
        free(out->body);
        out->body = NULL;
        out->len = 0;
    }
    json_decref(up);
    json_decref(hub);
    json_decref(req);
    return rc;
}

/* The message of an error object of any surface, or NULL. */
static const char *error_message(const json_t *j, const char **type)
{
    if (json_is_array(j))
        j = json_array_get(j, 0); /* Gemini sometimes wraps errors in an array */
    json_t *e = json_object_get(j, "error");
    *type = NULL;
    if (json_is_object(e)) {
        *type = tg_proto_str(e, "type");
        if (!*type)
            *type = tg_proto_str(e, "status");
        if (!*type)
            *type = tg_proto_str(e, "code");
        const char *m = tg_proto_str(e, "message");
        return m ? m : tg_proto_str(j, "message");
    }
    if (json_is_string(e))
        return json_string_value(e);
    return tg_proto_str(j, "message");
}

static json_t *error_body(tg_surface_t from, int status, json_t *msg, const char *code)
{
    switch (from) {
    case TG_SURFACE_MESSAGES:
        return json_pack("{s:s,s:{s:s,s:o}}", "type", "error", "error", "type", tg_proto_error_type_anthropic(status), "message",
                         msg);
    case TG_SURFACE_GEMINI:
        return json_pack("{s:{s:i,s:o,s:s}}", "error", "code", status, "message", msg, "status",
                         tg_proto_error_status_gemini(status));
    default:
        return json_pack("{s:{s:o,s:s,s:n,s:o}}", "error", "message", msg, "type", tg_proto_error_type_openai(status), "param",
                         "code", code ? json_string(code) : json_null());
    }
}

int tg_proto_error(tg_surface_t from, tg_surface_t to, int status, const char *body, size_t len, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    json_error_t je;
    json_t *j = body && len ? json_loadb(body, len, JSON_ALLOW_NUL, &je) : NULL;
    const char *type = NULL, *m = j ? error_message(j, &type) : NULL;
    json_t *msg = NULL;
    if (m && *m) {
        msg = json_string(m);
    } else if (body && len && !j) {
        size_t a = 0, b = len;
        while (a < b && (body[a] == ' ' || body[a] == '\n' || body[a] == '\r' || body[a] == '\t'))
            a++;
        while (b > a && (body[b - 1] == ' ' || body[b - 1] == '\n' || body[b - 1] == '\r' || body[b - 1] == '\t'))
            b--;
        msg = b > a ? tg_proto_strn(body + a, b - a > 512 ? 512 : b - a) : NULL;
    }
    if (!msg) {
        char t[64];
        snprintf(t, sizeof(t), "upstream returned HTTP %d", status);
        msg = json_string(t);
    }
    json_t *e = msg ? error_body(from, status, msg, type) : NULL;
    json_decref(j);
    if (!e)
        return -1;
    *out = tg_proto_dump(e, out_len);
    json_decref(e);
    (void)to;
    return *out ? 0 : -1;
}

/* A 2xx body that is an error object (Anthropic type:error, or "error" with no answer in it). */
static int is_error_answer(const json_t *j)
{
    const char *t = tg_proto_str(j, "type");
    if (t && !strcmp(t, "error"))
        return 1;
    json_t *e = json_object_get(j, "error");
    return e && !json_is_null(e) && !json_object_get(j, "choices") && !json_object_get(j, "candidates") &&
           !json_object_get(j, "content") && !json_object_get(j, "output");
}

int tg_proto_response(tg_surface_t from, tg_surface_t to, const char *body, size_t len, const char *model, char **out,
                      size_t *out_len, tg_proto_usage_t *usage, char **err)
{
    *out = NULL;
    *out_len = 0;
    *err = NULL;
    memset(usage, 0, sizeof(*usage));
    if (!tg_proto_supported(from, to)) {
        *err = tg_proto_errf("a %s client cannot be served by a %s upstream", surface_name(from), surface_name(to));
        return -1;
    }
    json_t *j = tg_proto_parse(body, len, "upstream answer", err);
    if (!j)
        return -1;
    int rc = -1;
    json_t *hub = NULL, *cl = NULL;
    if (is_error_answer(j)) {
        const char *type, *m = error_message(j, &type);
        *err = tg_proto_errf("upstream answer: error: %s", m ? m : "(no message)");
        goto done;
    }
    if (from == to) {
        uint64_t r = 0;
        if (to == TG_SURFACE_CHAT) {
            tg_proto_usage_from_chat(json_object_get(j, "usage"), usage, &r);
        } else if (to == TG_SURFACE_RESPONSES) {
            json_t *u = json_object_get(j, "usage");
            if (json_is_object(u)) {
                usage->prompt_tokens = u64_of(json_object_get(u, "input_tokens"));
                usage->completion_tokens = u64_of(json_object_get(u, "output_tokens"));
                usage->cached_tokens = u64_of(json_object_get(json_object_get(u, "input_tokens_details"), "cached_tokens"));
                usage->seen = 1;
            }
        } else {
            json_t *h = to == TG_SURFACE_MESSAGES ? tg_proto_messages_to_chat_resp(j, err) : tg_proto_gemini_to_chat_resp(j, err);
            if (!h)
                goto done;
            tg_proto_usage_from_chat(json_object_get(h, "usage"), usage, &r);
            json_decref(h);
        }
        *out = malloc(len ? len : 1);
        if (!*out)
            goto done;
        memcpy(*out, body, len);
        *out_len = len;
        rc = 0;
        goto done;
    }
    switch (to) {
    case TG_SURFACE_CHAT:
        if (!json_is_array(json_object_get(j, "choices"))) {
            *err = tg_proto_errf("upstream answer: choices: must be an array");
            goto done;
        }
        hub = json_incref(j);
        break;
    case TG_SURFACE_MESSAGES:
        hub = tg_proto_messages_to_chat_resp(j, err);
        break;
    case TG_SURFACE_GEMINI:
        hub = tg_proto_gemini_to_chat_resp(j, err);
        break;
    default:
        break;
    }
    if (!hub)
        goto done;
    tg_proto_usage_from_chat(json_object_get(hub, "usage"), usage, NULL);
    if (model)
        json_object_set_new(hub, "model", json_string(model));
    switch (from) {
    case TG_SURFACE_CHAT:
        cl = json_incref(hub);
        break;
    case TG_SURFACE_MESSAGES:
        cl = tg_proto_chat_to_messages_resp(hub, err);
        break;
    case TG_SURFACE_RESPONSES:
        cl = tg_proto_chat_to_responses_resp(hub, err);
        break;
    default:
        break;
    }
    if (!cl)
        goto done;
    *out = tg_proto_dump(cl, out_len);
    rc = *out ? 0 : -1;
done:
    if (rc < 0 && !*err)
        *err = tg_proto_errf("out of memory");
    json_decref(cl);
    json_decref(hub);
    json_decref(j);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Streams: plumbing */

int tg_proto_map_get(const int *map, size_t len, size_t i)
{
    return i < len ? map[i] : -1;
}

int tg_proto_map_set(int **map, size_t *len, size_t i, int v)
{
    if (i >= 1u << 20)
        return -1;
    if (i >= *len) {
        size_t n = *len ? *len : 8;
        while (n <= i)
            n *= 2;
        int *m = realloc(*map, n * sizeof(int));
        if (!m)
            return -1;
        for (size_t k = *len; k < n; k++)
            m[k] = -1;
        *map = m;
        *len = n;
    }
    (*map)[i] = v;
    return 0;
}

void tg_proto_buf_add(tg_proto_stream_t *s, const char *p, size_t n)
{
    if (s->buf_len + n + 1 > s->buf_cap) {
        size_t c = s->buf_cap ? s->buf_cap : 256;
        while (c < s->buf_len + n + 1)
            c *= 2;
        char *b = realloc(s->buf, c);
        if (!b)
            return;
        s->buf = b;
        s->buf_cap = c;
    }
    memcpy(s->buf + s->buf_len, p, n);
    s->buf_len += n;
    s->buf[s->buf_len] = '\0';
}

const char *tg_proto_client_model(const tg_proto_stream_t *s)
{
    return s->model ? s->model : s->up_model;
}

void tg_proto_emit_raw(tg_proto_stream_t *s, const char *ev, size_t len)
{
    if (s->emit)
        s->emit(s->ud, ev, len);
}

void tg_proto_emit_json(tg_proto_stream_t *s, const char *name, json_t *data)
{
    if (!data)
        return;
    size_t n;
    char *d = tg_proto_dump(data, &n);
    json_decref(data);
    if (!d)
        return;
    char *ev = NULL;
    int len = name ? asprintf(&ev, "event: %s\ndata: %s\n\n", name, d) : asprintf(&ev, "data: %s\n\n", d);
    free(d);
    if (len < 0)
        return;
    tg_proto_emit_raw(s, ev, (size_t)len);
    free(ev);
}

static uint64_t utf8_chars(const char *t, size_t n)
{
    uint64_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)t[i] & 0xC0) != 0x80;
    return c;
}

void tg_proto_hub_set_ids(tg_proto_stream_t *s, const char *upstream_id, const char *upstream_model)
{
    if (!s->id[0]) {
        const char *prefix = s->from == TG_SURFACE_MESSAGES ? "msg_" : s->from == TG_SURFACE_RESPONSES ? "resp_" : "chatcmpl-";
        tg_proto_derive_id(s->id, sizeof(s->id), prefix, upstream_id);
    }
    if (!s->up_model[0] && upstream_model && *upstream_model)
        snprintf(s->up_model, sizeof(s->up_model), "%s", upstream_model);
}

void tg_proto_hub_start(tg_proto_stream_t *s)
{
    if (s->started)
        return;
    tg_proto_hub_set_ids(s, NULL, NULL);
    s->started = 1;
    s->enc->start(s);
}

void tg_proto_hub_text(tg_proto_stream_t *s, const char *t, size_t n)
{
    if (s->closed || s->finished || !n)
        return;
    tg_proto_hub_start(s);
    s->text_chars += utf8_chars(t, n);
    s->enc->text(s, t, n);
}

void tg_proto_hub_reasoning(tg_proto_stream_t *s, const char *t, size_t n)
{
    if (s->closed || s->finished || !n)
        return;
    tg_proto_hub_start(s);
    s->text_chars += utf8_chars(t, n);
    s->enc->reasoning(s, t, n);
}

void tg_proto_hub_tool(tg_proto_stream_t *s, int ord, const char *id, const char *name, const json_t *extra)
{
    if (s->closed || s->finished)
        return;
    tg_proto_hub_start(s);
    char gen[64];
    if (!id || !*id) {
        tg_proto_random_id(gen, sizeof(gen), "call_");
        id = gen;
    }
    s->enc->tool(s, ord, id, name ? name : "", extra);
}

void tg_proto_hub_tool_args(tg_proto_stream_t *s, int ord, const char *a, size_t n)
{
    if (s->closed || s->finished || !n)
        return;
    tg_proto_hub_start(s);
    s->text_chars += utf8_chars(a, n);
    s->enc->tool_args(s, ord, a, n);
}

void tg_proto_hub_finish(tg_proto_stream_t *s, const char *finish)
{
    if (s->closed || s->finished)
        return;
    tg_proto_hub_start(s);
    snprintf(s->finish, sizeof(s->finish), "%s", finish ? finish : "stop");
    s->finished = 1;
    s->enc->finish(s);
}

void tg_proto_hub_close(tg_proto_stream_t *s)
{
    if (s->closed)
        return;
    if (!s->failed)
        tg_proto_hub_start(s);
    s->enc->close(s);
    s->closed = 1;
}

void tg_proto_hub_error(tg_proto_stream_t *s, const char *type, const char *message)
{
    if (s->closed || s->failed)
        return;
    s->failed = 1;
    snprintf(s->err_type, sizeof(s->err_type), "%s", type ? type : "api_error");
    free(s->err_msg);
    s->err_msg = strdup(message ? message : "upstream error");
    s->enc->error(s, s->err_type, s->err_msg ? s->err_msg : "upstream error");
}

/* Splits one SSE event into its event name and its data (data lines joined with '\n'). */
static int sse_split(const char *ev, size_t len, char *name, size_t name_size, char **data, size_t *dlen)
{
    name[0] = '\0';
    *data = NULL;
    *dlen = 0;
    size_t cap = 0;
    const char *p = ev, *end = ev + len;
    while (p < end) {
        const char *line_end = p; /* lines end with CRLF, LF or CR */
        while (line_end < end && *line_end != '\n' && *line_end != '\r')
            line_end++;
        const char *next = line_end;
        if (next < end)
            next += next[0] == '\r' && next + 1 < end && next[1] == '\n' ? 2 : 1;
        size_t n = (size_t)(line_end - p);
        if (n && p[0] != ':') {
            const char *colon = memchr(p, ':', n);
            size_t fl = colon ? (size_t)(colon - p) : n;
            const char *v = colon ? colon + 1 : line_end;
            if (v < line_end && *v == ' ')
                v++;
            size_t vl = (size_t)(line_end - v);
            if (fl == 5 && !memcmp(p, "event", 5)) {
                size_t c = vl < name_size - 1 ? vl : name_size - 1;
                memcpy(name, v, c);
                name[c] = '\0';
            } else if (fl == 4 && !memcmp(p, "data", 4)) {
                size_t need = *dlen + vl + 2;
                if (need > cap) {
                    cap = need * 2;
                    char *d = realloc(*data, cap);
                    if (!d) {
                        free(*data);
                        *data = NULL;
                        return -1;
                    }
                    *data = d;
                }
                if (*dlen)
                    (*data)[(*dlen)++] = '\n';
                memcpy(*data + *dlen, v, vl);
                *dlen += vl;
                (*data)[*dlen] = '\0';
            }
        }
        p = next;
    }
    return 0;
}

/* Passthrough of an OpenAI chat stream: the usage chunk tollgate asked for is hidden from a
 * client that did not. Returns 1 when the event was dropped or rewritten. */
static int chat_passthrough_filter(tg_proto_stream_t *s, json_t *data)
{
    json_t *u = json_object_get(data, "usage");
    if (s->wants_usage || !json_is_object(u))
        return 0;
    json_t *ch = json_object_get(data, "choices");
    if (json_is_array(ch) && json_array_size(ch) == 0)
        return 1;
    json_object_del(data, "usage");
    tg_proto_emit_json(s, NULL, json_incref(data));
    return 1;
}

int tg_proto_stream_event(tg_proto_stream_t *s, const char *ev, size_t len, tg_proto_emit_fn emit, void *ud)
{
    s->emit = emit;
    s->ud = ud;
    char name[96], *data;
    size_t dlen;
    if (sse_split(ev, len, name, sizeof(name), &data, &dlen) < 0)
        return -1;
    int rc = 0;
    json_t *j = NULL;
    if (!data)
        goto out; /* comment, keep-alive or bare event line */
    if (s->to == TG_SURFACE_CHAT && dlen == 6 && !memcmp(data, "[DONE]", 6)) {
        if (s->passthrough) {
            tg_proto_emit_raw(s, ev, len);
            s->closed = 1;
        } else {
            tg_proto_hub_close(s);
        }
        goto out;
    }
    json_error_t je;
    j = json_loadb(data, dlen, JSON_ALLOW_NUL, &je);
    if (!json_is_object(j)) {
        rc = -1;
        goto out;
    }
    if (s->passthrough) {
        rc = s->dec(s, name, j); /* usage and relayed text only: the null encoder emits nothing */
        if (!(s->to == TG_SURFACE_CHAT && chat_passthrough_filter(s, j)))
            tg_proto_emit_raw(s, ev, len);
        goto out;
    }
    if (s->closed)
        goto out;
    rc = s->dec(s, name, j);
out:
    json_decref(j);
    free(data);
    s->emit = NULL;
    s->ud = NULL;
    return rc;
}

void tg_proto_stream_end(tg_proto_stream_t *s, tg_proto_emit_fn emit, void *ud)
{
    s->emit = emit;
    s->ud = ud;
    if (!s->passthrough)
        tg_proto_hub_close(s);
    s->closed = 1;
    s->emit = NULL;
    s->ud = NULL;
}

void tg_proto_stream_usage(const tg_proto_stream_t *s, tg_proto_usage_t *out)
{
    *out = s->usage;
}

uint64_t tg_proto_stream_text_chars(const tg_proto_stream_t *s)
{
    return s->text_chars;
}

tg_proto_stream_t *tg_proto_stream_new(tg_surface_t from, tg_surface_t to, const char *model, int client_wants_usage)
{
    if (!tg_proto_supported(from, to))
        return NULL;
    tg_proto_stream_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->from = from;
    s->to = to;
    s->wants_usage = client_wants_usage;
    s->created = (long long)time(NULL);
    if (model && !(s->model = strdup(model))) {
        free(s);
        return NULL;
    }
    s->passthrough = from == to;
    switch (to) {
    case TG_SURFACE_CHAT:
        s->dec = tg_proto_dec_chat;
        break;
    case TG_SURFACE_MESSAGES:
        s->dec = tg_proto_dec_messages;
        break;
    case TG_SURFACE_GEMINI:
        s->dec = tg_proto_dec_gemini;
        break;
    case TG_SURFACE_RESPONSES:
        s->dec = tg_proto_dec_responses;
        break;
    }
    if (s->passthrough)
        s->enc = &tg_proto_enc_null;
    else
        s->enc = from == TG_SURFACE_MESSAGES    ? &tg_proto_enc_messages
                 : from == TG_SURFACE_RESPONSES ? &tg_proto_enc_responses
                                                : &tg_proto_enc_chat;
    return s;
}

void tg_proto_stream_free(tg_proto_stream_t *s)
{
    if (!s)
        return;
    free(s->model);
    free(s->dmap);
    free(s->omap);
    json_decref(s->items);
    free(s->buf);
    free(s->err_msg);
    free(s);
}

/* ---------------------------------------------------------------------------------------------
 * The null encoder (passthrough: the decoder only gathers usage and counts text) */

static void null_start(tg_proto_stream_t *s)
{
}
static void null_text(tg_proto_stream_t *s, const char *t, size_t n)
{
}
static void null_tool(tg_proto_stream_t *s, int ord, const char *id, const char *name, const json_t *extra)
{
}
static void null_args(tg_proto_stream_t *s, int ord, const char *a, size_t n)
{
}
static void null_void(tg_proto_stream_t *s)
{
}
static void null_error(tg_proto_stream_t *s, const char *type, const char *message)
{
}

const tg_proto_enc_t tg_proto_enc_null = {null_start, null_text, null_text, null_tool, null_args, null_void, null_void, null_error};

/* ---------------------------------------------------------------------------------------------
 * OpenAI chat stream: encoder (the client speaks chat) */

static void chat_chunk(tg_proto_stream_t *s, json_t *delta, const char *finish)
{
    json_t *c = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:n,s:o}]}", "id", s->id, "object", "chat.completion.chunk", "created",
                          (json_int_t)s->created, "model", tg_proto_client_model(s), "choices", "index", 0, "delta", delta,
                          "logprobs", "finish_reason", finish ? json_string(finish) : json_null());
    if (c && s->wants_usage)
        json_object_set_new(c, "usage", json_null());
    tg_proto_emit_json(s, NULL, c);
}

static void chat_enc_start(tg_proto_stream_t *s)
{
    chat_chunk(s, json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL);
}

static void chat_enc_text(tg_proto_stream_t *s, const char *t, size_t n)
{
    chat_chunk(s, json_pack("{s:s%}", "content", t, n), NULL);
}

static void chat_enc_reasoning(tg_proto_stream_t *s, const char *t, size_t n)
{
    chat_chunk(s, json_pack("{s:s%}", "reasoning_content", t, n), NULL);
}

static void chat_enc_tool(tg_proto_stream_t *s, int ord, const char *id, const char *name, const json_t *extra)
{
    json_t *tc = json_pack("{s:i,s:s,s:s,s:{s:s,s:s}}", "index", ord, "id", id, "type", "function", "function", "name", name,
                           "arguments", "");
    if (tc && extra)
        json_object_set(tc, "extra_content", (json_t *)extra);
    chat_chunk(s, json_pack("{s:[o]}", "tool_calls", tc), NULL);
}

static void chat_enc_tool_args(tg_proto_stream_t *s, int ord, const char *a, size_t n)
{
    chat_chunk(s, json_pack("{s:[{s:i,s:{s:s%}}]}", "tool_calls", "index", ord, "function", "arguments", a, n), NULL);
}

static void chat_enc_finish(tg_proto_stream_t *s)
{
    chat_chunk(s, json_object(), s->finish);
}

static void chat_enc_close(tg_proto_stream_t *s)
{
    if (s->wants_usage && !s->failed) {
        json_t *c = json_pack("{s:s,s:s,s:I,s:s,s:[],s:o}", "id", s->id, "object", "chat.completion.chunk", "created",
                              (json_int_t)s->created, "model", tg_proto_client_model(s), "choices", "usage",
                              tg_proto_chat_usage(&s->usage, s->reasoning_tokens));
        tg_proto_emit_json(s, NULL, c);
    }
    static const char done[] = "data: [DONE]\n\n";
    tg_proto_emit_raw(s, done, sizeof(done) - 1);
}

static void chat_enc_error(tg_proto_stream_t *s, const char *type, const char *message)
{
    tg_proto_emit_json(s, NULL, json_pack("{s:{s:s,s:s,s:n,s:n}}", "error", "message", message, "type", type, "param", "code"));
}

const tg_proto_enc_t tg_proto_enc_chat = {chat_enc_start,     chat_enc_text,   chat_enc_reasoning, chat_enc_tool,
                                          chat_enc_tool_args, chat_enc_finish, chat_enc_close,     chat_enc_error};

/* ---------------------------------------------------------------------------------------------
 * OpenAI chat stream: decoder (the upstream speaks chat) */

static void chat_dec_tool_call(tg_proto_stream_t *s, const json_t *tc)
{
    json_t *ix = json_object_get(tc, "index");
    const char *id = tg_proto_str(tc, "id");
    json_t *fn = json_object_get(tc, "function");
    const char *name = tg_proto_str(fn, "name");
    json_t *args = json_object_get(fn, "arguments");
    int ord;
    if (json_is_integer(ix) && json_integer_value(ix) >= 0) {
        size_t i = (size_t)json_integer_value(ix);
        ord = tg_proto_map_get(s->dmap, s->dmap_len, i);
        if (ord < 0) {
            ord = s->ntools++;
            if (tg_proto_map_set(&s->dmap, &s->dmap_len, i, ord) < 0)
                return;
            tg_proto_hub_tool(s, ord, id, name, json_object_get(tc, "extra_content"));
        }
    } else { /* no index: a new id starts a new call */
        if (s->ntools == 0 || (id && strcmp(id, s->last_tool_id))) {
            ord = s->ntools++;
            tg_proto_hub_tool(s, ord, id, name, json_object_get(tc, "extra_content"));
        } else {
            ord = s->ntools - 1;
        }
    }
    if (id)
        snprintf(s->last_tool_id, sizeof(s->last_tool_id), "%s", id);
    if (json_is_string(args))
        tg_proto_hub_tool_args(s, ord, json_string_value(args), json_string_length(args));
}

int tg_proto_dec_chat(tg_proto_stream_t *s, const char *event, json_t *data)
{
    json_t *e = json_object_get(data, "error");
    if (e && !json_is_null(e)) {
        const char *type, *m = error_message(data, &type);
        tg_proto_hub_error(s, type, m);
        return 0;
    }
    tg_proto_hub_set_ids(s, tg_proto_str(data, "id"), tg_proto_str(data, "model"));
    if (!s->started && json_is_integer(json_object_get(data, "created")))
        s->created = json_integer_value(json_object_get(data, "created"));
    json_t *u = json_object_get(data, "usage");
    if (json_is_object(u))
        tg_proto_usage_from_chat(u, &s->usage, &s->reasoning_tokens);
    json_t *choices = json_object_get(data, "choices");
    if (!json_is_array(choices)) {
        if (!json_is_object(u))
            return -1; /* neither a chunk nor a usage report */
        return 0;
    }
    size_t i;
    json_t *c;
    json_array_foreach(choices, i, c) {
        json_t *ix = json_object_get(c, "index");
        if (json_is_integer(ix) && json_integer_value(ix) != 0)
            continue; /* only the first choice is translated */
        tg_proto_hub_start(s);
        json_t *d = json_object_get(c, "delta");
        json_t *r = json_object_get(d, "reasoning_content");
        if (!json_is_string(r))
            r = json_object_get(d, "reasoning");
        if (json_is_string(r))
            tg_proto_hub_reasoning(s, json_string_value(r), json_string_length(r));
        json_t *t = json_object_get(d, "content");
        if (json_is_string(t))
            tg_proto_hub_text(s, json_string_value(t), json_string_length(t));
        t = json_object_get(d, "refusal");
        if (json_is_string(t))
            tg_proto_hub_text(s, json_string_value(t), json_string_length(t));
        json_t *tcs = json_object_get(d, "tool_calls"), *tc;
        size_t k;
        json_array_foreach(tcs, k, tc) {
            chat_dec_tool_call(s, tc);
        }
        const char *fr = tg_proto_str(c, "finish_reason");
        if (fr)
            tg_proto_hub_finish(s, !strcmp(fr, "function_call") ? "tool_calls" : fr);
    }
    return 0;
}
