"""SpecForm: the input panes, one row per spec field, every value a text form of docs/design.md.

Each Input validates its own field through engine.parse_spec (so the reason shown is the engine's
one-sentence SpecError) and is marked `-invalid` where it was typed, with the reason on a line under
it. When every field is valid and the spec changed, the form posts SpecEdited; the app debounces
and re-runs. Loading a spec (recall, presets, sessions) posts nothing.

Validity is decided from the value a field holds when its change is handled, never from the value an
event carried: keys typed or pasted faster than the app handles them change the field several times
before the first Changed is handled, so every Changed but the field's last is stale and skipped. After
the form said SpecInvalid, the next valid spec is posted even when it equals the last one posted (the
app dropped the pending run when it heard SpecInvalid).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from initscope.engine.catalog import KINDS
from initscope.engine.errors import SpecError
from initscope.engine.spec import DTYPES, RunSpec, default_spec, parse_spec
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.validation import ValidationResult, Validator
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, Select, Static

from ..messages import SpecEdited, SpecInvalid

CALL_FIELDS = ("init", "act", "norm", "residual", "bias", "data")
FORM_ORDER = ("init", "act", "arch", "norm", "residual", "bias", "data", "pair_corr", "batch", "seed", "trials", "device",
              "dtype", "grad")
TEXT_FIELDS = ("arch", "pair_corr", "batch", "seed", "trials", "device")
LABELS = {"init": "init", "act": "act", "arch": "arch", "bias": "bias", "data": "data", "batch": "batch",
          "device": "device", "dtype": "dtype", "seed": "seed", "trials": "trials", "grad": "grad", "norm": "norm",
          "residual": "resid", "pair_corr": "pairs"}
FIELD_HELP = {
    "arch": "widths joined by '-', WxN repeats W N times: 784-50-10, 512-512x50, 1024-256-2048-512",
    "batch": "rows of input data per trial (1 .. 16777216)",
    "seed": "random seed; trial t uses seed + t",
    "trials": "independent networks whose curves are averaged (spread shown)",
    "device": "auto, cpu, cuda, cuda:N or mps",
    "dtype": "float32, float64, bfloat16 or float16",
    "pair_corr": "none, or C (-1 < C < 1): also feed input pairs of correlation C and measure c^l (Corr tab)",
    "grad": "also back-propagate and measure grad and grad_pre (and grad_out with a residual)",
}


def split_call(text: str) -> tuple[str, str]:
    """'kaiming_normal(mode=fan_out)' -> ('kaiming_normal', 'mode=fan_out')."""
    text = text.strip()
    if "(" in text and text.endswith(")"):
        name, _, rest = text.partition("(")
        return name.strip(), rest[:-1].strip()
    return text, ""


def join_call(name: str, params: str) -> str:
    params = params.strip()
    if "(" in params:  # the whole call typed into the parameter box
        return params
    return f"{name}({params})" if params else name


def params_hint(field: str, name: str) -> str:
    e = KINDS[field].get(name)
    if e is None:
        return ""
    if not e.params:
        return "(no parameters)"
    return e.usage()[len(name) + 1:-1]


def field_help(field: str, name: str | None = None) -> str:
    if field in CALL_FIELDS and name in KINDS[field]:
        e = KINDS[field][name]
        lines = [f"{name}: {e.doc}"]
        if e.formula:
            lines.append(e.formula)
        lines += [p.describe() for p in e.params]
        if not e.params:
            lines.append("(no parameters)")
        return "\n".join(lines)
    return FIELD_HELP.get(field, "")


class FieldValidator(Validator):
    """Validates one field alone (the others at their defaults), with the engine's parser."""

    def __init__(self, field: str, compose: Callable[[str], str] | None = None) -> None:
        super().__init__()
        self.field = field
        self.compose = compose or (lambda v: v)

    def validate(self, value: str) -> ValidationResult:
        try:
            parse_spec(**{self.field: self.compose(value)})
        except SpecError as e:
            return self.failure(e.message("app"))
        return self.success()


TYPE_AHEAD_S = 1.0  # keys further apart than this start a new name


def best_match(names: Sequence[str], typed: str) -> str | None:
    """The first name that starts with `typed`, else the first that contains it (case-insensitive)."""
    typed = typed.lower()
    for name in names:
        if name.lower().startswith(typed):
            return name
    return next((name for name in names if typed in name.lower()), None)


class FieldInput(Input):
    """An Input whose own bindings (backspace, ctrl+u, home, ...) act in order with the characters typed
    around them. Textual runs a focused widget's bindings only once the key has bubbled up to the app
    unused; the characters read after it (a busy app reads a burst at once) were typed in before that, so
    the burst "ctrl+u 4 9 backspace 2" into a field holding 0 left "0492", not "42"."""

    async def _on_key(self, event: events.Key) -> None:
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            if not binding.priority and await self.app.run_action(binding.action, self):
                event.stop()
                event.prevent_default()
                return
        await super()._on_key(event)


