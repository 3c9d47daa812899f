"""Every page through Streamlit's AppTest, empty and with data, checking what actions change in the
database. The data home is a tmp_path (TASKCRAFT_HOME) and the store is real SQLite."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app_pages._common import escape_markdown
from taskcraft_core.schema import Chunk, Document, Task, TrajectoryStep, Verification, content_id
from taskcraft_core.settings import Settings
from taskcraft_core.store import Store

APP = Path(__file__).parent.parent / "app.py"
# The first run in a process imports chromadb and plotly (several seconds); later runs are fast.
TIMEOUT = 60
PAGES = {"home": "TaskCraft Studio", "corpus": "Corpus", "generate": "Generate", "review": "Review",
         "insights": "Insights", "duplicates": "Duplicates", "export": "Export", "settings": "Settings"}
EVIDENCE = "The observatory opened in 1931 on <script>alert('Gull Point')</script> for **everyone**."


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TASKCRAFT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def db(home: Path) -> Store:
    return Store(Settings(home=home).resolved_database_url)


def open_page(page: str, at: AppTest | None = None) -> AppTest:
    at = at or AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def make_task(i: int, **changes: object) -> Task:
    start = EVIDENCE.index("1931")
    task = Task(
        id=f"task{i}", kind="atomic", question=f"When did *observatory* {i} open?", golden_answer="1931",
        content_identifier="Observatory", relation="opening year", engine="offline", model="offline",
        document_id="doc1", chunk_id="chunk1", span_start=start, span_end=start + 4, difficulty=2,
        trajectory=[TrajectoryStep(position=0, type="ai", content="Search first.", tool="search_corpus",
                                   args={"query": "observatory opened"}, observation="<b>1931</b>", latency_ms=15,
                                   tokens=40)],
        verification=Verification(model_alone_answer="1925", model_alone_score=0, agent_answer="1931",
                                  agent_score=2, judge_rationale="Same year.", agent_steps=1),
    )
    return task.model_copy(update=changes)


def seed(store: Store, n: int = 3, **changes: object) -> None:
    store.add_document(
        Document(id="doc1", source="obs.txt", content_hash="h1", title="Observatory", doc_type="text", text=EVIDENCE),
        [Chunk(id="chunk1", document_id="doc1", position=0, text=EVIDENCE, start=0, end=len(EVIDENCE))],
    )
    store.add_tasks([make_task(i, **changes) for i in range(n)])


def sidebar_texts(at: AppTest) -> list[str]:
    return [element.value for element in at.sidebar.get("text")]


def table_with(at: AppTest, column: str) -> pd.DataFrame:
    """The first dataframe on the page that has this column."""
    return next(frame.value for frame in at.dataframe if column in frame.value.columns)


def card_caption(at: AppTest) -> str:
    return next(c.value for c in at.caption if " · hops " in c.value)


# ---- every page, empty ---------------------------------------------------------------------------


def test_the_frame_shows_data_home_and_engine(home: Path) -> None:
    # AppTest drops the entry script's elements after switch_page, so the sidebar is read on the
    # default page, with the session's settings preset where a test needs them.
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert sidebar_texts(at) == [str(home.resolve()), "Offline engine — deterministic, no model"]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_an_empty_home(home: Path, page: str) -> None:
    at = open_page(page)
    assert at.title[0].value == PAGES[page]


# ---- corpus --------------------------------------------------------------------------------------


def test_corpus_loads_the_sample_previews_escaped_and_deletes_with_confirmation(home: Path, db: Store) -> None:
    at = open_page("corpus")
    assert at.info[0].value.startswith("No documents yet")
    at.button(key="corpus_load_sample").click().run()
    assert not at.exception
    documents = db.list_documents()
    assert len(documents) == 6 and at.success[0].value.startswith("Added 6 documents")
    assert len(table_with(at, "chunk_count")) == 6
    first = db.get_document(documents[0].id)
    assert at.code[0].value == first.text[:20_000].rstrip("\n")  # shown literally, never as Markdown or HTML
    at.button(key="corpus_delete").click().run()
    assert db.get_document(first.id) is not None  # nothing happens before the confirmation
    at.button(key="corpus_confirm_delete").click().run()
    assert not at.exception and db.get_document(first.id) is None and len(db.list_documents()) == 5
    at.button(key="corpus_load_sample").click().run()
    assert at.success[0].value.endswith("5 already present.")


def test_corpus_upload_ingests_good_files_and_lists_each_bad_one(home: Path, db: Store) -> None:
    at = open_page("corpus")
    at.file_uploader(key="corpus_upload").set_value([
        ("notes.md", b"# Harbour notes\n\nThe harbour opened in 1887 with 14 berths.", "text/markdown"),
        ("binary.txt", bytes(range(256)) * 8, "text/plain"),
        ("empty.html", b"", "text/html"),
    ]).run()
    at.button(key="corpus_ingest_files").click().run()
    assert not at.exception
    assert [doc.title for doc in db.list_documents()] == ["Harbour notes"]
    assert at.success[0].value.startswith("Added 1 documents")
    assert sorted(table_with(at, "error")["source"]) == ["binary.txt", "empty.html"]


def test_corpus_url_refused_shows_a_per_source_error(home: Path, db: Store) -> None:
    at = open_page("corpus")
    at.text_area(key="corpus_urls").input("http://127.0.0.1:9/page.html\nftp://example.org/x").run()
    at.button(key="corpus_add_urls").click().run()
    assert not at.exception and db.list_documents() == []
    errors = table_with(at, "error")
    assert list(errors["source"]) == ["http://127.0.0.1:9/page.html", "ftp://example.org/x"]


# ---- review --------------------------------------------------------------------------------------


def test_review_needs_a_name_then_accept_reject_edit_undo_change_the_store(home: Path, db: Store) -> None:
    seed(db)
    at = open_page("review")
    assert at.button(key="review_accept").disabled and card_caption(at).startswith("task0 ·")
    at.text_input(key="reviewer_name").input("ana").run()
    at.button(key="review_accept").click().run()
    assert db.get_task("task0").status == "accepted" and card_caption(at).startswith("task1 ·")

    at.selectbox(key="reject_reason").select("Answer is wrong")
    at.text_input(key="reject_details").input("it was 1932")
    at.button(key="review_reject").click().run()
    assert db.get_task("task1").status == "rejected"
    assert db.reviews_for("task1")[-1].reason == "Answer is wrong: it was 1932"

    at.button(key="review_edit").click().run()
    at.text_area(key="edit_question").input("When did the Halvard Observatory open?")
    at.form_submit_button[0].click().run()
    assert not at.exception
    edited = db.get_task("task2")
    assert edited.question == "When did the Halvard Observatory open?" and edited.status == "pending"
    assert db.reviews_for("task2")[-1].edits == {"question": "When did the Halvard Observatory open?"}

    at.button(key="review_undo").click().run()  # takes back the edit
    assert db.get_task("task2").question == "When did *observatory* 2 open?"
    at.button(key="review_undo").click().run()  # and the rejection, showing that task again
    assert db.get_task("task1").status == "pending" and card_caption(at).startswith("task1 ·")
    assert [r.decision for r in db.reviews_for("task1")] == ["reject", "undo"]


def test_review_moves_with_next_previous_skip_and_shows_progress(home: Path, db: Store) -> None:
    seed(db, n=4)
    at = open_page("review")
    assert at.button(key="review_previous").disabled
    at.button(key="review_next").click().run()
    at.button(key="review_skip").click().run()
    assert card_caption(at).startswith("task2 ·")
    at.button(key="review_previous").click().run()
    assert card_caption(at).startswith("task1 ·")
    assert "Task 2 of 4" in at.get("progress")[0].proto.text


def test_review_card_escapes_text_and_highlights_the_evidence(home: Path, db: Store) -> None:
    seed(db, n=1)
    at = open_page("review")
    evidence = at.get("html")[0].proto.body
    assert "<mark>1931</mark>" in evidence and "&lt;script&gt;" in evidence and "<script>" not in evidence
    question = next(m.value for m in at.markdown if m.value.startswith("**Question**"))
    assert question.endswith(r"When did \*observatory\* 0 open?")
    assert any(c.value.startswith("Step 1 · hop 0 · search\\_corpus") for c in at.caption)  # the stepper's step
    assert at.code[1].value == "<b>1931</b>"  # the observation, literal


def test_review_filters_narrow_the_queue(home: Path, db: Store) -> None:
    seed(db, n=3)
    db.record_review("task1", "ben", "accept")
    at = open_page("review")
    assert "of 2" in at.get("progress")[0].proto.text
    at.multiselect(key="review_status").set_value(["accepted"]).run()
    assert card_caption(at).startswith("task1 ·") and "of 1" in at.get("progress")[0].proto.text
    at.multiselect(key="review_status").set_value([]).run()
    at.text_input(key="review_text").input("observatory* 2").run()
    assert card_caption(at).startswith("task2 ·")


def test_review_conflict_warns_and_keeps_the_other_decision(home: Path, db: Store) -> None:
    seed(db, n=2)
    at = open_page("review")
    at.text_input(key="reviewer_name").input("ana").run()
    db.record_review("task0", "ben", "reject", reason="wrong")  # ben decides while ana looks at the card
    at.button(key="review_accept").click().run()
    assert not at.exception and db.get_task("task0").status == "rejected"
    assert "ben recorded reject" in at.warning[0].value
    at.button(key="review_reload").click().run()
    assert not at.warning


def test_review_undo_after_another_reviewer_decided_warns_and_their_decision_stands(home: Path, db: Store) -> None:
    seed(db, n=2)
    at = open_page("review")
    at.text_input(key="reviewer_name").input("alice").run()
    at.button(key="review_accept").click().run()
    [alice] = db.reviews_for("task0")
    db.record_review("task0", "bob", "reject", reason="wrong", expected_latest=alice.id)  # bob decides after her
    at.button(key="review_undo").click().run()
    assert not at.exception
    assert db.get_task("task0").status == "rejected"
    assert [(r.reviewer, r.decision) for r in db.reviews_for("task0")] == [("alice", "accept"), ("bob", "reject")]
    assert "Task task0 was decided by bob after your decision" in at.warning[0].value
    assert card_caption(at).startswith("task0 ·") and at.button(key="review_undo").disabled


def test_an_imported_task_with_markdown_and_html_renders_literally(home: Path, db: Store) -> None:
    question = "Is **this** <b>bold</b> or [a link](http://x)?"
    records = [{"id": "__init__", "kind": "atomic", "question": question, "golden_answer": "_no_"},
               {"id": "<img src=x onerror=alert(1)>", "kind": "atomic", "question": "Q?", "golden_answer": "1"},
               {"id": "depth_1", "kind": "depth", "question": "Child?", "golden_answer": "2",
                "parents": ["__init__", "<img src=x onerror=alert(1)>"]}]
    at = open_page("export")
    at.file_uploader(key="import_upload").set_value(
        ("odd.jsonl", "\n".join(json.dumps(r) for r in records).encode(), "application/json")).run()
    at.button(key="import_run").click().run()
    assert at.success[0].value == "Added 3 tasks; 0 were already present."
    at = open_page("review", at)
    at.text_input(key="reviewer_name").input("ana").run()
    assert card_caption(at).startswith(r"\_\_init\_\_ · atomic")
    shown = next(m.value for m in at.markdown if m.value.startswith("**Question**"))
    assert shown == r"**Question**  " + "\n" + r"Is \*\*this\*\* \<b\>bold\</b\> or \[a link\]\(http\://x\)?"
    db.record_review("__init__", "**eve**", "reject", reason="vague")  # a name that is Markdown, too
    at.button(key="review_accept").click().run()
    assert r"\*\*eve\*\* recorded reject" in at.warning[0].value
    at.button(key="review_reload").click().run()  # the task stays on screen with eve's rejection
    assert card_caption(at).startswith(r"\_\_init\_\_ · atomic · **rejected**")
    at.button(key="review_back").click().run()  # which took it out of the pending queue
    derived = content_id("imported-id", "<img src=x onerror=alert(1)>")
    assert card_caption(at).startswith(derived)
    at.button(key="review_next").click().run()
    assert card_caption(at).startswith(r"depth\_1 · depth")
    labels = [b.proto.label for b in at.button if b.key.startswith("lineage_")]
    assert labels == [r"\_\_init\_\_", derived]
    assert not any("<img" in element.value for element in (*at.markdown, *at.caption, *at.warning))


def test_review_lineage_opens_the_child(home: Path, db: Store) -> None:
    seed(db, n=1)
    db.add_tasks([make_task(9, kind="depth", hops=2, parent_ids=["task0"])])
    at = open_page("review")
    at.multiselect(key="review_kind").set_value(["atomic"]).run()
    at.button(key="lineage_task9").click().run()
    assert card_caption(at).startswith("task9 · depth")
    at.button(key="lineage_task0").click().run()
    assert card_caption(at).startswith("task0 ·")


def signed_in(email: str, name: str, roles: dict[str, object] | None = None) -> AppTest:
    """The app in team mode ([auth] in secrets) with a signed-in user, first run done."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x"}
    at.secrets["taskcraft"] = {"roles": roles or {}}
    at.user = {"is_logged_in": True, "name": name, "email": email}
    return at.run()


