"""TaskService over Connect (connectrpc's client: binary proto, gzip request bodies)."""

from __future__ import annotations

from connectrpc.code import Code
from flyteidl2.common import identifier_pb2, list_pb2
from flyteidl2.task import task_definition_pb2 as td
from flyteidl2.task import task_service_pb2 as ts

from tests.api.connect.clients import code_of, project_id, task_client
from tests.api.connect.states import DOMAIN, ORG, PROJECT
from tests.support import ServerProcess

F = list_pb2.Filter


def _tid(name: str, version: str, project: str = PROJECT) -> td.TaskIdentifier:
    return td.TaskIdentifier(org=ORG, project=project, domain=DOMAIN, name=name, version=version)


def _spec(type_: str = "python", short: str = "") -> td.TaskSpec:
    spec = td.TaskSpec(short_name=short)
    spec.task_template.type = type_
    spec.task_template.custom.update({"image": "python:3.11", "retries": 2})
    spec.environment.name = "env"
    return spec


def test_deploy_read_and_list_tasks(server: ServerProcess) -> None:
    with task_client(server.url) as client:
        client.deploy_task(ts.DeployTaskRequest(task_id=_tid("env.train", "v1"), spec=_spec(short="train")),
                           headers={"x-runtrack-user": "bob"})
        # the same spec again is a no-op
        client.deploy_task(ts.DeployTaskRequest(task_id=_tid("env.train", "v1"), spec=_spec(short="train")))
        code, message = code_of(lambda: client.deploy_task(
            ts.DeployTaskRequest(task_id=_tid("env.train", "v1"), spec=_spec("spark"))))
        assert code is Code.ALREADY_EXISTS and "env.train" in message
        for name, version in (("env.train", "v2"), ("env.train", "v3"), ("env.eval", "v1"), ("other.x", "v1")):
            client.deploy_task(ts.DeployTaskRequest(task_id=_tid(name, version), spec=_spec()))
        client.deploy_task(ts.DeployTaskRequest(task_id=_tid("env.far", "v1", project="elsewhere"), spec=_spec()))

        details = client.get_task_details(ts.GetTaskDetailsRequest(task_id=_tid("env.train", "v1"))).details
        assert details.spec == _spec(short="train")  # stored as given
        assert details.metadata.deployed_by.user.id.subject == "bob"
        assert details.metadata.short_name == "train" and details.metadata.environment_name == "env"
        code, _ = code_of(lambda: client.get_task_details(ts.GetTaskDetailsRequest(task_id=_tid("env.nope", "v1"))))
        assert code is Code.NOT_FOUND

        proj = identifier_pb2.ProjectIdentifier(**project_id())
        listed: list[tuple[str, str]] = []
        token = ""
        while True:
            page = client.list_tasks(ts.ListTasksRequest(project_id=proj, request=list_pb2.ListRequest(
                limit=2, token=token, sort_by=list_pb2.Sort(key="created_at", direction=list_pb2.Sort.ASCENDING))))
            assert len(page.tasks) <= 2
            listed += [(t.task_id.name, t.task_id.version) for t in page.tasks]
            token = page.token
            if not token:
                break
        assert listed == [("env.train", "v1"), ("env.train", "v2"), ("env.train", "v3"), ("env.eval", "v1"),
                          ("other.x", "v1")]

        by_env = client.list_tasks(ts.ListTasksRequest(project_id=proj, request=list_pb2.ListRequest(
            filters=[F(field="name", function=F.CONTAINS, values=["env."])])))
        assert sorted({t.task_id.name for t in by_env.tasks}) == ["env.eval", "env.train"]
        # totals: the project's 5 versions, 4 of them matching the filter
        assert (by_env.metadata.total, by_env.metadata.filtered_total) == (5, 4)
        mine = client.list_tasks(ts.ListTasksRequest(
            project_id=proj, known_filters=[ts.ListTasksRequest.KnownFilter(deployed_by="bob")]))
        assert [(t.task_id.name, t.task_id.version) for t in mine.tasks] == [("env.train", "v1")]
        assert (mine.metadata.total, mine.metadata.filtered_total) == (5, 1)  # known filters count as filters
        whole_org = client.list_tasks(ts.ListTasksRequest(org=ORG))
        assert "env.far" in {t.task_id.name for t in whole_org.tasks}

        versions = client.list_versions(ts.ListVersionsRequest(
            task_name=td.TaskName(org=ORG, project=PROJECT, domain=DOMAIN, name="env.train")))
        assert [v.version for v in versions.versions] == ["v3", "v2", "v1"]  # newest first
        assert versions.versions[2].deployed_by.user.id.subject == "bob"

        code, message = code_of(lambda: client.list_tasks(ts.ListTasksRequest()))
        assert code is Code.INVALID_ARGUMENT and "scope_by" in message
        code, message = code_of(lambda: client.deploy_task(
            ts.DeployTaskRequest(task_id=_tid("env.t", "v" * 64), spec=_spec())))
        assert code is Code.INVALID_ARGUMENT and "task_id.version" in message
        code, message = code_of(lambda: client.deploy_task(ts.DeployTaskRequest(task_id=_tid("env.t", "v1"))))
        assert code is Code.INVALID_ARGUMENT and "spec" in message
