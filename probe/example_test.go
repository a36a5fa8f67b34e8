package probe_test

import (
	"context"
	"fmt"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// Discover a hybrid mailbox in the simulated estate: the on-premises server
// redirects the address to Exchange Online, whose front door redirects the
// URL to a pod.
func ExampleProber_Run() {
	estate, err := lab.New()
	if err != nil {
		panic(err)
	}
	defer estate.Close()
	mb, err := estate.AddHybrid("contoso.test", "alice", "Secr3t!")
	if err != nil {
		panic(err)
	}

	// A prober is built once per module and configuration load.
	prober, err := probe.NewProber(probe.Settings{
		DNSServer:      estate.DNSAddr(),
		RootCAs:        estate.RootCAs(),
		ConnectTo:      estate.ConnectTo(),
		Auth:           probe.AuthSettings{Type: probe.AuthBasic, Username: mb.Username, Password: mb.Password},
		AllowedDomains: mb.AllowedDomains,
	}, probe.Env{})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := prober.Run(ctx, probe.Target{Address: mb.Address})
	if err != nil {
		panic(err)
	}
	fmt.Println("success:", res.Success)
	fmt.Println("redirect hops:", res.RedirectHops)
	fmt.Println("final URL:", res.FinalURL)
	fmt.Println("EWS:", res.Response.EWSURL())
	// Output:
	// success: true
	// redirect hops: 3
	// final URL: https://pod51049.outlook.test/Autodiscover/Autodiscover.xml
	// EWS: https://outlook.outlook.test/EWS/Exchange.asmx
}
