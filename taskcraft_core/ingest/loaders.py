"""Loaders that turn a file's bytes into a Document, and chunking that keeps exact offsets.

PDF (pypdf: per-page text, metadata title), HTML (beautifulsoup4: title, headings and main text;
scripts, styles and navigation dropped; links kept), text and Markdown (encoding detected by
charset-normalizer, binary data refused). Every failure is an IngestError whose message says what
is wrong with this one file; the caller prefixes the file name.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import posixpath
import re
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup, Tag
from charset_normalizer import from_bytes
from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError, PdfReadError

from taskcraft_core.errors import IngestError
from taskcraft_core.schema import Document, content_id

SUFFIX_TYPES: dict[str, str] = {
    ".pdf": "pdf",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
}
PAGE_SEPARATOR = "\n\n"
# Where chunks may be cut, best first (langchain's defaults); the last one cuts anywhere.
SEPARATORS = ["\n\n", "\n", " ", ""]
# Elements whose content is never document text: code, styling and the site's navigation chrome.
DROPPED_ELEMENTS = ("script", "style", "noscript", "template", "iframe", "svg", "canvas", "nav", "header",
                    "footer", "form", "button", "select")
BLOCK_ELEMENTS = ("p", "div", "section", "article", "main", "aside", "li", "ul", "ol", "dl", "dt", "dd", "tr",
                  "table", "blockquote", "pre", "figure", "figcaption", "br", "hr", "h1", "h2", "h3", "h4",
                  "h5", "h6", "title", "address")
UNFOLLOWED_SCHEMES = ("javascript", "mailto", "tel", "data", "about")
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# Ties between single-byte code pages are common on short texts; Western European text is the usual case.
PREFERRED_ENCODINGS = ("cp1252", "latin_1", "iso8859_15")
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
ATX_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
SETEXT_HEADING = re.compile(r"^(\S[^\n]*)\n(?:=+|-+)[ \t]*$", re.MULTILINE)


@dataclass
class Extracted:
    """What a loader read from a file, before it becomes a Document."""

    text: str
    title: str | None = None
    page_offsets: list[int] = field(default_factory=lambda: [0])
    links: list[str] = field(default_factory=list)


def doc_type_for(name: str) -> str:
    """The document type a file name stands for; IngestError for types we cannot read."""
    suffix = posixpath.splitext(name.lower())[1]
    if suffix not in SUFFIX_TYPES:
        raise IngestError(
            f"unsupported file type {suffix or '(no extension)'!r}",
            hint="supported: " + ", ".join(sorted(SUFFIX_TYPES)) + " and .zip archives of those",
        )
    return SUFFIX_TYPES[suffix]


def load_document(source: str, data: bytes, doc_type: str, base_url: str | None = None) -> Document:
    """Read one file's bytes as a Document; base_url resolves relative links of fetched pages."""
    if not data.strip():
        raise IngestError("the file is empty", hint="nothing to ingest")
    if doc_type == "pdf":
        extracted = read_pdf(data)
    elif doc_type == "html":
        extracted = read_html(data, base_url)
    else:
        extracted = read_text(data, markdown=doc_type == "markdown")
    content_hash = hashlib.sha256(extracted.text.encode("utf-8")).hexdigest()
    return Document(
        id=content_id(content_hash),
        source=source,
        content_hash=content_hash,
        title=extracted.title or fallback_title(source),
        doc_type=doc_type,
        text=extracted.text,
        pages=len(extracted.page_offsets),
        page_offsets=extracted.page_offsets,
        links=extracted.links,
    )


def fallback_title(source: str) -> str:
    """The file name (or a URL's last path segment, else its host) when a document names nothing."""
    parts = urlsplit(source)
    if parts.scheme in ("http", "https"):
        return posixpath.basename(parts.path.rstrip("/")) or parts.netloc
    return posixpath.basename(source.replace("\\", "/")) or source


# ---- PDF ------------------------------------------------------------------------------------