class NameSelect(Select[str]):
    """A list of names chosen by typing one: printable keys (space aside, which opens the list) pick
    best_match of what was typed within TYPE_AHEAD_S, and never reach the app's single-key shortcuts
    (the l of xavier_normal is not log-y). enter, space and the arrows open the list as usual."""

    def __init__(self, names: Sequence[str], value: str, *, id: str | None = None) -> None:
        super().__init__([(n, n) for n in names], value=value, allow_blank=False, compact=True, id=id)
        self.names = tuple(names)
        self._typed = ""
        self._typed_at = -1e9

    def check_consume_key(self, key: str, character: str | None = None) -> bool:
        return character is not None and character.isprintable() and character != " "

    async def _on_key(self, event: events.Key) -> None:
        if not self.expanded and self.check_consume_key(event.key, event.character):
            event.stop()
            event.prevent_default()
            assert event.character is not None
            self.type_ahead(event.character, event.time)
            return
        await super()._on_key(event)

    def type_ahead(self, character: str, at: float) -> None:
        """Add `character` to the name being typed (`at`: when the key was read) and choose its match."""
        typed = (self._typed if at - self._typed_at <= TYPE_AHEAD_S else "") + character
        self._typed_at = at
        name = best_match(self.names, typed)
        if name is None:
            self.app.bell()  # no such name: the key is dropped, what was typed before still counts
            return
        self._typed = typed
        self.value = name


