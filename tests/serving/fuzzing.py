"""A property-based fuzzer of a running server's OpenAPI (schemathesis, fixed seed): what it
sends, what it checks, and what it found, as curl lines that reproduce each finding.

schemathesis's pytest integration (`schemathesis.pytest.from_fixture`) does not run on
pytest 9.2 (it sets `Item._nodeid`, which pytest no longer has), so its engine is driven
directly: the same phases and checks as its command line, with the findings returned.
"""

from collections import Counter
from dataclasses import dataclass, field

import jsonschema_rs
import schemathesis
from schemathesis.engine import Status, StopReason, events, from_schema
from schemathesis.specs.openapi.checks import response_schema_conformance

SEED = 18
# Cases per operation in the fuzzing phase; the coverage phase adds the schema's boundary
# and wrong-type cases on top (one per field and kind of mistake).
FUZZED_CASES = 50
CHECKS = (
    "not_a_server_error",
    "negative_data_rejection",  # a request the docs call invalid is refused
    "answer_as_documented",
    "refusal_names_the_field",
)
SHOWN_CHARS = 400


@dataclass
class Finding:
    operation: str
    check: str
    message: str
    curl: str
    status: int | None
    answer: str

    def __str__(self) -> str:
        head = f"{self.operation} [{self.check}] {self.message}"
        return f"{head}\n  {self.curl}\n  -> {self.status} {self.answer}"


@dataclass
class Run:
    cases: Counter[str] = field(default_factory=Counter)  # operation -> requests sent
    findings: list[Finding] = field(default_factory=list)

    def report(self) -> str:
        """One example per (operation, check, status): the shortest request that shows it."""
        groups: dict[tuple, list[Finding]] = {}
        for found in self.findings:
            groups.setdefault((found.operation, found.check, found.status), []).append(found)
        return "\n".join(
            f"{len(found)}x {min(found, key=lambda f: len(f.curl))}" for found in groups.values()
        )


@schemathesis.check
def answer_as_documented(ctx, response, case):
    # 2xx only: BentoML documents a 400's `detail` as a string, and sends a list of errors.
    if 200 <= response.status_code < 300:
        return response_schema_conformance(ctx, response, case)
    return None


@schemathesis.check
def refusal_names_the_field(ctx, response, case):
    """A 4xx is a JSON object with an `error` message; a 400 to a body the documented
    schema finds fault with names at least one field it faults."""
    if not 400 <= response.status_code < 500:
        return None
    try:
        answer = response.json()
    except ValueError:
        raise AssertionError(f"{response.status_code} answer is not JSON") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("error"), str):
        raise AssertionError(f'{response.status_code} answer has no "error" message')
    wrong = wrong_fields(case)
    if response.status_code == 400 and wrong and not any(name in response.text for name in wrong):
        raise AssertionError(f"400 names none of the wrong fields {sorted(wrong)}")
    return None


def wrong_fields(case) -> set[str]:
    """Names of the body's fields the operation's documented schema finds fault with: the
    field holding a wrong value, a required one missing, an unexpected one."""
    if not isinstance(case.body, (dict, list)):
        return set()
    names: set[str] = set()
    for body in case.operation.body:
        if body.media_type != case.media_type:
            continue
        for error in body.get_validator().iter_errors(case.body):
            kind = error.kind
            if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
                names.add(kind.property)
            elif isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties):
                names.update(kind.unexpected)
            else:
                names.update([p for p in error.instance_path if isinstance(p, str)][-1:])
    return names


def config() -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "continue-on-failure": True,  # every finding of an operation, not only its first
            "generation": {"max-examples": FUZZED_CASES, "database": "none"},
            "phases": {"stateful": {"enabled": False}},  # no links between operations
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "output": {"sanitization": {"enabled": False}},  # curl lines exactly as sent
        }
    )


def fuzz(base_url: str) -> Run:
    """Every operation of the server's `/docs.json`: examples, coverage and fuzzing phases."""
    schema = schemathesis.openapi.from_url(f"{base_url}/docs.json", config=config())
    run = Run()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            _collect(run, event.recorder)
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            raise RuntimeError(f"the fuzzer could not run: {event}")
        elif isinstance(event, events.EngineFinished):
            assert event.stop_reason is StopReason.COMPLETED, event.stop_reason
    return run


def _collect(run: Run, recorder) -> None:
    run.cases[recorder.label] += len(recorder.cases)
    for case_id, checks in recorder.checks.items():
        for check in checks:
            if check.status is not Status.FAILURE:
                continue
            failure = check.failure_info.failure
            response = recorder.interactions[failure.case_id or case_id].response
            run.findings.append(
                Finding(
                    operation=recorder.label,
                    check=check.name,
                    message="; ".join([failure.title, *failure.message.strip().splitlines()]),
                    curl=check.failure_info.code_sample,
                    status=getattr(response, "status_code", None),
                    answer=response.text_lossy()[:SHOWN_CHARS] if response is not None else "",
                )
            )
