"""Micropayment ledger: double-entry engine, SQL store, Merkle log and signed checkpoints."""

__all__: list[str] = []
