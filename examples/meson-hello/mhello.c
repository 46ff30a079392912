#include <stdio.h>
#include <string.h>

#ifndef MHELLO_VERSION
#define MHELLO_VERSION "1.0"
#endif

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        puts("mhello " MHELLO_VERSION);
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "usage: %s [--version]\n", argv[0]);
        return 2;
    }
    puts("Hello from meson");
    return 0;
}
