"""Run in the image build (pipeline/rust.py's std layer), by the release's python3 (3.9 on
bullseye: no tomllib, so the lock and manifests are read by pattern; both are written by cargo).

The std's Cargo.lock (rust-src) names registry crates that the Debian rustc source's vendor/
lacks: the windows-* crates, pruned as non-free (dfsg). Cargo resolves them all the same
(dlmalloc -> windows-sys), so each missing one gets an empty stand-in: a Cargo.toml declaring
the features the vendored crates ask of it, an empty #![no_std] lib, and the lock's checksum.
Nothing links them on Linux.

usage: stubs.py LOCK VENDOR"""

import json
import os
import re
import sys

lock, vendor = sys.argv[1], sys.argv[2]
with open(lock) as f:
    text = f.read()
wanted = re.findall(r'\[\[package\]\]\nname = "([^"]+)"\nversion = "([^"]+)"\nsource = "registry\+[^"]+"\n'
                    r'checksum = "([0-9a-f]{64})"', text)
have = set(os.listdir(vendor))
# features = [...] of every `[...dependencies.<name>]` table in the vendored manifests
asked: dict[str, set[str]] = {}
for d in sorted(have):
    try:
        with open(os.path.join(vendor, d, "Cargo.toml")) as f:
            manifest = f.read()
    except OSError:
        continue
    for name, body in re.findall(r'^\[[^\]\n]*dependencies\.([A-Za-z0-9_-]+)\]\n((?:[^\[\n].*\n|\n)*)',
                                  manifest, re.M):
        m = re.search(r'features = \[([^\]]*)\]', body)
        if m:
            asked.setdefault(name, set()).update(re.findall(r'"([^"]+)"', m.group(1)))
for name, version, checksum in wanted:
    d = os.path.join(vendor, f"{name}-{version}")
    if f"{name}-{version}" in have:
        continue
    os.makedirs(os.path.join(d, "src"))
    features = "".join(f'{f} = []\n' for f in sorted(asked.get(name, ())))
    with open(os.path.join(d, "Cargo.toml"), "w") as f:
        f.write(f'[package]\nname = "{name}"\nversion = "{version}"\nedition = "2015"\n\n'
                f'[lib]\npath = "src/lib.rs"\n\n[features]\n{features}')
    with open(os.path.join(d, "src", "lib.rs"), "w") as f:
        f.write("#![no_std]\n")
    with open(os.path.join(d, ".cargo-checksum.json"), "w") as f:
        json.dump({"package": checksum, "files": {}}, f)
    print(f"stub {name} {version}")
