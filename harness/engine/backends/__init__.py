"""Engine backends, one module each; each imports its heavy dependency lazily."""
