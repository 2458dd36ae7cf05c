package deploy

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Template variables. A manifest (packaged or dropped by a user) may write
// %{NAME}% anywhere; the deployer replaces it when it applies the file (the
// staged file keeps the variable). These are all the variables there are; a
// file that names any other is reported as malformed and not applied.
//
//   - %{CLUSTER_DNS}%: the cluster DNS Service IP (--cluster-dns), for the
//     kube-dns Service's clusterIP.
//   - %{CLUSTER_DOMAIN}%: the cluster domain (--cluster-domain), e.g.
//     cluster.local.
//   - %{SERVER_CA_BASE64}%: the server CA certificate (PEM) in standard
//     base64, for an APIService's or webhook's caBundle.
const (
	VarClusterDNS     = "CLUSTER_DNS"
	VarClusterDomain  = "CLUSTER_DOMAIN"
	VarServerCABase64 = "SERVER_CA_BASE64"
)

// Variables are the values of the template variables.
type Variables struct {
	ClusterDNS    string
	ClusterDomain string
	// ServerCA is the server CA certificate in PEM.
	ServerCA []byte
}

func (v Variables) values() map[string]string {
	return map[string]string{
		VarClusterDNS:     v.ClusterDNS,
		VarClusterDomain:  v.ClusterDomain,
		VarServerCABase64: base64.StdEncoding.EncodeToString(v.ServerCA),
	}
}

var variable = regexp.MustCompile(`%\{([A-Za-z0-9_]*)\}%`)

// Substitute replaces every %{NAME}% in data with its value. It returns an
// error naming the first unknown variable and its line.
func (v Variables) Substitute(data []byte) ([]byte, error) {
	values := v.values()
	if loc := variable.FindAllSubmatchIndex(data, -1); loc != nil {
		for _, m := range loc {
			name := string(data[m[2]:m[3]])
			if _, ok := values[name]; !ok {
				line := 1 + strings.Count(string(data[:m[0]]), "\n")
				known := make([]string, 0, len(values))
				for k := range values {
					known = append(known, "%{"+k+"}%")
				}
				slices.Sort(known)
				return nil, fmt.Errorf("line %d: unknown variable %%{%s}%% (known: %s)", line, name, strings.Join(known, ", "))
			}
		}
	}
	return variable.ReplaceAllFunc(data, func(m []byte) []byte {
		return []byte(values[string(m[2:len(m)-2])])
	}), nil
}
