"""The executor's limits and the HTML sanitizer, on small notebooks in a real kernel.

``CrashTolerantExecute`` runs here as nbgrader runs it (a Jupyter kernel, nbclient), on
the environment's ``python3`` kernel, without nbgrader's gradebook: what is checked is what
ends up in the notebook. End to end through ``cvgrade`` in ``test_pipeline_hostile.py``.
"""

from __future__ import annotations

import json

import pytest
from nbformat.notebooknode import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.pipeline.preprocessors import (
    CrashTolerantExecute,
    SanitizeOutputs,
    clean_html,
    safe_markdown,
)

KiB = 1024


def _run(sources, **traits):
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    executor = CrashTolerantExecute(kernel_name="python3", timeout=3, **traits)
    nb, _ = executor.preprocess(nb, {})
    return nb


def _bytes(cell) -> int:
    return len(json.dumps(cell.outputs).encode())


@pytest.fixture(scope="module")
def flooded():
    """Cells that print far more than the caps (8 KiB per output, 25 KiB per notebook)."""
    return _run(
        [
            "print('x' * 10**7)",  # one 10 MB line
            "import sys\nfor i in range(2000): print('y' * 99)\nprint('oops', file=sys.stderr)",
            "from IPython.display import HTML, display\n"
            "display(HTML('<b>' + 'z' * 10**6 + '</b>'))",
            "raise ValueError('v' * 10**6)",
            "for i in range(20): print('w' * 4000)",
            "print('last words')",
        ],
        max_output_bytes=8 * KiB,
        max_notebook_output_bytes=25 * KiB,
    )


def test_one_long_line_is_cut_to_the_output_cap_with_a_marker(flooded):
    (out,) = flooded.cells[0].outputs
    assert out.text.startswith("x" * 8 * KiB)
    assert out.text.endswith(f"[output truncated: {10**7 + 1 - 8 * KiB} bytes]\n")
    assert _bytes(flooded.cells[0]) < 9 * KiB


def test_many_lines_are_capped_per_stream_and_stderr_is_kept(flooded):
    outputs = flooded.cells[1].outputs
    stdout = "".join(o.text for o in outputs if o.name == "stdout")
    assert len(stdout.split("\n[output truncated")[0].encode()) == 8 * KiB
    assert f"[output truncated: {2000 * 100 - 8 * KiB} bytes]" in stdout
    # stderr decides nbgrader's score: it is kept, not dropped with the flood
    assert [o.text for o in outputs if o.name == "stderr"] == ["oops\n"]


def test_a_huge_display_is_replaced_by_its_size_and_a_huge_error_is_kept_short(flooded):
    (shown,) = flooded.cells[2].outputs
    size = len("<b>" + "z" * 10**6 + "</b>") + len("<IPython.core.display.HTML object>")
    assert shown.data == {"text/plain": f"[output truncated: {size} bytes]"}
    (error,) = flooded.cells[3].outputs
    assert error.output_type == "error" and error.ename == "ValueError"
    assert "[output truncated:" in error.evalue and _bytes(flooded.cells[3]) < 9 * KiB


def test_the_notebook_stops_keeping_output_at_its_cap(flooded):
    total = sum(_bytes(c) for c in flooded.cells)
    assert total < 25 * KiB + 2 * KiB  # the cap, plus the markers and JSON around outputs
    # the fifth cell ran into the notebook's cap (the first four hold about 21 KiB), the last
    # one found it full: what they printed is dropped, and they say so
    fifth = "".join(o.text for o in flooded.cells[4].outputs)
    assert "[output truncated:" in fifth and len(fifth) < 5 * KiB
    (last,) = flooded.cells[5].outputs
    assert last.text.strip() == "[output truncated: 11 bytes]"


def test_a_cell_that_ignores_the_interrupt_is_killed_like_a_dead_kernel():
    nb = _run(
        [
            "x = 1",
            "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
            "print(x)",
        ]
    )
    (error,) = nb.cells[1].outputs
    assert error.ename == "CellTimeoutError" and "killed the kernel" in error.evalue
    (not_run,) = nb.cells[2].outputs
    assert not_run.ename == "KernelDied" and "not run" in not_run.evalue


