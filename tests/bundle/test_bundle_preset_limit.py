"""A package over the size limit is refused with an error that names the model's preset and the limit."""

from __future__ import annotations

import json

import pytest

from infra.bundle import MAX_ZIPPED, MIB, BundleError, check_budget


def test_an_oversized_package_names_the_preset_and_the_limit(tmp_path):
    (tmp_path / "aws" / "model").mkdir(parents=True)
    manifest = {"train_config": {"preset": "base"}, "files": {}}
    (tmp_path / "aws" / "model" / "manifest.json").write_text(json.dumps(manifest))
    zip_path = tmp_path / "aws.zip"
    with pytest.raises(BundleError) as refused:
        check_budget(zip_path, MAX_ZIPPED + MIB, 100 * MIB)
    assert "preset 'base'" in str(refused.value) and "limit of 50 MiB zipped / 250 MiB unzipped" in str(refused.value)
    check_budget(zip_path, MAX_ZIPPED, 100 * MIB)  # at the limit: accepted
