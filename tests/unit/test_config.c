/* tests/unit/test_config.c: unit tests for master/config.c (YAML loading, validation messages,
 * size/duration parsers, the example conf/tollgate.yaml). */
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
#include <unistd.h>

#include <cmocka.h>

#include "master/config.h"

/* Writes TEXT to a fresh temp file; returns its malloc'd path. */
static char *write_temp(const char *text)
{
    char *path = strdup("/tmp/tg_config_test_XXXXXX");
    int fd;
    size_t len = strlen(text);

    assert_non_null(path);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

/* Loads YAML from a temp file into *CFG; returns tg_config_load's result, *ERR set on failure. */
static int load_text(const char *yaml, tg_config_t *cfg, char **err)
{
    char *path = write_temp(yaml);
    int rc = tg_config_load(path, cfg, err);

    unlink(path);
    free(path);
    return rc;
}

/* Asserts that YAML fails with "FILE:LINE: KEY: ..." where the message contains REASON. */
static void expect_error(const char *yaml, int line, const char *key, const char *reason)
{
    char *path = write_temp(yaml);
    char *err = NULL, *prefix = NULL;
    tg_config_t cfg;

    assert_int_equal(tg_config_load(path, &cfg, &err), -1);
    assert_non_null(err);
    assert_true(asprintf(&prefix, "%s:%d: %s: ", path, line, key) > 0);
    if (strncmp(err, prefix, strlen(prefix)) != 0 || strstr(err, reason) == NULL)
        fail_msg("got \"%s\", want prefix \"%s\" and reason \"%s\"", err, prefix, reason);
    assert_null(strchr(err, '\n'));
    assert_null(cfg.path); /* *out left zeroed */
    assert_int_equal(cfg.n_listens, 0);
    free(prefix);
    free(err);
    unlink(path);
    free(path);
}

/* Asserts that YAML loads; the caller checks and disposes *CFG. */
static void expect_ok(const char *yaml, tg_config_t *cfg)
{
    char *err = NULL;

    if (load_text(yaml, cfg, &err) != 0)
        fail_msg("unexpected error: %s", err ? err : "(null)");
    assert_null(err);
}

static void check_defaults(const tg_config_t *cfg)
{
    assert_int_equal(cfg->n_listens, 1);
    assert_string_equal(cfg->listens[0].host, "127.0.0.1");
    assert_int_equal(cfg->listens[0].port, 8080);
    assert_null(cfg->listens[0].tls_cert);
    assert_null(cfg->listens[0].tls_key);
    assert_int_equal(cfg->workers, 0);
    assert_string_equal(cfg->data_dir, "./data");
    assert_string_equal(cfg->timezone, "UTC");
    assert_int_equal(cfg->arena.max_accounts, 100000);
    assert_int_equal(cfg->arena.max_upstream_keys, 4096);
    assert_int_equal(cfg->arena.ring_slots, 65536);
    assert_int_equal(cfg->server.max_request_body, 16u << 20);
    assert_int_equal(cfg->server.drain_timeout_ms, 30000);
    assert_int_equal(cfg->server.max_connections, 10000);
    assert_int_equal(cfg->upstream.connect_timeout_ms, 5000);
    assert_int_equal(cfg->upstream.first_byte_timeout_ms, 120000);
    assert_int_equal(cfg->upstream.idle_timeout_ms, 300000);
    assert_int_equal(cfg->upstream.max_connections, 256);
    assert_int_equal(cfg->upstream.client, 0); /* auto */
    assert_string_equal(cfg->log.access, "-");
    assert_string_equal(cfg->log.error, "-");
    assert_string_equal(cfg->log.level, "info");
    assert_string_equal(cfg->bootstrap.root_key_file, "./data/root.key");
    assert_int_equal(cfg->n_keys, 0);
    assert_int_equal(cfg->store.usage_retention_days, 90);
    assert_int_equal(cfg->store.allow_private_providers, 0);
}

static void test_defaults(void **state)
{
    static const char *const empties[] = {"", "# only a comment\n", "---\n", "~\n", "---\n...\n"};

    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        tg_config_t cfg;
        expect_ok(empties[i], &cfg);
        check_defaults(&cfg);
        assert_non_null(cfg.path);
        tg_config_dispose(&cfg);
        assert_null(cfg.path);
    }
}

