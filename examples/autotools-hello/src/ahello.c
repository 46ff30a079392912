#include <stdio.h>
#include <string.h>
/* HAVE_FCNTL_H is defined by configure's AC_CHECK_HEADERS([fcntl.h]). */
#ifdef HAVE_FCNTL_H
#include <fcntl.h>
#endif

/* PACKAGE_NAME / PACKAGE_VERSION come from AC_INIT via the -D flags that
 * configure puts in DEFS; the fallbacks keep the file compilable alone. */
#ifndef PACKAGE_NAME
#define PACKAGE_NAME "ahello"
#endif
#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "1.0"
#endif

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("%s %s\n", PACKAGE_NAME, PACKAGE_VERSION);
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "usage: %s [--version]\n", argv[0]);
        return 2;
    }
    puts("Hello from autotools");
    return 0;
}
