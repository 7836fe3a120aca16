"""The loaded definitions, as the Dagster UI and the daemon see them, pinned in a snapshot.

A change to an asset key, group, partitioning, pool, retry policy, check, sensor, job or a resource's config
fields shows up here as a diff to review. After an intended change, regenerate the snapshot with
``WFM_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest wfm_pipeline_tests/pipeline/test_definitions_snapshot.py``
and commit it with the change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg

from wfm_pipeline.defs.build import build_definitions
from wfm_pipeline.defs.settings import PipelineSettings

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"
# Fixed settings: the snapshot must not depend on the machine's environment.
SANDBOX_ENV = {"WFM_DATA_DIR": "/data", "WFM_PARTITIONS_START": "2023-01-01"}
ORG_ENV = {
    **SANDBOX_ENV,
    "GENESYSCLOUD_OAUTHCLIENT_ID": "id-value",
    "GENESYSCLOUD_OAUTHCLIENT_SECRET": "secret-value",
}


def _config_value(value: object) -> object:
    """An ``EnvVar`` is shown by its name (what the Resources page shows); other values as they are."""
    if isinstance(value, dg.EnvVar):
        return {"env": value.env_var_name}
    return value


def _resource(resource: dg.ConfigurableResource) -> dict[str, Any]:
    fields = type(resource).model_fields
    return {
        "type": type(resource).__name__,
        "config": {name: _config_value(getattr(resource, name)) for name in sorted(fields)},
    }


def _assets(defs: dg.Definitions) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for assets_def in defs.assets or []:
        assert isinstance(assets_def, dg.AssetsDefinition)
        retry = assets_def.op.retry_policy
        out[assets_def.op.name] = {
            "assets": {
                spec.key.to_user_string(): {
                    "group": spec.group_name,
                    "description": spec.description,
                    "kinds": sorted(spec.kinds),
                    "deps": sorted(dep.asset_key.to_user_string() for dep in spec.deps),
                    "metadata": {key: str(value) for key, value in sorted(spec.metadata.items())},
                    "owners": list(spec.owners),
                    "tags": dict(sorted(spec.tags.items())),
                }
                for spec in assets_def.specs
            },
            "checks": {
                f"{check.asset_key.to_user_string()}.{check.name}": {
                    "blocking": check.blocking,
                    "description": check.description,
                    "partitioned": check.partitions_def is not None,
                }
                for check in assets_def.check_specs
            },
            "partitions": str(assets_def.partitions_def),
            "backfill_policy": str(assets_def.backfill_policy),
            "pool": assets_def.op.pool,
            "retry_policy": None
            if retry is None
            else f"{retry.max_retries} x {retry.delay}s {retry.backoff}",
            "resources": sorted(assets_def.required_resource_keys),
            "can_subset": assets_def.can_subset,
        }
    return out


def snapshot_of(defs: dg.Definitions) -> dict[str, Any]:
    return {
        "assets": _assets(defs),
        "jobs": sorted(job.name for job in defs.jobs or []),
        "asset_checks": sorted(
            f"{key.asset_key.to_user_string()}.{key.name}"
            for checks_def in defs.asset_checks or []
            for key in checks_def.check_keys
        ),
        "sensors": {
            sensor.name: {
                "interval_seconds": sensor.minimum_interval_seconds,
                "default_status": str(sensor.default_status),
                "jobs": sorted(target.job_name for target in sensor.targets),
            }
            for sensor in defs.sensors or []
        },
        "resources": {name: _resource(resource) for name, resource in sorted((defs.resources or {}).items())},
    }


def _both() -> dict[str, Any]:
    return {
        "sandbox": snapshot_of(build_definitions(PipelineSettings.from_env(SANDBOX_ENV))),
        "org": snapshot_of(build_definitions(PipelineSettings.from_env(ORG_ENV)))["resources"],
    }


def test_loaded_definitions_match_the_snapshot() -> None:
    current = _both()
    if os.environ.get("WFM_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert current == json.loads(SNAPSHOT.read_text())


def test_credentials_are_environment_variables_never_values() -> None:
    text = json.dumps(_both())
    assert "id-value" not in text and "secret-value" not in text
    org = _both()["org"]["genesys"]["config"]
    assert org["client_id"] == {"env": "GENESYSCLOUD_OAUTHCLIENT_ID"}
    assert org["client_secret"] == {"env": "GENESYSCLOUD_OAUTHCLIENT_SECRET"}
    assert org["region"] == ""  # unset: Genesys's default region, never an unset-variable error
