"""The app's keys: one table for the help screen and the command palette, and the bindings.

The tab keys (F5.., one per view) and the tab cycle's words come from the view registry (tui/views.py),
so a new tab brings its key with its registration line.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding

from . import views
from .pins import MAX_PINS

MENU_ACTIONS = ("presets", "save_menu", "open_session", "train")  # their keys open a dialog only from the main screen


@dataclass(frozen=True)
class KeyAction:
    group: str
    keys: str
    title: str
    action: str
    help: str


def key_actions() -> tuple[KeyAction, ...]:
    """Every action with its keys, for the help screen and the palette (the bindings use the same actions)."""
    tabs = views.VIEWS
    return (
        KeyAction("Run", "ctrl+r", "Run now", "rerun", "Run the form's configuration again now"),
        KeyAction("Run", "escape", "Cancel run", "cancel",
                  "Stop the run and the training run in progress; in a field: stop the form's re-run, else leave "
                  "the field (a training run goes on)"),
        KeyAction("Run", "ctrl+g  g", "Train", "train",
                  "Train the form's stack for its first steps (steps, optimizer, every, data); Training tab"),
        KeyAction("Run", "F3", "Presets", "presets", "The classic experiments, one key each"),
        KeyAction("View", "ctrl+t  t", "Next tensor", "next_tensor",
                  "Cycle pre -> (normed) -> post -> (out) -> grad -> grad_pre -> (grad_out), those the runs have"),
        KeyAction("View", "ctrl+l  l", "Log y", "toggle_log", "Log scale on the std plot (|mean| on the mean plot)"),
        KeyAction("View", "F2", "Show/hide form", "toggle_form", "Give the plots the whole width"),
        KeyAction("View", "F4", "Next tab", "next_tab", " -> ".join(v.title for v in tabs)),
        KeyAction("View", views.key_range(), "/".join(v.title for v in tabs) + " tab", f"show_tab('{tabs[0].id}')",
                  "Jump to a tab"),
        KeyAction("View", "[  ]  s (Training tab)", "Layer / statistic", "show_tab('training')",
                  "The Training tab's layer (previous, next) and statistic (std, mean, near_zero, saturated)"),
        KeyAction("Phase", "arrows  m  s  t (Phase tab)", "Phase: cursor, quantity, source", "show_tab('phase')",
                  "Move the cursor (its cell is read out under the map); m: log_q_ratio, 1 - c_last, log_grad_ratio, "
                  "chi1, xi_c; s: measured / predicted of a sweep; t: back to the theory diagram"),
        KeyAction("Phase", "enter  a (Phase tab)", "Phase: recall cell, axes", "show_tab('phase')",
                  "enter: the cell's spec into the form, run; a: the two axes as --vary texts"),
        KeyAction("Phase", "r  escape  o (Phase tab)", "Phase: sweep, stop, open", "show_tab('phase')",
                  "r: measure an 8 x 8 sweep of the axes (trials from the form); escape stops it, keeping what is "
                  "done; o: open a table of initscope sweep --output"),
        KeyAction("Compare", "ctrl+n  p", "Pin current run", "pin", "Keep the current run with a colour and a name"),
        KeyAction("Compare", "1..9", "Show/hide pin N", "toggle_pin(0)", "Toggle a pinned run's visibility"),
        KeyAction("Compare", "space (Runs tab)", "Show/hide selected pin", "table('toggle')", "In the runs table"),
        KeyAction("Compare", "r (Runs tab)", "Rename selected pin", "table('rename')", "In the runs table"),
        KeyAction("Compare", "d (Runs tab)", "Remove selected pin", "table('remove')", "In the runs table"),
        KeyAction("Compare", "enter (Runs tab)", "Recall selected pin", "table('recall')",
                  "Load its configuration into the form"),
        KeyAction("Files", "ctrl+s", "Save / open menu", "save_menu", "JSON, CSV, SVG screenshot, session"),
        KeyAction("Files", "ctrl+s j", "Export results as JSON", "export('json')", "Current and pinned runs"),
        KeyAction("Files", "ctrl+s c", "Export results as CSV", "export('csv')", "One row per run and layer"),
        KeyAction("Files", "ctrl+s s", "Save SVG screenshot", "export('svg')", "What is on screen now"),
        KeyAction("Files", "ctrl+s w", "Save session", "export('session')", "The pinned configurations"),
        KeyAction("Files", "ctrl+s t", "Export training runs as JSON", "export('train_json')",
                  "Current and pinned training runs (initscope.train/1)"),
        KeyAction("Files", "ctrl+s v", "Export training runs as CSV", "export('train_csv')",
                  "One row per training run, trial, recorded step and layer"),
        KeyAction("Files", "ctrl+o", "Open session", "open_session", "Re-run and pin a saved session"),
        KeyAction("App", "F1  ?", "Help", "help", "This screen"),
        KeyAction("App", "ctrl+p", "Command palette", "command_palette", "Search every action"),
        KeyAction("App", "tab / shift+tab", "Next/previous field", "focus_next", "Move through the form"),
        KeyAction("App", "ctrl+q", "Quit", "quit", "Always quits"),
    )


def view_binding(view: views.View) -> Binding:
    """The key that jumps to `view`'s tab."""
    return Binding(view.key, f"show_tab('{view.id}')", view.title, show=False, priority=True)


