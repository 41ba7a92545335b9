"""RunService requests → domain: the run to create, listing scopes and page sizes."""

from __future__ import annotations

from flyteidl2.common import list_pb2
from flyteidl2.task import task_definition_pb2 as td
from flyteidl2.workflow import run_definition_pb2 as rd
from flyteidl2.workflow import run_service_pb2 as rs

from runtrack.api.connect.convert_runs import SOURCES, run_id_from_pb, to_json
from runtrack.domain.filters import Node, Op, Pred, and_
from runtrack.domain.models import NewRun, RunId, TaskRef
from runtrack.domain.phases import Phase
from runtrack.domain.query import DEFAULT_LIMIT, MAX_LIMIT
from runtrack.errors import InvalidArgument


def page_limit(request: list_pb2.ListRequest, field: str = "request.limit") -> int:
    """``limit`` 0 means the default (50); negative or above 200 is InvalidArgument."""
    limit = int(request.limit)
    if limit == 0:
        return DEFAULT_LIMIT
    if limit < 0 or limit > MAX_LIMIT:
        raise InvalidArgument(f"{field}: must be between 0 and {MAX_LIMIT}, got {limit}")
    return limit


def create_target(req: rs.CreateRunRequest) -> tuple[RunId, bool]:
    """The run id to create and whether its name must be generated (only ``project_id`` given)."""
    if req.HasField("run_id"):
        return run_id_from_pb(req.run_id), False
    p = req.project_id
    for name, value in (("organization", p.organization), ("name", p.name), ("domain", p.domain)):
        if not value or len(value) > 63:
            raise InvalidArgument(f"project_id.{name}: must be 1 to 63 characters")
    return RunId(p.organization, p.name, p.domain, ""), True


def new_run(req: rs.CreateRunRequest, run_id: RunId, task: TaskRef, created_by: str) -> NewRun:
    """The run to store: inputs and run spec as given, the root action's spec with the task."""
    action_spec = rd.ActionSpec(run_spec=req.run_spec if req.HasField("run_spec") else None)
    if req.HasField("task_spec"):
        action_spec.task.spec.CopyFrom(req.task_spec)
    if req.HasField("task_id"):
        action_spec.task.id.CopyFrom(req.task_id)
    labels = dict(req.run_spec.labels.values) if req.HasField("run_spec") else {}
    return NewRun(
        id=run_id,
        created_by=created_by,
        task=task,
        trigger_name=req.trigger_name.name if req.HasField("trigger_name") and req.trigger_name.name else None,
        source=SOURCES.get(req.source, ""),
        labels=labels,
        spec=to_json(req.run_spec) if req.HasField("run_spec") else None,
        inputs=to_json(req.inputs) if req.HasField("inputs") else None,
        action_spec=to_json(action_spec),
    )


def task_ref_from_spec(spec: td.TaskSpec, task_id: td.TaskIdentifier | None = None) -> TaskRef:
    """The task a run executes, from an inline spec (and the id it was deployed under, if any)."""
    tid = spec.task_template.id
    name = (task_id.name if task_id else "") or tid.name or spec.short_name
    if not name:
        raise InvalidArgument("task_spec.task_template.id.name: the task has no name")
    return TaskRef(
        name=name,
        version=(task_id.version if task_id else "") or tid.version,
        project=(task_id.project if task_id else "") or tid.project or None,
        domain=(task_id.domain if task_id else "") or tid.domain or None,
        type=spec.task_template.type,
    )


def _eq(field: str, value: str) -> Pred | None:
    return Pred(field, Op.EQ, value) if value else None


def list_runs_scope(req: rs.ListRunsRequest) -> Node | None:
    """The scope of ``ListRunsRequest`` (``scope_by``; required) and ``paused_actions_only`` as a filter.

    ``paused_actions_only`` keeps runs whose phase (their root action's) is PAUSED.
    """
    which = req.WhichOneof("scope_by")
    scope: Node | None
    if which == "org":
        scope = _eq("org", req.org)
    elif which == "project_id":
        p = req.project_id
        scope = and_(_eq("org", p.organization), _eq("project", p.name), _eq("domain", p.domain))
    elif which == "trigger_name":
        t = req.trigger_name
        scope = and_(
            _eq("org", t.org), _eq("project", t.project), _eq("domain", t.domain),
            _eq("trigger_name", t.name), _eq("task_name", t.task_name),
        )
    elif which == "task_name":
        n = req.task_name
        scope = and_(_eq("org", n.org), _eq("project", n.project), _eq("domain", n.domain), _eq("task_name", n.name))
    elif which == "task_id":
        i = req.task_id
        scope = and_(
            _eq("org", i.org), _eq("project", i.project), _eq("domain", i.domain),
            _eq("task_name", i.name), _eq("task_version", i.version),
        )
    else:
        raise InvalidArgument("scope_by: one of org, project_id, trigger_name, task_name or task_id is required")
    if req.paused_actions_only:
        scope = and_(scope, Pred("phase", Op.EQ, str(int(Phase.PAUSED))))
    return scope
