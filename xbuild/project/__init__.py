"""The project, read as data on the host: its xbuild.toml, which recipe builds it, its source tree
and hash, what its git checkout and build system say about it."""
