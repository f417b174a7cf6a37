/* tests/unit/test_proto_responses.c: OpenAI Responses client on an upstream without
 * /v1/responses (worker/proto_responses.c): requests to chat, chat answers and chat streams to
 * Response objects and Responses events; and the two-step pair onto an Anthropic upstream. */
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

#define RESP TG_SURFACE_RESPONSES

static void test_responses_to_chat_simple(void **state)
{
    char path[512];
    json_t *j = xreq(RESP, CHAT,
                     "{\"model\":\"gpt-4.1\",\"instructions\":\"Talk like a pirate.\",\"input\":\"Are semicolons optional "
                     "in JavaScript?\",\"store\":true,\"include\":[\"reasoning.encrypted_content\"],\"truncation\":\"auto\","
                     "\"metadata\":{\"k\":\"v\"},\"max_output_tokens\":256,\"temperature\":0.5,\"top_p\":1,"
                     "\"user\":\"u9\",\"previous_response_id\":null}",
                     "gpt-4o-mini", 0, path);
    assert_string_equal(path, "/v1/chat/completions");
    assert_jstr(j, "model", "gpt-4o-mini");
    assert_jstr(j, "messages.0.role", "system");
    assert_jstr(j, "messages.0.content", "Talk like a pirate.");
    assert_jstr(j, "messages.1.role", "user");
    assert_jstr(j, "messages.1.content", "Are semicolons optional in JavaScript?");
    assert_jint(j, "max_tokens", 256);
    assert_true(json_real_value(jp(j, "temperature")) == 0.5);
    assert_jint(j, "top_p", 1);
    assert_jstr(j, "user", "u9");
    assert_jabsent(j, "store");
    assert_jabsent(j, "include");
    assert_jabsent(j, "truncation");
    assert_jabsent(j, "metadata");
    assert_jabsent(j, "input");
    assert_jabsent(j, "instructions");
    assert_jabsent(j, "stream");
    json_decref(j);
}

