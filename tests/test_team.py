"""Team mode in the core: roles enforced by the services, keys that stay with their endpoint, the
audit log. Each test names the finding of issue 12 it would have caught."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from taskcraft_core.access import AccessDenied, Principal, local_principal, role_for, signed_in_principal
from taskcraft_core.curate import dedup, importers
from taskcraft_core.curate import review_queue as rq
from taskcraft_core.curate.export import export_tasks, export_to_bytes
from taskcraft_core.errors import ModelUnavailableError, TaskCraftError
from taskcraft_core.ingest import pipeline as ingest
from taskcraft_core.models import chat as llm
from taskcraft_core.models.endpoint import session_settings
from taskcraft_core.runs import service as runs
from taskcraft_core.runs.executor import snapshot_workspace
from taskcraft_core.settings import Settings
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace, settings_from_environment
from tests.curation_factory import make_task
from tests.stub_openai import StubOpenAI, error_reply

SERVER_KEY = "sk-server-0123456789abcdef"
ROLES = {"admins": ["ada@example.org"], "curators": ["cy@example.org"], "reviewers": ["rae@example.org"],
         "default": "viewer"}


def person(email: str) -> Principal:
    return signed_in_principal(email, email.split("@")[0].capitalize(), ROLES)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.open(Settings(home=tmp_path / "home"))


# ---- roles ------------------------------------------------------------------------------------------


def test_roles_come_from_the_secrets_lists_case_insensitively_with_a_default() -> None:
    assert [person(e).role for e in ("ADA@example.org", "cy@example.org", "rae@example.org", "vi@example.org")] == [
        "admin", "curator", "reviewer", "viewer"]
    assert role_for("cy@example.org", {"curators": ["cy@example.org"], "admins": ["CY@example.org"]}) == "admin"
    assert role_for("new@example.org", {"default": "reviewer"}) == "reviewer"
    with pytest.raises(TaskCraftError, match="Unknown default role 'boss'"):
        role_for("new@example.org", {"default": "boss"})
    with pytest.raises(AccessDenied, match="did not give an email"):
        signed_in_principal(None, "No Mail", ROLES)


def test_a_viewer_cannot_ingest_generate_export_import_or_decide(ws: Workspace, tmp_path: Path) -> None:
    ws.store.add_tasks([make_task("t1", "When did the hall open?", "1931")])
    viewer = ws.acting_as(person("vi@example.org"))
    refusals = {
        "ingest": lambda: ingest.ingest_sources([ingest.Source(name="a.txt", data=b"Some text.")], viewer),
        "generate": lambda: runs.create_run(viewer, runs.RunRequest(engine="offline")),
        "export": lambda: export_to_bytes(viewer, "jsonl", TaskFilter()),
        "import": lambda: importers.import_tasks(viewer, tmp_path / "x.jsonl", "jsonl"),
        "review": lambda: rq.decide(ws.store, ws.settings, rq.load_card(ws.store, TaskFilter(), 0), viewer.principal,
                                    "accept"),
        "dedup": lambda: dedup.dismiss_cluster(viewer, ["t1", "t2"], "vi@example.org"),
    }
    for action, attempt in refusals.items():
        with pytest.raises(AccessDenied) as refused:
            attempt()
        assert refused.value.message.startswith("Vi <vi@example.org> (viewer) may not "), action
        assert "vi@example.org" in refused.value.hint and "[taskcraft.roles]" in refused.value.hint
    assert ws.store.list_documents() == [] and ws.store.list_runs() == [] and ws.store.reviews_for("t1") == []


def test_admin_only_actions_are_refused_to_a_curator_with_the_role_needed(ws: Workspace, tmp_path: Path) -> None:
    curator = ws.acting_as(person("cy@example.org"))
    report = ingest.ingest_sources([ingest.Source(name="a.txt", data=b"The hall opened in 1931.")], curator)
    assert report.documents_added == 1
    with pytest.raises(AccessDenied, match=r"may not delete documents: that needs the admin role"):
        ingest.delete_document(curator, report.document_ids[0])
    with pytest.raises(AccessDenied, match="may not use private addresses"):
        ingest.allowing_private_urls(curator)
    with pytest.raises(AccessDenied, match="may not import decisions as they are"):
        importers.import_tasks(curator, tmp_path / "x.jsonl", "jsonl", keep_decisions=True)
    with pytest.raises(AccessDenied, match="may not change settings"):
        session_settings(curator, {"model": "other"})
    assert len(ws.store.list_documents()) == 1
    admin = ws.acting_as(person("ada@example.org"))
    assert ingest.delete_document(admin, report.document_ids[0]) is True
    assert admin.settings.allow_private_urls is False
    assert ingest.allowing_private_urls(admin).settings.allow_private_urls is True


def test_a_signed_in_reviewer_decides_as_their_email_and_only_as_themselves(ws: Workspace) -> None:
    ws.store.add_tasks([make_task("t1", "When did the hall open?", "1931"), make_task("t2", "Who built it?", "Ann")])
    rae = person("rae@example.org")
    review = rq.decide(ws.store, ws.settings, rq.load_card(ws.store, TaskFilter(task_ids=["t1"]), 0), rae, "accept")
    assert (review.reviewer, ws.store.get_task("t1").status) == ("rae@example.org", "accepted")
    with pytest.raises(AccessDenied, match="may decide only as themselves, not as 'ada@example.org'"):
        dedup.dismiss_cluster(ws.acting_as(rae), ["t1", "t2"], "ada@example.org")
    dedup.dismiss_cluster(ws.acting_as(rae), ["t1", "t2"], "rae@example.org")
    assert ws.store.not_duplicate_pairs() == {("t1", "t2")}


# ---- keys stay with their endpoint ---------------------------------------------------------------


def test_moving_the_base_url_without_a_key_leaves_no_key() -> None:
    env = {"OPENAI_API_KEY": SERVER_KEY, "OPENAI_BASE_URL": "https://models.example.org/v1"}
    server = Settings.from_env(env)
    assert server.openai_api_key is not None and server.openai_api_key.get_secret_value() == SERVER_KEY
    assert server.with_changes(openai_base_url="https://models.example.org/v1/").openai_api_key is not None
    assert server.with_changes(openai_base_url="https://visitor.example.net/v1").openai_api_key is None
    assert Settings.from_env(env, {"openai_base_url": "https://visitor.example.net/v1"}).openai_api_key is None
    own = server.with_changes(openai_base_url="https://visitor.example.net/v1", openai_api_key="sk-own")
    assert own.openai_api_key is not None and own.openai_api_key.get_secret_value() == "sk-own"
    # No base URL configured means api.openai.com: a key given for it never goes to a typed host either.
    assert Settings.from_env({"OPENAI_API_KEY": SERVER_KEY}, {"openai_base_url": "http://h/v1"}).openai_api_key is None


def test_the_server_key_never_reaches_a_host_a_visitor_saved(ws: Workspace) -> None:
    with StubOpenAI() as server_endpoint, StubOpenAI() as visitor_host:
        base = ws.settings.with_changes(openai_base_url=server_endpoint.base_url, openai_api_key=SERVER_KEY)
        admin = dataclasses.replace(ws, settings=base.with_changes(allow_private_urls=True),
                                    principal=person("ada@example.org"))
        # The Settings form as the visitor filled it: only a new base URL, the key field left empty.
        saved = session_settings(admin, {"openai_base_url": visitor_host.base_url, "model": "stub-model"},
                                 previous_key=SERVER_KEY)
        assert saved["openai_api_key"] is None
        session = base.with_changes(**{k: v for k, v in saved.items() if v is not None})
        assert "stub-model" in llm.check_connection(session)
    sent = [request.headers.get("authorization") for request in visitor_host.requests]
    assert sent and SERVER_KEY not in json.dumps(sent) and sent == ["Bearer not-needed"] * len(sent)
    assert server_endpoint.requests == []


def test_a_new_base_url_passes_the_url_guard_and_never_carries_credentials(ws: Workspace) -> None:
    admin = ws.acting_as(person("ada@example.org"))
    with pytest.raises(TaskCraftError, match=r"127\.0\.0\.1, a loopback address"):
        session_settings(admin, {"openai_base_url": "http://127.0.0.1:11434/v1"})
    with pytest.raises(TaskCraftError, match="169.254.169.254, a link-local address"):
        session_settings(admin, {"openai_base_url": "http://169.254.169.254/latest/"})
    with pytest.raises(TaskCraftError) as credentials:
        session_settings(admin, {"openai_base_url": "http://user:hunter2@127.0.0.1:8000/v1"},
                         allow_private_endpoint=True)
    assert "user name or password" in credentials.value.message and "hunter2" not in str(credentials.value)
    allowed = session_settings(admin, {"openai_base_url": "http://127.0.0.1:11434/v1"}, allow_private_endpoint=True)
    assert allowed["openai_base_url"] == "http://127.0.0.1:11434/v1"
    assert local_principal("me").can("private_urls")  # local mode: the one person's own machine


def test_url_credentials_are_refused_in_settings_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="user name or password"):
        Settings(openai_base_url="https://bob:secret@models.example.org/v1")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://bob:secret@models.example.org/v1")
    with pytest.raises(TaskCraftError) as refused:
        settings_from_environment()
    assert "openai_base_url" in refused.value.message and "secret" not in str(refused.value)


def test_an_endpoints_error_body_is_cut_and_scrubbed(stub_settings: Settings, stub_openai: StubOpenAI) -> None:
    key = stub_settings.openai_api_key.get_secret_value()  # type: ignore[union-attr]
    body = f"Forbidden. Your request had Authorization: Bearer {key}. " + "Internal detail. " * 200
    stub_openai.queue(error_reply(403, body))
    model = llm.make_chat_model(stub_settings, "generation")
    with pytest.raises(ModelUnavailableError) as refused:
        llm.invoke_text(model, [llm.HumanMessage("hi")])
    message = refused.value.message
    assert key not in message and "Bearer ***" in message
    assert message.endswith("… (cut)") and len(message) < 400


def test_a_resumed_run_uses_the_endpoint_and_key_of_the_person_resuming(ws: Workspace) -> None:
    ingest.load_sample_corpus(ws)
    starter = dataclasses.replace(ws, settings=ws.settings.with_changes(
        openai_base_url="https://starter.example.org/v1", openai_api_key="sk-starter"))
    run = runs.create_run(starter, runs.RunRequest(engine="openai", kinds=["atomic"]))
    assert run.config.base_url == "https://starter.example.org/v1"
    first = snapshot_workspace(starter, run).settings
    assert (first.endpoint, first.openai_api_key.get_secret_value()) == (  # type: ignore[union-attr]
        "https://starter.example.org/v1", "sk-starter")
    ws.store.update_run(run.id, status="interrupted", counts={"done": 1, "total": 9})
    interrupted = ws.store.get_run(run.id)
    assert interrupted is not None
    other_key = dataclasses.replace(ws, settings=ws.settings.with_changes(openai_api_key="sk-resumer"))
    stored_endpoint = snapshot_workspace(other_key, interrupted).settings
    assert (stored_endpoint.endpoint, stored_endpoint.openai_api_key) == ("https://starter.example.org/v1", None)
    resuming = dataclasses.replace(ws, principal=person("cy@example.org"), settings=ws.settings.with_changes(
        openai_base_url="https://resumer.example.org/v1", openai_api_key="sk-resumer"))
    resumed = snapshot_workspace(resuming, runs._record_resume(resuming, interrupted)).settings  # noqa: SLF001
    assert (resumed.endpoint, resumed.openai_api_key.get_secret_value()) == (  # type: ignore[union-attr]
        "https://resumer.example.org/v1", "sk-resumer")
    stored = ws.store.get_run(run.id)
    assert stored is not None and stored.config.settings["openai_base_url"] == "https://resumer.example.org/v1"
    note = stored.config.resumes[-1]
    assert note["note"] == ("resumed with the endpoint and key of the person resuming "
                            "(the run started with https://starter.example.org/v1)")
    assert (note["by"], note["endpoint"]) == ("cy@example.org", "https://resumer.example.org/v1")


# ---- the audit log ----------------------------------------------------------------------------------


def test_settings_generation_import_export_and_delete_are_audited(ws: Workspace, tmp_path: Path) -> None:
    admin = ws.acting_as(person("ada@example.org"))
    session_settings(admin, {"model": "qwen2.5:7b", "openai_base_url": None}, api_key="sk-typed-secret")
    report = ingest.load_sample_corpus(admin)
    run_id = runs.create_run(admin, runs.RunRequest(engine="offline", kinds=["atomic"], limit=1)).id
    ws.store.add_tasks([make_task("t1", "When did the hall open?", "1931")])
    out = tmp_path / "out" / "tasks.jsonl"
    export_tasks(admin, "jsonl", TaskFilter(), out)
    importers.import_tasks(admin, out, "jsonl")
    ingest.delete_document(admin, report.document_ids[0])
    entries = list(reversed(ws.store.list_audit()))
    actions = ("settings", "ingest", "generate", "export", "import", "delete")
    assert [(e.actor, e.role, e.action) for e in entries] == [("ada@example.org", "admin", a) for a in actions]
    settings_entry, _, generate, export, imported, deleted = entries
    assert settings_entry.details["changed"] == {"model": "qwen2.5:7b"} and settings_entry.details["api_key"] == "typed"
    assert "sk-typed-secret" not in json.dumps([e.model_dump(mode="json") for e in entries])
    assert (generate.target, generate.details["request"]["kinds"]) == (run_id, ["atomic"])
    assert (export.target, export.details["count"]) == (str(out), 1)
    assert (imported.target, imported.details["skipped"], imported.details["decisions"]) == (
        "tasks.jsonl", 1, "kept as history")
    assert (deleted.target, deleted.details) == (report.document_ids[0], {"what": "document"})
