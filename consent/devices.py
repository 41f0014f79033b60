"""Device registry: personal devices (owned by a citizen pseudonym) and public city sensors.

Each device has an Ed25519 public key that signs its reading batches. A device may be bound to
an OAuth2 client id (the service authenticates the device by client credentials *and* checks
the batch signature). A device's hardware serial is kept here only and never reaches readings.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from consent import tables as t
from consent.records import ConsentError
from consent.sqlutil import chunks, insert_ignore, read_connection

__all__ = [
    "Device",
    "DeviceError",
    "DeviceKind",
    "UnknownDevice",
    "check_registration",
    "device_for_client",
    "get_device",
    "get_devices",
    "register_device",
    "register_devices",
    "revoke_device",
]


class DeviceError(ConsentError):
    """A device registration is invalid."""


class UnknownDevice(DeviceError):
    """No such (active) device."""


class DeviceKind(StrEnum):
    PERSONAL = "personal"
    PUBLIC = "public"


@dataclass(frozen=True)
class Device:
    device_id: str
    kind: DeviceKind
    owner: str | None
    public_key: bytes
    client_id: str | None
    reward_account_id: int | None
    registered_ns: int
    revoked_ns: int | None

    @property
    def active(self) -> bool:
        return self.revoked_ns is None

    @property
    def unit(self) -> str:
        """The privacy unit of its readings: the owner's pseudonym, or the public device id."""
        return self.owner if self.owner is not None else self.device_id


def _device(row: Any) -> Device:
    return Device(
        device_id=row.device_id,
        kind=DeviceKind(row.kind),
        owner=row.owner,
        public_key=bytes(row.public_key),
        client_id=row.client_id,
        reward_account_id=row.reward_account_id,
        registered_ns=row.registered_ns,
        revoked_ns=row.revoked_ns,
    )


_COLUMNS = (
    t.devices.c.device_id,
    t.devices.c.kind,
    t.devices.c.owner,
    t.devices.c.public_key,
    t.devices.c.client_id,
    t.devices.c.reward_account_id,
    t.devices.c.registered_ns,
    t.devices.c.revoked_ns,
)


def check_registration(
    *,
    public_key: bytes,
    kind: DeviceKind,
    owner: str | None,
    serial: str | None = None,
    reward_account_id: int | None = None,
) -> None:
    """Raise DeviceError unless these registration fields are valid."""
    if len(public_key) != 32:
        raise DeviceError("an Ed25519 public key is 32 bytes")
    if kind == DeviceKind.PERSONAL and not owner:
        raise DeviceError("a personal device has an owner")
    if kind == DeviceKind.PUBLIC and (owner is not None or reward_account_id is not None):
        raise DeviceError("a public city sensor has no owner and earns no rewards")
    if owner is not None and not 0 < len(owner) <= 128:
        raise DeviceError("owner pseudonym is 1..128 characters")
    if serial is not None and not 0 < len(serial) <= 128:
        raise DeviceError("serial is 1..128 characters")
    if reward_account_id is not None and not 0 < reward_account_id < (1 << 128) - 1:
        raise DeviceError("reward account id out of range")


def register_device(
    engine: sa.Engine,
    *,
    public_key: bytes,
    kind: DeviceKind,
    now_ns: int,
    owner: str | None = None,
    client_id: str | None = None,
    serial: str | None = None,
    reward_account_id: int | None = None,
    device_id: str | None = None,
) -> Device:
    """Register a device; personal devices need an owner, public sensors must not have one."""
    check_registration(
        public_key=public_key, kind=kind, owner=owner, serial=serial, reward_account_id=reward_account_id
    )
    device_id = device_id or f"dev-{secrets.token_hex(12)}"
    if not 0 < len(device_id) <= 64:
        raise DeviceError("device id is 1..64 characters")
    with engine.begin() as conn:
        exists = conn.execute(
            sa.select(t.devices.c.device_id).where(
                sa.or_(
                    t.devices.c.device_id == device_id,
                    sa.and_(t.devices.c.client_id.is_not(None), t.devices.c.client_id == client_id),
                )
            )
        ).first()
        if exists is not None:
            raise DeviceError("device id or client id already registered")
        conn.execute(
            sa.insert(t.devices).values(
                device_id=device_id,
                kind=kind.value,
                owner=owner,
                public_key=public_key,
                client_id=client_id,
                serial=serial,
                reward_account_id=reward_account_id,
                registered_ns=now_ns,
                revoked_ns=None,
            )
        )
        if owner is not None:
            # ingest locks this row; make sure it exists before the first batch arrives
            insert_ignore(conn, t.subjects, [{"subject": owner, "version": 0, "updated_ns": now_ns}])
    return Device(device_id, kind, owner, public_key, client_id, reward_account_id, now_ns, None)


def register_devices(
    engine: sa.Engine, devices: Sequence[Device], *, serials: Sequence[str | None] = ()
) -> None:
    """Register many devices in one transaction (city onboarding); all or nothing."""
    serial_of = list(serials) + [None] * (len(devices) - len(serials))
    rows: list[dict[str, Any]] = []
    owners: dict[str, int] = {}
    for device, serial in zip(devices, serial_of, strict=True):
        if len(device.public_key) != 32:
            raise DeviceError("an Ed25519 public key is 32 bytes")
        if (device.kind == DeviceKind.PERSONAL) != (device.owner is not None):
            raise DeviceError("personal devices have an owner, public sensors none")
        if device.kind == DeviceKind.PUBLIC and device.reward_account_id is not None:
            raise DeviceError("a public city sensor earns no rewards")
        if not 0 < len(device.device_id) <= 64:
            raise DeviceError("device id is 1..64 characters")
        rows.append(
            {
                "device_id": device.device_id,
                "kind": device.kind.value,
                "owner": device.owner,
                "public_key": device.public_key,
                "client_id": device.client_id,
                "serial": serial,
                "reward_account_id": device.reward_account_id,
                "registered_ns": device.registered_ns,
                "revoked_ns": None,
            }
        )
        if device.owner is not None:
            owners[device.owner] = device.registered_ns
    with engine.begin() as conn:
        for part in chunks(rows, 2_000):
            conn.execute(sa.insert(t.devices), list(part))
        insert_ignore(
            conn,
            t.subjects,
            [{"subject": o, "version": 0, "updated_ns": ns} for o, ns in sorted(owners.items())],
        )


def revoke_device(engine: sa.Engine, device_id: str, *, now_ns: int) -> None:
    with engine.begin() as conn:
        done = conn.execute(
            sa.update(t.devices)
            .where(t.devices.c.device_id == device_id, t.devices.c.revoked_ns.is_(None))
            .values(revoked_ns=now_ns)
        )
        if done.rowcount != 1:
            raise UnknownDevice("no such active device")


def get_devices(conn: sa.Connection, device_ids: Sequence[str]) -> dict[str, Device]:
    out: dict[str, Device] = {}
    for part in chunks(sorted(set(device_ids))):
        for row in conn.execute(sa.select(*_COLUMNS).where(t.devices.c.device_id.in_(part))):
            out[row.device_id] = _device(row)
    return out


def get_device(engine: sa.Engine, device_id: str) -> Device:
    with read_connection(engine) as conn:
        found = get_devices(conn, [device_id]).get(device_id)
    if found is None:
        raise UnknownDevice("no such device")
    return found


def device_for_client(engine: sa.Engine, client_id: str) -> Device | None:
    with read_connection(engine) as conn:
        row = conn.execute(sa.select(*_COLUMNS).where(t.devices.c.client_id == client_id)).first()
    return None if row is None else _device(row)
