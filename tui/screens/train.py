"""TrainPrompt: the modal that starts a training run of the form's stack (g / ctrl+g).

Four text fields, the engine's own text forms: steps, optimizer (sgd(lr=0.05, momentum=0), adam(lr=0.001)),
every (record every K steps; 0 = auto, at most about 200 recorded points) and data (digits, teacher(...),
file(...)). enter checks them with the engine's parser (`parse`: texts -> TrainSpec, raising SpecError):
a bad value shows the engine's one sentence and the prompt stays; a good one answers the TrainSpec.
escape cancels.
"""

from __future__ import annotations

from collections.abc import Callable

from initscope.engine.errors import SpecError
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Static

from .dialog import Dialog

FIELDS = (("steps", "optimizer steps"), ("optimizer", "sgd(lr=, momentum=) or adam(lr=)"),
          ("every", "record every K steps (0: auto)"), ("data", "digits, teacher(...), file(...)"))


class TrainPrompt(Dialog[object]):
    DEFAULT_CSS = """
    TrainPrompt { align: center middle; }
    #train-box { width: 90%; max-width: 90; height: auto; border: round $primary; background: $surface;
                 padding: 0 1; }
    #train-title { text-style: bold; }
    .train-row { height: auto; }
    .train-row Label { width: 11; padding-top: 1; }
    .train-row Input { width: 1fr; }
    #train-error { color: $text-muted; height: auto; }
    """
    AUTO_FOCUS = "#train-steps"
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, texts: dict[str, str], parse: Callable[[dict[str, str]], object], title: str) -> None:
        super().__init__()
        self.texts = dict(texts)
        self.parse = parse
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(id="train-box"):
            yield Label(self.title_text, markup=False, id="train-title")
            for name, hint in FIELDS:
                with Horizontal(classes="train-row"):
                    yield Label(f"{name:<10}", markup=False)
                    yield Input(self.texts.get(name, ""), id=f"train-{name}", placeholder=hint)
            yield Static("enter: train · tab: next field · escape: cancel", id="train-error", markup=False)

    def values(self) -> dict[str, str]:
        return {name: self.query_one(f"#train-{name}", Input).value.strip() for name, _hint in FIELDS}

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        values = self.values()
        try:
            spec = self.parse(values)
        except SpecError as e:
            self.query_one("#train-error", Static).update(e.message("app"))
            field = getattr(e, "field", "")
            found = self.query(f"#train-{field}")
            if found:
                found.first().focus()
            return
        except Exception as e:  # noqa: BLE001 - a parser surprise is a sentence, never a crash
            self.query_one("#train-error", Static).update(f"{type(e).__name__}: {e}")
            return
        self.dismiss((spec, values))