def read_pdf(data: bytes) -> Extracted:
    """Per-page text joined by blank lines, with each page's start offset and the metadata title."""
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise IngestError("the PDF is encrypted and no password was given", hint="decrypt it first, then ingest")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        title = reader.metadata.title if reader.metadata else None
    except (FileNotDecryptedError, NotImplementedError) as error:
        raise IngestError("the PDF is encrypted and no password was given", hint=str(error)) from None
    except IngestError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as error:
        raise IngestError(f"the PDF is corrupt or not a PDF ({error})", hint="re-export or repair the file") from None
    if not any(pages):
        raise IngestError(
            "the PDF has no extractable text", hint="it may hold only scanned images; run OCR on it first"
        )
    offsets, position = [], 0
    for text in pages:
        offsets.append(position)
        position += len(text) + len(PAGE_SEPARATOR)
    return Extracted(PAGE_SEPARATOR.join(pages), _clean_title(title), offsets)


# ---- HTML -----------------------------------------------------------------------------------


def read_html(data: bytes, base_url: str | None = None) -> Extracted:
    """The <title> (else the first heading), the main text with one line per block, and the links."""
    soup = BeautifulSoup(data, "html.parser")
    links = _html_links(soup, base_url)
    title = _clean_title(soup.title.get_text() if soup.title else None)
    chrome_heading = _first_html_heading(soup)
    for element in soup.find_all(DROPPED_ELEMENTS):
        element.decompose()
    main = soup.find("main") or soup.find("article") or soup.body or soup
    # A heading of the content names the page better than one in the site's header.
    title = title or _first_html_heading(main) or chrome_heading
    for element in main.find_all(BLOCK_ELEMENTS):
        # Blocks become lines; inline elements (links, emphasis) stay inside their sentence.
        element.insert_before("\n")
        element.insert_after("\n")
    lines = (" ".join(line.split()) for line in main.get_text().splitlines())
    text = "\n".join(line for line in lines if line)
    if not text:
        raise IngestError("the page has no readable text", hint="it may be built by JavaScript; save its text instead")
    return Extracted(text, title, links=links)


def _first_html_heading(element: Tag) -> str | None:
    heading = element.find(["h1", "h2", "h3", "h4", "h5", "h6"])
    return _clean_title(heading.get_text(" ")) if isinstance(heading, Tag) else None


def _html_links(soup: BeautifulSoup, base_url: str | None) -> list[str]:
    """Every followable href once, in page order, absolute when the page has a URL."""
    links: list[str] = []
    for anchor in soup.find_all("a", href=True):
        href = str(anchor["href"]).strip().split("#")[0]
        if not href or urlsplit(href).scheme.lower() in UNFOLLOWED_SCHEMES:
            continue
        link = urljoin(base_url, href) if base_url else href
        if link not in links:
            links.append(link)
    return links


# ---- text and Markdown ----------------------------------------------------------------------


def read_text(data: bytes, markdown: bool) -> Extracted:
    """Decoded text; the first heading (Markdown # or underlined) is the title; Markdown links kept."""
    text = decode_text(data).replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise IngestError("the file has no text", hint="nothing to ingest")
    links = list(dict.fromkeys(MARKDOWN_LINK.findall(text))) if markdown else []
    return Extracted(text, _first_heading(text), links=links)


def decode_text(data: bytes) -> str:
    """Text in whatever encoding it was written; IngestError when the bytes are not text at all."""
    for bom, encoding in BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    # A NUL byte never occurs in text in a one-byte encoding or UTF-8 (UTF-16 without BOM is rare).
    if b"\x00" in data[:65536]:
        raise IngestError("looks like binary data, not text", hint="check that the file type is right")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode(_detected_encoding(data), errors="replace")


def _detected_encoding(data: bytes) -> str:
    """charset-normalizer's guess; among equally good guesses the common Western ones win."""
    matches = list(from_bytes(data[:1_000_000]))
    if not matches:
        raise IngestError("looks like binary data, not text", hint="check that the file type is right")
    best = matches[0]
    tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    for encoding in PREFERRED_ENCODINGS:
        if any(encoding in match.could_be_from_charset for match in tied):
            return encoding
    return best.encoding


def _first_heading(text: str) -> str | None:
    matches = [m for m in (ATX_HEADING.search(text), SETEXT_HEADING.search(text)) if m]
    if not matches:
        return None
    return _clean_title(min(matches, key=lambda m: m.start()).group(1))


def _clean_title(title: str | None) -> str | None:
    cleaned = " ".join((title or "").split())
    return cleaned or None


# ---- chunks ---------------------------------------------------------------------------------
