"""The paper-scale LLM judge of Table 6 / Fig. 6, against a scripted OpenAI-style HTTP server."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instruct_pt.analysis import judge as J
from instruct_pt.analysis import quality
from instruct_pt.analysis.judge import JudgeError
from instruct_pt.analysis.judge_prompt import JUDGE_CATEGORIES, PROMPT_SHA256, parse_judgments
from instruct_pt.common import read_json, write_jsonl
from instruct_pt.reports.registry import make

KEY_ENV = "INSTRUCT_PT_TEST_JUDGE_KEY"


# ----------------------------------------------------------------------------- scripted server


def completion(content: str | None, finish: str = "stop") -> tuple[int, dict, bytes]:
    body = {
        "id": "cmpl-test",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish,
            }
        ],
    }
    return 200, {}, json.dumps(body).encode()


Responder = Callable[[dict, int], tuple[int, dict, bytes]]


class ScriptedServer:
    """``POST /v1/chat/completions`` answered by ``responder(body, n)`` (n: request number, from
    0); every request's path, headers (names lower-cased) and parsed body are recorded."""

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall per request

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.loads(raw)
                with server.lock:
                    n = len(server.requests)
                    server.requests.append(
                        {
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": body,
                        }
                    )
                if self.path != "/v1/chat/completions":
                    status, headers, out = 404, {}, b'{"error": "no such route"}'
                else:
                    status, headers, out = server.responder(body, n)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def prompt_of(body: dict) -> tuple[str, list[str]]:
    """(text, instructions) of the first user message (repairs append to the conversation)."""
    user = body["messages"][1]["content"]
    text = user.split("### Text\n", 1)[1].split("\n\n### Pairs\n", 1)[0]
    return text, re.findall(r"^Instruction: (.*)$", user, re.MULTILINE)


# ----------------------------------------------------------------------------- the fixture corpus

# instruction -> (relevant, accurate, category) the scripted judge answers
VERDICTS = {
    "Summarize the text.": ("yes", "yes", "summarization"),
    "How much is 2 + 3?": ("yes", "no", "mathematics"),
    "Sing a song.": ("no", "no", "other"),
    "Is the tone positive?": ("yes", "yes", "sentiment analysis"),
    "Give a one-line summary.": ("yes", "yes", "summarization"),
    "Who does 'she' refer to?": ("yes", "yes", "coreference resolution"),
    "Grade me.": ("yes", "yes", "summarization"),
    "Grade me too.": ("yes", "yes", "summarization"),
    "Does it follow that Ada is tall?": ("yes", "no", "natural language inference"),
    "Second question, always skipped.": ("yes", "yes", "summarization"),
    "Write a poem.": ("yes", "yes", "poetry"),  # not a listed category
    "Describe the table.": ("no", "yes", "struct-to-text"),
}
TEXTS = [  # (id, text, instructions)
    ("t1", "Plain text one.", ["Summarize the text.", "How much is 2 + 3?", "Sing a song."]),
    ("t2", "FLAKY text.", ["Is the tone positive?", "Give a one-line summary."]),
    ("t3", "GARBLED-ONCE text: Ada met Bo; she smiled.", ["Who does 'she' refer to?"]),
    ("t4", "GARBLED-ALWAYS text.", ["Grade me.", "Grade me too."]),
    (
        "t5",
        "MISSING text.",
        ["Does it follow that Ada is tall?", "Second question, always skipped."],
    ),
    ("t6", "BADCAT text.", ["Write a poem.", "Describe the table."]),
    ("t7", "A text nobody wrote pairs for.", []),
]


def entry(i: int, instruction: str) -> dict:
    rel, acc, cat = VERDICTS[instruction]
    return {"pair": i, "relevant": rel, "accurate": acc, "category": cat}


