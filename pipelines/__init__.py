"""The finegate pipeline and its command-line entry point."""
