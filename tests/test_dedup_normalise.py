"""Near-duplicates that survive rewording: normalisation, the exact pass, the same-answer channel."""

from __future__ import annotations

import pytest

from taskcraft_core.curate.dedup import find_near_duplicates, gate_candidate, same_text_pairs
from taskcraft_core.index.normalise import comparison_text, dedup_hash, surface_form
from taskcraft_core.workspace import Workspace
from tests.curation_factory import make_task

ORIGINAL = "According to the 2021 annual report of Nordhavn Shipping, how many container vessels did it operate?"


def test_surface_form_folds_unicode_case_accents_punctuation_and_thousands() -> None:
    assert surface_form("ＷＨＡＴ  is the Depth of Lake Genève\u00a0—  12,000 m or 3.5 km??") == \
        "what is the depth of lake geneve 12000 m or 3.5 km"
    assert surface_form("Café’s ﬁrst year") == "cafe s first year"


def test_comparison_text_drops_frame_words_and_keeps_specifics() -> None:
    assert comparison_text(ORIGINAL) == "2021 annual report nordhavn shipping many container vessels operate"
    assert comparison_text(ORIGINAL.replace("According to", "Based on")) == comparison_text(ORIGINAL)
    assert comparison_text("Which ship did not sail first, before 1990?") == "ship not sail first before 1990"
    assert comparison_text("What is it?") == "what is it"  # nothing but frame words: kept whole


@pytest.mark.parametrize("copy", [
    ORIGINAL.upper().replace(" ", "  "),                                   # the copy the issue found 0 times in 500
    ORIGINAL.replace("Nordhavn Shipping", "Ｎｏｒｄｈａｖｎ\u00a0Shipping"),    # full-width letters, a no-break space
    ORIGINAL.replace(",", "").replace("?", " ??"),                        # punctuation
])
def test_copies_in_another_form_are_exact_duplicates(workspace: Workspace, copy: str) -> None:
    workspace.store.add_tasks([make_task("a", ORIGINAL, "64"), make_task("b", copy, "64")])
    clusters = find_near_duplicates(workspace, 0.85)
    assert [(c.task_ids, [p.kind for p in c.pairs]) for c in clusters] == [(["a", "b"], ["exact"])]


def test_the_exact_pass_finds_equal_normalised_texts_even_above_any_cosine(workspace: Workspace) -> None:
    tasks = [make_task("a", ORIGINAL, "64"), make_task("b", ORIGINAL.upper(), "64"),
             make_task("c", ORIGINAL.replace("2021", "2022"), "71")]
    assert dedup_hash(tasks[0]) == dedup_hash(tasks[1]) != dedup_hash(tasks[2])
    assert same_text_pairs(tasks) == [(0, 1)]
    workspace.store.add_tasks(tasks)
    assert [c.task_ids for c in find_near_duplicates(workspace, 1.0)] == [["a", "b"]]


def test_another_lead_in_is_a_duplicate_and_another_year_is_not(workspace: Workspace) -> None:
    workspace.store.add_tasks([
        make_task("a", ORIGINAL, "64"),
        make_task("b", ORIGINAL.replace("According to", "Based on"), "64"),
        make_task("c", "As stated in the 2021 annual report of Nordhavn Shipping, how many container vessels did "
                       "the company operate?", "64"),
        make_task("d", ORIGINAL.replace("2021", "2019"), "64"),  # another year, the same answer by chance
        make_task("e", ORIGINAL.replace("Nordhavn", "Sorhavn"), "58"),
    ])
    assert [c.task_ids for c in find_near_duplicates(workspace, 0.85)] == [["a", "b", "c"]]


def test_a_rewording_with_other_frame_words_joins_through_the_same_answer(workspace: Workspace) -> None:
    reworded = "When Nordhavn Shipping closed 2021, what was the size of its container fleet per its annual report?"
    workspace.store.add_tasks([make_task("a", ORIGINAL, "64"), make_task("b", reworded, "64"),
                               make_task("c", reworded.replace("Nordhavn", "Vestby"), "64")])
    clusters = find_near_duplicates(workspace, 0.85)
    assert [c.task_ids for c in clusters] == [["a", "b"]]
    assert clusters[0].pairs[0].cosine < 0.85  # below the threshold: found by the same-answer channel
    strict = workspace.settings.model_copy(update={"same_answer_threshold": 0.85})
    assert find_near_duplicates(Workspace(strict, workspace.store, workspace.index), 0.85) == []


def test_the_gate_catches_an_upper_case_copy(workspace: Workspace) -> None:
    workspace.store.add_tasks([make_task("a", ORIGINAL, "64")])
    pair = gate_candidate(workspace, make_task("new", ORIGINAL.upper().replace(" ", "  "), "64"))
    assert pair is not None and (pair.a, pair.b, pair.kind) == ("a", "new", "exact")
