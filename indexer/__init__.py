"""indexer: keeps a SQLite catalogue of a media library in sync with its folders.

The Python API is `indexer.Manager` (see indexer/manager.py and the README).
Names are imported on first use, so `indexer` on the command line starts fast.
"""

__version__ = "0.1.0"
__all__ = ["Manager", "ScanResult", "Progress", "ConfigError"]


def __getattr__(name: str):
    if name == "Manager":
        from .manager import Manager
        return Manager
    if name == "ScanResult":
        from .scan import ScanResult
        return ScanResult
    if name == "Progress":
        from .records import Progress
        return Progress
    if name == "ConfigError":
        from .config import ConfigError
        return ConfigError
    raise AttributeError(f"module 'indexer' has no attribute {name!r}")
