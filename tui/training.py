"""Training runs in the app: the state the Training tab draws, and the app's actions (a mixin).

- g / ctrl+g ("Train"): a prompt (tui/screens/train.py) asks steps, optimizer, every and data; the
  form's stack (arch, init, act, bias, batch, seed, trials, norm, residual, device, dtype) plus those go
  through the engine's parser (engine/trainspec.py parse_train) and train in the run queue's thread
  worker (tui/runs.py start_training): progress in the status line, escape cancels.
- The finished run becomes the current training run (TrainingState.current); ctrl+n with the Training
  tab shown pins it on the app's one PinBoard (tui/pins.py: a pin of a TrainResult, Pin.is_training),
  beside the pinned runs: one number, colour and name each. The Runs tab lists it (marked as a training
  run, with its final held-out accuracy) and renames (r), removes (d) and recalls (enter) it like a run;
  1..9 show/hide it (the Training tab draws the visible ones, the other tabs only the runs); recalling
  it puts its stack into the form and its steps/optimizer/every/data into the prompt.
- F3: a preset whose specs are training specs (they have .body and .steps: a TrainSpec) trains each
  variant and pins it under the variant's name, like a preset of runs.
The engine is the app's: its `parse_train(**texts)` and `train_run(spec, progress=, cancelled=)` where it
has them (the tests' fake), else initscope.engine.trainspec.parse_train and initscope.engine.train.train.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from initscope.engine.errors import SpecError

from .messages import TrainFinished

BODY_FIELDS = ("arch", "init", "act", "bias", "batch", "device", "dtype", "seed", "trials", "norm", "residual")
PROMPT_DEFAULTS = {"steps": "100", "optimizer": "sgd(lr=0.05)", "every": "0", "data": "digits"}


def is_training_spec(spec: object) -> bool:
    """A TrainSpec (engine/trainspec.py): a stack (`body`) plus steps; a RunSpec has neither."""
    return hasattr(spec, "body") and hasattr(spec, "steps")


def training_status(result) -> str:
    """The status line while the Training tab shows a finished training run: 'cpu · 100 steps · 3 seeds ·
    12.3 s · test acc 0.902 +- 0.028' (mean and sd over seeds after the last step)."""
    from .widgets.training import headline

    spec = result.spec
    mean, sd = headline(result, "test_acc")
    seeds = f"{spec.trials} seed{'s' if spec.trials > 1 else ''}"
    acc = "test acc n/a" if math.isnan(mean) else f"test acc {mean:.3f}" + (f" +- {sd:.3f}" if spec.trials > 1 else "")
    return f"{result.device} · {spec.steps} steps · {seeds} · {result.elapsed_s:.2f} s · {acc}"


@dataclass
class TrainingState:
    """What the Training tab draws besides the pins of training runs (on the app's PinBoard): the current
    training run, whether one is training and what."""

    current: object | None = None
    running: bool = False
    spec: object | None = None  # what trains now (or last trained): the form's stack when g was pressed
    prompt: dict[str, str] = field(default_factory=lambda: dict(PROMPT_DEFAULTS))  # the prompt's last texts


