#!/usr/bin/env bash
# Install (Debian packages) and start a real PostgreSQL and a real S3-compatible server
# (OpenStack Swift with s3api) on loopback, then write the test settings to $SERVICES_ENV
# (default /tmp/openzoo-services.env) for `source`. Adapted from ../shared/recipes/services.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ENV_FILE=${SERVICES_ENV:-/tmp/openzoo-services.env}
export DEBIAN_FRONTEND=noninteractive
need=()
command -v swift-proxy-server >/dev/null || need+=(swift-proxy swift-account swift-container swift-object)
command -v memcached >/dev/null || need+=(memcached)
ls -d /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "install as root: apt-get install ${need[*]}" >&2; exit 1; fi
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
"$HERE/start-swift-s3.sh"
DATABASE_URL=$("$HERE/start-postgres.sh")
# The tests create and drop their own databases on this server.
SERVER_URL=${DATABASE_URL%/*}/postgres
cat > "$ENV_FILE" <<ENV
export ZOO_TEST_DATABASE_URL=$SERVER_URL
export ZOO_TEST_S3_ENDPOINT=http://127.0.0.1:${S3_PORT:-8080}
export AWS_ACCESS_KEY_ID=test:tester
export AWS_SECRET_ACCESS_KEY=testing
export AWS_DEFAULT_REGION=us-east-1
ENV
echo "services up; settings in $ENV_FILE"
