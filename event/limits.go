package event

// Limits bounds what one collect request and one event may hold. The zero
// value of each field means its default, so Limits{} is the production
// setting.
type Limits struct {
	MaxBodyBytes int64 // request body size; default 1 MiB
	MaxEvents    int   // events (array elements or NDJSON lines) per request; default 500
	MaxProps     int   // keys in props; default 32
	MaxPropKey   int   // bytes in one props key; default 64
	MaxPropValue int   // bytes in one props string value; default 512
	MaxURL       int   // bytes in url and ref; default 2048
	MaxUID       int   // bytes in uid; default 128
	// MaxDepth is how deep JSON containers may nest inside one event, the
	// event object counting as 1 (default 8). Props must be flat whatever
	// this says; the limit bounds the unknown fields that are skipped, so a
	// hostile body cannot make the decoder hold a deep stack.
	MaxDepth int
}

// Default limits.
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultMaxEvents    = 500
	DefaultMaxProps     = 32
	DefaultMaxPropKey   = 64
	DefaultMaxPropValue = 512
	DefaultMaxURL       = 2048
	DefaultMaxUID       = 128
	DefaultMaxDepth     = 8
)

// WithDefaults returns l with every zero (or negative) field set to its
// default.
func (l Limits) WithDefaults() Limits {
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if l.MaxEvents <= 0 {
		l.MaxEvents = DefaultMaxEvents
	}
	if l.MaxProps <= 0 {
		l.MaxProps = DefaultMaxProps
	}
	if l.MaxPropKey <= 0 {
		l.MaxPropKey = DefaultMaxPropKey
	}
	if l.MaxPropValue <= 0 {
		l.MaxPropValue = DefaultMaxPropValue
	}
	if l.MaxURL <= 0 {
		l.MaxURL = DefaultMaxURL
	}
	if l.MaxUID <= 0 {
		l.MaxUID = DefaultMaxUID
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	return l
}
