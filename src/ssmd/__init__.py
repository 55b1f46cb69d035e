"""ssmd — stupid simple market data."""

__version__ = "0.1.0"