class TrainingActions:
    """The app's training actions (mixed into InitScopeApp; uses its queue, form, notify, redraw)."""

    training: TrainingState

    def training_parser(self):
        parse = getattr(self.engine, "parse_train", None)
        if parse is None:
            from initscope.engine.trainspec import parse_train as parse
        return parse

    def training_texts(self, prompt: dict[str, str]) -> dict[str, str]:
        """The form's stack as text forms plus the prompt's steps/optimizer/every/data."""
        body = self.form_spec().to_text()
        texts = {k: body[k] for k in BODY_FIELDS if k in body}
        texts.update({k: v for k, v in prompt.items() if v != ""})
        return texts

    def action_train(self) -> None:
        form = self.form()
        if form is not None and form.errors:
            field_name, reason = next(iter(form.errors.items()))
            self.notify(f"Fix {field_name} first: {reason}", severity="warning", markup=False)
            return
        if len(self.screen_stack) > 1:
            return
        try:
            parse = self.training_parser()
        except ImportError:
            self.notify("This build has no training engine (initscope.engine.train).", severity="error",
                        markup=False)
            return
        prompt = dict(self.training.prompt)
        if self.form_spec().arch[0] != 64 and prompt.get("data", "") == "digits":
            prompt["data"] = "teacher"  # digits has 64 features; the teacher task fits any first width
        from .screens.train import TrainPrompt

        def done(answer) -> None:
            if answer:
                spec, values = answer
                self.training.prompt = values
                self.start_training(spec)

        arch = self.form_spec().to_text()["arch"]
        self.push_screen(TrainPrompt(prompt, lambda values: parse(**self.training_texts(values)),
                                     f"Train {arch} (the form's stack) for its first steps"), done)

    def start_training(self, spec, pin_as: str | None = None, keep_batch: bool = False) -> None:
        """Train `spec` in the training lane (tui/runs.py): a run started meanwhile (a form edit's re-run)
        leaves it going; the form's later edits are not this training run's (it has its own spec)."""
        self.training.running = True
        self.training.spec = spec
        self.queue.start_training(spec, pin_as, keep_batch)
        self.action_show_tab("training")
        self.update_status()
        self.redraw("training")

    def start_entry(self, spec, pin_as: str | None, keep_batch: bool) -> None:
        """Start a queued entry: a training spec trains, a run spec runs."""
        if is_training_spec(spec):
            self.start_training(spec, pin_as, keep_batch)
        else:
            self.start_run(spec, pin_as, keep_batch)

    def on_train_finished(self, message: TrainFinished) -> None:
        if not self.queue.is_active(message.run_id):
            return
        result = message.result
        if message.pin_as is not None:
            is_main = self.queue.batch_main
            self.pin_training(result, message.pin_as)
            if is_main:
                self.training.current = result
        else:
            self.training.current = result
        notes = tuple(getattr(result, "notes", ()))
        if notes:
            self.notify("\n".join(notes), markup=False, timeout=10, title="Training notes")
        self.last_error = ""
        entry = self.queue.finished(message.run_id)
        self.training.running = self.queue.train.running
        if entry is not None:
            self.start_entry(entry[0], entry[1], True)
        else:
            self.update_status()
        self.redraw("training")

    def training_stopped(self) -> None:
        """A job failed or was cancelled: the Training tab says whether a training run still goes on."""
        if self.training.running and not self.queue.train.running:
            self.training.running = False
            self.redraw("training")

    def pin_training(self, result, name: str | None = None) -> None:
        """Pin a training run on the app's board (its number is its Runs tab row and digit key)."""
        try:
            pin = self.pins.add(result, name or self._training_name(result))
        except ValueError as e:
            self.notify(str(e), severity="warning", markup=False)
            return
        self.notify(f"Pinned training run as {len(self.pins)}: {pin.name}", markup=False, timeout=3)
        self.redraw_table()
        self.update_status()

    def _training_name(self, result) -> str:
        """A pinned training run's first name: 'relu · 100 steps' (its activation and steps; short, so the
        Runs tab's event cell, 'trained, acc ...', still shows beside the form at 80 columns; r renames)."""
        spec = result.spec
        to_text = getattr(spec, "to_text", None)
        if not callable(to_text):
            return "training run"
        t = to_text()
        return f"{t.get('act', '?')} · {t.get('steps', '?')} steps"

    def training_tab_shown(self) -> bool:
        found = self.query("#tabs")
        return bool(found) and getattr(found.first(), "active", None) == "training"

    def action_pin_training(self) -> None:
        current = self.training.current
        if current is None:
            self.notify("No training run to pin yet: g trains the form's configuration.", severity="warning",
                        markup=False)
            return
        if self.pins.holds(current):
            self.notify("The current training run is already pinned.", markup=False)
            return
        self.pin_training(current)
        self.redraw("training")

    def recall_training(self, pin) -> None:
        """A pinned training run becomes the current one; its stack goes into the form and its steps,
        optimizer, every and data into the prompt (the Runs tab's enter, the palette)."""
        spec = pin.result.spec
        self.load_form(spec.body)
        texts = spec.to_text() if hasattr(spec, "to_text") else {}
        self.training.prompt = {k: str(texts.get(k, v)) for k, v in PROMPT_DEFAULTS.items()}
        self.training.current = pin.result
        self.redraw("training")
        self.update_status()
        self.notify(f"Recalled training run {pin.name}: its stack into the form, its steps, optimizer, every "
                    "and data into the train prompt (F9 shows it)", markup=False, timeout=4)

    def session_training_entries(self, entries) -> list[tuple[object, str, bool]] | None:
        """A session's training runs as queue entries (TrainSpec, name, False), each through the engine's
        parser; None (after one sentence) when one does not parse or the build has no training engine."""
        if not entries:
            return []
        try:
            parse = self.training_parser()
        except ImportError:
            self.notify("The session has training runs but this build has no training engine.", severity="error",
                        markup=False)
            return None
        out = []
        for i, e in enumerate(entries, start=1):
            try:
                out.append((parse(**e.texts), e.name, False))
            except SpecError as err:
                self.notify(f"Session: training run {i} ({e.name}): {err.message('app')}", severity="error",
                            markup=False)
                return None
            except TypeError as err:
                self.notify(f"Session: training run {i} ({e.name}): {err}", severity="error", markup=False)
                return None
        return out

    def training_palette_entries(self) -> list[tuple[str, str, str]]:
        """The training actions beyond the pins' (the pins of training runs are in the app's pin entries)."""
        return [("Train", "g / ctrl+g: train the form's stack (steps, optimizer, every, data)", "train")]

    def apply_training_preset(self, preset, specs: list[tuple[str, object]]) -> None:
        """Train a training preset's variants one after another, each pinned under its label."""
        main_label, main_spec = specs[0]
        self.load_form(main_spec.body)
        self.training.prompt = {k: str(main_spec.to_text().get(k, v)) for k, v in PROMPT_DEFAULTS.items()} \
            if hasattr(main_spec, "to_text") else self.training.prompt
        self.notify(f"{preset.title}\nLook for: {preset.look_for}", title=f"Preset {preset.name}", markup=False,
                    timeout=8)
        if len(specs) == 1:
            self.start_training(main_spec)
            return
        entries, warning = self._fit_training(specs)
        if warning:
            self.notify(warning, severity="warning", markup=False, timeout=10)
        if not entries:
            return
        spec, name, _is_main = self.queue.queue_batch(entries)
        self.start_training(spec, pin_as=name, keep_batch=True)

    def _fit_training(self, specs):
        from .pins import MAX_PINS
        from .runs import fit_batch

        entries = [(s, label, i == 0) for i, (label, s) in enumerate(specs)]
        return fit_batch(entries, MAX_PINS - len(self.pins))


