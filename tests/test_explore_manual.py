"""The website explorer on a real interactive site nobody here wrote: Debian's python3.11-doc Sphinx
manual, served on 127.0.0.1 (its search page runs in JavaScript over searchindex.js). The explorer
must use the search box, visit at least 15 pages, and produce verified goal-style tasks in at least
three guideline families."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from taskcraft_core.agent.browser import chromium_available
from taskcraft_core.curate.records import task_record
from taskcraft_core.runs.site_exploration import ExploreRequest, start_exploration
from taskcraft_core.schema import guideline_of
from taskcraft_core.settings import Settings
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace
from tests.site_server import PYTHON_MANUAL, serve_directory

pytestmark = [
    pytest.mark.slow, pytest.mark.browser,
    pytest.mark.skipif(not (PYTHON_MANUAL / "search.html").exists(), reason="python3.11-doc is not installed"),
    pytest.mark.skipif(not chromium_available(Settings()), reason="no Chromium to drive"),
]


def test_the_explorer_uses_the_manuals_search_and_makes_verified_goal_tasks(tmp_path: Path) -> None:
    workspace = Workspace.open(Settings(home=tmp_path / "home", allow_private_urls=True, explore_rate_limit_s=0.05))
    with serve_directory(PYTHON_MANUAL) as (url, server):
        summary = start_exploration(workspace, ExploreRequest(
            start_url=f"{url}/library/index.html", max_pages=22, engine="offline", tasks_per_guideline=2))
    assert summary.status == "completed"
    steps = workspace.store.exploration_steps(summary.run_id, screenshots=False)
    manual_pages = {s.url.split("#")[0] for s in steps if s.document_id and "/search.html" not in s.url}
    assert len(manual_pages) >= 15, sorted(manual_pages)  # pages of the manual, search results not counted
    searches = [s for s in steps if s.action == "type_and_submit" and not s.error]
    assert len(searches) >= 2 and summary.interactions == len(searches)
    # the results the page's JavaScript lists (each fetched by XHR) were read, and one about the term opened next
    first = searches[0]
    after = steps[first.position + 1]
    term = str(first.args["text"])
    assert after.action == "open_link" and f"] {term} — " in first.observation
    assert f" -> {after.url}" in first.observation and after.url.endswith(f"/library/{term}.html")
    assert "/_static/jquery.js" in server.requested  # Debian's symlink into /usr/share/javascript was followed

    tasks = workspace.store.get_tasks(workspace.store.list_task_ids(TaskFilter(run_ids=[summary.run_id])))
    verified = [t for t in tasks if t.status == "pending"]
    families = Counter(guideline_of(t) for t in verified)
    assert len(families) >= 3, families
    for task in verified:
        assert task.engine == "offline" and task.kind == "explore"
        assert not task.question.startswith("Start at")  # goal-style: what to achieve, not the route
        assert task.verification is not None and task.verification.model_alone_score == 0
        assert task.verification.agent_score == 2 and task.document_id is not None
        assert task_record(task, workspace.store)["guideline"] == guideline_of(task)
    for task in (t for t in verified if t.guideline in ("feature_use", "composition")):
        assert "type_and_submit" in [s.tool for s in task.trajectory]
