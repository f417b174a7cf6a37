/* tests/unit/test_proto_gemini.c: OpenAI chat → Gemini generateContent (worker/proto_gemini.c):
 * requests (contents, systemInstruction, tools with schemas reduced for Gemini, thought
 * signatures, generationConfig), answers, SSE streams as Gemini sends them (CRLF framing, whole
 * function calls, cumulative usage), errors; and the two-step pairs through the chat hub
 * (Anthropic client and Responses client on a Gemini upstream). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "worker/proto.h"

#include "proto_test_util.h"

#define GEM TG_SURFACE_GEMINI
#define RESP TG_SURFACE_RESPONSES

static void test_chat_to_gemini_request(void **state)
{
    char path[512];
    json_t *j = xreq(CHAT, GEM,
                     "{\"model\":\"gpt-4o\",\"messages\":["
                     "{\"role\":\"system\",\"content\":\"You are a weather bot.\"},"
                     "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"Use metric.\"}]},"
                     "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather here?\"},"
                     "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/webp;base64,UklGRg==\"}},"
                     "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://example.com/sky.PNG?x=1\"}},"
                     "{\"type\":\"input_audio\",\"input_audio\":{\"data\":\"UklGRiQ=\",\"format\":\"wav\"}},"
                     "{\"type\":\"file\",\"file\":{\"file_data\":\"data:application/pdf;base64,JVBE\",\"filename\":\"a.pdf\"}}]},"
                     "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
                     "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{"
                     "\\\"city\\\":\\\"Paris\\\"}\"}},"
                     "{\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":\"{}\"}}]},"
                     "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"{\\\"temp\\\":18,\\\"sky\\\":\\\"clear\\\"}\"},"
                     "{\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content\":\"09:00\"},"
                     "{\"role\":\"assistant\",\"content\":\"18C and clear.\"},"
                     "{\"role\":\"user\",\"content\":\"Thanks\"}],"
                     "\"max_completion_tokens\":300,\"temperature\":0.2,\"top_p\":0.95,\"stop\":[\"END\"],\"seed\":42,"
                     "\"presence_penalty\":0.1,\"frequency_penalty\":0.3,\"logprobs\":true,\"user\":\"u1\","
                     "\"stream_options\":{\"include_usage\":true}}",
                     "models/gemini-2.5-flash", 0, path);
    assert_string_equal(path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_jstr(j, "systemInstruction.parts.0.text", "You are a weather bot.");
    assert_jstr(j, "systemInstruction.parts.1.text", "Use metric.");
    json_t *c = jp(j, "contents");
    assert_int_equal(json_array_size(c), 5);
    assert_jstr(c, "0.role", "user");
    assert_jstr(c, "0.parts.0.text", "Weather here?");
    assert_jstr(c, "0.parts.1.inlineData.mimeType", "image/webp");
    assert_jstr(c, "0.parts.1.inlineData.data", "UklGRg==");
    assert_jstr(c, "0.parts.2.fileData.fileUri", "https://example.com/sky.PNG?x=1");
    assert_jstr(c, "0.parts.2.fileData.mimeType", "image/png");
    assert_jstr(c, "0.parts.3.inlineData.mimeType", "audio/wav");
    assert_jstr(c, "0.parts.4.inlineData.mimeType", "application/pdf");
    assert_jstr(c, "1.role", "model");
    assert_jstr(c, "1.parts.0.functionCall.name", "get_weather");
    assert_jstr(c, "1.parts.0.functionCall.args.city", "Paris");
    assert_jabsent(c, "1.parts.0.thoughtSignature"); /* Gemini 2.5 does not require one */
    assert_jstr(c, "1.parts.1.functionCall.name", "get_time");
    /* both answers in one user turn, in call order, named by the call they answer */
    assert_jstr(c, "2.role", "user");
    assert_int_equal(json_array_size(jp(c, "2.parts")), 2);
    assert_jstr(c, "2.parts.0.functionResponse.name", "get_weather");
    assert_jint(c, "2.parts.0.functionResponse.response.temp", 18);
    assert_jstr(c, "2.parts.1.functionResponse.name", "get_time");
    assert_jstr(c, "2.parts.1.functionResponse.response.output", "09:00");
    assert_jstr(c, "3.role", "model");
    assert_jstr(c, "3.parts.0.text", "18C and clear.");
    assert_jstr(c, "4.parts.0.text", "Thanks");
    json_t *g = jp(j, "generationConfig");
    assert_jint(g, "maxOutputTokens", 300);
    assert_true(json_real_value(jp(g, "temperature")) == 0.2);
    assert_true(json_real_value(jp(g, "topP")) == 0.95);
    assert_jstr(g, "stopSequences.0", "END");
    assert_jint(g, "seed", 42);
    assert_true(json_real_value(jp(g, "presencePenalty")) == 0.1);
    assert_true(json_real_value(jp(g, "frequencyPenalty")) == 0.3);
    assert_jabsent(j, "model");
    assert_jabsent(j, "messages");
    assert_jabsent(j, "logprobs");
    assert_jabsent(j, "user");
    assert_jabsent(j, "tools");
    json_decref(j);

    j = xreq(CHAT, GEM, "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"stream\":true}",
             "gemini-2.0-flash", 1, path);
    assert_string_equal(path, "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse");
    assert_jabsent(j, "generationConfig");
    assert_jabsent(j, "systemInstruction");
    json_decref(j);
    /* odd characters in a model name are escaped in the path */
    j = xreq(CHAT, GEM, "{\"model\":\"x\",\"messages\":[]}", "tuned/a b?", 0, path);
    assert_string_equal(path, "/v1beta/models/tuned%2Fa%20b%3F:generateContent");
    json_decref(j);
}

