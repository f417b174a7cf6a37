/* tests/unit/test_proto_anthropic.c: OpenAI chat ⇄ Anthropic messages (worker/proto_anthropic.c):
 * requests both ways, answers both ways, streams both ways (recorded event shapes), errors. */
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


/* ---------------------------------------------------------------------------------------------
 * OpenAI chat client → Anthropic upstream: requests */

static void test_chat_to_messages_basic(void **state)
{
    char path[512];
    json_t *j = xreq(CHAT, MSGS,
                     "{\"model\":\"gpt-4o\",\"messages\":["
                     "{\"role\":\"system\",\"content\":\"You are terse.\"},"
                     "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"Answer in French.\"}]},"
                     "{\"role\":\"user\",\"content\":\"Hello\",\"name\":\"bob\"}],"
                     "\"temperature\":1.5,\"top_p\":0.9,\"stop\":\"END\",\"user\":\"u-42\",\"stream\":true,"
                     "\"stream_options\":{\"include_usage\":true},\"logprobs\":true,\"seed\":7,"
                     "\"response_format\":{\"type\":\"json_object\"},\"frequency_penalty\":0.5}",
                     "claude-sonnet-4-5", 1, path);
    assert_string_equal(path, "/v1/messages");
    assert_jstr(j, "model", "claude-sonnet-4-5");
    assert_jstr(j, "system.0.type", "text");
    assert_jstr(j, "system.0.text", "You are terse.");
    assert_jstr(j, "system.1.text", "Answer in French.");
    assert_int_equal(json_array_size(jp(j, "messages")), 1);
    assert_jstr(j, "messages.0.role", "user");
    assert_jstr(j, "messages.0.content.0.type", "text");
    assert_jstr(j, "messages.0.content.0.text", "Hello");
    assert_jint(j, "max_tokens", 4096);                        /* Anthropic requires it */
    assert_true(json_real_value(jp(j, "temperature")) == 1.0); /* clamped to Anthropic's range */
    assert_jabsent(j, "top_p");                                /* not with temperature */
    assert_jstr(j, "stop_sequences.0", "END");
    assert_jstr(j, "metadata.user_id", "u-42");
    assert_true(json_is_true(jp(j, "stream")));
    /* no counterpart: dropped */
    assert_jabsent(j, "stream_options");
    assert_jabsent(j, "logprobs");
    assert_jabsent(j, "seed");
    assert_jabsent(j, "response_format");
    assert_jabsent(j, "frequency_penalty");
    assert_jabsent(j, "tools");
    json_decref(j);
}

static void test_chat_to_messages_limits(void **state)
{
    json_t *j = xreq(CHAT, MSGS,
                     "{\"model\":\"x\",\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\","
                     "\"content\":\"Hi\"}],\"max_completion_tokens\":100,\"max_tokens\":5,\"top_p\":0.5,"
                     "\"stop\":[\"a\",\"b\"]}",
                     "claude-3-5-haiku", 0, NULL);
    assert_jint(j, "max_tokens", 100);
    assert_jstr(j, "system", "S"); /* a single system text stays a string */
    assert_true(json_real_value(jp(j, "top_p")) == 0.5);
    assert_jstr(j, "stop_sequences.1", "b");
    assert_jabsent(j, "stream");
    json_decref(j);
    j = xreq(CHAT, MSGS, "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":7}", NULL, 0, NULL);
    assert_jint(j, "max_tokens", 7);
    assert_jstr(j, "model", "x"); /* no mapped model: the client's */
    json_decref(j);
}

