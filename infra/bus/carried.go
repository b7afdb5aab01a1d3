package bus

import "strings"

// Carried reports whether the metadata key travels with its message from
// the publisher to the subscribers. Backends store such keys as broker
// headers (NATS message headers, Kafka record headers) and set them again
// on the messages they deliver: this is how a producer's W3C trace context
// (traceparent, tracestate) reaches the projections. Keys with the
// "evflow_" prefix are not carried: a backend derives them from where the
// message is stored ([MetaPosition], [MetaPartition], the aggregate) or
// consumes them ([MetaExpected]). Backends may reserve further prefixes of
// their own (NATS: "Nats-"; Kafka: "evflow-").
func Carried(key string) bool { return !strings.HasPrefix(key, "evflow_") }
