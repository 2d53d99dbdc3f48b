//go:build tools

// The command `cargo xtask alertmanager` builds; this file only keeps it
// in the module graph.
package tools

import _ "github.com/prometheus/alertmanager/cmd/alertmanager"
