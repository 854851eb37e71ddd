#!/usr/bin/env bash
# Installs the tools the test suite runs besides cargo into .penstock/tools/ (gitignored):
#   schemathesis  the OpenAPI conformance run of the api role (tests/e2e/api_conformance.rs)
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
install_schemathesis() {
    local python="${PENSTOCK_PYTHON:-python3}"
    local venv="$TOOLS/venv"
    # The installed version is the name of its dist-info folder: no Python start-up needed.
    if [[ -x "$venv/bin/schemathesis" ]] &&
        compgen -G "$venv/lib/python*/site-packages/schemathesis-$SCHEMATHESIS_VERSION.dist-info" >/dev/null; then
        did+=("schemathesis $SCHEMATHESIS_VERSION already installed")
        return
    fi
    mkdir -p "$TOOLS"
    # --clear: a half-finished or older install (or one made by another Python) starts over.
    "$python" -m venv --clear "$venv"
    PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
        "$venv/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
    "$venv/bin/schemathesis" --version >/dev/null
    did+=("schemathesis $SCHEMATHESIS_VERSION installed in $venv")
}

install_schemathesis

summary=$(printf '%s; ' "${did[@]}")
echo "test tools: ${summary%; }"
