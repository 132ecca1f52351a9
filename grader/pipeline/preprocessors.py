"""Our nbgrader preprocessors: places where nbgrader 0.9.6 mis-grades or leaks.

- :class:`CrashTolerantExecute` (autograde): nbgrader's ``Execute`` lets a dead kernel
  (``os._exit``, a segfault, the memory limit) abort the whole notebook: no autograded file,
  every grade None. Here the cell that killed the kernel gets an error output saying so,
  every later code cell a "not run" error (its test scores zero), and the cells that ran
  keep their outputs and grades. A cell that ignores the interrupt sent at its timeout
  (``signal.signal(SIGINT, SIG_IGN)``) made nbgrader fail the whole submission; here the
  kernel is killed after the timeout and a short grace, and that counts as its death.
  Output is capped in bytes as it arrives (``max_output_bytes`` per output,
  ``max_notebook_output_bytes`` per notebook; nbgrader's ``LimitOutput`` counts lines, so
  one 100 MiB line went into the autograded notebook and the feedback), with a visible
  ``[output truncated: N bytes]``.
- :class:`OverwriteCellsInPlace` (autograde): ``add_missing_grade_cells`` re-inserts a
  deleted test cell after the source cell that preceded it, but finds that cell only if it
  is a grade or solution cell: after a read-only cell (our public checks) it raises
  ``KeyError`` and the submission fails to grade. Here the deleted cell goes after the
  nearest earlier source cell the submission still has.
- :class:`HideTestTracebacks` (feedback): ``ClearHiddenTests`` removes the hidden tests
  from a cell's source, but the traceback of a failing hidden test quotes its lines. Here a
  test cell's error keeps only its name and message (the check's diagnosis).
- :class:`SanitizeOutputs` (autograde, run by :class:`CrashTolerantExecute` when it is done,
  and feedback): nbgrader copies a submission's HTML outputs and Markdown into the feedback
  page and the formgrader renders the autograded notebook as it is, so a ``<script>``, an
  ``onerror=`` or a ``javascript:`` link printed by student code ran in the TA's browser.
  Here every output and Markdown cell is cleaned with bleach (an allowlist of tags,
  attributes and URL schemes); scripts, SVG and other active types are dropped.
"""

from __future__ import annotations

import json
import re

from bleach.sanitizer import Cleaner
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute, NbGraderPreprocessor, OverwriteCells
from traitlets import Integer

TRUNCATED = "[output truncated: {} bytes]"
# What an output costs beyond its text: a million empty outputs are not free either.
_OUTPUT_OVERHEAD = 64
# An error's name, and its value, are kept up to this many bytes (an error decides a grade,
# so it is always kept, whatever the notebook's budget).
_ERROR_NAME_BYTES = 1024


def _error_output(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(
        output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]
    )


def _size(value) -> int:
    """Bytes of ``value`` as UTF-8 (text) or JSON (anything else)."""
    if isinstance(value, str):
        return len(value) if value.isascii() else len(value.encode("utf-8", "replace"))
    try:
        return _size(json.dumps(value))
    except (TypeError, ValueError):
        return _size(str(value))


def _cut(text: str, limit: int) -> str:
    """The longest start of ``text`` that is at most ``limit`` bytes as UTF-8."""
    if limit <= 0:
        return ""
    head = text[:limit]  # at most 4 * limit bytes, so the encoding below stays small
    if head.isascii():
        return head
    return head.encode("utf-8", "replace")[:limit].decode("utf-8", "ignore")


def _output_size(output) -> int:
    kind = output.get("output_type")
    if kind == "stream":
        return _OUTPUT_OVERHEAD + _size(output.get("text", ""))
    if kind == "error":
        parts = [output.get("ename", ""), output.get("evalue", ""), *output.get("traceback", [])]
        return _OUTPUT_OVERHEAD + sum(_size(part) for part in parts)
    data = output.get("data", {}) or {}
    metadata = output.get("metadata")
    extra = _size(metadata) if metadata else 0
    return _OUTPUT_OVERHEAD + sum(_size(v) for v in data.values()) + extra