static void test_chat_to_gemini_tools(void **state)
{
    json_t *j =
        xreq(CHAT, GEM,
             "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"Go\"}],\"tools\":["
             "{\"type\":\"function\",\"function\":{\"name\":\"search\",\"description\":\"Search the web\",\"strict\":true,"
             "\"parameters\":{\"$schema\":\"http://json-schema.org/draft-07/schema#\",\"type\":\"object\","
             "\"additionalProperties\":false,\"properties\":{"
             "\"query\":{\"type\":\"string\",\"description\":\"Terms\",\"minLength\":1,\"format\":\"uri\",\"default\":\"x\"},"
             "\"when\":{\"type\":\"string\",\"format\":\"date-time\"},"
             "\"limit\":{\"type\":[\"integer\",\"null\"],\"minimum\":1,\"exclusiveMaximum\":100},"
             "\"mode\":{\"const\":\"fast\"},"
             "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"enum\":[\"a\",\"b\"]},\"uniqueItems\":true},"
             "\"filter\":{\"$ref\":\"#/$defs/Filter\"},"
             "\"maybe\":{\"anyOf\":[{\"type\":\"number\"},{\"type\":\"null\"}]},"
             "\"either\":{\"oneOf\":[{\"type\":\"string\"},{\"type\":\"integer\"}]},"
             "\"levels\":{\"enum\":[1,2,3]}},"
             "\"required\":[\"query\",\"ghost\"],"
             "\"$defs\":{\"Filter\":{\"type\":\"object\",\"title\":\"Filter\",\"properties\":{\"site\":{\"type\":\"string\"}},"
             "\"patternProperties\":{\"^x\":{}}}}}}},"
             "{\"type\":\"function\",\"function\":{\"name\":\"now\",\"parameters\":{\"type\":\"object\",\"properties\":{}}}},"
             "{\"type\":\"custom\",\"custom\":{\"name\":\"free\"}}],"
             "\"tool_choice\":\"required\",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"out\","
             "\"strict\":true,\"schema\":{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{\"a\":{\"type\":"
             "\"string\"}},\"required\":[\"a\"]}}}}",
             "gemini-2.5-pro", 0, NULL);
    json_t *d = jp(j, "tools.0.functionDeclarations");
    assert_int_equal(json_array_size(d), 2);
    assert_jstr(d, "0.name", "search");
    assert_jstr(d, "0.description", "Search the web");
    json_t *p = jp(d, "0.parameters");
    assert_jstr(p, "type", "object");
    assert_jabsent(p, "$schema");
    assert_jabsent(p, "additionalProperties");
    assert_jabsent(p, "$defs");
    assert_jabsent(d, "0.strict");
    assert_jstr(p, "properties.query.type", "string");
    assert_jstr(p, "properties.query.description", "Terms");
    assert_jint(p, "properties.query.minLength", 1);
    assert_jabsent(p, "properties.query.format"); /* Gemini takes only enum/date-time on strings */
    assert_jabsent(p, "properties.query.default");
    assert_jstr(p, "properties.when.format", "date-time");
    assert_jstr(p, "properties.limit.type", "integer");
    assert_true(json_is_true(jp(p, "properties.limit.nullable")));
    assert_jabsent(p, "properties.limit.exclusiveMaximum");
    assert_jstr(p, "properties.mode.type", "string");
    assert_jstr(p, "properties.mode.enum.0", "fast");
    assert_jstr(p, "properties.tags.items.enum.1", "b");
    assert_jabsent(p, "properties.tags.uniqueItems");
    assert_jstr(p, "properties.filter.type", "object"); /* $ref inlined */
    assert_jstr(p, "properties.filter.properties.site.type", "string");
    assert_jabsent(p, "properties.filter.patternProperties");
    assert_jstr(p, "properties.maybe.type", "number");
    assert_true(json_is_true(jp(p, "properties.maybe.nullable")));
    assert_jstr(p, "properties.either.anyOf.0.type", "string");
    assert_jstr(p, "properties.either.anyOf.1.type", "integer");
    assert_jabsent(p, "properties.levels.enum"); /* Gemini enums are strings */
    assert_int_equal(json_array_size(jp(p, "required")), 1);
    assert_jstr(p, "required.0", "query");
    assert_jstr(d, "1.name", "now");
    assert_jabsent(d, "1.parameters"); /* an empty object schema is refused by Gemini */
    assert_jstr(j, "toolConfig.functionCallingConfig.mode", "ANY");
    assert_jstr(j, "generationConfig.responseMimeType", "application/json");
    assert_jstr(j, "generationConfig.responseSchema.properties.a.type", "string");
    assert_jabsent(j, "generationConfig.responseSchema.additionalProperties");
    json_decref(j);

    j = xreq(CHAT, GEM,
             "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"Go\"}],\"tools\":[{\"type\":\"function\","
             "\"function\":{\"name\":\"f\"}}],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}},"
             "\"response_format\":{\"type\":\"json_object\"}}",
             "gemini-2.5-pro", 0, NULL);
    assert_jstr(j, "toolConfig.functionCallingConfig.mode", "ANY");
    assert_jstr(j, "toolConfig.functionCallingConfig.allowedFunctionNames.0", "f");
    assert_jstr(j, "generationConfig.responseMimeType", "application/json");
    assert_jabsent(j, "generationConfig.responseSchema");
    json_decref(j);
    j = xreq(CHAT, GEM,
             "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"Go\"}],\"tools\":[{\"type\":\"function\","
             "\"function\":{\"name\":\"f\"}}],\"tool_choice\":\"none\"}",
             "gemini-2.5-pro", 0, NULL);
    assert_jstr(j, "toolConfig.functionCallingConfig.mode", "NONE");
    json_decref(j);
    j = xreq(CHAT, GEM,
             "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"Go\"}],\"tools\":[{\"type\":\"function\","
             "\"function\":{\"name\":\"f\"}}],\"tool_choice\":\"auto\"}",
             "gemini-2.5-pro", 0, NULL);
    assert_jabsent(j, "toolConfig"); /* AUTO is Gemini's default */
    json_decref(j);
}