static void test_responses_to_chat_items(void **state)
{
    json_t *j = xreq(
        RESP, CHAT,
        "{\"model\":\"gpt-5\",\"stream\":true,\"input\":["
        "{\"role\":\"developer\",\"content\":\"Be precise.\"},"
        "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"What is in this image\"},"
        "{\"type\":\"input_image\",\"image_url\":\"https://upload.wikimedia.org/a.jpg\",\"detail\":\"low\"},"
        "{\"type\":\"input_file\",\"filename\":\"d.pdf\",\"file_data\":\"data:application/pdf;base64,JVBE\"}]},"
        "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[],\"encrypted_content\":\"gAAA\"},"
        "{\"type\":\"message\",\"id\":\"msg_1\",\"role\":\"assistant\",\"status\":\"completed\",\"content\":["
        "{\"type\":\"output_text\",\"text\":\"A cat. \",\"annotations\":[]},{\"type\":\"output_text\",\"text\":\"Checking.\"}]},"
        "{\"type\":\"function_call\",\"id\":\"fc_1\",\"call_id\":\"call_a\",\"name\":\"lookup\",\"arguments\":\"{\\\"q\\\":"
        "\\\"cat\\\"}\","
        "\"status\":\"completed\"},"
        "{\"type\":\"function_call\",\"id\":\"fc_2\",\"call_id\":\"call_b\",\"name\":\"zoom\",\"arguments\":\"{}\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"call_a\",\"output\":\"A domestic cat.\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"call_b\",\"output\":[{\"type\":\"input_text\",\"text\":\"zoomed\"},"
        "{\"type\":\"input_image\",\"image_url\":\"data:image/png;base64,iVBO\"}]},"
        "{\"type\":\"function_call\",\"call_id\":\"call_c\",\"name\":\"done\",\"arguments\":\"{}\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"call_c\",\"output\":{\"ok\":true}}],"
        "\"tools\":[{\"type\":\"function\",\"name\":\"lookup\",\"description\":\"Look up\",\"parameters\":{\"type\":\"object\","
        "\"properties\":{\"q\":{\"type\":\"string\"}},\"required\":[\"q\"],\"additionalProperties\":false},\"strict\":true},"
        "{\"type\":\"web_search_preview\"},{\"type\":\"function\",\"name\":\"zoom\"}],"
        "\"tool_choice\":{\"type\":\"function\",\"name\":\"lookup\"},\"parallel_tool_calls\":false,"
        "\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"answer\",\"schema\":{\"type\":\"object\"},\"strict\":true},"
        "\"verbosity\":\"low\"},\"reasoning\":{\"effort\":\"minimal\",\"summary\":\"auto\"},\"max_output_tokens\":900}",
        "gpt-5-mini", 1, NULL);
    json_t *m = jp(j, "messages");
    assert_jstr(m, "0.role", "developer");
    assert_jstr(m, "0.content", "Be precise.");
    assert_jstr(m, "1.role", "user");
    assert_jstr(m, "1.content.0.type", "text");
    assert_jstr(m, "1.content.0.text", "What is in this image");
    assert_jstr(m, "1.content.1.type", "image_url");
    assert_jstr(m, "1.content.1.image_url.url", "https://upload.wikimedia.org/a.jpg");
    assert_jstr(m, "1.content.1.image_url.detail", "low");
    assert_jstr(m, "1.content.2.type", "file");
    assert_jstr(m, "1.content.2.file.filename", "d.pdf");
    assert_jstr(m, "2.role", "assistant"); /* the reasoning item is skipped */
    assert_jstr(m, "2.content", "A cat. Checking.");
    assert_jstr(m, "2.tool_calls.0.id", "call_a");
    assert_jstr(m, "2.tool_calls.0.function.name", "lookup");
    assert_jstr(m, "2.tool_calls.0.function.arguments", "{\"q\":\"cat\"}");
    assert_jstr(m, "2.tool_calls.1.id", "call_b");
    assert_jstr(m, "3.role", "tool");
    assert_jstr(m, "3.tool_call_id", "call_a");
    assert_jstr(m, "3.content", "A domestic cat.");
    assert_jstr(m, "4.tool_call_id", "call_b");
    assert_jstr(m, "4.content", "zoomed");
    assert_jstr(m, "5.role", "user"); /* the image a tool returned */
    assert_jstr(m, "5.content.0.image_url.url", "data:image/png;base64,iVBO");
    assert_jstr(m, "6.role", "assistant");
    assert_jnull(m, "6.content");
    assert_jstr(m, "6.tool_calls.0.id", "call_c");
    assert_jstr(m, "7.content", "{\"ok\":true}");
    assert_int_equal(json_array_size(m), 8);
    assert_int_equal(json_array_size(jp(j, "tools")), 2);
    assert_jstr(j, "tools.0.type", "function");
    assert_jstr(j, "tools.0.function.name", "lookup");
    assert_true(json_is_true(jp(j, "tools.0.function.strict")));
    assert_jstr(j, "tools.0.function.parameters.required.0", "q");
    assert_jstr(j, "tools.1.function.name", "zoom");
    assert_jstr(j, "tool_choice.type", "function");
    assert_jstr(j, "tool_choice.function.name", "lookup");
    assert_true(json_is_false(jp(j, "parallel_tool_calls")));
    assert_jstr(j, "response_format.type", "json_schema");
    assert_jstr(j, "response_format.json_schema.name", "answer");
    assert_true(json_is_true(jp(j, "response_format.json_schema.strict")));
    assert_jstr(j, "verbosity", "low");
    assert_jstr(j, "reasoning_effort", "minimal");
    assert_jint(j, "max_completion_tokens", 900); /* gpt-5 takes max_completion_tokens */
    assert_jabsent(j, "max_tokens");
    assert_true(json_is_true(jp(j, "stream")));
    assert_true(json_is_true(jp(j, "stream_options.include_usage")));
    json_decref(j);
}

