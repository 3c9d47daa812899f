"""The Generate page's exploration stepper, through AppTest on a real store: one step at a time, with
its screenshot, action, what was learned and any error."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from taskcraft_core.runs.site_exploration import EXPLORE_KEY, ExploreRequest
from taskcraft_core.schema import ExplorationStep, GenerationRun, RunConfig
from taskcraft_core.store import Store
from tests.site_server import serve_pages
from tests.test_pages import db, home, open_page, wait_for_runs_to_finish  # noqa: F401 (fixtures)


def jpeg(colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 40), colour).save(out, format="JPEG")
    return out.getvalue()


def test_the_stepper_shows_one_exploration_step_at_a_time(home: Path, db: Store) -> None:  # noqa: F811
    request = ExploreRequest(start_url="http://127.0.0.1:8000/index.html")
    db.save_run(GenerationRun(id="r1", status="completed",
                              config=RunConfig(settings={EXPLORE_KEY: request.model_dump(mode="json")})))
    db.add_exploration_steps([
        ExplorationStep(run_id="r1", position=0, url="http://127.0.0.1:8000/index.html", title="Python docs",
                        action="open_url", learned="new state: Python docs; function: search box",
                        screenshot=jpeg("white")),
        ExplorationStep(run_id="r1", position=1, url="http://127.0.0.1:8000/search.html?q=json", title="Search",
                        action="type_and_submit", args={"field": 0, "text": "json"},
                        learned="search for 'json' lists 12 results", screenshot=jpeg("blue")),
        ExplorationStep(run_id="r1", position=2, url="http://127.0.0.1:8000/slow.html", action="open_link",
                        args={"number": 4}, error="The page did not load within 10 s."),
    ])
    at = open_page("generate")
    assert at.selectbox(key="explore_trajectory_run").value == "r1"
    assert any(m.value.startswith("**Step 1 of 3**") and "`open_url`" in m.value for m in at.markdown)
    assert any("search box" in m.value for m in at.markdown)
    assert [image.captions for image in at.get("image")] == [["http://127.0.0.1:8000/index.html"]]
    at.select_slider(key="explore_step_r1").set_value(1).run()
    assert any(m.value.startswith("**Step 2 of 3**") for m in at.markdown)
    assert '"text": "json"' in at.code[0].value
    at.select_slider(key="explore_step_r1").set_value(2).run()
    assert at.error[0].value.startswith("The page did not load within 10 s")
    assert any(c.value.startswith("No screenshot") for c in at.caption)


SITE = {
    "/index.html": "<html><head><title>Lighthouse guide</title></head><body><h1>Lighthouse guide</h1>"
                   "<p>The guide covers the lamps and keepers of the coast.</p>"
                   "<form action='/search.html'><input type='text' name='q'><button>Search</button></form>"
                   "<a href='/lamps.html'>Lamps</a> <a href='/keepers.html'>Keepers</a></body></html>",
    "/lamps.html": "<html><head><title>Lamps</title></head><body><h1>Lamps</h1><p>The Fresnel lens at Gull Point "
                   "was installed in 1931 by the Harbour Trust.</p><a href='/index.html'>Home</a></body></html>",
    "/keepers.html": "<html><head><title>Keepers</title></head><body><h1>Keepers</h1><p>Ada Brennan kept the Gull "
                     "Point light from 1931 to 1952.</p><a href='/index.html'>Home</a></body></html>",
    "/search.html": "<html><head><title>Search</title></head><body><h1>Search results</h1>"
                    "<a href='/lamps.html'>Lamps</a></body></html>",
}


def test_an_exploration_started_from_the_form_runs_and_its_trajectory_shows(home: Path, db: Store) -> None:  # noqa: F811
    with serve_pages(SITE) as (url, server):
        at = open_page("generate")
        at.text_input(key="explore_start_url").input(f"{url}/index.html")
        at.number_input(key="explore_max_pages").set_value(6)
        at.checkbox(key="explore_allow_private").check()
        at.button(key="FormSubmitter:explore_form-Explore").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        wait_for_runs_to_finish(db, timeout_s=120)
    [run] = db.list_runs()
    steps = db.exploration_steps(run.id, screenshots=False)
    assert run.status == "completed" and steps[0].url == f"{url}/index.html"
    assert "/lamps.html" in server.requested
    at.run()
    assert at.selectbox(key="explore_trajectory_run").value == run.id
    assert any(c.value.startswith(f"completed · offline engine · {url}/index.html") for c in at.caption)
    assert any(m.value.startswith(f"**Step 1 of {len(steps)}**") for m in at.markdown)


def test_a_stopped_exploration_resumes_from_the_page_as_an_exploration(home: Path, db: Store) -> None:  # noqa: F811
    from taskcraft_core.runs.site_exploration import create_exploration
    from taskcraft_core.settings import Settings
    from taskcraft_core.workspace import Workspace

    with serve_pages(SITE) as (url, server):
        ws = Workspace.open(Settings(home=home, allow_private_urls=True))
        run = create_exploration(ws, ExploreRequest(start_url=f"{url}/index.html", max_pages=4, engine="offline",
                                                    allow_private_urls=True))
        db.update_run(run.id, status="cancelled")
        at = open_page("generate")
        assert at.selectbox(key="generate_resume_id").value == run.id
        at.button(key="generate_resume").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        wait_for_runs_to_finish(db, timeout_s=120)
    assert db.get_run(run.id).status == "completed" and "/index.html" in server.requested
    assert db.exploration_steps(run.id, screenshots=False)[0].action == "open_url"
