package secretsencrypt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/client-go/kubernetes"
)

// Status is what `kedge secrets-encrypt status` shows; it holds no key.
type Status struct {
	ConfigFile string `json:"configFile"`
	// Enabled: Secrets are written encrypted.
	Enabled bool `json:"enabled"`
	// WriteProvider is secretbox, or identity when encryption is off.
	WriteProvider string `json:"writeProvider"`
	// ActiveKey is the key new writes use ("" when off).
	ActiveKey string `json:"activeKey,omitempty"`
	// Keys are every key in the config, the write key first.
	Keys []string `json:"keys"`
	// RotationUnfinished: more than one key (rotate-keys stopped midway;
	// running it again finishes it).
	RotationUnfinished bool `json:"rotationUnfinished"`
	// ConfigHash is the file's hash, as the apiserver reports it.
	ConfigHash string `json:"configHash,omitempty"`
	// APIServer is what the running apiserver applied.
	APIServer APIServerStatus `json:"apiserver"`
}

// APIServerStatus says whether the apiserver runs the file's content.
type APIServerStatus struct {
	// Reachable is false when the API could not be asked (Error says why).
	Reachable bool `json:"reachable"`
	// LoadedHash is the hash of the config the apiserver applied, "" if none.
	LoadedHash string `json:"loadedHash,omitempty"`
	// LoadedCurrent: LoadedHash is the file's hash.
	LoadedCurrent bool   `json:"loadedCurrent"`
	Error         string `json:"error,omitempty"`
}

// Read returns the status of the config at path and, with a client, of the
// apiserver (nil client: not asked). A missing file is encryption never
// turned on, not an error; a damaged one is an error.
func Read(ctx context.Context, path string, client kubernetes.Interface) (Status, error) {
	st := Status{ConfigFile: path, WriteProvider: "identity", Keys: []string{}}
	c, data, err := Load(ctx, path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return st, err
	default:
		st.Enabled, st.Keys, st.ConfigHash = c.Enabled(), c.KeyNames(), Hash(data)
		if st.Enabled {
			st.WriteProvider, st.ActiveKey = Provider, c.Keys[0].Name
			st.RotationUnfinished = len(c.Keys) > 1
		}
	}
	if client == nil {
		st.APIServer.Error = "not asked"
		return st, nil
	}
	loaded, err := LoadedHash(ctx, client)
	if err != nil {
		st.APIServer.Error = err.Error()
		return st, nil
	}
	st.APIServer = APIServerStatus{Reachable: true, LoadedHash: loaded, LoadedCurrent: loaded == st.ConfigHash}
	return st, nil
}

// WriteText writes s for people.
func (s Status) WriteText(w io.Writer) error {
	var b strings.Builder
	state := "disabled (Secrets are stored in plain text)"
	switch {
	case s.Enabled:
		state = "enabled (" + s.WriteProvider + ")"
	case len(s.Keys) > 0:
		state = "disabled; the keys are kept to read Secrets written while it was on"
	}
	fmt.Fprintf(&b, "Secrets encryption:  %s\n", state)
	fmt.Fprintf(&b, "Config file:         %s\n", s.ConfigFile)
	if s.ActiveKey != "" {
		fmt.Fprintf(&b, "Active key:          %s\n", s.ActiveKey)
	}
	if len(s.Keys) > 0 {
		fmt.Fprintf(&b, "Keys:                %s\n", strings.Join(s.Keys, ", "))
	}
	if s.RotationUnfinished {
		fmt.Fprintf(&b, "Rotation:            unfinished; run kedge secrets-encrypt rotate-keys to finish it\n")
	}
	api := ""
	switch {
	case !s.APIServer.Reachable:
		api = "unknown (" + s.APIServer.Error + ")"
	case s.APIServer.LoadedCurrent && s.ConfigHash != "":
		api = "runs the current config (" + s.ConfigHash + ")"
	case s.APIServer.LoadedCurrent:
		api = "runs without an encryption config"
	case s.APIServer.LoadedHash == "":
		api = "runs without an encryption config; restart the server to apply the file"
	default:
		api = "runs another config (" + s.APIServer.LoadedHash + "); it reloads the file within seconds"
	}
	fmt.Fprintf(&b, "API server:          %s\n", api)
	_, err := io.WriteString(w, b.String())
	return err
}
