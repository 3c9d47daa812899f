"""Make N realistic synthetic tasks with trajectories, written straight into a Store.

Realistic means: questions of 15-40 words built from many templates and made-up entities,
4-8 trajectory steps whose observations are 300-1500 characters, a mix of kinds, statuses and
difficulties. A known share are near-duplicates of an earlier task: exact copies, light edits
(punctuation, spelling, an article) and paraphrases (another template for the same fact, same
answer). Same-template tasks about other entities are the hard negatives that come for free.

    python -m bench.make_tasks --n 36000 --home /tmp/tc36k
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from taskcraft_core.schema import Task, TrajectoryStep, Verification, content_id
from taskcraft_core.settings import Settings
from taskcraft_core.store import Store

SYLLABLES = ("kel vin grove bar ten mor dal sta ven ril a no her stad lin quist ost ra va bel mont fjord "
             "sar lo ka ri tor vik hal den mar low cas tel lane tro ms ber gen nor hav wes ter brook").split()
PLACES = ("Glasgow Bergen Lyon Porto Tromsø Kraków Ghent Turku Aarhus Tallinn Brno Graz Leipzig Uppsala Cork "
          "Genoa Bilbao Plovdiv Kaunas Split").split()
ORGS = ("the regional heritage office", "the national statistics bureau", "the city archive", "the port authority",
        "the university press", "the geological survey", "the transport ministry", "the museum trust")
SOURCES = ("annual report", "technical summary", "heritage register", "founding chronicle", "engineering survey",
           "visitor guide", "municipal yearbook", "press release")
FILLER = (
    "The document was revised several times before it reached its final form.",
    "Earlier drafts circulated among the members of the committee for comment.",
    "Maintenance work was carried out in stages to keep the site open to visitors.",
    "Figures in the appendix were rounded to the nearest whole unit.",
    "Local newspapers reported on the project throughout the construction period.",
    "The archive holds correspondence from the planning phase as well.",
    "A later survey confirmed most of the measurements given in the first edition.",
    "Funding came partly from private donors and partly from the regional government.",
    "Several photographs from the period show the original layout of the grounds.",
    "The authors thank the staff of the reading room for their assistance.",
)

# Each fact type: a kind of entity, answer maker, and several phrasings of the same question.
FACTS: list[tuple[str, str, list[str]]] = [
    (
        "{E} Concert Hall",
        "architect",
        [
            "Which architect designed the {E} Concert Hall that opened in {P} in {Y}, according to the {S} of {O}?",
            "According to the {S} of {O}, who was the architect behind {P}'s {E} Concert Hall, opened in {Y}?",
            "The {E} Concert Hall in {P}, opened in {Y}, was designed by which architect according to the {S} of {O}?",
        ],
    ),
    (
        "{E} Bridge",
        "length",
        [
            "What is the total length in metres of the {E} Bridge over the river"
            " at {P}, as given in the {Y} {S} of {O}?",
            "According to the {Y} {S} of {O}, how long in metres is the {E} Bridge that crosses the river at {P}?",
            "As stated in the {Y} {S} published by {O}, what length does the {E} Bridge at {P} have, in metres?",
        ],
    ),
    (
        "{E} Shipping",
        "count",
        [
            "According to the {Y} {S} of {E} Shipping, how many container vessels"
            " did the company operate in {P} at year end?",
            "How many container ships were in the {P} fleet of {E} Shipping at the close of {Y}, as stated in its {S}?",
            "What number of container vessels did {E} Shipping run out of {P} at the end of {Y}, according to its {S}?",
        ],
    ),
    (
        "{E} Observatory",
        "year",
        [
            "In which year did the {E} Observatory near {P} install its first"
            " refracting telescope, according to the {S} of {O}?",
            "According to the {S} of {O}, when was the first refracting telescope"
            " installed at the {E} Observatory near {P}?",
            "What year saw the {E} Observatory outside {P} receive its first"
            " refracting telescope, as the {S} of {O} records?",
        ],
    ),
    (
        "Lake {E}",
        "depth",
        [
            "How deep is Lake {E} near {P} at its deepest point, according to the {Y} hydrographic {S} of {O}?",
            "According to the {Y} hydrographic {S} of {O}, what is the maximum depth of Lake {E} close to {P}?",
            "What maximum depth does the {Y} hydrographic {S} published by {O} give for Lake {E} near {P}?",
        ],
    ),
    (
        "{E} Analytics",
        "employees",
        [
            "How many employees did {E} Analytics of {P} have at the time of its"
            " initial public offering in {Y}, per the {S}?",
            "When {E} Analytics from {P} went public in {Y}, what was the size of its workforce according to the {S}?",
            "According to the {S}, what headcount did the {P} company {E}"
            " Analytics report at its {Y} stock market listing?",
        ],
    ),
]


def name(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


def answer_for(kind: str, rng: random.Random) -> str:
    if kind == "architect":
        return f"{name(rng)} {name(rng)}"
    if kind == "year":
        return str(rng.randint(1820, 2015))
    unit = {"length": " m", "depth": " m", "count": "", "employees": ""}[kind]
    return f"{rng.randint(12, 9800):,}{unit}"


def observation(answer: str, entity: str, rng: random.Random) -> str:
    """300-1500 characters of passage text that holds the answer somewhere in it."""
    target = rng.randint(300, 1500)
    sentences = [f"The records on {entity} give the figure as {answer}."]
    while sum(len(s) + 1 for s in sentences) < target:
        sentences.insert(rng.randint(0, len(sentences)), rng.choice(FILLER))
    return " ".join(sentences)[:target]


def trajectory(question: str, answer: str, entity: str, rng: random.Random) -> list[TrajectoryStep]:
    steps = [TrajectoryStep(position=0, type="human", content=question)]
    for call in range(rng.randint(1, 3)):
        tool = "search_corpus" if call == 0 else rng.choice(("read_document", "search_corpus"))
        args = {"query": f"{entity} {rng.choice(('figure', 'history', 'record'))}"} if tool == "search_corpus" \
            else {"document_id": content_id(entity), "page": rng.randint(1, 12)}
        steps.append(TrajectoryStep(position=0, type="ai", content="Looking this up.", tool=tool, args=args,
                                    tokens=rng.randint(40, 120), latency_ms=rng.uniform(300, 1500)))
        steps.append(TrajectoryStep(position=0, type="tool", tool=tool, args=args,
                                    observation=observation(answer, entity, rng), latency_ms=rng.uniform(5, 80)))
    if len(steps) < 7 and rng.random() < 0.5:  # a thought before answering, within 8 steps in all
        steps.append(TrajectoryStep(position=0, type="ai", content=f"The passage about {entity} states the figure."))
    steps.append(TrajectoryStep(position=0, type="ai", content=answer, tokens=rng.randint(5, 30)))
    return [step.model_copy(update={"position": i}) for i, step in enumerate(steps)]


@dataclass
class Planted:
    """Which tasks were made as near-duplicates of which (the generator's ground truth)."""

    groups: dict[str, list[str]] = field(default_factory=dict)  # original id -> its duplicates
    kinds: dict[str, str] = field(default_factory=dict)  # duplicate id -> copy | light_edit | paraphrase


def light_edit(question: str, rng: random.Random) -> str:
    edits = [lambda q: q.replace(", according", " according"), lambda q: q.replace("metres", "meters"),
             lambda q: q.replace("the ", "", 1), lambda q: q.rstrip("?") + " ?", lambda q: q.replace("  ", " ")]
    edited = question
    while edited == question:
        edited = rng.choice(edits)(question)
    return edited


def make_tasks(n: int, seed: int = 7, duplicate_share: float = 0.15) -> tuple[list[Task], Planted]:
    rng = random.Random(seed)
    tasks: list[Task] = []
    planted = Planted()
    facts: list[tuple[str, str, list[str], dict[str, str], str, str, str]] = []  # ..., answer, id, question
    while len(tasks) < n:
        if facts and rng.random() < duplicate_share:
            entity, kind, phrasings, slots, answer, original_id, original = rng.choice(facts)
            how = rng.choice(("copy", "light_edit", "paraphrase"))
            if how == "copy":
                question = original
            elif how == "light_edit":
                question = light_edit(original, rng)
            else:
                question = rng.choice([p for p in phrasings if p.format(**slots) != original]).format(**slots)
        else:
            template_entity, kind, phrasings = rng.choice(FACTS)
            slots = {"E": name(rng), "P": rng.choice(PLACES), "Y": str(rng.randint(1950, 2023)),
                     "S": rng.choice(SOURCES), "O": rng.choice(ORGS)}
            entity, answer, how, original_id = template_entity.format(**slots), answer_for(kind, rng), "", ""
            question = rng.choice(phrasings).format(**slots)
        task = Task(
            id=content_id(question, str(len(tasks))), kind=rng.choices(("atomic", "depth", "width"), (6, 3, 1))[0],
            question=question, golden_answer=answer, content_identifier=entity, relation=kind,
            hops=rng.randint(1, 3), difficulty=rng.randint(1, 4), engine="synthetic", model="make_tasks",
            status=rng.choices(("pending", "accepted", "rejected", "failed_verification"), (6, 2, 1, 1))[0],
            trajectory=trajectory(question, answer, entity, rng), model_calls=rng.randint(3, 9),
            tokens=rng.randint(800, 6000),
            verification=Verification(model_alone_answer="I do not know.", agent_answer=answer, agent_score=2,
                                      agent_steps=rng.randint(1, 3)),
        )
        tasks.append(task)
        if how:
            planted.groups.setdefault(original_id, []).append(task.id)
            planted.kinds[task.id] = how
        else:
            facts.append((entity, kind, phrasings, slots, answer, task.id, question))
    return tasks, planted


def write_tasks(store: Store, tasks: list[Task], batch: int = 1000) -> None:
    for start in range(0, len(tasks), batch):
        store.add_tasks(tasks[start : start + batch])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=36_000)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    started = time.perf_counter()
    tasks, planted = make_tasks(args.n, args.seed)
    made = time.perf_counter()
    store = Store(Settings(home=args.home).resolved_database_url)
    write_tasks(store, tasks)
    words = sorted(len(t.question.split()) for t in tasks)
    print(f"made {len(tasks)} tasks in {made - started:.1f} s, stored in {time.perf_counter() - made:.1f} s; "
          f"question words {words[0]}-{words[-1]}, planted duplicates {len(planted.kinds)}")


if __name__ == "__main__":
    main()