def test_review_records_the_signed_in_email_when_login_is_configured(home: Path, db: Store) -> None:
    seed(db, n=1)
    at = signed_in("Dana@Example.org", "Dana", {"reviewers": ["dana@example.org"]})
    assert at.button(key="logout") and "Dana <dana@example.org> · reviewer" in sidebar_texts(at)
    at = open_page("review", at)
    assert "reviewer_name" not in [w.key for w in at.text_input]
    assert at.text[0].value == "Reviewing as Dana <dana@example.org> (reviewer)"
    at.button(key="review_accept").click().run()
    assert db.reviews_for("task0")[-1].reviewer == "dana@example.org"


def test_team_mode_shows_only_the_sign_in_gate_before_sign_in_whatever_the_page(home: Path, db: Store) -> None:
    seed(db, n=1)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x"}
    at.user = {"is_logged_in": False}
    at.run()
    assert [b.label for b in at.button] == ["Log in"] and at.markdown[0].value == "Sign in to open the studio."
    at.switch_page("app_pages/review.py").run()
    assert [b.label for b in at.button] == ["Log in"] and not at.text_input and not at.caption
    assert not db.reviews_for("task0")


def test_a_task_link_opened_before_sign_in_is_kept_for_after_it(home: Path, db: Store) -> None:
    seed(db, n=1)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x"}
    at.user = {"is_logged_in": False}
    at.query_params["task"] = "task0</script><b>"
    at.switch_page("app_pages/review.py").run()
    assert [b.label for b in at.button] == ["Log in"]
    assert "The linked task opens after sign-in." in [c.value for c in at.caption]
    [script] = [h.proto.body for h in at.html]  # st.login starts a new session at the root: a cookie carries it
    assert script == ("<script>document.cookie = 'taskcraft_linked_task=' + "
                      "encodeURIComponent(\"task0\\u003c/script>\\u003cb>\") + "
                      "'; path=/; max-age=900; SameSite=Lax';</script>")


