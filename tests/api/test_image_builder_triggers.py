"""Image templates' SourceImage triggers through azure-mgmt-imagebuilder 2.0's `triggers` operations: create, get,
list, delete, and a run that starts by itself when a new latest version of the template's source definition lands
(the fake engine builds, tests/fake_engine.py). New source versions are made from an existing one through
azure-mgmt-compute (metadata only, no bytes copied), so each is as quick as a version can be."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from tests.azurite import azurite  # noqa: F401  (the session fixture)

from .builder_support import definition, log_lines, template, wait_for
from .test_image_builder import (  # noqa: F401  (fixtures)
    compute,
    ib,
    rg,
    serve_builder,
    sub,
)

KIND = {"properties": {"kind": "SourceImage"}}


@pytest.fixture(scope="module")
def builder_server(backend, azurite, tmp_path_factory):  # noqa: F811  (the session fixture)
    """Two workers: a triggered run, or its trigger's job, must not wait for a long build to end."""
    with serve_builder(backend, azurite, tmp_path_factory.mktemp(f"triggers-{backend}"), head="workers = 2\n") as srv:
        yield srv


def new_version(compute, rg, from_id: str, name: str, exclude: bool = False):
    body = {
        "location": "eastus",
        "properties": {
            "storageProfile": {"source": {"id": from_id}},
            "publishingProfile": {"excludeFromLatest": exclude},
        },
    }
    return compute.gallery_image_versions.begin_create_or_update(rg, "gal1", "tiny", name, body).result()


def finished_run_after(ib, rg, name, before):
    """The template's next finished run after the one that started at `before` (None: no run yet)."""

    def done():
        status = ib.virtual_machine_image_templates.get(rg, name).last_run_status
        if status is None or status.start_time == before or status.run_state in ("Running", "Canceling"):
            return None
        return status

    return wait_for(done, timeout=90)


@pytest.fixture
def source(ib, compute, sub, rg):
    """A source definition with version 1.0.0 (built once from the platform image), and a template that follows its
    latest version into a second definition."""
    tiny = definition(compute, rg)
    ib.virtual_machine_image_templates.begin_create_or_update(
        rg, "base", template(sub, rg, tiny, [{"type": "Shell", "name": "b", "inline": ["echo base"]}])
    ).result()
    ib.virtual_machine_image_templates.begin_run(rg, "base").result()
    out = definition(compute, rg, name="out")
    follow = template(sub, rg, out, [{"type": "Shell", "name": "f", "inline": ["echo following"]}])
    follow["properties"]["source"] = {"type": "SharedImageVersion", "imageVersionId": f"{tiny}/versions/latest"}
    ib.virtual_machine_image_templates.begin_create_or_update(rg, "follow", follow).result()
    return tiny


def test_a_new_latest_source_version_runs_the_template_and_an_excluded_one_does_not(ib, compute, rg, source):
    made = ib.triggers.begin_create_or_update(rg, "follow", "source", KIND).result()
    assert (made.name, made.type) == ("source", "Microsoft.VirtualMachineImages/imageTemplates/triggers")
    assert made.properties.kind == "SourceImage" and made.properties.provisioning_state == "Succeeded"
    assert made.properties.status.code == "Healthy" and made.properties.status.time is not None
    assert ib.triggers.get(rg, "follow", "source").id == made.id
    assert [t.name for t in ib.triggers.list_by_image_template(rg, "follow")] == ["source"]
    assert ib.virtual_machine_image_templates.get(rg, "follow").last_run_status is None

    v1 = new_version(compute, rg, f"{source}/versions/1.0.0", "1.0.1")
    first = finished_run_after(ib, rg, "follow", None)
    assert first.run_state == "Succeeded", first.message
    status = ib.triggers.get(rg, "follow", "source").properties.status
    assert status.code == "Healthy" and v1.id in status.message and "started" in status.message
    assert ib.virtual_machine_image_templates.get_run_output(rg, "follow", "gallery").artifact_id.endswith("1.0.0")

    # Excluded from latest: the template's source does not change, so nothing runs. The next real version does run,
    # exactly once: had the excluded one started a run, that run would show as a second output version, or have made
    # the next version's trigger find a run in progress.
    new_version(compute, rg, f"{source}/versions/1.0.0", "1.0.2", exclude=True)
    v3 = new_version(compute, rg, f"{source}/versions/1.0.0", "1.0.3")
    second = finished_run_after(ib, rg, "follow", first.start_time)
    assert second.run_state == "Succeeded", second.message
    status = ib.triggers.get(rg, "follow", "source").properties.status
    assert v3.id in status.message and "started" in status.message
    outputs = compute.gallery_image_versions.list_by_gallery_image(rg, "gal1", "out")
    assert sorted(v.name for v in outputs) == ["1.0.0", "1.0.1"]

    ib.triggers.begin_delete(rg, "follow", "source").result()
    assert list(ib.triggers.list_by_image_template(rg, "follow")) == []
    with pytest.raises(HttpResponseError) as err:
        ib.triggers.get(rg, "follow", "source")
    assert err.value.status_code == 404