def bindings() -> list[Binding]:
    """The app's bindings (InitScopeApp.BINDINGS), the tab keys of the views registered now included."""
    return [
        # The footer shows these in this order (a focused tab's own keys come first): at 80 columns it
        # ends before the palette key after about 69 characters, so it shows the keys a user learns the
        # app from (help, run, stop, train, pin, tensor, presets, save) and F1 lists the rest (log y,
        # form, next tab, open). tests/tui/test_footer.py checks they fit, in every tab.
        Binding("f1", "help", "Help", priority=True, tooltip="Every key"),
        Binding("question_mark", "help", "Help", show=False),
        Binding("ctrl+r", "rerun", "Run", priority=True, tooltip="Run the configuration now"),
        Binding("escape", "cancel", "Stop", tooltip="Cancel the run in progress"),
        Binding("ctrl+g", "train", "Train", priority=True, tooltip="Train the form's stack (Training tab)"),
        Binding("g", "train", "Train", show=False),
        Binding("ctrl+n", "pin", "Pin", priority=True, tooltip="Pin the current run"),
        Binding("p", "pin", "Pin", show=False),
        Binding("ctrl+t", "next_tensor", "Tensor", priority=True, tooltip="pre, normed, post, out, grad, ..."),
        Binding("t", "next_tensor", "Tensor", show=False),
        Binding("f3", "presets", "Presets", priority=True, tooltip="Classic experiments"),
        Binding("ctrl+s", "save_menu", "Save", priority=True, tooltip="JSON, CSV, SVG, session"),
        Binding("ctrl+l", "toggle_log", "Log", show=False, priority=True, tooltip="Log-y on the std plot"),
        Binding("l", "toggle_log", "Log", show=False),
        Binding("f2", "toggle_form", "Form", show=False, priority=True, tooltip="Show or hide the form"),
        Binding("f4", "next_tab", "Tab", show=False, priority=True, tooltip="Next tab"),
        *[view_binding(v) for v in views.VIEWS],
        Binding("ctrl+o", "open_session", "Open", show=False, priority=True),
        # Priority, so focus moves as the app reads the key, before it hands on the next one: Textual's own
        # tab moves focus only once the key has gone to the focused widget and come back unused, and the
        # keys read meanwhile (a busy app reads a burst at once) went to the widget being left.
        Binding("tab", "focus_next", "Next field", show=False, priority=True),
        Binding("shift+tab", "focus_previous", "Previous field", show=False, priority=True),
        *[Binding(str(i), f"toggle_pin({i - 1})", f"Pin {i}", show=False) for i in range(1, MAX_PINS + 1)],
    ]
