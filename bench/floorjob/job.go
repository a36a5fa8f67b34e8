// Package floorjob is what bench/scale hands bench/floor: the estate to
// reach and the mailboxes whose chains to walk.
package floorjob

// Job is written as JSON by bench/scale and read by bench/floor.
type Job struct {
	DNSServer string            `json:"dns_server"`
	ConnectTo map[string]string `json:"connect_to"`
	CAFile    string            `json:"ca_file"`
	Username  string            `json:"username"`
	Password  string            `json:"password"`
	Mailboxes []string          `json:"mailboxes"`
}
