"""The ``openai`` captioner against a real local HTTP server speaking ``/v1/chat/completions``.

The server (``http.server`` in a thread on 127.0.0.1) reads each request's image from its data URL and
answers from a script chosen by the image's colour: valid JSON, malformed-then-valid, 500-then-valid,
too slow for the client's timeout. It records every request and the most requests it ever had in flight.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from PIL import Image

from megastyle.curate.caption import load_captioner
from megastyle.curate.caption.openai_compat import OpenAICaptioner
from megastyle.curate.items import PoolItem
from megastyle.data import encode_png

VALID = {
    "identity": "art deco",
    "dominant_colors": ["gold", "black"],
    "accent_colors": ["emerald"],
    "lighting": "dramatic chiaroscuro",
    "pattern": "concentric circles",
    "surface": "glossy",
    "edges": "sharp",
    "brushwork": None,
    "medium": "flat vector",
}
SLOW_S = 1.5  # the slow reply's delay; the client's timeout in these tests is far below it


@dataclass
class ScriptedServer:
    """Replies per scenario (the red value of the request's image), recording requests and concurrency."""

    scripts: dict[int, list[tuple[str, Any]]]
    hold_s: float = 0.0  # every reply waits this long (to observe concurrency)
    requests: list[dict[str, Any]] = field(default_factory=list)
    calls: dict[int, int] = field(default_factory=dict)
    headers: list[str] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reply(self, body: dict[str, Any], auth: str) -> tuple[int, dict[str, Any] | str, float]:
        url = body["messages"][0]["content"][0]["image_url"]["url"]
        image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        scenario = image.convert("RGB").getpixel((0, 0))[0]
        with self.lock:
            self.requests.append(body)
            self.headers.append(auth)
            n = self.calls.get(scenario, 0)
            self.calls[scenario] = n + 1
        script = self.scripts[scenario]
        action, value = script[min(n, len(script) - 1)]
        if action == "status":
            code, message = value if isinstance(value, tuple) else (value, "scripted failure")
            return code, json.dumps({"error": {"message": message}}), self.hold_s
        if action == "slow":
            return 200, _completion(value), SLOW_S
        return 200, _completion(value), self.hold_s


def _completion(text: str) -> dict[str, Any]:
    return {
        "id": "x",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
    }


@pytest.fixture
def serve() -> Iterator[Any]:
    """Start a scripted server; yields a function (scripts, hold_s) → (server state, base URL)."""
    servers: list[ThreadingHTTPServer] = []
    watchdogs: list[threading.Timer] = []

    def start(scripts: dict[int, list[tuple[str, Any]]], hold_s: float = 0.0) -> tuple[ScriptedServer, str]:
        state = ScriptedServer(scripts, hold_s)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path != "/v1/chat/completions":
                    self.send_error(404)
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with state.lock:
                    state.in_flight += 1
                    state.max_in_flight = max(state.max_in_flight, state.in_flight)
                try:
                    status, payload, delay = state.reply(body, self.headers.get("Authorization", ""))
                    time.sleep(delay)
                finally:
                    # Counted out before the answer is sent: once the client has it, it may start its
                    # next request before this thread runs again.
                    with state.lock:
                        state.in_flight -= 1
                try:
                    data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): nothing left to answer

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        servers.append(server)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        # A watchdog so a hung test cannot leave the server running.
        watchdog = threading.Timer(60, server.shutdown)
        watchdog.daemon = True
        watchdog.start()
        watchdogs.append(watchdog)
        return state, f"http://127.0.0.1:{server.server_address[1]}/v1"

    yield start
    for watchdog in watchdogs:
        watchdog.cancel()
    for server in servers:
        server.shutdown()
        server.server_close()


def _items(*scenarios: int) -> list[PoolItem]:
    return [
        PoolItem(f"item{i}", "pool", image_bytes=encode_png(Image.new("RGB", (16, 16), (s, 80, 80))))
        for i, s in enumerate(scenarios)
    ]


def _captioner(url: str, **options: Any) -> OpenAICaptioner:
    defaults: dict[str, Any] = {
        "base_url": url,
        "timeout_s": 5.0,
        "backoff_s": 0.01,
        "backoff_max_s": 0.05,
        "seed": 0,
    }
    captioner = load_captioner("openai", model="qwen3-vl", **{**defaults, **options})
    assert isinstance(captioner, OpenAICaptioner)
    return captioner