static void test_chat_to_messages_images(void **state)
{
    json_t *j = xreq(CHAT, MSGS,
                     "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":["
                     "{\"type\":\"text\",\"text\":\"What is in these?\"},"
                     "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\",\"detail\":\"high\"}},"
                     "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://example.com/cat.jpg\"}},"
                     "{\"type\":\"file\",\"file\":{\"filename\":\"a.pdf\",\"file_data\":\"data:application/pdf;base64,JVBERi0=\"}},"
                     "{\"type\":\"text\",\"text\":\"\"}]}]}",
                     "c", 0, NULL);
    json_t *c = jp(j, "messages.0.content");
    assert_int_equal(json_array_size(c), 4); /* the empty text is skipped: Anthropic refuses those */
    assert_jstr(c, "1.type", "image");
    assert_jstr(c, "1.source.type", "base64");
    assert_jstr(c, "1.source.media_type", "image/png");
    assert_jstr(c, "1.source.data", "iVBORw0KGgo=");
    assert_jstr(c, "2.source.type", "url");
    assert_jstr(c, "2.source.url", "https://example.com/cat.jpg");
    assert_jstr(c, "3.type", "document");
    assert_jstr(c, "3.source.media_type", "application/pdf");
    assert_jstr(c, "3.source.data", "JVBERi0=");
    assert_jstr(c, "3.title", "a.pdf");
    json_decref(j);
}

static void test_chat_to_messages_tools(void **state)
{
    json_t *j =
        xreq(CHAT, MSGS,
             "{\"model\":\"x\",\"messages\":["
             "{\"role\":\"user\",\"content\":\"Weather in Paris and time in Tokyo?\"},"
             "{\"role\":\"assistant\",\"content\":\"Let me check.\",\"tool_calls\":["
             "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":"
             "\\\"Paris\\\"}\"}},"
             "{\"id\":\"functions.get_time:1\",\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":\"\"}}]},"
             "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"18C\"},"
             "{\"role\":\"tool\",\"tool_call_id\":\"functions.get_time:1\",\"content\":[{\"type\":\"text\",\"text\":\"09:00\"}]},"
             "{\"role\":\"user\",\"content\":\"Thanks, and?\"}],"
             "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather\","
             "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]},"
             "\"strict\":true}},"
             "{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}},"
             "{\"type\":\"custom\",\"custom\":{\"name\":\"free\"}}],"
             "\"tool_choice\":\"required\",\"parallel_tool_calls\":false}",
             "c", 0, NULL);
    assert_int_equal(json_array_size(jp(j, "tools")), 2); /* the custom tool has no counterpart */
    assert_jstr(j, "tools.0.name", "get_weather");
    assert_jstr(j, "tools.0.description", "Weather");
    assert_jstr(j, "tools.0.input_schema.properties.city.type", "string");
    assert_jstr(j, "tools.1.input_schema.type", "object");
    assert_jabsent(j, "tools.0.strict");
    assert_jstr(j, "tool_choice.type", "any");
    assert_true(json_is_true(jp(j, "tool_choice.disable_parallel_tool_use")));
    json_t *m = jp(j, "messages");
    assert_int_equal(json_array_size(m), 3);
    assert_jstr(m, "1.role", "assistant");
    assert_jstr(m, "1.content.0.text", "Let me check.");
    assert_jstr(m, "1.content.1.type", "tool_use");
    assert_jstr(m, "1.content.1.id", "call_1");
    assert_jstr(m, "1.content.1.input.city", "Paris");
    assert_jstr(m, "1.content.2.id", "functions_get_time_1"); /* Anthropic's id alphabet */
    assert_true(json_is_object(jp(m, "1.content.2.input")) && json_object_size(jp(m, "1.content.2.input")) == 0);
    /* both tool results and the next user text in one user turn, results first */
    assert_jstr(m, "2.role", "user");
    assert_jstr(m, "2.content.0.type", "tool_result");
    assert_jstr(m, "2.content.0.tool_use_id", "call_1");
    assert_jstr(m, "2.content.0.content", "18C");
    assert_jstr(m, "2.content.1.tool_use_id", "functions_get_time_1");
    assert_jstr(m, "2.content.1.content.0.text", "09:00");
    assert_jstr(m, "2.content.2.type", "text");
    assert_jstr(m, "2.content.2.text", "Thanks, and?");
    json_decref(j);

    j = xreq(CHAT, MSGS,
             "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"tools\":[{\"type\":\"function\","
             "\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}],"
             "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}}}",
             "c", 0, NULL);
    assert_jstr(j, "tool_choice.type", "tool");
    assert_jstr(j, "tool_choice.name", "f");
    json_decref(j);
    j = xreq(CHAT, MSGS,
             "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"tools\":[{\"type\":\"function\","
             "\"function\":{\"name\":\"f\"}}],\"tool_choice\":\"none\"}",
             "c", 0, NULL);
    assert_jstr(j, "tool_choice.type", "none");
    json_decref(j);
}

static void test_chat_to_messages_errors(void **state)
{
    xreq_fails(CHAT, MSGS, "{not json", "request body: not valid JSON");
    xreq_fails(CHAT, MSGS, "[1,2]", "request body: must be a JSON object");
    xreq_fails(CHAT, MSGS, "{\"model\":\"x\"}", "messages: required");
    xreq_fails(CHAT, MSGS, "{\"model\":\"x\",\"messages\":{}}", "messages: must be an array");
    xreq_fails(CHAT, MSGS, "{\"model\":\"x\",\"messages\":[{\"content\":\"x\"}]}", "messages[0].role: must be a string");
    xreq_fails(CHAT, MSGS,
               "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":["
               "{\"type\":\"input_audio\",\"input_audio\":{\"data\":\"AA==\",\"format\":\"wav\"}}]}]}",
               "messages[1].content[0]: unsupported part type 'input_audio'");
    xreq_fails(CHAT, MSGS, "{\"model\":\"x\",\"messages\":[{\"role\":\"function\",\"name\":\"f\",\"content\":\"x\"}]}",
               "messages[0].role: 'function' cannot be translated");
    xreq_fails(CHAT, MSGS,
               "{\"model\":\"x\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\",\"type\":\"function\","
               "\"function\":{\"name\":\"f\",\"arguments\":\"{oops\"}}]}]}",
               "messages[0].tool_calls[0].function.arguments: must be a JSON object");
    xreq_fails(CHAT, MSGS, "{\"model\":\"x\",\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
               "messages[0].tool_call_id: required");
    xreq_fails(CHAT, MSGS, "{\"model\":\"x\",\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "n: ");
    xreq_fails(CHAT, MSGS, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "model: required");
    xreq_fails(CHAT, MSGS,
               "{\"model\":\"x\",\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":\"image_url\","
               "\"image_url\":{\"url\":\"http://a/b.png\"}}]}]}",
               "messages[0].content[0]: a system message takes text parts only");
    /* the model given by the caller wins, and a missing one in the body is fine then */
    tg_proto_request_t out;
    char *err = NULL;
    const char *b = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    assert_int_equal(tg_proto_request(CHAT, MSGS, b, strlen(b), "claude", 0, &out, &err), 0);
    free(out.body);
}

/* ---------------------------------------------------------------------------------------------
 * Anthropic client → OpenAI chat upstream: requests */

static void test_messages_to_chat_request(void **state)
{
    char path[512];
    json_t *j = xreq(
        MSGS, CHAT,
        "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":1024,\"system\":[{\"type\":\"text\",\"text\":\"You are Claude Code.\","
        "\"cache_control\":{\"type\":\"ephemeral\"}},{\"type\":\"text\",\"text\":\"Be brief.\"}],"
        "\"messages\":["
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Look:\"},{\"type\":\"image\",\"source\":{\"type\":"
        "\"base64\",\"media_type\":\"image/jpeg\",\"data\":\"/9j/4AAQ\"}},{\"type\":\"image\",\"source\":{\"type\":\"url\","
        "\"url\":\"https://x/y.png\"}}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"hmm\",\"signature\":\"sig\"},"
        "{\"type\":\"text\",\"text\":\"I will read it.\"},{\"type\":\"tool_use\",\"id\":\"toolu_01\",\"name\":\"Read\","
        "\"input\":{\"path\":\"/etc/hosts\",\"lines\":[1,2]}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_01\",\"content\":[{\"type\":"
        "\"text\",\"text\":\"127.0.0.1 localhost\"},{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":"
        "\"image/png\",\"data\":\"iVBO\"}}]},{\"type\":\"text\",\"text\":\"Now summarize.\"}]},"
        "{\"role\":\"assistant\",\"content\":\"Sure\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_02\",\"content\":\"ok\","
        "\"is_error\":true}]}],"
        "\"tools\":[{\"name\":\"Read\",\"description\":\"Reads\",\"input_schema\":{\"type\":\"object\",\"properties\":"
        "{\"path\":{\"type\":\"string\"}}}},{\"type\":\"web_search_20250305\",\"name\":\"web_search\",\"max_uses\":5},"
        "{\"type\":\"custom\",\"name\":\"Bash\",\"input_schema\":{\"type\":\"object\",\"properties\":{\"cmd\":{\"type\":"
        "\"string\"}}}}],"
        "\"tool_choice\":{\"type\":\"any\",\"disable_parallel_tool_use\":true},"
        "\"temperature\":0.7,\"top_p\":0.9,\"top_k\":40,\"stop_sequences\":[\"\\n\\nHuman:\"],"
        "\"metadata\":{\"user_id\":\"user_abc\"},\"stream\":true,\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2048}}",
        "gpt-4o", 1, path);
    assert_string_equal(path, "/v1/chat/completions");
    assert_jstr(j, "model", "gpt-4o");
    json_t *m = jp(j, "messages");
    assert_jstr(m, "0.role", "system");
    assert_jstr(m, "0.content", "You are Claude Code.\nBe brief.");
    assert_jstr(m, "1.role", "user");
    assert_jstr(m, "1.content.0.text", "Look:");
    assert_jstr(m, "1.content.1.type", "image_url");
    assert_jstr(m, "1.content.1.image_url.url", "data:image/jpeg;base64,/9j/4AAQ");
    assert_jstr(m, "1.content.2.image_url.url", "https://x/y.png");
    assert_jstr(m, "2.role", "assistant");
    assert_jstr(m, "2.content", "I will read it."); /* thinking dropped */
    assert_jstr(m, "2.tool_calls.0.id", "toolu_01");
    assert_jstr(m, "2.tool_calls.0.type", "function");
    assert_jstr(m, "2.tool_calls.0.function.name", "Read");
    assert_jstr(m, "2.tool_calls.0.function.arguments", "{\"path\":\"/etc/hosts\",\"lines\":[1,2]}");
    assert_jstr(m, "3.role", "tool");
    assert_jstr(m, "3.tool_call_id", "toolu_01");
    assert_jstr(m, "3.content", "127.0.0.1 localhost");
    assert_jstr(m, "4.role", "user"); /* the tool's image, then the user's own text */
    assert_jstr(m, "4.content.0.type", "image_url");
    assert_jstr(m, "4.content.0.image_url.url", "data:image/png;base64,iVBO");
    assert_jstr(m, "4.content.1.text", "Now summarize.");
    assert_jstr(m, "5.content", "Sure");
    assert_jstr(m, "6.role", "tool");
    assert_jstr(m, "6.content", "ok");
    assert_int_equal(json_array_size(m), 7);
    assert_int_equal(json_array_size(jp(j, "tools")), 2); /* web_search runs on Anthropic only */
    assert_jstr(j, "tools.0.type", "function");
    assert_jstr(j, "tools.0.function.name", "Read");
    assert_jstr(j, "tools.0.function.parameters.properties.path.type", "string");
    assert_jstr(j, "tools.1.function.name", "Bash");
    assert_jstr(j, "tool_choice", "required");
    assert_true(json_is_false(jp(j, "parallel_tool_calls")));
    assert_jint(j, "max_tokens", 1024); /* gpt-4o takes max_tokens */
    assert_jabsent(j, "max_completion_tokens");
    assert_true(json_real_value(jp(j, "temperature")) == 0.7);
    assert_jabsent(j, "top_k");
    assert_jabsent(j, "_tg");
    assert_jabsent(j, "thinking");
    assert_jstr(j, "stop.0", "\n\nHuman:");
    assert_jstr(j, "user", "user_abc");
    assert_true(json_is_true(jp(j, "stream")));
    assert_true(json_is_true(jp(j, "stream_options.include_usage"))); /* usage for billing */
    json_decref(j);

    /* reasoning models take max_completion_tokens; no stream → no stream fields */
    j = xreq(MSGS, CHAT,
             "{\"model\":\"c\",\"max_tokens\":50,\"system\":\"Sys\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
             "\"tool_choice\":{\"type\":\"tool\",\"name\":\"f\"},\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":"
             "\"object\"}}]}",
             "o3-mini", 0, NULL);
    assert_jint(j, "max_completion_tokens", 50);
    assert_jabsent(j, "max_tokens");
    assert_jstr(j, "messages.0.content", "Sys");
    assert_jstr(j, "messages.1.content", "Hi");
    assert_jstr(j, "tool_choice.function.name", "f");
    assert_jabsent(j, "stream");
    assert_jabsent(j, "stream_options");
    json_decref(j);
}

static void test_messages_to_chat_request_errors(void **state)
{
    xreq_fails(MSGS, CHAT, "{\"model\":\"c\",\"max_tokens\":5}", "messages: required");
    xreq_fails(MSGS, CHAT, "{\"model\":\"c\",\"messages\":\"hi\"}", "messages: must be an array");
    xreq_fails(MSGS, CHAT, "{\"model\":\"c\",\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}",
               "messages[0].role: must be 'user' or 'assistant'");
    xreq_fails(MSGS, CHAT, "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":5}]}",
               "messages[0].content: must be a string or an array");
    xreq_fails(MSGS, CHAT,
               "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
               "{\"type\":\"search_result\",\"source\":\"x\"}]}]}",
               "messages[0].content[1]: unsupported block type 'search_result'");
    xreq_fails(MSGS, CHAT,
               "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"document\",\"source\":{"
               "\"type\":\"url\",\"url\":\"https://x/a.pdf\"}}]}]}",
               "messages[0].content[0].source: document source 'url'");
    xreq_fails(MSGS, CHAT, "{\"model\":\"c\",\"system\":[{\"type\":\"image\"}],\"messages\":[]}", "system[0]: only text blocks");
    xreq_fails(MSGS, CHAT,
               "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":{"
               "\"type\":\"file\",\"file_id\":\"f\"}}]}]}",
               "messages[0].content[0].source: unsupported source type 'file'");
}

/* ---------------------------------------------------------------------------------------------
 * Answers */

static const char anthropic_answer[] =
    "{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\","
    "\"content\":[{\"type\":\"thinking\",\"thinking\":\"The user wants weather.\",\"signature\":\"EqQB\"},"
    "{\"type\":\"text\",\"text\":\"I'll check \"},{\"type\":\"text\",\"text\":\"the weather.\"},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_01A09q90qw90lq917835lq9\",\"name\":\"get_weather\",\"input\":{\"location\":"
    "\"San Francisco, CA\",\"unit\":\"celsius\",\"days\":3}}],"
    "\"stop_reason\":\"tool_use\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":20,"
    "\"cache_read_input_tokens\":100,\"output_tokens\":89,\"service_tier\":\"standard\"}}";

static void test_messages_answer_to_chat(void **state)
{
    tg_proto_usage_t u;
    json_t *j = xresp(CHAT, MSGS, anthropic_answer, NULL, &u);
    assert_jstr(j, "id", "chatcmpl-01XFDUDYJgAACzvnptvVoYEL");
    assert_jstr(j, "object", "chat.completion");
    assert_true(json_integer_value(jp(j, "created")) > 1700000000);
    assert_jstr(j, "model", "claude-sonnet-4-5-20250929");
    assert_jstr(j, "choices.0.message.role", "assistant");
    assert_jstr(j, "choices.0.message.content", "I'll check the weather.");
    assert_jstr(j, "choices.0.message.reasoning_content", "The user wants weather.");
    assert_jstr(j, "choices.0.message.tool_calls.0.id", "toolu_01A09q90qw90lq917835lq9");
    assert_jstr(j, "choices.0.message.tool_calls.0.type", "function");
    assert_jstr(j, "choices.0.message.tool_calls.0.function.name", "get_weather");
    assert_jstr(j, "choices.0.message.tool_calls.0.function.arguments",
                "{\"location\":\"San Francisco, CA\",\"unit\":\"celsius\",\"days\":3}");
    assert_jstr(j, "choices.0.finish_reason", "tool_calls");
    assert_jint(j, "usage.prompt_tokens", 145); /* 25 + 20 written + 100 read */
    assert_jint(j, "usage.completion_tokens", 89);
    assert_jint(j, "usage.total_tokens", 234);
    assert_jint(j, "usage.prompt_tokens_details.cached_tokens", 100);
    assert_int_equal(u.prompt_tokens, 145);
    assert_int_equal(u.completion_tokens, 89);
    assert_int_equal(u.cached_tokens, 100);
    assert_int_equal(u.seen, 1);
    json_decref(j);

    /* the client-visible model, and the other stop reasons */
    j = xresp(CHAT, MSGS,
              "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\",\"content\":[{\"type\":"
              "\"text\",\"text\":\"Hi\"}],\"stop_reason\":\"max_tokens\",\"usage\":{\"input_tokens\":3,\"output_tokens\":5}}",
              "my-alias", &u);
    assert_jstr(j, "model", "my-alias");
    assert_jstr(j, "choices.0.finish_reason", "length");
    assert_jabsent(j, "choices.0.message.tool_calls");
    assert_int_equal(u.prompt_tokens, 3);
    assert_int_equal(u.cached_tokens, 0);
    json_decref(j);
    j = xresp(CHAT, MSGS,
              "{\"id\":\"msg_2\",\"type\":\"message\",\"content\":[],\"stop_reason\":\"stop_sequence\",\"stop_sequence\":"
              "\"END\",\"usage\":{\"input_tokens\":3,\"output_tokens\":0}}",
              NULL, &u);
    assert_jstr(j, "choices.0.finish_reason", "stop");
    assert_jstr(j, "choices.0.message.content", "");
    json_decref(j);
    j = xresp(CHAT, MSGS, "{\"id\":\"msg_3\",\"content\":[],\"stop_reason\":\"refusal\"}", NULL, &u);
    assert_jstr(j, "choices.0.finish_reason", "content_filter");
    assert_int_equal(u.prompt_tokens, 0);
    json_decref(j);
}

static const char chat_answer[] =
    "{\"id\":\"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG\",\"object\":\"chat.completion\",\"created\":1741570283,"
    "\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
    "\"Checking both.\",\"refusal\":null,\"tool_calls\":[{\"id\":\"call_abc\",\"type\":\"function\",\"function\":"
    "{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\": \\\"Paris\\\"}\"}},{\"id\":\"call_def\",\"type\":\"function\","
    "\"function\":{\"name\":\"get_time\",\"arguments\":\"not json\"}}],\"annotations\":[]},\"logprobs\":null,"
    "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":1117,\"completion_tokens\":46,\"total_tokens\":1163,"
    "\"prompt_tokens_details\":{\"cached_tokens\":1024,\"audio_tokens\":0},\"completion_tokens_details\":"
    "{\"reasoning_tokens\":0}},\"service_tier\":\"default\",\"system_fingerprint\":\"fp_fc9f1d7035\"}";

static void test_chat_answer_to_messages(void **state)
{
    tg_proto_usage_t u;
    json_t *j = xresp(MSGS, CHAT, chat_answer, NULL, &u);
    assert_jstr(j, "id", "msg_B9MHDbslfkBeAs8l4bebGdFOJ6PeG");
    assert_jstr(j, "type", "message");
    assert_jstr(j, "role", "assistant");
    assert_jstr(j, "model", "gpt-4o-2024-08-06");
    assert_jstr(j, "content.0.type", "text");
    assert_jstr(j, "content.0.text", "Checking both.");
    assert_jstr(j, "content.1.type", "tool_use");
    assert_jstr(j, "content.1.id", "call_abc");
    assert_jstr(j, "content.1.name", "get_weather");
    assert_jstr(j, "content.1.input.city", "Paris");
    assert_jstr(j, "content.2.name", "get_time");
    assert_int_equal(json_object_size(jp(j, "content.2.input")), 0); /* unparseable arguments */
    assert_jstr(j, "stop_reason", "tool_use");
    assert_jnull(j, "stop_sequence");
    assert_jint(j, "usage.input_tokens", 93); /* 1117 - 1024 cached */
    assert_jint(j, "usage.cache_read_input_tokens", 1024);
    assert_jint(j, "usage.output_tokens", 46);
    assert_int_equal(u.prompt_tokens, 1117);
    assert_int_equal(u.cached_tokens, 1024);
    assert_int_equal(u.completion_tokens, 46);
    json_decref(j);

    j = xresp(MSGS, CHAT,
              "{\"id\":\"x\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,\"refusal\":"
              "\"I can't help with that.\"},\"finish_reason\":\"content_filter\"}]}",
              "claude-alias", &u);
    assert_jstr(j, "model", "claude-alias");
    assert_jstr(j, "content.0.text", "I can't help with that.");
    assert_jstr(j, "stop_reason", "refusal");
    assert_int_equal(u.seen, 0);
    json_decref(j);
    j = xresp(MSGS, CHAT,
              "{\"id\":\"x\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"abc\"},"
              "\"finish_reason\":\"length\"}]}",
              NULL, &u);
    assert_jstr(j, "stop_reason", "max_tokens");
    json_decref(j);
}

static void test_answer_errors(void **state)
{
    char *out = NULL, *err = NULL;
    size_t n;
    tg_proto_usage_t u;
    assert_int_equal(tg_proto_response(CHAT, MSGS, "<html>", 6, NULL, &out, &n, &u, &err), -1);
    assert_non_null(strstr(err, "upstream answer: not valid JSON"));
    free(err);
    const char *e = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}";
    assert_int_equal(tg_proto_response(CHAT, MSGS, e, strlen(e), NULL, &out, &n, &u, &err), -1);
    assert_string_equal(err, "upstream answer: error: Overloaded");
    free(err);
    const char *c = "{\"id\":\"x\",\"choices\":[]}";
    assert_int_equal(tg_proto_response(MSGS, CHAT, c, strlen(c), NULL, &out, &n, &u, &err), -1);
    assert_non_null(strstr(err, "choices[0].message"));
    free(err);
    const char *a = "{\"id\":\"x\",\"content\":\"text\"}";
    assert_int_equal(tg_proto_response(CHAT, MSGS, a, strlen(a), NULL, &out, &n, &u, &err), -1);
    assert_non_null(strstr(err, "content: must be an array"));
    free(err);
    assert_null(out);
}

