/* main.c - tollgate-mock entry point: command line, listening socket, signals, and the single-threaded h2o event loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mock.h"

mock_knobs_t mock_defaults = {.chunks = 8};
int mock_quiet;
int mock_log_requests;

static const char *host = "127.0.0.1";
static uint64_t port = 9000;
static const char *tls_cert, *tls_key; /* both set: a second listener speaks TLS */
static uint64_t tls_port;
static int tls_max;
static int stop_requested;

static h2o_globalconf_t config;
static h2o_context_t ctx;
static h2o_accept_ctx_t accept_ctx, tls_accept_ctx;
static h2o_socket_t *listener, *tls_listener, *signals;

static void usage(FILE *out)
{
    fprintf(out, "usage: tollgate-mock [--host 127.0.0.1] [--port 9000] [--latency-ms 0] [--chunks 8] [--chunk-delay-ms 0]\n"
                 "                     [--body-bytes 0] [--quiet] [--log-requests]\n"
                 "                     [--tls-cert FILE --tls-key FILE [--tls-port 0] [--tls-max 1.2|1.3]]\n"
                 "A fake upstream LLM provider for tests and benchmarks; see bench/mock/README.md.\n");
}

static void fail_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "tollgate-mock: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (try --help)\n");
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    enum { OPT_HOST = 256, OPT_PORT, OPT_QUIET, OPT_LOG_REQUESTS, OPT_HELP, OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_PORT,
           OPT_TLS_MAX, OPT_KNOB };
    enum { N_FIXED = 9 };
    struct option options[MOCK_NUM_KNOBS + N_FIXED + 1] = {
        {"host", required_argument, NULL, OPT_HOST},
        {"port", required_argument, NULL, OPT_PORT},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"log-requests", no_argument, NULL, OPT_LOG_REQUESTS},
        {"help", no_argument, NULL, OPT_HELP},
        {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
        {"tls-key", required_argument, NULL, OPT_TLS_KEY},
        {"tls-port", required_argument, NULL, OPT_TLS_PORT},
        {"tls-max", required_argument, NULL, OPT_TLS_MAX},
    };
    int opt;

    for (size_t i = 0; i != MOCK_NUM_KNOBS; ++i)
        options[N_FIXED + i] = (struct option){mock_knob_defs[i].name, required_argument, NULL, OPT_KNOB + (int)i};

    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case OPT_HOST:
            host = optarg;
            break;
        case OPT_PORT:
            if (knob_parse(optarg, strlen(optarg), 65535, &port) != 0)
                fail_usage("invalid --port '%s'", optarg);
            break;
        case OPT_QUIET:
            mock_quiet = 1;
            break;
        case OPT_TLS_CERT:
            tls_cert = optarg;
            break;
        case OPT_TLS_KEY:
            tls_key = optarg;
            break;
        case OPT_TLS_PORT:
            if (knob_parse(optarg, strlen(optarg), 65535, &tls_port) != 0)
                fail_usage("invalid --tls-port '%s'", optarg);
            break;
        case OPT_TLS_MAX:
            if (strcmp(optarg, "1.2") == 0)
                tls_max = TLS1_2_VERSION;
            else if (strcmp(optarg, "1.3") == 0)
                tls_max = TLS1_3_VERSION;
            else
                fail_usage("invalid --tls-max '%s' (1.2 or 1.3)", optarg);
            break;
        case OPT_LOG_REQUESTS:
            mock_log_requests = 1;
            break;
        case OPT_HELP:
            usage(stdout);
            exit(0);
        case '?':
            fail_usage("unknown option or missing value: '%s'", argv[optind - 1]);
            break;
        default: {
            const mock_knob_def_t *def = &mock_knob_defs[opt - OPT_KNOB];
            if (knob_parse(optarg, strlen(optarg), def->max, knob_field(&mock_defaults, def)) != 0)
                fail_usage("invalid value '%s' (expected a non-negative integer within limits)", optarg);
        } break;
        }
    }
    if (optind != argc)
        fail_usage("unexpected argument '%s'", argv[optind]);
    if ((tls_cert == NULL) != (tls_key == NULL))
        fail_usage("%s", "--tls-cert and --tls-key go together");
}

