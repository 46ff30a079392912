"""What a build produces, checked and packed: the ELF reader, the ABI gate and its link check,
runtime dependencies, the archive and manifest, the .deb, and `xbuild run`, which installs it as the
board would."""
