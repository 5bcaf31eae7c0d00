#!/usr/bin/env bash
# Alertmanager for the Alertmanager sink's tests, from Debian's package: prints its path.
# Debian's build reads its notification templates from /usr/share/prometheus/alertmanager/ (a
# path compiled in): when they are not there, the package's own template files are put there
# (nothing else of the package is installed, and no service is started).
set -euo pipefail
binary=$("$(dirname "$0")/debian-bin.sh" prometheus-alertmanager prometheus-alertmanager)
templates=/usr/share/prometheus/alertmanager
unpacked="$(dirname "$0")/../.tools/prometheus-alertmanager$templates"
if [ ! -f "$templates/default.tmpl" ] && [ -f "$unpacked/default.tmpl" ]; then
    if ! { mkdir -p "$templates" && cp "$unpacked"/*.tmpl "$templates"/; } 2>/dev/null; then
        echo "Alertmanager needs $templates/default.tmpl: run as root once, or install prometheus-alertmanager" >&2
        exit 1
    fi
fi
echo "$binary"
