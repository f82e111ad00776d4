"""The snippet `make serve` prints names the model the server loads: a converted model is called by its own name."""

from __future__ import annotations

import json
import shutil

from functions.devtools.local import banner


def test_the_banner_calls_the_model_by_the_name_in_its_manifest(model_dir, tmp_path, monkeypatch):
    renamed = tmp_path / "model"
    shutil.copytree(model_dir, renamed)
    manifest = json.loads((renamed / "manifest.json").read_text(encoding="utf-8"))
    (renamed / "manifest.json").write_text(json.dumps({**manifest, "name": "distilgpt2"}), encoding="utf-8")
    monkeypatch.setenv("TINYLLM_MODEL_DIR", str(renamed))
    assert "model='distilgpt2'" in banner("127.0.0.1", 8080)
    monkeypatch.setenv("TINYLLM_MODEL_DIR", str(model_dir))
    assert "model='tinyllm'" in banner("127.0.0.1", 8080)
