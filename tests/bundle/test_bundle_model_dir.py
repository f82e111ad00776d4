"""`--model-dir` chooses the model a package bakes: baked as it is (exactly its manifest's files), refused in one
line (exit 2) when it is not a valid model directory, and refused when the package would pass the cloud's
documented limits, naming the model, its packing and the limit. Model directories are synthetic (tests/
synthetic_models.py): real GPT-2-family shapes, sparse or random weights."""

from __future__ import annotations

import json

import pytest
from synthetic_models import gpt2_weights_bytes, make_model_dir

from infra import bundle
from infra.bundle import LIMITS, MIB, BundleError
from infra.bundle_deps import Runtime
from infra.model_info import read_model


def aws_limit(kind: str) -> int:
    """Lambda's documented limit of this kind (bytes): `unzipped` or `direct_upload`."""
    value = getattr(LIMITS["aws"], kind)
    assert value is not None
    return value


def refusal(capsys, *argv: str) -> str:
    assert bundle.main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith("infra.bundle: ") and err.count("\n") == 1, err
    return err


def test_a_directory_that_is_not_a_model_is_refused_in_one_line(tmp_path, capsys):
    assert "no such directory" in refusal(capsys, "gcp", "--model-dir", str(tmp_path / "absent"))
    (tmp_path / "empty").mkdir()
    assert "no manifest.json" in refusal(capsys, "gcp", "--model-dir", str(tmp_path / "empty"))
    broken = make_model_dir(tmp_path, "broken", data_bytes=1024)
    (broken / "manifest.json").write_text("{not json")
    assert "not a model manifest" in refusal(capsys, "gcp", "--model-dir", str(broken))


def test_a_model_whose_files_do_not_match_its_manifest_is_refused(tmp_path, capsys):
    missing = make_model_dir(tmp_path, "missing", "distilgpt2", "int8", data_bytes=1024)
    (missing / "tokenizer.json").unlink()
    assert "tokenizer.json: listed in the manifest but not a file" in refusal(
        capsys, "gcp", "--model-dir", str(missing)
    )
    tampered = make_model_dir(tmp_path, "tampered", "distilgpt2", "int8", data_bytes=1024)
    (tampered / "config.json").write_text(json.dumps({"n_layer": 1}))
    assert "config.json: sha256 does not match" in refusal(capsys, "gcp", "--model-dir", str(tampered))


def test_the_model_is_baked_as_it_is_and_only_its_manifests_files(tmp_path):
    model = make_model_dir(tmp_path, "tiny-int8", "distilgpt2", "int8", data_bytes=4096, random=True)
    (model / "notes.txt").write_text("not in the manifest")
    built = bundle.build("gcp", dist=tmp_path / "dist", model_dir=model)
    baked = built.directory / "model"
    assert sorted(p.name for p in baked.iterdir()) == sorted(
        [*json.loads((model / "manifest.json").read_text())["files"], "manifest.json"]
    )
    assert all((baked / p.name).read_bytes() == p.read_bytes() for p in baked.iterdir())
    assert built.model == read_model(model) and built.model.dtype == "int8"


# (shape, packing) -> fits Lambda's 250 MiB unzipped? The plan: DistilGPT2 fits in fp16, GPT-2 in int8 only.
AWS_FITS = {
    ("distilgpt2", "fp32"): False,
    ("distilgpt2", "fp16"): True,
    ("distilgpt2", "int8"): True,
    ("gpt2", "fp32"): False,
    ("gpt2", "fp16"): False,
    ("gpt2", "int8"): True,
}


@pytest.mark.parametrize("shape, dtype", sorted(AWS_FITS))
def test_which_real_models_fit_each_cloud(shape, dtype, tmp_path, target_bundles):
    model = read_model(make_model_dir(tmp_path, f"{shape}-{dtype}", shape, dtype, hashed=False), verify=False)
    for cloud in ("gcp", "aws", "azure"):
        package = target_bundles[cloud]  # the default model's package: what a package holds besides the model
        unzipped = package.unzipped_bytes - package.model.file_bytes + model.file_bytes
        if cloud != "aws" or AWS_FITS[shape, dtype]:
            bundle.check_limits(cloud, model, unzipped)
            continue
        with pytest.raises(BundleError) as refused:
            bundle.check_limits(cloud, model, unzipped)
        message = str(refused.value)
        assert f"model '{shape}-{dtype}' ({dtype}," in message and "limit of 250 MiB unzipped" in message
        assert LIMITS["aws"].source in message


def test_an_over_limit_package_is_refused_before_anything_reaches_dist(tmp_path):
    over = aws_limit("unzipped") + MIB  # the model alone passes the limit: the smallest file that does
    assert over < gpt2_weights_bytes("gpt2", "fp16") + 60 * MIB
    model = make_model_dir(tmp_path, "gpt2-fp16", "gpt2", "fp16", data_bytes=over)
    with pytest.raises(BundleError, match=r"model 'gpt2-fp16' \(fp16, 124\.4 M parameters\).*250 MiB unzipped"):
        bundle.build("aws", runtime=Runtime.local(), dist=tmp_path / "dist", model_dir=model)
    assert not (tmp_path / "dist").exists()  # refused before anything is copied or installed


@pytest.mark.parametrize("cloud, zipped, through_s3", [("aws", 50, False), ("aws", 51, True), ("gcp", 51, False)])
def test_over_50_mib_zipped_an_aws_package_goes_through_s3_and_others_upload_as_usual(
    cloud, zipped, through_s3, tmp_path
):
    model = read_model(make_model_dir(tmp_path, "m", "distilgpt2", "int8", data_bytes=1024))
    package = bundle.Bundle(cloud, tmp_path, tmp_path / f"{cloud}.zip", "0" * 64, zipped * MIB, 200 * MIB, model)
    assert package.upload_through_storage is through_s3
    assert ("deployed through S3" in package.summary()) is through_s3
