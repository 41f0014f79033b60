"""Settings come from CIVITAS_* variables and reach the areas that use them."""

from __future__ import annotations

from pathlib import Path

import pytest

from civitas.app import create_app
from civitas.settings import Settings
from consent import RewardConfig


def test_environment_variables_configure_the_service(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CIVITAS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CIVITAS_ACCESS_TOKEN_TTL_S", "120")
    monkeypatch.setenv("CIVITAS_REWARD_INCENTIVE_ACCOUNT_ID", "1001")
    monkeypatch.setenv("CIVITAS_REWARD_RATES_MICROS", '{"pd:Location": 200}')
    settings = Settings()
    assert settings.data_dir == tmp_path and settings.access_token_ttl_s == 120
    assert settings.resolved_database_url == f"sqlite:///{(tmp_path / 'civitas.db').resolve()}"
    assert settings.reward_rates_micros == {"pd:Location": 200}


def test_out_of_range_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIVITAS_ACCESS_TOKEN_TTL_S", "5")
    with pytest.raises(ValueError, match="access_token_ttl_s"):
        Settings()


def test_reward_settings_configure_the_gateway(tmp_path: Path, db_url: str) -> None:
    off = create_app(Settings(data_dir=tmp_path / "a", database_url=db_url))
    assert off.state.consent_rewards is None
    off.state.engine.dispose()
    on = create_app(
        Settings(
            data_dir=tmp_path / "b",
            database_url=db_url,
            reward_incentive_account_id=1001,
            reward_rates_micros={"pd:Location": 200},
        )
    )
    assert on.state.consent_rewards == RewardConfig(
        incentive_account_id=1001, rates_micros={"pd:Location": 200}
    )
    on.state.engine.dispose()
