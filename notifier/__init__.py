"""datasaur-notifier: watch Datasaur jobs and notify exactly once when they end."""

__version__ = "0.1.0"
