"""Catalogs: load and validate catalogs/ and user directories; importers for outside formats."""

from planner.catalog.catalog import Catalog, CatalogError

__all__ = ["Catalog", "CatalogError"]
