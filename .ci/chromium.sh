#!/usr/bin/env bash
# Debian's chromium for the console's browser test (driven by Playwright through its
# executable_path: Playwright's own browser download is never used). Prints the binary's path;
# installs the package with apt-get when it is missing (CI and developers' machines run as root).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    echo /usr/bin/chromium
    exit 0
fi
if ! apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; then
    apt-get update >/dev/null 2>&1 || true
    apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || {
        echo "could not install Debian's chromium package (apt-get install chromium)" >&2
        exit 1
    }
fi
echo /usr/bin/chromium
