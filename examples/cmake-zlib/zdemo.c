#include <stdio.h>
#include <string.h>
#include <zlib.h>

static const char message[] =
    "xbuild cmake-zlib example: the quick brown fox jumps over the lazy dog. "
    "the quick brown fox jumps over the lazy dog. "
    "the quick brown fox jumps over the lazy dog.";

int main(int argc, char **argv)
{
    unsigned char packed[512];
    unsigned char unpacked[512];
    uLong src_len = (uLong)strlen(message);
    uLongf packed_len = sizeof packed;
    uLongf unpacked_len = sizeof unpacked;
    int rc;

    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        puts("zdemo 1.0");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "usage: %s [--version]\n", argv[0]);
        return 2;
    }

    rc = compress2(packed, &packed_len, (const Bytef *)message, src_len,
                   Z_BEST_COMPRESSION);
    if (rc != Z_OK) {
        fprintf(stderr, "compress2 failed: %d\n", rc);
        return 1;
    }
    rc = uncompress(unpacked, &unpacked_len, packed, packed_len);
    if (rc != Z_OK) {
        fprintf(stderr, "uncompress failed: %d\n", rc);
        return 1;
    }
    if (unpacked_len != src_len || memcmp(unpacked, message, src_len) != 0) {
        fprintf(stderr, "roundtrip mismatch\n");
        return 1;
    }

    printf("zlib %s roundtrip ok %lu bytes\n", zlibVersion(),
           (unsigned long)src_len);
    return 0;
}
