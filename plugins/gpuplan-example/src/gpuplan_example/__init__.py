"""gpuplan-example: the reference gpuplan plugin (the hooks are in ``plugin.py``)."""

__version__ = "0.1.0"
