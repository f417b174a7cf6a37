/* Unit tests of worker/endpoint.c: the endpoint table and the multipart model field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "master/config.h"
#include "worker/endpoint.h"

static h2o_iovec_t iov(const char *s)
{
    return h2o_iovec_init(s, strlen(s));
}

static void test_find(void **state)
{
    const tg_endpoint_t *ep = tg_endpoint_find(iov("/v1/chat/completions"));
    assert_non_null(ep);
    assert_int_equal(ep->api, TG_API_CHAT);
    assert_string_equal(tg_endpoint_find(iov("/chat/completions?x=1"))->upstream_path, "/v1/chat/completions");
    assert_string_equal(tg_endpoint_find(iov("/v1/messages/"))->upstream_path, "/v1/messages");
    assert_int_equal(tg_endpoint_find(iov("/messages"))->api, TG_API_MESSAGES);
    assert_true(tg_endpoint_find(iov("/v1/audio/transcriptions"))->multipart);
    assert_null(tg_endpoint_find(iov("/v1/chat/completionsX")));
    assert_null(tg_endpoint_find(iov("/v1/chat")));
    assert_null(tg_endpoint_find(iov("/dashboard/status")));
    /* protocol masks: messages go to anthropic and router keys, chat to openai and router */
    assert_true(tg_endpoint_find(iov("/v1/messages"))->protocols & (1u << TG_PROTO_ANTHROPIC));
    assert_false(tg_endpoint_find(iov("/v1/messages"))->protocols & (1u << TG_PROTO_OPENAI));
    assert_true(tg_endpoint_find(iov("/v1/chat/completions"))->protocols & (1u << TG_PROTO_ROUTER));
}

static const char BODY[] = "--XyZ\r\n"
                           "Content-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
                           "Content-Type: audio/wav\r\n\r\n"
                           "RIFF....\r\n"
                           "--XyZ\r\n"
                           "Content-Disposition: form-data; name=\"model\"\r\n\r\n"
                           "whisper-1\r\n"
                           "--XyZ--\r\n";

static void test_multipart_model(void **state)
{
    h2o_iovec_t model;
    h2o_iovec_t body = h2o_iovec_init(BODY, sizeof(BODY) - 1);
    assert_int_equal(tg_multipart_model(body, iov("multipart/form-data; boundary=XyZ"), &model), 0);
    assert_int_equal(model.len, 9);
    assert_memory_equal(model.base, "whisper-1", 9);
    assert_int_equal(tg_multipart_model(body, iov("multipart/form-data; boundary=\"XyZ\""), &model), 0);
    assert_int_equal(model.len, 9);
    /* wrong boundary, no boundary, no model field */
    assert_int_equal(tg_multipart_model(body, iov("multipart/form-data; boundary=Other"), &model), -1);
    assert_int_equal(tg_multipart_model(body, iov("multipart/form-data"), &model), -1);
    static const char nomodel[] = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--XyZ--\r\n";
    assert_int_equal(tg_multipart_model(h2o_iovec_init(nomodel, sizeof(nomodel) - 1), iov("multipart/form-data; boundary=XyZ"), &model), -1);
    /* truncated: the value never ends */
    static const char cut[] = "--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper";
    assert_int_equal(tg_multipart_model(h2o_iovec_init(cut, sizeof(cut) - 1), iov("multipart/form-data; boundary=XyZ"), &model), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_multipart_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
