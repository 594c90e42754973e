"""sora-cli: text-to-video on your own machine."""

__version__ = "0.1.0"
