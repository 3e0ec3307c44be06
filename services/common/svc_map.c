/* svc_map.c: chained hash table; see svc_map.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "svc_map.h"

uint64_t svc_hash(const char *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

int svc_shard_of(const char *key, size_t len, int n)
{
    return n <= 1 ? 0 : (int)(svc_hash(key, len) % (uint64_t)n);
}

int svc_key_valid(const char *s, size_t len, size_t max)
{
    if (!s || len == 0 || len >= max)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

int svc_key_copy(const char *s, size_t len, char *dst, size_t max)
{
    if (!svc_key_valid(s, len, max))
        return 0;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return 1;
}

/* The high bits pick the bucket: the low ones are shared by a shard's keys. */
static size_t bucket(const svc_map *m, uint64_t h)
{
    return (size_t)(h >> 32 ^ h >> 13) & m->mask;
}

int svc_map_init(svc_map *m, size_t hint)
{
    size_t n = 16;
    while (n < hint)
        n <<= 1;
    *m = (svc_map){ .buckets = calloc(n, sizeof *m->buckets), .mask = n - 1 };
    return m->buckets ? 0 : -ENOMEM;
}

svc_node *svc_map_find(const svc_map *m, const char *key, size_t len)
{
    uint64_t h = svc_hash(key, len);
    for (svc_node *n = m->buckets[bucket(m, h)]; n; n = n->next)
        if (n->hash == h && n->klen == len && !memcmp(n->key, key, len))
            return n;
    return NULL;
}

static void grow(svc_map *m)
{
    size_t size = (m->mask + 1) * 2;
    svc_node **b = calloc(size, sizeof *b);
    if (!b)
        return;
    svc_map old = *m;
    m->buckets = b;
    m->mask = size - 1;
    for (size_t i = 0; i <= old.mask; i++)
        for (svc_node *n = old.buckets[i], *next; n; n = next) {
            next = n->next;
            svc_node **head = &m->buckets[bucket(m, n->hash)];
            n->next = *head;
            *head = n;
        }
    free(old.buckets);
}

void svc_map_put(svc_map *m, svc_node *n)
{
    if (m->count > m->mask)
        grow(m);
    n->hash = svc_hash(n->key, n->klen);
    svc_node **head = &m->buckets[bucket(m, n->hash)];
    n->next = *head;
    *head = n;
    m->count++;
}

void svc_map_del(svc_map *m, svc_node *n)
{
    for (svc_node **p = &m->buckets[bucket(m, n->hash)]; *p; p = &(*p)->next)
        if (*p == n) {
            *p = n->next;
            m->count--;
            return;
        }
}

void svc_map_each(const svc_map *m, void (*fn)(svc_node *, void *), void *arg)
{
    for (size_t i = 0; m->buckets && i <= m->mask; i++)
        for (svc_node *n = m->buckets[i]; n; n = n->next)
            fn(n, arg);
}

void svc_map_free(svc_map *m, void (*free_fn)(svc_node *))
{
    for (size_t i = 0; m->buckets && i <= m->mask; i++)
        for (svc_node *n = m->buckets[i], *next; n; n = next) {
            next = n->next;
            free_fn(n);
        }
    free(m->buckets);
    *m = (svc_map){ 0 };
}
