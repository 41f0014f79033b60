"""W3C Data Privacy Vocabulary (DPV) terms used by consent records, and the sensor-stream mapping.

Purposes, legal basis and consent statuses are DPV core terms (prefix ``dpv:`` =
https://w3id.org/dpv#); personal-data categories are DPV-PD terms (prefix ``pd:`` =
https://w3id.org/dpv/pd#). Where DPV-PD has no specific term for a city sensor stream, a term in
the Civitas extension namespace (prefix ``cvx:`` = https://civitas.city/ns/dpv-ext#) is used, each
declared narrower than a DPV-PD term so DPV-aware tools can still reason about it.

Every sensor stream maps to exactly one category. Streams of public city sensors map to
``cvx:NonPersonalEnvironmental`` and carry no personal data: they flow without consent.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = [
    "CATEGORIES",
    "DPV",
    "EXTENSION_BROADER",
    "LEGAL_BASIS_CONSENT",
    "NON_PERSONAL",
    "PD",
    "PUBLIC_STREAMS",
    "PURPOSES",
    "PURPOSE_CATEGORY",
    "STREAMS",
    "Status",
    "category_of",
    "expand",
    "is_personal_stream",
]

DPV: Final = "https://w3id.org/dpv#"
PD: Final = "https://w3id.org/dpv/pd#"
CVX: Final = "https://civitas.city/ns/dpv-ext#"

LEGAL_BASIS_CONSENT: Final = "dpv:Consent"


class Status(StrEnum):
    """Consent statuses (DPV ``dpv:ConsentStatus`` instances), by their short API names."""

    REQUESTED = "requested"
    GIVEN = "given"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    REVOKED = "revoked"
    EXPIRED = "expired"
    RENEWED = "renewed"

    @property
    def dpv(self) -> str:
        return _STATUS_TERMS[self]

    @property
    def permits_processing(self) -> bool:
        """Only given and renewed consent is a valid legal basis for processing."""
        return self in (Status.GIVEN, Status.RENEWED)


_STATUS_TERMS: Final[dict[Status, str]] = {
    Status.REQUESTED: "dpv:ConsentRequested",
    Status.GIVEN: "dpv:ConsentGiven",
    Status.REFUSED: "dpv:ConsentRefused",
    Status.WITHDRAWN: "dpv:ConsentWithdrawn",
    Status.REVOKED: "dpv:ConsentRevoked",
    Status.EXPIRED: "dpv:ConsentExpired",
    Status.RENEWED: "dpv:RenewedConsentGiven",
}

# Purposes an agency may declare and a citizen may consent to (DPV purpose taxonomy).
PURPOSES: Final[frozenset[str]] = frozenset(
    {
        "dpv:ServiceProvision",
        "dpv:PublicBenefit",
        "dpv:ImprovePublicServices",
        "dpv:ResearchAndDevelopment",
        "dpv:ProvideOfficialStatistics",
        "dpv:ServiceOptimisation",
    }
)

# Kantara Consent Receipt `purposeCategory` labels for each purpose.
PURPOSE_CATEGORY: Final[dict[str, str]] = {
    "dpv:ServiceProvision": "Core Function",
    "dpv:PublicBenefit": "Public Benefit",
    "dpv:ImprovePublicServices": "Improve Performance",
    "dpv:ResearchAndDevelopment": "Research",
    "dpv:ProvideOfficialStatistics": "Official Statistics",
    "dpv:ServiceOptimisation": "Improve Performance",
}

NON_PERSONAL: Final = "cvx:NonPersonalEnvironmental"

# Personal-data categories a citizen may consent to share.
CATEGORIES: Final[frozenset[str]] = frozenset(
    {
        "pd:Location",
        "pd:VehicleUsage",
        "pd:TravelHistory",
        "cvx:HouseholdEnergyUse",
        "cvx:HomeAirQuality",
    }
)

# The DPV-PD term each extension term is narrower than (skos:broader).
EXTENSION_BROADER: Final[dict[str, str]] = {
    "cvx:HouseholdEnergyUse": "pd:Behavioural",
    "cvx:HomeAirQuality": "pd:Behavioural",
    "cvx:NonPersonalEnvironmental": "dpv:NonPersonalData",
}

# Sensor stream -> data category. Streams not listed here are rejected at ingest.
STREAMS: Final[dict[str, str]] = {
    "vehicle.location": "pd:Location",
    "phone.location": "pd:Location",
    "vehicle.speed_kmh": "pd:VehicleUsage",
    "vehicle.odometer_km": "pd:VehicleUsage",
    "ev.charge_kwh": "pd:VehicleUsage",
    "transit.tap": "pd:TravelHistory",
    "home.energy_kwh": "cvx:HouseholdEnergyUse",
    "home.air_pm25": "cvx:HomeAirQuality",
    "home.air_co2_ppm": "cvx:HomeAirQuality",
    "city.air_pm25": NON_PERSONAL,
    "city.noise_db": NON_PERSONAL,
    "city.traffic_count": NON_PERSONAL,
}

PUBLIC_STREAMS: Final[frozenset[str]] = frozenset(s for s, c in STREAMS.items() if c == NON_PERSONAL)

_PREFIXES: Final[dict[str, str]] = {"dpv": DPV, "pd": PD, "cvx": CVX}


def category_of(stream: str) -> str | None:
    """The data category of a stream, or None for an unknown stream."""
    return STREAMS.get(stream)


def is_personal_stream(stream: str) -> bool:
    category = STREAMS.get(stream)
    return category is not None and category != NON_PERSONAL


def expand(term: str) -> str:
    """Expand a compact term (``pd:Location``) to its IRI."""
    prefix, sep, local = term.partition(":")
    if not sep or prefix not in _PREFIXES or not local:
        raise ValueError(f"not a known compact DPV term: {term!r}")
    return _PREFIXES[prefix] + local