static void test_store_section(void **state)
{
    tg_config_t cfg;

    expect_ok("store:\n  usage_retention_days: 0\n", &cfg);
    assert_int_equal(cfg.store.usage_retention_days, 0);
    tg_config_dispose(&cfg);
    expect_ok("store: { usage_retention_days: 400, allow_private_providers: true }\n", &cfg);
    assert_int_equal(cfg.store.usage_retention_days, 400);
    assert_int_equal(cfg.store.allow_private_providers, 1);
    tg_config_dispose(&cfg);
    expect_error("store:\n  allow_private_providers: maybe\n", 2, "store.allow_private_providers", "");
    expect_error("store:\n  usage_retention_days: -1\n", 2, "store.usage_retention_days", "between 0 and 36500");
    expect_error("store:\n  usage_retention_days: 1.5\n", 2, "store.usage_retention_days", "must be an integer");
    expect_error("store:\n  keep: 1\n", 2, "store.keep", "unknown key");
}

static void test_empty_sections_keep_defaults(void **state)
{
    tg_config_t cfg;

    expect_ok("arena:\nserver: {}\nupstream:\nlog:\nbootstrap:\nkeys:\n", &cfg);
    check_defaults(&cfg);
    tg_config_dispose(&cfg);
}

static void test_full_file(void **state)
{
    char *cert = write_temp("cert"), *key = write_temp("key");
    char *yaml = NULL;
    tg_config_t cfg;

    setenv("TG_TEST_FULL_SECRET", "env-secret-value-123", 1);
    assert_true(asprintf(&yaml,
                         "listen:\n"
                         "  - host: 127.0.0.1\n"
                         "    port: 8080\n"
                         "  - host: \"::\"\n"
                         "    port: 8443\n"
                         "    tls: { cert: %s, key: %s }\n"
                         "workers: 4\n"
                         "data_dir: /var/lib/tollgate\n"
                         "timezone: UTC\n"
                         "arena: { max_accounts: 5000, max_upstream_keys: 16, ring_slots: 1024 }\n"
                         "server: { max_request_body: 512k, drain_timeout: 250ms, max_connections: 100 }\n"
                         "upstream:\n"
                         "  connect_timeout: 2s\n"
                         "  first_byte_timeout: 1m\n"
                         "  idle_timeout: 1h\n"
                         "  max_connections: 32\n"
                         "  client: curl\n"
                         "log: { access: \"off\", error: /tmp/err.log, level: debug }\n"
                         "keys:\n"
                         "  - name: main\n"
                         "    level: 1\n"
                         "    provider: https://api.example.com/v1\n"
                         "    secret: \"sk-0123456789\"\n"
                         "  - name: claude\n"
                         "    level: 2\n"
                         "    provider: http://[::1]:9000\n"
                         "    secret_env: TG_TEST_FULL_SECRET\n"
                         "    protocol: anthropic\n",
                         cert, key) > 0);
    expect_ok(yaml, &cfg);
    assert_int_equal(cfg.n_listens, 2);
    assert_string_equal(cfg.listens[1].host, "::");
    assert_int_equal(cfg.listens[1].port, 8443);
    assert_string_equal(cfg.listens[1].tls_cert, cert);
    assert_string_equal(cfg.listens[1].tls_key, key);
    assert_null(cfg.listens[0].tls_cert);
    assert_int_equal(cfg.workers, 4);
    assert_string_equal(cfg.data_dir, "/var/lib/tollgate");
    assert_int_equal(cfg.arena.max_accounts, 5000);
    assert_int_equal(cfg.arena.max_upstream_keys, 16);
    assert_int_equal(cfg.arena.ring_slots, 1024);
    assert_int_equal(cfg.server.max_request_body, 512 * 1024);
    assert_int_equal(cfg.server.drain_timeout_ms, 250);
    assert_int_equal(cfg.server.max_connections, 100);
    assert_int_equal(cfg.upstream.connect_timeout_ms, 2000);
    assert_int_equal(cfg.upstream.first_byte_timeout_ms, 60000);
    assert_int_equal(cfg.upstream.idle_timeout_ms, 3600000);
    assert_int_equal(cfg.upstream.max_connections, 32);
    assert_int_equal(cfg.upstream.client, 1); /* curl */
    assert_string_equal(cfg.log.access, "off");
    assert_string_equal(cfg.log.error, "/tmp/err.log");
    assert_string_equal(cfg.log.level, "debug");
    assert_string_equal(cfg.bootstrap.root_key_file, "/var/lib/tollgate/root.key");
    assert_int_equal(cfg.n_keys, 2);
    assert_string_equal(cfg.keys[0].name, "main");
    assert_int_equal(cfg.keys[0].level, 1);
    assert_string_equal(cfg.keys[0].provider, "https://api.example.com/v1");
    assert_string_equal(cfg.keys[0].secret, "sk-0123456789");
    assert_null(cfg.keys[0].secret_env);
    assert_int_equal(cfg.keys[0].protocol, TG_PROTO_OPENAI);
    assert_string_equal(cfg.keys[1].secret, "env-secret-value-123");
    assert_string_equal(cfg.keys[1].secret_env, "TG_TEST_FULL_SECRET");
    assert_int_equal(cfg.keys[1].protocol, TG_PROTO_ANTHROPIC);
    tg_config_dispose(&cfg);
    unsetenv("TG_TEST_FULL_SECRET");
    unlink(cert);
    unlink(key);
    free(cert);
    free(key);
    free(yaml);
}

