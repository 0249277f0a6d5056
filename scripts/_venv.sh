# Shared by scripts/run and scripts/test: a virtualenv with the pinned packages.
# Usage: . scripts/_venv.sh REQUIREMENTS_FILE
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> Creating the virtualenv in .venv"
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(basename "$1")"
if [ ! -f "$stamp" ] || [ "$1" -nt "$stamp" ] || [ requirements.txt -nt "$stamp" ]; then
  echo "==> Installing $1"
  .venv/bin/pip install --quiet --disable-pip-version-check -r "$1"
  touch "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
