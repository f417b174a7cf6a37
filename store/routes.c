/* The persister's route table and its lookup. To add an endpoint: write its handler in an
 * api_*.c file, declare it in api.h, add one line here. Lookup is a linear scan: the table is
 * short and the management plane is not the hot path. */
#include <string.h>

#include "store/api.h"

#define A TG_ROUTE_AUTH
#define AS (TG_ROUTE_AUTH | TG_ROUTE_SUBTREE)
static const tg_route_t g_routes[] = {
    {"GET", "/healthz", 0, tg_api_healthz},
    {"GET", "/metrics", A, tg_api_metrics}, /* root's key: Prometheus sends it as a bearer token */
    /* dashboard (api_dashboard.c): self */
    {"GET", "/dashboard/status", A, tg_api_dashboard_status},
    {"GET", "/dashboard/x-user-status", A, tg_api_dashboard_status},
    {"GET", "/dashboard/info", A, tg_api_dashboard_info},
    {"GET", "/dashboard/x-user-info", A, tg_api_dashboard_info},
    {"GET", "/dashboard/x_user/info", A, tg_api_dashboard_info},
    {"GET", "/dashboard/live", A, tg_api_dashboard_live},
    {"GET", "/dashboard/bill", A, tg_api_dashboard_bill},
    {"GET", "/dashboard/logs", A, tg_api_dashboard_logs},
    {"GET", "/dashboard/x-user-logs", A, tg_api_dashboard_logs},
    {"GET", "/dashboard/news", A, tg_api_dashboard_news},
    {"GET", "/dashboard/x-user-news", A, tg_api_dashboard_news},
    {"GET", "/dashboard/conf", A, tg_api_dashboard_conf},
    {"GET", "/dashboard/models", A, tg_api_dashboard_models},
    {"GET", "/v1/models", A, tg_api_dashboard_models},
    {"GET", "/models", A, tg_api_dashboard_models},
    {"GET", "/dashboard/billing/usage", A, tg_api_dashboard_billing_usage},
    {"GET", "/dashboard/requests", A, tg_api_dashboard_requests},
    /* manage (api_manage.c): self and descendants */
    {"GET", "/x-users", AS, tg_api_users_get},
    {"POST", "/x-users", AS, tg_api_users_create}, /* /x-users/{id}: update */
    {"PUT", "/x-users", AS, tg_api_users_update},
    {"DELETE", "/x-users", AS, tg_api_users_delete},
    {"GET", "/x-dna", AS, tg_api_dna_get},
    {"GET", "/x-bill", A, tg_api_bill},
    {"POST", "/x-self", A, tg_api_self_rotate},
    {"POST", "/x-root", A, tg_api_root_rotate},
    /* admin (api_admin.c): root and owners */
    {"GET", "/x-keys", AS, tg_api_keys_get},
    {"POST", "/x-keys", AS, tg_api_keys_create}, /* /x-keys/{id}: update */
    {"PUT", "/x-keys", AS, tg_api_keys_update},
    {"DELETE", "/x-keys", AS, tg_api_keys_delete},
    {"GET", "/x-conf", A, tg_api_conf_get},
    {"POST", "/x-conf", A, tg_api_conf_post},
    {"GET", "/x-config", A, tg_api_config_get},
    {"PUT", "/x-config", A, tg_api_config_put},
    {"POST", "/x-config", A, tg_api_config_put},
    {"DELETE", "/x-config", A, tg_api_config_delete},
    {"GET", "/x-info", A, tg_api_info},
    {"POST", "/x-news", AS, tg_api_news_post},
    {"DELETE", "/x-news", AS, tg_api_news_delete},
    {"GET", "/x-gkey", A, tg_api_gkey},
    {"GET", "/x-logs", A, tg_api_logs},
    /* browser pages (api_pages.c): static files, no key (the pages send it with their API calls) */
    {"GET", "/manage", TG_ROUTE_SUBTREE, tg_api_pages},
    {"GET", "/admin", TG_ROUTE_SUBTREE, tg_api_pages},
};
#undef A
#undef AS

static int iov_is(h2o_iovec_t v, const char *s)
{
    size_t n = strlen(s);
    return v.len == n && memcmp(v.base, s, n) == 0;
}

/* PATH matches ROUTE's path exactly or, for a subtree route, as a "/"-separated prefix. */
static int path_matches(const tg_route_t *route, h2o_iovec_t path, h2o_iovec_t *rest)
{
    size_t n = strlen(route->path);
    if (path.len < n || memcmp(path.base, route->path, n) != 0)
        return 0;
    if (path.len == n || ((route->flags & TG_ROUTE_SUBTREE) && path.base[n] == '/')) {
        *rest = h2o_iovec_init(path.base + n, path.len - n);
        return 1;
    }
    return 0;
}

const tg_route_t *tg_api_route_find(h2o_iovec_t method, h2o_iovec_t path, int *path_known, h2o_iovec_t *rest)
{
    *path_known = 0;
    for (size_t i = 0; i < sizeof(g_routes) / sizeof(g_routes[0]); i++) {
        const tg_route_t *r = &g_routes[i];
        if (!path_matches(r, path, rest))
            continue;
        if (r->method == NULL || iov_is(method, r->method))
            return r;
        *path_known = 1;
    }
    return NULL;
}
