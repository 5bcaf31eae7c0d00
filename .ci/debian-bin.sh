#!/usr/bin/env bash
# Make a server binary from a Debian package available to the tests: debian-bin.sh PACKAGE BINARY
# prints the binary's path. Uses BINARY on PATH when there is one; otherwise unpacks the Debian
# package into .tools/PACKAGE (no service is installed or started: tests run their own server
# on 127.0.0.1 and stop it).
set -euo pipefail
cd "$(dirname "$0")/.."
package=$1
binary=$2
if command -v "$binary" >/dev/null 2>&1; then
    command -v "$binary"
    exit 0
fi
dest=.tools/$package
if [ -x "$dest/usr/bin/$binary" ]; then
    echo "$PWD/$dest/usr/bin/$binary"
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! (cd "$work" && apt-get download "$package" >/dev/null 2>&1); then
    apt-get update >/dev/null 2>&1 || true
    (cd "$work" && apt-get download "$package" >/dev/null 2>&1) || {
        echo "could not download Debian's $package package (apt-get download $package)" >&2
        exit 1
    }
fi
mkdir -p "$dest"
dpkg-deb -x "$work"/"${package}"_*.deb "$dest"
echo "$PWD/$dest/usr/bin/$binary"