static void test_responses_request_errors(void **state)
{
    xreq_fails(RESP, CHAT, "{\"model\":\"x\",\"previous_response_id\":\"resp_1\",\"input\":\"hi\"}",
               "previous_response_id: stored responses are not available");
    xreq_fails(RESP, CHAT, "{\"model\":\"x\",\"conversation\":\"conv_1\",\"input\":\"hi\"}", "conversation: ");
    xreq_fails(RESP, CHAT, "{\"model\":\"x\",\"background\":true,\"input\":\"hi\"}", "background: ");
    xreq_fails(RESP, CHAT, "{\"model\":\"x\"}", "input: required");
    xreq_fails(RESP, CHAT, "{\"model\":\"x\",\"input\":42}", "input: must be a string or an array");
    xreq_fails(RESP, CHAT, "{\"model\":\"x\",\"input\":[\"hi\"]}", "input[0]: must be an object");
    xreq_fails(RESP, CHAT, "{\"model\":\"x\",\"input\":[{\"type\":\"item_reference\",\"id\":\"msg_1\"}]}",
               "input[0]: item references need stored responses");
    xreq_fails(RESP, CHAT,
               "{\"model\":\"x\",\"input\":[{\"role\":\"user\",\"content\":\"a\"},{\"type\":\"web_search_call\","
               "\"id\":\"ws\"}]}",
               "input[1]: item type 'web_search_call' cannot be sent");
    xreq_fails(RESP, CHAT, "{\"model\":\"x\",\"input\":[{\"role\":\"tool\",\"content\":\"a\"}]}", "input[0].role: must be");
    xreq_fails(RESP, CHAT,
               "{\"model\":\"x\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_image\",\"file_id\":\"file-1\"}]}]}",
               "input[0].content[0]: only images given by image_url");
    xreq_fails(RESP, CHAT, "{\"model\":\"x\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"computer_screenshot\"}]}]}",
               "input[0].content[0]: unsupported part type 'computer_screenshot'");
    xreq_fails(RESP, CHAT, "{\"model\":\"x\",\"input\":[{\"type\":\"function_call\",\"name\":\"f\"}]}",
               "input[0]: a function_call needs call_id and name");
    xreq_fails(RESP, CHAT, "{\"model\":\"x\",\"input\":[{\"type\":\"function_call_output\",\"output\":\"x\"}]}",
               "input[0].call_id: required");
}

/* ---------------------------------------------------------------------------------------------
 * Answers */

static void test_chat_answer_to_response(void **state)
{
    tg_proto_usage_t u;
    json_t *j = xresp(RESP, CHAT,
                      "{\"id\":\"chatcmpl-Xyz\",\"object\":\"chat.completion\",\"created\":1741476542,\"model\":\"gpt-4o-mini\","
                      "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Arr, they be optional.\","
                      "\"refusal\":null,\"tool_calls\":[{\"id\":\"call_9\",\"type\":\"function\",\"function\":{\"name\":"
                      "\"lookup\",\"arguments\":\"{\\\"q\\\":1}\"}}]},\"finish_reason\":\"tool_calls\"}],"
                      "\"usage\":{\"prompt_tokens\":36,\"completion_tokens\":87,\"total_tokens\":123,"
                      "\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":5}}}",
                      NULL, &u);
    assert_jstr(j, "id", "resp_Xyz");
    assert_jstr(j, "object", "response");
    assert_jint(j, "created_at", 1741476542);
    assert_jstr(j, "status", "completed");
    assert_jnull(j, "error");
    assert_jnull(j, "incomplete_details");
    assert_jstr(j, "model", "gpt-4o-mini");
    assert_jstr(j, "output.0.type", "message");
    assert_true(!strncmp(json_string_value(jp(j, "output.0.id")), "msg_", 4));
    assert_jstr(j, "output.0.status", "completed");
    assert_jstr(j, "output.0.role", "assistant");
    assert_jstr(j, "output.0.content.0.type", "output_text");
    assert_jstr(j, "output.0.content.0.text", "Arr, they be optional.");
    assert_int_equal(json_array_size(jp(j, "output.0.content.0.annotations")), 0);
    assert_jstr(j, "output.1.type", "function_call");
    assert_true(!strncmp(json_string_value(jp(j, "output.1.id")), "fc_", 3));
    assert_jstr(j, "output.1.call_id", "call_9");
    assert_jstr(j, "output.1.name", "lookup");
    assert_jstr(j, "output.1.arguments", "{\"q\":1}");
    assert_jstr(j, "output.1.status", "completed");
    assert_jint(j, "usage.input_tokens", 36);
    assert_jint(j, "usage.input_tokens_details.cached_tokens", 0);
    assert_jint(j, "usage.output_tokens", 87);
    assert_jint(j, "usage.output_tokens_details.reasoning_tokens", 5);
    assert_jint(j, "usage.total_tokens", 123);
    assert_jstr(j, "text.format.type", "text");
    assert_int_equal(u.prompt_tokens, 36);
    assert_int_equal(u.completion_tokens, 87);
    json_decref(j);

    j = xresp(RESP, CHAT,
              "{\"id\":\"c2\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Once upon\"},"
              "\"finish_reason\":\"length\"}]}",
              "alias", &u);
    assert_jstr(j, "status", "incomplete");
    assert_jstr(j, "incomplete_details.reason", "max_output_tokens");
    assert_jstr(j, "model", "alias");
    assert_jnull(j, "usage");
    json_decref(j);
    j = xresp(RESP, CHAT,
              "{\"id\":\"c3\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,\"refusal\":"
              "\"I can't.\"},\"finish_reason\":\"stop\"}]}",
              NULL, &u);
    assert_jstr(j, "output.0.content.0.type", "refusal");
    assert_jstr(j, "output.0.content.0.refusal", "I can't.");
    json_decref(j);
    j = xresp(RESP, CHAT,
              "{\"id\":\"c4\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"\"},"
              "\"finish_reason\":\"content_filter\"}]}",
              NULL, &u);
    assert_jstr(j, "status", "incomplete");
    assert_jstr(j, "incomplete_details.reason", "content_filter");
    assert_int_equal(json_array_size(jp(j, "output")), 0);
    json_decref(j);
}