def test_a_run_in_progress_is_not_started_twice(ib, compute, sub, rg, source):
    busy = template(sub, rg, source, [{"type": "Shell", "name": "long", "inline": ["echo going", "sleep 120"]}])
    busy["properties"]["source"] = {"type": "SharedImageVersion", "imageVersionId": f"{source}/versions/latest"}
    busy["properties"]["distribute"][0]["galleryImageId"] = definition(compute, rg, name="out")
    ib.virtual_machine_image_templates.begin_create_or_update(rg, "busy", busy).result()
    ib.triggers.begin_create_or_update(rg, "busy", "source", KIND).result()
    ib.virtual_machine_image_templates.begin_run(rg, "busy")
    wait_for(lambda: "[1 long] going" in log_lines(ib, sub, rg, "busy"))
    started = ib.virtual_machine_image_templates.get(rg, "busy").last_run_status.start_time

    version = new_version(compute, rg, f"{source}/versions/1.0.0", "1.0.1")
    status = wait_for(
        lambda: (s := ib.triggers.get(rg, "busy", "source").properties.status) and version.id in s.message and s
    )
    assert status.code == "Healthy" and "no second run was started" in status.message
    running = ib.virtual_machine_image_templates.get(rg, "busy").last_run_status
    assert (running.run_state, running.start_time) == ("Running", started)
    ib.virtual_machine_image_templates.begin_cancel(rg, "busy").result()


def test_a_trigger_needs_a_template_that_follows_a_latest_gallery_version(ib, compute, sub, rg):
    tiny = definition(compute, rg)
    ib.virtual_machine_image_templates.begin_create_or_update(
        rg, "pir", template(sub, rg, tiny, [{"type": "Shell", "name": "a", "inline": ["echo a"]}])
    ).result()
    with pytest.raises(HttpResponseError) as err:
        ib.triggers.begin_create_or_update(rg, "pir", "source", KIND).result()
    assert err.value.status_code == 400 and err.value.error.target == "properties.source.type"
    assert list(ib.triggers.list_by_image_template(rg, "pir")) == []
    with pytest.raises(HttpResponseError) as err:
        ib.triggers.begin_create_or_update(rg, "pir", "other", {"properties": {"kind": "Schedule"}}).result()
    assert err.value.status_code == 400 and err.value.error.target == "properties.kind"
    with pytest.raises(HttpResponseError) as err:
        ib.triggers.begin_create_or_update(rg, "missing", "source", KIND).result()
    assert err.value.status_code == 404


def test_the_cli_manages_triggers(builder_server, sub, rg, source):
    from tests.cli.conftest import Cli, env_for

    cli = Cli(env_for(builder_server, sub))
    args = ("-g", rg, "--image-template-name", "follow")
    made = cli.json("image", "builder", "trigger", "create", *args, "-n", "src")
    assert (made["name"], made["kind"], made["status"]["code"]) == ("src", "SourceImage", "Healthy")
    assert cli.json("image", "builder", "trigger", "show", *args, "-n", "src")["id"] == made["id"]
    assert [t["name"] for t in cli.json("image", "builder", "trigger", "list", *args)] == ["src"]
    cli.ok("image", "builder", "trigger", "delete", *args, "-n", "src")
    assert cli.json("image", "builder", "trigger", "list", *args) == []
