package kinesis

import (
	"math/big"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/pulsehq/pulse/stream"
)

func TestPositionOrder(t *testing.T) {
	// Kinesis sequence numbers of one shard, ascending, including a length
	// change, each with plain or aggregated sub-record positions.
	seqs := []string{"9", "49590338271490256608559692538361571095921575989136588898", "49590338271490256608559692538361571095921575989136588899", "495903382714902566085596925383615710959215759891365888990"}
	var want []string
	for _, s := range seqs {
		for i := range 3 {
			want = append(want, position(s, i, false))
		}
		want = append(want, position(s, 3, true))
	}
	got := slices.Clone(want)
	slices.Reverse(got)
	slices.SortFunc(got, stream.CompareSeq)
	if !slices.Equal(got, want) {
		t.Fatalf("CompareSeq order:\n got %v\nwant %v", got, want)
	}
	for _, p := range want {
		seq, sub, err := parsePosition(p)
		if err != nil {
			t.Fatal(err)
		}
		if again := position(seq, sub, sub == lastSub); again != p {
			t.Fatalf("parse(%s) = %s, %d -> %s", p, seq, sub, again)
		}
	}
}

func TestParsePositionErrors(t *testing.T) {
	for _, p := range []string{"", "123456", "0123456789", "12a4567", "-1234567"} {
		if _, _, err := parsePosition(p); err == nil {
			t.Errorf("parsePosition(%q): no error", p)
		}
	}
}

func TestShardMap(t *testing.T) {
	max128 := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))
	quarter := new(big.Int).Rsh(max128, 2)
	bound := func(i int64) string {
		return new(big.Int).Add(new(big.Int).Mul(quarter, big.NewInt(i)), big.NewInt(i)).String()
	}
	var shards []types.Shard
	ids := []string{"s0", "s1", "s2", "s3"}
	for i := range 4 {
		end := new(big.Int).Sub(mustBig(bound(int64(i+1))), big.NewInt(1)).String()
		if i == 3 {
			end = max128.String()
		}
		shards = append(shards, types.Shard{
			ShardId:             aws.String(ids[i]),
			HashKeyRange:        &types.HashKeyRange{StartingHashKey: aws.String(bound(int64(i))), EndingHashKey: aws.String(end)},
			SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")},
		})
	}
	// A closed parent covering everything must be ignored.
	shards = append(shards, types.Shard{
		ShardId:             aws.String("old"),
		HashKeyRange:        &types.HashKeyRange{StartingHashKey: aws.String("0"), EndingHashKey: aws.String(max128.String())},
		SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1"), EndingSequenceNumber: aws.String("2")},
	})
	slices.Reverse(shards)
	m, err := newShardMap(shards)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		hash string
		want string
	}{
		{"0", "s0"},
		{new(big.Int).Sub(mustBig(bound(1)), big.NewInt(1)).String(), "s0"},
		{bound(1), "s1"},
		{bound(2), "s2"},
		{bound(3), "s3"},
		{max128.String(), "s3"},
	}
	for _, tt := range tests {
		h, err := parseHashKey(tt.hash)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.lookup(h); got != tt.want {
			t.Errorf("lookup(%s) = %s, want %s", tt.hash, got, tt.want)
		}
		if h.String() != tt.hash {
			t.Errorf("hashKey round trip: %s -> %s", tt.hash, h.String())
		}
	}
	// MD5("demo/1") as an integer, computed independently.
	h := hashOf("demo/1")
	if got, want := h.String(), "95408668568039515010860904266032172557"; got != want {
		t.Errorf("hashOf(demo/1) = %s, want %s", got, want)
	}
}

func mustBig(s string) *big.Int {
	n, _ := new(big.Int).SetString(s, 10)
	return n
}
