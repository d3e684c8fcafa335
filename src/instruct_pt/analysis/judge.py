"""The LLM judge client: asks an OpenAI-compatible endpoint to grade sampled texts (Table 6, Fig. 6).

The paper had GPT-4 judge 500 sampled instruction-augmented texts per corpus. Paper-scale raw
texts carry no ground truth, so :func:`instruct_pt.analysis.quality.data_quality` asks an LLM,
through the ``openai`` client pointed at any OpenAI-compatible chat-completions endpoint
(OpenAI's API, or a local model behind ``vllm serve`` and similar servers: ``base_url``).

* **One request per sampled text**, built and read by :mod:`instruct_pt.analysis.judge_prompt`
  (the prompt, ``JUDGE_CATEGORIES``, the lenient reply parser).
* **Malformed replies** are repaired: the judge is shown its reply and what was wrong with it
  and asked again, ``max_reply_retries`` times; a pair still without a valid judgment is dropped
  with the reason (``empty_reply``, ``no_json``, ``truncated``, ``missing``, ``bad_relevant``,
  ``bad_accurate``, ``bad_category``, ``conflict``); the counts go to the output.
* **Transport errors** are the ``openai`` client's to retry, ``max_retries`` times (HTTP
  408/409/429/5xx, timeouts after ``timeout_s``, refused connections; exponential backoff from
  0.5 s to 8 s with jitter, or the server's ``Retry-After``). Other HTTP errors (400, 401,
  404...), exhausted retries and a 200 whose body holds no completion raise :class:`JudgeError`:
  the job fails and a rerun resumes.
* **Resumable**: each text's result is stored as soon as it is judged, under ``checkpoint_dir``
  (outside the rule's outputs), keyed by (text id, judge model, SHA-256 of the request: prompt,
  text, pairs and decoding settings). A rerun asks only texts without a stored result, and its
  output is the same bytes as an uninterrupted run: the output holds only what the stored
  results determine (transport retries and cache hits go to the log). Texts are asked
  ``concurrency`` at a time (a thread pool sharing one client).

The API key is read from the environment variable named by ``api_key_env`` (never from the
config); ``api_key_env: null`` sends no ``Authorization`` header (local servers).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import openai
from tqdm import tqdm

from instruct_pt.analysis.judge_prompt import (
    PROBLEM_TEXT,
    REPAIR_NOTE,
    build_messages,
    parse_judgments,
)
from instruct_pt.common import DataError, read_json, write_json

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
    "max_reply_retries": 2,
    "seed": None,
    "concurrency": 1,
    "json_mode": False,
}
# The statuses the openai client retries (with 5xx); an error with another status is final.
RETRIED_STATUS = frozenset({408, 409, 429})


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
    """Chat completions through the ``openai`` client (its retries, backoff and timeouts).

    The body is :func:`request_body`'s; the reply is read from the raw response body, so a server
    that omits fields the ``openai`` types expect (some OpenAI-compatible ones do) still works.
    """

    def __init__(self, settings: dict, key: str | None) -> None:
        self.settings = settings
        self.url = str(settings["base_url"]).rstrip("/") + "/chat/completions"
        self.client = openai.OpenAI(
            base_url=str(settings["base_url"]),
            api_key=key or "no-key",  # the client wants one; the header is omitted below
            timeout=float(settings["timeout_s"]),
            max_retries=int(settings["max_retries"]),
        )
        self.headers: dict[str, Any] = {} if key else {"Authorization": openai.Omit()}
        self.retries = 0  # transient failures the client retried (for the log)
        self._lock = threading.Lock()

    def complete(self, messages: list[dict]) -> tuple[str, str | None]:
        """The reply text and finish reason for ``messages``; raises JudgeError when it cannot."""
        s = self.settings
        attempts = int(s["max_retries"]) + 1
        try:
            response = self.client.chat.completions.with_raw_response.create(
                **request_body(s, messages), extra_headers=self.headers
            )
        except openai.APIStatusError as e:
            detail = _snippet(e.response.text)
            status = e.status_code
            if status not in RETRIED_STATUS and status < 500:
                hint = f"; check the key in ${s.get('api_key_env')}" if status in (401, 403) else ""
                raise JudgeError(
                    f"judge {self.url}: HTTP {status} (not retried){hint}: {detail}"
                ) from None
            raise JudgeError(
                f"judge {self.url}: no usable response after {attempts} attempt(s); "
                f"last: HTTP {status}: {detail}"
            ) from None
        except openai.APIConnectionError as e:  # refused connections, timeouts (a subclass)
            raise JudgeError(
                f"judge {self.url}: no usable response after {attempts} attempt(s); "
                f"last: {type(e).__name__}: {e}"
            ) from None
        with self._lock:
            self.retries += response.retries_taken
        parsed = _read_completion(response.content)
        if isinstance(parsed, str):
            raise JudgeError(f"judge {self.url}: {parsed}")
        return parsed


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
        if client.retries:
            log.info("judge: %d transient failure(s) retried", client.retries)
    missing = [records[i]["id"] for i, r in enumerate(results) if r is None]
    if missing:
        raise RuntimeError(f"judge: no result for text(s) {missing[:3]}")
    return [r for r in results if r is not None]
