"""Every prompt the studio sends, in our own words, as pure functions that build messages.

`PROMPT_VERSION` is a hash of all the texts below; a generation run stores it so results can be
traced to the wording that produced them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from taskcraft_core.schema import content_id

if TYPE_CHECKING:
    from taskcraft_core.generate.explore.records import (
        Exploration,
        ExplorerView,
        ObservedPage,
        SiteExploration,
        SiteView,
    )

SOLVER_SYSTEM_PROMPT = (
    "You answer questions about a collection of documents. Use the tools: search_corpus to find "
    "passages, read_document to read a document around a passage. Base your answer only on what the "
    "tools return. When you know the answer, reply with the answer alone: the shortest phrase that "
    "answers the question (a number with its unit, a date, a name), no explanation. If the question "
    "asks several numbered questions, answer each on its own line as '1. ...', '2. ...'."
)

ALONE_SYSTEM = (
    "Answer the question from your own knowledge and memory; you have no tools and no documents. Recall "
    "everything you know about the subject and give your best guess even when you are not sure. Reply "
    "with the shortest answer (a number with its unit, a date, a name), no explanation."
)

IDENTIFY = (
    "Name the main subject of this document in a few words, as a title a reader could search for "
    "(a name, a title or a topic, not a description; without the name of the website or collection it "
    "belongs to). The file is called {source}.\n"
    "Page title: {page_title}\nMain heading: {heading}\n\nFirst paragraph:\n{text}"
)

CONCLUSIONS = (
    "You extract verifiable facts from a passage of the document “{identifier}”.\n"
    "Rules for each fact:\n"
    "- one indivisible fact; split a sentence with two facts into two;\n"
    "- its answer is a number with its unit, a full date, a year, or a unique proper name, copied "
    "exactly as written in the passage;\n"
    "- skip vague or evaluative statements; a fact that depends on time states its date;\n"
    "- relation: how to get from the document to the answer, phrased as an operation "
    "(for example: 'the height of the tower in metres'), not as a topic;\n"
    "- evidence: the whole sentence of the passage that states the fact, copied verbatim.\n"
    "Give at most {limit} facts. Give none if the passage has no such fact.\n\nPassage:\n{text}"
)

QUESTION = (
    "Write one question whose single correct answer is “{answer}”.\n"
    "Source to name as a hint: “{identifier}”. Relation to ask about: {relation}.\n"
    "Evidence: {evidence}\n"
    "The question must name the source, stand on its own without the evidence, not contain the "
    "answer or a paraphrase of it, and admit exactly one correct answer."
)

FEEDBACK = (
    "\nA reviewer rejected an earlier question for this fact: “{rejected}”\n"
    "The reviewer's reason: {feedback}\nWrite a different question that fixes this."
)

CANONICAL = (
    "Give the shortest canonical form of the answer to this question: dates as YYYY-MM-DD, numbers "
    "as digits without thousands separators, units kept, names in full without titles.\n"
    "Question: {question}\nAnswer as found in the source: {answer}\nEvidence: {evidence}"
)

JUDGE = (
    "Compare an answer with the golden answer to the question.\n"
    "Score 2: it gives the same information as the golden answer.\n"
    "Score 1: it contains all the information of the golden answer plus something more.\n"
    "Score 0: it misses part of the golden answer, contradicts it, or says it does not know.\n"
    "First write your rationale (what the answer says against the golden answer), then the score.\n"
    "Question: {question}\nGolden answer: {golden}\nAnswer: {answer}"
)

SUPERSET = (
    "The subject “{identifier}”{also_called} is mentioned in the document “{title}”. From the passage below, find "
    "a broader thing that contains or points to it (the superset: a series, a venue, a list, a page that "
    "mentions it, a period) and a relation from that superset that identifies “{identifier}” uniquely.\n"
    "Write: superset (its name), relation (how the superset points to the subject), aux_question (a "
    "question naming the superset whose only answer is “{identifier}”, not containing it), description "
    "(a noun phrase that can replace “{identifier}” in another question, not containing it). Set "
    "found=false if the passage gives no such unique relation.\n\nPassage:\n{text}"
)

SUPERSET_CHECK = (
    "Check a proposed superset of the subject “{identifier}”.\n"
    "Superset: {superset}\nRelation: {relation}\nDescription: {description}\n"
    "It is valid only if the superset is a true generalisation (not a synonym or another name of the "
    "subject) and the description, read against these passages, fits “{identifier}” and nothing else.\n"
    "Passages:\n{passages}"
)

DEPTH_MERGE = (
    "Rewrite the question so that it no longer names “{identifier}” and instead describes it as: "
    "{description}. Keep everything else, so the question asks for exactly the same answer. Do not add "
    "facts or hints.\nQuestion: {question}"
)

DEPTH_CHECK = (
    "A question was rewritten to hide its subject “{identifier}”. Is the rewritten question still "
    "asking for the same single answer “{answer}”, without naming the subject and without becoming "
    "ambiguous?\nOriginal: {question}\nRewritten: {merged}"
)

WIDTH_MERGE = (
    "Combine these questions into one question that asks for all of their answers, in the given order, "
    "numbered 1., 2., ... Keep each question's meaning and its source; add no facts and no hints on how "
    "to find the answers.\n{questions}"
)

WIDTH_DECOMPOSE = (
    "Split this combined question into the separate questions it asks, in order, each one complete "
    "and standing on its own.\nCombined question: {merged}"
)

EXPLORE_SOLVER_SYSTEM = (
    "You carry out navigation tasks in a collection of linked documents (pages). Use the tools: "
    "search_corpus to find a page by its title, read_document to read a page, list_links to see the links "
    "of a page with the document_id each leads to, follow_link to go from a page to a page it links to. "
    "Follow the route the task describes link by link, and answer only from the pages you reached. Reply "
    "with the answer alone: the shortest phrase (a number with its unit, a date, a name), no explanation. "
    "If the task asks several numbered questions, answer each on its own line as '1. ...', '2. ...'."
)

EXPLORE_ACTION = (
    "You explore a collection of linked documents to find out what it contains, systematically: prefer "
    "links to pages you have not seen, then links you have not followed yet.\n"
    "Memory so far: {summary}\nPages seen: {pages}\nYou are on: {current}. Steps left: {steps_left}.\n"
    "Links you can follow next:\n{frontier}\n"
    "Reply with choice (the number of the link to follow, or 0 to stop exploring) and reason."
)

EXPLORE_SUMMARY = (
    "You keep the memory of an exploration of linked documents. Previous memory: {previous}\n"
    "Pages reached in this turn:\n{pages}\n"
    "Write summary: the memory updated in two or three sentences (which pages exist, what each is about, "
    "how they link). Write facts: at most {limit} verifiable facts of the pages above, each with "
    "document_id (of its page), answer (a number with its unit, a date, a year or a unique name, copied "
    "exactly), relation (how to get from the page to the answer, as an operation) and evidence (the "
    "sentence stating it, copied verbatim)."
)

EXPLORE_TASKS = (
    "Write tasks for an agent that navigates a collection of linked documents, grounded in what an explorer "
    "really saw (below). Guideline: {guideline}\n"
    "Rules: the question names the start page by its title and says which links to follow; every page the "
    "question needs was reached by the explorer and every link it follows was seen on its page; every answer "
    "is copied exactly from a page's text; the question does not contain any answer; it has exactly one "
    "correct answer (several numbered ones when it asks several things).\n"
    "For each task write: question; start_document_id; moves (the links to follow, in order, each as "
    "from_document_id and to_document_id); answers (each with answer, document_id of its page, evidence "
    "sentence). Write at most {limit} tasks.\n\nExploration:\n{exploration}"
)

EXPLORE_GUIDELINES: dict[str, str] = {
    "information_retrieval": "information retrieval: start at a page, follow one of its links, and report one fact "
                             "of the page reached.",
    "navigation": "navigation across several pages: follow links from page A to B to C (three different pages) "
                  "and report one fact of C.",
    "composition": "composition: report one fact of a page and one fact of a page it links to, as two numbered "
                   "answers.",
    "repetition": "repetition: from a page, follow two of its links and report the same kind of fact (for example "
                  "a year, or a length) from each of the two pages reached, as two numbered answers.",
}

EXPLORE_SITE_SOLVER_SYSTEM = (
    "You carry out tasks on a website in a browser. Tools: read_page (the current page: title, URL, text, "
    "numbered links, numbered fields), open_link (a link's number), go_back, type_and_submit (a field's number "
    "and the text, e.g. the site's search box), select_option (a select field's number and an option). Do what "
    "the task asks, the way it asks (use the search when it says so, browse links when it rules the search out), "
    "and answer only from the pages you reached. Reply with the answer alone: the shortest phrase (a number with "
    "its unit, a date, a name), no explanation. If the task asks several numbered questions, answer each on its "
    "own line as '1. ...', '2. ...'."
)

EXPLORE_SITE_ACTION = (
    "You explore a website to find out what it contains and what it can do, systematically: prefer pages "
    "and functions (search box, filters, forms, pagination) you have not tried; use the search with terms "
    "taken from the pages.\nMemory so far: {summary}\nFunctions found: {functions}\nSearches made: {searches}\n"
    "Pages seen ({seen}): {visited}\nSteps left: {steps_left}.\nThe current page:\n{current}\n"
    "Links seen earlier and not visited (for open_url):\n{known}\n"
    "Reply with tool (open_link, go_back, read_page, type_and_submit, select_option, open_url, or stop), "
    "number (the link's number for open_link, the field's number for type_and_submit and select_option), "
    "text (what to type), option (the option to select), url (for open_url) and reason."
)

EXPLORE_GOAL_TASKS = (
    "Write tasks for an agent that uses a website in a browser, grounded in what an explorer really saw "
    "(below). Guideline: {guideline}\n"
    "Rules: a task names the goal, not the route (\"Using the site's search, find the module that provides "
    "... and give its ...\"); every page it needs was reached by the explorer; every answer is copied exactly "
    "from a page's text; the question does not contain any answer; it has exactly one correct answer "
    "(several numbered ones when it asks several things).\n"
    "For each task write: question; pages (the URLs the agent must reach, in order); answers (each with "
    "answer, url of its page, evidence sentence); search (true when the agent must use the site's search, "
    "false when it must not, null when either). Write at most {limit} tasks.\n\nExploration:\n{exploration}"
)

EXPLORE_GOAL_GUIDELINES: dict[str, str] = {
    "feature_use": "feature use: the task needs one of the site's functions (its search, a filter, a form) to "
                   "reach a page, then asks one fact of that page.",
    "information_retrieval": "information retrieval: find a page the explorer read, by any means, and report "
                             "one fact of it.",
    "navigation": "navigation: reach a page two links away from the start page without the search (the task may "
                  "name the page that links to it) and report one fact of it.",
    "composition": "composition: combine two functions or findings, e.g. search for a page, follow one of its "
                   "links, and report one fact of each page, as two numbered answers.",
    "repetition": "repetition over similar items: two pages listed on the same page; report the same kind of fact "
                  "(a year, a name, a number) from each, as two numbered answers.",
}

PROMPT_TEXTS: tuple[str, ...] = (
    SOLVER_SYSTEM_PROMPT, ALONE_SYSTEM, IDENTIFY, CONCLUSIONS, QUESTION, FEEDBACK, CANONICAL, JUDGE, SUPERSET,
    SUPERSET_CHECK, DEPTH_MERGE, DEPTH_CHECK, WIDTH_MERGE, WIDTH_DECOMPOSE,
    EXPLORE_SOLVER_SYSTEM, EXPLORE_ACTION, EXPLORE_SUMMARY, EXPLORE_TASKS, *EXPLORE_GUIDELINES.values(),
    EXPLORE_SITE_SOLVER_SYSTEM, EXPLORE_SITE_ACTION, EXPLORE_GOAL_TASKS, *EXPLORE_GOAL_GUIDELINES.values(),
)
PROMPT_VERSION = content_id(*PROMPT_TEXTS, length=12)

IDENTIFY_TEXT_CHARS = 3000


def identify_messages(source: str, text: str, page_title: str | None = None,
                      heading: str | None = None) -> list[BaseMessage]:
    """The file name, the page title, the main heading and the first paragraph (or the text's beginning)."""
    paragraphs = [block.strip() for block in text.split("\n") if len(block.split()) >= 8]
    first = (paragraphs[0] if paragraphs else text)[:IDENTIFY_TEXT_CHARS]
    return [HumanMessage(IDENTIFY.format(source=source, page_title=page_title or "(none)",
                                         heading=heading or "(none)", text=first))]


def conclusions_messages(identifier: str, text: str, limit: int) -> list[BaseMessage]:
    return [HumanMessage(CONCLUSIONS.format(identifier=identifier, text=text, limit=limit))]


def question_messages(identifier: str, answer: str, relation: str, evidence: str, *, rejected: str = "",
                      feedback: str = "") -> list[BaseMessage]:
    """The question-writing prompt; with a reviewer's feedback on a rejected question, that too."""
    prompt = QUESTION.format(identifier=identifier, answer=answer, relation=relation, evidence=evidence)
    if feedback:
        prompt += FEEDBACK.format(rejected=rejected, feedback=feedback)
    return [HumanMessage(prompt)]


def canonical_messages(question: str, answer: str, evidence: str) -> list[BaseMessage]:
    return [HumanMessage(CANONICAL.format(question=question, answer=answer, evidence=evidence))]


def alone_messages(question: str) -> list[BaseMessage]:
    return [SystemMessage(ALONE_SYSTEM), HumanMessage(question)]


def judge_messages(question: str, golden: str | Sequence[str], answer: str) -> list[BaseMessage]:
    return [HumanMessage(JUDGE.format(question=question, golden=numbered(golden), answer=answer))]


def superset_messages(identifier: str, title: str, text: str, aliases: Sequence[str] = ()) -> list[BaseMessage]:
    also_called = f" (also called: {', '.join(f'“{alias}”' for alias in aliases)})" if aliases else ""
    return [HumanMessage(SUPERSET.format(identifier=identifier, also_called=also_called, title=title, text=text))]


def superset_check_messages(identifier: str, superset: str, relation: str, description: str,
                            passages: Sequence[str]) -> list[BaseMessage]:
    listing = "\n---\n".join(passages) or "(none found)"
    return [HumanMessage(SUPERSET_CHECK.format(identifier=identifier, superset=superset, relation=relation,
                                               description=description, passages=listing))]


def depth_merge_messages(question: str, identifier: str, description: str) -> list[BaseMessage]:
    return [HumanMessage(DEPTH_MERGE.format(question=question, identifier=identifier, description=description))]


def depth_check_messages(question: str, merged: str, identifier: str, answer: str) -> list[BaseMessage]:
    return [HumanMessage(DEPTH_CHECK.format(question=question, merged=merged, identifier=identifier, answer=answer))]


def width_merge_messages(questions: Sequence[str]) -> list[BaseMessage]:
    return [HumanMessage(WIDTH_MERGE.format(questions=numbered(questions)))]


def width_decompose_messages(merged: str) -> list[BaseMessage]:
    return [HumanMessage(WIDTH_DECOMPOSE.format(merged=merged))]


def numbered(items: str | Sequence[str]) -> str:
    """A list as numbered lines ('1. ...'); a single string stays as it is."""
    if isinstance(items, str):
        return items
    return "\n".join(f"{number}. {item}" for number, item in enumerate(items, start=1))


# ---- exploration (METHOD §2) --------------------------------------------------------------------

EXPLORE_EXCERPT_CHARS = 1500  # of each page's text shown to the task writer, besides its facts


def explore_action_messages(view: ExplorerView) -> list[BaseMessage]:
    frontier = "\n".join(
        f"{n}. from “{f.from_title}” follow {f.link} to “{f.to_title}” ({'seen' if f.to_seen else 'new page'})"
        for n, f in enumerate(view.frontier, start=1)) or "(none)"
    current = f"“{view.current_title}”" if view.current_title else "(nowhere yet)"
    return [HumanMessage(EXPLORE_ACTION.format(summary=view.summary or "(empty)", pages=", ".join(
        f"“{title}”" for title in view.pages_seen) or "(none)", current=current, steps_left=view.steps_left,
        frontier=frontier))]


def explore_summary_messages(previous: str, pages: Sequence[ObservedPage], limit: int) -> list[BaseMessage]:
    listing = "\n---\n".join(f"document_id={p.document_id} title=“{p.title}”\n{p.text}" for p in pages)
    return [HumanMessage(EXPLORE_SUMMARY.format(previous=previous or "(empty)", pages=listing, limit=limit))]


def explore_tasks_messages(guideline: str, exploration: Exploration, limit: int) -> list[BaseMessage]:
    return [HumanMessage(EXPLORE_TASKS.format(guideline=EXPLORE_GUIDELINES[guideline], limit=limit,
                                              exploration=describe_exploration(exploration)))]


def describe_exploration(exploration: Exploration) -> str:
    """The trajectory as the task writer reads it: each page in the order reached, with its links,
    the facts noted on it and the beginning of its text; then the memory's latest summary."""
    blocks = []
    for page in exploration.memory.pages:
        links = ", ".join(f"{t.link} -> “{t.title}” ({t.document_id})" if t.document_id else f"{t.link} -> outside"
                          for t in page.links or []) or "(not listed)"
        facts = "\n".join(f"  - {f.answer}: {f.relation} (“{f.evidence}”)"
                          for f in exploration.memory.facts_on(page.document_id))
        observed = exploration.observed_text(page.document_id)
        excerpt = observed[1][:EXPLORE_EXCERPT_CHARS] if observed else ""
        blocks.append(f"Page “{page.title}” document_id={page.document_id} (reached at step {page.first_step})\n"
                      f"links: {links}\nfacts:\n{facts or '  (none noted)'}\ntext:\n{excerpt}")
    summaries = exploration.memory.summaries
    return "\n\n".join([*blocks, f"Memory: {summaries[-1] if summaries else '(empty)'}"])


SITE_PAGE_CHARS = 1200  # of each page's text shown to the website task writer, besides its facts


def site_action_messages(view: SiteView) -> list[BaseMessage]:
    functions = "; ".join(f"{f.kind} {f.name!r} on {f.url}" for f in view.functions) or "(none)"
    known = "\n".join(f"- {link.text} -> {link.url}" for link in view.known_links) or "(none)"
    return [HumanMessage(EXPLORE_SITE_ACTION.format(
        summary=view.summary or "(empty)", functions=functions, searches=", ".join(view.searches) or "(none)",
        seen=len(view.visited), visited=", ".join(view.visited) or "(none)", steps_left=view.steps_left,
        current=view.current, known=known))]


def goal_tasks_messages(guideline: str, exploration: SiteExploration, limit: int) -> list[BaseMessage]:
    return [HumanMessage(EXPLORE_GOAL_TASKS.format(guideline=EXPLORE_GOAL_GUIDELINES[guideline], limit=limit,
                                                   exploration=describe_site(exploration)))]


def describe_site(exploration: SiteExploration) -> str:
    """The exploration as the website task writer reads it: the start, the functions found, the
    searches made, then each page in the order reached with the links it followed, its facts and
    the beginning of its text; then the memory's latest summary."""
    memory = exploration.memory
    lines = [f"Start URL: {exploration.start_url}",
             "Functions: " + ("; ".join(f"{f.kind} {f.name!r} on {f.url}" for f in memory.functions) or "(none)")]
    for search in memory.searches:
        results = ", ".join(f"“{link.text}” ({link.url})" for link in search.results[:8])
        lines.append(f"Searched “{search.term}” on {search.from_url}: results {results}")
    for page in memory.pages:
        facts = "\n".join(f"  - {f.answer}: {f.relation} (“{f.evidence}”)" for f in memory.facts_on(page.document_id))
        links = ", ".join(f"“{link.text}” -> {link.url}" for link in page.outlinks[:25])
        lines.append(f"Page “{page.title}” {page.url} (step {page.first_step})\n links: {links or '(none)'}\n"
                     f" facts:\n{facts or '  (none)'}\n"
                     f" text: {exploration.texts.get(page.document_id, '')[:SITE_PAGE_CHARS]}")
    lines.append(f"Memory: {memory.summaries[-1] if memory.summaries else '(empty)'}")
    return "\n".join(lines)
