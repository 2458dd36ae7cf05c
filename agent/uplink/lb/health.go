package lb

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"time"
)

// checker GETs https://<server>/readyz, verifying the server's certificate
// against the cluster CA for serverName, the name the balancer's clients
// verify (127.0.0.1): a server is healthy only if they could use it.
// Anonymous requests may read /readyz. It keeps one idle connection per
// server, so a check is one round trip.
type checker struct {
	client *http.Client
}

func newChecker(ca *x509.CertPool, serverName string, timeout time.Duration) *checker {
	return &checker{client: &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: ca, ServerName: serverName, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     time.Minute,
			TLSHandshakeTimeout: timeout,
			DisableCompression:  true,
		},
		// /readyz never redirects; a redirect is not a ready server.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// check returns nil if addr (host:port) answers /readyz with 200.
func (c *checker) check(ctx context.Context, addr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz: %s", resp.Status)
	}
	return nil
}

// loop checks addr every interval and reports each result, until ctx ends.
func (c *checker) loop(ctx context.Context, addr string, interval time.Duration, report func(string, error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		err := c.check(ctx, addr)
		if ctx.Err() != nil {
			return
		}
		report(addr, err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *checker) close() { c.client.CloseIdleConnections() }
