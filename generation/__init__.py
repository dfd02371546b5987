"""generation subsystem (see ../shared/docs/ARCHITECTURE.md); filled in by later issues."""
