"""Every entry point into core: one adapter per cloud (functions/<cloud>/, each copied alone to its package's
root and loaded from there by the platform) and the developer's tools (functions.devtools, never shipped)."""
