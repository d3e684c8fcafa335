"""LLM judge of synthesized instruction-response pairs: paper Table 6 and Fig. 6 at paper scale.

The paper had GPT-4 judge 500 sampled instruction-augmented texts per corpus. Paper-scale raw
texts carry no ground truth, so :func:`instruct_pt.quality.data_quality` asks an LLM, through any
OpenAI-compatible chat-completions endpoint (OpenAI's API, or a local model behind
``vllm serve`` and similar servers), with the standard library only (``urllib``).

* **One request per sampled text**: the raw text, its numbered instruction-response pairs, the
  task-category list and the rules (``build_messages``; our own wording). Per pair the judge says
  ``relevant`` (yes/no: is the instruction about this text), ``accurate`` (yes/no: is the
  response right) and ``category`` (one of ``JUDGE_CATEGORIES``, "other" if none fits), as one
  JSON object ``{"judgments": [{"pair": 1, "relevant": ..., "accurate": ..., "category": ...}]}``.
* **Parsing** (``parse_judgments``) is lenient about wrapping (prose, code fences, a bare list,
  a truncated outer object) and strict about content: a judgment is kept only for a pair number
  in range with yes/no verdicts and a listed category. Entries without ``"pair"`` are taken in
  order only when none has one and their number equals the number of pairs.
* **Malformed replies** are repaired: the judge is shown its reply and what was wrong with it
  and asked again, ``max_reply_retries`` times; a pair still without a valid judgment is dropped
  with the reason (``empty_reply``, ``no_json``, ``truncated``, ``missing``, ``bad_relevant``,
  ``bad_accurate``, ``bad_category``, ``conflict``); the counts go to the output.
* **Transport errors** (HTTP 408/409/425/429/5xx, timeouts, refused connections, a 200 without a
  completion) are retried ``max_retries`` times with exponential backoff (``backoff_s`` doubled,
  at most 60 s, at least the server's ``Retry-After``); other HTTP errors (400, 401, 404...) and
  exhausted retries raise :class:`JudgeError`: the job fails and a rerun resumes.
* **Resumable**: each text's result is stored as soon as it is judged, under ``checkpoint_dir``
  (outside the rule's outputs), keyed by (text id, judge model, SHA-256 of the request: prompt,
  text, pairs and decoding settings). A rerun asks only texts without a stored result, and its
  output is the same bytes as an uninterrupted run: the output holds only what the stored
  results determine (transport retries and cache hits go to the log).

The API key is read from the environment variable named by ``api_key_env`` (never from the
config); ``api_key_env: null`` sends no key (local servers).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .common import DataError, read_json, write_json

log = logging.getLogger(__name__)


class JudgeError(RuntimeError):
    """The judge cannot be asked: no API key, a rejected request, or a server that keeps failing."""


# Config: analysis.quality.judge (workflow/schemas/config.schema.yaml). seed None = the run seed.
JUDGE_DEFAULTS: dict[str, Any] = {
    "base_url": "https://api.openai.com/v1",
    "model": "gpt-4",
    "api_key_env": "OPENAI_API_KEY",
    "temperature": 0,
    "max_tokens": 1024,
    "timeout_s": 120,
    "max_retries": 6,
    "backoff_s": 2.0,
    "max_reply_retries": 2,
    "seed": None,
    "concurrency": 1,
    "json_mode": False,
}
MAX_BACKOFF_S = 60.0
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})

# Task categories offered to the judge, with a short gloss each (fixed order; "other" last). The
# paper's named scenarios (commonsense reasoning, coreference, NLI, struct-to-text, summarization,
# sentiment, math, code...) are among them.
TASK_TYPES: tuple[tuple[str, str], ...] = (
    ("extractive question answering", "the answer is a span of the text"),
    ("abstractive question answering", "answered from the text in new words"),
    ("multiple-choice question answering", "choose among given options"),
    ("yes/no question answering", "a question answered yes or no"),
    ("closed-book question answering", "needs knowledge the text does not give"),
    ("multi-hop reasoning", "combines several statements of the text"),
    ("reading comprehension", "other questions about understanding the text"),
    ("answerability classification", "can the question be answered from the text"),
    ("question generation", "write a question for a given answer or passage"),
    ("question rewriting", "rephrase or make a question self-contained"),
    ("commonsense reasoning", "everyday knowledge of people, objects and events"),
    ("causal reasoning", "causes, effects, consequences"),
    ("temporal reasoning", "order, duration or dates of events"),
    ("logical reasoning", "deduction, conditions, consistency"),
    ("mathematics", "arithmetic, word problems, numeric calculation"),
    ("comparison", "compare entities or quantities"),
    ("analogy", "relations by analogy"),
    ("natural language inference", "does a statement follow from or contradict the text"),
    ("fact verification", "is a claim true according to the text"),
    ("coreference resolution", "what a pronoun or mention refers to"),
    ("word semantics", "meaning of a word or phrase in context"),
    ("paraphrase identification", "do two sentences mean the same"),
    ("topic classification", "assign a topic, genre or domain label"),
    ("sentiment analysis", "positive, negative or neutral polarity"),
    ("emotion recognition", "which emotion is expressed"),
    ("stance detection", "for or against a position"),
    ("toxicity detection", "offensive or harmful language"),
    ("text quality evaluation", "rate grammaticality, coherence or fluency"),
    ("grammar correction", "fix errors in a sentence"),
    ("named entity recognition", "find and type names of people, places, organisations"),
    ("relation extraction", "the relation between two entities"),
    ("event extraction", "what happened, to whom, when, where"),
    ("keyword extraction", "key terms or phrases"),
    ("information extraction", "other extraction of specific details"),
    ("table understanding", "questions over tables or records"),
    ("summarization", "a shorter version of the text or a part of it"),
    ("title generation", "a title or headline"),
    ("paraphrasing", "rewrite with the same meaning"),
    ("text simplification", "easier wording"),
    ("style transfer", "change tone, register or style"),
    ("translation", "into another language"),
    ("text completion", "continue or finish a passage"),
    ("fill in the blank", "supply a missing word or phrase"),
    ("sentence ordering", "restore the order of sentences or steps"),
    ("sentence composition", "write a sentence under given constraints"),
    ("story generation", "write a narrative"),
    ("dialogue generation", "write or continue a conversation"),
    ("struct-to-text", "turn data, tables or triples into text"),
    ("text-to-struct", "turn text into a table, list, JSON or triples"),
    ("explanation", "why or how something is so"),
    ("definition", "what a term means"),
    ("argument writing", "essays, opinions, persuasion"),
    ("advice and recommendation", "suggest what to do or choose"),
    ("brainstorming", "list ideas, examples or options"),
    ("planning and procedures", "write steps, instructions or plans"),
    ("code generation", "write program code"),
    ("code understanding", "explain, trace or debug code"),
    ("word manipulation", "spelling, letters, anagrams, word games"),
    ("language identification", "which language a text is in"),
)
JUDGE_CATEGORIES: tuple[str, ...] = tuple(name for name, _ in TASK_TYPES) + ("other",)

SYSTEM_PROMPT = (
    "You grade training data for language models. You read a source text and the "
    "instruction-response pairs another model wrote about it, grade each pair on its own, and "
    "reply with JSON only."
)
USER_HEAD = """A model read the text below and wrote {n} instruction-response pair(s) about it. Grade every pair separately.