def test_a_viewer_reads_the_review_queue_without_deciding(home: Path, db: Store) -> None:
    seed(db, n=1)
    at = open_page("review", signed_in("vi@example.org", "Vi"))
    assert at.button(key="review_accept").disabled and at.button(key="review_reject").disabled
    assert "You can read the queue; deciding needs the reviewer role (you are a viewer)." in [
        c.value for c in at.caption]
    assert card_caption(at).startswith("task0 ·")


def test_a_curator_adds_documents_without_private_urls_or_delete(home: Path, db: Store) -> None:
    seed(db, n=1)
    at = open_page("corpus", signed_in("cy@example.org", "Cy", {"curators": ["cy@example.org"]}))
    assert "corpus_allow_private" not in [c.key for c in at.checkbox]
    assert "corpus_delete" not in [b.key for b in at.button] and at.button(key="corpus_ingest_files")


def test_an_admin_sees_the_audit_log_and_saving_settings_is_in_it(home: Path, db: Store) -> None:
    at = open_page("settings", signed_in("ada@example.org", "Ada", {"admins": ["ada@example.org"]}))
    assert "Nothing audited yet." in [c.value for c in at.caption]
    at.text_input(key="settings_model").input("qwen2.5:7b")
    at.button[0].click().run()  # the form's submit button
    assert not at.exception
    log = table_with(at, "action")
    assert log[["who", "role", "action"]].to_dict("records") == [
        {"who": "ada@example.org", "role": "admin", "action": "settings"}]
    assert json.loads(log["details"][0])["changed"] == {"model": "qwen2.5:7b"}