def test_an_ordinary_timeout_still_interrupts_and_goes_on():
    nb = _run(["import time\ntime.sleep(60)", "print('after')"])
    assert nb.cells[0].outputs[-1].ename == "CellTimeoutError"
    assert "killed" not in nb.cells[0].outputs[-1].evalue
    assert nb.cells[1].outputs[0].text == "after\n"


# --- sanitizing ----------------------------------------------------------------------------

ATTACKS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="java&#x09;script:alert(1)">x</a>',
    '<iframe src="https://example.org"></iframe>',
    "<svg onload=alert(1)>",
    '<object data="x.swf"></object>',
    "<style>body{display:none}</style>",
    '<form action="https://example.org"><input></form>',
]
MD_ATTACKS = [
    *ATTACKS,
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](javascript:7)",  # bleach takes "javascript:7" for a host and a port
    "<javascript:alert(1)>",
    "[x][r]\n\n[r]: javascript:alert(1)",
    "![x](javascript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
]


def dangerous_html(html: str) -> list[str]:
    """What an HTML page would run: script elements, on* handlers, javascript: or data:
    (other than images) URLs, frames and plugins; parsed with the standard library."""
    from html.parser import HTMLParser

    found = []

    class Finder(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag in ("script", "iframe", "object", "embed", "frame", "svg", "style", "form"):
                found.append(tag)
            for name, value in attrs:
                value = "".join((value or "").split()).lower()
                if name.startswith("on"):
                    found.append(f"{tag} {name}")
                if name in ("href", "src", "action", "xlink:href") and (
                    value.startswith("javascript:")
                    or (value.startswith("data:") and not value.startswith("data:image/png"))
                ):
                    found.append(f"{tag} {name}={value[:30]}")

    Finder().feed(html)
    return found


def _rendered_markdown(source: str) -> str:
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return markdown2html_mistune(source)


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_html_is_cleaned(attack):
    assert dangerous_html(attack)  # the finder sees it...
    assert not dangerous_html(clean_html(attack))  # ...and not after cleaning


@pytest.mark.parametrize("attack", MD_ATTACKS)
def test_attack_markdown_renders_clean(attack):
    assert dangerous_html(_rendered_markdown(attack))  # nbconvert renders it as is...
    assert not dangerous_html(_rendered_markdown(safe_markdown(attack)))


def test_ordinary_markdown_is_left_as_it_is():
    for source in (
        "# Title\n\nSome *text*, `code`, $x^2$ and a [link](https://example.org).",
        "![a plot](attachment:plot.png)\n\n| a | b |\n|---|---|\n| 1 | 2 |",
        "```python\nprint('<b>')\n```",
    ):
        attachments = {"plot.png": {"image/png": "iVBORw0KGgo="}}
        assert safe_markdown(source, attachments) == source


def test_outputs_and_cells_are_sanitized_in_place():
    nb = new_notebook(
        cells=[
            new_code_cell("x", outputs=[]),
            new_markdown_cell("[click](javascript:alert(1))"),
        ]
    )
    nb.cells[0].outputs = [
        NotebookNode(
            output_type="display_data",
            data={
                "text/html": "<b onmouseover=alert(1)>bold</b>",
                "image/svg+xml": "<svg onload=alert(1)/>",
                "application/javascript": "alert(1)",
                "image/png": "iVBORw0KGgo=",
            },
            metadata={"image/png": {"width": "1 onerror=alert(1)", "height": 20}},
        ),
        NotebookNode(
            output_type="execute_result",
            execution_count=1,
            data={"text/html": "<script>alert(1)</script>", "text/plain": "x"},
            metadata={},
        ),
    ]
    nb, _ = SanitizeOutputs().preprocess(nb, {})
    first, second = nb.cells[0].outputs
    assert first.data == {"text/html": "<b>bold</b>", "image/png": "iVBORw0KGgo="}
    # nbconvert writes width unquoted into <img ...>: only numbers survive
    assert first.metadata == {"image/png": {"height": 20}}
    assert second.data == {"text/plain": "x"}  # the plain version is enough
    assert not dangerous_html(_rendered_markdown(nb.cells[1].source))
