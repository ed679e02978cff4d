"""initscope's terminal UI (Textual). Importing it does not import torch."""
