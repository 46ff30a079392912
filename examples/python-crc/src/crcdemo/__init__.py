"""CRC-32C (Castagnoli) in C, and the machine the extension was compiled for."""

from crcdemo._crc import crc32c, machine

__all__ = ["crc32c", "machine"]
