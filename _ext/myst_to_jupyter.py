"""Turn the MyST Markdown of a chapter into Markdown that Jupyter and Colab render.

The chapters are written for Sphinx: glue roles, ``{eq}``/``{numref}``/``{cite}`` roles,
``{prf:theorem}`` and ``{exercise}`` directives, ``(label)=`` targets, ``$$ ... $$ (label)``
equations and the site's TeX macros. A notebook reader sees none of that rendered. This
module rewrites one Markdown cell at a time, given a :class:`Resolver` that knows what the
site shows for each of those pieces (numbers, citation labels, glued values), so that the
published notebook reads like the page:

- glued values become their text, formatted exactly as on the site (numbers in
  scientific notation typeset as ``a \\times 10^{b}``);
- equation, figure, theorem and exercise references become the site's numbers, and
  labelled equations carry ``\\tag{n}``;
- theorems, proofs, exercises and admonitions become block quotes with a bold title,
  solutions become collapsed ``<details>`` blocks;
- citations become the site's author-year labels, listed in a References cell at the end;
- the site's TeX macros are expanded, so nothing depends on a macro definition.

Anything the converter does not know raises :class:`MystSyntaxError`, so an unhandled
construct fails the build instead of reaching a reader raw. Pure Python, no Sphinx import:
the Sphinx side is ``_ext/notebooks.py``.
"""

from __future__ import annotations

import ast
import base64
import posixpath
import re
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["MystSyntaxError", "Resolver", "convert_markdown", "glue_values", "leftover_myst",
           "typeset_number", "expand_macros"]

GLUE_PREFIX = "application/papermill.record/"


class MystSyntaxError(ValueError):
    """A MyST construct the converter cannot translate (names it and where it is)."""


@dataclass
class Resolver:
    """What the site shows for each label, citation and glue key of one page.

    Attributes
    ----------
    glue : dict
        glue key -> mime bundle (``{"text/plain": ..., "image/png": ...}``).
    equations : dict
        equation label -> number as shown, e.g. ``"12"``.
    targets : dict
        figure/theorem/exercise/section label -> text of a reference to it, e.g.
        ``"Fig. 3"``, ``"Theorem 4"``, or a section title.
    blocks : list
        ``(kind, caption)`` of each numbered theorem-like or exercise block of the page in
        document order, e.g. ``("theorem", "Theorem 4")``; consumed in order.
    citations : dict
        bibtex key -> in-text label, e.g. ``"Su, 2021a"``.
    references : dict
        bibtex key -> the formatted reference as listed in the bibliography.
    docs : dict
        document name -> title, for ``{doc}`` roles.
    docdir : str
        folder of the page's document name (``{doc}`` targets are relative to it).
    macros : dict
        macro name (without backslash) -> its expansion.
    """

    glue: dict = field(default_factory=dict)
    equations: dict = field(default_factory=dict)
    targets: dict = field(default_factory=dict)
    blocks: list = field(default_factory=list)
    citations: dict = field(default_factory=dict)
    references: dict = field(default_factory=dict)
    docs: dict = field(default_factory=dict)
    macros: dict = field(default_factory=dict)
    docdir: str = ""
    cited: list = field(default_factory=list)
    attachments: dict = field(default_factory=dict)
    _block_pos: int = 0

    def next_block(self, kind: str) -> str:
        """The caption (e.g. ``Theorem 4``) of the next numbered block, checked by kind."""
        if self._block_pos >= len(self.blocks):
            raise MystSyntaxError(f"more {kind!r} blocks in the source than on the page")
        got_kind, caption = self.blocks[self._block_pos]
        if got_kind != kind:
            raise MystSyntaxError(
                f"block {self._block_pos}: the source has a {kind!r}, the page a {got_kind!r}")
        self._block_pos += 1
        return caption


# --- numbers and glue ------------------------------------------------------------------

_SCI = re.compile(r"^([+-]?\d+(?:\.\d*)?)[eE]([+-]?\d+)$")


