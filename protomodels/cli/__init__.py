"""The ``protomodel`` command line."""
