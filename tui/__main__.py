from initscope.tui.cli import entry

entry()
