"""xbuild: cross-compile projects for ARM (and other non-x86) boards in sandboxed containers."""

__version__ = "0.1.0"

# Bumped whenever a change to xbuild can change what a build produces (image contents, shims,
# recipe handling, archive layout). It is part of every cache key and image tag.
BUILD_LOGIC_VERSION = "2"