/* ---------------------------------------------------------------------------------------------
 * Streams */

#define CHUNK(delta, finish)                                                                                                       \
    "data: {\"id\":\"chatcmpl-R1\",\"object\":\"chat.completion.chunk\",\"created\":1741476542,\"model\":"                         \
    "\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":" delta ",\"logprobs\":null,\"finish_reason\":" finish "}]}\n\n"

static const char *const chat_stream[] = {
    CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null"),
    CHUNK("{\"content\":\"Hi\"}", "null"),
    CHUNK("{\"content\":\" there\"}", "null"),
    CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"call_q\",\"type\":\"function\",\"function\":{\"name\":\"lookup\","
          "\"arguments\":\"\"}}]}",
          "null"),
    CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"q\\\":\"}}]}", "null"),
    CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"cats\\\"}\"}}]}", "null"),
    CHUNK("{\"tool_calls\":[{\"index\":1,\"id\":\"call_r\",\"type\":\"function\",\"function\":{\"name\":\"zoom\","
          "\"arguments\":\"{}\"}}]}",
          "null"),
    CHUNK("{}", "\"tool_calls\""),
    "data: {\"id\":\"chatcmpl-R1\",\"object\":\"chat.completion.chunk\",\"created\":1741476542,\"model\":\"gpt-4o-mini\","
    "\"choices\":[],\"usage\":{\"prompt_tokens\":50,\"completion_tokens\":20,\"total_tokens\":70,"
    "\"prompt_tokens_details\":{\"cached_tokens\":10},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n",
    "data: [DONE]\n\n",
    NULL};

