/* tollgate: command line, config, data directory, master key, arena, listeners; then the
 * supervisor forks the persister and the workers. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <h2o.h>
#include <h2o/http2.h>

#include "common/log.h"
#include "common/seal.h"
#include "master/config.h"
#include "master/supervise.h"
#include "shm/arena.h"
#include "shm/credit.h"
#include "store/admin.h"
#include "store/import.h"
#include "store/dump.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: tollgate [-c FILE] [--check] [--workers N] [--version]\n"
                 "  -c, --config FILE   configuration file (default conf/tollgate.yaml)\n"
                 "      --check         validate the configuration and exit\n"
                 "  -w, --workers N     number of worker processes (default: config, else one per core)\n"
                 "  -v, --version       print the version and exit\n");
}

static int fail(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "tollgate: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return 1;
}

static int prepare_data_dir(const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return fail("data_dir %s: cannot create: %s", dir, strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return fail("data_dir %s: %s", dir, "not a directory");
    if (access(dir, R_OK | W_OK | X_OK) != 0)
        return fail("data_dir %s: not readable and writable: %s", dir, strerror(errno));
    return 0;
}

static int bind_listener(const tg_listen_t *l, int *out)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", l->port);
    struct addrinfo hints = {0}, *res;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(l->host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "tollgate: listen %s:%d: %s\n", l->host, l->port, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        fprintf(stderr, "tollgate: listen %s:%d: %s\n", l->host, l->port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    fcntl(fd, F_SETFL, O_NONBLOCK);
    freeaddrinfo(res);
    *out = fd;
    return 0;
}

static SSL_CTX *tls_context(const tg_listen_t *l)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, l->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, l->tls_key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        char buf[256];
        ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
        fprintf(stderr, "tollgate: listen %s:%d: tls: %s\n", l->host, l->port, buf);
        SSL_CTX_free(ctx);
        return NULL;
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
    return ctx;
}

static int open_listeners(tg_master_t *m)
{
    m->n_listeners = m->cfg.n_listens;
    m->listeners = calloc(m->n_listeners, sizeof(*m->listeners));
    for (size_t i = 0; i < m->cfg.n_listens; i++) {
        const tg_listen_t *l = &m->cfg.listens[i];
        if (bind_listener(l, &m->listeners[i].fd) != 0)
            return -1;
        if (l->tls_cert && (m->listeners[i].ssl_ctx = tls_context(l)) == NULL)
            return -1;
    }
    return 0;
}

static char *join(const char *dir, const char *name)
{
    char *p;
    if (asprintf(&p, "%s/%s", dir, name) < 0)
        return NULL;
    return p;
}

/* `tollgate admin COMMAND [ARG] [-c FILE]`: operator commands on the store.
 *   usage        every stored usage record as a JSON line
 *   verify       reconcile ledger, cards and usage per account (exit 1 on any disagreement)
 *   backup DIR   RocksDB checkpoint (+ master key) into DIR, also while tollgate runs
 *   restore DIR  replace the database with a backup (tollgate must be stopped)
 *   import FILE [--keys-out OUT]  create the accounts of FILE (JSON lines; tollgate must be stopped) */
