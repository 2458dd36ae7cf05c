// Package joinapi is the wire format of the join API that the server serves
// on its HTTPS port next to the Kubernetes API, shared by server and agent.
//
//	GET  /cacerts                  the server CA bundle (PEM), unauthenticated;
//	                               joiners pin it with the token's CA hash
//	POST /v1-kedge/node-certs      NodeCertsRequest -> NodeCertsResponse, with
//	                               HTTP Basic auth <token user>:<token secret>
//	POST /v1-kedge/server-join     ServerJoinRequest -> ServerJoinResponse, with
//	                               the server token only
//	GET  /v1-kedge/connect         websocket upgrade to the node's reverse
//	                               tunnel (remotedialer), authenticated by
//	                               the node's kubelet client certificate
package joinapi

// Paths of the join API.
const (
	CACertsPath   = "/cacerts"
	NodeCertsPath = "/v1-kedge/node-certs"
	// ServerJoinPath adds a server to the embedded etcd cluster.
	ServerJoinPath = "/v1-kedge/server-join"
	TunnelPath     = "/v1-kedge/connect"
	// Prefix is every kedge path under which the API is served.
	Prefix = "/v1-kedge/"
)

// NodeCertsRequest asks for a node's certificates. The server takes only the
// public keys from the CSRs; it sets subjects and names itself.
type NodeCertsRequest struct {
	NodeName string `json:"nodeName"`
	// NodePassword is the node's own secret, created on its first join. A
	// node name can only be joined again with the same password.
	NodePassword string `json:"nodePassword"`
	// Addresses are the node's IPs and host names for its serving certificate.
	Addresses []string `json:"addresses"`
	// PEM certificate requests.
	KubeletClientCSR  string `json:"kubeletClientCSR"`
	KubeletServingCSR string `json:"kubeletServingCSR"`
	KubeProxyCSR      string `json:"kubeProxyCSR"`
}

// NodeCertsResponse carries the signed certificates (PEM) and the CAs that
// verify the API server (ServerCA) and client certificates (ClientCA).
type NodeCertsResponse struct {
	KubeletClientCert  string  `json:"kubeletClientCert"`
	KubeletServingCert string  `json:"kubeletServingCert"`
	KubeProxyCert      string  `json:"kubeProxyCert"`
	ServerCA           string  `json:"serverCA"`
	ClientCA           string  `json:"clientCA"`
	Cluster            Cluster `json:"cluster"`
}

// Cluster is what a node needs to know about the cluster's networks.
type Cluster struct {
	ClusterDNS    string `json:"clusterDNS"`
	ClusterDomain string `json:"clusterDomain"`
	ClusterCIDR   string `json:"clusterCIDR"`
	ServiceCIDR   string `json:"serviceCIDR"`
}

// ServerJoinRequest asks to add a server to the cluster's embedded etcd.
type ServerJoinRequest struct {
	NodeName string `json:"nodeName"`
	// EtcdPeerURL is where the other members reach the new one, https://IP:port.
	EtcdPeerURL string `json:"etcdPeerURL"`
	// Cluster is the joiner's own settings; they must equal the cluster's.
	Cluster Cluster `json:"cluster"`
}

// ServerJoinResponse is what every server of a cluster shares. It holds CA
// keys: it travels only over TLS verified against the pinned CA, to a client
// that presented the server token, and is never logged.
type ServerJoinResponse struct {
	// PKI maps the shared files' names, relative to the TLS dir (the CAs
	// with their keys and the service-account key), to their PEM contents.
	PKI map[string]string `json:"pki"`
	// AgentToken is the agent token's secret, empty if there is none.
	AgentToken string  `json:"agentToken,omitempty"`
	Cluster    Cluster `json:"cluster"`
	// EtcdMembers are all members, the new learner included, named as the
	// new member's initial cluster must name them.
	EtcdMembers []EtcdMember `json:"etcdMembers"`
}

// EtcdMember is one member of the embedded etcd cluster.
type EtcdMember struct {
	Name     string   `json:"name"`
	PeerURLs []string `json:"peerURLs"`
}
