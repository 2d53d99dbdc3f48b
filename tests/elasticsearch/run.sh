#!/bin/sh
# Runs a single-node Elasticsearch for mamori's tests in the foreground, as
# the unprivileged user mamori-es (Elasticsearch refuses to run as root):
#
#   run.sh HOME PORT [LAUNCHER ARGS...]
#
# HOME holds the node's data and, once it answers, its URL in HOME/url.
# Installed with the launcher by `cargo xtask es build`.
set -eu
dist=$(cd "$(dirname "$0")" && pwd)
home=$1
port=$2
shift 2
mkdir -p "$home"
chown mamori-es:mamori-es "$home"
export HOME="$home"
exec setpriv --reuid=mamori-es --regid=mamori-es --init-groups -- \
    java -Xms512m -Xmx512m -XX:+UseSerialGC -Djava.io.tmpdir="$home" \
    --module-path "$dist/lib" --add-modules ALL-MODULE-PATH \
    -cp "$dist/classes" dev.mamori.es.Launcher \
    --home "$home" --modules "$dist/modules" --port "$port" "$@"