def test_review_find_similar_lists_neighbours_and_opens_one(home: Path, db: Store) -> None:
    from taskcraft_core.index import task_vectors
    from taskcraft_core.workspace import Workspace

    seed(db, n=1)
    db.add_tasks([make_task(5, question="When did the observatory 0 open?"),
                  make_task(6, question="Which ship carried the 1964 expedition?", golden_answer="RV Storm Petrel")])
    task_vectors.index_tasks(Workspace.open(Settings(home=home)), db.list_tasks(limit=None))
    at = open_page("review")
    at.button(key="review_find_similar").click().run()
    assert not at.exception
    assert [b.key for b in at.button if b.key.startswith("similar_")][0] == "similar_task5"
    at.button(key="similar_task5").click().run()
    assert card_caption(at).startswith("task5 ·")


# ---- insights ------------------------------------------------------------------------------------


def test_insights_draw_the_dataset(home: Path, db: Store) -> None:
    seed(db, n=3)
    db.record_review("task0", "ana", "accept")
    db.record_review("task0", "ben", "accept", override=True)
    at = open_page("insights")
    assert [m.value for m in at.metric][:3] == ["3", "3", "1"]
    assert at.metric[3].value == "undefined (one decision only, or fewer than two shared tasks)"
    assert at.metric[3].label == "Krippendorff's alpha (nominal) over 1 tasks decided by two or more reviewers"
    # funnel, 2x difficulty, hops, width, 2x tools, yield, throughput, agreement
    assert len(at.get("plotly_chart")) == 10
    assert table_with(at, "agreement").to_dict("records") == [
        {"reviewer_a": "ana", "reviewer_b": "ben", "shared_tasks": 1, "agreed": 1, "agreement": 1.0, "kappa": None}]
    reviewers = table_with(at, "accept_rate")
    assert reviewers[["reviewer", "tasks_decided", "accept_rate"]].to_dict("records") == [
        {"reviewer": "ana", "tasks_decided": 1, "accept_rate": 1.0},
        {"reviewer": "ben", "tasks_decided": 1, "accept_rate": 1.0}]


# ---- settings ------------------------------------------------------------------------------------


