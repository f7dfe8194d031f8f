#!/usr/bin/env bash
# Set up rectrain: a virtual environment in ./venv with the pinned dependencies
# (requirements.txt) and rectrain itself (editable). Idempotent: a second run only
# installs what changed. Linux and macOS; on Windows use setup.bat.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
venv="$here/venv"

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.12 python3.11 python3.10 python3.9 python3; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' 2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    return 1
}

if [ ! -x "$venv/bin/python" ]; then
    py="$(find_python)" || die "no Python >= 3.9 found. Fix: install python3 (3.9 to 3.12) and python3-venv, or set PYTHON=/path/to/python3."
    say "creating $venv with $("$py" --version 2>&1)"
    "$py" -m venv "$venv" || die "could not create the virtual environment. Fix: install the venv module (Debian/Ubuntu: apt-get install python3-venv) and rerun."
fi

# Bytecode for rectrain's own modules, kept current on every run: an editable install compiles
# nothing, and where PYTHONDONTWRITEBYTECODE is set Python would compile them at every command
# (about 0.05 s of each command's start).
compile_sources() {
    "$venv/bin/python" -m compileall -q src/rectrain >/dev/null 2>&1 \
        || say "warning: could not precompile src/rectrain (commands start a little slower); continuing"
}

# Reinstall only when the dependency files changed since the last successful run.
stamp="$venv/.rectrain-setup-stamp"
want="$(cat requirements.txt pyproject.toml | cksum)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$venv/bin/python" -c 'import rectrain' 2>/dev/null; then
    compile_sources
    say "already set up ($venv); nothing to do"
    exit 0
fi

say "installing pinned dependencies (requirements.txt); the first run downloads over 1 GB (2.9 GB installed)"
"$venv/bin/python" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || say "warning: could not upgrade pip; continuing"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt \
    || die "installing requirements.txt failed (see pip's message above). Fix: check the network / package index and rerun ./setup.sh."
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e . \
    || die "installing rectrain failed. Fix: rerun ./setup.sh; if it persists, report pip's message."
"$venv/bin/rectrain" --version >/dev/null || die "rectrain does not start after install. Fix: remove ./venv and rerun ./setup.sh."
compile_sources
echo "$want" > "$stamp"
say "done. Try: ./venv/bin/rectrain doctor --device cpu   (or: source venv/bin/activate)"
