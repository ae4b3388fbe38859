// Package lease splits the shards of a stream among a group of aggregator
// instances that share one Redis (standalone or Redis Cluster), one owner per
// shard, and hands out a fencing token with every lease.
//
// # How it works
//
// Every instance runs a Manager. Each round (every Config.Renew) it
//
//  1. renews the leases it holds: a compare-and-set on owner and fence; a
//     lease found taken by another owner is dropped at once;
//  2. heartbeats its membership: a sorted set of owners scored by expiry
//     (server time + TTL), from which expired owners are removed;
//  3. computes its share: with S shards and N live members ordered by id,
//     every member gets S/N and the first S%N members one more, so the split
//     is deterministic (8 shards, 3 members: 3/3/2);
//  4. takes free or expired leases up to its share, each with a new fence
//     (an INCR of the shard's fence counter, so fences strictly increase every
//     time a shard changes hands), and starts releasing the leases above its
//     share or no longer in the shard list (with Config.Sticky, only the
//     latter: a holder keeps its leases while it renews them).
//
// The first round of Run only announces the member, so instances started
// together see each other before taking shards rather than one taking them
// all and handing most back; a lone instance starts working one Renew later.
//
// All expiry decisions in Redis use the server's clock (TIME inside the
// scripts), so clock skew between machines does not matter. Locally a lease
// is trusted until TTL (minus a tenth of TTL as a guard) after the renew that
// confirmed it was sent; past that it disappears from Leases (and Changes is
// signalled) even while Redis cannot be reached or a call hangs. Each Redis
// call gets a context bounded by that deadline; go-redis applies it to socket
// I/O only with ContextTimeoutEnabled, otherwise its ReadTimeout bounds how
// long a round can stall (either way the lease leaves Leases on time).
//
// # Release protocol
//
// A lease to give up first disappears from Leases (and Changes is signalled);
// the consumer stops the shard's worker and then calls Done(shard, fence);
// only then does the Manager delete the lease key, so the next owner starts
// after the previous worker stopped. The Manager keeps renewing the lease
// until then, up to Config.ReleaseTimeout, after which it deletes the key
// anyway. Correctness never depends on this cooperation: a process paused
// past its TTL (GC, VM freeze) or a consumer that never calls Done only
// delays or overlaps the workers, and the store refuses every apply of the
// older worker because the new owner's fence is higher (metric.Position.Fence,
// checked by the store's atomic apply).
//
// # Timing
//
// A dead instance's shards move to the others within about TTL + Renew of its
// last successful round (10s + 3.3s with the defaults): its leases and its membership expire TTL after their
// last renew, and the survivors notice at their next round. A joining
// instance gets its share within a few rounds plus the time the current
// owners' workers take to stop. A graceful stop calls Leave after Run has
// returned and the workers have stopped, so the others take over at their
// next round instead of after TTL.
//
// # Keys and Redis Cluster
//
// All keys share the hash tag {lease}, so every script (renew and take touch
// many shards, the fence counter and the lease keys at once) runs in one
// Redis Cluster slot (redisagg.Keys builds them):
//
//	p:NS:{lease}:members     sorted set: owner -> expiry (server ms)
//	p:NS:{lease}:fence       hash: shard -> last fence handed out (never expires)
//	p:NS:{lease}:shard:ID    hash: owner, fence, exp (server ms); PEXPIRE TTL
//
// Lease traffic is a few small scripts per instance per Renew, so one slot is
// no hot spot. The fence hash must survive as long as the positions the store
// keeps (it has no TTL, so volatile-* eviction policies leave it alone): a
// lost counter would restart fences below the stored ones and every apply
// would be refused.
package lease
