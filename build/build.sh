#!/usr/bin/env bash
# Build the one-folder app: build/dist/mri-style/mri-style (plus everything it needs beside it).
# Usage: bash build/build.sh           (slimmed bundle, the one to ship)
#        MRI_STYLE_PLAIN=1 bash build/build.sh   (no slimming, only to measure what it saves)
# Uses the project's .venv (bash bootstrap.sh makes it); PyInstaller comes from the `build` extra.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${MRI_STYLE_PYTHON:-.venv/bin/python}  # another environment for a GPU build (docs/packaging.md)
if ! "$PYTHON" -c "import PyInstaller" 2>/dev/null; then
    echo "error: PyInstaller is not installed in .venv; run: .venv/bin/python -m pip install -e '.[build]'" >&2
    exit 2
fi
# PySide6 Addons would add hundreds of MB of Qt modules the app never uses.
if "$PYTHON" -c "import importlib.metadata as m; m.distribution('PySide6-Addons')" 2>/dev/null; then
    echo "error: PySide6-Addons is installed in .venv; the bundle must be built with PySide6-Essentials only" >&2
    exit 2
fi
# The shipped bundle is the CPU one; a CUDA torch would add its CUDA libraries (GBs).
# A GPU build is made on purpose: docs/packaging.md says how.
torch_cuda=$("$PYTHON" -c "import torch; print(torch.version.cuda or '')")
if [ -n "$torch_cuda" ] && [ "${MRI_STYLE_GPU_BUILD:-0}" != 1 ]; then
    echo "error: .venv has a CUDA build of torch (CUDA $torch_cuda); the CPU bundle needs the CPU build" >&2
    echo "       (pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu)," >&2
    echo "       or set MRI_STYLE_GPU_BUILD=1 to build a GPU bundle on purpose" >&2
    exit 2
fi
if [ ! -f resources/models/t1_t2_default.safetensors ]; then
    echo "warning: resources/models/t1_t2_default.safetensors is missing; the bundle will have no default model" >&2
fi
start=$(date +%s)
QT_QPA_PLATFORM=offscreen "$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath build/dist --workpath build/work build/mri_style.spec
seconds=$(( $(date +%s) - start ))
bundle=build/dist/mri-style
echo "built:  $bundle/mri-style"
echo "size:   $(du -sm "$bundle" | cut -f1) MB  ($(find "$bundle" -type f | wc -l) files)"
echo "time:   ${seconds} s"