static void test_gemini_recursive_schema(void **state)
{
    /* a tree whose nodes refer to themselves twice: inlined a few levels deep, then cut, in
     * bounded time and size */
    json_t *j = xreq(CHAT, GEM,
                     "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"Go\"}],\"tools\":[{\"type\":"
                     "\"function\",\"function\":{\"name\":\"tree\",\"parameters\":{\"type\":\"object\",\"properties\":"
                     "{\"root\":{\"$ref\":\"#/$defs/Node\"}},\"$defs\":{\"Node\":{\"type\":\"object\",\"properties\":{"
                     "\"v\":{\"type\":\"integer\"},\"l\":{\"$ref\":\"#/$defs/Node\"},\"r\":{\"$ref\":\"#/$defs/Node\"},"
                     "\"x\":{\"$ref\":\"#/definitions/Missing\"}}}}}}}]}",
                     "gemini-2.5-pro", 0, NULL);
    json_t *p = jp(j, "tools.0.functionDeclarations.0.parameters");
    assert_jstr(p, "properties.root.properties.v.type", "integer");
    assert_jstr(p, "properties.root.properties.l.properties.r.properties.l.properties.v.type", "integer");
    assert_jstr(p, "properties.root.properties.x.type", "object"); /* unresolvable: a bare object */
    char *d = json_dumps(j, JSON_COMPACT);
    assert_true(strlen(d) < 200000);
    free(d);
    json_decref(j);
}