/* ---------------------------------------------------------------------------------------------
 * Streams: Anthropic upstream → OpenAI chat client (events as api.anthropic.com sends them) */

static const char *const anthropic_stream[] = {
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_014p7gG3wDgGV9EUtLvnow3U\","
    "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"stop_sequence\":null,"
    "\"usage\":{\"input_tokens\":472,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":2048,"
    "\"output_tokens\":2},\"content\":[],\"stop_reason\":null}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
    "\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n",
    "event: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
    "\"thinking_delta\",\"thinking\":\"Need the weather.\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
    "\"signature_delta\",\"signature\":\"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":"
    "\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":"
    "\"text_delta\",\"text\":\"Okay, let's check \"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":"
    "\"text_delta\",\"text\":\"the weather — ☀?\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":"
    "\"tool_use\",\"id\":\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":"
    "\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":"
    "\"input_json_delta\",\"partial_json\":\"{\\\"location\\\":\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":"
    "\"input_json_delta\",\"partial_json\":\" \\\"San Fra\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":"
    "\"input_json_delta\",\"partial_json\":\"ncisco, CA\\\"}\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":3,\"content_block\":{\"type\":"
    "\"tool_use\",\"id\":\"toolu_02\",\"name\":\"get_time\",\"input\":{}}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":3,\"delta\":{\"type\":"
    "\"input_json_delta\",\"partial_json\":\"{\\\"tz\\\": \\\"PST\\\"}\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":3}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\","
    "\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    NULL};

