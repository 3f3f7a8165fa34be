#!/usr/bin/env bash
# deploy-demo.sh — a DEMO deploy program for the sanctum demo and tests. It deploys nothing.
#
# Usage: deploy-demo.sh <app> <environment> <version>
#   (arguments arrive as argv from sanctum's subprocess grant; there is no shell in between)
#
# It pretends to build and roll out <version>, printing a progress line per step for about
# $DEMO_DEPLOY_SECONDS seconds (default 12; 0 for no waiting, as tests set it), then records it
# by writing the version into "$DEMO_APPS_DIR/<app>.<environment>.version" (atomically: temp
# file, then mv), which is what demo/fake_services.py serves at GET /apps/<app>/<environment>/health.
#
# Simulated outcomes, chosen by the version string:
#   contains "fail" -> error on stderr, exit 3, nothing written
#   contains "hang" -> sleeps 3600 s (for testing timeouts), then exits 4, nothing written
# Invalid usage or arguments -> exit 2. Success -> exit 0.
#
# What it must not do: write anywhere but $DEMO_APPS_DIR, touch the network, or treat any
# argument as anything but inert data (arguments are validated before use).
set -euo pipefail
export LC_ALL=C  # so [a-z] in the patterns below means ASCII a..z only

die_usage() {
  echo "deploy-demo: $1" >&2
  exit 2
}

[[ $# -eq 3 ]] || die_usage "usage: deploy-demo.sh <app> <environment> <version>"
app=$1
environment=$2
version=$3

name_re='^[a-z][a-z0-9_-]*$'
version_re='^[A-Za-z0-9][A-Za-z0-9._+-]*$'
[[ $app =~ $name_re ]] || die_usage "invalid app name (must match $name_re)"
[[ $environment =~ $name_re ]] || die_usage "invalid environment name (must match $name_re)"
[[ $version =~ $version_re ]] || die_usage "invalid version (must match $version_re)"

apps_dir=${DEMO_APPS_DIR:-}
[[ -n $apps_dir ]] || die_usage "DEMO_APPS_DIR is not set"
[[ -d $apps_dir ]] || die_usage "DEMO_APPS_DIR is not a directory"
seconds=${DEMO_DEPLOY_SECONDS:-12}
[[ $seconds =~ ^[0-9]{1,3}$ ]] || die_usage "DEMO_DEPLOY_SECONDS must be a whole number of seconds (0-999)"

# Each phase's steps share its part of the duration: 8 build steps over 60 %, 4 rollout
# steps over 40 %, so 12 s makes a 0.9 s build step and a 1.2 s rollout step.
step_pause() { # <share in percent> <steps>
  local ms=$((seconds * 10 * $1 / $2))
  sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
}

echo "[demo] deploying $app $version to $environment"
for step in "resolving dependencies" "compiling" "running unit tests" "bundling assets" \
  "building image $app:$version" "scanning image" "pushing image" "signing image"; do
  echo "[demo] build: $step..."
  step_pause 60 8
done

if [[ $version == *fail* ]]; then
  echo "[demo] error: build of $app $version failed (simulated failure: version contains 'fail')" >&2
  exit 3
fi

echo "[demo] rolling out to $environment..."
for replica in 1 2 3; do
  echo "[demo] rollout: replica $replica/3 updated to $version"
  step_pause 40 4
done
echo "[demo] rollout: waiting for replicas to report ready..."
step_pause 40 4

if [[ $version == *hang* ]]; then
  echo "[demo] rollout is hanging (simulated: version contains 'hang')" >&2
  sleep 3600
  echo "[demo] error: gave up after hanging" >&2
  exit 4
fi

target="$apps_dir/$app.$environment.version"
tmp=$(mktemp "$apps_dir/.$app.$environment.version.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
printf '%s\n' "$version" >"$tmp"
chmod 0644 -- "$tmp"
mv -f -- "$tmp" "$target"
trap - EXIT

echo "deployed $app $version to $environment"
