"""Genesys Cloud regions: the official SDK's ``PureCloudRegionHosts`` table (genesys_api.md §1.1).

A region is named either by the SDK enum name (``eu_west_1``) or by its domain (``mypurecloud.ie``).
The API base is ``https://api.<domain>``; the login (OAuth) base is ``https://login.<domain>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from wfm_pipeline.genesys._errors import UnknownRegionError

# SDK enum name -> domain. Order follows the SDK table so error messages list regions predictably.
REGION_DOMAINS: dict[str, str] = {
    "us_east_1": "mypurecloud.com",
    "us_east_2": "use2.us-gov-pure.cloud",
    "us_west_2": "usw2.pure.cloud",
    "ca_central_1": "cac1.pure.cloud",
    "sa_east_1": "sae1.pure.cloud",
    "mx_central_1": "mxc1.pure.cloud",
    "eu_west_1": "mypurecloud.ie",
    "eu_west_2": "euw2.pure.cloud",
    "eu_central_1": "mypurecloud.de",
    "eu_central_2": "euc2.pure.cloud",
    "eusc_de_east_1": "edee1.eusc-pure.cloud",
    "me_central_1": "mec1.pure.cloud",
    "ap_south_1": "aps1.pure.cloud",
    "ap_southeast_1": "apse1.pure.cloud",
    "ap_southeast_2": "mypurecloud.com.au",
    "ap_northeast_1": "mypurecloud.jp",
    "ap_northeast_2": "apne2.pure.cloud",
    "ap_northeast_3": "apne3.pure.cloud",
}


@dataclass(frozen=True)
class Region:
    name: str
    domain: str

    @property
    def api_base_url(self) -> str:
        return f"https://api.{self.domain}"

    @property
    def login_base_url(self) -> str:
        return f"https://login.{self.domain}"


def resolve_region(value: str) -> Region:
    """Resolve ``us_east_1`` / ``us-east-1`` / ``mypurecloud.ie`` / ``api.mypurecloud.ie`` to a Region."""
    text = value.strip().lower()
    by_name = text.replace("-", "_")
    if by_name in REGION_DOMAINS:
        return Region(by_name, REGION_DOMAINS[by_name])
    domain = text.removeprefix("https://").removeprefix("http://").rstrip("/")
    for prefix in ("api.", "login."):
        domain = domain.removeprefix(prefix)
    for name, known in REGION_DOMAINS.items():
        if domain == known:
            return Region(name, known)
    valid = ", ".join(f"{name} ({domain})" for name, domain in REGION_DOMAINS.items())
    raise UnknownRegionError(f"Unknown Genesys Cloud region {value!r}. Valid regions: {valid}")
