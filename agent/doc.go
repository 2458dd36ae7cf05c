// Package agent will hold the worker node (containerd, kubelet, kube-proxy,
// flannel, client-side load balancer, offline cache). It is built in the
// nodes issue; `kedge server --disable-agent` is accepted already so that
// scripts written today keep working.
package agent
