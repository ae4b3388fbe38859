// Package namespace keeps the registry of aggregate namespaces (the key
// spaces p:NS:... of package redisagg) and the pointer to the current one,
// the namespace that REST queries, WebSocket pushes and the live aggregator
// use. Replay builds a new namespace beside the current one; promoting it
// moves the pointer in one write, so readers switch atomically.
//
// The registry is one small JSON document, kept where it survives what the
// aggregates survive and more: in Redis (key redisagg.Keys.Registry) when the
// aggregate store is a real Redis, in a file in the data directory with the
// embedded store, whose in-memory Redis forgets everything at exit.
package namespace
