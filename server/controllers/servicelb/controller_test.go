package servicelb

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// TestController runs the controller against a fake API: a LoadBalancer
// Service gets the node's address, and the disabled controller is ready
// after its first attempt to release. (The fake's managedFields lack the
// status subresource, so ownsStatus cannot see kedge's ingress there: the
// release itself is left to the e2e tests.)
func TestController(t *testing.T) {
	client := fake.NewClientset(node("n1", true, internal("192.0.2.1")), lbService("web", time.Hour, 80))
	ingress := func() []string {
		s, err := client.CoreV1().Services("default").Get(t.Context(), "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return ingressIPs(s)
	}
	run := func(disabled bool, want []string) {
		t.Helper()
		reconciled := make(chan struct{}, 1)
		c := &Controller{Client: client, Disabled: disabled, Log: slog.New(slog.DiscardHandler), Decided: func(Result, error) {
			select {
			case reconciled <- struct{}{}:
			default:
			}
		}}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		readyc, done := make(chan struct{}), make(chan error, 1)
		lists := listsOfServices(client)
		go func() {
			done <- c.Run(ctx, func() {
				if disabled && listsOfServices(client) == lists {
					t.Error("disabled controller ready before its first attempt")
				}
				close(readyc)
			})
		}()
		deadline := time.After(10 * time.Second)
		for got := ingress(); !slices.Equal(got, want); got = ingress() {
			select {
			case <-reconciled:
			case <-deadline:
				t.Fatalf("disabled %v: ingress %v, want %v", disabled, got, want)
			}
		}
		select {
		case <-readyc:
		case <-deadline:
			t.Fatalf("disabled %v: not ready", disabled)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
	run(false, []string{"192.0.2.1"})
	run(true, []string{"192.0.2.1"})
}

func listsOfServices(client *fake.Clientset) int {
	n := 0
	for _, a := range client.Actions() {
		if a.GetVerb() == "list" && a.GetResource().Resource == "services" {
			n++
		}
	}
	return n
}
