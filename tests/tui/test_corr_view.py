"""The Corr tab (tui/widgets/corr.py), the form's pairs field and Explain's Correlation section (docs/pairs.md)."""

from __future__ import annotations

from initscope.engine import parse_spec, run
from initscope.tui.app import InitScopeApp
from initscope.tui.widgets.corr import NO_PAIRS, CorrView
from initscope.tui.widgets.explain_panel import explain_sections
from initscope.tui.widgets.layer_plot import LayerPlot
from textual.widgets import Input, TabbedContent

from tests.tui.conftest import settle


async def test_corr_tab_draws_measured_and_mean_field_and_the_form_turns_pairs_off(fake):
    app = InitScopeApp(parse_spec(arch="64-64x8", pair_corr="0.5"), engine=fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("f10")
        await pilot.pause()
        assert app.query_one("#tabs", TabbedContent).active == "corr"
        plot = app.query_one(CorrView).query_one("#plot-corr", LayerPlot)
        kinds = sorted(s.kind for s in plot.series)
        # band lo and hi, measured pre and post, mean-field pre and post
        assert kinds == ["band", "band", "measured", "measured", "theory", "theory"], kinds
        assert plot.title.startswith("c^l of input pairs (c^0 ") and "xi_c inf" in plot.title
        assert plot.message == "" and plot.drawn_points > 0
        box = app.query_one("#f-pair_corr", Input)
        assert box.value == "0.5"
        box.value = "1.5"  # not a correlation: marked, no run
        await pilot.pause()
        assert "pair_corr" in app.query_one("#err-pair_corr").render().plain and box.has_class("-invalid")
        box.value = "none"
        await settle(pilot)
        assert app.current.spec.pair_corr is None and app.current.corr is None
        assert plot.message == NO_PAIRS and not plot.series


def test_explain_has_a_correlation_section_only_with_pairs():
    spec = parse_spec(arch="32-32x3", batch="8", device="cpu", pair_corr="0.5")
    result = run(spec)
    sections = {s.key: s for s in explain_sections(spec, result)}
    body = sections["corr"].body
    assert "32 input pairs of correlation 0.5" in body and "c^0 measured" in body
    assert "c^3 pre" in body and "xi_c = infinite" in body  # He + ReLU, no bias: the critical point
    assert "corr" not in {s.key for s in explain_sections(parse_spec(arch="32-32x3"), None)}
