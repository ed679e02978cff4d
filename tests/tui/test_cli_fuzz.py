"""Fuzz the `initscope` command in-process: 1,200 generated invocations of run, explain, list and the app.

Every field gets valid, random and adversarial text (huge numbers, unicode, empty, nested parentheses,
quotes, NUL bytes, hostile files). The promise checked for each: no traceback and no "unexpected failure";
exit 0, or 2 with exactly one line on stderr (and no warning printed beside it). Exit 1 (a valid spec
whose run failed) would need a cause outside the input, such as a full disk or a lost GPU: none of these
tiny runs on a working machine has one, so it is not accepted either. Runs stay tiny: a valid spec bigger than TINY is re-aimed at a small architecture by a last --arch
(argparse keeps the last), so the fuzz tests the parsing, not the machine; flags for the app that are
valid would open it, so they are explained instead (the app's refusals are checked as they are).
"""

from __future__ import annotations

import io
import random
import warnings
import zipfile
from collections import Counter

import numpy as np
import pytest
import torch
from initscope.engine.catalog import ACTIVATIONS, BIASES, DATA, INITS
from initscope.engine.presets import PRESETS
from initscope.tui.cli import build_parser, main, spec_from_args

SEED = 8
COUNT = 1200

HUGE = ["1" + "0" * 400, "9" * 5000, "1e309", "-1e400", "1e308", "-1e308", "1e-320", "inf", "-inf", "nan"]
ODD = ["", " ", "é", "∞", "\u2028", "😀", "\x00", "٣", "１２", "'", '"', "\\", "(", ")", "=", ",", "--", "None"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Data files a user might point at: good ones and every kind that once crashed the run."""
    d = tmp_path_factory.mktemp("fuzzdata")
    np.save(d / "good.npy", np.random.default_rng(0).normal(size=(16, 8)))
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (2**40, 8)})
    (d / "huge.npy").write_bytes(header.getvalue() + b"\0" * 64)
    with zipfile.ZipFile(d / "notes.npz", "w") as z:
        z.writestr("notes.txt", "not an array")
    with zipfile.ZipFile(d / "huge.npz", "w") as z:
        z.writestr("x.npy", header.getvalue() + b"\0" * 64)
    np.savez(d / "good.npz", a=np.ones((4, 8)))
    torch.save(torch.eye(8).to_sparse(), d / "sparse.pt")
    torch.save({"w": torch.ones(4, 8)}, d / "dict.pt")
    (d / "header.csv").write_text("a,b,c,d,e,f,g,h\n")
    (d / "text.csv").write_text("1,2,3,4,5,6,7,8\nx,y,z,w,v,u,t,s\n")
    (d / "garbage.npy").write_bytes(b"\x93NUMPY garbage")
    (d / "empty.csv").write_text("")
    (d / "nan.npy").write_bytes(b"")
    np.save(d / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (d / "adir.npy").mkdir()
    return d


def _value(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.35:
        return rng.choice(["0", "1", "-1", "0.5", "2", "1e-3", "3", "0.1", "1000", "true", "false", "fan_in",
                           "fan_out", "auto", "none"])
    if pick < 0.6:
        return rng.choice(HUGE)
    if pick < 0.8:
        return rng.choice(ODD) + rng.choice(["", "1", "abc", "x y"])
    return rng.choice(['"quoted, (text)"', "'1'", '"unclosed', "(1)", "1=2", "a b", "1" * 60, "1e", ".", "+",
                       "-", "1_000", "0x10", "1.2.3"])


def _call(rng: random.Random, table: dict) -> str:
    pick = rng.random()
    if pick < 0.08:  # structural nonsense
        n = rng.choice([1, 3, 1000])
        return rng.choice(["", " ", "(", ")", "()", "name(", "x" * 20_000, "(" * n + ")" * n,
                           f"relu{'(' * n}{')' * n}", "relu(a=1", "relu)", "1relu", "relu relu", "relu,",
                           "relu(=1)", "relu(a==1)", "relu(a=1,)", "relu(a=1, a=2)", "relu(a=(1))"])
    name = rng.choice(list(table)) if pick < 0.9 else rng.choice(["Normal", "kaiming", "rélu", "", "x" * 50,
                                                                  "__init__", "eval", "none"])
    entry = table.get(name)
    keys = [p.name for p in entry.params] if entry else []
    params = []
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
        key = rng.choice(keys) if keys and rng.random() < 0.85 else rng.choice(["bogus", "std", "a", "é", ""])
        params.append(f"{key}={_value(rng)}")
    if not params and rng.random() < 0.5:
        return name
    sep = rng.choice([", ", ",", " , "])
    return f"{name}({sep.join(params)})"


def _valid_call(rng: random.Random, table: dict) -> str:
    """A catalog name with some of its parameters at ordinary values (a < b not guaranteed: may be refused)."""
    entry = table[rng.choice([n for n in table if n not in ("file", "digits")])]
    params = []
    for p in entry.params:
        if rng.random() < 0.5:
            continue
        if p.kind == "choice":
            value = rng.choice(p.choices)
        elif p.kind == "bool":
            value = rng.choice(["true", "false"])
        elif p.kind == "int":
            value = rng.choice(["1", "3", "10"])
        else:
            value = rng.choice(["0.5", "1", "2", "0.1", "-2", "3", "1e-6", "50", "1e308", "-0.5"])
        params.append(f"{p.name}={value}")
    return f"{entry.name}({', '.join(params)})" if params else entry.name


def _data(rng: random.Random, files) -> str:
    if rng.random() < 0.4:
        name = rng.choice(["good.npy", "huge.npy", "notes.npz", "huge.npz", "good.npz", "sparse.pt", "dict.pt",
                           "header.csv", "text.csv", "garbage.npy", "empty.csv", "nan.npy", "objects.npy",
                           "adir.npy", "missing.npy", "x.txt"])
        extra = rng.choice(["", ", normalize=true", ", key=a", ", key=notes.txt", ", key=w", ", normalize=2"])
        return f"file(path={files / name}{extra})"
    if rng.random() < 0.05:
        return "digits" if rng.random() < 0.5 else "file(path=\x00.npy)"
    return _call(rng, DATA)


def _arch(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.45:
        return rng.choice(["4-4", "8-8x3", "16-8-4", "8-4", "64-16", "8x3", " 4 - 4 ", "4-1-4", "1-1", "8-8X2",
                           "8*2", "٨-٤", "0008-4"])
    if pick < 0.7:
        return rng.choice(["", " ", "784", "0-10", "-10-10", "10--10", "10-abc", "10x0", "10-1.5", "1-2x999999",
                           "9" * 4400 + "-10", "10-10x" + "9" * 5000, "1" + "0" * 30 + "-4", "4-4)", "4–4",
                           "(4-4)", "4-4\x00", "4-4\n4", "∞-4", "4-4x-1", "4-", "4-4x1x2", "2000000-1",
                           "4-4x100001", "4" * 20])
    tokens = ["4", "8", "x", "-", " ", "0", "99999999", "X", "*", ".", "é", "9" * 400]
    return "".join(rng.choice(tokens) for _ in range(rng.randint(0, 8)))


def _pick(rng, valid, bad, p_valid=0.6):
    return rng.choice(valid) if rng.random() < p_valid else rng.choice(bad)


def invocation(rng: random.Random, files, tmp) -> list[str]:
    """One argv for main(): a command and a random subset of flags with generated values."""
    command = rng.choices(["run", "explain", "list", "app"], weights=[47, 45, 2, 6])[0]
    args = [command]
    if rng.random() < 0.45:  # a valid spec, with now and then one adversarial field
        valid = {
            "--arch": rng.choice(["4-4", "8-8x3", "16-8-4", "8-4", "8x3", "1-1", "8-16-8"]),
            "--init": _valid_call(rng, INITS), "--act": _valid_call(rng, ACTIVATIONS),
            "--bias": _valid_call(rng, BIASES),
            "--data": _valid_call(rng, DATA) if rng.random() < 0.8 else f"file(path={files / 'good.npy'})",
            "--batch": rng.choice(["1", "8", "16"]), "--seed": rng.choice(["0", "7", "9223372036854775807"]),
            "--trials": rng.choice(["1", "2"]), "--device": "cpu",
            "--dtype": rng.choice(["float32", "float64", "float32", "bfloat16", "float16"]),
        }
        for flag, text in valid.items():
            if rng.random() < 0.6:
                args += [flag, text]
        if command == "run":
            args += ["--format", rng.choices(["json", "csv", "table"], weights=[45, 45, 10])[0]]
        if rng.random() < 0.3:
            flag = rng.choice(list(valid))
            args += [flag, {"--arch": _arch, "--data": lambda r: _data(r, files)}.get(
                flag, lambda r: _call(r, INITS if flag == "--init" else ACTIVATIONS if flag == "--act" else BIASES)
                if flag in ("--init", "--act", "--bias") else rng.choice(HUGE + ODD))(rng)]
        return args
    gens = {
        "--arch": lambda: _arch(rng),
        "--init": lambda: _call(rng, INITS),
        "--act": lambda: _call(rng, ACTIVATIONS),
        "--bias": lambda: _call(rng, BIASES),
        "--data": lambda: _data(rng, files),
        "--batch": lambda: _pick(rng, ["1", "2", "8", "16", " 8 ", "+8", "08"],
                                 ["0", "-1", "1.5", "1e3", "abc", "", "16777217", "9" * 5000, "٨", "inf", "nan",
                                  "0x10", "8 8", "\x00"]),
        "--seed": lambda: _pick(rng, ["0", "1", "9223372036854775807", "00001", " 3 "],
                                ["-1", "9223372036854775808", "1e3", "abc", "", "9" * 5000, "٣"]),
        "--trials": lambda: _pick(rng, ["1", "2", "3"], ["0", "1001", "-1", "1.0", "abc", "", "9" * 400]),
        "--device": lambda: _pick(rng, ["cpu", "auto", "CPU", " cpu "],
                                  ["cuda:999", "mps", "tpu", "", "cuda:-1", "cuda:1234", "cpu\x00", "gpu"], 0.8),
        "--dtype": lambda: _pick(rng, ["float32", "float64", "bfloat16", "float16", "FLOAT32"],
                                 ["int8", "", "float", "complex64", "😀"]),
    }
    for flag, gen in gens.items():
        if rng.random() < (0.7 if flag in ("--arch", "--init", "--act") else 0.3):
            args += [flag, gen()]
    if rng.random() < 0.1:
        args.append(rng.choice(["--no-grad", "--grad"]))
    if rng.random() < 0.05:
        args += ["--preset", rng.choice(list(PRESETS) + ["nope", "", "LESSON8"])]
    if command == "run":
        if rng.random() < 0.3:
            args += ["--format", rng.choice(["table", "json", "csv", "xml", ""])]
        if rng.random() < 0.1:
            args += ["--output", rng.choice([str(tmp / "out.json"), str(tmp / "missing" / "x.json"), str(tmp),
                                             "", str(tmp / "x\x00y.json")])]
    if rng.random() < 0.05:  # argparse's own complaints
        args += rng.choice([["--bogus"], ["--arch"], ["stray"], ["--arch=4-4", "--arch", "8-8"], ["-x", "1"],
                            ["--init", "--act"], ["--é"]])
    return args


TINY = 64 * 64 * 4  # entries of W x per layer summed, times batch and trials: anything above is re-aimed


def keep_tiny(argv: list[str]) -> list[str]:
    """A valid spec too big for a unit test gets a last --arch/--batch that makes it tiny (argparse keeps the
    last value); explain only needs a moderate depth. Anything the parser refuses is left as it is."""
    command = argv[0]
    if command == "list":
        return argv
    try:
        ns = build_parser()[command].parse_args(argv[1:])
        specs = [spec for _, spec in spec_from_args(ns)]
    except BaseException:  # noqa: BLE001 - main() must handle it: that is what is under test
        return argv
    if command == "app":  # valid flags would open the app: explain them instead
        return keep_tiny(["explain"] + argv[1:])
    if command == "explain":
        return argv + ["--arch", "8-8x4"] if any(s.depth > 200 for s in specs) else argv
    cost = max(sum(a * b for a, b in zip(s.arch[:-1], s.arch[1:], strict=True)) * s.batch * s.trials
               for s in specs)
    return argv if cost <= TINY else argv + ["--arch", f"{specs[0].arch[0]}-8", "--batch", "8", "--trials", "1"]


def test_a_thousand_generated_invocations_exit_cleanly(files, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("INITSCOPE_DEBUG", raising=False)
    rng = random.Random(SEED)
    codes: Counter = Counter()
    problems: list[str] = []
    for i in range(COUNT):
        argv = keep_tiny(invocation(rng, files, tmp_path))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                code = main(argv[1:] if argv[0] == "app" else list(argv))  # the app has no command word
            except SystemExit as e:  # only argparse's --help would; none is generated
                code = f"SystemExit({e.code})"
            except BaseException as e:  # noqa: BLE001
                code = f"raised {type(e).__name__}: {str(e)[:120]}"
        out, err = capsys.readouterr()
        codes[code] += 1
        lines = err.splitlines()
        bad = None
        if code not in (0, 2):
            bad = f"exit {code}"
        elif "Traceback" in err or "unexpected failure" in err:
            bad = "a traceback or an unexpected failure"
        elif code == 2 and (len(lines) != 1 or not err.startswith("initscope: ") or caught):
            bad = f"exit 2 with {len(lines)} lines and {len(caught)} warnings"
        elif code == 0 and argv[0] in ("explain", "list") and not out:
            bad = "exit 0 without output"
        if bad:
            shown = [a if len(a) < 80 else a[:60] + f"...({len(a)})" for a in argv]
            problems.append(f"#{i} {shown!r}: {bad}: {err[:300]!r}")
    assert not problems, f"{len(problems)} of {COUNT} invocations broke the CLI's promise:\n" + "\n".join(
        problems[:25])
    # the fuzz reaches both sides: plenty of real runs and explanations, plenty of refusals
    assert codes[0] >= 250 and codes[2] >= 400, codes
