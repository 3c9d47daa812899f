"""Corpus: upload files, add URLs or the sample corpus; list, preview and delete documents.

Document text is shown with `st.code`/`st.dataframe`, which never interpret it.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from app_pages._common import may, user_errors, workspace
from taskcraft_core.ingest import pipeline as ingest
from taskcraft_core.workspace import Workspace

UPLOAD_TYPES = ["pdf", "html", "htm", "txt", "md", "zip"]
PREVIEW_CHARS = 20_000
LAST_REPORT, CONFIRM_DELETE = "corpus_last_report", "corpus_delete_pending"


def run_ingest(action: Callable[[ingest.ProgressCallback], ingest.IngestReport]) -> None:
    """Run one ingestion with a progress bar; keep its report to show after the rerun."""
    bar = st.progress(0.0, text="Starting…")

    def progress(done: int, total: int, name: str) -> None:
        bar.progress(done / total if total else 1.0, text=f"{done}/{total} · {name}")

    with user_errors():
        st.session_state[LAST_REPORT] = action(progress).model_dump()
        st.rerun()


def show_last_report() -> None:
    report = st.session_state.get(LAST_REPORT)
    if not report:
        return
    st.success(f"Added {report['documents_added']} documents ({report['chunks_added']} chunks); "
               f"{report['documents_skipped']} already present.")
    if report["errors"]:
        st.error(f"{len(report['errors'])} inputs could not be ingested:")
        st.dataframe(report["errors"], hide_index=True,
                     column_config={"source": "File or URL", "error": "What went wrong"})


def add_sources(ws: Workspace) -> None:
    upload, urls, sample = st.tabs(["Upload files", "Add URLs", "Sample corpus"])
    with upload:
        files = st.file_uploader("Documents (PDF, HTML, text, Markdown, zip)", type=UPLOAD_TYPES,
                                 accept_multiple_files=True, key="corpus_upload")
        if st.button("Ingest files", key="corpus_ingest_files", disabled=not files, type="primary"):
            sources = [ingest.Source(name=f.name, data=f.getvalue()) for f in files or []]
            run_ingest(lambda progress: ingest.ingest_sources(sources, ws, progress))
    with urls:
        text = st.text_area("URLs, one per line", key="corpus_urls")
        allow_private = may("private_urls") and st.checkbox(
            "Allow private addresses (localhost, LAN)", key="corpus_allow_private",
            help="Admins only: from a shared server these reach its own network.")
        if st.button("Add URLs", key="corpus_add_urls", disabled=not text.strip()):
            # Each line is a URL source: typed text never reads files from the server's disk.
            sources = [ingest.Source(name=line.strip(), url=line.strip()) for line in text.splitlines() if line.strip()]
            with user_errors():
                allowed = ingest.allowing_private_urls(ws) if allow_private else ws
                run_ingest(lambda progress: ingest.ingest_sources(sources, allowed, progress))
    with sample:
        st.caption("A handful of linked documents with concrete facts, shipped with the studio.")
        if st.button("Load sample corpus", key="corpus_load_sample"):
            run_ingest(lambda progress: ingest.load_sample_corpus(ws, progress))


def show_documents(ws: Workspace) -> None:
    documents = ws.store.list_documents()
    st.subheader(f"Documents ({len(documents)})")
    if not documents:
        st.info("No documents yet: upload some, add URLs or load the sample corpus.")
        return
    st.dataframe([doc.model_dump(exclude={"id"}) for doc in documents], hide_index=True,
                 column_config={"chunk_count": "chunks", "doc_type": "type"})
    titles = {doc.id: f"{doc.title} ({doc.source})" for doc in documents}
    chosen = st.selectbox("Document", list(titles), format_func=titles.get, key="corpus_preview_id")
    preview(ws, chosen)


def preview(ws: Workspace, document_id: str) -> None:
    document = ws.store.get_document(document_id)
    if document is None:
        return
    chunks = ws.store.get_chunks(document_id)
    st.caption(f"{document.doc_type} · {document.pages} pages · {len(chunks)} chunks · "
               f"{len(document.text):,} characters · {len(document.links)} links")
    st.code(document.text[:PREVIEW_CHARS], language=None, wrap_lines=True, height=400)
    if len(document.text) > PREVIEW_CHARS:
        st.caption(f"First {PREVIEW_CHARS:,} characters shown.")
    delete_controls(ws, document_id)


def delete_controls(ws: Workspace, document_id: str) -> None:
    if not may("delete"):
        return
    if st.session_state.get(CONFIRM_DELETE) != document_id:
        if st.button("Delete document", key="corpus_delete"):
            st.session_state[CONFIRM_DELETE] = document_id
            st.rerun()
        return
    st.warning("Delete this document and its chunks? Tasks made from it stay.")
    confirm, cancel = st.columns(2)
    if confirm.button("Confirm delete", key="corpus_confirm_delete", type="primary"):
        with user_errors():
            ingest.delete_document(ws, document_id)
        st.session_state.pop(CONFIRM_DELETE, None)
        st.rerun()
    if cancel.button("Cancel", key="corpus_cancel_delete"):
        st.session_state.pop(CONFIRM_DELETE, None)
        st.rerun()


st.title("Corpus")
ws = workspace()
if may("ingest"):
    add_sources(ws)
show_last_report()
show_documents(ws)
