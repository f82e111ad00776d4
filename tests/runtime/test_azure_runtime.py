"""The Azure Functions host's view of azure.zip under 3.12: what the worker's indexing reports (one HTTP function,
catch-all route, every method, the auth level from the app setting), and the package's host-side files as the
Flex Consumption plan reads them. Requests through the indexed function are in test_runtime_contract."""

from __future__ import annotations

import json

import pytest

from functions.devtools import runtimes

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
# Flex Consumption takes the runtime from the app's functionAppConfig, and refuses these app settings
# (Source: learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations:
# FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION, WEBSITE_RUN_FROM_PACKAGE, ... "not supported").
FLEX_UNSUPPORTED = (
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
)


def http_trigger(functions: list[dict]) -> dict:
    (function,) = functions
    assert function["name"] == "serve" and function["http"] is True
    trigger, output = function["bindings"]
    assert output == {"direction": "OUT", "type": "http", "name": "$return"}
    assert trigger["type"] == "httpTrigger" and trigger["direction"] == "IN"
    return trigger


def test_indexing_finds_one_catch_all_http_function_needing_a_function_key(azure_host):
    trigger = http_trigger(azure_host.functions)
    assert trigger["route"] == "{*path}"  # every path reaches core, which answers 404 itself
    assert trigger["methods"] == METHODS  # every method reaches core, which answers 405 with Allow itself
    assert trigger["authLevel"] == "FUNCTION"  # the default: callers need a function key


@pytest.mark.parametrize("setting, level", [("ANONYMOUS", "ANONYMOUS"), ("function", "FUNCTION")])
def test_the_auth_level_comes_from_the_app_setting(setting, level, python312, azure_root, tmp_path):
    with open(tmp_path / "azure.log", "w") as err:
        host = runtimes.AzureHost(python312, azure_root, {"TINYLLM_AZURE_AUTH_LEVEL": setting}, err)
    try:
        assert http_trigger(host.functions)["authLevel"] == level
    finally:
        host.close()


def test_host_json_serves_the_routes_at_the_root_with_the_v4_extension_bundle(azure_root):
    host = json.loads((azure_root / "host.json").read_text())
    assert host["version"] == "2.0"
    # Source: learn.microsoft.com/azure/azure-functions/functions-bindings-http-webhook#hostjson-settings
    # (extensions.http.routePrefix, "the default value is api"): "" makes the routes /v1/..., as on the other clouds.
    assert host["extensions"]["http"]["routePrefix"] == ""
    assert host["extensionBundle"] == {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}


def test_the_package_is_what_flex_consumption_runs_without_a_remote_build(azure_root):
    own_files = [p for p in azure_root.rglob("*") if p.is_file() and ".python_packages" not in p.parts]
    assert {p.name for p in own_files if p.parent == azure_root} == {"function_app.py", "host.json"}
    assert not (azure_root / "local.settings.json").exists()  # app settings come from the app, not the package
    assert not (azure_root / "requirements.txt").exists()  # dependencies are vendored: no build on deploy
    assert (azure_root / ".python_packages" / "lib" / "site-packages" / "azure" / "functions").is_dir()
    for path in own_files:
        if path.suffix in (".py", ".json"):
            text = path.read_text(encoding="utf-8")
            assert not [name for name in FLEX_UNSUPPORTED if name in text], path
