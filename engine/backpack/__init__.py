"""Sans-I/O Backpack protocol core: no trio, no sockets, no clock reads."""

from engine.backpack.signing import Signer as Signer
from engine.backpack.signing import verify_signature as verify_signature

__all__ = ["Signer", "verify_signature"]
