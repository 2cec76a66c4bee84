#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need and is missing (Debian
# packages, when run as root), then checks formatting and lints, then runs every test.
#
# Storage tests run on SQLite and on PostgreSQL. PostgreSQL comes from TEST_DATABASE_URL,
# default postgres://postgres@127.0.0.1:5432/test; set TEST_DATABASE_URL= (empty) to run the
# SQLite variants only. When it is set but unreachable, the suite fails.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '== %s\n' "$*"; }

# --- tools the tests drive -------------------------------------------------------------
missing=()
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
command -v sox >/dev/null 2>&1 || missing+=(sox)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v pg_isready >/dev/null 2>&1 || missing+=(postgresql-client)
# The softphone of the end-to-end tests (PJSIP's pjsua2, from PyPI) lives in a Python venv.
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
# The web console's browser tests: Debian's Chromium, driven by playwright-core under Node.js.
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# A Chinese font, so that the console's screenshots show text rather than empty boxes.
fc-list :lang=zh 2>/dev/null | grep -q . || missing+=(fonts-wqy-microhei)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    say "installing ${missing[*]} with sudo"
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "error: the tests need these Debian packages: ${missing[*]}" >&2
    echo "install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

# --- the browser driver (playwright-core from the npm registry, pinned by package-lock.json) -
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  say "npm ci (tests/browser)"
  npm ci --prefix tests/browser --no-audit --no-fund >/dev/null
fi

# --- the softphone (pjsua2-python from PyPI, pinned by tests/pjsua/requirements.txt) ---------
venv=tests/pjsua/.venv
if ! cmp -s tests/pjsua/requirements.txt "$venv/requirements.txt"; then
  say "python3 -m venv $venv (pjsua2-python)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/pjsua/requirements.txt
  cp tests/pjsua/requirements.txt "$venv/requirements.txt"
fi

# --- PostgreSQL for the storage tests ------------------------------------------------------
export TEST_DATABASE_URL="${TEST_DATABASE_URL-postgres://postgres@127.0.0.1:5432/test}"
if [ -n "$TEST_DATABASE_URL" ]; then
  if ! pg_isready -q -d "$TEST_DATABASE_URL" -t 10; then
    echo "error: TEST_DATABASE_URL=$TEST_DATABASE_URL is set but PostgreSQL does not answer" >&2
    echo "start PostgreSQL, or set TEST_DATABASE_URL= to run the SQLite variants only" >&2
    exit 1
  fi
  say "storage tests on SQLite and PostgreSQL ($TEST_DATABASE_URL)"
else
  unset TEST_DATABASE_URL
  say "storage tests on SQLite only (TEST_DATABASE_URL is empty)"
fi

# --- supply chain: licenses, banned crates, sources (cargo-deny, policy in deny.toml) -------
# The advisories check is not run: it fetches the RustSec database from GitHub, which CI
# cannot reach (docs/robustness.md). cargo-deny comes from crates.io, pinned.
CARGO_DENY_VERSION=0.20.2
if ! cargo deny --version 2>/dev/null | grep -q " $CARGO_DENY_VERSION"; then
  say "cargo install cargo-deny $CARGO_DENY_VERSION"
  cargo install --locked --quiet "cargo-deny@$CARGO_DENY_VERSION"
fi
say "cargo deny check bans licenses sources"
cargo deny --locked check --hide-inclusion-graph bans licenses sources

# --- format, lints, build, tests -----------------------------------------------------------
say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
say "cargo build (the binary the end-to-end tests drive)"
cargo build --workspace --bins --locked
say "cargo test"
cargo test --workspace --locked --no-fail-fast
