"""Typed records of one proxied LLM request and its attempts, with their state transitions.

No litellm and no OpenTelemetry here: `readers.py` fills these records from litellm's hook
arguments, `lifecycle.py` decides when they start and end, `attributes.py` maps them to each
vocabulary and `spans.py` places them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

ABANDONED = "abandoned"  # error.type of a request or attempt that never got its end event
UNKNOWN_ERROR = "_OTHER"  # error.type when no exception says what failed
UNKNOWN_GROUP = "_unknown"  # the model group of a request no configured group served or matches

# A plausible time for a request is within this window around the hook's own clock: a time
# outside it (a client-forged or garbled value) is replaced by the hook's clock.
MAX_AGE_NS = 24 * 3600 * 10**9
MAX_AHEAD_NS = 5 * 10**9


@dataclass(slots=True)
class Usage:
    input_tokens: int | None = None  # including cached input, as the GenAI conventions count
    output_tokens: int | None = None
    total_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    reasoning_output_tokens: int | None = None


@dataclass(slots=True)
class Attribution:
    """Who the request is billed to, as the proxy's auth resolved it (never the raw key).
    Not changed once read (not frozen only because a frozen dataclass is slower to make)."""

    team_id: str | None = None
    team_alias: str | None = None
    org_id: str | None = None
    key_alias: str | None = None
    key_hash: str | None = None
    user_id: str | None = None
    end_user_id: str | None = None  # client-named (the body's `user`)
    tags: tuple[str, ...] = ()  # client-chosen


@dataclass(frozen=True, slots=True)
class Message:
    """One message of captured content (only when the operator opted in), already truncated."""

    role: str
    text: str
    finish_reason: str | None = None


@dataclass(slots=True)
class Attempt:
    """One call to one deployment: the first try, a retry or a fallback hop."""

    number: int
    start_ns: int
    model_group: str | None = None  # the deployment's configured group (a wildcard route's pattern)
    deployment_model: str | None = None  # as configured, e.g. "mistral/mistral-small-latest"
    deployment_id: str | None = None
    provider: str | None = None  # litellm's custom_llm_provider, e.g. "mistral"
    api_base: str | None = None
    fallback_depth: int = 0
    operation: str = "chat"
    call_type: str | None = None  # litellm's, e.g. "acompletion"; tells a nested call from a retry
    stream: bool = False
    wildcard: bool = False  # a wildcard route: the model sent is the client's choice
    end_ns: int | None = None
    error_type: str | None = None
    cost_usd: float = 0.0  # litellm's, set by the success event: only the answering attempt has one
    usage: Usage | None = None
    finish_reasons: tuple[str, ...] = ()
    response_model: str | None = None
    response_id: str | None = None
    time_to_first_chunk_s: float | None = None
    call_id: str | None = None  # in-process each attempt has its own; on the proxy all share one
    # The response a deployment hook saw (or what the hook read of it: an Answer), applied when
    # the request ends: read once when the success event brings the same object (chat,
    # completions, embeddings), as is usual.
    answered_by: object = None
    input_messages: tuple[Message, ...] = ()  # content capture only
    output_messages: tuple[Message, ...] = ()

    @property
    def request_model(self) -> str | None:
        """The model name sent on the wire: the deployment model without its provider prefix."""
        if not self.deployment_model:
            return None
        prefix = f"{self.provider}/" if self.provider else ""
        model = self.deployment_model
        return model[len(prefix):] if prefix and model.startswith(prefix) else model

    @property
    def bounded_request_model(self) -> str | None:
        """The request model where the configuration bounds it (not on a wildcard route):
        the one safe for span names and metric dimensions."""
        return None if self.wildcard else self.request_model

    def apply(self, answer: Answer) -> None:
        if answer.usage is not None and self.operation == "embeddings":
            answer.usage.output_tokens = None  # litellm reports 0; embeddings have no output tokens
        self.usage = answer.usage or self.usage
        self.finish_reasons = answer.finish_reasons or self.finish_reasons
        self.response_id = answer.response_id or self.response_id
        self.response_model = answer.response_model or self.response_model

    def end(self, end_ns: int, error_type: str | None) -> None:
        self.end_ns = max(end_ns, self.start_ns)
        self.error_type = error_type


@dataclass(slots=True)
class Answer:
    """What a successful response tells about its attempt."""

    usage: Usage | None = None
    finish_reasons: tuple[str, ...] = ()
    response_id: str | None = None
    response_model: str | None = None


@dataclass(slots=True)
class Success:
    """The success event: litellm's cost and the answer's timing (raw: the lifecycle checks
    them), plus what litellm's logging payload says of the deployment, for an answer no
    attempt hook announced (a cache hit)."""

    cost_usd: float = 0.0
    response: object = None  # the answer (or an Answer read already), applied by the lifecycle
    start_ns: int | None = None
    end_ns: int | None = None
    stream: bool = False
    first_chunk_ns: int | None = None
    api_call_start_ns: int | None = None
    logged_usage: Usage | None = None
    model_group: str | None = None
    deployment_id: str | None = None
    provider: str | None = None
    api_base: str | None = None


RetryKind = Literal["retry", "fallback"]


@dataclass(frozen=True, slots=True)
class BudgetHold:
    """One budget a request was checked against: what was held for it, and what was left."""

    name: str
    scope: str
    counter: str  # the store's counter key (window and scope value included)
    reserved_usd: float
    remaining_usd: float  # the limit minus spent and reserved, this request's hold included
    counter_expires_ms: int | None = None  # when the store may drop the counter (its window's end)


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    """The budget guard's verdict on one request, settled with its cost when it ends."""

    reservation_id: str
    holds: tuple[BudgetHold, ...]
    expires_ns: int  # when the store drops the holds by itself (a replica died mid-request)
    refused_by: str | None = None  # the budget that refused the request (it holds nothing then)


