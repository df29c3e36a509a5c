"""What a stored file may be, and how it is served: the content-type allow-list (file_types.csv), the
normalisation of a client's Content-Type, a look at the first bytes, and the headers of a file response.

Files are served from the same origin as /account and /oauth, so a file a browser would run (HTML, SVG,
XML with XHTML or XSLT, script) is stored XSS. Three layers keep it out, each enough on its own for modern
browsers: a type must be on the allow-list and the content must not be markup (upload); a file is served
inline only when it is a PDF or raster image that carries its signature, else as an attachment; and every
file response says `nosniff` and a sandboxing CSP, so even a file stored before these rules never runs
(download). Pure functions: no database, no Flask.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from importlib import resources

from werkzeug.http import parse_options_header

from gateway.errors import UnsupportedMediaType

OCTET_STREAM = "application/octet-stream"
#: Types that say nothing about the bytes: the file name's extension decides (then the fallback above).
#: application/x-www-form-urlencoded is what curl sends with --data-binary when no type is given.
UNSPECIFIC = frozenset({OCTET_STREAM, "application/x-www-form-urlencoded"})
#: Charsets a text file may declare (Python codec name -> the name we store). All are ASCII-compatible, so
#: markup is found in them as in ASCII; UTF-7 (a classic XSS charset), UTF-16/32 and the rest are refused.
#: UTF-8 and US-ASCII are stored as no charset: text is served as UTF-8.
CHARSETS = {"utf-8": None, "ascii": None, "iso8859-1": "iso-8859-1", "iso8859-15": "iso-8859-15",
            "cp1252": "windows-1252"}
#: WHATWG MIME Sniffing §7: the "resource header", the first bytes a browser looks at to decide what a
#: resource is. Only these are examined: markup a polyglot hides further on meets the served type,
#: nosniff and the CSP sandbox, not this check (a search of whole files would refuse real JPEGs and
#: videos whose compressed bytes happen to spell a tag).
HEAD_BYTES = 1445
#: Content that begins as markup: a tag, a comment or doctype, a processing instruction (<?xml), an end tag.
_MARKUP_START = re.compile(r"<[a-z!?/]", re.IGNORECASE)
#: HTML and SVG elements that make a document run script or load content, anywhere in the header
#: (a GIF or JPEG comment, a text file's second line). FHIR narrative XHTML (div, table, a, img) is not here.
_ACTIVE_ELEMENT = re.compile(r"<(?:html|head|body|script|svg|iframe|frameset|object|embed)(?=[\s/>])"
                             r"|<!doctype\s+html", re.IGNORECASE)
#: Whitespace, NUL and byte order marks (U+FEFF; the UTF-8 BOM as Latin-1 is "ï»¿") a browser or a lenient
#: parser skips before the first tag.
_SKIPPED = " \t\n\r\f\v\x00\ufeff"
_UTF16_BOMS = (("\xff\xfe", "utf-16-le"), ("\xfe\xff", "utf-16-be"))

#: Every file response (stored files, Binary, bulk export files, the record zip): no type sniffing, and a
#: document that may not run script, load anything, or reach the origin's cookies and storage.
SAFE_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox"}


@dataclass(frozen=True)
class FileType:
    name: str
    inline: bool
    #: Alternatives, each a tuple of (offset, bytes) that must all match; empty: any bytes.
    signatures: tuple[tuple[tuple[int, bytes], ...], ...]

    @property
    def text(self) -> bool:
        return self.name.startswith("text/")

    def carries_signature(self, data: bytes) -> bool:
        return not self.signatures or any(
            all(data[offset:offset + len(magic)] == magic for offset, magic in parts) for parts in self.signatures)


@dataclass(frozen=True)
class Serving:
    """How a stored file goes out: the Content-Type to send, and whether a browser may display it."""

    content_type: str
    inline: bool


def _signatures(text: str) -> tuple[tuple[tuple[int, bytes], ...], ...]:
    alternatives = []
    for alternative in filter(None, text.split("|")):
        parts = [part.split(":") for part in alternative.split()]
        alternatives.append(tuple((int(offset), bytes.fromhex(magic)) for offset, magic in parts))
    return tuple(alternatives)


def _load() -> tuple[dict[str, FileType], dict[str, FileType]]:
    raw = resources.files("gateway.services").joinpath("file_types.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(io.StringIO("\n".join(line for line in raw.splitlines() if not line.startswith("#"))))
    by_name: dict[str, FileType] = {}
    by_extension: dict[str, FileType] = {}
    for row in rows:
        kind = FileType(row["type"], row["served"] == "inline", _signatures(row["signature"]))
        if kind.inline and not kind.signatures:
            raise ValueError(f"file_types.csv: {kind.name} is served inline without a signature to check")
        for name in [kind.name, *filter(None, row["aliases"].split("|"))]:
            if name in by_name:
                raise ValueError(f"file_types.csv: {name} is listed twice")
            by_name[name] = kind
        for extension in filter(None, row["extensions"].split("|")):
            by_extension.setdefault(extension, kind)
    return by_name, by_extension


TYPES, BY_EXTENSION = _load()


def _media_type(given: str | None) -> tuple[str | None, str | None]:
    """(type/subtype lower-cased without whitespace, or None when none was given; the charset we keep).
    Other parameters (fhirVersion, format=flowed, ...) do not change what the bytes are and are dropped."""
    value, params = parse_options_header(given or "")
    media = "".join(value.split()).lower() or None
    charset = params.get("charset")
    if charset is None:
        return media, None
    try:
        codec = codecs.lookup(charset.strip()).name
    except LookupError:
        codec = None
    if codec not in CHARSETS:
        raise UnsupportedMediaType(f"Text in charset {charset} is not accepted; send it as UTF-8.")
    return media, CHARSETS[codec]


def _head_text(data: bytes) -> str:
    """The resource header as text, leading whitespace and byte order marks skipped (UTF-16 decoded)."""
    text = data[:HEAD_BYTES].decode("latin-1")
    while True:
        text = text.lstrip(_SKIPPED)
        if text.startswith("\xef\xbb\xbf"):
            text = text[3:]
            continue
        bom = next(((mark, codec) for mark, codec in _UTF16_BOMS if text.startswith(mark)), None)
        if bom is None:
            return text
        text = text[2:].encode("latin-1").decode(bom[1], "ignore")


def active_content(data: bytes) -> str | None:
    """What makes these bytes something a browser would run, or None."""
    text = _head_text(data)
    if _MARKUP_START.match(text):
        return "markup (HTML, SVG or XML)"
    if _ACTIVE_ELEMENT.search(text):
        return "HTML or SVG markup"
    return None


def _extension(filename: str) -> str:
    return filename.rsplit(".", 1)[-1].lower() if "." in filename else ""


def accept(filename: str, given: str | None, data: bytes) -> str:
    """The content type to store for an upload, or UnsupportedMediaType (Parse 130, FHIR 415) saying why.

    The client's type decides; when it gives none, or one that says nothing (UNSPECIFIC), the name's
    extension does, else the file is application/octet-stream. Either way the type must be on the list,
    a type shown inline must carry its signature, and no content may begin as (or hold) markup."""
    media, charset = _media_type(given)
    kind = TYPES.get(media or OCTET_STREAM)
    if media in UNSPECIFIC or kind is TYPES[OCTET_STREAM]:
        kind = BY_EXTENSION.get(_extension(filename)) or TYPES[OCTET_STREAM]
    elif kind is None:
        raise UnsupportedMediaType(f"File upload of type {media} is disabled: a health record holds PDF, "
                                   "images, text, CSV, JSON, DICOM, audio, video and office documents.")
    if not kind.carries_signature(data):
        raise UnsupportedMediaType(f"The file's content is not {kind.name}.")
    active = active_content(data)
    if active is not None:
        raise UnsupportedMediaType(f"The file's content is {active}, which is not accepted as any type.")
    return f"{kind.name}; charset={charset}" if charset and kind.text else kind.name


def serving(stored_type: str | None, data: bytes) -> Serving:
    """How to serve a stored file. A file that would be accepted today keeps its type (text in UTF-8 unless
    it declared another safe charset), inline only for PDF and raster images. Anything else, such as
    text/html or image/svg+xml stored before the allow-list, or an image whose bytes are not one, goes out
    as application/octet-stream to download: its bytes and recorded type stay as they are."""
    try:
        media, charset = _media_type(stored_type)
    except UnsupportedMediaType:
        return Serving(OCTET_STREAM, False)
    kind = TYPES.get(media or OCTET_STREAM)
    if kind is None or not kind.carries_signature(data) or active_content(data) is not None:
        return Serving(OCTET_STREAM, False)
    if kind.text:
        return Serving(f"{kind.name}; charset={charset or 'utf-8'}", False)
    return Serving(kind.name, kind.inline)


def _safe_filename(name: str) -> str:
    """A file name fit for a quoted header parameter (uploads are already limited to these characters)."""
    return re.sub(r"[^A-Za-z0-9@. ~_-]", "_", name or "file")


def download_headers(how: Serving, filename: str) -> dict[str, str]:
    """The headers of a stored file's response (besides its Content-Type, `how.content_type`)."""
    disposition = "inline" if how.inline else "attachment"
    return {**SAFE_HEADERS, "Content-Disposition": f'{disposition}; filename="{_safe_filename(filename)}"'}
