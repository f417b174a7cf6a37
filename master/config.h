/* master/config.h: tollgate's configuration file (YAML) loaded into a validated, self-contained
 * struct. The master loads it at start and again on SIGHUP; nothing here keeps global state. */
#ifndef TG_MASTER_CONFIG_H
#define TG_MASTER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef enum { TG_PROTO_OPENAI = 0, TG_PROTO_ANTHROPIC, TG_PROTO_GEMINI, TG_PROTO_ROUTER } tg_protocol_t;
/* upstream.client_abort (api-compat 7.15): cancel the upstream transfer and bill an estimate, or
 * read the answer to its end and bill the upstream's own usage. */
enum { TG_CLIENT_ABORT_CANCEL = 0, TG_CLIENT_ABORT_FINISH = 1 };
#define TG_PROTO_COUNT 4

/* One address to accept client connections on. tls_cert/tls_key are both NULL for plain HTTP. */
typedef struct {
    char *host;
    int port;
    char *tls_cert;
    char *tls_key;
} tg_listen_t;

/* An upstream provider key seeded into an empty data dir. `secret` always holds the resolved
 * value; `secret_env` keeps the variable name when the secret came from the environment. */
typedef struct {
    char *name;
    int level;
    char *provider;
    char *secret;
    char *secret_env;
    tg_protocol_t protocol;
} tg_key_seed_t;

typedef struct tg_config {
    char *path;                 /* the file it came from */
    tg_listen_t *listens;
    size_t n_listens;
    int workers;                /* 0 = one per online CPU (resolved by caller) */
    char *data_dir;             /* default "./data" */
    char *timezone;             /* default "UTC"; "UTC" or a zone under /usr/share/zoneinfo */
    struct {
        uint32_t max_accounts;      /* 100000; 16..16M */
        uint32_t max_upstream_keys; /* 4096; 1..1M */
        uint32_t ring_slots;        /* 65536; power of two, 1024..16M */
        uint32_t max_inflight_per_worker; /* 8192; 64..1M: the credit journal of each process */
    } arena;
    struct {
        uint64_t max_request_body;  /* bytes; 16 MiB */
        uint32_t drain_timeout_ms;  /* 30000 */
        uint32_t max_connections;   /* 10000 */
    } server;
    struct {
        uint32_t connect_timeout_ms;    /* 5000 */
        uint32_t first_byte_timeout_ms; /* 120000 */
        uint32_t idle_timeout_ms;       /* 300000 */
        uint32_t max_connections;       /* 256: idle keep-alive connections kept per worker and backend */
        int client;                     /* "auto" (0): the lean HTTP/1.1 client where it applies; "curl" (1): libcurl only */
        char *ca_file;                  /* NULL, or PEM CA certificates trusted besides the system store */
        uint32_t client_abort;          /* TG_CLIENT_ABORT_*: a client that leaves mid-answer */
    } upstream;
    struct {
        char *access;           /* "-" = stderr, "off", or a path; default "-" */
        char *error;            /* "-" = stderr or a path; default "-" */
        char *level;            /* debug|info|warn|error; default "info" */
    } log;
    struct {
        char *root_key_file;    /* default "<data_dir>/root.key" */
    } bootstrap;
    struct {
        uint32_t usage_retention_days; /* raw usage rows kept this long; 0 = forever; default 90 */
        int allow_private_providers;   /* POST /x-keys may name loopback/private hosts; default false */
    } store;
    tg_key_seed_t *keys;
    size_t n_keys;
} tg_config_t;

/* Loads and validates the YAML file at PATH into *OUT (which the caller later passes to
 * tg_config_dispose). Returns 0 on success. On failure returns -1, leaves *OUT zeroed and sets
 * *ERR to a malloc'd one-line message "FILE:LINE: KEY: reason" (LINE 1-based, KEY a dotted path
 * such as keys[0].level), or "FILE: cannot open: <strerror>" when the file cannot be read. */
int tg_config_load(const char *path, tg_config_t *out, char **err);

/* Frees everything tg_config_load allocated and zeroes *CFG. Safe on a zeroed struct and NULL. */
void tg_config_dispose(tg_config_t *cfg);

/* Returns the configuration name of P ("openai", "anthropic", "gemini", "router"), or "unknown". */
const char *tg_protocol_name(tg_protocol_t p);

/* Parses a protocol name as written in the configuration. Returns 0, or -1 if S is unknown. */
int tg_protocol_parse(const char *s, tg_protocol_t *out);

/* Parses a byte size: decimal digits with an optional k/m/g/t suffix (binary multiples, any
 * case), e.g. "16m", "512k", "1g", "1048576". Returns 0, or -1 on malformed input or overflow. */
int tg_parse_size(const char *s, uint64_t *out);

/* Parses a duration into milliseconds: decimal digits with an optional ms/s/m/h suffix; bare
 * digits are seconds ("30s", "250ms", "5m", "1h", "30"). Returns 0, or -1 if malformed/overflow. */
int tg_parse_duration_ms(const char *s, uint64_t *out);

#endif