static const char g3_history[] =
    "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"Go\"},"
    "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":["
    "{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"a\",\"arguments\":\"{}\"}},"
    "{\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":\"b\",\"arguments\":\"{}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"1\"},{\"role\":\"tool\",\"tool_call_id\":\"c2\",\"content\":\"2\"},"
    "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c3\",\"type\":\"function\",\"function\":{\"name\":\"a\","
    "\"arguments\":\"{}\"},\"extra_content\":{\"google\":{\"thought_signature\":\"CtoBAdHtim9\"}}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"c3\",\"content\":[{\"type\":\"text\",\"text\":\"[1,2]\"}]}]}";

static void test_gemini_thought_signatures(void **state)
{
    /* Gemini 3 refuses replayed calls without a signature: the one the answer carried is sent
     * back, and a history from elsewhere gets Google's documented stand-in on its first call */
    json_t *j = xreq(CHAT, GEM, g3_history, "gemini-3-pro-preview", 0, NULL);
    json_t *c = jp(j, "contents");
    assert_jstr(c, "1.parts.0.thoughtSignature", "skip_thought_signature_validator");
    assert_jabsent(c, "1.parts.1.thoughtSignature");
    assert_jstr(c, "3.parts.0.thoughtSignature", "CtoBAdHtim9");
    assert_jint(c, "4.parts.0.functionResponse.response.output.1", 2); /* a JSON array answer */
    json_decref(j);
    j = xreq(CHAT, GEM, g3_history, "gemini-2.5-flash", 0, NULL);
    assert_jabsent(j, "contents.1.parts.0.thoughtSignature");
    assert_jstr(j, "contents.3.parts.0.thoughtSignature", "CtoBAdHtim9");
    json_decref(j);
}

static void test_chat_to_gemini_errors(void **state)
{
    xreq_fails(CHAT, GEM, "{\"model\":\"x\",\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"nope\",\"content\":\"1\"}]}",
               "messages[0].tool_call_id: no earlier tool call has id 'nope'");
    xreq_fails(CHAT, GEM,
               "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"file\",\"file\":{\"file_id\":"
               "\"file-abc\"}}]}]}",
               "messages[0].content[0].file: only file_data");
    xreq_fails(CHAT, GEM, "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"video\",\"url\":\"x\"}]}]}",
               "messages[0].content[0]: unsupported part type 'video'");
    xreq_fails(CHAT, GEM, "{\"model\":\"x\",\"messages\":[{\"role\":\"critic\",\"content\":\"x\"}]}",
               "messages[0].role: 'critic' cannot be translated");
    xreq_fails(CHAT, GEM, "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":{\"a\":1}}]}",
               "messages[0].content: must be a string or an array");
    xreq_fails(CHAT, GEM, "", "request body: not valid JSON");
    /* a model name that does not fit the path */
    char big[700];
    memset(big, 'g', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    tg_proto_request_t out;
    char *err = NULL;
    const char *b = "{\"messages\":[]}";
    assert_int_equal(tg_proto_request(CHAT, GEM, b, strlen(b), big, 0, &out, &err), -1);
    assert_string_equal(err, "model: name too long");
    free(err);
}

/* ---------------------------------------------------------------------------------------------
 * Answers */

static const char gemini_answer[] =
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Thinking about weather\",\"thought\":true},"
    "{\"text\":\"I'll look that up.\"},{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"location\":\"Boston\","
    "\"days\":2.5}},\"thoughtSignature\":\"CiQBcsjafE\"},{\"functionCall\":{\"name\":\"get_time\",\"args\":{}}}],"
    "\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0,\"safetyRatings\":[]}],"
    "\"usageMetadata\":{\"promptTokenCount\":120,\"candidatesTokenCount\":30,\"totalTokenCount\":190,"
    "\"cachedContentTokenCount\":64,\"thoughtsTokenCount\":40,\"promptTokensDetails\":[{\"modality\":\"TEXT\","
    "\"tokenCount\":120}]},\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"mAitaKO2DMGYz7IP9uDjwQ4\"}";

static void test_gemini_answer_to_chat(void **state)
{
    tg_proto_usage_t u;
    json_t *j = xresp(CHAT, GEM, gemini_answer, NULL, &u);
    assert_jstr(j, "id", "chatcmpl-mAitaKO2DMGYz7IP9uDjwQ4");
    assert_jstr(j, "object", "chat.completion");
    assert_jstr(j, "model", "gemini-2.5-flash");
    json_t *m = jp(j, "choices.0.message");
    assert_jstr(m, "content", "I'll look that up.");
    assert_jstr(m, "reasoning_content", "Thinking about weather");
    assert_jstr(m, "tool_calls.0.function.name", "get_weather");
    assert_jstr(m, "tool_calls.0.function.arguments", "{\"location\":\"Boston\",\"days\":2.5}");
    assert_true(!strncmp(json_string_value(jp(m, "tool_calls.0.id")), "call_", 5));
    assert_jstr(m, "tool_calls.0.extra_content.google.thought_signature", "CiQBcsjafE");
    assert_jstr(m, "tool_calls.1.function.arguments", "{}");
    assert_jabsent(m, "tool_calls.1.extra_content");
    assert_jstr(j, "choices.0.finish_reason", "tool_calls"); /* Gemini says STOP */
    assert_jint(j, "usage.prompt_tokens", 120);
    assert_jint(j, "usage.completion_tokens", 70); /* thoughts are billed as output */
    assert_jint(j, "usage.prompt_tokens_details.cached_tokens", 64);
    assert_jint(j, "usage.completion_tokens_details.reasoning_tokens", 40);
    assert_int_equal(u.prompt_tokens, 120);
    assert_int_equal(u.completion_tokens, 70);
    assert_int_equal(u.cached_tokens, 64);
    json_decref(j);

    static const struct {
        const char *reason, *finish;
    } tab[] = {{"STOP", "stop"},
               {"MAX_TOKENS", "length"},
               {"SAFETY", "content_filter"},
               {"RECITATION", "content_filter"},
               {"PROHIBITED_CONTENT", "content_filter"},
               {"OTHER", "stop"},
               {"MALFORMED_FUNCTION_CALL", "stop"}};
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}],\"role\":\"model\"},\"finishReason\":\"%s\"}]}",
                 tab[i].reason);
        j = xresp(CHAT, GEM, body, "alias", &u);
        assert_jstr(j, "choices.0.finish_reason", tab[i].finish);
        assert_jstr(j, "model", "alias");
        assert_int_equal(u.seen, 0);
        json_decref(j);
    }
    /* a blocked prompt has no candidates */
    j = xresp(CHAT, GEM,
              "{\"promptFeedback\":{\"blockReason\":\"SAFETY\",\"safetyRatings\":[]},\"usageMetadata\":{"
              "\"promptTokenCount\":8,\"totalTokenCount\":8}}",
              NULL, &u);
    assert_jstr(j, "choices.0.finish_reason", "content_filter");
    assert_jstr(j, "choices.0.message.content", "");
    assert_int_equal(u.prompt_tokens, 8);
    json_decref(j);
}

