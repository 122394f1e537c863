"""The ``layerkit`` command under hostile conditions: huge requests, unwritable output, readers
that leave early, Ctrl-C at any moment (issue 12). Exit codes stay meaningful for scripts."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import layerkit.cli as cli
import layerkit.cli.case as cli_case
import layerkit.cli.commands as cli_commands
import layerkit.cli.parser as cli_parser
import layerkit_cli

ROOT = Path(__file__).resolve().parent.parent


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


def command(*argv: str) -> list[str]:
    """The console script's entry point, run by this interpreter."""
    return [sys.executable, "-c", "import layerkit_cli, sys; sys.exit(layerkit_cli.main())", *argv]


class TestMemoryEstimate:
    """A request that cannot fit is refused before anything is allocated: exit 2, one line."""

    @pytest.mark.parametrize(
        ("argv", "option"),
        [
            (["check", "--arch", "4,3", "--batch", "1000000000"], "--batch 1000000000"),
            (["sweep", "--arch", "4,3", "--batch", "1000000000"], "--batch 1000000000"),
            (["sweep", "--points", "1000000000"], "--points 1000000000"),
        ],
    )
    def test_refused_with_one_line(self, argv: list[str], option: str) -> None:
        code, out, err = run(argv)
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and option in err and "memory" in err

    def test_limit_follows_the_machine(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The limit is a fraction of physical memory: a small machine refuses sooner."""
        monkeypatch.setattr(cli_case, "memory_limit", lambda: 10_000)
        code, _, err = run(["check", "--arch", "4,3", "--batch", "100"])
        assert code == 2 and "--batch 100 with --arch" in err
        monkeypatch.setattr(cli_case, "memory_limit", lambda: 10**9)
        assert run(["check", "--arch", "4,3", "--batch", "100"])[0] == 0


class TestOutput:
    """Output that cannot be written, and readers that leave early."""

    @pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
    def test_full_disk_is_exit_2_and_one_line(self) -> None:
        """`layerkit check > /dev/full`: exit 2, one line on stderr, no traceback."""
        with open("/dev/full", "w") as full:
            done = subprocess.run(
                command("check"), stdout=full, stderr=subprocess.PIPE, text=True, timeout=120,
                check=False,
            )  # fmt: skip
        assert done.returncode == 2
        assert done.stderr == (
            "layerkit: error: cannot write the output: No space left on device\n"
        )

    @pytest.mark.parametrize(
        ("argv", "code"),
        [(["check"], 0), (["check", "--inject-seed-bugs"], 1), (["sweep", "--points", "3"], 0)],
    )
    def test_closed_pipe_keeps_the_verdict(self, argv: list[str], code: int) -> None:
        """`layerkit check | true`: the reader is gone before anything is written; the exit
        code is still the verdict's (sweep: always 0), and nothing is printed."""
        read, write = os.pipe()
        os.close(read)
        try:
            done = subprocess.run(
                command(*argv), stdout=write, stderr=subprocess.PIPE, text=True, timeout=120,
                check=False,
            )  # fmt: skip
        finally:
            os.close(write)
        assert done.returncode == code, done.stderr
        assert done.stderr == ""

    def test_empty_plot_path_is_refused(self) -> None:
        code, out, err = run(["sweep", "--plot", ""])
        assert code == 2 and out == ""
        assert "--plot" in err and "not a file name" in err


class TestInterrupt:
    """Ctrl-C at any moment: exit 130 and the one line 'layerkit: interrupted'."""

    def test_during_the_check(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def interrupted(*args: object, **kwargs: object) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(cli_commands, "check_model", interrupted)
        assert run(["check"]) == (130, "", "layerkit: interrupted\n")

    def test_during_argument_parsing(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def interrupted(*args: object, **kwargs: object) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(cli_parser, "build_parser", interrupted)
        assert run(["check"]) == (130, "", "layerkit: interrupted\n")

    def test_during_the_import_of_numpy(self) -> None:
        """A real SIGINT delivered while the console script imports numpy: 130, one line."""
        script = textwrap.dedent(
            """
            import os, signal, sys
            import layerkit_cli

            class Interrupt:
                def find_spec(self, name, path=None, target=None):
                    if name == "numpy":
                        os.kill(os.getpid(), signal.SIGINT)
                    return None

            sys.meta_path.insert(0, Interrupt())
            sys.argv = ["layerkit", "check"]
            sys.exit(layerkit_cli.main())
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
            check=False, cwd=ROOT,
        )  # fmt: skip
        assert (done.returncode, done.stdout, done.stderr) == (130, "", "layerkit: interrupted\n")

    def test_entry_point_runs_the_command(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without an interrupt the entry point is layerkit.cli.main."""
        monkeypatch.setattr(sys, "argv", ["layerkit", "--version"])
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert layerkit_cli.main() == 0
        assert out.getvalue().startswith("layerkit ")