static void test_syntax_error(void **state)
{
    expect_error("workers: 1\nserver:\n  max_connections: 5\n bad: [\n", 4, "syntax error", "");
    expect_error("a: \"unterminated\n", 2, "syntax error", "quoted scalar");
    expect_error("workers: 1\n---\nworkers: 2\n", 3, "top level", "only one YAML document");
}

static void test_top_level_not_mapping(void **state)
{
    expect_error("- a\n- b\n", 1, "top level", "must be a mapping");
    expect_error("just a string\n", 1, "top level", "must be a mapping");
}

static void test_unknown_keys(void **state)
{
    expect_error("workers: 1\nfrobnicate: 2\n", 2, "frobnicate", "unknown key");
    expect_error("server:\n  max_connections: 5\n  bogus: 1\n", 3, "server.bogus", "unknown key");
    expect_error("listen:\n  - host: 127.0.0.1\n    port: 1\n    tls: { bogus: x }\n", 4, "listen[0].tls.bogus",
                 "unknown key");
    expect_error("keys:\n  - name: a\n    level: 1\n    provider: http://h\n    secret: 12345678\n    extra: 1\n",
                 6, "keys[0].extra", "unknown key");
    expect_error("? [a, b]\n: 1\n", 1, "top level", "keys must be plain strings");
}

