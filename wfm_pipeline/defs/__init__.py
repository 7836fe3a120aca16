"""Dagster definitions of the pipeline: partitions, resources, assets, checks, automation."""
