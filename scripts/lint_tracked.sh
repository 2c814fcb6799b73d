#!/usr/bin/env bash
# Lint exactly what git tracks (plus staged changes): what CI will see, not other people's work in progress.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files -c '*.py' | grep -v '^protos/b2x/')
.venv/bin/ruff check $files
.venv/bin/ruff format --check $files
.venv/bin/mypy $(echo "$files" | grep -E '^(services|gateway|b2c|bench|scripts)/')