static void run_anthropic_to_chat(int wants_usage)
{
    tg_proto_stream_t *s = tg_proto_stream_new(CHAT, MSGS, wants_usage ? "claude-alias" : NULL, wants_usage);
    assert_non_null(s);
    sink_t k = {0};
    for (int i = 0; anthropic_stream[i]; i++) {
        feed(s, anthropic_stream[i], &k);
        if (i == 0) { /* prompt usage known from the first event */
            tg_proto_usage_t u;
            tg_proto_stream_usage(s, &u);
            assert_int_equal(u.prompt_tokens, 2520);
            assert_int_equal(u.cached_tokens, 2048);
            assert_int_equal(u.seen, 1);
        }
    }
    tg_proto_stream_end(s, sink_emit, &k); /* nothing more: already closed */
    json_t *ev = sink_events(&k);
    const char *names = event_names(ev);
    if (wants_usage)
        assert_string_equal(names, "chunk,chunk,chunk,chunk,chunk,chunk,chunk,chunk,chunk,chunk,chunk,chunk,[DONE]");
    else
        assert_string_equal(names, "chunk,chunk,chunk,chunk,chunk,chunk,chunk,chunk,chunk,chunk,chunk,[DONE]");
    json_t *c0 = jp(ev, "0.data");
    assert_jstr(c0, "id", "chatcmpl-014p7gG3wDgGV9EUtLvnow3U");
    assert_jstr(c0, "object", "chat.completion.chunk");
    assert_jstr(c0, "model", wants_usage ? "claude-alias" : "claude-sonnet-4-5-20250929");
    assert_jstr(c0, "choices.0.delta.role", "assistant");
    assert_jstr(c0, "choices.0.delta.content", "");
    assert_jnull(c0, "choices.0.finish_reason");
    if (wants_usage)
        assert_jnull(c0, "usage");
    else
        assert_jabsent(c0, "usage");
    assert_jstr(ev, "1.data.choices.0.delta.reasoning_content", "Need the weather.");
    assert_jstr(ev, "2.data.choices.0.delta.content", "Okay, let's check ");
    assert_jstr(ev, "3.data.choices.0.delta.content", "the weather — ☀?");
    json_t *t = jp(ev, "4.data.choices.0.delta.tool_calls.0");
    assert_jint(t, "index", 0);
    assert_jstr(t, "id", "toolu_01T1x1fJ34qAmk2tNTrN7Up6");
    assert_jstr(t, "type", "function");
    assert_jstr(t, "function.name", "get_weather");
    assert_jstr(t, "function.arguments", "");
    /* the empty fragment is not relayed; the others are, in order */
    assert_jstr(ev, "5.data.choices.0.delta.tool_calls.0.function.arguments", "{\"location\":");
    assert_jabsent(ev, "5.data.choices.0.delta.tool_calls.0.id");
    assert_jstr(ev, "6.data.choices.0.delta.tool_calls.0.function.arguments", " \"San Fra");
    assert_jstr(ev, "7.data.choices.0.delta.tool_calls.0.function.arguments", "ncisco, CA\"}");
    assert_jint(ev, "8.data.choices.0.delta.tool_calls.0.index", 1);
    assert_jstr(ev, "8.data.choices.0.delta.tool_calls.0.id", "toolu_02");
    assert_jint(ev, "9.data.choices.0.delta.tool_calls.0.index", 1);
    assert_jstr(ev, "10.data.choices.0.finish_reason", "tool_calls");
    assert_int_equal(json_object_size(jp(ev, "10.data.choices.0.delta")), 0);
    if (wants_usage) {
        json_t *uc = jp(ev, "11.data");
        assert_int_equal(json_array_size(jp(uc, "choices")), 0);
        assert_jint(uc, "usage.prompt_tokens", 2520);
        assert_jint(uc, "usage.completion_tokens", 89);
        assert_jint(uc, "usage.prompt_tokens_details.cached_tokens", 2048);
    }
    tg_proto_usage_t u;
    tg_proto_stream_usage(s, &u);
    assert_int_equal(u.prompt_tokens, 2520);
    assert_int_equal(u.completion_tokens, 89);
    /* text and arguments in UTF-8 code points ("—" and "☀" count one each) */
    assert_int_equal(tg_proto_stream_text_chars(s), 17 + 18 + 16 + 12 + 9 + 12 + 13);
    json_decref(ev);
    sink_free(&k);
    tg_proto_stream_free(s);
}

