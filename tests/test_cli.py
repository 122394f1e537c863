"""The ``layerkit`` command: check, sweep, exit codes, usage errors, JSON, progress."""

from __future__ import annotations

import io
import json
import re
import runpy
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

import layerkit as lk
from layerkit import cli
from layerkit.cli import main, progress
from layerkit.testing import inject_seed_bugs

SEED_TENSORS = ["W1", "b1", "W2", "b2", "W3", "b3"]
LAYER_0 = "layer 0 (Linear(4->5))"
LAYER_2 = "layer 2 (Linear(5->3))"


@attrs.frozen
class Run:
    """One in-process run of ``main``: exit code and captured streams."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    code = main(list(argv))
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def table_rows(out: str) -> list[str]:
    """First column of the report's table rows (after the dashed rule)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("------")) + 1
    names = []
    for line in lines[start:]:
        if not line.strip() or " " not in line:
            break
        names.append(line.split()[0])
    return names


def failing(report: dict[str, Any]) -> set[str]:
    return {t["name"] for t in report["tensors"] if t["verdict"] == "fail"}


class TestCheck:
    def test_default_checks_the_seed_case_and_passes(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """No arguments: the seed's fraud net, a row per tensor W1..b3, PASS, exit 0."""
        result = run(capsys, "check")
        assert result.code == 0
        assert table_rows(result.out) == SEED_TENSORS
        assert "seed notebook's fraud net" in result.out
        assert result.out.rstrip().splitlines()[-1].startswith("PASS")
        assert result.err == ""

    def test_seed_bugs_fail_on_exactly_w2_and_b1(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The notebook's two bugs: exit 1, the failing tensors are W2 and b1 and nothing else."""
        result = run(capsys, "check", "--inject-seed-bugs", "--json")
        assert result.code == 1
        report = result.json()
        assert report["verdict"] == "fail"
        assert failing(report) == {"W2", "b1"}
        assert set(report["culprits"]) == {LAYER_0, LAYER_2}

    def test_seed_bugs_named_in_the_text_output(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The text report says FAIL and names both tensors and their layers."""
        result = run(capsys, "check", "--inject-seed-bugs")
        assert result.code == 1
        last = result.out.rstrip().splitlines()[-1]
        assert last.startswith("FAIL") and "W2" in last and "b1" in last
        assert LAYER_0 in last and LAYER_2 in last

    def test_per_layer_passes_on_the_seed_case(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Each of the six layers is checked; none is faulty."""
        result = run(capsys, "check", "--per-layer", "--json")
        assert result.code == 0
        report = result.json()
        assert report["first_faulty"] is None
        assert [layer["index"] for layer in report["layers"]] == list(range(6))

    def test_per_layer_names_the_faulty_layers(self, capsys: pytest.CaptureFixture[str]) -> None:
        """With the seed's bugs, the two Linear layers holding b1 and W2 fail in isolation."""
        data = run(capsys, "check", "--per-layer", "--inject-seed-bugs", "--json")
        assert data.code == 1
        report = data.json()
        assert report["first_faulty"] == LAYER_0
        faulty = {layer["label"] for layer in report["layers"] if layer["verdict"] == "fail"}
        assert faulty == {LAYER_0, LAYER_2}
        text = run(capsys, "check", "--per-layer", "--inject-seed-bugs")
        assert text.code == 1
        assert f"first faulty layer: {LAYER_0}" in text.out
        assert LAYER_2 in text.out.rstrip().splitlines()[-1]

    def test_json_is_the_report_and_nothing_else(self, capsys: pytest.CaptureFixture[str]) -> None:
        """stdout parses as one JSON document: the report's to_dict; stderr stays empty."""
        result = run(capsys, "check", "--json")
        case = lk.fraud_net_seed_case()
        expected = lk.check_model(case.model, case.x, case.y).to_dict()
        assert result.json() == json.loads(json.dumps(expected))
        assert result.err == ""

    def test_float32_model_passes(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A float32 model is checked on float64 copies: it passes."""
        result = run(capsys, "check", "--dtype", "float32")
        assert result.code == 0
        assert "float32" in result.out
        assert table_rows(result.out) == SEED_TENSORS

    def test_float32_keeps_the_seed_bugs(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The dtype conversion does not drop the planted bugs."""
        result = run(capsys, "check", "--dtype", "float32", "--inject-seed-bugs", "--json")
        assert result.code == 1
        assert failing(result.json()) == {"W2", "b1"}

    def test_fast_mode(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Fast mode passes the seed case and localises the seed's bugs to W2 and b1."""
        good = run(capsys, "check", "--mode", "fast", "--json")
        assert good.code == 0 and good.json()["mode"] == "fast"
        bad = run(capsys, "check", "--mode", "fast", "--inject-seed-bugs", "--json")
        assert bad.code == 1
        assert failing(bad.json()) == {"W2", "b1"}

    def test_sampled_mode_checks_samples_entries(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Sampled mode checks --samples entries per tensor (all of a smaller one)."""
        result = run(capsys, "check", "--mode", "sampled", "--samples", "3", "--json")
        assert result.code == 0
        report = result.json()
        assert report["mode"] == "sampled"
        assert [t["checked"] for t in report["tensors"]] == [3, 3, 3, 3, 3, 1]

    def test_sampled_mode_finds_the_seed_bugs(self, capsys: pytest.CaptureFixture[str]) -> None:
        """b1 (5 entries, all sampled) fails; nothing but W2 and b1 ever does."""
        result = run(capsys, "check", "--mode", "sampled", "--inject-seed-bugs", "--json")
        assert result.code == 1
        names = failing(result.json())
        assert "b1" in names and names <= {"W2", "b1"}

    def test_rtol_reaches_the_checker(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--rtol is the report's rtol."""
        result = run(capsys, "check", "--rtol", "1e-5", "--json")
        assert result.code == 0 and result.json()["rtol"] == 1e-5


class TestArch:
    def test_arch_builds_that_mlp(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--arch 6,4,1: tensors W1 (4, 6), b1, W2 (1, 4), b2, and no failure."""
        result = run(capsys, "check", "--arch", "6,4,1", "--batch", "5", "--json")
        report = result.json()
        shapes = {t["name"]: t["shape"] for t in report["tensors"]}
        assert shapes == {"W1": [4, 6], "b1": [4], "W2": [1, 4], "b2": [1]}
        assert report["verdict"] != "fail"
        assert result.code == cli.EXIT_CODES[report["verdict"]]

    def test_arch_uses_seed_and_batch(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Same seed, same case; another seed or batch, another case."""
        base = ["check", "--arch", "6,4,1", "--json"]
        first = run(capsys, *base, "--seed", "3").json()
        again = run(capsys, *base, "--seed", "3").json()
        other = run(capsys, *base, "--seed", "4").json()
        bigger = run(capsys, *base, "--seed", "3", "--batch", "20").json()
        assert first["loss"] == again["loss"]
        assert other["loss"] != first["loss"] and bigger["loss"] != first["loss"]

    def test_arch_data_matches_build_case(self) -> None:
        """The data has --batch rows of N(0, 1) features and 0/1 labels."""
        case = cli.build_case((6, 4, 2), batch=7, seed=1)
        assert case.x.shape == (7, 6) and case.y.shape == (7, 2)
        assert set(np.unique(case.y)) <= {0.0, 1.0}
        reference = lk.mlp((6, 4, 2), seed=1)
        for name, array in case.model.params().items():
            np.testing.assert_array_equal(array, reference.params()[name])

    def test_seed_bugs_on_an_arch_land_on_w2_and_b1(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--arch with --inject-seed-bugs: W2 and b1 of the mlp fail, the rest does not."""
        result = run(
            capsys, "check", "--arch", "6,4,1", "--batch", "5", "--inject-seed-bugs", "--json"
        )
        assert result.code == 1
        assert failing(result.json()) == {"W2", "b1"}

    def test_seed_bugs_with_per_layer_on_an_arch(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Per layer, both Linear layers of a 6,4,1 mlp are faulty."""
        result = run(
            capsys,
            "check",
            "--arch",
            "6,4,1",
            "--batch",
            "5",
            "--inject-seed-bugs",
            "--per-layer",
            "--json",
        )
        assert result.code == 1
        report = result.json()
        faulty = [layer["label"] for layer in report["layers"] if layer["verdict"] == "fail"]
        assert faulty == ["layer 0 (Linear(6->4))", "layer 2 (Linear(4->1))"]


class TestInjectSeedBugs:
    def test_scales_exactly_dw2_and_db1(self) -> None:
        """dW2 doubled, db1 times four, every other gradient and the loss unchanged."""
        case = lk.fraud_net_seed_case()
        bugged = inject_seed_bugs(case.model)
        loss, grads = case.model.loss_and_grad(case.x, case.y)
        bugged_loss, bugged_grads = bugged.loss_and_grad(case.x, case.y)
        assert bugged_loss == loss
        factors = {"W2": 2.0, "b1": 4.0}
        for name, grad in grads.items():
            np.testing.assert_array_equal(bugged_grads[name], factors.get(name, 1.0) * grad)

    def test_leaves_the_model_alone(self) -> None:
        """The original model keeps its layers and its correct gradients."""
        case = lk.fraud_net_seed_case()
        layers = case.model.layers
        inject_seed_bugs(case.model)
        assert case.model.layers == layers
        assert lk.check_model(case.model, case.x, case.y).verdict == "pass"

    def test_survives_astype(self) -> None:
        """Casting the bugged model keeps the bugs."""
        case = lk.fraud_net_seed_case()
        bugged = inject_seed_bugs(case.model).astype(np.float32)
        report = lk.check_model(bugged, case.x, case.y, localise=False)
        assert set(report.failed) == {"W2", "b1"}


USAGE_ERRORS = [
    (["check", "--mode", "nope"], "--mode"),
    (["check", "--arch", "4,x"], "--arch"),
    (["check", "--arch", "4"], "--arch"),
    (["check", "--arch", "4,0,1"], "--arch"),
    (["check", "--batch", "0"], "--batch"),
    (["check", "--batch", "3"], "--batch"),
    (["check", "--dtype", "int8"], "--dtype"),
    (["check", "--samples", "0"], "--samples"),
    (["check", "--seed", "-1"], "--seed"),
    (["check", "--rtol", "2"], "--rtol"),
    (["check", "--rtol", "nan"], "--rtol"),
    (["check", "--arch", "4,1", "--inject-seed-bugs"], "W2 and b1"),
    (["check", "--frobnicate"], "--frobnicate"),
    (["check", "extra"], "extra"),
    (["sweep", "--points", "1"], "--points"),
    (["nope"], "nope"),
    ([], "command"),
]


class TestUsageErrors:
    @pytest.mark.parametrize(("argv", "named"), USAGE_ERRORS)
    def test_exit_2_with_one_line(
        self, capsys: pytest.CaptureFixture[str], argv: list[str], named: str
    ) -> None:
        """Exit 2, one 'layerkit: error:' line on stderr naming the problem, no traceback."""
        result = run(capsys, *argv)
        assert result.code == 2
        assert result.out == ""
        lines = result.err.splitlines()
        assert len(lines) == 1, result.err
        assert lines[0].startswith("layerkit: error: ")
        assert named in lines[0]
        assert "Traceback" not in result.err


class TestProgress:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    def test_bar_on_a_terminal(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """stderr a terminal, the run long enough: a bar with count, erased at the end."""
        terminal = self.Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        monkeypatch.setattr(progress, "BAR_AFTER_SECONDS", -1.0)
        code = main(["check"])
        out = capsys.readouterr().out
        assert code == 0
        written = terminal.getvalue()
        assert "checking 47 parameters" in written and "0/47" in written and "47/47" in written
        assert written.endswith("\r") and written.rstrip("\r").split("\r")[-1].strip() == ""
        assert "checking" not in out and table_rows(out) == SEED_TENSORS

    def test_bar_counts_blocks_of_a_larger_check(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A 1k-parameter check reports several intermediate counts, increasing to the total."""
        terminal = self.Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        monkeypatch.setattr(progress, "BAR_AFTER_SECONDS", -1.0)
        assert main(["check", "--arch", "30,30,1", "--batch", "4"]) == 0
        capsys.readouterr()
        counts = [tuple(map(int, m)) for m in re.findall(r"\] (\d+)/(\d+)", terminal.getvalue())]
        total = 30 * 30 + 30 + 30 + 1
        assert counts[0] == (0, total) and counts[-1] == (total, total)
        done = [d for d, _ in counts]
        assert len(set(done)) > 2 and done == sorted(done)

    @pytest.mark.parametrize("flag", ["--json", "--quiet"])
    def test_no_bar_with_json_or_quiet(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, flag: str
    ) -> None:
        """--json and --quiet keep stderr silent even on a terminal."""
        terminal = self.Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        monkeypatch.setattr(progress, "BAR_AFTER_SECONDS", -1.0)
        assert main(["check", flag]) == 0
        capsys.readouterr()
        assert terminal.getvalue() == ""

    def test_no_bar_for_a_quick_check(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A check that ends before BAR_AFTER_SECONDS draws nothing on stderr (a stopped
        clock: the test does not depend on how fast this machine runs the check)."""
        terminal = self.Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        monkeypatch.setattr(progress, "CLOCK", lambda: 0.0)
        assert main(["check"]) == 0
        capsys.readouterr()
        assert terminal.getvalue() == ""

    def test_no_bar_off_a_terminal(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Redirected stderr (not a terminal): no bar, however long the run."""
        monkeypatch.setattr(progress, "BAR_AFTER_SECONDS", -1.0)
        assert run(capsys, "check").err == ""

    def test_eta_from_the_rate_so_far(self) -> None:
        """10 of 40 done in 5 s: 30 left at 0.5 s each is 15 s; the count is shown."""
        now = [100.0]
        stream = io.StringIO()
        bar = progress.ProgressBar(stream, "checking", after=0.0, clock=lambda: now[0])
        now[0] = 105.0
        bar(10, 40)
        assert "10/40" in stream.getvalue() and "ETA 15s" in stream.getvalue()
        now[0] = 110.0
        bar(40, 40)
        assert stream.getvalue().rstrip(" ").endswith("40/40  done")
        bar.close()
        assert stream.getvalue().endswith("\r")

    def test_sweep_bar(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The sweep reports one unit per step."""
        terminal = self.Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        monkeypatch.setattr(progress, "BAR_AFTER_SECONDS", -1.0)
        assert main(["sweep", "--points", "3"]) == 0
        capsys.readouterr()
        assert "0/4" in terminal.getvalue() and "4/4" in terminal.getvalue()


def sweep_rows(out: str) -> list[tuple[float, float, str]]:
    """(step, difference, marks) of each row of the sweep table."""
    rows = []
    for line in out.splitlines():
        match = re.match(r"\s*(\S+e[-+]\d+)\s+(\S+)\s+(\S+)(.*)$", line)
        if match:
            rows.append((float(match[1]), float(match[2]), match[4]))
    return rows


class TestSweep:
    def test_table_has_the_v_shape(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Minimum error at a middle step, far below both ends; minimum and default marked."""
        result = run(capsys, "sweep")
        assert result.code == 0 and result.err == ""
        rows = sweep_rows(result.out)
        assert len(rows) == 26
        assert rows[0][0] == pytest.approx(1e-1) and rows[-1][0] == pytest.approx(1e-13)
        errors = [r[1] for r in rows]
        best = int(np.argmin(errors))
        assert 0 < best < len(rows) - 1
        assert errors[best] < 1e-4 * errors[0] and errors[best] < 1e-4 * errors[-1]
        assert "minimum difference" in rows[best][2]
        default = [r for r in rows if "layerkit default" in r[2]]
        assert len(default) == 1 and default[0][0] == pytest.approx(
            lk.gradcheck.DEFAULT_STEP, rel=1e-2
        )

    def test_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--json: one document, --points + 1 points (the default step added)."""
        result = run(capsys, "sweep", "--points", "7", "--json")
        assert result.code == 0
        data = result.json()
        assert len(data["points"]) == 8
        assert data["parameters"] == 47

    def test_arch(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--arch sweeps that mlp's parameters."""
        result = run(capsys, "sweep", "--arch", "3,2,1", "--points", "4", "--json")
        assert result.code == 0 and result.json()["parameters"] == 3 * 2 + 2 + 2 + 1

    def test_plot_writes_a_png(self, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        """--plot FILE writes a PNG and says where."""
        target = tmp_path / "sweep.png"
        result = run(capsys, "sweep", "--points", "5", "--plot", str(target))
        assert result.code == 0
        assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert str(target) in result.out

    def test_plot_with_json_keeps_stdout_json(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """--plot and --json: the PNG is written, stdout is only JSON."""
        target = tmp_path / "sweep.png"
        result = run(capsys, "sweep", "--points", "3", "--plot", str(target), "--json")
        assert result.code == 0 and target.exists()
        assert "points" in result.json()

    def test_plot_without_matplotlib(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """No matplotlib: exit 2, one line telling how to install it."""
        for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
            monkeypatch.setitem(sys.modules, name, None)
        result = run(capsys, "sweep", "--points", "3", "--plot", str(tmp_path / "x.png"))
        assert result.code == 2
        assert result.err.splitlines() == [result.err.strip()]
        assert 'pip install "layerkit[plot]"' in result.err
        assert not (tmp_path / "x.png").exists()

    def test_plot_to_an_unwritable_path(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """A missing directory: exit 2, one line naming the file."""
        target = tmp_path / "missing" / "x.png"
        result = run(capsys, "sweep", "--points", "3", "--plot", str(target))
        assert result.code == 2
        assert len(result.err.splitlines()) == 1 and str(target) in result.err


class TestCommand:
    def test_version(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--version prints the package version."""
        result = run(capsys, "--version")
        assert result.code == 0 and result.out.strip() == f"layerkit {lk.__version__}"

    def test_help_lists_commands_and_exit_codes(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--help names both commands and the exit codes."""
        result = run(capsys, "--help")
        assert result.code == 0
        assert "check" in result.out and "sweep" in result.out and "exit codes" in result.out

    @pytest.mark.parametrize(
        ("command", "options"),
        [
            ("check", ["--arch", "--batch", "--seed", "--mode", "--samples", "--per-layer",
                       "--inject-seed-bugs", "--dtype", "--rtol", "--json", "--atol", "--step",
                       "--safety", "--directions", "--worst", "--model", "--params", "--data",
                       "--quiet"]),
            ("sweep", ["--arch", "--points", "--plot", "--json", "--model", "--params",
                       "--data", "--quiet"]),
        ],
    )  # fmt: skip
    def test_command_help_lists_its_options(
        self, capsys: pytest.CaptureFixture[str], command: str, options: list[str]
    ) -> None:
        """Each command's --help describes every option."""
        result = run(capsys, command, "--help")
        assert result.code == 0
        for option in options:
            assert option in result.out

    def test_python_dash_m_layerkit(self) -> None:
        """``python -m layerkit check --inject-seed-bugs``: exit 1, FAIL naming W2 and b1."""
        done = subprocess.run(
            [sys.executable, "-m", "layerkit", "check", "--inject-seed-bugs", "--quiet"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 1, done.stderr
        assert done.stdout.startswith("FAIL") and "W2" in done.stdout and "b1" in done.stdout

    def test_python_dash_m(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``python -m layerkit.cli check`` runs main and exits with its code."""
        monkeypatch.setattr(sys, "argv", ["layerkit", "check", "--inject-seed-bugs"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # runpy: module already imported
            with pytest.raises(SystemExit) as stop:
                runpy.run_module("layerkit.cli", run_name="__main__")
        assert stop.value.code == 1
        assert "FAIL" in capsys.readouterr().out

    def test_installed_console_script(self) -> None:
        """The installed ``layerkit`` script runs the default check: exit 0, W1..b3 rows."""
        script = Path(sys.executable).with_name("layerkit")
        command = str(script) if script.exists() else shutil.which("layerkit")
        assert command is not None, "the layerkit console script is not installed"
        done = subprocess.run(
            [command, "check"], capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr
        assert table_rows(done.stdout) == SEED_TENSORS
        assert done.stderr == ""


USER_MODEL = '''
"""A user's own network: a custom layer and a custom loss."""

import numpy as np

import layerkit as lk
from layerkit.losses import Loss


class Cube(lk.Layer):
    """y = x**3 / 3 elementwise; ``bug`` scales its input gradient (1: correct)."""

    def __init__(self, bug=1.0):
        self.bug = bug

    def params(self):
        return {}

    def forward(self, x, *, noise=None):
        return x**3 / 3, x

    def backward(self, cache, grad_out):
        return self.bug * grad_out * cache**2, {}


class LogCosh(Loss):
    """mean_k log(cosh(out - y)); ``bug`` scales its gradient."""

    def __init__(self, bug=1.0):
        self.bug = bug

    def sample_losses(self, out, y):
        return np.log(np.cosh(out - y)).mean(axis=-1)

    def sample_grads(self, out, y):
        return self.bug * np.tanh(out - y) / out.shape[-1]


def build(cube_bug=1.0, loss_bug=1.0):
    return lk.Sequential(
        lk.Linear(3, 4, seed=1), Cube(cube_bug), lk.Linear(4, 2, seed=2), loss=LogCosh(loss_bug)
    )


def build_buggy_layer():
    return build(cube_bug=1.5)


def build_buggy_loss():
    return build(loss_bug=0.5)


def not_a_model():
    return 42


def raises():
    raise RuntimeError("cannot build today")


NUMBER = 3
'''


@attrs.frozen
class UserFiles:
    """A user's model file, a parameter file and a data file in ``tmp_path``."""

    model: Path
    params: Path
    data: Path
    loss: float
    """The loss at the saved parameters and data, computed here (not by the CLI)."""


@pytest.fixture
def user_files(tmp_path: Path) -> UserFiles:
    model_file = tmp_path / "my_net.py"
    model_file.write_text(USER_MODEL, encoding="utf-8")
    namespace = runpy.run_path(str(model_file))
    model = namespace["build"]()
    rng = np.random.default_rng(7)
    model.set_params({k: v + 0.1 * rng.standard_normal(v.shape) for k, v in model.params().items()})
    params = lk.save_params(model, tmp_path / "weights.npz")
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    np.savez(tmp_path / "batch.npz", x=x, y=y)
    loss, _ = model.loss_and_grad(x, y)
    return UserFiles(model_file, params, tmp_path / "batch.npz", float(loss))


def user_check(
    capsys: pytest.CaptureFixture[str], files: UserFiles, factory: str, *extra: str
) -> Run:
    return run(
        capsys, "check", "--model", f"{files.model}:{factory}", "--params", str(files.params),
        "--data", str(files.data), *extra,
    )  # fmt: skip


class TestUserModel:
    def test_correct_model_passes_with_its_params_and_data(
        self, capsys: pytest.CaptureFixture[str], user_files: UserFiles
    ) -> None:
        """The user's file, parameters and data: PASS, exit 0, at the saved parameters."""
        result = user_check(capsys, user_files, "build", "--json")
        assert result.code == 0, result.err
        report = result.json()
        assert report["verdict"] == "pass"
        assert [t["name"] for t in report["tensors"]] == ["W1", "b1", "W2", "b2"]
        assert report["loss"] == pytest.approx(user_files.loss, rel=1e-12)

    def test_text_output_names_the_files(
        self, capsys: pytest.CaptureFixture[str], user_files: UserFiles
    ) -> None:
        result = user_check(capsys, user_files, "build")
        assert result.code == 0
        first = result.out.splitlines()[0]
        assert "my_net.py:build" in first and "weights.npz" in first and "6 examples" in first

    def test_bug_in_a_custom_layer_names_that_layer(
        self, capsys: pytest.CaptureFixture[str], user_files: UserFiles
    ) -> None:
        """A wrong backward in Cube: exit 1, the tensors below it fail, Cube is the culprit."""
        result = user_check(capsys, user_files, "build_buggy_layer", "--json")
        assert result.code == 1
        report = result.json()
        assert failing(report) == {"W1", "b1"}
        assert len(report["culprits"]) == 1 and "Cube" in report["culprits"][0]
        text = user_check(capsys, user_files, "build_buggy_layer", "--quiet")
        assert text.code == 1 and text.out.startswith("FAIL") and "Cube" in text.out

    def test_bug_in_a_custom_loss_fails_without_a_faulty_layer(
        self, capsys: pytest.CaptureFixture[str], user_files: UserFiles
    ) -> None:
        """A gradient of the loss halved: every tensor fails, no layer fails alone."""
        result = user_check(capsys, user_files, "build_buggy_loss", "--json")
        assert result.code == 1
        report = result.json()
        assert failing(report) == {"W1", "b1", "W2", "b2"}
        assert any("the fault may be in the loss" in note for note in report["notes"])

    def test_module_spec_from_the_current_directory(
        self,
        capsys: pytest.CaptureFixture[str],
        user_files: UserFiles,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """``--model my_net:build`` imports the module from the current directory."""
        monkeypatch.chdir(user_files.model.parent)
        monkeypatch.delitem(sys.modules, "my_net", raising=False)
        result = run(capsys, "check", "--model", "my_net:build", "--data", "batch.npz", "--json")
        assert result.code == 0, result.err
        sys.modules.pop("my_net", None)

    def test_sweep_of_a_buggy_user_model_has_no_v(
        self, capsys: pytest.CaptureFixture[str], user_files: UserFiles
    ) -> None:
        spec = f"{user_files.model}:build_buggy_layer"
        result = run(capsys, "sweep", "--model", spec, "--data", str(user_files.data), "--quiet")
        assert result.code == 0 and result.out.startswith("NO V")

    @pytest.mark.parametrize(
        ("spec", "named"),
        [
            ("{file}:nope", "has no attribute 'nope'"),
            ("{file}:NUMBER", "not a function"),
            ("{file}:not_a_model", "must return a layerkit Sequential"),
            ("{file}:raises", "RuntimeError: cannot build today"),
            ("{folder}/missing.py:build", "no such file"),
            ("no_such_module_xyz:build", "no module named 'no_such_module_xyz'"),
            ("{file}", "module:factory"),
            ("not a module:build", "neither a module name"),
        ],
    )
    def test_model_errors(
        self, capsys: pytest.CaptureFixture[str], user_files: UserFiles, spec: str, named: str
    ) -> None:
        """Every way --model can go wrong: exit 2, one line naming the spec, no traceback."""
        text = spec.format(file=user_files.model, folder=user_files.model.parent)
        result = run(capsys, "check", "--model", text, "--data", str(user_files.data))
        assert result.code == 2 and result.out == ""
        assert len(result.err.splitlines()) == 1, result.err
        assert f"--model {text!r}" in result.err and named in result.err

    def test_import_error_in_the_users_file(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        broken = tmp_path / "broken.py"
        broken.write_text("import numpy\nx = 1 / 0\n", encoding="utf-8")
        result = run(capsys, "check", "--model", f"{broken}:f", "--data", "x.npz")
        assert result.code == 2
        assert "ZeroDivisionError" in result.err and "broken.py:2" in result.err

    def test_model_needs_data(
        self, capsys: pytest.CaptureFixture[str], user_files: UserFiles
    ) -> None:
        result = run(capsys, "check", "--model", f"{user_files.model}:build")
        assert result.code == 2 and "needs --data" in result.err

    def test_model_and_arch_exclude_each_other(
        self, capsys: pytest.CaptureFixture[str], user_files: UserFiles
    ) -> None:
        result = run(capsys, "check", "--model", "m:f", "--arch", "3,1")
        assert result.code == 2 and "--model" in result.err and "--arch" in result.err

    def test_params_from_another_architecture(
        self, capsys: pytest.CaptureFixture[str], user_files: UserFiles, tmp_path: Path
    ) -> None:
        other = lk.save_params(lk.mlp((3, 1)), tmp_path / "other.npz")
        result = run(
            capsys, "check", "--model", f"{user_files.model}:build", "--params", str(other),
            "--data", str(user_files.data),
        )  # fmt: skip
        assert result.code == 2 and "other.npz" in result.err


class TestDataFile:
    @pytest.mark.parametrize(
        ("arrays", "named"),
        [
            ({"x": np.zeros((4, 3))}, "no array 'y'"),
            ({"y": np.zeros((4, 2))}, "no array 'x'"),
            ({"x": np.zeros((4, 5)), "y": np.zeros((4, 2))}, "x"),
            ({"x": np.zeros((4, 3)), "y": np.zeros((5, 2))}, "one row per row"),
            ({"x": np.zeros((4, 3)), "y": np.zeros((4, 7))}, "y"),
            ({"x": np.full((4, 3), np.nan), "y": np.zeros((4, 2))}, "NaN"),
            ({"x": np.zeros((4, 3)), "y": np.array([[np.inf, 0]] * 4)}, "NaN/Inf"),
            ({"x": np.array([["a"] * 3] * 4), "y": np.zeros((4, 2))}, "real numbers"),
        ],
    )
    def test_bad_data(
        self,
        capsys: pytest.CaptureFixture[str],
        user_files: UserFiles,
        tmp_path: Path,
        arrays: dict[str, Any],
        named: str,
    ) -> None:
        """Missing arrays, wrong shapes, NaN/Inf, strings: exit 2, one line naming the file."""
        bad = tmp_path / "bad.npz"
        np.savez(bad, **arrays)
        result = run(capsys, "check", "--model", f"{user_files.model}:build", "--data", str(bad))
        assert result.code == 2 and result.out == ""
        assert len(result.err.splitlines()) == 1, result.err
        assert f"--data {str(bad)!r}" in result.err and named in result.err

    @pytest.mark.parametrize("content", [b"not a zip", None])
    def test_unreadable_data(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes | None
    ) -> None:
        target = tmp_path / "data.npz"
        if content is not None:
            target.write_bytes(content)
        result = run(capsys, "check", "--data", str(target))
        assert result.code == 2 and "--data" in result.err and "Traceback" not in result.err

    def test_data_replaces_the_seed_examples(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """--data without --model: the seed net on the file's rows."""
        case = lk.fraud_net_seed_case()
        np.savez(tmp_path / "d.npz", x=case.x[:2], y=case.y[:2])
        result = run(capsys, "check", "--data", str(tmp_path / "d.npz"), "--json")
        expected, _ = case.model.loss_and_grad(case.x[:2], case.y[:2])
        assert result.json()["loss"] == pytest.approx(expected, rel=1e-12)


class TestOptionFlags:
    def test_every_check_option_is_a_flag(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Each CheckOptions field but progress is a --flag of check."""
        names = [f.name for f in attrs.fields(lk.CheckOptions) if f.name != "progress"]
        help_text = run(capsys, "check", "--help").out
        for name in names:
            assert f"--{name}" in help_text

    @pytest.mark.parametrize(
        ("flag", "value", "key"),
        [("--atol", "1e-9", "atol"), ("--step", "1e-4", "step"), ("--rtol", "1e-5", "rtol")],
    )
    def test_flags_reach_the_report(
        self, capsys: pytest.CaptureFixture[str], flag: str, value: str, key: str
    ) -> None:
        result = run(capsys, "check", flag, value, "--json")
        assert result.code == 0 and result.json()[key] == float(value)

    def test_safety_and_worst_reach_the_checker(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--worst 1 reports one entry per tensor; the same check as the library's."""
        result = run(capsys, "check", "--worst", "1", "--safety", "5", "--json")
        case = lk.fraud_net_seed_case()
        expected = lk.check_model(case.model, case.x, case.y, worst=1, safety=5.0).to_dict()
        assert result.json() == json.loads(json.dumps(expected))
        assert all(len(t["worst"]) == 1 for t in result.json()["tensors"])

    @pytest.mark.parametrize(
        ("argv", "bound"),
        [
            (["--step", "0.5"], "(0, 0.1]"),
            (["--step", "0"], "(0, 0.1]"),
            (["--atol", "-1"], "[0, inf)"),
            (["--safety", "0"], "(0, inf)"),
            (["--safety", "abc"], "(0, inf)"),
            (["--rtol", "1.5"], "[0, 1]"),
            (["--worst", "0"], "positive integer"),
            (["--directions", "1.5"], "positive integer"),
        ],
    )
    def test_bad_values_name_the_flag_and_the_real_bound(
        self, capsys: pytest.CaptureFixture[str], argv: list[str], bound: str
    ) -> None:
        result = run(capsys, "check", *argv)
        assert result.code == 2
        assert result.err.startswith(f"layerkit: error: argument {argv[0]}: ")
        assert bound in result.err and repr(argv[1]) in result.err

    def test_cli_and_library_refuse_with_the_same_rule(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The flag's rule is the library's rule, word for word."""
        with pytest.raises(lk.LayerkitError) as raised:
            lk.CheckOptions(step=0.5)
        rule = str(raised.value).split("'step' ")[1].split(" (got")[0]
        assert rule in run(capsys, "check", "--step", "0.5").err


class TestSweepShape:
    def test_correct_gradient_has_a_v(self, capsys: pytest.CaptureFixture[str]) -> None:
        result = run(capsys, "sweep", "--points", "13")
        assert result.code == 0
        assert any(line.startswith("V: ") for line in result.out.splitlines())

    def test_wrong_gradient_has_no_v_and_says_so(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The seed's bugs: the difference stays high at every step; the sweep says so."""
        result = run(capsys, "sweep", "--points", "13", "--inject-seed-bugs")
        assert result.code == 0
        rows = sweep_rows(result.out)
        assert min(r[1] for r in rows) > 1e-2  # the table itself: no floor anywhere
        verdict = [line for line in result.out.splitlines() if "V" in line.split(":")[0]]
        assert verdict and verdict[-1].startswith("NO V") and "gradient is wrong" in verdict[-1]
        data = run(capsys, "sweep", "--points", "5", "--inject-seed-bugs", "--json").json()
        assert data["has_v"] is False

    @pytest.mark.parametrize(
        ("suffix", "magic"), [(".svg", b"<?xml"), (".pdf", b"%PDF"), (".PNG", b"\x89PNG")]
    )
    def test_plot_format_from_the_extension(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path, suffix: str, magic: bytes
    ) -> None:
        target = tmp_path / f"sweep{suffix}"
        result = run(capsys, "sweep", "--points", "3", "--plot", str(target))
        assert result.code == 0
        assert target.read_bytes().startswith(magic)

    @pytest.mark.parametrize("name", ["sweep.jpg", "sweep"])
    def test_unknown_plot_format(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str
    ) -> None:
        """Refused before the sweep runs: exit 2, the formats listed, nothing written."""
        target = tmp_path / name
        result = run(capsys, "sweep", "--plot", str(target))
        assert result.code == 2 and ".png, .svg, .pdf" in result.err
        assert not target.exists()
