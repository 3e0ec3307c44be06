/* order.h: order-svc's record and its shard, shared by its handlers
 * (order.c: create, callback, lookup; list.c: the list of every order). */
#ifndef ORDER_H
#define ORDER_H
#include <stdint.h>
#include "svc.h"
#include "svc_map.h"

#define ID_MAX 24
#define ITEM_MAX 64

enum order_status { PENDING, PAID, FAILED };
extern const char *const order_status_name[3];   /* "PENDING", "PAID", "FAILED" */

/* The rows live in the service's database (svc_store.h). */
extern svc S_order;

/* GET /orders[?status=PENDING|PAID|FAILED] (list.c), and the size of its
 * request state. */
int order_list(sl_task *t, svc_job *job);
size_t order_list_state_size(void);

#endif
