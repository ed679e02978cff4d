"""engine.theory is numpy only: importing it and predicting never loads torch or scipy."""

import subprocess
import sys


def test_theory_never_imports_torch_or_scipy():
    code = ("import sys, initscope.engine.theory as t; from initscope.engine.spec import parse_spec; "
            "s = parse_spec(arch='64x5', act='gelu'); t.predict(s); t.explain(s).to_text(); "
            "bad = [m for m in ('torch', 'scipy') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
