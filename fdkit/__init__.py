"""fdkit: teach and replicate the Milton Keynes Focused Deterrence randomised trial.

The pipeline is a chain of plain functions over pandas DataFrames::

    records = fdkit.records.load_records("synthetic")     # check a records folder
    fdkit.synth.generate(...)                              # or make synthetic records

See ``notebooks/00_start_here.ipynb`` for a guided route through the kit.
"""

from importlib.metadata import PackageNotFoundError, version

from .records import FdkitDataError, Records, load_records

try:
    __version__ = version("fdkit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["FdkitDataError", "Records", "load_records", "__version__"]