class ScriptedJudge:
    """Answers from VERDICTS; the text's marker picks a misbehaviour. HTTP-level faults
    (FLAKY: 429 then 500, each asking for a 1 ms wait) happen on a text's first two requests."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, body: dict, n: int) -> tuple[int, dict, bytes]:
        text, instructions = prompt_of(body)
        k = self.seen[text] = self.seen.get(text, 0) + 1
        repair = len(body["messages"]) > 2
        if "FLAKY" in text and k == 1:
            return 429, {"Retry-After-Ms": "1"}, b'{"error": {"message": "rate limited"}}'
        if "FLAKY" in text and k == 2:
            return 500, {"Retry-After-Ms": "1"}, b'{"error": {"message": "server error"}}'
        if "GARBLED-ALWAYS" in text:
            return completion("I am sorry, I cannot grade these pairs.")
        if "GARBLED-ONCE" in text and not repair:
            return completion('Here you go: {"judgments": [{"pair": 1, "relevant": ')
        entries = [entry(i, q) for i, q in enumerate(instructions, 1)]
        if "MISSING" in text:
            entries = entries[:1]
        reply = json.dumps({"judgments": entries})
        if "GARBLED-ONCE" in text:  # the repaired reply comes wrapped in prose and a fence
            reply = f"Sorry about that. Corrected:\n```json\n{reply}\n```"
        return completion(reply)


def write_corpus(tmp_path) -> tuple[list[str], str]:
    raw = [{"id": i, "text": t, "meta": {"domain": "general"}} for i, t, _ in TEXTS]
    synth = [
        {
            "id": i,
            "text": t,
            "chain": n,
            "round": 1,
            "pairs": [{"question": q, "answer": f"answer to {q}"} for q in qs],
            "dropped": {},
            "generation": "",
        }
        for n, (i, t, qs) in enumerate(TEXTS)
    ]
    write_jsonl(tmp_path / "raw.jsonl", raw)
    write_jsonl(tmp_path / "shard0.jsonl", synth[:4])
    write_jsonl(tmp_path / "shard1.jsonl", synth[4:])
    return [str(tmp_path / "shard0.jsonl"), str(tmp_path / "shard1.jsonl")], str(
        tmp_path / "raw.jsonl"
    )


def judge_cfg(server: ScriptedServer, **over) -> dict:
    cfg = {
        "base_url": server.base_url,
        "model": "judge-test-model",
        "api_key_env": KEY_ENV,
        "max_tokens": 512,
        "timeout_s": 10,
        "max_retries": 3,
        "max_reply_retries": 2,
        "seed": 7,
        "concurrency": 1,
    }
    return {**cfg, **over}


def run_quality(tmp_path, server, out="q.json", ckpt="ckpt", **over) -> dict:
    synth, raw = write_corpus(tmp_path)
    return quality.data_quality(
        synth,
        raw,
        "general",
        str(tmp_path / out),
        n_samples=500,
        seed=0,
        judge=judge_cfg(server, **over),
        checkpoint_dir=str(tmp_path / ckpt),
    )


@pytest.fixture(autouse=True)
def _api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test-123")


# ----------------------------------------------------------------------------- end to end


def test_request_body_and_headers(tmp_path):
    with ScriptedServer(ScriptedJudge()) as server:
        run_quality(tmp_path, server)
    first = server.requests[0]
    assert first["path"] == "/v1/chat/completions"
    assert first["headers"]["authorization"] == "Bearer sk-test-123"
    assert first["headers"]["content-type"] == "application/json"
    body = first["body"]
    assert body["model"] == "judge-test-model"
    assert body["temperature"] == 0 and body["max_tokens"] == 512 and body["seed"] == 7
    assert "response_format" not in body  # json_mode off
    # the wire body is exactly request_body's (what the cache key hashes)
    assert body == J.request_body(J.judge_settings(judge_cfg(server), 0), body["messages"])
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    user = body["messages"][1]["content"]
    assert "### Text\nPlain text one." in user
    assert "Pair 2\nInstruction: How much is 2 + 3?\nResponse: answer to How much is 2 + 3?" in user
    assert all(f"- {c}" in user for c in JUDGE_CATEGORIES)
    # a repair continues the conversation: the judge sees its bad reply and what was wrong
    repair = next(r["body"] for r in server.requests if len(r["body"]["messages"]) == 4)
    assert [m["role"] for m in repair["messages"]] == ["system", "user", "assistant", "user"]
    assert "### Text\nGARBLED-ONCE" in repair["messages"][1]["content"]
    assert repair["messages"][2]["content"].startswith('Here you go: {"judgments"')
    assert "could not be used: no judgment was given" not in repair["messages"][3]["content"]
    assert "could not be used: it held no JSON object" in repair["messages"][3]["content"]


def test_aggregates_retries_and_drops(tmp_path):
    with ScriptedServer(ScriptedJudge()) as server:
        result = run_quality(tmp_path, server)
    assert read_json(tmp_path / "q.json") == result
    # judged pairs: t1 3, t2 2, t3 1, t5 1 (pair 2 missing), t6 1 (pair 1 bad category) = 8;
    # t4 never answers in JSON: its 2 pairs dropped, the text too; t7 has no pairs
    assert (result["n_texts"], result["n_pairs"], result["n_fact_pairs"]) == (5, 8, 8)
    assert result["context_relevance"] == 75.0  # 6 of 8 (t1 "Sing", t6 "table" are not)
    assert result["response_accuracy"] == 62.5  # 5 of 8
    assert result["method"] == "llm-judge:judge-test-model"
    assert list(result["categories"]) == list(JUDGE_CATEGORIES)
    shares = {c: s for c, s in result["categories"].items() if s}
    assert shares == {
        "summarization": 0.25,
        "mathematics": 0.125,
        "other": 0.125,
        "sentiment analysis": 0.125,
        "coreference resolution": 0.125,
        "natural language inference": 0.125,
        "struct-to-text": 0.125,
    }
    assert result["n_categories"] == 6  # "other" is not a category
    stats = result["stats"]
    assert stats["dropped_texts"] == {"all_pairs_dropped": 1, "no_pairs": 1}
    assert stats["dropped_pairs"] == {"bad_category": 1, "missing": 1, "no_json": 2}
    assert (stats["sampled_texts"], stats["sampled_pairs"]) == (6, 12)
    # asks: t1 1, t2 1, t3 2 (one repair), t4/t5/t6 3 each (two repairs, still bad) = 13
    assert (stats["judge_asks"], stats["reply_retries"]) == (13, 7)
    assert len(server.requests) == 15  # + t2's 429 and 500, retried
    assert result["judge"]["model"] == "judge-test-model"
    assert result["judge"]["prompt_sha256"] == PROMPT_SHA256
    # reports read it unchanged
    records = make(
        "table6",
        {"general": tmp_path / "q.json"},
        out_csv=tmp_path / "t6.csv",
        out_md=tmp_path / "t6.md",
        run="r",
        scale="paper",
    )
    assert {r["column"]: (r["ours"], r["paper"]) for r in records} == {
        "Context relevance": ("75", "92.9"),
        "Response accuracy": ("62.5", "77.5"),
        "Task categories": ("6", "49"),
    }
    assert all(r["note"].startswith("llm-judge:judge-test-model") for r in records)


def test_resume_after_a_kill_asks_only_what_is_missing(tmp_path):
    """Killed after 3 texts (the server rejects the 4th with a 400); the rerun asks nothing it
    already has and writes the bytes of an uninterrupted run."""
    inner = ScriptedJudge()

    def dies_on_fourth_text(body: dict, n: int):
        text, _ = prompt_of(body)
        if text.startswith("GARBLED-ALWAYS"):  # the 4th sampled text
            return 400, {}, b'{"error": {"message": "injected failure"}}'
        return inner(body, n)

    with ScriptedServer(ScriptedJudge()) as server:  # one endpoint, as a rerun would use
        run_quality(tmp_path, server, out="clean.json", ckpt="ckpt_clean")
        clean = (tmp_path / "clean.json").read_bytes()

        server.responder, start = dies_on_fourth_text, len(server.requests)
        with pytest.raises(JudgeError, match="text 't4': .*HTTP 400.*injected failure"):
            run_quality(tmp_path, server, out="resumed.json", ckpt="ckpt")
        assert not (tmp_path / "resumed.json").exists()
        assert len(list((tmp_path / "ckpt").glob("*.json"))) == 3
        finished = {prompt_of(r["body"])[0] for r in server.requests[start:]}
        finished -= {"GARBLED-ALWAYS text."}

        server.responder, start = ScriptedJudge(), len(server.requests)
        run_quality(tmp_path, server, out="resumed.json", ckpt="ckpt")
        asked = {prompt_of(r["body"])[0] for r in server.requests[start:]}
        assert asked == {"GARBLED-ALWAYS text.", "MISSING text.", "BADCAT text."}
        assert not asked & finished
        assert (tmp_path / "resumed.json").read_bytes() == clean

        start = len(server.requests)  # everything stored: no request at all
        run_quality(tmp_path, server, out="again.json", ckpt="ckpt")
        assert len(server.requests) == start
        assert (tmp_path / "again.json").read_bytes() == clean


def test_cache_is_keyed_by_model_and_request(tmp_path):
    with ScriptedServer(ScriptedJudge()) as server:
        run_quality(tmp_path, server)
        n = len(server.requests)
        for over, asked in (
            ({"model": "another-judge"}, True),  # another judge model: asked afresh
            ({"max_tokens": 256}, True),  # another request: asked afresh
            ({"concurrency": 3, "timeout_s": 5}, False),  # not part of the request: stored
            ({}, False),
        ):
            server.responder, start = ScriptedJudge(), len(server.requests)
            run_quality(tmp_path, server, **over)
            assert len(server.requests) - start == (n if asked else 0), over


def test_concurrent_requests_give_the_same_output(tmp_path):
    with ScriptedServer(ScriptedJudge()) as server:
        run_quality(tmp_path, server, out="a.json", ckpt="c1")
        run_quality(tmp_path, server, out="b.json", ckpt="c2", concurrency=4)
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_transport_errors(tmp_path):
    overloaded = (503, {"Retry-After-Ms": "1"}, b'{"error": "overloaded"}')
    with ScriptedServer(lambda body, n: overloaded) as server:
        with pytest.raises(JudgeError, match=r"after 4 attempt\(s\).*HTTP 503"):
            run_quality(tmp_path, server)
    assert len(server.requests) == 4  # max_retries 3
    with ScriptedServer(lambda body, n: (401, {}, b'{"error": "bad key"}')) as server:
        with pytest.raises(
            JudgeError, match=f"HTTP 401 \\(not retried\\); check the key in \\${KEY_ENV}"
        ):
            run_quality(tmp_path, server)
    assert len(server.requests) == 1
    with ScriptedServer(lambda body, n: (200, {}, b'{"object": "nothing"}')) as server:
        with pytest.raises(JudgeError, match="response without choices"):
            run_quality(tmp_path, server, max_retries=1)
    assert len(server.requests) == 1  # a 200 is not retried: the server is broken, not busy
    with ScriptedServer(lambda body, n: (200, {}, b"<html>gateway</html>")) as server:
        with pytest.raises(JudgeError, match="response is not JSON: <html>"):
            run_quality(tmp_path, server)
    with ScriptedServer(ScriptedJudge()) as server:
        with pytest.raises(JudgeError, match="HTTP 404"):
            run_quality(tmp_path, server, base_url=server.base_url + "/wrong")


def test_transient_errors_are_retried_honouring_retry_after():
    flaky = iter(
        [
            (429, {"Retry-After-Ms": "300"}, b"{}"),
            (500, {"Retry-After-Ms": "1"}, b"{}"),
            (502, {"Retry-After-Ms": "1"}, b"{}"),
        ]
    )

    def responder(body, n):
        return next(flaky, None) or completion("ok")

    with ScriptedServer(responder) as server:
        settings_ = J.judge_settings({"base_url": server.base_url, "api_key_env": None}, seed=0)
        client = J.ChatClient(settings_, None)
        start = time.monotonic()
        assert client.complete([{"role": "user", "content": "hi"}]) == ("ok", "stop")
    assert time.monotonic() - start >= 0.3  # the server's Retry-After was waited for
    assert client.retries == 3 and len(server.requests) == 4
    assert all("authorization" not in r["headers"] for r in server.requests)  # api_key_env: null


def test_a_timeout_is_retried_then_fails(tmp_path):
    def slow(body, n):
        time.sleep(0.5)
        return completion("late")

    with ScriptedServer(slow) as server:
        with pytest.raises(JudgeError, match=r"after 2 attempt\(s\); last: APITimeoutError"):
            run_quality(tmp_path, server, timeout_s=0.1, max_retries=1)
    assert len(server.requests) == 2


def test_missing_api_key_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with ScriptedServer(ScriptedJudge()) as server:
        with pytest.raises(JudgeError, match=f"environment variable {KEY_ENV}"):
            run_quality(tmp_path, server)
        assert server.requests == []
    with pytest.raises(JudgeError, match="OPENAI_API_KEY"):
        J.api_key(J.judge_settings({}, seed=0))


def test_judge_needs_a_checkpoint_dir_and_known_keys(tmp_path):
    synth, raw = write_corpus(tmp_path)
    args = (synth, raw, "general", str(tmp_path / "q.json"), 500, 0)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        quality.data_quality(*args, judge={"model": "gpt-4"})
    with pytest.raises(ValueError, match="unknown key.*temprature"):
        quality.data_quality(
            *args, judge={"model": "gpt-4", "temprature": 0}, checkpoint_dir=str(tmp_path / "c")
        )


# ----------------------------------------------------------------------------- parser


@pytest.mark.parametrize(
    "reply, n, judged, problems",
    [
        ("", 2, {}, {1: "empty_reply", 2: "empty_reply"}),
        ("No idea.", 1, {}, {1: "no_json"}),
        (
            '[{"relevant": "yes", "accurate": "No.", "category": "Struct to Text"}]',
            1,
            {1: (True, False, "struct-to-text")},
            {},
        ),
        (  # a category copied with its gloss; pair numbers as strings
            '{"judgments": [{"pair": "Pair 2", "relevant": true, "accurate": "yes", '
            '"category": "summarization: a shorter version"}]}',
            2,
            {2: (True, True, "summarization")},
            {1: "missing"},
        ),
        (  # a truncated outer object still yields its complete entries
            '{"judgments": [{"pair": 1, "relevant": "no", "accurate": "no", "category": "other"}, '
            '{"pair": 2, "relev',
            2,
            {1: (False, False, "other")},
            {2: "missing"},
        ),
        (
            '{"judgments": [{"pair": 1, "relevant": "maybe", "accurate": "no", "category": "other"},'
            '{"pair": 2, "relevant": "no", "accurate": 1, "category": "other"},'
            '{"pair": 3, "relevant": "no", "accurate": "no", "category": "opera"},'
            '{"pair": 4, "relevant": "no", "accurate": "no", "category": "other"},'
            '{"pair": 4, "relevant": "yes", "accurate": "no", "category": "other"},'
            '{"pair": 9, "relevant": "no", "accurate": "no", "category": "other"}]}',
            4,
            {},
            {1: "bad_relevant", 2: "bad_accurate", 3: "bad_category", 4: "conflict"},
        ),
        (  # entries without numbers are taken in order only if they match the pairs one to one
            '[{"relevant": "yes", "accurate": "yes", "category": "other"}]',
            2,
            {},
            {1: "missing", 2: "missing"},
        ),
    ],
)
def test_parse_judgments(reply, n, judged, problems):
    found, reasons = parse_judgments(reply, n)
    assert {i: (j["relevant"], j["accurate"], j["category"]) for i, j in found.items()} == judged
    assert reasons == problems


def test_truncated_reply_is_reported_as_truncated():
    replies = iter([('{"judgments": [{"pair": 1, "rel', "length")] * 3)
    result, replies_seen = J.judge_text(lambda m: next(replies), [], 1, 2)
    assert result == {"judgments": [None], "dropped": {"1": "truncated"}, "asks": 3}
    assert len(replies_seen) == 3


def _check(found: dict, reasons: dict, n: int) -> None:
    assert set(found) | set(reasons) == set(range(1, n + 1)) and not set(found) & set(reasons)
    for j in found.values():
        assert isinstance(j["relevant"], bool) and isinstance(j["accurate"], bool)
        assert j["category"] in JUDGE_CATEGORIES


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400), st.integers(min_value=0, max_value=6))
def test_parser_never_crashes_on_arbitrary_text(reply, n):
    found, reasons = parse_judgments(reply, n)
    _check(found, reasons, n)
    if "{" not in reply:  # no JSON object, no judgment
        assert found == {}


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["yes", "no", "pair", "judgments", "other", "summarization"]),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(["judgments", "pair", "relevant", "accurate", "category", "x"]),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(JSON, st.integers(min_value=1, max_value=5))
def test_parser_only_returns_valid_judgments_from_arbitrary_json(value, n):
    found, reasons = parse_judgments(json.dumps(value), n)
    _check(found, reasons, n)


ENTRY = st.fixed_dictionaries(
    {
        "relevant": st.sampled_from(["yes", "no", "Yes", True, False]),
        "accurate": st.sampled_from(["yes", "no", "NO", True, False]),
        "category": st.sampled_from(JUDGE_CATEGORIES),
    }
)
PROSE = st.text(alphabet=st.characters(exclude_characters="{}[]"), max_size=40)


@settings(max_examples=200, deadline=None)
@given(st.lists(ENTRY, min_size=1, max_size=6), PROSE, PROSE, st.data())
def test_parser_round_trips_and_never_invents(entries, before, after, data):
    n = len(entries)
    numbered = [{"pair": i, **e} for i, e in enumerate(entries, 1)]
    as_bool = {"yes": True, "Yes": True, True: True, "no": False, "NO": False, False: False}
    truth = {
        i: {
            "relevant": as_bool[e["relevant"]],
            "accurate": as_bool[e["accurate"]],
            "category": e["category"],
        }
        for i, e in enumerate(entries, 1)
    }
    reply = before + json.dumps({"judgments": numbered}) + after
    found, reasons = parse_judgments(reply, n)
    assert found == truth and reasons == {}
    cut = data.draw(st.integers(min_value=0, max_value=len(reply)))
    found, reasons = parse_judgments(reply[:cut], n)  # a reply cut anywhere
    _check(found, reasons, n)
    assert all(found[i] == truth[i] for i in found)  # never a judgment the reply did not give
