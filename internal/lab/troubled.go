package lab

import (
	"fmt"
	"net/http"
	"sync"
)

// AddRedirectLoop builds two on-premises servers for user@domain that send
// the client back and forth with redirectUrl: autodiscover.<domain> points
// to mail.<domain>, which points back.
func (e *Estate) AddRedirectLoop(domain, user, password string) (Mailbox, error) {
	address := user + "@" + domain
	there := &Autodiscover{
		Accounts: map[string]string{address: password},
		Users:    map[string]Reply{address: {RedirectURL: "https://mail." + domain + "/autodiscover/autodiscover.xml"}},
	}
	back := &Autodiscover{
		Accounts: map[string]string{address: password},
		Users:    map[string]Reply{address: {RedirectURL: "https://autodiscover." + domain + "/Autodiscover/Autodiscover.xml"}},
	}
	if err := e.HTTPS("autodiscover."+domain, there); err != nil {
		return Mailbox{}, err
	}
	if err := e.HTTPS("mail."+domain, back); err != nil {
		return Mailbox{}, err
	}
	return Mailbox{Address: address, Username: address, Password: password}, nil
}

// AddLongChain builds a chain that works but is hops redirectUrl answers
// deep: autodiscover.<domain> sends the client to hop1.<domain>, that one
// to hop2.<domain>, and hop<hops>.<domain> answers settings.
func (e *Estate) AddLongChain(domain, user, password string, hops int) (Mailbox, error) {
	address := user + "@" + domain
	for i := 0; i <= hops; i++ {
		host := fmt.Sprintf("hop%d.%s", i, domain)
		if i == 0 {
			host = "autodiscover." + domain
		}
		reply := Reply{RedirectURL: fmt.Sprintf("https://hop%d.%s/autodiscover/autodiscover.xml", i+1, domain)}
		if i == hops {
			reply = Reply{Settings: &Settings{DisplayName: displayName(user), Server: "mail." + domain}}
		}
		ad := &Autodiscover{Accounts: map[string]string{address: password}, Users: map[string]Reply{address: reply}}
		if err := e.HTTPS(host, ad); err != nil {
			return Mailbox{}, err
		}
	}
	return Mailbox{Address: address, Username: address, Password: password}, nil
}

// AddMigrating models a load balancer whose nodes disagree during a
// migration: the answers of autodiscover.<domain> alternate between
// settings from the old server and a redirect to mail-new.<domain>, so the
// hops and the final endpoint of the chain keep changing.
func (e *Estate) AddMigrating(domain, user, password string) (Mailbox, error) {
	address := user + "@" + domain
	newHost := "mail-new." + domain
	// One account map per server: AddAccount on one must not change the others.
	account := func() map[string]string { return map[string]string{address: password} }
	old := &Autodiscover{Accounts: account(), Users: map[string]Reply{address: {Settings: &Settings{DisplayName: displayName(user), Server: "mail." + domain}}}}
	moved := &Autodiscover{Accounts: account(), Users: map[string]Reply{address: {RedirectURL: "https://" + newHost + "/autodiscover/autodiscover.xml"}}}
	newServer := &Autodiscover{Accounts: account(), Users: map[string]Reply{address: {Settings: &Settings{DisplayName: displayName(user), Server: newHost}}}}
	if err := e.HTTPS("autodiscover."+domain, &alternating{nodes: []http.Handler{old, moved}}); err != nil {
		return Mailbox{}, err
	}
	if err := e.HTTPS(newHost, newServer); err != nil {
		return Mailbox{}, err
	}
	return Mailbox{Address: address, Username: address, Password: password}, nil
}

// alternating hands each authenticated POST to the next node in turn, like
// a round-robin load balancer; a challenge round trip stays on one node.
type alternating struct {
	mu    sync.Mutex
	next  int
	nodes []http.Handler
}

func (a *alternating) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	node := a.nodes[a.next%len(a.nodes)]
	if r.Header.Get("Authorization") != "" {
		a.next++
	}
	a.mu.Unlock()
	node.ServeHTTP(w, r)
}