static void test_wrong_types(void **state)
{
    expect_error("workers: abc\n", 1, "workers", "must be an integer");
    expect_error("workers: [1]\n", 1, "workers", "must be an integer");
    expect_error("workers: 1.5\n", 1, "workers", "must be an integer");
    expect_error("listen:\n  - host: 127.0.0.1\n    port: \"8080\"\n", 3, "listen[0].port", "must be an integer");
    expect_error("\narena: [1, 2]\n", 2, "arena", "must be a mapping");
    expect_error("listen: { host: 127.0.0.1 }\n", 1, "listen", "must be a list");
    expect_error("keys:\n  - just-a-string\n", 2, "keys[0]", "must be a mapping");
    expect_error("data_dir: [a]\n", 1, "data_dir", "must be a string");
    expect_error("data_dir:\n", 1, "data_dir", "must be a string");
    expect_error("data_dir: \"\"\n", 1, "data_dir", "must not be empty");
    expect_error("server:\n  max_request_body: lots\n", 2, "server.max_request_body", "must be a size");
    expect_error("server:\n  drain_timeout: soon\n", 2, "server.drain_timeout", "must be a duration");
}

static void test_out_of_range(void **state)
{
    expect_error("listen:\n  - host: 127.0.0.1\n    port: 70000\n", 3, "listen[0].port", "between 1 and 65535");
    expect_error("listen:\n  - host: 127.0.0.1\n    port: 0\n", 3, "listen[0].port", "between 1 and 65535");
    expect_error("workers: -1\n", 1, "workers", "must be between 0 and 1024");
    expect_error("workers: 99999999999999999999999\n", 1, "workers", "0 and 1024");
    expect_error("arena:\n  max_accounts: 8\n", 2, "arena.max_accounts", "between 16 and 16777216");
    expect_error("arena: { max_upstream_keys: 0 }\n", 1, "arena.max_upstream_keys", "between 1 and 1048576");
    expect_error("server: { max_request_body: 2g }\n", 1, "server.max_request_body", "between 1k and 1g");
    expect_error("upstream:\n  idle_timeout: 0\n", 2, "upstream.idle_timeout", "between 1ms and 24h");
    expect_error("keys:\n  - name: a\n    level: 0\n    provider: http://h\n    secret: 12345678\n", 3,
                 "keys[0].level", "between 1 and");
    expect_error("listen: []\n", 1, "listen", "between 1 and 64 entries");
}

static void test_ring_slots(void **state)
{
    tg_config_t cfg;

    expect_error("arena:\n  ring_slots: 3000\n", 2, "arena.ring_slots", "power of two");
    expect_error("arena:\n  ring_slots: 512\n", 2, "arena.ring_slots", "between 1024 and 16777216");
    expect_error("arena:\n  ring_slots: 33554432\n", 2, "arena.ring_slots", "between 1024 and 16777216");
    expect_ok("arena:\n  ring_slots: 16777216\n", &cfg);
    assert_int_equal(cfg.arena.ring_slots, 16777216);
    tg_config_dispose(&cfg);
}

static void test_duplicate_keys(void **state)
{
    expect_error("workers: 1\ndata_dir: a\nworkers: 2\n", 3, "workers", "duplicate key");
    expect_error("log:\n  level: info\n  level: debug\n", 3, "log.level", "duplicate key");
    expect_error("server: {}\nserver: {}\n", 2, "server", "duplicate key");
}

static void test_missing_file(void **state)
{
    tg_config_t cfg;
    char *err = NULL;

    assert_int_equal(tg_config_load("/nonexistent/tollgate.yaml", &cfg, &err), -1);
    assert_string_equal(err, "/nonexistent/tollgate.yaml: cannot open: No such file or directory");
    free(err);
    err = NULL;
    assert_int_equal(tg_config_load("/tmp", &cfg, &err), -1);
    assert_string_equal(err, "/tmp: cannot open: Is a directory");
    free(err);
}

static const char *const key_env_yaml = "keys:\n"
                                        "  - name: k\n"
                                        "    level: 1\n"
                                        "    provider: http://127.0.0.1:9000\n"
                                        "    secret_env: TG_TEST_SECRET_ENV\n";

