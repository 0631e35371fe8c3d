#!/usr/bin/env bash
# Install MRI Style into the current user's application menu (no root needed):
#   ~/.local/share/applications/mri-style.desktop  -> runs the built bundle with the files opened
#   ~/.local/share/icons/hicolor/{256x256,64x64}/apps/mri-style.png
#   ~/.local/share/mime/packages/mri-style.xml     -> *.nii / *.nii.gz as application/x-nifti
# Usage: bash build/install_desktop.sh [BUNDLE_DIR]   (default build/dist/mri-style, made by build/build.sh)
#        bash build/install_desktop.sh --uninstall
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${XDG_DATA_HOME:-$HOME/.local/share}"
APPS="$DATA/applications"
ICONS="$DATA/icons/hicolor"
MIME="$DATA/mime"

refresh() {  # the MIME database must be rebuilt for *.nii to be known; the rest is a cache
    command -v update-desktop-database >/dev/null && update-desktop-database -q "$APPS" || true
    command -v update-mime-database >/dev/null && update-mime-database "$MIME" || true
    # No gtk-update-icon-cache: a user hicolor cache without index.theme would go stale
    # and hide icons other apps install later; desktops find user icons without it.
}

if [ "${1:-}" = "--uninstall" ]; then
    rm -f "$APPS/mri-style.desktop" "$ICONS/256x256/apps/mri-style.png" \
          "$ICONS/64x64/apps/mri-style.png" "$MIME/packages/mri-style.xml"
    refresh
    echo "removed MRI Style from $DATA"
    exit 0
fi

BUNDLE="$(cd "${1:-build/dist/mri-style}" 2>/dev/null && pwd || true)"
EXE="$BUNDLE/mri-style"
if [ -z "$BUNDLE" ] || [ ! -x "$EXE" ]; then
    echo "error: no built app at ${1:-build/dist/mri-style}; build it first with: bash build/build.sh" >&2
    exit 2
fi

mkdir -p "$APPS" "$ICONS/256x256/apps" "$ICONS/64x64/apps" "$MIME/packages"
install -m 644 resources/icons/mri-style-256.png "$ICONS/256x256/apps/mri-style.png"
install -m 644 resources/icons/mri-style-64.png "$ICONS/64x64/apps/mri-style.png"
install -m 644 resources/mri-style-mime.xml "$MIME/packages/mri-style.xml"
# The entry points at this bundle by absolute path (quoted: the path may contain spaces).
sed -e "s|^Exec=mri-style |Exec=\"$EXE\" |" -e "s|^TryExec=mri-style$|TryExec=$EXE|" \
    resources/mri-style.desktop > "$APPS/mri-style.desktop.tmp"
chmod 644 "$APPS/mri-style.desktop.tmp"
mv "$APPS/mri-style.desktop.tmp" "$APPS/mri-style.desktop"
refresh
echo "installed $APPS/mri-style.desktop -> $EXE"