def typeset_number(text: str) -> str:
    """``2.0e-15`` -> ``$2.0 \\times 10^{-15}$``; any other text unchanged."""
    m = _SCI.match(text.strip())
    if not m:
        return text
    mant, exp = m.group(1), int(m.group(2))
    return f"${mant} \\times 10^{{{exp}}}$"


def glue_values(nb) -> dict:
    """glue key -> mime bundle, read from the outputs of an executed notebook."""
    values = {}
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}).get("scrapbook")
            if not meta or "name" not in meta:
                continue
            prefix = meta.get("mime_prefix", GLUE_PREFIX)
            values[meta["name"]] = {k[len(prefix):]: v for k, v in out.get("data", {}).items()
                                    if k.startswith(prefix)}
    return values


def _glue_bundle(res: Resolver, key: str) -> dict:
    if key not in res.glue:
        raise MystSyntaxError(f"glue key {key!r} is not glued in the executed notebook")
    return res.glue[key]


def _glue_text(res: Resolver, spec: str) -> str:
    key, _, fmt = spec.partition(":")
    text = _glue_bundle(res, key.strip()).get("text/plain")
    if text is None:
        raise MystSyntaxError(f"glue key {key!r} has no text/plain value")
    if fmt:
        try:
            text = format(ast.literal_eval(text), fmt)
        except (ValueError, SyntaxError, TypeError) as exc:
            raise MystSyntaxError(f"glue {key!r}: cannot format {text!r} with {fmt!r}") from exc
    elif text.startswith("'") and text.endswith("'") or text.startswith('"') and text.endswith('"'):
        text = ast.literal_eval(text)
    return typeset_number(text)


def _glue_image(res: Resolver, key: str, alt: str) -> str:
    bundle = _glue_bundle(res, key)
    for mime, ext in (("image/png", "png"), ("image/jpeg", "jpg"), ("image/svg+xml", "svg")):
        if mime in bundle:
            data = bundle[mime]
            if mime == "image/svg+xml":
                data = base64.b64encode("".join(data).encode() if isinstance(data, list)
                                        else data.encode()).decode()
            name = f"{key}.{ext}"
            res.attachments[name] = {mime: data}
            return f"![{alt}](attachment:{name})"
    if "text/markdown" in bundle:
        return bundle["text/markdown"]
    raise MystSyntaxError(f"glue key {key!r} holds no image")


# --- inline roles ------------------------------------------------------------------------

_ROLE = re.compile(r"\{(?P<role>[A-Za-z][\w:.-]*)\}`(?P<content>[^`]*)`")
_TITLED = re.compile(r"^(?P<title>.*?)\s*<(?P<target>[^<>]+)>$", re.S)
_PY_ROLES = {"func", "meth", "class", "mod", "attr", "obj", "data", "exc",
             "py:func", "py:meth", "py:class", "py:mod", "py:attr", "py:obj", "py:data"}


def _split_titled(content: str) -> tuple[str | None, str]:
    m = _TITLED.match(content.strip())
    if m:
        return m.group("title"), m.group("target").strip()
    return None, content.strip()


def _cite(res: Resolver, content: str, role: str) -> str:
    keys = [k.strip() for k in content.split(",") if k.strip()]
    labels = []
    for key in keys:
        if key not in res.citations:
            raise MystSyntaxError(f"citation {key!r} is not in the site's bibliography")
        if key not in res.cited:
            res.cited.append(key)
        labels.append(res.citations[key])
    if role == "cite:t":
        return "; ".join(labels)
    return "[" + "; ".join(labels) + "]"


def _ref_text(res: Resolver, role: str, content: str) -> str:
    title, target = _split_titled(content)
    if role == "eq":
        if target not in res.equations:
            raise MystSyntaxError(f"equation {target!r} has no number on the page")
        return f"({res.equations[target]})"
    if role == "doc":
        name = target[:-3] if target.endswith(".md") else target
        name = name.lstrip("/") if name.startswith("/") else \
            posixpath.normpath(posixpath.join(res.docdir, name))
        shown = res.docs.get(name)
        if title is None and shown is None:
            raise MystSyntaxError(f"document {target!r} is unknown")
        return f"*{title or shown}*"
    text = res.targets.get(target)
    if text is None:
        raise MystSyntaxError(f"{role} target {target!r} is unknown")
    if title:
        return title.replace("%s", text.split()[-1]) if "%s" in title else title
    return text


