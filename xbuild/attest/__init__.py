"""What a build says of itself: its SBOMs (sbom.py, licenses.py), its SLSA provenance
(provenance.py), signed (dsse.py), and checked (check.py: `xbuild attest verify`)."""
