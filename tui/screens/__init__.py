"""Modal screens of the initscope app."""
