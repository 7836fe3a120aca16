"""Assets: API side (exports.py, pool genesys_api) and DuckDB side (tables.py, pool duckdb_writer)."""

from wfm_pipeline.defs.assets.exports import adherence_export, user_details_export
from wfm_pipeline.defs.assets.tables import adherence_tables, user_details_tables

ALL_ASSETS = (adherence_export, user_details_export, adherence_tables, user_details_tables)

__all__ = ["ALL_ASSETS", "adherence_export", "adherence_tables", "user_details_export", "user_details_tables"]
