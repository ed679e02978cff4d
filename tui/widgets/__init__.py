"""Widgets of the initscope app, one per module."""
