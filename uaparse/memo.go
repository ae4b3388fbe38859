package uaparse

import (
	lru "github.com/hashicorp/golang-lru/v2"
)

// Bounds of a Memo: a site's traffic comes from a few hundred distinct
// User-Agents, and one longer than maxMemoAgent is rare enough (or made
// up) to be worked out each time rather than kept.
const (
	memoSize     = 4096
	maxMemoAgent = 512
)

// Memo remembers what a function of a User-Agent answered: parsing or
// classifying one is a tenth of what a 1-event request costs, and almost
// every request repeats a User-Agent seen before. Safe for concurrent use.
type Memo[T any] struct {
	of    func(ua string) T
	cache *lru.Cache[string, T]
}

// NewMemo remembers of for the most recently seen User-Agents.
func NewMemo[T any](of func(ua string) T) *Memo[T] {
	c, err := lru.New[string, T](memoSize)
	if err != nil { // only for a size below 1
		panic(err)
	}
	return &Memo[T]{of: of, cache: c}
}

// Of is of(ua), remembered.
func (m *Memo[T]) Of(ua string) T {
	if len(ua) > maxMemoAgent {
		return m.of(ua)
	}
	if v, ok := m.cache.Get(ua); ok {
		return v
	}
	v := m.of(ua)
	m.cache.Add(ua, v)
	return v
}
