package kinesis

import (
	"context"
	"math/big"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/pulsehq/pulse/internal/kinesistest"
)

// testReadFrom reads from positions inclusive, the dedup rebuild's first
// read: the first user record of an aggregated record (the position before
// it, seq-1 followed by 999999, names no Kinesis record), one inside, the
// last one, a plain record and a shard's first record.
func testReadFrom(t *testing.T, client *kinesis.Client) {
	name := kinesistest.CreateStream(t, client, 2)
	s := open(t, client, name, nil)
	events := putEvents(t, s, "f", 600)
	plain := open(t, client, name, func(c *Config) { c.NoAggregation = true })
	events = append(events, putEvents(t, plain, "q", 40)...)
	events = append(events, putEvents(t, s, "g", 300)...)
	byShard := readAll(t, s)
	checkExactlyOnce(t, events, byShard)

	for shard, recs := range byShard {
		pick := map[string]int{"first record of the shard": 0}
		for i, r := range recs {
			seq, sub, _ := parsePosition(r.Seq)
			prevSeq := ""
			if i > 0 {
				prevSeq, _, _ = parsePosition(recs[i-1].Seq)
			}
			switch {
			case sub == 0:
				pick["first user record of an aggregated record"] = i
			case sub != lastSub:
				pick["user record inside an aggregated record"] = i
			case prevSeq == seq:
				pick["last user record of an aggregated record"] = i
			case i+1 < len(recs) && recs[i+1].Seq[:len(recs[i+1].Seq)-subDigits] != seq:
				pick["plain record"] = i
			}
		}
		if len(pick) < 5 {
			t.Fatalf("shard %s: only %d of the 5 kinds of position present: %v", shard, len(pick), pick)
		}
		for kind, i := range pick {
			fresh := open(t, client, name, nil)
			b, err := fresh.ReadFrom(context.Background(), shard, recs[i].Seq, 50)
			if err != nil {
				t.Fatalf("%s: ReadFrom %s: %v", kind, recs[i].Seq, err)
			}
			got := b.Records
			more, _ := readShard(t, fresh, shard, got[len(got)-1].Seq, 1000)
			got = append(got, more...)
			if want := recs[i:]; !sameRecords(got, want) {
				t.Fatalf("shard %s from %s (%s): read %d records, want %d", shard, recs[i].Seq, kind, len(got), len(want))
			}
			// And Read after the decremented position (the fallback for
			// sources without ReadFrom) when it stays within one Kinesis
			// record: it must not drop the record at the position.
			if _, sub, _ := parsePosition(recs[i].Seq); sub > 0 {
				seq, _, _ := parsePosition(recs[i].Seq)
				before := position(seq, sub-1, false)
				if sub == lastSub {
					before = seq + "999998"
				}
				got, _ := readShard(t, fresh, shard, before, 1000)
				if want := recs[i:]; !sameRecords(got, want) {
					t.Fatalf("shard %s after %s (%s, one before): read %d records, want %d", shard, before, kind, len(got), len(want))
				}
			}
		}
		// What the emulator does with AFTER_SEQUENCE_NUMBER of a number that
		// is no record (Kinesis documents none): logged for the docs, not
		// relied on.
		seq, _, _ := parsePosition(recs[pick["first user record of an aggregated record"]].Seq)
		n, _ := new(big.Int).SetString(seq, 10)
		out, err := client.GetShardIterator(context.Background(), &kinesis.GetShardIteratorInput{
			StreamName: aws.String(name), ShardId: aws.String(shard),
			ShardIteratorType:      types.ShardIteratorTypeAfterSequenceNumber,
			StartingSequenceNumber: aws.String(n.Sub(n, big.NewInt(1)).String()),
		})
		if err != nil {
			t.Logf("emulator: AFTER_SEQUENCE_NUMBER of a number that is no record: %v", err)
		} else {
			r, err := client.GetRecords(context.Background(), &kinesis.GetRecordsInput{ShardIterator: out.ShardIterator, Limit: aws.Int32(1)})
			if err == nil && len(r.Records) > 0 {
				t.Logf("emulator: AFTER_SEQUENCE_NUMBER of %s-1 returns record %s", seq, aws.ToString(r.Records[0].SequenceNumber))
			} else {
				t.Logf("emulator: AFTER_SEQUENCE_NUMBER of %s-1: %d records, %v", seq, len(r.Records), err)
			}
		}
		break // one shard shows it; the emulator is slow
	}
}
