#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: system pieces, a virtualenv, pinned packages.
# Safe to run again: it only does what is missing or out of date.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[bootstrap] %s\033[0m\n' "$*" >&2; exit 1; }

# --- Python 3.11 ---------------------------------------------------------------
PYTHON=""
for candidate in python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    PYTHON=$(command -v "$candidate"); break
  fi
done
[ -n "$PYTHON" ] || die "Python 3.11 is required (TensorFlow 2.21 and the pinned set are resolved for it). Install it, e.g. apt-get install -y python3.11 python3.11-venv"

# --- Debian packages -----------------------------------------------------------
# libusb-1.0-0: tflite-support's metadata library links against it.
# default-jre-headless: the Firestore and Pub/Sub emulators are Java programs.
# chromium: the browser app's test drives it headless through playwright (never `playwright install`).
missing=()
dpkg -s libusb-1.0-0 >/dev/null 2>&1 || missing+=(libusb-1.0-0)
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    die "missing Debian packages: ${missing[*]}. Install them with: sudo apt-get install -y ${missing[*]}"
  fi
fi

# --- Google Cloud CLI emulators (not in Debian's archive) ----------------------
sdk_root="${EDGELOOP_GCLOUD_SDK_ROOT:-${CLOUDSDK_ROOT_DIR:-}}"
if [ -z "$sdk_root" ] && command -v gcloud >/dev/null 2>&1; then
  sdk_root=$(dirname "$(dirname "$(readlink -f "$(command -v gcloud)")")")
fi
if [ -z "$sdk_root" ] \
  || [ ! -f "$sdk_root/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar" ] \
  || [ ! -x "$sdk_root/platform/pubsub-emulator/bin/cloud-pubsub-emulator" ]; then
  die "the Google Cloud CLI Firestore and Pub/Sub emulators are missing. Install them with:
  apt-get install -y google-cloud-cli google-cloud-cli-firestore-emulator google-cloud-cli-pubsub-emulator
(from Google's apt repository: https://cloud.google.com/sdk/docs/install#deb), or with an existing SDK:
  gcloud components install cloud-firestore-emulator pubsub-emulator
Set EDGELOOP_GCLOUD_SDK_ROOT if the SDK is installed somewhere else."
fi

# --- Node packages (package-lock.json) -------------------------------------------
# firebase-tools: the Firebase Auth emulator of the local stack; firebase: the Web SDK test.
# npm ci waits mostly on the network, so it runs in the background while pip installs.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
  || die "Node.js 20+ and npm are missing (the Firebase Auth emulator is firebase-tools). Install them with: sudo apt-get install -y nodejs npm (Debian 12+/Ubuntu 24.04+; elsewhere Node 20 from https://nodejs.org)"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 20 ? 1 : 0)' \
  || die "Node.js 20+ is needed, found $(node --version). Install Node 20 from https://nodejs.org"
node_stamp=node_modules/.edgeloop-installed
node_want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
node_pid=""
node_log=""
if [ "$(cat "$node_stamp" 2>/dev/null)" != "$node_want" ] || [ ! -f node_modules/firebase-tools/lib/bin/firebase.js ]; then
  say "installing pinned Node packages into node_modules in the background (npm ci; first run: a few minutes)"
  node_log=$(mktemp)
  ( npm ci --no-audit --no-fund --loglevel=error && echo "$node_want" > "$node_stamp" ) >"$node_log" 2>&1 &
  node_pid=$!
else
  say "Node packages up to date"
fi

# --- virtualenv and packages ---------------------------------------------------
VENV=.venv
[ -x "$VENV/bin/python" ] || { say "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
stamp="$VENV/.edgeloop-installed"
want=$(cat requirements.txt requirements-nodeps.txt requirements-dev.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing pinned Python packages into $VENV (first run: a few minutes)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -r requirements.txt -r requirements-dev.txt
  # tflite-support pins protobuf<4, which TensorFlow 2.21 contradicts; its metadata
  # writers work with protobuf 7, so it goes in without its declared dependencies.
  "$VENV/bin/python" -m pip install -q --no-deps -r requirements-nodeps.txt
  "$VENV/bin/python" -m pip install -q --no-deps -e .
  echo "$want" > "$stamp"
else
  say "Python packages up to date"
fi
# --- BEGIN checkov (infra tests) -----------------------------------------------
# tests/infra/test_terraform.py runs checkov over infra/terraform. Its dependency
# tree is large and would fight the pinned set, so it gets its own venv.
CHECKOV_VERSION=3.3.30
CHECKOV_VENV=.venv-checkov
[ -x "$CHECKOV_VENV/bin/python" ] || { say "creating $CHECKOV_VENV"; "$PYTHON" -m venv "$CHECKOV_VENV"; }
# Keep the tool venv out of git whatever .gitignore says.
[ -f "$CHECKOV_VENV/.gitignore" ] || echo '*' > "$CHECKOV_VENV/.gitignore"
checkov_stamp="$CHECKOV_VENV/.edgeloop-installed"
if [ "$(cat "$checkov_stamp" 2>/dev/null)" != "checkov==$CHECKOV_VERSION" ]; then
  say "installing checkov $CHECKOV_VERSION into $CHECKOV_VENV"
  "$CHECKOV_VENV/bin/python" -m pip install -q --upgrade pip
  "$CHECKOV_VENV/bin/python" -m pip install -q "checkov==$CHECKOV_VERSION"
  echo "checkov==$CHECKOV_VERSION" > "$checkov_stamp"
else
  say "checkov up to date"
fi
# --- END checkov -------------------------------------------------------------------
# --- wait for the Node packages ------------------------------------------------
if [ -n "$node_pid" ]; then
  if wait "$node_pid"; then
    say "Node packages installed"
  else
    cat "$node_log" >&2
    die "npm ci failed (output above); run it again with: npm ci"
  fi
  rm -f "$node_log"
fi
say "ready"
