"""The compiled projection plan of subscription selections (gateway/projection.py, docs/adr/0023-gateway-send-path.md)
gives graphql-core's answer to the byte, or is not used: documents that are not plain projections are not
compiled, and events a plan cannot complete exactly are executed by graphql-core."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import strawberry
from b2x.monitoring.v1 import events_pb2, jobs_pb2
from graphql import parse
from graphql.execution import MiddlewareManager
from strawberry.extensions import QueryDepthLimiter, SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from gateway import fanout
from gateway.auth import Principal, Role
from gateway.extensions import ErrorCodes, LeanExtensionsRunner
from gateway.fanout import SharedEventExecutor, encoded_next
from gateway.jobs import types as t
from gateway.jobs.convert import resync_event, status_event_to_gql
from gateway.projection import compile_plan
from gateway.schema import build_schema
from services.common.events import new_event

SCHEMA = build_schema()
VIEWER = SimpleNamespace(principal=Principal(key_id="k1", name="viewer", role=Role.VIEWER))

EVERYTHING = """subscription {
  jobStatusChanged {
    jobId status previousStatus change occurredAt
    progress { totalItems processedItems succeededItems failedItems percent itemsPerSecond etaSeconds message updatedAt }
    job {
      id jobType tenantId status progressPercent createdAt startedAt completedAt updatedAt lastHeartbeatAt durationMs
      errorMessage errorCategory errorClass errorStackTrace attempt maxAttempts rootJobId retryOfJobId workerId
      cancelRequested createdBy metadata parameters availableAt cancelReason logSequence retriedByJobId
      progress { percent etaSeconds updatedAt }
      steps { index name status startedAt completedAt message }
    }
    hops { name atUnixMicros }
  }
}"""
DOCUMENTS: list[tuple[str, dict[str, Any]]] = [
    (EVERYTHING, {}),
    # the benchmark's and the dashboard table's shape: arguments of the root field, variables, nested lists
    (
        'subscription($ids: [ID!]) { jobStatusChanged(changes: ["progress"], jobIds: $ids) '
        "{ jobId change progress { processedItems } hops { name atUnixMicros } } }",
        {"ids": None},
    ),
    # aliases, the same field twice with merged selections, __typename, fragments (named and inline)
    (
        "subscription Live { e: jobStatusChanged { __typename id: jobId job { status } job { tenantId ...J } "
        "... on JobStatusEvent { s: status p: progress { __typename percent } } "
        "progress { ...P } } } fragment J on Job { jobType attempt } fragment P on JobProgress { etaSeconds }",
        {},
    ),
    # @skip / @include, literal and from variables: the plan follows the variables it was compiled with
    (
        "subscription($full: Boolean!, $quiet: Boolean = true) { jobStatusChanged { jobId "
        "job @include(if: $full) { id metadata } progress @skip(if: $quiet) { percent } "
        "hops @skip(if: false) { name } change @include(if: false) } }",
        {"full": True},
    ),
    (
        "subscription($full: Boolean!, $quiet: Boolean = true) { jobStatusChanged { jobId "
        "job @include(if: $full) { id metadata } progress @skip(if: $quiet) { percent } } }",
        {"full": False, "quiet": False},
    ),
]


def _job(**fields: Any) -> jobs_pb2.SchedulerJob:
    job = jobs_pb2.SchedulerJob(
        id="5c1f3ab4-0d1e-4f7a-9c57-3a1a8f0e2b11", job_type="ERP_STOCK_SYNC", tenant_id="tenant-a",
        status=jobs_pb2.JOB_STATUS_RUNNING, progress_percent=25, attempt=1, max_attempts=3,
        root_job_id="5c1f3ab4-0d1e-4f7a-9c57-3a1a8f0e2b11", worker_id="w-1", created_by="bench", **fields,
    )  # fmt: skip
    job.progress.total_items, job.progress.processed_items, job.progress.percent = 400, 100, 25.0
    job.progress.eta_seconds, job.progress.message = 3.5, 'Grüße, "quoted" \u2603'
    for stamp in (job.created_at, job.started_at, job.updated_at, job.last_heartbeat_at, job.progress.updated_at):
        stamp.GetCurrentTime()
    job.metadata.update({"source": "test", "nested": {"list": [1, "two", None, True]}})
    return job


def _event(job: jobs_pb2.SchedulerJob, change: str, previous: int, hops: bool) -> events_pb2.Event:
    event = new_event("jobs", tenant_id=job.tenant_id)
    payload = event.job_status_changed
    payload.job_id, payload.status, payload.previous_status, payload.change = job.id, job.status, previous, change
    payload.progress.CopyFrom(job.progress)
    payload.job.CopyFrom(job)
    if hops:
        for name in ("sdk_enqueued", "sdk_sent", "jobs_received", "jobs_committed", "published", "gateway_received"):
            event.hops.add(name=name, at_unix_nanos=time.time_ns())
    return event


def _events() -> list[t.JobStatusEvent]:
    failed = _job(error_message="boom", error_category="IO", error_class=jobs_pb2.ERROR_CLASS_TRANSIENT,
                  error_stack_trace="Traceback", duration_ms=12.5, retry_of_job_id="0e0f", cancel_reason="")  # fmt: skip
    failed.status = jobs_pb2.JOB_STATUS_FAILED
    failed.completed_at.GetCurrentTime()
    step = failed.steps.add(index=0, name="read", status=jobs_pb2.JOB_STEP_STATUS_FAILED, message="no file")
    step.started_at.GetCurrentTime()
    created = _job()
    created.status = jobs_pb2.JOB_STATUS_QUEUED
    created.ClearField("started_at")
    created.progress.ClearField("eta_seconds")
    return [
        status_event_to_gql(_event(_job(), "progress", jobs_pb2.JOB_STATUS_RUNNING, hops=True)),
        status_event_to_gql(_event(created, "created", jobs_pb2.JOB_STATUS_UNSPECIFIED, hops=False)),
        status_event_to_gql(_event(failed, "failed", jobs_pb2.JOB_STATUS_RUNNING, hops=False)),
        resync_event(failed),
    ]


def _executor(cls: type[StrawberryGraphQLCoreExecutionContext], document: str, variables: dict[str, Any],
              schema: Any = SCHEMA, **kwargs: Any) -> Any:  # fmt: skip
    executor = cls.build(schema._schema, parse(document), context_value=VIEWER, raw_variable_values=variables,
                         **kwargs)  # fmt: skip
    assert not isinstance(executor, list), executor
    return executor


def _graphql_core(document: str, variables: dict[str, Any], event: Any, schema: Any = SCHEMA) -> Any:
    executor = _executor(StrawberryGraphQLCoreExecutionContext, document, variables, schema)
    return executor.build_per_event_executor(event).execute_operation(False)


@pytest.mark.parametrize(("document", "variables"), DOCUMENTS)
def test_a_plain_selection_is_answered_by_its_plan_exactly_as_by_graphql_core(
    document: str, variables: dict[str, Any]
) -> None:
    """Same data, same key order, same nulls, enums and scalars: the JSON texts are equal."""
    executor = _executor(SharedEventExecutor, document, variables)
    assert compile_plan(executor.schema, executor.fragments, executor.variable_values, executor.operation)
    planned_before = fanout.PLANNED._value.get()
    for event in _events():
        expected = _graphql_core(document, variables, event)
        assert not expected.errors
        got = executor.build_per_event_executor(event).execute_operation(False)
        assert got.errors is None
        assert json.dumps(got.data) == json.dumps(expected.data)
    assert fanout.PLANNED._value.get() - planned_before == len(_events())


def test_subscribers_asking_the_same_projection_share_one_answer_whatever_their_scope() -> None:
    """A projection involves no resolver: one execution per event and document serves every subscriber."""
    document, variables = DOCUMENTS[1]
    event = _events()[0]
    one = _executor(SharedEventExecutor, document, variables)
    other = SharedEventExecutor.build(
        SCHEMA._schema, parse(document), raw_variable_values=variables,
        context_value=SimpleNamespace(principal=Principal(key_id="k2", name="t", role=Role.ADMIN, tenant_id="t-b")),
    )  # fmt: skip
    first = one.build_per_event_executor(event).execute_operation(False)
    assert other.build_per_event_executor(event).execute_operation(False) is first  # type: ignore[union-attr]
    different = _executor(SharedEventExecutor, document, {"ids": ["x"]})
    assert different.build_per_event_executor(event).execute_operation(False) is not first


def test_an_event_the_plan_cannot_complete_is_executed_by_graphql_core() -> None:
    """A null where the schema promises a value: the plan steps aside and graphql-core reports it its way."""
    broken = _events()[0]
    broken.change = None  # type: ignore[assignment]
    document = EVERYTHING
    expected = _graphql_core(document, {}, broken)
    assert expected.errors and expected.data is None
    fallbacks = fanout.PLAN_FALLBACKS._value.get()
    got = _executor(SharedEventExecutor, document, {}).build_per_event_executor(broken).execute_operation(False)
    assert fanout.PLAN_FALLBACKS._value.get() == fallbacks + 1
    assert got.data is None and [e.formatted for e in got.errors] == [e.formatted for e in expected.errors]


# A schema with what a projection cannot be: resolvers, arguments, an interface, a type check.
@strawberry.interface
class Named:
    name: str


@strawberry.type
class Pet(Named):
    legs: int


@strawberry.type
class Thing:
    name: str

    @strawberry.field
    def loud(self) -> str:
        return self.name.upper()

    @strawberry.field
    def repeated(self, times: int) -> str:
        return self.name * times


@strawberry.type
class Checked:
    value: int

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, cls)


@strawberry.type
class Happening:
    thing: Thing
    pet: Named
    checked: Checked


@strawberry.type
class Query:
    ok: bool = True


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def happened(self) -> AsyncGenerator[Happening, None]:
        yield Happening(thing=Thing(name="box"), pet=Pet(name="rex", legs=4), checked=Checked(value=1))


OTHER = strawberry.Schema(query=Query, subscription=Subscription, types=[Pet])


@pytest.mark.parametrize(
    ("document", "planned"),
    [
        ("subscription { happened { thing { name } } }", True),
        ("subscription { happened { thing { loud } } }", False),  # a resolver
        ("subscription { happened { thing { repeated(times: 2) } } }", False),  # arguments
        ("subscription { happened { pet { name } } }", False),  # an interface
        ("subscription { happened { pet { ... on Pet { legs } } } }", False),
        ("subscription { happened { checked { value } } }", False),  # is_type_of
    ],
)
def test_selections_that_are_not_plain_projections_are_executed_by_graphql_core(document: str, planned: bool) -> None:
    executor = _executor(SharedEventExecutor, document, {}, OTHER)
    plan = compile_plan(executor.schema, executor.fragments, executor.variable_values, executor.operation)
    assert (plan is not None) is planned
    event = Happening(thing=Thing(name="box"), pet=Pet(name="rex", legs=4), checked=Checked(value=1))
    got = executor.build_per_event_executor(event).execute_operation(False)
    expected = _graphql_core(document, {}, event, OTHER)
    assert json.dumps(got.data) == json.dumps(expected.data) and not got.errors


def test_resolver_hooks_such_as_tracing_keep_graphql_cores_execution() -> None:
    """With middleware (the OpenTelemetry extension wraps every resolver) no plan is used."""

    class Counting:
        calls = 0

        def resolve(self, next_: Any, root: Any, info: Any, **args: Any) -> Any:
            Counting.calls += 1
            return next_(root, info, **args)

    document, variables = DOCUMENTS[1]
    executor = _executor(SharedEventExecutor, document, variables, middleware=MiddlewareManager(Counting()))
    executor.build_per_event_executor(_events()[0]).execute_operation(False)
    assert Counting.calls > 10  # every field went through the middleware


@pytest.mark.parametrize(
    "message",
    [
        {"id": "1", "type": "next", "payload": {"data": {"jobStatusChanged": {"jobId": "a", "n": None, "x": 1.5}}}},
        {"id": 'we"ird\u2603', "type": "next", "payload": {"data": {"k": ["Grüße", {"d": "2026-01-01"}]}}},
    ],
)
def test_a_next_message_is_encoded_as_json_dumps_would(message: dict[str, Any]) -> None:
    assert encoded_next(message) == json.dumps(message, default=str)
    again = {**message, "id": "other"}
    assert encoded_next(again) == json.dumps(again, default=str)  # the data's JSON reused, the id its own


@pytest.mark.parametrize(
    "message",
    [
        {"id": "1", "type": "next", "payload": {"data": None, "errors": [{"message": "x"}]}},
        {"id": "1", "type": "next", "payload": {"data": {"a": 1}, "extensions": {"x": 1}}},
        {"id": "1", "type": "complete"},
        {"type": "next", "id": "1", "payload": {"data": {"a": 1}}},  # another key order
        {"type": "pong"},
    ],
)
def test_other_messages_are_left_to_json_dumps(message: dict[str, Any]) -> None:
    assert encoded_next(message) is None


class _Reporting(SchemaExtension):
    streamed = 0

    def get_results(self) -> dict[str, Any]:
        return {"reported": True}

    def on_stream_result(self, result: Any) -> Iterator[None]:
        _Reporting.streamed += 1
        yield


class _LeanSchema(strawberry.Schema):
    def create_extensions_runner(self, execution_context: Any, extensions: list[SchemaExtension]) -> Any:
        return LeanExtensionsRunner(execution_context, extensions)


@pytest.mark.parametrize("reporting", [False, True])
async def test_the_lean_runner_leaves_out_only_extensions_without_results_or_stream_hooks(reporting: bool) -> None:
    """The gateway's extensions runner skips what the base extension class does (nothing); an extension that
    reports results or hooks streamed results is still called for every result."""
    extensions: list[Any] = [lambda: QueryDepthLimiter(max_depth=5), ErrorCodes]
    schema = _LeanSchema(query=Query, subscription=Subscription, types=[Pet],
                         extensions=[*extensions, _Reporting] if reporting else extensions)  # fmt: skip
    streamed = _Reporting.streamed
    results = [r async for r in await schema.subscribe("subscription { happened { thing { name } } }")]
    assert [r.data for r in results] == [{"happened": {"thing": {"name": "box"}}}]
    assert results[0].extensions == ({"reported": True} if reporting else {})
    assert _Reporting.streamed - streamed == (1 if reporting else 0)
