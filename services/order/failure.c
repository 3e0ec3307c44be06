/* failure.c: inventory's failures as order-svc's; see failure.h. */
#include <stddef.h>
#include <string.h>
#include "failure.h"

/* The 409s that are about the order itself, so the client may hear them. */
static const char *const conflicts[] = { "out_of_stock", "unknown_item", "order_failed" };

int order_failure_map(int status, const char *code, const char **out)
{
    switch (status) {
    case 404:   /* inventory's unknown item is a conflict of the order's */
        if (code && !strcmp(code, "unknown_item"))
            return *out = "unknown_item", 409;
        break;
    case 409:
        for (size_t i = 0; code && i < sizeof conflicts / sizeof *conflicts; i++)
            if (!strcmp(code, conflicts[i]))
                return *out = conflicts[i], 409;
        break;
    case 503: return *out = "overloaded", 503;
    case 504: return *out = "deadline_exceeded", 504;
    case 508: return *out = "loop_detected", 508;
    }
    return *out = "upstream_failed", 502;
}