static void test_stream_anthropic_to_chat(void **state)
{
    run_anthropic_to_chat(1);
    run_anthropic_to_chat(0);
}

static void test_stream_anthropic_error_and_abort(void **state)
{
    /* an overloaded error mid-stream reaches the client as an OpenAI error chunk, then [DONE] */
    tg_proto_stream_t *s = tg_proto_stream_new(CHAT, MSGS, NULL, 1);
    sink_t k = {0};
    feed(s, anthropic_stream[0], &k);
    feed(s, anthropic_stream[6], &k);
    feed(s, anthropic_stream[7], &k);
    feed(s,
         "event: error\r\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\r\n\r\n",
         &k);
    tg_proto_stream_end(s, sink_emit, &k);
    tg_proto_stream_end(s, sink_emit, &k);
    json_t *ev = sink_events(&k);
    assert_string_equal(event_names(ev), "chunk,chunk,chunk,[DONE]");
    assert_jstr(ev, "2.data.error.message", "Overloaded");
    assert_jstr(ev, "2.data.error.type", "overloaded_error");
    json_decref(ev);
    sink_free(&k);
    tg_proto_stream_free(s);

    /* the upstream vanishes after some text: the client still gets a well-formed ending, and
     * the relayed text is counted for an estimate */
    s = tg_proto_stream_new(CHAT, MSGS, NULL, 0);
    feed(s, anthropic_stream[0], &k);
    feed(s, anthropic_stream[6], &k);
    feed(s, anthropic_stream[7], &k);
    assert_int_equal(tg_proto_stream_text_chars(s), 18);
    tg_proto_stream_end(s, sink_emit, &k);
    ev = sink_events(&k);
    assert_string_equal(event_names(ev), "chunk,chunk,[DONE]");
    json_decref(ev);
    sink_free(&k);
    tg_proto_stream_free(s);

    /* malformed data is refused */
    s = tg_proto_stream_new(CHAT, MSGS, NULL, 0);
    const char *bad = "event: message_start\ndata: {\"type\":\"message_start\",\n\n";
    assert_int_equal(tg_proto_stream_event(s, bad, strlen(bad), sink_emit, &k), -1);
    bad = "event: content_block_start\ndata: {\"type\":\"content_block_start\"}\n\n";
    assert_int_equal(tg_proto_stream_event(s, bad, strlen(bad), sink_emit, &k), -1);
    /* comments and unknown events are not */
    const char *ok = ": keep-alive\n\n";
    assert_int_equal(tg_proto_stream_event(s, ok, strlen(ok), sink_emit, &k), 0);
    ok = "event: future_thing\ndata: {\"type\":\"future_thing\"}\n\n";
    assert_int_equal(tg_proto_stream_event(s, ok, strlen(ok), sink_emit, &k), 0);
    assert_int_equal(k.nevents, 0);
    sink_free(&k);
    tg_proto_stream_free(s);
}

