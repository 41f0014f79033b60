"""FastAPI dependencies for the composed service (read from `app.state`)."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request

from civitas.keys import KeyStore
from civitas.settings import Settings
from identity.sql import Clock


def get_engine(request: Request) -> sa.Engine:
    engine: sa.Engine = request.app.state.engine
    return engine


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_keys(request: Request) -> KeyStore:
    keys: KeyStore = request.app.state.keys
    return keys


def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


EngineDep = Annotated[sa.Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
KeysDep = Annotated[KeyStore, Depends(get_keys)]
ClockDep = Annotated[Clock, Depends(get_clock)]