static void test_stream_chat_to_responses(void **state)
{
    tg_proto_stream_t *s = tg_proto_stream_new(RESP, CHAT, NULL, 0);
    sink_t k = {0};
    for (int i = 0; chat_stream[i]; i++)
        feed(s, chat_stream[i], &k);
    tg_proto_stream_end(s, sink_emit, &k);
    json_t *ev = sink_events(&k);
    assert_string_equal(event_names(ev), "response.created,response.in_progress,"
                                         "response.output_item.added,response.content_part.added,response.output_text.delta,"
                                         "response.output_text.delta,response.output_text.done,response.content_part.done,"
                                         "response.output_item.done,"
                                         "response.output_item.added,response.function_call_arguments.delta,"
                                         "response.function_call_arguments.delta,response.function_call_arguments.done,"
                                         "response.output_item.done,"
                                         "response.output_item.added,response.function_call_arguments.delta,"
                                         "response.function_call_arguments.done,response.output_item.done,"
                                         "response.completed");
    size_t i;
    json_t *e;
    json_array_foreach(ev, i, e) { /* type mirrors the event name; sequence numbers count up from 0 */
        assert_string_equal(json_string_value(jp(e, "data.type")), json_string_value(jp(e, "event")));
        assert_jint(e, "data.sequence_number", (long long)i);
    }
    json_t *r0 = jp(ev, "0.data.response");
    assert_jstr(r0, "id", "resp_R1");
    assert_jstr(r0, "object", "response");
    assert_jstr(r0, "status", "in_progress");
    assert_jstr(r0, "model", "gpt-4o-mini");
    assert_int_equal(json_array_size(jp(r0, "output")), 0);
    assert_jnull(r0, "usage");
    json_t *it = jp(ev, "2.data");
    assert_jint(it, "output_index", 0);
    assert_jstr(it, "item.type", "message");
    assert_jstr(it, "item.status", "in_progress");
    assert_jstr(it, "item.role", "assistant");
    assert_int_equal(json_array_size(jp(it, "item.content")), 0);
    const char *msg_id = json_string_value(jp(it, "item.id"));
    assert_jstr(ev, "3.data.item_id", msg_id);
    assert_jint(ev, "3.data.content_index", 0);
    assert_jstr(ev, "3.data.part.type", "output_text");
    assert_jstr(ev, "3.data.part.text", "");
    assert_jstr(ev, "4.data.item_id", msg_id);
    assert_jint(ev, "4.data.output_index", 0);
    assert_jstr(ev, "4.data.delta", "Hi");
    assert_jstr(ev, "5.data.delta", " there");
    assert_jstr(ev, "6.data.text", "Hi there");
    assert_jstr(ev, "7.data.part.text", "Hi there");
    assert_jstr(ev, "8.data.item.status", "completed");
    assert_jstr(ev, "8.data.item.content.0.text", "Hi there");
    json_t *fc = jp(ev, "9.data");
    assert_jint(fc, "output_index", 1);
    assert_jstr(fc, "item.type", "function_call");
    assert_jstr(fc, "item.call_id", "call_q");
    assert_jstr(fc, "item.name", "lookup");
    assert_jstr(fc, "item.arguments", "");
    const char *fc_id = json_string_value(jp(fc, "item.id"));
    assert_true(!strncmp(fc_id, "fc_", 3));
    assert_jstr(ev, "10.data.item_id", fc_id);
    assert_jstr(ev, "10.data.delta", "{\"q\":");
    assert_jstr(ev, "11.data.delta", "\"cats\"}");
    assert_jstr(ev, "12.data.arguments", "{\"q\":\"cats\"}");
    assert_jstr(ev, "13.data.item.arguments", "{\"q\":\"cats\"}");
    assert_jstr(ev, "13.data.item.status", "completed");
    assert_jint(ev, "14.data.output_index", 2);
    assert_jstr(ev, "14.data.item.call_id", "call_r");
    json_t *r = jp(ev, "18.data.response");
    assert_jstr(r, "status", "completed");
    assert_int_equal(json_array_size(jp(r, "output")), 3);
    assert_jstr(r, "output.0.content.0.text", "Hi there");
    assert_jstr(r, "output.1.arguments", "{\"q\":\"cats\"}");
    assert_jstr(r, "output.2.arguments", "{}");
    assert_jint(r, "usage.input_tokens", 50);
    assert_jint(r, "usage.input_tokens_details.cached_tokens", 10);
    assert_jint(r, "usage.output_tokens", 20);
    assert_jint(r, "usage.total_tokens", 70);
    json_decref(ev);
    sink_free(&k);
    tg_proto_stream_free(s);
}