static int admin_main(int argc, char **argv)
{
    const char *config_path = "conf/tollgate.yaml", *cmd = argc >= 2 ? argv[1] : "", *arg = NULL, *keys_out = NULL;
    int import = strcmp(cmd, "import") == 0;
    int needs_arg = strcmp(cmd, "backup") == 0 || strcmp(cmd, "restore") == 0 || import;
    if (strcmp(cmd, "usage") != 0 && strcmp(cmd, "verify") != 0 && !needs_arg) {
        fprintf(stderr, "usage: tollgate admin usage|verify [-c FILE]\n"
                        "       tollgate admin backup|restore DIR [-c FILE]\n"
                        "       tollgate admin import ACCOUNTS.jsonl [--keys-out FILE] [-c FILE]\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
            config_path = argv[++i];
        else if (import && strcmp(argv[i], "--keys-out") == 0 && i + 1 < argc)
            keys_out = argv[++i];
        else if (needs_arg && arg == NULL && (argv[i][0] != '-' || strcmp(argv[i], "-") == 0))
            arg = argv[i];
        else
            return fail("admin: unknown argument %s%s", argv[i], "");
    }
    if (needs_arg && arg == NULL)
        return fail("admin %s: give the %s", cmd, import ? "accounts file (JSON lines; - for stdin)" : "backup directory");
    tg_config_t cfg;
    char *err = NULL;
    if (tg_config_load(config_path, &cfg, &err) != 0) {
        fprintf(stderr, "tollgate: %s\n", err ? err : "cannot load the configuration");
        free(err);
        return 1;
    }
    int rc;
    if (strcmp(cmd, "usage") == 0)
        rc = tg_store_dump_usage(cfg.data_dir, stdout, &err);
    else if (strcmp(cmd, "verify") == 0)
        rc = tg_admin_verify(cfg.data_dir, stdout, &err);
    else if (strcmp(cmd, "backup") == 0)
        rc = tg_admin_backup(cfg.data_dir, arg, stdout, &err);
    else if (import)
        rc = tg_admin_import(cfg.data_dir, arg, keys_out, cfg.arena.max_accounts, stdout, stderr, &err);
    else
        rc = tg_admin_restore(cfg.data_dir, arg, stdout, &err);
    if (rc < 0 || (rc != 0 && err)) {
        fprintf(stderr, "tollgate: %s\n", err ? err : "cannot read the store");
        free(err);
    }
    tg_config_dispose(&cfg);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "admin") == 0)
        return admin_main(argc - 1, argv + 1);
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'}, {"check", no_argument, NULL, 'k'},
                                         {"workers", required_argument, NULL, 'w'}, {"version", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    const char *config_path = "conf/tollgate.yaml";
    int check = 0, workers = 0, opt;
    while ((opt = getopt_long(argc, argv, "c:w:vh", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'k': check = 1; break;
        case 'w': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end || n < 1 || n > 1024)
                return fail("--workers %s: %s", optarg, "must be an integer from 1 to 1024");
            workers = (int)n;
            break;
        }
        case 'v': printf("tollgate %s\n", TG_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }

    static tg_master_t m;
    char *err = NULL;
    if (tg_config_load(config_path, &m.cfg, &err) != 0) {
        fprintf(stderr, "tollgate: %s\n", err ? err : "cannot load the configuration");
        free(err);
        return 1;
    }
    if (check) {
        printf("%s: ok\n", config_path);
        tg_config_dispose(&m.cfg);
        return 0;
    }
    m.config_path = config_path;
    m.workers_override = workers;
    m.workers = workers ? workers : m.cfg.workers ? m.cfg.workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (m.workers < 1)
        m.workers = 1;

    tg_log_level_t level = TG_LOG_INFO;
    tg_log_level_parse(m.cfg.log.level, &level);
    tg_log_init("master", level);
    if (prepare_data_dir(m.cfg.data_dir) != 0)
        return 1;
    tg_log_open(m.cfg.log.error, m.cfg.log.access);

    char *key_file = join(m.cfg.data_dir, "master.key");
    if (tg_master_key_load(key_file, m.master_key, &err) != 0) {
        fprintf(stderr, "tollgate: %s\n", err ? err : "cannot load the master key");
        return 1;
    }
    free(key_file);

    if (open_listeners(&m) != 0)
        return 1;

    char *arena_path = join(m.cfg.data_dir, "arena.tg");
    tg_arena_sizes_t sizes = {m.cfg.arena.max_accounts, m.cfg.arena.max_upstream_keys, m.cfg.arena.ring_slots,
                              m.cfg.arena.max_inflight_per_worker};
    int created = 0;
    if (tg_arena_open(&m.arena, arena_path, &sizes, &created, &err) != 0) {
        fprintf(stderr, "tollgate: %s\n", err ? err : "cannot open the arena");
        return 1;
    }
    atomic_store(&m.arena.hdr->persister_ready, 0);
    size_t reaped = tg_credit_reap(&m.arena); /* a tree killed as a whole: bill what its workers had in flight */
    if (reaped)
        tg_info("released %zu reservation(s) of processes of the previous run", reaped);
    tg_info("tollgate %s: arena %s (%s, %.1f MiB), %d worker(s)", TG_VERSION, arena_path, created ? "created" : "re-attached",
            (double)m.arena.size / 1048576.0, m.workers);
    free(arena_path);
    m.persister_socket = join(m.cfg.data_dir, "persister.sock");
    for (size_t i = 0; i < m.cfg.n_listens; i++)
        tg_info("listening on %s:%d%s", m.cfg.listens[i].host, m.cfg.listens[i].port,
                m.cfg.listens[i].tls_cert ? " (TLS, h2)" : " (HTTP/1.1, h2c)");
    return tg_supervise(&m);
}
