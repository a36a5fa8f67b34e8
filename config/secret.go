package config

import (
	"fmt"
	"log/slog"
)

// redacted is what a Secret shows wherever it could be printed.
const redacted = "<secret>"

// Secret holds a credential. Every way of rendering it (fmt verbs, YAML,
// JSON, text marshalling, slog) prints "<secret>" so that a stray log line
// or debug dump cannot leak it; read the value with a string conversion,
// which is easy to spot in review.
type Secret string

// String implements fmt.Stringer.
func (Secret) String() string { return redacted }

// GoString implements fmt.GoStringer, so %#v does not fall back to the raw
// string.
func (Secret) GoString() string { return redacted }

// Format implements fmt.Formatter: it covers verbs that bypass String, such
// as %x and %q.
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalYAML implements yaml.Marshaler.
func (Secret) MarshalYAML() (any, error) { return redacted, nil }

// MarshalText implements encoding.TextMarshaler, which encoding/json and
// slog's handlers use.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }
