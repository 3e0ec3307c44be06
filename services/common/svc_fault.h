/* svc_fault.h: the fault injector of the demo services (--admin).
 *
 * POST /admin/fault {"delay_ms":N, "hang":true, "hold":true,
 * "error_rate":0.3, "reset":true, "path":"/charge"} puts a fault in force on the service's
 * business routes (only `path` if given: a request path or a route
 * pattern); DELETE /admin/fault clears it. Admin, health, metrics and debug
 * routes are never subject to it. The setting is made on one reactor and
 * reaches every reactor as a cross-reactor message, each reactor keeping
 * its own copy (nothing shared); the admin answer waits until all have it.
 *
 * What a request meets, first match wins: reset (the connection is reset,
 * nothing answered), error_rate (500 injected_fault with that
 * probability), hang (no answer until the request's context ends), hold
 * (the request waits until this fault is cleared or replaced on its
 * reactor, then its handler runs: a test decides when held work goes on,
 * instead of betting on a delay outlasting a burst's arrival), then
 * delay_ms (a sleep, then the handler runs). A held request whose context
 * ends first ends with that error, as under hang. */
#ifndef SVC_FAULT_H
#define SVC_FAULT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define SVC_FAULT_MAX_DELAY_MS 600000

typedef struct svc_fault {
    bool on;
    bool hang, hold, reset;
    uint32_t delay_ms;
    double error_rate;        /* 0..1 */
    char path[64];            /* "" : every business route */
} svc_fault;

/* Parses an admin body. Returns 0, or -EINVAL with a one-line reason in
 * err: not a JSON object, an unknown key, a value of the wrong type or out
 * of range (delay_ms 0..600000, error_rate 0..1, hang/hold/reset booleans, path starting with '/'
 * and shorter than 64 bytes, or null for every route, as svc_fault_json
 * shows it), or no fault at all. */
int svc_fault_parse(const char *body, size_t len, svc_fault *f, char *err, size_t errlen);

/* Whether f applies to a request of `path` (len bytes) matched by `route`. */
bool svc_fault_applies(const svc_fault *f, const char *path, size_t len, const char *route);

/* {"delay_ms":..,"hang":..,"hold":..,"error_rate":..,"reset":..,"path":..}
 * or null. */
json_t *svc_fault_json(const svc_fault *f);

#endif