class SpecForm(VerticalScroll):
    """The spec as text inputs. `load(spec)` fills it; `texts()` reads it; `spec` is the last valid one."""

    # Priority, like the app's tab: the keys typed right after escape go where escape sent focus.
    BINDINGS = [Binding("escape", "leave", "Leave form", show=False, priority=True)]

    def action_leave(self) -> None:
        """escape: close an open list (focus back on it), else leave the form (app.leave_field)."""
        for select in self.query(Select):
            if select.expanded:
                select.expanded = False
                self.screen.set_focus(select)  # now, not after the keys already read
                return
        leave = getattr(self.app, "leave_field", None)
        if leave is not None:
            leave()

    def __init__(self, spec: RunSpec | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.spec = spec or default_spec()
        self.errors: dict[str, str] = {}
        self._spec_wide_error: str | None = None  # the field holding an error of the whole spec, not its own
        self._said_invalid = False  # the last message posted was SpecInvalid
        self._help_field = "init"  # the field whose help is shown
        self._help_text = ""
        self._names = {f: split_call(self.spec.to_text()[f])[0] for f in CALL_FIELDS}  # names shown now

    def set_spec_before_mount(self, spec: RunSpec) -> None:
        self.spec = spec
        self._names = {f: split_call(spec.to_text()[f])[0] for f in CALL_FIELDS}

    # -- building ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        t = self.spec.to_text()
        for field in FORM_ORDER:
            with Horizontal(classes="field", id=f"row-{field}"):
                yield Label(LABELS[field], classes="field-label")
                yield from self._widget(field, t)
            if field in CALL_FIELDS:
                name, params = split_call(t[field])
                yield FieldInput(params, placeholder=params_hint(field, name), id=f"{field}-params", compact=True,
                                 classes="params", validators=[FieldValidator(field, self._composer(field))],
                                 select_on_focus=False)
            yield Static("", id=f"err-{field}", classes="field-error", markup=False)
        yield Static(field_help("init", self.spec.init.name), id="field-help", markup=False)

    def _composer(self, field: str) -> Callable[[str], str]:
        def compose(value: str) -> str:
            return join_call(self._select_name(field), value)
        return compose

    def _select_name(self, field: str) -> str:
        try:
            sel = self.query_one(f"#{field}-name", Select)
        except Exception:
            return split_call(self.spec.to_text()[field])[0]
        return str(sel.value) if not sel.is_blank() else split_call(self.spec.to_text()[field])[0]

    def _widget(self, field: str, t: dict[str, str]) -> ComposeResult:
        if field in CALL_FIELDS:
            name, _ = split_call(t[field])
            yield NameSelect(list(KINDS[field]), name, id=f"{field}-name")
        elif field == "dtype":
            yield NameSelect(DTYPES, t["dtype"], id="dtype")
        elif field == "grad":
            yield Checkbox("gradients", value=self.spec.grad, compact=True, id="grad")
        else:
            yield FieldInput(t[field], id=f"f-{field}", compact=True, validators=[FieldValidator(field)],
                             select_on_focus=False)

    # -- reading and writing ----------------------------------------------------------------------
    def texts(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for field in CALL_FIELDS:
            out[field] = join_call(self._select_name(field), self.query_one(f"#{field}-params", Input).value)
        for field in TEXT_FIELDS:
            out[field] = self.query_one(f"#f-{field}", Input).value
        out["dtype"] = str(self.query_one("#dtype", Select).value)
        out["grad"] = "true" if self.query_one("#grad", Checkbox).value else "false"
        return out

    def input_for(self, field: str) -> Widget:
        if field in CALL_FIELDS:
            return self.query_one(f"#{field}-params", Input)
        if field in TEXT_FIELDS:
            return self.query_one(f"#f-{field}", Input)
        return self.query_one(f"#{field}")

    def load(self, spec: RunSpec) -> None:
        """Show `spec` in every field without posting SpecEdited (the caller runs it)."""
        self.spec = spec
        t = spec.to_text()
        with self.prevent(Input.Changed, Select.Changed, Checkbox.Changed):
            for field in CALL_FIELDS:
                name, params = split_call(t[field])
                self.query_one(f"#{field}-name", Select).value = name
                box = self.query_one(f"#{field}-params", Input)
                box.placeholder = params_hint(field, name)
                box.value = params
                self._names[field] = name
            for field in TEXT_FIELDS:
                self.query_one(f"#f-{field}", Input).value = t[field]
            self.query_one("#dtype", Select).value = t["dtype"]
            self.query_one("#grad", Checkbox).value = spec.grad
        for field in list(self.errors):
            self._set_error(field, "")
        self._said_invalid = False
        for box in self.query(Input):
            box.validate(box.value)
        self._show_help(self._help_field)  # the help shown was about the name before

    # -- reacting ---------------------------------------------------------------------------------
    def _set_error(self, field: str, reason: str) -> None:
        if field == self._spec_wide_error:
            self._spec_wide_error = None  # whoever sets it now decides it
        if self.errors.get(field, "") == reason:
            return
        if reason:
            self.errors[field] = reason
        else:
            self.errors.pop(field, None)
        err = self.query_one(f"#err-{field}", Static)
        err.update(reason)
        err.set_class(bool(reason), "-shown")
        target = self.input_for(field)
        target.set_class(bool(reason), "-invalid")

    def _field_of(self, widget: Widget) -> str | None:
        wid = widget.id or ""
        for field in (*CALL_FIELDS, *TEXT_FIELDS, "dtype", "grad"):
            if wid in (f"{field}-name", f"{field}-params", f"f-{field}", field):
                return field
        return None

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        field = self._field_of(event.select)
        if event.value != event.select.value:
            return  # stale, like a stale Input.Changed: the Select's last Changed is still to come
        if field in CALL_FIELDS:
            name = str(event.value)
            if self._names.get(field) == name:
                return  # not a change (Select posts Changed when it mounts)
            self._names[field] = name
            box = self.query_one(f"#{field}-params", Input)
            box.placeholder = params_hint(field, name)
            with self.prevent(Input.Changed):
                box.value = ""  # the old scheme's parameters rarely fit the new one
            self._validate_field(field)
            self._show_help(field)
        self._check(field)

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        field = self._field_of(event.input)
        if field is None or event.value != event.input.value:
            return  # stale: the field changed again since, and its last Changed is still to come
        self._validate_field(field)
        self._check(field)

    def _validate_field(self, field: str) -> None:
        """Mark `field` from the value its box holds now (call parameters against the name chosen now)."""
        box = self.input_for(field)
        assert isinstance(box, Input)
        vr = box.validate(box.value)
        self._set_error(field, "" if vr is None or vr.is_valid else vr.failure_descriptions[0])

    @on(Checkbox.Changed)
    def _checkbox_changed(self, event: Checkbox.Changed) -> None:
        self._check("grad")

    def _check(self, field: str | None) -> None:
        """Post SpecInvalid (the first field in error) or, for a new valid spec, SpecEdited."""
        if self._spec_wide_error is not None:  # an error of the whole spec is decided again each time
            self._set_error(self._spec_wide_error, "")
        if self.errors:
            f = next(iter(self.errors))
            self._say_invalid(f, self.errors[f])
            return
        try:
            spec = parse_spec(**self.texts())
        except SpecError as e:
            f = e.field.split()[0] if e.field.split() and e.field.split()[0] in LABELS else (field or "arch")
            self._set_error(f, e.message("app"))
            self._spec_wide_error = f
            self._say_invalid(f, e.message("app"))
            return
        if spec != self.spec or self._said_invalid:
            self.spec = spec
            self._said_invalid = False
            self.post_message(SpecEdited(spec))

    def _say_invalid(self, field: str, reason: str) -> None:
        self._said_invalid = True
        self.post_message(SpecInvalid(field, reason))

    def on_descendant_focus(self, event) -> None:
        field = self._field_of(event.widget)
        if field:
            self._show_help(field)

    def _show_help(self, field: str) -> None:
        self._help_field = field
        name = self._select_name(field) if field in CALL_FIELDS else None
        text = field_help(field, name)
        if text != self._help_text:
            self._help_text = text
            self.query_one("#field-help", Static).update(text)
