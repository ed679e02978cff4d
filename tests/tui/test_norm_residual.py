"""The app with norm and residual blocks: the form's rows, the tensor cycle and its labels, nothing stale
between runs with and without the tensors, the Explain tab's Block section, sessions, and the fake engine
that produces the shared interface's tensors (tests/tui/fake_engine.py)."""

from __future__ import annotations

import math

import numpy as np
from initscope.engine.growth import growth_per_block
from initscope.engine.spec import parse_spec
from initscope.engine.theory import predict
from initscope.tui.app import InitScopeApp
from initscope.tui.export import read_session, save_session
from initscope.tui.tensors import cycle_tensors, next_tensor, shown_tensor, tensor_label
from initscope.tui.widgets.distribution import render_distribution
from initscope.tui.widgets.explain_panel import block_lines, explanation_sections
from initscope.tui.widgets.layer_plot import LayerPlot
from textual.widgets import Input, Select, Static

from tests.tui.conftest import settle
from tests.tui.fake_engine import FakeEngine
from tests.tui.helpers_results import make_result

BN = {"arch": "64-64x6", "norm": "batchnorm"}
RES_BLOCK = {"norm": "layernorm", "residual": "plain(alpha=0.5)"}
RES = {"arch": "64-64x6", **RES_BLOCK}


def drawn(app, plot_id: str) -> str:
    plot = app.query_one(plot_id, LayerPlot)
    return plot.plt.uncolorize(plot.plt.build())


# -- the fake engine ---------------------------------------------------------------------------------------
def test_fake_engine_measures_the_tensors_of_the_interface():
    fake = FakeEngine()
    cases = [({}, ["pre", "post", "grad", "grad_pre"]),
             (BN, ["pre", "normed", "post", "grad", "grad_pre"]),
             (RES, ["pre", "normed", "post", "out", "grad", "grad_pre", "grad_out"]),
             ({**RES, "grad": "false"}, ["pre", "normed", "post", "out"]),
             ({"arch": "64-64x6", "residual": "fixup", "grad": "false"}, ["pre", "post", "out"])]
    for texts, tensors in cases:
        r = fake.run(parse_spec(**texts))
        assert list(r.stats) == tensors and list(r.hist) == tensors, texts
        for t in tensors:
            assert r.stats[t].shape == (1, r.spec.depth, 7) and r.hist[t].shape == (1, r.spec.depth, 40)


def test_fake_engine_is_the_theory_plus_finite_width_noise():
    spec = parse_spec(arch="8192-8192x3", batch="8192", act="tanh")
    r = FakeEngine().run(spec)
    pred = predict(spec)
    assert np.array_equal(r.theory.pre_std, pred.pre_std)  # the prediction itself is attached
    # the fake's relative noise per block is sqrt(l/(n B) + 1/n) <= 0.0111 at n = B = 8192, l <= 3: 5 sd = 0.056
    for tensor in ("pre", "post", "grad", "grad_pre"):
        assert np.allclose(r.headline(tensor, "std"), getattr(pred, f"{tensor}_std"), rtol=0.056), tensor
    # an overflowing net comes out non-finite where the prediction leaves float32's range, as a real run
    blown = FakeEngine().run(parse_spec(init="normal(std=5)", arch="64-64x30"))
    bad = blown.first_nonfinite_layer()
    q = predict(blown.spec).pre_std
    assert bad is not None and q[bad - 2] < 3.4e38 <= q[bad - 1]


# -- the tensor cycle ----------------------------------------------------------------------------------------
def test_cycle_has_the_tensors_of_the_runs_on_screen():
    plain, bn, res = make_result("8-8x3"), make_result("8-8x3", norm="batchnorm"), make_result("8-8x3", **RES_BLOCK)
    assert cycle_tensors([plain]) == ("pre", "post", "grad", "grad_pre")
    assert cycle_tensors([bn]) == ("pre", "normed", "post", "grad", "grad_pre")
    assert cycle_tensors([plain, res]) == ("pre", "normed", "post", "out", "grad", "grad_pre", "grad_out")
    assert cycle_tensors([make_result("8-8x3", grad=False)]) == ("pre", "post", "grad", "grad_pre")  # says tick grad
    assert next_tensor("grad_pre", [res]) == "grad_out" and next_tensor("grad_out", [res]) == "pre"
    cycle = cycle_tensors([plain])
    assert [shown_tensor(t, cycle) for t in ("normed", "out", "grad_out", "grad")] == ["pre", "post", "grad", "grad"]


