"""The omnitwin engine: all behaviour, with no HTTP and no Jupyter."""
