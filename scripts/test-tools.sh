#!/usr/bin/env bash
# Installs the tools the test suite runs besides cargo into .penstock/tools/ (gitignored):
#   schemathesis     the OpenAPI conformance run of the api role (tests/e2e/api_conformance.rs);
#                    its virtualenv also runs scripts/check-docker.py (PyYAML, jsonschema_rs)
#   chromium         Debian's Chromium, for the dashboard test (tests/e2e/dashboard.rs)
#   playwright-core  drives that Chromium from Node.js (tests/browser/dashboard.mjs); it never
#                    downloads a browser of its own
# Idempotent and quick when every tool is already at its pinned version; runs without a
# terminal (CI). Prints one line saying what it did. One function per tool: add a tool by
# writing its install_<tool> function (with its pinned version beside it) and calling it
# at the bottom. PENSTOCK_PYTHON names another Python (3.11+) for the virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS=.penstock/tools
did=() # what each tool's function did, for the one line at the end

# schemathesis, pinned, in its own virtualenv: .penstock/tools/venv/bin/schemathesis.
SCHEMATHESIS_VERSION=4.32.5
# scripts/check-docker.py imports these from the same virtualenv. schemathesis depends on
# both; they are pinned here too so that a schemathesis upgrade cannot change them silently.
CHECK_DOCKER_PINS=(pyyaml==6.0.4 jsonschema_rs==0.60.3)
install_schemathesis() {
    local python="${PENSTOCK_PYTHON:-python3}"
    local venv="$TOOLS/venv"
    # The installed version is the name of its dist-info folder: no Python start-up needed.
    local pin installed=1
    for pin in "schemathesis==$SCHEMATHESIS_VERSION" "${CHECK_DOCKER_PINS[@]}"; do
        compgen -G "$venv/lib/python*/site-packages/${pin/==/-}.dist-info" >/dev/null || installed=0
    done
    if [[ -x "$venv/bin/schemathesis" && $installed == 1 ]]; then
        did+=("schemathesis $SCHEMATHESIS_VERSION already installed")
        return
    fi
    mkdir -p "$TOOLS"
    # --clear: a half-finished or older install (or one made by another Python) starts over.
    "$python" -m venv --clear "$venv"
    PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
        "$venv/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION" "${CHECK_DOCKER_PINS[@]}"
    "$venv/bin/schemathesis" --version >/dev/null
    did+=("schemathesis $SCHEMATHESIS_VERSION installed in $venv")
}

# Debian's Chromium (/usr/bin/chromium), from the machine's package registry.
install_chromium() {
    if [[ -x /usr/bin/chromium ]]; then
        did+=("chromium already installed")
        return
    fi
    local sudo=()
    if [[ $(id -u) != 0 ]]; then
        sudo -n true 2>/dev/null || {
            echo "test tools: Chromium is missing and installing it needs root: run 'sudo apt-get install chromium'" >&2
            exit 1
        }
        sudo=(sudo -n)
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Stale package lists are the usual reason an install fails on a fresh machine.
    "${sudo[@]}" apt-get install -y -qq chromium >/dev/null 2>&1 ||
        { "${sudo[@]}" apt-get update -qq >/dev/null && "${sudo[@]}" apt-get install -y -qq chromium >/dev/null; }
    /usr/bin/chromium --version >/dev/null
    did+=("chromium installed")
}

# playwright-core, pinned, under .penstock/tools/node (node_modules/playwright-core).
PLAYWRIGHT_VERSION=1.64.1
install_playwright() {
    local dir="$TOOLS/node"
    local installed="$dir/node_modules/playwright-core/package.json"
    if [[ -f $installed ]] && grep -q "\"version\": \"$PLAYWRIGHT_VERSION\"" "$installed"; then
        did+=("playwright-core $PLAYWRIGHT_VERSION already installed")
        return
    fi
    mkdir -p "$dir"
    [[ -f $dir/package.json ]] || echo '{"private": true}' >"$dir/package.json"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$dir" --no-audit --no-fund --silent \
        --save-exact "playwright-core@$PLAYWRIGHT_VERSION" >/dev/null
    did+=("playwright-core $PLAYWRIGHT_VERSION installed in $dir")
}

install_schemathesis
install_chromium
install_playwright

summary=$(printf '%s; ' "${did[@]}")
echo "test tools: ${summary%; }"
