"""One build, from request to output: the request, the spec resolved from it and the project, the
build's steps (build), the script its container runs, its log, its progress, its cache key and
compiler cache, hints on failure, and `xbuild verify`'s two builds."""
