"""runtrack: a runs service for workflow runs, their actions and attempts."""

__version__ = "0.1.0"