static void test_secret_env(void **state)
{
    tg_config_t cfg;

    unsetenv("TG_TEST_SECRET_ENV");
    expect_error(key_env_yaml, 5, "keys[0].secret_env", "TG_TEST_SECRET_ENV is not set");
    setenv("TG_TEST_SECRET_ENV", "", 1);
    expect_error(key_env_yaml, 5, "keys[0].secret_env", "TG_TEST_SECRET_ENV is not set or empty");
    setenv("TG_TEST_SECRET_ENV", "short", 1);
    expect_error(key_env_yaml, 5, "keys[0].secret_env", "at least 8 characters");
    setenv("TG_TEST_SECRET_ENV", "sk-from-the-environment", 1);
    expect_ok(key_env_yaml, &cfg);
    assert_int_equal(cfg.n_keys, 1);
    assert_string_equal(cfg.keys[0].secret, "sk-from-the-environment");
    assert_string_equal(cfg.keys[0].secret_env, "TG_TEST_SECRET_ENV");
    tg_config_dispose(&cfg);
    unsetenv("TG_TEST_SECRET_ENV");
}

static void test_secret_rules(void **state)
{
    const char *head = "keys:\n  - name: k\n    level: 1\n    provider: http://127.0.0.1:9000\n";
    char *yaml = NULL;

    expect_error("keys:\n  - name: k\n    level: 1\n    provider: http://h\n    secret: short\n", 5,
                 "keys[0].secret", "at least 8 characters");
    expect_error("keys:\n  - name: k\n    level: 1\n    provider: http://h\n    secret: \"abcdefgh\\r\\nX: y\"\n", 5,
                 "keys[0].secret", "control characters");
    expect_error("keys:\n  - name: k\n    level: 1\n    provider: http://h\n", 2, "keys[0].secret",
                 "exactly one of secret or secret_env");
    setenv("TG_TEST_BOTH", "abcdefghijk", 1);
    assert_true(asprintf(&yaml, "%s    secret: abcdefghij\n    secret_env: TG_TEST_BOTH\n", head) > 0);
    expect_error(yaml, 2, "keys[0].secret", "exactly one of secret or secret_env");
    unsetenv("TG_TEST_BOTH");
    free(yaml);
    expect_error("keys:\n  - name: k\n    level: 1\n    provider: http://h\n    secret_env: 9BAD-NAME\n", 5,
                 "keys[0].secret_env", "environment variable name");
}

static void test_key_required_and_names(void **state)
{
    expect_error("keys:\n  - name: k\n    level: 1\n    secret: 12345678\n", 2, "keys[0].provider", "is required");
    expect_error("keys:\n  - level: 1\n    provider: http://h\n    secret: 12345678\n", 2, "keys[0].name",
                 "is required");
    expect_error("keys:\n  - name: a b\n    level: 1\n    provider: http://h\n    secret: 12345678\n", 2,
                 "keys[0].name", "may only contain");
    expect_error("keys:\n"
                 "  - { name: a, level: 1, provider: http://h, secret: 12345678 }\n"
                 "  - { name: b, level: 1, provider: http://h, secret: 12345678 }\n"
                 "  - { name: a, level: 2, provider: http://h, secret: 12345678 }\n",
                 4, "keys[2].name", "duplicate key name \"a\"");
    expect_error("arena: { max_upstream_keys: 1 }\n"
                 "keys:\n"
                 "  - { name: a, level: 1, provider: http://h, secret: 12345678 }\n"
                 "  - { name: b, level: 1, provider: http://h, secret: 12345678 }\n",
                 3, "keys", "more than arena.max_upstream_keys");
}

static void test_upstream_client(void **state)
{
    expect_error("upstream:\n  client: libcurl\n", 2, "upstream.client", "must be one of auto, curl");
}

static void test_upstream_ca_file(void **state)
{
    char *not_pem = write_temp("not a certificate\n"), *yaml = NULL;

    expect_error("upstream:\n  ca_file: /nonexistent/ca.pem\n", 2, "upstream.ca_file",
                 "cannot read /nonexistent/ca.pem");
    assert_true(asprintf(&yaml, "upstream:\n  ca_file: %s\n", not_pem) > 0);
    expect_error(yaml, 2, "upstream.ca_file", "holds no PEM certificate");
    free(yaml);
    unlink(not_pem);
    free(not_pem);
}