def _role(res: Resolver, m: re.Match) -> str:
    role, content = m.group("role"), m.group("content")
    if role in ("glue:text", "glue"):
        bundle = _glue_bundle(res, content.partition(":")[0].strip())
        if role == "glue" and "text/plain" not in bundle:
            return _glue_image(res, content.strip(), content.strip())
        return _glue_text(res, content)
    if role == "glue:md":
        return _glue_bundle(res, content.strip()).get("text/markdown", "")
    if role in ("glue:math",):
        latex = _glue_bundle(res, content.strip()).get("text/latex", "")
        return latex if latex.startswith("$") else f"${latex}$"
    if role in ("eq", "numref", "ref", "prf:ref", "doc", "std:ref"):
        return _ref_text(res, role, content)
    if role in ("cite", "cite:p", "cite:t", "cite:ps", "cite:ts"):
        return _cite(res, content, role)
    if role in _PY_ROLES:
        title, target = _split_titled(content)
        if title:
            return f"`{title}`"
        short = target.lstrip("~")
        if target.startswith("~"):
            short = short.split(".")[-1]
        suffix = "()" if role.endswith(("func", "meth")) else ""
        return f"`{short}{suffix}`"
    if role == "kbd":
        return f"<kbd>{content}</kbd>"
    if role == "math":
        return f"${content}$"
    if role in ("sub", "sup"):
        return f"<{role}>{content}</{role}>"
    if role == "abbr":
        title, target = _split_titled(content.replace("(", "<").replace(")", ">"))
        return title or target
    raise MystSyntaxError(f"unknown role {{{role}}} in {m.group(0)!r}")


_ROLE_OR_CODE = re.compile(_ROLE.pattern + r"|(?P<ticks>`+)(?P<code>.+?)(?<!`)(?P=ticks)(?!`)", re.S)


def _inline(res: Resolver, text: str) -> str:
    """Resolve roles (leaving inline code spans alone), then expand the TeX macros."""
    def one(m: re.Match) -> str:
        return m.group(0) if m.group("ticks") else _role(res, m)

    parts, pos = [], 0
    for m in _ROLE_OR_CODE.finditer(text):
        parts.append(expand_macros(text[pos:m.start()], res.macros))
        parts.append(one(m) if m.group("ticks") else expand_macros(one(m), res.macros))
        pos = m.end()
    parts.append(expand_macros(text[pos:], res.macros))
    return "".join(parts)


def expand_macros(text: str, macros: dict) -> str:
    """Replace each ``\\name`` of ``macros`` (not followed by a letter) by its expansion."""
    for name, expansion in macros.items():
        text = re.sub(r"\\" + re.escape(name) + r"(?![A-Za-z])",
                      lambda _m, e=expansion: e, text)
    return text


# --- block structure ---------------------------------------------------------------------

_OPEN = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:.-]+)\}[ \t]*(?P<arg>.*)$")
_PLAIN_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})")
_TARGET = re.compile(r"^\s*\(([^()\s]+)\)=\s*$")
_OPTION = re.compile(r"^:(?P<key>[\w-]+):\s*(?P<value>.*)$")
_DMATH_OPEN = re.compile(r"^\s*\$\$(?P<rest>.*)$")
_DMATH_CLOSE = re.compile(r"^(?P<body>.*?)\$\$\s*(?:\((?P<label>[^()\s]+)\))?\s*$")

_THEOREM_KINDS = {"theorem", "lemma", "proposition", "corollary", "definition", "remark",
                  "example", "conjecture", "axiom", "criterion", "algorithm", "assumption",
                  "observation", "property", "notation"}
_ADMONITIONS = {"note": "Note", "tip": "Tip", "hint": "Hint", "warning": "Warning",
                "important": "Important", "caution": "Caution", "attention": "Attention",
                "danger": "Danger", "error": "Error", "seealso": "See also"}
