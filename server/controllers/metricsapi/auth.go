package metricsapi

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kedge/kedge/server/clientcert"
)

// The front-proxy headers the apiserver is started with
// (--requestheader-*-headers, server/control).
const (
	userHeader        = "X-Remote-User"
	groupHeader       = "X-Remote-Group"
	extraHeaderPrefix = "X-Remote-Extra-"
)

// caller is the user on whose behalf the aggregator proxies a request.
type caller struct {
	name   string
	groups []string
	extra  map[string]authorizationv1.ExtraValue
}

// refusal is an authentication or authorization failure with its status.
type refusal struct {
	code int
	msg  string
}

func (e *refusal) Error() string { return e.msg }

// authenticate checks that r comes from the aggregator: a client
// certificate verified by clientcert.Verify against roots (the
// request-header CA), with a common name in allowed (any name if allowed is
// empty), and a user in the X-Remote-User header. Any failure is a 401 refusal.
func authenticate(r *http.Request, roots *x509.CertPool, allowed []string) (*caller, error) {
	leaf, err := clientcert.Verify(r, roots)
	if errors.Is(err, clientcert.ErrMissing) {
		return nil, &refusal{http.StatusUnauthorized, "a front-proxy client certificate is required"}
	}
	if err != nil {
		return nil, &refusal{http.StatusUnauthorized, "front-proxy " + err.Error()}
	}
	if len(allowed) > 0 && !slices.Contains(allowed, leaf.Subject.CommonName) {
		return nil, &refusal{http.StatusUnauthorized, fmt.Sprintf("front-proxy client certificate %q is not an allowed name", leaf.Subject.CommonName)}
	}
	c := &caller{name: r.Header.Get(userHeader), groups: r.Header.Values(groupHeader)}
	if c.name == "" {
		return nil, &refusal{http.StatusUnauthorized, "no " + userHeader + " header"}
	}
	for h, vals := range r.Header {
		k, ok := strings.CutPrefix(h, extraHeaderPrefix)
		if !ok || k == "" {
			continue
		}
		// Keys are percent-encoded and case-insensitive (lower-cased).
		if u, err := url.PathUnescape(k); err == nil {
			k = u
		}
		if c.extra == nil {
			c.extra = map[string]authorizationv1.ExtraValue{}
		}
		k = strings.ToLower(k)
		c.extra[k] = append(c.extra[k], vals...)
	}
	return c, nil
}

// reviewer creates SubjectAccessReviews; the typed client's
// AuthorizationV1().SubjectAccessReviews() is one.
type reviewer interface {
	Create(ctx context.Context, sar *authorizationv1.SubjectAccessReview, opts metav1.CreateOptions) (*authorizationv1.SubjectAccessReview, error)
}

// authorize asks the apiserver whether c may verb resource (nodes or pods
// of metrics.k8s.io) in namespace, named name; a denial is a 403 refusal.
func authorize(ctx context.Context, rv reviewer, c *caller, verb, resource, namespace, name string) error {
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: c.name, Groups: c.groups, Extra: c.extra,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: namespace, Verb: verb, Group: Group, Version: Version, Resource: resource, Name: name,
		},
	}}
	res, err := rv.Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("subject access review: %w", err)
	}
	if !res.Status.Allowed || res.Status.Denied {
		what := resource + "." + Group
		if name != "" {
			what += " " + name
		}
		if namespace != "" {
			what += " in namespace " + namespace
		}
		return &refusal{http.StatusForbidden, fmt.Sprintf("user %q cannot %s %s", c.name, verb, what)}
	}
	return nil
}
