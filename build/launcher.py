"""PyInstaller's entry script for the frozen app: the same entry point as `mri-style`.

freeze_support() must run first: if anything in the app (or torch's DataLoader workers)
starts a multiprocessing child, the frozen executable is re-run as that child and this
call turns it into the worker instead of opening a second window.
"""

import multiprocessing

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from mri_style_app.__main__ import entry

    entry()
