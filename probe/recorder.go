package probe

import "time"

// target is what a step concerns: the candidate of the chain, a v2 query
// or one address of a TLS host.
type target struct {
	hop     int
	method  Method
	mailbox string // the address being discovered
	host    string
	port    int
	url     string
}

// recorder keeps the steps of a run, or of one per-address check, in the
// order they happened. Every step of every path goes through record, so a
// step always has the same shape however it came about.
type recorder struct {
	start time.Time
	steps []Step
	// lastFailure indexes the latest failed step, -1 for none.
	lastFailure int
}

func newRecorder(start time.Time, capacity int) *recorder {
	return &recorder{start: start, steps: make([]Step, 0, capacity), lastFailure: -1}
}

// record appends one step.
func (rc *recorder) record(t target, name StepName, started time.Time, addr string, err *Error, detail string) {
	st := Step{
		Hop:      t.hop,
		Method:   t.method,
		Mailbox:  t.mailbox,
		Host:     t.host,
		Port:     t.port,
		Address:  addr,
		URL:      t.url,
		Name:     name,
		OK:       err == nil,
		Start:    started.Sub(rc.start),
		Duration: time.Since(started),
		Detail:   detail,
	}
	if err != nil {
		st.ErrorClass = err.Class
		if st.Detail == "" {
			st.Detail = err.Detail
		} else {
			st.Detail += ": " + err.Detail
		}
		rc.lastFailure = len(rc.steps)
	}
	// The one place every detail passes: server text in it is escaped and
	// capped here, whichever step quoted it.
	st.Detail = Printable(st.Detail, maxDetailBytes)
	rc.steps = append(rc.steps, st)
}
