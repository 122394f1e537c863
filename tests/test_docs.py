"""Every ```python block in docs/*.md runs, in order, in one namespace per page.

A ```text block right after a python block (only blank lines between) is that block's
expected output: it must match what the block prints, with doctest's ELLIPSIS (``...``
matches anything) and NORMALIZE_WHITESPACE. Shell blocks (```console, ```bash) are not run.
"""

from __future__ import annotations

import contextlib
import doctest
import importlib.util
import io
import os
import re
import subprocess
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import numpy as np
import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(DOCS.glob("*.md"))
FENCE = re.compile(r"^```([A-Za-z0-9_+-]*)\s*$")
INDENTED_PYTHON = re.compile(r"^\s+```python")
OUTPUT_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@attrs.frozen
class Block:
    """One fenced block: its ``language``, ``line`` (1-based, of the opening fence), ``source``."""

    language: str
    line: int
    source: str
    follows_previous: bool
    """Only blank lines separate it from the previous block."""


def parse_blocks(text: str) -> list[Block]:
    """The fenced blocks of a markdown page, in order (unclosed fences raise ValueError)."""
    blocks: list[Block] = []
    lines = text.splitlines()
    position = 0
    last_end = -2
    while position < len(lines):
        if INDENTED_PYTHON.match(lines[position]):
            msg = f"line {position + 1}: an indented ```python fence would not be run; unindent it"
            raise ValueError(msg)
        match = FENCE.match(lines[position])
        if match is None:
            position += 1
            continue
        start = position
        end = start + 1
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        if end == len(lines):
            msg = f"unclosed ``` fence opened at line {start + 1}"
            raise ValueError(msg)
        between = lines[last_end + 1 : start]
        follows = last_end >= 0 and all(not line.strip() for line in between)
        source = "\n".join(lines[start + 1 : end]) + "\n"
        blocks.append(Block(match.group(1), start + 1, source, follows))
        last_end = end
        position = end + 1
    return blocks


def run_page(page: Path) -> int:
    """Run the python blocks of ``page``; raise AssertionError naming page and block line.

    **Returns:** the number of python blocks run.
    """
    blocks = parse_blocks(page.read_text(encoding="utf-8"))
    namespace: dict[str, Any] = {"__name__": f"docs_{page.stem}"}
    checker = doctest.OutputChecker()
    printed: str | None = None
    previous: Block | None = None
    ran = 0
    for block in blocks:
        where = f"docs/{page.name}, block at line {block.line}"
        if block.language == "python":
            # Pad with blank lines so tracebacks give the markdown file's line numbers.
            code = compile("\n" * block.line + block.source, str(page), "exec")
            buffer = io.StringIO()
            try:
                with contextlib.redirect_stdout(buffer):
                    exec(code, namespace)
            except Exception as error:
                details = "".join(traceback.format_exception(error))
                msg = f"{where} raised {type(error).__name__}: {error}\n\n{details}"
                raise AssertionError(msg) from error
            printed = buffer.getvalue()
            ran += 1
        elif (
            block.language == "text"
            and block.follows_previous
            and previous is not None
            and previous.language == "python"
            and printed is not None
            and not checker.check_output(block.source, printed, OUTPUT_FLAGS)
        ):
            msg = (
                f"{where}: the output shown differs from what the python block at line "
                f"{previous.line} prints.\n--- shown\n{block.source}--- printed\n{printed}"
            )
            raise AssertionError(msg)
        previous = block
    return ran