@dataclass(slots=True)
class Request:
    """One request as the proxy saw it, from receipt to answer, with all its attempts."""

    call_id: str
    received_ns: int
    model_group: str = UNKNOWN_GROUP  # the group asked for, bounded: configured, or UNKNOWN_GROUP
    requested_model: str | None = None  # the client's raw model name, truncated, when it differs
    parent: object = None  # opaque parent hint for spans.py: a span, a header mapping, or None
    attempts: list[Attempt] = field(default_factory=list)
    end_ns: int | None = None
    error_type: str | None = None
    error_description: str | None = None
    time_to_first_chunk_s: float | None = None  # from receipt to the first streamed chunk
    attribution: Attribution = field(default_factory=Attribution)
    clock_adjusted: bool = False  # a time the hooks gave was implausible and was replaced
    session_id: str | None = None  # client-chosen (litellm_session_id): a label, never a dimension
    budget: BudgetCheck | None = None  # set by the budget guard before the first attempt

    @property
    def cost_usd(self) -> float:
        return sum((attempt.cost_usd for attempt in self.attempts), 0.0)

    @property
    def fallbacks(self) -> int:
        """Fallback hops taken: the deepest fallback level any attempt reached."""
        return max((attempt.fallback_depth for attempt in self.attempts), default=0)

    @property
    def open_attempt(self) -> Attempt | None:
        if self.attempts and self.attempts[-1].end_ns is None:
            return self.attempts[-1]
        return None

    @property
    def last_attempt(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def answering_attempt(self) -> Attempt | None:
        """The attempt whose answer the client got: the last one, unless the request failed."""
        return self.attempts[-1] if self.attempts and self.error_type is None else None

    @property
    def served_group(self) -> str | None:
        answering = self.answering_attempt
        return answering.model_group if answering is not None else None

    def start_attempt(self, attempt: Attempt) -> None:
        """Attempts of one request run one after another, never before the request began."""
        attempt.number = len(self.attempts) + 1
        attempt.start_ns = max(attempt.start_ns, self.received_ns)
        self.attempts.append(attempt)

    def finish(self, end_ns: int, error_type: str | None = None, description: str | None = None) -> None:
        self.end_ns = max(end_ns, self.received_ns)
        self.error_type = error_type
        self.error_description = description

    def abandon(self, now_ns: int, reason: str) -> None:
        """End a request that never got its end event.

        With an attempt still open, the request was abandoned (client gone, stream cancelled).
        After a failed attempt it simply failed: in-process, litellm.Router raises to the
        caller without any final hook, so this is how such a request ends."""
        open_attempt = self.open_attempt
        if open_attempt is not None:
            open_attempt.end(now_ns, ABANDONED)
        last = self.last_attempt
        if open_attempt is None and last is not None and last.error_type is not None:
            self.finish(last.end_ns or now_ns, last.error_type, f"{last.error_type} on the last attempt; {reason}")
        else:
            self.finish(now_ns, ABANDONED, f"request abandoned: {reason}")

    def transitions(self) -> list[tuple[Attempt, RetryKind]]:
        """Each retry (an attempt on the same group after a failed one) and each fallback hop
        (to a deeper fallback level), with the attempt whose group it is counted under: the
        retrying attempt for a retry, the attempt fallen back from for a hop."""
        found: list[tuple[Attempt, RetryKind]] = []
        for previous, attempt in itertools.pairwise(self.attempts):
            if previous.error_type is None:
                continue
            if attempt.fallback_depth > previous.fallback_depth:
                found.append((previous, "fallback"))
            elif attempt.model_group == previous.model_group:
                found.append((attempt, "retry"))
        return found


class RequestKey(NamedTuple):
    """Which in-flight request a hook belongs to. On the proxy: the call id (client-settable)
    together with the identity of the proxy's per-request dict; in-process: the router's
    per-call trace id, or the call id alone. (A named tuple: made and hashed several times
    per request, in C.)"""

    scope: Literal["proxy", "router", "call"]
    value: str
    anchor: int = 0  # id() of the proxy's per-request dict (the tracker keeps the dict alive)


def plausible_ns(value: int | None, now_ns: int) -> int | None:
    """`value` if it lies within the plausible window around `now_ns`, else None."""
    if value is None or not now_ns - MAX_AGE_NS <= value <= now_ns + MAX_AHEAD_NS:
        return None
    return value