def test_settings_change_the_engine_banner_and_keep_the_key_in_session_only(home: Path, db: Store) -> None:
    at = open_page("settings")
    at.text_input(key="settings_base_url").input("http://127.0.0.1:9/v1")
    at.text_input(key="settings_model").input("local-model")
    at.text_input(key="settings_api_key").input("sk-secret-123")
    at.form_submit_button[0].click().run()
    assert not at.exception
    assert at.text[0].value == "Active: OpenAI-compatible: local-model @ http://127.0.0.1:9/v1"
    overrides = at.session_state["settings_overrides"]
    assert overrides["openai_api_key"] == "sk-secret-123"
    assert b"sk-secret-123" not in Path(db.url.removeprefix("sqlite:///")).read_bytes()
    frame = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    frame.session_state["settings_overrides"] = overrides
    assert sidebar_texts(frame.run())[1] == "OpenAI-compatible: local-model @ http://127.0.0.1:9/v1"
    at.button(key="settings_reset").click().run()
    assert at.text[0].value == "Active: Offline engine — deterministic, no model"


def test_settings_test_connection_reports_the_endpoint(home: Path) -> None:
    from tests.stub_openai import StubOpenAI, closed_port_url

    with StubOpenAI(models=["local-model"]) as stub:
        at = open_page("settings")
        at.text_input(key="settings_base_url").input(stub.base_url)
        at.text_input(key="settings_model").input("local-model")
        at.form_submit_button[0].click().run()
        at.button(key="settings_test_connection").click().run()
        assert not at.exception and "1 models available" in at.success[0].value
    at.text_input(key="settings_base_url").input(closed_port_url())
    at.form_submit_button[0].click().run()
    at.button(key="settings_test_connection").click().run()
    assert not at.exception and at.error  # a TaskCraftError shown with its hint, not a crash


# ---- generate and home ----------------------------------------------------------------------------


