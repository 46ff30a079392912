#include <stdio.h>
#include "version.h"

int main(void) {
    printf("xslt-tools %s\n", VERSION);
    return 0;
}