def training_presets(used_keys: set[str]) -> list[tuple[str, object]]:
    """(key, preset) for every training preset (engine/train_presets.py TRAIN_PRESETS; none in a build
    without it): its own `key` where it has one, else the first free letter of its name, else of a..z."""
    try:
        from initscope.engine.train_presets import TRAIN_PRESETS
    except ImportError:
        return []
    out, used = [], set(used_keys)
    for p in TRAIN_PRESETS.values():
        key = getattr(p, "key", None)
        if not key or key in used:
            key = next((c for c in p.name + "abcdefghijklmnopqrstuvwxyz" if c.isalpha() and c not in used), "")
        used.add(key)
        out.append((key, p))
    return out


def find_training_preset(name: str):
    try:
        from initscope.engine.train_presets import TRAIN_PRESETS
    except ImportError:
        return None
    return TRAIN_PRESETS.get(name)


def preset_training_specs(preset, overrides: dict[str, str] | None):
    """A preset's training variants [(label, TrainSpec)], or None when it is a preset of runs. Read through
    the interface: a `train_specs(overrides)` method where the preset has one, else `specs(overrides)`
    when what it returns are training specs."""
    maker = getattr(preset, "train_specs", None)
    if callable(maker):
        return list(maker(overrides))
    specs = preset.specs(overrides)
    if specs and is_training_spec(specs[0][1]):
        return list(specs)
    return None


__all__ = ["TrainingState", "TrainingActions", "is_training_spec", "preset_training_specs", "training_presets",
           "find_training_preset", "SpecError"]
