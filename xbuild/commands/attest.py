"""`xbuild attest verify`: check a build (a local output folder or a published build) against its
signed provenance and SBOMs."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from xbuild.commands import emit_json, json_option, option


@click.group()
def attest():
    """A build's SBOMs and provenance (docs/attestation.md)."""


@attest.command("verify")
@click.argument("build")
@option("--key", type=click.Path(dir_okay=False), env="XBUILD_VERIFY_KEY",
        help="The signer's public key (PEM): the provenance must be signed by it.")
@json_option
def attest_verify(build, key, as_json):
    """Check BUILD (an output folder, or STORE_URL/<build-id>) against its provenance: the
    signature (with --key), every file's sha256, the SBOMs' and SHA256SUMS' digests."""
    with tempfile.TemporaryDirectory(prefix="xbuild-attest-") as tmp:
        folder = Path(build) if Path(build).is_dir() else _fetched(build, Path(tmp) / "build")
        report = checked(folder, key, build, quiet=as_json)
    if as_json:
        emit_json({"build": build, **report.to_json()})
    else:
        signature = report.signed and key is not None
        click.echo(f"{build}: attestation verified"
                   + ("" if signature else " (unsigned, or its signature not checked)"))


def checked(folder: Path, key: str | None, build: str, quiet: bool = False):
    """check.verify's report on folder; AttestationMismatch naming every problem when any."""
    from xbuild.attest import check, dsse
    from xbuild.errors import AttestationMismatch, ConfigError
    public = None
    if key is not None:
        try:
            public = dsse.load_public(Path(key).read_bytes(), key)
        except OSError as exc:
            raise ConfigError(f"--key {key}: cannot read it ({exc.strerror})") from None
    report = check.verify(folder, public)
    if not quiet:
        for note in report.notes:
            click.echo(f"note: {note}", err=True)
    if not report.ok:
        raise AttestationMismatch(f"{build}: {len(report.problems)} problem(s):\n"
                                  + "\n".join(f"  {p}" for p in report.problems))
    return report


def _fetched(url: str, dest: Path) -> Path:
    """A published build (STORE_URL/<build-id>), fetched with the store record's digests checked."""
    from xbuild.store import publish
    store, record = publish.open_build(url)
    publish.fetch(store, "", record, dest, sums=False)
    return dest
