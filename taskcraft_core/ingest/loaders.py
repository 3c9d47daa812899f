"""Loaders that turn a file's bytes into a Document.

PDF (pypdf: per-page text, metadata title, first line as heading), HTML (trafilatura's main content,
so breadcrumbs, next/previous bars, sidebars, footers and copyright lines never reach the text; the
parser below when trafilatura finds nothing; title, H1, og:site_name and every link kept), text and
Markdown (encoding detected by charset-normalizer, binary data refused). Every failure is an
IngestError whose message says what is wrong with this one file; the caller prefixes the file name.
"""

from __future__ import annotations

import codecs
import hashlib
import posixpath
import re
from configparser import ConfigParser
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

import trafilatura
from bs4 import BeautifulSoup, Tag
from charset_normalizer import from_bytes
from lxml import etree
from trafilatura.settings import use_config

from taskcraft_core.errors import IngestError
from taskcraft_core.ingest.names import clean_name, document_names, site_affixes
from taskcraft_core.ingest.pdf_reader import PdfLimits, read_pdf_isolated
from taskcraft_core.schema import Document, content_id
from taskcraft_core.settings import Settings

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
# Navigation chrome that is not in a <nav> (Sphinx's "related" bars and sidebars, ARIA landmarks).
DROPPED_SELECTOR = ('[role="navigation"], [role="banner"], [role="contentinfo"], [role="search"], '
                    '.sphinxsidebar, .related, .breadcrumb, .breadcrumbs, a.headerlink')
BLOCK_ELEMENTS = ("p", "div", "section", "article", "main", "aside", "li", "ul", "ol", "dl", "dt", "dd", "tr",
                  "table", "blockquote", "pre", "figure", "figcaption", "br", "hr", "h1", "h2", "h3", "h4",
                  "h5", "h6", "title", "address")
UNFOLLOWED_SCHEMES = ("javascript", "mailto", "tel", "data", "about")
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# Ties between single-byte code pages are common on short texts; Western European text is the usual case.
PREFERRED_ENCODINGS = ("cp1252", "latin_1", "iso8859_15")
HEADERLINK = re.compile(r"\s*¶")  # the anchor mark documentation generators put after headings
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
    heading: str | None = None
    site_name: str | None = None


def doc_type_for(name: str) -> str:
    """The document type a file name stands for; IngestError for types we cannot read."""
    suffix = posixpath.splitext(name.lower())[1]
    if suffix not in SUFFIX_TYPES:
        raise IngestError(
            f"unsupported file type {suffix or '(no extension)'!r}",
            hint="supported: " + ", ".join(sorted(SUFFIX_TYPES)) + " and .zip archives of those",
        )
    return SUFFIX_TYPES[suffix]


