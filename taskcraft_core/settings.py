"""One settings object for the whole studio.

Built once from the environment (and optionally Streamlit secrets or the Settings page) and passed
down explicitly; no other module reads the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator

Engine = Literal["offline", "openai"]
# Where an OpenAI-compatible client goes when no base URL is set.
DEFAULT_BASE_URL = "https://api.openai.com/v1"

# Environment variable -> settings field. Everything else keeps its default.
ENV_FIELDS: dict[str, str] = {
    "TASKCRAFT_HOME": "home",
    "TASKCRAFT_DATABASE_URL": "database_url",
    "OPENAI_API_KEY": "openai_api_key",
    "OPENAI_BASE_URL": "openai_base_url",
    "TASKCRAFT_OPENAI_BASE_URLS": "openai_base_urls",
    "TASKCRAFT_MODEL": "model",
    "TASKCRAFT_GENERATION_MODEL": "generation_model",
    "TASKCRAFT_SOLVER_MODEL": "solver_model",
    "TASKCRAFT_JUDGE_MODEL": "judge_model",
    "TASKCRAFT_ENGINE": "engine",
    "TASKCRAFT_EMBEDDINGS": "embeddings",
    "TASKCRAFT_CONCURRENCY": "concurrency",
    "TASKCRAFT_ALLOW_PRIVATE_URLS": "allow_private_urls",
    "TASKCRAFT_WEB_SEARCH_URL": "web_search_url",
    "TASKCRAFT_DUPLICATE_THRESHOLD": "duplicate_threshold",
    "TASKCRAFT_DUPLICATE_ACTION": "duplicate_action",
    "TASKCRAFT_REVIEWS_PER_TASK": "reviews_per_task",
    "TASKCRAFT_ADJUDICATORS": "adjudicators",
    "TASKCRAFT_WORKERS": "workers",
    "TASKCRAFT_CHROMA_URL": "chroma_url",
    "TASKCRAFT_BROWSER": "browser_executable",
}


class Settings(BaseModel):
    """Everything the studio can be configured with; every field documents itself."""

    home: Path = Field(Path("data"), description="Data home: SQLite file, Chroma directory, uploads.")
    database_url: str | None = Field(
        None, description="Any SQLAlchemy URL; default is a SQLite file inside the data home."
    )
    openai_api_key: SecretStr | None = Field(
        None, description="API key for the OpenAI-compatible endpoint; never stored or exported."
    )
    openai_base_url: str | None = Field(
        None, description="Base URL of an OpenAI-compatible endpoint (vLLM, Ollama, LM Studio, ...)."
    )
    openai_base_urls: str | None = Field(
        None, description="Comma-separated base URLs of replicas serving the same model (a vLLM fleet): calls "
        "are spread over them and one that fails is skipped. Replaces openai_base_url when set."
    )
    model: str = Field("gpt-4o-mini", description="Default chat model for every role.")
    generation_model: str | None = Field(None, description="Model that writes tasks; default: model.")
    solver_model: str | None = Field(None, description="Model that drives the solving agent; default: model.")
    judge_model: str | None = Field(None, description="Model that judges answers; default: model.")
    engine: Literal["auto", "offline", "openai"] = Field(
        "auto", description="auto: openai when an endpoint or key is configured, else offline."
    )
    embeddings: Literal["wordllama", "openai"] = Field(
        "wordllama", description="Embedding function for the vector index; wordllama works offline."
    )
    embedding_model: str = Field("text-embedding-3-small", description="OpenAI embedding model.")
    request_timeout_s: float = Field(60.0, description="Timeout of one model request, in seconds.")
    max_retries: int = Field(2, description="Retries of a failed model request (429, 5xx, timeouts).")
    concurrency: int = Field(8, ge=1, le=64, description="Concurrent model calls in a generation run.")
    cache_responses: bool = Field(True, description="Cache model responses so re-runs do not pay twice.")
    chunk_size: int = Field(2000, ge=200, description="Characters per chunk for indexing and extraction.")
    chunk_overlap: int = Field(200, ge=0, description="Characters shared by neighbouring chunks.")
    max_file_bytes: int = Field(50_000_000, description="Largest single file accepted for ingestion.")
    zip_max_entries: int = Field(2_000, description="Most entries read from one zip archive.")
    zip_max_total_bytes: int = Field(200_000_000, description="Largest total uncompressed size of a zip.")
    url_timeout_s: float = Field(15.0, description="Timeout for fetching one URL.")
    url_max_bytes: int = Field(10_000_000, description="Largest response accepted from a URL.")
    allow_private_urls: bool = Field(
        False, description="Allow URLs that resolve to loopback, private or link-local addresses."
    )
    agent_max_steps: int = Field(8, ge=1, description="Most tool-using steps the solving agent may take.")
    tool_timeout_s: float = Field(20.0, description="Timeout of one tool call made by the agent.")
    web_search_url: str | None = Field(
        None,
        description="A SearXNG-compatible search endpoint (JSON for ?q=...&format=json); gives the agent web_search.",
    )
    solver_can_fetch_urls: bool = Field(False, description="Give the solving agent the fetch_url tool.")
    browser_executable: str | None = Field(
        None, description="Chromium (or Chrome) executable the website explorer drives; default /usr/bin/chromium "
        "when it exists, else the browser Playwright installed.")
    explore_max_pages: int = Field(40, ge=1, description="Most page loads (navigations) one website exploration makes.")
    explore_max_seconds: float = Field(300.0, gt=0, description="Most seconds one website exploration walks the site.")
    explore_task_max_pages: int = Field(20, ge=1, description="Most page loads of the executor on one website task.")
    explore_task_max_seconds: float = Field(
        120.0, gt=0, description="Most seconds of the executor on one website task.")
    explore_run_max_pages: int = Field(
        200, ge=1, description="Most page loads of a whole website exploration run (explorer and executor); once "
        "spent, the candidates not yet executed fail with 'run page budget spent'.")
    explore_rate_limit_s: float = Field(
        0.2, ge=0, description="Least seconds between two page loads of the website explorer and executor.")
    explore_page_timeout_s: float = Field(
        15.0, gt=0, description="Seconds a page may take to load in the explorer's browser before the step fails.")
    max_candidates_per_chunk: int = Field(20, description="Most candidate conclusions read from one chunk.")
    max_candidates_per_document: int = Field(
        20, ge=1, description="Most atomic candidates a run makes from one document (reference: 20); with "
        "round-robin drawing, a run with a limit spreads over the documents.")
    max_verified_per_document: int = Field(
        10, ge=1, description="Most verified atomic tasks a run makes from one document (reference: 10).")
    max_hops: int = Field(2, ge=1, description="Most depth-extension hops per task.")
    hop_attempts: int = Field(3, ge=1, description="Attempts per depth hop before giving up.")
    width_group_size: int = Field(2, ge=2, le=3, description="Tasks merged into one width task.")
    judge_votes: int = Field(1, ge=1, description="Judge calls averaged per comparison (reference: 3).")
    accept_min_agent_score: int = Field(
        1, ge=1, le=2, description="Lowest judge score (0-2) of the agent's answer that can accept a task."
    )
    accept_max_alone_score: int = Field(
        0, ge=0, le=2, description="Highest judge score (0-2) the model alone may reach on an accepted task; "
        "0 (strict, the reference's rule): a candidate the model alone answers with any credit is rejected."
    )
    accept_agent_must_beat_alone: bool = Field(
        True, description="Accept only when the agent's score beats the model-alone score (METHOD 1.7)."
    )
    duplicate_threshold: float = Field(0.85, description="Cosine similarity above which tasks are near-duplicates.")
    duplicate_action: Literal["flag", "skip"] = Field(
        "flag", description="What the generation gate does with a near-duplicate candidate: flag (it stays "
        "in the review queue with a note) or skip (stored as status duplicate, out of the queue)."
    )
    same_answer_threshold: float = Field(
        0.70, ge=0.0, le=1.0, description="Cosine similarity from which two tasks with the same answer and the "
        "same names and numbers in their questions are near-duplicates (rewordings with other frame words "
        "stay below duplicate_threshold; same-template tasks about other things have other answers or names)."
    )
    near_exact_ratio: float = Field(
        0.90, ge=0.0, le=1.0, description="Normalised edit similarity (0-1) from which a near-duplicate pair "
        "is labelled a light edit (near_exact) rather than a paraphrase."
    )
    answer_match_ratio: float = Field(
        90.0, ge=0.0, le=100.0, description="rapidfuzz token-set score (0-100) from which two answers state "
        "the same thing; similar questions with answers scoring lower are not duplicates."
    )
    name_match_ratio: float = Field(
        85.0, ge=0.0, le=100.0, description="rapidfuzz score (0-100) from which two names in questions are "
        "spellings of one name; similar questions naming different things are not duplicates."
    )
    reviews_per_task: int = Field(
        1, ge=1, le=10, description="Decisions by different reviewers a task needs; with more than one, a task "
        "is final when that many agree, and disagreeing decisions go to adjudication (1: the first decision counts)."
    )
    adjudicators: list[str] = Field(
        default_factory=list, description="Reviewers (names or signed-in emails) who may settle disputed tasks "
        "on the Adjudicate queue, besides admins (in the environment: comma-separated)."
    )

    max_pdf_pages: int = Field(2_000, ge=1, description="Most pages read from one PDF; a longer PDF is refused.")
    max_document_chars: int = Field(
        10_000_000, ge=1, description="Most characters of text one document may give (a PDF is stopped while "
        "extracting once it passes this); a document giving more is refused."
    )
    pdf_parse_timeout_s: float = Field(
        60.0, gt=0, description="Longest time reading one PDF may take; it is read in a separate process that is "
        "stopped after this."
    )
    pdf_parse_memory_mb: int = Field(
        1_024, ge=64, description="Most memory the separate process reading one PDF may use, in MB."
    )
    workers: Literal["inline", "queue"] = Field(
        "inline", description="Where generation runs execute: inline (threads of the studio process) or queue "
        "(work units on a PostgreSQL task queue, executed by `python -m taskcraft_core worker` processes)."
    )
    chroma_url: str | None = Field(
        None, description="URL of a Chroma server (`chroma run`), e.g. http://chroma:8000; default: the "
        "local directory chroma/ in the data home."
    )

    model_config = {"frozen": True}

    @field_validator("adjudicators", mode="before")
    @classmethod
    def _names_from_a_comma_list(cls, names: object) -> object:
        """The environment gives a list as one comma-separated string."""
        return [name.strip() for name in names.split(",") if name.strip()] if isinstance(names, str) else names

    @field_validator("openai_base_url", "openai_base_urls", "web_search_url")
    @classmethod
    def _no_credentials_in_url(cls, url: str | None) -> str | None:
        parts = [urlsplit(part.strip()) for part in (url or "").split(",")]  # openai_base_urls lists several
        if any(part.username is not None or part.password is not None for part in parts):
            raise ValueError("the URL contains a user name or password; URLs are shown and stored, so give the "
                             "endpoint without them and the key in its own setting")
        return url.strip() if url else url

    @classmethod
    def from_env(cls, env: Mapping[str, str], overrides: Mapping[str, Any] | None = None) -> Settings:
        """Read settings from an environment mapping, then apply overrides (secrets, Settings page);
        an override that moves the endpoint without giving a key drops the environment's key."""
        values: dict[str, Any] = {
            field: env[name] for name, field in ENV_FIELDS.items() if env.get(name) not in (None, "")
        }
        changes = {key: value for key, value in (overrides or {}).items() if value not in (None, "")}
        return cls(**values).with_changes(**changes) if changes else cls(**values)

    def with_changes(self, **changes: Any) -> Settings:
        """A copy with some fields changed, validated again. A key belongs to the endpoint it was
        configured with: a change of base URL that does not bring its own key leaves no key."""
        moved = "openai_base_url" in changes and not same_endpoint(changes["openai_base_url"], self.openai_base_url)
        if moved and changes.get("openai_api_key") in (None, ""):
            changes["openai_api_key"] = None
        return type(self)(**{**self.model_dump(), **changes})

    @property
    def active_engine(self) -> Engine:
        """The engine that will generate tasks with these settings."""
        if self.engine != "auto":
            return self.engine
        return "openai" if (self.openai_api_key or self.base_urls) else "offline"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'taskcraft.sqlite').resolve()}"

    @property
    def chroma_path(self) -> Path:
        return self.home / "chroma"

    @property
    def uploads_path(self) -> Path:
        return self.home / "uploads"

    @property
    def endpoint(self) -> str:
        """The base URL requests go to (the OpenAI API when none is set)."""
        return normalised_endpoint(self.openai_base_url)

    @property
    def base_urls(self) -> list[str]:
        """The endpoint replicas calls go to: openai_base_urls when set, else openai_base_url (or none)."""
        listed = [url.strip() for url in (self.openai_base_urls or "").split(",") if url.strip()]
        return listed or ([self.openai_base_url] if self.openai_base_url else [])

    @property
    def endpoints(self) -> list[str]:
        """Every endpoint calls may go to, normalised (the OpenAI API when none is set)."""
        return [normalised_endpoint(url) for url in self.base_urls] or [self.endpoint]

    def model_for(self, role: Literal["generation", "solver", "judge"]) -> str:
        """The model name used for one role; falls back to the default model."""
        return getattr(self, f"{role}_model") or self.model


def normalised_endpoint(base_url: str | None) -> str:
    """A base URL as compared for key binding: the default when unset, no trailing slash."""
    return (base_url or DEFAULT_BASE_URL).strip().rstrip("/")


def same_endpoint(a: str | None, b: str | None) -> bool:
    return normalised_endpoint(a) == normalised_endpoint(b)
