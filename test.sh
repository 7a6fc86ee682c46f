#!/usr/bin/env bash
# Installs what the test suite needs when it is missing (Debian's Chromium, Node.js), then builds
# everything and runs every test: formatting, the .NET suite and the browser client's Node tests. Works on a fresh machine with only
# the .NET SDK and the package managers; run it as root or with sudo available.
set -uo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

status=0
.ci/install-deps || { echo "error: installing the test dependencies failed (see above); the tests that need them will fail"; status=1; }

echo "== formatting (dotnet format --verify-no-changes)"
dotnet restore Lifeline.slnx --verbosity quiet || status=1
if ! dotnet format Lifeline.slnx --verify-no-changes --no-restore; then
  echo "error: formatting differs; run 'dotnet format Lifeline.slnx' and commit the result"
  status=1
fi

echo "== .NET tests"
dotnet test Lifeline.slnx || status=1

echo "== browser client unit tests (Node's test runner)"
node --test src/lifeline-js/test/ || status=1
exit $status
