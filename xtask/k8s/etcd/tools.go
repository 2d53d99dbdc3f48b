//go:build tools

// The command `cargo xtask k8s` builds; this file only keeps it in the
// module graph.
package tools

import _ "go.etcd.io/etcd/server/v3"