/* ---------------------------------------------------------------------------------------------
 * Streams: OpenAI chat upstream → Anthropic client (chunks as api.openai.com sends them) */

#define CHUNK(delta, finish)                                                                                                       \
    "data: {\"id\":\"chatcmpl-AbC\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":"                        \
    "\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_f\",\"choices\":[{\"index\":0,\"delta\":" delta ","                         \
    "\"logprobs\":null,\"finish_reason\":" finish "}],\"usage\":null}\n\n"

static const char *const chat_stream[] = {
    CHUNK("{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}", "null"),
    CHUNK("{\"content\":\"Let me\"}", "null"),
    CHUNK("{\"content\":\" look.\"}", "null"),
    CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"call_DdmO9pD3xa9XTPNJ32zg2hcA\",\"type\":\"function\",\"function\":"
          "{\"name\":\"get_weather\",\"arguments\":\"\"}}]}",
          "null"),
    CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"\"}}]}", "null"),
    CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"location\"}}]}", "null"),
    CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\":\\\"Paris\\\"}\"}}]}", "null"),
    CHUNK("{\"tool_calls\":[{\"index\":1,\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"get_time\","
          "\"arguments\":\"\"}}]}",
          "null"),
    CHUNK("{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"{}\"}}]}", "null"),
    CHUNK("{}", "\"tool_calls\""),
    "data: {\"id\":\"chatcmpl-AbC\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":"
    "\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_f\",\"choices\":[],\"usage\":{\"prompt_tokens\":2100,"
    "\"completion_tokens\":31,\"total_tokens\":2131,\"prompt_tokens_details\":{\"cached_tokens\":1920,"
    "\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n",
    "data: [DONE]\n\n",
    NULL};

