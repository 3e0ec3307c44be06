/* failure.h: what order-svc answers when inventory's /reserve failed.
 *
 * Order's clients are promised a short list of errors (docs/services.md):
 * the order's own (409 out_of_stock, unknown_item, order_failed) and the
 * chain's (503 overloaded, 504 deadline_exceeded, 508 loop_detected).
 * Anything else inventory says (a 500, a 502, a 400 that would be order's
 * own bug, a code it does not know) is not the client's business in
 * detail: it becomes 502 upstream_failed. Pure, so it is unit-tested. */
#ifndef ORDER_FAILURE_H
#define ORDER_FAILURE_H

/* The status order answers for inventory's HTTP answer `status` with error
 * code `code` (NULL when its body had none), and in *out the code to
 * answer with (a static string). */
int order_failure_map(int status, const char *code, const char **out);

#endif