static void test_protocol(void **state)
{
    tg_config_t cfg;
    tg_protocol_t p;

    expect_error("keys:\n  - name: k\n    level: 1\n    provider: http://h\n    secret: 12345678\n"
                 "    protocol: grpc\n",
                 6, "keys[0].protocol", "must be one of openai, anthropic, gemini, router");
    expect_ok("keys:\n  - name: k\n    level: 1\n    provider: http://h\n    secret: 12345678\n"
              "    protocol: gemini\n",
              &cfg);
    assert_int_equal(cfg.keys[0].protocol, TG_PROTO_GEMINI);
    tg_config_dispose(&cfg);
    for (int i = TG_PROTO_OPENAI; i <= TG_PROTO_ROUTER; i++) {
        assert_int_equal(tg_protocol_parse(tg_protocol_name((tg_protocol_t)i), &p), 0);
        assert_int_equal(p, i);
    }
    assert_string_equal(tg_protocol_name(TG_PROTO_ROUTER), "router");
    assert_string_equal(tg_protocol_name((tg_protocol_t)42), "unknown");
    assert_int_equal(tg_protocol_parse("OpenAI", &p), -1);
    assert_int_equal(tg_protocol_parse(NULL, &p), -1);
}

static void expect_provider(const char *url, const char *reason)
{
    char *yaml = NULL;

    assert_true(asprintf(&yaml, "keys:\n  - name: k\n    level: 1\n    provider: \"%s\"\n    secret: 12345678\n",
                         url) > 0);
    if (reason != NULL) {
        expect_error(yaml, 4, "keys[0].provider", reason);
    } else {
        tg_config_t cfg;
        expect_ok(yaml, &cfg);
        assert_string_equal(cfg.keys[0].provider, url);
        tg_config_dispose(&cfg);
    }
    free(yaml);
}

static void test_provider_url(void **state)
{
    expect_provider("ftp://example.com", "http:// or https://");
    expect_provider("example.com", "http:// or https://");
    expect_provider("http://", "must include a host");
    expect_provider("https:///v1", "must include a host");
    expect_provider("http://:9000", "must include a host");
    expect_provider("http://h/v1?x=1", "query or fragment");
    expect_provider("http://h/v1#frag", "query or fragment");
    expect_provider("http://h:0", "invalid port");
    expect_provider("http://h:99999", "invalid port");
    expect_provider("http://h:12ab", "invalid port");
    expect_provider("http://user:pw@h", "credentials");
    expect_provider("http://h /x", "spaces");
    expect_provider("http://[]:80", "IPv6");
    expect_provider("http://127.0.0.1:9000", NULL);
    expect_provider("https://api.openai.com/v1", NULL);
    expect_provider("http://[::1]:8080/base/", NULL);
}

static void test_listen(void **state)
{
    char *cert = write_temp("cert");
    char *yaml = NULL;

    assert_true(asprintf(&yaml, "listen:\n  - host: 0.0.0.0\n    port: 8443\n    tls:\n      cert: %s\n", cert) > 0);
    expect_error(yaml, 5, "listen[0].tls.key", "is required");
    free(yaml);
    assert_true(asprintf(&yaml,
                         "listen:\n  - host: 0.0.0.0\n    port: 8443\n"
                         "    tls: { cert: %s, key: /nonexistent/k.pem }\n",
                         cert) > 0);
    expect_error(yaml, 4, "listen[0].tls.key", "cannot read /nonexistent/k.pem: No such file");
    free(yaml);
    expect_error("listen:\n  - host: 127.0.0.1\n    port: 1\n    tls: { cert: /tmp, key: /tmp }\n", 4,
                 "listen[0].tls.cert", "not a regular file");
    expect_error("listen:\n  - host: 127.0.0.1\n    port: 80\n  - host: 0.0.0.0\n    port: 81\n"
                 "  - host: 127.0.0.1\n    port: 80\n",
                 6, "listen[2]", "duplicate listen address 127.0.0.1:80");
    expect_error("listen:\n  - host: example.com\n    port: 80\n", 2, "listen[0].host", "IPv4/IPv6");
    expect_error("listen:\n  - port: 80\n", 2, "listen[0].host", "is required");
    expect_error("listen:\n  - host: localhost\n", 2, "listen[0].port", "is required");
    unlink(cert);
    free(cert);
}

