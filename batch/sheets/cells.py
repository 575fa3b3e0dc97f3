"""What one cell holds: the user key in a UPN cell, the licenses in a licenses cell.

``clean_user`` is what is looked up; the cell itself stays as written (``InputRow.cells``) and goes to the
results unchanged. ``split_licenses`` gives the licenses of a cell in order.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .catalog import ProductCatalog

# ------------------------------------------------------------------------------------------ user cells

#: Characters that copy-paste from web pages, Teams, Outlook and PDFs leaves in a cell and nobody sees:
#: zero-width space/joiners, word joiner, BOM, soft hyphen, direction marks and embeddings.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]")
_SPACES = re.compile(r"[\s\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
#: Link and address-type prefixes: mailto: (a link copied from a web page or a mail), SMTP:/smtp: (Exchange
#: proxy addresses), sip: (Teams / Skype for Business addresses).
_PREFIX = re.compile(r"^(?:mailto|smtp|sip)\s*:\s*", re.IGNORECASE)
_QUOTES = "\"'`\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u00ab\u00bb\u2039\u203a"
_EDGE_OPEN = _QUOTES + "<([{"
_EDGE_CLOSE = _QUOTES + ">)]}.,;:!?"
_EMAIL = re.compile(r"[^\s<>()\[\]\"',;:]+@[^\s<>()\[\]\"',;:]+")
#: ``Adele Vance <adele.vance@contoso.com>`` (Outlook, Gmail), ``"Vance, Adele" <...>``, and the same with
#: the address in parentheses or square brackets.
#: The example row of Entra's bulk templates ("Example: chris@contoso.com") and its kin are not a user: the
#: address is not taken out of them, so validation reports the row instead of licensing chris@contoso.com.
_EXAMPLE = re.compile(r"^\W*(?:for\s+)?(?:example|sample|e\.?g)\b", re.IGNORECASE)
_DISPLAY_FORM = re.compile(r"[<(\[]\s*(?:mailto:\s*)?([^<>()\[\]\s]+@[^<>()\[\]\s]+?)\s*[>)\]]")


def clean_user(cell: str) -> str:
    """The user key in a cell as written: a UPN, a mail address or an object id.

    Removes invisible characters, turns non-breaking and other unusual spaces into spaces, takes the address
    out of a display-name form (``Adele Vance <adele.vance@contoso.com>``), drops ``mailto:`` (and the
    ``?subject=`` that may follow), ``SMTP:`` and ``sip:`` prefixes, surrounding quotes and brackets, and
    trailing punctuation. Case is kept (look-ups ignore it). An empty result means the cell had no user.
    """
    t = cell
    if not t.isascii():
        t = _INVISIBLE.sub("", t)
        t = unicodedata.normalize("NFKC", t)  # fullwidth @ and letters from East Asian input methods
        t = _SPACES.sub(" ", t)
    t = t.strip()
    if not t:
        return ""
    if _EXAMPLE.match(t):
        return t
    if " " in t or "<" in t:
        found = _DISPLAY_FORM.findall(t)
        if len(found) == 1:
            t = found[0]
    t = _strip_edges(t)
    if t.lower().startswith(("mailto", "smtp", "sip")):
        t = _PREFIX.sub("", t)
        if "?" in t:
            t = t.split("?", 1)[0]
        t = _strip_edges(t)
    if " " in t and "@" in t:
        emails = _EMAIL.findall(t)
        if len(emails) == 1:  # "adele.vance@contoso.com (Sales)", "Adele: adele.vance@contoso.com"
            t = _strip_edges(emails[0])
    return t


def _strip_edges(t: str) -> str:
    while True:
        s = t.strip()
        if s and s[-1] in _EDGE_CLOSE:
            s = s[:-1]
        if s and s[0] in _EDGE_OPEN:
            s = s[1:]
        if s == t:
            return s
        t = s


# --------------------------------------------------------------------------------------- license cells

_STRONG_SPLIT = re.compile(r"\s*(?:;|\||\r\n|\r|\n)\s*")
_SPACE = re.compile(r"\s")
_TIGHT_PLUS = re.compile(r"(?<=\S)\+(?=\S)")


def split_licenses(cell: str, catalog: ProductCatalog | None = None) -> list[str]:
    """The licenses in one cell, in order, without repeats (compared case-insensitively).

    ``;`` ``|`` and line breaks always separate. ``,`` and ``+`` separate too, except inside a product name:
    some of Microsoft's product names contain commas ("Windows 365 Business 16 vCPU, 64 GB, 1 TB") or a
    plus ("Enterprise Mobility + Security E3"), and the Microsoft 365 admin center's user export joins the
    product names of its Licenses column with ``+`` ("Microsoft 365 E3+Enterprise Mobility + Security E3").

    With a catalog, a piece that is a known product name stays whole, and neighbouring pieces that together
    form a known name are joined again. Without one, a comma or a spaced `` + `` separates only when no
    part has a space (``SPE_E3, EMS`` and ``SPE_E3 + EMS`` split; ``Dynamics 365 for Sales, Enterprise
    Edition`` does not), and a ``+`` with no space on either side always separates. Resolution then names
    the problem if a piece is really two products.
    """
    out: list[str] = []
    seen: set[str] = set()
    for piece in _STRONG_SPLIT.split(cell.strip()):
        if not piece:
            continue
        for part in _split_on(piece, ",", catalog):
            for x in _split_plus(part, catalog) if "+" in part else (part,):
                key = x.casefold()
                if x and key not in seen:
                    seen.add(key)
                    out.append(x)
    return out


def _split_on(piece: str, sep: str, catalog: ProductCatalog | None) -> list[str]:
    if sep not in piece:
        return [piece]
    candidates = [x.strip() for x in piece.split(sep)]
    if catalog is not None:
        return [piece] if catalog.knows(piece) else _rejoin(piece.split(sep), sep, catalog)
    if not any(_SPACE.search(x) for x in candidates):
        return candidates
    return [piece]


def _split_plus(piece: str, catalog: ProductCatalog | None) -> list[str]:
    if catalog is not None:
        return [piece] if catalog.knows(piece) else _rejoin(piece.split("+"), "+", catalog)
    out: list[str] = []
    for chunk in _TIGHT_PLUS.split(piece):
        out.extend(_split_on(chunk.strip(), "+", None))
    return [x for x in out if x]


def _rejoin(raw: list[str], sep: str, catalog: ProductCatalog) -> list[str]:
    """Split pieces, with each longest run of neighbours that forms a known product name joined again."""
    out: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        k = n
        while k > i + 1 and not catalog.knows(sep.join(raw[i:k]).strip()):
            k -= 1
        text = sep.join(raw[i:k]).strip()
        if text:
            out.append(text)
        i = k
    return out
