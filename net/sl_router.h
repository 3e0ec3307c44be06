/* sl_router.h: method + path pattern routing for the HTTP server.
 *
 * Patterns are absolute paths whose segments are literals or `{name}`
 * captures, which match one non-empty segment: "/orders/{id}/paid". A
 * request path matches a pattern segment by segment; the query string is not
 * part of the path. HEAD requests match GET routes. The router is built once,
 * before serving, and then only read, so every reactor can share it. */
#ifndef SL_ROUTER_H
#define SL_ROUTER_H
#include <stddef.h>

#define SL_ROUTE_MAX_PARAMS 8

typedef struct sl_router sl_router;

typedef struct sl_route_param {
    const char *name, *value;   /* value points into the matched path */
    size_t name_len, value_len;
} sl_route_param;

typedef struct sl_route_match {
    void *handler, *arg;        /* as given to sl_router_add */
    const char *pattern;
    int nparams;
    sl_route_param params[SL_ROUTE_MAX_PARAMS];
} sl_route_match;

/* Creates an empty router. Returns 0 or -ENOMEM. */
int sl_router_new(sl_router **out);
void sl_router_free(sl_router *r);

/* Calls free_arg on every route's `arg` (before sl_router_free, for routers
 * whose args are owned by the routes). */
void sl_router_free_args(sl_router *r, void (*free_arg)(void *));

/* Adds a route. `method` is an upper-case method name ("GET") and `pattern`
 * a path pattern (both copied). Returns 0; -EINVAL for a method that is not
 * an upper-case token, a pattern that does not start with '/', has an empty
 * or unterminated `{}` capture, a capture that is not a whole segment, or
 * more than SL_ROUTE_MAX_PARAMS captures; -EEXIST if the same method and
 * pattern were added before; -ENOMEM. */
int sl_router_add(sl_router *r, const char *method, const char *pattern, void *handler, void *arg);

/* Finds the route for `method` and `path` (not NUL-terminated; a '?' ends
 * the path). Literal segments win over captures when both match. Returns 0
 * and fills `m`; -ENOENT when no pattern matches the path (404);
 * -EOPNOTSUPP when patterns match but not for this method (405): then
 * `allow` (if not NULL) receives the allowed methods, comma-separated,
 * NUL-terminated and truncated to `allow_size`. */
int sl_router_match(const sl_router *r, const char *method, size_t method_len,
                    const char *path, size_t path_len, sl_route_match *m,
                    char *allow, size_t allow_size);

/* The value of capture `name` in `m`, or NULL (with *len unchanged). */
const char *sl_route_param_get(const sl_route_match *m, const char *name, size_t *len);

#endif
