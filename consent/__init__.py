"""Consent records, policy decisions, the sensor-reading gateway, access log and rewards."""

__all__: list[str] = []