def wait_for_runs_to_finish(store: Store, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while any(run.status == "running" for run in store.list_runs()):
        assert time.monotonic() < deadline, "run did not finish"
        time.sleep(0.2)


def test_generate_starts_an_offline_run_and_lists_it(home: Path, db: Store) -> None:
    at = open_page("generate")
    assert at.info[0].value.startswith("No documents yet")
    at = open_page("corpus", at)
    at.button(key="corpus_load_sample").click().run()
    at = open_page("generate", at)
    at.multiselect(key="generate_kinds").set_value(["atomic"])
    at.number_input(key="generate_limit").set_value(2)
    at.form_submit_button[0].click().run()
    assert not at.exception
    wait_for_runs_to_finish(db)
    [run] = db.list_runs()
    assert run.status == "completed" and run.config.request.kinds == ["atomic"]
    assert db.count_tasks() > 0
    at.run()
    history = table_with(at, "model calls")
    assert list(history["run"]) == [run.id] and list(history["status"]) == ["completed"]


def test_generate_resumes_an_interrupted_run(home: Path, db: Store) -> None:
    from taskcraft_core.runs import service as runs
    from taskcraft_core.workspace import Workspace

    at = open_page("corpus")
    at.button(key="corpus_load_sample").click().run()
    ws = Workspace.open(Settings(home=home))
    run = runs.create_run(ws, runs.RunRequest(kinds=["atomic"], limit=1, engine="offline"))
    db.update_run(run.id, status="interrupted")
    at = open_page("generate", at)
    assert at.selectbox(key="generate_resume_id").value == run.id
    at.button(key="generate_resume").click().run()
    wait_for_runs_to_finish(db)
    assert db.get_run(run.id).status == "completed"


def test_home_demo_button_loads_the_sample_and_generates(home: Path, db: Store) -> None:
    at = open_page("home")
    assert at.info[0].value.startswith("No tasks yet")
    at.button(key="home_demo_button").click().run(timeout=180)
    assert not at.exception
    assert len(db.list_documents()) == 6 and db.count_tasks() > 0 and at.success[0].value.startswith("Demo ready")
    assert len(table_with(at, "run")) == 1
    assert at.metric[0].value == f"{db.count_tasks():,}"


# ---- export and duplicates --------------------------------------------------------------------------


def test_export_defaults_to_accepted_downloads_writes_and_imports(home: Path, db: Store, tmp_path: Path) -> None:
    seed(db, n=3)
    at = open_page("export")
    assert at.info[0].value.startswith("No tasks match")
    db.record_review("task1", "ana", "accept")
    at.run()
    assert at.metric[0].value == "1" and list(table_with(at, "question")["id"]) == ["task1"]
    at.button(key="export_prepare").click().run()
    assert not at.exception
    data, manifest = at.get("download_button")
    assert data.proto.label == "Download taskcraft_jsonl.jsonl"
    assert manifest.proto.label == "Download taskcraft_jsonl.jsonl.manifest.json"
    assert json.loads(at.json[0].proto.body)["count"] == 1
    at.button(key="export_write").click().run()
    written = home / "exports" / "tasks-jsonl" / "tasks.jsonl"
    lines = written.read_text(encoding="utf-8").splitlines()
    assert not at.exception and len(lines) == 1 and json.loads(lines[0])["id"] == "task1"
    assert json.loads((written.parent / "tasks.jsonl.manifest.json").read_text())["count"] == 1
    for bad in ("../escape", ".."):  # ".." passed the old check (its own Path.name) and wrote beside exports/
        at.text_input(key="export_name").input(bad).run()
        at.button(key="export_write").click().run()
        assert at.error[0].value == escape_markdown(f"{bad!r} is not a plain folder name.")
    assert sorted(p.name for p in home.iterdir() if p.is_dir()) == ["chroma", "exports"]

    at.file_uploader(key="import_upload").set_value(("tasks.jsonl", written.read_bytes(), "application/json")).run()
    at.button(key="import_run").click().run()
    assert at.success[0].value == "Added 0 tasks; 1 were already present."
    reference = {"question": "In which year did the observatory open?", "golden_answer": "1931",
                 "content_identifier": "Observatory"}
    at.radio(key="import_format").set_value("taskcraft")
    at.file_uploader(key="import_upload").set_value(
        ("ref.jsonl", (json.dumps(reference) + "\n{broken\n").encode(), "application/json")).run()
    at.button(key="import_run").click().run()
    assert not at.exception and at.success[0].value == "Added 1 tasks; 0 were already present."
    assert len(table_with(at, "error")) == 1 and db.count_tasks() == 4


def test_duplicates_keep_one_rejects_the_others_and_dismiss_remembers(home: Path, db: Store) -> None:
    from taskcraft_core.index import task_vectors
    from taskcraft_core.workspace import Workspace

    seed(db, n=1)
    twins = [make_task(i, question="When did the Halvard Observatory open its doors?") for i in (5, 6)]
    others = [make_task(i, question=q, golden_answer=a) for i, q, a in (
        (7, "Who founded the Kestrel Haven harbour authority?", "Jonas Halvard"),
        (8, "Which ship carried the 1964 Skerry Deep expedition?", "RV Storm Petrel"))]
    db.add_tasks(twins + others)
    ws = Workspace.open(Settings(home=home))
    task_vectors.index_tasks(ws, db.list_tasks(limit=None))
    at = open_page("duplicates")
    assert at.info[0].value.startswith("Find near-duplicates")
    at.text_input(key="reviewer_name").input("ana").run()
    at.button(key="duplicates_find").click().run()
    assert not at.exception
    [label] = at.selectbox(key="duplicates_cluster").options
    # task0 asks otherwise, but for the same answer from the same span through the same tool: structural
    assert label == "#1 · 3 tasks · similarity 1.00 · structural"
    assert "<mark>" not in at.get("html")[0].proto.body  # the first is compared with itself: nothing to mark
    assert "<mark>Halvard</mark>" in at.get("html")[1].proto.body  # the wording that differs from the first
    at.button(key="duplicates_keep_task5").click().run()
    assert db.get_task("task5").status == "pending" and db.get_task("task6").status == "rejected"
    assert db.get_task("task0").status == "rejected"
    assert db.reviews_for("task6")[-1].reason == "duplicate of task5"
    assert at.success[0].value.startswith("No near-duplicate clusters left")
    db.add_tasks([make_task(9, question="When did the Halvard Observatory open its doors?")])
    task_vectors.index_tasks(ws, db.get_tasks(["task9"]))
    at.button(key="duplicates_find").click().run()
    at.button(key="duplicates_dismiss").click().run()
    assert db.not_duplicate_pairs() == {("task5", "task9")}


def test_export_samples_to_a_difficulty_mix_with_a_preview(home: Path, db: Store) -> None:
    seed(db, n=0)
    db.add_tasks([make_task(10 * level + i, difficulty=level, status="accepted", span_start=None)
                  for level in (1, 2, 3, 4) for i in range(5)])
    at = open_page("export")
    at.checkbox(key="export_sample").check().run()
    at.number_input(key="export_sample_size").set_value(10).run()
    assert not at.exception
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [bar["name"] for bar in figure["data"]] == ["requested", "realised"]
    assert figure["data"][0]["y"] == figure["data"][1]["y"] == [4, 3, 2, 1]
    at.number_input(key="export_mix_1").set_value(0.0)
    at.number_input(key="export_mix_4").set_value(1.0).run()  # asks for 7 of level 4, which has 5
    assert at.info[0].value.startswith("The mix cannot be met exactly (difficulty 4: 2 short)")
    at.button(key="export_prepare").click().run()
    manifest = json.loads(at.json[0].proto.body)
    assert manifest["count"] == 10 and manifest["sample"]["shortfall"] == {"4": 2}
    assert manifest["sample"]["realised_counts"] == {"2": 3, "3": 2, "4": 5}


def test_review_regenerates_a_rejected_task_shows_the_pair_and_replays(home: Path, db: Store) -> None:
    from taskcraft_core.generate.atomic import generate_atomic
    from taskcraft_core.generate.context import GenerationContext
    from taskcraft_core.generate.factory import make_engine
    from taskcraft_core.ingest.pipeline import Source, ingest_sources
    from taskcraft_core.models.chat import Usage
    from taskcraft_core.workspace import Workspace

    ws = Workspace.open(Settings(home=home))
    text = "# Gull Point\n\nThe lighthouse was first lit on 14 March 1887. Its lamp stands 42 metres above the sea.\n"
    ingest_sources([Source(name="gull.md", data=text.encode())], ws)
    document = ws.store.get_document(ws.store.list_documents()[0].id)
    ctx = GenerationContext(ws, make_engine(ws.settings), Usage())
    first = generate_atomic(document, ws.store.get_chunks(document.id)[0], ctx)[0]
    db.add_tasks([first])
    db.record_review(first.id, "ana", "reject", reason="ambiguous")
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.session_state["review_open_request"] = first.id
    at.run()
    at = open_page("review", at)
    at.text_input(key="reviewer_name").input("ana").run()
    at.text_input(key=f"regenerate_reason_{first.id}").input("ask about the lamp instead").run()
    at.button(key="review_regenerate").click().run()
    assert not at.exception
    [child_id] = db.regenerations_of(first.id)
    assert at.success[0].value.replace("\\", "") == f"Regenerated as {child_id}: pending."
    assert db.get_task(child_id).regeneration_reason == "ask about the lamp instead"
    assert any(m.value.startswith("**Regenerated** · reason: ask about the lamp instead") for m in at.markdown)
    at.button(key=f"lineage_open_regenerated_{child_id}").click().run()
    assert card_caption(at).startswith(f"{child_id} ·")
    assert any(m.value.startswith("**Regenerated from a rejection**") for m in at.markdown)
    db.record_review(child_id, "ana", "accept")
    at.run()
    at.button(key="review_replay").click().run()
    assert at.success[0].value.replace("\\", "") == "Replayed: the answer still holds."
    assert any("still holds · judge score 2/2" in m.value for m in at.markdown)


# ---- review at team scale ------------------------------------------------------------------------


def review_session(name: str, **taskcraft: object) -> AppTest:
    """A fresh browser session on Review with a typed reviewer name and team settings in secrets."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    if taskcraft:
        at.secrets["taskcraft"] = taskcraft
    at = open_page("review", at.run())
    at.text_input(key="reviewer_name").input(name).run()
    return at


def test_review_filters_are_collapsed_to_a_one_line_summary(home: Path, db: Store) -> None:
    seed(db, n=2)
    at = open_page("review")
    [filters] = [e for e in at.expander if e.label.startswith("Filters")]
    assert filters.label == "Filters: status pending · oldest first"
    assert not (filters.proto.expanded or filters.proto.default_expanded)  # collapsed: the task comes first
    at.multiselect(key="review_kind").set_value(["depth"]).run()
    at.text_input(key="review_text").input("harbour").run()
    [filters] = [e for e in at.expander if e.label.startswith("Filters")]
    assert filters.label == 'Filters: status pending · kind depth · text "harbour" · oldest first'


def test_a_link_with_a_task_id_opens_that_task_once(home: Path, db: Store) -> None:
    seed(db, n=3)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params["task"] = "task2"
    at = open_page("review", at.run())
    assert card_caption(at).startswith("task2 ·") and at.caption[0].value.startswith("Opened directly")
    at.button(key="review_back").click().run()  # back to the queue: the link does not pin it again
    assert card_caption(at).startswith("task0 ·")
    missing = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    missing.query_params["task"] = "nope"
    missing = open_page("review", missing.run())
    assert missing.error[0].value == "No task with id nope."


def test_the_conflict_notice_records_an_override_on_request(home: Path, db: Store) -> None:
    seed(db, n=2)
    at = review_session("ana")
    db.record_review("task0", "ben", "reject", reason="wrong")  # while ana looks at the card
    at.button(key="review_accept").click().run()
    assert db.get_task("task0").status == "rejected" and "ben recorded reject" in at.warning[0].value
    at.button(key="review_override").click().run()
    assert not at.exception and not at.warning
    newest = db.reviews_for("task0")[-1]
    assert (newest.reviewer, newest.decision, newest.override) == ("ana", "accept", True)
    assert db.get_task("task0").status == "accepted"


def test_two_reviews_per_task_own_queues_then_adjudication(home: Path, db: Store) -> None:
    seed(db, n=2)
    team = {"reviews_per_task": 2, "adjudicators": ["judy"]}
    ana = review_session("ana", **team)
    assert "review_queue" not in [w.key for w in ana.get("button_group")]  # ana does not adjudicate
    ana.button(key="review_accept").click().run()
    assert db.get_task("task0").status == "pending" and card_caption(ana).startswith("task1 ·")
    assert "of 1" in ana.get("progress")[0].proto.text  # ana's own queue: task0 is decided

    ben = review_session("ben", **team)
    assert card_caption(ben).startswith("task0 ·")
    assert any(c.value.startswith("1 of 2 decisions in") for c in ben.caption)
    ben.selectbox(key="reject_reason").select("Answer is wrong")
    ben.button(key="review_reject").click().run()
    assert db.get_task("task0").status == "pending" and db.is_disputed("task0")

    judy = review_session("judy", **team)
    judy.button_group(key="review_queue").set_value("adjudicate").run()
    assert card_caption(judy).startswith("task0 ·")
    sides = [m.value for m in judy.markdown if m.value.startswith("**ana**") or m.value.startswith("**ben**")]
    assert sides == ["**ana**: accept  \n—", "**ben**: reject  \nAnswer is wrong"]
    judy.button(key="review_accept").click().run()
    final = db.reviews_for("task0")[-1]
    assert (final.reviewer, final.decision, final.adjudication) == ("judy", "accept", True)
    assert db.get_task("task0").status == "accepted" and not db.is_disputed("task0")
    assert any("No tasks match" in i.value for i in judy.info)


def test_the_trajectory_stepper_shows_one_step_at_a_time(home: Path, db: Store) -> None:
    steps = [TrajectoryStep(position=0, type="human", content="When did it open?"),
             TrajectoryStep(position=1, type="ai", content="Search.", tool="search_corpus", args={"query": "opened"}),
             TrajectoryStep(position=2, type="tool", tool="search_corpus", observation="opened in 1931")]
    seed(db, n=1, trajectory=steps)
    at = open_page("review")
    assert at.button_group(key="review_step_task0").value == 0
    assert [c.value for c in at.caption if c.value.startswith("Step")] == ["Step 1 · hop 0 · human · 0 ms · 0 tokens"]
    assert not at.code  # the human step has no arguments or observation
    at.button_group(key="review_step_task0").set_value(2).run()
    assert [c.value for c in at.caption if c.value.startswith("Step")] == [
        "Step 3 · hop 0 · search\\_corpus · 0 ms · 0 tokens"]
    assert [c.value for c in at.code] == ["opened in 1931"]


def test_review_shows_check_badges_and_filters_by_check(home: Path, db: Store) -> None:
    seed(db, n=2)
    # task1 names its answer in the question (in words): flagged; task0 is clean.
    db.set_task_checks({"task0": {}, "task1": {"answer_in_question": "“1931” is in the question"}})
    at = open_page("review")
    assert card_caption(at).startswith("task0 ·") and not [m for m in at.markdown if "badge[" in m.value]
    at.multiselect(key="review_checks").set_value(["answer_in_question"]).run()
    assert card_caption(at).startswith("task1 ·") and "of 1" in at.get("progress")[0].proto.text
    [badges] = [m for m in at.markdown if "badge[" in m.value]
    assert badges.value == ":orange-badge[:material/flag: answer_in_question]"
    at.multiselect(key="review_checks").set_value(["hops_not_used"]).run()
    assert at.info[0].value.startswith("No tasks match")


def test_export_can_exclude_flagged_tasks(home: Path, db: Store) -> None:
    seed(db, n=2)
    for task_id in ("task0", "task1"):
        db.record_review(task_id, "ana", "accept")
    db.set_task_checks({"task0": {"hops_not_used": "0 tool call(s) for a 1-hop task"}, "task1": {}})
    at = open_page("export")
    at.checkbox(key="export_exclude_flagged").check().run()
    at.button(key="export_prepare").click().run()
    manifest = json.loads(at.json[0].proto.body)
    assert manifest["count"] == 1 and manifest["filters"]["exclude_flagged"] is True


def test_settings_show_the_review_policy_and_where_it_is_set(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page("settings")  # local mode: the defaults
    assert [m.value for m in at.metric] == ["1"]
    assert "**Adjudicators** (besides admins): none named" in [m.value for m in at.markdown]
    assert "From the default. The first decision counts." in [c.value for c in at.caption]

    monkeypatch.setenv("TASKCRAFT_REVIEWS_PER_TASK", "3")
    at = open_page("settings")
    assert [m.value for m in at.metric] == ["3"]
    assert ("From the environment (`TASKCRAFT_REVIEWS_PER_TASK`). A task is final when 3 reviewers agree; "
            "disagreements go to the Adjudicate queue.") in [c.value for c in at.caption]

    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x"}
    at.secrets["taskcraft"] = {"roles": {"admins": ["ada@example.org"]}, "reviews_per_task": 2,
                               "adjudicators": ["ben", "ana@example.org"]}
    at.user = {"is_logged_in": True, "name": "Ada", "email": "ada@example.org"}
    at = open_page("settings", at.run())
    assert [m.value for m in at.metric] == ["2"]  # secrets win over the environment
    assert "**Adjudicators** (besides admins): ben, ana@example\\.org" in [m.value for m in at.markdown]
    captions = [c.value for c in at.caption]
    assert "From `[taskcraft]` in `.streamlit/secrets.toml`. A task is final when 2 reviewers agree; " \
           "disagreements go to the Adjudicate queue." in captions
    assert "From `[taskcraft]` in `.streamlit/secrets.toml`." in captions
    assert not [w for w in [*at.number_input, *at.text_input] if "reviews" in w.key or "adjudicat" in w.key]
