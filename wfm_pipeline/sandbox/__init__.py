"""Genesys Cloud sandbox: a faithful local emulator of the APIs the pipeline calls.

Kept import-light: the data model lives in ``wfm_pipeline.sandbox.org`` (``OrgConfig``, ``SandboxOrg``)
and is loaded on first attribute access, so ``import wfm_pipeline.sandbox.<module>`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wfm_pipeline.sandbox.org import OrgConfig, SandboxOrg

__all__ = ["OrgConfig", "SandboxOrg"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from wfm_pipeline.sandbox import org

        return getattr(org, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
