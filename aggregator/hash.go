package aggregator

import (
	"encoding/binary"
	"math/bits"
)

// dedupKey is the 128-bit identity of an event for deduplication. 128 bits
// keep the chance of two distinct events colliding negligible (about 1e-25
// for the few million keys of one window) while costing 16 bytes a key.
type dedupKey [2]uint64

// keyOf returns the dedup key of an event: MurmurHash3 x64_128 (seed 0) of
// site + "\x00" + id. The hash is fixed by its definition, not seeded per
// process, so keys and therefore dedup decisions are the same in every
// process that ever rebuilds a shard's state.
func keyOf(site, id string) dedupKey {
	var buf [160]byte
	var b []byte
	if n := len(site) + 1 + len(id); n <= len(buf) {
		b = buf[:n]
	} else {
		b = make([]byte, n)
	}
	copy(b, site)
	b[len(site)] = 0
	copy(b[len(site)+1:], id)
	h1, h2 := murmur3x64(b, 0)
	return dedupKey{h1, h2}
}

// murmur3x64 is MurmurHash3_x64_128 by Austin Appleby (public domain).
func murmur3x64(data []byte, seed uint64) (uint64, uint64) {
	const c1, c2 = 0x87c37b91114253d5, 0x4cf5ad432745937f
	h1, h2 := seed, seed
	n := len(data)
	p := data
	for len(p) >= 16 {
		k1 := binary.LittleEndian.Uint64(p)
		k2 := binary.LittleEndian.Uint64(p[8:])
		p = p[16:]
		k1 *= c1
		k1 = bits.RotateLeft64(k1, 31)
		k1 *= c2
		h1 ^= k1
		h1 = bits.RotateLeft64(h1, 27)
		h1 += h2
		h1 = h1*5 + 0x52dce729
		k2 *= c2
		k2 = bits.RotateLeft64(k2, 33)
		k2 *= c1
		h2 ^= k2
		h2 = bits.RotateLeft64(h2, 31)
		h2 += h1
		h2 = h2*5 + 0x38495ab5
	}
	var k1, k2 uint64
	for i := len(p) - 1; i >= 8; i-- {
		k2 = k2<<8 | uint64(p[i])
	}
	if len(p) > 8 {
		k2 *= c2
		k2 = bits.RotateLeft64(k2, 33)
		k2 *= c1
		h2 ^= k2
	}
	for i := min(len(p), 8) - 1; i >= 0; i-- {
		k1 = k1<<8 | uint64(p[i])
	}
	if len(p) > 0 {
		k1 *= c1
		k1 = bits.RotateLeft64(k1, 31)
		k1 *= c2
		h1 ^= k1
	}
	h1 ^= uint64(n)
	h2 ^= uint64(n)
	h1 += h2
	h2 += h1
	h1 = fmix64(h1)
	h2 = fmix64(h2)
	h1 += h2
	h2 += h1
	return h1, h2
}

func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}
