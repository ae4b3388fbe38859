package redisagg

import (
	"encoding/json"
	"fmt"

	"github.com/pulsehq/pulse/push"
)

// DecodeDelta decodes one delta log entry (the "d" field of a stream entry,
// or a pub/sub message) into push's delta type, its one consumer.
//
// apply.lua builds that JSON by string concatenation rather than with
// cjson.encode, as it is the hot path: numbers are integers formatted with
// %d, an empty labels table is written {} (cjson would write it as {} too,
// other Lua JSON encoders as []), and only strings that need escaping go
// through cjson.encode (which escapes / as \/). The decoder therefore
// accepts exactly integers and labels objects of at most one key.
func DecodeDelta(b []byte) (push.Delta, error) {
	var d push.Delta
	if err := json.Unmarshal(b, &d); err != nil {
		return push.Delta{}, fmt.Errorf("%w: %w", push.ErrBadDelta, err)
	}
	if d.N < 1 {
		return push.Delta{}, fmt.Errorf("%w: n %d is not positive", push.ErrBadDelta, d.N)
	}
	return d, nil
}