static void test_stream_chat_to_anthropic(void **state)
{
    tg_proto_stream_t *s = tg_proto_stream_new(MSGS, CHAT, NULL, 0);
    sink_t k = {0};
    for (int i = 0; chat_stream[i]; i++)
        feed(s, chat_stream[i], &k);
    tg_proto_stream_end(s, sink_emit, &k);
    json_t *ev = sink_events(&k);
    assert_string_equal(event_names(ev),
                        "message_start,content_block_start,content_block_delta,content_block_delta,content_block_stop,"
                        "content_block_start,content_block_delta,content_block_delta,content_block_delta,"
                        "content_block_stop,content_block_start,content_block_delta,content_block_stop,message_delta,"
                        "message_stop");
    json_t *m = jp(ev, "0.data.message");
    assert_jstr(ev, "0.data.type", "message_start");
    assert_jstr(m, "id", "msg_AbC");
    assert_jstr(m, "type", "message");
    assert_jstr(m, "role", "assistant");
    assert_jstr(m, "model", "gpt-4o-2024-08-06");
    assert_int_equal(json_array_size(jp(m, "content")), 0);
    assert_jnull(m, "stop_reason");
    assert_jint(m, "usage.input_tokens", 0);
    assert_jint(m, "usage.output_tokens", 0);
    assert_jint(ev, "1.data.index", 0);
    assert_jstr(ev, "1.data.content_block.type", "text");
    assert_jstr(ev, "1.data.content_block.text", "");
    assert_jstr(ev, "2.data.delta.type", "text_delta");
    assert_jstr(ev, "2.data.delta.text", "Let me");
    assert_jstr(ev, "3.data.delta.text", " look.");
    assert_jint(ev, "4.data.index", 0);
    assert_jint(ev, "5.data.index", 1);
    assert_jstr(ev, "5.data.content_block.type", "tool_use");
    assert_jstr(ev, "5.data.content_block.id", "call_DdmO9pD3xa9XTPNJ32zg2hcA");
    assert_jstr(ev, "5.data.content_block.name", "get_weather");
    assert_int_equal(json_object_size(jp(ev, "5.data.content_block.input")), 0);
    assert_jstr(ev, "6.data.delta.type", "input_json_delta");
    assert_jstr(ev, "6.data.delta.partial_json", "{\"");
    assert_jstr(ev, "7.data.delta.partial_json", "location");
    assert_jstr(ev, "8.data.delta.partial_json", "\":\"Paris\"}");
    assert_jint(ev, "8.data.index", 1);
    assert_jint(ev, "10.data.index", 2);
    assert_jstr(ev, "10.data.content_block.name", "get_time");
    assert_jint(ev, "11.data.index", 2);
    assert_jint(ev, "12.data.index", 2);
    json_t *md = jp(ev, "13.data");
    assert_jstr(md, "delta.stop_reason", "tool_use");
    assert_jnull(md, "delta.stop_sequence");
    assert_jint(md, "usage.output_tokens", 31);
    assert_jint(md, "usage.input_tokens", 180); /* 2100 - 1920 cached */
    assert_jint(md, "usage.cache_read_input_tokens", 1920);
    assert_jstr(ev, "14.data.type", "message_stop");
    tg_proto_usage_t u;
    tg_proto_stream_usage(s, &u);
    assert_int_equal(u.prompt_tokens, 2100);
    assert_int_equal(u.completion_tokens, 31);
    assert_int_equal(u.cached_tokens, 1920);
    json_decref(ev);
    sink_free(&k);
    tg_proto_stream_free(s);
}