static void test_stream_responses_endings(void **state)
{
    /* max tokens: response.incomplete */
    tg_proto_stream_t *s = tg_proto_stream_new(RESP, CHAT, "alias", 0);
    sink_t k = {0};
    feed(s, chat_stream[0], &k);
    feed(s, chat_stream[1], &k);
    feed(s, CHUNK("{}", "\"length\""), &k);
    feed(s, "data: [DONE]\n\n", &k);
    json_t *ev = sink_events(&k);
    json_t *last = json_array_get(ev, json_array_size(ev) - 1);
    assert_jstr(last, "event", "response.incomplete");
    assert_jstr(last, "data.response.status", "incomplete");
    assert_jstr(last, "data.response.incomplete_details.reason", "max_output_tokens");
    assert_jstr(last, "data.response.model", "alias");
    json_decref(ev);
    sink_free(&k);
    tg_proto_stream_free(s);

    /* an upstream error: error event, then response.failed, and nothing at the end */
    s = tg_proto_stream_new(RESP, CHAT, NULL, 0);
    feed(s, chat_stream[0], &k);
    feed(s, chat_stream[1], &k);
    feed(s, "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n", &k);
    tg_proto_stream_end(s, sink_emit, &k);
    ev = sink_events(&k);
    assert_string_equal(event_names(ev), "response.created,response.in_progress,response.output_item.added,"
                                         "response.content_part.added,response.output_text.delta,"
                                         "response.output_text.done,response.content_part.done,"
                                         "response.output_item.done,error,response.failed");
    assert_jstr(ev, "8.data.message", "boom");
    assert_jstr(ev, "8.data.code", "server_error");
    assert_jstr(ev, "9.data.response.status", "failed");
    assert_jstr(ev, "9.data.response.error.message", "boom");
    json_decref(ev);
    sink_free(&k);
    tg_proto_stream_free(s);

    /* the upstream vanishes mid-answer: the client is told the response is incomplete */
    s = tg_proto_stream_new(RESP, CHAT, NULL, 0);
    feed(s, chat_stream[0], &k);
    feed(s, chat_stream[1], &k);
    tg_proto_stream_end(s, sink_emit, &k);
    ev = sink_events(&k);
    last = json_array_get(ev, json_array_size(ev) - 1);
    assert_jstr(last, "event", "response.incomplete");
    assert_jstr(last, "data.response.output.0.content.0.text", "Hi");
    json_decref(ev);
    sink_free(&k);
    tg_proto_stream_free(s);
}

/* ---------------------------------------------------------------------------------------------
 * Responses client on an Anthropic upstream (two steps through the chat hub) */

static void test_responses_on_anthropic(void **state)
{
    json_t *j = xreq(RESP, MSGS,
                     "{\"model\":\"x\",\"instructions\":\"Sys\",\"input\":[{\"role\":\"user\",\"content\":\"Go\"},"
                     "{\"type\":\"function_call\",\"call_id\":\"call_1\",\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"},"
                     "{\"type\":\"function_call_output\",\"call_id\":\"call_1\",\"output\":\"done\"}],"
                     "\"tools\":[{\"type\":\"function\",\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}],"
                     "\"max_output_tokens\":64,\"stream\":true}",
                     "claude-haiku-4-5", 1, NULL);
    assert_jstr(j, "system", "Sys");
    assert_jstr(j, "messages.1.content.0.type", "tool_use");
    assert_jint(j, "messages.1.content.0.input.a", 1);
    assert_jstr(j, "messages.2.content.0.type", "tool_result");
    assert_jint(j, "max_tokens", 64);
    assert_jstr(j, "tools.0.name", "f");
    json_decref(j);

    tg_proto_stream_t *s = tg_proto_stream_new(RESP, MSGS, NULL, 0);
    sink_t k = {0};
    feed(s,
         "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_7\",\"type\":\"message\","
         "\"role\":\"assistant\",\"model\":\"claude-haiku-4-5\",\"content\":[],\"usage\":{\"input_tokens\":12,"
         "\"output_tokens\":1}}}\n\n",
         &k);
    feed(s,
         "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
         "{\"type\":\"text\",\"text\":\"\"}}\n\n",
         &k);
    feed(s,
         "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
         "\"text_delta\",\"text\":\"Hello\"}}\n\n",
         &k);
    feed(s, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n", &k);
    feed(s,
         "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
         "\"usage\":{\"output_tokens\":6}}\n\n",
         &k);
    feed(s, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", &k);
    tg_proto_stream_end(s, sink_emit, &k);
    json_t *ev = sink_events(&k);
    assert_string_equal(event_names(ev), "response.created,response.in_progress,response.output_item.added,"
                                         "response.content_part.added,response.output_text.delta,"
                                         "response.output_text.done,response.content_part.done,"
                                         "response.output_item.done,response.completed");
    assert_jstr(ev, "0.data.response.id", "resp_7");
    assert_jint(ev, "8.data.response.usage.input_tokens", 12);
    assert_jint(ev, "8.data.response.usage.output_tokens", 6);
    json_decref(ev);
    sink_free(&k);
    tg_proto_stream_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_responses_to_chat_simple), cmocka_unit_test(test_responses_to_chat_items),
        cmocka_unit_test(test_responses_request_errors), cmocka_unit_test(test_chat_answer_to_response),
        cmocka_unit_test(test_stream_chat_to_responses), cmocka_unit_test(test_stream_responses_endings),
        cmocka_unit_test(test_responses_on_anthropic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
