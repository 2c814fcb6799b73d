"""The GraphQL the jobs commands send, and resolving the short ids people type."""

from __future__ import annotations

import re
from typing import Any

from b2c.client import GraphQLClient
from b2c.errors import CliError

JOB_FIELDS = """
  id jobType tenantId status progressPercent
  progress { totalItems processedItems succeededItems failedItems percent itemsPerSecond etaSeconds message updatedAt }
  createdAt startedAt completedAt updatedAt durationMs availableAt
  errorMessage errorCategory errorClass attempt maxAttempts rootJobId retryOfJobId retriedByJobId workerId
  cancelRequested cancelReason
"""
LIST = f"""
query Jobs($filter: JobFilter, $first: Int!, $after: String) {{
  jobs(filter: $filter, first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }}
    nodes {{ {JOB_FIELDS} }}
  }}
}}"""
DETAILS = f"""
query Job($id: ID!, $last: Int!) {{
  jobDetails(id: $id) {{
    job {{ {JOB_FIELDS} errorStackTrace createdBy metadata parameters lastHeartbeatAt logSequence
           steps {{ index name status startedAt completedAt message }} }}
    attempts {{ id attempt status createdAt completedAt errorMessage errorClass }}
  }}
  jobLogs(jobId: $id, last: $last) {{ lastSequence lines {{ sequence level message timestamp stackTrace context }} }}
}}"""
LOGS = """
query Logs($id: ID!, $last: Int, $after: Int!, $level: LogLevel, $search: String) {
  jobLogs(jobId: $id, last: $last, afterSequence: $after, minLevel: $level, search: $search, first: 10000) {
    lastSequence lines { sequence level message timestamp stackTrace context }
  }
}"""
STATUS = "query($id: ID!) { job(id: $id) { id status } }"
RETRY = f"mutation($id: ID!) {{ retryJob(id: $id) {{ created job {{ {JOB_FIELDS} }} }} }}"
CANCEL = f"mutation($id: ID!, $reason: String) {{ cancelJob(id: $id, reason: $reason) {{ {JOB_FIELDS} }} }}"
PREFIX = "query($p: String!) { jobs(filter: {idPrefix: $p}, first: 3) { totalCount nodes { id } } }"

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_PREFIX = re.compile(r"^[0-9a-fA-F][0-9a-fA-F-]{3,35}$")


def resolve_job_id(client: GraphQLClient, value: str) -> str:
    """A full id as is; a short one (≥ 4 hex characters, as tables show) if exactly one job starts with it."""
    value = value.strip().lstrip("#")
    if _UUID.match(value):
        return value.lower()
    if not _PREFIX.match(value):
        raise CliError(f"{value!r} is not a job id (a UUID, or at least its first 4 characters)")
    found = client.execute(PREFIX, {"p": value})["jobs"]
    if found["totalCount"] == 0:
        raise CliError(f"no job id starts with {value}")
    if found["totalCount"] > 1:
        raise CliError(f"{found['totalCount']} jobs start with {value}; give more characters of the id")
    job_id: str = found["nodes"][0]["id"]
    return job_id


def matches(job: dict[str, Any], flt: dict[str, Any]) -> bool:
    """Whether a job (from an event) passes the list filter the watch was started with."""
    if flt.get("status") and job["status"] not in flt["status"]:
        return False
    if flt.get("jobType") and job["jobType"] not in flt["jobType"]:
        return False
    if flt.get("tenantId") and job["tenantId"] not in flt["tenantId"]:
        return False
    return not (flt.get("createdAfter") and job["createdAt"] < flt["createdAfter"])
