"""One studio app process for the replica tests: the real app (Streamlit's AppTest runs app.py and its
pages in this process) driven by commands on stdin, one JSON answer per command on stdout.

    open REVIEWER     open the Review page as REVIEWER
    click KEY         click the button with this key
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[1] / "app.py"


def state(at: AppTest) -> dict[str, object]:
    return {"exception": [str(e.value) for e in at.exception],
            "card": next((c.value.split(" · ")[0] for c in at.caption if " · hops " in c.value), None),
            "warnings": [w.value for w in at.warning]}


def main() -> None:
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "open":
            at.switch_page("app_pages/review.py").run()
            at.text_input(key="reviewer_name").input(argument).run()
        elif command == "click":
            at.button(key=argument).click().run()
        print(json.dumps(state(at)), flush=True)


if __name__ == "__main__":
    main()
