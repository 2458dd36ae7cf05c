package join

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// PostPinned POSTs body as JSON to server+path with HTTP Basic auth,
// trusting only the pinned CA, and returns the status and (at most 1 MiB
// of) the response. Agents and joining servers use it for the join API.
func PostPinned(ctx context.Context, server, path string, ca []byte, user, secret string, body any, timeout time.Duration) (int, []byte, error) {
	return postPinned(ctx, server, path, ca, nil, func(r *http.Request) { r.SetBasicAuth(user, secret) }, body, timeout)
}

// postPinned is PostPinned with either a client certificate or auth
// setting the request's credentials.
func postPinned(ctx context.Context, server, path string, ca []byte, cert *tls.Certificate, auth func(*http.Request), body any, timeout time.Duration) (int, []byte, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	tlsConfig := &tls.Config{RootCAs: pool}
	if cert != nil {
		tlsConfig.Certificates = []tls.Certificate{*cert}
	}
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(server, "/")+path, bytes.NewReader(data))
	if err != nil {
		return 0, nil, err
	}
	if auth != nil {
		auth(req)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("read %s: %w", path, err)
	}
	return resp.StatusCode, out, nil
}
