"""Same inputs, same bytes: a rebuilt package has the same sha256, and the zip's entries carry nothing that
depends on when or where it was built (sorted names, fixed timestamp, fixed modes). Sizes stay in budget."""

from __future__ import annotations

import hashlib
import zipfile

import pytest
from bundle_packages import CLOUDS

from infra import bundle

MIB = 1024 * 1024


def test_rebuilding_gives_a_byte_identical_zip(target_bundles, tmp_path):
    first = target_bundles["aws"]
    again = bundle.build("aws", dist=tmp_path / "dist")  # other directory, fresh copies, new mtimes
    assert again.sha256 == first.sha256
    assert again.zip_path.read_bytes() == first.zip_path.read_bytes()


@pytest.mark.parametrize("cloud", CLOUDS)
def test_zip_entries_are_sorted_with_fixed_time_and_mode(cloud, target_bundles):
    with zipfile.ZipFile(target_bundles[cloud].zip_path) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} <= {0o100644, 0o100755}
    assert {i.compress_type for i in infos} == {zipfile.ZIP_DEFLATED}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_sha256_is_the_zips_and_is_written_beside_it(cloud, target_bundles):
    package = target_bundles[cloud]
    digest = hashlib.sha256(package.zip_path.read_bytes()).hexdigest()
    assert package.sha256 == digest
    sidecar = package.zip_path.with_name(package.zip_path.name + ".sha256")
    assert sidecar.read_text() == f"{digest}  {package.zip_path.name}\n"  # the format `sha256sum -c` reads


@pytest.mark.parametrize("cloud", CLOUDS)
def test_size_is_reported_and_well_within_lambdas_limits(cloud, target_bundles):
    package = target_bundles[cloud]
    with zipfile.ZipFile(package.zip_path) as archive:
        unzipped = sum(i.file_size for i in archive.infolist())
    assert (package.zipped_bytes, package.unzipped_bytes) == (package.zip_path.stat().st_size, unzipped)
    assert package.zipped_bytes <= 25 * MIB and package.unzipped_bytes <= 100 * MIB  # the aim, far below 50 / 250