static void test_strings(void **state)
{
    tg_config_t cfg;

    expect_error("timezone: Mars/Olympus_Mons\n", 1, "timezone", "unknown time zone");
    expect_error("timezone: ../../etc/passwd\n", 1, "timezone", "must be \"UTC\" or a zone name");
    expect_error("log: { level: verbose }\n", 1, "log.level", "debug, info, warn, error");
    expect_error("log:\n  error: \"off\"\n", 2, "log.error", "only valid for log.access");
    expect_error("data_dir: \"a\\0b\"\n", 1, "data_dir", "must be a string");
    if (access("/usr/share/zoneinfo/Europe/Berlin", R_OK) == 0) {
        expect_ok("timezone: Europe/Berlin\n", &cfg);
        assert_string_equal(cfg.timezone, "Europe/Berlin");
        tg_config_dispose(&cfg);
    }
    expect_ok("data_dir: /srv/tg/\n", &cfg);
    assert_string_equal(cfg.bootstrap.root_key_file, "/srv/tg/root.key");
    tg_config_dispose(&cfg);
    expect_ok("data_dir: /srv/tg\nbootstrap: { root_key_file: /etc/tg/root.key }\n", &cfg);
    assert_string_equal(cfg.bootstrap.root_key_file, "/etc/tg/root.key");
    tg_config_dispose(&cfg);
}

