package main

// In-memory state keyed by id, sharded so that requests for different keys
// rarely meet on a lock: the Go counterpart of sluice's state sharded over
// reactors. Records carry their own mutex (the row lock); a shard's lock is
// held only to find or insert a record.

import (
	"hash/maphash"
	"sync"
)

const nshards = 64

var shardSeed = maphash.MakeSeed()

type shard[V any] struct {
	sync.Mutex
	m map[string]V
}

type store[V any] struct {
	shards [nshards]shard[V]
}

func newStore[V any]() *store[V] {
	s := &store[V]{}
	for i := range s.shards {
		s.shards[i].m = make(map[string]V)
	}
	return s
}

func (s *store[V]) shard(key string) *shard[V] {
	return &s.shards[maphash.String(shardSeed, key)%nshards]
}

func (s *store[V]) get(key string) (V, bool) {
	sh := s.shard(key)
	sh.Lock()
	v, ok := sh.m[key]
	sh.Unlock()
	return v, ok
}

// getOrPut returns the record under key, inserting mk() if there is none;
// created says which.
func (s *store[V]) getOrPut(key string, mk func() V) (v V, created bool) {
	sh := s.shard(key)
	sh.Lock()
	defer sh.Unlock()
	if v, ok := sh.m[key]; ok {
		return v, false
	}
	v = mk()
	sh.m[key] = v
	return v, true
}

func (s *store[V]) remove(key string) {
	sh := s.shard(key)
	sh.Lock()
	delete(sh.m, key)
	sh.Unlock()
}
