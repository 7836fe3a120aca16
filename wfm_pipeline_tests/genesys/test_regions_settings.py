"""Regions and settings: resolution by name or domain, env handling and the errors users see."""

from __future__ import annotations

import pytest

import wfm_pipeline.genesys as genesys
from wfm_pipeline import wire
from wfm_pipeline.genesys import (
    ClientSettings,
    ConfigurationError,
    GenesysError,
    UnknownRegionError,
    resolve_region,
)
from wfm_pipeline.genesys._settings import ENV_CLIENT_ID, ENV_CLIENT_SECRET, ENV_REGION, ENV_SANDBOX_URL


@pytest.mark.parametrize(
    ("given", "api", "login"),
    [
        ("eu_west_1", "https://api.mypurecloud.ie", "https://login.mypurecloud.ie"),
        ("eu-west-1", "https://api.mypurecloud.ie", "https://login.mypurecloud.ie"),
        ("mypurecloud.ie", "https://api.mypurecloud.ie", "https://login.mypurecloud.ie"),
        ("api.mypurecloud.com.au", "https://api.mypurecloud.com.au", "https://login.mypurecloud.com.au"),
        ("US_EAST_1", "https://api.mypurecloud.com", "https://login.mypurecloud.com"),
        ("usw2.pure.cloud", "https://api.usw2.pure.cloud", "https://login.usw2.pure.cloud"),
    ],
)
def test_region_by_name_or_domain(given: str, api: str, login: str) -> None:
    region = resolve_region(given)
    assert (region.api_base_url, region.login_base_url) == (api, login)


def test_unknown_region_lists_valid_ones() -> None:
    with pytest.raises(UnknownRegionError) as caught:
        resolve_region("mars_north_1")
    text = str(caught.value)
    assert "mars_north_1" in text
    for name in ("us_east_1", "eu_west_1", "ap_southeast_2", "mypurecloud.de"):
        assert name in text


def test_no_env_means_sandbox_with_sandbox_credentials() -> None:
    settings = ClientSettings.from_env({})
    assert settings.api_base_url == f"http://{wire.SANDBOX_DEFAULT_HOST}:{wire.SANDBOX_DEFAULT_PORT}"
    assert (
        settings.login_base_url == settings.api_base_url
    )  # no "//api." -> OAuth on the same host (SDK rule)
    assert (settings.client_id, settings.client_secret) == (
        wire.SANDBOX_CLIENT_ID,
        wire.SANDBOX_CLIENT_SECRET,
    )


def test_sandbox_url_from_env() -> None:
    settings = ClientSettings.from_env({ENV_SANDBOX_URL: "http://127.0.0.1:9999/"})
    assert settings.api_base_url == "http://127.0.0.1:9999"


@pytest.mark.parametrize(
    ("env", "missing"),
    [({ENV_CLIENT_ID: "abc"}, ENV_CLIENT_SECRET), ({ENV_CLIENT_SECRET: "s3cret"}, ENV_CLIENT_ID)],
)
def test_half_configured_credentials_name_the_missing_variable(env: dict[str, str], missing: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ClientSettings.from_env(env)
    assert str(caught.value).startswith(f"{missing} is unset or blank")


def test_env_credentials_with_region() -> None:
    settings = ClientSettings.from_env(
        {ENV_CLIENT_ID: "cid", ENV_CLIENT_SECRET: "sec", ENV_REGION: "eu_central_1"}
    )
    assert settings.api_base_url == "https://api.mypurecloud.de"
    assert settings.login_base_url == "https://login.mypurecloud.de"
    assert ENV_CLIENT_ID in settings.client_id_source
    assert ENV_CLIENT_SECRET in settings.client_secret_source


def test_env_unknown_region_is_a_configuration_error_listing_regions() -> None:
    with pytest.raises(ConfigurationError) as caught:
        ClientSettings.from_env({ENV_CLIENT_ID: "cid", ENV_CLIENT_SECRET: "sec", ENV_REGION: "atlantis"})
    assert "atlantis" in str(caught.value)
    assert "eu_west_2" in str(caught.value)


def test_default_region_is_us_east_1() -> None:
    settings = ClientSettings.from_env({ENV_CLIENT_ID: "cid", ENV_CLIENT_SECRET: "sec"})
    assert settings.api_base_url == "https://api.mypurecloud.com"


def test_every_exported_error_is_in_the_client_error_tree() -> None:
    exported = [getattr(genesys, name) for name in genesys.__all__]
    errors = [item for item in exported if isinstance(item, type) and issubclass(item, Exception)]
    assert {e.__name__ for e in errors} >= {"BudgetWaitTimeout", "StateFileError", "UnknownRegionError"}
    assert [e.__name__ for e in errors if not issubclass(e, GenesysError)] == []
    assert issubclass(UnknownRegionError, ConfigurationError)  # a settings mistake, raised before any request
