#!/usr/bin/env bash
# Make a Prometheus server binary available for the metrics tests, from Debian's package.
# Prints its path. Uses `prometheus` on PATH when there is one; otherwise unpacks the
# Debian package into .tools/ (no service is installed or started: tests run their own
# server on 127.0.0.1 and stop it).
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v prometheus >/dev/null 2>&1; then
    command -v prometheus
    exit 0
fi
dest=.tools/prometheus
if [ -x "$dest/usr/bin/prometheus" ]; then
    echo "$PWD/$dest/usr/bin/prometheus"
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! (cd "$work" && apt-get download prometheus >/dev/null 2>&1); then
    apt-get update >/dev/null 2>&1 || true
    (cd "$work" && apt-get download prometheus >/dev/null 2>&1) || {
        echo "could not download Debian's prometheus package (apt-get download prometheus)" >&2
        exit 1
    }
fi
mkdir -p "$dest"
dpkg-deb -x "$work"/prometheus_*.deb "$dest"
echo "$PWD/$dest/usr/bin/prometheus"
