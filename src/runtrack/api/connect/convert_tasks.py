"""TaskService conversion: flyteidl2 task messages ↔ domain records."""

from __future__ import annotations

from typing import Any

from flyteidl2.task import task_definition_pb2 as td
from flyteidl2.task import task_service_pb2 as ts_pb

from runtrack.api.connect.convert_runs import from_json, identity, to_json, ts
from runtrack.domain.models import Task
from runtrack.errors import InvalidArgument
from runtrack.storage.tasks import TaskKey, TaskScope


def task_key(tid: td.TaskIdentifier) -> TaskKey:
    return TaskKey(tid.org, tid.project, tid.domain, tid.name, tid.version)


def task_id_pb(task: Task) -> td.TaskIdentifier:
    return td.TaskIdentifier(
        org=task.org, project=task.project, domain=task.domain, name=task.name, version=task.version
    )


def _spec(task: Task) -> td.TaskSpec:
    spec: td.TaskSpec = from_json(task.spec, td.TaskSpec())
    return spec


def task_metadata_pb(task: Task, spec: td.TaskSpec | None = None) -> td.TaskMetadata:
    spec = spec if spec is not None else _spec(task)
    return td.TaskMetadata(
        deployed_by=identity(task.deployed_by),
        short_name=spec.short_name or task.name.rsplit(".", 1)[-1],
        deployed_at=ts(task.deployed_at),
        environment_name=spec.environment.name,
        short_description=spec.documentation.short_description,
    )


def task_pb(task: Task) -> td.Task:
    return td.Task(task_id=task_id_pb(task), metadata=task_metadata_pb(task))


def task_details_pb(task: Task) -> td.TaskDetails:
    spec = _spec(task)
    return td.TaskDetails(task_id=task_id_pb(task), metadata=task_metadata_pb(task, spec), spec=spec)


def version_pb(task: Task) -> ts_pb.ListVersionsResponse.VersionResponse:
    return ts_pb.ListVersionsResponse.VersionResponse(
        version=task.version, deployed_at=ts(task.deployed_at), deployed_by=identity(task.deployed_by)
    )


def list_scope(req: ts_pb.ListTasksRequest) -> TaskScope:
    """``org`` or ``project_id`` (one of them is required)."""
    which = req.WhichOneof("scope_by")
    if which == "project_id":
        p = req.project_id
        return TaskScope(org=p.organization, project=p.name, domain=p.domain)
    if which == "org":
        return TaskScope(org=req.org)
    raise InvalidArgument("scope_by: one of org or project_id is required")


def versions_scope(name: td.TaskName) -> TaskScope:
    return TaskScope(org=name.org, project=name.project, domain=name.domain, name=name.name)


def spec_json(spec: td.TaskSpec) -> Any:
    return to_json(spec)