/* binds host:PORT and prints "WHAT HOST:PORT" with the bound port; exits 1 on failure */
static int open_listener(uint64_t at_port, const char *what)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res;
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof(bound);
    char port_str[8], addr[INET6_ADDRSTRLEN];
    int fd, on = 1, err;

    snprintf(port_str, sizeof(port_str), "%u", (unsigned)at_port);
    if ((err = getaddrinfo(host, port_str, &hints, &res)) != 0) {
        fprintf(stderr, "tollgate-mock: cannot resolve %s: %s\n", host, gai_strerror(err));
        exit(1);
    }
    if ((fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
        listen(fd, SOMAXCONN) != 0 || getsockname(fd, (struct sockaddr *)&bound, &bound_len) != 0) {
        fprintf(stderr, "tollgate-mock: cannot listen on %s:%s: %s\n", host, port_str, strerror(errno));
        exit(1);
    }
    freeaddrinfo(res);

    if (bound.ss_family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&bound;
        inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof(addr));
        printf("%s [%s]:%u\n", what, addr, ntohs(sin6->sin6_port));
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&bound;
        inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
        printf("%s %s:%u\n", what, addr, ntohs(sin->sin_port));
    }
    fflush(stdout);
    return fd;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    h2o_socket_t *sock;

    if (err != NULL)
        return;
    for (int i = 0; i != 64 && (sock = h2o_evloop_socket_accept(listener)) != NULL; ++i)
        h2o_accept(listener->data, sock);
}

static void on_signal(h2o_socket_t *sock, const char *err)
{
    h2o_buffer_consume(&sock->input, sock->input->size);
    stop_requested = 1;
}

/* SIGTERM/SIGINT arrive through a signalfd watched by the loop, so there is no race with epoll_wait */
static void watch_signals(void)
{
    sigset_t mask;
    int fd;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0 || (fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) == -1) {
        perror("tollgate-mock: signalfd");
        exit(1);
    }
    signals = h2o_evloop_socket_create(ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(signals, on_signal);
}

int main(int argc, char **argv)
{
    h2o_hostconf_t *hostconf;
    h2o_pathconf_t *pathconf;
    h2o_handler_t *handler;

    parse_args(argc, argv);

    h2o_config_init(&config);
    config.server_name = h2o_iovec_init(H2O_STRLIT("tollgate-mock"));
    hostconf = h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    pathconf = h2o_config_register_path(hostconf, "/", 0);
    handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = router_on_req;

    h2o_context_init(&ctx, h2o_evloop_create(), &config);
    accept_ctx = (h2o_accept_ctx_t){.ctx = &ctx, .hosts = config.hosts};
    hold_init(&ctx);
    watch_signals();

    listener = h2o_evloop_socket_create(ctx.loop, open_listener(port, "listening on"), H2O_SOCKET_FLAG_DONT_READ);
    listener->data = &accept_ctx;
    h2o_socket_read_start(listener, on_accept);
    if (tls_cert) {
        tls_accept_ctx = accept_ctx;
        tls_accept_ctx.ssl_ctx = mock_tls_ctx(tls_cert, tls_key, tls_max);
        tls_listener = h2o_evloop_socket_create(ctx.loop, open_listener(tls_port, "listening with tls on"),
                                                H2O_SOCKET_FLAG_DONT_READ);
        tls_listener->data = &tls_accept_ctx;
        h2o_socket_read_start(tls_listener, on_accept);
    }

    while (!stop_requested)
        h2o_evloop_run(ctx.loop, INT32_MAX);

    if (!mock_quiet)
        fprintf(stderr, "tollgate-mock: stopping\n");
    h2o_socket_close(listener);
    if (tls_listener) {
        h2o_socket_close(tls_listener);
        SSL_CTX_free(tls_accept_ctx.ssl_ctx);
    }
    h2o_socket_close(signals);
    h2o_evloop_run(ctx.loop, 0); /* closed sockets are freed by the next loop iteration */
    return 0;
}
