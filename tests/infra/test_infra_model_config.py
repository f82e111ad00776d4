"""`tinyllm:modelDir` chooses the model a stack deploys, and the instance memory follows it: chosen by the rule
when `tinyllm:memoryMb` is unset, refused before any resource when it is set too small, by the program (under
Pulumi mocks) and by `make preflight`. Model directories are synthetic (tests/synthetic_models.py)."""

from __future__ import annotations

import pytest
from synthetic_models import make_model_dir
from test_infra_preflight import run_without_cloud

from infra.config import ConfigError, from_values
from infra.memory import default_memory_mb
from infra.model_info import read_model

MEMORY_INPUT = {  # where each cloud's function takes its memory
    "aws": ("aws:lambda/function:Function", lambda inputs: inputs["memorySize"]),
    "gcp": (
        "gcp:cloudfunctionsv2/function:Function",
        lambda inputs: int(inputs["serviceConfig"]["availableMemory"][:-2]),
    ),
    "azure": (
        "azure-native:web:WebApp",
        lambda inputs: inputs["functionAppConfig"]["scaleAndConcurrency"]["instanceMemoryMB"],
    ),
}


@pytest.fixture(scope="module")
def gpt2_fp32(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("models"), "gpt2-fp32", "gpt2", "fp32", hashed=False)


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_the_memory_follows_the_model_the_stack_deploys(run_stack, cloud, gpt2_fp32):
    deployment = run_stack(cloud, modelDir=str(gpt2_fp32))
    resource_type, memory_of = MEMORY_INPUT[cloud]
    memory = memory_of(deployment.one(resource_type).inputs)
    assert memory == default_memory_mb(cloud, read_model(gpt2_fp32, verify=False))
    assert memory == {"aws": read_model(gpt2_fp32, verify=False).required_mb, "gcp": 2048, "azure": 2048}[cloud]


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_the_default_model_keeps_the_stacks_former_memory(run_stack, cloud):
    resource_type, memory_of = MEMORY_INPUT[cloud]
    assert memory_of(run_stack(cloud).one(resource_type).inputs) == {"aws": 1024, "gcp": 1024, "azure": 2048}[cloud]


@pytest.mark.parametrize("cloud, memory", [("aws", 1024), ("gcp", 1024), ("azure", 512)])
def test_a_configured_memory_too_small_for_the_model_is_refused_before_any_resource(
    run_stack, cloud, memory, gpt2_fp32
):
    with pytest.raises(ConfigError, match=f"tinyllm:memoryMb {memory} is too small for model 'gpt2-fp32'"):
        run_stack(cloud, modelDir=str(gpt2_fp32), memoryMb=memory)


def test_a_configured_memory_large_enough_is_kept(run_stack, gpt2_fp32):
    deployment = run_stack("azure", modelDir=str(gpt2_fp32), memoryMb=4096)
    resource_type, memory_of = MEMORY_INPUT["azure"]
    assert memory_of(deployment.one(resource_type).inputs) == 4096


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"memoryMb": "100"}, "tinyllm:memoryMb on Lambda must be 128 to 10240"),
        ({"memoryMb": "-1"}, "tinyllm:memoryMb on Lambda must be 128 to 10240"),
        ({"modelDir": "no/such/model"}, "tinyllm:modelDir: .*no/such/model: no such directory"),
    ],
)
def test_bad_memory_or_model_settings_are_refused_naming_the_key(overrides, message):
    values = {"tinyllm:cloud": "aws", "aws:region": "eu-west-1"} | {f"tinyllm:{k}": v for k, v in overrides.items()}
    with pytest.raises(ConfigError, match=message):
        from_values(values.get)


def test_a_model_directory_without_a_manifest_is_refused_naming_the_key(tmp_path):
    (tmp_path / "empty").mkdir()
    values = {"tinyllm:cloud": "gcp", "gcp:region": "europe-west1", "tinyllm:modelDir": str(tmp_path / "empty")}
    with pytest.raises(ConfigError, match=r"tinyllm:modelDir: .*no manifest\.json"):
        from_values(values.get)


def fake_pulumi(tmp_path, config: dict) -> str:
    """A `pulumi` on PATH that is logged in and answers `config --json` with these values (like the CLI)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    answer = {key: {"value": value, "secret": False} for key, value in config.items()}
    (bin_dir / "pulumi").write_text(
        "#!/usr/bin/env python3\nimport json, sys\nargs = sys.argv[1:]\n"
        f"print('alice') if args[0] == 'whoami' else print(json.dumps({answer!r}))\n"
    )
    (bin_dir / "pulumi").chmod(0o755)
    return f"{bin_dir}:/usr/bin:/bin"


def test_preflight_refuses_a_memory_too_small_for_the_model(tmp_path, monkeypatch, gpt2_fp32):
    config = {"tinyllm:cloud": "gcp", "gcp:region": "europe-west1", "tinyllm:modelDir": str(gpt2_fp32)}
    monkeypatch.setenv("PATH", fake_pulumi(tmp_path, config | {"tinyllm:memoryMb": "1024"}))
    report = run_without_cloud(monkeypatch, "gcp")
    ((what, fix),) = report.problems
    assert "tinyllm:memoryMb 1024 is too small for model 'gpt2-fp32' (fp32, 124.4 M parameters)" in what
    assert "set it to 2048 or more" in what and "pulumi config set" in fix
    assert report.seen == []  # the cloud is not even asked


def test_preflight_reports_the_model_and_the_memory_it_chose(tmp_path, monkeypatch, gpt2_fp32):
    config = {"tinyllm:cloud": "gcp", "gcp:region": "europe-west1", "tinyllm:modelDir": str(gpt2_fp32)}
    monkeypatch.setenv("PATH", fake_pulumi(tmp_path, config))
    report = run_without_cloud(monkeypatch, "gcp")
    assert report.problems == []
    model = read_model(gpt2_fp32, verify=False)
    assert f"model: {model.describe()} needs {model.required_mb} MB; instance memory 2048 MB" in report.ok
    (seen,) = report.seen
    assert seen.memory_mb == 2048
