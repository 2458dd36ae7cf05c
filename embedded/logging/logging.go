// Package logging builds kedge's slog logger and routes the logs of embedded
// engines (klog from Kubernetes, logrus from kine and containerd) into it.
package logging

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"strconv"

	"github.com/sirupsen/logrus"
	"k8s.io/klog/v2"
)

// Setup returns the process logger writing text to w, and makes klog and
// logrus write through it. Call it once, from main, before any component
// starts. With debug, kedge logs at debug level and klog at verbosity 2.
func Setup(w io.Writer, debug bool) *slog.Logger {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	verbosity := 0
	if debug {
		verbosity = 2
	}
	_ = fs.Set("v", strconv.Itoa(verbosity))
	klog.SetSlogLogger(log.With("component", "k8s"))

	logrus.SetOutput(io.Discard)
	logrus.SetLevel(logrus.InfoLevel)
	if debug {
		logrus.SetLevel(logrus.DebugLevel)
	}
	logrus.AddHook(&logrusHook{log: log})
	return log
}

// logrusHook forwards logrus entries to slog.
type logrusHook struct{ log *slog.Logger }

func (h *logrusHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h *logrusHook) Fire(e *logrus.Entry) error {
	level := slog.LevelInfo
	switch {
	case e.Level <= logrus.ErrorLevel:
		level = slog.LevelError
	case e.Level == logrus.WarnLevel:
		level = slog.LevelWarn
	case e.Level >= logrus.DebugLevel:
		level = slog.LevelDebug
	}
	attrs := make([]slog.Attr, 0, len(e.Data))
	for k, v := range e.Data {
		attrs = append(attrs, slog.Any(k, v))
	}
	h.log.LogAttrs(context.Background(), level, e.Message, attrs...)
	return nil
}