def test_pages_exist() -> None:
    """docs/ has the pages mkdocs.yml lists, and every listed page exists."""
    nav = (DOCS.parent / "mkdocs.yml").read_text(encoding="utf-8")
    listed = set(re.findall(r"([\w-]+\.md)", nav))
    assert listed, "mkdocs.yml lists no pages"
    assert listed == {p.name for p in PAGES}, (listed, [p.name for p in PAGES])


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_code_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every python block of the page runs in order in one namespace, and prints what the
    page shows right after it."""
    monkeypatch.chdir(tmp_path)  # blocks that write files write them here
    run_page(page)


class TestHarness:
    """The docs runner itself: it must be able to fail."""

    def write(self, tmp_path: Path, text: str) -> Path:
        page = tmp_path / "page.md"
        page.write_text(text, encoding="utf-8")
        return page

    def test_blocks_share_a_namespace_in_order(self, tmp_path: Path) -> None:
        """A later block sees names an earlier block defined."""
        page = self.write(
            tmp_path, "```python\nvalue = 2\n```\n\ntext\n\n```python\nassert value == 2\n```\n"
        )
        assert run_page(page) == 2

    def test_shell_blocks_are_not_run(self, tmp_path: Path) -> None:
        """console and bash blocks are shown, never executed."""
        page = self.write(tmp_path, "```console\n$ exit 1\n```\n```bash\nfalse\n```\n")
        assert run_page(page) == 0

    def test_failure_names_page_and_line(self, tmp_path: Path) -> None:
        """A raising block fails with the page name and the line of its fence."""
        page = self.write(tmp_path, "intro\n\n```python\nx = 1\nassert x == 2\n```\n")
        with pytest.raises(AssertionError, match=r"docs/page\.md, block at line 3 raised"):
            run_page(page)

    def test_traceback_has_markdown_line_numbers(self, tmp_path: Path) -> None:
        """The traceback points at the line of the page where the error is."""
        page = self.write(tmp_path, "intro\n\n```python\nx = 1\nraise ValueError(x)\n```\n")
        with pytest.raises(AssertionError, match=r"line 5"):
            run_page(page)

    def test_output_block_is_compared(self, tmp_path: Path) -> None:
        """A text block right after a python block must match what it prints."""
        good = self.write(tmp_path, "```python\nprint('a  1.5')\n```\n\n```text\na 1...\n```\n")
        run_page(good)
        bad = self.write(tmp_path, "```python\nprint('a 2')\n```\n```text\na 1\n```\n")
        with pytest.raises(AssertionError, match=r"line 4: the output shown differs"):
            run_page(bad)

    def test_text_after_prose_is_not_an_output(self, tmp_path: Path) -> None:
        """A text block separated from the code by prose is only an illustration."""
        page = self.write(tmp_path, "```python\nprint('a')\n```\nprose\n```text\nb\n```\n")
        assert run_page(page) == 1

    def test_indented_python_fence_is_an_error(self, tmp_path: Path) -> None:
        """A python block indented under a list item would be skipped: refuse it."""
        page = self.write(tmp_path, "- item\n\n    ```python\n    x = 1\n    ```\n")
        with pytest.raises(ValueError, match="line 3: an indented"):
            run_page(page)

    def test_unclosed_fence_is_an_error(self, tmp_path: Path) -> None:
        """A missing closing fence is reported, not silently swallowed."""
        page = self.write(tmp_path, "```python\nx = 1\n")
        with pytest.raises(ValueError, match="unclosed"):
            run_page(page)


def load_generator() -> ModuleType:
    """docs/gen_sweep_plot.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("gen_sweep_plot", DOCS / "gen_sweep_plot.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return load_generator()


@pytest.fixture(scope="module")
def curves(generator: ModuleType) -> Any:
    """The script's sweep on one step per decade (13 points plus eps^(1/3)), not the
    picture's three (37): the same function on a subset of the same steps (1e-1 ... 1e-13,
    with 1e-7, 1e-3, 1e-2 and eps^(1/3) that the tests below read), at a third of the cost
    of the seed's loop."""
    return generator.sweep_curves(13)


def nearest(curves: Any, step: float) -> int:
    """Index of the sweep's step closest to ``step`` (on a log scale)."""
    return int(np.argmin(np.abs(np.log(curves.steps / step))))


class TestSweepPlot:
    """docs/gen_sweep_plot.py regenerates the concepts page's picture from the library."""

    def test_writes_a_png(
        self, generator: ModuleType, curves: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The script writes a PNG where it is told to, and says where.

        main() computes its sweep with ``sweep_curves()``, the function the ``curves`` fixture
        calls and the tests below check; it is served from that fixture rather than computed a
        second time (the seed's own loop), and main must have asked for it.
        """
        asked: list[bool] = []

        def sweep_curves() -> Any:
            asked.append(True)
            return curves

        monkeypatch.setattr(generator, "sweep_curves", sweep_curves)
        out = tmp_path / "sub" / "sweep.png"
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            assert generator.main([str(out)]) == 0
        assert asked == [True]
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert str(out) in buffer.getvalue()

    def test_committed_picture_exists(self) -> None:
        """The page's image is in the repository (mkdocs would warn about a missing one)."""
        assert (DOCS / "img" / "step_sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def test_seed_curve_reproduces_the_notebook(self, curves: Any) -> None:
        """At the notebook's h = 1e-7 the seed curve is the notebook's printed 1.19e-7."""
        at = nearest(curves, 1e-7)
        assert curves.steps[at] == pytest.approx(1e-7)
        assert curves.seed[at] == pytest.approx(1.1890913023330276e-07, rel=1e-3)

    def test_logit_curve_is_a_v_with_its_floor_near_eps_cube_root(self, curves: Any) -> None:
        """Truncation falls as h^2, round-off rises as 1/h; the floor lies near eps^(1/3)."""
        best = int(np.argmin(curves.logits))
        eps = np.finfo(np.float64).eps
        assert 0.1 * eps ** (1 / 3) < curves.steps[best] < 10 * eps ** (1 / 3)
        assert curves.logits[best] < 1e-10
        # h^2 on the truncation side: 10x smaller step, ~100x smaller error.
        ratio = curves.logits[nearest(curves, 1e-2)] / curves.logits[nearest(curves, 1e-3)]
        assert 50 < ratio < 200
        # 1/h on the round-off side, and far above the floor at the smallest step.
        assert curves.logits[-1] > 1e4 * curves.logits[best]

    def test_seed_cost_is_noisier_than_the_logit_loss(self, curves: Any) -> None:
        """On the round-off side the notebook's log(1 - A3) cost errs far more."""
        small = curves.steps <= 1e-7
        assert np.all(curves.seed[small] > 10 * curves.logits[small])


# -- the built site --------------------------------------------------------------------------

SPHINX_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|data|mod|exc|obj|const|ref):")
OBJECT_ID = re.compile(r'id="(layerkit(?:\.\w+)*)"')


def defining_module(identifier: str) -> str:
    """The module that defines the object an API-page anchor (``layerkit.X.y``) documents."""
    obj: object = importlib.import_module("layerkit")
    module = "layerkit"
    for part in identifier.split(".")[1:]:
        child = getattr(obj, part, None)
        if child is None and isinstance(obj, ModuleType):
            with contextlib.suppress(ImportError):
                child = importlib.import_module(f"{obj.__name__}.{part}")
        if child is None:
            break
        obj = child
        if isinstance(obj, ModuleType):
            module = obj.__name__
        elif isinstance(getattr(obj, "__module__", None), str):
            module = str(obj.__module__)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation site, built by ``mkdocs build --strict`` into a temporary folder.

    CI installs the docs extra before pytest (.ci/run), so this runs there; without mkdocs
    installed it is skipped.
    """
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(out)],
        cwd=DOCS.parent,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


class TestBuiltSite:
    """What readers see: the HTML that mkdocs and mkdocstrings render from the docstrings."""

    def test_no_sphinx_roles(self, site: Path) -> None:
        """No page shows a literal Sphinx role (``:class:`...```): cross-references use the
        mkdocstrings syntax, which renders as links. Each find names the object's section and
        the module whose docstring to fix."""
        found: list[str] = []
        for page in sorted(site.rglob("*.html")):
            html = page.read_text(encoding="utf-8")
            pieces = OBJECT_ID.split(html)
            # pieces: text before the first anchor, then (identifier, text) pairs.
            sections = [("", pieces[0]), *zip(pieces[1::2], pieces[2::2], strict=True)]
            for identifier, text in sections:
                where = f"{identifier} ({defining_module(identifier)})" if identifier else "(page)"
                found += [
                    f"{page.relative_to(site)} {where}: {m.group()}"
                    for m in SPHINX_ROLE.finditer(text)
                ]
        assert not found, "\n".join(found)

    def test_parameter_tables(self, site: Path) -> None:
        """Google-style Args render as a table with a row per parameter."""
        html = (site / "api" / "index.html").read_text(encoding="utf-8")
        start = html.index('id="layerkit.Sequential.forward"')
        section = html[start : html.index('id="layerkit.Sequential.backward"')]
        assert "<table>" in section and "Parameters:" in section
        for name in ("x", "noise", "rng", "layers", "intermediates"):
            assert f"<code>{name}</code>" in section, name

    def test_role_finder_finds_roles(self) -> None:
        """The pattern matches the roles it must refuse, and not mkdocstrings references."""
        assert SPHINX_ROLE.search("see :class:`Sequential` or :py:meth:`x`")
        assert not SPHINX_ROLE.search('see <a href="#layerkit.Sequential">Sequential</a>')
        assert defining_module("layerkit.Sequential.forward") == "layerkit.sequential"
        assert defining_module("layerkit.check_model").startswith("layerkit.gradcheck")
        assert defining_module("layerkit.notebook.NotebookCache") == "layerkit.notebook"
