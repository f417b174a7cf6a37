/* Protocol translators: serve a client of one API surface (OpenAI chat completions, OpenAI
 * Responses, Anthropic messages) from an upstream that speaks another (OpenAI chat, Anthropic
 * messages, Gemini generateContent). Pure functions over bodies and SSE events: no I/O, no
 * global state, safe to call from any worker thread. The mapping tables (fields, roles, content
 * parts, tools, stop reasons, usage, and what is dropped) are in docs/translation.md.
 *
 * Design: OpenAI chat is the hub. A request is first read into an OpenAI chat request (JSON
 * tree), then written out for the upstream; an answer is read into an OpenAI chat completion,
 * then written for the client; a stream is decoded into hub operations (start, text, tool call,
 * tool arguments, finish, close) that an encoder of the client's surface turns into SSE events.
 * Each supported pair has chat on one side, so each pair is one step; other combinations of a
 * client in {chat, responses, messages} and an upstream in {chat, messages, gemini} are two.
 *
 * Usage convention (tg_proto_usage_t): prompt_tokens counts every input token, cached ones
 * included (OpenAI's convention); cached_tokens is the part read from a prompt cache. Anthropic's
 * input_tokens + cache_read_input_tokens + cache_creation_input_tokens make prompt_tokens there;
 * completion_tokens includes reasoning/thinking tokens. */
#ifndef TG_PROTO_H
#define TG_PROTO_H

#include <stddef.h>
#include <stdint.h>

typedef enum { TG_SURFACE_CHAT = 0, TG_SURFACE_RESPONSES, TG_SURFACE_MESSAGES, TG_SURFACE_GEMINI } tg_surface_t;

typedef struct {
    uint64_t prompt_tokens, completion_tokens, cached_tokens;
    int seen; /* 1 once the upstream reported any usage */
} tg_proto_usage_t;

typedef struct {
    char *body;
    size_t len;     /* malloc'd request body for the upstream */
    char path[512]; /* upstream path: "/v1/chat/completions", "/v1/messages",
                       "/v1beta/models/MODEL:generateContent" or ":streamGenerateContent?alt=sse" */
} tg_proto_request_t;

/** 1 when a client on surface FROM can be served by an upstream speaking TO (passthrough when equal).
 * Translated: FROM in {CHAT, RESPONSES, MESSAGES} × TO in {CHAT, MESSAGES, GEMINI}. */
int tg_proto_supported(tg_surface_t from, tg_surface_t to);

/** Translates a client request body of surface FROM for an upstream of surface TO, with MODEL
 * (already mapped) as the model and STREAM as requested. 0, or -1 with *err (malloc'd, names the
 * field: "messages[2].content[0]: unsupported part type 'x'"). For a Gemini upstream the model
 * goes into the path. A streaming request to an OpenAI chat upstream always asks for the usage
 * chunk (stream_options.include_usage). When FROM == TO the body is copied unchanged (model
 * included: passthrough rewriting stays with the caller). */
int tg_proto_request(tg_surface_t from, tg_surface_t to, const char *body, size_t len, const char *model, int stream,
                     tg_proto_request_t *out, char **err);

/** Translates a non-streaming upstream answer (surface TO) into the client's surface FROM; fills
 * *usage (zeroed, seen = 0, when the answer has none). *out malloc'd. MODEL, when not NULL, is the
 * model named in the client's answer; NULL keeps the upstream's. Upstream error bodies (non-2xx)
 * are translated with tg_proto_error instead; a 2xx body that is an error object gives -1. */
int tg_proto_response(tg_surface_t from, tg_surface_t to, const char *body, size_t len, const char *model, char **out,
                      size_t *out_len, tg_proto_usage_t *usage, char **err);

/** An upstream error body of surface TO as an error body of surface FROM with the same message
 * (status kept by the caller). A body that is not JSON becomes the message (cut to 512 bytes);
 * an empty one becomes "upstream returned HTTP STATUS". 0, or -1 on allocation failure. */
int tg_proto_error(tg_surface_t from, tg_surface_t to, int status, const char *body, size_t len, char **out, size_t *out_len);

/** Streaming translation: feed each complete upstream SSE event (the raw bytes of one event,
 * "event: x\ndata: {...}\n\n" or "data: {...}\n\n"; CRLF and CR accepted); EMIT receives whole client
 * SSE events (already framed with the trailing blank line). */
typedef void (*tg_proto_emit_fn)(void *ud, const char *ev, size_t len);
typedef struct tg_proto_stream tg_proto_stream_t;

/** A stream translator for a client on FROM fed by an upstream on TO. MODEL: the model named in
 * the client's events (NULL: the upstream's). CLIENT_WANTS_USAGE: an OpenAI chat client asked for
 * stream_options.include_usage (otherwise the usage chunk is not sent). NULL if unsupported.
 * FROM == TO gives a passthrough stream: events are relayed byte for byte (except that an OpenAI
 * chat usage chunk is hidden from a client that did not ask for it), usage and relayed text are
 * still measured, and tg_proto_stream_end adds nothing (the upstream's own ending is relayed). */
