"""A seeded simulated city: citizens, their devices, consent choices and one day of readings; pure.

Everything here is a function of the seed (and of a citizen's or device's index), never of the
clock or of the number of citizens: citizen 7 of seed 42 is the same person in a city of 50 and
in a city of 1,000, so a small city is a prefix of a large one. Times are offsets in nanoseconds
from the start of the simulated UTC day; the demo maps them onto its `DayClock`.

No real person's data: names come from short lists, birthdates and homes are drawn at random.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Final

from consent.minimise import DEFAULT_GRID
from consent.vocab import STREAMS

__all__ = [
    "AFTERNOON",
    "BIRTHDATE_REFERENCE",
    "CITY_NAME",
    "CONSENT_OFFERS",
    "CREDENTIAL_TYPES",
    "MORNING",
    "Citizen",
    "City",
    "ConsentOffer",
    "DeviceSpec",
    "SimReading",
    "Trip",
]

HOUR_NS: Final = 3_600_000_000_000
MINUTE_NS: Final = 60_000_000_000
SECOND_NS: Final = 1_000_000_000

CITY_NAME: Final = "Civitas"
COUNTRY: Final = "AT"
# Birthdates are drawn relative to a fixed date so that a seed always yields the same people.
BIRTHDATE_REFERENCE: Final = dt.date(2026, 1, 1)
CREDENTIAL_TYPES: Final = ("residency", "age", "concession")

# The two reading windows of the day, [start, end) offsets: consent is given before the
# morning, some citizens withdraw between the two windows.
MORNING: Final = (7 * HOUR_NS, 12 * HOUR_NS)
AFTERNOON: Final = (13 * HOUR_NS, 22 * HOUR_NS)

GIVEN_NAMES: Final = (
    "Ada", "Amir", "Anna", "Aiko", "Ben", "Bruno", "Chiara", "Chen", "Dana", "David", "Elif",
    "Emil", "Eva", "Farah", "Felix", "Greta", "Hana", "Hugo", "Ines", "Ivan", "Jana", "Jonas",
    "Kai", "Karin", "Lea", "Leon", "Lina", "Luca", "Maja", "Marek", "Mila", "Nadia", "Noah",
    "Olga", "Omar", "Paula", "Pavel", "Rosa", "Samir", "Sara", "Theo", "Tilda", "Vera", "Yusuf",
    "Zoe", "Zofia",
)  # fmt: skip
FAMILY_NAMES: Final = (
    "Adler", "Bauer", "Berger", "Celik", "Dvorak", "Eder", "Fischer", "Fuchs", "Gruber", "Haas",
    "Hofer", "Horvat", "Huber", "Jovanovic", "Kaya", "Koch", "Kovac", "Lang", "Lehner", "Maier",
    "Moser", "Nagy", "Novak", "Pichler", "Reiter", "Rossi", "Schmid", "Schwarz", "Steiner",
    "Szabo", "Wagner", "Weber", "Wolf", "Yilmaz", "Zimmermann",
)  # fmt: skip
STREETS: Final = (
    "Lindengasse", "Hafenstraße", "Marktplatz", "Uferweg", "Schulgasse", "Bahnhofstraße",
    "Rosenweg", "Kirchplatz", "Mühlgasse", "Parkallee", "Brunnengasse", "Gartenstraße",
)  # fmt: skip


@dataclass(frozen=True)
class ConsentOffer:
    """One data-sharing request a citizen may accept: categories to a recipient for purposes.

    `recipient` is a role; the demo maps it to the OAuth2 client id it registered for that agency.
    """

    key: str
    recipient: str
    categories: tuple[str, ...]
    purposes: tuple[str, ...]
    accept_probability: float
    needs: str  # "home", "air" or "ev": the device the data comes from


CONSENT_OFFERS: Final = (
    ConsentOffer("energy", "utility", ("cvx:HouseholdEnergyUse",), ("dpv:ServiceOptimisation",), 0.7, "home"),
    ConsentOffer("air", "environment", ("cvx:HomeAirQuality",), ("dpv:PublicBenefit",), 0.6, "air"),
    ConsentOffer(
        "mobility", "transport", ("pd:Location", "pd:VehicleUsage"), ("dpv:ImprovePublicServices",), 0.5, "ev"
    ),
    ConsentOffer(
        "statistics",
        "statistics",
        ("cvx:HouseholdEnergyUse", "cvx:HomeAirQuality", "pd:VehicleUsage", "pd:Location"),
        ("dpv:ProvideOfficialStatistics",),
        0.6,
        "home",
    ),
)
WITHDRAW_PROBABILITY: Final = 0.15
FARE_CHECK_PROBABILITY: Final = 0.25


@dataclass(frozen=True, slots=True)
class SimReading:
    stream: str
    offset_ns: int
    value: float
    lat: float
    lon: float


@dataclass(frozen=True)
class Trip:
    """One EV trip through the toll ring: the toll is authorised on entry, settled on exit."""

    index: int
    enter_ns: int
    exit_ns: int
    authorised_micros: int
    settled_micros: int  # 0: the trip was abandoned and the hold is voided


@dataclass(frozen=True)
class DeviceSpec:
    """A device: a citizen's home hub or EV (`owner` = citizen index) or a public sensor."""

    device_key: str  # stable name within the city, e.g. "home-17", "ev-17", "sensor-Harbour-air"
    kind: str  # "personal" or "public"
    owner: int | None
    streams: tuple[str, ...]
    seed: str
    point: tuple[float, float]  # where it is installed (a home, or a district centre)

    def readings(self, window: tuple[int, int]) -> list[SimReading]:
        """The device's readings with offsets in [start, end), deterministic per device."""
        return [r for r in self._day if window[0] <= r.offset_ns < window[1]]

    @cached_property
    def _day(self) -> tuple[SimReading, ...]:
        rng = random.Random(self.seed + ":readings")
        out: list[SimReading] = []
        lat, lon = self.point
        if self.device_key.startswith("home-"):
            base_kwh = rng.uniform(0.15, 0.6)
            minute = rng.randrange(60)
            for hour in range(24):
                ts = hour * HOUR_NS + minute * MINUTE_NS + rng.randrange(60) * SECOND_NS
                factor = 1.8 if hour in (7, 8, 18, 19, 20) else (0.6 if hour < 6 else 1.0)
                out.append(
                    SimReading(
                        "home.energy_kwh", ts, round(base_kwh * factor * rng.uniform(0.8, 1.2), 3), lat, lon
                    )
                )
                if "home.air_pm25" in self.streams:
                    out.append(SimReading("home.air_pm25", ts, round(rng.uniform(4.0, 28.0), 1), lat, lon))
        elif self.device_key.startswith("ev-"):
            for trip in ev_trips(self.seed):
                t = trip.enter_ns
                while t < trip.exit_ns:
                    plat = min(
                        max(lat + rng.uniform(-0.05, 0.05), DEFAULT_GRID.lat_min), DEFAULT_GRID.lat_max - 1e-4
                    )
                    plon = min(
                        max(lon + rng.uniform(-0.1, 0.1), DEFAULT_GRID.lon_min), DEFAULT_GRID.lon_max - 1e-4
                    )
                    out.append(SimReading("vehicle.location", t, 0.0, round(plat, 5), round(plon, 5)))
                    out.append(
                        SimReading(
                            "vehicle.speed_kmh",
                            t,
                            round(rng.uniform(15.0, 70.0), 1),
                            round(plat, 5),
                            round(plon, 5),
                        )
                    )
                    t += 5 * MINUTE_NS
            charge_at = 21 * HOUR_NS + rng.randrange(50) * MINUTE_NS
            out.append(SimReading("ev.charge_kwh", charge_at, round(rng.uniform(5.0, 30.0), 2), lat, lon))
        else:
            step = 15 * MINUTE_NS
            for i in range(24 * 4):
                ts = i * step + rng.randrange(60) * SECOND_NS
                for stream in self.streams:
                    if stream == "city.air_pm25":
                        value = round(rng.uniform(6.0, 35.0), 1)
                    elif stream == "city.noise_db":
                        value = round(rng.uniform(38.0, 72.0), 1)
                    else:
                        value = float(rng.randrange(0, 400))
                    out.append(SimReading(stream, ts, value, lat, lon))
        out.sort(key=lambda r: r.offset_ns)
        for r in out:
            if r.stream not in STREAMS:
                raise ValueError(f"unknown stream {r.stream}")
        return tuple(out)


