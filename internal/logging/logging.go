package logging

import (
	"io"
	"log/slog"

	kitlog "github.com/go-kit/log"
	"github.com/go-kit/log/level"
	sloggokit "github.com/tjhop/slog-gokit"
)

// Logger is the go-kit logger of the exporter plus its slog bridge.
type Logger struct {
	Kit  kitlog.Logger
	Slog *slog.Logger
}

// New writes to w in format ("logfmt" or "json") the messages of level
// lvl ("debug", "info", "warn", "error") and above.
func New(w io.Writer, format, lvl string) Logger {
	var l kitlog.Logger
	if format == "json" {
		l = kitlog.NewJSONLogger(kitlog.NewSyncWriter(w))
	} else {
		l = kitlog.NewLogfmtLogger(kitlog.NewSyncWriter(w))
	}
	l = kitlog.With(l, "ts", kitlog.DefaultTimestampUTC)
	var allow level.Option
	var sl slog.Level
	switch lvl {
	case "debug":
		allow, sl = level.AllowDebug(), slog.LevelDebug
	case "warn":
		allow, sl = level.AllowWarn(), slog.LevelWarn
	case "error":
		allow, sl = level.AllowError(), slog.LevelError
	default:
		allow, sl = level.AllowInfo(), slog.LevelInfo
	}
	l = level.NewFilter(l, allow)
	// The bridge adds slog's own caller; the exporter's lines get theirs
	// from go-kit.
	return Logger{Kit: kitlog.With(l, "caller", kitlog.DefaultCaller), Slog: slog.New(sloggokit.NewGoKitHandler(l, sl))}
}