tg_proto_stream_t *tg_proto_stream_new(tg_surface_t from, tg_surface_t to, const char *model, int client_wants_usage);
/** Feeds one upstream event. 0, or -1 on a malformed event (caller ends the stream). Comments,
 * pings and unknown event types are ignored. An upstream error event is relayed as the client
 * surface's error event and returns 0. */
int tg_proto_stream_event(tg_proto_stream_t *s, const char *ev, size_t len, tg_proto_emit_fn emit, void *ud);
/** The upstream ended (cleanly or not): emits the closing events the client's surface requires
 * ([DONE]; message_delta+message_stop; response.completed) if not yet sent. Without a finish
 * reason from the upstream the ending says so: no finish chunk (chat), stop_reason null
 * (messages), response.incomplete (responses). After an upstream error event: [DONE] (chat),
 * nothing (messages, whose error event ends the stream), nothing (responses: response.failed
 * went out with the error). Idempotent. */
void tg_proto_stream_end(tg_proto_stream_t *s, tg_proto_emit_fn emit, void *ud);
/** Usage reported by the upstream so far (prompt tokens usually arrive first, completion last). */
void tg_proto_stream_usage(const tg_proto_stream_t *s, tg_proto_usage_t *out);
/** Characters (UTF-8 code points) of generated text relayed so far: text, reasoning and tool
 * arguments (for billing an aborted stream by estimate). */
uint64_t tg_proto_stream_text_chars(const tg_proto_stream_t *s);
void tg_proto_stream_free(tg_proto_stream_t *s);

#ifdef TG_PROTO_INTERNAL
/* ---- Shared between proto.c and proto_*.c only; not part of the interface. ---- */
#include <jansson.h>

/* Errors: a malloc'd message, printf-style. */
char *tg_proto_errf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* JSON helpers. */
json_t *tg_proto_parse(const char *body, size_t len, const char *what, char **err);    /* an object, or NULL + *err */
char *tg_proto_dump(const json_t *j, size_t *len);                                     /* compact, malloc'd */
const char *tg_proto_str(const json_t *obj, const char *key);                          /* string member or NULL */
int tg_proto_set(json_t *obj, const char *key, json_t *val);                           /* steals VAL; NULL ignored */
int tg_proto_copy(json_t *dst, const char *dkey, const json_t *src, const char *skey); /* if present and not null */
json_t *tg_proto_strn(const char *s, size_t n);
/* Text of an OpenAI-style content value (string, or array of parts with "text"), parts joined by
 * SEP; NULL content gives "". New reference. */
json_t *tg_proto_content_text(const json_t *content, const char *sep);

/* Ids. */
void tg_proto_random_id(char *buf, size_t size, const char *prefix);
/* PREFIX + UPSTREAM with its own well-known prefix removed, or a random id when UPSTREAM is NULL. */
void tg_proto_derive_id(char *buf, size_t size, const char *prefix, const char *upstream);

/* "data:MIME;base64,DATA" URLs: 1 and *mime (NUL-terminated copy) and *data (into URL), else 0. */
int tg_proto_data_url(const char *url, char *mime, size_t mime_size, const char **data);
const char *tg_proto_guess_mime(const char *url); /* from the extension, or NULL */
/* 1 for model names that take max_completion_tokens (o-series, gpt-5) rather than max_tokens. */
int tg_proto_is_reasoning_model(const char *model);

/* Usage in OpenAI chat shape, and back. */
json_t *tg_proto_chat_usage(const tg_proto_usage_t *u, uint64_t reasoning_tokens);
void tg_proto_usage_from_chat(const json_t *usage, tg_proto_usage_t *u, uint64_t *reasoning_tokens);

/* Stop reasons (OpenAI chat finish_reason is the hub vocabulary). */
const char *tg_proto_finish_from_anthropic(const char *stop_reason);
const char *tg_proto_finish_to_anthropic(const char *finish);
const char *tg_proto_finish_from_gemini(const char *reason, int had_tool_calls);

/* Request hub: client → chat, chat → upstream. */
json_t *tg_proto_messages_to_chat_req(const json_t *req, char **err);  /* proto_anthropic.c */
json_t *tg_proto_responses_to_chat_req(const json_t *req, char **err); /* proto_responses.c */
json_t *tg_proto_chat_to_messages_req(const json_t *chat, const char *model, int stream, char **err);
json_t *tg_proto_chat_to_gemini_req(const json_t *chat, const char *model, char **err); /* proto_gemini.c */

/* Response hub: upstream → chat completion, chat completion → client. */
json_t *tg_proto_messages_to_chat_resp(const json_t *resp, char **err);
json_t *tg_proto_gemini_to_chat_resp(const json_t *resp, char **err);
json_t *tg_proto_chat_to_messages_resp(const json_t *chat, char **err);
json_t *tg_proto_chat_to_responses_resp(const json_t *chat, char **err);

