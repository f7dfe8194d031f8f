"""Logging is the entry points' business: importing rectrain and getting its loggers configures
nothing; setup_logging (called by `rectrain`) sends the library's messages to stderr."""

from __future__ import annotations

import subprocess
import sys

IMPORT_EVERYTHING = """
import importlib, logging, pkgutil, sys
import rectrain
from rectrain.logs import get_logger
names = [m.name for m in pkgutil.walk_packages(rectrain.__path__, "rectrain.")
         if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
log = get_logger("somewhere")
assert len(names) > 50, names
print("handlers", logging.getLogger("rectrain").handlers, logging.getLogger().handlers)
print("levels", logging.getLogger("rectrain").level, logging.getLogger("botocore").level,
      logging.getLogger("urllib3").level)
log.info("an info message")
log.warning("a warning message")
"""


def test_importing_the_library_configures_no_logging() -> None:
    result = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "handlers [] []" in result.stdout and "levels 0 0 0" in result.stdout
    # unconfigured, Python's last-resort handler still shows warnings, not progress messages
    assert "a warning message" in result.stderr and "an info message" not in result.stderr


def test_setup_logging_shows_progress_and_quietens_the_aws_sdk() -> None:
    code = IMPORT_EVERYTHING.replace('log = get_logger("somewhere")', 'log = get_logger("somewhere")\n'
                                     'from rectrain.logs import setup_logging\nsetup_logging("info")')
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "levels 20 30 30" in result.stdout
    assert "an info message" in result.stderr and "a warning message" in result.stderr
