"""One module per method. Each registers itself with `benchmark.registry.register`; the harness imports the
modules of this package on first use of the registry. Adding a method is adding a file here."""
