"""Version of the protomodels package."""

__version__ = "0.1.0"