def ev_trips(seed: str) -> list[Trip]:
    """An EV's trips through the toll ring: a morning and an evening trip, some abandoned."""
    rng = random.Random(seed + ":trips")
    trips = []
    for i, (start_h, end_h) in enumerate(((7, 9), (16, 19))):
        enter = start_h * HOUR_NS + rng.randrange((end_h - start_h) * 60 - 40) * MINUTE_NS
        exit_ = enter + rng.randrange(10, 40) * MINUTE_NS
        authorised = 2_000_000  # a 2.00 hold on entry
        settled = 0 if rng.random() < 0.1 else rng.randrange(200_000, 2_000_001, 10_000)
        trips.append(Trip(i, enter, exit_, authorised, settled))
    return trips


@dataclass(frozen=True)
class Citizen:
    index: int
    given_name: str
    family_name: str
    birthdate: dt.date
    district: str
    home: tuple[float, float]
    street_address: str
    postal_code: str
    student: bool
    low_income: bool
    disability: bool
    has_ev: bool
    has_air_sensor: bool
    consents: tuple[str, ...]  # keys of the CONSENT_OFFERS accepted in the morning
    withdraws: tuple[str, ...]  # keys withdrawn at lunchtime (a subset of `consents`)
    fare_check: bool  # the transit agency checks this citizen's senior-fare eligibility

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    def age_on(self, day: dt.date) -> int:
        b = self.birthdate
        return day.year - b.year - int((day.month, day.day) < (b.month, b.day))

    def senior_on(self, day: dt.date) -> bool:
        return self.age_on(day) >= 65

    def credential_claims(self) -> dict[str, dict[str, object]]:
        """The raw claims each issuer signs, by credential type."""
        return {
            "residency": {
                "given_name": self.given_name,
                "family_name": self.family_name,
                "address": {
                    "street_address": self.street_address,
                    "postal_code": self.postal_code,
                    "locality": CITY_NAME,
                    "country": COUNTRY,
                },
                "district": self.district,
            },
            "age": {"birthdate": self.birthdate.isoformat()},
            "concession": {
                "birthdate": self.birthdate.isoformat(),
                "student": self.student,
                "low_income": self.low_income,
                "disability": self.disability,
            },
        }

    def raw_claims(self) -> dict[str, object]:
        """Everything the city's issuers know about this citizen (each issuer signs its part)."""
        merged: dict[str, object] = {}
        for claims in self.credential_claims().values():
            merged.update(claims)
        return merged

    def active_categories(self, *, afternoon: bool) -> frozenset[str]:
        """Data categories some active consent of this citizen covers in that window."""
        keys = set(self.consents) - (set(self.withdraws) if afternoon else set())
        return frozenset(c for o in CONSENT_OFFERS if o.key in keys for c in o.categories)


