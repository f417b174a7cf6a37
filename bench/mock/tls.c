/* tls.c - the mock's server TLS context for its optional TLS listener (--tls-cert/--tls-key):
 * TLS 1.2 or later (at most --tls-max), ALPN h2 and http/1.1 like a real provider. */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>

#include "mock.h"

SSL_CTX *mock_tls_ctx(const char *cert, const char *key, int max_version)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        (max_version && SSL_CTX_set_max_proto_version(ctx, max_version) != 1)) {
        fprintf(stderr, "tollgate-mock: cannot create the TLS context\n");
        exit(1);
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        fprintf(stderr, "tollgate-mock: cannot load the certificate %s: %s\n", cert, ERR_reason_error_string(ERR_get_error()));
        exit(1);
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        fprintf(stderr, "tollgate-mock: cannot load the key %s: %s\n", key, ERR_reason_error_string(ERR_get_error()));
        exit(1);
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
    return ctx;
}