def test_labels_say_what_post_and_out_are_with_a_residual():
    assert tensor_label("post") == "post x^l" and tensor_label("normed") == "normed n^l"
    res = parse_spec(**RES)
    assert tensor_label("post", res) == "post a^l = phi(n^l), branch"
    assert tensor_label("post", res.with_changes(norm="none")) == "post a^l = phi(h^l), branch"
    assert tensor_label("out", res) == "out x^l, block output"
    assert tensor_label("grad_out", res) == "grad_out dL/dx^l"
    assert tensor_label("post", parse_spec(norm="batchnorm")) == "post x^l"  # without a residual post is x^l


async def test_ctrl_t_walks_normed_out_and_grad_out_and_the_plots_say_so():
    app = InitScopeApp(parse_spec(**RES), engine=FakeEngine())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        seen, titles = [], []
        for _ in range(7):
            await pilot.press("ctrl+t")
            seen.append(app.tensor)
            titles.append(drawn(app, "#plot-std").splitlines()[0].strip())
        assert seen == ["out", "grad", "grad_pre", "grad_out", "pre", "normed", "post"]
        assert titles[0].startswith("std of out x^l, block output")
        assert titles[3].startswith("std of grad_out dL/dx^l") and titles[5].startswith("std of normed n^l")
        assert titles[6].startswith("std of post a^l = phi(n^l), branch")
        assert "tensor post" in str(app.query_one("#status-text", Static).content)


async def test_nothing_stale_when_the_next_run_lacks_the_tensor_shown():
    app = InitScopeApp(parse_spec(**RES), engine=FakeEngine())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.set_tensor("grad_out")
        await pilot.press("f6")  # the Distribution tab shows the same tensor
        await pilot.pause()
        dist = app.query_one("#dist")
        assert dist.tensor == "grad_out"
        app.query_one("#f-seed", Input).value = "1"  # same blocks: the choice stands
        await pilot.pause(0.4)
        await settle(pilot)
        assert app.tensor == "grad_out" and app.current.spec.seed == 1
        app.load_form(app.current.spec.with_changes(residual="none", norm="none"))
        app.start_run(app.form_spec())
        await settle(pilot)
        assert "grad_out" not in app.current.stats
        assert app.tensor == "grad" and dist.tensor == "grad"  # grad_out -> grad: its nearest neighbour
        assert drawn(app, "#plot-std").splitlines()[0].strip().startswith("std of grad dL/dx^l")
        assert "tensor grad" in str(app.query_one("#status-text", Static).content)
        app.set_tensor("normed")  # the palette could still ask for it: it falls back at once
        assert app.tensor == "pre"


async def test_a_pinned_bn_run_keeps_normed_in_the_cycle_while_it_is_shown():
    app = InitScopeApp(parse_spec(**BN), engine=FakeEngine())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+n")  # pin the BatchNorm run
        assert app.pins[0].name == "kaiming_normal relu batchnorm"  # the auto name says the norm
        palette = [title for title, _help, _action in app.palette_entries() if title.startswith("Tensor: ")]
        assert palette == [f"Tensor: {t}" for t in ("pre", "normed", "post", "grad", "grad_pre")]
        app.load_form(app.current.spec.with_changes(norm="none"))
        app.start_run(app.form_spec())
        await settle(pilot)
        app.set_tensor("normed")
        assert app.tensor == "normed"
        assert "not measured" not in drawn(app, "#plot-std")  # the pin's normed curve is drawn
        await pilot.press("1")  # hide the pin: no run on screen has normed any more
        await pilot.pause()
        assert app.tensor == "pre"