static void test_gemini_answer_to_other_clients(void **state)
{
    tg_proto_usage_t u;
    json_t *j = xresp(MSGS, GEM, gemini_answer, "claude-alias", &u);
    assert_jstr(j, "type", "message");
    assert_jstr(j, "model", "claude-alias");
    assert_jstr(j, "content.0.text", "I'll look that up.");
    assert_jstr(j, "content.1.type", "tool_use");
    assert_jstr(j, "content.1.name", "get_weather");
    assert_jstr(j, "content.1.input.location", "Boston");
    assert_jstr(j, "content.2.name", "get_time");
    assert_jstr(j, "stop_reason", "tool_use");
    assert_jint(j, "usage.input_tokens", 56);
    assert_jint(j, "usage.cache_read_input_tokens", 64);
    assert_jint(j, "usage.output_tokens", 70);
    json_decref(j);
    j = xresp(RESP, GEM, gemini_answer, NULL, &u);
    assert_jstr(j, "object", "response");
    assert_jstr(j, "status", "completed");
    assert_jstr(j, "output.0.type", "message");
    assert_jstr(j, "output.0.content.0.text", "I'll look that up.");
    assert_jstr(j, "output.1.type", "function_call");
    assert_jstr(j, "output.1.name", "get_weather");
    assert_jint(j, "usage.input_tokens", 120);
    assert_jint(j, "usage.output_tokens_details.reasoning_tokens", 40);
    json_decref(j);
}

