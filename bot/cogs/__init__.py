"""One module per user-facing feature."""
