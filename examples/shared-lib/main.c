#include <stdio.h>
#include "greet.h"

int main(void)
{
    puts(greet_line());
    return 0;
}
