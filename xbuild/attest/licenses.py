"""Debian's license short names (DEP-5 copyright files) as SPDX license expressions.

A copyright file names one license per file set; the package as a whole is under all of them
(AND). A name SPDX does not list becomes a LicenseRef- of its own, which the SPDX document
declares (hasExtractedLicensingInfos) with a pointer to the package's copyright file."""

from __future__ import annotations

import re

# Debian's names (lower-cased) that differ from SPDX's identifiers; a name equal to an SPDX id
# (Apache-2.0, Zlib, ISC, MPL-2.0...) is matched case-insensitively in KNOWN below.
_DEBIAN = {
    "gpl-1": "GPL-1.0-only", "gpl-1+": "GPL-1.0-or-later", "gpl-2": "GPL-2.0-only",
    "gpl-2+": "GPL-2.0-or-later", "gpl-3": "GPL-3.0-only", "gpl-3+": "GPL-3.0-or-later",
    "lgpl-2": "LGPL-2.0-only", "lgpl-2+": "LGPL-2.0-or-later", "lgpl-2.1": "LGPL-2.1-only",
    "lgpl-2.1+": "LGPL-2.1-or-later", "lgpl-3": "LGPL-3.0-only", "lgpl-3+": "LGPL-3.0-or-later",
    "agpl-3": "AGPL-3.0-only", "agpl-3+": "AGPL-3.0-or-later", "gfdl-1.2": "GFDL-1.2-only",
    "gfdl-1.2+": "GFDL-1.2-or-later", "gfdl-1.3": "GFDL-1.3-only", "gfdl-1.3+": "GFDL-1.3-or-later",
    "expat": "MIT", "bsd-2-clause": "BSD-2-Clause", "bsd-3-clause": "BSD-3-Clause",
    "bsd-4-clause": "BSD-4-Clause", "artistic": "Artistic-1.0", "artistic-2.0": "Artistic-2.0",
    "psf-2": "PSF-2.0", "public-domain": "LicenseRef-public-domain", "x11": "X11", "openssl": "OpenSSL",
    "curl": "curl", "mpl-1.1": "MPL-1.1", "mpl-2.0": "MPL-2.0", "apache-2.0": "Apache-2.0",
    "zlib": "Zlib", "isc": "ISC", "cc0-1.0": "CC0-1.0", "unicode-dfs-2016": "Unicode-DFS-2016",
    "bsl-1.0": "BSL-1.0", "0bsd": "0BSD", "ssleay": "SSLeay-standalone", "libpng": "Libpng",
    "ofl-1.1": "OFL-1.1", "unlicense": "Unlicense", "wtfpl": "WTFPL", "ftl": "FTL",
}
_OPERATOR = re.compile(r"\s+(or|and)\s+", re.IGNORECASE)
_REF_CHARS = re.compile(r"[^A-Za-z0-9.\-]+")


def spdx_id(name: str) -> str:
    """One Debian license name as an SPDX id, or LicenseRef-debian-<name>."""
    key = name.strip().lower().rstrip(",")
    if key in _DEBIAN:
        return _DEBIAN[key]
    return "LicenseRef-debian-" + (_REF_CHARS.sub("-", name.strip()).strip("-") or "unnamed")


def expression(names: tuple[str, ...]) -> str | None:
    """The package's licenses (copyright file's License: lines) as one SPDX expression, or None
    when the file declares none (a free-form copyright file)."""
    terms = []
    for name in names:
        parts = _OPERATOR.split(name.strip())
        ids = [spdx_id(p) if i % 2 == 0 else p.upper() for i, p in enumerate(parts)]
        term = " ".join(ids)
        terms.append(f"({term})" if len(parts) > 1 and len(names) > 1 else term)
    return " AND ".join(dict.fromkeys(terms)) or None


def references(expr: str | None) -> list[str]:
    """The LicenseRef- ids an expression uses (the SPDX document declares each)."""
    return sorted(set(re.findall(r"LicenseRef-[A-Za-z0-9.\-]+", expr or "")))