def _capped_error(content: dict, limit: int) -> dict:
    """An error's content with its name, value and traceback within ``limit`` bytes."""
    ename = str(content.get("ename", ""))
    evalue = str(content.get("evalue", ""))
    traceback = [str(line) for line in content.get("traceback", []) or []]
    total = _size(ename) + _size(evalue) + sum(_size(line) for line in traceback)
    if total <= limit:
        return content
    name = _cut(ename, _ERROR_NAME_BYTES)
    value = evalue
    if _size(evalue) > limit // 2:
        value = _cut(evalue, limit // 2) + " " + TRUNCATED.format(_size(evalue) - limit // 2)
    budget = limit - _size(name) - _size(value)
    kept = []
    for line in traceback:
        if _size(line) > budget:
            break
        kept.append(line)
        budget -= _size(line)
    dropped = sum(_size(line) for line in traceback[len(kept) :])
    if dropped:
        kept.append(TRUNCATED.format(dropped))
    return {**content, "ename": name, "evalue": value, "traceback": kept}


class CrashTolerantExecute(Execute):
    """nbgrader's ``Execute``, surviving the death of the kernel and a cell that ignores its
    timeout's interrupt, with output capped in bytes (see module docstring)."""

    max_output_bytes = Integer(
        64 * 1024,
        help="Bytes kept of one output (for a stream: of all its text in one cell); the rest "
        "is dropped as it arrives and '[output truncated: N bytes]' marks it",
    ).tag(config=True)

    max_notebook_output_bytes = Integer(
        2 * 1024 * 1024,
        help="Bytes of output kept in the whole notebook; further output is dropped as it "
        "arrives (error outputs, which decide grades, are always kept, capped per output)",
    ).tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._dead_at: int | None = None
        self._kept_bytes = 0
        self._begin_cell()
        nb, resources = super().preprocess(nb, resources, km)
        # What the kernel produced leaves here clean: the autograded notebook is what the
        # formgrader renders, and what the feedback is made from.
        return SanitizeOutputs(parent=self).preprocess(nb, resources)

    # -- one cell ---------------------------------------------------------------------------

    def _begin_cell(self) -> None:
        self._interrupted = False
        self._stream_bytes: dict[str, int] = {}
        self._stream_dropped: dict[str, int] = {}

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if self._dead_at is not None:
            cell.outputs = [
                _error_output(
                    "KernelDied",
                    f"not run: the kernel died in cell {self._dead_at + 1} and the grader does "
                    "not re-run earlier cells",
                )
            ]
            return cell, resources
        self._begin_cell()
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError as exc:
            self._dead_at = index
            self.log.warning("Kernel died in cell %d: %s", index + 1, exc)
            cell.outputs.append(
                _error_output(
                    "KernelDied",
                    "the kernel died while running this cell (it crashed, called os._exit, or "
                    f"went over the grader's memory limit): {exc}",
                )
            )
        except CellTimeoutError:
            if not self._interrupted:
                raise
            # Interrupted at the timeout, and still busy after the grace (iopub_timeout):
            # the cell ignores SIGINT. Nothing else would stop it; kill the kernel.
            self._dead_at = index
            self.log.warning("Cell %d ignored the interrupt; killing the kernel", index + 1)
            self._kill_kernel()
            cell.outputs.append(
                _error_output(
                    "CellTimeoutError",
                    f"the cell ran past the {self.timeout} s timeout and ignored the "
                    "interrupt: the grader killed the kernel",
                )
            )
        self._mark_truncation(cell)
        return cell, resources

    async def _async_handle_timeout(self, timeout, cell=None):
        self._interrupted = bool(self.interrupt_on_timeout)
        return await super()._async_handle_timeout(timeout, cell)

    def _kill_kernel(self) -> None:
        try:
            run_sync(self.km.shutdown_kernel)(now=True)
        except Exception as exc:  # already gone: nothing left to stop
            self.log.warning("Could not kill the kernel: %s", exc)

    def _mark_truncation(self, cell) -> None:
        # One marker per stream that lost text, at the end of that stream in the cell.
        for name, dropped in self._stream_dropped.items():
            marker = "\n" + TRUNCATED.format(dropped) + "\n"
            streams = [
                o for o in cell.outputs if o.get("output_type") == "stream" and o.name == name
            ]
            if streams:
                streams[-1].text += marker
            else:
                cell.outputs.append(NotebookNode(output_type="stream", name=name, text=marker))

    # -- output as it arrives ---------------------------------------------------------------

    def _forget(self, outs) -> None:
        # ``outs`` is about to be cleared: its bytes no longer count.
        self._kept_bytes -= sum(_output_size(o) for o in outs)
        self._stream_bytes.clear()

    def _capped(self, msg, outs):
        """``msg`` with its content within the caps, or None to drop it."""
        kind = msg["msg_type"]
        content = msg.get("content", {})
        room = self.max_notebook_output_bytes - self._kept_bytes - _OUTPUT_OVERHEAD
        if kind == "stream":
            name = content.get("name", "stdout")
            text = content.get("text", "")
            used = self._stream_bytes.get(name, 0)
            allowed = max(0, min(self.max_output_bytes - used, room))
            size = _size(text)
            if size <= allowed:
                self._stream_bytes[name] = used + size
                return msg
            kept = _cut(text, allowed)
            self._stream_bytes[name] = used + _size(kept)
            self._stream_dropped[name] = self._stream_dropped.get(name, 0) + size - _size(kept)
            has_stream = any(o.get("output_type") == "stream" and o.name == name for o in outs)
            if not kept and has_stream:
                return None  # nothing to add; the marker goes on the stream it has
            return {**msg, "content": {**content, "text": kept}}
        if kind in ("display_data", "execute_result", "update_display_data"):
            size = _output_size(content) - _OUTPUT_OVERHEAD
            if size <= min(self.max_output_bytes, room):
                return msg
            capped = {"text/plain": TRUNCATED.format(size)}
            return {**msg, "content": {**content, "data": capped, "metadata": {}}}
        if kind == "error":
            return {**msg, "content": _capped_error(content, self.max_output_bytes)}
        return msg

    def output(self, outs, msg, display_id, cell_index):
        # With a clear pending, ``outs`` is emptied before this output is added.
        if self.clear_before_next_output:
            self._forget(outs)
        msg = self._capped(msg, [] if self.clear_before_next_output else outs)
        if msg is None:
            return None
        out = super().output(outs, msg, display_id, cell_index)
        if out is not None:
            self._kept_bytes += _output_size(out)
        elif self.output_hook_stack[msg["parent_header"].get("msg_id")]:
            self._kept_bytes += _output_size(msg["content"])  # went to an Output widget
        return out

    def clear_output(self, outs, msg, cell_index):
        hooked = self.output_hook_stack[msg["parent_header"].get("msg_id")]
        if not hooked and not msg["content"].get("wait"):
            self._forget(outs)
        return super().clear_output(outs, msg, cell_index)

    def _update_display_id(self, display_id, msg):
        # A display updated in place: the new data replaces the old, within the caps.
        msg = self._capped({**msg, "msg_type": "update_display_data"}, [])
        before = self._display_bytes(display_id)
        super()._update_display_id(display_id, msg)
        self._kept_bytes += self._display_bytes(display_id) - before

    def _display_bytes(self, display_id) -> int:
        total = 0
        for cell_index, indices in self._display_id_map.get(display_id, {}).items():
            outputs = self.nb["cells"][cell_index].get("outputs", [])
            total += sum(_output_size(outputs[i]) for i in indices if i < len(outputs))
        return total

    def on_cell_executed(self, **kwargs):
        # nbgrader adds the reply's error when no output has its name: cap it the same way.
        reply = kwargs.get("execute_reply")
        if reply and reply.get("content", {}).get("status") == "error":
            reply["content"] = _capped_error(reply["content"], self.max_output_bytes)
        return super().on_cell_executed(**kwargs)


def _positions(nb) -> dict[str, int]:
    positions = {}
    for index, cell in enumerate(nb.cells):
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id:
            positions[grade_id] = index
    return positions


class OverwriteCellsInPlace(OverwriteCells):
    """nbgrader's ``OverwriteCells``, re-inserting deleted test cells in their place."""

    def add_missing_grade_cells(self, nb, resources):
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        source_cells = list(source_nb.source_cells)
        source_ids = [cell.name for cell in source_cells]
        solution_ids = {cell.name for cell in source_nb.solution_cells}
        for grade_cell in source_nb.grade_cells:
            present = _positions(nb)
            if grade_cell.name in present or grade_cell.name not in source_ids:
                continue
            self.log.warning(
                "Missing grade cell %s encountered, adding to notebook", grade_cell.name
            )
            index = source_ids.index(grade_cell.name)
            restored = self.missing_cell_transform(
                source_cells[index],
                grade_cell.max_score,
                is_solution=grade_cell.name in solution_ids,
            )
            insert_at = 0
            for earlier in reversed(source_ids[:index]):
                if earlier in present:
                    insert_at = present[earlier] + 1
                    break
            nb.cells.insert(insert_at, restored)
        return nb, resources


class HideTestTracebacks(NbGraderPreprocessor):
    """Feedback: a test cell's error output shows ``ename: evalue`` and no source lines."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output.traceback = [f"{output.get('ename', '')}: {output.get('evalue', '')}"]
        return cell, resources


# --- sanitizing HTML -----------------------------------------------------------------------

_SAFE_TAGS = frozenset(
    "a abbr b blockquote br caption code dd del div dl dt em h1 h2 h3 h4 h5 h6 hr i img kbd "
    "li ol p pre s span strong sub sup table tbody td tfoot th thead tr u ul".split()
)
_HEADINGS = frozenset("h1 h2 h3 h4 h5 h6".split())
_IMAGE_DATA_URL = re.compile(r"data:image/(png|jpeg|gif);base64,[A-Za-z0-9+/=\s]*\Z", re.I)
# Output types shown as they are: nbconvert's templates escape them (text) or put them in a
# quoted attribute (base64 images).
_SAFE_MIME = ("text/plain", "text/latex", "image/png", "image/jpeg")
_CLEANED_MIME = ("text/html", "text/markdown")


_SCHEME = re.compile(r"([a-z][a-z0-9+.-]*):")


def _url_scheme(value: str) -> str | None:
    # The scheme a browser sees: it ignores control characters and spaces in it. (bleach
    # reads "javascript:7" as a host and a port, so it is checked here too.)
    found = _SCHEME.match(re.sub(r"[\x00-\x20]", "", value).lower())
    return found.group(1) if found else None


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    # bleach checks the URL scheme of href/src against ``protocols`` as well.
    if name in ("class", "title"):
        return True
    if tag == "a" and name == "href":
        return _url_scheme(value) in (None, "http", "https", "mailto")
    if tag == "img" and name == "src":
        scheme = _url_scheme(value)
        return scheme in (None, "http", "https") or (
            scheme == "data" and bool(_IMAGE_DATA_URL.match(value.strip()))
        )
    if tag == "img" and name in ("alt", "width", "height"):
        return True
    if tag in _HEADINGS and name == "id":  # the anchors nbconvert gives headings
        return True
    if tag in ("td", "th") and name in ("colspan", "rowspan", "align"):
        return True
    return tag == "ol" and name == "start"


_CLEANER = Cleaner(
    tags=_SAFE_TAGS,
    attributes=_allowed_attribute,
    protocols=["http", "https", "mailto", "data"],
    strip=False,  # a refused tag shows as text, so a TA sees what was tried
    strip_comments=True,
)


def clean_html(text: str) -> str:
    """``text`` (HTML) with every tag, attribute and URL outside the allowlist escaped or
    removed (bleach)."""
    return _CLEANER.clean(text)


def _render_markdown(source: str, attachments: dict | None = None) -> str:
    # What nbconvert's templates do with Markdown (feedback and formgrader alike).
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    renderer = IPythonRenderer(escape=False, attachments=attachments or {})
    return MarkdownWithMath(renderer=renderer).render(source)


def _safe_rendering(source: str, attachments: dict | None = None) -> bool:
    try:
        rendered = _render_markdown(source, attachments)
    except Exception:
        return False
    # bleach writes void elements as <img ...>, mistune as <img ... />: the same element.
    return clean_html(rendered) == rendered.replace(" />", ">")


def safe_markdown(source: str, attachments: dict | None = None) -> str:
    """Markdown whose rendering is clean: ``source`` itself when nbconvert renders it to
    HTML that bleach leaves unchanged; else that HTML, cleaned, as one raw HTML block; else
    ``source`` as a code block (shown as text).

    Cleaning the Markdown text would not do: nbconvert renders ``[x](javascript:...)`` to a
    working link.
    """
    if _safe_rendering(source, attachments):
        return source
    try:
        cleaned = clean_html(_render_markdown(source, attachments))
    except Exception:
        cleaned = None
    if cleaned is not None:
        # One line, so that Markdown takes it as a single HTML block and leaves it alone.
        block = (
            '<div class="cvgrade-sanitized">'
            + cleaned.replace("\r", "").replace("\n", "&#10;")
            + "</div>"
        )
        if _safe_rendering(block):
            return block
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", source)), default=0))
    block = f"{fence}\n{source}\n{fence}"
    if _safe_rendering(block):
        return block
    return "*[content removed by the grader: it could not be shown safely]*"


def _clean_image_metadata(metadata) -> dict:
    # nbconvert writes width/height unquoted into <img>: "1 onerror=alert(1)" would run.
    clean = {}
    for mime in ("image/png", "image/jpeg"):
        found = metadata.get(mime) if isinstance(metadata, dict) else None
        if not isinstance(found, dict):
            continue
        kept = {}
        for key in ("width", "height"):
            value = found.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                kept[key] = int(value)
        if isinstance(found.get("unconfined"), bool):
            kept["unconfined"] = found["unconfined"]
        if found.get("needs_background") in ("light", "dark"):
            kept["needs_background"] = found["needs_background"]
        if isinstance(found.get("alt"), str):
            kept["alt"] = found["alt"]
        if kept:
            clean[mime] = kept
    return clean


def sanitize_output(output) -> None:
    """Make one code cell output safe to render as HTML, in place."""
    if output.get("output_type") not in ("display_data", "execute_result"):
        return  # stream and error text: the templates escape it
    data = output.get("data", {}) or {}
    kept = {}
    removed = []
    for mime, value in data.items():
        if mime in _SAFE_MIME:
            kept[mime] = value
        elif mime in _CLEANED_MIME and isinstance(value, str):
            if mime == "text/html":
                cleaned = clean_html(value)
            else:
                cleaned = safe_markdown(value)
            if cleaned == value or "text/plain" not in data:
                kept[mime] = cleaned
            else:
                removed.append(mime)  # the plain-text version says the same, safely
        else:
            removed.append(mime)
    if not kept:
        kept["text/plain"] = f"[{', '.join(removed)} output removed by the grader]"
    output["data"] = NotebookNode(kept)
    output["metadata"] = NotebookNode(_clean_image_metadata(output.get("metadata", {})))


class SanitizeOutputs(NbGraderPreprocessor):
    """HTML, SVG, scripts and Markdown from a notebook made safe to render (module
    docstring): outputs through :func:`sanitize_output`, Markdown cells through
    :func:`safe_markdown`, raw cells through :func:`clean_html`."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code":
            for output in cell.get("outputs", []):
                sanitize_output(output)
        elif cell.cell_type == "markdown":
            cell.source = safe_markdown(cell.source, cell.get("attachments"))
        elif cell.cell_type == "raw":
            cell.source = clean_html(cell.source)
        return cell, resources
