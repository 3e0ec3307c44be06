/* svc_map.h: a string-keyed hash table for one reactor's shard of state.
 *
 * Records embed an svc_node and own their key's storage; the table only
 * links them. One hash (FNV-1a, 64 bits) serves both sharding (which
 * reactor owns a key: svc_hash % threads) and the buckets (its high bits,
 * so keys that share a shard still spread over the buckets). Not
 * thread-safe: a table belongs to one reactor. */
#ifndef SVC_MAP_H
#define SVC_MAP_H
#include <stddef.h>
#include <stdint.h>

typedef struct svc_node {
    struct svc_node *next;
    uint64_t hash;
    const char *key;          /* the record's own copy */
    size_t klen;
} svc_node;

typedef struct svc_map {
    svc_node **buckets;
    size_t mask;              /* buckets - 1 (a power of two) */
    size_t count;
} svc_map;

/* FNV-1a over len bytes. */
uint64_t svc_hash(const char *key, size_t len);

/* Index of the shard (0 .. n-1) that owns `key`; 0 when n <= 1. */
int svc_shard_of(const char *key, size_t len, int n);

/* Whether s (len bytes) is a usable key: 1 to max-1 bytes of
 * [A-Za-z0-9._:-], so that it can go into a path or a JSON string as is. */
int svc_key_valid(const char *s, size_t len, size_t max);

/* Copies s (len bytes) into dst (max bytes), NUL-terminated, if it is a
 * usable key (svc_key_valid); returns 1, or 0 with dst untouched. */
int svc_key_copy(const char *s, size_t len, char *dst, size_t max);

/* An empty table with room for `hint` records before it grows. Returns 0 or
 * -ENOMEM. */
int svc_map_init(svc_map *m, size_t hint);

/* The record with this key, or NULL. */
svc_node *svc_map_find(const svc_map *m, const char *key, size_t len);

/* Links `n` (its key, klen set; the hash is computed here). The caller has
 * checked that the key is absent. Grows the table at load 1; if growing
 * fails the table just gets fuller. */
void svc_map_put(svc_map *m, svc_node *n);

/* Unlinks `n` (a record of m). */
void svc_map_del(svc_map *m, svc_node *n);

/* Calls fn(record, arg) on every record, in no particular order; fn must
 * not add or remove records. */
void svc_map_each(const svc_map *m, void (*fn)(svc_node *, void *), void *arg);

/* Calls free_fn on every record and frees the buckets. */
void svc_map_free(svc_map *m, void (*free_fn)(svc_node *));

#endif
