/* The persister's route table and its lookup. To add an endpoint: write its handler in an
 * api_*.c file, declare it in api.h, add one line here. Lookup is a linear scan: the table is
 * short and the management plane is not the hot path. */
#include <string.h>

#include "store/api.h"

static const tg_route_t g_routes[] = {
    {"GET", "/healthz", 0, tg_api_healthz},
    {"GET", "/dashboard/status", TG_ROUTE_AUTH, tg_api_dashboard_status},
    {"GET", "/dashboard/x-user-status", TG_ROUTE_AUTH, tg_api_dashboard_status},
};

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
