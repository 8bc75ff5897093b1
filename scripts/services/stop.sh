#!/usr/bin/env bash
# Stop what start.sh started.
HERE=$(cd "$(dirname "$0")" && pwd)
"$HERE/stop-postgres.sh" >/dev/null 2>&1 || true
"$HERE/stop-pids.sh" "${SWIFT_HOME:-/tmp/swift-s3}/run"
