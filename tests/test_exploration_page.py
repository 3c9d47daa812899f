"""The Generate page's exploration stepper, through AppTest on a real store: one step at a time, with
its screenshot, action, what was learned and any error."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from taskcraft_core.schema import ExplorationStep, GenerationRun
from taskcraft_core.store import Store
from tests.test_pages import db, home, open_page  # noqa: F401 (fixtures)


def jpeg(colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 40), colour).save(out, format="JPEG")
    return out.getvalue()


def test_the_stepper_shows_one_exploration_step_at_a_time(home: Path, db: Store) -> None:  # noqa: F811
    db.save_run(GenerationRun(id="r1"))
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
