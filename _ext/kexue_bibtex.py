"""The book's bibliography style: author-year labels told apart by a letter (Su, 2021a).

Registered with pybtex as the formatting style ``kexue`` (``bibtex_default_style`` in
``_config.yml``), with its own label and sorting styles. With ``bibtex_reference_style:
label`` a citation in the text reads ``[Su, 2021a]`` and the bibliography entry it links to
carries the same label, so the reader can find it; the plain author-year style printed
five different articles as "Su, 2021" and a numbered bibliography [1]-[55].

- Labels: the last names of the authors (one or two: ``Su``, ``Halko and Tropp``; three or
  more: ``Halko et al.``), a comma and the year; labels that would coincide get ``a``,
  ``b``, ... in the order of the bibliography.
- Order: by authors, then year, then month and day (a series of articles by one author in
  one year is lettered in the order it appeared), then title.
- Titles keep the case the .bib file gives them (``plain`` lower-cased all but the first
  letter, which turned the formula "n > 8.33 log N" into "n > 8.33 log n").
- Entry fixes: a month given as ``{sep}`` prints as "September" (not "sep"); a URL that
  ``howpublished`` already spells out with ``\\url{...}`` is printed once (as the link); an
  arXiv identifier that ``howpublished`` already names is not printed a second time.
"""

from __future__ import annotations

import re
from typing import Any

from pybtex.plugin import register_plugin
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.sorting.author_year_title import SortingStyle as AuthorYearTitle
from pybtex.style.template import field, sentence

MONTHS = {m[:3].lower(): m for m in (
    "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December")}

_URL_MACRO = re.compile(r",?\s*\\url\{([^}]*)\}")


def _plain(text: str) -> str:
    return re.sub(r"[{}]", "", text).strip()


def _last_names(person) -> str:
    return _plain(" ".join(person.prelast_names + person.last_names)) or _plain(str(person))


class LabelStyle(BaseLabelStyle):
    """``Author, year`` with a letter where labels coincide (see the module docstring)."""

    def format_label(self, entry) -> str:
        persons = entry.persons.get("author") or entry.persons.get("editor") or []
        if not persons:
            who = _plain(entry.fields.get("organization", "")) or \
                _plain(entry.fields.get("title", "Anon."))[:30]
        elif len(persons) == 1:
            who = _last_names(persons[0])
        elif len(persons) == 2:
            who = f"{_last_names(persons[0])} and {_last_names(persons[1])}"
        else:
            who = f"{_last_names(persons[0])} et al."
        return f"{who}, {_plain(entry.fields.get('year', 'n.d.'))}"

    def format_labels(self, sorted_entries):
        labels = [self.format_label(entry) for entry in sorted_entries]
        total = {label: labels.count(label) for label in labels}
        seen: dict[str, int] = {}
        for label in labels:
            if total[label] == 1:
                yield label
            else:
                k = seen.get(label, 0)
                seen[label] = k + 1
                yield label + chr(ord("a") + k)


class SortingStyle(AuthorYearTitle):
    """Authors, year, month, day, title."""

    def sorting_key(self, entry):
        author, year, title = super().sorting_key(entry)
        month = entry.fields.get("month", "")
        m = list(MONTHS).index(month[:3].lower()) + 1 if month[:3].lower() in MONTHS else (
            int(month) if month.isdigit() else 0)
        day = entry.fields.get("day", "")
        return (author, year, m, int(day) if day.isdigit() else 0, title)


def clean_entry(entry) -> Any:
    """A copy of ``entry`` with the fixes of the module docstring applied."""
    fields = entry.fields
    new = entry.__class__(entry.type, fields=dict(fields), persons=entry.persons)
    new.key = entry.key
    month = fields.get("month", "")
    if month[:3].lower() in MONTHS and len(month) <= 4:
        new.fields["month"] = MONTHS[month[:3].lower()]
    how = fields.get("howpublished", "")
    url = fields.get("url", "")
    m = _URL_MACRO.search(how)
    if m and (not url or m.group(1).rstrip("/") == url.rstrip("/")):
        new.fields["howpublished"] = _URL_MACRO.sub("", how).strip()
        new.fields["url"] = url or m.group(1)
    eprint = fields.get("eprint", "")
    if eprint and eprint in new.fields.get("howpublished", ""):
        del new.fields["eprint"]
    return new


class Style(PlainStyle):
    """pybtex's ``plain`` entries with the book's labels, order and fixes."""

    default_label_style = LabelStyle
    default_sorting_style = SortingStyle

    def format_title(self, e, which_field, as_sentence=True):
        # as written in the .bib file: plain's sentence case turned "log N" into "log n"
        formatted_title = field(which_field)
        return sentence[formatted_title] if as_sentence else formatted_title

    def format_entry(self, label, entry, bib_data=None):
        return super().format_entry(label, clean_entry(entry), bib_data=bib_data)


def register() -> None:
    """Make the styles known to pybtex (idempotent)."""
    for kind, cls in (("pybtex.style.formatting", Style),
                      ("pybtex.style.labels", LabelStyle),
                      ("pybtex.style.sorting", SortingStyle)):
        try:
            register_plugin(kind, "kexue", cls)
        except Exception:  # already registered (a second build in one process)
            pass


def setup(app) -> dict[str, Any]:
    register()
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