/* Error bodies: reading one surface's message, writing another's. */
const char *tg_proto_error_type_openai(int status);
const char *tg_proto_error_type_anthropic(int status);
const char *tg_proto_error_status_gemini(int status);

/* Streams. The decoder of the upstream surface calls the tg_proto_hub_* operations; the encoder
 * of the client surface turns them into events. */
typedef struct tg_proto_enc {
    void (*start)(tg_proto_stream_t *s);
    void (*text)(tg_proto_stream_t *s, const char *t, size_t n);
    void (*reasoning)(tg_proto_stream_t *s, const char *t, size_t n);
    void (*tool)(tg_proto_stream_t *s, int ord, const char *id, const char *name, const json_t *extra);
    void (*tool_args)(tg_proto_stream_t *s, int ord, const char *a, size_t n);
    void (*finish)(tg_proto_stream_t *s);
    void (*close)(tg_proto_stream_t *s);
    void (*error)(tg_proto_stream_t *s, const char *type, const char *message);
} tg_proto_enc_t;

/* Decoder: EVENT is the SSE event name ("" when none), DATA the parsed data (an object). */
typedef int (*tg_proto_dec_fn)(tg_proto_stream_t *s, const char *event, json_t *data);

struct tg_proto_stream {
    tg_surface_t from, to;
    const tg_proto_enc_t *enc;
    tg_proto_dec_fn dec;
    char *model; /* client-visible model, or NULL: the upstream's */
    int wants_usage;
    tg_proto_emit_fn emit; /* valid during one tg_proto_stream_event / _end call */
    void *ud;
    char id[192];       /* the client-visible id */
    char up_model[192]; /* the model the upstream named */
    long long created;
    unsigned started : 1, finished : 1, closed : 1, failed : 1, passthrough : 1;
    char finish[32]; /* hub finish_reason once finished */
    tg_proto_usage_t usage;
    uint64_t reasoning_tokens;
    uint64_t text_chars;
    int ntools; /* tool calls started (their ordinals are 0..ntools-1) */
    /* decoder state */
    int *dmap; /* anthropic: block index → ordinal (>= 0) or kind (< 0); chat: chat index → ordinal */
    size_t dmap_len;
    char last_tool_id[192];
    uint64_t a_in, a_cache_read, a_cache_write; /* anthropic usage parts (prompt = their sum) */
    /* encoder state */
    int cur_kind;  /* kind of the open block/item (0 none) */
    int cur_index; /* its index */
    int next_index;
    int *omap; /* ordinal → block/output index */
    size_t omap_len;
    uint64_t seq;  /* responses: sequence_number */
    json_t *items; /* responses: output items so far */
    char *buf;     /* responses: text of the open message item */
    size_t buf_len, buf_cap;
    char err_type[64];
    char *err_msg;
};

/* Hub operations (proto.c). */
void tg_proto_hub_start(tg_proto_stream_t *s);
void tg_proto_hub_text(tg_proto_stream_t *s, const char *t, size_t n);
void tg_proto_hub_reasoning(tg_proto_stream_t *s, const char *t, size_t n);
void tg_proto_hub_tool(tg_proto_stream_t *s, int ord, const char *id, const char *name, const json_t *extra);
void tg_proto_hub_tool_args(tg_proto_stream_t *s, int ord, const char *a, size_t n);
void tg_proto_hub_finish(tg_proto_stream_t *s, const char *finish);
void tg_proto_hub_close(tg_proto_stream_t *s);
void tg_proto_hub_error(tg_proto_stream_t *s, const char *type, const char *message);
void tg_proto_hub_set_ids(tg_proto_stream_t *s, const char *upstream_id, const char *upstream_model);

/* Emits one SSE event: "event: NAME\n" when NAME is not NULL, then "data: JSON\n\n". Steals DATA. */
void tg_proto_emit_json(tg_proto_stream_t *s, const char *name, json_t *data);
void tg_proto_emit_raw(tg_proto_stream_t *s, const char *ev, size_t len);
/* Maps (growable int arrays, -1 = unset). */
int tg_proto_map_get(const int *map, size_t len, size_t i);
int tg_proto_map_set(int **map, size_t *len, size_t i, int v);
/* The model for client events. */
const char *tg_proto_client_model(const tg_proto_stream_t *s);
/* Appends to s->buf. */
void tg_proto_buf_add(tg_proto_stream_t *s, const char *p, size_t n);

/* Encoders and decoders of each surface. */
extern const tg_proto_enc_t tg_proto_enc_chat, tg_proto_enc_messages, tg_proto_enc_responses, tg_proto_enc_null;
int tg_proto_dec_chat(tg_proto_stream_t *s, const char *event, json_t *data);
int tg_proto_dec_messages(tg_proto_stream_t *s, const char *event, json_t *data);
int tg_proto_dec_gemini(tg_proto_stream_t *s, const char *event, json_t *data);
int tg_proto_dec_responses(tg_proto_stream_t *s, const char *event, json_t *data); /* usage only */
#endif                                                                             /* TG_PROTO_INTERNAL */

#endif