static void test_stream_chat_to_anthropic_variants(void **state)
{
    /* usage in the finish chunk (some compatible servers), no [DONE]: stream_end closes */
    tg_proto_stream_t *s = tg_proto_stream_new(MSGS, CHAT, "claude-alias", 0);
    sink_t k = {0};
    feed(s, "data: {\"id\":\"x1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"}}]}\n\n", &k);
    feed(s,
         "data: {\"id\":\"x1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}],\"usage\":"
         "{\"prompt_tokens\":5,\"completion_tokens\":1}}\n\n",
         &k);
    tg_proto_stream_end(s, sink_emit, &k);
    tg_proto_stream_end(s, sink_emit, &k); /* idempotent */
    json_t *ev = sink_events(&k);
    assert_string_equal(event_names(ev),
                        "message_start,content_block_start,content_block_delta,content_block_stop,message_delta,message_stop");
    assert_jstr(ev, "0.data.message.model", "claude-alias");
    assert_jstr(ev, "4.data.delta.stop_reason", "max_tokens");
    assert_jint(ev, "4.data.usage.input_tokens", 5);
    json_decref(ev);
    sink_free(&k);
    tg_proto_stream_free(s);

    /* tool calls without index (some servers), the whole call in one chunk; an abrupt end
     * leaves stop_reason null */
    s = tg_proto_stream_new(MSGS, CHAT, NULL, 0);
    feed(s,
         "data: {\"id\":\"x2\",\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":\"a\",\"type\":\"function\","
         "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"q\\\":1}\"}}]}}]}\n\n",
         &k);
    feed(s,
         "data: {\"id\":\"x2\",\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":\"b\",\"type\":\"function\","
         "\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]}}]}\n\n",
         &k);
    tg_proto_stream_end(s, sink_emit, &k);
    ev = sink_events(&k);
    assert_string_equal(event_names(ev), "message_start,content_block_start,content_block_delta,content_block_stop,"
                                         "content_block_start,content_block_delta,content_block_stop,message_delta,"
                                         "message_stop");
    assert_jstr(ev, "1.data.content_block.id", "a");
    assert_jstr(ev, "2.data.delta.partial_json", "{\"q\":1}");
    assert_jstr(ev, "4.data.content_block.id", "b");
    assert_jnull(ev, "7.data.delta.stop_reason");
    assert_jabsent(ev, "7.data.usage.input_tokens"); /* never reported */
    json_decref(ev);
    sink_free(&k);
    tg_proto_stream_free(s);

    /* an OpenAI error chunk becomes Anthropic's error event, and nothing follows it */
    s = tg_proto_stream_new(MSGS, CHAT, NULL, 0);
    feed(s, chat_stream[0], &k);
    feed(s, "data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\"}}\n\n", &k);
    tg_proto_stream_end(s, sink_emit, &k);
    ev = sink_events(&k);
    assert_string_equal(event_names(ev), "message_start,error");
    assert_jstr(ev, "1.data.type", "error");
    assert_jstr(ev, "1.data.error.type", "api_error");
    assert_jstr(ev, "1.data.error.message", "The server had an error");
    json_decref(ev);
    sink_free(&k);
    tg_proto_stream_free(s);
}

/* ---------------------------------------------------------------------------------------------
 * Error bodies */

static json_t *xerr(tg_surface_t from, tg_surface_t to, int status, const char *body)
{
    char *out;
    size_t n;
    assert_int_equal(tg_proto_error(from, to, status, body, body ? strlen(body) : 0, &out, &n), 0);
    json_error_t je;
    json_t *j = json_loadb(out, n, 0, &je);
    assert_non_null(j);
    free(out);
    return j;
}

static void test_error_translation(void **state)
{
    json_t *j = xerr(MSGS, CHAT, 429,
                     "{\"error\":{\"message\":\"Rate limit reached for gpt-4o\",\"type\":\"requests\",\"param\":null,"
                     "\"code\":\"rate_limit_exceeded\"}}");
    assert_jstr(j, "type", "error");
    assert_jstr(j, "error.type", "rate_limit_error");
    assert_jstr(j, "error.message", "Rate limit reached for gpt-4o");
    json_decref(j);
    j = xerr(CHAT, MSGS, 529, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}");
    assert_jstr(j, "error.message", "Overloaded");
    assert_jstr(j, "error.type", "server_error");
    assert_jstr(j, "error.code", "overloaded_error");
    assert_jnull(j, "error.param");
    json_decref(j);
    j = xerr(CHAT, MSGS, 400,
             "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"max_tokens: Field required\"},"
             "\"request_id\":\"req_1\"}");
    assert_jstr(j, "error.type", "invalid_request_error");
    assert_jstr(j, "error.message", "max_tokens: Field required");
    json_decref(j);
    j = xerr(MSGS, CHAT, 401, "{\"error\":{\"message\":\"Incorrect API key provided\",\"code\":\"invalid_api_key\"}}");
    assert_jstr(j, "error.type", "authentication_error");
    json_decref(j);
    /* not JSON: the text is the message; empty: the status is */
    j = xerr(MSGS, CHAT, 502, "<html><body>502 Bad Gateway</body></html>\n");
    assert_jstr(j, "error.type", "api_error");
    assert_jstr(j, "error.message", "<html><body>502 Bad Gateway</body></html>");
    json_decref(j);
    j = xerr(CHAT, MSGS, 503, "");
    assert_jstr(j, "error.message", "upstream returned HTTP 503");
    json_decref(j);
    j = xerr(MSGS, CHAT, 500, NULL);
    assert_jstr(j, "error.message", "upstream returned HTTP 500");
    assert_jstr(j, "error.type", "api_error");
    json_decref(j);
    /* invalid UTF-8 in a non-JSON body does not break the JSON we produce */
    j = xerr(CHAT, MSGS, 500, "bad \xff\xfe bytes");
    assert_jstr(j, "error.message", "bad ?? bytes");
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_to_messages_basic),
        cmocka_unit_test(test_chat_to_messages_limits),
        cmocka_unit_test(test_chat_to_messages_images),
        cmocka_unit_test(test_chat_to_messages_tools),
        cmocka_unit_test(test_chat_to_messages_errors),
        cmocka_unit_test(test_messages_to_chat_request),
        cmocka_unit_test(test_messages_to_chat_request_errors),
        cmocka_unit_test(test_messages_answer_to_chat),
        cmocka_unit_test(test_chat_answer_to_messages),
        cmocka_unit_test(test_answer_errors),
        cmocka_unit_test(test_stream_anthropic_to_chat),
        cmocka_unit_test(test_stream_anthropic_error_and_abort),
        cmocka_unit_test(test_stream_chat_to_anthropic),
        cmocka_unit_test(test_stream_chat_to_anthropic_variants),
        cmocka_unit_test(test_error_translation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