static void test_parse_size(void **state)
{
    uint64_t v = 0;

    assert_int_equal(tg_parse_size("16m", &v), 0);
    assert_int_equal(v, 16u << 20);
    assert_int_equal(tg_parse_size("512k", &v), 0);
    assert_int_equal(v, 512u << 10);
    assert_int_equal(tg_parse_size("1g", &v), 0);
    assert_int_equal(v, 1u << 30);
    assert_int_equal(tg_parse_size("1G", &v), 0);
    assert_int_equal(v, 1u << 30);
    assert_int_equal(tg_parse_size("2t", &v), 0);
    assert_int_equal(v, 2ull << 40);
    assert_int_equal(tg_parse_size("1048576", &v), 0);
    assert_int_equal(v, 1048576);
    assert_int_equal(tg_parse_size("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(tg_parse_size("18446744073709551615", &v), 0);
    assert_true(v == UINT64_MAX);

    static const char *const bad[] = {"", "12x", "-1", "+1", " 1", "1 ", "k", "1kb", "1.5m", "0x10",
                                      "18446744073709551616", "99999999999999999999", "17179869184g", NULL};
    for (size_t i = 0; bad[i]; i++)
        if (tg_parse_size(bad[i], &v) != -1)
            fail_msg("tg_parse_size(\"%s\") accepted", bad[i]);
    assert_int_equal(tg_parse_size(NULL, &v), -1);
}

static void test_parse_duration(void **state)
{
    uint64_t v = 0;

    assert_int_equal(tg_parse_duration_ms("30s", &v), 0);
    assert_int_equal(v, 30000);
    assert_int_equal(tg_parse_duration_ms("250ms", &v), 0);
    assert_int_equal(v, 250);
    assert_int_equal(tg_parse_duration_ms("5m", &v), 0);
    assert_int_equal(v, 300000);
    assert_int_equal(tg_parse_duration_ms("1h", &v), 0);
    assert_int_equal(v, 3600000);
    assert_int_equal(tg_parse_duration_ms("30", &v), 0);
    assert_int_equal(v, 30000);
    assert_int_equal(tg_parse_duration_ms("0", &v), 0);
    assert_int_equal(v, 0);

    static const char *const bad[] = {"", "12x", "-1", "1.5s", "s", "10 s", "1S", "1d", "1msx",
                                      "18446744073709551615s", "99999999999999999999", "18446744073709552h", NULL};
    for (size_t i = 0; bad[i]; i++)
        if (tg_parse_duration_ms(bad[i], &v) != -1)
            fail_msg("tg_parse_duration_ms(\"%s\") accepted", bad[i]);
    assert_int_equal(tg_parse_duration_ms(NULL, &v), -1);
}

static void test_example_conf(void **state)
{
    const char *root = getenv("TG_SOURCE_DIR");
    char *path = NULL, *err = NULL;
    tg_config_t cfg;

    if (root != NULL)
        assert_true(asprintf(&path, "%s/conf/tollgate.yaml", root) > 0);
    else /* run by hand: find the repo from this file's path */
        assert_true(asprintf(&path, "%.*s/conf/tollgate.yaml",
                             (int)(strlen(__FILE__) - strlen("/tests/unit/test_config.c")), __FILE__) > 0);
    if (tg_config_load(path, &cfg, &err) != 0)
        fail_msg("%s", err);
    check_defaults(&(tg_config_t){.n_listens = cfg.n_listens,
                                  .listens = cfg.listens,
                                  .data_dir = cfg.data_dir,
                                  .timezone = cfg.timezone,
                                  .arena = cfg.arena,
                                  .server = cfg.server,
                                  .upstream = cfg.upstream,
                                  .log = cfg.log,
                                  .bootstrap = cfg.bootstrap,
                                  .store = cfg.store});
    assert_string_equal(cfg.path, path);
    assert_int_equal(cfg.n_keys, 1);
    assert_string_equal(cfg.keys[0].name, "mock");
    assert_int_equal(cfg.keys[0].level, 1);
    assert_string_equal(cfg.keys[0].provider, "http://127.0.0.1:9000");
    assert_string_equal(cfg.keys[0].secret, "sk-mock-upstream-key-0001");
    assert_int_equal(cfg.keys[0].protocol, TG_PROTO_OPENAI);
    tg_config_dispose(&cfg);
    free(path);
}

/* SIGHUP reload loads the same file again while the old config is still alive. */
static void test_load_twice(void **state)
{
    char *path = write_temp("workers: 3\nkeys:\n  - { name: a, level: 1, provider: http://h, secret: 12345678 }\n");
    tg_config_t a, b;
    char *err = NULL;

    assert_int_equal(tg_config_load(path, &a, &err), 0);
    assert_int_equal(tg_config_load(path, &b, &err), 0);
    assert_int_equal(a.workers, 3);
    assert_int_equal(b.workers, 3);
    assert_ptr_not_equal(a.keys, b.keys);
    assert_string_equal(a.keys[0].secret, b.keys[0].secret);
    tg_config_dispose(&a);
    tg_config_dispose(&b);
    tg_config_dispose(&b); /* idempotent on a zeroed struct */
    tg_config_dispose(NULL);
    unlink(path);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_empty_sections_keep_defaults),
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_top_level_not_mapping),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_ring_slots),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_secret_env),
        cmocka_unit_test(test_secret_rules),
        cmocka_unit_test(test_key_required_and_names),
        cmocka_unit_test(test_upstream_client),
        cmocka_unit_test(test_upstream_ca_file),
        cmocka_unit_test(test_protocol),
        cmocka_unit_test(test_provider_url),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_example_conf),
        cmocka_unit_test(test_load_twice),
        cmocka_unit_test(test_store_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
