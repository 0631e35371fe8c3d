#!/usr/bin/env bash
# Set up MRI Style in .venv/ at the repository root: system libraries Qt needs (apt-get, as root,
# only where missing), then the package with its test and packaging tools (pytest, PyInstaller). Safe to run again: it only adds
# what is missing. Usage: bash bootstrap.sh   (then .venv/bin/mri-style)
set -euo pipefail
cd "$(dirname "$0")"

# Shared libraries that Qt's xcb and offscreen platforms load at run time.
QT_LIBS="libgl1 libegl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libfreetype6 libdbus-1-3 \
libglib2.0-0 libx11-xcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 \
libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1"

# Debian's mricron-data: the real whole-head Colin27 T1w (ch2.nii.gz) and its brain (ch2bet.nii.gz),
# the scoring grid of the seed slices and the whole-head figure of the default model.
DATA_PACKAGES="mricron-data"

missing=""
if command -v dpkg-query >/dev/null 2>&1; then
    for pkg in $QT_LIBS $DATA_PACKAGES; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
    done
    python3 -m venv --help >/dev/null 2>&1 && python3 -c "import ensurepip" 2>/dev/null || missing="$missing python3-venv"
fi
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "bootstrap: installing system packages:$missing"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    else
        echo "bootstrap: these system packages are missing; install them as root:" >&2
        echo "  apt-get install$missing" >&2
    fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
# torch==2.13.0 is pinned here (the CPU build); pyproject.toml keeps torch>=2.2 for GPU users.
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0 -e ".[test,build]"
echo "bootstrap: ready (.venv/bin/mri-style)"