@dataclass
class City:
    """The city of one seed with `size` citizens (a prefix of the city of any larger size)."""

    seed: int
    size: int
    _citizens: list[Citizen] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.size <= 1_000_000:
            raise ValueError("a city has 1 .. 1,000,000 citizens")
        self._citizens = [self._citizen(i) for i in range(self.size)]

    @property
    def citizens(self) -> list[Citizen]:
        return self._citizens

    def _citizen(self, i: int) -> Citizen:
        rng = random.Random(f"civitas-demo:{self.seed}:citizen:{i}")
        given = rng.choice(GIVEN_NAMES)
        family = rng.choice(FAMILY_NAMES)
        bracket = rng.random()
        if bracket < 0.12:
            age = rng.randrange(18, 27)
        elif bracket < 0.72:
            age = rng.randrange(27, 65)
        else:
            age = rng.randrange(65, 95)
        birthdate = BIRTHDATE_REFERENCE - dt.timedelta(days=age * 365 + rng.randrange(365))
        d_index = rng.randrange(len(DEFAULT_GRID.names))
        district = DEFAULT_GRID.names[d_index]
        row, col = divmod(d_index, DEFAULT_GRID.cols)
        lat_step = (DEFAULT_GRID.lat_max - DEFAULT_GRID.lat_min) / DEFAULT_GRID.rows
        lon_step = (DEFAULT_GRID.lon_max - DEFAULT_GRID.lon_min) / DEFAULT_GRID.cols
        lat = DEFAULT_GRID.lat_max - (row + rng.uniform(0.05, 0.95)) * lat_step
        lon = DEFAULT_GRID.lon_min + (col + rng.uniform(0.05, 0.95)) * lon_step
        student = age < 27 and rng.random() < 0.6
        low_income = rng.random() < 0.12
        disability = rng.random() < 0.05
        has_ev = rng.random() < 0.3
        has_air = rng.random() < 0.4
        available = {"home": True, "air": has_air, "ev": has_ev}
        consents = tuple(
            o.key for o in CONSENT_OFFERS if available[o.needs] and rng.random() < o.accept_probability
        )
        withdraws = tuple(k for k in consents if rng.random() < WITHDRAW_PROBABILITY)
        return Citizen(
            index=i,
            given_name=given,
            family_name=family,
            birthdate=birthdate,
            district=district,
            home=(round(lat, 5), round(lon, 5)),
            street_address=f"{rng.choice(STREETS)} {rng.randrange(1, 120)}",
            postal_code=f"{1010 + 10 * d_index}",
            student=student,
            low_income=low_income,
            disability=disability,
            has_ev=has_ev,
            has_air_sensor=has_air,
            consents=consents,
            withdraws=withdraws,
            fare_check=rng.random() < FARE_CHECK_PROBABILITY,
        )

    def devices(self) -> Iterator[DeviceSpec]:
        """Every device: one home hub per citizen, an EV for some, two public sensors per district."""
        for c in self._citizens:
            streams = ("home.energy_kwh", "home.air_pm25") if c.has_air_sensor else ("home.energy_kwh",)
            yield DeviceSpec(
                f"home-{c.index}", "personal", c.index, streams, self._device_seed(f"home-{c.index}"), c.home
            )
            if c.has_ev:
                yield DeviceSpec(
                    f"ev-{c.index}",
                    "personal",
                    c.index,
                    ("vehicle.location", "vehicle.speed_kmh", "ev.charge_kwh"),
                    self._device_seed(f"ev-{c.index}"),
                    c.home,
                )
        for d_index, district in enumerate(DEFAULT_GRID.names):
            centre = DEFAULT_GRID.centre_of(district)
            for kind, streams in (
                ("air", ("city.air_pm25",)),
                ("traffic", ("city.noise_db", "city.traffic_count")),
            ):
                key = f"sensor-{d_index}-{kind}"
                yield DeviceSpec(key, "public", None, streams, self._device_seed(key), centre)

    def _device_seed(self, key: str) -> str:
        return f"civitas-demo:{self.seed}:device:{key}"

    def trips(self, citizen: Citizen) -> list[Trip]:
        """The toll-ring trips of a citizen's EV (none without an EV)."""
        return ev_trips(self._device_seed(f"ev-{citizen.index}")) if citizen.has_ev else []

    def fare_checks(self, day: dt.date) -> list[Citizen]:
        """Citizens the transit agency checks; anyone whose 65th birthday is within a day of `day`
        is left out, so the expected decision never depends on which side of midnight it is made."""
        out = []
        for c in self._citizens:
            if not c.fare_check:
                continue
            if len({c.senior_on(day + dt.timedelta(days=d)) for d in (-1, 0, 1, 2)}) > 1:
                continue
            out.append(c)
        return out
