// Command scalegen drives the scale part of scripts/bench against a cluster
// whose nodes are simulated by KWOK (started by the bench, managing the
// nodes annotated kwok.x-k8s.io/node=fake). It creates the nodes, waits for
// KWOK to make them Ready, creates Deployments, waits until every replica is
// Running, and prints shell assignments for the bench to eval:
//
//	created_s scheduled_s running_s  seconds from the first Deployment create
//	                                 until all pods exist / are bound / Running
//	mut_n mut_p50_ms mut_p99_ms      server-side latency of mutating calls
//	read_n read_p50_ms read_p99_ms   and of GET/LIST calls during that window
//	mut_worst read_worst             the (verb, resource) pair with the worst p99
//	progress                         instead of the first line when the pods
//	                                 were not all Running in time (then it
//	                                 exits 1 after printing the rest)
//
// Latencies come from the apiserver's own histogram
// apiserver_request_duration_seconds, scraped before and after the window
// (every client's calls: controllers, scheduler, KWOK, this program's light
// read load), with linear interpolation inside a bucket as PromQL's
// histogram_quantile does.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	var o options
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "admin kubeconfig")
	flag.IntVar(&o.nodes, "nodes", 100, "simulated nodes to create")
	flag.IntVar(&o.deployments, "deployments", 30, "Deployments to create")
	flag.IntVar(&o.replicas, "replicas", 100, "replicas of each Deployment")
	flag.IntVar(&o.readers, "readers", 2, "clients reading (GET a pod, LIST one Deployment's pods) 10 times a second each during the run")
	flag.StringVar(&o.namespace, "namespace", "scale", "namespace of the Deployments (created if missing)")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up when the pods are not all Running by then")
	flag.StringVar(&o.profileDir, "profile-dir", "", "save the server's CPU profile of the first 60 s of the run (cpu.pprof) and its heap when all pods are Running (heap.pprof) here")
	flag.DurationVar(&o.churn.duration, "churn", 0, "after all pods are Running, go on this long creating and deleting objects, then delete everything (see churnOptions)")
	flag.DurationVar(&o.churn.settle, "settle", 20*time.Minute, "with -churn: how long to keep reporting after everything is deleted")
	flag.DurationVar(&o.churn.every, "report-every", 10*time.Minute, "with -churn: how often to report sizes")
	flag.StringVar(&o.churn.dbGlobs, "db", "", "with -churn: the database's files, comma-separated globs")
	flag.IntVar(&o.churn.serverPID, "server-pid", 0, "with -churn: the server's pid, for its memory")
	flag.StringVar(&o.churn.report, "churn-report", "", "with -churn: the file the report table goes to")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "scalegen:", err)
		os.Exit(1)
	}
}

type options struct {
	kubeconfig                   string
	nodes, deployments, replicas int
	readers                      int
	namespace                    string
	timeout                      time.Duration
	profileDir                   string
	churn                        churnOptions
}

func run(o options) error {
	rc, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return err
	}
	rc.QPS, rc.Burst = -1, 0 // no client-side throttling: measure the server
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()

	if err := createNodes(ctx, cs, o.nodes); err != nil {
		return err
	}
	if err := waitNodesReady(ctx, cs, o.nodes); err != nil {
		return err
	}
	if err := ensureNamespace(ctx, cs, o.namespace); err != nil {
		return err
	}
	scrape, err := newScraper(rc)
	if err != nil {
		return err
	}
	before, err := scrape(ctx)
	if err != nil {
		return err
	}
	watch, err := watchPods(ctx, cs, o.namespace)
	if err != nil {
		return err
	}
	var prof *profiler
	cpuDone := make(chan error, 1)
	if o.profileDir != "" {
		if prof, err = newProfiler(rc, o.profileDir); err != nil {
			return err
		}
		go func() { cpuDone <- prof.save(ctx, "profile?seconds=60", "cpu.pprof") }()
	}
	stopReaders := startReaders(ctx, cs, o.namespace, o.readers, o.deployments)
	t0 := time.Now()
	if err := createDeployments(ctx, cs, o.namespace, o.deployments, o.replicas); err != nil {
		return err
	}
	marks, waitErr := watch.until(ctx, o.deployments*o.replicas, t0)
	stopReaders()
	// The window's latencies and the heap are reported for a run that did
	// not finish too: ctx may have expired, so they get their own minute.
	fctx, fcancel := context.WithTimeout(context.Background(), time.Minute)
	defer fcancel()
	after, err := scrape(fctx)
	if err != nil {
		return errors.Join(waitErr, err)
	}
	window := after.sub(before)
	if prof != nil {
		if err := prof.save(fctx, "heap", "heap.pprof"); err != nil {
			return errors.Join(waitErr, err)
		}
		if err := <-cpuDone; err != nil {
			return errors.Join(waitErr, err)
		}
	}
	if waitErr != nil {
		fmt.Printf("progress='%s'\n", strings.TrimSuffix(waitErr.Error(), ": "+context.DeadlineExceeded.Error()))
	} else {
		fmt.Printf("created_s=%.1f scheduled_s=%.1f running_s=%.1f\n", marks.created.Seconds(), marks.scheduled.Seconds(), marks.running.Seconds())
	}
	for _, c := range []struct {
		name  string
		verbs map[string]bool
	}{{"mut", mutatingVerbs}, {"read", readVerbs}} {
		h, worst := window.merge(c.verbs), window.worst(c.verbs, 50)
		fmt.Printf("%s_n=%d %s_p50_ms=%.0f %s_p99_ms=%.0f %s_worst='%s'\n",
			c.name, h.count, c.name, 1000*h.quantile(0.50), c.name, 1000*h.quantile(0.99), c.name, worst)
	}
	if waitErr != nil || o.churn.duration == 0 {
		return waitErr
	}
	return churn(cs, o.namespace, o.churn)
}
