"""A package index of wheels in a store (PEP 503 simple repository, PEP 658/714 metadata files),
one per board and release, that pip on the board reads with `--extra-index-url <url>/simple/`.

Layout under a base (e.g. `wheels/rpi3-trixie`), all static files, so that any web server (or an
S3 bucket's website) serves it:

    simple/index.html                      a link to every project
    simple/<project>/index.html            a link to every wheel, with #sha256= and the metadata hash
    simple/<project>/<wheel>               the wheel
    simple/<project>/<wheel>.metadata      its METADATA (PEP 658: pip resolves without downloading it)
    simple/<project>/<wheel>.json          what the page says of it (hashes, Requires-Python)

<project> is the name normalized (PEP 503). Files come first, pages after: a reader never finds a
link to a file not there yet. The pages are made from the files present, so adding is idempotent
and a page lost to two publishers writing at once is made whole by the next add (or `reindex`).

A wheel comes out of a build container: untrusted. Its name must parse as a wheel's, its METADATA
is read with a size bound and must name the same project and version, and everything a page shows
is escaped."""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import html
import json
import shutil
import tempfile
import zipfile
from pathlib import Path
from urllib.parse import quote

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from xbuild.errors import BadArtifact, StoreError
from xbuild.host import safefs
from xbuild.host.archive import sha256_file
from xbuild.schema import json_value
from xbuild.store import Store, check_segments, is_segment

MAX_METADATA = 4 << 20  # a METADATA with a long README is ~100 KB; more is not a real wheel's
SIDECAR = ".json"
_HINT = "give a wheel (.whl) as a PEP 517 build makes it"


def _bad(message: str) -> BadArtifact:
    return BadArtifact(message, hint=_HINT)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_metadata(wheel: Path, name: str, version: str) -> bytes:
    """The wheel's .dist-info/METADATA, at most MAX_METADATA bytes, naming `name` and `version`."""
    try:
        with zipfile.ZipFile(wheel) as z:
            dist_infos = {n.split("/", 1)[0] for n in z.namelist()
                          if n.count("/") == 1 and n.endswith(".dist-info/METADATA")}
            if len(dist_infos) != 1:
                raise _bad(f"{wheel.name}: {len(dist_infos)} .dist-info/METADATA files, not one")
            with z.open(f"{dist_infos.pop()}/METADATA") as f:
                data = f.read(MAX_METADATA + 1)  # the inflated bytes: a zip bomb stops here
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise _bad(f"{wheel.name}: not a readable zip file ({exc})") from None
    if len(data) > MAX_METADATA:
        raise _bad(f"{wheel.name}: its METADATA is over {MAX_METADATA >> 20} MiB")
    headers = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(data, headersonly=True)
    try:
        same = (canonicalize_name(headers.get("Name", "")) == canonicalize_name(name)
                and Version(headers.get("Version", "")) == Version(version))
    except InvalidVersion:
        same = False
    if not same:
        raise _bad(f"{wheel.name}: its METADATA names {headers.get('Name')!r} "
                       f"{headers.get('Version')!r}, not the file name's project and version")
    return data


def board_base(board: str, release: str) -> str:
    """The index of a board's release under a store: rpi3-trixie (pip there: <url>/rpi3-trixie/simple/)."""
    return f"{board}-{release}"


def add(store: Store, base: str, wheel: Path) -> str:
    """Put `wheel` and its metadata under `base` and make the pages anew; the project's page key."""
    check_segments(base, "index base")
    try:
        project, version, _, _ = parse_wheel_filename(wheel.name)
    except InvalidWheelFilename as exc:
        raise _bad(f"{wheel.name!r} is not a wheel's file name: {exc}") from None
    if not is_segment(project) or not is_segment(wheel.name):
        raise _bad(f"{wheel.name!r}: not a plain file name")
    with tempfile.TemporaryDirectory(prefix="xbuild-wheel-") as tmp:
        copy = Path(tmp, wheel.name)  # never read through a link the build placed
        try:
            with safefs.open_read(wheel) as src, copy.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except OSError as exc:
            raise _bad(f"{wheel}: cannot read it as a regular file ({exc.strerror})") from None
        metadata = read_metadata(copy, project, str(version))
        sha = sha256_file(copy)
        folder = _key(base, "simple", project)
        store.put_file(_key(folder, wheel.name), copy, sha)
    store.write(_key(folder, wheel.name + ".metadata"), metadata)
    headers = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(metadata, headersonly=True)
    sidecar = {"sha256": sha, "metadata_sha256": _sha256(metadata),
               "requires_python": headers.get("Requires-Python", "")}
    store.write(_key(folder, wheel.name + SIDECAR), _json(sidecar))
    _project_page(store, base, project)
    _root_page(store, base)
    return _key(folder, "index.html")


def reindex(store: Store, base: str) -> None:
    """Make every page anew from the files present."""
    check_segments(base, "index base")
    for project in _projects(store, base):
        _project_page(store, base, project)
    _root_page(store, base)


def _key(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p)


def _json(value: dict) -> bytes:
    return json.dumps(value, sort_keys=True).encode()


def _projects(store: Store, base: str) -> list[str]:
    simple = _key(base, "simple") + "/"
    names = {key[len(simple):].split("/", 1)[0] for key in store.list(simple) if key.endswith(".whl" + SIDECAR)}
    return sorted(n for n in names if is_segment(n) and canonicalize_name(n) == n)


def _entries(store: Store, folder: str) -> list[tuple[str, dict]]:
    """(wheel file name, its sidecar) for every wheel in a project's folder, checked."""
    out = []
    for key in store.list(folder + "/"):
        name = key.rsplit("/", 1)[-1]
        if not name.endswith(".whl" + SIDECAR):
            continue
        wheel = name[: -len(SIDECAR)]
        raw = store.read(key)
        try:
            side = json_value(raw or b"")
            ok = (isinstance(side, dict) and all(isinstance(side.get(k), str) for k in
                                                   ("sha256", "metadata_sha256", "requires_python"))
                  and all(len(side[k]) == 64 and set(side[k]) <= set("0123456789abcdef")
                          for k in ("sha256", "metadata_sha256")))
        except ValueError:
            ok = False
        if not ok:
            raise StoreError(f"{store.url}: {key} is not what xbuild wrote",
                             hint="remove it and the wheel beside it, then add the wheel again")
        out.append((wheel, side))
    return sorted(out)


def _page(title: str, links: list[str]) -> bytes:
    body = "\n".join(links)
    return (f'<!DOCTYPE html>\n<html>\n<head>\n<meta name="pypi:repository-version" content="1.0">\n'
            f"<title>{html.escape(title)}</title>\n</head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
            f"{body}\n</body>\n</html>\n").encode()


def _project_page(store: Store, base: str, project: str) -> None:
    folder = _key(base, "simple", project)
    links = []
    for wheel, side in _entries(store, folder):
        meta = f"sha256={side['metadata_sha256']}"
        requires = (f' data-requires-python="{html.escape(side["requires_python"])}"'
                    if side["requires_python"] else "")
        href = html.escape(f"{quote(wheel)}#sha256={side['sha256']}")
        links.append(f'<a href="{href}" data-dist-info-metadata="{meta}" data-core-metadata="{meta}"'
                     f"{requires}>{html.escape(wheel)}</a><br>")
    store.write(_key(folder, "index.html"), _page(f"Links for {project}", links))


def _root_page(store: Store, base: str) -> None:
    links = [f'<a href="{html.escape(quote(p))}/">{html.escape(p)}</a><br>' for p in _projects(store, base)]
    store.write(_key(base, "simple", "index.html"), _page("Simple index", links))