_DROPPED = {"bibliography", "tableofcontents", "toctree"}


def _quote(text: str) -> str:
    return "\n".join(("> " + line) if line.strip() else ">" for line in text.strip("\n").split("\n"))


def _directive_parts(lines: list[str]) -> tuple[dict, list[str]]:
    options, i = {}, 0
    if lines and lines[0].strip() == "---":  # YAML options block
        j = 1
        while j < len(lines) and lines[j].strip() != "---":
            key, _, value = lines[j].partition(":")
            options[key.strip()] = value.strip()
            j += 1
        i = j + 1
    while i < len(lines):
        m = _OPTION.match(lines[i])
        if not m:
            break
        options[m.group("key")] = m.group("value").strip()
        i += 1
    return options, lines[i:]


def _list_table(res: Resolver, body: list[str], options: dict) -> str:
    rows, current = [], None
    for line in body:
        if line.startswith("* - "):
            current = [line[4:]]
            rows.append(current)
        elif line.startswith("  - ") and current is not None:
            current.append(line[4:])
        elif line.strip() and current is not None:
            current[-1] += " " + line.strip()
    if not rows:
        raise MystSyntaxError("list-table without rows")
    cells = [[_inline(res, c.strip()).replace("|", "\\|") for c in row] for row in rows]
    width = max(len(r) for r in cells)
    cells = [r + [""] * (width - len(r)) for r in cells]
    header_rows = int(options.get("header-rows", "0") or 0)
    head = cells[0] if header_rows else [""] * width
    body_rows = cells[1:] if header_rows else cells
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(r) + " |" for r in body_rows]
    return "\n".join(lines)


def _directive(res: Resolver, name: str, arg: str, inner: list[str]) -> str:
    options, body_lines = _directive_parts(inner)
    body = _convert_lines(res, body_lines)
    title = _inline(res, arg.strip()) if arg.strip() else ""
    if name.startswith("prf:"):
        kind = name[4:]
        if kind == "proof":
            return _quote(f"*Proof.* {body.strip()} $\\blacksquare$")
        if kind not in _THEOREM_KINDS:
            raise MystSyntaxError(f"unknown directive {{{name}}}")
        if "nonumber" in options:
            head = f"**{kind.capitalize()}**"
        else:
            head = f"**{res.next_block(kind)}**"
        head += f" ({title})." if title else "."
        return _quote(f"{head} {body.strip()}" if not body.lstrip().startswith(("$$", ">", "-", "*", "1."))
                      else f"{head}\n\n{body.strip()}")
    if name == "exercise":
        head = f"**{res.next_block('exercise')}**"
        head += f" ({title})." if title else "."
        return _quote(f"{head}\n\n{body.strip()}")
    if name == "solution":
        target = arg.strip()
        ref = res.targets.get(target, "the exercise")
        return (f"<details>\n<summary>Solution to {ref}</summary>\n\n{body.strip()}\n\n"
                f"</details>")
    if name in _ADMONITIONS or name == "admonition":
        head = title if name == "admonition" else _ADMONITIONS[name]
        return _quote(f"**{head}.** {body.strip()}" if body.strip() else f"**{head}.**")
    if name in ("glue:figure", "glue"):
        alt = options.get("alt", arg.strip())
        image = _glue_image(res, arg.strip(), alt)
        label = options.get("name")
        caption = body.strip()
        if label and label in res.targets:
            caption = f"*{res.targets[label]}:* {caption}" if caption else f"*{res.targets[label]}*"
        return image + (f"\n\n{caption}" if caption else "")
    if name == "glue:md":
        return _glue_bundle(res, arg.strip()).get("text/markdown", "")
    if name == "math":
        label = options.get("label")
        tex = "\n".join(body_lines).strip()
        tag = f" \\tag{{{res.equations[label]}}}" if label in res.equations else ""
        return f"$$\n{expand_macros(tex, res.macros)}{tag}\n$$"
    if name == "list-table":
        table = _list_table(res, body_lines, options)
        return (f"**{title}**\n\n" if title else "") + table
    if name in _DROPPED:
        return ""
    raise MystSyntaxError(f"unknown directive {{{name}}}")


