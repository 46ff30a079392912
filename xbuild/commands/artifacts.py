"""`xbuild artifacts ls|get`: what a store holds, and fetching a build with every checksum verified."""

from __future__ import annotations

import click

from xbuild.commands import emit_json, json_option, option, retry_option


@click.group()
def artifacts():
    """Builds published to a store (s3://bucket/project, file:///dir or a plain path)."""


@artifacts.command("ls")
@click.argument("url")
@option("-t", "--target", env="XBUILD_TARGET", help="Only this board's builds.")
@json_option
def artifacts_ls(url, target, as_json):
    """List the builds published under URL, newest first."""
    from xbuild.store import open_store, publish
    records = publish.list_builds(open_store(url), "", target)
    if as_json:
        emit_json({"url": url, "builds": records})
        return
    for r in records:
        names = ", ".join(f["name"] for f in r["files"] if f["name"].endswith(".tar.gz"))
        click.echo(f"{r['build_id']:36} {r['target']:12} {r.get('mode', ''):8} {r.get('published_at', ''):26} {names}")


@artifacts.command("get")
@click.argument("url")
@option("-o", "--out", type=click.Path(), required=True, env="XBUILD_OUT_DIR",
        help="Directory to write the build's files to: a new or empty one, or one xbuild made "
             "(replaced whole); any other is refused.")
@option("--key", type=click.Path(dir_okay=False), env="XBUILD_VERIFY_KEY",
        help="The signer's public key (PEM): the build's provenance must be signed by it and every "
             "file match it (as `xbuild attest verify` checks).")
@retry_option
@json_option
def artifacts_get(url, out, key, retry_seconds, as_json):
    """Fetch URL/<build-id> into --out, verifying every checksum (and, with --key, the signature)."""
    from pathlib import Path

    from xbuild.store import publish
    from xbuild.store.patience import ride_out_outages
    ride_out_outages(retry_seconds, lambda line: click.echo(line, err=True))
    store, record = publish.open_build(url)
    publish.fetch(store, "", record, Path(out))
    if key is not None:
        from xbuild.commands.attest import checked
        from xbuild.errors import AttestationMismatch
        from xbuild.host.atomic import remove_made
        try:
            checked(Path(out), key, url)
        except AttestationMismatch as exc:
            remove_made(Path(out))  # fetched just now, by xbuild: nothing unverified is left
            exc.message += f"\n{out} was not kept"
            raise
    if as_json:
        emit_json({"status": "ok", "build_id": record["build_id"], "out": str(Path(out).resolve()),
                   "files": record["files"]})
    else:
        for f in record["files"]:
            click.echo(f"{Path(out) / f['name']}  sha256:{f['sha256'][:16]} ok")