static void test_messages_client_on_gemini_request(void **state)
{
    char path[512];
    json_t *j =
        xreq(MSGS, GEM,
             "{\"model\":\"claude\",\"max_tokens\":512,\"system\":\"Be kind.\",\"top_k\":20,\"stream\":true,\"messages\":["
             "{\"role\":\"user\",\"content\":\"What's the weather?\"},"
             "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_9\",\"name\":\"get_weather\","
             "\"input\":{\"city\":\"Oslo\"}}]},"
             "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_9\",\"content\":\"-3C\"},"
             "{\"type\":\"text\",\"text\":\"Brr?\"}]}],"
             "\"tools\":[{\"name\":\"get_weather\",\"input_schema\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
             "\"string\"}}}}]}",
             "gemini-2.5-flash", 1, path);
    assert_string_equal(path, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
    assert_jstr(j, "systemInstruction.parts.0.text", "Be kind.");
    assert_jstr(j, "contents.1.parts.0.functionCall.args.city", "Oslo");
    assert_jstr(j, "contents.2.parts.0.functionResponse.name", "get_weather");
    assert_jstr(j, "contents.2.parts.0.functionResponse.response.output", "-3C");
    assert_jstr(j, "contents.2.parts.1.text", "Brr?");
    assert_jint(j, "generationConfig.maxOutputTokens", 512);
    assert_jint(j, "generationConfig.topK", 20);
    assert_jstr(j, "tools.0.functionDeclarations.0.parameters.properties.city.type", "string");
    json_decref(j);
}

/* ---------------------------------------------------------------------------------------------
 * Streams (alt=sse: "data: {...}\r\n\r\n", each a whole GenerateContentResponse) */

static const char *const gemini_stream[] = {
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"The sky\"}],\"role\": \"model\"},\"index\": 0}],"
    "\"usageMetadata\": {\"promptTokenCount\": 9,\"totalTokenCount\": 9,\"promptTokensDetails\": [{\"modality\": "
    "\"TEXT\",\"tokenCount\": 9}]},\"modelVersion\": \"gemini-2.0-flash\",\"responseId\": \"rsp9\"}\r\n\r\n",
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" is blue because of Rayleigh\"}],\"role\": "
    "\"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"totalTokenCount\": 9},\"modelVersion\": "
    "\"gemini-2.0-flash\",\"responseId\": \"rsp9\"}\r\n\r\n",
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" scattering.\\n\"}],\"role\": \"model\"},"
    "\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"candidatesTokenCount\": "
    "12,\"totalTokenCount\": 21,\"candidatesTokensDetails\": [{\"modality\": \"TEXT\",\"tokenCount\": 12}]},"
    "\"modelVersion\": \"gemini-2.0-flash\",\"responseId\": \"rsp9\"}\r\n\r\n",
    NULL};

static void test_stream_gemini_to_chat(void **state)
{
    tg_proto_stream_t *s = tg_proto_stream_new(CHAT, GEM, NULL, 1);
    sink_t k = {0};
    for (int i = 0; gemini_stream[i]; i++)
        feed(s, gemini_stream[i], &k);
    /* Gemini has no end marker: the finish chunk is out, the usage chunk and [DONE] wait for the
     * end of the transfer */
    json_t *ev = sink_events(&k);
    assert_string_equal(event_names(ev), "chunk,chunk,chunk,chunk,chunk");
    json_decref(ev);
    tg_proto_stream_end(s, sink_emit, &k);
    ev = sink_events(&k);
    assert_string_equal(event_names(ev), "chunk,chunk,chunk,chunk,chunk,chunk,[DONE]");
    assert_jstr(ev, "0.data.id", "chatcmpl-rsp9");
    assert_jstr(ev, "0.data.model", "gemini-2.0-flash");
    assert_jstr(ev, "0.data.choices.0.delta.role", "assistant");
    assert_jstr(ev, "1.data.choices.0.delta.content", "The sky");
    assert_jstr(ev, "2.data.choices.0.delta.content", " is blue because of Rayleigh");
    assert_jstr(ev, "3.data.choices.0.delta.content", " scattering.\n");
    assert_jstr(ev, "4.data.choices.0.finish_reason", "stop");
    assert_jint(ev, "5.data.usage.prompt_tokens", 9);
    assert_jint(ev, "5.data.usage.completion_tokens", 12);
    assert_jint(ev, "5.data.usage.total_tokens", 21);
    tg_proto_usage_t u;
    tg_proto_stream_usage(s, &u);
    assert_int_equal(u.prompt_tokens, 9);
    assert_int_equal(u.completion_tokens, 12);
    assert_int_equal(tg_proto_stream_text_chars(s), 7 + 28 + 13);
    json_decref(ev);
    sink_free(&k);
    tg_proto_stream_free(s);
}

static const char *const gemini_tool_stream[] = {
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"**Planning**\", \"thought\": true}],\"role\": "
    "\"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 71,\"totalTokenCount\": 101,"
    "\"thoughtsTokenCount\": 30},\"modelVersion\": \"gemini-3-pro-preview\",\"responseId\": \"Zz1\"}\r\n\r\n",
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"get_weather\",\"args\": "
    "{\"location\": \"Paris\"}},\"thoughtSignature\": \"EuYDCuMDAdHtim\"},{\"functionCall\": {\"name\": \"get_time\","
    "\"args\": {\"tz\": \"CET\"}}}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": "
    "{\"promptTokenCount\": 71,\"candidatesTokenCount\": 25,\"totalTokenCount\": 180,\"cachedContentTokenCount\": 32,"
    "\"thoughtsTokenCount\": 84},\"modelVersion\": \"gemini-3-pro-preview\",\"responseId\": \"Zz1\"}\r\n\r\n",
    NULL};

static void test_stream_gemini_tools_to_chat(void **state)
{
    tg_proto_stream_t *s = tg_proto_stream_new(CHAT, GEM, "alias", 0);
    sink_t k = {0};
    for (int i = 0; gemini_tool_stream[i]; i++)
        feed(s, gemini_tool_stream[i], &k);
    tg_proto_stream_end(s, sink_emit, &k);
    json_t *ev = sink_events(&k);
    assert_string_equal(event_names(ev), "chunk,chunk,chunk,chunk,chunk,chunk,chunk,[DONE]");
    assert_jstr(ev, "0.data.model", "alias");
    assert_jstr(ev, "1.data.choices.0.delta.reasoning_content", "**Planning**");
    json_t *t = jp(ev, "2.data.choices.0.delta.tool_calls.0");
    assert_jint(t, "index", 0);
    assert_true(!strncmp(json_string_value(jp(t, "id")), "call_", 5));
    assert_jstr(t, "function.name", "get_weather");
    assert_jstr(t, "extra_content.google.thought_signature", "EuYDCuMDAdHtim");
    assert_jstr(ev, "3.data.choices.0.delta.tool_calls.0.function.arguments", "{\"location\":\"Paris\"}");
    assert_jint(ev, "4.data.choices.0.delta.tool_calls.0.index", 1);
    assert_jabsent(ev, "4.data.choices.0.delta.tool_calls.0.extra_content");
    assert_jstr(ev, "5.data.choices.0.delta.tool_calls.0.function.arguments", "{\"tz\":\"CET\"}");
    assert_jstr(ev, "6.data.choices.0.finish_reason", "tool_calls");
    tg_proto_usage_t u;
    tg_proto_stream_usage(s, &u);
    assert_int_equal(u.prompt_tokens, 71);
    assert_int_equal(u.completion_tokens, 109);
    assert_int_equal(u.cached_tokens, 32);
    json_decref(ev);
    sink_free(&k);
    tg_proto_stream_free(s);
}

static void test_stream_gemini_to_anthropic(void **state)
{
    tg_proto_stream_t *s = tg_proto_stream_new(MSGS, GEM, NULL, 0);
    sink_t k = {0};
    for (int i = 0; gemini_stream[i]; i++)
        feed(s, gemini_stream[i], &k);
    for (int i = 0; gemini_tool_stream[i]; i++) /* a second candidate turn is ignored after the finish */
        feed(s, gemini_tool_stream[i], &k);
    tg_proto_stream_end(s, sink_emit, &k);
    json_t *ev = sink_events(&k);
    assert_string_equal(event_names(ev), "message_start,content_block_start,content_block_delta,content_block_delta,"
                                         "content_block_delta,content_block_stop,message_delta,message_stop");
    assert_jstr(ev, "0.data.message.id", "msg_rsp9");
    assert_jint(ev, "0.data.message.usage.input_tokens", 9); /* known from the first event */
    assert_jstr(ev, "2.data.delta.text", "The sky");
    assert_jstr(ev, "6.data.delta.stop_reason", "end_turn");
    json_decref(ev);
    sink_free(&k);
    tg_proto_stream_free(s);
}

static void test_stream_gemini_errors(void **state)
{
    tg_proto_stream_t *s = tg_proto_stream_new(CHAT, GEM, NULL, 0);
    sink_t k = {0};
    feed(s, gemini_stream[0], &k);
    feed(s, "data: {\"error\": {\"code\": 503,\"message\": \"The model is overloaded.\",\"status\": \"UNAVAILABLE\"}}\r\n\r\n", &k);
    tg_proto_stream_end(s, sink_emit, &k);
    json_t *ev = sink_events(&k);
    assert_string_equal(event_names(ev), "chunk,chunk,chunk,[DONE]");
    assert_jstr(ev, "2.data.error.message", "The model is overloaded.");
    assert_jstr(ev, "2.data.error.type", "UNAVAILABLE");
    json_decref(ev);
    sink_free(&k);
    const char *bad = "data: {\"foo\": 1}\r\n\r\n";
    assert_int_equal(tg_proto_stream_event(s, bad, strlen(bad), sink_emit, &k), 0); /* after the end: ignored */
    tg_proto_stream_free(s);
    s = tg_proto_stream_new(CHAT, GEM, NULL, 0);
    assert_int_equal(tg_proto_stream_event(s, bad, strlen(bad), sink_emit, &k), -1);
    bad = "data: [1,2]\r\n\r\n";
    assert_int_equal(tg_proto_stream_event(s, bad, strlen(bad), sink_emit, &k), -1);
    sink_free(&k);
    tg_proto_stream_free(s);
}

static void test_gemini_error_bodies(void **state)
{
    char *out;
    size_t n;
    const char *b = "{\"error\": {\"code\": 400,\"message\": \"API key not valid. Please pass a valid API key.\","
                    "\"status\": \"INVALID_ARGUMENT\",\"details\": []}}";
    assert_int_equal(tg_proto_error(CHAT, GEM, 400, b, strlen(b), &out, &n), 0);
    json_error_t je;
    json_t *j = json_loadb(out, n, 0, &je);
    assert_jstr(j, "error.message", "API key not valid. Please pass a valid API key.");
    assert_jstr(j, "error.type", "invalid_request_error");
    assert_jstr(j, "error.code", "INVALID_ARGUMENT");
    json_decref(j);
    free(out);
    b = "[{\"error\": {\"code\": 429,\"message\": \"Resource has been exhausted\",\"status\": \"RESOURCE_EXHAUSTED\"}}]";
    assert_int_equal(tg_proto_error(MSGS, GEM, 429, b, strlen(b), &out, &n), 0);
    j = json_loadb(out, n, 0, &je);
    assert_jstr(j, "error.type", "rate_limit_error");
    assert_jstr(j, "error.message", "Resource has been exhausted");
    json_decref(j);
    free(out);
    /* and a Gemini-shaped error body for completeness */
    b = "{\"error\":{\"message\":\"nope\",\"type\":\"invalid_request_error\"}}";
    assert_int_equal(tg_proto_error(GEM, CHAT, 404, b, strlen(b), &out, &n), 0);
    j = json_loadb(out, n, 0, &je);
    assert_jint(j, "error.code", 404);
    assert_jstr(j, "error.status", "NOT_FOUND");
    assert_jstr(j, "error.message", "nope");
    json_decref(j);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_to_gemini_request),
        cmocka_unit_test(test_chat_to_gemini_tools),
        cmocka_unit_test(test_gemini_recursive_schema),
        cmocka_unit_test(test_gemini_thought_signatures),
        cmocka_unit_test(test_chat_to_gemini_errors),
        cmocka_unit_test(test_gemini_answer_to_chat),
        cmocka_unit_test(test_gemini_answer_to_other_clients),
        cmocka_unit_test(test_messages_client_on_gemini_request),
        cmocka_unit_test(test_stream_gemini_to_chat),
        cmocka_unit_test(test_stream_gemini_tools_to_chat),
        cmocka_unit_test(test_stream_gemini_to_anthropic),
        cmocka_unit_test(test_stream_gemini_errors),
        cmocka_unit_test(test_gemini_error_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