def load_document(source: str, data: bytes, doc_type: str, base_url: str | None = None,
                  settings: Settings | None = None) -> Document:
    """Read one file's bytes as a Document; base_url resolves relative links of fetched pages. The
    settings' document limits apply (the defaults when none are given)."""
    settings = settings or Settings()
    if not data.strip():
        raise IngestError("the file is empty", hint="nothing to ingest")
    if doc_type == "pdf":
        extracted = read_pdf(data, pdf_limits(settings))
    elif doc_type == "html":
        extracted = read_html(data, base_url)
    else:
        extracted = read_text(data, markdown=doc_type == "markdown")
    if len(extracted.text) > settings.max_document_chars:
        raise IngestError(f"the document gives {len(extracted.text):,} characters of text, over the limit of "
                          f"{settings.max_document_chars:,} (max_document_chars)",
                          hint="split it, or raise max_document_chars")
    content_hash = hashlib.sha256(extracted.text.encode("utf-8")).hexdigest()
    # Affixes shared with other documents are stripped once the batch is stored (pipeline.rename_documents).
    identifier, aliases = document_names(extracted.title, extracted.heading, fallback_title(source), extracted.text,
                                         site_affixes([], [extracted.site_name]))
    return Document(
        id=content_id(content_hash),
        source=source,
        content_hash=content_hash,
        title=identifier,
        aliases=aliases,
        page_title=extracted.title,
        heading=extracted.heading,
        site_name=extracted.site_name,
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


def pdf_limits(settings: Settings) -> PdfLimits:
    return PdfLimits(max_pages=settings.max_pdf_pages, max_chars=settings.max_document_chars,
                     timeout_s=settings.pdf_parse_timeout_s, memory_mb=settings.pdf_parse_memory_mb)


def read_pdf(data: bytes, limits: PdfLimits | None = None) -> Extracted:
    """Per-page text joined by blank lines, with each page's start offset and the metadata title;
    parsed in a capped separate process (see pdf_reader)."""
    read = read_pdf_isolated(data, limits or PdfLimits())
    pages, title = read.pages, read.title
    if not any(pages):
        raise IngestError(
            "the PDF has no extractable text", hint="it may hold only scanned images; run OCR on it first"
        )
    offsets, position = [], 0
    for text in pages:
        offsets.append(position)
        position += len(text) + len(PAGE_SEPARATOR)
    # Without a metadata title, a short first line is the manual's name (a cover page's title).
    first_line = next((line for line in pages[0].splitlines() if line.strip()), "")
    heading = clean_name(first_line) if not _clean_title(title) and len(first_line.split()) <= 10 else None
    return Extracted(PAGE_SEPARATOR.join(pages), _clean_title(title), offsets, heading=heading)


# ---- HTML -----------------------------------------------------------------------------------


def read_html(data: bytes, base_url: str | None = None) -> Extracted:
    """The main content (one line per block), the <title>, the H1, og:site_name and the links."""
    soup = BeautifulSoup(data, "html.parser")
    links = _html_links(soup, base_url)
    title = _clean_title(soup.title.get_text() if soup.title else None)
    site = soup.find("meta", attrs={"property": "og:site_name"})
    site_name = clean_name(str(site.get("content", ""))) if isinstance(site, Tag) else None
    # The content's H1, not a site banner's.
    h1 = next((h for h in soup.find_all("h1") if not h.find_parent(["header", "nav", "footer"])), None)
    heading = clean_name(h1.get_text(" ")) if isinstance(h1, Tag) else None
    text = main_content(data)
    if not text or not (title or heading):
        chrome_heading = _first_html_heading(soup)
        for element in [*soup.find_all(DROPPED_ELEMENTS), *soup.select(DROPPED_SELECTOR)]:
            element.decompose()
        text = text or _parsed_text(soup)
        # A heading of the content names the page better than one in the site's header.
        title = title or heading or _first_html_heading(soup) or chrome_heading
    if not text:
        raise IngestError("the page has no readable text", hint="it may be built by JavaScript; save its text instead")
    return Extracted(text, title or heading, links=links, heading=heading, site_name=site_name)


def main_content(data: bytes) -> str:
    """trafilatura's main content of a page as text: a line per paragraph, heading, list item or table
    row (cells joined by " | "), code blocks fenced with ``` and inline code quoted with `; empty when
    trafilatura finds no main content."""
    xml = trafilatura.extract(data, output_format="xml", include_tables=True, include_formatting=True,
                              include_links=False, include_comments=False, include_images=False, deduplicate=False,
                              config=_trafilatura_config())
    if not xml:
        return ""
    root = etree.fromstring(xml.encode("utf-8"))
    main = root.find("main")
    lines = _xml_blocks(main if main is not None else root)
    return "\n".join(line for line in lines if line)


@lru_cache(maxsize=1)
def _trafilatura_config() -> ConfigParser:
    """trafilatura's defaults, except that a short page is not handed to its whole-body baseline
    (which keeps navigation and buttons): any main content found counts."""
    config = use_config()
    for option in ("MIN_EXTRACTED_SIZE", "MIN_OUTPUT_SIZE"):
        config.set("DEFAULT", option, "1")
    return config


def _xml_blocks(element: etree._Element) -> list[str]:
    """Lines of the blocks inside a container element of trafilatura's XML."""
    lines: list[str] = []
    for child in element:
        tag = child.tag
        if tag in ("head", "p"):
            lines.append(_inline(child))
        elif tag == "code" and "\n" in (child.text or "").strip():
            lines += ["```", (child.text or "").rstrip("\n"), "```"]
        elif tag == "item":
            inline = _inline(child)
            lines.append(f"- {inline}" if inline else "")
            lines += _xml_blocks(child)
        elif tag == "row":
            lines.append(" | ".join(_inline(cell) for cell in child))
        elif tag in ("list", "table", "quote", "div", "main"):
            lines += _xml_blocks(child)
        elif tag != "comments":
            lines.append(_inline(child))
    return lines


def _inline(element: etree._Element) -> str:
    """The running text of an element on one line: block children are left to `_xml_blocks`."""
    parts = [element.text or ""]
    for child in element:
        if child.tag in ("p", "list", "table", "quote", "item", "row") or (
                child.tag == "code" and "\n" in (child.text or "").strip()):
            pass
        elif child.tag == "code":
            parts.append(f"`{''.join(child.itertext()).strip()}`")
        elif child.tag == "lb":
            parts.append(" ")
        else:
            parts.append(_inline(child))
        parts.append(child.tail or "")
    return " ".join(HEADERLINK.sub("", "".join(parts)).split())


def _parsed_text(soup: BeautifulSoup) -> str:
    """The text of a page whose chrome (scripts, styles, navigation) is removed, one line per block."""
    main = soup.find("main") or soup.find("article") or soup.body or soup
    for element in main.find_all(BLOCK_ELEMENTS):
        # Blocks become lines; inline elements (links, emphasis) stay inside their sentence.
        element.insert_before("\n")
        element.insert_after("\n")
    lines = (" ".join(line.split()) for line in main.get_text().splitlines())
    return "\n".join(line for line in lines if line)


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