For each pair give:
- "relevant": "yes" if the instruction is about this text, that is, the text supplies the context or the material needed to respond; "no" if it is off-topic or could have been written without the text.
- "accurate": "yes" if the response answers the instruction correctly and completely, judged against the text and well-established knowledge; "no" if it is wrong, unsupported, self-contradictory or only partly right.
- "category": the task type from the list below that best describes what the instruction asks for, copied exactly. Judge the task, not the format of the response (a sum answered step by step is "mathematics"). Use "other" only if no type fits.

Task types:
{types}

### Text
{text}

### Pairs
{pairs}

Reply with one JSON object and nothing else, with one entry per pair, in order:
{{"judgments": [{{"pair": 1, "relevant": "yes", "accurate": "no", "category": "<task type>"}}, ...]}}"""
REPAIR_NOTE = (
    "Your reply could not be used: {problems}. Reply again with only the JSON object asked for, "
    'with one entry for each of the {n} pair(s): {{"judgments": [{{"pair": 1, "relevant": '
    '"yes" or "no", "accurate": "yes" or "no", "category": "<a task type from the list>"}}, ...]}}'
)
PROBLEM_TEXT = {
    "empty_reply": "it was empty",
    "no_json": "it held no JSON object with a list of judgments",
    "truncated": "it was cut off before the JSON was complete",
    "missing": "no judgment was given",
    "bad_relevant": '"relevant" was not "yes" or "no"',
    "bad_accurate": '"accurate" was not "yes" or "no"',
    "bad_category": '"category" was not one of the listed task types',
    "conflict": "it was judged twice, differently",
}


def _types_block() -> str:
    return "\n".join(f"- {name}: {gloss}" for name, gloss in TASK_TYPES) + "\n- other"


PROMPT_SHA256 = hashlib.sha256(
    "\x1f".join((SYSTEM_PROMPT, USER_HEAD, REPAIR_NOTE, _types_block())).encode()
).hexdigest()


def build_messages(text: str, pairs: Sequence[dict]) -> list[dict]:
    """The chat messages asking for one text's judgments (system + user)."""
    blocks = [
        f"Pair {i}\nInstruction: {str(p.get('question', '')).strip()}\n"
        f"Response: {str(p.get('answer', '')).strip()}"
        for i, p in enumerate(pairs, 1)
    ]
    user = USER_HEAD.format(
        n=len(pairs), types=_types_block(), text=text.strip(), pairs="\n\n".join(blocks)
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


# ----------------------------------------------------------------------------- settings


def judge_settings(judge: dict, seed: int) -> dict:
    """The judge config with defaults filled in; unknown keys raise (typos would be ignored)."""
    if not isinstance(judge, dict):
        raise ValueError(f"analysis.quality.judge must be a mapping, got {type(judge).__name__}")
    unknown = sorted(set(judge) - set(JUDGE_DEFAULTS))
    if unknown:
        raise ValueError(
            f"analysis.quality.judge: unknown key(s) {', '.join(unknown)} "
            f"(known: {', '.join(JUDGE_DEFAULTS)})"
        )
    s = {**JUDGE_DEFAULTS, **judge}
    if s["seed"] is None:
        s["seed"] = seed
    if not str(s["model"]).strip():
        raise ValueError("analysis.quality.judge.model must name the judge model")
    if not re.match(r"^https?://", str(s["base_url"])):
        raise ValueError(
            f"analysis.quality.judge.base_url must be http(s)://..., got {s['base_url']!r}"
        )
    for key in ("max_tokens", "concurrency"):
        if int(s[key]) < 1:
            raise ValueError(f"analysis.quality.judge.{key} must be >= 1, got {s[key]}")
    for key in ("max_retries", "max_reply_retries"):
        if int(s[key]) < 0:
            raise ValueError(f"analysis.quality.judge.{key} must be >= 0, got {s[key]}")
    return s


def api_key(settings: dict) -> str | None:
    """The key from the environment variable ``api_key_env`` names (None when that is null)."""
    env = settings.get("api_key_env")
    if not env:
        return None
    key = os.environ.get(env, "").strip()
    if not key:
        raise JudgeError(
            f"the LLM judge needs an API key in the environment variable {env} "
            f"(named by analysis.quality.judge.api_key_env), which is not set: export {env}=..., "
            "or set api_key_env: null for a local server that takes no key"
        )
    return key


def request_body(settings: dict, messages: list[dict]) -> dict:
    """The chat-completions request body (greedy: temperature 0 unless configured otherwise)."""
    body: dict[str, Any] = {
        "model": settings["model"],
        "messages": messages,
        "temperature": settings["temperature"],
        "max_tokens": settings["max_tokens"],
    }
    if settings.get("seed") is not None:
        body["seed"] = settings["seed"]
    if settings.get("json_mode"):
        body["response_format"] = {"type": "json_object"}
    return body


def request_sha256(settings: dict, messages: list[dict]) -> str:
    """Hash of the first request for a text: prompt, text, pairs, model and decoding settings."""
    blob = json.dumps(request_body(settings, messages), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------- client


def _snippet(raw: bytes | str, limit: int = 500) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _read_completion(raw: bytes) -> tuple[str, str | None] | str:
    """(content, finish_reason) from a chat-completions response body, or what is wrong with it."""
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        return f"response is not JSON: {_snippet(raw, 200)}"
    if not isinstance(obj, dict):
        return f"response is not a JSON object: {_snippet(raw, 200)}"
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return f"response without choices: {_snippet(raw, 200)}"
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if content is not None and not isinstance(content, str):
        return f"message content is not a string: {_snippet(raw, 200)}"
    finish = choices[0].get("finish_reason")
    return content or "", finish if isinstance(finish, str) else None


class ChatClient:
    """Chat completions over HTTP (urllib), with retries and exponential backoff."""

    def __init__(
        self,
        settings: dict,
        key: str | None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.url = str(settings["base_url"]).rstrip("/") + "/chat/completions"
        self.key = key
        self.sleep = sleep
        self.http_retries: Counter = Counter()  # transient failures, by kind (for the log)

    def complete(self, messages: list[dict]) -> tuple[str, str | None]:
        """The reply text and finish reason for ``messages``; raises JudgeError when it cannot."""
        s = self.settings
        data = json.dumps(request_body(s, messages), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        attempts = int(s["max_retries"]) + 1
        last = ""
        for attempt in range(attempts):
            retry_after = None
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=float(s["timeout_s"])) as response:
                    raw = response.read()
            except urllib.error.HTTPError as e:
                try:
                    detail = _snippet(e.read())
                except (OSError, http.client.HTTPException):
                    detail = ""
                if e.code not in RETRY_STATUS:
                    hint = (
                        f"; check the key in ${s.get('api_key_env')}"
                        if e.code in (401, 403)
                        else ""
                    )
                    raise JudgeError(
                        f"judge {self.url}: HTTP {e.code} (not retried){hint}: {detail}"
                    ) from None
                last, kind, retry_after = (
                    f"HTTP {e.code}: {detail}",
                    f"http_{e.code}",
                    _retry_after(e.headers),
                )
            except (OSError, http.client.HTTPException) as e:  # URLError, timeouts, resets
                last, kind = f"{type(e).__name__}: {e}", type(e).__name__
            else:
                parsed = _read_completion(raw)
                if not isinstance(parsed, str):
                    return parsed
                last, kind = parsed, "bad_response"
            self.http_retries[kind] += 1
            if attempt + 1 < attempts:
                delay = min(float(s["backoff_s"]) * 2**attempt, MAX_BACKOFF_S)
                if retry_after is not None:
                    delay = max(delay, min(retry_after, MAX_BACKOFF_S))
                log.warning(
                    "judge: %s; retry %d/%d in %.1f s", last, attempt + 1, attempts - 1, delay
                )
                self.sleep(delay)
        raise JudgeError(
            f"judge {self.url}: no usable response after {attempts} attempt(s); last: {last}"
        )


# ----------------------------------------------------------------------------- parsing

_BOOL = {"yes": True, "y": True, "true": True, "no": False, "n": False, "false": False}
_MAX_STARTS = 2000  # JSON start positions tried per reply (bounds the work on huge replies)


def _category_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", name.lower()).strip()


_CATEGORY_BY_KEY = {_category_key(c): c for c in JUDGE_CATEGORIES}
assert len(_CATEGORY_BY_KEY) == len(JUDGE_CATEGORIES), "task types must differ after normalising"


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _BOOL.get(value.strip().strip(".!\"'").strip().lower())
    return None


def _as_category(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    found = _CATEGORY_BY_KEY.get(_category_key(value))
    if found is None and ":" in value:  # the name copied with its gloss
        found = _CATEGORY_BY_KEY.get(_category_key(value.split(":", 1)[0]))
    return found


def _pair_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(?:pair\s*)?#?(\d{1,9})\s*", value, re.IGNORECASE)
        return int(m.group(1)) if m else None
    return None


def _entries(value: Any, want_key: bool) -> list | None:
    if isinstance(value, dict):
        if isinstance(value.get("judgments"), list):
            return value["judgments"]
        if not want_key and {"relevant", "accurate", "category"} & set(value):
            return [value]
    if (
        not want_key
        and isinstance(value, list)
        and value
        and all(isinstance(e, dict) for e in value)
    ):
        return value
    return None


def _find_entries(reply: str) -> list | None:
    """The list of judgment entries in a reply: the first ``{"judgments": [...]}`` object, else
    the first list of objects or single judgment-like object (wrapping text is ignored)."""
    decoder = json.JSONDecoder()
    values = []
    for m in re.finditer(r"[\[{]", reply):
        if len(values) >= _MAX_STARTS:
            break
        try:
            value, _ = decoder.raw_decode(reply, m.start())
        except (ValueError, RecursionError):
            continue
        values.append(value)
        if _entries(value, want_key=True) is not None:
            return _entries(value, want_key=True)
    for value in values:
        found = _entries(value, want_key=False)
        if found is not None:
            return found
    return None


def parse_judgments(reply: str, n_pairs: int) -> tuple[dict[int, dict], dict[int, str]]:
    """Judgments ``{pair: {"relevant", "accurate", "category"}}`` (pairs numbered from 1) found in
    a reply, and the reason each other pair has none. Never raises; never returns a judgment for
    a pair number out of range or with a value outside yes/no and ``JUDGE_CATEGORIES``."""
    everyone = range(1, n_pairs + 1)
    if not isinstance(reply, str) or not reply.strip():
        return {}, {i: "empty_reply" for i in everyone}
    entries = _find_entries(reply)
    if entries is None:
        return {}, {i: "no_json" for i in everyone}
    by_position = len(entries) == n_pairs and not any(
        isinstance(e, dict) and "pair" in e for e in entries
    )
    found: dict[int, dict] = {}
    bad: dict[int, str] = {}
    conflicts: set[int] = set()
    for position, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            continue
        number = position if by_position else _pair_number(entry.get("pair"))
        if number is None or not 1 <= number <= n_pairs:
            continue
        relevant, accurate = _as_bool(entry.get("relevant")), _as_bool(entry.get("accurate"))
        category = _as_category(entry.get("category"))
        if relevant is None:
            bad.setdefault(number, "bad_relevant")
        elif accurate is None:
            bad.setdefault(number, "bad_accurate")
        elif category is None:
            bad.setdefault(number, "bad_category")
        else:
            judgment = {"relevant": relevant, "accurate": accurate, "category": category}
            if number in found and found[number] != judgment:
                conflicts.add(number)
            found.setdefault(number, judgment)
    for number in conflicts:
        del found[number]
    problems = {
        i: "conflict" if i in conflicts else bad.get(i, "missing")
        for i in everyone
        if i not in found
    }
    return found, problems


# ----------------------------------------------------------------------------- one text


def judge_text(
    ask: Callable[[list[dict]], tuple[str, str | None]],
    messages: list[dict],
    n_pairs: int,
    max_reply_retries: int,
) -> tuple[dict, list[str]]:
    """Ask for one text's judgments, repairing malformed replies; returns (result, replies).

    ``result``: ``{"judgments": [judgment or None per pair], "dropped": {pair: reason}, "asks"}``.
    A pair keeps the first valid judgment any reply gives it; a repair shows the judge its last
    reply and what was wrong with it.
    """
    judged: dict[int, dict] = {}
    problems: dict[int, str] = {}
    replies: list[str] = []
    conversation = list(messages)
    for _ in range(int(max_reply_retries) + 1):
        reply, finish = ask(conversation)
        replies.append(reply)
        found, reasons = parse_judgments(reply, n_pairs)
        for i, judgment in found.items():
            judged.setdefault(i, judgment)
        problems = {i: r for i, r in reasons.items() if i not in judged}
        if finish == "length":
            problems = {i: "truncated" if r == "no_json" else r for i, r in problems.items()}
        if not problems:
            break
        if len(set(problems.values())) == 1 and len(problems) == n_pairs:
            what = PROBLEM_TEXT[next(iter(problems.values()))]
        else:
            what = "; ".join(f"pair {i}: {PROBLEM_TEXT[r]}" for i, r in sorted(problems.items()))
        note = REPAIR_NOTE.format(problems=what, n=n_pairs)
        conversation = [
            *messages,
            {"role": "assistant", "content": reply},
            {"role": "user", "content": note},
        ]
    result = {
        "judgments": [judged.get(i) for i in range(1, n_pairs + 1)],
        "dropped": {str(i): r for i, r in sorted(problems.items())},
        "asks": len(replies),
    }
    return result, replies


# ----------------------------------------------------------------------------- cache


class JudgmentCache:
    """One JSON file per judged text, keyed by (text id, judge model, request hash)."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, text_id: str, model: str, sha: str) -> Path:
        key = hashlib.sha256(json.dumps([text_id, model, sha]).encode("utf-8")).hexdigest()
        return self.dir / f"{key[:32]}.json"

    def load(self, text_id: str, model: str, sha: str) -> dict | None:
        path = self._path(text_id, model, sha)
        if not path.exists():
            return None
        try:
            rec = read_json(path)
        except DataError as e:
            log.warning("judge cache: %s unreadable (%s); asking again", path, e)
            return None
        if (
            not isinstance(rec, dict)
            or [rec.get("id"), rec.get("model"), rec.get("request_sha256")] != [text_id, model, sha]
            or not isinstance(rec.get("result"), dict)
        ):
            log.warning("judge cache: %s belongs to another request; asking again", path)
            return None
        return rec["result"]

    def save(self, text_id: str, model: str, sha: str, result: dict, replies: list[str]) -> None:
        write_json(
            self._path(text_id, model, sha),
            {
                "id": text_id,
                "model": model,
                "request_sha256": sha,
                "result": result,
                "replies": replies,
            },
        )


# ----------------------------------------------------------------------------- a sample


def judge_sample(
    records: Sequence[dict],
    settings: dict,
    checkpoint_dir: str | os.PathLike,
    desc: str = "judge",
    client: ChatClient | None = None,
) -> list[dict]:
    """The judge's result (see :func:`judge_text`) for each record ``{"id", "text", "pairs"}``, in
    order. Stored results are reused; the others are asked, ``concurrency`` at a time, and stored
    as each finishes, so an interrupted run loses at most the texts in flight."""
    cache = JudgmentCache(checkpoint_dir)
    model = str(settings["model"])
    results: list[dict | None] = [None] * len(records)
    todo = []
    for i, rec in enumerate(records):
        messages = build_messages(str(rec["text"]), rec["pairs"])
        sha = request_sha256(settings, messages)
        cached = cache.load(str(rec["id"]), model, sha)
        if cached is not None:
            results[i] = cached
        else:
            todo.append((i, rec, messages, sha))
    log.info(
        "judge %s: %d of %d texts stored, %d to ask",
        model,
        len(records) - len(todo),
        len(records),
        len(todo),
    )
    if todo:
        client = client or ChatClient(settings, api_key(settings))

        def work(job: tuple) -> tuple[int, dict]:
            i, rec, messages, sha = job
            try:
                result, replies = judge_text(
                    client.complete, messages, len(rec["pairs"]), settings["max_reply_retries"]
                )
            except JudgeError as e:  # name the text (a rejected one fails every rerun alike)
                raise JudgeError(f"text {rec['id']!r}: {e}") from e
            cache.save(str(rec["id"]), model, sha, result, replies)
            return i, result

        jobs = iter(todo)
        width = int(settings["concurrency"])
        with (
            ThreadPoolExecutor(max_workers=width) as pool,
            tqdm(total=len(todo), desc=desc, unit="text", disable=None) as bar,
        ):
            pending: set[Future] = set()
            while True:
                while len(pending) < width and (job := next(jobs, None)) is not None:
                    pending.add(pool.submit(work, job))
                if not pending:
                    break
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:  # an error stops new submissions; texts in flight finish
                    i, result = future.result()
                    results[i] = result
                    bar.update()
        if client.http_retries:
            log.info(
                "judge: transient failures retried: %s", dict(sorted(client.http_retries.items()))
            )
    missing = [records[i]["id"] for i, r in enumerate(results) if r is None]
    if missing:
        raise RuntimeError(f"judge: no result for text(s) {missing[:3]}")
    return [r for r in results if r is not None]
