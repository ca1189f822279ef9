"""The findings cache: re-sent conversation history is not scanned again, and a cached
text gives exactly the findings a fresh scan gives."""

from __future__ import annotations

from veil.gateway._protect import FindingsCache
from veil.transform import Redactor, default_policy, shared_detector


class CountingDetector:
    def __init__(self) -> None:
        self.calls = 0
        self.batches: list[int] = []
        self.inner = shared_detector()
        self.kinds = self.inner.kinds

    def find(self, text: str):  # type: ignore[no-untyped-def]
        self.calls += 1
        return self.inner.find(text)

    def find_many(self, texts):  # type: ignore[no-untyped-def]
        self.calls += len(texts)
        self.batches.append(len(texts))
        return self.inner.find_many(texts)


def test_repeated_text_is_scanned_once_with_the_same_findings() -> None:
    detector = CountingDetector()
    redactor = Redactor(detector=detector, policy=default_policy())  # type: ignore[arg-type]
    cache = FindingsCache(entries=2)
    text = "mail ana@example.com"
    first = cache.find(redactor, text)
    second = cache.find(redactor, text)
    assert first == second == shared_detector().find(text)
    assert detector.calls == 1


def test_least_recently_used_text_is_evicted() -> None:
    detector = CountingDetector()
    redactor = Redactor(detector=detector, policy=default_policy())  # type: ignore[arg-type]
    cache = FindingsCache(entries=2)
    for text in ("a@example.com", "b@example.com", "a@example.com", "c@example.com"):
        cache.find(redactor, text)
    cache.find(redactor, "a@example.com")  # still cached
    assert detector.calls == 3
    cache.find(redactor, "b@example.com")  # evicted by c
    assert detector.calls == 4


def test_long_texts_are_not_kept() -> None:
    detector = CountingDetector()
    redactor = Redactor(detector=detector, policy=default_policy())  # type: ignore[arg-type]
    cache = FindingsCache(max_chars=10)
    cache.find(redactor, "x" * 20)
    cache.find(redactor, "x" * 20)
    assert detector.calls == 2


def test_a_resent_conversation_scans_only_its_new_message() -> None:
    from veil.gateway._protect import Exchange

    detector = CountingDetector()
    redactor = Redactor(detector=detector, policy=default_policy())  # type: ignore[arg-type]
    cache = FindingsCache()
    history = [{"role": "user", "content": "mail ana@example.com please"}]
    first = {"messages": [dict(m) for m in history]}
    Exchange(redactor, redactor, cache=cache).protect([(first["messages"][0], "content")])
    assert detector.calls == 1
    second = {"messages": [dict(m) for m in history] + [{"role": "user", "content": "thanks"}]}
    exchange = Exchange(redactor, redactor, cache=cache)
    exchange.protect([(m, "content") for m in second["messages"]])
    assert detector.calls == 2  # only "thanks" was scanned
    assert "ana@example.com" not in second["messages"][0]["content"]
    assert exchange.kinds["EMAIL"] == 1


def test_the_cache_keeps_no_prompt_text() -> None:
    redactor = Redactor(detector=shared_detector(), policy=default_policy())
    cache = FindingsCache()
    cache.find(redactor, "mail ana@example.com")
    assert "ana@example.com" not in repr(cache._cache)


def test_an_answer_sent_back_as_history_is_not_scanned_again() -> None:
    from veil.gateway._protect import Exchange

    detector = CountingDetector()
    redactor = Redactor(detector=detector, policy=default_policy())  # type: ignore[arg-type]
    cache = FindingsCache()
    question = {"role": "user", "content": "Who handles billing?"}
    exchange = Exchange(redactor, redactor, cache=cache)
    exchange.protect([(dict(question), "content")])
    answer = {"role": "assistant", "content": "Billing is handled by the finance team."}
    exchange.restore_slots([(answer, "content")])
    assert detector.calls == 2  # the question and the answer
    follow_up = [dict(question), dict(answer), {"role": "user", "content": "Thanks!"}]
    Exchange(redactor, redactor, cache=cache).protect([(m, "content") for m in follow_up])
    assert detector.calls == 3  # only "Thanks!" was scanned


def test_the_new_messages_of_a_request_are_detected_in_one_batch() -> None:
    """One `find_many` for what the cache does not know: with a NER model, one pass of
    the model over all of them."""
    from veil.gateway._protect import Exchange

    detector = CountingDetector()
    redactor = Redactor(detector=detector, policy=default_policy())  # type: ignore[arg-type]
    cache = FindingsCache()
    Exchange(redactor, redactor, cache=cache).protect([({"c": "mail ana@example.com"}, "c")])
    messages = [{"c": "mail ana@example.com"}, {"c": "call +1 415 555 0133"}, {"c": "thanks"}]
    exchange = Exchange(redactor, redactor, cache=cache)
    exchange.protect([(m, "c") for m in messages])
    assert detector.batches == [2]  # the first message, cached, is not scanned again
    assert "ana@example.com" not in messages[0]["c"]
    assert "415 555 0133" not in messages[1]["c"]
