#!/usr/bin/env bash
# The one script for working on runtrack.
#   ./dev.sh serve [runtrack serve options]   install what is needed, then serve on the SQLite default
#   ./dev.sh test  [pytest options]           install what is needed, then run lint, types and every test
#   ./dev.sh install                          only set up .venv
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
VENV=.venv

install() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
  fi
  local stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e ".[dev]"
    rm -f "$VENV"/.installed-*
    touch "$stamp"
  fi
}

cmd=${1:-}
shift || true
case "$cmd" in
  install) install ;;
  serve) install; exec "$VENV/bin/runtrack" serve "$@" ;;
  test)
    install
    echo "== ruff"; "$VENV/bin/ruff" check src tests bench
    echo "== mypy"; "$VENV/bin/mypy"
    echo "== pytest"; exec "$VENV/bin/pytest" "$@"
    ;;
  *) echo "usage: ./dev.sh serve|test|install" >&2; exit 2 ;;
esac
