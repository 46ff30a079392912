"""What xbuild does on the host itself: file operations on paths a project shaped, atomic output
directories, bounded archives, the cache directory, retries, threads a signal may interrupt,
and untrusted text on a terminal."""
