"""Credentials: BBS signatures, SD-JWT VC, did:key, Token Status List, issuer, wallet and verifier."""

__all__: list[str] = []