def _convert_lines(res: Resolver, lines: list[str]) -> str:
    out: list[str] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            out.append(_inline(res, "\n".join(para)))
            para.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        m = _OPEN.match(line)
        if m:
            flush()
            fence = m.group("fence")
            close = re.compile(r"^ {0,3}" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}\s*$")
            j = i + 1
            while j < len(lines) and not close.match(lines[j]):
                j += 1
            if j >= len(lines):
                raise MystSyntaxError(f"unclosed directive {{{m.group('name')}}}")
            out.append(_directive(res, m.group("name"), m.group("arg"), lines[i + 1:j]))
            i = j + 1
            continue
        m = _PLAIN_FENCE.match(line)
        if m:  # a code block: copied as it is
            flush()
            fence = m.group("fence")
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith(fence):
                j += 1
            out.append("\n".join(lines[i:j + 1]))
            i = j + 1
            continue
        if _TARGET.match(line):
            flush()
            i += 1
            continue
        m = _DMATH_OPEN.match(line)
        if m:
            flush()
            block = [m.group("rest")]
            j = i
            close = _DMATH_CLOSE.match(m.group("rest")) if "$$" in m.group("rest") else None
            while close is None:
                j += 1
                if j >= len(lines):
                    raise MystSyntaxError("unclosed $$ display math")
                close = _DMATH_CLOSE.match(lines[j])
                if close:
                    block.append(close.group("body"))
                else:
                    block.append(lines[j])
            if j == i:
                block = [close.group("body")]
            label = close.group("label")
            tex = "\n".join(b for b in block if b.strip()).strip()
            if label:
                if label not in res.equations:
                    raise MystSyntaxError(f"equation {label!r} has no number on the page")
                tex += f" \\tag{{{res.equations[label]}}}"
            out.append("$$\n" + expand_macros(tex, res.macros) + "\n$$")
            i = j + 1
            continue
        if not line.strip():
            flush()
            out.append("")
        else:
            para.append(line)
        i += 1
    flush()
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text)


def convert_markdown(source: str, res: Resolver) -> str:
    """The Jupyter Markdown for one MyST Markdown cell.

    Raises
    ------
    MystSyntaxError
        On a role, directive, label or glue key the converter cannot resolve.
    """
    return _convert_lines(res, source.split("\n")).strip("\n")


# --- the check -----------------------------------------------------------------------------

_LEFTOVER = [
    (re.compile(r"\{[A-Za-z][\w:.-]*\}`"), "a MyST role"),
    (re.compile(r"^ {0,3}(`{3,}|:{3,})\{", re.M), "a MyST directive fence"),
    (re.compile(r"^\s*\([^()\s]+\)=\s*$", re.M), "a label line"),
    (re.compile(r"\$\$\s*\([A-Za-z][\w.-]*\)"), "an equation label"),
    (re.compile(r"^:(label|name|class|tags|nonumber|alt):", re.M), "a directive option"),
]


def leftover_myst(markdown: str, macros: dict | None = None) -> list[str]:
    """What in ``markdown`` Jupyter would show as raw MyST (empty list when clean)."""
    found = []
    stripped = re.sub(r"^ {0,3}(`{3,}|~{3,})(?!\{).*?^ {0,3}\1\s*$", "", markdown, flags=re.S | re.M)
    for pattern, what in _LEFTOVER:
        for m in pattern.finditer(stripped):
            found.append(f"{what}: {stripped[max(0, m.start() - 30):m.end() + 30]!r}")
    for name in (macros or {}):
        for m in re.finditer(r"\\" + re.escape(name) + r"(?![A-Za-z])", stripped):
            found.append(f"undefined macro \\{name}: "
                         f"{stripped[max(0, m.start() - 30):m.end() + 30]!r}")
    return found


Converter = Callable[[str, Resolver], str]
