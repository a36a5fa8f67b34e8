package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// ResetBackoff asks the exporter at base (http://host:port) to send the
// credentials of the mailbox named target again, as a person does after
// proving them with the probe command.
func ResetBackoff(ctx context.Context, base, target string) error {
	u := strings.TrimSuffix(base, "/") + "/-/backoff/reset?" + url.Values{"target": {target}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set(ActionHeader, "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
