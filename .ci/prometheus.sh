#!/usr/bin/env bash
# Prometheus (and promtool beside it) for the metrics tests, from Debian's package: prints its path.
exec "$(dirname "$0")/debian-bin.sh" prometheus prometheus