def test_valid_malformed_and_server_errors(serve: Any) -> None:
    state, url = serve(
        {
            1: [("answer", json.dumps(VALID))],
            2: [
                ("answer", "Sorry, I think it is art deco."),
                ("answer", "```json\n" + json.dumps(VALID) + "\n```"),
            ],
            3: [("status", 500), ("status", 503), ("answer", json.dumps(VALID))],
            4: [("answer", "no json, ever")],
        }
    )
    captioner = _captioner(url, api_key="secret-key", max_attempts=2)
    captions = captioner.caption(_items(1, 2, 3, 4), "style")
    assert [c.ok for c in captions] == [True, True, True, False]
    assert [c.attempts for c in captions] == [1, 2, 1, 2]  # 5xx retries are transport retries, not attempts
    assert captions[0].backend == "openai:qwen3-vl"
    assert captions[0].text is not None and captions[0].text.startswith(
        "In the style of art deco, gold and black"
    )
    assert state.calls == {1: 1, 2: 2, 3: 3, 4: 2}
    assert "rejected after 2 attempts: answer is not JSON: 'no json, ever'" in (captions[3].error or "")
    # The request: model, the image as a data URL, the instruction, JSON mode, the bearer key.
    body = state.requests[0]
    assert body["model"] == "qwen3-vl" and body["response_format"] == {"type": "json_object"}
    assert body["messages"][0]["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert '"dominant_colors"' in body["messages"][0]["content"][1]["text"]
    assert set(state.headers) == {"Bearer secret-key"}


def test_a_timeout_that_exhausts_retries_is_recorded_and_the_batch_goes_on(serve: Any) -> None:
    state, url = serve({1: [("answer", json.dumps(VALID))], 9: [("slow", json.dumps(VALID))]})
    captioner = _captioner(url, timeout_s=0.3, max_retries=1)
    captions = captioner.caption(_items(9, 1), "style")
    assert captions[1].ok
    slow = captions[0]
    assert not slow.ok and slow.attempts == 1 and state.calls[9] == 2  # one try plus one retry, then give up
    assert slow.error is not None and "failed after 2 tries (timeout 0.3 s)" in slow.error
    assert "timed out" in slow.error.lower()


def test_concurrency_is_bounded(serve: Any) -> None:
    state, url = serve({s: [("answer", json.dumps(VALID))] for s in range(10, 18)}, hold_s=0.2)
    captioner = _captioner(url, concurrency=3)
    captions = captioner.caption(_items(*range(10, 18)), "style")
    assert all(c.ok for c in captions) and len(state.requests) == 8
    assert state.max_in_flight <= 3  # the limit holds ...
    assert state.max_in_flight >= 2  # ... and requests really run in parallel


def test_content_requests_and_permanent_client_errors(serve: Any) -> None:
    state, url = serve(
        {
            5: [("answer", "Two cups beside a vase")],
            6: [("status", 401)],
        }
    )
    captioner = _captioner(url, max_retries=3)
    captions = captioner.caption(_items(5, 6), "content")
    assert captions[0].text == "Two cups beside a vase" and "response_format" not in state.requests[0]
    assert state.calls[6] == 1  # a 4xx other than 408/409/425/429 is not retried
    assert "HTTP 401" in (captions[1].error or "")


def test_servers_without_json_mode_are_asked_again_without_it(serve: Any) -> None:
    state, url = serve(
        {
            7: [
                ("status", (400, "response_format json_schema is not supported")),
                ("answer", json.dumps(VALID)),
            ],
            8: [("status", (400, "image is too large"))],
        }
    )
    captioner = _captioner(url, response_format="json_schema", concurrency=1)
    first, second = captioner.caption(_items(7, 8), "style")
    assert first.ok and state.calls[7] == 2
    assert state.requests[0]["response_format"]["type"] == "json_schema"
    assert "response_format" not in state.requests[1] and captioner.response_format == "none"
    # A 400 about something else is a permanent error for that item only.
    assert state.calls[8] == 1 and "HTTP 400" in (second.error or "") and "too large" in (second.error or "")


def test_unreachable_server_is_a_recorded_failure() -> None:
    captioner = _captioner("http://127.0.0.1:9/v1", max_retries=1, timeout_s=0.5)  # port 9: discard, closed
    (caption,) = captioner.caption(_items(1), "style")
    assert not caption.ok and "failed after 2 tries" in (caption.error or "")
    with pytest.raises(ValueError, match="response_format"):
        _captioner("http://127.0.0.1:9/v1", response_format="xml")
