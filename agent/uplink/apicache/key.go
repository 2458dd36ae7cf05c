package apicache

import (
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// volatileParams change between requests for the same data; they are left
// out of cache keys.
var volatileParams = map[string]bool{
	"resourceVersion": true, "resourceVersionMatch": true, "timeout": true, "timeoutSeconds": true,
	"allowWatchBookmarks": true, "watch": true, "sendInitialEvents": true, "limit": true, "continue": true,
}

// request is what the cache needs to know about one API request.
type request struct {
	// key names the data: identity, path and the query without volatile
	// parameters. A watch has the key of the list it follows.
	key           string
	watch         bool
	initialEvents bool   // watch with sendInitialEvents=true (watch-list)
	continueToken string // a later page of a paginated list
	tokenRequest  bool   // POST .../serviceaccounts/NAME/token
}

// classify describes r, made by the client with identity.
func classify(identity string, r *http.Request) request {
	q := r.URL.Query()
	var kept []string
	for k, vs := range q {
		if volatileParams[k] {
			continue
		}
		for _, v := range vs {
			kept = append(kept, url.QueryEscape(k)+"="+url.QueryEscape(v))
		}
	}
	sort.Strings(kept)
	key := identity + " " + r.URL.Path
	if len(kept) > 0 {
		key += "?" + strings.Join(kept, "&")
	}
	return request{
		key:           key,
		watch:         q.Get("watch") == "true" || q.Get("watch") == "1",
		initialEvents: q.Get("sendInitialEvents") == "true",
		continueToken: q.Get("continue"),
		tokenRequest:  r.Method == http.MethodPost && isTokenRequest(r.URL.Path),
	}
}

// isTokenRequest reports whether path is a ServiceAccount's token subresource.
func isTokenRequest(path string) bool {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	// api v1 namespaces NS serviceaccounts NAME token
	return len(parts) == 7 && parts[0] == "api" && parts[2] == "namespaces" && parts[4] == "serviceaccounts" && parts[6] == "token"
}
