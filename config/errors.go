package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a configuration file.
type Error struct {
	File string
	// Line is 1-based; 0 when the problem has no position (the file as a
	// whole).
	Line int
	// Field is the path of the offending field ("modules.hq.dns.server",
	// "mailboxes[2].labels.site"); empty for YAML syntax errors.
	Field string
	Msg   string
	// Err is the underlying cause, if any (an *os.PathError, a
	// *probe.AddressError, ...).
	Err error
}

func (e *Error) Error() string {
	s := e.File
	if e.Line > 0 {
		s += fmt.Sprintf(":%d", e.Line)
	}
	if e.Field != "" {
		s += ": " + e.Field
	}
	return s + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// maxReported bounds the error list: past a few dozen problems the file is
// probably not the file the operator meant, and a huge list hides the first
// (usually root) cause.
const maxReported = 50

// joinErrors orders problems by position, so the report reads like the file,
// and joins them one per line. A node reached through several aliases or
// merge keys is checked once per use; the repeats are dropped.
func joinErrors(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	slices.SortStableFunc(errs, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), strings.Compare(a.Error(), b.Error()))
	})
	errs = slices.CompactFunc(errs, func(a, b *Error) bool { return a.Error() == b.Error() })
	out := make([]error, 0, min(len(errs), maxReported)+1)
	for i, e := range errs {
		if i == maxReported {
			out = append(out, fmt.Errorf("%s: ... and %d more errors", e.File, len(errs)-maxReported))
			break
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}
