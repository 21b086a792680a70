"""remediator: event-driven alert remediation. ``__version__`` is the installed distribution's version
(single-sourced from pyproject.toml through ``importlib.metadata``)."""

from importlib import metadata

try:
    __version__ = metadata.version("remediator")
except metadata.PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"

USER_AGENT = f"remediator/{__version__}"