# -- the form -------------------------------------------------------------------------------------------------
async def test_norm_and_residual_rows_run_and_a_residual_with_unequal_widths_is_a_sentence():
    fake = FakeEngine()
    app = InitScopeApp(parse_spec(arch="32-32x4"), engine=fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        form = app.form()
        form.query_one("#norm-name", Select).value = "batchnorm"
        await pilot.pause(0.4)
        await settle(pilot)
        assert app.current.spec.norm.name == "batchnorm" and "normed" in app.current.stats
        form.query_one("#norm-params", Input).value = "eps=1e-3"
        await pilot.pause(0.4)
        await settle(pilot)
        assert app.current.spec.norm.get("eps") == 1e-3
        form.query_one("#norm-params", Input).value = "eps=-1"
        await pilot.pause(0.4)
        assert "norm" in form.errors and "eps" in form.errors["norm"]
        form.query_one("#norm-params", Input).value = ""
        form.query_one("#residual-name", Select).value = "plain"
        await pilot.pause(0.4)
        await settle(pilot)
        assert app.current.spec.residual.name == "plain" and "out" in app.current.stats
        runs = len(fake.calls)
        form.query_one("#f-arch", Input).value = "32-16-32"
        await pilot.pause(0.5)
        error = str(form.query_one("#err-residual", Static).content)
        assert error.startswith("residual: 'plain' is not valid; block 1 maps 32 -> 16")
        assert "\n" not in error and len(fake.calls) == runs  # nothing ran
        assert "invalid residual" in str(app.query_one("#status-text", Static).content)
        form.query_one("#f-arch", Input).value = "32-32x3"
        await pilot.pause(0.4)
        await settle(pilot)
        assert "residual" not in form.errors and app.current.spec.arch == (32, 32, 32, 32)


async def test_a_preset_loads_norm_and_residual_into_the_form_and_pins_every_variant():
    app = InitScopeApp(engine=FakeEngine(), preset="residual")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        form = app.form()
        assert form.query_one("#residual-name", Select).value == "plain"
        assert form.query_one("#residual-params", Input).value == ""  # alpha = 1, the default, is left out
        assert [p.spec.to_text()["residual"] for p in app.pins] == [
            "plain", "plain(alpha=0.1414214)", "rezero", "fixup"]
        assert app.current.spec == app.pins[0].spec
        table = str(app.query_one("#runs-table").get_row_at(1)[-1])
        assert "residual=plain(alpha=0.1414214)" in str(app.query_one("#runs-table").get_row_at(2)[-1])
        assert "residual=plain" in table


def test_sessions_carry_norm_and_residual(tmp_path):
    bn = parse_spec(**BN)
    res = parse_spec(**{**RES, "norm": "rmsnorm(eps=1e-4)"})
    path = save_session(tmp_path / "s.json", [("bn", bn), ("res", res)], current=res)
    session = read_session(path)
    assert session.current == res and [p.spec for p in session.pins] == [bn, res]
    assert session.current.norm.get("eps") == 1e-4


# -- Distribution and Explain ----------------------------------------------------------------------------------
def test_distribution_says_why_a_tensor_is_missing():
    plain = make_result("8-8x3")
    assert render_distribution(plain, "normed", 60, 12).message == "no normed tensor in this run (norm=none)"
    assert "residual=none" in render_distribution(plain, "out", 60, 12).message
    res = make_result("8-8x3", **RES_BLOCK)
    drawn_out = render_distribution(res, "out", 60, 12)
    assert drawn_out.message == "" and drawn_out.lines[0][0].text == "out x^l, block output"


def test_growth_per_block_is_the_mean_factor_of_the_second_moment():
    # E[g^2] = lam^(L-l): std_l = lam^((L-l)/2), so (std_1/std_L)^(2/(L-1)) = lam
    lam, L = math.pi / (math.pi - 1), 30
    std = lam ** ((L - np.arange(1, L + 1)) / 2)
    assert math.isclose(growth_per_block(std, toward_input=True), lam, rel_tol=1e-12)
    assert math.isclose(growth_per_block(std[::-1], toward_input=False), lam, rel_tol=1e-12)
    assert math.isnan(growth_per_block(np.array([1.0]), True)) and math.isnan(growth_per_block(np.array([0, 1.0]), True))


def test_block_section_shows_formulas_and_the_runs_growth_beside_the_prediction():
    assert block_lines(parse_spec()) == []
    spec = parse_spec(**RES)
    lam = 1.25
    result = make_result("8-8x5", **RES_BLOCK)
    for tensor in ("grad", "grad_out"):  # E[g^2] growing by lam per block toward the input
        result.stats[tensor][:, :, 1] = lam ** ((5 - np.arange(1, 6)) / 2)
    lines = block_lines(result.spec, result, None)
    text = "\n".join(lines)
    assert "norm layernorm: per example over the features" in text and "residual plain(alpha=0.5)" in text
    assert "x^l = x^(l-1) + alpha V a" in text
    assert "E[g^2] of grad, toward the input: measured 1.25, predicted -" in text
    assert "E[x^2] of out, forward: measured 1, predicted -" in text  # make_result's std is flat
    assert block_lines(spec)[-1].startswith("block l:")  # no run yet: the formulas only


def test_the_explanations_own_sections_are_shown():
    class Part:
        title, paragraphs = "BatchNorm", ("forward: mean 0, std 1", "backward: 1.467 per block")

    class Ex:
        sections = (Part(), ("Residual", "p^l = p^(l-1) (1 + alpha^2)"))

    assert explanation_sections(Ex()) == ["BATCHNORM\nforward: mean 0, std 1\n\nbackward: 1.467 per block",
                                          "RESIDUAL\np^l = p^(l-1) (1 + alpha^2)"]
    assert explanation_sections(object()) == []


async def test_explain_tab_shows_the_block_section_for_a_bn_run():
    app = InitScopeApp(parse_spec(**BN), engine=FakeEngine())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("f7")
        await pilot.pause()
        panel = app.query_one("#explain-view")
        keys = [s.key for s in panel.sections]
        assert keys.index("activation") < keys.index("block") < keys.index("theory")
        assert panel.query_one("#explain-block-title").display
        assert "norm batchnorm: per unit over the batch" in str(panel.query_one("#explain-block-body").content)
        compare = next(s.body for s in panel.sections if s.key == "compare")
        assert "normed std" in compare and "out std" not in compare
        app.load_form(app.current.spec.with_changes(norm="none"))
        app.start_run(app.form_spec())
        await settle(pilot)
        assert not panel.query_one("#explain-block-title").display  # a plain block: no Block section


def test_fake_engine_follows_the_interfaces_arrays_where_the_theory_has_them(monkeypatch):
    import tests.tui.fake_engine as fake_module

    real = fake_module.predict_or_reason
    L = 6
    out_std = 2.0 ** (np.arange(1, L + 1) / 2)  # alpha = 1 He relu: p^l = 2^l

    class WithBlocks:
        def __init__(self, pred):
            self._pred = pred
            self.normed_mean, self.normed_std = np.zeros(L), np.ones(L)
            self.out_mean, self.out_std = np.zeros(L), out_std
            self.grad_out_std = out_std[::-1].copy()
            self.normed_std[2] = np.nan  # no prediction at block 3: the fake borrows pre's there

        def __getattr__(self, name):
            return getattr(self._pred, name)

    monkeypatch.setattr(fake_module, "predict_or_reason", lambda spec, **kw: WithBlocks(real(spec, **kw)))
    spec = parse_spec(arch="8192-8192x6", batch="8192", **RES_BLOCK)
    r = FakeEngine().run(spec)
    # relative noise per block <= sqrt(6/8192^2 + 1/8192) = 0.0111: 5 sd = 0.056
    assert np.allclose(r.headline("out", "std"), out_std, rtol=0.056)
    assert np.allclose(r.headline("grad_out", "std"), out_std[::-1], rtol=0.056)
    normed = r.headline("normed", "std")
    assert np.allclose(normed[[0, 1, 3, 4, 5]], 1.0, rtol=0.056)
    assert math.isclose(normed[2], r.theory.pre_std[2], rel_tol=0.056)
    assert r.first_nonfinite_layer() is None


async def test_the_batchnorm_preset_opens_on_the_gradients_on_a_log_scale():
    app = InitScopeApp(engine=FakeEngine(), preset="batchnorm")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.tensor == "grad" and app.log_y
        assert app.current.spec.norm.name == "batchnorm" and len(app.pins) == 2
        title = drawn(app, "#plot-std").splitlines()[0].strip()
        assert title.startswith("std of grad dL/dx^l  (log)")
        kinds = {s.kind for s in app.query_one("#plot-std", LayerPlot).series}
        assert {"measured", "theory"} <= kinds  # the theory line beside the measured one


async def test_the_tensor_asked_for_comes_back_with_a_run_that_has_it():
    app = InitScopeApp(engine=FakeEngine(), preset="residual")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.tensor == "out"
        for i in range(4):
            await pilot.press(str(i + 1))  # hide every pin: only the current run is on screen
        plain = app.current.spec.with_changes(residual="none")
        app.load_form(plain)
        app.start_run(plain)
        await settle(pilot)
        assert app.tensor == "post"  # no out in a plain block: its post is the block output
        app.load_form(plain.with_changes(residual="rezero"))
        app.start_run(app.form_spec())
        await settle(pilot)
        assert app.tensor == "out"


def test_distribution_draws_a_tensor_on_its_own_bins():
    res = make_result("8-8x3", lo=-10, hi=10, **RES_BLOCK)
    own = np.linspace(-4.0, 4.0, 41)  # normed's own bins, as RunResult.edges(tensor) gives them
    res.hist["normed"] = np.broadcast_to(np.histogram(np.zeros(1), own)[0] * 0.0, res.hist["normed"].shape).copy()
    res.hist["normed"][:, :, 30] = 100.0  # every count in the bin [2, 2.2)

    class WithEdges:  # the interface's RunResult.edges, on the helper's result
        def __init__(self, r):
            self._r = r

        def edges(self, tensor):
            return own if tensor == "normed" else self._r.hist_edges

        def __getattr__(self, name):
            return getattr(self._r, name)

    text = "\n".join("".join(seg.text for seg in line) for line in render_distribution(WithEdges(res), "normed", 60, 14).lines)
    labels = [line.split()[0] for line in text.splitlines()[1:-3] if line.split() and line.split()[0][0] in "-0123456789"]
    assert labels and max(abs(float(x)) for x in labels) <= 4.0  # the axis is normed's [-4, 4], not pre's [-10, 10]
