// Package logging builds the exporter's logger: go-kit's, in logfmt or
// JSON, filtered by level, plus a slog bridge for exporter-toolkit so that
// every line comes out in one format.
package logging
