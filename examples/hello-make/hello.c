#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "greet.h"

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        puts(greet_version());
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--arch") == 0) {
        struct utsname u;
        if (uname(&u) != 0) {
            perror("uname");
            return 1;
        }
        puts(u.machine);
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "usage: %s [--version|--arch]\n", argv[0]);
        return 2;
    }
    puts(greet_message());
    return 0;
}
