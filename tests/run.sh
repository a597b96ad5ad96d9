#!/usr/bin/env bash
# The whole test suite, set-up included: Debian packages, PostgreSQL and Redis, a virtualenv, pytest.
# Usage: bash tests/run.sh [pytest args...]      (.ci/run calls exactly this)
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages: speech for greetings, Chromium for the browser tests, SIPp for real SIP calls.
missing=()
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
command -v sox >/dev/null || missing+=(sox)
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v sipp >/dev/null || missing+=(sip-tester)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null \
    || { as_root apt-get update -q >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; }
fi

# PostgreSQL (127.0.0.1:5432, trust auth) and Redis (127.0.0.1:6379): start them when they are down.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi

# The project in its own virtualenv.
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# Pinned to the versions the suite last passed with (tests/constraints.txt), so a release published on
# PyPI since then cannot turn a run red; CTI_UNPINNED=1 takes the newest allowed by pyproject.toml.
pins=(-c tests/constraints.txt)
[ "${CTI_UNPINNED:-}" = 1 ] && pins=()
.venv/bin/python -m pip install -q --disable-pip-version-check "${pins[@]}" -e '.[test]'

# A real Asterisk 22.10.1, built once from Debian's source package into ~/.cache/cti (tests/asterisk.sh).
# If it cannot be built, the tests that need it are reported as skipped with the reason, never silently.
if [ -z "${CTI_ASTERISK_BIN:-}" ]; then
  if bin=$(bash tests/asterisk.sh); then
    export CTI_ASTERISK_BIN="$bin"
  else
    export CTI_ASTERISK_UNAVAILABLE="tests/asterisk.sh could not build Asterisk (see its output above)"
    echo "WARNING: $CTI_ASTERISK_UNAVAILABLE; the real-Asterisk tests will be skipped" >&2
  fi
fi
echo "real Asterisk: ${CTI_ASTERISK_BIN:-none}"

exec .venv/bin/python -m pytest -q -rs -p no:cacheprovider "$@"
